"""What session procedures take and return: plain values, no ORM objects.

The gRPC servicer (and the CLI, the simulator, the benchmark) speak these; the
database rows behind them never leave :mod:`control_plane.services`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = ["ModifyRequest", "SessionApi", "SessionRequest", "SessionView", "UsageView", "usage_view"]


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """A PDU session to establish (TS 23.502 §4.3.2.2: what the SMF knows when it selects a UPF)."""

    supi: str
    dnn: str
    snssai: str
    #: Tracking Area where the UE is, "MCC-MNC-TAC": selects the edge site.
    tai: str
    pdu_session_id: int = 1
    #: The gNB's downlink F-TEID; None until the RAN answers (downlink buffers meanwhile).
    gnb_teid: int | None = None
    gnb_address: str | None = None


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    """Changes to a session; a field left None is unchanged."""

    #: Handover: the new gNB's downlink F-TEID (both or neither).
    gnb_teid: int | None = None
    gnb_address: str | None = None
    #: The UE moved: may move the session to another site's UPF.
    tai: str | None = None
    #: Another policy by name (QoS change, edge breakout rules added or removed).
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session as the control plane's database holds it."""

    supi: str
    pdu_session_id: int
    dnn: str
    snssai: str
    tai: str
    state: str
    ue_ipv4: str | None
    ue_ipv6: str | None
    upf: str | None
    site: str | None
    cp_seid: int
    up_seid: int | None
    #: The UPF's uplink F-TEID (N3), which the gNB sends to.
    n3_teid: int | None
    n3_address: str | None
    gnb_teid: int | None
    gnb_address: str | None
    policy: str | None
    created_at: datetime
    updated_at: datetime
    last_cause: int | None = None
    #: Filled by a deletion only: the final usage reports (TERMR) the UPF sent in its Session
    #: Deletion Response (TS 29.244 §7.5.7.2), so the caller gets them although the session is gone.
    final_usage: tuple[UsageView, ...] = ()


@dataclass(frozen=True, slots=True)
class UsageView:
    """One usage report the UPF sent, as stored (deduplicated by UR-SEQN)."""

    urr_id: int
    ur_seqn: int
    triggers: tuple[str, ...]
    volume_ul: int | None
    volume_dl: int | None
    volume_total: int | None
    duration_s: int | None
    final: bool
    recorded_at: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    upf: str = ""


def usage_view(record: Mapping[Any, Any]) -> UsageView:
    """A usage_records row as a :class:`UsageView`."""
    return UsageView(
        urr_id=record["urr_id"],
        ur_seqn=record["ur_seqn"],
        triggers=tuple(record["triggers"] or ()),
        volume_ul=record["volume_ul"],
        volume_dl=record["volume_dl"],
        volume_total=record["volume_total"],
        duration_s=record["duration_s"],
        final=record["final"],
        recorded_at=record["recorded_at"],
        start_time=record["start_time"],
        end_time=record["end_time"],
        upf=record["upf_node_id"],
    )


class SessionApi(Protocol):
    """The session procedures the northbound API calls (control_plane.services.sessions)."""

    async def establish(self, request: SessionRequest) -> SessionView: ...

    async def modify(self, supi: str, pdu_session_id: int, request: ModifyRequest) -> SessionView: ...

    async def delete(self, supi: str, pdu_session_id: int) -> SessionView: ...

    async def get(self, supi: str, pdu_session_id: int) -> SessionView: ...

    async def list_sessions(
        self, *, upf: str | None = None, state: str | None = None, limit: int = 100, after: int = 0
    ) -> list[SessionView]: ...

    async def usage(self, supi: str, pdu_session_id: int) -> list[UsageView]: ...
