"""Token bucket policing of a QER's MBR (TS 29.244 §8.2.8: kbit/s), on simulated time."""

from __future__ import annotations

import pytest

from user_plane.qos import BURST_SECONDS, MIN_BURST_BITS, TokenBucket, bucket_depth, updated_bucket

T0 = 1_000.0


def passed_rate(bucket: TokenBucket, *, offered_bps: float, packet_bits: int, seconds: float) -> float:
    """Offer ``offered_bps`` in evenly spaced packets; the bit/s that passed."""
    interval = packet_bits / offered_bps
    passed = 0
    for i in range(int(seconds / interval)):
        passed += bucket.allow(packet_bits, T0 + i * interval)
    return passed * packet_bits / seconds


@pytest.mark.parametrize("kbps", [500, 10_000, 1_000_000])
@pytest.mark.parametrize("seconds", [2.0, 3.0])
def test_rate_within_5_percent_at_5x_offered_load(kbps: int, seconds: float) -> None:
    bucket = TokenBucket(kbps, T0)
    rate = passed_rate(bucket, offered_bps=5 * kbps * 1000, packet_bits=1200 * 8, seconds=seconds)
    assert kbps * 1000 * 0.95 <= rate <= kbps * 1000 * 1.05


def test_load_below_the_mbr_passes_entirely() -> None:
    bucket = TokenBucket(10_000, T0)
    rate = passed_rate(bucket, offered_bps=9_000_000, packet_bits=12_000, seconds=2.0)
    assert rate == pytest.approx(9_000_000, rel=0.01)


def test_short_burst_tolerated_up_to_the_depth() -> None:
    bucket = TokenBucket(10_000, T0)  # depth: 50 ms at 10 Mbit/s = 500 000 bits
    assert bucket.depth == 500_000 == bucket_depth(10_000_000)
    burst = [bucket.allow(10_000, T0) for _ in range(51)]
    assert burst == [True] * 50 + [False]
    assert not bucket.allow(10_000, T0 + 0.0005)  # 0.5 ms refills 5 000 bits
    assert bucket.allow(10_000, T0 + 0.0015)  # 1.5 ms: 15 000


def test_depth_floor_keeps_low_rates_usable() -> None:
    assert bucket_depth(64_000) == MIN_BURST_BITS
    assert bucket_depth(100_000_000) == 100_000_000 * BURST_SECONDS
    bucket = TokenBucket(64, T0)
    assert bucket.allow(1500 * 8, T0) and bucket.allow(1500 * 8, T0)
    assert not bucket.allow(1500 * 8, T0)


def test_refill_caps_at_depth_and_ignores_a_clock_going_back() -> None:
    bucket = TokenBucket(100, T0)  # depth: the floor
    bucket.allow(20_000, T0)
    assert bucket.tokens == MIN_BURST_BITS - 20_000
    bucket.allow(0, T0 - 5)  # earlier time: no tokens, no change of the reference time
    assert bucket.tokens == MIN_BURST_BITS - 20_000 and bucket.last == T0
    bucket.allow(0, T0 + 3600)
    assert bucket.tokens == MIN_BURST_BITS


def test_zero_mbr_passes_nothing() -> None:
    bucket = TokenBucket(0, T0)
    assert not bucket.allow(8, T0)
    assert not bucket.allow(8, T0 + 10)


def test_conforms_then_spend() -> None:
    bucket = TokenBucket(200, T0)  # depth = floor 24 000 bits
    assert bucket.conforms(24_000, T0)
    assert bucket.conforms(24_000, T0)  # nothing spent yet
    bucket.spend(24_000)
    assert not bucket.conforms(1, T0)


def test_set_rate_keeps_earned_tokens_up_to_the_new_depth() -> None:
    bucket = TokenBucket(10_000, T0)
    bucket.allow(100_000, T0)
    assert bucket.tokens == 400_000
    bucket.set_rate(100, T0)  # depth drops to the 24 000-bit floor
    assert (bucket.kbps, bucket.rate, bucket.tokens) == (100, 100_000.0, MIN_BURST_BITS)
    bucket.set_rate(100_000, T0)
    assert bucket.tokens == MIN_BURST_BITS  # a larger depth does not mint tokens
    assert bucket.depth == 5_000_000


def test_updated_bucket() -> None:
    assert updated_bucket(None, None, T0) is None
    fresh = updated_bucket(None, 1_000, T0)
    assert fresh is not None and fresh.tokens == fresh.depth
    fresh.allow(10_000, T0)
    assert updated_bucket(fresh, 1_000, T0 + 1e-9) is fresh
    assert fresh.tokens < fresh.depth
    assert updated_bucket(fresh, None, T0) is None
    same = updated_bucket(fresh, 2_000, T0)
    assert same is fresh and fresh.kbps == 2_000


def test_buckets_of_one_mbr_share_their_rate_and_depth_objects() -> None:
    # Every session's two buckets keep a rate and a depth: one pair of floats per MBR value.
    a, b = TokenBucket(10_000, T0), TokenBucket(10_000, T0 + 1)
    assert (a.rate, a.depth) == (10_000_000.0, bucket_depth(10_000_000.0))
    assert a.rate is b.rate and a.depth is b.depth
    b.set_rate(20_000, T0 + 2)
    assert (b.rate, b.depth) == (20_000_000.0, bucket_depth(20_000_000.0)) and a.rate == 10_000_000.0
