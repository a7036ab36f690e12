"""An API front-end worker process: gRPC in, frames to the control plane's core, answers back.

Run by :class:`control_plane.api.frontend.pool.WorkerPool` as
``python -m control_plane.api.frontend.worker SPEC --port PORT``; SPEC is a JSON file the pool
writes (:class:`WorkerSpec`). The worker connects to the core first, then serves: the API's
address and port (shared with the other workers through SO_REUSEPORT), TLS from the
configuration, the :class:`~control_plane.api.auth.AuthInterceptor` with the configured tokens,
health checking and reflection. Every edgecups.v1 method is a generic handler on bytes: the
request is never parsed here, the answer never re-serialized. Health says SERVING only while
the core is connected; when the core's socket closes (the control plane stopped or died) the
worker stops serving and exits, so it never outlives its control plane. The loop is uvloop's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import grpc.aio
import uvloop

from control_plane.api.auth import ApiToken, AuthInterceptor, caller_name
from control_plane.api.frontend import codec
from control_plane.api.frontend.link import FrameLink
from control_plane.api.generated.edgecups.v1 import provisioning_pb2, sessions_pb2, status_pb2
from control_plane.api.security import ApiSecurity, TlsFiles, add_api_port, add_standard_services
from edge_sites import gc_policy

__all__ = ["WorkerSpec", "edgecups_methods", "main"]

log = logging.getLogger("control_plane.api.frontend")

_CODES = {code.value[0]: code for code in grpc.StatusCode}
#: Generation 0's GC threshold while serving (edge_sites.gc_policy, as in the control plane and the
#: agents): a call's objects die by reference counting; at CPython's 700 a young collection ran
#: every few calls and full ones traversed gRPC's and protobuf's modules again and again.
YOUNG_GC_THRESHOLD = 20_000
_GONE = codec.End(0, grpc.StatusCode.UNAVAILABLE.value[0], "the control plane went away")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker needs: the core's socket, where to listen, TLS files and tokens (hashes only)."""

    core: str
    address: str
    security: ApiSecurity
    log_level: str = "warning"

    def to_json(self) -> str:
        tls = self.security.tls
        return json.dumps(
            {
                "core": self.core,
                "address": self.address,
                "tls": None
                if tls is None
                else {"cert": str(tls.cert), "key": str(tls.key), "client_ca": tls.client_ca and str(tls.client_ca)},
                "tokens": [
                    {"name": t.name, "roles": sorted(t.roles), "sha256": t.sha256} for t in self.security.tokens
                ],
                "log_level": self.log_level,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        raw = json.loads(text)
        tls = raw["tls"]
        files = None
        if tls is not None:
            ca = tls["client_ca"]
            files = TlsFiles(cert=Path(tls["cert"]), key=Path(tls["key"]), client_ca=Path(ca) if ca else None)
        tokens = tuple(ApiToken(t["name"], frozenset(t["roles"]), t["sha256"]) for t in raw["tokens"])
        return cls(raw["core"], raw["address"], ApiSecurity(tls=files, tokens=tokens), raw["log_level"])


def edgecups_methods() -> dict[str, tuple[str, bool]]:
    """``/pkg.Service/Method`` -> (service name, server streaming) for every edgecups.v1 method."""
    methods: dict[str, tuple[str, bool]] = {}
    for module in (sessions_pb2, provisioning_pb2, status_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.client_streaming:
                    raise ValueError(f"{method.full_name}: client streaming is not forwarded")
                methods[f"/{service.full_name}/{method.name}"] = (service.full_name, method.server_streaming)
    return methods


class _Calls:
    __slots__ = ("queues", "waiters")

    def __init__(self) -> None:
        self.waiters: dict[int, asyncio.Future[codec.End]] = {}
        self.queues: dict[int, asyncio.Queue[codec.Message | codec.End]] = {}


class CoreLink(FrameLink[codec.WorkerConnection]):
    """The worker's connection to the core: calls out, answers in, one write per loop turn."""

    def __init__(self) -> None:
        super().__init__(codec.WorkerConnection())
        self._calls = _Calls()
        self.lost: asyncio.Future[None] = self._loop.create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        for call_id, waiter in self._calls.waiters.items():
            if not waiter.done():
                waiter.set_result(codec.End(call_id, _GONE.code, _GONE.details))
        for call_id, queue in self._calls.queues.items():
            queue.put_nowait(codec.End(call_id, _GONE.code, _GONE.details))
        if not self.lost.done():
            self.lost.set_result(None)

    @property
    def connected(self) -> bool:
        return not self.lost.done()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._conn.receive_data(data)
        except codec.ProtocolError as error:
            log.error("the core sent a bad frame (%s): closing", error)
            if self._transport is not None:
                self._transport.abort()
            return
        for event in events:
            if isinstance(event, codec.End):
                waiter = self._calls.waiters.pop(event.call_id, None)
                if waiter is not None:
                    if not waiter.done():
                        waiter.set_result(event)
                    continue
            queue = self._calls.queues.get(event.call_id)
            if queue is not None:
                queue.put_nowait(cast("codec.Message | codec.End", event))

    def ready(self, port: int) -> None:
        self._conn.ready(os.getpid(), port)
        self._flush_soon()

    def _start(self, method: str, payload: bytes) -> int:
        call_id = self._conn.start_call(method, caller_name() or "", payload)
        self._flush_soon()
        return call_id

    async def unary(self, method: str, payload: bytes) -> codec.End:
        if not self.connected:
            return _GONE
        call_id = self._start(method, payload)
        waiter: asyncio.Future[codec.End] = self._loop.create_future()
        self._calls.waiters[call_id] = waiter
        try:
            return await waiter
        finally:
            if self._calls.waiters.pop(call_id, None) is not None:  # cancelled: the client went away
                self._conn.cancel(call_id)
                self._flush_soon()

    async def stream(self, method: str, payload: bytes) -> AsyncGenerator[codec.Message | codec.End, None]:
        if not self.connected:
            yield _GONE
            return
        call_id = self._start(method, payload)
        queue: asyncio.Queue[codec.Message | codec.End] = asyncio.Queue()
        self._calls.queues[call_id] = queue
        ended = False
        try:
            while not ended:
                event = await queue.get()
                ended = isinstance(event, codec.End)
                yield event
                if not ended:
                    self._conn.ack(call_id)  # passed on to gRPC: the core may send one more
                    self._flush_soon()
        finally:
            del self._calls.queues[call_id]
            if not ended:
                self._conn.cancel(call_id)
                self._flush_soon()


async def _abort(context: grpc.aio.ServicerContext[Any, Any], end: codec.End) -> None:
    code = _CODES.get(end.code, grpc.StatusCode.UNKNOWN)
    await context.abort(code, end.details, trailing_metadata=end.trailers)


def _handlers(link: CoreLink) -> list[grpc.GenericRpcHandler[Any, Any]]:
    by_service: dict[str, dict[str, Any]] = {}
    for method, (service, streaming) in edgecups_methods().items():
        name = method.rpartition("/")[2]
        by_service.setdefault(service, {})[name] = (
            grpc.unary_stream_rpc_method_handler(_forward_stream(link, method))
            if streaming
            else grpc.unary_unary_rpc_method_handler(_forward_unary(link, method))
        )  # no (de)serializers: bytes in, bytes out
    return [grpc.method_handlers_generic_handler(service, handlers) for service, handlers in by_service.items()]


def _forward_unary(link: CoreLink, method: str) -> Callable[..., Coroutine[Any, Any, bytes]]:
    async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        try:
            end = await link.unary(method, request)
        except codec.LocalProtocolError as error:
            end = codec.End(0, grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], f"the request is too large: {error}")
        if end.code == 0:
            return end.payload or b""
        await _abort(context, end)
        raise AssertionError("context.abort returned")

    return forward


def _forward_stream(link: CoreLink, method: str) -> Callable[..., AsyncIterator[bytes]]:
    async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
        # aclosing: when gRPC closes this stream (the client went away), the core hears of it now.
        async with contextlib.aclosing(link.stream(method, request)) as events:
            async for event in events:
                if isinstance(event, codec.Message):
                    yield event.payload
                elif event.code != 0:
                    await _abort(context, event)

    return forward


async def serve(spec: WorkerSpec, port: int, stop: asyncio.Event) -> int:
    """Serve until the core goes away (exit status 0) or ``stop`` is set; 1 when it cannot listen."""
    loop = asyncio.get_running_loop()
    _, link = await loop.create_unix_connection(CoreLink, spec.core)
    interceptors = [AuthInterceptor(spec.security.tokens)] if spec.security.tokens else []
    # SO_REUSEPORT (also grpc's default on Linux) lets every worker listen on the same port; the
    # kernel spreads the clients' connections across them.
    server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 1)])
    server.add_generic_rpc_handlers(_handlers(link))
    services = sorted({service for service, _ in edgecups_methods().values()})
    health = await add_standard_services(server, services)
    try:
        bound = add_api_port(server, spec.address, port, spec.security)
    except OSError as error:
        log.error("API worker %d: %s", os.getpid(), error)
        return 1
    await server.start()
    gc_policy.acquire(YOUNG_GC_THRESHOLD)  # after start-up: its freeze takes in what start-up loaded
    link.ready(bound)
    lost: asyncio.Future[Any] = asyncio.ensure_future(link.lost)
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    await asyncio.wait([lost, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    await health.enter_graceful_shutdown()  # NOT_SERVING: without the core, nothing can be answered
    if link.lost.done():
        log.warning("API worker %d: the control plane's core closed its socket; exiting", os.getpid())
    await server.stop(1.0)
    gc_policy.release()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="An edgecups API front-end worker (started by edgecups cp)")
    parser.add_argument("spec", type=Path, help="the JSON file the control plane wrote")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    spec = WorkerSpec.from_json(args.spec.read_text())
    logging.basicConfig(level=spec.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            return await serve(spec, args.port, stop)
        except OSError as error:  # the core's socket is gone already
            log.error("API worker %d: cannot reach the core at %s: %s", os.getpid(), spec.core, error)
            return 1

    # uvloop: a worker is all event loop (gRPC's completion queue, the core's socket). On uvloop it
    # spends ~15% less CPU per forwarded call than on asyncio's own loop (bench/api_sessions.py).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run())


if __name__ == "__main__":
    sys.exit(main())
