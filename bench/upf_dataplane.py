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

Code: ``bench/_sessions.py`` (addresses, sessions, packets), ``bench/_traffic.py`` (the
generator and the counters), ``bench/_upf_run.py`` (the UPF child, child processes, one case);
this file runs the cases and prints the report.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: the packages live at the repository root
    sys.path.insert(0, str(REPO_ROOT))

# The benchmark's pieces (bench/_sessions.py, _traffic.py, _upf_run.py); the names tests and
# users know are re-exported here.
from bench._sessions import (  # noqa: E402
    CP_NODE,
    DL_TEID_BASE,
    DN,
    DN_PORT,
    GNB,
    INSTANCE,
    MAX_SESSIONS,
    N3,
    N6,
    QFI,
    TUN,
    UE_POOL,
    UE_PORT,
    UL_TEID_BASE,
    BenchError,
    generator_destinations,
    generator_packets,
    ipv4_udp,
    session_request,
    session_state,
    ue_address,
)
from bench._traffic import (  # noqa: E402
    GEN_BATCH,
    Generator,
    cpu_busy_ticks,
    cpu_pinning,
    generator_main,
    process_cpu_seconds,
    read_netns_file,
    rx_packets,
    set_rps,
    sinks,
    udp_rcvbuf_errors,
)
from bench._upf_run import Bench, CaseResult, CaseSpec, Child, topology_spec, upf_main  # noqa: E402

__all__ = [
    "CP_NODE",
    "DIRECTIONS",
    "DL_TEID_BASE",
    "DN",
    "DN_PORT",
    "GEN_BATCH",
    "GNB",
    "INSTANCE",
    "MAX_SESSIONS",
    "N3",
    "N6",
    "PATHS",
    "QFI",
    "TARGET_PPS",
    "TUN",
    "UE_POOL",
    "UE_PORT",
    "UL_TEID_BASE",
    "Bench",
    "BenchError",
    "CaseResult",
    "CaseSpec",
    "Child",
    "Generator",
    "cpu_busy_ticks",
    "generator_destinations",
    "generator_packets",
    "ipv4_udp",
    "main",
    "process_cpu_seconds",
    "read_netns_file",
    "run",
    "rx_packets",
    "session_request",
    "session_state",
    "udp_rcvbuf_errors",
    "ue_address",
]

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
#: Inner packets are IPv4 (20) + UDP (8) + payload: the smallest size is 28 + 1.
MIN_SIZE: Final = 29
#: The inner packet plus 44 octets of GTP-U/UDP/IPv4 must fit the N3 MTU (1600 in the topology).
MAX_SIZE: Final = 1500


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
