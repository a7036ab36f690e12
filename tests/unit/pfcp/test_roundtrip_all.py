"""Round trip of every registered IE class and every message class with
generated values (scapy's test/contrib/pfcp.uts does this for every IE).

Properties: for an IE ``x`` with payload ``p = x.encode_payload()``,
``cls.decode_payload(p, 0, len(p)) == x``; for a message ``m``,
``decode(encode(m)) == m`` and ``encode(decode(encode(m))) == encode(m)``.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pfcp
from pfcp.ie.base import GroupedIE, OpaqueIE
from tests.strategies import extra_ies, ie_strategy, message_strategy

IE_CLASSES = [pfcp.IE_CLASSES[t] for t in sorted(pfcp.IE_CLASSES)]
MESSAGE_CLASSES = [pfcp.MESSAGE_CLASSES[t] for t in sorted(pfcp.MESSAGE_CLASSES)]

IE_SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGE_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def test_every_ie_type_of_the_spec_is_registered() -> None:
    assert {int(t) for t in pfcp.IEType} <= set(pfcp.IE_CLASSES)
    assert all(cls.TYPE == t for t, cls in pfcp.IE_CLASSES.items())
    kinds = {
        "grouped": sum(issubclass(c, GroupedIE) for c in IE_CLASSES),
        "opaque": sum(issubclass(c, OpaqueIE) for c in IE_CLASSES),
    }
    assert kinds["grouped"] > 20 and kinds["opaque"] > 0
    assert len(IE_CLASSES) - kinds["grouped"] - kinds["opaque"] > 100  # typed leaves


@pytest.mark.parametrize("cls", IE_CLASSES, ids=lambda c: f"{c.TYPE}-{c.__name__}")
@IE_SETTINGS
@given(data=st.data())
def test_ie_round_trip(cls: type[pfcp.IE], data: st.DataObject) -> None:
    value = data.draw(ie_strategy(cls))
    assert type(value) is cls
    payload = value.encode_payload()
    assert cls.decode_payload(payload, 0, len(payload)) == value
    whole = value.encode()
    assert whole == struct.pack(">HH", cls.TYPE, len(payload)) + payload
    assert pfcp.decode_ie(cls.TYPE, whole, 4, len(whole)) == value


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda c: c.__name__)
@MESSAGE_SETTINGS
@given(data=st.data())
def test_message_round_trip(cls: type[pfcp.Message], data: st.DataObject) -> None:
    message = data.draw(message_strategy(cls))
    wire = pfcp.encode(message)
    decoded = pfcp.decode(wire)
    assert type(decoded) is cls
    assert decoded == message
    assert (decoded.sequence, decoded.seid, decoded.priority) == (message.sequence, message.seid, message.priority)
    assert pfcp.encode(decoded) == wire


@MESSAGE_SETTINGS
@given(
    messages=st.lists(st.sampled_from(MESSAGE_CLASSES).flatmap(message_strategy), min_size=1, max_size=3),
)
def test_datagram_of_several_messages_round_trip(messages: list[pfcp.Message]) -> None:
    wire = pfcp.encode_all(messages)
    assert pfcp.decode_all(wire) == messages
    assert pfcp.encode_all(pfcp.decode_all(wire)) == wire


@MESSAGE_SETTINGS
@given(
    message_type=st.integers(0, 255).filter(lambda t: t not in pfcp.MESSAGE_CLASSES),
    sequence=st.integers(0, 0xFFFFFF),
    seid=st.none() | st.integers(0, 2**64 - 1),
    extra=extra_ies,
)
def test_unknown_message_types_round_trip(
    message_type: int, sequence: int, seid: int | None, extra: tuple[pfcp.IE, ...]
) -> None:
    message = pfcp.GenericMessage(type=message_type, sequence=sequence, seid=seid, extra=extra)
    wire = pfcp.encode(message)
    assert wire[1] == message_type
    decoded = pfcp.decode(wire)
    assert isinstance(decoded, pfcp.GenericMessage)
    assert decoded == message
    assert pfcp.encode(decoded) == wire
