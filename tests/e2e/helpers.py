"""What the end-to-end scenarios share: API calls from synchronous tests, bounded waits, sessions a
test opens or re-opens itself, and a UDP probe that keeps running while a test breaks something.

Everything goes through the product's interfaces: the control plane's gRPC API
(:meth:`Simulation.api`), the gNB simulators' control sockets and real packets from the UEs'
addresses inside the gNBs' namespaces. Every wait has a bound and says what it waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Final, TypeVar

import pytest

from control_plane.api.client import ApiClient
from control_plane.cli.sim import SimSession, Simulation, TrafficOptions, TrafficReport
from control_plane.cli.sim.provision import tunnel_of
from control_plane.provisioning.feed import EventView
from control_plane.provisioning.objects import Resource
from control_plane.provisioning.status import UpfStatusView
from control_plane.services.views import SessionRequest, SessionView, UsageView
from edge_sites.sim.netns import netns_unavailable_reason
from edge_sites.sim.traffic import PingResult, UdpResult, ping, udp_stream

T = TypeVar("T")

_UNAVAILABLE: Final = netns_unavailable_reason()
#: Every e2e module's ``pytestmark``: the whole topology in namespaces needs root.
E2E_MARKS: Final = [
    pytest.mark.e2e,
    pytest.mark.needs_root,
    pytest.mark.skipif(_UNAVAILABLE is not None, reason=f"e2e: {_UNAVAILABLE}"),
]

#: Enough traffic per session that a broken path cannot pass, little enough for 2 cores (~3 s for 8 sessions).
QUICK_TRAFFIC: Final = TrafficOptions(ping_count=20, udp_pps=300, udp_seconds=0.5, tcp_bytes=1_000_000)
#: A UE's own downlink TEIDs at another gNB after a handover: UePlan.gnb_teid() stays below
#: 2^15 within a site's 2^16 block (1000 UEs x 16 sessions), so this bit makes them new and unique.
MOVED_TEID_BIT: Final = 0x8000


def api_call(sim: Simulation, fn: Callable[[ApiClient], Awaitable[T]]) -> T:
    """``await fn(api)`` on a fresh client: the tests are synchronous, the client is asyncio."""

    async def run() -> T:
        async with sim.api(timeout=10.0) as api:
            return await fn(api)

    return asyncio.run(run())


def wait_until(what: str, observe: Callable[[], T], done: Callable[[T], bool], timeout: float) -> T:
    """Observe every 0.2 s until ``done``; fails naming ``what`` and the last observation after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = observe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s; last observed: {value!r}")
        time.sleep(0.2)


# -- what the control plane says ------------------------------------------------------------


def all_sessions(sim: Simulation) -> list[SessionView]:
    """Every session the API lists (a list, not a dict: a duplicate must stay visible)."""

    async def fetch(api: ApiClient) -> list[SessionView]:
        return [view async for view in api.sessions.iter_sessions()]

    return api_call(sim, fetch)


def upf_status(sim: Simulation, node_id: str) -> UpfStatusView:
    async def fetch(api: ApiClient) -> UpfStatusView:
        return next(u for u in (await api.status.status()).upfs if u.node_id == node_id)

    return api_call(sim, fetch)


def events_after(sim: Simulation, since_id: int, kinds: list[str] | None = None) -> list[EventView]:
    """Events recorded after ``since_id`` (0: all of them), as the Watch stream replays them."""

    async def fetch(api: ApiClient) -> list[EventView]:
        return [e async for e in api.status.watch(kinds, since_id=since_id, replay_only=True)]

    return api_call(sim, fetch)


def last_event_id(sim: Simulation) -> int:
    return max((e.id for e in events_after(sim, 0)), default=0)


def assert_healthy(sim: Simulation) -> None:
    """A scenario on a shared simulation starts from a healthy one, or says an earlier one broke it."""
    status = sim.status()
    assert status.ok, "the simulation is degraded before this scenario started:\n" + status.render()


def assert_traffic(sim: Simulation, sessions: list[SimSession] | None = None) -> TrafficReport:
    report = sim.traffic(QUICK_TRAFFIC, sessions)
    assert report.ok, "traffic failed:\n" + "\n".join(report.failures()) + "\n" + report.table()
    return report


def in_pool(address: str | None, pool: IPv4Network) -> bool:
    return address is not None and IPv4Address(address) in pool


def session_view(sim: Simulation, session: SimSession) -> SessionView:
    """The session as the API has it now (its CP SEID, UPF, state...)."""
    return api_call(sim, lambda api: api.sessions.get(session.supi, session.pdu_session_id))


def usage_of(sim: Simulation, session: SimSession) -> list[UsageView]:
    """The usage reports the control plane stored for the session (as long as it exists)."""
    return api_call(sim, lambda api: api.sessions.usage(session.supi, session.pdu_session_id))


# -- sessions a test opens, re-opens or moves --------------------------------------------------


#: The control plane holds one policy per DNN and slice, and the default mec policy covers every
#: slice ("*"). A policy for one subscriber therefore names a slice no session uses: no session
#: picks it by DNN and slice, only the subscriber whose ``policy`` names it.
SUBSCRIBER_ONLY_SLICE: Final = "2"


def mec_policy(sim: Simulation, name: str, **spec: int) -> Resource:
    """A subscriber's policy for the mec DNN, like its default (same QFI: the gNB's tunnels stay
    valid) but for ``spec``; give it to a subscriber with :func:`reopen_with_policy`."""
    mec = sim.plan.dnns["mec"]
    base = {
        "dnn": "mec",
        "snssai": SUBSCRIBER_ONLY_SLICE,
        "qfi": mec.qfi,
        "five_qi": mec.five_qi,
        "session_ambr_ul_kbps": mec.ambr_kbps,
        "session_ambr_dl_kbps": mec.ambr_kbps,
    }
    return Resource("Policy", name, base | spec)


def record_of(sim: Simulation, base: SimSession, view: SessionView, *, ue_site: str | None = None) -> SimSession:
    """``base`` updated with what the API answered (where the session is now, its tunnel), as the
    gNB must attach it; the QFI the UPF expects uplink is that of the session's policy."""
    assert view.state == "active", f"{view.supi}/{view.dnn}: {view.state} (cause {view.last_cause}), not active"
    assert view.ue_ipv4 and view.site and view.upf and view.n3_address and view.n3_teid is not None, view
    assert view.gnb_teid is not None and view.gnb_address is not None, view
    policy = view.policy
    assert policy is not None, view

    async def qfi(api: ApiClient) -> int:
        return int((await api.provisioning.get("Policy", policy)).spec["qfi"])

    return dataclasses.replace(
        base,
        ue_site=ue_site or base.ue_site,
        site=view.site,
        upf=view.upf,
        ue_ip=view.ue_ipv4,
        qfi=api_call(sim, qfi),
        gnb_teid=view.gnb_teid,
        gnb_address=view.gnb_address,
        n3_teid=view.n3_teid,
        n3_address=view.n3_address,
        server=str(sim.plan.site(view.site).server),
    )


def attach(sim: Simulation, session: SimSession) -> None:
    with contextlib.closing(sim.gnb(session.ue_site)) as gnb:
        gnb.attach(tunnel_of(session))


def detach(sim: Simulation, session: SimSession) -> dict[str, Any]:
    """The UE's address leaves its gNB; its final counters."""
    with contextlib.closing(sim.gnb(session.ue_site)) as gnb:
        return gnb.detach(session.ue_ip)


def ue_counters(sim: Simulation, session: SimSession) -> dict[str, Any]:
    with contextlib.closing(sim.gnb(session.ue_site)) as gnb:
        return gnb.counters(session.ue_ip)


def request_at(sim: Simulation, supi: str, dnn: str, psi: int, site: str, gnb_teid: int) -> SessionRequest:
    """A Create as the UE's gNB at ``site`` makes it: that site's TAI and the gNB's N3 address."""
    at = sim.plan.site(site)
    return SessionRequest(supi, dnn, sim.plan.topology.snssai, at.site.tai, psi, gnb_teid, str(at.n3_gnb.ip))


def open_session(sim: Simulation, request: SessionRequest, ue_site: str) -> SimSession:
    """Create a session through the API and attach its tunnel on the gNB of ``ue_site``."""

    async def create(api: ApiClient) -> SessionView:
        return await api.sessions.establish(request)

    view = api_call(sim, create)
    blank = SimSession(request.supi, ue_site, request.dnn, request.pdu_session_id, "", "", "", 0, 0, "", 0, "", "")
    session = record_of(sim, blank, view)
    attach(sim, session)
    return session


def close_session(sim: Simulation, session: SimSession) -> None:
    """Detach it from its gNB and delete it through the API."""
    detach(sim, session)

    async def delete(api: ApiClient) -> None:
        await api.sessions.delete(session.supi, session.pdu_session_id)

    api_call(sim, delete)


def apply(sim: Simulation, *resources: Resource) -> None:
    async def run(api: ApiClient) -> None:
        await api.provisioning.apply(list(resources))

    api_call(sim, run)


def delete_object(sim: Simulation, kind: str, name: str) -> None:
    async def run(api: ApiClient) -> None:
        await api.provisioning.delete(kind, name)

    api_call(sim, run)


def spec_of(sim: Simulation, kind: str, name: str) -> dict[str, Any]:
    """An object's spec as Apply takes it back (the unset optional fields left out)."""

    async def run(api: ApiClient) -> dict[str, Any]:
        return {k: v for k, v in (await api.provisioning.get(kind, name)).spec.items() if v is not None}

    return api_call(sim, run)


def reopen_with_policy(sim: Simulation, session: SimSession, policy: str | None) -> SimSession:
    """Point the subscriber at ``policy`` (None: back to its DNN's default), then delete and create
    the session again, as a UE re-establishing its PDU session picks up a changed subscription;
    the gNB gets the new tunnel and the simulation the new record."""
    spec = spec_of(sim, "Subscriber", session.supi)
    spec.pop("policy", None)
    if policy is not None:
        spec["policy"] = policy
    apply(sim, Resource("Subscriber", session.supi, spec))
    detach(sim, session)
    request = request_at(sim, session.supi, session.dnn, session.pdu_session_id, session.ue_site, session.gnb_teid)

    async def recreate(api: ApiClient) -> SessionView:
        await api.sessions.delete(session.supi, session.pdu_session_id)
        return await api.sessions.establish(request)

    fresh = record_of(sim, session, api_call(sim, recreate))
    attach(sim, fresh)
    sim.record_session(fresh)
    return fresh


# -- packets ------------------------------------------------------------------------------


def ping_from(sim: Simulation, session: SimSession, count: int = 10) -> PingResult:
    """Echo requests from the UE's address (inside its gNB's namespace) to its session's server."""
    return sim.run_in(f"gnb/{session.ue_site}", lambda: ping(session.ue_ip, session.server, count=count, interval=0.02))


def stream_from(sim: Simulation, session: SimSession, **options: Any) -> UdpResult:
    """A UDP stream from the UE to its session's server (``udp_stream`` keyword arguments)."""
    return sim.run_in(f"gnb/{session.ue_site}", lambda: udp_stream(session.ue_ip, session.server, **options))


#: A probe never runs longer than this, whatever the test does.
PROBE_LIMIT_S: Final = 120.0


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    started: float
    ended: float
    result: UdpResult


class UdpProbe:
    """Back-to-back echoed UDP streams of ``chunk_s`` seconds from one session until stopped,
    each chunk with its start and end (monotonic): what a UE sees while something else breaks."""

    def __init__(self, sim: Simulation, session: SimSession, *, pps: float = 100.0, chunk_s: float = 1.0) -> None:
        self.session = session
        self.chunks: list[Chunk] = []
        self._sim, self._pps, self._chunk_s = sim, pps, chunk_s
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"probe-{session.label}", daemon=True)

    def _run(self) -> None:
        s = self.session
        deadline = time.monotonic() + PROBE_LIMIT_S

        def loop() -> None:
            while not self._stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                result = udp_stream(s.ue_ip, s.server, rate_pps=self._pps, duration=self._chunk_s, size=256)
                self.chunks.append(Chunk(started, time.monotonic(), result))

        try:
            self._sim.run_in(f"gnb/{s.ue_site}", loop, timeout=PROBE_LIMIT_S + 10)
        except BaseException as exc:  # handed to stop()'s caller
            self._error = exc

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the current chunk."""
        self._stop.set()

    def halt(self) -> None:
        """Stop after the current chunk and wait for it (bounded: a chunk ends within its timeouts)."""
        self._stop.set()
        self._thread.join(self._chunk_s + 10)

    def stop(self) -> list[Chunk]:
        """:meth:`halt`, then every chunk; fails if the probe itself failed."""
        self.halt()
        assert not self._thread.is_alive(), f"probe of {self.session.label} did not stop"
        if self._error is not None:
            raise AssertionError(f"probe of {self.session.label} failed: {self._error!r}") from self._error
        return list(self.chunks)


@contextlib.contextmanager
def probing(sim: Simulation, sessions: list[SimSession]) -> Iterator[list[UdpProbe]]:
    """Probes from ``sessions`` for the duration of the block (stopped even when it fails)."""
    probes = [UdpProbe(sim, s) for s in sessions]
    for probe in probes:
        probe.start()
    try:
        yield probes
    finally:
        for probe in probes:  # all at once, then each waited for: their chunks end together
            probe.request_stop()
        for probe in probes:
            probe.halt()
