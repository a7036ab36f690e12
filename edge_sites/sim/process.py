"""A long-running Python process inside a network namespace, started and stopped by its parent.

Theory of operation:

* :class:`NetnsProcess` runs ``ip netns exec NS <python> -m MODULE ARGS`` (``ip netns exec``
  execs the command, so the process id is the Python process itself). It is its own session
  leader, so a SIGKILL of its group cannot reach the parent, and :meth:`NetnsProcess.stop`
  only ever signals that process group.
* Readiness is one JSON object on one line of the child's **stdout**, written once it serves
  (sockets bound, devices up); nothing else may go to stdout. :meth:`NetnsProcess.start`
  waits for that line (bounded) and returns the object, or raises :class:`ProcessError` with
  the child's log when it exits or stays silent instead.
* The child's stderr (its log) goes to a file the caller names, so a long run never blocks
  on a full pipe and the log survives the process.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .netns import DEFAULT_TIMEOUT, netns_path

__all__ = ["NetnsProcess", "ProcessError", "announce_ready"]


class ProcessError(RuntimeError):
    """The process did not become ready (it exited, wrote something else, or timed out)."""


def announce_ready(info: dict[str, Any]) -> None:
    """In the child: tell the parent we serve (one JSON line on stdout), then stay off stdout."""
    sys.stdout.write(json.dumps({"ready": True, **info}) + "\n")
    sys.stdout.flush()


class NetnsProcess:
    """``python -m module args`` inside namespace ``netns``; use as a context manager or call
    :meth:`start` and :meth:`stop`."""

    def __init__(self, netns: str, module: str, args: Sequence[str], *, log_path: Path) -> None:
        netns_path(netns)  # validates the name before it reaches a command line
        self.netns = netns
        self.module = module
        self.argv = ["ip", "netns", "exec", netns, sys.executable, "-m", module, *args]
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Start the process and wait up to ``timeout`` s for its readiness line; returns it."""
        if self.process is not None:
            raise ProcessError(f"{self.module} in {self.netns} already started")
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=self._log, start_new_session=True, close_fds=True
        )
        try:
            line = self._read_line(timeout)
            info = json.loads(line)
            if not isinstance(info, dict) or info.get("ready") is not True:
                raise ProcessError(f"unexpected first line {line!r}")
        except (ProcessError, ValueError) as exc:
            self.stop()
            raise ProcessError(f"{self.module} in {self.netns} did not start: {exc}\n{self.log()}") from None
        self.ready = info
        return info

    def _read_line(self, timeout: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        deadline = time.monotonic() + timeout
        buffered = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in buffered:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProcessError(f"no readiness line within {timeout} s")
                if selector.select(left):
                    chunk = os.read(stdout.fileno(), 4096)
                    if not chunk:
                        raise ProcessError(f"exited with {self.process.wait(5)} before it was ready")
                    buffered += chunk
        return buffered.split(b"\n", 1)[0].decode(errors="replace")

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        if self._log is not None and not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig`` (SIGTERM), wait up to ``timeout`` s, then SIGKILL the process group.
        Returns the exit code (negative: killed by that signal); None if never started."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # our own session: nothing else is in it
                process.wait(5)
        if process.stdout is not None:
            process.stdout.close()
        if self._log is not None:
            self._log.close()
        return process.returncode

    def __enter__(self) -> NetnsProcess:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
