"""Desired session rules -> PFCP session messages (TS 29.244 §7.5).

Interoperability choices (other vendors' UPFs, not only ours):

* Rel-16 IE sizes come from the codec: Apply Action is 2 octets (§8.2.26),
  Reporting Triggers 3 (§8.2.19).
* 3GPP Interface Type (§8.2.118) goes in every PDI (Source Interface Type) and in
  Forwarding Parameters (Destination Interface Type) whose spec names one.
* QFI is in the uplink PDI only when the rules say so (the gNB sends the PDU
  Session Container); a CH F-TEID needs FTUP (§8.2.25) from the peer, and the
  packet counts of a URR (MNOP, §8.2.68) are asked for only when advertised.
* A modification is a diff by rule ID: Remove, Create, then Update IEs
  (Table 7.5.4.1-1). A changed gNB F-TEID sets SNDEM in the Update Forwarding
  Parameters so the UPF sends End Markers on the old path (§5.8.2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Generic, TypeVar

import pfcp

from ..domain.rules import (
    INTERFACE_TYPES,
    FarSpec,
    FTeidSpec,
    PdrSpec,
    QerSpec,
    SessionRules,
    UrrSpec,
    parse_address,
    parse_prefix,
)

__all__ = [
    "PeerProfile",
    "create_far",
    "create_pdr",
    "create_qer",
    "create_urr",
    "deletion_request",
    "establishment_request",
    "modification_request",
    "session_report_response",
]

A = pfcp.ApplyActionFlags
_R = TypeVar("_R", PdrSpec, FarSpec, QerSpec, UrrSpec)
# FARs, QERs and URRs are mostly the same for every session of a policy and UPF (rule IDs
# are per session), and their IEs are immutable: built once, shared by every request.
# Bounded: per-session ones (a downlink FAR's gNB F-TEID) only pass through.
_CACHED = 4096
_SRC = {"access": pfcp.SourceInterfaceValue.ACCESS, "core": pfcp.SourceInterfaceValue.CORE}
_DST = {"access": pfcp.DestinationInterfaceValue.ACCESS, "core": pfcp.DestinationInterfaceValue.CORE}
_ACTION = {"forw": A.FORW, "drop": A.DROP, "buff": A.BUFF | A.NOCP}  # BUFF notifies the CP (§5.2.3.1)
#: The specs' §8.2.118 names ("N3 3GPP Access") -> the codec's members (N3_3GPP_ACCESS).
_IF_TYPE = {n: pfcp.Interface3GPPType[n.upper().replace(" ", "_").replace("-", "_")] for n in INTERFACE_TYPES}


@dataclass(frozen=True, slots=True)
class PeerProfile:
    """What the CP knows of a UPF: its Node ID, the UP Function Features it
    advertised (``pfcp.UPFeatures`` names, e.g. "FTUP") and who allocates N3 TEIDs."""

    node_id: str
    features: frozenset[str] = frozenset()
    teid_allocation: str = "cp"

    def __post_init__(self) -> None:
        if self.teid_allocation not in ("cp", "up"):
            raise ValueError(f"teid_allocation must be 'cp' or 'up': {self.teid_allocation!r}")

    @property
    def choose_teid(self) -> bool:
        """The UPF chooses the F-TEID (CH): configured so, and it advertises FTUP (§5.5.3)."""
        return self.teid_allocation == "up" and "FTUP" in self.features

    def supports(self, feature: str) -> bool:
        """The UPF advertised this UP Function Feature."""
        return feature in self.features


def _ni(name: str | None) -> pfcp.NetworkInstance | None:
    return None if name is None else pfcp.NetworkInstance(name)


def _if_type(name: str | None) -> pfcp.TGPPInterfaceType | None:
    return None if name is None else pfcp.TGPPInterfaceType(_IF_TYPE[name])


def _fteid(spec: FTeidSpec, peer: PeerProfile, chosen: tuple[int, str] | None) -> pfcp.FTEID:
    if not spec.choose:
        assert spec.teid is not None and spec.address is not None
        address = parse_address(spec.address)  # parsed when the spec was checked
        if isinstance(address, IPv4Address):
            return pfcp.FTEID(teid=spec.teid, ipv4=address)
        return pfcp.FTEID(teid=spec.teid, ipv6=address)
    if chosen is not None:  # the UPF already chose it: name it (a CHID may only bind within one message)
        return _fteid(FTeidSpec(chosen[0], chosen[1], family=parse_address(chosen[1]).version), peer, None)
    if not peer.supports("FTUP"):
        raise ValueError(f"UPF {peer.node_id} does not advertise FTUP: it cannot choose the F-TEID (CH)")
    return pfcp.FTEID(choose_v4=spec.family == 4, choose_v6=spec.family == 6, choose_id=spec.choose_id)


def _ue_ip(spec: PdrSpec) -> tuple[pfcp.UEIPAddress, ...]:
    if spec.ue_ip is None and spec.ue_ip_v6 is None:
        return ()
    ipv6 = prefix_length = None
    if spec.ue_ip_v6 is not None:
        net = parse_prefix(spec.ue_ip_v6)
        ipv6 = net.network_address
        # §8.2.62: without IPv6 Prefix Length the prefix is a /64, which every UPF understands.
        prefix_length = None if net.prefixlen == 64 else net.prefixlen
    ipv4 = None if spec.ue_ip is None else parse_address(spec.ue_ip)
    assert not isinstance(ipv4, IPv6Address)  # PdrSpec checks ue_ip is IPv4
    return (
        pfcp.UEIPAddress(
            ipv4=ipv4,
            ipv6=ipv6,
            is_destination=spec.source_interface == "core",  # S/D: destination on downlink (§8.2.62)
            ipv6_prefix_length=prefix_length,
        ),
    )


def _pdi(spec: PdrSpec, peer: PeerProfile, chosen: tuple[int, str] | None) -> pfcp.PDI:
    return pfcp.PDI(
        source_interface=pfcp.SourceInterface(_SRC[spec.source_interface]),
        local_f_teid=None if spec.local_fteid is None else _fteid(spec.local_fteid, peer, chosen),
        network_instance=_ni(spec.network_instance),
        ue_ip_address=_ue_ip(spec),
        sdf_filter=tuple(pfcp.SDFFilter(flow_description=f) for f in spec.sdf_filters),
        qfi=() if spec.qfi is None else (pfcp.QFI(spec.qfi),),
        source_interface_type=_if_type(spec.interface_type),
    )


def _ohr(spec: PdrSpec) -> pfcp.OuterHeaderRemoval | None:
    if not spec.outer_header_removal:
        return None
    v6 = spec.local_fteid is not None and spec.local_fteid.family == 6
    d = pfcp.OuterHeaderRemovalDescription
    return pfcp.OuterHeaderRemoval(d.GTPU_UDP_IPV6 if v6 else d.GTPU_UDP_IPV4)


def create_pdr(spec: PdrSpec, peer: PeerProfile, chosen: tuple[int, str] | None = None) -> pfcp.CreatePDR:
    """Create PDR (Table 7.5.2.2-1); ``chosen`` replaces a CH F-TEID the UPF already chose."""
    return pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(spec.pdr_id),
        precedence=pfcp.Precedence(spec.precedence),
        pdi=_pdi(spec, peer, chosen),
        outer_header_removal=_ohr(spec),
        far_id=pfcp.FARID(spec.far_id),
        urr_id=tuple(pfcp.URRID(u) for u in spec.urr_ids),
        qer_id=tuple(pfcp.QERID(q) for q in spec.qer_ids),
    )


def _ohc(spec: FarSpec) -> pfcp.OuterHeaderCreation | None:
    if spec.ohc_teid is None or spec.ohc_address is None:
        return None
    address = parse_address(spec.ohc_address)
    d = pfcp.OuterHeaderCreationDescription
    if isinstance(address, IPv6Address):
        return pfcp.OuterHeaderCreation(d.GTPU_UDP_IPV6, teid=spec.ohc_teid, ipv6=address)
    return pfcp.OuterHeaderCreation(d.GTPU_UDP_IPV4, teid=spec.ohc_teid, ipv4=address)


@functools.lru_cache(maxsize=_CACHED)
def create_far(spec: FarSpec) -> pfcp.CreateFAR:
    """Create FAR (Table 7.5.2.3-1): Forwarding Parameters only when it forwards."""
    params = None
    if spec.action == "forw":
        assert spec.destination_interface is not None  # FarSpec checks it
        params = pfcp.ForwardingParameters(
            destination_interface=pfcp.DestinationInterface(_DST[spec.destination_interface]),
            network_instance=_ni(spec.network_instance),
            outer_header_creation=_ohc(spec),
            destination_interface_type=_if_type(spec.interface_type),
        )
    return pfcp.CreateFAR(
        far_id=pfcp.FARID(spec.far_id),
        apply_action=pfcp.ApplyAction(_ACTION[spec.action]),
        forwarding_parameters=params,
    )


def _gate(is_open: bool) -> pfcp.Gate:
    return pfcp.Gate.OPEN if is_open else pfcp.Gate.CLOSED


@functools.lru_cache(maxsize=_CACHED)
def create_qer(spec: QerSpec) -> pfcp.CreateQER:
    """Create QER (Table 7.5.2.5-1)."""
    mbr = None
    if spec.mbr_ul_kbps is not None and spec.mbr_dl_kbps is not None:
        mbr = pfcp.MBR(spec.mbr_ul_kbps, spec.mbr_dl_kbps)
    return pfcp.CreateQER(
        qer_id=pfcp.QERID(spec.qer_id),
        gate_status=pfcp.GateStatus(_gate(spec.gate_ul_open), _gate(spec.gate_dl_open)),
        mbr=mbr,
        qfi=None if spec.qfi is None else pfcp.QFI(spec.qfi),
    )


@functools.lru_cache(maxsize=_CACHED)
def create_urr(spec: UrrSpec, peer: PeerProfile) -> pfcp.CreateURR:
    """Create URR (Table 7.5.2.4-1): a threshold set arms its trigger (VOLTH, TIMTH)."""
    method = pfcp.MeasurementMethodFlags(0)
    if spec.measure_volume:
        method |= pfcp.MeasurementMethodFlags.VOLUM
    if spec.measure_duration:
        method |= pfcp.MeasurementMethodFlags.DURAT
    triggers = pfcp.ReportingTriggersFlags(0)
    if spec.volume_threshold is not None:
        triggers |= pfcp.ReportingTriggersFlags.VOLTH
    if spec.time_threshold is not None:
        triggers |= pfcp.ReportingTriggersFlags.TIMTH
    info = None
    if peer.supports("MNOP"):  # packet counts in the reports (§8.2.68), only where advertised
        info = pfcp.MeasurementInformation(pfcp.MeasurementInformationFlags.MNOP)
    return pfcp.CreateURR(
        urr_id=pfcp.URRID(spec.urr_id),
        measurement_method=pfcp.MeasurementMethod(method),
        reporting_triggers=pfcp.ReportingTriggers(triggers),
        volume_threshold=None if spec.volume_threshold is None else pfcp.VolumeThreshold(spec.volume_threshold),
        time_threshold=None if spec.time_threshold is None else pfcp.TimeThreshold(spec.time_threshold),
        measurement_information=info,
    )


def _update_urr(new: UrrSpec, peer: PeerProfile) -> pfcp.UpdateURR:
    c = create_urr(new, peer)
    return pfcp.UpdateURR(
        urr_id=c.urr_id,
        measurement_method=c.measurement_method,
        reporting_triggers=c.reporting_triggers,
        volume_threshold=c.volume_threshold,
        time_threshold=c.time_threshold,
        measurement_information=c.measurement_information,
    )


def _pdn_type(rules: SessionRules) -> pfcp.PDNTypeValue:
    v4 = any(p.ue_ip is not None for p in rules.pdrs)
    v6 = any(p.ue_ip_v6 is not None for p in rules.pdrs)
    if v4 and v6:
        return pfcp.PDNTypeValue.IPV4V6
    return pfcp.PDNTypeValue.IPV6 if v6 else pfcp.PDNTypeValue.IPV4


def _f_seid(seid: int, address: str) -> pfcp.FSEID:
    parsed = parse_address(address)
    if isinstance(parsed, IPv4Address):
        return pfcp.FSEID(seid=seid, ipv4=parsed)
    return pfcp.FSEID(seid=seid, ipv6=parsed)


def establishment_request(
    *,
    node_id: pfcp.NodeID,
    cp_seid: int,
    cp_address: str,
    rules: SessionRules,
    peer: PeerProfile,
    pdn_type: pfcp.PDNTypeValue | None = None,
) -> pfcp.SessionEstablishmentRequest:
    """PFCP Session Establishment Request (Table 7.5.2.1-1) installing ``rules``.

    ``pdn_type`` defaults to what the UE addresses of the rules say. A CH F-TEID
    towards a UPF without FTUP raises ValueError (the CP must allocate instead).
    """
    if not rules.pdrs or not rules.fars:
        raise ValueError("an establishment needs at least one PDR and one FAR (Table 7.5.2.1-1)")
    return pfcp.SessionEstablishmentRequest(
        seid=0,  # the UP SEID is not known yet (§7.2.2.4.2)
        node_id=node_id,
        cp_f_seid=_f_seid(cp_seid, cp_address),
        create_pdr=tuple(create_pdr(p, peer) for p in rules.pdrs),
        create_far=tuple(create_far(f) for f in rules.fars),
        create_urr=tuple(create_urr(u, peer) for u in rules.urrs),
        create_qer=tuple(create_qer(q) for q in rules.qers),
        pdn_type=pfcp.PDNType(pdn_type if pdn_type is not None else _pdn_type(rules)),
    )


_PDI_FIELDS = (
    "source_interface",
    "interface_type",
    "local_fteid",
    "ue_ip",
    "ue_ip_v6",
    "network_instance",
    "sdf_filters",
    "qfi",
)


def _update_pdr(old: PdrSpec, new: PdrSpec, peer: PeerProfile, chosen: tuple[int, str] | None) -> pfcp.UpdatePDR:
    pdi_changed = any(getattr(old, f) != getattr(new, f) for f in _PDI_FIELDS)
    if pdi_changed and new.local_fteid is not None and new.local_fteid.choose and chosen is None:
        # Update PDR has no Updated PDR to return a chosen F-TEID in (our agent answers 71).
        raise ValueError(f"PDR {new.pdr_id}: a changed PDI needs the F-TEID the UPF chose (n3_fteid)")
    return pfcp.UpdatePDR(
        pdr_id=pfcp.PDRID(new.pdr_id),
        outer_header_removal=_ohr(new) if old.outer_header_removal != new.outer_header_removal else None,
        precedence=pfcp.Precedence(new.precedence) if old.precedence != new.precedence else None,
        pdi=_pdi(new, peer, chosen) if pdi_changed else None,
        far_id=pfcp.FARID(new.far_id) if old.far_id != new.far_id else None,
        urr_id=tuple(pfcp.URRID(u) for u in new.urr_ids) if old.urr_ids != new.urr_ids else (),
        qer_id=tuple(pfcp.QERID(q) for q in new.qer_ids) if old.qer_ids != new.qer_ids else (),
    )


def _update_far(old: FarSpec, new: FarSpec) -> pfcp.UpdateFAR:
    params = None
    if new.action == "forw":
        assert new.destination_interface is not None
        # SNDEM: the downstream F-TEID moved (handover); End Markers go down the old path (§5.8.2).
        ohc = _ohc(new)
        moved = old.action == "forw" and old.ohc_teid is not None and _ohc(old) != ohc
        params = pfcp.UpdateForwardingParameters(
            destination_interface=pfcp.DestinationInterface(_DST[new.destination_interface]),
            network_instance=_ni(new.network_instance),
            outer_header_creation=ohc,
            pfcpsmreq_flags=pfcp.PFCPSMReqFlags(pfcp.PFCPSMReqFlagsValue.SNDEM) if moved else None,
            destination_interface_type=_if_type(new.interface_type),
        )
    action = pfcp.ApplyAction(_ACTION[new.action]) if old.action != new.action else None
    return pfcp.UpdateFAR(far_id=pfcp.FARID(new.far_id), apply_action=action, update_forwarding_parameters=params)


def _update_qer(new: QerSpec) -> pfcp.UpdateQER:
    q = create_qer(new)
    return pfcp.UpdateQER(qer_id=q.qer_id, gate_status=q.gate_status, mbr=q.mbr, qfi=q.qfi)


def modification_request(
    *,
    up_seid: int,
    old: SessionRules,
    new: SessionRules,
    peer: PeerProfile,
    cp_f_seid: pfcp.FSEID | None = None,
    n3_fteid: tuple[int, str] | None = None,
) -> pfcp.SessionModificationRequest | None:
    """PFCP Session Modification Request (Table 7.5.4.1-1) taking the UPF from
    ``old`` to ``new``, rule by rule; None when nothing changed.

    ``n3_fteid`` is the F-TEID the UPF chose for the session (from
    :func:`control_plane.n4.handle.created_fteids`): a new or changed PDR with a CH
    F-TEID names it, so it shares the tunnel with every UPF, not only those
    that remember a CHID beyond one message.
    """
    pdr = _diff(old.pdrs, new.pdrs, lambda r: r.pdr_id)
    far = _diff(old.fars, new.fars, lambda r: r.far_id)
    qer = _diff(old.qers, new.qers, lambda r: r.qer_id)
    urr = _diff(old.urrs, new.urrs, lambda r: r.urr_id)
    if cp_f_seid is None and not any(d.removed or d.created or d.changed for d in (pdr, far, qer, urr)):
        return None
    return pfcp.SessionModificationRequest(
        seid=up_seid,
        cp_f_seid=cp_f_seid,
        remove_pdr=tuple(pfcp.RemovePDR(pdr_id=pfcp.PDRID(i)) for i in pdr.removed),
        remove_far=tuple(pfcp.RemoveFAR(far_id=pfcp.FARID(i)) for i in far.removed),
        remove_urr=tuple(pfcp.RemoveURR(urr_id=pfcp.URRID(i)) for i in urr.removed),
        remove_qer=tuple(pfcp.RemoveQER(qer_id=pfcp.QERID(i)) for i in qer.removed),
        create_pdr=tuple(create_pdr(p, peer, n3_fteid) for p in pdr.created),
        create_far=tuple(create_far(f) for f in far.created),
        create_urr=tuple(create_urr(u, peer) for u in urr.created),
        create_qer=tuple(create_qer(q) for q in qer.created),
        update_pdr=tuple(_update_pdr(a, b, peer, n3_fteid) for a, b in pdr.changed),
        update_far=tuple(_update_far(a, b) for a, b in far.changed),
        update_urr=tuple(_update_urr(b, peer) for _, b in urr.changed),
        update_qer=tuple(_update_qer(b) for _, b in qer.changed),
    )


@dataclass(frozen=True, slots=True)
class _Diff(Generic[_R]):
    removed: list[int]
    created: list[_R]
    changed: list[tuple[_R, _R]]


def _diff(old: tuple[_R, ...], new: tuple[_R, ...], key: Callable[[_R], int]) -> _Diff[_R]:
    before = {key(r): r for r in old}
    after = {key(r): r for r in new}
    return _Diff(
        sorted(set(before) - set(after)),
        [r for i, r in sorted(after.items()) if i not in before],
        [(before[i], r) for i, r in sorted(after.items()) if i in before and before[i] != r],
    )


def deletion_request(*, up_seid: int) -> pfcp.SessionDeletionRequest:
    """PFCP Session Deletion Request (Table 7.5.6.1-1): the header SEID says it all."""
    return pfcp.SessionDeletionRequest(seid=up_seid)


def session_report_response(
    *, up_seid: int, cause: pfcp.CauseValue = pfcp.CauseValue.REQUEST_ACCEPTED
) -> pfcp.SessionReportResponse:
    """PFCP Session Report Response (Table 7.5.9.1-1); the header carries the UP
    SEID (§7.2.2.4.2), the endpoint copies the request's sequence number."""
    return pfcp.SessionReportResponse(seid=up_seid, cause=pfcp.Cause(cause))
