"""Message base class, the message registry and the header (TS 29.244 §7.2.2).

A message is a frozen dataclass declared like a grouped IE (fields made with
:func:`~pfcp.ie.base.ie_field`), plus the header values it carries: sequence
number, SEID (present when the S flag is set) and message priority (MP flag).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform

from .. import _walk
from ..constants import PFCP_VERSION, Cause, MessageType
from ..errors import DecodeError, LocalProtocolError
from ..ie.base import _Group, install_fast_init

__all__ = [
    "MESSAGE_CLASSES",
    "GenericMessage",
    "Message",
    "UnsupportedVersion",
    "decode",
    "decode_all",
    "encode",
    "encode_all",
    "message",
]

_SEID_SEQ = struct.Struct(">QI")
_SEQ = struct.Struct(">I")
_HDR = struct.Struct(">BBH")
_MAX_SEQ = 0xFFFFFF

#: Message type number -> class.
MESSAGE_CLASSES: dict[int, type[Message]] = {}

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Message(_Group):
    """Base of every PFCP message.

    ``sequence`` is the 24-bit Sequence Number; ``seid`` the SEID of the header,
    None when the S flag is clear (node messages, §7.2.2.2); ``priority`` the
    Message Priority (0 highest .. 15), None when the MP flag is clear (§7.2.2.3).
    """

    TYPE: ClassVar[MessageType]
    #: True for session-related messages, whose header carries a SEID (§7.2.2.3).
    SESSION: ClassVar[bool] = False
    #: True for requests; False for responses.
    REQUEST: ClassVar[bool] = True

    sequence: int = 0
    seid: int | None = None
    priority: int | None = None

    @property
    def message_type(self) -> int:
        """The message type number on the wire."""
        return self.TYPE

    def with_sequence(self, sequence: int) -> Self:
        """This message with another sequence number (cheaper than ``dataclasses.replace``,
        which rebuilds every field; the result is as frozen as the original)."""
        copy = object.__new__(type(self))
        values = dict(self.__dict__)
        values["sequence"] = sequence
        object.__setattr__(copy, "__dict__", values)
        return copy

    def _encode_body(self) -> bytes:
        return self._encode_fields()


@dataclass_transform(frozen_default=True, kw_only_default=True)
def message(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen slotted keyword-only dataclass and register its ``TYPE``."""
    made: Any = dataclass(frozen=True, kw_only=True)(cls)
    install_fast_init(made)
    made._build_schema()
    if made.TYPE in MESSAGE_CLASSES:
        raise TypeError(f"message type {made.TYPE} registered twice")
    MESSAGE_CLASSES[made.TYPE] = made
    return made  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class GenericMessage(Message):
    """A message of a type this codec does not know; its IEs are kept in ``extra``."""

    type: int

    @property
    def message_type(self) -> int:
        return self.type


class UnsupportedVersion(DecodeError):
    """The header carries a PFCP version other than 1 (§7.6.2)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"PFCP version {version} is not supported", Cause.REQUEST_REJECTED)
        self.version = version


def _decode_one(data: bytes, pos: int) -> tuple[Message, int, bool]:
    size = len(data)
    if size - pos < 8:
        raise DecodeError(f"{size - pos} octets cannot hold a PFCP header", Cause.INVALID_LENGTH)
    flags = data[pos]
    message_type = data[pos + 1]
    end = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3])
    if flags >> 5 != PFCP_VERSION:
        err: DecodeError = UnsupportedVersion(flags >> 5)
        err.message_type = message_type
        if size - pos >= (16 if flags & 0x01 else 8):
            # Read SEID and sequence number where version 1 keeps them (§7.2.2.1),
            # so that the Version Not Supported Response can be addressed (§7.6.2).
            if flags & 0x01:
                err.seid, tail = _SEID_SEQ.unpack_from(data, pos + 4)
            else:
                tail = _SEQ.unpack_from(data, pos + 4)[0]
            err.sequence = tail >> 8
        raise err
    s_flag = flags & 0x01
    body = pos + (16 if s_flag else 8)
    seid: int | None
    try:
        if end > size or end < body:
            raise DecodeError(
                f"message length {end - pos - 4} does not fit the {size - pos} octets received",
                Cause.INVALID_LENGTH,
            )
        if s_flag:
            seid, tail = _SEID_SEQ.unpack_from(data, pos + 4)
        else:
            seid = None
            tail = _SEQ.unpack_from(data, pos + 4)[0]
        sequence = tail >> 8
        priority = (tail & 0xF0) >> 4 if flags & 0x02 else None
        cls = MESSAGE_CLASSES.get(message_type)
        if cls is None:
            generic = GenericMessage._decode_fields(
                data, body, end, {"sequence": sequence, "seid": seid, "priority": priority, "type": message_type}
            )
            return generic, end, bool(flags & 0x04)
        msg = _walk.decode_group(
            cls,
            cls._TABLE,
            cls._MANDATORY_NAMES,
            data,
            body,
            end,
            {"sequence": sequence, "seid": seid, "priority": priority},
        )
        return msg, end, bool(flags & 0x04)
    except DecodeError as exc:
        exc.message_type = message_type
        if size >= body:  # the header itself arrived: a node can still address its answer
            exc.seid = _SEID_SEQ.unpack_from(data, pos + 4)[0] if s_flag else None
            exc.sequence = (_SEQ.unpack_from(data, pos + (12 if s_flag else 4))[0]) >> 8
        raise
    except Exception as exc:  # a codec bug must still surface as a DecodeError
        raise DecodeError(f"undecodable message type {message_type}: {exc!r}", Cause.REQUEST_REJECTED) from exc


def decode_all(data: bytes) -> list[Message]:
    """Decode every message of one datagram (several when the FO flag is set, §7.2.2.1)."""
    if type(data) is not bytes:
        data = bytes(data)  # bytearray, memoryview: the walker reads bytes
    messages: list[Message] = []
    pos = 0
    while True:
        msg, pos, follow_on = _decode_one(data, pos)
        messages.append(msg)
        if not follow_on or pos >= len(data):
            return messages


def decode(data: bytes) -> Message:
    """Decode one PFCP message. Raises :class:`~pfcp.DecodeError` on bad input.

    A datagram that carries several messages (FO flag) must go through
    :func:`decode_all`.
    """
    if type(data) is not bytes:
        data = bytes(data)  # bytearray, memoryview: the walker reads bytes
    msg, end, follow_on = _decode_one(data, 0)
    if follow_on and end < len(data):
        raise DecodeError("datagram carries more than one message (FO=1); use decode_all", Cause.REQUEST_REJECTED)
    return msg


def _encode_one(msg: Message, follow_on: bool) -> bytes:
    try:
        body = msg._encode_body()
        message_type = msg.message_type
        sequence = msg.sequence
        if not 0 <= sequence <= _MAX_SEQ:
            raise LocalProtocolError(f"sequence number {sequence} is not 24-bit")
        flags = 0x20 | (0x04 if follow_on else 0)
        priority = msg.priority
        tail = sequence << 8
        if priority is not None:
            if not 0 <= priority <= 15:
                raise LocalProtocolError(f"message priority {priority} is not 0..15")
            flags |= 0x02
            tail |= priority << 4
        if msg.seid is None:
            header = _HDR.pack(flags, message_type, len(body) + 4) + _SEQ.pack(tail)
        else:
            header = _HDR.pack(flags | 0x01, message_type, len(body) + 12) + _SEID_SEQ.pack(msg.seid, tail)
    except LocalProtocolError:
        raise
    except (struct.error, ValueError, OverflowError, TypeError, AttributeError) as exc:
        raise LocalProtocolError(f"cannot encode {type(msg).__name__}: {exc}") from exc
    if len(header) + len(body) > 0xFFFF + 4:
        raise LocalProtocolError(f"{type(msg).__name__} is {len(body)} octets, over the 16-bit length")
    return header + body


def encode(msg: Message) -> bytes:
    """Encode one message. Raises :class:`~pfcp.LocalProtocolError` if it breaks the tables."""
    return _encode_one(msg, False)


def encode_all(messages: list[Message]) -> bytes:
    """Encode several messages into one datagram, setting FO on all but the last."""
    last = len(messages) - 1
    return b"".join(_encode_one(m, i < last) for i, m in enumerate(messages))
