"""The control plane's database: SQLAlchemy models (``db.models``), engines and migrations (``db.engine``)."""

from __future__ import annotations

from .base import Base
from .engine import (
    DatabaseUrlError,
    SchemaOutOfDate,
    check_schema,
    current_revision,
    downgrade,
    make_engine,
    upgrade,
)

__all__ = [
    "Base",
    "DatabaseUrlError",
    "SchemaOutOfDate",
    "check_schema",
    "current_revision",
    "downgrade",
    "make_engine",
    "upgrade",
]
