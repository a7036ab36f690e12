"""PFCP association procedures between a CP and a UP endpoint (TS 29.244
§6.2.6-§6.2.8), both directions; cause 72 for session requests without an
association; a Session Report Request from UP to CP."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from typing import cast

import pfcp
from pfcp import CauseValue, MessageType
from pfcp.association import AssociationState
from pfcp.endpoint import PfcpEndpoint
from pfcp.events import (
    Address,
    AssociationEstablished,
    AssociationReleased,
    AssociationSetupFailed,
    AssociationUpdated,
    PeerInfo,
    RequestReceived,
    RequestTimedOut,
    ResponseReceived,
)
from pfcp.ie import (
    CPFeatures,
    CPFunctionFeatures,
    NodeID,
    PFCPAssociationReleaseRequestFlags,
    RecoveryTimeStamp,
    ReportType,
    ReportTypeFlags,
    UPFeatures,
    UPFunctionFeatures,
)
from tests.fakes.pfcp_pair import (
    CP_ADDR,
    CP_FEATURES,
    CP_NODE_ID,
    CP_STAMP,
    UP_ADDR,
    UP_FEATURES,
    UP_NODE_ID,
    UP_STAMP,
    Datagram,
    PfcpPair,
    duplicate_where,
    is_type,
    up_config,
)

UP_INFO = PeerInfo(UP_NODE_ID, UP_STAMP, UP_FEATURES, None)
CP_INFO = PeerInfo(CP_NODE_ID, CP_STAMP, None, CP_FEATURES)
NO_ASSOCIATION = "rejected (cause 72): session request without association"


def decoded(datagrams: list[Datagram]) -> list[pfcp.Message]:
    return [d.decode() for d in datagrams]


def associated_pair() -> PfcpPair:
    pair = PfcpPair()
    pair.associate("cp")
    pair.clear_events()
    return pair


# ---------------------------------------------------------------------------
# Setup


def test_cp_initiated_setup() -> None:
    pair = PfcpPair()
    pair.associate("cp")

    request, response = decoded(pair.sent)
    assert [(d.src, d.dst) for d in pair.sent] == [(CP_ADDR, UP_ADDR), (UP_ADDR, CP_ADDR)]
    assert isinstance(request, pfcp.AssociationSetupRequest)
    assert (request.node_id, request.recovery_time_stamp) == (CP_NODE_ID, CP_STAMP)
    assert (request.cp_function_features, request.up_function_features) == (CP_FEATURES, None)
    assert isinstance(response, pfcp.AssociationSetupResponse)
    assert response.sequence == request.sequence
    assert response.cause.value == CauseValue.REQUEST_ACCEPTED
    assert (response.node_id, response.recovery_time_stamp) == (UP_NODE_ID, UP_STAMP)
    assert response.up_function_features == UP_FEATURES

    answered, established = pair.events["cp"]
    assert isinstance(answered, ResponseReceived) and answered.response == response
    assert established == AssociationEstablished(UP_ADDR, UP_INFO, initiated_by_us=True, replaced=False)
    assert pair.events["up"] == [AssociationEstablished(CP_ADDR, CP_INFO, initiated_by_us=False, replaced=False)]

    cp_view, up_view = pair.cp.association(UP_ADDR), pair.up.association(CP_ADDR)
    assert cp_view is not None and up_view is not None
    assert (cp_view.state, cp_view.info, cp_view.node_id) == (AssociationState.ASSOCIATED, UP_INFO, UP_NODE_ID)
    assert (up_view.state, up_view.info, up_view.node_id) == (AssociationState.ASSOCIATED, CP_INFO, CP_NODE_ID)
    assert pair.cp.associations() == [cp_view] and pair.up.associations() == [up_view]


def test_up_initiated_setup() -> None:
    pair = PfcpPair()
    pair.associate("up")

    request, response = decoded(pair.sent)
    assert isinstance(request, pfcp.AssociationSetupRequest)
    assert (request.node_id, request.recovery_time_stamp, request.up_function_features) == (
        UP_NODE_ID,
        UP_STAMP,
        UP_FEATURES,
    )
    assert isinstance(response, pfcp.AssociationSetupResponse)
    assert (response.node_id, response.cause.value, response.cp_function_features) == (
        CP_NODE_ID,
        CauseValue.REQUEST_ACCEPTED,
        CP_FEATURES,
    )
    assert pair.events["cp"] == [AssociationEstablished(UP_ADDR, UP_INFO, initiated_by_us=False)]
    assert pair.events_of("up", AssociationEstablished) == [
        AssociationEstablished(CP_ADDR, CP_INFO, initiated_by_us=True)
    ]
    cp_view, up_view = pair.cp.association(UP_ADDR), pair.up.association(CP_ADDR)
    assert cp_view is not None and cp_view.info == UP_INFO and cp_view.associated
    assert up_view is not None and up_view.info == CP_INFO and up_view.associated


def test_state_while_the_setup_is_in_flight() -> None:
    pair = PfcpPair()
    pair.cp.associate(UP_ADDR, pair.now)
    assoc = pair.cp.association(UP_ADDR)
    assert assoc is not None and assoc.state is AssociationState.SETUP_SENT and assoc.info is None
    assert not assoc.associated
    pair.flush()
    assert pair.cp.association(UP_ADDR) is assoc
    assert assoc.associated and assoc.info == UP_INFO


def test_both_sides_setting_up_at_once_end_associated_once() -> None:
    pair = PfcpPair()
    pair.cp.associate(UP_ADDR, pair.now)
    pair.up.associate(CP_ADDR, pair.now)
    pair.flush()
    assert pair.events_of("cp", AssociationEstablished) == [AssociationEstablished(UP_ADDR, UP_INFO, False)]
    assert pair.events_of("up", AssociationEstablished) == [AssociationEstablished(CP_ADDR, CP_INFO, False)]
    for ep, peer in ((pair.cp, UP_ADDR), (pair.up, CP_ADDR)):
        assoc = ep.association(peer)
        assert assoc is not None and assoc.state is AssociationState.ASSOCIATED


def test_peer_information_is_kept_per_peer() -> None:
    pair = associated_pair()
    up2_addr: Address = ("127.0.0.3", 8805)
    up2_info = PeerInfo(
        NodeID("upf2.edge.example"), RecoveryTimeStamp(3_900_000_777), UPFunctionFeatures(UPFeatures.FTUP), None
    )
    up2 = PfcpEndpoint(
        up_config(
            node_id=up2_info.node_id,
            recovery_time_stamp=up2_info.recovery_time_stamp,
            up_function_features=up2_info.up_function_features,
        )
    )
    up2.associate(CP_ADDR, pair.now)
    for data, _ in up2.datagrams_to_send():
        for reply in pair.inject("cp", data, up2_addr):
            up2.receive_datagram(reply.data, CP_ADDR, pair.now)
    pair.in_flight.clear()

    first, second = pair.cp.association(UP_ADDR), pair.cp.association(up2_addr)
    assert first is not None and first.info == UP_INFO
    assert second is not None and second.info == up2_info
    assert pair.events["cp"] == [AssociationEstablished(up2_addr, up2_info, initiated_by_us=False)]
    up2_view = up2.association(CP_ADDR)
    assert up2_view is not None and up2_view.info == CP_INFO and up2_view.associated
    assert len(pair.cp.associations()) == 2


# ---------------------------------------------------------------------------
# Update


def test_up_updates_its_features_and_asks_for_release() -> None:
    pair = associated_pair()
    features = UPFunctionFeatures(UPFeatures.BUCP | UPFeatures.FTUP | UPFeatures.PDIU, octets=4)
    sequence = pair.up.update(CP_ADDR, pair.now, up_function_features=features, request_release=True)
    pair.flush()

    (request,) = decoded(pair.sent_by("up", MessageType.ASSOCIATION_UPDATE_REQUEST))
    assert isinstance(request, pfcp.AssociationUpdateRequest) and request.sequence == sequence
    assert request.node_id == UP_NODE_ID and request.up_function_features == features
    assert request.pfcp_association_release_request is not None
    assert request.pfcp_association_release_request.value == PFCPAssociationReleaseRequestFlags.SARR

    updated_info = PeerInfo(UP_NODE_ID, UP_STAMP, features, None)
    assert pair.events["cp"] == [AssociationUpdated(UP_ADDR, updated_info, release_requested=True)]
    assoc = pair.cp.association(UP_ADDR)
    assert assoc is not None and assoc.info == updated_info and assoc.state is AssociationState.ASSOCIATED
    (answered,) = pair.events["up"]
    assert isinstance(answered, ResponseReceived) and isinstance(answered.response, pfcp.AssociationUpdateResponse)
    assert answered.response.cause.value == CauseValue.REQUEST_ACCEPTED
    assert answered.response.node_id == CP_NODE_ID


def test_cp_updates_its_features_without_release() -> None:
    pair = associated_pair()
    features = CPFunctionFeatures(CPFeatures.LOAD | CPFeatures.BUNDL)
    pair.cp.update(UP_ADDR, pair.now, cp_function_features=features)
    pair.flush()
    (request,) = decoded(pair.sent_by("cp", MessageType.ASSOCIATION_UPDATE_REQUEST))
    assert isinstance(request, pfcp.AssociationUpdateRequest) and request.pfcp_association_release_request is None
    updated_info = PeerInfo(CP_NODE_ID, CP_STAMP, None, features)
    assert pair.events["up"] == [AssociationUpdated(CP_ADDR, updated_info, release_requested=False)]
    assoc = pair.up.association(CP_ADDR)
    assert assoc is not None and assoc.info == updated_info


def test_an_update_without_association_gets_cause_72() -> None:
    pair = PfcpPair()
    update = pfcp.AssociationUpdateRequest(sequence=5, node_id=UP_NODE_ID, up_function_features=UP_FEATURES)
    (reply,) = pair.inject("cp", pfcp.encode(update), UP_ADDR)
    response = reply.decode()
    assert isinstance(response, pfcp.AssociationUpdateResponse) and response.sequence == 5
    assert response.cause.value == CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION
    assert pair.events["cp"] == [] and pair.cp.association(UP_ADDR) is None


# ---------------------------------------------------------------------------
# Release


def test_release_by_the_cp() -> None:
    pair = associated_pair()
    pair.cp.release(UP_ADDR, pair.now)
    assoc = pair.cp.association(UP_ADDR)
    assert assoc is not None and assoc.state is AssociationState.RELEASING
    pair.flush()

    request, response = decoded(pair.sent[-2:])
    assert isinstance(request, pfcp.AssociationReleaseRequest) and request.node_id == CP_NODE_ID
    assert isinstance(response, pfcp.AssociationReleaseResponse)
    assert (response.sequence, response.cause.value) == (request.sequence, CauseValue.REQUEST_ACCEPTED)
    assert pair.events_of("cp", AssociationReleased) == [AssociationReleased(UP_ADDR, UP_NODE_ID, True)]
    assert pair.events["up"] == [AssociationReleased(CP_ADDR, CP_NODE_ID, initiated_by_us=False)]
    assert pair.cp.association(UP_ADDR) is None and pair.up.association(CP_ADDR) is None
    assert pair.cp.associations() == [] and pair.up.associations() == []


def test_release_by_the_up() -> None:
    pair = associated_pair()
    pair.up.release(CP_ADDR, pair.now)
    pair.flush()
    assert pair.events_of("up", AssociationReleased) == [AssociationReleased(CP_ADDR, CP_NODE_ID, True)]
    assert pair.events["cp"] == [AssociationReleased(UP_ADDR, UP_NODE_ID, initiated_by_us=False)]
    assert pair.cp.association(UP_ADDR) is None and pair.up.association(CP_ADDR) is None


def test_an_unanswered_release_still_ends_the_association() -> None:
    pair = associated_pair()
    pair.filter = lambda batch: []
    pair.cp.release(UP_ADDR, pair.now)
    pair.run_until_idle()
    assert [type(e) for e in pair.events["cp"]] == [RequestTimedOut, AssociationReleased]
    assert pair.timeline[-1][0] == 12.0
    assert pair.cp.association(UP_ADDR) is None


def test_sessions_are_refused_after_release() -> None:
    pair = associated_pair()
    pair.cp.release(UP_ADDR, pair.now)
    pair.flush()
    pair.request("cp", pfcp.SessionDeletionRequest(seid=0x42))
    pair.flush()
    answered = pair.events_of("cp", ResponseReceived)[-1]
    assert isinstance(answered.response, pfcp.SessionDeletionResponse)
    assert answered.response.cause.value == CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION
    assert pair.events_of("up", RequestReceived) == []


def test_a_release_request_without_association_gets_cause_72() -> None:
    pair = PfcpPair()
    release = pfcp.encode(pfcp.AssociationReleaseRequest(sequence=9, node_id=UP_NODE_ID))
    (reply,) = pair.inject("cp", release, UP_ADDR)
    response = reply.decode()
    assert isinstance(response, pfcp.AssociationReleaseResponse) and response.sequence == 9
    assert response.cause.value == CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION
    assert pair.events["cp"] == []


# ---------------------------------------------------------------------------
# Rejection and timeout


def test_a_setup_rejected_by_the_policy() -> None:
    asked: list[tuple[pfcp.AssociationSetupRequest, Address]] = []

    def refuse(msg: pfcp.AssociationSetupRequest, addr: Address) -> CauseValue:
        asked.append((msg, addr))
        return CauseValue.REQUEST_REJECTED

    pair = PfcpPair(up=up_config(accept_association=refuse))
    pair.associate("cp")

    assert [(msg.node_id, addr) for msg, addr in asked] == [(CP_NODE_ID, CP_ADDR)]
    (response,) = decoded(pair.sent_by("up"))
    assert isinstance(response, pfcp.AssociationSetupResponse)
    assert response.cause.value == CauseValue.REQUEST_REJECTED and response.node_id == UP_NODE_ID
    assert pair.events_of("cp", AssociationSetupFailed) == [AssociationSetupFailed(UP_ADDR, 64)]
    assert pair.events_of("cp", AssociationEstablished) == []
    assert pair.events["up"] == []
    assert pair.cp.association(UP_ADDR) is None and pair.up.association(CP_ADDR) is None
    assert pair.cp.get_timer() is None  # nothing left to retransmit

    # Sessions stay refused on the UP.
    pair.request("cp", pfcp.SessionDeletionRequest(seid=1))
    pair.flush()
    answered = pair.events_of("cp", ResponseReceived)[-1]
    assert isinstance(answered.response, pfcp.SessionDeletionResponse)
    assert answered.response.cause.value == CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION


def test_a_policy_may_accept() -> None:
    def accept_known(msg: pfcp.AssociationSetupRequest, addr: Address) -> CauseValue:
        ok = msg.node_id == CP_NODE_ID
        return CauseValue.REQUEST_ACCEPTED if ok else CauseValue.REQUEST_REJECTED

    pair = PfcpPair(up=up_config(accept_association=accept_known))
    pair.associate("cp")
    assert len(pair.events_of("cp", AssociationEstablished)) == 1
    assert len(pair.events_of("up", AssociationEstablished)) == 1


def test_a_setup_that_is_never_answered_times_out() -> None:
    pair = PfcpPair()
    pair.filter = lambda batch: []  # the UP is unreachable
    pair.associate("cp")
    pair.run_until_idle()
    assert [d.time for d in pair.sent_by("cp", MessageType.ASSOCIATION_SETUP_REQUEST)] == [0.0, 3.0, 6.0, 9.0]
    assert [(t, type(e)) for t, _, e in pair.timeline] == [
        (12.0, RequestTimedOut),
        (12.0, AssociationSetupFailed),
    ]
    assert pair.events_of("cp", AssociationSetupFailed) == [AssociationSetupFailed(UP_ADDR, None)]
    assert pair.cp.association(UP_ADDR) is None
    assert pair.delivered == [] and pair.events["up"] == []


def test_a_setup_response_with_an_unknown_cause_is_a_rejection() -> None:
    # Cause values the codec does not know decode as plain ints (here 200, in
    # the rejection range 64..255): the endpoint must not trip over them.
    pair = PfcpPair()
    sequence = pair.cp.associate(UP_ADDR, pair.now)
    pair.collect()
    pair.in_flight.clear()
    answer = pfcp.AssociationSetupResponse(
        sequence=sequence, node_id=UP_NODE_ID, cause=pfcp.Cause(cast(CauseValue, 200)), recovery_time_stamp=UP_STAMP
    )
    pair.inject("cp", pfcp.encode(answer), UP_ADDR)
    assert pair.events_of("cp", AssociationSetupFailed) == [AssociationSetupFailed(UP_ADDR, 200)]
    assert pair.cp.association(UP_ADDR) is None


# ---------------------------------------------------------------------------
# Cause 72 (§6.2.6.1: session requests need an association)


def test_session_establishment_without_association_gets_cause_72(ser_bytes: bytes) -> None:
    pair = PfcpPair()
    header_sequence = int.from_bytes(ser_bytes[12:15], "big")
    (reply,) = pair.inject("up", ser_bytes, CP_ADDR)
    response = reply.decode()
    assert reply.dst == CP_ADDR
    assert isinstance(response, pfcp.SessionEstablishmentResponse)
    assert (response.sequence, response.seid) == (header_sequence, 0)
    assert response.cause.value == CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION
    assert response.node_id == UP_NODE_ID
    assert pair.events["up"] == []  # never reaches the application
    assert pair.up.drops[(CP_ADDR, NO_ASSOCIATION)] == 1

    (again,) = pair.inject("up", ser_bytes, CP_ADDR)  # a retransmission: the same answer
    assert again.data == reply.data and pair.events["up"] == []


def test_session_establishment_reaches_the_application_once_associated(ser_bytes: bytes) -> None:
    pair = PfcpPair()
    ser = pfcp.decode(ser_bytes)
    assert isinstance(ser, pfcp.SessionEstablishmentRequest)

    pair.request("cp", ser)
    pair.flush()
    (refused,) = pair.events_of("cp", ResponseReceived)
    assert refused.response.message_type == MessageType.SESSION_ESTABLISHMENT_RESPONSE
    assert isinstance(refused.response, pfcp.SessionEstablishmentResponse)
    assert refused.response.cause.value == CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION
    assert pair.events["up"] == []

    pair.associate("cp")
    pair.pop_events("up")
    sequence = pair.request("cp", ser)
    pair.flush(duplicate_where(is_type(MessageType.SESSION_ESTABLISHMENT_REQUEST)))  # and a duplicate on the way
    (received,) = pair.events["up"]
    assert isinstance(received, RequestReceived)
    assert (received.peer, received.node_id) == (CP_ADDR, CP_NODE_ID)
    assert received.message.sequence == sequence
    assert received.message == replace(ser, sequence=sequence)
    assert pair.up.drops[(CP_ADDR, "duplicate request while still in progress")] == 1
    assert pair.up.drops[(CP_ADDR, NO_ASSOCIATION)] == 1  # only the first one, before the association


# ---------------------------------------------------------------------------
# Session Report Request, UP -> CP (§7.5.8)


def test_session_report_from_up_to_cp() -> None:
    pair = associated_pair()
    cp_seid, up_seid = 0x1122334455667788, 0x0000000000ABCDEF
    report = pfcp.SessionReportRequest(seid=cp_seid, report_type=ReportType(ReportTypeFlags.DLDR))
    sequence = pair.request("up", report)
    (wire,) = pair.in_flight
    assert wire.data[0] & 0x01 and int.from_bytes(wire.data[4:12], "big") == cp_seid
    pair.flush()

    (received,) = pair.events["cp"]
    assert isinstance(received, RequestReceived) and isinstance(received.message, pfcp.SessionReportRequest)
    assert (received.peer, received.node_id) == (UP_ADDR, UP_NODE_ID)
    assert (received.message.seid, received.message.sequence) == (cp_seid, sequence)
    assert received.message.report_type.value == ReportTypeFlags.DLDR

    accepted = pfcp.Cause(CauseValue.REQUEST_ACCEPTED)
    pair.respond("cp", received, pfcp.SessionReportResponse(seid=up_seid, cause=accepted))
    pair.flush()
    (answered,) = pair.events["up"]
    assert isinstance(answered, ResponseReceived) and isinstance(answered.response, pfcp.SessionReportResponse)
    assert (answered.response.seid, answered.response.sequence) == (up_seid, sequence)
    assert answered.response.cause.value == CauseValue.REQUEST_ACCEPTED
    assert answered.request == pfcp.SessionReportRequest(
        sequence=sequence, seid=cp_seid, report_type=ReportType(ReportTypeFlags.DLDR)
    )
    pair.run_until(60.0)
    assert len(pair.sent_by("up", MessageType.SESSION_REPORT_REQUEST)) == 1


def test_session_report_without_association_gets_cause_72() -> None:
    pair = PfcpPair()
    pair.request("up", pfcp.SessionReportRequest(seid=7, report_type=ReportType(ReportTypeFlags.USAR)))
    pair.flush()
    assert pair.events["cp"] == []
    (answered,) = pair.events["up"]
    assert isinstance(answered, ResponseReceived) and isinstance(answered.response, pfcp.SessionReportResponse)
    assert answered.response.cause.value == CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION
    assert answered.response.seid == 0


def test_a_node_id_of_another_kind_is_kept_as_sent() -> None:
    pair = PfcpPair(up=up_config(node_id=NodeID(IPv4Address("192.0.2.2"))))
    pair.associate("up")
    assoc = pair.cp.association(UP_ADDR)
    assert assoc is not None and assoc.node_id == NodeID(IPv4Address("192.0.2.2"))
