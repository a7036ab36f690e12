"""``sim status``: are the processes alive, are the UPFs associated and healthy, where are the sessions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from control_plane.api.client import ApiClient, Unreachable
from control_plane.provisioning.status import UpfStatusView
from edge_sites.sim.netns import list_namespaces

from ..api_output import columns
from .procs import alive
from .state import SimState

__all__ = ["ProcessStatus", "SimStatus", "gather_status"]


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    name: str
    netns: str
    pid: int
    alive: bool


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

    @property
    def ok(self) -> bool:
        """Everything up: every process alive, every namespace there, every UPF associated and up."""
        return (
            self.phase == "up"
            and self.api_error is None
            and not self.missing_namespaces
            and all(p.alive for p in self.processes)
            and bool(self.upfs)
            and all(u.association == "associated" and u.health == "up" for u in self.upfs)
        )

    def render(self) -> str:
        def by_state(counts: dict[str, int]) -> str:
            return ", ".join(f"{state} {n}" for state, n in sorted(counts.items())) or "-"

        parts = [f"simulation in {self.directory}: {self.phase}"]
        procs = [(p.name, p.netns, p.pid, "yes" if p.alive else "NO") for p in self.processes]
        parts.append(columns(("process", "namespace", "pid", "alive"), procs))
        if self.missing_namespaces:
            parts.append("missing namespaces: " + ", ".join(self.missing_namespaces))
        if self.api_error is not None:
            parts.append(f"control plane API: {self.api_error}")
        else:
            upfs = [
                (u.site, u.node_id, u.association, u.health, u.admin_state, by_state(u.sessions)) for u in self.upfs
            ]
            headers = ("site", "upf", "association", "health", "admin", "sessions")
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
                    "admin_state": u.admin_state,
                    "sessions": u.sessions,
                }
                for u in self.upfs
            ],
            "sessions": self.sessions,
            "api_error": self.api_error,
        }


async def gather_status(state: SimState, site_order: list[str]) -> SimStatus:
    present = list_namespaces()
    status = SimStatus(
        directory=str(state.directory),
        phase=state.phase,
        processes=[ProcessStatus(p.name, p.netns, p.pid, alive(p)) for p in state.processes],
        missing_namespaces=sorted(n for n in state.namespaces.values() if n not in present),
    )
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
