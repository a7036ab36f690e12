"""GTP-U version 1 codec (3GPP TS 29.281), sans-I/O.

Two paths over the same wire format:

* The **fast path** for the software dataplane, called once per packet:
  :func:`decode_gpdu` returns ``(teid, qfi, offset)`` from a G-PDU without
  building any object, and :func:`encode_gpdu_header` returns the 8- or 16-octet
  header to put in front of an inner packet. Both use precompiled
  :class:`struct.Struct` formats only.
* The **slow path** for signalling (Echo, Error Indication, End Marker,
  Supported Extension Headers Notification): :func:`decode` gives a frozen
  :class:`GtpuMessage` with its extension headers and IEs, :func:`encode` turns
  one back into bytes, and :func:`echo_request`, :func:`echo_response`,
  :func:`error_indication`, :func:`end_marker` and
  :func:`supported_extension_headers_notification` build the messages a UPF sends.

Theory of operation:

* We are an *Endpoint Receiver* in the sense of TS 29.281 §5.2.1: the UPF
  terminates the tunnel. An extension header we do not comprehend is skipped
  when its two most significant type bits say comprehension is not required
  (``00``, ``01``) and makes the packet invalid when they say it is (``10``,
  ``11``); :class:`GtpuError` then names the type in
  ``unsupported_extension_header`` so the caller can answer with a Supported
  Extension Headers Notification (§7.2.3). The only one we comprehend is the
  PDU Session Container (TS 38.415 §5.5.2).
* Both paths accept and reject exactly the same packets.
* The slow path never loses bytes that carry meaning: unknown TLV IEs become
  :class:`UnknownIE`, skippable extension headers become
  :class:`ExtensionHeader`, and PDU Session Container fields we do not model are
  kept verbatim. Fields the spec tells receivers to ignore (the spare header
  bit, a Sequence Number whose S flag is 0) are not kept: :func:`encode` writes
  the canonical form.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import ClassVar, Final, TypeVar

__all__ = [
    "COMPREHENDED_EXTENSION_HEADERS",
    "GTPU_PORT",
    "IE",
    "AnyExtensionHeader",
    "Comprehension",
    "ExtensionHeader",
    "ExtensionHeaderType",
    "ExtensionHeaderTypeList",
    "GTPUPeerAddress",
    "GtpuError",
    "GtpuMessage",
    "IEType",
    "MessageType",
    "PDUSessionContainer",
    "PDUType",
    "PrivateExtension",
    "Recovery",
    "TEIDDataI",
    "UnknownIE",
    "comprehension",
    "decode",
    "decode_gpdu",
    "echo_request",
    "echo_response",
    "encode",
    "encode_gpdu_header",
    "end_marker",
    "error_indication",
    "supported_extension_headers_notification",
]

#: UDP port of GTP-U (TS 29.281 §4.4.2.0).
GTPU_PORT: Final = 2152

Buffer = bytes | bytearray | memoryview


class MessageType(IntEnum):
    """GTP-U message types (TS 29.281 §6.1, Table 6.1-1)."""

    ECHO_REQUEST = 1
    ECHO_RESPONSE = 2
    ERROR_INDICATION = 26
    SUPPORTED_EXTENSION_HEADERS_NOTIFICATION = 31
    TUNNEL_STATUS = 253
    END_MARKER = 254
    G_PDU = 255


class ExtensionHeaderType(IntEnum):
    """Next Extension Header Type values (TS 29.281 §5.2.1, Figure 5.2.1-3)."""

    NO_MORE_EXTENSION_HEADERS = 0x00
    #: The Long PDCP PDU Number variant whose comprehension is not required.
    LONG_PDCP_PDU_NUMBER_OPTIONAL = 0x03
    SERVICE_CLASS_INDICATOR = 0x20
    UDP_PORT = 0x40
    RAN_CONTAINER = 0x81
    LONG_PDCP_PDU_NUMBER = 0x82
    XW_RAN_CONTAINER = 0x83
    NR_RAN_CONTAINER = 0x84
    PDU_SESSION_CONTAINER = 0x85
    PDCP_PDU_NUMBER = 0xC0


class Comprehension(IntEnum):
    """Bits 8-7 of an extension header type (TS 29.281 §5.2.1, Figure 5.2.1-2)."""

    #: Not required; an Intermediate Node forwards it.
    NOT_REQUIRED = 0b00
    #: Not required; an Intermediate Node discards it, other nodes skip it.
    NOT_REQUIRED_DISCARD = 0b01
    #: Required by the Endpoint Receiver, not by an Intermediate Node.
    REQUIRED_BY_ENDPOINT = 0b10
    #: Required by every recipient.
    REQUIRED = 0b11


def comprehension(extension_header_type: int) -> Comprehension:
    """What TS 29.281 §5.2.1 asks of a receiver for this extension header type."""
    return Comprehension(extension_header_type >> 6)


#: The extension headers this codec understands; unknown ones whose comprehension
#: is required make a packet invalid (we are an Endpoint Receiver).
COMPREHENDED_EXTENSION_HEADERS: Final = frozenset({ExtensionHeaderType.PDU_SESSION_CONTAINER})


class IEType(IntEnum):
    """GTP-U information element types (TS 29.281 §8.1, Table 8.1-1)."""

    RECOVERY = 14
    TUNNEL_ENDPOINT_IDENTIFIER_DATA_I = 16
    GTP_U_PEER_ADDRESS = 133
    EXTENSION_HEADER_TYPE_LIST = 141
    PRIVATE_EXTENSION = 255


class PDUType(IntEnum):
    """PDU Type of the PDU Session Container (TS 38.415 §5.5.3.1)."""

    DL_PDU_SESSION_INFORMATION = 0
    UL_PDU_SESSION_INFORMATION = 1


class GtpuError(ValueError):
    """Bytes that are not a valid GTP-U message, or a message that cannot be encoded.

    ``unsupported_extension_header`` is set when the packet was rejected only
    because it carries an extension header whose comprehension is required and
    which we do not comprehend: TS 29.281 §5.2.1 then asks for a Supported
    Extension Headers Notification to the sender.
    """

    def __init__(self, reason: str, *, unsupported_extension_header: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsupported_extension_header = unsupported_extension_header


# --------------------------------------------------------------------------
# Wire formats (§5.1). Octet 1: Version(3) PT(1) spare(1) E(1) S(1) PN(1).

_HEADER: Final = struct.Struct("!BBHI")  # flags, message type, length, TEID
_OPTIONAL: Final = struct.Struct("!HBB")  # sequence number, N-PDU number, next extension header type
_HEADER_OPTIONAL: Final = struct.Struct("!BBHIHBB")
# G-PDU header plus one 4-octet PDU Session Container without PPI (TS 38.415 §5.5.2).
_GPDU_PSC: Final = struct.Struct("!BBHIHBBBBBB")

_VERSION_PT_MASK: Final = 0xF0
_VERSION_PT: Final = 0x30  # version 1, PT 1 (GTP, not GTP')
_FLAG_E: Final = 0x04
_FLAG_S: Final = 0x02
_FLAG_PN: Final = 0x01
_FLAGS_OPTIONAL: Final = _FLAG_E | _FLAG_S | _FLAG_PN
_G_PDU: Final = 0xFF
_PSC: Final = 0x85
_PSC_DL_OCTET1: Final = PDUType.DL_PDU_SESSION_INFORMATION << 4
_PSC_UL_OCTET1: Final = PDUType.UL_PDU_SESSION_INFORMATION << 4


def _header_error(data: Buffer, flags: int, length: int) -> GtpuError:
    if flags & _VERSION_PT_MASK != _VERSION_PT:
        if flags >> 5 != 1:
            return GtpuError(f"GTP version {flags >> 5}, expected 1")
        return GtpuError("PT is 0 (GTP'), expected 1 (GTP)")
    return GtpuError(f"Length {length} does not match the {len(data) - 8} octets after the mandatory header")


# --------------------------------------------------------------------------
# Fast path


def decode_gpdu(data: Buffer) -> tuple[int, int | None, int]:
    """Decode a G-PDU's header: ``(teid, qfi, offset)``.

    ``qfi`` comes from the PDU Session Container (None without one), ``offset`` is
    where the T-PDU (the inner packet) starts in ``data``. Raises
    :class:`GtpuError` for anything malformed, for a message that is not a G-PDU
    (check ``data[1] == 0xFF`` first to dispatch signalling to :func:`decode`),
    and for an extension header whose comprehension is required but unknown.
    """
    try:
        flags, message_type, length, teid = _HEADER.unpack_from(data)
    except struct.error:
        raise GtpuError(f"truncated: {len(data)} octets, the GTP-U header has 8") from None
    if flags & _VERSION_PT_MASK != _VERSION_PT or length + 8 != len(data):
        raise _header_error(data, flags, length)
    if message_type != _G_PDU:
        raise GtpuError(f"message type {message_type} is not a G-PDU")
    if not flags & _FLAGS_OPTIONAL:
        return teid, None, 8
    # §5.1: the 4 optional octets are present when any of E, S, PN is set.
    if length < 4:
        raise GtpuError("E/S/PN set but the optional header fields are missing")
    if not flags & _FLAG_E:
        return teid, None, 12
    next_type = data[11]
    end = len(data)
    # The usual N3 uplink: one 4-octet PDU Session Container ending the chain.
    if next_type == _PSC and end >= 16 and data[12] == 1 and data[15] == 0:
        octet1, octet2 = data[13], data[14]
        if (octet1 < 0x10 and not octet2 & 0x80) or 0x10 <= octet1 < 0x20:  # DL without PPP, or UL
            return teid, octet2 & 0x3F, 16
    offset = 12
    qfi = None
    while next_type:
        if offset >= end:
            raise GtpuError(f"extension header 0x{next_type:02x} announced but the packet ends")
        size = data[offset] << 2  # §5.2.1: Extension Header Length is in 4-octet units
        if size == 0 or offset + size > end:
            raise GtpuError(f"extension header 0x{next_type:02x} has a bad length ({size} octets)")
        if next_type == _PSC:
            psc_qfi = _psc_qfi(data, offset, size)
            if qfi is None:  # the first container counts, as in GtpuMessage.qfi
                qfi = psc_qfi
        elif next_type & 0x80:
            raise _unsupported(next_type)
        next_type = data[offset + size - 1]
        offset += size
    return teid, qfi, offset


def _psc_qfi(data: Buffer, offset: int, size: int) -> int:
    # TS 38.415 §5.5.2: octet 1 PDU Type(4 bits) ..., octet 2 ... QFI (6 bits).
    pdu_type = data[offset + 1] >> 4
    octet2 = data[offset + 2]
    if pdu_type > PDUType.UL_PDU_SESSION_INFORMATION:
        raise GtpuError(f"PDU Session Container with unknown PDU Type {pdu_type}")
    if octet2 & 0x80 and pdu_type == PDUType.DL_PDU_SESSION_INFORMATION and size < 8:
        raise GtpuError("PDU Session Container: PPP set but no PPI octet")
    return octet2 & 0x3F


def _unsupported(extension_header_type: int) -> GtpuError:
    return GtpuError(
        f"extension header 0x{extension_header_type:02x} requires comprehension and is not supported",
        unsupported_extension_header=extension_header_type,
    )


def encode_gpdu_header(
    teid: int, payload_len: int, qfi: int | None = None, pdu_type_dl: bool = True, rqi: bool = False
) -> bytes:
    """The G-PDU header to prepend to a T-PDU of ``payload_len`` octets.

    8 octets without ``qfi``; 16 with a PDU Session Container carrying it (TS
    38.415 §5.5.2.1 DL PDU SESSION INFORMATION, or §5.5.2.2 UL when
    ``pdu_type_dl`` is False). ``rqi`` (Reflective QoS Indicator) exists on the
    downlink only.
    """
    try:
        if qfi is None:
            return _HEADER.pack(_VERSION_PT, _G_PDU, payload_len, teid)
        if not 0 <= qfi <= 0x3F:
            raise GtpuError(f"QFI {qfi} does not fit in 6 bits")
        if pdu_type_dl:
            octet1, octet2 = _PSC_DL_OCTET1, (qfi | 0x40 if rqi else qfi)
        elif rqi:
            raise GtpuError("RQI exists only in DL PDU SESSION INFORMATION")
        else:
            octet1, octet2 = _PSC_UL_OCTET1, qfi
        # Flags E only; the ignored Sequence Number and N-PDU Number are 0 (§5.1).
        return _GPDU_PSC.pack(_VERSION_PT | _FLAG_E, _G_PDU, payload_len + 8, teid, 0, 0, _PSC, 1, octet1, octet2, 0)
    except struct.error:
        raise GtpuError(f"TEID {teid} or payload length {payload_len} out of range") from None


# --------------------------------------------------------------------------
# Extension headers (§5.2)


@dataclass(frozen=True, slots=True)
class ExtensionHeader:
    """An extension header we skip but keep: ``content`` is what lies between its
    Length octet and its Next Extension Header Type octet (§5.2.1), so
    ``len(content) + 2`` is a multiple of 4."""

    type: int
    content: bytes

    def _encode_content(self) -> bytes:
        if (len(self.content) + 2) % 4:
            raise GtpuError(f"extension header 0x{self.type:02x}: {len(self.content)} content octets is not 4n-2")
        return self.content


@dataclass(frozen=True, slots=True)
class PDUSessionContainer:
    """PDU Session Container extension header (TS 29.281 §5.2.2.7, TS 38.415 §5.5.2).

    ``rqi`` and ``ppi`` (None: PPP flag 0) exist in DL PDU SESSION INFORMATION
    only. ``flags`` is the low nibble of octet 1 (DL: QMP, SNP, MSNP, spare; UL:
    QMP, DL Delay Ind, UL Delay Ind, SNP) and ``ul_flags`` bits 8-7 of UL octet 2
    (N3/N9 Delay Ind, New IE Flag); the optional fields they announce are kept
    verbatim in ``extra``, unparsed. Padding (up to 3 trailing zero octets) is added
    on encode and dropped on decode.
    """

    TYPE: ClassVar[int] = ExtensionHeaderType.PDU_SESSION_CONTAINER

    pdu_type: PDUType
    qfi: int
    rqi: bool = False
    ppi: int | None = None
    flags: int = 0
    ul_flags: int = 0
    extra: bytes = b""

    @property
    def type(self) -> int:
        """The extension header type, 0x85."""
        return self.TYPE

    def _encode_content(self) -> bytes:
        if not 0 <= self.qfi <= 0x3F:
            raise GtpuError(f"QFI {self.qfi} does not fit in 6 bits")
        if not 0 <= self.flags <= 0x0F:
            raise GtpuError(f"PDU Session Container flags {self.flags:#x} do not fit in 4 bits")
        if self.pdu_type == PDUType.DL_PDU_SESSION_INFORMATION:
            if self.ul_flags:
                raise GtpuError("ul_flags exist only in UL PDU SESSION INFORMATION")
            octet2 = self.qfi | (0x40 if self.rqi else 0) | (0x80 if self.ppi is not None else 0)
            out = bytes((self.pdu_type << 4 | self.flags, octet2))
            if self.ppi is not None:
                if not 0 <= self.ppi <= 7:
                    raise GtpuError(f"PPI {self.ppi} does not fit in 3 bits")
                out += bytes((self.ppi << 5,))
        else:
            if self.rqi or self.ppi is not None:
                raise GtpuError("RQI and PPI exist only in DL PDU SESSION INFORMATION")
            if not 0 <= self.ul_flags <= 3:
                raise GtpuError(f"ul_flags {self.ul_flags} do not fit in 2 bits")
            out = bytes((self.pdu_type << 4 | self.flags, self.ul_flags << 6 | self.qfi))
        out += self.extra
        # TS 38.415 §5.5.3.21: padding so that the container is a multiple of 4 octets.
        return out + bytes(-(len(out) + 2) % 4)

    @classmethod
    def _decode(cls, content: bytes) -> PDUSessionContainer:
        if len(content) < 2:
            raise GtpuError("PDU Session Container shorter than 2 octets")
        octet1, octet2 = content[0], content[1]
        try:
            pdu_type = PDUType(octet1 >> 4)
        except ValueError:
            raise GtpuError(f"PDU Session Container with unknown PDU Type {octet1 >> 4}") from None
        used = 2
        rqi, ppi, ul_flags = False, None, 0
        if pdu_type == PDUType.DL_PDU_SESSION_INFORMATION:
            rqi = bool(octet2 & 0x40)
            if octet2 & 0x80:  # PPP: the PPI octet follows (TS 38.415 §5.5.2.1)
                if len(content) < 3:
                    raise GtpuError("PDU Session Container: PPP set but no PPI octet")
                ppi = content[2] >> 5
                used = 3
        else:
            ul_flags = octet2 >> 6
        rest = content[used:]
        # TS 38.415 §5.5.3.21: up to 3 trailing zero octets are padding, exactly what
        # _encode_content adds back, so the bytes round-trip whatever ``extra`` holds.
        padding = 0
        while padding < 3 and padding < len(rest) and rest[-1 - padding] == 0:
            padding += 1
        extra = rest[: len(rest) - padding]
        return cls(pdu_type, octet2 & 0x3F, rqi, ppi, octet1 & 0x0F, ul_flags, extra)


AnyExtensionHeader = PDUSessionContainer | ExtensionHeader


def _decode_extension_headers(data: bytes, offset: int, next_type: int) -> tuple[tuple[AnyExtensionHeader, ...], int]:
    headers: list[AnyExtensionHeader] = []
    end = len(data)
    while next_type:
        if offset >= end:
            raise GtpuError(f"extension header 0x{next_type:02x} announced but the packet ends")
        size = data[offset] << 2
        if size == 0 or offset + size > end:
            raise GtpuError(f"extension header 0x{next_type:02x} has a bad length ({size} octets)")
        content = data[offset + 1 : offset + size - 1]
        if next_type == _PSC:
            headers.append(PDUSessionContainer._decode(content))
        elif next_type & 0x80:
            raise _unsupported(next_type)
        else:
            headers.append(ExtensionHeader(next_type, content))
        next_type = data[offset + size - 1]
        offset += size
    return tuple(headers), offset


def _encode_extension_headers(headers: tuple[AnyExtensionHeader, ...]) -> tuple[int, bytes]:
    """(first Next Extension Header Type, the encoded chain)."""
    if not headers:
        return 0, b""
    parts = []
    for i, header in enumerate(headers):
        content = header._encode_content()
        following = headers[i + 1].type if i + 1 < len(headers) else 0
        size = len(content) + 2
        if size > 0xFF * 4:
            raise GtpuError(f"extension header 0x{header.type:02x} longer than 1020 octets")
        parts.append(bytes((size >> 2,)) + content + bytes((following,)))
    return headers[0].type, b"".join(parts)


# --------------------------------------------------------------------------
# Information elements (§8). Types below 128 are TV with a fixed length, the
# others TLV with a 2-octet length, except the Extension Header Type List whose
# length is one octet (§8.5).


@dataclass(frozen=True, slots=True)
class Recovery:
    """Recovery (§8.2): TS 29.281 §7.2.2 has the Restart Counter sent as 0 and ignored."""

    TYPE: ClassVar[IEType] = IEType.RECOVERY

    restart_counter: int = 0

    def _value(self) -> bytes:
        return bytes((self.restart_counter,))

    @classmethod
    def _decode(cls, value: bytes) -> Recovery:
        return cls(value[0])


@dataclass(frozen=True, slots=True)
class TEIDDataI:
    """Tunnel Endpoint Identifier Data I (§8.3)."""

    TYPE: ClassVar[IEType] = IEType.TUNNEL_ENDPOINT_IDENTIFIER_DATA_I

    teid: int

    def _value(self) -> bytes:
        return self.teid.to_bytes(4, "big")

    @classmethod
    def _decode(cls, value: bytes) -> TEIDDataI:
        return cls(int.from_bytes(value, "big"))


@dataclass(frozen=True, slots=True)
class GTPUPeerAddress:
    """GTP-U Peer Address (§8.4): an IPv4 (4 octets) or IPv6 (16 octets) address."""

    TYPE: ClassVar[IEType] = IEType.GTP_U_PEER_ADDRESS

    address: IPv4Address | IPv6Address

    def _value(self) -> bytes:
        return self.address.packed

    @classmethod
    def _decode(cls, value: bytes) -> GTPUPeerAddress:
        if len(value) == 4:
            return cls(IPv4Address(value))
        if len(value) == 16:
            return cls(IPv6Address(value))
        raise GtpuError(f"GTP-U Peer Address of {len(value)} octets, expected 4 or 16")


@dataclass(frozen=True, slots=True)
class ExtensionHeaderTypeList:
    """Extension Header Type List (§8.5): the extension headers a node supports."""

    TYPE: ClassVar[IEType] = IEType.EXTENSION_HEADER_TYPE_LIST

    types: tuple[int, ...]

    def _value(self) -> bytes:
        return bytes(self.types)

    @classmethod
    def _decode(cls, value: bytes) -> ExtensionHeaderTypeList:
        return cls(tuple(value))


@dataclass(frozen=True, slots=True)
class PrivateExtension:
    """Private Extension (§8.6): an Extension Identifier (IANA enterprise number) and a value."""

    TYPE: ClassVar[IEType] = IEType.PRIVATE_EXTENSION

    extension_identifier: int
    value: bytes = b""

    def _value(self) -> bytes:
        return self.extension_identifier.to_bytes(2, "big") + self.value

    @classmethod
    def _decode(cls, value: bytes) -> PrivateExtension:
        if len(value) < 2:
            raise GtpuError("Private Extension shorter than its 2-octet Extension Identifier")
        return cls(int.from_bytes(value[:2], "big"), value[2:])


@dataclass(frozen=True, slots=True)
class UnknownIE:
    """A TLV IE (type 128 and above) this codec does not model, kept verbatim."""

    type: int
    value: bytes

    def _value(self) -> bytes:
        return self.value


IE = Recovery | TEIDDataI | GTPUPeerAddress | ExtensionHeaderTypeList | PrivateExtension | UnknownIE
_KnownIE = Recovery | TEIDDataI | GTPUPeerAddress | ExtensionHeaderTypeList | PrivateExtension

#: IE type -> class (Table 8.1-1).
IE_CLASSES: Final[dict[int, type[_KnownIE]]] = {
    cls.TYPE: cls for cls in (Recovery, TEIDDataI, GTPUPeerAddress, ExtensionHeaderTypeList, PrivateExtension)
}
#: TV IEs: value length (§8.2, §8.3). A TV IE not listed cannot be skipped.
_TV_LENGTH: Final[dict[int, int]] = {IEType.RECOVERY: 1, IEType.TUNNEL_ENDPOINT_IDENTIFIER_DATA_I: 4}
#: TLV IEs whose Length field is one octet (§8.5).
_ONE_OCTET_LENGTH: Final = frozenset({IEType.EXTENSION_HEADER_TYPE_LIST})

#: Mandatory IEs per message (§7.2.2, §7.2.3, §7.3.1); Private Extension is optional everywhere.
MANDATORY_IES: Final[dict[int, tuple[IEType, ...]]] = {
    MessageType.ECHO_RESPONSE: (IEType.RECOVERY,),
    MessageType.ERROR_INDICATION: (IEType.TUNNEL_ENDPOINT_IDENTIFIER_DATA_I, IEType.GTP_U_PEER_ADDRESS),
    MessageType.SUPPORTED_EXTENSION_HEADERS_NOTIFICATION: (IEType.EXTENSION_HEADER_TYPE_LIST,),
}


def _ie_type(ie: IE) -> int:
    return ie.type if isinstance(ie, UnknownIE) else ie.TYPE


def _decode_ies(body: bytes) -> tuple[IE, ...]:
    ies: list[IE] = []
    offset, end = 0, len(body)
    while offset < end:
        ie_type = body[offset]
        if ie_type < 128:
            size = _TV_LENGTH.get(ie_type)
            if size is None:
                raise GtpuError(f"unknown TV IE type {ie_type}: its length is unknown")
            start = offset + 1
        elif ie_type in _ONE_OCTET_LENGTH:
            if offset + 2 > end:
                raise GtpuError(f"IE {ie_type} truncated")
            size, start = body[offset + 1], offset + 2
        else:
            if offset + 3 > end:
                raise GtpuError(f"IE {ie_type} truncated")
            size, start = int.from_bytes(body[offset + 1 : offset + 3], "big"), offset + 3
        if start + size > end:
            raise GtpuError(f"IE {ie_type} needs {size} octets, {end - start} left")
        value = body[start : start + size]
        cls = IE_CLASSES.get(ie_type)
        ies.append(cls._decode(value) if cls is not None else UnknownIE(ie_type, value))
        offset = start + size
    return tuple(ies)


def _encode_ie(ie: IE) -> bytes:
    ie_type = _ie_type(ie)
    value = ie._value()
    if ie_type < 128:
        if len(value) != _TV_LENGTH.get(ie_type):
            raise GtpuError(f"TV IE {ie_type}: {len(value)} octets is not its fixed length")
        return bytes((ie_type,)) + value
    if ie_type in _ONE_OCTET_LENGTH:
        if len(value) > 0xFF:
            raise GtpuError(f"IE {ie_type} longer than 255 octets")
        return bytes((ie_type, len(value))) + value
    if len(value) > 0xFFFF:
        raise GtpuError(f"IE {ie_type} longer than 65535 octets")
    return bytes((ie_type,)) + len(value).to_bytes(2, "big") + value


# --------------------------------------------------------------------------
# Messages (slow path)

_IE = TypeVar("_IE", bound=_KnownIE)


@dataclass(frozen=True, slots=True)
class GtpuMessage:
    """One GTP-U message.

    ``sequence`` / ``n_pdu_number`` are None when their S / PN flag is 0 (§5.1).
    A G-PDU (and a message type we do not know) carries ``payload``; the
    signalling messages carry ``ies`` in wire order.
    """

    message_type: int
    teid: int = 0
    sequence: int | None = None
    n_pdu_number: int | None = None
    extension_headers: tuple[AnyExtensionHeader, ...] = ()
    ies: tuple[IE, ...] = ()
    payload: bytes = b""

    def ie(self, cls: type[_IE]) -> _IE | None:
        """The first IE of class ``cls``, or None."""
        for ie in self.ies:
            if isinstance(ie, cls):
                return ie
        return None

    @property
    def qfi(self) -> int | None:
        """The QFI of the PDU Session Container, or None without one."""
        for header in self.extension_headers:
            if isinstance(header, PDUSessionContainer):
                return header.qfi
        return None


#: Message types whose body is IEs; the G-PDU and unknown types carry opaque bytes.
_IE_MESSAGES: Final = frozenset(MessageType) - {MessageType.G_PDU}


def decode(data: Buffer) -> GtpuMessage:
    """Decode any GTP-U message; raises :class:`GtpuError` if it is malformed."""
    data = bytes(data)
    try:
        flags, message_type, length, teid = _HEADER.unpack_from(data)
    except struct.error:
        raise GtpuError(f"truncated: {len(data)} octets, the GTP-U header has 8") from None
    if flags & _VERSION_PT_MASK != _VERSION_PT or length + 8 != len(data):
        raise _header_error(data, flags, length)
    sequence = n_pdu_number = None
    headers: tuple[AnyExtensionHeader, ...] = ()
    offset = 8
    if flags & _FLAGS_OPTIONAL:
        if length < 4:
            raise GtpuError("E/S/PN set but the optional header fields are missing")
        seq, npdu, next_type = _OPTIONAL.unpack_from(data, 8)
        sequence = seq if flags & _FLAG_S else None
        n_pdu_number = npdu if flags & _FLAG_PN else None
        offset = 12
        if flags & _FLAG_E:
            headers, offset = _decode_extension_headers(data, 12, next_type)
    body = data[offset:]
    if message_type not in _IE_MESSAGES:
        return GtpuMessage(message_type, teid, sequence, n_pdu_number, headers, (), body)
    ies = _decode_ies(body)
    present = {_ie_type(ie) for ie in ies}
    for mandatory in MANDATORY_IES.get(message_type, ()):
        if mandatory not in present:
            raise GtpuError(f"{MessageType(message_type).name} without its mandatory IE {mandatory.name}")
    return GtpuMessage(message_type, teid, sequence, n_pdu_number, headers, ies, b"")


def encode(msg: GtpuMessage) -> bytes:
    """Encode a message; raises :class:`GtpuError` if a field does not fit."""
    if msg.ies and msg.payload:
        raise GtpuError("a message carries either IEs or a payload, not both")
    body = b"".join(_encode_ie(ie) for ie in msg.ies) if msg.ies else msg.payload
    next_type, chain = _encode_extension_headers(msg.extension_headers)
    flags = _VERSION_PT
    if chain:
        flags |= _FLAG_E
    if msg.sequence is not None:
        flags |= _FLAG_S
    if msg.n_pdu_number is not None:
        flags |= _FLAG_PN
    try:
        if flags == _VERSION_PT:
            return _HEADER.pack(flags, msg.message_type, len(body), msg.teid) + body
        head = _HEADER_OPTIONAL.pack(
            flags,
            msg.message_type,
            4 + len(chain) + len(body),
            msg.teid,
            msg.sequence or 0,
            msg.n_pdu_number or 0,
            next_type,
        )
    except struct.error:
        raise GtpuError(f"a header field of {msg!r:.200} is out of range") from None
    return head + chain + body


# --------------------------------------------------------------------------
# Builders


def echo_request(sequence: int = 0) -> GtpuMessage:
    """Echo Request (§7.2.1): TEID 0, S flag set (§5.1)."""
    return GtpuMessage(MessageType.ECHO_REQUEST, 0, sequence)


def echo_response(request: GtpuMessage, recovery: int = 0) -> GtpuMessage:
    """Echo Response (§7.2.2) to ``request``: its Sequence Number, TEID 0, a Recovery IE."""
    return GtpuMessage(
        MessageType.ECHO_RESPONSE, 0, request.sequence if request.sequence is not None else 0, ies=(Recovery(recovery),)
    )


def error_indication(
    teid: int,
    peer_address: IPv4Address | IPv6Address,
    *,
    sequence: int = 0,
    udp_port: int | None = None,
) -> GtpuMessage:
    """Error Indication (§7.3.1) for a G-PDU that arrived on unknown ``teid``.

    ``peer_address`` is our own address the G-PDU was sent to (GTP-U Peer
    Address, §8.4); ``udp_port`` the source port of that G-PDU, carried in a UDP
    Port extension header (§5.2.2.1) when given. The header TEID is 0.
    """
    headers: tuple[AnyExtensionHeader, ...] = ()
    if udp_port is not None:
        if not 0 <= udp_port <= 0xFFFF:
            raise GtpuError(f"UDP port {udp_port} out of range")
        headers = (ExtensionHeader(ExtensionHeaderType.UDP_PORT, udp_port.to_bytes(2, "big")),)
    return GtpuMessage(
        MessageType.ERROR_INDICATION,
        0,
        sequence,
        extension_headers=headers,
        ies=(TEIDDataI(teid), GTPUPeerAddress(peer_address)),
    )


def end_marker(teid: int) -> GtpuMessage:
    """End Marker (§7.3.2) on the tunnel ``teid``: no IEs, no sequence number."""
    return GtpuMessage(MessageType.END_MARKER, teid)


def supported_extension_headers_notification(
    types: tuple[int, ...] = tuple(COMPREHENDED_EXTENSION_HEADERS), sequence: int = 0
) -> GtpuMessage:
    """Supported Extension Headers Notification (§7.2.3), TEID 0."""
    return GtpuMessage(
        MessageType.SUPPORTED_EXTENSION_HEADERS_NOTIFICATION, 0, sequence, ies=(ExtensionHeaderTypeList(types),)
    )
