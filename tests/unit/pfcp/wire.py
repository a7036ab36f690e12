"""Octet-level helpers for building and mutating PFCP messages in tests.

``tlv_tree`` reads the IE tree of an encoded message (grouped IEs by the
registry), so tests can insert, remove or resize IEs and fix every enclosing
length, without going through the codec under test.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pfcp
from pfcp.ie.base import GroupedIE


def tlv(ie_type: int, payload: bytes) -> bytes:
    """One IE: Type, Length, payload (§8.1.1)."""
    return struct.pack(">HH", ie_type, len(payload)) + payload


def node_message(message_type: int, body: bytes, sequence: int = 1) -> bytes:
    """A node-related message (S=0) around ``body``."""
    return struct.pack(">BBHI", 0x20, message_type, len(body) + 4, sequence << 8) + body


def session_message(message_type: int, body: bytes, seid: int = 0, sequence: int = 1) -> bytes:
    """A session-related message (S=1) around ``body``."""
    return struct.pack(">BBHQI", 0x21, message_type, len(body) + 12, seid, sequence << 8) + body


@dataclass(frozen=True)
class Node:
    start: int
    end: int
    ie_type: int
    children: tuple[Node, ...] | None


def tlv_tree(data: bytes, pos: int, end: int) -> tuple[Node, ...]:
    nodes = []
    while pos + 4 <= end:
        ie_type, size = struct.unpack_from(">HH", data, pos)
        stop = min(pos + 4 + size, end)
        cls = pfcp.IE_CLASSES.get(ie_type)
        kids = tlv_tree(data, pos + 4, stop) if cls is not None and issubclass(cls, GroupedIE) else None
        nodes.append(Node(pos, stop, ie_type, kids))
        pos = stop
    return tuple(nodes)


def body_start(data: bytes) -> int:
    return 16 if data[0] & 0x01 else 8


def walk(nodes: tuple[Node, ...], path: tuple[Node, ...] = ()) -> list[tuple[Node, tuple[Node, ...]]]:
    """Every node with its ancestors."""
    out = []
    for node in nodes:
        out.append((node, path))
        if node.children is not None:
            out.extend(walk(node.children, (*path, node)))
    return out


def insertion_points(data: bytes) -> list[tuple[int, tuple[Node, ...]]]:
    """Offsets between IEs of every container (message body and grouped IEs), with the enclosing IEs."""
    top = tlv_tree(data, body_start(data), len(data))
    outside: tuple[Node, ...] = ()
    points = [(n.start, outside) for n in top] + [(len(data), outside)]
    for node, path in walk(top):
        if node.children is not None:
            inside = (*path, node)
            points += [(child.start, inside) for child in node.children] + [(node.end, inside)]
    return points


def splice(data: bytes, start: int, stop: int, new: bytes, ancestors: tuple[Node, ...]) -> bytes:
    """Replace data[start:stop] by ``new`` and fix the lengths of the ancestors and the header."""
    delta = len(new) - (stop - start)
    out = bytearray(data[:start] + new + data[stop:])
    for node in ancestors:
        length = struct.unpack_from(">H", out, node.start + 2)[0] + delta
        struct.pack_into(">H", out, node.start + 2, length)
    struct.pack_into(">H", out, 2, struct.unpack_from(">H", out, 2)[0] + delta)
    return bytes(out)


def replace_payload(data: bytes, node: Node, ancestors: tuple[Node, ...], payload: bytes) -> bytes:
    """``data`` with the payload of the IE ``node`` replaced, its length and every enclosing one fixed."""
    return splice(data, node.start + 4, node.end, payload, (*ancestors, node))


def remove(data: bytes, node: Node, ancestors: tuple[Node, ...]) -> bytes:
    """``data`` without the IE ``node``, lengths fixed."""
    return splice(data, node.start, node.end, b"", ancestors)


def find(data: bytes, *path: int) -> tuple[Node, tuple[Node, ...]]:
    """The first IE reached by a path of IE types from the message body, with its ancestors."""
    nodes = tlv_tree(data, body_start(data), len(data))
    ancestors: tuple[Node, ...] = ()
    for depth, ie_type in enumerate(path):
        node = next(n for n in nodes if n.ie_type == ie_type)
        if depth == len(path) - 1:
            return node, ancestors
        assert node.children is not None
        ancestors = (*ancestors, node)
        nodes = node.children
    raise ValueError("empty path")
