"""gtpu.api through vpp_papi: tunnels, counters, tteid update, forwarding entries."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from tests.unit.vpp_emulator.conftest import NO_INDEX, tunnel_args
from tests.vpp_emulator import VppEmulator
from tests.vpp_emulator.snapshot import Counters, GtpuTunnel


def test_tunnel_create_makes_an_admin_up_gtpu_interface(vpp_emulator: VppEmulator, client: Any) -> None:
    reply = client.api.gtpu_add_del_tunnel_v2(**tunnel_args())
    assert reply.retval == 0
    index = reply.sw_if_index
    state = vpp_emulator.state
    assert state.gtpu_tunnels[index] == GtpuTunnel(
        index, IPv4Address("10.0.3.1"), IPv4Address("10.0.3.3"), 0x1001, 0x2002, 0, 2, True, 9, NO_INDEX
    )
    iface = state.interfaces[index]
    assert (iface.name, iface.kind, iface.admin_up) == ("gtpu_tunnel0", "gtpu", True)
    (details,) = client.api.gtpu_tunnel_v2_dump(sw_if_index=index)
    assert (details.teid, details.tteid, details.qfi, details.dst_address) == (
        0x1001,
        0x2002,
        9,
        IPv4Address("10.0.3.3"),
    )
    assert client.api.sw_interface_dump(sw_if_index=index)[0].type == 2  # P2P


def test_tunnel_key_is_gnb_address_and_teid(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    assert api.gtpu_add_del_tunnel_v2(**tunnel_args()).retval == 0
    before = vpp_emulator.state
    assert api.gtpu_add_del_tunnel_v2(**tunnel_args(tteid=7)).retval == -75  # TUNNEL_EXIST
    assert vpp_emulator.state == before
    assert api.gtpu_add_del_tunnel_v2(**tunnel_args(dst_address="10.0.3.4")).retval == 0
    assert api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=0x1002)).retval == 0
    assert len(vpp_emulator.state.gtpu_tunnels) == 3


def test_tunnel_errors(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    assert api.gtpu_add_del_tunnel_v2(**tunnel_args(encap_vrf_id=3)).retval == -3
    assert api.gtpu_add_del_tunnel_v2(**tunnel_args(dst_address="10.0.3.1")).retval == -82
    assert api.gtpu_add_del_tunnel_v2(**tunnel_args(is_add=False)).retval == -6
    assert vpp_emulator.state.gtpu_tunnels == {}
    assert len(vpp_emulator.state.interfaces) == 3


def test_delete_reports_final_counters_and_removes_the_interface(vpp_emulator: VppEmulator, client: Any) -> None:
    index = client.api.gtpu_add_del_tunnel_v2(**tunnel_args()).sw_if_index
    vpp_emulator.count_traffic(index, rx_packets=3, rx_bytes=300, tx_packets=2, tx_bytes=2 * (100 + 36))
    counts = client.api.gtpu_get_transfer_counts(sw_if_index_start=0, capacity=10)
    assert counts.count == 1 and counts.tunnels[0].sw_if_index == index
    assert counts.tunnels[0].counters.bytes_tx == 272
    reply = client.api.gtpu_add_del_tunnel_v2(**tunnel_args(is_add=False))
    assert (reply.retval, reply.sw_if_index) == (0, index)
    c = reply.counters
    assert Counters(c.packets_rx, c.packets_tx, c.bytes_rx, c.bytes_tx) == Counters(3, 2, 300, 272)
    assert index not in vpp_emulator.state.interfaces
    assert vpp_emulator.state.gtpu_tunnels == {}


def test_transfer_counts_pages_by_sw_if_index(vpp_emulator: VppEmulator, client: Any) -> None:
    indexes = [client.api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=t)).sw_if_index for t in (1, 2, 3)]
    first = client.api.gtpu_get_transfer_counts(sw_if_index_start=0, capacity=2)
    assert [t.sw_if_index for t in first.tunnels] == indexes[:2]
    rest = client.api.gtpu_get_transfer_counts(sw_if_index_start=indexes[1] + 1, capacity=2)
    assert [t.sw_if_index for t in rest.tunnels] == indexes[2:]


def test_update_tteid(vpp_emulator: VppEmulator, client: Any) -> None:
    index = client.api.gtpu_add_del_tunnel_v2(**tunnel_args()).sw_if_index
    api = client.api
    assert api.gtpu_tunnel_update_tteid(dst_address="10.0.3.3", encap_vrf_id=0, teid=0x1001, tteid=0x3003).retval == 0
    assert vpp_emulator.state.gtpu_tunnels[index].tteid == 0x3003
    assert api.gtpu_tunnel_update_tteid(dst_address="10.0.3.3", encap_vrf_id=0, teid=0x1001, tteid=0).retval == -7
    assert api.gtpu_tunnel_update_tteid(dst_address="10.0.3.9", encap_vrf_id=0, teid=0x1001, tteid=5).retval == -6


def test_forward_unknown_types_to_the_agent(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    reply = api.gtpu_add_del_forward(
        is_add=True, dst_address="10.0.3.100", forwarding_type=4, encap_vrf_id=0, decap_next_index=2
    )
    assert reply.retval == 0
    assert vpp_emulator.state.gtpu_forwards[reply.sw_if_index].forwarding_type == 4
    again = api.gtpu_add_del_forward(is_add=True, dst_address="10.0.3.100", forwarding_type=4, encap_vrf_id=0)
    assert again.retval == -75
    assert api.gtpu_add_del_forward(is_add=True, dst_address="10.0.3.100", forwarding_type=3).retval == -73
    (details,) = api.gtpu_tunnel_v2_dump(sw_if_index=NO_INDEX)
    assert details.is_forwarding and details.forwarding_type == 4
    assert api.gtpu_add_del_forward(is_add=False, dst_address="10.0.3.100", forwarding_type=4).retval == 0
    assert api.gtpu_add_del_forward(is_add=False, dst_address="10.0.3.100", forwarding_type=4).retval == -6
    assert vpp_emulator.state.gtpu_forwards == {}


def test_freed_interface_indexes_and_names_are_reused(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    first = api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=1)).sw_if_index
    second = api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=2)).sw_if_index
    api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=1, is_add=False))
    third = api.gtpu_add_del_tunnel_v2(**tunnel_args(teid=3)).sw_if_index
    assert third == first != second
    state = vpp_emulator.state
    assert (state.interfaces[third].name, state.gtpu_tunnels[third].teid) == ("gtpu_tunnel0", 3)
    assert state.interface_by_name("gtpu_tunnel1") == state.interfaces[second]
