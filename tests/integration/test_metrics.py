"""/metrics of ``edgecups cp`` and ``edgecups upf`` in network namespaces, scraped over HTTP.

The control plane process and a UPF agent process (software dataplane, with the eBPF fast path
where it loads) run as an operator runs them, each with a ``metrics`` section; a session is
established over the gRPC API and real GTP-U traffic crosses the UPF. The scrapes (OpenMetrics,
parsed by prometheus_client) must move with it, carry exactly the documented names and labels,
and hold every metric the Grafana dashboard queries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml

from control_plane.services.views import SessionRequest, SessionView
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
from tests.harness.netns import needs_netns, run_in_netns
from tests.harness.packets import GTPU_PORT, gpdu, ipv4_udp, udp_payload_of
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
