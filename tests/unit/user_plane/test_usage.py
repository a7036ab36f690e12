"""The URR measurement engine (user_plane.usage, TS 29.244 §5.2.2)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pfcp
from user_plane.driver import Direction, UsageReport, ntp_seconds
from user_plane.rules import Urr, update_urr
from user_plane.usage import NO_VOLUME_LIMIT, UrrMeter

RT = pfcp.ReportingTriggersFlags
UT = pfcp.UsageReportTriggerFlags
MM = pfcp.MeasurementMethodFlags
MI = pfcp.MeasurementInformationFlags
UL = Direction.UPLINK
DL = Direction.DOWNLINK
T0 = 1_700_000_000.0


NO_TRIGGERS = RT(0)


def urr(triggers: RT = NO_TRIGGERS, method: MM = MM.VOLUM, **fields: Any) -> Urr:
    return Urr(urr_id=7, measurement_method=method, reporting_triggers=triggers, **fields)


def vol(total: int | None = None, uplink: int | None = None, downlink: int | None = None) -> pfcp.VolumeThreshold:
    return pfcp.VolumeThreshold(total=total, uplink=uplink, downlink=downlink)


def quota(total: int | None = None, uplink: int | None = None, downlink: int | None = None) -> pfcp.VolumeQuota:
    return pfcp.VolumeQuota(total=total, uplink=uplink, downlink=downlink)


def feed(meter: UrrMeter, packets: list[tuple[Direction, int, float]]) -> list[UsageReport]:
    """Count packets as a dataplane does (a blocked URR drops, so does not count); the reports."""
    out: list[UsageReport] = []
    for direction, nbytes, now in packets:
        if meter.blocked:
            continue
        report = meter.count(direction, nbytes, now)
        if report is not None:
            out.append(report)
    return out


# -- measurement and immediate reports ----------------------------------------


def test_counts_each_direction_and_query_reports_the_interval() -> None:
    meter = UrrMeter(urr(), T0)
    assert meter.count(UL, 100, T0 + 1) is None
    assert meter.count(DL, 1500, T0 + 2) is None
    assert meter.count(DL, 40, T0 + 3.5) is None
    report = meter.query(T0 + 4, reference=0xABCD)
    assert report == UsageReport(
        urr_id=7,
        ur_seqn=0,
        trigger=UT.IMMER,
        start_time=T0,
        end_time=T0 + 4,
        ul_bytes=100,
        dl_bytes=1540,
        ul_packets=1,
        dl_packets=2,
        duration=None,
        first_packet=T0 + 1,
        last_packet=T0 + 3.5,
        query_urr_reference=0xABCD,
        volume_measured=True,
        packets_measured=False,  # no MNOP in Measurement Information
    )


def test_a_report_restarts_the_measurement_and_seqn_counts_reports() -> None:
    meter = UrrMeter(urr(), T0)
    meter.count(UL, 10, T0 + 1)
    first = meter.query(T0 + 2)
    empty = meter.query(T0 + 3)
    meter.count(DL, 20, T0 + 4)
    last = meter.final(T0 + 5)
    assert [r.ur_seqn for r in (first, empty, last)] == [0, 1, 2]
    assert (empty.start_time, empty.end_time, empty.total_bytes) == (T0 + 2, T0 + 3, 0)
    assert (empty.first_packet, empty.last_packet) == (None, None)
    assert (last.trigger, last.start_time, last.dl_bytes, last.ul_bytes, last.first_packet) == (
        UT.TERMR,
        T0 + 3,
        20,
        0,
        T0 + 4,
    )
    assert first.query_urr_reference is None


def test_report_encodes_as_a_usage_report_ie() -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=100)), T0)
    report = meter.count(UL, 150, T0 + 1)
    assert report is not None
    ie = report.to_ie(pfcp.UsageReportSRR)
    decoded = pfcp.UsageReportSRR.decode_payload(*_payload(ie))
    assert decoded.usage_report_trigger.value == UT.VOLTH
    assert decoded.ur_seqn.value == 0
    assert decoded.volume_measurement is not None
    assert decoded.volume_measurement.uplink_volume == 150
    assert decoded.end_time is not None and decoded.end_time.value == ntp_seconds(T0 + 1)
    assert decoded.volume_measurement.uplink_packets is None  # §8.2.44: packet counts only with MNOP


def test_packet_counts_with_mnop_and_no_volume_without_volum() -> None:
    with_mnop = UrrMeter(urr(measurement_information=MI.MNOP), T0)
    with_mnop.count(UL, 150, T0 + 1)
    volume = with_mnop.query(T0 + 2).to_ie(pfcp.UsageReportSMR).volume_measurement
    assert volume is not None and (volume.uplink_packets, volume.total_packets, volume.uplink_volume) == (1, 1, 150)
    duration_only = UrrMeter(urr(method=MM.DURAT), T0)
    duration_only.count(UL, 150, T0 + 1)
    ie = duration_only.query(T0 + 3).to_ie(pfcp.UsageReportSDR)
    assert ie.volume_measurement is None and ie.duration_measurement is not None


def _payload(ie: pfcp.UsageReportSRR) -> tuple[bytes, int, int]:
    data = ie.encode_payload()
    return data, 0, len(data)


# -- volume threshold ---------------------------------------------------------


def test_volume_threshold_reports_on_the_packet_that_reaches_it() -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=1000)), T0)
    assert feed(meter, [(UL, 300, T0 + 1), (DL, 300, T0 + 2), (UL, 300, T0 + 3)]) == []
    report = meter.count(DL, 300, T0 + 4)
    assert report is not None
    assert report.trigger == UT.VOLTH
    assert (report.ul_bytes, report.dl_bytes, report.total_bytes) == (600, 600, 1200)
    assert (report.first_packet, report.last_packet, report.end_time) == (T0 + 1, T0 + 4, T0 + 4)
    # The threshold applies again to the restarted measurement.
    assert meter.count(UL, 999, T0 + 5) is None
    again = meter.count(UL, 1, T0 + 6)
    assert again is not None and (again.ur_seqn, again.total_bytes) == (1, 1000)


def test_a_volume_threshold_meter_keeps_no_time_or_quota_state_until_it_needs_some() -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=1000)), T0)
    assert meter._t is None  # what most sessions' URR is: the time/quota part is not there
    assert meter.next_deadline() is None
    assert meter.update(urr(RT.VOLTH | RT.PERIO, volume_threshold=vol(total=1000), measurement_period=10), T0 + 1) == []
    assert meter._t is not None and meter.next_deadline() == T0 + 11
    meter.count(UL, 400, T0 + 2)
    (report,) = meter.tick(T0 + 11)
    assert (report.trigger, report.start_time, report.ul_bytes) == (UT.PERIO, T0, 400)


@pytest.mark.parametrize(
    ("threshold", "fires_on"),
    [
        (vol(uplink=500), UL),
        (vol(downlink=500), DL),
    ],
)
def test_direction_thresholds_count_only_their_direction(threshold: pfcp.VolumeThreshold, fires_on: Direction) -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=threshold), T0)
    other = DL if fires_on is UL else UL
    assert feed(meter, [(other, 1000, T0 + i) for i in range(5)]) == []
    assert meter.count(fires_on, 499, T0 + 6) is None
    report = meter.count(fires_on, 1, T0 + 7)
    assert report is not None and report.trigger == UT.VOLTH
    assert report.total_bytes == 5500


def test_total_threshold_counts_both_directions_with_direction_thresholds() -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=1000, uplink=800, downlink=900)), T0)
    assert meter.count(UL, 500, T0) is None
    report = meter.count(DL, 500, T0 + 1)  # total 1000 reached before either direction
    assert report is not None and report.total_bytes == 1000
    assert meter.count(UL, 799, T0 + 2) is None
    report = meter.count(UL, 1, T0 + 3)  # uplink 800 reached first this time
    assert report is not None and (report.ul_bytes, report.dl_bytes) == (800, 0)


def test_volume_threshold_needs_its_trigger_and_volume_measurement() -> None:
    no_trigger = UrrMeter(urr(RT.PERIO, measurement_period=60, volume_threshold=vol(total=10)), T0)
    no_volum = UrrMeter(urr(RT.VOLTH, method=MM.DURAT, volume_threshold=vol(total=10)), T0)
    for meter in (no_trigger, no_volum):
        assert feed(meter, [(UL, 100, T0 + 1), (DL, 100, T0 + 2)]) == []


# -- volume quota -------------------------------------------------------------


def test_volume_quota_blocks_after_the_packet_that_exhausts_it_across_threshold_reports() -> None:
    meter = UrrMeter(
        urr(RT.VOLTH | RT.VOLQU, volume_threshold=vol(total=400), volume_quota=quota(total=1000)),
        T0,
    )
    reports = feed(meter, [(DL, 300, T0 + i) for i in range(1, 10)])
    assert [(r.trigger, r.total_bytes) for r in reports] == [
        (UT.VOLTH, 600),
        (UT.VOLTH | UT.VOLQU, 600),  # 1200 since the quota was provisioned: crossed by this packet
    ]
    assert meter.blocked
    assert meter.query(T0 + 20).total_bytes == 0  # packets 5..9 were dropped, not counted


def test_volume_quota_of_one_direction() -> None:
    meter = UrrMeter(urr(RT.VOLQU, volume_quota=quota(uplink=1000)), T0)
    assert feed(meter, [(DL, 5000, T0 + 1), (UL, 999, T0 + 2)]) == []
    assert not meter.blocked
    report = meter.count(UL, 1, T0 + 3)
    assert report is not None and report.trigger == UT.VOLQU and meter.blocked


def test_update_with_a_new_quota_unblocks_and_counts_from_zero() -> None:
    first = urr(RT.VOLQU, volume_quota=quota(total=1000))
    meter = UrrMeter(first, T0)
    feed(meter, [(UL, 600, T0 + 1), (UL, 600, T0 + 2)])
    assert meter.blocked
    assert meter.update(first, T0 + 3) == []  # the same URR again: nothing changes
    assert meter.blocked
    assert meter.update(dataclasses.replace(first, volume_quota=quota(total=500)), T0 + 4) == []
    assert not meter.blocked
    assert meter.count(UL, 499, T0 + 5) is None
    report = meter.count(UL, 1, T0 + 6)
    assert report is not None and report.trigger == UT.VOLQU and meter.blocked


def test_reprovision_grants_the_same_quota_again() -> None:
    same = urr(RT.VOLQU, volume_quota=quota(total=100))
    meter = UrrMeter(same, T0)
    assert meter.count(DL, 100, T0 + 1) is not None and meter.blocked
    assert meter.update(same, T0 + 2, reprovision=True) == []
    assert not meter.blocked
    assert meter.count(DL, 99, T0 + 3) is None


def test_update_urr_resending_the_same_quota_grants_it_again() -> None:
    # the agent sees Update URR through rules.update_urr: the same quota value is a new grant
    granted = urr(RT.VOLQU, volume_quota=quota(total=100))
    meter = UrrMeter(granted, T0)
    assert meter.count(UL, 100, T0 + 1) is not None and meter.blocked
    ie = pfcp.UpdateURR(urr_id=pfcp.URRID(7), volume_quota=quota(total=100))
    regranted = update_urr(granted, ie)
    assert regranted != granted and regranted.volume_quota == granted.volume_quota
    assert meter.update(regranted, T0 + 2) == []
    assert not meter.blocked
    assert meter.count(UL, 99, T0 + 3) is None and not meter.blocked
    # an Update URR without a quota is not a grant
    assert update_urr(regranted, pfcp.UpdateURR(urr_id=pfcp.URRID(7), volume_threshold=vol(total=5))).quota_grants == 1


def test_update_without_new_quota_keeps_the_quota_count() -> None:
    meter = UrrMeter(urr(RT.VOLQU, volume_quota=quota(total=1000)), T0)
    feed(meter, [(UL, 800, T0 + 1)])
    updated = urr(RT.VOLQU | RT.PERIO, measurement_period=60, volume_quota=quota(total=1000))
    assert meter.update(updated, T0 + 2) == []
    report = meter.count(UL, 200, T0 + 3)
    assert report is not None and report.trigger == UT.VOLQU


def test_zero_quota_blocks_at_once_and_reports_on_the_first_tick() -> None:
    meter = UrrMeter(urr(RT.VOLQU, volume_quota=quota(total=0)), T0)
    assert meter.blocked
    assert meter.next_deadline() == T0
    (report,) = meter.tick(T0 + 0.001)
    assert (report.trigger, report.ur_seqn, report.total_bytes) == (UT.VOLQU, 0, 0)
    assert meter.next_deadline() is None
    assert meter.tick(T0 + 1) == []


# -- update of thresholds -----------------------------------------------------


def test_update_to_a_threshold_already_reached_reports_at_once() -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=10_000)), T0)
    feed(meter, [(UL, 3000, T0 + 1), (DL, 3000, T0 + 2)])
    (report,) = meter.update(urr(RT.VOLTH, volume_threshold=vol(total=5000)), T0 + 3)
    assert (report.trigger, report.total_bytes, report.end_time) == (UT.VOLTH, 6000, T0 + 3)
    assert meter.count(UL, 4999, T0 + 4) is None  # the new threshold, on the restarted measurement
    assert meter.count(UL, 1, T0 + 5) is not None


def test_update_to_a_threshold_not_yet_reached_keeps_measuring() -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=10_000)), T0)
    feed(meter, [(UL, 3000, T0 + 1)])
    assert meter.update(urr(RT.VOLTH, volume_threshold=vol(total=4000)), T0 + 2) == []
    report = meter.count(UL, 1000, T0 + 3)
    assert report is not None and report.total_bytes == 4000 and report.first_packet == T0 + 1


# -- periodic reporting -------------------------------------------------------


def test_periodic_reports_follow_a_fixed_grid_from_creation() -> None:
    meter = UrrMeter(urr(RT.PERIO, measurement_period=10), T0)
    assert meter.next_deadline() == T0 + 10
    assert meter.tick(T0 + 9.9) == []
    meter.count(UL, 50, T0 + 5)
    (first,) = meter.tick(T0 + 10)
    assert (first.trigger, first.start_time, first.end_time, first.ul_bytes) == (UT.PERIO, T0, T0 + 10, 50)
    assert meter.next_deadline() == T0 + 20
    (late,) = meter.tick(T0 + 35)  # one report for the missed periods, the grid kept
    assert (late.ur_seqn, late.start_time, late.total_bytes) == (1, T0 + 10, 0)
    assert meter.next_deadline() == T0 + 40


def test_a_volume_report_does_not_move_the_periodic_grid() -> None:
    meter = UrrMeter(urr(RT.PERIO | RT.VOLTH, measurement_period=10, volume_threshold=vol(total=100)), T0)
    assert meter.count(DL, 100, T0 + 3) is not None
    assert meter.next_deadline() == T0 + 10
    (report,) = meter.tick(T0 + 10)
    assert (report.trigger, report.start_time) == (UT.PERIO, T0 + 3)


def test_update_of_the_measurement_period_restarts_the_grid() -> None:
    meter = UrrMeter(urr(RT.PERIO, measurement_period=10), T0)
    assert meter.update(urr(RT.PERIO, measurement_period=30), T0 + 4) == []
    assert meter.next_deadline() == T0 + 34
    meter.update(urr(RT.PERIO, measurement_period=30, volume_threshold=vol(total=5)), T0 + 5)
    assert meter.next_deadline() == T0 + 34  # an unrelated change keeps the grid


def test_nothing_time_based_means_no_deadline() -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=100)), T0)
    meter.count(UL, 10, T0 + 1)
    assert meter.next_deadline() is None
    assert meter.tick(T0 + 1_000_000) == []


# -- duration, time threshold and quota ----------------------------------------


def test_time_metering_starts_with_the_first_packet() -> None:
    meter = UrrMeter(urr(RT.TIMTH, method=MM.DURAT | MM.VOLUM, time_threshold=10), T0)
    assert meter.next_deadline() is None
    meter.count(UL, 1, T0 + 5)
    assert meter.timers_changed
    assert meter.next_deadline() == T0 + 15
    assert meter.tick(T0 + 14) == []
    (report,) = meter.tick(T0 + 15)
    assert (report.trigger, report.duration, report.start_time) == (UT.TIMTH, 10, T0)
    assert meter.next_deadline() == T0 + 25  # metering goes on without an inactivity time
    (report,) = meter.tick(T0 + 25)
    assert (report.duration, report.total_bytes, report.first_packet) == (10, 0, None)


def test_immediate_start_time_metering() -> None:
    meter = UrrMeter(urr(RT.TIMTH, method=MM.DURAT, time_threshold=10, measurement_information=MI.ISTM), T0)
    assert meter.next_deadline() == T0 + 10
    (report,) = meter.tick(T0 + 10)
    assert report.duration == 10 and report.first_packet is None


def test_inactivity_detection_time_pauses_time_metering() -> None:
    meter = UrrMeter(urr(method=MM.DURAT | MM.VOLUM, inactivity_detection_time=5), T0)
    feed(meter, [(UL, 1, T0), (DL, 1, T0 + 2)])  # metered 0..7 (2 + the 5 s inactivity time)
    feed(meter, [(UL, 1, T0 + 20), (UL, 1, T0 + 24)])  # metered again from 20
    report = meter.query(T0 + 26)
    assert report.duration == 7 + 6
    assert meter.query(T0 + 100).duration == 3  # 26..29, then inactive


def test_whole_second_durations_survive_float_rounding() -> None:
    # A time whose float sum with the inactivity time rounds down: (t + 4) - t < 4.
    t = next(i / 10 for i in range(1, 100) if (i / 10 + 4) - i / 10 < 4)
    meter = UrrMeter(urr(method=MM.DURAT, inactivity_detection_time=4), 0.0)
    meter.count(UL, 1, t)
    assert meter.query(t + 100).duration == 4


def test_time_threshold_deadline_follows_inactivity() -> None:
    meter = UrrMeter(urr(RT.TIMTH, method=MM.DURAT, time_threshold=10, inactivity_detection_time=4), T0)
    meter.count(UL, 1, T0)
    assert meter.next_deadline() is None  # metering stops at T0+4, before the threshold
    meter.timers_changed = False
    meter.count(UL, 1, T0 + 3)  # still active: no new segment
    assert not meter.timers_changed
    meter.count(UL, 1, T0 + 30)  # resumes after 7 s metered (0..3 plus the 4 s inactivity time)
    assert meter.timers_changed
    assert meter.next_deadline() == T0 + 33
    (report,) = meter.tick(T0 + 33)
    assert (report.trigger, report.duration) == (UT.TIMTH, 10)


def test_time_quota_blocks_and_counts_across_reports() -> None:
    meter = UrrMeter(
        urr(RT.TIMTH | RT.TIMQU, method=MM.DURAT | MM.VOLUM, time_threshold=10, time_quota=25),
        T0,
    )
    meter.count(UL, 1, T0)
    assert [r.trigger for r in meter.tick(T0 + 10)] == [UT.TIMTH]
    assert [r.trigger for r in meter.tick(T0 + 20)] == [UT.TIMTH]
    assert meter.next_deadline() == T0 + 25
    (report,) = meter.tick(T0 + 25)
    assert (report.trigger, report.duration) == (UT.TIMQU, 5)
    assert meter.blocked
    new = urr(RT.TIMTH | RT.TIMQU, method=MM.DURAT | MM.VOLUM, time_threshold=10, time_quota=3)
    assert meter.update(new, T0 + 26) == []
    assert not meter.blocked
    assert meter.next_deadline() is None  # metering stopped with the exhausted quota
    meter.count(UL, 1, T0 + 27)
    assert meter.next_deadline() == T0 + 30


def test_time_metering_stops_when_the_quota_is_exhausted() -> None:
    rule = urr(RT.TIMQU, method=MM.DURAT | MM.VOLUM, time_quota=10)
    meter = UrrMeter(rule, T0)
    meter.count(DL, 1, T0)
    (report,) = meter.tick(T0 + 10)
    assert (report.trigger, report.duration) == (UT.TIMQU, 10) and meter.blocked
    assert meter.query(T0 + 50).duration == 0  # nothing forwarded, nothing metered
    assert meter.update(dataclasses.replace(rule, time_quota=20), T0 + 60) == []
    assert meter.next_deadline() is None  # metering waits for the next packet
    meter.count(DL, 1, T0 + 70)
    assert meter.next_deadline() == T0 + 90


def test_update_to_a_time_threshold_already_reached_reports_at_once() -> None:
    meter = UrrMeter(urr(RT.TIMTH, method=MM.DURAT, time_threshold=100, measurement_information=MI.ISTM), T0)
    (report,) = meter.update(
        urr(RT.TIMTH, method=MM.DURAT, time_threshold=30, measurement_information=MI.ISTM), T0 + 40
    )
    assert (report.trigger, report.duration) == (UT.TIMTH, 40)


# -- quota holding time -------------------------------------------------------


def test_quota_holding_time_reports_once_per_silence() -> None:
    meter = UrrMeter(urr(RT.VOLQU | RT.QUHTI, volume_quota=quota(total=10_000), quota_holding_time=30), T0)
    assert meter.next_deadline() == T0 + 30  # from provisioning, before any packet
    meter.count(DL, 100, T0 + 10)
    assert meter.next_deadline() == T0 + 40
    assert meter.tick(T0 + 39) == []
    (report,) = meter.tick(T0 + 40)
    assert (report.trigger, report.dl_bytes) == (UT.QUHTI, 100)
    assert not meter.blocked
    assert meter.next_deadline() is None
    assert meter.tick(T0 + 100) == []
    meter.timers_changed = False
    meter.count(UL, 1, T0 + 101)  # a packet restarts the holding timer
    assert meter.timers_changed
    assert meter.next_deadline() == T0 + 131


def test_quota_holding_time_needs_a_quota() -> None:
    meter = UrrMeter(urr(RT.QUHTI, quota_holding_time=30), T0)
    assert meter.next_deadline() is None
    assert meter.tick(T0 + 31) == []


def test_quota_holding_time_stops_when_the_quota_is_exhausted() -> None:
    meter = UrrMeter(urr(RT.VOLQU | RT.QUHTI, volume_quota=quota(total=10), quota_holding_time=30), T0)
    assert meter.count(UL, 10, T0 + 1) is not None
    assert meter.next_deadline() is None


# -- inactive measurement -----------------------------------------------------


def test_inactive_measurement_counts_nothing_until_resumed() -> None:
    paused = urr(
        RT.VOLTH | RT.PERIO,
        method=MM.VOLUM | MM.DURAT,
        volume_threshold=vol(total=100),
        measurement_period=10,
        measurement_information=MI.INAM,
    )
    meter = UrrMeter(paused, T0)
    assert feed(meter, [(UL, 1000, T0 + 1)]) == []
    assert meter.next_deadline() is None
    assert meter.tick(T0 + 15) == []
    assert meter.update(dataclasses.replace(paused, measurement_information=None), T0 + 16) == []
    assert meter.next_deadline() == T0 + 20  # the grid from creation, the paused periods skipped
    report = meter.count(UL, 100, T0 + 17)
    assert report is not None and report.total_bytes == 100 and report.start_time == T0


# -- no byte lost or counted twice ---------------------------------------------

events = st.lists(
    st.tuples(
        st.sampled_from(["ul", "dl", "query", "tick", "update"]),
        st.integers(min_value=0, max_value=3000),
        st.floats(min_value=0, max_value=5, allow_nan=False),
    ),
    max_size=200,
)
limits = st.one_of(st.none(), st.integers(min_value=0, max_value=5000))


@settings(max_examples=300, deadline=None)
@given(events, limits, limits, limits, limits, st.integers(min_value=1, max_value=20))
def test_reports_add_up_to_the_bytes_counted(
    script: list[tuple[str, int, float]],
    th_total: int | None,
    th_ul: int | None,
    q_dl: int | None,
    q_total: int | None,
    period: int,
) -> None:
    threshold = None if th_total is None and th_ul is None else vol(total=th_total, uplink=th_ul)
    volume_quota = None if q_dl is None and q_total is None else quota(total=q_total, downlink=q_dl)
    rule = urr(
        RT.VOLTH | RT.VOLQU | RT.PERIO | RT.TIMTH,
        method=MM.VOLUM | MM.DURAT,
        volume_threshold=threshold,
        volume_quota=volume_quota,
        measurement_period=period,
        time_threshold=3,
    )
    now = T0
    meter = UrrMeter(rule, now)
    reports: list[UsageReport] = []
    counted = {UL: [0, 0], DL: [0, 0]}
    # Time metering (no inactivity time) runs from a counted packet until a quota report.
    metered, metering_since = 0.0, None

    def take(report: UsageReport) -> None:
        nonlocal metered, metering_since
        reports.append(report)
        if report.trigger & UT.VOLQU and metering_since is not None:
            metered += report.end_time - metering_since
            metering_since = None

    for action, n, dt in script:
        now += dt
        if action in ("ul", "dl"):
            direction = UL if action == "ul" else DL
            if meter.blocked:
                continue
            if metering_since is None:
                metering_since = now
            report = meter.count(direction, n, now)
            counted[direction][0] += n
            counted[direction][1] += 1
            if report is not None:
                take(report)
                _check_volume_report(report, rule, n, direction)
        elif action == "query":
            take(meter.query(now, reference=n))
        elif action == "tick":
            for report in meter.tick(now):
                take(report)
        else:
            for report in meter.update(dataclasses.replace(rule, volume_quota=quota(total=n + 1)), now):
                take(report)
    take(meter.final(now + 1))
    assert sum(r.ul_bytes for r in reports) == counted[UL][0]
    assert sum(r.dl_bytes for r in reports) == counted[DL][0]
    assert sum(r.ul_packets for r in reports) == counted[UL][1]
    assert sum(r.dl_packets for r in reports) == counted[DL][1]
    assert [r.ur_seqn for r in reports] == list(range(len(reports)))
    for before, after in itertools.pairwise(reports):
        assert after.start_time == before.end_time
    if metering_since is not None:
        metered += now + 1 - metering_since
    assert metered - 1 < sum(r.duration or 0 for r in reports) <= metered + 1e-3


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=8),
    st.lists(st.integers(min_value=0, max_value=59), max_size=5),
)
def test_durations_with_inactivity_add_up_to_the_active_time(gaps: list[float], idt: int, queries: list[int]) -> None:
    """Metered time = for each packet, the time to the next packet, at most the inactivity time."""
    meter = UrrMeter(urr(RT.PERIO, method=MM.DURAT, measurement_period=7, inactivity_detection_time=idt), T0)
    times = list(itertools.accumulate(gaps, initial=T0 + 1))[1:]
    reports: list[UsageReport] = []
    for i, t in enumerate(times):
        reports.extend(meter.tick(t))
        assert meter.count(UL, 100, t) is None
        if i in queries:
            reports.append(meter.query(t))
    end = times[-1] + 30
    reports.extend(meter.tick(end))
    reports.append(meter.final(end))
    expected = sum(min(b - a, idt) for a, b in itertools.pairwise([*times, end]))
    total = sum(r.duration or 0 for r in reports)
    assert expected - 1 < total <= expected + 1e-3
    assert all(r.duration is not None and r.duration >= 0 for r in reports)


def _check_volume_report(report: UsageReport, rule: Urr, last: int, direction: Direction) -> None:
    """A VOLTH report overshoots its threshold by less than the packet that reached it."""
    assert report.trigger & (UT.VOLTH | UT.VOLQU)
    if report.trigger & UT.VOLTH:
        th = rule.volume_threshold
        assert th is not None
        reached = [
            measured >= max(limit, 1) and measured - last < max(limit, 1)
            for measured, limit, applies in (
                (report.total_bytes, th.total, True),
                (report.ul_bytes, th.uplink, direction is UL),
            )
            if limit is not None and applies
        ]
        assert any(reached)


@pytest.mark.parametrize("sizes", [[1] * 50, [1500] * 20, [7, 1500, 64, 9000, 1, 1, 1300] * 5])
@pytest.mark.parametrize("threshold", [1, 100, 1500, 4000])
def test_threshold_reports_partition_the_bytes(sizes: list[int], threshold: int) -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=threshold)), T0)
    reports = feed(meter, [(DL if i % 3 else UL, size, T0 + i) for i, size in enumerate(sizes)])
    tail = meter.final(T0 + len(sizes))
    assert sum(r.total_bytes for r in [*reports, tail]) == sum(sizes)
    for report in reports:
        assert threshold <= report.total_bytes < threshold + 9000
    assert tail.total_bytes < threshold


# -- count_bulk / volume_left (a fast path's counter deltas) ---------------------------------


def test_count_bulk_equals_count_of_the_same_packets() -> None:
    rule = urr(RT.VOLTH, volume_threshold=vol(total=10_000), measurement_information=MI.MNOP)
    one, bulk = UrrMeter(rule, T0), UrrMeter(rule, T0)
    for i in range(5):
        assert one.count(UL, 100, T0 + 1 + i) is None
    assert bulk.count_bulk(UL, 500, 5, T0 + 1, T0 + 5, T0 + 6) is None
    assert one.query(T0 + 6) == bulk.query(T0 + 6)
    report = UrrMeter(rule, T0)
    assert report.count_bulk(DL, 300, 2, T0 + 2, T0 + 3, T0 + 4) is None
    got = report.query(T0 + 4)
    assert (got.dl_bytes, got.dl_packets, got.first_packet, got.last_packet) == (300, 2, T0 + 2, T0 + 3)


def test_volume_left_is_what_count_bulk_may_add_without_a_report() -> None:
    rule = urr(RT.VOLTH | RT.VOLQU, volume_threshold=vol(uplink=1000), volume_quota=quota(total=5000))
    meter = UrrMeter(rule, T0)
    total, uplink, downlink = meter.volume_left()
    assert (total, uplink) == (5000, 1000) and downlink >= NO_VOLUME_LIMIT - 1  # no downlink limit of its own
    meter.count(DL, 200, T0 + 1)
    total, uplink, downlink = meter.volume_left()
    assert (total, uplink) == (4800, 1000)
    # One octet short of the uplink threshold: no report; the next packet reaches it.
    assert meter.count_bulk(UL, uplink - 1, 3, T0 + 2, T0 + 3, T0 + 4) is None
    report = meter.count(UL, 1, T0 + 5)
    assert report is not None and report.trigger == UT.VOLTH and report.ul_bytes == 1000


def test_count_bulk_reaching_a_threshold_reports_once_at_the_fold() -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=1000)), T0)
    report = meter.count_bulk(UL, 1200, 4, T0 + 1, T0 + 2, T0 + 3)
    assert report is not None
    assert (report.trigger, report.ul_bytes, report.end_time) == (UT.VOLTH, 1200, T0 + 3)
    assert meter.count_bulk(UL, 10, 1, T0 + 4, T0 + 4, T0 + 5) is None


def test_count_bulk_exhausting_a_quota_blocks() -> None:
    meter = UrrMeter(urr(RT.VOLQU, volume_quota=quota(total=1000)), T0)
    report = meter.count_bulk(DL, 1000, 10, T0 + 1, T0 + 2, T0 + 2)
    assert report is not None and report.trigger == UT.VOLQU and meter.blocked


def test_count_bulk_while_inactive_counts_nothing_and_has_no_volume_limit() -> None:
    meter = UrrMeter(urr(RT.VOLTH, volume_threshold=vol(total=10), measurement_information=MI.INAM), T0)
    assert meter.volume_left()[0] >= NO_VOLUME_LIMIT
    assert meter.count_bulk(UL, 500, 5, T0 + 1, T0 + 2, T0 + 3) is None
    assert meter.query(T0 + 4).ul_bytes == 0


def test_count_bulk_starts_time_metering_at_the_first_packet() -> None:
    rule = urr(RT.TIMTH, method=MM.DURAT | MM.VOLUM, time_threshold=10, inactivity_detection_time=5)
    meter = UrrMeter(rule, T0)
    assert meter.next_deadline() is None
    meter.count_bulk(UL, 100, 2, T0 + 3, T0 + 8, T0 + 9)
    assert meter.timers_changed
    # Metering from the first packet (T0+3); the last packet (T0+8) keeps it running until T0+13.
    assert meter.next_deadline() == pytest.approx(T0 + 13)
    report = meter.query(T0 + 20)
    assert (report.duration, report.first_packet, report.last_packet) == (10, T0 + 3, T0 + 8)
