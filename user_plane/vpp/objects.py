"""VPP objects as desired state, and the ordered call plan that turns one set into another.

Pure: no socket, no vpp_papi. Each object knows the VPP calls that create, update and
delete it, each call paired with the calls that undo it (:class:`Step`). :func:`diff`
orders the steps of a change so that VPP accepts every call and a failure can be undone
step by step in reverse:

1. objects replaced in place (their key stays, a field VPP cannot change did), and every
   kept object that refers to one of them (a route via a tunnel that is re-created: the
   tunnel's sw_if_index changes), are deleted, dependents first;
2. new objects and the replacements are created, in rank order (policers and ACLs, then
   tunnels, then what binds to tunnels, then routes);
3. objects updated in place (a route that points to another tunnel, a policer with a new
   rate, an ACL with other rules), in rank order;
4. objects gone are deleted, dependents first.

A key is VPP's own identity of the object (a tunnel is (gNB address, local TEID, encap
VRF), a route is (table, prefix), a policer its name), so a new object never collides in
VPP with an old one that step 4 deletes later: make-before-break, and a handover's new
tunnel carries traffic before the old one goes.

Indexes VPP allocates (sw_if_index, policer_index, acl_index) are not known when the plan
is made: arguments carry :class:`Ref` placeholders that the executor resolves from what
earlier calls returned (``Call.produces``).

The kinds of objects: :mod:`.forwarding` (tunnels, routes, ABF), :mod:`.filters` (policers,
ACLs).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import pfcp

__all__ = ["NO_INDEX", "AddDel", "Call", "Key", "Obj", "Ref", "Step", "diff", "refs_in"]

#: ~0: "no interface / no index" in VPP's API.
NO_INDEX: Final = 0xFFFFFFFF

Key = tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class Ref:
    """The index VPP returned when the object with ``key`` was created."""

    key: Key


@dataclass(frozen=True, slots=True)
class Call:
    """One VPP API request. ``args`` may hold :class:`Ref` values (nested in dicts and lists).
    ``produces``: the reply's index is remembered under this key; ``allocates``: the index is
    chosen by the client (ABF policy IDs) before the call; ``releases``: the key is forgotten
    once the call succeeded (the object is gone)."""

    msg: str
    args: Mapping[str, Any]
    produces: Key | None = None
    releases: Key | None = None
    allocates: Key | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """A call, the calls that take it back, and the PFCP rule it serves (Failed Rule ID)."""

    call: Call
    undo: tuple[Call, ...]
    rule: pfcp.FailedRuleID | None = None


def refs_in(value: Any) -> set[Key]:
    """Every key a value refers to through :class:`Ref` (nested in dicts, lists, tuples)."""
    if isinstance(value, Ref):
        return {value.key}
    if isinstance(value, Mapping):
        return set().union(*(refs_in(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(refs_in(v) for v in value)) if value else set()
    return set()


class Obj:
    """A VPP object of the desired state. Subclasses are frozen dataclasses."""

    #: Creation order: lower first (deleted in reverse).
    rank: ClassVar[int]
    rule: pfcp.FailedRuleID | None

    @property
    def key(self) -> Key:
        raise NotImplementedError

    def refs(self) -> set[Key]:
        """Keys of the objects this one needs (created before it, deleted after it)."""
        return set()

    def create(self) -> list[Step]:
        """By default one call makes the object and :meth:`_delete_call` undoes it."""
        return [Step(self._create_call(), (self._delete_call(),), self.rule)]

    def delete(self) -> list[Step]:
        return [Step(self._delete_call(), (self._create_call(),), self.rule)]

    def _create_call(self) -> Call:
        raise NotImplementedError

    def _delete_call(self) -> Call:
        raise NotImplementedError

    def update(self, old: Obj) -> list[Step] | None:
        """Steps that change ``old`` into this object in place; None: delete and re-create."""
        return None


class AddDel(Obj):
    """An object one VPP message makes and takes back, with an is_add (or apply) flag."""

    def _call(self, is_add: bool) -> Call:
        raise NotImplementedError

    def _create_call(self) -> Call:
        return self._call(True)

    def _delete_call(self) -> Call:
        return self._call(False)


# ------------------------------------------------------------------------------------- diff


def diff(old: Mapping[Key, Obj], new: Mapping[Key, Obj]) -> list[Step]:
    """The ordered steps that turn VPP objects ``old`` into ``new`` (see the module docstring);
    objects equal in both are not touched."""
    updates: dict[Key, list[Step]] = {}
    replaced: set[Key] = set()
    for key, obj in new.items():
        before = old.get(key)
        if before is None or before == obj:
            continue
        changes = obj.update(before)
        if changes is None:
            replaced.add(key)
        else:
            updates[key] = changes
    # Whatever refers to a replaced object is re-created with it (its index changes), transitively.
    grew = bool(replaced)
    while grew:
        grew = False
        for key, obj in new.items():
            if key in old and key not in replaced and (obj.refs() | old[key].refs()) & replaced:
                replaced.add(key)
                updates.pop(key, None)
                grew = True
    steps: list[Step] = []
    for key in sorted(replaced, key=lambda k: -old[k].rank):
        steps += old[key].delete()
    created = [obj for key, obj in new.items() if key not in old or key in replaced]
    for obj in sorted(created, key=lambda o: o.rank):
        steps += obj.create()
    for key in sorted(updates, key=lambda k: new[k].rank):
        steps += updates[key]
    gone = [obj for key, obj in old.items() if key not in new]
    for obj in sorted(gone, key=lambda o: -o.rank):
        steps += obj.delete()
    return steps
