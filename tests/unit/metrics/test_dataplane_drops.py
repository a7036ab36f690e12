"""The UPF agent's drop series (``edgecups_upf_dropped_packets_total``) from a software driver's counters:
every drop in its direction, rule drops of both paths included."""

from __future__ import annotations

from user_plane.metrics import dataplane_families

UPF = "upf-d"


def drop_series(counters: dict[str, int]) -> dict[tuple[str, str, str], float]:
    """(direction, path, reason) -> value of the drop family."""
    (family,) = [f for f in dataplane_families(UPF, counters) if f.name == "edgecups_upf_dropped_packets"]
    out = {}
    for sample in family.samples:
        assert sample.labels["upf"] == UPF and sample.name == "edgecups_upf_dropped_packets_total"
        out[sample.labels["direction"], sample.labels["path"], sample.labels["reason"]] = sample.value
    return out


def test_rule_drops_of_both_paths_are_series_of_their_direction() -> None:
    counters = {
        "forward.drop_gate": 5,
        "forward.ul_drop_gate": 3,
        "forward.dl_drop_gate": 2,
        "forward.drop_quota": 1,
        "forward.ul_drop_quota": 1,
        "forward.ul_no_pdr": 4,
        "forward.end_marker_no_path": 1,
        "drop.n3_send_error": 6,
        "ebpf.drop_mbr": 7,
        "ebpf.ul_drop_mbr": 0,
        "ebpf.dl_drop_mbr": 7,
        "ebpf.drop_gate": 0,
        "ebpf.ul_drop_gate": 0,
        "ebpf.dl_drop_gate": 0,
    }
    assert drop_series(counters) == {
        ("uplink", "python", "drop_gate"): 3,
        ("downlink", "python", "drop_gate"): 2,
        ("uplink", "python", "drop_quota"): 1,
        ("downlink", "python", "drop_quota"): 0,
        ("uplink", "python", "ul_no_pdr"): 4,
        ("downlink", "python", "end_marker_no_path"): 1,
        ("downlink", "python", "n3_send_error"): 6,
        ("uplink", "ebpf", "drop_mbr"): 0,
        ("downlink", "ebpf", "drop_mbr"): 7,
        ("uplink", "ebpf", "drop_gate"): 0,
        ("downlink", "ebpf", "drop_gate"): 0,
    }


def test_what_no_direction_accounts_for_is_unknown() -> None:
    # A driver that counts the reason alone: the series keep the total.
    series = drop_series({"forward.drop_far": 4, "forward.dl_drop_far": 1})
    assert series == {
        ("uplink", "python", "drop_far"): 0,
        ("downlink", "python", "drop_far"): 1,
        ("unknown", "python", "drop_far"): 3,
    }
    assert drop_series({}) == {}  # nothing counted, no fast path: no drop series
