"""Two PfcpNodes on real loopback UDP, through a relay that drops, duplicates and
delays (reorders) a fifth of the datagrams in each direction.

The CP node associates, then sends 2,000 Session Establishment Requests, 64 in
flight at a time, each with its own CP F-SEID; the UP node's handler answers
with the request's CP SEID in the header and in the UP F-SEID, and counts how
often it is called for each SEID. Retransmission (T1, N1) must get every
request through, duplicate detection must keep every retransmission and relay
copy away from the handler, and each ``await request()`` must get the response
to its own request.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pfcp
from pfcp.aio import PfcpNode
from pfcp.endpoint import EndpointConfig
from pfcp.events import Address, Event, PeerLost, PeerRestarted, RequestReceived, RequestTimedOut
from pfcp.transaction import RetransmitPolicy

from .relay import Impairment, LinkStats, LossyRelay

LOOPBACK = "127.0.0.1"
LOOPBACK_V4 = IPv4Address(LOOPBACK)
SEED = 29244
REQUESTS = 2000
IN_FLIGHT = 64
#: T1 x (N1 + 1) = 0.7 s: a request survives six losses in a row.
POLICY = RetransmitPolicy(t1=0.1, n1=6)
#: 7% dropped, 7% duplicated, 6% delayed by up to 20 ms: 20% of the datagrams, each way.
IMPAIRMENT = Impairment(drop=0.07, duplicate=0.07, delay=0.06, max_delay=0.020)
#: The whole scenario, association and all; the test fails rather than hangs past it.
DEADLINE = 25.0

CP_NODE = pfcp.NodeID("cp.lossy.test")
UP_NODE = pfcp.NodeID("up.lossy.test")
RTS = pfcp.RecoveryTimeStamp(3_899_836_800)
FIRST_SEID = 0x5EED_0000_0000_0001
ACCEPTED = pfcp.CauseValue.REQUEST_ACCEPTED


def _config(node_id: pfcp.NodeID) -> EndpointConfig:
    return EndpointConfig(node_id=node_id, recovery_time_stamp=RTS, retransmit=POLICY, heartbeat_interval=0.5)


def _establishment(seid: int) -> pfcp.SessionEstablishmentRequest:
    return pfcp.SessionEstablishmentRequest(
        seid=0,
        node_id=CP_NODE,
        cp_f_seid=pfcp.FSEID(seid, LOOPBACK_V4),
        create_pdr=(
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(1),
                precedence=pfcp.Precedence(100),
                pdi=pfcp.PDI(source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS)),
                far_id=pfcp.FARID(1),
            ),
        ),
        create_far=(pfcp.CreateFAR(far_id=pfcp.FARID(1), apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW)),),
    )


@dataclass
class Outcome:
    """Everything the scenario observed, collected before the sockets closed."""

    before_association: pfcp.Message | None = None
    #: CP SEID of each request -> the response its own ``await request()`` returned.
    responses: dict[int, pfcp.Message] = field(default_factory=dict)
    failures: dict[int, BaseException] = field(default_factory=dict)
    invocations: Counter[int] = field(default_factory=Counter)
    handler_problems: list[str] = field(default_factory=list)
    cp_events: list[Event] = field(default_factory=list)
    up_events: list[Event] = field(default_factory=list)
    cp_drops: Counter[tuple[Address, str]] = field(default_factory=Counter)
    up_drops: Counter[tuple[Address, str]] = field(default_factory=Counter)
    relay_front: Address | None = None
    relay_back: Address | None = None
    cp_to_up: LinkStats = field(default_factory=LinkStats)
    up_to_cp: LinkStats = field(default_factory=LinkStats)


async def run_scenario(requests: int = REQUESTS, seed: int = SEED) -> Outcome:
    """CP -> lossy relay -> UP: associate, then ``requests`` Session Establishment Requests."""
    out = Outcome()
    handler_rng = random.Random(seed)

    async def answer(event: RequestReceived) -> pfcp.Message:
        msg = event.message
        if not isinstance(msg, pfcp.SessionEstablishmentRequest):
            out.handler_problems.append(f"unexpected request {msg!r}")
            raise TypeError(type(msg).__name__)
        seid = msg.cp_f_seid.seid
        out.invocations[seid] += 1
        if event.node_id != CP_NODE:
            out.handler_problems.append(f"request {seid:#x} from {event.node_id}, not the associated CP")
        if handler_rng.random() < 0.25:  # some answers take a while: duplicates arrive while in progress
            await asyncio.sleep(handler_rng.uniform(0.0, 0.015))
        return pfcp.SessionEstablishmentResponse(
            seid=seid,
            node_id=UP_NODE,
            cause=pfcp.Cause(ACCEPTED),
            up_f_seid=pfcp.FSEID(seid, LOOPBACK_V4),
        )

    up = PfcpNode(_config(UP_NODE), handler=answer, on_event=out.up_events.append)
    cp = PfcpNode(_config(CP_NODE), on_event=out.cp_events.append)
    relay = LossyRelay(seed, IMPAIRMENT)
    try:
        up_address = await up.start(LOOPBACK, 0)
        cp_address = await cp.start(LOOPBACK, 0)
        out.relay_front, out.relay_back = await relay.start(cp_address, up_address, LOOPBACK)
        peer = out.relay_front

        # Without an association the UP node answers cause 72 and never calls the handler.
        out.before_association = await cp.request(peer, _establishment(FIRST_SEID - 1))
        await cp.associate(peer)

        # At most IN_FLIGHT requests outstanding; a task is created only when a slot
        # is free (2,000 tasks created at once would stall the loop for longer than T1).
        gate = asyncio.Semaphore(IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()

        async def one(seid: int) -> None:
            try:
                out.responses[seid] = await cp.request(peer, _establishment(seid))
            except Exception as exc:
                out.failures[seid] = exc
            finally:
                gate.release()

        for i in range(requests):
            await gate.acquire()
            task = asyncio.create_task(one(FIRST_SEID + i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        for _ in range(IN_FLIGHT):  # the last ones are done when every slot is free again
            await gate.acquire()
        # Let delayed copies and last retransmissions land before reading the counters.
        await asyncio.sleep(2 * IMPAIRMENT.max_delay + POLICY.t1)
    finally:
        out.cp_drops, out.up_drops = Counter(cp.endpoint.drops), Counter(up.endpoint.drops)
        out.cp_to_up, out.up_to_cp = relay.a_to_b, relay.b_to_a
        relay.close()
        cp.close()
        up.close()
    return out


def run(requests: int = REQUESTS, seed: int = SEED) -> Outcome:
    return asyncio.run(asyncio.wait_for(run_scenario(requests, seed), DEADLINE))


def test_every_request_answered_once_through_a_lossy_relay() -> None:
    out = run()

    # Before the association: cause 72, from the UP node itself.
    early = out.before_association
    assert isinstance(early, pfcp.SessionEstablishmentResponse)
    assert early.cause.value == pfcp.CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION
    assert FIRST_SEID - 1 not in out.invocations

    # Every request got its own response.
    assert out.failures == {}
    assert len(out.responses) == REQUESTS
    mismatched: list[str] = []
    for seid, response in out.responses.items():
        if not isinstance(response, pfcp.SessionEstablishmentResponse):
            mismatched.append(f"{seid:#x}: got {type(response).__name__}")
        elif response.seid != seid or response.up_f_seid is None or response.up_f_seid.seid != seid:
            mismatched.append(f"{seid:#x}: got the answer for {response.seid:#x}")
        elif response.cause.value != ACCEPTED or response.node_id != UP_NODE:
            mismatched.append(f"{seid:#x}: {response!r}")
    assert mismatched == []

    # The handler saw each request exactly once, whatever the relay and the retransmissions did.
    assert out.handler_problems == []
    assert sum(out.invocations.values()) == REQUESTS
    assert set(out.invocations) == {FIRST_SEID + i for i in range(REQUESTS)}
    assert set(out.invocations.values()) == {1}

    # The relay did impair both directions, and reordering really happened on the wire.
    for stats in (out.cp_to_up, out.up_to_cp):
        assert stats.dropped > 0 and stats.duplicated > 0 and stats.delayed > 0 and stats.reordered > 0, stats
        assert stats.stray == 0
        impaired = stats.dropped + stats.duplicated + stats.delayed
        assert 0.1 * stats.received < impaired < 0.3 * stats.received, stats

    # The UP node answered retransmissions and relay copies from its cache.
    assert out.relay_back is not None and out.relay_front is not None
    assert out.up_drops[(out.relay_back, "duplicate request answered from cache")] > 0
    assert out.up_drops[(out.relay_back, "duplicate request while still in progress")] > 0
    # ... and the CP node dropped the duplicate responses.
    assert out.cp_drops[(out.relay_front, "response to no pending request")] > 0

    # Nothing timed out, heartbeats included.
    for events in (out.cp_events, out.up_events):
        assert [e for e in events if isinstance(e, PeerLost | PeerRestarted | RequestTimedOut)] == []
