"""The UPF agent over real PFCP on loopback: associations and session establishment.

A :class:`pfcp.aio.PfcpNode` plays the CP function; the agent runs over the
recording test double of the driver (tests/fakes/driver.py), whose installed
state is what the assertions compare. Every answer is read off the wire.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from typing import Any

import pytest

import pfcp
from pfcp.aio import AssociationFailed, PfcpNode
from pfcp.endpoint import EndpointConfig
from pfcp.events import Address, RequestReceived
from pfcp.transaction import RetransmitPolicy
from tests.fakes.driver import FakeDriver
from user_plane.agent import UpfAgent
from user_plane.config import UpfConfig, parse_config
from user_plane.rules import FSeid

DEADLINE = 10.0
A = pfcp.ApplyActionFlags
Cause = pfcp.CauseValue
RT = pfcp.RuleIDType
HOST = "127.0.0.1"
N3 = IPv4Address("198.18.1.1")
UP_NODE = "upf.test"
CP_NODE = pfcp.NodeID(IPv4Address(HOST))
CP_STAMP = 3_900_000_000


def config(**overrides: Any) -> UpfConfig:
    mapping: dict[str, Any] = {
        "node_id": UP_NODE,
        "n4": {"address": HOST},
        "n3": [str(N3)],
        "n6": {"internet": {"interface": "n6-test", "ue_pool": "198.19.0.0/16"}},
        "allowed_cps": [HOST, "smf.test"],
        "timers": {"t1": 0.3, "n1": 2, "heartbeat_interval": None},
    }
    mapping.update(overrides)
    return parse_config(mapping)


# -- requests -------------------------------------------------------------------


def ue(n: int) -> IPv4Address:
    return IPv4Address("198.19.0.0") + n


def uplink_pdr(
    pdr_id: int = 1, *, chid: int | None = 1, precedence: int = 200, sdf: str | None = None
) -> pfcp.CreatePDR:
    pdi = pfcp.PDI(
        source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
        local_f_teid=pfcp.FTEID(choose_v4=True, choose_id=chid),
        network_instance=pfcp.NetworkInstance("internet"),
        ue_ip_address=(pfcp.UEIPAddress(ipv4=ue(1)),),
        sdf_filter=() if sdf is None else (pfcp.SDFFilter(flow_description=sdf),),
    )
    return pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(pdr_id),
        precedence=pfcp.Precedence(precedence),
        pdi=pdi,
        outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
        far_id=pfcp.FARID(1),
        qer_id=(pfcp.QERID(1),),
        urr_id=(pfcp.URRID(1),),
    )


def downlink_pdr(pdr_id: int = 2, *, far_id: int = 2, precedence: int = 200) -> pfcp.CreatePDR:
    pdi = pfcp.PDI(
        source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.CORE),
        network_instance=pfcp.NetworkInstance("internet"),
        ue_ip_address=(pfcp.UEIPAddress(ipv4=ue(1), is_destination=True),),
    )
    return pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(pdr_id),
        precedence=pfcp.Precedence(precedence),
        pdi=pdi,
        far_id=pfcp.FARID(far_id),
        qer_id=(pfcp.QERID(1),),
        urr_id=(pfcp.URRID(1),),
    )


def far(far_id: int, *, core: bool) -> pfcp.CreateFAR:
    dst = pfcp.DestinationInterfaceValue.CORE if core else pfcp.DestinationInterfaceValue.ACCESS
    ohc = None
    if not core:
        ohc = pfcp.OuterHeaderCreation(
            pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=0x5000, ipv4=IPv4Address("198.18.1.2")
        )
    params = pfcp.ForwardingParameters(
        destination_interface=pfcp.DestinationInterface(dst),
        network_instance=pfcp.NetworkInstance("internet"),
        outer_header_creation=ohc,
    )
    return pfcp.CreateFAR(
        far_id=pfcp.FARID(far_id), apply_action=pfcp.ApplyAction(A.FORW), forwarding_parameters=params
    )


def urr(urr_id: int) -> pfcp.CreateURR:
    return pfcp.CreateURR(
        urr_id=pfcp.URRID(urr_id),
        measurement_method=pfcp.MeasurementMethod(pfcp.MeasurementMethodFlags.VOLUM),
        reporting_triggers=pfcp.ReportingTriggers(pfcp.ReportingTriggersFlags.VOLTH),
        volume_threshold=pfcp.VolumeThreshold(total=1_000_000),
    )


def ser(cp_seid: int, *, pdrs: tuple[pfcp.CreatePDR, ...] | None = None, **kw: Any) -> pfcp.SessionEstablishmentRequest:
    """2 PDRs (uplink with CH, downlink), 2 FARs, 1 QER, 1 URR."""
    fields: dict[str, Any] = {
        "node_id": CP_NODE,
        "cp_f_seid": pfcp.FSEID(cp_seid, ipv4=IPv4Address(HOST)),
        "create_pdr": (uplink_pdr(), downlink_pdr()) if pdrs is None else pdrs,
        "create_far": (far(1, core=True), far(2, core=False)),
        "create_qer": (pfcp.CreateQER(qer_id=pfcp.QERID(1), gate_status=pfcp.GateStatus()),),
        "create_urr": (urr(1),),
    }
    fields.update(kw)
    return pfcp.SessionEstablishmentRequest(**fields)


def cause_of(msg: pfcp.Message) -> int:
    cause = getattr(msg, "cause", None)
    assert isinstance(cause, pfcp.Cause), msg
    return int(cause.value)


# -- harness ---------------------------------------------------------------------


@dataclass
class Cp:
    """A CP function on loopback: a PfcpNode that records Session Report Requests."""

    node: PfcpNode
    up: Address
    reports: list[pfcp.SessionReportRequest] = field(default_factory=list)
    report_cause: pfcp.CauseValue = Cause.REQUEST_ACCEPTED
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def handle(self, event: RequestReceived) -> pfcp.Message | None:
        msg = event.message
        if isinstance(msg, pfcp.SessionReportRequest):
            self.reports.append(msg)
            self.arrived.set()
            return pfcp.SessionReportResponse(seid=msg.seid, cause=pfcp.Cause(self.report_cause))
        return None

    async def request(self, msg: pfcp.Message) -> pfcp.Message:
        return await self.node.request(self.up, msg)

    async def establish(self, cp_seid: int, **kw: Any) -> pfcp.SessionEstablishmentResponse:
        response = await self.request(ser(cp_seid, **kw))
        assert isinstance(response, pfcp.SessionEstablishmentResponse)
        return response

    async def next_report(self) -> pfcp.SessionReportRequest:
        await asyncio.wait_for(self.arrived.wait(), DEADLINE)
        self.arrived.clear()
        return self.reports[-1]


def cp_endpoint(node_id: pfcp.NodeID = CP_NODE, stamp: int = CP_STAMP) -> EndpointConfig:
    return EndpointConfig(
        node_id=node_id,
        recovery_time_stamp=pfcp.RecoveryTimeStamp(stamp),
        cp_function_features=pfcp.CPFunctionFeatures(pfcp.CPFeatures(0)),
        retransmit=RetransmitPolicy(t1=0.3, n1=2),
        heartbeat_interval=None,
    )


@asynccontextmanager
async def cp_at(
    up: Address, host: str = HOST, port: int = 0, *, node_id: pfcp.NodeID = CP_NODE, stamp: int = CP_STAMP
) -> AsyncIterator[Cp]:
    cp = Cp(PfcpNode(cp_endpoint(node_id, stamp)), up)
    cp.node.handler = cp.handle
    await cp.node.start(host, port)
    try:
        yield cp
    finally:
        cp.node.close()


@asynccontextmanager
async def running(cfg: UpfConfig | None = None, driver: FakeDriver | None = None) -> AsyncIterator[UpfAgent]:
    agent = UpfAgent(cfg or config(), driver or FakeDriver())
    await agent.start(port=0)
    try:
        yield agent
    finally:
        await agent.stop()


def up_address(agent: UpfAgent) -> Address:
    assert agent.node is not None and agent.node.local_address is not None
    return agent.node.local_address


Scenario = Callable[[UpfAgent, Cp, FakeDriver], Awaitable[None]]


def run_associated(scenario: Scenario, cfg: UpfConfig | None = None, driver: FakeDriver | None = None) -> None:
    """Run ``scenario`` with the agent started and one CP (127.0.0.1) associated."""
    fake = driver or FakeDriver()

    async def main() -> None:
        async with running(cfg, fake) as agent, cp_at(up_address(agent)) as cp:
            await cp.node.associate(cp.up)
            await scenario(agent, cp, fake)

    asyncio.run(asyncio.wait_for(main(), DEADLINE))


def teids_in_use(agent: UpfAgent) -> int:
    return len(agent._teids)


def seids_in_use(agent: UpfAgent) -> int:
    return len(agent._seids)


# -- associations ---------------------------------------------------------------------


def test_association_accepted_and_features_advertised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")
    cfg = config(features=["FTUP", "BUCP", "UEIP"])

    async def main() -> None:
        async with running(cfg, FakeDriver(supported=pfcp.UPFeatures.BUCP | pfcp.UPFeatures.DDND)) as agent:
            async with cp_at(up_address(agent)) as cp:
                established = await cp.node.associate(cp.up)
        info = established.info
        assert info.node_id == pfcp.NodeID(UP_NODE)
        # configured and implemented: FTUP (agent), BUCP (driver); UEIP is not implemented,
        # DDND is implemented but not configured
        assert info.up_function_features == pfcp.UPFunctionFeatures(pfcp.UPFeatures.FTUP | pfcp.UPFeatures.BUCP)
        assert agent.features == pfcp.UPFeatures.FTUP | pfcp.UPFeatures.BUCP

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert "not implemented by this build, not advertised: UEIP" in caplog.text


def test_association_from_an_unlisted_source_gets_64_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "user_plane.agent")

    async def main() -> None:
        async with running() as agent, cp_at(up_address(agent), "127.0.0.5", node_id=pfcp.NodeID("other.test")) as cp:
            setup = pfcp.AssociationSetupRequest(
                node_id=pfcp.NodeID("other.test"), recovery_time_stamp=pfcp.RecoveryTimeStamp(CP_STAMP)
            )
            response = await cp.request(setup)
            assert isinstance(response, pfcp.AssociationSetupResponse)
            assert cause_of(response) == Cause.REQUEST_REJECTED
            # not associated: a session request gets 72 and reaches no driver
            assert cause_of(await cp.request(ser(1))) == Cause.NO_ESTABLISHED_PFCP_ASSOCIATION
            assert agent.sessions == {}

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert "Association Setup Request from 127.0.0.5" in caplog.text
    assert "Node ID other.test" in caplog.text and "cause 64" in caplog.text


def test_an_fqdn_entry_matches_the_node_id() -> None:
    async def main() -> None:
        async with running() as agent, cp_at(up_address(agent), "127.0.0.6", node_id=pfcp.NodeID("SMF.Test")) as cp:
            await cp.node.associate(cp.up)  # "smf.test" is listed; case does not matter
        async with running() as agent, cp_at(up_address(agent), "127.0.0.6", node_id=pfcp.NodeID("amf.test")) as cp:
            with pytest.raises(AssociationFailed, match="cause 64"):
                await cp.node.associate(cp.up)

    asyncio.run(asyncio.wait_for(main(), DEADLINE))


def test_session_request_before_association_gets_72() -> None:
    async def main() -> None:
        driver = FakeDriver()
        async with running(driver=driver) as agent, cp_at(up_address(agent)) as cp:
            response = await cp.request(ser(1))
            assert isinstance(response, pfcp.SessionEstablishmentResponse)
            assert cause_of(response) == Cause.NO_ESTABLISHED_PFCP_ASSOCIATION
            assert driver.installed() == {} and "install" not in driver.methods()

    asyncio.run(asyncio.wait_for(main(), DEADLINE))


# -- establishment -------------------------------------------------------------------------


def test_establishment_allocates_f_teids_and_installs() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        # PDRs 1 and 3 share CHID 1: one F-TEID (§8.2.3); PDR 4 has CH without CHID: its own
        pdrs = (
            uplink_pdr(1, chid=1),
            downlink_pdr(2),
            uplink_pdr(3, chid=1, precedence=100, sdf="permit out ip from 198.18.2.2 to assigned"),
            uplink_pdr(4, chid=None, precedence=50, sdf="permit out udp from any to assigned"),
        )
        response = await cp.establish(0xC0FFEE, pdrs=pdrs)
        assert cause_of(response) == Cause.REQUEST_ACCEPTED
        assert response.seid == 0xC0FFEE  # the CP's SEID in the header (§7.2.2.4.2)
        assert response.node_id == pfcp.NodeID(UP_NODE)
        assert response.up_f_seid is not None and response.up_f_seid.ipv4 == IPv4Address(HOST)
        up_seid = response.up_f_seid.seid
        created = {c.pdr_id.value: c.local_f_teid for c in response.created_pdr}
        assert set(created) == {1, 3, 4}
        assert created[1] == created[3] != created[4]
        for fteid in created.values():
            assert fteid is not None and fteid.ipv4 == N3 and fteid.teid
        state = driver.installed()[up_seid]
        assert state is agent.sessions[up_seid]
        assert state.cp_f_seid == FSeid(0xC0FFEE, ipv4=IPv4Address(HOST))
        for pdr_id, fteid in created.items():
            local = state.pdrs[pdr_id].local_f_teid
            assert local is not None and fteid is not None and local.teid == fteid.teid and local.allocated
        assert set(state.fars) == {1, 2} and set(state.qers) == {1} and set(state.urrs) == {1}
        assert agent.owner(up_seid) == CP_NODE
        assert teids_in_use(agent) == 2

    run_associated(scenario)


def test_missing_mandatory_ie_gets_66() -> None:
    async def main() -> None:
        driver = FakeDriver()
        async with running(driver=driver) as agent:
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((HOST, 0))
                sock.setblocking(False)
                setup = pfcp.AssociationSetupRequest(
                    sequence=1, node_id=CP_NODE, recovery_time_stamp=pfcp.RecoveryTimeStamp(CP_STAMP)
                )
                await loop.sock_sendto(sock, pfcp.encode(setup), up_address(agent))
                data, _ = await loop.sock_recvfrom(sock, 65535)
                assert cause_of(pfcp.decode(data)) == Cause.REQUEST_ACCEPTED
                await loop.sock_sendto(
                    sock, without_ie(pfcp.encode(ser(5, sequence=2)), pfcp.IEType.F_SEID), up_address(agent)
                )
                data, _ = await loop.sock_recvfrom(sock, 65535)
        response = pfcp.decode(data)
        assert isinstance(response, pfcp.SessionEstablishmentResponse)
        assert cause_of(response) == Cause.MANDATORY_IE_MISSING
        assert response.offending_ie == pfcp.OffendingIE(pfcp.IEType.F_SEID)
        assert driver.installed() == {} and "install" not in driver.methods()

    asyncio.run(asyncio.wait_for(main(), DEADLINE))


def without_ie(message: bytes, ie_type: int) -> bytes:
    """A session message with one top-level IE cut out and its length fixed."""
    header = 16  # flags, type, length, SEID (8), sequence (3), spare (§7.2.2)
    out, pos = bytearray(message[:header]), header
    while pos < len(message):
        kind = int.from_bytes(message[pos : pos + 2], "big")
        size = 4 + int.from_bytes(message[pos + 2 : pos + 4], "big")
        if kind != ie_type:
            out += message[pos : pos + size]
        pos += size
    out[2:4] = (len(out) - 4).to_bytes(2, "big")
    assert len(out) < len(message)
    return bytes(out)


def test_rule_failures_get_73_with_failed_rule_id_and_change_nothing() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        # PDR 2 points to FAR 9, which does not exist: the referring PDR is the failed rule
        response = await cp.establish(1, pdrs=(uplink_pdr(1), downlink_pdr(2, far_id=9)))
        assert cause_of(response) == Cause.RULE_CREATION_MODIFICATION_FAILURE
        assert response.failed_rule_id == pfcp.FailedRuleID(RT.PDR, 2)
        assert response.up_f_seid is None and response.created_pdr == ()
        # PDR 3 equals PDR 2 in precedence and PDI: it conflicts (§5.2.1)
        response = await cp.establish(2, pdrs=(uplink_pdr(1), downlink_pdr(2), downlink_pdr(3)))
        assert cause_of(response) == 73 and response.failed_rule_id == pfcp.FailedRuleID(RT.PDR, 3)
        # nothing was installed, no TEID or SEID stayed allocated
        assert driver.installed() == {} and "install" not in driver.methods()
        assert (teids_in_use(agent), seids_in_use(agent), agent.sessions) == (0, 0, {})

    run_associated(scenario)


def test_beyond_capacity_the_excess_gets_75_and_the_rest_is_served() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        burst = await asyncio.gather(*(cp.establish(seid) for seid in range(1, 9)))
        causes = sorted(cause_of(r) for r in burst)
        assert causes == [1, 1, 1, 75, 75, 75, 75, 75]  # 75 No resources available (Table 8.2.1-1)
        assert len(driver.installed()) == len(agent.sessions) == 3
        assert seids_in_use(agent) == 3 and teids_in_use(agent) == 3
        # a deletion frees a place
        accepted = next(r for r in burst if r.up_f_seid is not None)
        assert accepted.up_f_seid is not None
        deleted = await cp.request(pfcp.SessionDeletionRequest(seid=accepted.up_f_seid.seid))
        assert cause_of(deleted) == Cause.REQUEST_ACCEPTED
        assert cause_of(await cp.establish(100)) == Cause.REQUEST_ACCEPTED
        assert cause_of(await cp.establish(101)) == Cause.NO_RESOURCES_AVAILABLE

    run_associated(scenario, config(capacity={"max_sessions": 3}))


def test_driver_failure_gets_77_and_changes_nothing() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        from user_plane.driver import DriverError

        driver.fail_next_install = DriverError("out of table space")
        response = await cp.establish(1)
        assert cause_of(response) == Cause.SYSTEM_FAILURE
        assert driver.installed() == {} and agent.sessions == {}
        assert (teids_in_use(agent), seids_in_use(agent)) == (0, 0)
        assert cause_of(await cp.establish(2)) == Cause.REQUEST_ACCEPTED  # and the agent goes on

    run_associated(scenario)


def test_a_rule_the_driver_cannot_apply_gets_73_with_its_failed_rule_id() -> None:
    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        from user_plane.driver import DriverError

        failed = pfcp.FailedRuleID(pfcp.RuleIDType.FAR, 2)
        driver.fail_next_install = DriverError("FAR 2: DUPL is not supported", failed)
        response = await cp.establish(1)
        # §7.5.3.1, Table 8.2.1-1: 73 Rule creation/modification Failure names the rule (§8.2.80)
        assert cause_of(response) == Cause.RULE_CREATION_MODIFICATION_FAILURE
        assert response.failed_rule_id == failed and response.up_f_seid is None
        assert driver.installed() == {} and agent.sessions == {}
        assert (teids_in_use(agent), seids_in_use(agent)) == (0, 0)

        ok = await cp.establish(2)
        assert ok.up_f_seid is not None
        driver.fail_next_install = DriverError("PDR 2: no", pfcp.FailedRuleID(pfcp.RuleIDType.PDR, 2))
        modified = await cp.request(
            pfcp.SessionModificationRequest(
                seid=ok.up_f_seid.seid,
                update_pdr=(pfcp.UpdatePDR(pdr_id=pfcp.PDRID(2), precedence=pfcp.Precedence(100)),),
            )
        )
        assert isinstance(modified, pfcp.SessionModificationResponse)
        assert cause_of(modified) == Cause.RULE_CREATION_MODIFICATION_FAILURE
        assert modified.failed_rule_id == pfcp.FailedRuleID(pfcp.RuleIDType.PDR, 2)
        assert agent.sessions[ok.up_f_seid.seid].pdrs[2].precedence == 200  # the old state stays

    run_associated(scenario)


def test_a_teid_owned_by_another_session_gets_73_with_the_pdr_id() -> None:
    def with_teid(pdr_id: int) -> pfcp.CreatePDR:  # a CP-chosen F-TEID (no CH)
        pdr = uplink_pdr(pdr_id)
        return replace(pdr, pdi=replace(pdr.pdi, local_f_teid=pfcp.FTEID(0x3000_0003, ipv4=N3)))

    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        assert cause_of(await cp.establish(1, pdrs=(with_teid(1), downlink_pdr()))) == Cause.REQUEST_ACCEPTED
        first = dict(driver.installed())
        response = await cp.establish(2, pdrs=(downlink_pdr(), with_teid(3)))
        assert cause_of(response) == Cause.RULE_CREATION_MODIFICATION_FAILURE
        assert response.failed_rule_id == pfcp.FailedRuleID(pfcp.RuleIDType.PDR, 3)
        assert driver.installed() == first and len(agent.sessions) == 1 and seids_in_use(agent) == 1

    run_associated(scenario)


def test_a_handler_exception_gets_77_and_the_agent_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)

    class Broken(FakeDriver):
        broken = True

        def install(self, state: Any, end_marker_fars: Any = ()) -> None:
            if self.broken:
                self.broken = False
                raise RuntimeError("a bug in a driver")
            super().install(state, end_marker_fars)

    async def scenario(agent: UpfAgent, cp: Cp, driver: FakeDriver) -> None:
        assert cause_of(await cp.establish(1)) == Cause.SYSTEM_FAILURE
        assert (teids_in_use(agent), seids_in_use(agent)) == (0, 0)  # nothing leaked
        assert cause_of(await cp.establish(2)) == Cause.REQUEST_ACCEPTED
        assert len(driver.installed()) == 1

    run_associated(scenario, driver=Broken())
    assert "a bug in a driver" in caplog.text


def test_the_causes_the_agent_answers_have_the_spec_numbers() -> None:
    # TS 29.244 Table 8.2.1-1: the issue text says 73 for overload; the spec's
    # "No resources available" is 75, and 73 is "Rule creation/modification Failure".
    answered = (
        Cause.REQUEST_REJECTED,
        Cause.SESSION_CONTEXT_NOT_FOUND,
        Cause.MANDATORY_IE_MISSING,
        Cause.NO_ESTABLISHED_PFCP_ASSOCIATION,
        Cause.RULE_CREATION_MODIFICATION_FAILURE,
        Cause.NO_RESOURCES_AVAILABLE,
        Cause.SYSTEM_FAILURE,
    )
    assert [int(c) for c in answered] == [64, 65, 66, 72, 73, 75, 77]
