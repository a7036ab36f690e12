"""interface.api and ip.api through vpp_papi: state effects and VPP's error codes."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from tests.unit.vpp_emulator.conftest import N3, N6, NO_INDEX, route_path
from tests.vpp_emulator import VppEmulator
from tests.vpp_emulator.snapshot import FibPath


def test_dump_filters_by_index_and_name(client: Any) -> None:
    assert [d.interface_name for d in client.api.sw_interface_dump(sw_if_index=N6)] == ["n6-eth"]
    named = client.api.sw_interface_dump(name_filter_valid=True, name_filter="N3")
    assert [(d.sw_if_index, d.interface_name) for d in named] == [(N3, "n3-eth")]
    assert client.api.sw_interface_dump(sw_if_index=77) == []


def test_set_table_needs_the_table_and_no_addresses(vpp_emulator: VppEmulator, client: Any) -> None:
    assert client.api.sw_interface_set_table(sw_if_index=N6, is_ipv6=False, vrf_id=10).retval == -3
    assert client.api.sw_interface_set_table(sw_if_index=99, vrf_id=0).retval == -2
    client.api.ip_table_add_del(is_add=True, table={"table_id": 10})
    assert client.api.sw_interface_set_table(sw_if_index=N6, is_ipv6=False, vrf_id=10).retval == 0
    assert vpp_emulator.state.interfaces[N6].ip4_table == 10
    reply = client.api.sw_interface_add_del_address(sw_if_index=N6, is_add=True, prefix="10.0.6.1/24")
    assert reply.retval == 0
    assert client.api.sw_interface_set_table(sw_if_index=N6, is_ipv6=False, vrf_id=0).retval == -114
    assert vpp_emulator.state.interfaces[N6].addresses == (IPv4Interface("10.0.6.1/24"),)


def test_addresses_flags_ip_enable_and_unnumbered(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    assert api.sw_interface_add_del_address(sw_if_index=N3, is_add=True, prefix="10.0.3.1/24").retval == 0
    assert api.sw_interface_add_del_address(sw_if_index=N3, is_add=True, prefix="10.0.3.1/24").retval == 0
    assert api.sw_interface_add_del_address(sw_if_index=N6, is_add=True, prefix="10.0.3.1/24").retval == -127
    assert api.sw_interface_add_del_address(sw_if_index=N3, is_add=False, prefix="10.9.9.9/24").retval == -60
    assert api.sw_interface_set_flags(sw_if_index=N3, flags=1).retval == 0
    assert api.sw_interface_ip4_enable_disable(sw_if_index=N3, enable=True).retval == 0
    assert api.sw_interface_ip6_enable_disable(sw_if_index=N3, enable=True).retval == 0
    assert api.sw_interface_set_unnumbered(sw_if_index=N3, unnumbered_sw_if_index=N6, is_add=True).retval == 0
    assert api.sw_interface_set_unnumbered(sw_if_index=N3, unnumbered_sw_if_index=50, is_add=True).retval == -10
    n3, n6 = vpp_emulator.state.interfaces[N3], vpp_emulator.state.interfaces[N6]
    assert (n3.admin_up, n3.ip4_enabled, n3.ip6_enabled, n3.addresses) == (
        True,
        True,
        True,
        (IPv4Interface("10.0.3.1/24"),),
    )
    assert n6.unnumbered == N3
    assert int(api.sw_interface_dump(sw_if_index=N3)[0].flags) == 3  # admin up | link up
    assert api.sw_interface_add_del_address(sw_if_index=N3, del_all=True).retval == 0
    assert vpp_emulator.state.interfaces[N3].addresses == ()


def test_tables_add_delete_and_table_zero(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    assert api.ip_table_add_del(is_add=True, table={"table_id": 100, "is_ip6": True, "name": "ims6"}).retval == 0
    assert api.ip_table_add_del(is_add=True, table={"table_id": 100, "is_ip6": True, "name": "other"}).retval == 0
    assert api.ip_table_add_del(is_add=False, table={"table_id": 0}).retval == 0
    assert api.ip_table_add_del(is_add=False, table={"table_id": 55}).retval == 0
    tables = vpp_emulator.state.ip_tables
    assert tables == {(False, 0): "ipv4-VRF:0", (True, 0): "ipv6-VRF:0", (True, 100): "ims6"}
    api.ip_route_add_del(
        is_add=True,
        route={"table_id": 100, "prefix": "2001:db8::/64", "n_paths": 1, "paths": [route_path(N6, proto=1)]},
    )
    assert api.ip_table_add_del(is_add=False, table={"table_id": 100, "is_ip6": True}).retval == 0
    assert (True, 100) not in vpp_emulator.state.ip_tables
    assert vpp_emulator.state.routes == {}


def test_routes_replace_multipath_delete_and_errors(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    api.ip_table_add_del(is_add=True, table={"table_id": 10})
    default = {
        "table_id": 10,
        "prefix": "0.0.0.0/0",
        "n_paths": 1,
        "paths": [route_path(N6, nh={"address": {"ip4": "10.0.6.254"}})],
    }
    reply = api.ip_route_add_del(is_add=True, route=default)
    assert reply.retval == 0 and reply.stats_index > 0
    key = (10, IPv4Network("0.0.0.0/0"))
    assert vpp_emulator.state.routes[key] == (FibPath(N6, 0, 0, IPv4Address("10.0.6.254")),)
    # a second non-multipath add replaces the paths (fib_table_entry_update)
    drop = {**default, "paths": [route_path(type=2)]}
    assert api.ip_route_add_del(is_add=True, route=drop).retval == 0
    assert vpp_emulator.state.routes[key] == (FibPath(NO_INDEX, 2, 0, None),)
    # multipath adds a path, then removes it
    extra = {**default, "paths": [route_path(N3)]}
    assert api.ip_route_add_del(is_add=True, is_multipath=True, route=extra).retval == 0
    assert len(vpp_emulator.state.routes[key]) == 2
    assert api.ip_route_add_del(is_add=False, is_multipath=True, route=extra).retval == 0
    assert vpp_emulator.state.routes[key] == (FibPath(NO_INDEX, 2, 0, None),)
    # errors: no such table, unknown interface, no paths; none changes anything
    before = vpp_emulator.state
    assert api.ip_route_add_del(is_add=True, route={**default, "table_id": 11}).retval == -3
    assert api.ip_route_add_del(is_add=True, route={**default, "paths": [route_path(66)]}).retval == -54
    assert api.ip_route_add_del(is_add=True, route={**default, "n_paths": 0, "paths": []}).retval == -52
    assert vpp_emulator.state == before
    # delete, and deleting again is fine (as VPP)
    assert api.ip_route_add_del(is_add=False, route={**default, "n_paths": 0, "paths": []}).retval == 0
    assert api.ip_route_add_del(is_add=False, route={**default, "n_paths": 0, "paths": []}).retval == 0
    assert vpp_emulator.state.routes == {}


def test_route_dump_returns_the_table_routes(client: Any) -> None:
    api = client.api
    api.ip_table_add_del(is_add=True, table={"table_id": 10})
    for ue in ("10.60.0.2/32", "10.60.0.1/32"):
        api.ip_route_add_del(is_add=True, route={"table_id": 10, "prefix": ue, "n_paths": 1, "paths": [route_path(N3)]})
    details = api.ip_route_v2_dump(table={"table_id": 10})
    assert [d.route.prefix for d in details] == [IPv4Network("10.60.0.1/32"), IPv4Network("10.60.0.2/32")]
    assert [p.sw_if_index for d in details for p in d.route.paths] == [N3, N3]
    assert api.ip_route_v2_dump(table={"table_id": 10, "is_ip6": True}) == []
    assert api.ip_route_v2_dump(table={"table_id": 99}) == []


def test_replace_begin_end_sweeps_routes_not_re_added(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    api.ip_table_add_del(is_add=True, table={"table_id": 10})
    for ue in ("10.60.0.1/32", "10.60.0.2/32"):
        api.ip_route_add_del(is_add=True, route={"table_id": 10, "prefix": ue, "n_paths": 1, "paths": [route_path(N3)]})
    api.ip_route_add_del(
        is_add=True, route={"table_id": 0, "prefix": "10.99.0.0/16", "n_paths": 1, "paths": [route_path(N6)]}
    )
    assert api.ip_table_replace_begin(table={"table_id": 10}).retval == 0
    api.ip_route_add_del(
        is_add=True, route={"table_id": 10, "prefix": "10.60.0.2/32", "n_paths": 1, "paths": [route_path(N3)]}
    )
    api.ip_route_add_del(
        is_add=True, route={"table_id": 10, "prefix": "10.60.0.3/32", "n_paths": 1, "paths": [route_path(N3)]}
    )
    assert api.ip_table_replace_end(table={"table_id": 10}).retval == 0
    assert sorted(str(p) for _, p in vpp_emulator.state.routes) == ["10.60.0.2/32", "10.60.0.3/32", "10.99.0.0/16"]
    assert api.ip_table_replace_begin(table={"table_id": 12}).retval == -3
    assert api.ip_table_flush(table={"table_id": 10}).retval == 0
    assert list(vpp_emulator.state.routes) == [(0, IPv4Network("10.99.0.0/16"))]


def test_a_path_without_interface_looks_up_in_a_table_that_must_exist(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    route = {"table_id": 0, "prefix": "10.70.0.0/16", "n_paths": 1, "paths": [route_path(table_id=20)]}
    assert api.ip_route_add_del(is_add=True, route=route).retval == -3
    api.ip_table_add_del(is_add=True, table={"table_id": 20})
    assert api.ip_route_add_del(is_add=True, route=route).retval == 0
    # the table of a path via an interface means nothing and is not kept
    via_n6 = {**route, "prefix": "10.71.0.0/16", "paths": [route_path(N6, table_id=20)]}
    assert api.ip_route_add_del(is_add=True, route=via_n6).retval == 0
    routes = vpp_emulator.state.routes
    assert routes[(0, IPv4Network("10.70.0.0/16"))] == (FibPath(NO_INDEX, 0, 0, None, table_id=20),)
    assert routes[(0, IPv4Network("10.71.0.0/16"))] == (FibPath(N6, 0, 0, None, table_id=0),)
