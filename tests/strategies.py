"""Hypothesis strategies for every PFCP IE and message class.

Strategies are derived from the dataclass fields where the type says enough
(booleans, addresses, text, octets, IntEnum, IntFlag, optional fields) and from
the generic layouts (U8..U64 bounded by their size, Flags from their member
bits, EnumOctet from the enum under its mask, opaque payloads as bytes).
Grouped IEs and messages are built from their FieldSpec tables: mandatory
children always, optional ones sometimes, repeated ones as lists of 0-3.
Integers of hand-written layouts have no implicit bound: each gets an explicit
one in ``FIELD_OVERRIDES``, and IEs whose fields constrain each other (F-TEID
CH, Outer Header Creation, label-encoded names...) have a ``CLASS_OVERRIDES``
entry. Asking for a class this module cannot bound raises, so a new IE class
gets noticed rather than silently skipped.

Usage::

    from tests.strategies import ie_strategy, message_strategy
    @given(message_strategy(pfcp.HeartbeatRequest))
    def test(msg): ...
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from hypothesis import strategies as st

import pfcp
from pfcp.ie.addressing import decode_labels
from pfcp.ie.base import (
    IE,
    U8,
    U16,
    U24,
    U32,
    U64,
    EnumOctet,
    FieldSpec,
    Flags,
    GroupedIE,
    M,
    OctetString,
    OpaqueIE,
    UnknownIE,
    UTF8String,
    VendorIE,
)
from pfcp.messages.schema import Message

__all__ = [
    "CLASS_OVERRIDES",
    "FIELD_OVERRIDES",
    "MAX_LIST",
    "dns_names",
    "extra_ies",
    "ie_strategy",
    "ipv4s",
    "ipv6s",
    "labels",
    "message_strategy",
    "plain_names",
    "uint",
]

#: Longest list generated for a repeated IE.
MAX_LIST = 3

S = st.SearchStrategy


def uint(bits: int) -> S[int]:
    """Unsigned integers of ``bits`` bits, edges included."""
    top = (1 << bits) - 1
    return st.one_of(st.sampled_from((0, 1, top)), st.integers(0, top))


def _opt(strategy: S[Any]) -> S[Any]:
    return st.none() | strategy


ipv4s: S[IPv4Address] = st.builds(IPv4Address, uint(32))
ipv6s: S[IPv6Address] = st.builds(IPv6Address, uint(128))

#: One TS 23.003 §9.1 label: 1..63 octets, no dot (15 characters of at most 4 octets).
labels: S[str] = st.text(
    st.characters(codec="utf-8", exclude_characters="."),
    min_size=1,
    max_size=15,
)
#: A dotted name that encodes as labels.
dns_names: S[str] = st.lists(labels, min_size=1, max_size=4).map(".".join)


def _not_labels(text: str) -> bool:
    return decode_labels(text.encode("utf-8", "surrogateescape")) == (text, False)


#: Text a peer sent without label encoding (it must not happen to parse as labels).
plain_names: S[str] = st.text(st.characters(codec="utf-8"), max_size=30).filter(_not_labels)


def _tbcd(min_size: int, max_size: int) -> S[str]:
    return st.text("0123456789*#abc", min_size=min_size, max_size=max_size)


# --------------------------------------------------------------------------
# Overrides


def _fteid() -> S[IE]:
    told = st.builds(pfcp.FTEID, uint(32), _opt(ipv4s), _opt(ipv6s))
    choose = st.builds(
        pfcp.FTEID,
        st.none(),
        st.none(),
        st.none(),
        st.booleans(),
        st.booleans(),
        _opt(uint(8)),
    )
    return told | choose


def _ohc_for(desc: pfcp.OuterHeaderCreationDescription) -> S[IE]:
    d = pfcp.OuterHeaderCreationDescription

    def has(mask: int) -> bool:
        return bool(desc & mask)

    return st.builds(
        pfcp.OuterHeaderCreation,
        st.just(desc),
        uint(32) if has(d.GTPU_UDP_IPV4 | d.GTPU_UDP_IPV6) else st.none(),
        ipv4s if has(d.GTPU_UDP_IPV4 | d.UDP_IPV4 | d.IPV4) else st.none(),
        ipv6s if has(d.GTPU_UDP_IPV6 | d.UDP_IPV6 | d.IPV6) else st.none(),
        uint(16) if has(d.UDP_IPV4 | d.UDP_IPV6) else st.none(),
        st.binary(min_size=3, max_size=3) if has(d.C_TAG) else st.none(),
        st.binary(min_size=3, max_size=3) if has(d.S_TAG) else st.none(),
    )


def _flag_values(flags: type[IntFlag]) -> S[Any]:
    members = [m for m in flags if int(m)]
    return st.sets(st.sampled_from(members)).map(lambda chosen: flags(sum(int(m) for m in chosen)))


def _node_id() -> S[IE]:
    return st.one_of(
        st.builds(pfcp.NodeID, ipv4s),
        st.builds(pfcp.NodeID, ipv6s),
        st.builds(pfcp.NodeID, dns_names),
        st.builds(pfcp.NodeID, plain_names.filter(bool), st.just(False)),
    )


def _name_ie(cls: Callable[..., IE]) -> S[IE]:
    return st.builds(cls, dns_names) | st.builds(cls, plain_names, st.just(False))


#: (name, label_encoded) of a Network Instance carried inside another IE.
_inner_names: S[tuple[str, bool] | None] = _opt(
    st.tuples(dns_names, st.just(True)) | st.tuples(plain_names, st.just(False))
)


def _up_ip_resource() -> S[IE]:
    ranged = st.tuples(st.integers(1, 7), uint(8))
    return st.builds(
        lambda v4, v6, teid, ni, si: pfcp.UserPlaneIPResourceInformation(
            v4, v6, teid[0] if teid else 0, teid[1] if teid else None, ni and ni[0], si, ni is None or ni[1]
        ),
        _opt(ipv4s),
        _opt(ipv6s),
        _opt(ranged),
        _inner_names.filter(lambda ni: ni is None or ni[0] != ""),  # the NI of this IE is never empty
        _opt(st.integers(0, 15)),
    )


def _remote_gtpu_peer() -> S[IE]:
    return st.builds(
        lambda v4, v6, di, ni: pfcp.RemoteGTPUPeer(v4, v6, di, ni and ni[0], ni is None or ni[1]),
        _opt(ipv4s),
        _opt(ipv6s),
        _opt(st.integers(0, 15)),
        _inner_names,
    )


def _additional_usage_reports() -> S[IE]:
    # Both fields always travel: 15-bit number and the AURI bit.
    return st.builds(pfcp.AdditionalUsageReportsInformation, st.integers(0, 0x7FFF), st.booleans())


def _failed_rule_id() -> S[IE]:
    bits = {0: 16, 1: 32, 2: 32, 3: 32, 4: 8, 5: 16, 6: 8}
    return st.sampled_from(list(pfcp.RuleIDType)).flatmap(
        lambda kind: st.builds(pfcp.FailedRuleID, st.just(kind), uint(bits[int(kind)]))
    )


def _trace_information() -> S[IE]:
    return st.builds(
        pfcp.TraceInformation,
        st.text("0123456789", min_size=3, max_size=3),
        st.text("0123456789", min_size=2, max_size=3),
        uint(24),
        st.binary(max_size=20),
        uint(8),
        st.binary(max_size=20),
        st.none() | ipv4s | ipv6s,
    )


#: Whole-class strategies, for IEs whose fields depend on each other.
CLASS_OVERRIDES: dict[type[IE], Callable[[], S[IE]]] = {
    pfcp.FTEID: _fteid,
    pfcp.OuterHeaderCreation: lambda: _flag_values(pfcp.OuterHeaderCreationDescription).flatmap(_ohc_for),
    pfcp.NodeID: _node_id,
    pfcp.NetworkInstance: lambda: _name_ie(pfcp.NetworkInstance),
    pfcp.APNDNN: lambda: _name_ie(pfcp.APNDNN),
    pfcp.UserPlaneIPResourceInformation: _up_ip_resource,
    pfcp.RemoteGTPUPeer: _remote_gtpu_peer,
    pfcp.AdditionalUsageReportsInformation: _additional_usage_reports,
    pfcp.FailedRuleID: _failed_rule_id,
    pfcp.TraceInformation: _trace_information,
}

#: The fields each CLASS_OVERRIDES entry was written for: a field added to the
#: class later makes ie_strategy raise until the override generates it too.
OVERRIDDEN_FIELDS: dict[type[IE], tuple[str, ...]] = {
    pfcp.FTEID: ("teid", "ipv4", "ipv6", "choose_v4", "choose_v6", "choose_id"),
    pfcp.OuterHeaderCreation: ("description", "teid", "ipv4", "ipv6", "port", "c_tag", "s_tag"),
    pfcp.NodeID: ("value", "label_encoded"),
    pfcp.NetworkInstance: ("value", "label_encoded"),
    pfcp.APNDNN: ("value", "label_encoded"),
    pfcp.UserPlaneIPResourceInformation: (
        "ipv4", "ipv6", "teid_range_bits", "teid_range", "network_instance", "source_interface",
        "network_instance_label_encoded",
    ),
    pfcp.RemoteGTPUPeer: (
        "ipv4", "ipv6", "destination_interface", "network_instance", "network_instance_label_encoded",
    ),
    pfcp.AdditionalUsageReportsInformation: ("number_of_reports", "auri"),
    pfcp.FailedRuleID: ("rule_type", "rule_id"),
    pfcp.TraceInformation: (
        "mcc", "mnc", "trace_id", "triggering_events", "session_trace_depth", "interfaces", "collection_entity",
    ),
}  # fmt: skip

_U64_OR_NONE = _opt(uint(64))

#: (class, field) -> strategy, for integers without a generic layout and
#: other fields with a narrower domain than their type.
FIELD_OVERRIDES: dict[tuple[type[IE], str], S[Any]] = {
    (pfcp.FSEID, "seid"): uint(64),
    (pfcp.FQCSID, "node"): st.one_of(ipv4s, ipv6s, uint(32)),
    (pfcp.FQCSID, "csids"): st.lists(uint(16), max_size=15).map(tuple),
    (pfcp.FQCSID, "node_type"): _opt(st.integers(0, 15)),
    (pfcp.UEIPAddress, "ipv6_prefix_delegation_bits"): _opt(uint(8)),
    (pfcp.UEIPAddress, "ipv6_prefix_length"): _opt(uint(8)),
    (pfcp.SourceIPAddress, "prefix_length"): _opt(uint(8)),
    (pfcp.QFI, "value"): st.integers(0, 63),
    (pfcp.PagingPolicyIndicator, "value"): st.integers(0, 7),
    (pfcp.MBR, "ul"): uint(40),
    (pfcp.MBR, "dl"): uint(40),
    (pfcp.GBR, "ul"): uint(40),
    (pfcp.GBR, "dl"): uint(40),
    (pfcp.TransportLevelMarking, "tos"): uint(8),
    (pfcp.TransportLevelMarking, "mask"): uint(8),
    (pfcp.DownlinkDataServiceInformation, "paging_policy_indication"): _opt(st.integers(0, 63)),
    (pfcp.DownlinkDataServiceInformation, "qfi"): _opt(st.integers(0, 63)),
    (pfcp.SDFFilter, "tos_traffic_class"): _opt(uint(16)),
    (pfcp.SDFFilter, "security_parameter_index"): _opt(uint(32)),
    (pfcp.SDFFilter, "flow_label"): _opt(uint(24)),
    (pfcp.SDFFilter, "sdf_filter_id"): _opt(uint(32)),
    (pfcp.ForwardingPolicy, "identifier"): st.binary(max_size=40),
    (pfcp.HeaderEnrichment, "name"): st.binary(max_size=40),
    (pfcp.HeaderEnrichment, "value"): st.binary(max_size=40),
    (pfcp.HeaderEnrichment, "header_type"): st.integers(0, 31),
    (pfcp.SNSSAI, "sst"): uint(8),
    (pfcp.SNSSAI, "sd"): uint(24),
    (pfcp.Timer, "value"): st.integers(0, 31),
    (pfcp.GracefulReleasePeriod, "value"): st.integers(0, 31),
    (pfcp.UserID, "imsi"): _opt(_tbcd(0, 15)),
    (pfcp.UserID, "imei"): _opt(_tbcd(0, 16)),
    (pfcp.UserID, "msisdn"): _opt(_tbcd(0, 15)),
    (pfcp.DLBufferingDuration, "unit"): st.integers(0, 7),
    (pfcp.DLBufferingDuration, "value"): st.integers(0, 31),
    (pfcp.DLBufferingSuggestedPacketCount, "value"): uint(16),
    (pfcp.DLBufferingSuggestedPacketCount, "octets"): st.integers(1, 2),
    **{
        (cls, name): _U64_OR_NONE
        for cls in (
            pfcp.VolumeThreshold,
            pfcp.VolumeQuota,
            pfcp.SubsequentVolumeThreshold,
            pfcp.SubsequentVolumeQuota,
        )
        for name in ("total", "uplink", "downlink")
    },
    **{
        (pfcp.VolumeMeasurement, name): _U64_OR_NONE
        for name in (
            "total_volume",
            "uplink_volume",
            "downlink_volume",
            "total_packets",
            "uplink_packets",
            "downlink_packets",
        )
    },
    (pfcp.DroppedDLTrafficThreshold, "packets"): _U64_OR_NONE,
    (pfcp.DroppedDLTrafficThreshold, "octets"): _U64_OR_NONE,
}

_SIZED = ((U8, 8), (U16, 16), (U24, 24), (U32, 32), (U64, 64))


# --------------------------------------------------------------------------
# Derivation


def _from_type(hint: Any, where: str) -> S[Any]:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        return st.one_of([st.none() if a is type(None) else _from_type(a, where) for a in args])
    if hint is bool:
        return st.booleans()
    if hint is str:
        return st.text(max_size=30)
    if hint is bytes:
        return st.binary(max_size=30)
    if hint is IPv4Address:
        return ipv4s
    if hint is IPv6Address:
        return ipv6s
    if isinstance(hint, type) and issubclass(hint, IntFlag):
        return _flag_values(hint)
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return st.sampled_from(list(hint))
    raise TypeError(f"no strategy for {where}: {hint!r}; add a FIELD_OVERRIDES entry")


def _leaf(cls: type[IE]) -> S[IE]:
    for base, bits in _SIZED:
        if issubclass(cls, base):
            return st.builds(cls, uint(bits))
    if issubclass(cls, Flags):
        octets = st.integers(cls.MIN_OCTETS, cls.MIN_OCTETS + 2)
        return st.builds(cls, _flag_values(cls.FLAGS), octets)
    if issubclass(cls, EnumOctet):
        values = [v for v in cls.ENUM if int(v) & cls.MASK == int(v)]
        return st.builds(cls, st.sampled_from(values))
    if issubclass(cls, OctetString):
        return st.builds(cls, st.binary(max_size=40))
    if issubclass(cls, UTF8String):
        return st.builds(cls, st.text(max_size=30))
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, S[Any]] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        override = FIELD_OVERRIDES.get((cls, f.name))
        kwargs[f.name] = override if override is not None else _from_type(hints[f.name], f"{cls.__name__}.{f.name}")
    return st.builds(cls, **kwargs)


#: Unknown (not in Table 8.1.2-1) and vendor-specific IEs, as a container's ``extra``.
_UNKNOWN_TYPES = st.sampled_from((0, 0x1234, 0x7F00, 0x7FFF)) | st.integers(1, 0x7FFF)
_UNKNOWN_TYPES = _UNKNOWN_TYPES.filter(lambda t: t not in pfcp.IE_CLASSES)
extra_ies: S[tuple[IE, ...]] = st.just(()) | st.lists(
    st.one_of(
        st.builds(UnknownIE, _UNKNOWN_TYPES, st.binary(max_size=12)),
        st.builds(VendorIE, st.integers(0x8000, 0xFFFF), uint(16), st.binary(max_size=12)),
    ),
    min_size=1,
    max_size=2,
).map(tuple)


def _positional_groups(specs: tuple[FieldSpec, ...]) -> list[list[str]]:
    by_type: dict[int, list[FieldSpec]] = {}
    for spec in specs:
        by_type.setdefault(spec.ie_type, []).append(spec)
    groups = []
    for same in by_type.values():
        if len(same) > 1:
            if any(s.multiple or s.presence is M for s in same):
                raise TypeError(f"cannot generate repeated-type fields {[s.name for s in same]}")
            groups.append([s.name for s in same])
    return groups


def _compact(groups: list[list[str]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    # Fields of one IE type are told apart only by their order on the wire: the
    # decoder fills them first to last, so generated values occupy a prefix.
    def fix(kwargs: dict[str, Any]) -> dict[str, Any]:
        for names in groups:
            values = [kwargs[n] for n in names if kwargs[n] is not None]
            for i, name in enumerate(names):
                kwargs[name] = values[i] if i < len(values) else None
        return kwargs

    return fix


def _children(cls: type[GroupedIE] | type[Message]) -> S[dict[str, Any]]:
    parts: dict[str, S[Any]] = {}
    for spec in cls._SPECS:
        child = ie_strategy(spec.cls)
        if spec.multiple:
            parts[spec.name] = st.lists(child, min_size=1 if spec.presence is M else 0, max_size=MAX_LIST).map(tuple)
        elif spec.presence is M:
            parts[spec.name] = child
        else:
            parts[spec.name] = _opt(child)
    parts["extra"] = extra_ies
    return st.fixed_dictionaries(parts).map(_compact(_positional_groups(cls._SPECS)))


_IE_STRATEGIES: dict[type[IE], S[IE]] = {}
_MESSAGE_STRATEGIES: dict[type[Message], S[Message]] = {}


def ie_strategy(cls: type[IE]) -> S[IE]:
    """A strategy for instances of the IE class ``cls`` (typed, grouped or opaque)."""
    made = _IE_STRATEGIES.get(cls)
    if made is None:
        made = _IE_STRATEGIES[cls] = _ie_strategy(cls)
    return made


def _ie_strategy(cls: type[IE]) -> S[IE]:
    override = CLASS_OVERRIDES.get(cls)
    if override is not None:
        fields = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        if fields != OVERRIDDEN_FIELDS[cls]:
            raise TypeError(f"{cls.__name__} has fields {fields}; update its CLASS_OVERRIDES entry")
        return override()
    if issubclass(cls, GroupedIE):
        return st.deferred(lambda: _children(cls).map(lambda kw: cls(**kw)))
    if issubclass(cls, OpaqueIE):
        return st.builds(cls, st.binary(max_size=40))
    return _leaf(cls)


def message_strategy(cls: type[Message]) -> S[Message]:
    """A strategy for messages of class ``cls`` with generated header values and IEs."""
    made = _MESSAGE_STRATEGIES.get(cls)
    if made is None:
        made = _MESSAGE_STRATEGIES[cls] = _message_strategy(cls)
    return made


def _message_strategy(cls: type[Message]) -> S[Message]:
    seid: S[int | None] = uint(64) if cls.SESSION else st.none()
    header = st.fixed_dictionaries({"sequence": uint(24), "seid": seid, "priority": _opt(st.integers(0, 15))})
    return st.builds(lambda h, kw: cls(**h, **kw), header, _children(cls))
