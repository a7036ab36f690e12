"""A JSON-able view of decoded PFCP messages and IEs.

:func:`to_dict` turns a message or an IE into plain ``dict``/``list``/``str``/
``int``/``bool`` values that :func:`json.dumps` accepts, by walking the
dataclass fields the codec declares. It is pure (no I/O) and lossless enough to
read a message without the codec at hand:

* a message becomes ``{"message": <MessageType name>, "type": <number>,
  "sequence": ..., "seid": ..., "priority": ..., <IE fields>...}``;
* an IE becomes ``{"ie": <IEType name>, "type": <number>, <fields>...}``;
  grouped IEs nest, repeated IEs become lists;
* enumerated values become their names (values the enum does not name stay
  ints); bit flags become lists of names, followed by the integer of any bits
  the flag type does not name;
* octet strings (opaque, unknown and vendor IE payloads) become lowercase hex;
  IP addresses become text;
* fields that are None or empty tuples (absent IEs) are left out, and so is
  ``wire_order``, which only records the order IEs arrived in.

Keys follow the field declaration order, so the output is stable.
"""

from __future__ import annotations

import dataclasses
from enum import Enum, Flag
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeAlias

from .constants import IEType, MessageType
from .errors import DecodeError
from .ie.base import IE, UnknownIE, VendorIE
from .messages.schema import GenericMessage, Message

__all__ = [
    "JSONValue",
    "error_to_dict",
    "ie_name",
    "ie_type_name",
    "message_name",
    "message_type_name",
    "to_dict",
    "to_jsonable",
]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

#: Fields left out of every view: they describe encoding, not content.
_SKIPPED = frozenset({"wire_order"})
#: Fields already rendered as the "type" key.
_TYPE_FIELD = "type"


def ie_type_name(ie_type: int) -> str:
    """The TS 29.244 name of an IE type number: ``F_TEID``, ``VENDOR_SPECIFIC`` (>= 32768) or ``UNKNOWN``."""
    if ie_type & 0x8000:
        return "VENDOR_SPECIFIC"
    try:
        return IEType(ie_type).name
    except ValueError:
        return "UNKNOWN"


def ie_name(obj: IE) -> str:
    """The TS 29.244 name of an IE's type (see :func:`ie_type_name`)."""
    if isinstance(obj, VendorIE):
        return "VENDOR_SPECIFIC"
    if isinstance(obj, UnknownIE):
        return "UNKNOWN"
    return ie_type_name(obj.ie_type)


def message_type_name(message_type: int) -> str:
    """The TS 29.244 name of a message type number, or ``UNKNOWN``."""
    try:
        return MessageType(message_type).name
    except ValueError:
        return "UNKNOWN"


def message_name(msg: Message) -> str:
    """The TS 29.244 name of a message's type, or ``UNKNOWN`` for a :class:`GenericMessage`."""
    if isinstance(msg, GenericMessage):
        return "UNKNOWN"
    return message_type_name(msg.message_type)


def to_dict(obj: Message | IE) -> dict[str, JSONValue]:
    """Return the JSON-able view of a decoded message or IE (see the module docstring)."""
    out: dict[str, JSONValue]
    if isinstance(obj, Message):
        out = {"message": message_name(obj), "type": int(obj.message_type)}
    else:
        out = {"ie": ie_name(obj), "type": int(obj.ie_type)}
    _add_fields(obj, out)
    return out


def error_to_dict(exc: DecodeError) -> dict[str, JSONValue]:
    """The JSON-able view of a :class:`~pfcp.DecodeError`: reason, cause, Offending IE and
    whatever of the header could be read (message type, sequence, SEID)."""
    out: dict[str, JSONValue] = {
        "reason": exc.reason,
        "cause": exc.cause.name,
        "cause_value": int(exc.cause.value),
    }
    if exc.offending_ie is not None:
        out["offending_ie"] = {"ie": ie_type_name(exc.offending_ie), "type": exc.offending_ie}
    if exc.message_type is not None:
        out["message"] = message_type_name(exc.message_type)
        out["message_type"] = exc.message_type
    if exc.sequence is not None:
        out["sequence"] = exc.sequence
    if exc.seid is not None:
        out["seid"] = exc.seid
    return out


def to_jsonable(value: object) -> JSONValue:
    """Convert one field value: IE, enum, flags, bytes, address, tuple or plain scalar."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, Flag):
        return _flag_names(value)
    if isinstance(value, Enum):
        return value.name if value.name is not None else _plain(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Message | IE):
        return to_dict(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, IPv4Address | IPv6Address | IPv4Network | IPv6Network):
        return str(value)
    if isinstance(value, tuple | list):
        return [to_jsonable(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        nested: dict[str, JSONValue] = {}
        _add_fields(value, nested)
        return nested
    return str(value)


def _add_fields(obj: object, out: dict[str, JSONValue]) -> None:
    skip_type = isinstance(obj, UnknownIE | VendorIE | GenericMessage)
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        name = f.name
        if name in _SKIPPED or (skip_type and name == _TYPE_FIELD):
            continue
        value = getattr(obj, name)
        if value is None or (isinstance(value, tuple) and not value):
            continue
        out[name] = to_jsonable(value)


def _plain(value: object) -> JSONValue:
    return value if isinstance(value, bool | int | float | str) else str(value)


def _flag_names(value: Flag) -> list[JSONValue]:
    cls = type(value)
    names: list[JSONValue] = []
    known = 0
    for member in cls:
        known |= member.value
        if member.value and member in value and member.name is not None:
            names.append(member.name)
    unknown = int(value.value) & ~known
    if unknown:
        names.append(unknown)
    return names
