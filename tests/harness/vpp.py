"""pytest fixtures for the VPP API emulator (tests/vpp_emulator).

``vpp_emulator``: a started :class:`VppEmulator` on a fresh socket with the interfaces ``n3-eth``
(sw_if_index 1) and ``n6-eth`` (2); skips when no VPP API schema directory exists; fails the test at
teardown if an emulator handler crashed. ``running_emulator(...)`` does the same for other seeds.
Use with ``from tests.harness.vpp import vpp_api_dir, vpp_emulator  # noqa: F401`` in a conftest.
``schema_with_changed_crc(...)`` writes a schema directory in which one message has another CRC:
an emulator serving it advertises that CRC, as a VPP of another release would.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.vpp_emulator import VppEmulator, api_dir_for_tests, api_dir_skip_reason

#: The interfaces ``vpp_emulator`` starts with: N3 (access) and N6 (core).
DEFAULT_INTERFACES = ("n3-eth", "n6-eth")


@contextmanager
def running_emulator(
    *, interfaces: Iterable[str] = DEFAULT_INTERFACES, api_dir: Path | None = None, record_calls: bool = True
) -> Iterator[VppEmulator]:
    """A started emulator on a socket in a short temporary directory (unix paths max 107 bytes)."""
    schema_dir = api_dir if api_dir is not None else api_dir_for_tests()
    if schema_dir is None:
        pytest.skip(api_dir_skip_reason())
    with tempfile.TemporaryDirectory(prefix="vppemu-") as directory:
        emulator = VppEmulator(
            Path(directory) / "api.sock", schema_dir, interfaces=interfaces, record_calls=record_calls
        )
        with emulator:
            yield emulator
        if emulator.errors:
            pytest.fail("VPP emulator handler crashed:\n" + "\n".join(emulator.errors))


def schema_with_changed_crc(source: Path, target: Path, message: str, crc: str = "0xdeadbeef") -> Path:
    """Copy the ``*.api.json`` of ``source`` into ``target`` (a test's tmp dir, never the repo),
    with ``message``'s CRC replaced by ``crc``; returns ``target``. KeyError if no file defines it."""
    target.mkdir(parents=True, exist_ok=True)
    found = False
    for path in sorted(source.glob("*.api.json")):
        module = json.loads(path.read_text())
        for definition in module.get("messages", []):
            if definition[0] == message:
                definition[-1] = {**definition[-1], "crc": crc}
                found = True
        (target / path.name).write_text(json.dumps(module))
    if not found:
        raise KeyError(f"no message {message!r} in {source}")
    return target


@pytest.fixture
def vpp_api_dir() -> Path:
    """The VPP API schema directory (``$EDGECUPS_VPP_API_DIR`` or ../shared/vpp-api/v26.06)."""
    path = api_dir_for_tests()
    if path is None:
        pytest.skip(api_dir_skip_reason())
    return path


@pytest.fixture
def vpp_emulator(vpp_api_dir: Path) -> Iterator[VppEmulator]:
    with running_emulator(api_dir=vpp_api_dir) as emulator:
        yield emulator
