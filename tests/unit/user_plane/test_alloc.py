"""Tests of the UP function's identifier allocators (user_plane/alloc.py)."""

from __future__ import annotations

import time
import tracemalloc
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from user_plane.alloc import (
    AllocationError,
    AlreadyInUse,
    ChooseIdMap,
    Exhausted,
    NotAllocated,
    OutOfRange,
    SeidAllocator,
    TeidAllocator,
    UeAddressPool,
)

# -- TEID / SEID ---------------------------------------------------------------


def test_error_hierarchy() -> None:
    for error in (Exhausted, NotAllocated, AlreadyInUse, OutOfRange):
        assert issubclass(error, AllocationError)


def test_teid_defaults_cover_the_32_bit_range_without_zero() -> None:
    teids = TeidAllocator()
    assert (teids.first, teids.last, teids.capacity) == (1, 0xFFFF_FFFF, 0xFFFF_FFFF)
    assert teids.allocate() == 1


def test_seid_defaults_cover_the_64_bit_range_without_zero() -> None:
    seids = SeidAllocator()
    assert seids.capacity == 2**64 - 1
    assert seids.allocate() == 1


@pytest.mark.parametrize(
    ("cls", "first", "last"),
    [
        (TeidAllocator, 0, 10),  # TEID 0 is reserved (TS 29.281 §5.1)
        (TeidAllocator, 5, 4),
        (TeidAllocator, 1, 2**32),
        (SeidAllocator, 0, 10),  # SEID 0 means "no session yet" (TS 29.244 §7.2.2.4.2)
        (SeidAllocator, 1, 2**64),
    ],
)
def test_invalid_ranges_rejected(cls: type[TeidAllocator | SeidAllocator], first: int, last: int) -> None:
    with pytest.raises(ValueError):
        cls(first, last)


def test_100k_teids_unique_and_fast() -> None:
    teids = TeidAllocator()
    start = time.perf_counter()
    got = [teids.allocate() for _ in range(100_000)]
    elapsed = time.perf_counter() - start
    assert len(set(got)) == 100_000
    assert 0 not in got
    assert len(teids) == 100_000
    assert all(teids.in_use(t) for t in got)
    assert elapsed < 2.0, elapsed


@pytest.mark.parametrize("cls", [TeidAllocator, SeidAllocator])
def test_wrap_around_never_yields_zero(cls: type[TeidAllocator | SeidAllocator]) -> None:
    top = cls._MAX
    alloc = cls(top - 2, top)
    assert [alloc.allocate() for _ in range(3)] == [top - 2, top - 1, top]
    alloc.release(top - 1)
    assert alloc.allocate() == top - 1  # wrapped past the top, skipped the ones in use


def test_release_and_reuse_is_delayed() -> None:
    teids = TeidAllocator(1, 10)
    a, b = teids.allocate(), teids.allocate()
    teids.release(a)
    assert not teids.in_use(a)
    # The cursor moves on: a released TEID comes back only after the rest of the range.
    nxt = [teids.allocate() for _ in range(8)]
    assert nxt == list(range(3, 11))
    assert teids.allocate() == a
    assert b == 2


def test_exhaustion_then_recovery_after_release() -> None:
    teids = TeidAllocator(100, 104)
    got = {teids.allocate() for _ in range(5)}
    assert got == {100, 101, 102, 103, 104}
    with pytest.raises(Exhausted):
        teids.allocate()
    teids.release(102)
    assert teids.allocate() == 102
    with pytest.raises(Exhausted):
        teids.allocate()


def test_unknown_and_double_release_raise() -> None:
    teids = TeidAllocator(1, 100)
    with pytest.raises(NotAllocated):
        teids.release(5)
    with pytest.raises(NotAllocated):
        teids.release(0)
    with pytest.raises(NotAllocated):
        teids.release(1000)
    t = teids.allocate()
    teids.release(t)
    with pytest.raises(NotAllocated):
        teids.release(t)


def test_reserve() -> None:
    teids = TeidAllocator(1, 5)
    teids.reserve(2)
    assert teids.in_use(2)
    with pytest.raises(AlreadyInUse):
        teids.reserve(2)
    with pytest.raises(OutOfRange):
        teids.reserve(0)
    with pytest.raises(OutOfRange):
        teids.reserve(6)
    assert [teids.allocate() for _ in range(4)] == [1, 3, 4, 5]  # skips the reserved one
    with pytest.raises(Exhausted):
        teids.allocate()
    assert sorted(teids) == [1, 2, 3, 4, 5]


def test_randomized_with_seed_is_deterministic_and_unique() -> None:
    a = TeidAllocator(randomize=True, seed=7)
    b = TeidAllocator(randomize=True, seed=7)
    seq_a = [a.allocate() for _ in range(10_000)]
    assert seq_a == [b.allocate() for _ in range(10_000)]
    assert len(set(seq_a)) == 10_000 and 0 not in seq_a
    assert seq_a != sorted(seq_a)  # not sequential
    c = TeidAllocator(randomize=True, seed=8)
    assert [c.allocate() for _ in range(10)] != seq_a[:10]


def test_randomized_small_range_fills_exactly() -> None:
    teids = TeidAllocator(1, 50, randomize=True, seed=1)
    got = [teids.allocate() for _ in range(50)]
    assert sorted(got) == list(range(1, 51))
    with pytest.raises(Exhausted):
        teids.allocate()
    teids.release(17)
    assert teids.allocate() == 17


def test_memory_bounded_by_number_in_use() -> None:
    teids = TeidAllocator()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(10):
            got = [teids.allocate() for _ in range(10_000)]
            for t in got:
                teids.release(t)
        del got
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 100k allocations, all released: internals hold nothing, memory back near the start.
    assert len(teids) == 0
    assert len(teids._indices._in_use) == 0
    assert after - base < 64 * 1024, after - base
    # And with N in use, internals hold exactly N entries.
    for _ in range(1000):
        teids.allocate()
    assert len(teids._indices._in_use) == 1000


# -- UE address pool -----------------------------------------------------------


def test_ipv4_skips_network_broadcast_and_excluded() -> None:
    pool = UeAddressPool([IPv4Network("10.0.0.0/29")], exclude=[IPv4Address("10.0.0.1")])
    assert pool.capacity_ipv4 == 5
    got = [pool.allocate_ipv4() for _ in range(5)]
    assert got == [IPv4Address(f"10.0.0.{i}") for i in range(2, 7)]
    with pytest.raises(Exhausted):
        pool.allocate_ipv4()
    assert IPv4Address("10.0.0.1") not in pool
    assert IPv4Address("10.0.0.0") not in pool
    assert IPv4Address("10.0.0.7") not in pool
    assert IPv4Address("10.0.0.5") in pool


def test_ipv4_several_networks_and_release() -> None:
    pool = UeAddressPool([IPv4Network("10.0.0.0/30"), IPv4Network("192.168.1.8/31"), IPv4Network("172.16.0.9/32")])
    assert pool.capacity_ipv4 == 2 + 2 + 1
    got = [pool.allocate_ipv4() for _ in range(5)]
    assert [str(a) for a in got] == ["10.0.0.1", "10.0.0.2", "192.168.1.8", "192.168.1.9", "172.16.0.9"]
    assert len(pool) == 5
    pool.release(IPv4Address("192.168.1.8"))
    assert not pool.in_use(IPv4Address("192.168.1.8"))
    assert pool.allocate_ipv4() == IPv4Address("192.168.1.8")
    with pytest.raises(NotAllocated):
        pool.release(IPv4Address("8.8.8.8"))


def test_reserve_static_address() -> None:
    pool = UeAddressPool([IPv4Network("10.0.0.0/29")], exclude=[IPv4Address("10.0.0.1")])
    pool.reserve(IPv4Address("10.0.0.3"))
    assert pool.in_use(IPv4Address("10.0.0.3"))
    with pytest.raises(AlreadyInUse):
        pool.reserve(IPv4Address("10.0.0.3"))
    with pytest.raises(OutOfRange):
        pool.reserve(IPv4Address("10.0.1.3"))
    with pytest.raises(OutOfRange):
        pool.reserve(IPv4Address("10.0.0.1"))  # the excluded gateway
    with pytest.raises(OutOfRange):
        pool.reserve(IPv4Address("10.0.0.7"))  # broadcast
    assert [pool.allocate_ipv4() for _ in range(4)] == [IPv4Address(f"10.0.0.{i}") for i in (2, 4, 5, 6)]
    with pytest.raises(Exhausted):
        pool.allocate_ipv4()
    pool.release(IPv4Address("10.0.0.3"))
    assert pool.allocate_ipv4() == IPv4Address("10.0.0.3")


def test_ipv6_carves_64s() -> None:
    pool = UeAddressPool([IPv6Network("2001:db8:1::/62")], exclude=[IPv6Address("2001:db8:1:0::1")])
    assert pool.capacity_ipv6 == 3
    got = [pool.allocate_ipv6() for _ in range(3)]
    assert got == [IPv6Network(f"2001:db8:1:{i}::/64") for i in (1, 2, 3)]
    assert all(p.prefixlen == 64 for p in got)
    with pytest.raises(Exhausted):
        pool.allocate_ipv6()
    assert pool.in_use(IPv6Address("2001:db8:1:2::abcd"))  # an address stands for its /64
    pool.release(IPv6Address("2001:db8:1:2::99"))
    assert pool.allocate_ipv6() == IPv6Network("2001:db8:1:2::/64")
    with pytest.raises(OutOfRange):
        pool.reserve(IPv6Network("2001:db8:1:3::/80"))
    assert IPv6Network("2001:db8:1:3::/80") not in pool
    assert IPv6Network("2001:db8:1:3::/64") in pool
    assert "2001:db8:1:3::1" not in pool  # only address objects belong
    with pytest.raises(OutOfRange):
        pool.reserve(IPv6Address("2001:db8:2::1"))
    with pytest.raises(OutOfRange):
        pool.reserve(IPv6Address("2001:db8:1::5"))  # the excluded /64


def test_ipv6_large_prefix_is_not_materialized() -> None:
    pool = UeAddressPool([IPv6Network("2001:db8::/32")])
    assert pool.capacity_ipv6 == 2**32
    first = pool.allocate_ipv6()
    assert first == IPv6Network("2001:db8::/64")
    pool.reserve(IPv6Network("2001:db8:ffff:ffff::/64"))
    assert pool.in_use(IPv6Network("2001:db8:ffff:ffff::/64"))
    assert len(pool) == 2


def test_ipv6_longer_than_64_rejected() -> None:
    with pytest.raises(ValueError):
        UeAddressPool([IPv6Network("2001:db8::/96")])


def test_dual_stack_pool_and_missing_family() -> None:
    both = UeAddressPool([IPv4Network("10.1.0.0/24"), IPv6Network("2001:db8::/48")])
    assert both.allocate_ipv4() == IPv4Address("10.1.0.1")
    assert both.allocate_ipv6() == IPv6Network("2001:db8::/64")
    v4_only = UeAddressPool([IPv4Network("10.1.0.0/24")])
    with pytest.raises(Exhausted):
        v4_only.allocate_ipv6()
    with pytest.raises(OutOfRange):
        v4_only.reserve(IPv6Address("2001:db8::1"))
    v6_only = UeAddressPool([IPv6Network("2001:db8::/48")])
    with pytest.raises(Exhausted):
        v6_only.allocate_ipv4()


def test_pool_rejects_overlap_and_empty() -> None:
    with pytest.raises(ValueError):
        UeAddressPool([IPv4Network("10.0.0.0/24"), IPv4Network("10.0.0.128/25")])
    with pytest.raises(ValueError):
        UeAddressPool([])


def test_pool_randomized_with_seed() -> None:
    def run() -> list[IPv4Address]:
        pool = UeAddressPool([IPv4Network("10.0.0.0/24")], exclude=[IPv4Address("10.0.0.1")], randomize=True, seed=3)
        return [pool.allocate_ipv4() for _ in range(253)]

    got = run()
    assert got == run()
    assert sorted(got) == [IPv4Address(f"10.0.0.{i}") for i in range(2, 255)]


def test_pool_memory_bounded() -> None:
    pool = UeAddressPool([IPv4Network("10.0.0.0/8")])
    for _ in range(10):
        got = [pool.allocate_ipv4() for _ in range(10_000)]
        for a in got:
            pool.release(a)
    assert len(pool) == 0
    assert pool._idx4 is not None and len(pool._idx4._in_use) == 0


# -- CHOOSE ID -----------------------------------------------------------------


def test_choose_id_shares_one_teid_per_chid() -> None:
    teids = TeidAllocator(1, 10)
    chids = ChooseIdMap.over(teids)
    a = chids.teid_for(5)
    assert chids.teid_for(5) == a
    b = chids.teid_for(6)
    assert b != a
    assert len(chids) == 2 and 5 in chids and 7 not in chids
    assert chids.get(7) is None and len(teids) == 2
    assert chids.items() == [(5, a), (6, b)]
    chids.release_all()
    assert len(chids) == 0 and len(teids) == 0
    assert not teids.in_use(a) and not teids.in_use(b)


def test_choose_id_exhaustion_and_range() -> None:
    teids = TeidAllocator(1, 1)
    chids = ChooseIdMap.over(teids)
    chids.teid_for(1)
    with pytest.raises(Exhausted):
        chids.teid_for(2)
    assert 2 not in chids
    with pytest.raises(ValueError):
        chids.teid_for(256)


def test_sequential_in_use_is_bits_of_dense_chunks() -> None:
    # Sequential TEIDs/SEIDs of 100k sessions: a set would hold ~5 MB of entries and ints.
    teids = TeidAllocator()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(100_000):
            teids.allocate()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(teids) == 100_000
    assert after - base < 100_000, after - base
    # Releases across chunk boundaries (512 indices each): exactly the others stay in use.
    gone = {1, 2, 511, 512, 513, 1024, 99_999, 100_000} | set(range(2000, 2600))
    for teid in gone:
        teids.release(teid)
    assert set(teids) == set(range(1, 100_001)) - gone
    assert len(teids) == 100_000 - len(gone)
    assert not teids.in_use(512) and teids.in_use(514) and not teids.in_use(100_001)
    with pytest.raises(NotAllocated):
        teids.release(512)
    teids.reserve(512)
    assert teids.in_use(512)
    # A chunk with nothing in use is dropped (memory follows the number in use).
    chunks = teids._indices._in_use._chunks  # type: ignore[union-attr]
    assert 4 not in chunks and 3 in chunks  # TEIDs 2049-2560 (indices 2048-2559): all released
    first = [t for t in teids if t <= 1536]  # indices 0-1535: chunks 0-2
    assert len(first) == 1536 - len(gone & set(range(1537))) + 1  # 512 reserved again
    for teid in first:
        teids.release(teid)
    assert sorted(chunks)[:2] == [3, 5] and len(teids) == 100_000 - len(gone) + 1 - len(first)
