"""``sim status``: are the processes alive, are the UPFs associated and healthy, where are the sessions.

Beside each UPF's PFCP association and health (the control plane's API) it shows the UPF's
MQTT status as the broker holds it (the retained ``.../status``, read as the viewer): "online",
or "offline" with its reason (``connection-lost`` is the Last Will: the agent died or lost its
link to the broker), or "-" when the broker holds none. Everything is OK only when every UPF is
online over MQTT too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from control_plane.api.client import ApiClient, Unreachable
from control_plane.provisioning.status import UpfStatusView
from edge_sites.sim.netns import list_namespaces

from ..api_output import columns
from .broker import BrokerError, upf_statuses
from .plan import SimPlan
from .procs import alive
from .state import SimState

__all__ = ["BrokerStatus", "ProcessStatus", "SimStatus", "gather_status"]


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    name: str
    netns: str
    pid: int
    alive: bool


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """The MQTT broker: where, whether it runs, and why its statuses could not be read (if so)."""

    address: str
    netns: str
    pid: int
    alive: bool
    error: str | None = None


@dataclass(slots=True)
class SimStatus:
    directory: str
    phase: str
    processes: list[ProcessStatus]
    missing_namespaces: list[str]
    upfs: list[UpfStatusView] = field(default_factory=list)
    #: site -> session state -> count, as the API lists them.
    sessions: dict[str, dict[str, int]] = field(default_factory=dict)
    api_error: str | None = None
    broker: BrokerStatus | None = None
    #: Node ID -> the UPF's retained MQTT status payload (absent: the broker holds none).
    mqtt: dict[str, dict[str, Any]] = field(default_factory=dict)

    def mqtt_state(self, node_id: str) -> str:
        """``online``, ``offline (<reason>)`` or ``-`` (no status)."""
        status = self.mqtt.get(node_id)
        if status is None:
            return "-"
        return str(status["state"]) if status["state"] == "online" else f"{status['state']} ({status['reason']})"

    @property
    def ok(self) -> bool:
        """Everything up: every process and the broker alive, every namespace there, every UPF
        associated, up and online over MQTT."""
        return (
            self.phase == "up"
            and self.api_error is None
            and not self.missing_namespaces
            and all(p.alive for p in self.processes)
            and self.broker is not None
            and self.broker.alive
            and self.broker.error is None
            and bool(self.upfs)
            and all(u.association == "associated" and u.health == "up" for u in self.upfs)
            and all(self.mqtt_state(u.node_id) == "online" for u in self.upfs)
        )

    def render(self) -> str:
        def by_state(counts: dict[str, int]) -> str:
            return ", ".join(f"{state} {n}" for state, n in sorted(counts.items())) or "-"

        parts = [f"simulation in {self.directory}: {self.phase}"]
        procs = [(p.name, p.netns, p.pid, "yes" if p.alive else "NO") for p in self.processes]
        parts.append(columns(("process", "namespace", "pid", "alive"), procs))
        broker = self.broker
        if broker is None:
            parts.append("MQTT broker: none recorded")
        else:
            line = f"MQTT broker: mosquitto on {broker.address} in {broker.netns}, pid {broker.pid}, "
            parts.append(
                line + ("alive" if broker.alive else "NOT running") + (f": {broker.error}" if broker.error else "")
            )
        if self.missing_namespaces:
            parts.append("missing namespaces: " + ", ".join(self.missing_namespaces))
        if self.api_error is not None:
            parts.append(f"control plane API: {self.api_error}")
        else:
            upfs = [
                (u.site, u.node_id, u.association, u.health, self.mqtt_state(u.node_id), u.admin_state,
                 by_state(u.sessions))
                for u in self.upfs
            ]  # fmt: skip
            headers = ("site", "upf", "association", "health", "mqtt", "admin", "sessions")
            parts.append(columns(headers, upfs) if upfs else "no UPF provisioned yet")
            totals = [(site, sum(counts.values()), by_state(counts)) for site, counts in self.sessions.items()]
            parts.append(columns(("site", "sessions", "by state"), totals) if totals else "no sessions")
        parts.append("status: " + ("OK" if self.ok else "DEGRADED"))
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "phase": self.phase,
            "ok": self.ok,
            "processes": [{"name": p.name, "netns": p.netns, "pid": p.pid, "alive": p.alive} for p in self.processes],
            "missing_namespaces": self.missing_namespaces,
            "upfs": [
                {
                    "node_id": u.node_id,
                    "site": u.site,
                    "association": u.association,
                    "health": u.health,
                    "mqtt": self.mqtt.get(u.node_id),
                    "admin_state": u.admin_state,
                    "sessions": u.sessions,
                }
                for u in self.upfs
            ],
            "sessions": self.sessions,
            "api_error": self.api_error,
            "broker": None if self.broker is None else {
                "address": self.broker.address, "netns": self.broker.netns, "pid": self.broker.pid,
                "alive": self.broker.alive, "error": self.broker.error,
            },
        }  # fmt: skip


async def gather_status(state: SimState, plan: SimPlan) -> SimStatus:
    present = list_namespaces()
    status = SimStatus(
        directory=str(state.directory),
        phase=state.phase,
        processes=[ProcessStatus(p.name, p.netns, p.pid, alive(p)) for p in state.processes],
        missing_namespaces=sorted(n for n in state.namespaces.values() if n not in present),
    )
    if state.broker is not None:
        running = alive(state.broker)
        error = None
        if running:
            try:
                nodes = [s.node_id for s in plan.sites]
                status.mqtt = await asyncio.to_thread(upf_statuses, state, nodes)
            except (TimeoutError, BrokerError) as exc:
                error = f"statuses unreadable: {exc}"
        status.broker = BrokerStatus(plan.mqtt_endpoint(), state.broker.netns, state.broker.pid, running, error)
    site_order = [s.name for s in plan.sites]
    try:
        async with ApiClient(state.api_target, timeout=5.0) as api:
            status.upfs = (await api.status.status()).upfs
            counts: dict[str, Counter[str]] = {}
            async for view in api.sessions.iter_sessions():
                counts.setdefault(view.site or "(none)", Counter())[view.state] += 1
    except Unreachable as exc:
        status.api_error = f"unreachable ({exc})"
        return status
    order = {site: i for i, site in enumerate(site_order)}
    for site in sorted(counts, key=lambda s: order.get(s, len(order))):
        status.sessions[site] = dict(counts[site])
    return status
