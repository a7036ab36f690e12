"""The bulk statements of control_plane.repo (one statement per batch) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from control_plane import repo
from db.engine import make_engine, upgrade
from db.models import Event, Session, SessionRule, Subscriber


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def values(n: int) -> dict[str, Any]:
    return {
        "supi": f"imsi-00101{n:010d}", "pdu_session_id": 1, "dnn": "internet", "snssai": "1", "tai": "001-01-000001",
        "ue_ipv4": f"10.0.0.{n + 1}", "cp_seid": 100 + n, "state": "establishing", "epoch": 0,
    }  # fmt: skip


def rules(n: int) -> list[repo.RuleRow]:
    return [("pdr", 1, {"n": n}), ("far", 1, {"n": n}), ("far", 2, {"n": n})]


def test_insert_sessions_returns_ids_in_order_with_their_rules(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = repo.insert_sessions(conn, [(values(n), rules(n)) for n in range(5)])
        by_id = {row.id: row.cp_seid for row in conn.execute(select(Session.id, Session.cp_seid))}
        bodies = conn.execute(select(SessionRule.session_id, SessionRule.body)).all()
    assert [by_id[i] for i in ids] == [100 + n for n in range(5)]
    assert len(bodies) == 15
    assert all(body == {"n": by_id[session_id] - 100} for session_id, body in bodies)


def test_rule_bodies_given_as_json_text_are_stored_as_json(engine: Engine) -> None:
    with engine.begin() as conn:
        (sid,) = repo.insert_sessions(conn, [(values(0), [("pdr", 1, '{"n":[1,2]}'), ("urr", 7, {"m": None})])])
        assert repo.session_rules(conn, sid) == [("pdr", 1, {"n": [1, 2]}), ("urr", 7, {"m": None})]
        with pytest.raises(ValueError, match="not one of"):
            repo.insert_sessions(conn, [(values(1), [("bar", 1, "{}")])])


def test_establishment_lookups_answer_each_key(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Subscriber), [{"supi": values(n)["supi"], "allowed_dnns": []} for n in (0, 1)])
        repo.insert_sessions(conn, [(values(1), rules(1))])
        found = repo.establishment_lookups(conn, [(values(0)["supi"], 1), (values(1)["supi"], 1), ("imsi-0010199", 1)])
    (sub0, ses0), (sub1, ses1), (sub2, ses2) = found
    assert sub0 is not None and sub0["supi"] == values(0)["supi"] and ses0 is None
    assert sub1 is not None and ses1 is not None and ses1["cp_seid"] == 101
    assert sub2 is None and ses2 is None


def test_update_sessions_bumps_versions_and_records_events(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = repo.insert_sessions(conn, [(values(n), rules(n)) for n in range(3)])
    created: tuple[str, dict[str, Any]] = ("session.created", {})
    updates = [
        repo.SessionUpdate(i, 1, values(n)["supi"], {"state": "active", "up_seid": 7 + n}, event=created)
        for n, i in enumerate(ids)
    ]
    stale = repo.SessionUpdate(ids[1], 5, values(1)["supi"], {"state": "deleting"})
    with pytest.raises(repo.StaleVersion), engine.begin() as conn:  # the store rolls such a batch back
        repo.update_sessions(conn, [*updates, stale])
    with engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(Event)).scalar_one() == 0
        assert repo.update_sessions(conn, updates) == [2, 2, 2]
        replace = repo.SessionUpdate(ids[0], 2, values(0)["supi"], {"state": "modifying"}, rules=[("pdr", 9, {})])
        assert repo.update_sessions(conn, [replace]) == [3]
        rows = {r.id: r for r in conn.execute(select(Session.id, Session.state, Session.up_seid, Session.version))}
        kept = conn.execute(select(SessionRule.rule_id).where(SessionRule.session_id == ids[0])).scalars().all()
        events = conn.execute(select(Event.kind, Event.session_id)).all()
    assert [(rows[i].state, rows[i].up_seid, rows[i].version) for i in ids] == [
        ("modifying", 7, 3), ("active", 8, 2), ("active", 9, 2),
    ]  # fmt: skip
    assert kept == [9]  # the rules were replaced
    assert sorted(events) == sorted(("session.created", i) for i in ids)
