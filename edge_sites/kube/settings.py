"""What a Kubernetes deployment needs beyond the site manifests: images, addresses, per-site plumbing.

Theory of operation:

* :class:`RenderOptions` holds the deployment-wide choices (namespace, images, the control
  plane's PFCP address, the database); ``edgecups deploy render`` fills it from its options.
* :class:`SiteSettings` holds what differs between the nodes of one site and the next: which
  CNI plugin gives the UPF its N4, N3 and N6 interfaces and on which host devices, hugepages
  and CPUs. Every key has a default, so a new site needs no settings at all when its nodes
  follow the conventions (host devices named ``n4``, ``n3`` and ``n6``).
* :func:`parse_settings` reads the optional settings file: ``sites: {"*": {...}, <site>:
  {...}}``, where ``"*"`` applies to every site and a site's own keys override it. As with
  the manifests, unknown keys are errors and every problem is reported at once.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .._checks import did_you_mean
from ..schema import describe

__all__ = ["CNI_TYPES", "RenderOptions", "SiteSettings", "Settings", "UpfSettings", "parse_settings"]

#: Multus delegates this render knows how to configure (reference CNI plugins and the SR-IOV CNI).
CNI_TYPES: Final = ("macvlan", "ipvlan", "host-device", "sriov")
_QUANTITY = re.compile(r"[0-9]+(Ki|Mi|Gi|Ti)?\Z")
_HUGEPAGE_SIZES: Final = ("2Mi", "1Gi")
# Linux dev_valid_name(): 1-15 bytes, no '/', ':' or whitespace. A VLAN sub-interface ("ens5.100") is fine.
_DEVICE = re.compile(r"[^/:\s]{1,15}\Z")
# An extended resource name (SR-IOV device plugin pools): "vendor.example/name".
_RESOURCE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """How one site's UPF pods get their interfaces and resources (defaults: the documented conventions)."""

    #: CNI plugin of the N4, N3 and N6 attachments.
    cni: str = "macvlan"
    #: Host device (macvlan, ipvlan, host-device) or SR-IOV resource name (sriov) of each network.
    n4_master: str = "n4"
    n3_master: str = "n3"
    n6_master: str = "n6"
    #: N6 device per Network Instance, where one differs from ``n6_master`` (e.g. a VLAN per DN).
    n6_masters: Mapping[str, str] = field(default_factory=dict)
    #: Prefix length of the UPF's N4 address on its N4 network (None: 24 for IPv4, 64 for IPv6).
    n4_prefix_length: int | None = None
    #: Next hop towards the control plane's PFCP address on the N4 network (None: on-link).
    n4_gateway: str | None = None
    #: Prefix length of the UPFs' N3 addresses on VPP's N3 interface (None: 24 for IPv4, 64 for IPv6).
    n3_prefix_length: int | None = None
    #: Next hop in each Network Instance's data network (the agent's n6.<instance>.gateway).
    n6_gateways: Mapping[str, str] = field(default_factory=dict)
    #: Hugepages VPP takes (its buffers and heap), their size, and the CPUs and memory of the VPP container.
    hugepages: str = "1Gi"
    hugepage_size: str = "2Mi"
    cpu: int = 2
    memory: str = "1Gi"

    def n6_device(self, network_instance: str) -> str:
        return self.n6_masters.get(network_instance, self.n6_master)


@dataclass(frozen=True, slots=True)
class UpfSettings:
    """What only one UPF has: its addresses on the N6 side, per Network Instance ("a.b.c.d/len")."""

    n6_addresses: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Deployment-wide choices of one render."""

    #: Where the control plane's PFCP (N4) listens: UPFs allow it and reach it there.
    cp_pfcp_address: str
    namespace: str = "edgecups"
    cp_image: str = "edgecups/cp:0.1.0"
    upf_image: str = "edgecups/upf:0.1.0"
    vpp_image: str = "edgecups/vpp:26.06"
    mosquitto_image: str = "eclipse-mosquitto:2.0.20"
    #: The site whose nodes run the control plane, the broker and the database (None: the only cloud site).
    cp_site: str | None = None
    #: An external PostgreSQL URL without its password (PGPASSWORD comes from a Secret); None: CloudNativePG.
    database_url: str | None = None
    #: Namespace Prometheus scrapes from (the NetworkPolicies let it reach /metrics).
    monitoring_namespace: str = "monitoring"
    #: Per-site settings; ``"*"`` applies to every site.
    sites: Mapping[str, SiteSettings] = field(default_factory=dict)
    #: Per-UPF settings, by Node ID.
    upfs: Mapping[str, UpfSettings] = field(default_factory=dict)

    def site(self, name: str) -> SiteSettings:
        return self.sites.get(name) or self.sites.get("*") or SiteSettings()

    def upf(self, node_id: str) -> UpfSettings:
        return self.upfs.get(node_id) or UpfSettings()


_SITE_KEYS: Final = tuple(f.name for f in dataclasses.fields(SiteSettings))


@dataclass(frozen=True, slots=True)
class Settings:
    """A settings file, checked: per-site and per-UPF settings."""

    sites: dict[str, SiteSettings]
    upfs: dict[str, UpfSettings]


def parse_settings(data: object, where: str = "settings") -> tuple[Settings, list[str]]:
    """A decoded settings file (``sites:``, ``upfs:``) checked, and every problem as ``where: path: message``."""
    errors: list[str] = []
    settings = Settings({}, {})

    def err(path: str, message: str) -> None:
        errors.append(f"{where}: {path}: {message}")

    if data is None:
        return settings, errors
    if not isinstance(data, Mapping):
        return settings, [f"{where}: expected a mapping with the keys sites and upfs, got {describe(data)}"]
    for key in data:
        if key not in ("sites", "upfs"):
            err(str(key), "unknown key; expected sites or upfs")
    raw_sites = data.get("sites") or {}
    if not isinstance(raw_sites, Mapping):
        err("sites", f"expected a mapping of site names (or '*') to settings, got {describe(raw_sites)}")
        raw_sites = {}
    common = raw_sites.get("*") or {}
    for name, raw in raw_sites.items():
        if not isinstance(raw, Mapping):
            err(f"sites.{name}", f"expected a mapping of settings, got {describe(raw)}")
            continue
        merged = {**common, **raw} if isinstance(common, Mapping) else dict(raw)
        site = _site(merged, f"sites.{name}", set(raw), err)
        if site is not None:
            settings.sites[str(name)] = site
    raw_upfs = data.get("upfs") or {}
    if not isinstance(raw_upfs, Mapping):
        err("upfs", f"expected a mapping of UPF Node IDs to settings, got {describe(raw_upfs)}")
        raw_upfs = {}
    for name, raw in raw_upfs.items():
        upf = _upf(raw, f"upfs.{name}", err)
        if upf is not None:
            settings.upfs[str(name)] = upf
    return settings, errors


def _upf(raw: object, path: str, err: Any) -> UpfSettings | None:
    if not isinstance(raw, Mapping):
        err(path, f"expected a mapping with n6_addresses, got {describe(raw)}")
        return None
    ok = True
    for key in raw:
        if key != "n6_addresses":
            err(f"{path}.{key}", "unknown key; expected n6_addresses")
            ok = False
    addresses = raw.get("n6_addresses") or {}
    if not isinstance(addresses, Mapping):
        err(
            f"{path}.n6_addresses",
            f"expected a mapping of Network Instance to address/length, got {describe(addresses)}",
        )
        return None
    out: dict[str, str] = {}
    for instance, value in addresses.items():
        try:
            if not isinstance(value, str) or "/" not in value:
                raise ValueError
            out[str(instance)] = str(ipaddress.ip_interface(value))
        except ValueError:
            err(
                f"{path}.n6_addresses.{instance}",
                f"expected address/prefix length such as 203.0.113.2/24, got {describe(value)}",
            )
            ok = False
    return UpfSettings(out) if ok else None


def _site(raw: Mapping[str, Any], path: str, own: set[str], err: Any) -> SiteSettings | None:
    before: list[int] = [0]

    def bad(key: str, message: str) -> None:
        before[0] += 1
        # A key inherited from "*" is reported once there, not again for every site.
        if key.split(".")[0] in own or path == "sites.*":
            err(f"{path}.{key}", message)

    for key in raw:
        if key not in _SITE_KEYS:
            bad(str(key), f"unknown key{did_you_mean(str(key), _SITE_KEYS)}; expected one of {', '.join(_SITE_KEYS)}")
    values: dict[str, Any] = {}
    cni = raw.get("cni", "macvlan")
    if cni not in CNI_TYPES:
        bad("cni", f"{cni!r} is not one of {', '.join(CNI_TYPES)}")
    else:
        values["cni"] = cni
    for key in ("n4_master", "n3_master", "n6_master"):
        if key in raw:
            values[key] = _master(raw[key], cni, lambda m, k=key: bad(k, m))
    masters = raw.get("n6_masters", {})
    if not isinstance(masters, Mapping):
        bad("n6_masters", f"expected a mapping of Network Instance to device, got {describe(masters)}")
    else:
        values["n6_masters"] = {
            str(k): _master(v, cni, lambda m, k=k: bad(f"n6_masters.{k}", m)) for k, v in masters.items()
        }
    for key in ("n4_prefix_length", "n3_prefix_length"):
        if raw.get(key) is not None:
            length = raw[key]
            if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 128:
                bad(key, f"expected a prefix length 1..128, got {describe(length)}")
            values[key] = length
    gateways = raw.get("n6_gateways", {})
    if not isinstance(gateways, Mapping):
        bad("n6_gateways", f"expected a mapping of Network Instance to next-hop address, got {describe(gateways)}")
    else:
        values["n6_gateways"] = {}
        for instance, value in gateways.items():
            try:
                values["n6_gateways"][str(instance)] = str(ipaddress.ip_address(str(value)))
            except ValueError:
                bad(f"n6_gateways.{instance}", f"{value!r} is not an IP address")
    if raw.get("n4_gateway") is not None:
        try:
            values["n4_gateway"] = str(ipaddress.ip_address(str(raw["n4_gateway"])))
        except ValueError:
            bad("n4_gateway", f"{raw['n4_gateway']!r} is not an IP address")
    for key in ("hugepages", "memory"):
        if key in raw:
            if not isinstance(raw[key], str) or not _QUANTITY.match(raw[key]):
                bad(key, f"expected a quantity such as 1Gi or 512Mi, got {describe(raw[key])}")
            values[key] = raw[key]
    if "hugepage_size" in raw:
        if raw["hugepage_size"] not in _HUGEPAGE_SIZES:
            bad("hugepage_size", f"{raw['hugepage_size']!r} is not one of {', '.join(_HUGEPAGE_SIZES)}")
        values["hugepage_size"] = raw["hugepage_size"]
    if "cpu" in raw:
        cpu = raw["cpu"]
        # VPP's main thread and at least one worker, each on a whole core (Guaranteed QoS, static CPU manager).
        if isinstance(cpu, bool) or not isinstance(cpu, int) or not 1 <= cpu <= 256:
            bad("cpu", f"expected a whole number of CPUs 1..256, got {describe(cpu)}")
        values["cpu"] = cpu
    if before[0]:
        return None
    return SiteSettings(**values)


def _master(value: object, cni: object, bad: Any) -> str:
    if cni == "sriov":
        if not isinstance(value, str) or not _RESOURCE.match(value):
            bad(f"with cni sriov, expected the SR-IOV device plugin's resource name (e.g. intel.com/sriov_n3), "
                f"got {describe(value)}")  # fmt: skip
    elif not isinstance(value, str) or not _DEVICE.match(value) or value in (".", ".."):
        bad(f"expected a host network device name (1-15 characters, no '/', ':' or spaces), got {describe(value)}")
    return str(value)
