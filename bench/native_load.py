"""The native load generator (bench/loadgen/create_load.cc): building it, and driving it round by round.

``api_sessions.py --client native`` sends its creates from this C++ gRPC client instead of a
Python one: a load generator that shares the two cores with what it measures should take as
little of them as it can (the role ghz or h2load play for other servers). The requests are
built here with the API's own builder (:func:`control_plane.api.client.create_request`) and
written to a file before the round's clock starts; the program only moves bytes; every answer
comes back here and is parsed and checked (an active session with a UE address) after the round.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["BINARY", "NativeClient", "NativeUnavailable", "build", "buildable"]

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "bench" / "loadgen" / "create_load.cc"
BINARY = ROOT / "build" / "bench" / "create_load"
METHOD = "/edgecups.v1.SessionService/Create"
#: Debian packages the build needs (make system-deps installs them).
PACKAGES = ("g++", "pkg-config", "libgrpc++-dev")
_LENGTH = struct.Struct(">I")


class NativeUnavailable(RuntimeError):
    """The native load generator cannot be built here (its compiler or gRPC C++ is missing)."""


def _current() -> bool:
    return BINARY.exists() and BINARY.stat().st_mtime >= SOURCE.stat().st_mtime


def _compile_flags() -> list[str]:
    """gRPC C++'s compiler and linker flags; NativeUnavailable names what is missing."""
    if shutil.which("g++") is None or shutil.which("pkg-config") is None:
        raise NativeUnavailable(f"g++ and pkg-config are needed (make system-deps installs {' '.join(PACKAGES)})")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++"], capture_output=True, text=True, check=False)
    if flags.returncode != 0:
        raise NativeUnavailable(f"gRPC C++ is not installed (make system-deps installs {' '.join(PACKAGES)})")
    return flags.stdout.split()


def buildable() -> bool:
    """Whether :func:`build` can work here: the binary is current, or g++ and gRPC C++ are installed."""
    try:
        return _current() or bool(_compile_flags())
    except NativeUnavailable:
        return False


def build() -> Path:
    """The binary, compiled first when it is missing or older than its source."""
    if _current():
        return BINARY
    flags = _compile_flags()
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    partial = BINARY.with_suffix(".tmp")
    command = ["g++", "-O2", "-std=c++17", "-o", str(partial), str(SOURCE), *flags]
    compiled = subprocess.run(command, capture_output=True, text=True, check=False)
    if compiled.returncode != 0:
        raise NativeUnavailable(f"compiling {SOURCE.name} failed:\n{compiled.stderr[-2000:]}")
    partial.replace(BINARY)
    return BINARY


def write_frames(path: Path, messages: list[bytes]) -> None:
    with path.open("wb") as out:
        for message in messages:
            out.write(_LENGTH.pack(len(message)))
            out.write(message)


def read_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    frames: list[bytes] = []
    offset = 0
    while offset < len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        frames.append(data[offset : offset + length])
        offset += length
    return frames


class NativeClient:
    """One API phase's native load generator: ``clients`` over ``connections`` to ``target``, for all its rounds."""

    def __init__(
        self, target: str, ns: str, clients: int, connections: int, workdir: Path, *, connect_timeout: int = 60
    ) -> None:
        command = [str(build()), target, METHOD, str(clients), str(connections), str(connect_timeout)]
        if not target.startswith("unix:"):
            command = ["ip", "netns", "exec", ns, *command]  # the API's TCP port is on the cp namespace's loopback
        self._requests = workdir / f"requests-{id(self)}.bin"
        self._answers = workdir / f"answers-{id(self)}.bin"
        self._count = 0
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin, self._stdout = self.process.stdin, self.process.stdout
        if self._stdout.readline().strip() != "connected":
            self.stop()
            raise RuntimeError(f"the native load generator did not connect to {target}")

    def prepare(self, first: int, count: int) -> None:
        """Build the round's requests (before its clock starts)."""
        from bench.cp_sessions import request
        from control_plane.api.client import create_request

        write_frames(self._requests, [create_request(request(first + n)).SerializeToString() for n in range(count)])
        self._count = count

    def start_round(self) -> None:
        self._stdin.write(f"round {self._requests} {self._answers}\n")
        self._stdin.flush()

    def result(self) -> dict[str, Any]:
        """The round's figures; every answer parsed and checked, a bad one counted as an error."""
        from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb

        line = self._stdout.readline()
        if not line:
            raise RuntimeError(f"the native load generator exited ({self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        errors: Counter[str] = Counter(answer["errors"])
        frames = read_frames(self._answers)
        if len(frames) != self._count:
            raise RuntimeError(f"the native load generator gave {len(frames)} answers for {self._count} calls")
        for frame in frames:
            if not frame:
                continue  # a failed call, counted in its errors
            session = pb.Session.FromString(frame)
            if session.state != "active" or not session.ue_ipv4:
                errors[f"answered {session.state!r}, UE {session.ue_ipv4!r}"] += 1
        answer["errors"] = dict(errors)
        answer["latencies"] = sorted(answer["latencies"])
        return answer

    def stop(self) -> None:
        # A program that exited already (a failed connect) leaves a broken pipe: nothing to tell it then.
        with contextlib.suppress(OSError):
            self._stdin.write("quit\n")
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stdout.close()
        for path in (self._requests, self._answers):
            path.unlink(missing_ok=True)
