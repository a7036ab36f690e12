"""Requests we receive (TS 29.244 §6.4): the application sees each once; a
retransmission is answered from the cached response, or dropped while the
application has not answered; the cache holds entries T1 x (N1 + 1) and is
bounded."""

from __future__ import annotations

import gc

import pfcp
from pfcp import MessageType
from pfcp.events import Address, RequestReceived, ResponseReceived
from pfcp.ie import NodeReportType, NodeReportTypeFlags
from tests.fakes.pfcp_pair import CP_NODE_ID, UP_ADDR, UP_NODE_ID, PfcpPair, cp_config, drop_where, is_type

NRQ = MessageType.NODE_REPORT_REQUEST
NRS = MessageType.NODE_REPORT_RESPONSE
FROM_CACHE = "duplicate request answered from cache"
IN_PROGRESS = "duplicate request while still in progress"


def node_report(sequence: int = 1) -> bytes:
    msg = pfcp.NodeReportRequest(
        sequence=sequence, node_id=UP_NODE_ID, node_report_type=NodeReportType(NodeReportTypeFlags.UPFR)
    )
    return pfcp.encode(msg)


def report() -> pfcp.NodeReportRequest:
    return pfcp.NodeReportRequest(node_id=UP_NODE_ID, node_report_type=NodeReportType(NodeReportTypeFlags.UPFR))


def answer(cause: pfcp.CauseValue = pfcp.CauseValue.REQUEST_ACCEPTED) -> pfcp.NodeReportResponse:
    return pfcp.NodeReportResponse(node_id=CP_NODE_ID, cause=pfcp.Cause(cause))


def answer_all(pair: PfcpPair) -> list[bytes]:
    """The CP application answers every request it got; returns the response octets."""
    out: list[bytes] = []
    for event in pair.pop_events("cp"):
        assert isinstance(event, RequestReceived)
        pair.cp.send_response(event, answer(), pair.now)
        out.extend(data for data, _ in pair.cp.datagrams_to_send())
    return out


def test_a_retransmission_is_answered_from_the_cache() -> None:
    pair = PfcpPair()
    pair.request("up", report())
    lose_responses = drop_where(is_type(NRS))
    pair.flush(lose_responses)
    (received,) = pair.events_of("cp", RequestReceived)
    pair.respond("cp", received, answer(pfcp.CauseValue.REQUEST_PARTIALLY_ACCEPTED))
    pair.flush(lose_responses)  # the answer is lost: the UP retransmits at T1
    pair.advance()

    assert [d.time for d in pair.sent_by("up", NRQ)] == [0.0, 3.0]
    responses = pair.sent_by("cp", NRS)
    assert [d.time for d in responses] == [0.0, 3.0]
    assert responses[0].data == responses[1].data  # byte-identical, from the cache
    assert len(pair.events_of("cp", RequestReceived)) == 1  # the application saw it once
    assert pair.cp.drops[(UP_ADDR, FROM_CACHE)] == 1
    (answered,) = pair.events_of("up", ResponseReceived)
    assert isinstance(answered.response, pfcp.NodeReportResponse)
    assert answered.response.cause.value == pfcp.CauseValue.REQUEST_PARTIALLY_ACCEPTED


def test_every_retransmission_gets_the_same_octets() -> None:
    pair = PfcpPair()
    pair.inject("cp", node_report(7), UP_ADDR)
    (first,) = answer_all(pair)
    for k in range(1, 4):
        pair.now = float(k)
        (again,) = pair.inject("cp", node_report(7), UP_ADDR)
        assert again.data == first and again.dst == UP_ADDR
    assert pair.events["cp"] == []
    assert pair.cp.drops[(UP_ADDR, FROM_CACHE)] == 3
    decoded = pfcp.decode(first)
    assert isinstance(decoded, pfcp.NodeReportResponse) and decoded.sequence == 7


def test_a_duplicate_before_the_answer_is_dropped_then_answered_normally() -> None:
    pair = PfcpPair()
    sequence = pair.request("up", report())
    pair.flush()
    (received,) = pair.events_of("cp", RequestReceived)
    pair.advance()  # t=3: the UP retransmits; the CP application is still working
    assert pair.now == 3.0
    assert [d.time for d in pair.sent_by("up", NRQ)] == [0.0, 3.0]
    assert pair.sent_by("cp") == []  # dropped: nothing sent
    assert len(pair.events_of("cp", RequestReceived)) == 1  # no second event
    assert pair.cp.drops[(UP_ADDR, IN_PROGRESS)] == 1

    pair.now = 4.0
    pair.respond("cp", received, answer())
    pair.flush()
    (response,) = pair.sent_by("cp", NRS)
    assert response.time == 4.0 and pfcp.decode(response.data).sequence == sequence
    (answered,) = pair.events_of("up", ResponseReceived)
    assert answered.request.sequence == sequence
    pair.run_until(30.0)
    assert len(pair.sent_by("up", NRQ)) == 2  # answered: no more retransmissions

    pair.inject("cp", pair.sent_by("up", NRQ)[0].data, UP_ADDR)  # a straggler long after
    assert pair.cp.drops[(UP_ADDR, FROM_CACHE)] == 0  # 30 s > T1 x (N1 + 1): expired
    assert len(pair.events_of("cp", RequestReceived)) == 2


def test_cache_entries_expire_after_t1_times_n1_plus_1() -> None:
    pair = PfcpPair()  # T1 3 s, N1 3: holding time 12 s
    assert pair.cp.policy.holding_time == 12.0
    pair.now = 100.0
    pair.inject("cp", node_report(9), UP_ADDR)
    (first,) = answer_all(pair)

    pair.now = 111.999
    (cached,) = pair.inject("cp", node_report(9), UP_ADDR)
    assert cached.data == first
    assert pair.events["cp"] == []

    pair.now = 112.0  # arrival + T1 x (N1 + 1): the same sequence number is a new request
    assert pair.inject("cp", node_report(9), UP_ADDR) == []
    (again,) = pair.events_of("cp", RequestReceived)
    assert again.message.sequence == 9
    assert pair.cp.drops[(UP_ADDR, FROM_CACHE)] == 1


def test_expired_entries_are_purged_not_just_ignored() -> None:
    pair = PfcpPair()
    for sequence in range(1, 51):
        pair.inject("cp", node_report(sequence), UP_ADDR)
    answer_all(pair)
    assert len(pair.cp._rx) == 50
    pair.now = 12.0
    pair.inject("cp", node_report(51), UP_ADDR)
    assert len(pair.cp._rx) == 1


def test_the_same_sequence_from_another_peer_is_another_request() -> None:
    pair = PfcpPair()
    other: Address = ("127.0.0.3", 8805)
    pair.inject("cp", node_report(5), UP_ADDR)
    pair.inject("cp", node_report(5), other)
    assert [e.peer for e in pair.events_of("cp", RequestReceived)] == [UP_ADDR, other]


def test_the_cache_is_bounded_under_a_flood() -> None:
    bound = 16
    pair = PfcpPair(cp=cp_config(max_cached_requests=bound))
    peers: list[Address] = [(f"127.0.1.{k}", 8805) for k in range(1, 11)]
    flood = [(peer, sequence) for sequence in range(1, 101) for peer in peers]  # 1000 distinct requests
    for peer, sequence in flood:
        pair.cp.receive_datagram(node_report(sequence), peer, pair.now)
        event = pair.cp.next_event()
        assert isinstance(event, RequestReceived)
        pair.cp.send_response(event, answer(), pair.now)
        assert len(pair.cp._rx) <= bound
    assert len(pair.cp.datagrams_to_send()) == len(flood)
    assert len(pair.cp._rx) == bound
    assert pair.cp._rx.evicted == len(flood) - bound

    newest_peer, newest_sequence = flood[-1]
    pair.cp.receive_datagram(node_report(newest_sequence), newest_peer, pair.now)
    assert pair.cp.next_event() is None  # still cached: answered from the cache
    assert len(pair.cp.datagrams_to_send()) == 1
    oldest_peer, oldest_sequence = flood[0]
    pair.cp.receive_datagram(node_report(oldest_sequence), oldest_peer, pair.now)
    evicted = pair.cp.next_event()  # evicted: the application sees it as new
    assert isinstance(evicted, RequestReceived) and evicted.peer == oldest_peer
    assert len(pair.cp._rx) == bound


def test_the_cache_is_bounded_when_the_application_never_answers() -> None:
    pair = PfcpPair(cp=cp_config(max_cached_requests=8))
    for sequence in range(1, 501):
        pair.cp.receive_datagram(node_report(sequence), UP_ADDR, pair.now)
    assert len(pair.cp._rx) == 8
    late = [e for e in iter(pair.cp.next_event, None) if isinstance(e, RequestReceived)]
    assert len(late) == 500
    pair.cp.send_response(late[0], answer(), pair.now)  # answered after its entry was evicted
    (data, peer), *_ = pair.cp.datagrams_to_send()
    assert peer == UP_ADDR and pfcp.decode(data).sequence == 1
    assert len(pair.cp._rx) == 8


def test_heartbeats_are_answered_once_per_sequence_and_from_the_cache() -> None:
    pair = PfcpPair()
    heartbeat = pfcp.encode(pfcp.HeartbeatRequest(sequence=3, recovery_time_stamp=pair.up_cfg.recovery_time_stamp))
    (first,) = pair.inject("cp", heartbeat, UP_ADDR)
    (second,) = pair.inject("cp", heartbeat, UP_ADDR)
    assert first.data == second.data
    response = pfcp.decode(first.data)
    assert isinstance(response, pfcp.HeartbeatResponse) and response.sequence == 3
    assert response.recovery_time_stamp == pair.cp_cfg.recovery_time_stamp
    assert pair.cp.drops[(UP_ADDR, FROM_CACHE)] == 1


def test_a_different_request_under_a_cached_sequence_number_is_new() -> None:
    # A peer that restarts on the same address counts from 1 again: its new
    # request must not be answered with the response cached for the old one.
    pair = PfcpPair()
    src = ("127.0.0.9", 8805)
    heartbeat = pfcp.encode(pfcp.HeartbeatRequest(sequence=1, recovery_time_stamp=pfcp.RecoveryTimeStamp(100)))
    first = pair.inject("cp", heartbeat, src)
    assert [pfcp.decode(d.data).message_type for d in first] == [MessageType.HEARTBEAT_RESPONSE]
    again = pair.inject("cp", heartbeat, src)  # a true retransmission: from the cache
    assert [d.data for d in again] == [d.data for d in first]
    setup = pfcp.AssociationSetupRequest(
        sequence=1, node_id=UP_NODE_ID, recovery_time_stamp=pfcp.RecoveryTimeStamp(200)
    )
    replies = pair.inject("cp", pfcp.encode(setup), src)
    assert [pfcp.decode(d.data).message_type for d in replies] == [MessageType.ASSOCIATION_SETUP_RESPONSE]


def test_cached_entries_are_not_tracked_by_the_garbage_collector() -> None:
    # Up to max_cached_requests entries live T1 x (N1 + 1): plain tuples of plain
    # values, which the cyclic GC stops scanning after their first collection.
    pair = PfcpPair()
    for sequence in range(1, 21):
        pair.inject("cp", node_report(sequence), UP_ADDR)
    answer_all(pair)
    gc.collect()
    entries = list(pair.cp._rx._entries.items())
    assert len(entries) == 20
    assert not any(gc.is_tracked(entry) or gc.is_tracked(key) for key, entry in entries)


def test_entries_expire_after_the_oldest_was_replaced_by_a_new_request() -> None:
    # The oldest entry leaves early (a different request under its sequence number);
    # the next oldest must still expire on time.
    pair = PfcpPair()  # holding time 12 s
    src: Address = ("127.0.0.9", 8805)
    pair.inject("cp", node_report(1), src)  # t=0, expires at 12
    pair.now = 1.0
    pair.inject("cp", node_report(2), src)  # expires at 13
    answer_all(pair)
    pair.now = 2.0
    other = pfcp.NodeReportRequest(
        sequence=1, node_id=CP_NODE_ID, node_report_type=NodeReportType(NodeReportTypeFlags.UPFR)
    )
    assert pair.inject("cp", pfcp.encode(other), src) == []  # new under sequence 1: expires at 14
    answer_all(pair)
    pair.now = 13.0
    pair.inject("cp", node_report(3), src)
    answer_all(pair)
    assert [sequence for (_, sequence) in pair.cp._rx._entries] == [1, 3]  # sequence 2 expired at 13
    pair.now = 13.5
    assert pair.inject("cp", node_report(2), src) == []  # not from the cache: a new request
    (event,) = pair.events_of("cp", RequestReceived)
    assert event.message.sequence == 2
