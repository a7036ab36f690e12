"""Smoke test of bench/forwarder.py: tiny runs through the pure forwarding engine, the
report's structure, and that every packet sent really was forwarded. No timing is asserted."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import pfcp
from bench import forwarder as bench
from user_plane import gtpu
from user_plane.session import SessionState

RESULT_FIELDS = {"direction", "packets_per_run", "runs", "sent", "forwarded", "urr_packets", "pps", "us_per_packet"}


def test_command_line_forwards_every_packet_in_both_directions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "forwarder.json"
    assert bench.main(["--packets", "300", "--repeat", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())

    assert report["settings"]["engine"] == bench.ENGINE
    assert (report["settings"]["packets_per_run"], report["settings"]["runs"]) == (300, 2)
    results = report["results"]
    assert [r["direction"] for r in results] == ["uplink", "downlink"]
    for r in results:
        assert set(r) == RESULT_FIELDS
        # 2 runs of 300: the engine returned each packet for forwarding and the URR counted it
        assert (r["sent"], r["forwarded"], r["urr_packets"]) == (600, 600, 600), r
        assert r["pps"] > 0 and r["us_per_packet"] > 0
    assert report["counters"] == {} and report["problems"] == []
    assert "per direction (the pure engine without sockets)" in printed and "no sockets, no TUN" in printed
    assert "PROBLEM" not in printed and f"results written to {out}" in printed


def test_quick_run_prints_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("uplink", "downlink"))]
    assert [(row[0], row[3], row[4]) for row in rows] == [
        ("uplink", str(bench.QUICK_PACKETS), str(bench.QUICK_PACKETS)),
        ("downlink", str(bench.QUICK_PACKETS), str(bench.QUICK_PACKETS)),
    ]


def test_a_run_that_drops_packets_is_reported_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = bench.session

    def dropping_downlink() -> SessionState:
        state = original()
        far = dataclasses.replace(state.fars[2], apply_action=pfcp.ApplyActionFlags.DROP)
        return dataclasses.replace(state, fars={**state.fars, 2: far})

    monkeypatch.setattr(bench, "session", dropping_downlink)
    report = bench.run(50, 1)
    uplink, downlink = report["results"]
    assert (uplink["forwarded"], uplink["urr_packets"]) == (50, 50)
    assert (downlink["sent"], downlink["forwarded"], downlink["urr_packets"]) == (50, 0, 0)
    assert report["counters"] == {"drop_far": 51}  # the 50 timed and the sample packet
    assert len(report["problems"]) == 3, report["problems"]
    assert bench.main(["--packets", "10", "--repeat", "1"]) == 1
    assert "PROBLEM: downlink: 0 of 10 forwarded" in capsys.readouterr().out


def test_the_benchmarked_packets_are_the_documented_ones() -> None:
    inner = bench.ipv4_udp(bench.UE, bench.DN, bench.PACKET_SIZE)
    assert len(inner) == bench.PACKET_SIZE and inner[0] == 0x45 and inner[9] == 17
    gpdu = gtpu.encode_gpdu_header(bench.UL_TEID, len(inner), bench.QFI, pdu_type_dl=False) + inner
    assert gtpu.decode_gpdu(gpdu) == (bench.UL_TEID, bench.QFI, 16)  # a UL PDU Session Container
    state = bench.session()
    assert state.qers[1].mbr_dl == 10_000_000  # kbit/s: far above the simulated 800 Mbit/s


def test_command_line_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--packets", "0"], ["--repeat", "0"], ["--packets", "x"]):
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2
    assert "--packets and --repeat must be at least 1" in capsys.readouterr().err
