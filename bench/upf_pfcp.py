"""UPF agent benchmark: PFCP session establishments per second with sessions already
installed, and memory per session.

Run from the repository root::

    .venv/bin/python bench/upf_pfcp.py                          # levels 0, 10k, 50k, 100k
    .venv/bin/python bench/upf_pfcp.py --levels 0,1000 --count 500   # a quick run
    .venv/bin/python bench/upf_pfcp.py --tracemalloc --json out.json

What is measured
----------------
Two processes on 127.0.0.1 (``multiprocessing``, spawn), plus the one you start,
which only orchestrates and reads ``/proc``:

* the **agent**: :class:`user_plane.agent.UpfAgent` on its own asyncio loop. Its
  dataplane is the software driver's forwarding engine,
  :class:`user_plane.forward.Forwarder`, behind a thin Driver adapter
  (:class:`ForwarderDriver`): every install compiles and indexes the rules as the
  software driver does, but no TUN device or GTP-U socket exists (they would need a
  network namespace and cost nothing per session). The output says so.
* the **CP client**: a lean PFCP requester on one UDP socket (:class:`LeanClient`:
  a full :class:`pfcp.aio.PfcpNode` costs ~200 µs of CPU per request, which made
  the load generator the bottleneck). It associates, encodes a batch before timing,
  then keeps ``--inflight`` (64) requests in flight, matching responses by sequence
  number and retransmitting after T1 (5 s, N1 3) as §6.4 says. Each Session
  Establishment Request has 2 PDRs (uplink with CH F-TEID allocation, downlink on
  the UE address), 2 FARs, 1 QER and 1 URR, a new CP F-SEID and a new UE address.
  Every response is checked (Cause 1, header SEID = the CP SEID, UP F-SEID, one
  Created PDR); anything else counts in ``bad``.

Method: for each level L (``--levels``), the client fills the agent up to L
sessions (not timed), then times ``--count`` establishments (the rate and latency
percentiles), then deletes those sessions again (also timed: the deletion rate), so
the next level starts from exactly its number of sessions. The agent's CPU time
over the timed window (``/proc/<pid>/stat``) gives CPU microseconds per
establishment, which does not depend on how fast the client is.

The client's CPU time is reported too (``client us/est``): on a small machine the
load generator, also Python, can be what limits the rate. It freezes its prebuilt
requests out of its cyclic GC while a batch runs (gc.freeze), as a load generator
should not pay for its own bookkeeping.

Memory per session: the agent process's RSS (``VmRSS``) right after filling to the
highest level, minus its RSS before the first session, divided by the sessions
added. Both are taken after a ``gc.collect()`` and after the PFCP node's response
cache has been emptied (it keeps each response for the retransmission holding
time, T1 x (N1 + 1) = 20 s here, TS 29.244 §6.4, then drops it: a cost per request
per 20 s, not per session). What it includes: the agent's session table and desired
state, the forwarder's compiled rules, lookup tables, meters and token buckets, the
ID allocators, and the allocator's overhead and fragmentation (pymalloc arenas,
dict resizing slack). The RSS at the end (after every level's timed establishments
and deletions, same number of sessions) is printed too: churn leaves freed memory
in the allocator's pools, which the process reuses but does not give back.
``--tracemalloc`` also reports the Python heap delta traced by tracemalloc (slower;
rates measured with it on are lower).

The reference point (open5gs-upfd, from the issue): 21,000 establishments/s into an
empty UPF, 3,700/s at 40,000 sessions installed, 13.1 KiB per session. Target:
>= 10,000/s at every level, no slowdown with the level, < 4 KiB per session.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing
import os
import select
import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pfcp
from bench.pfcp_node import cpu_model, percentile, process_cpu_seconds
from pfcp.events import Address
from user_plane.driver import DriverEvent, UsageReport
from user_plane.forward import Forwarder
from user_plane.session import SessionState

HOST = "127.0.0.1"
CP_NODE = pfcp.NodeID(IPv4Address(HOST))
N3 = IPv4Address("198.18.1.1")
#: UE addresses are table keys only (no packet is sent): drawn from 198.18.0.0/15 (RFC 2544).
UE_BASE = IPv4Address("198.18.0.1")
MAX_SESSIONS = 131_000
DEFAULT_LEVELS = (0, 10_000, 50_000, 100_000)
DEFAULT_COUNT = 10_000
DEFAULT_INFLIGHT = 64
START_TIMEOUT = 30.0
TARGET_RATE = 10_000.0
TARGET_BYTES = 4096
OPEN5GS = "open5gs-upfd: 21,000/s into an empty UPF, 3,700/s at 40,000 installed, 13.1 KiB/session"
DATAPLANE = "user_plane.forward.Forwarder behind a thin Driver adapter (no TUN devices, no GTP-U sockets)"


class BenchError(RuntimeError):
    """A process failed or answered something unexpected."""


# --------------------------------------------------------------------------
# The agent process


class ForwarderDriver:
    """The software driver's forwarding engine as a Driver, without sockets or TUN devices.

    Installs cost what they cost in :class:`user_plane.software.SoftwareDriver`
    (which calls the same :meth:`Forwarder.install`, then looks up the next URR
    deadline to arm its timer: so does this adapter); datagrams an install wants
    sent on N3 (End Markers, released buffers: none in this benchmark) are counted
    and dropped.
    """

    name = "forwarder"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.forwarder = Forwarder(N3, None, ("internet",))
        self.unsent = 0
        self._handler: Callable[[DriverEvent], None] | None = None

    @property
    def features(self) -> pfcp.UPFeatures:
        return self.forwarder.features

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.forwarder = Forwarder(N3, None, ("internet",))

    def set_event_handler(self, handler: Callable[[DriverEvent], None]) -> None:
        self._handler = handler

    def install(self, state: SessionState, end_marker_fars: Collection[int] = ()) -> None:
        self.unsent += len(self.forwarder.install(state, self.clock(), end_marker_fars))
        # As SoftwareDriver does after a rule change: when must the URR timer fire next?
        self.forwarder.next_deadline()

    def remove(self, up_seid: int) -> list[UsageReport]:
        return self.forwarder.remove(up_seid, self.clock())

    def query(
        self, up_seid: int, urr_ids: Collection[int] | None = None, reference: int | None = None
    ) -> list[UsageReport]:
        return self.forwarder.query(up_seid, urr_ids, self.clock(), reference)

    def take_removed_reports(self, up_seid: int) -> list[UsageReport]:
        return self.forwarder.take_removed_reports(up_seid)

    def drop_buffered(self, up_seid: int) -> int:
        return self.forwarder.drop_buffered(up_seid)

    def installed(self) -> Mapping[int, SessionState]:
        return self.forwarder.installed()


def rss_kib(pid: int) -> int | None:
    """A process's resident set size (VmRSS) in KiB, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def agent_config() -> Any:
    from user_plane.config import parse_config

    return parse_config(
        {
            "node_id": HOST,
            "n4": {"address": HOST},
            "n3": str(N3),
            "n6": {"internet": {"interface": "n6-bench", "ue_pool": "198.19.0.0/16"}},
            "allowed_cps": [HOST],
            "log_level": "warning",
            "capacity": {"max_sessions": MAX_SESSIONS},
            "timers": {"t1": 5.0, "n1": 3, "heartbeat_interval": None},
        }
    )


async def _agent_main(conn: Connection, trace: bool) -> None:
    from user_plane.agent import UpfAgent

    if trace:
        import tracemalloc

        tracemalloc.start()
    driver = ForwarderDriver()
    agent = UpfAgent(agent_config(), driver)
    address = await agent.start(port=0)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    collecting = {"total": 0.0, "max": 0.0, "started": 0.0}  # the cyclic GC's pauses (seconds)

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting["started"] = time.perf_counter()
        else:
            pause = time.perf_counter() - collecting["started"]
            collecting["total"] += pause
            collecting["max"] = max(collecting["max"], pause)

    gc.callbacks.append(on_gc)

    def command() -> None:
        what = conn.recv()
        if what == "stop":
            done.set()
            return
        cached = 0 if agent.node is None else len(agent.node.endpoint._rx)
        gc_seconds, gc_max = collecting["total"], collecting["max"]  # before our own collect below
        collecting["max"] = 0.0
        if what == "settle" and agent.node is not None:
            # The PFCP node keeps each response for the retransmission holding time
            # (T1 x (N1 + 1), TS 29.244 §6.4) and drops it then: not a per-session cost.
            agent.node.endpoint._rx.expire(math.inf)
        gc.collect()
        traced = None
        if trace:
            import tracemalloc

            traced = tracemalloc.get_traced_memory()[0]
        conn.send(
            {
                "sessions": len(agent.sessions),
                "installed": len(driver.installed()),
                "rss_kib": rss_kib(os.getpid()),
                "traced_bytes": traced,
                "unsent": driver.unsent,
                "responses_cached": cached,
                "gc_seconds": gc_seconds,
                "gc_max_pause_s": gc_max,
                "counters": dict(agent.counters),
            }
        )

    loop.add_reader(conn.fileno(), command)
    conn.send(("ready", address, os.getpid()))
    await done.wait()
    gc.callbacks.remove(on_gc)
    loop.remove_reader(conn.fileno())
    await agent.stop()


def agent_process(conn: Connection, trace: bool) -> None:
    try:
        asyncio.run(_agent_main(conn, trace))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        raise


# --------------------------------------------------------------------------
# The CP client process


def session_request(index: int) -> pfcp.SessionEstablishmentRequest:
    """Session ``index``: 2 PDRs, 2 FARs, 1 QER, 1 URR; its own CP SEID and UE address."""
    ue = UE_BASE + index
    ni = pfcp.NetworkInstance("internet")
    uplink = pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(1),
        precedence=pfcp.Precedence(200),
        pdi=pfcp.PDI(
            source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
            local_f_teid=pfcp.FTEID(choose_v4=True, choose_id=1),
            network_instance=ni,
            ue_ip_address=(pfcp.UEIPAddress(ipv4=ue),),
        ),
        outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
        far_id=pfcp.FARID(1),
        qer_id=(pfcp.QERID(1),),
        urr_id=(pfcp.URRID(1),),
    )
    downlink = pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(2),
        precedence=pfcp.Precedence(200),
        pdi=pfcp.PDI(
            source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.CORE),
            network_instance=ni,
            ue_ip_address=(pfcp.UEIPAddress(ipv4=ue, is_destination=True),),
        ),
        far_id=pfcp.FARID(2),
        qer_id=(pfcp.QERID(1),),
        urr_id=(pfcp.URRID(1),),
    )
    to_core = pfcp.CreateFAR(
        far_id=pfcp.FARID(1),
        apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
        forwarding_parameters=pfcp.ForwardingParameters(
            destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.CORE), network_instance=ni
        ),
    )
    to_access = pfcp.CreateFAR(
        far_id=pfcp.FARID(2),
        apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW),
        forwarding_parameters=pfcp.ForwardingParameters(
            destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
            outer_header_creation=pfcp.OuterHeaderCreation(
                pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4,
                teid=0x100000 + index,
                ipv4=IPv4Address("198.18.1.2"),
            ),
        ),
    )
    return pfcp.SessionEstablishmentRequest(
        node_id=CP_NODE,
        cp_f_seid=pfcp.FSEID(index + 1, ipv4=IPv4Address(HOST)),
        create_pdr=(uplink, downlink),
        create_far=(to_core, to_access),
        create_qer=(
            pfcp.CreateQER(qer_id=pfcp.QERID(1), gate_status=pfcp.GateStatus(), mbr=pfcp.MBR(ul=100_000, dl=200_000)),
        ),
        create_urr=(
            pfcp.CreateURR(
                urr_id=pfcp.URRID(1),
                measurement_method=pfcp.MeasurementMethod(pfcp.MeasurementMethodFlags.VOLUM),
                reporting_triggers=pfcp.ReportingTriggers(pfcp.ReportingTriggersFlags.VOLTH),
                volume_threshold=pfcp.VolumeThreshold(total=10**9),
            ),
        ),
    )


@dataclass
class Batch:
    """What one batch of requests did (sent by the client to the orchestrator)."""

    kind: str
    count: int
    ok: int = 0
    bad: int = 0
    timeouts: int = 0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # the client's CPU time while the batch ran (not building or encoding it)
    latencies_ms: list[float] = field(default_factory=list)
    causes: dict[int, int] = field(default_factory=dict)


def _check_establishment(request: pfcp.SessionEstablishmentRequest, response: pfcp.Message) -> int | None:
    """The UP SEID of a right answer, None for a wrong one."""
    if not isinstance(response, pfcp.SessionEstablishmentResponse) or response.cause.value != 1:
        return None
    if response.seid != request.cp_f_seid.seid or response.up_f_seid is None or len(response.created_pdr) != 1:
        return None
    return response.up_f_seid.seid


class LeanClient:
    """The CP side as a lean PFCP requester on one UDP socket, not a full PfcpNode.

    Why: a general PFCP node in Python spends ~200 µs of CPU per request (futures,
    tasks, transaction tables, encoding), so on a 2-core machine the load generator
    and not the agent limited the rate. This client encodes every request of a batch
    before the timed window (with its sequence number), then keeps ``inflight``
    requests outstanding: a response (matched by sequence number, §6.4) is decoded and
    checked and the next request goes out. Requests are retransmitted unchanged after
    ``T1`` up to ``N1`` times (the agent answers a retransmission from its cache, as
    §6.4 requires) and then count as timeouts. It associates first, as a CP function
    must (§6.2.6); no heartbeat is configured on either side.
    """

    T1 = 5.0
    N1 = 3

    def __init__(self, up: Address) -> None:
        self.up = up
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((HOST, 0))
        self.sock.connect(up)
        self.sequence = 0
        self.buffer = bytearray(65535)

    def next_sequence(self) -> int:
        self.sequence = self.sequence % 0xFFFFFF + 1  # 24 bits (§7.2.2.2), never 0
        return self.sequence

    def associate(self) -> None:
        request = pfcp.AssociationSetupRequest(
            node_id=CP_NODE,
            recovery_time_stamp=pfcp.RecoveryTimeStamp.from_unix(time.time()),
            sequence=self.next_sequence(),
        )
        batch = self.run([(request, pfcp.encode(request))], 1, "associate", [])
        if batch.ok != 1:
            raise BenchError(f"association setup failed: {batch}")

    def close(self) -> None:
        self.sock.close()

    def encode(self, messages: Sequence[pfcp.Message]) -> list[tuple[pfcp.Message, bytes]]:
        """Each request with its sequence number, encoded (done before the timed window)."""
        out = []
        for msg in messages:
            msg = msg.with_sequence(self.next_sequence())
            out.append((msg, pfcp.encode(msg)))
        return out

    def run(self, requests: Sequence[tuple[pfcp.Message, bytes]], inflight: int, kind: str, seids: list[int]) -> Batch:
        """Send ``requests`` with ``inflight`` outstanding; check every response."""
        batch = Batch(kind, len(requests))
        causes: Counter[int] = Counter()
        latencies: list[float] = []
        sock, buffer = self.sock, self.buffer
        pending: dict[int, list[Any]] = {}  # sequence -> [request, data, first sent, last sent, sends]
        position = 0
        clock = time.perf_counter
        started = clock()
        cpu_started = time.process_time()

        def send_next() -> None:
            nonlocal position
            msg, data = requests[position]
            position += 1
            now = clock()
            pending[msg.sequence] = [msg, data, now, now, 1]
            sock.send(data)

        while position < len(requests) and len(pending) < inflight:
            send_next()
        check_at = started + 0.5
        while pending:
            ready, _, _ = select.select((sock,), (), (), 0.5)
            if ready:
                for _ in range(64):
                    try:
                        size = sock.recv_into(buffer, 0, socket.MSG_DONTWAIT)
                    except (BlockingIOError, InterruptedError):
                        break
                    response = pfcp.decode(bytes(buffer[:size]))
                    entry = pending.pop(response.sequence, None)
                    if entry is None:  # an answer to a retransmission already answered
                        continue
                    latencies.append((clock() - entry[2]) * 1000)
                    self._check(entry[0], response, batch, causes, seids)
                    if position < len(requests):
                        send_next()
            now = clock()
            if now >= check_at:
                check_at = now + 0.5
                for sequence, entry in list(pending.items()):
                    if now - entry[3] < self.T1:
                        continue
                    if entry[4] > self.N1:
                        del pending[sequence]
                        batch.timeouts += 1
                        if position < len(requests):
                            send_next()
                    else:
                        entry[3], entry[4] = now, entry[4] + 1
                        sock.send(entry[1])
        batch.elapsed_s = clock() - started
        batch.cpu_s = time.process_time() - cpu_started
        batch.latencies_ms = sorted(latencies)
        batch.causes = dict(causes)
        return batch

    @staticmethod
    def _check(
        request: pfcp.Message, response: pfcp.Message, batch: Batch, causes: Counter[int], seids: list[int]
    ) -> None:
        cause = getattr(response, "cause", None)
        causes[-1 if cause is None else int(cause.value)] += 1
        if isinstance(request, pfcp.SessionEstablishmentRequest):
            seid = _check_establishment(request, response)
            if seid is None:
                batch.bad += 1
            else:
                seids.append(seid)
                batch.ok += 1
        elif isinstance(request, pfcp.SessionDeletionRequest):
            if isinstance(response, pfcp.SessionDeletionResponse) and response.cause.value == 1:
                batch.ok += 1
            else:
                batch.bad += 1
        elif isinstance(response, pfcp.AssociationSetupResponse) and response.cause.value == 1:
            batch.ok += 1
        else:
            batch.bad += 1


def _client_main(conn: Connection, up: Address, inflight: int) -> None:
    client = LeanClient(up)
    client.associate()
    next_index = 0
    timed: list[int] = []  # UP SEIDs of the last timed establishments
    conn.send(("ready", os.getpid()))
    while True:
        what, count = conn.recv()
        if what == "stop":
            break
        messages: list[pfcp.Message]
        if what in ("fill", "establish"):
            messages = [session_request(i) for i in range(next_index, next_index + count)]
            next_index += count
        else:  # delete the last timed establishments
            messages = [pfcp.SessionDeletionRequest(seid=s) for s in timed]
        requests = client.encode(messages)  # built and encoded before timing
        del messages
        # The load generator's own cyclic GC would otherwise traverse every prebuilt request
        # again and again while the batch runs (they all live until it ends).
        gc.collect()
        gc.freeze()
        seids: list[int] = []
        batch = client.run(requests, inflight, what, seids)
        if what == "establish":
            timed = seids
        elif what == "delete":
            timed = []
        del requests
        gc.unfreeze()
        conn.send(asdict(batch))
    client.close()


def client_process(conn: Connection, up: Address, inflight: int) -> None:
    try:
        _client_main(conn, up, inflight)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        raise


# --------------------------------------------------------------------------
# Orchestration


@dataclass
class LevelResult:
    """One level: the timed establishments and deletions at ``installed`` sessions."""

    installed: int
    establishments: int
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    agent_us_per_establishment: float | None
    client_us_per_establishment: float | None
    agent_gc_us_per_establishment: float | None
    agent_gc_max_pause_ms: float
    deletions: int
    deletion_rate: float
    bad: int
    timeouts: int
    causes: dict[int, int]


class _Child:
    def __init__(self, name: str, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.name = name
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=target, args=(child_conn, *args), name=name, daemon=True)
        self.process.start()

    def expect(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise BenchError(f"{self.name} process did not answer within {timeout:.0f} s")
        answer = self.conn.recv()
        if isinstance(answer, tuple) and answer and answer[0] == "error":
            raise BenchError(f"{self.name} process failed:\n{answer[1]}")
        return answer

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send("stop" if self.name == "agent" else ("stop", 0))
            except OSError:
                pass
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def run(levels: Sequence[int], count: int, inflight: int, trace: bool, timeout: float) -> dict[str, Any]:
    """Run the benchmark; returns the report (see :func:`format_report`)."""
    agent = _Child("agent", agent_process, (trace,))
    client: _Child | None = None
    try:
        _, up, agent_pid = agent.expect(START_TIMEOUT)
        client = _Child("client", client_process, (tuple(up), inflight))
        client.expect(START_TIMEOUT)

        def stats(what: str = "stats") -> dict[str, Any]:
            agent.conn.send(what)
            answer: dict[str, Any] = agent.expect(timeout)
            return answer

        def batch(kind: str, n: int) -> dict[str, Any]:
            assert client is not None
            client.conn.send((kind, n))
            answer: dict[str, Any] = client.expect(timeout)
            return answer

        empty = stats("settle")
        full = empty
        results: list[LevelResult] = []
        for level in levels:
            have = stats()["sessions"]
            if level > have:
                filled = batch("fill", level - have)
                if filled["ok"] != level - have:
                    raise BenchError(f"filling to {level}: {filled['ok']} of {level - have} accepted: {filled}")
                full = stats("settle")
            before = stats()
            cpu0 = process_cpu_seconds(agent_pid)
            est = batch("establish", count)
            cpu1 = process_cpu_seconds(agent_pid)
            during = stats()
            dele = batch("delete", est["ok"])
            after = stats()
            if after["sessions"] != before["sessions"]:
                raise BenchError(f"level {level}: {before['sessions']} sessions before, {after['sessions']} after")
            lat = est["latencies_ms"]
            cpu_us = None if cpu0 is None or cpu1 is None or not est["ok"] else (cpu1 - cpu0) / est["ok"] * 1e6
            client_us = est["cpu_s"] / est["ok"] * 1e6 if est["ok"] else None
            results.append(
                LevelResult(
                    installed=before["sessions"],
                    establishments=est["ok"],
                    rate=est["ok"] / est["elapsed_s"] if est["elapsed_s"] else 0.0,
                    p50_ms=percentile(lat, 0.5),
                    p99_ms=percentile(lat, 0.99),
                    agent_us_per_establishment=cpu_us,
                    client_us_per_establishment=client_us,
                    agent_gc_us_per_establishment=(during["gc_seconds"] - before["gc_seconds"]) / est["ok"] * 1e6
                    if est["ok"]
                    else None,
                    agent_gc_max_pause_ms=during["gc_max_pause_s"] * 1000,
                    deletions=dele["ok"],
                    deletion_rate=dele["ok"] / dele["elapsed_s"] if dele["elapsed_s"] else 0.0,
                    bad=est["bad"] + dele["bad"],
                    timeouts=est["timeouts"] + dele["timeouts"],
                    causes=est["causes"],
                )
            )
        end = stats("settle")
        added = full["sessions"] - empty["sessions"]
        memory: dict[str, Any] = {
            "sessions": added,
            "rss_kib_empty": empty["rss_kib"],
            "rss_kib_full": full["rss_kib"],
            "rss_kib_end": end["rss_kib"],
            "sessions_end": end["sessions"],
            "rss_bytes_per_session": None,
            "traced_bytes_per_session": None,
        }
        if added > 0 and empty["rss_kib"] is not None and full["rss_kib"] is not None:
            memory["rss_bytes_per_session"] = (full["rss_kib"] - empty["rss_kib"]) * 1024 / added
        if added > 0 and trace:
            memory["traced_bytes_per_session"] = (full["traced_bytes"] - empty["traced_bytes"]) / added
        return {
            "settings": {
                "levels": list(levels),
                "count": count,
                "inflight": inflight,
                "tracemalloc": trace,
                "dataplane": DATAPLANE,
                "request": "Session Establishment Request: 2 PDRs (one CH F-TEID), 2 FARs, 1 QER, 1 URR",
            },
            "environment": {
                "python": sys.version.split()[0],
                "cpu": cpu_model(),
                "cores": os.cpu_count(),
                "loadavg": list(os.getloadavg()),
            },
            "results": [asdict(r) for r in results],
            "memory": memory,
            "agent_counters": end["counters"],
            "unsent_datagrams": end["unsent"],
            "comparison": OPEN5GS,
            "target": {"rate": TARGET_RATE, "bytes_per_session": TARGET_BYTES},
        }
    finally:
        if client is not None:
            client.stop()
        agent.stop()


def format_report(report: dict[str, Any]) -> str:
    s, env, mem = report["settings"], report["environment"], report["memory"]
    lines = [
        "UPF agent PFCP benchmark (session establishments through PFCP from a CP client in another process)",
        f"dataplane: {s['dataplane']}",
        f"request: {s['request']}; {s['inflight']} in flight; {s['count']} timed per level",
        f"python {env['python']}, {env['cpu']}, {env['cores']} cores, load {env['loadavg']}",
        "",
        f"{'installed':>10} {'est/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'agent us/est':>13} {'(in GC)':>8} "
        f"{'GC max ms':>9} {'client us/est':>14} {'del/s':>9} {'bad':>4}",
    ]
    for r in report["results"]:
        cpu = "-" if r["agent_us_per_establishment"] is None else f"{r['agent_us_per_establishment']:.0f}"
        ccpu = "-" if r["client_us_per_establishment"] is None else f"{r['client_us_per_establishment']:.0f}"
        gcpu = "-" if r["agent_gc_us_per_establishment"] is None else f"{r['agent_gc_us_per_establishment']:.0f}"
        p50 = "-" if r["p50_ms"] is None else f"{r['p50_ms']:.2f}"
        p99 = "-" if r["p99_ms"] is None else f"{r['p99_ms']:.2f}"
        lines.append(
            f"{r['installed']:>10} {r['rate']:>9.0f} {p50:>7} {p99:>7} {cpu:>13} {gcpu:>8} "
            f"{r['agent_gc_max_pause_ms']:>9.1f} {ccpu:>14} {r['deletion_rate']:>9.0f} "
            f"{r['bad'] + r['timeouts']:>4}"
        )
    per = mem["rss_bytes_per_session"]
    lines += [
        "",
        f"memory: agent RSS {mem['rss_kib_empty']} KiB empty, {mem['rss_kib_full']} KiB with {mem['sessions']} "
        "sessions: " + ("-" if per is None else f"{per:.0f} bytes ({per / 1024:.2f} KiB) per session (RSS delta)"),
        f"        (after gc.collect() with the PFCP response cache emptied; RSS at the end, after the timed "
        f"establishments and deletions, with {mem['sessions_end']} sessions: {mem['rss_kib_end']} KiB)",
    ]
    if mem["traced_bytes_per_session"] is not None:
        lines.append(f"        tracemalloc: {mem['traced_bytes_per_session']:.0f} bytes per session (Python heap)")
    rates = [r["rate"] for r in report["results"]]
    verdict = [
        f"rate >= {TARGET_RATE:.0f}/s at every level: {'yes' if rates and min(rates) >= TARGET_RATE else 'NO'}",
        f"< {TARGET_BYTES} bytes per session: {'yes' if per is not None and per < TARGET_BYTES else 'NO'}",
    ]
    lines += ["", "target: " + "; ".join(verdict), f"for comparison: {report['comparison']}"]
    return "\n".join(lines)


def _levels(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or any(v < 0 for v in values) or values != sorted(set(values)):
        raise argparse.ArgumentTypeError("levels must be non-negative and increasing")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--levels", type=_levels, default=list(DEFAULT_LEVELS), help="sessions installed (0,10000,...)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="timed establishments per level")
    parser.add_argument("--inflight", type=int, default=DEFAULT_INFLIGHT, help="requests in flight")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the agent's Python heap")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one batch may take")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON to PATH")
    args = parser.parse_args(argv)
    if args.count < 1 or args.inflight < 1:
        parser.error("--count and --inflight must be at least 1")
    if args.levels[-1] + args.count > MAX_SESSIONS:
        parser.error(f"the highest level plus --count must not exceed {MAX_SESSIONS} sessions")
    report = run(args.levels, args.count, args.inflight, args.tracemalloc, args.timeout)
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
