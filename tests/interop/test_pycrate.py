"""pycrate's PFCP (``pycrate_mobile.TS29244_PFCP``, Rel-17) against our codec, both ways.

(a) Messages built by pycrate decode in our codec to the values pycrate was
    given, and re-encode to pycrate's bytes.
(b) pycrate parses every message we encode (the corpus of :mod:`.corpus` and
    the golden vector) with err == 0. Because pycrate silently falls back to raw
    bytes when an IE's structure does not parse, we also check that each IE it
    has a class for was decoded with that class, left no trailing octets
    (``ext``), and carries our values for a selection of fields.

pycrate's own deviations, checked explicitly where they bite (KNOWN_RAW):

* Source IP Address: its Mask/Prefix Length octet is unconditional, so an IE
  with MPL=0 (no such octet, TS 29.244 §8.2.138) falls back to raw bytes.
* FQ-CSID: it requires the Rel-17 Node Type octet; a Rel-15/16 FQ-CSID
  without it (still valid, and what Rel-16 peers send) falls back to raw.
* Usage Report (Session Report Request): its mandatory-IE list is Downlink Data
  Report's (DL Data Service Information, DL Data Packets Size, Data Status),
  so every Usage Report SRR fails its check and falls back to raw. We re-parse
  those without the check to compare the children anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntFlag
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

import pfcp
from pfcp import IEType
from pfcp.ie.base import U8, U16, U24, U32, U64

from .corpus import all_encoded, case_names, children, encoded, is_grouped, tlvs

P: Any = pytest.importorskip("pycrate_mobile.TS29244_PFCP", reason="pycrate is not installed (pip install pycrate)")
elt: Any = pytest.importorskip("pycrate_core.elt")
base: Any = pytest.importorskip("pycrate_core.base")

pytestmark = pytest.mark.interop

RTS = 3_899_836_800
SMF = IPv4Address("192.0.2.10")
UPF = IPv4Address("192.0.2.20")
GNB = IPv4Address("198.51.100.7")
UE = IPv4Address("10.45.0.2")
CP_SEID = 0x0102030405060708
UP_SEID = 0x1000000000000001


# --------------------------------------------------------------------------
# (a) pycrate builds, we decode


def _build(cls: Any, hdr: dict[str, Any], ies: list[dict[str, Any]]) -> bytes:
    msg = cls()
    msg.set_val([hdr, ies])
    data: bytes = msg.to_bytes()
    return data


def _ie(ie_type: int, data: Any) -> dict[str, Any]:
    return {"Type": ie_type, "Data": data}


def _decoded(data: bytes) -> pfcp.Message:
    msg = pfcp.decode(data)
    assert pfcp.encode(msg) == data, "re-encoding pycrate's message changed its bytes"
    return msg


def test_heartbeat_built_by_pycrate() -> None:
    req = _decoded(_build(P.PFCPHeartbeatReq, {"SeqNum": 1}, [_ie(96, {"Val": RTS})]))
    assert req == pfcp.HeartbeatRequest(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS))
    rsp = _decoded(_build(P.PFCPHeartbeatResp, {"SeqNum": 1}, [_ie(96, {"Val": RTS + 3})]))
    assert rsp == pfcp.HeartbeatResponse(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS + 3))


def test_association_setup_built_by_pycrate() -> None:
    req = _decoded(
        _build(
            P.PFCPAssociationSetupReq,
            {"SeqNum": 0xABCDEF},
            [
                _ie(60, {"Type": 2, "Val": "smf1.edge.example.org"}),
                _ie(96, {"Val": RTS}),
                # flag IEs are set octet by octet: pycrate's set_val() breaks on bare flag names
                _ie(89, {"Octet1": {"LOAD": 1, "OVRL": 1, "BUNDL": 1}}),
            ],
        )
    )
    cp = pfcp.CPFeatures
    assert req == pfcp.AssociationSetupRequest(
        sequence=0xABCDEF,
        node_id=pfcp.NodeID("smf1.edge.example.org"),
        recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS),
        cp_function_features=pfcp.CPFunctionFeatures(cp.LOAD | cp.OVRL | cp.BUNDL),
    )
    rsp_bytes = _build(
        P.PFCPAssociationSetupResp,
        {"SeqNum": 0xABCDEF},
        [
            _ie(60, {"Type": 0, "Val": UPF.packed}),
            _ie(19, 1),
            _ie(96, {"Val": RTS + 1}),
            _ie(
                43,
                {
                    "Octet1": {"BUCP": 1, "FTUP": 1},
                    "Octet2": {"EMPU": 1},
                    "Octet3": {"UEIP": 1},
                    "Octet4": {"MPAS": 1},
                },
            ),
        ],
    )
    rsp = _decoded(rsp_bytes)
    up = pfcp.UPFeatures
    assert rsp == pfcp.AssociationSetupResponse(
        sequence=0xABCDEF,
        node_id=pfcp.NodeID(UPF),
        cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
        recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS + 1),
        up_function_features=pfcp.UPFunctionFeatures(up.BUCP | up.FTUP | up.EMPU | up.UEIP | up.MPAS),
    )
    # pycrate sends all the octets it knows (Rel-17); we keep that length.
    (sent,) = [raw for raw in tlvs(rsp_bytes[8:]) if raw[:2] == b"\x00\x2b"]
    assert isinstance(rsp, pfcp.AssociationSetupResponse) and rsp.up_function_features is not None
    assert rsp.up_function_features.octets == len(sent) - 4 >= 4


def test_session_establishment_built_by_pycrate() -> None:
    data = _build(
        P.PFCPSessionEstablishmentReq,
        {"S": 1, "SEID": 0, "SeqNum": 21},
        [
            _ie(60, {"Type": 0, "Val": SMF.packed}),
            _ie(57, {"V4": 1, "SEID": CP_SEID, "IPv4Addr": SMF.packed}),
            _ie(
                1,
                [
                    _ie(56, {"Val": 1}),
                    _ie(29, {"Val": 255}),
                    _ie(
                        2,
                        [
                            _ie(20, {"If": 0}),
                            _ie(21, {"V4": 1, "TEID": 0x11223344, "IPv4Addr": bytes([10, 0, 0, 2])}),
                            _ie(22, b"\x08internet"),
                            _ie(93, {"V4": 1, "IPv4Addr": UE.packed}),
                            _ie(124, {"QFI": 9}),
                        ],
                    ),
                    _ie(95, {"Desc": 0}),
                    _ie(108, {"Val": 1}),
                    _ie(81, {"Val": 1}),
                    _ie(109, {"Val": 1}),
                ],
            ),
            _ie(
                3,
                [
                    _ie(108, {"Val": 1}),
                    _ie(44, {"Octet1": {"FORW": 1}}),
                    _ie(4, [_ie(42, {"Val": 1}), _ie(22, b"\x08internet")]),
                ],
            ),
            _ie(
                3,
                [
                    _ie(108, {"Val": 2}),
                    _ie(44, {"Octet1": {"BUFF": 1, "NOCP": 1}}),
                    _ie(
                        4,
                        [
                            _ie(42, {"Val": 0}),
                            _ie(84, {"GTPU_UDP_IPv4": 1, "TEID": 0x55667788, "IPv4Addr": GNB.packed}),
                        ],
                    ),
                    _ie(88, {"Val": 1}),
                ],
            ),
            _ie(
                6,
                [
                    _ie(81, {"Val": 1}),
                    _ie(62, {"VOLUM": 1, "DURAT": 1}),
                    _ie(37, {"Octet1": {"VOLTH": 1, "TIMTH": 1}, "Octet2": {"VOLQU": 1}}),
                    _ie(31, {"TOVOL": 1, "Total": 1_000_000_000}),
                    _ie(32, {"Val": 3600}),
                ],
            ),
            _ie(
                7,
                [
                    _ie(109, {"Val": 1}),
                    _ie(25, {"ULGate": 0, "DLGate": 1}),
                    _ie(26, {"UL": 100_000, "DL": 200_000}),
                    _ie(27, {"UL": 1_000, "DL": 2_000}),
                    _ie(124, {"QFI": 9}),
                ],
            ),
            _ie(113, {"Val": 1}),
        ],
    )
    msg = _decoded(data)
    a = pfcp.ApplyActionFlags
    rt = pfcp.ReportingTriggersFlags
    assert msg == pfcp.SessionEstablishmentRequest(
        sequence=21,
        seid=0,
        node_id=pfcp.NodeID(SMF),
        cp_f_seid=pfcp.FSEID(CP_SEID, SMF),
        create_pdr=(
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(1),
                precedence=pfcp.Precedence(255),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
                    local_f_teid=pfcp.FTEID(0x11223344, IPv4Address("10.0.0.2")),
                    network_instance=pfcp.NetworkInstance("internet"),
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=UE),),
                    qfi=(pfcp.QFI(9),),
                ),
                outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
                far_id=pfcp.FARID(1),
                urr_id=(pfcp.URRID(1),),
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
                ),
            ),
            pfcp.CreateFAR(
                far_id=pfcp.FARID(2),
                apply_action=pfcp.ApplyAction(a.BUFF | a.NOCP),
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
                    outer_header_creation=pfcp.OuterHeaderCreation(
                        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=0x55667788, ipv4=GNB
                    ),
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
                reporting_triggers=pfcp.ReportingTriggers(rt.VOLTH | rt.TIMTH | rt.VOLQU),
                volume_threshold=pfcp.VolumeThreshold(total=1_000_000_000),
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
    # pycrate (Rel-17) sends the Rel-16 sizes: two-octet Apply Action, three-octet Reporting Triggers.
    assert isinstance(msg, pfcp.SessionEstablishmentRequest)
    assert [far.apply_action.octets for far in msg.create_far] == [2, 2]
    assert msg.create_urr[0].reporting_triggers.octets == 3


def test_session_modification_built_by_pycrate() -> None:
    data = _build(
        P.PFCPSessionModificationReq,
        {"S": 1, "SEID": UP_SEID, "SeqNum": 22},
        [
            _ie(15, [_ie(56, {"Val": 3})]),
            _ie(16, [_ie(108, {"Val": 3})]),
            _ie(
                9,
                [
                    _ie(56, {"Val": 1}),
                    _ie(29, {"Val": 10}),
                    _ie(108, {"Val": 2}),
                ],
            ),
            _ie(
                10,
                [
                    _ie(108, {"Val": 2}),
                    _ie(44, {"Octet1": {"FORW": 1}}),
                    _ie(
                        11,
                        [
                            _ie(42, {"Val": 0}),
                            _ie(84, {"GTPU_UDP_IPv4": 1, "TEID": 0x0BADCAFE, "IPv4Addr": GNB.packed}),
                            _ie(49, {"SNDEM": 1}),
                        ],
                    ),
                ],
            ),
            _ie(13, [_ie(81, {"Val": 1}), _ie(31, {"ULVOL": 1, "Uplink": 10_000})]),
            _ie(14, [_ie(109, {"Val": 1}), _ie(26, {"UL": 5_000, "DL": 6_000})]),
            _ie(49, {"QAURR": 1}),
            _ie(77, [_ie(81, {"Val": 1})]),
        ],
    )
    msg = _decoded(data)
    assert msg == pfcp.SessionModificationRequest(
        sequence=22,
        seid=UP_SEID,
        remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(3)),),
        remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(3)),),
        update_pdr=(pfcp.UpdatePDR(pdr_id=pfcp.PDRID(1), precedence=pfcp.Precedence(10), far_id=pfcp.FARID(2)),),
        update_far=(
            pfcp.UpdateFAR(
                far_id=pfcp.FARID(2),
                apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
                update_forwarding_parameters=pfcp.UpdateForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
                    outer_header_creation=pfcp.OuterHeaderCreation(
                        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=0x0BADCAFE, ipv4=GNB
                    ),
                    pfcpsmreq_flags=pfcp.PFCPSMReqFlags(pfcp.PFCPSMReqFlagsValue.SNDEM),
                ),
            ),
        ),
        update_urr=(pfcp.UpdateURR(urr_id=pfcp.URRID(1), volume_threshold=pfcp.VolumeThreshold(uplink=10_000)),),
        update_qer=(pfcp.UpdateQER(qer_id=pfcp.QERID(1), mbr=pfcp.MBR(5_000, 6_000)),),
        pfcpsmreq_flags=pfcp.PFCPSMReqFlags(pfcp.PFCPSMReqFlagsValue.QAURR),
        query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(1)),),
    )


def test_session_deletion_built_by_pycrate() -> None:
    req = _decoded(_build(P.PFCPSessionDeletionReq, {"S": 1, "SEID": UP_SEID, "SeqNum": 23}, []))
    assert req == pfcp.SessionDeletionRequest(sequence=23, seid=UP_SEID)
    rsp = _decoded(
        _build(
            P.PFCPSessionDeletionResp,
            {"S": 1, "SEID": CP_SEID, "SeqNum": 23},
            [
                _ie(19, 1),
                _ie(
                    79,
                    [
                        _ie(81, {"Val": 1}),
                        _ie(104, 9),
                        _ie(63, {"Octet2": {"TERMR": 1}}),
                        _ie(75, {"Val": RTS + 10}),
                        _ie(76, {"Val": RTS + 70}),
                        _ie(
                            66,
                            {
                                "TOVOL": 1,
                                "ULVOL": 1,
                                "DLVOL": 1,
                                "TotalVolume": 30,
                                "UplinkVolume": 10,
                                "DownlinkVolume": 20,
                            },
                        ),
                        _ie(67, {"Val": 60}),
                    ],
                ),
            ],
        )
    )
    assert rsp == pfcp.SessionDeletionResponse(
        sequence=23,
        seid=CP_SEID,
        cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
        usage_report=(
            pfcp.UsageReportSDR(
                urr_id=pfcp.URRID(1),
                ur_seqn=pfcp.URSEQN(9),
                usage_report_trigger=pfcp.UsageReportTrigger(pfcp.UsageReportTriggerFlags.TERMR),
                start_time=pfcp.StartTime(RTS + 10),
                end_time=pfcp.EndTime(RTS + 70),
                volume_measurement=pfcp.VolumeMeasurement(total_volume=30, uplink_volume=10, downlink_volume=20),
                duration_measurement=pfcp.DurationMeasurement(60),
            ),
        ),
    )


# --------------------------------------------------------------------------
# (b) we encode, pycrate parses


def _packed(value: IPv4Address | IPv6Address | None) -> bytes | None:
    return None if value is None else value.packed


def _flags(value: int, enum: type[IntFlag], names: dict[str, str] | None = None) -> dict[str, Any]:
    names = names or {}
    out: dict[str, Any] = {}
    for member in enum:
        assert member.name is not None
        out[names.get(member.name, member.name)] = _Bit(bool(value & member))
    return out


class _Bit:
    """A flag bit: pycrate must show it; a clear bit pycrate does not know may be missing."""

    __slots__ = ("set",)

    def __init__(self, set_: bool) -> None:
        self.set = set_

    def __repr__(self) -> str:
        return f"bit({int(self.set)})"


def _addresses(ipv4: IPv4Address | None, ipv6: IPv6Address | None) -> dict[str, Any]:
    return {
        "V4": int(ipv4 is not None),
        "V6": int(ipv6 is not None),
        "IPv4Addr": _packed(ipv4),
        "IPv6Addr": _packed(ipv6),
    }


def _node_id(ie: pfcp.NodeID) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": int(ie.node_id_type)}
    if isinstance(ie.value, str):
        out["FQDN.Val"] = [label.encode() for label in ie.value.split(".")]
    elif isinstance(ie.value, IPv4Address):
        out["IPv4Addr"] = ie.value.packed
    else:
        out["IPv6Addr"] = ie.value.packed
    return out


def _fteid(ie: pfcp.FTEID) -> dict[str, Any]:
    out: dict[str, Any] = {
        "CH": int(ie.choose),
        "CHID": int(ie.choose_id is not None),
        "V4": int(ie.ipv4 is not None or ie.choose_v4),
        "V6": int(ie.ipv6 is not None or ie.choose_v6),
        "TEID": ie.teid,
        "IPv4Addr": _packed(ie.ipv4),
        "IPv6Addr": _packed(ie.ipv6),
        "CHOOSE_ID": ie.choose_id,
    }
    return out


def _ue_ip(ie: pfcp.UEIPAddress) -> dict[str, Any]:
    return {
        **_addresses(ie.ipv4, ie.ipv6),
        "SD": int(ie.is_destination),
        "CHV4": int(ie.choose_v4),
        "CHV6": int(ie.choose_v6),
    }


def _ohc(ie: pfcp.OuterHeaderCreation) -> dict[str, Any]:
    names = {
        "GTPU_UDP_IPV4": "GTPU_UDP_IPv4",
        "GTPU_UDP_IPV6": "GTPU_UDP_IPv6",
        "UDP_IPV4": "UDP_IPv4",
        "UDP_IPV6": "UDP_IPv6",
        "IPV4": "IPv4",
        "IPV6": "IPv6",
        "C_TAG": "CTAG",
        "S_TAG": "STAG",
        "N19_INDICATION": "N19",
        "N6_INDICATION": "N6",
    }
    return {
        **_flags(ie.description, pfcp.OuterHeaderCreationDescription, names),
        "TEID": ie.teid,
        "IPv4Addr": _packed(ie.ipv4),
        "IPv6Addr": _packed(ie.ipv6),
        "Port": ie.port,
    }


def _bytes(value: int | None, size: int) -> bytes | None:
    return None if value is None else value.to_bytes(size, "big")


def _sdf(ie: pfcp.SDFFilter) -> dict[str, Any]:
    return {
        "FD": int(ie.flow_description is not None),
        "TTC": int(ie.tos_traffic_class is not None),
        "SPI": int(ie.security_parameter_index is not None),
        "FL": int(ie.flow_label is not None),
        "BID": int(ie.sdf_filter_id is not None),
        "Val": None if ie.flow_description is None else ie.flow_description.encode(),
        "ToSTrafficClass": _bytes(ie.tos_traffic_class, 2),
        "SecurityParameterIndex": _bytes(ie.security_parameter_index, 4),
        "FlowLabel": _bytes(ie.flow_label, 3),
        "SDFFilterID": ie.sdf_filter_id,
    }


def _volumes(ie: pfcp.VolumeThreshold | pfcp.VolumeQuota) -> dict[str, Any]:
    return {
        "TOVOL": int(ie.total is not None),
        "ULVOL": int(ie.uplink is not None),
        "DLVOL": int(ie.downlink is not None),
        "Total": ie.total,
        "Uplink": ie.uplink,
        "Downlink": ie.downlink,
    }


def _volume_measurement(ie: pfcp.VolumeMeasurement) -> dict[str, Any]:
    pairs = (
        ("TOVOL", "TotalVolume", ie.total_volume),
        ("ULVOL", "UplinkVolume", ie.uplink_volume),
        ("DLVOL", "DownlinkVolume", ie.downlink_volume),
        ("TONOP", "TotalNumPackets", ie.total_packets),
        ("ULNOP", "UplinkNumPackets", ie.uplink_packets),
        ("DLNOP", "DownlinkNumPackets", ie.downlink_packets),
    )
    out: dict[str, Any] = {}
    for flag, name, value in pairs:
        out[flag] = int(value is not None)
        out[name] = value
    return out


def _fq_csid(ie: pfcp.FQCSID) -> dict[str, Any]:
    out: dict[str, Any] = {"NumCSIDs": len(ie.csids), "CSID": list(ie.csids), "NodeType": ie.node_type}
    if isinstance(ie.node, IPv4Address):
        out.update({"NodeIDType": 0, "IPv4Addr": ie.node.packed})
    elif isinstance(ie.node, IPv6Address):
        out.update({"NodeIDType": 1, "IPv6Addr": ie.node.packed})
    else:
        out.update({"NodeIDType": 2, "MCCMNCAddr": ie.node.to_bytes(4, "big")})
    return out


def _remote_peer(ie: pfcp.RemoteGTPUPeer) -> dict[str, Any]:
    return {
        **_addresses(ie.ipv4, ie.ipv6),
        "DI": int(ie.destination_interface is not None),
        "NI": int(ie.network_instance is not None),
    }


def _timer(ie: pfcp.Timer | pfcp.GracefulReleasePeriod | pfcp.DLBufferingDuration) -> dict[str, Any]:
    return {"TimerUnit": int(ie.unit), "TimerVal": ie.value}


def _failed_rule(ie: pfcp.FailedRuleID) -> dict[str, Any]:
    return {"RuleIDType": int(ie.rule_type), f"{ie.rule_type.name}ID": ie.rule_id}


def _raw(ie: Any) -> dict[str, Any]:
    return {"Data": ie.encode_payload()}


def _one(name: str, attr: str = "value") -> Callable[[Any], dict[str, Any]]:
    return lambda ie: {name: int(getattr(ie, attr))}


#: A selection of IE classes and the pycrate fields that must carry our values
#: (None: the field must be absent, e.g. an address whose flag is clear).
#: Plain integer IEs (U8..U64 layouts) are checked generically ("Val" or "Data").
EXPECTED: dict[type[pfcp.IE], Callable[[Any], dict[str, Any]]] = {
    pfcp.NodeID: _node_id,
    pfcp.FSEID: lambda ie: {**_addresses(ie.ipv4, ie.ipv6), "SEID": ie.seid},
    pfcp.FTEID: _fteid,
    pfcp.UEIPAddress: _ue_ip,
    pfcp.OuterHeaderCreation: _ohc,
    pfcp.OuterHeaderRemoval: _one("Desc", "description"),
    pfcp.SDFFilter: _sdf,
    pfcp.VolumeThreshold: _volumes,
    pfcp.VolumeQuota: _volumes,
    pfcp.VolumeMeasurement: _volume_measurement,
    pfcp.FQCSID: _fq_csid,
    pfcp.RemoteGTPUPeer: _remote_peer,
    pfcp.Timer: _timer,
    pfcp.GracefulReleasePeriod: _timer,
    pfcp.DLBufferingDuration: _timer,
    pfcp.FailedRuleID: _failed_rule,
    pfcp.Cause: _one("Data"),
    pfcp.SourceInterface: _one("If"),
    pfcp.DestinationInterface: _one("Val"),
    pfcp.TGPPInterfaceType: _one("Val"),
    pfcp.PDNType: _one("Val"),
    pfcp.QFI: _one("QFI"),
    pfcp.RQI: _one("RQI"),
    pfcp.PagingPolicyIndicator: _one("PPI"),
    pfcp.DLBufferingSuggestedPacketCount: _one("Data"),
    pfcp.GateStatus: lambda ie: {"ULGate": int(ie.ul), "DLGate": int(ie.dl)},
    pfcp.MBR: lambda ie: {"UL": ie.ul, "DL": ie.dl},
    pfcp.GBR: lambda ie: {"UL": ie.ul, "DL": ie.dl},
    pfcp.TransportLevelMarking: lambda ie: {"ToSTrafficClass": bytes((ie.tos, ie.mask))},
    pfcp.NetworkInstance: _raw,
    pfcp.ApplicationID: _raw,
    pfcp.APNDNN: lambda ie: {"Val": [label.encode() for label in ie.value.split(".")]},
    pfcp.SNSSAI: lambda ie: {"SST": ie.sst, "SD": ie.sd},
    pfcp.DownlinkDataServiceInformation: lambda ie: {
        "PPI": int(ie.paging_policy_indication is not None),
        "QFII": int(ie.qfi is not None),
    },
    pfcp.AdditionalUsageReportsInformation: lambda ie: {"AURI": int(ie.auri), "Num": ie.number_of_reports},
    pfcp.TraceInformation: lambda ie: {"TraceID": ie.trace_id, "SessionTraceDepth": ie.session_trace_depth},
    pfcp.UserID: lambda ie: {
        "IMSIF": int(ie.imsi is not None),
        "IMEIF": int(ie.imei is not None),
        "MSISDNF": int(ie.msisdn is not None),
        "NAIF": int(ie.nai is not None),
    },
    pfcp.SourceIPAddress: lambda ie: {
        **_addresses(ie.ipv4, ie.ipv6),
        "MPL": int(ie.prefix_length is not None),
        "MaskPrefLen": ie.prefix_length,
    },
    pfcp.ApplyAction: lambda ie: _flags(ie.value, pfcp.ApplyActionFlags),
    pfcp.ReportingTriggers: lambda ie: _flags(ie.value, pfcp.ReportingTriggersFlags),
    pfcp.UsageReportTrigger: lambda ie: _flags(ie.value, pfcp.UsageReportTriggerFlags),
    pfcp.MeasurementMethod: lambda ie: _flags(ie.value, pfcp.MeasurementMethodFlags),
    pfcp.MeasurementInformation: lambda ie: _flags(ie.value, pfcp.MeasurementInformationFlags),
    pfcp.UsageInformation: lambda ie: _flags(ie.value, pfcp.UsageInformationFlags),
    pfcp.ReportType: lambda ie: _flags(ie.value, pfcp.ReportTypeFlags),
    pfcp.NodeReportType: lambda ie: _flags(ie.value, pfcp.NodeReportTypeFlags),
    pfcp.PFCPSMReqFlags: lambda ie: _flags(ie.value, pfcp.PFCPSMReqFlagsValue),
    pfcp.PFCPSRRspFlags: lambda ie: _flags(ie.value, pfcp.PFCPSRRspFlagsValue),
    pfcp.OCIFlags: lambda ie: _flags(ie.value, pfcp.OCIFlagsValue),
    pfcp.PFCPAssociationReleaseRequest: lambda ie: _flags(ie.value, pfcp.PFCPAssociationReleaseRequestFlags),
    pfcp.CPFunctionFeatures: lambda ie: _flags(ie.value, pfcp.CPFeatures),
    pfcp.UPFunctionFeatures: lambda ie: _flags(ie.value, pfcp.UPFeatures),
}


def _known_raw(ie: pfcp.IE) -> str | None:
    """Why pycrate cannot decode this IE of ours with its class, when that is pycrate's doing."""
    if isinstance(ie, pfcp.SourceIPAddress) and ie.prefix_length is None:
        return "pycrate: Mask/Prefix Length is unconditional (TS 29.244 §8.2.138: only when MPL=1)"
    if isinstance(ie, pfcp.FQCSID) and ie.node_type is None:
        return "pycrate: requires the Rel-17 Node Type octet (Rel-15/16 FQ-CSIDs have none)"
    if isinstance(ie, pfcp.UsageReportSRR):
        return "pycrate: Usage Report SRR checks Downlink Data Report's mandatory IEs"
    return None


Fields = dict[str, list[Any]]


def _flat(el: Any, out: Fields, seq: str | None = None) -> Fields:
    """pycrate's leaf values by name (and "Sequence.name" inside sequences)."""
    if el.get_trans():
        return out
    if isinstance(el, elt.Alt):
        return _flat(el.get_alt(), out, seq)
    if isinstance(el, (elt.Sequence, elt.Array)):
        for sub in el._content:
            _flat(sub, out, el._name)
    elif isinstance(el, elt.Envelope):
        for sub in el._content:
            _flat(sub, out, seq)
    else:
        out.setdefault(el._name, []).append(el.get_val())
        if seq is not None:
            out.setdefault(f"{seq}.{el._name}", []).append(el.get_val())
    return out


def _compare(ours: pfcp.IE, theirs: Any, path: str, problems: list[str]) -> None:
    name = f"{path}/{type(ours).__name__}"
    ie_type = theirs[0].get_val()
    if ie_type != ours.ie_type:
        problems.append(f"{name}: pycrate sees IE type {ie_type}, we sent {ours.ie_type}")
        return
    payload = ours.encode_payload()
    if theirs[1].get_val() != len(payload):
        problems.append(f"{name}: pycrate sees length {theirs[1].get_val()}, we sent {len(payload)}")
    data = theirs[3]
    cls = P.PFCPIELUT.get(ie_type)
    raw = isinstance(data, base.Buf) and cls is not None and not issubclass(cls, base.Buf)
    if raw:
        reason = _known_raw(ours)
        if reason is None:
            problems.append(f"{name}: pycrate could not decode it as {cls.__name__}: {data.get_val().hex()}")
            return
        if data.get_val() != payload:
            problems.append(f"{name}: pycrate's raw bytes differ from ours")
        if not issubclass(cls, P.PFCPIEs):
            return  # a leaf pycrate cannot read: nothing more to compare
        data = cls()
        data.VERIF_MAND = False  # only the mandatory-IE check is wrong; read the children
        data.from_bytes(payload)
    if is_grouped(ours):
        if not isinstance(data, P.PFCPIEs):
            problems.append(f"{name}: pycrate does not read it as a grouped IE")
            return
        kids, theirs_kids = children(ours), list(data)
        if len(kids) != len(theirs_kids):
            problems.append(f"{name}: pycrate sees {len(theirs_kids)} child IEs, we sent {len(kids)}")
        for i, (mine, its) in enumerate(zip(kids, theirs_kids, strict=False)):
            _compare(mine, its, f"{name}[{i}]", problems)
        return
    fields = _flat(data, {})
    if any(v not in (b"", None) for v in fields.get("ext", [])):
        problems.append(f"{name}: pycrate left trailing octets undecoded: {fields['ext']}")
    if type(ours) in EXPECTED:
        expected = EXPECTED[type(ours)](ours)
    elif isinstance(ours, (U8, U16, U24, U32, U64)):
        expected = {"Val" if "Val" in fields else "Data": ours.value}
    else:
        return  # outside the selection: type, length, clean decode and no trailing octets are checked
    for key, want in expected.items():
        got = fields.get(key)
        if isinstance(want, _Bit):
            if got is None:
                if want.set:
                    problems.append(f"{name}: pycrate has no flag {key}, which we set")
            elif got != [int(want.set)]:
                problems.append(f"{name}: flag {key} is {got} in pycrate, {int(want.set)} in ours")
        elif want is None:
            if got is not None:
                problems.append(f"{name}: pycrate shows {key}={got}, which we did not send")
        elif got is None:
            problems.append(f"{name}: pycrate shows no {key} (we sent {want!r}); it has {sorted(fields)}")
        elif got != (want if isinstance(want, list) else [want]):
            problems.append(f"{name}: {key} is {got} in pycrate, {want!r} in ours")


@pytest.mark.parametrize("name", case_names())
def test_pycrate_parses_what_we_encode(name: str) -> None:
    data = encoded(dict(all_encoded()), name)
    msg, err = P.parse_PFCP(data)
    assert err == 0, f"pycrate parse_PFCP error {err}"
    ours = pfcp.decode(data)
    hdr = msg[0]
    assert hdr["Type"].get_val() == ours.message_type
    assert hdr["SeqNum"].get_val() == ours.sequence
    assert hdr["S"].get_val() == int(ours.seid is not None)
    if ours.seid is not None:
        assert hdr["SEID"].get_val() == ours.seid
    assert hdr["MP"].get_val() == int(ours.priority is not None)
    if ours.priority is not None:
        assert hdr["MPSel"].get_alt()["MsgPriority"].get_val() == ours.priority
    assert hdr["Len"].get_val() == len(data) - 4
    problems: list[str] = []
    kids, theirs = children(ours), list(msg[1])
    if len(kids) != len(theirs):
        problems.append(f"pycrate sees {len(theirs)} IEs, we sent {len(kids)}")
    for i, (mine, its) in enumerate(zip(kids, theirs, strict=False)):
        _compare(mine, its, f"{type(ours).__name__}[{i}]", problems)
    assert problems == [], "\n".join(problems)


def test_pycrate_known_issues_are_really_pycrates() -> None:
    """Each KNOWN_RAW case: pycrate rejects our (spec-conformant) IE, and accepts the variant it wants."""
    with_mpl = pfcp.SourceIPAddress(ipv4=SMF, prefix_length=24)
    without = pfcp.SourceIPAddress(ipv4=SMF)
    fq_rel17 = pfcp.FQCSID(SMF, (1,), node_type=1)
    fq_rel16 = pfcp.FQCSID(SMF, (1,))
    for good, bad in ((with_mpl, without), (fq_rel17, fq_rel16)):
        for ie, structured in ((good, True), (bad, False)):
            parsed = P.PFCPIE()
            parsed.from_bytes(ie.encode())
            assert isinstance(parsed[3], base.Buf) is not structured, ie
    assert _known_raw(without) and _known_raw(fq_rel16)
    assert set(P.UsageReportSessionReportReq.MAND) == {
        IEType.DOWNLINK_DATA_SERVICE_INFORMATION,
        IEType.DL_DATA_PACKETS_SIZE,
        IEType.DATA_STATUS,
    }
