"""Install-time half of the forwarding engine: a session's rules compiled for the fast path.

:class:`RuleCompiler` turns a :class:`~user_plane.session.SessionState` into one
:class:`Rule` per PDR and the two lookup keys :class:`~user_plane.forward.Forwarder`
registers: uplink by the local F-TEID's TEID, downlink by the UE IP address (IPv4
exactly, IPv6 by prefix, /64 unless the UE IP Address IE says otherwise, §8.2.62).
Compilation only reads the state and raises :class:`DriverError` on anything the
engine cannot apply, so the forwarder can check a whole session before it changes
anything. :func:`link` then binds a rule to its session's meters and buckets.

* The UE's own addresses (the downlink keys) are the UE IP Addresses an ACCESS
  PDR matches as source (S/D = 0) and a CORE / SGi-LAN PDR matches as destination
  (S/D = 1, §8.2.62).
* Rules are in precedence order (lower value first, §5.2.1; PDR ID breaks ties).
* A downlink rule carries the QFI (and RQI) of its first QER that has one: what the
  gNB sees in the PDU Session Container (TS 38.415).

Unsupported (compilation raises DriverError with the rule's Failed Rule ID, §8.2.80): Application ID and
predefined rules; source interfaces other than ACCESS, CORE, SGi-LAN/N6-LAN;
uplink BUFF, uplink Outer Header Creation (N9) and FORW to anything but CORE /
SGi-LAN; downlink FORW other than GTP-U/UDP/IPv4|IPv6 to ACCESS; Apply Action
flags other than DROP, FORW, BUFF, NOCP (DUPL, IPMA/IPMD, DFRT...); duplicating
parameters, Transport Level Marking, Forwarding Policy; Outer Header Removal
other than GTP-U/UDP/IP; a BAR's DL Data Notification Delay is not applied.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Final

import pfcp

from . import gtpu
from .driver import DriverError, UsageReport
from .qos import TokenBucket
from .rules import OuterHeader, Pdr, UeIp
from .sdf import SdfError, SdfFilter, UeAddress
from .session import SessionState
from .usage import UrrMeter

__all__ = [
    "BUFF",
    "DEFAULT_BUFFER_PACKETS",
    "DROP",
    "TO_GTPU",
    "TO_N6",
    "FarAction",
    "Rule",
    "RuleCompiler",
    "Session",
    "UeMatch",
    "link",
    "meter_of",
    "ue_keys",
]

#: Downlink packets buffered per session when the FAR's BAR suggests no count (§8.2.67).
DEFAULT_BUFFER_PACKETS: Final = 64

#: FAR kinds on the fast path.
DROP: Final = 0
TO_N6: Final = 1
TO_GTPU: Final = 2
BUFF: Final = 3

_A = pfcp.ApplyActionFlags
# Apply Action bits as plain ints: IntFlag operators cost microseconds each on the install path.
_DROP: Final = int(_A.DROP)
_FORW: Final = int(_A.FORW)
_BUFF: Final = int(_A.BUFF)
_NOCP: Final = int(_A.NOCP)
_SUPPORTED_ACTIONS: Final = _DROP | _FORW | _BUFF | _NOCP
_SI = pfcp.SourceInterfaceValue
_DI = pfcp.DestinationInterfaceValue
_OHC = pfcp.OuterHeaderCreationDescription
_OHC_GTPU: Final = int(_OHC.GTPU_UDP_IPV4 | _OHC.GTPU_UDP_IPV6)
_OHC_V4: Final = int(_OHC.GTPU_UDP_IPV4)
_OHC_V6: Final = int(_OHC.GTPU_UDP_IPV6)
_OHR = pfcp.OuterHeaderRemovalDescription
_OHR_GTPU: Final = frozenset({_OHR.GTPU_UDP_IPV4, _OHR.GTPU_UDP_IPV6, _OHR.GTPU_UDP_IP})
_CORE_SIDE: Final = frozenset({_SI.CORE, _SI.SGI_LAN_N6_LAN})
_MBQE: Final = int(pfcp.MeasurementInformationFlags.MBQE)
#: Bound on the interned GTP-U peers (a UPF talks to a few thousand gNBs at most).
_PEER_CACHE_SIZE: Final = 65536
_M64: Final = (1 << 64) - 1
_CLOSED: Final = pfcp.Gate.CLOSED
#: §5.2.1: lower Precedence first; the PDR ID breaks ties (a C-level key: no call per PDR).
_PRECEDENCE_ORDER: Final = operator.attrgetter("precedence", "pdr_id")

#: (check the destination (S/D = 1), IPv4 as int, IPv6 prefix as (high, high mask, low, low mask)).
UeMatch = tuple[bool, int | None, tuple[int, int, int, int] | None]


class FarAction:
    """A FAR as one direction's fast path needs it. Never changed once compiled, so rules of
    different sessions may share one (see RuleCompiler)."""

    __slots__ = ("buffer_limit", "far_id", "instance", "kind", "nocp", "peer", "teid")

    def __init__(
        self,
        far_id: int,
        kind: int,
        *,
        instance: str = "",
        teid: int = 0,
        peer: tuple[str, int] = ("", 0),
        nocp: bool = False,
        buffer_limit: int = 0,
    ) -> None:
        self.far_id, self.kind, self.instance, self.teid, self.peer = far_id, kind, instance, teid, peer
        self.nocp, self.buffer_limit = nocp, buffer_limit


class Rule:
    """One PDR compiled for its direction, linked to its session's meters and buckets."""

    __slots__ = (
        "buckets",
        "far",
        "gate_closed",
        "instance",
        "pdr_id",
        "post",
        "pre",
        "qfi",
        "qfis",
        "quota",
        "quota_fars",
        "rqi",
        "sdfs",
        "ue",
        "up_seid",
    )

    def __init__(self, pdr: Pdr, far: FarAction) -> None:
        # What only linking needs (the PDR's QER and URR IDs, its direction) is read from the
        # session's desired state then, not kept here: one rule is held per PDR.
        self.pdr_id = pdr.pdr_id
        self.far = far
        self.qfis: frozenset[int] | None = frozenset(pdr.qfis) if pdr.qfis else None
        self.ue: tuple[UeMatch, ...] | None = None
        self.sdfs: tuple[SdfFilter, ...] = ()
        self.instance: str | None = None  # downlink: the N6 the packet must come from
        self.gate_closed = False
        self.qfi: int | None = None
        self.rqi = False
        self.quota_fars: dict[int, FarAction] | None = None  # URR ID -> its FAR ID for Quota Action
        # Set by link(). The rule holds its session's UP SEID, not the Session: a Session holds
        # its rules, and no cycle means a removed session is freed by reference counting alone
        # (the agent freezes long-lived objects out of the cyclic GC, see user_plane.agent).
        self.up_seid = 0
        self.buckets: tuple[TokenBucket, ...] = ()
        self.pre: tuple[UrrMeter, ...] = ()
        self.post: tuple[UrrMeter, ...] = ()
        self.quota: tuple[UrrMeter, ...] = ()  # every URR's meter, in URR ID order of the PDR


class Session:
    """What the forwarder holds for one PFCP session: its compiled rules and keys, and
    the state that outlives a rule change (meters, buckets, the downlink buffer).

    Kept small (one is held per session, 100k of them): nothing the desired state already
    holds (its TEIDs are the ACCESS PDRs' local F-TEIDs; the forwarder's TEID table holds the
    uplink rules), tuples rather than sets or dicts, and the buffer and the removed URRs'
    reports are created when first needed."""

    __slots__ = ("buckets", "buffer", "dl", "dldr_sent", "meters", "removed_reports", "state", "v4", "v6")

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.dl: tuple[Rule, ...] = ()
        self.v4: tuple[int, ...] = ()
        self.v6: tuple[IPv6Network, ...] = ()
        # In the session's URR order; a tuple, not a dict by URR ID (a session has one or two
        # URRs: a dict is 224 bytes a session, a tuple of one 48): find one with meter_of().
        self.meters: tuple[UrrMeter, ...] = ()
        # QER ID, uplink bucket, downlink bucket, for each QER in turn (one flat tuple: no
        # tuple per QER, 64 bytes each): what the next install keeps.
        self.buckets: tuple[int | TokenBucket | None, ...] = ()
        self.buffer: list[tuple[str, bytes]] | None = None  # downlink packets held (BUFF)
        self.dldr_sent = False
        self.removed_reports: list[UsageReport] | None = None

    @property
    def up_seid(self) -> int:
        return self.state.up_seid


def _pdr_error(pdr_id: int, message: str) -> DriverError:
    """A PDR the engine cannot apply: the agent answers 73 with its Failed Rule ID (§8.2.80)."""
    return DriverError(f"PDR {pdr_id}: {message}", pfcp.FailedRuleID(pfcp.RuleIDType.PDR, pdr_id))


def _far_error(far_id: int, message: str) -> DriverError:
    """A FAR the engine cannot apply: the agent answers 73 with its Failed Rule ID (§8.2.80)."""
    return DriverError(f"FAR {far_id}: {message}", pfcp.FailedRuleID(pfcp.RuleIDType.FAR, far_id))


def _v6_network(ie: UeIp | pfcp.UEIPAddress) -> IPv6Network:
    """The UE's IPv6 prefix: IPv6 Prefix Length (IP6PL), else /64 minus the IPv6
    Prefix Delegation Bits (IPv6D), else /64 (§8.2.62, §5.14); 0 means unset."""
    assert ie.ipv6 is not None
    length = ie.ipv6_prefix_length or 64 - (ie.ipv6_prefix_delegation_bits or 0)
    if not 0 < length <= 128:
        raise DriverError(f"UE IP Address {ie.ipv6}: IPv6 prefix length {length} out of range")
    return IPv6Network((ie.ipv6, length), strict=False)


def _ue_match(ie: UeIp | pfcp.UEIPAddress) -> UeMatch:
    if ie.ipv4 is None and ie.ipv6 is None:
        raise DriverError("UE IP Address without an address (CHV4/CHV6 not resolved)")
    v6 = None
    if ie.ipv6 is not None:
        net = _v6_network(ie)
        value, mask = int(net.network_address), int(net.netmask)
        v6 = (value >> 64, mask >> 64, value & _M64, mask & _M64)
    return (ie.is_destination, None if ie.ipv4 is None else int(ie.ipv4), v6)


def ue_keys(state: SessionState) -> tuple[tuple[int, ...], tuple[IPv6Network, ...]]:
    """The UE's own addresses: what an ACCESS PDR matches as source, a CORE-side PDR
    as destination (§8.2.62 S/D), each once."""
    v4: dict[int, None] = {}
    v6: dict[IPv6Network, None] = {}
    for pdr in state.pdrs.values():
        uplink = pdr.source_interface == _SI.ACCESS
        for ie in pdr.ue_ip_addresses:
            if ie.is_destination == uplink:
                continue
            if ie.ipv4 is not None:
                v4[int(ie.ipv4)] = None
            if ie.ipv6 is not None:
                try:
                    v6[_v6_network(ie)] = None
                except DriverError as exc:
                    raise _pdr_error(pdr.pdr_id, str(exc)) from None
    return tuple(v4), tuple(v6)


def _sdf_ue(pdr: Pdr, v4: tuple[int, ...], v6: tuple[IPv6Network, ...]) -> list[UeAddress]:
    """What ``assigned`` means in the PDR's SDF filters: its own UE IP Address, else the session's."""
    out: list[UeAddress] = []
    for ie in pdr.ue_ip_addresses:
        if ie.ipv4 is not None:
            out.append(ie.ipv4)
        if ie.ipv6 is not None:
            out.append(_v6_network(ie))
    if not out:
        out = [IPv4Address(a) for a in sorted(v4)]
        out += list(v6)
    return out


class RuleCompiler:
    """Compiles sessions for a forwarder whose N6 interfaces are ``instances`` and
    whose N3 addresses are ``n3_ipv4`` / ``n3_ipv6`` (Outer Header Creation needs a
    peer of a family the I/O layer can send from)."""

    def __init__(self, n3_ipv4: IPv4Address | None, n3_ipv6: IPv6Address | None, instances: Collection[str]) -> None:
        self.n3_ipv4 = n3_ipv4
        self.n3_ipv6 = n3_ipv6
        self.instances = frozenset(instances)
        # One (address, port) tuple per gNB, shared by every FAR sending to it.
        self._peers: dict[IPv4Address | IPv6Address, tuple[str, int]] = {}
        # FarActions towards N6 by (FAR ID, Network Instance): never mutated, so shared.
        self._to_n6: dict[tuple[int, str], FarAction] = {}

    def _peer(self, address: IPv4Address | IPv6Address) -> tuple[str, int]:
        peer = self._peers.get(address)
        if peer is None:
            if len(self._peers) >= _PEER_CACHE_SIZE:
                self._peers.clear()
            peer = self._peers[address] = (str(address), gtpu.GTPU_PORT)
        return peer

    def compile(
        self, state: SessionState, v4: tuple[int, ...], v6: tuple[IPv6Network, ...]
    ) -> tuple[dict[int, list[Rule]], list[Rule]]:
        """(uplink rules by TEID, downlink rules), each in precedence order; ``v4`` / ``v6``
        are the session's :func:`ue_keys`. Raises DriverError on what cannot be applied."""
        ul: dict[int, list[Rule]] = {}
        dl: list[Rule] = []
        for pdr in sorted(state.pdrs.values(), key=_PRECEDENCE_ORDER):
            rule = self._compile_pdr(state, pdr, v4, v6)
            if pdr.source_interface == _SI.ACCESS:
                assert pdr.local_f_teid is not None
                ul.setdefault(pdr.local_f_teid.teid, []).append(rule)
            else:
                dl.append(rule)
        return ul, dl

    def _compile_pdr(self, state: SessionState, pdr: Pdr, v4: tuple[int, ...], v6: tuple[IPv6Network, ...]) -> Rule:
        if pdr.application_id is not None:
            raise _pdr_error(
                pdr.pdr_id, f"Application ID {pdr.application_id!r} (application detection) is not supported"
            )
        if pdr.predefined_rules or pdr.far_id is None:
            raise _pdr_error(pdr.pdr_id, "predefined rules are not supported")
        if pdr.source_interface == _SI.ACCESS:
            uplink = True
            if pdr.local_f_teid is None or pdr.local_f_teid.teid < 0:
                raise _pdr_error(pdr.pdr_id, "an ACCESS PDR needs a local F-TEID (a TEID to match G-PDUs on)")
        elif pdr.source_interface in _CORE_SIDE:
            uplink = False
            if pdr.local_f_teid is not None or pdr.outer_header_removal is not None:
                raise _pdr_error(pdr.pdr_id, "GTP-U from the core side (N9) is not supported")
            if pdr.network_instance is not None and pdr.network_instance not in self.instances:
                raise _pdr_error(pdr.pdr_id, f"Network Instance {pdr.network_instance!r} has no N6 interface")
            if not v4 and not v6:
                raise _pdr_error(pdr.pdr_id, "the session has no UE IP Address to match downlink packets on")
        else:
            raise _pdr_error(pdr.pdr_id, f"source interface {pdr.source_interface} is not supported")
        rule = Rule(pdr, self._far_action(state, pdr.far_id, pdr, uplink))
        if not uplink:
            rule.instance = pdr.network_instance
        if pdr.ue_ip_addresses:
            try:
                ue = tuple(_ue_match(ie) for ie in pdr.ue_ip_addresses)
            except DriverError as exc:
                raise _pdr_error(pdr.pdr_id, str(exc)) from None
            # A downlink rule matching the destination on the only address of an IPv4-only
            # session: the forwarder finds the session of a downlink packet by that very
            # address, so the check always holds; not kept (112 bytes a session).
            if uplink or v6 or len(ue) != 1 or not ue[0][0] or ue[0][2] is not None or v4 != (ue[0][1],):
                rule.ue = ue
        if pdr.sdf_filters:
            try:
                ue_addresses = _sdf_ue(pdr, v4, v6)
                rule.sdfs = tuple(SdfFilter.from_ie(ie, ue_addresses or None) for ie in pdr.sdf_filters)
            except (SdfError, DriverError) as exc:
                raise _pdr_error(pdr.pdr_id, f"SDF filter: {exc}") from None
        qers = state.qers
        for qer_id in pdr.qer_ids:
            qer = qers.get(qer_id)
            if qer is None:
                raise _pdr_error(pdr.pdr_id, f"QER {qer_id} is not in the session")
            if (qer.gate_ul if uplink else qer.gate_dl) == _CLOSED:
                rule.gate_closed = True
            if not uplink and rule.qfi is None and qer.qfi is not None:  # the QFI the gNB sees (TS 38.415)
                rule.qfi, rule.rqi = qer.qfi, qer.rqi
        urrs = state.urrs
        for urr_id in pdr.urr_ids:
            urr = urrs.get(urr_id)
            if urr is None:
                raise _pdr_error(pdr.pdr_id, f"URR {urr_id} is not in the session")
            if urr.far_id_for_quota_action is not None:
                if rule.quota_fars is None:
                    rule.quota_fars = {}
                rule.quota_fars[urr_id] = self._far_action(state, urr.far_id_for_quota_action, pdr, uplink)
        return rule

    def _far_action(self, state: SessionState, far_id: int, pdr: Pdr, uplink: bool) -> FarAction:
        far = state.fars.get(far_id)
        if far is None:
            raise _pdr_error(pdr.pdr_id, f"FAR {far_id} is not in the session")
        action = int(far.apply_action)
        if action & ~_SUPPORTED_ACTIONS or far.duplicating_parameters:
            raise _far_error(
                far_id, f"Apply Action {far.apply_action!r} is not supported (only DROP, FORW, BUFF, NOCP)"
            )
        if action & _DROP:
            return FarAction(far_id, DROP)
        if action & _BUFF:
            if uplink:
                raise _far_error(far_id, "buffering uplink packets is not supported")
            bar = None if far.bar_id is None else state.bars.get(far.bar_id)
            count = None if bar is None else bar.suggested_buffering_packets_count
            limit = DEFAULT_BUFFER_PACKETS if count is None else count
            return FarAction(far_id, BUFF, nocp=bool(action & _NOCP), buffer_limit=limit)
        if not action & _FORW:
            raise _far_error(far_id, f"Apply Action {far.apply_action!r} names no action")
        if far.transport_level_marking is not None or far.forwarding_policy is not None:
            raise _far_error(far_id, "Transport Level Marking and Forwarding Policy are not supported")
        ohc = far.outer_header_creation
        dest = far.destination_interface
        if uplink:
            if ohc is not None:
                raise _far_error(far_id, "uplink Outer Header Creation (N9 forwarding) is not supported")
            if dest not in (_DI.CORE, _DI.SGI_LAN_N6_LAN):
                raise _far_error(far_id, f"uplink FORW to destination interface {dest} is not supported")
            ohr = pdr.outer_header_removal
            if ohr is None or ohr.description not in _OHR_GTPU:
                raise _pdr_error(pdr.pdr_id, "forwarding to N6 needs Outer Header Removal GTP-U/UDP/IP")
            instance = far.network_instance or pdr.network_instance
            if instance is None and len(self.instances) == 1:
                (instance,) = self.instances  # one N6: no name needed to choose it
            if instance not in self.instances:
                raise _far_error(far_id, f"Network Instance {instance!r} has no N6 interface")
            assert instance is not None
            key = (far_id, instance)  # the same for every session of the instance: one object
            shared = self._to_n6.get(key)
            if shared is None:
                if len(self._to_n6) >= _PEER_CACHE_SIZE:
                    self._to_n6.clear()
                shared = self._to_n6[key] = FarAction(far_id, TO_N6, instance=instance)
            return shared
        if dest != _DI.ACCESS or ohc is None:
            raise _far_error(far_id, "downlink FORW must go to ACCESS with Outer Header Creation GTP-U")
        teid, peer = self.gtpu_path(far_id, ohc)
        return FarAction(far_id, TO_GTPU, teid=teid, peer=peer)

    def gtpu_path(self, far_id: int, ohc: OuterHeader | pfcp.OuterHeaderCreation) -> tuple[int, tuple[str, int]]:
        """(TEID, (peer, 2152)) of a GTP-U/UDP/IPv4|IPv6 Outer Header Creation (§8.2.56);
        with both bits set, IPv4 when we have an IPv4 N3 address."""
        bits = int(ohc.description)
        if bits & ~_OHC_GTPU or not bits & _OHC_GTPU or ohc.teid is None:
            raise _far_error(far_id, f"Outer Header Creation {ohc.description!r} is not supported")
        if bits & _OHC_V4 and ohc.ipv4 is not None and self.n3_ipv4 is not None:
            return ohc.teid, self._peer(ohc.ipv4)
        if bits & _OHC_V6 and ohc.ipv6 is not None and self.n3_ipv6 is not None:
            return ohc.teid, self._peer(ohc.ipv6)
        raise _far_error(far_id, f"no N3 address of the peer's IP version for {ohc.description!r}")


def _before_qos(meter: UrrMeter) -> bool:
    """MBQE: the URR measures before QoS enforcement (§8.2.68)."""
    mi = meter.urr.measurement_information
    return mi is not None and bool(int(mi) & _MBQE)


def meter_of(meters: tuple[UrrMeter, ...], urr_id: int) -> UrrMeter | None:
    """The meter of URR ``urr_id`` among a session's ``meters`` (a linear search: a few URRs)."""
    for meter in meters:
        if meter.urr.urr_id == urr_id:
            return meter
    return None


def link(
    rule: Rule,
    uplink: bool,
    session: Session,
    buckets: Mapping[int, tuple[TokenBucket | None, TokenBucket | None]],
) -> None:
    """Bind ``rule`` (of ``session``'s PDR ``rule.pdr_id``) to the meters ``session`` carries
    and its QERs' ``buckets`` (by QER ID); the URRs whose Measurement Information has MBQE
    count before QoS enforcement (§8.2.68)."""
    state = session.state
    pdr = state.pdrs[rule.pdr_id]
    rule.up_seid = state.up_seid
    side = 0 if uplink else 1
    rule.buckets = tuple(b for q in pdr.qer_ids if (b := buckets[q][side]) is not None)
    meters = session.meters
    mine = tuple(m for u in pdr.urr_ids if (m := meter_of(meters, u)) is not None)
    if mine == meters:  # every URR of the session, in its order: the rules share one tuple
        mine = meters
    if any(_before_qos(m) for m in mine):
        rule.pre = tuple(m for m in mine if _before_qos(m))
        rule.post = tuple(m for m in mine if not _before_qos(m))
        rule.quota = mine
    else:
        # The same tuple when no URR measures before QoS: one object less per rule.
        rule.post = rule.quota = mine
