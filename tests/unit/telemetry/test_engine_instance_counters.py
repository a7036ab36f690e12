"""The forwarding engine's figures behind the metrics' per-direction and per-instance drops: rule
drops by direction, uplink drops once the session's Network Instance is known, and downlink
packets buffered (not dropped)."""

from __future__ import annotations

import pfcp
from tests.unit.user_plane.test_forward import (
    DN,
    T0,
    UE,
    buffering_state,
    dl_pdr,
    forw_gtpu,
    forw_n6,
    fwd,
    gpdu,
    state,
    udp4,
    ul_pdr,
)
from user_plane.rules import Far, Qer, Urr

MM, RT = pfcp.MeasurementMethodFlags, pfcp.ReportingTriggersFlags


def test_uplink_drops_after_a_pdr_forwarding_to_an_instance_count_for_it() -> None:
    f = fwd()
    f.install(state(ul_pdr(qer_ids=(1,)), dl_pdr(), qers=(Qer(1, gate_ul=pfcp.Gate.CLOSED),)), T0)
    assert f.uplink(gpdu(udp4()), T0) is None and f.uplink(gpdu(udp4()), T0) is None
    assert f.counters["drop_gate"] == 2 and f.ul_drops == {"internet": 2}
    assert f.uplink(gpdu(udp4(), teid=0x999), T0) is not None  # unknown TEID: no instance known
    assert f.ul_drops == {"internet": 2}


def test_a_drop_far_names_no_instance() -> None:
    f = fwd()
    drop = Far(1, pfcp.ApplyActionFlags.DROP)
    f.install(state(ul_pdr(), dl_pdr(), fars=(drop, forw_gtpu())), T0)
    assert f.uplink(gpdu(udp4()), T0) is None
    assert f.counters["drop_far"] == 1 and not f.ul_drops


def test_buffered_downlink_is_counted_apart_from_drops() -> None:
    f = fwd()
    f.install(buffering_state(count=2), T0)
    for _ in range(3):
        assert f.downlink("internet", udp4(src=DN, dst=UE), T0) is None
    assert f.dl_buffered == 2 and f.counters["dl_buffer_overflow"] == 1
    forwarding = fwd()
    forwarding.install(state(ul_pdr(), dl_pdr(), fars=(forw_n6(), forw_gtpu())), T0)
    assert forwarding.downlink("internet", udp4(src=DN, dst=UE), T0) is not None
    assert forwarding.dl_buffered == 0


def test_rule_drops_count_in_the_direction_of_the_packet_and_in_total() -> None:
    f = fwd()
    gates = Qer(1, gate_ul=pfcp.Gate.CLOSED, gate_dl=pfcp.Gate.CLOSED)
    f.install(state(ul_pdr(qer_ids=(1,)), dl_pdr(qer_ids=(1,)), qers=(gates,)), T0)
    for _ in range(3):
        assert f.uplink(gpdu(udp4()), T0) is None
    for _ in range(2):
        assert f.downlink("internet", udp4(src=DN, dst=UE), T0) is None
    assert f.rule_drops == {"ul_drop_gate": 3, "dl_drop_gate": 2} and f.counters == {"drop_gate": 5}

    drop = Far(2, pfcp.ApplyActionFlags.DROP)  # downlink FAR DROP, uplink MBR of 0 (§8.2.8: passes nothing)
    g = fwd()
    g.install(state(ul_pdr(qer_ids=(1,)), dl_pdr(), fars=(forw_n6(), drop), qers=(Qer(1, mbr_ul=0),)), T0)
    assert g.downlink("internet", udp4(src=DN, dst=UE), T0) is None
    assert g.uplink(gpdu(udp4()), T0) is None and g.uplink(gpdu(udp4()), T0) is None
    assert g.rule_drops == {"dl_drop_far": 1, "ul_drop_mbr": 2}
    assert g.counters == {"drop_far": 1, "drop_mbr": 2}


def test_an_exhausted_quota_drops_in_its_direction() -> None:
    quota = Urr(1, MM.VOLUM, RT.VOLQU, volume_quota=pfcp.VolumeQuota(total=100))
    down = udp4(src=DN, dst=UE, payload=b"q" * 72)  # 100 octets: reaches the quota
    f = fwd()
    f.install(state(ul_pdr(), dl_pdr(urr_ids=(1,)), fars=(forw_n6(), forw_gtpu()), urrs=(quota,)), T0)
    assert f.downlink("internet", down, T0) is not None
    assert f.downlink("internet", down, T0 + 1) is None
    assert f.rule_drops == {"dl_drop_quota": 1} and f.counters["drop_quota"] == 1
