"""Node-level IEs: recovery, features, timers, load/overload, node reports,
FQ-CSIDs, and the subscriber and trace identities of a session."""

from __future__ import annotations

from dataclasses import field
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address, IPv6Address
from typing import Self

from ..constants import Cause, IEType
from ..errors import DecodeError, LocalProtocolError
from .addressing import CPPFCPEntityIPAddress, RemoteGTPUPeer
from .base import IE, U32, Flags, GroupedIE, M, O, _at_least, _need, grouped, ie, ie_field
from .ids import Metric, SequenceNumber

__all__ = [
    "NTP_UNIX_OFFSET",
    "CPFeatures",
    "CPFunctionFeatures",
    "FQCSID",
    "GracefulReleasePeriod",
    "LoadControlInformation",
    "NodeReportType",
    "NodeReportTypeFlags",
    "OCIFlags",
    "OCIFlagsValue",
    "OverloadControlInformation",
    "PFCPAssociationReleaseRequest",
    "PFCPAssociationReleaseRequestFlags",
    "PFCPSessionRetentionInformation",
    "RecoveryTimeStamp",
    "Timer",
    "TimerUnit",
    "TraceInformation",
    "UPFeatures",
    "UPFunctionFeatures",
    "UserID",
    "UserPlanePathFailureReport",
    "UserPlanePathRecoveryReport",
]

#: Seconds between the NTP epoch (1900) and the Unix epoch (1970).
NTP_UNIX_OFFSET = 2_208_988_800


@ie
class RecoveryTimeStamp(U32):
    """Recovery Time Stamp, §8.2.65: when the node last started, in NTP
    seconds (32 bits since 1900-01-01, as IETF RFC 5905 and §8.2.65 say)."""

    TYPE = IEType.RECOVERY_TIME_STAMP

    @classmethod
    def from_unix(cls, seconds: float) -> RecoveryTimeStamp:
        """Build from a Unix time (seconds since 1970)."""
        return cls((int(seconds) + NTP_UNIX_OFFSET) & 0xFFFFFFFF)

    def to_unix(self) -> int:
        """The Unix time (seconds since 1970) this stamp stands for."""
        return self.value - NTP_UNIX_OFFSET


class UPFeatures(IntFlag):
    """UP Function Features, §8.2.25 (octet 5 = bits 0-7, octet 6 = 8-15, ...)."""

    BUCP = 1 << 0
    DDND = 1 << 1
    DLBD = 1 << 2
    TRST = 1 << 3
    FTUP = 1 << 4
    PFDM = 1 << 5
    HEEU = 1 << 6
    TREU = 1 << 7
    EMPU = 1 << 8
    PDIU = 1 << 9
    UDBC = 1 << 10
    QUOAC = 1 << 11
    TRACE = 1 << 12
    FRRT = 1 << 13
    PFDE = 1 << 14
    EPFAR = 1 << 15
    DPDRA = 1 << 16
    ADPDP = 1 << 17
    UEIP = 1 << 18
    SSET = 1 << 19
    MNOP = 1 << 20
    MTE = 1 << 21
    BUNDL = 1 << 22
    GCOM = 1 << 23
    MPAS = 1 << 24
    RTTL = 1 << 25
    VTIME = 1 << 26
    NORP = 1 << 27
    IPTV = 1 << 28
    IP6PL = 1 << 29
    TSCU = 1 << 30
    MPTCP = 1 << 31
    ATSSS_LL = 1 << 32
    QFQM = 1 << 33
    GPQM = 1 << 34
    MT_EDT = 1 << 35
    CIOT = 1 << 36
    ETHAR = 1 << 37
    DDDS = 1 << 38
    RDS = 1 << 39
    RTTWP = 1 << 40
    QUASF = 1 << 41
    NSPOC = 1 << 42


@ie
class UPFunctionFeatures(Flags):
    """UP Function Features, §8.2.25: what the UP function supports."""

    TYPE = IEType.UP_FUNCTION_FEATURES
    FLAGS = UPFeatures
    MIN_OCTETS = 2
    value: UPFeatures
    octets: int = field(default=2, compare=False)


class CPFeatures(IntFlag):
    """CP Function Features, §8.2.58."""

    LOAD = 1 << 0
    OVRL = 1 << 1
    EPFAR = 1 << 2
    SSET = 1 << 3
    BUNDL = 1 << 4
    MPAS = 1 << 5
    ARDR = 1 << 6
    UIAUR = 1 << 7
    PSUCC = 1 << 8
    RPGUR = 1 << 9


@ie
class CPFunctionFeatures(Flags):
    """CP Function Features, §8.2.58: what the CP function supports."""

    TYPE = IEType.CP_FUNCTION_FEATURES
    FLAGS = CPFeatures
    value: CPFeatures
    octets: int = field(default=1, compare=False)


class TimerUnit(IntEnum):
    """Timer unit of Timer-format IEs, §8.2.35."""

    SECONDS_2 = 0
    MINUTES_1 = 1
    MINUTES_10 = 2
    HOURS_1 = 3
    HOURS_10 = 4
    INFINITE = 7


_UNIT_SECONDS = {0: 2, 1: 60, 2: 600, 3: 3600, 4: 36000, 5: 60, 6: 60}


class _TimerLayout(IE):
    """Unit in bits 8-6, value in bits 5-1 (§8.2.35)."""

    __slots__ = ()
    unit: TimerUnit
    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 1)
        unit = data[pos] >> 5
        return cls(TimerUnit._value2member_map_.get(unit, unit), data[pos] & 0x1F)  # type: ignore[call-arg]

    def encode_payload(self) -> bytes:
        if not 0 <= self.value <= 31:
            raise LocalProtocolError(f"timer value {self.value} is not 0..31")
        return bytes(((self.unit & 0x07) << 5 | self.value,))

    @property
    def seconds(self) -> float:
        """The duration in seconds; infinite for unit 7."""
        if self.unit == TimerUnit.INFINITE:
            return float("inf")
        return float(_UNIT_SECONDS[int(self.unit)] * self.value)


@ie
class Timer(_TimerLayout):
    """Timer, §8.2.35 (of Overload Control Information)."""

    TYPE = IEType.TIMER
    unit: TimerUnit
    value: int


@ie
class GracefulReleasePeriod(_TimerLayout):
    """Graceful Release Period, §8.2.78 (Timer format)."""

    TYPE = IEType.GRACEFUL_RELEASE_PERIOD
    unit: TimerUnit
    value: int


class OCIFlagsValue(IntFlag):
    """OCI Flags, §8.2.76."""

    AOCI = 0x01


@ie
class OCIFlags(Flags):
    """OCI Flags, §8.2.76."""

    TYPE = IEType.OCI_FLAGS
    FLAGS = OCIFlagsValue
    value: OCIFlagsValue
    octets: int = field(default=1, compare=False)


class PFCPAssociationReleaseRequestFlags(IntFlag):
    """PFCP Association Release Request, §8.2.77."""

    SARR = 0x01
    URSS = 0x02


@ie
class PFCPAssociationReleaseRequest(Flags):
    """PFCP Association Release Request, §8.2.77: the UP function asks the CP
    function to release the association (SARR)."""

    TYPE = IEType.ASSOCIATION_RELEASE_REQ
    FLAGS = PFCPAssociationReleaseRequestFlags
    value: PFCPAssociationReleaseRequestFlags
    octets: int = field(default=1, compare=False)


class NodeReportTypeFlags(IntFlag):
    """Node Report Type, §8.2.69."""

    UPFR = 0x01
    UPRR = 0x02
    CKDR = 0x04
    GPQR = 0x08
    PURR = 0x10
    VSR = 0x20


@ie
class NodeReportType(Flags):
    """Node Report Type, §8.2.69."""

    TYPE = IEType.NODE_REPORT_TYPE
    FLAGS = NodeReportTypeFlags
    value: NodeReportTypeFlags
    octets: int = field(default=1, compare=False)


@grouped
class LoadControlInformation(GroupedIE):
    """Load Control Information, Table 7.5.3.3-1."""

    TYPE = IEType.LOAD_CONTROL_INFORMATION
    sequence_number: SequenceNumber = ie_field(SequenceNumber, M)
    metric: Metric = ie_field(Metric, M)


@grouped
class OverloadControlInformation(GroupedIE):
    """Overload Control Information, Table 7.5.3.4-1."""

    TYPE = IEType.OVERLOAD_CONTROL_INFORMATION
    sequence_number: SequenceNumber = ie_field(SequenceNumber, M)
    metric: Metric = ie_field(Metric, M)
    timer: Timer = ie_field(Timer, M)
    oci_flags: OCIFlags | None = ie_field(OCIFlags)


@grouped
class UserPlanePathFailureReport(GroupedIE):
    """User Plane Path Failure Report, Table 7.4.5.1.2-1."""

    TYPE = IEType.USER_PLANE_PATH_FAILURE_REPORT
    remote_gtpu_peer: tuple[RemoteGTPUPeer, ...] = ie_field(RemoteGTPUPeer, M, multiple=True)


@grouped
class UserPlanePathRecoveryReport(GroupedIE):
    """User Plane Path Recovery Report, Table 7.4.5.1.3-1."""

    TYPE = IEType.USER_PLANE_PATH_RECOVERY_REPORT
    remote_gtpu_peer: RemoteGTPUPeer = ie_field(RemoteGTPUPeer, M)


@grouped
class PFCPSessionRetentionInformation(GroupedIE):
    """PFCP Session Retention Information within PFCP Association Setup Request,
    Table 7.4.4.1-2 (IE type 183, Rel-16): a restarted CP function that kept its
    state asks the UP function to retain the PFCP sessions it established with
    the CP PFCP entity addresses listed (§6.2.6.2.2); the IE may be empty."""

    TYPE = IEType.SESSION_RETENTION_INFORMATION
    cp_pfcp_entity_ip_address: tuple[CPPFCPEntityIPAddress, ...] = ie_field(CPPFCPEntityIPAddress, O, multiple=True)


@ie
class FQCSID(IE):
    """FQ-CSID, §8.2.43: a node (IPv4, IPv6, or MCC/MNC-based 32-bit id) and
    the PDN Connection Set Identifiers it allocated.

    ``node_type`` is the Rel-17 octet after the CSIDs (Spare | Node Type,
    Rel-17 Figure 8.2.43-1: 0 MME, 1 SGW-C, 2 PGW-C/SMF, 3 ePDG, 4 TWAN,
    5 PGW-U/SGW-U/UPF); None when absent, as Rel-15/16 peers send it.
    """

    TYPE = IEType.FQ_CSID
    node: IPv4Address | IPv6Address | int
    csids: tuple[int, ...] = ()
    node_type: int | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        kind = data[pos] >> 4
        count = data[pos] & 0x0F
        p = pos + 1
        node: IPv4Address | IPv6Address | int
        if kind == 0:
            _at_least(cls, p, end, 4)
            node = IPv4Address(data[p : p + 4])
            p += 4
        elif kind == 1:
            _at_least(cls, p, end, 16)
            node = IPv6Address(data[p : p + 16])
            p += 16
        elif kind == 2:
            _at_least(cls, p, end, 4)
            node = int.from_bytes(data[p : p + 4], "big")
            p += 4
        else:
            raise DecodeError(f"FQCSID: unknown node id type {kind}", Cause.MANDATORY_IE_INCORRECT, IEType.FQ_CSID)
        _at_least(cls, p, end, 2 * count)
        csids = tuple((data[p + 2 * i] << 8) | data[p + 2 * i + 1] for i in range(count))
        p += 2 * count
        if p == end:
            return cls(node, csids)
        _need(cls, data, p, end, 1)
        return cls(node, csids, data[p] & 0x0F)

    def encode_payload(self) -> bytes:
        if len(self.csids) > 15:
            raise LocalProtocolError("FQCSID: at most 15 CSIDs")
        if isinstance(self.node, IPv4Address):
            kind, raw = 0, self.node.packed
        elif isinstance(self.node, IPv6Address):
            kind, raw = 1, self.node.packed
        else:
            kind, raw = 2, self.node.to_bytes(4, "big")
        out = bytes(((kind << 4) | len(self.csids),)) + raw + b"".join(c.to_bytes(2, "big") for c in self.csids)
        if self.node_type is None:
            return out
        if not 0 <= self.node_type <= 15:
            raise LocalProtocolError(f"FQCSID: node type {self.node_type} is not 0..15")
        return out + bytes((self.node_type,))


def _tbcd_decode(raw: bytes) -> str:
    digits = []
    for octet in raw:
        digits.append(octet & 0x0F)
        digits.append(octet >> 4)
    if digits and digits[-1] == 0x0F:
        digits.pop()
    return "".join("0123456789*#abc"[d] if d < 15 else "f" for d in digits)


def _tbcd_encode(text: str) -> bytes:
    values = ["0123456789*#abc".index(ch) if ch != "f" else 15 for ch in text]
    if len(values) % 2:
        values.append(0x0F)
    return bytes(values[i] | (values[i + 1] << 4) for i in range(0, len(values), 2))


@ie
class UserID(IE):
    """User ID, §8.2.101: IMSI, IMEI and MSISDN (TBCD digits) and NAI."""

    TYPE = IEType.USER_ID
    imsi: str | None = None
    imei: str | None = None
    msisdn: str | None = None
    nai: str | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        flags = data[pos]
        p = pos + 1
        values: list[str | None] = []
        for bit, tbcd in ((0x01, True), (0x02, True), (0x04, True), (0x08, False)):
            if not flags & bit:
                values.append(None)
                continue
            _at_least(cls, p, end, 1)
            n = data[p]
            _at_least(cls, p + 1, end, n)
            raw = bytes(data[p + 1 : p + 1 + n])
            values.append(_tbcd_decode(raw) if tbcd else raw.decode("utf-8", "surrogateescape"))
            p += 1 + n
        if p != end:
            raise DecodeError(f"UserID: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(*values)

    def encode_payload(self) -> bytes:
        flags = 0
        out = bytearray()
        for bit, value, tbcd in (
            (0x01, self.imsi, True),
            (0x02, self.imei, True),
            (0x04, self.msisdn, True),
            (0x08, self.nai, False),
        ):
            if value is None:
                continue
            flags |= bit
            raw = _tbcd_encode(value) if tbcd else value.encode("utf-8", "surrogateescape")
            out.append(len(raw))
            out += raw
        return bytes((flags,)) + bytes(out)


@ie
class TraceInformation(IE):
    """Trace Information, §8.2.108: PLMN (MCC, MNC), Trace ID, triggering
    events, session trace depth, list of interfaces and the IP address of the
    trace collection entity (TS 32.422)."""

    TYPE = IEType.TRACE_INFORMATION
    mcc: str
    mnc: str
    trace_id: int
    triggering_events: bytes = b""
    session_trace_depth: int = 0
    interfaces: bytes = b""
    collection_entity: IPv4Address | IPv6Address | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 7)
        d = data
        digits = (d[pos] & 0x0F, d[pos] >> 4, d[pos + 1] & 0x0F, d[pos + 2] & 0x0F, d[pos + 2] >> 4)
        if max(digits) > 9 or 9 < d[pos + 1] >> 4 < 0x0F:  # TBCD digits; MNC digit 3 may be the filler F
            raise DecodeError("TraceInformation: MCC/MNC digits are not decimal", Cause.MANDATORY_IE_INCORRECT)
        mcc = f"{d[pos] & 0x0F}{d[pos] >> 4}{d[pos + 1] & 0x0F}"
        mnc3 = d[pos + 1] >> 4
        mnc = f"{d[pos + 2] & 0x0F}{d[pos + 2] >> 4}" + ("" if mnc3 == 0x0F else str(mnc3))
        trace_id = int.from_bytes(d[pos + 3 : pos + 6], "big")
        p = pos + 6
        n = d[p]
        _at_least(cls, p + 1, end, n + 2)
        events = bytes(d[p + 1 : p + 1 + n])
        p += 1 + n
        depth = d[p]
        n = d[p + 1]
        _at_least(cls, p + 2, end, n + 1)
        interfaces = bytes(d[p + 2 : p + 2 + n])
        p += 2 + n
        n = d[p]
        _need(cls, d, p + 1, end, n)
        raw = bytes(d[p + 1 : end])
        entity: IPv4Address | IPv6Address | None
        if n == 4:
            entity = IPv4Address(raw)
        elif n == 16:
            entity = IPv6Address(raw)
        elif n == 0:
            entity = None
        else:
            raise DecodeError("TraceInformation: collection entity is neither IPv4 nor IPv6", Cause.INVALID_LENGTH)
        return cls(mcc, mnc, trace_id, events, depth, interfaces, entity)

    def encode_payload(self) -> bytes:
        mcc = [int(c) for c in self.mcc]
        mnc = [int(c) for c in self.mnc]
        if len(mcc) != 3 or len(mnc) not in (2, 3):
            raise LocalProtocolError("TraceInformation: MCC has 3 digits and MNC 2 or 3")
        mnc3 = mnc[2] if len(mnc) == 3 else 0x0F
        out = bytearray((mcc[0] | mcc[1] << 4, mcc[2] | mnc3 << 4, mnc[0] | mnc[1] << 4))
        out += self.trace_id.to_bytes(3, "big")
        out += bytes((len(self.triggering_events),)) + self.triggering_events
        out += bytes((self.session_trace_depth, len(self.interfaces))) + self.interfaces
        raw = b"" if self.collection_entity is None else self.collection_entity.packed
        out += bytes((len(raw),)) + raw
        return bytes(out)
