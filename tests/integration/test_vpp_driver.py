"""The vpp driver against the VPP API emulator (tests/vpp_emulator): real vpp_papi, real socket
transport, VPP 26.06's schema; the emulator's state is compared with what each session demands.

Expectations are written out per test (tunnel, route, policer, ACL records as VPP holds them),
not derived from the driver's own planner.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

import pfcp
from tests.unit.user_plane.test_agent import config as agent_config
from tests.unit.user_plane.vpp.helpers import SEID, downlink_far, established, modified, qer
from tests.vpp_emulator import State, VppEmulator
from user_plane.config import UpfConfig
from user_plane.driver import DriverError, DriverEvent, SessionUsage
from user_plane.vpp.driver import VppDriver

pytest_plugins = ["tests.harness.vpp"]  # vpp_emulator, vpp_api_dir

N3 = IPv4Address("198.18.1.1")
GNB = IPv4Address("198.18.1.2")
UE = IPv4Network("198.19.0.1/32")
TABLE = 100
T = pfcp.UsageReportTriggerFlags


def config(emulator: VppEmulator, api_dir: Path, *, ims: bool = False, **vpp: Any) -> UpfConfig:
    """Network Instance internet (VRF 100) on n6-eth; with ``ims``, also ims (VRF 200) on n6-ims."""
    section: dict[str, Any] = {
        "api_socket": str(emulator.socket_path),
        "api_dir": str(api_dir),
        "poll_interval": 0.05,
        "liveness_interval": 0.05,
        "reconnect_max": 0.2,
        "timeout": 2,
        "n3": {"interface": "n3-eth", "address": "198.18.1.1/24"},
        "n6": {"internet": {"interface": "n6-eth", "address": "198.18.2.1/24", "table_id": TABLE}},
    }
    section.update(vpp)
    n6: dict[str, Any] = {"internet": {"interface": "n6-test", "ue_pool": "198.19.0.0/16", "gateway": "198.18.2.2"}}
    if ims:
        n6["ims"] = {"interface": "n6-ims", "ue_pool": "198.20.0.0/16"}
        section["n6"] = {**section["n6"], "ims": {"interface": "n6-ims", "address": "198.18.3.1/24", "table_id": 200}}
    return agent_config(driver="vpp", n6=n6, vpp=section)


@asynccontextmanager
async def started(
    emulator: VppEmulator, api_dir: Path, **vpp: Any
) -> AsyncIterator[tuple[VppDriver, list[DriverEvent]]]:
    driver = VppDriver.from_config(config(emulator, api_dir, **vpp))
    events: list[DriverEvent] = []
    driver.set_event_handler(events.append)
    await driver.start()
    try:
        yield driver, events
    finally:
        await driver.stop()


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 20))


async def until(condition: Callable[[], bool]) -> None:
    """Wait for what the driver does on its own timers (poll, liveness, reconnect); ``run``'s
    deadline bounds the wait."""
    while not condition():
        await asyncio.sleep(0.02)


# -- the emulator's state, as comparable records ------------------------------------------------


def session_records(state: State) -> set[tuple[Any, ...]]:
    """Every per-session object VPP holds: tunnels (with their interface's VRF), UE routes,
    policers and their bindings, ACLs (but the node's deny-all) and their bindings."""
    tunnels = {i: (str(t.dst), t.teid) for i, t in state.gtpu_tunnels.items()}
    acls = {i: a.tag for i, a in state.acls.items()}
    records: set[tuple[Any, ...]] = set()
    for index, t in state.gtpu_tunnels.items():
        itf = state.interfaces[index]
        fields = (str(t.src), str(t.dst), t.teid, t.tteid, t.encap_vrf_id, t.decap_next_index, t.qfi)
        records.add(("tunnel", *fields, "vrf", itf.ip4_table, itf.ip4_enabled))
    for (table, prefix), paths in state.routes.items():
        if prefix.prefixlen == 0 or table != TABLE or prefix.version != 4 or prefix.prefixlen != 32:
            continue  # the node's default route, connected and local entries
        [path] = paths
        records.add(("route", table, str(prefix), "drop" if path.type == 2 else tunnels[path.sw_if_index]))
    for policer in state.policers.values():
        records.add(("policer", policer.name, policer.infos.cir, policer.infos.cb))
    names = {i: p.name for i, p in state.policers.items()}
    for (index, direction), policer_index in state.policer_bindings.items():
        records.add(("policer-on", tunnels[index], direction, names[policer_index]))
    for acl in state.acls.values():
        if acl.tag != "edgecups:deny-all":
            rules = tuple((r.is_permit, str(r.src_prefix), str(r.dst_prefix), r.proto) for r in acl.rules)
            records.add(("acl", acl.tag, rules))
    for index, binding in state.acl_interfaces.items():
        if binding.input or binding.output:
            records.add(
                (
                    "acl-on",
                    tunnels[index],
                    tuple(acls[i] for i in binding.input),
                    tuple(acls[i] for i in binding.output),
                )
            )
    return records


def tunnel(dst: IPv4Address = GNB, teid: int = 0x1001, tteid: int = 0x5000, qfi: int = 0) -> tuple[Any, ...]:
    return ("tunnel", str(N3), str(dst), teid, tteid, 0, 2, qfi, "vrf", TABLE, True)


def route(via: tuple[str, int] | str = (str(GNB), 0x1001)) -> tuple[Any, ...]:
    return ("route", TABLE, str(UE), via)


BASIC = {tunnel(), route()}


def tunnel_index(state: State, teid: int = 0x1001) -> int:
    [index] = [i for i, t in state.gtpu_tunnels.items() if t.teid == teid]
    return index


# -- node setup -----------------------------------------------------------------------------------


def test_start_sets_the_node_up_and_stop_takes_it_back(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> None:
    boot = vpp_emulator.state

    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir, gtpu_forward="198.18.1.10"):
            state = vpp_emulator.state
            assert {(False, TABLE), (True, TABLE)} <= set(state.ip_tables)
            n3, n6 = state.interface_by_name("n3-eth"), state.interface_by_name("n6-eth")
            assert n3 is not None and n6 is not None
            assert (n3.admin_up, n3.ip4_table, [str(a) for a in n3.addresses]) == (True, 0, ["198.18.1.1/24"])
            assert (n6.admin_up, n6.ip4_table, n6.ip6_table) == (True, TABLE, TABLE)
            [default] = state.routes[(TABLE, IPv4Network("0.0.0.0/0"))]
            assert (default.sw_if_index, str(default.next_hop)) == (n6.sw_if_index, "198.18.2.2")
            [forward] = state.gtpu_forwards.values()
            assert (str(forward.dst), forward.forwarding_type) == ("198.18.1.10", 4)
            [deny] = state.acls.values()
            assert deny.tag == "edgecups:deny-all" and {r.is_permit for r in deny.rules} == {0}
            assert session_records(state) == set()

    run(main)
    after = vpp_emulator.state
    assert (after.ip_tables, after.routes, after.acls, after.gtpu_forwards) == (
        boot.ip_tables,
        boot.routes,
        boot.acls,
        boot.gtpu_forwards,
    )
    assert after.interface_by_name("n6-eth") == boot.interface_by_name("n6-eth")


def test_a_missing_interface_stops_the_start_and_leaves_vpp_as_it_was(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    boot = vpp_emulator.state

    async def main() -> None:
        driver = VppDriver.from_config(
            config(vpp_emulator, vpp_api_dir, n3={"interface": "eth9", "address": "198.18.1.1/24"})
        )
        with pytest.raises(DriverError, match="'eth9' not in VPP"):
            await driver.start()

    run(main)
    assert vpp_emulator.state == boot


def test_a_schema_with_a_changed_crc_makes_the_driver_refuse_to_start(
    vpp_emulator: VppEmulator, vpp_api_dir: Path, tmp_path: Path
) -> None:
    schema = tmp_path / "api"
    shutil.copytree(vpp_api_dir, schema)
    gtpu = schema / "gtpu.api.json"
    data = json.loads(gtpu.read_text())
    for message in data["messages"]:
        if message[0] == "gtpu_add_del_tunnel_v2":
            message[-1]["crc"] = "0xdeadbeef"
    gtpu.write_text(json.dumps(data))
    boot = vpp_emulator.state

    async def main() -> None:
        driver = VppDriver.from_config(config(vpp_emulator, schema))
        with pytest.raises(DriverError) as caught:
            await driver.start()
        text = str(caught.value)
        assert "gtpu_add_del_tunnel_v2: the API schema (api_dir) has CRC 0xdeadbeef" in text
        assert "gtpu_add_del_tunnel_v2: VPP has CRC 0xa0c30713, the API schema (api_dir) 0xdeadbeef" in text
        assert driver.installed() == {}

    run(main)
    assert vpp_emulator.state == boot  # refused before any call


# -- sessions ---------------------------------------------------------------------------------------


def test_establishment_modification_and_deletion_leave_exactly_the_sessions_objects(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir) as (driver, _):
            state = established(create_qer=(qer(ul=10_000, dl=50_000),))
            driver.install(state)
            policers = {
                ("policer", f"edgecups:{SEID:x}:1:ul", 10_000, 62_500),
                ("policer", f"edgecups:{SEID:x}:1:dl", 50_000, 312_500),
                ("policer-on", (str(GNB), 0x1001), "input", f"edgecups:{SEID:x}:1:ul"),
                ("policer-on", (str(GNB), 0x1001), "output", f"edgecups:{SEID:x}:1:dl"),
            }
            assert session_records(vpp_emulator.state) == BASIC | policers
            assert driver.installed() == {SEID: state}

            # QoS change: the policer is updated in place, nothing else is touched
            vpp_emulator.reset_calls()
            index_before = set(vpp_emulator.state.policers)
            faster = pfcp.UpdateQER(qer_id=pfcp.QERID(1), mbr=pfcp.MBR(ul=20_000, dl=50_000))
            state = modified(state, update_qer=(faster,))
            driver.install(state)
            assert [name for name, _ in vpp_emulator.calls if name != "control_ping"] == ["policer_update"]
            assert set(vpp_emulator.state.policers) == index_before
            ul_policer = ("policer", f"edgecups:{SEID:x}:1:ul", 20_000, 125_000)
            assert ul_policer in session_records(vpp_emulator.state)

            # handover: a new gNB is a new tunnel; the policers follow it, the old tunnel goes
            target = IPv4Address("198.18.1.9")
            state = modified(state, update_far=(downlink_far(gnb=target, teid=0x6000),))
            driver.install(state)
            moved = {
                tunnel(target, tteid=0x6000),
                route((str(target), 0x1001)),
                ul_policer,
                ("policer", f"edgecups:{SEID:x}:1:dl", 50_000, 312_500),
                ("policer-on", (str(target), 0x1001), "input", f"edgecups:{SEID:x}:1:ul"),
                ("policer-on", (str(target), 0x1001), "output", f"edgecups:{SEID:x}:1:dl"),
            }
            assert session_records(vpp_emulator.state) == moved

            driver.remove(SEID)
            assert session_records(vpp_emulator.state) == set()
            assert driver.installed() == {}

    run(main)


def test_sdf_filters_and_closed_gates_are_acls_and_drop_routes(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> None:
    from tests.unit.user_plane.test_agent import downlink_pdr, uplink_pdr

    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir) as (driver, _):
            pdrs = (
                uplink_pdr(1, precedence=200),
                downlink_pdr(2),
                uplink_pdr(3, precedence=100, sdf="permit out 6 from 198.18.2.2 to assigned"),
            )
            driver.install(established(pdrs=pdrs))
            tag = f"edgecups:{SEID:x}:ul:1001"
            rules = ((1, "198.19.0.1/32", "198.18.2.2/32", 6), (1, "0.0.0.0/0", "0.0.0.0/0", 0))
            assert session_records(vpp_emulator.state) == BASIC | {
                ("acl", tag, rules),
                ("acl-on", (str(GNB), 0x1001), (tag,), ()),
            }
            closed = pfcp.GateStatus(ul=pfcp.Gate.CLOSED, dl=pfcp.Gate.CLOSED)
            shut = established(create_qer=(pfcp.CreateQER(qer_id=pfcp.QERID(1), gate_status=closed),))
            driver.install(shut)
            assert session_records(vpp_emulator.state) == {
                tunnel(),
                route("drop"),
                ("acl-on", (str(GNB), 0x1001), ("edgecups:deny-all",), ()),
            }

    run(main)


def test_usage_is_read_from_the_tunnel_counters_and_the_final_counts_come_with_the_deletion(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir, poll_interval=30) as (driver, events):
            driver.install(established())  # URR 1: volume threshold 1 000 000 octets
            index = tunnel_index(vpp_emulator.state)
            vpp_emulator.count_traffic(index, rx_packets=10, rx_bytes=5000, tx_packets=4, tx_bytes=4 * (1000 + 36))
            [report] = driver.query(SEID, [1])
            assert (report.ul_bytes, report.ul_packets, report.dl_bytes, report.dl_packets) == (5000, 10, 4000, 4)
            assert report.trigger == T.IMMER
            totals = driver.all_counters()  # what the agent's metrics and telemetry read
            assert (totals["n3.rx"], totals["ul_bytes"], totals["n3.tx"], totals["dl_bytes"]) == (10, 5000, 4, 4000)
            assert (totals["n6.internet.tx"], totals["n6.internet.dl_bytes"]) == (10, 4000)
            # after the tunnel is gone, its delete reply carries the last counts
            vpp_emulator.count_traffic(index, rx_packets=1, rx_bytes=100, tx_packets=1, tx_bytes=536)
            [final] = driver.remove(SEID)
            assert (final.ul_bytes, final.dl_bytes, final.trigger) == (100, 500, T.TERMR)
            assert session_records(vpp_emulator.state) == set() and events == []

    run(main)


def test_a_volume_threshold_reached_in_vpp_is_reported_and_an_exhausted_quota_drops(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    quota = pfcp.CreateURR(
        urr_id=pfcp.URRID(1),
        measurement_method=pfcp.MeasurementMethod(pfcp.MeasurementMethodFlags.VOLUM),
        reporting_triggers=pfcp.ReportingTriggers(
            pfcp.ReportingTriggersFlags.VOLTH | pfcp.ReportingTriggersFlags.VOLQU
        ),
        volume_threshold=pfcp.VolumeThreshold(total=1000),
        volume_quota=pfcp.VolumeQuota(total=3000),
    )

    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir) as (driver, events):
            driver.install(established(create_urr=(quota,)))
            index = tunnel_index(vpp_emulator.state)
            vpp_emulator.count_traffic(index, rx_packets=2, rx_bytes=1200)
            await until(lambda: bool(events))  # the periodic poll (poll_interval 0.05 s)
            [usage] = events
            assert isinstance(usage, SessionUsage) and usage.up_seid == SEID
            [report] = usage.reports
            assert (report.trigger, report.ul_bytes, report.ul_packets) == (T.VOLTH, 1200, 2)
            assert session_records(vpp_emulator.state) == BASIC  # still forwarding
            vpp_emulator.count_traffic(index, rx_packets=4, rx_bytes=2000)
            await until(lambda: len(events) >= 2)
            assert isinstance(events[1], SessionUsage) and events[1].reports[0].trigger & T.VOLQU
            # quota exhausted (§5.2.2.2): VPP now drops both directions
            assert session_records(vpp_emulator.state) == {
                tunnel(),
                route("drop"),
                ("acl-on", (str(GNB), 0x1001), ("edgecups:deny-all",), ()),
            }

    run(main)


@pytest.mark.parametrize("failing", ["policer_input_v2", "ip_route_add_del", "sw_interface_ip4_enable_disable"])
def test_a_call_failing_mid_way_undoes_the_request_and_names_the_rule(
    vpp_emulator: VppEmulator, vpp_api_dir: Path, failing: str
) -> None:
    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir) as (driver, _):
            before = vpp_emulator.state
            vpp_emulator.fail(failing, -7)
            with pytest.raises(DriverError) as caught:
                driver.install(established(create_qer=(qer(ul=10_000, dl=50_000),)))
            expected = {
                "policer_input_v2": pfcp.FailedRuleID(pfcp.RuleIDType.QER, 1),
                "ip_route_add_del": pfcp.FailedRuleID(pfcp.RuleIDType.PDR, 2),
                "sw_interface_ip4_enable_disable": pfcp.FailedRuleID(pfcp.RuleIDType.PDR, 1),
            }[failing]
            assert caught.value.failed_rule == expected and "retval -7" in str(caught.value)
            assert vpp_emulator.state == before and driver.installed() == {}

            # the same mid-way failure in a handover keeps the old session in force
            state = established()
            driver.install(state)
            before = vpp_emulator.state
            vpp_emulator.fail("ip_route_add_del", -7)
            with pytest.raises(DriverError):
                driver.install(modified(state, update_far=(downlink_far(gnb=IPv4Address("198.18.1.9")),)))
            assert session_records(vpp_emulator.state) == BASIC == session_records(before)
            assert driver.installed() == {SEID: state}

    run(main)


def test_a_vpp_restart_is_noticed_and_everything_is_installed_again(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir) as (driver, _):
            state = established(create_qer=(qer(ul=10_000, dl=50_000),))
            driver.install(state)
            wanted = session_records(vpp_emulator.state)
            node = vpp_emulator.state.routes[(TABLE, IPv4Network("0.0.0.0/0"))]
            vpp_emulator.restart()
            await until(lambda: driver.reconnects > 0)
            assert vpp_emulator.restarts == 1
            assert session_records(vpp_emulator.state) == wanted
            assert vpp_emulator.state.routes[(TABLE, IPv4Network("0.0.0.0/0"))] == node
            assert driver.installed() == {SEID: state} and driver.ready
            driver.remove(SEID)  # and the re-installed session is the driver's as before
            assert session_records(vpp_emulator.state) == set()

    run(main)


def test_a_lost_connection_to_a_vpp_that_kept_its_state_changes_nothing(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir) as (driver, _):
            state = established(create_qer=(qer(ul=10_000, dl=50_000),))
            driver.install(state)
            before = vpp_emulator.state
            vpp_emulator.stop()  # the API socket goes away; VPP (the model) keeps everything
            await until(lambda: not driver.ready)
            with pytest.raises(DriverError, match="not connected"):
                driver.install(modified(state, update_far=(downlink_far(teid=0x5001),)))
            vpp_emulator.reset_calls()
            vpp_emulator.start()
            await until(lambda: driver.ready)
            assert vpp_emulator.state == before  # nothing torn down, nothing added twice
            changes = [n for n, _ in vpp_emulator.calls if n not in ("sockclnt_create", "control_ping", "acl_dump")]
            assert changes in ([], ["gtpu_get_transfer_counts"])
            assert driver.installed() == {SEID: state} and driver.reconnects == 1
            driver.install(modified(state, update_far=(downlink_far(teid=0x5001),)))  # the indexes still hold
            assert tunnel(tteid=0x5001) in session_records(vpp_emulator.state)

    run(main)


def test_uplink_filters_towards_another_instance_are_abf_policies(vpp_api_dir: Path) -> None:
    from tests.harness.vpp import running_emulator
    from tests.unit.user_plane.test_agent import downlink_pdr, far, uplink_pdr

    ims = pfcp.CreateFAR(
        far_id=pfcp.FARID(3),
        apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
        forwarding_parameters=pfcp.ForwardingParameters(
            destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.CORE),
            network_instance=pfcp.NetworkInstance("ims"),
        ),
    )
    to_ims = replace(
        uplink_pdr(3, precedence=100, sdf="permit out 17 from 198.18.3.3 to assigned"), far_id=pfcp.FARID(3)
    )
    state = established(
        pdrs=(uplink_pdr(1), downlink_pdr(2), to_ims), create_far=(far(1, core=True), far(2, core=False), ims)
    )

    with running_emulator(interfaces=("n3-eth", "n6-eth", "n6-ims"), api_dir=vpp_api_dir) as emulator:

        async def main() -> None:
            async with started(emulator, vpp_api_dir, ims=True) as (driver, _):
                emulator.fail("abf_itf_attach_add_del", -7)
                before = emulator.state
                with pytest.raises(DriverError) as caught:
                    driver.install(state)
                assert caught.value.failed_rule == pfcp.FailedRuleID(pfcp.RuleIDType.PDR, 3)
                assert emulator.state == before  # the policy, its ACL, the tunnel: all undone

                driver.install(state)
                vpp = emulator.state
                [(policy_id, policy)] = vpp.abf_policies.items()
                assert vpp.acls[policy.acl_index].tag == f"edgecups:{SEID:x}:abf:1001:3"
                [path] = policy.paths
                assert (path.sw_if_index, path.table_id) == (0xFFFFFFFF, 200)  # looked up in the ims VRF
                tunnel_if = tunnel_index(vpp)
                assert vpp.abf_attachments == {(policy_id, tunnel_if, False): 0}  # first by precedence
                assert vpp.interfaces[tunnel_if].ip4_table == TABLE  # the rest goes to the internet
                driver.remove(SEID)
                vpp = emulator.state
                assert (vpp.abf_policies, vpp.abf_attachments, session_records(vpp)) == ({}, {}, set())

        run(main)


def test_vpp_dying_in_the_middle_of_a_request_fails_it_and_the_rest_comes_back(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    from tests.unit.user_plane.test_agent import downlink_pdr, uplink_pdr

    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir) as (driver, _):
            first = established()
            driver.install(first)
            wanted = session_records(vpp_emulator.state)
            other = pfcp.UEIPAddress(ipv4=IPv4Address("198.19.0.9"))
            up, down = uplink_pdr(1), downlink_pdr(2)
            second = established(
                pdrs=(
                    replace(up, pdi=replace(up.pdi, local_f_teid=pfcp.FTEID(0x2222, ipv4=N3), ue_ip_address=(other,))),
                    replace(down, pdi=replace(down.pdi, ue_ip_address=(replace(other, is_destination=True),))),
                )
            )
            second = replace(second, up_seid=SEID + 1)
            vpp_emulator.restart_on("ip_route_add_del")  # no reply: VPP is gone with everything
            with pytest.raises(DriverError) as caught:
                driver.install(second)
            assert caught.value.failed_rule is None  # not a rule's fault: 77
            await until(lambda: driver.reconnects > 0)
            assert session_records(vpp_emulator.state) == wanted  # the first session only, re-installed
            assert driver.installed() == {SEID: first}

    run(main)


def test_periodic_reports_carry_the_usage_vpp_counted_in_each_period(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    periodic = pfcp.CreateURR(
        urr_id=pfcp.URRID(1),
        measurement_method=pfcp.MeasurementMethod(pfcp.MeasurementMethodFlags.VOLUM),
        reporting_triggers=pfcp.ReportingTriggers(pfcp.ReportingTriggersFlags.PERIO),
        measurement_period=pfcp.MeasurementPeriod(60),
    )
    now = [1_800_000_000.0]

    async def main() -> None:
        cfg = config(vpp_emulator, vpp_api_dir, poll_interval=3600)  # this test polls itself
        assert cfg.vpp is not None
        driver = VppDriver(cfg.vpp, cfg.n3, cfg.n6, clock=lambda: now[0])
        events: list[DriverEvent] = []
        driver.set_event_handler(events.append)
        await driver.start()
        try:
            driver.install(established(create_urr=(periodic,)))
            index = tunnel_index(vpp_emulator.state)
            vpp_emulator.count_traffic(index, rx_packets=3, rx_bytes=300, tx_packets=2, tx_bytes=2 * (500 + 36))
            now[0] += 30
            driver.poll()
            assert events == []  # half a period
            now[0] += 30
            driver.poll()
            [first] = events
            assert isinstance(first, SessionUsage)
            [report] = first.reports
            assert (report.trigger, report.ul_bytes, report.dl_bytes, report.ul_packets) == (T.PERIO, 300, 1000, 3)
            assert report.end_time - report.start_time == 60
            vpp_emulator.count_traffic(index, rx_packets=1, rx_bytes=40)
            now[0] += 60
            driver.poll()
            assert isinstance(events[1], SessionUsage)
            assert (events[1].reports[0].ul_bytes, events[1].reports[0].dl_bytes) == (40, 0)
        finally:
            await driver.stop()

    run(main)


def test_memif_interfaces_are_created_configured_and_removed(vpp_emulator: VppEmulator, vpp_api_dir: Path) -> None:
    socket = "/run/vpp/memif-n6-internet.sock"
    memif = {"memif": {"id": 7, "socket": socket, "role": "slave", "mode": "ip"}, "address": "198.18.2.1/24"}
    boot = vpp_emulator.state

    async def main() -> None:
        n6 = {"internet": {**memif, "table_id": TABLE}}
        async with started(vpp_emulator, vpp_api_dir, n6=n6) as (driver, _):
            state = vpp_emulator.state
            [socket_id] = [i for i, f in state.memif_sockets.items() if f == socket]
            [interface] = state.memif_interfaces.values()
            assert (interface.id, interface.socket_id, interface.role, interface.mode) == (7, socket_id, 1, 1)
            itf = state.interfaces[interface.sw_if_index]
            assert (itf.kind, itf.admin_up, itf.ip4_table, [str(a) for a in itf.addresses]) == (
                "memif",
                True,
                TABLE,
                ["198.18.2.1/24"],
            )
            [default] = state.routes[(TABLE, IPv4Network("0.0.0.0/0"))]
            assert default.sw_if_index == interface.sw_if_index  # the gateway is behind the memif
            driver.install(established())
            assert session_records(vpp_emulator.state) == BASIC

    run(main)
    after = vpp_emulator.state
    assert (after.memif_sockets, after.memif_interfaces, after.interfaces) == (
        boot.memif_sockets,
        boot.memif_interfaces,
        boot.interfaces,
    )


def test_an_uplink_far_moved_to_another_instance_moves_the_tunnel_to_its_vrf(vpp_api_dir: Path) -> None:
    from tests.harness.vpp import running_emulator

    move = pfcp.UpdateFAR(
        far_id=pfcp.FARID(1),
        update_forwarding_parameters=pfcp.UpdateForwardingParameters(network_instance=pfcp.NetworkInstance("ims")),
    )
    with running_emulator(interfaces=("n3-eth", "n6-eth", "n6-ims"), api_dir=vpp_api_dir) as emulator:

        async def main() -> None:
            async with started(emulator, vpp_api_dir, ims=True) as (driver, _):
                state = established()
                driver.install(state)
                index = tunnel_index(emulator.state)
                emulator.reset_calls()
                driver.install(modified(state, update_far=(move,)))
                assert [n for n, _ in emulator.calls if n != "gtpu_get_transfer_counts"] == ["sw_interface_set_table"]
                vpp = emulator.state
                assert tunnel_index(vpp) == index and vpp.interfaces[index].ip4_table == 200  # same tunnel
                assert session_records(vpp) == {  # the UE route stays in the downlink PDR's instance
                    ("tunnel", str(N3), str(GNB), 0x1001, 0x5000, 0, 2, 0, "vrf", 200, True),
                    route(),
                }

        run(main)


def test_a_vpp_that_kept_part_of_its_state_is_swept_and_set_up_again(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir, gtpu_forward="198.18.1.10") as (driver, _):
            driver.install(established())
            wanted = vpp_emulator.state
            # someone else removes our deny-all ACL and adds a route of their own to our VRF
            other = VPPApiClient(apidir=[str(vpp_api_dir)], server_address=str(vpp_emulator.socket_path))
            other.connect("operator")
            try:
                [deny] = [i for i, a in vpp_emulator.state.acls.items() if a.tag == "edgecups:deny-all"]
                assert other.api.acl_del(acl_index=deny).retval == 0
                stale = {"table_id": TABLE, "prefix": IPv4Network("198.19.9.9/32"), "n_paths": 1}
                stale["paths"] = [{"sw_if_index": 0xFFFFFFFF, "type": 2, "label_stack": [{}] * 16}]
                assert other.api.ip_route_add_del(is_add=True, route=stale).retval == 0
            finally:
                other.disconnect()
            vpp_emulator.stop()  # the connection goes; VPP keeps (part of) its state
            await until(lambda: not driver.ready)
            vpp_emulator.start()
            await until(lambda: driver.ready)
            after = vpp_emulator.state
            assert (TABLE, IPv4Network("198.19.9.9/32")) not in after.routes  # swept at replace_end
            assert session_records(after) == session_records(wanted) == BASIC
            assert after.routes == wanted.routes
            assert [a.tag for a in after.acls.values()] == ["edgecups:deny-all"]
            assert len(after.gtpu_forwards) == 1
            n3 = after.interface_by_name("n3-eth")
            assert n3 is not None and [str(a) for a in n3.addresses] == ["198.18.1.1/24"]

    run(main)


def test_the_sweep_takes_our_memif_interfaces_back_before_making_them_again(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    from vpp_papi import VPPApiClient

    memif = {"memif": {"id": 3, "socket": "/run/vpp/memif-n6.sock"}, "address": "198.18.2.1/24", "table_id": TABLE}

    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir, n6={"internet": memif}) as (driver, _):
            driver.install(established())
            wanted = session_records(vpp_emulator.state)
            other = VPPApiClient(apidir=[str(vpp_api_dir)], server_address=str(vpp_emulator.socket_path))
            other.connect("operator")
            try:
                [deny] = [i for i, a in vpp_emulator.state.acls.items() if a.tag == "edgecups:deny-all"]
                assert other.api.acl_del(acl_index=deny).retval == 0
            finally:
                other.disconnect()
            vpp_emulator.stop()
            await until(lambda: not driver.ready)
            vpp_emulator.start()
            await until(lambda: driver.ready)
            after = vpp_emulator.state
            [interface] = after.memif_interfaces.values()  # one memif, made again
            assert interface.id == 3 and after.memif_sockets[interface.socket_id] == "/run/vpp/memif-n6.sock"
            assert len([f for f in after.memif_sockets.values() if f == "/run/vpp/memif-n6.sock"]) == 1
            assert after.interfaces[interface.sw_if_index].ip4_table == TABLE
            assert session_records(after) == wanted

    run(main)


def test_usage_before_a_change_of_urrs_is_counted_under_the_old_ones(
    vpp_emulator: VppEmulator, vpp_api_dir: Path
) -> None:
    from tests.unit.user_plane.test_agent import urr

    async def main() -> None:
        async with started(vpp_emulator, vpp_api_dir, poll_interval=3600) as (driver, _):
            state = established(create_urr=(urr(1), urr(2)))  # both PDRs count on URR 1
            driver.install(state)
            index = tunnel_index(vpp_emulator.state)
            vpp_emulator.count_traffic(index, rx_packets=1, rx_bytes=700)
            to_two = pfcp.UpdatePDR(pdr_id=pfcp.PDRID(1), urr_id=(pfcp.URRID(2),))
            state = modified(state, update_pdr=(to_two,))  # the uplink now counts on URR 2
            driver.install(state)
            vpp_emulator.count_traffic(index, rx_packets=1, rx_bytes=90)
            reports = {r.urr_id: r for r in driver.query(SEID)}
            assert (reports[1].ul_bytes, reports[2].ul_bytes) == (700, 90)

    run(main)
