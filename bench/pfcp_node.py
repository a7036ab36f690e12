"""PFCP node benchmark: request/response transactions per second between two
processes over loopback.

Run from the repository root::

    .venv/bin/python bench/pfcp_node.py                        # full run (about 40 s)
    .venv/bin/python bench/pfcp_node.py --quick                # smoke run, a few seconds
    .venv/bin/python bench/pfcp_node.py --inflight 64 --workload ser --json out.json
    .venv/bin/python bench/pfcp_node.py --count 200 --inflight 1,8   # a fixed number of transactions

What is measured
----------------
Two processes on 127.0.0.1, each running one :class:`pfcp.aio.PfcpNode` on its
own asyncio event loop (``multiprocessing`` with the ``spawn`` start method).
A third process, the one you start, only orchestrates: it never touches a
PFCP socket.

* The **server** answers what it receives:

  - ``heartbeat``: Heartbeat Requests, which the endpoint answers itself (no
    application code runs);
  - ``ser``: Session Establishment Requests, answered by a synchronous
    application handler that allocates a UP SEID and returns a Session
    Establishment Response (Cause, Node ID, UP F-SEID; header SEID = the CP
    F-SEID of the request). The client sets up a PFCP association first, as
    the endpoint rejects session requests without one;
  - ``ser-async``: the same, with an ``async def`` handler (the node runs it
    as a task, as it would for an application that awaits a database or VPP).

* The **client** keeps N requests in flight and records each one's latency
  (``time.perf_counter`` just before the request is built and just after its
  response arrives). The SER it sends is the golden vector of
  ``../shared/pfcp-vectors/session-establishment-request.hex`` (370 octets;
  a smaller SER built here when that file is absent), with a new CP F-SEID per
  request, as every new session has its own. Two drivers:

  - ``api`` (the headline): N asyncio tasks, each looping on
    ``await node.request(server, msg)``, the public API an application uses;
  - ``endpoint``: no tasks and no futures: a ``DatagramProtocol`` drives a
    :class:`pfcp.endpoint.PfcpEndpoint` directly and sends the next request
    from ``datagram_received`` as soon as a response arrives. Its timer is a
    coarse 0.25 s tick calling ``handle_timer`` (retransmissions may go out up
    to 0.25 s late). It shows what the task/future layer of the client costs;
    the server is the same ``PfcpNode`` in both cases.

  Every response is checked: its type, and for SERs Cause = Request accepted
  and header SEID = the CP SEID sent. A wrong one counts in ``bad_responses``.

Method
------
Each case (workload, driver, N in flight) gets a fresh client node on a new
port (and, for SERs, a new association, released at the end). The client runs
a warm-up (default 1 s), then a measured window (``--duration``, default 3 s);
transactions completing inside the window give the rate (completions /
window) and the latency percentiles (nearest rank). At the end of the window
the client stops issuing requests and waits for the outstanding ones. With
``--count N`` each case instead runs exactly N transactions, no warm-up, and
the rate is N / elapsed time.

T1 is 5 s and N1 3 by default, so that a retransmission is a visible accident
rather than part of the load. Retransmissions and losses are reported, never
hidden: requests that took >= T1 (they needed a retransmission), timeouts
(``RequestTimeout``), duplicates the server saw (its endpoint's ``drops``),
late responses the client dropped, and the kernel's per-socket drop counters
(``/proc/net/udp``: datagrams lost to a full receive buffer). The sockets keep
the system's default SO_RCVBUF, as PfcpNode does; with 512 in flight a burst
overflows it (a note says so), and ``--rcvbuf BYTES`` enlarges both.

CPU: over the measured window, both processes' CPU time (the client reads the
server's from ``/proc/<pid>/stat``) as a share of one core, the part of it
spent in the kernel, CPU microseconds per transaction, and how many cores the
rest of the machine kept busy (``/proc/stat``), which shows competing load.
A side at 100% is the bottleneck. Nothing is pinned to a CPU; the garbage
collector is on; heartbeats between the nodes are off (``heartbeat_interval=None``).

Where the time goes: after the cases, the orchestrator times in-process, with
no sockets and no asyncio, each side's codec work and its whole sans-I/O path
through a :class:`pfcp.endpoint.PfcpEndpoint` (plus the application's part),
per transaction; the difference with the CPU measured over sockets is what the
asyncio adapter, the event loop, the socket calls and the kernel cost
(``--no-breakdown`` skips it).

The report names the Python version, CPU model, load average at start and end
(other work on the machine competes for the same cores), the event loop both
processes ran (the default asyncio loop: uvloop is not a dependency and is
never installed by this script), and whether the codec's compiled modules were
loaded.

``--profile DIR`` runs both processes under cProfile and writes
``DIR/server.pstats`` and ``DIR/client.pstats`` (cProfile slows everything
down; use its numbers for shares, not rates).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import datetime as dt
import gc
import json
import math
import multiprocessing
import os
import platform
import selectors
import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from ipaddress import IPv4Address
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import pfcp
from pfcp.aio import PfcpNode, RequestTimeout
from pfcp.endpoint import EndpointConfig, PfcpEndpoint
from pfcp.events import (
    Address,
    AssociationEstablished,
    AssociationReleased,
    AssociationSetupFailed,
    Event,
    RequestReceived,
    RequestTimedOut,
    ResponseReceived,
)
from pfcp.messages import Message
from pfcp.transaction import SEQUENCE_MODULO, RetransmitPolicy

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Shared reference material lives next to the repository, never inside it.
SHARED_DIR = REPO_ROOT / ".." / "shared"
GOLDEN_SER_PATH = SHARED_DIR / "pfcp-vectors" / "session-establishment-request.hex"

WORKLOADS = ("heartbeat", "ser", "ser-async")
DEFAULT_WORKLOADS = ("heartbeat", "ser")
DRIVERS = ("api", "endpoint")
DEFAULT_INFLIGHT = (1, 64, 512)

#: The goal from the issue: transactions per second on this 2-core machine.
TARGET_TPS = 15_000
#: The in-flight count the target is checked at (open5gs-upfd, in C, answers
#: 74,000 heartbeats/s on the same machine with 64 in flight).
TARGET_INFLIGHT = 64

DEFAULT_DURATION = 3.0
DEFAULT_WARMUP = 1.0
QUICK_DURATION = 0.5
QUICK_WARMUP = 0.2
DEFAULT_T1 = 5.0
DEFAULT_N1 = 3
#: Other load (in cores) over a window that earns a note in the report.
OTHER_LOAD_NOTE = 0.25
#: Period of the endpoint driver's timer tick.
ENDPOINT_TICK = 0.25
#: Seconds to wait for a child process to start (spawn + imports) or to answer a command.
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 10.0

HOST = "127.0.0.1"
SERVER_NODE_ID = IPv4Address("127.0.0.1")
CLIENT_NODE_ID = IPv4Address("127.0.0.10")
RECOVERY_TIME_STAMP = 3_900_000_000


class BenchError(Exception):
    """The benchmark cannot run as asked, or a process failed."""


# --------------------------------------------------------------------------
# Messages


def heartbeat_request() -> pfcp.HeartbeatRequest:
    """The Heartbeat Request the client sends (its sequence number is set by the node)."""
    return pfcp.HeartbeatRequest(recovery_time_stamp=pfcp.RecoveryTimeStamp(RECOVERY_TIME_STAMP))


def built_ser() -> pfcp.SessionEstablishmentRequest:
    """A small Session Establishment Request (one uplink PDR and its FAR), used
    when the golden vector is absent."""
    return pfcp.SessionEstablishmentRequest(
        node_id=pfcp.NodeID(CLIENT_NODE_ID),
        cp_f_seid=pfcp.FSEID(seid=1, ipv4=CLIENT_NODE_ID),
        create_pdr=(
            pfcp.CreatePDR(
                pdr_id=pfcp.PDRID(1),
                precedence=pfcp.Precedence(255),
                pdi=pfcp.PDI(
                    source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
                    local_f_teid=pfcp.FTEID(teid=0x11223344, ipv4=IPv4Address("10.0.0.2")),
                    ue_ip_address=(pfcp.UEIPAddress(ipv4=IPv4Address("10.45.0.2")),),
                ),
                far_id=pfcp.FARID(1),
            ),
        ),
        create_far=(
            pfcp.CreateFAR(
                far_id=pfcp.FARID(1),
                apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
                forwarding_parameters=pfcp.ForwardingParameters(
                    destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.CORE)
                ),
            ),
        ),
    )


def load_ser(path: Path | None) -> tuple[pfcp.SessionEstablishmentRequest, str]:
    """The SER template and where it came from: the golden vector at ``path``
    when it exists, else :func:`built_ser`."""
    if path is not None and path.is_file():
        msg = pfcp.decode(bytes.fromhex(path.read_text().strip()))
        if not isinstance(msg, pfcp.SessionEstablishmentRequest) or msg.cp_f_seid is None:
            raise BenchError(f"{path}: not a Session Establishment Request with a CP F-SEID")
        return msg, f"golden vector {path.name} ({len(pfcp.encode(msg))} octets)"
    msg = built_ser()
    return msg, f"built here ({len(pfcp.encode(msg))} octets; golden vector not found at {path})"


class MessageFactory:
    """Builds the request of each transaction and checks its response."""

    def __init__(self, workload: str, ser: pfcp.SessionEstablishmentRequest) -> None:
        if workload not in WORKLOADS:
            raise ValueError(f"unknown workload {workload!r}; expected one of {WORKLOADS}")
        self.session = workload != "heartbeat"
        self._heartbeat = heartbeat_request()
        self._ser = ser
        assert ser.cp_f_seid is not None
        self._cp_ipv4 = ser.cp_f_seid.ipv4
        self._next_seid = 0

    def make(self) -> Message:
        """The next request: the same heartbeat, or a SER with a new CP SEID."""
        if not self.session:
            return self._heartbeat
        self._next_seid += 1
        return dataclasses.replace(self._ser, cp_f_seid=pfcp.FSEID(seid=self._next_seid, ipv4=self._cp_ipv4))

    def check(self, request: Message, response: Message) -> bool:
        """Is ``response`` the right answer to ``request``?"""
        if not self.session:
            return isinstance(response, pfcp.HeartbeatResponse)
        assert isinstance(request, pfcp.SessionEstablishmentRequest) and request.cp_f_seid is not None
        return (
            isinstance(response, pfcp.SessionEstablishmentResponse)
            and response.cause.value == pfcp.CauseValue.REQUEST_ACCEPTED
            and response.seid == request.cp_f_seid.seid
        )


# --------------------------------------------------------------------------
# Measuring helpers


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0 < q <= 1) of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def parse_udp_drops(table: str, host: str, port: int) -> int | None:
    """The ``drops`` column of the IPv4 UDP socket bound to (host, port) in a
    ``/proc/net/udp`` table, or None when no such socket is listed."""
    wanted = f"{int.from_bytes(IPv4Address(host).packed, 'little'):08X}:{port:04X}"
    for line in table.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 13 and cols[1] == wanted:
            return int(cols[-1])
    return None


def udp_drops(address: Address) -> int | None:
    """Datagrams the kernel dropped for the UDP socket at ``address`` (Linux only)."""
    try:
        with open("/proc/net/udp", encoding="ascii") as fh:
            return parse_udp_drops(fh.read(), address[0], address[1])
    except (OSError, ValueError):
        return None


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_cpu_times(path: str) -> tuple[float, float] | None:
    """(user, system) CPU seconds from a ``/proc`` ``stat`` file (None when it cannot be read)."""
    try:
        with open(path, encoding="ascii") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; utime, stime are fields 14, 15
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS


def process_cpu_times(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of process ``pid`` (Linux ``/proc``; None elsewhere)."""
    return _stat_cpu_times(f"/proc/{pid}/stat")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``; None elsewhere)."""
    times = process_cpu_times(pid)
    return None if times is None else times[0] + times[1]


def thread_cpu_seconds(tid: int) -> float | None:
    """User + system CPU seconds of thread ``tid`` of this process (Linux ``/proc``; None elsewhere)."""
    times = _stat_cpu_times(f"/proc/self/task/{tid}/stat")
    return None if times is None else times[0] + times[1]


def machine_busy_seconds() -> float | None:
    """CPU seconds every CPU of the machine spent busy since boot (Linux ``/proc/stat``)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            cols = fh.readline().split()
    except OSError:
        return None
    if not cols or cols[0] != "cpu":
        return None
    ticks = [int(x) for x in cols[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]
    return busy / _CLOCK_TICKS


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """The event loop's class, and its selector when it has one."""
    name = f"{type(loop).__module__}.{type(loop).__qualname__}"
    selector = getattr(loop, "_selector", None)
    if isinstance(selector, selectors.BaseSelector):
        name += f" ({type(selector).__name__})"
    return name


def socket_rcvbuf(sock: socket.socket | None, size: int | None = None) -> int | None:
    """Set the socket's SO_RCVBUF to ``size`` (when given); return what the kernel reports
    (Linux doubles the value asked for, for its bookkeeping, and caps it at net.core.rmem_max)."""
    if sock is None:
        return None
    if size is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def _reasons(drops: Counter[tuple[Address, str]]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for (_, reason), n in drops.items():
        out[reason] += n
    return dict(out)


# --------------------------------------------------------------------------
# Cases and their results


@dataclass(frozen=True)
class CaseSpec:
    """One measurement: ``count`` set means a fixed number of transactions."""

    workload: str
    inflight: int
    driver: str = "api"
    duration: float = DEFAULT_DURATION
    warmup: float = DEFAULT_WARMUP
    count: int | None = None


@dataclass
class CaseResult:
    """What the client measured for one case (the server's side is added by the orchestrator)."""

    workload: str
    driver: str
    inflight: int
    mode: str  # "duration" or "count"
    window_s: float  # the measured window (count mode: first request to last response)
    completed: int  # transactions completed in the window
    tps: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    sent: int  # requests issued over the whole case (warm-up and drain included)
    answered: int  # of those, answered (right or wrong)
    bad_responses: int
    timeouts: int
    retransmitted: int  # requests that took >= T1: they needed at least one retransmission
    client_cpu: float | None  # CPU seconds / wall seconds over the window (1.0 = one core)
    server_cpu: float | None
    client_us_per_tx: float | None  # CPU microseconds per transaction completed in the window
    server_us_per_tx: float | None
    #: CPU the rest of the machine used over the window, in cores (busy CPU time of
    #: the whole machine minus both processes'; includes some kernel softirq work for
    #: the loopback traffic). Other load competing for the 2 cores shows here.
    other_cpu: float | None
    #: Share of each process's CPU time spent in the kernel (socket calls, loopback delivery, wake-ups).
    client_sys_share: float | None
    server_sys_share: float | None
    client_kernel_drops: int | None
    server_kernel_drops: int | None
    client_drops: dict[str, int] = field(default_factory=dict)
    server_drops: dict[str, int] = field(default_factory=dict)
    server_handled: int | None = None  # SERs the server's application handler answered
    client_rcvbuf: int | None = None  # SO_RCVBUF of the client socket, as the kernel reports it
    notes: list[str] = field(default_factory=list)

    @property
    def all_completed(self) -> bool:
        """Every request issued got a right answer, with no timeout."""
        return self.answered == self.sent and self.bad_responses == 0 and self.timeouts == 0


class _Recorder:
    """Counts and latencies of one case, shared by the drivers."""

    def __init__(self, spec: CaseSpec, t1: float) -> None:
        self.spec = spec
        self.t1 = t1
        self.latencies: list[float] = []
        self.sent = 0
        self.answered = 0
        self.bad = 0
        self.timeouts = 0
        self.retransmitted = 0
        self.window_start = 0.0
        self.window_end = math.inf
        self.first_sent: float | None = None
        self.last_done = 0.0
        self._budget = spec.count
        self.stopping = False

    def start(self, now: float) -> None:
        self.first_sent = now
        if self.spec.count is None:
            self.window_start = now + self.spec.warmup
            self.window_end = self.window_start + self.spec.duration
        else:
            self.window_start = now

    def take(self) -> bool:
        """May one more request be issued?"""
        if self.stopping:
            return False
        if self._budget is not None:
            if self._budget <= 0:
                return False
            self._budget -= 1
        self.sent += 1
        return True

    def done(self, t0: float, t1: float, ok: bool) -> None:
        self.answered += 1
        self.last_done = t1
        if not ok:
            self.bad += 1
        latency = t1 - t0
        if latency >= self.t1:
            self.retransmitted += 1
        if self.window_start <= t1 < self.window_end:
            self.latencies.append(latency)

    def timed_out(self, t1: float) -> None:
        self.timeouts += 1
        self.last_done = t1

    def outstanding(self) -> int:
        return self.sent - self.answered - self.timeouts

    def result(self, cpu: _Cpu | None, drops: tuple[int | None, int | None]) -> CaseResult:
        spec = self.spec
        lat = sorted(self.latencies)
        client_cpu = server_cpu = client_us = server_us = other = client_sys = server_sys = None
        if cpu is not None:
            client_cpu = cpu.client / cpu.wall
            client_sys = cpu.client_sys / cpu.client if cpu.client > 0 else None
            if cpu.server is not None and cpu.server_sys is not None and cpu.server > 0:
                server_sys = cpu.server_sys / cpu.server
            if cpu.machine is not None and cpu.server is not None:
                other = max(0.0, (cpu.machine - cpu.client - cpu.server) / cpu.wall)
            client_us = cpu.client / len(lat) * 1e6 if lat else None
            if cpu.server is not None:
                server_cpu = cpu.server / cpu.wall
                server_us = cpu.server / len(lat) * 1e6 if lat else None
        if spec.count is None:
            window = spec.duration
        else:
            window = max(self.last_done - (self.first_sent or self.last_done), 1e-9)
        ms = [x * 1e3 for x in lat]
        return CaseResult(
            workload=spec.workload,
            driver=spec.driver,
            inflight=spec.inflight,
            mode="duration" if spec.count is None else "count",
            window_s=window,
            completed=len(lat),
            tps=len(lat) / window,
            p50_ms=percentile(ms, 0.50),
            p99_ms=percentile(ms, 0.99),
            max_ms=ms[-1] if ms else None,
            mean_ms=sum(ms) / len(ms) if ms else None,
            sent=self.sent,
            answered=self.answered,
            bad_responses=self.bad,
            timeouts=self.timeouts,
            retransmitted=self.retransmitted,
            client_cpu=client_cpu,
            server_cpu=server_cpu,
            client_us_per_tx=client_us,
            server_us_per_tx=server_us,
            other_cpu=other,
            client_sys_share=client_sys,
            server_sys_share=server_sys,
            client_kernel_drops=drops[0],
            server_kernel_drops=drops[1],
        )


@dataclass(frozen=True)
class Target:
    """Where the client sends its requests."""

    address: Address
    pid: int | None  # the server process, for its CPU time (None: not measured)
    t1: float = DEFAULT_T1
    n1: int = DEFAULT_N1
    rcvbuf: int | None = None  # SO_RCVBUF for the client socket (None: the system default)


def node_config(node_id: IPv4Address, t1: float, n1: int) -> EndpointConfig:
    """An endpoint configuration with the given T1/N1 and no periodic heartbeats."""
    return EndpointConfig(
        node_id=pfcp.NodeID(node_id),
        recovery_time_stamp=pfcp.RecoveryTimeStamp(RECOVERY_TIME_STAMP),
        retransmit=RetransmitPolicy(t1, n1),
        heartbeat_interval=None,
    )


# --------------------------------------------------------------------------
# The client side of one case


async def run_case(spec: CaseSpec, target: Target, ser: pfcp.SessionEstablishmentRequest) -> CaseResult:
    """Run one case against the server at ``target`` from a fresh client node."""
    if spec.inflight < 1:
        raise ValueError("inflight must be at least 1")
    if spec.driver == "api":
        return await _run_api(spec, target, MessageFactory(spec.workload, ser))
    if spec.driver == "endpoint":
        return await _run_endpoint(spec, target, MessageFactory(spec.workload, ser))
    raise ValueError(f"unknown driver {spec.driver!r}; expected one of {DRIVERS}")


def _drain_timeout(target: Target) -> float:
    """Long enough for any outstanding request to be answered or time out."""
    return target.t1 * (target.n1 + 1) + 5.0


@dataclass(frozen=True)
class _Cpu:
    """CPU seconds of both processes over ``wall`` seconds of the window."""

    client: float
    client_sys: float
    server: float | None
    server_sys: float | None
    machine: float | None
    wall: float


async def _measure_window(rec: _Recorder, target: Target) -> _Cpu | None:
    """Sleep through warm-up and window, then stop issuing requests; returns the
    CPU time both processes used in the window (None in count mode)."""
    if rec.spec.count is not None:
        return None
    clock = time.perf_counter
    await asyncio.sleep(max(0.0, rec.window_start - clock()))
    c0, s0, m0, w0 = os.times(), _server_cpu(target), machine_busy_seconds(), clock()
    await asyncio.sleep(max(0.0, rec.window_end - clock()))
    c1, s1, m1, w1 = os.times(), _server_cpu(target), machine_busy_seconds(), clock()
    rec.stopping = True
    server = server_sys = None
    if s0 is not None and s1 is not None:
        server, server_sys = s1[0] + s1[1] - s0[0] - s0[1], s1[1] - s0[1]
    return _Cpu(
        client=c1.user + c1.system - c0.user - c0.system,
        client_sys=c1.system - c0.system,
        server=server,
        server_sys=server_sys,
        machine=None if m0 is None or m1 is None else m1 - m0,
        wall=max(w1 - w0, 1e-9),
    )


def _server_cpu(target: Target) -> tuple[float, float] | None:
    return None if target.pid is None else process_cpu_times(target.pid)


async def _run_api(spec: CaseSpec, target: Target, factory: MessageFactory) -> CaseResult:
    released: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_event(event: Event) -> None:
        if isinstance(event, AssociationReleased) and not released.done():
            released.set_result(None)

    node = PfcpNode(node_config(CLIENT_NODE_ID, target.t1, target.n1), on_event=on_event)
    local = await node.start(HOST, 0)
    peer = target.address
    notes: list[str] = []
    try:
        rcvbuf = socket_rcvbuf(node.socket, target.rcvbuf)
        if factory.session:
            await asyncio.wait_for(node.associate(peer), COMMAND_TIMEOUT)
        drops0 = udp_drops(local), udp_drops(peer)
        rec = _Recorder(spec, target.t1)
        clock = time.perf_counter
        request = node.request
        make, check = factory.make, factory.check

        async def worker() -> None:
            while rec.take():
                t0 = clock()
                msg = make()
                try:
                    response = await request(peer, msg)
                except RequestTimeout:
                    rec.timed_out(clock())
                    continue
                rec.done(t0, clock(), check(msg, response))

        rec.start(clock())
        workers = [asyncio.ensure_future(worker()) for _ in range(spec.inflight)]
        cpu = await _measure_window(rec, target)
        done, pending = await asyncio.wait(workers, timeout=_drain_timeout(target) + (spec.count or 0) * 0.01)
        for task in pending:
            task.cancel()
        if pending:
            notes.append(f"{len(pending)} workers still waiting at the end: cancelled")
        for task in done:
            if task.exception() is not None:
                raise BenchError(f"a client worker failed: {task.exception()!r}")
        drops1 = udp_drops(local), udp_drops(peer)
        if factory.session:
            node.release(peer)
            try:
                await asyncio.wait_for(released, COMMAND_TIMEOUT)
            except TimeoutError:
                notes.append("the association release was not answered")
    finally:
        node.close()
    result = rec.result(cpu, _drop_deltas(drops0, drops1))
    result.client_drops = _reasons(node.endpoint.drops)
    result.client_rcvbuf = rcvbuf
    result.notes = notes
    return result


def _drop_deltas(
    before: tuple[int | None, int | None], after: tuple[int | None, int | None]
) -> tuple[int | None, int | None]:
    return (
        None if before[0] is None or after[0] is None else after[0] - before[0],
        None if before[1] is None or after[1] is None else after[1] - before[1],
    )


class _EndpointDriver(asyncio.DatagramProtocol):
    """Drives a PfcpEndpoint directly: the next request leaves from
    ``datagram_received`` as soon as a response arrives."""

    def __init__(self, spec: CaseSpec, target: Target, factory: MessageFactory, rec: _Recorder) -> None:
        self.endpoint = PfcpEndpoint(node_config(CLIENT_NODE_ID, target.t1, target.n1))
        self.peer = target.address
        self.factory = factory
        self.rec = rec
        self.transport: asyncio.DatagramTransport | None = None
        self.started: dict[int, float] = {}
        self.associated: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.released: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.idle: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._loop = asyncio.get_running_loop()
        self._tick: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # selector transports do not subclass it
        self._tick = self._loop.call_later(ENDPOINT_TICK, self._on_tick)

    def send_one(self) -> None:
        if not self.rec.take():
            if self.rec.outstanding() == 0 and not self.idle.done():
                self.idle.set_result(None)
            return
        t0 = time.perf_counter()
        sequence = self.endpoint.send_request(self.factory.make(), self.peer, self._loop.time())
        self.started[sequence] = t0

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.endpoint.receive_datagram(data, (addr[0], addr[1]), self._loop.time())
        self._flush()

    def _on_tick(self) -> None:
        self.endpoint.handle_timer(self._loop.time())
        self._flush()
        self._tick = self._loop.call_later(ENDPOINT_TICK, self._on_tick)

    def _flush(self) -> None:
        endpoint = self.endpoint
        while (event := endpoint.next_event()) is not None:
            if isinstance(event, ResponseReceived):
                t0 = self.started.pop(event.request.sequence, None)
                if t0 is None:
                    continue  # the association setup/release
                self.rec.done(t0, time.perf_counter(), self.factory.check(event.request, event.response))
                self.send_one()
            elif isinstance(event, RequestTimedOut):
                if self.started.pop(event.request.sequence, None) is not None:
                    self.rec.timed_out(time.perf_counter())
                    self.send_one()
            elif isinstance(event, AssociationEstablished | AssociationSetupFailed):
                if not self.associated.done():
                    if isinstance(event, AssociationEstablished):
                        self.associated.set_result(None)
                    else:
                        self.associated.set_exception(BenchError(f"association refused: cause {event.cause}"))
            elif isinstance(event, AssociationReleased) and not self.released.done():
                self.released.set_result(None)
        transport = self.transport
        if transport is not None:
            for data, addr in endpoint.datagrams_to_send():
                transport.sendto(data, addr)

    def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
        if self.transport is not None:
            self.transport.close()


async def _run_endpoint(spec: CaseSpec, target: Target, factory: MessageFactory) -> CaseResult:
    loop = asyncio.get_running_loop()
    rec = _Recorder(spec, target.t1)
    _, driver = await loop.create_datagram_endpoint(
        lambda: _EndpointDriver(spec, target, factory, rec), local_addr=(HOST, 0)
    )
    assert driver.transport is not None
    sockname = driver.transport.get_extra_info("sockname")
    local = (sockname[0], sockname[1])
    peer = target.address
    notes: list[str] = []
    try:
        rcvbuf = socket_rcvbuf(driver.transport.get_extra_info("socket"), target.rcvbuf)
        if factory.session:
            driver.endpoint.associate(peer, loop.time())
            driver._flush()
            await asyncio.wait_for(driver.associated, COMMAND_TIMEOUT)
        drops0 = udp_drops(local), udp_drops(peer)
        rec.start(time.perf_counter())
        for _ in range(spec.inflight):
            driver.send_one()
        driver._flush()
        cpu = await _measure_window(rec, target)
        if rec.outstanding() == 0 and not driver.idle.done():
            driver.idle.set_result(None)
        try:
            await asyncio.wait_for(driver.idle, _drain_timeout(target) + (spec.count or 0) * 0.01)
        except TimeoutError:
            notes.append(f"{rec.outstanding()} requests still outstanding at the end")
        drops1 = udp_drops(local), udp_drops(peer)
        if factory.session:
            driver.endpoint.release(peer, loop.time())
            driver._flush()
            try:
                await asyncio.wait_for(driver.released, COMMAND_TIMEOUT)
            except TimeoutError:
                notes.append("the association release was not answered")
    finally:
        driver.close()
    result = rec.result(cpu, _drop_deltas(drops0, drops1))
    result.client_drops = _reasons(driver.endpoint.drops)
    result.client_rcvbuf = rcvbuf
    result.notes = notes
    return result


# --------------------------------------------------------------------------
# Where the CPU goes: the sans-I/O parts, timed in-process


@dataclass(frozen=True)
class Breakdown:
    """CPU microseconds per transaction of one side's sans-I/O work, no sockets and no asyncio.

    ``codec_us``: decoding what arrives and encoding what leaves (messages built
    beforehand). ``sans_io_us``: the whole path through a :class:`PfcpEndpoint`
    (``receive_datagram``, ``next_event``, ``send_request``/``send_response``,
    ``datagrams_to_send``) plus the application's part (building the SER or its
    response, checking the answer); the codec is included.
    """

    workload: str
    side: str
    codec_us: float
    sans_io_us: float

    @property
    def logic_us(self) -> float:
        """Endpoint, transaction and application logic: the sans-I/O path without the codec."""
        return self.sans_io_us - self.codec_us


def _best(run_once: Callable[[], float], repeats: int) -> float:
    return min(run_once() for _ in range(repeats))


def breakdown(
    workload: str, ser: pfcp.SessionEstablishmentRequest, n: int = 20_000, repeats: int = 3
) -> list[Breakdown]:
    """Time the server's and the client's sans-I/O work for ``n`` transactions
    (best of ``repeats``); returns [server, client]."""
    if not 1 <= n < SEQUENCE_MODULO:
        raise ValueError("n must be between 1 and 2**24 - 1")
    clock = time.perf_counter
    encode, decode = pfcp.encode, pfcp.decode
    client_addr: Address = (HOST, 40001)
    server_addr: Address = (HOST, 40002)
    now = 0.0
    session = workload != "heartbeat"

    # What travels: requests as the client sends them, responses as the server sends them.
    factory = MessageFactory(workload, ser)
    requests = [dataclasses.replace(factory.make(), sequence=i) for i in range(1, n + 1)]
    request_bytes = [encode(msg) for msg in requests]
    app = Server()
    responses: list[Message] = []
    for msg in requests:
        event = RequestReceived(client_addr, msg)
        answer = (
            app.answer(event)
            if session
            else pfcp.HeartbeatResponse(recovery_time_stamp=pfcp.RecoveryTimeStamp(RECOVERY_TIME_STAMP))
        )
        assert answer is not None
        responses.append(dataclasses.replace(answer, sequence=msg.sequence))
    response_bytes = [encode(msg) for msg in responses]

    def server_codec() -> float:
        t0 = clock()
        for data, response in zip(request_bytes, responses, strict=True):
            decode(data)
            encode(response)
        return clock() - t0

    def server_path() -> float:
        endpoint = PfcpEndpoint(node_config(SERVER_NODE_ID, DEFAULT_T1, DEFAULT_N1))
        application = Server()
        if session:  # the association the endpoint requires for session requests
            setup = pfcp.AssociationSetupRequest(
                sequence=SEQUENCE_MODULO - 1,
                node_id=pfcp.NodeID(CLIENT_NODE_ID),
                recovery_time_stamp=pfcp.RecoveryTimeStamp(RECOVERY_TIME_STAMP),
            )
            endpoint.receive_datagram(encode(setup), client_addr, now)
            while endpoint.next_event() is not None:
                pass
            endpoint.datagrams_to_send()
        answered = 0
        t0 = clock()
        for data in request_bytes:
            endpoint.receive_datagram(data, client_addr, now)
            event = endpoint.next_event()
            if isinstance(event, RequestReceived):
                answer = application.answer(event)
                assert answer is not None
                endpoint.send_response(event, answer, now)
            answered += len(endpoint.datagrams_to_send())
        elapsed = clock() - t0
        if answered != n:
            raise BenchError(f"sans-I/O server answered {answered} of {n} {workload} requests")
        return elapsed

    def client_codec() -> float:
        t0 = clock()
        for msg, data in zip(requests, response_bytes, strict=True):
            encode(msg)
            decode(data)
        return clock() - t0

    def client_path() -> float:
        endpoint = PfcpEndpoint(node_config(CLIENT_NODE_ID, DEFAULT_T1, DEFAULT_N1))
        fresh = MessageFactory(workload, ser)  # CP SEIDs 1..n again, as the responses expect
        right = 0
        t0 = clock()
        for data in response_bytes:
            endpoint.send_request(fresh.make(), server_addr, now)
            endpoint.datagrams_to_send()
            endpoint.receive_datagram(data, server_addr, now)
            event = endpoint.next_event()
            if isinstance(event, ResponseReceived) and fresh.check(event.request, event.response):
                right += 1
        elapsed = clock() - t0
        if right != n:
            raise BenchError(f"sans-I/O client got {right} right answers of {n} {workload} requests")
        return elapsed

    # The prepared messages are not part of the work: keep the garbage collector
    # from scanning them again and again (gc stays on for what the work allocates).
    gc.collect()
    gc.freeze()
    try:
        us = 1e6 / n
        return [
            Breakdown(workload, "server", _best(server_codec, repeats) * us, _best(server_path, repeats) * us),
            Breakdown(workload, "client", _best(client_codec, repeats) * us, _best(client_path, repeats) * us),
        ]
    finally:
        gc.unfreeze()


# --------------------------------------------------------------------------
# The server


class Server:
    """The application side of the server node: answers SERs (sync or async)."""

    def __init__(self, node_id: IPv4Address = SERVER_NODE_ID) -> None:
        self.node_id = pfcp.NodeID(node_id)
        self.up_ipv4 = node_id
        self.handler_mode = "sync"
        self.handled = 0
        self.node: PfcpNode | None = None

    def answer(self, event: RequestReceived) -> Message | None:
        msg = event.message
        if not isinstance(msg, pfcp.SessionEstablishmentRequest) or msg.cp_f_seid is None:
            assert self.node is not None
            self.node.reject(event, pfcp.CauseValue.SERVICE_NOT_SUPPORTED)
            return None
        self.handled += 1
        return pfcp.SessionEstablishmentResponse(
            seid=msg.cp_f_seid.seid,
            node_id=self.node_id,
            cause=pfcp.Cause(pfcp.CauseValue.REQUEST_ACCEPTED),
            up_f_seid=pfcp.FSEID(seid=self.handled, ipv4=self.up_ipv4),
        )

    async def answer_async(self, event: RequestReceived) -> Message | None:
        return self.answer(event)

    def handle(self, event: RequestReceived) -> Any:
        """The node's request handler: sync or async, as configured."""
        if self.handler_mode == "async":
            return self.answer_async(event)
        return self.answer(event)

    def stats(self) -> dict[str, Any]:
        assert self.node is not None
        return {"drops": _reasons(self.node.endpoint.drops), "handled": self.handled}


async def _recv(conn: Connection) -> Any:
    """Wait for a message on ``conn`` without blocking the event loop (EOFError if closed)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()
    loop.add_reader(fd, lambda: None if ready.done() else ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(fd)
    return conn.recv()


async def _serve(conn: Connection, t1: float, n1: int, rcvbuf: int | None) -> None:
    server = Server()
    node = PfcpNode(node_config(SERVER_NODE_ID, t1, n1), handler=server.handle)
    server.node = node
    address = await node.start(HOST, 0)
    loop = asyncio.get_running_loop()
    effective = socket_rcvbuf(node.socket, rcvbuf)
    conn.send(("ready", {"address": address, "pid": os.getpid(), "loop": loop_name(loop), "rcvbuf": effective}))
    try:
        while True:
            try:
                command, arg = await _recv(conn)
            except EOFError:
                return  # the orchestrator is gone
            if command == "handler":
                server.handler_mode = arg
                conn.send(("ok", None))
            elif command == "stats":
                conn.send(("stats", server.stats()))
            elif command == "stop":
                conn.send(("stats", server.stats()))
                return
            else:
                conn.send(("error", f"unknown command {command!r}"))
    finally:
        node.close()


async def _client(conn: Connection, target: Target, ser: pfcp.SessionEstablishmentRequest) -> None:
    loop = asyncio.get_running_loop()
    conn.send(("ready", {"pid": os.getpid(), "loop": loop_name(loop)}))
    while True:
        try:
            command, arg = await _recv(conn)
        except EOFError:
            return
        if command == "run":
            conn.send(("result", await run_case(arg, target, ser)))
        elif command == "stop":
            conn.send(("ok", None))
            return
        else:
            conn.send(("error", f"unknown command {command!r}"))


def _child(name: str, conn: Connection, profile_dir: str | None, body: Callable[[], Any]) -> None:
    """Run ``body`` (an ``asyncio.run`` call) and report a crash to the orchestrator."""
    profiler = cProfile.Profile() if profile_dir else None
    try:
        if profiler is not None:
            profiler.enable()
        body()
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except OSError:
            pass
        raise
    finally:
        if profiler is not None and profile_dir:
            profiler.disable()
            profiler.dump_stats(os.path.join(profile_dir, f"{name}.pstats"))


def server_process(conn: Connection, t1: float, n1: int, rcvbuf: int | None, profile_dir: str | None) -> None:
    """Entry point of the server process."""
    _child("server", conn, profile_dir, lambda: asyncio.run(_serve(conn, t1, n1, rcvbuf)))


def client_process(conn: Connection, target: Target, ser_path: str | None, profile_dir: str | None) -> None:
    """Entry point of the client process."""
    ser, _ = load_ser(Path(ser_path) if ser_path else None)
    _child("client", conn, profile_dir, lambda: asyncio.run(_client(conn, target, ser)))


# --------------------------------------------------------------------------
# Orchestration


class _Child:
    """A spawned process and the pipe to it; every wait is bounded."""

    def __init__(self, name: str, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.name = name
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child_conn, *args), name=f"pfcp-bench-{name}", daemon=True)
        self.process.start()
        child_conn.close()

    def expect(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise BenchError(f"the {self.name} process did not answer within {timeout:.0f} s")
        try:
            kind, payload = self.conn.recv()
        except EOFError:
            raise BenchError(f"the {self.name} process exited (code {self.process.exitcode})") from None
        if kind == "error":
            raise BenchError(f"the {self.name} process failed:\n{payload}")
        return payload

    def call(self, command: str, arg: Any = None, timeout: float = COMMAND_TIMEOUT) -> Any:
        self.conn.send((command, arg))
        return self.expect(timeout)

    def stop(self) -> None:
        """Ask the process to stop, then terminate (and kill) it if it does not."""
        if self.process.is_alive():
            try:
                self.call("stop", timeout=5.0)
            except (BenchError, OSError):
                pass
        self.process.join(5.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        self.conn.close()


@dataclass
class Report:
    """Everything one run produced."""

    environment: dict[str, Any]
    settings: dict[str, Any]
    results: list[CaseResult] = field(default_factory=list)
    breakdowns: list[Breakdown] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def find(self, workload: str, inflight: int, driver: str = "api") -> CaseResult | None:
        for r in self.results:
            if (r.workload, r.inflight, r.driver) == (workload, inflight, driver):
                return r
        return None

    def reference_case(self, workload: str) -> CaseResult | None:
        """The case the breakdown is compared with: api driver, :data:`TARGET_INFLIGHT`
        in flight if measured, else the api case with the most in flight."""
        cases = [r for r in self.results if r.workload == workload and r.driver == "api"]
        exact = [r for r in cases if r.inflight == TARGET_INFLIGHT]
        return (exact or sorted(cases, key=lambda r: r.inflight))[-1] if cases else None

    def measured_us(self, b: Breakdown) -> float | None:
        """The CPU microseconds per transaction measured over sockets for ``b``'s side."""
        r = self.reference_case(b.workload)
        if r is None:
            return None
        return r.server_us_per_tx if b.side == "server" else r.client_us_per_tx

    def target(self) -> dict[str, Any]:
        """Each workload's api-driver rate at :data:`TARGET_INFLIGHT` in flight against :data:`TARGET_TPS`."""
        checks = []
        for workload in self.settings["workloads"]:
            r = self.find(workload, TARGET_INFLIGHT)
            if r is not None and r.mode == "duration":
                checks.append({"workload": workload, "tps": r.tps, "met": r.tps >= TARGET_TPS})
        return {"tps": TARGET_TPS, "inflight": TARGET_INFLIGHT, "driver": "api", "measured": checks}

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "settings": self.settings,
            "results": [{**asdict(r), "all_completed": r.all_completed} for r in self.results],
            "target": self.target(),
            "breakdown": [
                {
                    **asdict(b),
                    "logic_us": b.logic_us,
                    "measured_us": m,
                    "rest_us": None if m is None else m - b.sans_io_us,
                }
                for b in self.breakdowns
                for m in [self.measured_us(b)]
            ],
            "notes": self.notes,
        }


def environment() -> dict[str, Any]:
    """Python, CPU, date, load, and how the codec and event loop run."""
    compiled: list[str] = []
    try:
        from pfcp import _accel  # the optional compiled codec (absent in older checkouts)

        compiled = _accel.compiled_modules()
    except ImportError:
        pass
    return {
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_start": _loadavg(),
        "uvloop_installed": find_spec("uvloop") is not None,
        "codec_compiled_modules": compiled,
        "edgecups_pure": os.environ.get("EDGECUPS_PURE", ""),
        "gc_enabled": gc.isenabled(),
    }


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def case_timeout(spec: CaseSpec, t1: float, n1: int) -> float:
    """How long the orchestrator waits for one case."""
    work = spec.warmup + spec.duration if spec.count is None else spec.count * 0.01
    return COMMAND_TIMEOUT * 3 + work + (t1 * (n1 + 1) + 5.0) * 1.5 + (spec.count or 0) * 0.01


def run(
    *,
    workloads: Sequence[str] = DEFAULT_WORKLOADS,
    inflight: Sequence[int] = DEFAULT_INFLIGHT,
    drivers: Sequence[str] = ("api",),
    duration: float = DEFAULT_DURATION,
    warmup: float = DEFAULT_WARMUP,
    count: int | None = None,
    t1: float = DEFAULT_T1,
    n1: int = DEFAULT_N1,
    rcvbuf: int | None = None,
    golden_path: Path | None = GOLDEN_SER_PATH,
    profile_dir: Path | None = None,
    breakdown_n: int | None = 20_000,
    progress: Callable[[CaseResult], None] | None = None,
) -> Report:
    """Start the two processes, run every (workload, driver, inflight) case, stop them."""
    _, ser_source = load_ser(golden_path)  # the client loads it again; this checks it early
    report = Report(
        environment(),
        {
            "workloads": list(workloads),
            "inflight": list(inflight),
            "drivers": list(drivers),
            "duration_s": None if count is not None else duration,
            "warmup_s": None if count is not None else warmup,
            "count": count,
            "t1_s": t1,
            "n1": n1,
            "rcvbuf_requested": rcvbuf,
            "ser": ser_source,
            "host": HOST,
            "start_method": "spawn",
            "breakdown_transactions": breakdown_n,
        },
    )
    profile = None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        profile = str(profile_dir)
    children: list[_Child] = []
    try:
        server = _Child("server", server_process, (t1, n1, rcvbuf, profile))
        children.append(server)
        server_info = server.expect(START_TIMEOUT)
        report.settings["server_rcvbuf"] = server_info["rcvbuf"]
        target = Target(tuple(server_info["address"]), server_info["pid"], t1, n1, rcvbuf)
        ser_arg = str(golden_path) if golden_path is not None and golden_path.is_file() else None
        client = _Child("client", client_process, (target, ser_arg, profile))
        children.append(client)
        client_info = client.expect(START_TIMEOUT)
        report.environment["event_loop"] = {"server": server_info["loop"], "client": client_info["loop"]}
        for workload in workloads:
            server.call("handler", "async" if workload == "ser-async" else "sync")
            for driver in drivers:
                for n in inflight:
                    spec = CaseSpec(workload, n, driver, duration, warmup, count)
                    before = server.call("stats")
                    result: CaseResult = client.call("run", spec, timeout=case_timeout(spec, t1, n1))
                    after = server.call("stats")
                    result.server_drops = {
                        reason: after["drops"][reason] - before["drops"].get(reason, 0)
                        for reason in after["drops"]
                        if after["drops"][reason] != before["drops"].get(reason, 0)
                    }
                    result.server_handled = after["handled"] - before["handled"]
                    report.settings["client_rcvbuf"] = result.client_rcvbuf
                    report.results.append(result)
                    if progress is not None:
                        progress(result)
    finally:
        for child in reversed(children):
            child.stop()
    if breakdown_n is not None:
        ser, _ = load_ser(golden_path)
        for workload in dict.fromkeys("ser" if w == "ser-async" else w for w in workloads):
            report.breakdowns.extend(breakdown(workload, ser, breakdown_n))
    report.environment["loadavg_end"] = _loadavg()
    if profile_dir is not None:
        report.notes.append(f"cProfile statistics written to {profile_dir}/server.pstats and client.pstats")
    for r in report.results:
        if not r.all_completed:
            report.notes.append(
                f"{r.workload}/{r.driver}/{r.inflight}: {r.sent} sent, {r.answered} answered, "
                f"{r.bad_responses} wrong answers, {r.timeouts} timeouts"
            )
        report.notes.extend(f"{r.workload}/{r.driver}/{r.inflight}: {note}" for note in r.notes)
        if r.other_cpu is not None and r.other_cpu >= OTHER_LOAD_NOTE:
            report.notes.append(
                f"{r.workload}/{r.driver}/{r.inflight}: other processes kept {r.other_cpu:.2f} cores busy during "
                "the window: the rate is lower than on an idle machine"
            )
        lost = (r.client_kernel_drops or 0) + (r.server_kernel_drops or 0)
        if r.retransmitted or lost:
            report.notes.append(
                f"{r.workload}/{r.driver}/{r.inflight}: {r.retransmitted} requests needed a retransmission "
                f"(T1 = {t1} s); the kernel dropped {lost} datagrams (receive buffer full). Those requests "
                f"were stuck for T1, so fewer than {r.inflight} were really in flight; --rcvbuf 4194304 "
                "enlarges the socket buffers"
            )
    return report


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _fmt_int(value: int | None) -> str:
    return "?" if value is None else str(value)


def _pair(client: float | None, server: float | None, scale: float = 1.0, unit: str = "") -> str:
    def one(x: float | None) -> str:
        return "-" if x is None else f"{x * scale:.0f}{unit}"

    return f"{one(client)}/{one(server)}"


def format_row(r: CaseResult) -> str:
    """One result as a table row (see :data:`HEADER`)."""
    duplicates = sum(n for reason, n in r.server_drops.items() if reason.startswith("duplicate"))
    return (
        f"{r.workload:<10} {r.driver:<8} {r.inflight:>8} {r.tps:>10,.0f} {_fmt(r.p50_ms, '.3f'):>8} "
        f"{_fmt(r.p99_ms, '.3f'):>8} {_fmt(r.max_ms, '.2f'):>8} "
        f"{_pair(r.client_cpu, r.server_cpu, 100, '%'):>11} "
        f"{_pair(r.client_sys_share, r.server_sys_share, 100, '%'):>9} {_fmt(r.other_cpu, '.2f'):>5} "
        f"{_pair(r.client_us_per_tx, r.server_us_per_tx):>11} "
        f"{r.completed:>8} {r.timeouts:>5} {r.retransmitted:>5} {duplicates:>5} "
        f"{_fmt_int(r.client_kernel_drops):>4}/{_fmt_int(r.server_kernel_drops):<4}"
    )


HEADER = (
    f"{'workload':<10} {'driver':<8} {'inflight':>8} {'tx/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
    f"{'cpu c/s':>11} {'sys c/s':>9} {'other':>5} {'us/tx c/s':>11} {'samples':>8} {'tmo':>5} {'retx':>5} "
    f"{'dups':>5} {'kdrop c/s'}"
)


def format_report(report: Report) -> str:
    """The human-readable report."""
    env, s = report.environment, report.settings
    loops = env.get("event_loop", {})
    compiled = env["codec_compiled_modules"]
    method = (
        f"{s['count']} transactions per case, no warm-up"
        if s["count"] is not None
        else f"{s['warmup_s']} s warm-up, then a {s['duration_s']} s window per case"
    )
    asked = "system default" if s["rcvbuf_requested"] is None else f"--rcvbuf {s['rcvbuf_requested']}"
    lines = [
        "PFCP node benchmark: request/response transactions between two processes over loopback",
        f"  python   {env['python']}",
        f"  cpu      {env['cpu']} ({env['cpus']} logical CPUs)",
        f"  date     {env['date']}",
        f"  load     {env.get('loadavg_start')} at start, {env.get('loadavg_end')} at end (1/5/15 min)",
        f"  loop     server {loops.get('server', '?')}; client {loops.get('client', '?')}; "
        f"uvloop {'installed, not used' if env['uvloop_installed'] else 'not installed'}",
        f"  codec    {'compiled: ' + str(len(compiled)) + ' modules' if compiled else 'pure Python'}"
        + (f" (EDGECUPS_PURE={env['edgecups_pure']})" if env["edgecups_pure"] else ""),
        f"  method   {method}; T1 {s['t1_s']} s, N1 {s['n1']}; gc {'on' if env['gc_enabled'] else 'off'}",
        f"  sockets  SO_RCVBUF server {s.get('server_rcvbuf')} B, client {s.get('client_rcvbuf')} B as the kernel "
        f"reports it ({asked})",
        f"  ser      {s['ser']}",
        "",
        HEADER,
        "-" * len(HEADER),
    ]
    lines.extend(format_row(r) for r in report.results)
    lines += [
        "",
        "cpu c/s: CPU of the client/server process over the window (100% = one core). sys c/s: the share of",
        "that CPU spent in the kernel (socket calls, loopback delivery, wake-ups). other: cores the rest of the",
        "machine kept busy meanwhile (competing load; loopback softirq work counts too). us/tx c/s: CPU",
        "microseconds each process spent per transaction (less sensitive to load than tx/s). samples:",
        "transactions completed in the window. tmo: timeouts. retx: requests that took >= T1 (retransmitted).",
        "dups: retransmissions the server saw. kdrop: datagrams the kernel dropped at the client/server socket.",
    ]
    if report.breakdowns:
        lines += [
            "",
            "Where the CPU goes, in microseconds per transaction. codec and endpoint+app are timed in-process",
            f"without sockets or asyncio ({report.settings['breakdown_transactions']} transactions, best of 3); "
            "measured is the",
            f"process CPU per transaction of the api case at {TARGET_INFLIGHT} in flight (or the most in flight run);",
            "the rest is what the asyncio adapter, the event loop, the socket calls and the kernel cost.",
            f"{'workload':<10} {'side':<7} {'codec':>8} {'endpoint+app':>13} {'sans-I/O':>9} "
            f"{'measured':>9} {'rest':>8}",
        ]
        for b in report.breakdowns:
            measured = report.measured_us(b)
            rest = None if measured is None else measured - b.sans_io_us
            lines.append(
                f"{b.workload:<10} {b.side:<7} {b.codec_us:>8.1f} {b.logic_us:>13.1f} {b.sans_io_us:>9.1f} "
                f"{_fmt(measured, '.1f'):>9} {_fmt(rest, '.1f'):>8}"
            )
    target = report.target()
    lines.append("")
    for check in target["measured"]:
        verdict = "met" if check["met"] else "NOT met"
        lines.append(
            f"Target: >= {TARGET_TPS:,} tx/s ({check['workload']}, api driver, {TARGET_INFLIGHT} in flight): "
            f"measured {check['tps']:,.0f} ({verdict})"
        )
    if report.notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in report.notes)
    return "\n".join(lines)


def _csv(kind: Callable[[str], Any], choices: Sequence[Any] | None = None) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError("empty list")
        for v in values:
            if choices is not None and v not in choices:
                raise argparse.ArgumentTypeError(f"{v!r} is not one of {', '.join(map(str, choices))}")
            if isinstance(v, int) and v < 1:
                raise argparse.ArgumentTypeError("in-flight counts must be at least 1")
        return values

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=None, help=f"measured seconds per case ({DEFAULT_DURATION})")
    parser.add_argument("--warmup", type=float, default=None, help=f"warm-up seconds per case ({DEFAULT_WARMUP})")
    parser.add_argument(
        "--count", type=int, default=None, help="run exactly this many transactions per case instead of a duration"
    )
    parser.add_argument(
        "--inflight", type=_csv(int), default=list(DEFAULT_INFLIGHT), help="outstanding requests (default 1,64,512)"
    )
    parser.add_argument(
        "--workload",
        type=_csv(str, WORKLOADS),
        default=list(DEFAULT_WORKLOADS),
        help=f"comma-separated, from {','.join(WORKLOADS)} (default heartbeat,ser)",
    )
    parser.add_argument(
        "--driver", type=_csv(str, DRIVERS), default=["api"], help="client driver(s): api (default), endpoint"
    )
    parser.add_argument("--t1", type=float, default=DEFAULT_T1, help=f"T1 seconds (default {DEFAULT_T1})")
    parser.add_argument("--n1", type=int, default=DEFAULT_N1, help=f"N1 (default {DEFAULT_N1})")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: --duration {QUICK_DURATION} --warmup {QUICK_WARMUP}"
    )
    parser.add_argument(
        "--rcvbuf",
        type=int,
        default=None,
        metavar="BYTES",
        help="set SO_RCVBUF on both sockets (default: leave the system default, as PfcpNode does)",
    )
    parser.add_argument("--golden", type=Path, default=GOLDEN_SER_PATH, help="the golden SER hex file")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="run both processes under cProfile")
    parser.add_argument(
        "--no-breakdown", action="store_true", help="skip the in-process timing of the codec and endpoint"
    )
    args = parser.parse_args(argv)

    duration = args.duration if args.duration is not None else QUICK_DURATION if args.quick else DEFAULT_DURATION
    warmup = args.warmup if args.warmup is not None else QUICK_WARMUP if args.quick else DEFAULT_WARMUP
    if duration <= 0 or warmup < 0 or args.t1 <= 0 or args.n1 < 0:
        parser.error("--duration and --t1 must be positive, --warmup and --n1 not negative")
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")

    def progress(r: CaseResult) -> None:
        print(f"  {r.workload}/{r.driver}/{r.inflight}: {r.tps:,.0f} tx/s", file=sys.stderr, flush=True)

    try:
        report = run(
            workloads=args.workload,
            inflight=args.inflight,
            drivers=args.driver,
            duration=duration,
            warmup=warmup,
            count=args.count,
            t1=args.t1,
            n1=args.n1,
            rcvbuf=args.rcvbuf,
            golden_path=args.golden,
            profile_dir=args.profile,
            breakdown_n=None if args.no_breakdown else args.count or (2_000 if args.quick else 20_000),
            progress=progress,
        )
    except BenchError as exc:
        print(f"pfcp_node benchmark: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0 if all(r.all_completed for r in report.results) else 1


if __name__ == "__main__":
    sys.exit(main())
