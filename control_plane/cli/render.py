"""Rich trees of decoded PFCP messages, drawn from :func:`pfcp.jsonview.to_dict` views.

Drawing from the JSON view keeps ``-o tree`` and ``-o json`` showing the same
values under the same names.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from rich.tree import Tree

from pfcp.jsonview import JSONValue

__all__ = ["message_tree"]

_HEADER_KEYS = ("message", "type", "sequence", "seid", "priority")
_IE_KEYS = ("ie", "type")
_HEX_WIDTH = {"teid": 8, "seid": 16}


def message_tree(view: Mapping[str, JSONValue]) -> Tree:
    """A tree of one message view: its name, its header, then every IE (grouped IEs nested)."""
    label = Text()
    label.append(str(view.get("message")), style="bold cyan")
    label.append(f" ({view.get('type')})")
    tree = Tree(label)
    header = tree.add(Text("Header", style="bold"))
    header.add(_pair("message type", view.get("type")))
    header.add(_pair("sequence", view.get("sequence")))
    seid = view.get("seid")
    header.add(_pair("SEID", _hex_int("seid", seid) if seid is not None else "none (S=0)"))
    priority = view.get("priority")
    header.add(_pair("priority", priority if priority is not None else "none (MP=0)"))
    for key, value in view.items():
        if key not in _HEADER_KEYS:
            _add_field(tree, key, value)
    return tree


def _add_field(parent: Tree, key: str, value: JSONValue) -> None:
    if isinstance(value, dict):
        _add_mapping(parent, key, value)
    elif _is_ie_list(value):
        assert isinstance(value, list)
        for item in value:
            _add_field(parent, key, item)
    else:
        parent.add(_pair(key, _scalar(key, value)))


def _add_mapping(parent: Tree, key: str, value: Mapping[str, JSONValue]) -> None:
    if "ie" not in value:  # a structured value that is not an IE
        node = parent.add(Text(key, style="bold"))
        for child_key, child in value.items():
            _add_field(node, child_key, child)
        return
    label = Text(str(value["ie"]), style="bold green")
    label.append(f" ({value.get('type')})", style="default")
    if key != str(value["ie"]).lower():
        label.append(f" {key}", style="dim")
    fields = {k: v for k, v in value.items() if k not in _IE_KEYS}
    if "value" in fields and not any(isinstance(v, dict) or _is_ie_list(v) for v in fields.values()):
        # A one-value IE on one line; other scalars (encoding details such as
        # the octet count of a flag IE) follow in parentheses.
        label.append(": ")
        label.append(_scalar(key, fields.pop("value")), style="yellow")
        if fields:
            details = ", ".join(f"{k}: {_scalar(k, v)}" for k, v in fields.items())
            label.append(f"  ({details})", style="dim")
        parent.add(label)
        return
    node = parent.add(label)
    for child_key, child in fields.items():
        _add_field(node, child_key, child)


def _is_ie_list(value: JSONValue) -> bool:
    return isinstance(value, list) and any(isinstance(item, dict) for item in value)


def _pair(key: str, value: object) -> Text:
    text = Text(f"{key}: ", style="default")
    text.append(str(value), style="yellow")
    return text


def _scalar(key: str, value: JSONValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and key in _HEX_WIDTH:
        return _hex_int(key, value)
    if isinstance(value, list):
        if not value:
            return "none"
        return " | ".join(_scalar("", item) if not isinstance(item, str) else item for item in value)
    if isinstance(value, str):
        return value if value else '""'
    return str(value)


def _hex_int(key: str, value: JSONValue) -> str:
    if not isinstance(value, int):
        return str(value)
    return f"0x{value:0{_HEX_WIDTH[key]}x} ({value})"
