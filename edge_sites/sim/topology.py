"""The declarative description of a simulated deployment (``edgecups sim up -f FILE``).

A topology names the sites (kind, TAI, region, how many UEs their gNB serves) and the DNNs
(where their UE pools are, their QoS). Everything else -- namespaces, links, addresses, agent
and control-plane configurations, the site manifests -- is derived from it by the orchestrator
(``control_plane/cli/sim/plan.py``), so one file of a dozen lines describes a whole deployment.
``default-topology.yaml`` next to this module is what ``edgecups sim up`` uses without ``-f``::

    apiVersion: edgecups/v1
    kind: SimTopology
    snssai: "1-000001"            # the slice every DNN is offered on and every UE asks for
    dnns:
      - name: internet
        scope: cloud              # pools at cloud sites only: every UE's session lands in the cloud
        cidr: 10.0.0.0/16
        site_prefix: 16           # each site of the scope gets the next /16 of cidr
        qfi: 9
        five_qi: 9
      - name: mec
        scope: edge               # a pool per edge site: a UE's session stays at its own edge site
        cidr: 10.64.0.0/12
        site_prefix: 20
        qfi: 5
        five_qi: 80
    sites:
      - {name: edge-1, kind: edge, tai: "001-01-000001", ues: 2}
      - {name: cloud, kind: cloud, tai: "001-01-000100"}

Rules, each checked by :func:`parse_topology` (every problem reported at once, ``path: message``):

* Site names are short lower-case words (``[a-z0-9-]``, 1 to 24 characters): they end up in
  file names and process names. Names and TAIs are unique. 1 to :data:`MAX_SITES` sites. Each
  site is also its UPF's MQTT user (deploy/mosquitto/acl), so ``edgecups-cp`` and
  ``edgecups-viewer``, the broker's other users, are not site names.
* A UE at an edge site asks for a session on every DNN (edge DNNs first); a UE at a cloud site
  only on the cloud DNNs. Each DNN's scope holds at least one site, and each site is in the
  scope of at least one DNN (its UPF serves those).
* UE pools lie in 10.0.0.0/8, do not overlap, and hold every session of their site.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from edge_sites.kube.broker import BROKER_USERS
from edge_sites.schema import SchemaError, validate_name

__all__ = [
    "DEFAULT_TOPOLOGY",
    "MAX_SITES",
    "MAX_UES",
    "DnnSpec",
    "SimTopology",
    "SiteSpec",
    "TopologyError",
    "load_topology",
    "parse_topology",
    "scale",
]

#: The topology ``edgecups sim up`` builds without ``-f``: 3 edge sites and 1 cloud site.
DEFAULT_TOPOLOGY: Final = Path(__file__).with_name("default-topology.yaml")
#: The address plan gives each site a /30 per link out of one /24 (see plan.py).
MAX_SITES: Final = 60
MAX_UES: Final = 1000
#: UE pools stay in private space: the namespaces route it, nothing outside ever sees it.
UE_SPACE: Final = IPv4Network("10.0.0.0/8")
KIND: Final = "SimTopology"

_SITE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?")
# TS 23.003 §19.4.2.3 (as edge_sites.schema writes it): MCC-MNC-TAC.
_TAI = re.compile(r"([0-9]{3})-([0-9]{2,3})-([0-9]{6})")
_SNSSAI = re.compile(r"[0-9]{1,3}(-[0-9a-fA-F]{6})?")

Scope = Literal["edge", "cloud"]


class TopologyError(ValueError):
    """A topology that cannot be built; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class SiteSpec:
    name: str
    kind: Scope
    tai: str
    ues: int = 0
    region: str = "sim"


@dataclass(frozen=True, slots=True)
class DnnSpec:
    name: str
    scope: Scope
    cidr: IPv4Network
    site_prefix: int
    qfi: int = 9
    five_qi: int = 9
    ambr_kbps: int = 1_000_000

    def site_pools(self, count: int) -> list[IPv4Network]:
        """The first ``count`` per-site pools carved out of :attr:`cidr`, in site order."""
        pools = self.cidr.subnets(new_prefix=self.site_prefix)
        return [next(pools) for _ in range(count)]


@dataclass(frozen=True, slots=True)
class SimTopology:
    sites: tuple[SiteSpec, ...]
    dnns: tuple[DnnSpec, ...]
    snssai: str = "1-000001"

    def in_scope(self, dnn: DnnSpec) -> list[SiteSpec]:
        return [site for site in self.sites if site.kind == dnn.scope]

    def dnns_of(self, site: SiteSpec) -> list[DnnSpec]:
        """The DNNs a UE at ``site`` asks for, in PDU session ID order (edge DNNs first)."""
        edge = [d for d in self.dnns if d.scope == "edge"] if site.kind == "edge" else []
        return edge + [d for d in self.dnns if d.scope == "cloud"]

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (what :func:`parse_topology` reads back unchanged)."""
        return {
            "apiVersion": "edgecups/v1",
            "kind": KIND,
            "snssai": self.snssai,
            "dnns": [
                {
                    "name": d.name,
                    "scope": d.scope,
                    "cidr": str(d.cidr),
                    "site_prefix": d.site_prefix,
                    "qfi": d.qfi,
                    "five_qi": d.five_qi,
                    "ambr_kbps": d.ambr_kbps,
                }
                for d in self.dnns
            ],
            "sites": [
                {"name": s.name, "kind": s.kind, "tai": s.tai, "ues": s.ues, "region": s.region} for s in self.sites
            ],
        }


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def __call__(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


def _int(err: _Errors, data: Mapping[str, Any], key: str, path: str, low: int, high: int, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        err(f"{path}.{key}", f"expected an integer in {low}..{high}, got {value!r}")
        return default
    return value


def _known_keys(err: _Errors, data: Mapping[str, Any], path: str, allowed: Sequence[str]) -> None:
    for key in data:
        if key not in allowed:
            err(f"{path}.{key}" if path else str(key), f"unknown field (allowed: {', '.join(allowed)})")


def _site(err: _Errors, data: object, path: str) -> SiteSpec | None:
    if not isinstance(data, Mapping):
        err(path, "expected a mapping with name, kind, tai and ues")
        return None
    _known_keys(err, data, path, ("name", "kind", "tai", "ues", "region"))
    name, kind, tai = data.get("name"), data.get("kind"), data.get("tai")
    if not isinstance(name, str) or not _SITE_NAME.fullmatch(name):
        err(f"{path}.name", f"{name!r} is not a site name (lower-case letters, digits and '-', 1 to 24 characters)")
    elif name in BROKER_USERS:
        err(f"{path}.name", f"{name!r} is a user of the MQTT broker, not a site name (the site's user bears its name)")
    if kind not in ("edge", "cloud"):
        err(f"{path}.kind", f"{kind!r} is not edge or cloud")
    if not isinstance(tai, str) or not _TAI.fullmatch(tai):
        err(f"{path}.tai", f"{tai!r} is not a TAI ('MCC-MNC-TAC' digits, e.g. '001-01-000001'; quote it)")
    ues = _int(err, data, "ues", path, 0, MAX_UES, 0)
    region = data.get("region", "sim")
    if not isinstance(region, str) or not _SITE_NAME.fullmatch(region):
        err(f"{path}.region", f"{region!r} is not a region name (like a site name)")
    if not (isinstance(name, str) and isinstance(tai, str) and kind in ("edge", "cloud") and isinstance(region, str)):
        return None
    return SiteSpec(name, kind, tai, ues, region)


def _dnn(err: _Errors, data: object, path: str) -> DnnSpec | None:
    if not isinstance(data, Mapping):
        err(path, "expected a mapping with name, scope, cidr and site_prefix")
        return None
    _known_keys(err, data, path, ("name", "scope", "cidr", "site_prefix", "qfi", "five_qi", "ambr_kbps"))
    name, scope, cidr_text = data.get("name"), data.get("scope"), data.get("cidr")
    try:
        validate_name("DNN", name, path=f"{path}.name")
    except SchemaError as exc:
        for field_path, message in exc.errors:
            err(field_path, message)
    if scope not in ("edge", "cloud"):
        err(f"{path}.scope", f"{scope!r} is not edge (a pool per edge site) or cloud (pools at cloud sites)")
    cidr: IPv4Network | None = None
    try:
        cidr = IPv4Network(str(cidr_text))
    except ValueError as exc:
        err(f"{path}.cidr", f"{cidr_text!r} is not an IPv4 prefix with its host bits clear ({exc})")
    if cidr is not None and not cidr.subnet_of(UE_SPACE):
        err(f"{path}.cidr", f"{cidr} is outside {UE_SPACE}: UE pools of the simulation stay in private space")
    site_prefix = _int(err, data, "site_prefix", path, 8, 30, cidr.prefixlen if cidr else 8)
    if cidr is not None and site_prefix < cidr.prefixlen:
        err(f"{path}.site_prefix", f"/{site_prefix} is larger than the DNN's cidr {cidr}")
    qfi = _int(err, data, "qfi", path, 1, 63, 9)
    five_qi = _int(err, data, "five_qi", path, 1, 255, 9)
    ambr = _int(err, data, "ambr_kbps", path, 1, 2**31 - 1, 1_000_000)
    if not isinstance(name, str) or scope not in ("edge", "cloud") or cidr is None:
        return None
    return DnnSpec(name, scope, cidr, site_prefix, qfi, five_qi, ambr)


def _check_whole(err: _Errors, topology: SimTopology) -> None:
    if not 1 <= len(topology.sites) <= MAX_SITES:
        err("sites", f"{len(topology.sites)} sites: expected 1 to {MAX_SITES}")
    for what, values in (("name", [s.name for s in topology.sites]), ("tai", [s.tai for s in topology.sites])):
        for i, value in enumerate(values):
            if value in values[:i]:
                err(f"sites[{i}].{what}", f"{value!r} is already used by sites[{values.index(value)}]")
    names = [d.name for d in topology.dnns]
    for i, dnn in enumerate(topology.dnns):
        path = f"dnns[{i}]"
        if dnn.name in names[:i]:
            err(f"{path}.name", f"{dnn.name!r} is listed twice")
        sites = topology.in_scope(dnn)
        if not sites:
            err(f"{path}.scope", f"no {dnn.scope} site: the DNN would have no pool")
            continue
        available = 2 ** (dnn.site_prefix - dnn.cidr.prefixlen)
        if len(sites) > available:
            err(f"{path}.site_prefix", f"{dnn.cidr} holds {available} /{dnn.site_prefix} pools: {len(sites)} needed")
        hosts = 2 ** (32 - dnn.site_prefix) - 2
        for site in sites:
            if site.ues > hosts:
                err(f"{path}.site_prefix", f"a /{dnn.site_prefix} holds {hosts} UEs; {site.name} has {site.ues}")
        for j, other in enumerate(topology.dnns[:i]):
            if dnn.cidr.overlaps(other.cidr):
                err(f"{path}.cidr", f"{dnn.cidr} overlaps dnns[{j}] ({other.name}, {other.cidr})")
    if not topology.dnns:
        err("dnns", "at least one DNN is needed")
    if len(topology.dnns) > 15:  # a UE's PDU session IDs are 1..15 (TS 24.007 §11.2.3.1b), one per DNN
        err("dnns", f"{len(topology.dnns)} DNNs: at most 15 (one PDU session each per UE)")
    for i, site in enumerate(topology.sites):
        if topology.dnns and not any(d.scope == site.kind for d in topology.dnns):
            err(f"sites[{i}].kind", f"no DNN has scope {site.kind}: the site's UPF would serve nothing")
    if not _SNSSAI.fullmatch(topology.snssai) or int(topology.snssai.split("-")[0]) > 255:
        err("snssai", f"{topology.snssai!r} is not an S-NSSAI ('SST' or 'SST-SD', SD 6 hex digits)")


def parse_topology(data: object) -> SimTopology:
    """A checked topology from its YAML mapping; :class:`TopologyError` lists every problem."""
    err = _Errors()
    if not isinstance(data, Mapping):
        raise TopologyError(["(top): expected a mapping (apiVersion, kind, snssai, dnns, sites)"])
    _known_keys(err, data, "", ("apiVersion", "kind", "snssai", "dnns", "sites"))
    if data.get("apiVersion", "edgecups/v1") != "edgecups/v1":
        err("apiVersion", f"{data.get('apiVersion')!r}: expected edgecups/v1")
    if data.get("kind", KIND) != KIND:
        err("kind", f"{data.get('kind')!r}: expected {KIND}")
    sites_data, dnns_data = data.get("sites"), data.get("dnns")
    if not isinstance(sites_data, list):
        err("sites", "expected a list of sites")
        sites_data = []
    if not isinstance(dnns_data, list):
        err("dnns", "expected a list of DNNs")
        dnns_data = []
    sites = [_site(err, s, f"sites[{i}]") for i, s in enumerate(sites_data)]
    dnns = [_dnn(err, d, f"dnns[{i}]") for i, d in enumerate(dnns_data)]
    snssai = data.get("snssai", "1-000001")
    if not isinstance(snssai, str):
        err("snssai", f"expected a string like '1-000001', got {snssai!r}")
        snssai = "1-000001"
    if err.items:  # the whole-set checks need every entry parsed
        raise TopologyError(err.items)
    topology = SimTopology(tuple(s for s in sites if s), tuple(d for d in dnns if d), snssai)
    _check_whole(err, topology)
    if err.items:
        raise TopologyError(err.items)
    return topology


def load_topology(path: Path | None = None) -> SimTopology:
    """Read and check a topology file (the default one without ``path``)."""
    path = path or DEFAULT_TOPOLOGY
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TopologyError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([f"{path}: not valid YAML: {exc}"]) from None
    try:
        return parse_topology(data)
    except TopologyError as exc:
        raise TopologyError([f"{path}: {line}" for line in exc.errors]) from None


def scale(topology: SimTopology, *, sites: int | None = None, ues: int | None = None) -> SimTopology:
    """``--sites N``: N edge sites (the first N of the file, then more like its first edge site,
    named ``edge-K`` with the next free TAC); ``--ues M``: M UEs at every edge site. Cloud
    sites stay as written. The result is checked again."""
    edges = [s for s in topology.sites if s.kind == "edge"]
    clouds = [s for s in topology.sites if s.kind == "cloud"]
    if sites is not None:
        if not 1 <= sites <= MAX_SITES - len(clouds):
            raise TopologyError([f"--sites: {sites} edge sites: expected 1 to {MAX_SITES - len(clouds)}"])
        template = edges[0] if edges else SiteSpec("edge-1", "edge", "001-01-000001", 1)
        match = _TAI.fullmatch(template.tai)
        assert match is not None  # parse_topology checked it
        taken_tai = {s.tai for s in topology.sites}
        taken_name = {s.name for s in topology.sites}
        tac = 0
        while len(edges) < sites:
            k = len(edges) + 1
            name = f"edge-{k}"
            while name in taken_name:
                k += 1
                name = f"edge-{k}"
            tac += 1
            while (tai := f"{match[1]}-{match[2]}-{tac:06d}") in taken_tai:
                tac += 1
            taken_tai.add(tai)
            taken_name.add(name)
            edges.append(replace(template, name=name, tai=tai))
        edges = edges[:sites]
    if ues is not None:
        if not 0 <= ues <= MAX_UES:
            raise TopologyError([f"--ues: {ues} UEs per edge site: expected 0 to {MAX_UES}"])
        edges = [replace(site, ues=ues) for site in edges]
    return parse_topology(replace(topology, sites=(*edges, *clouds)).to_dict())
