"""The database itself refuses double allocations, keeps usage after a session, and detects lost updates.

Each test runs on SQLite and on a throwaway PostgreSQL server, on a schema built by the migrations
(not by ``create_all``), so the constraints tested are the ones production databases have.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from db.models import (
    Dnn,
    IpPool,
    Policy,
    RuleKind,
    Session,
    SessionRule,
    SessionState,
    Site,
    SiteKind,
    Upf,
    UsageRecord,
)


@pytest.fixture
def orm(migrated_engine: Engine) -> sessionmaker[OrmSession]:
    return sessionmaker(migrated_engine, expire_on_commit=False)


@pytest.fixture
def upf_ids(orm: sessionmaker[OrmSession]) -> Iterator[tuple[int, int]]:
    """Two UPFs at one edge site, a DNN with a pool and a policy."""
    with orm.begin() as db:
        site = Site(name="edge-a", kind=SiteKind.EDGE, region="north", tais=["001-01-000001"])
        upfs = [Upf(node_id=f"upf{i}.edge-a", n4_address=f"10.0.0.{i}", site=site, capacity=1000) for i in (1, 2)]
        dnn = Dnn(name="internet", network_instance="internet", snssais=["1-000001"])
        db.add_all([site, *upfs, dnn])
        db.add(IpPool(name="internet-v4", dnn=dnn, site=site, cidr="198.19.0.0/16", family=4, prefix_length=32))
        db.add(
            Policy(
                name="default", dnn=dnn, snssai="*", qfi=9, five_qi=9, session_ambr_ul_kbps=1, session_ambr_dl_kbps=1
            )
        )
        db.flush()
        ids = (upfs[0].id, upfs[1].id)
    yield ids


def new_session(n: int, upf_id: int | None, **overrides: Any) -> Session:
    values: dict[str, Any] = {
        "supi": f"imsi-00101000000{n:04d}",
        "pdu_session_id": 1,
        "dnn": "internet",
        "snssai": "1-000001",
        "tai": "001-01-000001",
        "ue_ipv4": f"198.19.0.{n}",
        "upf_id": upf_id,
        "cp_seid": 1000 + n,
        "n3_teid": 100 + n,
        "state": SessionState.ESTABLISHING,
    }
    values.update(overrides)
    return Session(**values)


def refused(orm: sessionmaker[OrmSession], *rows: Any) -> bool:
    """True when the database refuses to store ``rows`` (an IntegrityError on commit)."""
    try:
        with orm.begin() as db:
            db.add_all(rows)
    except IntegrityError:
        return True
    return False


def test_a_session_round_trips_with_enums_json_and_aware_timestamps(
    orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]
) -> None:
    with orm.begin() as db:
        db.add(new_session(1, upf_ids[0], cp_seid=2**63 - 1, n3_teid=2**32 - 1, gnb_teid=2**32 - 1))
    with orm() as db:
        session = db.scalars(select(Session)).one()
        upf = db.get(Upf, upf_ids[0])
        site = db.scalars(select(Site)).one()
    assert session.state is SessionState.ESTABLISHING
    assert (session.cp_seid, session.n3_teid, session.version, session.epoch) == (2**63 - 1, 2**32 - 1, 1, 0)
    assert session.created_at.tzinfo is not None and session.created_at.utcoffset() == timedelta(0)
    assert upf is not None and (upf.n4_port, upf.admin_state.value, upf.health.value) == (8805, "enabled", "unknown")
    assert site.tais == ["001-01-000001"]


def test_naive_timestamps_and_unknown_enum_values_are_refused(
    orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]
) -> None:
    with pytest.raises(StatementError, match="naive datetime"), orm.begin() as db:
        db.add(new_session(1, upf_ids[0], created_at=datetime(2026, 1, 1)))
    with pytest.raises(StatementError, match="'established' is not a valid SessionState"), orm.begin() as db:
        db.add(new_session(1, upf_ids[0], state="established"))
    with orm.begin() as db:
        db.add(new_session(1, upf_ids[0], created_at=datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))))
    with orm() as db:
        assert db.scalars(select(Session.created_at)).one() == datetime(2026, 1, 1, tzinfo=UTC)


def test_the_same_ue_ipv4_twice_in_one_dnn_is_refused(orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]) -> None:
    assert not refused(orm, new_session(1, upf_ids[0], ue_ipv4="198.19.0.7"))
    assert refused(orm, new_session(2, upf_ids[0], ue_ipv4="198.19.0.7"))
    # The same address in another DNN is another address.
    assert not refused(orm, new_session(3, upf_ids[0], ue_ipv4="198.19.0.7", dnn="ims"))
    # Sessions without an IPv4 address (IPv6-only) do not collide on NULL.
    assert not refused(orm, new_session(4, upf_ids[0], ue_ipv4=None), new_session(5, upf_ids[0], ue_ipv4=None))


def test_the_same_ue_ipv6_prefix_twice_in_one_dnn_is_refused(
    orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]
) -> None:
    assert not refused(orm, new_session(1, upf_ids[0], ue_ipv6="2001:db8:0:1::/64"))
    assert refused(orm, new_session(2, upf_ids[0], ue_ipv6="2001:db8:0:1::/64"))


def test_the_same_n3_teid_twice_on_one_upf_is_refused(orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]) -> None:
    assert not refused(orm, new_session(1, upf_ids[0], n3_teid=77))
    assert refused(orm, new_session(2, upf_ids[0], n3_teid=77))
    assert not refused(orm, new_session(3, upf_ids[1], n3_teid=77))  # another UPF's TEID space


def test_the_same_cp_seid_twice_is_refused(orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]) -> None:
    assert not refused(orm, new_session(1, upf_ids[0], cp_seid=5))
    assert refused(orm, new_session(2, upf_ids[1], cp_seid=5))


def test_the_same_supi_and_pdu_session_id_twice_is_refused(
    orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]
) -> None:
    assert not refused(orm, new_session(1, upf_ids[0]))
    assert refused(orm, new_session(2, upf_ids[0], supi=new_session(1, None).supi))


def usage(n: int, **overrides: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "cp_seid": 1001,
        "epoch": 0,
        "supi": "imsi-001010000000001",
        "upf_node_id": "upf1.edge-a",
        "urr_id": 1,
        "ur_seqn": n,
        "volume_total": 1500,
    }
    values.update(overrides)
    return UsageRecord(**values)


def test_a_usage_report_is_stored_once_per_ur_seqn(orm: sessionmaker[OrmSession]) -> None:
    assert not refused(orm, usage(0), usage(1), usage(0, epoch=1), usage(0, urr_id=2), usage(0, cp_seid=9))
    assert refused(orm, usage(1))  # a retransmitted report
    assert not refused(orm, usage(2, urr_id=2**32 - 1, ur_seqn=2**32 - 1))  # 32-bit unsigned on the wire


def test_foreign_keys_are_enforced(orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]) -> None:
    assert refused(orm, new_session(1, upf_id=max(upf_ids) + 100))
    assert not refused(orm, new_session(1, upf_ids[0]))
    # A UPF that still carries sessions cannot be deleted (RESTRICT).
    with pytest.raises(IntegrityError), orm.begin() as db:
        db.execute(delete(Upf).where(Upf.id == upf_ids[0]))
    with orm.begin() as db:
        db.execute(delete(Upf).where(Upf.id == upf_ids[1]))


def add_session_with_rules_and_usage(orm: sessionmaker[OrmSession], upf_id: int) -> int:
    with orm.begin() as db:
        session = new_session(1, upf_id)
        db.add(session)
        db.flush()
        db.add_all(
            [
                SessionRule(session_id=session.id, kind=RuleKind.PDR, rule_id=1, body={"pdr_id": 1}),
                SessionRule(session_id=session.id, kind=RuleKind.FAR, rule_id=0x80000001, body={"far_id": 1}),
                usage(0, session_id=session.id, final=True),
            ]
        )
        return session.id


def test_deleting_a_session_deletes_its_rules_and_keeps_its_usage(
    orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]
) -> None:
    session_id = add_session_with_rules_and_usage(orm, upf_ids[0])
    # A plain DELETE (not the ORM's cascade): the database does the cascading.
    with orm.begin() as db:
        db.execute(delete(Session).where(Session.id == session_id))
    with orm() as db:
        assert db.scalar(select(func.count()).select_from(SessionRule)) == 0
        record = db.scalars(select(UsageRecord)).one()
    assert (record.session_id, record.cp_seid, record.final) == (None, 1001, True)


def test_a_concurrent_update_of_a_session_raises_stale_data(
    orm: sessionmaker[OrmSession], upf_ids: tuple[int, int]
) -> None:
    with orm.begin() as db:
        db.add(new_session(1, upf_ids[0]))
    # Two workers read version 1 of the session ...
    with orm() as first_db, orm() as second_db:
        first = first_db.scalars(select(Session)).one()
        second = second_db.scalars(select(Session)).one()
        first_db.commit()
        second_db.commit()
        # ... the first writes (version 2), then the second writes on top of what it read.
        first.state = SessionState.ACTIVE
        first_db.add(first)
        first_db.commit()
        second.state = SessionState.DELETING
        second_db.add(second)
        with pytest.raises(StaleDataError):
            second_db.commit()
    with orm() as db:
        stored = db.scalars(select(Session)).one()
    assert (stored.state, stored.version) == (SessionState.ACTIVE, 2)
