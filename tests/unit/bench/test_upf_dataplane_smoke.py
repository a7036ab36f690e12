"""Smoke test of bench/upf_dataplane.py: a tiny bounded run through real namespaces; it checks
the report's structure and that packets really went through. No timing is asserted.

The pure helpers (packets, sessions, the sendmmsg ring, option parsing) are checked without root.
"""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

import pytest

from bench import upf_dataplane as bench
from tests.harness.netns import list_namespaces, needs_netns
from user_plane import gtpu
from user_plane.session import SessionState

RESULT_FIELDS = {
    "direction",
    "path",
    "size",
    "sessions",
    "window_s",
    "forwarded",
    "pps",
    "gbps",
    "gen_sent",
    "gen_pps",
    "gen_errors",
    "upf_cpu",
    "upf_core_busy",
    "n3_socket_drops",
    "upf_drops",
    "ratio_ceiling",
    "ratio_target",
    "notes",
}


@needs_netns
def test_tiny_run_forwards_packets_and_cleans_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {name for name in list_namespaces() if name.startswith("ecb-")}
    out = tmp_path / "dataplane.json"
    argv = ["--duration", "0.3", "--warmup", "0.1", "--sessions", "1,10", "--sizes", "64,1400", "--json", str(out)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())

    results = report["results"]
    expected: list[tuple[str, str, int, int | None]] = [
        (d, "kernel", s, None) for d in bench.DIRECTIONS for s in (64, 1400)
    ]
    expected += [(d, path, s, n) for path in bench.PATHS for n in (1, 10) for d in bench.DIRECTIONS for s in (64, 1400)]
    assert [(r["direction"], r["path"], r["size"], r["sessions"]) for r in results] == expected
    for r in results:
        assert set(r) == RESULT_FIELDS
        assert r["forwarded"] > 0 and r["pps"] > 0 and r["window_s"] > 0, r
        assert r["gen_sent"] > 0 and r["gen_pps"] > 0, r
        # nothing arrives that was not sent
        assert r["forwarded"] <= r["gen_sent"], r
        if r["path"] != "kernel":
            assert r["ratio_ceiling"] is not None and r["ratio_ceiling"] > 0
            assert r["ratio_target"] == pytest.approx(r["pps"] / bench.TARGET_PPS[r["direction"]])
            assert r["upf_cpu"] is not None
        else:
            assert r["ratio_ceiling"] is None and r["upf_cpu"] is None
        if r["path"] == "python":
            assert r["upf_cpu"] is not None and r["upf_cpu"] > 0  # the Python process forwarded
        if r["path"] == "ebpf":
            assert r["notes"] == []  # the fast path loaded
    settings = report["settings"]
    assert settings["sessions"] == [1, 10] and settings["sizes"] == [64, 1400]
    assert settings["paths"] == ["python", "ebpf"]
    assert {p: set(v) for p, v in settings["install_seconds"].items()} == {"python": {"1", "10"}, "ebpf": {"1", "10"}}
    assert {k: v["sessions"] for k, v in settings["fastpath_fold"].items()} == {"1": 1, "10": 10}
    assert report["target"]["pps"] == bench.TARGET_PPS
    assert report["target"]["measured"] == {}  # 1,000 sessions were not run
    for key in ("python", "kernel", "cpu", "date", "loadavg_start", "loadavg_end"):
        assert key in report["environment"]
    assert "UPF software dataplane benchmark" in printed and "/ceiling" in printed
    assert f"results written to {out}" in printed
    # every namespace the run built is gone
    assert {name for name in list_namespaces() if name.startswith("ecb-")} == before


def test_uplink_packets_are_gpdus_of_the_right_sessions() -> None:
    packets = bench.generator_packets("uplink", "upf", 64, 3)
    assert len(packets) == 3
    for index, datagram in enumerate(packets):
        teid, qfi, offset = gtpu.decode_gpdu(datagram)
        assert (teid, qfi) == (bench.UL_TEID_BASE + index, bench.QFI)
        inner = datagram[offset:]
        assert len(inner) == 64
        assert inner[12:16] == bench.ue_address(index).packed and inner[16:20] == bench.DN.packed
        assert struct.unpack_from("!HH", inner, 20) == (bench.UE_PORT, bench.DN_PORT)
    assert bench.generator_destinations("uplink", "upf", 3) == [(str(bench.N3), 2152)]
    downlink = bench.generator_destinations("downlink", "upf", 3)
    assert downlink == [(str(bench.ue_address(i)), bench.UE_PORT) for i in range(3)]
    # plain UDP payloads: the kernel adds 28 octets of IPv4/UDP to make SIZE
    assert [len(p) for p in bench.generator_packets("downlink", "kernel", 1400, 5)] == [1372]


def test_sessions_are_distinct_and_valid() -> None:
    states = [bench.session_state(i) for i in (0, 9999)]
    assert all(isinstance(s, SessionState) for s in states)
    first, last = states
    assert first.pdrs[1].local_f_teid is not None and last.pdrs[1].local_f_teid is not None
    assert first.pdrs[1].local_f_teid.teid != last.pdrs[1].local_f_teid.teid
    assert first.fars[2].outer_header_creation is not None
    assert first.fars[2].outer_header_creation.teid == bench.DL_TEID_BASE
    assert first.qers[1].qfi == bench.QFI


def test_generator_sends_every_packet_it_counts() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2)
        sender.connect(receiver.getsockname())
        payloads = [b"packet %d" % i for i in range(5)]
        gen = bench.Generator(payloads, [], batch=4)
        sent, elapsed, errors = gen.run(sender, duration=5.0, max_packets=12)
        assert (sent, errors) == (12, 0) and elapsed >= 0
        got = [receiver.recv(100) for _ in range(12)]
        assert got == [payloads[i % 5] for i in range(12)]  # cycled in order, across batch boundaries
    finally:
        receiver.close()
        sender.close()


def test_command_line_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    bad = (["--sizes", "10"], ["--sessions", "0"], ["--sizes", "x"], ["--duration", "0"], ["--path", "dpdk"])
    for argv in bad:
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_addresses_stay_in_the_benchmark_range() -> None:
    from ipaddress import IPv4Network

    benchmark = IPv4Network("198.18.0.0/15")
    for address in (bench.GNB, bench.N3, bench.N6, bench.DN, bench.ue_address(bench.MAX_SESSIONS - 1)):
        assert address in benchmark
