"""The shared golden Session Establishment Request (../shared/pfcp-vectors).

Every value of the vector's README is checked on the decoded message, the
message re-encodes byte for byte, and the same 370 octets are built from
scratch with typed constructors.
"""

from __future__ import annotations

import dataclasses
import struct
from ipaddress import IPv4Address

import pytest

import pfcp
from pfcp import (
    FARID,
    FSEID,
    FTEID,
    MBR,
    PDI,
    PDRID,
    QERID,
    QFI,
    URRID,
    ApplyAction,
    ApplyActionFlags,
    CreateFAR,
    CreatePDR,
    CreateQER,
    CreateURR,
    DestinationInterface,
    DestinationInterfaceValue,
    ForwardingParameters,
    Gate,
    GateStatus,
    MeasurementMethod,
    MeasurementMethodFlags,
    NetworkInstance,
    NodeID,
    OuterHeaderCreation,
    OuterHeaderCreationDescription,
    OuterHeaderRemoval,
    OuterHeaderRemovalDescription,
    PDNType,
    PDNTypeValue,
    Precedence,
    ReportingTriggers,
    ReportingTriggersFlags,
    SessionEstablishmentRequest,
    SourceInterface,
    SourceInterfaceValue,
    UEIPAddress,
    VolumeThreshold,
)

#: IE order of the vector (README): Create QER comes before Create URR.
README_ORDER = (
    "node_id",
    "cp_f_seid",
    "create_pdr",
    "create_pdr",
    "create_far",
    "create_far",
    "create_qer",
    "create_urr",
    "pdn_type",
)


@pytest.fixture(scope="module")
def golden(golden_ser_bytes: bytes) -> bytes:
    assert len(golden_ser_bytes) == 370
    return golden_ser_bytes


@pytest.fixture(scope="module")
def ser(golden: bytes) -> SessionEstablishmentRequest:
    msg = pfcp.decode(golden)
    assert isinstance(msg, SessionEstablishmentRequest)
    return msg


def test_header(golden: bytes, ser: SessionEstablishmentRequest) -> None:
    flags, message_type, length = struct.unpack_from(">BBH", golden)
    assert flags >> 5 == 1  # version 1
    assert flags & 0x01  # S=1
    assert not flags & 0x06  # no MP, no FO
    assert message_type == pfcp.MessageType.SESSION_ESTABLISHMENT_REQUEST == ser.TYPE
    assert length == 370 - 4
    assert ser.seid == 0
    assert ser.sequence == 1
    assert ser.priority is None
    assert ser.extra == ()


def test_node_id_and_f_seid(ser: SessionEstablishmentRequest) -> None:
    assert ser.node_id == NodeID(IPv4Address("127.0.0.10"))
    assert ser.node_id.node_id_type is pfcp.NodeIDType.IPV4_ADDRESS
    assert ser.cp_f_seid.seid == 0x1122334455667788
    assert ser.cp_f_seid.ipv4 == IPv4Address("127.0.0.10")
    assert ser.cp_f_seid.ipv6 is None


def test_uplink_pdr(ser: SessionEstablishmentRequest) -> None:
    pdr = ser.create_pdr[0]
    assert pdr.pdr_id.value == 1
    assert pdr.precedence.value == 255
    pdi = pdr.pdi
    assert pdi.source_interface.value is SourceInterfaceValue.ACCESS
    assert pdi.local_f_teid == FTEID(0x11223344, IPv4Address("10.0.0.2"))
    assert not pdi.local_f_teid.choose
    assert pdi.network_instance == NetworkInstance("internet")
    assert pdi.network_instance.label_encoded
    (ue,) = pdi.ue_ip_address
    assert ue.ipv4 == IPv4Address("10.45.0.2") and ue.ipv6 is None
    assert ue.is_destination is False  # S/D = 0
    assert not (ue.choose_v4 or ue.choose_v6)
    assert ue.ipv6_prefix_delegation_bits is None and ue.ipv6_prefix_length is None
    assert [q.value for q in pdi.qfi] == [9]
    assert pdi.sdf_filter == () and pdi.extra == ()
    assert pdr.outer_header_removal == OuterHeaderRemoval(OuterHeaderRemovalDescription.GTPU_UDP_IPV4)
    assert pdr.outer_header_removal.pdu_session_container is None
    assert pdr.far_id == FARID(1)
    assert pdr.urr_id == (URRID(1),)
    assert pdr.qer_id == (QERID(1),)


def test_downlink_pdr(ser: SessionEstablishmentRequest) -> None:
    pdr = ser.create_pdr[1]
    assert pdr.pdr_id.value == 2
    assert pdr.precedence.value == 255
    pdi = pdr.pdi
    assert pdi.source_interface.value is SourceInterfaceValue.CORE
    assert pdi.local_f_teid is None
    assert pdi.network_instance == NetworkInstance("internet")
    (ue,) = pdi.ue_ip_address
    assert ue.ipv4 == IPv4Address("10.45.0.2") and ue.ipv6 is None
    assert ue.is_destination is True  # S/D = 1
    assert pdi.qfi == ()
    assert pdr.outer_header_removal is None
    assert pdr.far_id == FARID(2)
    assert pdr.urr_id == (URRID(1),)
    assert pdr.qer_id == (QERID(1),)


def test_fars(ser: SessionEstablishmentRequest) -> None:
    uplink, downlink = ser.create_far
    for far, far_id in ((uplink, 1), (downlink, 2)):
        assert far.far_id.value == far_id
        assert far.apply_action.value == ApplyActionFlags.FORW
        assert far.apply_action.octets == 2
        assert far.duplicating_parameters == () and far.bar_id is None
    assert uplink.forwarding_parameters is not None
    assert uplink.forwarding_parameters.destination_interface.value is DestinationInterfaceValue.CORE
    assert uplink.forwarding_parameters.network_instance == NetworkInstance("internet")
    assert uplink.forwarding_parameters.outer_header_creation is None
    assert downlink.forwarding_parameters is not None
    assert downlink.forwarding_parameters.destination_interface.value is DestinationInterfaceValue.ACCESS
    assert downlink.forwarding_parameters.network_instance is None
    ohc = downlink.forwarding_parameters.outer_header_creation
    assert ohc is not None
    assert ohc.description == OuterHeaderCreationDescription.GTPU_UDP_IPV4
    assert ohc.teid == 0x55667788
    assert ohc.ipv4 == IPv4Address("10.0.0.1")
    assert (ohc.ipv6, ohc.port, ohc.c_tag, ohc.s_tag) == (None, None, None, None)


def test_qer(ser: SessionEstablishmentRequest) -> None:
    (qer,) = ser.create_qer
    assert qer.qer_id.value == 1
    assert qer.gate_status.ul is Gate.OPEN and qer.gate_status.dl is Gate.OPEN
    assert qer.mbr == MBR(ul=100_000, dl=200_000)
    assert qer.gbr is None
    assert qer.qfi == QFI(9)


def test_urr(ser: SessionEstablishmentRequest) -> None:
    (urr,) = ser.create_urr
    assert urr.urr_id.value == 1
    assert urr.measurement_method.value == MeasurementMethodFlags.VOLUM | MeasurementMethodFlags.DURAT
    assert urr.reporting_triggers.value == ReportingTriggersFlags.VOLTH | ReportingTriggersFlags.TIMTH
    assert urr.reporting_triggers.octets == 3
    assert urr.volume_threshold == VolumeThreshold(total=1_000_000_000)
    assert urr.volume_threshold.uplink is None and urr.volume_threshold.downlink is None
    assert urr.time_threshold is None


def test_pdn_type_and_nothing_else(ser: SessionEstablishmentRequest) -> None:
    assert ser.pdn_type == PDNType(PDNTypeValue.IPV4)
    assert int(ser.pdn_type.value) == 1
    assert [type(ie).__name__ for ie in ser.ies()] == [
        "NodeID", "FSEID", "CreatePDR", "CreatePDR", "CreateFAR", "CreateFAR", "CreateURR", "CreateQER", "PDNType",
    ]  # fmt: skip


def test_reencodes_byte_for_byte(golden: bytes, ser: SessionEstablishmentRequest) -> None:
    assert pfcp.encode(ser) == golden
    assert pfcp.decode_all(golden) == [ser]


def build_from_readme() -> SessionEstablishmentRequest:
    """The README's values, with typed constructors, IEs in the README's order."""
    internet = NetworkInstance("internet")
    ue = IPv4Address("10.45.0.2")
    return SessionEstablishmentRequest(
        sequence=1,
        seid=0,
        node_id=NodeID(IPv4Address("127.0.0.10")),
        cp_f_seid=FSEID(0x1122334455667788, IPv4Address("127.0.0.10")),
        create_pdr=(
            CreatePDR(
                pdr_id=PDRID(1),
                precedence=Precedence(255),
                pdi=PDI(
                    source_interface=SourceInterface(SourceInterfaceValue.ACCESS),
                    local_f_teid=FTEID(0x11223344, IPv4Address("10.0.0.2")),
                    network_instance=internet,
                    ue_ip_address=(UEIPAddress(ipv4=ue),),
                    qfi=(QFI(9),),
                ),
                outer_header_removal=OuterHeaderRemoval(OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
                far_id=FARID(1),
                urr_id=(URRID(1),),
                qer_id=(QERID(1),),
            ),
            CreatePDR(
                pdr_id=PDRID(2),
                precedence=Precedence(255),
                pdi=PDI(
                    source_interface=SourceInterface(SourceInterfaceValue.CORE),
                    network_instance=internet,
                    ue_ip_address=(UEIPAddress(ipv4=ue, is_destination=True),),
                ),
                far_id=FARID(2),
                urr_id=(URRID(1),),
                qer_id=(QERID(1),),
            ),
        ),
        create_far=(
            CreateFAR(
                far_id=FARID(1),
                apply_action=ApplyAction(ApplyActionFlags.FORW),
                forwarding_parameters=ForwardingParameters(
                    destination_interface=DestinationInterface(DestinationInterfaceValue.CORE),
                    network_instance=internet,
                ),
            ),
            CreateFAR(
                far_id=FARID(2),
                apply_action=ApplyAction(ApplyActionFlags.FORW),
                forwarding_parameters=ForwardingParameters(
                    destination_interface=DestinationInterface(DestinationInterfaceValue.ACCESS),
                    outer_header_creation=OuterHeaderCreation(
                        OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=0x55667788, ipv4=IPv4Address("10.0.0.1")
                    ),
                ),
            ),
        ),
        create_qer=(
            CreateQER(
                qer_id=QERID(1),
                gate_status=GateStatus(Gate.OPEN, Gate.OPEN),
                mbr=MBR(100_000, 200_000),
                qfi=QFI(9),
            ),
        ),
        create_urr=(
            CreateURR(
                urr_id=URRID(1),
                measurement_method=MeasurementMethod(MeasurementMethodFlags.VOLUM | MeasurementMethodFlags.DURAT),
                reporting_triggers=ReportingTriggers(ReportingTriggersFlags.VOLTH | ReportingTriggersFlags.TIMTH),
                volume_threshold=VolumeThreshold(total=1_000_000_000),
            ),
        ),
        pdn_type=PDNType(PDNTypeValue.IPV4),
    )


def test_built_from_scratch_equals_the_decoded_vector(ser: SessionEstablishmentRequest) -> None:
    assert build_from_readme() == ser


def test_built_from_scratch_in_the_readme_order_gives_the_370_octets(golden: bytes) -> None:
    # Declaration order puts Create URR before Create QER (Table 7.5.2.1-1); the
    # vector's encoder wrote QER first. wire_order makes the encoder follow it.
    msg = dataclasses.replace(build_from_readme(), wire_order=README_ORDER)
    assert pfcp.encode(msg) == golden
    assert len(golden) == 370


def test_built_from_scratch_in_declaration_order_only_swaps_qer_and_urr(golden: bytes) -> None:
    declared = pfcp.encode(build_from_readme())
    assert len(declared) == len(golden)
    assert declared != golden
    ser = pfcp.decode(golden)
    assert isinstance(ser, SessionEstablishmentRequest)
    qer = ser.create_qer[0].encode()
    urr = ser.create_urr[0].encode()
    assert golden.count(qer + urr) == 1
    assert declared == golden.replace(qer + urr, urr + qer)
    assert pfcp.decode(declared) == ser
