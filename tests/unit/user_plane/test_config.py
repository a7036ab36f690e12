"""The UPF agent's configuration: parsing, every error with its path, the allow list, the example file."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

import pfcp
from pfcp.transaction import RetransmitPolicy
from user_plane.config import (
    OPTIONS,
    Capacity,
    ConfigError,
    N4Config,
    N6Config,
    Timers,
    UpfConfig,
    load_config,
    parse_config,
    unavailable,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "upf.example.yaml"
VPP_EXAMPLE = EXAMPLE.with_name("upf.vpp.example.yaml")

MINIMAL: dict[str, Any] = {
    "node_id": "198.18.0.2",
    "n4": {"address": "198.18.0.2"},
    "n3": ["198.18.1.2"],
    "n6": {"internet": {"interface": "n6", "ue_pool": "198.19.0.0/16"}},
    "allowed_cps": ["198.18.0.1"],
}


def config_with(*changes: tuple[str, object]) -> dict[str, Any]:
    """MINIMAL with ``(dotted.path, value)`` changes; the value ``DELETE`` removes the key."""
    data = copy.deepcopy(MINIMAL)
    for path, value in changes:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return data


DELETE = object()


def errors_of(data: object) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


# --- valid configurations -----------------------------------------------------------------------------------------


def test_minimal_config_takes_the_documented_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config == UpfConfig(
        node_id=IPv4Address("198.18.0.2"),
        n4=N4Config(IPv4Address("198.18.0.2"), 8805),
        n3=(IPv4Address("198.18.1.2"),),
        n6={"internet": N6Config("n6", (IPv4Network("198.19.0.0/16"),), None)},
        allowed_cps=(IPv4Address("198.18.0.1"),),
        features=pfcp.UPFeatures.FTUP,
        driver="software",
        log_level="info",
        capacity=Capacity(100_000),
        timers=Timers(3.0, 3, 30.0),
    )
    assert config.timers.retransmit == RetransmitPolicy(t1=3.0, n1=3)


def test_example_file_is_valid_and_round_trips() -> None:
    config = load_config(EXAMPLE)
    assert config.node_id == "upf1.edge.example.org"
    assert config.n4 == N4Config(IPv4Address("198.18.0.2"), 8805)
    assert config.n3 == (IPv4Address("198.18.1.2"), IPv6Address("2001:db8:3::2"))
    assert config.n6["internet"] == N6Config(
        "n6-internet",
        (IPv4Network("198.19.0.0/17"), IPv6Network("2001:db8:100::/48")),
        IPv4Address("198.18.2.1"),
    )
    assert config.n6["ims"] == N6Config("n6-ims", (IPv4Network("198.19.128.0/17"),))
    assert config.allowed_cps == ("smf1.core.example.org", IPv4Address("198.18.0.1"), IPv6Network("2001:db8:4::/64"))
    assert unavailable(config) == ()
    # The plain-data view reads back to the same configuration, through YAML as well.
    assert parse_config(config.to_mapping()) == config
    assert parse_config(yaml.safe_load(yaml.safe_dump(config.to_mapping()))) == config


def _documentation_range(text: str) -> bool:
    network = ip_network(text)  # an address reads as a /32 or /128
    if isinstance(network, IPv4Network):
        return network.subnet_of(IPv4Network("198.18.0.0/15"))  # RFC 2544
    return network.subnet_of(IPv6Network("2001:db8::/32"))  # RFC 3849


def test_example_uses_documentation_ranges_only() -> None:
    data = load_config(EXAMPLE).to_mapping()
    values = [data["n4"]["address"], *data["n3"], *data["allowed_cps"][1:]]
    for n6 in data["n6"].values():
        values += n6["ue_pool"] + ([n6["gateway"]] if n6["gateway"] else [])
    assert len(values) == 9
    assert [v for v in values if not _documentation_range(v)] == []


def test_full_config_with_every_option() -> None:
    config = parse_config(
        {
            "node_id": "2001:db8::2",
            "n4": {"address": "2001:db8::2", "port": 18805},
            "n3": "198.18.1.2",  # one address needs no list
            "n6": {
                "internet.mnc001.mcc001": {"interface": "tun0", "ue_pool": ["198.19.0.0/24", "2001:db8:1::/64"]},
            },
            "allowed_cps": ["0.0.0.0/0", "::/0"],
            "features": ["ftup", "UEIP", "MT-EDT", "ATSSS_LL"],
            "driver": "vpp",
            "log_level": "DEBUG",
            "capacity": {"max_sessions": 1},
            "timers": {"t1": 0.5, "n1": 0, "heartbeat_interval": None},
        }
    )
    assert config.node_id == IPv6Address("2001:db8::2")
    assert config.n4.port == 18805
    assert config.n3 == (IPv4Address("198.18.1.2"),)
    assert list(config.n6) == ["internet.mnc001.mcc001"]
    F = pfcp.UPFeatures
    assert config.features == F.FTUP | F.UEIP | F.MT_EDT | F.ATSSS_LL
    assert config.to_mapping()["features"] == ["FTUP", "UEIP", "ATSSS_LL", "MT_EDT"]  # spec bit order
    assert (config.driver, config.log_level) == ("vpp", "debug")
    assert config.capacity == Capacity(1)
    assert config.timers == Timers(0.5, 0, None)
    assert parse_config(config.to_mapping()) == config
    assert unavailable(config) == (
        "vpp: required with driver: vpp (VPP's API socket, its N3/N6 interfaces, a VRF per instance)",
    )


def test_no_features_is_allowed() -> None:
    config = parse_config(config_with(("features", [])))
    assert config.features == pfcp.UPFeatures(0)
    assert config.up_function_features == pfcp.UPFunctionFeatures(pfcp.UPFeatures(0))


@pytest.mark.parametrize(
    ("node_id", "kind"),
    [
        ("198.18.0.2", pfcp.NodeIDType.IPV4_ADDRESS),
        ("2001:db8::2", pfcp.NodeIDType.IPV6_ADDRESS),
        ("upf1.edge.example.org", pfcp.NodeIDType.FQDN),
        ("upf1", pfcp.NodeIDType.FQDN),
    ],
)
def test_node_id_becomes_the_pfcp_ie(node_id: str, kind: pfcp.NodeIDType) -> None:
    ie = parse_config(config_with(("node_id", node_id))).node_id_ie
    assert ie.node_id_type is kind
    assert str(ie) == node_id
    payload = ie.encode_payload()
    assert pfcp.NodeID.decode_payload(payload, 0, len(payload)) == ie


# --- errors -------------------------------------------------------------------------------------------------------

CASES: list[tuple[str, list[tuple[str, object]], str]] = [
    # (id, changes to MINIMAL, the one expected error)
    ("node_id missing", [("node_id", DELETE)], "node_id: required"),
    ("node_id bad", [("node_id", "10.0.0.300")], "node_id: '10.0.0.300' is neither an IP address nor an FQDN"),
    ("node_id label", [("node_id", "-upf.example")], "node_id: '-upf.example' is neither an IP address nor an FQDN"),
    (
        "node_id number",
        [("node_id", 12)],
        "node_id: expected an IP address or FQDN, got number 12 (quote it in YAML to keep it a string)",
    ),
    ("n4 missing", [("n4", DELETE)], "n4: required"),
    ("n4 not mapping", [("n4", "198.18.0.2")], "n4: expected a mapping, got string '198.18.0.2'"),
    ("n4.address missing", [("n4.address", DELETE), ("n4.port", 8805)], "n4.address: required"),
    ("n4.address bad", [("n4.address", "198.18.0")], "n4.address: '198.18.0' is not an IP address"),
    (
        "n4.address unspecified",
        [("n4.address", "0.0.0.0")],
        "n4.address: '0.0.0.0' is unspecified; expected a unicast address peers can reach",
    ),
    (
        "n4.address multicast",
        [("n4.address", "ff02::1")],
        "n4.address: 'ff02::1' is multicast; expected a unicast address peers can reach",
    ),
    ("n4.port range", [("n4.port", 65536)], "n4.port: 65536 is out of range (expected from 1 to 65535)"),
    ("n4.port bool", [("n4.port", True)], "n4.port: expected an integer, got boolean true"),
    ("n3 empty", [("n3", [])], "n3: expected at least one of IP addresses, got an empty list"),
    ("n3 mapping", [("n3", {"a": 1})], "n3: expected a list of IP addresses, got a mapping"),
    ("n3 item", [("n3", ["198.18.1.2", "x"])], "n3[1]: 'x' is not an IP address"),
    ("n3 repeat", [("n3", ["198.18.1.2", "198.18.1.2"])], "n3[1]: '198.18.1.2' repeats n3[0]"),
    ("n6 empty", [("n6", {})], "n6: expected at least one Network Instance, got an empty mapping"),
    ("n6 list", [("n6", [])], "n6: expected a mapping of Network Instance names, got a list"),
    (
        "n6 bad name",
        [("n6", {"in ternet": {"interface": "n6", "ue_pool": "198.19.0.0/16"}})],
        "n6['in ternet']: 'in ternet' is not a valid Network Instance (DNN) name",
    ),
    ("n6 instance null", [("n6.internet", None)], "n6.internet: expected a mapping, got null"),
    ("interface missing", [("n6.internet.interface", DELETE)], "n6.internet.interface: required"),
    (
        "interface long",
        [("n6.internet.interface", "n6-internet-long")],
        "n6.internet.interface: 'n6-internet-long' is not a valid network device name "
        "(1-15 characters, no '/', ':' or spaces)",
    ),
    ("ue_pool missing", [("n6.internet.ue_pool", DELETE)], "n6.internet.ue_pool: required"),
    (
        "ue_pool /33",
        [("n6.internet.ue_pool", "10.0.0.0/33")],
        "n6.internet.ue_pool: '10.0.0.0/33' is not an IP network",
    ),
    (
        "ue_pool host bits",
        [("n6.internet.ue_pool", ["2001:db8::/32", "198.19.0.1/16"])],
        "n6.internet.ue_pool[1]: '198.19.0.1/16' has host bits set (did you mean '198.19.0.0/16'?)",
    ),
    ("gateway bad", [("n6.internet.gateway", "gw")], "n6.internet.gateway: 'gw' is not an IP address"),
    (
        "gateway in pool",
        [("n6.internet.gateway", "198.19.0.1")],
        "n6.internet.gateway: '198.19.0.1' lies inside the UE pool 198.19.0.0/16",
    ),
    ("allowed_cps missing", [("allowed_cps", DELETE)], "allowed_cps: required"),
    (
        "allowed_cps empty",
        [("allowed_cps", [])],
        "allowed_cps: empty: no CP could associate (write 0.0.0.0/0 and ::/0 to allow any)",
    ),
    (
        "allowed_cps bad",
        [("allowed_cps", ["smf_1"])],
        "allowed_cps[0]: 'smf_1' is neither an FQDN, an IP address nor an IP network",
    ),
    (
        "allowed_cps network",
        [("allowed_cps", ["198.18.0.0/8"])],
        "allowed_cps[0]: '198.18.0.0/8' has host bits set (did you mean '198.0.0.0/8'?)",
    ),
    (
        "allowed_cps string",
        [("allowed_cps", "198.18.0.1")],
        "allowed_cps: expected a list of CP peers, got string '198.18.0.1'",
    ),
    (
        "feature unknown",
        [("features", ["FTUP", "UEIPP"])],
        "features[1]: 'UEIPP' is not a UP Function Feature (did you mean 'UEIP'?)",
    ),
    ("feature repeat", [("features", ["FTUP", "ftup"])], "features[1]: 'ftup' repeats features[0]"),
    ("driver", [("driver", "dpdk")], "driver: 'dpdk' is not one of software, vpp"),
    (
        "log_level",
        [("log_level", "verbose")],
        "log_level: 'verbose' is not one of debug, info, warning, error, critical",
    ),
    (
        "log_level yaml bool",
        [("log_level", False)],
        "log_level: expected one of debug, info, warning, error, critical, got boolean false "
        "(quote it in YAML to keep it a string)",
    ),
    ("max_sessions", [("capacity.max_sessions", 0)], "capacity.max_sessions: 0 is out of range (expected at least 1)"),
    ("capacity null", [("capacity", None)], "capacity: expected a mapping, got null"),
    ("t1 zero", [("timers.t1", 0)], "timers.t1: 0 is not a positive, finite number of seconds"),
    ("t1 text", [("timers.t1", "3s")], "timers.t1: expected a number of seconds, got string '3s'"),
    ("n1 float", [("timers.n1", 1.5)], "timers.n1: expected an integer, got number 1.5"),
    (
        "heartbeat negative",
        [("timers.heartbeat_interval", -1)],
        "timers.heartbeat_interval: -1 is not a positive, finite number of seconds",
    ),
    (
        "cp lost grace zero",
        [("timers.cp_lost_grace", 0)],
        "timers.cp_lost_grace: 0 is not a positive, finite number of seconds",
    ),
    (
        "unknown top key",
        [("capcity", {})],
        "capcity: unknown key (did you mean 'capacity'?); expected one of node_id, n4, n3, n6, allowed_cps, "
        "features, driver, log_level, capacity, timers, mqtt, metrics, vpp",
    ),
    (
        "unknown n4 key",
        [("n4.prot", 8805)],
        "n4.prot: unknown key (did you mean 'port'?); expected one of address, port",
    ),
    (
        "unknown n6 key",
        [("n6.internet.gatway", "198.18.2.1")],
        "n6.internet.gatway: unknown key (did you mean 'gateway'?); expected one of interface, ue_pool, gateway",
    ),
    (
        "unknown timers key",
        [("timers.echo", 1)],
        "timers.echo: unknown key; expected one of t1, n1, heartbeat_interval, cp_lost_grace",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_error_names_its_path(changes: list[tuple[str, object]], expected: str) -> None:
    assert errors_of(config_with(*changes)) == (expected,)


def test_not_a_mapping() -> None:
    assert errors_of(["node_id"]) == ("expected a mapping, got a list",)
    data: dict[object, object] = {1: "x"}
    data.update(MINIMAL)
    assert errors_of(data) == ("key 1 is not a string",)


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of(
        config_with(
            ("node_id", "bad_name"),
            ("n4.port", 0),
            ("n6.internet.ue_pool", "10.0.0.0/33"),
            ("driver", "vpp"),  # valid: not among the errors
            ("timers.t1", -1),
            ("typo", 1),
        )
    )
    assert errors == (
        "typo: unknown key; expected one of node_id, n4, n3, n6, allowed_cps, features, driver, log_level, "
        "capacity, timers, mqtt, metrics, vpp",
        "node_id: 'bad_name' is neither an IP address nor an FQDN",
        "n4.port: 0 is out of range (expected from 1 to 65535)",
        "n6.internet.ue_pool: '10.0.0.0/33' is not an IP network",
        "timers.t1: -1 is not a positive, finite number of seconds",
    )


def test_overlapping_ue_pools_across_network_instances() -> None:
    data = config_with(
        ("n6.ims", {"interface": "n6-ims", "ue_pool": ["2001:db8::/48", "198.19.128.0/17"]}),
        ("n6.iot", {"interface": "n6-iot", "ue_pool": "2001:db8::/64"}),
    )
    assert errors_of(data) == (
        "n6.ims.ue_pool[1]: 198.19.128.0/17 overlaps n6.internet.ue_pool 198.19.0.0/16",
        "n6.iot.ue_pool: 2001:db8::/64 overlaps n6.ims.ue_pool[0] 2001:db8::/48",
    )


def test_overlapping_ue_pools_within_one_network_instance() -> None:
    data = config_with(("n6.internet.ue_pool", ["198.19.0.0/16", "198.19.7.0/24"]))
    assert errors_of(data) == ("n6.internet.ue_pool[1]: 198.19.7.0/24 overlaps n6.internet.ue_pool[0] 198.19.0.0/16",)


def test_disjoint_pools_of_both_families_are_fine() -> None:
    data = config_with(
        ("n6.internet.ue_pool", ["198.19.0.0/17", "2001:db8:1::/48"]),
        ("n6.ims", {"interface": "n6-ims", "ue_pool": ["198.19.128.0/17", "2001:db8:2::/48"]}),
    )
    assert len(parse_config(data).n6) == 2


def test_upf_addresses_inside_a_ue_pool() -> None:
    data = config_with(("n3", ["198.18.1.2", "198.19.0.9"]), ("n4.address", "198.19.0.8"))
    assert errors_of(data) == (
        "n3[1]: '198.19.0.9' lies inside the UE pool n6.internet.ue_pool 198.19.0.0/16",
        "n4.address: '198.19.0.8' lies inside the UE pool n6.internet.ue_pool 198.19.0.0/16",
    )


def test_one_device_per_network_instance() -> None:
    data = config_with(("n6.ims", {"interface": "n6", "ue_pool": "198.18.128.0/17"}))
    assert errors_of(data) == ("n6.ims.interface: 'n6' is already the device of n6.internet",)


# --- YAML files ---------------------------------------------------------------------------------------------------


@pytest.fixture
def write(tmp_path: Path) -> Iterator[Any]:
    def _write(text: str) -> Path:
        path = tmp_path / "upf.yaml"
        path.write_text(text)
        return path

    yield _write


def test_yaml_duplicate_key_is_an_error(write: Any) -> None:
    text = yaml.safe_dump(MINIMAL, sort_keys=False) + "node_id: 198.18.0.3\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(text))
    line = text.count("\n")
    assert info.value.errors == (
        f"line {line}, column 1: in the mapping starting at line 1 duplicate key 'node_id' (first at line 1)",
    )


def test_yaml_merge_keys_may_be_overridden(write: Any) -> None:
    text = yaml.safe_dump(MINIMAL, sort_keys=False) + "timers:\n  <<: &base {t1: 2, n1: 1}\n  n1: 4\n"
    assert load_config(write(text)).timers == Timers(2.0, 4, 30.0)


def test_yaml_syntax_error_has_line_and_column(write: Any) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write("node_id: a\nn4: [\n"))
    (error,) = info.value.errors
    assert error.startswith("line 3, column 1: ")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file(write: Any, text: str) -> None:
    with pytest.raises(ConfigError, match=r"^the file is empty; expected a mapping of options$"):
        load_config(write(text))


def test_unquoted_yaml_that_is_not_a_string(write: Any) -> None:
    # YAML 1.1 reads an unquoted 1:2:3:4:5:6:7:8 as a base-60 integer.
    path = write(yaml.safe_dump(MINIMAL, sort_keys=False).replace("198.18.1.2", "1:2:3:4:5:6:7:8"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    number = yaml.safe_load("1:2:3:4:5:6:7:8")
    assert isinstance(number, int)
    assert info.value.errors == (
        f"n3[0]: expected an IP address, got number {number} (quote it in YAML to keep it a string)",
    )


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.yaml")


# --- the allow list -------------------------------------------------------------------------------------------------


ALLOW = parse_config(config_with(("allowed_cps", ["SMF1.core.example.org", "198.18.0.1", "2001:db8:4::/64"])))


@pytest.mark.parametrize(
    ("node_id", "source", "allowed"),
    [
        ("smf1.core.example.org", "203.0.113.9", True),  # FQDN: by Node ID, case-insensitive
        ("smf1.core.example.org.", "203.0.113.9", True),  # trailing dot
        ("smf2.core.example.org", "203.0.113.9", False),
        ("smf2.core.example.org", "198.18.0.1", True),  # address: by source
        ("198.18.0.1", "198.18.0.2", False),  # the Node ID alone proves nothing
        ("198.18.0.2", "198.18.0.1", True),
        ("198.18.0.2", "::ffff:198.18.0.1", True),  # IPv4 peer on a dual-stack socket
        ("smf3", "2001:db8:4::77", True),  # network
        ("smf3", "2001:db8:5::77", False),
    ],
)
def test_cp_allowed(node_id: str, source: str, allowed: bool) -> None:
    value: IPv4Address | IPv6Address | str
    try:
        value = ip_address(node_id)
    except ValueError:
        value = node_id
    assert ALLOW.cp_allowed(value, ip_address(source)) is allowed


def test_allow_any() -> None:
    config = parse_config(config_with(("allowed_cps", ["0.0.0.0/0", "::/0"])))
    assert config.cp_allowed("anyone", ip_address("203.0.113.1"))
    assert config.cp_allowed("anyone", ip_address("2001:db8::1"))


# --- documentation ------------------------------------------------------------------------------------------------


def _leaf_paths(mapping: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in mapping.items():
        path = f"{prefix}.{key}" if prefix else key
        if path in ("n6", "vpp.n6"):
            for instance in value.values():
                yield from _leaf_paths(instance, f"{path}.<network-instance>")
        elif isinstance(value, dict):
            yield from _leaf_paths(value, path)
        else:
            yield path


def test_every_option_is_documented_and_every_documented_option_exists() -> None:
    # the VPP example has the vpp section; its N3 is an existing interface, the other form is memif
    examples = [load_config(EXAMPLE), load_config(VPP_EXAMPLE)]
    paths = {path for config in examples for path in _leaf_paths(config.to_mapping())}
    paths |= {f"vpp.n3.memif.{key}" for key in ("id", "socket", "role", "mode")}
    assert sorted(paths) == sorted(o.path for o in OPTIONS)
    assert all(o.help.endswith(".") for o in OPTIONS)
