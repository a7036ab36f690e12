"""Checks of request fields, each raising InvalidArgument that names the field.

The API checks the form of what it is given; whether a DNN, a policy or a UPF
exists is the procedures' business (they answer NOT_FOUND or INVALID_ARGUMENT).
"""

from __future__ import annotations

import re
import socket

from control_plane.errors import InvalidArgument
from db.models import SessionState
from edge_sites.schema import canonical_snssai

__all__ = [
    "SESSION_STATES",
    "dnn",
    "gnb_f_teid",
    "ip_address",
    "name",
    "pdu_session_id",
    "session_state",
    "snssai",
    "supi",
    "tai",
    "teid",
]

# TS 23.003 §2.2A: a SUPI is an IMSI (MCC + MNC + MSIN, at most 15 digits) or a
# Network Access Identifier; TS 29.571 §5.3.2 writes them "imsi-<digits>" / "nai-<NAI>".
_SUPI = re.compile(r"imsi-[0-9]{5,15}|nai-[!-~]+")
# TS 23.003 §19.4.2.3 (TAI = MCC + MNC + TAC), written "MCC-MNC-TAC" with the 24-bit 5GS TAC as 6 digits.
_TAI = re.compile(r"[0-9]{3}-[0-9]{2,3}-[0-9]{6}")
# TS 23.003 §9.1: DNN labels of letters, digits and hyphens separated by dots, at most 100 octets.
_DNN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")
_NAME = re.compile(r"[!-~](?:[ -~]{0,126}[!-~])?")

#: Session states a List can filter on.
SESSION_STATES = frozenset(state.value for state in SessionState)
_TEID_MAX = 2**32 - 1


def supi(value: str, field: str = "supi") -> str:
    if not _SUPI.fullmatch(value):
        raise InvalidArgument(
            f"{value!r} is not a SUPI: expected 'imsi-' and 5 to 15 digits, or 'nai-...'", field=field
        )
    return value


def pdu_session_id(value: int, field: str = "pdu_session_id") -> int:
    # TS 24.007 §11.2.3.1b: PDU session identity values 1..15 (0 is "no PDU session identity assigned").
    if not 1 <= value <= 15:
        raise InvalidArgument(f"{value} is not a PDU Session ID: expected 1..15", field=field)
    return value


def snssai(value: str, field: str = "snssai") -> str:
    """The S-NSSAI in the one spelling provisioning stores (policies and UPFs compare it as text)."""
    try:
        return canonical_snssai(value)
    except ValueError as exc:
        raise InvalidArgument(str(exc), field=field) from None


def tai(value: str, field: str = "tai") -> str:
    if not _TAI.fullmatch(value):
        raise InvalidArgument(
            f"{value!r} is not a TAI: expected 'MCC-MNC-TAC' digits, e.g. '001-01-000001'", field=field
        )
    return value


def dnn(value: str, field: str = "dnn") -> str:
    if len(value) > 100 or not _DNN.fullmatch(value):
        raise InvalidArgument(
            f"{value!r} is not a DNN: expected dot-separated labels of letters, digits, '-'", field=field
        )
    return value


def name(value: str, field: str) -> str:
    """A name of something provisioned (a policy, a UPF's Node ID): 1..128 printable ASCII, no edge spaces."""
    if not _NAME.fullmatch(value):
        raise InvalidArgument(f"{value!r} is not a name: expected 1 to 128 printable ASCII characters", field=field)
    return value


def ip_address(value: str, field: str) -> str:
    # inet_pton takes the forms a PFCP or GTP-U address can carry (not an IPv6 zone, "fe80::1%eth0",
    # which ipaddress accepts and no F-TEID holds), at a twentieth of ipaddress's cost on every create.
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, value)
        except (OSError, ValueError):  # ValueError: an embedded NUL
            continue
        return value
    raise InvalidArgument(f"{value!r} is not an IPv4 or IPv6 address", field=field)


def teid(value: int, field: str) -> int:
    # TS 29.281 §5.1: TEID 0 is reserved (Echo, Error Indication...): never a session's tunnel.
    if not 1 <= value <= _TEID_MAX:
        raise InvalidArgument(f"{value} is not a TEID: expected 1..{_TEID_MAX}", field=field)
    return value


def gnb_f_teid(teid_value: int | None, address: str | None) -> tuple[int | None, str | None]:
    """The gNB F-TEID: a TEID and its address, both or neither."""
    if (teid_value is None) != (address is None):
        missing = "gnb_address" if address is None else "gnb_teid"
        raise InvalidArgument("the gNB F-TEID needs both gnb_teid and gnb_address, or neither", field=missing)
    if teid_value is None or address is None:
        return None, None
    return teid(teid_value, "gnb_teid"), ip_address(address, "gnb_address")


def session_state(value: str, field: str = "state") -> str:
    if value not in SESSION_STATES:
        raise InvalidArgument(
            f"{value!r} is not a session state: expected one of {', '.join(sorted(SESSION_STATES))}", field=field
        )
    return value
