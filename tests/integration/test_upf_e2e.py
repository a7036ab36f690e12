"""The UPF agent end to end: ``edgecups upf --config`` in a namespace, real PFCP, real packets.

A CP built on ``pfcp/`` (in the cp namespace) associates and installs sessions over N4; a "gNB"
namespace sends G-PDUs to N3 and a "DN" namespace answers on N6. Assertions are on PFCP
responses and reports, and on the packets that arrive (payload, addresses, TEID, QFI).
"""

from __future__ import annotations

import dataclasses
import itertools
import socket
import struct
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

import pfcp
from tests.harness.netns import netns_unavailable_reason
from tests.harness.packets import GTPU_PORT, gpdu, ipv4_udp, udp_payload_of
from tests.harness.sessions import BasicSession, up_seid_of, uplink_teid_of
from tests.harness.upf_agent import UpfUnderTest, running_upf
from user_plane import gtpu

Cause = pfcp.CauseValue
GNB = IPv4Address("198.18.1.2")
UPF_N3 = IPv4Address("198.18.1.1")
DN = IPv4Address("198.18.2.2")
DN_PORT = 9000

_UNAVAILABLE = netns_unavailable_reason()
pytestmark = [pytest.mark.needs_root, pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")]


_SESSION_NUMBERS = itertools.count(1)  # module-wide: sessions of earlier tests stay installed


class Site:
    """The running UPF plus a gNB socket on N3 and a DN socket on N6."""

    def __init__(self, upf: UpfUnderTest) -> None:
        self.upf = upf
        self.cp = upf.cp
        self.gnb = upf.topology.udp_socket("gnb", bind=(str(GNB), GTPU_PORT), timeout=2.0)
        self.dn = upf.topology.udp_socket("dn", bind=(str(DN), DN_PORT), timeout=2.0)

    def session(self, **kw: object) -> BasicSession:
        """A fresh basic session (unique CP SEID, UE address and gNB TEID)."""
        n = next(_SESSION_NUMBERS)
        return BasicSession(cp_seid=0x1000 + n, ue=IPv4Address("198.19.0.0") + n, gnb=GNB, gnb_teid=0x2000 + n, **kw)  # type: ignore[arg-type]

    def establish(self, s: BasicSession) -> tuple[int, int]:
        """(UP SEID, uplink TEID) of an accepted establishment."""
        rsp = self.cp.request(s.establishment(self.cp.node_id))
        assert isinstance(rsp, pfcp.SessionEstablishmentResponse)
        assert rsp.cause.value == Cause.REQUEST_ACCEPTED, rsp
        return up_seid_of(rsp), uplink_teid_of(rsp, s)

    def drain(self) -> None:
        for sock in (self.gnb, self.dn):
            sock.setblocking(False)
            try:
                while True:
                    sock.recv(65535)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
                sock.settimeout(2.0)

    def uplink(self, teid: int, s: BasicSession, payload: bytes, qfi: int | None = 9, sport: int = 40000) -> None:
        inner = ipv4_udp(s.ue, DN, sport, DN_PORT, payload)
        self.gnb.sendto(gpdu(teid, inner, qfi), (str(UPF_N3), GTPU_PORT))

    def uplink_arrives(self, teid: int, s: BasicSession, payload: bytes, qfi: int | None = 9) -> bool:
        """Send one G-PDU; True if its inner payload reached the DN from the UE's address."""
        self.drain()
        self.uplink(teid, s, payload, qfi)
        self.dn.settimeout(1.0)
        try:
            while True:
                data, src = self.dn.recvfrom(65535)
                if data == payload:
                    assert src == (str(s.ue), 40000)
                    return True
        except TimeoutError:
            return False

    def downlink(self, s: BasicSession, payload: bytes, sport: int = DN_PORT) -> None:
        self.dn.sendto(payload, (str(s.ue), 7000))

    def downlink_gpdu(self, timeout: float = 1.0) -> gtpu.GtpuMessage | None:
        self.gnb.settimeout(timeout)
        try:
            data, src = self.gnb.recvfrom(65535)
        except TimeoutError:
            return None
        assert src == (str(UPF_N3), GTPU_PORT)
        return gtpu.decode(data)


@pytest.fixture(scope="module")
def upf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpfUnderTest]:
    with running_upf(tmp_path_factory.mktemp("upf")) as running:
        yield running


@pytest.fixture
def site(upf: UpfUnderTest) -> Iterator[Site]:
    site = Site(upf)
    yield site
    site.gnb.close()
    site.dn.close()


# -- forwarding --------------------------------------------------------------


def test_uplink_gpdu_arrives_on_n6_without_its_outer_headers(site: Site) -> None:
    s = site.session()
    _, teid = site.establish(s)
    for i in range(5):
        assert site.uplink_arrives(teid, s, f"uplink {i}".encode())


def test_downlink_is_encapsulated_towards_the_gnb_teid_with_the_qfi(site: Site) -> None:
    s = site.session(qfi=5)
    site.establish(s)
    site.drain()
    site.downlink(s, b"downlink hello")
    msg = site.downlink_gpdu()
    assert msg is not None
    assert msg.message_type == gtpu.MessageType.G_PDU and msg.teid == s.gnb_teid
    assert msg.qfi == 5  # QFI marking from the QER (DL PDU SESSION INFORMATION, TS 38.415)
    src, dst, sport, dport, payload = udp_payload_of(msg.payload)
    assert (src, dst, sport, dport, payload) == (DN, s.ue, DN_PORT, 7000, b"downlink hello")


def test_a_gpdu_with_the_wrong_qfi_or_a_spoofed_source_is_dropped(site: Site) -> None:
    s = site.session()
    _, teid = site.establish(s)
    assert not site.uplink_arrives(teid, s, b"wrong qfi", qfi=3)
    spoofed = BasicSession(cp_seid=0, ue=IPv4Address("198.19.200.1"), gnb=GNB, gnb_teid=1)
    site.drain()
    site.gnb.sendto(gpdu(teid, ipv4_udp(spoofed.ue, DN, 40000, DN_PORT, b"spoof"), 9), (str(UPF_N3), GTPU_PORT))
    with pytest.raises(TimeoutError):
        site.dn.recvfrom(65535)
    assert site.uplink_arrives(teid, s, b"right qfi")


def test_unknown_teid_gets_an_error_indication(site: Site) -> None:
    site.drain()
    site.gnb.sendto(gpdu(0x7FFF0001, ipv4_udp(IPv4Address("198.19.9.9"), DN, 1, 2, b"x"), 9), (str(UPF_N3), GTPU_PORT))
    msg = site.downlink_gpdu()
    assert msg is not None and msg.message_type == gtpu.MessageType.ERROR_INDICATION
    data = msg.ie(gtpu.TEIDDataI)
    assert data is not None and data.teid == 0x7FFF0001  # TS 29.281 §7.3.1


def test_echo_request_on_n3_is_answered(site: Site) -> None:
    site.drain()
    site.gnb.sendto(gtpu.encode(gtpu.echo_request(sequence=77)), (str(UPF_N3), GTPU_PORT))
    msg = site.downlink_gpdu()
    assert msg is not None and msg.message_type == gtpu.MessageType.ECHO_RESPONSE and msg.sequence == 77


def test_captured_downlink_decodes_in_tshark(site: Site, tmp_path: Path) -> None:
    import subprocess

    s = site.session(qfi=7)
    site.establish(s)
    pcap = tmp_path / "n3.pcap"
    capture = subprocess.Popen(
        ["ip", "netns", "exec", site.upf.ns("gnb"), "tshark", "-q", "-i", "gnb0", "-w", str(pcap), "-c", "1",
         "-a", "duration:10", "-f", f"udp port {GTPU_PORT} and src host {UPF_N3}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # tshark needs a moment before it captures
        for _ in range(10):
            site.downlink(s, b"captured")
            if capture.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        capture.wait(15)
    fields = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=|", "-E", "occurrence=f",
         "-e", "ip.src", "-e", "ip.dst", "-e", "gtp.teid", "-e", "gtp.ext_hdr.pdu_ses_con.qos_flow_id",
         "-e", "gtp.ext_hdr.pdu_ses_con.pdu_type"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")[0]  # fmt: skip
    outer_src, outer_dst, teid, qfi, pdu_type = fields.split("|")  # first occurrence: the outer header
    assert (outer_src, outer_dst) == (str(UPF_N3), str(GNB))
    assert int(teid, 0) == s.gnb_teid and int(qfi) == 7 and int(pdu_type) == 0  # DL PDU SESSION INFORMATION


# -- negative cases: the right cause, and the dataplane as before -------------


def test_modification_of_an_unknown_seid_is_65_and_changes_nothing(site: Site) -> None:
    s = site.session()
    _, teid = site.establish(s)
    rsp = site.cp.request(s.forward_downlink(up_seid=0xDEAD_BEEF))
    assert rsp.cause.value == Cause.SESSION_CONTEXT_NOT_FOUND  # type: ignore[attr-defined]
    assert site.uplink_arrives(teid, s, b"still forwarding")


def test_missing_mandatory_ie_is_66_with_the_offending_ie(site: Site) -> None:
    s = site.session(ul_teid=0x3000_0001)
    good = pfcp.encode(s.establishment(site.cp.node_id).with_sequence(0x4242))
    # cut the CP F-SEID IE (type 57) out of the encoded request and fix the header length
    at = good.index(struct.pack("!H", pfcp.IEType.F_SEID), 16)
    length = struct.unpack_from("!H", good, at + 2)[0]
    bad = bytearray(good[:at] + good[at + 4 + length :])
    struct.pack_into("!H", bad, 2, len(bad) - 4)
    rsp = site.cp.exchange_raw(bytes(bad))
    assert isinstance(rsp, pfcp.SessionEstablishmentResponse)
    assert rsp.cause.value == Cause.MANDATORY_IE_MISSING
    assert rsp.offending_ie is not None and rsp.offending_ie.value == pfcp.IEType.F_SEID
    assert not site.uplink_arrives(0x3000_0001, s, b"never installed")


def test_a_far_id_that_does_not_exist_is_73_with_the_failed_rule(site: Site) -> None:
    s = site.session()
    up_seid, teid = site.establish(s)
    bad = pfcp.SessionModificationRequest(
        seid=up_seid, update_pdr=(pfcp.UpdatePDR(pdr_id=pfcp.PDRID(1), far_id=pfcp.FARID(99)),)
    )
    rsp = site.cp.request(bad)
    assert isinstance(rsp, pfcp.SessionModificationResponse)
    assert rsp.cause.value == Cause.RULE_CREATION_MODIFICATION_FAILURE
    assert rsp.failed_rule_id == pfcp.FailedRuleID(pfcp.RuleIDType.PDR, 1)
    assert site.uplink_arrives(teid, s, b"unchanged")


def test_a_pdr_conflicting_with_another_is_73_and_the_session_keeps_working(site: Site) -> None:
    s = site.session(ul_teid=0x3000_0002)
    up_seid, teid = site.establish(s)
    same_as_pdr_1 = s.establishment(site.cp.node_id).create_pdr[0]
    twin = pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(3),
        precedence=same_as_pdr_1.precedence,
        pdi=same_as_pdr_1.pdi,
        outer_header_removal=same_as_pdr_1.outer_header_removal,
        far_id=same_as_pdr_1.far_id,
    )
    rsp = site.cp.request(pfcp.SessionModificationRequest(seid=up_seid, create_pdr=(twin,)))
    assert isinstance(rsp, pfcp.SessionModificationResponse)
    assert rsp.cause.value == Cause.RULE_CREATION_MODIFICATION_FAILURE
    assert rsp.failed_rule_id == pfcp.FailedRuleID(pfcp.RuleIDType.PDR, 3)
    assert site.uplink_arrives(teid, s, b"unchanged")


def test_a_teid_owned_by_another_session_is_refused_and_both_stay_as_they_were(site: Site) -> None:
    first = site.session(ul_teid=0x3000_0003)
    _, teid = site.establish(first)
    second = site.session(ul_teid=0x3000_0003)
    rsp = site.cp.request(second.establishment(site.cp.node_id))
    # §7.5.3.1, Table 8.2.1-1: 73 Rule creation/modification Failure, naming the uplink PDR (§8.2.80)
    assert isinstance(rsp, pfcp.SessionEstablishmentResponse)
    assert rsp.cause.value == Cause.RULE_CREATION_MODIFICATION_FAILURE, rsp
    assert rsp.failed_rule_id == pfcp.FailedRuleID(pfcp.RuleIDType.PDR, 1)
    assert site.uplink_arrives(teid, first, b"first still owns it")
    assert not site.uplink_arrives(teid, second, b"second never installed")


# -- usage, buffering, QoS -----------------------------------------------------


def test_deletion_returns_the_final_usage_report(site: Site) -> None:
    s = site.session()
    up_seid, teid = site.establish(s)
    payloads = [bytes(100 + i) for i in range(10)]
    for p in payloads:
        assert site.uplink_arrives(teid, s, p)
    rsp = site.cp.request(pfcp.SessionDeletionRequest(seid=up_seid))
    assert isinstance(rsp, pfcp.SessionDeletionResponse) and rsp.cause.value == Cause.REQUEST_ACCEPTED
    (report,) = rsp.usage_report
    assert report.urr_id.value == 1
    assert report.usage_report_trigger.value & pfcp.UsageReportTriggerFlags.TERMR
    volume = report.volume_measurement
    assert volume is not None
    assert volume.uplink_volume == sum(len(p) + 28 for p in payloads)  # inner IPv4 + UDP headers
    assert volume.uplink_packets == 10 and volume.downlink_volume == 0
    assert not site.uplink_arrives(teid, s, b"deleted")


def test_a_one_megabyte_volume_threshold_reports_exactly_once(site: Site) -> None:
    s = site.session(volume_threshold=1_000_000)
    up_seid, teid = site.establish(s)
    site.drain()
    packet = 1000 - 28  # 1000-octet inner IP packets
    # Send in batches and count what reached the DN: what the UPF forwarded is what it measured,
    # whatever a loaded machine drops before the UPF sees it. Stop once 1 MB has gone through.
    delivered = 0
    site.dn.settimeout(0.5)
    for batch in range(40):
        for i in range(50):
            site.uplink(teid, s, (batch * 50 + i).to_bytes(4, "big") + bytes(packet - 4))
        try:
            for _ in range(50):
                site.dn.recv(2048)
                delivered += 1000
        except TimeoutError:
            pass
        if delivered >= 1_000_000:
            break
    assert delivered >= 1_000_000
    report_request = site.cp.next_report(timeout=5.0)
    assert report_request.seid == s.cp_seid
    assert report_request.report_type.value & pfcp.ReportTypeFlags.USAR
    (report,) = report_request.usage_report
    assert report.usage_report_trigger.value & pfcp.UsageReportTriggerFlags.VOLTH
    volume = report.volume_measurement
    assert volume is not None and volume.total_volume is not None
    # reported on the packet that reached the threshold: within one packet of it
    assert 1_000_000 <= volume.total_volume < 1_000_000 + 1000, volume
    with pytest.raises(Exception):  # noqa: B017 - queue.Empty: no second report
        site.cp.next_report(timeout=1.0)
    # and nothing is lost: what came after the report is in the next one (Query URR)
    rsp = site.cp.request(
        pfcp.SessionModificationRequest(seid=up_seid, query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(1)),))
    )
    assert isinstance(rsp, pfcp.SessionModificationResponse)
    (rest,) = rsp.usage_report
    assert rest.volume_measurement is not None and rest.volume_measurement.total_volume is not None
    assert volume.total_volume + rest.volume_measurement.total_volume == delivered


def test_buffered_downlink_is_reported_once_and_delivered_when_the_far_forwards(site: Site) -> None:
    s = site.session(buffering=True)
    up_seid, _ = site.establish(s)
    site.drain()
    for i in range(3):
        site.downlink(s, f"buffered {i}".encode())
    report_request = site.cp.next_report(timeout=5.0)
    assert report_request.report_type.value & pfcp.ReportTypeFlags.DLDR
    assert report_request.downlink_data_report is not None
    assert report_request.downlink_data_report.pdr_id[0].value == 2
    assert site.downlink_gpdu(timeout=0.5) is None  # buffered, not sent
    with pytest.raises(Exception):  # noqa: B017 - one DLDR for the buffer, not one per packet
        site.cp.next_report(timeout=0.5)
    rsp = site.cp.request(s.forward_downlink(up_seid))
    assert rsp.cause.value == Cause.REQUEST_ACCEPTED  # type: ignore[attr-defined]
    got = []
    for _ in range(3):
        msg = site.downlink_gpdu()
        assert msg is not None and msg.teid == s.gnb_teid
        got.append(udp_payload_of(msg.payload)[4])
    assert got == [b"buffered 0", b"buffered 1", b"buffered 2"]


def test_mbr_of_10_mbit_holds_within_5_percent_under_50_mbit(site: Site) -> None:
    s = site.session(mbr_kbps=(10_000, 10_000))
    _, teid = site.establish(s)
    site.drain()
    packet = 1250  # inner IP octets: 50 Mbit/s = 5000 packets/s
    payload = bytes(packet - 28)
    datagram = gpdu(teid, ipv4_udp(s.ue, DN, 40000, DN_PORT, payload), 9)
    site.dn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    duration = 3.0
    received: list[float] = []
    start = time.monotonic()
    sent = 0
    site.dn.setblocking(False)
    while (now := time.monotonic()) - start < duration:
        while sent < (now - start) * 5000:
            site.gnb.sendto(datagram, (str(UPF_N3), GTPU_PORT))
            sent += 1
        try:
            while True:
                site.dn.recv(2048)
                received.append(time.monotonic())
        except BlockingIOError:
            pass
        time.sleep(0.002)
    time.sleep(0.2)
    try:
        while True:
            site.dn.recv(2048)
            received.append(time.monotonic())
    except BlockingIOError:
        pass
    offered = sent * packet * 8 / duration
    assert offered > 45e6, f"the sender offered only {offered / 1e6:.1f} Mbit/s"
    # the steady state: from the end of the first second (the initial bucket is spent) to the end
    steady = [t for t in received if t >= start + 1.0]
    window = duration - 1.0
    rate = len(steady) * packet * 8 / window
    assert abs(rate - 10e6) <= 0.05 * 10e6, f"{rate / 1e6:.2f} Mbit/s through a 10 Mbit/s MBR"


# -- modifications -------------------------------------------------------------


def test_a_path_switch_with_sndem_sends_an_end_marker_on_the_old_path(site: Site) -> None:
    s = site.session()
    up_seid, _ = site.establish(s)
    site.drain()
    switch = s.forward_downlink(up_seid, teid=0x7777)  # the UE moved: the gNB gave a new TEID
    far = switch.update_far[0]
    assert far.update_forwarding_parameters is not None
    flags = pfcp.PFCPSMReqFlags(pfcp.PFCPSMReqFlagsValue.SNDEM)
    params = dataclasses.replace(far.update_forwarding_parameters, pfcpsmreq_flags=flags)
    rsp = site.cp.request(
        dataclasses.replace(switch, update_far=(dataclasses.replace(far, update_forwarding_parameters=params),))
    )
    assert rsp.cause.value == Cause.REQUEST_ACCEPTED  # type: ignore[attr-defined]
    marker = site.downlink_gpdu()
    assert marker is not None and marker.message_type == gtpu.MessageType.END_MARKER
    assert marker.teid == s.gnb_teid  # TS 29.281 §7.3.2: on the old path
    site.downlink(s, b"after the switch")
    msg = site.downlink_gpdu()
    assert msg is not None and msg.message_type == gtpu.MessageType.G_PDU and msg.teid == 0x7777


def test_query_urr_reports_usage_in_the_modification_response(site: Site) -> None:
    s = site.session()
    up_seid, teid = site.establish(s)
    assert site.uplink_arrives(teid, s, bytes(72))
    rsp = site.cp.request(
        pfcp.SessionModificationRequest(
            seid=up_seid,
            query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(1)),),
            query_urr_reference=pfcp.QueryURRReference(9),
        )
    )
    assert isinstance(rsp, pfcp.SessionModificationResponse) and rsp.cause.value == Cause.REQUEST_ACCEPTED
    (report,) = rsp.usage_report
    assert report.usage_report_trigger.value & pfcp.UsageReportTriggerFlags.IMMER
    assert report.query_urr_reference is not None and report.query_urr_reference.value == 9
    assert report.volume_measurement is not None and report.volume_measurement.uplink_volume == 100


def test_an_sdf_filtered_drop_rule_with_higher_precedence_wins(site: Site) -> None:
    s = site.session()
    up_seid, teid = site.establish(s)
    blocked = pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(10),
        precedence=pfcp.Precedence(10),  # lower value, higher precedence (§5.2.1)
        pdi=pfcp.PDI(
            source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
            local_f_teid=pfcp.FTEID(teid=teid, ipv4=UPF_N3),
            network_instance=pfcp.NetworkInstance("internet"),
            ue_ip_address=(pfcp.UEIPAddress(ipv4=s.ue),),
            sdf_filter=(pfcp.SDFFilter(flow_description=f"permit out 17 from {DN} 9001 to assigned"),),
        ),
        outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
        far_id=pfcp.FARID(10),
    )
    drop = pfcp.CreateFAR(far_id=pfcp.FARID(10), apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.DROP))
    rsp = site.cp.request(pfcp.SessionModificationRequest(seid=up_seid, create_pdr=(blocked,), create_far=(drop,)))
    assert rsp.cause.value == Cause.REQUEST_ACCEPTED  # type: ignore[attr-defined]
    dn_9001 = site.upf.topology.udp_socket("dn", bind=(str(DN), 9001), timeout=1.0)
    site.gnb.sendto(gpdu(teid, ipv4_udp(s.ue, DN, 40000, 9001, b"to 9001"), 9), (str(UPF_N3), GTPU_PORT))
    with pytest.raises(TimeoutError):
        dn_9001.recv(2048)
    dn_9001.close()
    assert site.uplink_arrives(teid, s, b"to 9000 still flows")
