"""The worker <-> core frames (control_plane/api/frontend/codec.py): bytes in, events out."""

from __future__ import annotations

import struct

import pytest

from control_plane.api.frontend.codec import (
    MAX_FRAME,
    Ack,
    Cancel,
    CoreConnection,
    End,
    LocalProtocolError,
    Message,
    ProtocolError,
    Ready,
    Request,
    WorkerConnection,
    decode_frames,
    encode,
)

CREATE = "/edgecups.v1.SessionService/Create"
WATCH = "/edgecups.v1.StatusService/Watch"


def pair() -> tuple[WorkerConnection, CoreConnection]:
    return WorkerConnection(), CoreConnection({CREATE, WATCH})


def flush(side: WorkerConnection | CoreConnection) -> bytes:
    return b"".join(side.data_to_send())


def test_request_frame_bytes() -> None:
    frame = encode(Request(7, "/a.B/C", "ops", b"\x08\x01"))
    body = b"\x01" + struct.pack(">I", 7) + b"\x00\x06/a.B/C" + b"\x00\x03ops" + b"\x08\x01"
    assert frame == struct.pack(">I", len(body)) + body
    assert decode_frames(frame) == [Request(7, "/a.B/C", "ops", b"\x08\x01")]


@pytest.mark.parametrize(
    "event",
    [
        Request(1, CREATE, "", b""),
        Request(0xFFFFFFFF, CREATE, "session-client", bytes(range(256))),
        Cancel(3),
        Ack(3, 64),
        Ready(4242, 50051),
        Message(9, b"\x00" * 1000),
        End(9, 0, payload=b""),
        End(9, 0, payload=b"\x0a\x03abc"),
        End(5, 3, "supi: not a SUPI", (("edgecups-field", "supi"),)),
        End(5, 10, "rejected", (("edgecups-field", "x"), ("edgecups-upf-cause", "73"), ("blob-bin", b"\xff\x00"))),
    ],
)
def test_every_event_round_trips(event: Request | Cancel | Ack | Ready | Message | End) -> None:
    assert decode_frames(encode(event)) == [event]


def test_frames_split_anywhere_give_the_same_events() -> None:
    worker, core = pair()
    ids = [worker.start_call(CREATE, "c", bytes([n]) * n) for n in range(1, 6)]
    worker.cancel(ids[4])
    data = flush(worker)
    events = []
    for i in range(len(data)):  # one byte at a time: every split point is a partial frame
        events += core.receive_data(data[i : i + 1])
    assert events == [*(Request(i, CREATE, "c", bytes([i]) * i) for i in ids), Cancel(ids[4])]


def test_several_frames_in_one_read() -> None:
    worker, core = pair()
    worker.ready(10, 5000)
    first = worker.start_call(CREATE, "", b"a")
    second = worker.start_call(WATCH, "", b"b")
    assert core.receive_data(flush(worker)) == [
        Ready(10, 5000),
        Request(first, CREATE, "", b"a"),
        Request(second, WATCH, "", b"b"),
    ]
    assert core.send_message(second, b"e1") and core.send_message(second, b"e2")
    assert core.send_end(End(first, 0, payload=b"answer"))
    assert len(core.data_to_send()) == 3
    assert core.data_to_send() == []


def test_unknown_method_is_answered_unimplemented_by_the_codec() -> None:
    worker, core = pair()
    call = worker.start_call("/edgecups.v1.SessionService/Explode", "ops", b"")
    assert core.receive_data(flush(worker)) == []
    assert worker.receive_data(flush(core)) == [
        End(call, 12, "/edgecups.v1.SessionService/Explode is not served by this control plane")
    ]


def test_oversize_frame_is_refused_before_it_is_buffered() -> None:
    core = CoreConnection({CREATE}, max_frame=1000)
    with pytest.raises(ProtocolError, match="1001 bytes"):
        core.receive_data(struct.pack(">I", 1001))  # the length alone is enough
    with pytest.raises(ProtocolError):
        CoreConnection({CREATE}).receive_data(struct.pack(">I", 0xFFFFFFFF) + b"\x01")


def test_oversize_frames_are_not_sent() -> None:
    with pytest.raises(LocalProtocolError, match="over the limit"):
        WorkerConnection(max_frame=100).start_call(CREATE, "", b"x" * 100)
    with pytest.raises(LocalProtocolError, match="65535"):
        encode(End(1, 13, "d" * 70_000))
    worker, core = pair()
    call = worker.start_call(CREATE, "", b"")
    core.receive_data(flush(worker))
    with pytest.raises(LocalProtocolError):
        core.send_end(End(call, 0, payload=b"x" * MAX_FRAME))
    assert core.is_open(call)  # still open: the caller answers INTERNAL instead
    assert core.send_end(End(call, 13, "too big"))


@pytest.mark.parametrize(
    "body",
    [
        b"\x63" + b"\x00\x00\x00\x01",  # unknown type
        b"\x01" + b"\x00\x00\x00\x01" + b"\x00\x09/a",  # method longer than the frame
        b"\x02" + b"\x00\x00\x00\x01" + b"x",  # CANCEL with a body
        b"\x06" + b"\x00\x00\x00\x01" + b"\x00",  # END without its code
        b"\x06" + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x00\x00\x00junk",  # bytes after the trailers
        b"\x01" + b"\x00\x00\x00\x01" + b"\x00\x02\xff\xfe\x00\x00",  # method not UTF-8
    ],
)
def test_malformed_frames_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_frames(struct.pack(">I", len(body)) + body)


def test_a_frame_too_short_for_its_header() -> None:
    with pytest.raises(ProtocolError):
        decode_frames(struct.pack(">I", 3) + b"abc")
    with pytest.raises(ProtocolError, match="incomplete"):
        decode_frames(encode(Cancel(1))[:-1])


def test_cancel_closes_the_call_and_late_answers_are_dropped() -> None:
    worker, core = pair()
    call = worker.start_call(WATCH, "", b"")
    core.receive_data(flush(worker))
    assert core.send_message(call, b"event")
    crossing = flush(core)
    worker.cancel(call)
    worker.cancel(call)  # twice: one frame
    assert core.receive_data(flush(worker)) == [Cancel(call)]
    assert not core.is_open(call)
    assert not core.send_message(call, b"more")
    assert not core.send_end(End(call, 1))
    assert core.data_to_send() == []
    assert worker.receive_data(crossing) == []  # the message sent before the cancel arrived


def test_acks_and_cancels_of_ended_calls_are_dropped() -> None:
    worker, core = pair()
    call = worker.start_call(WATCH, "", b"")
    core.receive_data(flush(worker))
    core.send_end(End(call, 0))
    assert core.receive_data(encode(Ack(call, 1)) + encode(Cancel(call))) == []


def test_worker_side_events_and_end_closes() -> None:
    worker, core = pair()
    call = worker.start_call(WATCH, "viewer", b"")
    core.receive_data(flush(worker))
    core.send_message(call, b"e1")
    core.send_end(End(call, 8, "fell behind"))
    assert worker.receive_data(flush(core)) == [Message(call, b"e1"), End(call, 8, "fell behind")]
    assert list(worker.open_calls()) == []
    worker.ack(call)  # after the end: nothing to say
    assert worker.data_to_send() == []


def test_a_call_id_used_twice_is_a_protocol_error() -> None:
    core = CoreConnection({CREATE})
    frame = encode(Request(1, CREATE, "", b""))
    core.receive_data(frame)
    with pytest.raises(ProtocolError, match="twice"):
        core.receive_data(frame)


def test_frames_only_the_other_side_sends_are_refused() -> None:
    with pytest.raises(ProtocolError):
        CoreConnection({CREATE}).receive_data(encode(Message(1, b"")))
    with pytest.raises(ProtocolError):
        WorkerConnection().receive_data(encode(Request(1, CREATE, "", b"")))
