"""The PFCP association state machine (TS 29.244 §6.2.6-§6.2.8), as a table.

Theory of operation
-------------------
* One :class:`Association` per peer Node ID. Either side may set it up: we
  send an Association Setup Request (IDLE -> SETUP_SENT -> ASSOCIATED on an
  accepting response), or the peer does and we accept (IDLE -> ASSOCIATED).
* A Setup Request from a Node ID we are associated with replaces the old
  association (ASSOCIATED -> ASSOCIATED, §6.2.6.2.2): the peer restarted or
  moved.
* Release goes through RELEASING when we ask, straight to IDLE when the peer
  asks, or when heartbeats show the peer is lost.
* Updates keep the state. Anything not in :data:`TRANSITIONS` raises
  :class:`InvalidTransition`: a bug in the caller, never a peer's doing (the
  endpoint checks peer input before it drives the machine).
* Session-related requests are served only in ASSOCIATED (cause 72 otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .events import Address, PeerInfo
from .ie import NodeID

__all__ = ["TRANSITIONS", "Association", "AssociationState", "InvalidTransition", "Trigger"]


class AssociationState(Enum):
    """Where an association stands."""

    IDLE = "idle"
    SETUP_SENT = "setup-sent"
    ASSOCIATED = "associated"
    RELEASING = "releasing"


class Trigger(Enum):
    """What moves an association."""

    SEND_SETUP = "send-setup"
    SETUP_ACCEPTED = "setup-accepted"
    SETUP_REJECTED = "setup-rejected"
    SETUP_TIMED_OUT = "setup-timed-out"
    SETUP_RECEIVED = "setup-received"
    UPDATE = "update"
    SEND_RELEASE = "send-release"
    RELEASE_ANSWERED = "release-answered"
    RELEASE_RECEIVED = "release-received"
    PEER_LOST = "peer-lost"


_S = AssociationState
_T = Trigger

#: (state, trigger) -> next state. Missing pairs are invalid.
TRANSITIONS: dict[tuple[AssociationState, Trigger], AssociationState] = {
    (_S.IDLE, _T.SEND_SETUP): _S.SETUP_SENT,
    (_S.IDLE, _T.SETUP_RECEIVED): _S.ASSOCIATED,
    (_S.SETUP_SENT, _T.SETUP_ACCEPTED): _S.ASSOCIATED,
    (_S.SETUP_SENT, _T.SETUP_REJECTED): _S.IDLE,
    (_S.SETUP_SENT, _T.SETUP_TIMED_OUT): _S.IDLE,
    # Both sides set up at once: the peer's request wins; our response will be ignored.
    (_S.SETUP_SENT, _T.SETUP_RECEIVED): _S.ASSOCIATED,
    (_S.ASSOCIATED, _T.SETUP_RECEIVED): _S.ASSOCIATED,
    (_S.ASSOCIATED, _T.SEND_SETUP): _S.SETUP_SENT,
    (_S.ASSOCIATED, _T.UPDATE): _S.ASSOCIATED,
    (_S.ASSOCIATED, _T.SEND_RELEASE): _S.RELEASING,
    (_S.ASSOCIATED, _T.RELEASE_RECEIVED): _S.IDLE,
    (_S.ASSOCIATED, _T.PEER_LOST): _S.IDLE,
    (_S.RELEASING, _T.RELEASE_ANSWERED): _S.IDLE,
    (_S.RELEASING, _T.RELEASE_RECEIVED): _S.IDLE,
    (_S.RELEASING, _T.PEER_LOST): _S.IDLE,
    (_S.RELEASING, _T.UPDATE): _S.RELEASING,
}


class InvalidTransition(RuntimeError):
    """The association machine was driven with a trigger its state does not take."""


@dataclass(slots=True)
class Association:
    """One peer's association: its state, address and what it told us."""

    peer: Address
    state: AssociationState = AssociationState.IDLE
    info: PeerInfo | None = None
    #: When the next heartbeat goes out (None: no heartbeat running).
    next_heartbeat: float | None = None
    #: Sequence number of the heartbeat in flight, if any.
    heartbeat_sequence: int | None = None

    @property
    def node_id(self) -> NodeID | None:
        """The peer's Node ID, once known."""
        return None if self.info is None else self.info.node_id

    @property
    def associated(self) -> bool:
        """True in ASSOCIATED, while our own release is in flight, and while we
        set up again an association that exists (it keeps serving meanwhile)."""
        state = self.state
        if state is AssociationState.SETUP_SENT:
            return self.info is not None
        return state is AssociationState.ASSOCIATED or state is AssociationState.RELEASING

    def fire(self, trigger: Trigger) -> AssociationState:
        """Apply ``trigger``; return the new state or raise :class:`InvalidTransition`."""
        try:
            self.state = TRANSITIONS[(self.state, trigger)]
        except KeyError:
            raise InvalidTransition(f"{trigger.value} is not valid in state {self.state.value}") from None
        return self.state
