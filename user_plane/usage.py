"""URR measurement engine: one :class:`UrrMeter` per Usage Reporting Rule (TS 29.244 §5.2.2).

Pure: no clock, no sockets. Every method takes ``now`` (UNIX seconds, float);
reports are :class:`user_plane.driver.UsageReport` objects.

What a meter measures (§5.2.2.2, Measurement Method §8.2.40):

* VOLUM: octets and packets per direction (packets always, so MNOP costs nothing).
  Volume is counted whatever the method; volume triggers are armed only with VOLUM.
* DURAT: measured time. Time metering starts with the first packet, or at once
  when Measurement Information ISTM is set (§8.2.68). With an Inactivity Detection
  Time (§8.2.18) the metering stops when no packet came for that time and resumes
  with the next packet: the inactivity time after the last packet is counted (the
  metering runs until it expires, as Gy's quota consumption time), the silent gap
  after it is not. Durations are reported in whole seconds as differences of the
  floored cumulative time, so the reports of a URR add up to its measured time.
* INAM (§8.2.68): measurement paused: packets are not counted, time is not metered,
  no trigger fires except the ones the CP function asks for (IMMER, TERMR).
* MBQE is the dataplane's business (it chooses which length it passes to count()).

Every report restarts the measurement (§5.2.2.3): it carries the usage since the
previous report of the URR (or since the meter was created), the time of first and
last packet in that interval, and UR-SEQN 0, 1, 2... (§8.2.55). Quotas are not
restarted: they count usage since they were provisioned, across reports.

Reporting triggers (§8.2.19), each armed only when its bit is set *and* the IE it
needs is present (Table 7.5.2.4-1 makes the IE conditional on the trigger):

* PERIO: every Measurement Period on a fixed grid from creation (or from the Update
  URR that changed the period); a late tick() gives one report, not a burst.
* VOLTH: Volume Threshold (§8.2.13) total/uplink/downlink, whichever is present is
  reached first (>=); since the last report. Fires in count() on the packet that
  reaches it, so the report overshoots by less than one packet.
* TIMTH: Time Threshold on the measured duration since the last report (tick()).
* VOLQU / TIMQU: Volume Quota (§8.2.50) / Time Quota (§8.2.51) exhausted: report and
  ``blocked = True``. §5.2.2.2 says the UP function stops forwarding once the quota
  is exhausted; the packet that reaches or crosses the quota is the one that
  exhausts it, so it is counted and forwarded and every later packet is not. Hence
  the dataplane checks ``blocked`` *before* count(), and a counted packet is a
  forwarded packet (a volume quota overshoots by less than one packet). A quota of
  0 is exhausted at once (the VOLQU/TIMQU report comes from the first tick()).
  Time metering stops with an exhausted quota (nothing is forwarded) and resumes
  with the next packet counted (after a new quota, or traffic the dataplane still
  counts under a FAR ID for Quota Action).
* QUHTI: no packet for the Quota Holding Time (§8.2.48) while a quota is
  provisioned and not exhausted (the timer restarts with each packet and with each
  new quota, as Quota-Holding-Time of TS 32.299 §7.2.160); fires once per silence.
  It does not block: the CP function decides what to do with the quota.
* IMMER (query(), Query URR / QAURR, Query URR Reference §8.2.90) and TERMR (final()).

Update URR (update()) keeps the measurement; new thresholds apply to the usage
since the last report (a threshold already reached reports at once, in the list
update() returns). A quota is provisioned anew (counted from zero, unblocked) when
its value changed. The desired-state model cannot tell an Update URR that resends
the same quota value from no change at all: a caller that knows pass
``reprovision=True``.

Not implemented (the meter ignores these IEs/bits):

* Monitoring Time and MONIT, hence the Subsequent Volume/Time Threshold/Quota (they
  apply only after the Monitoring Time, Table 7.5.2.4-1) and Usage Information
  BEF/AFT.
* EVENT measurement, Event Threshold/Quota (EVETH, EVEQU), START/STOPT (application
  detection), DROTH (Dropped DL Traffic Threshold), LIUSA (Linked URR), ENVCL,
  MACAR, IPMJL, QUVTI (Quota Validity Time), REEMR, UPINT, Number of Reports,
  SSPOC/ASPOC/CIAM, MBQE/UBE/UAE pairs of reports.
* Zero values: a Measurement Period, Time Threshold, Quota Holding Time or
  Inactivity Detection Time of 0 is treated as absent.

Timers: next_deadline() is the earliest time tick() may have something to do (a
time in the past means "tick now"). A counted packet can make it earlier (the first
packet starts time metering, a packet after inactivity resumes it, a packet after a
QUHTI report restarts the holding timer); count() then sets ``timers_changed`` so a
dataplane sleeping until next_deadline() knows to read it again (and clears it).
"""

from __future__ import annotations

import math
from typing import Any, Generic, TypeVar, cast

import pfcp

from .driver import Direction, UsageReport
from .rules import Urr

__all__ = ["NO_VOLUME_LIMIT", "UrrMeter"]

_RT = pfcp.ReportingTriggersFlags
_UT = pfcp.UsageReportTriggerFlags
_MM = pfcp.MeasurementMethodFlags
_MI = pfcp.MeasurementInformationFlags
# The bits _configure and _report test, as plain ints: an IntFlag operator builds an enum
# member each time (~0.5 µs), and every session's URR is configured on the establishment path.
_DURAT = int(_MM.DURAT)
_VOLUM = int(_MM.VOLUM)
_INAM = int(_MI.INAM)
_ISTM = int(_MI.ISTM)
_MNOP = int(_MI.MNOP)
_VOLTH = int(_RT.VOLTH)
_TIMTH = int(_RT.TIMTH)
_PERIO = int(_RT.PERIO)
_VOLQU = int(_RT.VOLQU)
_TIMQU = int(_RT.TIMQU)
_QUHTI = int(_RT.QUHTI)

#: "No limit" for the hot path's remaining-octet counters (ints keep the compare cheap).
_NEVER = 1 << 80
#: What :meth:`UrrMeter.volume_left` gives for "no limit" (and more).
NO_VOLUME_LIMIT = _NEVER
#: Float slack for measured time: whole seconds are floored, and an interval of exactly N
#: seconds must report N even when float rounding made it N - 1e-15 (times passed in need not
#: sit on one binade's grid, where differences would be exact).
_EPS = 1e-3

_Vol = tuple[int | None, int | None, int | None]  # (total, uplink, downlink)
_T = TypeVar("_T")


#: Volume limits interned: most sessions get the same few thresholds and quotas, one tuple each
#: saves 64 bytes a meter. Bounded (cleared when full), as values come from the CP function.
_VOLUMES: dict[_Vol, _Vol] = {}
_VOLUMES_MAX = 4096
#: The quota base of a meter that counted nothing yet (shared: a tuple is 56 bytes).
_NOTHING = (0, 0)


def _volumes(ie: pfcp.VolumeThreshold | pfcp.VolumeQuota | None) -> _Vol | None:
    if ie is None or (ie.total is None and ie.uplink is None and ie.downlink is None):
        return None
    vol = (ie.total, ie.uplink, ie.downlink)
    shared = _VOLUMES.get(vol)
    if shared is None:
        if len(_VOLUMES) >= _VOLUMES_MAX:
            _VOLUMES.clear()
        shared = _VOLUMES[vol] = vol
    return shared


def _whole(seconds: float) -> int:
    """Whole seconds of a cumulative measured time (reports are differences of these, §8.2.45)."""
    return math.floor(seconds + _EPS)


def _positive(value: int | None) -> int | None:
    return value if value else None


class _Timing:
    """The rarely used part of a :class:`UrrMeter` (see its _Cold fields), with their defaults."""

    __slots__ = (
        "_acc",
        "_dur_base",
        "_istm_at",
        "_owed_at",
        "_period",
        "_period_next",
        "_qht",
        "_qht_fired",
        "_qht_since",
        "_seg_start",
        "_tq",
        "_tq_base",
        "_tq_exhausted",
        "_tth",
        "_vq",
        "_vq_base",
        "_vq_exhausted",
    )

    def __init__(self) -> None:
        for name, field in _COLD.items():
            setattr(self, name, field.default)


class _Cold(Generic[_T]):
    """A field of :class:`UrrMeter` kept in its :class:`_Timing` part: reads give ``default``
    until a write of another value creates that part."""

    __slots__ = ("default", "name")

    def __init__(self, default: _T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        _COLD[name] = self

    def __get__(self, meter: UrrMeter, owner: type | None = None) -> _T:
        part = meter._t
        return self.default if part is None else cast(_T, getattr(part, self.name))

    def __set__(self, meter: UrrMeter, value: _T) -> None:
        part = meter._t
        if part is None:
            if value is self.default or value == self.default:
                return
            part = meter._t = _Timing()
        setattr(part, self.name, value)


_COLD: dict[str, _Cold[Any]] = {}


class UrrMeter:
    """Measures and reports the usage of one URR of one session (see the module docstring)."""

    __slots__ = (
        "_dl_bytes",
        "_dl_left",
        "_dl_packets",
        "_durat",
        "_gate",
        "_idt",
        "_inactive",
        "_last",
        "_owed",
        "_rep_dl",
        "_rep_dl_packets",
        "_rep_first",
        "_rep_start",
        "_rep_ul",
        "_rep_ul_packets",
        "_seqn",
        "_t",
        "_tot_left",
        "_ul_bytes",
        "_ul_left",
        "_ul_packets",
        "_vth",
        "blocked",
        "timers_changed",
        "urr",
    )

    # The rarely used state (time metering, quotas, period, holding time) lives in a _Timing
    # part created by the first write of a value other than its default: a meter with a volume
    # threshold and no traffic yet (most sessions) is 128 bytes smaller. Reads cost a descriptor
    # call instead of a slot read; none is on count()'s path but the first packet of an interval.
    _acc = _Cold(0.0)  # closed measured time (see _measured)
    _seg_start = _Cold[float | None](None)  # start of the open metering segment (None: not metering)
    _istm_at = _Cold(-math.inf)  # ISTM: time metering started without a packet (§8.2.68)
    _dur_base = _Cold(0.0)  # measured time at the last report
    _vq = _Cold[_Vol | None](None)
    _vq_base = _Cold(_NOTHING)  # (uplink, downlink) octets when the volume quota was provisioned
    _vq_exhausted = _Cold(False)
    _tth = _Cold[int | None](None)
    _tq = _Cold[int | None](None)
    _tq_base = _Cold(0.0)
    _tq_exhausted = _Cold(False)
    _period = _Cold[int | None](None)
    _period_next = _Cold(math.inf)
    _qht = _Cold[int | None](None)
    _qht_since = _Cold(0.0)  # read only while a quota is provisioned (set with it)
    _qht_fired = _Cold(False)
    _owed_at = _Cold(0.0)  # read only while _owed is set

    def __init__(self, urr: Urr, now: float) -> None:
        self.urr = urr
        self.blocked = False
        self.timers_changed = False
        self._t: _Timing | None = None
        # Cumulative counters since creation (the hot path's only writes besides _left/_last/_gate).
        self._ul_bytes = self._dl_bytes = self._ul_packets = self._dl_packets = 0
        # The same counters at the last report (the report interval's base).
        self._rep_ul = self._rep_dl = self._rep_ul_packets = self._rep_dl_packets = 0
        self._rep_start = now
        self._rep_first: float | None = None
        self._seqn = 0
        self._last = -math.inf  # time of the last packet counted
        # count() leaves its hot path when now > _gate: _gate is "last packet + Inactivity
        # Detection Time" while time metering runs, -inf when the next packet needs attention.
        self._gate = -math.inf
        # Time metering: closed time _acc plus the open segment from _seg_start to
        # min(now, max(_last, _istm_at) + _idt) (_seg_start None: not metering).
        self._idt = math.inf
        self._inactive = False
        self._durat = False
        self._vth: _Vol | None = None
        self._ul_left = self._dl_left = self._tot_left = _NEVER
        self._owed = 0  # trigger bits owed to the next report (a quota of 0 at creation)
        self._configure(None, now, reprovision=False)
        # Only a quota of 0 is reached at creation (thresholds of 0 wait for the first octet,
        # zero times are absent): the common meter without quota skips the check.
        if self._vq is not None or self._tq is not None:
            self._owed = self._due(now, periodic=False)
            if self._owed:
                self._owed_at = now
        self.timers_changed = False

    # ------------------------------------------------------------------ hot path

    def count(self, direction: Direction, nbytes: int, now: float) -> UsageReport | None:
        """Count one packet of ``nbytes`` octets; a report when a volume threshold or quota fires.

        Call it only for a packet that is forwarded (check :attr:`blocked` first).
        """
        if now > self._gate and self._wake(now):
            return None
        self._last = now
        self._gate = now + self._idt
        if direction:
            self._dl_bytes += nbytes
            self._dl_packets += 1
            self._dl_left -= nbytes
            self._tot_left -= nbytes
            if self._dl_left > 0 < self._tot_left:
                return None
        else:
            self._ul_bytes += nbytes
            self._ul_packets += 1
            self._ul_left -= nbytes
            self._tot_left -= nbytes
            if self._ul_left > 0 < self._tot_left:
                return None
        trigger = self._due_volume()
        if not trigger:  # defensive: the remaining counters are exact
            self._arm_volume()
            return None
        return self._report(now, trigger)

    def count_bulk(
        self,
        direction: Direction,
        nbytes: int,
        npackets: int,
        first_packet: float,
        last_packet: float,
        now: float,
    ) -> UsageReport | None:
        """Count ``npackets`` packets of ``nbytes`` octets in all, forwarded from ``first_packet``
        to ``last_packet`` (a fast path's counter delta, folded in at ``now``).

        The semantics of :meth:`count` for the whole bunch: nothing is counted while the
        measurement is paused (INAM); the first packet opens the report interval and starts
        or resumes time metering; the last one is the time of last packet. Gaps between
        packets inside the bunch are unknown, so the time between ``first_packet`` and
        ``last_packet`` is metered as if no gap exceeded the Inactivity Detection Time. A
        volume threshold or quota the bunch reaches fires one report at ``now`` (a fast path
        that keeps its delta below :meth:`volume_left` never makes it fire).
        """
        if npackets <= 0:
            return None
        if last_packet < first_packet:
            last_packet = first_packet
        if first_packet > self._gate and self._wake(first_packet):
            return None
        if last_packet > self._last:
            self._last = last_packet
        self._gate = self._last + self._idt
        if self._durat or self._qht is not None:
            self.timers_changed = True  # the metering segment or holding timer moved with _last
        if direction:
            self._dl_bytes += nbytes
            self._dl_packets += npackets
            self._dl_left -= nbytes
        else:
            self._ul_bytes += nbytes
            self._ul_packets += npackets
            self._ul_left -= nbytes
        self._tot_left -= nbytes
        if (self._dl_left if direction else self._ul_left) > 0 < self._tot_left:
            return None
        trigger = self._due_volume()
        if not trigger:
            self._arm_volume()
            return None
        return self._report(now, trigger)

    def volume_left(self) -> tuple[int, int, int]:
        """(total, uplink, downlink) octets that may still be counted before a volume
        threshold or quota fires: the packet that brings one of them to 0 or below fires
        it. Values of 2**80 and more mean no limit (no volume trigger armed). While the
        measurement is paused (INAM) nothing is counted: no limit."""
        if self._inactive:
            return (_NEVER, _NEVER, _NEVER)
        return (self._tot_left, self._ul_left, self._dl_left)

    def _wake(self, now: float) -> bool:
        """The slow part of count(): INAM, first packet of a report interval, time metering
        (re)start after inactivity, holding timer restart. True: do not count the packet."""
        if self._inactive:
            return True
        if self._rep_first is None:
            self._rep_first = now
        start = self._seg_start
        if start is None or now > max(self._last, self._istm_at) + self._idt:
            if start is not None:  # close the segment where the inactivity time expired
                self._acc += max(0.0, max(self._last, self._istm_at) + self._idt - start)
            self._seg_start = now
            if self._durat and (self._tth is not None or (self._tq is not None and not self._tq_exhausted)):
                self.timers_changed = True
        if self._qht_fired:
            self._qht_fired = False
            self.timers_changed = True
        return False

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        """The earliest time tick() may have something to do; None: nothing until a packet or update."""
        if self._owed:
            return self._owed_at
        if self._inactive:
            return None
        times: list[float] = []
        if self._period is not None:
            times.append(self._period_next)
        if self._durat:
            if self._tth is not None and (t := self._reaches(self._dur_base + self._tth)) is not None:
                times.append(t)
            if self._tq is not None and not self._tq_exhausted:
                if (t := self._reaches(self._tq_base + self._tq)) is not None:
                    times.append(t)
        if (t := self._qht_deadline()) is not None:
            times.append(t)
        return min(times) if times else None

    def tick(self, now: float) -> list[UsageReport]:
        """Reports due by ``now``: periodic, time threshold/quota, quota holding time (at most one)."""
        trigger = self._owed | self._due(now, periodic=True)
        return [self._report(now, trigger)] if trigger else []

    # ------------------------------------------------------------------ CP function requests

    def update(self, urr: Urr, now: float, *, reprovision: bool = False) -> list[UsageReport]:
        """Apply an updated URR (Update URR), keeping the measurement. Returns the report of a
        threshold or quota the new values make reached at once. ``reprovision``: quotas present
        in ``urr`` are new grants even when their value did not change."""
        if urr == self.urr and not reprovision:
            return []
        # Update URR carrying a quota grants it again, even with the same value (rules.Urr.quota_grants)
        reprovision = reprovision or urr.quota_grants != self.urr.quota_grants
        old, self.urr = self.urr, urr
        self._configure(old, now, reprovision=reprovision)
        trigger = self._owed | self._due(now, periodic=False)
        return [self._report(now, trigger)] if trigger else []

    def query(self, now: float, reference: int | None = None) -> UsageReport:
        """An immediate report (IMMER): Query URR or QAURR, with its Query URR Reference (§8.2.90)."""
        return self._report(now, _UT.IMMER | self._owed, reference)

    def final(self, now: float) -> UsageReport:
        """The last report (TERMR) when the URR or its session is removed."""
        return self._report(now, _UT.TERMR | self._owed)

    # ------------------------------------------------------------------ internals

    def _configure(self, old: Urr | None, now: float, *, reprovision: bool) -> None:
        """Take the trigger parameters of self.urr; ``old`` is the URR before an update."""
        urr = self.urr
        rt = int(urr.reporting_triggers)
        mi = int(urr.measurement_information or 0)
        method = int(urr.measurement_method)
        self._durat = bool(method & _DURAT)
        volum = bool(method & _VOLUM)

        # Settle time metering with the old parameters before they change.
        idt = float(urr.inactivity_detection_time) if urr.inactivity_detection_time else math.inf
        inactive = bool(mi & _INAM)
        if idt != self._idt or inactive:
            self._settle(now)
            self._idt = idt
        resumed = self._inactive and not inactive
        self._inactive = inactive
        if inactive:
            self._seg_start = None
            self._gate = -math.inf
        elif mi & _ISTM and self._seg_start is None:  # §8.2.68: start time metering now
            self._istm_at = now
            self._seg_start = now

        self._vth = _volumes(urr.volume_threshold) if volum and rt & _VOLTH else None
        self._tth = _positive(urr.time_threshold) if self._durat and rt & _TIMTH else None
        self._period = _positive(urr.measurement_period) if rt & _PERIO else None
        if self._period is None:
            self._period_next = math.inf
        elif old is None or old.measurement_period != urr.measurement_period or not old.reporting_triggers & _PERIO:
            self._period_next = now + self._period
        elif resumed and now >= self._period_next:
            self._advance_period(now)  # no PERIO report for the periods the measurement was paused

        vq = _volumes(urr.volume_quota) if volum and rt & _VOLQU else None
        tq = urr.time_quota if self._durat and rt & _TIMQU else None
        quota = vq is not None or tq is not None  # the holding time runs only with one (_qht_deadline)
        if vq is None or old is None or vq != self._vq or reprovision:
            ul, dl = self._ul_bytes, self._dl_bytes
            self._vq_base = (ul, dl) if ul or dl else _NOTHING
            self._vq_exhausted = self._qht_fired = False
            if quota:
                self._qht_since = now
        self._vq = vq
        if tq is None or old is None or tq != self._tq or reprovision:
            self._tq_base = self._measured(now)
            self._tq_exhausted = self._qht_fired = False
            if quota:
                self._qht_since = now
        self._tq = tq
        self._qht = _positive(urr.quota_holding_time) if rt & _QUHTI else None
        self.blocked = self._vq_exhausted or self._tq_exhausted
        self._arm_volume()
        self.timers_changed = True

    def _settle(self, now: float) -> None:
        """Close the time metered up to ``now`` into _acc; the segment continues from ``now``
        only if it was still running."""
        if self._seg_start is None:
            return
        running = now < max(self._last, self._istm_at) + self._idt
        self._acc = self._measured(now)
        self._seg_start = now if running else None
        self._gate = -math.inf

    def _measured(self, t: float) -> float:
        """Cumulative measured time at ``t`` (not before the last settle)."""
        start = self._seg_start
        if start is None:
            return self._acc
        end = max(self._last, self._istm_at) + self._idt
        if t < end:
            end = t
        return self._acc + (end - start if end > start else 0.0)

    def _reaches(self, target: float) -> float | None:
        """When the measured time reaches ``target`` if metering goes on; None if it stops first."""
        start = self._seg_start
        if start is None:
            return self._rep_start if target <= self._acc + _EPS else None
        t = start + (target - self._acc)
        return t if t <= max(self._last, self._istm_at) + self._idt else None

    def _qht_deadline(self) -> float | None:
        """When the Quota Holding Time expires: a quota is provisioned and not exhausted, and
        the holding timer (re)started with the last packet or the quota did not fire yet."""
        if self._qht is None or self._qht_fired:
            return None
        if (self._vq is None or self._vq_exhausted) and (self._tq is None or self._tq_exhausted):
            return None
        return max(self._last, self._qht_since) + self._qht

    def _arm_volume(self) -> None:
        """Octets each direction and the total may still grow before a threshold or quota is reached."""
        left = [_NEVER, _NEVER, _NEVER]  # total, uplink, downlink
        ul, dl = self._ul_bytes, self._dl_bytes
        if self._vth is not None:
            used = (ul + dl - self._rep_ul - self._rep_dl, ul - self._rep_ul, dl - self._rep_dl)
            for i, limit in enumerate(self._vth):
                if limit is not None:  # a threshold of 0 is reached by the first octet
                    left[i] = min(left[i], max(limit, 1) - used[i])
        if self._vq is not None and not self._vq_exhausted:
            bu, bd = self._vq_base
            used = (ul + dl - bu - bd, ul - bu, dl - bd)
            for i, limit in enumerate(self._vq):
                if limit is not None:
                    left[i] = min(left[i], limit - used[i])
        self._tot_left, self._ul_left, self._dl_left = left

    def _due_volume(self) -> int:
        """VOLTH/VOLQU bits of the volume limits reached now (marks a volume quota exhausted)."""
        trigger = 0
        ul, dl = self._ul_bytes, self._dl_bytes
        if self._vth is not None:
            used = (ul + dl - self._rep_ul - self._rep_dl, ul - self._rep_ul, dl - self._rep_dl)
            if any(limit is not None and used[i] >= max(limit, 1) for i, limit in enumerate(self._vth)):
                trigger |= _UT.VOLTH
        if self._vq is not None and not self._vq_exhausted:
            bu, bd = self._vq_base
            used = (ul + dl - bu - bd, ul - bu, dl - bd)
            if any(limit is not None and used[i] >= limit for i, limit in enumerate(self._vq)):
                trigger |= _UT.VOLQU
                self._vq_exhausted = self.blocked = True
        return trigger

    def _due(self, now: float, *, periodic: bool) -> int:
        """Trigger bits of everything reached by ``now``; marks quotas exhausted, timers fired."""
        if self._inactive:
            if self._period is not None and now >= self._period_next:
                self._advance_period(now)
            return 0
        trigger = self._due_volume()
        if periodic and self._period is not None and now >= self._period_next:
            trigger |= _UT.PERIO
            self._advance_period(now)
        if self._durat:
            measured = self._measured(now)
            if self._tth is not None and measured - self._dur_base >= self._tth - _EPS:
                trigger |= _UT.TIMTH
            if self._tq is not None and not self._tq_exhausted and measured - self._tq_base >= self._tq - _EPS:
                trigger |= _UT.TIMQU
                self._tq_exhausted = self.blocked = True
        if (t := self._qht_deadline()) is not None and now >= t:
            trigger |= _UT.QUHTI
            self._qht_fired = True
        return trigger

    def _advance_period(self, now: float) -> None:
        assert self._period is not None
        missed = math.floor((now - self._period_next) / self._period) + 1
        self._period_next += missed * self._period

    def _report(self, now: float, trigger: int, reference: int | None = None) -> UsageReport:
        """The usage since the previous report; restarts the measurement (§5.2.2.3)."""
        measured = self._measured(now)
        first = self._rep_first
        report = UsageReport(
            urr_id=self.urr.urr_id,
            ur_seqn=self._seqn,
            trigger=_UT(trigger),
            start_time=self._rep_start,
            end_time=now,
            ul_bytes=self._ul_bytes - self._rep_ul,
            dl_bytes=self._dl_bytes - self._rep_dl,
            ul_packets=self._ul_packets - self._rep_ul_packets,
            dl_packets=self._dl_packets - self._rep_dl_packets,
            duration=_whole(measured) - _whole(self._dur_base) if self._durat else None,
            first_packet=first,
            last_packet=None if first is None else self._last,
            query_urr_reference=reference,
            volume_measured=bool(int(self.urr.measurement_method) & _VOLUM),
            packets_measured=bool(int(self.urr.measurement_information or 0) & _MNOP),
        )
        self._seqn = (self._seqn + 1) & 0xFFFFFFFF
        self._rep_ul, self._rep_dl = self._ul_bytes, self._dl_bytes
        self._rep_ul_packets, self._rep_dl_packets = self._ul_packets, self._dl_packets
        self._rep_start = now
        self._rep_first = None
        self._dur_base = measured
        if trigger & (_UT.VOLQU | _UT.TIMQU):
            # Quota exhausted: packets stop, so does time metering; a packet the dataplane still
            # counts (FAR ID for Quota Action) resumes it.
            self._acc, self._seg_start = measured, None
        self._owed = 0
        self._gate = -math.inf  # the next packet is the first of the new interval
        self._arm_volume()
        return report
