"""Provisioning: apply, get, list, delete, drain — in the database, then in the live inventory.

Theory of operation:

* **One transaction per request.** An Apply's objects are validated
  (:func:`edge_sites.schema.validate_object`), then checked against the database
  (:mod:`.checks`) and written in one store operation, in kind order, each check
  seeing the writes before it: any error rolls the whole request back. A dry run is
  the same operation rolled back on purpose, so it reports exactly what Apply would.
* **Nothing written for nothing changed.** An object is written only when its
  normalized spec differs from the stored one (the same normalization on both sides),
  so applying it again reports "unchanged" and leaves rows and timestamps alone.
* **Then the inventory.** The operation that commits a change also reads the
  provisioning tables (and what sessions hold in pools whose prefix changed) in the
  same transaction; back on the event loop, :meth:`Inventory.refresh` applies that
  snapshot in place and the association manager starts, stops or moves associations.
  Refreshes run in commit order (store futures settle in order), and a client that
  goes away mid-request cannot skip one: the commit-and-refresh runs as a task of
  its own.
* Every change is also an event (``site.created``, ``pool.updated``,
  ``upf.drained``...) in the events table, which Watch streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection

from control_plane import repo
from control_plane.errors import FailedPrecondition, InvalidArgument, NotFound
from control_plane.inventory import Inventory, Snapshot
from control_plane.n4.peers import AssociationManager
from control_plane.store import Store
from edge_sites.schema import KINDS, SchemaError, validate_name, validate_object

from . import checks, tables
from .objects import Action, Change, FieldChange, ObjectView, Resource, canonical_kind, differences, invalid
from .tables import Stored

__all__ = ["Provisioning"]

T = TypeVar("T")
R = TypeVar("R")
_Planned = tuple[int, str, str, dict[str, Any], Mapping[str, Any]]  # index, kind, name, spec, raw spec


class _Rollback(Exception):
    """Raised by a dry run's operation so the store rolls back what it wrote."""

    def __init__(self, changes: list[Change]) -> None:
        super().__init__("dry run")
        self.changes = changes


def _event(conn: Connection, kind: str, name: str, action: str, fields: Sequence[FieldChange] = ()) -> None:
    detail: dict[str, Any] = {"kind": kind, "name": name}
    if fields:
        detail["fields"] = {fc.path: {"old": fc.old, "new": fc.new} for fc in fields}
    repo.insert_event(
        conn,
        f"{kind.lower()}.{action}",
        upf_node_id=name if kind == "UPF" else None,
        supi=name if kind == "Subscriber" else None,
        detail=detail,
    )


class Provisioning:
    """The provisioning procedures of a running control plane."""

    def __init__(self, store: Store, inventory: Inventory, associations: AssociationManager | None = None) -> None:
        self.store = store
        self.inventory = inventory
        self.associations = associations
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- apply -------------------------------------------------------------------

    async def apply(self, resources: Sequence[Resource], *, dry_run: bool = False) -> list[Change]:
        """Create or update ``resources`` (all or none); one Change each, in apply order."""
        planned = self._plan(resources)

        def op(conn: Connection) -> tuple[list[Change], Snapshot | None]:
            changes: list[Change] = []
            rebuild: list[int] = []
            for index, kind, name, spec, raw in planned:
                stored = tables.get(conn, kind, name)
                rebuild += checks.check(conn, kind, name, spec, stored, raw, f"resources[{index}]")
                fields = tuple(differences({} if stored is None else stored.spec, spec))
                action: Action = "created" if stored is None else "updated" if fields else "unchanged"
                if action != "unchanged":
                    tables.write(conn, kind, name, spec, stored)
                    _event(conn, kind, name, action, fields)
                changes.append(Change(kind, name, action, fields))
            for index, kind, _, spec, raw in planned:
                checks.served(conn, kind, spec, raw, f"resources[{index}]")
            if dry_run:
                raise _Rollback(changes)
            changed = any(change.action != "unchanged" for change in changes)
            return changes, Inventory.read(conn, rebuild) if changed else None

        try:
            return await self._commit(op, lambda changes: changes)
        except _Rollback as rollback:
            return rollback.changes

    def _plan(self, resources: Sequence[Resource]) -> list[_Planned]:
        planned: list[_Planned] = []
        first: dict[tuple[str, str], int] = {}
        for index, resource in enumerate(resources):
            path = f"resources[{index}]"
            kind = canonical_kind(resource.kind, f"{path}.kind")
            try:
                spec = validate_object(kind, resource.name, resource.spec, path=path)
            except SchemaError as error:
                raise invalid(error) from None
            seen = first.setdefault((kind, resource.name), index)
            if seen != index:
                raise InvalidArgument(f"{kind} {resource.name!r} repeats resources[{seen}]", field=f"{path}.name")
            planned.append((index, kind, resource.name, spec, resource.spec))
        return sorted(planned, key=lambda item: KINDS.index(item[1]))

    # -- reads -------------------------------------------------------------------

    async def get(self, kind: str, name: str) -> ObjectView:
        kind = _kind_and_name(kind, name)
        stored = await self.store.run(lambda conn: tables.get(conn, kind, name))
        if stored is None:
            raise NotFound(f"no {kind} {name!r}", field="name")
        return self.view(kind, stored)

    async def list_objects(
        self, kind: str, *, site: str | None = None, dnn: str | None = None, limit: int = 100, after: str | None = None
    ) -> list[ObjectView]:
        """Objects of ``kind`` in name order after ``after`` (see :func:`.tables.page` for the filters)."""
        kind = canonical_kind(kind)
        found = await self.store.run(lambda conn: tables.page(conn, kind, after=after, limit=limit, site=site, dnn=dnn))
        return [self.view(kind, stored) for stored in found]

    def view(self, kind: str, stored: Stored) -> ObjectView:
        """``stored`` with what the running control plane observes of it (UPFs and pools)."""
        observed: dict[str, Any] = {}
        upf = self.inventory.upfs.get(stored.id) if kind == "UPF" else None
        if upf is not None and upf.node_id == stored.name:  # else not refreshed yet (a new UPF on an old id)
            observed = {
                "health": upf.health,
                "association": self.associations.association_state(upf) if self.associations else "idle",
                "features": sorted(upf.features),
                "recovery_time_stamp": upf.recovery_time_stamp,
                "sessions": upf.load,
            }
        pool = self.inventory.pools.get(stored.id) if kind == "Pool" else None
        if pool is not None and pool.name == stored.name:
            allocator = pool.allocator
            observed = {"used": allocator.used, "free": allocator.free, "size": allocator.size}
        return ObjectView(kind, stored.name, stored.spec, observed)

    # -- delete, drain -------------------------------------------------------------

    async def delete(self, kind: str, name: str) -> ObjectView:
        """Delete an object nothing depends on; returns it as it was."""
        kind = _kind_and_name(kind, name)

        def op(conn: Connection) -> tuple[Stored, Snapshot]:
            stored = tables.get(conn, kind, name)
            if stored is None:
                raise NotFound(f"no {kind} {name!r}", field="name")
            using = checks.dependants(conn, kind, stored)
            if using is not None:
                raise FailedPrecondition(f"{kind} {name} is in use by {using}", field="name")
            tables.remove(conn, kind, stored)
            _event(conn, kind, name, "deleted")
            return stored, Inventory.read(conn)

        # Shaped before the refresh: a deleted UPF's observed state is still known then.
        return await self._commit(op, lambda stored: self.view(kind, stored), before_refresh=True)

    async def drain(self, *, upf: str | None = None, site: str | None = None, drained: bool = True) -> list[ObjectView]:
        """Drain (or undrain) one UPF or every UPF of a site; returns those UPFs as they are now."""
        if (upf is None) == (site is None):
            raise InvalidArgument("name a UPF or a site, not both or neither", field="upf" if upf is None else "site")
        state = "drained" if drained else "enabled"

        def op(conn: Connection) -> tuple[list[Stored], Snapshot | None]:
            if upf is not None:
                stored = tables.get(conn, "UPF", upf)
                if stored is None:
                    raise NotFound(f"no UPF {upf!r}", field="upf")
                targets = [stored]
            else:
                site_id = tables.id_of(conn, "Site", site or "")
                if site_id is None:
                    raise NotFound(f"no Site {site!r}", field="site")
                targets = tables.fetch(conn, "UPF", where=[tables.UPFS.c.site_id == site_id])
            out = []
            for target in targets:
                if target.spec["admin_state"] != state:
                    spec = {**target.spec, "admin_state": state}
                    tables.write(conn, "UPF", target.name, spec, target)
                    _event(conn, "UPF", target.name, "drained" if drained else "undrained")
                    target = Stored(target.id, target.name, spec)
                out.append(target)
            changed = any(a is not b for a, b in zip(out, targets, strict=True))
            return out, Inventory.read(conn) if changed else None

        return await self._commit(op, lambda found: [self.view("UPF", stored) for stored in found])

    # -- commit and refresh ----------------------------------------------------------

    async def _commit(
        self,
        op: Callable[[Connection], tuple[T, Snapshot | None]],
        shape: Callable[[T], R],
        *,
        before_refresh: bool = False,
    ) -> R:
        async def run() -> R:
            result, snapshot = await self.store.run(op)
            if before_refresh:
                shaped = shape(result)
                if snapshot is not None:
                    self._refresh(snapshot)
                return shaped
            if snapshot is not None:
                self._refresh(snapshot)
            return shape(result)

        # Shielded: a cancelled caller must not leave a committed change out of the inventory.
        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._settled)
        return await asyncio.shield(task)

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that went away does not read it

    def _refresh(self, snapshot: Snapshot) -> None:
        done = self.inventory.refresh(snapshot)
        if self.associations is None:
            return
        for upf in done.removed:
            self.associations.release(upf)
        for upf, peer in done.moved:
            self.associations.release(upf, peer)
            self.associations.watch(upf)
        for upf in done.added:
            self.associations.watch(upf)


def _kind_and_name(kind: str, name: str) -> str:
    kind = canonical_kind(kind)
    try:
        validate_name(kind, name)
    except SchemaError as error:
        raise invalid(error) from None
    return kind
