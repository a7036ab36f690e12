"""Our requests (TS 29.244 §6.4): retransmission every T1, N1 times, then a
timeout; responses matched by (peer, sequence number); 24-bit sequence numbers."""

from __future__ import annotations

import pytest

import pfcp
from pfcp import MessageType
from pfcp.events import RequestReceived, RequestTimedOut, ResponseReceived
from pfcp.ie import NodeReportType, NodeReportTypeFlags
from pfcp.transaction import SEQUENCE_MODULO, RetransmitPolicy
from tests.fakes.pfcp_pair import (
    CP_ADDR,
    CP_NODE_ID,
    UP_NODE_ID,
    PfcpPair,
    cp_config,
    drop_where,
    duplicate_where,
    is_type,
    reverse,
    up_config,
)

NOBODY = ("127.0.0.9", 8805)
NRQ = MessageType.NODE_REPORT_REQUEST
NRS = MessageType.NODE_REPORT_RESPONSE


def node_report() -> pfcp.NodeReportRequest:
    """A node-related request the UP sends the CP (reaches the CP app without association)."""
    return pfcp.NodeReportRequest(node_id=UP_NODE_ID, node_report_type=NodeReportType(NodeReportTypeFlags.UPFR))


def node_report_answer(sequence: int) -> pfcp.NodeReportResponse:
    return pfcp.NodeReportResponse(
        sequence=sequence, node_id=CP_NODE_ID, cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED)
    )


def sequence_of(data: bytes) -> int:
    """The header's sequence number, read from the octets (S flag aware)."""
    at = 12 if data[0] & 0x01 else 4
    return int.from_bytes(data[at : at + 3], "big")


@pytest.mark.parametrize(("t1", "n1", "t0"), [(3.0, 3, 100.0), (0.5, 0, 7.0), (2.0, 5, 0.0), (0.25, 1, 1.5)])
def test_resent_every_t1_n1_times_then_timed_out(t1: float, n1: int, t0: float) -> None:
    policy = RetransmitPolicy(t1=t1, n1=n1)
    pair = PfcpPair(up=up_config(retransmit=policy), now=t0)
    sequence = pair.request("up", node_report(), to=NOBODY)
    pair.run_until_idle()

    sends = [d for d in pair.sent if d.dst == NOBODY]
    assert [d.time for d in sends] == [t0 + k * t1 for k in range(n1 + 1)]
    assert len({d.data for d in sends}) == 1  # the resent bytes are the first bytes
    first = sends[0].decode()
    assert isinstance(first, pfcp.NodeReportRequest) and first.sequence == sequence
    assert [(t, type(e)) for t, _, e in pair.timeline] == [(t0 + (n1 + 1) * t1, RequestTimedOut)]
    timed_out = pair.events["up"][0]
    assert isinstance(timed_out, RequestTimedOut)
    assert timed_out.peer == NOBODY and timed_out.request.sequence == sequence
    assert pair.up.get_timer() is None


def test_nothing_happens_before_the_deadline() -> None:
    pair = PfcpPair(now=10.0)
    pair.up.send_request(node_report(), NOBODY, pair.now)
    pair.collect()
    assert pair.up.get_timer() == 13.0
    pair.up.handle_timer(12.999)  # early: nothing due
    assert pair.up.datagrams_to_send() == []
    pair.up.handle_timer(13.0)
    assert len(pair.up.datagrams_to_send()) == 1


def test_a_response_stops_retransmission() -> None:
    pair = PfcpPair()
    sequence = pair.request("up", node_report())
    pair.flush()
    (received,) = pair.events_of("cp", RequestReceived)
    assert received.peer == pair.up_addr and received.message.sequence == sequence
    pair.respond("cp", received, node_report_answer(0))
    pair.flush()

    (answered,) = pair.events_of("up", ResponseReceived)
    assert answered.peer == CP_ADDR and answered.request.sequence == sequence
    assert isinstance(answered.response, pfcp.NodeReportResponse) and answered.response.sequence == sequence
    assert pair.up.get_timer() is None
    pair.run_until(60.0)
    assert len(pair.sent_by("up", NRQ)) == 1
    assert pair.events_of("up", RequestTimedOut) == []


def test_the_answer_to_a_retransmission_also_ends_the_transaction() -> None:
    pair = PfcpPair()
    pair.filter = drop_where(is_type(NRQ))  # the first send is lost
    sequence = pair.request("up", node_report())
    pair.flush()
    pair.filter = None
    assert pair.advance() == 3.0  # the resend gets through
    (received,) = pair.events_of("cp", RequestReceived)
    pair.respond("cp", received, node_report_answer(sequence))
    pair.flush()
    assert len(pair.events_of("up", ResponseReceived)) == 1
    assert [d.time for d in pair.sent_by("up", NRQ)] == [0.0, 3.0]
    assert pair.up.get_timer() is None


def test_a_late_duplicate_response_is_dropped_and_counted() -> None:
    pair = PfcpPair()
    pair.request("up", node_report())
    pair.flush()
    (received,) = pair.events_of("cp", RequestReceived)
    pair.respond("cp", received, node_report_answer(0))
    pair.flush(duplicate_where(is_type(NRS)))

    assert len(pair.events_of("up", ResponseReceived)) == 1
    assert pair.up.drops[(CP_ADDR, "response to no pending request")] == 1


def test_a_response_from_another_address_does_not_match() -> None:
    pair = PfcpPair()
    sequence = pair.request("up", node_report())
    pair.in_flight.clear()  # lost on the way: only the forgery below arrives
    forged = pfcp.encode(node_report_answer(sequence))
    pair.inject("up", forged, NOBODY)

    assert pair.events["up"] == []
    assert pair.up.drops[(NOBODY, "response to no pending request")] == 1
    assert pair.up.get_timer() == 3.0  # still pending: retransmitted at T1
    pair.advance()
    assert [d.time for d in pair.sent_by("up", NRQ)] == [0.0, 3.0]
    (received,) = pair.events_of("cp", RequestReceived)
    pair.respond("cp", received, node_report_answer(sequence))
    pair.flush()
    (answered,) = pair.events_of("up", ResponseReceived)
    assert answered.peer == CP_ADDR and answered.response.sequence == sequence


def test_a_response_with_another_sequence_does_not_match() -> None:
    pair = PfcpPair()
    sequence = pair.request("up", node_report())
    pair.in_flight.clear()
    pair.inject("up", pfcp.encode(node_report_answer((sequence + 1) % SEQUENCE_MODULO)), CP_ADDR)
    assert pair.events["up"] == []
    assert pair.up.drops[(CP_ADDR, "response to no pending request")] == 1
    assert pair.up.get_timer() == 3.0


def test_responses_match_each_of_several_pending_requests() -> None:
    pair = PfcpPair()
    sequences = [pair.request("up", node_report()) for _ in range(3)]
    assert len(set(sequences)) == 3
    pair.in_flight.clear()
    for sequence in reversed(sequences):  # answered out of order
        pair.inject("up", pfcp.encode(node_report_answer(sequence)), CP_ADDR)
    assert [e.request.sequence for e in pair.events_of("up", ResponseReceived)] == sequences[::-1]
    assert pair.up.get_timer() is None


# ---------------------------------------------------------------------------
# Sequence numbers (§7.2.2.1: 24 bits)


def test_sequence_numbers_count_up_and_go_on_the_wire() -> None:
    pair = PfcpPair()
    sequences = [pair.request("up", node_report()) for _ in range(3)]
    assert sequences == [1, 2, 3]
    assert [sequence_of(d.data) for d in pair.sent_by("up")] == [1, 2, 3]


def test_the_sequence_passed_in_is_replaced() -> None:
    pair = PfcpPair()
    msg = pfcp.NodeReportRequest(
        sequence=4242, node_id=UP_NODE_ID, node_report_type=NodeReportType(NodeReportTypeFlags.UPFR)
    )
    assert pair.request("up", msg) == 1
    assert sequence_of(pair.sent[-1].data) == 1


def test_sequence_numbers_wrap_from_0xffffff_to_0() -> None:
    # Sending 16,777,214 requests to get near the top would take minutes; the
    # counter is the endpoint's private ``_sequence`` (the last number handed
    # out), so the test starts it just below the top instead.
    pair = PfcpPair()
    pair.up._sequence = 0xFFFFFD
    got = [pair.request("up", node_report()) for _ in range(4)]
    assert got == [0xFFFFFE, 0xFFFFFF, 0, 1]
    assert [sequence_of(d.data) for d in pair.sent_by("up")] == got
    assert [d.decode().sequence for d in pair.sent_by("up")] == got


def test_sequence_numbers_pending_for_that_peer_are_skipped() -> None:
    # As above, ``_sequence`` is set to come back round to numbers still in flight.
    pair = PfcpPair()
    pending = [pair.request("up", node_report()) for _ in range(3)]  # 1, 2, 3 pending towards the CP
    assert pending == [1, 2, 3]
    pair.up._sequence = 0
    assert pair.request("up", node_report()) == 4  # 1..3 are still in flight to the CP
    pair.up._sequence = 0
    assert pair.request("up", node_report(), to=NOBODY) == 1  # not pending for another peer


def test_the_wrap_skips_pending_numbers_too() -> None:
    pair = PfcpPair()
    pair.up._sequence = 0xFFFFFF - 1
    top = pair.request("up", node_report())
    zero = pair.request("up", node_report())
    assert (top, zero) == (0xFFFFFF, 0)
    pair.up._sequence = 0xFFFFFF - 1
    assert pair.request("up", node_report()) == 1  # 0xFFFFFF and 0 are pending: wraps past both


def test_a_sequence_number_is_reused_once_answered() -> None:
    pair = PfcpPair()
    first = pair.request("up", node_report())
    pair.flush()
    (received,) = pair.events_of("cp", RequestReceived)
    pair.respond("cp", received, node_report_answer(first))
    pair.flush()
    pair.up._sequence = first - 1  # come back round to it, as after a wrap
    assert pair.request("up", node_report()) == first


def test_heartbeat_requests_of_the_application_get_their_response() -> None:
    # An application (e.g. PfcpNode.request) may send its own Heartbeat Request:
    # it must see the response, or a timeout, like for any other request.
    pair = PfcpPair(cp=cp_config())
    sequence = pair.request("cp", pfcp.HeartbeatRequest(recovery_time_stamp=pair.cp_cfg.recovery_time_stamp))
    pair.flush()
    (answered,) = pair.events_of("cp", ResponseReceived)
    assert answered.request.sequence == sequence
    assert isinstance(answered.response, pfcp.HeartbeatResponse)
    assert answered.response.recovery_time_stamp == pair.up_cfg.recovery_time_stamp
    assert pair.cp.get_timer() is None


def test_heartbeat_requests_of_the_application_time_out() -> None:
    pair = PfcpPair()
    heartbeat = pfcp.HeartbeatRequest(recovery_time_stamp=pair.cp_cfg.recovery_time_stamp)
    sequence = pair.request("cp", heartbeat, to=NOBODY)
    pair.run_until_idle()
    (timed_out,) = pair.events_of("cp", RequestTimedOut)
    assert timed_out.peer == NOBODY and timed_out.request.sequence == sequence
    assert [t for t, _, _ in pair.timeline] == [12.0]
    assert [d.time for d in pair.sent_by("cp")] == [0.0, 3.0, 6.0, 9.0]


def test_reordered_requests_and_responses_still_match() -> None:
    pair = PfcpPair()
    sequences = [pair.request("up", node_report()) for _ in range(3)]
    pair.flush(reverse)
    received = pair.events_of("cp", RequestReceived)
    assert [e.message.sequence for e in received] == sequences[::-1]
    for event in received:
        pair.respond("cp", event, node_report_answer(0))
    pair.flush(reverse)
    answered = pair.events_of("up", ResponseReceived)
    assert [e.request.sequence for e in answered] == sequences  # reversed twice
    assert all(e.response.sequence == e.request.sequence for e in answered)
    assert pair.up.get_timer() is None
