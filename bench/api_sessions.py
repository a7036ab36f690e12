"""Northbound API benchmark: PDU session creates per second through gRPC, beside the direct figure.

Run from the repository root, as root (it builds network namespaces)::

    .venv/bin/python bench/api_sessions.py                      # 10,000 sessions per phase on SQLite
    .venv/bin/python bench/api_sessions.py --sessions 1000       # a quick run
    .venv/bin/python bench/api_sessions.py --workers 0,1,2       # API phases: in-process, 1 and 2 workers

What is measured
----------------
One control plane, two UPF agents, one database, the phases below in the same run, each
split into ``--rounds`` (8) rounds that take turns (direct, api w=0, api w=1, direct, ...):
the machine's speed changes during a run on a shared host, and interleaving lets every
phase see the same changes. A phase's figures are over all its rounds; the report also
gives api/direct round by round.

* **direct**: ``cp.sessions.establish`` called on the control plane's own loop with
  ``--clients`` (64) establishments in flight: the figure of ``bench/cp_sessions.py``
  (issue 5), measured again here so that both figures see the same machine and load.
* **api w=N**: the same establishments (other subscribers) as ``SessionService.Create``
  calls over gRPC from ``--clients`` (64) clients sharing ``--connections`` (1, as ghz's
  default) connections, each client waiting for its answer before it sends the next, from a
  load-generator process (one per phase for all its rounds, connected before the first):
  ``--client native`` (the default; bench/loadgen/create_load.cc, gRPC C++, see
  bench/native_load.py: the load generator shares the two cores with what it measures, and
  a Python gRPC client spends twice its CPU per call) or ``--client python`` (grpc.aio on
  uvloop, spawned); each builds a round's requests with the API's own builder before the
  round's clock starts, and every answer is parsed and checked; one phase per ``--workers`` count
  (default ``0,1``). w=0 is the API server ``edgecups cp`` runs
  in its own process (control_plane.app.start with the API) on a unix socket; w=N>0 are N
  front-end worker processes (``api: {workers: N}``, control_plane/api/frontend, started
  with the same function ``edgecups cp`` uses) forwarding to this control plane: one on a
  unix socket, more on a TCP loopback port in the cp namespace (shared with SO_REUSEPORT;
  the client process then runs in that namespace).

Reported per phase: creates/s over the wall time, p50/p99 latency, database operations per
commit (the store's group commit: fewer sessions in the control plane at once make smaller
batches, which cost more per session), CPU
microseconds per create of the control plane's process (its loop, store and gRPC
threads), of the front-end workers (summed), of the agents, and (api) of the client
process; then per API phase api/direct and the API's cost, 1 - api/direct, against the
target (issue 6: the API costs < 30%), and the CPU the API adds: the control plane's
beyond the direct figure, and with the workers' CPU counted in.

The control plane runs in this process (as in cp_sessions.py), in the cp namespace;
the agents are ``edgecups upf`` processes in theirs. The database must hold exactly
(1 + API phases) x (``--warmup`` + ``--sessions``) active sessions at the end (checked; a failure exits 1).
Nothing is asserted on timing: ratios are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cp_sessions import (
    UPFS,
    CpThread,
    cpu_now,
    cpu_spent,
    database,
    database_check,
    request,
    run_all,
    wait_associated,
)
from bench.native_load import NativeClient, NativeUnavailable, build
from bench.pfcp_node import cpu_model, machine_busy_seconds, percentile

DEFAULT_SESSIONS = 10_000
DEFAULT_CLIENTS = 64
DEFAULT_ROUNDS = 8
DEFAULT_WARMUP = 500
TARGET_COST = 0.30


def _client_process(target: str, clients: int, connections: int, commands: Any, out: Any) -> None:
    """An API phase's load generator, one process for all its rounds: ``clients`` over ``connections`` channels.

    Puts "connected" on ``out`` once every channel is up; then, for each ``(first, count)`` on
    ``commands``, creates sessions first..first+count-1 and puts the round's results on ``out``;
    None ends it."""
    import grpc.aio
    import uvloop

    from control_plane.api.client import create_request
    from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
    from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc

    async def main() -> None:
        # A local subchannel pool per channel: one connection each (gRPC would otherwise share one
        # among all channels to the same target with the same arguments).
        options = [("grpc.use_local_subchannel_pool", 1)]
        channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(connections)]
        for channel in channels:  # connected before the clock starts
            await pb_grpc.SessionServiceStub(channel).List(pb.ListSessionsRequest(page_size=1), timeout=60.0)
        stubs: asyncio.Queue[Any] = asyncio.Queue()
        for k in range(clients):
            stubs.put_nowait(pb_grpc.SessionServiceStub(channels[k % connections]))
        # What this process imported stays out of the collector's view (gc.freeze): its full
        # collections would otherwise traverse every module during the rounds, and a load
        # generator should not spend that on the API's cores.
        gc.freeze()
        out.put("connected")
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, commands.get)) is not None:
            first, count = command
            # The round's requests are built before its clock starts: the load is the calls. Each
            # answer is parsed and checked (an active session with a UE address), as a caller would.
            messages = [create_request(request(first + n)) for n in range(count)]

            async def create(n: int, messages: list[Any] = messages) -> object:
                stub = await stubs.get()
                try:
                    session = await stub.Create(messages[n], timeout=60.0)
                finally:
                    stubs.put_nowait(stub)
                if session.state != "active" or not session.ue_ipv4:
                    raise RuntimeError(f"session {session.supi} answered {session.state!r}, UE {session.ue_ipv4!r}")
                return session

            cpu = time.process_time()
            wall, latencies, errors = await run_all(count, clients, create)
            cpu = time.process_time() - cpu
            out.put({"wall_s": wall, "latencies": latencies, "errors": dict(errors), "cpu_s": cpu})
        for channel in channels:
            await channel.close(grace=None)

    # The load generator on uvloop, like the front-end workers: it shares the machine's cores with
    # what it measures, so the less CPU it spends per call the less it takes from the API.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


class _Client:
    """The parent's handle on a :func:`_client_process`."""

    def __init__(self, target: str, ns: str, clients: int, connections: int) -> None:
        from tests.harness.netns import run_in_netns

        spawn = multiprocessing.get_context("spawn")
        self.commands, self.out = spawn.Queue(), spawn.Queue()
        self._round = (0, 0)
        self.process = spawn.Process(
            target=_client_process, args=(target, clients, connections, self.commands, self.out), daemon=True
        )
        if target.startswith("unix:"):
            self.process.start()
        else:
            run_in_netns(ns, self.process.start)  # a process started from that thread lives in the namespace
        if self.out.get(timeout=120) != "connected":
            raise RuntimeError("the client process did not connect")

    def prepare(self, first: int, count: int) -> None:
        self._round = (first, count)  # the process builds the requests before its clock starts

    def start_round(self) -> None:
        self.commands.put(self._round)

    def result(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.out.get(timeout=max(600.0, self._round[1] / 10))
        return answer

    def stop(self) -> None:
        self.commands.put(None)
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()


class _Counters:
    """What a round's figures are differences of: CPU per process (this one first), the machine's
    busy time, the store's commits and operations."""

    def __init__(self, cp: Any, pids: list[int]) -> None:
        self.cpu = cpu_now(pids)
        self.machine = _machine()
        self.store = (cp.store.commits, cp.store.operations)


@dataclasses.dataclass
class _Tally:
    """One phase's figures, summed over its rounds."""

    name: str
    agents: int
    workers: int = 0
    sessions: int = 0
    wall: float = 0.0
    latencies: list[float] = dataclasses.field(default_factory=list)
    errors: Counter[str] = dataclasses.field(default_factory=Counter)
    cpu: list[float | None] = dataclasses.field(default_factory=list)  # this process, agents, workers
    client: float | None = None
    busy: float | None = 0.0  # the machine's busy seconds
    ours: float = 0.0  # of which this benchmark's processes
    commits: int = 0
    operations: int = 0
    rounds: list[float] = dataclasses.field(default_factory=list)  # creates/s of each round

    def add(self, count: int, wall: float, latencies: list[float], errors: Counter[str] | dict[str, int],
            before: _Counters, after: _Counters, client: float | None = None) -> None:  # fmt: skip
        spent = cpu_spent(before.cpu, after.cpu)
        self.cpu = spent if not self.cpu else [_plus(a, b) for a, b in zip(self.cpu, spent, strict=True)]
        self.sessions += count
        self.wall += wall
        self.latencies += latencies
        self.errors.update(errors)
        if client is not None:
            self.client = (self.client or 0.0) + client
        if self.busy is None or before.machine[0] is None or after.machine[0] is None:
            self.busy = None
        else:
            self.busy += after.machine[0] - before.machine[0]
        self.ours += sum(x or 0.0 for x in spent) + (client or 0.0)
        self.commits += after.store[0] - before.store[0]
        self.operations += after.store[1] - before.store[1]
        self.rounds.append(count / wall)

    def report(self) -> dict[str, Any]:
        count, latencies = self.sessions, sorted(self.latencies)
        workers = self.cpu[1 + self.agents :]
        workers_cpu = None if not workers or any(w is None for w in workers) else sum(w or 0.0 for w in workers)
        return {
            "phase": self.name,
            "workers": self.workers,
            "sessions": count,
            "wall_s": self.wall,
            "rate": count / self.wall,
            "round_rates": self.rounds,
            "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99),
            "errors": dict(self.errors),
            "ops_per_commit": self.operations / self.commits if self.commits else None,
            "cp_us_per_create": (self.cpu[0] or 0.0) / count * 1e6,
            "workers_us_per_create": None if workers_cpu is None else workers_cpu / count * 1e6,
            "agents_us_per_create": [None if a is None else a / count * 1e6 for a in self.cpu[1 : 1 + self.agents]],
            "client_us_per_create": None if self.client is None else self.client / count * 1e6,
            # Cores kept busy by processes other than this benchmark's (the machine is shared).
            "other_cores": None if self.busy is None else max(0.0, (self.busy - self.ours) / self.wall),
        }


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _machine() -> tuple[float | None, float]:
    return machine_busy_seconds(), time.monotonic()


@dataclasses.dataclass
class _Api:
    """One API phase's server: the in-process one (w=0) or a pool of front-end workers, up for the whole run."""

    workers: int
    target: str
    pool: Any = None
    client: _Client | NativeClient | None = None

    def pids(self) -> list[int]:
        return list(self.pool.pids()) if self.pool is not None else []


def _start_api(cp: Any, runner: CpThread, workdir: Path, config: Any, workers: int) -> _Api:
    from control_plane.api.frontend.pool import start_api_workers
    from control_plane.api.provisioning import ProvisioningServicer
    from control_plane.api.status_service import StatusServicer

    if workers == 0:
        return _Api(0, f"unix:{workdir / 'api.sock'}")
    # One worker listens on a unix socket like the in-process server; more share a TCP port
    # (SO_REUSEPORT), on loopback in the cp namespace, where the client process then runs.
    address = f"unix:{workdir / f'api-{workers}.sock'}" if workers == 1 else "127.0.0.1"
    settings = dataclasses.replace(config, api_address=address, api_port=0, api_workers=workers)
    status = StatusServicer(cp.store, cp.inventory, cp.associations, cp.events)
    pool = runner.call(start_api_workers(settings, cp.sessions, ProvisioningServicer(cp.provisioning), status))
    return _Api(workers, address if workers == 1 else f"127.0.0.1:{pool.port}", pool)


def _api_round(cp: Any, api: _Api, agents: list[int], tally: _Tally | None, first: int, count: int) -> None:
    """``count`` creates through ``api`` from its client process, added to ``tally`` (None: warm-up)."""
    assert api.client is not None
    api.client.prepare(first, count)
    before = _Counters(cp, agents + api.pids())
    api.client.start_round()
    answer = api.client.result()
    after = _Counters(cp, agents + api.pids())
    if tally is not None:
        tally.add(count, answer["wall_s"], answer["latencies"], answer["errors"], before, after, answer["cpu_s"])


def _rounds(sessions: int, rounds: int) -> list[tuple[int, int]]:
    """(offset, count) of each round's share of a phase's ``sessions``."""
    bounds = [sessions * k // rounds for k in range(rounds + 1)]
    return [(bounds[k], bounds[k + 1] - bounds[k]) for k in range(rounds) if bounds[k + 1] > bounds[k]]


def run(kind: str, sessions: int, clients: int, workers: Sequence[int] = (0, 1), rounds: int = 4,
        warmup: int = DEFAULT_WARMUP, client: str = "native", connections: int = 1) -> dict[str, Any]:  # fmt: skip
    from control_plane.app import start
    from control_plane.config import parse_config
    from tests.harness.control_plane import cp_n4, cp_network, provision

    phases = 1 + len(workers)
    span = warmup + sessions  # subscribers per phase: phase k creates k*span .. (k+1)*span-1
    with tempfile.TemporaryDirectory(prefix="edgecups-bench-api-") as tmp, database(kind, Path(tmp)) as url:
        workdir = Path(tmp)
        socket = workdir / "api.sock"
        provision(url, UPFS, subscribers=phases * span, capacity=phases * span)
        config = parse_config(
            {
                "n4": {"address": str(cp_n4(0).ip)},
                "database": {"url": url},
                "api": {"address": f"unix:{socket}", "plaintext": True},
                "timers": {"t1": 3.0, "n1": 3, "heartbeat_interval": 10, "reassociate_interval": 0.5},
                "log_level": "warning",
            }
        )
        with cp_network(workdir, UPFS) as net:
            runner = CpThread(net.ns("cp"))
            cp = None
            servers: list[_Api] = []
            try:
                cp = runner.call(start(config, api=True))
                runner.call(wait_associated(cp))
                agents = [agent.process.pid for agent in net.agents]
                for count in workers:
                    servers.append(_start_api(cp, runner, workdir, config, count))
                    servers[-1].client = (
                        NativeClient(servers[-1].target, net.ns("cp"), clients, connections, workdir)
                        if client == "native"
                        else _Client(servers[-1].target, net.ns("cp"), clients, connections)
                    )
                direct = _Tally("direct", len(agents))
                api = [_Tally(f"api w={s.workers}", len(agents), s.workers) for s in servers]

                def direct_from(offset: int) -> Callable[[int], Awaitable[object]]:
                    async def establish(n: int) -> object:
                        return await cp.sessions.establish(request(offset + n))

                    return establish

                # A warm-up round first, not measured: a new client's first calls cost it more
                # (its channels, caches and the allocator settle). Then rounds interleave the
                # phases, so a change in the machine's speed during the run (a shared host)
                # reaches every phase alike instead of the ones that ran then.
                plan = [(0, warmup, False)] if warmup else []
                plan += [(warmup + offset, count, True) for offset, count in _rounds(sessions, rounds)]
                for offset, count, measured in plan:
                    before = _Counters(cp, agents)
                    wall, latencies, errors = runner.call(run_all(count, clients, direct_from(offset)), timeout=None)
                    if measured:
                        direct.add(count, wall, latencies, errors, before, _Counters(cp, agents))
                    for k, (server, tally) in enumerate(zip(servers, api, strict=True), start=1):
                        _api_round(cp, server, agents, tally if measured else None, k * span + offset, count)
            finally:
                for server in servers:
                    if server.client is not None:
                        server.client.stop()
                    if server.pool is not None:
                        runner.call(server.pool.stop())
                if cp is not None:
                    runner.call(cp.stop())
                runner.close()
            check = database_check(url)
    phases_out = [direct.report(), *(t.report() for t in api)]
    ok = (
        check["states"] == {"active": phases * span}
        and check["distinct_ue_ipv4"] == phases * span
        and not any(phase["errors"] for phase in phases_out)
    )
    return {
        "db": kind,
        "clients": clients,
        "client": client,
        "connections": connections,
        "rounds": rounds,
        "warmup": warmup,
        "direct": phases_out[0],
        "api": phases_out[1:],
        "check": check,
        "ok": ok,
    }


def format_report(result: dict[str, Any]) -> str:
    direct, api = result["direct"], result["api"]
    lines = [
        "Northbound API benchmark: session creates through gRPC (64 clients) vs direct calls",
        f"python {platform.python_version()}, {cpu_model()}, {os.cpu_count()} cores, {result['db']}, "
        f"{result['clients']} clients / in flight over {result['connections']} connection(s), "
        f"{result['client']} load generator, 2 UPF agents; api w=N: N front-end worker processes "
        "(w=0: the CP's own gRPC server; w<=1 on a unix socket, w>=2 on TCP loopback)",
        "",
        f"{'phase':<8} {'sessions':>8} {'creates/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'ops/commit':>10} "
        f"{'CP us/create':>12} {'workers us':>10} {'agents us/create':>16} {'client us':>9} {'errors':>6} "
        f"{'other load':>10}",
    ]
    for r in (direct, *api):
        agents = "/".join("-" if a is None else f"{a:.0f}" for a in r["agents_us_per_create"])
        client = "-" if r["client_us_per_create"] is None else f"{r['client_us_per_create']:.0f}"
        workers = "-" if r.get("workers_us_per_create") is None else f"{r['workers_us_per_create']:.0f}"
        others = "-" if r.get("other_cores") is None else f"{r['other_cores']:.2f} cores"
        batch = "-" if r["ops_per_commit"] is None else f"{r['ops_per_commit']:.1f}"
        lines.append(
            f"{r['phase']:<8} {r['sessions']:>8} {r['rate']:>9.0f} {r['p50_ms'] or 0:>7.1f} {r['p99_ms'] or 0:>7.1f} "
            f"{batch:>10} "
            f"{r['cp_us_per_create']:>12.0f} {workers:>10} {agents:>16} {client:>9} {sum(r['errors'].values()):>6} "
            f"{others:>10}"
        )
        for what, count in r["errors"].items():
            lines.append(f"    error x{count}: {what}")
    check = result["check"]
    lines += [
        "",
        f"database holds {check['states']} with {check['distinct_ue_ipv4']} distinct UE IPv4s: "
        + ("OK" if result["ok"] else "FAILED"),
        "",
        f"{'phase':<8} {'API cost (1 - api/direct), target < 30%':>40} {'ratio':>6} {'api/direct':>10} "
        f"{'CP us added':>11} {'+ workers us':>12}  api/direct by round",
    ]
    for r in api:
        ratio = r["rate"] / direct["rate"]
        extra = r["cp_us_per_create"] - direct["cp_us_per_create"]
        total = extra + (r.get("workers_us_per_create") or 0.0)
        by_round = " ".join(f"{a / d:.2f}" for a, d in zip(r["round_rates"], direct["round_rates"], strict=True))
        lines.append(
            f"{r['phase']:<8} {1 - ratio:>40.0%} {(1 - ratio) / TARGET_COST:>6.2f} {ratio:>10.2f} "
            f"{extra:>11.0f} {total:>12.0f}  {by_round}"
        )
    lines.append(
        f"Each phase ran {result['warmup']} creates to warm up (not measured), then {result['rounds']} rounds, "
        "interleaved (direct, api, ..., direct, api, ...); its figures are over all its rounds. "
        "CP us added: the control plane's own CPU per create beyond direct calls; + workers us: with the "
        "front-end workers' CPU, the API's whole cost. other load: cores busy with processes outside this "
        "benchmark (a shared machine makes the rates move with it)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS, help="creates per phase (10000)")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent API clients (64)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--workers",
        default="0,1",
        help="API phases to run, by front-end worker count, comma-separated (0: the in-process server; default 0,1)",
    )
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds each phase is split into, interleaved (8)"
    )
    parser.add_argument(
        "--warmup", type=int, default=DEFAULT_WARMUP, help="creates per phase before the measured rounds (500)"
    )
    parser.add_argument(
        "--client",
        choices=("native", "python"),
        default="native",
        help="the load generator: native (bench/loadgen, gRPC C++) or python (grpc.aio on uvloop); default native",
    )
    parser.add_argument(
        "--connections", type=int, default=1, help="connections the clients share, as ghz's --connections (1)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 10_000 or args.clients < 1:
        parser.error("--sessions must be 1..10000 and --clients at least 1")
    if not 1 <= args.connections <= args.clients:
        parser.error("--connections must be 1..--clients")
    if not 1 <= args.rounds <= args.sessions:
        parser.error("--rounds must be 1..--sessions")
    if not 0 <= args.warmup <= 10_000:
        parser.error("--warmup must be 0..10000")
    try:
        workers = [int(n) for n in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers {args.workers!r}: expected worker counts like 0,1,2")
    if not workers or any(not 0 <= n <= 32 for n in workers):
        parser.error("--workers: each count must be 0..32")
    from tests.harness.netns import netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason is not None:
        print(f"api_sessions: {reason}; this benchmark needs root (network namespaces)", file=sys.stderr)
        return 2
    if args.db == "postgresql":
        from tests.harness.postgres import postgres_unavailable_reason

        why = postgres_unavailable_reason()
        if why is not None:
            print(f"api_sessions: PostgreSQL unavailable: {why}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.client == "native":
        try:
            build()
        except NativeUnavailable as error:
            print(f"api_sessions: the native load generator: {error}; or use --client python", file=sys.stderr)
            return 2
    result = run(args.db, args.sessions, args.clients, workers, args.rounds, args.warmup, args.client, args.connections)
    print(format_report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"results written to {args.json}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
