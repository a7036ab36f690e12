"""Alembic environment: runs migrations on the connection ``db.engine`` hands over.

There is no alembic.ini: ``db.engine.alembic_config`` builds the configuration and puts the open
connection in ``config.attributes["connection"]``. SQLite runs in batch mode
(``render_as_batch``): it cannot ALTER most things, so Alembic recreates the table.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection
from sqlalchemy.types import TypeDecorator

import db.models  # noqa: F401  (registers every table on Base.metadata)
from db.base import Base

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write our column types (``StrEnumType``, ``UtcDateTime``) as the plain SQL type they store.

    A migration must not import the models of the day it runs: they change, the migration must not.
    """
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"  # script.py.mako imports sqlalchemy as sa
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through db.engine (upgrade/downgrade) or `edgecups db`, not the alembic CLI")
if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
run_migrations(connection)
