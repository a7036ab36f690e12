"""The native load generator of bench/api_sessions.py (bench/loadgen/create_load.cc) against a real gRPC server.

The server is grpc's own (a thread-pool server on a unix socket) serving SessionService.Create
with a handler that records what arrived and answers by subscriber: an active session, a failed
one, or INVALID_ARGUMENT. The test checks that every request of a round arrived once, over the
number of connections asked for, and that the round's report counts the answers as the
benchmark must: a failed call and an inactive session are errors, the rest have latencies.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from bench import native_load
from bench.cp_sessions import request
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from tests.harness.control_plane import supi

pytestmark = pytest.mark.skipif(
    not native_load.buildable(), reason="gRPC C++ is not installed (make system-deps installs it)"
)

REFUSED = supi(3)
FAILED = supi(5)


class _Sessions:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def create(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        message = pb.CreateSessionRequest.FromString(raw)
        with self._lock:
            self.seen[message.supi] += 1
        if message.supi == REFUSED:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "supi: refused by the test")
        state = "failed" if message.supi == FAILED else "active"
        ue = "" if message.supi == FAILED else "10.45.0.1"
        return pb.Session(supi=message.supi, state=state, ue_ipv4=ue or None).SerializeToString()


@pytest.fixture
def server(tmp_path: Path) -> Any:
    sessions = _Sessions()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(sessions.create)  # bytes in, bytes out
    grpc_server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("edgecups.v1.SessionService", {"Create": handler})]
    )
    target = f"unix:{tmp_path / 'api.sock'}"
    grpc_server.add_insecure_port(target)
    grpc_server.start()
    yield target, sessions
    grpc_server.stop(None)


@pytest.mark.parametrize("connections", [1, 3])
def test_a_round_sends_every_request_once_and_counts_bad_answers(server: Any, tmp_path: Path, connections: int) -> None:
    target, sessions = server
    client = native_load.NativeClient(target, "unused", clients=8, connections=connections, workdir=tmp_path)
    try:
        client.prepare(first=0, count=40)
        client.start_round()
        result = client.result()
        client.prepare(first=40, count=10)  # a second round on the same connections
        client.start_round()
        second = client.result()
        sockets = [fd for fd in Path(f"/proc/{client.process.pid}/fd").iterdir() if "socket:" in str(fd.readlink())]
    finally:
        client.stop()
    assert client.process.returncode == 0
    assert sessions.seen == Counter({request(n).supi: 1 for n in range(50)})
    assert len(sockets) == connections  # the clients share that many connections, no more
    assert result["errors"] == {"3: supi: refused by the test": 1, "answered 'failed', UE ''": 1}
    assert len(result["latencies"]) == 39  # every answered call, the inactive session included
    assert result["latencies"] == sorted(result["latencies"])
    assert result["wall_s"] > 0 and result["cpu_s"] >= 0
    assert second["errors"] == {} and len(second["latencies"]) == 10
    assert not list(tmp_path.glob("requests-*")) and not list(tmp_path.glob("answers-*"))


def test_refuses_a_target_it_cannot_reach(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="did not connect"):
        native_load.NativeClient(f"unix:{tmp_path / 'nobody.sock'}", "unused", 2, 1, tmp_path, connect_timeout=1)
