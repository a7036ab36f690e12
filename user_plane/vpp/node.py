"""Node setup: what the driver programs into VPP once, before any session. Pure planning.

In this order (each step with its undo, so a failed start leaves VPP as it was, and stop
takes it all back):

1. a VRF per Network Instance (``ip_table_add_del``, IPv4 and IPv6, same table id) and
   the N3 table when it is not 0 (:func:`table_steps`);
2. memif interfaces the configuration asks for: their control socket, then the interface;
3. per interface (N3, each N6): the table *before* the addresses (VPP refuses to move an
   interface with addresses), the addresses, admin up;
4. per Network Instance with a gateway: a default route in its VRF via the N6 interface;
5. with ``vpp.gtpu_forward``: GTP-U messages of unknown type (Echo, Error Indication, End
   Marker: everything that is not a G-PDU, which the stock gtpu plugin does not handle)
   are forwarded to that address (``gtpu_add_del_forward``);
6. the deny-all ACL tunnels get as input ACL when their whole uplink drops.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Final

from ..config import N6Config
from .config import Memif, NetworkInstanceSide, VppConfig, VppInterface
from .objects import NO_INDEX, Call, Key, Ref, Step
from .plan import deny_all_acl

__all__ = ["GTPU_FORWARD", "interface_key", "node_steps", "table_steps"]

_ADMIN_UP: Final = 1
#: gtpu_forwarding_type GTPU_API_FORWARDING_UNKNOWN_TYPE.
_UNKNOWN_TYPE: Final = 4
#: Key of the gtpu forward object.
GTPU_FORWARD: Final[Key] = ("gtpu-forward",)


def interface_key(interface: VppInterface) -> Key:
    """The key under which an interface's sw_if_index is known (looked up by name, or
    returned by memif_create_v2)."""
    return ("if", interface.name if isinstance(interface, Memif) else interface)


def _sides(config: VppConfig) -> list[NetworkInstanceSide]:
    return [config.n3, *config.n6.values()]


def table_steps(config: VppConfig) -> list[Step]:
    """The VRFs: one per Network Instance (and N3's when not 0), IPv4 and IPv6."""
    tables = {side.table_id: name for name, side in config.n6.items()}
    if config.n3.table_id:
        tables.setdefault(config.n3.table_id, "n3")
    steps: list[Step] = []
    for table_id, name in tables.items():
        for is_ip6 in (False, True):
            table = {"table_id": table_id, "is_ip6": is_ip6, "name": f"edgecups:{name}"}
            steps.append(
                Step(
                    Call("ip_table_add_del", {"is_add": True, "table": table}),
                    (Call("ip_table_add_del", {"is_add": False, "table": table}),),
                )
            )
    return steps


def node_steps(config: VppConfig, n6: Mapping[str, N6Config]) -> list[Step]:
    """Everything after the tables (steps 2-6 of the module docstring). Interfaces given by
    name must be in the executor's indexes under :func:`interface_key` beforehand."""
    steps: list[Step] = []
    sockets: dict[str, Key] = {}
    for side in _sides(config):
        if isinstance(side.interface, Memif):
            steps += _memif(side.interface, sockets)
    for side in _sides(config):
        steps += _interface(side)
    for name, side in config.n6.items():
        gateway = n6[name].gateway if name in n6 else None
        if gateway is not None:
            steps.append(_default_route(side, gateway))
    if config.gtpu_forward is not None:
        args: dict[str, Any] = {
            "dst_address": config.gtpu_forward,
            "forwarding_type": _UNKNOWN_TYPE,
            "encap_vrf_id": config.n3.table_id,
            "decap_next_index": 2 if config.gtpu_forward.version == 4 else 3,
        }
        steps.append(
            Step(
                Call("gtpu_add_del_forward", {"is_add": True, **args}, produces=GTPU_FORWARD),
                (Call("gtpu_add_del_forward", {"is_add": False, **args}, releases=GTPU_FORWARD),),
            )
        )
    steps += deny_all_acl().create()
    return steps


def _memif(memif: Memif, sockets: dict[str, Key]) -> list[Step]:
    steps: list[Step] = []
    socket_key = sockets.get(memif.socket)
    if socket_key is None:
        socket_key = sockets[memif.socket] = ("memif-socket", memif.socket)
        steps.append(
            Step(
                Call(
                    "memif_socket_filename_add_del_v2",
                    {"is_add": True, "socket_id": NO_INDEX, "socket_filename": memif.socket},
                    produces=socket_key,
                ),
                (
                    Call(
                        "memif_socket_filename_add_del_v2",
                        {"is_add": False, "socket_id": Ref(socket_key), "socket_filename": memif.socket},
                        releases=socket_key,
                    ),
                ),
            )
        )
    key = interface_key(memif)
    create = {
        "role": 0 if memif.role == "master" else 1,
        "mode": 0 if memif.mode == "ethernet" else 1,
        "id": memif.id,
        "socket_id": Ref(socket_key),
    }
    steps.append(
        Step(
            Call("memif_create_v2", create, produces=key),
            (Call("memif_delete", {"sw_if_index": Ref(key)}, releases=key),),
        )
    )
    return steps


def _interface(side: NetworkInstanceSide) -> list[Step]:
    me = Ref(interface_key(side.interface))
    steps: list[Step] = []
    for is_ipv6 in (False, True):
        steps.append(
            Step(
                Call("sw_interface_set_table", {"sw_if_index": me, "is_ipv6": is_ipv6, "vrf_id": side.table_id}),
                (Call("sw_interface_set_table", {"sw_if_index": me, "is_ipv6": is_ipv6, "vrf_id": 0}),),
            )
        )
    for address in side.addresses:
        args = {"sw_if_index": me, "del_all": False, "prefix": address}
        steps.append(
            Step(
                Call("sw_interface_add_del_address", {**args, "is_add": True}),
                (Call("sw_interface_add_del_address", {**args, "is_add": False}),),
            )
        )
    steps.append(
        Step(
            Call("sw_interface_set_flags", {"sw_if_index": me, "flags": _ADMIN_UP}),
            (Call("sw_interface_set_flags", {"sw_if_index": me, "flags": 0}),),
        )
    )
    return steps


def _default_route(side: NetworkInstanceSide, gateway: IPv4Address | IPv6Address) -> Step:
    v6 = gateway.version == 6
    path = {
        "sw_if_index": Ref(interface_key(side.interface)),
        "table_id": side.table_id,
        "weight": 1,
        "type": 0,
        "proto": 1 if v6 else 0,
        "nh": {"address": {"ip6": gateway} if v6 else {"ip4": gateway}},
        "label_stack": [{}] * 16,
    }
    prefix = IPv6Network("::/0") if v6 else IPv4Network("0.0.0.0/0")
    route = {"table_id": side.table_id, "prefix": prefix, "n_paths": 1, "paths": [path]}
    return Step(
        Call("ip_route_add_del", {"is_add": True, "is_multipath": False, "route": route}),
        (Call("ip_route_add_del", {"is_add": False, "is_multipath": False, "route": route}),),
    )
