"""pfcp.jsonview: the JSON-able view behind ``edgecups pfcp decode``."""

from __future__ import annotations

import dataclasses
import io
import json
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import pfcp
from control_plane.cli.render import message_tree
from pfcp.ie.base import OpaqueIE
from pfcp.jsonview import error_to_dict, ie_type_name, to_dict

CORPUS = Path(__file__).resolve().parents[2] / "data" / "pfcp"


def walk(value: Any) -> list[Any]:
    """Every value nested in a JSON view, the view included."""
    out = [value]
    if isinstance(value, dict):
        for item in value.values():
            out.extend(walk(item))
    elif isinstance(value, list):
        for item in value:
            out.extend(walk(item))
    return out


def test_golden_view_is_plain_json(golden_ser_bytes: bytes) -> None:
    msg = pfcp.decode(golden_ser_bytes)
    # wire_order only records arrival order: never part of the view.
    msg = dataclasses.replace(msg, wire_order=("pdn_type", "node_id", "cp_f_seid"))
    view = to_dict(msg)
    assert json.loads(json.dumps(view)) == view
    for value in walk(view):
        assert type(value) in (dict, list, str, int, bool), value  # no enums, addresses or bytes left
        if isinstance(value, dict):
            assert "wire_order" not in value
            assert None not in value.values()
            assert [] not in value.values()
    # Every IE carries its name and type number.
    ies = [v for v in walk(view) if isinstance(v, dict) and "ie" in v]
    assert len(ies) == 48
    assert all(pfcp.IEType[v["ie"]] == v["type"] for v in ies)


def test_flags_list_names_and_unknown_bits() -> None:
    flags = pfcp.ApplyActionFlags.FORW | pfcp.ApplyActionFlags.NOCP
    assert to_dict(pfcp.ApplyAction(flags, 1))["value"] == ["FORW", "NOCP"]
    assert to_dict(pfcp.ApplyAction(pfcp.ApplyActionFlags(0x8002), 2))["value"] == ["FORW", 0x8000]
    assert to_dict(pfcp.ApplyAction(pfcp.ApplyActionFlags(0), 1))["value"] == []


def test_enum_values_the_enum_does_not_name_stay_ints() -> None:
    known = pfcp.SourceInterface.decode_payload(b"\x01", 0, 1)
    spare = pfcp.SourceInterface.decode_payload(b"\x0e", 0, 1)
    assert to_dict(known) == {"ie": "SOURCE_INTERFACE", "type": 20, "value": "CORE"}
    assert to_dict(spare) == {"ie": "SOURCE_INTERFACE", "type": 20, "value": 14}


def test_addresses_bytes_and_absent_fields() -> None:
    fteid = pfcp.FTEID(teid=1, ipv6=IPv6Address("2001:db8::1"))
    assert to_dict(fteid) == {
        "ie": "F_TEID",
        "type": 21,
        "teid": 1,
        "ipv6": "2001:db8::1",
        "choose_v4": False,
        "choose_v6": False,
    }
    choose = pfcp.FTEID(teid=None, choose_v4=True, choose_id=5)
    assert to_dict(choose) == {"ie": "F_TEID", "type": 21, "choose_v4": True, "choose_v6": False, "choose_id": 5}


def test_raw_ies() -> None:
    assert to_dict(pfcp.UnknownIE(999, b"")) == {"ie": "UNKNOWN", "type": 999, "payload": ""}
    assert to_dict(pfcp.VendorIE(0x8001, 10415, b"\x01\xff")) == {
        "ie": "VENDOR_SPECIFIC",
        "type": 32769,
        "enterprise_id": 10415,
        "payload": "01ff",
    }


def test_every_opaque_ie_type_shows_its_name_and_payload() -> None:
    opaque = {t: cls for t, cls in pfcp.IE_CLASSES.items() if issubclass(cls, OpaqueIE)}
    assert opaque, "the registry has opaque IE types"
    for ie_type, cls in opaque.items():
        assert to_dict(cls(b"\x00\xab")) == {"ie": pfcp.IEType(ie_type).name, "type": ie_type, "payload": "00ab"}


def test_unknown_message_type() -> None:
    data = bytes.fromhex("2063000c00000500") + pfcp.UnknownIE(999, b"\x01").encode()
    data = data[:2] + (len(data) - 4).to_bytes(2, "big") + data[4:]
    view = to_dict(pfcp.decode(data))
    assert view == {
        "message": "UNKNOWN",
        "type": 99,
        "sequence": 5,
        "extra": [{"ie": "UNKNOWN", "type": 999, "payload": "01"}],
    }


def test_decode_error_view() -> None:
    with pytest.raises(pfcp.DecodeError) as caught:
        pfcp.decode(bytes.fromhex("2101000c0000000000000001000002"))
    view = error_to_dict(caught.value)
    assert view["cause"] == caught.value.cause.name
    assert view["cause_value"] == int(caught.value.cause)
    assert view["message"] == "HEARTBEAT_REQUEST"
    assert ie_type_name(0x8001) == "VENDOR_SPECIFIC"
    assert ie_type_name(60) == "NODE_ID"
    assert ie_type_name(4000) == "UNKNOWN"


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.bin")), ids=lambda p: p.stem)
def test_corpus_messages_view_and_render(path: Path) -> None:
    """Every capture of the corpus turns into plain JSON and a tree that names every IE."""
    view = to_dict(pfcp.decode(path.read_bytes()))
    assert json.loads(json.dumps(view)) == view
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(message_tree(view))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert text.startswith(f"{view['message']} ({view['type']})")
    for value in walk(view):
        if isinstance(value, dict) and "ie" in value:
            assert f"{value['ie']} ({value['type']})" in text
