"""Checks of one object against the others in the database: references, clashes, live sessions.

:func:`edge_sites.schema.validate_object` has checked the object's own form; what needs
the other objects is here (the same rules :mod:`edge_sites.manifests` applies to a
manifest set, plus what only the database knows: sessions). Each check raises the
:mod:`control_plane.errors` class of its outcome with the field at fault, as a path
under ``path`` ("resources[2]"), so the API names it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from ipaddress import ip_network
from typing import Any

from sqlalchemy import Connection, func, or_, select

from control_plane.domain.alloc import AllocationError, PoolAllocator
from control_plane.errors import AlreadyExists, FailedPrecondition, InvalidArgument

from .tables import KEYS, SESSIONS, SUBSCRIBERS, TABLES, UPFS, Stored, fetch, id_of, json_list_has

__all__ = ["check", "dependants", "served"]

_SHOWN = 5  # names listed in a message before "and more" (queries read one more, to know)


def _some(names: Sequence[str], what: str) -> str:
    more = " and more" if len(names) > _SHOWN else ""
    return f"{what} {', '.join(names[:_SHOWN])}{more}"


def _index(raw: Mapping[str, Any], field: str, value: str) -> str:
    # The validator sorts unordered lists: name the position the caller wrote.
    items = raw.get(field)
    position = items.index(value) if isinstance(items, list) and value in items else None
    return f"{field}[{position}]" if position is not None else field


def _refer(conn: Connection, kind: str, name: str | None, where: str) -> None:
    if name is not None and id_of(conn, kind, name) is None:
        raise FailedPrecondition(f"no {kind} {name!r}: apply it first (or in the same request)", field=where)


def _held(conn: Connection, pool_id: int) -> list[tuple[str, str]]:
    """(SUPI, value) of every address or prefix sessions hold in a pool."""
    s = SESSIONS.c
    v4 = select(s.supi, s.ue_ipv4).where(s.pool_v4_id == pool_id, s.ue_ipv4.is_not(None))
    v6 = select(s.supi, s.ue_ipv6).where(s.pool_v6_id == pool_id, s.ue_ipv6.is_not(None))
    return [(supi, value) for query in (v4, v6) for supi, value in conn.execute(query)]


def _supis(conn: Connection, *where: Any) -> list[str]:
    return list(
        conn.execute(select(SESSIONS.c.supi).where(*where).order_by(SESSIONS.c.supi).limit(_SHOWN + 1)).scalars()
    )


def _count(conn: Connection, *where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(SESSIONS).where(*where)).scalar_one())


def _upf(conn: Connection, name: str, spec: Mapping[str, Any], stored: Stored | None, p: str) -> None:
    _refer(conn, "Site", spec["site"], f"{p}.site")  # its DNNs: see served()
    other = conn.execute(
        select(UPFS.c.node_id).where(
            UPFS.c.n4_address == spec["n4_address"], UPFS.c.n4_port == spec["n4_port"], UPFS.c.node_id != name
        )
    ).scalar()
    if other is not None:
        raise AlreadyExists(
            f"UPF {other!r} already uses N4 address {spec['n4_address']} port {spec['n4_port']}",
            field=f"{p}.n4_address",
        )
    if stored is None:
        return
    on_it = SESSIONS.c.upf_id == stored.id
    held = _count(conn, on_it) if spec["site"] != stored.spec["site"] else 0
    if held:
        raise FailedPrecondition(
            f"UPF {name} holds {held} sessions: drain it and let them end before moving it to another site",
            field=f"{p}.site",
        )
    dropped = sorted(set(stored.spec["network_instances"]) - set(spec["network_instances"]))
    if dropped and _count(conn, on_it, SESSIONS.c.dnn.in_(dropped)):
        users = _supis(conn, on_it, SESSIONS.c.dnn.in_(dropped))
        raise FailedPrecondition(
            f"UPF {name} holds sessions of {', '.join(dropped)} ({_some(users, 'of')}): it must keep serving them",
            field=f"{p}.network_instances",
        )


def _pool(conn: Connection, name: str, spec: Mapping[str, Any], stored: Stored | None, p: str) -> list[int]:
    _refer(conn, "DNN", spec["dnn"], f"{p}.dnn")
    _refer(conn, "Site", spec["site"], f"{p}.site")
    net = ip_network(spec["cidr"])
    for other in fetch(conn, "Pool", where=[KEYS["Pool"] != name]):
        theirs = ip_network(other.spec["cidr"])
        if other.spec["dnn"] == spec["dnn"] and theirs.version == net.version and theirs.overlaps(net):
            raise InvalidArgument(
                f"{net} overlaps {theirs} of Pool {other.name!r} of DNN {spec['dnn']!r}", field=f"{p}.cidr"
            )
    if stored is None:
        return []
    in_pool = or_(SESSIONS.c.pool_v4_id == stored.id, SESSIONS.c.pool_v6_id == stored.id)
    for field in ("dnn", "site"):
        if spec[field] != stored.spec[field] and _count(conn, in_pool):
            raise FailedPrecondition(
                f"sessions hold addresses of pool {name} ({_some(_supis(conn, in_pool), 'of')}): "
                f"its {field} cannot change",
                field=f"{p}.{field}",
            )
    if (spec["cidr"], spec["prefix_length"]) == (stored.spec["cidr"], stored.spec["prefix_length"]):
        return []
    # The allocator the inventory will rebuild, tried here first: every held value must fit it.
    allocator = PoolAllocator(spec["cidr"], spec["prefix_length"] if net.version == 6 else None)
    for supi, value in _held(conn, stored.id):
        try:
            allocator.reserve(value)
        except AllocationError as exc:
            raise FailedPrecondition(
                f"{supi} holds {value}, which the new prefix cannot keep: {exc}", field=f"{p}.cidr"
            ) from None
    return [stored.id]


def _policy(conn: Connection, name: str, spec: Mapping[str, Any], stored: Stored | None, p: str) -> None:
    _refer(conn, "DNN", spec["dnn"], f"{p}.dnn")
    for other in fetch(conn, "Policy", where=[KEYS["Policy"] != name]):
        if (other.spec["dnn"], other.spec["snssai"]) == (spec["dnn"], spec["snssai"]):
            raise AlreadyExists(
                f"Policy {other.name!r} is already the policy of DNN {spec['dnn']!r} and slice {spec['snssai']!r}",
                field=f"{p}.snssai",
            )
    if stored is None or spec["dnn"] == stored.spec["dnn"]:
        return
    users = SESSIONS.c.policy_id == stored.id
    if _count(conn, users):
        raise FailedPrecondition(
            f"sessions use policy {name} ({_some(_supis(conn, users), 'of')}): its dnn cannot change", field=f"{p}.dnn"
        )


def _subscriber(conn: Connection, name: str, spec: Mapping[str, Any], raw: Mapping[str, Any], p: str) -> None:
    for dnn in spec["allowed_dnns"]:
        _refer(conn, "DNN", dnn, f"{p}.{_index(raw, 'allowed_dnns', dnn)}")
    _refer(conn, "Policy", spec["policy"], f"{p}.policy")
    for field in ("static_ipv4", "static_ipv6"):
        static = spec[field]
        if static is None:
            continue
        address = ip_network(static)
        theirs = [
            pool
            for pool in fetch(conn, "Pool")
            if pool.spec["dnn"] in spec["allowed_dnns"] and ip_network(pool.spec["cidr"]).version == address.version
        ]
        if theirs and not any(_holds(pool.spec, address) for pool in theirs):
            shown = ", ".join(f"{pool.name} {pool.spec['cidr']}" for pool in theirs)
            raise FailedPrecondition(f"{static} is in no pool of the subscriber's DNNs ({shown})", field=f"{p}.{field}")
        column = SUBSCRIBERS.c[field]
        for other in conn.execute(select(SUBSCRIBERS.c.supi, SUBSCRIBERS.c.allowed_dnns).where(column == static)):
            if other.supi != name and set(other.allowed_dnns or ()) & set(spec["allowed_dnns"]):
                raise AlreadyExists(f"{static} is also the static address of {other.supi}", field=f"{p}.{field}")


def _holds(pool: Mapping[str, Any], address: Any) -> bool:
    net = ip_network(pool["cidr"])
    if net.version != address.version or not address.subnet_of(net):
        return False
    # An IPv6 static prefix is one of the pool's per-UE prefixes.
    return net.version == 4 or address.prefixlen == pool["prefix_length"]


def served(conn: Connection, kind: str, spec: Mapping[str, Any], raw: Mapping[str, Any], path: str) -> None:
    """A UPF's DNNs exist: checked once the whole request is written, since DNNs come after UPFs
    in apply order (a request may add a UPF and the DNNs it serves)."""
    if kind == "UPF":
        for dnn in spec["network_instances"]:
            _refer(conn, "DNN", dnn, f"{path}.spec.{_index(raw, 'network_instances', dnn)}")


def check(
    conn: Connection,
    kind: str,
    name: str,
    spec: Mapping[str, Any],
    stored: Stored | None,
    raw: Mapping[str, Any],
    path: str,
) -> list[int]:
    """Check ``spec`` (normalized; ``raw`` as sent) against the database before it is written;
    returns the ids of pools whose allocator a commit must rebuild (a new CIDR or per-UE prefix
    length)."""
    p = f"{path}.spec"
    if kind == "UPF":
        _upf(conn, name, spec, stored, p)
    elif kind == "Pool":
        return _pool(conn, name, spec, stored, p)
    elif kind == "Policy":
        _policy(conn, name, spec, stored, p)
    elif kind == "Subscriber":
        _subscriber(conn, name, spec, raw, p)
    return []


def dependants(conn: Connection, kind: str, stored: Stored) -> str | None:
    """What depends on an object (it cannot be deleted while anything does), in words; None if nothing."""
    found: list[str] = []

    def add(what: str, names: Callable[[], Sequence[str]]) -> None:
        listed = list(names())
        if listed:
            found.append(_some(listed, what))

    def named(other: str, *where: Any) -> Callable[[], list[str]]:
        return lambda: [s.name for s in fetch(conn, other, where=where, limit=_SHOWN + 1)]

    s = SESSIONS.c
    if kind == "Site":
        add("UPF", named("UPF", TABLES["UPF"].c.site_id == stored.id))
        add("Pool", named("Pool", TABLES["Pool"].c.site_id == stored.id))
    elif kind == "UPF":
        add("sessions of", lambda: _supis(conn, s.upf_id == stored.id))
    elif kind == "DNN":
        add("Pool", named("Pool", TABLES["Pool"].c.dnn_id == stored.id))
        add("Policy", named("Policy", TABLES["Policy"].c.dnn_id == stored.id))
        add("UPF", lambda: _listing(conn, "UPF", "network_instances", stored.name))
        add("Subscriber", lambda: _listing(conn, "Subscriber", "allowed_dnns", stored.name))
        add("sessions of", lambda: _supis(conn, s.dnn == stored.name))
    elif kind == "Pool":
        add("sessions of", lambda: _supis(conn, or_(s.pool_v4_id == stored.id, s.pool_v6_id == stored.id)))
    elif kind == "Policy":
        add("Subscriber", named("Subscriber", TABLES["Subscriber"].c.policy_id == stored.id))
        add("sessions of", lambda: _supis(conn, s.policy_id == stored.id))
    return "; ".join(found) or None


def _listing(conn: Connection, kind: str, field: str, value: str) -> list[str]:
    # The LIKE matches a quoted list element exactly (DNN names need no JSON escaping).
    found = fetch(conn, kind, where=[json_list_has(TABLES[kind].c[field], value)], limit=_SHOWN + 1)
    return [s.name for s in found if value in s.spec[field]]
