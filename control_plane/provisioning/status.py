"""Status: every UPF as the running control plane sees it, with its sessions by state."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Connection, Table, func, select

from control_plane.inventory import Inventory
from control_plane.n4.peers import AssociationManager
from control_plane.store import Store
from db.models import Session

__all__ = ["StatusView", "UpfStatusView", "sessions_by_upf", "status"]

_SESSIONS = cast(Table, Session.__table__)


@dataclass(frozen=True, slots=True)
class UpfStatusView:
    node_id: str
    site: str
    association: str
    health: str
    features: tuple[str, ...]
    recovery_time_stamp: int | None
    sessions: dict[str, int]
    capacity: int
    admin_state: str


@dataclass(frozen=True, slots=True)
class StatusView:
    upfs: list[UpfStatusView]
    sessions: dict[str, int] = field(default_factory=dict)

    @property
    def associated(self) -> int:
        return sum(upf.association == "associated" for upf in self.upfs)

    @property
    def drained(self) -> int:
        return sum(upf.admin_state == "drained" for upf in self.upfs)

    @property
    def capacity(self) -> int:
        return sum(upf.capacity for upf in self.upfs)


def sessions_by_upf(conn: Connection) -> dict[int | None, dict[str, int]]:
    """UPF id (None: sessions on no UPF) -> state -> how many sessions."""
    out: dict[int | None, dict[str, int]] = {}
    query = select(_SESSIONS.c.upf_id, _SESSIONS.c.state, func.count()).group_by(_SESSIONS.c.upf_id, _SESSIONS.c.state)
    for upf_id, state, count in conn.execute(query):
        out.setdefault(upf_id, {})[str(state)] = int(count)
    return out


async def status(store: Store, inventory: Inventory, associations: AssociationManager | None) -> StatusView:
    counts = await store.run(sessions_by_upf)
    upfs = [
        UpfStatusView(
            node_id=upf.node_id,
            site=upf.site,
            association=associations.association_state(upf) if associations is not None else "idle",
            health=upf.health,
            features=tuple(sorted(upf.features)),
            recovery_time_stamp=upf.recovery_time_stamp,
            sessions=counts.get(upf.id, {}),
            capacity=upf.capacity,
            admin_state=upf.admin_state,
        )
        for upf in sorted(inventory.upfs.values(), key=lambda upf: upf.node_id)
    ]
    totals: Counter[str] = Counter()
    for by_state in counts.values():
        totals.update(by_state)
    return StatusView(upfs, dict(totals))
