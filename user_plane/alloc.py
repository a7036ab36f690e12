"""Identifier allocators of the UP function: TEIDs, SEIDs, UE addresses, CHIDs.

Theory of operation:

* Every allocator hands out values from a contiguous index space through
  :class:`_IndexAllocator`, which stores **only the indices in use** (a set in
  random mode, bit masks of dense chunks in sequential mode) plus a cursor:
  memory is bounded by the number in use, never by the range (a 32-bit TEID
  range is never materialized).
* Sequential mode: the cursor moves forward and wraps, skipping indices in use.
  A released value is therefore reused as late as possible (only after the
  cursor has gone round the whole range), so a late G-PDU for a deleted session
  is not delivered into a new one (TS 29.281 §5.1: the TEID identifies the
  tunnel endpoint at the receiver). Cost per allocation is one step plus the
  run of in-use values at the cursor: O(1) while the range is not nearly full
  (expected 1/(1 - load) steps), O(in use) in the worst case.
* Random mode (``randomize=True``): each allocation probes from a uniformly
  drawn index, so TEIDs are not guessable by an off-path attacker; with a
  ``seed`` the sequence is deterministic (tests).
* ``len(allocator) == capacity`` raises :class:`Exhausted` at once, without
  scanning; any other allocation terminates because a free index exists.
* Values are never 0 where the spec reserves 0: TEID 0 (TS 29.281 §5.1, used
  for Echo and other signalling messages) and SEID 0 (TS 29.244 §7.2.2.4.2:
  "no session yet" in a Session Establishment Request header).

Everything is pure: no I/O, no clock, no global randomness.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeVar

__all__ = [
    "AllocationError",
    "AlreadyInUse",
    "ChooseIdMap",
    "Exhausted",
    "NotAllocated",
    "OutOfRange",
    "SeidAllocator",
    "TeidAllocator",
    "UeAddressPool",
]

_Net = TypeVar("_Net", IPv4Network, IPv6Network)

#: TS 29.281 §5.1: TEID is a 32-bit field; 0 is reserved for signalling messages.
MAX_TEID = 0xFFFF_FFFF
#: TS 29.244 §7.2.2.4.2: SEID is a 64-bit field; 0 means "no session yet".
MAX_SEID = 0xFFFF_FFFF_FFFF_FFFF
#: TS 23.501 §5.8.2.2: one /64 prefix per IPv6 PDU session.
IPV6_PREFIX_LEN = 64


class AllocationError(Exception):
    """Base class of every allocator error."""


class Exhausted(AllocationError):
    """No value left (the agent answers cause 73/75 No resources available)."""


class NotAllocated(AllocationError):
    """Release of a value that is not in use (a double release is a bug)."""


class AlreadyInUse(AllocationError):
    """Reservation of a value that is already allocated or reserved."""


class OutOfRange(AllocationError):
    """A value outside the allocator's range or pool, or excluded from it."""


#: A _Bitmap chunk covers 2**_CHUNK_SHIFT indices.
_CHUNK_SHIFT = 9
_CHUNK_MASK = (1 << _CHUNK_SHIFT) - 1


class _Bitmap:
    """The indices in use of a sequential allocator, as bit masks of 512 indices each, by
    chunk: sequential allocation keeps them dense (a few bits a session where a set costs
    about 70 bytes an index, TEIDs and SEIDs of 100k sessions alike); a chunk with none in
    use is dropped, so memory still follows the number in use. The set operations used by
    _IndexAllocator; ``add`` expects an index not in use (the allocator checks first)."""

    __slots__ = ("_chunks", "_len")

    def __init__(self) -> None:
        self._chunks: dict[int, int] = {}
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        return bool(self._chunks.get(index >> _CHUNK_SHIFT, 0) >> (index & _CHUNK_MASK) & 1)

    def add(self, index: int) -> None:
        key = index >> _CHUNK_SHIFT
        self._chunks[key] = self._chunks.get(key, 0) | 1 << (index & _CHUNK_MASK)
        self._len += 1

    def remove(self, index: int) -> None:
        key = index >> _CHUNK_SHIFT
        bit = 1 << (index & _CHUNK_MASK)
        mask = self._chunks.get(key, 0)
        if not mask & bit:
            raise KeyError(index)
        mask ^= bit
        if mask:
            self._chunks[key] = mask
        else:
            del self._chunks[key]
        self._len -= 1

    def __iter__(self) -> Iterator[int]:
        for key, mask in list(self._chunks.items()):
            base = key << _CHUNK_SHIFT
            while mask:
                low = mask & -mask
                yield base + low.bit_length() - 1
                mask ^= low


class _IndexAllocator:
    """Indices ``0 .. size-1`` minus ``excluded``; stores the ones in use only."""

    __slots__ = ("_cursor", "_excluded", "_high", "_in_use", "_rng", "_size", "capacity")

    def __init__(self, size: int, excluded: frozenset[int], rng: random.Random | None) -> None:
        if size <= 0:
            raise ValueError("empty range")
        self._size = size
        self._excluded = excluded
        # Random mode scatters the indices over the range: a set; sequential mode: a bitmap.
        self._in_use: set[int] | _Bitmap = set() if rng is not None else _Bitmap()
        self._high = 0  # most entries _in_use held since it was last rebuilt
        self._cursor = 0
        self._rng = rng
        self.capacity = size - len(excluded)

    def __len__(self) -> int:
        return len(self._in_use)

    def _busy(self, index: int) -> bool:
        return index in self._in_use or index in self._excluded

    def allocate(self) -> int:
        if len(self._in_use) >= self.capacity:
            raise Exhausted(f"all {self.capacity} values in use")
        index = self._cursor if self._rng is None else self._rng.randrange(self._size)
        while self._busy(index):  # terminates: a free index exists (checked above)
            index = index + 1 if index + 1 < self._size else 0
        self._add(index)
        if self._rng is None:
            self._cursor = index + 1 if index + 1 < self._size else 0
        return index

    def reserve(self, index: int) -> None:
        if index in self._excluded:
            raise OutOfRange("value is excluded from the pool")
        if index in self._in_use:
            raise AlreadyInUse("value already in use")
        self._add(index)

    def _add(self, index: int) -> None:
        self._in_use.add(index)
        self._high = max(self._high, len(self._in_use))

    def release(self, index: int) -> None:
        try:
            self._in_use.remove(index)
        except KeyError:
            raise NotAllocated("value is not in use") from None
        # A set never shrinks its table on removal: rebuild it once it is mostly
        # empty, so memory follows the number in use, not its past peak
        # (amortized O(1): a rebuild of n entries follows at least 7n releases).
        if self._high > 64 and len(self._in_use) * 8 < self._high:
            if isinstance(self._in_use, set):
                self._in_use = set(self._in_use)
            self._high = len(self._in_use)

    def in_use(self, index: int) -> bool:
        return index in self._in_use

    def excluded(self, index: int) -> bool:
        return index in self._excluded

    def __iter__(self) -> Iterator[int]:
        return iter(self._in_use)


class _IdAllocator:
    """Integers ``first .. last`` (never 0): the common body of TEID and SEID allocators."""

    _MAX = 0
    _WHAT = ""

    def __init__(self, first: int = 1, last: int | None = None, *, randomize: bool = False, seed: int | None = None):
        last = self._MAX if last is None else last
        if not 1 <= first <= last <= self._MAX:
            raise ValueError(f"{self._WHAT} range must satisfy 1 <= first <= last <= {self._MAX:#x}")
        self.first = first
        self.last = last
        rng = random.Random(seed) if randomize else None
        self._indices = _IndexAllocator(last - first + 1, frozenset(), rng)

    @property
    def capacity(self) -> int:
        """How many values the range holds."""
        return self._indices.capacity

    def __len__(self) -> int:
        return len(self._indices)

    def __iter__(self) -> Iterator[int]:
        """The values in use, in no particular order."""
        return (self.first + i for i in self._indices)

    def _index(self, value: int) -> int:
        if not self.first <= value <= self.last:
            raise OutOfRange(f"{self._WHAT} {value:#x} outside {self.first:#x}..{self.last:#x}")
        return value - self.first

    def allocate(self) -> int:
        """A value not in use; raises :class:`Exhausted` when the range is full."""
        return self.first + self._indices.allocate()

    def reserve(self, value: int) -> None:
        """Mark ``value`` in use (e.g. re-installing state); raises if taken or out of range."""
        self._indices.reserve(self._index(value))

    def release(self, value: int) -> None:
        """Give ``value`` back; raises :class:`NotAllocated` if it is not in use."""
        if not self.first <= value <= self.last:
            raise NotAllocated(f"{self._WHAT} {value:#x} was never allocated here")
        self._indices.release(value - self.first)

    def in_use(self, value: int) -> bool:
        """Whether ``value`` is currently allocated or reserved."""
        return self.first <= value <= self.last and self._indices.in_use(value - self.first)


class TeidAllocator(_IdAllocator):
    """Local TEIDs for F-TEIDs the UP function chooses (TS 29.244 §5.5.3, CH flag §8.2.3).

    TEID 0 is never handed out: TS 29.281 §5.1 reserves it for messages that are
    not tied to a tunnel (Echo Request/Response, Supported Extension Headers).
    """

    _MAX = MAX_TEID
    _WHAT = "TEID"


class SeidAllocator(_IdAllocator):
    """Local F-SEIDs of the UP function (F-SEID, TS 29.244 §8.2.37).

    SEID 0 is never handed out: TS 29.244 §7.2.2.4.2 uses SEID 0 in the header
    of a Session Establishment Request, when the peer has no SEID yet.
    """

    _MAX = MAX_SEID
    _WHAT = "SEID"


class _Segments:
    """Index space over several disjoint integer ranges ``(start, count)``."""

    __slots__ = ("_segments", "size")

    def __init__(self, segments: list[tuple[int, int]]) -> None:
        self._segments = segments
        self.size = sum(count for _, count in segments)

    def value(self, index: int) -> int:
        for start, count in self._segments:  # a pool has a handful of networks
            if index < count:
                return start + index
            index -= count
        raise IndexError(index)

    def index(self, value: int) -> int | None:
        base = 0
        for start, count in self._segments:
            if start <= value < start + count:
                return base + value - start
            base += count
        return None


def _ipv4_segment(net: IPv4Network) -> tuple[int, int]:
    # TS 23.501 §5.8.2.2 leaves the address to the pool; the network and
    # broadcast addresses are not host addresses (RFC 919/922), except in /31
    # (RFC 3021) and /32, whose every address is usable.
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.prefixlen < 31:
        first, last = first + 1, last - 1
    return first, last - first + 1


def _ipv6_segment(net: IPv6Network) -> tuple[int, int]:
    # Index i is the i-th /64 of the network: value = network >> 64, plus i.
    if net.prefixlen > IPV6_PREFIX_LEN:
        raise ValueError(f"{net} is longer than /{IPV6_PREFIX_LEN}: no /64 fits (TS 23.501 §5.8.2.2)")
    shift = 128 - IPV6_PREFIX_LEN
    return int(net.network_address) >> shift, 1 << (IPV6_PREFIX_LEN - net.prefixlen)


def _disjoint(nets: list[_Net]) -> None:
    for i, a in enumerate(nets):
        for b in nets[i + 1 :]:
            if a.overlaps(b):
                raise ValueError(f"pool networks {a} and {b} overlap")


class UeAddressPool:
    """UE IPv4 addresses and IPv6 /64 prefixes (TS 23.501 §5.8.2.2).

    The UP function allocates from this pool when the CP asks it to (UE IP
    Address IE with CHV4/CHV6, TS 29.244 §8.2.62), and reserves the address the
    CP chose when the IE carries one (static or SMF-allocated addresses).

    * IPv4: every host address of the networks, without network and broadcast
      addresses (except in /31 and /32) and without ``exclude`` (e.g. the N6
      gateway address).
    * IPv6: one /64 per PDU session (TS 23.501 §5.8.2.2) carved from the
      networks, which must be /64 or shorter. An excluded IPv6 address removes
      the /64 holding it; an IPv6 address given to :meth:`reserve`,
      :meth:`release` or :meth:`in_use` stands for its /64.
    """

    def __init__(
        self,
        networks: Iterable[IPv4Network | IPv6Network],
        *,
        exclude: Iterable[IPv4Address | IPv6Address] = (),
        randomize: bool = False,
        seed: int | None = None,
    ) -> None:
        nets = list(networks)
        v4 = [n for n in nets if isinstance(n, IPv4Network)]
        v6 = [n for n in nets if isinstance(n, IPv6Network)]
        if not nets:
            raise ValueError("an address pool needs at least one network")
        _disjoint(v4)
        _disjoint(v6)
        self.networks: tuple[IPv4Network | IPv6Network, ...] = tuple(nets)
        rng = random.Random(seed) if randomize else None
        self._v4 = _Segments([_ipv4_segment(n) for n in v4])
        self._v6 = _Segments([_ipv6_segment(n) for n in v6])
        excluded4: set[int] = set()
        excluded6: set[int] = set()
        for address in exclude:
            if isinstance(address, IPv4Address):
                i = self._v4.index(int(address))
                if i is not None:
                    excluded4.add(i)
            else:
                i = self._v6.index(int(address) >> (128 - IPV6_PREFIX_LEN))
                if i is not None:
                    excluded6.add(i)
        self._idx4 = _IndexAllocator(self._v4.size, frozenset(excluded4), rng) if v4 else None
        self._idx6 = _IndexAllocator(self._v6.size, frozenset(excluded6), rng) if v6 else None

    # -- sizes ----------------------------------------------------------------

    @property
    def capacity_ipv4(self) -> int:
        """How many IPv4 addresses the pool can hand out."""
        return 0 if self._idx4 is None else self._idx4.capacity

    @property
    def capacity_ipv6(self) -> int:
        """How many IPv6 /64 prefixes the pool can hand out."""
        return 0 if self._idx6 is None else self._idx6.capacity

    def __len__(self) -> int:
        """Addresses plus prefixes in use."""
        return (0 if self._idx4 is None else len(self._idx4)) + (0 if self._idx6 is None else len(self._idx6))

    # -- allocation -----------------------------------------------------------

    def allocate_ipv4(self) -> IPv4Address:
        """A free UE IPv4 address; :class:`Exhausted` when none is left or no IPv4 network."""
        if self._idx4 is None:
            raise Exhausted("the pool has no IPv4 network")
        return IPv4Address(self._v4.value(self._idx4.allocate()))

    def allocate_ipv6(self) -> IPv6Network:
        """A free /64 prefix (TS 23.501 §5.8.2.2); :class:`Exhausted` when none is left."""
        if self._idx6 is None:
            raise Exhausted("the pool has no IPv6 network")
        return self._prefix(self._v6.value(self._idx6.allocate()))

    def reserve(self, address: IPv4Address | IPv6Address | IPv6Network) -> None:
        """Mark an address (or the /64 of an IPv6 address) chosen by the CP as in use.

        Raises :class:`OutOfRange` outside the pool or on an excluded address,
        :class:`AlreadyInUse` if allocated or reserved already.
        """
        allocator, index = self._locate(address)
        if allocator is None or index is None:
            raise OutOfRange(f"{address} is not in the pool")
        allocator.reserve(index)

    def release(self, address: IPv4Address | IPv6Address | IPv6Network) -> None:
        """Give back an address or prefix; :class:`NotAllocated` if it is not in use."""
        allocator, index = self._locate(address)
        if allocator is None or index is None:
            raise NotAllocated(f"{address} is not in the pool")
        allocator.release(index)

    def in_use(self, address: IPv4Address | IPv6Address | IPv6Network) -> bool:
        """Whether the address (or /64 prefix) is allocated or reserved."""
        allocator, index = self._locate(address)
        return allocator is not None and index is not None and allocator.in_use(index)

    def __contains__(self, address: object) -> bool:
        """Whether the address belongs to the pool (allocatable, whether in use or not)."""
        if not isinstance(address, (IPv4Address, IPv6Address, IPv6Network)):
            return False
        try:
            allocator, index = self._locate(address)
        except OutOfRange:  # an IPv6 prefix other than a /64
            return False
        return allocator is not None and index is not None and not allocator.excluded(index)

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def _prefix(value: int) -> IPv6Network:
        return IPv6Network((value << (128 - IPV6_PREFIX_LEN), IPV6_PREFIX_LEN))

    def _locate(self, address: IPv4Address | IPv6Address | IPv6Network) -> tuple[_IndexAllocator | None, int | None]:
        if isinstance(address, IPv4Address):
            return self._idx4, self._v4.index(int(address))
        if isinstance(address, IPv6Network):
            if address.prefixlen != IPV6_PREFIX_LEN:
                raise OutOfRange(f"{address} is not a /{IPV6_PREFIX_LEN} prefix")
            address = address.network_address
        if isinstance(address, IPv6Address):
            return self._idx6, self._v6.index(int(address) >> (128 - IPV6_PREFIX_LEN))
        raise TypeError(f"not an IP address: {address!r}")  # pragma: no cover - typing guards this


class ChooseIdMap:
    """CHOOSE ID -> TEID within one PFCP session (TS 29.244 §5.2.3.1, §8.2.3).

    When the CP sets CH with a CHID, the UP function assigns the same F-TEID to
    every PDR of the session carrying that CHID; PDRs with CH but no CHID each
    get their own TEID (allocate those directly from the allocator). The map is
    released with the session, or rolled back with a request that failed
    (:meth:`release_all`).
    """

    __slots__ = ("_allocate", "_release", "_teids")

    def __init__(self, allocate: Callable[[], int], release: Callable[[int], None]) -> None:
        self._allocate = allocate
        self._release = release
        self._teids: dict[int, int] = {}

    @classmethod
    def over(cls, allocator: TeidAllocator) -> ChooseIdMap:
        """A map drawing its TEIDs from ``allocator``."""
        return cls(allocator.allocate, allocator.release)

    def teid_for(self, chid: int) -> int:
        """The TEID of ``chid``, allocated on its first use (may raise :class:`Exhausted`)."""
        if not 0 <= chid <= 0xFF:  # §8.2.3: CHID is one octet
            raise ValueError(f"CHOOSE ID {chid} is not one octet")
        teid = self._teids.get(chid)
        if teid is None:
            teid = self._teids[chid] = self._allocate()
        return teid

    def get(self, chid: int) -> int | None:
        """The TEID of ``chid`` if one was allocated, without allocating."""
        return self._teids.get(chid)

    def __contains__(self, chid: object) -> bool:
        return chid in self._teids

    def __len__(self) -> int:
        return len(self._teids)

    def items(self) -> list[tuple[int, int]]:
        """``(chid, teid)`` pairs in allocation order."""
        return list(self._teids.items())

    def release_all(self) -> None:
        """Give every TEID back to the allocator and forget the CHIDs."""
        teids, self._teids = list(self._teids.values()), {}
        for teid in teids:
            self._release(teid)
