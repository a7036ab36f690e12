"""acl.api and abf.api through vpp_papi: SDF filters on tunnel interfaces and per-SDF forwarding."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from tests.unit.vpp_emulator.conftest import N6, NO_INDEX, route_path, tunnel_args
from tests.vpp_emulator import VppEmulator
from tests.vpp_emulator.snapshot import AclInterface, AclRule

PERMIT_UDP = {
    "is_permit": 1,
    "src_prefix": "10.60.0.1/32",
    "dst_prefix": "8.8.8.0/24",
    "proto": 17,
    "srcport_or_icmptype_first": 0,
    "srcport_or_icmptype_last": 65535,
    "dstport_or_icmpcode_first": 53,
    "dstport_or_icmpcode_last": 53,
}


def test_add_replace_dump_and_delete(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    reply = api.acl_add_replace(acl_index=NO_INDEX, tag="sdf-1", count=1, r=[PERMIT_UDP])
    assert reply.retval == 0
    index = reply.acl_index
    acl = vpp_emulator.state.acls[index]
    assert acl.tag == "sdf-1"
    assert acl.rules == (AclRule(1, IPv4Network("10.60.0.1/32"), IPv4Network("8.8.8.0/24"), 17, 0, 65535, 53, 53),)
    deny = {**PERMIT_UDP, "is_permit": 0}
    assert api.acl_add_replace(acl_index=index, tag="sdf-1b", count=2, r=[PERMIT_UDP, deny]).retval == 0
    assert len(vpp_emulator.state.acls[index].rules) == 2
    assert api.acl_add_replace(acl_index=index + 9, tag="x", count=0, r=[]).retval == -6
    (details,) = api.acl_dump(acl_index=index)
    assert (details.tag, details.count, details.r[1].is_permit) == ("sdf-1b", 2, 0)
    assert api.acl_del(acl_index=index).retval == 0
    assert api.acl_del(acl_index=index).retval == -6


def test_interface_lists_and_delete_refused_while_applied(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    tunnel = api.gtpu_add_del_tunnel_v2(**tunnel_args()).sw_if_index
    ul = api.acl_add_replace(acl_index=NO_INDEX, tag="ul", count=1, r=[PERMIT_UDP]).acl_index
    dl = api.acl_add_replace(acl_index=NO_INDEX, tag="dl", count=1, r=[PERMIT_UDP]).acl_index
    assert api.acl_interface_set_acl_list(sw_if_index=tunnel, count=2, n_input=1, acls=[ul, dl]).retval == 0
    assert vpp_emulator.state.acl_interfaces == {tunnel: AclInterface((ul,), (dl,))}
    assert api.acl_del(acl_index=ul).retval == -142
    assert api.acl_del(acl_index=dl).retval == -143
    assert api.acl_interface_set_acl_list(sw_if_index=tunnel, count=1, n_input=0, acls=[55]).retval == -6
    assert api.acl_interface_set_acl_list(sw_if_index=99, count=0, n_input=0, acls=[]).retval == -2
    assert vpp_emulator.state.acl_interfaces == {tunnel: AclInterface((ul,), (dl,))}
    assert api.acl_interface_set_acl_list(sw_if_index=tunnel, count=0, n_input=0, acls=[]).retval == 0
    assert vpp_emulator.state.acl_interfaces == {}
    assert api.acl_del(acl_index=ul).retval == 0


def test_abf_policy_and_attachment(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    tunnel = api.gtpu_add_del_tunnel_v2(**tunnel_args()).sw_if_index
    acl = api.acl_add_replace(acl_index=NO_INDEX, tag="sdf", count=1, r=[PERMIT_UDP]).acl_index
    policy = {"policy_id": 7, "acl_index": acl, "n_paths": 1, "paths": [route_path(N6)]}
    assert api.abf_policy_add_del(is_add=True, policy=policy).retval == 0
    assert vpp_emulator.state.abf_policies[7].acl_index == acl
    attach = {"policy_id": 7, "sw_if_index": tunnel, "priority": 10, "is_ipv6": False}
    assert api.abf_itf_attach_add_del(is_add=True, attach=attach).retval == 0
    assert api.abf_itf_attach_add_del(is_add=True, attach=attach).retval == -116
    assert api.abf_itf_attach_add_del(is_add=True, attach={**attach, "policy_id": 8}).retval == -7
    assert vpp_emulator.state.abf_attachments == {(7, tunnel, False): 10}
    assert api.acl_del(acl_index=acl).retval == -149  # matched by an attached policy
    assert api.abf_itf_attach_add_del(is_add=False, attach=attach).retval == 0
    assert api.abf_itf_attach_add_del(is_add=False, attach=attach).retval == -6
    assert api.abf_policy_add_del(is_add=False, policy=policy).retval == 0
    assert api.abf_policy_add_del(is_add=False, policy=policy).retval == -7
    assert vpp_emulator.state.abf_policies == {}
    assert api.acl_del(acl_index=acl).retval == 0
