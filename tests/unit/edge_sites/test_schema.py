"""edge_sites.schema: every kind's fields checked, normalized and defaulted; all problems at once."""

from __future__ import annotations

from typing import Any

import pytest

from edge_sites.schema import FIELDS, KINDS, SchemaError, to_document, validate_name, validate_object

UPF = {"site": "edge-1", "n4_address": "198.18.1.10", "n3_addresses": ["198.19.1.10"], "capacity": 10}
POLICY = {"dnn": "internet", "qfi": 9, "five_qi": 9, "session_ambr_ul_kbps": 1000, "session_ambr_dl_kbps": 2000}
RULE = {
    "name": "apps",
    "precedence": 100,
    "flow_descriptions": ["permit out ip from 10.200.1.0/24 to assigned"],
    "network_instance": "mec-local",
}


def errors(kind: str, name: str, spec: Any, **kw: str) -> list[tuple[str, str]]:
    with pytest.raises(SchemaError) as caught:
        validate_object(kind, name, spec, **kw)
    return caught.value.errors


def test_kinds_in_apply_order_each_with_fields() -> None:
    assert KINDS == ("Site", "UPF", "DNN", "Pool", "Policy", "Subscriber")
    assert set(FIELDS) == set(KINDS)


def test_upf_defaults_and_canonical_addresses() -> None:
    spec = validate_object(
        "UPF",
        "upf-1.edge-1.example",
        {**UPF, "n4_address": "2001:DB8:0::10", "n3_addresses": ["198.19.1.10", "2001:db8:0:0::20"],
         "snssais": ["01-00000A", 1, "1"], "network_instances": ["mec", "internet", "mec"]},
    )  # fmt: skip
    assert spec == {
        "site": "edge-1",
        "n4_address": "2001:db8::10",
        "n4_port": 8805,
        "n3_addresses": ["198.19.1.10", "2001:db8::20"],  # order kept: the first of a family is used
        "network_instances": ["internet", "mec"],
        "snssais": ["1", "1-00000a"],
        "capacity": 10,
        "admin_state": "enabled",
        "teid_allocation": "cp",
        "access_network_instance": None,
    }


def test_defaults_of_every_kind() -> None:
    assert validate_object("Site", "cloud", {"kind": "Cloud", "region": "eu"}) == {
        "kind": "cloud",
        "region": "eu",
        "tais": [],
    }
    assert validate_object("DNN", "internet", {}) == {"network_instance": "internet", "snssais": []}
    assert validate_object("Pool", "p4", {"dnn": "internet", "cidr": "10.0.0.0/16"}) == {
        "dnn": "internet",
        "site": None,
        "cidr": "10.0.0.0/16",
        "prefix_length": 32,
    }
    assert validate_object("Pool", "p6", {"dnn": "internet", "cidr": "2001:DB8:100::/48"})["prefix_length"] == 64
    assert validate_object("Policy", "p", POLICY) == {
        **POLICY,
        "snssai": "*",
        "arp_priority": 8,
        "volume_threshold_bytes": None,
        "time_threshold_s": None,
        "qfi_in_pdi": True,
        "failover": False,
        "edge_rules": [],
    }
    assert validate_object("Subscriber", "imsi-001010000000001", {"allowed_dnns": ["mec", "internet", "mec"]}) == {
        "allowed_dnns": ["internet", "mec"],
        "static_ipv4": None,
        "static_ipv6": None,
        "policy": None,
    }


def test_normalizing_twice_changes_nothing() -> None:
    spec = {
        **POLICY,
        "snssai": "001-ABCDEF",
        "edge_rules": [{**RULE, "flow_descriptions": ["permit  out ip from any to assigned"]}],
    }
    once = validate_object("Policy", "p", spec)
    assert once["snssai"] == "1-abcdef"
    assert once["edge_rules"][0]["flow_descriptions"] == ["permit out ip from any to assigned"]
    assert validate_object("Policy", "p", once) == once


def test_host_bits_name_the_field_and_suggest_the_network() -> None:
    assert errors("Pool", "p", {"dnn": "internet", "cidr": "10.0.0.1/24"}) == [
        ("spec.cidr", "'10.0.0.1/24' has host bits set (did you mean '10.0.0.0/24'?)")
    ]


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP prefix"),
        ("10.0.0.1", "'10.0.0.1' is an address, not an IP prefix: write its length too, e.g. 10.0.0.1/32"),
        ("pool", "'pool' is not an IP prefix"),
        ("224.0.0.0/8", "'224.0.0.0/8' is a multicast, loopback, link-local or unspecified range"),
        (24, "expected an IP prefix such as 10.0.0.0/24, got number 24 (quote it in YAML to keep it a string)"),
    ],
)
def test_bad_cidrs(cidr: object, message: str) -> None:
    assert errors("Pool", "p", {"dnn": "internet", "cidr": cidr}) == [("spec.cidr", message)]


def test_every_problem_is_reported_at_once_under_the_path() -> None:
    spec = {"site": "edge 1 ", "n4_address": "198.18.1.300", "n4_port": True, "n3_addresses": [],
            "capacity": 0, "admin_state": "drain", "teid_alloc": "up"}  # fmt: skip
    assert errors("UPF", "198.18.1.10", spec, path="objects[3]") == [
        ("objects[3].spec.teid_alloc", "unknown field (did you mean 'teid_allocation'?); expected one of "
         "site, n4_address, n4_port, n3_addresses, network_instances, snssais, capacity, admin_state, "
         "teid_allocation, access_network_instance"),
        ("objects[3].spec.site", "'edge 1 ' is not a name: expected 1 to 128 printable ASCII characters"),
        ("objects[3].spec.n4_address", "'198.18.1.300' is not an IP address"),
        ("objects[3].spec.n4_port", "expected an integer, got boolean true"),
        ("objects[3].spec.n3_addresses", "expected at least 1 item, got 0"),
        ("objects[3].spec.capacity", "0 is out of range (expected 1..2147483647)"),
        ("objects[3].spec.admin_state", "'drain' is not one of enabled, drained (did you mean 'drained'?)"),
    ]  # fmt: skip


def test_required_fields_and_a_spec_that_is_not_a_mapping() -> None:
    assert errors("Site", "edge-1", {"tais": None}) == [("spec.kind", "required"), ("spec.region", "required")]
    assert errors("Site", "edge-1", ["edge"]) == [("spec", "expected a mapping, got a list")]


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        ("UPF", "-upf-", "is not a Node ID: expected an IP address or an FQDN"),
        ("UPF", "upf.10", "is not a Node ID: expected an IP address or an FQDN"),
        ("Subscriber", "001010000000001", "is not a SUPI: expected 'imsi-' and 5 to 15 digits, or 'nai-...'"),
        ("Subscriber", "imsi-0010100000000012", "is not a SUPI: expected 'imsi-' and 5 to 15 digits, or 'nai-...'"),
        ("DNN", "inter_net", "is not a DNN: expected dot-separated labels of letters, digits and '-', e.g. 'internet'"),
        ("Site", "", "is not a name: expected 1 to 128 printable ASCII characters"),
    ],
)  # fmt: skip
def test_bad_keys(kind: str, name: str, message: str) -> None:
    spec = {
        "DNN": {},
        "UPF": UPF,
        "Subscriber": {"allowed_dnns": ["internet"]},
        "Site": {"kind": "edge", "region": "x"},
    }
    assert errors(kind, name, spec[kind]) == [("name", f"{name!r} {message}")]
    with pytest.raises(SchemaError):
        validate_name(kind, name)


def test_good_keys() -> None:
    assert validate_name("UPF", "2001:db8::1") == "2001:db8::1"
    assert validate_name("UPF", "upf1.example.") == "upf1.example."
    assert validate_name("Subscriber", "nai-user@example.com") == "nai-user@example.com"


def test_unknown_kind() -> None:
    assert errors("Upf", "x", {}) == [
        ("kind", "unknown kind 'Upf' (did you mean 'UPF'?); expected one of Site, UPF, DNN, Pool, Policy, Subscriber")
    ]


@pytest.mark.parametrize(
    ("tai", "message"),
    [
        ("001-01-1", "'001-01-1' is not a TAI: expected 'MCC-MNC-TAC' digits, e.g. '001-01-000001'"),
        ("00101000001", "'00101000001' is not a TAI: expected 'MCC-MNC-TAC' digits, e.g. '001-01-000001'"),
        (1, "expected a TAI, got number 1 (quote it in YAML to keep it a string)"),
    ],
)
def test_bad_tai(tai: object, message: str) -> None:
    assert errors("Site", "e", {"kind": "edge", "region": "r", "tais": ["001-001-000001", tai]}) == [
        ("spec.tais[1]", message)
    ]


@pytest.mark.parametrize(
    ("snssai", "message"),
    [
        ("256", "'256' is not an S-NSSAI: expected 'SST' (0..255) or 'SST-SD' (SD 6 hex digits)"),
        ("1-00001", "'1-00001' is not an S-NSSAI: expected 'SST' (0..255) or 'SST-SD' (SD 6 hex digits)"),
        ("1-FFFFFF", "'1-FFFFFF': SD FFFFFF means no SD; write the SST alone"),
    ],
)
def test_bad_snssai(snssai: str, message: str) -> None:
    assert errors("DNN", "mec", {"snssais": [snssai]}) == [("spec.snssais[0]", message)]


def test_policy_ranges() -> None:
    spec = {**POLICY, "qfi": 64, "five_qi": 0, "arp_priority": 16, "session_ambr_dl_kbps": "1000", "failover": "yes"}
    assert errors("Policy", "p", spec) == [
        ("spec.qfi", "64 is out of range (expected 1..63)"),
        ("spec.five_qi", "0 is out of range (expected 1..255)"),
        ("spec.arp_priority", "16 is out of range (expected 1..15)"),
        ("spec.session_ambr_dl_kbps", "expected an integer, got string '1000'"),
        ("spec.failover", "expected true or false, got string 'yes'"),
    ]


@pytest.mark.parametrize(
    ("flow", "message"),
    [
        ("deny out ip from any to assigned", " is not an IPFilterRule: expected 'permit out|in ip|<protocol> from "
         "<address> [ports] to <address> [ports]' (TS 29.212 §5.4.2: only 'permit')"),
        ("permit out udp from any to assigned", ": protocol 'udp' must be 'ip' or a number 0..255"),
        ("permit out ip from any 80 to assigned",
         ": ports need TCP (6), UDP (17), DCCP (33), SCTP (132) or UDP-Lite (136)"),
        ("permit out 6 from any 70000 to assigned", ": '70000' is not a list of ports 0..65535 and low-high ranges"),
        ("permit out 6 from any 80,90-89 to assigned",
         ": '80,90-89' is not a list of ports 0..65535 and low-high ranges"),
        ("permit out ip from 10.200.1/24 to assigned",
         ": '10.200.1/24' is not an address, a prefix, 'any' or 'assigned'"),
        ("permit out 6 from any to assigned setup", ": unexpected 'setup' (TS 29.212 §5.4.2: no options)"),
    ],
)  # fmt: skip
def test_bad_flow_descriptions(flow: str, message: str) -> None:
    rule = {**RULE, "flow_descriptions": [flow]}
    assert errors("Policy", "p", {**POLICY, "edge_rules": [rule]}) == [
        ("spec.edge_rules[0].flow_descriptions[0]", repr(flow) + message)
    ]


def test_edge_rules_checked_like_fields_and_unique() -> None:
    rules = [RULE, {**RULE, "network_instance": "other"}, {"name": "x", "precedence": 65535, "colour": "red"}]
    assert errors("Policy", "p", {**POLICY, "edge_rules": rules}) == [
        ("spec.edge_rules[2].colour",
         "unknown field; expected one of name, precedence, flow_descriptions, network_instance"),
        ("spec.edge_rules[2].precedence", "65535 is out of range (expected 0..65534)"),
        ("spec.edge_rules[2].flow_descriptions", "required"),
        ("spec.edge_rules[2].network_instance", "required"),
    ]  # fmt: skip
    assert errors("Policy", "p", {**POLICY, "edge_rules": rules[:2]}) == [
        ("spec.edge_rules[1].name", "'apps' repeats spec.edge_rules[0].name"),
        ("spec.edge_rules[1].precedence", "100 repeats spec.edge_rules[0].precedence"),
    ]


def test_pool_prefix_length() -> None:
    assert errors("Pool", "p", {"dnn": "d", "cidr": "10.0.0.0/16", "prefix_length": 24}) == [
        ("spec.prefix_length", "24: an IPv4 pool gives each UE one address, so it is always 32")
    ]
    assert errors("Pool", "p", {"dnn": "d", "cidr": "2001:db8::/56", "prefix_length": 48}) == [
        ("spec.prefix_length", "48 is shorter than the pool's own /56: expected 56..128")
    ]
    assert errors("Pool", "p", {"dnn": "d", "cidr": "2001:db8::/96"}) == [
        ("spec.prefix_length", "the default 64 is shorter than the pool's own /96: set it (96..128)")
    ]
    assert (
        validate_object("Pool", "p", {"dnn": "d", "cidr": "2001:db8::/96", "prefix_length": 112})["prefix_length"]
        == 112
    )


def test_subscriber_static_addresses() -> None:
    spec = {"allowed_dnns": ["internet"], "static_ipv4": "2001:db8::1", "static_ipv6": "2001:db8::1"}
    assert errors("Subscriber", "imsi-001010000000001", spec) == [
        ("spec.static_ipv4", "'2001:db8::1' is not an IPv4 address"),
        ("spec.static_ipv6",
         "'2001:db8::1' is an address, not an IPv6 prefix: write its length too, e.g. 2001:db8::1/128"),
    ]  # fmt: skip


def test_schema_error_reads_as_one_line_per_problem() -> None:
    error = SchemaError([("spec.qfi", "required"), ("", "bad")])
    assert str(error) == "spec.qfi: required; bad"
    assert isinstance(error, ValueError)


def test_to_document_keeps_set_spec_fields_only() -> None:
    spec = validate_object("Policy", "p", {**POLICY, "edge_rules": [RULE]})
    doc = to_document("Policy", "p", {**spec, "observed": 1})
    assert doc == {
        "apiVersion": "edgecups/v1",
        "kind": "Policy",
        "metadata": {"name": "p"},
        "spec": {k: v for k, v in spec.items() if v is not None},
    }
    assert list(doc["spec"]) == [f.name for f in FIELDS["Policy"] if spec[f.name] is not None]
    assert validate_object("Policy", "p", doc["spec"]) == spec
