"""The frames between API front-end workers and the control plane's core: bytes in, events out.

Sans-I/O (no sockets, no asyncio, no clock), in the manner of h11: each side of one stream
connection is an object fed with the bytes that arrived (``receive_data``) that returns the
events they complete, and that queues the bytes to send (``data_to_send``).

Theory of operation:

* A frame is ``u32 length`` (of what follows, big-endian), ``u8 type``, ``u32 call id``, and the
  type's fields. A frame longer than ``max_frame`` is refused (:class:`ProtocolError`) before it
  is buffered: a broken or hostile peer cannot make the other side hold gigabytes.
* The worker opens a call with REQUEST (method ``/pkg.Service/Method``, the caller's token name,
  the request's protobuf bytes, untouched), may CANCEL it (its client went away), and gives back
  credit with ACK for each streamed message it passed on (flow control: the core sends at most
  :data:`STREAM_WINDOW` messages ahead, so a slow client leaves events in the core's bounded feed,
  which reports an overflow as the in-process server would).
* The core answers with MESSAGE frames (server streaming) and one END: the gRPC status code, its
  details, the trailing metadata, and for a unary success the response's bytes.
* READY (call id 0) tells the core that a worker's gRPC server is serving, with its pid and port.
* A REQUEST for a method the core does not serve is answered UNIMPLEMENTED by the codec itself;
  frames for a call that is over (cancelled, ended) are dropped: the two sides cross in flight.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

__all__ = [
    "MAX_FRAME",
    "STREAM_WINDOW",
    "Ack",
    "Cancel",
    "CoreConnection",
    "End",
    "Event",
    "FrameType",
    "LocalProtocolError",
    "Message",
    "ProtocolError",
    "Ready",
    "Request",
    "WorkerConnection",
    "decode_frames",
    "encode",
]

#: The longest frame either side accepts: gRPC's default message limit (4 MiB) and room for the header.
MAX_FRAME: Final = 4 * 1024 * 1024 + 64 * 1024
#: Streamed messages the core sends ahead of the worker's ACKs.
STREAM_WINDOW: Final = 64
#: grpc.StatusCode values (the codec does not import grpc): OK, UNIMPLEMENTED.
OK: Final = 0
UNIMPLEMENTED: Final = 12

_LENGTH = struct.Struct(">I")
_HEAD = struct.Struct(">IBI")  # length, type, call id
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_READY = struct.Struct(">IH")


class FrameType(IntEnum):
    REQUEST = 1
    CANCEL = 2
    ACK = 3
    READY = 4
    MESSAGE = 5
    END = 6


class ProtocolError(Exception):
    """The peer sent bytes that are not a frame of this protocol (or one too long): drop the connection."""


class LocalProtocolError(ValueError):
    """We tried to send something the protocol cannot carry (a field or frame too long)."""


@dataclass(frozen=True, slots=True)
class Request:
    call_id: int
    method: str
    caller: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Cancel:
    call_id: int


@dataclass(frozen=True, slots=True)
class Ack:
    call_id: int
    count: int


@dataclass(frozen=True, slots=True)
class Ready:
    pid: int
    port: int
    call_id: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    call_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class End:
    """The end of a call: a grpc.StatusCode value, details, trailers; ``payload`` a unary answer's bytes."""

    call_id: int
    code: int
    details: str = ""
    trailers: tuple[tuple[str, str | bytes], ...] = ()
    payload: bytes | None = None


Event = Request | Cancel | Ack | Ready | Message | End


def _text(value: str | bytes, what: str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    if len(data) > 0xFFFF:
        raise LocalProtocolError(f"{what} is {len(data)} bytes; a frame carries at most 65535")
    return _U16.pack(len(data)) + data


def encode(event: Event, *, max_frame: int = MAX_FRAME) -> bytes:
    """One frame; raises :class:`LocalProtocolError` for what does not fit (the caller answers INTERNAL)."""
    if isinstance(event, Request):
        kind, body = FrameType.REQUEST, [_text(event.method, "method"), _text(event.caller, "caller"), event.payload]
    elif isinstance(event, Message):
        kind, body = FrameType.MESSAGE, [event.payload]
    elif isinstance(event, End):
        parts = [bytes((event.payload is not None, event.code)), _text(event.details, "details")]
        if len(event.trailers) > 0xFFFF:
            raise LocalProtocolError("too many trailers")
        parts.append(_U16.pack(len(event.trailers)))
        for key, value in event.trailers:
            parts += [_text(key, "a trailer key"), _text(value, f"trailer {key}")]
        if event.payload is not None:
            parts.append(event.payload)
        kind, body = FrameType.END, parts
    elif isinstance(event, Cancel):
        kind, body = FrameType.CANCEL, []
    elif isinstance(event, Ack):
        kind, body = FrameType.ACK, [_U32.pack(event.count)]
    else:
        kind, body = FrameType.READY, [_READY.pack(event.pid, event.port)]
    size = 5 + sum(len(part) for part in body)
    if size > max_frame:
        raise LocalProtocolError(f"a {kind.name} frame of {size} bytes is over the limit of {max_frame}")
    return b"".join([_HEAD.pack(size, kind, event.call_id), *body])


class _Reader:
    """Splits a byte stream into frames (bodies after the length) without copying more than once."""

    __slots__ = ("_buffer", "_max")

    def __init__(self, max_frame: int) -> None:
        self._buffer = bytearray()
        self._max = max_frame

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def frames(self, data: bytes) -> list[memoryview]:
        buffer = self._buffer
        buffer += data
        out: list[memoryview] = []
        offset, end = 0, len(buffer)
        # Each frame is copied out through a view (slicing the bytearray would copy it twice); the
        # view is released before the consumed bytes are deleted, which an exported buffer forbids.
        with memoryview(buffer) as view:
            while end - offset >= 4:
                (size,) = _LENGTH.unpack_from(view, offset)
                if size > self._max or size < 5:
                    raise ProtocolError(f"a frame of {size} bytes (allowed: 5..{self._max})")
                if end - offset - 4 < size:
                    break
                out.append(memoryview(bytes(view[offset + 4 : offset + 4 + size])))
                offset += 4 + size
        del buffer[:offset]
        return out


def _field(body: memoryview, at: int) -> tuple[bytes, int]:
    if at + 2 > len(body):
        raise ProtocolError("a frame ends inside a field's length")
    (size,) = _U16.unpack_from(body, at)
    if at + 2 + size > len(body):
        raise ProtocolError("a frame ends inside a field")
    return bytes(body[at + 2 : at + 2 + size]), at + 2 + size


def _decode(body: memoryview) -> Event:
    kind, call_id = body[0], _U32.unpack_from(body, 1)[0]
    try:
        if kind == FrameType.REQUEST:
            method, at = _field(body, 5)
            caller, at = _field(body, at)
            return Request(call_id, method.decode(), caller.decode(), bytes(body[at:]))
        if kind == FrameType.MESSAGE:
            return Message(call_id, bytes(body[5:]))
        if kind == FrameType.END:
            if len(body) < 7:
                raise ProtocolError("an END frame without its status")
            has_payload, code = body[5], body[6]
            details, at = _field(body, 7)
            if at + 2 > len(body):
                raise ProtocolError("an END frame ends before its trailer count")
            (count,) = _U16.unpack_from(body, at)
            at += 2
            trailers: list[tuple[str, str | bytes]] = []
            for _ in range(count):
                key, at = _field(body, at)
                value, at = _field(body, at)
                name = key.decode()
                trailers.append((name, value if name.endswith("-bin") else value.decode()))
            payload = bytes(body[at:]) if has_payload else None
            if not has_payload and at != len(body):
                raise ProtocolError("bytes after an END frame's trailers")
            return End(call_id, code, details.decode(), tuple(trailers), payload)
        if kind == FrameType.CANCEL and len(body) == 5:
            return Cancel(call_id)
        if kind == FrameType.ACK and len(body) == 9:
            return Ack(call_id, _U32.unpack_from(body, 5)[0])
        if kind == FrameType.READY and len(body) == 5 + _READY.size:
            pid, port = _READY.unpack_from(body, 5)
            return Ready(pid, port, call_id)
    except UnicodeDecodeError as error:
        raise ProtocolError(f"a text field is not UTF-8: {error}") from None
    raise ProtocolError(f"frame type {kind} with {len(body)} bytes is not a frame of this protocol")


def decode_frames(data: bytes, *, max_frame: int = MAX_FRAME) -> list[Event]:
    """Every frame of ``data`` (whole frames only; for tests and tools)."""
    reader = _Reader(max_frame)
    events = [_decode(body) for body in reader.frames(data)]
    if reader.pending:
        raise ProtocolError(f"{reader.pending} bytes of an incomplete frame")
    return events


class _Side:
    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self.reader = _Reader(max_frame)
        self.outgoing: list[bytes] = []

    def data_to_send(self) -> list[bytes]:
        """The frames queued since the last call (for one ``transport.writelines``)."""
        out, self.outgoing = self.outgoing, []
        return out


class CoreConnection(_Side):
    """The core's side of one worker's connection; ``methods`` are the ones the core serves."""

    def __init__(self, methods: Collection[str], *, max_frame: int = MAX_FRAME) -> None:
        super().__init__(max_frame)
        self._methods = frozenset(methods)
        self._open: set[int] = set()

    def receive_data(self, data: bytes) -> list[Event]:
        """Requests for served methods, Cancels and Acks of open calls, Ready; raises ProtocolError."""
        events: list[Event] = []
        for body in self.reader.frames(data):
            event = _decode(body)
            if isinstance(event, Request):
                if event.call_id in self._open:
                    raise ProtocolError(f"call {event.call_id} opened twice")
                if event.method not in self._methods:
                    details = f"{event.method} is not served by this control plane"
                    self.outgoing.append(encode(End(event.call_id, UNIMPLEMENTED, details), max_frame=self.max_frame))
                    continue
                self._open.add(event.call_id)
            elif isinstance(event, Cancel | Ack):
                if event.call_id not in self._open:
                    continue  # the call ended while this was on its way
                if isinstance(event, Cancel):
                    self._open.discard(event.call_id)
            elif not isinstance(event, Ready):
                raise ProtocolError(f"a worker sent {type(event).__name__}, which only the core sends")
            events.append(event)
        return events

    def is_open(self, call_id: int) -> bool:
        return call_id in self._open

    def send_message(self, call_id: int, payload: bytes) -> bool:
        """Queue a streamed message; False when the call is over (cancelled by the worker)."""
        if call_id not in self._open:
            return False
        self.outgoing.append(encode(Message(call_id, payload), max_frame=self.max_frame))
        return True

    def send_end(self, end: End) -> bool:
        """Queue a call's end; False when the call is already over. LocalProtocolError leaves it open."""
        if end.call_id not in self._open:
            return False
        frame = encode(end, max_frame=self.max_frame)
        self._open.discard(end.call_id)
        self.outgoing.append(frame)
        return True


class WorkerConnection(_Side):
    """A worker's side of its connection to the core."""

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        super().__init__(max_frame)
        self._next = 1
        self._open: set[int] = set()

    def ready(self, pid: int, port: int) -> None:
        self.outgoing.append(encode(Ready(pid, port)))

    def start_call(self, method: str, caller: str, payload: bytes) -> int:
        """Queue a REQUEST; its call id. LocalProtocolError for a request over the frame limit."""
        call_id = self._next
        self.outgoing.append(encode(Request(call_id, method, caller, payload), max_frame=self.max_frame))
        self._next = call_id + 1 if call_id < 0xFFFFFFFF else 1
        self._open.add(call_id)
        return call_id

    def cancel(self, call_id: int) -> None:
        if call_id in self._open:
            self._open.discard(call_id)
            self.outgoing.append(encode(Cancel(call_id)))

    def ack(self, call_id: int, count: int = 1) -> None:
        if call_id in self._open:
            self.outgoing.append(encode(Ack(call_id, count)))

    def receive_data(self, data: bytes) -> list[Event]:
        """Messages and Ends of open calls (others dropped); raises ProtocolError."""
        events: list[Event] = []
        for body in self.reader.frames(data):
            event = _decode(body)
            if not isinstance(event, Message | End):
                raise ProtocolError(f"the core sent {type(event).__name__}, which only workers send")
            if event.call_id not in self._open:
                continue  # cancelled here while the answer was on its way
            if isinstance(event, End):
                self._open.discard(event.call_id)
            events.append(event)
        return events

    def open_calls(self) -> Iterable[int]:
        return tuple(self._open)
