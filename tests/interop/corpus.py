"""Messages built with our codec for the interop oracles (tshark, pycrate).

One representative message of every PFCP message type, most of them with
their conditional and optional IEs filled in, plus the golden Session
Establishment Request of ``../shared/pfcp-vectors``. Also a minimal pcap writer
(Ethernet/IPv4/UDP to port 8805) so that tshark can read them all in one run.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest

import pfcp
from pfcp import IEType

#: The shared reference vectors live next to the repository, never inside it.
VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pfcp-vectors"
GOLDEN_SER = VECTORS / "session-establishment-request.hex"

#: Recovery Time Stamp used throughout: 2023-08-01 (NTP era 0, MSB set).
RTS = 3_899_836_800

SMF_V4 = IPv4Address("192.0.2.10")
UPF_V4 = IPv4Address("192.0.2.20")
GNB_V4 = IPv4Address("198.51.100.7")
SMF_V6 = IPv6Address("2001:db8::10")
UPF_V6 = IPv6Address("2001:db8::20")
GNB_V6 = IPv6Address("2001:db8:1::7")
UE_V4 = IPv4Address("10.45.0.2")
UE_V6 = IPv6Address("2001:db8:45::")


GOLDEN_NAME = "golden_session_establishment_request"
GOLDEN_MISSING = f"shared PFCP vectors not found at {GOLDEN_SER} (expected next to the repository)"


def golden_or_none() -> bytes | None:
    """The golden Session Establishment Request, None if ../shared is absent."""
    if not GOLDEN_SER.is_file():
        return None
    return bytes.fromhex(GOLDEN_SER.read_text().strip())


def golden_bytes() -> bytes:
    """The golden Session Establishment Request, or skip the test if ../shared is absent."""
    data = golden_or_none()
    if data is None:
        pytest.skip(GOLDEN_MISSING)
    return data


def _opaque(ie_type: IEType, payload: bytes) -> pfcp.OpaqueIE:
    cls = pfcp.IE_CLASSES[ie_type]
    assert issubclass(cls, pfcp.OpaqueIE)
    return cls(payload)


def _tlv(ie: pfcp.IE) -> bytes:
    return ie.encode()


def _pfd_contents_fd(flow: str) -> bytes:
    # PFD Contents, §8.2.39: flags (FD), spare octet, Length of Flow Description, Flow Description.
    raw = flow.encode()
    return b"\x01\x00" + len(raw).to_bytes(2, "big") + raw


def _application_ids_pfds(app: str, flows: list[str]) -> pfcp.OpaqueIE:
    contents = b"".join(_tlv(_opaque(IEType.PFD_CONTENTS, _pfd_contents_fd(f))) for f in flows)
    context = _tlv(_opaque(IEType.PFD_CONTEXT, contents))
    return _opaque(IEType.APPLICATION_IDS_PFDS, _tlv(pfcp.ApplicationID(app)) + context)


def _usage_fields(urr: int, seqn: int, trigger: pfcp.UsageReportTriggerFlags) -> dict[str, Any]:
    return {
        "urr_id": pfcp.URRID(urr),
        "ur_seqn": pfcp.URSEQN(seqn),
        "usage_report_trigger": pfcp.UsageReportTrigger(trigger),
        "start_time": pfcp.StartTime(RTS + 100),
        "end_time": pfcp.EndTime(RTS + 160),
        "volume_measurement": pfcp.VolumeMeasurement(
            total_volume=3_000_000_123,
            uplink_volume=1_000_000_000,
            downlink_volume=2_000_000_123,
            total_packets=4000,
            uplink_packets=1500,
            downlink_packets=2500,
        ),
        "duration_measurement": pfcp.DurationMeasurement(60),
        "time_of_first_packet": pfcp.TimeOfFirstPacket(RTS + 101),
        "time_of_last_packet": pfcp.TimeOfLastPacket(RTS + 159),
        "usage_information": pfcp.UsageInformation(pfcp.UsageInformationFlags.BEF),
    }


def _ser_v6() -> pfcp.SessionEstablishmentRequest:
    ul_pdi = pfcp.PDI(
        source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
        local_f_teid=pfcp.FTEID(choose_v6=True, choose_id=5),
        network_instance=pfcp.NetworkInstance("ims"),
        ue_ip_address=(pfcp.UEIPAddress(ipv6=UE_V6),),
        sdf_filter=(
            pfcp.SDFFilter(flow_description="permit out 17 from 2001:db8:99::1 5060 to assigned", sdf_filter_id=7),
            pfcp.SDFFilter(
                flow_description="permit out ip from any to assigned",
                tos_traffic_class=0x2EFC,
                security_parameter_index=0x01020304,
                flow_label=0x0ABCDE,
                sdf_filter_id=8,
            ),
        ),
        qfi=(pfcp.QFI(5),),
        source_interface_type=pfcp.TGPPInterfaceType(pfcp.Interface3GPPType.N3_3GPP_ACCESS),
    )
    dl_pdi = pfcp.PDI(
        source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.CORE),
        network_instance=pfcp.NetworkInstance("ims"),
        ue_ip_address=(pfcp.UEIPAddress(ipv6=UE_V6, is_destination=True),),
        sdf_filter=(pfcp.SDFFilter(flow_description="permit out 17 from 2001:db8:99::1 5060 to assigned"),),
        application_id=pfcp.ApplicationID("voice"),
    )
    return pfcp.SessionEstablishmentRequest(
        sequence=0x00ABCD,
        seid=0,
        priority=3,
        node_id=pfcp.NodeID("smf1.edge.example.org"),
        cp_f_seid=pfcp.FSEID(0x0102030405060708, SMF_V4, SMF_V6),
        create_pdr=(
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(1),
                precedence=pfcp.Precedence(100),
                pdi=ul_pdi,
                outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV6),
                far_id=pfcp.FARID(1),
                urr_id=(pfcp.URRID(1), pfcp.URRID(2)),
                qer_id=(pfcp.QERID(1),),
            ),
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(2),
                precedence=pfcp.Precedence(200),
                pdi=dl_pdi,
                far_id=pfcp.FARID(2),
                urr_id=(pfcp.URRID(1),),
                qer_id=(pfcp.QERID(1),),
            ),
        ),
        create_far=(
            pfcp.CreateFAR(
                far_id=pfcp.FARID(1),
                apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.CORE),
                    network_instance=pfcp.NetworkInstance("ims"),
                    destination_interface_type=pfcp.TGPPInterfaceType(pfcp.Interface3GPPType.N6),
                ),
            ),
            pfcp.CreateFAR(
                far_id=pfcp.FARID(2),
                apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW | pfcp.ApplyActionFlags.NOCP),
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
                    outer_header_creation=pfcp.OuterHeaderCreation(
                        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV6, teid=0xCAFEF00D, ipv6=GNB_V6
                    ),
                    transport_level_marking=pfcp.TransportLevelMarking(0xB8, 0xFC),
                ),
                bar_id=pfcp.BARID(1),
            ),
        ),
        create_urr=(
            pfcp.CreateURR(
                urr_id=pfcp.URRID(1),
                measurement_method=pfcp.MeasurementMethod(
                    pfcp.MeasurementMethodFlags.VOLUM | pfcp.MeasurementMethodFlags.DURAT
                ),
                reporting_triggers=pfcp.ReportingTriggers(
                    pfcp.ReportingTriggersFlags.PERIO
                    | pfcp.ReportingTriggersFlags.VOLQU
                    | pfcp.ReportingTriggersFlags.QUVTI
                ),
                measurement_period=pfcp.MeasurementPeriod(300),
                volume_quota=pfcp.VolumeQuota(total=5_000_000_000, uplink=1_000_000_000, downlink=4_000_000_000),
                time_quota=pfcp.TimeQuota(3600),
                quota_holding_time=pfcp.QuotaHoldingTime(120),
                monitoring_time=pfcp.MonitoringTime(RTS + 86400),
                measurement_information=pfcp.MeasurementInformation(pfcp.MeasurementInformationFlags.MBQE),
            ),
            pfcp.CreateURR(
                urr_id=pfcp.URRID(2),
                measurement_method=pfcp.MeasurementMethod(pfcp.MeasurementMethodFlags.EVENT),
                reporting_triggers=pfcp.ReportingTriggers(pfcp.ReportingTriggersFlags.START),
            ),
        ),
        create_qer=(
            pfcp.CreateQER(
                qer_id=pfcp.QERID(1),
                qer_correlation_id=pfcp.QERCorrelationID(77),
                gate_status=pfcp.GateStatus(pfcp.Gate.OPEN, pfcp.Gate.CLOSED),
                mbr=pfcp.MBR(2_000_000, 4_000_000),
                gbr=pfcp.GBR(64, 128),
                qfi=pfcp.QFI(5),
                rqi=pfcp.RQI(True),
                paging_policy_indicator=pfcp.PagingPolicyIndicator(3),
                averaging_window=pfcp.AveragingWindow(2000),
            ),
        ),
        create_bar=pfcp.CreateBAR(
            bar_id=pfcp.BARID(1),
            downlink_data_notification_delay=pfcp.DownlinkDataNotificationDelay(4),
            suggested_buffering_packets_count=pfcp.SuggestedBufferingPacketsCount(10),
        ),
        pdn_type=pfcp.PDNType(pfcp.PDNTypeValue.IPV6),
        sgw_c_fq_csid=pfcp.FQCSID(SMF_V4, (1, 2), node_type=1),
        pgw_c_fq_csid=pfcp.FQCSID(SMF_V6, (3,), node_type=2),
        user_plane_inactivity_timer=pfcp.UserPlaneInactivityTimer(600),
        user_id=pfcp.UserID(imsi="001010123456789", imei="3569860401234567", msisdn="4915112345678", nai="u@x.org"),
        trace_information=pfcp.TraceInformation(
            "001", "01", 0x123456, b"\x01\x02", 2, b"\x05", IPv4Address("192.0.2.99")
        ),
        apn_dnn=pfcp.APNDNN("ims.mnc001.mcc001.gprs"),
        recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS),
        s_nssai=pfcp.SNSSAI(1, 0x010203),
    )


def _smr() -> pfcp.SessionModificationRequest:
    return pfcp.SessionModificationRequest(
        sequence=3,
        seid=0x1000000000000001,
        cp_f_seid=pfcp.FSEID(0x0102030405060708, SMF_V4),
        remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(3)),),
        remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(3)),),
        remove_urr=(pfcp.RemoveURR(urr_id=pfcp.URRID(3)),),
        remove_qer=(pfcp.RemoveQER(qer_id=pfcp.QERID(3)),),
        remove_bar=pfcp.RemoveBAR(bar_id=pfcp.BARID(2)),
        create_pdr=(
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(4),
                precedence=pfcp.Precedence(50),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.CORE),
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=UE_V4, is_destination=True),),
                    sdf_filter=(pfcp.SDFFilter(flow_description="permit out ip from 10.1.0.0/16 to assigned"),),
                ),
                far_id=pfcp.FARID(4),
            ),
        ),
        create_far=(pfcp.CreateFAR(far_id=pfcp.FARID(4), apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.DROP)),),
        update_pdr=(
            pfcp.UpdatePDR(
                pdr_id=pfcp.PDRID(1),
                outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
                precedence=pfcp.Precedence(90),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
                    local_f_teid=pfcp.FTEID(0x11223344, UPF_V4),
                    network_instance=pfcp.NetworkInstance("internet"),
                ),
                far_id=pfcp.FARID(1),
                urr_id=(pfcp.URRID(1),),
                qer_id=(pfcp.QERID(1),),
            ),
        ),
        update_far=(
            pfcp.UpdateFAR(
                far_id=pfcp.FARID(2),
                apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
                update_forwarding_parameters=pfcp.UpdateForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
                    network_instance=pfcp.NetworkInstance("access"),
                    outer_header_creation=pfcp.OuterHeaderCreation(
                        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=0x0BADCAFE, ipv4=GNB_V4
                    ),
                    pfcpsmreq_flags=pfcp.PFCPSMReqFlags(pfcp.PFCPSMReqFlagsValue.SNDEM),
                ),
            ),
        ),
        update_urr=(
            pfcp.UpdateURR(
                urr_id=pfcp.URRID(1),
                reporting_triggers=pfcp.ReportingTriggers(pfcp.ReportingTriggersFlags.VOLTH),
                volume_threshold=pfcp.VolumeThreshold(uplink=10_000, downlink=20_000),
                time_threshold=pfcp.TimeThreshold(900),
            ),
        ),
        update_qer=(
            pfcp.UpdateQER(
                qer_id=pfcp.QERID(1),
                gate_status=pfcp.GateStatus(pfcp.Gate.CLOSED, pfcp.Gate.OPEN),
                mbr=pfcp.MBR(50_000, 150_000),
            ),
        ),
        update_bar=pfcp.UpdateBAR(
            bar_id=pfcp.BARID(1), downlink_data_notification_delay=pfcp.DownlinkDataNotificationDelay(2)
        ),
        pfcpsmreq_flags=pfcp.PFCPSMReqFlags(pfcp.PFCPSMReqFlagsValue.QAURR | pfcp.PFCPSMReqFlagsValue.DROBU),
        query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(1)), pfcp.QueryURR(urr_id=pfcp.URRID(2))),
        user_plane_inactivity_timer=pfcp.UserPlaneInactivityTimer(1200),
        query_urr_reference=pfcp.QueryURRReference(0xA5A5),
    )


def build_corpus() -> list[tuple[str, pfcp.Message]]:
    """Every message type, most with many of their IEs (golden vector excluded)."""
    trig = pfcp.UsageReportTriggerFlags
    cases: list[tuple[str, pfcp.Message]] = [
        (
            "heartbeat_request",
            pfcp.HeartbeatRequest(
                sequence=1,
                recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS),
                source_ip_address=pfcp.SourceIPAddress(ipv4=SMF_V4),
            ),
        ),
        (
            "heartbeat_request_source_ip_mpl",
            pfcp.HeartbeatRequest(
                sequence=11,
                recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS),
                source_ip_address=pfcp.SourceIPAddress(ipv6=SMF_V6, prefix_length=64),
            ),
        ),
        ("heartbeat_response", pfcp.HeartbeatResponse(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS + 5))),
        (
            "association_setup_request_cp",
            pfcp.AssociationSetupRequest(
                sequence=2,
                node_id=pfcp.NodeID("smf1.edge.example.org"),
                recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS),
                cp_function_features=pfcp.CPFunctionFeatures(
                    pfcp.CPFeatures.LOAD | pfcp.CPFeatures.OVRL | pfcp.CPFeatures.UIAUR
                ),
            ),
        ),
        (
            "association_setup_response_up",
            pfcp.AssociationSetupResponse(
                sequence=2,
                node_id=pfcp.NodeID(UPF_V4),
                cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
                recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS + 7),
                up_function_features=pfcp.UPFunctionFeatures(
                    pfcp.UPFeatures.BUCP
                    | pfcp.UPFeatures.FTUP
                    | pfcp.UPFeatures.EMPU
                    | pfcp.UPFeatures.UEIP
                    | pfcp.UPFeatures.MPAS,
                    octets=4,
                ),
                user_plane_ip_resource_information=(
                    pfcp.UserPlaneIPResourceInformation(
                        ipv4=UPF_V4, teid_range_bits=2, teid_range=1, network_instance="access", source_interface=0
                    ),
                ),
            ),
        ),
        (
            "association_setup_request_up_v6",
            pfcp.AssociationSetupRequest(
                sequence=0xFFFFFF,
                node_id=pfcp.NodeID(UPF_V6),
                recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS),
                up_function_features=pfcp.UPFunctionFeatures(pfcp.UPFeatures.DDND | pfcp.UPFeatures.PDIU),
            ),
        ),
        (
            "association_setup_response_cp_rejected",
            pfcp.AssociationSetupResponse(
                sequence=0xFFFFFF,
                node_id=pfcp.NodeID(SMF_V4),
                cause=pfcp.Cause(pfcp.CauseValue.NO_RESOURCES_AVAILABLE),
                recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS),
                cp_function_features=pfcp.CPFunctionFeatures(pfcp.CPFeatures.EPFAR),
            ),
        ),
        (
            "association_update_request",
            pfcp.AssociationUpdateRequest(
                sequence=4,
                node_id=pfcp.NodeID(UPF_V4),
                up_function_features=pfcp.UPFunctionFeatures(pfcp.UPFeatures.FTUP | pfcp.UPFeatures.TRACE),
                pfcp_association_release_request=pfcp.PFCPAssociationReleaseRequest(
                    pfcp.PFCPAssociationReleaseRequestFlags.SARR
                ),
                graceful_release_period=pfcp.GracefulReleasePeriod(pfcp.TimerUnit.MINUTES_1, 5),
            ),
        ),
        (
            "association_update_response",
            pfcp.AssociationUpdateResponse(
                sequence=4,
                node_id=pfcp.NodeID(SMF_V4),
                cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
                cp_function_features=pfcp.CPFunctionFeatures(pfcp.CPFeatures.LOAD),
            ),
        ),
        ("association_release_request", pfcp.AssociationReleaseRequest(sequence=5, node_id=pfcp.NodeID(SMF_V4))),
        (
            "association_release_response",
            pfcp.AssociationReleaseResponse(
                sequence=5, node_id=pfcp.NodeID(UPF_V4), cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED)
            ),
        ),
        (
            "node_report_request",
            pfcp.NodeReportRequest(
                sequence=6,
                node_id=pfcp.NodeID(UPF_V4),
                node_report_type=pfcp.NodeReportType(pfcp.NodeReportTypeFlags.UPFR),
                user_plane_path_failure_report=pfcp.UserPlanePathFailureReport(
                    remote_gtpu_peer=(
                        pfcp.RemoteGTPUPeer(ipv4=GNB_V4),
                        pfcp.RemoteGTPUPeer(ipv6=GNB_V6, destination_interface=0, network_instance="access"),
                    )
                ),
            ),
        ),
        (
            "node_report_response",
            pfcp.NodeReportResponse(
                sequence=6,
                node_id=pfcp.NodeID(SMF_V4),
                cause=pfcp.Cause(pfcp.CauseValue.MANDATORY_IE_MISSING),
                offending_ie=pfcp.OffendingIE(IEType.NODE_REPORT_TYPE),
            ),
        ),
        (
            "pfd_management_request",
            pfcp.PFDManagementRequest(
                sequence=7,
                application_ids_pfds=(
                    _application_ids_pfds("app1", ["permit out 6 from 192.0.2.1 443 to any"]),
                    _application_ids_pfds("app2", ["permit out 17 from any 53 to any", "permit out 6 from any to any"]),
                ),
                node_id=pfcp.NodeID(SMF_V4),
            ),
        ),
        (
            "pfd_management_response",
            pfcp.PFDManagementResponse(
                sequence=7, cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED), node_id=pfcp.NodeID(UPF_V4)
            ),
        ),
        (
            "session_set_deletion_request",
            pfcp.SessionSetDeletionRequest(
                sequence=8,
                node_id=pfcp.NodeID(SMF_V4),
                sgw_c_fq_csid=pfcp.FQCSID(SMF_V4, (10, 11), node_type=1),
                # Rel-15/16 form, without the Rel-17 Node Type octet
                pgw_c_fq_csid=pfcp.FQCSID(0x0010_0001, (12,)),
            ),
        ),
        (
            "session_set_deletion_response",
            pfcp.SessionSetDeletionResponse(
                sequence=8, node_id=pfcp.NodeID(UPF_V4), cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED)
            ),
        ),
        ("version_not_supported_response", pfcp.VersionNotSupportedResponse(sequence=9)),
        ("session_establishment_request_v6", _ser_v6()),
        (
            "session_establishment_response",
            pfcp.SessionEstablishmentResponse(
                sequence=0x00ABCD,
                seid=0x0102030405060708,
                node_id=pfcp.NodeID(UPF_V4),
                cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
                up_f_seid=pfcp.FSEID(0x1000000000000001, UPF_V4),
                created_pdr=(
                    pfcp.CreatedPDR(
                        pdr_id=pfcp.PDRID(1),
                        local_f_teid=pfcp.FTEID(0x00001234, UPF_V4, UPF_V6),
                        ue_ip_address=(pfcp.UEIPAddress(ipv4=UE_V4),),
                    ),
                ),
                load_control_information=pfcp.LoadControlInformation(
                    sequence_number=pfcp.SequenceNumber(17), metric=pfcp.Metric(40)
                ),
                overload_control_information=pfcp.OverloadControlInformation(
                    sequence_number=pfcp.SequenceNumber(18),
                    metric=pfcp.Metric(20),
                    timer=pfcp.Timer(pfcp.TimerUnit.MINUTES_10, 3),
                    oci_flags=pfcp.OCIFlags(pfcp.OCIFlagsValue.AOCI),
                ),
                up_fq_csid=pfcp.FQCSID(UPF_V4, (5,), node_type=5),
            ),
        ),
        (
            "session_establishment_response_rejected",
            pfcp.SessionEstablishmentResponse(
                sequence=0x00ABCE,
                seid=0x0102030405060708,
                node_id=pfcp.NodeID(UPF_V4),
                cause=pfcp.Cause(pfcp.CauseValue.RULE_CREATION_MODIFICATION_FAILURE),
                offending_ie=pfcp.OffendingIE(IEType.CREATE_FAR),
                failed_rule_id=pfcp.FailedRuleID(pfcp.RuleIDType.FAR, 2),
            ),
        ),
        ("session_modification_request", _smr()),
        (
            "session_modification_response",
            pfcp.SessionModificationResponse(
                sequence=3,
                seid=0x0102030405060708,
                cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
                usage_report=(
                    pfcp.UsageReportSMR(
                        **_usage_fields(1, 4, trig.IMMER), query_urr_reference=pfcp.QueryURRReference(0xA5A5)
                    ),
                    pfcp.UsageReportSMR(**_usage_fields(2, 1, trig.IMMER | trig.VOLQU)),
                ),
                additional_usage_reports_information=pfcp.AdditionalUsageReportsInformation(3),
            ),
        ),
        ("session_deletion_request", pfcp.SessionDeletionRequest(sequence=10, seid=0x1000000000000001)),
        (
            "session_deletion_response",
            pfcp.SessionDeletionResponse(
                sequence=10,
                seid=0x0102030405060708,
                cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
                usage_report=(pfcp.UsageReportSDR(**_usage_fields(1, 5, trig.TERMR)),),
            ),
        ),
        (
            "session_report_request",
            pfcp.SessionReportRequest(
                sequence=0x800001,
                seid=0x0102030405060708,
                report_type=pfcp.ReportType(pfcp.ReportTypeFlags.DLDR | pfcp.ReportTypeFlags.USAR),
                downlink_data_report=pfcp.DownlinkDataReport(
                    pdr_id=(pfcp.PDRID(2),),
                    downlink_data_service_information=(pfcp.DownlinkDataServiceInformation(qfi=5),),
                ),
                usage_report=(
                    pfcp.UsageReportSRR(
                        **_usage_fields(1, 6, trig.VOLTH | trig.PERIO),
                        ue_ip_address=pfcp.UEIPAddress(ipv4=UE_V4),
                    ),
                ),
            ),
        ),
        (
            "session_report_request_error_indication",
            pfcp.SessionReportRequest(
                sequence=0x800002,
                seid=0x0102030405060708,
                report_type=pfcp.ReportType(pfcp.ReportTypeFlags.ERIR),
                error_indication_report=pfcp.ErrorIndicationReport(remote_f_teid=(pfcp.FTEID(0x0BADCAFE, GNB_V4),)),
            ),
        ),
        (
            "session_report_response",
            pfcp.SessionReportResponse(
                sequence=0x800001,
                seid=0x1000000000000001,
                cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
                update_bar=pfcp.UpdateBARSessionReportResponse(
                    bar_id=pfcp.BARID(1),
                    downlink_data_notification_delay=pfcp.DownlinkDataNotificationDelay(6),
                    dl_buffering_duration=pfcp.DLBufferingDuration(1, 2),
                    dl_buffering_suggested_packet_count=pfcp.DLBufferingSuggestedPacketCount(300),
                    suggested_buffering_packets_count=pfcp.SuggestedBufferingPacketsCount(20),
                ),
                pfcpsrrsp_flags=pfcp.PFCPSRRspFlags(pfcp.PFCPSRRspFlagsValue.DROBU),
            ),
        ),
    ]
    return cases


def case_names() -> list[str]:
    """Names of :func:`all_encoded` cases, the golden vector first (even when absent)."""
    return [GOLDEN_NAME, *(name for name, _ in build_corpus())]


def all_encoded() -> list[tuple[str, bytes]]:
    """(name, bytes) of the golden vector (when ../shared is there) and of every corpus message."""
    golden = golden_or_none()
    out = [] if golden is None else [(GOLDEN_NAME, golden)]
    out += [(name, pfcp.encode(msg)) for name, msg in build_corpus()]
    return out


def encoded(cases: dict[str, bytes], name: str) -> bytes:
    """The bytes of case ``name``; skips the golden case when ../shared is absent."""
    if name not in cases:
        assert name == GOLDEN_NAME, name
        pytest.skip(GOLDEN_MISSING)
    return cases[name]


# --------------------------------------------------------------------------
# Walking our messages in wire order

#: IE types our codec keeps opaque although they are grouped (their payload is a list of IEs).
OPAQUE_GROUPED = frozenset({IEType.APPLICATION_IDS_PFDS, IEType.PFD_CONTEXT})


def is_grouped(ie: pfcp.IE) -> bool:
    """True for IEs whose payload is a list of IEs."""
    return isinstance(ie, pfcp.GroupedIE) or ie.ie_type in OPAQUE_GROUPED


def tlvs(payload: bytes) -> list[bytes]:
    """Split a run of IEs into the encoded IEs (Type, Length, payload)."""
    out, pos = [], 0
    while pos < len(payload):
        end = pos + 4 + int.from_bytes(payload[pos + 2 : pos + 4], "big")
        out.append(payload[pos:end])
        pos = end
    assert pos == len(payload), "IE lengths do not add up"
    return out


def body(msg: pfcp.Message) -> bytes:
    """The IEs of an encoded message, without its header."""
    return pfcp.encode(msg)[8 if msg.seid is None else 16 :]


def children(obj: pfcp.Message | pfcp.IE) -> list[pfcp.IE]:
    """Our child IEs of a message or grouped IE, in the order they are on the wire.

    Each encoded child is matched back to the object that produced it, so the
    order is the encoder's (declaration order, or the order a decoded message
    arrived in), whatever bookkeeping the codec uses to remember it.
    """
    if isinstance(obj, pfcp.OpaqueIE):
        return [pfcp.decode_ie(int.from_bytes(raw[:2], "big"), raw, 4, len(raw)) for raw in tlvs(obj.payload)]
    assert isinstance(obj, (pfcp.Message, pfcp.GroupedIE)), obj
    payload = body(obj) if isinstance(obj, pfcp.Message) else obj.encode_payload()
    pool = list(obj.ies())
    out: list[pfcp.IE] = []
    for raw in tlvs(payload):
        index = next(i for i, ie in enumerate(pool) if ie.encode() == raw)
        out.append(pool.pop(index))
    assert not pool, f"IEs that were not encoded: {pool}"
    return out


# --------------------------------------------------------------------------
# pcap


def _checksum(header: bytes) -> int:
    total = sum(int(word) for word in struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, src: bytes = b"\xc0\x00\x02\x0a", dst: bytes = b"\xc0\x00\x02\x14") -> bytes:
    """Ethernet II / IPv4 / UDP (8805 -> 8805) around one PFCP datagram."""
    udp = struct.pack("!HHHH", pfcp.PFCP_PORT, pfcp.PFCP_PORT, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, src, dst))
    ip[10:12] = _checksum(bytes(ip)).to_bytes(2, "big")
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + bytes(ip) + udp


def pcap_bytes(payloads: list[bytes]) -> bytes:
    """A classic little-endian pcap (LINKTYPE_ETHERNET), one frame per payload."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, payload in enumerate(payloads):
        frame = udp_frame(payload)
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)
