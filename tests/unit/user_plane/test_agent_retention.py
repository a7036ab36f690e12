"""The UPF agent over real PFCP on loopback: PFCP Session Retention Information on a
repeated Association Setup (TS 29.244 §6.2.6.2.2, Rel-16) and re-sent Session
Establishment Requests for a CP F-SEID the UPF already holds.

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
    Cause,
    Cp,
    cause_of,
    cp_at,
    far,
    run_associated,
    running,
    seids_in_use,
    teids_in_use,
    up_address,
)
from tests.unit.user_plane.test_agent_sessions import _lossy_config, established
from user_plane.agent import UpfAgent
from user_plane.driver import DriverError

OTHER = IPv4Address("192.0.2.99")  # a CP PFCP entity address the sessions below do not use


def retention(*addresses: IPv4Address) -> pfcp.PFCPSessionRetentionInformation:
    return pfcp.PFCPSessionRetentionInformation(
        cp_pfcp_entity_ip_address=tuple(pfcp.CPPFCPEntityIPAddress(a) for a in addresses)
    )


async def established_from(cp: Cp, cp_seid: int, address: IPv4Address) -> int:
    """A session whose CP F-SEID carries ``address`` (a CP with several PFCP entities)."""
    response = await cp.establish(cp_seid, cp_f_seid=pfcp.FSEID(cp_seid, ipv4=address))
    assert cause_of(response) == Cause.REQUEST_ACCEPTED and response.up_f_seid is not None
    return response.up_f_seid.seid


async def set_up_again(
    agent: UpfAgent, port: int, info: pfcp.PFCPSessionRetentionInformation | None, stamp: int = CP_STAMP
) -> None:
    """The CP (same Node ID, same address) sends a new Association Setup Request."""
    async with cp_at(up_address(agent), HOST, port, stamp=stamp) as again:
        # a heartbeat first, with the stamp the UPF knows: the new node's sequence numbers restart at 1
        await again.request(pfcp.HeartbeatRequest(recovery_time_stamp=pfcp.RecoveryTimeStamp(CP_STAMP)))
        await again.node.associate(again.up, session_retention=info)


def run_repeated_setup(
    info: pfcp.PFCPSessionRetentionInformation | None, stamp: int = CP_STAMP
) -> tuple[dict[str, int], set[int], set[int]]:
    """Sessions 'a' (CP F-SEID 127.0.0.1) and 'b' (192.0.2.99) on a live association,
    then a repeated setup; returns (sessions, agent's sessions, driver's sessions)."""
    driver = FakeDriver()
    result: dict[str, int] = {}
    after: list[set[int]] = []

    async def main() -> None:
        async with running(driver=driver) as agent:
            async with cp_at(up_address(agent)) as cp:
                await cp.node.associate(cp.up)
                result["a"] = await established_from(cp, 1, IPv4Address(HOST))
                result["b"] = await established_from(cp, 2, OTHER)
                port = cp.node.local_address[1] if cp.node.local_address else 0
            await set_up_again(agent, port, info, stamp)
            after.extend((set(agent.sessions), set(driver.installed())))
            assert teids_in_use(agent) == len(after[0]) and seids_in_use(agent) == len(after[0])

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    return result, after[0], after[1]


def test_repeated_setup_without_the_ie_purges_every_session(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")
    _, sessions, installed = run_repeated_setup(None)
    assert sessions == installed == set()
    assert "purged 2 sessions of CP 127.0.0.1: repeated Association Setup Request" in caplog.text


def test_repeated_setup_with_the_ie_keeps_the_listed_address_and_deletes_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")
    seids, sessions, installed = run_repeated_setup(retention(IPv4Address(HOST)))
    assert sessions == installed == {seids["a"]}
    assert "(§6.2.6.2.2): 1 sessions kept, 1 deleted" in caplog.text


def test_repeated_setup_listing_another_address_deletes_the_sessions_of_this_one() -> None:
    seids, sessions, installed = run_repeated_setup(retention(OTHER))
    assert sessions == installed == {seids["b"]}
    _, sessions, installed = run_repeated_setup(retention(IPv4Address("192.0.2.1")))
    assert sessions == installed == set()


def test_an_empty_ie_retains_every_session_even_with_a_new_recovery_time_stamp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")
    # A newer stamp in the setup raises PeerRestarted before AssociationEstablished; with the IE
    # the association is overwritten "regardless of the Recovery Timestamp" (§6.2.6.2.2).
    seids, sessions, installed = run_repeated_setup(retention(), stamp=CP_STAMP + 60)
    assert sessions == installed == set(seids.values())
    assert "2 sessions kept, 0 deleted" in caplog.text
    assert "purged" not in caplog.text


def test_a_lost_cp_back_with_a_new_stamp_and_the_ie_keeps_its_sessions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")

    async def main() -> None:
        driver = FakeDriver()
        async with running(_lossy_config(grace=30), driver) as agent:
            async with cp_at(up_address(agent)) as cp:
                await cp.node.associate(cp.up)
                seids = {await established(cp, 1), await established(cp, 2)}
                port = cp.node.local_address[1] if cp.node.local_address else 0
            for _ in range(50):  # heartbeats go unanswered (T1 0.1 s, N1 1, every 0.2 s)
                if not agent._peers:
                    break
                await asyncio.sleep(0.05)
            assert not agent._peers, "the CP was never declared lost"
            await set_up_again(agent, port, retention(IPv4Address(HOST)), stamp=CP_STAMP + 100)
            assert set(agent.sessions) == set(driver.installed()) == seids
            assert not agent._lost  # the grace timer is gone with the lost record

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert "2 sessions kept, 0 deleted" in caplog.text


# -- a re-sent Session Establishment Request --------------------------------------------------------


def test_a_re_sent_establishment_replaces_the_session(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")

    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        other = await established(cp, 7)
        first = await established(cp, 0xAB)
        # new sequence number (the node numbers each request): not a §6.4 retransmission
        response = await cp.establish(0xAB)
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        assert response.seid == 0xAB and response.up_f_seid is not None
        second = response.up_f_seid.seid
        assert second != first
        assert set(agent.sessions) == set(driver.installed()) == {other, second}
        assert agent.sessions[second].cp_f_seid.seid == 0xAB
        assert teids_in_use(agent) == 2 and seids_in_use(agent) == 2  # the old session's are released
        # the CP addresses the session by the new UP SEID; the old one is unknown
        old = await cp.request(pfcp.SessionDeletionRequest(seid=first))
        assert cause_of(old) == Cause.SESSION_CONTEXT_NOT_FOUND
        deleted = await cp.request(pfcp.SessionDeletionRequest(seid=second))
        assert cause_of(deleted) == Cause.REQUEST_ACCEPTED
        # the index followed the deletion: the same CP SEID establishes afresh
        assert cause_of(await cp.establish(0xAB)) == Cause.REQUEST_ACCEPTED
        assert len(agent.sessions) == 2 and agent.counters["sessions replaced"] == 1

    run_associated(scenario)
    assert "CP SEID 0xab of CP 127.0.0.1 (already held by session" in caplog.text


def test_the_same_cp_seid_from_another_cp_is_another_session() -> None:
    async def main() -> None:
        driver = FakeDriver()
        async with running(driver=driver) as agent:
            async with cp_at(up_address(agent)) as a, cp_at(a.up, "127.0.0.8", node_id=pfcp.NodeID("smf.test")) as b:
                await a.node.associate(a.up)
                await b.node.associate(b.up)
                seids = {await established(a, 5), await established(b, 5)}
                assert set(agent.sessions) == set(driver.installed()) == seids and len(seids) == 2

    asyncio.run(asyncio.wait_for(main(), DEADLINE))


def test_a_re_sent_establishment_the_driver_refuses_keeps_the_old_session() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        first = await established(cp, 0xAB)
        driver.fail_next_install = DriverError("dataplane full")
        response = await cp.establish(0xAB)
        assert cause_of(response) == Cause.SYSTEM_FAILURE
        # removed, then installed again when the replacement failed
        assert set(agent.sessions) == set(driver.installed()) == {first}
        assert teids_in_use(agent) == 1 and seids_in_use(agent) == 1
        # still reachable and still replaceable
        again = await cp.establish(0xAB)
        assert cause_of(again) == Cause.REQUEST_ACCEPTED and again.up_f_seid is not None
        assert set(agent.sessions) == set(driver.installed()) == {again.up_f_seid.seid}

    run_associated(scenario)


def test_an_invalid_re_sent_establishment_is_rejected_and_changes_nothing() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        first = await established(cp, 0xAB)
        installs = driver.methods().count("install")
        response = await cp.establish(0xAB, create_far=(far(1, core=True),))  # PDR 2's FAR 2 does not exist
        assert cause_of(response) != Cause.REQUEST_ACCEPTED
        assert set(agent.sessions) == set(driver.installed()) == {first}
        assert driver.methods().count("install") == installs and "remove" not in driver.methods()

    run_associated(scenario)


def test_a_re_sent_establishment_is_served_at_capacity() -> None:
    from tests.unit.user_plane.test_agent import config

    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        await established(cp, 1)
        assert cause_of(await cp.establish(2)) == Cause.NO_RESOURCES_AVAILABLE
        assert cause_of(await cp.establish(1)) == Cause.REQUEST_ACCEPTED  # replaces: no new capacity used
        assert len(agent.sessions) == len(driver.installed()) == 1

    run_associated(scenario, config(capacity={"max_sessions": 1}))


def test_the_index_follows_a_cp_f_seid_moved_by_a_modification() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        first = await established(cp, 0xAB)
        moved = pfcp.FSEID(0xCD, ipv4=IPv4Address(HOST))  # Table 7.5.4.1-1: the CP changes its F-SEID
        response = await cp.request(pfcp.SessionModificationRequest(seid=first, cp_f_seid=moved))
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        assert agent.sessions[first].cp_f_seid.seid == 0xCD
        # the old CP SEID is free: a new session, not a replacement
        old = await cp.establish(0xAB)
        assert cause_of(old) == Cause.REQUEST_ACCEPTED and agent.counters["sessions replaced"] == 0
        # the new CP SEID is the moved session's: a re-sent establishment replaces it
        again = await cp.establish(0xCD)
        assert cause_of(again) == Cause.REQUEST_ACCEPTED and again.up_f_seid is not None
        assert agent.counters["sessions replaced"] == 1
        assert first not in agent.sessions and len(agent.sessions) == len(driver.installed()) == 2

    run_associated(scenario)
