"""Session messages from desired rules: encoding, tshark, the UPF agent's planner, diffs, reports."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

import pfcp
from control_plane.domain.rules import EdgeRuleSpec, RuleContext, SessionRules, build_rules
from control_plane.n4.build import (
    PeerProfile,
    deletion_request,
    establishment_request,
    modification_request,
    session_report_response,
)
from control_plane.n4.handle import cause_of, created_fteids, rejection_text, usage_facts
from tests.interop.corpus import pcap_bytes
from tests.unit.control_plane.test_rules import N3
from tests.unit.control_plane.test_rules import context as rules_context
from tests.unit.pfcp.wire import body_start, tlv_tree, walk
from user_plane.session import Plan, SessionState, plan_establishment, plan_modification

CP = "198.18.0.1"
NODE = pfcp.NodeID(IPv4Address(CP))
MEC = "permit out ip from 10.200.0.0/16 to assigned"
EDGE = EdgeRuleSpec("mec", 100, (MEC,), "edge-n6")
CP_PEER = PeerProfile("upf-1", frozenset({"FTUP"}), "cp")
UP_PEER = PeerProfile("upf-1", frozenset({"FTUP", "MNOP"}), "up")
IF = pfcp.Interface3GPPType


def context(**changes: object) -> RuleContext:
    return rules_context(**{"time_threshold": 3600, **changes})


def establish(rules: SessionRules, peer: PeerProfile = CP_PEER) -> pfcp.SessionEstablishmentRequest:
    return establishment_request(node_id=NODE, cp_seid=0x42, cp_address=CP, rules=rules, peer=peer)


CASES = {
    "default-cp-teid": (context(), CP_PEER),
    "default-ch": (context(n3_fteid=None), UP_PEER),
    "edge-cp-teid": (context(edge_rules=(EDGE,)), CP_PEER),
    "edge-ch": (context(n3_fteid=None, edge_rules=(EDGE,)), UP_PEER),
}


def _local(pdi: pfcp.PDI) -> tuple[IPv4Address | None, IPv6Address | None]:
    return IPv4Address(N3), None


def _plan(req: pfcp.SessionEstablishmentRequest) -> Plan:
    teids = itertools.count(0x5000)
    plan = plan_establishment(req, 0x99, lambda chid: next(teids), local_addresses=_local)
    assert isinstance(plan, Plan), plan
    return plan


def all_ies(msg: pfcp.Message) -> list[tuple[int, bytes]]:
    """(type, payload) of every IE, grouped IEs before their members, in wire order."""
    data = pfcp.encode(msg)
    return [(n.ie_type, data[n.start + 4 : n.end]) for n, _ in walk(tlv_tree(data, body_start(data), len(data)))]


@pytest.mark.parametrize("name", sorted(CASES))
def test_establishment_round_trips_and_the_agent_accepts_it(name: str) -> None:
    ctx, peer = CASES[name]
    req = establish(build_rules(ctx), peer)
    assert pfcp.decode(pfcp.encode(req)) == req
    plan = _plan(req)
    pdrs = plan.state.pdrs
    assert sorted(pdrs) == [p.pdr_id for p in build_rules(ctx).pdrs]
    if ctx.n3_fteid is None:  # CH with CHID 1: every uplink PDR shares the F-TEID the agent chose
        assert {pdrs[i].local_f_teid.teid for i in pdrs if pdrs[i].local_f_teid} == {0x5000}  # type: ignore[union-attr]
        assert set(created_fteids(_response(plan))) == {i for i in pdrs if pdrs[i].local_f_teid}
    else:
        assert pdrs[1].local_f_teid is not None and pdrs[1].local_f_teid.teid == 0x100


def _response(plan: Plan) -> pfcp.SessionEstablishmentResponse:
    return pfcp.SessionEstablishmentResponse(
        node_id=NODE,
        cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
        up_f_seid=pfcp.FSEID(seid=0x99, ipv4=IPv4Address(N3)),
        created_pdr=plan.created_pdrs,
    )


def test_establishment_ies_and_rel16_sizes() -> None:
    req = establish(build_rules(context(edge_rules=(EDGE,))), UP_PEER)
    ies = all_ies(req)
    assert {len(p) for t, p in ies if t == pfcp.IEType.APPLY_ACTION} == {2}
    assert [p for t, p in ies if t == pfcp.IEType.REPORTING_TRIGGERS] == [bytes((0x06, 0, 0))]  # VOLTH | TIMTH
    types = [p[0] for t, p in ies if t == pfcp.IEType.TGPP_INTERFACE_TYPE]
    assert types == [IF.N3_3GPP_ACCESS, IF.N6, IF.N3_3GPP_ACCESS, IF.N6, IF.N6, IF.N3_3GPP_ACCESS, IF.N6]
    uplink = req.create_pdr[0]
    assert uplink.pdi.qfi == (pfcp.QFI(9),)
    assert uplink.outer_header_removal == pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4)
    assert req.create_pdr[1].pdi.network_instance == pfcp.NetworkInstance("internet")
    assert req.create_pdr[1].pdi.ue_ip_address[0].is_destination
    assert req.create_urr[0].measurement_information is not None  # MNOP advertised
    assert req.pdn_type == pfcp.PDNType(pfcp.PDNTypeValue.IPV4)
    no_qfi = establish(build_rules(context(qfi_in_pdi=False)))
    assert no_qfi.create_pdr[0].pdi.qfi == () and no_qfi.create_urr[0].measurement_information is None


def test_buffering_dual_stack_and_ipv6_n3() -> None:
    ctx = context(gnb_teid=None, gnb_address=None, ue_ipv6="2001:db8:0:5::/64", n3_fteid=(7, "2001:db8:ff::1"))
    req = establish(build_rules(ctx))
    far2 = req.create_far[1]
    assert far2.apply_action.value == pfcp.ApplyActionFlags.BUFF | pfcp.ApplyActionFlags.NOCP
    assert far2.forwarding_parameters is None
    assert req.create_pdr[0].outer_header_removal is not None
    assert req.create_pdr[0].outer_header_removal.description == pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV6
    ue = req.create_pdr[0].pdi.ue_ip_address[0]
    assert ue.ipv6 == IPv6Address("2001:db8:0:5::") and ue.ipv6_prefix_length is None
    assert req.pdn_type == pfcp.PDNType(pfcp.PDNTypeValue.IPV4V6)
    assert pfcp.decode(pfcp.encode(req)) == req


def test_ch_needs_ftup() -> None:
    assert UP_PEER.choose_teid and not CP_PEER.choose_teid
    assert not PeerProfile("x", frozenset(), "up").choose_teid
    with pytest.raises(ValueError, match="FTUP"):
        establish(build_rules(context(n3_fteid=None)), PeerProfile("x", frozenset(), "up"))


def _state(ctx: RuleContext, peer: PeerProfile) -> SessionState:
    return _plan(establish(build_rules(ctx), peer)).state


def _modify(state: SessionState, req: pfcp.SessionModificationRequest) -> Plan:
    assert pfcp.decode(pfcp.encode(req)) == req
    teids = itertools.count(0x6000)
    plan = plan_modification(state, req, lambda chid: next(teids), local_addresses=_local)
    assert isinstance(plan, Plan), plan
    return plan


def test_handover_updates_only_far_2_with_end_marker() -> None:
    old = build_rules(context())
    new = build_rules(context(gnb_teid=0x300, gnb_address="198.18.2.2"))
    req = modification_request(up_seid=0x99, old=old, new=new, peer=CP_PEER)
    assert req is not None and req.seid == 0x99
    assert [u.far_id.value for u in req.update_far] == [2]
    assert not (req.create_pdr or req.create_far or req.remove_pdr or req.update_pdr or req.update_qer)
    params = req.update_far[0].update_forwarding_parameters
    assert params is not None and params.pfcpsmreq_flags is not None
    assert params.pfcpsmreq_flags.value == pfcp.PFCPSMReqFlagsValue.SNDEM
    assert params.outer_header_creation is not None and params.outer_header_creation.teid == 0x300
    assert req.update_far[0].apply_action is None
    plan = _modify(_state(context(), CP_PEER), req)
    assert plan.end_marker_fars == (2,)


def test_first_gnb_tunnel_forwards_without_end_marker() -> None:
    old = build_rules(context(gnb_teid=None, gnb_address=None))
    req = modification_request(up_seid=0x99, old=old, new=build_rules(context()), peer=CP_PEER)
    assert req is not None and len(req.update_far) == 1
    far = req.update_far[0]
    assert far.apply_action == pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW)
    assert far.update_forwarding_parameters is not None and far.update_forwarding_parameters.pfcpsmreq_flags is None
    assert _modify(_state(context(gnb_teid=None, gnb_address=None), CP_PEER), req).end_marker_fars == ()


@pytest.mark.parametrize("peer", [CP_PEER, UP_PEER], ids=["cp-teid", "ch"])
def test_adding_and_removing_an_edge_rule(peer: PeerProfile) -> None:
    ch = peer is UP_PEER
    base = context(n3_fteid=None) if ch else context()
    edge = context(n3_fteid=None, edge_rules=(EDGE,)) if ch else context(edge_rules=(EDGE,))
    state = _state(base, peer)
    add = modification_request(up_seid=0x99, old=build_rules(base), new=build_rules(edge), peer=peer)
    assert add is not None
    assert [c.pdr_id.value for c in add.create_pdr] == [3, 4] and [c.far_id.value for c in add.create_far] == [3]
    assert not (add.update_pdr or add.update_far or add.remove_pdr or add.remove_far)
    with_edge = _modify(state, add).state
    uplink_teids = {p.local_f_teid.teid for p in with_edge.pdrs.values() if p.local_f_teid is not None}
    assert len(uplink_teids) == 1  # the edge uplink PDR shares the session's N3 F-TEID (CHID 1 when CH)
    remove = modification_request(up_seid=0x99, old=build_rules(edge), new=build_rules(base), peer=peer)
    assert remove is not None
    assert [r.pdr_id.value for r in remove.remove_pdr] == [3, 4] and [r.far_id.value for r in remove.remove_far] == [3]
    assert not (remove.create_pdr or remove.update_pdr or remove.update_far)
    assert sorted(_modify(with_edge, remove).state.pdrs) == [1, 2]


def test_ch_edge_rule_names_the_chosen_fteid_when_known() -> None:
    base, edge = context(n3_fteid=None), context(n3_fteid=None, edge_rules=(EDGE,))
    add = modification_request(
        up_seid=1, old=build_rules(base), new=build_rules(edge), peer=UP_PEER, n3_fteid=(0x5000, N3)
    )
    assert add is not None
    assert add.create_pdr[0].pdi.local_f_teid == pfcp.FTEID(teid=0x5000, ipv4=IPv4Address(N3))


def test_no_change_is_none_and_qos_change_updates_qer_and_urr() -> None:
    rules = build_rules(context(edge_rules=(EDGE,)))
    assert modification_request(up_seid=1, old=rules, new=rules, peer=CP_PEER) is None
    cp_f_seid = pfcp.FSEID(seid=0x43, ipv4=IPv4Address(CP))
    moved = modification_request(up_seid=1, old=rules, new=rules, peer=CP_PEER, cp_f_seid=cp_f_seid)
    assert moved is not None and moved.cp_f_seid == cp_f_seid
    new = build_rules(context(edge_rules=(EDGE,), mbr=(1, 2), volume_threshold=None))
    req = modification_request(up_seid=1, old=rules, new=new, peer=CP_PEER)
    assert req is not None
    assert [q.mbr for q in req.update_qer] == [pfcp.MBR(1, 2)]
    assert [u.reporting_triggers for u in req.update_urr] == [pfcp.ReportingTriggers(pfcp.ReportingTriggersFlags.TIMTH)]
    assert not (req.update_pdr or req.update_far or req.create_pdr)
    _modify(_state(context(edge_rules=(EDGE,)), CP_PEER), req)


def test_deletion_and_report_response() -> None:
    assert deletion_request(up_seid=0x99) == pfcp.SessionDeletionRequest(seid=0x99)
    resp = session_report_response(up_seid=0x99)
    assert resp.seid == 0x99 and resp.cause.value == pfcp.CauseValue.REQUEST_ACCEPTED
    assert pfcp.decode(pfcp.encode(resp)) == resp


def test_usage_facts_from_a_report() -> None:
    start = int(datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()) + pfcp.NTP_UNIX_OFFSET
    report = pfcp.UsageReportSRR(
        urr_id=pfcp.URRID(1),
        ur_seqn=pfcp.URSEQN(7),
        usage_report_trigger=pfcp.UsageReportTrigger(
            pfcp.UsageReportTriggerFlags.VOLTH | pfcp.UsageReportTriggerFlags.TERMR
        ),
        start_time=pfcp.StartTime(start),
        end_time=pfcp.EndTime(start + 90),
        volume_measurement=pfcp.VolumeMeasurement(3000, 1000, 2000, 30, 10, 20),
        duration_measurement=pfcp.DurationMeasurement(90),
    )
    req = pfcp.SessionReportRequest(
        seid=0x42, report_type=pfcp.ReportType(pfcp.ReportTypeFlags.USAR), usage_report=(report,)
    )
    (facts,) = usage_facts(pfcp.decode(pfcp.encode(req)).usage_report)  # type: ignore[attr-defined]
    assert facts.urr_id == 1 and facts.ur_seqn == 7 and facts.triggers == ("VOLTH", "TERMR")
    assert facts.start_time == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert facts.end_time == datetime(2024, 5, 1, 12, 1, 30, tzinfo=UTC)
    assert (facts.volume_total, facts.volume_ul, facts.volume_dl) == (3000, 1000, 2000)
    assert (facts.packets_ul, facts.packets_dl, facts.duration_s) == (10, 20, 90)
    bare = pfcp.UsageReportSDR(
        urr_id=pfcp.URRID(2),
        ur_seqn=pfcp.URSEQN(0),
        usage_report_trigger=pfcp.UsageReportTrigger(pfcp.UsageReportTriggerFlags(0)),
    )
    (empty,) = usage_facts([bare])
    assert empty.triggers == () and empty.start_time is None and empty.volume_total is None


def test_created_fteids_cause_and_rejection_text() -> None:
    resp = pfcp.SessionEstablishmentResponse(
        node_id=NODE,
        cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
        up_f_seid=pfcp.FSEID(seid=0x99, ipv4=IPv4Address(N3)),
        created_pdr=(
            pfcp.CreatedPDR(pdr_id=pfcp.PDRID(1), local_f_teid=pfcp.FTEID(teid=0x5000, ipv4=IPv4Address(N3))),
            pfcp.CreatedPDR(
                pdr_id=pfcp.PDRID(3), local_f_teid=pfcp.FTEID(teid=0x5000, ipv6=IPv6Address("2001:db8::1"))
            ),
            pfcp.CreatedPDR(pdr_id=pfcp.PDRID(2)),
        ),
    )
    assert created_fteids(resp) == {1: (0x5000, N3), 3: (0x5000, "2001:db8::1")}
    assert cause_of(resp) == 1
    rejected = pfcp.SessionEstablishmentResponse(
        node_id=NODE,
        cause=pfcp.Cause(pfcp.CauseValue.RULE_CREATION_MODIFICATION_FAILURE),
        failed_rule_id=pfcp.FailedRuleID(pfcp.RuleIDType.FAR, 2),
    )
    assert cause_of(rejected) == 73
    assert rejection_text(rejected) == "Rule creation modification failure (73), Failed Rule ID FAR 2"
    missing = pfcp.SessionModificationResponse(
        cause=pfcp.Cause(pfcp.CauseValue.CONDITIONAL_IE_MISSING), offending_ie=pfcp.OffendingIE(pfcp.IEType.FAR_ID)
    )
    assert rejection_text(missing) == "Conditional ie missing (67), Offending IE FAR_ID (108)"
    vendor = pfcp.SessionModificationResponse(cause=missing.cause, offending_ie=pfcp.OffendingIE(0x8001))
    assert rejection_text(vendor) == "Conditional ie missing (67), Offending IE VENDOR_SPECIFIC (32769)"


@pytest.mark.interop
@pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark binary not found on PATH (install the tshark package)"
)
def test_tshark_reads_our_session_messages(tmp_path: Path) -> None:
    old = build_rules(context(n3_fteid=None))
    new = build_rules(context(n3_fteid=None, edge_rules=(EDGE,), gnb_teid=0x300))
    mod = modification_request(up_seid=0x99, old=old, new=new, peer=UP_PEER)
    assert mod is not None
    messages: list[pfcp.Message] = [establish(new, UP_PEER), mod, deletion_request(up_seid=0x99)]
    pcap = tmp_path / "session.pcap"
    pcap.write_bytes(pcap_bytes([pfcp.encode(m) for m in messages]))
    tshark = shutil.which("tshark")
    assert tshark is not None
    fields = ["pfcp.ie_type", "pfcp.ie_len", "_ws.expert.severity", "_ws.malformed"]
    proc = subprocess.run(
        [tshark, "-n", "-r", str(pcap), "-T", "fields", "-E", "occurrence=a", *(a for f in fields for a in ("-e", f))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"TZ": "UTC", "LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(messages)
    for line, msg in zip(lines, messages, strict=True):
        ie_types, ie_lens, severity, malformed = [*line.split("\t"), "", ""][:4]
        assert severity == "" and malformed == "", line
        ours = all_ies(msg)
        assert [int(t) for t in ie_types.split(",") if t] == [t for t, _ in ours]
        assert [int(n) for n in ie_lens.split(",") if n] == [len(p) for _, p in ours]
    establishment = dict(zip(lines[0].split("\t")[0].split(","), lines[0].split("\t")[1].split(","), strict=True))
    assert establishment[str(int(pfcp.IEType.APPLY_ACTION))] == "2"
    assert establishment[str(int(pfcp.IEType.REPORTING_TRIGGERS))] == "3"
    verbose = subprocess.run(
        [tshark, "-n", "-r", str(pcap), "-V"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "3GPP Interface Type: N3 3GPP Access (11)" in verbose
    assert "3GPP Interface Type: N6 (17)" in verbose
