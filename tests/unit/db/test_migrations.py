"""The migrations build exactly the models' schema, every one reverts, and startup refuses a stale schema.

Each test runs on SQLite and on a throwaway PostgreSQL server (``database_url``).
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from db.base import Base
from db.engine import (
    SchemaOutOfDate,
    alembic_config,
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)


def schema_diff(engine: Engine) -> list[Any]:
    """Autogenerate's view: what a new migration would contain (empty when the database matches the models)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_head_on_empty_database_equals_the_models(db_engine: Engine) -> None:
    assert tables(db_engine) == set()
    upgrade(db_engine)
    assert tables(db_engine) == set(Base.metadata.tables)
    assert schema_diff(db_engine) == []


def test_an_empty_database_differs_from_the_models(db_engine: Engine) -> None:
    # The comparison above would be worthless if it reported nothing on any database.
    diff = schema_diff(db_engine)
    added = {entry[1].name for entry in diff if entry[0] == "add_table"}
    assert added == set(Base.metadata.tables)


def test_every_migration_downgrades_and_upgrades_again(db_engine: Engine) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(reversed(list(script.walk_revisions("base", "heads"))))
    assert revisions, "no migrations"
    for revision in revisions:
        # Up one step, down to the previous revision, and up again: each downgrade really reverts
        # its upgrade (the second upgrade would fail on a leftover table, index or constraint).
        upgrade(db_engine, revision.revision)
        assert current_revision(db_engine) == revision.revision
        previous = revision.down_revision
        assert previous is None or isinstance(previous, str), "merge revisions are not expected"
        downgrade(db_engine, previous or "base")
        assert current_revision(db_engine) == previous
        upgrade(db_engine, revision.revision)
    assert current_revision(db_engine) == head_revision()
    assert schema_diff(db_engine) == []
    downgrade(db_engine, "base")
    assert current_revision(db_engine) is None
    assert tables(db_engine) == set()


def test_check_schema_refuses_an_empty_database(db_engine: Engine) -> None:
    with pytest.raises(SchemaOutOfDate) as caught:
        check_schema(db_engine)
    message = str(caught.value)
    assert "empty" in message
    assert f"expected revision {head_revision()}" in message
    assert "edgecups db upgrade --config FILE" in message


def test_check_schema_passes_after_upgrade(db_engine: Engine) -> None:
    upgrade(db_engine)
    check_schema(db_engine)
    assert current_revision(db_engine) == head_revision()


def test_check_schema_refuses_an_out_of_date_revision(db_engine: Engine) -> None:
    upgrade(db_engine)
    # A database left at another revision (an older release's, or one this code does not know).
    with db_engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    with pytest.raises(SchemaOutOfDate) as caught:
        check_schema(db_engine, config_hint="/etc/edgecups/cp.yaml")
    message = str(caught.value)
    assert "at revision older" in message
    assert f"expected revision {head_revision()}" in message
    assert "edgecups db upgrade --config /etc/edgecups/cp.yaml" in message
