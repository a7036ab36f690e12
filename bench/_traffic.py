"""Traffic of bench/upf_dataplane.py: the sendmmsg(2) generator, and what counts what arrived.

* :class:`Generator`: a prebuilt ``mmsghdr`` ring sent with ``sendmmsg(2)`` through
  ctypes, :func:`generator_main` the child process that runs it inside a namespace.
* Counting: the receiving veth's ``rx_packets`` (``/proc/net/dev`` of a namespace),
  the UPF's N3 socket drops (``Udp RcvbufErrors``), CPU time of a process and of a
  core; :func:`sinks` binds never-read sockets so nothing bounces back as ICMP.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, Final

from bench._sessions import DN, DN_PORT, GNB, BenchError, generator_destinations, generator_packets
from user_plane import gtpu

GEN_BATCH: Final = 256


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _sockaddr_in(host: str, port: int) -> bytes:
    return struct.pack("=H2s4s8x", socket.AF_INET, port.to_bytes(2, "big"), IPv4Address(host).packed)


@dataclass
class Generator:
    """Prebuilt ``mmsghdr`` ring: any window of ``batch`` entries from an offset below
    ``len(payloads)`` is contiguous, so each sendmmsg call is one pointer and a count."""

    payloads: list[bytes]
    destinations: list[tuple[str, int]]
    batch: int = GEN_BATCH
    _keep: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.payloads)
        buffers = [ctypes.create_string_buffer(p, len(p)) for p in self.payloads]
        iovs = (_Iovec * n)()
        for i, buf in enumerate(buffers):
            iovs[i].iov_base = ctypes.addressof(buf)
            iovs[i].iov_len = len(self.payloads[i])
        # No destinations: the socket is connected and msg_name stays NULL.
        names = [ctypes.create_string_buffer(_sockaddr_in(*d), 16) for d in self.destinations]
        per_packet_name = bool(names)
        if per_packet_name and len(names) != n:
            raise ValueError("one destination per payload, or none (a connected socket)")
        self.msgs = (_Mmsghdr * (n + self.batch))()
        iov_size = ctypes.sizeof(_Iovec)
        for j in range(n + self.batch):
            i = j % n
            hdr = self.msgs[j].msg_hdr
            hdr.msg_iov = ctypes.addressof(iovs) + i * iov_size
            hdr.msg_iovlen = 1
            if per_packet_name:
                hdr.msg_name = ctypes.addressof(names[i])
                hdr.msg_namelen = 16
        self._keep = [buffers, iovs, names]
        self.n = n
        self.base = ctypes.addressof(self.msgs)
        self.stride = ctypes.sizeof(_Mmsghdr)

    def run(self, sock: socket.socket, duration: float, max_packets: int) -> tuple[int, float, int]:
        """Send until ``duration`` seconds or ``max_packets``: (sent, elapsed seconds, send errors)."""
        libc = ctypes.CDLL(None, use_errno=True)
        sendmmsg = libc.sendmmsg
        sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
        sendmmsg.restype = ctypes.c_int
        fd, base, stride, n, batch = sock.fileno(), self.base, self.stride, self.n, self.batch
        sent = errors = calls = offset = 0
        start = time.monotonic()
        deadline = start + duration
        while sent < max_packets:
            r = sendmmsg(fd, base + offset * stride, min(batch, max_packets - sent), 0)
            if r < 0:
                err = ctypes.get_errno()
                if err not in (errno.ENOBUFS, errno.EAGAIN, errno.ECONNREFUSED, errno.EINTR):
                    raise OSError(err, os.strerror(err))
                errors += 1
            else:
                sent += r
                offset = (offset + r) % n
            calls += 1
            if not calls & 15 and time.monotonic() >= deadline:
                break
        return sent, time.monotonic() - start, errors


def generator_main(args: argparse.Namespace) -> int:
    """Child: runs inside the sending namespace (``ip netns exec``)."""
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    payloads = generator_packets(args.direction, args.path, args.size, args.sessions)
    destinations = generator_destinations(args.direction, args.path, args.sessions)
    source = GNB if (args.direction == "uplink") else DN
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((str(source), 0))
    if len(destinations) == 1:
        sock.connect(destinations[0])
        destinations = []
    gen = Generator(payloads, destinations)
    _emit({"ready": True})
    sent, elapsed, errors = gen.run(sock, args.seconds, args.max_packets)
    _emit({"sent": sent, "elapsed": elapsed, "errors": errors})
    return 0


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def read_netns_file(ns: str, path: str) -> str:
    from tests.harness.netns import run_in_netns

    def read() -> str:
        # /proc/thread-self/net: the helper thread's namespace (/proc/self/net is the main thread's)
        with open(path.replace("/proc/net/", "/proc/thread-self/net/")) as f:
            return f.read()

    return run_in_netns(ns, read)


def rx_packets(ns: str, ifname: str) -> int:
    for line in read_netns_file(ns, "/proc/net/dev").splitlines():
        name, sep, rest = line.partition(":")
        if sep and name.strip() == ifname:
            return int(rest.split()[1])
    raise BenchError(f"no interface {ifname} in {ns}")


def udp_rcvbuf_errors(ns: str) -> int | None:
    lines = [line.split() for line in read_netns_file(ns, "/proc/net/snmp").splitlines() if line.startswith("Udp:")]
    if len(lines) < 2 or "RcvbufErrors" not in lines[0]:
        return None
    return int(lines[1][lines[0].index("RcvbufErrors")])


def set_rps(ns: str, ifname: str, cpu: int | None) -> None:
    """Steer receive processing of ``ifname`` (inside ``ns``) to ``cpu`` (None: back to the receiving CPU).

    sysfs shows the devices of the namespace that mounted it, so this runs under ``ip netns exec``
    (which mounts a fresh /sys for the namespace)."""
    mask = "0" if cpu is None else format(1 << cpu, "x")
    subprocess.run(
        ["ip", "netns", "exec", ns, "tee", f"/sys/class/net/{ifname}/queues/rx-0/rps_cpus"],
        input=mask,
        text=True,
        capture_output=True,
        check=True,
        timeout=10,
    )


def cpu_busy_ticks(cpu: int) -> tuple[int, int] | None:
    """(busy, total) jiffies of one CPU from /proc/stat (busy: everything but idle and iowait)."""
    with contextlib.suppress(OSError):
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith(f"cpu{cpu} "):
                    values = [int(x) for x in line.split()[1:]]
                    return sum(values) - values[3] - values[4], sum(values)
    return None


def process_cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def sinks(topology: Any) -> Iterator[None]:
    """Bound, never-read UDP sockets at the far ends: the kernel drops what arrives (no ICMP)."""
    for role, address in (("dn", (str(DN), DN_PORT)), ("gnb", (str(GNB), gtpu.GTPU_PORT))):
        sock = topology.open_socket(role)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(address)
    yield  # the topology closes them


def cpu_pinning(requested: str | None) -> tuple[int | None, int | None]:
    """(UPF CPU, generator CPU); none when the machine has a single CPU or 'none' was asked."""
    if requested == "none":
        return None, None
    if requested:
        upf, gen = (int(x) for x in requested.split(","))
        return upf, gen
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[1], cpus[0]) if len(cpus) >= 2 else (None, None)
