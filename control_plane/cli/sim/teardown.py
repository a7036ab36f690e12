"""``sim down``: stop every process, remove every namespace (and so every link), prove nothing is left.

Every process includes the MQTT broker (SIGTERM: it saves its persistence file, which stays in
the state directory's ``mqtt/`` with the logs).

Works from whatever the state file holds, so also after a crashed or interrupted ``up``:
processes are found by their records *and* by looking inside our namespaces, namespaces by
their recorded names *and* by the simulation's name pattern (``ecsim-<role>-<suffix>``).
Idempotent: once down, the state file is renamed ``last-state.json``, and a second ``down``
only verifies again that none of that simulation's namespaces or processes exist.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from edge_sites.sim.netns import list_namespaces

from .network import our_namespaces, sweep_namespaces
from .plan import PREFIX
from .procs import alive, stop_all
from .state import STATE_FILE, SimState, StateError

__all__ = ["LAST_STATE", "TeardownReport", "tear_down"]

LAST_STATE: Final = "last-state.json"


@dataclass(slots=True)
class TeardownReport:
    directory: Path
    #: No state at all in the directory (nothing was ever up there, or it was already down).
    nothing_to_do: bool = False
    stopped: list[str] = field(default_factory=list)
    strays: list[int] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: What is still there (each a line for the user); empty when everything is gone.
    left: list[str] = field(default_factory=list)
    #: Namespaces of the simulator that belong to other state directories (left alone).
    others: list[str] = field(default_factory=list)
    suffix: str | None = None

    @property
    def clean(self) -> bool:
        return not self.left

    def lines(self) -> list[str]:
        out = []
        if self.nothing_to_do:
            out.append(f"nothing is up in {self.directory}")
        if self.stopped:
            out.append(f"stopped {len(self.stopped)} processes: {', '.join(self.stopped)}")
        if self.strays:
            out.append(f"killed {len(self.strays)} other processes found inside the namespaces: {self.strays}")
        if self.removed:
            out.append(f"removed {len(self.removed)} namespaces (their links with them)")
        if self.left:
            out += ["NOT CLEAN, still there:", *(f"  {line}" for line in self.left)]
        elif self.suffix is not None:
            out.append(f"verified: no namespace {PREFIX}-*-{self.suffix} and no process of this simulation is left")
        if self.others:
            out.append(f"(left alone, not from {self.directory}: {', '.join(self.others)})")
        return out


def _verify(state: SimState, report: TeardownReport) -> None:
    for name in sorted(our_namespaces(state.suffix)):
        report.left.append(f"namespace {name}")
    for record in state.all_processes():
        if alive(record):
            report.left.append(f"process {record.name} (pid {record.pid})")


def tear_down(directory: Path, say: Callable[[str], None]) -> TeardownReport:
    """Take down the simulation in ``directory`` (the caller holds its lock)."""
    report = TeardownReport(directory)
    try:
        state = SimState.load(directory)
    except StateError:
        try:  # already down: verify again what the last one left (nothing)
            state = SimState.load_file(directory / LAST_STATE)
        except StateError:
            report.nothing_to_do = True
            report.others = sorted(n for n in list_namespaces() if n.startswith(f"{PREFIX}-"))
            return report
        report.nothing_to_do = True
        report.suffix = state.suffix
        _verify(state, report)
        report.others = sorted(n for n in list_namespaces() if n.startswith(f"{PREFIX}-") and n not in report.left)
        return report
    report.suffix = state.suffix
    running = [r for r in state.all_processes() if alive(r)]
    if running:
        say(f"stopping {len(running)} processes (SIGTERM, then SIGKILL after 5 s)")
    # The broker last: the agents' last words ("offline", stopped) reach it, and none of them
    # spends its stop time trying to reach a broker that is gone.
    broker = [r for r in running if r is state.broker]
    still = stop_all([r for r in running if r is not state.broker]) + stop_all(broker)
    report.stopped = [r.name for r in running if r not in still]
    names = set(state.namespaces.values()) | our_namespaces(state.suffix)
    if names:
        say(f"removing {len(names)} namespaces")
    sweep = sweep_namespaces(names)
    report.strays, report.removed = sweep.strays, sweep.removed
    _verify(state, report)
    report.left += [f"process {pid} still inside or holding a removed namespace" for pid in sweep.left_pids]
    report.others = sorted(n for n in list_namespaces() if n.startswith(f"{PREFIX}-") and n not in names)
    if report.clean:
        for socket_file in [directory / "api.sock", *directory.glob("gnb-*.sock")]:
            with contextlib.suppress(FileNotFoundError):
                socket_file.unlink()
        os.replace(directory / STATE_FILE, directory / LAST_STATE)
    return report
