"""Database operations of the session procedures: plain functions of a Connection.

Each function here is one step a procedure persists, run by :class:`~control_plane.store.Store`
on its worker (several per transaction). They use SQLAlchemy Core on the ORM's
tables: no identity map to grow with the number of sessions. The steps of an
establishment take every caller of a batch at once (``Store.run_bulk``): one
statement per table for all of them. ``version`` is checked and bumped by hand (optimistic concurrency): a stale
update raises :class:`StaleVersion` instead of silently overwriting.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, RowMapping, Table, Update, bindparam, delete, insert, select, update

from db.models import (
    ControlPlaneNode,
    Event,
    RuleKind,
    Session,
    SessionRule,
    StaleSession,
    Subscriber,
    Upf,
    UsageRecord,
)

__all__ = [
    "SessionUpdate",
    "StaleVersion",
    "delete_session",
    "establishment_lookups",
    "insert_event",
    "insert_session",
    "insert_sessions",
    "insert_usage",
    "reserve_seids",
    "session_by_cp_seid",
    "session_by_key",
    "session_rules",
    "sessions_of_upf",
    "update_sessions",
    "usage_of",
]

#: (kind, rule ID, body): the body as a JSON object, or as its JSON text already.
RuleRow = tuple[str, int, Mapping[str, Any] | str]
_SESSIONS = cast(Table, Session.__table__)
_INSERT_EVENT = insert(cast(Table, Event.__table__))
_SUBSCRIBERS = cast(Table, Subscriber.__table__)
_RULES = cast(Table, SessionRule.__table__)
# Bulk forms (control_plane.store.Store.run_bulk): one statement for a whole batch.
_SUBSCRIBERS_IN = select(_SUBSCRIBERS).where(_SUBSCRIBERS.c.supi.in_(bindparam("supis", expanding=True)))
_SESSIONS_OF_SUPIS = select(_SESSIONS).where(_SESSIONS.c.supi.in_(bindparam("supis", expanding=True)))
# Ids come back keyed by the (unique) CP SEID rather than in parameter order: ordered
# RETURNING makes SQLAlchemy insert SQLite rows one statement each, unordered batches them.
_INSERT_SESSIONS = insert(_SESSIONS).returning(_SESSIONS.c.cp_seid, _SESSIONS.c.id)
_DELETE_RULES_OF = delete(_RULES).where(_RULES.c.session_id.in_(bindparam("ids", expanding=True)))
_UPDATES: dict[tuple[str, ...], Update] = {}


class StaleVersion(RuntimeError):
    """The session changed (or went) since it was read: its version moved on."""


def now() -> datetime:
    return datetime.now(UTC)


def reserve_seids(conn: Connection, node_id: str, block: int, recovery_time_stamp: int) -> tuple[int, int]:
    """Move the CP SEID high-water mark on by ``block``; returns (first, the stamp kept).

    The row is created on first use, with the Recovery Time Stamp the CP keeps for
    as long as its database lives (TS 23.007 §19A: a new stamp tells peers state was lost).
    """
    row = conn.execute(select(ControlPlaneNode.__table__).where(ControlPlaneNode.id == 1)).mappings().first()
    if row is None:
        conn.execute(
            insert(ControlPlaneNode).values(
                id=1, node_id=node_id, recovery_time_stamp=recovery_time_stamp, next_seid=1 + block, created_at=now()
            )
        )
        return 1, recovery_time_stamp
    first = int(row["next_seid"])
    conn.execute(
        update(ControlPlaneNode).where(ControlPlaneNode.id == 1).values(next_seid=first + block, node_id=node_id)
    )
    return first, int(row["recovery_time_stamp"])


def insert_session(conn: Connection, values: Mapping[str, Any], rules: Iterable[RuleRow]) -> int:
    """A new session row with its desired rules; returns its id."""
    return insert_sessions(conn, [(values, rules)])[0]


def insert_sessions(conn: Connection, items: Sequence[tuple[Mapping[str, Any], Iterable[RuleRow]]]) -> list[int]:
    """New session rows (all with the same columns) and their rules, in one statement per table; their ids."""
    stamp = now()
    rows = [{"version": 1, "created_at": stamp, "updated_at": stamp, **values} for values, _ in items]
    by_seid = {int(seid): int(i) for seid, i in conn.execute(_INSERT_SESSIONS, rows)}
    ids = [by_seid[int(row["cp_seid"])] for row in rows]
    _insert_rules(
        conn,
        [
            (session_id, kind, rule_id, body)
            for session_id, (_, session_rules) in zip(ids, items, strict=True)
            for kind, rule_id, body in session_rules
        ],
    )
    return ids


def _insert_rules(conn: Connection, rows: Sequence[tuple[int, str, int, Mapping[str, Any] | str]]) -> None:
    """``session_rules`` rows, through the database driver in one executemany.

    Several rows per session: SQLAlchemy's per-row parameter processing (the kind enum, the
    JSON body) cost more of the control plane's CPU than the insert itself, so the statement
    is compiled once per dialect and the driver gets plain values (JSON as text: SQLite stores
    text, PostgreSQL casts the untyped parameter to json).
    """
    if not rows:
        return
    # The driver skips the column type that checks kinds (db.base.StrEnumType: no CHECK in the database).
    unknown = {kind for _, kind, _, _ in rows} - _RULE_KINDS
    if unknown:
        raise ValueError(f"session rule kind {min(unknown)!r} is not one of {sorted(_RULE_KINDS)}")
    sql, index = _raw_rule_insert(conn)
    texts = [(sid, kind, rid, body if isinstance(body, str) else json.dumps(body)) for sid, kind, rid, body in rows]
    if index is None:  # a named paramstyle (psycopg's pyformat)
        conn.exec_driver_sql(sql, [dict(zip(_RULE_COLUMNS, row, strict=True)) for row in texts])
    else:
        conn.exec_driver_sql(sql, [tuple(row[i] for i in index) for row in texts])


_RULE_COLUMNS = ("session_id", "kind", "rule_id", "body")
_RULE_KINDS = frozenset(kind.value for kind in RuleKind)
_RAW_RULE_INSERTS: dict[str, tuple[str, tuple[int, ...] | None]] = {}


def _raw_rule_insert(conn: Connection) -> tuple[str, tuple[int, ...] | None]:
    """The statement in the dialect's paramstyle and, when positional, the columns' order in it."""
    dialect = conn.dialect
    key = f"{dialect.name}+{dialect.driver}"
    found = _RAW_RULE_INSERTS.get(key)
    if found is None:
        statement = insert(_RULES).values({column: bindparam(column) for column in _RULE_COLUMNS})
        compiled = statement.compile(dialect=dialect)
        order = compiled.positiontup
        index = None if order is None else tuple(_RULE_COLUMNS.index(name) for name in order)
        found = _RAW_RULE_INSERTS[key] = (compiled.string, index)
    return found


def establishment_lookups(
    conn: Connection, keys: Sequence[tuple[str, int]]
) -> list[tuple[RowMapping | None, RowMapping | None]]:
    """Bulk lookup for establishments: per (SUPI, PDU Session ID), the subscriber and the session with that key."""
    supis = sorted({supi for supi, _ in keys})
    subscribers = {row["supi"]: row for row in conn.execute(_SUBSCRIBERS_IN, {"supis": supis}).mappings()}
    sessions = {
        (row["supi"], row["pdu_session_id"]): row
        for row in conn.execute(_SESSIONS_OF_SUPIS, {"supis": supis}).mappings()
    }
    return [(subscribers.get(supi), sessions.get((supi, psi))) for supi, psi in keys]


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    """One :func:`update_sessions` change: the row at ``version`` gets ``values`` (and ``rules``,
    when given), and an event ``(kind, detail)`` is recorded with it when given."""

    session_id: int
    version: int
    supi: str
    values: Mapping[str, Any]
    rules: Sequence[RuleRow] | None = None
    event: tuple[str, Mapping[str, Any]] | None = None


def _update_statement(columns: tuple[str, ...]) -> Update:
    # One compiled form per set of changed columns (a handful: activation, handover, ...).
    statement = _UPDATES.get(columns)
    if statement is None:
        table = _SESSIONS
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
            .values(
                {column: bindparam(f"b_{column}") for column in columns}
                | {"version": bindparam("b_new_version"), "updated_at": bindparam("b_updated_at")}
            )
        )
        _UPDATES[columns] = statement
    return statement


def update_sessions(conn: Connection, items: Sequence[SessionUpdate]) -> list[int]:
    """Change sessions whose versions are still the ones given (with their events); the new versions.

    Raises :class:`StaleVersion` when any row's version moved on (the store then runs each alone,
    so the stale one fails by itself).
    """
    stamp = now()
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item in items:
        params = {f"b_{column}": value for column, value in item.values.items()}
        params.update(b_id=item.session_id, b_version=item.version, b_new_version=item.version + 1, b_updated_at=stamp)
        by_columns.setdefault(tuple(sorted(item.values)), []).append(params)
    for columns, params_list in by_columns.items():
        result = conn.execute(_update_statement(columns), params_list)
        if result.rowcount != len(params_list):
            raise StaleVersion(f"{len(params_list) - result.rowcount} of {len(params_list)} sessions changed meanwhile")
    replaced = [item for item in items if item.rules is not None]
    if replaced:
        conn.execute(_DELETE_RULES_OF, {"ids": [item.session_id for item in replaced]})
        rows = [(item.session_id, kind, rid, body) for item in replaced for kind, rid, body in item.rules or ()]
        _insert_rules(conn, rows)
    events = [
        _event_row(event[0], item.session_id, item.supi, None, event[1], stamp)
        for item in items
        if (event := item.event) is not None
    ]
    if events:
        conn.execute(_INSERT_EVENT, events)
    return [item.version + 1 for item in items]


def delete_session(conn: Connection, session_id: int) -> None:
    conn.execute(delete(Session).where(Session.id == session_id))


def session_by_key(conn: Connection, supi: str, pdu_session_id: int) -> RowMapping | None:
    return (
        conn.execute(select(Session.__table__).where(Session.supi == supi, Session.pdu_session_id == pdu_session_id))
        .mappings()
        .first()
    )


def session_by_cp_seid(conn: Connection, cp_seid: int) -> RowMapping | None:
    return conn.execute(select(Session.__table__).where(Session.cp_seid == cp_seid)).mappings().first()


def session_rules(conn: Connection, session_id: int) -> list[RuleRow]:
    rows = conn.execute(
        select(SessionRule.kind, SessionRule.rule_id, SessionRule.body).where(SessionRule.session_id == session_id)
    )
    return [(str(kind), int(rule_id), dict(body)) for kind, rule_id, body in rows]


def sessions_of_upf(conn: Connection, upf_id: int, states: Sequence[str] | None = None) -> list[RowMapping]:
    query = select(Session.__table__).where(Session.upf_id == upf_id)
    if states is not None:
        query = query.where(Session.state.in_(states))
    return list(conn.execute(query.order_by(Session.id)).mappings())


def sessions_page(
    conn: Connection, *, upf_id: int | None, state: str | None, limit: int, after: int
) -> list[RowMapping]:
    # The cursor is the CP SEID: unique and never reused, so pages are stable.
    query = select(Session.__table__).where(Session.cp_seid > after)
    if upf_id is not None:
        query = query.where(Session.upf_id == upf_id)
    if state is not None:
        query = query.where(Session.state == state)
    return list(conn.execute(query.order_by(Session.cp_seid).limit(limit)).mappings())


def allocations(conn: Connection) -> list[RowMapping]:
    """What every session holds (UE IPs, TEIDs, SEIDs): allocators are rebuilt from this at start."""
    return list(
        conn.execute(
            select(
                Session.id,
                Session.dnn,
                Session.ue_ipv4,
                Session.ue_ipv6,
                Session.pool_v4_id,
                Session.pool_v6_id,
                Session.upf_id,
                Session.n3_teid,
                Session.cp_seid,
                Session.state,
            )
        ).mappings()
    )


def insert_usage(conn: Connection, records: Sequence[Mapping[str, Any]]) -> int:
    """Store usage records once each (unique cp_seid, epoch, URR ID, UR-SEQN); returns how many were new.

    A UPF that retransmits a Session Report Request (its response was lost) sends
    the same UR-SEQN again (TS 29.244 §8.2.77): that record exists and is skipped.
    """
    stored = 0
    seen: set[tuple[int, int, int, int]] = set()
    for record in records:
        key = (int(record["cp_seid"]), int(record["epoch"]), int(record["urr_id"]), int(record["ur_seqn"]))
        if key in seen:
            continue
        seen.add(key)
        # The store is the only writer, so look-then-insert cannot race; the unique
        # constraint is the backstop.
        exists = conn.execute(
            select(UsageRecord.id).where(
                UsageRecord.cp_seid == key[0],
                UsageRecord.epoch == key[1],
                UsageRecord.urr_id == key[2],
                UsageRecord.ur_seqn == key[3],
            )
        ).first()
        if exists is None:
            conn.execute(insert(UsageRecord).values(**record, recorded_at=now()))
            stored += 1
    return stored


def usage_of(conn: Connection, session_id: int | None, cp_seids: Sequence[int]) -> list[RowMapping]:
    query = select(UsageRecord.__table__)
    if session_id is not None:
        query = query.where((UsageRecord.session_id == session_id) | UsageRecord.cp_seid.in_(cp_seids))
    else:
        query = query.where(UsageRecord.cp_seid.in_(cp_seids))
    return list(conn.execute(query.order_by(UsageRecord.id)).mappings())


def insert_event(
    conn: Connection,
    kind: str,
    *,
    session_id: int | None = None,
    supi: str | None = None,
    upf_node_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(_INSERT_EVENT, _event_row(kind, session_id, supi, upf_node_id, detail, now()))


def _event_row(
    kind: str,
    session_id: int | None,
    supi: str | None,
    upf_node_id: str | None,
    detail: Mapping[str, Any] | None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "at": at,
        "kind": kind,
        "session_id": session_id,
        "supi": supi,
        "upf_node_id": upf_node_id,
        "detail": dict(detail or {}),
    }


def mark_upf_sessions(conn: Connection, upf_id: int, old_state: str, new_state: str) -> int:
    """Every session of a UPF in ``old_state`` moves to ``new_state``; returns how many."""
    result = conn.execute(
        update(Session)
        .where(Session.upf_id == upf_id, Session.state == old_state)
        .values(state=new_state, version=Session.version + 1, updated_at=now())
    )
    return int(result.rowcount)


def add_stale_session(conn: Connection, upf_id: int, up_seid: int | None, cp_seid: int) -> None:
    """A session moved away from a UPF that may still hold it: delete it there when it is back."""
    if up_seid is not None:
        conn.execute(insert(StaleSession).values(upf_id=upf_id, up_seid=up_seid, cp_seid=cp_seid, created_at=now()))


def stale_sessions(conn: Connection, upf_id: int) -> list[tuple[int, int]]:
    rows = conn.execute(select(StaleSession.id, StaleSession.up_seid).where(StaleSession.upf_id == upf_id))
    return [(int(i), int(seid)) for i, seid in rows]


def forget_stale_session(conn: Connection, *, stale_id: int) -> None:
    conn.execute(delete(StaleSession).where(StaleSession.id == stale_id))


def record_upf_state(conn: Connection, upf_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(update(Upf).where(Upf.id == upf_id).values(**values, updated_at=now()))
