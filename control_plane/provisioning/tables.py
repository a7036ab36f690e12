"""The provisioning tables as objects {kind, name, spec}: read, page, write and delete.

Plain functions of a Connection (run on the store's worker, like :mod:`control_plane.repo`).
A spec read back is normalized by :func:`edge_sites.schema.validate_object`, exactly as
an incoming one is, so comparing the two tells whether an Apply changes anything.
References are names in specs and ids in rows; this module translates both ways.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any, cast

from sqlalchemy import Column, ColumnElement, Connection, Row, String, Table, delete, false, insert, select, update

from control_plane.errors import InvalidArgument
from db.models import Dnn, EdgeRule, IpPool, Policy, Session, Site, Subscriber, Upf
from edge_sites.schema import FIELDS, SchemaError, validate_object

__all__ = [
    "EDGE_RULES",
    "KEYS",
    "SESSIONS",
    "TABLES",
    "Stored",
    "fetch",
    "get",
    "id_of",
    "json_list_has",
    "page",
    "remove",
    "write",
]

SITES = cast(Table, Site.__table__)
UPFS = cast(Table, Upf.__table__)
DNNS = cast(Table, Dnn.__table__)
POOLS = cast(Table, IpPool.__table__)
POLICIES = cast(Table, Policy.__table__)
EDGE_RULES = cast(Table, EdgeRule.__table__)
SUBSCRIBERS = cast(Table, Subscriber.__table__)
SESSIONS = cast(Table, Session.__table__)

TABLES: Mapping[str, Table] = {
    "Site": SITES,
    "UPF": UPFS,
    "DNN": DNNS,
    "Pool": POOLS,
    "Policy": POLICIES,
    "Subscriber": SUBSCRIBERS,
}
#: The column holding each kind's key (its `name`).
KEYS: Mapping[str, Column[Any]] = {
    "Site": SITES.c.name,
    "UPF": UPFS.c.node_id,
    "DNN": DNNS.c.name,
    "Pool": POOLS.c.name,
    "Policy": POLICIES.c.name,
    "Subscriber": SUBSCRIBERS.c.supi,
}
_EDGE_RULE_FIELDS = ("name", "precedence", "flow_descriptions", "network_instance")


@dataclass(frozen=True, slots=True)
class Stored:
    """One object as the database holds it: its row id, name and normalized spec."""

    id: int
    name: str
    spec: dict[str, Any]


def id_of(conn: Connection, kind: str, name: str) -> int | None:
    key = KEYS[kind]
    return conn.execute(select(key.table.c.id).where(key == name)).scalar()


def json_list_has(column: Column[Any], value: str) -> ColumnElement[bool]:
    """A first cut for "``value`` is in the JSON list ``column``" that SQLite and PostgreSQL both run.

    Callers check the decoded list too: this only spares reading rows that cannot match.
    The values it is used for (DNN names) have no LIKE wildcards (TS 23.003 §9.1).
    """
    return column.cast(String).like(f'%"{value}"%')


def _names(conn: Connection, table: Table) -> dict[int, str]:
    return {row.id: row.name for row in conn.execute(select(table.c.id, table.c.name))}


def _normalized(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    # Stored values written by other means (tests, older versions) may be in another form: the
    # validator gives them the form an incoming spec has. One that no longer validates is shown
    # as it is (an Apply then reports the fields it rewrites).
    try:
        return validate_object(kind, name, {k: v for k, v in spec.items() if v is not None})
    except SchemaError:
        return {f.name: spec.get(f.name) for f in FIELDS[kind]}


def _specs(conn: Connection, kind: str, rows: Sequence[Row[Any]]) -> list[Stored]:
    sites = _names(conn, SITES) if kind in ("UPF", "Pool") else {}
    dnns = _names(conn, DNNS) if kind in ("Pool", "Policy") else {}
    policies = _names(conn, POLICIES) if kind == "Subscriber" else {}
    edge: dict[int, list[dict[str, Any]]] = {}
    if kind == "Policy":
        query = select(EDGE_RULES).where(EDGE_RULES.c.policy_id.in_([r.id for r in rows])).order_by(EDGE_RULES.c.id)
        for rule in conn.execute(query):
            edge.setdefault(rule.policy_id, []).append({f: getattr(rule, f) for f in _EDGE_RULE_FIELDS})
    out = []
    for row in rows:
        spec: dict[str, Any] = {}
        for f in FIELDS[kind]:
            if f.name == "site" and kind != "Site":
                spec["site"] = sites.get(row.site_id) if row.site_id is not None else None
            elif f.name == "dnn":
                spec["dnn"] = dnns[row.dnn_id]
            elif f.name == "policy":
                spec["policy"] = policies.get(row.policy_id) if row.policy_id is not None else None
            elif f.name == "edge_rules":
                spec["edge_rules"] = edge.get(row.id, [])
            else:
                value = getattr(row, f.name)
                # Enum columns come back as StrEnum members, JSON lists as lists.
                spec[f.name] = str(value) if isinstance(value, str) else value
        name = getattr(row, KEYS[kind].name)
        out.append(Stored(row.id, name, _normalized(kind, name, spec)))
    return out


def fetch(
    conn: Connection,
    kind: str,
    *,
    where: Iterable[ColumnElement[bool]] = (),
    after: str | None = None,
    limit: int | None = None,
) -> list[Stored]:
    """Objects of ``kind`` matching ``where``, in name order (after ``after``, at most ``limit``)."""
    key = KEYS[kind]
    query = select(TABLES[kind]).where(*where)
    if after is not None:
        query = query.where(key > after)
    query = query.order_by(key)
    if limit is not None:
        query = query.limit(limit)
    rows = list(conn.execute(query))
    return _specs(conn, kind, rows) if rows else []


def get(conn: Connection, kind: str, name: str) -> Stored | None:
    found = fetch(conn, kind, where=[KEYS[kind] == name])
    return found[0] if found else None


def page(
    conn: Connection, kind: str, *, after: str | None, limit: int, site: str | None, dnn: str | None
) -> list[Stored]:
    """Up to ``limit`` objects after ``after`` that pass the filters; InvalidArgument for a filter
    that does not apply to ``kind``."""
    where: list[ColumnElement[bool]] = []
    in_list: str | None = None  # a JSON list field that must hold `dnn`
    if site is not None:
        if kind not in ("UPF", "Pool"):
            raise InvalidArgument(f"the site filter applies to UPF and Pool, not {kind}", field="site")
        site_id = id_of(conn, "Site", site)
        where.append(TABLES[kind].c.site_id == site_id if site_id is not None else false())
    if dnn is not None:
        if kind in ("Pool", "Policy"):
            dnn_id = id_of(conn, "DNN", dnn)
            where.append(TABLES[kind].c.dnn_id == dnn_id if dnn_id is not None else false())
        elif kind in ("UPF", "Subscriber"):
            in_list = "network_instances" if kind == "UPF" else "allowed_dnns"
            where.append(json_list_has(TABLES[kind].c[in_list], dnn))
        else:
            raise InvalidArgument(
                f"the dnn filter applies to UPF, Pool, Policy and Subscriber, not {kind}", field="dnn"
            )
    out: list[Stored] = []
    while len(out) < limit:
        chunk = fetch(conn, kind, where=where, after=after, limit=limit)
        out += [s for s in chunk if in_list is None or dnn in s.spec[in_list]]
        if len(chunk) < limit:
            break
        after = chunk[-1].name
    return out[:limit]


def _columns(conn: Connection, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The row values of a normalized ``spec`` whose references exist (checked before)."""
    values = {k: v for k, v in spec.items() if k not in ("site", "dnn", "policy", "edge_rules")}
    if "site" in spec:
        values["site_id"] = id_of(conn, "Site", spec["site"]) if spec["site"] is not None else None
    if "dnn" in spec:
        values["dnn_id"] = id_of(conn, "DNN", spec["dnn"])
    if "policy" in spec:
        values["policy_id"] = id_of(conn, "Policy", spec["policy"]) if spec["policy"] is not None else None
    if kind == "Pool":
        values["family"] = ip_network(spec["cidr"]).version
    return values


def write(conn: Connection, kind: str, name: str, spec: Mapping[str, Any], stored: Stored | None) -> int:
    """Insert (``stored`` None) or update the object; returns its id. Only called for a change."""
    table, key = TABLES[kind], KEYS[kind]
    values = _columns(conn, kind, spec)
    if stored is None:
        result = conn.execute(insert(table).values({key.name: name, **values}))
        assert result.inserted_primary_key is not None
        object_id = int(result.inserted_primary_key[0])
    else:
        object_id = stored.id
        conn.execute(update(table).where(table.c.id == object_id).values(values))
    if kind == "Policy" and (stored is None or stored.spec["edge_rules"] != spec["edge_rules"]):
        conn.execute(delete(EDGE_RULES).where(EDGE_RULES.c.policy_id == object_id))
        rules = [{"policy_id": object_id, **rule} for rule in spec["edge_rules"]]
        if rules:
            conn.execute(insert(EDGE_RULES), rules)
    return object_id


def remove(conn: Connection, kind: str, stored: Stored) -> None:
    if kind == "Policy":
        conn.execute(delete(EDGE_RULES).where(EDGE_RULES.c.policy_id == stored.id))
    table = TABLES[kind]
    conn.execute(delete(table).where(table.c.id == stored.id))
