"""Fixtures shared by every test tier.

Markers are registered in pyproject.toml (``[tool.pytest.ini_options]``), not here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: The repository root (this file is tests/conftest.py).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Shared reference material lives next to the repository, never inside it.
SHARED_DIR = REPO_ROOT / ".." / "shared"
GOLDEN_SER_HEX = "pfcp-vectors/session-establishment-request.hex"

# database_url (SQLite and PostgreSQL), postgres_server, db_engine, migrated_engine.
pytest_plugins = ["tests.harness.database"]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` next to the repository; skips the test when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared reference directory not found at {SHARED_DIR.resolve()} (expected next to the repo)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def golden_ser_bytes(shared_dir: Path) -> bytes:
    """The golden PFCP Session Establishment Request of ``../shared/pfcp-vectors`` (370 octets)."""
    path = shared_dir / GOLDEN_SER_HEX
    if not path.is_file():
        pytest.skip(f"golden vector not found at {path.resolve()}")
    return bytes.fromhex(path.read_text())
