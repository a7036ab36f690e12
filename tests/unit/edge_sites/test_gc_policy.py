"""The servers' cyclic-GC policy (edge_sites.gc_policy): freeze what survives, rescan rarely."""

from __future__ import annotations

import gc
import weakref

import pytest

from edge_sites import gc_policy


class Node:
    me: Node | None = None


def test_acquire_freezes_and_the_last_release_restores_the_default() -> None:
    assert gc.get_freeze_count() == 0
    first = gc_policy.acquire()
    second = gc_policy.acquire()
    try:
        assert first is second and first._on_gc in gc.callbacks
        assert gc.get_freeze_count() > 0  # the process's long-lived objects
        gc_policy.release()
        assert first._on_gc in gc.callbacks  # one user left
    finally:
        gc_policy.release()
    assert first._on_gc not in gc.callbacks and gc.get_freeze_count() == 0
    gc_policy.release()  # more releases than acquires: nothing happens


def test_what_survives_a_collection_is_frozen_and_objects_still_die_by_refcount() -> None:
    policy = gc_policy.acquire()
    try:
        plain = Node()
        ref = weakref.ref(plain)
        before = policy.frozen
        gc.collect()
        assert policy.frozen > before  # the survivors of that collection were frozen
        del plain
        assert ref() is None  # frozen or not, no cycle: freed at once
    finally:
        gc_policy.release()


def test_a_cycle_dropped_while_frozen_is_collected_by_the_rescan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_policy, "RESCAN_INTERVAL", 0.0)
    monkeypatch.setattr(gc_policy, "MIN_BASE", 0)
    policy = gc_policy.acquire()
    try:
        cycle = Node()
        cycle.me = cycle
        ref = weakref.ref(cycle)
        policy.base = 10**12  # no rescan yet
        gc.collect()  # the cycle survives and is frozen
        del cycle
        gc.collect()
        assert ref() is not None  # frozen: out of the collector's sight
        policy.base = 0  # "the frozen set doubled"
        gc.collect()  # decides to rescan: unfreezes
        assert policy.rescan and policy.full_rescans == 1
        gc.collect()  # the full collection sees everything once
        assert ref() is None and not policy.rescan
        assert policy.base == policy.frozen > 0  # what survived is frozen again
    finally:
        gc_policy.release()


def test_what_survives_a_young_collection_is_frozen_at_once() -> None:
    policy = gc_policy.acquire()
    try:
        survivor = Node()
        before = gc.get_freeze_count()
        gc.collect(0)  # a young collection only: its survivors need no generation-1 traversal
        assert gc.get_freeze_count() > before and policy.frozen > 0
        # Out of every generation (frozen), so no generation-1 collection traverses it again.
        assert all(o is not survivor for o in gc.get_objects())
    finally:
        gc_policy.release()


def test_a_young_threshold_applies_while_the_policy_runs_and_the_largest_wins() -> None:
    default = gc.get_threshold()
    gc_policy.acquire(young_threshold=5_000)
    try:
        assert gc.get_threshold() == (5_000, *default[1:])
        gc_policy.acquire(young_threshold=20_000)  # a second user asking for more
        gc_policy.acquire(young_threshold=1_000)  # ... and one asking for less: the largest stays
        assert gc.get_threshold()[0] == 20_000
        gc_policy.release()
        gc_policy.release()
        assert gc.get_threshold()[0] == 20_000  # one user left
    finally:
        gc_policy.release()
    assert gc.get_threshold() == default
