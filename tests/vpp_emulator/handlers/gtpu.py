"""gtpu.api (plugin): tunnels keyed by (gNB address, local TEID), their counters, forwarding entries.

Behaviour follows ``vnet_gtpu_add_mod_del_tunnel`` (src/plugins/gtpu/gtpu.c): a duplicate key is
-75 TUNNEL_EXIST, a missing one -6 NO_SUCH_ENTRY, tteid 0 defaults to the teid, decap_next ~0 means L2,
the new ``gtpu_tunnelN`` interface is admin up, and deleting one reports its final counters.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from tests.vpp_emulator.model import (
    INVALID_ARGUMENT,
    INVALID_VALUE,
    NO_SUCH_ENTRY,
    NO_SUCH_FIB,
    ApiError,
    Handler,
    Model,
    Reply,
)
from tests.vpp_emulator.snapshot import NO_INDEX, Counters, GtpuForward, GtpuTunnel, Interface, IpAddress

TUNNEL_EXIST = -75
INVALID_DECAP_NEXT = -76
SAME_SRC_DST = -82
DECAP_NEXT_L2 = 1
#: gtpu4-input's next nodes: drop, l2-input, ip4-input, ip6-input
N_DECAP_NEXT = 4
FORWARDING_TYPES = (1, 2, 4)  # BAD_HEADER, UNKNOWN_TEID, UNKNOWN_TYPE


def _address(value: Any) -> IpAddress:
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if value is None:
        raise ApiError(INVALID_ARGUMENT, "address missing")
    return ip_address(value)


def _counters(c: Counters) -> dict[str, int]:
    return {"packets_rx": c.packets_rx, "packets_tx": c.packets_tx, "bytes_rx": c.bytes_rx, "bytes_tx": c.bytes_tx}


def _encap_table(model: Model, dst: IpAddress, encap_vrf_id: int) -> None:
    if (dst.version == 6, encap_vrf_id) not in model.ip_tables:
        raise ApiError(NO_SUCH_FIB, f"encap_vrf_id {encap_vrf_id} does not exist")


def _find(model: Model, dst: IpAddress, teid: int) -> GtpuTunnel | None:
    index = model.gtpu_by_key.get((dst, teid))
    return None if index is None else model.gtpu_tunnels[index]


def _add_interface(model: Model) -> Interface:
    """A ``gtpu_tunnel<instance>`` interface, admin up as vnet_gtpu_add_mod_del_tunnel sets it."""
    instance = model.gtpu_instances.get()
    iface = model.add_interface(f"gtpu_tunnel{instance}", "gtpu", admin_up=True)
    model.gtpu_instance_of[iface.sw_if_index] = instance
    return iface


def _delete_interface(model: Model, sw_if_index: int) -> None:
    model.gtpu_instances.put(model.gtpu_instance_of.pop(sw_if_index))
    model.delete_interface(sw_if_index)


def gtpu_add_del_tunnel_v2(model: Model, req: dict[str, Any]) -> Reply:
    src = _address(req.get("src_address"))
    dst = _address(req.get("dst_address"))
    encap_vrf_id = int(req.get("encap_vrf_id", 0))
    teid = int(req.get("teid", 0))
    _encap_table(model, dst, encap_vrf_id)
    if src == dst:
        raise ApiError(SAME_SRC_DST, f"src and dst are both {src}")
    if src.version != dst.version:
        raise ApiError(INVALID_ARGUMENT, "src and dst of different families")
    existing = _find(model, dst, teid)
    if not req.get("is_add"):
        if existing is None:
            raise ApiError(NO_SUCH_ENTRY, f"no tunnel (dst {dst}, teid {teid:#x})")
        del model.gtpu_tunnels[existing.sw_if_index]
        del model.gtpu_by_key[(dst, teid)]
        _delete_interface(model, existing.sw_if_index)
        return {"sw_if_index": existing.sw_if_index, "counters": _counters(existing.counters)}
    if existing is not None:
        raise ApiError(TUNNEL_EXIST, f"tunnel (dst {dst}, teid {teid:#x}) exists")
    decap_next = int(req.get("decap_next_index", 0))
    if decap_next == NO_INDEX:
        decap_next = DECAP_NEXT_L2
    if decap_next >= N_DECAP_NEXT:
        raise ApiError(INVALID_DECAP_NEXT, f"decap_next_index {decap_next}")
    iface = _add_interface(model)
    model.gtpu_by_key[(dst, teid)] = iface.sw_if_index
    model.gtpu_tunnels[iface.sw_if_index] = GtpuTunnel(
        sw_if_index=iface.sw_if_index,
        src=src,
        dst=dst,
        teid=teid,
        tteid=int(req.get("tteid", 0)) or teid,
        encap_vrf_id=encap_vrf_id,
        decap_next_index=decap_next,
        pdu_extension=bool(req.get("pdu_extension")),
        qfi=int(req.get("qfi", 0)),
        mcast_sw_if_index=int(req.get("mcast_sw_if_index", NO_INDEX)),
    )
    return {"sw_if_index": iface.sw_if_index, "counters": _counters(Counters())}


def gtpu_tunnel_update_tteid(model: Model, req: dict[str, Any]) -> Reply:
    """Only the remote TEID changes (the key is dst + teid); tteid 0 is -7."""
    dst = _address(req.get("dst_address"))
    _encap_table(model, dst, int(req.get("encap_vrf_id", 0)))
    tunnel = _find(model, dst, int(req.get("teid", 0)))
    if tunnel is None:
        raise ApiError(NO_SUCH_ENTRY, f"no tunnel (dst {dst}, teid {int(req.get('teid', 0)):#x})")
    tteid = int(req.get("tteid", 0))
    if tteid == 0:
        raise ApiError(INVALID_VALUE, "tteid 0")
    model.gtpu_tunnels[tunnel.sw_if_index] = replace(tunnel, tteid=tteid)
    return {}


def _tunnel_details(t: GtpuTunnel) -> dict[str, Any]:
    return {
        "sw_if_index": t.sw_if_index,
        "src_address": t.src,
        "dst_address": t.dst,
        "mcast_sw_if_index": t.mcast_sw_if_index,
        "encap_vrf_id": t.encap_vrf_id,
        "decap_next_index": t.decap_next_index,
        "teid": t.teid,
        "tteid": t.tteid,
        "pdu_extension": t.pdu_extension,
        "qfi": t.qfi,
        "counters": _counters(t.counters),
    }


def _forward_details(f: GtpuForward) -> dict[str, Any]:
    return {
        "sw_if_index": f.sw_if_index,
        "src_address": f.dst,
        "dst_address": f.dst,
        "mcast_sw_if_index": NO_INDEX,
        "encap_vrf_id": f.encap_vrf_id,
        "decap_next_index": f.decap_next_index,
        "is_forwarding": True,
        "forwarding_type": f.forwarding_type,
    }


def gtpu_tunnel_v2_dump(model: Model, req: dict[str, Any]) -> Reply:
    index = int(req.get("sw_if_index", NO_INDEX))
    found: list[dict[str, Any]] = []
    for sw_if_index in sorted({*model.gtpu_tunnels, *model.gtpu_forwards}):
        if index not in (NO_INDEX, sw_if_index):
            continue
        if sw_if_index in model.gtpu_tunnels:
            found.append(_tunnel_details(model.gtpu_tunnels[sw_if_index]))
        else:
            found.append(_forward_details(model.gtpu_forwards[sw_if_index]))
    return found


def gtpu_get_transfer_counts(model: Model, req: dict[str, Any]) -> Reply:
    """Counters of up to ``capacity`` tunnels from ``sw_if_index_start`` on, in sw_if_index order."""
    start = int(req.get("sw_if_index_start", 0))
    capacity = int(req.get("capacity", 0))
    tunnels = [t for i, t in sorted(model.gtpu_tunnels.items()) if i >= start][:capacity]
    return {
        "count": len(tunnels),
        "tunnels": [{"sw_if_index": t.sw_if_index, "counters": _counters(t.counters)} for t in tunnels],
    }


def gtpu_add_del_forward(model: Model, req: dict[str, Any]) -> Reply:
    """vnet_gtpu_add_del_forwarding: one entry per (forwarding type, family): -75 when it exists,
    -6 when deleting an absent one, -73 for an unknown type."""
    dst = _address(req.get("dst_address"))
    kind = int(req.get("forwarding_type", 0))
    if kind not in FORWARDING_TYPES:
        raise ApiError(INVALID_ARGUMENT, f"forwarding_type {kind}")
    encap_vrf_id = int(req.get("encap_vrf_id", 0))
    _encap_table(model, dst, encap_vrf_id)
    existing = next(
        (f for f in model.gtpu_forwards.values() if f.forwarding_type == kind and f.dst.version == dst.version),
        None,
    )
    if not req.get("is_add"):
        if existing is None:
            raise ApiError(NO_SUCH_ENTRY, f"no forwarding of type {kind}")
        del model.gtpu_forwards[existing.sw_if_index]
        _delete_interface(model, existing.sw_if_index)
        return {"sw_if_index": existing.sw_if_index}
    if existing is not None:
        raise ApiError(TUNNEL_EXIST, f"forwarding of type {kind} exists")
    decap_next = int(req.get("decap_next_index", 0))
    iface = _add_interface(model)
    model.gtpu_forwards[iface.sw_if_index] = GtpuForward(iface.sw_if_index, dst, kind, encap_vrf_id, decap_next)
    return {"sw_if_index": iface.sw_if_index}


HANDLERS: dict[str, Handler] = {
    "gtpu_add_del_tunnel_v2": gtpu_add_del_tunnel_v2,
    "gtpu_tunnel_update_tteid": gtpu_tunnel_update_tteid,
    "gtpu_tunnel_v2_dump": gtpu_tunnel_v2_dump,
    "gtpu_get_transfer_counts": gtpu_get_transfer_counts,
    "gtpu_add_del_forward": gtpu_add_del_forward,
}
