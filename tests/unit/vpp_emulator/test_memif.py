"""memif.api through vpp_papi: socket files and memif interfaces for chaining CNFs."""

from __future__ import annotations

from typing import Any

from tests.vpp_emulator import VppEmulator
from tests.vpp_emulator.snapshot import MemifInterface


def test_socket_files(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    reply = api.memif_socket_filename_add_del_v2(is_add=True, socket_filename="/run/upf/n6.sock")
    assert (reply.retval, reply.socket_id) == (0, 1)
    assert api.memif_socket_filename_add_del_v2(is_add=True, socket_id=1, socket_filename="/x.sock").retval == -81
    assert api.memif_socket_filename_add_del_v2(is_add=True, socket_id=5, socket_filename="").retval == -73
    assert api.memif_socket_filename_add_del_v2(is_add=False, socket_id=0).retval == -73
    assert vpp_emulator.state.memif_sockets == {0: "/run/vpp/memif.sock", 1: "/run/upf/n6.sock"}
    assert [d.socket_filename for d in api.memif_socket_filename_dump()] == ["/run/vpp/memif.sock", "/run/upf/n6.sock"]
    assert api.memif_socket_filename_add_del_v2(is_add=False, socket_id=1).retval == 0
    assert api.memif_socket_filename_add_del_v2(is_add=False, socket_id=1).retval == -6


def test_create_and_delete(vpp_emulator: VppEmulator, client: Any) -> None:
    api = client.api
    socket_id = api.memif_socket_filename_add_del_v2(is_add=True, socket_filename="/run/upf/n3.sock").socket_id
    reply = api.memif_create_v2(role=0, mode=1, id=3, socket_id=socket_id, ring_size=2048)
    assert reply.retval == 0
    index = reply.sw_if_index
    assert vpp_emulator.state.memif_interfaces[index] == MemifInterface(index, 3, socket_id, 0, 1, 2048, 2048, 1, 1)
    assert vpp_emulator.state.interfaces[index].name == f"memif{socket_id}/3"
    assert api.memif_create_v2(role=0, mode=1, id=3, socket_id=socket_id).retval == -81
    assert api.memif_create_v2(role=0, mode=1, id=4, socket_id=9).retval == -73
    assert api.memif_create_v2(role=0, mode=1, id=4, socket_id=socket_id, ring_size=1000).retval == -73
    assert api.memif_socket_filename_add_del_v2(is_add=False, socket_id=socket_id).retval == -74
    (details,) = api.memif_dump()
    assert (details.sw_if_index, details.id, details.if_name) == (index, 3, f"memif{socket_id}/3")
    assert api.memif_delete(sw_if_index=1).retval == -2  # n3-eth is not a memif
    assert api.memif_delete(sw_if_index=index).retval == 0
    assert vpp_emulator.state.memif_interfaces == {}
    assert index not in vpp_emulator.state.interfaces
