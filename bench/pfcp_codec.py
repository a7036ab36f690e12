"""PFCP codec benchmark: our codec against scapy and pycrate, in one process.

Run from the repository root::

    .venv/bin/python bench/pfcp_codec.py                  # full run (1-2 minutes)
    .venv/bin/python bench/pfcp_codec.py --quick          # smoke run, a few seconds
    .venv/bin/python bench/pfcp_codec.py --json out.json  # also write the results

Our codec runs compiled when ``make accel`` has built it (``make bench`` does),
pure Python otherwise; the report says which. A compiled run also measures our
codec in pure Python, in a child process with ``EDGECUPS_PURE=1``, and reports
both (``--no-pure`` skips that).

What is measured
----------------
Three messages, each as one fixed byte string that every implementation reads:

* ``heartbeat-request``: a Heartbeat Request (Recovery Time Stamp only);
* ``session-establishment-request``: the golden vector of
  ``../shared/pfcp-vectors/session-establishment-request.hex`` (370 octets);
* ``session-modification-request``: a Session Modification Request updating 8
  PDRs (Update PDR: PDR ID, Precedence, PDI with Source Interface, F-TEID,
  Network Instance and UE IP Address; FAR ID, URR ID, QER ID), built with our
  typed classes and encoded once by our codec.

Three operations, as messages per second:

* ``decode``: bytes -> the library's complete message object. Ours:
  ``pfcp.decode(b)``. scapy: ``PFCP(b)`` (scapy dissects every layer and every
  ``PacketListField`` eagerly in the constructor; nothing is left for later).
  pycrate: ``parse_PFCP(b)`` (eager too; its error code is checked).
* ``encode``: message object -> bytes, with every derived value (lengths)
  computed by the library, as when the message was built by hand. The object
  is a decoded message prepared once, outside the timed loop:

  - ours: the ``pfcp.decode`` result; ``pfcp.encode`` has no cache.
  - scapy: a dissected packet keeps its input octets in ``raw_packet_cache``
    (``bytes(pkt)`` would just return them) and keeps every dissected
    ``length`` field, so a rebuild skips the length computation. We clear the
    cache and reset every ``length`` field to ``None`` in every layer and in
    every IE (:func:`scapy_unfreeze`), then time ``bytes(pkt)``; scapy's build
    does not write either back, so each call is a full rebuild.
  - pycrate: ``parse_PFCP`` sets every length explicitly; ``reautomate()``
    returns them to their automatic values, then ``to_bytes()`` is timed.
    pycrate keeps no byte cache.

* ``roundtrip``: decode then encode, where encode is the operation above: ours
  ``pfcp.encode(pfcp.decode(b))``; scapy ``PFCP(b)``, :func:`scapy_unfreeze`,
  ``bytes()``; pycrate ``parse_PFCP(b)``, ``reautomate()``, ``to_bytes()``.

Each library's encode and round-trip outputs are checked against the input
bytes, and re-decoded both by the library itself and by ``pfcp.decode``
(compared with our decoding of the input). The input is also checked to be
decoded completely: no ``Raw``, ``Padding`` or ``IE_NotImplemented`` layer in
scapy's packet, and no IE that pycrate has a structure for but silently kept
as raw bytes. Differences are printed as notes, never hidden.

Method
------
For every (message, library, operation) a ``time.perf_counter`` loop is first
calibrated until one loop of ``n`` calls lasts at least ``--min-time`` seconds
(default 0.5); that calibration doubles as warm-up. Then ``--repeats`` loops
(default 3) of ``n`` calls are timed and the best one gives the rate. Everything
runs in one process, in a fixed order, with no CPU pinning and with the garbage
collector on (object-heavy decoders pay for it in real use too; ``--no-gc``
turns it off as :mod:`timeit` does). The report names the Python version, CPU
model, date and load average, because numbers from different machines, or from
a busy one, are not comparable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.machinery import EXTENSION_SUFFIXES
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pfcp
import pfcp.ie.base

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Shared reference material lives next to the repository, never inside it.
SHARED_DIR = REPO_ROOT / ".." / "shared"
GOLDEN_SER_PATH = SHARED_DIR / "pfcp-vectors" / "session-establishment-request.hex"

OPERATIONS = ("decode", "encode", "roundtrip")
CODEC_NAMES = ("ours", "scapy", "pycrate")
#: Number of Update PDR IEs in the Session Modification Request case.
SMR_PDRS = 8

#: The goal for our codec: golden Session Establishment Request round trips per second.
TARGET_SER_ROUNDTRIPS = 25_000

DEFAULT_MIN_TIME = 0.5
DEFAULT_REPEATS = 3
QUICK_MIN_TIME = 0.02
QUICK_REPEATS = 1


class BenchError(Exception):
    """The benchmark cannot run as asked (missing input, a peer that fails)."""


# --------------------------------------------------------------------------
# The messages


@dataclass(frozen=True)
class Case:
    """One message, as the bytes every implementation reads."""

    name: str
    data: bytes
    description: str


def heartbeat_request_bytes() -> bytes:
    """A Heartbeat Request carrying only its Recovery Time Stamp (16 octets)."""
    msg = pfcp.HeartbeatRequest(sequence=7, recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_000))
    return pfcp.encode(msg)


def golden_ser_bytes(path: Path = GOLDEN_SER_PATH) -> bytes:
    """The golden Session Establishment Request; raises BenchError when it is absent."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BenchError(
            f"golden vector not found at {path.resolve()}: the benchmark needs ../shared/pfcp-vectors "
            "next to the repository (or pass --golden PATH)"
        ) from None
    try:
        return bytes.fromhex(text.strip())
    except ValueError as exc:
        raise BenchError(f"{path}: not a hex string ({exc})") from None


def session_modification_request(pdrs: int = SMR_PDRS) -> pfcp.SessionModificationRequest:
    """A Session Modification Request updating ``pdrs`` PDRs, built with the typed classes."""
    updates = tuple(
        pfcp.UpdatePDR(
            pdr_id=pfcp.PDRID(i),
            precedence=pfcp.Precedence(100 + i),
            pdi=pfcp.PDI(
                source_interface=pfcp.SourceInterface(pfcp.SourceInterfaceValue.ACCESS),
                local_f_teid=pfcp.FTEID(teid=0x10000 + i, ipv4=IPv4Address("10.0.0.2")),
                network_instance=pfcp.NetworkInstance("internet"),
                ue_ip_address=(pfcp.UEIPAddress(ipv4=IPv4Address("10.45.0.0") + i),),
            ),
            far_id=pfcp.FARID(i),
            urr_id=(pfcp.URRID(i),),
            qer_id=(pfcp.QERID(i),),
        )
        for i in range(1, pdrs + 1)
    )
    return pfcp.SessionModificationRequest(sequence=2, seid=0x1122334455667788, update_pdr=updates)


def build_cases(golden_path: Path = GOLDEN_SER_PATH) -> list[Case]:
    """The three benchmark messages, in report order."""
    ser = golden_ser_bytes(golden_path)
    return [
        Case("heartbeat-request", heartbeat_request_bytes(), "Heartbeat Request"),
        Case("session-establishment-request", ser, "golden Session Establishment Request"),
        Case(
            "session-modification-request",
            pfcp.encode(session_modification_request()),
            f"Session Modification Request, {SMR_PDRS} x Update PDR",
        ),
    ]


# --------------------------------------------------------------------------
# The implementations


@dataclass(frozen=True)
class Codec:
    """One implementation, reduced to the three timed operations.

    ``prepare(b)`` returns the object ``encode`` serialises (done once, untimed);
    ``redecode(b)`` decodes with the library itself and raises if it cannot.
    """

    name: str
    version: str
    decode: Callable[[bytes], Any]
    prepare: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]
    roundtrip: Callable[[bytes], bytes]
    redecode: Callable[[bytes], Any]


def ours_codec() -> Codec:
    """This repository's codec."""
    decode = pfcp.decode
    encode = pfcp.encode

    def roundtrip(data: bytes) -> bytes:
        return encode(decode(data))

    return Codec("ours", _dist_version("edgecups"), decode, decode, encode, roundtrip, decode)


def scapy_unfreeze(pkt: Any) -> Any:
    """Make a dissected scapy packet build from its fields, lengths included.

    Clears ``raw_packet_cache`` and sets every ``length`` field to None, in
    every layer and every packet held by a field (the IE lists, recursively).
    Returns ``pkt``.
    """
    from scapy.packet import NoPayload, Packet

    return _scapy_unfreeze(pkt, NoPayload, Packet)


def _scapy_unfreeze(pkt: Any, no_payload: type, packet: type) -> Any:
    todo = [pkt]
    while todo:
        layer = todo.pop()
        while not isinstance(layer, no_payload):
            layer.raw_packet_cache = None
            fields = layer.fields
            if "length" in fields:
                fields["length"] = None
            for fld in layer.fields_desc:
                if fld.holds_packets:
                    value = fields.get(fld.name)
                    if isinstance(value, list):
                        todo.extend(value)
                    elif isinstance(value, packet):
                        todo.append(value)
            layer = layer.payload
    return pkt


def scapy_codec() -> Codec:
    """scapy's ``scapy.contrib.pfcp`` (raises ImportError when scapy is absent)."""
    import scapy
    from scapy.contrib.pfcp import PFCP
    from scapy.packet import NoPayload, Packet

    def decode(data: bytes) -> Any:
        return PFCP(data)

    def prepare(data: bytes) -> Any:
        return _scapy_unfreeze(PFCP(data), NoPayload, Packet)

    def encode(pkt: Any) -> bytes:
        return bytes(pkt)

    def roundtrip(data: bytes) -> bytes:
        return bytes(_scapy_unfreeze(PFCP(data), NoPayload, Packet))

    def redecode(data: bytes) -> Any:
        pkt = PFCP(data)
        leftovers = _scapy_unparsed(pkt)
        if leftovers:
            raise BenchError(f"scapy left parts undissected: {', '.join(leftovers)}")
        return pkt

    return Codec("scapy", str(scapy.__version__), decode, prepare, encode, roundtrip, redecode)


def _scapy_unparsed(pkt: Any) -> list[str]:
    """Names of layers scapy could not dissect (Raw, Padding, IE_NotImplemented)."""
    from scapy.packet import NoPayload, Packet

    bad: list[str] = []
    todo = [pkt]
    while todo:
        layer = todo.pop()
        while not isinstance(layer, NoPayload):
            name = type(layer).__name__
            if name in ("Raw", "Padding", "IE_NotImplemented"):
                bad.append(name)
            for fld in layer.fields_desc:
                if fld.holds_packets:
                    value = layer.fields.get(fld.name)
                    if isinstance(value, list):
                        todo.extend(value)
                    elif isinstance(value, Packet):
                        todo.append(value)
            layer = layer.payload
    return bad


def pycrate_codec() -> Codec:
    """pycrate's ``pycrate_mobile.TS29244_PFCP`` (raises ImportError when absent)."""
    from pycrate_core.base import Buf
    from pycrate_mobile.TS29244_PFCP import PFCPIELUT, PFCPIEs, parse_PFCP

    def decode(data: bytes) -> Any:
        msg, err = parse_PFCP(data)
        if err:
            raise BenchError(f"pycrate parse_PFCP error {err}")
        return msg

    def redecode(data: bytes) -> Any:
        msg = decode(data)
        raw = _pycrate_raw_ies(msg[1], Buf, PFCPIELUT, PFCPIEs)
        if raw:
            raise BenchError(f"pycrate fell back to raw bytes for IE types {raw}")
        return msg

    def prepare(data: bytes) -> Any:
        msg = decode(data)
        msg.reautomate()
        return msg

    def encode(msg: Any) -> bytes:
        out: bytes = msg.to_bytes()
        return out

    def roundtrip(data: bytes) -> bytes:
        msg, err = parse_PFCP(data)
        if err:
            raise BenchError(f"pycrate parse_PFCP error {err}")
        msg.reautomate()
        out: bytes = msg.to_bytes()
        return out

    return Codec("pycrate", _dist_version("pycrate"), decode, prepare, encode, roundtrip, redecode)


def _pycrate_raw_ies(ies: Any, buf: type, lut: dict[int, type], grouped: type) -> list[int]:
    """IE types pycrate has a structure for but kept as raw bytes (it does so
    silently when a structure does not parse), searched recursively."""
    raw: list[int] = []
    for ie in ies:
        ie_type = ie[0].get_val()
        data = ie[3]
        cls = lut.get(ie_type)
        if isinstance(data, buf) and cls is not None and not issubclass(cls, buf):
            raw.append(ie_type)
        elif isinstance(data, grouped):
            raw.extend(_pycrate_raw_ies(data, buf, lut, grouped))
    return raw


_FACTORIES: dict[str, Callable[[], Codec]] = {
    "ours": ours_codec,
    "scapy": scapy_codec,
    "pycrate": pycrate_codec,
}


def load_codecs(names: Sequence[str] = CODEC_NAMES) -> tuple[list[Codec], list[str]]:
    """The implementations that import, and a note for each that does not."""
    codecs: list[Codec] = []
    notes: list[str] = []
    for name in names:
        try:
            codecs.append(_FACTORIES[name]())
        except ImportError as exc:
            notes.append(f"{name}: not installed ({exc}); skipped")
    return codecs, notes


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------
# Checks: does each library's output reproduce the input?


@dataclass(frozen=True)
class Check:
    """What one library's encode and round trip produced for one message."""

    message: str
    codec: str
    encode_identical: bool
    roundtrip_identical: bool
    notes: tuple[str, ...]


def check_codec(case: Case, codec: Codec) -> Check:
    """Compare ``codec``'s encode/round-trip output with the input and re-decode it.

    The output is decoded again by the library itself and by ``pfcp.decode``;
    the latter must equal our decoding of the input.
    """
    notes: list[str] = []
    reference = pfcp.decode(case.data)
    try:
        codec.redecode(case.data)
    except Exception as exc:
        notes.append(f"the input does not decode completely with {codec.name}: {exc!r}")
    encoded = codec.encode(codec.prepare(case.data))
    round_tripped = codec.roundtrip(case.data)
    for label, out in (("encode", encoded), ("roundtrip", round_tripped)):
        if out != case.data:
            notes.append(f"{label} output differs from the input: {_first_difference(case.data, out)}")
        try:
            codec.redecode(out)
        except Exception as exc:
            notes.append(f"{label} output does not decode again with {codec.name}: {exc!r}")
        try:
            ours = pfcp.decode(out)
        except pfcp.DecodeError as exc:
            notes.append(f"{label} output is rejected by pfcp.decode: {exc}")
        else:
            if ours != reference:
                notes.append(f"{label} output decodes (pfcp.decode) to a different message")
    return Check(case.name, codec.name, encoded == case.data, round_tripped == case.data, tuple(notes))


def _first_difference(expected: bytes, got: bytes) -> str:
    for i, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            return f"{len(got)} octets vs {len(expected)}; first difference at octet {i} ({b:#04x}, expected {a:#04x})"
    return f"{len(got)} octets vs {len(expected)}; one is a prefix of the other"


# --------------------------------------------------------------------------
# Timing


@dataclass(frozen=True)
class Measurement:
    """The timing of one (message, library, operation)."""

    message: str
    size: int
    codec: str
    op: str
    iterations: int
    #: seconds for ``iterations`` calls, one entry per timed repeat
    runs: tuple[float, ...]

    @property
    def best(self) -> float:
        """The fastest repeat, in seconds."""
        return min(self.runs)

    @property
    def rate(self) -> float:
        """Messages per second of the fastest repeat."""
        return self.iterations / self.best if self.best > 0 else math.inf

    @property
    def us_per_msg(self) -> float:
        """Microseconds per message of the fastest repeat."""
        return self.best / self.iterations * 1e6


_clock: Callable[[], float] = time.perf_counter


def time_calls(fn: Callable[[Any], object], arg: object, iterations: int) -> float:
    """Seconds that ``iterations`` calls of ``fn(arg)`` take."""
    clock = _clock
    loop = itertools.repeat(None, iterations)
    start = clock()
    for _ in loop:
        fn(arg)
    return clock() - start


def calibrate(fn: Callable[[Any], object], arg: object, min_time: float) -> int:
    """The number of calls for one loop to last at least ``min_time`` seconds."""
    n = 1
    while True:
        elapsed = time_calls(fn, arg, n)
        if elapsed >= min_time:
            return n
        if elapsed <= 0:
            n *= 10
        else:
            # aim 20% past the target, at least doubling, at most x100 per step
            n = min(n * 100, max(n * 2, math.ceil(n * min_time * 1.2 / elapsed)))


def measure(
    case: Case,
    codec: Codec,
    op: str,
    *,
    min_time: float = DEFAULT_MIN_TIME,
    repeats: int = DEFAULT_REPEATS,
    iterations: int | None = None,
) -> Measurement:
    """Time one operation of one library on one message.

    ``iterations`` fixes the loop size instead of calibrating it (for tests).
    """
    fn: Callable[[Any], object]
    arg: object
    if op == "decode":
        fn, arg = codec.decode, case.data
    elif op == "encode":
        fn, arg = codec.encode, codec.prepare(case.data)
    elif op == "roundtrip":
        fn, arg = codec.roundtrip, case.data
    else:
        raise ValueError(f"unknown operation {op!r}; expected one of {OPERATIONS}")
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    n = calibrate(fn, arg, min_time) if iterations is None else iterations
    runs = tuple(time_calls(fn, arg, n) for _ in range(repeats))
    return Measurement(case.name, len(case.data), codec.name, op, n, runs)


# --------------------------------------------------------------------------
# Running and reporting


@dataclass
class Report:
    """Everything one run produced."""

    environment: dict[str, Any]
    settings: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Our codec's results in pure Python (a child process), when this run was compiled.
    pure: list[dict[str, Any]] | None = None

    def rate(self, message: str, codec: str, op: str) -> float | None:
        """Messages per second of one (message, library, operation), if measured."""
        for m in self.measurements:
            if (m.message, m.codec, m.op) == (message, codec, op):
                return m.rate
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable view of the report."""
        return {
            "environment": self.environment,
            "settings": self.settings,
            "results": [
                {
                    "message": m.message,
                    "size": m.size,
                    "codec": m.codec,
                    "op": m.op,
                    "msgs_per_s": m.rate,
                    "us_per_msg": m.us_per_msg,
                    "iterations": m.iterations,
                    "runs_s": list(m.runs),
                }
                for m in self.measurements
            ],
            "ratios_ours_over_peer": self.ratios(),
            "target": self.target(),
            "checks": [asdict(c) for c in self.checks],
            "notes": self.notes,
            "pure_results": self.pure,
        }

    def target(self) -> dict[str, Any]:
        """Our golden-SER round-trip rate against :data:`TARGET_SER_ROUNDTRIPS`."""
        rate = self.rate("session-establishment-request", "ours", "roundtrip")
        return {
            "what": "ours, session-establishment-request, roundtrip",
            "msgs_per_s": TARGET_SER_ROUNDTRIPS,
            "measured": rate,
            "met": None if rate is None else rate >= TARGET_SER_ROUNDTRIPS,
        }

    def ratios(self) -> list[dict[str, Any]]:
        """ours / peer rate for every (message, operation, peer) measured for both."""
        out: list[dict[str, Any]] = []
        for m in self.measurements:
            if m.codec == "ours":
                continue
            ours = self.rate(m.message, "ours", m.op)
            if ours is not None:
                out.append({"message": m.message, "op": m.op, "peer": m.codec, "ratio": ours / m.rate})
        return out


def codec_mode() -> str:
    """``compiled`` when pfcp's codec was imported from Cython extensions, else ``pure``."""
    return "compiled" if pfcp.ie.base.__file__.endswith(tuple(EXTENSION_SUFFIXES)) else "pure"


def pure_results(
    *, min_time: float, repeats: int, golden_path: Path, no_gc: bool
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Our codec's results measured in pure Python by a child process (``EDGECUPS_PURE=1``).

    Returns (results, None), or (None, why) when the child failed.
    """
    with tempfile.TemporaryDirectory(prefix="pfcp-bench-") as tmp:
        out = Path(tmp) / "pure.json"
        argv = [sys.executable, str(Path(__file__).resolve()), "--codec", "ours", "--no-pure"]
        argv += ["--min-time", str(min_time), "--repeats", str(repeats), "--golden", str(golden_path)]
        argv += ["--json", str(out)] + (["--no-gc"] if no_gc else [])
        proc = subprocess.run(
            argv, env={**os.environ, "EDGECUPS_PURE": "1"}, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not out.exists():
            return None, f"the pure-Python run failed ({proc.returncode}): {proc.stderr.strip()[-500:]}"
        data = json.loads(out.read_text())
    if data["environment"].get("pfcp_mode") != "pure":
        return None, "the pure-Python run did not run pure Python"
    results: list[dict[str, Any]] = data["results"]
    return results, None


def environment() -> dict[str, Any]:
    """Python version, CPU model, core count, date, load average and pfcp's mode."""
    return {
        "pfcp_mode": codec_mode(),
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_start": _loadavg(),
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


def run(
    *,
    min_time: float = DEFAULT_MIN_TIME,
    repeats: int = DEFAULT_REPEATS,
    codecs: Sequence[str] = CODEC_NAMES,
    golden_path: Path = GOLDEN_SER_PATH,
    iterations: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Check and time every (message, library, operation); return the report."""
    cases = build_cases(golden_path)
    loaded, notes = load_codecs(codecs)
    report = Report(
        environment(),
        {
            "min_time_s": min_time,
            "repeats": repeats,
            "iterations": iterations,
            "gc_enabled": gc.isenabled(),
            "codecs": {c.name: c.version for c in loaded},
            "messages": {c.name: len(c.data) for c in cases},
        },
        notes=notes,
    )
    for case in cases:
        for codec in loaded:
            check = check_codec(case, codec)
            report.checks.append(check)
            report.notes.extend(f"{case.name} / {codec.name}: {note}" for note in check.notes)
            for op in OPERATIONS:
                m = measure(case, codec, op, min_time=min_time, repeats=repeats, iterations=iterations)
                report.measurements.append(m)
                if progress is not None:
                    progress(f"  {case.name:<31} {codec.name:<8} {op:<10} {m.rate:>12,.0f} msg/s")
    report.environment["loadavg_end"] = _loadavg()
    return report


def format_report(report: Report) -> str:
    """The human-readable table: msg/s per library, and ours/peer ratios."""
    env = report.environment
    lines = [
        "PFCP codec benchmark",
        f"  python   {env['python']}",
        f"  cpu      {env['cpu']} ({env['cpus']} logical CPUs)",
        f"  date     {env['date']}",
        f"  load     {env.get('loadavg_start')} at start, {env.get('loadavg_end')} at end (1/5/15 min)",
        f"  method   best of {report.settings['repeats']} loops of >= {report.settings['min_time_s']} s"
        + (f" (fixed {report.settings['iterations']} calls)" if report.settings["iterations"] else "")
        + f", gc {'on' if report.settings['gc_enabled'] else 'off'}",
        "  libs     " + ", ".join(f"{k} {v}" for k, v in report.settings["codecs"].items()),
        f"  pfcp     {env.get('pfcp_mode', codec_mode())}"
        + (" (Cython extensions, make accel)" if env.get("pfcp_mode") == "compiled" else " (pure Python)"),
        "",
    ]
    peers = [c for c in report.settings["codecs"] if c != "ours"]
    has_ours = "ours" in report.settings["codecs"]
    labels = {name: f"{name} ({size} B)" for name, size in report.settings["messages"].items()}
    width = max([len("message"), *map(len, labels.values())])
    header = f"{'message':<{width}} {'op':<10}" + "".join(
        f"{name + ' msg/s':>15}" for name in report.settings["codecs"]
    )
    if has_ours:
        header += "".join(f"{'ours/' + p:>14}" for p in peers)
    lines += [header, "-" * len(header)]
    for message, label in labels.items():
        for op in OPERATIONS:
            row = f"{label:<{width}} {op:<10}"
            for name in report.settings["codecs"]:
                rate = report.rate(message, name, op)
                row += f"{'-' if rate is None else f'{rate:,.0f}':>15}"
            if has_ours:
                ours = report.rate(message, "ours", op)
                for peer in peers:
                    other = report.rate(message, peer, op)
                    cell = "-" if ours is None or not other else f"{ours / other:,.1f}x"
                    row += f"{cell:>14}"
            lines.append(row)
    target = report.target()
    if target["measured"] is not None:
        verdict = "met" if target["met"] else "NOT met"
        lines.append("")
        lines.append(
            f"Target: ours >= {TARGET_SER_ROUNDTRIPS:,} golden SER round trips/s; "
            f"measured {target['measured']:,.0f} ({verdict})"
        )
    if report.pure:
        lines.append("")
        lines.append("ours in pure Python (EDGECUPS_PURE=1, child process), against the compiled run above:")
        for r in report.pure:
            compiled = report.rate(r["message"], "ours", r["op"])
            ratio = "" if not compiled else f"   compiled/pure {compiled / r['msgs_per_s']:.2f}x"
            label = labels.get(r["message"], r["message"])
            lines.append(f"  {label:<{width}} {r['op']:<10}{r['msgs_per_s']:>15,.0f}{ratio}")
        pure_ser = next(
            (
                r["msgs_per_s"]
                for r in report.pure
                if (r["message"], r["op"]) == ("session-establishment-request", "roundtrip")
            ),
            None,
        )
        if pure_ser is not None:
            lines.append(f"  golden SER round trips/s: compiled {target['measured'] or 0:,.0f}, pure {pure_ser:,.0f}")
    lines.append("")
    lines.append("Output checks (encode / roundtrip output == input bytes):")
    for check in report.checks:
        status = "identical" if check.encode_identical and check.roundtrip_identical else "DIFFERENT"
        lines.append(f"  {check.message:<31} {check.codec:<8} {status}")
    if report.notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in report.notes)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--min-time", type=float, default=None, help=f"seconds per timed loop (default {DEFAULT_MIN_TIME})"
    )
    parser.add_argument("--repeats", type=int, default=None, help=f"timed loops per case (default {DEFAULT_REPEATS})")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: --min-time {QUICK_MIN_TIME} --repeats {QUICK_REPEATS}"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--codec", action="append", choices=CODEC_NAMES, help="run only this implementation (repeatable)"
    )
    parser.add_argument("--golden", type=Path, default=GOLDEN_SER_PATH, help="the golden SER hex file")
    parser.add_argument("--no-gc", action="store_true", help="disable the garbage collector while timing")
    parser.add_argument(
        "--no-pure", action="store_true", help="when compiled, do not also measure our codec in pure Python"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each result as it is measured")
    args = parser.parse_args(argv)

    min_time = args.min_time if args.min_time is not None else QUICK_MIN_TIME if args.quick else DEFAULT_MIN_TIME
    repeats = args.repeats if args.repeats is not None else QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    if min_time <= 0 or repeats < 1:
        parser.error("--min-time must be positive and --repeats at least 1")
    codecs = tuple(name for name in CODEC_NAMES if name in args.codec) if args.codec else CODEC_NAMES

    gc_was_enabled = gc.isenabled()
    if args.no_gc:
        gc.disable()
    try:
        report = run(
            min_time=min_time,
            repeats=repeats,
            codecs=codecs,
            golden_path=args.golden,
            progress=(lambda s: print(s, file=sys.stderr, flush=True)) if args.verbose else None,
        )
    except BenchError as exc:
        print(f"pfcp_codec benchmark: {exc}", file=sys.stderr)
        return 2
    finally:
        if gc_was_enabled:
            gc.enable()
    if not args.no_pure and "ours" in codecs and codec_mode() == "compiled":
        report.pure, failure = pure_results(
            min_time=min_time, repeats=repeats, golden_path=args.golden, no_gc=args.no_gc
        )
        if failure is not None:
            report.notes.append(failure)
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
