"""Wireshark's PFCP dissector reads what we encode, IE by IE, with our values.

Every corpus message (one of each message type, see :mod:`.corpus`) and the
golden Session Establishment Request go into one pcap; tshark dissects it once.

We read ``-T json`` rather than ``-T ek``: ek flattens a packet into one object
per protocol, so a field that occurs twice at different depths keeps a single
value (the header SEID 0 of the golden vector disappears behind the F-SEID's
SEID) and the IE tree is lost. ``-T json`` parsed with ``object_pairs_hook``
keeps every IE as a subtree, in wire order, duplicates included. Field names
are the dotted abbreviations of ``tshark -G fields`` (``pfcp.f_teid.teid``);
ek spells the same fields ``pfcp_pfcp_f_teid_teid``.

For every IE we check, against our dataclass: the IE type, its length, a set of
decoded field values, and (grouped IEs) the same children in the same order.
Expert info (malformed packets, warnings, notes) must be absent.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntFlag
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

import pfcp
from pfcp import IEType

from .corpus import (
    GOLDEN_MISSING,
    GOLDEN_NAME,
    OPAQUE_GROUPED,
    all_encoded,
    body,
    case_names,
    children,
    is_grouped,
    pcap_bytes,
)

TSHARK = shutil.which("tshark")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(TSHARK is None, reason="tshark binary not found on PATH (install the tshark package)"),
]

#: Frames tshark 4.0 cannot dissect cleanly through no fault of ours:
#: name -> (reason, fields that tshark therefore never shows).
KNOWN_TSHARK_ISSUES: dict[str, tuple[str, frozenset[str]]] = {
    "heartbeat_request_source_ip_mpl": (
        "Wireshark 4.0 throws 'Malformed Packet (Exception occurred)' on any Source IP Address IE "
        "with MPL=1, whatever the IE length. TS 29.244 §8.2.138 (and pycrate) put the one-octet "
        "Mask/Prefix Length after the addresses, which is what we send.",
        frozenset({"pfcp.source_ip_address.mpl"}),
    ),
}

#: Field names that differ between Wireshark versions, or that Wireshark
#: misnames: canonical name -> names to try after it.
ALIASES: dict[str, tuple[str, ...]] = {
    "pfcp.measurement_info.mbqe": ("pfcp.measurement_info.fd",),  # 4.0 registers MBQE as ".fd"
    "pfcp.volume_measurement_flags.dlnop": ("pfcp.volume_measurement_flags.dlnops",),
    "pfcp.node_report_type.vsr": ("pfcp.node_report_type.pvsrurr",),
}

_EXPERT_NOTE = 4194304  # PI_NOTE; PI_WARN is 6291456, PI_ERROR 8388608


# --------------------------------------------------------------------------
# tshark's side: the JSON tree


Fields = dict[str, list[str]]


@dataclass
class DissectedIE:
    """One IE subtree of tshark's JSON output."""

    type: int
    length: int
    fields: Fields
    children: list[DissectedIE]


@dataclass
class Frame:
    """One dissected frame: its layers, PFCP header fields, IEs and expert infos."""

    layers: list[str]
    other: dict[str, Fields]
    header: Fields
    ies: list[DissectedIE]
    experts: list[tuple[int, str]] = field(default_factory=list)


Pairs = list[tuple[str, Any]]


def _is_ie(value: Any) -> bool:
    return isinstance(value, list) and any(k == "pfcp.ie_type" for k, _ in value)


def _is_subtree(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(p, tuple) for p in value)


def _collect(pairs: Pairs, out: Fields, children: list[DissectedIE] | None) -> Fields:
    for key, value in pairs:
        if _is_ie(value):
            if children is not None:
                children.append(_ie(value))
        elif _is_subtree(value):
            _collect(value, out, children)
        else:
            out.setdefault(key, []).append(value)
    return out


def _ie(pairs: Pairs) -> DissectedIE:
    children: list[DissectedIE] = []
    fields = _collect(pairs, {}, children)
    return DissectedIE(int(fields["pfcp.ie_type"][0]), int(fields["pfcp.ie_len"][0]), fields, children)


def _experts(value: Any, out: list[tuple[int, str]]) -> None:
    if not _is_subtree(value):
        return
    for key, sub in value:
        if key == "_ws.expert" and _is_subtree(sub):
            info = dict(sub)
            out.append((int(info.get("_ws.expert.severity", 0)), str(info.get("_ws.expert.message", ""))))
        _experts(sub, out)


def _frame(packet: Pairs) -> Frame:
    layers: Pairs = dict(dict(packet)["_source"])["layers"]
    names = [name for name, _ in layers]
    experts: list[tuple[int, str]] = []
    for _, value in layers:
        _experts(value, experts)
    by_name = dict(layers)
    ies: list[DissectedIE] = []
    header = _collect(by_name.get("pfcp", []), {}, ies)
    other = {name: _collect(value, {}, None) for name, value in layers if name in ("ip", "udp")}
    return Frame(names, other, header, ies, experts)


def _tshark_version() -> str:
    assert TSHARK is not None
    out = subprocess.run([TSHARK, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    match = re.search(r"TShark \(Wireshark\) (\d+\.\d+\.\d+)", out)
    assert match is not None, f"cannot read the tshark version from {out[:200]!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def dissected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, Frame]]:
    """Run tshark once over the whole corpus; name -> (our bytes, tshark's frame)."""
    assert TSHARK is not None
    cases = all_encoded()
    pcap = tmp_path_factory.mktemp("tshark") / "corpus.pcap"
    pcap.write_bytes(pcap_bytes([data for _, data in cases]))
    env = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}
    proc = subprocess.run(
        [TSHARK, "-n", "-r", str(pcap), "-T", "json", "-o", "ip.check_checksum:TRUE"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    packets = json.loads(proc.stdout, object_pairs_hook=list)
    assert len(packets) == len(cases), f"tshark read {len(packets)} frames, we wrote {len(cases)}"
    return {name: (data, _frame(packet)) for (name, data), packet in zip(cases, packets, strict=True)}


CASE_NAMES = case_names()


def _case(dissected: dict[str, tuple[bytes, Frame]], name: str) -> tuple[bytes, Frame]:
    if name not in dissected:
        assert name == GOLDEN_NAME, name
        pytest.skip(GOLDEN_MISSING)
    return dissected[name]


def test_tshark_version_is_known() -> None:
    """Record the tshark version the field names below were checked against."""
    version = _tshark_version()
    major, minor = (int(x) for x in version.split(".")[:2])
    assert (major, minor) >= (3, 6), f"tshark {version} predates the PFCP fields this test reads"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_no_malformed_or_expert_info(dissected: dict[str, tuple[bytes, Frame]], name: str) -> None:
    data, frame = _case(dissected, name)
    assert frame.layers[:5] == ["frame", "eth", "ip", "udp", "pfcp"], frame.layers
    assert frame.other["ip"]["ip.checksum.status"] == ["1"], "our pcap's IPv4 checksum is wrong"
    assert frame.other["udp"]["udp.length"] == [str(8 + len(data))]
    problems = [(sev, msg) for sev, msg in frame.experts if sev >= _EXPERT_NOTE]
    if name in KNOWN_TSHARK_ISSUES and problems:
        assert problems == [(8388608, "Malformed Packet (Exception occurred)")], problems
        pytest.xfail(KNOWN_TSHARK_ISSUES[name][0])
    assert "_ws.malformed" not in frame.layers
    assert problems == [], f"tshark expert info on {name}: {problems}"


# --------------------------------------------------------------------------
# Our side: what tshark should show for each IE


class NtpTime(int):
    """An NTP-seconds value that tshark renders as an absolute UTC date."""


@dataclass(frozen=True)
class Flag:
    """A flag bit: tshark must show "1" if set; if clear, "0" or nothing (a bit it does not know)."""

    set: bool


Expected = str | int | bool | NtpTime | Flag | list[str] | list[int]

_DATE = re.compile(r"^(\w{3}) +(\d{1,2}), (\d{4}) (\d\d):(\d\d):(\d\d)\.(\d+) UTC$")
_MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}


def _ntp_of(text: str) -> int | None:
    match = _DATE.match(text)
    if match is None:
        return None
    mon, day, year, hh, mm, ss, _frac = match.groups()
    unix = calendar.timegm((int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss), 0, 0, 0))
    return unix + pfcp.NTP_UNIX_OFFSET


def _hexbytes(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _flags(prefix: str, value: int, enum: type[IntFlag], names: dict[str, str] | None = None) -> dict[str, Expected]:
    names = names or {}
    out: dict[str, Expected] = {}
    for member in enum:
        assert member.name is not None
        key = names.get(member.name, prefix + member.name.lower())
        out[key] = Flag(bool(value & member))
    return out


def _v4v6(prefix: str, ipv4: IPv4Address | None, ipv6: IPv6Address | None) -> dict[str, Expected]:
    return {f"{prefix}.v4": ipv4 is not None, f"{prefix}.v6": ipv6 is not None}


def _addr(out: dict[str, Expected], key: str, value: IPv4Address | IPv6Address | None) -> None:
    if value is not None:
        out[key] = str(value)


def _rule_id(kind: str, value: int) -> dict[str, Expected]:
    # Bit 8 of the first octet: predefined (1) or dynamic (0) rule (§8.2.74, .75, .54).
    return {f"pfcp.{kind}_id_flg": bool(value >> 31), f"pfcp.{kind}_id": value & 0x7FFFFFFF}


def _node_id(ie: pfcp.NodeID) -> dict[str, Expected]:
    keys = {0: "pfcp.node_id_ipv4", 1: "pfcp.node_id_ipv6", 2: "pfcp.node_id_fqdn"}
    return {"pfcp.node_id_type": int(ie.node_id_type), keys[int(ie.node_id_type)]: str(ie.value)}


def _fseid(ie: pfcp.FSEID) -> dict[str, Expected]:
    out: dict[str, Expected] = {"pfcp.seid": f"0x{ie.seid:016x}", **_v4v6("pfcp.f_seid_flags", ie.ipv4, ie.ipv6)}
    _addr(out, "pfcp.f_seid.ipv4", ie.ipv4)
    _addr(out, "pfcp.f_seid.ipv6", ie.ipv6)
    return out


def _fteid(ie: pfcp.FTEID) -> dict[str, Expected]:
    out: dict[str, Expected] = {
        "pfcp.f_teid_flags.ch": ie.choose,
        "pfcp.f_teid_flags.ch_id": ie.choose_id is not None,
        "pfcp.f_teid_flags.v4": ie.ipv4 is not None or ie.choose_v4,
        "pfcp.f_teid_flags.v6": ie.ipv6 is not None or ie.choose_v6,
    }
    if ie.teid is not None:
        out["pfcp.f_teid.teid"] = f"0x{ie.teid:08x}"
    if ie.choose_id is not None:
        out["pfcp.f_teid.choose_id"] = f"{ie.choose_id:02x}"
    _addr(out, "pfcp.f_teid.ipv4_addr", ie.ipv4)
    _addr(out, "pfcp.f_teid.ipv6_addr", ie.ipv6)
    return out


def _ue_ip(ie: pfcp.UEIPAddress) -> dict[str, Expected]:
    p = "pfcp.ue_ip_address_flag"
    out: dict[str, Expected] = {
        **_v4v6(p, ie.ipv4, ie.ipv6),
        f"{p}.sd": ie.is_destination,
        f"{p}.chv4": ie.choose_v4,
        f"{p}.chv6": ie.choose_v6,
        f"{p}.v6d": ie.ipv6_prefix_delegation_bits is not None,
        f"{p}.v6pl": ie.ipv6_prefix_length is not None,
    }
    _addr(out, "pfcp.ue_ip_addr_ipv4", ie.ipv4)
    _addr(out, "pfcp.ue_ip_addr_ipv6", ie.ipv6)
    return out


def _ohc(ie: pfcp.OuterHeaderCreation) -> dict[str, Expected]:
    # tshark reads the two description octets as one big-endian number, so
    # octet 5 bit 1 (GTP-U/UDP/IPv4) shows as 256; we keep octet 5 as the low byte.
    desc = int(ie.description)
    out: dict[str, Expected] = {"pfcp.outer_hdr_desc": ((desc & 0xFF) << 8) | (desc >> 8)}
    if ie.teid is not None:
        out["pfcp.outer_hdr_creation.teid"] = f"0x{ie.teid:08x}"
    _addr(out, "pfcp.outer_hdr_creation.ipv4", ie.ipv4)
    _addr(out, "pfcp.outer_hdr_creation.ipv6", ie.ipv6)
    if ie.port is not None:
        out["pfcp.outer_hdr_creation.port"] = ie.port
    return out


def _sdf(ie: pfcp.SDFFilter) -> dict[str, Expected]:
    out: dict[str, Expected] = {
        "pfcp.sdf_filter.fd": ie.flow_description is not None,
        "pfcp.sdf_filter.ttc": ie.tos_traffic_class is not None,
        "pfcp.sdf_filter.spi": ie.security_parameter_index is not None,
        "pfcp.sdf_filter.fl": ie.flow_label is not None,
        "pfcp.sdf_filter.bid": ie.sdf_filter_id is not None,  # BID: "SDF Filter ID present" (§8.2.5)
    }
    if ie.flow_description is not None:
        out["pfcp.flow_desc"] = ie.flow_description
        out["pfcp.flow_desc_len"] = len(ie.flow_description.encode())
    if ie.tos_traffic_class is not None:
        out["pfcp.traffic_class"] = ie.tos_traffic_class >> 8
        out["pfcp.traffic_mask"] = ie.tos_traffic_class & 0xFF
    if ie.security_parameter_index is not None:
        out["pfcp.spi"] = ie.security_parameter_index
    if ie.flow_label is not None:
        out["pfcp.flow_label"] = ie.flow_label
    if ie.sdf_filter_id is not None:
        out["pfcp.sdf_filter_id"] = ie.sdf_filter_id
    return out


def _volumes(prefix: str, ie: pfcp.VolumeThreshold | pfcp.VolumeQuota) -> dict[str, Expected]:
    out: dict[str, Expected] = {}
    for name, value in (("tovol", ie.total), ("ulvol", ie.uplink), ("dlvol", ie.downlink)):
        out[f"pfcp.{prefix}_flags.{name}"] = value is not None
        if value is not None:
            out[f"pfcp.{prefix}.{name}"] = value
    return out


def _volume_measurement(ie: pfcp.VolumeMeasurement) -> dict[str, Expected]:
    out: dict[str, Expected] = {}
    for name, value in (
        ("tovol", ie.total_volume),
        ("ulvol", ie.uplink_volume),
        ("dlvol", ie.downlink_volume),
        ("tonop", ie.total_packets),
        ("ulnop", ie.uplink_packets),
        ("dlnop", ie.downlink_packets),
    ):
        out[f"pfcp.volume_measurement_flags.{name}"] = value is not None
        if value is not None:
            out[f"pfcp.volume_measurement.{name}"] = value
    return out


def _fq_csid(ie: pfcp.FQCSID) -> dict[str, Expected]:
    out: dict[str, Expected] = {"pfcp.num_csid": len(ie.csids), "pfcp.csid": list(ie.csids)}
    if isinstance(ie.node, IPv4Address):
        out.update({"pfcp.fq_csid_node_id_type": 0, "pfcp.q_csid_node_id.ipv4": str(ie.node)})
    elif isinstance(ie.node, IPv6Address):
        out.update({"pfcp.fq_csid_node_id_type": 1, "pfcp.q_csid_node_id.ipv6": str(ie.node)})
    else:  # MCC*1000+MNC in the top 20 bits, an integer in the low 12 (§8.2.46)
        out.update(
            {
                "pfcp.fq_csid_node_id_type": 2,
                "pfcp.q_csid_node_id.mcc_mnc": ie.node >> 12,
                "pfcp.q_csid_node_id.int": ie.node & 0xFFF,
            }
        )
    if ie.node_type is not None:
        out["pfcp.fq_csid_node_type"] = ie.node_type
    return out


def _remote_peer(ie: pfcp.RemoteGTPUPeer) -> dict[str, Expected]:
    p = "pfcp.remote_gtp_u_peer_flags"
    out: dict[str, Expected] = {
        **_v4v6(p, ie.ipv4, ie.ipv6),
        f"{p}.di": ie.destination_interface is not None,
        f"{p}.ni": ie.network_instance is not None,
    }
    _addr(out, "pfcp.node_id_ipv4", ie.ipv4)
    _addr(out, "pfcp.node_id_ipv6", ie.ipv6)
    if ie.destination_interface is not None:
        out["pfcp.dst_interface"] = ie.destination_interface
    if ie.network_instance is not None:
        out["pfcp.network_instance"] = ie.network_instance
    return out


def _upiri(ie: pfcp.UserPlaneIPResourceInformation) -> dict[str, Expected]:
    p = "pfcp.upiri_flags"
    out: dict[str, Expected] = {
        f"{p}.v4": ie.ipv4 is not None,
        f"{p}.v6": ie.ipv6 is not None,
        f"{p}.assoni": ie.network_instance is not None,
        f"{p}.assosi": ie.source_interface is not None,
        "pfcp.upiri.teidri": ie.teid_range_bits,
    }
    if ie.teid_range is not None:
        out["pfcp.upiri.teid_range"] = ie.teid_range
    _addr(out, "pfcp.upiri.ipv4_addr", ie.ipv4)
    _addr(out, "pfcp.upiri.ipv6_addr", ie.ipv6)
    if ie.network_instance is not None:
        out["pfcp.network_instance"] = ie.network_instance
    if ie.source_interface is not None:
        out["pfcp.source_interface"] = ie.source_interface
    return out


def _user_id(ie: pfcp.UserID) -> dict[str, Expected]:
    p = "pfcp.user_id.flags"
    out: dict[str, Expected] = {
        f"{p}.imsif": ie.imsi is not None,
        f"{p}.imeif": ie.imei is not None,
        f"{p}.msisdnf": ie.msisdn is not None,
        f"{p}.naif": ie.nai is not None,
    }
    if ie.imsi is not None:
        out["e212.imsi"] = ie.imsi
    if ie.imei is not None:
        out["pfcp.user_id.imei"] = ie.imei
    if ie.msisdn is not None:
        out["e164.msisdn"] = ie.msisdn
    if ie.nai is not None:
        out["pfcp.user_id.nai"] = ie.nai
    return out


def _trace(ie: pfcp.TraceInformation) -> dict[str, Expected]:
    out: dict[str, Expected] = {
        "e212.mcc": int(ie.mcc),
        "e212.mnc": int(ie.mnc),
        "pfcp.trace_information.traceid": ie.trace_id,
        "pfcp.trace_information.trigger_events": _hexbytes(ie.triggering_events),
        "pfcp.trace_information.session_trace_depth": ie.session_trace_depth,
        "pfcp.trace_information.list_interfaces": _hexbytes(ie.interfaces),
    }
    if isinstance(ie.collection_entity, IPv4Address):
        out["pfcp.trace_information.ipv4"] = str(ie.collection_entity)
    elif isinstance(ie.collection_entity, IPv6Address):
        out["pfcp.trace_information.ipv6"] = str(ie.collection_entity)
    return out


def _source_ip(ie: pfcp.SourceIPAddress) -> dict[str, Expected]:
    # tshark 4.0 reuses the F-SEID flag fields for this IE's V4/V6 bits.
    out: dict[str, Expected] = {
        **_v4v6("pfcp.f_seid_flags", ie.ipv4, ie.ipv6),
        "pfcp.source_ip_address.flags.mpl": ie.prefix_length is not None,
    }
    _addr(out, "pfcp.source_ip_address.ipv4", ie.ipv4)
    _addr(out, "pfcp.source_ip_address.ipv6", ie.ipv6)
    if ie.prefix_length is not None:
        out["pfcp.source_ip_address.mpl"] = ie.prefix_length
    return out


def _failed_rule(ie: pfcp.FailedRuleID) -> dict[str, Expected]:
    out: dict[str, Expected] = {"pfcp.failed_rule_id_type": int(ie.rule_type)}
    kind = ie.rule_type.name.lower()
    if kind in ("far", "urr", "qer"):
        out.update(_rule_id(kind, ie.rule_id))
    else:
        out[f"pfcp.{kind}_id"] = ie.rule_id
    return out


def _pfd_contents(ie: pfcp.IE) -> dict[str, Expected]:
    assert isinstance(ie, pfcp.OpaqueIE)
    raw = ie.payload
    out: dict[str, Expected] = {"pfcp.pfd_contents_flags.fd": bool(raw[0] & 0x01)}
    if raw[0] & 0x01:
        n = int.from_bytes(raw[2:4], "big")
        out["pfcp.flow_desc_len"] = n
        out["pfcp.flow_desc"] = raw[4 : 4 + n].decode()
    return out


def _timer(ie: pfcp.Timer | pfcp.GracefulReleasePeriod | pfcp.DLBufferingDuration) -> dict[str, Expected]:
    return {"pfcp.timer_unit": int(ie.unit), "pfcp.timer_value": ie.value}


def _value(key: str) -> Callable[[Any], dict[str, Expected]]:
    return lambda ie: {key: int(ie.value)}


def _time(key: str) -> Callable[[Any], dict[str, Expected]]:
    return lambda ie: {key: NtpTime(ie.value)}


_USAGE_TRIGGER_NAMES = {
    "IMMER": "pfcp.usage_report_trigger.immer",
    "TERMR": "pfcp.usage_report_trigger.term",
    "MONIT": "pfcp.usage_report_trigger.monit",
}

_NO_FIELDS: Callable[[Any], dict[str, Expected]] = lambda ie: {}  # noqa: E731 - grouped: children carry the data

EXPECTED: dict[type[pfcp.IE], Callable[[Any], dict[str, Expected]]] = {
    pfcp.NodeID: _node_id,
    pfcp.FSEID: _fseid,
    pfcp.FTEID: _fteid,
    pfcp.UEIPAddress: _ue_ip,
    pfcp.OuterHeaderCreation: _ohc,
    pfcp.SDFFilter: _sdf,
    pfcp.FQCSID: _fq_csid,
    pfcp.RemoteGTPUPeer: _remote_peer,
    pfcp.UserPlaneIPResourceInformation: _upiri,
    pfcp.UserID: _user_id,
    pfcp.TraceInformation: _trace,
    pfcp.SourceIPAddress: _source_ip,
    pfcp.FailedRuleID: _failed_rule,
    pfcp.VolumeMeasurement: _volume_measurement,
    pfcp.VolumeThreshold: lambda ie: _volumes("volume_threshold", ie),
    pfcp.VolumeQuota: lambda ie: _volumes("volume_quota", ie),
    pfcp.RecoveryTimeStamp: _time("pfcp.recovery_time_stamp"),
    pfcp.StartTime: _time("pfcp.start_time"),
    pfcp.EndTime: _time("pfcp.end_time"),
    pfcp.TimeOfFirstPacket: _time("pfcp.time_of_first_packet"),
    pfcp.TimeOfLastPacket: _time("pfcp.time_of_last_packet"),
    pfcp.MonitoringTime: _time("pfcp.monitoring_time"),
    pfcp.Cause: _value("pfcp.cause"),
    pfcp.SourceInterface: _value("pfcp.source_interface"),
    pfcp.DestinationInterface: _value("pfcp.dst_interface"),
    pfcp.TGPPInterfaceType: _value("pfcp.tgpp_interface_type"),
    pfcp.PDNType: _value("pfcp.pdn_type"),
    pfcp.OuterHeaderRemoval: lambda ie: {"pfcp.out_hdr_desc": int(ie.description)},
    pfcp.PDRID: _value("pfcp.pdr_id"),
    pfcp.FARID: lambda ie: _rule_id("far", ie.value),
    pfcp.URRID: lambda ie: _rule_id("urr", ie.value),
    pfcp.QERID: lambda ie: _rule_id("qer", ie.value),
    pfcp.BARID: _value("pfcp.bar_id"),
    pfcp.Precedence: _value("pfcp.precedence"),
    pfcp.QERCorrelationID: _value("pfcp.qer_correlation_id"),
    pfcp.OffendingIE: _value("pfcp.offending_ie"),
    pfcp.SequenceNumber: _value("pfcp.sequence_number"),
    pfcp.Metric: _value("pfcp.metric"),
    pfcp.MeasurementPeriod: _value("pfcp.measurement_period"),
    pfcp.DurationMeasurement: _value("pfcp.duration_measurement"),
    pfcp.TimeThreshold: _value("pfcp.time_threshold"),
    pfcp.TimeQuota: _value("pfcp.time_quota"),
    pfcp.QuotaHoldingTime: _value("pfcp.quota_holding_time"),
    pfcp.URSEQN: _value("pfcp.ur_seqn"),
    pfcp.QueryURRReference: _value("pfcp.query_urr_reference"),
    pfcp.UserPlaneInactivityTimer: _value("pfcp.user_plane_inactivity_time"),
    pfcp.AveragingWindow: _value("pfcp.averaging_window"),
    pfcp.PagingPolicyIndicator: _value("pfcp.ppi"),
    pfcp.DownlinkDataNotificationDelay: _value("pfcp.dl_data_notification_delay"),
    pfcp.SuggestedBufferingPacketsCount: _value("pfcp.suggested_buffering_packets_count.packet_count"),
    pfcp.DLBufferingSuggestedPacketCount: _value("pfcp.packet_count"),
    pfcp.RQI: lambda ie: {"pfcp.rqi_flag": ie.value},
    pfcp.QFI: lambda ie: {"pfcp.qfi_value": ie.value},
    pfcp.NetworkInstance: lambda ie: {"pfcp.network_instance": ie.value},
    pfcp.APNDNN: lambda ie: {"pfcp.apn_dnn": ie.value},
    pfcp.ApplicationID: lambda ie: {"pfcp.application_id_str": ie.value},
    pfcp.GateStatus: lambda ie: {"pfcp.gate_status.ulgate": int(ie.ul), "pfcp.gate_status.dlgate": int(ie.dl)},
    pfcp.MBR: lambda ie: {"pfcp.ul_mbr": ie.ul, "pfcp.dl_mbr": ie.dl},
    pfcp.GBR: lambda ie: {"pfcp.ul_gbr": ie.ul, "pfcp.dl_gbr": ie.dl},
    pfcp.TransportLevelMarking: lambda ie: {"pfcp.traffic_class": ie.tos, "pfcp.traffic_mask": ie.mask},
    pfcp.SNSSAI: lambda ie: {
        "pfcp.s_nssai_sst.sst": f"{ie.sst:02x}",
        "pfcp.s_nssai_sst.sd": _hexbytes(ie.sd.to_bytes(3, "big")),
    },
    pfcp.Timer: _timer,
    pfcp.GracefulReleasePeriod: _timer,
    pfcp.DLBufferingDuration: _timer,
    pfcp.DownlinkDataServiceInformation: lambda ie: {
        "pfcp.dl_data_service_inf.ppi": ie.paging_policy_indication is not None,
        "pfcp.dl_data_service_inf.qfii": ie.qfi is not None,
        **({} if ie.qfi is None else {"pfcp.qfi_value": ie.qfi}),
    },
    pfcp.AdditionalUsageReportsInformation: lambda ie: {
        "pfcp.additional_usage_reports_information_auri": ie.auri,
        "pfcp.additional_usage_reports_information_value": ie.number_of_reports or 0,
    },
    pfcp.ApplyAction: lambda ie: _flags("pfcp.apply_action.", ie.value, pfcp.ApplyActionFlags),
    pfcp.ReportingTriggers: lambda ie: _flags("pfcp.reporting_triggers_flags.", ie.value, pfcp.ReportingTriggersFlags),
    pfcp.UsageReportTrigger: lambda ie: _flags(
        "pfcp.usage_report_trigger_flags.", ie.value, pfcp.UsageReportTriggerFlags, _USAGE_TRIGGER_NAMES
    ),
    pfcp.MeasurementMethod: lambda ie: _flags(
        "pfcp.measurement_method_flags.",
        ie.value,
        pfcp.MeasurementMethodFlags,
        {"VOLUM": "pfcp.measurement_method_flags.volume"},
    ),
    pfcp.MeasurementInformation: lambda ie: _flags(
        "pfcp.measurement_info.", ie.value, pfcp.MeasurementInformationFlags
    ),
    pfcp.UsageInformation: lambda ie: _flags("pfcp.usage_information.", ie.value, pfcp.UsageInformationFlags),
    pfcp.ReportType: lambda ie: _flags("pfcp.report_type.", ie.value, pfcp.ReportTypeFlags),
    pfcp.NodeReportType: lambda ie: _flags("pfcp.node_report_type.", ie.value, pfcp.NodeReportTypeFlags),
    pfcp.PFCPSMReqFlags: lambda ie: _flags("pfcp.smreq_flags.", ie.value, pfcp.PFCPSMReqFlagsValue),
    pfcp.PFCPSRRspFlags: lambda ie: _flags("pfcp.srrsp_flags.", ie.value, pfcp.PFCPSRRspFlagsValue),
    pfcp.OCIFlags: lambda ie: _flags("pfcp.oci_flags.", ie.value, pfcp.OCIFlagsValue),
    pfcp.PFCPAssociationReleaseRequest: lambda ie: _flags(
        "pfcp.assoc_rel_req.", ie.value, pfcp.PFCPAssociationReleaseRequestFlags
    ),
    pfcp.CPFunctionFeatures: lambda ie: _flags("pfcp.cp_function_features.", ie.value, pfcp.CPFeatures),
    pfcp.UPFunctionFeatures: lambda ie: _flags(
        "pfcp.up_function_features.",
        ie.value,
        pfcp.UPFeatures,
        {"MTE": "pfcp.up_function_features.mte_n4", "QUASF": "pfcp.up_function_features.quoaf"},
    ),
    pfcp.IE_CLASSES[IEType.PFD_CONTENTS]: _pfd_contents,
}


def _resolve(key: str, fields: Fields) -> str:
    for name in (key, *ALIASES.get(key, ())):
        if name in fields:
            return name
    return key


def _matches(want: Expected, got: list[str]) -> bool:
    if isinstance(want, list):
        items: list[Expected] = list(want)
        return len(items) == len(got) and all(_matches(w, [g]) for w, g in zip(items, got, strict=True))
    if len(got) != 1:
        return False
    value = got[0]
    if isinstance(want, Flag):
        return value == ("1" if want.set else "0")
    if isinstance(want, bool):
        return value == ("1" if want else "0")
    if isinstance(want, NtpTime):
        return _ntp_of(value) == int(want)
    if isinstance(want, int):
        try:
            return int(value, 0) == want
        except ValueError:
            return False
    return value == want


def _compare(ours: pfcp.IE, theirs: DissectedIE, path: str, skip: frozenset[str], problems: list[str]) -> None:
    name = f"{path}/{type(ours).__name__}"
    if theirs.type != ours.ie_type:
        problems.append(f"{name}: tshark sees IE type {theirs.type}, we sent {ours.ie_type}")
        return
    payload = ours.encode_payload()
    if theirs.length != len(payload):
        problems.append(f"{name}: tshark sees length {theirs.length}, we sent {len(payload)}")
    grouped = is_grouped(ours)
    if grouped:
        expected: dict[str, Expected] = {}
    elif type(ours) in EXPECTED:
        expected = EXPECTED[type(ours)](ours)
    else:
        problems.append(f"{name}: no tshark expectation written for this IE class")
        expected = {}
    for key, want in expected.items():
        if key in skip:
            continue
        got = theirs.fields.get(_resolve(key, theirs.fields))
        if got is None:
            if isinstance(want, Flag) and not want.set:
                continue  # a clear bit tshark does not know about
            problems.append(f"{name}: tshark shows no {key} (we sent {want!r}); it has {sorted(theirs.fields)}")
        elif not _matches(want, got):
            problems.append(f"{name}: {key} is {got} in tshark, {want!r} in ours")
    kids = children(ours) if grouped else []
    if len(kids) != len(theirs.children):
        problems.append(f"{name}: tshark sees {len(theirs.children)} child IEs, we sent {len(kids)}")
    for i, (mine, its) in enumerate(zip(kids, theirs.children, strict=False)):
        _compare(mine, its, f"{name}[{i}]", skip, problems)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_fields_match(dissected: dict[str, tuple[bytes, Frame]], name: str) -> None:
    data, frame = _case(dissected, name)
    msg = pfcp.decode(data)
    h = frame.header
    problems: list[str] = []
    want_header: dict[str, Expected] = {
        "pfcp.version": 1,
        "pfcp.msg_type": msg.message_type,
        "pfcp.length": len(data) - 4,
        "pfcp.seqno": msg.sequence,
        "pfcp.s": msg.seid is not None,
        "pfcp.mp_flag": msg.priority is not None,
        "pfcp.fo_flag": False,
    }
    if msg.seid is not None:
        want_header["pfcp.seid"] = f"0x{msg.seid:016x}"
    if msg.priority is not None:
        want_header["pfcp.mp"] = msg.priority
    for key, want in want_header.items():
        if key not in h or not _matches(want, h[key]):
            problems.append(f"header: {key} is {h.get(key)} in tshark, {want!r} in ours")
    assert body(msg) == data[8 if msg.seid is None else 16 :]
    ours = children(msg)
    if len(ours) != len(frame.ies):
        problems.append(f"tshark sees {len(frame.ies)} top-level IEs, we sent {len(ours)}")
    skip = KNOWN_TSHARK_ISSUES.get(name, ("", frozenset[str]()))[1]
    for i, (mine, its) in enumerate(zip(ours, frame.ies, strict=False)):
        _compare(mine, its, f"{type(msg).__name__}[{i}]", skip, problems)
    assert problems == [], "\n".join(problems)


def test_every_ie_class_of_the_corpus_was_checked(dissected: dict[str, tuple[bytes, Frame]]) -> None:
    """The corpus exercises a broad set of IE types; none slipped through unchecked."""
    seen: set[int] = set()

    def walk(obj: pfcp.Message | pfcp.IE) -> None:
        for child in children(obj):
            seen.add(child.ie_type)
            if is_grouped(child):
                walk(child)

    for data, _frame in dissected.values():
        walk(pfcp.decode(data))
    assert len(seen) >= 90, f"only {len(seen)} IE types in the corpus"
    unchecked = {
        IEType(t).name
        for t in seen
        if t not in OPAQUE_GROUPED
        and not issubclass(pfcp.IE_CLASSES[t], pfcp.GroupedIE)
        and pfcp.IE_CLASSES[t] not in EXPECTED
    }
    assert unchecked == set()
