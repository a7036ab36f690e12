"""The metrics message's dataplane figures, from a software driver's counters."""

from __future__ import annotations

from user_plane.telemetry import dataplane


def test_directions_instances_and_drops_from_the_driver_counters() -> None:
    counters = {
        "n3.rx": 12,
        "n6.internet.tx": 10,
        "n6.internet.tx_bytes": 1000,
        "n6.internet.ul_drops": 2,
        "n6.ims.tx": 1,
        "n6.ims.tx_bytes": 100,
        "n6.internet.rx": 10,
        "n6.internet.dl_packets": 7,
        "n6.internet.dl_bytes": 700,
        "n6.internet.dl_drops": 3,
        "n3.tx": 9,
        "n3.tx.echo_response": 2,  # GTP-U signalling, not forwarded traffic
        "ul_bytes": 1100,
        "dl_bytes": 700,
        "ebpf.ul_packets": 100,
        "ebpf.ul_bytes": 10_000,
        "ebpf.dl_packets": 50,
        "ebpf.dl_bytes": 5_000,
        "forward.ul_no_pdr": 1,
        "drop.n6_write_error": 1,
        "forward.dl_unknown_ue": 3,
        "forward.drop_mbr": 4,  # a rule drop: per reason only
        "ebpf.drop_gate": 2,
        "forward.end_marker_no_path": 0,
    }
    uplink, downlink, per_instance, drops = dataplane(counters, ["internet", "ims"])
    assert uplink == (111, 11_100, 2)
    assert downlink == (57, 5_700, 3)
    assert per_instance == {"internet": ((10, 1000, 2), (7, 700, 3)), "ims": ((1, 100, 0), (0, 0, 0))}
    assert drops == {
        "forward.ul_no_pdr": 1,
        "drop.n6_write_error": 1,
        "forward.dl_unknown_ue": 3,
        "forward.drop_mbr": 4,
        "ebpf.drop_gate": 2,
    }


def test_octets_a_driver_does_not_count_are_null_not_zero() -> None:
    uplink, downlink, per_instance, _ = dataplane({"n6.internet.tx": 3, "n3.tx": 2}, ["internet"])
    assert (uplink, downlink) == ((3, None, 0), (2, None, 0))
    assert per_instance == {"internet": ((3, None, None), (0, 0, 0))}
    idle, _, _, _ = dataplane({}, ["internet"])  # nothing forwarded: zero octets, counted or not
    assert idle == (0, 0, 0)


def test_rule_drops_count_in_their_direction_and_instances_include_the_fast_path() -> None:
    counters = {
        "n6.internet.tx": 4,
        "n6.internet.tx_bytes": 400,
        "n6.internet.ul_drops": 3,  # the engine's gate drops after the PDR matched
        "n6.internet.dl_packets": 2,
        "n6.internet.dl_bytes": 200,
        "n3.tx": 2,
        "ul_bytes": 400,
        "dl_bytes": 200,
        # The engine: rule drops by reason, and again by direction.
        "forward.drop_gate": 5,
        "forward.ul_drop_gate": 3,
        "forward.dl_drop_gate": 2,
        "forward.drop_far": 1,
        "forward.dl_drop_far": 1,
        # The fast path: its totals, per direction and per Network Instance.
        "ebpf.ul_packets": 10,
        "ebpf.ul_bytes": 1000,
        "ebpf.dl_packets": 20,
        "ebpf.dl_bytes": 3000,
        "ebpf.drop_mbr": 7,
        "ebpf.ul_drop_mbr": 0,
        "ebpf.dl_drop_mbr": 7,
        "ebpf.drop_gate": 0,
        "ebpf.ni.internet.ul_packets": 6,
        "ebpf.ni.internet.ul_bytes": 600,
        "ebpf.ni.internet.ul_drops": 0,
        "ebpf.ni.internet.dl_packets": 20,
        "ebpf.ni.internet.dl_bytes": 3000,
        "ebpf.ni.internet.dl_drops": 7,
        "ebpf.ni.ims.ul_packets": 4,
        "ebpf.ni.ims.ul_bytes": 400,
    }
    uplink, downlink, per_instance, drops = dataplane(counters, ["internet", "ims"])
    assert uplink == (14, 1400, 3)
    assert downlink == (22, 3200, 2 + 1 + 7)
    assert per_instance == {
        "internet": ((4 + 6, 400 + 600, 3), (2 + 20, 200 + 3000, 7)),
        "ims": ((4, 400, 0), (0, 0, 0)),  # the fast path alone
    }
    # Each drop once, by direction: the totals are left out.
    assert drops == {
        "forward.ul_drop_gate": 3,
        "forward.dl_drop_gate": 2,
        "forward.dl_drop_far": 1,
        "ebpf.dl_drop_mbr": 7,
    }


def test_a_rule_drop_counted_by_reason_alone_stays_in_drops_without_a_direction() -> None:
    counters = {"forward.drop_mbr": 4, "forward.ul_drop_mbr": 1}
    uplink, downlink, _, drops = dataplane(counters, [])
    assert (uplink[2], downlink[2]) == (1, 0)
    assert drops == {"forward.drop_mbr": 3, "forward.ul_drop_mbr": 1}
