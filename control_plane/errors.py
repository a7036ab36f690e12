"""Errors the control plane's procedures raise, one per outcome a caller acts on.

The northbound API maps each class to one gRPC status code (``code``), so a
client can tell "fix your request" from "try another time" without parsing text.
``field`` is the request field at fault, as a dotted path, when there is one.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "CpError",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
    "Unavailable",
    "UpfRejected",
]


class CpError(Exception):
    """A request the control plane could not carry out; nothing was left half-done."""

    #: The gRPC status code name this error maps to.
    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidArgument(CpError):
    """The request itself is wrong (a bad TAI, an unknown DNN for this subscriber...)."""

    code = "INVALID_ARGUMENT"


class NotFound(CpError):
    """What the request names does not exist."""

    code = "NOT_FOUND"


class AlreadyExists(CpError):
    """The request would create something that exists (the same SUPI and PDU Session ID)."""

    code = "ALREADY_EXISTS"


class FailedPrecondition(CpError):
    """The request is valid but the system is not in a state to carry it out."""

    code = "FAILED_PRECONDITION"


class ResourceExhausted(CpError):
    """A pool, or every UPF's capacity, is used up."""

    code = "RESOURCE_EXHAUSTED"


class Unavailable(CpError):
    """No UPF can take the request now (none associated, healthy and serving it)."""

    code = "UNAVAILABLE"


class UpfRejected(CpError):
    """The UPF answered with a cause other than Request accepted (TS 29.244 Table 8.2.1-1)."""

    code = "ABORTED"

    def __init__(self, message: str, *, cause: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.cause = cause
