"""The data-network servers the traffic of :mod:`edge_sites.sim.traffic` talks to, and the
command line of both (:func:`main`, ``python -m edge_sites.sim.traffic``).

``python -m edge_sites.sim.traffic serve --address A [--udp-port P] [--tcp-port P]`` runs both
inside a data-network namespace until SIGTERM/SIGINT, after one readiness line on stdout
(:func:`~edge_sites.sim.process.announce_ready`); :func:`server_process` starts it that way.

* UDP (``udp-port``): every DATA datagram is counted per (client address, stream id) and echoed
  back unchanged when its ECHO flag is set; a STATS request is answered with that stream's
  count. At most :data:`MAX_STREAMS` streams are remembered (the oldest is forgotten first).
  Reads drain up to 64 datagrams per wake-up (asyncio's datagram transport is far slower:
  ../shared/DATAPLANE.md).
* TCP (``tcp-port``): one request per connection: upload (the client sends N octets, the
  server answers with the count it received) or download (the server sends N octets, then
  closes). N is at most :data:`~edge_sites.sim.traffic.MAX_TCP_BYTES`; a connection idle for
  :data:`IDLE_TIMEOUT` s is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Final

from .process import NetnsProcess, announce_ready
from .traffic import (
    DEFAULT_TCP_PORT,
    DEFAULT_UDP_PORT,
    FLAG_ECHO,
    KIND_DATA,
    KIND_STATS,
    KIND_STATS_REPLY,
    MAX_TCP_BYTES,
    TCP_MAGIC,
    TCP_REPLY,
    TCP_REQUEST,
    UDP_HEADER,
    UDP_MAGIC,
    UDP_STATS,
    PingResult,
    TcpResult,
    UdpResult,
    ping,
    tcp_transfer,
    udp_stream,
)

__all__ = ["MAX_STREAMS", "UdpServer", "main", "run_servers", "server_process", "serve_tcp"]

log = logging.getLogger("edge_sites.sim.traffic")

MAX_STREAMS: Final = 4096
IDLE_TIMEOUT: Final = 10.0
_BATCH: Final = 64
_CHUNK: Final = 64 * 1024


class UdpServer:
    """The UDP sink/echo on one non-blocking socket, driven by ``loop.add_reader``."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        #: (client address, stream id) -> [datagrams, octets]
        self.streams: collections.OrderedDict[tuple[str, int], list[int]] = collections.OrderedDict()

    def on_readable(self) -> None:
        sock = self.sock
        for _ in range(_BATCH):
            try:
                data, peer = sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError:
                continue  # e.g. an ICMP error for an earlier echo: nothing to read from it
            if len(data) < UDP_HEADER.size:
                continue
            magic, kind, flags, _, stream, _ = UDP_HEADER.unpack_from(data)
            if magic != UDP_MAGIC:
                continue
            key = (peer[0], stream)
            if kind == KIND_DATA:
                counts = self.streams.get(key)
                if counts is None:
                    counts = self.streams[key] = [0, 0]
                    if len(self.streams) > MAX_STREAMS:
                        self.streams.popitem(last=False)
                counts[0] += 1
                counts[1] += len(data)
                if flags & FLAG_ECHO:
                    self._send(data, peer)
            elif kind == KIND_STATS:
                packets, octets = self.streams.get(key, (0, 0))
                reply = UDP_HEADER.pack(UDP_MAGIC, KIND_STATS_REPLY, 0, 0, stream, 0) + UDP_STATS.pack(packets, octets)
                self._send(reply, peer)

    def _send(self, data: bytes, peer: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):  # a full buffer drops the echo: the client counts it
            self.sock.sendto(data, peer)


async def serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One transfer per connection (see the module docstring)."""
    try:
        head = await asyncio.wait_for(reader.readexactly(TCP_REQUEST.size), IDLE_TIMEOUT)
        magic, op, length = TCP_REQUEST.unpack(head)
        if magic != TCP_MAGIC or op not in (b"U", b"D") or not 0 < length <= MAX_TCP_BYTES:
            return
        if op == b"U":
            received = 0
            while received < length:
                chunk = await asyncio.wait_for(reader.read(min(_CHUNK, length - received)), IDLE_TIMEOUT)
                if not chunk:
                    break
                received += len(chunk)
            writer.write(TCP_REPLY.pack(received))
        else:
            block = bytes(_CHUNK)
            for offset in range(0, length, _CHUNK):
                writer.write(block[: min(_CHUNK, length - offset)])
                await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT)
        await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT)
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), IDLE_TIMEOUT)


async def _serve(address: str, udp_port: int, tcp_port: int) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((address, udp_port))
    sock.setblocking(False)
    udp = UdpServer(sock)
    loop.add_reader(sock.fileno(), udp.on_readable)
    try:
        server = await asyncio.start_server(serve_tcp, address, tcp_port, reuse_address=True)
        async with server:
            announce_ready({"address": address, "udp_port": udp_port, "tcp_port": tcp_port, "pid": os.getpid()})
            await stopping.wait()
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()


def run_servers(address: str, udp_port: int = DEFAULT_UDP_PORT, tcp_port: int = DEFAULT_TCP_PORT) -> int:
    """Serve until SIGTERM/SIGINT; 0 then, 1 when a socket cannot be opened."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(_serve(address, udp_port, tcp_port))
    except OSError as exc:
        log.error("traffic servers on %s: %s", address, exc)
        return 1
    return 0


def server_process(
    netns: str, address: str, log_path: Path, udp_port: int = DEFAULT_UDP_PORT, tcp_port: int = DEFAULT_TCP_PORT
) -> NetnsProcess:
    """The servers as a (not yet started) process in ``netns``: ``.start()`` waits until they serve."""
    args = ["serve", "--address", address, "--udp-port", str(udp_port), "--tcp-port", str(tcp_port)]
    return NetnsProcess(netns, "edge_sites.sim.traffic", args, log_path=log_path)


# -- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_sites.sim.traffic {serve,ping,udp,tcp} ...``; clients print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m edge_sites.sim.traffic")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the data-network servers until SIGTERM")
    serve.add_argument("--address", required=True)
    serve.add_argument("--udp-port", type=int, default=DEFAULT_UDP_PORT)
    serve.add_argument("--tcp-port", type=int, default=DEFAULT_TCP_PORT)
    for name in ("ping", "udp", "tcp"):
        client = sub.add_parser(name)
        client.add_argument("--source", required=True, help="the UE's address")
        client.add_argument("--destination", required=True, help="the server's address")
    sub.choices["ping"].add_argument("--count", type=int, default=10)
    sub.choices["ping"].add_argument("--interval", type=float, default=0.1)
    udp = sub.choices["udp"]
    udp.add_argument("--port", type=int, default=DEFAULT_UDP_PORT)
    rate = udp.add_mutually_exclusive_group(required=True)
    rate.add_argument("--pps", type=float)
    rate.add_argument("--mbps", type=float)
    udp.add_argument("--duration", type=float, default=1.0)
    udp.add_argument("--size", type=int, default=512)
    udp.add_argument("--no-echo", action="store_true")
    tcp = sub.choices["tcp"]
    tcp.add_argument("--port", type=int, default=DEFAULT_TCP_PORT)
    tcp.add_argument("--bytes", type=int, required=True)
    tcp.add_argument("--direction", choices=("upload", "download"), default="upload")
    tcp.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return run_servers(args.address, args.udp_port, args.tcp_port)
    result: PingResult | UdpResult | TcpResult
    try:
        if args.command == "ping":
            result = ping(args.source, args.destination, count=args.count, interval=args.interval)
        elif args.command == "udp":
            result = udp_stream(args.source, args.destination, args.port, rate_pps=args.pps, rate_mbps=args.mbps,
                                duration=args.duration, size=args.size, echo=not args.no_echo)  # fmt: skip
        else:
            result = tcp_transfer(args.source, args.destination, args.port, nbytes=args.bytes,
                                  direction=args.direction, timeout=args.timeout)  # fmt: skip
    except ValueError as exc:
        print(f"traffic {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the source is no UE's address here
        print(f"traffic {args.command} from {args.source}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    return 0
