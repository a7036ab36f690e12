"""What provisioning takes and returns: plain values, like control_plane.services.views for sessions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from control_plane.errors import InvalidArgument
from edge_sites.diff import FieldChange, differences
from edge_sites.schema import KINDS, SchemaError, did_you_mean

__all__ = ["Action", "Change", "FieldChange", "ObjectView", "Resource", "canonical_kind", "differences", "invalid"]

Action = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class Resource:
    """An object to apply: its spec as sent (validated by the service)."""

    kind: str
    name: str
    spec: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    name: str
    action: Action
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class ObjectView:
    """An object as stored (normalized spec) with its observed state (empty for most kinds)."""

    kind: str
    name: str
    spec: dict[str, Any]
    observed: dict[str, Any] = field(default_factory=dict)


def canonical_kind(kind: str, field: str = "kind") -> str:
    """The contract's spelling of ``kind`` ("upf" -> "UPF"); InvalidArgument for anything else."""
    for known in KINDS:
        if kind.lower() == known.lower():
            return known
    hint = did_you_mean(kind, KINDS)
    raise InvalidArgument(f"unknown kind {kind!r}{hint}; expected one of {', '.join(KINDS)}", field=field)


def invalid(error: SchemaError) -> InvalidArgument:
    """One InvalidArgument for every problem the schema found, naming the first one's field."""
    (first_path, first), *rest = error.errors
    message = "; ".join([first, *(f"{path}: {text}" for path, text in rest)])
    return InvalidArgument(message, field=first_path or None)
