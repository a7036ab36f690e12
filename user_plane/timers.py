"""The URR deadlines of every session of a forwarder: a heap with lazy deletion.

Why: :meth:`Forwarder.next_deadline` used to ask every meter of every session
(O(N) per call, and the I/O layer asks after every install). Here install, tick and
next_deadline are O(log N) amortized.

How: entries are ``(deadline, sequence, UP SEID, meter)``. An entry is acted on
only while ``current(up_seid, urr_id)`` still is its meter and the meter's own
:meth:`~user_plane.usage.UrrMeter.next_deadline` still says that deadline; anything
else is stale and dropped, or filed again at the meter's current deadline when
that moved later. The owner files a new entry (:meth:`UrrTimers.schedule`) on every
change that can bring a deadline *earlier* (a meter created or updated, a query, a
tick, a packet that set ``timers_changed``), so the first valid entry is the earliest
deadline. Stale entries are dropped as they surface, and the whole heap is rebuilt
once it holds more than twice the live meters (amortized O(1) per schedule).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Final

from .usage import UrrMeter

__all__ = ["UrrTimers"]

#: Stale entries tolerated beyond twice the live meters before the heap is rebuilt.
SLACK: Final = 1024

_Entry = tuple[float, int, int, UrrMeter]


class UrrTimers:
    """Deadlines of the meters ``current(up_seid, urr_id)`` returns (None: gone).

    ``meters`` is the number of live meters (kept by the owner) and ``everything()``
    lists them all as (UP SEID, meter), for rebuilding the heap.
    """

    def __init__(
        self,
        current: Callable[[int, int], UrrMeter | None],
        everything: Callable[[], Iterable[tuple[int, UrrMeter]]],
    ) -> None:
        self._current = current
        self._everything = everything
        self._heap: list[_Entry] = []
        self._sequence = 0
        self.meters = 0

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, up_seid: int, meter: UrrMeter) -> None:
        """File the meter's current deadline (nothing if it has none)."""
        deadline = meter.next_deadline()
        if deadline is None:
            return
        self._sequence += 1
        heapq.heappush(self._heap, (deadline, self._sequence, up_seid, meter))
        if len(self._heap) > 2 * self.meters + SLACK:
            self._rebuild()

    def _rebuild(self) -> None:
        heap: list[_Entry] = []
        for up_seid, meter in self._everything():
            deadline = meter.next_deadline()
            if deadline is not None:
                self._sequence += 1
                heap.append((deadline, self._sequence, up_seid, meter))
        heapq.heapify(heap)
        self._heap = heap

    def _live(self, up_seid: int, meter: UrrMeter) -> bool:
        return self._current(up_seid, meter.urr.urr_id) is meter

    def next_deadline(self) -> float | None:
        """The earliest deadline of a live meter, or None."""
        heap = self._heap
        while heap:
            deadline, _, up_seid, meter = heap[0]
            if self._live(up_seid, meter):
                current = meter.next_deadline()
                if current == deadline:
                    return deadline
                heapq.heappop(heap)
                if current is not None:  # moved (later): file it where it is now
                    self._sequence += 1
                    heapq.heappush(heap, (current, self._sequence, up_seid, meter))
            else:
                heapq.heappop(heap)
        return None

    def due(self, now: float) -> dict[int, set[int]]:
        """Take the entries due by ``now``: the ``id()`` of each live meter whose deadline has
        come, by UP SEID (each meter once). The caller ticks them and schedules them again."""
        heap = self._heap
        due: dict[int, set[int]] = {}
        later: list[tuple[int, UrrMeter]] = []
        while heap and heap[0][0] <= now:
            _, _, up_seid, meter = heapq.heappop(heap)
            if not self._live(up_seid, meter):
                continue
            current = meter.next_deadline()
            if current is None:
                continue
            if current > now:
                later.append((up_seid, meter))
            else:
                due.setdefault(up_seid, set()).add(id(meter))
        for up_seid, meter in later:
            self.schedule(up_seid, meter)
        return due
