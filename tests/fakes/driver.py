"""A recording, in-memory test double of :class:`user_plane.driver.Driver`.

TEST FAKE ONLY: it forwards no packet and is never shipped as a dataplane. It
holds the states the agent installs (so tests can compare desired and actual
state), records every call, and reports usage the test put on its meters:

    driver = FakeDriver()
    driver.meter(up_seid, urr_id, ul_bytes=1000)     # usage a URR has seen
    driver.emit(SessionUsage(...))                   # a dataplane event
    driver.fail_next_install = DriverError("boom")   # the next install fails (77)
    driver.fail_next_install = DriverError("no", pfcp.FailedRuleID(pfcp.RuleIDType.FAR, 2))   # ... a rule (73)
    driver.lose_state()                              # a dataplane restart

Like a real dataplane it refuses (DriverError with the PDR's Failed Rule ID,
previous state kept) a state whose local F-TEID is already used by another
session: a TEID identifies one tunnel endpoint (TS 29.281 §5.1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import pfcp
from user_plane.driver import DriverError, DriverEvent, UsageReport
from user_plane.session import SessionState

__all__ = ["Call", "FakeDriver"]

_T = pfcp.UsageReportTriggerFlags
_NO_FEATURES = pfcp.UPFeatures(0)


@dataclass(frozen=True, slots=True)
class Call:
    """One call the agent made: the method name and its arguments."""

    method: str
    args: tuple[object, ...] = ()


@dataclass(slots=True)
class _Meter:
    ul_bytes: int = 0
    dl_bytes: int = 0
    ul_packets: int = 0
    dl_packets: int = 0
    start: float = 0.0
    seqn: int = 0


@dataclass
class FakeDriver:
    """Recording Driver test double (see the module docstring)."""

    name: str = "fake"
    supported: pfcp.UPFeatures = _NO_FEATURES
    clock: Callable[[], float] = time.time
    calls: list[Call] = field(default_factory=list)
    #: Raised (once) by the next install instead of applying it.
    fail_next_install: Exception | None = None
    #: What drop_buffered returns per UP SEID.
    buffered: dict[int, int] = field(default_factory=dict)
    started: bool = False
    _states: dict[int, SessionState] = field(default_factory=dict)
    _meters: dict[tuple[int, int], _Meter] = field(default_factory=dict)
    _removed: dict[int, list[UsageReport]] = field(default_factory=dict)  # final reports of removed URRs
    _handler: Callable[[DriverEvent], None] | None = None

    # -- Driver protocol ------------------------------------------------------

    @property
    def features(self) -> pfcp.UPFeatures:
        return self.supported

    async def start(self) -> None:
        self.calls.append(Call("start"))
        self.started = True

    async def stop(self) -> None:
        self.calls.append(Call("stop"))
        self.started = False
        self._states.clear()
        self._meters.clear()
        self._removed.clear()

    def set_event_handler(self, handler: Callable[[DriverEvent], None]) -> None:
        self._handler = handler

    def install(self, state: SessionState, end_marker_fars: Collection[int] = ()) -> None:
        self.calls.append(Call("install", (state.up_seid, tuple(end_marker_fars))))
        if self.fail_next_install is not None:
            exc, self.fail_next_install = self.fail_next_install, None
            raise exc
        teids = {p.local_f_teid.teid for p in state.pdrs.values() if p.local_f_teid is not None}
        for seid, other in self._states.items():
            if seid != state.up_seid:
                used = {p.local_f_teid.teid for p in other.pdrs.values() if p.local_f_teid is not None}
                if teids & used:  # as the real dataplane: the PDR matching on that TEID failed (§8.2.80)
                    teid = min(teids & used)
                    pdr_id = min(
                        p.pdr_id for p in state.pdrs.values() if p.local_f_teid and p.local_f_teid.teid == teid
                    )
                    raise DriverError(
                        f"PDR {pdr_id}: TEID {teid:#x} is already used by session {seid:#x}",
                        pfcp.FailedRuleID(pfcp.RuleIDType.PDR, pdr_id),
                    )
        now = self.clock()
        for urr_id in state.urrs:  # measurements of URRs that persist are kept
            self._meters.setdefault((state.up_seid, urr_id), _Meter(start=now))
        old = self._states.get(state.up_seid)
        for urr_id in sorted(() if old is None else set(old.urrs) - set(state.urrs)):
            self._removed.setdefault(state.up_seid, []).append(self._report(state.up_seid, urr_id, _T.TERMR, None))
            self._meters.pop((state.up_seid, urr_id), None)
        self._states[state.up_seid] = state

    def take_removed_reports(self, up_seid: int) -> list[UsageReport]:
        self.calls.append(Call("take_removed_reports", (up_seid,)))
        return self._removed.pop(up_seid, [])

    def remove(self, up_seid: int) -> list[UsageReport]:
        self.calls.append(Call("remove", (up_seid,)))
        state = self._states.pop(up_seid, None)
        self._removed.pop(up_seid, None)
        if state is None:
            return []
        reports = [self._report(up_seid, urr_id, _T.TERMR, None) for urr_id in sorted(state.urrs)]
        for urr_id in state.urrs:
            self._meters.pop((up_seid, urr_id), None)
        return reports

    def query(
        self, up_seid: int, urr_ids: Collection[int] | None = None, reference: int | None = None
    ) -> list[UsageReport]:
        self.calls.append(Call("query", (up_seid, None if urr_ids is None else tuple(urr_ids), reference)))
        state = self._states.get(up_seid)
        if state is None:
            return []
        wanted = sorted(state.urrs) if urr_ids is None else [u for u in urr_ids if u in state.urrs]
        return [self._report(up_seid, urr_id, _T.IMMER, reference) for urr_id in wanted]

    def drop_buffered(self, up_seid: int) -> int:
        self.calls.append(Call("drop_buffered", (up_seid,)))
        return self.buffered.pop(up_seid, 0)

    def installed(self) -> Mapping[int, SessionState]:
        return dict(self._states)

    # -- test controls ----------------------------------------------------------

    def meter(self, up_seid: int, urr_id: int, *, ul_bytes: int = 0, dl_bytes: int = 0) -> None:
        """Count traffic on an installed URR (one packet per direction with bytes)."""
        m = self._meters[(up_seid, urr_id)]
        m.ul_bytes += ul_bytes
        m.dl_bytes += dl_bytes
        m.ul_packets += 1 if ul_bytes else 0
        m.dl_packets += 1 if dl_bytes else 0

    def emit(self, event: DriverEvent) -> None:
        """Raise a dataplane event, as a forwarding loop would."""
        assert self._handler is not None, "the agent has not set an event handler"
        self._handler(event)

    def lose_state(self) -> None:
        """Forget every session, as a restarted dataplane does."""
        self._states.clear()
        self._meters.clear()
        self._removed.clear()

    def methods(self) -> list[str]:
        """The names of the calls made so far, in order."""
        return [c.method for c in self.calls]

    def _report(
        self, up_seid: int, urr_id: int, trigger: pfcp.UsageReportTriggerFlags, reference: int | None
    ) -> UsageReport:
        m = self._meters[(up_seid, urr_id)]
        now = self.clock()
        report = UsageReport(
            urr_id=urr_id,
            ur_seqn=m.seqn,
            trigger=trigger,
            start_time=m.start,
            end_time=now,
            ul_bytes=m.ul_bytes,
            dl_bytes=m.dl_bytes,
            ul_packets=m.ul_packets,
            dl_packets=m.dl_packets,
            query_urr_reference=reference,
        )
        self._meters[(up_seid, urr_id)] = _Meter(start=now, seqn=m.seqn + 1)  # a report restarts the measurement
        return report
