"""PFCP messages of TS 29.244 §7.4 (node) and §7.5 (session)."""

from __future__ import annotations

from .node import *  # noqa: F403
from .node import __all__ as _node
from .schema import (
    MESSAGE_CLASSES,
    GenericMessage,
    Message,
    UnsupportedVersion,
    decode,
    decode_all,
    encode,
    encode_all,
)
from .session import *  # noqa: F403
from .session import __all__ as _session

__all__ = [
    "MESSAGE_CLASSES",
    "GenericMessage",
    "Message",
    "UnsupportedVersion",
    "decode",
    "decode_all",
    "encode",
    "encode_all",
    *_node,
    *_session,
]
