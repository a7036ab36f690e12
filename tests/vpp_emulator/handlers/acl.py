"""acl.api and abf.api (plugins): ACLs, their interface lists, ACL-based forwarding policies.

As src/plugins/acl/acl.c: acl_index ~0 creates, an unknown index is -6; an ACL applied on an
interface cannot be deleted (-142 inbound, -143 outbound) nor one an attached ABF policy matches on
(-149, its lookup context). As src/plugins/abf: deleting a missing policy is -7, attaching twice -116,
detaching what is not attached -6.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from tests.vpp_emulator.model import (
    ACL_IN_USE_INBOUND,
    ACL_IN_USE_OUTBOUND,
    ENTRY_ALREADY_EXISTS,
    INVALID_ARGUMENT,
    INVALID_VALUE,
    NO_PATHS_IN_ROUTE,
    NO_SUCH_ENTRY,
    ApiError,
    Handler,
    Model,
    Reply,
)
from tests.vpp_emulator.snapshot import NO_INDEX, AbfPolicy, Acl, AclInterface, AclRule, IpNetwork

ACL_IN_USE_BY_LOOKUP_CONTEXT = -149


def _prefix(value: Any) -> IpNetwork:
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    return ip_network(value or "0.0.0.0/0", strict=False)


def _rule(value: dict[str, Any]) -> AclRule:
    return AclRule(
        is_permit=int(value.get("is_permit", 0)),
        src_prefix=_prefix(value.get("src_prefix")),
        dst_prefix=_prefix(value.get("dst_prefix")),
        proto=int(value.get("proto", 0)),
        srcport_or_icmptype_first=int(value.get("srcport_or_icmptype_first", 0)),
        srcport_or_icmptype_last=int(value.get("srcport_or_icmptype_last", 0)),
        dstport_or_icmpcode_first=int(value.get("dstport_or_icmpcode_first", 0)),
        dstport_or_icmpcode_last=int(value.get("dstport_or_icmpcode_last", 0)),
        tcp_flags_mask=int(value.get("tcp_flags_mask", 0)),
        tcp_flags_value=int(value.get("tcp_flags_value", 0)),
    )


def _rule_fields(rule: AclRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in AclRule.__dataclass_fields__}


def acl_add_replace(model: Model, req: dict[str, Any]) -> Reply:
    index = int(req.get("acl_index", NO_INDEX))
    if index != NO_INDEX and index not in model.acls:
        raise ApiError(NO_SUCH_ENTRY, f"no ACL {index} to replace")
    rules = tuple(_rule(r) for r in (req.get("r") or []))
    if any(r.is_permit > 2 for r in rules):
        raise ApiError(INVALID_VALUE, "acl action out of range")
    if index == NO_INDEX:
        index = model.acl_indexes.get()
    model.acls[index] = Acl(index, str(req.get("tag") or ""), rules)
    return {"acl_index": index}


def _in_use(model: Model, index: int) -> None:
    if any(index in lists.input for lists in model.acl_interfaces.values()):
        raise ApiError(ACL_IN_USE_INBOUND, f"ACL {index} is applied inbound")
    if any(index in lists.output for lists in model.acl_interfaces.values()):
        raise ApiError(ACL_IN_USE_OUTBOUND, f"ACL {index} is applied outbound")
    attached = {policy_id for policy_id, _, _ in model.abf_attachments}
    if any(p.acl_index == index and p.policy_id in attached for p in model.abf_policies.values()):
        raise ApiError(ACL_IN_USE_BY_LOOKUP_CONTEXT, f"ACL {index} is matched by an attached ABF policy")


def acl_del(model: Model, req: dict[str, Any]) -> Reply:
    index = int(req.get("acl_index", NO_INDEX))
    if index not in model.acls:
        raise ApiError(NO_SUCH_ENTRY, f"no ACL {index}")
    _in_use(model, index)
    del model.acls[index]
    model.acl_indexes.put(index)
    return {}


def acl_interface_set_acl_list(model: Model, req: dict[str, Any]) -> Reply:
    """The first n_input ACLs are the input list, the rest the output list; both replace the old."""
    iface = model.interface(int(req.get("sw_if_index", NO_INDEX)))
    acls = [int(a) for a in (req.get("acls") or [])]
    n_input = int(req.get("n_input", 0))
    if n_input > len(acls):
        raise ApiError(INVALID_ARGUMENT, f"n_input {n_input} > count {len(acls)}")
    missing = [a for a in acls if a not in model.acls]
    if missing:
        raise ApiError(NO_SUCH_ENTRY, f"no ACL {missing[0]}")
    lists = AclInterface(tuple(acls[:n_input]), tuple(acls[n_input:]))
    if lists == AclInterface():
        model.acl_interfaces.pop(iface.sw_if_index, None)
    else:
        model.acl_interfaces[iface.sw_if_index] = lists
    return {}


def acl_dump(model: Model, req: dict[str, Any]) -> Reply:
    index = int(req.get("acl_index", NO_INDEX))
    return [
        {"acl_index": i, "tag": acl.tag, "count": len(acl.rules), "r": [_rule_fields(r) for r in acl.rules]}
        for i, acl in sorted(model.acls.items())
        if index in (NO_INDEX, i)
    ]


def abf_policy_add_del(model: Model, req: dict[str, Any]) -> Reply:
    """Add creates the policy or adds paths to it; delete removes the given paths and the policy
    with its last path (an absent policy is -7)."""
    policy = req.get("policy") or {}
    policy_id = int(policy.get("policy_id", 0))
    paths = tuple(model.decode_path(p) for p in (policy.get("paths") or []))
    existing = model.abf_policies.get(policy_id)
    if req.get("is_add"):
        if not paths:
            raise ApiError(NO_PATHS_IN_ROUTE, "ABF policy without paths")
        if existing is None:
            model.abf_policies[policy_id] = AbfPolicy(policy_id, int(policy.get("acl_index", 0)), paths)
        else:
            merged = existing.paths + tuple(p for p in paths if p not in existing.paths)
            model.abf_policies[policy_id] = AbfPolicy(policy_id, existing.acl_index, merged)
        return {}
    if existing is None:
        raise ApiError(INVALID_VALUE, f"no ABF policy {policy_id}")
    left = tuple(p for p in existing.paths if p not in paths) if paths else ()
    if left:
        model.abf_policies[policy_id] = AbfPolicy(policy_id, existing.acl_index, left)
    else:
        del model.abf_policies[policy_id]
    return {}


def abf_itf_attach_add_del(model: Model, req: dict[str, Any]) -> Reply:
    attach = req.get("attach") or {}
    policy_id = int(attach.get("policy_id", 0))
    iface = model.interface(int(attach.get("sw_if_index", NO_INDEX)))
    is_ipv6 = bool(attach.get("is_ipv6"))
    key = (policy_id, iface.sw_if_index, is_ipv6)
    if req.get("is_add"):
        if policy_id not in model.abf_policies:
            raise ApiError(INVALID_VALUE, f"no ABF policy {policy_id}")
        if key in model.abf_attachments:
            raise ApiError(ENTRY_ALREADY_EXISTS, f"policy {policy_id} already on {iface.name}")
        model.abf_attachments[key] = int(attach.get("priority", 0))
        return {}
    if key not in model.abf_attachments:
        raise ApiError(NO_SUCH_ENTRY, f"policy {policy_id} not on {iface.name}")
    del model.abf_attachments[key]
    return {}


HANDLERS: dict[str, Handler] = {
    "acl_add_replace": acl_add_replace,
    "acl_del": acl_del,
    "acl_interface_set_acl_list": acl_interface_set_acl_list,
    "acl_dump": acl_dump,
    "abf_policy_add_del": abf_policy_add_del,
    "abf_itf_attach_add_del": abf_itf_attach_add_del,
}
