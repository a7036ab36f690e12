"""Heartbeats and restarts (TS 29.244 §6.2.2, §6.2.6, TS 23.007 §19A): periodic
heartbeats to associated peers, PeerRestarted on a newer Recovery Time Stamp,
PeerLost when heartbeats go unanswered, and a Node ID moving address."""

from __future__ import annotations

from collections.abc import Callable

import pfcp
from pfcp import MessageType
from pfcp.events import (
    Address,
    AssociationEstablished,
    Event,
    PeerInfo,
    PeerLost,
    PeerRestarted,
    ResponseReceived,
)
from pfcp.ie import RecoveryTimeStamp
from tests.fakes.pfcp_pair import (
    CP_ADDR,
    CP_NODE_ID,
    CP_STAMP,
    UP_ADDR,
    UP_FEATURES,
    UP_NODE_ID,
    UP_STAMP,
    Datagram,
    PfcpPair,
    cp_config,
    drop_where,
    up_config,
)

H = 10.0
HBQ = MessageType.HEARTBEAT_REQUEST
HBS = MessageType.HEARTBEAT_RESPONSE
NEWER = RecoveryTimeStamp(UP_STAMP.value + 60)
OLDER = RecoveryTimeStamp(UP_STAMP.value - 60)
OLDER_IGNORED = "older recovery time stamp ignored"


def beating_pair(cp_interval: float | None = H, up_interval: float | None = H) -> PfcpPair:
    """Associated at t=0 (CP-initiated), T1 3 s, N1 3, events cleared."""
    pair = PfcpPair(cp=cp_config(heartbeat_interval=cp_interval), up=up_config(heartbeat_interval=up_interval))
    pair.associate("cp")
    pair.clear_events()
    return pair


def heartbeat(sequence: int, stamp: RecoveryTimeStamp) -> bytes:
    return pfcp.encode(pfcp.HeartbeatRequest(sequence=sequence, recovery_time_stamp=stamp))


def restarts(events: list[Event]) -> list[PeerRestarted]:
    return [e for e in events if isinstance(e, PeerRestarted)]


def from_addr(addr: Address) -> Callable[[Datagram], bool]:
    return lambda d: d.src == addr


def test_associated_peers_exchange_heartbeats_every_interval() -> None:
    pair = beating_pair()
    pair.run_until(45.0)
    assert [d.time for d in pair.sent_by("cp", HBQ)] == [10.0, 20.0, 30.0, 40.0]
    assert [d.time for d in pair.sent_by("up", HBQ)] == [10.0, 20.0, 30.0, 40.0]
    assert [d.time for d in pair.sent_by("cp", HBS)] == [10.0, 20.0, 30.0, 40.0]
    for d in pair.sent_by("cp", HBQ):
        msg = d.decode()
        assert isinstance(msg, pfcp.HeartbeatRequest) and msg.recovery_time_stamp == CP_STAMP
        assert d.dst == UP_ADDR
    for d in pair.sent_by("up", HBS):
        msg = d.decode()
        assert isinstance(msg, pfcp.HeartbeatResponse) and msg.recovery_time_stamp == UP_STAMP
    assert pair.events == {"cp": [], "up": []}  # heartbeats are the endpoint's business
    assert pair.cp.get_timer() == 50.0


def test_only_associated_peers_get_heartbeats() -> None:
    pair = PfcpPair(cp=cp_config(heartbeat_interval=H), up=up_config(heartbeat_interval=H))
    assert pair.next_timer() is None
    pair.associate("up")
    assert pair.cp.get_timer() == H and pair.up.get_timer() == H


def test_one_side_only_beats_when_configured() -> None:
    pair = beating_pair(cp_interval=H, up_interval=None)
    pair.run_until(35.0)
    assert [d.time for d in pair.sent_by("cp", HBQ)] == [10.0, 20.0, 30.0]
    assert pair.sent_by("up", HBQ) == []
    assert len(pair.sent_by("up", HBS)) == 3


def test_the_next_heartbeat_counts_from_the_answer() -> None:
    pair = beating_pair(up_interval=None)
    pair.run_until(10.0, filter=drop_where(from_addr(CP_ADDR)))  # the first heartbeat is lost
    pair.run_until(50.0)
    assert [d.time for d in pair.sent_by("cp", HBQ)] == [10.0, 13.0, 23.0, 33.0, 43.0]
    assert pair.events["cp"] == []


def test_heartbeats_stop_with_the_association() -> None:
    pair = beating_pair()
    pair.run_until(15.0)
    pair.cp.release(UP_ADDR, pair.now)
    pair.flush()
    assert pair.next_timer() is None
    pair.run_until(100.0)
    assert len(pair.sent_by("cp", HBQ)) == 1


# ---------------------------------------------------------------------------
# Peer lost


def test_a_silent_peer_is_lost_after_n1_resends() -> None:
    pair = beating_pair(up_interval=None)
    pair.filter = drop_where(from_addr(UP_ADDR))  # the UP stops answering
    pair.run_until(100.0)

    assert [d.time for d in pair.sent_by("cp", HBQ)] == [10.0, 13.0, 16.0, 19.0]  # sent, then N1 = 3 resends
    assert len({d.data for d in pair.sent_by("cp", HBQ)}) == 1
    assert [(t, side, e) for t, side, e in pair.timeline] == [(22.0, "cp", PeerLost(UP_ADDR, UP_NODE_ID))]
    assert pair.cp.association(UP_ADDR) is None
    assert pair.cp.get_timer() is None  # no more heartbeats to it


def test_both_sides_lose_each_other_when_the_link_breaks() -> None:
    pair = beating_pair()
    pair.run_until(20.0)  # two rounds answered
    pair.filter = lambda batch: []
    pair.run_until(100.0)
    assert [(t, side, type(e)) for t, side, e in pair.timeline] == [(42.0, "cp", PeerLost), (42.0, "up", PeerLost)]
    assert pair.cp.associations() == [] and pair.up.associations() == []


def test_a_peer_answering_a_resend_is_not_lost() -> None:
    pair = beating_pair(up_interval=None)
    lose_three: list[int] = [3]

    def lossy(batch: list[Datagram]) -> list[Datagram]:
        out = []
        for d in batch:
            if d.message_type == HBS and lose_three[0] > 0:
                lose_three[0] -= 1
                continue
            out.append(d)
        return out

    pair.filter = lossy
    pair.run_until(30.0)
    assert [d.time for d in pair.sent_by("cp", HBQ)] == [10.0, 13.0, 16.0, 19.0, 29.0]
    assert pair.events["cp"] == []
    assoc = pair.cp.association(UP_ADDR)
    assert assoc is not None and assoc.associated


# ---------------------------------------------------------------------------
# Restarts (Recovery Time Stamp)


def test_a_newer_stamp_in_a_heartbeat_request_means_a_restart() -> None:
    pair = beating_pair(cp_interval=None, up_interval=None)
    pair.inject("cp", heartbeat(100, NEWER), UP_ADDR)
    assert pair.events["cp"] == [PeerRestarted(UP_ADDR, UP_NODE_ID, UP_STAMP, NEWER)]
    assoc = pair.cp.association(UP_ADDR)
    assert assoc is not None and assoc.info is not None and assoc.info.recovery_time_stamp == NEWER

    pair.inject("cp", heartbeat(101, NEWER), UP_ADDR)  # the same stamp again: nothing new
    assert len(restarts(pair.events["cp"])) == 1


def test_a_newer_stamp_in_a_heartbeat_response_means_a_restart() -> None:
    pair = beating_pair(up_interval=None)
    pair.restart("up", up_config(recovery_time_stamp=NEWER))  # the UP restarted, forgetting everything
    pair.run_until(35.0)
    assert restarts(pair.events["cp"]) == [PeerRestarted(UP_ADDR, UP_NODE_ID, UP_STAMP, NEWER)]
    assert [t for t, _, e in pair.timeline if isinstance(e, PeerRestarted)] == [10.0]  # once, at the first answer
    assert [d.time for d in pair.sent_by("cp", HBQ)] == [10.0, 20.0, 30.0]


def test_a_newer_stamp_in_a_new_association_setup_means_a_restart() -> None:
    pair = beating_pair()
    pair.now = 5.0
    pair.restart("up", up_config(recovery_time_stamp=NEWER))
    pair.associate("up")

    restarted, established = pair.events["cp"]
    assert restarted == PeerRestarted(UP_ADDR, UP_NODE_ID, UP_STAMP, NEWER)
    assert established == AssociationEstablished(
        UP_ADDR, PeerInfo(UP_NODE_ID, NEWER, UP_FEATURES, None), initiated_by_us=False, replaced=True
    )
    assert len(pair.cp.associations()) == 1
    pair.run_until(40.0)  # heartbeats go on, with no further restart
    assert len(restarts(pair.events["cp"])) == 1
    assert [d.time for d in pair.sent_by("cp", HBQ)] == [15.0, 25.0, 35.0]


def test_an_older_stamp_is_ignored_and_counted() -> None:
    pair = beating_pair(cp_interval=None, up_interval=None)
    (reply,) = pair.inject("cp", heartbeat(100, OLDER), UP_ADDR)
    assert isinstance(reply.decode(), pfcp.HeartbeatResponse)  # still answered
    pair.inject("cp", heartbeat(101, OLDER), UP_ADDR)
    assert pair.events["cp"] == []
    assert pair.cp.drops[(UP_ADDR, OLDER_IGNORED)] == 2
    assoc = pair.cp.association(UP_ADDR)
    assert assoc is not None and assoc.info is not None and assoc.info.recovery_time_stamp == UP_STAMP


def test_an_older_stamp_in_a_heartbeat_response_is_ignored() -> None:
    pair = beating_pair(up_interval=None)
    pair.restart("up", up_config(recovery_time_stamp=OLDER))
    pair.run_until(25.0)
    assert pair.events["cp"] == []
    assert pair.cp.drops[(UP_ADDR, OLDER_IGNORED)] == 2


def test_the_same_stamp_is_no_restart() -> None:
    pair = beating_pair(cp_interval=None, up_interval=None)
    pair.inject("cp", heartbeat(100, UP_STAMP), UP_ADDR)
    assert pair.events["cp"] == [] and sum(pair.cp.drops.values()) == 0


def test_a_stamp_from_an_unknown_peer_raises_nothing() -> None:
    pair = PfcpPair()
    (reply,) = pair.inject("cp", heartbeat(1, NEWER), UP_ADDR)
    assert isinstance(reply.decode(), pfcp.HeartbeatResponse)
    assert pair.events["cp"] == []


def test_the_application_sees_heartbeat_responses_it_asked_for_and_restarts() -> None:
    pair = beating_pair(cp_interval=None, up_interval=None)
    pair.restart("up", up_config(recovery_time_stamp=NEWER))
    sequence = pair.request("cp", pfcp.HeartbeatRequest(recovery_time_stamp=CP_STAMP))
    pair.flush()
    restarted, answered = pair.events["cp"]
    assert restarted == PeerRestarted(UP_ADDR, UP_NODE_ID, UP_STAMP, NEWER)
    assert isinstance(answered, ResponseReceived) and answered.request.sequence == sequence


# ---------------------------------------------------------------------------
# A Node ID at a new address


def test_the_same_node_id_from_a_new_address_replaces_the_association() -> None:
    pair = beating_pair()
    new_addr: Address = ("127.0.0.3", 8805)
    pair.now = 5.0
    pair.restart("up")  # same Node ID and Recovery Time Stamp
    pair.move("up", new_addr)
    pair.associate("up")

    assert pair.events["cp"] == [
        AssociationEstablished(new_addr, PeerInfo(UP_NODE_ID, UP_STAMP, UP_FEATURES, None), False, replaced=True)
    ]
    assert pair.cp.association(UP_ADDR) is None
    moved = pair.cp.association(new_addr)
    assert moved is not None and moved.node_id == UP_NODE_ID and moved.associated
    assert [a.peer for a in pair.cp.associations()] == [new_addr]

    pair.run_until(30.0)  # heartbeats follow the new address only
    assert {d.dst for d in pair.sent_by("cp", HBQ)} == {new_addr}
    assert [d.time for d in pair.sent_by("cp", HBQ)] == [15.0, 25.0]
    assert not [e for e in pair.events["cp"] if isinstance(e, PeerLost)]


def test_a_setup_from_the_same_address_with_the_same_node_id_is_a_replacement() -> None:
    pair = beating_pair()
    pair.associate("up")  # the UP sets up again, without restarting
    (established,) = pair.events_of("cp", AssociationEstablished)
    assert established.replaced and established.peer == UP_ADDR
    assert restarts(pair.events["cp"]) == []
    assoc = pair.cp.association(UP_ADDR)
    assert assoc is not None and assoc.node_id == UP_NODE_ID and len(pair.cp.associations()) == 1
    up_view = pair.up.association(CP_ADDR)
    assert up_view is not None and up_view.node_id == CP_NODE_ID and up_view.associated


def test_our_heartbeat_answered_after_a_release_is_not_an_application_response() -> None:
    # The CP's own heartbeat is in flight when the UP releases the association;
    # its late response must not surface as a ResponseReceived nobody asked for.
    pair = beating_pair(up_interval=None)
    pair.run_until(H, deliver=False)  # the CP's heartbeat is sent, not yet delivered
    heartbeats = [d for d in pair.in_flight if d.message_type == HBQ]
    assert len(heartbeats) == 1
    pair.in_flight = [d for d in pair.in_flight if d.message_type != HBQ]  # held back
    pair.endpoint("up").release(pair.peer_addr("up"), pair.now)
    pair.flush()  # the release (and its answer) travel first
    for d in heartbeats:  # then the UP answers the old heartbeat
        pair.inject("up", d.data, d.src)
    pair.flush()
    assert [e for e in pair.pop_events("cp") if isinstance(e, ResponseReceived)] == []
    assert pair.endpoint("cp").association(UP_ADDR) is None
