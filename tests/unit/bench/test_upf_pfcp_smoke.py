"""Smoke test of bench/upf_pfcp.py: the agent and CP client processes run tiny levels
to completion and every request is accounted for; no timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pfcp
from bench import upf_pfcp as bench
from user_plane.session import Plan, plan_establishment


def test_command_line_runs_every_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "upf.json"
    assert bench.main(["--levels", "0,30", "--count", "20", "--inflight", "8", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    results = report["results"]
    assert [r["installed"] for r in results] == [0, 30]
    for r in results:
        assert (r["establishments"], r["deletions"], r["bad"], r["timeouts"]) == (20, 20, 0, 0), r
        assert r["causes"] == {"1": 20}
        assert r["rate"] > 0 and r["deletion_rate"] > 0
        assert r["p50_ms"] is not None and r["p50_ms"] <= r["p99_ms"]
    memory = report["memory"]
    assert memory["sessions"] == 30  # the timed sessions were deleted again; the fill stayed
    assert memory["rss_kib_full"] > 0 and memory["traced_bytes_per_session"] is None
    assert report["agent_counters"]["sessions established"] == 30 + 2 * 20
    assert report["agent_counters"]["sessions deleted"] == 2 * 20
    assert report["unsent_datagrams"] == 0
    assert "Forwarder behind a thin Driver adapter" in printed and "open5gs-upfd" in printed
    assert "per session (RSS delta)" in printed and f"results written to {out}" in printed


def test_the_request_has_the_benchmarked_shape() -> None:
    req = bench.session_request(7)
    assert (len(req.create_pdr), len(req.create_far), len(req.create_qer), len(req.create_urr)) == (2, 2, 1, 1)
    assert req.cp_f_seid.seid == 8 and pfcp.decode(pfcp.encode(req)) == req
    teids = iter(range(100, 200))
    plan = plan_establishment(req, 1, lambda chid: next(teids), local_addresses=lambda pdi: (bench.N3, None))
    assert isinstance(plan, Plan), plan  # a valid request: the agent accepts it
    assert len(plan.created_pdrs) == 1
    # each session has its own UE address (a downlink lookup key of the dataplane)
    assert req.create_pdr[1].pdi.ue_ip_address != bench.session_request(8).create_pdr[1].pdi.ue_ip_address


def test_command_line_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--levels", "10,0"], ["--levels", "x"], ["--count", "0"], ["--levels", "0,131000", "--count", "5"]):
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2
