"""A lossy UDP relay on loopback: drops, duplicates and delays datagrams.

Side A sends to :attr:`LossyRelay.front_address` and believes that is its peer;
the relay forwards out of its back socket, so side B sees every datagram coming
from :attr:`LossyRelay.back_address`, and its answers go back the same way.

Each direction draws its faults from its own seeded :class:`random.Random`, one
draw per datagram in arrival order:

* drop: the datagram is gone;
* duplicate: it is forwarded now and a copy follows after a random delay;
* delay: it is forwarded after a random delay, so later datagrams may overtake it.

``reordered`` counts what actually happened on the wire, not what was planned:
a datagram sent after one that arrived later than it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Address = tuple[str, int]


@dataclass(frozen=True)
class Impairment:
    """Probabilities per datagram (they add up to the share that is impaired)."""

    drop: float = 0.07
    duplicate: float = 0.07
    delay: float = 0.06
    #: Longest delay of a delayed datagram or of a duplicate's copy, in seconds.
    max_delay: float = 0.020

    def __post_init__(self) -> None:
        shares = (self.drop, self.duplicate, self.delay)
        if min(shares) < 0 or sum(shares) > 1 or self.max_delay <= 0:
            raise ValueError(f"bad impairment {self}")


@dataclass
class LinkStats:
    """What one direction of the relay did."""

    received: int = 0
    sent: int = 0  # datagrams sent, duplicate copies included
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0
    reordered: int = 0  # observed: sent after a datagram that arrived later
    stray: int = 0  # from an address that is not the expected sender (ignored)


class _Link:
    """One direction: datagrams from ``source`` leave through ``out`` towards ``dest``."""

    def __init__(self, rng: random.Random, impairment: Impairment, source: Address, dest: Address) -> None:
        self.rng = rng
        self.impairment = impairment
        self.source = source
        self.dest = dest
        self.stats = LinkStats()
        self.out: asyncio.DatagramTransport | None = None
        self._arrivals = 0
        self._highest_sent = -1
        self._pending: set[asyncio.TimerHandle] = set()

    def on_datagram(self, data: bytes, addr: Address) -> None:
        stats = self.stats
        if addr != self.source:
            stats.stray += 1
            return
        index = self._arrivals
        self._arrivals += 1
        stats.received += 1
        imp = self.impairment
        draw = self.rng.random()
        if draw < imp.drop:
            stats.dropped += 1
        elif draw < imp.drop + imp.duplicate:
            stats.duplicated += 1
            self._send(data, index, copy=False)
            self._later(self.rng.uniform(0.0, imp.max_delay), data, index, copy=True)
        elif draw < imp.drop + imp.duplicate + imp.delay:
            stats.delayed += 1
            self._later(self.rng.uniform(0.001, imp.max_delay), data, index, copy=False)
        else:
            self._send(data, index, copy=False)

    def close(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()

    def _later(self, delay: float, data: bytes, index: int, *, copy: bool) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            assert handle is not None
            self._pending.discard(handle)
            self._send(data, index, copy=copy)

        handle = loop.call_later(delay, fire)
        self._pending.add(handle)

    def _send(self, data: bytes, index: int, *, copy: bool) -> None:
        if self.out is None or self.out.is_closing():
            return
        if not copy:
            if index < self._highest_sent:
                self.stats.reordered += 1
            else:
                self._highest_sent = index
        self.out.sendto(data, self.dest)
        self.stats.sent += 1


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.on_datagram(data, (addr[0], addr[1]))


class LossyRelay:
    """Relays UDP between ``a`` and ``b`` through two loopback sockets, impairing both directions."""

    def __init__(self, seed: int, impairment: Impairment | None = None) -> None:
        self.seed = seed
        self.impairment = impairment or Impairment()
        self.front_address: Address | None = None
        self.back_address: Address | None = None
        self._links: list[_Link] = []
        self._transports: list[asyncio.DatagramTransport] = []

    @property
    def a_to_b(self) -> LinkStats:
        return self._links[0].stats

    @property
    def b_to_a(self) -> LinkStats:
        return self._links[1].stats

    async def start(self, a: Address, b: Address, host: str = "127.0.0.1") -> tuple[Address, Address]:
        """Bind the front (A's view of B) and back (B's view of A) sockets; returns both addresses."""
        loop = asyncio.get_running_loop()
        forward = _Link(random.Random(self.seed * 2), self.impairment, a, b)
        backward = _Link(random.Random(self.seed * 2 + 1), self.impairment, b, a)
        self._links = [forward, backward]
        front, _ = await loop.create_datagram_endpoint(lambda: _Socket(forward.on_datagram), local_addr=(host, 0))
        self._transports.append(front)
        back, _ = await loop.create_datagram_endpoint(lambda: _Socket(backward.on_datagram), local_addr=(host, 0))
        self._transports.append(back)
        forward.out, backward.out = back, front
        self.front_address = _sockname(front)
        self.back_address = _sockname(back)
        return self.front_address, self.back_address

    def close(self) -> None:
        """Cancel delayed datagrams and close both sockets."""
        for link in self._links:
            link.close()
        for transport in self._transports:
            transport.close()


def _sockname(transport: asyncio.DatagramTransport) -> Address:
    name = transport.get_extra_info("sockname")
    return (name[0], name[1])
