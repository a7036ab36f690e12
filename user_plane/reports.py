"""PFCP messages the UPF agent builds from dataplane events and plan rejections.

* A :class:`~user_plane.driver.SessionUsage` event is a Session Report Request
  (§7.5.8) with Report Type USAR and one Usage Report IE (Table 7.5.8.3-1) per
  report; a :class:`~user_plane.driver.DownlinkData` event one with DLDR and a
  Downlink Data Report (Table 7.5.8.2-1): the PDR ID, and the QFI in Downlink
  Data Service Information (§8.2.27) when the dataplane knows it.
* A :class:`~user_plane.session.Rejection` carries the Offending IE and the
  Failed Rule ID (§8.2.80) the response needs.
"""

from __future__ import annotations

from typing import Any

import pfcp

from .driver import DownlinkData, DriverEvent, SessionUsage
from .session import Rejection

__all__ = ["rejection_ies", "session_report"]


def session_report(cp_seid: int, event: DriverEvent) -> pfcp.SessionReportRequest:
    """The Session Report Request (§7.5.8) for a dataplane event."""
    if isinstance(event, SessionUsage):
        return pfcp.SessionReportRequest(
            seid=cp_seid,
            report_type=pfcp.ReportType(pfcp.ReportTypeFlags.USAR),
            usage_report=tuple(r.to_ie(pfcp.UsageReportSRR) for r in event.reports),
        )
    assert isinstance(event, DownlinkData)
    service = () if event.qfi is None else (pfcp.DownlinkDataServiceInformation(qfi=event.qfi),)
    return pfcp.SessionReportRequest(
        seid=cp_seid,
        report_type=pfcp.ReportType(pfcp.ReportTypeFlags.DLDR),
        downlink_data_report=pfcp.DownlinkDataReport(
            pdr_id=(pfcp.PDRID(event.pdr_id),), downlink_data_service_information=service
        ),
    )


def rejection_ies(rejection: Rejection) -> dict[str, Any]:
    """The Offending IE and Failed Rule ID of a rejected request's response."""
    ies: dict[str, Any] = {}
    if rejection.offending_ie is not None:
        ies["offending_ie"] = pfcp.OffendingIE(rejection.offending_ie)
    if rejection.failed_rule is not None:
        ies["failed_rule_id"] = rejection.failed_rule
    return ies
