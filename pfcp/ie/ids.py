"""Rule identifiers and plain numeric IEs: one line of table per IE.

Each class names its clause of TS 29.244 §8.2; the layout (U8/U16/U32) is the
whole definition. Times that the spec encodes "as the NTP timestamp format"
(§8.2.14-style 32-bit seconds since 1900) stay integers here; see
:mod:`pfcp.ie.node` for conversions on Recovery Time Stamp.
"""

from __future__ import annotations

from ..constants import IEType
from .base import U8, U16, U32, ie

__all__ = [
    "ActivationTime",
    "AveragingWindow",
    "BARID",
    "DeactivationTime",
    "DownlinkDataNotificationDelay",
    "DurationMeasurement",
    "EndTime",
    "EthernetInactivityTimer",
    "EventQuota",
    "EventThreshold",
    "FARID",
    "FramedRouting",
    "InactivityDetectionTime",
    "LinkedURRID",
    "MARID",
    "MeasurementPeriod",
    "Metric",
    "MonitoringTime",
    "NumberOfReports",
    "OffendingIE",
    "PDRID",
    "Precedence",
    "QERCorrelationID",
    "QERID",
    "QueryURRReference",
    "QuotaHoldingTime",
    "QuotaValidityTime",
    "RATType",
    "SRRID",
    "SequenceNumber",
    "StartTime",
    "SubsequentEventQuota",
    "SubsequentEventThreshold",
    "SubsequentTimeQuota",
    "SubsequentTimeThreshold",
    "SuggestedBufferingPacketsCount",
    "TimeOfFirstPacket",
    "TimeOfLastPacket",
    "TimeQuota",
    "TimeThreshold",
    "TrafficEndpointID",
    "URRID",
    "URSEQN",
    "UserPlaneInactivityTimer",
]


@ie
class PDRID(U16):
    """PDR ID, §8.2.36: rule identifier, unique within a session."""

    TYPE = IEType.PDR_ID


@ie
class FARID(U32):
    """FAR ID, §8.2.74. Values with the top bit set are predefined FARs."""

    TYPE = IEType.FAR_ID


@ie
class QERID(U32):
    """QER ID, §8.2.75."""

    TYPE = IEType.QER_ID


@ie
class URRID(U32):
    """URR ID, §8.2.54."""

    TYPE = IEType.URR_ID


@ie
class LinkedURRID(U32):
    """Linked URR ID, §8.2.55."""

    TYPE = IEType.LINKED_URR_ID


@ie
class BARID(U8):
    """BAR ID, §8.2.57."""

    TYPE = IEType.BAR_ID


@ie
class MARID(U16):
    """MAR ID, §8.2.123."""

    TYPE = IEType.MAR_ID


@ie
class SRRID(U8):
    """SRR ID, §8.2.151."""

    TYPE = IEType.SRR_ID


@ie
class TrafficEndpointID(U8):
    """Traffic Endpoint ID, §8.2.92."""

    TYPE = IEType.TRAFFIC_ENDPOINT_ID


@ie
class Precedence(U32):
    """Precedence, §8.2.11: lower values match first."""

    TYPE = IEType.PRECEDENCE


@ie
class QERCorrelationID(U32):
    """QER Correlation ID, §8.2.10."""

    TYPE = IEType.QER_CORRELATION_ID


@ie
class OffendingIE(U16):
    """Offending IE, §8.2.22: the type of the IE that caused a rejection."""

    TYPE = IEType.OFFENDING_IE


@ie
class SequenceNumber(U32):
    """Sequence Number, §8.2.33 (of Load/Overload Control Information)."""

    TYPE = IEType.SEQUENCE_NUMBER


@ie
class Metric(U8):
    """Metric, §8.2.34: load or overload reduction in percent (0..100)."""

    TYPE = IEType.METRIC


@ie
class TimeThreshold(U32):
    """Time Threshold, §8.2.14, in seconds."""

    TYPE = IEType.TIME_THRESHOLD


@ie
class MonitoringTime(U32):
    """Monitoring Time, §8.2.15: NTP seconds."""

    TYPE = IEType.MONITORING_TIME


@ie
class SubsequentTimeThreshold(U32):
    """Subsequent Time Threshold, §8.2.17, in seconds."""

    TYPE = IEType.SUBSEQUENT_TIME_THRESHOLD


@ie
class InactivityDetectionTime(U32):
    """Inactivity Detection Time, §8.2.18, in seconds."""

    TYPE = IEType.INACTIVITY_DETECTION_TIME


@ie
class MeasurementPeriod(U32):
    """Measurement Period, §8.2.42, in seconds."""

    TYPE = IEType.MEASUREMENT_PERIOD


@ie
class DurationMeasurement(U32):
    """Duration Measurement, §8.2.45, in seconds."""

    TYPE = IEType.DURATION_MEASUREMENT


@ie
class TimeOfFirstPacket(U32):
    """Time of First Packet, §8.2.46: NTP seconds."""

    TYPE = IEType.TIME_OF_FIRST_PACKET


@ie
class TimeOfLastPacket(U32):
    """Time of Last Packet, §8.2.47: NTP seconds."""

    TYPE = IEType.TIME_OF_LAST_PACKET


@ie
class QuotaHoldingTime(U32):
    """Quota Holding Time, §8.2.48, in seconds."""

    TYPE = IEType.QUOTA_HOLDING_TIME


@ie
class TimeQuota(U32):
    """Time Quota, §8.2.51, in seconds."""

    TYPE = IEType.TIME_QUOTA


@ie
class StartTime(U32):
    """Start Time, §8.2.52: NTP seconds."""

    TYPE = IEType.START_TIME


@ie
class EndTime(U32):
    """End Time, §8.2.53: NTP seconds."""

    TYPE = IEType.END_TIME


@ie
class URSEQN(U32):
    """UR-SEQN, §8.2.71: usage report sequence number of a URR."""

    TYPE = IEType.UR_SEQN


@ie
class UserPlaneInactivityTimer(U32):
    """User Plane Inactivity Timer, §8.2.83, in seconds."""

    TYPE = IEType.USER_PLANE_INACTIVITY_TIMER


@ie
class SubsequentTimeQuota(U32):
    """Subsequent Time Quota, §8.2.87, in seconds."""

    TYPE = IEType.SUBSEQUENT_TIME_QUOTA


@ie
class QueryURRReference(U32):
    """Query URR Reference, §8.2.90."""

    TYPE = IEType.QUERY_URR_REFERENCE


@ie
class DownlinkDataNotificationDelay(U8):
    """Downlink Data Notification Delay, §8.2.28, in multiples of 50 ms."""

    TYPE = IEType.DOWNLINK_DATA_NOTIFICATION_DELAY


@ie
class SuggestedBufferingPacketsCount(U8):
    """Suggested Buffering Packets Count, §8.2.100."""

    TYPE = IEType.SUGGESTED_BUFFERING_PACKETS_COUNT


@ie
class EthernetInactivityTimer(U32):
    """Ethernet Inactivity Timer, §8.2.105, in seconds."""

    TYPE = IEType.ETHERNET_INACTIVITY_TIMER


@ie
class EventQuota(U32):
    """Event Quota, §8.2.112."""

    TYPE = IEType.EVENT_QUOTA


@ie
class EventThreshold(U32):
    """Event Threshold, §8.2.113."""

    TYPE = IEType.EVENT_THRESHOLD


@ie
class SubsequentEventQuota(U32):
    """Subsequent Event Quota, §8.2.106."""

    TYPE = IEType.SUBSEQUENT_EVENT_QUOTA


@ie
class SubsequentEventThreshold(U32):
    """Subsequent Event Threshold, §8.2.107."""

    TYPE = IEType.SUBSEQUENT_EVENT_THRESHOLD


@ie
class FramedRouting(U32):
    """Framed-Routing, §8.2.110 (RFC 2865 values)."""

    TYPE = IEType.FRAMED_ROUTING


@ie
class AveragingWindow(U32):
    """Averaging Window, §8.2.115, in milliseconds."""

    TYPE = IEType.AVERAGING_WINDOW


@ie
class ActivationTime(U32):
    """Activation Time, §8.2.121: NTP seconds."""

    TYPE = IEType.ACTIVATION_TIME


@ie
class DeactivationTime(U32):
    """Deactivation Time, §8.2.122: NTP seconds."""

    TYPE = IEType.DEACTIVATION_TIME


@ie
class QuotaValidityTime(U32):
    """Quota Validity Time, §8.2.132, in seconds."""

    TYPE = IEType.QUOTA_VALIDITY_TIME


@ie
class NumberOfReports(U16):
    """Number of Reports, §8.2.133."""

    TYPE = IEType.NUMBER_OF_REPORTS


@ie
class RATType(U8):
    """RAT Type, §8.2.186 (TS 29.274 values)."""

    TYPE = IEType.RAT_TYPE
