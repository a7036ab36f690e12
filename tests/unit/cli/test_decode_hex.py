"""``edgecups pfcp decode`` on hex arguments, standard input and files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import pfcp
from control_plane.cli.main import app

runner = CliRunner(env={"NO_COLOR": "1"})

HEARTBEAT = pfcp.HeartbeatRequest(sequence=7, recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_000))


def decode(*args: str, input: str | bytes | None = None) -> Result:
    result = runner.invoke(app, ["pfcp", "decode", *args], input=input)
    assert "Traceback" not in result.output
    return result


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_json_view_of_the_golden_message(golden_ser_bytes: bytes) -> None:
    result = decode(golden_ser_bytes.hex(), "-o", "json")
    assert result.exit_code == 0, result.output
    (msg,) = json_lines(result)
    assert msg["message"] == "SESSION_ESTABLISHMENT_REQUEST"
    assert (msg["type"], msg["sequence"], msg["seid"]) == (50, 1, 0)
    assert "priority" not in msg  # MP flag clear
    assert "wire_order" not in result.stdout
    assert msg["node_id"] == {"ie": "NODE_ID", "type": 60, "value": "127.0.0.10", "label_encoded": True}
    assert msg["cp_f_seid"] == {"ie": "F_SEID", "type": 57, "seid": 0x1122334455667788, "ipv4": "127.0.0.10"}

    uplink, downlink = msg["create_pdr"]
    pdi = uplink["pdi"]
    assert pdi["source_interface"]["value"] == "ACCESS"
    assert pdi["local_f_teid"]["teid"] == 287454020  # 0x11223344
    assert pdi["local_f_teid"]["ipv4"] == "10.0.0.2"
    assert pdi["network_instance"]["value"] == "internet"
    assert pdi["ue_ip_address"] == [
        {
            "ie": "UE_IP_ADDRESS",
            "type": 93,
            "ipv4": "10.45.0.2",
            "is_destination": False,
            "choose_v4": False,
            "choose_v6": False,
        }
    ]
    assert [q["value"] for q in pdi["qfi"]] == [9]
    assert uplink["outer_header_removal"]["description"] == "GTPU_UDP_IPV4"
    assert downlink["pdi"]["ue_ip_address"][0]["is_destination"] is True
    assert "local_f_teid" not in downlink["pdi"]

    far1, far2 = msg["create_far"]
    assert far1["apply_action"] == {"ie": "APPLY_ACTION", "type": 44, "value": ["FORW"], "octets": 2}
    assert far1["forwarding_parameters"]["destination_interface"]["value"] == "CORE"
    ohc = far2["forwarding_parameters"]["outer_header_creation"]
    assert ohc == {
        "ie": "OUTER_HEADER_CREATION",
        "type": 84,
        "description": ["GTPU_UDP_IPV4"],
        "teid": 0x55667788,
        "ipv4": "10.0.0.1",
    }

    (qer,) = msg["create_qer"]
    assert qer["mbr"] == {"ie": "MBR", "type": 26, "ul": 100000, "dl": 200000}
    assert (qer["gate_status"]["ul"], qer["gate_status"]["dl"]) == ("OPEN", "OPEN")
    (urr,) = msg["create_urr"]
    assert sorted(urr["measurement_method"]["value"]) == ["DURAT", "VOLUM"]
    assert sorted(urr["reporting_triggers"]["value"]) == ["TIMTH", "VOLTH"]
    assert urr["reporting_triggers"]["octets"] == 3
    assert urr["volume_threshold"]["total"] == 1_000_000_000
    assert msg["pdn_type"]["value"] == "IPV4"


def test_tree_view_of_the_golden_message(golden_ser_bytes: bytes) -> None:
    result = decode(golden_ser_bytes.hex())
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("SESSION_ESTABLISHMENT_REQUEST (50)\n")
    for line in (
        "sequence: 1",
        "SEID: 0x0000000000000000 (0)",
        "priority: none (MP=0)",
        "NODE_ID (60): 127.0.0.10",
        "F_SEID (57) cp_f_seid",
        "seid: 0x1122334455667788 (1234605616436508552)",
        "F_TEID (21) local_f_teid",
        "teid: 0x11223344 (287454020)",
        "NETWORK_INSTANCE (22): internet",
        "UE_IP_ADDRESS (93)",
        "APPLY_ACTION (44): FORW",
        "teid: 0x55667788 (1432778632)",
        "ul: 100000",
        "dl: 200000",
        "PDN_TYPE (113): IPV4",
    ):
        assert line in out, line
    assert out.count("CREATE_PDR (1)") == 2
    # Grouped IEs nest: the F-TEID sits three levels deep (message > Create PDR > PDI).
    assert "│   │   ├── F_TEID (21) local_f_teid" in out


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(lambda h: " ".join(h[i : i + 2] for i in range(0, len(h), 2)), id="spaces"),
        pytest.param(lambda h: ":".join(h[i : i + 2] for i in range(0, len(h), 2)), id="colons"),
        pytest.param(lambda h: "0x" + h.upper(), id="0x-upper"),
        pytest.param(lambda h: "\n".join(h[i : i + 32] for i in range(0, len(h), 32)) + "\n", id="lines"),
    ],
)
def test_hex_spellings_decode_alike(golden_ser_bytes: bytes, spelling: Any) -> None:
    plain = decode(golden_ser_bytes.hex(), "-o", "json")
    other = decode(spelling(golden_ser_bytes.hex()), "-o", "json")
    assert other.exit_code == 0, other.output
    assert other.stdout == plain.stdout


def test_standard_input(golden_ser_bytes: bytes) -> None:
    hexdump = "\n".join(golden_ser_bytes.hex()[i : i + 64] for i in range(0, 740, 64)) + "\n"
    result = decode("-o", "json", input=hexdump)
    assert result.exit_code == 0, result.output
    (msg,) = json_lines(result)
    assert msg["create_pdr"][0]["pdi"]["local_f_teid"]["teid"] == 0x11223344


def test_standard_input_raw_bytes(golden_ser_bytes: bytes) -> None:
    result = decode("-o", "json", input=golden_ser_bytes)
    assert result.exit_code == 0, result.output
    assert json_lines(result)[0]["create_qer"][0]["mbr"]["ul"] == 100000


def test_file_of_hex_text_or_raw_bytes(golden_ser_bytes: bytes, shared_dir: Path, tmp_path: Path) -> None:
    from_hex = decode("-f", str(shared_dir / "pfcp-vectors" / "session-establishment-request.hex"), "-o", "json")
    raw = tmp_path / "ser.bin"
    raw.write_bytes(golden_ser_bytes)
    from_raw = decode("--file", str(raw), "-o", "json")
    assert from_hex.exit_code == from_raw.exit_code == 0
    assert from_hex.stdout == from_raw.stdout
    assert json_lines(from_raw)[0]["message"] == "SESSION_ESTABLISHMENT_REQUEST"


def test_follow_on_datagram_shows_every_message(golden_ser_bytes: bytes) -> None:
    datagram = pfcp.encode_all([HEARTBEAT, pfcp.decode(golden_ser_bytes)])
    result = decode(datagram.hex(), "-o", "json")
    assert result.exit_code == 0, result.output
    first, second = json_lines(result)
    assert first == {
        "message": "HEARTBEAT_REQUEST",
        "type": 1,
        "sequence": 7,
        "recovery_time_stamp": {"ie": "RECOVERY_TIME_STAMP", "type": 96, "value": 3_900_000_000},
    }
    assert second["message"] == "SESSION_ESTABLISHMENT_REQUEST"
    tree = decode(datagram.hex())
    assert "HEARTBEAT_REQUEST (1)" in tree.stdout
    assert "SESSION_ESTABLISHMENT_REQUEST (50)" in tree.stdout


def test_unknown_and_vendor_ies_show_as_hex() -> None:
    msg = pfcp.HeartbeatRequest(
        sequence=9,
        priority=3,
        recovery_time_stamp=pfcp.RecoveryTimeStamp(1),
        extra=(pfcp.UnknownIE(999, b"\xde\xad"), pfcp.VendorIE(0x8001, 10415, b"\xbe\xef")),
    )
    result = decode(pfcp.encode(msg).hex(), "-o", "json")
    assert result.exit_code == 0, result.output
    (view,) = json_lines(result)
    assert view["priority"] == 3
    assert view["extra"] == [
        {"ie": "UNKNOWN", "type": 999, "payload": "dead"},
        {"ie": "VENDOR_SPECIFIC", "type": 32769, "enterprise_id": 10415, "payload": "beef"},
    ]
    tree = decode(pfcp.encode(msg).hex()).stdout
    assert "priority: 3" in tree
    assert "UNKNOWN (999) extra" in tree
    assert "payload: dead" in tree
    assert "VENDOR_SPECIFIC (32769) extra" in tree
    assert "enterprise_id: 10415" in tree


def test_truncated_message_is_an_error_with_its_cause(golden_ser_bytes: bytes) -> None:
    result = decode(golden_ser_bytes[:50].hex())
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: cannot decode PFCP: message length 366 does not fit the 50 octets received" in result.stderr
    assert "cause: 68 INVALID_LENGTH" in result.stderr
    assert "message: 50 SESSION_ESTABLISHMENT_REQUEST" in result.stderr


def test_missing_mandatory_ie_names_the_offending_ie() -> None:
    result = decode("2001000400000100")  # Heartbeat Request, sequence 1, no Recovery Time Stamp
    assert result.exit_code == 1
    assert "cause: 66 MANDATORY_IE_MISSING" in result.stderr
    assert "offending IE: 96 RECOVERY_TIME_STAMP" in result.stderr
    assert "message: 1 HEARTBEAT_REQUEST, sequence 1" in result.stderr


def test_json_errors_are_json_too(golden_ser_bytes: bytes) -> None:
    result = decode("2001000400000100", "-o", "json")
    assert result.exit_code == 1
    assert json_lines(result) == [
        {
            "error": {
                "reason": "HeartbeatRequest: mandatory IE RECOVERY_TIME_STAMP(96) is missing",
                "cause": "MANDATORY_IE_MISSING",
                "cause_value": 66,
                "offending_ie": {"ie": "RECOVERY_TIME_STAMP", "type": 96},
                "message": "HEARTBEAT_REQUEST",
                "message_type": 1,
                "sequence": 1,
            }
        }
    ]
    assert "MANDATORY_IE_MISSING" in result.stderr


def test_malformed_mandatory_ie(golden_ser_bytes: bytes) -> None:
    data = bytearray(golden_ser_bytes)
    assert data[16:21] == bytes.fromhex("003c000500")  # Node ID, length 5, type IPv4
    data[20] = 0x0F  # Node ID type 15 is reserved
    result = decode(bytes(data).hex())
    assert result.exit_code == 1
    assert "cause: 69 MANDATORY_IE_INCORRECT" in result.stderr
    assert "offending IE: 60 NODE_ID" in result.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["zz"], None, "HEX is not hex: 'z' is not a hex digit"),
        (["abc"], None, "odd number of hex digits (3)"),
        ([], "", "standard input is empty"),
        (["2001", "-f", __file__], None, "give HEX or --file, not both"),
    ],
)
def test_bad_input_is_a_usage_error(args: list[str], stdin: str | None, message: str) -> None:
    result = decode(*args, input=stdin)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.replace("│", " ").split())


def test_top_level_help_lists_the_pfcp_group() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "pfcp" in result.stdout
    result = runner.invoke(app, ["pfcp", "decode", "--help"])
    assert result.exit_code == 0
    assert "--file" in result.stdout
