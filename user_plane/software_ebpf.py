"""The software driver's side of the eBPF fast path (user_plane/ebpf): loading, attaching, keeping meters exact.

Theory of operation:

* :func:`attach_fastpath` loads the program and attaches it to every Ethernet
  device of the namespace; when that fails the driver forwards in Python only
  (one log line), unless the fast path was required.
* The :class:`~user_plane.forward.Forwarder` stays the authority on rules and
  meters. :class:`FastPathGlue` mirrors each installed state into BPF
  (:meth:`FastPathGlue.apply`), folds what BPF counted into the meters before
  anything reads them (a rule change, a query, a URR timer, and at least every
  :data:`FASTPATH_POLL` seconds), and refreshes the byte budgets BPF may forward
  after each fold, so that volume thresholds and quotas fire in Python on the
  packet that reaches them (TS 29.244 §5.2.2.2).
* It is part of the driver (it reads the driver's internals: forwarder,
  counters, loop, clock), split out to keep each file readable.
* A Python-path packet of a session that has a fast-path slot with volume limits
  armed is *touched*: the session is folded before the Forwarder counts the
  packet, and refreshed after the batch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from . import tun
from .driver import DriverError, SessionUsage, UsageReport
from .session import SessionState

if TYPE_CHECKING:
    from .ebpf.fastpath import FastPath
    from .software import SoftwareDriver

__all__ = ["FASTPATH_POLL", "FastPathGlue", "attach_fastpath"]

log = logging.getLogger("user_plane.software")  # the driver's log: one place for operators to look

#: The eBPF fast path's counters are folded into the meters at least this often (seconds).
FASTPATH_POLL: Final = 1.0


async def attach_fastpath(driver: SoftwareDriver, required: bool, max_sessions: int) -> FastPathGlue | None:
    """Load the eBPF fast path and attach it to every Ethernet device of this namespace
    (N3, N6 and any other: the program only handles G-PDUs to an N3 address and packets
    to an offloaded UE address, and only redirects to those devices). TUNs and loopback
    are not Ethernet. Devices created later are not covered.

    None when it is not available and not ``required``; DriverError when it is required."""
    from .ebpf.fastpath import FastPath
    from .ebpf.loader import BpfObject

    try:
        devices = await tun.ethernet_devices()
        obj = BpfObject(max_sessions=max_sessions)
    except Exception as exc:
        if required:
            raise DriverError(f"eBPF fast path unavailable: {exc}") from exc
        log.warning("eBPF fast path unavailable, Python forwarding only: %s", str(exc).splitlines()[0])
        return None
    fastpath = FastPath(
        obj,
        n3_ipv4=driver._n3_ipv4,
        pools={ni: n6.ue_pool for ni, n6 in driver._n6.items()},
        gatewayed=[ni for ni, n6 in driver._n6.items() if n6.gateway is not None],
        meters=lambda seid: driver.forwarder.meters(seid),
        meters_changed=lambda seid: driver.forwarder.meters_changed(seid),
        clock=driver._clock,
    )
    try:
        names = fastpath.attach(devices)
    except Exception as exc:
        fastpath.close()
        if required:
            raise DriverError(f"eBPF fast path: {exc}") from exc
        log.warning("eBPF fast path not attached, Python forwarding only: %s", exc)
        return None
    glue = FastPathGlue(driver, fastpath)
    # Pitfall 3: a downlink packet from a local or veth sender is CHECKSUM_PARTIAL; after
    # the in-kernel encapsulation only a device without TX checksum offload completes the
    # inner checksum (validate_xmit_skb -> skb_checksum_help) on the way out of N3.
    for address in driver._n3:
        device = await tun.device_of(address)
        if device is None or device in glue.tx_csum_restore:
            continue
        try:
            if tun.tx_checksum(device):
                tun.tx_checksum(device, False)
                glue.tx_csum_restore.append(device)
        except OSError as exc:
            log.warning("eBPF fast path: cannot turn TX checksum offload off on %s: %s", device, exc)
    log.info("eBPF fast path attached to %s", ", ".join(names) or "no device")
    return glue


class FastPathGlue:
    """One attached :class:`~user_plane.ebpf.fastpath.FastPath` and what keeps it and the
    driver's Forwarder in step. Errors of the BPF syscalls are counted (``ebpf.error.*``)
    and logged: the session then stays on (or falls back to) the Python path."""

    def __init__(self, driver: SoftwareDriver, fastpath: FastPath) -> None:
        self.driver = driver
        self.fastpath = fastpath
        #: Sessions touched by the current batch, refreshed after it.
        self.touched: set[int] = set()
        #: N3 devices whose TX checksum offload we turned off (restored on close).
        self.tx_csum_restore: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.fastpath.close()  # detach first: a filter outlives the process (pitfall 7)
        for device in self.tx_csum_restore:
            try:
                tun.tx_checksum(device, True)
            except OSError:
                pass  # the device is gone
        self.tx_csum_restore.clear()

    def error(self, what: str, exc: OSError) -> None:
        self.driver.counters[f"ebpf.error.{what}"] += 1
        log.error("eBPF fast path: %s failed: %s", what, exc)

    def events(self, up_seid: int, reports: list[UsageReport]) -> None:
        if reports:
            self.driver.forwarder.events.append(SessionUsage(up_seid, tuple(reports)))

    def fold(self, up_seid: int) -> None:
        """Fold what BPF counted for the session into its meters (before anything reads them)."""
        try:
            self.events(up_seid, self.fastpath.fold(up_seid))
        except OSError as exc:
            self.error("fold", exc)

    def refresh(self, up_seid: int) -> None:
        try:
            self.fastpath.refresh(up_seid)
        except OSError as exc:
            self.error("refresh", exc)

    def apply(self, state: SessionState) -> None:
        """Mirror the installed state into BPF; on failure the session stays on the Python path."""
        fastpath = self.fastpath
        try:
            fastpath.apply(state)
        except OSError as exc:
            self.error("apply", exc)
            try:
                fastpath.remove(state.up_seid)
            except OSError as remove_exc:
                self.error("remove", remove_exc)
        loop = self.driver._loop
        if fastpath.has_offloads() and self._timer is None and loop is not None:
            self._timer = loop.call_later(FASTPATH_POLL, self.poll)

    def remove(self, up_seid: int) -> None:
        """The session goes: its final BPF counts go into the meters first."""
        if self.fastpath.is_offloaded(up_seid):
            try:
                self.events(up_seid, self.fastpath.remove(up_seid))
            except OSError as exc:
                self.error("remove", exc)

    def counters(self) -> dict[str, int]:
        try:
            return self.fastpath.counters()
        except OSError as exc:
            self.error("counters", exc)
            return {}

    def touch(self, up_seid: int) -> None:
        """A Python-path packet of a session with a fast-path slot: when volume limits are
        armed, fold first so the Forwarder counts it on exact meters; refresh after the batch."""
        if self.fastpath.needs_fold(up_seid):
            self.fold(up_seid)
            self.touched.add(up_seid)

    def after_batch(self) -> None:
        touched = self.touched
        while touched:
            self.refresh(touched.pop())

    def poll(self) -> None:
        """At least every FASTPATH_POLL seconds: fold every offloaded session (time of first
        packet, inactivity, periodic reports see the fast path's packets within that)."""
        self._timer = None
        loop = self.driver._loop
        if loop is None:
            return
        try:
            for seid, reports in self.fastpath.fold_all().items():
                self.events(seid, reports)
                self.refresh(seid)
        except OSError as exc:
            self.error("poll", exc)
        self.driver._after_batch()
        if self.fastpath.has_offloads():
            self._timer = loop.call_later(FASTPATH_POLL, self.poll)

    def tick(self) -> None:
        """The URR timer fired: the meters must have what BPF counted before their timers
        run; reports and exhausted time quotas change the budgets and what may be offloaded."""
        forwarder = self.driver.forwarder
        try:
            for seid, reports in self.fastpath.fold_all().items():
                self.events(seid, reports)
        except OSError as exc:
            self.error("fold", exc)
        events = forwarder.events
        before = len(events)
        forwarder.tick(self.driver._clock())
        seids = {e.up_seid for e in list(events)[before:]} if len(events) > before else set()
        for seid in seids:
            self.refresh(seid)
