"""The UPF agent's associations and limits, end to end (one agent process per test).

Who may associate (cause 64 for anyone else), session requests before an association (72), a
burst beyond capacity (75 for the excess, the rest keep working), and a CP restart (TS 23.007
§19A: the restarted CP's sessions are purged from the dataplane).
"""

from __future__ import annotations

import asyncio
import signal
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

import pfcp
from tests.harness.netns import netns_unavailable_reason
from tests.harness.packets import GTPU_PORT, gpdu, ipv4_udp
from tests.harness.sessions import BasicSession, up_seid_of, uplink_teid_of
from tests.harness.upf_agent import TestCp, UpfUnderTest, running_upf
from user_plane import gtpu

Cause = pfcp.CauseValue
GNB = IPv4Address("198.18.1.2")
UPF_N3 = IPv4Address("198.18.1.1")
DN = IPv4Address("198.18.2.2")

_UNAVAILABLE = netns_unavailable_reason()
pytestmark = [pytest.mark.needs_root, pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")]


def session(n: int) -> BasicSession:
    return BasicSession(cp_seid=0x100 + n, ue=IPv4Address("198.19.1.0") + n, gnb=GNB, gnb_teid=0x500 + n)


def forwards(upf: UpfUnderTest, teid: int, s: BasicSession) -> bool:
    """One G-PDU from the gNB: True if its inner packet reached the DN."""
    gnb = upf.topology.udp_socket("gnb", timeout=1.0)
    dn = upf.topology.udp_socket("dn", bind=(str(DN), 9100), timeout=1.0)
    try:
        payload = f"probe {teid:#x}".encode()
        gnb.sendto(gpdu(teid, ipv4_udp(s.ue, DN, 40000, 9100, payload), 9), (str(UPF_N3), GTPU_PORT))
        try:
            return dn.recv(2048) == payload
        except TimeoutError:
            return False
    finally:
        gnb.close()
        dn.close()


def test_a_cp_that_is_not_allowed_gets_64_and_no_session(tmp_path: Path) -> None:
    with running_upf(tmp_path, associate=False, allowed_cps=("198.18.0.99", "smf.example.org")) as upf:
        rsp = upf.cp.request(
            pfcp.AssociationSetupRequest(
                node_id=upf.cp.node_id, recovery_time_stamp=pfcp.RecoveryTimeStamp.from_unix(time.time())
            )
        )
        assert isinstance(rsp, pfcp.AssociationSetupResponse)
        assert rsp.cause.value == Cause.REQUEST_REJECTED
        rsp = upf.cp.request(session(1).establishment(upf.cp.node_id))
        assert rsp.cause.value == Cause.NO_ESTABLISHED_PFCP_ASSOCIATION  # type: ignore[attr-defined]
        assert "198.18.0.1" in upf.agent.log()  # the rejection is logged with the CP's address


def test_a_session_request_before_association_gets_72(tmp_path: Path) -> None:
    with running_upf(tmp_path, associate=False) as upf:
        rsp = upf.cp.request(session(1).establishment(upf.cp.node_id))
        assert isinstance(rsp, pfcp.SessionEstablishmentResponse)
        assert rsp.cause.value == Cause.NO_ESTABLISHED_PFCP_ASSOCIATION
        upf.cp.associate()
        rsp = upf.cp.request(session(1).establishment(upf.cp.node_id))
        assert rsp.cause.value == Cause.REQUEST_ACCEPTED  # type: ignore[attr-defined]


def test_a_burst_beyond_capacity_gets_75_for_the_excess_and_the_rest_keep_working(tmp_path: Path) -> None:
    capacity, burst = 20, 30
    with running_upf(tmp_path, max_sessions=capacity) as upf:
        requests = [session(n).establishment(upf.cp.node_id) for n in range(burst)]

        async def send_all() -> list[pfcp.Message]:
            return list(await asyncio.gather(*(upf.cp.node.request(upf.cp.peer, r) for r in requests)))

        responses = upf.cp.call(send_all(), timeout=30)
        causes = [r.cause.value for r in responses]  # type: ignore[attr-defined]
        assert causes.count(Cause.REQUEST_ACCEPTED) == capacity
        assert causes.count(Cause.NO_RESOURCES_AVAILABLE) == burst - capacity
        assert upf.agent.alive()
        accepted = [(n, r) for n, r in enumerate(responses) if r.cause.value == Cause.REQUEST_ACCEPTED]  # type: ignore[attr-defined]
        for n, rsp in accepted[:3] + accepted[-2:]:
            assert isinstance(rsp, pfcp.SessionEstablishmentResponse)
            assert forwards(upf, uplink_teid_of(rsp, session(n)), session(n))
        # one deletion frees one place
        first = accepted[0][1]
        assert isinstance(first, pfcp.SessionEstablishmentResponse)
        upf.cp.request(pfcp.SessionDeletionRequest(seid=up_seid_of(first)))
        rsp = upf.cp.request(session(burst).establishment(upf.cp.node_id))
        assert rsp.cause.value == Cause.REQUEST_ACCEPTED  # type: ignore[attr-defined]


def test_a_restarted_cp_loses_its_sessions_on_the_upf(tmp_path: Path) -> None:
    with running_upf(tmp_path) as upf:
        s = session(1)
        rsp = upf.cp.request(s.establishment(upf.cp.node_id))
        assert isinstance(rsp, pfcp.SessionEstablishmentResponse)
        teid = uplink_teid_of(rsp, s)
        assert forwards(upf, teid, s)
        # the CP restarts: same Node ID and address, a newer Recovery Time Stamp
        upf.cp.close()
        time.sleep(1.1)  # Recovery Time Stamps have a resolution of one second
        upf.cp = TestCp(upf.ns("cp"))
        upf.cp.associate()
        deadline = time.monotonic() + 5
        while forwards(upf, teid, s) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not forwards(upf, teid, s)
        # and the old session's TEID is unknown now: the gNB gets an Error Indication
        gnb = upf.topology.udp_socket("gnb", bind=(str(GNB), GTPU_PORT), timeout=2.0)
        gnb.sendto(gpdu(teid, ipv4_udp(s.ue, DN, 1, 2, b"stale"), 9), (str(UPF_N3), GTPU_PORT))
        assert gtpu.decode(gnb.recv(2048)).message_type == gtpu.MessageType.ERROR_INDICATION
        # the restarted CP can establish the same session again
        rsp = upf.cp.request(s.establishment(upf.cp.node_id))
        assert rsp.cause.value == Cause.REQUEST_ACCEPTED  # type: ignore[attr-defined]


def test_a_dataplane_restart_reinstalls_every_session_from_the_desired_state(tmp_path: Path) -> None:
    with running_upf(tmp_path) as upf:
        sessions = [session(n) for n in range(3)]
        teids = []
        for s in sessions:
            rsp = upf.cp.request(s.establishment(upf.cp.node_id))
            assert isinstance(rsp, pfcp.SessionEstablishmentResponse)
            teids.append(uplink_teid_of(rsp, s))
        # SIGHUP: the agent stops the software dataplane (TUN devices and N3 socket go away, and
        # every rule with them), starts it again and re-installs the sessions it should hold
        upf.agent.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reinstalled=3" not in upf.agent.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "reinstalled=3" in upf.agent.log(), upf.agent.log()
        for teid, s in zip(teids, sessions, strict=True):
            assert forwards(upf, teid, s)
        assert upf.agent.alive()
