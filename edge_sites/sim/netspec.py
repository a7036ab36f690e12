"""The declarative description of a namespace topology (no I/O): which namespaces, the veth
pairs between them with their addresses and MTUs, static routes and per-namespace sysctls.

Every address and route must lie in the RFC 2544 benchmark range 198.18.0.0/15 and default
routes are refused, so a built topology has no path to the host's network. The builder is
:class:`edge_sites.sim.netns.Topology`; :mod:`edge_sites.sim.netns` re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Final

__all__ = ["BENCHMARK_NET", "IFNAMSIZ", "Endpoint", "Route", "Sysctl", "TopologySpec", "VethLink", "check_contained"]

#: RFC 2544 benchmark range: the only addresses a topology may use.
BENCHMARK_NET: Final = IPv4Network("198.18.0.0/15")
#: Linux IFNAMSIZ is 16 including the NUL.
IFNAMSIZ: Final = 15


def check_contained(what: str, net: IPv4Network) -> None:
    """Raise ValueError unless ``net`` lies inside :data:`BENCHMARK_NET`."""
    if not net.subnet_of(BENCHMARK_NET):
        raise ValueError(f"{what} {net} is outside {BENCHMARK_NET} (RFC 2544): refusing, it could leave the namespaces")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a veth pair: its namespace role, interface name, address and MTU."""

    ns: str
    ifname: str
    address: IPv4Interface | None = None
    mtu: int = 1500

    def __post_init__(self) -> None:
        if not 0 < len(self.ifname) <= IFNAMSIZ or "/" in self.ifname or " " in self.ifname:
            raise ValueError(f"bad interface name {self.ifname!r} (1..{IFNAMSIZ} chars, no '/' or space)")
        if self.address is not None:
            check_contained(f"address of {self.ifname}", self.address.network)
        if not 68 <= self.mtu <= 65535:
            raise ValueError(f"MTU {self.mtu} of {self.ifname} out of range")


@dataclass(frozen=True, slots=True)
class VethLink:
    """A veth pair joining two namespaces (or two interfaces of one)."""

    a: Endpoint
    b: Endpoint


@dataclass(frozen=True, slots=True)
class Route:
    """A static route in one namespace; default routes are refused (nothing may leave)."""

    ns: str
    dst: IPv4Network
    gateway: IPv4Address

    def __post_init__(self) -> None:
        if self.dst.prefixlen == 0:
            raise ValueError(f"default route in {self.ns!r} refused: traffic could leave the namespaces")
        check_contained(f"route destination in {self.ns!r}", self.dst)
        check_contained(f"gateway in {self.ns!r}", IPv4Network(self.gateway))


@dataclass(frozen=True, slots=True)
class Sysctl:
    """A per-namespace sysctl under /proc/sys/net, e.g. ``Sysctl("upf", "net.ipv4.ip_forward", "1")``."""

    ns: str
    key: str
    value: str

    def __post_init__(self) -> None:
        # Only the net.* tree is per network namespace; anything else would change the host.
        if not self.key.startswith("net.") or ".." in self.key or "/" in self.key:
            raise ValueError(f"sysctl {self.key!r} refused: only per-namespace net.* keys")

    @property
    def path(self) -> str:
        return "/proc/sys/" + self.key.replace(".", "/")


@dataclass(frozen=True, slots=True)
class TopologySpec:
    """Namespaces (by role), the veths between them, routes and sysctls; checked for consistency."""

    namespaces: tuple[str, ...]
    links: tuple[VethLink, ...] = ()
    routes: tuple[Route, ...] = ()
    sysctls: tuple[Sysctl, ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.namespaces)) != len(self.namespaces):
            raise ValueError(f"duplicate namespace role in {self.namespaces}")
        for role in self.namespaces:
            if not role.isalnum() or not role.isascii():
                raise ValueError(f"namespace role {role!r} must be ASCII alphanumeric")
        known = set(self.namespaces)
        ifnames: set[tuple[str, str]] = set()
        for link in self.links:
            for end in (link.a, link.b):
                if end.ns not in known:
                    raise ValueError(f"interface {end.ifname} refers to unknown namespace {end.ns!r}")
                if (end.ns, end.ifname) in ifnames or end.ifname == "lo":
                    raise ValueError(f"interface {end.ifname} defined twice in namespace {end.ns!r}")
                ifnames.add((end.ns, end.ifname))
        items: tuple[Route | Sysctl, ...] = (*self.routes, *self.sysctls)
        for item in items:
            if item.ns not in known:
                raise ValueError(f"{item} refers to unknown namespace {item.ns!r}")
