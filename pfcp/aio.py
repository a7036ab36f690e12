"""asyncio adapter for :class:`~pfcp.endpoint.PfcpEndpoint`: one UDP socket,
one timer, futures for requests, and handlers for incoming requests.

Everything protocol-related lives in the endpoint; this module only moves
datagrams and time in, and datagrams, events and results out (aioquic's
``QuicConnectionProtocol.transmit`` pattern).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable

from .constants import PFCP_PORT, Cause
from .endpoint import EndpointConfig, PfcpEndpoint
from .events import (
    Address,
    AssociationEstablished,
    AssociationSetupFailed,
    Event,
    RequestReceived,
    RequestTimedOut,
    ResponseReceived,
)
from .ie import PFCPSessionRetentionInformation
from .messages import Message

__all__ = ["AssociationFailed", "PfcpNode", "RequestHandler", "RequestTimeout"]

log = logging.getLogger("pfcp.aio")

#: Answers a request: returns the response (sync or async), or None to answer
#: later with :meth:`PfcpNode.respond`.
RequestHandler = Callable[[RequestReceived], "Message | Awaitable[Message | None] | None"]


class RequestTimeout(Exception):
    """No response after N1 retransmissions (TS 29.244 §6.4)."""


class AssociationFailed(Exception):
    """The peer rejected our Association Setup Request, or never answered."""


class PfcpNode:
    """A PFCP node on a UDP socket (IPv4 or IPv6; port 8805 by default).

    The socket is read directly (``loop.add_reader``): every wake-up drains up to
    ``READ_BATCH`` datagrams into one reused buffer before the endpoint's output
    is sent, which costs far less per datagram than asyncio's datagram transport
    (one ``recvfrom`` of 256 KiB per loop iteration).
    """

    READ_BATCH = 64
    #: Datagrams kept when the socket's send buffer is full (then dropped: UDP,
    #: and the peers retransmit).
    SEND_BACKLOG = 10_000

    def __init__(
        self,
        config: EndpointConfig,
        *,
        handler: RequestHandler | None = None,
        on_event: Callable[[Event], None] | None = None,
        max_pending_handlers: int = 10_000,
    ) -> None:
        self.endpoint = PfcpEndpoint(config)
        self.handler = handler
        self.on_event = on_event
        self.max_pending_handlers = max_pending_handlers
        self.session_handlers: dict[int, RequestHandler] = {}
        self.local_address: Address | None = None
        self._sock: socket.socket | None = None
        self._buffer = bytearray(65535)
        self._backlog: deque[tuple[bytes, Address]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._futures: dict[tuple[Address, int], asyncio.Future[Message]] = {}
        self._setups: dict[Address, asyncio.Future[AssociationEstablished]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._transmit_scheduled = False

    # -- lifecycle --------------------------------------------------------

    async def start(self, host: str = "0.0.0.0", port: int = PFCP_PORT, *, rcvbuf: int = 4 << 20) -> Address:
        """Bind the socket (``rcvbuf``: receive buffer asked of the kernel, which may
        cap it); returns the bound (host, port)."""
        self._loop = asyncio.get_running_loop()
        family, _, _, _, sockaddr = (await self._loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM))[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            sock.bind(sockaddr)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._read_ready)
        sockname = sock.getsockname()
        self.local_address = (sockname[0], sockname[1])
        return self.local_address

    @property
    def socket(self) -> socket.socket | None:
        """The bound UDP socket (for inspection and socket options)."""
        return self._sock

    def close(self) -> None:
        """Close the socket, cancel the timer and fail what is still waiting."""
        if self._timer is not None:
            self._timer.cancel()
        closed = ConnectionAbortedError("PFCP node closed")
        for future in self._futures.values():
            if not future.done():
                future.set_exception(closed)
        for setup in self._setups.values():
            if not setup.done():
                setup.set_exception(closed)
        for task in self._tasks:
            task.cancel()
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
                self._loop.remove_writer(self._sock.fileno())
            self._sock.close()
            self._sock = None

    async def __aenter__(self) -> PfcpNode:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- API --------------------------------------------------------------

    async def request(self, peer: Address, msg: Message) -> Message:
        """Send ``msg`` reliably and return the response; raises RequestTimeout."""
        loop = self._running_loop()
        sequence = self.endpoint.send_request(msg, peer, loop.time())
        future: asyncio.Future[Message] = loop.create_future()
        self._futures[(peer, sequence)] = future
        # Sent at the end of this loop turn, with every other request the turn makes: they reach
        # the peer back to back and it reads them in one wake-up. Sent one by one, each one woke a
        # UPF agent on its own (bench/api_sessions.py: ~10% of the agents' CPU per session).
        if not self._transmit_scheduled:
            self._transmit_scheduled = True
            loop.call_soon(self._scheduled_transmit)
        try:
            return await future
        finally:
            self._futures.pop((peer, sequence), None)

    async def associate(
        self, peer: Address, *, session_retention: PFCPSessionRetentionInformation | None = None
    ) -> AssociationEstablished:
        """Set up a PFCP association with ``peer``; raises AssociationFailed.
        ``session_retention``: see :meth:`PfcpEndpoint.associate`."""
        loop = self._running_loop()
        # First: a setup already in progress raises here, leaving its waiter registered.
        self.endpoint.associate(peer, loop.time(), session_retention=session_retention)
        future: asyncio.Future[AssociationEstablished] = loop.create_future()
        self._setups[peer] = future
        self._transmit()
        try:
            return await future
        finally:
            self._setups.pop(peer, None)

    def release(self, peer: Address) -> None:
        """Start releasing the association with ``peer`` (an event tells the end)."""
        self.endpoint.release(peer, self._running_loop().time())
        self._transmit()

    def respond(self, request: RequestReceived, response: Message) -> None:
        """Answer a request whose handler returned None."""
        self.endpoint.send_response(request, response, self._running_loop().time())
        self._transmit()

    def reject(self, request: RequestReceived, cause: Cause) -> None:
        """Answer a request with the rejection response of its type."""
        self.endpoint.reject(request, cause, self._running_loop().time())
        self._transmit()

    # -- socket and timer ---------------------------------------------------

    def _read_ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        buffer = self._buffer
        view = memoryview(buffer)
        endpoint = self.endpoint
        receive = endpoint.receive_datagram
        next_event = endpoint.next_event
        dispatch = self._dispatch
        handle_request = self._handle_request
        receive_into = sock.recvfrom_into
        now = self._running_loop().time()
        for _ in range(self.READ_BATCH):
            try:
                size, addr = receive_into(buffer)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP port unreachable for an earlier send
                log.debug("PFCP socket error: %s", exc)
                continue
            if len(addr) != 2:  # IPv6: (host, port, flowinfo, scope_id); an Address is (host, port)
                addr = (addr[0], addr[1])
            receive(bytes(view[:size]), addr, now)
            # One request at a time: its objects die before the next (_drain_events, inlined:
            # requests, the common event, skip _dispatch's type tests).
            while (event := next_event()) is not None:
                if type(event) is RequestReceived:
                    handle_request(event)
                else:
                    dispatch(event)
        self._flush()

    def _transmit(self) -> None:
        self._drain_events()
        self._flush()

    def _scheduled_transmit(self) -> None:
        self._transmit_scheduled = False
        if self._sock is not None:  # closed in the meantime: its requests failed, nothing to send or time
            self._transmit()

    def _drain_events(self) -> None:
        endpoint = self.endpoint
        while (event := endpoint.next_event()) is not None:
            self._dispatch(event)

    def _flush(self) -> None:
        endpoint = self.endpoint
        out = endpoint.datagrams_to_send()
        if out:
            self._send(out)
        deadline = endpoint.get_timer()
        # Re-arm only for an earlier deadline: a timer that fires early finds
        # nothing due and re-arms itself (cancelling on every response is costly).
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._running_loop().call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _send(self, out: list[tuple[bytes, Address]]) -> None:
        sock = self._sock
        if sock is None:
            return
        backlog = self._backlog
        for data, addr in out:
            if backlog:
                self._queue(data, addr)
                continue
            try:
                sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                self._queue(data, addr)
                self._running_loop().add_writer(sock.fileno(), self._write_ready)
            except OSError as exc:  # unreachable peer and the like: retransmission covers it
                log.debug("PFCP send to %s failed: %s", addr, exc)

    def _queue(self, data: bytes, addr: Address) -> None:
        if len(self._backlog) < self.SEND_BACKLOG:
            self._backlog.append((data, addr))
        else:
            self.endpoint.drops[(addr, "send backlog full")] += 1

    def _write_ready(self) -> None:
        sock = self._sock
        backlog = self._backlog
        while sock is not None and backlog:
            data, addr = backlog[0]
            try:
                sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("PFCP send to %s failed: %s", addr, exc)
            backlog.popleft()
        if sock is not None:
            self._running_loop().remove_writer(sock.fileno())

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.endpoint.handle_timer(self._running_loop().time())
        self._transmit()

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, RequestReceived):
            self._handle_request(event)
            return
        if isinstance(event, ResponseReceived | RequestTimedOut):
            future = self._futures.get((event.peer, event.request.sequence))
            if future is not None and not future.done():
                if isinstance(event, ResponseReceived):
                    future.set_result(event.response)
                else:
                    future.set_exception(RequestTimeout(f"no answer from {event.peer} to {event.request!r}"))
        elif isinstance(event, AssociationEstablished | AssociationSetupFailed):
            setup = self._setups.get(event.peer)
            if setup is not None and not setup.done():
                if isinstance(event, AssociationEstablished):
                    setup.set_result(event)
                else:
                    setup.set_exception(AssociationFailed(f"{event.peer}: cause {event.cause}"))
        if self.on_event is not None:
            self.on_event(event)

    def _handle_request(self, event: RequestReceived) -> None:
        msg = event.message
        handler = self.session_handlers.get(msg.seid or 0) if msg.SESSION else None
        handler = handler or self.handler
        if handler is None:
            self.endpoint.reject(event, Cause.SERVICE_NOT_SUPPORTED, self._running_loop().time())
            return
        try:
            result = handler(event)
        except Exception:  # as for async handlers: answer System Failure, keep the node going
            log.exception("PFCP request handler failed for %r", event.message)
            self.endpoint.reject(event, Cause.SYSTEM_FAILURE, self._running_loop().time())
            return
        if isinstance(result, Message):  # the common answer: no awaitable test needed
            self.endpoint.send_response(event, result, self._running_loop().time())
        elif inspect.isawaitable(result):
            if len(self._tasks) >= self.max_pending_handlers:
                if inspect.iscoroutine(result):
                    result.close()  # never run: no "coroutine was never awaited" warning
                self.endpoint.reject(event, Cause.PFCP_ENTITY_IN_CONGESTION, self._running_loop().time())
                return
            task = self._running_loop().create_task(self._answer_later(event, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif result is not None:
            self.endpoint.send_response(event, result, self._running_loop().time())

    async def _answer_later(self, event: RequestReceived, pending: Awaitable[Message | None]) -> None:
        try:
            response = await pending
        except Exception:
            log.exception("PFCP request handler failed for %r", event.message)
            self.reject(event, Cause.SYSTEM_FAILURE)
            return
        if response is not None:
            self.respond(event, response)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop
