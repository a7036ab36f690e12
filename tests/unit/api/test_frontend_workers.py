"""API front-end workers as processes (control_plane/api/frontend): real gRPC on loopback through two
workers to a core in this process, over the fake SessionApi of test_sessions_api."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from control_plane.api.auth import ApiToken, token_sha256
from control_plane.api.client import SessionClient
from control_plane.api.frontend.core import method_handlers
from control_plane.api.frontend.pool import WorkerPool, start_workers, sweep_stale_directories
from control_plane.api.frontend.worker import WorkerSpec
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc
from control_plane.api.generated.edgecups.v1 import status_pb2 as spb
from control_plane.api.generated.edgecups.v1 import status_pb2_grpc as spb_grpc
from control_plane.api.security import ApiSecurity, TlsFiles, secure_channel
from control_plane.config import ConfigError, parse_config
from control_plane.errors import CpError
from control_plane.services.views import ModifyRequest
from tests.harness.tls import Pki, make_pki
from tests.unit.api.test_sessions_api import ERRORS, FULL_REQUEST, FULL_USAGE, InMemorySessionApi

WATCH = "/edgecups.v1.StatusService/Watch"


class Watch:
    """A Watch handler for the core: ``since_id`` events, then waits until cancelled (records that)."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def watch(self, request: spb.WatchRequest, context: Any) -> AsyncIterator[spb.Event]:
        try:
            for n in range(request.since_id):
                yield spb.Event(id=n, kind="session.created")
            if request.replay_only:
                return
            await asyncio.Event().wait()
        finally:
            self.closed.set()


Scenario = Callable[[InMemorySessionApi, WorkerPool, Watch], Awaitable[None]]


def run(scenario: Scenario, *, security: ApiSecurity | None = None, workers: int = 2, port: int = 0) -> None:
    fake, watch = InMemorySessionApi(), Watch()

    async def main() -> None:
        handlers = method_handlers(fake, None, None)
        handlers[WATCH] = grpc.unary_stream_rpc_method_handler(
            watch.watch,
            request_deserializer=spb.WatchRequest.FromString,
            response_serializer=spb.Event.SerializeToString,
        )
        pool = await start_workers(
            workers, handlers, address="127.0.0.1", port=port, security=security or ApiSecurity(tls=None)
        )
        try:
            await scenario(fake, pool, watch)
        finally:
            await pool.stop()
        assert pool.pids() == []

    asyncio.run(main())


def listening_pids(port: int, pids: list[int]) -> set[int]:
    """Which of ``pids`` hold a TCP socket listening on ``port`` (from /proc; gRPC binds IPv4 as v4-mapped IPv6)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rpartition(":")[2], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    holders = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            link = os.readlink(fd)
            if link.startswith("socket:[") and link[8:-1] in inodes:
                holders.add(pid)
    return holders


def test_every_session_call_goes_through_the_workers() -> None:
    async def scenario(fake: InMemorySessionApi, pool: WorkerPool, watch: Watch) -> None:
        assert len(pool.pids()) == 2 and os.getpid() not in pool.pids()
        assert listening_pids(pool.port, pool.pids()) == set(pool.pids())  # one port, both workers
        async with SessionClient(f"127.0.0.1:{pool.port}") as client:
            created = await client.establish(FULL_REQUEST)
            assert created.gnb_address == FULL_REQUEST.gnb_address and created.last_cause == 65
            assert await client.get(FULL_REQUEST.supi, 5) == created
            fake.reports[FULL_REQUEST.supi, 5] = [FULL_USAGE]
            assert await client.usage(FULL_REQUEST.supi, 5) == [FULL_USAGE]
            moved = await client.modify(FULL_REQUEST.supi, 5, ModifyRequest(gnb_teid=7, gnb_address="10.0.0.7"))
            assert (moved.gnb_teid, moved.gnb_address) == (7, "10.0.0.7")
            page = await client.list_page(page_size=10)
            assert [s.cp_seid for s in page.sessions] == [created.cp_seid] and page.next_page_token == ""
            assert (await client.delete(FULL_REQUEST.supi, 5)).cp_seid == created.cp_seid
        assert [name for name, _ in fake.calls] == ["establish", "get", "usage", "modify", "list_sessions", "delete"]

    run(scenario)


@pytest.mark.parametrize("error", ERRORS, ids=[type(e).__name__ for e in ERRORS])
def test_procedure_errors_come_back_as_themselves(error: CpError) -> None:
    async def scenario(fake: InMemorySessionApi, pool: WorkerPool, watch: Watch) -> None:
        fake.fail_with = error
        async with SessionClient(f"127.0.0.1:{pool.port}") as client:
            with pytest.raises(CpError) as raised:
                await client.establish(FULL_REQUEST)
        assert type(raised.value) is type(error)
        assert (raised.value.message, raised.value.field) == (error.message, error.field)
        assert getattr(raised.value, "cause", None) == getattr(error, "cause", None)

    run(scenario, workers=1)


def test_status_details_and_trailers_on_the_wire() -> None:
    async def scenario(fake: InMemorySessionApi, pool: WorkerPool, watch: Watch) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{pool.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await pb_grpc.SessionServiceStub(channel).Get(pb.GetSessionRequest(supi="imsi-00101", pdu_session_id=0))
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert raised.value.details() == "pdu_session_id: 0 is not a PDU Session ID: expected 1..15"
            trailers: Any = raised.value.trailing_metadata()
            assert ("edgecups-field", "pdu_session_id") in list(trailers)
            fake.fail_with = RuntimeError("secret internals")
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await pb_grpc.SessionServiceStub(channel).Get(pb.GetSessionRequest(supi="imsi-00101", pdu_session_id=1))
            assert raised.value.code() == grpc.StatusCode.INTERNAL
            assert "secret" not in (raised.value.details() or "")

    run(scenario)


def test_watch_streams_through_a_worker_and_a_client_cancel_reaches_the_core() -> None:
    async def scenario(fake: InMemorySessionApi, pool: WorkerPool, watch: Watch) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{pool.port}") as channel:
            stub = spb_grpc.StatusServiceStub(channel)
            replay = [e.id async for e in stub.Watch(spb.WatchRequest(since_id=300, replay_only=True))]
            assert replay == list(range(300))  # past the stream window: the worker's ACKs let it through
            watch.closed.clear()
            call = stub.Watch(spb.WatchRequest(since_id=2))
            first, second = await call.read(), await call.read()
            assert isinstance(first, spb.Event) and isinstance(second, spb.Event)
            assert [first.id, second.id] == [0, 1]
            assert not watch.closed.is_set()
            call.cancel()
            await asyncio.wait_for(watch.closed.wait(), 10)  # the core's generator was closed

    run(scenario)


def test_tls_tokens_roles_health_and_reflection_in_the_workers(tmp_path: Path) -> None:
    pki: Pki = make_pki(tmp_path / "pki")
    secrets = {"sm": "session-secret", "view": "viewer-secret"}
    tokens = (
        ApiToken("sm", frozenset({"session"}), token_sha256(secrets["sm"])),
        ApiToken("view", frozenset({"viewer"}), token_sha256(secrets["view"])),
    )
    security = ApiSecurity(tls=TlsFiles(pki.server_cert, pki.server_key, pki.ca_cert), tokens=tokens)

    def channel(token: str | None = None, *, cert: bool = True) -> grpc.aio.Channel:
        target = f"localhost:{pool_port[0]}"
        if not cert:
            return secure_channel(target, ca=pki.ca_cert, token=token)
        return secure_channel(target, ca=pki.ca_cert, cert=pki.client_cert, key=pki.client_key, token=token)

    pool_port = [0]

    async def scenario(fake: InMemorySessionApi, pool: WorkerPool, watch: Watch) -> None:
        pool_port[0] = pool.port
        request = pb.GetSessionRequest(supi="imsi-00101", pdu_session_id=1)
        async with channel() as ch:
            health = health_pb2_grpc.HealthStub(ch)
            answer = await health.Check(health_pb2.HealthCheckRequest(service="edgecups.v1.SessionService"))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            reflect = reflection_pb2_grpc.ServerReflectionStub(ch)
            stream = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            names = {s.name async for answer in stream for s in answer.list_services_response.service}
            assert {"edgecups.v1.SessionService", "edgecups.v1.ProvisioningService", "grpc.health.v1.Health"} <= names
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await pb_grpc.SessionServiceStub(ch).Get(request)
            assert (raised.value.code(), raised.value.details()) == (
                grpc.StatusCode.UNAUTHENTICATED,
                "missing bearer token",
            )
        async with channel("not-a-token") as ch:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await pb_grpc.SessionServiceStub(ch).Get(request)
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        async with channel(secrets["view"]) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await pb_grpc.SessionServiceStub(ch).Create(pb.CreateSessionRequest(supi=FULL_REQUEST.supi))
            assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "needs the role operator or session" in (raised.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await pb_grpc.SessionServiceStub(ch).Get(request)
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND  # through: the viewer may read
        assert fake.calls == [("get", ("imsi-00101", 1))]  # nothing refused reached the core
        async with SessionClient(f"localhost:{pool.port}", channel=channel(secrets["sm"])) as client:
            assert (await client.establish(FULL_REQUEST)).supi == FULL_REQUEST.supi
        async with channel(secrets["sm"], cert=False) as ch:  # mutual TLS: no client certificate, no call
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await pb_grpc.SessionServiceStub(ch).Get(request, timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE

    run(scenario, security=security)


def test_a_killed_worker_is_replaced_and_the_port_keeps_serving() -> None:
    async def scenario(fake: InMemorySessionApi, pool: WorkerPool, watch: Watch) -> None:
        victim, survivor = pool.pids()
        os.kill(victim, signal.SIGKILL)
        for _ in range(200):
            if pool.restarts == 1 and len(pool.pids()) == 2:
                break
            await asyncio.sleep(0.05)
        assert pool.restarts == 1 and survivor in pool.pids() and victim not in pool.pids()
        assert listening_pids(pool.port, pool.pids()) == set(pool.pids())
        async with SessionClient(f"127.0.0.1:{pool.port}") as client:
            for _ in range(4):  # new connections land on either worker: all answered
                assert (await client.establish(FULL_REQUEST)).supi == FULL_REQUEST.supi

    run(scenario)


def test_a_taken_port_stops_start_up_and_leaves_no_worker() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def scenario(fake: InMemorySessionApi, pool: WorkerPool, watch: Watch) -> None:
            raise AssertionError("started on a taken port")

        with pytest.raises(OSError, match=f"127.0.0.1 port {port} is in use"):
            run(scenario, port=port)


def test_a_second_set_of_workers_cannot_share_the_port_silently() -> None:
    async def scenario(fake: InMemorySessionApi, pool: WorkerPool, watch: Watch) -> None:
        with pytest.raises(OSError, match="in use"):
            await start_workers(1, {}, address="127.0.0.1", port=pool.port, security=ApiSecurity(tls=None))

    run(scenario, workers=1)


API: dict[str, object] = {"address": "127.0.0.1", "plaintext": True}
BASE = {"n4": {"address": "127.0.0.1"}, "api": API}


@pytest.mark.parametrize("value", [-1, 33, "2", True, 1.5])
def test_workers_must_be_a_whole_number_0_to_32(value: object) -> None:
    with pytest.raises(ConfigError, match=r"api\.workers: .* 0 to 32"):
        parse_config({**BASE, "api": {**API, "workers": value}})


def test_workers_in_the_configuration() -> None:
    assert parse_config(BASE).api_workers == 0
    assert parse_config({**BASE, "api": {**API, "workers": 32}}).api_workers == 32
    unix = {"address": "unix:/run/edgecups/api.sock", "plaintext": True}
    assert parse_config({**BASE, "api": {**unix, "workers": 1}}).api_workers == 1
    with pytest.raises(ConfigError, match=r"api\.workers: 2 workers cannot share the unix socket"):
        parse_config({**BASE, "api": {**unix, "workers": 2}})


def test_a_worker_without_its_core_exits_at_once(tmp_path: Path) -> None:
    spec = WorkerSpec(core=str(tmp_path / "nobody.sock"), address="127.0.0.1", security=ApiSecurity(tls=None))
    (tmp_path / "worker.json").write_text(spec.to_json())
    command = [sys.executable, "-m", "control_plane.api.frontend.worker", str(tmp_path / "worker.json"), "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert f"cannot reach the core at {tmp_path / 'nobody.sock'}" in done.stderr


def test_the_worker_spec_round_trips(tmp_path: Path) -> None:
    tokens = (ApiToken("ops", frozenset({"operator", "viewer"}), token_sha256("x")),)
    for tls in (None, TlsFiles(Path("/a/cert.pem"), Path("/a/key.pem")), TlsFiles(Path("c"), Path("k"), Path("ca"))):
        spec = WorkerSpec(core="/run/core.sock", address="::1", security=ApiSecurity(tls=tls, tokens=tokens))
        assert WorkerSpec.from_json(spec.to_json()) == spec


def test_directories_left_by_a_killed_control_plane_are_swept(tmp_path: Path) -> None:
    def directory(name: str, *, listening: bool, age: float) -> tuple[Path, socket.socket]:
        path = tmp_path / f"edgecups-api-{name}"
        path.mkdir(mode=0o700)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path / "core.sock"))  # the socket file stays when its process dies
        if listening:
            server.listen()
        else:
            server.close()
        os.utime(path, (time.time() - age, time.time() - age))
        return path, server

    dead, _ = directory("dead", listening=False, age=3600)
    alive, server = directory("alive", listening=True, age=3600)
    young, _ = directory("young", listening=False, age=1)
    other = tmp_path / "something-else"
    other.mkdir()
    os.utime(other, (0, 0))
    try:
        assert sweep_stale_directories(tmp_path) == [dead]
    finally:
        server.close()
    assert not dead.exists() and alive.exists() and young.exists() and other.exists()
