"""The control plane's side of the front-end workers: a unix socket that runs the servicers' methods.

Each worker connects once; its frames (:mod:`.codec`) name a method and carry the request's
bytes. The core parses them with the method's own deserializer and runs the servicer method
registered by :func:`control_plane.api.server.add_services` (the same handlers the in-process
server runs), with :class:`CoreContext` standing for grpc's servicer context. Frames ready in
one loop turn leave in one ``transport.writelines``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, cast

import grpc
import grpc.aio

from control_plane.api import auth
from control_plane.api.frontend import codec
from control_plane.api.frontend.codec import End
from control_plane.api.frontend.link import FrameLink
from control_plane.api.provisioning import ProvisioningServicer
from control_plane.api.server import add_services
from control_plane.api.status_service import StatusServicer
from control_plane.services.views import SessionApi

__all__ = ["Aborted", "CoreContext", "CoreServer", "method_handlers"]

log = logging.getLogger("control_plane.api.frontend")

_Handler = Any  # grpc.RpcMethodHandler[Any, Any]: what the generated add_*_to_server functions build


class Aborted(Exception):
    """Raised by :meth:`CoreContext.abort`: the call ends with this status (grpc.aio raises AbortError)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, str | bytes], ...]) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailers = trailers


class CoreContext:
    """What the servicers use of ``grpc.aio.ServicerContext``: abort (control_plane/api/status.py)."""

    __slots__ = ()

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Iterable[tuple[str, str | bytes]] = (),
    ) -> NoReturn:
        raise Aborted(code, details, tuple(trailing_metadata))

    def peer(self) -> str:
        return "api-frontend-worker"


class _Capture:
    """Stands for a grpc.aio.Server while add_services registers: keeps the method handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, _Handler] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass  # the same handlers come through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, _Handler]) -> None:
        for name, handler in handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


def method_handlers(
    api: SessionApi, provisioning: ProvisioningServicer | None, status: StatusServicer | None
) -> dict[str, _Handler]:
    """``/pkg.Service/Method`` -> grpc method handler, as the in-process server registers them."""
    capture = _Capture()
    add_services(cast("grpc.aio.Server", capture), api, provisioning, status)
    for method, handler in capture.handlers.items():
        if handler.request_streaming:
            raise ValueError(f"{method}: client streaming is not forwarded by the front-end workers")
    return capture.handlers


_INTERNAL = grpc.StatusCode.INTERNAL.value[0]
_INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]
_CONTEXT = CoreContext()


class _Credit:
    __slots__ = ("count", "more")

    def __init__(self) -> None:
        self.count = codec.STREAM_WINDOW
        self.more = asyncio.Event()


class _WorkerLink(FrameLink[codec.CoreConnection]):
    """One worker's connection: its frames in, its calls' answers out."""

    def __init__(self, owner: CoreServer) -> None:
        super().__init__(codec.CoreConnection(owner.handlers))
        self._owner = owner
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._credit: dict[int, _Credit] = {}
        self.pid: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._owner.links.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.links.discard(self)
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self._owner.on_lost(self)

    def data_received(self, data: bytes) -> None:
        try:
            events = self._conn.receive_data(data)
        except codec.ProtocolError as error:
            log.error("API worker %s sent a bad frame (%s): dropping its connection", self.pid, error)
            if self._transport is not None:
                self._transport.abort()
            return
        for event in events:
            if isinstance(event, codec.Request):
                handler = self._owner.handlers[event.method]
                if handler.response_streaming:
                    self._credit[event.call_id] = _Credit()
                    coro = self._stream(event, handler)
                else:
                    coro = self._unary(event, handler)
                task = self._loop.create_task(coro)
                self._tasks[event.call_id] = task
                task.add_done_callback(partial(self._forget, event.call_id))
            elif isinstance(event, codec.Cancel):
                cancelled = self._tasks.pop(event.call_id, None)
                if cancelled is not None:
                    cancelled.cancel()
            elif isinstance(event, codec.Ack):
                credit = self._credit.get(event.call_id)
                if credit is not None:
                    credit.count += event.count
                    credit.more.set()
            elif isinstance(event, codec.Ready):
                self.pid = event.pid
                self._owner.on_ready(self, event)
        self._flush_soon()

    def _forget(self, call_id: int, _: object) -> None:
        self._tasks.pop(call_id, None)
        self._credit.pop(call_id, None)

    def _end(self, end: End) -> None:
        try:
            self._conn.send_end(end)
        except codec.LocalProtocolError as error:
            log.error("answer to call %d does not fit a frame: %s", end.call_id, error)
            self._conn.send_end(End(end.call_id, _INTERNAL, f"the answer does not fit the API's frames: {error}"))
        self._flush_soon()

    def _parse(self, request: codec.Request, handler: _Handler) -> object | None:
        try:
            return cast("Callable[[bytes], object]", handler.request_deserializer)(request.payload)
        except Exception as error:  # protobuf's DecodeError, or anything a deserializer raises
            self._end(End(request.call_id, _INVALID, f"the request is not a valid {request.method} message: {error}"))
            return None

    async def _unary(self, request: codec.Request, handler: _Handler) -> None:
        async def answer(message: object) -> End:
            response = await handler.unary_unary(message, _CONTEXT)
            return End(request.call_id, 0, payload=handler.response_serializer(response))

        await self._call(request, handler, answer)

    async def _stream(self, request: codec.Request, handler: _Handler) -> None:
        credit = self._credit[request.call_id]
        serialize = handler.response_serializer

        async def answer(message: object) -> End | None:
            # aclosing: a cancelled call runs the generator's finally now (the feed forgets the watcher).
            async with contextlib.aclosing(handler.unary_stream(message, _CONTEXT)) as responses:
                async for response in responses:
                    while credit.count <= 0:
                        credit.more.clear()
                        await credit.more.wait()
                    credit.count -= 1
                    if not self._conn.send_message(request.call_id, serialize(response)):
                        return None  # the worker cancelled the call: nothing to end
                    self._flush_soon()
            return End(request.call_id, 0)

        await self._call(request, handler, answer)

    async def _call(
        self, request: codec.Request, handler: _Handler, answer: Callable[[object], Awaitable[End | None]]
    ) -> None:
        """Parse the request, run ``answer`` on it as the worker's caller, and end the call with its
        End or with the status its failure maps to."""
        message = self._parse(request, handler)
        if message is None:
            return
        # The worker checked the token; handlers see its name as they would in-process (auth.caller_name).
        auth.set_caller_name(request.caller or None)
        try:
            end = await answer(message)
        except Exception as error:
            end = self._failure(request, error)
        if end is not None:
            self._end(end)

    @staticmethod
    def _failure(request: codec.Request, error: Exception) -> End:
        """The End of a call whose handler raised ``error``."""
        if isinstance(error, Aborted):
            return End(request.call_id, error.code.value[0], error.details, error.trailers)
        if isinstance(error, codec.LocalProtocolError):
            return End(request.call_id, _INTERNAL, f"a message does not fit the API's frames: {error}")
        log.error("%s failed", request.method, exc_info=error)
        return End(request.call_id, _INTERNAL, f"{request.method} failed inside the control plane; see its log")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class CoreServer:
    """Listens on ``path`` (a unix socket, 0600 in a private directory) for the workers' connections."""

    def __init__(
        self,
        handlers: Mapping[str, _Handler],
        path: Path,
        *,
        on_ready: Callable[[codec.Ready], None] | None = None,
        on_lost: Callable[[int | None], None] | None = None,
    ) -> None:
        self.handlers = dict(handlers)
        self.path = path
        self.links: set[_WorkerLink] = set()
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _WorkerLink(self), str(self.path))
        os.chmod(self.path, 0o600)

    def on_ready(self, link: _WorkerLink, ready: codec.Ready) -> None:
        if self._on_ready is not None:
            self._on_ready(ready)

    def on_lost(self, link: _WorkerLink) -> None:
        if self._on_lost is not None:
            self._on_lost(link.pid)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for link in list(self.links):
                link.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
