"""Pure call planning of the vpp driver: PFCP session states -> VPP objects -> ordered, undoable calls."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

import pfcp
from tests.unit.user_plane.test_agent import N3, downlink_pdr, far, uplink_pdr
from tests.unit.user_plane.vpp.helpers import (
    CTX,
    GNB,
    SEID,
    action,
    downlink_far,
    established,
    far_dl_without_ohc,
    modified,
    qer,
)
from user_plane.driver import DriverError
from user_plane.vpp.filters import Acl, AclBinding, Policer, PolicerBinding
from user_plane.vpp.forwarding import AbfAttach, AbfPolicy, Route, Tunnel
from user_plane.vpp.objects import NO_INDEX, Ref, Step, diff
from user_plane.vpp.plan import DENY_ALL, NodeContext, encap_overhead, plan_session

A = pfcp.ApplyActionFlags
RT = pfcp.RuleIDType
UE = IPv4Network("198.19.0.1/32")
TUNNEL_KEY = ("gtpu", str(GNB), 0x1001, 0)
ROUTE_KEY = ("route", 100, str(UE))


def calls(steps: list[Step]) -> list[str]:
    return [s.call.msg for s in steps]


def test_a_basic_session_is_one_tunnel_into_the_vrf_and_a_ue_route_via_it() -> None:
    plan = plan_session(established(), CTX)
    assert set(plan.objects) == {TUNNEL_KEY, ROUTE_KEY}
    tunnel = plan.objects[TUNNEL_KEY]
    assert tunnel == Tunnel(N3, GNB, 0x1001, 0x5000, 0, 100, None, True, False, pfcp.FailedRuleID(RT.PDR, 1))
    assert plan.objects[ROUTE_KEY] == Route(100, UE, TUNNEL_KEY, pfcp.FailedRuleID(RT.PDR, 2))
    usage = plan.tunnels[TUNNEL_KEY]
    assert (usage.up_seid, usage.ul_urrs, usage.dl_urrs, usage.overhead) == (SEID, (1,), (1,), 36)


def test_creation_calls_are_ordered_and_each_has_its_undo() -> None:
    steps = diff({}, plan_session(established(), CTX).objects)
    assert calls(steps) == [
        "gtpu_add_del_tunnel_v2",
        "sw_interface_set_table",
        "sw_interface_ip4_enable_disable",
        "ip_route_add_del",
    ]
    add = steps[0].call
    assert add.produces == TUNNEL_KEY
    assert dict(add.args) == {
        "is_add": True,
        "src_address": N3,
        "dst_address": GNB,
        "mcast_sw_if_index": NO_INDEX,
        "encap_vrf_id": 0,
        "decap_next_index": 2,  # IP4, explicitly: 0 would be DROP in the v2 API
        "teid": 0x1001,
        "tteid": 0x5000,
        "pdu_extension": False,
        "qfi": 0,
    }
    assert [u.msg for u in steps[0].undo] == ["gtpu_add_del_tunnel_v2"] and steps[0].undo[0].args["is_add"] is False
    assert steps[1].call.args == {"sw_if_index": Ref(TUNNEL_KEY), "is_ipv6": False, "vrf_id": 100}
    route = steps[3].call.args["route"]
    assert route["table_id"] == 100 and route["prefix"] == UE and route["n_paths"] == 1
    path = route["paths"][0]
    assert path["sw_if_index"] == Ref(TUNNEL_KEY) and path["type"] == 0 and len(path["label_stack"]) == 16
    assert steps[3].undo[0].args["is_add"] is False
    assert all(s.rule is not None for s in steps)


def test_deletion_is_the_reverse_and_an_unchanged_state_makes_no_call() -> None:
    objects = plan_session(established(), CTX).objects
    assert diff(objects, objects) == []
    steps = diff(objects, {})
    assert calls(steps) == ["ip_route_add_del", "gtpu_add_del_tunnel_v2"]
    assert steps[1].call.releases == TUNNEL_KEY
    # undoing the tunnel deletion re-creates it bound to its VRF
    assert [u.msg for u in steps[1].undo] == [
        "gtpu_add_del_tunnel_v2",
        "sw_interface_set_table",
        "sw_interface_ip4_enable_disable",
    ]


def test_handover_to_another_gnb_makes_a_new_tunnel_before_the_old_one_goes() -> None:
    old = established()
    new = modified(old, update_far=(downlink_far(gnb=IPv4Address("198.18.1.9"), teid=0x6000),))
    before, after = plan_session(old, CTX).objects, plan_session(new, CTX).objects
    new_key = ("gtpu", "198.18.1.9", 0x1001, 0)
    assert set(after) == {new_key, ROUTE_KEY}
    steps = diff(before, after)
    assert calls(steps) == [
        "gtpu_add_del_tunnel_v2",  # the new tunnel...
        "sw_interface_set_table",
        "sw_interface_ip4_enable_disable",
        "ip_route_add_del",  # ...carries the UE route...
        "gtpu_add_del_tunnel_v2",  # ...before the old one is deleted
    ]
    assert steps[0].call.args["dst_address"] == IPv4Address("198.18.1.9") and steps[0].call.args["tteid"] == 0x6000
    assert steps[3].call.args["route"]["paths"][0]["sw_if_index"] == Ref(new_key)
    assert steps[3].undo[0].args["route"]["paths"][0]["sw_if_index"] == Ref(TUNNEL_KEY)  # undo points back
    assert steps[4].call.args["is_add"] is False and steps[4].call.args["dst_address"] == GNB


def test_a_new_teid_at_the_same_gnb_updates_the_tunnel_in_place() -> None:
    old = established()
    new = modified(old, update_far=(downlink_far(teid=0x5001),))
    steps = diff(plan_session(old, CTX).objects, plan_session(new, CTX).objects)
    assert calls(steps) == ["gtpu_tunnel_update_tteid"]
    assert dict(steps[0].call.args) == {"dst_address": GNB, "encap_vrf_id": 0, "teid": 0x1001, "tteid": 0x5001}
    assert steps[0].undo[0].args["tteid"] == 0x5000


def test_a_qfi_change_re_creates_the_tunnel_and_what_refers_to_it() -> None:
    old = established()
    new = modified(old, update_qer=(pfcp.UpdateQER(qer_id=pfcp.QERID(1), qfi=pfcp.QFI(9)),))
    before, after = plan_session(old, CTX).objects, plan_session(new, CTX).objects
    tunnel = after[TUNNEL_KEY]
    assert isinstance(tunnel, Tunnel) and tunnel.qfi == 9
    steps = diff(before, after)
    # same VPP identity (gNB, TEID, VRF): the route goes first, the tunnel is re-made, the route comes back
    assert calls(steps) == [
        "ip_route_add_del",
        "gtpu_add_del_tunnel_v2",
        "gtpu_add_del_tunnel_v2",
        "sw_interface_set_table",
        "sw_interface_ip4_enable_disable",
        "ip_route_add_del",
    ]
    assert [s.call.args.get("is_add") for s in steps[:3]] == [False, False, True]
    assert steps[2].call.args["pdu_extension"] is True and steps[2].call.args["qfi"] == 9
    assert plan_session(new, CTX).tunnels[TUNNEL_KEY].overhead == encap_overhead(GNB, 9) == 44


def test_mbr_becomes_policers_and_a_rate_change_is_policer_update() -> None:
    old = established(create_qer=(qer(ul=10_000, dl=50_000),))
    objects = plan_session(old, CTX).objects
    ul, dl = (("policer", f"edgecups:{SEID:x}:1:{d}") for d in ("ul", "dl"))
    assert objects[ul] == Policer(f"edgecups:{SEID:x}:1:ul", 10_000, 62_500, pfcp.FailedRuleID(RT.QER, 1))
    dl_policer = objects[dl]
    assert isinstance(dl_policer, Policer) and (dl_policer.cir, dl_policer.cb) == (50_000, 50_000 * 1000 // 8 // 20)
    assert objects[("policer-on", TUNNEL_KEY, "input")] == PolicerBinding(TUNNEL_KEY, True, ul, objects[ul].rule)
    assert objects[("policer-on", TUNNEL_KEY, "output")] == PolicerBinding(TUNNEL_KEY, False, dl, objects[dl].rule)
    steps = diff({}, objects)
    assert calls(steps)[:2] == ["policer_add", "policer_add"]  # before the tunnel they are bound to
    assert calls(steps).index("policer_input_v2") > calls(steps).index("gtpu_add_del_tunnel_v2")
    new = modified(old, update_qer=(pfcp.UpdateQER(qer_id=pfcp.QERID(1), mbr=pfcp.MBR(ul=20_000, dl=50_000)),))
    steps = diff(objects, plan_session(new, CTX).objects)
    assert calls(steps) == ["policer_update"]
    assert steps[0].call.args["policer_index"] == Ref(ul) and steps[0].call.args["infos"]["cir"] == 20_000
    assert steps[0].undo[0].args["infos"]["cir"] == 10_000


def test_closed_gates_drop_downlink_with_a_drop_route_and_uplink_with_the_deny_all_acl() -> None:
    closed = pfcp.GateStatus(ul=pfcp.Gate.CLOSED, dl=pfcp.Gate.CLOSED)
    plan = plan_session(established(create_qer=(pfcp.CreateQER(qer_id=pfcp.QERID(1), gate_status=closed),)), CTX)
    route = plan.objects[ROUTE_KEY]
    assert isinstance(route, Route) and route.via is None
    path = diff({}, {ROUTE_KEY: route})[0].call.args["route"]["paths"][0]
    assert path["type"] == 2 and path["sw_if_index"] == NO_INDEX  # FIB_API_PATH_TYPE_DROP
    assert plan.objects[("acl-on", TUNNEL_KEY)] == AclBinding(TUNNEL_KEY, (DENY_ALL,), (), route_rule(1))


def route_rule(pdr_id: int) -> pfcp.FailedRuleID:
    return pfcp.FailedRuleID(RT.PDR, pdr_id)


@pytest.mark.parametrize("flags", [A.DROP, A.BUFF | A.NOCP])
def test_a_dropping_or_buffering_downlink_far_is_a_drop_route(flags: pfcp.ApplyActionFlags) -> None:
    state = modified(established(), update_far=(action(2, flags),))
    route = plan_session(state, CTX).objects[ROUTE_KEY]
    assert isinstance(route, Route) and route.via is None
    assert TUNNEL_KEY in plan_session(state, CTX).objects  # the uplink keeps its tunnel


def test_without_a_gnb_f_teid_there_is_no_tunnel_and_the_ue_route_drops() -> None:
    state = established(create_far=(far(1, core=True), far_dl_without_ohc()))
    plan = plan_session(state, CTX)
    assert list(plan.objects) == [ROUTE_KEY] and plan.tunnels == {}
    route = plan.objects[ROUTE_KEY]
    assert isinstance(route, Route) and route.via is None
    # the gNB F-TEID arrives: tunnel, and the route now points to it
    ready = modified(state, update_far=(downlink_far(forward=True),))
    steps = diff(plan.objects, plan_session(ready, CTX).objects)
    assert calls(steps) == [
        "gtpu_add_del_tunnel_v2",
        "sw_interface_set_table",
        "sw_interface_ip4_enable_disable",
        "ip_route_add_del",
    ]


def test_an_exhausted_quota_drops_both_directions() -> None:
    plan = plan_session(established(), CTX, blocked={1})
    route = plan.objects[ROUTE_KEY]
    assert isinstance(route, Route) and route.via is None
    binding = plan.objects[("acl-on", TUNNEL_KEY)]
    assert isinstance(binding, AclBinding) and binding.inputs == (DENY_ALL,)
    assert plan.tunnels[TUNNEL_KEY].ul_urrs == plan.tunnels[TUNNEL_KEY].dl_urrs == ()  # nothing is counted


def test_sdf_filters_become_an_acl_in_precedence_order() -> None:
    pdrs = (
        uplink_pdr(1, precedence=200),
        downlink_pdr(2),
        uplink_pdr(3, precedence=100, sdf="permit out 17 from 198.18.2.2 53,1000-1001 to assigned"),
    )
    state = modified(established(pdrs=pdrs), update_far=())
    plan = plan_session(state, CTX)
    acl_key = ("acl", f"edgecups:{SEID:x}:ul:1001")
    acl = plan.objects[acl_key]
    rules = [(r.permit, str(r.src), str(r.dst), r.proto, r.sport, r.dport) for r in acl.rules]  # type: ignore[attr-defined]
    assert rules == [
        # PDR 3 (precedence 100), uplink: from the UE to the remote's ports
        (True, "198.19.0.1/32", "198.18.2.2/32", 17, (0, 65535), (53, 53)),
        (True, "198.19.0.1/32", "198.18.2.2/32", 17, (0, 65535), (1000, 1001)),
        # PDR 1 (precedence 200) has no filter: it matches the rest
        (True, "0.0.0.0/0", "0.0.0.0/0", 0, (0, 65535), (0, 65535)),
    ]
    assert plan.objects[("acl-on", TUNNEL_KEY)] == AclBinding(TUNNEL_KEY, (acl_key,), (), route_rule(3))
    steps = diff({}, plan.objects)
    add = next(s for s in steps if s.call.msg == "acl_add_replace")
    assert add.call.args["acl_index"] == NO_INDEX and add.call.args["count"] == 3 and add.call.produces == acl_key
    assert calls(steps).index("acl_interface_set_acl_list") > calls(steps).index("gtpu_add_del_tunnel_v2")


def test_what_vpp_cannot_express_is_refused_with_the_rule() -> None:
    two_gnbs = established(
        pdrs=(uplink_pdr(1), downlink_pdr(2), downlink_pdr(3, far_id=3, precedence=100)),
        create_far=(far(1, core=True), far(2, core=False), far(3, core=False)),
    )
    two_gnbs = modified(two_gnbs, update_far=(downlink_far(3, teid=0x7000),))
    with pytest.raises(DriverError, match="second gNB F-TEID") as caught:
        plan_session(two_gnbs, CTX)
    assert caught.value.failed_rule == pfcp.FailedRuleID(RT.FAR, 2)
    tos = established(pdrs=(uplink_pdr(1), downlink_pdr(2)))
    bad_pdr = pfcp.UpdatePDR(
        pdr_id=pfcp.PDRID(1),
        pdi=pfcp.PDI(
            source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
            local_f_teid=pfcp.FTEID(0x1001, ipv4=N3),
            network_instance=pfcp.NetworkInstance("internet"),
            sdf_filter=(pfcp.SDFFilter(tos_traffic_class=0x2000),),
        ),
    )
    with pytest.raises(DriverError, match="ToS") as caught:
        plan_session(modified(tos, update_pdr=(bad_pdr,)), CTX)
    assert caught.value.failed_rule == pfcp.FailedRuleID(RT.PDR, 1)
    with pytest.raises(DriverError, match="no VRF") as caught:
        plan_session(established(), type(CTX)(N3, None, 0, {"ims": 200, "other": 300}))
    assert caught.value.failed_rule is not None


def test_uplink_pdrs_towards_another_instance_get_abf_in_precedence_order() -> None:
    ims = pfcp.CreateFAR(
        far_id=pfcp.FARID(3),
        apply_action=pfcp.ApplyAction(A.FORW),
        forwarding_parameters=pfcp.ForwardingParameters(
            destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.CORE),
            network_instance=pfcp.NetworkInstance("ims"),
        ),
    )
    to_ims = uplink_pdr(3, precedence=100, sdf="permit out 17 from 198.18.3.3 5060 to assigned")
    to_ims = replace(to_ims, far_id=pfcp.FARID(3))
    internet_first = uplink_pdr(4, precedence=50, sdf="permit out 17 from 198.18.3.0/24 to assigned")
    state = established(
        pdrs=(uplink_pdr(1, precedence=200), downlink_pdr(2), to_ims, internet_first),
        create_far=(far(1, core=True), far(2, core=False), ims),
    )
    ctx = NodeContext(N3, None, 0, {"internet": 100, "ims": 200})
    plan = plan_session(state, ctx)
    tunnel = plan.objects[TUNNEL_KEY]
    assert isinstance(tunnel, Tunnel) and tunnel.table == 100  # PDR 1, the catch-all, goes to the internet
    name = f"edgecups:{SEID:x}:abf:1001:3"
    acl = plan.objects[("acl", name)]
    assert isinstance(acl, Acl)
    assert [(r.permit, str(r.dst), r.proto, r.sport) for r in acl.rules] == [
        (False, "198.18.3.0/24", 17, (0, 65535)),  # PDR 4 comes first and stays in the internet
        (True, "198.18.3.3/32", 17, (0, 65535)),
    ]
    assert plan.objects[("abf-policy", name + ":4")] == AbfPolicy(name + ":4", ("acl", name), 200, False, route_rule(3))
    attach = plan.objects[("abf-on", TUNNEL_KEY, ("abf-policy", name + ":4"))]
    assert attach == AbfAttach(TUNNEL_KEY, ("abf-policy", name + ":4"), 1, False, route_rule(3))
    steps = diff({}, plan.objects)
    order = calls(steps)
    assert order.index("abf_policy_add_del") > order.index("acl_add_replace")
    assert order.index("abf_itf_attach_add_del") > order.index("gtpu_add_del_tunnel_v2")
    policy = next(s for s in steps if s.call.msg == "abf_policy_add_del").call
    assert policy.allocates == ("abf-policy", name + ":4")  # the policy ID is the client's choice
    path = policy.args["policy"]["paths"][0]
    assert (path["sw_if_index"], path["table_id"]) == (NO_INDEX, 200)


def test_an_ipv6_ue_gets_its_prefix_routed_and_the_tunnel_ipv6_enabled() -> None:
    from ipaddress import IPv6Address, IPv6Network

    v6 = pfcp.UEIPAddress(ipv6=IPv6Address("2001:db8:1:2::"))
    v6_dl = pfcp.UEIPAddress(ipv6=IPv6Address("2001:db8:1:2::"), is_destination=True)
    up, down = uplink_pdr(1), downlink_pdr(2)
    pdrs = (
        replace(up, pdi=replace(up.pdi, ue_ip_address=(v6,))),
        replace(down, pdi=replace(down.pdi, ue_ip_address=(v6_dl,))),
    )
    plan = plan_session(established(pdrs=pdrs), CTX)
    tunnel = plan.objects[TUNNEL_KEY]
    assert isinstance(tunnel, Tunnel) and (tunnel.ip4, tunnel.ip6) == (False, True)
    route = plan.objects[("route", 100, "2001:db8:1:2::/64")]
    assert isinstance(route, Route) and route.prefix == IPv6Network("2001:db8:1:2::/64") and route.via == TUNNEL_KEY
    steps = diff({}, plan.objects)
    assert steps[0].call.args["decap_next_index"] == 3  # IP6
    assert [(s.call.msg, s.call.args.get("is_ipv6")) for s in steps[1:3]] == [
        ("sw_interface_set_table", True),
        ("sw_interface_ip6_enable_disable", None),
    ]
    path = steps[3].call.args["route"]["paths"][0]
    assert path["proto"] == 1 and path["nh"] == {"address": {"ip6": IPv6Address(0)}}
