"""Smoke test of bench/pfcp_codec.py: it runs, and what it times is real work.

No timing is asserted. The tests check that the benchmark's messages are the
intended ones, that every implementation's encode/round-trip output decodes
again to the same message, that the scapy and pycrate "encode" really rebuild
the bytes (lengths included) instead of replaying what was parsed, and that the
command line writes a complete report.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

import pfcp
from bench import pfcp_codec as bench

GOLDEN_SER_HEX = "pfcp-vectors/session-establishment-request.hex"


def _load(name: str) -> bench.Codec:
    if name == "scapy":
        pytest.importorskip("scapy.contrib.pfcp", reason="scapy is not installed")
    elif name == "pycrate":
        pytest.importorskip("pycrate_mobile.TS29244_PFCP", reason="pycrate is not installed")
    codecs, notes = bench.load_codecs([name])
    assert notes == []
    (codec,) = codecs
    return codec


@pytest.fixture(scope="module")
def golden_path(shared_dir: Path) -> Path:
    path = shared_dir / GOLDEN_SER_HEX
    if not path.is_file():
        pytest.skip(f"golden vector not found at {path.resolve()}")
    return path


@pytest.fixture(scope="module")
def cases(golden_path: Path) -> list[bench.Case]:
    return bench.build_cases(golden_path)


def test_messages_are_the_intended_ones(cases: list[bench.Case], golden_ser_bytes: bytes) -> None:
    hb, ser, smr = cases
    assert [c.name for c in cases] == [
        "heartbeat-request",
        "session-establishment-request",
        "session-modification-request",
    ]
    assert pfcp.decode(hb.data) == pfcp.HeartbeatRequest(
        sequence=7, recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_000)
    )
    assert len(hb.data) == 16
    assert ser.data == golden_ser_bytes
    assert len(ser.data) == 370

    msg = pfcp.decode(smr.data)
    assert isinstance(msg, pfcp.SessionModificationRequest)
    assert msg == bench.session_modification_request()
    assert msg.seid == 0x1122334455667788
    assert len(msg.update_pdr) == bench.SMR_PDRS == 8
    for i, pdr in enumerate(msg.update_pdr, start=1):
        assert pdr.pdr_id == pfcp.PDRID(i)
        assert pdr.precedence == pfcp.Precedence(100 + i)
        assert pdr.pdi is not None
        assert pdr.pdi.source_interface.value is pfcp.SourceInterfaceValue.ACCESS
        assert pdr.pdi.local_f_teid == pfcp.FTEID(teid=0x10000 + i, ipv4=IPv4Address("10.0.0.2"))
        assert pdr.pdi.network_instance == pfcp.NetworkInstance("internet")
        assert pdr.pdi.ue_ip_address == (pfcp.UEIPAddress(ipv4=IPv4Address(f"10.45.0.{i}")),)
        assert (pdr.far_id, pdr.urr_id, pdr.qer_id) == (pfcp.FARID(i), (pfcp.URRID(i),), (pfcp.QERID(i),))
    # 16-octet header, then 8 Update PDRs of 4 + 82 octets: PDR ID 6, Precedence 8,
    # PDI 4 + 40 (Source Interface 5, F-TEID 13, Network Instance 13, UE IP 9), 3 x 8 for the IDs
    assert len(smr.data) == 16 + 8 * 86


def test_missing_golden_vector_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.hex"
    with pytest.raises(bench.BenchError, match="golden vector not found"):
        bench.build_cases(missing)
    assert bench.main(["--quick", "--codec", "ours", "--golden", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


@pytest.mark.parametrize("name", bench.CODEC_NAMES)
def test_each_codec_output_decodes_again(name: str, cases: list[bench.Case]) -> None:
    codec = _load(name)
    for case in cases:
        reference = pfcp.decode(case.data)
        encoded = codec.encode(codec.prepare(case.data))
        round_tripped = codec.roundtrip(case.data)
        for out in (encoded, round_tripped):
            codec.redecode(out)  # the library itself reads its output completely
            assert pfcp.decode(out) == reference
            assert out == case.data
        codec.decode(case.data)
        check = bench.check_codec(case, codec)
        assert check.encode_identical and check.roundtrip_identical
        assert check.notes == ()


@pytest.mark.parametrize("name", bench.CODEC_NAMES)
@pytest.mark.parametrize("op", bench.OPERATIONS)
def test_measure_runs_the_requested_loop(name: str, op: str, cases: list[bench.Case]) -> None:
    codec = _load(name)
    m = bench.measure(cases[0], codec, op, repeats=2, iterations=3)
    assert (m.message, m.codec, m.op, m.size, m.iterations) == ("heartbeat-request", name, op, 16, 3)
    assert len(m.runs) == 2


def test_measure_rejects_an_unknown_operation(cases: list[bench.Case]) -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        bench.measure(cases[0], bench.ours_codec(), "transcode", iterations=1)


def test_calibrate_grows_the_loop_until_it_lasts_min_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(bench, "_clock", lambda: now[0])
    sizes: list[int] = []

    def one_millisecond(_: object) -> None:
        now[0] += 0.001

    real_time_calls = bench.time_calls

    def recording(fn: Any, arg: object, iterations: int) -> float:
        sizes.append(iterations)
        return real_time_calls(fn, arg, iterations)

    monkeypatch.setattr(bench, "time_calls", recording)
    # 1 call: 1 ms < 10.5 ms, so aim 20% past the target: ceil(10.5 * 1.2) = 13 calls, 13 ms
    assert bench.calibrate(one_millisecond, None, 0.0105) == 13
    assert sizes == [1, 13]
    assert bench.time_calls(one_millisecond, None, 7) == pytest.approx(0.007)


def test_scapy_encode_rebuilds_lengths_instead_of_replaying_input(cases: list[bench.Case]) -> None:
    scapy_pfcp: Any = pytest.importorskip("scapy.contrib.pfcp", reason="scapy is not installed")
    data = cases[1].data
    pkt = scapy_pfcp.PFCP(data)
    assert pkt.raw_packet_cache is not None  # scapy keeps the parsed octets
    pkt.length = 999  # a changed field invalidates that layer's cache ...
    create_pdr = pkt.payload.IE_list[2]
    create_pdr.IE_list[0].id = 0x4142
    create_pdr.clear_cache()
    stale = bytes(pkt)
    # ... but the dissected lengths are kept: the header says 999
    assert stale[2:4] == (999).to_bytes(2, "big")
    bench.scapy_unfreeze(pkt)
    rebuilt = bytes(pkt)
    assert rebuilt[2:4] == (len(data) - 4).to_bytes(2, "big")
    assert rebuilt != data and len(rebuilt) == len(data)
    decoded = pfcp.decode(rebuilt)
    assert isinstance(decoded, pfcp.SessionEstablishmentRequest)
    assert decoded.create_pdr[0].pdr_id == pfcp.PDRID(0x4142)
    # the prepared object of the benchmark carries no cache and no length anywhere
    prepared = _load("scapy").prepare(data)
    assert prepared.raw_packet_cache is None and prepared.length is None
    assert prepared.payload.IE_list[2].length is None
    assert prepared.payload.IE_list[2].IE_list[2].IE_list[1].length is None  # F-TEID in the PDI
    assert bytes(prepared) == data


def test_pycrate_encode_recomputes_lengths(cases: list[bench.Case]) -> None:
    _load("pycrate")
    from pycrate_mobile.TS29244_PFCP import parse_PFCP

    data = cases[1].data
    msg, err = parse_PFCP(data)
    assert err == 0
    msg["Hdr"]["Len"].set_val(999)
    assert msg.to_bytes()[2:4] == (999).to_bytes(2, "big")  # parsed lengths are explicit values
    msg.reautomate()
    assert msg.to_bytes() == data
    prepared = _load("pycrate").prepare(data)
    assert prepared["Hdr"]["Len"]._val is None  # automatic: computed on every to_bytes()


def test_incomplete_peer_decoding_is_reported() -> None:
    # A Source IP Address without mask (MPL=0) is beyond scapy's Rel-15 layer
    # (IE_NotImplemented) and pycrate keeps it as raw bytes: both must show up.
    data = pfcp.encode(
        pfcp.HeartbeatRequest(
            sequence=1,
            recovery_time_stamp=pfcp.RecoveryTimeStamp(1),
            source_ip_address=pfcp.SourceIPAddress(ipv4=IPv4Address("192.0.2.1")),
        )
    )
    case = bench.Case("hb-with-source-ip", data, "test")
    for name, fragment in (("scapy", "IE_NotImplemented"), ("pycrate", "raw bytes for IE types [192]")):
        codec = _load(name)
        with pytest.raises(bench.BenchError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
            codec.redecode(data)
        notes = bench.check_codec(case, codec).notes
        assert any(fragment in note for note in notes), notes


def test_command_line_writes_a_complete_report(
    golden_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    argv = ["--min-time", "0.0005", "--repeats", "1", "--golden", str(golden_path), "--json", str(out)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    codecs = list(result["settings"]["codecs"])
    assert codecs[0] == "ours"
    assert set(codecs) <= set(bench.CODEC_NAMES)
    assert len(result["results"]) == 3 * len(codecs) * 3
    assert {(r["message"], r["codec"], r["op"]) for r in result["results"]} == {
        (m, c, op) for m in result["settings"]["messages"] for c in codecs for op in bench.OPERATIONS
    }
    assert all(r["iterations"] >= 1 and len(r["runs_s"]) == 1 for r in result["results"])
    assert len(result["ratios_ours_over_peer"]) == 3 * (len(codecs) - 1) * 3
    assert all(check["encode_identical"] and check["roundtrip_identical"] for check in result["checks"])
    ser_roundtrip = next(
        r["msgs_per_s"]
        for r in result["results"]
        if (r["message"], r["codec"], r["op"]) == ("session-establishment-request", "ours", "roundtrip")
    )
    assert result["target"]["measured"] == ser_roundtrip
    assert result["target"]["met"] is (ser_roundtrip >= bench.TARGET_SER_ROUNDTRIPS)
    assert "golden SER round trips/s" in printed
    for key in ("python", "cpu", "date", "loadavg_start", "loadavg_end"):
        assert key in result["environment"]
    assert "session-establishment-request (370 B)" in printed
    assert "roundtrip" in printed and f"results written to {out}" in printed
    if "scapy" in codecs:
        assert "ours/scapy" in printed
