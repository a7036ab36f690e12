"""The MQTT topic tree of EdgeCUPS telemetry (version 1 of the tree, ``edgecups/v1``).

::

    edgecups/v1/sites/{site}/upfs/{node_id}/status    retained, QoS 1: "online" / "offline" (the Last Will)
    edgecups/v1/sites/{site}/upfs/{node_id}/metrics   QoS 0, every ``mqtt.interval`` seconds: counters
    edgecups/v1/sites/{site}/upfs/{node_id}/usage     QoS 1: one message per usage report sent to the CP
    edgecups/v1/events/{kind, dots as levels}         QoS 1, from the control plane: upf/down, session/created...

A site's UPFs publish only under their own ``sites/{site}/`` branch (the broker's ACL enforces
it, see deploy/mosquitto/); the control plane publishes under ``events/`` and reads everything.
Names become topic levels as they are: a name holding ``/``, ``+``, ``#`` or NUL is refused
(it would open or escape a branch), and so is an empty one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "EVENTS_FILTER",
    "PREFIX",
    "STATUS_FILTER",
    "UPF_LEAVES",
    "UpfTopic",
    "event_filter",
    "event_kind",
    "event_topic",
    "level",
    "parse_upf_topic",
    "site_filter",
    "upf_topic",
]

PREFIX: Final = "edgecups/v1"
#: Every UPF's status, as the control plane subscribes to it.
STATUS_FILTER: Final = f"{PREFIX}/sites/+/upfs/+/status"
#: Every control-plane event.
EVENTS_FILTER: Final = f"{PREFIX}/events/#"

UpfLeaf = Literal["status", "metrics", "usage"]
UPF_LEAVES: Final[tuple[UpfLeaf, ...]] = ("status", "metrics", "usage")
_FORBIDDEN: Final = frozenset("/+#\x00")


def level(name: str, what: str = "name") -> str:
    """``name`` as one topic level; ValueError when it cannot be one."""
    if not name or any(c in _FORBIDDEN for c in name):
        raise ValueError(f"{what} {name!r} cannot be an MQTT topic level (empty, or holds '/', '+', '#' or NUL)")
    return name


def upf_topic(site: str, node_id: str, leaf: UpfLeaf) -> str:
    """``edgecups/v1/sites/{site}/upfs/{node_id}/{leaf}``."""
    return f"{PREFIX}/sites/{level(site, 'site')}/upfs/{level(node_id, 'node id')}/{leaf}"


def site_filter(site: str) -> str:
    """Everything one site publishes (``edgecups/v1/sites/{site}/#``)."""
    return f"{PREFIX}/sites/{level(site, 'site')}/#"


def event_topic(kind: str) -> str:
    """``edgecups/v1/events/upf/down`` for the event kind ``upf.down``."""
    parts = kind.split(".")
    for part in parts:
        level(part, "event kind part")
    return f"{PREFIX}/events/{'/'.join(parts)}"


def event_filter(kind: str | None = None) -> str:
    """The subscription for events of ``kind`` and its sub-kinds (``session`` -> ``events/session/#``);
    None: every event. ``session.created`` matches itself and anything below it."""
    if kind is None:
        return EVENTS_FILTER
    return event_topic(kind) + "/#"  # MQTT: "a/#" also matches "a" itself


def event_kind(topic: str) -> str | None:
    """The event kind of an ``edgecups/v1/events/...`` topic; None for any other topic."""
    head = f"{PREFIX}/events/"
    if not topic.startswith(head) or len(topic) == len(head):
        return None
    return topic[len(head) :].replace("/", ".")


@dataclass(frozen=True, slots=True)
class UpfTopic:
    """A topic of a UPF's branch, taken apart."""

    site: str
    node_id: str
    leaf: UpfLeaf


def parse_upf_topic(topic: str) -> UpfTopic | None:
    """The site, Node ID and leaf of ``edgecups/v1/sites/{site}/upfs/{node_id}/{leaf}``; None otherwise."""
    parts = topic.split("/")
    if len(parts) != 7 or "/".join(parts[:2]) != PREFIX or parts[2] != "sites" or parts[4] != "upfs":
        return None
    site, node_id, leaf = parts[3], parts[5], parts[6]
    if not site or not node_id:
        return None
    for known in UPF_LEAVES:
        if leaf == known:
            return UpfTopic(site, node_id, known)
    return None
