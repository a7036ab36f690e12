"""What the control plane keeps in memory: the provisioned network and its allocators.

Sites, UPFs, DNNs, pools and policies are few and read on every establishment, so
they are loaded from the database into frozen records (:meth:`Inventory.load`, again
after provisioning changes). Sessions are many: only what allocators need survives
in memory (which UE IPs, TEIDs and SEIDs are taken, and each UPF's load); the rest
stays in the database.

Allocators are rebuilt from the sessions table at load, so nothing handed out
before a restart is handed out again; the database's unique constraints refuse a
double allocation should that ever fail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network

from sqlalchemy import Connection, select

from db.models import Dnn, EdgeRule, IpPool, Policy, Site, Upf

from . import repo
from .domain.alloc import AllocationError, PoolAllocator, TeidAllocator
from .domain.rules import EdgeRuleSpec
from .domain.selection import UpfCandidate

__all__ = ["Inventory", "PolicyRecord", "PoolRecord", "UpfRecord"]

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
            if ip_address(address).version == family:
                return address
        return None


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
        sites = {row.id: row for row in conn.execute(select(Site.__table__))}
        dnns = {row.id: row for row in conn.execute(select(Dnn.__table__))}
        for row in dnns.values():
            inv.dnn_instances[row.name] = row.network_instance or row.name
        for row in conn.execute(select(Upf.__table__)):
            site = sites[row.site_id]
            upf = UpfRecord(
                id=row.id,
                node_id=row.node_id,
                n4_address=row.n4_address,
                n4_port=row.n4_port,
                site=site.name,
                site_kind=site.kind,
                site_tais=frozenset(site.tais or ()),
                dnns=frozenset(row.network_instances or ()),
                snssais=frozenset(row.snssais or ()),
                n3_addresses=tuple(row.n3_addresses or ()),
                capacity=row.capacity,
                admin_state=row.admin_state,
                teid_allocation=row.teid_allocation,
                access_network_instance=row.access_network_instance,
                # The stored health is the previous process's; only an association this
                # process makes says "up" (until then the UPF takes no session).
                health="unknown",
                features=frozenset(row.features or ()),
                recovery_time_stamp=row.recovery_time_stamp,
            )
            inv.upfs[upf.id] = upf
            inv.upf_by_node[upf.node_id] = upf
        for row in conn.execute(select(IpPool.__table__)):
            site_name = sites[row.site_id].name if row.site_id is not None else None
            allocator = PoolAllocator(row.cidr, row.prefix_length if row.family == 6 else None)
            inv.pools[row.id] = PoolRecord(row.id, row.name, dnns[row.dnn_id].name, site_name, row.family, allocator)
        edge: dict[int, list[EdgeRuleSpec]] = {}
        for row in conn.execute(select(EdgeRule.__table__).order_by(EdgeRule.id)):
            edge.setdefault(row.policy_id, []).append(
                EdgeRuleSpec(row.name, row.precedence, tuple(row.flow_descriptions), row.network_instance)
            )
        for row in conn.execute(select(Policy.__table__)):
            policy = PolicyRecord(
                id=row.id,
                name=row.name,
                dnn=dnns[row.dnn_id].name,
                snssai=row.snssai,
                qfi=row.qfi,
                five_qi=row.five_qi,
                ambr_ul_kbps=row.session_ambr_ul_kbps,
                ambr_dl_kbps=row.session_ambr_dl_kbps,
                volume_threshold=row.volume_threshold_bytes,
                time_threshold=row.time_threshold_s,
                qfi_in_pdi=row.qfi_in_pdi,
                failover=row.failover,
                edge_rules=tuple(edge.get(row.id, ())),
            )
            inv.policies[policy.id] = policy
            inv.policy_by_name[policy.name] = policy
        inv._index_site_pools()
        inv._reserve_allocations(conn)
        return inv

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
        if override is not None and override in self.policies:
            return self.policies[override]
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
