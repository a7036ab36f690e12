"""What a :class:`~pfcp.endpoint.PfcpEndpoint` tells its application.

Events are plain frozen dataclasses, returned one at a time by
``PfcpEndpoint.next_event()``; nothing here performs I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ie import CPFunctionFeatures, NodeID, RecoveryTimeStamp, UPFunctionFeatures
from .messages import Message

__all__ = [
    "Address",
    "AssociationEstablished",
    "AssociationReleased",
    "AssociationSetupFailed",
    "AssociationUpdated",
    "Event",
    "PeerInfo",
    "PeerLost",
    "PeerRestarted",
    "RequestReceived",
    "RequestTimedOut",
    "ResponseReceived",
]

#: A UDP peer: (host, port). IPv6 scope and flow info are not kept.
Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What a peer told us about itself in its last Association Setup/Update."""

    node_id: NodeID
    recovery_time_stamp: RecoveryTimeStamp
    up_function_features: UPFunctionFeatures | None = None
    cp_function_features: CPFunctionFeatures | None = None


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the application (never a retransmission).

    The application answers with ``PfcpEndpoint.send_response(event, response)``.
    ``node_id`` is the peer's Node ID when an association exists.
    """

    peer: Address
    message: Message
    node_id: NodeID | None = None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The response to a request we sent (matched by peer and sequence number)."""

    peer: Address
    request: Message
    response: Message


@dataclass(frozen=True, slots=True)
class RequestTimedOut:
    """A request we sent was retransmitted N1 times without an answer (§6.4)."""

    peer: Address
    request: Message


@dataclass(frozen=True, slots=True)
class AssociationEstablished:
    """A PFCP association is up (§6.2.6), set up by either side.

    ``replaced`` is True when it took the place of an association with the same
    Node ID (the peer set up again, e.g. after a restart or from a new address).
    """

    peer: Address
    info: PeerInfo
    initiated_by_us: bool
    replaced: bool = False


@dataclass(frozen=True, slots=True)
class AssociationUpdated:
    """The peer sent a PFCP Association Update Request that we accepted (§6.2.7)."""

    peer: Address
    info: PeerInfo
    release_requested: bool = False


@dataclass(frozen=True, slots=True)
class AssociationReleased:
    """The association with ``node_id`` is gone: released by either side (§6.2.8)."""

    peer: Address
    node_id: NodeID
    initiated_by_us: bool


@dataclass(frozen=True, slots=True)
class AssociationSetupFailed:
    """Our Association Setup Request was rejected (``cause``) or timed out (None)."""

    peer: Address
    cause: int | None


@dataclass(frozen=True, slots=True)
class PeerRestarted:
    """A known peer sent a newer Recovery Time Stamp: it restarted (§6.2.2,
    TS 23.007 §19A). The application decides to restore or purge sessions."""

    peer: Address
    node_id: NodeID
    previous: RecoveryTimeStamp
    current: RecoveryTimeStamp


@dataclass(frozen=True, slots=True)
class PeerLost:
    """N1 heartbeats in a row went unanswered: the peer is unreachable. The
    association is dropped (§6.2.6: the CP function considers it lost)."""

    peer: Address
    node_id: NodeID


Event = (
    RequestReceived
    | ResponseReceived
    | RequestTimedOut
    | AssociationEstablished
    | AssociationUpdated
    | AssociationReleased
    | AssociationSetupFailed
    | PeerRestarted
    | PeerLost
)
