"""Bounded fuzzing of the decoder (go-pfcp FuzzParse, open5gs pfcp-message-fuzz).

Properties, for random bytes and for mutations of the golden vector and the
stored vectors:

* ``decode``/``decode_all`` raise nothing but :class:`pfcp.DecodeError`;
* whatever decodes re-encodes without error, to a message that decodes equal;
* inserting well-formed unknown (types not in Table 8.1.2-1) and vendor IEs
  anywhere in the IE tree is byte-preserving: ``encode(decode(b)) == b``.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pfcp
from pfcp.ie.base import GroupedIE, VendorIE
from tests.data.pfcp.make_vectors import golden_bytes, stored_vectors
from tests.strategies import ie_strategy
from tests.unit.pfcp.wire import body_start, insertion_points, replace_payload, splice, tlv_tree, walk

_GOLDEN = golden_bytes()
SEEDS: list[bytes] = [*([_GOLDEN] if _GOLDEN is not None else []), *stored_vectors().values()]
#: Seeds whose IE tree has at least one IE (everything but header-only messages).
TREE_SEEDS = [seed for seed in SEEDS if len(seed) > (16 if seed[0] & 0x01 else 8)]

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: IE types below 32768 that Table 8.1.2-1 does not list.
UNKNOWN_TYPES = tuple(t for t in (0, 400, 0x1234, 0x7F00, 0x7FFF) if t not in pfcp.IE_CLASSES)
ALL_IE_CLASSES = [pfcp.IE_CLASSES[t] for t in sorted(pfcp.IE_CLASSES)]


def check_robust(data: bytes) -> None:
    """The fuzz oracle: reject with DecodeError, or round-trip to an equal value."""
    try:
        messages = pfcp.decode_all(data)
    except pfcp.DecodeError:
        messages = None
    if messages is not None:
        again = pfcp.encode_all(messages)
        assert pfcp.decode_all(again) == messages
    try:
        message = pfcp.decode(data)
    except pfcp.DecodeError:
        return
    once = pfcp.encode(message)
    assert pfcp.decode(once) == message
    assert pfcp.encode(pfcp.decode(once)) == once


def test_tree_helpers_see_the_golden_structure() -> None:
    if _GOLDEN is None:
        pytest.skip("../shared/pfcp-vectors is missing")
    top = tlv_tree(_GOLDEN, 16, len(_GOLDEN))
    assert [n.ie_type for n in top] == [60, 57, 1, 1, 3, 3, 7, 6, 113]
    assert [n.ie_type for n in top[2].children or ()] == [56, 29, 2, 95, 108, 81, 109]
    # Inserting an empty unknown IE and fixing the lengths keeps the message decodable.
    pos, ancestors = insertion_points(_GOLDEN)[5]
    grown = splice(_GOLDEN, pos, pos, b"\x7f\x00\x00\x00", ancestors)
    assert len(grown) == len(_GOLDEN) + 4
    assert pfcp.encode(pfcp.decode(grown)) == grown


# --------------------------------------------------------------------------
# Properties


@FUZZ
@given(st.binary(max_size=120))
def test_random_bytes(data: bytes) -> None:
    check_robust(data)


_MESSAGE_TYPES = st.sampled_from(sorted(pfcp.MESSAGE_CLASSES)) | st.integers(0, 255)


@st.composite
def framed_messages(draw: st.DrawFn) -> bytes:
    """A well-framed header of a random message type around random TLVs."""
    message_type = draw(_MESSAGE_TYPES)
    cls = pfcp.MESSAGE_CLASSES.get(message_type)
    declared = sorted({s.ie_type for s in cls._SPECS}) if cls is not None and cls._SPECS else [60, 19, 96]
    ie_types = st.sampled_from(declared) | st.integers(0, 0xFFFF)
    ies = draw(st.lists(st.tuples(ie_types, st.binary(max_size=24)), max_size=6))
    body = b"".join(struct.pack(">HH", t, len(p)) + p for t, p in ies)
    s_flag = draw(st.booleans())
    mp = draw(st.booleans())
    flags = 0x20 | (0x01 if s_flag else 0) | (0x02 if mp else 0)
    tail = (draw(st.integers(0, 0xFFFFFF)) << 8) | (draw(st.integers(0, 15)) << 4 if mp else 0)
    seid = struct.pack(">Q", draw(st.integers(0, 2**64 - 1))) if s_flag else b""
    length = len(seid) + 4 + len(body)
    return struct.pack(">BBH", flags, message_type, length) + seid + struct.pack(">I", tail) + body


@FUZZ
@given(framed_messages())
def test_framed_random_ies(data: bytes) -> None:
    check_robust(data)


@st.composite
def ie_payloads(draw: st.DrawFn) -> tuple[type[pfcp.IE], bytes]:
    """An IE class and a payload: random, or a valid encoding that is then damaged."""
    cls = draw(st.sampled_from(ALL_IE_CLASSES))
    if draw(st.booleans()):
        return cls, draw(st.binary(max_size=40))
    payload = bytearray(draw(ie_strategy(cls)).encode_payload())
    for _ in range(draw(st.integers(0, 3)) if payload else 0):
        i = draw(st.integers(0, min(len(payload) - 1, 7)) | st.integers(0, len(payload) - 1))
        payload[i] = draw(st.integers(0, 255) | st.just(payload[i] ^ (1 << draw(st.integers(0, 7)))))
    if draw(st.booleans()):
        return cls, bytes(payload)
    cut = draw(st.integers(0, len(payload)))
    return cls, bytes(payload[:cut]) + draw(st.binary(max_size=3))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ie_payloads())
def test_every_ie_class_on_damaged_payloads(case: tuple[type[pfcp.IE], bytes]) -> None:
    cls, payload = case
    try:
        value = pfcp.decode_ie(cls.TYPE, payload, 0, len(payload))
    except pfcp.DecodeError:
        return
    again = value.encode_payload()
    assert cls.decode_payload(again, 0, len(again)) == value


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    seed = draw(st.sampled_from(SEEDS))
    kind = draw(st.sampled_from(("flip", "truncate", "length", "resize", "header")))
    data = bytearray(seed)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "truncate":
        cut = draw(st.integers(0, len(data) - 1))
        data = data[:cut]
        if len(data) >= 4 and draw(st.booleans()):
            struct.pack_into(">H", data, 2, len(data) - 4)  # claim exactly what is left
        return bytes(data)
    if kind == "header":
        data[0] = draw(st.integers(0, 255))
        if draw(st.booleans()):
            struct.pack_into(">H", data, 2, draw(st.integers(0, 0xFFFF)))
        return bytes(data)
    nodes = walk(tlv_tree(seed, body_start(seed), len(seed)))
    if not nodes:
        return bytes(data)
    node, ancestors = draw(st.sampled_from(nodes))
    if kind == "length":
        # A lying length field: the framing around it no longer adds up.
        size = draw(st.integers(0, 0xFFFF) | st.integers(max(0, node.end - node.start - 8), node.end - node.start))
        struct.pack_into(">H", data, node.start + 2, size)
        return bytes(data)
    # "resize": new payload for one IE, every enclosing length fixed, so the
    # IE's own decoder (or the grouped walker) sees well-framed garbage.
    old = seed[node.start + 4 : node.end]
    cut = draw(st.integers(0, len(old)))
    new = old[:cut] + draw(st.binary(max_size=6))
    return replace_payload(seed, node, ancestors, new)


@FUZZ
@given(mutants())
def test_mutated_vectors(data: bytes) -> None:
    check_robust(data)


_UNKNOWN_OR_VENDOR = st.one_of(
    st.builds(
        lambda t, p: struct.pack(">HH", t, len(p)) + p,
        st.sampled_from(UNKNOWN_TYPES),
        st.binary(max_size=10),
    ),
    st.builds(
        lambda t, eid, p: struct.pack(">HHH", t, len(p) + 2, eid) + p,
        st.integers(0x8000, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.binary(max_size=10),
    ),
)


@st.composite
def with_inserted_ies(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(TREE_SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        pos, ancestors = draw(st.sampled_from(insertion_points(data)))
        data = splice(data, pos, pos, draw(_UNKNOWN_OR_VENDOR), ancestors)
    return data


@FUZZ
@given(with_inserted_ies())
def test_unknown_and_vendor_ies_are_byte_preserved(data: bytes) -> None:
    message = pfcp.decode(data)
    assert pfcp.encode(message) == data
    kept = [ie for ie in _all_raw(message) if isinstance(ie, VendorIE | pfcp.UnknownIE)]
    assert kept, "the inserted IEs must be kept somewhere in the tree"


def _all_raw(obj: pfcp.Message | GroupedIE) -> list[pfcp.IE]:
    out: list[pfcp.IE] = list(obj.extra)
    for ie in obj.ies():
        if isinstance(ie, GroupedIE):
            out += _all_raw(ie)
    return out


def test_inserted_vendor_ie_lands_in_the_grouped_extra() -> None:
    if _GOLDEN is None:
        pytest.skip("../shared/pfcp-vectors is missing")
    top = tlv_tree(_GOLDEN, 16, len(_GOLDEN))
    pdr = top[2]
    assert pdr.children is not None
    pdi = pdr.children[2]
    vendor = struct.pack(">HHH", 0x8123, 5, 18681) + b"abc"
    data = splice(_GOLDEN, pdi.start, pdi.start, vendor, (pdr,))  # between Precedence and PDI
    message = pfcp.decode(data)
    assert isinstance(message, pfcp.SessionEstablishmentRequest)
    first = message.create_pdr[0]
    assert first.extra == (VendorIE(0x8123, 18681, b"abc"),)
    assert first.pdi == pfcp.decode(_GOLDEN).create_pdr[0].pdi  # type: ignore[attr-defined]
    assert pfcp.encode(message) == data
