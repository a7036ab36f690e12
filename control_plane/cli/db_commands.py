"""``edgecups db ...``: the control plane database's schema migrations.

* ``edgecups db upgrade`` applies every migration up to head (or ``--revision REV``).
* ``edgecups db downgrade REVISION`` reverts down to REVISION (``base``: an empty schema).
* ``edgecups db current`` prints the database's revision.
* ``edgecups db check`` exits 0 when the schema is at head, 1 (saying the fix) otherwise.

Each takes the database as ``--url URL`` or ``--config FILE`` (the control plane's YAML file: the
database the control plane would open with it, see ``control_plane.config.database_url_from_file``);
without either, ``sqlite:///edgecups.db`` in the current directory. Failures are one line on stderr
and exit status 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from control_plane.config import DEFAULT_DATABASE_URL, ConfigError, database_url_from_file
from db.engine import (
    DatabaseUrlError,
    SchemaOutOfDate,
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    upgrade,
)

__all__ = ["DEFAULT_URL", "app", "database_url"]

DEFAULT_URL = DEFAULT_DATABASE_URL
EXIT_FAILED = 1

T = TypeVar("T")

app = typer.Typer(
    name="db",
    help="Control plane database: apply, revert or check the schema migrations.",
    no_args_is_help=True,
    add_completion=False,
)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", metavar="URL", help="Database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", metavar="FILE", help="Control plane YAML configuration; uses its database.url."),
]


class _Failure(Exception):
    pass


def database_url(url: str | None, config: Path | None) -> str:
    """The database URL from ``--url``, else from the ``--config`` file, else the default."""
    if url is not None and config is not None:
        raise _Failure("give --url or --config, not both")
    if url is not None:
        return url
    if config is None:
        return DEFAULT_URL
    return database_url_from_file(config)


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL at all: there is no password to hide
        return url


def _missing_sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def _run(url: str | None, config: Path | None, action: Callable[[Engine], T], *, create: bool = False) -> T:
    """Run ``action`` on the engine; every expected failure becomes one line on stderr and exit 1.

    Without ``create``, a SQLite file that does not exist is an error (SQLite would create it empty).
    """
    engine: Engine | None = None
    resolved = DEFAULT_URL
    try:
        resolved = database_url(url, config)
        engine = make_engine(resolved)
        missing = None if create else _missing_sqlite_file(resolved)
        if missing is not None:
            raise _Failure(f"SQLite database file {missing} does not exist (edgecups db upgrade creates it)")
        return action(engine)
    except (_Failure, ConfigError, DatabaseUrlError, SchemaOutOfDate) as exc:
        message = str(exc)
    except CommandError as exc:  # unknown revision, and the like
        message = f"migration failed: {exc}"
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        message = f"database {_shown(resolved)}: {detail}"
    finally:
        if engine is not None:
            engine.dispose()
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_FAILED)


def _describe(revision: str | None) -> str:
    if revision is None:
        return "base (no migration applied)"
    return f"{revision} (head)" if revision == head_revision() else revision


@app.command("upgrade")
def upgrade_command(
    url: UrlOption = None,
    config: ConfigOption = None,
    revision: Annotated[str, typer.Option("--revision", help="Target revision.")] = "head",
) -> None:
    """Apply the migrations up to head (or --revision)."""

    def action(engine: Engine) -> str | None:
        upgrade(engine, revision)
        return current_revision(engine)

    reached = _run(url, config, action, create=True)
    typer.echo(f"database at revision {_describe(reached)}")


@app.command("downgrade")
def downgrade_command(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' removes every table.")],
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Revert the migrations down to REVISION."""

    def action(engine: Engine) -> str | None:
        downgrade(engine, revision)
        return current_revision(engine)

    reached = _run(url, config, action)
    typer.echo(f"database at revision {_describe(reached)}")


@app.command("current")
def current_command(url: UrlOption = None, config: ConfigOption = None) -> None:
    """Print the database's schema revision."""
    revision = _run(url, config, current_revision)
    typer.echo(_describe(revision))


@app.command("check")
def check_command(url: UrlOption = None, config: ConfigOption = None) -> None:
    """Exit 0 when the schema is at head; otherwise say which command fixes it and exit 1."""
    hint = str(config) if config is not None else "FILE"

    def action(engine: Engine) -> str:
        check_schema(engine, config_hint=hint)
        return head_revision()

    revision = _run(url, config, action)
    typer.echo(f"schema up to date (revision {revision})")
