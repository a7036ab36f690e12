"""Desired session rules: the default and edge-breakout sets, and their JSON form."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.domain.rules import (
    DEFAULT_PRECEDENCE,
    EdgeRuleSpec,
    FarSpec,
    FTeidSpec,
    PdrSpec,
    QerSpec,
    RuleContext,
    SessionRules,
    UrrSpec,
    build_rules,
)

UE = "198.19.0.5"
N3 = "198.18.1.1"
GNB = "198.18.2.1"
MEC = "permit out ip from 10.200.0.0/16 to assigned"
EDGE = EdgeRuleSpec("mec", 100, (MEC,), "edge-n6")


def context(**changes: object) -> RuleContext:
    values: dict[str, object] = {
        "ue_ipv4": UE,
        "ue_ipv6": None,
        "qfi": 9,
        "qfi_in_pdi": True,
        "mbr": (50_000, 100_000),
        "volume_threshold": 10_000_000,
        "time_threshold": None,
        "dnn_network_instance": "internet",
        "access_network_instance": None,
        "n3_fteid": (0x100, N3),
        "gnb_teid": 0x200,
        "gnb_address": GNB,
    }
    values.update(changes)
    return RuleContext(**values)  # type: ignore[arg-type]


FIXED = FTeidSpec(0x100, N3)
CH = FTeidSpec(None, None, choose=True, choose_id=1)
COMMON = {"qer_ids": (1,), "urr_ids": (1,)}


def test_default_session() -> None:
    rules = build_rules(context())
    assert rules.pdrs == (
        PdrSpec(1, DEFAULT_PRECEDENCE, "access", "N3 3GPP Access", FIXED, UE, None, None, (), 9, True, 1, (1,), (1,)),
        PdrSpec(2, DEFAULT_PRECEDENCE, "core", "N6", None, UE, None, "internet", (), None, False, 2, (1,), (1,)),
    )
    assert rules.fars == (
        FarSpec(1, "forw", "core", "N6", "internet"),
        FarSpec(2, "forw", "access", "N3 3GPP Access", None, 0x200, GNB),
    )
    assert rules.qers == (QerSpec(1, 9, True, True, 50_000, 100_000),)
    assert rules.urrs == (UrrSpec(1, 10_000_000, None),)


def test_edge_breakout_session_with_ch() -> None:
    rules = build_rules(context(n3_fteid=None, qfi_in_pdi=False, edge_rules=(EDGE,)))
    assert rules.pdrs == (
        PdrSpec(1, DEFAULT_PRECEDENCE, "access", "N3 3GPP Access", CH, UE, None, None, (), None, True, 1, (1,), (1,)),
        PdrSpec(2, DEFAULT_PRECEDENCE, "core", "N6", None, UE, None, "internet", (), None, False, 2, (1,), (1,)),
        PdrSpec(3, 100, "access", "N3 3GPP Access", CH, UE, None, None, (MEC,), None, True, 3, (1,), (1,)),
        PdrSpec(4, 100, "core", "N6", None, UE, None, "edge-n6", (MEC,), None, False, 2, (1,), (1,)),
    )
    assert rules.fars[2] == FarSpec(3, "forw", "core", "N6", "edge-n6")
    assert len(rules.fars) == 3 and len(rules.qers) == 1 and len(rules.urrs) == 1


def test_second_edge_rule_numbering_and_dual_stack() -> None:
    second = EdgeRuleSpec("cdn", 50, (MEC, "permit out 17 from 10.201.0.0/16 to assigned"), "cdn-n6")
    rules = build_rules(context(ue_ipv6="2001:db8:0:5::/64", edge_rules=(EDGE, second)))
    assert [p.pdr_id for p in rules.pdrs] == [1, 2, 3, 4, 5, 6]
    assert [f.far_id for f in rules.fars] == [1, 2, 3, 4]
    assert rules.pdrs[4].far_id == 4 and rules.pdrs[4].sdf_filters == second.flow_descriptions
    assert rules.pdrs[5].network_instance == "cdn-n6" and rules.pdrs[5].far_id == 2
    assert all(p.ue_ip_v6 == "2001:db8:0:5::/64" for p in rules.pdrs)


def test_no_gnb_tunnel_buffers_downlink() -> None:
    rules = build_rules(context(gnb_teid=None, gnb_address=None, mbr=None, volume_threshold=None, time_threshold=60))
    assert rules.fars[1] == FarSpec(2, "buff")
    assert rules.qers == (QerSpec(1, 9),)
    assert rules.urrs == (UrrSpec(1, None, 60),)


def test_bad_contexts_are_refused() -> None:
    with pytest.raises(ValueError, match="precedence"):
        build_rules(context(edge_rules=(EdgeRuleSpec("x", DEFAULT_PRECEDENCE, (MEC,), "e"),)))
    with pytest.raises(ValueError, match="no flow description"):
        build_rules(context(edge_rules=(EdgeRuleSpec("x", 1, (), "e"),)))
    with pytest.raises(ValueError, match="UE IPv4"):
        build_rules(context(ue_ipv4=None))
    with pytest.raises(ValueError, match="not an IP address"):
        build_rules(context(n3_fteid=(1, "not-an-address")))


def test_session_rules_sorts_and_checks_references() -> None:
    pdr = PdrSpec(2, 1, "core", far_id=1)
    assert SessionRules((pdr,), (FarSpec(2, "drop"), FarSpec(1, "drop"))).fars[0].far_id == 1
    with pytest.raises(ValueError, match="FAR 1"):
        SessionRules((pdr,), (FarSpec(2, "drop"),))
    with pytest.raises(ValueError, match="repeated"):
        SessionRules((), (FarSpec(2, "drop"), FarSpec(2, "buff")))


def test_build_rules_output_is_what_the_checking_constructor_makes_of_it() -> None:
    for ctx in (context(), context(n3_fteid=None, edge_rules=(EDGE,)), context(gnb_teid=None, gnb_address=None)):
        built = build_rules(ctx)
        assert SessionRules(built.pdrs[::-1], built.fars[::-1], built.qers, built.urrs) == built


def test_rows_and_json_round_trip() -> None:
    rules = build_rules(context(n3_fteid=None, edge_rules=(EDGE,)))
    rows = rules.rows()
    assert [(k, i) for k, i, _ in rows] == [
        ("pdr", 1), ("pdr", 2), ("pdr", 3), ("pdr", 4), ("far", 1), ("far", 2), ("far", 3), ("qer", 1), ("urr", 1)
    ]  # fmt: skip
    assert rows[0][2]["local_fteid"] == {"teid": None, "address": None, "choose": True, "choose_id": 1, "family": 4}
    assert SessionRules.from_rows(rows) == rules
    assert SessionRules.from_json(json.loads(json.dumps(rules.to_json()))) == rules
    # The stored form: the same rows with each body as its JSON text.
    assert [(k, i, json.loads(text)) for k, i, text in rules.row_texts()] == rows


def test_bad_json_is_a_clear_error() -> None:
    body = build_rules(context()).to_json()
    with pytest.raises(ValueError, match="unknown fields"):
        SessionRules.from_json({**body, "far": [{"far_id": 1, "action": "forw", "colour": 1}]})
    with pytest.raises(ValueError, match="action"):
        SessionRules.from_json({**body, "far": [{"far_id": 1, "action": "teleport"}, body["far"][1]]})
    with pytest.raises(ValueError, match="holds rule ID"):
        SessionRules.from_rows([("far", 7, {"far_id": 1, "action": "drop"})])
    with pytest.raises(ValueError, match="kind"):
        SessionRules.from_rows([("bar", 1, {})])
    with pytest.raises(ValueError, match="JSON object"):
        SessionRules.from_json({"pdr": [3]})


addresses = st.ip_addresses(v=4).map(str)
names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20)
edge_rules = st.builds(
    EdgeRuleSpec,
    names,
    st.integers(0, DEFAULT_PRECEDENCE - 1),
    st.lists(st.just(MEC) | st.just("permit out 6 from any 443 to assigned"), min_size=1, max_size=3).map(tuple),
    names,
)
contexts = st.builds(
    RuleContext,
    ue_ipv4=st.none() | addresses,
    ue_ipv6=st.none() | st.ip_addresses(v=6).map(lambda a: f"{a}/128"),
    qfi=st.integers(0, 63),
    qfi_in_pdi=st.booleans(),
    mbr=st.none() | st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)),
    volume_threshold=st.none() | st.integers(0, 2**63),
    time_threshold=st.none() | st.integers(0, 2**32 - 1),
    dnn_network_instance=names,
    access_network_instance=st.none() | names,
    n3_fteid=st.none() | st.tuples(st.integers(1, 2**32 - 1), addresses),
    gnb_teid=st.none() | st.integers(1, 2**32 - 1),
    gnb_address=st.none() | addresses,
    edge_rules=st.lists(edge_rules, max_size=4).map(tuple),
).filter(lambda c: c.ue_ipv4 is not None or c.ue_ipv6 is not None)


@given(contexts)
def test_json_round_trip_is_exact(ctx: RuleContext) -> None:
    rules = build_rules(ctx)
    text = json.dumps(rules.to_json())
    assert SessionRules.from_json(json.loads(text)) == rules
    assert SessionRules.from_rows(json.loads(json.dumps(rules.rows()))) == rules
    assert json.dumps(SessionRules.from_json(json.loads(text)).to_json()) == text
