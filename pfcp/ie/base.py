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
import struct
from dataclasses import dataclass, field
from enum import Enum, IntEnum, IntFlag
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform

from ..constants import Cause, IEType
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
    """Make ``cls`` a frozen slotted dataclass and register it under its ``TYPE``."""
    return _register(dataclass(frozen=True, slots=True)(cls))


@dataclass_transform(frozen_default=True, kw_only_default=True)
def grouped(cls: type[T]) -> type[T]:
    """Like :func:`ie`, for grouped IEs: keyword-only fields and a child table."""
    made: Any = dataclass(frozen=True, slots=True, kw_only=True)(cls)
    made._build_schema()
    return _register(made)


def _register(made: Any) -> Any:
    if made.TYPE in IE_CLASSES and not issubclass(IE_CLASSES[made.TYPE], OpaqueIE):
        raise TypeError(f"IE type {made.TYPE} registered twice")
    IE_CLASSES[made.TYPE] = made
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


@dataclass(frozen=True, slots=True)
class U8(IE):
    """An IE whose payload is one unsigned octet."""

    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 1:
            _need(cls, data, pos, end, 1)
        return cls(data[pos])

    def encode_payload(self) -> bytes:
        return bytes((self.value,))


@dataclass(frozen=True, slots=True)
class U16(IE):
    """An IE whose payload is a 16-bit unsigned integer."""

    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 2:
            _need(cls, data, pos, end, 2)
        return cls((data[pos] << 8) | data[pos + 1])

    def encode_payload(self) -> bytes:
        return _U16.pack(self.value)


@dataclass(frozen=True, slots=True)
class U24(IE):
    """An IE whose payload is a 24-bit unsigned integer."""

    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 3)
        return cls(int.from_bytes(data[pos:end], "big"))

    def encode_payload(self) -> bytes:
        return self.value.to_bytes(3, "big")


@dataclass(frozen=True, slots=True)
class U32(IE):
    """An IE whose payload is a 32-bit unsigned integer."""

    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        if end - pos != 4:
            _need(cls, data, pos, end, 4)
        return cls(_U32.unpack_from(data, pos)[0])

    def encode_payload(self) -> bytes:
        return _U32.pack(self.value)


@dataclass(frozen=True, slots=True)
class U64(IE):
    """An IE whose payload is a 64-bit unsigned integer."""

    value: int

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _need(cls, data, pos, end, 8)
        return cls(_U64.unpack_from(data, pos)[0])

    def encode_payload(self) -> bytes:
        return _U64.pack(self.value)


@dataclass(frozen=True, slots=True)
class OctetString(IE):
    """An IE whose payload is an opaque octet string."""

    value: bytes

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        return cls(bytes(data[pos:end]))

    def encode_payload(self) -> bytes:
        return self.value


@dataclass(frozen=True, slots=True)
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

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, 1)
        raw = data[pos] & cls.MASK
        value = cls.ENUM._value2member_map_.get(raw, raw)
        return cls(value)  # type: ignore[call-arg]

    def encode_payload(self) -> bytes:
        return bytes((getattr(self, "value") & self.MASK,))


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

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        _at_least(cls, pos, end, cls.MIN_OCTETS)
        return cls(cls.FLAGS(int.from_bytes(data[pos:end], "little")), end - pos)  # type: ignore[call-arg]

    def encode_payload(self) -> bytes:
        value: int = getattr(self, "value")
        octets: int = getattr(self, "octets")
        return int(value).to_bytes(max(octets, (int(value).bit_length() + 7) // 8), "little")


# --------------------------------------------------------------------------
# IEs kept as bytes: opaque known types, unknown types, vendor-specific types.


class RawIE(IE):
    """An IE kept as its payload octets."""

    __slots__ = ()
    payload: bytes


@dataclass(frozen=True, slots=True)
class OpaqueIE(RawIE):
    """An IE of Table 8.1.2-1 this codec does not type; its payload is kept as is."""

    payload: bytes

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        return cls(bytes(data[pos:end]))

    def encode_payload(self) -> bytes:
        return self.payload


@dataclass(frozen=True, slots=True)
class UnknownIE(RawIE):
    """An IE type below 32768 that Table 8.1.2-1 does not list (a later release's)."""

    type: int
    payload: bytes

    @property
    def ie_type(self) -> int:
        return self.type

    def encode_payload(self) -> bytes:
        return self.payload

    def encode(self) -> bytes:
        if not 0 <= self.type < 0x8000:
            raise LocalProtocolError(f"UnknownIE type {self.type} is not a 3GPP IE type")
        return _HDR.pack(self.type, len(self.payload)) + self.payload


@dataclass(frozen=True, slots=True)
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
    cls = type(name, (OpaqueIE,), {"__slots__": (), "TYPE": ie_type, "__doc__": f"{ie_type.name} (opaque)"})
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Group:
    """Fields and behaviour shared by grouped IEs and messages."""

    _SPECS: ClassVar[tuple[FieldSpec, ...]] = ()
    _BY_TYPE: ClassVar[dict[int, tuple[FieldSpec, ...]]] = {}
    _MANDATORY: ClassVar[tuple[FieldSpec, ...]] = ()
    _INDEX: ClassVar[dict[str, int]] = {}

    #: IEs the table does not declare, repeated beyond their multiplicity, or
    #: discarded as malformed; kept so nothing received is lost.
    extra: tuple[IE, ...] = ()
    #: Field names in the order the IEs arrived, when that differs from the
    #: declaration order; encoding follows it so a decoded message re-encodes
    #: byte for byte. Not part of equality.
    wire_order: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def _build_schema(cls) -> None:
        specs = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
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
        cls._MANDATORY = tuple(s for s in specs if s.presence is M)
        cls._INDEX = {s.name: i for i, s in enumerate(specs)}

    @classmethod
    def _decode_fields(cls, data: bytes, pos: int, end: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        by_type = cls._BY_TYPE
        order: list[str] = []
        lists: dict[str, list[IE]] = {}
        extra: list[IE] = []
        in_order = True
        last = -1
        while pos < end:
            if end - pos < 4:
                raise DecodeError(f"{cls.__name__}: {end - pos} stray octets after the last IE", Cause.INVALID_LENGTH)
            ie_type = (data[pos] << 8) | data[pos + 1]
            nxt = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3])
            if nxt > end:
                raise DecodeError(
                    f"{cls.__name__}: IE {_ie_name(ie_type)} runs past the end of its container",
                    Cause.INVALID_LENGTH,
                    ie_type,
                )
            pos += 4
            target: str = _EXTRA
            specs = by_type.get(ie_type)
            if specs is not None:
                for spec in specs:
                    name = spec.name
                    if spec.multiple:
                        target = name
                        break
                    if name not in kwargs:
                        target = name
                        break
                if target is not _EXTRA:
                    try:
                        value = spec.cls.decode_payload(data, pos, nxt)
                    except Exception as exc:
                        if isinstance(exc, DecodeError) and issubclass(spec.cls, _Group):
                            raise  # errors inside a grouped IE keep their own cause and IE
                        if spec.presence is M:
                            raise DecodeError(
                                f"{cls.__name__}: mandatory IE {_ie_name(ie_type)} is malformed: {exc}",
                                Cause.MANDATORY_IE_INCORRECT,
                                ie_type,
                            ) from None
                        # §7.6.8: an incorrect optional IE is discarded (kept as bytes)
                        extra.append(raw_ie(ie_type, data, pos, nxt))
                        order.append(_EXTRA)
                        last = len(cls._SPECS)
                        pos = nxt
                        continue
                    else:
                        if spec.multiple:
                            lst = lists.get(target)
                            if lst is None:
                                lists[target] = [value]
                            else:
                                lst.append(value)
                        else:
                            kwargs[target] = value
                        idx = cls._INDEX[target]
                        if idx < last:
                            in_order = False
                        last = idx
                        order.append(target)
                        pos = nxt
                        continue
            # Undeclared here, or repeated: ignored (§7.6.9, §7.6.10) but kept.
            try:
                value = decode_ie(ie_type, data, pos, nxt)
            except DecodeError:
                value = raw_ie(ie_type, data, pos, nxt)
            extra.append(value)
            order.append(_EXTRA)
            last = len(cls._SPECS)
            pos = nxt
        for name, lst in lists.items():
            kwargs[name] = tuple(lst)
        if extra:
            kwargs[_EXTRA] = tuple(extra)
        if not in_order:
            kwargs["wire_order"] = tuple(order)
        for spec in cls._MANDATORY:
            if spec.name not in kwargs:
                raise DecodeError(
                    f"{cls.__name__}: mandatory IE {_ie_name(spec.ie_type)} is missing",
                    Cause.MANDATORY_IE_MISSING,
                    spec.ie_type,
                )
        return kwargs

    def _encode_fields(self) -> bytes:
        parts: list[bytes] = []
        append = parts.append
        if self.wire_order is None:
            for spec in self._SPECS:
                value = getattr(self, spec.name)
                if spec.multiple:
                    if not value:
                        if spec.presence is M:
                            raise self._missing(spec)
                        continue
                    for item in value:
                        append(self._encode_child(spec, item))
                elif value is None:
                    if spec.presence is M:
                        raise self._missing(spec)
                else:
                    append(self._encode_child(spec, value))
            for item in self.extra:
                append(item.encode())
            return b"".join(parts)
        return self._encode_in_wire_order()

    def _encode_in_wire_order(self) -> bytes:
        parts: list[bytes] = []
        taken: dict[str, int] = {}
        specs = {s.name: s for s in self._SPECS}
        assert self.wire_order is not None
        for name in self.wire_order:
            n = taken.get(name, 0)
            if name == _EXTRA:
                if n < len(self.extra):
                    parts.append(self.extra[n].encode())
                    taken[name] = n + 1
                continue
            spec = specs.get(name)
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
                raise self._missing(spec)
            for item in items[n:]:
                parts.append(self._encode_child(spec, item))
        for item in self.extra[taken.get(_EXTRA, 0) :]:
            parts.append(item.encode())
        return b"".join(parts)

    def _encode_child(self, spec: FieldSpec, value: Any) -> bytes:
        if getattr(value, "TYPE", None) != spec.ie_type:
            raise LocalProtocolError(
                f"{type(self).__name__}.{spec.name} takes {spec.cls.__name__}, not {type(value).__name__}"
            )
        encoded: bytes = value.encode()
        return encoded

    def _missing(self, spec: FieldSpec) -> LocalProtocolError:
        return LocalProtocolError(
            f"{type(self).__name__}: mandatory IE {spec.name} ({_ie_name(spec.ie_type)}) is missing"
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


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupedIE(_Group, IE):
    """A grouped IE (§8.1.1): its payload is a sequence of IEs declared by fields."""

    @classmethod
    def decode_payload(cls, data: bytes, pos: int, end: int) -> Self:
        return cls(**cls._decode_fields(data, pos, end, {}))

    def encode_payload(self) -> bytes:
        return self._encode_fields()


def _ie_name(ie_type: int) -> str:
    try:
        return f"{IEType(ie_type).name}({ie_type})"
    except ValueError:
        return str(ie_type)
