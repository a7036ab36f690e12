"""The simulation's state directory: what ``sim up`` made, for ``status``, ``traffic`` and ``down``.

``state.json`` is written before the first namespace exists and again after every process
starts, so a crashed ``up`` (even SIGKILL) leaves enough for ``down`` to find everything: the
namespace suffix, and each process with its start time (a recycled PID is never signalled).
The MQTT broker is recorded apart from the EdgeCUPS processes (``broker``): it is the
deployment's infrastructure, not one of its nodes, and ``status`` shows it on its own.
Writes are atomic (a temporary file renamed over the old one). ``.lock`` serialises ``up``
and ``down``. The directory also holds the configurations, manifests, logs, the SQLite
database and the sockets, which ``down`` keeps (except the sockets) for a post-mortem.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from edge_sites.sim.topology import SimTopology, parse_topology

__all__ = [
    "DEFAULT_STATE_DIR",
    "MARKER",
    "STATE_FILE",
    "Busy",
    "ProcessRecord",
    "SimSession",
    "SimState",
    "StateError",
    "locked",
]

DEFAULT_STATE_DIR: Final = Path("/run/edgecups-sim")
STATE_FILE: Final = "state.json"
#: A directory holding this file is one the simulator made: ``up`` may clear it.
MARKER: Final = ".edgecups-sim"
_VERSION: Final = 1


class StateError(RuntimeError):
    """No usable state: nothing is up in that directory, or the file is not ours."""


class Busy(RuntimeError):
    """Another ``sim up`` or ``sim down`` holds the directory's lock."""


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A process the simulation started (in its own session: its group is its PID)."""

    name: str
    netns: str
    pid: int
    #: Start time in clock ticks since boot (/proc/PID/stat field 22): tells our PID from a recycled one.
    start_ticks: int
    argv: tuple[str, ...]
    log: str
    #: Where its stdout goes (the readiness line of the gNB and DN servers).
    out: str


@dataclass(frozen=True, slots=True)
class SimSession:
    """A UE's PDU session as created through the API and attached on its gNB."""

    supi: str
    ue_site: str
    dnn: str
    pdu_session_id: int
    #: Where the control plane put it: the UPF's site and Node ID.
    site: str
    upf: str
    ue_ip: str
    qfi: int
    gnb_teid: int
    gnb_address: str
    n3_teid: int
    n3_address: str
    #: The data-network server the session's traffic goes to (at ``site``).
    server: str

    @property
    def label(self) -> str:
        return f"{self.supi}/{self.dnn}"


@dataclass(slots=True)
class SimState:
    """Everything ``up`` made; ``phase`` is building, up or failed."""

    directory: Path
    suffix: str
    topology: SimTopology
    phase: str = "building"
    started_at: float = field(default_factory=time.time)
    namespaces: dict[str, str] = field(default_factory=dict)
    processes: list[ProcessRecord] = field(default_factory=list)
    sessions: list[SimSession] = field(default_factory=list)
    #: The MQTT broker (``mqtt``, in the control plane's namespace); None until it started.
    broker: ProcessRecord | None = None

    @property
    def path(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def api_target(self) -> str:
        return f"unix:{self.directory / 'api.sock'}"

    def all_processes(self) -> list[ProcessRecord]:
        """The EdgeCUPS processes, then the broker: everything ``down`` stops."""
        return [*self.processes, *([self.broker] if self.broker is not None else [])]

    def process(self, name: str) -> ProcessRecord:
        for record in self.all_processes():
            if record.name == name:
                return record
        raise KeyError(f"no process {name!r} (known: {', '.join(p.name for p in self.all_processes())})")

    def replace_process(self, record: ProcessRecord) -> None:
        if self.broker is not None and record.name == self.broker.name:
            self.broker = record
        else:
            self.processes = [p for p in self.processes if p.name != record.name] + [record]
        self.save()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "suffix": self.suffix,
            "phase": self.phase,
            "started_at": self.started_at,
            "topology": self.topology.to_dict(),
            "namespaces": self.namespaces,
            "processes": [asdict(p) for p in self.processes],
            "sessions": [asdict(s) for s in self.sessions],
            "broker": asdict(self.broker) if self.broker is not None else None,
        }

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_dict(), indent=1))
        os.replace(temporary, self.path)

    @classmethod
    def load(cls, directory: Path) -> SimState:
        return cls.load_file(directory / STATE_FILE)

    @classmethod
    def load_file(cls, path: Path) -> SimState:
        directory = path.parent
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise StateError(f"no simulation in {directory} (no {STATE_FILE}): run `edgecups sim up` first") from None
        except (OSError, ValueError) as exc:
            raise StateError(f"{path}: unreadable: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise StateError(f"{path}: not a state file of this version of edgecups sim")
        try:
            return cls(
                directory=directory,
                suffix=str(data["suffix"]),
                topology=parse_topology(data["topology"]),
                phase=str(data["phase"]),
                started_at=float(data["started_at"]),
                namespaces={str(k): str(v) for k, v in data["namespaces"].items()},
                processes=[_record(p) for p in data["processes"]],
                sessions=[SimSession(**s) for s in data["sessions"]],
                broker=None if data.get("broker") is None else _record(data["broker"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"{path}: damaged ({type(exc).__name__}: {exc})") from None


def _record(data: Any) -> ProcessRecord:
    return ProcessRecord(**{**data, "argv": tuple(data["argv"])})


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the directory's lock (non-blocking: a second ``up``/``down`` is refused, not queued)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another `edgecups sim up` or `sim down` is working in {directory}") from None
        yield
