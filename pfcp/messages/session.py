"""Session related messages, TS 29.244 §7.5: one class per table.

Session messages carry a SEID in the header (S=1, §7.2.2.3); it defaults to 0,
the value a Session Establishment Request uses before the peer's SEID is known.
"""

from __future__ import annotations

from typing import ClassVar

from ..constants import IEType, MessageType
from ..ie import (
    APNDNN,
    FQCSID,
    FSEID,
    FTEID,
    SNSSAI,
    AdditionalUsageReportsInformation,
    AlternativeSMFIPAddress,
    Cause,
    CreateBAR,
    CreatedPDR,
    CreateFAR,
    CreatePDR,
    CreateQER,
    CreateURR,
    DownlinkDataReport,
    ErrorIndicationReport,
    FailedRuleID,
    LoadControlInformation,
    NodeID,
    OffendingIE,
    OpaqueIE,
    OverloadControlInformation,
    PDNType,
    PFCPSMReqFlags,
    PFCPSRRspFlags,
    QueryURR,
    QueryURRReference,
    RATType,
    RecoveryTimeStamp,
    RemoveBAR,
    RemoveFAR,
    RemovePDR,
    RemoveQER,
    RemoveURR,
    ReportType,
    TraceInformation,
    UpdateBAR,
    UpdateBARSessionReportResponse,
    UpdateFAR,
    UpdatePDR,
    UpdateQER,
    UpdateURR,
    UsageReportSDR,
    UsageReportSMR,
    UsageReportSRR,
    UserID,
    UserPlaneInactivityTimer,
    opaque_ie_class,
)
from ..ie.base import C, M, O, ie_field
from .schema import Message, message

__all__ = [
    "SessionDeletionRequest",
    "SessionDeletionResponse",
    "SessionEstablishmentRequest",
    "SessionEstablishmentResponse",
    "SessionModificationRequest",
    "SessionModificationResponse",
    "SessionReportRequest",
    "SessionReportResponse",
]

_CREATE_TRAFFIC_ENDPOINT = opaque_ie_class(IEType.CREATE_TRAFFIC_ENDPOINT)
_CREATED_TRAFFIC_ENDPOINT = opaque_ie_class(IEType.CREATED_TRAFFIC_ENDPOINT)
_UPDATE_TRAFFIC_ENDPOINT = opaque_ie_class(IEType.UPDATE_TRAFFIC_ENDPOINT)
_REMOVE_TRAFFIC_ENDPOINT = opaque_ie_class(IEType.REMOVE_TRAFFIC_ENDPOINT)
_CREATE_MAR = opaque_ie_class(IEType.CREATE_MAR)
_UPDATE_MAR = opaque_ie_class(IEType.UPDATE_MAR)
_REMOVE_MAR = opaque_ie_class(IEType.REMOVE_MAR)
_CREATE_SRR = opaque_ie_class(IEType.CREATE_SRR)
_UPDATE_SRR = opaque_ie_class(IEType.UPDATE_SRR)
_REMOVE_SRR = opaque_ie_class(IEType.REMOVE_SRR)
_PFCPSEREQ_FLAGS = opaque_ie_class(IEType.PFCPSEREQ_FLAGS)
_PFCPSRREQ_FLAGS = opaque_ie_class(IEType.PFCPSRREQ_FLAGS)
_CREATE_BRIDGE_INFO = opaque_ie_class(IEType.CREATE_BRIDGE_INFO_FOR_TSC)
_CREATED_BRIDGE_INFO = opaque_ie_class(IEType.CREATED_BRIDGE_INFO_FOR_TSC)
_PROVIDE_ATSSS = opaque_ie_class(IEType.PROVIDE_ATSSS_CONTROL_INFORMATION)
_ATSSS_PARAMETERS = opaque_ie_class(IEType.ATSSS_CONTROL_PARAMETERS)
_PROVIDE_RDS = opaque_ie_class(IEType.PROVIDE_RDS_CONFIGURATION_INFORMATION)
_RDS = opaque_ie_class(IEType.RDS_CONFIGURATION_INFORMATION)
_PARTIAL_FAILURE_SER = opaque_ie_class(IEType.PARTIAL_FAILURE_INFORMATION_SER)
_PARTIAL_FAILURE_SMR = opaque_ie_class(IEType.PARTIAL_FAILURE_INFORMATION_SMR)
_UPDATED_PDR = opaque_ie_class(IEType.UPDATED_PDR)
_TSC_SMREQ = opaque_ie_class(IEType.TSC_MANAGEMENT_INFORMATION_SMREQ)
_TSC_SMRSP = opaque_ie_class(IEType.TSC_MANAGEMENT_INFORMATION_SMRSP)
_TSC_SRREQ = opaque_ie_class(IEType.TSC_MANAGEMENT_INFORMATION_SRREQ)
_ETHERNET_CONTEXT = opaque_ie_class(IEType.ETHERNET_CONTEXT_INFORMATION)
_ACCESS_AVAILABILITY = opaque_ie_class(IEType.ACCESS_AVAILABILITY_INFORMATION)
_QUERY_PACKET_RATE = opaque_ie_class(IEType.QUERY_PACKET_RATE_STATUS)
_PACKET_RATE_REPORT = opaque_ie_class(IEType.PACKET_RATE_STATUS_REPORT)
_PACKET_RATE_REPORT_SMR = opaque_ie_class(IEType.PACKET_RATE_STATUS_REPORT_SMR)
_SESSION_REPORT = opaque_ie_class(IEType.SESSION_REPORT)


class _Session(Message):
    SESSION: ClassVar[bool] = True


class _SessionResponse(_Session):
    REQUEST: ClassVar[bool] = False


@message
class SessionEstablishmentRequest(_Session):
    """PFCP Session Establishment Request, Table 7.5.2.1-1."""

    TYPE = MessageType.SESSION_ESTABLISHMENT_REQUEST
    seid: int | None = 0
    node_id: NodeID = ie_field(NodeID, M)
    cp_f_seid: FSEID = ie_field(FSEID, M)
    create_pdr: tuple[CreatePDR, ...] = ie_field(CreatePDR, M, multiple=True)
    create_far: tuple[CreateFAR, ...] = ie_field(CreateFAR, M, multiple=True)
    create_urr: tuple[CreateURR, ...] = ie_field(CreateURR, C, multiple=True)
    create_qer: tuple[CreateQER, ...] = ie_field(CreateQER, C, multiple=True)
    create_bar: CreateBAR | None = ie_field(CreateBAR, O)
    create_traffic_endpoint: tuple[OpaqueIE, ...] = ie_field(_CREATE_TRAFFIC_ENDPOINT, C, multiple=True)
    pdn_type: PDNType | None = ie_field(PDNType, C)
    sgw_c_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    mme_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    pgw_c_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    epdg_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    twan_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    user_plane_inactivity_timer: UserPlaneInactivityTimer | None = ie_field(UserPlaneInactivityTimer, O)
    user_id: UserID | None = ie_field(UserID, O)
    trace_information: TraceInformation | None = ie_field(TraceInformation, O)
    apn_dnn: APNDNN | None = ie_field(APNDNN, O)
    create_mar: tuple[OpaqueIE, ...] = ie_field(_CREATE_MAR, C, multiple=True)
    pfcpsereq_flags: OpaqueIE | None = ie_field(_PFCPSEREQ_FLAGS, C)
    create_bridge_info_for_tsc: OpaqueIE | None = ie_field(_CREATE_BRIDGE_INFO, C)
    create_srr: tuple[OpaqueIE, ...] = ie_field(_CREATE_SRR, C, multiple=True)
    provide_atsss_control_information: OpaqueIE | None = ie_field(_PROVIDE_ATSSS, C)
    recovery_time_stamp: RecoveryTimeStamp | None = ie_field(RecoveryTimeStamp, O)
    s_nssai: SNSSAI | None = ie_field(SNSSAI, O)
    provide_rds_configuration_information: OpaqueIE | None = ie_field(_PROVIDE_RDS, O)
    rat_type: RATType | None = ie_field(RATType, O)


@message
class SessionEstablishmentResponse(_SessionResponse):
    """PFCP Session Establishment Response, Table 7.5.3.1-1."""

    TYPE = MessageType.SESSION_ESTABLISHMENT_RESPONSE
    seid: int | None = 0
    node_id: NodeID = ie_field(NodeID, M)
    cause: Cause = ie_field(Cause, M)
    offending_ie: OffendingIE | None = ie_field(OffendingIE, C)
    up_f_seid: FSEID | None = ie_field(FSEID, C)
    created_pdr: tuple[CreatedPDR, ...] = ie_field(CreatedPDR, C, multiple=True)
    load_control_information: LoadControlInformation | None = ie_field(LoadControlInformation, O)
    overload_control_information: OverloadControlInformation | None = ie_field(OverloadControlInformation, O)
    up_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    failed_rule_id: FailedRuleID | None = ie_field(FailedRuleID, C)
    created_traffic_endpoint: tuple[OpaqueIE, ...] = ie_field(_CREATED_TRAFFIC_ENDPOINT, C, multiple=True)
    created_bridge_info_for_tsc: OpaqueIE | None = ie_field(_CREATED_BRIDGE_INFO, C)
    atsss_control_parameters: OpaqueIE | None = ie_field(_ATSSS_PARAMETERS, C)
    rds_configuration_information: OpaqueIE | None = ie_field(_RDS, O)
    partial_failure_information: tuple[OpaqueIE, ...] = ie_field(_PARTIAL_FAILURE_SER, C, multiple=True)


@message
class SessionModificationRequest(_Session):
    """PFCP Session Modification Request, Table 7.5.4.1-1."""

    TYPE = MessageType.SESSION_MODIFICATION_REQUEST
    seid: int | None = 0
    cp_f_seid: FSEID | None = ie_field(FSEID, C)
    remove_pdr: tuple[RemovePDR, ...] = ie_field(RemovePDR, C, multiple=True)
    remove_far: tuple[RemoveFAR, ...] = ie_field(RemoveFAR, C, multiple=True)
    remove_urr: tuple[RemoveURR, ...] = ie_field(RemoveURR, C, multiple=True)
    remove_qer: tuple[RemoveQER, ...] = ie_field(RemoveQER, C, multiple=True)
    remove_bar: RemoveBAR | None = ie_field(RemoveBAR, C)
    remove_traffic_endpoint: tuple[OpaqueIE, ...] = ie_field(_REMOVE_TRAFFIC_ENDPOINT, C, multiple=True)
    create_pdr: tuple[CreatePDR, ...] = ie_field(CreatePDR, C, multiple=True)
    create_far: tuple[CreateFAR, ...] = ie_field(CreateFAR, C, multiple=True)
    create_urr: tuple[CreateURR, ...] = ie_field(CreateURR, C, multiple=True)
    create_qer: tuple[CreateQER, ...] = ie_field(CreateQER, C, multiple=True)
    create_bar: CreateBAR | None = ie_field(CreateBAR, C)
    create_traffic_endpoint: tuple[OpaqueIE, ...] = ie_field(_CREATE_TRAFFIC_ENDPOINT, C, multiple=True)
    update_pdr: tuple[UpdatePDR, ...] = ie_field(UpdatePDR, C, multiple=True)
    update_far: tuple[UpdateFAR, ...] = ie_field(UpdateFAR, C, multiple=True)
    update_urr: tuple[UpdateURR, ...] = ie_field(UpdateURR, C, multiple=True)
    update_qer: tuple[UpdateQER, ...] = ie_field(UpdateQER, C, multiple=True)
    update_bar: UpdateBAR | None = ie_field(UpdateBAR, C)
    update_traffic_endpoint: tuple[OpaqueIE, ...] = ie_field(_UPDATE_TRAFFIC_ENDPOINT, C, multiple=True)
    pfcpsmreq_flags: PFCPSMReqFlags | None = ie_field(PFCPSMReqFlags, C)
    query_urr: tuple[QueryURR, ...] = ie_field(QueryURR, C, multiple=True)
    pgw_c_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    sgw_c_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    mme_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    epdg_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    twan_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    user_plane_inactivity_timer: UserPlaneInactivityTimer | None = ie_field(UserPlaneInactivityTimer, C)
    query_urr_reference: QueryURRReference | None = ie_field(QueryURRReference, C)
    trace_information: TraceInformation | None = ie_field(TraceInformation, C)
    remove_mar: tuple[OpaqueIE, ...] = ie_field(_REMOVE_MAR, C, multiple=True)
    update_mar: tuple[OpaqueIE, ...] = ie_field(_UPDATE_MAR, C, multiple=True)
    create_mar: tuple[OpaqueIE, ...] = ie_field(_CREATE_MAR, C, multiple=True)
    node_id: NodeID | None = ie_field(NodeID, C)
    tsc_management_information: tuple[OpaqueIE, ...] = ie_field(_TSC_SMREQ, C, multiple=True)
    remove_srr: tuple[OpaqueIE, ...] = ie_field(_REMOVE_SRR, C, multiple=True)
    create_srr: tuple[OpaqueIE, ...] = ie_field(_CREATE_SRR, C, multiple=True)
    update_srr: tuple[OpaqueIE, ...] = ie_field(_UPDATE_SRR, C, multiple=True)
    provide_atsss_control_information: OpaqueIE | None = ie_field(_PROVIDE_ATSSS, C)
    ethernet_context_information: OpaqueIE | None = ie_field(_ETHERNET_CONTEXT, C)
    access_availability_information: tuple[OpaqueIE, ...] = ie_field(_ACCESS_AVAILABILITY, O, multiple=True)
    query_packet_rate_status: tuple[OpaqueIE, ...] = ie_field(_QUERY_PACKET_RATE, C, multiple=True)
    s_nssai: SNSSAI | None = ie_field(SNSSAI, O)
    rat_type: RATType | None = ie_field(RATType, O)


@message
class SessionModificationResponse(_SessionResponse):
    """PFCP Session Modification Response, Table 7.5.5.1-1."""

    TYPE = MessageType.SESSION_MODIFICATION_RESPONSE
    seid: int | None = 0
    cause: Cause = ie_field(Cause, M)
    offending_ie: OffendingIE | None = ie_field(OffendingIE, C)
    created_pdr: tuple[CreatedPDR, ...] = ie_field(CreatedPDR, C, multiple=True)
    load_control_information: LoadControlInformation | None = ie_field(LoadControlInformation, O)
    overload_control_information: OverloadControlInformation | None = ie_field(OverloadControlInformation, O)
    usage_report: tuple[UsageReportSMR, ...] = ie_field(UsageReportSMR, C, multiple=True)
    failed_rule_id: FailedRuleID | None = ie_field(FailedRuleID, C)
    additional_usage_reports_information: AdditionalUsageReportsInformation | None = ie_field(
        AdditionalUsageReportsInformation, C
    )
    created_traffic_endpoint: tuple[OpaqueIE, ...] = ie_field(_CREATED_TRAFFIC_ENDPOINT, C, multiple=True)
    tsc_management_information: tuple[OpaqueIE, ...] = ie_field(_TSC_SMRSP, C, multiple=True)
    atsss_control_parameters: OpaqueIE | None = ie_field(_ATSSS_PARAMETERS, C)
    updated_pdr: tuple[OpaqueIE, ...] = ie_field(_UPDATED_PDR, C, multiple=True)
    packet_rate_status_report: tuple[OpaqueIE, ...] = ie_field(_PACKET_RATE_REPORT_SMR, C, multiple=True)
    partial_failure_information: tuple[OpaqueIE, ...] = ie_field(_PARTIAL_FAILURE_SMR, C, multiple=True)


@message
class SessionDeletionRequest(_Session):
    """PFCP Session Deletion Request, Table 7.5.6.1-1 (no IEs before Rel-17)."""

    TYPE = MessageType.SESSION_DELETION_REQUEST
    seid: int | None = 0
    node_id: NodeID | None = ie_field(NodeID, C)
    cp_f_seid: FSEID | None = ie_field(FSEID, C)


@message
class SessionDeletionResponse(_SessionResponse):
    """PFCP Session Deletion Response, Table 7.5.7.1-1."""

    TYPE = MessageType.SESSION_DELETION_RESPONSE
    seid: int | None = 0
    cause: Cause = ie_field(Cause, M)
    offending_ie: OffendingIE | None = ie_field(OffendingIE, C)
    load_control_information: LoadControlInformation | None = ie_field(LoadControlInformation, O)
    overload_control_information: OverloadControlInformation | None = ie_field(OverloadControlInformation, O)
    usage_report: tuple[UsageReportSDR, ...] = ie_field(UsageReportSDR, C, multiple=True)
    additional_usage_reports_information: AdditionalUsageReportsInformation | None = ie_field(
        AdditionalUsageReportsInformation, C
    )
    packet_rate_status_report: tuple[OpaqueIE, ...] = ie_field(_PACKET_RATE_REPORT, C, multiple=True)
    session_report: tuple[OpaqueIE, ...] = ie_field(_SESSION_REPORT, C, multiple=True)


@message
class SessionReportRequest(_Session):
    """PFCP Session Report Request, Table 7.5.8.1-1 (UP function to CP function)."""

    TYPE = MessageType.SESSION_REPORT_REQUEST
    seid: int | None = 0
    report_type: ReportType = ie_field(ReportType, M)
    downlink_data_report: DownlinkDataReport | None = ie_field(DownlinkDataReport, C)
    usage_report: tuple[UsageReportSRR, ...] = ie_field(UsageReportSRR, C, multiple=True)
    error_indication_report: ErrorIndicationReport | None = ie_field(ErrorIndicationReport, C)
    load_control_information: LoadControlInformation | None = ie_field(LoadControlInformation, O)
    overload_control_information: OverloadControlInformation | None = ie_field(OverloadControlInformation, O)
    additional_usage_reports_information: AdditionalUsageReportsInformation | None = ie_field(
        AdditionalUsageReportsInformation, C
    )
    pfcpsrreq_flags: OpaqueIE | None = ie_field(_PFCPSRREQ_FLAGS, C)
    old_cp_f_seid: FSEID | None = ie_field(FSEID, C)
    packet_rate_status_report: OpaqueIE | None = ie_field(_PACKET_RATE_REPORT, C)
    tsc_management_information: tuple[OpaqueIE, ...] = ie_field(_TSC_SRREQ, C, multiple=True)
    session_report: tuple[OpaqueIE, ...] = ie_field(_SESSION_REPORT, C, multiple=True)


@message
class SessionReportResponse(_SessionResponse):
    """PFCP Session Report Response, Table 7.5.9.1-1."""

    TYPE = MessageType.SESSION_REPORT_RESPONSE
    seid: int | None = 0
    cause: Cause = ie_field(Cause, M)
    offending_ie: OffendingIE | None = ie_field(OffendingIE, C)
    update_bar: UpdateBARSessionReportResponse | None = ie_field(UpdateBARSessionReportResponse, C)
    pfcpsrrsp_flags: PFCPSRRspFlags | None = ie_field(PFCPSRRspFlags, C)
    cp_f_seid: FSEID | None = ie_field(FSEID, O)
    n4_u_f_teid: FTEID | None = ie_field(FTEID, C)
    alternative_smf_ip_address: AlternativeSMFIPAddress | None = ie_field(AlternativeSMFIPAddress, C)
