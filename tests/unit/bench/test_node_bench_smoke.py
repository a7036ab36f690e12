"""Smoke test of bench/pfcp_node.py: it runs two processes to completion and
counts what happened; no timing is asserted.

The command line runs a tiny fixed number of transactions per case across two
spawned processes; the other tests drive one case in-process against a server
node on the same event loop (or a socket that never answers) to check the
accounting: right answers, wrong answers, timeouts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

import pfcp
from bench import pfcp_node as bench
from pfcp.aio import PfcpNode
from pfcp.events import Address, RequestReceived
from pfcp.messages import Message

GOLDEN_SER_HEX = "pfcp-vectors/session-establishment-request.hex"
RESULT_FIELDS = {
    "workload",
    "driver",
    "inflight",
    "mode",
    "window_s",
    "completed",
    "tps",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "mean_ms",
    "sent",
    "answered",
    "bad_responses",
    "timeouts",
    "retransmitted",
    "client_cpu",
    "server_cpu",
    "client_us_per_tx",
    "server_us_per_tx",
    "other_cpu",
    "client_sys_share",
    "server_sys_share",
    "client_kernel_drops",
    "server_kernel_drops",
    "client_drops",
    "server_drops",
    "server_handled",
    "client_rcvbuf",
    "notes",
    "all_completed",
}


def _golden_or_missing(shared_dir: Path | None, tmp_path: Path) -> Path:
    if shared_dir is not None and (shared_dir / GOLDEN_SER_HEX).is_file():
        return shared_dir / GOLDEN_SER_HEX
    return tmp_path / "absent.hex"  # the benchmark then builds its own SER


@pytest.fixture
def golden(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    try:
        shared: Path | None = request.getfixturevalue("shared_dir")
    except pytest.skip.Exception:
        shared = None
    return _golden_or_missing(shared, tmp_path)


def test_command_line_runs_every_transaction(golden: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "node.json"
    argv = ["--count", "200", "--inflight", "1,8", "--workload", "heartbeat,ser", "--golden", str(golden)]
    assert bench.main([*argv, "--driver", "api,endpoint", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())

    results = report["results"]
    assert [(r["workload"], r["driver"], r["inflight"]) for r in results] == [
        (w, d, n) for w in ("heartbeat", "ser") for d in ("api", "endpoint") for n in (1, 8)
    ]
    for r in results:
        assert set(r) == RESULT_FIELDS
        assert r["mode"] == "count"
        assert r["sent"] == r["answered"] == r["completed"] == 200, r
        assert (r["bad_responses"], r["timeouts"], r["retransmitted"]) == (0, 0, 0), r
        assert r["all_completed"] is True
        assert r["server_drops"] == {} and r["client_drops"] == {}, r
        assert r["client_kernel_drops"] in (0, None) and r["server_kernel_drops"] in (0, None)
        # the application handler answered each SER exactly once; heartbeats never reach it
        assert r["server_handled"] == (200 if r["workload"] == "ser" else 0)
        assert r["tps"] > 0 and r["window_s"] > 0
        assert r["p50_ms"] is not None and 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["client_rcvbuf"] is not None and r["client_rcvbuf"] > 0

    env = report["environment"]
    for key in ("python", "cpu", "date", "loadavg_start", "loadavg_end", "uvloop_installed", "codec_compiled_modules"):
        assert key in env
    # both processes ran the default asyncio loop, and said so
    assert set(env["event_loop"]) == {"server", "client"}
    assert all("asyncio" in name for name in env["event_loop"].values())
    assert env["event_loop"]["server"] == env["event_loop"]["client"]
    settings = report["settings"]
    assert settings["count"] == 200 and settings["t1_s"] == bench.DEFAULT_T1
    assert settings["server_rcvbuf"] > 0
    assert ("golden vector" in settings["ser"]) is golden.is_file()
    assert report["target"]["measured"] == []  # count mode: no rate to hold against the target

    assert "PFCP node benchmark" in printed and "tx/s" in printed
    assert "uvloop" in printed and "load" in printed and "_UnixSelectorEventLoop" in printed
    rows = [line.split() for line in printed.splitlines()]
    assert sum(row[:2] in (["ser", "api"], ["ser", "endpoint"]) for row in rows) == 4
    assert sum(row[:2] in (["heartbeat", "api"], ["heartbeat", "endpoint"]) for row in rows) == 4

    # the in-process breakdown ran 200 transactions per side and workload; count mode
    # measures no CPU over sockets to compare it with
    assert report["settings"]["breakdown_transactions"] == 200
    breakdown = report["breakdown"]
    assert [(b["workload"], b["side"]) for b in breakdown] == [
        ("heartbeat", "server"),
        ("heartbeat", "client"),
        ("ser", "server"),
        ("ser", "client"),
    ]
    for b in breakdown:
        # codec and sans-I/O costs are timed in separate runs, so on a loaded
        # machine either can come out larger; only their presence is checked
        assert b["codec_us"] > 0 and b["sans_io_us"] > 0
        assert b["logic_us"] == pytest.approx(b["sans_io_us"] - b["codec_us"])
        assert b["measured_us"] is None and b["rest_us"] is None
    assert "Where the CPU goes" in printed
    assert f"results written to {out}" in printed


def test_a_failing_child_is_reported_and_stopped() -> None:
    # T1 = -1 makes the server's RetransmitPolicy raise: the child reports the
    # traceback, and stop() leaves no process behind.
    child = bench._Child("server", bench.server_process, (-1.0, 3, None, None))
    try:
        with pytest.raises(bench.BenchError, match=r"(?s)server process failed.*T1 must be positive"):
            child.expect(bench.START_TIMEOUT)
    finally:
        child.stop()
    assert not child.process.is_alive()
    assert child.process.exitcode not in (0, None)


# --------------------------------------------------------------------------
# One case in-process


class _RejectingServer(bench.Server):
    """Answers every SER with a rejection (a wrong answer for the client)."""

    def answer(self, event: RequestReceived) -> Message | None:
        msg = event.message
        assert isinstance(msg, pfcp.SessionEstablishmentRequest)
        self.handled += 1
        return pfcp.SessionEstablishmentResponse(
            seid=0, node_id=self.node_id, cause=pfcp.Cause(pfcp.CauseValue.RULE_CREATION_MODIFICATION_FAILURE)
        )


async def _with_server(server: bench.Server, spec: bench.CaseSpec) -> bench.CaseResult:
    node = PfcpNode(bench.node_config(bench.SERVER_NODE_ID, 5.0, 3), handler=server.handle)
    server.node = node
    address = await node.start("127.0.0.1", 0)
    try:
        return await bench.run_case(spec, bench.Target(address, os.getpid()), bench.built_ser())
    finally:
        node.close()


@pytest.mark.parametrize("driver", bench.DRIVERS)
@pytest.mark.parametrize("handler", ["sync", "async"])
def test_right_answers_are_counted(driver: str, handler: str) -> None:
    server = bench.Server()
    server.handler_mode = handler
    spec = bench.CaseSpec("ser", 5, driver, count=37)
    r = asyncio.run(_with_server(server, spec))
    assert (r.sent, r.answered, r.completed, r.bad_responses, r.timeouts) == (37, 37, 37, 0, 0)
    assert r.all_completed
    assert server.handled == 37
    assert len([x for x in (r.p50_ms, r.p99_ms, r.max_ms, r.mean_ms) if x is not None]) == 4


@pytest.mark.parametrize("driver", bench.DRIVERS)
def test_wrong_answers_are_counted(driver: str) -> None:
    server = _RejectingServer()
    r = asyncio.run(_with_server(server, bench.CaseSpec("ser", 4, driver, count=20)))
    assert (r.sent, r.answered, r.bad_responses, r.timeouts) == (20, 20, 20, 0)
    assert not r.all_completed
    assert server.handled == 20


@pytest.mark.parametrize("driver", bench.DRIVERS)
def test_duration_mode_counts_only_the_window(driver: str) -> None:
    spec = bench.CaseSpec("heartbeat", 3, driver, duration=0.3, warmup=0.1)
    r = asyncio.run(_with_server(bench.Server(), spec))
    assert r.mode == "duration" and r.window_s == 0.3
    assert r.completed > 0 and r.tps == r.completed / 0.3
    assert r.completed < r.answered  # the warm-up's transactions are not in the window
    assert r.sent == r.answered and r.all_completed  # the outstanding ones were waited for
    assert r.client_cpu is not None and r.client_cpu > 0
    assert r.server_cpu is not None  # the in-process "server" is this process
    assert r.client_us_per_tx is not None and r.client_us_per_tx > 0
    assert r.other_cpu is not None and r.other_cpu >= 0
    assert r.server_us_per_tx is not None


@pytest.fixture
def silent_peer() -> Iterator[Address]:
    """A bound UDP socket that never reads: every request to it times out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        host, port = sock.getsockname()
        yield (host, port)
    finally:
        sock.close()


@pytest.mark.parametrize("driver", bench.DRIVERS)
def test_timeouts_are_counted(driver: str, silent_peer: Address) -> None:
    target = bench.Target(silent_peer, None, t1=0.05, n1=1)
    spec = bench.CaseSpec("heartbeat", 3, driver, count=6)
    r = asyncio.run(bench.run_case(spec, target, bench.built_ser()))
    assert (r.sent, r.answered, r.completed, r.timeouts) == (6, 0, 0, 6)
    assert not r.all_completed and r.p50_ms is None
    # each request went out twice (N1 = 1) and the silent socket kept them all
    assert bench.udp_drops(silent_peer) == 0


# --------------------------------------------------------------------------
# Helpers


def test_percentile_is_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]
    assert bench.percentile(values, 0.5) == 50.0
    assert bench.percentile(values, 0.99) == 99.0
    assert bench.percentile(values, 1.0) == 100.0
    assert bench.percentile([7.0], 0.99) == 7.0
    assert bench.percentile([], 0.5) is None


def test_parse_udp_drops_finds_the_socket() -> None:
    table = (
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref "
        "pointer drops\n"
        "  101: 0100007F:1F95 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 "
        "0000000000000000 17\n"
        "  102: 0A00007F:1F95 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 "
        "0000000000000000 5\n"
    )
    assert bench.parse_udp_drops(table, "127.0.0.1", 8085) == 17
    assert bench.parse_udp_drops(table, "127.0.0.10", 8085) == 5
    assert bench.parse_udp_drops(table, "127.0.0.1", 8805) is None


def test_udp_drops_counts_datagrams_lost_to_a_full_buffer() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel's minimum is about this
        receiver.bind(("127.0.0.1", 0))
        host, port = receiver.getsockname()
        assert bench.udp_drops((host, port)) == 0
        for _ in range(200):
            sender.sendto(b"x" * 500, (host, port))
        drops = bench.udp_drops((host, port))
        assert drops is not None and 0 < drops < 200
    finally:
        receiver.close()
        sender.close()


def test_process_cpu_seconds_reads_proc() -> None:
    if not os.path.exists(f"/proc/{os.getpid()}/stat"):
        pytest.skip("no /proc")
    sum(i * i for i in range(300_000))  # burn a little CPU
    seconds = bench.process_cpu_seconds(os.getpid())
    assert seconds is not None and seconds > 0
    assert bench.process_cpu_seconds(2**22 + 12345) is None  # beyond pid_max: no such process


def test_ser_requests_get_a_new_cp_seid_and_answers_are_checked() -> None:
    template = bench.built_ser()
    factory = bench.MessageFactory("ser", template)
    first, second = factory.make(), factory.make()
    assert isinstance(first, pfcp.SessionEstablishmentRequest) and isinstance(second, pfcp.SessionEstablishmentRequest)
    assert first.cp_f_seid == pfcp.FSEID(seid=1, ipv4=bench.CLIENT_NODE_ID)
    assert second.cp_f_seid == pfcp.FSEID(seid=2, ipv4=bench.CLIENT_NODE_ID)
    assert dataclasses.replace(second, cp_f_seid=template.cp_f_seid) == template  # nothing else changed

    server = bench.Server()
    event = RequestReceived(("127.0.0.1", 9), second)
    right = server.answer(event)
    assert isinstance(right, pfcp.SessionEstablishmentResponse)
    assert right.seid == 2 and right.up_f_seid == pfcp.FSEID(seid=1, ipv4=bench.SERVER_NODE_ID)
    assert factory.check(second, right)
    assert not factory.check(first, right)  # the SEID is the other session's
    rejected = dataclasses.replace(right, cause=pfcp.Cause(pfcp.CauseValue.REQUEST_REJECTED))
    assert not factory.check(second, rejected)
    assert not factory.check(second, pfcp.HeartbeatResponse(recovery_time_stamp=pfcp.RecoveryTimeStamp(1)))

    beats = bench.MessageFactory("heartbeat", template)
    beat = beats.make()
    assert isinstance(beat, pfcp.HeartbeatRequest)
    assert beats.check(beat, pfcp.HeartbeatResponse(recovery_time_stamp=pfcp.RecoveryTimeStamp(1)))
    assert not beats.check(beat, right)
    with pytest.raises(ValueError, match="unknown workload"):
        bench.MessageFactory("echo", template)


def test_load_ser_prefers_the_golden_vector(golden: Path, tmp_path: Path) -> None:
    msg, source = bench.load_ser(tmp_path / "absent.hex")
    assert msg == bench.built_ser() and source.startswith("built here")
    assert pfcp.decode(pfcp.encode(msg)) == msg
    if golden.is_file():
        msg, source = bench.load_ser(golden)
        assert pfcp.encode(msg) == bytes.fromhex(golden.read_text().strip())
        assert source.startswith("golden vector")
    bad = tmp_path / "hb.hex"
    bad.write_text(pfcp.encode(bench.heartbeat_request()).hex())
    with pytest.raises(bench.BenchError, match="not a Session Establishment Request"):
        bench.load_ser(bad)


def test_command_line_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--inflight", "0"], ["--workload", "echo"], ["--driver", "raw"], ["--count", "0"]):
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2
    assert "not one of" in capsys.readouterr().err


def test_node_id_constants_are_loopback() -> None:
    # the benchmark must never address anything but loopback
    assert bench.HOST == "127.0.0.1"
    assert IPv4Address(bench.HOST).is_loopback
