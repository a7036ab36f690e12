"""The UPF agent with the vpp driver over real PFCP on loopback, VPP played by the API emulator.

The PFCP-level session scenarios of the software driver (tests/unit/user_plane/test_agent*.py:
establishment with CH/CHID and SDF filters, the causes 65/73/75, modification, Query URR and
QAURR, removed URRs, deletion with final usage, Session Report Requests, purges, dataplane
restarts), each also checking what VPP holds. Traffic is the emulator's tunnel counters.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import yaml

import pfcp
from tests.integration.test_vpp_driver import GNB, config, route, session_records, tunnel, tunnel_index, until
from tests.unit.user_plane.test_agent import (
    DEADLINE,
    HOST,
    N3,
    RT,
    Cause,
    Cp,
    cause_of,
    cp_at,
    downlink_pdr,
    seids_in_use,
    teids_in_use,
    ue,
    up_address,
    uplink_pdr,
    urr,
)
from tests.unit.user_plane.test_agent_sessions import established, modify, volumes
from tests.unit.user_plane.vpp.helpers import downlink_far
from tests.vpp_emulator import VppEmulator
from user_plane.agent import UpfAgent
from user_plane.config import Capacity
from user_plane.vpp.driver import VppDriver

pytest_plugins = ["tests.harness.vpp"]  # vpp_emulator, vpp_api_dir

TRIGGER = pfcp.UsageReportTriggerFlags
SMREQ = pfcp.PFCPSMReqFlagsValue
Scenario = Callable[[UpfAgent, Cp, VppEmulator], Awaitable[None]]


@asynccontextmanager
async def vpp_agent(emulator: VppEmulator, api_dir: Path, **overrides: Any) -> AsyncIterator[UpfAgent]:
    cfg = config(emulator, api_dir, **overrides.pop("vpp", {}))
    if overrides:
        cfg = replace(cfg, **overrides)
    agent = UpfAgent(cfg, VppDriver.from_config(cfg), manage_gc=False)
    await agent.start(port=0)
    try:
        yield agent
    finally:
        await agent.stop()


def run_associated(emulator: VppEmulator, api_dir: Path, scenario: Scenario, **overrides: Any) -> None:
    async def main() -> None:
        async with vpp_agent(emulator, api_dir, **overrides) as agent, cp_at(up_address(agent)) as cp:
            await cp.node.associate(cp.up)
            await scenario(agent, cp, emulator)

    asyncio.run(asyncio.wait_for(main(), DEADLINE))


def pdrs_of_ue(n: int) -> tuple[pfcp.CreatePDR, pfcp.CreatePDR]:
    """The uplink and downlink PDR of ser() for UE 198.19.0.<n>: a UE address is one session's."""
    up, down = uplink_pdr(), downlink_pdr()
    address = ue(n)
    return (
        replace(up, pdi=replace(up.pdi, ue_ip_address=(pfcp.UEIPAddress(ipv4=address),))),
        replace(down, pdi=replace(down.pdi, ue_ip_address=(pfcp.UEIPAddress(ipv4=address, is_destination=True),))),
    )


def local_teid(agent: UpfAgent, up_seid: int) -> int:
    fteid = agent.sessions[up_seid].pdrs[1].local_f_teid
    assert fteid is not None
    return fteid.teid


def driver_of(agent: UpfAgent) -> VppDriver:
    assert isinstance(agent.driver, VppDriver)
    return agent.driver


# -- establishment ------------------------------------------------------------------------------


def test_association_advertises_only_what_the_vpp_driver_implements(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    F = pfcp.UPFeatures
    wanted = F.FTUP | F.BUCP | F.DDND | F.EMPU | F.QUOAC | F.MNOP  # what the software driver's forwarder does, and more

    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        # the agent's own FTUP only: no buffering (BUCP, DDND), End Marker (EMPU), Quota Action (QUOAC)...
        assert agent.features == F.FTUP and agent.driver.features == F(0)
        again = await cp.node.associate(cp.up)  # what the CP reads in the Association Setup Response
        assert again.info.up_function_features == pfcp.UPFunctionFeatures(F.FTUP)

    run_associated(vpp_emulator, vpp_api_dir, scenario, features=wanted)


def test_establishment_allocates_f_teids_and_programs_vpp(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        # PDRs 1 and 3 share CHID 1: one F-TEID, one tunnel; PDR 4 has CH without CHID: its own
        pdrs = (
            uplink_pdr(1, chid=1),
            downlink_pdr(2),
            uplink_pdr(3, chid=1, precedence=100, sdf="permit out ip from 198.18.2.2 to assigned"),
            uplink_pdr(4, chid=None, precedence=50, sdf="permit out 17 from any to assigned"),
        )
        response = await cp.establish(0xC0FFEE, pdrs=pdrs)
        assert cause_of(response) == Cause.REQUEST_ACCEPTED and response.up_f_seid is not None
        up_seid = response.up_f_seid.seid
        created = {c.pdr_id.value: c.local_f_teid for c in response.created_pdr}
        assert created[1] == created[3] != created[4]
        shared, own = (created[1], created[4])
        assert shared is not None and own is not None and shared.ipv4 == own.ipv4 == N3
        state = emulator.state
        tunnels = {(t.teid, str(t.dst), t.tteid, t.decap_next_index) for t in state.gtpu_tunnels.values()}
        assert tunnels == {(shared.teid, str(GNB), 0x5000, 2), (own.teid, str(GNB), 0x5000, 2)}
        tags = {a.tag: a for a in state.acls.values()}
        ue = "198.19.0.1/32"
        shared_acl = tags[f"edgecups:{up_seid:x}:ul:{shared.teid:x}"]
        assert [(r.is_permit, str(r.src_prefix), str(r.dst_prefix)) for r in shared_acl.rules] == [
            (1, ue, "198.18.2.2/32"),  # PDR 3 (precedence 100) before PDR 1 (200)
            (1, "0.0.0.0/0", "0.0.0.0/0"),
        ]
        own_acl = tags[f"edgecups:{up_seid:x}:ul:{own.teid:x}"]
        assert [(r.is_permit, str(r.src_prefix), str(r.dst_prefix), r.proto) for r in own_acl.rules] == [
            (1, ue, "0.0.0.0/0", 17)  # only UDP: anything else on this F-TEID is denied
        ]
        assert driver_of(agent).installed()[up_seid] is agent.sessions[up_seid]
        assert teids_in_use(agent) == 2

    run_associated(vpp_emulator, vpp_api_dir, scenario)


def test_rule_failures_and_capacity_are_answered_before_vpp_is_touched(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        emulator.reset_calls()
        response = await cp.establish(1, pdrs=(uplink_pdr(1), downlink_pdr(2, far_id=9)))
        assert cause_of(response) == 73 and response.failed_rule_id == pfcp.FailedRuleID(RT.PDR, 2)
        assert [n for n, _ in emulator.calls if n not in ("control_ping", "gtpu_get_transfer_counts")] == []
        burst = await asyncio.gather(*(cp.establish(seid, pdrs=pdrs_of_ue(seid)) for seid in range(10, 14)))
        assert sorted(cause_of(r) for r in burst) == [1, 1, 75, 75]
        assert len(emulator.state.gtpu_tunnels) == 2 == len(agent.sessions)

    run_associated(vpp_emulator, vpp_api_dir, scenario, capacity=Capacity(max_sessions=2))


def test_a_vpp_call_failing_mid_way_gets_73_with_the_rule_and_changes_nothing(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        before = emulator.state
        emulator.fail("ip_route_add_del", -7)  # after the tunnel, its VRF binding and IP enable
        response = await cp.establish(1)
        assert cause_of(response) == Cause.RULE_CREATION_MODIFICATION_FAILURE
        assert response.failed_rule_id == pfcp.FailedRuleID(RT.PDR, 2)  # the downlink PDR's UE route
        assert emulator.state == before and agent.sessions == {}
        assert (teids_in_use(agent), seids_in_use(agent)) == (0, 0)
        up_seid = await established(cp)  # and the agent goes on
        teid = local_teid(agent, up_seid)
        assert session_records(emulator.state) == {tunnel(teid=teid), route((str(GNB), teid))}
        emulator.fail("gtpu_add_del_tunnel_v2", -7)
        moved = await modify(cp, up_seid, update_far=(downlink_far(gnb=IPv4Address("198.18.1.9")),))
        assert cause_of(moved) == 73 and moved.failed_rule_id == pfcp.FailedRuleID(RT.PDR, 1)
        # the old tunnel and route stay in force
        assert session_records(emulator.state) == {tunnel(teid=teid), route((str(GNB), teid))}

    run_associated(vpp_emulator, vpp_api_dir, scenario)


def test_a_teid_owned_by_another_session_gets_73_with_the_pdr_id(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> None:
    def with_teid(pdr_id: int) -> pfcp.CreatePDR:
        pdr = uplink_pdr(pdr_id)
        return replace(pdr, pdi=replace(pdr.pdi, local_f_teid=pfcp.FTEID(0x3000_0003, ipv4=N3)))

    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        assert cause_of(await cp.establish(1, pdrs=(with_teid(1), downlink_pdr()))) == Cause.REQUEST_ACCEPTED
        before = emulator.state
        response = await cp.establish(2, pdrs=(downlink_pdr(), with_teid(3)))
        assert cause_of(response) == 73 and response.failed_rule_id == pfcp.FailedRuleID(RT.PDR, 3)
        assert emulator.state == before and len(agent.sessions) == 1

    run_associated(vpp_emulator, vpp_api_dir, scenario)


# -- modification, usage, deletion ---------------------------------------------------------------


def test_handover_and_qos_change_over_pfcp(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        up_seid = await established(cp)
        teid = local_teid(agent, up_seid)
        assert session_records(emulator.state) == {tunnel(teid=teid), route((str(GNB), teid))}
        target = IPv4Address("198.18.1.9")
        response = await modify(cp, up_seid, update_far=(downlink_far(gnb=target, teid=0x6000),))
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        assert session_records(emulator.state) == {tunnel(target, teid, 0x6000), route((str(target), teid))}
        limited = pfcp.UpdateQER(qer_id=pfcp.QERID(1), mbr=pfcp.MBR(ul=8_000, dl=16_000))
        assert cause_of(await modify(cp, up_seid, update_qer=(limited,))) == Cause.REQUEST_ACCEPTED
        policers = {p.name: p.infos.cir for p in emulator.state.policers.values()}
        assert policers == {f"edgecups:{up_seid:x}:1:ul": 8_000, f"edgecups:{up_seid:x}:1:dl": 16_000}
        emulator.reset_calls()
        faster = pfcp.UpdateQER(qer_id=pfcp.QERID(1), mbr=pfcp.MBR(ul=8_000, dl=32_000))
        assert cause_of(await modify(cp, up_seid, update_qer=(faster,))) == Cause.REQUEST_ACCEPTED
        assert [n for n, _ in emulator.calls if n not in ("control_ping", "gtpu_get_transfer_counts")] == [
            "policer_update"
        ]

    run_associated(vpp_emulator, vpp_api_dir, scenario)


def test_query_urr_qaurr_and_removed_urrs_report_vpps_counters(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        up_seid = await established(cp)
        assert cause_of(await modify(cp, up_seid, create_urr=(urr(2),))) == Cause.REQUEST_ACCEPTED
        index = tunnel_index(emulator.state, local_teid(agent, up_seid))
        emulator.count_traffic(index, rx_packets=2, rx_bytes=1000, tx_packets=3, tx_bytes=3000 + 3 * 36)
        response = await modify(
            cp,
            up_seid,
            query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(1)),),
            query_urr_reference=pfcp.QueryURRReference(77),
        )
        [report] = response.usage_report
        assert report.urr_id == pfcp.URRID(1) and volumes(report) == (1000, 3000)
        assert report.usage_report_trigger.value == TRIGGER.IMMER
        assert report.query_urr_reference == pfcp.QueryURRReference(77)
        # URR 2 is no PDR's: VPP counts nothing for it
        emulator.count_traffic(index, rx_packets=1, rx_bytes=5)
        response = await modify(cp, up_seid, pfcpsmreq_flags=pfcp.PFCPSMReqFlags(SMREQ.QAURR))
        assert {r.urr_id.value: volumes(r) for r in response.usage_report} == {1: (5, 0), 2: (0, 0)}
        response = await modify(cp, up_seid, remove_urr=(pfcp.RemoveURR(urr_id=pfcp.URRID(2)),))
        [final] = response.usage_report
        assert final.urr_id == pfcp.URRID(2) and final.usage_report_trigger.value == TRIGGER.TERMR

    run_associated(vpp_emulator, vpp_api_dir, scenario)


def test_deletion_returns_the_final_counters_and_leaves_no_session_object(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        up_seid = await established(cp)
        index = tunnel_index(emulator.state, local_teid(agent, up_seid))
        emulator.count_traffic(index, rx_packets=1, rx_bytes=1234, tx_packets=1, tx_bytes=4321 + 36)
        response = await cp.request(pfcp.SessionDeletionRequest(seid=up_seid))
        assert isinstance(response, pfcp.SessionDeletionResponse) and cause_of(response) == Cause.REQUEST_ACCEPTED
        [report] = response.usage_report
        assert volumes(report) == (1234, 4321) and report.usage_report_trigger.value == TRIGGER.TERMR
        assert session_records(emulator.state) == set() and agent.sessions == {}
        assert teids_in_use(agent) == 0

    run_associated(vpp_emulator, vpp_api_dir, scenario)


def test_a_threshold_reached_in_vpp_becomes_a_session_report_request(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        up_seid = await established(cp, 0xFEED)  # URR 1: volume threshold 1 000 000 octets
        index = tunnel_index(emulator.state, local_teid(agent, up_seid))
        emulator.count_traffic(index, rx_packets=700, rx_bytes=600_000, tx_packets=500, tx_bytes=500_000 + 500 * 36)
        report = await cp.next_report()
        assert report.seid == 0xFEED and report.report_type == pfcp.ReportType(pfcp.ReportTypeFlags.USAR)
        [usage] = report.usage_report
        assert usage.usage_report_trigger.value == TRIGGER.VOLTH and volumes(usage) == (600_000, 500_000)
        assert up_seid in agent.sessions

    run_associated(vpp_emulator, vpp_api_dir, scenario)


# -- purges and dataplane restarts ---------------------------------------------------------------


def test_an_association_release_purges_the_sessions_from_vpp(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        for n in (1, 2):
            assert cause_of(await cp.establish(n, pdrs=pdrs_of_ue(n))) == Cause.REQUEST_ACCEPTED
        assert len(emulator.state.gtpu_tunnels) == 2
        agent.purge(pfcp.NodeID(IPv4Address(HOST)), "test")
        assert session_records(emulator.state) == set() and agent.sessions == {}

    run_associated(vpp_emulator, vpp_api_dir, scenario)


def test_restart_driver_and_a_vpp_restart_install_the_desired_state_again(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        up_seid = await established(cp)
        wanted = session_records(emulator.state)
        result = await agent.restart_driver()  # stop (node taken down), start, resync
        assert (result.reinstalled, result.failed) == (1, 0)
        assert session_records(emulator.state) == wanted
        emulator.restart()
        driver = driver_of(agent)
        await until(lambda: driver.reconnects > 0)
        assert session_records(emulator.state) == wanted
        assert agent.resync().reinstalled == 0  # the driver holds the desired state already
        response = await cp.request(pfcp.SessionDeletionRequest(seid=up_seid))
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        assert session_records(emulator.state) == set()

    run_associated(vpp_emulator, vpp_api_dir, scenario)


def test_while_vpp_is_away_requests_get_77(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> None:
    async def scenario(agent: UpfAgent, cp: Cp, emulator: VppEmulator) -> None:
        emulator.stop()  # VPP gone, nobody answers
        driver = driver_of(agent)
        await until(lambda: not driver.ready)
        response = await cp.establish(1)
        assert cause_of(response) == Cause.SYSTEM_FAILURE and agent.sessions == {}
        emulator.start()
        await until(lambda: driver.ready)
        up_seid = await established(cp, 2)
        teid = local_teid(agent, up_seid)
        assert session_records(emulator.state) == {tunnel(teid=teid), route((str(GNB), teid))}

    run_associated(vpp_emulator, vpp_api_dir, scenario)


# -- edgecups upf with driver: vpp ------------------------------------------------------------------


def test_edgecups_upf_runs_the_vpp_driver_and_stops_cleanly(
    vpp_emulator: VppEmulator, vpp_api_dir: Path, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a free UDP port for N4
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    mapping = config(vpp_emulator, vpp_api_dir).to_mapping()
    mapping["n4"]["port"] = port
    mapping["log_level"] = "info"
    path = tmp_path / "upf.yaml"
    path.write_text(yaml.safe_dump(mapping))
    boot = vpp_emulator.state
    agent = subprocess.Popen(
        [sys.executable, "-m", "control_plane.cli.main", "upf", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EDGECUPS_PURE": "1"},
    )

    async def cp_side() -> pfcp.SessionEstablishmentResponse:
        async with cp_at((HOST, port)) as cp:
            for _ in range(200):  # until the agent listens
                try:
                    await cp.node.associate(cp.up)
                    break
                except Exception:
                    await asyncio.sleep(0.05)
            return await cp.establish(0x77)

    try:
        response = asyncio.run(asyncio.wait_for(cp_side(), DEADLINE * 2))
        running = vpp_emulator.state
    finally:
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=DEADLINE)
    assert agent.returncode == 0, stderr
    assert cause_of(response) == Cause.REQUEST_ACCEPTED
    [created] = response.created_pdr
    assert created.local_f_teid is not None and created.local_f_teid.teid is not None
    teid = created.local_f_teid.teid
    assert session_records(running) == {tunnel(teid=teid), route((str(GNB), teid))}
    assert f"port {port} (driver vpp, features FTUP)" in stderr
    after = vpp_emulator.state  # the agent dropped its session and took the node setup back
    assert (after.gtpu_tunnels, after.routes, after.acls, after.ip_tables) == (
        boot.gtpu_tunnels,
        boot.routes,
        boot.acls,
        boot.ip_tables,
    )
