"""Forwarding engine micro-benchmark: packets/s through Forwarder.uplink() and downlink(), per direction.

Run from the repository root::

    .venv/bin/python bench/forwarder.py                    # 200 000 packets per direction, best of 5
    .venv/bin/python bench/forwarder.py --quick            # smoke run (2 000 packets, 1 run)
    .venv/bin/python bench/forwarder.py --json out.json    # also write the report as JSON

What is measured
----------------
The pure engine, :class:`user_plane.forward.Forwarder`, called in a loop in this
process: no sockets, no TUN, no event loop, no system calls. It is the ceiling of
the software dataplane (``bench/upf_dataplane.py`` measures the real path).

One session with one uplink PDR (F-TEID, UE IP anti-spoofing, Outer Header
Removal) and one downlink PDR (UE IP, Outer Header Creation GTP-U/UDP/IPv4), both
with one QER (MBR 10 Gbit/s, QFI 9, so downlink G-PDUs carry a PDU Session
Container) and one URR measuring volume and packets. Uplink input is a G-PDU
with a UL PDU Session Container around a 100-octet IPv4/UDP packet; downlink
input the same 100-octet packet towards the UE. Packets are 1 µs apart in
simulated time (800 Mbit/s, below the MBR: none may be dropped). The garbage
collector is off while a run is timed, as with ``timeit``.

A run counts what the engine returned for forwarding; afterwards the benchmark
checks that every packet sent was forwarded, that the URR counted each of them
in its direction, that no drop counter moved, and that one packet per direction
comes out with the expected bytes. It exits with status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import struct
import sys
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pfcp
from bench.pfcp_node import cpu_model
from user_plane import gtpu
from user_plane.forward import Forwarder
from user_plane.rules import Far, LocalFTeid, Pdr, Qer, Urr
from user_plane.session import SessionState

UE, DN, GNB, N3 = "198.19.0.10", "198.18.2.2", "198.18.1.2", "198.18.1.1"
INSTANCE: Final = "internet"
UL_TEID, DL_TEID, QFI = 0x1000, 0x2000, 9
PACKET_SIZE: Final = 100
T0: Final = 1_800_000_000.0
SPACING: Final = 1e-6  # simulated seconds between packets
DIRECTIONS: Final = ("uplink", "downlink")
DEFAULT_PACKETS, DEFAULT_REPEAT = 200_000, 5
QUICK_PACKETS, QUICK_REPEAT = 2_000, 1
ENGINE: Final = (
    "user_plane.forward.Forwarder.uplink()/downlink() called in a loop: the pure engine, "
    "no sockets, no TUN, no event loop"
)
SESSION: Final = (
    "1 session: UL PDR (F-TEID, UE IP, OHR) and DL PDR (UE IP, OHC GTP-U/IPv4), 1 QER (MBR 10 Gbit/s, QFI 9), "
    "1 URR (volume, packets)"
)


def ipv4_udp(src: str, dst: str, size: int) -> bytes:
    """An IPv4/UDP packet of ``size`` octets (checksums are not looked at by the engine)."""
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 17, 0, IPv4Address(src).packed, IPv4Address(dst).packed
    )
    return header + struct.pack("!HHHH", 1000, 2000, size - 20, 0) + bytes(size - 28)


def session() -> SessionState:
    si, di, aa = pfcp.SourceInterfaceValue, pfcp.DestinationInterfaceValue, pfcp.ApplyActionFlags
    ul = Pdr(
        1,
        100,
        si.ACCESS,
        local_f_teid=LocalFTeid(UL_TEID, IPv4Address(N3)),
        ue_ip_addresses=(pfcp.UEIPAddress(ipv4=IPv4Address(UE)),),
        outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
        far_id=1,
        qer_ids=(1,),
        urr_ids=(1,),
    )
    dl = Pdr(
        2,
        100,
        si.CORE,
        ue_ip_addresses=(pfcp.UEIPAddress(ipv4=IPv4Address(UE), is_destination=True),),
        far_id=2,
        qer_ids=(1,),
        urr_ids=(1,),
    )
    ohc = pfcp.OuterHeaderCreation(
        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=DL_TEID, ipv4=IPv4Address(GNB)
    )
    fars = {
        1: Far(1, aa.FORW, di.CORE, network_instance=INSTANCE),
        2: Far(2, aa.FORW, di.ACCESS, outer_header_creation=ohc),
    }
    qer = Qer(1, mbr_ul=10_000_000, mbr_dl=10_000_000, qfi=QFI)
    urr = Urr(
        1,
        pfcp.MeasurementMethodFlags.VOLUM,
        pfcp.ReportingTriggersFlags(0),
        measurement_information=pfcp.MeasurementInformationFlags.MNOP,
    )
    return SessionState(pfcp.FSEID(1, IPv4Address("198.18.0.1")), 1, {1: ul, 2: dl}, fars, {1: qer}, {1: urr})


def run(packets: int, repeat: int) -> dict[str, Any]:
    """Best packets/s of ``repeat`` runs of ``packets`` packets per direction, and the checks."""
    fwd = Forwarder(IPv4Address(N3), None, [INSTANCE])
    fwd.install(session(), T0)
    inner = ipv4_udp(UE, DN, PACKET_SIZE)
    up = gtpu.encode_gpdu_header(UL_TEID, len(inner), QFI, pdu_type_dl=False) + inner
    down = ipv4_udp(DN, UE, PACKET_SIZE)
    clock = [0]

    def times() -> list[float]:
        start = clock[0]
        clock[0] += packets
        return [T0 + (start + i) * SPACING for i in range(packets)]

    def uplink(ts: list[float]) -> int:
        forward, forwarded = fwd.uplink, 0
        for t in ts:
            if forward(up, t) is not None:
                forwarded += 1
        return forwarded

    def downlink(ts: list[float]) -> int:
        forward, forwarded = fwd.downlink, 0
        for t in ts:
            if forward(INSTANCE, down, t) is not None:
                forwarded += 1
        return forwarded

    loops: dict[str, Callable[[list[float]], int]] = {"uplink": uplink, "downlink": downlink}
    results: list[dict[str, Any]] = []
    for direction in DIRECTIONS:
        best, forwarded = float("inf"), 0
        for _ in range(repeat):
            ts = times()  # built outside the timed call
            gc.disable()  # as timeit does: a collection pause is not the engine's cost
            try:
                start = time.perf_counter()
                forwarded += loops[direction](ts)
                elapsed = time.perf_counter() - start
            finally:
                gc.enable()
            best = min(best, elapsed)
        results.append(
            {
                "direction": direction,
                "packets_per_run": packets,
                "runs": repeat,
                "sent": packets * repeat,
                "forwarded": forwarded,
                "pps": packets / best,
                "us_per_packet": best / packets * 1e6,
            }
        )
    now = T0 + clock[0] * SPACING
    (usage,) = fwd.query(1, [1], now)
    results[0]["urr_packets"], results[1]["urr_packets"] = usage.ul_packets, usage.dl_packets
    # One more packet per direction, outside the timing: its bytes are what the rules say.
    sample_ul = fwd.uplink(up, now) == (INSTANCE, inner)
    sample_dl = fwd.downlink(INSTANCE, down, now) == (
        gtpu.encode_gpdu_header(DL_TEID, len(down), QFI) + down,
        (GNB, gtpu.GTPU_PORT),
    )
    counters = dict(fwd.counters)
    problems = [
        f"{r['direction']}: {r['forwarded']} of {r['sent']} forwarded, the URR counted {r['urr_packets']}"
        for r in results
        if not r["forwarded"] == r["urr_packets"] == r["sent"]
    ]
    if counters:
        problems.append(f"engine counters moved: {counters}")
    if not (sample_ul and sample_dl):
        problems.append(f"sample packets not as expected (uplink ok: {sample_ul}, downlink ok: {sample_dl})")
    return {
        "settings": {
            "engine": ENGINE,
            "session": SESSION,
            "packet_size": PACKET_SIZE,
            "packets_per_run": packets,
            "runs": repeat,
            "spacing_s": SPACING,
        },
        "environment": {
            "python": sys.version.split()[0],
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "loadavg": list(os.getloadavg()),
        },
        "results": results,
        "counters": counters,
        "problems": problems,
    }


def format_report(report: dict[str, Any]) -> str:
    s, env = report["settings"], report["environment"]
    lines = [
        "Forwarding engine benchmark, per direction (the pure engine without sockets)",
        f"engine: {s['engine']}",
        f"session: {s['session']}",
        f"input: {s['packet_size']}-octet IPv4/UDP packets; best of {s['runs']} runs of {s['packets_per_run']}",
        f"python {env['python']}, {env['cpu']}, {env['cores']} cores, load {env['loadavg']}",
        "",
        f"{'direction':9s} {'packets/s':>10s} {'us/packet':>10s} {'forwarded':>10s} {'sent':>10s}",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['direction']:9s} {r['pps']:10.0f} {r['us_per_packet']:10.2f} {r['forwarded']:10d} {r['sent']:10d}"
        )
    lines += [f"PROBLEM: {p}" for p in report["problems"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=DEFAULT_PACKETS, help="packets per run and direction")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs per direction (the best counts)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run ({QUICK_PACKETS} packets, 1 run)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON to PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.packets, args.repeat = QUICK_PACKETS, QUICK_REPEAT
    if args.packets < 1 or args.repeat < 1:
        parser.error("--packets and --repeat must be at least 1")
    report = run(args.packets, args.repeat)
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
