"""Node related messages, TS 29.244 §7.4: one class per table."""

from __future__ import annotations

from typing import ClassVar

from ..constants import IEType, MessageType
from ..ie import (
    FQCSID,
    AlternativeSMFIPAddress,
    Cause,
    CPFunctionFeatures,
    GracefulReleasePeriod,
    NodeID,
    NodeReportType,
    OffendingIE,
    OpaqueIE,
    PFCPAssociationReleaseRequest,
    PFCPSessionRetentionInformation,
    RecoveryTimeStamp,
    SourceIPAddress,
    UPFunctionFeatures,
    UserPlaneIPResourceInformation,
    UserPlanePathFailureReport,
    UserPlanePathRecoveryReport,
    opaque_ie_class,
)
from ..ie.base import C, M, O, ie_field
from .schema import Message, message

__all__ = [
    "AssociationReleaseRequest",
    "AssociationReleaseResponse",
    "AssociationSetupRequest",
    "AssociationSetupResponse",
    "AssociationUpdateRequest",
    "AssociationUpdateResponse",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "NodeReportRequest",
    "NodeReportResponse",
    "PFDManagementRequest",
    "PFDManagementResponse",
    "SessionSetDeletionRequest",
    "SessionSetDeletionResponse",
    "SessionSetModificationRequest",
    "SessionSetModificationResponse",
    "VersionNotSupportedResponse",
]

_APPLICATION_IDS_PFDS = opaque_ie_class(IEType.APPLICATION_IDS_PFDS)
_SMF_SET_ID = opaque_ie_class(IEType.SMF_SET_ID)
_UE_IP_POOL_INFO = opaque_ie_class(IEType.UE_IP_ADDRESS_POOL_INFORMATION)
_GTPU_PATH_QOS_CONTROL = opaque_ie_class(IEType.GTP_U_PATH_QOS_CONTROL_INFORMATION)
_CLOCK_DRIFT_CONTROL = opaque_ie_class(IEType.CLOCK_DRIFT_CONTROL_INFORMATION)
_CLOCK_DRIFT_REPORT = opaque_ie_class(IEType.CLOCK_DRIFT_REPORT)
_GTPU_PATH_QOS_REPORT = opaque_ie_class(IEType.GTP_U_PATH_QOS_REPORT)
_NF_INSTANCE_ID = opaque_ie_class(IEType.NF_INSTANCE_ID)
_PFCPASREQ_FLAGS = opaque_ie_class(IEType.PFCPASREQ_FLAGS)
_PFCPASRSP_FLAGS = opaque_ie_class(IEType.PFCPASRSP_FLAGS)
_PFCPAUREQ_FLAGS = opaque_ie_class(IEType.PFCPAUREQ_FLAGS)
_UE_IP_USAGE = opaque_ie_class(IEType.UE_IP_ADDRESS_USAGE_INFORMATION)


class _Response(Message):
    REQUEST: ClassVar[bool] = False


@message
class HeartbeatRequest(Message):
    """Heartbeat Request, Table 7.4.2.1-1."""

    TYPE = MessageType.HEARTBEAT_REQUEST
    recovery_time_stamp: RecoveryTimeStamp = ie_field(RecoveryTimeStamp, M)
    source_ip_address: SourceIPAddress | None = ie_field(SourceIPAddress, O)


@message
class HeartbeatResponse(_Response):
    """Heartbeat Response, Table 7.4.2.2-1."""

    TYPE = MessageType.HEARTBEAT_RESPONSE
    recovery_time_stamp: RecoveryTimeStamp = ie_field(RecoveryTimeStamp, M)


@message
class PFDManagementRequest(Message):
    """PFD Management Request, Table 7.4.3.1-1."""

    TYPE = MessageType.PFD_MANAGEMENT_REQUEST
    application_ids_pfds: tuple[OpaqueIE, ...] = ie_field(_APPLICATION_IDS_PFDS, O, multiple=True)
    node_id: NodeID | None = ie_field(NodeID, O)


@message
class PFDManagementResponse(_Response):
    """PFD Management Response, Table 7.4.3.2-1."""

    TYPE = MessageType.PFD_MANAGEMENT_RESPONSE
    cause: Cause = ie_field(Cause, M)
    offending_ie: OffendingIE | None = ie_field(OffendingIE, C)
    node_id: NodeID | None = ie_field(NodeID, O)


@message
class AssociationSetupRequest(Message):
    """PFCP Association Setup Request, Table 7.4.4.1-1."""

    TYPE = MessageType.ASSOCIATION_SETUP_REQUEST
    node_id: NodeID = ie_field(NodeID, M)
    recovery_time_stamp: RecoveryTimeStamp = ie_field(RecoveryTimeStamp, M)
    up_function_features: UPFunctionFeatures | None = ie_field(UPFunctionFeatures, C)
    cp_function_features: CPFunctionFeatures | None = ie_field(CPFunctionFeatures, C)
    user_plane_ip_resource_information: tuple[UserPlaneIPResourceInformation, ...] = ie_field(
        UserPlaneIPResourceInformation, O, multiple=True
    )
    alternative_smf_ip_address: tuple[AlternativeSMFIPAddress, ...] = ie_field(
        AlternativeSMFIPAddress, O, multiple=True
    )
    smf_set_id: OpaqueIE | None = ie_field(_SMF_SET_ID, C)
    pfcp_session_retention_information: PFCPSessionRetentionInformation | None = ie_field(
        PFCPSessionRetentionInformation, O
    )
    ue_ip_address_pool_information: tuple[OpaqueIE, ...] = ie_field(_UE_IP_POOL_INFO, O, multiple=True)
    gtpu_path_qos_control_information: tuple[OpaqueIE, ...] = ie_field(_GTPU_PATH_QOS_CONTROL, C, multiple=True)
    clock_drift_control_information: tuple[OpaqueIE, ...] = ie_field(_CLOCK_DRIFT_CONTROL, C, multiple=True)
    nf_instance_id: OpaqueIE | None = ie_field(_NF_INSTANCE_ID, O)
    pfcpasreq_flags: OpaqueIE | None = ie_field(_PFCPASREQ_FLAGS, O)


@message
class AssociationSetupResponse(_Response):
    """PFCP Association Setup Response, Table 7.4.4.2-1."""

    TYPE = MessageType.ASSOCIATION_SETUP_RESPONSE
    node_id: NodeID = ie_field(NodeID, M)
    cause: Cause = ie_field(Cause, M)
    recovery_time_stamp: RecoveryTimeStamp = ie_field(RecoveryTimeStamp, M)
    up_function_features: UPFunctionFeatures | None = ie_field(UPFunctionFeatures, C)
    cp_function_features: CPFunctionFeatures | None = ie_field(CPFunctionFeatures, C)
    user_plane_ip_resource_information: tuple[UserPlaneIPResourceInformation, ...] = ie_field(
        UserPlaneIPResourceInformation, O, multiple=True
    )
    alternative_smf_ip_address: tuple[AlternativeSMFIPAddress, ...] = ie_field(
        AlternativeSMFIPAddress, O, multiple=True
    )
    smf_set_id: OpaqueIE | None = ie_field(_SMF_SET_ID, C)
    pfcpasrsp_flags: OpaqueIE | None = ie_field(_PFCPASRSP_FLAGS, O)
    clock_drift_control_information: tuple[OpaqueIE, ...] = ie_field(_CLOCK_DRIFT_CONTROL, C, multiple=True)
    ue_ip_address_pool_information: tuple[OpaqueIE, ...] = ie_field(_UE_IP_POOL_INFO, O, multiple=True)
    gtpu_path_qos_control_information: tuple[OpaqueIE, ...] = ie_field(_GTPU_PATH_QOS_CONTROL, C, multiple=True)
    nf_instance_id: OpaqueIE | None = ie_field(_NF_INSTANCE_ID, O)


@message
class AssociationUpdateRequest(Message):
    """PFCP Association Update Request, Table 7.4.4.3-1."""

    TYPE = MessageType.ASSOCIATION_UPDATE_REQUEST
    node_id: NodeID = ie_field(NodeID, M)
    up_function_features: UPFunctionFeatures | None = ie_field(UPFunctionFeatures, O)
    cp_function_features: CPFunctionFeatures | None = ie_field(CPFunctionFeatures, O)
    user_plane_ip_resource_information: tuple[UserPlaneIPResourceInformation, ...] = ie_field(
        UserPlaneIPResourceInformation, O, multiple=True
    )
    pfcp_association_release_request: PFCPAssociationReleaseRequest | None = ie_field(PFCPAssociationReleaseRequest, C)
    graceful_release_period: GracefulReleasePeriod | None = ie_field(GracefulReleasePeriod, C)
    pfcpaureq_flags: OpaqueIE | None = ie_field(_PFCPAUREQ_FLAGS, O)
    alternative_smf_ip_address: tuple[AlternativeSMFIPAddress, ...] = ie_field(
        AlternativeSMFIPAddress, O, multiple=True
    )
    smf_set_id: OpaqueIE | None = ie_field(_SMF_SET_ID, C)
    clock_drift_control_information: tuple[OpaqueIE, ...] = ie_field(_CLOCK_DRIFT_CONTROL, C, multiple=True)
    ue_ip_address_pool_information: tuple[OpaqueIE, ...] = ie_field(_UE_IP_POOL_INFO, O, multiple=True)
    gtpu_path_qos_control_information: tuple[OpaqueIE, ...] = ie_field(_GTPU_PATH_QOS_CONTROL, C, multiple=True)
    ue_ip_address_usage_information: tuple[OpaqueIE, ...] = ie_field(_UE_IP_USAGE, O, multiple=True)


@message
class AssociationUpdateResponse(_Response):
    """PFCP Association Update Response, Table 7.4.4.4-1."""

    TYPE = MessageType.ASSOCIATION_UPDATE_RESPONSE
    node_id: NodeID = ie_field(NodeID, M)
    cause: Cause = ie_field(Cause, M)
    up_function_features: UPFunctionFeatures | None = ie_field(UPFunctionFeatures, O)
    cp_function_features: CPFunctionFeatures | None = ie_field(CPFunctionFeatures, O)
    ue_ip_address_usage_information: tuple[OpaqueIE, ...] = ie_field(_UE_IP_USAGE, O, multiple=True)


@message
class AssociationReleaseRequest(Message):
    """PFCP Association Release Request, Table 7.4.4.5-1."""

    TYPE = MessageType.ASSOCIATION_RELEASE_REQUEST
    node_id: NodeID = ie_field(NodeID, M)


@message
class AssociationReleaseResponse(_Response):
    """PFCP Association Release Response, Table 7.4.4.6-1."""

    TYPE = MessageType.ASSOCIATION_RELEASE_RESPONSE
    node_id: NodeID = ie_field(NodeID, M)
    cause: Cause = ie_field(Cause, M)


@message
class VersionNotSupportedResponse(_Response):
    """PFCP Version Not Supported Response, §7.4.4.7: header only."""

    TYPE = MessageType.VERSION_NOT_SUPPORTED_RESPONSE


@message
class NodeReportRequest(Message):
    """PFCP Node Report Request, Table 7.4.5.1-1."""

    TYPE = MessageType.NODE_REPORT_REQUEST
    node_id: NodeID = ie_field(NodeID, M)
    node_report_type: NodeReportType = ie_field(NodeReportType, M)
    user_plane_path_failure_report: UserPlanePathFailureReport | None = ie_field(UserPlanePathFailureReport, C)
    user_plane_path_recovery_report: UserPlanePathRecoveryReport | None = ie_field(UserPlanePathRecoveryReport, C)
    clock_drift_report: tuple[OpaqueIE, ...] = ie_field(_CLOCK_DRIFT_REPORT, C, multiple=True)
    gtpu_path_qos_report: tuple[OpaqueIE, ...] = ie_field(_GTPU_PATH_QOS_REPORT, C, multiple=True)


@message
class NodeReportResponse(_Response):
    """PFCP Node Report Response, Table 7.4.5.2-1."""

    TYPE = MessageType.NODE_REPORT_RESPONSE
    node_id: NodeID = ie_field(NodeID, M)
    cause: Cause = ie_field(Cause, M)
    offending_ie: OffendingIE | None = ie_field(OffendingIE, C)


@message
class SessionSetDeletionRequest(Message):
    """PFCP Session Set Deletion Request, Table 7.4.6.1-1. The FQ-CSIDs are told
    apart by their order, as in the table."""

    TYPE = MessageType.SESSION_SET_DELETION_REQUEST
    node_id: NodeID = ie_field(NodeID, M)
    sgw_c_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    pgw_c_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    up_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    twan_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    epdg_fq_csid: FQCSID | None = ie_field(FQCSID, C)
    mme_fq_csid: FQCSID | None = ie_field(FQCSID, C)


@message
class SessionSetDeletionResponse(_Response):
    """PFCP Session Set Deletion Response, Table 7.4.6.2-1."""

    TYPE = MessageType.SESSION_SET_DELETION_RESPONSE
    node_id: NodeID = ie_field(NodeID, M)
    cause: Cause = ie_field(Cause, M)
    offending_ie: OffendingIE | None = ie_field(OffendingIE, C)


@message
class SessionSetModificationRequest(Message):
    """PFCP Session Set Modification Request, Table 7.4.7.1-1 (Rel-17): move
    the sessions of FQ-CSIDs, Group IDs or CP IP addresses to an alternative SMF."""

    TYPE = MessageType.SESSION_SET_MODIFICATION_REQUEST
    alternative_smf_ip_address: AlternativeSMFIPAddress = ie_field(AlternativeSMFIPAddress, M)
    fq_csid: tuple[FQCSID, ...] = ie_field(FQCSID, C, multiple=True)
    group_id: tuple[OpaqueIE, ...] = ie_field(opaque_ie_class(IEType.GROUP_ID), C, multiple=True)
    cp_ip_address: tuple[OpaqueIE, ...] = ie_field(opaque_ie_class(IEType.CP_IP_ADDRESS), C, multiple=True)


@message
class SessionSetModificationResponse(_Response):
    """PFCP Session Set Modification Response, Table 7.4.7.2-1 (Rel-17)."""

    TYPE = MessageType.SESSION_SET_MODIFICATION_RESPONSE
    node_id: NodeID = ie_field(NodeID, M)
    cause: Cause = ie_field(Cause, M)
    offending_ie: OffendingIE | None = ie_field(OffendingIE, C)
