"""The RAN simulator and the traffic tools against a real UPF agent, in namespaces.

Topology: :data:`tests.harness.upf_agent.UPF_CP_TOPOLOGY` (cp, gnb, upf, dn). The agent runs as
``edgecups upf`` in upf; a PFCP CP built on ``pfcp/`` installs basic sessions; the gNB simulator
runs as ``python -m edge_sites.sim.gnb`` in gnb and the traffic servers as ``python -m
edge_sites.sim.traffic serve`` in dn. UEs' traffic runs in gnb from sockets bound to their
addresses; it reaches the DN only through the gNB's GTP-U and the UPF.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import json
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import TypeVar

import pytest

import pfcp
from edge_sites.sim.gnb_config import GnbConfig, UeTunnel
from edge_sites.sim.gnb_control import ControlError, GnbProcess
from edge_sites.sim.netns import run_in_netns
from edge_sites.sim.process import NetnsProcess
from edge_sites.sim.traffic import ping, tcp_transfer, udp_stream
from edge_sites.sim.traffic_server import server_process
from tests.harness.netns import netns_unavailable_reason
from tests.harness.sessions import BasicSession, up_seid_of, uplink_teid_of
from tests.harness.upf_agent import UpfUnderTest, running_upf
from user_plane import gtpu

T = TypeVar("T")

GNB = IPv4Address("198.18.1.2")
UPF_N3 = IPv4Address("198.18.1.1")
DN = "198.18.2.2"
QFI = 9
ETH_P_IP = 0x0800
#: Outgoing packets reach only ETH_P_ALL packet sockets (dev_queue_xmit_nit).
ETH_P_ALL = 0x0003

_UNAVAILABLE = netns_unavailable_reason()
pytestmark = [pytest.mark.needs_root, pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")]

_NUMBERS = itertools.count(1)


@dataclass
class Attached:
    session: BasicSession
    up_seid: int
    tunnel: UeTunnel

    @property
    def ue(self) -> str:
        return str(self.session.ue)


@dataclass
class Ran:
    upf: UpfUnderTest
    gnb: GnbProcess
    servers: NetnsProcess

    def run(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """``fn()`` in the gNB namespace, where the UEs' addresses are."""
        return run_in_netns(self.upf.ns("gnb"), fn, timeout)

    def attach(self, qfi: int = QFI) -> Attached:
        """A new session on the UPF (the CP's PFCP) and its UE attached to the gNB."""
        n = next(_NUMBERS)
        session = BasicSession(cp_seid=0x5000 + n, ue=IPv4Address("198.19.7.0") + n, gnb=GNB, gnb_teid=0x9000 + n,
                               qfi=qfi)  # fmt: skip
        rsp = self.upf.cp.request(session.establishment(self.upf.cp.node_id))
        assert isinstance(rsp, pfcp.SessionEstablishmentResponse)
        assert rsp.cause.value == pfcp.CauseValue.REQUEST_ACCEPTED, rsp
        tunnel = UeTunnel(session.ue, uplink_teid_of(rsp, session), UPF_N3, session.gnb_teid, qfi)
        assert self.gnb.client.attach(tunnel) == tunnel.to_dict()
        return Attached(session, up_seid_of(rsp), tunnel)

    def upf_usage(self, ue: Attached) -> pfcp.VolumeMeasurement:
        """What the UPF measured for the UE's session (Query URR, TS 29.244 §7.5.4)."""
        query = pfcp.SessionModificationRequest(seid=ue.up_seid, query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(1)),))
        rsp = self.upf.cp.request(query)
        assert isinstance(rsp, pfcp.SessionModificationResponse)
        (report,) = rsp.usage_report
        assert report.volume_measurement is not None
        return report.volume_measurement


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    # A short directory: the gNB's control socket path must fit in sun_path (108 octets).
    workdir = Path(tempfile.mkdtemp(prefix="ec-ran-"))
    try:
        with running_upf(tmp_path_factory.mktemp("upf")) as upf:
            gnb = GnbProcess(upf.ns("gnb"), GnbConfig(name="gnb1", n3_address=GNB), workdir)
            servers = server_process(upf.ns("dn"), DN, workdir / "servers.log")
            try:
                servers.start()
                gnb.start()
                yield Ran(upf, gnb, servers)
            finally:
                codes = (gnb.stop(), servers.stop())
                logs = f"gNB:\n{gnb.log()}\nservers:\n{servers.log()}"
            assert codes == (0, 0), logs
    finally:
        shutil.rmtree(workdir)


def test_ping_gets_every_reply_and_the_counters_match_the_upfs(ran: Ran) -> None:
    ue = ran.attach()
    result = ran.run(lambda: ping(ue.ue, DN, count=20, interval=0.02))
    assert (result.sent, result.received, result.loss) == (20, 20, 0.0)
    assert result.to_dict()["rtt_p50_ms"] > 0
    counters = ran.gnb.client.counters(ue.ue)
    # 20 echo requests up, 20 replies down, 84 octets each (IPv4 20 + ICMP 8 + 56), nothing dropped
    assert counters | {"last_dl_qfi": None} == {
        "ul_packets": 20, "ul_bytes": 20 * 84, "dl_packets": 20, "dl_bytes": 20 * 84,
        "ul_drops": 0, "dl_drops": 0, "end_markers": 0, "last_dl_qfi": None,
    }  # fmt: skip
    assert counters["last_dl_qfi"] == QFI  # the UPF's DL PDU SESSION INFORMATION (QER QFI)
    usage = ran.upf_usage(ue)
    assert (usage.uplink_packets, usage.uplink_volume) == (20, counters["ul_bytes"])
    assert (usage.downlink_packets, usage.downlink_volume) == (20, counters["dl_bytes"])


def test_uplink_gpdus_on_the_wire_carry_ul_pdu_session_information_with_the_qfi(ran: Ran) -> None:
    ue = ran.attach(qfi=5)
    capture = run_in_netns(
        ran.upf.ns("gnb"), lambda: socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    )
    with capture:
        capture.bind(("gnb0", ETH_P_ALL))
        capture.settimeout(2.0)
        assert ran.run(lambda: ping(ue.ue, DN, count=3, interval=0.01)).received == 3
        uplink: list[gtpu.GtpuMessage] = []
        deadline = time.monotonic() + 2.0
        while len(uplink) < 3 and time.monotonic() < deadline:
            frame, address = capture.recvfrom(65535)
            if address[1] != ETH_P_IP:
                continue
            src, dst = IPv4Address(frame[12:16]), IPv4Address(frame[16:20])
            if frame[9] == 17 and (src, dst) == (GNB, UPF_N3) and struct.unpack_from("!H", frame, 22)[0] == 2152:
                uplink.append(gtpu.decode(frame[28:]))
    assert len(uplink) == 3
    for message in uplink:
        assert (message.message_type, message.teid) == (gtpu.MessageType.G_PDU, ue.tunnel.uplink_teid)
        assert message.extension_headers == (gtpu.PDUSessionContainer(gtpu.PDUType.UL_PDU_SESSION_INFORMATION, 5),)
        inner = message.payload
        assert (IPv4Address(inner[12:16]), IPv4Address(inner[16:20]), inner[9], inner[20]) == (ue.session.ue,
                IPv4Address(DN), 1, 8)  # fmt: skip  # ICMP Echo Request from the UE to the DN


def test_a_udp_stream_arrives_with_under_1_percent_loss_both_ways(ran: Ran) -> None:
    ue = ran.attach()
    result = ran.run(lambda: udp_stream(ue.ue, DN, rate_pps=1000, duration=1.5, size=512))
    assert result.sent == 1500
    assert result.loss is not None and result.loss < 0.01, result.to_dict()
    assert result.echo_loss is not None and result.echo_loss < 0.01, result.to_dict()
    counters = ran.gnb.client.counters(ue.ue)
    # up: the stream and 1-3 STATS requests (48 octets); down: the echoes and STATS_REPLYs (64 octets)
    stats_requests = counters["ul_packets"] - result.sent
    assert stats_requests in (1, 2, 3) and counters["ul_bytes"] == result.sent * 512 + stats_requests * 48
    replies = counters["dl_packets"] - result.echoed
    assert 1 <= replies <= stats_requests and counters["dl_bytes"] == result.echoed * 512 + replies * 64
    assert (counters["ul_drops"], counters["dl_drops"]) == (0, 0)


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_a_tcp_transfer_completes_with_the_right_byte_count(ran: Ran, direction: str) -> None:
    ue = ran.attach()
    result = ran.run(lambda: tcp_transfer(ue.ue, DN, nbytes=3_000_000, direction=direction, timeout=20))  # type: ignore[arg-type]
    assert result.complete, result.to_dict()
    assert result.transferred_bytes == 3_000_000 and result.to_dict()["throughput_mbps"] > 0


def test_two_ues_at_once_each_get_their_own_traffic_and_counters(ran: Ran) -> None:
    first, second = ran.attach(), ran.attach()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda ue: ran.run(lambda: ping(ue.ue, DN, count=10, interval=0.01)), [first, second]))
    assert [(r.source, r.received) for r in results] == [(first.ue, 10), (second.ue, 10)]
    counters = ran.gnb.client.counters()
    for ue in (first, second):
        assert counters["ues"][ue.ue]["ul_packets"] == counters["ues"][ue.ue]["dl_packets"] == 10


def test_detach_stops_traffic_and_late_downlink_gets_an_error_indication(ran: Ran) -> None:
    ue = ran.attach()
    assert ran.run(lambda: ping(ue.ue, DN, count=2, interval=0.01)).received == 2
    final = ran.gnb.client.detach(ue.ue)
    assert final["ul_packets"] == final["dl_packets"] == 2
    with pytest.raises(OSError, match="assign requested address"):  # the UE's address is gone
        ran.run(lambda: ping(ue.ue, DN, count=1))
    before = ran.gnb.client.counters()["gnb"].get("drop.unknown_teid", 0)
    dn = ran.upf.topology.udp_socket("dn")
    dn.sendto(b"to a detached UE", (ue.ue, 7000))  # the UPF still holds the session
    deadline = time.monotonic() + 3.0
    while ran.gnb.client.counters()["gnb"].get("drop.unknown_teid", 0) == before:
        assert time.monotonic() < deadline, "the downlink G-PDU never reached the gNB"
        time.sleep(0.05)
    # TS 29.281 §7.3.1: the gNB answers with an Error Indication; the UPF logs it with the TEID.
    while f"for TEID {ue.tunnel.downlink_teid} " not in ran.upf.agent.log():
        assert time.monotonic() < deadline, "the UPF saw no Error Indication"
        time.sleep(0.05)
    with pytest.raises(ControlError) as refused:
        ran.gnb.client.detach(ue.ue)
    assert refused.value.field == "ue_ip"


def test_move_switches_tunnels_and_an_end_marker_releases_the_old_downlink_teid(ran: Ran) -> None:
    ue = ran.attach()
    good_teid = ue.tunnel.uplink_teid
    ran.gnb.client.move(ue.ue, uplink_teid=good_teid + 100_000)  # a TEID the UPF does not know
    assert ran.run(lambda: ping(ue.ue, DN, count=2, interval=0.01, timeout=0.5)).received == 0
    ran.gnb.client.move(ue.ue, uplink_teid=good_teid)
    assert ran.run(lambda: ping(ue.ue, DN, count=2, interval=0.01)).received == 2
    # Path switch: the gNB gives a new downlink TEID, the CP switches the FAR with SNDEM.
    new_teid = ue.tunnel.downlink_teid + 0x100000
    assert ran.gnb.client.move(ue.ue, downlink_teid=new_teid)["downlink_teid"] == new_teid
    assert _previous_teids(ran, ue) == [ue.tunnel.downlink_teid]
    switch = ue.session.forward_downlink(ue.up_seid, teid=new_teid)
    far = switch.update_far[0]
    assert far.update_forwarding_parameters is not None
    sndem = pfcp.PFCPSMReqFlags(pfcp.PFCPSMReqFlagsValue.SNDEM)
    params = dataclasses.replace(far.update_forwarding_parameters, pfcpsmreq_flags=sndem)
    far = dataclasses.replace(far, update_forwarding_parameters=params)
    rsp = ran.upf.cp.request(pfcp.SessionModificationRequest(seid=ue.up_seid, update_far=(far,)))
    assert rsp.cause.value == pfcp.CauseValue.REQUEST_ACCEPTED  # type: ignore[attr-defined]
    deadline = time.monotonic() + 3.0
    while ran.gnb.client.counters(ue.ue)["end_markers"] == 0:
        assert time.monotonic() < deadline, "no End Marker on the old path"
        time.sleep(0.05)
    assert _previous_teids(ran, ue) == []  # TS 29.281 §7.3.2: nothing more comes on the old TEID
    before = ran.gnb.client.counters(ue.ue)["dl_packets"]
    assert ran.run(lambda: ping(ue.ue, DN, count=2, interval=0.01)).received == 2
    assert ran.gnb.client.counters(ue.ue)["dl_packets"] == before + 2


def _previous_teids(ran: Ran, ue: Attached) -> list[int]:
    (entry,) = [u for u in ran.gnb.client.status()["ues"] if u["ue_ip"] == ue.ue]
    return list(entry["previous_downlink_teids"])


def test_gtpu_echo_works_both_ways(ran: Ran) -> None:
    assert ran.gnb.client.echo(UPF_N3) > 0  # TS 29.281 §7.2.1 to the UPF, its response back
    probe = ran.upf.topology.udp_socket("upf", bind=(str(UPF_N3), 0))
    probe.sendto(gtpu.encode(gtpu.echo_request(sequence=4242)), (str(GNB), 2152))
    answer = gtpu.decode(probe.recv(2048))
    assert (answer.message_type, answer.sequence) == (gtpu.MessageType.ECHO_RESPONSE, 4242)


def test_the_control_channel_refuses_bad_requests_naming_the_field(ran: Ran) -> None:
    ue = ran.attach()
    client = ran.gnb.client
    with pytest.raises(ControlError) as again:
        client.attach(ue.tunnel)
    assert again.value.field == "ue_ip"
    other = UeTunnel(IPv4Address("198.19.99.1"), 77, UPF_N3, ue.tunnel.downlink_teid, QFI)
    with pytest.raises(ControlError) as teid:
        client.attach(other)
    assert teid.value.field == "downlink_teid"
    with pytest.raises(ControlError) as qfi:
        client.move(ue.ue, qfi=64)
    assert qfi.value.field == "qfi"
    with pytest.raises(ControlError) as missing:
        client.call("echo")
    assert missing.value.field == "upf_n3"
    assert client.counters(ue.ue)["ul_packets"] == 0  # nothing of the above touched the UE


def test_traffic_runs_as_a_process_in_the_gnb_namespace(ran: Ran) -> None:
    ue = ran.attach()
    argv = ["ping", "--source", ue.ue, "--destination", DN, "--count", "3", "--interval", "0.01"]
    done = subprocess.run(["ip", "netns", "exec", ran.upf.ns("gnb"), sys.executable, "-m", "edge_sites.sim.traffic",
                           *argv], capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["source"], result["sent"], result["received"], result["loss"]) == (ue.ue, 3, 3, 0.0)
