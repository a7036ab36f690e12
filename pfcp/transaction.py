"""Transactions of TS 29.244 §6.4: retransmission of our requests and
duplicate detection of the peer's, as plain data structures with no clock of
their own (every method takes ``now``).

Theory of operation
-------------------
* A request we send is a :class:`TxTransaction` keyed by (peer, sequence
  number). It is sent once and resent every T1 until a response arrives; after
  N1 resends it times out.
* A request we receive is remembered in the :class:`RxCache` under the same
  key. While the application works on it, a retransmission is dropped; once
  answered, a retransmission gets the cached response bytes again and the
  application never sees it. Entries live T1 x (N1 + 1): as long as the peer
  can still be retransmitting (§6.4). The cache is bounded: under a flood the
  oldest entries go first.
* T1 and N1 come from one :class:`RetransmitPolicy`; the holding time is
  derived from them, never configured apart.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from dataclasses import dataclass

from .events import Address
from .messages import Message

__all__ = ["RetransmitPolicy", "RxCache", "RxEntry", "TxQueue", "TxTransaction"]

#: Sequence numbers are 24 bits (§7.2.2.1).
SEQUENCE_MODULO = 1 << 24


@dataclass(frozen=True, slots=True)
class RetransmitPolicy:
    """T1 (seconds between sends) and N1 (resends before giving up)."""

    t1: float = 3.0
    n1: int = 3

    def __post_init__(self) -> None:
        if self.t1 <= 0 or self.n1 < 0:
            raise ValueError("T1 must be positive and N1 not negative")

    @property
    def holding_time(self) -> float:
        """How long a peer may retransmit a request: T1 x (N1 + 1)."""
        return self.t1 * (self.n1 + 1)


@dataclass(slots=True)
class TxTransaction:
    """A request we sent and have no answer for yet."""

    peer: Address
    sequence: int
    request: Message
    data: bytes
    sent: int  # how many times the bytes went out
    deadline: float  # when to resend, or give up


class TxQueue:
    """Pending requests by (peer, sequence number), with a heap of deadlines."""

    def __init__(self, policy: RetransmitPolicy) -> None:
        self.policy = policy
        self._pending: dict[tuple[Address, int], TxTransaction] = {}
        self._heap: list[tuple[float, int, tuple[Address, int]]] = []
        self._tie = 0

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: tuple[Address, int]) -> bool:
        return key in self._pending

    def add(self, tx: TxTransaction) -> None:
        """Track ``tx``, sent once already at ``tx.deadline - T1``."""
        self._pending[(tx.peer, tx.sequence)] = tx
        self._push(tx)

    def get(self, peer: Address, sequence: int) -> TxTransaction | None:
        """The pending transaction for (peer, sequence), if any."""
        return self._pending.get((peer, sequence))

    def pop(self, peer: Address, sequence: int) -> TxTransaction | None:
        """Remove and return the transaction a response answers (None if unknown)."""
        return self._pending.pop((peer, sequence), None)

    def next_deadline(self) -> float | None:
        """The earliest deadline of a live transaction."""
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            tx = self._pending.get(key)
            if tx is not None and tx.deadline == deadline:
                return deadline
            heapq.heappop(heap)  # answered, or superseded by a later deadline
        return None

    def due(self, now: float) -> tuple[list[TxTransaction], list[TxTransaction]]:
        """Transactions whose deadline passed: (to resend, timed out).

        Resent ones get their next deadline, T1 after ``now`` (the resend), so a
        late call resends each transaction once rather than in a burst of
        catch-up copies; timed-out ones are removed.
        """
        resend: list[TxTransaction] = []
        expired: list[TxTransaction] = []
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > now:
                return resend, expired
            _, _, key = heapq.heappop(self._heap)
            tx = self._pending[key]
            if tx.sent > self.policy.n1:
                del self._pending[key]
                expired.append(tx)
            else:
                tx.sent += 1
                tx.deadline = now + self.policy.t1
                self._push(tx)
                resend.append(tx)

    def drop_peer(self, peer: Address) -> list[TxTransaction]:
        """Forget every request pending towards ``peer``."""
        gone = [tx for key, tx in self._pending.items() if key[0] == peer]
        for tx in gone:
            del self._pending[(tx.peer, tx.sequence)]
        return gone

    def _push(self, tx: TxTransaction) -> None:
        self._tie += 1
        heapq.heappush(self._heap, (tx.deadline, self._tie, (tx.peer, tx.sequence)))


#: A request received: (expires, digest, response); ``response`` is None while
#: the application works on it.
#:
#: ``digest`` identifies the request's bytes: a retransmission is identical
#: (§6.4), so a different request under the same (peer, sequence number), from a
#: peer that restarted and counts from 1 again, is a new request.
#:
#: A plain tuple of plain values on purpose: the garbage collector stops tracking
#: exact tuples of untracked values (not tuple subclasses such as a NamedTuple),
#: so a cache of 100,000 entries costs it nothing to scan.
RxEntry = tuple[float, int, bytes | None]


class RxCache:
    """Recently received requests by (peer, sequence number), oldest first."""

    def __init__(self, policy: RetransmitPolicy, max_entries: int = 100_000) -> None:
        self.policy = policy
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Address, int], RxEntry] = OrderedDict()
        self.evicted = 0
        self._holding_time = policy.holding_time  # a property of a frozen policy: computed once
        #: No entry expires before this (a lower bound, lowered on every insert;
        #: removals only raise the true minimum), so :meth:`begin` skips
        #: :meth:`expire` while nothing can be due.
        self._expiry_floor = math.inf

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[Address, int], now: float, digest: int = 0) -> RxEntry | None:
        """The live entry for ``key`` holding the same request, or None if new."""
        entry = self._entries.get(key)
        if entry is not None and (entry[0] <= now or entry[1] != digest):
            del self._entries[key]
            return None
        return entry

    def receive(self, key: tuple[Address, int], now: float, digest: int) -> RxEntry | None:
        """:meth:`get`, then :meth:`begin` when the request is new (None returned):
        one call per received request."""
        entries = self._entries
        entry = entries.get(key)
        if entry is not None:
            if entry[0] > now and entry[1] == digest:
                return entry
            del entries[key]
        self.begin(key, now, digest)
        return None

    def begin(self, key: tuple[Address, int], now: float, digest: int = 0) -> RxEntry:
        """Remember a new request handed to the application."""
        entries = self._entries
        if now >= self._expiry_floor:
            self.expire(now)
        while len(entries) >= self.max_entries:
            entries.popitem(last=False)
            self.evicted += 1
        expires = now + self._holding_time
        if expires < self._expiry_floor:
            self._expiry_floor = expires
        entry = (expires, digest, None)
        entries[key] = entry
        return entry

    def answer(self, key: tuple[Address, int], data: bytes, now: float) -> None:
        """Cache the response sent for ``key`` (for the peer's retransmissions)."""
        entry = self._entries.get(key)
        if entry is None:  # expired or evicted while the application worked
            entry = self.begin(key, now)
        self._entries[key] = (entry[0], entry[1], data)  # same key: keeps its place

    def expire(self, now: float) -> None:
        """Drop entries past their holding time (entries are in arrival order)."""
        entries = self._entries
        while entries:
            key, entry = next(iter(entries.items()))
            if entry[0] > now:
                self._expiry_floor = entry[0]
                return
            del entries[key]
        self._expiry_floor = math.inf

    def next_deadline(self) -> float | None:
        """When the oldest entry expires."""
        for entry in self._entries.values():
            return entry[0]
        return None
