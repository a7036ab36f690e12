"""Everything a :class:`~edge_sites.sim.topology.SimTopology` implies, derived without I/O.

Namespaces (roles of :class:`edge_sites.sim.netns.Topology`; kernel names are
``ecsim-<role>-<suffix>``): ``cp``; ``n3``, the transport router every gNB and every UPF hangs
off (so any gNB reaches any UPF, as a RAN backhaul does); and per site k (0-based, in file
order) ``upfK``, ``dnK`` and, when the site has UEs, ``gnbK``. Links and addresses, all in
RFC 2544's 198.18.0.0/15 (UE pools are the topology's, in 10.0.0.0/8)::

    cp   lo 198.18.0.1/32  (the CP's one N4 address, reachable over every N4 link)
    cp   lo 198.18.0.2/32  (the MQTT broker, port 1883: also reached over the N4 links)
    cp   n4-K 198.18.1.(4K+1)/30 ==== n4 198.18.1.(4K+2)/30  upfK    N4 (PFCP)
    n3   uK   198.18.2.(4K+1)/30 ==== n3 198.18.2.(4K+2)/30  upfK    N3, MTU 1600
    n3   gK   198.18.3.(4K+1)/30 ==== n3 198.18.3.(4K+2)/30  gnbK    N3, MTU 1600
    upfK n6   198.18.4.(4K+1)/30 ==== n6 198.18.4.(4K+2)/30  dnK     N6; the DN server's address

GTP-U adds 44 octets (IPv4, UDP, GTP-U, PDU Session Container), hence N3's larger MTU: a UE's
1400-octet packets (the gNB's TUN MTU) are never fragmented. Routes: each UPF reaches the
gNBs' /24 through the router and the CP's and the broker's /32s through its N4 link; each gNB
reaches the UPFs' /24 through the router; each data network routes its site's UE pools to its
UPF's N6 address.

Telemetry (deploy/mosquitto/): the broker runs in the control plane's namespace (``mqtt``)
with the repository's ACL and one user per site named like the site, ``edgecups-cp`` and
``edgecups-viewer``; their passwords are generated into ``<state dir>/mqtt/<user>.password``
(control_plane/cli/sim/broker.py). Every agent's configuration has an ``mqtt`` section with its
site's user and a metrics interval of :data:`METRICS_INTERVAL`, the control plane's the cp user.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Final

from edge_sites.schema import API_VERSION
from edge_sites.sim.gnb_config import GnbConfig
from edge_sites.sim.mosquitto import CP_USER, VIEWER_USER
from edge_sites.sim.netspec import Endpoint, Route, Sysctl, TopologySpec, VethLink
from edge_sites.sim.topology import DnnSpec, SimTopology, SiteSpec

__all__ = [
    "CP_N4",
    "METRICS_INTERVAL",
    "MQTT_ADDRESS",
    "MQTT_PORT",
    "N3_MTU",
    "PREFIX",
    "UPF_CAPACITY",
    "SimPlan",
    "SitePlan",
    "UePlan",
    "build_plan",
]

#: Every namespace of the simulation is ``ecsim-<role>-<suffix>``: recognisably the simulator's.
PREFIX: Final = "ecsim"
CP_N4: Final = IPv4Address("198.18.0.1")
#: The MQTT broker, in the control plane's namespace (plaintext: nothing outside reaches it).
MQTT_ADDRESS: Final = IPv4Address("198.18.0.2")
MQTT_PORT: Final = 1883
#: Seconds between each agent's metrics messages: short, so tests see counters move quickly.
METRICS_INTERVAL: Final = 1.0
N3_MTU: Final = 1600
UPF_CAPACITY: Final = 10_000
#: The UPF's TEID for a UE's session is the CP's; the gNB's own (downlink) TEIDs start here.
GNB_TEID_BASE: Final = 0x1000


def _at(third: int, k: int, host: int) -> IPv4Interface:
    return IPv4Interface(f"198.18.{third}.{4 * k + host}/30")


@dataclass(frozen=True, slots=True)
class UePlan:
    """One UE: its SUPI, its site, and its PDU sessions (DNN, PDU session ID)."""

    site: str
    site_index: int
    number: int
    supi: str
    sessions: tuple[tuple[str, int], ...]

    def gnb_teid(self, pdu_session_id: int) -> int:
        """The gNB's downlink TEID for one of the UE's sessions. Unique across all gNBs, not only
        its own, so a UE handed over to another site's gNB can keep it there."""
        return GNB_TEID_BASE + (self.site_index << 16) + self.number * 16 + pdu_session_id


@dataclass(frozen=True, slots=True)
class SitePlan:
    """One site's namespaces, addresses, pools and UEs."""

    index: int
    site: SiteSpec
    #: DNN name -> this site's UE pool of that DNN (the DNNs its UPF serves).
    pools: dict[str, IPv4Network]
    ues: tuple[UePlan, ...]

    @property
    def name(self) -> str:
        return self.site.name

    @property
    def upf_role(self) -> str:
        return f"upf{self.index}"

    @property
    def dn_role(self) -> str:
        return f"dn{self.index}"

    @property
    def gnb_role(self) -> str | None:
        return f"gnb{self.index}" if self.site.ues else None

    @property
    def n4_cp(self) -> IPv4Interface:
        return _at(1, self.index, 1)

    @property
    def n4_upf(self) -> IPv4Interface:
        return _at(1, self.index, 2)

    @property
    def n3_router_upf(self) -> IPv4Interface:
        return _at(2, self.index, 1)

    @property
    def n3_upf(self) -> IPv4Interface:
        return _at(2, self.index, 2)

    @property
    def n3_router_gnb(self) -> IPv4Interface:
        return _at(3, self.index, 1)

    @property
    def n3_gnb(self) -> IPv4Interface:
        return _at(3, self.index, 2)

    @property
    def n6_upf(self) -> IPv4Interface:
        return _at(4, self.index, 1)

    @property
    def server(self) -> IPv4Address:
        """The data-network server (edge application, or the internet at a cloud site)."""
        return _at(4, self.index, 2).ip

    @property
    def node_id(self) -> str:
        """The UPF's PFCP Node ID: its N4 address."""
        return str(self.n4_upf.ip)


@dataclass(frozen=True, slots=True)
class SimPlan:
    topology: SimTopology
    sites: tuple[SitePlan, ...]
    dnns: dict[str, DnnSpec] = field(default_factory=dict)

    def site(self, name: str) -> SitePlan:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(f"no site {name!r} in the topology ({', '.join(s.name for s in self.sites)})")

    def ues(self) -> Iterator[UePlan]:
        for site in self.sites:
            yield from site.ues

    def expected_sites(self, ue: UePlan, dnn: str) -> set[str]:
        """Where a UE's session on ``dnn`` must land: its own edge site for an edge DNN, a cloud
        site for a cloud DNN (the UE's own when it is at a cloud site)."""
        home = self.site(ue.site)
        if self.dnns[dnn].scope == home.site.kind:
            return {home.name}
        return {s.name for s in self.sites if dnn in s.pools}

    # -- namespaces ----------------------------------------------------------------------

    def roles(self) -> dict[str, str]:
        """Node name (``cp``, ``mqtt``, ``n3``, ``upf/edge-1``, ``dn/edge-1``, ``gnb/edge-1``) -> namespace role."""
        out = {"cp": "cp", "mqtt": "cp", "n3": "n3"}
        for s in self.sites:
            out[f"upf/{s.name}"] = s.upf_role
            out[f"dn/{s.name}"] = s.dn_role
            if s.gnb_role is not None:
                out[f"gnb/{s.name}"] = s.gnb_role
        return out

    def network(self) -> TopologySpec:
        links: list[VethLink] = []
        routes: list[Route] = []
        sysctls = [Sysctl("n3", "net.ipv4.ip_forward", "1")]
        gnbs = IPv4Network("198.18.3.0/24")
        upfs = IPv4Network("198.18.2.0/24")
        for s in self.sites:
            upf, dn = s.upf_role, s.dn_role
            links += [
                VethLink(Endpoint("cp", f"n4-{s.index}", s.n4_cp), Endpoint(upf, "n4", s.n4_upf)),
                VethLink(Endpoint("n3", f"u{s.index}", s.n3_router_upf, N3_MTU), Endpoint(upf, "n3", s.n3_upf, N3_MTU)),
                VethLink(Endpoint(upf, "n6", s.n6_upf), Endpoint(dn, "n6", IPv4Interface(f"{s.server}/30"))),
            ]
            routes += [
                Route(upf, gnbs, s.n3_router_upf.ip),
                Route(upf, IPv4Network(f"{CP_N4}/32"), s.n4_cp.ip),
                Route(upf, IPv4Network(f"{MQTT_ADDRESS}/32"), s.n4_cp.ip),
            ]
            sysctls.append(Sysctl(upf, "net.ipv4.ip_forward", "1"))
            if s.gnb_role is not None:
                gnb = s.gnb_role
                links.append(
                    VethLink(
                        Endpoint("n3", f"g{s.index}", s.n3_router_gnb, N3_MTU), Endpoint(gnb, "n3", s.n3_gnb, N3_MTU)
                    )
                )
                routes.append(Route(gnb, upfs, s.n3_router_gnb.ip))
        return TopologySpec(
            namespaces=tuple(dict.fromkeys(self.roles().values())),
            links=tuple(links),
            routes=tuple(routes),
            sysctls=tuple(sysctls),
        )

    def pool_routes(self) -> list[tuple[str, IPv4Network, IPv4Address]]:
        """(role, UE pool, via): each data network's way back to its site's UEs. Not in
        :meth:`network` because its specs accept only 198.18.0.0/15 destinations; these stay
        inside the namespaces all the same (no namespace has a route out)."""
        return [(s.dn_role, pool, s.n6_upf.ip) for s in self.sites for pool in s.pools.values()]

    # -- configurations ------------------------------------------------------------------

    def mqtt_users(self) -> list[str]:
        """The broker's users: the control plane, the viewer (tests, tools), one per site (its name)."""
        return [CP_USER, VIEWER_USER, *(s.name for s in self.sites)]

    @staticmethod
    def mqtt_endpoint() -> str:
        return f"{MQTT_ADDRESS}:{MQTT_PORT}"

    @staticmethod
    def mqtt_password_file(state_dir: Path, user: str) -> Path:
        return state_dir / "mqtt" / f"{user}.password"

    def _mqtt(self, state_dir: Path, user: str) -> dict[str, Any]:
        return {"host": str(MQTT_ADDRESS), "port": MQTT_PORT, "username": user,
                "password_file": str(self.mqtt_password_file(state_dir, user))}  # fmt: skip

    def cp_config(self, state_dir: Path) -> dict[str, Any]:
        return {
            "node_id": str(CP_N4),
            "n4": {"address": str(CP_N4)},
            "database": {"url": f"sqlite:///{state_dir / 'cp.db'}"},
            "api": {"address": f"unix:{state_dir / 'api.sock'}", "plaintext": True},
            # Short timers: a lost UPF is seen within seconds, a restarted one re-associated at once.
            "timers": {"t1": 0.5, "n1": 2, "heartbeat_interval": 2, "reassociate_interval": 0.5},
            "log_level": "info",
            # Events out, the UPFs' status in (a second health signal beside heartbeats).
            "mqtt": self._mqtt(state_dir, CP_USER),
        }

    def agent_config(self, site: SitePlan, state_dir: Path) -> dict[str, Any]:
        n6 = {
            dnn: {"interface": _tun_name(dnn, i), "ue_pool": str(pool), "gateway": str(site.server)}
            for i, (dnn, pool) in enumerate(site.pools.items())
        }
        return {
            "node_id": site.node_id,
            "n4": {"address": site.node_id},
            "n3": [str(site.n3_upf.ip)],
            "n6": n6,
            "allowed_cps": [str(CP_N4)],
            "features": ["FTUP"],
            "driver": "software",
            "log_level": "info",
            "capacity": {"max_sessions": UPF_CAPACITY},
            # cp_lost_grace: sessions keep forwarding through a control-plane restart.
            "timers": {"t1": 0.5, "n1": 2, "heartbeat_interval": 5, "cp_lost_grace": 120},
            # Its status (retained, Last Will), metrics and usage under edgecups/v1/sites/<site>/.
            "mqtt": self._mqtt(state_dir, site.name) | {"site": site.name, "interval": METRICS_INTERVAL},
        }

    def gnb_config(self, site: SitePlan, state_dir: Path) -> GnbConfig:
        return GnbConfig(
            name=site.name,
            n3_address=site.n3_gnb.ip,
            control_socket=state_dir / f"gnb-{site.name}.sock",
            netns_prefix=PREFIX,
        )

    def manifests(self) -> dict[str, list[dict[str, Any]]]:
        """The site manifests, by file name: what ``edgecups apply -f`` would take."""
        topo = self.topology

        def doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
            return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}

        sites, dnns, policies, subscribers = [], [], [], []
        for s in self.sites:
            sites.append(doc("Site", s.name, {"kind": s.site.kind, "region": s.site.region, "tais": [s.site.tai]}))
        for s in self.sites:
            upf = {"site": s.name, "n4_address": s.node_id, "n3_addresses": [str(s.n3_upf.ip)],
                   "network_instances": sorted(s.pools), "capacity": UPF_CAPACITY}  # fmt: skip
            sites.append(doc("UPF", s.node_id, upf))
        for d in topo.dnns:
            dnns.append(doc("DNN", d.name, {"snssais": [topo.snssai]}))
            for s in self.sites:
                if d.name in s.pools:
                    dnns.append(doc("Pool", f"{d.name}-{s.name}", {"dnn": d.name, "site": s.name,
                                                                   "cidr": str(s.pools[d.name])}))  # fmt: skip
            policies.append(doc("Policy", f"{d.name}-default", {"dnn": d.name, "qfi": d.qfi, "five_qi": d.five_qi,
                                "session_ambr_ul_kbps": d.ambr_kbps, "session_ambr_dl_kbps": d.ambr_kbps}))  # fmt: skip
        for ue in self.ues():
            subscribers.append(doc("Subscriber", ue.supi, {"allowed_dnns": sorted(d for d, _ in ue.sessions)}))
        return {"sites.yaml": sites, "dnns.yaml": dnns, "policies.yaml": policies, "subscribers.yaml": subscribers}


def _tun_name(dnn: str, index: int) -> str:
    name = f"n6-{dnn}"
    return name if len(name) <= 15 and name.replace("-", "").replace(".", "").isalnum() else f"n6-dnn{index}"


def _supi(tai: str, site_index: int, number: int) -> str:
    # SUPI = IMSI (TS 23.003 §2.2): MCC + MNC + MSIN, 15 digits; the MSIN holds site and UE numbers.
    plmn = "".join(tai.split("-")[:2])
    return f"imsi-{plmn}{site_index + 1:03d}{number:0{12 - len(plmn)}d}"


def build_plan(topology: SimTopology) -> SimPlan:
    """The plan of a checked topology (pools carved per site in file order, SUPIs numbered)."""
    pools: dict[str, dict[str, IPv4Network]] = {s.name: {} for s in topology.sites}
    for dnn in topology.dnns:
        in_scope = topology.in_scope(dnn)
        for site, pool in zip(in_scope, dnn.site_pools(len(in_scope)), strict=True):
            pools[site.name][dnn.name] = pool
    sites = []
    for k, site in enumerate(topology.sites):
        sessions = tuple((d.name, psi) for psi, d in enumerate(topology.dnns_of(site), start=1))
        ues = tuple(UePlan(site.name, k, n, _supi(site.tai, k, n), sessions) for n in range(1, site.ues + 1))
        sites.append(SitePlan(k, site, pools[site.name], ues))
    return SimPlan(topology, tuple(sites), {d.name: d for d in topology.dnns})
