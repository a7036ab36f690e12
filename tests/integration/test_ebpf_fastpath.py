"""The software dataplane with its eBPF fast path, packets through the namespaces.

The driver runs as in test_software_driver (its own loop in a thread inside the upf
namespace) with ``fastpath=True``: the tc program sits on n3 and n6. The fast path's own
counters (``ebpf.*``) tell which packets BPF carried and the Python path's (``n3.rx``,
``n6.*.rx``) which it did not; what arrives at the gNB and DN sockets is checked byte by byte.
The agent's metrics message figures (user_plane.telemetry.dataplane) must hold what BPF
carried and dropped, per direction and per Network Instance.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

import pfcp
from tests.harness.netns import UpfTopology, needs_netns, run_in_netns
from tests.harness.packets import ipv4_udp
from tests.integration.test_software_driver import (
    DriverInNamespace,
    _recv_or_none,
    parse_ipv4_udp,
    uplink_gpdu,
)
from tests.unit.user_plane.test_ebpf_offload import DL_TEID, QFI, UE, UL_TEID, make_state, volume_urr
from user_plane import gtpu, tun
from user_plane.config import N6Config
from user_plane.driver import DriverEvent, SessionUsage
from user_plane.rules import Qer
from user_plane.software import SoftwareDriver
from user_plane.telemetry import dataplane

pytest_plugins = ["tests.harness.conftest_plugin"]

TUN = "upf-inet"
INSTANCE = "internet"
UE_PORT = 5000
DN_PORT = 9000
GTPU_PORT = 2152


@pytest.fixture
def fast(upf_topology: UpfTopology) -> Iterator[tuple[UpfTopology, DriverInNamespace, list[DriverEvent]]]:
    upf = upf_topology
    driver = SoftwareDriver([upf.n3_addr], {INSTANCE: N6Config(TUN, (upf.ue_pool,))}, fastpath=True)
    runner = DriverInNamespace(upf.upf_ns, driver)
    events: list[DriverEvent] = []
    runner.call(lambda: driver.set_event_handler(events.append))
    try:
        yield upf, runner, events
    finally:
        runner.close()


def _warm_up(upf: UpfTopology, runner: DriverInNamespace, gnb: socket.socket, dn: socket.socket) -> None:
    """One packet each way, so that both neighbours are resolved (the fast path punts a
    packet whose next hop has no neighbour entry; the kernel then resolves it)."""
    inner = ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, b"warm-up")
    gnb.sendto(uplink_gpdu(UL_TEID, inner), (str(upf.n3_addr), GTPU_PORT))
    assert _recv_or_none(dn, 2.0) is not None, runner.counters()
    dn.sendto(b"warm-up", (str(UE), UE_PORT))
    assert _recv_or_none(gnb, 2.0) is not None, runner.counters()


@needs_netns
def test_uplink_and_downlink_are_carried_by_bpf(fast: tuple[UpfTopology, DriverInNamespace, list[DriverEvent]]) -> None:
    upf, runner, _ = fast
    state = make_state(gnb=upf.gnb_addr)
    runner.call(lambda: runner.driver.install(state))
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    dn = upf.topology.udp_socket("dn", (str(upf.dn_addr), DN_PORT))
    _warm_up(upf, runner, gnb, dn)
    before = runner.counters()
    assert before["ebpf.sessions.uplink"] == before["ebpf.sessions.downlink"] == 1

    for i in range(5):
        payload = b"uplink %d " % i + bytes(range(40))
        gnb.sendto(uplink_gpdu(UL_TEID, ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, payload)), (str(upf.n3_addr), 2152))
        assert _recv_or_none(dn, 2.0) == (payload, (str(UE), UE_PORT))
    for i in range(5):
        payload = b"downlink %d " % i + b"x" * 100
        dn.sendto(payload, (str(UE), UE_PORT))
        got = _recv_or_none(gnb, 2.0)
        assert got is not None
        datagram, source = got
        assert source == (str(upf.n3_addr), GTPU_PORT)
        message = gtpu.decode(datagram)
        assert (message.message_type, message.teid) == (gtpu.MessageType.G_PDU, DL_TEID)
        container = message.extension_headers[0]
        assert isinstance(container, gtpu.PDUSessionContainer)
        assert (container.pdu_type, container.qfi) == (gtpu.PDUType.DL_PDU_SESSION_INFORMATION, QFI)
        src, dst, sport, dport, inner_payload, checksums_ok = parse_ipv4_udp(message.payload)
        assert (src, dst, sport, dport, inner_payload) == (upf.dn_addr, UE, DN_PORT, UE_PORT, payload)
        assert checksums_ok  # the DN socket's CHECKSUM_PARTIAL was completed (pitfall 3)

    after = runner.counters()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert (delta["ebpf.ul_packets"], delta["ebpf.dl_packets"]) == (5, 5)
    ul_bytes = sum(28 + len(b"uplink %d " % i) + 40 for i in range(5))
    dl_bytes = sum(28 + len(b"downlink %d " % i) + 100 for i in range(5))
    assert (delta["ebpf.ul_bytes"], delta["ebpf.dl_bytes"]) == (ul_bytes, dl_bytes)
    assert delta.get("n3.rx", 0) == 0 and delta.get(f"n6.{INSTANCE}.rx", 0) == 0  # Python saw none
    # The metrics' figures of the session's Network Instance hold what BPF carried.
    assert instance_delta(before, after) == ((5, ul_bytes, 0), (5, dl_bytes, 0))
    # Also once the session is gone (its slot released).
    runner.call(lambda: runner.driver.remove(state.up_seid))
    assert instance_delta(before, runner.counters()) == ((5, ul_bytes, 0), (5, dl_bytes, 0))


def instance_delta(before: dict[str, int], after: dict[str, int]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """What the metrics message's figures of INSTANCE (uplink, downlink) grew by."""
    (old_ul, old_dl), (new_ul, new_dl) = (dataplane(c, [INSTANCE])[2][INSTANCE] for c in (before, after))
    return _minus(new_ul, old_ul), _minus(new_dl, old_dl)


def _minus(new: tuple[int, int | None, int | None], old: tuple[int, int | None, int | None]) -> tuple[int, int, int]:
    assert None not in new and None not in old, (new, old)  # the software driver counts all three
    return new[0] - old[0], (new[1] or 0) - (old[1] or 0), (new[2] or 0) - (old[2] or 0)


@needs_netns
def test_closed_gates_drop_in_bpf_and_count_in_their_direction(
    fast: tuple[UpfTopology, DriverInNamespace, list[DriverEvent]],
) -> None:
    upf, runner, _ = fast
    runner.call(lambda: runner.driver.install(make_state(gnb=upf.gnb_addr)))
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    dn = upf.topology.udp_socket("dn", (str(upf.dn_addr), DN_PORT))
    _warm_up(upf, runner, gnb, dn)  # open gates: both neighbours resolved
    closed = Qer(qer_id=1, qfi=QFI, gate_ul=pfcp.Gate.CLOSED, gate_dl=pfcp.Gate.CLOSED)
    runner.call(lambda: runner.driver.install(make_state(gnb=upf.gnb_addr, qer=closed)))
    before = runner.counters()
    assert before["ebpf.sessions.uplink"] == before["ebpf.sessions.downlink"] == 1  # still carried by BPF
    for _ in range(3):
        gnb.sendto(uplink_gpdu(UL_TEID, ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, b"g")), (str(upf.n3_addr), 2152))
    for _ in range(2):
        dn.sendto(b"g", (str(UE), UE_PORT))
    assert _recv_or_none(dn, 0.5) is None and _recv_or_none(gnb, 0.5) is None
    after = runner.counters()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert (delta["ebpf.ul_drop_gate"], delta["ebpf.dl_drop_gate"], delta["ebpf.drop_gate"]) == (3, 2, 5)
    assert delta.get("n3.rx", 0) == 0 and delta.get(f"n6.{INSTANCE}.rx", 0) == 0  # none reached Python
    assert instance_delta(before, after) == ((0, 0, 3), (0, 0, 2))
    # And in the direction totals, each drop once by its name.
    (ul_before, dl_before, _, _), (ul_after, dl_after, _, drops) = (dataplane(c, [INSTANCE]) for c in (before, after))
    assert _minus(ul_after, ul_before) == (0, 0, 3) and _minus(dl_after, dl_before) == (0, 0, 2)
    assert "ebpf.drop_gate" not in drops and drops["ebpf.ul_drop_gate"] - before["ebpf.ul_drop_gate"] == 3


@needs_netns
def test_a_session_the_fast_path_cannot_apply_is_forwarded_by_python(
    fast: tuple[UpfTopology, DriverInNamespace, list[DriverEvent]],
) -> None:
    upf, runner, _ = fast
    sdf = pfcp.SDFFilter(flow_description="permit out ip from any to assigned")
    state = make_state(gnb=upf.gnb_addr, ul_pdr={"sdf_filters": (sdf,)}, dl_pdr={"sdf_filters": (sdf,)})
    runner.call(lambda: runner.driver.install(state))
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    dn = upf.topology.udp_socket("dn", (str(upf.dn_addr), DN_PORT))
    for i in range(3):
        gnb.sendto(
            uplink_gpdu(UL_TEID, ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, b"u%d" % i)), (str(upf.n3_addr), 2152)
        )
        assert _recv_or_none(dn, 2.0) == (b"u%d" % i, (str(UE), UE_PORT))
        dn.sendto(b"d%d" % i, (str(UE), UE_PORT))
        got = _recv_or_none(gnb, 2.0)
        assert got is not None and gtpu.decode(got[0]).teid == DL_TEID
    counters = runner.counters()
    assert counters["ebpf.sessions"] == 0 and counters["ebpf.ul_fwd"] == counters["ebpf.dl_fwd"] == 0
    assert counters["n3.rx"] == 3 and counters[f"n6.{INSTANCE}.tx"] == 3 and counters["n3.tx"] == 3


@needs_netns
def test_mbr_is_enforced_in_bpf(fast: tuple[UpfTopology, DriverInNamespace, list[DriverEvent]]) -> None:
    upf, runner, _ = fast
    # 8 kbit/s downlink: a bucket of 3000 octets (user_plane.qos floor), refilling 1 octet/ms.
    state = make_state(gnb=upf.gnb_addr, qer=Qer(qer_id=1, qfi=QFI, mbr_dl=8))
    runner.call(lambda: runner.driver.install(state))
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    dn = upf.topology.udp_socket("dn", (str(upf.dn_addr), DN_PORT))
    _warm_up(upf, runner, gnb, dn)  # 35 octets of the bucket
    before = runner.counters()
    for _ in range(10):
        dn.sendto(b"m" * (1000 - 28), (str(UE), UE_PORT))
    arrived = 0
    while _recv_or_none(gnb, 0.5) is not None:
        arrived += 1
    after = runner.counters()
    assert arrived == after["ebpf.dl_packets"] - before["ebpf.dl_packets"]
    assert 2 <= arrived <= 3  # 2965 octets left in the bucket, plus what refilled meanwhile
    assert after["ebpf.drop_mbr"] - before["ebpf.drop_mbr"] == 10 - arrived
    assert after["ebpf.dl_drop_mbr"] - before["ebpf.dl_drop_mbr"] == 10 - arrived
    assert after["ebpf.ul_drop_mbr"] == before["ebpf.ul_drop_mbr"] == 0
    assert instance_delta(before, after) == ((0, 0, 0), (arrived, arrived * 1000, 10 - arrived))


@needs_netns
def test_volume_threshold_is_reported_once_exactly_while_bpf_carries_the_traffic(
    fast: tuple[UpfTopology, DriverInNamespace, list[DriverEvent]],
) -> None:
    upf, runner, events = fast
    state = make_state(gnb=upf.gnb_addr, urrs=(volume_urr(total=1_000_000),))
    runner.call(lambda: runner.driver.install(state))
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    dn = upf.topology.udp_socket("dn", (str(upf.dn_addr), DN_PORT))
    _warm_up(upf, runner, gnb, dn)
    size, count = 1000, 1100
    packet = uplink_gpdu(UL_TEID, ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, b"v" * (size - 28)))
    for i in range(count):
        gnb.sendto(packet, (str(upf.n3_addr), 2152))
        if i % 50 == 49:
            time.sleep(0.01)  # bounded load: the sockets' buffers never fill
    deadline = time.monotonic() + 5
    while runner.counters()["ebpf.ul_packets"] + runner.counters()["n3.rx"] < count + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    counters = runner.counters()
    reports = [r for e in events if isinstance(e, SessionUsage) for r in e.reports]
    assert len(reports) == 1, reports
    report = reports[0]
    assert report.trigger & pfcp.UsageReportTriggerFlags.VOLTH
    warm = 2 * (28 + len(b"warm-up"))  # the warm-up packets, one each way
    assert 1_000_000 <= report.total_bytes < 1_000_000 + size
    assert counters["ebpf.ul_packets"] >= count - 10  # BPF carried the traffic, Python the punt(s)
    assert counters["ebpf.punt_budget"] >= 1
    # Nothing lost or counted twice: the rest is in an immediate report.
    rest = runner.call(lambda: runner.driver.query(state.up_seid))[0]
    assert report.total_bytes + rest.total_bytes == count * size + warm


@needs_netns
def test_removal_stops_forwarding_and_stop_leaves_no_filter(
    fast: tuple[UpfTopology, DriverInNamespace, list[DriverEvent]],
) -> None:
    upf, runner, _ = fast
    state = make_state(gnb=upf.gnb_addr)
    runner.call(lambda: runner.driver.install(state))
    gnb = upf.topology.udp_socket("gnb", (str(upf.gnb_addr), GTPU_PORT))
    dn = upf.topology.udp_socket("dn", (str(upf.dn_addr), DN_PORT))
    _warm_up(upf, runner, gnb, dn)
    assert "upf_ingress" in _tc_filters(upf, upf.n3_if) and "upf_ingress" in _tc_filters(upf, upf.n6_if)
    assert not run_in_netns(upf.upf_ns, lambda: tun.tx_checksum(upf.n3_if))
    runner.call(lambda: runner.driver.remove(state.up_seid))
    assert runner.counters()["ebpf.sessions"] == 0
    gnb.sendto(uplink_gpdu(UL_TEID, ipv4_udp(UE, upf.dn_addr, UE_PORT, DN_PORT, b"late")), (str(upf.n3_addr), 2152))
    assert _recv_or_none(dn) is None
    indication = _recv_or_none(gnb, 2.0)  # Python: no session owns the TEID (TS 29.281 §7.3.1)
    assert indication is not None
    assert gtpu.decode(indication[0]).message_type == gtpu.MessageType.ERROR_INDICATION
    dn.sendto(b"nobody home", (str(UE), UE_PORT))
    assert _recv_or_none(gnb) is None
    runner.close()
    assert "upf_ingress" not in _tc_filters(upf, upf.n3_if) and "upf_ingress" not in _tc_filters(upf, upf.n6_if)
    assert run_in_netns(upf.upf_ns, lambda: tun.tx_checksum(upf.n3_if))  # restored


def _tc_filters(upf: UpfTopology, device: str) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", upf.upf_ns, "tc", "filter", "show", "dev", device, "ingress"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout
