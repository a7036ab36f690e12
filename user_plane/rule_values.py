"""Compact copies of the structured IEs a PFCP session's desired state keeps (TS 29.244 §5.2).

Why: a decoded pfcp IE object carries an instance dictionary (~270 bytes), and every
session keeps four of them (the CP F-SEID, the UE IP Address of its uplink and downlink
PDRs, the Outer Header Creation of its downlink FAR): 100k sessions spent ~110 MB on
them. These frozen, slotted copies have the IE's field names, so whatever reads an IE's
attributes reads them alike, and ``to_ie()`` gives the IE back. Peer addresses (gNBs, CP
functions) repeat across sessions: one object each.

The values that recur in every session (rule ID lists, Network Instance names, a Volume
Threshold, a QER or URR of the CP function's policy) are interned here too: one object
for all sessions, bounded caches (cleared when full). Everything shared is immutable.

:mod:`user_plane.rules` converts the IEs of a request into these and re-exports the
compact IE types.
"""

from __future__ import annotations

import sys
from collections.abc import ItemsView, Iterator, KeysView, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pfcp

from .frozen import fast_init

__all__ = ["SHARED_MAX", "FSeid", "OuterHeader", "UeIp", "interned", "outer_header", "shared_address", "shared_ids"]
__all__ += ["RuleTable", "rule_table", "shared_ie", "shared_name", "ue_ips"]

#: Bound on the interned peer addresses (see shared_address).
_ADDRESSES_MAX = 65536
_addresses: dict[Any, Any] = {}


def shared_address(address: Any) -> Any:
    """One object per gNB / CP function address: each session's Outer Header Creation and
    CP F-SEID name one of a few thousand peers (an address object is 64 bytes)."""
    if address is None:
        return None
    shared = _addresses.get(address)
    if shared is None:
        if len(_addresses) >= _ADDRESSES_MAX:
            _addresses.clear()
        shared = _addresses[address] = address
    return shared


@fast_init
@dataclass(frozen=True, slots=True)
class FSeid:
    """An F-SEID (§8.2.37): the SEID and the addresses, without the pfcp IE object (whose
    instance dictionary costs about 270 bytes, and every session keeps its CP F-SEID)."""

    seid: int
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None

    @staticmethod
    def from_ie(ie: pfcp.FSEID) -> FSeid:
        return FSeid(ie.seid, shared_address(ie.ipv4), shared_address(ie.ipv6))

    def to_ie(self) -> pfcp.FSEID:
        return pfcp.FSEID(self.seid, ipv4=self.ipv4, ipv6=self.ipv6)


@fast_init
@dataclass(frozen=True, slots=True)
class UeIp:
    """A UE IP Address IE's fields (§8.2.62) as a PDI matches them, without the pfcp IE
    object (see FSeid: every session keeps two, an uplink and a downlink one)."""

    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    is_destination: bool = False
    choose_v4: bool = False
    choose_v6: bool = False
    ipv6_prefix_delegation_bits: int | None = None
    ipv6_prefix_length: int | None = None

    @staticmethod
    def from_ie(ie: pfcp.UEIPAddress, addresses: dict[Any, Any] | None = None) -> UeIp:
        """``addresses``: the addresses already seen in the same request, so that the uplink
        and downlink PDRs of a UE share its address object."""
        ipv4, ipv6 = ie.ipv4, ie.ipv6
        if addresses is not None:
            if ipv4 is not None:
                ipv4 = addresses.setdefault(ipv4, ipv4)
            if ipv6 is not None:
                ipv6 = addresses.setdefault(ipv6, ipv6)
        return UeIp(
            ipv4,
            ipv6,
            ie.is_destination,
            ie.choose_v4,
            ie.choose_v6,
            ie.ipv6_prefix_delegation_bits,
            ie.ipv6_prefix_length,
        )

    def to_ie(self) -> pfcp.UEIPAddress:
        return pfcp.UEIPAddress(
            ipv4=self.ipv4,
            ipv6=self.ipv6,
            is_destination=self.is_destination,
            choose_v4=self.choose_v4,
            choose_v6=self.choose_v6,
            ipv6_prefix_delegation_bits=self.ipv6_prefix_delegation_bits,
            ipv6_prefix_length=self.ipv6_prefix_length,
        )


@fast_init
@dataclass(frozen=True, slots=True)
class OuterHeader:
    """An Outer Header Creation IE's fields (§8.2.56), without the pfcp IE object (see
    FSeid: every downlink FAR keeps one); the peer address is shared between sessions."""

    description: pfcp.OuterHeaderCreationDescription
    teid: int | None = None
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    port: int | None = None
    c_tag: Any = None
    s_tag: Any = None

    @staticmethod
    def from_ie(ie: pfcp.OuterHeaderCreation) -> OuterHeader:
        return OuterHeader(
            ie.description, ie.teid, shared_address(ie.ipv4), shared_address(ie.ipv6), ie.port, ie.c_tag, ie.s_tag
        )

    def to_ie(self) -> pfcp.OuterHeaderCreation:
        return pfcp.OuterHeaderCreation(
            self.description,
            teid=self.teid,
            ipv4=self.ipv4,
            ipv6=self.ipv6,
            port=self.port,
            c_tag=self.c_tag,
            s_tag=self.s_tag,
        )


def ue_ips(ies: tuple[pfcp.UEIPAddress, ...], addresses: dict[Any, Any] | None = None) -> tuple[UeIp, ...]:
    if not ies:
        return ()
    if len(ies) == 1:
        return (UeIp.from_ie(ies[0], addresses),)
    return tuple(UeIp.from_ie(ie, addresses) for ie in ies)


def outer_header(ie: pfcp.OuterHeaderCreation | None) -> OuterHeader | None:
    return None if ie is None else OuterHeader.from_ie(ie)


#: Bound on interned IE values (see shared_ie).
SHARED_MAX = 4096
_shared_ies: dict[Any, Any] = {}


def shared_ie(ie: Any) -> Any:
    """One object for equal IE values repeated across sessions (Outer Header Removal, a
    Volume Threshold...): a decoded IE costs a few hundred bytes, and the desired state
    of 100k sessions holds several each. IEs are frozen, so sharing is invisible."""
    shared = _shared_ies.get(ie)
    if shared is None:
        if len(_shared_ies) >= SHARED_MAX:
            _shared_ies.clear()
        shared = _shared_ies[ie] = ie
    return shared


def shared_name(value: str) -> str:
    """Network Instance names repeat in every session: one string each."""
    return sys.intern(value)


def shared_ids(ies: tuple[Any, ...]) -> tuple[int, ...]:
    """Rule IDs of ID IEs; the same short lists ((1,), (1, 2)...) recur in every session: one
    tuple each (bounded as for shared_ie)."""
    if not ies:
        return ()
    if len(ies) == 1:  # the common case, without building a tuple to look it up
        value = ies[0].value
        one = _one_id.get(value)
        if one is None:
            if len(_one_id) >= SHARED_MAX:
                _one_id.clear()
            one = _one_id[value] = (value,)
        return one
    ids = tuple(i.value for i in ies)
    shared = _shared_ids.get(ids)
    if shared is None:
        if len(_shared_ids) >= SHARED_MAX:
            _shared_ids.clear()
        shared = _shared_ids[ids] = ids
    return shared


_shared_ids: dict[tuple[int, ...], tuple[int, ...]] = {}
_one_id: dict[int, tuple[int]] = {}


def interned(cache: dict[tuple[Any, ...], Any], cls: Any, args: tuple[Any, ...]) -> Any:
    """One object per distinct rule value: QERs and URRs come from the CP function's policy
    (an MBR, a threshold per subscription profile), so most sessions repeat a few; the key is
    the constructor's arguments (cheaper to hash than the rule), and a hit skips building it.
    Rules are immutable, so sharing is invisible; the session tables holding them are then
    shared too (see user_plane.session)."""
    try:
        rule = cache.get(args)
    except TypeError:  # an unhashable IE value: build it for this session alone
        return cls(*args)
    if rule is None:
        if len(cache) >= SHARED_MAX:
            cache.clear()
        rule = cache[args] = cls(*args)
    return rule


#: Largest table kept as a :class:`RuleTable` (lookups scan it); bigger ones stay dicts.
RULE_TABLE_MAX = 8


class RuleTable(tuple[Any, ...], Mapping[int, Any]):
    """A session's own small rule table (its PDRs, its FARs) as one flat tuple
    ``(id0, rule0, id1, rule1, ...)``: 72 bytes for two rules where a dict costs 224, and
    every session keeps two. Read-only, as a SessionState is; equal to the dict it was made
    from. Lookups scan it, so only tables of up to RULE_TABLE_MAX rules take this form."""

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        items = tuple.__getitem__  # the tuple's own indexing, not this mapping's
        for i in range(0, tuple.__len__(self), 2):
            if items(self, i) == key:
                return items(self, i + 1)
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        items = tuple.__getitem__
        for i in range(0, tuple.__len__(self), 2):
            if items(self, i) == key:
                return items(self, i + 1)
        return default

    def __contains__(self, key: object) -> bool:
        return key in tuple.__getitem__(self, slice(0, None, 2))

    def __iter__(self) -> Iterator[int]:
        return iter(tuple.__getitem__(self, slice(0, None, 2)))

    def __len__(self) -> int:
        return tuple.__len__(self) // 2

    def keys(self) -> KeysView[int]:
        return KeysView(self)

    def values(self) -> tuple[Any, ...]:  # type: ignore[override]
        return tuple.__getitem__(self, slice(1, None, 2))

    def items(self) -> ItemsView[int, Any]:
        return ItemsView(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # unhashable, as the dict it stands for

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def rule_table(table: dict[int, Any]) -> Mapping[int, Any]:
    """The compact form of a session's own rule table when it is small (see RuleTable)."""
    if len(table) > RULE_TABLE_MAX:
        return table
    flat: list[Any] = []
    for item in table.items():
        flat += item
    return RuleTable(flat)
