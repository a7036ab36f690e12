"""The two hot loops of the codec: walking the IEs of a grouped IE or message.

Kept free of classes and of anything dynamic so that the optional compiled
build (``make accel``: Cython, with the C types of ``_walk.pxd``) can make it
fast; the interpreted module behaves identically. The callers in
:mod:`pfcp.ie.base` own the tables; this module only walks them.

A row is ``(field name, decode_payload, multiple, mandatory, grouped, IE type,
layout, class, payload size, value mask, value map, IE header)``; the layout
lets the walker decode and encode the simplest leaves without a call.
"""

from __future__ import annotations

import struct
from typing import Any

from .constants import Cause, ie_name
from .errors import DecodeError

_EXTRA = "extra"
_new = object.__new__
_setattr = object.__setattr__
_unpack_u32 = struct.Struct(">I").unpack_from
_pack_u16 = struct.Struct(">H").pack
_pack_u32 = struct.Struct(">I").pack
# The row layouts of pfcp.ie.base (LAYOUT_*); this module cannot import it.
_LAYOUT_U8 = 1
_LAYOUT_U16 = 2
_LAYOUT_U32 = 3
_LAYOUT_ENUM = 4


def decode_group(
    cls: Any,
    table: dict[int, Any],
    mandatory_names: tuple[tuple[str, int], ...],
    data: bytes,
    pos: int,
    end: int,
    kwargs: dict[str, Any] | None = None,
    order: list[str] | None = None,
) -> Any:
    """Decode ``data[pos:end]`` as the IEs of ``cls``; return the new instance.

    Fields are added to ``kwargs`` in arrival order and the dict becomes the
    instance's ``__dict__`` (absent fields fall back to class defaults). The
    order of a dict cannot say that IEs of one repeated field arrived in
    separate runs (A, B, A); when that happens the walk starts again with
    ``order`` recording every IE, and the instance keeps it as ``wire_order``.
    """
    if kwargs is None:
        kwargs = {}
    start = pos
    extra: list[Any] | None = None
    lists: list[str] | None = None
    last = ""
    while pos < end:
        if end - pos < 4:
            raise DecodeError(f"{cls.__name__}: {end - pos} stray octets after the last IE", Cause.INVALID_LENGTH)
        ie_type: int = (data[pos] << 8) | data[pos + 1]
        nxt: int = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3])
        if nxt > end:
            raise DecodeError(
                f"{cls.__name__}: IE {ie_name(ie_type)} runs past the end of its container",
                Cause.INVALID_LENGTH,
                ie_type,
            )
        pos += 4
        row = table.get(ie_type)
        if row is not None and not row[2] and row[0] in kwargs:
            row = cls._next_row(ie_type, kwargs)  # several fields of one type, or repeated
        if row is not None:
            name: str = row[0]
            layout: int = row[6]
            kept = True
            if layout and nxt - pos == row[8]:
                # U8/U16/U32/EnumOctet leaves, inline (see pfcp.ie.base._layout)
                if layout == _LAYOUT_U32:
                    raw = _unpack_u32(data, pos)[0]
                elif layout == _LAYOUT_U16:
                    raw = (data[pos] << 8) | data[pos + 1]
                elif layout == _LAYOUT_U8:
                    raw = data[pos]
                else:
                    raw = data[pos] & row[9]
                    raw = row[10].get(raw, raw)
                value = _new(row[7])
                _setattr(value, "value", raw)
            else:
                try:
                    value = row[1](data, pos, nxt)
                except Exception as exc:
                    if row[4] and isinstance(exc, DecodeError):
                        raise  # errors inside a grouped IE keep their own cause and IE
                    if row[3]:
                        raise DecodeError(
                            f"{cls.__name__}: mandatory IE {ie_name(ie_type)} is malformed: {exc}",
                            Cause.MANDATORY_IE_INCORRECT,
                            ie_type,
                        ) from None
                    # TS 29.244 §7.6.8: an incorrect optional IE is discarded (kept as bytes)
                    value = cls._raw(ie_type, data, pos, nxt)
                    kept = False
            if kept:
                if row[2]:
                    lst = kwargs.get(name)
                    if lst is None:
                        kwargs[name] = [value]
                        if lists is None:
                            lists = [name]
                        else:
                            lists.append(name)
                    else:
                        if last != name and order is None:
                            return _again_in_order(cls, table, mandatory_names, data, start, end, kwargs)
                        lst.append(value)
                else:
                    kwargs[name] = value
                if order is not None:
                    order.append(name)
                last = name
                pos = nxt
                continue
        else:
            # Undeclared here, or repeated: ignored (§7.6.9, §7.6.10) but kept.
            value = cls._undeclared(ie_type, data, pos, nxt)
        if extra is None:
            extra = [value]
            kwargs[_EXTRA] = extra
        else:
            if last != _EXTRA and order is None:
                return _again_in_order(cls, table, mandatory_names, data, start, end, kwargs)
            extra.append(value)
        if order is not None:
            order.append(_EXTRA)
        last = _EXTRA
        pos = nxt
    if lists is not None:
        for name in lists:
            kwargs[name] = tuple(kwargs[name])  # same key: keeps its arrival position
    if extra is not None:
        kwargs[_EXTRA] = tuple(extra)
    for name, ie_type in mandatory_names:
        if name not in kwargs:
            raise DecodeError(
                f"{cls.__name__}: mandatory IE {ie_name(ie_type)} is missing", Cause.MANDATORY_IE_MISSING, ie_type
            )
    if order is not None:
        kwargs["wire_order"] = tuple(order)
    obj = _new(cls)
    _setattr(obj, "__dict__", kwargs)
    return obj


def _again_in_order(
    cls: Any,
    table: dict[int, Any],
    mandatory_names: tuple[tuple[str, int], ...],
    data: bytes,
    start: int,
    end: int,
    kwargs: dict[str, Any],
) -> Any:
    # Keep what the caller put in (message header values), drop what the walk added.
    header = {k: v for k, v in kwargs.items() if k not in cls._ROWS and k != _EXTRA}
    return decode_group(cls, table, mandatory_names, data, start, end, header, [])


def encode_group(
    obj: Any, values: dict[str, Any], rows: dict[str, Any], mandatory_names: tuple[tuple[str, int], ...]
) -> bytes:
    """Encode the IEs held in ``values`` (an instance dict) in its order."""
    parts: list[bytes] = []
    for name, value in values.items():
        if not value:
            continue  # None, () and header values of 0
        row = rows.get(name)
        if row is None:
            if name == _EXTRA:
                for item in value:
                    parts.append(item.encode())
            continue  # sequence, seid, priority
        ie_type: int = row[5]
        if row[2]:
            for item in value:
                if type(item) is row[7] and row[6]:
                    parts.append(_encode_inline(row, item.value))
                    continue
                if item.TYPE != ie_type:
                    raise obj._wrong(name, item)
                parts.append(item.encode())
        elif type(value) is row[7] and row[6]:
            parts.append(_encode_inline(row, value.value))
        else:
            if value.TYPE != ie_type:
                raise obj._wrong(name, value)
            parts.append(value.encode())
    for name, _ in mandatory_names:
        if not values.get(name):
            raise obj._missing(name)
    return b"".join(parts)


def _encode_inline(row: Any, value: int) -> bytes:
    """Header and payload of a U8/U16/U32/EnumOctet leaf (see pfcp.ie.base._layout)."""
    layout: int = row[6]
    if layout == _LAYOUT_U32:
        return row[11] + _pack_u32(value)  # type: ignore[no-any-return]
    if layout == _LAYOUT_U16:
        return row[11] + _pack_u16(value)  # type: ignore[no-any-return]
    if layout == _LAYOUT_U8:
        return row[11] + bytes((value,))  # type: ignore[no-any-return]
    return row[11] + bytes((value & row[9],))  # type: ignore[no-any-return]
