"""pytest plugin for database tests (registered in tests/conftest.py).

``database_url`` runs a test once on SQLite and once on PostgreSQL, each time on a fresh empty
database: a file in ``tmp_path``, or a new database on the session's throwaway PostgreSQL server
(``postgres_server``, started once; the PostgreSQL case skips when the binaries are missing).
``db_engine`` is an engine on that empty database; ``migrated_engine`` one on a database at head.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from db.engine import make_engine, upgrade
from tests.harness.postgres import PostgresServer, postgres_unavailable_reason, running_postgres

__all__ = ["database_url", "db_engine", "migrated_engine", "postgres_server"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of our own for the whole test session, removed at the end."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh empty database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'edgecups.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"edgecups_test_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the empty database of ``database_url``."""
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def migrated_engine(db_engine: Engine) -> Engine:
    """An engine on a database upgraded to the head revision."""
    upgrade(db_engine)
    return db_engine
