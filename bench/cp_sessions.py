"""Control plane benchmark: PDU session establishments per second end to end, and memory per session.

Run from the repository root, as root (it builds network namespaces)::

    .venv/bin/python bench/cp_sessions.py                        # 10,000 sessions, SQLite and PostgreSQL
    .venv/bin/python bench/cp_sessions.py --sessions 1000 --db sqlite     # a quick run
    .venv/bin/python bench/cp_sessions.py --profile /tmp/cp.prof --db sqlite

What is measured
----------------
The whole path of an establishment: the control plane (selection, allocation,
desired rules) -> database (the session row and its PDR/FAR/QER/URR rows, committed
before anything goes out) -> PFCP Session Establishment Request -> a real UPF agent
(``edgecups upf``, software dataplane, its own process in its own namespace) ->
Session Establishment Response -> database (the row becomes ``active``).

Topology: :func:`tests.harness.control_plane.cp_network` with 2 UPFs (one edge site
each), the inventory from :func:`~tests.harness.control_plane.provision`. The control
plane runs **in this process**: :func:`control_plane.app.start` (no API) on an asyncio
loop in a thread inside the cp namespace, its store's worker thread beside it. The
benchmark calls ``cp.sessions.establish`` directly on that loop with ``--inflight``
(128) requests outstanding, supis ``imsi-0010100000NNNNN``, TAIs alternating between
the two sites so each UPF gets half. Both UPFs are associated before the clock starts.

Reported: establishments/s (``--sessions`` establishments over the wall time of all of
them), p50/p99 latency of one ``establish`` call, the store's commits and operations
over the run (operations per commit: how well group commit batches), CPU seconds per
establishment of this process (control plane + its store) and of the two agents.

Memory per session: this process's RSS (VmRSS) after the run minus its RSS after
start-up and association, both after ``gc.collect()``, divided by the sessions. It
includes the control plane's allocators and whatever the database driver keeps in
this process (SQLite's page cache, ~2 MiB at most per connection; SQLAlchemy's compiled
statement cache, filled by the first sessions): one-time costs that make the figure
an upper bound. The UPF agents are separate processes and are not counted; nor is the
PostgreSQL server.

PostgreSQL: a throwaway server from :func:`tests.harness.postgres.running_postgres`,
reached through its unix socket from the cp namespace. That server runs with
``fsync=off, synchronous_commit=off, full_page_writes=off`` (its data is thrown away):
commits cost no disk flush, so its rate is an upper bound for a durable server. SQLite
runs as the control plane configures it (WAL, synchronous=NORMAL) on a file in a temp dir.

Checks: after the run the database must hold exactly ``--sessions`` active sessions
with distinct UE IPv4 addresses, split over both UPFs (printed; a failure exits 1).
Then every session is deleted the same way and the deletion rate is reported (skip
with ``--no-delete``), and the table must be empty.

Target (issue 5): >= 2,000 establishments/s on SQLite on a 2-core machine, < 5 KiB of
control-plane memory per session. Ratios are reported; nothing is asserted on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import json
import logging
import os
import platform
import pstats
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pfcp_node import cpu_model, percentile, process_cpu_seconds, thread_cpu_seconds
from bench.upf_pfcp import rss_kib

T = TypeVar("T")

UPFS = 2
#: The harness's agents accept 20,000 sessions each.
MAX_SESSIONS = UPFS * 20_000
DEFAULT_SESSIONS = 10_000
DEFAULT_INFLIGHT = 128
TARGET_RATE = 2_000.0
TARGET_BYTES = 5 * 1024
PG_NOTE = "throwaway server with fsync=off, synchronous_commit=off, full_page_writes=off (no disk flush per commit)"
SQLITE_NOTE = "file in a temp dir, WAL, synchronous=NORMAL"


class BenchError(RuntimeError):
    """Something failed or the database does not hold what it should."""


class CpThread:
    """The control plane's asyncio loop in a thread that lives in the cp namespace."""

    def __init__(self, ns: str) -> None:
        from tests.harness.netns import run_in_netns

        self.loop = asyncio.new_event_loop()

        def start_thread() -> threading.Thread:
            # started from a thread inside the namespace: the new thread inherits it
            thread = threading.Thread(target=self.loop.run_forever, name="bench-cp", daemon=True)
            thread.start()
            return thread

        self.thread = run_in_netns(ns, start_thread)

    def call(self, work: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


async def wait_associated(cp: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        upfs = list(cp.sessions.inventory.upfs.values())
        if len(upfs) == UPFS and all(upf.health == "up" for upf in upfs):
            return
        await asyncio.sleep(0.05)
    states = {upf.node_id: upf.health for upf in cp.sessions.inventory.upfs.values()}
    raise BenchError(f"UPFs not associated within {timeout} s: {states}")


async def run_all(
    count: int, inflight: int, work: Callable[[int], Awaitable[object]]
) -> tuple[float, list[float], Counter[str]]:
    """``work(n)`` for n in 0..count-1 with ``inflight`` outstanding: wall time, latencies (ms), errors."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            n = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                await work(n)
            except Exception as exc:  # counted and reported: one failure must not stop the run
                errors[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
            else:
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(inflight, count))))
    return time.perf_counter() - started, sorted(latencies), errors


def request(n: int) -> Any:
    from control_plane.services.views import SessionRequest
    from tests.harness.control_plane import DNN, SNSSAI, supi

    i = n % UPFS
    tai, gnb = _per_upf(i)
    return SessionRequest(supi=supi(n), dnn=DNN, snssai=SNSSAI, tai=tai, gnb_teid=0x1000 + n, gnb_address=gnb)


@functools.cache
def _per_upf(i: int) -> tuple[str, str]:
    # The client's constants, worked out once: its CPU counts with the CP's (same process).
    from tests.harness.control_plane import gnb_n3, tai

    return tai(i), str(gnb_n3(i).ip)


def rss_settled() -> int:
    gc.collect()
    value = rss_kib(os.getpid())
    if value is None:
        raise BenchError("cannot read VmRSS from /proc")
    return value


def database_check(url: str) -> dict[str, Any]:
    """What the database holds: sessions by state, distinct UE IPv4s, sessions per UPF."""
    from sqlalchemy import func, select

    from db.engine import make_engine
    from db.models import Session

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            by_state = conn.execute(select(Session.state, func.count()).group_by(Session.state)).all()
            states = {str(getattr(state, "value", state)): n for state, n in by_state}
            active = Session.state == "active"
            distinct = conn.execute(select(func.count(func.distinct(Session.ue_ipv4))).where(active)).scalar_one()
            per_upf = conn.execute(select(Session.upf_id, func.count()).where(active).group_by(Session.upf_id)).all()
    finally:
        engine.dispose()
    return {"states": states, "distinct_ue_ipv4": distinct, "per_upf": sorted(c for _, c in per_upf)}


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A URL the control plane can reach from its namespace; the database is removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'cp.db'}"
        return
    from tests.harness.postgres import running_postgres

    with running_postgres() as server:
        name = f"edgecups_bench_{uuid.uuid4().hex[:8]}"
        server.create_database(name)
        yield f"postgresql+psycopg://{server.user}@/{name}?host={server.directory}&port={server.port}"


def top_hot_spots(profile: cProfile.Profile, limit: int = 15) -> list[str]:
    """The ``limit`` control_plane/ functions with the most cumulative time."""
    stats = pstats.Stats(profile)
    rows = [
        (ct, nc, tt, f"{Path(file).relative_to(Path.cwd()) if file.startswith(str(Path.cwd())) else file}:{line} {fn}")
        for (file, line, fn), (_, nc, tt, ct, _) in stats.stats.items()  # type: ignore[attr-defined]
        if f"{os.sep}control_plane{os.sep}" in file
    ]
    rows.sort(reverse=True)
    return [f"{ct:8.2f} s cum {tt:7.2f} s own {nc:>8} calls  {where}" for ct, nc, tt, where in rows[:limit]]


def run_one(kind: str, sessions: int, inflight: int, delete: bool, profile: Path | None) -> dict[str, Any]:
    from control_plane.app import start
    from control_plane.config import parse_config
    from tests.harness.control_plane import cp_n4, cp_network, provision

    with tempfile.TemporaryDirectory(prefix="edgecups-bench-cp-") as tmp, database(kind, Path(tmp)) as url:
        workdir = Path(tmp)
        provision(url, UPFS, subscribers=sessions, capacity=sessions)
        config = parse_config(
            {
                "n4": {"address": str(cp_n4(0).ip)},
                "database": {"url": url},
                "timers": {"t1": 3.0, "n1": 3, "heartbeat_interval": 10, "reassociate_interval": 0.5},
                "log_level": "warning",
            }
        )
        with cp_network(workdir, UPFS) as net:
            runner = CpThread(net.ns("cp"))
            cp = None
            try:
                cp = runner.call(start(config, api=False))
                runner.call(wait_associated(cp))
                agents = [agent.process.pid for agent in net.agents]
                rss_before = rss_settled()
                profilers: list[cProfile.Profile] = []
                if profile is not None:
                    profilers = [cProfile.Profile(), cProfile.Profile()]
                    # cProfile sees only the thread that enables it: the loop's, and the store worker's
                    runner.loop.call_soon_threadsafe(profilers[0].enable)
                    runner.call(cp.store.run(lambda _conn: profilers[1].enable()))
                commits, operations = cp.store.commits, cp.store.operations
                # The CP's two busy threads (the loop, the store worker): where its CPU goes.
                tids = [runner.call(_native_id()), runner.call(cp.store.run(lambda _conn: threading.get_native_id()))]
                cpu, thread_cpu = cpu_now(agents), [thread_cpu_seconds(tid) for tid in tids]

                async def establish(n: int) -> object:
                    return await cp.sessions.establish(request(n))

                wall, latencies, errors = runner.call(run_all(sessions, inflight, establish), timeout=None)
                spent = cpu_spent(cpu, cpu_now(agents))
                thread_spent = cpu_spent(thread_cpu, [thread_cpu_seconds(tid) for tid in tids])
                commits, operations = cp.store.commits - commits, cp.store.operations - operations
                if profilers:
                    runner.call(cp.store.run(lambda _conn: profilers[1].disable()))
                    runner.call(_disable(profilers[0]))
                rss_after = rss_settled()
                check = database_check(url)
                deletion: dict[str, Any] | None = None
                if delete:
                    from tests.harness.control_plane import supi

                    async def remove(n: int) -> object:
                        return await cp.sessions.delete(supi(n), 1)

                    d_wall, d_lat, d_err = runner.call(run_all(sessions, inflight, remove), timeout=None)
                    left = database_check(url)["states"]
                    deletion = {"wall_s": d_wall, "rate": sessions / d_wall, "p50_ms": percentile(d_lat, 0.5),
                                "p99_ms": percentile(d_lat, 0.99), "errors": dict(d_err), "left": left}  # fmt: skip
            finally:
                if cp is not None:
                    runner.call(cp.stop())
                runner.close()
    if profilers and profile is not None:
        path = profile.with_name(f"{profile.stem}-{kind}{profile.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        profilers[0].dump_stats(str(path))
        profilers[1].dump_stats(str(path.with_name(f"{path.stem}-store{path.suffix}")))
    ok = (
        check["states"] == {"active": sessions}
        and check["distinct_ue_ipv4"] == sessions
        and len(check["per_upf"]) == UPFS
        and not errors
        and (deletion is None or (not deletion["errors"] and not deletion["left"]))
    )
    return {
        "db": kind,
        "db_note": PG_NOTE if kind == "postgresql" else SQLITE_NOTE,
        "sessions": sessions,
        "wall_s": wall,
        "rate": sessions / wall,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "errors": dict(errors),
        "commits": commits,
        "operations": operations,
        "cp_us_per_est": None if spent[0] is None else spent[0] / sessions * 1e6,
        "cp_threads_us_per_est": [None if t is None else t / sessions * 1e6 for t in thread_spent],
        "agents_us_per_est": [None if s is None else s / (sessions / UPFS) * 1e6 for s in spent[1:]],
        "rss_kib_before": rss_before,
        "rss_kib_after": rss_after,
        "bytes_per_session": (rss_after - rss_before) * 1024 / sessions,
        "check": check,
        "deletion": deletion,
        "ok": ok,
        "hot_spots": [top_hot_spots(p) for p in profilers],
    }


def cpu_now(pids: Sequence[int]) -> list[float | None]:
    """CPU seconds so far: this process's, then each of ``pids``' (None where unreadable)."""
    return [time.process_time(), *(process_cpu_seconds(pid) for pid in pids)]


def cpu_spent(before: Sequence[float | None], after: Sequence[float | None]) -> list[float | None]:
    """What each of two :func:`cpu_now`-like readings spent in between (None where unreadable)."""
    return [None if a is None or b is None else b - a for a, b in zip(before, after, strict=True)]


async def _native_id() -> int:
    return threading.get_native_id()


async def _disable(profiler: cProfile.Profile) -> None:
    profiler.disable()


def format_report(results: list[dict[str, Any]], inflight: int) -> str:
    lines = [
        "Control plane session establishment benchmark (CP in this process -> DB -> PFCP -> 2 UPF agents -> DB)",
        f"python {platform.python_version()}, {cpu_model()}, {os.cpu_count()} cores, {inflight} in flight",
        "",
        f"{'db':<11} {'sessions':>8} {'est/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'commits':>7} {'ops/commit':>10} "
        f"{'CP us/est':>9} {'loop/store':>10} {'agent us/est':>12} {'B/session':>9} {'errors':>6}",
    ]
    for r in results:
        agents = "/".join("-" if a is None else f"{a:.0f}" for a in r["agents_us_per_est"])
        per_commit = r["operations"] / r["commits"] if r["commits"] else 0.0
        cpu = "-" if r["cp_us_per_est"] is None else f"{r['cp_us_per_est']:.0f}"
        split = "/".join("-" if t is None else f"{t:.0f}" for t in r["cp_threads_us_per_est"])
        lines.append(
            f"{r['db']:<11} {r['sessions']:>8} {r['rate']:>7.0f} {r['p50_ms'] or 0:>7.1f} {r['p99_ms'] or 0:>7.1f} "
            f"{r['commits']:>7} {per_commit:>10.1f} {cpu:>9} {split:>10} {agents:>12} {r['bytes_per_session']:>9.0f} "
            f"{sum(r['errors'].values()):>6}"
        )
    lines.append("")
    for r in results:
        c, d = r["check"], r["deletion"]
        lines.append(
            f"{r['db']}: {r['db_note']}; CP RSS {r['rss_kib_before']} -> {r['rss_kib_after']} KiB; database holds "
            f"{c['states']} with {c['distinct_ue_ipv4']} distinct UE IPv4s, per UPF {c['per_upf']}: "
            + ("OK" if r["ok"] else "FAILED")
        )
        if d is not None:
            lines.append(
                f"{'':<{len(r['db'])}}  deletions: {d['rate']:.0f}/s (p50 {d['p50_ms'] or 0:.1f} ms, p99 "
                f"{d['p99_ms'] or 0:.1f} ms), {sum(d['errors'].values())} errors, left: {d['left'] or 'none'}"
            )
        for what, count in {**r["errors"], **(d["errors"] if d else {})}.items():
            lines.append(f"    error x{count}: {what}")
    lines += [
        "memory = RSS delta of this process (control plane + its DB driver) after gc.collect(), over the sessions;",
        "         the UPF agents (separate processes) and the PostgreSQL server are not counted",
        "",
        f"{'target':<44} {'measured':>10} {'ratio':>7}",
    ]
    for r in results:
        label = f"{r['db']} >= {TARGET_RATE:.0f} est/s" + ("" if r["db"] == "sqlite" else " (SQLite's target)")
        lines.append(f"{label:<44} {r['rate']:>10.0f} {r['rate'] / TARGET_RATE:>7.2f}")
        label = f"{r['db']} < {TARGET_BYTES / 1024:.0f} KiB/session"
        per = r["bytes_per_session"]
        lines.append(f"{label:<44} {per / 1024:>6.2f} KiB {per / TARGET_BYTES:>7.2f}")
    for r in results:
        for title, spots in zip(("CP loop thread", "store worker thread"), r["hot_spots"], strict=False):
            lines += ["", f"{r['db']}: top control_plane/ functions by cumulative time, {title} (cProfile):"]
            lines += [f"  {spot}" for spot in spots]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS, help="establishments (10000)")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--inflight", type=int, default=DEFAULT_INFLIGHT, help="establishments in flight (128)")
    parser.add_argument("--no-delete", action="store_true", help="keep the sessions (no deletion rate)")
    parser.add_argument("--profile", type=Path, metavar="PATH", help="cProfile the CP threads; stats to PATH-<db>")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS or args.inflight < 1:
        parser.error(f"--sessions must be 1..{MAX_SESSIONS} and --inflight at least 1")
    from tests.harness.netns import netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason is not None:
        print(f"cp_sessions: {reason}; this benchmark needs root (network namespaces)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = []
    for kind in kinds:
        if kind == "postgresql":
            from tests.harness.postgres import postgres_unavailable_reason

            why = postgres_unavailable_reason()
            if why is not None:
                print(f"cp_sessions: PostgreSQL skipped: {why}", file=sys.stderr)
                continue
        results.append(run_one(kind, args.sessions, args.inflight, not args.no_delete, args.profile))
    print(format_report(results, args.inflight))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"results written to {args.json}")
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
