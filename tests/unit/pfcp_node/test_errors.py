"""Bad input (TS 29.244 §7.6): version not supported, unknown types, malformed
requests answered with the decoder's cause, garbage dropped; drops counted and
logged once per (peer, reason); nothing ever raises out of receive_datagram."""

from __future__ import annotations

import logging
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pfcp
from pfcp import CauseValue, MessageType
from pfcp.events import Address, AssociationSetupFailed, RequestReceived
from pfcp.ie import ReportType, ReportTypeFlags
from tests.data.pfcp.make_vectors import stored_vectors
from tests.fakes.pfcp_pair import CP_ADDR, CP_STAMP, UP_ADDR, UP_NODE_ID, UP_STAMP, PfcpPair
from tests.unit.pfcp.wire import body_start, find, node_message, remove, session_message, tlv, tlv_tree, walk

VECTORS = stored_vectors()
REQUESTS = {name: data for name, data in VECTORS.items() if pfcp.decode(data).REQUEST}
RESPONSES = {name: data for name, data in VECTORS.items() if not pfcp.decode(data).REQUEST}
STAMP_IE = tlv(96, UP_STAMP.value.to_bytes(4, "big"))


def version(data: bytes, number: int) -> bytes:
    return bytes([(data[0] & 0x1F) | (number << 5)]) + data[1:]


def with_sequence(data: bytes, sequence: int) -> bytes:
    at = 12 if data[0] & 0x01 else 4
    return data[:at] + sequence.to_bytes(3, "big") + data[at + 3 :]


def test_another_version_gets_version_not_supported_with_the_same_sequence() -> None:
    pair = PfcpPair()
    heartbeat = pfcp.encode(pfcp.HeartbeatRequest(sequence=0x123456, recovery_time_stamp=CP_STAMP))
    (reply,) = pair.inject("up", version(heartbeat, 2), CP_ADDR)
    response = reply.decode()
    assert isinstance(response, pfcp.VersionNotSupportedResponse)
    assert response.sequence == 0x123456 and reply.dst == CP_ADDR
    assert reply.data[0] >> 5 == 1  # we answer in our own version
    assert pair.events["up"] == []
    assert pair.up.drops[(CP_ADDR, "version not supported")] == 1


def test_a_session_message_of_another_version_too() -> None:
    pair = PfcpPair()
    data = session_message(MessageType.SESSION_DELETION_REQUEST, b"", seid=0xAB, sequence=77)
    (reply,) = pair.inject("up", version(data, 3), CP_ADDR)
    response = reply.decode()
    assert isinstance(response, pfcp.VersionNotSupportedResponse) and response.sequence == 77


def test_a_short_datagram_of_another_version_is_dropped() -> None:
    pair = PfcpPair()
    assert pair.inject("up", bytes([0x40, 1, 0, 4, 0, 0]), CP_ADDR) == []
    assert sum(pair.up.drops.values()) == 1


def test_an_unknown_message_type_is_dropped_and_counted() -> None:
    pair = PfcpPair()
    assert pair.inject("up", node_message(99, STAMP_IE, sequence=5), CP_ADDR) == []
    assert pair.inject("up", session_message(99, b"", seid=1, sequence=6), CP_ADDR) == []
    assert pair.events["up"] == []
    assert pair.up.drops[(CP_ADDR, "unknown message type 99")] == 2


def test_a_malformed_association_setup_request_gets_cause_66() -> None:
    pair = PfcpPair()
    no_node_id = node_message(MessageType.ASSOCIATION_SETUP_REQUEST, STAMP_IE, sequence=0x1234)
    (reply,) = pair.inject("cp", no_node_id, UP_ADDR)
    response = reply.decode()
    assert isinstance(response, pfcp.AssociationSetupResponse)
    assert response.sequence == 0x1234
    assert int(response.cause.value) == 66  # Mandatory IE missing
    assert response.node_id == pair.cp_cfg.node_id and response.recovery_time_stamp == CP_STAMP
    assert pair.events["cp"] == [] and pair.cp.association(UP_ADDR) is None
    assert pair.cp.drops[(UP_ADDR, "malformed ASSOCIATION_SETUP_REQUEST: MANDATORY_IE_MISSING")] == 1

    (again,) = pair.inject("cp", no_node_id, UP_ADDR)  # retransmitted: the same answer
    assert again.data == reply.data


def test_a_malformed_session_modification_request_gets_cause_and_offending_ie() -> None:
    pair = PfcpPair()
    pair.associate("cp")
    valid = VECTORS["session-modification-request"]
    broken = remove(valid, *find(valid, 1, 56))  # Create PDR without its PDR ID
    with pytest.raises(pfcp.DecodeError) as caught:
        pfcp.decode(broken)
    assert (caught.value.cause, caught.value.offending_ie) == (CauseValue.MANDATORY_IE_MISSING, 56)

    (reply,) = pair.inject("up", broken, CP_ADDR)
    response = reply.decode()
    assert isinstance(response, pfcp.SessionModificationResponse)
    assert response.sequence == pfcp.decode(valid).sequence
    assert response.cause.value == CauseValue.MANDATORY_IE_MISSING
    assert response.offending_ie is not None and response.offending_ie.value == 56
    assert response.seid == 0  # the peer's SEID is unknown to this layer
    assert pair.events_of("up", RequestReceived) == []


def test_a_malformed_heartbeat_is_dropped() -> None:
    pair = PfcpPair()
    assert pair.inject("up", node_message(MessageType.HEARTBEAT_REQUEST, b"", sequence=3), CP_ADDR) == []
    assert sum(pair.up.drops.values()) == 1


@pytest.mark.parametrize("garbage", [b"\x21\x01\x00", b"", b"\x00", b"\xff" * 7])
def test_garbage_is_dropped_and_counted(garbage: bytes) -> None:
    pair = PfcpPair()
    assert pair.inject("up", garbage, CP_ADDR) == []
    assert pair.events["up"] == []
    assert sum(pair.up.drops.values()) == 1


def test_three_octets_are_counted_as_undecodable() -> None:
    pair = PfcpPair()
    pair.inject("up", b"\x20\x01\x00", CP_ADDR)
    assert pair.up.drops == {(CP_ADDR, "undecodable datagram: INVALID_LENGTH"): 1}


def test_a_malformed_response_is_dropped_and_the_request_retransmitted() -> None:
    pair = PfcpPair()
    sequence = pair.cp.associate(UP_ADDR, pair.now)
    pair.collect()
    pair.in_flight.clear()
    bad = node_message(MessageType.ASSOCIATION_SETUP_RESPONSE, b"", sequence=sequence)
    assert pair.inject("cp", bad, UP_ADDR) == []
    assert pair.events["cp"] == [] and sum(pair.cp.drops.values()) == 1
    assert pair.cp.get_timer() == 3.0


def test_a_response_without_request_is_dropped() -> None:
    pair = PfcpPair()
    assert pair.inject("up", RESPONSES["heartbeat-response"], CP_ADDR) == []
    assert pair.up.drops[(CP_ADDR, "response to no pending request")] == 1


# ---------------------------------------------------------------------------
# Drops are logged once per (peer, reason)


def test_a_drop_reason_is_logged_once_per_peer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pfcp.endpoint")
    pair = PfcpPair()
    other: Address = ("127.0.0.3", 8805)
    unknown = node_message(99, b"", sequence=1)
    for _ in range(5):
        pair.inject("up", unknown, CP_ADDR)
    pair.inject("up", b"\x00\x01\x02", CP_ADDR)  # another reason, same peer
    pair.inject("up", unknown, other)  # the same reason, another peer
    pair.inject("up", unknown, other)

    assert pair.up.drops[(CP_ADDR, "unknown message type 99")] == 5
    assert pair.up.drops[(other, "unknown message type 99")] == 2
    records = [r for r in caplog.records if r.name == "pfcp.endpoint"]
    assert len(records) == 3
    messages = [r.getMessage() for r in records]
    assert sum("unknown message type 99" in text and "127.0.0.1" in text for text in messages) == 1
    assert sum("unknown message type 99" in text and "127.0.0.3" in text for text in messages) == 1
    assert sum("undecodable" in text for text in messages) == 1
    assert all(r.levelno == logging.WARNING for r in records)


# ---------------------------------------------------------------------------
# Nothing raises, whatever arrives


def _scenario(kind: int) -> tuple[PfcpPair, list[tuple[int, int]]]:
    """0: strangers; 1: associated; 2: associated, the CP waiting for answers
    of several kinds; 3: the CP waiting for its Association Setup Response.
    Returns the pair and the CP's pending (sequence number, request type)."""
    pair = PfcpPair()
    pending: list[tuple[int, int]] = []
    if kind in (1, 2):
        pair.associate("cp")
    if kind == 2:
        for msg in (
            pfcp.HeartbeatRequest(recovery_time_stamp=CP_STAMP),
            pfcp.decode(REQUESTS["session-establishment-request"]),
            pfcp.decode(REQUESTS["session-deletion-request"]),
        ):
            pending.append((pair.request("cp", msg), msg.message_type))
        pending.append((pair.cp.update(UP_ADDR, pair.now), MessageType.ASSOCIATION_UPDATE_REQUEST))
        pending.append((pair.cp.release(UP_ADDR, pair.now), MessageType.ASSOCIATION_RELEASE_REQUEST))
    if kind == 3:
        pending.append((pair.cp.associate(UP_ADDR, pair.now), MessageType.ASSOCIATION_SETUP_REQUEST))
    pair.collect()
    pair.in_flight.clear()
    return pair, pending


@st.composite
def hostile_datagrams(draw: st.DrawFn, pending: list[tuple[int, int]]) -> bytes:
    """Random octets, mutated stored vectors, or mutated answers to what the CP waits for."""
    how = draw(st.sampled_from(["random", "mutated", "answer", "answer"]))
    if how == "random":
        return draw(st.binary(max_size=96))
    if how == "answer" and pending:
        sequence, request_type = draw(st.sampled_from(pending))
        matching = sorted(n for n, d in RESPONSES.items() if d[1] == request_type + 1)
        name = draw(st.sampled_from(matching or sorted(RESPONSES)))
        data = bytearray(with_sequence(RESPONSES[name], sequence))
    else:
        data = bytearray(VECTORS[draw(st.sampled_from(sorted(VECTORS)))])
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["ie", "ie", "set", "truncate", "insert", "flags"]))
        if op == "ie" and len(data) > 8:
            ies = [node for node, _ in walk(tlv_tree(bytes(data), body_start(bytes(data)), len(data)))]
            ies = [node for node in ies if node.end > node.start + 4 and node.end <= len(data)]
            if ies:
                node = draw(st.sampled_from(ies))
                data[draw(st.integers(node.start + 4, node.end - 1))] = draw(st.integers(0, 255))
        elif op == "set" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        elif op == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "flags" and data:
            data[0] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_input_ever_raises(data: st.DataObject) -> None:
    pair, pending = _scenario(data.draw(st.sampled_from([0, 1, 2, 2, 3, 3]), label="scenario"))
    for _ in range(data.draw(st.integers(1, 4), label="datagrams")):
        side = data.draw(st.sampled_from(["cp", "up"]))
        datagram = data.draw(hostile_datagrams(pending))
        if side == "cp":
            pair.cp.receive_datagram(datagram, UP_ADDR, pair.now)
        else:
            pair.up.receive_datagram(datagram, CP_ADDR, pair.now)
        for ep in (pair.cp, pair.up):
            while ep.next_event() is not None:
                pass
            for out, _ in ep.datagrams_to_send():
                pfcp.decode(out)  # every answer is a well-formed message
    for _ in range(3):  # and the timers still run
        if pair.next_timer() is None:
            break
        pair.advance(deliver=False)
        for d in pair.in_flight:
            pfcp.decode(d.data)
        pair.in_flight.clear()


def test_an_answer_with_an_unknown_cause_value_does_not_raise() -> None:
    # Found by the property above: Cause 200 in an Association Setup Response.
    pair, [(sequence, _)] = _scenario(3)
    answer = RESPONSES["association-setup-response"]
    at = answer.index(struct.pack(">HHB", 19, 1, 1))  # Cause IE, value 1
    bad = with_sequence(answer[: at + 4] + b"\xc8" + answer[at + 5 :], sequence)
    pair.cp.receive_datagram(bad, UP_ADDR, pair.now)
    assert pair.cp.next_event() is not None  # ResponseReceived
    assert pair.cp.next_event() == AssociationSetupFailed(UP_ADDR, 200)


def test_a_session_report_from_a_stranger_never_reaches_the_application() -> None:
    pair = PfcpPair()
    report = pfcp.encode(pfcp.SessionReportRequest(sequence=4, seid=9, report_type=ReportType(ReportTypeFlags.ERIR)))
    (reply,) = pair.inject("cp", report, ("127.0.0.66", 8805))
    response = reply.decode()
    assert isinstance(response, pfcp.SessionReportResponse)
    assert response.cause.value == CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION
    assert pair.events["cp"] == [] and UP_NODE_ID not in [a.node_id for a in pair.cp.associations()]
