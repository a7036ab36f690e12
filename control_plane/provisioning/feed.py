"""Watch: the events table tailed by id, one poller shared by every watcher.

Theory of operation:

* Everything that happens is already an event row (sessions, UPF health,
  provisioning), written in the transaction that made it happen. Rows are only
  ever written by the store's one worker, so ids grow in commit order and a reader
  that remembers the last id it saw misses nothing.
* One poller task reads the rows after the last id it read, every ``interval``
  seconds, through the store (so a poll sees exactly what is committed), and hands
  them to every watcher's queue. It runs only while someone watches.
* A watcher starts at the poller's position (only new events), or replays from
  ``since_id`` up to that position with reads of its own, then takes the live
  rows; ids at or below the last one it yielded are skipped, so the hand-over has
  neither a gap nor a repeat.
* A watcher whose queue fills up (a client not reading) is ended with
  RESOURCE_EXHAUSTED instead of holding memory: it resumes with ``since_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select

from control_plane.errors import ResourceExhausted
from control_plane.store import Store, StoreClosed
from db.models import Event

__all__ = ["EventFeed", "EventView", "events_after", "last_event_id"]

log = logging.getLogger("control_plane.events")

_EVENTS = cast(Table, Event.__table__)


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    at: datetime
    kind: str
    supi: str | None
    upf: str | None
    session_id: int | None
    detail: dict[str, Any]


def events_after(conn: Connection, after: int, limit: int, upto: int | None = None) -> list[EventView]:
    """Events with ``after`` < id (<= ``upto``), in id order, at most ``limit``."""
    query = select(_EVENTS).where(_EVENTS.c.id > after)
    if upto is not None:
        query = query.where(_EVENTS.c.id <= upto)
    return [
        EventView(row.id, row.at, row.kind, row.supi, row.upf_node_id, row.session_id, dict(row.detail or {}))
        for row in conn.execute(query.order_by(_EVENTS.c.id).limit(limit))
    ]


def last_event_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(_EVENTS.c.id), 0))).scalar_one())


def _wanted(kind: str, kinds: Collection[str]) -> bool:
    return not kinds or any(kind == k or kind.startswith(f"{k}.") for k in kinds)


class _Watcher:
    def __init__(self, backlog: int) -> None:
        # None: the feed is closing.
        self.queue: asyncio.Queue[EventView | None] = asyncio.Queue(backlog)
        self.overflowed = False

    def offer(self, event: EventView | None) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True


class EventFeed:
    """Streams of events for Watch calls, from one shared poll of the events table."""

    def __init__(self, store: Store, *, interval: float = 0.2, batch: int = 500, backlog: int = 10_000) -> None:
        self.store = store
        self.interval = interval
        self.batch = batch
        self.backlog = backlog
        self._watchers: set[_Watcher] = set()
        #: The last id the poller read; None while nobody watches.
        self._position: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    async def watch(
        self, kinds: Collection[str] = (), since_id: int | None = None, *, replay_only: bool = False
    ) -> AsyncIterator[EventView]:
        """Events of ``kinds`` (a kind, or the prefix before its dot; none: all) as they are recorded;
        first every one after ``since_id`` when given (and only those with ``replay_only``).
        Raises ResourceExhausted when the caller fell too far behind."""
        if self._closed:
            return
        watcher = _Watcher(self.backlog)
        position = await self._join(watcher)
        try:
            if since_id is not None:
                # The shared poller reads every interval, so its position may lag what is committed
                # (it runs as long as anyone watches, e.g. the MQTT forwarder): a replay reads up to
                # the last committed event; those the poller hands over later are skipped by id.
                position = max(position, await self.store.run(last_event_id))
            last = position if since_id is None else since_id
            while last < position:
                rows = await self.store.run(partial(events_after, after=last, limit=self.batch, upto=position))
                if not rows:
                    break
                for row in rows:
                    last = row.id
                    if _wanted(row.kind, kinds):
                        yield row
            if replay_only:
                return
            while True:
                if watcher.overflowed:
                    raise ResourceExhausted(
                        f"this watcher fell more than {self.backlog} events behind: watch again with since_id={last}"
                    )
                event = await watcher.queue.get()
                if event is None:
                    return
                if event.id <= last:
                    continue
                last = event.id
                if _wanted(event.kind, kinds):
                    yield event
        finally:
            self._leave(watcher)

    async def close(self) -> None:
        """Stop polling and end every watch (and any started later)."""
        self._closed = True
        for watcher in self._watchers:
            watcher.offer(None)
        self._watchers.clear()
        await self._stop_poller()

    async def _join(self, watcher: _Watcher) -> int:
        async with self._lock:
            if self._position is None:
                self._position = await self.store.run(last_event_id)
            self._watchers.add(watcher)
            if self._poller is None:
                self._poller = asyncio.get_running_loop().create_task(self._poll(), name="event-feed")
            return self._position

    def _leave(self, watcher: _Watcher) -> None:
        self._watchers.discard(watcher)
        if not self._watchers and self._poller is not None:
            self._poller.cancel()
            self._poller = None
            self._position = None  # the next first watcher starts from what is new then

    async def _stop_poller(self) -> None:
        poller, self._poller, self._position = self._poller, None, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _poll(self) -> None:
        while True:
            after = self._position
            assert after is not None  # set before the poller starts, cleared when it stops
            try:
                rows = await self.store.run(partial(events_after, after=after, limit=self.batch))
            except StoreClosed:
                return  # the control plane is stopping
            except Exception:  # a database hiccup must not end every watch: try again
                log.exception("reading events failed")
                rows = []
            if rows:
                self._position = rows[-1].id
                for watcher in list(self._watchers):
                    for row in rows:
                        watcher.offer(row)
            if len(rows) < self.batch:
                await asyncio.sleep(self.interval)
