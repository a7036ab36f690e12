"""``make_engine``: SQLite pragmas on every connection, URL forms, clear errors for bad URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import DatabaseUrlError, make_engine


def test_sqlite_connections_get_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cp.db'}")
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.execute(text(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
    finally:
        engine.dispose()
    # synchronous: 1 is NORMAL.
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 1, "busy_timeout": 5000}


def test_sqlite_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine("sqlite:///relative.db")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert (tmp_path / "relative.db").is_file()


def test_postgresql_url_without_driver_uses_psycopg() -> None:
    engine = make_engine("postgresql://cp@127.0.0.1:1/edgecups")  # no connection is made
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.dialect.driver == "psycopg"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "invalid database URL"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://u@h/db", "unsupported PostgreSQL driver"),
    ],
)
def test_bad_urls_are_refused_with_a_clear_error(url: str, expected: str) -> None:
    with pytest.raises(DatabaseUrlError, match=expected):
        make_engine(url)
