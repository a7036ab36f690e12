"""The control plane's one door to its database: a worker thread with group commit.

Theory of operation:

* Every database operation is a function ``op(connection) -> result`` that
  :meth:`Store.run` queues for one worker thread and awaits. The control plane's
  asyncio loop never blocks on the database, and the database sees one writer
  (SQLite allows only one anyway).
* The worker takes every queued operation (up to ``batch``), runs them in **one**
  transaction and commits once: with many sessions in flight, one commit (one
  fsync on PostgreSQL, one WAL append on SQLite) serves them all. A future
  resolves only after the commit, so "persisted" means durable.
* When an operation raises, the batch is rolled back and its operations are run
  again one transaction each: the failing one reports its own error, the others
  commit. Operations must therefore do nothing outside the database.
* Operations in one batch are concurrent: none of them waited for another (a
  procedure awaits each of its steps), so their order inside the batch is free.
  That lets a *bulk* operation (:meth:`Store.run_bulk`) run once for every caller
  that queued it in the batch: one multi-row statement instead of one statement
  per session, where most of the cost per establishment went (SQLAlchemy's work
  per statement, not the database's). A bulk group runs where its first member
  was queued; plain operations keep their order.
* Reads go through the same queue: they see every write committed before them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

__all__ = ["Store", "StoreClosed"]

log = logging.getLogger("control_plane.store")

T = TypeVar("T")
A = TypeVar("A")
Op = Callable[[Connection], Any]
#: A bulk operation: the arguments of every caller in the batch in, one result per argument out.
BulkOp = Callable[[Connection, Sequence[Any]], Sequence[Any]]
_NOT_BULK: Any = object()
# (plain op or bulk op, the bulk argument or _NOT_BULK, future, loop)
_Item = tuple[Callable[..., Any], Any, asyncio.Future[Any], asyncio.AbstractEventLoop]


class StoreClosed(RuntimeError):
    """The store was closed before the operation could run."""


class Store:
    """Runs database operations on one worker thread, many per transaction."""

    def __init__(self, engine: Engine, *, batch: int = 512) -> None:
        self.engine = engine
        self.batch = batch
        #: Transactions committed and operations run (for benchmarks and logs).
        self.commits = 0
        self.operations = 0
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="cp-store", daemon=True)
        self._thread.start()

    async def run(self, op: Callable[[Connection], T]) -> T:
        """Run ``op`` in a transaction on the worker; its result once committed."""
        if self._closed:
            raise StoreClosed("the control plane's database store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((op, _NOT_BULK, future, loop))
        return await future

    async def run_bulk(self, op: Callable[[Connection, Sequence[A]], Sequence[T]], arg: A) -> T:
        """Run ``op`` for ``arg`` together with every other ``arg`` queued for the same ``op``
        in the batch (``op(conn, args)`` returns one result per argument, in order).

        If ``op`` raises, the batch is rolled back and each caller's operation runs alone.
        """
        if self._closed:
            raise StoreClosed("the control plane's database store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((op, arg, future, loop))
        return await future

    def run_sync(self, op: Callable[[Connection], T]) -> T:
        """Run ``op`` in its own transaction on the calling thread (start-up, tools)."""
        with self.engine.begin() as conn:
            return op(conn)

    def close(self) -> None:
        """Finish what is queued, then stop the worker and dispose of the engine."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)
        self.engine.dispose()

    # -- worker -------------------------------------------------------------

    def _work(self) -> None:
        conn = self.engine.connect()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                items = [item]
                stop = False
                while len(items) < self.batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    items.append(more)
                self._run_batch(conn, items)
                if stop:
                    return
        finally:
            conn.close()
            while True:  # fail whatever arrived after close
                try:
                    left = self._queue.get_nowait()
                except queue.Empty:
                    break
                if left is not None:
                    _settle([(left, None, StoreClosed("the control plane's database store is closed"))])

    def _run_batch(self, conn: Connection, items: list[_Item]) -> None:
        results: list[Any] = [None] * len(items)
        groups: dict[Callable[..., Any], list[int]] = {}
        for index, (op, arg, _, _) in enumerate(items):
            if arg is not _NOT_BULK:
                groups.setdefault(op, []).append(index)
        try:
            with conn.begin():
                for index, (op, arg, _, _) in enumerate(items):
                    if arg is _NOT_BULK:
                        results[index] = op(conn)
                        continue
                    members = groups.pop(op, None)
                    if members is None:  # ran with the first of its group
                        continue
                    outs = op(conn, [items[i][1] for i in members])
                    if len(outs) != len(members):
                        raise RuntimeError(f"{op.__name__} returned {len(outs)} results for {len(members)}")
                    for i, out in zip(members, outs, strict=True):
                        results[i] = out
        except Exception as exc:
            if len(items) == 1:
                _settle([(items[0], None, exc)])
                return
            log.debug("batch of %d rolled back (%s): running each alone", len(items), exc)
            for item in items:
                self._run_batch(conn, [item])
            return
        self.commits += 1
        self.operations += len(items)
        _settle([(item, result, None) for item, result in zip(items, results, strict=True)])


def _settle(outcomes: list[tuple[_Item, Any, BaseException | None]]) -> None:
    # One wake-up of the loop per batch, not per operation.
    loop = outcomes[0][0][3]

    def settle() -> None:
        for (_, _, future, _), result, exc in outcomes:
            if future.done():
                continue
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)

    if not loop.is_closed():
        loop.call_soon_threadsafe(settle)
