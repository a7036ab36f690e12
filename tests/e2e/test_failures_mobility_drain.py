"""Issue 7, end-to-end scenarios 4-8 on one simulation they take turns to disturb (in this order;
each checks first that the one before left it healthy).

4. A UPF crashes (SIGKILL): the control plane sees it lost; restarted, it gets its sessions back
   from the control plane, unasked, and their traffic passes again.
5. The control plane crashes (SIGKILL) while UDP runs from UEs of every site: nothing is lost,
   the user plane forwards throughout, every session is still there afterwards, and a new one can
   be made.
6. A UE moves from edge-1's gNB to edge-2's: its mec session is relocated to edge-2's UPF, its
   internet session modified (same cloud UPF, the new gNB tunnel); traffic passes from edge-2's gNB.
7. Draining edge-1 moves none of its sessions, and a new session from its TAI goes to edge-2
   (once edge-2 also covers that TAI; before that it is refused as UNAVAILABLE).
8. Teardown leaves no namespace, interface or process.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from control_plane.api.channel import Unreachable
from control_plane.api.client import ApiClient
from control_plane.cli.sim import PREFIX, SimSession, Simulation
from control_plane.cli.sim.network import holders
from control_plane.cli.sim.procs import alive
from control_plane.errors import Unavailable
from control_plane.provisioning.objects import Resource
from control_plane.services.views import ModifyRequest, SessionView
from edge_sites.sim.netns import interfaces_in, netns_path
from edge_sites.sim.traffic import PingResult
from tests.e2e.helpers import (
    E2E_MARKS,
    MOVED_TEID_BIT,
    all_sessions,
    api_call,
    apply,
    assert_healthy,
    assert_traffic,
    attach,
    close_session,
    delete_object,
    detach,
    events_after,
    in_pool,
    last_event_id,
    open_session,
    ping_from,
    probing,
    record_of,
    request_at,
    spec_of,
    upf_status,
    wait_until,
)

pytestmark = E2E_MARKS

#: Long enough for every UPF agent to miss the control plane's heartbeat answers and count it
#: lost (agent heartbeat_interval 5 s + n1 retries every t1; plan.agent_config), so forwarding
#: through the outage is forwarding without a control plane, not before it was missed.
CP_OUTAGE_S = 8.0
#: A UE provisioned by the drain scenario only (and removed by it).
VISITOR = "imsi-001019990000001"


def _lost_within(sim: Simulation) -> float:
    """Bound on the control plane noticing a dead UPF: a heartbeat every interval, retried n1
    times every t1 (the simulation's CP configuration), twice over, plus slack for 2 busy cores."""
    timers = sim.plan.cp_config(sim.state.directory)["timers"]
    return 2 * (float(timers["heartbeat_interval"]) + float(timers["t1"]) * (int(timers["n1"]) + 1)) + 5


def _pinger(sim: Simulation, session: SimSession) -> Callable[[], PingResult]:
    return lambda: ping_from(sim, session, 3)


def _snapshot(views: list[SessionView]) -> dict[tuple[str, int], tuple[Any, ...]]:
    return {(v.supi, v.pdu_session_id): (v.cp_seid, v.ue_ipv4, v.upf, v.site, v.n3_teid, v.state) for v in views}


def test_a_crashed_upf_gets_its_sessions_back_when_it_restarts(sim: Simulation) -> None:
    assert_healthy(sim)
    site = "edge-1"
    node = sim.plan.site(site).node_id
    theirs = [s for s in sim.sessions if s.site == site]
    assert theirs, f"no session at {site}"
    before = _snapshot(all_sessions(sim))
    since = last_event_id(sim)

    sim.kill(f"upf/{site}")
    lost = wait_until(
        f"the control plane to see UPF {node} lost",
        lambda: upf_status(sim, node),
        lambda u: u.health == "down" and u.sessions.get("lost", 0) == len(theirs),
        timeout=_lost_within(sim),
    )
    assert lost.association != "associated", lost
    assert not sim.status().ok

    # Restart the agent (a new Recovery Time Stamp: it holds nothing). From here on the test
    # only watches: the control plane must restore the sessions by itself.
    sim.start(f"upf/{site}")
    wait_until(
        f"the sessions of {node} active again",
        lambda: upf_status(sim, node),
        lambda u: u.sessions == {"active": len(theirs)},
        timeout=30,
    )
    # The same sessions, with the same CP-allocated N3 F-TEIDs: the gNB's tunnels are still right.
    assert _snapshot(all_sessions(sim)) == before
    restored = events_after(sim, since, ["session.restored"])
    assert sorted(e.supi or "" for e in restored) == sorted(s.supi for s in theirs), restored
    # Traffic resumes on the site; the first echo may race the dataplane's own set-up.
    for session in theirs:
        wait_until(f"an echo reply through {session.label}", _pinger(sim, session), lambda p: p.received > 0, 15)
    assert_traffic(sim)
    assert_healthy(sim)


def test_a_control_plane_restart_loses_nothing_and_traffic_never_stops(sim: Simulation) -> None:
    assert_healthy(sim)
    before = all_sessions(sim)
    # One session per gNB and per UPF: UEs of both edge sites, to their edge and to the cloud.
    first_ues = [site.ues[0] for site in sim.plan.sites if site.ues]
    probed = [sim.session(ue.supi, dnn) for ue in first_ues for dnn in ("mec", "internet")]
    with probing(sim, probed) as probes:
        wait_until("traffic from every probe", lambda: [len(p.chunks) for p in probes], lambda n: min(n) >= 1, 10)
        killed_at = time.monotonic()
        sim.kill("cp")
        with pytest.raises(Unreachable):
            api_call(sim, lambda api: api.status.status())
        time.sleep(max(0.0, killed_at + CP_OUTAGE_S - time.monotonic()))
        sim.start("cp")  # returns once its API answers and every UPF is associated again
        back_at = time.monotonic()
        # A whole chunk after the re-association too: a UPF purging our sessions would show there.
        wait_until(
            "a probe chunk after the restart",
            lambda: [p.chunks[-1].started - back_at for p in probes],
            lambda after: min(after) >= 0,
            10,
        )
        chunks = {p.session.label: p.stop() for p in probes}

    for label, runs in chunks.items():
        during = [c for c in runs if c.ended > killed_at and c.started < back_at]
        assert during and during[0].started <= killed_at and during[-1].ended >= back_at, f"{label}: gap in probing"
        gaps = [b.started - a.ended for a, b in itertools.pairwise(during)]
        assert max(gaps, default=0.0) < 1.0, f"{label}: probing paused for {max(gaps):.2f} s"
        sent = sum(c.result.sent for c in runs)
        got = sum(c.result.server_received or 0 for c in runs)
        echoed = sum(c.result.echoed for c in runs)
        assert sent > 0 and got >= 0.99 * sent and echoed >= 0.99 * sent, f"{label}: {got}/{echoed} of {sent}"
        assert all(c.result.echoed > 0 for c in runs), f"{label}: a second without any echo"

    after = all_sessions(sim)
    assert len(after) == len(before) and len({v.cp_seid for v in after}) == len(after), "duplicate sessions"
    assert _snapshot(after) == _snapshot(before)
    # The restarted control plane makes new sessions too: a third PDU session for a UE of edge-1.
    ue = sim.plan.site("edge-1").ues[0]
    extra = open_session(sim, request_at(sim, ue.supi, "internet", 3, "edge-1", ue.gnb_teid(3)), "edge-1")
    try:
        assert extra.site == "cloud"
        assert ping_from(sim, extra).received == 10
    finally:
        close_session(sim, extra)
    assert_healthy(sim)


def test_a_ue_moving_to_another_gnb_takes_its_sessions_along(sim: Simulation) -> None:
    assert_healthy(sim)
    ue = sim.plan.site("edge-1").ues[1]
    there = sim.plan.site("edge-2")
    old = [sim.session(ue.supi, dnn) for dnn in ("mec", "internet")]
    moved: list[SimSession] = []
    for session in old:
        change = ModifyRequest(
            gnb_teid=session.gnb_teid | MOVED_TEID_BIT, gnb_address=str(there.n3_gnb.ip), tai=there.site.tai
        )

        async def modify(api: ApiClient, s: SimSession = session, c: ModifyRequest = change) -> SessionView:
            return await api.sessions.modify(s.supi, s.pdu_session_id, c)

        view = api_call(sim, modify)
        moved.append(record_of(sim, session, view, ue_site=there.name))
    mec, internet = moved
    # mec is edge-only: edge-1 does not serve edge-2's TAI, so the session is relocated there
    # (a new session on edge-2's UPF, an address of its pool); internet stays on the cloud UPF,
    # the same session with the new gNB tunnel.
    assert (mec.site, mec.upf) == (there.name, there.node_id) and in_pool(mec.ue_ip, there.pools["mec"]), mec
    assert (internet.site, internet.ue_ip, internet.n3_teid) == ("cloud", old[1].ue_ip, old[1].n3_teid), internet
    assert (internet.gnb_teid, internet.gnb_address) == (old[1].gnb_teid | MOVED_TEID_BIT, str(there.n3_gnb.ip))
    edge1 = sim.plan.site("edge-1").node_id
    assert all(v.supi != ue.supi for v in all_sessions(sim) if v.upf == edge1), "still on edge-1's UPF"

    for before, after in zip(old, moved, strict=True):  # the UE leaves edge-1's gNB for edge-2's
        detach(sim, before)
        attach(sim, after)
        sim.record_session(after)
    report = assert_traffic(sim, moved)
    assert [(r.session.ue_site, r.site) for r in report.results] == [("edge-2", "edge-2"), ("edge-2", "cloud")]
    assert_healthy(sim)


def test_draining_a_site_keeps_its_sessions_and_sends_new_ones_elsewhere(sim: Simulation) -> None:
    assert_healthy(sim)
    here, there = sim.plan.site("edge-1"), sim.plan.site("edge-2")
    staying = [s for s in sim.sessions if s.site == here.name]
    assert staying, "no session at edge-1 to keep"
    before = _snapshot(all_sessions(sim))
    coverage = spec_of(sim, "Site", there.name)
    apply(sim, Resource("Subscriber", VISITOR, {"allowed_dnns": ["mec"]}))
    request = request_at(sim, VISITOR, "mec", 1, here.name, 0x7FFF_0001)
    visitor: SimSession | None = None

    async def drain(api: ApiClient, drained: bool = True) -> list[str]:
        return [u.spec["admin_state"] for u in await api.provisioning.drain(site=here.name, drained=drained)]

    try:
        assert api_call(sim, drain) == ["drained"]
        # Only edge-1 covers its TAI for mec (and the cloud has no mec pool): nowhere to go.
        with pytest.raises(Unavailable, match="drained"):
            api_call(sim, lambda api: api.sessions.establish(request))
        # edge-2 also covering edge-1's TAI (overlapping coverage) is somewhere else.
        apply(sim, Resource("Site", there.name, coverage | {"tais": [*coverage["tais"], here.site.tai]}))
        visitor = open_session(sim, request, here.name)
        assert (visitor.site, visitor.upf) == (there.name, there.node_id), visitor
        assert ping_from(sim, visitor).received == 10
        # Nothing moved, and edge-1's sessions still carry traffic through its (drained) UPF.
        assert {k: v for k, v in _snapshot(all_sessions(sim)).items() if k[0] != VISITOR} == before
        report = assert_traffic(sim, staying)
        assert {r.site for r in report.results} == {here.name}
        assert upf_status(sim, here.node_id).admin_state == "drained"

        close_session(sim, visitor)
        visitor = None
        assert api_call(sim, lambda api: drain(api, False)) == ["enabled"]
        # Undrained, edge-1 takes its TAI's new sessions again (the less loaded of the two).
        visitor = open_session(sim, request, here.name)
        assert visitor.site == here.name, visitor
    finally:
        if visitor is not None:
            close_session(sim, visitor)
        api_call(sim, lambda api: drain(api, False))
        apply(sim, Resource("Site", there.name, coverage))
        delete_object(sim, "Subscriber", VISITOR)
    assert_healthy(sim)


def test_teardown_leaves_no_namespace_interface_or_process(sim: Simulation) -> None:
    state = sim.state
    names = set(state.namespaces.values())
    inodes = {os.stat(netns_path(name)).st_ino for name in names}
    made = {ifname for name in names for ifname in interfaces_in(name)} - {"lo"}
    root_before = {ifname for _, ifname in socket.if_nameindex()}

    report = Simulation.down(state.directory)
    assert report.clean, "\n".join(report.lines())
    assert set(report.removed) == names, report.lines()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True, timeout=10).stdout
    ours = [line for line in listed.splitlines() if line.startswith(f"{PREFIX}-") and f"-{state.suffix}" in line]
    assert ours == [] and sim.leftovers() == []
    # No process inside a removed namespace or holding one open: each would keep it, and its
    # links and TUN devices, alive without a name.
    assert holders(inodes) == set()
    assert [p.name for p in state.processes if alive(p)] == []
    # Nothing of the simulation's appeared in the root namespace either (veths are made in pairs).
    assert ({ifname for _, ifname in socket.if_nameindex()} - root_before) & made == set()
    again = Simulation.down(state.directory)
    assert again.clean and again.nothing_to_do, again.lines()
