"""The simulation's processes: started detached inside namespaces, found again later by PID.

* :func:`launch` runs ``ip netns exec NS ARGV`` (which execs, so the PID is the program's) in a
  new session with stdin from /dev/null and stdout and stderr in files: the process outlives
  ``sim up`` and holds no pipe of its caller (a caller capturing our output would otherwise
  wait for it forever). Unlike :class:`edge_sites.sim.process.NetnsProcess`, which keeps the
  child's stdout as a pipe, the readiness line is read back from the stdout file.
* A process is ours only if its start time still matches the record (:func:`alive`): a PID
  recycled after our process died is never signalled.
* :func:`stop_all` signals process *groups* (each process leads its own), SIGTERM first and
  SIGKILL after the grace period, and reaps children of the calling process.
* :func:`netns_pids` finds every process inside a namespace (``ip netns pids``), which catches
  anything a record missed (a crash between a start and its record).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from .state import ProcessRecord

__all__ = [
    "ReadinessError",
    "alive",
    "kill_pids",
    "launch",
    "log_tail",
    "netns_pids",
    "python_argv",
    "stop_all",
    "wait_ready_line",
]

_POLL: Final = 0.05


class ReadinessError(RuntimeError):
    """A process exited or stayed silent instead of becoming ready; the message has its log."""


def python_argv(*args: str) -> list[str]:
    """This interpreter running ``args`` (``-m module ...``): the venv's, wherever PATH points."""
    return [sys.executable, *args]


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time), or None if no such live process (zombies count as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


#: Processes this interpreter started, by PID.
_CHILDREN: Final[dict[int, subprocess.Popen[bytes]]] = {}


def _reap(pid: int) -> None:
    # Our own children (the same process ran up and down: tests) would stay zombies otherwise.
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]


def launch(name: str, netns: str, argv: Sequence[str], directory: Path) -> ProcessRecord:
    """Start ``argv`` inside ``netns``; logs in ``directory/<name>.log`` (stderr) and ``.out`` (stdout)."""
    stem = name.replace("/", "-")
    log, out = directory / f"{stem}.log", directory / f"{stem}.out"
    with open(log, "wb") as err_file, open(out, "wb") as out_file:
        process = subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out_file,
            stderr=err_file,
            start_new_session=True,
            close_fds=True,
        )
    ticks = _start_ticks(process.pid)
    # Kept so that this process can reap it (and Popen does not warn about a running child
    # when collected); later invocations have only the record, and the child is init's then.
    _CHILDREN[process.pid] = process
    return ProcessRecord(name, netns, process.pid, ticks or 0, tuple(argv), str(log), str(out))


def alive(record: ProcessRecord) -> bool:
    _reap(record.pid)
    ticks = _start_ticks(record.pid)
    return ticks is not None and ticks == record.start_ticks


def log_tail(record: ProcessRecord, lines: int = 15) -> str:
    text = ""
    for path in (record.log, record.out):
        try:
            text += Path(path).read_text(errors="replace")
        except OSError:
            continue
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in tail) or "    | (no output)"


def wait_ready_line(record: ProcessRecord, deadline: float) -> dict[str, Any]:
    """The JSON readiness line the process writes on stdout (edge_sites.sim.process.announce_ready)."""
    out = Path(record.out)
    while True:
        text = out.read_text(errors="replace") if out.exists() else ""
        if "\n" in text:
            line = text.split("\n", 1)[0]
            try:
                info = json.loads(line)
            except ValueError:
                info = None
            if isinstance(info, dict) and info.get("ready") is True:
                return info
            raise ReadinessError(f"{record.name}: unexpected first line {line!r}\n{log_tail(record)}")
        if not alive(record):
            raise ReadinessError(f"{record.name} exited before it was ready:\n{log_tail(record)}")
        if time.monotonic() > deadline:
            raise ReadinessError(f"{record.name} not ready in time:\n{log_tail(record)}")
        time.sleep(_POLL)


def _signal_group(record: ProcessRecord, sig: int) -> None:
    try:
        os.killpg(record.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # not a group leader any more (cannot happen for a live record): the PID alone
        os.kill(record.pid, sig)


def stop_all(records: Iterable[ProcessRecord], grace: float = 5.0) -> list[ProcessRecord]:
    """SIGTERM every live record's group, SIGKILL what is left after ``grace`` s; the records
    that still live after that (should be none)."""
    running = [r for r in records if alive(r)]
    for record in running:
        _signal_group(record, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while running and time.monotonic() < deadline:
        time.sleep(_POLL)
        running = [r for r in running if alive(r)]
    for record in running:
        _signal_group(record, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while running and time.monotonic() < deadline:
        time.sleep(_POLL)
        running = [r for r in running if alive(r)]
    return running


def netns_pids(netns: str) -> set[int]:
    """Every process inside namespace ``netns`` (empty if the namespace is gone)."""
    done = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=10, check=False)
    return {int(word) for word in done.stdout.split() if word.isdigit()} if done.returncode == 0 else set()


def kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL processes found inside our namespaces that no record names, then reap them."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        _reap(pid)  # only reaps a child of ours; init reaps the others
