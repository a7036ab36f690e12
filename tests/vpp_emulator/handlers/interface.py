"""interface.api (and the ip.api interface toggles): dump, table binding, addresses, flags, unnumbered."""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

from tests.vpp_emulator.model import (
    ADDRESS_FOUND_FOR_INTERFACE,
    ADDRESS_NOT_FOUND_FOR_INTERFACE,
    ADMIN_UP,
    INVALID_ARGUMENT,
    ApiError,
    Handler,
    Model,
    Reply,
)
from tests.vpp_emulator.snapshot import NO_INDEX, Interface

DUPLICATE_IF_ADDRESS = -127
INVALID_SW_IF_INDEX_2 = -10

# if_type: gtpu tunnels are point-to-point (gtpu_hw_class), the rest hardware
_IF_TYPE = {"gtpu": 2}
_DEV_TYPE = {"local": "local", "ethernet": "dpdk", "gtpu": "gtpu", "memif": "memif"}


def _details(model: Model, iface: Interface) -> dict[str, Any]:
    return {
        "sw_if_index": iface.sw_if_index,
        "sup_sw_if_index": iface.sw_if_index,
        "flags": model.flags(iface),
        "type": _IF_TYPE.get(iface.kind, 0),
        "link_mtu": 9000 if iface.kind != "local" else 0,
        "mtu": [9000, 0, 0, 0] if iface.kind != "local" else [0, 0, 0, 0],
        "interface_name": iface.name,
        "interface_dev_type": _DEV_TYPE[iface.kind],
    }


def sw_interface_dump(model: Model, req: dict[str, Any]) -> Reply:
    """All interfaces, one (sw_if_index), or those whose name contains name_filter (any case)."""
    index = int(req.get("sw_if_index", NO_INDEX))
    name_filter = str(req.get("name_filter") or "").lower() if req.get("name_filter_valid") else ""
    found = []
    for iface in sorted(model.interfaces.values(), key=lambda i: i.sw_if_index):
        if index != NO_INDEX and iface.sw_if_index != index:
            continue
        if name_filter and name_filter not in iface.name.lower():
            continue
        found.append(_details(model, iface))
    return found


def sw_interface_set_table(model: Model, req: dict[str, Any]) -> Reply:
    """ip_table_bind: the table must exist (-3); an interface with addresses of that family cannot
    change table (-114) until they are removed."""
    iface = model.interface(int(req["sw_if_index"]))
    is_ip6 = bool(req.get("is_ipv6"))
    table_id = int(req.get("vrf_id", 0))
    model.require_table(is_ip6, table_id)
    current = iface.ip6_table if is_ip6 else iface.ip4_table
    has_address = any(a.version == (6 if is_ip6 else 4) for a in iface.addresses)
    if has_address and current != table_id:
        raise ApiError(ADDRESS_FOUND_FOR_INTERFACE, f"{iface.name} has ip{6 if is_ip6 else 4} addresses")
    model.update_interface(iface, **{"ip6_table" if is_ip6 else "ip4_table": table_id})
    return {}


def sw_interface_add_del_address(model: Model, req: dict[str, Any]) -> Reply:
    """Add/delete one address, or all (del_all). Re-adding the same address is a no-op; the same
    address on another interface in the same table is -127; deleting an absent one is -60."""
    iface = model.interface(int(req["sw_if_index"]))
    if req.get("del_all"):
        model.update_interface(iface, addresses=())
        return {}
    address = req.get("prefix")
    if not isinstance(address, IPv4Interface | IPv6Interface):
        raise ApiError(INVALID_ARGUMENT, f"not an address with prefix: {address!r}")
    if req.get("is_add", False):
        if address in iface.addresses:
            return {}
        table = iface.ip6_table if address.version == 6 else iface.ip4_table
        for other in model.interfaces.values():
            other_table = other.ip6_table if address.version == 6 else other.ip4_table
            if other.sw_if_index != iface.sw_if_index and other_table == table:
                if any(a.ip == address.ip for a in other.addresses):
                    raise ApiError(DUPLICATE_IF_ADDRESS, f"{address.ip} is on {other.name}")
        model.update_interface(iface, addresses=(*iface.addresses, address))
        return {}
    if address not in iface.addresses:
        raise ApiError(ADDRESS_NOT_FOUND_FOR_INTERFACE, f"{address} not on {iface.name}")
    model.update_interface(iface, addresses=tuple(a for a in iface.addresses if a != address))
    return {}


def sw_interface_set_flags(model: Model, req: dict[str, Any]) -> Reply:
    iface = model.interface(int(req["sw_if_index"]))
    admin_up = bool(int(req.get("flags", 0)) & ADMIN_UP)
    if admin_up != iface.admin_up:
        iface = model.update_interface(iface, admin_up=admin_up)
        model.pending_events.append((iface.sw_if_index, model.flags(iface), False))
    return {}


def sw_interface_ip4_enable_disable(model: Model, req: dict[str, Any]) -> Reply:
    iface = model.interface(int(req["sw_if_index"]))
    model.update_interface(iface, ip4_enabled=bool(req.get("enable")))
    return {}


def sw_interface_ip6_enable_disable(model: Model, req: dict[str, Any]) -> Reply:
    iface = model.interface(int(req["sw_if_index"]))
    model.update_interface(iface, ip6_enabled=bool(req.get("enable")))
    return {}


def sw_interface_set_unnumbered(model: Model, req: dict[str, Any]) -> Reply:
    """sw_if_index is the donor (-2 when unknown); unnumbered_sw_if_index borrows its address (-10)."""
    donor = model.interface(int(req["sw_if_index"]))
    target = model.interface(int(req.get("unnumbered_sw_if_index", NO_INDEX)), INVALID_SW_IF_INDEX_2)
    if req.get("is_add"):
        model.update_interface(target, unnumbered=donor.sw_if_index)
    elif target.unnumbered is not None:
        model.update_interface(target, unnumbered=None)
    return {}


HANDLERS: dict[str, Handler] = {
    "sw_interface_dump": sw_interface_dump,
    "sw_interface_set_table": sw_interface_set_table,
    "sw_interface_add_del_address": sw_interface_add_del_address,
    "sw_interface_set_flags": sw_interface_set_flags,
    "sw_interface_ip4_enable_disable": sw_interface_ip4_enable_disable,
    "sw_interface_ip6_enable_disable": sw_interface_ip6_enable_disable,
    "sw_interface_set_unnumbered": sw_interface_set_unnumbered,
}
