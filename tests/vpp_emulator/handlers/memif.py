"""memif.api (plugin): socket files by id and memif interfaces on them (src/plugins/memif).

Socket id 0 is VPP's default socket and cannot be deleted (-73); socket_id ~0 on add picks a free
id (the v2 reply carries it); an id in use on add is -81, a socket with interfaces cannot be deleted
(-74). memif_create_v2 needs a known socket (-73), a power-of-two ring (-73) and an id not yet used
on that socket (-81); it makes a ``memif<socket_id>/<id>`` interface, admin down.
"""

from __future__ import annotations

from typing import Any

from tests.vpp_emulator.model import INVALID_ARGUMENT, NO_SUCH_ENTRY, VALUE_EXIST, ApiError, Handler, Model, Reply
from tests.vpp_emulator.snapshot import NO_INDEX, MemifInterface

UNEXPECTED_INTF_STATE = -74
DEFAULT_RING_SIZE = 1024
DEFAULT_BUFFER_SIZE = 2048


def memif_socket_filename_add_del_v2(model: Model, req: dict[str, Any]) -> Reply:
    socket_id = int(req.get("socket_id", NO_INDEX))
    filename = str(req.get("socket_filename") or "")
    if not req.get("is_add"):
        if socket_id in (0, NO_INDEX):
            raise ApiError(INVALID_ARGUMENT, f"socket id {socket_id} cannot be deleted")
        if socket_id not in model.memif_sockets:
            raise ApiError(NO_SUCH_ENTRY, f"no memif socket {socket_id}")
        if any(m.socket_id == socket_id for m in model.memif_interfaces.values()):
            raise ApiError(UNEXPECTED_INTF_STATE, f"memif socket {socket_id} is in use")
        del model.memif_sockets[socket_id]
        return {"socket_id": socket_id}
    if not filename:
        raise ApiError(INVALID_ARGUMENT, "empty socket filename")
    if socket_id == NO_INDEX:
        socket_id = next(i for i in range(1, len(model.memif_sockets) + 2) if i not in model.memif_sockets)
    elif socket_id in model.memif_sockets:
        raise ApiError(VALUE_EXIST, f"memif socket {socket_id} exists")
    model.memif_sockets[socket_id] = filename
    return {"socket_id": socket_id}


def memif_create_v2(model: Model, req: dict[str, Any]) -> Reply:
    socket_id = int(req.get("socket_id", 0))
    memif_id = int(req.get("id", 0))
    ring_size = int(req.get("ring_size", 0)) or DEFAULT_RING_SIZE
    if ring_size & (ring_size - 1):
        raise ApiError(INVALID_ARGUMENT, f"ring_size {ring_size} is not a power of two")
    if socket_id not in model.memif_sockets:
        raise ApiError(INVALID_ARGUMENT, f"unknown memif socket id {socket_id}")
    if any(m.socket_id == socket_id and m.id == memif_id for m in model.memif_interfaces.values()):
        raise ApiError(VALUE_EXIST, f"memif id {memif_id} is used on socket {socket_id}")
    iface = model.add_interface(f"memif{socket_id}/{memif_id}", "memif")
    model.memif_interfaces[iface.sw_if_index] = MemifInterface(
        sw_if_index=iface.sw_if_index,
        id=memif_id,
        socket_id=socket_id,
        role=int(req.get("role", 0)),
        mode=int(req.get("mode", 0)),
        ring_size=ring_size,
        buffer_size=int(req.get("buffer_size", 0)) or DEFAULT_BUFFER_SIZE,
        rx_queues=int(req.get("rx_queues", 0)) or 1,
        tx_queues=int(req.get("tx_queues", 0)) or 1,
    )
    return {"sw_if_index": iface.sw_if_index}


def memif_delete(model: Model, req: dict[str, Any]) -> Reply:
    sw_if_index = int(req.get("sw_if_index", NO_INDEX))
    if sw_if_index not in model.memif_interfaces:
        raise ApiError(-2, f"{sw_if_index} is not a memif interface")
    del model.memif_interfaces[sw_if_index]
    model.delete_interface(sw_if_index)
    return {}


def memif_dump(model: Model, req: dict[str, Any]) -> Reply:
    details = []
    for index, memif in sorted(model.memif_interfaces.items()):
        iface = model.interfaces[index]
        details.append(
            {
                "sw_if_index": index,
                "id": memif.id,
                "role": memif.role,
                "mode": memif.mode,
                "zero_copy": True,
                "socket_id": memif.socket_id,
                "ring_size": memif.ring_size,
                "buffer_size": memif.buffer_size,
                "flags": model.flags(iface),
                "if_name": iface.name,
            }
        )
    return details


def memif_socket_filename_dump(model: Model, req: dict[str, Any]) -> Reply:
    return [
        {"socket_id": socket_id, "socket_filename": filename}
        for socket_id, filename in sorted(model.memif_sockets.items())
    ]


HANDLERS: dict[str, Handler] = {
    "memif_socket_filename_add_del_v2": memif_socket_filename_add_del_v2,
    "memif_create_v2": memif_create_v2,
    "memif_delete": memif_delete,
    "memif_dump": memif_dump,
    "memif_socket_filename_dump": memif_socket_filename_dump,
}
