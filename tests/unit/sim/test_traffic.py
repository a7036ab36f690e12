"""The traffic tools and their servers over loopback (no gNB: what they count and report).

The servers run on 127.0.0.1 in a loop thread of this process; nothing is configured.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from scapy.utils import checksum as scapy_checksum

from edge_sites.sim import traffic
from edge_sites.sim.traffic import PingResult, TcpResult, UdpResult, percentile, ping, tcp_transfer, udp_stream
from edge_sites.sim.traffic_server import UdpServer, main, serve_tcp

LOOPBACK = "127.0.0.1"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) is None


def test_results_report_loss_and_rates() -> None:
    result = PingResult("a", "b", 4, 3, (1.0, 2.0, 4.0)).to_dict()
    assert (result["loss"], result["rtt_p50_ms"], result["rtt_max_ms"]) == (0.25, 2.0, 4.0)
    assert "rtt_ms" not in result
    udp = UdpResult("a", "b", 1, sent=1000, server_received=990, echoed=980, echo=True, duration_s=2.0, packet_size=500)
    assert (round(udp.loss or 0, 6), round(udp.echo_loss or 0, 6)) == (0.01, 0.02)
    assert (udp.to_dict()["offered_mbps"], udp.to_dict()["throughput_mbps"]) == (2.0, 1.98)
    assert UdpResult("a", "b", 1, 10, None, 0, False, 1.0, 100).loss is None
    tcp = TcpResult("a", "b", 1, "upload", 1_000_000, 1_000_000, 0.5)
    assert tcp.complete and tcp.to_dict()["throughput_mbps"] == 16.0
    assert not TcpResult("a", "b", 1, "download", 10, 10, 0.5, error="reset").complete


@pytest.mark.parametrize(
    "call",
    [
        lambda: ping(LOOPBACK, LOOPBACK, count=0),
        lambda: ping(LOOPBACK, LOOPBACK, count=traffic.MAX_PINGS + 1),
        lambda: udp_stream(LOOPBACK, LOOPBACK, 9),  # no rate
        lambda: udp_stream(LOOPBACK, LOOPBACK, 9, rate_pps=10, rate_mbps=1),  # two rates
        lambda: udp_stream(LOOPBACK, LOOPBACK, 9, rate_pps=10, duration=traffic.MAX_DURATION + 1),
        lambda: udp_stream(LOOPBACK, LOOPBACK, 9, rate_pps=10, size=20),
        lambda: tcp_transfer(LOOPBACK, LOOPBACK, 9, nbytes=traffic.MAX_TCP_BYTES + 1),
        lambda: tcp_transfer(LOOPBACK, LOOPBACK, 9, nbytes=1, direction="sideways"),  # type: ignore[arg-type]
    ],
)
def test_unbounded_or_bad_arguments_are_refused(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError):
        call()


def test_echo_requests_carry_a_valid_checksum() -> None:
    packet = traffic._echo_request(0x1234, 7, bytes(range(56)))
    assert packet[:2] == b"\x08\x00" and struct.unpack_from("!HH", packet, 4) == (0x1234, 7)
    # RFC 1071: the sum over a correct message is 0; scapy's checksum is an independent one.
    assert scapy_checksum(packet) == 0


@dataclass
class Servers:
    udp_port: int
    tcp_port: int
    udp: UdpServer


@pytest.fixture
def servers() -> Iterator[Servers]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_sock.bind((LOOPBACK, 0))
    udp_sock.setblocking(False)
    udp = UdpServer(udp_sock)
    loop.call_soon_threadsafe(loop.add_reader, udp_sock.fileno(), udp.on_readable)
    server = asyncio.run_coroutine_threadsafe(asyncio.start_server(serve_tcp, LOOPBACK, 0), loop).result(5)
    tcp_port = server.sockets[0].getsockname()[1]
    yield Servers(udp_sock.getsockname()[1], tcp_port, udp)

    async def shutdown() -> None:
        loop.remove_reader(udp_sock.fileno())
        server.close()
        await _cancel_other_tasks()

    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    udp_sock.close()
    loop.close()


async def _cancel_other_tasks() -> None:
    """Connection handlers still running (the peer's close not yet seen) end before the loop does."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_a_udp_stream_is_counted_by_the_server_and_echoed(servers: Servers) -> None:
    result = udp_stream(LOOPBACK, LOOPBACK, servers.udp_port, rate_pps=2000, duration=0.25, size=200)
    assert (result.sent, result.server_received, result.echoed) == (500, 500, 500)
    assert result.loss == 0.0 and result.echo_loss == 0.0
    (counts,) = servers.udp.streams.values()
    assert counts == [500, 500 * (200 - traffic.UDP_OVERHEAD)]  # UDP payload octets, as received


def test_without_echo_only_the_server_counts(servers: Servers) -> None:
    result = udp_stream(LOOPBACK, LOOPBACK, servers.udp_port, rate_mbps=1.0, duration=0.1, size=1000, echo=False)
    assert result.sent == 12 and result.server_received == 12 and result.echoed == 0  # 1 Mbit/s of 1000 octets
    assert result.echo_loss is None


def test_a_stream_nobody_hears_reports_no_count() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))  # bound, never read: datagrams vanish, nothing answers
        result = udp_stream(LOOPBACK, LOOPBACK, silent.getsockname()[1], rate_pps=100, duration=0.05, timeout=0.3)
    assert result.sent == 5 and result.server_received is None and result.loss is None and result.echoed == 0


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_a_tcp_transfer_moves_exactly_the_bytes_asked_for(servers: Servers, direction: str) -> None:
    result = tcp_transfer(LOOPBACK, LOOPBACK, servers.tcp_port, nbytes=1_000_003, direction=direction)  # type: ignore[arg-type]
    assert result.complete and result.transferred_bytes == 1_000_003 and result.error is None


def test_a_refused_tcp_connection_is_a_result_not_an_exception() -> None:
    with socket.socket() as unused:
        unused.bind((LOOPBACK, 0))
        port = unused.getsockname()[1]  # bound but not listening: connections are refused
        result = tcp_transfer(LOOPBACK, LOOPBACK, port, nbytes=10, timeout=2)
    assert not result.complete and result.error is not None and "Refused" in result.error


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root")
def test_ping_counts_the_kernels_echo_replies() -> None:
    result = ping(LOOPBACK, LOOPBACK, count=3, interval=0.01)
    assert (result.sent, result.received, len(result.rtt_ms)) == (3, 3, 3)


def test_the_command_line_prints_one_json_result(servers: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["udp", "--source", LOOPBACK, "--destination", LOOPBACK, "--port", str(servers.udp_port), "--pps", "400",
            "--duration", "0.05"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["sent"], result["server_received"], result["echoed"]) == (20, 20, 20)
    argv = ["tcp", "--source", LOOPBACK, "--destination", LOOPBACK, "--port", str(servers.tcp_port), "--bytes", "5"]
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["complete"] is True


def test_the_command_line_refuses_bad_arguments_and_foreign_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ping", "--source", LOOPBACK, "--destination", LOOPBACK, "--count", "0"]) == 2
    assert "count 0 is outside" in capsys.readouterr().err
    # 198.18.255.254 is nobody's address in this namespace: binding to it fails, nothing is sent
    assert main(["tcp", "--source", "198.18.255.254", "--destination", LOOPBACK, "--bytes", "1"]) == 1
    assert "assign requested address" in capsys.readouterr().err
