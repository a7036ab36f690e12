"""What applying a manifest set would change on the server, field by field.

:func:`plan` compares each desired object with what the server holds (both normalized by
:func:`edge_sites.schema.validate_object`, so ``[b, a]`` and ``[a, b]`` in an unordered
list are no change); :func:`render_plan` prints it for ``edgecups apply --dry-run`` and,
with ``applied=True``, for what an apply did. Objects the server has that the manifests
do not mention are left alone: apply never deletes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .manifests import Manifest, order
from .schema import FIELDS, SchemaError, validate_object

__all__ = ["Change", "FieldChange", "differences", "plan", "render_plan"]

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed value: ``path`` as in error messages ("capacity", "edge_rules[0].precedence")."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Change:
    """What applying one object does; ``spec`` is the normalized desired spec to send."""

    kind: str
    name: str
    action: Action
    spec: dict[str, Any] = field(compare=False)
    fields: tuple[FieldChange, ...] = ()


def _current(kind: str, name: str, held: Mapping[str, Any]) -> dict[str, Any]:
    # Only spec fields count (the server's answer may carry observed state too). Normalized
    # like the desired side when it validates; as it is otherwise, so a difference still shows.
    spec = {f.name: held.get(f.name) for f in FIELDS[kind]}
    try:
        return validate_object(kind, name, {k: v for k, v in spec.items() if v is not None})
    except SchemaError:
        return spec


def differences(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """What changes from ``old`` to ``new`` (two normalized specs), field by field, in the
    order of ``new``'s keys (the API's Apply answers with the same paths)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[FieldChange] = []
        for key in [*new, *(k for k in old if k not in new)]:
            out += differences(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return out
    # Lists of mappings (edge rules) of one length differ element by element; other lists as a whole.
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and all(isinstance(item, Mapping) for item in [*old, *new])
    ):
        return [
            c for index, (a, b) in enumerate(zip(old, new, strict=True)) for c in differences(a, b, f"{path}[{index}]")
        ]
    return [] if old == new else [FieldChange(path, old, new)]


def plan(desired: Sequence[Manifest], current: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[Change]:
    """One Change per desired object, in apply order; ``current`` maps (kind, name) to the server's spec."""
    changes: list[Change] = []
    for m in order(desired):
        held = current.get(m.key)
        if held is None:
            changes.append(Change(m.kind, m.name, "create", m.spec))
            continue
        fields = tuple(differences(_current(m.kind, m.name, held), m.spec, ""))
        changes.append(Change(m.kind, m.name, "update" if fields else "unchanged", m.spec, fields))
    return changes


_MARKS: Mapping[Action, tuple[str, str, str]] = {
    # mark, planned, done
    "create": ("+", "create", "created"),
    "update": ("~", "update", "updated"),
    "unchanged": ("=", "unchanged", "unchanged"),
}


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_plan(changes: Sequence[Change], *, applied: bool = False) -> str:
    """One line per object (``+`` create, ``~`` update, ``=`` unchanged), changed fields indented, a count last."""
    lines: list[str] = []
    counts = dict.fromkeys(_MARKS, 0)
    for change in changes:
        mark, planned, done = _MARKS[change.action]
        counts[change.action] += 1
        lines.append(f"{mark} {change.kind} {change.name} ({done if applied else planned})")
        lines.extend(f"    {fc.path}: {_show(fc.old)} -> {_show(fc.new)}" for fc in change.fields)
    verbs = ("created", "updated", "unchanged") if applied else ("to create", "to update", "unchanged")
    summary = ", ".join(f"{counts[action]} {verb}" for action, verb in zip(_MARKS, verbs, strict=True))
    lines.append(summary + ("" if applied else " (objects not in the manifests are left as they are)"))
    return "\n".join(lines)
