"""Which sessions (and which of their directions) the eBPF fast path may carry.

Pure: decided from the :class:`~user_plane.session.SessionState` (the rules.py
models) and the session's live URR meters; nothing here touches BPF.

A direction is offloaded only when the fast path applies it exactly as
:class:`~user_plane.forward.Forwarder` would, for every packet it does not punt.

Uplink (:class:`UplinkOffload`), all of:

* the session has exactly one PDR with Source Interface ACCESS, with a local F-TEID,
  no SDF filter, no Application ID, no predefined rules, at most one QFI, and Outer
  Header Removal GTP-U/UDP/IPv4|IPv6|IP (what compile.py accepts);
* its UE IP Address IEs: none (no anti-spoofing check) or exactly one, IPv4 only,
  as source (S/D = 0): the inner source must be that address (§8.2.62);
* its FAR: Apply Action FORW (NOCP ignored, nothing else), Destination Interface
  CORE or SGi-LAN/N6-LAN, no Outer Header Creation, Transport Level Marking,
  Forwarding Policy or Duplicating Parameters, and a Network Instance with an N6
  (the FAR's, else the PDR's, else the only one);
* its QERs exist; at most one has an uplink MBR, of at most 100 Gbit/s; a closed
  uplink gate is applied in BPF (the packet is dropped and counted there);
* its URRs exist, none has Measurement Information MBQE, none is blocked (an
  exhausted quota: Python drops or applies the FAR ID for Quota Action).

Downlink (:class:`DownlinkOffload`), all of:

* exactly one PDR with Source Interface CORE or SGi-LAN/N6-LAN, without local
  F-TEID, Outer Header Removal, SDF filter, Application ID or predefined rules;
* exactly one UE IP Address IE, IPv4 only, as destination (S/D = 1), inside the UE
  pool of a Network Instance (the TUN the kernel would route the packet to); the
  PDR's Network Instance, if any, is that one;
* its FAR: FORW (NOCP ignored), Destination Interface ACCESS, Outer Header
  Creation GTP-U/UDP/IPv4 (the IPv6 bit may be set too, as Forwarder picks IPv4
  when there is an IPv4 N3 address) with a TEID and an IPv4 peer; no Transport
  Level Marking, Forwarding Policy or Duplicating Parameters; an IPv4 N3 address;
* QERs and URRs as for the uplink (downlink MBR and gate); the PDU Session
  Container carries the QFI (and RQI) of the PDR's first QER that has one.

And for the session: when only one direction qualifies, a URR with a Volume
Threshold or Volume Quota must not be shared with the PDR of the other direction
(the byte budget could not account for what Python counts meanwhile).

Everything else (BUFF or DROP FARs, SDF filters, several PDRs per direction,
IPv6 UE addresses, End Marker paths, N9...) stays on the Python path.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Final

import pfcp

from ..rules import Far, Pdr
from ..session import SessionState
from ..usage import UrrMeter

__all__ = ["MAX_MBR_KBPS", "DownlinkOffload", "Offload", "UplinkOffload", "decide", "network_instances"]

#: Largest MBR the BPF token bucket represents (bit-nanosecond tokens in 64 bits).
MAX_MBR_KBPS: Final = 100_000_000

_SI = pfcp.SourceInterfaceValue
_DI = pfcp.DestinationInterfaceValue
_A = pfcp.ApplyActionFlags
_OHC = pfcp.OuterHeaderCreationDescription
_OHR = pfcp.OuterHeaderRemovalDescription
_OHR_GTPU: Final = frozenset({_OHR.GTPU_UDP_IPV4, _OHR.GTPU_UDP_IPV6, _OHR.GTPU_UDP_IP})
_OHC_GTPU: Final = int(_OHC.GTPU_UDP_IPV4 | _OHC.GTPU_UDP_IPV6)
_CORE_SIDE: Final = frozenset({_SI.CORE, _SI.SGI_LAN_N6_LAN})
_MBQE: Final = pfcp.MeasurementInformationFlags.MBQE


@dataclass(frozen=True, slots=True)
class UplinkOffload:
    pdr_id: int
    teid: int
    ue_ip: IPv4Address | None  # anti-spoofing: the inner source must be this
    qfi: int | None  # the PDR's QFI (PDI), None: any
    gate_closed: bool
    mbr_kbps: int | None
    urr_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DownlinkOffload:
    pdr_id: int
    ue_ip: IPv4Address
    teid: int  # the gNB's
    gnb_ip: IPv4Address
    qfi: int | None
    rqi: bool
    gate_closed: bool
    mbr_kbps: int | None
    urr_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Offload:
    """What the fast path carries of one session; ``why_not`` says why a direction is not."""

    uplink: UplinkOffload | None
    downlink: DownlinkOffload | None
    why_not: tuple[str, ...] = ()


class _No(Exception):
    pass


def decide(
    state: SessionState,
    meters: Mapping[int, UrrMeter],
    *,
    n3_ipv4: IPv4Address | None,
    pools: Mapping[str, Collection[IPv4Network | IPv6Network]],
    gatewayed: Collection[str] = (),
) -> Offload:
    """The offload of ``state`` (see the module docstring); ``pools``: each Network
    Instance's UE pools (the instances that have an N6); ``gatewayed``: instances whose
    uplink is policy-routed via a configured gateway, which the program's FIB lookup
    (done with N3 as the input device) would not see: their uplink stays in Python."""
    access = [p for p in state.pdrs.values() if p.source_interface == _SI.ACCESS]
    core = [p for p in state.pdrs.values() if p.source_interface in _CORE_SIDE]
    why: list[str] = []
    ul = dl = None
    try:
        if len(access) != 1:
            raise _No(f"{len(access)} ACCESS PDRs")
        ul = _uplink(state, access[0], meters, pools, gatewayed)
    except _No as exc:
        why.append(f"uplink: {exc}")
    try:
        if len(core) != 1:
            raise _No(f"{len(core)} CORE PDRs")
        dl = _downlink(state, core[0], meters, n3_ipv4, pools)
    except _No as exc:
        why.append(f"downlink: {exc}")
    if (ul is None) != (dl is None) and access and core:
        shared = {u for p in access for u in p.urr_ids} & {u for p in core for u in p.urr_ids}
        volume = [u for u in shared if u in state.urrs and _volume_limited(state, u)]
        if volume:
            why.append(f"URR {min(volume)} has volume limits shared with the Python path")
            ul = dl = None
    return Offload(ul, dl, tuple(why))


def network_instances(
    state: SessionState, offload: Offload, pools: Mapping[str, Collection[IPv4Network | IPv6Network]]
) -> tuple[str | None, str | None]:
    """The Network Instance of each direction ``offload`` carries (uplink, downlink; None: not
    carried): the N6 its uplink is written to, the one whose UE pool its downlink comes from.
    ``state`` and ``pools`` are those :func:`decide` gave ``offload`` for."""
    ul = dl = None
    if offload.uplink is not None:
        pdr = state.pdrs[offload.uplink.pdr_id]
        assert pdr.far_id is not None  # decide() offloads a PDR with a FAR only
        ul = _uplink_instance(state.fars[pdr.far_id], pdr, pools)
    if offload.downlink is not None:
        dl = _pools_of(offload.downlink.ue_ip, pools)[0]
    return ul, dl


def _uplink_instance(far: Far, pdr: Pdr, pools: Mapping[str, Collection[IPv4Network | IPv6Network]]) -> str | None:
    """The FAR's Network Instance, else the PDR's, else the only one with an N6."""
    instance = far.network_instance or pdr.network_instance
    if instance is None and len(pools) == 1:
        (instance,) = pools
    return instance


def _pools_of(ue_ip: IPv4Address, pools: Mapping[str, Collection[IPv4Network | IPv6Network]]) -> list[str]:
    """The Network Instances whose UE pools hold ``ue_ip``."""
    return [ni for ni, nets in pools.items() if any(ue_ip in net for net in nets if net.version == 4)]


def _volume_limited(state: SessionState, urr_id: int) -> bool:
    urr = state.urrs[urr_id]
    return urr.volume_threshold is not None or urr.volume_quota is not None


def _common(pdr: Pdr) -> None:
    if pdr.sdf_filters:
        raise _No("SDF filters")
    if pdr.application_id is not None or pdr.predefined_rules:
        raise _No("application detection / predefined rules")
    if pdr.far_id is None:
        raise _No("no FAR")


def _forw_far(state: SessionState, pdr: Pdr) -> Far:
    assert pdr.far_id is not None
    far = state.fars.get(pdr.far_id)
    if far is None:
        raise _No(f"FAR {pdr.far_id} missing")
    action = far.apply_action
    if not action & _A.FORW or action & ~(_A.FORW | _A.NOCP):
        raise _No(f"FAR {far.far_id} Apply Action {action!r}")
    if far.transport_level_marking is not None or far.forwarding_policy is not None or far.duplicating_parameters:
        raise _No(f"FAR {far.far_id} marking/policy/duplication")
    return far


def _qos(state: SessionState, pdr: Pdr, uplink: bool) -> tuple[bool, int | None, int | None, bool]:
    """(gate closed, MBR kbit/s, QFI of the first QER with one, its RQI)."""
    gate_closed = False
    mbrs: list[int] = []
    qfi: int | None = None
    rqi = False
    for qer_id in pdr.qer_ids:
        qer = state.qers.get(qer_id)
        if qer is None:
            raise _No(f"QER {qer_id} missing")
        if (qer.gate_ul if uplink else qer.gate_dl) == pfcp.Gate.CLOSED:
            gate_closed = True
        mbr = qer.mbr_ul if uplink else qer.mbr_dl
        if mbr is not None:
            mbrs.append(mbr)
        if qfi is None and qer.qfi is not None:
            qfi, rqi = qer.qfi, qer.rqi
    if len(mbrs) > 1:
        raise _No("several MBRs")
    if mbrs and mbrs[0] > MAX_MBR_KBPS:
        raise _No(f"MBR {mbrs[0]} kbit/s above {MAX_MBR_KBPS}")
    return gate_closed, (mbrs[0] if mbrs else None), qfi, rqi


def _urrs(state: SessionState, pdr: Pdr, meters: Mapping[int, UrrMeter]) -> tuple[int, ...]:
    for urr_id in pdr.urr_ids:
        urr = state.urrs.get(urr_id)
        meter = meters.get(urr_id)
        if urr is None or meter is None:
            raise _No(f"URR {urr_id} missing")
        if urr.measurement_information is not None and urr.measurement_information & _MBQE:
            raise _No(f"URR {urr_id} measures before QoS enforcement (MBQE)")
        if meter.blocked:
            raise _No(f"URR {urr_id} quota exhausted")
    return tuple(pdr.urr_ids)


def _uplink(
    state: SessionState,
    pdr: Pdr,
    meters: Mapping[int, UrrMeter],
    pools: Mapping[str, Collection[IPv4Network | IPv6Network]],
    gatewayed: Collection[str],
) -> UplinkOffload:
    _common(pdr)
    if pdr.local_f_teid is None or pdr.local_f_teid.teid < 0:
        raise _No("no local F-TEID")
    if len(pdr.qfis) > 1:
        raise _No("several QFIs")
    ohr = pdr.outer_header_removal
    if ohr is None or ohr.description not in _OHR_GTPU:
        raise _No("no Outer Header Removal GTP-U")
    ue_ip = None
    if pdr.ue_ip_addresses:
        if len(pdr.ue_ip_addresses) != 1:
            raise _No("several UE IP Addresses")
        ie = pdr.ue_ip_addresses[0]
        if ie.ipv4 is None or ie.ipv6 is not None or ie.is_destination:
            raise _No("UE IP Address not a source IPv4 address")
        ue_ip = ie.ipv4
    far = _forw_far(state, pdr)
    if far.outer_header_creation is not None:
        raise _No("uplink Outer Header Creation")
    if far.destination_interface not in (_DI.CORE, _DI.SGI_LAN_N6_LAN):
        raise _No(f"destination interface {far.destination_interface}")
    instance = _uplink_instance(far, pdr, pools)
    if instance not in pools:
        raise _No(f"Network Instance {instance!r} has no N6")
    if instance in gatewayed:
        raise _No(f"Network Instance {instance!r} routes its uplink via a gateway")
    gate_closed, mbr, _, _ = _qos(state, pdr, True)
    urr_ids = _urrs(state, pdr, meters)
    qfi = pdr.qfis[0] if pdr.qfis else None
    return UplinkOffload(pdr.pdr_id, pdr.local_f_teid.teid, ue_ip, qfi, gate_closed, mbr, urr_ids)


def _downlink(
    state: SessionState,
    pdr: Pdr,
    meters: Mapping[int, UrrMeter],
    n3_ipv4: IPv4Address | None,
    pools: Mapping[str, Collection[IPv4Network | IPv6Network]],
) -> DownlinkOffload:
    _common(pdr)
    if pdr.local_f_teid is not None or pdr.outer_header_removal is not None:
        raise _No("GTP-U from the core side")
    if len(pdr.ue_ip_addresses) != 1:
        raise _No(f"{len(pdr.ue_ip_addresses)} UE IP Addresses")
    ie = pdr.ue_ip_addresses[0]
    if ie.ipv4 is None or ie.ipv6 is not None or not ie.is_destination:
        raise _No("UE IP Address not a destination IPv4 address")
    ue_ip = ie.ipv4
    routed_to = _pools_of(ue_ip, pools)
    if len(routed_to) != 1:
        raise _No(f"UE {ue_ip} is in {len(routed_to)} UE pools")
    if pdr.network_instance is not None and pdr.network_instance != routed_to[0]:
        raise _No(f"UE {ue_ip} is routed to Network Instance {routed_to[0]!r}, the PDR matches another")
    far = _forw_far(state, pdr)
    ohc = far.outer_header_creation
    if far.destination_interface != _DI.ACCESS or ohc is None:
        raise _No("not FORW to ACCESS with Outer Header Creation")
    bits = int(ohc.description)
    if bits & ~_OHC_GTPU or not bits & _OHC.GTPU_UDP_IPV4 or ohc.teid is None or ohc.ipv4 is None:
        raise _No(f"Outer Header Creation {ohc.description!r}")
    if n3_ipv4 is None:
        raise _No("no IPv4 N3 address")
    gate_closed, mbr, qfi, rqi = _qos(state, pdr, False)
    urr_ids = _urrs(state, pdr, meters)
    return DownlinkOffload(pdr.pdr_id, ue_ip, ohc.teid, ohc.ipv4, qfi, rqi, gate_closed, mbr, urr_ids)
