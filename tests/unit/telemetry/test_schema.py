"""The topic tree and the payload schemas: builders produce what the table documents, validate() catches the rest."""

from __future__ import annotations

import json

import pytest

from edge_sites.telemetry import SCHEMA_VERSION, SCHEMAS, PayloadError, decode, encode, validate
from edge_sites.telemetry.payloads import event_payload, metrics_payload, status_payload, usage_payload
from edge_sites.telemetry.topics import (
    STATUS_FILTER,
    UpfTopic,
    event_filter,
    event_kind,
    event_topic,
    parse_upf_topic,
    site_filter,
    upf_topic,
)


def _status() -> dict[str, object]:
    return status_payload(
        state="online",
        reason="started",
        node_id="198.18.10.2",
        site="edge-1",
        time=1_700_000_000.5,
        recovery_time_stamp=1_700_000_000,
        features=["FTUP"],
    )


def _metrics() -> dict[str, object]:
    return metrics_payload(
        node_id="upf1.example.org",
        site="edge-1",
        time=1.0,
        recovery_time_stamp=2,
        interval=10.0,
        sessions=3,
        uplink=(10, None, 1),
        downlink=(20, 2000, 0),
        network_instances={"internet": ((10, None, None), (20, None, None))},
        drops={"forward.ul_no_pdr": 1},
    )


def _usage() -> dict[str, object]:
    return usage_payload(
        node_id="n",
        site="s",
        time=1.0,
        message="session-report",
        cp_seid=7,
        up_seid=9,
        urr_id=1,
        ur_seqn=0,
        trigger=["VOLTH"],
        start_time=1.0,
        end_time=2.0,
        ul_bytes=1500,
        dl_bytes=0,
        ul_packets=3,
        dl_packets=0,
        duration=None,
    )


def _event() -> dict[str, object]:
    return event_payload(
        id=4, at="2025-01-01T00:00:00+00:00", kind="upf.down", supi=None, upf="n", session_id=None, detail={"why": "x"}
    )


@pytest.mark.parametrize(
    ("kind", "payload"), [("status", _status()), ("metrics", _metrics()), ("usage", _usage()), ("event", _event())]
)
def test_builders_match_the_documented_schema(kind: str, payload: dict[str, object]) -> None:
    assert validate(kind, payload) == []
    assert payload["schema"] == SCHEMA_VERSION
    assert set(payload) == set(SCHEMAS[kind])  # every documented field, nothing else
    assert decode(kind, encode(payload)) == json.loads(json.dumps(payload))


def test_validate_lists_every_problem_with_its_path() -> None:
    payload = _metrics()
    payload["sessions"] = "3"
    payload["uplink"] = {"packets": True, "bytes": None}
    payload["network_instances"] = {"internet": {"uplink": {"packets": 1, "bytes": 1, "drops": None}}}
    payload["drops"] = {"x": 1.5}
    payload["extra"] = 1
    del payload["site"]
    assert sorted(validate("metrics", payload)) == sorted(
        [
            "site: missing",
            "sessions: expected int, got string",
            "uplink.packets: expected int, got bool",
            "uplink.drops: missing",
            "network_instances.internet.downlink: missing",
            "drops.x: expected int, got number",
            "extra: not in the schema",
        ]
    )


def test_choices_nulls_version_and_unknown_kinds() -> None:
    status = _status()
    status["state"] = "maybe"
    status["features"] = ["FTUP", 3]
    status["recovery_time_stamp"] = None
    assert validate("status", status) == [
        "state: 'maybe' is not one of online, offline",
        "recovery_time_stamp: null is not allowed",
        "features[1]: expected string, got int",
    ]
    newer = {**_event(), "schema": SCHEMA_VERSION + 1}
    assert validate("event", newer) == [f"schema: version {SCHEMA_VERSION + 1}, expected {SCHEMA_VERSION}"]
    assert validate("nope", {}) == ["unknown payload kind 'nope' (kinds: status, metrics, usage, event)"]
    assert validate("usage", [1]) == ["(payload): expected an object, got list"]
    with pytest.raises(PayloadError, match="not JSON"):
        decode("usage", b"{")


def test_topic_tree() -> None:
    topic = upf_topic("edge-1", "2001:db8::1", "status")
    assert topic == "edgecups/v1/sites/edge-1/upfs/2001:db8::1/status"
    assert parse_upf_topic(topic) == UpfTopic("edge-1", "2001:db8::1", "status")
    assert parse_upf_topic("edgecups/v1/sites/edge-1/upfs/x/other") is None
    assert parse_upf_topic("edgecups/v1/sites//upfs/x/status") is None
    assert parse_upf_topic("edgecups/v2/sites/a/upfs/x/status") is None
    assert STATUS_FILTER == "edgecups/v1/sites/+/upfs/+/status"
    assert site_filter("edge-1") == "edgecups/v1/sites/edge-1/#"
    assert event_topic("session.created") == "edgecups/v1/events/session/created"
    assert event_kind("edgecups/v1/events/session/created") == "session.created"
    assert event_kind("edgecups/v1/sites/x") is None
    assert event_filter("upf") == "edgecups/v1/events/upf/#"
    assert event_filter() == "edgecups/v1/events/#"


@pytest.mark.parametrize("name", ["", "a/b", "a+", "#", "x\x00"])
def test_names_that_would_escape_their_branch_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be an MQTT topic level"):
        upf_topic(name, "n", "usage")
    with pytest.raises(ValueError, match="cannot be an MQTT topic level"):
        upf_topic("s", name, "usage")
    if name:
        with pytest.raises(ValueError, match="cannot be an MQTT topic level"):
            event_topic(f"upf.{name}")
