"""The one narrow interface between the UPF agent and a dataplane.

Theory of operation (desired state vs actual state, as Ligato vpp-agent's
KVScheduler does it):

* The agent keeps, per PFCP session, the :class:`~user_plane.session.SessionState`
  the session *should* hold. It hands a driver the whole new state of a session
  with :meth:`Driver.install` (create or replace) and takes a session away with
  :meth:`Driver.remove`. A driver diffs against what it holds itself; the agent
  never sends deltas, so a lost or repeated call cannot leave a half change.
* :meth:`Driver.installed` is the driver's *actual* state. After a driver
  restart (or any failure) the agent's resync compares desired with actual and
  re-installs or removes until they match.
* Usage measurement (URRs) and downlink buffering happen in the dataplane; what
  the CP function must hear about arrives as :data:`DriverEvent` objects through
  the handler the agent sets with :meth:`Driver.set_event_handler`.

Times handed to and returned by drivers are UNIX seconds (``time.time()``);
:func:`ntp_seconds` converts them for the PFCP time IEs (§8.2.52 ff.: the
32-bit NTP seconds field).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol, TypeVar

import pfcp

from .session import SessionState

__all__ = [
    "NTP_UNIX_OFFSET",
    "Direction",
    "DownlinkData",
    "Driver",
    "DriverError",
    "DriverEvent",
    "SessionUsage",
    "UsageReport",
    "ntp_seconds",
]

#: Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (UNIX epoch).
NTP_UNIX_OFFSET = 2_208_988_800


def ntp_seconds(unix_time: float) -> int:
    """The NTP seconds field (mod 2**32) for a UNIX time (§8.2.52-§8.2.53, §8.2.46-§8.2.47)."""
    return (int(unix_time) + NTP_UNIX_OFFSET) & 0xFFFFFFFF


class Direction(IntEnum):
    """Traffic direction as the URR and QER see it."""

    UPLINK = 0
    DOWNLINK = 1


class DriverError(Exception):
    """The dataplane could not apply a desired state.

    With ``failed_rule`` (the PDR or FAR the dataplane cannot apply) the agent answers
    73 Rule creation/modification failure with that Failed Rule ID (§7.5.3.1, Table
    8.2.1-1); without it, 77 System failure."""

    def __init__(self, message: str, failed_rule: pfcp.FailedRuleID | None = None) -> None:
        super().__init__(message)
        self.failed_rule = failed_rule


_R = TypeVar("_R", pfcp.UsageReportSMR, pfcp.UsageReportSDR, pfcp.UsageReportSRR)


@dataclass(frozen=True, slots=True)
class UsageReport:
    """One usage report of one URR (§5.2.2.3), independent of the message it travels in.

    Volumes and packets are what was measured between ``start_time`` and
    ``end_time``; ``duration`` is the measured time in seconds (§8.2.44).
    """

    urr_id: int
    ur_seqn: int
    trigger: pfcp.UsageReportTriggerFlags
    start_time: float
    end_time: float
    ul_bytes: int = 0
    dl_bytes: int = 0
    ul_packets: int = 0
    dl_packets: int = 0
    duration: int | None = None
    first_packet: float | None = None
    last_packet: float | None = None
    usage_information: pfcp.UsageInformationFlags | None = None
    query_urr_reference: int | None = None
    #: The URR measures volume (Measurement Method VOLUM): Volume Measurement is reported.
    volume_measured: bool = True
    #: The CP asked for packet counts too (Measurement Information MNOP, §8.2.44).
    packets_measured: bool = True

    @property
    def total_bytes(self) -> int:
        return self.ul_bytes + self.dl_bytes

    def to_ie(self, cls: type[_R]) -> _R:
        """The Usage Report IE of a Session Modification Response (SMR), Deletion
        Response (SDR) or Report Request (SRR), Tables 7.5.5.2-1, 7.5.7.2-1, 7.5.8.3-1."""
        fields: dict[str, Any] = {
            "urr_id": pfcp.URRID(self.urr_id),
            "ur_seqn": pfcp.URSEQN(self.ur_seqn),
            "usage_report_trigger": pfcp.UsageReportTrigger(self.trigger),
            "start_time": pfcp.StartTime(ntp_seconds(self.start_time)),
            "end_time": pfcp.EndTime(ntp_seconds(self.end_time)),
        }
        if self.volume_measured:
            packets = self.packets_measured
            fields["volume_measurement"] = pfcp.VolumeMeasurement(
                total_volume=self.total_bytes,
                uplink_volume=self.ul_bytes,
                downlink_volume=self.dl_bytes,
                total_packets=self.ul_packets + self.dl_packets if packets else None,
                uplink_packets=self.ul_packets if packets else None,
                downlink_packets=self.dl_packets if packets else None,
            )
        if self.duration is not None:
            fields["duration_measurement"] = pfcp.DurationMeasurement(self.duration)
        if self.first_packet is not None:
            fields["time_of_first_packet"] = pfcp.TimeOfFirstPacket(ntp_seconds(self.first_packet))
        if self.last_packet is not None:
            fields["time_of_last_packet"] = pfcp.TimeOfLastPacket(ntp_seconds(self.last_packet))
        if self.usage_information is not None:
            fields["usage_information"] = pfcp.UsageInformation(self.usage_information)
        if self.query_urr_reference is not None and cls is not pfcp.UsageReportSDR:
            fields["query_urr_reference"] = pfcp.QueryURRReference(self.query_urr_reference)
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class SessionUsage:
    """Usage reports a dataplane raised on its own (thresholds, quotas, periodic,
    inactivity...): the agent sends them in a Session Report Request (USAR)."""

    up_seid: int
    reports: tuple[UsageReport, ...]


@dataclass(frozen=True, slots=True)
class DownlinkData:
    """The first downlink packet was buffered for a PDR whose FAR has BUFF and NOCP
    (§5.2.3.1): the agent sends a Downlink Data Report (DLDR)."""

    up_seid: int
    pdr_id: int
    qfi: int | None = None


DriverEvent = SessionUsage | DownlinkData


class Driver(Protocol):
    """What the agent needs of a dataplane. Implementations: ``software`` (this
    package's :mod:`user_plane.software`), ``vpp`` (a later issue)."""

    #: The driver's name as in the agent's configuration (``software``, ``vpp``).
    name: str

    @property
    def features(self) -> pfcp.UPFeatures:
        """UP Function Features (§8.2.25) this dataplane really implements."""
        ...

    async def start(self) -> None:
        """Bring the dataplane up (interfaces, sockets). Holds no session after start."""
        ...

    async def stop(self) -> None:
        """Take the dataplane down; every session it held is gone."""
        ...

    def set_event_handler(self, handler: Callable[[DriverEvent], None]) -> None:
        """Where :data:`DriverEvent` objects go (called on the event loop)."""
        ...

    def install(self, state: SessionState, end_marker_fars: Collection[int] = ()) -> None:
        """Make the dataplane hold exactly ``state`` for session ``state.up_seid``
        (create or replace). Measurements, token buckets and buffers of rules that
        persist are kept. ``end_marker_fars``: FARs whose old path gets a GTP-U End
        Marker before the new state applies (SNDEM, §8.2.58). Buffered downlink
        packets of a FAR that left BUFF are sent (or dropped, if it became DROP).
        Raises :class:`DriverError` leaving the previous state in force."""
        ...

    def take_removed_reports(self, up_seid: int) -> list[UsageReport]:
        """Final reports (TERMR) of the URRs that :meth:`install` removed from the session
        since the last call: they go in the Session Modification Response (§7.5.5.2)."""
        ...

    def remove(self, up_seid: int) -> list[UsageReport]:
        """Remove a session; returns the final usage report of each URR (TERMR)."""
        ...

    def query(
        self, up_seid: int, urr_ids: Collection[int] | None = None, reference: int | None = None
    ) -> list[UsageReport]:
        """Immediate reports (IMMER) for ``urr_ids`` (None: every URR), without
        stopping measurement (Query URR, QAURR, §7.5.4)."""
        ...

    def drop_buffered(self, up_seid: int) -> int:
        """Drop the session's buffered downlink packets (DROBU, §8.2.59); returns how many."""
        ...

    def installed(self) -> Mapping[int, SessionState]:
        """Actual state: the session states the dataplane holds now, by UP SEID."""
        ...
