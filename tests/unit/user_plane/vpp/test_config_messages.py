"""The vpp section of the agent's configuration, and the start-up check of VPP's messages."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_interface
from pathlib import Path
from typing import Any

from tests.unit.user_plane.test_agent import config
from user_plane.config import OPTIONS, parse_config, unavailable
from user_plane.vpp.config import Memif, NetworkInstanceSide, parse_vpp
from user_plane.vpp.messages import MESSAGES, check_messages, required

N3 = (IPv4Address("198.18.1.1"),)


def section(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "api_socket": "/run/vpp/api.sock",
        "n3": {"interface": "GigabitEthernet0/8/0", "address": "198.18.1.1/24"},
        "n6": {
            "internet": {"memif": {"id": 7, "socket": "/run/vpp/n6.sock"}, "address": "198.18.2.1/24", "table_id": 100}
        },
    }
    value.update(overrides)
    return value


def test_a_vpp_section_is_parsed_and_round_trips() -> None:
    vpp, problems = parse_vpp(section(poll_interval=0.5), instances=("internet",), n3=N3)
    assert problems == [] and vpp is not None
    assert vpp.n3 == NetworkInstanceSide("GigabitEthernet0/8/0", (ip_interface("198.18.1.1/24"),), 0)
    assert vpp.n6["internet"].interface == Memif(7, "/run/vpp/n6.sock", "master", "ethernet")
    assert (vpp.api_dir, vpp.poll_interval, vpp.timeout) == ("/usr/share/vpp/api", 0.5, 5.0)
    again, problems = parse_vpp(vpp.to_mapping(), instances=("internet",), n3=N3)
    assert again == vpp and problems == []


def test_every_problem_of_a_vpp_section_is_reported_with_its_path() -> None:
    bad = section(
        timeout=0,
        n3={"interface": "eth0", "address": "198.18.9.9/24"},
        n6={"internet": {"interface": "x", "memif": {"id": 1, "socket": "s"}, "address": "nope"}, "ims": {}},
        colour="blue",
    )
    vpp, problems = parse_vpp(bad, instances=("internet",), n3=N3)
    assert vpp is None
    text = "\n".join(problems)
    for expected in (
        "vpp.colour: unknown key",
        "vpp.timeout: expected a positive number",
        "vpp.n3.address[0]: 198.18.9.9 is not one of the N3 addresses",
        "vpp.n3.address: the N3 address 198.18.1.1 (n3) is on no VPP interface",
        "vpp.n6.internet: give exactly one of interface",
        "vpp.n6.internet.address: expected address/prefix length",
        "vpp.n6.internet.table_id: required",
        "vpp.n6.ims: not a Network Instance of n6",
    ):
        assert expected in text, text


def test_the_agent_configuration_takes_driver_vpp_with_its_section() -> None:
    assert unavailable(config(driver="vpp"))[0].startswith("vpp: required with driver: vpp")
    cfg = config(driver="vpp", vpp=section())
    assert cfg.vpp is not None and cfg.vpp.n6["internet"].table_id == 100
    assert unavailable(cfg) == ()  # this build has the vpp driver
    assert parse_config(cfg.to_mapping()) == cfg
    assert any(o.path == "vpp.n6.<network-instance>.table_id" for o in OPTIONS)  # documented in --help


def test_the_message_check_names_every_missing_or_different_message() -> None:
    schema = {name: crc for name, (crc, _, _) in MESSAGES.items()}
    schema.update({reply: crc for _, reply, crc in MESSAGES.values()})
    table = {f"{name}_{crc[2:]}" for name, crc in schema.items()}
    needed = required(memif=False, gtpu_forward=False)
    assert "memif_create_v2" not in needed and "gtpu_add_del_tunnel_v2" in needed
    assert check_messages(needed, schema, table) == []

    changed = dict(schema, policer_add="0x12345678")
    problems = check_messages(needed, changed, table)
    assert problems == [
        "policer_add: the API schema (api_dir) has CRC 0x12345678, this driver is written for 0x4d949e35",
        "policer_add: VPP has CRC 0x4d949e35, the API schema (api_dir) 0x12345678",
    ]
    table_without = {e for e in table if e.rpartition("_")[0] != "gtpu_tunnel_update_tteid"}
    assert check_messages(needed, schema, table_without) == [
        "gtpu_tunnel_update_tteid: VPP does not have it (plugin not loaded, or another VPP version)"
    ]
    del changed["acl_dump"]
    assert "acl_dump: not in the API schema (api_dir); this driver needs it with CRC 0xef34fea4" in check_messages(
        needed, changed, table
    )


def test_check_config_summarises_the_vpp_example() -> None:
    from typer.testing import CliRunner

    from control_plane.cli.main import app

    example = Path(__file__).resolve().parents[4] / "deploy" / "upf.vpp.example.yaml"
    result = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "300"}).invoke(app, ["upf", "check-config", str(example)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{example}: valid"
    [vpp] = [line for line in lines if line.startswith("VPP ")]
    assert vpp.split(None, 1)[1] == (
        "API /run/vpp/api.sock, schema /usr/share/vpp/api; N3 GigabitEthernet0/8/0 (VRF 0), "
        "internet memif /run/vpp/memif-n6-internet.sock#1 (VRF 100), ims GigabitEthernet0/9/0 (VRF 200)"
    )
