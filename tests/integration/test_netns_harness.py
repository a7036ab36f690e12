"""The network-namespace harness carries real packets and cleans up after itself.

(a) UDP to the UPF's N3 address reaches only a socket in the upf namespace; (b) with IP
forwarding in upf and the UE-pool route in dn, DN traffic to a UE address enters the UPF on N6;
(c) teardown removes every veth and namespace, also when the body raises; (d) two topologies
coexist without colliding. Spec validation (containment in 198.18.0.0/15) runs without root.
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
import struct
import time
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from pyroute2 import IPRoute, netns  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from tests.harness.netns import (
    UE_POOL,
    UPF_TOPOLOGY,
    Endpoint,
    Route,
    Sysctl,
    Topology,
    TopologySpec,
    UpfTopology,
    VethLink,
    build_upf_topology,
    interfaces_in,
    list_namespaces,
    needs_netns,
    netns_path,
    read_sysctl,
    remove_stale_namespaces,
)

pytest_plugins = ["tests.harness.conftest_plugin"]

GTPU_PORT = 2152
ETH_P_IP = 0x0800
UE_ADDR = "198.19.0.7"


def _recv_or_none(sock: socket.socket) -> bytes | None:
    try:
        return sock.recv(2048)
    except TimeoutError:
        return None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Route("dn", IPv4Network("0.0.0.0/0"), IPv4Address("198.18.2.1")), "default route"),
        (lambda: Route("dn", IPv4Network("10.0.0.0/8"), IPv4Address("198.18.2.1")), "outside 198.18.0.0/15"),
        (lambda: Endpoint("dn", "dn0", IPv4Interface("192.168.1.2/24")), "outside 198.18.0.0/15"),
        (lambda: Endpoint("dn", "a-name-that-is-too-long"), "bad interface name"),
        (lambda: Sysctl("upf", "kernel.panic", "1"), "only per-namespace net"),
        (
            lambda: TopologySpec(("dn",), routes=(Route("upf", UE_POOL, IPv4Address("198.18.2.1")),)),
            "unknown namespace",
        ),
        (lambda: TopologySpec(("a", "b"), links=(VethLink(Endpoint("a", "x"), Endpoint("a", "x")),)), "defined twice"),
    ],
)
def test_spec_refuses_what_could_escape_or_clash(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=message):
        build()


def test_upf_spec_matches_dataplane_topology() -> None:
    ends = {(e.ns, e.ifname): e for link in UPF_TOPOLOGY.links for e in (link.a, link.b)}
    assert str(ends[("gnb", "gnb0")].address) == "198.18.1.2/24"
    assert str(ends[("upf", "n3")].address) == "198.18.1.1/24"
    assert str(ends[("upf", "n6")].address) == "198.18.2.1/24"
    assert str(ends[("dn", "dn0")].address) == "198.18.2.2/24"
    assert ends[("upf", "n3")].mtu == ends[("gnb", "gnb0")].mtu == 1600


@needs_netns
def test_udp_to_n3_reaches_only_the_upf(upf_topology: UpfTopology) -> None:
    topo = upf_topology.topology
    upf = topo.udp_socket("upf", bind=(str(upf_topology.n3_addr), GTPU_PORT))
    # Listeners on the GTP-U port in the other namespaces must stay silent.
    others = [topo.udp_socket(role, bind=("0.0.0.0", GTPU_PORT), timeout=0.2) for role in ("gnb", "dn")]
    gnb = topo.udp_socket("gnb", bind=(str(upf_topology.gnb_addr), 0))
    payload = b"G-PDU stand-in " + os.urandom(8)
    gnb.sendto(payload, (str(upf_topology.n3_addr), GTPU_PORT))

    data, peer = upf.recvfrom(2048)
    assert data == payload
    assert peer == gnb.getsockname()
    assert [_recv_or_none(s) for s in others] == [None, None]
    # The addresses exist only inside the namespaces, never in the host's.
    with IPRoute() as host:
        host_addrs = {a.get("IFA_ADDRESS") for a in host.get_addr(family=socket.AF_INET)}
    assert not host_addrs & {str(upf_topology.gnb_addr), str(upf_topology.n3_addr)}


@needs_netns
def test_dn_traffic_to_ue_pool_is_routed_into_upf_n6(upf_topology: UpfTopology) -> None:
    topo = upf_topology.topology
    assert read_sysctl(upf_topology.upf_ns, "net.ipv4.ip_forward") == "1"
    assert read_sysctl(upf_topology.dn_ns, "net.ipv4.ip_forward") == "0"  # set only where asked

    # AF_PACKET/SOCK_DGRAM bound to n6: every IPv4 packet arriving on N6, without the MAC header.
    capture = topo.open_socket("upf", socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    capture.bind((upf_topology.n6_if, ETH_P_IP))
    capture.settimeout(2.0)
    dn = topo.udp_socket("dn")
    payload = b"downlink " + os.urandom(8)
    dn.sendto(payload, (UE_ADDR, 5000))

    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        packet, (ifname, _, pkttype, *_) = capture.recvfrom(4096)
        if packet[9] != socket.IPPROTO_UDP or packet[16:20] != socket.inet_aton(UE_ADDR):
            continue  # ARP is filtered by the protocol; skip anything else that is not ours
        ihl = (packet[0] & 0x0F) * 4
        _, dport, _, _ = struct.unpack("!HHHH", packet[ihl : ihl + 8])
        assert ifname == upf_topology.n6_if
        assert pkttype == socket.PACKET_HOST  # sent to n6's MAC: dn resolved its gateway 198.18.2.1
        assert packet[12:16] == socket.inet_aton(str(upf_topology.dn_addr))
        assert dport == 5000
        assert packet[ihl + 8 :] == payload
        return
    pytest.fail(f"no packet to {UE_ADDR} arrived on {upf_topology.n6_if}")


@needs_netns
def test_teardown_removes_everything_even_when_the_body_raises() -> None:
    held: dict[str, int] = {}
    topo = Topology(UPF_TOPOLOGY)
    with pytest.raises(RuntimeError, match="body failed"):
        with topo:
            names = dict(topo.names)
            assert set(names.values()) <= list_namespaces()
            assert {"gnb0"} <= interfaces_in(names["gnb"]) and {"n3", "n6"} <= interfaces_in(names["upf"])
            # Keep the namespaces' nsfs inodes open so they can be inspected after their names go.
            held = {role: os.open(netns_path(name), os.O_RDONLY) for role, name in names.items()}
            raise RuntimeError("body failed")
    try:
        # Only our own names are compared: a concurrent run may add or remove its own meanwhile.
        assert not set(names.values()) & list_namespaces()
        assert topo.created == []
        # The veths were deleted explicitly (not merely orphaned in a namespace kept alive).
        for fd in held.values():
            assert interfaces_in(fd) == {"lo"}
    finally:
        for fd in held.values():
            os.close(fd)


@needs_netns
def test_failed_build_removes_what_it_created() -> None:
    # The route's gateway is on no link, so the kernel refuses it after namespaces, veth and
    # sysctl exist.
    spec = TopologySpec(
        namespaces=("a", "b"),
        links=(VethLink(Endpoint("a", "x0", IPv4Interface("198.18.9.1/24")), Endpoint("b", "y0")),),
        sysctls=(Sysctl("a", "net.ipv4.ip_forward", "1"),),
        routes=(Route("a", IPv4Network("198.19.0.0/16"), IPv4Address("198.18.77.1")),),
    )
    topo = Topology(spec)
    with pytest.raises(NetlinkError) as caught:
        topo.__enter__()
    assert caught.value.code == errno.ENETUNREACH
    assert topo.created == []
    assert not set(topo.names.values()) & list_namespaces()


@needs_netns
def test_two_topologies_at_once_do_not_collide() -> None:
    with build_upf_topology() as one, build_upf_topology() as two:
        assert not {one.gnb_ns, one.upf_ns, one.dn_ns} & {two.gnb_ns, two.upf_ns, two.dn_ns}
        receivers = [t.topology.udp_socket("upf", bind=(str(t.n3_addr), GTPU_PORT)) for t in (one, two)]
        for i, t in enumerate((one, two)):
            t.topology.udp_socket("gnb").sendto(b"topology %d" % i, (str(t.n3_addr), GTPU_PORT))
        assert [r.recv(100) for r in receivers] == [b"topology 0", b"topology 1"]
        for r in receivers:  # each got exactly its own datagram
            r.settimeout(0.2)
            assert _recv_or_none(r) is None
        names = {one.gnb_ns, one.upf_ns, one.dn_ns, two.gnb_ns, two.upf_ns, two.dn_ns}
    assert not names & list_namespaces()


@needs_netns
def test_stale_cleanup_removes_only_older_namespaces_with_the_prefix() -> None:
    prefix = "ecstale" + secrets.token_hex(2)  # private prefix: never touches a concurrent run
    name = f"{prefix}-old"
    netns.create(name)
    try:
        assert remove_stale_namespaces(prefix) == []  # created during this run: kept
        assert name in list_namespaces()
        assert remove_stale_namespaces(prefix, older_than=time.time() + 1) == [name]
        assert name not in list_namespaces()
    finally:
        if name in list_namespaces():
            netns.remove(name)
