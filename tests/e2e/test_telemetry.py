"""Issue 8 on the simulated deployment: site telemetry over the deployment's own MQTT broker.

``sim up`` runs Mosquitto in the control plane's namespace with the repository's ACL and one
broker user per site; every UPF agent publishes under its site's branch, the control plane its
events, and these tests read it all back as the viewer user (``Simulation.mqtt_collector``),
checking every payload against the documented schema (edge_sites/telemetry/schema.py).

1. Every site's UPF is online: a new subscriber gets its status from the broker (retained), for
   the run the control plane is associated with; ``sim status`` shows it beside PFCP health.
2. Each UPF publishes metrics (every second in the simulation) counting its sessions, and after
   traffic from every UE its packet counters have grown by at least what its UEs sent through it
   and received back.
3. A volume threshold makes a UPF report usage: every report the control plane stored (the API's
   session usage) arrives over MQTT with the same URR ID, UR-SEQN and volumes, and so does the
   final report of the session's deletion, holding what was carried since the last one.
4. A killed agent goes offline by its Last Will (retained, reason ``connection-lost``, the same
   run) and the control plane marks its UPF down; restarted, it is online again for its new run.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from control_plane.cli.sim import Simulation
from control_plane.cli.sim.plan import METRICS_INTERVAL
from edge_sites.sim.mqtt_watch import Message
from edge_sites.telemetry import validate
from edge_sites.telemetry.topics import PREFIX, STATUS_FILTER, parse_upf_topic, upf_topic
from tests.e2e.helpers import (
    E2E_MARKS,
    apply,
    assert_healthy,
    assert_traffic,
    delete_object,
    mec_policy,
    reopen_with_policy,
    session_view,
    stream_from,
    ue_counters,
    upf_status,
    usage_of,
    wait_until,
)

pytestmark = E2E_MARKS

#: Small, so that a short stream crosses it several times.
VOLUME_THRESHOLD = 200_000
#: A message the broker must deliver within this (a few metrics intervals on 2 busy cores).
ARRIVAL_S = 15.0


def payloads(messages: list[Message], leaf: str, kind: str) -> list[tuple[Message, dict[str, Any]]]:
    """Every message on a UPF's ``leaf`` topic with its payload, each checked against the ``kind`` schema."""
    out = []
    for message in messages:
        topic = parse_upf_topic(message.topic)
        if topic is not None and topic.leaf == leaf:
            payload = json.loads(message.payload)
            assert validate(kind, payload) == [], (message.topic, payload)
            assert (payload["site"], payload["node_id"]) == (topic.site, topic.node_id), message
            out.append((message, payload))
    return out


def latest(messages: list[Message], leaf: str, kind: str, nodes: Collection[str]) -> dict[str, dict[str, Any]] | None:
    """The newest ``leaf`` payload of each of ``nodes``, once every one has one."""
    found = {payload["node_id"]: payload for _, payload in payloads(messages, leaf, kind)}
    return found if set(nodes) <= set(found) else None


def test_every_sites_upf_is_online_by_its_retained_status(sim: Simulation) -> None:
    nodes = {site.node_id: site for site in sim.plan.sites}
    with sim.mqtt_collector((STATUS_FILTER,)) as watch:  # subscribed after every status was sent
        watch.wait_for(lambda ms: latest(ms, "status", "status", nodes), "a status of every UPF", ARRIVAL_S)
        statuses = payloads(watch.messages(), "status", "status")
    assert sorted(m.topic for m, _ in statuses) == sorted(upf_topic(s.name, n, "status") for n, s in nodes.items())
    for message, status in statuses:
        assert message.retain, f"{message.topic}: not retained"
        assert (status["state"], status["reason"]) == ("online", "started"), status
        assert "FTUP" in status["features"], status
        # The run the control plane is associated with (PFCP), not an older one.
        associated = upf_status(sim, status["node_id"])
        assert status["recovery_time_stamp"] == associated.recovery_time_stamp, (status, associated)

    report = sim.status()
    assert report.ok, report.render()
    assert report.broker is not None and report.broker.alive, report.render()
    assert {u.node_id: (u.health, report.mqtt_state(u.node_id)) for u in report.upfs} == {
        node: ("up", "online") for node in nodes
    }, report.render()


def test_metrics_of_every_upf_count_its_sessions_and_the_traffic(sim: Simulation) -> None:
    nodes = {site.node_id: site for site in sim.plan.sites}
    sessions = {node: sum(s.upf == node for s in sim.sessions) for node in nodes}
    with sim.mqtt_collector((f"{PREFIX}/sites/+/upfs/+/metrics",)) as watch:
        before = watch.wait_for(lambda ms: latest(ms, "metrics", "metrics", nodes), "metrics of every UPF", ARRIVAL_S)
        for node, metrics in before.items():
            site = nodes[node]
            assert metrics["site"] == site.name and metrics["interval"] == METRICS_INTERVAL, metrics
            assert metrics["sessions"] == sessions[node], (sessions, metrics)
            assert set(metrics["network_instances"]) == set(site.pools), metrics
        report = assert_traffic(sim)
        # What each UPF carried for its UEs: echo requests and UDP up, their answers down (and
        # the TCP transfers on top, which the traffic report does not count in packets).
        carried = {sim.plan.site(row.site).node_id: (row.sent, row.received) for row in report.sites}
        assert set(carried) == set(nodes), report.table()

        def grown(messages: list[Message]) -> dict[str, dict[str, Any]] | None:
            now = latest(messages, "metrics", "metrics", nodes)
            if now is None:
                return None
            for node, (sent, received) in carried.items():
                old, new = before[node], now[node]
                if new["uplink"]["packets"] - old["uplink"]["packets"] < sent:
                    return None
                if new["downlink"]["packets"] - old["downlink"]["packets"] < received:
                    return None
            return now

        after = watch.wait_for(grown, f"every UPF's packet counters grown by its traffic {carried}", ARRIVAL_S)
    for node, metrics in after.items():
        assert metrics["recovery_time_stamp"] == before[node]["recovery_time_stamp"], "a UPF restarted meanwhile"
        assert metrics["sessions"] == sessions[node], metrics


def test_usage_reports_arrive_over_mqtt_as_the_control_plane_stored_them(sim: Simulation) -> None:
    ue = sim.plan.site("edge-1").ues[0]
    apply(sim, mec_policy(sim, "mec-usage", volume_threshold_bytes=VOLUME_THRESHOLD))
    with sim.mqtt_collector((f"{PREFIX}/sites/+/upfs/+/usage",)) as watch:
        # A new session: its URR counts from zero, so every report is this test's traffic.
        session = reopen_with_policy(sim, sim.session(ue.supi, "mec"), "mec-usage")
        cp_seid = session_view(sim, session).cp_seid
        topic = upf_topic(session.site, session.upf, "usage")

        def arrived(messages: list[Message]) -> list[dict[str, Any]]:
            mine = [(m, p) for m, p in payloads(messages, "usage", "usage") if p["cp_seid"] == cp_seid]
            assert all(m.topic == topic for m, _ in mine), "a report under another UPF's topic"
            return [p for _, p in mine]

        try:
            before = ue_counters(sim, session)
            # 1,000 packets of 1,000 octets: five thresholds' worth.
            sent = stream_from(sim, session, rate_pps=2000, duration=0.5, size=1000, echo=False)
            assert sent.server_received is not None and sent.server_received >= 0.99 * sent.sent, sent.to_dict()
            after = ue_counters(sim, session)
            carried = after["ul_bytes"] - before["ul_bytes"] + after["dl_bytes"] - before["dl_bytes"]
            expected = carried // VOLUME_THRESHOLD
            assert expected >= 4, f"the gNB carried only {carried} octets: {before} -> {after}"
            stored = wait_until(
                f"{expected} usage reports stored for {session.label}",
                lambda: usage_of(sim, session),
                lambda reports: len(reports) >= expected,
                timeout=10,
            )
            keys = {(r.urr_id, r.ur_seqn, r.volume_ul or 0, r.volume_dl or 0) for r in stored}
            assert len(keys) == len(stored) == expected, stored

            def published(payload: dict[str, Any]) -> tuple[int, int, int, int]:
                return payload["urr_id"], payload["ur_seqn"], payload["ul_bytes"], payload["dl_bytes"]

            def all_stored(messages: list[Message]) -> list[dict[str, Any]] | None:
                mine = arrived(messages)
                return mine if {published(p) for p in mine} >= keys else None

            reports = watch.wait_for(all_stored, f"the {expected} stored usage reports over MQTT", ARRIVAL_S)
            # Delivery is at least once: the same report may come twice, never a different one.
            assert {published(p) for p in reports} == keys, (reports, stored)
            for payload in reports:
                assert payload["message"] == "session-report" and "VOLTH" in payload["trigger"], payload
                assert payload["site"] == session.site and payload["node_id"] == session.upf, payload
        finally:
            reopen_with_policy(sim, sim.session(ue.supi, "mec"), None)  # deletes it: its final usage
            delete_object(sim, "Policy", "mec-usage")

        final = watch.wait_for(
            lambda ms: [p for p in arrived(ms) if p["message"] == "deletion"] or None,
            "the final usage report of the Deletion Response",
            ARRIVAL_S,
        )
    # What the UE carried since the last threshold report, and nothing since.
    remainder = carried - sum((r.volume_total or 0) for r in stored)
    assert {p["ul_bytes"] + p["dl_bytes"] for p in final} == {remainder}, (final, carried, stored)


def test_a_killed_agent_goes_offline_by_its_last_will_and_online_again_when_restarted(sim: Simulation) -> None:
    assert_healthy(sim)
    site = sim.plan.site("edge-2")
    node = site.node_id
    first = sim.mqtt_statuses()[node]
    assert first["state"] == "online", first
    with sim.mqtt_collector((upf_topic(site.name, node, "status"),)) as watch:
        sim.kill(f"upf/{site.name}")  # SIGKILL: no clean stop, so the broker speaks for it

        def will(messages: list[Message]) -> dict[str, Any] | None:
            offline = [p for _, p in payloads(messages, "status", "status") if p["state"] == "offline"]
            return offline[-1] if offline else None

        gone = watch.wait_for(will, f"the Last Will of {node}", ARRIVAL_S)
    assert gone["reason"] == "connection-lost", gone
    assert gone["recovery_time_stamp"] == first["recovery_time_stamp"], (first, gone)
    # Retained: whoever subscribes now hears it from the broker too.
    assert sim.mqtt_statuses()[node] == gone
    # The control plane's second health signal: the UPF is out of selection.
    wait_until(f"UPF {node} marked down", lambda: upf_status(sim, node), lambda u: u.health == "down", timeout=10)
    status = sim.status()
    assert status.mqtt_state(node) == "offline (connection-lost)" and not status.ok, status.render()

    sim.start(f"upf/{site.name}")  # waits for its association and its "online" of the new run
    back = sim.mqtt_statuses()[node]
    assert (back["state"], back["reason"]) == ("online", "started"), back
    assert back["recovery_time_stamp"] == upf_status(sim, node).recovery_time_stamp, back
    assert_healthy(sim)
