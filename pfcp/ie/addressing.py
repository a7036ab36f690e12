"""Addressing IEs: F-SEID, F-TEID, UE IP Address, Node ID, Outer Header
Creation/Removal, Network Instance, APN/DNN and the other address carriers.

Addresses are :mod:`ipaddress` objects. Names (Network Instance, APN/DNN, FQDN
Node IDs) are text; they use the DNS label encoding of TS 23.003 §9.1 where the
spec asks for it, and text that is not label-encoded still round-trips.
"""

from __future__ import annotations

import struct
from dataclasses import field
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address, IPv6Address
from typing import Self

from ..constants import Cause, IEType
from ..errors import DecodeError, LocalProtocolError
from .base import IE, _at_least, _need, ie

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
# One pack for the common IPv4-only forms (the encoders below special-case them):
# flags + SEID + IPv4 (F-SEID), flags + TEID + IPv4 (F-TEID), flags + IPv4 (UE IP
# Address), description + TEID + IPv4 (Outer Header Creation, GTP-U/UDP/IPv4).
_FSEID_V4 = struct.Struct(">BQI")
_FTEID_V4 = struct.Struct(">BII")
_FLAGS_V4 = struct.Struct(">BI")
_OHC_GTPU_V4 = struct.Struct(">BBII")

__all__ = [
    "APNDNN",
    "AlternativeSMFIPAddress",
    "CPPFCPEntityIPAddress",
    "FSEID",
    "FTEID",
    "NetworkInstance",
    "NodeID",
    "NodeIDType",
    "OuterHeaderCreation",
    "OuterHeaderCreationDescription",
    "OuterHeaderRemoval",
    "OuterHeaderRemovalDescription",
    "RemoteGTPUPeer",
    "SourceIPAddress",
    "UEIPAddress",
    "UserPlaneIPResourceInformation",
    "decode_labels",
    "encode_labels",
]


def decode_labels(raw: bytes) -> tuple[str, bool]:
    """Decode TS 23.003 §9.1 labels to dotted text; (text, False) if not label-encoded."""
    if 0 < len(raw) - 1 == raw[0] <= 63 and b"." not in raw:  # one label, the common case
        return raw[1:].decode("utf-8", "surrogateescape"), True
    labels: list[str] = []
    pos = 0
    size = len(raw)
    while pos < size:
        n = raw[pos]
        if n == 0 or n > 63 or pos + 1 + n > size:  # labels are 1..63 octets (TS 23.003 §9.1)
            return raw.decode("utf-8", "surrogateescape"), False
        labels.append(raw[pos + 1 : pos + 1 + n].decode("utf-8", "surrogateescape"))
        pos += 1 + n
    if not labels or any("." in label for label in labels):
        return raw.decode("utf-8", "surrogateescape"), False
    return ".".join(labels), True


def encode_labels(name: str) -> bytes:
    """Encode dotted text as TS 23.003 §9.1 labels (length octet + label, no root)."""
    if "." not in name:  # one label, the common case ("internet")
        raw = name.encode("utf-8", "surrogateescape")
        if 0 < len(raw) < 64:
            return bytes((len(raw),)) + raw
    out = bytearray()
    for label in name.split("."):
        raw = label.encode("utf-8", "surrogateescape")
        if not 0 < len(raw) < 64:
            raise LocalProtocolError(f"label {label!r} of {name!r} must be 1..63 octets")
        out.append(len(raw))
        out += raw
    return bytes(out)


_new = object.__new__
_setattr = object.__setattr__


def _name_octets(name: str, label_encoded: bool) -> bytes:
    return encode_labels(name) if label_encoded else name.encode("utf-8", "surrogateescape")


def _ipv4(data: bytes, pos: int) -> IPv4Address:
    # IPv4Address.__init__ re-validates what four octets cannot get wrong; an
    # address decoded from the wire is built directly (about 3x faster). The
    # result is an ordinary IPv4Address: equal, hashable and printable as usual.
    address = _new(IPv4Address)
    _setattr(address, "_ip", _U32.unpack_from(data, pos)[0])
    return address


def _ipv6(data: bytes, pos: int) -> IPv6Address:
    return IPv6Address(data[pos : pos + 16])


def _short(cls: type, what: str) -> DecodeError:
    return DecodeError(f"{cls.__name__}: too short for {what}", Cause.INVALID_LENGTH)


@ie
class FSEID(IE):
    """F-SEID, §8.2.37: a SEID and the IPv4 and/or IPv6 address of its node."""

    TYPE = IEType.F_SEID
    seid: int
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 9)
        flags = data[pos]
        values: dict[str, object] = {"seid": _U64.unpack_from(data, pos + 1)[0]}
        p = pos + 9
        if flags & 0x02:
            if end - p < 4:
                raise _short(cls, "IPv4")
            values["ipv4"] = _ipv4(data, p)
            p += 4
        if flags & 0x01:
            if end - p < 16:
                raise _short(cls, "IPv6")
            values["ipv6"] = _ipv6(data, p)
            p += 16
        if p != end:
            raise DecodeError(f"FSEID: {end - p} trailing octets", Cause.INVALID_LENGTH)
        obj = _new(cls)
        _setattr(obj, "__dict__", values)
        return obj

    def encode_payload(self) -> bytes:
        ipv4 = self.ipv4
        if self.ipv6 is None and type(ipv4) is IPv4Address:
            return _FSEID_V4.pack(0x02, self.seid, ipv4._ip)  # type: ignore[attr-defined]
        flags = (0x02 if ipv4 is not None else 0) | (0x01 if self.ipv6 is not None else 0)
        out = bytes((flags,)) + self.seid.to_bytes(8, "big")
        if self.ipv4 is not None:
            out += self.ipv4.packed
        if self.ipv6 is not None:
            out += self.ipv6.packed
        return out


@ie
class FTEID(IE):
    """F-TEID, §8.2.3: a GTP-U TEID and its IPv4/IPv6 address, or a request
    that the UP function choose them (CH), optionally shared by Choose ID (CHID).

    With ``teid`` set the UP function is told the tunnel; with ``teid=None`` the
    CH flag is set and ``choose_v4``/``choose_v6`` say which address families
    to allocate.
    """

    TYPE = IEType.F_TEID
    teid: int | None = None
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    choose_v4: bool = False
    choose_v6: bool = False
    choose_id: int | None = None

    @property
    def choose(self) -> bool:
        """The CH flag: the UP function allocates the TEID."""
        return self.teid is None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        flags = data[pos]
        p = pos + 1
        if flags & 0x04:  # CH: no TEID and no address (§8.2.3)
            choose_id = None
            if flags & 0x08:
                if end - p < 1:
                    raise _short(cls, "Choose ID")
                choose_id = data[p]
                p += 1
            if p != end:
                raise DecodeError(f"FTEID: {end - p} trailing octets", Cause.INVALID_LENGTH)
            return cls(None, None, None, bool(flags & 0x01), bool(flags & 0x02), choose_id)
        if end - p < 4:
            raise _short(cls, "TEID")
        values: dict[str, object] = {"teid": _U32.unpack_from(data, p)[0]}
        p += 4
        if flags & 0x01:
            if end - p < 4:
                raise _short(cls, "IPv4")
            values["ipv4"] = _ipv4(data, p)
            p += 4
        if flags & 0x02:
            if end - p < 16:
                raise _short(cls, "IPv6")
            values["ipv6"] = _ipv6(data, p)
            p += 16
        if p != end:
            raise DecodeError(f"FTEID: {end - p} trailing octets", Cause.INVALID_LENGTH)
        obj = _new(cls)
        _setattr(obj, "__dict__", values)
        return obj

    def encode_payload(self) -> bytes:
        if self.teid is None:
            if self.ipv4 is not None or self.ipv6 is not None:
                raise LocalProtocolError("FTEID: CH (teid=None) carries no address")
            flags = 0x04 | (0x01 if self.choose_v4 else 0) | (0x02 if self.choose_v6 else 0)
            if self.choose_id is None:
                return bytes((flags,))
            return bytes((flags | 0x08, self.choose_id))
        if self.choose_v4 or self.choose_v6 or self.choose_id is not None:
            raise LocalProtocolError("FTEID: choose_* apply only with teid=None (CH)")
        ipv4 = self.ipv4
        if self.ipv6 is None and type(ipv4) is IPv4Address:
            return _FTEID_V4.pack(0x01, self.teid, ipv4._ip)  # type: ignore[attr-defined]
        flags = (0x01 if ipv4 is not None else 0) | (0x02 if self.ipv6 is not None else 0)
        out = bytes((flags,)) + self.teid.to_bytes(4, "big")
        if self.ipv4 is not None:
            out += self.ipv4.packed
        if self.ipv6 is not None:
            out += self.ipv6.packed
        return out


@ie
class UEIPAddress(IE):
    """UE IP Address, §8.2.62.

    ``is_destination`` is the S/D flag: False when the address is the source
    (uplink PDI), True when it is the destination (downlink PDI). ``choose_v4``
    and ``choose_v6`` (CHV4/CHV6) ask the UP function to allocate.
    """

    TYPE = IEType.UE_IP_ADDRESS
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    is_destination: bool = False
    choose_v4: bool = False
    choose_v6: bool = False
    ipv6_prefix_delegation_bits: int | None = None
    ipv6_prefix_length: int | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        flags = data[pos]
        p = pos + 1
        ipv4 = ipv6 = None
        delegation = prefix_length = None
        if flags & 0x02:
            if end - p < 4:
                raise _short(cls, "IPv4")
            ipv4 = _ipv4(data, p)
            p += 4
        if flags & 0x01:
            if end - p < 16:
                raise _short(cls, "IPv6")
            ipv6 = _ipv6(data, p)
            p += 16
        if flags & 0x08:
            if end - p < 1:
                raise _short(cls, "IPv6 prefix delegation bits")
            delegation = data[p]
            p += 1
        if flags & 0x40:
            if end - p < 1:
                raise _short(cls, "IPv6 prefix length")
            prefix_length = data[p]
            p += 1
        if p != end:
            raise DecodeError(f"UEIPAddress: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(ipv4, ipv6, bool(flags & 0x04), bool(flags & 0x10), bool(flags & 0x20), delegation, prefix_length)

    def encode_payload(self) -> bytes:
        flags = (
            (0x02 if self.ipv4 is not None else 0)
            | (0x01 if self.ipv6 is not None else 0)
            | (0x04 if self.is_destination else 0)
            | (0x08 if self.ipv6_prefix_delegation_bits is not None else 0)
            | (0x10 if self.choose_v4 else 0)
            | (0x20 if self.choose_v6 else 0)
            | (0x40 if self.ipv6_prefix_length is not None else 0)
        )
        ipv4 = self.ipv4
        if flags & 0x69 == 0 and type(ipv4) is IPv4Address:  # IPv4 only, no prefix octets
            return _FLAGS_V4.pack(flags, ipv4._ip)  # type: ignore[attr-defined]
        out = bytearray((flags,))
        if ipv4 is not None:
            out += ipv4.packed
        if self.ipv6 is not None:
            out += self.ipv6.packed
        if self.ipv6_prefix_delegation_bits is not None:
            out.append(self.ipv6_prefix_delegation_bits)
        if self.ipv6_prefix_length is not None:
            out.append(self.ipv6_prefix_length)
        return bytes(out)


class NodeIDType(IntEnum):
    """Node ID Type, §8.2.38."""

    IPV4_ADDRESS = 0
    IPV6_ADDRESS = 1
    FQDN = 2


@ie
class NodeID(IE):
    """Node ID, §8.2.38: an IPv4 address, an IPv6 address or an FQDN.

    An FQDN is label-encoded (TS 23.003 §9.1); ``label_encoded=False`` keeps a
    peer's plain-text FQDN as it came.
    """

    TYPE = IEType.NODE_ID
    value: IPv4Address | IPv6Address | str
    label_encoded: bool = field(default=True, compare=False)

    @property
    def node_id_type(self) -> NodeIDType:
        """The Node ID Type the value encodes as."""
        if isinstance(self.value, IPv4Address):
            return NodeIDType.IPV4_ADDRESS
        if isinstance(self.value, IPv6Address):
            return NodeIDType.IPV6_ADDRESS
        return NodeIDType.FQDN

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        kind = data[pos] & 0x0F
        if kind == 0:
            _need(cls, data, pos + 1, end, 4)
            return cls(_ipv4(data, pos + 1))
        if kind == 1:
            _need(cls, data, pos + 1, end, 16)
            return cls(_ipv6(data, pos + 1))
        if kind == 2:
            if end - pos < 2:
                raise _short(cls, "FQDN")
            name, labelled = decode_labels(bytes(data[pos + 1 : end]))
            return cls(name, labelled)
        raise DecodeError(f"NodeID: unknown Node ID type {kind}", Cause.MANDATORY_IE_INCORRECT, IEType.NODE_ID)

    def encode_payload(self) -> bytes:
        value = self.value
        if isinstance(value, IPv4Address):
            return b"\x00" + value.packed
        if isinstance(value, IPv6Address):
            return b"\x01" + value.packed
        if self.label_encoded:
            return b"\x02" + encode_labels(value)
        return b"\x02" + value.encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return str(self.value)


@ie
class NetworkInstance(IE):
    """Network Instance, §8.2.4: a DNN/APN or other instance name.

    Encoded as TS 23.003 §9.1 labels ("internet" -> ``08 'internet'``), as
    Wireshark and the major UPFs expect. Peers that send plain text keep it:
    ``label_encoded`` records which form arrived.
    """

    TYPE = IEType.NETWORK_INSTANCE
    value: str
    label_encoded: bool = field(default=True, compare=False)

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end > pos + 1 and data[pos] == end - pos - 1 <= 63:  # one label (1..63 octets), the common case
            raw = data[pos + 1 : end]
            if b"." not in raw:
                obj = _new(cls)
                _setattr(obj, "value", raw.decode("utf-8", "surrogateescape"))
                return obj
        name, labelled = decode_labels(bytes(data[pos:end]))
        return cls(name, labelled)

    def encode_payload(self) -> bytes:
        if self.label_encoded:
            return encode_labels(self.value)
        return self.value.encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return self.value


@ie
class APNDNN(NetworkInstance):
    """APN/DNN, §8.2.117: label-encoded as in TS 23.003 §9.1."""

    TYPE = IEType.APN_DNN


class OuterHeaderCreationDescription(IntFlag):
    """Outer Header Creation Description, §8.2.56 (octet 5 is the low byte)."""

    GTPU_UDP_IPV4 = 0x0001
    GTPU_UDP_IPV6 = 0x0002
    UDP_IPV4 = 0x0004
    UDP_IPV6 = 0x0008
    IPV4 = 0x0010
    IPV6 = 0x0020
    C_TAG = 0x0040
    S_TAG = 0x0080
    N19_INDICATION = 0x0100
    N6_INDICATION = 0x0200


_OHC = OuterHeaderCreationDescription
_OHC_GTPU = int(_OHC.GTPU_UDP_IPV4 | _OHC.GTPU_UDP_IPV6)
_OHC_V4 = int(_OHC.GTPU_UDP_IPV4 | _OHC.UDP_IPV4 | _OHC.IPV4)
_OHC_V6 = int(_OHC.GTPU_UDP_IPV6 | _OHC.UDP_IPV6 | _OHC.IPV6)
_OHC_PORT = int(_OHC.UDP_IPV4 | _OHC.UDP_IPV6)
_OHC_C_TAG = int(_OHC.C_TAG)
_OHC_S_TAG = int(_OHC.S_TAG)
_OHC_GTPU_UDP_IPV4 = int(_OHC.GTPU_UDP_IPV4)


@ie
class OuterHeaderCreation(IE):
    """Outer Header Creation, §8.2.56: the tunnel header a FAR adds.

    Which of ``teid``, ``ipv4``, ``ipv6``, ``port``, ``c_tag`` and ``s_tag`` are
    present follows from ``description``; encoding checks they agree.
    """

    TYPE = IEType.OUTER_HEADER_CREATION
    description: OuterHeaderCreationDescription
    teid: int | None = None
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    port: int | None = None
    c_tag: bytes | None = None
    s_tag: bytes | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 2)
        bits = data[pos] | (data[pos + 1] << 8)  # IntFlag arithmetic is slow: test plain ints
        p = pos + 2
        teid = port = None
        ipv4 = ipv6 = None
        c_tag = s_tag = None
        if bits & _OHC_GTPU:
            if end - p < 4:
                raise _short(cls, "TEID")
            teid = _U32.unpack_from(data, p)[0]
            p += 4
        if bits & _OHC_V4:
            if end - p < 4:
                raise _short(cls, "IPv4")
            ipv4 = _ipv4(data, p)
            p += 4
        if bits & _OHC_V6:
            if end - p < 16:
                raise _short(cls, "IPv6")
            ipv6 = _ipv6(data, p)
            p += 16
        if bits & _OHC_PORT:
            if end - p < 2:
                raise _short(cls, "port")
            port = (data[p] << 8) | data[p + 1]
            p += 2
        if bits & _OHC_C_TAG:
            if end - p < 3:
                raise _short(cls, "C-TAG")
            c_tag = bytes(data[p : p + 3])
            p += 3
        if bits & _OHC_S_TAG:
            if end - p < 3:
                raise _short(cls, "S-TAG")
            s_tag = bytes(data[p : p + 3])
            p += 3
        if p != end:
            raise DecodeError(f"OuterHeaderCreation: {end - p} trailing octets", Cause.INVALID_LENGTH)
        desc = _OHC._value2member_map_.get(bits)
        if desc is None:
            desc = _OHC(bits)
        return cls(desc, teid, ipv4, ipv6, port, c_tag, s_tag)  # type: ignore[arg-type]

    def encode_payload(self) -> bytes:
        bits = int(self.description)
        teid, ipv4, ipv6, port = self.teid, self.ipv4, self.ipv6, self.port
        if (
            bool(bits & _OHC_GTPU) != (teid is not None)
            or bool(bits & _OHC_V4) != (ipv4 is not None)
            or bool(bits & _OHC_V6) != (ipv6 is not None)
            or bool(bits & _OHC_PORT) != (port is not None)
            or bool(bits & _OHC_C_TAG) != (self.c_tag is not None)
            or bool(bits & _OHC_S_TAG) != (self.s_tag is not None)
        ):
            raise LocalProtocolError(
                f"OuterHeaderCreation: teid/ipv4/ipv6/port/c_tag/s_tag must be set exactly as "
                f"{self.description!r} asks (§8.2.56)"
            )
        if bits == _OHC_GTPU_UDP_IPV4 and type(ipv4) is IPv4Address:
            return _OHC_GTPU_V4.pack(bits, 0, teid, ipv4._ip)  # type: ignore[attr-defined]
        out = bytearray((bits & 0xFF, bits >> 8))
        if teid is not None:
            out += _U32.pack(teid)
        if ipv4 is not None:
            out += ipv4.packed
        if ipv6 is not None:
            out += ipv6.packed
        if port is not None:
            out += port.to_bytes(2, "big")
        for tag in (self.c_tag, self.s_tag):
            if tag is not None:
                if len(tag) != 3:
                    raise LocalProtocolError("OuterHeaderCreation: a VLAN tag is 3 octets")
                out += tag
        return bytes(out)


class OuterHeaderRemovalDescription(IntEnum):
    """Outer Header Removal Description, §8.2.64."""

    GTPU_UDP_IPV4 = 0
    GTPU_UDP_IPV6 = 1
    UDP_IPV4 = 2
    UDP_IPV6 = 3
    IPV4 = 4
    IPV6 = 5
    GTPU_UDP_IP = 6
    VLAN_S_TAG = 7
    S_TAG_AND_C_TAG = 8


@ie
class OuterHeaderRemoval(IE):
    """Outer Header Removal, §8.2.64. ``pdu_session_container`` is the optional
    GTP-U Extension Header Deletion octet (None when absent)."""

    TYPE = IEType.OUTER_HEADER_REMOVAL
    description: OuterHeaderRemovalDescription
    pdu_session_container: bool | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        raw = data[pos]
        desc = OuterHeaderRemovalDescription._value2member_map_.get(raw, raw)
        if end - pos == 1:
            return cls(desc)  # type: ignore[arg-type]
        _need(cls, data, pos, end, 2)
        return cls(desc, bool(data[pos + 1] & 0x01))  # type: ignore[arg-type]

    def encode_payload(self) -> bytes:
        if self.pdu_session_container is None:
            return bytes((self.description,))
        return bytes((self.description, 1 if self.pdu_session_container else 0))


def _v4v6_flags_payload(
    flags: int, ipv4: IPv4Address | None, ipv6: IPv6Address | None, v4_bit: int = 0x02, v6_bit: int = 0x01
) -> bytearray:
    out = bytearray((flags | (v4_bit if ipv4 is not None else 0) | (v6_bit if ipv6 is not None else 0),))
    if ipv4 is not None:
        out += ipv4.packed
    if ipv6 is not None:
        out += ipv6.packed
    return out


def _v4v6_decode(
    cls: type, data: bytes, pos: int, end: int, v4_bit: int = 0x02, v6_bit: int = 0x01
) -> tuple[int, IPv4Address | None, IPv6Address | None, int]:
    _at_least(cls, pos, end, 1)
    flags = data[pos]
    p = pos + 1
    ipv4 = ipv6 = None
    if flags & v4_bit:
        if end - p < 4:
            raise _short(cls, "IPv4")
        ipv4 = _ipv4(data, p)
        p += 4
    if flags & v6_bit:
        if end - p < 16:
            raise _short(cls, "IPv6")
        ipv6 = _ipv6(data, p)
        p += 16
    return flags, ipv4, ipv6, p


@ie
class SourceIPAddress(IE):
    """Source IP Address, §8.2.138: the address a Heartbeat was sent from (and
    other uses), with an optional mask/prefix length (MPL)."""

    TYPE = IEType.SOURCE_IP_ADDRESS
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    prefix_length: int | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        flags, ipv4, ipv6, p = _v4v6_decode(cls, data, pos, end)
        prefix = None
        if flags & 0x04:
            _need(cls, data, p, end, 1)
            prefix = data[p]
            p += 1
        if p != end:
            raise DecodeError(f"SourceIPAddress: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(ipv4, ipv6, prefix)

    def encode_payload(self) -> bytes:
        out = _v4v6_flags_payload(0x04 if self.prefix_length is not None else 0, self.ipv4, self.ipv6)
        if self.prefix_length is not None:
            out.append(self.prefix_length)
        return bytes(out)


@ie
class AlternativeSMFIPAddress(IE):
    """Alternative SMF IP Address, §8.2.129. ``preferred`` is the PPE flag."""

    TYPE = IEType.ALTERNATIVE_SMF_IP_ADDRESS
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    preferred: bool = False

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        flags, ipv4, ipv6, p = _v4v6_decode(cls, data, pos, end)
        if p != end:
            raise DecodeError(f"AlternativeSMFIPAddress: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(ipv4, ipv6, bool(flags & 0x04))

    def encode_payload(self) -> bytes:
        return bytes(_v4v6_flags_payload(0x04 if self.preferred else 0, self.ipv4, self.ipv6))


@ie
class CPPFCPEntityIPAddress(IE):
    """CP PFCP Entity IP Address, §8.2.135."""

    TYPE = IEType.CP_PFCP_ENTITY_IP_ADDRESS
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _flags, ipv4, ipv6, p = _v4v6_decode(cls, data, pos, end)
        if p != end:
            raise DecodeError(f"CPPFCPEntityIPAddress: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(ipv4, ipv6)

    def encode_payload(self) -> bytes:
        return bytes(_v4v6_flags_payload(0, self.ipv4, self.ipv6))


@ie
class RemoteGTPUPeer(IE):
    """Remote GTP-U Peer, §8.2.70: a GTP-U peer address, optionally with the
    Destination Interface and Network Instance it is reached through."""

    TYPE = IEType.REMOTE_GTP_U_PEER
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    destination_interface: int | None = None
    network_instance: str | None = None
    #: False when the peer sent the Network Instance as plain text (kept as is).
    network_instance_label_encoded: bool = field(default=True, compare=False)

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        flags, ipv4, ipv6, p = _v4v6_decode(cls, data, pos, end)
        di = ni = None
        labelled = True
        if flags & 0x04:
            if end - p < 3:
                raise _short(cls, "Destination Interface")
            n = (data[p] << 8) | data[p + 1]
            if n < 1 or end - p - 2 < n:
                raise _short(cls, "Destination Interface")
            di = data[p + 2] & 0x0F
            p += 2 + n
        if flags & 0x08:
            if end - p < 2:
                raise _short(cls, "Network Instance")
            n = (data[p] << 8) | data[p + 1]
            if end - p - 2 < n:
                raise _short(cls, "Network Instance")
            ni, labelled = decode_labels(bytes(data[p + 2 : p + 2 + n]))
            p += 2 + n
        if p != end:
            raise DecodeError(f"RemoteGTPUPeer: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(ipv4, ipv6, di, ni, labelled)

    def encode_payload(self) -> bytes:
        flags = (0x04 if self.destination_interface is not None else 0) | (
            0x08 if self.network_instance is not None else 0
        )
        out = _v4v6_flags_payload(flags, self.ipv4, self.ipv6)
        if self.destination_interface is not None:
            out += b"\x00\x01" + bytes((self.destination_interface,))
        if self.network_instance is not None:
            ni = _name_octets(self.network_instance, self.network_instance_label_encoded)
            out += len(ni).to_bytes(2, "big") + ni
        return bytes(out)


@ie
class UserPlaneIPResourceInformation(IE):
    """User Plane IP Resource Information (type 116), Rel-15 §8.2.82.

    Deprecated since Rel-16 (the type is now "Reserved"), but Rel-15 UP
    functions still announce their GTP-U addresses and TEID ranges with it.
    ``teid_range_bits`` is TEIDRI (0 when no TEID range is given).
    """

    TYPE = IEType.USER_PLANE_IP_RESOURCE_INFORMATION
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    teid_range_bits: int = 0
    teid_range: int | None = None
    network_instance: str | None = None
    source_interface: int | None = None
    #: False when the peer sent the Network Instance as plain text (kept as is).
    network_instance_label_encoded: bool = field(default=True, compare=False)

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        flags = data[pos]
        teidri = (flags >> 2) & 0x07
        p = pos + 1
        teid_range = None
        if teidri:
            if end - p < 1:
                raise _short(cls, "TEID range")
            teid_range = data[p]
            p += 1
        ipv4 = ipv6 = None
        if flags & 0x01:
            if end - p < 4:
                raise _short(cls, "IPv4")
            ipv4 = _ipv4(data, p)
            p += 4
        if flags & 0x02:
            if end - p < 16:
                raise _short(cls, "IPv6")
            ipv6 = _ipv6(data, p)
            p += 16
        si = ni = None
        labelled = True
        ni_end = end - 1 if flags & 0x40 else end
        if flags & 0x20:
            if ni_end <= p:
                raise _short(cls, "Network Instance")
            ni, labelled = decode_labels(bytes(data[p:ni_end]))
            p = ni_end
        if flags & 0x40:
            if end - p != 1:
                raise _short(cls, "Source Interface")
            si = data[p] & 0x0F
            p += 1
        if p != end:
            raise DecodeError(f"UserPlaneIPResourceInformation: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(ipv4, ipv6, teidri, teid_range, ni, si, labelled)

    def encode_payload(self) -> bytes:
        if (self.teid_range_bits == 0) != (self.teid_range is None):
            raise LocalProtocolError("UserPlaneIPResourceInformation: teid_range goes with teid_range_bits")
        flags = (
            (0x01 if self.ipv4 is not None else 0)
            | (0x02 if self.ipv6 is not None else 0)
            | ((self.teid_range_bits & 0x07) << 2)
            | (0x20 if self.network_instance is not None else 0)
            | (0x40 if self.source_interface is not None else 0)
        )
        out = bytearray((flags,))
        if self.teid_range is not None:
            out.append(self.teid_range)
        if self.ipv4 is not None:
            out += self.ipv4.packed
        if self.ipv6 is not None:
            out += self.ipv6.packed
        if self.network_instance is not None:
            out += _name_octets(self.network_instance, self.network_instance_label_encoded)
        if self.source_interface is not None:
            out.append(self.source_interface)
        return bytes(out)
