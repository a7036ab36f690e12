"""The UPF side and the cases of bench/upf_dataplane.py.

* :func:`upf_main`: the child process inside the upf namespace, a
  :class:`user_plane.software.SoftwareDriver` driven by JSON lines on stdin
  (install N sessions, counters, fold timing, quit).
* :class:`Child`: a child process of the benchmark inside a namespace (``ip netns exec``).
* :class:`Bench`: one measured case (generator running, two snapshots a window apart).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, Final

from bench._sessions import INSTANCE, N3, N6, TUN, UE_POOL, BenchError, session_state
from bench._traffic import _emit, cpu_busy_ticks, process_cpu_seconds, rx_packets, udp_rcvbuf_errors

REPO_ROOT: Final = Path(__file__).resolve().parents[1]


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
