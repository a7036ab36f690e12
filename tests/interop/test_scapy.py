"""Messages built by scapy's PFCP layer decode in our codec to the same values.

scapy (``scapy.contrib.pfcp``) implements Rel-15 (TS 29.244 V15.6.0). Each test
builds a message with scapy, decodes its bytes with :func:`pfcp.decode`, and
compares the result with the message we expect, dataclass field by dataclass
field; re-encoding must give scapy's bytes back.

scapy's known deviations, met head-on below:

* PDN Type: its table is off by one (``"IPv4"`` is 0; TS 29.244 §8.2.79 says
  IPv4 is 1), so ``pdn_type="IPv4"`` puts 0 on the wire.
* Apply Action is one octet and Reporting Triggers two octets (Rel-15 sizes;
  Rel-16 made them 2 and 3). We must accept the short forms and answer in kind.
* Its 3GPP Interface Type table stops at 15 (N9); N6 (17) has to be given as a number.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

import pfcp

scapy_pfcp: Any = pytest.importorskip("scapy.contrib.pfcp", reason="scapy is not installed (pip install scapy)")

pytestmark = pytest.mark.interop

S = scapy_pfcp
RTS = 3_899_836_800  # 2023-08-01 in NTP seconds
SMF = "192.0.2.10"
UPF = "192.0.2.20"
GNB = "198.51.100.7"
UE = "10.45.0.2"
CP_SEID = 0x0102030405060708
UP_SEID = 0x1000000000000001


def _roundtrip(pkt: Any) -> pfcp.Message:
    data = bytes(pkt)
    msg = pfcp.decode(data)
    assert pfcp.encode(msg) == data, "re-encoding scapy's message changed its bytes"
    return msg


def _node(seq: int) -> Any:
    return S.PFCP(version=1, S=0, seq=seq)


def _session(seq: int, seid: int) -> Any:
    return S.PFCP(version=1, S=1, seid=seid, seq=seq)


def test_heartbeat_request_and_response() -> None:
    req = _roundtrip(_node(1) / S.PFCPHeartbeatRequest(IE_list=[S.IE_RecoveryTimeStamp(timestamp=RTS)]))
    assert req == pfcp.HeartbeatRequest(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS))
    assert isinstance(req, pfcp.HeartbeatRequest)
    assert req.recovery_time_stamp.to_unix() == 1_690_848_000  # 2023-08-01T00:00:00Z

    rsp = _roundtrip(_node(1) / S.PFCPHeartbeatResponse(IE_list=[S.IE_RecoveryTimeStamp(timestamp=RTS + 9)]))
    assert rsp == pfcp.HeartbeatResponse(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS + 9))


def test_association_setup_request_and_response() -> None:
    req = _roundtrip(
        _node(2)
        / S.PFCPAssociationSetupRequest(
            IE_list=[
                S.IE_NodeId(id_type="FQDN", id=b"smf1.edge.example.org"),
                S.IE_RecoveryTimeStamp(timestamp=RTS),
                S.IE_CPFunctionFeatures(LOAD=1, OVRL=1),
            ]
        )
    )
    assert req == pfcp.AssociationSetupRequest(
        sequence=2,
        node_id=pfcp.NodeID("smf1.edge.example.org"),
        recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS),
        cp_function_features=pfcp.CPFunctionFeatures(pfcp.CPFeatures.LOAD | pfcp.CPFeatures.OVRL),
    )

    rsp = _roundtrip(
        _node(2)
        / S.PFCPAssociationSetupResponse(
            IE_list=[
                S.IE_NodeId(id_type="IPv4", ipv4=UPF),
                S.IE_Cause(cause="Request accepted"),
                S.IE_RecoveryTimeStamp(timestamp=RTS + 1),
                S.IE_UPFunctionFeatures(BUCP=1, FTUP=1, EMPU=1, PDIU=1),
                S.IE_UserPlaneIPResourceInformation(
                    V4=1, ipv4=UPF, TEIDRI=2, teid_range=1, ASSONI=1, network_instance=b"access", ASSOSI=1
                ),
            ]
        )
    )
    u = pfcp.UPFeatures
    assert rsp == pfcp.AssociationSetupResponse(
        sequence=2,
        node_id=pfcp.NodeID(IPv4Address(UPF)),
        cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
        recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS + 1),
        up_function_features=pfcp.UPFunctionFeatures(u.BUCP | u.FTUP | u.EMPU | u.PDIU),
        user_plane_ip_resource_information=(
            pfcp.UserPlaneIPResourceInformation(
                ipv4=IPv4Address(UPF), teid_range_bits=2, teid_range=1, network_instance="access", source_interface=0
            ),
        ),
    )
    assert isinstance(rsp, pfcp.AssociationSetupResponse)
    assert rsp.up_function_features is not None and rsp.up_function_features.octets == 2


def _scapy_create_pdr_ul() -> Any:
    return S.IE_CreatePDR(
        IE_list=[
            S.IE_PDR_Id(id=1),
            S.IE_Precedence(precedence=255),
            S.IE_PDI(
                IE_list=[
                    S.IE_SourceInterface(interface="Access"),
                    S.IE_FTEID(V4=1, TEID=0x11223344, ipv4="10.0.0.2"),
                    S.IE_NetworkInstance(instance=b"internet"),
                    S.IE_UE_IP_Address(V4=1, SD=0, ipv4=UE),
                    S.IE_SDF_Filter(
                        FD=1,
                        flow_description=b"permit out ip from any to assigned",
                        TTC=1,
                        tos_traffic_class=0x2E,
                        tos_traffic_mask=0xFC,
                        BID=1,
                        sdf_filter_id=5,
                    ),
                    S.IE_QFI(QFI=9),
                    S.IE_3GPP_InterfaceType(interface_type="N3 3GPP Access"),
                ]
            ),
            S.IE_OuterHeaderRemoval(header="GTP-U/UDP/IPv4"),
            S.IE_FAR_Id(id=1),
            S.IE_URR_Id(id=1),
            S.IE_QER_Id(id=1),
        ]
    )


def _ours_create_pdr_ul() -> pfcp.CreatePDR:
    return pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(1),
        precedence=pfcp.Precedence(255),
        pdi=pfcp.PDI(
            source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
            local_f_teid=pfcp.FTEID(0x11223344, IPv4Address("10.0.0.2")),
            network_instance=pfcp.NetworkInstance("internet"),
            ue_ip_address=(pfcp.UEIPAddress(ipv4=IPv4Address(UE)),),
            sdf_filter=(
                pfcp.SDFFilter(
                    flow_description="permit out ip from any to assigned", tos_traffic_class=0x2EFC, sdf_filter_id=5
                ),
            ),
            qfi=(pfcp.QFI(9),),
            source_interface_type=pfcp.TGPPInterfaceType(pfcp.Interface3GPPType.N3_3GPP_ACCESS),
        ),
        outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
        far_id=pfcp.FARID(1),
        urr_id=(pfcp.URRID(1),),
        qer_id=(pfcp.QERID(1),),
    )


def test_session_establishment_request() -> None:
    pkt = _session(7, 0) / S.PFCPSessionEstablishmentRequest(
        IE_list=[
            S.IE_NodeId(id_type="IPv4", ipv4=SMF),
            S.IE_FSEID(v4=1, seid=CP_SEID, ipv4=SMF),
            _scapy_create_pdr_ul(),
            S.IE_CreatePDR(
                IE_list=[
                    S.IE_PDR_Id(id=2),
                    S.IE_Precedence(precedence=255),
                    S.IE_PDI(
                        IE_list=[
                            S.IE_SourceInterface(interface="Core"),
                            S.IE_NetworkInstance(instance=b"internet"),
                            S.IE_UE_IP_Address(V4=1, SD=1, ipv4=UE),
                        ]
                    ),
                    S.IE_FAR_Id(id=2),
                    S.IE_QER_Id(id=1),
                ]
            ),
            S.IE_CreateFAR(
                IE_list=[
                    S.IE_FAR_Id(id=1),
                    S.IE_ApplyAction(FORW=1),  # one octet: Rel-15 (Rel-16 made it two)
                    S.IE_ForwardingParameters(
                        IE_list=[
                            S.IE_DestinationInterface(interface="Core"),
                            S.IE_NetworkInstance(instance=b"internet"),
                            # scapy's 3GPP Interface Type table ends at 15 (N9): N6 is 17.
                            S.IE_3GPP_InterfaceType(interface_type=17),
                        ]
                    ),
                ]
            ),
            S.IE_CreateFAR(
                IE_list=[
                    S.IE_FAR_Id(id=2),
                    S.IE_ApplyAction(FORW=1, NOCP=1),
                    S.IE_ForwardingParameters(
                        IE_list=[
                            S.IE_DestinationInterface(interface="Access"),
                            S.IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=0x55667788, ipv4=GNB),
                            S.IE_TransportLevelMarking(tos=0xB8, traffic_class=0xFC),
                        ]
                    ),
                ]
            ),
            S.IE_CreateURR(
                IE_list=[
                    S.IE_URR_Id(id=1),
                    S.IE_MeasurementMethod(VOLUM=1, DURAT=1),
                    # two octets: Rel-15 (Rel-16 made it three)
                    S.IE_ReportingTriggers(volume_threshold=1, time_threshold=1, volume_quota=1),
                    S.IE_VolumeThreshold(TOVOL=1, total=1_000_000_000, DLVOL=1, downlink=600_000_000),
                    S.IE_TimeThreshold(threshold=3600),
                ]
            ),
            S.IE_CreateQER(
                IE_list=[
                    S.IE_QER_Id(id=1),
                    S.IE_GateStatus(ul="OPEN", dl="CLOSED"),
                    S.IE_MBR(ul=100_000, dl=200_000),
                    S.IE_GBR(ul=1_000, dl=2_000),
                    S.IE_QFI(QFI=9),
                ]
            ),
            # scapy's PDN Type table is off by one: "IPv4" encodes 0. Spec value 1 has to be numeric.
            S.IE_PDNType(pdn_type=1),
        ]
    )
    msg = _roundtrip(pkt)
    a = pfcp.ApplyActionFlags
    expected = pfcp.SessionEstablishmentRequest(
        sequence=7,
        seid=0,
        node_id=pfcp.NodeID(IPv4Address(SMF)),
        cp_f_seid=pfcp.FSEID(CP_SEID, IPv4Address(SMF)),
        create_pdr=(
            _ours_create_pdr_ul(),
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(2),
                precedence=pfcp.Precedence(255),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.CORE),
                    network_instance=pfcp.NetworkInstance("internet"),
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=IPv4Address(UE), is_destination=True),),
                ),
                far_id=pfcp.FARID(2),
                qer_id=(pfcp.QERID(1),),
            ),
        ),
        create_far=(
            pfcp.CreateFAR(
                far_id=pfcp.FARID(1),
                apply_action=pfcp.ApplyAction(a.FORW),
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.CORE),
                    network_instance=pfcp.NetworkInstance("internet"),
                    destination_interface_type=pfcp.TGPPInterfaceType(pfcp.Interface3GPPType.N6),
                ),
            ),
            pfcp.CreateFAR(
                far_id=pfcp.FARID(2),
                apply_action=pfcp.ApplyAction(a.FORW | a.NOCP),
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
                    outer_header_creation=pfcp.OuterHeaderCreation(
                        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=0x55667788, ipv4=IPv4Address(GNB)
                    ),
                    transport_level_marking=pfcp.TransportLevelMarking(0xB8, 0xFC),
                ),
            ),
        ),
        create_urr=(
            pfcp.CreateURR(
                urr_id=pfcp.URRID(1),
                measurement_method=pfcp.MeasurementMethod(
                    pfcp.MeasurementMethodFlags.VOLUM | pfcp.MeasurementMethodFlags.DURAT
                ),
                reporting_triggers=pfcp.ReportingTriggers(
                    pfcp.ReportingTriggersFlags.VOLTH
                    | pfcp.ReportingTriggersFlags.TIMTH
                    | pfcp.ReportingTriggersFlags.VOLQU
                ),
                volume_threshold=pfcp.VolumeThreshold(total=1_000_000_000, downlink=600_000_000),
                time_threshold=pfcp.TimeThreshold(3600),
            ),
        ),
        create_qer=(
            pfcp.CreateQER(
                qer_id=pfcp.QERID(1),
                gate_status=pfcp.GateStatus(pfcp.Gate.OPEN, pfcp.Gate.CLOSED),
                mbr=pfcp.MBR(100_000, 200_000),
                gbr=pfcp.GBR(1_000, 2_000),
                qfi=pfcp.QFI(9),
            ),
        ),
        pdn_type=pfcp.PDNType(pfcp.PDNTypeValue.IPV4),
    )
    assert msg == expected
    # The Rel-15 sizes are kept, so that a Rel-15 peer is answered in kind.
    assert isinstance(msg, pfcp.SessionEstablishmentRequest)
    assert [far.apply_action.octets for far in msg.create_far] == [1, 1]
    assert msg.create_urr[0].reporting_triggers.octets == 2


def test_scapy_pdn_type_off_by_one() -> None:
    """scapy's ``pdn_type="IPv4"`` sends 0 (a spare value): we keep the raw value, no crash, no guess."""
    pkt = _session(8, 0) / S.PFCPSessionEstablishmentRequest(
        IE_list=[
            S.IE_NodeId(id_type="IPv4", ipv4=SMF),
            S.IE_FSEID(v4=1, seid=CP_SEID, ipv4=SMF),
            _scapy_create_pdr_ul(),
            S.IE_CreateFAR(IE_list=[S.IE_FAR_Id(id=1), S.IE_ApplyAction(DROP=1)]),
            S.IE_PDNType(pdn_type="IPv4"),
        ]
    )
    assert bytes(pkt)[-5:] == b"\x00\x71\x00\x01\x00"  # type 113, length 1, value 0
    msg = _roundtrip(pkt)
    assert isinstance(msg, pfcp.SessionEstablishmentRequest)
    assert msg.pdn_type is not None
    assert msg.pdn_type.value == 0
    assert msg.pdn_type.value not in pfcp.PDNTypeValue._value2member_map_
    # and scapy's "IPv6" (its 1) is the spec's IPv4
    assert pfcp.decode_ie(113, bytes(S.IE_PDNType(pdn_type="IPv6"))[4:], 0, 1) == pfcp.PDNType(pfcp.PDNTypeValue.IPV4)


def test_session_modification_request() -> None:
    pkt = _session(9, UP_SEID) / S.PFCPSessionModificationRequest(
        IE_list=[
            S.IE_FSEID(v4=1, seid=CP_SEID, ipv4=SMF),
            S.IE_RemovePDR(IE_list=[S.IE_PDR_Id(id=3)]),
            S.IE_RemoveFAR(IE_list=[S.IE_FAR_Id(id=3)]),
            S.IE_RemoveURR(IE_list=[S.IE_URR_Id(id=3)]),
            S.IE_RemoveQER(IE_list=[S.IE_QER_Id(id=3)]),
            S.IE_UpdatePDR(
                IE_list=[
                    S.IE_PDR_Id(id=1),
                    S.IE_Precedence(precedence=100),
                    S.IE_FAR_Id(id=2),
                ]
            ),
            S.IE_UpdateFAR(
                IE_list=[
                    S.IE_FAR_Id(id=2),
                    S.IE_ApplyAction(FORW=1),
                    S.IE_UpdateForwardingParameters(
                        IE_list=[
                            S.IE_DestinationInterface(interface="Access"),
                            S.IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=0x0BADCAFE, ipv4=GNB),
                            S.IE_PFCPSMReqFlags(SNDEM=1),
                        ]
                    ),
                ]
            ),
            S.IE_UpdateURR(
                IE_list=[
                    S.IE_URR_Id(id=1),
                    S.IE_VolumeThreshold(ULVOL=1, uplink=10_000),
                ]
            ),
            S.IE_UpdateQER(
                IE_list=[
                    S.IE_QER_Id(id=1),
                    S.IE_GateStatus(ul="CLOSED", dl="CLOSED"),
                    S.IE_MBR(ul=5_000, dl=6_000),
                ]
            ),
            S.IE_PFCPSMReqFlags(QUARR=1, DROBU=1),
            S.IE_QueryURR(IE_list=[S.IE_URR_Id(id=1)]),
            S.IE_UserPlaneInactivityTimer(timer=600),
            S.IE_QueryURRReference(reference=77),
        ]
    )
    msg = _roundtrip(pkt)
    sm = pfcp.PFCPSMReqFlagsValue
    assert msg == pfcp.SessionModificationRequest(
        sequence=9,
        seid=UP_SEID,
        cp_f_seid=pfcp.FSEID(CP_SEID, IPv4Address(SMF)),
        remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(3)),),
        remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(3)),),
        remove_urr=(pfcp.RemoveURR(urr_id=pfcp.URRID(3)),),
        remove_qer=(pfcp.RemoveQER(qer_id=pfcp.QERID(3)),),
        update_pdr=(pfcp.UpdatePDR(pdr_id=pfcp.PDRID(1), precedence=pfcp.Precedence(100), far_id=pfcp.FARID(2)),),
        update_far=(
            pfcp.UpdateFAR(
                far_id=pfcp.FARID(2),
                apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
                update_forwarding_parameters=pfcp.UpdateForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
                    outer_header_creation=pfcp.OuterHeaderCreation(
                        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=0x0BADCAFE, ipv4=IPv4Address(GNB)
                    ),
                    pfcpsmreq_flags=pfcp.PFCPSMReqFlags(sm.SNDEM),
                ),
            ),
        ),
        update_urr=(pfcp.UpdateURR(urr_id=pfcp.URRID(1), volume_threshold=pfcp.VolumeThreshold(uplink=10_000)),),
        update_qer=(
            pfcp.UpdateQER(
                qer_id=pfcp.QERID(1),
                gate_status=pfcp.GateStatus(pfcp.Gate.CLOSED, pfcp.Gate.CLOSED),
                mbr=pfcp.MBR(5_000, 6_000),
            ),
        ),
        # scapy calls QAURR "QUARR"; same bit (§8.2.31 bit 3)
        pfcpsmreq_flags=pfcp.PFCPSMReqFlags(sm.QAURR | sm.DROBU),
        query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(1)),),
        user_plane_inactivity_timer=pfcp.UserPlaneInactivityTimer(600),
        query_urr_reference=pfcp.QueryURRReference(77),
    )


def _scapy_usage_report(cls: Any, urr: int, seqn: int, **trigger: int) -> Any:
    return cls(
        IE_list=[
            S.IE_URR_Id(id=urr),
            S.IE_UR_SEQN(number=seqn),
            S.IE_UsageReportTrigger(**trigger),
            S.IE_StartTime(timestamp=RTS + 100),
            S.IE_EndTime(timestamp=RTS + 160),
            S.IE_VolumeMeasurement(
                TOVOL=1, total=3_000_000_123, ULVOL=1, uplink=1_000_000_000, DLVOL=1, downlink=2_000_000_123
            ),
            S.IE_DurationMeasurement(duration=60),
            S.IE_TimeOfFirstPacket(timestamp=RTS + 101),
            S.IE_TimeOfLastPacket(timestamp=RTS + 159),
            S.IE_UsageInformation(BEF=1),
        ]
    )


def _usage_fields(urr: int, seqn: int, trigger: pfcp.UsageReportTriggerFlags) -> dict[str, Any]:
    return {
        "urr_id": pfcp.URRID(urr),
        "ur_seqn": pfcp.URSEQN(seqn),
        "usage_report_trigger": pfcp.UsageReportTrigger(trigger),
        "start_time": pfcp.StartTime(RTS + 100),
        "end_time": pfcp.EndTime(RTS + 160),
        "volume_measurement": pfcp.VolumeMeasurement(
            total_volume=3_000_000_123, uplink_volume=1_000_000_000, downlink_volume=2_000_000_123
        ),
        "duration_measurement": pfcp.DurationMeasurement(60),
        "time_of_first_packet": pfcp.TimeOfFirstPacket(RTS + 101),
        "time_of_last_packet": pfcp.TimeOfLastPacket(RTS + 159),
        "usage_information": pfcp.UsageInformation(pfcp.UsageInformationFlags.BEF),
    }


def test_session_deletion_request_and_response() -> None:
    req = _roundtrip(_session(10, UP_SEID) / S.PFCPSessionDeletionRequest())
    assert req == pfcp.SessionDeletionRequest(sequence=10, seid=UP_SEID)

    rsp = _roundtrip(
        _session(10, CP_SEID)
        / S.PFCPSessionDeletionResponse(
            IE_list=[
                S.IE_Cause(cause="Request accepted"),
                _scapy_usage_report(S.IE_UsageReport_SDR, 1, 5, TERMR=1),
            ]
        )
    )
    t = pfcp.UsageReportTriggerFlags
    assert rsp == pfcp.SessionDeletionResponse(
        sequence=10,
        seid=CP_SEID,
        cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
        usage_report=(pfcp.UsageReportSDR(**_usage_fields(1, 5, t.TERMR)),),
    )
    assert isinstance(rsp, pfcp.SessionDeletionResponse)
    assert rsp.usage_report[0].usage_report_trigger.octets == 2  # Rel-15 size


def test_session_report_request_with_usage_report() -> None:
    msg = _roundtrip(
        _session(11, CP_SEID)
        / S.PFCPSessionReportRequest(
            IE_list=[
                S.IE_ReportType(USAR=1, DLDR=1),
                S.IE_DownlinkDataReport(
                    IE_list=[S.IE_PDR_Id(id=2), S.IE_DownlinkDataServiceInformation(QFII=1, qfi_val=9)]
                ),
                _scapy_usage_report(S.IE_UsageReport_SRR, 1, 6, VOLTH=1, PERIO=1, VOLQU=1),
            ]
        )
    )
    t = pfcp.UsageReportTriggerFlags
    assert msg == pfcp.SessionReportRequest(
        sequence=11,
        seid=CP_SEID,
        report_type=pfcp.ReportType(pfcp.ReportTypeFlags.USAR | pfcp.ReportTypeFlags.DLDR),
        downlink_data_report=pfcp.DownlinkDataReport(
            pdr_id=(pfcp.PDRID(2),), downlink_data_service_information=(pfcp.DownlinkDataServiceInformation(qfi=9),)
        ),
        usage_report=(pfcp.UsageReportSRR(**_usage_fields(1, 6, t.VOLTH | t.PERIO | t.VOLQU)),),
    )


def test_session_establishment_response_with_v6_addresses() -> None:
    msg = _roundtrip(
        _session(7, CP_SEID)
        / S.PFCPSessionEstablishmentResponse(
            IE_list=[
                S.IE_NodeId(id_type="IPv6", ipv6="2001:db8::20"),
                S.IE_Cause(cause="Request accepted"),
                S.IE_FSEID(v4=1, v6=1, seid=UP_SEID, ipv4=UPF, ipv6="2001:db8::20"),
                S.IE_CreatedPDR(
                    IE_list=[
                        S.IE_PDR_Id(id=1),
                        S.IE_FTEID(V4=1, V6=1, TEID=0x1234, ipv4=UPF, ipv6="2001:db8::20"),
                    ]
                ),
            ]
        )
    )
    v6 = IPv6Address("2001:db8::20")
    assert msg == pfcp.SessionEstablishmentResponse(
        sequence=7,
        seid=CP_SEID,
        node_id=pfcp.NodeID(v6),
        cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
        up_f_seid=pfcp.FSEID(UP_SEID, IPv4Address(UPF), v6),
        created_pdr=(pfcp.CreatedPDR(pdr_id=pfcp.PDRID(1), local_f_teid=pfcp.FTEID(0x1234, IPv4Address(UPF), v6)),),
    )
