"""PFCP session responses and reports -> facts the control plane records.

Pure functions over decoded messages: the F-TEIDs a UPF chose (Created PDR,
§7.5.3.2), usage reports (§7.5.8.3, §7.5.5.2, §7.5.7.2) and the cause of a
response with what a rejection names (Failed Rule ID §8.2.80, Offending IE §8.2.22).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pfcp
from pfcp.jsonview import ie_type_name

__all__ = ["UsageFacts", "cause_of", "created_fteids", "rejection_text", "usage_facts"]

SessionResponse = (
    pfcp.SessionEstablishmentResponse
    | pfcp.SessionModificationResponse
    | pfcp.SessionDeletionResponse
    | pfcp.SessionReportResponse
)
UsageReport = pfcp.UsageReportSRR | pfcp.UsageReportSMR | pfcp.UsageReportSDR


def created_fteids(
    response: pfcp.SessionEstablishmentResponse | pfcp.SessionModificationResponse,
) -> dict[int, tuple[int, str]]:
    """PDR ID -> (TEID, address) of each Created PDR with a local F-TEID: what the
    UPF chose for a CH request (§5.5.3). The IPv4 address wins when both are given."""
    out: dict[int, tuple[int, str]] = {}
    for created in response.created_pdr:
        fteid = created.local_f_teid
        if fteid is None or fteid.teid is None:
            continue
        address = fteid.ipv4 if fteid.ipv4 is not None else fteid.ipv6
        if address is None:
            raise ValueError(f"Created PDR {created.pdr_id.value}: F-TEID {fteid.teid:#x} without an address")
        out[created.pdr_id.value] = (fteid.teid, str(address))
    return out


@dataclass(frozen=True, slots=True)
class UsageFacts:
    """One usage report, as the ``usage_records`` table stores it."""

    urr_id: int
    ur_seqn: int
    #: Usage Report Trigger flag names (§8.2.41), e.g. ("VOLTH",) or ("TERMR",).
    triggers: tuple[str, ...]
    start_time: datetime | None
    end_time: datetime | None
    volume_ul: int | None
    volume_dl: int | None
    volume_total: int | None
    packets_ul: int | None
    packets_dl: int | None
    duration_s: int | None


def _ntp_time(ie: pfcp.StartTime | pfcp.EndTime | None) -> datetime | None:
    # NTP seconds (§8.2.52, §8.2.53); values below the offset are era 1 (after 2036, RFC 5905).
    if ie is None:
        return None
    seconds = ie.value - pfcp.NTP_UNIX_OFFSET
    if seconds < 0:
        seconds += 1 << 32
    return datetime.fromtimestamp(seconds, UTC)


def usage_facts(reports: Iterable[UsageReport]) -> list[UsageFacts]:
    """The usage reports of a Session Report Request, Modification Response or
    Deletion Response (their ``usage_report`` field), in message order."""
    out: list[UsageFacts] = []
    for report in reports:
        vol = report.volume_measurement
        duration = report.duration_measurement
        out.append(
            UsageFacts(
                urr_id=report.urr_id.value,
                ur_seqn=report.ur_seqn.value,
                triggers=_triggers(report.usage_report_trigger),
                start_time=_ntp_time(report.start_time),
                end_time=_ntp_time(report.end_time),
                volume_ul=None if vol is None else vol.uplink_volume,
                volume_dl=None if vol is None else vol.downlink_volume,
                volume_total=None if vol is None else vol.total_volume,
                packets_ul=None if vol is None else vol.uplink_packets,
                packets_dl=None if vol is None else vol.downlink_packets,
                duration_s=None if duration is None else duration.value,
            )
        )
    return out


def cause_of(response: SessionResponse) -> int:
    """The Cause value of a response (§8.2.1); 1 is Request accepted."""
    return int(response.cause.value)


def rejection_text(response: SessionResponse) -> str:
    """The cause of a response with what it blames, for error messages:
    "Rule creation/modification Failure (73), Failed Rule ID FAR 2"."""
    value = response.cause.value
    try:
        name = pfcp.CauseValue(value).name.replace("_", " ").capitalize()
    except ValueError:
        name = "Cause"
    parts = [f"{name} ({int(value)})"]
    failed = getattr(response, "failed_rule_id", None)
    if isinstance(failed, pfcp.FailedRuleID):
        parts.append(f"Failed Rule ID {pfcp.RuleIDType(failed.rule_type).name} {failed.rule_id}")
    if response.offending_ie is not None:
        ie_type = response.offending_ie.value
        parts.append(f"Offending IE {ie_type_name(ie_type)} ({ie_type})")
    return ", ".join(parts)


def _triggers(ie: pfcp.UsageReportTrigger) -> tuple[str, ...]:
    return pfcp.flag_names(ie.value)
