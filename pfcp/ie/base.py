"""The IE machinery: one registry, generic layouts, and the grouped-IE walker.

Theory of operation
-------------------
Every IE (TS 29.244 §8.1.1) is a frozen, slotted dataclass whose class attribute
``TYPE`` is its :class:`~pfcp.constants.IEType`. The :func:`ie` decorator makes the
dataclass and enters the class in :data:`IE_CLASSES`, the single registry that maps
a type number to its class. A class knows only its *payload* (the octets after
Type and Length); the generic TLV walker in this module adds and strips headers.

Grouped IEs and messages declare their children as dataclass fields made with
:func:`ie_field` (IE class, presence M/C/O, multiplicity), exactly as the spec's
tables do. One walker decodes every grouped IE and every message body from that
declaration:

* an IE type the container does not declare, or one repeated beyond its
  multiplicity, is kept in ``extra`` (§7.6.9, §7.6.10: ignored, but never lost);
* a mandatory IE that is absent raises cause 66 with that IE as Offending IE
  (§7.6.6); a malformed mandatory leaf raises cause 69 (§7.6.8); a malformed
  conditional or optional leaf is silently discarded into ``extra`` as raw bytes;
* an IE whose length runs past its container raises cause 68 (§7.6.7);
* the order the IEs arrived in is remembered (``wire_order``) when it differs
  from the declaration order, so that ``encode(decode(b)) == b``.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, IntEnum, IntFlag
from typing import Any, ClassVar, Self, TypeVar, cast, dataclass_transform

from .. import _walk
from ..constants import Cause, IEType
from ..constants import ie_name as _ie_name
from ..errors import DecodeError, LocalProtocolError

__all__ = [
    "IE",
    "IE_CLASSES",
    "C",
    "FieldSpec",
    "Flags",
    "GroupedIE",
    "M",
    "O",
    "OctetString",
    "OpaqueIE",
    "Presence",
    "RawIE",
    "U8",
    "U16",
    "U24",
    "U32",
    "U64",
    "UnknownIE",
    "UTF8String",
    "VendorIE",
    "decode_ie",
    "grouped",
    "ie",
    "ie_field",
]

_HDR = struct.Struct(">HH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

T = TypeVar("T")

# Decoders build instances as object.__new__ plus one instance-dict assignment:
# frozen dataclasses forbid attribute assignment, and this is the fastest way in.
_new = object.__new__
_setattr = object.__setattr__


class Presence(Enum):
    """Presence requirement of an IE in a message or grouped IE (§7.2.3)."""

    M = "M"
    C = "C"
    O = "O"  # noqa: E741 - the spec's letter


M = Presence.M
C = Presence.C
O = Presence.O  # noqa: E741

#: IE type number -> class. Every type of Table 8.1.2-1 has one (typed or opaque).
IE_CLASSES: dict[int, type[IE]] = {}


class IE:
    """Base of every Information Element."""

    __slots__ = ()
    TYPE: ClassVar[int]

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        """Decode the IE's payload ``data[pos:end]`` (without Type and Length)."""
        raise NotImplementedError

    def encode_payload(self) -> bytes:
        """Return the IE's payload, without Type and Length."""
        raise NotImplementedError

    @property
    def ie_type(self) -> int:
        """The IE type number on the wire."""
        return self.TYPE

    def encode(self) -> bytes:
        """Return the whole IE: Type, Length and payload (§8.1.1)."""
        payload = self.encode_payload()
        return _HDR.pack(self.TYPE, len(payload)) + payload


@dataclass_transform(frozen_default=True)
def ie(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen dataclass and register it under its ``TYPE``."""
    made = dataclass(frozen=True)(cls)
    install_fast_init(made)
    return cast("type[T]", _register(made))


@dataclass_transform(frozen_default=True, kw_only_default=True)
def grouped(cls: type[T]) -> type[T]:
    """Like :func:`ie`, for grouped IEs: keyword-only fields and a child table."""
    made: Any = dataclass(frozen=True, kw_only=True)(cls)
    install_fast_init(made)
    made._build_schema()
    return cast("type[T]", _register(made))


def install_fast_init(cls: type) -> None:
    """Replace the dataclass ``__init__`` by one that installs the instance dict
    in a single step.

    The generated ``__init__`` of a frozen dataclass calls ``object.__setattr__``
    once per field, which dominates the cost of building IEs with many optional
    fields (a Create URR has 27). Semantics are unchanged: same parameters,
    defaults and keyword-only markers, still frozen afterwards.
    """
    namespace: dict[str, Any] = {"_setattr": object.__setattr__}
    positional: list[str] = []
    keyword: list[str] = []
    items: list[str] = []
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: default_factory is not supported")
        if f.default is dataclasses.MISSING:
            param = f.name
        else:
            namespace[f"_default_{f.name}"] = f.default
            param = f"{f.name}=_default_{f.name}"
        (keyword if f.kw_only else positional).append(param)
        items.append(f"{f.name!r}: {f.name}")
    params = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({params}) -> None:\n    _setattr(self, '__dict__', {{{', '.join(items)}}})\n"
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]


def _register(made: Any) -> Any:
    if made.TYPE in IE_CLASSES and not issubclass(IE_CLASSES[made.TYPE], OpaqueIE):
        raise TypeError(f"IE type {made.TYPE} registered twice")
    IE_CLASSES[made.TYPE] = made
    if issubclass(made, (_UInt, EnumOctet)):
        made._HEAD = _HDR.pack(made.TYPE, made.SIZE)
    return made


def _need(cls: type, data: bytes, pos: int, end: int, size: int) -> None:
    if end - pos != size:
        raise DecodeError(
            f"{cls.__name__}: payload of {end - pos} octets, expected {size}",
            Cause.INVALID_LENGTH,
        )


def _at_least(cls: type, pos: int, end: int, size: int) -> None:
    if end - pos < size:
        raise DecodeError(
            f"{cls.__name__}: payload of {end - pos} octets, expected at least {size}",
            Cause.INVALID_LENGTH,
        )


# --------------------------------------------------------------------------
# Generic layouts. A concrete IE subclasses one and names its TYPE.


class _UInt(IE):
    """Layout of an IE whose payload is one big-endian unsigned integer of
    ``SIZE`` octets. Its header never changes, so it is packed once per class."""

    __slots__ = ()
    SIZE: ClassVar[int]
    _HEAD: ClassVar[bytes] = b""
    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != cls.SIZE:
            _need(cls, data, pos, end, cls.SIZE)
        return cls(int.from_bytes(data[pos:end], "big"))  # type: ignore[call-arg]

    def encode_payload(self) -> bytes:
        return self.value.to_bytes(self.SIZE, "big")

    def encode(self) -> bytes:
        return self._HEAD + self.encode_payload()


@dataclass(frozen=True)
class U8(_UInt):
    """An IE whose payload is one unsigned octet."""

    SIZE = 1
    value: int

    def encode_payload(self) -> bytes:
        return bytes((self.value,))

    def encode(self) -> bytes:
        return self._HEAD + bytes((self.value,))

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 1:
            _need(cls, data, pos, end, 1)
        obj = _new(cls)
        _setattr(obj, "value", data[pos])
        return obj


@dataclass(frozen=True)
class U16(_UInt):
    """An IE whose payload is a 16-bit unsigned integer."""

    SIZE = 2
    value: int

    def encode_payload(self) -> bytes:
        return _U16.pack(self.value)

    def encode(self) -> bytes:
        return self._HEAD + _U16.pack(self.value)

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 2:
            _need(cls, data, pos, end, 2)
        obj = _new(cls)
        _setattr(obj, "value", (data[pos] << 8) | data[pos + 1])
        return obj


@dataclass(frozen=True)
class U24(_UInt):
    """An IE whose payload is a 24-bit unsigned integer."""

    SIZE = 3
    value: int


@dataclass(frozen=True)
class U32(_UInt):
    """An IE whose payload is a 32-bit unsigned integer."""

    SIZE = 4
    value: int

    def encode_payload(self) -> bytes:
        return _U32.pack(self.value)

    def encode(self) -> bytes:
        return self._HEAD + _U32.pack(self.value)

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 4:
            _need(cls, data, pos, end, 4)
        obj = _new(cls)
        _setattr(obj, "value", _U32.unpack_from(data, pos)[0])
        return obj


@dataclass(frozen=True)
class U64(_UInt):
    """An IE whose payload is a 64-bit unsigned integer."""

    SIZE = 8
    value: int

    def encode_payload(self) -> bytes:
        return _U64.pack(self.value)


@dataclass(frozen=True)
class OctetString(IE):
    """An IE whose payload is an opaque octet string."""

    value: bytes

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        return cls(bytes(data[pos:end]))

    def encode_payload(self) -> bytes:
        return self.value


@dataclass(frozen=True)
class UTF8String(IE):
    """An IE whose payload is text. Bytes that are not UTF-8 survive a round trip."""

    value: str

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        return cls(data[pos:end].decode("utf-8", "surrogateescape"))

    def encode_payload(self) -> bytes:
        return self.value.encode("utf-8", "surrogateescape")


class EnumOctet(IE):
    """Layout of an IE whose first octet carries an enumerated value under ``MASK``.

    Subclasses declare ``value: TheEnum`` and set ``ENUM``; values the enum does not
    name (spare values of later releases) are kept as plain ints.
    """

    __slots__ = ()
    ENUM: ClassVar[type[IntEnum]]
    MASK: ClassVar[int] = 0xFF
    SIZE: ClassVar[int] = 1
    _HEAD: ClassVar[bytes] = b""
    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 1:
            _need(cls, data, pos, end, 1)
        raw = data[pos] & cls.MASK
        obj = _new(cls)
        _setattr(obj, "value", cls.ENUM._value2member_map_.get(raw, raw))
        return obj

    def encode_payload(self) -> bytes:
        return bytes((self.value & self.MASK,))

    def encode(self) -> bytes:
        return self._HEAD + bytes((self.value & self.MASK,))


class Flags(IE):
    """Layout of a bitmap IE: octet 5 is the low byte of ``value`` (little-endian).

    PFCP numbers flag octets from octet 5 upwards (Apply Action, Reporting
    Triggers, UP/CP Function Features), so reading the octets little-endian makes
    ``FLAG.X`` independent of how many octets a peer of an older release sent.
    Subclasses declare ``value: TheFlags`` and ``octets: int = N`` (compare=False).
    """

    __slots__ = ()
    FLAGS: ClassVar[type[IntFlag]]
    MIN_OCTETS: ClassVar[int] = 1
    value: int
    octets: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos < cls.MIN_OCTETS:
            _at_least(cls, pos, end, cls.MIN_OCTETS)
        raw = int.from_bytes(data[pos:end], "little")
        # IntFlag caches every value it has built; a dict hit avoids Enum.__call__.
        value = cls.FLAGS._value2member_map_.get(raw)
        if value is None:
            value = cls.FLAGS(raw)
        obj = _new(cls)
        _setattr(obj, "value", value)
        _setattr(obj, "octets", end - pos)
        return obj

    def encode_payload(self) -> bytes:
        value: int = self.value
        octets: int = self.octets
        size = (value.bit_length() + 7) >> 3
        return value.to_bytes(octets if octets >= size else size, "little")


# --------------------------------------------------------------------------
# IEs kept as bytes: opaque known types, unknown types, vendor-specific types.


class RawIE(IE):
    """An IE kept as its payload octets."""

    __slots__ = ()
    payload: bytes


@dataclass(frozen=True)
class OpaqueIE(RawIE):
    """An IE of Table 8.1.2-1 this codec does not type; its payload is kept as is."""

    payload: bytes

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        return cls(bytes(data[pos:end]))

    def encode_payload(self) -> bytes:
        return self.payload


@dataclass(frozen=True)
class UnknownIE(RawIE):
    """An IE type that Table 8.1.2-1 does not list (a later release's), or a
    vendor-specific IE too short to hold its Enterprise ID, kept as bytes."""

    type: int
    payload: bytes

    @property
    def ie_type(self) -> int:
        return self.type

    def encode_payload(self) -> bytes:
        return self.payload

    def encode(self) -> bytes:
        if not 0 <= self.type <= 0xFFFF:
            raise LocalProtocolError(f"UnknownIE type {self.type} is not 16-bit")
        return _HDR.pack(self.type, len(self.payload)) + self.payload


@dataclass(frozen=True)
class VendorIE(RawIE):
    """A vendor-specific IE (type >= 32768) with its Enterprise ID (§8.1.1)."""

    type: int
    enterprise_id: int
    payload: bytes

    @property
    def ie_type(self) -> int:
        return self.type

    def encode_payload(self) -> bytes:
        return _U16.pack(self.enterprise_id) + self.payload

    def encode(self) -> bytes:
        if not 0x8000 <= self.type <= 0xFFFF:
            raise LocalProtocolError(f"VendorIE type {self.type} is not in 32768..65535")
        return _HDR.pack(self.type, len(self.payload) + 2) + self.encode_payload()


def opaque_class(ie_type: IEType) -> type[OpaqueIE]:
    """Create and register the opaque class of a known but untyped IE type."""
    name = "".join(part.capitalize() for part in ie_type.name.split("_"))
    cls = type(name, (OpaqueIE,), {"TYPE": ie_type, "__doc__": f"{ie_type.name} (opaque)"})
    IE_CLASSES[ie_type] = cls
    return cls


def decode_ie(ie_type: int, data: bytes, pos: int, end: int) -> IE:
    """Decode one IE payload by its type; never loses bytes, raises only DecodeError."""
    if ie_type & 0x8000:
        if end - pos < 2:
            raise DecodeError(f"vendor IE {ie_type} too short for its Enterprise ID", Cause.INVALID_LENGTH, ie_type)
        return VendorIE(ie_type, (data[pos] << 8) | data[pos + 1], bytes(data[pos + 2 : end]))
    cls = IE_CLASSES.get(ie_type)
    if cls is None:
        return UnknownIE(ie_type, bytes(data[pos:end]))
    try:
        return cls.decode_payload(data, pos, end)
    except DecodeError:
        raise
    except Exception as exc:  # malformed payload: a bad value, not a crash
        raise DecodeError(f"{cls.__name__}: {exc}", Cause.MANDATORY_IE_INCORRECT, ie_type) from None


def raw_ie(ie_type: int, data: bytes, pos: int, end: int) -> RawIE:
    """Keep an IE as bytes (used for discarded malformed optional IEs)."""
    payload = bytes(data[pos:end])
    if ie_type & 0x8000 and len(payload) >= 2:
        return VendorIE(ie_type, (payload[0] << 8) | payload[1], payload[2:])
    return UnknownIE(ie_type, payload)


# --------------------------------------------------------------------------
# Grouped IEs and messages: fields declared with ie_field().


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One row of a message or grouped-IE table."""

    name: str
    ie_type: int
    cls: type[IE]
    presence: Presence
    multiple: bool


def ie_field(cls: type[IE], presence: Presence = O, *, multiple: bool = False) -> Any:
    """Declare a child IE: its class, presence (M/C/O) and whether it may repeat."""
    meta = {"pfcp": (cls, presence, multiple)}
    if multiple:
        return field(default=(), metadata=meta)
    if presence is M:
        return field(metadata=meta)
    return field(default=None, metadata=meta)


_EXTRA = "extra"
#: (name, decode_payload, multiple, mandatory, grouped, IE type, layout, class,
#: payload size, value mask, value map, header): see :func:`_layout`.
_Row = tuple[
    str, Callable[[bytes, int, int], Any], bool, bool, bool, int, int, type, int, int, dict[int, Any] | None, bytes
]

# Layouts the walker decodes and encodes inline (pfcp._walk), for the classes
# that keep the generic code of U8, U16, U32 and EnumOctet: a leaf of these is
# a third of the IEs of a typical session message, and a call per IE is most of
# its cost. Any other class (or one overriding either method) is LAYOUT_CALL.
LAYOUT_CALL = 0
LAYOUT_U8 = 1
LAYOUT_U16 = 2
LAYOUT_U32 = 3
LAYOUT_ENUM = 4


def _layout(cls: type[IE]) -> tuple[int, int, int, dict[int, Any] | None, bytes]:
    """(layout, payload size, value mask, value map, IE header) of a leaf class."""
    decode = getattr(cls.decode_payload, "__func__", None)
    layouts: tuple[tuple[Any, int], ...] = (
        (U8, LAYOUT_U8),
        (U16, LAYOUT_U16),
        (U32, LAYOUT_U32),
        (EnumOctet, LAYOUT_ENUM),
    )
    for base, layout in layouts:
        if (
            issubclass(cls, base)
            and decode is base.decode_payload.__func__
            and cls.encode is base.encode
            and cls.encode_payload is base.encode_payload
        ):
            leaf: Any = cls
            size: int = leaf.SIZE
            head = _HDR.pack(leaf.TYPE, size)
            if layout == LAYOUT_ENUM:
                return layout, size, leaf.MASK, leaf.ENUM._value2member_map_, head
            return layout, size, 0, None, head
    return LAYOUT_CALL, 0, 0, None, b""


@dataclass(frozen=True, kw_only=True)
class _Group:
    """Fields and behaviour shared by grouped IEs and messages.

    Performance note: grouped IEs and messages are frozen dataclasses *without*
    ``__slots__``. The decoder builds the instance dict in arrival order and
    installs it in one step; fields that did not arrive fall back to their
    class-level defaults (None or ``()``). The encoder walks that dict, so a
    decoded object re-encodes in the order it arrived and never visits the
    dozens of absent optional fields. This is what makes the codec several
    times faster than a per-field ``__init__``.
    """

    _SPECS: ClassVar[tuple[FieldSpec, ...]] = ()
    _BY_TYPE: ClassVar[dict[int, tuple[FieldSpec, ...]]] = {}
    _MANDATORY_NAMES: ClassVar[tuple[tuple[str, int], ...]] = ()
    #: field name -> (name, decode_payload, multiple, mandatory, grouped, IE type)
    _ROWS: ClassVar[dict[str, _Row]] = {}
    #: IE type -> the row of the first field of that type
    _TABLE: ClassVar[dict[int, _Row]] = {}

    #: IEs the table does not declare, repeated beyond their multiplicity, or
    #: discarded as malformed; kept so nothing received is lost.
    extra: tuple[IE, ...] = ()
    #: Field names in arrival order, kept only when IEs of a repeated field
    #: arrived interleaved with others; encoding then follows it so a decoded
    #: message re-encodes byte for byte. Not part of equality.
    wire_order: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def _build_schema(cls) -> None:
        specs = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("pfcp")
            if meta is None:
                continue
            ie_cls, presence, multiple = meta
            specs.append(FieldSpec(f.name, ie_cls.TYPE, ie_cls, presence, multiple))
        by_type: dict[int, list[FieldSpec]] = {}
        for spec in specs:
            by_type.setdefault(spec.ie_type, []).append(spec)
        cls._SPECS = tuple(specs)
        cls._BY_TYPE = {t: tuple(v) for t, v in by_type.items()}
        cls._MANDATORY_NAMES = tuple((s.name, s.ie_type) for s in specs if s.presence is M)
        cls._ROWS = {
            s.name: (
                s.name,
                _decoder(s.cls),
                s.multiple,
                s.presence is M,
                issubclass(s.cls, _Group),
                s.ie_type,
                *_layout(s.cls)[:1],
                s.cls,
                *_layout(s.cls)[1:],
            )
            for s in specs
        }
        cls._TABLE = {t: cls._ROWS[v[0].name] for t, v in by_type.items()}

    @classmethod
    def _decode_fields(cls, data: bytes, pos: int, end: int, kwargs: dict[str, Any]) -> Any:
        """Decode the IEs in ``data[pos:end]`` into a new instance of ``cls``.

        ``kwargs`` may hold header values already (messages); the IE fields are
        added in arrival order.
        """
        if type(data) is not bytes:
            data = bytes(data)  # bytearray, memoryview: the walker reads bytes
        return _walk.decode_group(cls, cls._TABLE, cls._MANDATORY_NAMES, data, pos, end, kwargs)

    @staticmethod
    def _raw(ie_type: int, data: bytes, pos: int, end: int) -> IE:
        return raw_ie(ie_type, data, pos, end)

    @staticmethod
    def _undeclared(ie_type: int, data: bytes, pos: int, end: int) -> IE:
        return _decode_or_raw(ie_type, data, pos, end)

    @classmethod
    def _next_row(cls, ie_type: int, kwargs: dict[str, Any]) -> _Row | None:
        """The next unfilled field of this IE type (several fields may share one
        type, told apart by order, e.g. the FQ-CSIDs); None if all are filled."""
        for spec in cls._BY_TYPE[ie_type]:
            if spec.multiple or spec.name not in kwargs:
                return cls._ROWS[spec.name]
        return None

    def _encode_fields(self) -> bytes:
        values = self.__dict__
        if values.get("wire_order") is not None:
            return self._encode_in_wire_order()
        return _walk.encode_group(self, values, self._ROWS, self._MANDATORY_NAMES)

    def _encode_in_wire_order(self) -> bytes:
        parts: list[bytes] = []
        taken: dict[str, int] = {}
        assert self.wire_order is not None
        for name in self.wire_order:
            n = taken.get(name, 0)
            if name == _EXTRA:
                if n < len(self.extra):
                    parts.append(self.extra[n].encode())
                    taken[name] = n + 1
                continue
            spec = next((s for s in self._SPECS if s.name == name), None)
            if spec is None:
                continue
            value = getattr(self, name)
            if spec.multiple:
                if n < len(value):
                    parts.append(self._encode_child(spec, value[n]))
                    taken[name] = n + 1
            elif n == 0 and value is not None:
                parts.append(self._encode_child(spec, value))
                taken[name] = 1
        # Anything set after decoding that the remembered order does not cover.
        for spec in self._SPECS:
            value = getattr(self, spec.name)
            n = taken.get(spec.name, 0)
            items = value if spec.multiple else (() if value is None else (value,))
            if not items and spec.presence is M:
                raise self._missing(spec.name)
            for item in items[n:]:
                parts.append(self._encode_child(spec, item))
        for item in self.extra[taken.get(_EXTRA, 0) :]:
            parts.append(item.encode())
        return b"".join(parts)

    def _encode_child(self, spec: FieldSpec, value: Any) -> bytes:
        if getattr(value, "TYPE", None) != spec.ie_type:
            raise self._wrong(spec.name, value)
        encoded: bytes = value.encode()
        return encoded

    def _wrong(self, name: str, value: Any) -> LocalProtocolError:
        expected = self._ROWS[name][5]
        return LocalProtocolError(
            f"{type(self).__name__}.{name} takes IE {_ie_name(expected)}, not {type(value).__name__}"
        )

    def _missing(self, name: str) -> LocalProtocolError:
        return LocalProtocolError(
            f"{type(self).__name__}: mandatory IE {name} ({_ie_name(self._ROWS[name][5])}) is missing"
        )

    def ies(self) -> list[IE]:
        """Every IE this object holds, in declaration order, then ``extra``."""
        out: list[IE] = []
        for spec in self._SPECS:
            value = getattr(self, spec.name)
            if spec.multiple:
                out.extend(value)
            elif value is not None:
                out.append(value)
        out.extend(self.extra)
        return out


def _decoder(cls: type[IE]) -> Callable[[bytes, int, int], Any]:
    """The fastest callable that decodes a payload of ``cls``: grouped IEs go
    straight to the walker with their tables bound."""
    if issubclass(cls, _Group):
        return functools.partial(_walk.decode_group, cls, cls._TABLE, cls._MANDATORY_NAMES)
    return cls.decode_payload


def _decode_or_raw(ie_type: int, data: bytes, pos: int, end: int) -> IE:
    """Decode an IE a container does not declare; keep it raw if it is malformed."""
    try:
        return decode_ie(ie_type, data, pos, end)
    except DecodeError:
        return raw_ie(ie_type, data, pos, end)


@dataclass(frozen=True, kw_only=True)
class GroupedIE(_Group, IE):
    """A grouped IE (§8.1.1): its payload is a sequence of IEs declared by fields."""

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if type(data) is not bytes:
            data = bytes(data)  # bytearray, memoryview: the walker reads bytes
        obj: Self = _walk.decode_group(cls, cls._TABLE, cls._MANDATORY_NAMES, data, pos, end, {})
        return obj

    def encode(self) -> bytes:
        payload = self._encode_fields()
        return _HDR.pack(self.TYPE, len(payload)) + payload

    def encode_payload(self) -> bytes:
        return self._encode_fields()
