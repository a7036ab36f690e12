"""Issue 7, end-to-end scenarios 1-3 on one simulation that nothing breaks (tests/e2e/topology.yaml:
edge-1 and edge-2 with two UEs each, a cloud site).

1. Every UE has a session on the right site (mec at its own edge site, internet in the cloud)
   and every check of real traffic passes, on every site.
2. QoS: a UE whose policy sets a 10 Mbit/s session AMBR (the QER's MBR) is held to it within
   5%, measured by the data network's server; another UE behind the same UPF is not.
3. Usage: a 1 MB volume threshold makes the UPF report usage (VOLTH) during a 2.5 MB stream;
   the reports are stored and the API shows them, adding up to what the gNB carried.

Scenarios 2 and 3 change a subscriber's policy and put it back afterwards.
"""

from __future__ import annotations

from collections import Counter

from control_plane.api.client import ApiClient
from control_plane.cli.sim import Simulation
from control_plane.services.views import UsageView
from edge_sites.sim.traffic import UdpResult
from tests.e2e.helpers import (
    E2E_MARKS,
    all_sessions,
    api_call,
    apply,
    assert_traffic,
    delete_object,
    in_pool,
    mec_policy,
    reopen_with_policy,
    stream_from,
    ue_counters,
    wait_until,
)

pytestmark = E2E_MARKS

MBR_KBPS = 10_000
#: Twice the MBR: the policer, not the sender or the gNB, must be what holds the UE back.
OFFERED_MBPS = 20.0
#: 3 s: the token bucket's 50 ms of depth adds under 2% to the mean (user_plane/qos.py).
STREAM_S = 3.0
VOLUME_THRESHOLD = 1_000_000


def test_every_ue_has_a_session_at_its_site_and_all_traffic_passes(sim: Simulation) -> None:
    views = all_sessions(sim)
    keys = [(v.supi, v.pdu_session_id) for v in views]
    wanted = {(ue.supi, psi): (ue, dnn) for ue in sim.plan.ues() for dnn, psi in ue.sessions}
    assert sorted(keys) == sorted(wanted), "the API's sessions are not one per UE and DNN"
    for view in views:
        ue, dnn = wanted[(view.supi, view.pdu_session_id)]
        (site,) = sim.plan.expected_sites(ue, dnn)  # one edge site per TAI, one cloud site here
        where = sim.plan.site(site)
        assert (view.dnn, view.state, view.site, view.upf) == (dnn, "active", site, where.node_id), view
        assert in_pool(view.ue_ipv4, where.pools[dnn]), f"{view.ue_ipv4} is not in {site}'s {dnn} pool"
    status = sim.status()
    assert status.ok, status.render()
    assert status.sessions == {"edge-1": {"active": 2}, "edge-2": {"active": 2}, "cloud": {"active": 4}}

    report = assert_traffic(sim)
    rows = {row.site: (row.kind, row.sessions, row.passed) for row in report.sites}
    assert rows == {"edge-1": ("edge", 2, 2), "edge-2": ("edge", 2, 2), "cloud": ("cloud", 4, 4)}, report.table()
    for row in report.sites:
        assert row.sent > 0 and row.tcp_mbps is not None, report.table()
    # The packets really went through GTP-U both ways, and the downlink carried each session's QFI.
    for session in sim.sessions:
        counters = ue_counters(sim, session)
        assert counters["ul_packets"] > 0 and counters["dl_packets"] > 0, (session.label, counters)
        assert counters["last_dl_qfi"] == session.qfi, (session.label, counters)


def _received_mbps(result: UdpResult) -> float:
    assert result.server_received is not None, f"the server never reported its count: {result}"
    return float(result.to_dict()["throughput_mbps"])


def test_a_10_mbps_policy_holds_its_ue_to_10_mbps_and_no_other(sim: Simulation) -> None:
    first, second = sim.plan.site("edge-1").ues
    apply(sim, mec_policy(sim, "mec-10mbps", session_ambr_ul_kbps=MBR_KBPS, session_ambr_dl_kbps=MBR_KBPS))
    limited = reopen_with_policy(sim, sim.session(first.supi, "mec"), "mec-10mbps")
    try:
        assert limited.site == "edge-1"
        stream = {"rate_mbps": OFFERED_MBPS, "duration": STREAM_S, "size": 1400, "echo": False}
        held = stream_from(sim, limited, **stream)
        free = stream_from(sim, sim.session(second.supi, "mec"), **stream)
        for result in (held, free):
            offered = float(result.to_dict()["offered_mbps"])
            assert offered > 1.8 * MBR_KBPS / 1000, f"could not offer well above the MBR: {result.to_dict()}"
        rate = _received_mbps(held)
        assert abs(rate - MBR_KBPS / 1000) <= 0.05 * MBR_KBPS / 1000, f"limited UE received {rate:.2f} Mbit/s"
        unlimited = _received_mbps(free)
        assert unlimited > 1.5 * MBR_KBPS / 1000, f"the other UE was held back too: {unlimited:.2f} Mbit/s"
    finally:
        reopen_with_policy(sim, sim.session(first.supi, "mec"), None)
        delete_object(sim, "Policy", "mec-10mbps")


def test_a_volume_threshold_produces_usage_reports_visible_through_the_api(sim: Simulation) -> None:
    ue = sim.plan.site("edge-2").ues[0]
    apply(sim, mec_policy(sim, "mec-volume", volume_threshold_bytes=VOLUME_THRESHOLD))
    # A new session: its URR counts from zero, so the reports add up to this test's traffic only.
    session = reopen_with_policy(sim, sim.session(ue.supi, "mec"), "mec-volume")
    try:
        before = ue_counters(sim, session)
        # 2,500 packets of 1,000 octets: two thresholds' worth and a half.
        sent = stream_from(sim, session, rate_pps=2000, duration=1.25, size=1000, echo=False)
        assert sent.server_received is not None and sent.server_received >= 0.99 * sent.sent, sent.to_dict()
        after = ue_counters(sim, session)
        # What the gNB carried for the UE, inner packets both ways: exactly what the UPF's URR measures.
        carried = after["ul_bytes"] - before["ul_bytes"] + after["dl_bytes"] - before["dl_bytes"]
        assert carried >= 2 * VOLUME_THRESHOLD, f"the gNB carried only {carried} octets: {before} -> {after}"

        def usage() -> list[UsageView]:
            async def fetch(api: ApiClient) -> list[UsageView]:
                return await api.sessions.usage(session.supi, session.pdu_session_id)

            return api_call(sim, fetch)

        expected = carried // VOLUME_THRESHOLD
        reports = wait_until(
            f"{expected} VOLTH usage reports of {session.label}",
            usage,
            lambda rs: sum("VOLTH" in r.triggers for r in rs) >= expected,
            timeout=10,
        )
        volth = [r for r in reports if "VOLTH" in r.triggers]
        assert len(volth) == len(reports) == expected, reports  # nothing else reported yet
        assert sorted(Counter(r.ur_seqn for r in volth).values()) == [1] * expected, "a report stored twice"
        for report in volth:
            assert report.upf == session.upf and not report.final, report
            assert report.volume_total is not None and report.volume_ul is not None, report
            # The report fires on the packet that reaches the threshold (user_plane/usage.py).
            assert VOLUME_THRESHOLD <= report.volume_total < VOLUME_THRESHOLD + 1000, report
            assert report.volume_ul + (report.volume_dl or 0) == report.volume_total, report
        # Each report restarts the measurement: they add up to what was carried, less what has
        # not reached the threshold again since the last one.
        remainder = carried - sum(r.volume_total or 0 for r in volth)
        assert 0 <= remainder < VOLUME_THRESHOLD, (carried, volth)
    finally:
        reopen_with_policy(sim, sim.session(ue.supi, "mec"), None)
        delete_object(sim, "Policy", "mec-volume")
