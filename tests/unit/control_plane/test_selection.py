"""control_plane.domain.selection: which UPF takes a session, and why none can."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.domain.selection import NoUpfAvailable, UpfCandidate, rank_upfs, select_upf

TAI_A = "001-01-000001"
TAI_B = "001-01-000002"
SLICE = "1-000001"


def upf(node_id: str, **changes: Any) -> UpfCandidate:
    """An enabled, healthy, idle edge UPF at site 'edge-a' serving TAI_A, 'internet', every slice."""
    base = UpfCandidate(
        id=1,
        node_id=node_id,
        site="edge-a",
        site_kind="edge",
        site_tais=frozenset({TAI_A}),
        dnns=frozenset({"internet"}),
        snssais=frozenset(),
        admin_state="enabled",
        healthy=True,
        capacity=100,
        load=0,
        site_pools=frozenset({"internet"}),
    )
    return dataclasses.replace(base, **changes)


def cloud(node_id: str, **changes: Any) -> UpfCandidate:
    return upf(node_id, site="cloud-1", site_kind="cloud", site_tais=frozenset(), **changes)


def pick(candidates: list[UpfCandidate], **kw: Any) -> str:
    args: dict[str, Any] = {"dnn": "internet", "snssai": SLICE, "tai": TAI_A, **kw}
    return select_upf(candidates, **args).node_id


def reason(candidates: list[UpfCandidate], **kw: Any) -> str:
    args: dict[str, Any] = {"dnn": "internet", "snssai": SLICE, "tai": TAI_A, **kw}
    with pytest.raises(NoUpfAvailable) as err:
        select_upf(candidates, **args)
    assert str(err.value) == err.value.reason
    assert rank_upfs(candidates, **args) == []
    return err.value.reason


# ---------------------------------------------------------------- DNN and slice


def test_dnn_must_be_served() -> None:
    assert reason([upf("upf1")], dnn="ims") == "no UPF serves DNN 'ims' for slice 1-000001"
    assert pick([upf("upf1"), upf("upf2", dnns=frozenset({"ims"}), site_pools=frozenset({"ims"}))], dnn="ims") == "upf2"


def test_no_upf_at_all() -> None:
    assert "no UPF is configured" in reason([])


def test_slice_must_be_served_and_empty_means_any() -> None:
    only_other = upf("upf1", snssais=frozenset({"1-000002"}))
    text = reason([only_other])
    assert text == "no UPF serves DNN 'internet' for slice 1-000001 (DNN served only on other slices by upf1)"
    assert pick([only_other, upf("upf2", load=90)]) == "upf2"  # empty set: any slice
    assert pick([upf("upf3", snssais=frozenset({"1-000002", SLICE}))]) == "upf3"


@pytest.mark.parametrize(
    "served, asked",
    [("1-00000A", "1-00000a"), ("1", "1-FFFFFF"), ("1-ffffff", "1"), ("01-000001", "1-000001")],
)
def test_slices_compare_by_value(served: str, asked: str) -> None:
    assert pick([upf("upf1", snssais=frozenset({served}))], snssai=asked) == "upf1"


def test_slices_with_different_sd_do_not_match() -> None:
    reason([upf("upf1", snssais=frozenset({"1"}))], snssai="1-000001")


def test_dnn_and_tai_compare_case_insensitively() -> None:
    c = upf("upf1", site_tais=frozenset({"001-01-00000A"}))
    assert pick([c], dnn="Internet", tai="001-01-00000a") == "upf1"


# ---------------------------------------------------------------- availability


@pytest.mark.parametrize(
    "changes, why",
    [
        ({"admin_state": "drained"}, "upf1: drained"),
        ({"healthy": False}, "upf1: down"),
        ({"load": 100}, "upf1: full (100/100)"),
        ({"load": 150}, "upf1: full (150/100)"),
        ({"capacity": 0}, "upf1: full (0/0)"),
        ({"site_pools": frozenset({"ims"})}, "upf1: no IP pool for the DNN at site 'edge-a'"),
    ],
)
def test_unavailable_upfs_are_skipped_with_a_reason(changes: dict[str, Any], why: str) -> None:
    bad = upf("upf1", **changes)
    assert pick([bad, upf("upf2", load=99)]) == "upf2"
    assert reason([bad]) == (
        "every UPF serving DNN 'internet' for slice 1-000001 at TAI 001-01-000001 is excluded, drained, "
        f"down, full or without an IP pool ({why})"
    )


def test_reason_lists_every_upf() -> None:
    text = reason([upf("upf2", healthy=False), upf("upf1", admin_state="drained"), upf("upf3", load=100)])
    assert "(upf1: drained, upf2: down, upf3: full (100/100))" in text


def test_exclude_skips_named_upfs() -> None:
    both = [upf("upf1"), upf("upf2", load=50)]
    assert pick(both) == "upf1"
    assert pick(both, exclude={"upf1"}) == "upf2"
    assert pick(both, exclude=frozenset({"upf1", "upf9"})) == "upf2"
    assert "(upf1: excluded, upf2: excluded)" in reason(both, exclude=["upf1", "upf2"])


# ---------------------------------------------------------------- location tiers


def test_edge_serving_the_tai_beats_cloud_even_when_busier() -> None:
    assert pick([cloud("cloud1"), upf("edge1", load=95)]) == "edge1"


def test_edge_without_a_pool_for_the_dnn_falls_back_to_cloud() -> None:
    edge = upf("edge1", site_pools=frozenset({"ims"}))
    assert pick([edge, cloud("cloud1", load=80)]) == "cloud1"


def test_full_drained_or_down_edge_falls_back_to_cloud() -> None:
    edges = [upf("e1", load=100), upf("e2", admin_state="drained"), upf("e3", healthy=False)]
    assert pick([*edges, cloud("c1")]) == "c1"


def test_edge_not_serving_the_tai_is_never_chosen() -> None:
    elsewhere = upf("edge-b1", site="edge-b", site_tais=frozenset({TAI_B}))
    assert pick([elsewhere, cloud("cloud1", load=99)]) == "cloud1"
    assert pick([elsewhere, cloud("cloud1")], tai=TAI_B) == "edge-b1"
    assert reason([elsewhere]) == (
        "no site with a UPF serving DNN 'internet' for slice 1-000001 covers TAI 001-01-000001 "
        "(edge sites 'edge-b' serve other TAIs, and no cloud site serves the DNN)"
    )


def test_unavailable_reason_mentions_edge_sites_for_other_tais() -> None:
    elsewhere = upf("edge-b1", site="edge-b", site_tais=frozenset({TAI_B}))
    text = reason([elsewhere, cloud("cloud1", healthy=False)])
    assert text.endswith("(cloud1: down); edge sites 'edge-b' do not serve the TAI")


def test_least_loaded_by_ratio_then_node_id() -> None:
    big = upf("upf-big", capacity=1000, load=400)  # 0.4
    small = upf("upf-small", capacity=10, load=3)  # 0.3
    assert pick([big, small]) == "upf-small"
    tie = [upf("upf-b", capacity=10, load=5), upf("upf-a", capacity=1000, load=500)]
    assert pick(tie) == "upf-a"
    assert pick(list(reversed(tie))) == "upf-a"


def test_rank_gives_the_full_order() -> None:
    cands = [
        cloud("c2", load=10),
        upf("e2", load=20),
        cloud("c1", load=10),
        upf("e1", load=30),
        upf("e-drained", admin_state="drained"),
        upf("e-other", site="edge-b", site_tais=frozenset({TAI_B})),
    ]
    ranked = rank_upfs(cands, dnn="internet", snssai=SLICE, tai=TAI_A)
    assert [c.node_id for c in ranked] == ["e2", "e1", "c1", "c2"]
    assert select_upf(cands, dnn="internet", snssai=SLICE, tai=TAI_A) is ranked[0]


def test_candidates_may_be_any_iterable() -> None:
    assert select_upf(iter([upf("upf1")]), dnn="internet", snssai=SLICE, tai=TAI_A).node_id == "upf1"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"site_kind": "regional"}, "site_kind must be 'edge' or 'cloud'"),
        ({"admin_state": "maintenance"}, "admin_state must be 'enabled' or 'drained'"),
        ({"capacity": -1}, "capacity and load must be >= 0"),
        ({"load": -1}, "capacity and load must be >= 0"),
    ],
)
def test_bad_candidates_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        upf("upf1", **changes)


# ---------------------------------------------------------------- properties

candidates = st.lists(
    st.builds(
        upf,
        st.sampled_from([f"upf{i}" for i in range(8)]),
        site_kind=st.sampled_from(["edge", "cloud"]),
        site_tais=st.sets(st.sampled_from([TAI_A, TAI_B])).map(frozenset),
        snssais=st.sets(st.sampled_from([SLICE, "1-000002"])).map(frozenset),
        admin_state=st.sampled_from(["enabled", "drained"]),
        healthy=st.booleans(),
        capacity=st.integers(0, 20),
        load=st.integers(0, 25),
        site_pools=st.sets(st.sampled_from(["internet", "ims"])).map(frozenset),
    ),
    max_size=8,
    unique_by=lambda c: c.node_id,
)


@given(candidates, st.sets(st.sampled_from([f"upf{i}" for i in range(8)])))
def test_selection_obeys_every_rule(cands: list[UpfCandidate], exclude: set[str]) -> None:
    ranked = rank_upfs(cands, dnn="internet", snssai=SLICE, tai=TAI_A, exclude=exclude)

    def ok(c: UpfCandidate) -> bool:
        return (
            (not c.snssais or SLICE in c.snssais)
            and (c.site_kind == "cloud" or TAI_A in c.site_tais)
            and c.node_id not in exclude
            and c.admin_state == "enabled"
            and c.healthy
            and c.load < c.capacity
            and "internet" in c.site_pools
        )

    assert {c.node_id for c in ranked} == {c.node_id for c in cands if ok(c)}
    keys = [(c.site_kind != "edge", c.load / c.capacity, c.node_id) for c in ranked]
    assert keys == sorted(keys)
    if ranked:
        assert select_upf(cands, dnn="internet", snssai=SLICE, tai=TAI_A, exclude=exclude) is ranked[0]
    else:
        with pytest.raises(NoUpfAvailable):
            select_upf(cands, dnn="internet", snssai=SLICE, tai=TAI_A, exclude=exclude)
