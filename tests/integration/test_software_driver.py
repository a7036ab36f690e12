"""The software dataplane forwards real packets between namespaces (user_plane.software).

A :class:`SoftwareDriver` runs on its own asyncio loop in a thread that joined the upf
namespace (a thread's network namespace is its own, so its TUN device, sockets and netlink
calls all land there, as they would in an agent process started inside that namespace). One
session is installed directly: uplink PDR on a TEID with Outer Header Removal -> FAR FORW to
the core Network Instance "internet"; downlink PDR on the UE address -> FAR FORW with Outer
Header Creation GTP-U/UDP/IPv4 towards the gNB; a QER carrying the QFI. Packets are sent
from plain sockets in the gnb and dn namespaces and checked byte by byte where they arrive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

import pytest
from pyroute2 import IPRoute  # type: ignore[import-untyped]

import pfcp
from tests.harness.netns import UpfTopology, interfaces_in, needs_netns, run_in_netns
from tests.harness.packets import checksum, ipv4_udp
from user_plane import gtpu
from user_plane.config import N6Config
from user_plane.session import Plan, SessionState, plan_establishment
from user_plane.software import SoftwareDriver

pytest_plugins = ["tests.harness.conftest_plugin"]

T = TypeVar("T")

TUN = "upf-inet"
INSTANCE = "internet"
UE = IPv4Address("198.19.0.7")
UE_PORT = 5000
DN_PORT = 9000
UL_TEID = 0x00A1B2C3
DL_TEID = 0x00D4E5F6
QFI = 9
UP_SEID = 0x77
CP_NODE = IPv4Address("198.18.0.10")
GTPU_PORT = 2152


# -- packets ---------------------------------------------------------------------------------


def parse_ipv4_udp(packet: bytes) -> tuple[IPv4Address, IPv4Address, int, int, bytes, bool]:
    """(src, dst, sport, dport, payload, checksums_ok) of an IPv4/UDP packet."""
    ihl = (packet[0] & 0x0F) * 4
    assert packet[0] >> 4 == 4 and packet[9] == socket.IPPROTO_UDP
    src, dst = IPv4Address(packet[12:16]), IPv4Address(packet[16:20])
    sport, dport, length, udp_sum = struct.unpack_from("!HHHH", packet, ihl)
    udp = packet[ihl : ihl + length]
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
    ok = checksum(packet[:ihl]) == 0 and (udp_sum == 0 or checksum(pseudo + udp) == 0)
    return src, dst, sport, dport, udp[8:], ok


def uplink_gpdu(teid: int, inner: bytes) -> bytes:
    return gtpu.encode_gpdu_header(teid, len(inner), qfi=QFI, pdu_type_dl=False) + inner


# -- the session -----------------------------------------------------------------------------


def session_state(upf: UpfTopology) -> SessionState:
    access, core = pfcp.SourceInterfaceValue.ACCESS, pfcp.SourceInterfaceValue.CORE
    req = pfcp.SessionEstablishmentRequest(
        node_id=pfcp.NodeID(CP_NODE),
        cp_f_seid=pfcp.FSEID(seid=0x1234, ipv4=CP_NODE),
        create_pdr=(
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(1),
                precedence=pfcp.Precedence(100),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(access),
                    local_f_teid=pfcp.FTEID(teid=UL_TEID, ipv4=upf.n3_addr),
                    network_instance=pfcp.NetworkInstance(INSTANCE),
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=UE),),
                    qfi=(pfcp.QFI(QFI),),
                ),
                outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
                far_id=pfcp.FARID(1),
                qer_id=(pfcp.QERID(1),),
            ),
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(2),
                precedence=pfcp.Precedence(100),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(core),
                    network_instance=pfcp.NetworkInstance(INSTANCE),
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=UE, is_destination=True),),
                ),
                far_id=pfcp.FARID(2),
                qer_id=(pfcp.QERID(1),),
            ),
        ),
        create_far=(
            pfcp.CreateFAR(
                far_id=pfcp.FARID(1),
                apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.CORE),
                    network_instance=pfcp.NetworkInstance(INSTANCE),
                ),
            ),
            pfcp.CreateFAR(
                far_id=pfcp.FARID(2),
                apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
                    outer_header_creation=pfcp.OuterHeaderCreation(
                        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=DL_TEID, ipv4=upf.gnb_addr
                    ),
                ),
            ),
        ),
        create_qer=(pfcp.CreateQER(qer_id=pfcp.QERID(1), gate_status=pfcp.GateStatus(), qfi=pfcp.QFI(QFI)),),
    )
    plan = plan_establishment(req, UP_SEID, lambda chid: 0)
    assert isinstance(plan, Plan), plan
    return plan.state


# -- a driver on its own loop inside the upf namespace -----------------------------------------


class DriverInNamespace:
    """Runs ``SoftwareDriver.start`` .. ``stop`` on an event loop in a thread inside ``ns``;
    :meth:`call` runs a function on that loop (the driver is not thread-safe)."""

    def __init__(self, ns: str, driver: SoftwareDriver) -> None:
        self.driver = driver
        self._ready: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
        self._done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, args=(ns,), daemon=True)
        self._thread.start()
        self.loop = self._ready.result(timeout=10)

    def _run(self, ns: str) -> None:
        try:
            run_in_netns(ns, lambda: asyncio.run(self._main()), timeout=None)
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            self._done.set_exception(exc)
        else:
            self._done.set_result(None)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        await self.driver.start()
        self._ready.set_result(asyncio.get_running_loop())
        try:
            await self._stop.wait()
        finally:
            await self.driver.stop()

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapped() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=10)

    def counters(self) -> dict[str, int]:
        return self.call(self.driver.all_counters)

    def close(self) -> None:
        if self._stop is not None and not self._done.done():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._done.result(timeout=10)
        self._thread.join(timeout=10)


@pytest.fixture
def running(upf_topology: UpfTopology) -> Iterator[tuple[UpfTopology, DriverInNamespace]]:
    upf = upf_topology
    # The Python path itself (its counters are asserted): tests/integration/test_ebpf_fastpath.py
    # covers the same traffic with the eBPF fast path.
    driver = SoftwareDriver([upf.n3_addr], {INSTANCE: N6Config(TUN, (upf.ue_pool,))}, fastpath=False)
    runner = DriverInNamespace(upf.upf_ns, driver)
    try:
        yield upf, runner
    finally:
        runner.close()


def _recv_or_none(sock: socket.socket, timeout: float = 0.5) -> tuple[bytes, Any] | None:
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(4096)
    except TimeoutError:
        return None


def _routes_to(upf: UpfTopology, net: IPv4Network) -> list[str]:
    def dump() -> list[str]:
        with IPRoute() as ipr:
            names = {link["index"]: link.get("ifname") for link in ipr.get_links()}
            return [
                names.get(r.get("oif"), "?")
                for r in ipr.get_routes(family=socket.AF_INET)
                if r.get("dst") == str(net.network_address) and r["dst_len"] == net.prefixlen
            ]

    return run_in_netns(upf.upf_ns, dump)


# -- tests -----------------------------------------------------------------------------------


@needs_netns
def test_tun_device_with_ue_pool_route_exists_while_running(running: tuple[UpfTopology, DriverInNamespace]) -> None:
    upf, runner = running
    assert TUN in interfaces_in(upf.upf_ns)
    assert _routes_to(upf, upf.ue_pool) == [TUN]
    # N3 MTU 1600 minus 44 octets of GTP-U/UDP/IPv4 encapsulation
    assert runner.driver.tun_mtu == 1556
    runner.close()
    assert TUN not in interfaces_in(upf.upf_ns)  # the device and its route leave with the fd
    assert _routes_to(upf, upf.ue_pool) == []


@needs_netns
def test_uplink_and_downlink_forwarding(running: tuple[UpfTopology, DriverInNamespace]) -> None:
    upf, runner = running
    state = session_state(upf)
    runner.call(lambda: runner.driver.install(state))
    assert runner.call(runner.driver.installed) == {UP_SEID: state}
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    dn = upf.topology.udp_socket("dn", (str(upf.dn_addr), DN_PORT))

    # Uplink: the inner packet arrives at the DN socket, from the UE's address and port.
    for i in range(3):
        payload = b"uplink %d " % i + bytes(range(40))
        gnb.sendto(uplink_gpdu(UL_TEID, ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, payload)), (str(upf.n3_addr), 2152))
        got = _recv_or_none(dn, 2.0)
        assert got is not None, runner.counters()
        assert got == (payload, (str(UE), UE_PORT))

    # Downlink: what the DN sends to the UE arrives at the gNB as a G-PDU from N3:2152.
    for i in range(3):
        payload = b"downlink %d " % i + b"x" * 100
        dn.sendto(payload, (str(UE), UE_PORT))
        got = _recv_or_none(gnb, 2.0)
        assert got is not None, runner.counters()
        datagram, source = got
        assert source == (str(upf.n3_addr), GTPU_PORT)
        message = gtpu.decode(datagram)
        assert message.message_type == gtpu.MessageType.G_PDU
        assert message.teid == DL_TEID
        container = message.extension_headers[0]
        assert isinstance(container, gtpu.PDUSessionContainer)
        assert (container.pdu_type, container.qfi) == (gtpu.PDUType.DL_PDU_SESSION_INFORMATION, QFI)
        src, dst, sport, dport, inner_payload, checksums_ok = parse_ipv4_udp(message.payload)
        assert (src, dst, sport, dport, inner_payload) == (upf.dn_addr, UE, DN_PORT, UE_PORT, payload)
        # The DN socket's checksum was offloaded (CHECKSUM_PARTIAL on the veth); the TUN read must
        # still hand the UPF a complete one (DATAPLANE.md pitfall 3 is about in-kernel encap).
        assert checksums_ok

    counters = runner.counters()
    assert counters["n3.rx"] == 3 and counters[f"n6.{INSTANCE}.tx"] == 3
    assert counters[f"n6.{INSTANCE}.rx"] >= 3 and counters["n3.tx"] == 3
    assert not [key for key in counters if key.startswith("drop.")], counters

    # Removal: the TEID is unknown again (Error Indication instead of forwarding), and the
    # UE address no longer has a tunnel.
    runner.call(lambda: runner.driver.remove(UP_SEID))
    assert runner.call(runner.driver.installed) == {}
    gnb.sendto(uplink_gpdu(UL_TEID, ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, b"late")), (str(upf.n3_addr), 2152))
    assert _recv_or_none(dn) is None
    indication = _recv_or_none(gnb, 2.0)
    assert indication is not None
    assert gtpu.decode(indication[0]).message_type == gtpu.MessageType.ERROR_INDICATION
    dn.sendto(b"nobody home", (str(UE), UE_PORT))
    assert _recv_or_none(gnb) is None


@needs_netns
def test_echo_request_is_answered(running: tuple[UpfTopology, DriverInNamespace]) -> None:
    upf, runner = running
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    gnb.sendto(gtpu.encode(gtpu.echo_request(sequence=0x4242)), (str(upf.n3_addr), GTPU_PORT))
    got = _recv_or_none(gnb, 2.0)
    assert got is not None
    datagram, source = got
    assert source == (str(upf.n3_addr), GTPU_PORT)
    response = gtpu.decode(datagram)
    assert (response.message_type, response.teid, response.sequence) == (gtpu.MessageType.ECHO_RESPONSE, 0, 0x4242)
    assert response.ie(gtpu.Recovery) == gtpu.Recovery(0)
    # TS 29.281 §4.4.2.2: the response goes to the request's source port, whatever it is.
    other = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), 0))
    other.sendto(gtpu.encode(gtpu.echo_request(sequence=7)), (str(upf.n3_addr), GTPU_PORT))
    got = _recv_or_none(other, 2.0)
    assert got is not None and gtpu.decode(got[0]).sequence == 7
    counters = runner.counters()
    assert counters["n3.rx.echo_request"] == 2 and counters["n3.tx.echo_response"] == 2


@needs_netns
def test_unknown_teid_gets_an_error_indication(running: tuple[UpfTopology, DriverInNamespace]) -> None:
    upf, runner = running
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    dn = upf.topology.udp_socket("dn", (str(upf.dn_addr), DN_PORT))
    inner = ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, b"who am I")
    gnb.sendto(uplink_gpdu(0xDEAD, inner), (str(upf.n3_addr), GTPU_PORT))
    got = _recv_or_none(gnb, 2.0)
    assert got is not None
    datagram, source = got
    assert source == (str(upf.n3_addr), GTPU_PORT)
    indication = gtpu.decode(datagram)
    assert indication.message_type == gtpu.MessageType.ERROR_INDICATION and indication.teid == 0
    assert indication.ie(gtpu.TEIDDataI) == gtpu.TEIDDataI(0xDEAD)
    assert indication.ie(gtpu.GTPUPeerAddress) == gtpu.GTPUPeerAddress(upf.n3_addr)
    # UDP Port extension header (§5.2.2.1): the source port of the offending G-PDU
    assert indication.extension_headers == (gtpu.ExtensionHeader(gtpu.ExtensionHeaderType.UDP_PORT, b"\x08\x68"),)
    assert _recv_or_none(dn) is None
    counters = runner.counters()
    assert counters["drop.unknown_teid"] == 1 and counters["n3.tx.error_indication"] == 1


@needs_netns
def test_error_indications_are_rate_limited(upf_topology: UpfTopology) -> None:
    upf = upf_topology
    driver = SoftwareDriver([upf.n3_addr], {INSTANCE: N6Config(TUN, (upf.ue_pool,))}, error_indication_rate=3.0)
    runner = DriverInNamespace(upf.upf_ns, driver)
    try:
        gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
        inner = ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, b"flood")
        for teid in range(0x100, 0x120):
            gnb.sendto(uplink_gpdu(teid, inner), (str(upf.n3_addr), GTPU_PORT))
        answers = []
        while (got := _recv_or_none(gnb, 0.5)) is not None:
            answers.append(gtpu.decode(got[0]))
        counters = runner.counters()
        assert counters["drop.unknown_teid"] == 32
        # a burst of 3 tokens, plus what refilled while the 32 G-PDUs arrived (3 per second)
        assert 3 <= len(answers) < 32
        assert counters["n3.tx.error_indication"] == len(answers)
        assert counters["drop.error_indication_rate_limited"] == 32 - len(answers)
    finally:
        runner.close()


@needs_netns
def test_error_indication_from_the_gnb_is_surfaced(running: tuple[UpfTopology, DriverInNamespace]) -> None:
    upf, runner = running
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    message = gtpu.error_indication(DL_TEID, upf.gnb_addr)
    gnb.sendto(gtpu.encode(message), (str(upf.n3_addr), GTPU_PORT))
    gnb.sendto(gtpu.encode(gtpu.end_marker(UL_TEID)), (str(upf.n3_addr), GTPU_PORT))
    gnb.sendto(b"\x30\x01\x00", (str(upf.n3_addr), GTPU_PORT))  # truncated: not GTP-U

    def seen() -> dict[str, int]:
        return runner.counters()

    for _ in range(50):
        counters = seen()
        if counters.get("n3.rx", 0) >= 3:
            break
        threading.Event().wait(0.05)
    assert counters["n3.rx.error_indication"] == 1
    assert counters["n3.rx.end_marker"] == 1
    assert counters["n3.rx.malformed"] == 1
    indications = runner.call(lambda: list(runner.driver.error_indications))
    assert indications == [(str(upf.gnb_addr), DL_TEID, str(upf.gnb_addr))]


@needs_netns
def test_start_fails_cleanly_on_a_foreign_n3_address(upf_topology: UpfTopology) -> None:
    upf = upf_topology
    driver = SoftwareDriver([IPv4Address("198.18.9.9")], {INSTANCE: N6Config(TUN, (upf.ue_pool,))})

    async def attempt() -> str:
        try:
            await driver.start()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        await driver.stop()
        return "started"

    outcome = run_in_netns(upf.upf_ns, lambda: asyncio.run(attempt()))
    assert outcome.startswith("DriverError") and "198.18.9.9" in outcome
    assert TUN not in interfaces_in(upf.upf_ns)
    assert not driver.started


# -- n6.<instance>.gateway: policy routing for the instance's uplink ----------------------------

#: A server behind the DN's gateway: no link in upf has it, and upf's main table blackholes it.
FAR_SERVER = IPv4Address("198.18.77.7")


def _gateway_routing(upf: UpfTopology) -> tuple[list[tuple[int, str, int]], dict[int, list[str | None]]]:
    """In upf: rules naming a TUN (priority, iif, table), and per such table its routes' gateways."""

    def dump() -> tuple[list[tuple[int, str, int]], dict[int, list[str | None]]]:
        with IPRoute() as ipr:
            rules = [
                (int(r.get("priority")), str(r.get("iifname")), int(r.get("table")))
                for r in ipr.get_rules(family=socket.AF_INET)
                if r.get("iifname") is not None
            ]
            tables = {
                table: [
                    r.get("gateway")
                    for r in ipr.get_routes(family=socket.AF_INET, table=table)
                    if r.get("table") == table and r["dst_len"] == 0
                ]
                for _, _, table in rules
            }
            return rules, tables

    return run_in_netns(upf.upf_ns, dump)


def _table_routes(upf: UpfTopology, table: int) -> list[dict[str, Any]]:
    def dump() -> list[dict[str, Any]]:
        with IPRoute() as ipr:
            return [dict(r["attrs"]) for r in ipr.get_routes(family=socket.AF_INET, table=table)]

    return [r for r in run_in_netns(upf.upf_ns, dump) if r.get("RTA_TABLE") == table]


@needs_netns
def test_gateway_carries_the_instance_uplink_and_goes_at_stop(upf_topology: UpfTopology) -> None:
    upf = upf_topology

    def far_server_setup() -> None:
        with IPRoute() as ipr:
            if upf_ns_setup:  # upf's own routes would drop the packet: only the rule gets it out
                ipr.route("add", dst=f"{FAR_SERVER}/32", type="blackhole")
            else:  # the dn namespace is the gateway and hosts the far server
                ipr.addr("add", index=ipr.link_lookup(ifname=upf.dn_if)[0], address=str(FAR_SERVER), prefixlen=32)

    upf_ns_setup = True
    run_in_netns(upf.upf_ns, far_server_setup)
    upf_ns_setup = False
    run_in_netns(upf.dn_ns, far_server_setup)

    n6 = N6Config(TUN, (upf.ue_pool,), upf.dn_addr)
    driver = SoftwareDriver([upf.n3_addr], {INSTANCE: n6}, fastpath=False)
    table = driver.gateway_tables[INSTANCE]
    runner = DriverInNamespace(upf.upf_ns, driver)
    try:
        rules, tables = _gateway_routing(upf)
        assert rules == [(2152, TUN, table)]
        assert tables == {table: [str(upf.dn_addr)]}
        state = session_state(upf)
        runner.call(lambda: runner.driver.install(state))
        gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
        far = upf.topology.udp_socket("dn", (str(FAR_SERVER), DN_PORT))
        payload = b"via the gateway"
        inner = ipv4_udp(UE, FAR_SERVER, UE_PORT, DN_PORT, payload)
        gnb.sendto(uplink_gpdu(UL_TEID, inner), (str(upf.n3_addr), GTPU_PORT))
        assert _recv_or_none(far, 2.0) == (payload, (str(UE), UE_PORT)), runner.counters()
    finally:
        runner.close()
    assert _gateway_routing(upf) == ([], {})
    assert _table_routes(upf, table) == []


@needs_netns
def test_a_failed_start_takes_the_gateways_it_set_away(upf_topology: UpfTopology) -> None:
    upf = upf_topology
    n6 = {
        INSTANCE: N6Config(TUN, (IPv4Network("198.19.0.0/17"),), upf.dn_addr),
        # No link leads to this gateway: its route is refused, after the first instance's was set.
        "ims": N6Config("upf-ims", (IPv4Network("198.19.128.0/17"),), IPv4Address("198.18.99.1")),
    }
    driver = SoftwareDriver([upf.n3_addr], n6, fastpath=False)

    async def attempt() -> str:
        try:
            await driver.start()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        await driver.stop()
        return "started"

    outcome = run_in_netns(upf.upf_ns, lambda: asyncio.run(attempt()))
    assert outcome.startswith("DriverError") and "198.18.99.1" in outcome
    assert not {TUN, "upf-ims"} & interfaces_in(upf.upf_ns)
    assert _gateway_routing(upf) == ([], {})
    for table in driver.gateway_tables.values():
        assert _table_routes(upf, table) == []
