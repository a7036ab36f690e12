"""Session values (control_plane.services.views) <-> edgecups.v1 messages, and page tokens.

Both ends of the wire use these, so a field added to a view is added here once.
Timestamps travel as google.protobuf.Timestamp and come back timezone-aware (UTC).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.errors import InvalidArgument
from control_plane.services.views import SessionView, UsageView

__all__ = [
    "decode_page_token",
    "encode_page_token",
    "session_from_proto",
    "session_to_proto",
    "usage_from_proto",
    "usage_to_proto",
]


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)  # naive datetimes are taken as UTC, which is what the database holds
    return stamp


def _datetime(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def session_to_proto(view: SessionView) -> pb.Session:
    message = pb.Session(
        supi=view.supi,
        pdu_session_id=view.pdu_session_id,
        dnn=view.dnn,
        snssai=view.snssai,
        tai=view.tai,
        state=view.state,
        ue_ipv4=view.ue_ipv4,
        ue_ipv6=view.ue_ipv6,
        upf=view.upf,
        site=view.site,
        cp_seid=view.cp_seid,
        up_seid=view.up_seid,
        n3_teid=view.n3_teid,
        n3_address=view.n3_address,
        gnb_teid=view.gnb_teid,
        gnb_address=view.gnb_address,
        policy=view.policy,
        last_cause=view.last_cause,
        final_usage=[usage_to_proto(u) for u in view.final_usage],
    )
    # Timestamps are sub-messages: copied in, so the constructor's None handling does not apply.
    message.created_at.CopyFrom(_timestamp(view.created_at))
    message.updated_at.CopyFrom(_timestamp(view.updated_at))
    return message


def session_from_proto(message: pb.Session) -> SessionView:
    return SessionView(
        supi=message.supi,
        pdu_session_id=message.pdu_session_id,
        dnn=message.dnn,
        snssai=message.snssai,
        tai=message.tai,
        state=message.state,
        ue_ipv4=message.ue_ipv4 if message.HasField("ue_ipv4") else None,
        ue_ipv6=message.ue_ipv6 if message.HasField("ue_ipv6") else None,
        upf=message.upf if message.HasField("upf") else None,
        site=message.site if message.HasField("site") else None,
        cp_seid=message.cp_seid,
        up_seid=message.up_seid if message.HasField("up_seid") else None,
        n3_teid=message.n3_teid if message.HasField("n3_teid") else None,
        n3_address=message.n3_address if message.HasField("n3_address") else None,
        gnb_teid=message.gnb_teid if message.HasField("gnb_teid") else None,
        gnb_address=message.gnb_address if message.HasField("gnb_address") else None,
        policy=message.policy if message.HasField("policy") else None,
        created_at=_datetime(message.created_at),
        updated_at=_datetime(message.updated_at),
        last_cause=message.last_cause if message.HasField("last_cause") else None,
        final_usage=tuple(usage_from_proto(u) for u in message.final_usage),
    )


def usage_to_proto(view: UsageView) -> pb.UsageReport:
    message = pb.UsageReport(
        urr_id=view.urr_id,
        ur_seqn=view.ur_seqn,
        triggers=view.triggers,
        volume_ul=view.volume_ul,
        volume_dl=view.volume_dl,
        volume_total=view.volume_total,
        duration_s=view.duration_s,
        final=view.final,
        upf=view.upf,
    )
    message.recorded_at.CopyFrom(_timestamp(view.recorded_at))
    if view.start_time is not None:
        message.start_time.CopyFrom(_timestamp(view.start_time))
    if view.end_time is not None:
        message.end_time.CopyFrom(_timestamp(view.end_time))
    return message


def usage_from_proto(message: pb.UsageReport) -> UsageView:
    return UsageView(
        urr_id=message.urr_id,
        ur_seqn=message.ur_seqn,
        triggers=tuple(message.triggers),
        volume_ul=message.volume_ul if message.HasField("volume_ul") else None,
        volume_dl=message.volume_dl if message.HasField("volume_dl") else None,
        volume_total=message.volume_total if message.HasField("volume_total") else None,
        duration_s=message.duration_s if message.HasField("duration_s") else None,
        final=message.final,
        recorded_at=_datetime(message.recorded_at),
        start_time=_datetime(message.start_time) if message.HasField("start_time") else None,
        end_time=_datetime(message.end_time) if message.HasField("end_time") else None,
        upf=message.upf,
    )


# A page token carries the CP SEID of the last session of the previous page: SEIDs are
# unique and never reused, so "after this SEID" stays a stable cursor while sessions
# come and go. It is opaque to callers (base64) so the cursor can change without an API break.
def encode_page_token(after: int) -> str:
    """The page token that resumes after the session with CP SEID ``after``; "" for the first page."""
    if after == 0:
        return ""
    return base64.urlsafe_b64encode(f"seid:{after}".encode()).decode().rstrip("=")


def decode_page_token(token: str, field: str = "page_token") -> int:
    """The CP SEID a page token resumes after (0 for ""); InvalidArgument if no server made it."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    kind, _, number = text.partition(":")
    if kind != "seid" or not number.isdigit() or int(number) == 0:
        raise InvalidArgument(
            f"{token!r} is not a page token from this API: pass next_page_token as given", field=field
        )
    return int(number)
