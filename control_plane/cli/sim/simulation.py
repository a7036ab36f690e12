"""The :class:`Simulation` object: what ``edgecups sim`` commands and the end-to-end tests drive.

A simulation lives in its state directory, not in a Python object: :meth:`Simulation.up`
builds it and returns a handle, :meth:`Simulation.load` returns a handle to one built by
another process, and :meth:`Simulation.down` removes it (also one whose ``up`` crashed). The
handle reads the state file; the operations that change it (``up``, ``down``, restarting a
process) rewrite it, so a later ``edgecups sim`` command sees what the tests did.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from control_plane.api.client import ApiClient, Unreachable
from control_plane.services.views import SessionView
from edge_sites.sim.gnb_control import GnbClient
from edge_sites.sim.mosquitto import VIEWER_USER, wait_listening
from edge_sites.sim.mqtt_watch import Collector
from edge_sites.sim.netns import run_in_netns
from edge_sites.sim.topology import SimTopology

from .bringup import START_TIMEOUT, bring_up, process_argv
from .broker import MQTT_NODE, BrokerError, MqttTarget, mosquitto_missing, mqtt_target, upf_statuses, wait_online
from .network import our_namespaces
from .plan import MQTT_ADDRESS, MQTT_PORT, SimPlan, build_plan
from .privileges import missing_privileges
from .procs import ReadinessError, alive, launch, log_tail, stop_all, wait_ready_line
from .provision import NOT_SERVING_YET, attach_sessions, wait_associated
from .state import DEFAULT_STATE_DIR, MARKER, STATE_FILE, ProcessRecord, SimSession, SimState, locked
from .status import SimStatus, gather_status
from .teardown import TeardownReport, tear_down
from .traffic_run import SessionResult, TrafficOptions, TrafficReport, run_traffic

__all__ = ["Progress", "SimError", "Simulation"]

T = TypeVar("T")
Progress = Callable[[str], None]


class SimError(RuntimeError):
    """The simulation cannot do what was asked; ``lines`` say why (and what to do)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _quiet(_: str) -> None:
    pass


#: The longest state directory path: the gNBs' control sockets live there, and a unix socket
#: path holds at most 107 octets ("/gnb-" + a 24-character site name + ".sock" is 34).
MAX_STATE_DIR: Final = 107 - 34


def _prepare(directory: Path) -> None:
    """An empty directory, or one of ours whose simulation is down (its files are cleared)."""
    if len(str(directory).encode()) > MAX_STATE_DIR:
        raise SimError([f"--state-dir {directory}: longer than {MAX_STATE_DIR} octets, too long for the "
                        "unix sockets the simulation keeps there; choose a shorter path"])  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (directory / STATE_FILE).exists():
        raise SimError([f"a simulation is already in {directory} (its {STATE_FILE} exists)",
                        f"run `edgecups sim down --state-dir {directory}` first"])  # fmt: skip
    entries = [p for p in directory.iterdir() if p.name != ".lock"]
    if entries and not (directory / MARKER).exists():
        raise SimError([f"{directory} is not empty and not a simulation state directory: refusing to use it"])
    for path in entries:
        if path.is_dir():
            for inner in path.iterdir():
                inner.unlink()
            path.rmdir()
        else:
            path.unlink()
    (directory / MARKER).write_text("a state directory of `edgecups sim`; `sim up` clears it\n")


class Simulation:
    """A running simulation (see the module docstring); ``with Simulation.up(...) as sim:`` downs it after."""

    def __init__(self, state: SimState, progress: Progress | None = None) -> None:
        self.state = state
        self.plan: SimPlan = build_plan(state.topology)
        self.say: Progress = progress or _quiet

    # -- life cycle ----------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        topology: SimTopology,
        state_dir: Path = DEFAULT_STATE_DIR,
        *,
        progress: Progress | None = None,
        keep_on_failure: bool = False,
    ) -> Simulation:
        """Build and start everything, provision through the API, open and attach every session.

        On failure (also Ctrl-C) everything is torn down again unless ``keep_on_failure``, and
        :class:`SimError` says which step failed, with the log of the process concerned."""
        needs = missing_privileges()
        if needs is not None:
            raise SimError(needs)
        missing = mosquitto_missing()
        if missing is not None:  # telemetry is part of the deployment: no broker, no simulation
            raise SimError([f"edgecups sim runs the deployment's MQTT broker: {missing}", "nothing was built"])
        say = progress or _quiet
        state_dir = state_dir.absolute()  # it goes into configurations that other processes read
        with locked(state_dir):
            _prepare(state_dir)
            suffix = secrets.token_hex(2)
            while our_namespaces(suffix):  # a suffix another simulation uses: never share names
                suffix = secrets.token_hex(2)
            state = SimState(state_dir, suffix, topology)
            state.save()  # before the first namespace: `down` can always find what follows
            sim = cls(state, say)
            try:
                bring_up(state, sim.plan, say)
            except BaseException as exc:
                state.phase = "failed"
                state.save()
                lines = [f"sim up failed: {type(exc).__name__}: {exc}".rstrip()]
                for record in state.all_processes():  # the ones that died hold the reason in their logs
                    told = isinstance(exc, ReadinessError) and str(exc).startswith(record.name)  # has its log
                    if not alive(record) and not told:
                        lines += [f"{record.name} exited; the end of its log ({record.log}):", log_tail(record)]
                if not keep_on_failure:
                    say("tearing down what was built")
                    report = tear_down(state_dir, say)
                    lines += report.lines()
                else:
                    lines.append(f"left as it is (--keep-on-failure): inspect {state_dir}, then `edgecups sim down`")
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise SimError(lines) from exc
        return sim

    @classmethod
    def load(cls, state_dir: Path = DEFAULT_STATE_DIR, *, progress: Progress | None = None) -> Simulation:
        """A handle on the simulation another process (or this one) brought up in ``state_dir``."""
        return cls(SimState.load(state_dir.absolute()), progress)

    @staticmethod
    def down(state_dir: Path = DEFAULT_STATE_DIR, *, progress: Progress | None = None) -> TeardownReport:
        """Stop and remove everything of the simulation in ``state_dir``; verified, idempotent."""
        needs = missing_privileges()
        if needs is not None:
            raise SimError(needs)
        if not state_dir.is_dir():  # nothing was ever up there; the lock would create the directory
            return tear_down(state_dir.absolute(), progress or _quiet)
        with locked(state_dir):
            return tear_down(state_dir.absolute(), progress or _quiet)

    def __enter__(self) -> Simulation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        report = self.down(self.state.directory, progress=self.say)
        if not report.clean and exc is None:
            raise SimError(report.lines())

    # -- what the commands show ----------------------------------------------------------

    def status(self) -> SimStatus:
        return asyncio.run(gather_status(self.state, self.plan))

    def traffic(
        self, options: TrafficOptions | None = None, sessions: Sequence[SimSession] | None = None
    ) -> TrafficReport:
        """Traffic from every session (or those given), every check (see :mod:`.traffic_run`), the
        per-site table. A session's traffic leaves from the gNB of its ``ue_site``."""
        results = self.results_for(list(self.state.sessions if sessions is None else sessions))
        gnbs = {s.name: self.netns(f"gnb/{s.name}") for s in self.plan.sites if s.gnb_role is not None}
        kinds: dict[str, str] = {s.name: s.site.kind for s in self.plan.sites}
        return run_traffic(results, gnbs, kinds, options or TrafficOptions(), self.say)

    def results_for(self, sessions: list[SimSession]) -> list[SessionResult]:
        """Fresh results for ``sessions``: their state and site as the API has them now."""
        views: dict[tuple[str, int], SessionView] | None
        try:
            views = asyncio.run(self._views())
        except Unreachable:
            views = None
        ues = {ue.supi: ue for ue in self.plan.ues()}
        results = []
        for s in sessions:
            view = views.get((s.supi, s.pdu_session_id)) if views is not None else None
            ue = ues[s.supi]
            if s.ue_site != ue.site:  # handed over (record_session): placed from where the UE is now
                ue = dataclasses.replace(ue, site=s.ue_site)
            expected = frozenset(self.plan.expected_sites(ue, s.dnn))
            if views is None:
                results.append(SessionResult(s, None, s.site, expected, api_answered=False))
            else:
                results.append(SessionResult(s, view.state if view else None, view.site if view else None, expected))
        return results

    async def _views(self) -> dict[tuple[str, int], SessionView]:
        async with self.api(timeout=10.0) as api:
            return {(v.supi, v.pdu_session_id): v async for v in api.sessions.iter_sessions()}

    # -- building blocks for tests -------------------------------------------------------

    @property
    def sessions(self) -> list[SimSession]:
        """Every UE session as recorded (at ``up``, or by :meth:`record_session`)."""
        return list(self.state.sessions)

    def session(self, supi: str, dnn: str) -> SimSession:
        for s in self.state.sessions:
            if (s.supi, s.dnn) == (supi, dnn):
                return s
        raise KeyError(f"no session of {supi} on {dnn}")

    def record_session(self, session: SimSession) -> None:
        """Replace the record of a session (same SUPI and PDU session ID) after a test changed it
        (a handover: ``dataclasses.replace(s, ue_site=..., gnb_teid=..., ...)``), for later commands."""
        key = (session.supi, session.pdu_session_id)
        at = [i for i, s in enumerate(self.state.sessions) if (s.supi, s.pdu_session_id) == key]
        if not at:
            raise KeyError(f"no session {key}")
        self.state.sessions[at[0]] = session
        self.state.save()

    @property
    def api_target(self) -> str:
        """``unix:PATH`` of the control plane's API (plaintext: a unix socket)."""
        return self.state.api_target

    def api(self, timeout: float = 30.0) -> ApiClient:
        """A client of the control plane's API; use it inside a coroutine (``async with sim.api() as api``)."""
        return ApiClient(self.api_target, timeout=timeout)

    def netns(self, node: str) -> str:
        """Kernel namespace of a node: ``cp``, ``n3``, ``upf/SITE``, ``dn/SITE``, ``gnb/SITE``."""
        try:
            return self.state.namespaces[node]
        except KeyError:
            raise KeyError(f"no node {node!r} (known: {', '.join(self.state.namespaces)})") from None

    def run_in(self, node: str, fn: Callable[[], T], timeout: float = 60.0) -> T:
        """``fn()`` in a thread inside a node's namespace (a UE's sockets: ``gnb/SITE``)."""
        return run_in_netns(self.netns(node), fn, timeout)

    def gnb(self, site: str) -> GnbClient:
        """A client of the site's gNB control socket (attach, detach, move, counters); close it after use."""
        return GnbClient(self.state.directory / f"gnb-{site}.sock")

    def process(self, name: str) -> ProcessRecord:
        return self.state.process(name)

    def alive(self, name: str) -> bool:
        return alive(self.state.process(name))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a process's group. SIGKILL (a crash: no clean-up of any kind) and
        SIGTERM then wait until it is gone (SIGTERM becomes SIGKILL after 10 s)."""
        record = self.state.process(name)
        if alive(record):
            os.killpg(record.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            stop_all([record], grace=10.0)

    def start(self, name: str, *, wait: bool = True) -> ProcessRecord:
        """(Re)start a process as ``up`` started it (stopping it first if it runs); with ``wait``,
        until it serves: a gNB gets its sessions attached again, the control plane its API up,
        a UPF agent its association and its MQTT status "online" for the new run, the broker
        (``mqtt``) its listener."""
        record = self.state.process(name)
        stop_all([record])
        record = launch(name, record.netns, process_argv(name, self.state.directory, self.plan), self.state.directory)
        self.state.replace_process(record)
        if not wait:
            return record
        deadline = time.monotonic() + START_TIMEOUT
        try:
            if name.startswith(("gnb/", "dn/")):
                wait_ready_line(record, deadline)
            if name.startswith("gnb/"):
                site = name.partition("/")[2]
                mine = [s for s in self.state.sessions if s.ue_site == site]
                attach_sessions(mine, {site: self.state.directory / f"gnb-{site}.sock"})
            elif name == "cp" or name.startswith("upf/"):
                asyncio.run(self._wait_serving(name, deadline))
            if name.startswith("upf/"):
                node = self.plan.site(name.partition("/")[2]).node_id
                wait_online(self.state, {node: asyncio.run(self._stamp(node))}, deadline)
            elif name == MQTT_NODE:
                wait_listening(*self.mqtt_address(), deadline, netns=record.netns,
                               still_running=lambda: alive(record))  # fmt: skip
        except (ReadinessError, RuntimeError, *NOT_SERVING_YET) as exc:
            raise SimError([f"{name} did not come back: {exc}", log_tail(record)]) from exc
        return record

    async def _wait_serving(self, name: str, deadline: float) -> None:
        nodes = {s.node_id for s in self.plan.sites}
        if name.startswith("upf/"):
            nodes = {self.plan.site(name.partition("/")[2]).node_id}
        async with self.api() as api:
            while True:
                try:
                    await wait_associated(api, nodes, deadline, lambda: [] if self.alive(name) else [name])
                    return
                except NOT_SERVING_YET:
                    if time.monotonic() > deadline or not self.alive(name):
                        raise
                    await asyncio.sleep(0.2)

    async def _stamp(self, node_id: str) -> int | None:
        async with self.api() as api:
            return next(u.recovery_time_stamp for u in (await api.status.status()).upfs if u.node_id == node_id)

    # -- telemetry -----------------------------------------------------------------------

    def mqtt_address(self) -> tuple[str, int]:
        """The broker's address and port (reachable inside the namespaces only: ``mqtt_target``)."""
        return str(MQTT_ADDRESS), MQTT_PORT

    def mqtt_target(self, user: str = VIEWER_USER) -> MqttTarget:
        """The broker, its namespace and ``user``'s credentials (the viewer reads everything;
        ``edgecups-cp`` and each site name are the other users)."""
        return mqtt_target(self.state, user)

    def mqtt_collector(self, topics: tuple[str, ...] = ("edgecups/v1/#",)) -> Collector:
        """The viewer subscribed to ``topics`` from now on (retained messages first): every message
        it receives, to wait on with ``wait_for``; close it after use (``with``)."""
        return self.mqtt_target().collector(topics)

    def mqtt_statuses(self, timeout: float = 3.0) -> dict[str, dict[str, Any]]:
        """Each UPF's retained MQTT status now (node ID -> payload); BrokerError when unreadable."""
        try:
            return upf_statuses(self.state, [s.node_id for s in self.plan.sites], timeout)
        except TimeoutError as exc:
            raise BrokerError(str(exc)) from None

    def leftovers(self) -> list[str]:
        """This simulation's namespaces that exist now (for a test's "nothing left" check)."""
        return sorted(our_namespaces(self.state.suffix))
