"""Cyclic garbage collection for a long-lived server holding 100k sessions.

Both servers run it: the UPF agent (``user_plane``) and the control plane, which
therefore share it from here rather than importing each other.

Why: CPython's cyclic GC runs a full (generation 2) collection whenever the objects
promoted since the last one exceed 25 % of the long-lived objects, and a full
collection traverses *every* container object. The UPF agent's sessions are
long-lived containers (rules, meters, compiled rules: some tens per session), so
with the default policy each new session pays for about four traversals of
everything (measured: ~90 µs of 230 µs per establishment at 0 installed, a full
collection taking ~0.3 µs per object), and under churn at 100k sessions the
promotions of the new sessions trigger a full traversal of all of them every few
seconds even though the count does not grow. The control plane holds few objects
per session, but a large heap from start-up (SQLAlchemy, the inventory, gRPC): with
the default policy, collections took 2.2 s of an 8.5 s run of 10,000 establishments
(bench/cp_sessions.py, ten full collections and 1,271 young ones).

What: :class:`LongLivedGc` freezes (``gc.freeze()``) what survives each
collection, so no older-generation collection traverses it again: a session's
objects are traversed once, by the young collection they survive, instead of
once more by each generation-1 collection (measured: GC ~7 µs per establishment
freezing after generation-1 collections only, ~3 µs freezing after every one). The frozen set
is not scanned again until it has doubled since it was last checked *and*
``RESCAN_INTERVAL`` seconds have passed: then it is unfrozen and the next full
collection sees everything once. That rescan is only a safety net: frozen objects
that die are freed by reference counting as usual (the forwarder's and the agent's
per-session objects hold no reference cycles for that reason); what it catches is
a reference cycle that became garbage while frozen (an asyncio task or exception
alive at a freeze), which until then costs memory, never correctness. A rescan is
a pause of the whole traversal (~1.5 s at 100k sessions), so it is rare: at most
one per interval, versus CPython's default of one per 25 % growth in promoted
objects, which at 100k sessions under churn is a full traversal every few seconds.

``young_threshold`` (generation 0's threshold, CPython's default 700) sets how many
net allocations of container objects start a young collection. Every collection has a
fixed cost here (the freeze walks what survived), and a request's temporaries mostly die
by reference counting before a larger threshold is reached, so a server that allocates a
lot per request (the control plane: ~0.5 s of young collections per 10,000 establishments
at 700) runs fewer, equally cheap ones at a larger threshold.

The GC is process-wide, so the policy is too: :func:`acquire` / :func:`release`
count users (an agent between start and stop); the last release unfreezes and
removes the callback.
"""

from __future__ import annotations

import gc
import time
from typing import Any

__all__ = ["LongLivedGc", "acquire", "release"]

#: Objects frozen at the last full check below which a doubling is not worth a full collection.
MIN_BASE = 100_000
#: Seconds between full rescans at least (see the module docstring).
RESCAN_INTERVAL = 300.0


class LongLivedGc:
    """Freeze what survives full collections; rescan everything when the frozen set doubled."""

    def __init__(self, young_threshold: int | None = None) -> None:
        self.young_threshold = young_threshold
        self._thresholds = gc.get_threshold()
        self.base = 0  # frozen objects after the last collection that saw everything
        self.frozen = 0  # objects frozen since (an upper bound: frozen objects that died are not seen)
        self.rescan = False  # unfrozen: the next full collection sees everything
        self.full_rescans = 0
        self.last_rescan = time.monotonic()

    def start(self) -> None:
        self._thresholds = gc.get_threshold()
        if self.young_threshold is not None:
            gc.set_threshold(self.young_threshold, *self._thresholds[1:])
        gc.collect()
        self.base = self.frozen = self._freeze()  # modules, classes, configuration: live as long as the process
        gc.callbacks.append(self._on_gc)

    @staticmethod
    def _freeze() -> int:
        # gc.get_freeze_count() walks the whole frozen list (~0.1 s per million objects):
        # count what is frozen now instead (the survivors the collection just walked: the
        # younger generations are empty after a freeze).
        count = len(gc.get_objects(generation=1)) + len(gc.get_objects(generation=2))
        gc.freeze()
        return count

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        gc.set_threshold(*self._thresholds)
        gc.unfreeze()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop":
            return
        generation = info.get("generation", 0)
        if self.rescan:
            if generation == 2:  # this collection saw everything: start over from what survived
                self.rescan = False
                self.base = self.frozen = self._freeze()
            return
        # After a young collection too: what survives one is a session's state in all
        # likelihood (a request's temporaries die by reference counting first), and
        # traversing it again in generation 1 would be wasted.
        self.frozen += self._freeze()
        now = time.monotonic()
        if self.frozen > 2 * max(self.base, MIN_BASE) and now - self.last_rescan >= RESCAN_INTERVAL:
            self.rescan = True
            self.last_rescan = now
            self.full_rescans += 1
            gc.unfreeze()


_policy: LongLivedGc | None = None
_users = 0


def acquire(young_threshold: int | None = None) -> LongLivedGc:
    """Start the policy (or count one more user of it). ``young_threshold``: see the
    module docstring; the largest any user asked for applies while the policy runs."""
    global _policy, _users
    if _policy is None:
        _policy = LongLivedGc(young_threshold)
        _policy.start()
    elif young_threshold is not None and young_threshold > (_policy.young_threshold or 0):
        _policy.young_threshold = young_threshold
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
    _users += 1
    return _policy


def release() -> None:
    """One user less; the last one restores the default GC behaviour."""
    global _policy, _users
    if _users == 0:
        return
    _users -= 1
    if _users == 0 and _policy is not None:
        _policy.stop()
        _policy = None
