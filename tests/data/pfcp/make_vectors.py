"""Build the PFCP message vectors of tests/data/pfcp with typed constructors.

Every ``<name>.bin`` in this directory is ``pfcp.encode(VECTORS[name]())`` and
``<name>.json`` is :func:`to_jsonable` of the same message. The unit tests check
both directions byte for byte (decode(bin) gives the json, encode(build())
gives the bin) and run every .bin through Wireshark's dissector.

Regenerate after a deliberate change to the vectors::

    .venv/bin/python tests/data/pfcp/make_vectors.py          # write the files
    .venv/bin/python tests/data/pfcp/make_vectors.py --check  # compare only
"""

from __future__ import annotations

import dataclasses
import json
import struct
import sys
from collections.abc import Callable
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pfcp
from pfcp import (
    APNDNN,
    BARID,
    FARID,
    FQCSID,
    FSEID,
    FTEID,
    GBR,
    MBR,
    PDI,
    PDRID,
    QERID,
    QFI,
    RQI,
    SNSSAI,
    URRID,
    URSEQN,
    ActivatePredefinedRules,
    ActivationTime,
    AdditionalUsageReportsInformation,
    AlternativeSMFIPAddress,
    ApplicationDetectionInformation,
    ApplicationID,
    ApplyAction,
    ApplyActionFlags,
    AveragingWindow,
    Cause,
    CauseValue,
    CPFeatures,
    CPFunctionFeatures,
    CreateBAR,
    CreatedPDR,
    CreateFAR,
    CreatePDR,
    CreateQER,
    CreateURR,
    DeactivatePredefinedRules,
    DestinationInterface,
    DestinationInterfaceValue,
    DLBufferingDuration,
    DLBufferingSuggestedPacketCount,
    DownlinkDataNotificationDelay,
    DownlinkDataReport,
    DownlinkDataServiceInformation,
    DroppedDLTrafficThreshold,
    DuplicatingParameters,
    DurationMeasurement,
    EndTime,
    ErrorIndicationReport,
    FailedRuleID,
    ForwardingParameters,
    ForwardingPolicy,
    Gate,
    GateStatus,
    GracefulReleasePeriod,
    HeaderEnrichment,
    IEType,
    Interface3GPPType,
    LinkedURRID,
    LoadControlInformation,
    MeasurementInformation,
    MeasurementInformationFlags,
    MeasurementMethod,
    MeasurementMethodFlags,
    MeasurementPeriod,
    Message,
    Metric,
    MonitoringTime,
    NetworkInstance,
    NodeID,
    NodeReportType,
    NodeReportTypeFlags,
    OCIFlags,
    OCIFlagsValue,
    OffendingIE,
    OuterHeaderCreation,
    OuterHeaderCreationDescription,
    OuterHeaderRemoval,
    OuterHeaderRemovalDescription,
    OverloadControlInformation,
    PagingPolicyIndicator,
    PDNType,
    PDNTypeValue,
    PFCPAssociationReleaseRequest,
    PFCPAssociationReleaseRequestFlags,
    PFCPSMReqFlags,
    PFCPSMReqFlagsValue,
    PFCPSRRspFlags,
    PFCPSRRspFlagsValue,
    Precedence,
    QueryURR,
    QueryURRReference,
    RATType,
    RecoveryTimeStamp,
    RedirectAddressType,
    RedirectInformation,
    RemoteGTPUPeer,
    RemoveBAR,
    RemoveFAR,
    RemovePDR,
    RemoveQER,
    RemoveURR,
    ReportingTriggers,
    ReportingTriggersFlags,
    ReportType,
    ReportTypeFlags,
    RuleIDType,
    SDFFilter,
    SequenceNumber,
    SourceInterface,
    SourceInterfaceValue,
    SourceIPAddress,
    StartTime,
    SuggestedBufferingPacketsCount,
    TGPPInterfaceType,
    TimeOfFirstPacket,
    TimeOfLastPacket,
    Timer,
    TimerUnit,
    TimeThreshold,
    TraceInformation,
    TransportLevelMarking,
    UEIPAddress,
    UpdateBAR,
    UpdateBARSessionReportResponse,
    UpdateFAR,
    UpdateForwardingParameters,
    UpdatePDR,
    UpdateQER,
    UpdateURR,
    UPFeatures,
    UPFunctionFeatures,
    UsageInformation,
    UsageInformationFlags,
    UsageReportSDR,
    UsageReportSMR,
    UsageReportSRR,
    UsageReportTrigger,
    UsageReportTriggerFlags,
    UserID,
    UserPlaneInactivityTimer,
    UserPlaneIPResourceInformation,
    UserPlanePathFailureReport,
    VolumeMeasurement,
    VolumeQuota,
    VolumeThreshold,
)
from pfcp.ie.base import IE, GroupedIE, OpaqueIE, RawIE, VendorIE

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
#: The shared golden Session Establishment Request (outside the repo; may be absent).
GOLDEN_HEX = REPO / ".." / "shared" / "pfcp-vectors" / "session-establishment-request.hex"

#: name -> builder of the message stored as <name>.bin / <name>.json.
VECTORS: dict[str, Callable[[], Message]] = {}

# A fixed Recovery Time Stamp: 2023-11-14T22:13:20Z.
_STARTED = RecoveryTimeStamp.from_unix(1_700_000_000)
_CP = IPv4Address("192.0.2.1")
_UP = IPv4Address("192.0.2.2")
_UP_N3 = IPv4Address("198.51.100.2")
_GNB = IPv4Address("198.51.100.10")
_UE4 = IPv4Address("10.45.0.9")
_UE6 = IPv6Address("2001:db8:45::")
_SESSION_CP = 0x0102030405060708
_SESSION_UP = 0x1111000000000001


def vector(name: str) -> Callable[[Callable[[], Message]], Callable[[], Message]]:
    def register(build: Callable[[], Message]) -> Callable[[], Message]:
        VECTORS[name] = build
        return build

    return register


def tlv(ie_type: int, payload: bytes) -> bytes:
    return struct.pack(">HH", ie_type, len(payload)) + payload


def opaque(ie_type: IEType, payload: bytes) -> OpaqueIE:
    cls = pfcp.IE_CLASSES[ie_type]
    assert issubclass(cls, OpaqueIE)
    return cls(payload)


# --------------------------------------------------------------------------
# Node related messages (§7.4)


@vector("heartbeat-request")
def heartbeat_request() -> Message:
    return pfcp.HeartbeatRequest(sequence=1, recovery_time_stamp=_STARTED, source_ip_address=SourceIPAddress(_CP))


@vector("heartbeat-response")
def heartbeat_response() -> Message:
    return pfcp.HeartbeatResponse(sequence=1, recovery_time_stamp=RecoveryTimeStamp.from_unix(1_699_999_000))


def _application_ids_pfds() -> OpaqueIE:
    # Application ID "app1" + PFD Context { PFD Contents: FD flag, flow description } (§7.4.3.1).
    flow = b"permit out ip from 192.0.2.10 to assigned"
    contents = tlv(IEType.PFD_CONTENTS, b"\x01\x00" + len(flow).to_bytes(2, "big") + flow)
    payload = tlv(IEType.APPLICATION_ID, b"app1") + tlv(IEType.PFD_CONTEXT, contents)
    return opaque(IEType.APPLICATION_IDS_PFDS, payload)


@vector("pfd-management-request")
def pfd_management_request() -> Message:
    return pfcp.PFDManagementRequest(sequence=2, application_ids_pfds=(_application_ids_pfds(),))


@vector("pfd-management-response")
def pfd_management_response() -> Message:
    return pfcp.PFDManagementResponse(
        sequence=2,
        cause=Cause(CauseValue.MANDATORY_IE_INCORRECT),
        offending_ie=OffendingIE(int(IEType.APPLICATION_IDS_PFDS)),
    )


def _up_resources() -> tuple[UserPlaneIPResourceInformation, ...]:
    return (
        UserPlaneIPResourceInformation(
            ipv4=_UP_N3, teid_range_bits=2, teid_range=1, network_instance="access", source_interface=0
        ),
        UserPlaneIPResourceInformation(ipv4=_UP, ipv6=IPv6Address("2001:db8::2"), network_instance="core.edge"),
    )


@vector("association-setup-request")
def association_setup_request() -> Message:
    # From the UP function (§6.2.6.2.2): its features and GTP-U resources.
    return pfcp.AssociationSetupRequest(
        sequence=3,
        node_id=NodeID(_UP),
        recovery_time_stamp=_STARTED,
        up_function_features=UPFunctionFeatures(
            UPFeatures.FTUP | UPFeatures.EMPU | UPFeatures.PDIU | UPFeatures.UEIP | UPFeatures.MPAS, octets=4
        ),
        user_plane_ip_resource_information=_up_resources(),
    )


@vector("association-setup-request-cp")
def association_setup_request_cp() -> Message:
    # From the CP function, named by FQDN, with CP features and an alternative SMF address.
    return pfcp.AssociationSetupRequest(
        sequence=4,
        node_id=NodeID("smf1.edge.example"),
        recovery_time_stamp=_STARTED,
        cp_function_features=CPFunctionFeatures(CPFeatures.LOAD | CPFeatures.OVRL),
        alternative_smf_ip_address=(AlternativeSMFIPAddress(IPv4Address("192.0.2.5"), preferred=True),),
    )


@vector("association-setup-response")
def association_setup_response() -> Message:
    return pfcp.AssociationSetupResponse(
        sequence=3,
        node_id=NodeID(_CP),
        cause=Cause(CauseValue.REQUEST_ACCEPTED),
        recovery_time_stamp=RecoveryTimeStamp.from_unix(1_699_990_000),
        cp_function_features=CPFunctionFeatures(CPFeatures.LOAD),
    )


@vector("association-update-request")
def association_update_request() -> Message:
    return pfcp.AssociationUpdateRequest(
        sequence=5,
        node_id=NodeID(_UP),
        up_function_features=UPFunctionFeatures(UPFeatures.FTUP | UPFeatures.BUCP),
        user_plane_ip_resource_information=_up_resources()[:1],
        pfcp_association_release_request=PFCPAssociationReleaseRequest(PFCPAssociationReleaseRequestFlags.SARR),
        graceful_release_period=GracefulReleasePeriod(TimerUnit.MINUTES_1, 5),
    )


@vector("association-update-response")
def association_update_response() -> Message:
    return pfcp.AssociationUpdateResponse(
        sequence=5,
        node_id=NodeID(_CP),
        cause=Cause(CauseValue.REQUEST_ACCEPTED),
        cp_function_features=CPFunctionFeatures(CPFeatures.LOAD | CPFeatures.OVRL),
    )


@vector("association-release-request")
def association_release_request() -> Message:
    return pfcp.AssociationReleaseRequest(sequence=6, node_id=NodeID(IPv6Address("2001:db8::1")))


@vector("association-release-response")
def association_release_response() -> Message:
    return pfcp.AssociationReleaseResponse(
        sequence=6, node_id=NodeID(IPv6Address("2001:db8::2")), cause=Cause(CauseValue.REQUEST_ACCEPTED)
    )


@vector("version-not-supported-response")
def version_not_supported_response() -> Message:
    return pfcp.VersionNotSupportedResponse(sequence=7)


@vector("node-report-request")
def node_report_request() -> Message:
    return pfcp.NodeReportRequest(
        sequence=8,
        node_id=NodeID(_UP),
        node_report_type=NodeReportType(NodeReportTypeFlags.UPFR),
        user_plane_path_failure_report=UserPlanePathFailureReport(
            remote_gtpu_peer=(
                RemoteGTPUPeer(ipv4=_GNB),
                RemoteGTPUPeer(
                    ipv6=IPv6Address("2001:db8:10::10"),
                    destination_interface=int(DestinationInterfaceValue.ACCESS),
                    network_instance="access",
                ),
            )
        ),
    )


@vector("node-report-response")
def node_report_response() -> Message:
    return pfcp.NodeReportResponse(sequence=8, node_id=NodeID(_CP), cause=Cause(CauseValue.REQUEST_ACCEPTED))


@vector("session-set-deletion-request")
def session_set_deletion_request() -> Message:
    return pfcp.SessionSetDeletionRequest(
        sequence=9,
        node_id=NodeID(_CP),
        sgw_c_fq_csid=FQCSID(_CP, (1, 2, 3), node_type=1),
        pgw_c_fq_csid=FQCSID(IPv6Address("2001:db8::1"), (0x100,)),
        up_fq_csid=FQCSID(0x00F1100A, (7,)),
    )


@vector("session-set-deletion-response")
def session_set_deletion_response() -> Message:
    return pfcp.SessionSetDeletionResponse(sequence=9, node_id=NodeID(_UP), cause=Cause(CauseValue.REQUEST_ACCEPTED))


@vector("session-set-modification-request")
def session_set_modification_request() -> Message:
    return pfcp.SessionSetModificationRequest(
        sequence=10,
        alternative_smf_ip_address=AlternativeSMFIPAddress(
            IPv4Address("192.0.2.5"), IPv6Address("2001:db8::5"), preferred=True
        ),
        fq_csid=(FQCSID(_CP, (1, 2)), FQCSID(_CP, (3,))),
    )


@vector("session-set-modification-response")
def session_set_modification_response() -> Message:
    return pfcp.SessionSetModificationResponse(
        sequence=10, node_id=NodeID(_UP), cause=Cause(CauseValue.REQUEST_ACCEPTED)
    )


# --------------------------------------------------------------------------
# Session related messages (§7.5)


def _uplink_pdr() -> CreatePDR:
    return CreatePDR(
        pdr_id=PDRID(1),
        precedence=Precedence(100),
        pdi=PDI(
            source_interface=SourceInterface(SourceInterfaceValue.ACCESS),
            local_f_teid=FTEID(choose_v4=True, choose_id=5),
            network_instance=NetworkInstance("access.edge"),
            ue_ip_address=(UEIPAddress(ipv4=_UE4), UEIPAddress(ipv6=_UE6, ipv6_prefix_length=64)),
            sdf_filter=(SDFFilter(flow_description="permit out ip from any to assigned", sdf_filter_id=1),),
            qfi=(QFI(5),),
            source_interface_type=TGPPInterfaceType(Interface3GPPType.N3_3GPP_ACCESS),
        ),
        outer_header_removal=OuterHeaderRemoval(OuterHeaderRemovalDescription.GTPU_UDP_IPV4, True),
        far_id=FARID(1),
        urr_id=(URRID(1), URRID(2)),
        qer_id=(QERID(1),),
    )


def _downlink_pdr() -> CreatePDR:
    return CreatePDR(
        pdr_id=PDRID(2),
        precedence=Precedence(100),
        pdi=PDI(
            source_interface=SourceInterface(SourceInterfaceValue.CORE),
            network_instance=NetworkInstance("internet"),
            ue_ip_address=(UEIPAddress(ipv4=_UE4, is_destination=True),),
            sdf_filter=(
                SDFFilter(
                    flow_description="permit out 17 from 203.0.113.0/24 1000-2000 to assigned",
                    tos_traffic_class=0x2CFC,
                    security_parameter_index=0x1000,
                    flow_label=0x0ABCDE,
                    sdf_filter_id=2,
                ),
            ),
        ),
        far_id=FARID(2),
        urr_id=(URRID(1),),
        qer_id=(QERID(1), QERID(2)),
        activation_time=ActivationTime(_STARTED.value + 60),
    )


def _application_pdr() -> CreatePDR:
    return CreatePDR(
        pdr_id=PDRID(3),
        precedence=Precedence(50),
        pdi=PDI(
            source_interface=SourceInterface(SourceInterfaceValue.CORE),
            application_id=ApplicationID("app1"),
        ),
        far_id=FARID(3),
        activate_predefined_rules=(ActivatePredefinedRules("video-optimise"),),
    )


@vector("session-establishment-request")
def session_establishment_request() -> Message:
    return pfcp.SessionEstablishmentRequest(
        sequence=0x10,
        seid=0,
        node_id=NodeID("smf1.edge.example"),
        cp_f_seid=FSEID(_SESSION_CP, _CP, IPv6Address("2001:db8::1")),
        create_pdr=(_uplink_pdr(), _downlink_pdr(), _application_pdr()),
        create_far=(
            CreateFAR(
                far_id=FARID(1),
                apply_action=ApplyAction(ApplyActionFlags.FORW),
                forwarding_parameters=ForwardingParameters(
                    destination_interface=DestinationInterface(DestinationInterfaceValue.CORE),
                    network_instance=NetworkInstance("internet"),
                    forwarding_policy=ForwardingPolicy(b"policy-1"),
                    header_enrichment=HeaderEnrichment(b"X-MSISDN", b"8613912345678"),
                    destination_interface_type=TGPPInterfaceType(Interface3GPPType.N6),
                ),
            ),
            CreateFAR(
                far_id=FARID(2),
                apply_action=ApplyAction(ApplyActionFlags.FORW | ApplyActionFlags.DUPL),
                forwarding_parameters=ForwardingParameters(
                    destination_interface=DestinationInterface(DestinationInterfaceValue.ACCESS),
                    network_instance=NetworkInstance("access.edge"),
                    outer_header_creation=OuterHeaderCreation(
                        OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=0x55667788, ipv4=_GNB
                    ),
                    transport_level_marking=TransportLevelMarking(0xB8, 0xFC),
                ),
                duplicating_parameters=(
                    DuplicatingParameters(
                        destination_interface=DestinationInterface(DestinationInterfaceValue.LI_FUNCTION),
                        outer_header_creation=OuterHeaderCreation(
                            OuterHeaderCreationDescription.UDP_IPV4, ipv4=IPv4Address("192.0.2.99"), port=5000
                        ),
                    ),
                ),
            ),
            CreateFAR(
                far_id=FARID(3),
                apply_action=ApplyAction(ApplyActionFlags.FORW),
                forwarding_parameters=ForwardingParameters(
                    destination_interface=DestinationInterface(DestinationInterfaceValue.CORE),
                    redirect_information=RedirectInformation(RedirectAddressType.URL, "http://portal.example/"),
                ),
            ),
            CreateFAR(
                far_id=FARID(4),
                apply_action=ApplyAction(ApplyActionFlags.BUFF | ApplyActionFlags.NOCP),
                bar_id=BARID(1),
            ),
        ),
        create_urr=(
            CreateURR(
                urr_id=URRID(1),
                measurement_method=MeasurementMethod(MeasurementMethodFlags.VOLUM | MeasurementMethodFlags.DURAT),
                reporting_triggers=ReportingTriggers(
                    ReportingTriggersFlags.VOLTH | ReportingTriggersFlags.VOLQU | ReportingTriggersFlags.PERIO
                ),
                measurement_period=MeasurementPeriod(3600),
                volume_threshold=VolumeThreshold(total=10_000_000_000, uplink=4_000_000_000, downlink=6_000_000_000),
                volume_quota=VolumeQuota(total=50_000_000_000),
                dropped_dl_traffic_threshold=DroppedDLTrafficThreshold(packets=1000, octets=1_000_000),
                monitoring_time=MonitoringTime(_STARTED.value + 86400),
                measurement_information=MeasurementInformation(MeasurementInformationFlags.MNOP),
            ),
            CreateURR(
                urr_id=URRID(2),
                measurement_method=MeasurementMethod(MeasurementMethodFlags.DURAT),
                reporting_triggers=ReportingTriggers(ReportingTriggersFlags.TIMTH),
                time_threshold=TimeThreshold(600),
                linked_urr_id=(LinkedURRID(1),),
                far_id_for_quota_action=FARID(4),
            ),
        ),
        create_qer=(
            CreateQER(
                qer_id=QERID(1),
                gate_status=GateStatus(Gate.OPEN, Gate.OPEN),
                mbr=MBR(100_000, 200_000),
                qfi=QFI(5),
            ),
            CreateQER(
                qer_id=QERID(2),
                gate_status=GateStatus(Gate.CLOSED, Gate.OPEN),
                mbr=MBR(0x0FFFFFFFFF, 0x0FFFFFFFFF),
                gbr=GBR(10_000, 20_000),
                qfi=QFI(1),
                rqi=RQI(True),
                paging_policy_indicator=PagingPolicyIndicator(3),
                averaging_window=AveragingWindow(2000),
            ),
        ),
        create_bar=CreateBAR(
            bar_id=BARID(1),
            downlink_data_notification_delay=DownlinkDataNotificationDelay(2),
            suggested_buffering_packets_count=SuggestedBufferingPacketsCount(10),
        ),
        pdn_type=PDNType(PDNTypeValue.IPV4V6),
        sgw_c_fq_csid=FQCSID(_CP, (1,)),
        mme_fq_csid=FQCSID(IPv4Address("192.0.2.20"), (0x10, 0x11)),
        user_plane_inactivity_timer=UserPlaneInactivityTimer(300),
        user_id=UserID(imsi="001010123456789", imei="3563640912345678", msisdn="8613912345678", nai="ue@example.org"),
        trace_information=TraceInformation(
            mcc="001",
            mnc="01",
            trace_id=0x123456,
            triggering_events=b"\x01\x00",
            session_trace_depth=1,
            interfaces=b"\x03\x00",
            collection_entity=IPv4Address("192.0.2.50"),
        ),
        apn_dnn=APNDNN("internet"),
        recovery_time_stamp=_STARTED,
        s_nssai=SNSSAI(1, 0x010203),
        rat_type=RATType(6),
    )


@vector("session-establishment-response")
def session_establishment_response() -> Message:
    return pfcp.SessionEstablishmentResponse(
        sequence=0x10,
        seid=_SESSION_CP,
        node_id=NodeID(_UP),
        cause=Cause(CauseValue.REQUEST_ACCEPTED),
        up_f_seid=FSEID(_SESSION_UP, _UP),
        created_pdr=(
            CreatedPDR(pdr_id=PDRID(1), local_f_teid=FTEID(0x0000ABCD, _UP_N3)),
            CreatedPDR(
                pdr_id=PDRID(4),
                local_f_teid=FTEID(0x0000ABCE, _UP_N3, IPv6Address("2001:db8:100::2")),
                ue_ip_address=(UEIPAddress(ipv4=IPv4Address("10.45.0.10")),),
            ),
        ),
        load_control_information=LoadControlInformation(sequence_number=SequenceNumber(1), metric=Metric(20)),
        overload_control_information=OverloadControlInformation(
            sequence_number=SequenceNumber(2),
            metric=Metric(50),
            timer=Timer(TimerUnit.SECONDS_2, 30),
            oci_flags=OCIFlags(OCIFlagsValue.AOCI),
        ),
        up_fq_csid=FQCSID(_UP, (5,)),
    )


@vector("session-establishment-response-rejected")
def session_establishment_response_rejected() -> Message:
    return pfcp.SessionEstablishmentResponse(
        sequence=0x11,
        seid=_SESSION_CP,
        node_id=NodeID(_UP),
        cause=Cause(CauseValue.RULE_CREATION_MODIFICATION_FAILURE),
        offending_ie=OffendingIE(int(IEType.CREATE_QER)),
        failed_rule_id=FailedRuleID(RuleIDType.QER, 2),
    )


@vector("session-modification-request")
def session_modification_request() -> Message:
    return pfcp.SessionModificationRequest(
        sequence=0x20,
        seid=_SESSION_UP,
        cp_f_seid=FSEID(_SESSION_CP, IPv4Address("192.0.2.3")),
        remove_pdr=(RemovePDR(pdr_id=PDRID(3)),),
        remove_far=(RemoveFAR(far_id=FARID(3)),),
        remove_urr=(RemoveURR(urr_id=URRID(2)),),
        remove_qer=(RemoveQER(qer_id=QERID(2)),),
        remove_bar=RemoveBAR(bar_id=BARID(1)),
        create_pdr=(
            CreatePDR(
                pdr_id=PDRID(5),
                precedence=Precedence(10),
                pdi=PDI(
                    source_interface=SourceInterface(SourceInterfaceValue.CORE),
                    network_instance=NetworkInstance("internet"),
                    ue_ip_address=(UEIPAddress(ipv6=_UE6, is_destination=True, ipv6_prefix_length=64),),
                ),
                far_id=FARID(5),
            ),
        ),
        create_far=(
            CreateFAR(
                far_id=FARID(5),
                apply_action=ApplyAction(ApplyActionFlags.FORW),
                forwarding_parameters=ForwardingParameters(
                    destination_interface=DestinationInterface(DestinationInterfaceValue.ACCESS),
                    outer_header_creation=OuterHeaderCreation(
                        OuterHeaderCreationDescription.GTPU_UDP_IPV6,
                        teid=0x01020304,
                        ipv6=IPv6Address("2001:db8:10::10"),
                    ),
                ),
            ),
        ),
        create_urr=(
            CreateURR(
                urr_id=URRID(3),
                measurement_method=MeasurementMethod(MeasurementMethodFlags.VOLUM),
                reporting_triggers=ReportingTriggers(ReportingTriggersFlags.VOLTH),
                volume_threshold=VolumeThreshold(downlink=1_000_000),
            ),
        ),
        create_qer=(CreateQER(qer_id=QERID(3), gate_status=GateStatus(), mbr=MBR(1000, 1000)),),
        update_pdr=(
            UpdatePDR(
                pdr_id=PDRID(1),
                precedence=Precedence(90),
                pdi=PDI(
                    source_interface=SourceInterface(SourceInterfaceValue.ACCESS),
                    local_f_teid=FTEID(0x0000ABCD, _UP_N3),
                    network_instance=NetworkInstance("access.edge"),
                ),
                far_id=FARID(1),
                urr_id=(URRID(1), URRID(3)),
                deactivate_predefined_rules=(DeactivatePredefinedRules("video-optimise"),),
            ),
            UpdatePDR(pdr_id=PDRID(2), qer_id=(QERID(3),)),
        ),
        update_far=(
            UpdateFAR(
                far_id=FARID(2),
                apply_action=ApplyAction(ApplyActionFlags.FORW),
                update_forwarding_parameters=UpdateForwardingParameters(
                    destination_interface=DestinationInterface(DestinationInterfaceValue.ACCESS),
                    outer_header_creation=OuterHeaderCreation(
                        OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=0x55667799, ipv4=IPv4Address("198.51.100.11")
                    ),
                    pfcpsmreq_flags=PFCPSMReqFlags(PFCPSMReqFlagsValue.SNDEM),
                ),
            ),
        ),
        update_urr=(
            UpdateURR(
                urr_id=URRID(1),
                reporting_triggers=ReportingTriggers(ReportingTriggersFlags.VOLTH | ReportingTriggersFlags.TIMTH),
                volume_threshold=VolumeThreshold(total=20_000_000_000),
                time_threshold=TimeThreshold(1200),
            ),
        ),
        update_qer=(
            UpdateQER(qer_id=QERID(1), gate_status=GateStatus(Gate.CLOSED, Gate.CLOSED), mbr=MBR(50_000, 100_000)),
        ),
        update_bar=UpdateBAR(bar_id=BARID(2), suggested_buffering_packets_count=SuggestedBufferingPacketsCount(4)),
        pfcpsmreq_flags=PFCPSMReqFlags(PFCPSMReqFlagsValue.QAURR),
        query_urr=(QueryURR(urr_id=URRID(1)),),
        user_plane_inactivity_timer=UserPlaneInactivityTimer(600),
        query_urr_reference=QueryURRReference(77),
    )


def _volume() -> VolumeMeasurement:
    return VolumeMeasurement(
        total_volume=3_000_000,
        uplink_volume=1_000_000,
        downlink_volume=2_000_000,
        total_packets=3000,
        uplink_packets=1000,
        downlink_packets=2000,
    )


@vector("session-modification-response")
def session_modification_response() -> Message:
    return pfcp.SessionModificationResponse(
        sequence=0x20,
        seid=_SESSION_CP,
        cause=Cause(CauseValue.REQUEST_ACCEPTED),
        created_pdr=(CreatedPDR(pdr_id=PDRID(5), local_f_teid=FTEID(0x0000ABCF, _UP_N3)),),
        usage_report=(
            UsageReportSMR(
                urr_id=URRID(1),
                ur_seqn=URSEQN(3),
                usage_report_trigger=UsageReportTrigger(UsageReportTriggerFlags.IMMER),
                start_time=StartTime(_STARTED.value + 100),
                end_time=EndTime(_STARTED.value + 160),
                volume_measurement=_volume(),
                duration_measurement=DurationMeasurement(60),
                time_of_first_packet=TimeOfFirstPacket(_STARTED.value + 101),
                time_of_last_packet=TimeOfLastPacket(_STARTED.value + 159),
                usage_information=UsageInformation(UsageInformationFlags.BEF),
                query_urr_reference=QueryURRReference(77),
            ),
        ),
        additional_usage_reports_information=AdditionalUsageReportsInformation(number_of_reports=2),
    )


@vector("session-deletion-request")
def session_deletion_request() -> Message:
    return pfcp.SessionDeletionRequest(sequence=0x30, seid=_SESSION_UP)


@vector("session-deletion-response")
def session_deletion_response() -> Message:
    return pfcp.SessionDeletionResponse(
        sequence=0x30,
        seid=_SESSION_CP,
        cause=Cause(CauseValue.REQUEST_ACCEPTED),
        load_control_information=LoadControlInformation(sequence_number=SequenceNumber(7), metric=Metric(0)),
        usage_report=(
            UsageReportSDR(
                urr_id=URRID(1),
                ur_seqn=URSEQN(4),
                usage_report_trigger=UsageReportTrigger(UsageReportTriggerFlags.TERMR),
                start_time=StartTime(_STARTED.value + 160),
                end_time=EndTime(_STARTED.value + 400),
                volume_measurement=VolumeMeasurement(total_volume=5000, uplink_volume=2000, downlink_volume=3000),
                duration_measurement=DurationMeasurement(240),
                usage_information=UsageInformation(UsageInformationFlags.AFT),
            ),
            UsageReportSDR(
                urr_id=URRID(3),
                ur_seqn=URSEQN(1),
                usage_report_trigger=UsageReportTrigger(UsageReportTriggerFlags.TERMR),
                volume_measurement=VolumeMeasurement(downlink_volume=123456),
            ),
        ),
    )


@vector("session-report-request")
def session_report_request() -> Message:
    return pfcp.SessionReportRequest(
        sequence=0x40,
        seid=_SESSION_CP,
        report_type=ReportType(ReportTypeFlags.DLDR | ReportTypeFlags.USAR | ReportTypeFlags.ERIR),
        downlink_data_report=DownlinkDataReport(
            pdr_id=(PDRID(2),),
            downlink_data_service_information=(DownlinkDataServiceInformation(paging_policy_indication=3, qfi=5),),
        ),
        usage_report=(
            UsageReportSRR(
                urr_id=URRID(1),
                ur_seqn=URSEQN(5),
                usage_report_trigger=UsageReportTrigger(UsageReportTriggerFlags.VOLTH | UsageReportTriggerFlags.START),
                start_time=StartTime(_STARTED.value + 400),
                end_time=EndTime(_STARTED.value + 500),
                volume_measurement=_volume(),
                duration_measurement=DurationMeasurement(100),
                application_detection_information=ApplicationDetectionInformation(
                    application_id=ApplicationID("app1"), pdr_id=PDRID(3)
                ),
                ue_ip_address=UEIPAddress(ipv4=_UE4, is_destination=True),
                network_instance=NetworkInstance("internet"),
                time_of_first_packet=TimeOfFirstPacket(_STARTED.value + 401),
                time_of_last_packet=TimeOfLastPacket(_STARTED.value + 499),
                usage_information=UsageInformation(UsageInformationFlags.AFT | UsageInformationFlags.UAE),
                query_urr_reference=QueryURRReference(78),
            ),
        ),
        error_indication_report=ErrorIndicationReport(remote_f_teid=(FTEID(0x55667788, _GNB),)),
        additional_usage_reports_information=AdditionalUsageReportsInformation(auri=True),
    )


@vector("session-report-response")
def session_report_response() -> Message:
    return pfcp.SessionReportResponse(
        sequence=0x40,
        seid=_SESSION_UP,
        cause=Cause(CauseValue.REQUEST_ACCEPTED),
        update_bar=UpdateBARSessionReportResponse(
            bar_id=BARID(1),
            downlink_data_notification_delay=DownlinkDataNotificationDelay(1),
            dl_buffering_duration=DLBufferingDuration(1, 10),
            dl_buffering_suggested_packet_count=DLBufferingSuggestedPacketCount(300, octets=2),
        ),
        pfcpsrrsp_flags=PFCPSRRspFlags(PFCPSRRspFlagsValue.DROBU),
        cp_f_seid=FSEID(_SESSION_CP, IPv4Address("192.0.2.3")),
    )


# --------------------------------------------------------------------------
# A stable, typed JSON view of decoded values


def _flag_names(value: IntFlag) -> list[str | int]:
    names: list[str | int] = []
    covered = 0
    for member in type(value):
        bit = int(member)
        if bit and int(value) & bit == bit:
            names.append(str(member.name))
            covered |= bit
    rest = int(value) & ~covered
    if rest:
        names.append(rest)
    return names


def _value(value: Any) -> Any:
    if isinstance(value, IE):
        return to_jsonable(value)
    if isinstance(value, IntFlag):
        return _flag_names(value)
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, tuple):
        return [_value(v) for v in value]
    raise TypeError(f"no JSON view for {type(value).__name__}")


def _group_fields(obj: Message | GroupedIE, out: dict[str, Any]) -> dict[str, Any]:
    for spec in obj._SPECS:
        value = getattr(obj, spec.name)
        if value is None or value == ():
            continue
        out[spec.name] = _value(value)
    if obj.extra:
        out["extra"] = [_value(v) for v in obj.extra]
    if obj.wire_order is not None:
        out["wire_order"] = list(obj.wire_order)
    return out


def to_jsonable(obj: Message | IE) -> dict[str, Any]:
    """A JSON-ready dict of a message or IE: class names, field values, and the
    fields that are not part of equality (octets, label_encoded, wire_order)."""
    if isinstance(obj, Message):
        head = {
            "message": type(obj).__name__,
            "type": int(obj.message_type),
            "sequence": obj.sequence,
            "seid": obj.seid,
            "priority": obj.priority,
        }
        return _group_fields(obj, head)
    head = {"ie": type(obj).__name__, "type": int(obj.ie_type)}
    if isinstance(obj, GroupedIE):
        return _group_fields(obj, head)
    if isinstance(obj, RawIE):
        if isinstance(obj, VendorIE):
            head["enterprise_id"] = obj.enterprise_id
        head["payload"] = obj.payload.hex()
        return head
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        head[f.name] = _value(getattr(obj, f.name))
    return head


def dumps(obj: Message | IE) -> str:
    """The text stored in a .json vector."""
    return json.dumps(to_jsonable(obj), indent=2) + "\n"


def golden_bytes() -> bytes | None:
    """The 370 octets of the shared golden vector, or None when ../shared is missing."""
    if not GOLDEN_HEX.is_file():
        return None
    return bytes.fromhex(GOLDEN_HEX.read_text().strip())


def stored_vectors() -> dict[str, bytes]:
    """name -> contents of every .bin in this directory."""
    return {path.stem: path.read_bytes() for path in sorted(HERE.glob("*.bin"))}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, build in VECTORS.items():
        msg = build()
        files = {HERE / f"{name}.bin": pfcp.encode(msg), HERE / f"{name}.json": dumps(msg).encode()}
        for path, content in files.items():
            if check:
                if not path.exists() or path.read_bytes() != content:
                    stale.append(path.name)
            else:
                path.write_bytes(content)
    if stale:
        print("stale vectors:", ", ".join(stale))
        return 1
    print(f"{len(VECTORS)} vectors {'checked' if check else 'written'} in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
