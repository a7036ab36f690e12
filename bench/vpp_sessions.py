"""The vpp driver's session programming rate: PFCP session states -> VPP API calls, per second.

Run from the repository root::

    .venv/bin/python bench/vpp_sessions.py                 # 2 000 sessions into the VPP API emulator
    .venv/bin/python bench/vpp_sessions.py --quick         # smoke run (200 sessions)
    .venv/bin/python bench/vpp_sessions.py --mbr 50000     # each session with an MBR: 2 policers more
    .venv/bin/python bench/vpp_sessions.py --socket /run/vpp/api.sock --api-dir /usr/share/vpp/api \\
        --n3-interface GigabitEthernet0/8/0 --n6-interface GigabitEthernet0/9/0   # a real VPP

What is measured
----------------
:class:`user_plane.vpp.driver.VppDriver` called directly (no PFCP): ``install`` of N
sessions (one uplink and one downlink PDR, one QER with QFI 9, as bench/_sessions.py builds
them for the software dataplane), then a handover of each (new gNB TEID: one
``gtpu_tunnel_update_tteid``), one usage poll of every tunnel (``gtpu_get_transfer_counts``
pages), and ``remove`` of each. Per phase: sessions/s, VPP calls per session and calls/s
(every API request the driver made, counter reads included: a change that makes a kept
tunnel feed other URRs first reads its counters; a removal reads them before the deletes).
A request is a synchronous round trip over the API socket, so the rate is bound by the
round trip: the driver in this process, VPP (or the emulator) in another.

Measured on the 2-core VM shared with other jobs (2026-11-29), 2 000 sessions into the
emulator: install 470-570 sessions/s at 4 calls/session (~1 900-2 300 calls/s); with an MBR
250 sessions/s at 8 calls; a gNB TEID change 1 call (~1 700/s); removal 3 calls; one poll of
2 000 tunnels' counters 2 calls, ~30 ms.

By default VPP is the API emulator of tests/vpp_emulator, started in a child process (its
Python handlers are much slower than VPP's C ones: compare the calls/s with a real VPP's
before drawing conclusions). Nothing is asserted; the numbers are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._sessions import GNB, N3, session_state  # noqa: E402
from user_plane.config import parse_config  # noqa: E402
from user_plane.session import SessionState  # noqa: E402
from user_plane.vpp.driver import VppDriver  # noqa: E402

_EMULATOR = """
import sys
from pathlib import Path
from tests.vpp_emulator import VppEmulator
with VppEmulator(Path(sys.argv[1]), Path(sys.argv[2]), interfaces=["n3-eth", "n6-eth"], record_calls=False):
    print("ready", flush=True)
    sys.stdin.read()
"""


def _config(socket: str, api_dir: str, n3_interface: str, n6_interface: str) -> Any:
    return parse_config(
        {
            "node_id": "upf.bench",
            "n4": {"address": "127.0.0.1"},
            "n3": str(N3),
            "n6": {"internet": {"interface": "n6-bench", "ue_pool": "198.19.0.0/16", "gateway": "198.18.2.2"}},
            "allowed_cps": ["127.0.0.1"],
            "driver": "vpp",
            "vpp": {
                "api_socket": socket,
                "api_dir": api_dir,
                "poll_interval": 3600,  # the benchmark polls itself
                "liveness_interval": 3600,
                "n3": {"interface": n3_interface, "address": f"{N3}/24"},
                "n6": {"internet": {"interface": n6_interface, "address": "198.18.2.1/24", "table_id": 100}},
            },
        }
    )


def _states(count: int, mbr: int | None) -> list[SessionState]:
    states = [session_state(i) for i in range(count)]
    if mbr is None:
        return states
    out = []
    for state in states:
        qers = {k: dataclasses.replace(q, mbr_ul=mbr, mbr_dl=mbr) for k, q in state.qers.items()}
        out.append(dataclasses.replace(state, qers=qers))
    return out


def _handed_over(state: SessionState) -> SessionState:
    far = state.fars[2]
    ohc = far.outer_header_creation
    assert ohc is not None and ohc.teid is not None
    moved = dataclasses.replace(ohc, teid=ohc.teid + 0x0100_0000)
    return dataclasses.replace(state, fars={**state.fars, 2: dataclasses.replace(far, outer_header_creation=moved)})


def _phase(name: str, count: int, seconds: float, calls: int) -> dict[str, Any]:
    return {
        "phase": name,
        "sessions": count,
        "seconds": round(seconds, 4),
        "sessions_per_s": round(count / seconds, 1) if seconds else None,
        "calls": calls,
        "calls_per_session": round(calls / count, 2) if count else None,
        "calls_per_s": round(calls / seconds, 1) if seconds else None,
    }


async def _run(config: Any, count: int, mbr: int | None) -> dict[str, Any]:
    driver = VppDriver.from_config(config)
    await driver.start()
    report: dict[str, Any] = {"sessions": count, "mbr_kbps": mbr, "node_setup_calls": driver.calls, "phases": []}
    try:
        states = _states(count, mbr)
        for name, batch in (("install", states), ("handover", [_handed_over(s) for s in states])):
            before, start = driver.calls, time.perf_counter()
            for state in batch:
                driver.install(state)
            report["phases"].append(_phase(name, count, time.perf_counter() - start, driver.calls - before))
        before, start = driver.calls, time.perf_counter()
        driver.poll()
        report["phases"].append(
            _phase("usage poll (all tunnels)", count, time.perf_counter() - start, driver.calls - before)
        )
        before, start = driver.calls, time.perf_counter()
        for state in states:
            driver.remove(state.up_seid)
        report["phases"].append(_phase("remove", count, time.perf_counter() - start, driver.calls - before))
    finally:
        await driver.stop()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 sessions")
    parser.add_argument("--mbr", type=int, default=None, help="MBR in kbit/s for every session (adds policers)")
    parser.add_argument("--socket", help="a real VPP's API socket (default: start the emulator)")
    parser.add_argument("--api-dir", default=str(ROOT / ".." / "shared" / "vpp-api" / "v26.06"))
    parser.add_argument("--n3-interface", default="n3-eth")
    parser.add_argument("--n6-interface", default="n6-eth")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    count = 200 if args.quick else args.sessions
    api_dir = os.environ.get("EDGECUPS_VPP_API_DIR", args.api_dir)
    with tempfile.TemporaryDirectory(prefix="vppbench-") as tmp:
        child = None
        socket = args.socket
        if socket is None:
            socket = str(Path(tmp) / "api.sock")
            child = subprocess.Popen(
                [sys.executable, "-c", _EMULATOR, socket, api_dir],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                print("the VPP API emulator did not start", file=sys.stderr)
                return 1
        try:
            report = asyncio.run(_run(_config(socket, api_dir, args.n3_interface, args.n6_interface), count, args.mbr))
        finally:
            if child is not None:
                assert child.stdin is not None
                child.stdin.close()
                child.wait(10)
    report["vpp"] = "VPP API emulator (tests/vpp_emulator, Python)" if args.socket is None else args.socket
    print(f"vpp driver, {count} sessions (1 UL + 1 DL PDR, QER QFI 9), gNB {GNB}, against {report['vpp']}")
    print(f"node setup: {report['node_setup_calls']} calls")
    for p in report["phases"]:
        print(
            f"  {p['phase']:<26} {p['sessions_per_s']:>9} sessions/s  {p['calls_per_session']:>6} calls/session"
            f"  {p['calls_per_s']:>9} calls/s  ({p['seconds']} s)"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
