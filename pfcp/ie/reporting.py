"""Usage measurement and reporting IEs: measurement methods, triggers,
volumes, and the Usage Report, Downlink Data Report and Error Indication
Report grouped IEs."""

from __future__ import annotations

from dataclasses import field
from enum import IntEnum, IntFlag
from typing import Self

from ..constants import Cause, IEType
from ..errors import DecodeError, LocalProtocolError
from .addressing import FTEID, NetworkInstance, UEIPAddress
from .base import IE, Flags, GroupedIE, M, _at_least, grouped, ie, ie_field
from .ids import (
    PDRID,
    URRID,
    URSEQN,
    DurationMeasurement,
    EndTime,
    QueryURRReference,
    StartTime,
    TimeOfFirstPacket,
    TimeOfLastPacket,
)
from .values import ApplicationID, DownlinkDataServiceInformation

__all__ = [
    "AdditionalUsageReportsInformation",
    "ApplicationDetectionInformation",
    "DLBufferingDuration",
    "DLBufferingSuggestedPacketCount",
    "DownlinkDataReport",
    "DroppedDLTrafficThreshold",
    "ErrorIndicationReport",
    "FailedRuleID",
    "MeasurementInformation",
    "MeasurementInformationFlags",
    "MeasurementMethod",
    "MeasurementMethodFlags",
    "QueryURR",
    "ReportType",
    "ReportTypeFlags",
    "ReportingTriggers",
    "ReportingTriggersFlags",
    "RuleIDType",
    "SubsequentVolumeQuota",
    "SubsequentVolumeThreshold",
    "UsageInformation",
    "UsageInformationFlags",
    "UsageReportSDR",
    "UsageReportSMR",
    "UsageReportSRR",
    "UsageReportTrigger",
    "UsageReportTriggerFlags",
    "VolumeMeasurement",
    "VolumeQuota",
    "VolumeThreshold",
]


class MeasurementMethodFlags(IntFlag):
    """Measurement Method, §8.2.40."""

    DURAT = 0x01
    VOLUM = 0x02
    EVENT = 0x04


@ie
class MeasurementMethod(Flags):
    """Measurement Method, §8.2.40."""

    TYPE = IEType.MEASUREMENT_METHOD
    FLAGS = MeasurementMethodFlags
    value: MeasurementMethodFlags
    octets: int = field(default=1, compare=False)


class ReportingTriggersFlags(IntFlag):
    """Reporting Triggers, §8.2.19 (octets 5, 6, 7 = bits 0-7, 8-15, 16-23)."""

    PERIO = 1 << 0
    VOLTH = 1 << 1
    TIMTH = 1 << 2
    QUHTI = 1 << 3
    START = 1 << 4
    STOPT = 1 << 5
    DROTH = 1 << 6
    LIUSA = 1 << 7
    VOLQU = 1 << 8
    TIMQU = 1 << 9
    ENVCL = 1 << 10
    MACAR = 1 << 11
    EVETH = 1 << 12
    EVEQU = 1 << 13
    IPMJL = 1 << 14
    QUVTI = 1 << 15
    REEMR = 1 << 16
    UPINT = 1 << 17


@ie
class ReportingTriggers(Flags):
    """Reporting Triggers, §8.2.19: three octets since Rel-16."""

    TYPE = IEType.REPORTING_TRIGGERS
    FLAGS = ReportingTriggersFlags
    value: ReportingTriggersFlags
    octets: int = field(default=3, compare=False)


class UsageReportTriggerFlags(IntFlag):
    """Usage Report Trigger, §8.2.41."""

    PERIO = 1 << 0
    VOLTH = 1 << 1
    TIMTH = 1 << 2
    QUHTI = 1 << 3
    START = 1 << 4
    STOPT = 1 << 5
    DROTH = 1 << 6
    IMMER = 1 << 7
    VOLQU = 1 << 8
    TIMQU = 1 << 9
    LIUSA = 1 << 10
    TERMR = 1 << 11
    MONIT = 1 << 12
    ENVCL = 1 << 13
    MACAR = 1 << 14
    EVETH = 1 << 15
    EVEQU = 1 << 16
    TEBUR = 1 << 17
    IPMJL = 1 << 18
    QUVTI = 1 << 19
    EMRRE = 1 << 20
    UPINT = 1 << 21


@ie
class UsageReportTrigger(Flags):
    """Usage Report Trigger, §8.2.41: why a usage report was sent."""

    TYPE = IEType.USAGE_REPORT_TRIGGER
    FLAGS = UsageReportTriggerFlags
    value: UsageReportTriggerFlags
    octets: int = field(default=3, compare=False)


class ReportTypeFlags(IntFlag):
    """Report Type, §8.2.21."""

    DLDR = 0x01
    USAR = 0x02
    ERIR = 0x04
    UPIR = 0x08
    TMIR = 0x10
    SESR = 0x20
    UISR = 0x40


@ie
class ReportType(Flags):
    """Report Type, §8.2.21: what a Session Report Request reports."""

    TYPE = IEType.REPORT_TYPE
    FLAGS = ReportTypeFlags
    value: ReportTypeFlags
    octets: int = field(default=1, compare=False)


class UsageInformationFlags(IntFlag):
    """Usage Information, §8.2.60."""

    BEF = 0x01
    AFT = 0x02
    UAE = 0x04
    UBE = 0x08


@ie
class UsageInformation(Flags):
    """Usage Information, §8.2.59."""

    TYPE = IEType.USAGE_INFORMATION
    FLAGS = UsageInformationFlags
    value: UsageInformationFlags
    octets: int = field(default=1, compare=False)


class MeasurementInformationFlags(IntFlag):
    """Measurement Information, §8.2.68."""

    MBQE = 0x01
    INAM = 0x02
    RADI = 0x04
    ISTM = 0x08
    MNOP = 0x10
    SSPOC = 0x20
    ASPOC = 0x40
    CIAM = 0x80


@ie
class MeasurementInformation(Flags):
    """Measurement Information, §8.2.68."""

    TYPE = IEType.MEASUREMENT_INFORMATION
    FLAGS = MeasurementInformationFlags
    value: MeasurementInformationFlags
    octets: int = field(default=1, compare=False)


class _Volumes(IE):
    """Flags TOVOL/ULVOL/DLVOL then the 8-octet volumes present (§8.2.13)."""

    __slots__ = ()
    total: int | None
    uplink: int | None
    downlink: int | None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        flags = data[pos]
        p = pos + 1
        values: list[int | None] = []
        for bit in (0x01, 0x02, 0x04):
            if flags & bit:
                _at_least(cls, p, end, 8)
                values.append(int.from_bytes(data[p : p + 8], "big"))
                p += 8
            else:
                values.append(None)
        if p != end:
            raise DecodeError(f"{cls.__name__}: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(*values)

    def encode_payload(self) -> bytes:
        flags = 0
        out = bytearray()
        for bit, value in ((0x01, self.total), (0x02, self.uplink), (0x04, self.downlink)):
            if value is not None:
                flags |= bit
                out += value.to_bytes(8, "big")
        return bytes((flags,)) + bytes(out)


@ie
class VolumeThreshold(_Volumes):
    """Volume Threshold, §8.2.13, in octets."""

    TYPE = IEType.VOLUME_THRESHOLD
    total: int | None = None
    uplink: int | None = None
    downlink: int | None = None


@ie
class VolumeQuota(_Volumes):
    """Volume Quota, §8.2.50, in octets."""

    TYPE = IEType.VOLUME_QUOTA
    total: int | None = None
    uplink: int | None = None
    downlink: int | None = None


@ie
class SubsequentVolumeThreshold(_Volumes):
    """Subsequent Volume Threshold, §8.2.16, in octets."""

    TYPE = IEType.SUBSEQUENT_VOLUME_THRESHOLD
    total: int | None = None
    uplink: int | None = None
    downlink: int | None = None


@ie
class SubsequentVolumeQuota(_Volumes):
    """Subsequent Volume Quota, §8.2.86, in octets."""

    TYPE = IEType.SUBSEQUENT_VOLUME_QUOTA
    total: int | None = None
    uplink: int | None = None
    downlink: int | None = None


@ie
class VolumeMeasurement(IE):
    """Volume Measurement, §8.2.44: octets and (MNOP) packets measured."""

    TYPE = IEType.VOLUME_MEASUREMENT
    total_volume: int | None = None
    uplink_volume: int | None = None
    downlink_volume: int | None = None
    total_packets: int | None = None
    uplink_packets: int | None = None
    downlink_packets: int | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        flags = data[pos]
        p = pos + 1
        values: list[int | None] = []
        for bit in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20):
            if flags & bit:
                _at_least(cls, p, end, 8)
                values.append(int.from_bytes(data[p : p + 8], "big"))
                p += 8
            else:
                values.append(None)
        if p != end:
            raise DecodeError(f"VolumeMeasurement: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(*values)

    def encode_payload(self) -> bytes:
        flags = 0
        out = bytearray()
        fields = (
            self.total_volume,
            self.uplink_volume,
            self.downlink_volume,
            self.total_packets,
            self.uplink_packets,
            self.downlink_packets,
        )
        for i, value in enumerate(fields):
            if value is not None:
                flags |= 1 << i
                out += value.to_bytes(8, "big")
        return bytes((flags,)) + bytes(out)


@ie
class DroppedDLTrafficThreshold(IE):
    """Dropped DL Traffic Threshold, §8.2.49: packets (DLPA) and/or octets (DLBY)."""

    TYPE = IEType.DROPPED_DL_TRAFFIC_THRESHOLD
    packets: int | None = None
    octets: int | None = None

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        flags = data[pos]
        p = pos + 1
        packets = octets = None
        if flags & 0x01:
            _at_least(cls, p, end, 8)
            packets = int.from_bytes(data[p : p + 8], "big")
            p += 8
        if flags & 0x02:
            _at_least(cls, p, end, 8)
            octets = int.from_bytes(data[p : p + 8], "big")
            p += 8
        if p != end:
            raise DecodeError(f"DroppedDLTrafficThreshold: {end - p} trailing octets", Cause.INVALID_LENGTH)
        return cls(packets, octets)

    def encode_payload(self) -> bytes:
        flags = (0x01 if self.packets is not None else 0) | (0x02 if self.octets is not None else 0)
        out = bytes((flags,))
        if self.packets is not None:
            out += self.packets.to_bytes(8, "big")
        if self.octets is not None:
            out += self.octets.to_bytes(8, "big")
        return out


@ie
class DLBufferingDuration(IE):
    """DL Buffering Duration, §8.2.29 (Timer format: unit bits 8-6, value 5-1)."""

    TYPE = IEType.DL_BUFFERING_DURATION
    unit: int
    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 1:
            raise DecodeError("DLBufferingDuration: one octet expected", Cause.INVALID_LENGTH)
        return cls(data[pos] >> 5, data[pos] & 0x1F)

    def encode_payload(self) -> bytes:
        if not (0 <= self.unit <= 7 and 0 <= self.value <= 31):
            raise LocalProtocolError("DLBufferingDuration: unit 0..7, value 0..31")
        return bytes((self.unit << 5 | self.value,))


@ie
class DLBufferingSuggestedPacketCount(IE):
    """DL Buffering Suggested Packet Count, §8.2.30: one or two octets."""

    TYPE = IEType.DL_BUFFERING_SUGGESTED_PACKET_COUNT
    value: int
    octets: int = field(default=1, compare=False)

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos not in (1, 2):
            raise DecodeError("DLBufferingSuggestedPacketCount: 1 or 2 octets expected", Cause.INVALID_LENGTH)
        return cls(int.from_bytes(data[pos:end], "big"), end - pos)

    def encode_payload(self) -> bytes:
        size = max(self.octets, 1 if self.value < 256 else 2)
        return self.value.to_bytes(size, "big")


class RuleIDType(IntEnum):
    """Rule ID Type of Failed Rule ID, §8.2.80."""

    PDR = 0
    FAR = 1
    QER = 2
    URR = 3
    BAR = 4
    MAR = 5
    SRR = 6


_RULE_ID_SIZE = {0: 2, 1: 4, 2: 4, 3: 4, 4: 1, 5: 2, 6: 1}


@ie
class FailedRuleID(IE):
    """Failed Rule ID, §8.2.80: the rule whose creation or change failed."""

    TYPE = IEType.FAILED_RULE_ID
    rule_type: RuleIDType
    rule_id: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 2)
        kind = data[pos] & 0x1F
        size = _RULE_ID_SIZE.get(kind)
        if size is None or end - pos - 1 != size:
            raise DecodeError(f"FailedRuleID: bad rule type {kind} or length", Cause.INVALID_LENGTH)
        return cls(RuleIDType(kind), int.from_bytes(data[pos + 1 : end], "big"))

    def encode_payload(self) -> bytes:
        return bytes((self.rule_type,)) + self.rule_id.to_bytes(_RULE_ID_SIZE[int(self.rule_type)], "big")


@ie
class AdditionalUsageReportsInformation(IE):
    """Additional Usage Reports Information, §8.2.91: how many more usage
    reports will follow (15 bits), or AURI, "more, number not given"."""

    TYPE = IEType.ADDITIONAL_USAGE_REPORTS_INFORMATION
    number_of_reports: int = 0
    auri: bool = False

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 2:
            raise DecodeError("AdditionalUsageReportsInformation: two octets expected", Cause.INVALID_LENGTH)
        raw = (data[pos] << 8) | data[pos + 1]
        return cls(raw & 0x7FFF, bool(raw & 0x8000))

    def encode_payload(self) -> bytes:
        if not 0 <= self.number_of_reports <= 0x7FFF:
            raise LocalProtocolError("AdditionalUsageReportsInformation: number of reports is 15 bits")
        return ((0x8000 if self.auri else 0) | self.number_of_reports).to_bytes(2, "big")


@grouped
class QueryURR(GroupedIE):
    """Query URR, Table 7.5.4.10-1: ask for an immediate usage report."""

    TYPE = IEType.QUERY_URR
    urr_id: URRID = ie_field(URRID, M)


@grouped
class ApplicationDetectionInformation(GroupedIE):
    """Application Detection Information, Table 7.5.8.3-2."""

    TYPE = IEType.APPLICATION_DETECTION_INFORMATION
    application_id: ApplicationID = ie_field(ApplicationID, M)
    pdr_id: PDRID | None = ie_field(PDRID)


@grouped
class UsageReportSMR(GroupedIE):
    """Usage Report in a Session Modification Response, Table 7.5.5.2-1."""

    TYPE = IEType.USAGE_REPORT_SMR
    urr_id: URRID = ie_field(URRID, M)
    ur_seqn: URSEQN = ie_field(URSEQN, M)
    usage_report_trigger: UsageReportTrigger = ie_field(UsageReportTrigger, M)
    start_time: StartTime | None = ie_field(StartTime)
    end_time: EndTime | None = ie_field(EndTime)
    volume_measurement: VolumeMeasurement | None = ie_field(VolumeMeasurement)
    duration_measurement: DurationMeasurement | None = ie_field(DurationMeasurement)
    time_of_first_packet: TimeOfFirstPacket | None = ie_field(TimeOfFirstPacket)
    time_of_last_packet: TimeOfLastPacket | None = ie_field(TimeOfLastPacket)
    usage_information: UsageInformation | None = ie_field(UsageInformation)
    query_urr_reference: QueryURRReference | None = ie_field(QueryURRReference)


@grouped
class UsageReportSDR(GroupedIE):
    """Usage Report in a Session Deletion Response, Table 7.5.7.2-1."""

    TYPE = IEType.USAGE_REPORT_SDR
    urr_id: URRID = ie_field(URRID, M)
    ur_seqn: URSEQN = ie_field(URSEQN, M)
    usage_report_trigger: UsageReportTrigger = ie_field(UsageReportTrigger, M)
    start_time: StartTime | None = ie_field(StartTime)
    end_time: EndTime | None = ie_field(EndTime)
    volume_measurement: VolumeMeasurement | None = ie_field(VolumeMeasurement)
    duration_measurement: DurationMeasurement | None = ie_field(DurationMeasurement)
    time_of_first_packet: TimeOfFirstPacket | None = ie_field(TimeOfFirstPacket)
    time_of_last_packet: TimeOfLastPacket | None = ie_field(TimeOfLastPacket)
    usage_information: UsageInformation | None = ie_field(UsageInformation)


@grouped
class UsageReportSRR(GroupedIE):
    """Usage Report in a Session Report Request, Table 7.5.8.3-1."""

    TYPE = IEType.USAGE_REPORT_SRR
    urr_id: URRID = ie_field(URRID, M)
    ur_seqn: URSEQN = ie_field(URSEQN, M)
    usage_report_trigger: UsageReportTrigger = ie_field(UsageReportTrigger, M)
    start_time: StartTime | None = ie_field(StartTime)
    end_time: EndTime | None = ie_field(EndTime)
    volume_measurement: VolumeMeasurement | None = ie_field(VolumeMeasurement)
    duration_measurement: DurationMeasurement | None = ie_field(DurationMeasurement)
    application_detection_information: ApplicationDetectionInformation | None = ie_field(
        ApplicationDetectionInformation
    )
    ue_ip_address: UEIPAddress | None = ie_field(UEIPAddress)
    network_instance: NetworkInstance | None = ie_field(NetworkInstance)
    time_of_first_packet: TimeOfFirstPacket | None = ie_field(TimeOfFirstPacket)
    time_of_last_packet: TimeOfLastPacket | None = ie_field(TimeOfLastPacket)
    usage_information: UsageInformation | None = ie_field(UsageInformation)
    query_urr_reference: QueryURRReference | None = ie_field(QueryURRReference)


@grouped
class DownlinkDataReport(GroupedIE):
    """Downlink Data Report, Table 7.5.8.2-1: downlink data arrived for a
    buffering PDR."""

    TYPE = IEType.DOWNLINK_DATA_REPORT
    pdr_id: tuple[PDRID, ...] = ie_field(PDRID, M, multiple=True)
    downlink_data_service_information: tuple[DownlinkDataServiceInformation, ...] = ie_field(
        DownlinkDataServiceInformation, multiple=True
    )


@grouped
class ErrorIndicationReport(GroupedIE):
    """Error Indication Report, Table 7.5.8.4-1: a GTP-U Error Indication
    was received for these remote F-TEIDs."""

    TYPE = IEType.ERROR_INDICATION_REPORT
    remote_f_teid: tuple[FTEID, ...] = ie_field(FTEID, M, multiple=True)
