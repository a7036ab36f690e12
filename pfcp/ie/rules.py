"""The rule IEs of a PFCP session: Create/Update/Remove PDR, FAR, QER, URR
and BAR, with PDI, Forwarding Parameters and Duplicating Parameters.

Each class is the spec's table, row by row (TS 29.244 §7.5.2 and §7.5.4);
presence M/C/O and multiplicity are declared per field and checked by the
generic walker in :mod:`pfcp.ie.base`.
"""

from __future__ import annotations

from ..constants import IEType
from .addressing import FTEID, NetworkInstance, OuterHeaderCreation, OuterHeaderRemoval, UEIPAddress
from .base import C, GroupedIE, M, O, grouped, ie_field
from .ids import (
    BARID,
    FARID,
    MARID,
    PDRID,
    QERID,
    URRID,
    ActivationTime,
    AveragingWindow,
    DeactivationTime,
    DownlinkDataNotificationDelay,
    EthernetInactivityTimer,
    EventQuota,
    EventThreshold,
    FramedRouting,
    InactivityDetectionTime,
    LinkedURRID,
    MeasurementPeriod,
    MonitoringTime,
    NumberOfReports,
    Precedence,
    QERCorrelationID,
    QuotaHoldingTime,
    QuotaValidityTime,
    SubsequentEventQuota,
    SubsequentEventThreshold,
    SubsequentTimeQuota,
    SubsequentTimeThreshold,
    SuggestedBufferingPacketsCount,
    TimeQuota,
    TimeThreshold,
    TrafficEndpointID,
)
from .reporting import (
    DLBufferingDuration,
    DLBufferingSuggestedPacketCount,
    DroppedDLTrafficThreshold,
    MeasurementInformation,
    MeasurementMethod,
    ReportingTriggers,
    SubsequentVolumeQuota,
    SubsequentVolumeThreshold,
    VolumeQuota,
    VolumeThreshold,
)
from .values import (
    GBR,
    MBR,
    QFI,
    RQI,
    ActivatePredefinedRules,
    ApplicationID,
    ApplyAction,
    DeactivatePredefinedRules,
    DestinationInterface,
    EthernetPDUSessionInformation,
    ForwardingPolicy,
    FramedIPv6Route,
    FramedRoute,
    GateStatus,
    HeaderEnrichment,
    PagingPolicyIndicator,
    PFCPSMReqFlags,
    RedirectInformation,
    SDFFilter,
    SourceInterface,
    TGPPInterfaceType,
    TransportLevelMarking,
)

__all__ = [
    "PDI",
    "CreateBAR",
    "CreateFAR",
    "CreatePDR",
    "CreateQER",
    "CreateURR",
    "CreatedPDR",
    "DuplicatingParameters",
    "ForwardingParameters",
    "RemoveBAR",
    "RemoveFAR",
    "RemovePDR",
    "RemoveQER",
    "RemoveURR",
    "UpdateBAR",
    "UpdateBARSessionReportResponse",
    "UpdateDuplicatingParameters",
    "UpdateFAR",
    "UpdateForwardingParameters",
    "UpdatePDR",
    "UpdateQER",
    "UpdateURR",
]


@grouped
class PDI(GroupedIE):
    """PDI (Packet Detection Information), Table 7.5.2.2-2."""

    TYPE = IEType.PDI
    source_interface: SourceInterface = ie_field(SourceInterface, M)
    local_f_teid: FTEID | None = ie_field(FTEID, O)
    network_instance: NetworkInstance | None = ie_field(NetworkInstance, O)
    ue_ip_address: tuple[UEIPAddress, ...] = ie_field(UEIPAddress, O, multiple=True)
    traffic_endpoint_id: tuple[TrafficEndpointID, ...] = ie_field(TrafficEndpointID, C, multiple=True)
    sdf_filter: tuple[SDFFilter, ...] = ie_field(SDFFilter, O, multiple=True)
    application_id: ApplicationID | None = ie_field(ApplicationID, O)
    ethernet_pdu_session_information: EthernetPDUSessionInformation | None = ie_field(EthernetPDUSessionInformation, O)
    qfi: tuple[QFI, ...] = ie_field(QFI, O, multiple=True)
    framed_route: tuple[FramedRoute, ...] = ie_field(FramedRoute, O, multiple=True)
    framed_routing: FramedRouting | None = ie_field(FramedRouting, O)
    framed_ipv6_route: tuple[FramedIPv6Route, ...] = ie_field(FramedIPv6Route, O, multiple=True)
    source_interface_type: TGPPInterfaceType | None = ie_field(TGPPInterfaceType, O)


@grouped
class CreatePDR(GroupedIE):
    """Create PDR, Table 7.5.2.2-1."""

    TYPE = IEType.CREATE_PDR
    pdr_id: PDRID = ie_field(PDRID, M)
    precedence: Precedence = ie_field(Precedence, M)
    pdi: PDI = ie_field(PDI, M)
    outer_header_removal: OuterHeaderRemoval | None = ie_field(OuterHeaderRemoval, C)
    far_id: FARID | None = ie_field(FARID, C)
    urr_id: tuple[URRID, ...] = ie_field(URRID, C, multiple=True)
    qer_id: tuple[QERID, ...] = ie_field(QERID, C, multiple=True)
    activate_predefined_rules: tuple[ActivatePredefinedRules, ...] = ie_field(ActivatePredefinedRules, C, multiple=True)
    activation_time: ActivationTime | None = ie_field(ActivationTime, O)
    deactivation_time: DeactivationTime | None = ie_field(DeactivationTime, O)
    mar_id: MARID | None = ie_field(MARID, C)


@grouped
class ForwardingParameters(GroupedIE):
    """Forwarding Parameters, Table 7.5.2.3-2."""

    TYPE = IEType.FORWARDING_PARAMETERS
    destination_interface: DestinationInterface = ie_field(DestinationInterface, M)
    network_instance: NetworkInstance | None = ie_field(NetworkInstance, O)
    redirect_information: RedirectInformation | None = ie_field(RedirectInformation, C)
    outer_header_creation: OuterHeaderCreation | None = ie_field(OuterHeaderCreation, C)
    transport_level_marking: TransportLevelMarking | None = ie_field(TransportLevelMarking, C)
    forwarding_policy: ForwardingPolicy | None = ie_field(ForwardingPolicy, C)
    header_enrichment: HeaderEnrichment | None = ie_field(HeaderEnrichment, C)
    linked_traffic_endpoint_id: TrafficEndpointID | None = ie_field(TrafficEndpointID, C)
    destination_interface_type: TGPPInterfaceType | None = ie_field(TGPPInterfaceType, C)


@grouped
class DuplicatingParameters(GroupedIE):
    """Duplicating Parameters, Table 7.5.2.3-3."""

    TYPE = IEType.DUPLICATING_PARAMETERS
    destination_interface: DestinationInterface = ie_field(DestinationInterface, M)
    outer_header_creation: OuterHeaderCreation | None = ie_field(OuterHeaderCreation, C)
    transport_level_marking: TransportLevelMarking | None = ie_field(TransportLevelMarking, C)
    forwarding_policy: ForwardingPolicy | None = ie_field(ForwardingPolicy, C)


@grouped
class CreateFAR(GroupedIE):
    """Create FAR, Table 7.5.2.3-1."""

    TYPE = IEType.CREATE_FAR
    far_id: FARID = ie_field(FARID, M)
    apply_action: ApplyAction = ie_field(ApplyAction, M)
    forwarding_parameters: ForwardingParameters | None = ie_field(ForwardingParameters, C)
    duplicating_parameters: tuple[DuplicatingParameters, ...] = ie_field(DuplicatingParameters, C, multiple=True)
    bar_id: BARID | None = ie_field(BARID, O)


@grouped
class CreateURR(GroupedIE):
    """Create URR, Table 7.5.2.4-1."""

    TYPE = IEType.CREATE_URR
    urr_id: URRID = ie_field(URRID, M)
    measurement_method: MeasurementMethod = ie_field(MeasurementMethod, M)
    reporting_triggers: ReportingTriggers = ie_field(ReportingTriggers, M)
    measurement_period: MeasurementPeriod | None = ie_field(MeasurementPeriod, C)
    volume_threshold: VolumeThreshold | None = ie_field(VolumeThreshold, C)
    volume_quota: VolumeQuota | None = ie_field(VolumeQuota, C)
    event_threshold: EventThreshold | None = ie_field(EventThreshold, C)
    event_quota: EventQuota | None = ie_field(EventQuota, C)
    time_threshold: TimeThreshold | None = ie_field(TimeThreshold, C)
    time_quota: TimeQuota | None = ie_field(TimeQuota, C)
    quota_holding_time: QuotaHoldingTime | None = ie_field(QuotaHoldingTime, C)
    dropped_dl_traffic_threshold: DroppedDLTrafficThreshold | None = ie_field(DroppedDLTrafficThreshold, C)
    quota_validity_time: QuotaValidityTime | None = ie_field(QuotaValidityTime, C)
    monitoring_time: MonitoringTime | None = ie_field(MonitoringTime, O)
    subsequent_volume_threshold: SubsequentVolumeThreshold | None = ie_field(SubsequentVolumeThreshold, O)
    subsequent_time_threshold: SubsequentTimeThreshold | None = ie_field(SubsequentTimeThreshold, O)
    subsequent_volume_quota: SubsequentVolumeQuota | None = ie_field(SubsequentVolumeQuota, O)
    subsequent_time_quota: SubsequentTimeQuota | None = ie_field(SubsequentTimeQuota, O)
    subsequent_event_threshold: SubsequentEventThreshold | None = ie_field(SubsequentEventThreshold, O)
    subsequent_event_quota: SubsequentEventQuota | None = ie_field(SubsequentEventQuota, O)
    inactivity_detection_time: InactivityDetectionTime | None = ie_field(InactivityDetectionTime, C)
    linked_urr_id: tuple[LinkedURRID, ...] = ie_field(LinkedURRID, C, multiple=True)
    measurement_information: MeasurementInformation | None = ie_field(MeasurementInformation, C)
    far_id_for_quota_action: FARID | None = ie_field(FARID, C)
    ethernet_inactivity_timer: EthernetInactivityTimer | None = ie_field(EthernetInactivityTimer, C)
    number_of_reports: NumberOfReports | None = ie_field(NumberOfReports, O)


@grouped
class CreateQER(GroupedIE):
    """Create QER, Table 7.5.2.5-1."""

    TYPE = IEType.CREATE_QER
    qer_id: QERID = ie_field(QERID, M)
    qer_correlation_id: QERCorrelationID | None = ie_field(QERCorrelationID, C)
    gate_status: GateStatus = ie_field(GateStatus, M)
    mbr: MBR | None = ie_field(MBR, C)
    gbr: GBR | None = ie_field(GBR, C)
    qfi: QFI | None = ie_field(QFI, C)
    rqi: RQI | None = ie_field(RQI, C)
    paging_policy_indicator: PagingPolicyIndicator | None = ie_field(PagingPolicyIndicator, C)
    averaging_window: AveragingWindow | None = ie_field(AveragingWindow, O)


@grouped
class CreateBAR(GroupedIE):
    """Create BAR, Table 7.5.2.6-1."""

    TYPE = IEType.CREATE_BAR
    bar_id: BARID = ie_field(BARID, M)
    downlink_data_notification_delay: DownlinkDataNotificationDelay | None = ie_field(DownlinkDataNotificationDelay, C)
    suggested_buffering_packets_count: SuggestedBufferingPacketsCount | None = ie_field(
        SuggestedBufferingPacketsCount, C
    )


@grouped
class CreatedPDR(GroupedIE):
    """Created PDR, Table 7.5.3.2-1: what the UP function allocated (CH)."""

    TYPE = IEType.CREATED_PDR
    pdr_id: PDRID = ie_field(PDRID, M)
    local_f_teid: FTEID | None = ie_field(FTEID, C)
    ue_ip_address: tuple[UEIPAddress, ...] = ie_field(UEIPAddress, C, multiple=True)


@grouped
class UpdatePDR(GroupedIE):
    """Update PDR, Table 7.5.4.2-1."""

    TYPE = IEType.UPDATE_PDR
    pdr_id: PDRID = ie_field(PDRID, M)
    outer_header_removal: OuterHeaderRemoval | None = ie_field(OuterHeaderRemoval, C)
    precedence: Precedence | None = ie_field(Precedence, C)
    pdi: PDI | None = ie_field(PDI, C)
    far_id: FARID | None = ie_field(FARID, C)
    urr_id: tuple[URRID, ...] = ie_field(URRID, C, multiple=True)
    qer_id: tuple[QERID, ...] = ie_field(QERID, C, multiple=True)
    activate_predefined_rules: tuple[ActivatePredefinedRules, ...] = ie_field(ActivatePredefinedRules, C, multiple=True)
    deactivate_predefined_rules: tuple[DeactivatePredefinedRules, ...] = ie_field(
        DeactivatePredefinedRules, C, multiple=True
    )
    activation_time: ActivationTime | None = ie_field(ActivationTime, O)
    deactivation_time: DeactivationTime | None = ie_field(DeactivationTime, O)


@grouped
class UpdateForwardingParameters(GroupedIE):
    """Update Forwarding Parameters, Table 7.5.4.3-2."""

    TYPE = IEType.UPDATE_FORWARDING_PARAMETERS
    destination_interface: DestinationInterface | None = ie_field(DestinationInterface, C)
    network_instance: NetworkInstance | None = ie_field(NetworkInstance, C)
    redirect_information: RedirectInformation | None = ie_field(RedirectInformation, C)
    outer_header_creation: OuterHeaderCreation | None = ie_field(OuterHeaderCreation, C)
    transport_level_marking: TransportLevelMarking | None = ie_field(TransportLevelMarking, C)
    forwarding_policy: ForwardingPolicy | None = ie_field(ForwardingPolicy, C)
    header_enrichment: HeaderEnrichment | None = ie_field(HeaderEnrichment, C)
    pfcpsmreq_flags: PFCPSMReqFlags | None = ie_field(PFCPSMReqFlags, C)
    linked_traffic_endpoint_id: TrafficEndpointID | None = ie_field(TrafficEndpointID, C)
    destination_interface_type: TGPPInterfaceType | None = ie_field(TGPPInterfaceType, C)


@grouped
class UpdateDuplicatingParameters(GroupedIE):
    """Update Duplicating Parameters, Table 7.5.4.3-3."""

    TYPE = IEType.UPDATE_DUPLICATING_PARAMETERS
    destination_interface: DestinationInterface | None = ie_field(DestinationInterface, C)
    outer_header_creation: OuterHeaderCreation | None = ie_field(OuterHeaderCreation, C)
    transport_level_marking: TransportLevelMarking | None = ie_field(TransportLevelMarking, C)
    forwarding_policy: ForwardingPolicy | None = ie_field(ForwardingPolicy, C)


@grouped
class UpdateFAR(GroupedIE):
    """Update FAR, Table 7.5.4.3-1."""

    TYPE = IEType.UPDATE_FAR
    far_id: FARID = ie_field(FARID, M)
    apply_action: ApplyAction | None = ie_field(ApplyAction, C)
    update_forwarding_parameters: UpdateForwardingParameters | None = ie_field(UpdateForwardingParameters, C)
    update_duplicating_parameters: tuple[UpdateDuplicatingParameters, ...] = ie_field(
        UpdateDuplicatingParameters, C, multiple=True
    )
    bar_id: BARID | None = ie_field(BARID, C)


@grouped
class UpdateURR(GroupedIE):
    """Update URR, Table 7.5.4.4-1."""

    TYPE = IEType.UPDATE_URR
    urr_id: URRID = ie_field(URRID, M)
    measurement_method: MeasurementMethod | None = ie_field(MeasurementMethod, C)
    reporting_triggers: ReportingTriggers | None = ie_field(ReportingTriggers, C)
    measurement_period: MeasurementPeriod | None = ie_field(MeasurementPeriod, C)
    volume_threshold: VolumeThreshold | None = ie_field(VolumeThreshold, C)
    volume_quota: VolumeQuota | None = ie_field(VolumeQuota, C)
    time_threshold: TimeThreshold | None = ie_field(TimeThreshold, C)
    time_quota: TimeQuota | None = ie_field(TimeQuota, C)
    event_threshold: EventThreshold | None = ie_field(EventThreshold, C)
    event_quota: EventQuota | None = ie_field(EventQuota, C)
    quota_holding_time: QuotaHoldingTime | None = ie_field(QuotaHoldingTime, C)
    dropped_dl_traffic_threshold: DroppedDLTrafficThreshold | None = ie_field(DroppedDLTrafficThreshold, C)
    quota_validity_time: QuotaValidityTime | None = ie_field(QuotaValidityTime, C)
    monitoring_time: MonitoringTime | None = ie_field(MonitoringTime, C)
    subsequent_volume_threshold: SubsequentVolumeThreshold | None = ie_field(SubsequentVolumeThreshold, C)
    subsequent_time_threshold: SubsequentTimeThreshold | None = ie_field(SubsequentTimeThreshold, C)
    subsequent_volume_quota: SubsequentVolumeQuota | None = ie_field(SubsequentVolumeQuota, C)
    subsequent_time_quota: SubsequentTimeQuota | None = ie_field(SubsequentTimeQuota, C)
    subsequent_event_threshold: SubsequentEventThreshold | None = ie_field(SubsequentEventThreshold, C)
    subsequent_event_quota: SubsequentEventQuota | None = ie_field(SubsequentEventQuota, C)
    inactivity_detection_time: InactivityDetectionTime | None = ie_field(InactivityDetectionTime, C)
    linked_urr_id: tuple[LinkedURRID, ...] = ie_field(LinkedURRID, C, multiple=True)
    measurement_information: MeasurementInformation | None = ie_field(MeasurementInformation, C)
    far_id_for_quota_action: FARID | None = ie_field(FARID, C)
    ethernet_inactivity_timer: EthernetInactivityTimer | None = ie_field(EthernetInactivityTimer, C)
    number_of_reports: NumberOfReports | None = ie_field(NumberOfReports, C)


@grouped
class UpdateQER(GroupedIE):
    """Update QER, Table 7.5.4.5-1."""

    TYPE = IEType.UPDATE_QER
    qer_id: QERID = ie_field(QERID, M)
    qer_correlation_id: QERCorrelationID | None = ie_field(QERCorrelationID, C)
    gate_status: GateStatus | None = ie_field(GateStatus, C)
    mbr: MBR | None = ie_field(MBR, C)
    gbr: GBR | None = ie_field(GBR, C)
    qfi: QFI | None = ie_field(QFI, C)
    rqi: RQI | None = ie_field(RQI, C)
    paging_policy_indicator: PagingPolicyIndicator | None = ie_field(PagingPolicyIndicator, C)
    averaging_window: AveragingWindow | None = ie_field(AveragingWindow, O)


@grouped
class UpdateBAR(GroupedIE):
    """Update BAR in a Session Modification Request, Table 7.5.4.8-1."""

    TYPE = IEType.UPDATE_BAR
    bar_id: BARID = ie_field(BARID, M)
    downlink_data_notification_delay: DownlinkDataNotificationDelay | None = ie_field(DownlinkDataNotificationDelay, C)
    suggested_buffering_packets_count: SuggestedBufferingPacketsCount | None = ie_field(
        SuggestedBufferingPacketsCount, C
    )


@grouped
class UpdateBARSessionReportResponse(GroupedIE):
    """Update BAR in a Session Report Response, Table 7.5.9.2-1."""

    TYPE = IEType.UPDATE_BAR_SESSION_REPORT_RESPONSE
    bar_id: BARID = ie_field(BARID, M)
    downlink_data_notification_delay: DownlinkDataNotificationDelay | None = ie_field(DownlinkDataNotificationDelay, C)
    dl_buffering_duration: DLBufferingDuration | None = ie_field(DLBufferingDuration, C)
    dl_buffering_suggested_packet_count: DLBufferingSuggestedPacketCount | None = ie_field(
        DLBufferingSuggestedPacketCount, C
    )
    suggested_buffering_packets_count: SuggestedBufferingPacketsCount | None = ie_field(
        SuggestedBufferingPacketsCount, C
    )


@grouped
class RemovePDR(GroupedIE):
    """Remove PDR, Table 7.5.4.6-1."""

    TYPE = IEType.REMOVE_PDR
    pdr_id: PDRID = ie_field(PDRID, M)


@grouped
class RemoveFAR(GroupedIE):
    """Remove FAR, Table 7.5.4.7-1."""

    TYPE = IEType.REMOVE_FAR
    far_id: FARID = ie_field(FARID, M)


@grouped
class RemoveURR(GroupedIE):
    """Remove URR, Table 7.5.4.8-1."""

    TYPE = IEType.REMOVE_URR
    urr_id: URRID = ie_field(URRID, M)


@grouped
class RemoveQER(GroupedIE):
    """Remove QER, Table 7.5.4.9-1."""

    TYPE = IEType.REMOVE_QER
    qer_id: QERID = ie_field(QERID, M)


@grouped
class RemoveBAR(GroupedIE):
    """Remove BAR, Table 7.5.4.12-1."""

    TYPE = IEType.REMOVE_BAR
    bar_id: BARID = ie_field(BARID, M)
