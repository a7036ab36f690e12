"""Fixtures of the PFCP node tests."""

from __future__ import annotations

import pytest

from tests.data.pfcp.make_vectors import HERE, golden_bytes


@pytest.fixture(scope="session")
def ser_bytes() -> bytes:
    """A Session Establishment Request on the wire: the shared golden vector
    (../shared/pfcp-vectors), or the stored vector of tests/data when it is absent."""
    golden = golden_bytes()
    return golden if golden is not None else (HERE / "session-establishment-request.bin").read_bytes()
