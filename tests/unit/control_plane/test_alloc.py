"""control_plane.domain.alloc: UE IP pools, TEIDs and CP SEID blocks."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, IPv6Network, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.domain.alloc import (
    MAX_SEID,
    MAX_TEID,
    AllocationError,
    PoolAllocator,
    PoolExhausted,
    SeidBlock,
    SeidBlockExhausted,
    TeidAllocator,
)

# ---------------------------------------------------------------- IPv4 pools


def test_ipv4_pool_skips_network_and_broadcast() -> None:
    pool = PoolAllocator("198.19.0.0/29")
    assert (pool.cidr, pool.family, pool.prefix_length, pool.size) == ("198.19.0.0/29", 4, 32, 6)
    got = [pool.allocate() for _ in range(6)]
    assert got == [f"198.19.0.{i}" for i in range(1, 7)]
    assert (pool.used, pool.free) == (6, 0)
    with pytest.raises(PoolExhausted, match=r"198\.19\.0\.0/29 is exhausted"):
        pool.allocate()


@pytest.mark.parametrize("value, kind", [("198.19.0.0", "network"), ("198.19.0.7", "broadcast")])
def test_ipv4_network_and_broadcast_cannot_be_reserved(value: str, kind: str) -> None:
    pool = PoolAllocator("198.19.0.0/29")
    with pytest.raises(AllocationError, match=f"{kind} address"):
        pool.reserve(value)
    assert pool.contains(value)  # inside the prefix, yet never handed out
    assert not pool.is_allocated(value)


def test_ipv4_slash31_uses_both_addresses() -> None:
    pool = PoolAllocator("198.19.0.4/31")
    assert pool.size == 2
    assert [pool.allocate(), pool.allocate()] == ["198.19.0.4", "198.19.0.5"]
    with pytest.raises(PoolExhausted):
        pool.allocate()


def test_ipv4_slash32_is_one_address() -> None:
    pool = PoolAllocator("198.19.0.9/32")
    assert pool.size == 1
    pool.reserve("198.19.0.9/32")  # the prefix form of the one address
    assert pool.is_allocated("198.19.0.9")
    with pytest.raises(PoolExhausted):
        pool.allocate()
    pool.release("198.19.0.9")
    assert pool.allocate() == "198.19.0.9"


def test_ipv4_many_allocations_are_distinct() -> None:
    pool = PoolAllocator("10.0.0.0/15", prefix_length=32)
    got = [pool.allocate() for _ in range(100_000)]
    assert len(set(got)) == len(got) == pool.used
    assert all(pool.contains(v) and pool.is_allocated(v) for v in got[::997])
    assert "10.0.0.0" not in got
    assert pool.size == 2**17 - 2


def test_ipv4_slash8_is_cheap() -> None:
    pool = PoolAllocator("10.0.0.0/8")
    assert pool.size == 2**24 - 2
    pool.reserve("10.255.255.254")  # the last usable one, far above the cursor
    assert pool.allocate() == "10.0.0.1"
    assert pool.used == 2


@pytest.mark.parametrize(
    "value, message",
    [
        ("198.19.1.0", "outside pool 198.19.0.0/24"),
        ("2001:db8::1", "is an IPv6 value, pool 198.19.0.0/24 is IPv4"),
        ("198.19.0.0/30", r"not a /32"),
        ("not an address", "is not an IP address or prefix"),
        ("", "is not an IP address or prefix"),
        ("198.19.0.300", "is not an IP address or prefix"),
    ],
)
def test_ipv4_reserve_rejects_bad_values(value: str, message: str) -> None:
    pool = PoolAllocator("198.19.0.0/24")
    with pytest.raises(AllocationError, match=message):
        pool.reserve(value)
    assert pool.used == 0
    assert not pool.is_allocated(value)


def test_reserve_twice_and_release_unallocated_are_errors() -> None:
    pool = PoolAllocator("198.19.0.0/24")
    pool.reserve("198.19.0.50")
    with pytest.raises(AllocationError, match=r"198\.19\.0\.50 is already allocated"):
        pool.reserve("198.19.0.50")
    first = pool.allocate()
    with pytest.raises(AllocationError, match="already allocated"):
        pool.reserve(first)
    with pytest.raises(AllocationError, match=r"198\.19\.0\.60 is not allocated"):
        pool.release("198.19.0.60")
    pool.release(first)
    with pytest.raises(AllocationError, match="is not allocated"):
        pool.release(first)
    with pytest.raises(AllocationError, match="outside"):
        pool.release("198.19.9.9")
    assert pool.used == 1


def test_released_values_are_reused_lowest_first() -> None:
    pool = PoolAllocator("198.19.0.0/24")
    got = [pool.allocate() for _ in range(10)]
    pool.release(got[7])
    pool.release(got[2])
    pool.reserve(got[2])  # a static IP takes the hole back before allocate sees it
    assert pool.allocate() == got[7]
    assert pool.allocate() == "198.19.0.11"


def test_reload_by_reserve_then_allocate_skips_reserved() -> None:
    stored = ["198.19.0.1", "198.19.0.2", "198.19.0.5", "198.19.0.200", "198.19.0.254"]
    pool = PoolAllocator("198.19.0.0/24")
    for value in reversed(stored):
        pool.reserve(value)
    got = [pool.allocate() for _ in range(pool.free)]
    assert not set(got) & set(stored)
    assert sorted(set(got) | set(stored), key=IPv4Address) == [f"198.19.0.{i}" for i in range(1, 255)]
    with pytest.raises(PoolExhausted):
        pool.allocate()


def test_reserve_above_cursor_then_release_makes_it_free_again() -> None:
    pool = PoolAllocator("198.19.0.0/29")
    pool.reserve("198.19.0.3")
    pool.release("198.19.0.3")
    assert [pool.allocate() for _ in range(6)] == [f"198.19.0.{i}" for i in range(1, 7)]


@pytest.mark.parametrize(
    "cidr, prefix_length, message",
    [
        ("198.19.0.1/24", None, r"not a network prefix .*did you mean 198\.19\.0\.0/24\?"),
        ("banana", None, "not a network prefix"),
        ("198.19.0.0/33", None, "not a network prefix"),
        ("198.19.0.0/24", 24, "must be 32"),
        ("2001:db8::1/64", None, r"did you mean 2001:db8::/64\?"),
        ("2001:db8::/64", 48, "between 64 and 128"),
        ("2001:db8::/64", 129, "between 64 and 128"),
    ],
)
def test_bad_pool_definitions_are_refused(cidr: str, prefix_length: int | None, message: str) -> None:
    with pytest.raises(AllocationError, match=message):
        PoolAllocator(cidr, prefix_length)


@given(st.lists(st.tuples(st.sampled_from(["alloc", "release", "reserve"]), st.integers(0, 13)), max_size=80))
def test_ipv4_pool_matches_a_model(ops: list[tuple[str, int]]) -> None:
    """Any sequence of allocate/release/reserve agrees with a plain set of taken addresses."""
    pool = PoolAllocator("198.19.0.0/28")  # 14 usable: .1 .. .14
    universe = [f"198.19.0.{i}" for i in range(1, 15)]
    taken: set[str] = set()
    for op, i in ops:
        value = universe[i]
        if op == "alloc":
            if len(taken) == 14:
                with pytest.raises(PoolExhausted):
                    pool.allocate()
            else:
                got = pool.allocate()
                assert got not in taken
                assert got == min(set(universe) - taken, key=IPv4Address)  # lowest free first
                taken.add(got)
        elif op == "release":
            if value in taken:
                pool.release(value)
                taken.discard(value)
            else:
                with pytest.raises(AllocationError):
                    pool.release(value)
        else:
            if value in taken:
                with pytest.raises(AllocationError):
                    pool.reserve(value)
            else:
                pool.reserve(value)
                taken.add(value)
        assert pool.used == len(taken)
        assert all(pool.is_allocated(v) == (v in taken) for v in universe)


# ---------------------------------------------------------------- IPv6 pools


def test_ipv6_pool_hands_out_prefixes() -> None:
    pool = PoolAllocator("2001:db8::/48")
    assert (pool.family, pool.prefix_length, pool.size) == (6, 64, 65_536)
    got = [pool.allocate() for _ in range(65_536)]
    assert got[:3] == ["2001:db8::/64", "2001:db8:0:1::/64", "2001:db8:0:2::/64"]
    assert got[-1] == "2001:db8:0:ffff::/64"
    assert len(set(got)) == 65_536
    with pytest.raises(PoolExhausted):
        pool.allocate()


def test_ipv6_slash32_of_slash64_is_cheap() -> None:
    pool = PoolAllocator("2001:db8::/32")
    assert pool.size == 2**32
    pool.reserve("2001:db8:ffff:ffff::/64")
    assert pool.allocate() == "2001:db8::/64"
    assert pool.free == 2**32 - 2


def test_ipv6_other_prefix_lengths() -> None:
    pool = PoolAllocator("2001:db8:0:100::/56", prefix_length=60)
    assert pool.size == 16
    assert [pool.allocate() for _ in range(2)] == ["2001:db8:0:100::/60", "2001:db8:0:110::/60"]
    single = PoolAllocator("2001:db8::/126", prefix_length=128)
    assert [single.allocate() for _ in range(4)] == [
        "2001:db8::/128",
        "2001:db8::1/128",
        "2001:db8::2/128",
        "2001:db8::3/128",
    ]
    one = PoolAllocator("2001:db8::/64", prefix_length=64)
    assert one.size == 1


@pytest.mark.parametrize(
    "value, message",
    [
        ("2001:db8:0:5::1/64", r"not aligned to a /64 boundary .*the prefix is 2001:db8:0:5::/64"),
        ("2001:db8:0:5::1", r"not aligned .*2001:db8:0:5::/64"),
        ("2001:db8::/56", "not a /64"),
        ("2001:db8:1::/64", "outside pool 2001:db8::/48"),
        ("198.19.0.1", "IPv4 value, pool 2001:db8::/48 is IPv6"),
        ("2001:db8::/200", "not an IP address or prefix"),
    ],
)
def test_ipv6_reserve_rejects_bad_values(value: str, message: str) -> None:
    pool = PoolAllocator("2001:db8::/48")
    with pytest.raises(AllocationError, match=message):
        pool.reserve(value)
    assert pool.used == 0


def test_ipv6_reserve_accepts_prefix_or_its_first_address() -> None:
    pool = PoolAllocator("2001:db8::/48")
    pool.reserve("2001:db8:0:5::/64")
    pool.reserve("2001:db8:0:6::")
    assert pool.is_allocated("2001:db8:0:6::/64")
    with pytest.raises(AllocationError, match="already allocated"):
        pool.reserve("2001:0db8:0000:0005:0000:0000:0000:0000/64")  # the same prefix, spelt long
    got = {pool.allocate() for _ in range(10)}
    assert not got & {"2001:db8:0:5::/64", "2001:db8:0:6::/64"}
    pool.release("2001:db8:0:5::/64")
    assert not pool.is_allocated("2001:db8:0:5::/64")


@given(st.sets(st.integers(0, 255), max_size=40), st.integers(0, 60))
@settings(max_examples=50)
def test_ipv6_reload_never_returns_reserved(stored: set[int], count: int) -> None:
    base = IPv6Network("2001:db8::/56")
    values = {str(list(base.subnets(new_prefix=64))[i]) for i in stored}
    pool = PoolAllocator(str(base))
    for value in values:
        pool.reserve(value)
    got = [pool.allocate() for _ in range(count)]
    assert len(set(got)) == count
    assert not set(got) & values
    assert all(ip_network(v).subnet_of(base) for v in got)  # type: ignore[arg-type]


def test_contains_is_about_the_prefix_only() -> None:
    pool = PoolAllocator("198.19.0.0/24")
    assert pool.contains("198.19.0.0") and pool.contains("198.19.0.77")
    assert not pool.contains("198.19.1.1")
    assert not pool.contains("2001:db8::1")
    assert not pool.contains("junk")
    pool6 = PoolAllocator("2001:db8::/48")
    assert pool6.contains("2001:db8:0:5::/64") and pool6.contains("2001:db8:0:5::1")
    assert not pool6.contains("2001:db8::/32")


def test_concurrent_tasks_get_distinct_values() -> None:
    """Tasks interleaved at await points never see the same address (one asyncio thread)."""
    pool = PoolAllocator("10.0.0.0/16")
    results: list[str] = []

    async def one() -> None:
        value = pool.allocate()
        await asyncio.sleep(0)
        results.append(value)
        await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(1000)))

    asyncio.run(main())
    assert len(results) == 1000
    assert len(set(results)) == 1000
    assert pool.used == 1000


# ---------------------------------------------------------------- TEIDs


def test_teid_zero_is_never_handed_out_and_is_invalid() -> None:
    teids = TeidAllocator()
    assert teids.allocate() == 1
    for bad in (0, -1, MAX_TEID + 1):
        with pytest.raises(AllocationError, match=r"not in 1\.\.0xFFFFFFFF"):
            teids.reserve(bad)
        with pytest.raises(AllocationError):
            teids.release(bad)


def test_teid_wraps_around_skipping_used_ones() -> None:
    teids = TeidAllocator(start=MAX_TEID - 2)  # where a long uptime leaves the cursor
    teids.reserve(MAX_TEID - 1)
    teids.reserve(2)
    teids.reserve(1)
    assert teids.allocate() == MAX_TEID - 2
    assert teids.allocate() == MAX_TEID  # MAX_TEID - 1 is reserved
    assert teids.allocate() == 3  # wrapped past 0, 1 and 2
    assert teids.used == 6


def test_teid_wrap_skips_zero_when_the_top_is_taken() -> None:
    teids = TeidAllocator(start=MAX_TEID)
    teids.reserve(MAX_TEID)
    assert teids.allocate() == 1  # past the top, and 0 is skipped
    assert teids.allocate() == 2


@pytest.mark.parametrize("start", [0, MAX_TEID + 1])
def test_teid_start_must_be_a_valid_teid(start: int) -> None:
    with pytest.raises(AllocationError, match=r"not in 1\.\.0xFFFFFFFF"):
        TeidAllocator(start=start)


def test_teid_release_is_not_reused_immediately() -> None:
    teids = TeidAllocator()
    first = teids.allocate()
    teids.release(first)
    assert teids.allocate() == first + 1
    with pytest.raises(AllocationError, match="is not allocated"):
        teids.release(first)
    with pytest.raises(AllocationError, match="already allocated"):
        teids.reserve(first + 1)


def test_teid_reload_then_allocate_avoids_reserved() -> None:
    teids = TeidAllocator()
    stored = set(range(1, 500, 3))
    for teid in stored:
        teids.reserve(teid)
    got = [teids.allocate() for _ in range(1000)]
    assert len(set(got)) == 1000
    assert not set(got) & stored
    assert 0 not in got
    assert teids.used == 1000 + len(stored)
    assert all(teids.is_allocated(t) for t in got)


def test_teid_concurrent_tasks_get_distinct_values() -> None:
    teids = TeidAllocator()
    results: list[int] = []

    async def one() -> None:
        teid = teids.allocate()
        await asyncio.sleep(0)
        results.append(teid)

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(1000)))

    asyncio.run(main())
    assert sorted(results) == list(range(1, 1001))


# ---------------------------------------------------------------- SEID blocks


def test_seid_block_hands_out_its_range_then_is_exhausted() -> None:
    block = SeidBlock(1000, 3)
    assert (block.start, block.end, block.remaining) == (1000, 1003, 3)
    assert [block.allocate() for _ in range(3)] == [1000, 1001, 1002]
    assert block.remaining == 0
    with pytest.raises(SeidBlockExhausted, match=r"1000\.\.1002 is used up"):
        block.allocate()
    with pytest.raises(PoolExhausted):
        block.allocate()


def test_consecutive_blocks_from_the_high_water_mark_never_overlap() -> None:
    """The service's loop: persist block.end, claim the next block from it."""
    high_water = 1
    seen: list[int] = []
    for size in (1, 7, 100, 3):
        block = SeidBlock(high_water, size)
        high_water = block.end
        while block.remaining:
            seen.append(block.allocate())
    assert seen == list(range(1, 112))


@pytest.mark.parametrize(
    "start, size, message",
    [
        (0, 10, r"start must be >= 1.*SEID 0 is reserved"),
        (-5, 10, "start must be >= 1"),
        (1, 0, "size must be >= 1"),
        (MAX_SEID, 2, "past the 64-bit SEID space"),
    ],
)
def test_bad_seid_blocks_are_refused(start: int, size: int, message: str) -> None:
    with pytest.raises(AllocationError, match=message):
        SeidBlock(start, size)


def test_last_seid_of_the_space() -> None:
    block = SeidBlock(MAX_SEID, 1)
    assert block.allocate() == MAX_SEID
