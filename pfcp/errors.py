"""Errors of the codec, split the h11 way.

:class:`DecodeError` means the *peer* sent bytes we cannot accept; it carries the
cause a node answers with (§7.6) and, where one is to blame, the Offending IE
(§8.2.22). :class:`LocalProtocolError` means *we* tried to build something the
tables forbid; it never goes on the wire.
"""

from __future__ import annotations

from .constants import Cause

__all__ = ["DecodeError", "LocalProtocolError", "PFCPError", "RemoteProtocolError"]


class PFCPError(Exception):
    """Base of every error raised by :mod:`pfcp`."""


class DecodeError(PFCPError):
    """The received bytes are not a valid PFCP message.

    ``cause`` is the Cause a responder puts in its rejection (TS 29.244 §7.6);
    ``offending_ie`` the IE type to report in the Offending IE, or None.
    ``message_type``, ``sequence`` and ``seid`` are filled in when the header
    could be read, so a node can still address its error response.
    """

    def __init__(
        self,
        reason: str,
        cause: Cause = Cause.REQUEST_REJECTED,
        offending_ie: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.offending_ie = offending_ie
        self.message_type: int | None = None
        self.sequence: int | None = None
        self.seid: int | None = None

    def __str__(self) -> str:
        where = f", offending IE {self.offending_ie}" if self.offending_ie is not None else ""
        return f"{self.reason} (cause {self.cause.value} {self.cause.name}{where})"


#: The h11-style name for the same thing: the remote peer broke the protocol.
RemoteProtocolError = DecodeError


class LocalProtocolError(PFCPError):
    """We were asked to encode something TS 29.244 does not allow."""
