"""``sim traffic``: real traffic from every UE session, the checks it must pass, and the per-site table.

Each session sends, from its UE address inside its gNB's namespace (so every packet crosses
the gNB's GTP-U, the N3 router and the UPF), to the data-network server of the site the
control plane put it on (the edge application, or the internet in the cloud):

1. ICMP echo: ``ping_count`` requests every ``ping_interval`` s (a phase of its own, so the
   RTTs are free of the bulk phases' load);
2. a UDP stream: ``udp_pps`` packets/s of ``udp_size`` octets for ``udp_seconds``, echoed;
3. a TCP transfer of ``tcp_bytes`` each way (upload, then download).

Each phase runs ``parallel`` sessions at a time (threads of this process: fewer of them keep
the interpreter's lock from adding to the measured RTTs). With the defaults and the default topology
(12 sessions) the run takes about 10 s. The checks, all of which must pass for exit status 0:

* **placement**: the API says the session is active on the site it must be on (an edge DNN at
  the UE's own edge site, a cloud DNN at a cloud site);
* **ping**: at most ``max_loss`` (1%) of the echo requests unanswered (with 20: none);
* **udp**: at most ``max_loss`` lost uplink (the server's count) and round trip (the echoes);
* **tcp**: both transfers complete, every byte counted by the receiver.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from edge_sites.sim.netns import run_in_netns
from edge_sites.sim.traffic import PingResult, TcpResult, UdpResult, percentile, ping, tcp_transfer, udp_stream

from ..api_output import columns
from .state import SimSession

__all__ = ["SessionResult", "SiteSummary", "TrafficOptions", "TrafficReport", "run_traffic"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TrafficOptions:
    ping_count: int = 20
    ping_interval: float = 0.02
    udp_pps: float = 500.0
    udp_seconds: float = 1.0
    udp_size: int = 512
    tcp_bytes: int = 5_000_000
    parallel: int = 4
    max_loss: float = 0.01


@dataclass(slots=True)
class SessionResult:
    session: SimSession
    #: What the API says now: its state and site (None: the API does not know the session).
    state: str | None
    site: str | None
    expected_sites: frozenset[str]
    #: False when the API did not answer (state and site are then the ones recorded at ``up``).
    api_answered: bool = True
    ping: PingResult | None = None
    udp: UdpResult | None = None
    tcp: list[TcpResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "supi": self.session.supi,
            "dnn": self.session.dnn,
            "ue_site": self.session.ue_site,
            "site": self.site,
            "state": self.state,
            "ue_ip": self.session.ue_ip,
            "server": self.session.server,
            "ping": self.ping.to_dict() if self.ping else None,
            "udp": self.udp.to_dict() if self.udp else None,
            "tcp": [t.to_dict() for t in self.tcp],
            "passed": self.passed,
            "failures": self.failures,
        }


@dataclass(frozen=True, slots=True)
class SiteSummary:
    site: str
    kind: str
    sessions: int
    sent: int
    received: int
    rtt_p50_ms: float | None
    rtt_p99_ms: float | None
    #: Mean TCP throughput per transfer, Mbit/s (10^6 bit/s).
    tcp_mbps: float | None
    passed: int

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site, "kind": self.kind, "sessions": self.sessions, "sent": self.sent,
            "received": self.received, "loss": self.loss, "rtt_p50_ms": self.rtt_p50_ms,
            "rtt_p99_ms": self.rtt_p99_ms, "tcp_mbps": self.tcp_mbps, "passed": self.passed,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrafficReport:
    results: list[SessionResult]
    sites: list[SiteSummary]
    duration_s: float
    options: TrafficOptions

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def failures(self) -> list[str]:
        return [f"{r.session.label} ({r.session.ue_site} -> {r.site}): {f}" for r in self.results for f in r.failures]

    def table(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        rows = [
            (s.site, s.kind, s.sessions, s.sent, s.received, f"{s.loss:.2%}", ms(s.rtt_p50_ms), ms(s.rtt_p99_ms),
             "-" if s.tcp_mbps is None else f"{s.tcp_mbps:.1f}", f"{s.passed}/{s.sessions}")
            for s in self.sites
        ]  # fmt: skip
        headers = ("site", "kind", "sessions", "pkts sent", "pkts recv", "loss", "rtt p50 ms", "rtt p99 ms",
                   "tcp mbit/s", "passed")  # fmt: skip
        return columns(headers, rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "duration_s": self.duration_s,
            "sites": [s.to_dict() for s in self.sites],
            "sessions": [r.to_dict() for r in self.results],
            "failures": self.failures(),
        }


def _check(result: SessionResult, options: TrafficOptions) -> None:
    fail = result.failures.append
    if not result.api_answered:
        fail("placement: the control plane's API did not answer")
    elif result.state != "active" or result.site not in result.expected_sites:
        want = " or ".join(sorted(result.expected_sites))
        now = f"{result.state or 'missing'} at {result.site or 'no site'}"
        fail(f"placement: the API has it {now}, expected active at {want}")
    if result.ping is not None and (result.ping.sent == 0 or result.ping.loss > options.max_loss):
        fail(f"ping: {result.ping.received}/{result.ping.sent} replies ({result.ping.loss:.1%} lost)")
    udp = result.udp
    if udp is not None:
        if udp.loss is None:
            fail("udp: the server never reported its count")
        elif udp.loss > options.max_loss:
            fail(f"udp: {udp.loss:.1%} lost uplink ({udp.server_received}/{udp.sent})")
        if udp.echo_loss is not None and udp.echo_loss > options.max_loss:
            fail(f"udp: {udp.echo_loss:.1%} lost round trip ({udp.echoed}/{udp.sent} echoed)")
    for tcp in result.tcp:
        if not tcp.complete:
            fail(f"tcp {tcp.direction}: {tcp.transferred_bytes}/{tcp.requested_bytes} octets ({tcp.error or 'short'})")


def _measure(
    results: Sequence[SessionResult],
    gnb_netns: dict[str, str],
    work: Callable[[SessionResult], None],
    workers: int,
    label: str,
) -> None:
    def one(result: SessionResult) -> None:
        try:
            run_in_netns(gnb_netns[result.session.ue_site], lambda: work(result), timeout=120)
        except Exception as exc:  # e.g. the UE's address is gone (a gNB restarted): a failed check
            result.failures.append(f"{label}: {type(exc).__name__}: {exc}")

    with concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix=f"sim-{label}") as pool:
        list(pool.map(one, results))


def run_traffic(
    results: list[SessionResult],
    gnb_netns: dict[str, str],
    site_kinds: dict[str, str],
    options: TrafficOptions,
    progress: Callable[[str], None],
) -> TrafficReport:
    """Run the three phases on ``results`` (their session, API state and expected sites filled in)."""
    started = time.monotonic()
    # Every session gets its traffic, whatever the API says: the user plane forwards without the
    # control plane, and a session the API calls lost shows what its UEs see. A session that
    # answers no echo request is spared the streams (see dead()), so a broken one costs ~2 s.
    reachable = results
    o = options

    def do_ping(r: SessionResult) -> None:
        r.ping = ping(r.session.ue_ip, r.session.server, count=o.ping_count, interval=o.ping_interval)

    def dead(r: SessionResult, what: str) -> bool:
        # A session that answered no echo request at all is broken: its streams would only
        # spend their timeouts finding that out again.
        if r.ping is not None and r.ping.received == 0:
            r.failures.append(f"{what}: not run, the session answered no echo request")
            return True
        return False

    def do_udp(r: SessionResult) -> None:
        s = r.session
        if not dead(r, "udp"):
            r.udp = udp_stream(s.ue_ip, s.server, rate_pps=o.udp_pps, duration=o.udp_seconds, size=o.udp_size)

    # At least 8 Mbit/s, and 10 s for the handshake: a stalled transfer fails, a slow one does not.
    tcp_timeout = 10 + o.tcp_bytes / 1e6

    def do_tcp(r: SessionResult) -> None:
        s = r.session
        if dead(r, "tcp"):
            return
        for direction in ("upload", "download"):
            r.tcp.append(tcp_transfer(s.ue_ip, s.server, nbytes=o.tcp_bytes, direction=direction, timeout=tcp_timeout))

    phases: list[tuple[str, Callable[[SessionResult], None], int]] = [
        (f"ping: {o.ping_count} echo requests per session", do_ping, o.parallel),
        (f"udp: {o.udp_pps:g} packets/s of {o.udp_size} octets for {o.udp_seconds:g} s, echoed", do_udp, o.parallel),
        (f"tcp: {o.tcp_bytes:,} octets up and down", do_tcp, o.parallel),
    ]
    for text, work, workers in phases:
        phase_start = time.monotonic()
        progress(f"{text} ({len(reachable)} sessions)")
        _measure(reachable, gnb_netns, work, workers, text.split(":")[0])
        progress(f"  done in {time.monotonic() - phase_start:.1f} s")
    for result in results:
        _check(result, o)
    return TrafficReport(results, summarize(results, site_kinds), time.monotonic() - started, o)


def summarize(results: Sequence[SessionResult], site_kinds: dict[str, str]) -> list[SiteSummary]:
    """One row per site the sessions are on (the API's placement), in topology order."""
    rows = []
    for site, kind in site_kinds.items():
        mine = [r for r in results if (r.site or r.session.site) == site]
        if not mine:
            continue
        rtts = [rtt for r in mine if r.ping for rtt in r.ping.rtt_ms]
        sent = sum((r.ping.sent if r.ping else 0) + (r.udp.sent if r.udp else 0) for r in mine)
        received = sum((r.ping.received if r.ping else 0) + (r.udp.echoed if r.udp else 0) for r in mine)
        rates = [t.to_dict()["throughput_mbps"] for r in mine for t in r.tcp if t.complete]
        rows.append(
            SiteSummary(
                site,
                kind,
                len(mine),
                sent,
                received,
                percentile(rtts, 50),
                percentile(rtts, 99),
                sum(rates) / len(rates) if rates else None,
                sum(r.passed for r in mine),
            )
        )
    return rows
