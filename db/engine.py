"""Engines for SQLite and PostgreSQL, and the schema migrations (Alembic, configured in code).

``make_engine(url)`` is the only way the control plane opens the database: SQLite gets its
pragmas on every connection, PostgreSQL goes through psycopg 3. ``check_schema`` is what the
control plane calls at startup: it refuses a database whose migrations are not at head, and says
which command fixes it. No ``alembic.ini`` is needed: ``alembic_config`` builds the configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "MIGRATIONS_DIR",
    "DatabaseUrlError",
    "SchemaOutOfDate",
    "alembic_config",
    "check_schema",
    "current_revision",
    "downgrade",
    "head_revision",
    "make_engine",
    "upgrade",
    "write_revision",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: SQLite waits this long for a lock held by another connection before raising "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseUrlError(ValueError):
    """The database URL is malformed or names a backend we do not support."""


class SchemaOutOfDate(RuntimeError):
    """The database's schema revision is not the one this code expects."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``sqlite:///path`` (relative or ``sqlite:////absolute``) or ``postgresql+psycopg://...``.

    A bare ``postgresql://`` URL is given the psycopg (3) driver. Extra keyword arguments go to
    ``sqlalchemy.create_engine``.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(f"invalid database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif parsed.drivername != "postgresql+psycopg":
            raise DatabaseUrlError(f"unsupported PostgreSQL driver {parsed.drivername!r}: use postgresql+psycopg://")
        return create_engine(parsed, **kwargs)
    if backend == "sqlite":
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    raise DatabaseUrlError(f"unsupported database {backend!r} in {url!r}: use sqlite:///PATH or postgresql+psycopg://")


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers do not block the writer; NORMAL is durable across application crashes in WAL
        # mode (only an OS crash may lose the last transactions), and much faster than FULL.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # SQLite ignores foreign keys unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration of ``db/migrations``; with ``connection``, migrations run on it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # New revision files are named NNNN_slug.py (alembic revision --rev-id NNNN -m slug).
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision the code expects (the single head of ``db/migrations/versions``)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None when no migration was ever applied."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_schema(engine: Engine, config_hint: str = "FILE") -> None:
    """Raise ``SchemaOutOfDate`` unless the database is at the head revision."""
    current = current_revision(engine)
    expected = head_revision()
    if current == expected:
        return
    shown = "empty (no migration applied)" if current is None else f"at revision {current}"
    raise SchemaOutOfDate(
        f"database schema is {shown}, expected revision {expected}; run: edgecups db upgrade --config {config_hint}"
    )


def upgrade(engine: Engine | str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    with _migration_connection(engine) as connection:
        command.upgrade(alembic_config(connection), revision)


def write_revision(engine: Engine | str, message: str, rev_id: str) -> None:
    """Autogenerate ``versions/{rev_id}_{slug}.py`` from the models' difference with a database at head.

    Review the file before committing it: autogenerate misses renames and some type changes.
    """
    with _migration_connection(engine) as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True, rev_id=rev_id)


def downgrade(engine: Engine | str, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base``: an empty schema)."""
    with _migration_connection(engine) as connection:
        command.downgrade(alembic_config(connection), revision)


@contextmanager
def _migration_connection(engine_or_url: Engine | str) -> Iterator[Connection]:
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Batch migrations recreate tables (copy, drop, rename); with foreign keys on, the
                # drop would cascade or fail. The pragma is a no-op inside a transaction, so it is
                # set before the migration's transaction, and the result is checked afterwards.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            try:
                yield connection
                connection.commit()
            finally:
                if sqlite:
                    connection.rollback()
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()
            if sqlite:
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise RuntimeError(f"migration left rows violating foreign keys: {problems[:5]}")
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()
