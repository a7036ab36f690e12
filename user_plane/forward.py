"""The software dataplane's forwarding engine: PFCP session rules applied to packets.

Pure (sans-I/O): packets are ``bytes``, time is an argument (UNIX seconds), and
what must go out is returned. :mod:`user_plane.software` owns the sockets and TUNs.

Theory of operation:

* :meth:`Forwarder.install` has :mod:`user_plane.compile` turn a
  :class:`~user_plane.session.SessionState` into per-PDR rules and two lookup
  tables: uplink by the local F-TEID's TEID, downlink by the UE IP address (IPv4
  exactly, IPv6 by prefix, /64 unless the UE IP Address IE says otherwise,
  §8.2.62). Everything that can fail is checked before anything changes, so a
  :class:`DriverError` leaves the previous state in force. Meters, token buckets
  and the downlink buffer of rules that persist are carried over.
* Per packet: the first PDR in precedence order (lower value first, §5.2.1) whose
  PDI matches (QFI, UE IP Address with its S/D flag, SDF filters, Network
  Instance), then URRs (§5.2.2), QERs (§5.2.1: gate, MBR) and the FAR.
* No two sessions may own one UE address (a downlink key) nor one TEID.
* Order on a matched PDR: a blocked URR (quota exhausted, §5.2.2.2) drops, or
  swaps in its FAR ID for Quota Action; a DROP FAR drops, a BUFF FAR buffers;
  URRs whose Measurement Information has MBQE count; the QER gates and MBR
  buckets police; the other URRs count; the FAR forwards.
* Downlink buffering (BUFF, §5.2.3.1): one bounded buffer per session. The first
  packet buffered under a FAR with NOCP raises one :class:`DownlinkData`; no other
  until the buffer has been emptied by an install (released) or
  :meth:`Forwarder.drop_buffered`. An install re-classifies every buffered packet
  under the new rules: a FORW FAR sends it, DROP discards it, BUFF keeps it.
* Usage reports of URRs an install removes (§7.5.4: reported in the Session
  Modification Response) cannot be returned by ``install``: they wait for
  :meth:`Forwarder.take_removed_reports`.
* Timers: :meth:`Forwarder.next_deadline` / :meth:`Forwarder.tick` drive the URR
  meters through a heap of deadlines (:mod:`user_plane.timers`: O(log N) per install,
  tick or look-up, not a walk over every URR); ``timers_changed`` tells an I/O loop
  when to re-read the deadline.
* Memory: one :class:`~user_plane.compile.Session` per PFCP session, kept small and
  free of reference cycles (a removed session is freed by reference counting alone,
  which the agent's GC policy relies on, see :mod:`edge_sites.gc_policy`).

Added to the agreed API: ``take_removed_reports(up_seid)``, ``buffered(up_seid)``,
``timers_changed``, :data:`DEFAULT_BUFFER_PACKETS`, ``meters(up_seid)`` (the live meters,
for a dataplane that counts elsewhere) and ``meters_changed(up_seid)``.

What install rejects (DriverError naming the rule) is listed in :mod:`user_plane.compile`.
"""

from __future__ import annotations

import collections
import operator
import struct
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Final, cast

import pfcp

from . import gtpu
from .compile import (
    BUFF,
    DEFAULT_BUFFER_PACKETS,
    DROP,
    TO_GTPU,
    FarAction,
    Rule,
    RuleCompiler,
    Session,
    UeMatch,
    link,
    meter_of,
    ue_keys,
)
from .driver import Direction, DownlinkData, DriverError, DriverEvent, SessionUsage, UsageReport
from .qos import TokenBucket, updated_bucket
from .session import SessionState
from .timers import UrrTimers
from .usage import UrrMeter

__all__ = ["DEFAULT_BUFFER_PACKETS", "Forwarder", "UnknownTeid"]

_UL, _DL = Direction.UPLINK, Direction.DOWNLINK
_ACCESS: Final = pfcp.SourceInterfaceValue.ACCESS

_U32: Final = struct.Struct("!I")
_U64: Final = struct.Struct("!Q")
_U64X2: Final = struct.Struct("!QQ")
_encode_gpdu_header = gtpu.encode_gpdu_header
_decode_gpdu = gtpu.decode_gpdu
_GtpuError = gtpu.GtpuError
Datagram = tuple[bytes, tuple[str, int]]
_NO_METERS: Final[Mapping[int, UrrMeter]] = {}
_URR_ORDER: Final = operator.attrgetter("urr.urr_id")
#: Token buckets by QER ID: (uplink, downlink), None for no MBR in that direction.
Buckets = dict[int, tuple[TokenBucket | None, TokenBucket | None]]
_NO_BUCKETS: Final[Mapping[int, tuple[TokenBucket | None, TokenBucket | None]]] = {}


@dataclass(frozen=True, slots=True)
class UnknownTeid:
    """:meth:`Forwarder.uplink` found no session owning ``teid``: the I/O layer answers
    with an Error Indication (TS 29.281 §7.3.1)."""

    teid: int


def _ip_version(data: bytes, off: int, n: int) -> int:
    """4 or 6 when ``data[off:]`` is exactly one IP packet (its header's length agrees), else 0."""
    if n < 20:
        return 0
    b0 = data[off]
    version = b0 >> 4
    if version == 4:
        return 4 if b0 & 0x0F >= 5 and (data[off + 2] << 8 | data[off + 3]) == n else 0
    if version == 6:
        return 6 if n >= 40 and (data[off + 4] << 8 | data[off + 5]) + 40 == n else 0
    return 0


def _failed_pdr(pdr_id: int | None) -> pfcp.FailedRuleID | None:
    return None if pdr_id is None else pfcp.FailedRuleID(pfcp.RuleIDType.PDR, pdr_id)


def _pdr_with_ue(state: SessionState, v4: int | None, v6: IPv6Network | None) -> int | None:
    """The lowest PDR ID with UE IP Address ``v4`` (or one in ``v6``): the rule that failed
    when another session owns that address (Failed Rule ID, §8.2.80)."""
    found = [
        pdr_id
        for pdr_id, pdr in state.pdrs.items()
        for ie in pdr.ue_ip_addresses
        if (v4 is not None and ie.ipv4 is not None and int(ie.ipv4) == v4)
        or (v6 is not None and ie.ipv6 is not None and ie.ipv6 in v6)
    ]
    return min(found) if found else None


def _ue_matches(entries: tuple[UeMatch, ...], data: bytes, off: int, version: int) -> bool:
    for dst, v4, v6 in entries:
        if version == 4:
            if v4 is not None and _U32.unpack_from(data, off + (16 if dst else 12))[0] == v4:
                return True
        elif v6 is not None:
            hi, lo = _U64X2.unpack_from(data, off + (24 if dst else 8))
            if hi & v6[1] == v6[0] and lo & v6[3] == v6[2]:
                return True
    return False


class Forwarder:
    """The forwarding engine of one UPF: every session's rules, applied to packets.

    ``instances`` are the Network Instances that have an N6 interface. Outer
    headers are created only towards peers of a family ``n3_ipv4`` / ``n3_ipv6``
    can send from (the I/O layer sends from those addresses).
    """

    def __init__(self, n3_ipv4: IPv4Address | None, n3_ipv6: IPv6Address | None, instances: Collection[str]) -> None:
        self._compiler = RuleCompiler(n3_ipv4, n3_ipv6, instances)
        self.events: collections.deque[DriverEvent] = collections.deque()
        self.counters: collections.Counter[str] = collections.Counter()
        #: Uplink packets dropped after matching a PDR whose FAR names a Network Instance (quota,
        #: gate, MBR), by that instance: the metrics' per-instance drops. Kept out of ``counters``,
        #: where every key is a drop reason (these are already counted there by reason).
        self.ul_drops: collections.Counter[str] = collections.Counter()
        #: The rule drops of ``counters`` (quota, FAR DROP, gate, MBR) again by direction:
        #: ``ul_drop_gate``, ``dl_drop_far``... (each packet is in both: ``counters`` keeps one
        #: key per reason, which the metrics' totals and the bench reports read).
        self.rule_drops: collections.Counter[str] = collections.Counter()
        #: Downlink packets put in a session's buffer (BUFF), ever: the I/O layer tells what it
        #: read from an N6 and neither sent nor buffered (a drop) without a per-packet check.
        self.dl_buffered = 0
        #: EMPU: End Markers are sent (§5.2.1 SNDEM); QUOAC: FAR ID for Quota Action (§5.2.2.2).
        self.features = pfcp.UPFeatures.EMPU | pfcp.UPFeatures.QUOAC
        #: Set when next_deadline() may have changed (an install, a tick, a packet that started
        #: or resumed a URR timer): an I/O loop sleeping until next_deadline() re-reads it and clears this.
        self.timers_changed = False
        self._sessions: dict[int, Session] = {}
        self._ul: dict[int, tuple[Rule, ...]] = {}  # TEID -> that TEID's PDRs by precedence
        self._dl4: dict[int, Session] = {}  # UE IPv4 -> session
        self._dl6: dict[int, Session] = {}  # upper 64 bits of a UE /64 -> session
        self._dl6_other: list[tuple[IPv6Network, int, int, Session]] = []  # other prefix lengths
        self._timers = UrrTimers(self._current_meter, self._all_meters)
        self._schedule = self._timers.schedule

    @property
    def n3_ipv4(self) -> IPv4Address | None:
        return self._compiler.n3_ipv4

    @property
    def n3_ipv6(self) -> IPv6Address | None:
        return self._compiler.n3_ipv6

    @property
    def instances(self) -> frozenset[str]:
        """The Network Instances that have an N6 interface."""
        return self._compiler.instances

    # -- rule installation ---------------------------------------------------

    def install(self, state: SessionState, now: float, end_marker_fars: Collection[int] = ()) -> list[Datagram]:
        """Create or replace session ``state.up_seid``; returns the GTP-U datagrams to send
        now: End Markers on the old paths of ``end_marker_fars`` (TS 29.281 §7.3.2), then
        buffered packets whose FAR now forwards. Raises DriverError, keeping the old state."""
        seid = state.up_seid
        old = self._sessions.get(seid)
        session = Session(state)
        session.v4, session.v6 = ue_keys(state)
        ul, dl = self._compiler.compile(state, session.v4, session.v6)
        self._check_ownership(seid, ul, session)
        # Nothing below can fail: commit.
        out: list[Datagram] = []
        if old is not None:
            out += self._end_markers(old.state, end_marker_fars)
            self._unregister(old)
            session.buffer, session.dldr_sent = old.buffer, old.dldr_sent
            session.removed_reports = old.removed_reports
        buckets = self._commit_meters(session, old, now)
        for rule in dl:
            link(rule, False, session, buckets)
        for rules in ul.values():
            for rule in rules:
                link(rule, True, session, buckets)
        # Kept as a tuple (a dict of one QER is 240 bytes a session); read again only by the next install.
        session.buckets = tuple(x for qer_id, ul_dl in buckets.items() for x in (qer_id, *ul_dl)) if buckets else ()
        session.dl = tuple(dl)
        self._register(session, ul)
        self.timers_changed = True
        pending = session.buffer
        if pending:
            session.buffer = None
            for instance, packet in pending:
                # Found again by address, as a new packet is: the rules may leave out the check
                # of a destination that is the session's own (compile.py), and the UE address
                # may have changed since the packet was buffered.
                sent = self.downlink(instance, packet, now)
                if sent is not None:
                    out.append(sent)
        if not session.buffer:
            session.dldr_sent = False
        return out

    def _check_ownership(self, seid: int, ul: Mapping[int, list[Rule]], session: Session) -> None:
        """A TEID (TS 29.281 §5.1) and a UE address identify one session."""
        for teid in ul:
            rules = self._ul.get(teid)
            if rules is not None and rules[0].up_seid != seid:
                first = ul[teid][0].pdr_id  # the first PDR matching on the TEID
                raise DriverError(
                    f"PDR {first}: TEID {teid:#x} belongs to session {rules[0].up_seid:#x}", _failed_pdr(first)
                )
        for addr in session.v4:
            owner = self._dl4.get(addr)
            if owner is not None and owner.up_seid != seid:
                pdr_id = _pdr_with_ue(session.state, addr, None)
                raise DriverError(
                    f"PDR {pdr_id}: UE IP {IPv4Address(addr)} belongs to session {owner.up_seid:#x}",
                    _failed_pdr(pdr_id),
                )
        for net in session.v6:
            owner = self._dl6.get(int(net.network_address) >> 64) if net.prefixlen == 64 else None
            for other, _, _, s in self._dl6_other:
                if s.up_seid != seid and other.overlaps(net):
                    owner = s
            if net.prefixlen != 64:
                for hi, s in self._dl6.items():
                    if s.up_seid != seid and net.overlaps(IPv6Network((hi << 64, 64))):
                        owner = s
            if owner is not None and owner.up_seid != seid:
                pdr_id = _pdr_with_ue(session.state, None, net)
                raise DriverError(
                    f"PDR {pdr_id}: UE IPv6 prefix {net} overlaps one of session {owner.up_seid:#x}",
                    _failed_pdr(pdr_id),
                )

    def _end_markers(self, old: SessionState, far_ids: Iterable[int]) -> list[Datagram]:
        """One End Marker per FAR on the GTP-U path it had (SNDEM, §8.2.58)."""
        out: list[Datagram] = []
        for far_id in far_ids:
            far = old.fars.get(far_id)
            if far is None or far.outer_header_creation is None:
                continue  # no old path to end
            try:
                teid, peer = self._compiler.gtpu_path(far_id, far.outer_header_creation)
            except DriverError:  # the old path has no usable peer (e.g. no N3 address of its family)
                self.counters["end_marker_no_path"] += 1
                continue
            out.append((gtpu.encode(gtpu.end_marker(teid)), peer))
        return out

    def _commit_meters(self, session: Session, old: Session | None, now: float) -> Buckets:
        """The session's meters (kept or new, in ``session.meters``) and its QERs' token
        buckets (returned by QER ID: kept or new, with the rates in force)."""
        state = session.state
        seid = state.up_seid
        old_meters = _NO_METERS if old is None or not old.meters else {m.urr.urr_id: m for m in old.meters}
        old_buckets = _NO_BUCKETS
        if old is not None and old.buckets:
            b = old.buckets
            old_buckets = {
                cast(int, b[i]): cast(tuple[TokenBucket | None, TokenBucket | None], b[i + 1 : i + 3])
                for i in range(0, len(b), 3)
            }
        meters: list[UrrMeter] = []
        for urr_id, urr in state.urrs.items():
            meter = old_meters.get(urr_id)
            if meter is None:
                meter = UrrMeter(urr, now)
                self._schedule(seid, meter)
            elif meter.urr != urr:
                reports = meter.update(urr, now)
                if reports:
                    self.events.append(SessionUsage(seid, tuple(reports)))
                self._schedule(seid, meter)
            meters.append(meter)  # a kept meter's timer entries stay valid (same session, same meter)
        session.meters = tuple(meters)
        if old_meters:
            for urr_id in sorted(old_meters.keys() - state.urrs.keys()):
                if session.removed_reports is None:
                    session.removed_reports = []
                session.removed_reports.append(old_meters[urr_id].final(now))  # §7.5.4: Remove URR reports
        buckets: Buckets = {}
        for qer_id, qer in state.qers.items():
            ul, dl = old_buckets.get(qer_id, (None, None))
            buckets[qer_id] = (updated_bucket(ul, qer.mbr_ul, now), updated_bucket(dl, qer.mbr_dl, now))
        return buckets

    def _register(self, session: Session, ul: Mapping[int, list[Rule]]) -> None:
        self._sessions[session.up_seid] = session
        self._timers.meters += len(session.meters)
        table = self._ul
        for teid, rules in ul.items():
            table[teid] = tuple(rules)
        for addr in session.v4:
            self._dl4[addr] = session
        for net in session.v6:
            if net.prefixlen == 64:
                self._dl6[int(net.network_address) >> 64] = session
            else:
                self._dl6_other.append((net, int(net.network_address), int(net.netmask), session))

    def _unregister(self, session: Session) -> None:
        del self._sessions[session.up_seid]
        self._timers.meters -= len(session.meters)
        for pdr in session.state.pdrs.values():  # its uplink rules' TEIDs, as compile() keyed them
            if pdr.source_interface == _ACCESS and pdr.local_f_teid is not None:
                self._ul.pop(pdr.local_f_teid.teid, None)  # two PDRs may share one
        for addr in session.v4:
            del self._dl4[addr]
        for net in session.v6:
            if net.prefixlen == 64:
                del self._dl6[int(net.network_address) >> 64]
        if self._dl6_other:
            self._dl6_other = [e for e in self._dl6_other if e[3] is not session]

    # -- session operations ----------------------------------------------------

    def remove(self, up_seid: int, now: float) -> list[UsageReport]:
        """Remove a session (unknown: nothing to do); returns each URR's final report
        (TERMR, §7.5.7) by URR ID. Its buffered packets are discarded."""
        session = self._sessions.get(up_seid)
        if session is None:
            return []
        self._unregister(session)
        if session.buffer:
            self.counters["dl_buffer_discarded"] += len(session.buffer)
        return [m.final(now) for m in sorted(session.meters, key=_URR_ORDER)]

    def query(
        self, up_seid: int, urr_ids: Collection[int] | None, now: float, reference: int | None = None
    ) -> list[UsageReport]:
        """Immediate reports (IMMER) of ``urr_ids`` (None: all, by URR ID), measurement going on."""
        meters = self.meters(up_seid)
        ids = sorted(meters) if urr_ids is None else list(urr_ids)
        for urr_id in ids:
            if urr_id not in meters:
                raise DriverError(f"session {up_seid:#x} has no URR {urr_id}")
        reports = [meters[u].query(now, reference) for u in ids]
        for urr_id in ids:  # a report restarts the measurement: its deadlines move
            self._schedule(up_seid, meters[urr_id])
        return reports

    def take_removed_reports(self, up_seid: int) -> list[UsageReport]:
        """Final reports of the URRs that installs removed from the session since the last
        call (§7.5.4: the Session Modification Response carries them); clears them."""
        session = self._sessions.get(up_seid)
        if session is None:
            return []
        reports, session.removed_reports = session.removed_reports, None
        return reports or []

    def drop_buffered(self, up_seid: int) -> int:
        """Discard the session's buffered downlink packets (DROBU, §8.2.31); returns how many."""
        session = self._session(up_seid)
        count = len(session.buffer) if session.buffer else 0
        session.buffer = None
        session.dldr_sent = False
        self.counters["dl_buffer_discarded"] += count
        return count

    def buffered(self, up_seid: int) -> int:
        """How many downlink packets the session holds in its buffer."""
        buffer = self._session(up_seid).buffer
        return len(buffer) if buffer else 0

    def installed(self) -> Mapping[int, SessionState]:
        """The states in force, by UP SEID (a snapshot)."""
        return {seid: s.state for seid, s in self._sessions.items()}

    def meters(self, up_seid: int) -> Mapping[int, UrrMeter]:
        """The live URR meters of a session by URR ID (a new mapping of the meters themselves,
        not copies: for a dataplane that counts packets elsewhere and feeds the meters).
        Whoever changes a meter's timers outside the forwarder (``count()`` set
        ``timers_changed``) calls :meth:`meters_changed`. Raises DriverError for an unknown session."""
        return {m.urr.urr_id: m for m in self._session(up_seid).meters}

    def meters_changed(self, up_seid: int) -> None:
        """Re-read the deadlines of a session's meters after they were driven outside the
        forwarder (a count() that started or resumed a timer). Unknown session: nothing."""
        session = self._sessions.get(up_seid)
        if session is not None:
            for meter in session.meters:
                self._schedule(up_seid, meter)
            self.timers_changed = True

    def _session(self, up_seid: int) -> Session:
        session = self._sessions.get(up_seid)
        if session is None:
            raise DriverError(f"no session {up_seid:#x}")
        return session

    # -- timers ------------------------------------------------------------------

    def _current_meter(self, up_seid: int, urr_id: int) -> UrrMeter | None:
        session = self._sessions.get(up_seid)
        return None if session is None else meter_of(session.meters, urr_id)

    def _all_meters(self) -> Iterator[tuple[int, UrrMeter]]:
        for seid, session in self._sessions.items():
            for meter in session.meters:
                yield seid, meter

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`tick` has URR work to do, or None (O(log N), see
        :mod:`user_plane.timers`)."""
        return self._timers.next_deadline()

    def tick(self, now: float) -> None:
        """Run the URR timers that are due; their reports become SessionUsage events
        (one per session, its reports in URR order)."""
        for seid, ids in self._timers.due(now).items():
            session = self._sessions[seid]
            reports: list[UsageReport] = []
            for meter in session.meters:
                if id(meter) in ids:
                    reports += meter.tick(now)
                    self._schedule(seid, meter)
            if reports:
                self.events.append(SessionUsage(seid, tuple(reports)))
        self.timers_changed = True

    # -- packets ------------------------------------------------------------------

    def uplink(self, data: bytes, now: float) -> tuple[str, bytes] | UnknownTeid | None:
        """One G-PDU received on N3 -> (network instance, inner IP packet) for that N6,
        None when dropped (counted), or UnknownTeid."""
        try:
            teid, qfi, off = _decode_gpdu(data)
        except _GtpuError:
            self.counters["ul_malformed_gtpu"] += 1
            return None
        rules = self._ul.get(teid)
        if rules is None:
            self.counters["ul_unknown_teid"] += 1
            return UnknownTeid(teid)
        n = len(data) - off
        version = _ip_version(data, off, n)
        if not version:
            self.counters["ul_malformed_ip"] += 1
            return None
        for rule in rules:
            qfis = rule.qfis
            if qfis is not None and qfi not in qfis:
                continue
            ue = rule.ue
            if ue is not None and not _ue_matches(ue, data, off, version):
                continue
            sdfs = rule.sdfs
            if sdfs:
                for sdf in sdfs:
                    if sdf.matches_uplink(data, off):
                        break
                else:
                    continue
            break
        else:
            self.counters["ul_no_pdr"] += 1
            return None
        far = self._enforce(rule, _UL, n, now)
        if far is None:
            instance = rule.far.instance
            if instance:  # a FAR that forwards (a DROP FAR names none): the session's N6
                self.ul_drops[instance] += 1
            return None
        return far.instance, data[off:]

    def downlink(self, instance: str, packet: bytes, now: float) -> Datagram | None:
        """One IP packet read from ``instance``'s N6 -> (G-PDU, (gNB address, 2152)), or
        None when dropped (counted) or buffered."""
        n = len(packet)
        version = _ip_version(packet, 0, n)
        if version == 4:
            session = self._dl4.get(_U32.unpack_from(packet, 16)[0])
        elif version == 6:
            session = self._dl6.get(_U64.unpack_from(packet, 24)[0])
            if session is None and self._dl6_other:
                hi, lo = _U64X2.unpack_from(packet, 24)
                addr = hi << 64 | lo
                for _, value, mask, candidate in self._dl6_other:
                    if addr & mask == value:
                        session = candidate
                        break
        else:
            self.counters["dl_malformed_ip"] += 1
            return None
        if session is None:
            self.counters["dl_unknown_ue"] += 1
            return None
        return self._downlink(session, instance, packet, n, version, now)

    def _downlink(
        self, session: Session, instance: str, packet: bytes, n: int, version: int, now: float
    ) -> Datagram | None:
        for rule in session.dl:
            if rule.instance is not None and rule.instance != instance:
                continue
            ue = rule.ue
            if ue is not None and not _ue_matches(ue, packet, 0, version):
                continue
            sdfs = rule.sdfs
            if sdfs:
                for sdf in sdfs:
                    if sdf.matches_downlink(packet):
                        break
                else:
                    continue
            break
        else:
            self.counters["dl_no_pdr"] += 1
            return None
        far = self._enforce(rule, _DL, n, now)
        if far is None:
            return None
        if far.kind == TO_GTPU:
            return _encode_gpdu_header(far.teid, n, rule.qfi, True, rule.rqi) + packet, far.peer
        # BUFF (§5.2.3.1): one DL Data Report per buffering episode, when NOCP asks for it.
        if far.nocp and not session.dldr_sent:
            session.dldr_sent = True
            self.events.append(DownlinkData(session.up_seid, rule.pdr_id, rule.qfi))
        buffer = session.buffer
        if buffer is None:
            buffer = session.buffer = []
        if len(buffer) >= far.buffer_limit:
            self.counters["dl_buffer_overflow"] += 1
        else:
            buffer.append((instance, packet))
            self.dl_buffered += 1
        return None

    def _rule_drop(self, reason: str, direction: Direction) -> None:
        self.counters[reason] += 1
        self.rule_drops[("dl_" if direction == _DL else "ul_") + reason] += 1

    def _enforce(self, rule: Rule, direction: Direction, n: int, now: float) -> FarAction | None:
        """URRs and QERs of a matched PDR; the FAR to apply, or None when dropped."""
        far = rule.far
        for meter in rule.quota:
            if meter.blocked:  # §5.2.2.2: quota exhausted
                quota_fars = rule.quota_fars
                quota_far = None if quota_fars is None else quota_fars.get(meter.urr.urr_id)
                if quota_far is None:
                    self._rule_drop("drop_quota", direction)
                    return None
                far = quota_far
                break
        kind = far.kind
        if kind == DROP:
            self._rule_drop("drop_far", direction)
            return None
        if kind == BUFF:
            return far  # measured and policed when released
        events = self.events
        for meter in rule.pre:  # MBQE: measured before QoS enforcement (§8.2.68)
            report = meter.count(direction, n, now)
            if report is not None:
                events.append(SessionUsage(rule.up_seid, (report,)))
            if meter.timers_changed:
                meter.timers_changed = False
                self.timers_changed = True
                self._schedule(rule.up_seid, meter)
        if rule.gate_closed:
            self._rule_drop("drop_gate", direction)
            return None
        buckets = rule.buckets
        if buckets:
            bits = n << 3
            if len(buckets) == 1:
                if not buckets[0].allow(bits, now):
                    self._rule_drop("drop_mbr", direction)
                    return None
            else:
                for bucket in buckets:  # every QER applies; spend only if all let it through
                    if not bucket.conforms(bits, now):
                        self._rule_drop("drop_mbr", direction)
                        return None
                for bucket in buckets:
                    bucket.spend(bits)
        for meter in rule.post:
            report = meter.count(direction, n, now)
            if report is not None:
                events.append(SessionUsage(rule.up_seid, (report,)))
            if meter.timers_changed:
                meter.timers_changed = False
                self.timers_changed = True
                self._schedule(rule.up_seid, meter)
        return far
