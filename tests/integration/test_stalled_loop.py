"""A PfcpNode whose event loop stalls (a GC pause, a slow handler) past every
retransmission deadline of a pending request, over real loopback UDP.

When the loop wakes up, the request is resent once, and T1 later again: not
all of its N1 retransmissions at once in a burst that times it out in the same
breath. (Before the fix in ``TxQueue.due``, the next deadline was the previous
deadline + T1, so a late timer caught up by sending every overdue copy at once
and then expiring the request; the peer's answer to them was dropped as a
response to no pending request.)
"""

from __future__ import annotations

import asyncio
import socket
import time

import pfcp
from pfcp.aio import PfcpNode, RequestTimeout
from pfcp.endpoint import EndpointConfig
from pfcp.transaction import RetransmitPolicy

LOOPBACK = "127.0.0.1"
POLICY = RetransmitPolicy(t1=0.1, n1=3)
#: Longer than the whole transaction (T1 x (N1 + 1) = 0.4 s).
STALL = 0.5
RTS = pfcp.RecoveryTimeStamp(3_899_836_800)


async def _stalled_request() -> tuple[int, pfcp.Message | Exception, bytes, bytes]:
    """(copies the peer got right after the stall, the request's outcome, first bytes, resent bytes)."""
    config = EndpointConfig(
        node_id=pfcp.NodeID("cp.stall.test"), recovery_time_stamp=RTS, retransmit=POLICY, heartbeat_interval=None
    )
    node = PfcpNode(config)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        peer.setblocking(False)
        peer.bind((LOOPBACK, 0))
        node_address = await node.start(LOOPBACK, 0)
        loop = asyncio.get_running_loop()
        request = asyncio.create_task(
            node.request(peer.getsockname()[:2], pfcp.HeartbeatRequest(recovery_time_stamp=RTS))
        )
        first, _ = await asyncio.wait_for(loop.sock_recvfrom(peer, 65535), 2.0)  # the peer "loses" it

        time.sleep(STALL)  # the loop is blocked: every retransmission deadline passes

        resent, source = await asyncio.wait_for(loop.sock_recvfrom(peer, 65535), 2.0)
        copies = 1
        while True:  # whatever else the same timer run sent
            try:
                peer.recvfrom(65535)
            except BlockingIOError:
                break
            copies += 1
        assert source[:2] == node_address
        sequence = pfcp.decode(resent).sequence
        answer = pfcp.HeartbeatResponse(sequence=sequence, recovery_time_stamp=pfcp.RecoveryTimeStamp(RTS.value + 1))
        await loop.sock_sendto(peer, pfcp.encode(answer), node_address)
        try:
            outcome: pfcp.Message | Exception = await asyncio.wait_for(request, 2.0)
        except RequestTimeout as exc:
            outcome = exc
        return copies, outcome, first, resent
    finally:
        peer.close()
        node.close()


def test_a_stalled_loop_resends_once_and_keeps_the_request_alive() -> None:
    copies, outcome, first, resent = asyncio.run(asyncio.wait_for(_stalled_request(), 10.0))
    assert resent == first  # a retransmission: the same bytes
    assert copies == 1, f"{copies} copies sent at once after the stall"
    assert isinstance(outcome, pfcp.HeartbeatResponse), outcome
    assert outcome.sequence == pfcp.decode(first).sequence
