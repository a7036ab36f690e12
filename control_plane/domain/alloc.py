"""Allocators for UE IP addresses and prefixes, N3 TEIDs and CP SEIDs.

Pure bookkeeping: no database, no I/O. The database is the source of truth;
at start the service rebuilds each allocator by calling ``reserve`` for every
value a stored session holds, then ``allocate`` never returns one of them. The
database's unique constraints refuse a double allocation even if this code
were wrong.

Concurrency: the control plane runs on one asyncio thread and no method here
awaits, so each call is atomic with respect to other tasks; there are no locks.
Do not share an allocator between threads.

Memory and time: nothing is materialised per address. Each allocator keeps a
cursor (every value at or above it that is not in the taken set is free) and
the set of values taken; values released below the cursor go to a min-heap of
holes so the lowest free value is reused first. Allocation is O(1) amortised
(O(log n) when reusing a hole); memory grows with the number of values in use,
so an IPv4 /8 or an IPv6 /32 of /64 prefixes (2**32 of them) costs nothing
until used.
"""

from __future__ import annotations

import heapq
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

__all__ = [
    "MAX_SEID",
    "MAX_TEID",
    "AllocationError",
    "PoolAllocator",
    "PoolExhausted",
    "SeidBlock",
    "SeidBlockExhausted",
    "TeidAllocator",
]

#: Largest TEID: the field is 4 octets (TS 29.281 §5.1).
MAX_TEID = 0xFFFF_FFFF
#: Largest SEID: the field is 8 octets (TS 29.244 §7.2.2.4.2).
MAX_SEID = 0xFFFF_FFFF_FFFF_FFFF


class AllocationError(Exception):
    """A value cannot be allocated, reserved or released; the message says why."""


class PoolExhausted(AllocationError):
    """Every value of the pool is in use."""


class SeidBlockExhausted(PoolExhausted):
    """Every SEID of the block was handed out: the service must claim a new block."""


class _IndexSpace:
    """Free/taken bookkeeping over the integers 0..size-1 (cursor + taken set + holes)."""

    __slots__ = ("_cursor", "_hole_heap", "_holes", "_taken", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._cursor = 0
        self._taken: set[int] = set()
        # Free indexes below the cursor; the heap may hold stale entries (lazy deletion).
        self._holes: set[int] = set()
        self._hole_heap: list[int] = []

    @property
    def used(self) -> int:
        return len(self._taken)

    def is_taken(self, index: int) -> bool:
        return index in self._taken

    def take_lowest(self) -> int | None:
        if len(self._taken) >= self.size:
            return None
        while self._hole_heap:
            index = heapq.heappop(self._hole_heap)
            if index in self._holes:
                self._holes.discard(index)
                self._taken.add(index)
                return index
        # No hole: every free index is at or above the cursor, and one exists.
        while self._cursor in self._taken:
            self._cursor += 1
        index = self._cursor
        self._cursor += 1
        self._taken.add(index)
        return index

    def take(self, index: int) -> bool:
        """Mark ``index`` taken; False if it already was."""
        if index in self._taken:
            return False
        if index < self._cursor:
            self._holes.discard(index)  # its heap entry goes stale
        self._taken.add(index)
        return True

    def give_back(self, index: int) -> bool:
        """Mark ``index`` free; False if it was not taken."""
        if index not in self._taken:
            return False
        self._taken.discard(index)
        if index < self._cursor:
            self._holes.add(index)
            heapq.heappush(self._hole_heap, index)
        return True


class PoolAllocator:
    """UE addresses (IPv4) or UE prefixes (IPv6) from one pool prefix.

    An IPv4 pool hands out single addresses ("198.19.0.5"); below /31 it never
    hands out the network or broadcast address (a /31 or /32 pool uses every
    address, RFC 3021). An IPv6 pool hands out prefixes of ``prefix_length``
    bits (default 64, one /64 per PDU session as TS 23.501 §5.8.2.2.3 allocates)
    as "2001:db8:0:5::/64". The lowest free value is handed out first.
    """

    __slots__ = ("_base", "_family", "_first", "_network", "_prefix_length", "_space", "_step")

    def __init__(self, cidr: str, prefix_length: int | None = None) -> None:
        try:
            network = ip_network(cidr, strict=True)
        except (TypeError, ValueError) as exc:
            hint = ""
            try:
                hint = f"; did you mean {ip_network(cidr, strict=False)}?"
            except (TypeError, ValueError):
                pass  # not even a loose prefix: nothing to suggest
            raise AllocationError(f"pool cidr {cidr!r} is not a network prefix ({exc}){hint}") from None
        self._network: IPv4Network | IPv6Network = network
        self._base = int(network.network_address)
        if isinstance(network, IPv4Network):
            if prefix_length not in (None, 32):
                raise AllocationError(
                    f"IPv4 pool {network} hands out single addresses: prefix_length must be 32, not {prefix_length}"
                )
            self._family = 4
            self._prefix_length = 32
            self._step = 1
            count = network.num_addresses
            # Network and broadcast addresses are unusable below /31 (RFC 3021 for /31).
            self._first = 1 if network.prefixlen < 31 else 0
            size = count - 2 if network.prefixlen < 31 else count
        else:
            length = 64 if prefix_length is None else prefix_length
            if not isinstance(length, int) or not network.prefixlen <= length <= 128:
                raise AllocationError(
                    f"IPv6 pool {network}: per-UE prefix_length must be between {network.prefixlen} and 128, "
                    f"not {prefix_length}"
                )
            self._family = 6
            self._prefix_length = length
            self._step = 1 << (128 - length)
            self._first = 0
            size = 1 << (length - network.prefixlen)
        self._space = _IndexSpace(size)

    def __repr__(self) -> str:
        return f"PoolAllocator({self.cidr!r}, prefix_length={self._prefix_length}, used={self.used}/{self.size})"

    @property
    def cidr(self) -> str:
        """The pool prefix, normalised ("198.19.0.0/16")."""
        return str(self._network)

    @property
    def family(self) -> int:
        """4 or 6."""
        return self._family

    @property
    def prefix_length(self) -> int:
        """Length of what one UE gets: 32 for IPv4, the per-UE prefix length for IPv6."""
        return self._prefix_length

    @property
    def size(self) -> int:
        """How many values the pool can hand out in all."""
        return self._space.size

    @property
    def used(self) -> int:
        """How many values are allocated or reserved."""
        return self._space.used

    @property
    def free(self) -> int:
        """How many values are left."""
        return self._space.size - self._space.used

    def allocate(self) -> str:
        """Hand out the lowest free value; raises :class:`PoolExhausted` when none is left."""
        index = self._space.take_lowest()
        if index is None:
            raise PoolExhausted(f"pool {self.cidr} is exhausted: all {self.size} values are in use")
        return self._format(index)

    def reserve(self, value: str) -> None:
        """Take ``value`` out of the pool (a static IP, or a session reloaded from the database).

        Raises :class:`AllocationError` when the value is not one this pool can hand
        out (another family, outside the prefix, misaligned, network or broadcast
        address) or is already taken. An IPv6 value is a prefix ("2001:db8:0:5::/64")
        or the bare address that starts one ("2001:db8:0:5::").
        """
        index = self._index(value)
        if not self._space.take(index):
            raise AllocationError(f"{value} is already allocated in pool {self.cidr}")

    def release(self, value: str) -> None:
        """Give ``value`` back to the pool; raises :class:`AllocationError` if it was not allocated."""
        index = self._index(value)
        if not self._space.give_back(index):
            raise AllocationError(f"{value} is not allocated in pool {self.cidr}")

    def contains(self, value: str) -> bool:
        """Whether ``value`` (an address, or for IPv6 also a prefix) lies inside the pool prefix.

        True even for values the pool never hands out (the network address, a
        misaligned prefix): :meth:`reserve` then says what is wrong with them.
        False for anything unparsable or of the other family.
        """
        try:
            net = ip_network(value, strict=False)
        except (TypeError, ValueError):
            return False
        if net.version != self._family:
            return False
        return net.subnet_of(self._network)  # type: ignore[arg-type]  # same family checked above

    def is_allocated(self, value: str) -> bool:
        """Whether ``value`` is currently allocated or reserved (False for values the pool cannot hold)."""
        try:
            index = self._index(value)
        except AllocationError:
            return False
        return self._space.is_taken(index)

    def _format(self, index: int) -> str:
        value = self._base + (self._first + index) * self._step
        if self._family == 4:
            return str(IPv4Address(value))
        return f"{IPv6Address(value)}/{self._prefix_length}"

    def _index(self, value: str) -> int:
        """Index of ``value`` in the pool, or AllocationError saying why it has none."""
        where = f"pool {self.cidr}"
        if not isinstance(value, str):
            raise AllocationError(f"{value!r} is not an IP address or prefix")
        try:
            if "/" in value:
                net = ip_network(value, strict=False)
                address = int(net.network_address)
                length = net.prefixlen
                aligned = net.network_address == ip_address(value.split("/", 1)[0])
            else:
                parsed = ip_address(value)
                net = ip_network(parsed)
                address = int(parsed)
                length = self._prefix_length
                aligned = address % self._step == 0
        except (TypeError, ValueError, AttributeError):
            raise AllocationError(f"{value!r} is not an IP address or prefix") from None
        if net.version != self._family:
            raise AllocationError(f"{value} is an IPv{net.version} value, {where} is IPv{self._family}")
        if length != self._prefix_length:
            raise AllocationError(f"{value} is not a /{self._prefix_length}: {where} hands out /{self._prefix_length}")
        offset = address - self._base
        if not 0 <= offset < self._network.num_addresses:
            raise AllocationError(f"{value} is outside {where}")
        if not aligned:
            aligned_prefix = ip_network(f"{ip_address(address - address % self._step)}/{self._prefix_length}")
            raise AllocationError(
                f"{value} is not aligned to a /{self._prefix_length} boundary of {where} "
                f"(the prefix is {aligned_prefix})"
            )
        index = offset // self._step - self._first
        if not 0 <= index < self.size:
            kind = "network" if offset == 0 else "broadcast"
            raise AllocationError(f"{value} is the {kind} address of {where} and cannot be given to a UE")
        return index


class TeidAllocator:
    """N3 TEIDs of one UPF when the CP allocates them: 1..0xFFFFFFFF, never 0.

    TEID 0 is reserved (TS 29.281 §5.1: only Echo and Supported Extension
    Headers Notification messages use it), so it is never handed out. The cursor
    moves forward and wraps around, skipping TEIDs in use: a released TEID is
    reused only after the rest of the space has gone round, so late G-PDUs for
    an old session do not land on a new one.

    ``start`` is where the cursor begins; after reloading the TEIDs in use from
    the database, the service may pass one past the highest of them so that
    TEIDs released just before a restart are not handed out again at once.
    """

    __slots__ = ("_cursor", "_used")

    def __init__(self, start: int = 1) -> None:
        self._check(start)
        self._cursor = start
        self._used: set[int] = set()

    def __repr__(self) -> str:
        return f"TeidAllocator(used={self.used}, next={self._cursor:#x})"

    @property
    def used(self) -> int:
        """How many TEIDs are allocated or reserved."""
        return len(self._used)

    @property
    def free(self) -> int:
        """How many TEIDs are left."""
        return MAX_TEID - len(self._used)

    def allocate(self) -> int:
        """Hand out the next free TEID; raises :class:`PoolExhausted` when all 2**32-1 are in use."""
        if len(self._used) >= MAX_TEID:
            raise PoolExhausted("every TEID (1..0xFFFFFFFF) is in use")
        teid = self._cursor
        while teid in self._used:
            teid = teid + 1 if teid < MAX_TEID else 1
        self._used.add(teid)
        self._cursor = teid + 1 if teid < MAX_TEID else 1
        return teid

    def reserve(self, teid: int) -> None:
        """Mark ``teid`` in use (reloaded from the database); AllocationError if invalid or taken."""
        self._check(teid)
        if teid in self._used:
            raise AllocationError(f"TEID {teid:#x} is already allocated")
        self._used.add(teid)

    def release(self, teid: int) -> None:
        """Give ``teid`` back; AllocationError if it was not allocated."""
        self._check(teid)
        if teid not in self._used:
            raise AllocationError(f"TEID {teid:#x} is not allocated")
        self._used.discard(teid)

    def is_allocated(self, teid: int) -> bool:
        """Whether ``teid`` is currently in use."""
        return teid in self._used

    @staticmethod
    def _check(teid: int) -> None:
        if isinstance(teid, bool) or not isinstance(teid, int) or not 1 <= teid <= MAX_TEID:
            raise AllocationError(f"TEID {teid!r} is not in 1..0xFFFFFFFF (0 is reserved, TS 29.281 §5.1)")


class SeidBlock:
    """A block of CP SEIDs claimed from the database's high-water mark.

    SEIDs are never reused, not even across restarts: a UPF may still hold a
    session (or a late report) under an old SEID. The service therefore:

    1. reads ``control_plane_node.next_seid`` (N) and commits ``next_seid = N + size``
       **before** handing out any SEID of the block;
    2. builds ``SeidBlock(N, size)`` and calls :meth:`allocate` until it raises
       :class:`SeidBlockExhausted`, then claims the next block the same way.

    A crash loses at most the unused rest of a block, never reuses a SEID.
    SEID 0 is never handed out: TS 29.244 §7.2.2.4.2 puts SEID 0 in the header
    of a response to a request for an unknown session, so ``start`` must be >= 1.
    SEIDs of a block cannot be released.
    """

    __slots__ = ("_next", "end", "start")

    def __init__(self, start: int, size: int) -> None:
        for name, number in (("start", start), ("size", size)):
            if isinstance(number, bool) or not isinstance(number, int):
                raise AllocationError(f"SEID block {name} must be an integer, not {number!r}")
        if start < 1:
            raise AllocationError(
                f"SEID block start must be >= 1, not {start} (SEID 0 is reserved, TS 29.244 §7.2.2.4.2)"
            )
        if size < 1:
            raise AllocationError(f"SEID block size must be >= 1, not {size}")
        if start + size - 1 > MAX_SEID:
            raise AllocationError(f"SEID block {start}+{size} goes past the 64-bit SEID space")
        self.start = start
        #: First SEID after the block: the high-water mark to persist before using it.
        self.end = start + size
        self._next = start

    def __repr__(self) -> str:
        return f"SeidBlock(start={self.start}, size={self.end - self.start}, remaining={self.remaining})"

    @property
    def remaining(self) -> int:
        """How many SEIDs the block can still hand out."""
        return self.end - self._next

    def allocate(self) -> int:
        """Hand out the next SEID of the block; raises :class:`SeidBlockExhausted` at its end."""
        if self._next >= self.end:
            raise SeidBlockExhausted(f"SEID block {self.start}..{self.end - 1} is used up")
        seid = self._next
        self._next += 1
        return seid
