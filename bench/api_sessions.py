"""Northbound API benchmark: PDU session creates per second through gRPC, beside the direct figure.

Run from the repository root, as root (it builds network namespaces)::

    .venv/bin/python bench/api_sessions.py                      # 5,000 + 5,000 sessions on SQLite
    .venv/bin/python bench/api_sessions.py --sessions 1000       # a quick run

What is measured
----------------
One control plane, two UPF agents, one database, two phases in the same run:

* **direct**: ``cp.sessions.establish`` called on the control plane's own loop with
  ``--clients`` (64) establishments in flight: the figure of ``bench/cp_sessions.py``
  (issue 5), measured again here so that both figures see the same machine and load.
* **api**: the same establishments (other subscribers) as ``SessionService.Create``
  calls over gRPC on a unix socket, from ``--clients`` (64) clients, each with its own
  channel, in a separate process (spawned), each client waiting for its answer
  before it sends the next. The control plane serves them with the API server
  ``edgecups cp`` runs (control_plane.app.start with the API).

Reported per phase: creates/s over the wall time, p50/p99 latency, CPU
microseconds per create of the control plane's process (its loop, store and gRPC
threads), of the agents, and (api) of the client process; then api/direct and the
API's cost, 1 - api/direct, against the target (issue 6: the API costs < 30%).

The control plane runs in this process (as in cp_sessions.py), in the cp namespace;
the agents are ``edgecups upf`` processes in theirs. The database must hold exactly
2 x ``--sessions`` active sessions at the end (checked; a failure exits 1).
Nothing is asserted on timing: ratios are reported.
"""

from __future__ import annotations

import argparse
import asyncio
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

from bench.cp_sessions import UPFS, CpThread, database, database_check, request, run_all, wait_associated
from bench.pfcp_node import cpu_model, percentile, process_cpu_seconds

DEFAULT_SESSIONS = 5_000
DEFAULT_CLIENTS = 64
TARGET_COST = 0.30


def _client_process(target: str, first: int, count: int, clients: int, out: Any) -> None:
    """The API phase's load: ``clients`` channels creating sessions first..first+count-1."""
    from control_plane.api.client import SessionClient

    async def main() -> dict[str, Any]:
        channels = [SessionClient(target, timeout=60.0) for _ in range(clients)]
        pool: asyncio.Queue[SessionClient] = asyncio.Queue()
        for channel in channels:
            pool.put_nowait(channel)
            await channel.list_page(page_size=1)  # connected before the clock starts

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

    out.put(asyncio.run(main()))


def _phase(name: str, count: int, wall: float, latencies: list[float], errors: Counter[str] | dict[str, int],
           cp_cpu: float, agents_cpu: list[float | None], client_cpu: float | None) -> dict[str, Any]:  # fmt: skip
    return {
        "phase": name,
        "sessions": count,
        "wall_s": wall,
        "rate": count / wall,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "errors": dict(errors),
        "cp_us_per_create": cp_cpu / count * 1e6,
        "agents_us_per_create": [None if a is None else a / count * 1e6 for a in agents_cpu],
        "client_us_per_create": None if client_cpu is None else client_cpu / count * 1e6,
    }


def _cpu(agents: list[int]) -> list[float | None]:
    return [time.process_time(), *(process_cpu_seconds(pid) for pid in agents)]


def _spent(before: list[float | None], after: list[float | None]) -> list[float | None]:
    return [None if a is None or b is None else b - a for a, b in zip(before, after, strict=True)]


def run(kind: str, sessions: int, clients: int) -> dict[str, Any]:
    from control_plane.app import start
    from control_plane.config import parse_config
    from tests.harness.control_plane import cp_n4, cp_network, provision

    with tempfile.TemporaryDirectory(prefix="edgecups-bench-api-") as tmp, database(kind, Path(tmp)) as url:
        workdir = Path(tmp)
        socket = workdir / "api.sock"
        provision(url, UPFS, subscribers=2 * sessions, capacity=2 * sessions)
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
            try:
                cp = runner.call(start(config, api=True))
                runner.call(wait_associated(cp))
                agents = [agent.process.pid for agent in net.agents]

                async def establish(n: int) -> object:
                    return await cp.sessions.establish(request(n))

                before = _cpu(agents)
                wall, latencies, errors = runner.call(run_all(sessions, clients, establish), timeout=None)
                spent = _spent(before, _cpu(agents))
                direct = _phase("direct", sessions, wall, latencies, errors, spent[0] or 0.0, spent[1:], None)

                spawn = multiprocessing.get_context("spawn")
                out = spawn.Queue()
                client = spawn.Process(
                    target=_client_process, args=(f"unix:{socket}", sessions, sessions, clients, out), daemon=True
                )
                before = _cpu(agents)
                client.start()
                answer = out.get(timeout=max(600.0, sessions / 10))
                spent = _spent(before, _cpu(agents))
                client.join(30)
                api = _phase(
                    "api", sessions, answer["wall_s"], answer["latencies"], answer["errors"],
                    spent[0] or 0.0, spent[1:], answer["cpu_s"],
                )  # fmt: skip
            finally:
                if cp is not None:
                    runner.call(cp.stop())
                runner.close()
            check = database_check(url)
    ok = (
        check["states"] == {"active": 2 * sessions}
        and check["distinct_ue_ipv4"] == 2 * sessions
        and not direct["errors"]
        and not api["errors"]
    )
    return {"db": kind, "clients": clients, "direct": direct, "api": api, "check": check, "ok": ok}


def format_report(result: dict[str, Any]) -> str:
    direct, api = result["direct"], result["api"]
    lines = [
        "Northbound API benchmark: session creates through gRPC (64 clients, unix socket) vs direct calls",
        f"python {platform.python_version()}, {cpu_model()}, {os.cpu_count()} cores, {result['db']}, "
        f"{result['clients']} clients / in flight, 2 UPF agents",
        "",
        f"{'phase':<7} {'sessions':>8} {'creates/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'CP us/create':>12} "
        f"{'agents us/create':>16} {'client us/create':>16} {'errors':>6}",
    ]
    for r in (direct, api):
        agents = "/".join("-" if a is None else f"{a:.0f}" for a in r["agents_us_per_create"])
        client = "-" if r["client_us_per_create"] is None else f"{r['client_us_per_create']:.0f}"
        lines.append(
            f"{r['phase']:<7} {r['sessions']:>8} {r['rate']:>9.0f} {r['p50_ms'] or 0:>7.1f} {r['p99_ms'] or 0:>7.1f} "
            f"{r['cp_us_per_create']:>12.0f} {agents:>16} {client:>16} {sum(r['errors'].values()):>6}"
        )
        for what, count in r["errors"].items():
            lines.append(f"    error x{count}: {what}")
    ratio = api["rate"] / direct["rate"]
    extra = api["cp_us_per_create"] - direct["cp_us_per_create"]
    check = result["check"]
    lines += [
        "",
        f"database holds {check['states']} with {check['distinct_ue_ipv4']} distinct UE IPv4s: "
        + ("OK" if result["ok"] else "FAILED"),
        f"the API adds {extra:.0f} us of control-plane CPU per create (gRPC server, protobuf, conversion)",
        "",
        f"{'target':<36} {'measured':>9} {'ratio':>7}",
        f"{'API cost (1 - api/direct) < 30%':<36} {1 - ratio:>8.0%} {(1 - ratio) / TARGET_COST:>7.2f}",
        f"{'api/direct creates/s':<36} {ratio:>9.2f}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS, help="creates per phase (5000)")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent API clients (64)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 10_000 or args.clients < 1:
        parser.error("--sessions must be 1..10000 and --clients at least 1")
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
    result = run(args.db, args.sessions, args.clients)
    print(format_report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"results written to {args.json}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
