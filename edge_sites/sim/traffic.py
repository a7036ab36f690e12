"""Traffic from a UE to a data-network server: ICMP echo, a paced UDP stream, a TCP transfer.

Theory of operation:

* Every measurement binds its socket to the UE's address, so it runs in the **calling thread's
  network namespace**, the gNB's (``run_in_netns(gnb_ns, lambda: ping(ue, dn))``, or
  ``ip netns exec GNB python -m edge_sites.sim.traffic ping ...``, which prints the result as
  one JSON line). The gNB simulator then carries it over N3 through the UPF.
* The servers (:mod:`edge_sites.sim.traffic_server`, ``python -m edge_sites.sim.traffic serve``)
  run in the data-network namespaces: a UDP sink that echoes on request and reports per-stream
  counts, and a TCP sink/source. The wire formats are below; ICMP is answered by the kernel.
* Everything is bounded: counts, rates, sizes and durations have maxima, and every wait has a
  deadline, so a black hole costs at most the stated time. Network failures are results (loss,
  ``complete=False`` with ``error``), never exceptions; bad arguments raise ValueError.
* Results are frozen dataclasses with ``to_dict()`` (JSON-able); sizes are IP packet octets
  (what a UPF's URR and MBR count), rates in Mbit/s are 10^6 bit/s.
"""

from __future__ import annotations

import math
import secrets
import select
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_TCP_PORT",
    "DEFAULT_UDP_PORT",
    "PingResult",
    "TcpResult",
    "UdpResult",
    "percentile",
    "ping",
    "tcp_transfer",
    "udp_stream",
]

DEFAULT_UDP_PORT: Final = 5201
DEFAULT_TCP_PORT: Final = 5202
#: IPv4 + UDP headers: a UDP payload of n octets is an IP packet of n + 28.
UDP_OVERHEAD: Final = 28
MAX_PINGS: Final = 100_000
MAX_DURATION: Final = 600.0
MAX_RATE_PPS: Final = 1_000_000.0
MAX_TCP_BYTES: Final = 1 << 30

# UDP datagram: magic, kind, flags, reserved, stream id, sequence number; then padding.
UDP_MAGIC: Final = b"ECU1"
UDP_HEADER: Final = struct.Struct("!4sBBHQI")
KIND_DATA: Final = 1
KIND_STATS: Final = 2
KIND_STATS_REPLY: Final = 3
FLAG_ECHO: Final = 0x01
#: A STATS_REPLY carries what the server received on the stream: packets, payload octets.
UDP_STATS: Final = struct.Struct("!QQ")
# TCP request: magic, operation ("U" upload to the server, "D" download from it), length.
TCP_MAGIC: Final = b"ECT1"
TCP_REQUEST: Final = struct.Struct("!4sc3xQ")
#: After an upload the server answers with the octets it received.
TCP_REPLY: Final = struct.Struct("!Q")
_CHUNK: Final = 64 * 1024


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in (0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _check(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} {value} is outside [{low}, {high}]")


def _mbps(octets: int, seconds: float) -> float:
    return octets * 8 / seconds / 1e6 if seconds > 0 else 0.0


# -- ICMP echo -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PingResult:
    source: str
    destination: str
    sent: int
    received: int
    rtt_ms: tuple[float, ...]

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["rtt_ms"]
        rtt = self.rtt_ms
        out |= {"loss": self.loss, "rtt_min_ms": min(rtt, default=None), "rtt_max_ms": max(rtt, default=None)}
        return out | {"rtt_p50_ms": percentile(rtt, 50), "rtt_p99_ms": percentile(rtt, 99)}


def _inet_checksum(data: bytes) -> int:
    """RFC 1071."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _echo_request(ident: int, sequence: int, payload: bytes) -> bytes:
    # RFC 792: type 8, code 0, checksum, identifier, sequence number, data.
    header = struct.pack("!BBHHH", 8, 0, 0, ident, sequence)
    return struct.pack("!BBHHH", 8, 0, _inet_checksum(header + payload), ident, sequence) + payload


def ping(
    source: str, destination: str, *, count: int = 10, interval: float = 0.1, timeout: float = 1.0, size: int = 56
) -> PingResult:
    """``count`` ICMP Echo Requests from ``source`` every ``interval`` s; replies are awaited until
    ``timeout`` s after the last request. Needs a raw socket (root or CAP_NET_RAW)."""
    _check("count", count, 1, MAX_PINGS)
    _check("interval", interval, 0.0, 10.0)
    _check("timeout", timeout, 0.01, 30.0)
    _check("size", size, 0, 1400)
    ident = secrets.randbits(16)  # raw sockets see every echo reply: ours carry this identifier
    payload = bytes(i & 0xFF for i in range(size))
    sent_at: dict[int, float] = {}
    rtts: list[float] = []
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.bind((source, 0))
        sock.setblocking(False)
        next_send = time.monotonic()
        last_send = next_send
        sent = 0
        while True:
            now = time.monotonic()
            if sent < count and now >= next_send:
                try:
                    sock.sendto(_echo_request(ident, sent, payload), (destination, 0))
                except OSError:
                    pass  # counted as lost: it was sent as far as we are concerned
                sent_at[sent] = last_send = now
                sent += 1
                next_send += interval
                continue
            if sent == count and (len(rtts) == count or now >= last_send + timeout):
                break
            wake = next_send if sent < count else last_send + timeout
            if select.select([sock], [], [], max(0.0, wake - now))[0]:
                _read_replies(sock, ident, destination, sent_at, rtts)
    return PingResult(source, destination, sent, len(rtts), tuple(rtts))


def _read_replies(sock: socket.socket, ident: int, peer: str, sent_at: dict[int, float], rtts: list[float]) -> None:
    while True:
        try:
            data, (address, _) = sock.recvfrom(65535)
        except BlockingIOError:
            return
        now = time.monotonic()
        start = (data[0] & 0x0F) * 4  # a raw IPv4 socket hands over the IP header too
        if address != peer or len(data) < start + 8:
            continue
        kind, code, _, reply_ident, sequence = struct.unpack_from("!BBHHH", data, start)
        if kind == 0 and code == 0 and reply_ident == ident and sequence in sent_at:
            rtts.append((now - sent_at.pop(sequence)) * 1000)


# -- UDP stream ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UdpResult:
    source: str
    destination: str
    port: int
    sent: int
    #: What the server counted on this stream (None: its STATS_REPLY never came).
    server_received: int | None
    #: Echoes that came back (0 without echo).
    echoed: int
    echo: bool
    duration_s: float
    packet_size: int

    @property
    def loss(self) -> float | None:
        """Uplink loss as the server counted it."""
        if self.server_received is None or not self.sent:
            return None
        return 1 - self.server_received / self.sent

    @property
    def echo_loss(self) -> float | None:
        """Round-trip loss (uplink and downlink) with echo on."""
        return 1 - self.echoed / self.sent if self.echo and self.sent else None

    def to_dict(self) -> dict[str, Any]:
        received = self.server_received or 0
        return asdict(self) | {
            "loss": self.loss,
            "echo_loss": self.echo_loss,
            "offered_pps": self.sent / self.duration_s if self.duration_s else 0.0,
            "offered_mbps": _mbps(self.sent * self.packet_size, self.duration_s),
            "throughput_mbps": _mbps(received * self.packet_size, self.duration_s),
        }


def udp_stream(
    source: str,
    destination: str,
    port: int = DEFAULT_UDP_PORT,
    *,
    rate_pps: float | None = None,
    rate_mbps: float | None = None,
    duration: float = 1.0,
    size: int = 512,
    echo: bool = True,
    timeout: float = 1.0,
) -> UdpResult:
    """Send IP packets of ``size`` octets at ``rate_pps`` (or ``rate_mbps``) for ``duration`` s;
    count echoes for ``timeout`` s more, then ask the server what it received."""
    if (rate_pps is None) == (rate_mbps is None):
        raise ValueError("give exactly one of rate_pps and rate_mbps")
    _check("size", size, UDP_OVERHEAD + UDP_HEADER.size, 1472 + UDP_OVERHEAD)
    pps = rate_pps if rate_pps is not None else (rate_mbps or 0) * 1e6 / 8 / size
    _check("rate", pps, 1.0, MAX_RATE_PPS)
    _check("duration", duration, 0.01, MAX_DURATION)
    _check("timeout", timeout, 0.01, 30.0)
    total = max(1, int(pps * duration))
    stream = secrets.randbits(64)
    padding = bytes(size - UDP_OVERHEAD - UDP_HEADER.size)
    flags = FLAG_ECHO if echo else 0
    echoed = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((source, 0))
        sock.connect((destination, port))
        sock.setblocking(False)
        start = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - start) * pps) + 1)
            while sent < due:
                try:
                    sock.send(UDP_HEADER.pack(UDP_MAGIC, KIND_DATA, flags, 0, stream, sent) + padding)
                except (BlockingIOError, ConnectionRefusedError):
                    pass  # lost on our side: still counted as sent
                sent += 1
            echoed += _count_echoes(sock, stream)
            select.select([sock], [], [], min(0.002, max(0.0, start + (sent / pps) - time.monotonic())))
        # The last packet owns the interval after it: the stream lasts total / pps.
        time.sleep(max(0.0, start + total / pps - time.monotonic()))
        elapsed = time.monotonic() - start
        deadline = time.monotonic() + timeout
        while echo and echoed < sent and time.monotonic() < deadline:
            if select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                echoed += _count_echoes(sock, stream)
        server_received = _stream_stats(sock, stream, timeout)
    return UdpResult(source, destination, port, sent, server_received, echoed, echo, elapsed, size)


def _count_echoes(sock: socket.socket, stream: int) -> int:
    count = 0
    while True:
        try:
            data = sock.recv(65535)
        except (BlockingIOError, ConnectionRefusedError):
            return count
        if len(data) >= UDP_HEADER.size:
            magic, kind, _, _, got_stream, _ = UDP_HEADER.unpack_from(data)
            count += magic == UDP_MAGIC and kind == KIND_DATA and got_stream == stream
    return count  # pragma: no cover - the loop returns


def _stream_stats(sock: socket.socket, stream: int, timeout: float) -> int | None:
    """Ask the server (three tries within ``timeout`` s) how many datagrams of ``stream`` it got."""
    request = UDP_HEADER.pack(UDP_MAGIC, KIND_STATS, 0, 0, stream, 0)
    for _ in range(3):
        try:
            sock.send(request)
        except (BlockingIOError, ConnectionRefusedError):
            pass
        deadline = time.monotonic() + timeout / 3
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            try:
                data = sock.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            if len(data) >= UDP_HEADER.size + UDP_STATS.size:
                magic, kind, _, _, got_stream, _ = UDP_HEADER.unpack_from(data)
                if magic == UDP_MAGIC and kind == KIND_STATS_REPLY and got_stream == stream:
                    return int(UDP_STATS.unpack_from(data, UDP_HEADER.size)[0])
    return None


# -- TCP transfer ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpResult:
    source: str
    destination: str
    port: int
    direction: Literal["upload", "download"]
    requested_bytes: int
    #: Upload: what the server says it received; download: what arrived here.
    transferred_bytes: int
    duration_s: float
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and self.transferred_bytes == self.requested_bytes

    def to_dict(self) -> dict[str, Any]:
        rate = _mbps(self.transferred_bytes, self.duration_s)
        return asdict(self) | {"complete": self.complete, "throughput_mbps": rate}


def tcp_transfer(
    source: str,
    destination: str,
    port: int = DEFAULT_TCP_PORT,
    *,
    nbytes: int,
    direction: Literal["upload", "download"] = "upload",
    timeout: float = 10.0,
) -> TcpResult:
    """Move ``nbytes`` of payload over one TCP connection within ``timeout`` s in all."""
    _check("nbytes", nbytes, 1, MAX_TCP_BYTES)
    _check("timeout", timeout, 0.1, MAX_DURATION)
    if direction not in ("upload", "download"):
        raise ValueError(f"direction {direction!r} is not upload or download")
    deadline = time.monotonic() + timeout
    done = 0
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((source, 0))
        try:
            sock.settimeout(timeout)
            sock.connect((destination, port))
            start = time.monotonic()
            op = b"U" if direction == "upload" else b"D"
            sock.sendall(TCP_REQUEST.pack(TCP_MAGIC, op, nbytes))
            if direction == "upload":
                chunk = bytes(_CHUNK)
                sent = 0
                while sent < nbytes:
                    sock.settimeout(max(0.001, deadline - time.monotonic()))
                    sent += sock.send(memoryview(chunk)[: min(_CHUNK, nbytes - sent)])
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                reply = _recv_exactly(sock, TCP_REPLY.size)
                done = TCP_REPLY.unpack(reply)[0] if reply is not None else 0
                error = None if reply is not None else "the server closed without its count"
            else:
                while data := _recv_some(sock, deadline):
                    done += len(data)
                error = None
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - start
    return TcpResult(source, destination, port, direction, nbytes, done, elapsed, error)


def _recv_some(sock: socket.socket, deadline: float) -> bytes:
    sock.settimeout(max(0.001, deadline - time.monotonic()))
    return sock.recv(_CHUNK)


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        more = sock.recv(size - len(data))
        if not more:
            return None
        data += more
    return data


if __name__ == "__main__":  # python -m edge_sites.sim.traffic {serve,ping,udp,tcp} ...
    from .traffic_server import main

    raise SystemExit(main())
