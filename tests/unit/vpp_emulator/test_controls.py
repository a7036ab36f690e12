"""The emulator's test controls: fail(), restart(), calls, count_traffic(), state snapshots."""

from __future__ import annotations

from typing import Any

import pytest
from vpp_papi import VPPApiClient  # type: ignore[import-untyped]

from tests.unit.vpp_emulator.conftest import ClientFactory, tunnel_args
from tests.vpp_emulator import VppEmulator


def test_fail_hits_the_nth_call_only_and_changes_nothing(vpp_emulator: VppEmulator, client: Any) -> None:
    vpp_emulator.fail("gtpu_add_del_tunnel_v2", retval=-81, nth=2)
    assert client.api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=1)).retval == 0
    before = vpp_emulator.state
    assert client.api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=2)).retval == -81
    assert vpp_emulator.state == before
    assert client.api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=2)).retval == 0
    assert len(vpp_emulator.state.gtpu_tunnels) == 2


def test_fail_refuses_dumps_and_unknown_messages(vpp_emulator: VppEmulator) -> None:
    with pytest.raises(ValueError):
        vpp_emulator.fail("sw_interface_dump")
    with pytest.raises(ValueError):
        vpp_emulator.fail("no_such_message")
    with pytest.raises(ValueError):
        vpp_emulator.fail("control_ping", retval=0)


def test_calls_record_every_request_with_its_fields(vpp_emulator: VppEmulator, client: Any) -> None:
    vpp_emulator.reset_calls()
    client.api.gtpu_add_del_tunnel_v2(**tunnel_args())
    client.api.sw_interface_dump()
    assert [name for name, _ in vpp_emulator.calls] == ["gtpu_add_del_tunnel_v2", "sw_interface_dump", "control_ping"]
    fields = vpp_emulator.calls[0][1]
    assert (fields["teid"], fields["qfi"], str(fields["dst_address"])) == (0x1001, 9, "10.0.3.3")


def test_restart_closes_connections_and_boots_fresh(
    vpp_emulator: VppEmulator, client: Any, connect: ClientFactory
) -> None:
    client.api.ip_table_add_del(is_add=True, table={"table_id": 10})
    index = client.api.gtpu_add_del_tunnel_v2(**tunnel_args()).sw_if_index
    client.api.sw_interface_set_flags(sw_if_index=1, flags=1)
    vpp_emulator.restart()
    with pytest.raises(IOError):
        client.api.control_ping()
    state = vpp_emulator.state
    assert (state.gtpu_tunnels, index in state.interfaces, state.interfaces[1].admin_up) == ({}, False, False)
    assert set(state.ip_tables) == {(False, 0), (True, 0)}
    assert [i.name for i in state.interfaces.values()] == ["local0", "n3-eth", "n6-eth"]
    again = connect("after-restart")
    assert again.transport.socket_index == 0x80000001
    assert again.api.gtpu_add_del_tunnel_v2(**tunnel_args()).retval == 0
    assert vpp_emulator.restarts == 1


def test_count_traffic_only_on_tunnels(vpp_emulator: VppEmulator, client: Any) -> None:
    index = client.api.gtpu_add_del_tunnel_v2(**tunnel_args()).sw_if_index
    totals = vpp_emulator.count_traffic(index, rx_packets=1, rx_bytes=84)
    totals = vpp_emulator.count_traffic(index, rx_packets=1, rx_bytes=84, tx_packets=1, tx_bytes=120)
    assert (totals.packets_rx, totals.bytes_rx, totals.packets_tx, totals.bytes_tx) == (2, 168, 1, 120)
    (details,) = client.api.gtpu_tunnel_v2_dump(sw_if_index=index)
    assert details.counters.bytes_rx == 168
    with pytest.raises(KeyError):
        vpp_emulator.count_traffic(1, rx_packets=1)
    with pytest.raises(ValueError):
        vpp_emulator.count_traffic(index, rx_packets=-1)


def test_state_is_a_snapshot(vpp_emulator: VppEmulator, client: Any) -> None:
    before = vpp_emulator.state
    client.api.ip_table_add_del(is_add=True, table={"table_id": 3})
    assert (False, 3) not in before.ip_tables
    assert (False, 3) in vpp_emulator.state.ip_tables
    with pytest.raises(TypeError):
        before.ip_tables[(False, 4)] = "x"  # type: ignore[index]


def test_concurrent_clients_get_distinct_tunnels(vpp_emulator: VppEmulator, connect: ClientFactory) -> None:
    import threading

    clients = [connect(f"worker-{n}") for n in range(2)]
    replies: list[list[Any]] = [[], []]

    def work(n: int) -> None:
        for teid in range(20):
            args = tunnel_args(teid=teid, dst_address=f"10.0.3.{10 + n}")
            replies[n].append(clients[n].api.gtpu_add_del_tunnel_v2(**args))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    indexes = [r.sw_if_index for rs in replies for r in rs]
    assert all(r.retval == 0 for rs in replies for r in rs)
    assert len(set(indexes)) == 40
    state = vpp_emulator.state
    assert set(state.gtpu_tunnels) == set(indexes)
    assert {state.interfaces[i].name for i in indexes} == {f"gtpu_tunnel{n}" for n in range(40)}


def test_schema_directory_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from tests.vpp_emulator import api_dir_for_tests, api_dir_skip_reason

    monkeypatch.setenv("EDGECUPS_VPP_API_DIR", str(tmp_path))
    assert api_dir_for_tests() is None
    assert str(tmp_path) in api_dir_skip_reason()
    with pytest.raises(FileNotFoundError, match="no VPP API schema"):
        VppEmulator(tmp_path / "api.sock")


def test_restart_on_a_call_loses_it_with_everything_else(
    vpp_emulator: VppEmulator, client: Any, connect: ClientFactory
) -> None:
    client.api.ip_table_add_del(is_add=True, table={"table_id": 10})
    vpp_emulator.restart_on("gtpu_add_del_tunnel_v2", nth=2)
    assert client.api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=1)).retval == 0
    with pytest.raises(IOError):
        client.api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=2))
    assert vpp_emulator.restarts == 1
    assert (vpp_emulator.state.gtpu_tunnels, set(vpp_emulator.state.ip_tables)) == ({}, {(False, 0), (True, 0)})
    again = connect("after-crash")
    assert again.api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=2)).retval == 0
    with pytest.raises(ValueError):
        vpp_emulator.restart_on("sw_interface_details")


def test_a_crashing_handler_answers_minus_1_and_is_kept_in_errors(
    monkeypatch: pytest.MonkeyPatch, vpp_api_dir: Any
) -> None:
    import tempfile
    from pathlib import Path

    from tests.vpp_emulator.handlers import HANDLERS

    def boom(model: Any, request: dict[str, Any]) -> Any:
        raise RuntimeError("emulator bug")

    monkeypatch.setitem(HANDLERS, "ip_table_add_del", boom)
    monkeypatch.setitem(HANDLERS, "ip_table_dump", boom)
    with tempfile.TemporaryDirectory(prefix="vppemu-") as directory:
        with VppEmulator(Path(directory) / "api.sock", vpp_api_dir) as emulator:
            client = VPPApiClient(apidir=str(vpp_api_dir), server_address=str(emulator.socket_path))
            client.connect("t")
            try:
                assert client.api.ip_table_add_del(is_add=True, table={"table_id": 1}).retval == -1
                assert client.api.ip_table_dump() == []
                assert client.api.control_ping().retval == 0
            finally:
                client.disconnect()
            assert len(emulator.errors) == 2
            assert "emulator bug" in emulator.errors[0]


def test_call_counts_without_recording_calls(vpp_api_dir: Any) -> None:
    from tests.harness.vpp import running_emulator

    with running_emulator(api_dir=vpp_api_dir, record_calls=False) as emulator:
        client = VPPApiClient(apidir=str(vpp_api_dir), server_address=str(emulator.socket_path))
        client.connect("bench")
        try:
            for teid in (1, 2, 3):
                client.api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=teid))
        finally:
            client.disconnect()
        assert emulator.calls == []
        counts = emulator.call_counts
        assert (counts["gtpu_add_del_tunnel_v2"], counts["sockclnt_create"], counts["sockclnt_delete"]) == (3, 1, 1)
        emulator.reset_calls()
        assert emulator.call_counts == {}
