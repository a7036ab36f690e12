"""The ``vpp`` :class:`~user_plane.driver.Driver`: the UPF agent programs FD.io VPP.

Theory of operation:

* :meth:`VppDriver.start` loads VPP's API schema from ``vpp.api_dir``, connects to
  ``vpp.api_socket``, checks every message it uses (:mod:`user_plane.vpp.messages`:
  missing or different CRCs stop the start, all named), then sets the node up
  (:mod:`user_plane.vpp.node`).
* :meth:`VppDriver.install` turns the session's desired state into VPP objects
  (:mod:`user_plane.vpp.plan`), diffs them against what the session holds
  (:func:`user_plane.vpp.objects.diff`: only changed objects are touched) and runs the
  ordered calls (:mod:`user_plane.vpp.executor`). Any failing call undoes the calls made
  for this request in reverse, so the previous state stays in force, and raises
  :class:`~user_plane.driver.DriverError` naming the rule whose call failed: the agent
  answers 73 Rule creation/modification failure with that Failed Rule ID (§7.5.3.1,
  §8.2.80). Issue 9 says 74, but 74 is "PFCP entity in congestion" in Table 8.2.1-1; the
  Failed Rule ID goes with 73. A failure that names no rule (VPP gone) is 77.
* URRs: the rules' meters are the software dataplane's own (:class:`user_plane.usage.UrrMeter`,
  held by a packet-less :class:`user_plane.forward.Forwarder`, which also keeps the
  URR timers, the final reports of removed URRs and the rule checks). The gtpu tunnels'
  counters feed them: all tunnels with one ``gtpu_get_transfer_counts`` walk every
  ``vpp.poll_interval`` (downlink minus the encapsulation overhead per packet,
  :mod:`user_plane.vpp.counters`), the session's tunnels before a query or a removal and
  before a change that makes a kept tunnel feed other URRs, and a deleted tunnel's final
  counters from its delete reply. Threshold, quota and periodic reports become Session
  Report Requests; an exhausted quota re-plans the session with its PDRs dropping.
* VPP restart: a ``control_ping`` every ``vpp.liveness_interval`` (and any call that finds
  the socket closed) marks VPP lost; the driver reconnects with jittered exponential
  backoff (up to ``vpp.reconnect_max`` seconds). If VPP kept its state (only the
  connection went: the node's deny-all ACL is still at its index), nothing is touched.
  Otherwise (:mod:`user_plane.vpp.setup`) leftovers of its own are removed, the node is set
  up again and every session it holds re-installed, between ``ip_table_replace_begin`` and
  ``ip_table_replace_end`` on every VRF so routes nobody re-added are swept. This is the
  driver's own resync, not the agent's: the agent cannot see VPP restart, and the driver
  holds the states and their meters. Meters are kept; traffic counted by VPP since the last
  poll before the restart is lost. While VPP is away, installs fail with 77 and
  :meth:`VppDriver.installed` is empty; a session that cannot be re-installed is left out
  of it (``missing``), so the agent's ``resync()`` tries it again.
* Not done by stock VPP (see :mod:`user_plane.vpp.plan`): buffering (BUFF drops, no
  Downlink Data Report), End Marker, per-PDR counters within one tunnel, several gNB
  F-TEIDs per session. Advertised UP Function Features: none (FTUP is the agent's).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from ipaddress import IPv4Address, IPv6Address
from typing import Final

import pfcp

from ..config import N6Config, UpfConfig
from ..driver import DriverError, DriverEvent, SessionUsage, UsageReport
from ..forward import Forwarder
from ..session import SessionState
from .calls import SchemaMismatch, VppApi, VppCallError, VppUnavailable
from .config import Memif, VppConfig
from .counters import UsageFeed
from .executor import Executor, StepFailed
from .messages import required
from .objects import Key, Obj, Step, diff
from .plan import NodeContext, SessionPlan, plan_session
from .setup import kept_state, set_up, vrfs

__all__ = ["VppDriver"]

log = logging.getLogger(__name__)

_MIN_WAIT: Final = 0.01

IPAddress = IPv4Address | IPv6Address


class VppDriver:
    """The ``vpp`` dataplane driver (see the module docstring)."""

    name: str = "vpp"

    def __init__(
        self,
        config: VppConfig,
        n3: Iterable[IPAddress],
        n6: Mapping[str, N6Config],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        n3 = tuple(n3)
        self.config = config
        self._n6 = dict(n6)
        self._clock = clock
        v4 = next((a for a in n3 if isinstance(a, IPv4Address)), None)
        v6 = next((a for a in n3 if isinstance(a, IPv6Address)), None)
        self._n3 = n3
        self._ctx = NodeContext(v4, v6, config.n3.table_id, {ni: s.table_id for ni, s in config.n6.items()})
        self._requests = required(
            memif=any(isinstance(s.interface, Memif) for s in (config.n3, *config.n6.values())),
            gtpu_forward=config.gtpu_forward is not None,
        )
        self.forwarder = Forwarder(v4, v6, tuple(config.n6))
        self.api: VppApi | None = None
        self._indexes: dict[Key, int] = {}
        self._executor: Executor | None = None
        self._node: list[Step] = []  # journal of the node setup (undone at stop)
        self._plans: dict[int, SessionPlan] = {}
        self._states: dict[int, SessionState] = {}  # what each session holds (the forwarder's too)
        self._owner: dict[Key, int] = {}
        self._blocked: dict[int, frozenset[int]] = {}
        self._feed = UsageFeed(lambda: self.forwarder, clock)
        self._handler: Callable[[DriverEvent], None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reconnecting: asyncio.Task[None] | None = None
        self._ready = False
        #: Reconnections after VPP was lost, and sessions that could not be re-installed.
        self.reconnects = 0
        self.missing: set[int] = set()

    @classmethod
    def from_config(cls, config: UpfConfig) -> VppDriver:
        """From the agent's configuration (its ``vpp`` section is required)."""
        if config.vpp is None:
            raise DriverError("driver vpp needs a vpp section in the configuration")
        return cls(config.vpp, config.n3, config.n6)

    # -- Driver protocol: lifecycle -------------------------------------------------------------

    @property
    def features(self) -> pfcp.UPFeatures:
        return pfcp.UPFeatures(0)

    @property
    def ready(self) -> bool:
        """Connected, node set up and every session installed."""
        return self._ready

    @property
    def calls(self) -> int:
        """VPP API requests made (node setup, sessions, undo, counters, pings), over every connection."""
        return 0 if self.api is None else self.api.calls

    async def start(self) -> None:
        try:
            if self.api is None:  # reading ~50 JSON files: not on the loop
                self.api = await asyncio.to_thread(
                    VppApi, self.config.api_socket, self.config.api_dir, timeout=self.config.timeout
                )
            await asyncio.to_thread(self.api.connect, self._requests)
            self._executor = Executor(self.api, self._indexes, self._feed.on_reply)
            self._node = set_up(self.api, self._executor, self.config, self._n6)
        except (VppUnavailable, VppCallError, StepFailed, SchemaMismatch) as exc:
            if self.api is not None:
                self.api.close()
            raise DriverError(f"vpp: {exc}") from exc
        self._ready = True
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._poll_loop(), name="vpp-usage-poll"),
            loop.create_task(self._liveness_loop(), name="vpp-liveness"),
        ]
        log.info("VPP dataplane up at %s: %d node calls", self.config.api_socket, self.calls)

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._reconnecting] if self._reconnecting else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._reconnecting = [], None
        if self._ready and self._executor is not None:
            for seid in list(self._plans):
                self._delete_objects(seid)
            self._executor.undo(self._node)
        if self.api is not None:
            self.api.close()
        self._ready = False
        self._node, self._plans, self._owner, self._blocked, self._states = [], {}, {}, {}, {}
        self._feed.clear()
        self._indexes.clear()
        self.missing.clear()
        self.forwarder = Forwarder(self._ctx.n3_ipv4, self._ctx.n3_ipv6, tuple(self.config.n6))

    def set_event_handler(self, handler: Callable[[DriverEvent], None]) -> None:
        self._handler = handler

    # -- Driver protocol: sessions --------------------------------------------------------------

    def install(self, state: SessionState, end_marker_fars: Collection[int] = ()) -> None:
        executor = self._require()
        seid, now = state.up_seid, self._clock()
        old = self._plans.get(seid)
        blocked = self._blocked_urrs(seid, state)
        plan = plan_session(state, self._ctx, blocked)  # DriverError naming the rule: nothing done yet
        self._check_owner(seid, plan)
        if old is not None:
            # Usage so far belongs to the rules in force: read the tunnels that stay but feed other
            # URRs now, or all that stay when the URRs change (a deleted tunnel's last counts come
            # with its delete reply).
            held = self._states.get(seid)
            urrs_changed = held is None or held.urrs != state.urrs
            self._fold_session(
                seid, now, [k for k, u in old.tunnels.items() if urrs_changed or plan.tunnels.get(k, u) != u]
            )
        journal = self._apply(old.objects if old is not None else {}, plan.objects)
        try:
            self.forwarder.install(state, now)  # meters; TEID/UE owned by another session
        except BaseException:
            executor.undo(journal)
            raise
        self._states[seid] = state
        self._commit(seid, old, plan, blocked)
        self.missing.discard(seid)
        self._reconcile(seid)
        self._dispatch()

    def remove(self, up_seid: int) -> list[UsageReport]:
        if up_seid not in self._plans:
            self.missing.discard(up_seid)
            return self._final(up_seid)
        now = self._clock()
        if self._ready:
            self._fold_session(up_seid, now)
            self._delete_objects(up_seid)  # the tunnels' delete replies fold the last counts
        else:
            self._forget(up_seid)
        reports = self._final(up_seid)
        self._dispatch()
        return reports

    def query(
        self, up_seid: int, urr_ids: Collection[int] | None = None, reference: int | None = None
    ) -> list[UsageReport]:
        now = self._clock()
        if self._ready and up_seid in self._plans:
            self._fold_session(up_seid, now)
        reports = self.forwarder.query(up_seid, urr_ids, now, reference)
        self._dispatch()
        return reports

    def take_removed_reports(self, up_seid: int) -> list[UsageReport]:
        return self.forwarder.take_removed_reports(up_seid)

    def drop_buffered(self, up_seid: int) -> int:
        return 0  # BUFF drops in VPP: nothing is ever buffered

    def all_counters(self) -> dict[str, int]:
        """What VPP's tunnels counted (see :attr:`UsageFeed.totals`; uplink is counted at
        decapsulation, before ACL and policer), and ``vpp.calls``, ``vpp.reconnects``,
        ``vpp.sessions_missing``: read by the agent's metrics and telemetry."""
        counters = dict(self._feed.totals)
        counters.update(
            {"vpp.calls": self.calls, "vpp.reconnects": self.reconnects, "vpp.sessions_missing": len(self.missing)}
        )
        return counters

    def installed(self) -> Mapping[int, SessionState]:
        if not self._ready:
            return {}
        return {seid: state for seid, state in self._states.items() if seid not in self.missing}

    # -- applying plans -------------------------------------------------------------------------

    def _require(self) -> Executor:
        if not self._ready or self._executor is None:
            raise DriverError("vpp: VPP is not connected")
        return self._executor

    def _apply(self, old: Mapping[Key, Obj], new: Mapping[Key, Obj]) -> list[Step]:
        executor = self._require()
        try:
            return executor.run(diff(old, new))
        except StepFailed as exc:
            if isinstance(exc.cause, VppUnavailable):
                self._lost(str(exc.cause))
                raise DriverError(f"vpp: {exc}") from exc
            if not exc.undone_cleanly:
                log.error("vpp: %s, and undoing it failed: VPP may hold leftovers until the next resync", exc)
            rule = exc.step.rule
            raise DriverError(f"vpp: {exc}", rule) from exc

    def _check_owner(self, seid: int, plan: SessionPlan) -> None:
        for key, obj in plan.objects.items():
            owner = self._owner.get(key, seid)
            if owner != seid:
                raise DriverError(f"vpp: {key} is already used by session {owner:#x}", obj.rule)

    def _commit(self, seid: int, old: SessionPlan | None, plan: SessionPlan, blocked: frozenset[int]) -> None:
        if old is not None:
            for key in old.objects:
                self._owner.pop(key, None)
            self._feed.forget([key for key in old.tunnels if key not in plan.tunnels])
        for key in plan.objects:
            self._owner[key] = seid
        self._feed.usage.update(plan.tunnels)
        self._plans[seid] = plan
        self._blocked[seid] = blocked

    def _delete_objects(self, seid: int) -> None:
        """Delete a session's objects, best effort: each failure is logged, the rest still goes."""
        plan = self._plans.get(seid)
        executor = self._executor
        if plan is not None and executor is not None:
            for step in diff(plan.objects, {}):
                try:
                    executor.call(step.call)
                except (VppCallError, VppUnavailable) as exc:
                    log.error("vpp: session %#x: %s failed: %s", seid, step.call.msg, exc)
        self._forget(seid)

    def _forget(self, seid: int) -> None:
        plan = self._plans.pop(seid, None)
        self._blocked.pop(seid, None)
        for key in () if plan is None else plan.objects:
            self._owner.pop(key, None)
        if plan is not None:
            self._feed.forget(plan.tunnels)

    def _final(self, seid: int) -> list[UsageReport]:
        self._states.pop(seid, None)
        try:
            return self.forwarder.remove(seid, self._clock())
        except DriverError:
            return []

    def _blocked_urrs(self, seid: int, state: SessionState) -> frozenset[int]:
        try:
            meters = self.forwarder.meters(seid)
        except DriverError:
            return frozenset()
        return frozenset(u for u, m in meters.items() if m.blocked and u in state.urrs)

    def _reconcile(self, seid: int) -> None:
        """Re-plan a session whose quota state changed (a URR blocked or unblocked)."""
        plan = self._plans.get(seid)
        state = self._states.get(seid)
        if plan is None or state is None or not self._ready:
            return
        blocked = self._blocked_urrs(seid, state)
        if blocked == self._blocked.get(seid):
            return
        try:
            new = plan_session(state, self._ctx, blocked)
            self._apply(plan.objects, new.objects)
        except DriverError as exc:
            log.error("vpp: session %#x: quota enforcement could not be programmed: %s", seid, exc)
            return
        self._commit(seid, plan, new, blocked)

    # -- usage ----------------------------------------------------------------------------------

    def _fold_session(self, seid: int, now: float, keys: Iterable[Key] | None = None) -> None:
        """Read and fold a session's tunnels (``keys``: only these)."""
        plan = self._plans.get(seid)
        if plan is None or self.api is None:
            return
        wanted = plan.tunnels if keys is None else keys
        tunnels = {k: self._indexes[k] for k in wanted if k in self._indexes}
        if not tunnels:
            return
        try:
            self._feed.read(self.api, tunnels, now)
        except VppUnavailable as exc:
            log.warning("vpp: counters of session %#x: %s", seid, exc)

    def poll(self) -> None:
        """Read every tunnel's counters, feed the meters, run the URR timers, send the reports."""
        if not self._ready or self.api is None:
            return
        now = self._clock()
        try:
            self._feed.poll(self.api, self._indexes, now)
        except VppUnavailable as exc:
            self._lost(str(exc))
            return
        self.forwarder.tick(now)
        self._dispatch()

    def _dispatch(self) -> None:
        events: list[DriverEvent] = list(self.forwarder.events)
        self.forwarder.events.clear()
        for seid, reports in self._feed.reports.items():
            if reports:
                events.append(SessionUsage(seid, tuple(reports)))
        self._feed.reports.clear()
        touched = {e.up_seid for e in events}
        for seid in touched:
            self._reconcile(seid)
        if self._handler is None:
            return
        for event in events:
            try:
                self._handler(event)
            except Exception:
                log.exception("event handler failed on %r", event)

    async def _poll_loop(self) -> None:
        while True:
            now = self._clock()
            wake = now + self.config.poll_interval
            deadline = self.forwarder.next_deadline()
            if deadline is not None:
                wake = min(wake, deadline)
            await asyncio.sleep(max(wake - now, _MIN_WAIT))
            self.poll()

    # -- VPP lost and back ----------------------------------------------------------------------

    async def _liveness_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.liveness_interval)
            if self._ready and self.api is not None and not self.api.ping():
                self._lost("control_ping got no answer")

    def _lost(self, why: str) -> None:
        if not self._ready:
            return
        self._ready = False
        log.error("vpp: VPP lost (%s); reconnecting", why)
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(), name="vpp-reconnect")

    async def _reconnect(self) -> None:
        attempt = 0
        while True:
            delay = min(self.config.reconnect_max, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
            await asyncio.sleep(delay)
            attempt += 1
            assert self.api is not None
            try:
                await asyncio.to_thread(self.api.connect, self._requests)
                kept = bool(self._node) and kept_state(self.api, self._indexes)
                if not kept:
                    self._restore()
            except (VppUnavailable, VppCallError, StepFailed, SchemaMismatch) as exc:
                log.warning("vpp: reconnection attempt %d failed: %s", attempt, exc)
                continue
            except Exception:
                log.exception("vpp: reconnection attempt %d failed", attempt)
                continue
            self.reconnects += 1
            self._ready = True
            if kept:
                log.warning("vpp: connection back after %d attempts; VPP kept its state: nothing re-installed", attempt)
            else:
                log.info("vpp: back after %d attempts; %d sessions re-installed", attempt, len(self._plans))
            return

    def _restore(self) -> None:
        """Node setup and every session again, leftovers of ours swept."""
        self._indexes.clear()
        self._node, self._owner = [], {}
        plans, self._plans = self._plans, {}
        self._feed.clear()
        assert self._executor is not None and self.api is not None
        self._node = set_up(self.api, self._executor, self.config, self._n6, sweep=self._n3)  # + replace_begin
        self._ready = True  # _apply needs it; reset below if VPP goes again
        for seid, state in self._states.items():
            blocked = self._blocked.get(seid, frozenset())
            try:
                plan = plan_session(state, self._ctx, blocked)
                self._apply({}, plan.objects)
            except DriverError as exc:
                if not self._ready:
                    raise VppUnavailable(str(exc)) from exc
                self.missing.add(seid)
                log.error("vpp: session %#x could not be re-installed: %s", seid, exc)
                continue
            self._commit(seid, plans.get(seid), plan, blocked)
        self._ready = False
        assert self.api is not None
        for table in vrfs(self.config):
            self.api.call("ip_table_replace_end", table=table)
