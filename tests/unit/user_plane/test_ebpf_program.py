"""The fast path's BPF program, byte for byte (BPF_PROG_TEST_RUN on upf.bpf.o).

Each frame is run through the program as if received on the upf namespace's n3 or n6
device (the program's bpf_fib_lookup resolves in the namespace of the calling thread, so
every run happens in a thread inside the topology's upf namespace; permanent neighbour
entries give the MACs). What it redirects is compared with what the Python path produces
for the same packet: Forwarder.uplink's inner packet / Forwarder.downlink's G-PDU, plus the
hop the kernel adds (TTL - 1) and the outer IPv4/UDP headers the N3 socket would send.
Punted packets must come back unchanged with TC_ACT_OK.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, TypeVar

import pytest
from pyroute2 import IPRoute  # type: ignore[import-untyped]

import pfcp
from tests.harness import packets
from tests.harness.netns import UpfTopology, needs_netns, run_in_netns
from tests.unit.user_plane.test_ebpf_offload import (
    DL_TEID,
    INSTANCE,
    N3,
    POOLS,
    QFI,
    UE,
    UL_TEID,
    make_state,
    volume_urr,
)
from user_plane import gtpu
from user_plane.ebpf.fastpath import FastPath
from user_plane.ebpf.loader import TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, BpfError, BpfObject
from user_plane.forward import Forwarder
from user_plane.rules import Qer
from user_plane.session import SessionState
from user_plane.usage import UrrMeter

pytest_plugins = ["tests.harness.conftest_plugin"]

T = TypeVar("T")
GNB = IPv4Address("198.18.1.2")
DN = IPv4Address("198.18.2.2")
GNB_MAC = bytes.fromhex("020000000a01")
DN_MAC = bytes.fromhex("020000000b01")
NOW = 1_700_000_000.0


def ipv4_udp(src: IPv4Address, dst: IPv4Address, payload: bytes, ttl: int = 64, sport: int = 5000) -> bytes:
    return packets.ipv4_udp(src, dst, sport, 9000, payload, ttl)


def hop(packet: bytes) -> bytes:
    """``packet`` after one router hop: TTL - 1, header checksum recomputed."""
    ip = bytearray(packet[:20])
    ip[8] -= 1
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", packets.checksum(bytes(ip)))
    return bytes(ip) + packet[20:]


def eth(dst: bytes, src: bytes) -> bytes:
    return dst + src + b"\x08\x00"


@dataclass
class Lab:
    """The loaded program with one session, inside the upf namespace."""

    upf: UpfTopology
    obj: BpfObject
    fastpath: FastPath
    meters: dict[int, dict[int, UrrMeter]]
    n3_index: int
    n6_index: int
    n3_mac: bytes
    n6_mac: bytes

    def run(self, frame: bytes, ingress: int) -> tuple[int, bytes]:
        return run_in_netns(self.upf.upf_ns, lambda: self.obj.test_run(frame, ingress))

    def install(self, state: SessionState) -> Any:
        self.meters[state.up_seid] = {u: UrrMeter(urr, NOW) for u, urr in state.urrs.items()}
        return self.fastpath.apply(state)

    def uplink_frame(self, inner: bytes, teid: int = UL_TEID, qfi: int | None = QFI) -> bytes:
        gpdu = gtpu.encode_gpdu_header(teid, len(inner), qfi=qfi, pdu_type_dl=False) + inner
        return eth(self.n3_mac, GNB_MAC) + ipv4_udp_raw(GNB, N3, 2152, 2152, gpdu)

    def downlink_frame(self, inner: bytes) -> bytes:
        return eth(self.n6_mac, DN_MAC) + inner


def ipv4_udp_raw(src: IPv4Address, dst: IPv4Address, sport: int, dport: int, payload: bytes) -> bytes:
    """Outer IPv4/UDP (UDP checksum 0) around ``payload``."""
    return packets.ipv4_udp(src, dst, sport, dport, payload, udp_checksum=False)


def _in(upf: UpfTopology, fn: Callable[[], T]) -> T:
    return run_in_netns(upf.upf_ns, fn)


@pytest.fixture
def lab(upf_topology: UpfTopology) -> Iterator[Lab]:
    upf = upf_topology

    def setup() -> tuple[int, int, bytes, bytes]:
        with IPRoute() as ipr:
            n3 = ipr.link_lookup(ifname=upf.n3_if)[0]
            n6 = ipr.link_lookup(ifname=upf.n6_if)[0]
            macs = {link["index"]: link.get("address") for link in ipr.get_links()}
            ipr.neigh("replace", dst=str(GNB), lladdr=GNB_MAC.hex(":"), ifindex=n3, state=0x80)  # NUD_PERMANENT
            ipr.neigh("replace", dst=str(DN), lladdr=DN_MAC.hex(":"), ifindex=n6, state=0x80)
        return n3, n6, bytes.fromhex(macs[n3].replace(":", "")), bytes.fromhex(macs[n6].replace(":", ""))

    n3, n6, n3_mac, n6_mac = _in(upf, setup)
    obj = BpfObject(max_sessions=64)
    meters: dict[int, dict[int, UrrMeter]] = {}
    fastpath = FastPath(obj, n3_ipv4=N3, pools=POOLS, meters=lambda seid: meters[seid], clock=lambda: NOW)
    for index in (n3, n6):  # redirect targets (the program is not attached: test runs only)
        obj.update("devices", ctypes.c_uint32(index), ctypes.c_uint32(1))
    try:
        yield Lab(upf, obj, fastpath, meters, n3, n6, n3_mac, n6_mac)
    finally:
        fastpath.close()


def python_uplink(state: SessionState, gpdu: bytes) -> bytes:
    forwarder = Forwarder(N3, None, [INSTANCE])
    forwarder.install(state, NOW)
    result = forwarder.uplink(gpdu, NOW)
    assert isinstance(result, tuple) and result[0] == INSTANCE
    return result[1]


def python_downlink(state: SessionState, packet: bytes) -> tuple[bytes, tuple[str, int]]:
    forwarder = Forwarder(N3, None, [INSTANCE])
    forwarder.install(state, NOW)
    result = forwarder.downlink(INSTANCE, packet, NOW)
    assert result is not None
    return result


@needs_netns
def test_uplink_is_decapsulated_and_redirected_like_the_python_path(lab: Lab) -> None:
    state = make_state()
    lab.install(state)
    inner = ipv4_udp(UE, DN, b"uplink payload" * 3)
    frame = lab.uplink_frame(inner)
    verdict, out = lab.run(frame, lab.n3_index)
    assert verdict == TC_ACT_REDIRECT
    expected_inner = hop(python_uplink(state, frame[14:][28:]))
    assert out == eth(DN_MAC, lab.n6_mac) + expected_inner
    # Without a PDU Session Container (and no QFI in the PDI) too.
    state = make_state(ul_qfi=None)
    lab.install(state)
    frame = lab.uplink_frame(inner, qfi=None)
    verdict, out = lab.run(frame, lab.n3_index)
    assert (verdict, out) == (TC_ACT_REDIRECT, eth(DN_MAC, lab.n6_mac) + hop(inner))
    assert lab.obj.stats()["ul_fwd"] == 2


@pytest.mark.parametrize("rqi", [False, True])
@needs_netns
def test_downlink_is_encapsulated_byte_for_byte_as_the_python_path(lab: Lab, rqi: bool) -> None:
    state = make_state(qer=Qer(qer_id=1, qfi=QFI, rqi=rqi))
    lab.install(state)
    inner = ipv4_udp(DN, UE, b"downlink" * 20, sport=9000)
    verdict, out = lab.run(lab.downlink_frame(inner), lab.n6_index)
    assert verdict == TC_ACT_REDIRECT
    datagram, peer = python_downlink(state, hop(inner))  # what the N3 socket would send
    assert peer == (str(GNB), 2152)
    assert out == eth(GNB_MAC, lab.n3_mac) + ipv4_udp_raw(N3, GNB, 2152, 2152, datagram)
    assert gtpu.decode(out[42:]).teid == DL_TEID


@needs_netns
def test_downlink_without_qfi_has_the_plain_header(lab: Lab) -> None:
    state = make_state(qer=Qer(qer_id=1))
    lab.install(state)
    inner = ipv4_udp(DN, UE, b"x" * 30)
    verdict, out = lab.run(lab.downlink_frame(inner), lab.n6_index)
    assert verdict == TC_ACT_REDIRECT
    datagram, _ = python_downlink(state, hop(inner))
    assert len(datagram) == 8 + len(inner)
    assert out == eth(GNB_MAC, lab.n3_mac) + ipv4_udp_raw(N3, GNB, 2152, 2152, datagram)


@needs_netns
def test_what_the_fast_path_does_not_handle_is_punted_untouched(lab: Lab) -> None:
    lab.install(make_state())
    good = ipv4_udp(UE, DN, b"p" * 40)
    cases = {
        "unknown TEID": lab.uplink_frame(good, teid=0xDEAD),
        "wrong QFI": lab.uplink_frame(good, qfi=5),
        "no QFI": lab.uplink_frame(good, qfi=None),
        "spoofed source": lab.uplink_frame(ipv4_udp(IPv4Address("198.19.9.9"), DN, b"p" * 40)),
        "TTL 1": lab.uplink_frame(ipv4_udp(UE, DN, b"p" * 40, ttl=1)),
        "echo request": eth(lab.n3_mac, GNB_MAC)
        + ipv4_udp_raw(GNB, N3, 2152, 2152, gtpu.encode(gtpu.echo_request(sequence=1))),
        "inner length wrong": lab.uplink_frame(good[:-1]),
    }
    for name, frame in cases.items():
        assert lab.run(frame, lab.n3_index) == (TC_ACT_OK, frame), name
    for name, frame in {
        "unknown UE": lab.downlink_frame(ipv4_udp(DN, IPv4Address("198.19.9.9"), b"d")),
        "TTL 1": lab.downlink_frame(ipv4_udp(DN, UE, b"d", ttl=1)),
    }.items():
        assert lab.run(frame, lab.n6_index) == (TC_ACT_OK, frame), name
    stats = lab.obj.stats()
    assert (stats["punt_match"], stats["punt_ttl"], stats["ul_fwd"], stats["dl_fwd"]) == (3, 2, 0, 0)


@needs_netns
def test_closed_gate_drops_in_bpf(lab: Lab) -> None:
    lab.install(make_state(qer=Qer(qer_id=1, qfi=QFI, gate_ul=pfcp.Gate.CLOSED)))
    verdict, _ = lab.run(lab.uplink_frame(ipv4_udp(UE, DN, b"g")), lab.n3_index)
    assert verdict == TC_ACT_SHOT and lab.obj.stats()["drop_gate"] == 1
    verdict, _ = lab.run(lab.downlink_frame(ipv4_udp(DN, UE, b"g")), lab.n6_index)
    assert verdict == TC_ACT_REDIRECT  # the downlink gate is open


@needs_netns
def test_mbr_token_bucket_passes_the_burst_then_drops(lab: Lab) -> None:
    # 8 kbit/s: the depth is the 3000-octet floor (user_plane.qos), so three 1000-octet packets pass.
    lab.install(make_state(qer=Qer(qer_id=1, qfi=QFI, mbr_dl=8)))
    packet = ipv4_udp(DN, UE, b"m" * (1000 - 28))
    verdicts = [lab.run(lab.downlink_frame(packet), lab.n6_index)[0] for _ in range(6)]
    assert verdicts == [TC_ACT_REDIRECT] * 3 + [TC_ACT_SHOT] * 3
    assert lab.obj.stats()["drop_mbr"] == 3


@needs_netns
def test_the_packet_that_would_reach_a_volume_threshold_is_punted(lab: Lab) -> None:
    state = make_state(urrs=(volume_urr(total=2500),))
    lab.install(state)
    packet = ipv4_udp(DN, UE, b"v" * (1000 - 28))
    frame = lab.downlink_frame(packet)
    verdicts = [lab.run(frame, lab.n6_index)[0] for _ in range(3)]
    # 2 x 1000 octets leave 500: the third packet would reach the threshold -> Python counts it.
    assert verdicts == [TC_ACT_REDIRECT, TC_ACT_REDIRECT, TC_ACT_OK]
    assert lab.obj.stats()["punt_budget"] == 1
    meter = lab.meters[state.up_seid][1]
    assert lab.fastpath.fold(state.up_seid) == []
    assert meter.query(NOW + 1).dl_bytes == 2000
    # The query restarted the measurement: a fresh budget of 2500 octets.
    lab.fastpath.refresh(state.up_seid)
    assert lab.run(frame, lab.n6_index)[0] == TC_ACT_REDIRECT
    assert lab.run(frame, lab.n6_index)[0] == TC_ACT_REDIRECT
    assert lab.run(frame, lab.n6_index)[0] == TC_ACT_OK


@needs_netns
def test_removal_and_change_update_the_maps(lab: Lab) -> None:
    state = make_state()
    lab.install(state)
    frame = lab.uplink_frame(ipv4_udp(UE, DN, b"r"))
    assert lab.run(frame, lab.n3_index)[0] == TC_ACT_REDIRECT
    moved = make_state(ul_teid=UL_TEID + 1)  # the TEID changed: the old one is gone
    lab.install(moved)
    assert lab.run(frame, lab.n3_index) == (TC_ACT_OK, frame)
    assert lab.run(lab.uplink_frame(ipv4_udp(UE, DN, b"r"), teid=UL_TEID + 1), lab.n3_index)[0] == TC_ACT_REDIRECT
    lab.fastpath.remove(state.up_seid)
    downlink = lab.downlink_frame(ipv4_udp(DN, UE, b"r"))
    assert lab.run(downlink, lab.n6_index) == (TC_ACT_OK, downlink)
    assert lab.fastpath.counters()["ebpf.ul_packets"] == 2


@needs_netns
def test_the_poll_reads_every_slot_in_one_batch_and_folds_only_those_that_counted(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three sessions; packets for two of them (uplink for one, downlink for the other).
    states = [
        make_state(up_seid=0x100 + k, ue=IPv4Address(int(UE) + k), ul_teid=UL_TEID + k, urrs=(volume_urr(),))
        for k in range(3)
    ]
    for state in states:
        lab.install(state)
    uplink = lab.uplink_frame(ipv4_udp(UE, DN, b"u" * 72), teid=UL_TEID)
    for _ in range(3):
        assert lab.run(uplink, lab.n3_index)[0] == TC_ACT_REDIRECT
    downlink = lab.downlink_frame(ipv4_udp(DN, IPv4Address(int(UE) + 2), b"d" * 172))
    for _ in range(2):
        assert lab.run(downlink, lab.n6_index)[0] == TC_ACT_REDIRECT
    single: list[str] = []
    lookup = lab.obj.lookup

    def counted(name: str, *args: Any) -> bool:
        single.append(name)
        return lookup(name, *args)

    monkeypatch.setattr(lab.obj, "lookup", counted)
    assert lab.fastpath.fold_all() == {}  # no threshold reached: nothing to report
    assert single == []  # one batch read, no element read alone
    query = {state.up_seid: lab.meters[state.up_seid][1].query(NOW + 1) for state in states}
    assert (query[0x100].ul_packets, query[0x100].ul_bytes) == (3, 3 * 100)
    assert (query[0x101].ul_packets, query[0x101].dl_packets) == (0, 0)
    assert (query[0x102].dl_packets, query[0x102].dl_bytes) == (2, 2 * 200)
    counters = lab.fastpath.counters()
    assert (counters["ebpf.ul_packets"], counters["ebpf.dl_packets"]) == (3, 2)
    # Nothing new: the next poll folds nothing (no limits rewritten), and a later packet is
    # folded once, by the poll after it.
    written: list[int] = []
    monkeypatch.setattr(lab.fastpath, "_write_limits", lambda slot, meters: written.append(slot.seid))
    assert lab.fastpath.fold_all() == {} and written == []
    assert lab.run(uplink, lab.n3_index)[0] == TC_ACT_REDIRECT
    lab.fastpath.fold_all()
    assert written == [0x100]
    assert lab.meters[0x100][1].query(NOW + 2).ul_packets == 1  # the query above restarted the count


@needs_netns
def test_a_kernel_without_batch_lookups_is_polled_slot_by_slot(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    state = make_state(urrs=(volume_urr(),))
    lab.install(state)
    assert lab.run(lab.uplink_frame(ipv4_udp(UE, DN, b"u" * 72)), lab.n3_index)[0] == TC_ACT_REDIRECT

    def failing(code: int) -> Callable[..., Any]:
        def lookup_range(*args: Any) -> Any:
            raise BpfError(code, f"batch lookup in map usage: {os.strerror(code)}")

        return lookup_range

    monkeypatch.setattr(lab.obj, "lookup_range", failing(errno.EINVAL))
    assert lab.fastpath.fold_all() == {}
    assert lab.meters[state.up_seid][1].query(NOW + 1).ul_bytes == 100
    monkeypatch.setattr(lab.obj, "lookup_range", failing(errno.EPERM))
    with pytest.raises(BpfError):  # any other failure is the caller's (FastPathGlue counts it)
        lab.fastpath.fold_all()
