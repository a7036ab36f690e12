"""Decoding requests without touching vpp_papi's shared unpack state.

vpp_papi's ``VPPType.unpack`` keeps a flag on the (process-wide, shared) type object while it
converts a top-level address or prefix, so two threads unpacking the same type at once can each see
the other's flag: one gets a raw struct instead of an ``IPv4Address``. The emulator runs in the
test's process, next to the client under test, with a thread per connection, so it decodes with
this stateless walk over the same type objects: the wire layout stays vpp_papi's (base types,
strings, enums and fixed u8 arrays are unpacked by vpp_papi's own stateless packers), and the values
are converted as vpp_papi converts them (``vpp_format.conversion_unpacker_table``). Packing is
stateless in vpp_papi and stays there.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_interface, ip_network
from typing import Any

from vpp_papi.macaddress import MACAddress  # type: ignore[import-untyped]
from vpp_papi.vpp_serializer import (  # type: ignore[import-untyped]
    FixedList,
    String,
    VLAList,
    VLAList_legacy,
    VPPType,
    VPPTypeAlias,
    VPPUnionType,
)

U32 = struct.Struct(">I")


def _ip(raw: Any) -> IPv4Address | IPv6Address:
    return IPv4Address(bytes(raw)) if len(raw) == 4 else IPv6Address(bytes(raw))


def _address(raw: dict[str, Any]) -> IPv4Address | IPv6Address | None:
    af = int(raw["af"])
    return _ip(raw["un"]["ip4"]) if af == 0 else _ip(raw["un"]["ip6"]) if af == 1 else None


def _prefix(raw: dict[str, Any]) -> Any:
    address = _address(raw["address"])
    return None if address is None else ip_network((address, raw["len"]), strict=False)


def _address_with_prefix(raw: dict[str, Any]) -> Any:
    address = _address(raw["address"])
    return None if address is None else ip_interface((address, raw["len"]))


#: type name -> conversion of its raw decoded value, as vpp_format.conversion_unpacker_table.
#: As in vpp_papi, a converted type's members are left raw for it.
CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "vl_api_ip4_address_t": lambda raw: IPv4Address(bytes(raw)),
    "vl_api_ip6_address_t": lambda raw: IPv6Address(bytes(raw)),
    "vl_api_address_t": _address,
    "vl_api_prefix_t": _prefix,
    "vl_api_ip4_prefix_t": lambda raw: IPv4Network((_ip(raw["address"]), raw["len"])),
    "vl_api_ip6_prefix_t": lambda raw: IPv6Network((_ip(raw["address"]), raw["len"])),
    "vl_api_address_with_prefix_t": _address_with_prefix,
    "vl_api_ip4_address_with_prefix_t": lambda raw: ip_interface((_ip(raw["address"]), raw["len"])),
    "vl_api_ip6_address_with_prefix_t": lambda raw: ip_interface((_ip(raw["address"]), raw["len"])),
    "vl_api_mac_address_t": lambda raw: MACAddress(bytes(raw)),
    "vl_api_timestamp_t": datetime.fromtimestamp,
    "vl_api_timedelta_t": lambda raw: timedelta(seconds=raw),
}


def decode(
    packer: Any, data: bytes, offset: int = 0, siblings: list[Any] | None = None, convert: bool = True
) -> tuple[Any, int]:
    """(value, bytes consumed) of ``packer`` at ``offset``; structs become dicts."""
    name = getattr(packer, "name", None)
    conversion = CONVERSIONS.get(name) if convert and isinstance(name, str) else None
    inner = convert and conversion is None
    if isinstance(packer, VPPType):  # messages and structs
        values: list[Any] = []
        total = 0
        for sub in packer.packers:
            value, size = decode(sub, data, offset + total, values, inner)
            values.append(value)
            total += size
        result: Any = dict(zip(packer.fields, values, strict=True))
    elif isinstance(packer, VPPTypeAlias):
        result, total = decode(packer.packer, data, offset, siblings, inner)
    elif isinstance(packer, VPPUnionType):
        result = {arm: decode(sub, data, offset, None, inner)[0] for arm, sub in packer.packers.items()}
        total = packer.size
    elif isinstance(packer, FixedList):
        result, total = _repeat(packer.packer, packer.num, data, offset, inner)
    elif isinstance(packer, VLAList):
        count = int(siblings[packer.index]) if siblings is not None else 0
        if packer.field_type == "u8" and packer.packer.size == 1:
            result, total = bytes(data[offset : offset + count]), count
        else:
            result, total = _repeat(packer.packer, count, data, offset, inner)
    elif isinstance(packer, VLAList_legacy):
        result, total = _repeat(packer.packer, (len(data) - offset) // packer.packer.size, data, offset, inner)
    elif isinstance(packer, String) and not packer.fixed:
        # vpp_papi reports 0 bytes for an empty variable string; on the wire it is a 4-byte length.
        (length,) = U32.unpack_from(data, offset)
        result = bytes(data[offset + 4 : offset + 4 + length]).decode("ascii", errors="replace")
        total = 4 + length
    else:  # base types, fixed strings and u8 arrays, enums: vpp_papi's stateless unpackers
        result, total = packer.unpack(data, offset)
    return (result if conversion is None else conversion(result)), total


def _repeat(packer: Any, count: int, data: bytes, offset: int, convert: bool) -> tuple[list[Any], int]:
    items: list[Any] = []
    total = 0
    for _ in range(count):
        value, size = decode(packer, data, offset + total, None, convert)
        items.append(value)
        total += size
    return items, total
