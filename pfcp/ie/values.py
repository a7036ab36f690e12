"""Enumerated, bitmap and small structured IEs used by PDRs, FARs and QERs.

Enumerations and flag sets carry the spec's names. Flag octets are numbered
from octet 5 upwards and read little-endian (see :class:`~pfcp.ie.base.Flags`),
so ``ApplyAction.FORW`` is the same bit whether a peer sent one octet (Rel-15)
or two (Rel-16).
"""

from __future__ import annotations

from dataclasses import field
from enum import IntEnum, IntFlag
from typing import Self

from ..constants import Cause as CauseValue
from ..constants import IEType
from ..errors import DecodeError, LocalProtocolError
from .base import IE, EnumOctet, Flags, UTF8String, _at_least, _need, ie

__all__ = [
    "ActivatePredefinedRules",
    "ApplicationID",
    "ApplyAction",
    "ApplyActionFlags",
    "Cause",
    "DeactivatePredefinedRules",
    "DestinationInterface",
    "DestinationInterfaceValue",
    "DownlinkDataServiceInformation",
    "EthernetPDUSessionInformation",
    "FlowDirection",
    "ForwardingPolicy",
    "FramedIPv6Route",
    "FramedRoute",
    "GBR",
    "Gate",
    "GateStatus",
    "HeaderEnrichment",
    "Interface3GPPType",
    "MBR",
    "PDNType",
    "PDNTypeValue",
    "PFCPSMReqFlags",
    "PFCPSMReqFlagsValue",
    "PFCPSRRspFlags",
    "PFCPSRRspFlagsValue",
    "PagingPolicyIndicator",
    "QFI",
    "RQI",
    "RedirectAddressType",
    "RedirectInformation",
    "SDFFilter",
    "SNSSAI",
    "SourceInterface",
    "SourceInterfaceValue",
    "TGPPInterfaceType",
    "TransportLevelMarking",
]


# --------------------------------------------------------------------------
# Enumerations in one octet


@ie
class Cause(EnumOctet):
    """Cause, §8.2.1."""

    TYPE = IEType.CAUSE
    ENUM = CauseValue
    value: CauseValue


class SourceInterfaceValue(IntEnum):
    """Interface value of Source Interface, §8.2.2."""

    ACCESS = 0
    CORE = 1
    SGI_LAN_N6_LAN = 2
    CP_FUNCTION = 3
    VN_INTERNAL = 4


@ie
class SourceInterface(EnumOctet):
    """Source Interface, §8.2.2 (value in bits 4-1)."""

    TYPE = IEType.SOURCE_INTERFACE
    ENUM = SourceInterfaceValue
    MASK = 0x0F
    value: SourceInterfaceValue


class DestinationInterfaceValue(IntEnum):
    """Interface value of Destination Interface, §8.2.24."""

    ACCESS = 0
    CORE = 1
    SGI_LAN_N6_LAN = 2
    CP_FUNCTION = 3
    LI_FUNCTION = 4
    VN_INTERNAL = 5


@ie
class DestinationInterface(EnumOctet):
    """Destination Interface, §8.2.24 (value in bits 4-1)."""

    TYPE = IEType.DESTINATION_INTERFACE
    ENUM = DestinationInterfaceValue
    MASK = 0x0F
    value: DestinationInterfaceValue


class Interface3GPPType(IntEnum):
    """Interface Type values of 3GPP Interface Type, §8.2.118."""

    S1_U = 0
    S5_S8_U = 1
    S4_U = 2
    S11_U = 3
    S12_U = 4
    GN_GP_U = 5
    S2A_U = 6
    S2B_U = 7
    ENODEB_DL_DATA_FORWARDING = 8
    ENODEB_UL_DATA_FORWARDING = 9
    SGW_UPF_DL_DATA_FORWARDING = 10
    N3_3GPP_ACCESS = 11
    N3_TRUSTED_NON_3GPP_ACCESS = 12
    N3_UNTRUSTED_NON_3GPP_ACCESS = 13
    N3_DATA_FORWARDING = 14
    N9 = 15
    SGI = 16
    N6 = 17
    N19 = 18
    S8_U = 19
    GP_U = 20
    N9_ROAMING = 21
    IU_U = 22
    N9_DATA_FORWARDING = 23
    SXA_U = 24
    SXB_U = 25
    SXC_U = 26
    N4_U = 27
    SGW_UPF_UL_DATA_FORWARDING = 28


@ie
class TGPPInterfaceType(EnumOctet):
    """3GPP Interface Type, §8.2.118 (value in bits 6-1)."""

    TYPE = IEType.TGPP_INTERFACE_TYPE
    ENUM = Interface3GPPType
    MASK = 0x3F
    value: Interface3GPPType


class PDNTypeValue(IntEnum):
    """PDN Type, §8.2.79."""

    IPV4 = 1
    IPV6 = 2
    IPV4V6 = 3
    NON_IP = 4
    ETHERNET = 5


@ie
class PDNType(EnumOctet):
    """PDN Type, §8.2.79 (value in bits 3-1)."""

    TYPE = IEType.PDN_TYPE
    ENUM = PDNTypeValue
    MASK = 0x07
    value: PDNTypeValue


@ie
class QFI(IE):
    """QFI, §8.2.89: QoS Flow Identifier, bits 6-1."""

    TYPE = IEType.QFI
    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 1:
            _need(cls, data, pos, end, 1)
        return cls(data[pos] & 0x3F)

    def encode_payload(self) -> bytes:
        if not 0 <= self.value <= 63:
            raise LocalProtocolError(f"QFI {self.value} is not 0..63")
        return bytes((self.value,))


@ie
class RQI(IE):
    """RQI, §8.2.88: Reflective QoS indication (bit 1)."""

    TYPE = IEType.RQI
    value: bool

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 1)
        return cls(bool(data[pos] & 0x01))

    def encode_payload(self) -> bytes:
        return b"\x01" if self.value else b"\x00"


@ie
class PagingPolicyIndicator(IE):
    """Paging Policy Indicator, §8.2.116: PPI value in bits 3-1."""

    TYPE = IEType.PAGING_POLICY_INDICATOR
    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 1)
        return cls(data[pos] & 0x07)

    def encode_payload(self) -> bytes:
        if not 0 <= self.value <= 7:
            raise LocalProtocolError(f"PPI {self.value} is not 0..7")
        return bytes((self.value,))


# --------------------------------------------------------------------------
# Bitmaps


class ApplyActionFlags(IntFlag):
    """Apply Action flags, §8.2.26 (octet 5 = low byte, octet 6 = high byte)."""

    DROP = 0x0001
    FORW = 0x0002
    BUFF = 0x0004
    NOCP = 0x0008
    DUPL = 0x0010
    IPMA = 0x0020
    IPMD = 0x0040
    DFRT = 0x0080
    EDRT = 0x0100
    BDPN = 0x0200
    DDPN = 0x0400
    FSSM = 0x0800
    MBSU = 0x1000


@ie
class ApplyAction(Flags):
    """Apply Action, §8.2.26. Two octets since Rel-16; one-octet (Rel-15) peers
    are understood and answered in kind (``octets``)."""

    TYPE = IEType.APPLY_ACTION
    FLAGS = ApplyActionFlags
    value: ApplyActionFlags
    octets: int = field(default=2, compare=False)


class PFCPSMReqFlagsValue(IntFlag):
    """PFCPSMReq-Flags, §8.2.31."""

    DROBU = 0x01
    SNDEM = 0x02
    QAURR = 0x04
    SUMPC = 0x08
    RUMUC = 0x10
    DETEID = 0x20
    HRSBOM = 0x40


@ie
class PFCPSMReqFlags(Flags):
    """PFCPSMReq-Flags, §8.2.31."""

    TYPE = IEType.PFCPSMREQ_FLAGS
    FLAGS = PFCPSMReqFlagsValue
    value: PFCPSMReqFlagsValue
    octets: int = field(default=1, compare=False)


class PFCPSRRspFlagsValue(IntFlag):
    """PFCPSRRsp-Flags, §8.2.32."""

    DROBU = 0x01


@ie
class PFCPSRRspFlags(Flags):
    """PFCPSRRsp-Flags, §8.2.32."""

    TYPE = IEType.PFCPSRRSP_FLAGS
    FLAGS = PFCPSRRspFlagsValue
    value: PFCPSRRspFlagsValue
    octets: int = field(default=1, compare=False)


# --------------------------------------------------------------------------
# Gates and bit rates


class Gate(IntEnum):
    """Gate value of Gate Status, §8.2.7."""

    OPEN = 0
    CLOSED = 1


@ie
class GateStatus(IE):
    """Gate Status, §8.2.7: UL gate in bits 4-3, DL gate in bits 2-1."""

    TYPE = IEType.GATE_STATUS
    ul: Gate = Gate.OPEN
    dl: Gate = Gate.OPEN

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 1)
        octet = data[pos]
        ul, dl = (octet >> 2) & 0x03, octet & 0x03
        return cls(Gate._value2member_map_.get(ul, ul), Gate._value2member_map_.get(dl, dl))  # type: ignore[arg-type]

    def encode_payload(self) -> bytes:
        return bytes((((self.ul & 0x03) << 2) | (self.dl & 0x03),))


class _BitRate(IE):
    """UL and DL bit rates in kbit/s, five octets each (§8.2.8, §8.2.9)."""

    __slots__ = ()
    ul: int
    dl: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 10)
        return cls(int.from_bytes(data[pos : pos + 5], "big"), int.from_bytes(data[pos + 5 : end], "big"))  # type: ignore[call-arg]

    def encode_payload(self) -> bytes:
        return self.ul.to_bytes(5, "big") + self.dl.to_bytes(5, "big")


@ie
class MBR(_BitRate):
    """MBR, §8.2.8: maximum bit rates, kbit/s."""

    TYPE = IEType.MBR
    ul: int
    dl: int


@ie
class GBR(_BitRate):
    """GBR, §8.2.9: guaranteed bit rates, kbit/s."""

    TYPE = IEType.GBR
    ul: int
    dl: int


@ie
class TransportLevelMarking(IE):
    """Transport Level Marking, §8.2.12: ToS/Traffic Class value and mask."""

    TYPE = IEType.TRANSPORT_LEVEL_MARKING
    tos: int
    mask: int = 0xFF

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 2)
        return cls(data[pos], data[pos + 1])

    def encode_payload(self) -> bytes:
        return bytes((self.tos, self.mask))


@ie
class DownlinkDataServiceInformation(IE):
    """Downlink Data Service Information, §8.2.27: Paging Policy Indication
    (PPI) and/or QFI of the buffered downlink data."""

    TYPE = IEType.DOWNLINK_DATA_SERVICE_INFORMATION
    paging_policy_indication: int | None = None
    qfi: int | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        flags = data[pos]
        p = pos + 1
        ppi = qfi = None
        if flags & 0x01:
            _at_least(cls, p, end, 1)
            ppi = data[p] & 0x3F
            p += 1
        if flags & 0x02:
            _at_least(cls, p, end, 1)
            qfi = data[p] & 0x3F
            p += 1
        if p != end:
            raise DecodeError(f"DownlinkDataServiceInformation: {end - p} trailing octets", CauseValue.INVALID_LENGTH)
        return cls(ppi, qfi)

    def encode_payload(self) -> bytes:
        flags = (0x01 if self.paging_policy_indication is not None else 0) | (0x02 if self.qfi is not None else 0)
        out = bytearray((flags,))
        if self.paging_policy_indication is not None:
            out.append(self.paging_policy_indication)
        if self.qfi is not None:
            out.append(self.qfi)
        return bytes(out)


# --------------------------------------------------------------------------
# Packet filters and traffic steering


@ie
class SDFFilter(IE):
    """SDF Filter, §8.2.5: an IPFilterRule flow description (TS 29.212
    §5.4.2), ToS/Traffic Class, Security Parameter Index, IPv6 Flow Label
    and SDF Filter ID; each present when set."""

    TYPE = IEType.SDF_FILTER
    flow_description: str | None = None
    tos_traffic_class: int | None = None
    security_parameter_index: int | None = None
    flow_label: int | None = None
    sdf_filter_id: int | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 2)
        flags = data[pos]
        p = pos + 2  # octet 6 is spare
        fd = ttc = spi = fl = bid = None
        if flags & 0x01:
            _at_least(cls, p, end, 2)
            n = (data[p] << 8) | data[p + 1]
            _at_least(cls, p + 2, end, n)
            fd = data[p + 2 : p + 2 + n].decode("utf-8", "surrogateescape")
            p += 2 + n
        if flags & 0x02:
            _at_least(cls, p, end, 2)
            ttc = (data[p] << 8) | data[p + 1]
            p += 2
        if flags & 0x04:
            _at_least(cls, p, end, 4)
            spi = int.from_bytes(data[p : p + 4], "big")
            p += 4
        if flags & 0x08:
            _at_least(cls, p, end, 3)
            fl = int.from_bytes(data[p : p + 3], "big")
            p += 3
        if flags & 0x10:
            _at_least(cls, p, end, 4)
            bid = int.from_bytes(data[p : p + 4], "big")
            p += 4
        if p != end:
            raise DecodeError(f"SDFFilter: {end - p} trailing octets", CauseValue.INVALID_LENGTH)
        return cls(fd, ttc, spi, fl, bid)

    def encode_payload(self) -> bytes:
        flags = (
            (0x01 if self.flow_description is not None else 0)
            | (0x02 if self.tos_traffic_class is not None else 0)
            | (0x04 if self.security_parameter_index is not None else 0)
            | (0x08 if self.flow_label is not None else 0)
            | (0x10 if self.sdf_filter_id is not None else 0)
        )
        out = bytearray((flags, 0))
        if self.flow_description is not None:
            fd = self.flow_description.encode("utf-8", "surrogateescape")
            out += len(fd).to_bytes(2, "big") + fd
        if self.tos_traffic_class is not None:
            out += self.tos_traffic_class.to_bytes(2, "big")
        if self.security_parameter_index is not None:
            out += self.security_parameter_index.to_bytes(4, "big")
        if self.flow_label is not None:
            out += self.flow_label.to_bytes(3, "big")
        if self.sdf_filter_id is not None:
            out += self.sdf_filter_id.to_bytes(4, "big")
        return bytes(out)


@ie
class ApplicationID(UTF8String):
    """Application ID, §8.2.6."""

    TYPE = IEType.APPLICATION_ID


@ie
class ActivatePredefinedRules(UTF8String):
    """Activate Predefined Rules, §8.2.72: the name of predefined rules."""

    TYPE = IEType.ACTIVATE_PREDEFINED_RULES


@ie
class DeactivatePredefinedRules(UTF8String):
    """Deactivate Predefined Rules, §8.2.73."""

    TYPE = IEType.DEACTIVATE_PREDEFINED_RULES


@ie
class FramedRoute(UTF8String):
    """Framed-Route, §8.2.109 (RFC 2865 text)."""

    TYPE = IEType.FRAMED_ROUTE


@ie
class FramedIPv6Route(UTF8String):
    """Framed-IPv6-Route, §8.2.111 (RFC 3162 text)."""

    TYPE = IEType.FRAMED_IPV6_ROUTE


class FlowDirection(IntEnum):
    """Flow Direction of Flow Information, §8.2.61."""

    UNSPECIFIED = 0
    DOWNLINK = 1
    UPLINK = 2
    BIDIRECTIONAL = 3


@ie
class ForwardingPolicy(IE):
    """Forwarding Policy, §8.2.23: a policy identifier configured in the UP function."""

    TYPE = IEType.FORWARDING_POLICY
    identifier: bytes

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        n = data[pos]
        _need(cls, data, pos + 1, end, n)
        return cls(bytes(data[pos + 1 : end]))

    def encode_payload(self) -> bytes:
        if len(self.identifier) > 255:
            raise LocalProtocolError("ForwardingPolicy: identifier over 255 octets")
        return bytes((len(self.identifier),)) + self.identifier


class RedirectAddressType(IntEnum):
    """Redirect Address Type, §8.2.20."""

    IPV4 = 0
    IPV6 = 1
    URL = 2
    SIP_URI = 3
    IPV4_AND_IPV6 = 4


@ie
class RedirectInformation(IE):
    """Redirect Information, §8.2.20. ``other_server_address`` is used with
    IPV4_AND_IPV6 (the IPv6 one)."""

    TYPE = IEType.REDIRECT_INFORMATION
    address_type: RedirectAddressType
    server_address: str
    other_server_address: str | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 3)
        kind = data[pos] & 0x0F
        n = (data[pos + 1] << 8) | data[pos + 2]
        p = pos + 3
        _at_least(cls, p, end, n)
        server = data[p : p + n].decode("utf-8", "surrogateescape")
        p += n
        other = None
        if p < end:
            _at_least(cls, p, end, 2)
            m = (data[p] << 8) | data[p + 1]
            _need(cls, data, p + 2, end, m)
            other = data[p + 2 : end].decode("utf-8", "surrogateescape")
        kind_value = RedirectAddressType._value2member_map_.get(kind, kind)
        return cls(kind_value, server, other)  # type: ignore[arg-type]

    def encode_payload(self) -> bytes:
        server = self.server_address.encode("utf-8", "surrogateescape")
        out = bytes((self.address_type & 0x0F,)) + len(server).to_bytes(2, "big") + server
        if self.other_server_address is not None:
            other = self.other_server_address.encode("utf-8", "surrogateescape")
            out += len(other).to_bytes(2, "big") + other
        return out


@ie
class HeaderEnrichment(IE):
    """Header Enrichment, §8.2.67: an HTTP header (type 0) name and value to insert."""

    TYPE = IEType.HEADER_ENRICHMENT
    name: bytes
    value: bytes
    header_type: int = 0

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 2)
        kind = data[pos] & 0x1F
        n = data[pos + 1]
        p = pos + 2
        _at_least(cls, p, end, n + 1)
        name = bytes(data[p : p + n])
        p += n
        m = data[p]
        _need(cls, data, p + 1, end, m)
        return cls(name, bytes(data[p + 1 : end]), kind)

    def encode_payload(self) -> bytes:
        if len(self.name) > 255 or len(self.value) > 255:
            raise LocalProtocolError("HeaderEnrichment: name and value are at most 255 octets")
        return bytes((self.header_type, len(self.name))) + self.name + bytes((len(self.value),)) + self.value


@ie
class EthernetPDUSessionInformation(IE):
    """Ethernet PDU Session Information, §8.2.102: ETHI flag."""

    TYPE = IEType.ETHERNET_PDU_SESSION_INFORMATION
    ethernet_indication: bool = True

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 1)
        return cls(bool(data[pos] & 0x01))

    def encode_payload(self) -> bytes:
        return b"\x01" if self.ethernet_indication else b"\x00"


@ie
class SNSSAI(IE):
    """S-NSSAI, §8.2.176: Slice/Service Type and Slice Differentiator."""

    TYPE = IEType.S_NSSAI
    sst: int
    sd: int = 0xFFFFFF  # "no SD value associated" (TS 23.003 §28.4.2)

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 4)
        return cls(data[pos], int.from_bytes(data[pos + 1 : end], "big"))

    def encode_payload(self) -> bytes:
        return bytes((self.sst,)) + self.sd.to_bytes(3, "big")
