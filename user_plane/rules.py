"""The UP function's model of one PFCP session's rules (TS 29.244 §5.2).

Typed, frozen views of what the CP function provisioned with Create PDR/FAR/
QER/URR/BAR (§7.5.2.2-§7.5.2.6), and pure functions applying the matching
Update IEs (§7.5.4.2-§7.5.4.5, §7.5.4.8). Every model is immutable: an update
returns a new object, so a rejected request can never leave half a change.

IDs and single-integer IEs are unwrapped to ``int``; the UE IP Address, Outer
Header Creation and the CP F-SEID become small slotted copies (:class:`UeIp`,
:class:`OuterHeader`, :class:`FSeid`: a decoded pfcp IE carries an instance
dictionary of ~270 bytes, and 100k sessions keep four each); other structured IEs
(SDF Filter, Volume Threshold...) stay pfcp objects, shared when equal.
§5.6.3: an Update IE carries only what changes. Removing one IE with a
zero-length IE is not expressible with the codec's typed IEs: not modelled.

Checks between rules (references, conflicts) and the causes live in
:mod:`user_plane.session`; here only what one rule needs to be usable.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pfcp

from .frozen import fast_init
from .rule_values import (
    SHARED_MAX,
    FSeid,
    OuterHeader,
    UeIp,
    interned,
    outer_header,
    shared_address,
    shared_ids,
    shared_ie,
    shared_name,
    ue_ips,
)

__all__ = ["Bar", "FSeid", "Far", "LocalFTeid", "OuterHeader", "Pdr", "Qer", "UeIp", "Urr"]
__all__ += ["fixed_f_teid", "pdi_fields"]
__all__ += ["bar_from_create", "far_from_create", "pdr_from_create", "qer_from_create", "urr_from_create"]
__all__ += ["update_bar", "update_far", "update_pdr", "update_qer", "update_urr"]


_OHC = pfcp.OuterHeaderCreationDescription
_OHC_GTPU = _OHC.GTPU_UDP_IPV4 | _OHC.GTPU_UDP_IPV6
_OHC_V4 = _OHC.GTPU_UDP_IPV4 | _OHC.UDP_IPV4 | _OHC.IPV4
_OHC_V6 = _OHC.GTPU_UDP_IPV6 | _OHC.UDP_IPV6 | _OHC.IPV6
_OHC_HEADERS = _OHC_V4 | _OHC_V6
# The same bits as plain ints (IntFlag operators are slow on the establishment path).
_OHC_GTPU_BITS = int(_OHC_GTPU)
_OHC_V4_BITS = int(_OHC_V4)
_OHC_V6_BITS = int(_OHC_V6)
_OHC_HEADER_BITS = int(_OHC_HEADERS)
_FORW = int(pfcp.ApplyActionFlags.FORW)


@fast_init
@dataclass(frozen=True, slots=True)
class LocalFTeid:
    """The local F-TEID a PDR matches on (PDI, §8.2.3), after any CH allocation.

    ``allocated`` is True when the UP function chose the TEID (CH=1), so the
    agent knows which TEIDs are its own to release; ``choose_id`` is the CHID
    the CP function used, kept so later PDRs of the session can share it.
    """

    teid: int
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    allocated: bool = False
    choose_id: int | None = None

    def to_ie(self) -> pfcp.FTEID:
        """The F-TEID IE with the values in force (as returned in Created PDR, §7.5.3.2)."""
        return pfcp.FTEID(teid=self.teid, ipv4=self.ipv4, ipv6=self.ipv6)

    def with_teid(self, teid: int) -> LocalFTeid:
        """This F-TEID with another TEID (dataclasses.replace, without its cost)."""
        return LocalFTeid(teid, self.ipv4, self.ipv6, self.allocated, self.choose_id)


@fast_init
@dataclass(frozen=True, slots=True)
class Pdr:
    """A Packet Detection Rule: PDI match fields plus the rules it points to (§5.2.1)."""

    pdr_id: int
    precedence: int
    source_interface: int  # pfcp.SourceInterfaceValue, or a later release's value
    local_f_teid: LocalFTeid | None = None
    network_instance: str | None = None
    #: UeIp from a request; pfcp IEs work too (the same attributes), for states built by hand.
    ue_ip_addresses: tuple[UeIp | pfcp.UEIPAddress, ...] = ()
    sdf_filters: tuple[pfcp.SDFFilter, ...] = ()
    application_id: str | None = None
    qfis: tuple[int, ...] = ()
    outer_header_removal: pfcp.OuterHeaderRemoval | None = None
    far_id: int | None = None
    qer_ids: tuple[int, ...] = ()
    urr_ids: tuple[int, ...] = ()
    predefined_rules: tuple[str, ...] = ()

    def with_local_f_teid(self, local_f_teid: LocalFTeid | None) -> Pdr:
        """This PDR with another local F-TEID (dataclasses.replace, without its cost)."""
        return Pdr(
            self.pdr_id,
            self.precedence,
            self.source_interface,
            local_f_teid,
            self.network_instance,
            self.ue_ip_addresses,
            self.sdf_filters,
            self.application_id,
            self.qfis,
            self.outer_header_removal,
            self.far_id,
            self.qer_ids,
            self.urr_ids,
            self.predefined_rules,
        )

    def match_key(self) -> tuple[Any, ...]:
        """Precedence and every PDI match field, order-insensitive: two PDRs of a
        session with equal keys cannot be told apart (§5.2.1)."""
        f = self.local_f_teid
        fteid = None if f is None else (f.teid, f.ipv4, f.ipv6)
        return (
            self.precedence,
            int(self.source_interface),
            fteid,
            self.network_instance,
            frozenset(self.ue_ip_addresses),
            frozenset(self.sdf_filters),
            self.application_id,
            frozenset(self.qfis),
        )


@fast_init
@dataclass(frozen=True, slots=True)
class Far:
    """A Forwarding Action Rule (§5.2.1, Table 7.5.2.3-1), Forwarding Parameters flattened.

    ``destination_interface`` is None when the FAR has no Forwarding Parameters
    (DROP or BUFF FARs need none).
    """

    far_id: int
    apply_action: pfcp.ApplyActionFlags
    destination_interface: int | None = None  # pfcp.DestinationInterfaceValue
    network_instance: str | None = None
    #: OuterHeader from a request; a pfcp IE works too (the same attributes).
    outer_header_creation: OuterHeader | pfcp.OuterHeaderCreation | None = None
    transport_level_marking: pfcp.TransportLevelMarking | None = None
    forwarding_policy: bytes | None = None
    bar_id: int | None = None
    duplicating_parameters: tuple[pfcp.DuplicatingParameters, ...] = ()

    def usable(self) -> bool:
        """FORW has a Destination Interface (Table 7.5.2.3-1), and an Outer Header
        Creation names a header and carries the TEID/addresses it needs (§8.2.56)."""
        if int(self.apply_action) & _FORW and self.destination_interface is None:
            return False
        ohc = self.outer_header_creation
        if ohc is None:
            return True
        bits = int(ohc.description)
        return (
            bool(bits & _OHC_HEADER_BITS)
            and not (bits & _OHC_GTPU_BITS and ohc.teid is None)
            and not (bits & _OHC_V4_BITS and ohc.ipv4 is None)
            and not (bits & _OHC_V6_BITS and ohc.ipv6 is None)
        )


@fast_init
@dataclass(frozen=True, slots=True)
class Qer:
    """A QoS Enforcement Rule (Table 7.5.2.5-1). Bit rates are in kbit/s (§8.2.8)."""

    qer_id: int
    gate_ul: pfcp.Gate = pfcp.Gate.OPEN
    gate_dl: pfcp.Gate = pfcp.Gate.OPEN
    mbr_ul: int | None = None
    mbr_dl: int | None = None
    gbr_ul: int | None = None
    gbr_dl: int | None = None
    qfi: int | None = None
    rqi: bool = False
    qer_correlation_id: int | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Urr:
    """A Usage Reporting Rule (Table 7.5.2.4-1). Times are in seconds (§8.2.32 ff.)."""

    urr_id: int
    measurement_method: pfcp.MeasurementMethodFlags
    reporting_triggers: pfcp.ReportingTriggersFlags
    measurement_period: int | None = None
    volume_threshold: pfcp.VolumeThreshold | None = None
    volume_quota: pfcp.VolumeQuota | None = None
    event_threshold: int | None = None
    event_quota: int | None = None
    time_threshold: int | None = None
    time_quota: int | None = None
    quota_holding_time: int | None = None
    quota_validity_time: int | None = None
    monitoring_time: int | None = None
    subsequent_volume_threshold: pfcp.SubsequentVolumeThreshold | None = None
    subsequent_time_threshold: int | None = None
    subsequent_volume_quota: pfcp.SubsequentVolumeQuota | None = None
    subsequent_time_quota: int | None = None
    dropped_dl_traffic_threshold: pfcp.DroppedDLTrafficThreshold | None = None
    inactivity_detection_time: int | None = None
    linked_urr_ids: tuple[int, ...] = ()
    measurement_information: pfcp.MeasurementInformationFlags | None = None
    far_id_for_quota_action: int | None = None
    number_of_reports: int | None = None
    #: How many times a Volume/Time Quota was granted by Update URR: a re-grant of the same
    #: value is a new quota (§5.2.2.2), so it must change the desired state.
    quota_grants: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class Bar:
    """A Buffering Action Rule (Table 7.5.2.6-1)."""

    bar_id: int
    downlink_data_notification_delay: int | None = None
    suggested_buffering_packets_count: int | None = None


# --------------------------------------------------------------------------
# Declarative field tables: (model field, IE field, how to unwrap the IE).
# One table serves both Create and Update, because Update IEs reuse the
# Create IE names (§7.5.4: "same as in Create ...").


_value = operator.attrgetter("value")
_same: Any = None  # kept as the pfcp IE


_QER_FIELDS: tuple[tuple[str, Any], ...] = (
    ("qfi", _value),
    ("rqi", _value),
    ("qer_correlation_id", _value),
)

_URR_FIELDS: tuple[tuple[str, Any], ...] = (
    ("measurement_method", _value),
    ("reporting_triggers", _value),
    ("measurement_period", _value),
    ("volume_threshold", shared_ie),
    ("volume_quota", shared_ie),
    ("event_threshold", _value),
    ("event_quota", _value),
    ("time_threshold", _value),
    ("time_quota", _value),
    ("quota_holding_time", _value),
    ("quota_validity_time", _value),
    ("monitoring_time", _value),
    ("subsequent_volume_threshold", _same),
    ("subsequent_time_threshold", _value),
    ("subsequent_volume_quota", _same),
    ("subsequent_time_quota", _value),
    ("dropped_dl_traffic_threshold", _same),
    ("inactivity_detection_time", _value),
    ("measurement_information", _value),
    ("far_id_for_quota_action", _value),
    ("number_of_reports", _value),
)

_BAR_FIELDS: tuple[tuple[str, Any], ...] = (
    ("downlink_data_notification_delay", _value),
    ("suggested_buffering_packets_count", _value),
)

# Forwarding Parameters (Table 7.5.2.3-2) and Update Forwarding Parameters
# (Table 7.5.4.3-2) share these names.
_FORWARDING_FIELDS: tuple[tuple[str, Any], ...] = (
    ("destination_interface", _value),
    ("network_instance", lambda ie: shared_name(ie.value)),
    ("outer_header_creation", OuterHeader.from_ie),
    ("transport_level_marking", _same),
    ("forwarding_policy", lambda ie: ie.identifier),
)


def _present(ie: Any, table: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The table's fields present in ``ie``, unwrapped (absent = None = unchanged)."""
    out: dict[str, Any] = {}
    for name, conv in table:
        value = getattr(ie, name)
        if value is not None:
            out[name] = value if conv is None else conv(value)
    return out


# --------------------------------------------------------------------------
# Create


def pdi_fields(pdi: pfcp.PDI, local_f_teid: LocalFTeid | None) -> dict[str, Any]:
    """The Pdr fields carried by a PDI (Table 7.5.2.2-2). ``local_f_teid`` is the
    F-TEID in force (after any CH allocation, which the caller performs)."""
    return {
        "source_interface": pdi.source_interface.value,
        "local_f_teid": local_f_teid,
        "network_instance": None if pdi.network_instance is None else shared_name(pdi.network_instance.value),
        "ue_ip_addresses": ue_ips(pdi.ue_ip_address),
        "sdf_filters": pdi.sdf_filter,
        "application_id": None if pdi.application_id is None else pdi.application_id.value,
        "qfis": shared_ids(pdi.qfi),
    }


def fixed_f_teid(fteid: pfcp.FTEID | None) -> LocalFTeid | None:
    """The LocalFTeid of an F-TEID the CP function chose (CH=0); None for none or CH=1."""
    if fteid is None or fteid.teid is None:
        return None
    return LocalFTeid(fteid.teid, shared_address(fteid.ipv4), shared_address(fteid.ipv6))  # our N3 address: shared


def pdr_from_create(
    ie: pfcp.CreatePDR, local_f_teid: LocalFTeid | None, addresses: dict[Any, Any] | None = None
) -> Pdr:
    """A Pdr from Create PDR (Table 7.5.2.2-1); ``local_f_teid`` as for :func:`pdi_fields`;
    ``addresses`` as for :meth:`UeIp.from_ie`."""
    pdi = ie.pdi  # positional, in field order: keyword and ** unpacking cost more than the rest
    return Pdr(
        ie.pdr_id.value,
        ie.precedence.value,
        pdi.source_interface.value,
        local_f_teid,
        None if pdi.network_instance is None else shared_name(pdi.network_instance.value),
        ue_ips(pdi.ue_ip_address, addresses),
        pdi.sdf_filter,
        None if pdi.application_id is None else pdi.application_id.value,
        shared_ids(pdi.qfi),
        None if ie.outer_header_removal is None else shared_ie(ie.outer_header_removal),
        None if ie.far_id is None else ie.far_id.value,
        shared_ids(ie.qer_id),
        shared_ids(ie.urr_id),
        tuple(r.value for r in ie.activate_predefined_rules) if ie.activate_predefined_rules else (),
    )


def far_from_create(ie: pfcp.CreateFAR) -> Far:
    """A Far from Create FAR (Table 7.5.2.3-1)."""
    fwd = ie.forwarding_parameters  # positional, in field order (see pdr_from_create)
    if fwd is None:
        return Far(
            ie.far_id.value,
            ie.apply_action.value,
            None,
            None,
            None,
            None,
            None,
            None if ie.bar_id is None else ie.bar_id.value,
            ie.duplicating_parameters,
        )
    ni, policy, ohc = fwd.network_instance, fwd.forwarding_policy, fwd.outer_header_creation
    far_id, action = ie.far_id.value, ie.apply_action.value
    dest = None if fwd.destination_interface is None else fwd.destination_interface.value
    instance = None if ni is None else shared_name(ni.value)
    bar_id = None if ie.bar_id is None else ie.bar_id.value
    if ohc is None and policy is None and fwd.transport_level_marking is None and not ie.duplicating_parameters:
        # A FAR towards N6 (or DROP/BUFF) is the same in every session of a Network Instance:
        # one object for all (104 bytes a session saved; the key hashes ints and a string).
        key = (far_id, int(action), dest, instance, bar_id)
        far = _shared_fars.get(key)
        if far is None:
            if len(_shared_fars) >= SHARED_MAX:
                _shared_fars.clear()
            far = _shared_fars[key] = Far(far_id, action, dest, instance, None, None, None, bar_id, ())
        return far
    return Far(
        far_id,
        action,
        dest,
        instance,
        outer_header(ohc),
        fwd.transport_level_marking,
        None if policy is None else policy.identifier,
        bar_id,
        ie.duplicating_parameters,
    )


_shared_fars: dict[tuple[Any, ...], Far] = {}


def _v(ie: Any) -> Any:
    """The value of an optional single-value IE, or None."""
    return None if ie is None else ie.value


def qer_from_create(ie: pfcp.CreateQER) -> Qer:
    """A Qer from Create QER (Table 7.5.2.5-1), positional in field order (see pdr_from_create)."""
    gate, mbr, gbr, rqi = ie.gate_status, ie.mbr, ie.gbr, ie.rqi
    args = (
        ie.qer_id.value,
        pfcp.Gate.OPEN if gate is None else gate.ul,
        pfcp.Gate.OPEN if gate is None else gate.dl,
        None if mbr is None else mbr.ul,
        None if mbr is None else mbr.dl,
        None if gbr is None else gbr.ul,
        None if gbr is None else gbr.dl,
        _v(ie.qfi),
        False if rqi is None else rqi.value,
        _v(ie.qer_correlation_id),
    )
    qer: Qer = interned(_shared_qers, Qer, args)
    return qer


def urr_from_create(ie: pfcp.CreateURR) -> Urr:
    """An Urr from Create URR (Table 7.5.2.4-1), positional in field order (see pdr_from_create)."""
    vth, vq = ie.volume_threshold, ie.volume_quota
    x: Any  # each optional IE in turn (walrus below: no call per IE)
    args = (
        ie.urr_id.value,
        ie.measurement_method.value,
        ie.reporting_triggers.value,
        None if (x := ie.measurement_period) is None else x.value,
        None if vth is None else shared_ie(vth),
        None if vq is None else shared_ie(vq),
        None if (x := ie.event_threshold) is None else x.value,
        None if (x := ie.event_quota) is None else x.value,
        None if (x := ie.time_threshold) is None else x.value,
        None if (x := ie.time_quota) is None else x.value,
        None if (x := ie.quota_holding_time) is None else x.value,
        None if (x := ie.quota_validity_time) is None else x.value,
        None if (x := ie.monitoring_time) is None else x.value,
        ie.subsequent_volume_threshold,
        None if (x := ie.subsequent_time_threshold) is None else x.value,
        ie.subsequent_volume_quota,
        None if (x := ie.subsequent_time_quota) is None else x.value,
        ie.dropped_dl_traffic_threshold,
        None if (x := ie.inactivity_detection_time) is None else x.value,
        shared_ids(ie.linked_urr_id),
        None if (x := ie.measurement_information) is None else x.value,
        None if (x := ie.far_id_for_quota_action) is None else x.value,
        None if (x := ie.number_of_reports) is None else x.value,
    )
    urr: Urr = interned(_shared_urrs, Urr, args)
    return urr


_shared_qers: dict[tuple[Any, ...], Qer] = {}
_shared_urrs: dict[tuple[Any, ...], Urr] = {}


def bar_from_create(ie: pfcp.CreateBAR) -> Bar:
    """A Bar from Create BAR (Table 7.5.2.6-1)."""
    return Bar(bar_id=ie.bar_id.value, **_present(ie, _BAR_FIELDS))


def _gate(gate: pfcp.GateStatus | None) -> dict[str, Any]:
    return {} if gate is None else {"gate_ul": gate.ul, "gate_dl": gate.dl}


def _rates(ie: pfcp.CreateQER | pfcp.UpdateQER) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ie.mbr is not None:
        out.update(mbr_ul=ie.mbr.ul, mbr_dl=ie.mbr.dl)
    if ie.gbr is not None:
        out.update(gbr_ul=ie.gbr.ul, gbr_dl=ie.gbr.dl)
    return out


# --------------------------------------------------------------------------
# Update (only the IEs present change, §5.6.3)


def update_pdr(pdr: Pdr, ie: pfcp.UpdatePDR, local_f_teid: LocalFTeid | None) -> Pdr:
    """``pdr`` changed by Update PDR (Table 7.5.4.2-1).

    A PDI, when present, replaces the whole PDI ("shall be present if there is a
    change within the PDI"); ``local_f_teid`` is then its F-TEID in force.
    URR ID / QER ID, when present, are the complete new lists for the PDR.
    """
    changes: dict[str, Any] = {}
    if ie.pdi is not None:
        changes.update(pdi_fields(ie.pdi, local_f_teid))
    if ie.precedence is not None:
        changes["precedence"] = ie.precedence.value
    if ie.outer_header_removal is not None:
        changes["outer_header_removal"] = ie.outer_header_removal
    if ie.far_id is not None:
        changes["far_id"] = ie.far_id.value
    if ie.qer_id:
        changes["qer_ids"] = shared_ids(ie.qer_id)
    if ie.urr_id:
        changes["urr_ids"] = shared_ids(ie.urr_id)
    if ie.activate_predefined_rules or ie.deactivate_predefined_rules:
        gone = {r.value for r in ie.deactivate_predefined_rules}
        kept = [r for r in pdr.predefined_rules if r not in gone]
        kept += [r.value for r in ie.activate_predefined_rules if r.value not in kept]
        changes["predefined_rules"] = tuple(kept)
    return replace(pdr, **changes) if changes else pdr


def update_far(far: Far, ie: pfcp.UpdateFAR) -> Far:
    """``far`` changed by Update FAR (Table 7.5.4.3-1). Update Forwarding Parameters
    (Table 7.5.4.3-2) changes only the IEs it carries, or provides them to a FAR
    that had none (BUFF); its SNDEM flag is a one-off instruction, not state."""
    changes: dict[str, Any] = {}
    if ie.apply_action is not None:
        changes["apply_action"] = ie.apply_action.value
    if ie.update_forwarding_parameters is not None:
        changes.update(_present(ie.update_forwarding_parameters, _FORWARDING_FIELDS))
    if ie.bar_id is not None:
        changes["bar_id"] = ie.bar_id.value
    return replace(far, **changes) if changes else far


def update_qer(qer: Qer, ie: pfcp.UpdateQER) -> Qer:
    """``qer`` changed by Update QER (Table 7.5.4.5-1)."""
    changes = {**_gate(ie.gate_status), **_rates(ie), **_present(ie, _QER_FIELDS)}
    return replace(qer, **changes) if changes else qer


def update_urr(urr: Urr, ie: pfcp.UpdateURR) -> Urr:
    """``urr`` changed by Update URR (Table 7.5.4.4-1); Linked URR IDs, when present,
    are the complete new list."""
    changes = _present(ie, _URR_FIELDS)
    if ie.volume_quota is not None or ie.time_quota is not None:
        changes["quota_grants"] = urr.quota_grants + 1
    if ie.linked_urr_id:
        changes["linked_urr_ids"] = shared_ids(ie.linked_urr_id)
    return replace(urr, **changes) if changes else urr


def update_bar(bar: Bar, ie: pfcp.UpdateBAR) -> Bar:
    """``bar`` changed by Update BAR (Table 7.5.4.8-1 of the modification request)."""
    changes = _present(ie, _BAR_FIELDS)
    return replace(bar, **changes) if changes else bar
