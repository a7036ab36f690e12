"""The PFCP node's plain counters (pfcp/endpoint.py) and the families both planes build from them.

Two endpoints on a fake clock (tests/fakes/pfcp_pair.py) exchange real datagrams; the
counters must say what happened, and the exposition both planes serve (one builder,
edge_sites.telemetry.prometheus, since the planes may not import each other) must carry it,
as prometheus_client's parser reads it.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

import pfcp
from edge_sites.telemetry.prometheus import pfcp_families
from pfcp.endpoint import RTT_BUCKETS, PfcpEndpoint
from pfcp.events import Address
from tests.fakes.pfcp_pair import CP_ADDR, UP_ADDR, PfcpPair, cp_config, duplicate_where, is_type
from tests.unit.metrics.scrape import Scrape, parse

T = pfcp.MessageType
HEARTBEAT = pfcp.HeartbeatRequest(recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_000))


class Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def exposition(endpoint: PfcpEndpoint, plane: str = "up") -> Scrape:
    def peer(addr: Address) -> list[str]:
        return [addr[0]]

    registry = CollectorRegistry()
    registry.register(Families(pfcp_families(endpoint, {"function": plane}, ["remote"], peer)))
    return parse("text/plain", generate_latest(registry).decode())


def test_messages_and_round_trip_of_a_heartbeat() -> None:
    pair = PfcpPair()
    pair.request("cp", HEARTBEAT)
    batch, pair.in_flight = pair.in_flight, []
    for datagram in batch:  # the request arrives now; its answer 3 ms later
        pair.up.receive_datagram(datagram.data, datagram.src, pair.now)
    pair.now += 0.003
    pair.flush()
    assert pair.cp.messages_sent[T.HEARTBEAT_REQUEST] == pair.up.messages_received[T.HEARTBEAT_REQUEST] == 1
    assert pair.up.messages_sent[T.HEARTBEAT_RESPONSE] == pair.cp.messages_received[T.HEARTBEAT_RESPONSE] == 1
    histogram = pair.cp.round_trips[UP_ADDR][T.HEARTBEAT_REQUEST]
    assert histogram is not None
    assert histogram[RTT_BUCKETS.index(0.005)] == 1 and sum(histogram[:-1]) == 1
    assert histogram[-1] == pytest.approx(0.003)
    for plane in ("up", "cp"):  # the function label is the caller's
        seen = exposition(pair.cp, plane)
        timed = {"function": plane, "remote": UP_ADDR[0], "type": "heartbeat_request"}
        assert seen.value("pfcp_peer_response_seconds_bucket", le="0.0025", **timed) == 0
        assert seen.value("pfcp_peer_response_seconds_bucket", le="0.005", **timed) == 1
        assert seen.value("pfcp_peer_response_seconds_bucket", le="+Inf", **timed) == 1
        assert seen.value("pfcp_peer_response_seconds_sum", **timed) == pytest.approx(0.003)
        sent = {"function": plane, "direction": "tx", "type": "heartbeat_request"}
        assert seen.value("pfcp_messages_processed_total", **sent) == 1
        assert seen.label_values("pfcp_messages_replies_total", "type") == set()  # a heartbeat has no Cause


def test_retransmissions_timeouts_and_karn() -> None:
    pair = PfcpPair(cp=cp_config(retransmit=pfcp.transaction.RetransmitPolicy(t1=1.0, n1=2)))
    pair.request("cp", HEARTBEAT, to=("127.0.0.9", 8805))  # nobody there
    for _ in range(3):
        pair.advance()
    assert pair.cp.retransmits[(("127.0.0.9", 8805), T.HEARTBEAT_REQUEST)] == 2
    assert pair.cp.timeouts[(("127.0.0.9", 8805), T.HEARTBEAT_REQUEST)] == 1
    assert pair.cp.messages_sent[T.HEARTBEAT_REQUEST] == 1  # resends are not new messages
    # A request answered only after a resend is not timed: its answer may answer either copy.
    pair.request("cp", HEARTBEAT)
    pair.in_flight.clear()
    pair.advance()  # the resend, delivered and answered
    assert pair.cp.messages_received[T.HEARTBEAT_RESPONSE] == 1
    assert UP_ADDR not in pair.cp.round_trips
    seen = exposition(pair.cp)
    assert seen.value("pfcp_messages_retransmits_total", remote="127.0.0.9", type="heartbeat_request") == 2
    assert seen.value("pfcp_messages_retransmits_total", remote=UP_ADDR[0], type="heartbeat_request") == 1
    assert seen.value("pfcp_messages_timeouts_total", remote="127.0.0.9", type="heartbeat_request") == 1


def test_duplicates_and_causes() -> None:
    pair = PfcpPair()
    pair.associate()
    pair.request("cp", HEARTBEAT)
    pair.flush(duplicate_where(is_type(T.HEARTBEAT_REQUEST)))
    assert pair.up.duplicates[(CP_ADDR, T.HEARTBEAT_REQUEST)] == 1
    # A session request from a peer with no association: cause 72, counted on both ends.
    stranger = PfcpPair(cp_addr=("127.0.0.3", 8805))
    deletion = pfcp.SessionDeletionRequest(seid=1)
    stranger.request("cp", deletion)
    stranger.flush()
    rejected = (T.SESSION_DELETION_RESPONSE, pfcp.CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION)
    assert stranger.up.causes_sent[rejected] == stranger.cp.causes_received[rejected] == 1
    up_side, cp_side = exposition(stranger.up), exposition(stranger.cp, "cp")
    replies = {"type": "session_deletion_response", "cause": "no_established_pfcp_association"}
    assert up_side.value("pfcp_messages_replies_total", direction="tx", **replies) == 1
    assert cp_side.value("pfcp_messages_replies_total", direction="rx", **replies) == 1
    accepted = {"type": "session_deletion_response", "cause": "request_accepted"}
    assert up_side.value("pfcp_messages_replies_total", direction="tx", **accepted) == 0
    dropped = up_side.label_values("pfcp_messages_dropped_total", "reason")
    assert "rejected (cause 72): session request without association" in dropped
    # The association's own exchange: every response accepted.
    assert pair.up.causes_sent == {} and pair.cp.causes_received == {}
    seen = exposition(pair.cp, "cp")
    setup = {"direction": "rx", "type": "association_setup_response", "cause": "request_accepted"}
    assert seen.value("pfcp_messages_replies_total", **setup) == 1
