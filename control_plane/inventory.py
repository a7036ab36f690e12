"""What the control plane keeps in memory: the provisioned network and its allocators.

Sites, UPFs, DNNs, pools and policies are few and read on every establishment, so
they are loaded from the database into records (:meth:`Inventory.load`), and refreshed
in place after each provisioning change (:meth:`Inventory.refresh`) without losing
what sessions hold. Sessions are many: only what allocators need survives
in memory (which UE IPs, TEIDs and SEIDs are taken, and each UPF's load); the rest
stays in the database.

Allocators are rebuilt from the sessions table at load, so nothing handed out
before a restart is handed out again; the database's unique constraints refuse a
double allocation should that ever fail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import ip_address, ip_network
from typing import Any

from sqlalchemy import Connection, Row, select

from db.models import Dnn, EdgeRule, IpPool, Policy, Session, Site, Upf

from . import repo
from .domain.alloc import AllocationError, PoolAllocator, TeidAllocator
from .domain.rules import EdgeRuleSpec
from .domain.selection import UpfCandidate

__all__ = ["Inventory", "PolicyRecord", "PoolRecord", "Refresh", "Snapshot", "UpfRecord"]

log = logging.getLogger("control_plane.inventory")


@dataclass(slots=True)
class UpfRecord:
    id: int
    node_id: str
    n4_address: str
    n4_port: int
    site: str
    site_kind: str
    site_tais: frozenset[str]
    dnns: frozenset[str]
    snssais: frozenset[str]
    n3_addresses: tuple[str, ...]
    capacity: int
    admin_state: str
    teid_allocation: str
    access_network_instance: str | None
    #: Live state, kept in memory and written to the database on change.
    health: str = "unknown"
    features: frozenset[str] = frozenset()
    recovery_time_stamp: int | None = None
    load: int = 0
    teids: TeidAllocator = field(default_factory=TeidAllocator)

    @property
    def peer(self) -> tuple[str, int]:
        return (self.n4_address, self.n4_port)

    def n3_address(self, family: int = 4) -> str | None:
        for address in self.n3_addresses:
            if _ip_version(address) == family:
                return address
        return None


@lru_cache(maxsize=1024)
def _ip_version(address: str) -> int:
    # Asked on every establishment (the N3 address of the F-TEID) of a UPF's few addresses.
    return ip_address(address).version


@dataclass(frozen=True, slots=True)
class PoolRecord:
    id: int
    name: str
    dnn: str
    site: str | None
    family: int
    allocator: PoolAllocator


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    id: int
    name: str
    dnn: str
    snssai: str
    qfi: int
    five_qi: int
    ambr_ul_kbps: int
    ambr_dl_kbps: int
    volume_threshold: int | None
    time_threshold: int | None
    qfi_in_pdi: bool
    failover: bool
    edge_rules: tuple[EdgeRuleSpec, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The provisioning tables as one transaction saw them (:meth:`Inventory.read`)."""

    sites: dict[int, Row[Any]]
    dnns: dict[int, Row[Any]]
    upfs: list[Row[Any]]
    pools: list[Row[Any]]
    policies: list[Row[Any]]
    edge_rules: list[Row[Any]]
    #: Pool id -> the UE addresses (prefixes) sessions hold in it, for pools whose allocator
    #: is to be rebuilt (a changed CIDR or prefix length).
    held: dict[int, list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class Refresh:
    """What :meth:`Inventory.refresh` changed that the association manager must act on."""

    added: list[UpfRecord] = field(default_factory=list)
    removed: list[UpfRecord] = field(default_factory=list)
    #: UPFs whose N4 address or port changed, with the peer they had.
    moved: list[tuple[UpfRecord, tuple[str, int]]] = field(default_factory=list)


class Inventory:
    """The provisioned network, in memory, with the allocators of what sessions hold."""

    def __init__(self) -> None:
        self.upfs: dict[int, UpfRecord] = {}
        self.upf_by_node: dict[str, UpfRecord] = {}
        self.dnn_instances: dict[str, str] = {}
        self.pools: dict[int, PoolRecord] = {}
        self.policies: dict[int, PolicyRecord] = {}
        self.policy_by_name: dict[str, PolicyRecord] = {}
        #: Site name -> DNNs with an IP pool there (a pool for any site counts everywhere).
        self.site_pools: dict[str, frozenset[str]] = {}

    @classmethod
    def load(cls, conn: Connection) -> Inventory:
        inv = cls()
        inv.refresh(cls.read(conn))
        inv._reserve_allocations(conn)
        return inv

    @staticmethod
    def read(conn: Connection, held_pools: Iterable[int] = ()) -> Snapshot:
        """Read the provisioning tables (and what sessions hold in ``held_pools``) in ``conn``'s transaction."""
        held: dict[int, list[str]] = {pool_id: [] for pool_id in held_pools}
        if held:
            for column, pool_column in ((Session.ue_ipv4, Session.pool_v4_id), (Session.ue_ipv6, Session.pool_v6_id)):
                query = select(pool_column, column).where(pool_column.in_(held), column.is_not(None))
                for pool_id, value in conn.execute(query):
                    if pool_id is not None and value is not None:  # filtered above; for the type checker
                        held[pool_id].append(value)
        return Snapshot(
            sites={row.id: row for row in conn.execute(select(Site.__table__))},
            dnns={row.id: row for row in conn.execute(select(Dnn.__table__))},
            upfs=list(conn.execute(select(Upf.__table__))),
            pools=list(conn.execute(select(IpPool.__table__))),
            policies=list(conn.execute(select(Policy.__table__))),
            edge_rules=list(conn.execute(select(EdgeRule.__table__).order_by(EdgeRule.id))),
            held=held,
        )

    def refresh(self, snap: Snapshot) -> Refresh:
        """Make the inventory what ``snap`` says, in place, keeping what sessions hold.

        A UPF that stays keeps its record (its load, TEIDs and live state; the association
        manager's task holds it) with its provisioned fields updated; a pool that keeps its
        CIDR and per-UE prefix length keeps its allocator; a pool whose prefix changed gets a
        new allocator holding again what ``snap.held`` lists for it. Policies hold no
        allocation and are rebuilt. Runs on the event loop between two awaits, so no
        procedure sees a half-refreshed inventory. (An establishment caught between its
        allocation and its commit by a CIDR change keeps an address the new allocator may
        not know; the database's unique (DNN, UE IP) constraints refuse it to anyone else.)
        """
        sites, dnns = snap.sites, snap.dnns
        self.dnn_instances = {row.name: row.network_instance or row.name for row in dnns.values()}
        done = Refresh()
        upfs: dict[int, UpfRecord] = {}
        for row in snap.upfs:
            values = _upf_values(row, sites[row.site_id])
            upf = self.upfs.get(row.id)
            if upf is None or upf.node_id != row.node_id:  # SQLite may give a deleted UPF's id to a new one
                upf = UpfRecord(id=row.id, **values)
                # The stored health is the previous process's; only an association this
                # process makes says "up" (until then the UPF takes no session).
                upf.features = frozenset(row.features or ())
                upf.recovery_time_stamp = row.recovery_time_stamp
                done.added.append(upf)
            else:
                peer = upf.peer
                for name, value in values.items():
                    setattr(upf, name, value)
                if upf.peer != peer:
                    done.moved.append((upf, peer))
            upfs[upf.id] = upf
        done.removed = [upf for upf in self.upfs.values() if upfs.get(upf.id) is not upf]
        self.upfs = upfs
        self.upf_by_node = {upf.node_id: upf for upf in upfs.values()}
        pools: dict[int, PoolRecord] = {}
        for row in snap.pools:
            site = sites[row.site_id].name if row.site_id is not None else None
            pools[row.id] = self._pool(row, dnns[row.dnn_id].name, site, snap)
        self.pools = pools
        edge: dict[int, list[EdgeRuleSpec]] = {}
        for row in snap.edge_rules:
            edge.setdefault(row.policy_id, []).append(
                EdgeRuleSpec(row.name, row.precedence, tuple(row.flow_descriptions), row.network_instance)
            )
        self.policies = {row.id: _policy(row, dnns[row.dnn_id].name, edge.get(row.id, ())) for row in snap.policies}
        self.policy_by_name = {policy.name: policy for policy in self.policies.values()}
        self._index_site_pools()
        return done

    def _pool(self, row: Row[Any], dnn: str, site: str | None, snap: Snapshot) -> PoolRecord:
        prefix_length = row.prefix_length if row.family == 6 else None
        old = self.pools.get(row.id)
        if old is not None and old.name != row.name:  # a new pool on a deleted one's id
            old = None
        if old is not None and (ip_network(old.allocator.cidr), old.allocator.prefix_length) == (
            ip_network(row.cidr),
            prefix_length or 32,
        ):
            allocator = old.allocator
        else:
            allocator = PoolAllocator(row.cidr, prefix_length)
            if old is not None:
                if row.id not in snap.held:
                    log.error("pool %s changed to %s without the addresses its sessions hold", row.name, row.cidr)
                for value in snap.held.get(row.id, ()):
                    try:
                        allocator.reserve(value)
                    except AllocationError as exc:  # refused before the change was committed
                        log.error("pool %s: a session keeps %s: %s", row.name, value, exc)
        return PoolRecord(row.id, row.name, dnn, site, row.family, allocator)

    def _reserve_allocations(self, conn: Connection) -> None:
        for row in repo.allocations(conn):
            for pool_id, value in ((row["pool_v4_id"], row["ue_ipv4"]), (row["pool_v6_id"], row["ue_ipv6"])):
                pool = self.pools.get(pool_id) if pool_id is not None else None
                if pool is not None and value is not None:
                    try:
                        pool.allocator.reserve(value)
                    except AllocationError as exc:  # the pool was shrunk under a live session
                        log.error("session %s keeps %s outside its pool: %s", row["id"], value, exc)
            upf = self.upfs.get(row["upf_id"]) if row["upf_id"] is not None else None
            if upf is not None:
                upf.load += 1
                if row["n3_teid"] is not None:
                    try:
                        upf.teids.reserve(int(row["n3_teid"]))
                    except Exception as exc:
                        log.error("session %s: TEID %s: %s", row["id"], row["n3_teid"], exc)

    # -- lookups ------------------------------------------------------------

    def policy_for(self, dnn: str, snssai: str, override: int | None) -> PolicyRecord | None:
        """The subscriber's own policy when it is for this DNN (whatever its slice: one policy
        per DNN and slice is the table's rule, so a subscriber's own one names a slice of its own),
        else the DNN's policy for the slice, else the DNN's policy for any slice ("*")."""
        chosen = self.policies.get(override) if override is not None else None
        if chosen is not None and chosen.dnn == dnn:
            return chosen
        fallback = None
        for policy in self.policies.values():
            if policy.dnn != dnn:
                continue
            if policy.snssai == snssai:
                return policy
            if policy.snssai == "*":
                fallback = policy
        return fallback

    def pool_for(self, dnn: str, site: str, family: int) -> PoolRecord | None:
        """The DNN's pool at the site (a site's own pool before a pool for any site)."""
        shared = None
        for pool in self.pools.values():
            if pool.dnn != dnn or pool.family != family:
                continue
            if pool.site == site and pool.allocator.free:
                return pool
            if pool.site is None and shared is None and pool.allocator.free:
                shared = pool
        return shared

    def has_pool(self, dnn: str, site: str, family: int | None = None) -> bool:
        return any(
            pool.dnn == dnn and pool.site in (site, None) and (family is None or pool.family == family)
            for pool in self.pools.values()
        )

    def pool_containing(self, dnn: str, value: str) -> PoolRecord | None:
        address = ip_network(value, strict=False)
        for pool in self.pools.values():
            if pool.dnn == dnn and address.subnet_of(ip_network(pool.allocator.cidr)):  # type: ignore[arg-type]
                return pool
        return None

    def _index_site_pools(self) -> None:
        site_pools: dict[str, set[str]] = {upf.site: set() for upf in self.upfs.values()}
        for pool in self.pools.values():
            for site, dnns in site_pools.items():
                if pool.site in (site, None):
                    dnns.add(pool.dnn)
        self.site_pools = {site: frozenset(dnns) for site, dnns in site_pools.items()}

    def candidates(self) -> list[UpfCandidate]:
        return [
            UpfCandidate(
                id=upf.id,
                node_id=upf.node_id,
                site=upf.site,
                site_kind=upf.site_kind,
                site_tais=upf.site_tais,
                dnns=upf.dnns,
                snssais=upf.snssais,
                admin_state=upf.admin_state,
                healthy=upf.health == "up",
                capacity=upf.capacity,
                load=upf.load,
                site_pools=self.site_pools.get(upf.site, frozenset()),
            )
            for upf in self.upfs.values()
        ]


def _upf_values(row: Row[Any], site: Row[Any]) -> dict[str, Any]:
    """A UPF's provisioned fields (those a refresh may change) from its row and its site's."""
    return {
        "node_id": row.node_id,
        "n4_address": row.n4_address,
        "n4_port": row.n4_port,
        "site": site.name,
        "site_kind": str(site.kind),
        "site_tais": frozenset(site.tais or ()),
        "dnns": frozenset(row.network_instances or ()),
        "snssais": frozenset(row.snssais or ()),
        "n3_addresses": tuple(row.n3_addresses or ()),
        "capacity": row.capacity,
        "admin_state": str(row.admin_state),
        "teid_allocation": str(row.teid_allocation),
        "access_network_instance": row.access_network_instance,
    }


def _policy(row: Row[Any], dnn: str, edge_rules: Iterable[EdgeRuleSpec]) -> PolicyRecord:
    return PolicyRecord(
        id=row.id,
        name=row.name,
        dnn=dnn,
        snssai=row.snssai,
        qfi=row.qfi,
        five_qi=row.five_qi,
        ambr_ul_kbps=row.session_ambr_ul_kbps,
        ambr_dl_kbps=row.session_ambr_dl_kbps,
        volume_threshold=row.volume_threshold_bytes,
        time_threshold=row.time_threshold_s,
        qfi_in_pdi=row.qfi_in_pdi,
        failover=row.failover,
        edge_rules=tuple(edge_rules),
    )
