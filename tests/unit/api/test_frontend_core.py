"""The core's side of the front-end (control_plane/api/frontend/core.py), driven over its unix socket
by a bare WorkerConnection: what a worker would send, byte for byte, and what comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from control_plane.api.frontend import codec
from control_plane.api.frontend.core import CoreServer, method_handlers
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.api.generated.edgecups.v1 import status_pb2 as spb
from control_plane.api.status import FIELD_KEY
from tests.unit.api.test_sessions_api import FULL_REQUEST, InMemorySessionApi

CREATE = "/edgecups.v1.SessionService/Create"
GET = "/edgecups.v1.SessionService/Get"
COUNT = "/test.Stream/Count"


class Worker:
    """A worker's end of the core's socket: send events, read the events that come back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = codec.WorkerConnection()
        self.pending: list[codec.Event] = []

    def flush(self) -> None:
        self.writer.writelines(self.conn.data_to_send())

    def call(self, method: str, payload: bytes, caller: str = "") -> int:
        call_id = self.conn.start_call(method, caller, payload)
        self.flush()
        return call_id

    async def next(self) -> codec.Event:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data, "the core closed the connection"
            self.pending += self.conn.receive_data(data)
        return self.pending.pop(0)

    async def quiet(self) -> bool:
        """Whether nothing arrives within a few loop turns of the core running (it has nothing to send)."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), 0.2)
        except TimeoutError:
            return not self.pending
        self.pending += self.conn.receive_data(data)
        return False


class Counter:
    """A server-streaming handler that yields as fast as it may and records how it ended."""

    def __init__(self) -> None:
        self.sent = 0
        self.closed = asyncio.Event()

    async def count(self, request: spb.WatchRequest, context: Any) -> AsyncIterator[spb.Event]:
        try:
            for n in range(request.since_id):
                self.sent += 1
                yield spb.Event(id=n)
            if "fail" in request.kinds:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "fell behind", trailing_metadata=(("k", "v"),))
        finally:
            self.closed.set()


def run(scenario: Callable[[Worker, InMemorySessionApi, Counter], Awaitable[None]], tmp_path: Path) -> None:
    fake, counter = InMemorySessionApi(), Counter()

    async def main() -> None:
        handlers = method_handlers(fake, None, None)
        handlers[COUNT] = grpc.unary_stream_rpc_method_handler(
            counter.count,
            request_deserializer=spb.WatchRequest.FromString,
            response_serializer=spb.Event.SerializeToString,
        )
        core = CoreServer(handlers, tmp_path / "core.sock")
        await core.start()
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "core.sock"))
        try:
            await scenario(Worker(reader, writer), fake, counter)
        finally:
            writer.close()
            await core.close()

    asyncio.run(main())


def test_the_socket_is_for_this_user_only(tmp_path: Path) -> None:
    async def scenario(worker: Worker, fake: InMemorySessionApi, counter: Counter) -> None:
        assert (tmp_path / "core.sock").stat().st_mode & 0o777 == 0o600

    run(scenario, tmp_path)


def test_a_unary_call_runs_the_servicer_and_answers_its_bytes(tmp_path: Path) -> None:
    async def scenario(worker: Worker, fake: InMemorySessionApi, counter: Counter) -> None:
        request = pb.CreateSessionRequest(
            supi=FULL_REQUEST.supi, dnn="internet", snssai="1-000001", tai="001-01-000001", pdu_session_id=5
        )
        call = worker.call(CREATE, request.SerializeToString(), caller="ops")
        end = await worker.next()
        assert isinstance(end, codec.End) and (end.call_id, end.code) == (call, 0)
        assert end.payload is not None
        answer = pb.Session.FromString(end.payload)
        assert (answer.supi, answer.pdu_session_id, answer.state) == (FULL_REQUEST.supi, 5, "active")
        assert fake.calls[0][0] == "establish"

    run(scenario, tmp_path)


def test_errors_come_back_with_their_code_details_and_field(tmp_path: Path) -> None:
    async def scenario(worker: Worker, fake: InMemorySessionApi, counter: Counter) -> None:
        bad = worker.call(GET, pb.GetSessionRequest(supi="nope", pdu_session_id=1).SerializeToString())
        end = await worker.next()
        assert isinstance(end, codec.End) and end.call_id == bad
        assert end.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert end.details.startswith("supi: 'nope' is not a SUPI") and end.trailers == ((FIELD_KEY, "supi"),)
        assert end.payload is None
        fake.fail_with = RuntimeError("secret internals")
        worker.call(GET, pb.GetSessionRequest(supi=FULL_REQUEST.supi, pdu_session_id=1).SerializeToString())
        end = await worker.next()
        assert isinstance(end, codec.End) and end.code == grpc.StatusCode.INTERNAL.value[0]
        assert "secret" not in end.details and "Get failed" in end.details

    run(scenario, tmp_path)


def test_bytes_that_are_not_the_request_message_are_invalid_argument(tmp_path: Path) -> None:
    async def scenario(worker: Worker, fake: InMemorySessionApi, counter: Counter) -> None:
        worker.call(GET, b"\xff\xff\xff")
        end = await worker.next()
        assert isinstance(end, codec.End) and end.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "not a valid /edgecups.v1.SessionService/Get message" in end.details
        assert fake.calls == []

    run(scenario, tmp_path)


def test_an_unknown_method_is_unimplemented(tmp_path: Path) -> None:
    async def scenario(worker: Worker, fake: InMemorySessionApi, counter: Counter) -> None:
        worker.call("/edgecups.v1.ProvisioningService/Apply", b"")  # no provisioning behind this core
        end = await worker.next()
        assert isinstance(end, codec.End) and end.code == grpc.StatusCode.UNIMPLEMENTED.value[0]

    run(scenario, tmp_path)


def test_a_stream_waits_for_credit_and_ends_ok(tmp_path: Path) -> None:
    total = codec.STREAM_WINDOW + 10

    async def scenario(worker: Worker, fake: InMemorySessionApi, counter: Counter) -> None:
        call = worker.call(COUNT, spb.WatchRequest(since_id=total).SerializeToString())
        got = [await worker.next() for _ in range(codec.STREAM_WINDOW)]
        assert [spb.Event.FromString(m.payload).id for m in got if isinstance(m, codec.Message)] == list(
            range(codec.STREAM_WINDOW)
        )
        assert await worker.quiet()  # no ACK yet: the core holds the rest back
        worker.conn.ack(call, 10)
        worker.flush()
        rest = [await worker.next() for _ in range(11)]
        assert [spb.Event.FromString(m.payload).id for m in rest[:10] if isinstance(m, codec.Message)] == list(
            range(codec.STREAM_WINDOW, total)
        )
        assert rest[10] == codec.End(call, 0)
        assert counter.closed.is_set()

    run(scenario, tmp_path)


def test_an_abort_inside_a_stream_ends_it_with_the_status(tmp_path: Path) -> None:
    async def scenario(worker: Worker, fake: InMemorySessionApi, counter: Counter) -> None:
        call = worker.call(COUNT, spb.WatchRequest(since_id=1, kinds=["fail"]).SerializeToString())
        assert isinstance(await worker.next(), codec.Message)
        code = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert await worker.next() == codec.End(call, code, "fell behind", (("k", "v"),))

    run(scenario, tmp_path)


def test_a_cancel_closes_the_servicer_generator(tmp_path: Path) -> None:
    async def scenario(worker: Worker, fake: InMemorySessionApi, counter: Counter) -> None:
        call = worker.call(COUNT, spb.WatchRequest(since_id=10 * codec.STREAM_WINDOW).SerializeToString())
        await worker.next()
        worker.conn.cancel(call)
        worker.flush()
        await asyncio.wait_for(counter.closed.wait(), 10)  # its finally ran: a feed would forget the watcher
        assert counter.sent == codec.STREAM_WINDOW + 1  # stopped at the window, not run to the end

    run(scenario, tmp_path)


def test_a_bad_frame_drops_the_connection_and_its_calls(tmp_path: Path) -> None:
    async def scenario(worker: Worker, fake: InMemorySessionApi, counter: Counter) -> None:
        worker.call(COUNT, spb.WatchRequest(since_id=10 * codec.STREAM_WINDOW).SerializeToString())
        await worker.next()
        worker.writer.write(b"\xff\xff\xff\xff")  # a frame length over the limit
        await asyncio.wait_for(counter.closed.wait(), 10)
        while await asyncio.wait_for(worker.reader.read(65536), 10):
            pass  # what the core wrote before the bad frame, then EOF: the connection is closed

    run(scenario, tmp_path)
