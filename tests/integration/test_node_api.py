"""PfcpNode's API edges, between two PfcpNodes on loopback UDP.

* A request handler that raises, sync or async, gets the peer a System Failure
  answer, and the node keeps serving.
* Past ``max_pending_handlers`` async handlers, requests get PFCP Entity In
  Congestion; the refused handler coroutine is closed, not left to warn that it
  was never awaited.
* A second ``associate()`` while a setup is in progress fails at once, and the
  first one still completes (it used to wait forever).
* Requests made in one loop turn leave together at its end, in one send; none leaves
  once the node is closed in that turn.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable

import pfcp
from pfcp.aio import PfcpNode, RequestHandler
from pfcp.association import InvalidTransition
from pfcp.endpoint import EndpointConfig
from pfcp.events import AssociationEstablished, RequestReceived
from pfcp.transaction import RetransmitPolicy

LOOPBACK = "127.0.0.1"
RTS = pfcp.RecoveryTimeStamp(3_899_836_800)
CP_NODE = pfcp.NodeID("cp.handlers.test")
UP_NODE = pfcp.NodeID("up.handlers.test")
DEADLINE = 10.0


def _config(node_id: pfcp.NodeID) -> EndpointConfig:
    return EndpointConfig(
        node_id=node_id, recovery_time_stamp=RTS, retransmit=RetransmitPolicy(t1=0.2, n1=3), heartbeat_interval=None
    )


def _report(flag: pfcp.NodeReportTypeFlags) -> pfcp.NodeReportRequest:
    """A node-related request (no association needed); ``flag`` tells the handler what to do."""
    return pfcp.NodeReportRequest(node_id=UP_NODE, node_report_type=pfcp.NodeReportType(flag))


def _accepted(event: RequestReceived) -> pfcp.NodeReportResponse:
    return pfcp.NodeReportResponse(node_id=CP_NODE, cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED))


async def _with_nodes(
    handler: RequestHandler, body: Callable[[PfcpNode, tuple[str, int]], Awaitable[None]], max_pending: int = 10_000
) -> None:
    """The CP node runs ``handler``; ``body`` gets the UP node (the requester) and the CP's address."""
    cp = PfcpNode(_config(CP_NODE), handler=handler, max_pending_handlers=max_pending)
    up = PfcpNode(_config(UP_NODE))
    try:
        cp_address = await cp.start(LOOPBACK, 0)
        await up.start(LOOPBACK, 0)
        await body(up, cp_address)
    finally:
        up.close()
        cp.close()


def _cause(response: pfcp.Message) -> int:
    assert isinstance(response, pfcp.NodeReportResponse)
    assert response.node_id == CP_NODE
    return response.cause.value


def test_a_failing_handler_answers_system_failure_and_the_node_goes_on() -> None:
    flags = pfcp.NodeReportTypeFlags

    def sync_handler(event: RequestReceived) -> pfcp.Message:
        assert isinstance(event.message, pfcp.NodeReportRequest)
        if event.message.node_report_type.value & flags.UPFR:
            raise ValueError("sync handler bug")
        return _accepted(event)

    async def async_handler(event: RequestReceived) -> pfcp.Message:
        await asyncio.sleep(0)
        return sync_handler(event)

    causes: list[int] = []

    async def body(up: PfcpNode, cp: tuple[str, int]) -> None:
        causes.append(_cause(await up.request(cp, _report(flags.UPFR))))  # the handler raises
        causes.append(_cause(await up.request(cp, _report(flags.GPQR))))  # and still serves the next

    for handler in (sync_handler, async_handler):
        asyncio.run(asyncio.wait_for(_with_nodes(handler, body), DEADLINE))
    failure, accepted = pfcp.CauseValue.SYSTEM_FAILURE, pfcp.CauseValue.REQUEST_ACCEPTED
    assert causes == [failure, accepted, failure, accepted]


def test_past_max_pending_handlers_requests_get_congestion() -> None:
    release = asyncio.Event()
    started: list[int] = []

    async def slow(event: RequestReceived) -> pfcp.Message:
        started.append(event.message.sequence)
        await release.wait()
        return _accepted(event)

    causes: list[int] = []

    async def body(up: PfcpNode, cp: tuple[str, int]) -> None:
        first = asyncio.create_task(up.request(cp, _report(pfcp.NodeReportTypeFlags.UPFR)))
        while not started:  # the one handler slot is taken
            await asyncio.sleep(0.01)
        causes.append(_cause(await up.request(cp, _report(pfcp.NodeReportTypeFlags.UPFR))))
        release.set()
        causes.append(_cause(await first))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(asyncio.wait_for(_with_nodes(slow, body, max_pending=1), DEADLINE))
    assert causes == [pfcp.CauseValue.PFCP_ENTITY_IN_CONGESTION, pfcp.CauseValue.REQUEST_ACCEPTED]
    assert len(started) == 1  # the refused handler never ran
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []


def test_a_second_associate_while_one_is_in_progress_leaves_the_first_intact() -> None:
    outcomes: list[object] = []

    async def body(up: PfcpNode, cp: tuple[str, int]) -> None:
        first = asyncio.create_task(up.associate(cp))
        await asyncio.sleep(0)  # its Association Setup Request is out
        try:
            await up.associate(cp)
        except InvalidTransition as exc:
            outcomes.append(exc)
        outcomes.append(await asyncio.wait_for(first, 5.0))

    asyncio.run(asyncio.wait_for(_with_nodes(_accepted, body), DEADLINE))
    refused, established = outcomes
    assert isinstance(refused, InvalidTransition)
    assert isinstance(established, AssociationEstablished)
    assert established.initiated_by_us and established.info.node_id == CP_NODE


def test_over_ipv6_a_peer_is_host_and_port_and_gets_its_answer() -> None:
    # recvfrom on an IPv6 socket gives (host, port, flowinfo, scope_id); events and
    # the response cache key peers by (host, port) only.
    peers: list[tuple[str, int]] = []

    def handler(event: RequestReceived) -> pfcp.Message:
        peers.append(event.peer)
        return _accepted(event)

    async def run() -> tuple[pfcp.Message, tuple[str, int]]:
        cp = PfcpNode(_config(CP_NODE), handler=handler)
        up = PfcpNode(_config(UP_NODE))
        try:
            cp_address = await cp.start("::1", 0)
            up_address = await up.start("::1", 0)
            return await up.request(cp_address, _report(pfcp.NodeReportTypeFlags.UPFR)), up_address
        finally:
            up.close()
            cp.close()

    response, up_address = asyncio.run(asyncio.wait_for(run(), DEADLINE))
    assert _cause(response) == pfcp.CauseValue.REQUEST_ACCEPTED
    assert peers == [up_address] and len(up_address) == 2


def test_requests_made_in_one_loop_turn_leave_in_one_send() -> None:
    batches: list[int] = []

    async def body(up: PfcpNode, cp_address: tuple[str, int]) -> None:
        send = up._send

        def counting(out: list[tuple[bytes, tuple[str, int]]]) -> None:
            batches.append(len(out))
            send(out)

        up._send = counting  # type: ignore[method-assign]
        flag = pfcp.NodeReportTypeFlags.UPFR
        responses = await asyncio.gather(*(up.request(cp_address, _report(flag)) for _ in range(5)))
        assert [_cause(r) for r in responses] == [pfcp.CauseValue.REQUEST_ACCEPTED] * 5

    asyncio.run(asyncio.wait_for(_with_nodes(_accepted, body), DEADLINE))
    assert batches == [5]  # the five requests left together, at the end of the turn that made them


def test_a_request_made_in_the_turn_that_closes_the_node_is_never_sent() -> None:
    async def run() -> None:
        node = PfcpNode(_config(UP_NODE))
        await node.start(LOOPBACK, 0)
        sent: list[int] = []
        node._send = lambda out: sent.append(len(out))  # type: ignore[method-assign]
        task = asyncio.ensure_future(node.request((LOOPBACK, 9), _report(pfcp.NodeReportTypeFlags.UPFR)))
        await asyncio.sleep(0)  # the request is made; its send waits for the end of the turn
        node.close()
        try:
            await task
        except ConnectionAbortedError:
            pass
        else:
            raise AssertionError("the request of a closed node answered")
        await asyncio.sleep(0.05)
        assert sent == [] and node._timer is None  # nothing sent, no retransmission timer armed

    asyncio.run(asyncio.wait_for(run(), DEADLINE))
