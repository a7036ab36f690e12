"""Network namespaces for tests: :mod:`edge_sites.sim.netns` (re-exported here) plus the pytest glue.

The library itself (specs, the :class:`Topology` builder, :func:`run_in_netns`, sockets and
processes inside namespaces, stale cleanup) is product code in ``edge_sites/sim/netns.py``; see
its docstring for the theory of operation. This module adds what only tests need: the
:func:`needs_netns` marker, the UPF test topology of ``../shared/DATAPLANE.md`` and its
``upf_topology`` fixture.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Final, TypeVar, cast

import pytest

from edge_sites.sim.netns import (
    BENCHMARK_NET,
    CLONE_NEWNET,
    DEFAULT_PREFIX,
    DEFAULT_TIMEOUT,
    IFNAMSIZ,
    NETNS_RUN_DIR,
    RUN_STARTED,
    Created,
    Endpoint,
    NotContainedError,
    Route,
    Sysctl,
    TeardownError,
    Topology,
    TopologySpec,
    VethLink,
    current_netns_name,
    interfaces_in,
    list_namespaces,
    netns_path,
    netns_socket,
    netns_unavailable_reason,
    read_sysctl,
    remove_stale_namespaces,
    require_project_netns,
    run_in_netns,
    run_python_in_netns,
)

__all__ = [
    "BENCHMARK_NET",
    "CLONE_NEWNET",
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT",
    "DN_N6",
    "GNB_N3",
    "IFNAMSIZ",
    "N3_MTU",
    "NETNS_RUN_DIR",
    "RUN_STARTED",
    "UE_POOL",
    "UPF_N3",
    "UPF_N6",
    "UPF_TOPOLOGY",
    "Created",
    "Endpoint",
    "NotContainedError",
    "Route",
    "Sysctl",
    "TeardownError",
    "Topology",
    "TopologySpec",
    "UpfTopology",
    "VethLink",
    "build_upf_topology",
    "current_netns_name",
    "interfaces_in",
    "list_namespaces",
    "needs_netns",
    "netns_path",
    "netns_socket",
    "netns_unavailable_reason",
    "read_sysctl",
    "remove_stale_namespaces",
    "require_project_netns",
    "run_in_netns",
    "run_python_in_netns",
    "upf_topology",
]

_UNAVAILABLE: Final = netns_unavailable_reason()

F = TypeVar("F", bound=Callable[..., object])


def needs_netns(test: F) -> F:
    """Decorator for every test that builds namespaces: marks it ``needs_root`` and skips it,
    with the reason, when not root or when ``ip netns`` is unavailable."""
    marked = pytest.mark.needs_root(test)
    return cast(F, pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")(marked))


GNB_N3 = IPv4Interface("198.18.1.2/24")
UPF_N3 = IPv4Interface("198.18.1.1/24")
UPF_N6 = IPv4Interface("198.18.2.1/24")
DN_N6 = IPv4Interface("198.18.2.2/24")
UE_POOL = IPv4Network("198.19.0.0/16")
#: GTP-U encapsulation adds 44 octets (IPv4 20 + UDP 8 + GTP-U 8 + PDU Session Container 8).
N3_MTU = 1600

#: The UPF test topology of ../shared/DATAPLANE.md:
#: gnb: gnb0 198.18.1.2/24 == n3 198.18.1.1/24 :upf: n6 198.18.2.1/24 == dn0 198.18.2.2/24 :dn,
#: with IP forwarding in upf and the UE pool routed from dn via the UPF's N6 address.
UPF_TOPOLOGY: Final = TopologySpec(
    namespaces=("gnb", "upf", "dn"),
    links=(
        VethLink(Endpoint("gnb", "gnb0", GNB_N3, N3_MTU), Endpoint("upf", "n3", UPF_N3, N3_MTU)),
        VethLink(Endpoint("upf", "n6", UPF_N6), Endpoint("dn", "dn0", DN_N6)),
    ),
    routes=(Route("dn", UE_POOL, UPF_N6.ip),),
    sysctls=(Sysctl("upf", "net.ipv4.ip_forward", "1"),),
)


@dataclass(frozen=True, slots=True)
class UpfTopology:
    """What a UPF test needs to know about the built :data:`UPF_TOPOLOGY`."""

    topology: Topology
    gnb_ns: str
    upf_ns: str
    dn_ns: str
    gnb_if: str = "gnb0"
    n3_if: str = "n3"
    n6_if: str = "n6"
    dn_if: str = "dn0"
    gnb_addr: IPv4Address = GNB_N3.ip
    n3_addr: IPv4Address = UPF_N3.ip
    n6_addr: IPv4Address = UPF_N6.ip
    dn_addr: IPv4Address = DN_N6.ip
    ue_pool: IPv4Network = UE_POOL


@contextlib.contextmanager
def build_upf_topology(prefix: str = DEFAULT_PREFIX) -> Iterator[UpfTopology]:
    """Build :data:`UPF_TOPOLOGY`; everything is removed (and checked) when the block exits."""
    with Topology(UPF_TOPOLOGY, prefix=prefix) as topo:
        yield UpfTopology(topo, topo.ns("gnb"), topo.ns("upf"), topo.ns("dn"))


@pytest.fixture
def upf_topology() -> Iterator[UpfTopology]:
    """The gnb/upf/dn topology, fresh per test; skips when namespaces are unavailable."""
    if _UNAVAILABLE is not None:
        pytest.skip(_UNAVAILABLE)
    with build_upf_topology() as upf:
        yield upf
