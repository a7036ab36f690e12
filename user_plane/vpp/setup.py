"""Running the node setup (:mod:`.node`) against VPP, and telling a restarted VPP from a kept one."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from ..config import N6Config
from .calls import VppApi, VppCallError, VppUnavailable
from .config import Memif, VppConfig
from .executor import Executor, StepFailed
from .node import interface_key, node_steps, table_steps
from .objects import Key, Step
from .plan import DENY_ALL, TAG_PREFIX

__all__ = ["kept_state", "set_up", "vrfs"]

_ANY: int = 0xFFFFFFFF


def vrfs(config: VppConfig) -> list[dict[str, Any]]:
    """The Network Instances' tables, IPv4 and IPv6, as ``ip_table_t``."""
    tables = sorted({side.table_id for side in config.n6.values()})
    return [{"table_id": t, "is_ip6": v6} for t in tables for v6 in (False, True)]


def set_up(
    api: VppApi,
    executor: Executor,
    config: VppConfig,
    n6: Mapping[str, N6Config],
    *,
    sweep: Collection[IPv4Address | IPv6Address] | None = None,
) -> list[Step]:
    """Look the named interfaces up, then run the node setup; returns its journal (undone
    if a step fails). ``sweep``: after a reconnection, our N3 addresses: leftovers of ours
    are removed first and every VRF gets ``ip_table_replace_begin`` before its routes come
    back (the caller ends with ``ip_table_replace_end``)."""
    names = {str(d.interface_name): int(d.sw_if_index) for d in api.call("sw_interface_dump")}
    for side in (config.n3, *config.n6.values()):
        if isinstance(side.interface, str):
            if side.interface not in names:
                raise VppCallError(f"interface {side.interface!r} not in VPP ({', '.join(sorted(names))})", -2)
            executor.indexes[interface_key(side.interface)] = names[side.interface]
    if sweep is not None:
        _sweep(api, config, sweep)
    journal = executor.run(table_steps(config))
    try:
        if sweep is not None:  # mark every route of the VRFs: what is not added again goes at replace_end
            for table in vrfs(config):
                api.call("ip_table_replace_begin", table=table)
        journal += executor.run(node_steps(config, n6))
    except (StepFailed, VppCallError, VppUnavailable):
        executor.undo(journal)
        raise
    return journal


def _sweep(api: VppApi, config: VppConfig, n3: Collection[IPv4Address | IPv6Address]) -> None:
    """Remove what a previous connection of ours left in a VPP that kept (some of) its state
    though its deny-all ACL is gone (see :func:`kept_state`), so that the node setup and the
    sessions can be made again: tunnels from our N3 addresses and the gtpu forward to
    ``gtpu_forward``, ACLs with our tag, the addresses of our named interfaces, our memif
    interfaces and sockets. Routes of the VRFs go with ``ip_table_replace_end``. Policers
    cannot be found again (policer_details carries no index): a leftover one makes the
    re-install of its session fail (the driver then lists it as missing)."""
    ours = {str(a) for a in n3}
    forward = None if config.gtpu_forward is None else str(config.gtpu_forward)
    for tunnel in api.call("gtpu_tunnel_v2_dump", sw_if_index=_ANY):
        if tunnel.is_forwarding:
            if str(tunnel.dst_address) == forward:
                args = {k: getattr(tunnel, k) for k in ("dst_address", "forwarding_type", "encap_vrf_id")}
                api.call("gtpu_add_del_forward", is_add=False, decap_next_index=tunnel.decap_next_index, **args)
        elif str(tunnel.src_address) in ours:
            args = {k: getattr(tunnel, k) for k in ("src_address", "dst_address", "mcast_sw_if_index")}
            args.update({k: getattr(tunnel, k) for k in ("encap_vrf_id", "decap_next_index", "teid", "tteid")})
            api.call("gtpu_add_del_tunnel_v2", is_add=False, **args)
    for acl in api.call("acl_dump", acl_index=_ANY):
        if str(acl.tag).startswith(TAG_PREFIX):
            api.call("acl_del", acl_index=acl.acl_index)
    sides = (config.n3, *config.n6.values())
    memifs = {(m.socket, m.id) for m in (s.interface for s in sides) if isinstance(m, Memif)}
    for side in sides:
        if isinstance(side.interface, str):
            index = interface_index(api, side.interface)
            api.call("sw_interface_add_del_address", sw_if_index=index, is_add=False, del_all=True)
    if memifs:
        sockets = {int(d.socket_id): str(d.socket_filename) for d in api.call("memif_socket_filename_dump")}
        for memif in api.call("memif_dump"):
            if (sockets.get(int(memif.socket_id)), int(memif.id)) in memifs:
                api.call("memif_delete", sw_if_index=memif.sw_if_index)
        for socket_id, filename in sockets.items():
            if socket_id and any(filename == socket for socket, _ in memifs):
                api.call(
                    "memif_socket_filename_add_del_v2", is_add=False, socket_id=socket_id, socket_filename=filename
                )


def interface_index(api: VppApi, name: str) -> int:
    """The sw_if_index of the interface VPP names ``name``."""
    [found] = [d for d in api.call("sw_interface_dump") if str(d.interface_name) == name]
    return int(found.sw_if_index)


def kept_state(api: VppApi, indexes: Mapping[Key, int]) -> bool:
    """Whether the VPP we reconnected to is the one we programmed (only the connection was
    lost): the node's deny-all ACL is still at its index with its tag. A restarted VPP has no
    ACL at all. Then every index we hold is still valid and nothing needs re-doing."""
    index = indexes.get(DENY_ALL)
    if index is None:
        return False
    try:
        found = api.call("acl_dump", acl_index=index)
    except (VppCallError, VppUnavailable):
        return False
    return len(found) == 1 and str(found[0].tag) == DENY_ALL[1]
