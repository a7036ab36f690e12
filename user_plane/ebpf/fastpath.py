"""The eBPF fast path of the software dataplane: offloaded sessions mirrored into BPF maps.

Theory of operation:

* :class:`~user_plane.forward.Forwarder` stays the only authority: every rule and
  meter lives there. After each install/remove, :meth:`FastPath.apply` mirrors
  the directions :func:`~user_plane.ebpf.offload.decide` accepts into the BPF maps
  (``teid_map`` by TEID, ``ue_map`` by UE IPv4: hash map updates replace a value
  atomically for the program) and deletes the rest; a packet without a map entry
  takes the Python path unchanged.
* Each session with an offloaded direction owns a *slot* in the ``usage`` and
  ``limits`` arrays. BPF counts packets and octets per direction in ``usage``
  (cumulative, spin-locked); :meth:`FastPath.fold` reads it with ``BPF_F_LOCK``
  and adds the difference since the previous read to the session's meters
  (:meth:`~user_plane.usage.UrrMeter.count_bulk`). User space never writes a slot
  the program may be counting into: a slot is zeroed only when it is handed to a
  session, after it sat unused for :data:`SLOT_QUARANTINE` seconds.
* Exact volume reporting: ``limits`` holds, per direction and in total, the
  cumulative octets the program may reach: the folded count plus the smallest
  :meth:`~user_plane.usage.UrrMeter.volume_left` of the URRs, minus one. The packet
  that would reach a threshold or quota is therefore *not* forwarded by BPF: it
  goes up (N3 socket / TUN), the driver folds the session first, and the Forwarder
  counts it, so the report fires on the same packet it would without a fast path.
  :meth:`FastPath.refresh` rewrites the limits after every fold, report, query
  or rule change.
* Time: the program stamps packets with CLOCK_MONOTONIC; a fold converts them to
  the driver's clock. ``limits.epoch_ns`` (the previous fold) tells the program
  which packet is the first since it.
* MBR: one token bucket per direction in the slot, parameters as
  :mod:`user_plane.qos` (rate = MBR, depth = max(50 ms at the rate, 3000 octets)).
  The bucket starts full and keeps its tokens across rule changes (capped at the
  new depth), as Forwarder's does; it is separate from the Forwarder's bucket, so
  the few packets punted while offloaded are policed by that one.
* Counters per Network Instance: each slot knows the instance of each direction it
  carries (:func:`~user_plane.ebpf.offload.network_instances`); a fold credits what
  the slot counted since the previous one (packets, octets, drops) to those, and
  :meth:`FastPath.counters` adds what the live slots counted since. A slot keeps the
  last instance of a direction it stopped carrying: packets still in flight count there.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Final

from ..driver import Direction, UsageReport
from ..qos import bucket_depth
from ..session import SessionState
from ..usage import UrrMeter
from . import loader
from .loader import BPF_F_LOCK, BpfObject, DlRule, Limits, UlRule, Usage
from .offload import DownlinkOffload, Offload, UplinkOffload, decide, network_instances

__all__ = ["SLOT_QUARANTINE", "FastPath", "SessionCounters"]

log = logging.getLogger(__name__)

#: Seconds a released slot waits before another session gets it (a packet the program
#: was handling when the map entry went may still count into it meanwhile).
SLOT_QUARANTINE: Final = 2.0
_U64_MAX: Final = (1 << 64) - 1
#: Limits are capped here: beyond, "no limit" (BPF compares u64 sums).
_NO_LIMIT: Final = 1 << 62
_UL, _DL = Direction.UPLINK, Direction.DOWNLINK

Meters = Callable[[int], Mapping[int, UrrMeter]]
_NOTHING: Final = Offload(None, None)


def _be32(address: IPv4Address) -> int:
    """The address as the program reads it from the packet (network order in a native u32)."""
    return int.from_bytes(address.packed, "little")


@dataclass
class SessionCounters:
    """What was folded of one slot: cumulative counters as last read."""

    ul_packets: int = 0
    ul_bytes: int = 0
    dl_packets: int = 0
    dl_bytes: int = 0
    ul_drops: int = 0
    dl_drops: int = 0

    def add(self, u: Usage | SessionCounters, ul: bool, dl: bool, minus: SessionCounters | None = None) -> None:
        """Add ``u``'s uplink and/or downlink counters (less ``minus``'s)."""
        m = minus or _ZERO
        if ul:
            self.ul_packets += u.ul_packets - m.ul_packets
            self.ul_bytes += u.ul_bytes - m.ul_bytes
            self.ul_drops += u.ul_drops - m.ul_drops
        if dl:
            self.dl_packets += u.dl_packets - m.dl_packets
            self.dl_bytes += u.dl_bytes - m.dl_bytes
            self.dl_drops += u.dl_drops - m.dl_drops


_ZERO: Final = SessionCounters()
#: What a kernel without BPF_MAP_LOOKUP_BATCH for array maps answers: EINVAL, ENOTSUPP (524, the
#: kernel's own code, which Python's errno module does not name), EOPNOTSUPP.
_NO_BATCH: Final = frozenset({errno.EINVAL, 524, errno.EOPNOTSUPP})


@dataclass
class _Slot:
    seid: int
    index: int
    offload: Offload
    state: SessionState
    folded: SessionCounters = field(default_factory=SessionCounters)
    epoch_ns: int = 0
    limits: tuple[int, ...] = ()
    #: The Network Instance its uplink and its downlink count for (the last one carried).
    ul_instance: str | None = None
    dl_instance: str | None = None
    #: A volume threshold or quota is armed: punted packets need a fold before Python counts them.
    exact: bool = False
    #: The usage element's bytes at the last fold (zeroed at allocation): fold_all skips a slot
    #: whose element still reads the same.
    seen: bytes = bytes(ctypes.sizeof(Usage))
    #: The keys of FastPath.teids and .ues that point at this slot (forgotten in O(1), not by a scan).
    watched_teids: list[int] = field(default_factory=list)
    watched_ues: list[bytes] = field(default_factory=list)


class FastPath:
    """BPF maps and tc attachments of the fast path for one SoftwareDriver.

    ``meters(up_seid)`` returns the session's live meters (``Forwarder.meters``);
    ``clock`` is the driver's (UNIX seconds).
    """

    def __init__(
        self,
        obj: BpfObject,
        *,
        n3_ipv4: IPv4Address | None,
        pools: Mapping[str, Collection[IPv4Network | IPv6Network]],
        gatewayed: Collection[str] = (),
        meters: Meters,
        meters_changed: Callable[[int], None] = lambda up_seid: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.obj = obj
        self.n3_ipv4 = n3_ipv4
        self.pools = {ni: tuple(nets) for ni, nets in pools.items()}
        self.gatewayed = frozenset(gatewayed)
        self._meters = meters
        self._meters_changed = meters_changed
        self._clock = clock
        self._slots: dict[int, _Slot] = {}  # by UP SEID
        self._free: list[int] = list(range(obj.max_sessions - 1, -1, -1))
        self._high = 0  # 1 + the highest slot index ever used: fold_all reads usage[0:_high]
        self._quarantine: deque[tuple[float, int]] = deque()
        self.attachments: list[loader.TcAttachment] = []
        #: TEIDs / packed UE IPv4 addresses of sessions with a slot, for the Python path's
        #: packets: those must fold their session first (see SoftwareDriver).
        self.teids: dict[int, int] = {}
        self.ues: dict[bytes, int] = {}
        #: Totals folded from slots that were released (so the counters stay cumulative).
        self._released = SessionCounters()
        #: What folds credited to each Network Instance (live slots' and released ones').
        self._instances: dict[str, SessionCounters] = {}
        if n3_ipv4 is not None:
            self.obj.update("n3_addrs", ctypes.c_uint32(_be32(n3_ipv4)), ctypes.c_uint32(1))

    # -- devices ------------------------------------------------------------------------------

    def attach(self, devices: Iterable[tuple[int, str]]) -> list[str]:
        """Attach the program to each (ifindex, name) and allow redirects to it. Runs in
        the calling thread's namespace (pitfall 1). Returns the names attached."""
        names = []
        for ifindex, name in devices:
            self.obj.update("devices", ctypes.c_uint32(ifindex), ctypes.c_uint32(1))
            self.attachments.append(self.obj.attach(ifindex))
            names.append(name)
        return names

    def close(self) -> None:
        """Detach everywhere (in the namespace of the devices) and close the object."""
        errors = []
        for attachment in self.attachments:
            try:
                attachment.detach()
            except OSError as exc:
                errors.append(exc)
        self.attachments.clear()
        self.obj.close()
        self._slots.clear()
        self.teids.clear()
        self.ues.clear()
        if errors:
            log.warning("eBPF fast path: detach failed: %s", "; ".join(map(str, errors)))

    # -- sessions -----------------------------------------------------------------------------

    def offloaded(self) -> Mapping[int, Offload]:
        return {seid: slot.offload for seid, slot in self._slots.items()}

    def has_offloads(self) -> bool:
        """Whether any session has a slot (per install: O(1), unlike :meth:`offloaded`)."""
        return bool(self._slots)

    def is_offloaded(self, up_seid: int) -> bool:
        return up_seid in self._slots

    def apply(self, state: SessionState) -> Offload:
        """Mirror ``state`` (just installed in the Forwarder, whose meters the session
        now has) into the maps. Call :meth:`fold` before the Forwarder install."""
        meters = self._meters(state.up_seid)
        offload = decide(state, meters, n3_ipv4=self.n3_ipv4, pools=self.pools, gatewayed=self.gatewayed)
        slot = self._slots.get(state.up_seid)
        if offload.uplink is None and offload.downlink is None:
            if slot is not None:
                self._unmap(slot.offload, None)
                self.fold(state.up_seid)
                self._release(slot)
            return offload
        if slot is None:
            slot = self._allocate(state.up_seid, _NOTHING, state)
        old, slot.offload, slot.state = slot.offload, offload, state
        ul_instance, dl_instance = network_instances(state, offload, self.pools)
        slot.ul_instance = ul_instance or slot.ul_instance
        slot.dl_instance = dl_instance or slot.dl_instance
        self._unmap(old, offload)  # keys the new offload no longer has
        self._write_limits(slot, meters)  # before the keys: the budget must be in force first
        if offload.uplink is not None:
            self.obj.update("teid_map", ctypes.c_uint32(offload.uplink.teid), _ul_rule(slot.index, offload.uplink))
        if offload.downlink is not None:
            key = ctypes.c_uint32(_be32(offload.downlink.ue_ip))
            assert self.n3_ipv4 is not None
            self.obj.update("ue_map", key, _dl_rule(slot.index, offload.downlink, self.n3_ipv4))
        self._watch(slot)
        return offload

    def remove(self, up_seid: int) -> list[UsageReport]:
        """Stop carrying the session; folds what BPF counted (returns the reports it raised)."""
        slot = self._slots.get(up_seid)
        if slot is None:
            return []
        self._unmap(slot.offload, None)
        reports = self.fold(up_seid)
        self._release(slot)
        return reports

    def _allocate(self, seid: int, offload: Offload, state: SessionState) -> _Slot:
        now = time.monotonic()
        while self._quarantine and self._quarantine[0][0] <= now:
            self._free.append(self._quarantine.popleft()[1])
        if not self._free:
            raise loader.BpfError(28, "no free fast-path slot")  # ENOSPC
        index = self._free.pop()
        self._high = max(self._high, index + 1)
        # Nothing points at the slot (quarantine): zero its counters and buckets.
        self.obj.update("usage", ctypes.c_uint32(index), Usage())
        slot = _Slot(seid, index, offload, state)
        self._slots[seid] = slot
        return slot

    def _release(self, slot: _Slot) -> None:
        del self._slots[slot.seid]
        self._unwatch(slot)
        r, f = self._released, slot.folded
        r.ul_packets += f.ul_packets
        r.ul_bytes += f.ul_bytes
        r.dl_packets += f.dl_packets
        r.dl_bytes += f.dl_bytes
        r.ul_drops += f.ul_drops
        r.dl_drops += f.dl_drops
        self._quarantine.append((time.monotonic() + SLOT_QUARANTINE, slot.index))

    def _unmap(self, old: Offload, new: Offload | None) -> None:
        """Delete the map keys of ``old`` that ``new`` (None: nothing) does not have."""
        if old.uplink is not None and (new is None or new.uplink is None or new.uplink.teid != old.uplink.teid):
            self.obj.delete("teid_map", ctypes.c_uint32(old.uplink.teid))
        if old.downlink is not None and (
            new is None or new.downlink is None or new.downlink.ue_ip != old.downlink.ue_ip
        ):
            self.obj.delete("ue_map", ctypes.c_uint32(_be32(old.downlink.ue_ip)))

    def _watch(self, slot: _Slot) -> None:
        self._unwatch(slot)
        for pdr in slot.state.pdrs.values():
            if pdr.local_f_teid is not None:
                self.teids[pdr.local_f_teid.teid] = slot.seid
                slot.watched_teids.append(pdr.local_f_teid.teid)
            for ie in pdr.ue_ip_addresses:
                if ie.ipv4 is not None:
                    self.ues[ie.ipv4.packed] = slot.seid
                    slot.watched_ues.append(ie.ipv4.packed)

    def _unwatch(self, slot: _Slot) -> None:
        # Only keys still pointing at this slot: another session may have taken one over since.
        for teid in slot.watched_teids:
            if self.teids.get(teid) == slot.seid:
                del self.teids[teid]
        for ue in slot.watched_ues:
            if self.ues.get(ue) == slot.seid:
                del self.ues[ue]
        slot.watched_teids.clear()
        slot.watched_ues.clear()

    # -- counters -----------------------------------------------------------------------------

    def fold(self, up_seid: int) -> list[UsageReport]:
        """Add what BPF counted since the last fold to the session's meters; the reports
        a volume trigger raised (none while the limits are respected)."""
        slot = self._slots.get(up_seid)
        if slot is None:
            return []
        epoch = time.monotonic_ns()
        u = Usage()
        if not self.obj.lookup("usage", ctypes.c_uint32(slot.index), u, BPF_F_LOCK):
            return []
        return self._fold(slot, u, bytes(u), epoch)

    def _fold(self, slot: _Slot, u: Usage, raw: bytes, epoch: int) -> list[UsageReport]:
        """Fold ``u`` (``raw``: its bytes), read from the slot's usage element at ``epoch``."""
        slot.seen = raw
        up_seid = slot.seid
        now = self._clock()
        f = slot.folded
        d_ul_p, d_ul_b = u.ul_packets - f.ul_packets, u.ul_bytes - f.ul_bytes
        d_dl_p, d_dl_b = u.dl_packets - f.dl_packets, u.dl_bytes - f.dl_bytes
        self._credit(slot, u)
        f.ul_drops, f.dl_drops = u.ul_drops, u.dl_drops
        if not (d_ul_p or d_dl_p):
            return []
        f.ul_packets, f.ul_bytes, f.dl_packets, f.dl_bytes = u.ul_packets, u.ul_bytes, u.dl_packets, u.dl_bytes
        previous, slot.epoch_ns = slot.epoch_ns, epoch
        reports: list[UsageReport] = []
        offload = slot.offload
        meters = self._meters(up_seid)

        def wall(ns: int) -> float:
            return now - (epoch - ns) / 1e9

        for direction, packets, octets, first, last, urr_ids in (
            (_UL, d_ul_p, d_ul_b, u.ul_first_ns, u.ul_last_ns, offload.uplink and offload.uplink.urr_ids),
            (_DL, d_dl_p, d_dl_b, u.dl_first_ns, u.dl_last_ns, offload.downlink and offload.downlink.urr_ids),
        ):
            if not packets or not urr_ids:
                continue
            first = min(max(first, previous), last)
            t_first, t_last = wall(first), wall(last)
            for urr_id in urr_ids:
                meter = meters.get(urr_id)
                if meter is not None:
                    report = meter.count_bulk(direction, octets, packets, t_first, t_last, now)
                    if report is not None:
                        reports.append(report)
                    meter.timers_changed = False
        self._meters_changed(up_seid)  # first packet, inactivity, holding time: deadlines moved
        self._write_limits(slot, meters)  # the new epoch, and the budget from the meters now
        return reports

    def _credit(self, slot: _Slot, u: Usage, into: dict[str, SessionCounters] | None = None) -> None:
        """Credit what ``slot`` counted since its last fold (``u``: read now) to its instances."""
        into = self._instances if into is None else into
        for instance, ul, dl in ((slot.ul_instance, True, False), (slot.dl_instance, False, True)):
            if instance is not None:
                into.setdefault(instance, SessionCounters()).add(u, ul, dl, minus=slot.folded)

    def fold_all(self) -> dict[int, list[UsageReport]]:
        """:meth:`fold` every session with a slot; reports by UP SEID.

        It runs every FASTPATH_POLL seconds over every offloaded session: one syscall per
        slot took ~8 µs each (at 8,000 sessions an agent spent a quarter as much CPU on this
        poll as on establishing sessions at 1,000/s). So the usage elements of every slot
        in use are read in one batch, and a slot whose bytes are those it had at its last
        fold (no packet since: the counters, stamps and buckets move only with packets) is
        skipped after a comparison."""
        if not self._slots:
            return {}
        epoch = time.monotonic_ns()
        try:
            values = self.obj.lookup_range("usage", Usage, self._high, BPF_F_LOCK)
        except loader.BpfError as exc:
            if exc.errno not in _NO_BATCH:
                raise
            return self._fold_each()  # a kernel without batch lookups in array maps (before 5.6)
        raw = bytes(values)
        size = ctypes.sizeof(Usage)
        out: dict[int, list[UsageReport]] = {}
        for seid, slot in list(self._slots.items()):
            start = slot.index * size
            value = raw[start : start + size]
            if value == slot.seen:
                continue
            reports = self._fold(slot, values[slot.index], value, epoch)
            if reports:
                out[seid] = reports
        return out

    def _fold_each(self) -> dict[int, list[UsageReport]]:
        out: dict[int, list[UsageReport]] = {}
        for seid in list(self._slots):
            reports = self.fold(seid)
            if reports:
                out[seid] = reports
        return out

    def needs_fold(self, up_seid: int) -> bool:
        """A Python-path packet of this session must be preceded by a fold (volume limits armed)."""
        slot = self._slots.get(up_seid)
        return slot is not None and slot.exact

    def refresh(self, up_seid: int) -> None:
        """After the session's meters changed outside a fold (reports, queries, ticks,
        packets Python counted): re-decide the offload (a quota may be exhausted) and
        rewrite the budget."""
        slot = self._slots.get(up_seid)
        if slot is None:
            return
        meters = self._meters(up_seid)
        offload = decide(slot.state, meters, n3_ipv4=self.n3_ipv4, pools=self.pools, gatewayed=self.gatewayed)
        if offload != slot.offload:
            self.apply(slot.state)
        else:
            self._write_limits(slot, meters)

    def refresh_all(self) -> None:
        for seid in list(self._slots):
            self.refresh(seid)

    def _write_limits(self, slot: _Slot, meters: Mapping[int, UrrMeter]) -> None:
        offload = slot.offload
        ul_urrs = set(offload.uplink.urr_ids) if offload.uplink else set()
        dl_urrs = set(offload.downlink.urr_ids) if offload.downlink else set()
        rem_ul = rem_dl = rem_tot = _NO_LIMIT
        for urr_id in ul_urrs | dl_urrs:
            meter = meters.get(urr_id)
            if meter is None:
                continue
            tot, ul, dl = (v - 1 for v in meter.volume_left())  # the packet reaching 0 fires: punt it
            if urr_id in ul_urrs:
                rem_ul = min(rem_ul, ul if urr_id in dl_urrs else min(ul, tot))
            if urr_id in dl_urrs:
                rem_dl = min(rem_dl, dl if urr_id in ul_urrs else min(dl, tot))
            if urr_id in ul_urrs and urr_id in dl_urrs:
                rem_tot = min(rem_tot, tot)
        slot.exact = min(rem_ul, rem_dl, rem_tot) < _NO_LIMIT
        f = slot.folded

        def limit(base: int, remaining: int) -> int:
            return _U64_MAX if remaining >= _NO_LIMIT else base + max(remaining, 0)

        ul_limit = limit(f.ul_bytes, rem_ul)
        dl_limit = limit(f.dl_bytes, rem_dl)
        tot_limit = limit(f.ul_bytes + f.dl_bytes, rem_tot)
        ul_rate, ul_depth, ul_fill = _bucket(offload.uplink.mbr_kbps if offload.uplink else None)
        dl_rate, dl_depth, dl_fill = _bucket(offload.downlink.mbr_kbps if offload.downlink else None)
        values = (ul_limit, dl_limit, tot_limit, slot.epoch_ns, ul_rate, dl_rate, ul_depth, dl_depth, ul_fill, dl_fill)
        if values == slot.limits:
            return
        slot.limits = values
        self.obj.update("limits", ctypes.c_uint32(slot.index), Limits(*values))

    def counters(self) -> dict[str, int]:
        """Offloaded sessions, packets/octets the fast path forwarded per direction (read now,
        released sessions included), the same and the drops of the sessions' QERs per Network
        Instance (``ebpf.ni.<instance>.ul_packets``, ``.ul_bytes``, ``.ul_drops``, ``.dl_*``),
        and the program's reason counters (``ebpf.<reason>``; drops also per direction,
        ``ebpf.ul_drop_gate``...)."""
        total = SessionCounters(**vars(self._released))
        instances = {name: SessionCounters(**vars(c)) for name, c in self._instances.items()}
        u = Usage()
        for slot in self._slots.values():
            if self.obj.lookup("usage", ctypes.c_uint32(slot.index), u, BPF_F_LOCK):
                total.add(u, True, True)
                self._credit(slot, u, instances)
        out = {
            "ebpf.sessions": len(self._slots),
            "ebpf.sessions.uplink": sum(1 for s in self._slots.values() if s.offload.uplink is not None),
            "ebpf.sessions.downlink": sum(1 for s in self._slots.values() if s.offload.downlink is not None),
            "ebpf.ul_packets": total.ul_packets,
            "ebpf.ul_bytes": total.ul_bytes,
            "ebpf.dl_packets": total.dl_packets,
            "ebpf.dl_bytes": total.dl_bytes,
        }
        for name, c in sorted(instances.items()):
            for key, value in vars(c).items():
                out[f"ebpf.ni.{name}.{key}"] = value
        out.update({f"ebpf.{name}": value for name, value in self.obj.stats().items()})
        return out


def _bucket(kbps: int | None) -> tuple[int, int, int]:
    """(rate bit/s, depth and fill time in bit-nanoseconds / ns) for the program; no MBR: zeros."""
    if kbps is None:
        return 0, 0, 0
    rate = kbps * 1000
    if rate == 0:  # §8.2.8: an MBR of 0 passes nothing
        return 0, 0, _U64_MAX
    depth = int(bucket_depth(float(rate)) * 1e9)
    return rate, depth, math.ceil(depth / rate)


def _ul_rule(index: int, ul: UplinkOffload) -> UlRule:
    flags = (
        (loader.F_QFI if ul.qfi is not None else 0)
        | (loader.F_SPOOF if ul.ue_ip is not None else 0)
        | (loader.F_GATE if ul.gate_closed else 0)
        | (loader.F_MBR if ul.mbr_kbps is not None else 0)
    )
    ue = 0 if ul.ue_ip is None else _be32(ul.ue_ip)
    return UlRule(slot=index, ue_ip=ue, qfi=ul.qfi or 0, flags=flags)


def _dl_rule(index: int, dl: DownlinkOffload, n3: IPv4Address) -> DlRule:
    flags = (
        (loader.F_PSC if dl.qfi is not None else 0)
        | (loader.F_RQI if dl.rqi and dl.qfi is not None else 0)
        | (loader.F_GATE if dl.gate_closed else 0)
        | (loader.F_MBR if dl.mbr_kbps is not None else 0)
    )
    return DlRule(slot=index, teid=dl.teid, gnb_ip=_be32(dl.gnb_ip), n3_ip=_be32(n3), qfi=dl.qfi or 0, flags=flags)
