"""``edgecups cp`` with ``api: {workers: 2}``: the API through front-end worker processes, as run.

A real control plane process with two UPF agents in network namespaces, TLS and bearer tokens
from its configuration file; every call goes through the workers (the clients run in the cp
namespace, where the API listens on loopback). Then the workers' lifecycle: one killed is
replaced, and killing the control plane leaves none behind.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from control_plane.api.client import ApiClient, ApiCredentials, SessionClient
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc
from control_plane.api.security import new_token, token_entry
from control_plane.errors import NotFound
from control_plane.provisioning.objects import Resource
from control_plane.services.views import ModifyRequest, SessionRequest
from tests.harness.control_plane import DNN, SNSSAI, CpProcess, cp_n4, cp_network, gnb_n3, provision, supi, tai
from tests.harness.netns import needs_netns, run_in_netns
from tests.harness.tls import Pki, make_pki

pytestmark = [pytest.mark.needs_root]

PORT = 50051  # the cp namespace is the test's own: nothing else listens there
TARGET = f"localhost:{PORT}"
T = TypeVar("T")


def write_config(workdir: Path, url: str, pki: Pki, tokens: dict[str, str]) -> Path:
    (workdir / "tokens.yaml").write_text(
        yaml.safe_dump([token_entry(role, [role], token) for role, token in tokens.items()])
    )
    config = {
        "node_id": str(cp_n4(0).ip),
        "n4": {"address": str(cp_n4(0).ip)},
        "database": {"url": url},
        "api": {
            "address": "127.0.0.1",
            "port": PORT,
            "tls": {"cert": str(pki.server_cert), "key": str(pki.server_key), "client_ca": str(pki.ca_cert)},
            "tokens_file": "tokens.yaml",
            "workers": 2,
        },
        "timers": {"t1": 0.5, "n1": 2, "heartbeat_interval": 1, "reassociate_interval": 0.5},
        "log_level": "info",
    }
    path = workdir / "cp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def workers_of(pid: int) -> set[int]:
    """The front-end worker processes whose parent is ``pid`` (zombies not counted)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z" and b"control_plane.api.frontend.worker" in cmdline:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def credentials(pki: Pki, token: str | None) -> ApiCredentials:
    return ApiCredentials(ca=pki.ca_cert, cert=pki.client_cert, key=pki.client_key, token=token)


def request(n: int, i: int = 0) -> SessionRequest:
    return SessionRequest(
        supi=supi(n), dnn=DNN, snssai=SNSSAI, tai=tai(i), gnb_teid=0x1000 + n, gnb_address=str(gnb_n3(i).ip)
    )


async def serving(pki: Pki) -> bool:
    try:
        async with ApiClient(TARGET, credentials=credentials(pki, None)) as client:
            stub = health_pb2_grpc.HealthStub(client._channel)
            answer = await stub.Check(health_pb2.HealthCheckRequest(service="edgecups.v1.SessionService"), timeout=2)
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.aio.AioRpcError:
        return False


async def upfs_up(pki: Pki, token: str) -> bool:
    async with ApiClient(TARGET, credentials=credentials(pki, token)) as client:
        status = await client.status.status()
        return len(status.upfs) == 2 and all(upf.health == "up" for upf in status.upfs)


async def every_call(pki: Pki, tokens: dict[str, str]) -> None:
    async with ApiClient(TARGET, credentials=credentials(pki, tokens["operator"])) as operator:
        changes = await operator.provisioning.apply(
            [Resource("Site", "edge9", {"kind": "edge", "region": "north", "tais": ["001-01-000009"]})]
        )
        assert [(c.kind, c.name, c.action) for c in changes] == [("Site", "edge9", "created")]
        assert (await operator.provisioning.get("Site", "edge9")).name == "edge9"
    async with ApiClient(TARGET, credentials=credentials(pki, tokens["viewer"])) as viewer:
        events = viewer.status.watch(kinds=["session"])
        first_event = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.5)  # the Watch is open in the core before anything happens
        async with SessionClient(TARGET, credentials=credentials(pki, tokens["session"])) as sessions:
            created = await sessions.establish(request(0, 0))
            assert created.state == "active" and created.site == "edge0" and created.up_seid is not None
            assert (await sessions.get(supi(0), 1)).cp_seid == created.cp_seid
            moved = await sessions.modify(supi(0), 1, ModifyRequest(gnb_teid=0x9999, gnb_address=str(gnb_n3(0).ip)))
            assert moved.gnb_teid == 0x9999
            assert await sessions.usage(supi(0), 1) == []
            page = await sessions.list_page(page_size=10)
            assert [s.cp_seid for s in page.sessions] == [created.cp_seid]
            second = await sessions.establish(request(1, 1))
            assert (await sessions.delete(supi(1), 1)).cp_seid == second.cp_seid
            with pytest.raises(NotFound):
                await sessions.get(supi(1), 1)
        event = await asyncio.wait_for(first_event, 30)
        assert (event.kind, event.supi) == ("session.created", supi(0))
        seen = [await asyncio.wait_for(anext(events), 30) for _ in range(3)]
        assert [(e.kind, e.supi) for e in seen] == [
            ("session.modified", supi(0)),
            ("session.created", supi(1)),
            ("session.deleted", supi(1)),
        ]
        await events.aclose()
        # A viewer may read but not create; no token, or one the API does not know: not even that.
        stub: Any = pb_grpc.SessionServiceStub(viewer._channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Create(pb.CreateSessionRequest(supi=supi(2), dnn=DNN))
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for token in (None, "not-a-token"):
        async with ApiClient(TARGET, credentials=credentials(pki, token)) as anonymous:
            stub = pb_grpc.SessionServiceStub(anonymous._channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.Get(pb.GetSessionRequest(supi=supi(0), pdu_session_id=1))
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def creates(pki: Pki, token: str, first: int, count: int) -> None:
    for n in range(first, first + count):  # a channel each: new connections land on either worker
        async with SessionClient(TARGET, credentials=credentials(pki, token)) as client:
            assert (await client.establish(request(n, n % 2))).state == "active"


def _complete(work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    return asyncio.run(work(*args))


class CpClients:
    """A process in the cp namespace that runs the test's API calls (``clients(work, *args)``).

    Not threads of pytest's process: gRPC's threads keep the network namespace of the thread
    that made them, and an earlier test in the same process (the e2e suite's API calls on the
    host's loopback) may have made them in the host's, where this test's "localhost" is another
    host (its calls then found nobody, now and then, in full runs)."""

    def __init__(self, ns: str) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        # The process starts in the thread that submits first: one inside the namespace.
        run_in_netns(ns, lambda: self._pool.submit(int).result(60))

    def __call__(self, work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return self._pool.submit(_complete, work, *args).result(120)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


@needs_netns
def test_the_api_through_two_workers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    provision(url, 2, subscribers=12)
    pki = make_pki(tmp_path / "pki")
    tokens = {role: new_token()[0] for role in ("operator", "session", "viewer")}
    with cp_network(tmp_path, 2) as net:
        ns = net.ns("cp")

        in_cp = CpClients(ns)
        cp = CpProcess(ns, tmp_path, write_config(tmp_path, url, pki, tokens))
        workers: set[int] = set()
        private: Path | None = None
        try:
            wait(lambda: "front-end workers" in cp.log() or cp.process.poll() is not None, "the API up", 60)
            assert cp.process.poll() is None, cp.log()
            workers = workers_of(cp.process.pid)
            assert len(workers) == 2, cp.log()
            # The workers' private directory (spec and core socket): a killed CP cannot remove it.
            private = Path(Path(f"/proc/{min(workers)}/cmdline").read_bytes().split(b"\0")[3].decode()).parent
            assert private.stat().st_mode & 0o777 == 0o700 and (private / "core.sock").is_socket()
            assert in_cp(serving, pki)
            wait(lambda: bool(in_cp(upfs_up, pki, tokens["viewer"])), "both UPFs associated")
            in_cp(every_call, pki, tokens)

            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            wait(lambda: len(workers_of(cp.process.pid) - {victim}) == 2, "a worker in place of the killed one")
            assert f"pid {victim}) exited with status -9" in cp.log()
            workers = workers_of(cp.process.pid)
            wait(lambda: bool(in_cp(serving, pki)), "the API serving again")
            in_cp(creates, pki, tokens["session"], 2, 6)

            os.kill(cp.process.pid, signal.SIGKILL)  # the control plane alone, not its process group
            cp.process.wait(10)
            wait(lambda: not any(alive(pid) for pid in workers), "the workers gone with their control plane", 20)
        finally:
            in_cp.close()
            for pid in workers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            cp.stop()
            if private is not None:
                shutil.rmtree(private, ignore_errors=True)
