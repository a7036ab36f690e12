"""Stored message vectors, tests/data/pfcp/<name>.bin + <name>.json (os-ken
packet_data style), checked both ways byte for byte, and validated by an
independent PFCP implementation (Wireshark's dissector, through tshark).

The files are written by tests/data/pfcp/make_vectors.py from typed
constructors; regenerate them with ``python tests/data/pfcp/make_vectors.py``.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import pfcp
from tests.data.pfcp.make_vectors import HERE, VECTORS, dumps, golden_bytes, stored_vectors, to_jsonable

NAMES = sorted(VECTORS)


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def _bin(name: str) -> bytes:
    return (HERE / f"{name}.bin").read_bytes()


def test_every_file_has_a_builder_and_every_builder_a_file() -> None:
    assert set(stored_vectors()) == set(VECTORS)
    assert {p.stem for p in HERE.glob("*.json")} == set(VECTORS)


def test_every_message_type_has_a_vector() -> None:
    covered = {pfcp.decode(data).message_type for data in stored_vectors().values()}
    missing = {pfcp.MessageType(t).name for t in pfcp.MESSAGE_CLASSES} - {pfcp.MessageType(t).name for t in covered}
    assert not missing


def test_encode_of_the_builder_is_the_bin(name: str) -> None:
    assert pfcp.encode(VECTORS[name]()) == _bin(name)


def test_decode_of_the_bin_is_the_json(name: str) -> None:
    stored = json.loads((HERE / f"{name}.json").read_text())
    decoded = pfcp.decode(_bin(name))
    assert to_jsonable(decoded) == stored
    assert (HERE / f"{name}.json").read_text() == dumps(decoded)


def test_decode_of_the_bin_is_the_built_message(name: str) -> None:
    data = _bin(name)
    built = VECTORS[name]()
    decoded = pfcp.decode(data)
    assert type(decoded) is type(built)
    assert decoded == built
    assert pfcp.encode(decoded) == data
    assert pfcp.decode_all(data) == [built]


def test_json_view_distinguishes_values() -> None:
    # The json is a real view of the values: two different vectors differ, and a
    # changed field shows.
    views = {name: json.dumps(to_jsonable(pfcp.decode(_bin(name)))) for name in NAMES}
    assert len(set(views.values())) == len(views)
    hb = pfcp.decode(_bin("heartbeat-request"))
    assert isinstance(hb, pfcp.HeartbeatRequest)
    view = to_jsonable(hb)
    assert view["recovery_time_stamp"] == {"ie": "RecoveryTimeStamp", "type": 96, "value": hb.recovery_time_stamp.value}
    assert view["source_ip_address"]["ipv4"] == "192.0.2.1"


# --------------------------------------------------------------------------
# Wireshark as an independent oracle

#: Malformed packets, and expert infos of severity warning (0x00600000) or error.
_PROBLEMS = "_ws.malformed || _ws.expert.severity >= 6291456"


def _checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f">{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def udp_frame(payload: bytes, port: int = pfcp.PFCP_PORT) -> bytes:
    """Ethernet + IPv4 + UDP (checksum 0: none) to and from the PFCP port."""
    udp = struct.pack(">HHHH", port, port, 8 + len(payload), 0) + payload
    ip = bytearray(
        struct.pack(
            ">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, b"\xc0\x00\x02\x01", b"\xc0\x00\x02\x02"
        )
    )
    struct.pack_into(">H", ip, 10, _checksum(bytes(ip)))
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + bytes(ip) + udp


def write_pcap(path: Path, datagrams: list[bytes]) -> None:
    """A classic libpcap file (LINKTYPE_ETHERNET), one frame per datagram."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, datagram in enumerate(datagrams):
        frame = udp_frame(datagram)
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))


def _tshark(*args: str) -> list[list[str]]:
    tshark = shutil.which("tshark")
    assert tshark is not None
    result = subprocess.run([tshark, *args], capture_output=True, text=True, timeout=120, check=True)
    return [line.split("\t") for line in result.stdout.splitlines() if line]


needs_tshark: Callable[[Callable[..., None]], Callable[..., None]] = pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark (Wireshark) is not installed"
)


@pytest.fixture(scope="module")
def corpus_pcap(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, bytes]]]:
    corpus = [(name, _bin(name)) for name in NAMES]
    golden = golden_bytes()
    if golden is not None:
        corpus.append(("golden session-establishment-request", golden))
    path = tmp_path_factory.mktemp("pfcp") / "vectors.pcap"
    write_pcap(path, [data for _, data in corpus])
    return path, corpus


@pytest.mark.interop
@needs_tshark
def test_tshark_finds_no_malformed_packet_or_warning(corpus_pcap: tuple[Path, list[tuple[str, bytes]]]) -> None:
    path, corpus = corpus_pcap
    problems = _tshark(
        "-r", str(path), "-Y", _PROBLEMS, "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message"
    )
    named = [(corpus[int(row[0]) - 1][0], row[1:]) for row in problems]
    assert named == []


@pytest.mark.interop
@needs_tshark
def test_tshark_reads_the_same_headers(corpus_pcap: tuple[Path, list[tuple[str, bytes]]]) -> None:
    path, corpus = corpus_pcap
    rows = _tshark("-r", str(path), "-T", "fields", "-e", "pfcp.msg_type", "-e", "pfcp.seqno", "-e", "pfcp.seid")
    assert len(rows) == len(corpus)
    for (name, data), row in zip(corpus, rows, strict=True):
        msg = pfcp.decode(data)
        seen = (int(row[0]), int(row[1]), int(row[2].split(",")[0], 16) if len(row) > 2 and row[2] else None)
        assert seen == (msg.message_type, msg.sequence, msg.seid), name


@pytest.mark.interop
@needs_tshark
def test_tshark_flags_a_broken_vector(tmp_path: Path) -> None:
    # The oracle can fail: the same check on a damaged message reports it.
    data = bytearray(_bin("heartbeat-request"))
    struct.pack_into(">H", data, 10, 200)  # Recovery Time Stamp length runs past the message
    path = tmp_path / "broken.pcap"
    write_pcap(path, [bytes(data)])
    assert _tshark("-r", str(path), "-Y", _PROBLEMS, "-T", "fields", "-e", "frame.number") == [["1"]]
