"""Northbound API benchmark: PDU session creates per second through gRPC, beside the direct figure.

Run from the repository root, as root (it builds network namespaces)::

    .venv/bin/python bench/api_sessions.py                      # 5,000 sessions per phase on SQLite
    .venv/bin/python bench/api_sessions.py --sessions 1000       # a quick run
    .venv/bin/python bench/api_sessions.py --workers 0,1,2       # API phases: in-process, 1 and 2 workers

What is measured
----------------
One control plane, two UPF agents, one database, the phases below in the same run:

* **direct**: ``cp.sessions.establish`` called on the control plane's own loop with
  ``--clients`` (64) establishments in flight: the figure of ``bench/cp_sessions.py``
  (issue 5), measured again here so that both figures see the same machine and load.
* **api w=N**: the same establishments (other subscribers) as ``SessionService.Create``
  calls over gRPC from ``--clients`` (64) clients, each with its own channel, in a separate
  process (spawned, on uvloop), each client waiting for its answer before it sends the next; one phase
  per ``--workers`` count (default ``0,1``). w=0 is the API server ``edgecups cp`` runs
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
(1 + API phases) x ``--sessions`` active sessions at the end (checked; a failure exits 1).
Nothing is asserted on timing: ratios are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
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
from bench.pfcp_node import cpu_model, machine_busy_seconds, percentile

DEFAULT_SESSIONS = 5_000
DEFAULT_CLIENTS = 64
TARGET_COST = 0.30


def _client_process(target: str, first: int, count: int, clients: int, out: Any, go: Any) -> None:
    """The API phase's load: ``clients`` channels creating sessions first..first+count-1.

    Puts "connected" on ``out`` once every channel is up, starts the clock when ``go`` is set
    (the parent reads the CPU counters in between), and puts its results on ``out`` at the end."""
    import uvloop

    from control_plane.api.client import SessionClient

    async def main() -> dict[str, Any]:
        channels = [SessionClient(target, timeout=60.0) for _ in range(clients)]
        pool: asyncio.Queue[SessionClient] = asyncio.Queue()
        for channel in channels:
            pool.put_nowait(channel)
            await channel.list_page(page_size=1)  # connected before the clock starts
        out.put("connected")
        await asyncio.get_running_loop().run_in_executor(None, go.wait)

        async def create(n: int) -> object:
            channel = await pool.get()
            try:
                return await channel.establish(request(first + n))
            finally:
                pool.put_nowait(channel)

        cpu = time.process_time()
        wall, latencies, errors = await run_all(count, clients, create)
        cpu = time.process_time() - cpu
        for channel in channels:
            await channel.close()
        return {"wall_s": wall, "latencies": latencies, "errors": dict(errors), "cpu_s": cpu}

    # The load generator on uvloop, like the front-end workers: it shares the machine's cores with
    # what it measures, so the less CPU it spends per call the less it takes from the API.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        out.put(runner.run(main()))


def _phase(name: str, count: int, wall: float, latencies: list[float], errors: Counter[str] | dict[str, int],
           cp_cpu: float, agents_cpu: list[float | None], client_cpu: float | None,
           workers_cpu: float | None = None, workers: int = 0) -> dict[str, Any]:  # fmt: skip
    return {
        "ops_per_commit": None,
        "phase": name,
        "workers": workers,
        "sessions": count,
        "wall_s": wall,
        "rate": count / wall,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "errors": dict(errors),
        "cp_us_per_create": cp_cpu / count * 1e6,
        "workers_us_per_create": None if workers_cpu is None else workers_cpu / count * 1e6,
        "agents_us_per_create": [None if a is None else a / count * 1e6 for a in agents_cpu],
        "client_us_per_create": None if client_cpu is None else client_cpu / count * 1e6,
    }


def _store_counts(cp: Any) -> tuple[int, int]:
    return cp.store.commits, cp.store.operations


def _ops_per_commit(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    commits = after[0] - before[0]
    return (after[1] - before[1]) / commits if commits else None


def _machine() -> tuple[float | None, float]:
    return machine_busy_seconds(), time.monotonic()


def _other_cores(before: tuple[float | None, float], after: tuple[float | None, float], ours: float) -> float | None:
    """Cores kept busy during a phase by processes other than this benchmark's (the machine is shared)."""
    if before[0] is None or after[0] is None:
        return None
    return max(0.0, (after[0] - before[0] - ours) / (after[1] - before[1]))


def _api_phase(cp: Any, runner: CpThread, ns: str, workdir: Path, config: Any, agents: list[int],
               workers: int, first: int, sessions: int, clients: int) -> dict[str, Any]:  # fmt: skip
    """One API phase: the in-process server (``workers`` 0, already running) or a fresh set of workers."""
    from control_plane.api.frontend.pool import start_api_workers
    from control_plane.api.provisioning import ProvisioningServicer
    from control_plane.api.status_service import StatusServicer
    from tests.harness.netns import run_in_netns

    pool = None
    if workers == 0:
        target = f"unix:{workdir / 'api.sock'}"
    else:
        # One worker listens on a unix socket like the in-process server; more share a TCP port
        # (SO_REUSEPORT), on loopback in the cp namespace, where the client process then runs.
        address = f"unix:{workdir / f'api-{workers}.sock'}" if workers == 1 else "127.0.0.1"
        settings = dataclasses.replace(config, api_address=address, api_port=0, api_workers=workers)
        status = StatusServicer(cp.store, cp.inventory, cp.associations, cp.events)
        pool = runner.call(start_api_workers(settings, cp.sessions, ProvisioningServicer(cp.provisioning), status))
        target = address if workers == 1 else f"127.0.0.1:{pool.port}"
    worker_pids = pool.pids() if pool is not None else []
    try:
        spawn = multiprocessing.get_context("spawn")
        out, go = spawn.Queue(), spawn.Event()
        client = spawn.Process(target=_client_process, args=(target, first, sessions, clients, out, go), daemon=True)
        if target.startswith("unix:"):
            client.start()
        else:
            run_in_netns(ns, client.start)  # a process started from that thread lives in the namespace
        if out.get(timeout=120) != "connected":
            raise RuntimeError("the client process did not connect")
        # The counters start when the load does: the client's start-up (imports, 64 channels) is not in them.
        before = cpu_now(agents + worker_pids)
        machine = _machine()
        go.set()
        answer = out.get(timeout=max(600.0, sessions / 10))
        spent = cpu_spent(before, cpu_now(agents + worker_pids))
        others = _other_cores(machine, _machine(), sum(x or 0.0 for x in spent) + answer["cpu_s"])
        client.join(30)
    finally:
        if pool is not None:
            runner.call(pool.stop())
    workers_cpu = None
    if pool is not None:
        parts = spent[1 + len(agents) :]
        workers_cpu = None if any(p is None for p in parts) else sum(p or 0.0 for p in parts)
    phase = _phase(
        f"api w={workers}", sessions, answer["wall_s"], answer["latencies"], answer["errors"],
        spent[0] or 0.0, spent[1 : 1 + len(agents)], answer["cpu_s"], workers_cpu, workers,
    )  # fmt: skip
    phase["other_cores"] = others
    return phase


def run(kind: str, sessions: int, clients: int, workers: Sequence[int] = (0, 1)) -> dict[str, Any]:
    from control_plane.app import start
    from control_plane.config import parse_config
    from tests.harness.control_plane import cp_n4, cp_network, provision

    phases = 1 + len(workers)
    with tempfile.TemporaryDirectory(prefix="edgecups-bench-api-") as tmp, database(kind, Path(tmp)) as url:
        workdir = Path(tmp)
        socket = workdir / "api.sock"
        provision(url, UPFS, subscribers=phases * sessions, capacity=phases * sessions)
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
            api: list[dict[str, Any]] = []
            try:
                cp = runner.call(start(config, api=True))
                runner.call(wait_associated(cp))
                agents = [agent.process.pid for agent in net.agents]

                async def establish(n: int) -> object:
                    return await cp.sessions.establish(request(n))

                before, machine, store = cpu_now(agents), _machine(), _store_counts(cp)
                wall, latencies, errors = runner.call(run_all(sessions, clients, establish), timeout=None)
                spent = cpu_spent(before, cpu_now(agents))
                direct = _phase("direct", sessions, wall, latencies, errors, spent[0] or 0.0, spent[1:], None)
                direct["other_cores"] = _other_cores(machine, _machine(), sum(x or 0.0 for x in spent))
                direct["ops_per_commit"] = _ops_per_commit(store, _store_counts(cp))
                for k, count in enumerate(workers, start=1):
                    first = k * sessions
                    store = _store_counts(cp)
                    phase = _api_phase(
                        cp, runner, net.ns("cp"), workdir, config, agents, count, first, sessions, clients
                    )
                    phase["ops_per_commit"] = _ops_per_commit(store, _store_counts(cp))
                    api.append(phase)
            finally:
                if cp is not None:
                    runner.call(cp.stop())
                runner.close()
            check = database_check(url)
    ok = (
        check["states"] == {"active": phases * sessions}
        and check["distinct_ue_ipv4"] == phases * sessions
        and not direct["errors"]
        and not any(phase["errors"] for phase in api)
    )
    return {"db": kind, "clients": clients, "direct": direct, "api": api, "check": check, "ok": ok}


def format_report(result: dict[str, Any]) -> str:
    direct, api = result["direct"], result["api"]
    lines = [
        "Northbound API benchmark: session creates through gRPC (64 clients) vs direct calls",
        f"python {platform.python_version()}, {cpu_model()}, {os.cpu_count()} cores, {result['db']}, "
        f"{result['clients']} clients / in flight, 2 UPF agents; api w=N: N front-end worker processes "
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
        f"{'CP us added':>11} {'+ workers us':>12}",
    ]
    for r in api:
        ratio = r["rate"] / direct["rate"]
        extra = r["cp_us_per_create"] - direct["cp_us_per_create"]
        total = extra + (r.get("workers_us_per_create") or 0.0)
        lines.append(
            f"{r['phase']:<8} {1 - ratio:>40.0%} {(1 - ratio) / TARGET_COST:>6.2f} {ratio:>10.2f} "
            f"{extra:>11.0f} {total:>12.0f}"
        )
    lines.append(
        "CP us added: the control plane's own CPU per create beyond direct calls; + workers us: with the "
        "front-end workers' CPU, the API's whole cost. other load: cores busy with processes outside this "
        "benchmark (a shared machine makes the rates move with it)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS, help="creates per phase (5000)")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent API clients (64)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--workers",
        default="0,1",
        help="API phases to run, by front-end worker count, comma-separated (0: the in-process server; default 0,1)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 10_000 or args.clients < 1:
        parser.error("--sessions must be 1..10000 and --clients at least 1")
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
    result = run(args.db, args.sessions, args.clients, workers)
    print(format_report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"results written to {args.json}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
