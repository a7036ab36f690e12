"""Builders of the payloads :mod:`.schema` documents, from plain values (no PFCP or database types)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from .schema import SCHEMA_VERSION

__all__ = ["Counters", "event_payload", "metrics_payload", "status_payload", "usage_payload"]

#: packets, bytes and drops (None: not counted there).
Counters = tuple[int, int | None, int | None]


def status_payload(
    *,
    state: Literal["online", "offline"],
    reason: Literal["started", "stopped", "connection-lost"],
    node_id: str,
    site: str,
    time: float,
    recovery_time_stamp: int,
    features: Iterable[str],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "node_id": node_id,
        "site": site,
        "time": time,
        "state": state,
        "reason": reason,
        "recovery_time_stamp": recovery_time_stamp,
        "features": sorted(features),
    }


def _counters(counters: Counters) -> dict[str, Any]:
    packets, octets, drops = counters
    return {"packets": packets, "bytes": octets, "drops": drops}


def metrics_payload(
    *,
    node_id: str,
    site: str,
    time: float,
    recovery_time_stamp: int,
    interval: float,
    sessions: int,
    uplink: Counters,
    downlink: Counters,
    network_instances: Mapping[str, tuple[Counters, Counters]],
    drops: Mapping[str, int],
) -> dict[str, Any]:
    """``network_instances``: name -> (uplink, downlink) counters."""
    return {
        "schema": SCHEMA_VERSION,
        "node_id": node_id,
        "site": site,
        "time": time,
        "recovery_time_stamp": recovery_time_stamp,
        "interval": interval,
        "sessions": sessions,
        "uplink": _counters(uplink),
        "downlink": _counters(downlink),
        "network_instances": {
            name: {"uplink": _counters(ul), "downlink": _counters(dl)}
            for name, (ul, dl) in sorted(network_instances.items())
        },
        "drops": dict(sorted(drops.items())),
    }


def usage_payload(
    *,
    node_id: str,
    site: str,
    time: float,
    message: Literal["session-report", "modification", "deletion"],
    cp_seid: int,
    up_seid: int,
    urr_id: int,
    ur_seqn: int,
    trigger: Iterable[str],
    start_time: float,
    end_time: float,
    ul_bytes: int,
    dl_bytes: int,
    ul_packets: int,
    dl_packets: int,
    duration: int | None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "node_id": node_id,
        "site": site,
        "time": time,
        "message": message,
        "cp_seid": cp_seid,
        "up_seid": up_seid,
        "urr_id": urr_id,
        "ur_seqn": ur_seqn,
        "trigger": list(trigger),
        "start_time": start_time,
        "end_time": end_time,
        "ul_bytes": ul_bytes,
        "dl_bytes": dl_bytes,
        "ul_packets": ul_packets,
        "dl_packets": dl_packets,
        "duration": duration,
    }


def event_payload(
    *,
    id: int,
    at: str,
    kind: str,
    supi: str | None,
    upf: str | None,
    session_id: int | None,
    detail: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "id": id,
        "at": at,
        "kind": kind,
        "supi": supi,
        "upf": upf,
        "session_id": session_id,
        "detail": dict(detail),
    }
