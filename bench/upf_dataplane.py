"""Software dataplane benchmark: packets/s through user_plane.software, against the kernel's own forwarding.

Run from the repository root, as root (it builds network namespaces)::

    .venv/bin/python bench/upf_dataplane.py                         # full run (about 1.5 min)
    .venv/bin/python bench/upf_dataplane.py --quick                 # smoke run, a few seconds
    .venv/bin/python bench/upf_dataplane.py --sizes 64 --sessions 1000 --duration 5 --json out.json

What is measured
----------------
Three namespaces, built here and removed at the end (also on Ctrl-C or an error), as in
../shared/DATAPLANE.md: ``gnb`` (gnb0 198.18.1.2) == (n3 198.18.1.1) ``upf`` (n6 198.18.2.1) ==
(dn0 198.18.2.2) ``dn``, IP forwarding on in upf, the UE pool 198.19.0.0/16 routed from dn via
the UPF, and routes gnb <-> dn through upf for the kernel ceiling. Nothing has a default route.

* **upf**: a :class:`user_plane.software.SoftwareDriver` in its own process inside ``upf``
  (``ip netns exec``), N sessions installed (each: uplink PDR on its TEID with Outer Header
  Removal -> FAR to the core; downlink PDR on its UE address -> FAR with GTP-U/UDP/IPv4 Outer
  Header Creation and QFI 9). Uplink: G-PDUs (with a PDU Session Container) from gnb, one
  session after the other, inner IPv4/UDP packets of SIZE octets to a socket in dn. Downlink:
  IPv4/UDP packets of SIZE octets from dn to the UE addresses, G-PDUs arriving at gnb.
* **kernel** (the ceiling): the same generator sends plain IPv4/UDP packets of SIZE octets from
  gnb to dn (uplink) or dn to gnb (downlink), routed by the upf namespace's kernel: what the
  machine forwards between these namespaces with no userspace hop and no GTP-U at all.

Generator: a process pinned to one CPU (default CPU 0) sending with ``sendmmsg(2)`` through
ctypes from a UDP socket, 256 datagrams per call, prebuilt (one per session, cycled). It sends
flat out, bounded by ``--max-packets`` and by warm-up + window + 0.5 s; what it reached is
reported (``gen pps``) so a generator-bound case is visible. The UPF process is pinned to
another CPU (default CPU 1). Note that the kernel's receive processing of what the generator
sends runs on the generator's CPU (veth delivers in the sender's softirq), as in DATAPLANE.md.

Sink: a UDP socket bound in the receiving namespace with a tiny receive buffer that is never
read (so no ICMP port unreachable goes back); forwarded packets are counted by the receiving
veth's rx_packets counter (``/proc/net/dev`` inside that namespace) over the measured window,
after a warm-up. pps = that count / window. Also reported: the UPF process's CPU over the
window (``/proc/PID/stat``, share of one core), datagrams the kernel dropped on the UPF's full
N3 socket (``Udp RcvbufErrors`` in upf), and the driver's own drop counters.

Targets (from the issue): 272,000 pps uplink and 221,000 pps downlink at 64-octet packets and
1,000 sessions, open5gs-upfd measured on this kind of machine. Ratios are given to the kernel
ceiling of the same direction and size, and to the target of the direction.

Numbers on a shared 2-CPU machine vary with other load: the report gives the load average at
start and end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import errno
import json
import os
import platform
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: the packages live at the repository root
    sys.path.insert(0, str(REPO_ROOT))

import pfcp  # noqa: E402
from user_plane import gtpu  # noqa: E402
from user_plane.session import Plan, SessionState, plan_establishment  # noqa: E402

#: Packets/s the issue asks for at 64-octet packets and 1,000 sessions (open5gs-upfd on this machine).
TARGET_PPS: Final = {"uplink": 272_000, "downlink": 221_000}
TARGET_SIZE: Final = 64
TARGET_SESSIONS: Final = 1000

DIRECTIONS: Final = ("uplink", "downlink")
#: The UPF's paths: Python forwarding only, and with the eBPF fast path (user_plane/ebpf).
PATHS: Final = ("python", "ebpf")
DEFAULT_SIZES: Final = (64, 1400)
DEFAULT_SESSIONS: Final = (1, 1000, 10_000)
DEFAULT_DURATION: Final = 3.0
DEFAULT_WARMUP: Final = 0.7
QUICK_DURATION: Final = 0.3
QUICK_WARMUP: Final = 0.2
QUICK_SESSIONS: Final = (1, 10)
DEFAULT_MAX_PACKETS: Final = 20_000_000
GEN_BATCH: Final = 256
#: Inner packets are IPv4 (20) + UDP (8) + payload: the smallest size is 28 + 1.
MIN_SIZE: Final = 29
#: The inner packet plus 44 octets of GTP-U/UDP/IPv4 must fit the N3 MTU (1600 in the topology).
MAX_SIZE: Final = 1500

GNB: Final = IPv4Address("198.18.1.2")
N3: Final = IPv4Address("198.18.1.1")
N6: Final = IPv4Address("198.18.2.1")
DN: Final = IPv4Address("198.18.2.2")
UE_POOL: Final = IPv4Network("198.19.0.0/16")
TUN: Final = "bench-tun"
INSTANCE: Final = "internet"
DN_PORT: Final = 9000
UE_PORT: Final = 5000
QFI: Final = 9
UL_TEID_BASE: Final = 0x0100_0000
DL_TEID_BASE: Final = 0x0200_0000
MAX_SESSIONS: Final = UE_POOL.num_addresses - 2
CP_NODE: Final = IPv4Address("198.18.0.10")


class BenchError(RuntimeError):
    """The benchmark could not run (a child failed, the topology could not be built...)."""


# --------------------------------------------------------------------------
# Packets and sessions


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return 0xFFFF - total


def ipv4_udp(src: IPv4Address, dst: IPv4Address, sport: int, dport: int, size: int) -> bytes:
    """An IPv4/UDP packet of ``size`` octets in all, checksums right."""
    payload = bytes(i & 0xFF for i in range(size - 28))
    udp_len = 8 + len(payload)
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    udp = udp[:6] + struct.pack("!H", _csum(pseudo + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, socket.IPPROTO_UDP, 0, src.packed, dst.packed
    )
    return ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:] + udp


def ue_address(index: int) -> IPv4Address:
    return UE_POOL.network_address + 1 + index


def session_request(index: int) -> pfcp.SessionEstablishmentRequest:
    """Session ``index``: uplink on TEID UL_TEID_BASE+index, downlink to the gNB on DL_TEID_BASE+index."""
    ue = ue_address(index)
    internet = pfcp.NetworkInstance(INSTANCE)
    forw = pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW)
    return pfcp.SessionEstablishmentRequest(
        node_id=pfcp.NodeID(CP_NODE),
        cp_f_seid=pfcp.FSEID(seid=index + 1, ipv4=CP_NODE),
        create_pdr=(
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(1),
                precedence=pfcp.Precedence(100),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
                    local_f_teid=pfcp.FTEID(teid=UL_TEID_BASE + index, ipv4=N3),
                    network_instance=internet,
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=ue),),
                ),
                outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
                far_id=pfcp.FARID(1),
                qer_id=(pfcp.QERID(1),),
            ),
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(2),
                precedence=pfcp.Precedence(100),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.CORE),
                    network_instance=internet,
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=ue, is_destination=True),),
                ),
                far_id=pfcp.FARID(2),
                qer_id=(pfcp.QERID(1),),
            ),
        ),
        create_far=(
            pfcp.CreateFAR(
                far_id=pfcp.FARID(1),
                apply_action=forw,
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.CORE),
                    network_instance=internet,
                ),
            ),
            pfcp.CreateFAR(
                far_id=pfcp.FARID(2),
                apply_action=forw,
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
                    outer_header_creation=pfcp.OuterHeaderCreation(
                        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=DL_TEID_BASE + index, ipv4=GNB
                    ),
                ),
            ),
        ),
        create_qer=(pfcp.CreateQER(qer_id=pfcp.QERID(1), gate_status=pfcp.GateStatus(), qfi=pfcp.QFI(QFI)),),
    )


def session_state(index: int) -> SessionState:
    plan = plan_establishment(session_request(index), index + 1, lambda chid: 0)
    if not isinstance(plan, Plan):
        raise BenchError(f"session {index} rejected: {plan}")
    return plan.state


def generator_packets(direction: str, path: str, size: int, sessions: int) -> list[bytes]:
    """The UDP payloads the generator cycles through (one per session on a UPF path)."""
    if path == "kernel":
        return [bytes(i & 0xFF for i in range(size - 28))]
    if direction == "uplink":
        out = []
        for i in range(sessions):
            inner = ipv4_udp(ue_address(i), DN, UE_PORT, DN_PORT, size)
            out.append(gtpu.encode_gpdu_header(UL_TEID_BASE + i, len(inner), qfi=QFI, pdu_type_dl=False) + inner)
        return out
    return [bytes(i & 0xFF for i in range(size - 28))] * sessions


def generator_destinations(direction: str, path: str, sessions: int) -> list[tuple[str, int]]:
    if path == "kernel":
        return [(str(DN), DN_PORT) if direction == "uplink" else (str(GNB), gtpu.GTPU_PORT)]
    if direction == "uplink":
        return [(str(N3), gtpu.GTPU_PORT)]
    return [(str(ue_address(i)), UE_PORT) for i in range(sessions)]


# --------------------------------------------------------------------------
# The generator: sendmmsg(2) through ctypes


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


# --------------------------------------------------------------------------
# The UPF child: a SoftwareDriver driven by JSON lines on stdin


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def upf_main(args: argparse.Namespace) -> int:
    """Child: runs inside the upf namespace (``ip netns exec``)."""
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    return asyncio.run(_upf(args))


async def _upf(args: argparse.Namespace) -> int:
    from user_plane.config import N6Config
    from user_plane.software import SoftwareDriver

    driver = SoftwareDriver(
        [N3], {INSTANCE: N6Config(TUN, (UE_POOL,))}, read_batch=args.read_batch, fastpath=args.fastpath == "on"
    )
    await driver.start()
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def command() -> None:
        line = sys.stdin.readline()
        if not line:
            done.set_result(None)
            loop.remove_reader(sys.stdin.fileno())
            return
        request = json.loads(line)
        if request["cmd"] == "sessions":
            start = time.perf_counter()
            for seid in list(driver.installed()):
                driver.remove(seid)
            for index in range(request["n"]):
                driver.install(session_state(index))
            _emit({"installed": len(driver.installed()), "seconds": time.perf_counter() - start})
        elif request["cmd"] == "counters":
            _emit({"counters": driver.all_counters()})
        elif request["cmd"] == "fold":
            # What one poll of the fast path costs: a BPF_F_LOCK read (and meter fold) per session.
            fastpath = driver.fastpath
            if fastpath is None:
                _emit({"fold": None})
                return
            start = time.perf_counter()
            rounds = 5
            for _ in range(rounds):
                fastpath.fold_all()
            seconds = (time.perf_counter() - start) / rounds
            _emit({"fold": {"sessions": len(fastpath.offloaded()), "seconds": seconds}})
        elif request["cmd"] == "quit":
            loop.remove_reader(sys.stdin.fileno())
            done.set_result(None)

    loop.add_reader(sys.stdin.fileno(), command)
    _emit({"ready": True, "pid": os.getpid(), "tun_mtu": driver.tun_mtu, "fastpath": driver.fastpath is not None})
    try:
        await done
    finally:
        await driver.stop()
    _emit({"bye": True})
    return 0


# --------------------------------------------------------------------------
# The orchestrator


@dataclass
class Child:
    """A child process of this script inside a namespace, talking JSON lines."""

    name: str
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, name: str, ns: str, argv: list[str]) -> Child:
        command = ["ip", "netns", "exec", ns, sys.executable, "-m", "bench.upf_dataplane", *argv]
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: stop() reaches everything it started
        )
        return cls(name, process)

    def read(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            stderr = self.process.stderr.read() if self.process.stderr else ""
            why = "timed out" if not ready else f"exited with {self.process.returncode}"
            raise BenchError(f"{self.name} process {why}:\n{stderr.strip()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self.read(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


@dataclass(frozen=True, slots=True)
class CaseSpec:
    direction: str
    path: str  # "kernel", or the UPF's: "python" (no fast path) or "ebpf" (fast path on)
    size: int
    sessions: int | None  # None on the kernel path


@dataclass
class CaseResult:
    direction: str
    path: str
    size: int
    sessions: int | None
    window_s: float
    forwarded: int
    pps: float
    gbps: float
    gen_sent: int
    gen_pps: float
    gen_errors: int
    upf_cpu: float | None
    upf_core_busy: float | None
    n3_socket_drops: int | None
    upf_drops: dict[str, int]
    ratio_ceiling: float | None = None
    ratio_target: float | None = None
    notes: list[str] = field(default_factory=list)


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


@dataclass
class Bench:
    names: dict[str, str]
    upf: Child
    upf_pid: int
    duration: float
    warmup: float
    max_packets: int
    upf_cpu: int | None
    gen_cpu: int | None

    def run_case(self, spec: CaseSpec) -> CaseResult:
        sending, receiving, sink_if = ("gnb", "dn", "dn0") if spec.direction == "uplink" else ("dn", "gnb", "gnb0")
        gen_path = "kernel" if spec.path == "kernel" else "upf"
        argv = ["_gen", "--direction", spec.direction, "--path", gen_path, "--size", str(spec.size)]
        argv += ["--sessions", str(spec.sessions or 1), "--seconds", str(self.warmup + self.duration + 0.5)]
        argv += ["--max-packets", str(self.max_packets)]
        if self.gen_cpu is not None:
            argv += ["--cpu", str(self.gen_cpu)]
        gen = Child.start("generator", self.names[sending], argv)
        try:
            gen.read(60)  # ready: packets built
            time.sleep(self.warmup)
            before = self._snapshot(receiving, sink_if)
            time.sleep(self.duration)
            after = self._snapshot(receiving, sink_if)
            done = gen.read(self.duration + self.warmup + 30)
        finally:
            gen.stop()
        window = after["t"] - before["t"]
        forwarded = after["rx"] - before["rx"]
        cpu = None
        if before["cpu"] is not None and after["cpu"] is not None:
            cpu = (after["cpu"] - before["cpu"]) / window
        core = None
        if before["core"] is not None and after["core"] is not None and after["core"][1] > before["core"][1]:
            core = (after["core"][0] - before["core"][0]) / (after["core"][1] - before["core"][1])
        drops = None
        if before["n3_drops"] is not None and after["n3_drops"] is not None:
            drops = after["n3_drops"] - before["n3_drops"]
        upf_drops = {
            key: value - before["counters"].get(key, 0)
            for key, value in after["counters"].items()
            if ("drop" in key or "error" in key or "punt" in key) and value != before["counters"].get(key, 0)
        }
        result = CaseResult(
            spec.direction,
            spec.path,
            spec.size,
            spec.sessions,
            window,
            forwarded,
            forwarded / window,
            forwarded * spec.size * 8 / window / 1e9,
            done["sent"],
            done["sent"] / done["elapsed"] if done["elapsed"] > 0 else 0.0,
            done["errors"],
            cpu if spec.path != "kernel" else None,
            core,
            drops if spec.path != "kernel" else None,
            upf_drops if spec.path != "kernel" else {},
        )
        if done["elapsed"] < self.warmup + self.duration:
            result.notes.append("the generator stopped before the window ended (--max-packets)")
        return result

    def _snapshot(self, receiving: str, sink_if: str) -> dict[str, Any]:
        counters = self.upf.ask({"cmd": "counters"}, 10)["counters"]
        return {
            "t": time.monotonic(),
            "rx": rx_packets(self.names[receiving], sink_if),
            "cpu": process_cpu_seconds(self.upf_pid),
            "core": None if self.upf_cpu is None else cpu_busy_ticks(self.upf_cpu),
            "n3_drops": udp_rcvbuf_errors(self.names["upf"]),
            "counters": counters,
        }

    def install(self, sessions: int) -> float:
        reply = self.upf.ask({"cmd": "sessions", "n": sessions}, 600)
        if reply.get("installed") != sessions:
            raise BenchError(f"the UPF holds {reply.get('installed')} sessions, not {sessions}")
        return float(reply["seconds"])


def topology_spec() -> Any:
    from tests.harness.netns import UPF_TOPOLOGY, Route, TopologySpec

    # The kernel ceiling needs gnb <-> dn routed through upf; the UE pool route in dn is already there.
    routes = (
        *UPF_TOPOLOGY.routes,
        Route("gnb", IPv4Network("198.18.2.0/24"), N3),
        Route("dn", IPv4Network("198.18.1.0/24"), N6),
    )
    return TopologySpec(UPF_TOPOLOGY.namespaces, UPF_TOPOLOGY.links, routes, UPF_TOPOLOGY.sysctls)


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


def environment(load_start: tuple[float, float, float]) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    return {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_start": list(load_start),
        "loadavg_end": list(os.getloadavg()),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.harness.netns import Topology, netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason is not None:
        raise BenchError(reason)
    load_start = os.getloadavg()
    upf_cpu, gen_cpu = cpu_pinning(args.cpus)
    results: list[CaseResult] = []
    installs: dict[str, dict[int, float]] = {}
    folds: dict[str, dict[str, Any] | None] = {}
    fastpath_loaded: dict[str, bool] = {}
    with Topology(topology_spec(), prefix="ecb") as topo, sinks(topo):
        names = dict(topo.names)
        steer = args.ceiling_rps and upf_cpu is not None
        for index, path in enumerate(args.paths):
            # One UPF process per path (the Python path's also serves the kernel ceiling: no BPF
            # program on n3/n6 while the kernel forwards on its own).
            upf_argv = ["_upf", "--read-batch", str(args.read_batch), "--fastpath", "on" if path == "ebpf" else "off"]
            if upf_cpu is not None:
                upf_argv += ["--cpu", str(upf_cpu)]
            upf = Child.start("upf", names["upf"], upf_argv)
            try:
                hello = upf.read(30)
                fastpath_loaded[path] = bool(hello.get("fastpath"))
                bench = Bench(names, upf, hello["pid"], args.duration, args.warmup, args.max_packets, upf_cpu, gen_cpu)
                if index == 0:
                    for ifname in ("n3", "n6") if steer else ():
                        set_rps(names["upf"], ifname, upf_cpu)
                    try:
                        for direction in DIRECTIONS:
                            for size in args.sizes:
                                results.append(bench.run_case(CaseSpec(direction, "kernel", size, None)))
                    finally:
                        for ifname in ("n3", "n6") if steer else ():
                            set_rps(names["upf"], ifname, None)
                # The eBPF path runs in softirq: steered to the UPF CPU like the kernel ceiling.
                rps = steer and path == "ebpf"
                for ifname in ("n3", "n6") if rps else ():
                    set_rps(names["upf"], ifname, upf_cpu)
                try:
                    for sessions in args.sessions:
                        installs.setdefault(path, {})[sessions] = bench.install(sessions)
                        if path == "ebpf":
                            folds[str(sessions)] = upf.ask({"cmd": "fold"}, 60)["fold"]
                        for direction in DIRECTIONS:
                            for size in args.sizes:
                                results.append(bench.run_case(CaseSpec(direction, path, size, sessions)))
                finally:
                    for ifname in ("n3", "n6") if rps else ():
                        set_rps(names["upf"], ifname, None)
                with contextlib.suppress(BenchError):
                    upf.ask({"cmd": "quit"}, 10)
            finally:
                upf.stop()
    ceilings = {(r.direction, r.size): r.pps for r in results if r.path == "kernel"}
    for r in results:
        if r.path != "kernel":
            ceiling = ceilings.get((r.direction, r.size))
            r.ratio_ceiling = r.pps / ceiling if ceiling else None
            r.ratio_target = r.pps / TARGET_PPS[r.direction]
        if r.path == "ebpf" and not fastpath_loaded.get("ebpf"):
            r.notes.append("the eBPF fast path did not load: this is the Python path")
    return {
        "environment": environment(load_start),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "sizes": list(args.sizes),
            "sessions": list(args.sessions),
            "max_packets": args.max_packets,
            "read_batch": args.read_batch,
            "upf_cpu": upf_cpu,
            "generator_cpu": gen_cpu,
            "ceiling_rps": bool(args.ceiling_rps and upf_cpu is not None),
            "generator_batch": GEN_BATCH,
            "paths": list(args.paths),
            "install_seconds": {p: {str(k): v for k, v in per.items()} for p, per in installs.items()},
            "fastpath_fold": folds,
        },
        "target": {
            "pps": TARGET_PPS,
            "size": TARGET_SIZE,
            "sessions": TARGET_SESSIONS,
            "measured": {
                f"{r.path}/{r.direction}": r.pps
                for r in results
                if r.path != "kernel" and r.size == TARGET_SIZE and r.sessions == TARGET_SESSIONS
            },
        },
        "results": [asdict(r) for r in results],
    }


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_report(report: dict[str, Any]) -> None:
    env, settings = report["environment"], report["settings"]
    print("UPF software dataplane benchmark (packets/s)")
    print(f"python {env['python']}, kernel {env['kernel']}, {env['cpu']} x{env['cpus']}, {env['date']}")
    print(f"load average at start {env['loadavg_start']}, at end {env['loadavg_end']}")
    print(
        f"window {settings['duration_s']} s after {settings['warmup_s']} s warm-up; UPF on CPU {settings['upf_cpu']}, "
        f"generator on CPU {settings['generator_cpu']}; read_batch {settings['read_batch']}; "
        f"kernel ceiling with RPS to the UPF CPU: {settings['ceiling_rps']}"
    )
    print("UPF cpu: the UPF process (user + system); core: everything on the UPF's CPU, softirq included")
    for path, per in settings["install_seconds"].items():
        for sessions, seconds in per.items():
            print(f"{path}: installing {sessions} sessions took {seconds:.2f} s")
    for fold in settings["fastpath_fold"].values():
        if fold:
            rate = fold["sessions"] / fold["seconds"] if fold["seconds"] > 0 else 0.0
            print(
                f"ebpf: folding the counters of {fold['sessions']} offloaded sessions takes "
                f"{fold['seconds'] * 1e3:.2f} ms ({rate:,.0f} sessions/s)"
            )
    print()
    header = (
        f"{'direction':<9} {'path':<6} {'size':>5} {'sessions':>8} {'pps':>10} {'Gbit/s':>7} {'gen pps':>10} "
        f"{'UPF cpu':>7} {'core':>5} {'N3 drops':>9} {'/ceiling':>8} {'/target':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in report["results"]:
        cpu = "-" if r["upf_cpu"] is None else f"{r['upf_cpu'] * 100:.0f}%"
        core = "-" if r["upf_core_busy"] is None else f"{r['upf_core_busy'] * 100:.0f}%"
        drops = "-" if r["n3_socket_drops"] is None else str(r["n3_socket_drops"])
        sessions = "-" if r["sessions"] is None else str(r["sessions"])
        print(
            f"{r['direction']:<9} {r['path']:<6} {r['size']:>5} {sessions:>8} {r['pps']:>10,.0f} {r['gbps']:>7.2f} "
            f"{r['gen_pps']:>10,.0f} {cpu:>7} {core:>5} {drops:>9} {_fmt_ratio(r['ratio_ceiling']):>8} "
            f"{_fmt_ratio(r['ratio_target']):>7}"
        )
        for note in r["notes"]:
            print(f"    note: {note}")
        if r["upf_drops"]:
            print(f"    UPF drops: {r['upf_drops']}")
    target = report["target"]
    print()
    for path in settings["paths"]:
        for direction in DIRECTIONS:
            measured = target["measured"].get(f"{path}/{direction}")
            goal = target["pps"][direction]
            where = f"{goal:,} pps at {TARGET_SIZE} B / {TARGET_SESSIONS} sessions"
            if measured is None:
                print(f"target {direction} ({path}): {where}: not measured")
            else:
                print(f"target {direction} ({path}): {where}: measured {measured:,.0f} ({measured / goal:.0%})")


def _csv_ints(low: int, high: int) -> Any:
    def parse(text: str) -> list[int]:
        try:
            values = [int(x) for x in text.split(",") if x]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
        if not values or any(not low <= v <= high for v in values):
            raise argparse.ArgumentTypeError(f"{text!r}: each value must be from {low} to {high}")
        return values

    return parse


def _csv_paths(text: str) -> list[str]:
    values = [x for x in text.split(",") if x]
    if not values or any(v not in PATHS for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated list of {', '.join(PATHS)}")
    return values


def _child_parser(mode: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"upf_dataplane {mode}")
    parser.add_argument("--cpu", type=int, default=None)
    if mode == "_upf":
        parser.add_argument("--read-batch", type=int, default=64)
        parser.add_argument("--fastpath", choices=("on", "off"), default="off")
    else:
        parser.add_argument("--direction", choices=DIRECTIONS, required=True)
        parser.add_argument("--path", choices=("upf", "kernel"), required=True)
        parser.add_argument("--size", type=int, required=True)
        parser.add_argument("--sessions", type=int, default=1)
        parser.add_argument("--seconds", type=float, required=True)
        parser.add_argument("--max-packets", type=int, default=DEFAULT_MAX_PACKETS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("_upf", "_gen"):
        child_args = _child_parser(argv[0]).parse_args(argv[1:])
        return upf_main(child_args) if argv[0] == "_upf" else generator_main(child_args)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=None, help=f"measured seconds per case ({DEFAULT_DURATION})")
    parser.add_argument("--warmup", type=float, default=None, help=f"warm-up seconds per case ({DEFAULT_WARMUP})")
    parser.add_argument(
        "--sizes", type=_csv_ints(MIN_SIZE, MAX_SIZE), default=list(DEFAULT_SIZES), help="inner packet sizes (64,1400)"
    )
    parser.add_argument(
        "--sessions",
        type=_csv_ints(1, MAX_SESSIONS),
        default=None,
        help="session counts (default 1,1000,10000; --quick: 1,10)",
    )
    parser.add_argument(
        "--max-packets", type=int, default=DEFAULT_MAX_PACKETS, help="bound on packets sent per case (20,000,000)"
    )
    parser.add_argument("--read-batch", type=int, default=64, help="datagrams the UPF drains per wakeup (64)")
    parser.add_argument(
        "--path",
        dest="paths",
        type=_csv_paths,
        default=list(PATHS),
        help="UPF paths to measure, in order: python (Python forwarding only), ebpf (with the eBPF fast path); "
        "default python,ebpf",
    )
    parser.add_argument(
        "--ceiling-rps",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="for the kernel ceiling, steer the upf namespace's receive processing to the UPF CPU (RPS), "
        "so kernel forwarding gets the core the Python UPF gets (default on)",
    )
    parser.add_argument("--cpus", default=None, help="UPF,generator CPUs (default: the 2nd and 1st allowed), or none")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: --duration {QUICK_DURATION} --warmup {QUICK_WARMUP}"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    args.duration = args.duration if args.duration is not None else QUICK_DURATION if args.quick else DEFAULT_DURATION
    args.warmup = args.warmup if args.warmup is not None else QUICK_WARMUP if args.quick else DEFAULT_WARMUP
    if args.sessions is None:
        args.sessions = list(QUICK_SESSIONS if args.quick else DEFAULT_SESSIONS)
    if args.duration <= 0 or args.warmup < 0 or args.max_packets < 1:
        parser.error("--duration must be positive, --warmup not negative, --max-packets at least 1")
    try:
        report = run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
