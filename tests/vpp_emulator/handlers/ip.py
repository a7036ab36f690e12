"""ip.api: tables, routes (FIB_SOURCE_API), their dumps, mark-and-sweep replace and flush."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from tests.vpp_emulator.model import (
    NO_PATHS_IN_ROUTE,
    ApiError,
    Handler,
    Model,
    Reply,
)
from tests.vpp_emulator.snapshot import FibPath, IpNetwork


def _table(req: dict[str, Any]) -> tuple[bool, int, str]:
    table = req.get("table") or {}
    return bool(table.get("is_ip6")), int(table.get("table_id", 0)), str(table.get("name") or "")


def ip_table_add_del(model: Model, req: dict[str, Any]) -> Reply:
    """ip_table_create/ip_table_delete: table 0 is always there and ignored; adding an existing
    table and deleting an absent one both succeed. Deleting flushes the table's API routes; the
    table itself survives while an interface is bound to it (the interface holds a lock)."""
    is_ip6, table_id, name = _table(req)
    if table_id == 0:
        return {}
    key = (is_ip6, table_id)
    if req.get("is_add", True):
        if key not in model.ip_tables:
            model.ip_tables[key] = name or f"ipv{6 if is_ip6 else 4}-VRF:{table_id}"
        return {}
    if key not in model.ip_tables:
        return {}
    _flush(model, is_ip6, table_id)
    bound = any((i.ip6_table if is_ip6 else i.ip4_table) == table_id for i in model.interfaces.values())
    if not bound:
        del model.ip_tables[key]
    return {}


def _routes_in(model: Model, is_ip6: bool, table_id: int) -> list[tuple[int, IpNetwork]]:
    return [k for k in model.routes if k[0] == table_id and k[1].version == (6 if is_ip6 else 4)]


def _flush(model: Model, is_ip6: bool, table_id: int) -> None:
    for key in _routes_in(model, is_ip6, table_id):
        _remove_route(model, key)


def _remove_route(model: Model, key: tuple[int, IpNetwork]) -> None:
    del model.routes[key]
    model.route_stats_index.pop(key, None)
    model.stale_routes.discard(key)


def _prefix(value: Any) -> IpNetwork:
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    if value is None:
        raise ApiError(-7, "route without prefix")
    return ip_network(value, strict=False)


def ip_route_add_del(model: Model, req: dict[str, Any]) -> Reply:
    """fib_api_route_add_del: the table must exist (-3); paths are validated first; an add without
    paths is -52. Non-multipath add replaces the paths, delete removes the route (an absent one is
    fine: "removing an entry that does not exist. i'll allow it."); multipath adds/removes paths."""
    route = req.get("route") or {}
    prefix = _prefix(route.get("prefix"))
    table_id = int(route.get("table_id", 0))
    model.require_table(prefix.version == 6, table_id)
    paths = tuple(model.decode_path(p) for p in (route.get("paths") or []))
    is_add = bool(req.get("is_add", True))
    key = (table_id, prefix)
    existing = model.routes.get(key, ())
    if req.get("is_multipath"):
        if not paths:
            raise ApiError(NO_PATHS_IN_ROUTE, "multipath update without paths")
        if is_add:
            new = existing + tuple(p for p in paths if p not in existing)
        else:
            new = tuple(p for p in existing if p not in paths)
    elif is_add:
        if not paths:
            raise ApiError(NO_PATHS_IN_ROUTE, "route add without paths")
        new = paths
    else:
        new = ()
    if not new:
        if key in model.routes:
            _remove_route(model, key)
        return {"stats_index": 0}
    model.routes[key] = new
    model.stale_routes.discard(key)
    if key not in model.route_stats_index:
        model.route_stats_index[key] = model.next_stats_index
        model.next_stats_index += 1
    return {"stats_index": model.route_stats_index[key] if is_add else 0}


def _route_details(model: Model, key: tuple[int, IpNetwork], paths: tuple[FibPath, ...]) -> dict[str, Any]:
    return {
        "route": {
            "table_id": key[0],
            "stats_index": model.route_stats_index.get(key, 0),
            "prefix": key[1],
            "n_paths": len(paths),
            "paths": [model.encode_path(p) for p in paths],
        }
    }


def ip_route_v2_dump(model: Model, req: dict[str, Any]) -> Reply:
    """The API routes of one table; nothing when the table does not exist (as VPP)."""
    is_ip6, table_id, _ = _table(req)
    if (is_ip6, table_id) not in model.ip_tables:
        return []
    keys = sorted(_routes_in(model, is_ip6, table_id), key=lambda k: (k[1].network_address, k[1].prefixlen))
    return [_route_details(model, k, model.routes[k]) for k in keys]


def ip_table_dump(model: Model, req: dict[str, Any]) -> Reply:
    return [
        {"table": {"table_id": table_id, "is_ip6": is_ip6, "name": name}}
        for (is_ip6, table_id), name in sorted(model.ip_tables.items())
    ]


def ip_table_replace_begin(model: Model, req: dict[str, Any]) -> Reply:
    """Mark every API route of the table stale; re-adding a route before replace_end unmarks it."""
    is_ip6, table_id, _ = _table(req)
    model.require_table(is_ip6, table_id)
    model.stale_routes.update(_routes_in(model, is_ip6, table_id))
    return {}


def ip_table_replace_end(model: Model, req: dict[str, Any]) -> Reply:
    """Sweep: remove the routes of the table still marked stale."""
    is_ip6, table_id, _ = _table(req)
    model.require_table(is_ip6, table_id)
    for key in [k for k in _routes_in(model, is_ip6, table_id) if k in model.stale_routes]:
        _remove_route(model, key)
    return {}


def ip_table_flush(model: Model, req: dict[str, Any]) -> Reply:
    is_ip6, table_id, _ = _table(req)
    model.require_table(is_ip6, table_id)
    _flush(model, is_ip6, table_id)
    return {}


HANDLERS: dict[str, Handler] = {
    "ip_table_add_del": ip_table_add_del,
    "ip_route_add_del": ip_route_add_del,
    "ip_route_v2_dump": ip_route_v2_dump,
    # ip_route_details carries the same route fields minus src
    "ip_route_dump": ip_route_v2_dump,
    "ip_table_dump": ip_table_dump,
    "ip_table_replace_begin": ip_table_replace_begin,
    "ip_table_replace_end": ip_table_replace_end,
    "ip_table_flush": ip_table_flush,
}
