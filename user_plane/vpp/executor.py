"""Runs planned steps (:mod:`user_plane.vpp.objects`) against VPP, all or nothing.

Every successful step is journaled; when a call fails, the journal is undone in reverse
(each step's undo calls) and :class:`StepFailed` says which step and why, so the state VPP
held before the request is in force again. Indexes VPP returns are kept in ``indexes`` by
object key and substituted for :class:`~user_plane.vpp.objects.Ref` values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from .objects import Call, Key, Ref, Step

__all__ = ["CallApi", "Executor", "REPLY_INDEX", "StepFailed"]

log = logging.getLogger(__name__)

#: The reply field holding the index of what a request created.
REPLY_INDEX: Final[Mapping[str, str]] = {
    "gtpu_add_del_tunnel_v2": "sw_if_index",
    "gtpu_add_del_forward": "sw_if_index",
    "policer_add": "policer_index",
    "acl_add_replace": "acl_index",
    "memif_create_v2": "sw_if_index",
    "memif_socket_filename_add_del_v2": "socket_id",
}


class CallApi(Protocol):
    """What the executor needs of a VPP connection (:class:`user_plane.vpp.calls.VppApi`)."""

    def call(self, msg: str, **args: Any) -> Any: ...


class StepFailed(Exception):
    """A step's call failed; the steps before it were undone (``undone_cleanly`` says whether
    every undo call succeeded)."""

    def __init__(self, step: Step, cause: Exception, undone_cleanly: bool) -> None:
        super().__init__(f"{step.call.msg}: {cause}")
        self.step = step
        self.cause = cause
        self.undone_cleanly = undone_cleanly


#: Called with each call made and its reply (the driver reads tunnel counters from them).
ReplyHook = Callable[[Call, Any], None]


class Executor:
    """Resolves references and runs calls; ``indexes`` is shared with the driver."""

    def __init__(self, api: CallApi, indexes: dict[Key, int], on_reply: ReplyHook | None = None) -> None:
        self.api = api
        self.indexes = indexes
        self.on_reply = on_reply
        #: VPP calls made (steps and undo calls).
        self.calls = 0
        self._allocated: set[Key] = set()  # keys whose index the client chose (ABF policy IDs)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Ref):
            return self.indexes[value.key]
        if isinstance(value, Mapping):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.resolve(v) for v in value]
        return value

    def _allocate(self, key: Key) -> None:
        self._allocated = {k for k in self._allocated if k in self.indexes}  # indexes may have been cleared
        used = {self.indexes[k] for k in self._allocated}
        value = 1
        while value in used:
            value += 1
        self.indexes[key] = value
        self._allocated.add(key)

    def call(self, call: Call) -> Any:
        if call.allocates is not None:
            self._allocate(call.allocates)
        try:
            reply = self.api.call(call.msg, **self.resolve(call.args))
        except BaseException:
            if call.allocates is not None:
                self.indexes.pop(call.allocates, None)
            raise
        self.calls += 1
        if call.produces is not None:
            self.indexes[call.produces] = int(getattr(reply, REPLY_INDEX[call.msg]))
        if call.releases is not None:
            self.indexes.pop(call.releases, None)
        if self.on_reply is not None:
            self.on_reply(call, reply)
        return reply

    def run(self, steps: Iterable[Step]) -> list[Step]:
        """Run ``steps`` in order; returns the journal. On a failure everything done is undone
        and StepFailed raised."""
        journal: list[Step] = []
        for step in steps:
            try:
                self.call(step.call)
            except Exception as exc:
                clean = self.undo(journal)
                raise StepFailed(step, exc, clean) from exc
            journal.append(step)
        return journal

    def undo(self, journal: list[Step]) -> bool:
        """Undo journaled steps in reverse; best effort: True if every undo call succeeded."""
        clean = True
        for step in reversed(journal):
            for call in step.undo:
                try:
                    self.call(call)
                except Exception as exc:  # keep going: the rest may still be undone
                    clean = False
                    log.error("undo of %s failed (%s): VPP may hold a leftover", step.call.msg, exc)
        return clean
