"""``edgecups pfcp decode --file`` on pcap and pcapng captures."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dpkt
import pytest
from typer.testing import CliRunner, Result

import pfcp
from control_plane.cli.main import app

from .frames import ETH_IPV4, ETH_IPV6, Interface, ethernet, ip_udp, ipv4, sll2, udp
from .frames import pcapng as build_pcapng

runner = CliRunner(env={"NO_COLOR": "1"})

HEARTBEAT = pfcp.encode(pfcp.HeartbeatRequest(sequence=7, recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_000)))
HEARTBEAT_RESPONSE = pfcp.encode(
    pfcp.HeartbeatResponse(sequence=7, recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_100))
)
T0 = 1_700_000_000.5  # 2023-11-14 22:13:20.5 UTC


def frames(golden: bytes) -> list[bytes]:
    """SMF -> UPF golden request, a DNS query (not PFCP), UPF -> SMF heartbeat over IPv6."""
    return [
        ethernet(ip_udp("10.0.0.10", "10.0.0.20", 8805, 8805, golden), ETH_IPV4),
        ethernet(ip_udp("10.0.0.10", "10.0.0.53", 40000, 53, b"\x12\x34\x01\x00"), ETH_IPV4),
        ethernet(ip_udp("2001:db8::20", "2001:db8::10", 8805, 8805, HEARTBEAT), ETH_IPV6),
    ]


def write_pcap(path: Path, packets: list[bytes], *, pcapng: bool = False, linktype: int = 1) -> Path:
    buffer = io.BytesIO()
    writer = (dpkt.pcapng.Writer if pcapng else dpkt.pcap.Writer)(buffer, snaplen=65535, linktype=linktype)
    for i, packet in enumerate(packets):
        writer.writepkt(packet, ts=T0 + i)
    path.write_bytes(buffer.getvalue())
    return path


def decode(*args: str) -> Result:
    result = runner.invoke(app, ["pfcp", "decode", *args])
    assert "Traceback" not in result.output
    return result


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_capture_to_json(golden_ser_bytes: bytes, tmp_path: Path, fmt: str) -> None:
    path = write_pcap(tmp_path / f"n4.{fmt}", frames(golden_ser_bytes), pcapng=fmt == "pcapng")
    result = decode("-f", str(path), "-o", "json")
    assert result.exit_code == 0, result.output
    golden, heartbeat = json_lines(result)
    assert {k: golden[k] for k in ("frame", "index", "src", "dst")} == {
        "frame": 1,
        "index": 0,
        "src": "10.0.0.10:8805",
        "dst": "10.0.0.20:8805",
    }
    assert golden["time"] == pytest.approx(T0, abs=1e-6)
    assert golden["pfcp"]["message"] == "SESSION_ESTABLISHMENT_REQUEST"
    assert golden["pfcp"]["create_pdr"][0]["pdi"]["local_f_teid"]["teid"] == 287454020
    assert golden["pfcp"]["create_pdr"][0]["pdi"]["network_instance"]["value"] == "internet"
    assert golden["pfcp"]["create_qer"][0]["mbr"]["ul"] == 100000
    assert heartbeat["frame"] == 3  # frame 2 (DNS) is not PFCP but still counts
    assert (heartbeat["src"], heartbeat["dst"]) == ("[2001:db8::20]:8805", "[2001:db8::10]:8805")
    assert heartbeat["time"] == pytest.approx(T0 + 2, abs=1e-6)
    assert heartbeat["pfcp"] == {
        "message": "HEARTBEAT_REQUEST",
        "type": 1,
        "sequence": 7,
        "recovery_time_stamp": {"ie": "RECOVERY_TIME_STAMP", "type": 96, "value": 3_900_000_000},
    }


def test_capture_to_tree(golden_ser_bytes: bytes, tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "n4.pcap", frames(golden_ser_bytes))
    result = decode("--file", str(path))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(
        "Frame 1  2023-11-14 22:13:20.500000 UTC  10.0.0.10:8805 -> 10.0.0.20:8805\n"
        "SESSION_ESTABLISHMENT_REQUEST (50)\n"
    )
    assert (
        "\n\nFrame 3  2023-11-14 22:13:22.500000 UTC  [2001:db8::20]:8805 -> [2001:db8::10]:8805\n"
        "HEARTBEAT_REQUEST (1)\n"
    ) in out
    assert "teid: 0x11223344 (287454020)" in out
    assert "RECOVERY_TIME_STAMP (96): 3900000000" in out


def test_follow_on_datagram_in_capture(golden_ser_bytes: bytes, tmp_path: Path) -> None:
    datagram = pfcp.encode_all([pfcp.decode(HEARTBEAT_RESPONSE), pfcp.decode(golden_ser_bytes)])
    path = write_pcap(tmp_path / "fo.pcap", [sll2(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, datagram))], linktype=276)
    result = decode("-f", str(path), "-o", "json")
    assert result.exit_code == 0, result.output
    views = json_lines(result)
    assert [(v["frame"], v["index"], v["pfcp"]["message"]) for v in views] == [
        (1, 0, "HEARTBEAT_RESPONSE"),
        (1, 1, "SESSION_ESTABLISHMENT_REQUEST"),
    ]
    tree = decode("-f", str(path)).stdout
    assert "Frame 1 message 1/2" in tree
    assert "Frame 1 message 2/2" in tree


def test_undecodable_datagram_is_reported_and_the_rest_still_shown(golden_ser_bytes: bytes, tmp_path: Path) -> None:
    packets = frames(golden_ser_bytes)
    packets[0] = ethernet(ip_udp("10.0.0.10", "10.0.0.20", 8805, 8805, golden_ser_bytes[:60]), ETH_IPV4)
    path = write_pcap(tmp_path / "bad.pcapng", packets, pcapng=True)
    result = decode("-f", str(path), "-o", "json")
    assert result.exit_code == 1
    assert "error: frame 1 (10.0.0.10:8805 -> 10.0.0.20:8805): cannot decode PFCP" in result.stderr
    assert "cause: 68 INVALID_LENGTH" in result.stderr
    error, heartbeat = json_lines(result)
    assert error["frame"] == 1
    assert error["error"]["cause"] == "INVALID_LENGTH"
    assert heartbeat["pfcp"]["message"] == "HEARTBEAT_REQUEST"


def test_capture_without_pfcp_fails(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "dns.pcap", [ethernet(ip_udp("10.0.0.1", "10.0.0.53", 40000, 53, b"q"), ETH_IPV4)])
    result = decode("-f", str(path))
    assert result.exit_code == 1
    assert f"no UDP datagram to or from port 8805 in {path}" in result.stderr


def test_port_option(tmp_path: Path) -> None:
    path = write_pcap(
        tmp_path / "alt.pcap", [ethernet(ip_udp("10.0.0.1", "10.0.0.2", 30000, 18805, HEARTBEAT), ETH_IPV4)]
    )
    assert decode("-f", str(path)).exit_code == 1
    result = decode("-f", str(path), "--port", "18805", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json_lines(result)[0]["dst"] == "10.0.0.2:18805"


def test_damaged_capture_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "damaged.pcapng"
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\x0d\x00\x00\x00" + b"\x4d\x3c\x2b\x1a" + bytes(16))
    result = decode("-f", str(path))
    assert result.exit_code == 1
    assert "has invalid length 13" in result.stderr


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (wireshark-common) not installed")
def test_pcapng_written_by_editcap(golden_ser_bytes: bytes, tmp_path: Path) -> None:
    """Wireshark's own pcapng writer (options, name resolution blocks) reads the same."""
    pcap = write_pcap(tmp_path / "n4.pcap", frames(golden_ser_bytes))
    converted = tmp_path / "n4-editcap.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(pcap), str(converted)], check=True, capture_output=True)
    assert converted.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    from_pcap = decode("-f", str(pcap), "-o", "json")
    from_pcapng = decode("-f", str(converted), "-o", "json")
    assert from_pcapng.exit_code == 0, from_pcapng.output
    assert from_pcapng.stdout == from_pcap.stdout


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_frames_and_message_types_agree_with_tshark(golden_ser_bytes: bytes, tmp_path: Path) -> None:
    """Wireshark numbers frames and reassembles IP fragments the same way."""
    segment = udp(8805, 8805, golden_ser_bytes)
    cut = 200
    packets = [
        ethernet(ip_udp("10.0.0.20", "10.0.0.10", 8805, 8805, HEARTBEAT), ETH_IPV4),
        ethernet(ipv4("10.0.0.10", "10.0.0.20", segment[:cut], ident=5, frag=0x2000), ETH_IPV4),
        ethernet(ip_udp("10.0.0.10", "10.0.0.53", 40000, 53, b"\x12\x34\x01\x00"), ETH_IPV4),
        ethernet(ipv4("10.0.0.10", "10.0.0.20", segment[cut:], ident=5, frag=cut // 8), ETH_IPV4),
        ethernet(ip_udp("2001:db8::10", "2001:db8::20", 8805, 8805, HEARTBEAT_RESPONSE), ETH_IPV6),
    ]
    path = write_pcap(tmp_path / "frag.pcapng", packets, pcapng=True)
    ours = decode("-f", str(path), "-o", "json")
    assert ours.exit_code == 0, ours.output
    fields = ["-e", "frame.number", "-e", "pfcp.msg_type", "-e", "pfcp.seqno"]
    mine = [(v["frame"], v["pfcp"]["type"], v["pfcp"]["sequence"]) for v in json_lines(ours)]
    shark = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-Y", "pfcp", "-T", "fields", *fields],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    theirs = [tuple(int(field) for field in line.split("\t")) for line in shark.splitlines()]
    assert mine == theirs == [(1, 1, 7), (4, 50, 1), (5, 2, 7)]


def test_time_stamp_beyond_the_calendar_still_prints(tmp_path: Path) -> None:
    frame = ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, HEARTBEAT), ETH_IPV4)
    path = tmp_path / "far-future.pcapng"
    path.write_bytes(build_pcapng([Interface(1, tsresol=0)], [(0, 2**63, frame)]))  # 2^63 seconds
    result = decode("-f", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Frame 1  9223372036854775808.000000 s  10.0.0.1:8805 -> 10.0.0.2:8805\n")
