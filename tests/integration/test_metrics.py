"""/metrics of ``edgecups cp`` and ``edgecups upf`` in network namespaces, scraped over HTTP.

The control plane process and a UPF agent process (software dataplane, with the eBPF fast path
where it loads) run as an operator runs them, each with a ``metrics`` section; a session is
established over the gRPC API and real GTP-U traffic crosses the UPF. The scrapes (OpenMetrics,
parsed by prometheus_client) must move with it, carry exactly the documented names and labels,
and hold every metric the Grafana dashboard queries.

Rule drops: a UPF agent publishing to a real Mosquitto, driven by a PFCP CP of the test, closes
the gates of a session; what it drops of each direction must count as drops of that direction
in /metrics and in the MQTT metrics message (in total, per Network Instance and by reason).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import yaml

import pfcp
from control_plane.services.views import SessionRequest, SessionView
from edge_sites.telemetry import decode, validate
from edge_sites.telemetry.topics import upf_topic
from tests.harness import upf_agent as alone  # one agent and a PFCP CP of the test's
from tests.harness.control_plane import (
    DNN,
    SNSSAI,
    CpProcess,
    agent_config,
    cp_config,
    cp_n4,
    cp_network,
    dn_n6,
    gnb_n3,
    provision,
    supi,
    tai,
    upf_n3,
    upf_n4,
)
from tests.harness.mosquitto import Collector, Message, Mosquitto
from tests.harness.netns import DN_N6, GNB_N3, UE_POOL, UPF_N3, Topology, needs_netns, run_in_netns
from tests.harness.packets import GTPU_PORT, gpdu, ipv4_udp, udp_payload_of
from tests.harness.sessions import BasicSession, up_seid_of, uplink_teid_of
from tests.harness.upf_agent import AgentProcess
from tests.unit.metrics.scrape import Scrape, check_documented, dashboard_queries, query_selectors, scrape
from user_plane import gtpu

pytestmark = [pytest.mark.needs_root]

UPF = str(upf_n4(0).ip)
DN_PORT = 9000
PACKETS = 20
PAYLOAD = b"metrics-" * 8


def until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)


@needs_netns
def test_metrics_follow_sessions_and_traffic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    provision(url, 1, subscribers=2)
    with cp_network(tmp_path, 1) as net:
        # UPF 0's agent again, now serving /metrics on its N4 address (reached from the cp namespace).
        net.agents[0].stop()
        workdir = tmp_path / "upf0-metrics"
        workdir.mkdir()
        net.agents[0] = AgentProcess(
            net.ns("upf0"), workdir, {**agent_config(0), "metrics": {"address": UPF, "port": 9090}}
        )
        config_path = cp_config(tmp_path, url)
        config = yaml.safe_load(config_path.read_text())
        config["metrics"] = {"address": str(cp_n4(0).ip), "port": 9091}
        config_path.write_text(yaml.safe_dump(config))
        cp = CpProcess(net.ns("cp"), tmp_path, config_path)

        def cp_scrape() -> Scrape:
            return run_in_netns(net.ns("cp"), lambda: scrape(f"http://{cp_n4(0).ip}:9091/metrics"))

        def upf_scrape() -> Scrape:
            return run_in_netns(net.ns("cp"), lambda: scrape(f"http://{UPF}:9090/metrics"))

        try:
            cp.wait_ready()
            until(lambda: cp_scrape().value("edgecups_cp_upf_up", upf=UPF, site="edge0") == 1, "the UPF is up")
            cp_before, up_before = cp_scrape(), upf_scrape()

            async def establish() -> SessionView:
                async with cp.client() as client:
                    return await client.establish(
                        SessionRequest(
                            supi=supi(0),
                            dnn=DNN,
                            snssai=SNSSAI,
                            tai=tai(0),
                            gnb_teid=0x4242,
                            gnb_address=str(gnb_n3(0).ip),
                        )
                    )

            session = cp.call(establish())
            assert session.state == "active" and session.n3_teid is not None and session.ue_ipv4 is not None
            ue = IPv4Address(session.ue_ipv4)
            gnb = net.topology.udp_socket("gnb", bind=(str(gnb_n3(0).ip), GTPU_PORT), timeout=2.0)
            dn = net.topology.udp_socket("dn", bind=(str(dn_n6(0).ip), DN_PORT), timeout=2.0)
            inner = ipv4_udp(ue, dn_n6(0).ip, 40000, DN_PORT, PAYLOAD)
            for _ in range(PACKETS):  # uplink: gNB -> N3 -> UPF -> N6 -> DN
                gnb.sendto(gpdu(session.n3_teid, inner, 9), (str(upf_n3(0).ip), GTPU_PORT))
                assert dn.recv(65535) == PAYLOAD
            for _ in range(PACKETS):  # downlink: DN -> N6 -> UPF -> N3 -> gNB
                dn.sendto(PAYLOAD, (str(ue), 40000))
                data = gnb.recv(65535)
                teid, _, offset = gtpu.decode_gpdu(data)
                assert teid == 0x4242 and udp_payload_of(data[offset:])[4] == PAYLOAD
            gnb.sendto(gpdu(0x7777777, inner, 9), (str(upf_n3(0).ip), GTPU_PORT))  # no session has this TEID

            def unknown_teid_dropped() -> bool:
                return upf_scrape().value("edgecups_upf_dropped_packets_total", reason="ul_unknown_teid") >= 1

            until(unknown_teid_dropped, "the G-PDU for an unknown TEID is counted as dropped")
            cp_after, up_after = cp_scrape(), upf_scrape()
        finally:
            code = cp.stop()
        assert code == 0, cp.log()

    assert check_documented(cp_after, "cp") == [] and check_documented(up_after, "upf") == []
    # Every metric the dashboard queries is served by one of the two.
    served = set(cp_after.types) | set(up_after.types)
    for query in dashboard_queries():
        for name, _ in query_selectors(query):
            family = name.removesuffix("_total").removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
            assert family in served, f"{name} ({query}) is served by neither process"

    # The control plane: one active session at the UPF, its latency, its pool address, N4 by type.
    here = {"site": "edge0", "upf": UPF}
    assert cp_after.value("fivegs_smffunction_sm_sessionnbr", state="active", **here) == 1
    assert cp_after.value("edgecups_cp_session_establishment_seconds_count", result="success", **here) == 1
    assert cp_after.value("edgecups_cp_pool_used", pool="pool0") - cp_before.value("edgecups_cp_pool_used") == 1
    assert cp_after.value("pfcp_associations", state="associated", **here) == 1
    establishments = {"function": "cp", "direction": "tx", "type": "session_establishment_request"}
    assert cp_after.value("pfcp_messages_processed_total", **establishments) == 1
    timed = {"function": "cp", "remote": UPF, "type": "session_establishment_request", **here}
    assert cp_after.value("pfcp_peer_response_seconds_count", **timed) == 1

    # The UPF: the session, the packets and octets both ways (whichever path carried them), the drop.
    def delta(name: str, **labels: str) -> float:
        return up_after.value(name, upf=UPF, **labels) - up_before.value(name, upf=UPF, **labels)

    assert up_after.value("fivegs_upffunction_upf_sessionnbr", upf=UPF) == 1
    for direction in ("uplink", "downlink"):
        assert delta("edgecups_upf_forwarded_packets_total", direction=direction) == PACKETS
        assert delta("edgecups_upf_forwarded_bytes_total", direction=direction) == PACKETS * len(inner)
    assert delta("fivegs_ep_n3_gtp_indatapktn3upf_total") == PACKETS + 1  # and the one nobody owns
    assert delta("fivegs_ep_n3_gtp_outdatapktn3upf_total") == PACKETS
    assert delta("edgecups_upf_dropped_packets_total", direction="uplink", reason="ul_unknown_teid") == 1
    received = {"function": "up", "direction": "rx", "type": "session_establishment_request"}
    assert delta("pfcp_messages_processed_total", **received) == 1
    replies = {"function": "up", "direction": "tx", "type": "session_establishment_response"}
    assert delta("pfcp_messages_replies_total", cause="request_accepted", **replies) == 1
    assert up_after.value("pfcp_associations", function="up", state="associated", upf=UPF) == 1


GATED = {"edge-g": "g-secret", "edgecups-viewer": "viewer-secret"}


@needs_netns
def test_rule_drops_count_in_their_direction_in_metrics_and_over_mqtt(tmp_path: Path) -> None:
    with Topology(alone.UPF_CP_TOPOLOGY) as topo:
        broker = Mosquitto(tmp_path / "broker", GATED, host=str(alone.CP_N4.ip), netns=topo.ns("cp"))
        broker.start()
        collector = Collector(broker, "edgecups-viewer", GATED["edgecups-viewer"])
        (tmp_path / "mqtt.pw").write_text(GATED["edge-g"])
        mqtt = {"host": str(alone.CP_N4.ip), "port": broker.port, "site": "edge-g", "interval": 0.3}
        mqtt |= {"username": "edge-g", "password_file": str(tmp_path / "mqtt.pw")}
        metrics = {"address": str(alone.UPF_N4.ip), "port": 9090}
        agent = AgentProcess(topo.ns("upf"), tmp_path, {**alone.agent_config(), "metrics": metrics, "mqtt": mqtt})
        cp = alone.TestCp(topo.ns("cp"))
        try:
            cp.wait_ready(agent)
            cp.associate()
            _gated_scenario(topo, cp, collector)
        finally:
            cp.close()
            code = agent.stop()
            collector.close()
            broker.stop()
        assert code == 0, agent.log()


def _gated_scenario(topo: Topology, cp: alone.TestCp, collector: Collector) -> None:
    session = BasicSession(cp_seid=0x51, ue=UE_POOL.network_address + 51, gnb=GNB_N3.ip, gnb_teid=0x5151)
    response = cp.request(session.establishment(cp.node_id))
    assert isinstance(response, pfcp.SessionEstablishmentResponse), response
    up_seid, teid = up_seid_of(response), uplink_teid_of(response, session)
    gnb = topo.udp_socket("gnb", bind=(str(GNB_N3.ip), GTPU_PORT), timeout=2.0)
    dn = topo.udp_socket("dn", bind=(str(DN_N6.ip), DN_PORT), timeout=2.0)
    inner = ipv4_udp(session.ue, DN_N6.ip, 40000, DN_PORT, PAYLOAD)
    # Gates open: one packet each way (the neighbours resolved, the fast path may carry the downlink).
    gnb.sendto(gpdu(teid, inner, 9), (str(UPF_N3.ip), GTPU_PORT))
    assert dn.recv(65535) == PAYLOAD
    dn.sendto(PAYLOAD, (str(session.ue), 40000))
    assert gtpu.decode_gpdu(gnb.recv(65535))[0] == session.gnb_teid
    closed = pfcp.UpdateQER(qer_id=pfcp.QERID(1), gate_status=pfcp.GateStatus(pfcp.Gate.CLOSED, pfcp.Gate.CLOSED))
    modified = cp.request(pfcp.SessionModificationRequest(seid=up_seid, update_qer=(closed,)))
    assert isinstance(modified, pfcp.SessionModificationResponse), modified
    assert modified.cause.value == pfcp.CauseValue.REQUEST_ACCEPTED, modified

    url = f"http://{alone.UPF_N4.ip}:9090/metrics"
    topic = upf_topic("edge-g", str(alone.UPF_N4.ip), "metrics")
    mark = time.time()
    before = run_in_netns(topo.ns("cp"), lambda: scrape(url))
    published = collector.wait_for(lambda ms: _newest(ms, topic, after=mark), "a metrics message after the change")
    for _ in range(3):  # uplink: dropped at the closed uplink gate
        gnb.sendto(gpdu(teid, inner, 9), (str(UPF_N3.ip), GTPU_PORT))
    for _ in range(2):  # downlink: dropped at the closed downlink gate
        dn.sendto(PAYLOAD, (str(session.ue), 40000))

    def gate_drops(s: Scrape, direction: str) -> float:  # both paths
        return s.value("edgecups_upf_dropped_packets_total", direction=direction, reason="drop_gate")

    def moved() -> bool:
        now = run_in_netns(topo.ns("cp"), lambda: scrape(url))
        return gate_drops(now, "uplink") - gate_drops(before, "uplink") >= 3 and gate_drops(now, "downlink") >= 2

    until(moved, "the gate drops in /metrics")
    after = run_in_netns(topo.ns("cp"), lambda: scrape(url))
    assert gate_drops(after, "uplink") - gate_drops(before, "uplink") == 3
    assert gate_drops(after, "downlink") - gate_drops(before, "downlink") == 2
    assert "unknown" not in after.label_values("edgecups_upf_dropped_packets_total", "direction")
    assert check_documented(after, "upf") == []

    def dropped(messages: list[Message]) -> dict[str, Any] | None:
        last = _newest(messages, topic)
        if last is None or last["uplink"]["drops"] - published["uplink"]["drops"] < 3:
            return None
        return last if last["downlink"]["drops"] - published["downlink"]["drops"] >= 2 else None

    message = collector.wait_for(dropped, "the gate drops in the MQTT metrics")
    for direction, count in (("uplink", 3), ("downlink", 2)):
        for figures in (message, message["network_instances"]["internet"]):
            old = published if figures is message else published["network_instances"]["internet"]
            assert figures[direction]["drops"] - old[direction]["drops"] == count, (direction, message)
    prefix = {"uplink": "ul_", "downlink": "dl_"}

    def by_reason(payload: dict[str, Any], direction: str) -> int:
        names = (f"forward.{prefix[direction]}drop_gate", f"ebpf.{prefix[direction]}drop_gate")
        return sum(payload["drops"].get(name, 0) for name in names)

    assert by_reason(message, "uplink") - by_reason(published, "uplink") == 3
    assert by_reason(message, "downlink") - by_reason(published, "downlink") == 2
    assert not {"forward.drop_gate", "ebpf.drop_gate"} & set(message["drops"])  # each drop once
    gnb.close()
    dn.close()


def _newest(messages: list[Message], topic: str, after: float = 0.0) -> dict[str, Any] | None:
    """The newest metrics payload on ``topic`` (checked against the schema), if made after ``after``."""
    found = [m for m in messages if m.topic == topic]
    if not found:
        return None
    assert validate("metrics", json.loads(found[-1].payload)) == []
    payload = decode("metrics", found[-1].payload)
    return payload if payload["time"] > after else None
