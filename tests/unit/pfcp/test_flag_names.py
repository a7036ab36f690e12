"""pfcp.flag_names: the names of the flags set in a Flag value."""

from __future__ import annotations

import pfcp


def test_names_in_declaration_order() -> None:
    assert pfcp.flag_names(pfcp.UPFeatures.BUNDL | pfcp.UPFeatures.FTUP) == ("FTUP", "BUNDL")
    both = pfcp.UsageReportTriggerFlags.TERMR | pfcp.UsageReportTriggerFlags.VOLTH
    assert set(pfcp.flag_names(both)) == {"TERMR", "VOLTH"}


def test_nothing_set() -> None:
    assert pfcp.flag_names(pfcp.UPFeatures(0)) == ()
