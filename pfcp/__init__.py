"""PFCP (3GPP TS 29.244) for EdgeCUPS: a sans-I/O codec.

``decode(bytes) -> Message`` and ``encode(Message) -> bytes`` with typed,
immutable messages and IEs. Nothing in the codec opens sockets, reads clocks
or imports asyncio::

    >>> import pfcp
    >>> msg = pfcp.HeartbeatRequest(sequence=7, recovery_time_stamp=pfcp.RecoveryTimeStamp(3900000000))
    >>> pfcp.decode(pfcp.encode(msg)) == msg
    True

Bad input raises :class:`DecodeError`, whose ``cause`` and ``offending_ie``
are what a PFCP node answers with (TS 29.244 §7.6).
"""

from __future__ import annotations

# First of all: refuses stale compiled modules and honours EDGECUPS_PURE (see pfcp/_accel.py).
from . import _accel  # noqa: F401
from .constants import PFCP_PORT, PFCP_VERSION, IEType, MessageType, flag_names
from .constants import Cause as CauseValue
from .errors import DecodeError, LocalProtocolError, PFCPError, RemoteProtocolError
from .ie import *  # noqa: F403
from .ie import __all__ as _ie_all

# The family modules once more, directly: type checkers cannot evaluate the
# ``[*a, *b]`` __all__ of pfcp.ie and pfcp.messages, and without these lines
# ``pfcp.FTEID`` (every IE and message class) is unknown to mypy.
from .ie.addressing import *  # noqa: F403
from .ie.ids import *  # noqa: F403
from .ie.node import *  # noqa: F403
from .ie.reporting import *  # noqa: F403
from .ie.rules import *  # noqa: F403
from .ie.values import *  # noqa: F403
from .messages import *  # noqa: F403
from .messages import __all__ as _messages_all
from .messages.node import *  # noqa: F403
from .messages.session import *  # noqa: F403

__all__ = [
    "PFCP_PORT",
    "PFCP_VERSION",
    "CauseValue",
    "DecodeError",
    "IEType",
    "LocalProtocolError",
    "MessageType",
    "PFCPError",
    "RemoteProtocolError",
    "flag_names",
    *_ie_all,
    *_messages_all,
]
