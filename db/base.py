"""Declarative base: one MetaData with a naming convention, and the column types every model shares.

The naming convention gives every constraint and index a deterministic name, so Alembic can drop or
alter them by name on every backend (SQLite's batch mode needs names to recreate tables) — the
recipe of Alembic's "The Importance of Naming Constraints". ``column_0_N_name`` (all columns, not
only the first) keeps two unique constraints that start with the same column apart
(``sessions``: (dnn, ue_ipv4) and (dnn, ue_ipv6)).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from sqlalchemy import JSON, DateTime, Dialect, MetaData, String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

__all__ = ["NAMING_CONVENTION", "Base", "StrEnumType", "UtcDateTime", "utcnow"]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the default of every timestamp column)."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    PostgreSQL keeps the zone (``timestamptz``); SQLite keeps none and would hand back naive values,
    so results without a zone are marked UTC, and naive values are refused on the way in (their zone
    is unknown: storing them would silently shift them).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


E = TypeVar("E", bound=enum.StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A ``StrEnum`` stored as its value in a plain ``VARCHAR``.

    A plain string column (no native ENUM, no CHECK) keeps autogenerate stable on SQLite and
    PostgreSQL and lets a later release add a value without a migration; values are checked here,
    on the way in and out.
    """

    impl = String(32)
    cache_ok = True

    def __init__(self, enum_class: type[E]) -> None:
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.enum_class(value).value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> E | None:
        if value is None:
            return None
        return self.enum_class(value)


class Base(DeclarativeBase):
    """Base of every model; ``Base.metadata`` is what Alembic compares the database with."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        list[str]: JSON(),
        dict[str, Any]: JSON(),
        str: String(),
    }
