"""``sim up``, step by step: namespaces, database, processes, manifests, associations, sessions.

Every process starts detached (``procs.launch``) and is recorded in the state file at once;
the order of the waits is the order of dependencies: the MQTT broker first (listening before
anyone connects, so every agent's first status is "online" at once), the gNBs and DN servers
announce readiness themselves, the control plane when its API answers, the UPF agents when the
control plane has associated with them (which needs their UPF objects, so the manifests come
first: applying a UPF makes the control plane associate with it) and their retained MQTT status
says "online" for that run. The caller tears everything down when a step fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import yaml

from control_plane.api.client import ApiClient
from edge_sites.sim.gnb_config import GnbConfig

from .broker import MQTT_NODE, broker_argv, prepare_broker, start_broker, wait_online
from .network import build_network
from .plan import SimPlan
from .procs import alive, launch, python_argv, wait_ready_line
from .provision import (
    apply_manifests,
    attach_sessions,
    establish_sessions,
    wait_api,
    wait_associated,
    write_manifests,
)
from .state import SimState

__all__ = ["STEPS", "bring_up", "process_argv"]

STEPS: Final = 7
#: Bound on each wait: two cores starting a dozen Python processes at once take ~10 s.
START_TIMEOUT: Final = 90.0


class _Steps:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.number = 0

    @contextlib.contextmanager
    def __call__(self, text: str) -> Iterator[None]:
        self.number += 1
        started = time.monotonic()
        self.say(f"[{self.number}/{STEPS}] {text}")
        yield
        self.say(f"      ok ({time.monotonic() - started:.1f} s)")


def process_argv(name: str, directory: Path, plan: SimPlan) -> list[str]:
    """The command line of a simulation process by node name (``cp``, ``upf/SITE``, ``dn/SITE``, ``gnb/SITE``)."""
    cli = ["-m", "control_plane.cli.main"]
    if name == MQTT_NODE:
        return broker_argv(directory)
    if name == "cp":
        return python_argv(*cli, "cp", "--config", str(directory / "cp.yaml"))
    kind, _, site = name.partition("/")
    if kind == "upf":
        return python_argv(*cli, "upf", "--config", str(directory / f"upf-{site}.yaml"))
    if kind == "dn":
        return python_argv("-m", "edge_sites.sim.traffic", "serve", "--address", str(plan.site(site).server))
    if kind == "gnb":
        return python_argv("-m", "edge_sites.sim.gnb", "--config", str(directory / f"gnb-{site}.yaml"))
    raise KeyError(f"no process {name!r}")


def _write_configs(plan: SimPlan, directory: Path) -> None:
    def dump(name: str, data: object) -> None:
        (directory / name).write_text(yaml.safe_dump(data, sort_keys=False))

    dump("cp.yaml", plan.cp_config(directory))
    for site in plan.sites:
        dump(f"upf-{site.name}.yaml", plan.agent_config(site, directory))
        if site.gnb_role is not None:
            config: GnbConfig = plan.gnb_config(site, directory)
            dump(f"gnb-{site.name}.yaml", config.to_dict())


def bring_up(state: SimState, plan: SimPlan, say: Callable[[str], None]) -> None:
    """Run every step of ``up`` on a fresh state (already saved with its suffix)."""
    step = _Steps(say)
    directory = state.directory
    spec = plan.network()
    with step(f"network: {len(spec.namespaces)} namespaces, {len(spec.links)} veth links, N3 router"):
        state.namespaces = build_network(plan, state.suffix)
        state.save()
        say(f"      control plane in {state.namespaces['cp']}, N3 router in {state.namespaces['n3']}")
    with step(f"configurations, MQTT users, database: SQLite {directory / 'cp.db'}, migrations"):
        _write_configs(plan, directory)
        prepare_broker(plan, directory)
        from db.engine import upgrade  # here: alembic would add 0.4 s to every `edgecups` command

        upgrade(plan.cp_config(directory)["database"]["url"])
    names = ["cp", *(f"upf/{s.name}" for s in plan.sites), *(f"dn/{s.name}" for s in plan.sites),
             *(f"gnb/{s.name}" for s in plan.sites if s.gnb_role is not None)]  # fmt: skip
    with step(f"processes: MQTT broker, control plane, {len(plan.sites)} UPF agents, {len(plan.sites)} DN servers, "
              f"{sum(1 for n in names if n.startswith('gnb/'))} gNB simulators"):  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        broker = start_broker(state, deadline)
        say(f"      MQTT broker (mosquitto) on {plan.mqtt_endpoint()} in {broker.netns}; users in {directory / 'mqtt'}")
        for name in names:
            state.processes.append(launch(name, state.namespaces[name], process_argv(name, directory, plan), directory))
            state.save()
        deadline = time.monotonic() + START_TIMEOUT
        for record in state.processes:
            if record.name.startswith(("dn/", "gnb/")):
                wait_ready_line(record, deadline)
        cp = state.process("cp")
        asyncio.run(_wait_api(state.api_target, deadline, lambda: alive(cp)))
        say(f"      DN servers and gNBs ready, control plane API up; logs in {directory}/*.log")
    asyncio.run(_provision(state, plan, step, say))
    state.phase = "up"
    state.save()


async def _wait_api(target: str, deadline: float, still_running: Callable[[], bool]) -> None:
    async with ApiClient(target, timeout=5.0) as api:
        await wait_api(api, deadline, still_running)


async def _provision(state: SimState, plan: SimPlan, step: _Steps, say: Callable[[str], None]) -> None:
    directory = state.directory
    agents = [state.process(f"upf/{s.name}") for s in plan.sites]
    async with ApiClient(state.api_target, timeout=30.0) as api:
        with step(f"manifests: applying {directory / 'manifests'} through the API ({state.api_target})"):
            changes = await apply_manifests(api, write_manifests(plan, directory / "manifests"))
            kinds: dict[str, int] = {}
            for change in changes:
                kinds[change.kind] = kinds.get(change.kind, 0) + 1
            say("      " + ", ".join(f"{count} {kind}" for kind, count in kinds.items()))
        with step(f"associations: PFCP with {len(agents)} UPF agents, their MQTT status online"):
            dead = lambda: [r.name for r in agents if not alive(r)]  # noqa: E731
            deadline = time.monotonic() + START_TIMEOUT
            await wait_associated(api, {s.node_id for s in plan.sites}, deadline, dead)
            say("      associated and up: " + ", ".join(f"{s.name} {s.node_id}" for s in plan.sites))
            stamps = {u.node_id: u.recovery_time_stamp for u in (await api.status.status()).upfs}
            await asyncio.to_thread(wait_online, state, stamps, deadline)
            say(f"      online over MQTT (retained status, this run): {len(stamps)} UPFs")
        total = sum(len(ue.sessions) for ue in plan.ues())
        with step(f"sessions: {total} PDU sessions for {sum(1 for _ in plan.ues())} UEs through the API"):
            # Quarter marks, for topologies big enough to take a while.
            marks = {total * q // 4 for q in (1, 2, 3)} if total >= 200 else set()

            def progress(done: int, of: int) -> None:
                if done in marks:
                    say(f"      {done}/{of}")

            state.sessions = await establish_sessions(api, plan, progress)
            state.save()
    with step("tunnels: attaching each session on its UE's gNB (N3 GTP-U with QFI)"):
        sockets = {s.name: directory / f"gnb-{s.name}.sock" for s in plan.sites if s.gnb_role is not None}
        attach_sessions(state.sessions, sockets)
