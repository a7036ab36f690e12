"""The UPF agent over real PFCP on loopback: modification, deletion, usage reports,
Session Report Requests, CP restarts and resync with the driver.

Harness and request builders: tests/unit/user_plane/test_agent.py.
"""

from __future__ import annotations

import asyncio
import logging
from ipaddress import IPv4Address

import pytest

import pfcp
from tests.fakes.driver import FakeDriver
from tests.unit.user_plane.test_agent import (
    CP_STAMP,
    DEADLINE,
    HOST,
    RT,
    Cause,
    Cp,
    cause_of,
    cp_at,
    downlink_pdr,
    run_associated,
    running,
    teids_in_use,
    up_address,
    uplink_pdr,
    urr,
)
from user_plane.agent import UpfAgent
from user_plane.config import UpfConfig
from user_plane.driver import DownlinkData, SessionUsage, UsageReport

TRIGGER = pfcp.UsageReportTriggerFlags
DROP = pfcp.ApplyActionFlags.DROP
SMREQ = pfcp.PFCPSMReqFlagsValue


async def established(cp: Cp, cp_seid: int = 0xAB) -> int:
    response = await cp.establish(cp_seid)
    assert cause_of(response) == Cause.REQUEST_ACCEPTED and response.up_f_seid is not None
    return response.up_f_seid.seid


async def modify(cp: Cp, up_seid: int, **ies: object) -> pfcp.SessionModificationResponse:
    response = await cp.request(pfcp.SessionModificationRequest(seid=up_seid, **ies))  # type: ignore[arg-type]
    assert isinstance(response, pfcp.SessionModificationResponse)
    return response


def volumes(report: pfcp.UsageReportSMR | pfcp.UsageReportSDR | pfcp.UsageReportSRR) -> tuple[int, int]:
    measured = report.volume_measurement
    assert measured is not None
    return (measured.uplink_volume or 0, measured.downlink_volume or 0)


# -- modification -------------------------------------------------------------------------


def test_unknown_zero_and_foreign_seids_get_65() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        up_seid = await established(cp)
        for seid in (0, up_seid + 1000):
            response = await modify(cp, seid)
            assert cause_of(response) == Cause.SESSION_CONTEXT_NOT_FOUND
            assert response.seid == 0  # the peer's SEID is unknown (§7.2.2.4.2)
            deleted = await cp.request(pfcp.SessionDeletionRequest(seid=seid))
            assert cause_of(deleted) == 65 and deleted.seid == 0
        # another (allowed) CP cannot touch this CP's session
        async with cp_at(cp.up, "127.0.0.7", node_id=pfcp.NodeID("smf.test")) as other:
            await other.node.associate(other.up)
            assert cause_of(await modify(other, up_seid)) == 65
            assert cause_of(await other.request(pfcp.SessionDeletionRequest(seid=up_seid))) == 65
        assert up_seid in driver.installed()

    run_associated(scenario)


def test_modification_rule_failures_get_73_and_change_nothing() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        up_seid = await established(cp)
        before = driver.installed()[up_seid]
        installs = driver.methods().count("install")
        # Update FAR of a FAR that does not exist
        response = await modify(
            cp,
            up_seid,
            update_far=(
                pfcp.UpdateFAR(far_id=pfcp.FARID(9), apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.DROP)),
            ),
        )
        assert cause_of(response) == 73 and response.failed_rule_id == pfcp.FailedRuleID(RT.FAR, 9)
        assert response.seid == 0xAB
        # a new PDR equal to PDR 2 in precedence and PDI; its CH would have taken a TEID
        response = await modify(cp, up_seid, create_pdr=(downlink_pdr(7), uplink_pdr(8, chid=5, precedence=7)))
        assert cause_of(response) == 73 and response.failed_rule_id == pfcp.FailedRuleID(RT.PDR, 7)
        # removing the FAR a PDR still uses
        response = await modify(cp, up_seid, remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(2)),))
        assert cause_of(response) == 73 and response.failed_rule_id == pfcp.FailedRuleID(RT.FAR, 2)
        assert driver.installed()[up_seid] is before is agent.sessions[up_seid]
        assert driver.methods().count("install") == installs
        assert teids_in_use(agent) == 1

    run_associated(scenario)


def test_modification_allocates_and_releases_f_teids() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        up_seid = await established(cp)
        old = driver.installed()[up_seid].pdrs[1].local_f_teid
        assert old is not None
        # a new PDR with the session's CHID 1 gets the same F-TEID; one with CHID 2 a new one
        response = await modify(
            cp,
            up_seid,
            create_pdr=(
                uplink_pdr(3, chid=1, precedence=10, sdf="permit out ip from 198.18.2.2 to assigned"),
                uplink_pdr(4, chid=2, precedence=20, sdf="permit out ip from 198.18.2.3 to assigned"),
            ),
        )
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        created = {c.pdr_id.value: c.local_f_teid for c in response.created_pdr}
        assert created[3] == old.to_ie() and created[4] is not None and created[4].teid != old.teid
        assert teids_in_use(agent) == 2
        # removing PDRs 1 and 3 frees TEID of CHID 1; PDR 4's stays
        response = await modify(
            cp, up_seid, remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(1)), pfcp.RemovePDR(pdr_id=pfcp.PDRID(3)))
        )
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        assert teids_in_use(agent) == 1 and not agent._teids.in_use(old.teid)
        assert set(driver.installed()[up_seid].pdrs) == {2, 4}

    run_associated(scenario)


def test_query_urr_qaurr_and_removed_urrs_report_usage() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        up_seid = await established(cp)
        assert cause_of(await modify(cp, up_seid, create_urr=(urr(2),))) == Cause.REQUEST_ACCEPTED
        driver.meter(up_seid, 1, ul_bytes=1000, dl_bytes=3000)
        driver.meter(up_seid, 2, dl_bytes=70)
        # Query URR 1 with a Query URR Reference (§7.5.4.10)
        response = await modify(
            cp,
            up_seid,
            query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(1)),),
            query_urr_reference=pfcp.QueryURRReference(77),
        )
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        [report] = response.usage_report
        assert report.urr_id == pfcp.URRID(1) and volumes(report) == (1000, 3000)
        assert report.usage_report_trigger.value == TRIGGER.IMMER
        assert report.query_urr_reference == pfcp.QueryURRReference(77)
        # QAURR: every URR of the session; URR 1 was reported already and restarted
        driver.meter(up_seid, 1, ul_bytes=5)
        response = await modify(cp, up_seid, pfcpsmreq_flags=pfcp.PFCPSMReqFlags(SMREQ.QAURR))
        assert {r.urr_id.value: volumes(r) for r in response.usage_report} == {1: (5, 0), 2: (0, 70)}
        # Remove URR 2 (no PDR uses it): its final usage comes in the response, as a termination report
        driver.meter(up_seid, 2, ul_bytes=9)
        response = await modify(cp, up_seid, remove_urr=(pfcp.RemoveURR(urr_id=pfcp.URRID(2)),))
        [final] = response.usage_report
        assert final.urr_id == pfcp.URRID(2) and volumes(final) == (9, 0)
        assert final.usage_report_trigger.value == TRIGGER.TERMR
        assert driver.methods()[-2:] == ["install", "take_removed_reports"]  # taken from the install itself
        assert set(driver.installed()[up_seid].urrs) == {1}
        # an unknown URR in Query URR is a rule failure
        response = await modify(cp, up_seid, query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(2)),))
        assert cause_of(response) == 73 and response.failed_rule_id == pfcp.FailedRuleID(RT.URR, 2)

    run_associated(scenario)


def test_drobu_drops_buffered_packets_before_the_new_state() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        up_seid = await established(cp)
        driver.buffered[up_seid] = 4
        driver.calls.clear()
        response = await modify(cp, up_seid, pfcpsmreq_flags=pfcp.PFCPSMReqFlags(SMREQ.DROBU))
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        assert driver.methods() == ["drop_buffered", "install", "take_removed_reports"]
        assert driver.buffered == {}

    run_associated(scenario)


def test_deletion_returns_final_reports_and_releases_everything() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        up_seid = await established(cp)
        driver.meter(up_seid, 1, ul_bytes=1234, dl_bytes=4321)
        response = await cp.request(pfcp.SessionDeletionRequest(seid=up_seid))
        assert isinstance(response, pfcp.SessionDeletionResponse)
        assert cause_of(response) == Cause.REQUEST_ACCEPTED and response.seid == 0xAB
        [report] = response.usage_report
        assert report.urr_id == pfcp.URRID(1) and volumes(report) == (1234, 4321)
        assert report.usage_report_trigger.value == TRIGGER.TERMR
        assert driver.installed() == {} and agent.sessions == {}
        assert teids_in_use(agent) == 0 and len(agent._seids) == 0
        assert cause_of(await modify(cp, up_seid)) == 65

    run_associated(scenario)


# -- Session Report Requests ----------------------------------------------------------------


def test_driver_events_become_session_report_requests() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        up_seid = await established(cp, 0xFEED)
        usage = UsageReport(1, 3, TRIGGER.VOLTH, 1_700_000_000.0, 1_700_000_060.0, ul_bytes=600_000, dl_bytes=500_000)
        driver.emit(SessionUsage(up_seid, (usage,)))
        report = await cp.next_report()
        assert report.seid == 0xFEED  # the CP's F-SEID
        assert report.report_type == pfcp.ReportType(pfcp.ReportTypeFlags.USAR)
        assert report.usage_report == (usage.to_ie(pfcp.UsageReportSRR),)
        assert volumes(report.usage_report[0]) == (600_000, 500_000)
        driver.emit(DownlinkData(up_seid, pdr_id=2, qfi=9))
        report = await cp.next_report()
        assert report.report_type == pfcp.ReportType(pfcp.ReportTypeFlags.DLDR)
        assert report.downlink_data_report == pfcp.DownlinkDataReport(
            pdr_id=(pfcp.PDRID(2),),
            downlink_data_service_information=(pfcp.DownlinkDataServiceInformation(qfi=9),),
        )
        driver.emit(DownlinkData(up_seid, pdr_id=2))  # QFI unknown: no service information
        report = await cp.next_report()
        assert report.downlink_data_report == pfcp.DownlinkDataReport(pdr_id=(pfcp.PDRID(2),))
        assert agent.counters["reports sent"] == 3

    run_associated(scenario)


def test_a_cp_that_lost_the_session_answers_65_and_the_session_goes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")

    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        up_seid = await established(cp)
        cp.report_cause = Cause.SESSION_CONTEXT_NOT_FOUND
        driver.emit(DownlinkData(up_seid, pdr_id=2))
        await cp.next_report()
        for _ in range(100):  # the response is handled right after the CP sent it
            if up_seid not in agent.sessions:
                break
            await asyncio.sleep(0.01)
        assert up_seid not in agent.sessions and up_seid not in driver.installed()
        assert teids_in_use(agent) == 0

    run_associated(scenario)
    assert "has no context for session" in caplog.text


# -- CP restarts, releases, repeated setups --------------------------------------------------------


def test_cp_restart_seen_in_a_heartbeat_purges_its_sessions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")

    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        for seid in (1, 2, 3):
            await established(cp, seid)
        # an older or equal stamp changes nothing (TS 23.007 §19A)
        await cp.request(pfcp.HeartbeatRequest(recovery_time_stamp=pfcp.RecoveryTimeStamp(CP_STAMP)))
        assert len(driver.installed()) == 3
        await cp.request(pfcp.HeartbeatRequest(recovery_time_stamp=pfcp.RecoveryTimeStamp(CP_STAMP + 60)))
        assert driver.installed() == {} and agent.sessions == {} and teids_in_use(agent) == 0
        assert cause_of(await cp.establish(4)) == Cause.REQUEST_ACCEPTED  # the association stays

    run_associated(scenario)
    assert "purged 3 sessions of CP 127.0.0.1: CP restarted" in caplog.text


def test_a_repeated_association_setup_purges_the_old_sessions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")

    async def main() -> None:
        driver = FakeDriver()
        async with running(driver=driver) as agent:
            async with cp_at(up_address(agent)) as cp, cp_at(cp.up, "127.0.0.8", node_id=pfcp.NodeID("smf.test")) as b:
                await cp.node.associate(cp.up)
                await b.node.associate(b.up)
                await established(cp, 1)
                await established(cp, 2)
                kept = await established(b, 3)
                port = cp.node.local_address[1] if cp.node.local_address else 0
            # the same Node ID sets up again with the same Recovery Time Stamp (§6.2.6.2.2)
            async with cp_at(up_address(agent), HOST, port) as again:
                # first a heartbeat: its sequence numbers restart at 1, and a setup byte-identical to the
                # first one would be answered from the retransmission cache (§6.4)
                await again.request(pfcp.HeartbeatRequest(recovery_time_stamp=pfcp.RecoveryTimeStamp(CP_STAMP)))
                await again.node.associate(again.up)
                assert set(driver.installed()) == {kept} == set(agent.sessions)
                assert agent.owner(kept) == pfcp.NodeID("smf.test")
                assert cause_of(await again.establish(4)) == Cause.REQUEST_ACCEPTED

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert "purged 2 sessions of CP 127.0.0.1: repeated Association Setup Request" in caplog.text


def test_association_release_purges_the_cps_sessions() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        await established(cp, 1)
        await established(cp, 2)
        released = asyncio.get_running_loop().create_future()
        cp.node.on_event = lambda e: released.set_result(e) if not released.done() else None
        cp.node.release(cp.up)
        await asyncio.wait_for(released, DEADLINE)
        assert driver.installed() == {} and agent.sessions == {}
        assert cause_of(await cp.request(pfcp.SessionDeletionRequest(seid=1))) == Cause.NO_ESTABLISHED_PFCP_ASSOCIATION

    run_associated(scenario)


# -- desired state --------------------------------------------------------------------------------


def test_resync_after_the_driver_lost_its_state() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        seids = [await established(cp, n) for n in (1, 2, 3)]
        stray = driver.installed()[seids[0]]
        driver.lose_state()
        driver.install(type(stray)(stray.cp_f_seid, 999))  # something the agent never asked for
        result = agent.resync()
        assert (result.reinstalled, result.removed, result.failed) == (3, 1, 0)
        assert driver.installed() == agent.sessions
        assert agent.resync().reinstalled == 0  # equal now: nothing to do
        # the reinstalled sessions serve requests as before
        response = await cp.request(pfcp.SessionDeletionRequest(seid=seids[1]))
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        assert set(driver.installed()) == {seids[0], seids[2]}

    run_associated(scenario)


def test_restart_driver_reinstalls_the_desired_state() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        seid = await established(cp)
        result = await agent.restart_driver()
        assert result.reinstalled == 1 and driver.started
        assert driver.installed() == agent.sessions and seid in driver.installed()

    run_associated(scenario)


def test_reports_go_to_the_address_of_the_owning_association() -> None:
    async def main() -> None:
        driver = FakeDriver()
        async with running(driver=driver) as agent:
            async with cp_at(up_address(agent), "127.0.0.9", node_id=pfcp.NodeID("smf.test")) as cp:
                await cp.node.associate(cp.up)
                up_seid = await established(cp, 5)
                driver.emit(DownlinkData(up_seid, pdr_id=2))
                report = await cp.next_report()
                assert report.seid == 5
                assert cp.node.local_address is not None and IPv4Address(cp.node.local_address[0]) == IPv4Address(
                    "127.0.0.9"
                )

    asyncio.run(asyncio.wait_for(main(), DEADLINE))


# -- a CP lost to unanswered heartbeats ------------------------------------------------------------


def _lossy_config(grace: float) -> UpfConfig:
    from tests.unit.user_plane.test_agent import config

    return config(timers={"t1": 0.1, "n1": 1, "heartbeat_interval": 0.2, "cp_lost_grace": grace})


async def _lose_cp(agent: UpfAgent, driver: FakeDriver, stamp: int | None) -> tuple[int, int]:
    """Establish two sessions, let the CP go silent until the agent declares it lost; then,
    unless ``stamp`` is None, the CP associates again with that Recovery Time Stamp."""
    async with cp_at(up_address(agent)) as cp:
        await cp.node.associate(cp.up)
        seids = (await established(cp, 1), await established(cp, 2))
        port = cp.node.local_address[1] if cp.node.local_address else 0
    # the CP's socket is closed: heartbeats go unanswered (T1 0.1 s, N1 1, every 0.2 s)
    for _ in range(50):
        if not agent._peers:
            break
        await asyncio.sleep(0.05)
    assert not agent._peers, "the CP was never declared lost"
    assert set(driver.installed()) == set(seids)  # still forwarding
    if stamp is not None:
        async with cp_at(up_address(agent), HOST, port, stamp=stamp) as again:
            await again.request(pfcp.HeartbeatRequest(recovery_time_stamp=pfcp.RecoveryTimeStamp(stamp)))
            await again.node.associate(again.up)
    return seids


def test_a_lost_cp_back_with_the_same_stamp_keeps_its_sessions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")

    async def main() -> None:
        driver = FakeDriver()
        async with running(_lossy_config(grace=30), driver) as agent:
            seids = await _lose_cp(agent, driver, CP_STAMP)
            assert set(driver.installed()) == set(seids) == set(agent.sessions)

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert "its 2 sessions keep forwarding for 30 s" in caplog.text
    assert "back with the same Recovery Time Stamp: 2 sessions kept" in caplog.text


def test_a_lost_cp_back_restarted_loses_its_sessions() -> None:
    async def main() -> None:
        driver = FakeDriver()
        async with running(_lossy_config(grace=30), driver) as agent:
            await _lose_cp(agent, driver, CP_STAMP + 100)
            assert driver.installed() == {} and agent.sessions == {}

    asyncio.run(asyncio.wait_for(main(), DEADLINE))


def test_a_cp_lost_for_longer_than_the_grace_loses_its_sessions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")

    async def main() -> None:
        driver = FakeDriver()
        async with running(_lossy_config(grace=0.3), driver) as agent:
            await _lose_cp(agent, driver, None)
            for _ in range(40):
                if not agent.sessions:
                    break
                await asyncio.sleep(0.05)
            assert driver.installed() == {} and agent.sessions == {}

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert "purged 2 sessions of CP 127.0.0.1: CP unreachable for longer than timers.cp_lost_grace" in caplog.text
