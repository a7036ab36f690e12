"""A PFCP node without I/O: transactions, associations and heartbeats.

Theory of operation
-------------------
:class:`PfcpEndpoint` is driven like aioquic's connection: feed it datagrams
(``receive_datagram``), requests (``send_request``) and the time
(``handle_timer``); collect datagrams to send (``datagrams_to_send``), events
for the application (``next_event``) and the next deadline (``get_timer``).
It never reads a clock or touches a socket; every method takes ``now``.

What it does on its own, as TS 29.244 asks:

* Requests we send are retransmitted every T1, N1 times, then time out (§6.4);
  responses are matched by (peer, sequence number).
* Requests we receive are handed to the application once; a retransmission is
  answered from the cached response, or dropped while the application has not
  answered yet (§6.4).
* Heartbeat Requests are answered; associated peers are sent heartbeats every
  ``heartbeat_interval``; a newer Recovery Time Stamp from a known peer raises
  :class:`~pfcp.events.PeerRestarted`, an older one is ignored (§6.2.2,
  TS 23.007 §19A); a heartbeat unanswered after N1 resends raises
  :class:`~pfcp.events.PeerLost`.
* Association Setup/Update/Release, both directions (§6.2.6-§6.2.8).
* Session-related requests from a peer without an association get cause 72
  (No established PFCP Association) without reaching the application.
* Version other than 1: Version Not Supported Response (§7.6.2). Unknown message
  types and unexpected responses: dropped (§7.6.4, §7.6.5). A request that does
  not decode: the response of its type with the decoder's cause and Offending IE
  when its type and sequence number are readable, dropped otherwise.
* Every drop is counted in ``drops`` and logged once per peer and reason.
* Monitoring reads plain numbers, never a callback on the hot path: messages
  in and out by type (``messages_received``, ``messages_sent``, lists indexed
  by message type), responses whose Cause is not Request accepted
  (``causes_received``, ``causes_sent``), and per peer and request type our
  retransmissions, timeouts, the peer's duplicates and a histogram of round
  trips (``round_trips``, over ``RTT_BUCKETS``; a resent request is not timed,
  as its response may answer any copy).
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import messages as m
from .association import Association, AssociationState, Trigger
from .constants import Cause as CauseValue
from .constants import MessageType
from .errors import DecodeError
from .events import (
    Address,
    AssociationEstablished,
    AssociationReleased,
    AssociationSetupFailed,
    AssociationUpdated,
    Event,
    PeerInfo,
    PeerLost,
    PeerRestarted,
    RequestReceived,
    RequestTimedOut,
    ResponseReceived,
)
from .ie import (
    Cause,
    CPFunctionFeatures,
    NodeID,
    OffendingIE,
    PFCPAssociationReleaseRequest,
    PFCPAssociationReleaseRequestFlags,
    PFCPSessionRetentionInformation,
    RecoveryTimeStamp,
    UPFunctionFeatures,
)
from .messages import Message, UnsupportedVersion, decode_all, encode
from .transaction import SEQUENCE_MODULO, RetransmitPolicy, RxCache, TxQueue, TxTransaction

__all__ = ["RTT_BUCKETS", "EndpointConfig", "PfcpEndpoint"]

log = logging.getLogger("pfcp.endpoint")

#: Decides whether to accept a peer's Association Setup Request: returns a Cause.
AssociationPolicy = Callable[[m.AssociationSetupRequest, Address], CauseValue]

#: Upper bounds (seconds) of the round-trip histogram buckets: loopback to a far edge site's
#: backhaul; a round trip longer than T1 is a retransmission and is not timed.
RTT_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class EndpointConfig:
    """Who we are and how patient we are."""

    node_id: NodeID
    recovery_time_stamp: RecoveryTimeStamp
    up_function_features: UPFunctionFeatures | None = None
    cp_function_features: CPFunctionFeatures | None = None
    retransmit: RetransmitPolicy = field(default_factory=RetransmitPolicy)
    #: Seconds between heartbeats to each associated peer; None: never send any.
    heartbeat_interval: float | None = 30.0
    #: Bound on remembered received requests (duplicate detection).
    max_cached_requests: int = 100_000
    #: Accepts every Association Setup Request when None.
    accept_association: AssociationPolicy | None = None


class PfcpEndpoint:
    """One PFCP node (a CP or UP function) as a sans-I/O state machine."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.policy = config.retransmit
        self.drops: Counter[tuple[Address, str]] = Counter()
        #: Messages received (decoded, duplicates included) and sent (not counting
        #: retransmissions or replays from the response cache), by message type.
        self.messages_received = [0] * 256
        self.messages_sent = [0] * 256
        #: Responses with a Cause other than Request accepted: (message type, cause) -> count.
        self.causes_received: Counter[tuple[int, int]] = Counter()
        self.causes_sent: Counter[tuple[int, int]] = Counter()
        #: (peer, request type) -> count.
        self.retransmits: Counter[tuple[Address, int]] = Counter()
        self.timeouts: Counter[tuple[Address, int]] = Counter()
        self.duplicates: Counter[tuple[Address, int]] = Counter()
        #: Peer -> by request type (None: none timed) the round trips per bucket of RTT_BUCKETS
        #: (the last one: longer), then their sum in seconds.
        self.round_trips: dict[Address, list[list[float] | None]] = {}
        self._tx = TxQueue(self.policy)
        self._rx = RxCache(self.policy, config.max_cached_requests)
        self._out: list[tuple[bytes, Address]] = []
        self._events: deque[Event] = deque()
        self._by_addr: dict[Address, Association] = {}
        self._by_node: dict[NodeID, Association] = {}
        self._heartbeats: list[tuple[float, Address]] = []
        self._own_heartbeats: set[tuple[Address, int]] = set()
        self._sequence = 0

    # ------------------------------------------------------------------
    # Driving the endpoint

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """Handle one UDP datagram from ``addr``."""
        try:
            received = decode_all(data)
        except UnsupportedVersion as exc:
            self._drop(addr, "version not supported")
            known = m.MESSAGE_CLASSES.get(exc.message_type or 0)
            if exc.sequence is not None and (known is None or known.REQUEST):  # never answer a response
                reply = m.VersionNotSupportedResponse(sequence=exc.sequence)  # a node message: no SEID
                self._out.append((encode(reply), addr))
                self.messages_sent[MessageType.VERSION_NOT_SUPPORTED_RESPONSE] += 1
            return
        except DecodeError as exc:
            self._reject_malformed(exc, addr, now)
            return
        digest = hash(data)
        counts = self.messages_received
        for msg in received:
            if isinstance(msg, m.GenericMessage):
                counts[msg.type] += 1
                self._drop(addr, f"unknown message type {msg.type}")  # §7.6.4
                continue
            t = msg.TYPE  # the class's: cheaper than the message_type property
            counts[t] += 1
            if msg.REQUEST:
                self._on_request(msg, addr, now, digest)
            else:
                if _CAUSED[t]:
                    cause = msg.cause  # type: ignore[attr-defined]  # _CAUSED: the type has one
                    if cause is not None and cause.value != CauseValue.REQUEST_ACCEPTED:
                        self.causes_received[(int(t), int(cause.value))] += 1
                self._on_response(msg, addr, now)

    def send_request(self, msg: Message, peer: Address, now: float) -> int:
        """Send ``msg`` to ``peer`` reliably; returns the sequence number it got."""
        sequence = self._next_sequence(peer)
        if msg.sequence != sequence:
            msg = msg.with_sequence(sequence)
        data = encode(msg)
        self._out.append((data, peer))
        self._tx.add(TxTransaction(peer, sequence, msg, data, 1, now + self.policy.t1))
        self.messages_sent[msg.message_type] += 1
        return sequence

    def send_response(self, request: RequestReceived, response: Message, now: float) -> None:
        """Answer a request the application received; retransmissions will get it too."""
        self._respond(request.message, request.peer, response, now)

    def reject(self, request: RequestReceived, cause: CauseValue, now: float) -> None:
        """Answer a request with the rejection response of its type and ``cause``."""
        self._reject(request.message.message_type, request.message.sequence, request.peer, cause, None, now)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Datagrams to send now, oldest first (the list is handed over)."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        """The next event for the application, or None."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must run next (None: nothing scheduled)."""
        deadline = self._tx.next_deadline()
        beat = self._next_heartbeat()
        if beat is not None and (deadline is None or beat < deadline):
            return beat
        return deadline

    def handle_timer(self, now: float) -> None:
        """Retransmit, time out and send heartbeats that are due at ``now``."""
        resend, expired = self._tx.due(now)
        for tx in resend:
            self._out.append((tx.data, tx.peer))
            self.retransmits[(tx.peer, int(tx.request.message_type))] += 1
        for tx in expired:
            self._on_timeout(tx, now)
        self._send_heartbeats(now)

    # ------------------------------------------------------------------
    # Associations, initiated by us

    def associate(
        self, peer: Address, now: float, *, session_retention: PFCPSessionRetentionInformation | None = None
    ) -> int:
        """Send a PFCP Association Setup Request to ``peer``; returns its sequence number.

        ``session_retention``: a CP function that restarted without losing its
        PFCP sessions asks the UP function to keep them (§6.2.6.2.2, Table
        7.4.4.1-2); it goes in the request and so in every retransmission."""
        assoc = self._by_addr.get(peer)
        if assoc is None:
            assoc = self._by_addr[peer] = Association(peer)
        assoc.fire(Trigger.SEND_SETUP)
        c = self.config
        request = m.AssociationSetupRequest(
            node_id=c.node_id,
            recovery_time_stamp=c.recovery_time_stamp,
            up_function_features=c.up_function_features,
            cp_function_features=c.cp_function_features,
            pfcp_session_retention_information=session_retention,
        )
        return self.send_request(request, peer, now)

    def release(self, peer: Address, now: float) -> int:
        """Send a PFCP Association Release Request to an associated ``peer``."""
        assoc = self._by_addr.get(peer)
        if assoc is None:
            raise KeyError(f"no association with {peer}")
        assoc.fire(Trigger.SEND_RELEASE)
        return self.send_request(m.AssociationReleaseRequest(node_id=self.config.node_id), peer, now)

    def update(
        self,
        peer: Address,
        now: float,
        *,
        up_function_features: UPFunctionFeatures | None = None,
        cp_function_features: CPFunctionFeatures | None = None,
        request_release: bool = False,
    ) -> int:
        """Send a PFCP Association Update Request (``request_release``: the UP
        function asks the CP function to release the association, SARR)."""
        assoc = self._by_addr.get(peer)
        if assoc is None or not assoc.associated:
            raise KeyError(f"no association with {peer}")
        assoc.fire(Trigger.UPDATE)
        flags = None
        if request_release:
            flags = PFCPAssociationReleaseRequest(PFCPAssociationReleaseRequestFlags.SARR)
        request = m.AssociationUpdateRequest(
            node_id=self.config.node_id,
            up_function_features=up_function_features,
            cp_function_features=cp_function_features,
            pfcp_association_release_request=flags,
        )
        return self.send_request(request, peer, now)

    def association(self, peer: Address) -> Association | None:
        """The association record for ``peer`` (any state), if any."""
        return self._by_addr.get(peer)

    def associations(self) -> list[Association]:
        """Every association record, in any state."""
        return list(self._by_addr.values())

    # ------------------------------------------------------------------
    # Incoming requests

    def _on_request(self, msg: Message, addr: Address, now: float, digest: int) -> None:
        entry = self._rx.receive((addr, msg.sequence), now, digest)
        if entry is not None:  # a retransmission (§6.4)
            self.duplicates[(addr, int(msg.message_type))] += 1
            response = entry[2]
            if response is not None:
                self._out.append((response, addr))
                self._drop(addr, "duplicate request answered from cache")
            else:
                self._drop(addr, "duplicate request while still in progress")
            return
        t = msg.message_type
        if t not in _NODE_REQUESTS_HANDLED_HERE:  # session requests and the like: the application's
            assoc = self._by_addr.get(addr)
            if assoc is None:
                if msg.SESSION:
                    self._reject_unassociated(msg, addr, now)
                    return
                self._events.append(RequestReceived(addr, msg, None))
            elif msg.SESSION and not assoc.associated:
                self._reject_unassociated(msg, addr, now)
            else:
                self._events.append(RequestReceived(addr, msg, assoc.node_id))
        elif t == MessageType.HEARTBEAT_REQUEST:
            assert isinstance(msg, m.HeartbeatRequest)
            self._check_recovery(self._by_addr.get(addr), msg.recovery_time_stamp)
            reply = m.HeartbeatResponse(recovery_time_stamp=self.config.recovery_time_stamp)
            self._respond(msg, addr, reply, now)
        elif t == MessageType.ASSOCIATION_SETUP_REQUEST:
            assert isinstance(msg, m.AssociationSetupRequest)
            self._on_setup_request(msg, addr, now)
        elif t == MessageType.ASSOCIATION_UPDATE_REQUEST:
            assert isinstance(msg, m.AssociationUpdateRequest)
            self._on_update_request(msg, addr, now)
        else:
            self._on_release_request(msg, addr, now)

    def _reject_unassociated(self, msg: Message, addr: Address, now: float) -> None:
        self._drop(addr, "rejected (cause 72): session request without association")
        no_association = CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION
        self._reject(msg.message_type, msg.sequence, addr, no_association, None, now)

    def _on_setup_request(self, msg: m.AssociationSetupRequest, addr: Address, now: float) -> None:
        hook = self.config.accept_association
        cause = CauseValue.REQUEST_ACCEPTED if hook is None else hook(msg, addr)
        if cause.accepted:
            info = PeerInfo(msg.node_id, msg.recovery_time_stamp, msg.up_function_features, msg.cp_function_features)
            replaced = self._establish(addr, info, Trigger.SETUP_RECEIVED, now)
        reply = m.AssociationSetupResponse(
            node_id=self.config.node_id,
            cause=Cause(cause),
            recovery_time_stamp=self.config.recovery_time_stamp,
            up_function_features=self.config.up_function_features,
            cp_function_features=self.config.cp_function_features,
        )
        self._respond(msg, addr, reply, now)
        if cause.accepted:
            self._events.append(AssociationEstablished(addr, info, initiated_by_us=False, replaced=replaced))

    def _on_update_request(self, msg: m.AssociationUpdateRequest, addr: Address, now: float) -> None:
        assoc = self._by_addr.get(addr)
        if assoc is None or not assoc.associated or assoc.info is None:
            self._reject(msg.message_type, msg.sequence, addr, CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION, None, now)
            return
        assoc.fire(Trigger.UPDATE)
        old = assoc.info
        assoc.info = PeerInfo(
            old.node_id,
            old.recovery_time_stamp,
            msg.up_function_features or old.up_function_features,
            msg.cp_function_features or old.cp_function_features,
        )
        reply = m.AssociationUpdateResponse(node_id=self.config.node_id, cause=Cause(CauseValue.REQUEST_ACCEPTED))
        self._respond(msg, addr, reply, now)
        flags = msg.pfcp_association_release_request
        release = flags is not None and bool(flags.value & PFCPAssociationReleaseRequestFlags.SARR)
        self._events.append(AssociationUpdated(addr, assoc.info, release_requested=release))

    def _on_release_request(self, msg: Message, addr: Address, now: float) -> None:
        assoc = self._by_addr.get(addr)
        if assoc is None or not assoc.associated or assoc.node_id is None:
            self._reject(msg.message_type, msg.sequence, addr, CauseValue.NO_ESTABLISHED_PFCP_ASSOCIATION, None, now)
            return
        node_id = assoc.node_id
        assoc.fire(Trigger.RELEASE_RECEIVED)
        self._forget(assoc)
        reply = m.AssociationReleaseResponse(node_id=self.config.node_id, cause=Cause(CauseValue.REQUEST_ACCEPTED))
        self._respond(msg, addr, reply, now)
        self._events.append(AssociationReleased(addr, node_id, initiated_by_us=False))

    # ------------------------------------------------------------------
    # Responses and timeouts

    def _on_response(self, msg: Message, addr: Address, now: float) -> None:
        tx = self._tx.get(addr, msg.sequence)
        if tx is None:
            self._drop(addr, "response to no pending request")  # late duplicate, §7.6.5
            return
        t = tx.request.message_type
        if msg.message_type != t + 1 and not isinstance(msg, m.VersionNotSupportedResponse):
            self._drop(addr, f"{type(msg).__name__} does not answer {type(tx.request).__name__}")  # §7.6.5
            return
        self._tx.pop(addr, msg.sequence)
        if tx.sent == 1:  # Karn's rule: the answer to a resent request may answer any copy of it
            by_type = self.round_trips.get(addr)
            if by_type is None:
                by_type = self.round_trips[addr] = [None] * 256
            histogram = by_type[t]
            if histogram is None:
                histogram = by_type[t] = [0.0] * (len(RTT_BUCKETS) + 2)
            rtt = now - tx.deadline + self.policy.t1  # sent at deadline - T1
            histogram[bisect_left(RTT_BUCKETS, rtt)] += 1
            histogram[-1] += rtt
        assoc = self._by_addr.get(addr)
        if t == MessageType.HEARTBEAT_REQUEST and isinstance(msg, m.HeartbeatResponse):
            self._check_recovery(assoc, msg.recovery_time_stamp)
        if (addr, msg.sequence) in self._own_heartbeats:
            self._own_heartbeats.discard((addr, msg.sequence))  # nobody else waits for it
            if assoc is not None and assoc.heartbeat_sequence == msg.sequence:
                assoc.heartbeat_sequence = None
                self._schedule_heartbeat(assoc, now)
            return
        self._events.append(ResponseReceived(addr, tx.request, msg))
        if t == MessageType.ASSOCIATION_SETUP_REQUEST:
            self._on_setup_response(msg, addr, now)
        elif t == MessageType.ASSOCIATION_RELEASE_REQUEST and assoc is not None:
            if assoc.state is AssociationState.RELEASING and assoc.node_id is not None:
                node_id = assoc.node_id
                assoc.fire(Trigger.RELEASE_ANSWERED)
                self._forget(assoc)
                self._events.append(AssociationReleased(addr, node_id, initiated_by_us=True))

    def _on_setup_response(self, msg: Message, addr: Address, now: float) -> None:
        assoc = self._by_addr.get(addr)
        if assoc is None or assoc.state is not AssociationState.SETUP_SENT:
            return  # the peer's own Setup Request got there first
        # A cause the codec does not know stays a plain int: judge it by its range (§8.2.1).
        if not isinstance(msg, m.AssociationSetupResponse) or not 1 <= msg.cause.value <= 63:
            assoc.fire(Trigger.SETUP_REJECTED)
            cause = msg.cause.value if isinstance(msg, m.AssociationSetupResponse) else None
            self._forget(assoc)  # a refused setup ends whatever association there was
            self._events.append(AssociationSetupFailed(addr, cause))
            return
        info = PeerInfo(msg.node_id, msg.recovery_time_stamp, msg.up_function_features, msg.cp_function_features)
        replaced = self._establish(addr, info, Trigger.SETUP_ACCEPTED, now)
        self._events.append(AssociationEstablished(addr, info, initiated_by_us=True, replaced=replaced))

    def _on_timeout(self, tx: TxTransaction, now: float) -> None:
        t = tx.request.message_type
        self.timeouts[(tx.peer, int(t))] += 1
        assoc = self._by_addr.get(tx.peer)
        if (tx.peer, tx.sequence) in self._own_heartbeats:
            self._own_heartbeats.discard((tx.peer, tx.sequence))
            if assoc is not None and assoc.heartbeat_sequence == tx.sequence and assoc.node_id is not None:
                # our own heartbeat went unanswered N1 + 1 times
                node_id = assoc.node_id
                assoc.fire(Trigger.PEER_LOST)
                self._forget(assoc)
                self._events.append(PeerLost(tx.peer, node_id))
            return
        self._events.append(RequestTimedOut(tx.peer, tx.request))
        if t == MessageType.ASSOCIATION_SETUP_REQUEST and assoc is not None:
            if assoc.state is AssociationState.SETUP_SENT:
                assoc.fire(Trigger.SETUP_TIMED_OUT)
                self._forget(assoc)  # an unanswered setup ends whatever association there was
                self._events.append(AssociationSetupFailed(tx.peer, None))
        elif t == MessageType.ASSOCIATION_RELEASE_REQUEST and assoc is not None:
            if assoc.state is AssociationState.RELEASING and assoc.node_id is not None:
                # An unanswered release still ends the association on our side.
                node_id = assoc.node_id
                assoc.fire(Trigger.PEER_LOST)
                self._forget(assoc)
                self._events.append(AssociationReleased(tx.peer, node_id, initiated_by_us=True))

    # ------------------------------------------------------------------
    # Association records, heartbeats and recovery

    def _establish(self, addr: Address, info: PeerInfo, trigger: Trigger, now: float) -> bool:
        """Record an association with ``info.node_id`` at ``addr``; True if it replaced one."""
        previous = self._by_node.get(info.node_id)
        replaced = previous is not None
        if previous is not None:
            self._check_recovery(previous, info.recovery_time_stamp)
            if previous.peer != addr:  # same Node ID from a new address: the old one goes
                self._forget(previous)
        assoc = self._by_addr.get(addr)
        if assoc is None:
            assoc = self._by_addr[addr] = Association(addr)
        elif assoc.info is not None and assoc.info.node_id != info.node_id:
            replaced = True
            self._by_node.pop(assoc.info.node_id, None)
        if assoc.state is AssociationState.RELEASING:
            assoc.state = AssociationState.IDLE  # the peer set up again while we released
        assoc.fire(trigger)
        assoc.info = info
        assoc.heartbeat_sequence = None
        self._by_node[info.node_id] = assoc
        self._schedule_heartbeat(assoc, now)
        return replaced

    def _forget(self, assoc: Association) -> None:
        self._by_addr.pop(assoc.peer, None)
        if assoc.info is not None and self._by_node.get(assoc.info.node_id) is assoc:
            del self._by_node[assoc.info.node_id]
        assoc.next_heartbeat = None

    def _check_recovery(self, assoc: Association | None, stamp: RecoveryTimeStamp) -> None:
        if assoc is None or assoc.info is None:
            return
        known = assoc.info.recovery_time_stamp
        if stamp.value > known.value:
            assoc.info = dataclasses.replace(assoc.info, recovery_time_stamp=stamp)
            self._events.append(PeerRestarted(assoc.peer, assoc.info.node_id, known, stamp))
        elif stamp.value < known.value:
            self._drop(assoc.peer, "older recovery time stamp ignored")  # TS 23.007 §19A

    def _schedule_heartbeat(self, assoc: Association, now: float) -> None:
        interval = self.config.heartbeat_interval
        if interval is None:
            return
        assoc.next_heartbeat = now + interval
        heapq.heappush(self._heartbeats, (assoc.next_heartbeat, assoc.peer))

    def _next_heartbeat(self) -> float | None:
        heap = self._heartbeats
        while heap:
            when, peer = heap[0]
            assoc = self._by_addr.get(peer)
            if assoc is not None and assoc.next_heartbeat == when and assoc.associated:
                return when
            heapq.heappop(heap)
        return None

    def _send_heartbeats(self, now: float) -> None:
        while True:
            when = self._next_heartbeat()
            if when is None or when > now:
                return
            _, peer = heapq.heappop(self._heartbeats)
            assoc = self._by_addr[peer]
            assoc.next_heartbeat = None
            request = m.HeartbeatRequest(recovery_time_stamp=self.config.recovery_time_stamp)
            assoc.heartbeat_sequence = self.send_request(request, peer, now)
            self._own_heartbeats.add((peer, assoc.heartbeat_sequence))

    # ------------------------------------------------------------------
    # Answers

    def _respond(self, request: Message, addr: Address, response: Message, now: float) -> None:
        if response.sequence != request.sequence:
            response = response.with_sequence(request.sequence)
        data = encode(response)
        self._out.append((data, addr))
        self._rx.answer((addr, request.sequence), data, now)
        t = response.message_type
        self.messages_sent[t] += 1
        if _CAUSED[t]:
            cause = response.cause  # type: ignore[attr-defined]  # _CAUSED: the type has one
            if cause is not None and cause.value != CauseValue.REQUEST_ACCEPTED:
                self.causes_sent[(int(t), int(cause.value))] += 1

    def _reject(
        self, message_type: int, sequence: int, addr: Address, cause: CauseValue, offending: int | None, now: float
    ) -> None:
        response = _rejection(message_type, sequence, cause, offending, self.config)
        if response is None:
            self._drop(addr, f"cannot reject message type {message_type}")
            return
        data = encode(response)
        self._out.append((data, addr))
        self._rx.answer((addr, sequence), data, now)
        self.messages_sent[response.message_type] += 1
        if cause != CauseValue.REQUEST_ACCEPTED:
            self.causes_sent[(int(response.message_type), int(cause))] += 1

    def _reject_malformed(self, exc: DecodeError, addr: Address, now: float) -> None:
        t, sequence = exc.message_type, exc.sequence
        if t is None or sequence is None or t not in _REJECTIONS:
            self._drop(addr, f"undecodable datagram: {exc.cause.name}")
            return
        entry = self._rx.get((addr, sequence), now)
        if entry is not None and entry[2] is not None:
            self._out.append((entry[2], addr))  # a retransmission of the same bad request
            return
        self._drop(addr, f"malformed {MessageType(t).name}: {exc.cause.name}")
        self._reject(t, sequence, addr, exc.cause, exc.offending_ie, now)

    def _drop(self, addr: Address, reason: str) -> None:
        key = (addr, reason)
        self.drops[key] += 1
        if self.drops[key] == 1:
            log.warning("PFCP from %s:%s: %s (logged once; see drops)", addr[0], addr[1], reason)

    def _next_sequence(self, peer: Address) -> int:
        for _ in range(SEQUENCE_MODULO):
            self._sequence = (self._sequence + 1) % SEQUENCE_MODULO
            if (peer, self._sequence) not in self._tx:
                return self._sequence
        raise RuntimeError("every sequence number is in flight")


#: Requests the endpoint answers itself (§6.2.2, §6.2.6-§6.2.8); the others go to the application.
_NODE_REQUESTS_HANDLED_HERE = frozenset(
    {
        MessageType.HEARTBEAT_REQUEST,
        MessageType.ASSOCIATION_SETUP_REQUEST,
        MessageType.ASSOCIATION_UPDATE_REQUEST,
        MessageType.ASSOCIATION_RELEASE_REQUEST,
    }
)

#: By message type: 1 for the responses that carry a Cause (all but Heartbeat and Version Not Supported).
_CAUSED = bytes(
    int(not cls.REQUEST and any(spec.name == "cause" for spec in cls._SPECS)) if cls is not None else 0
    for cls in map(m.MESSAGE_CLASSES.get, range(256))
)

#: Request type -> the response type that carries a rejection Cause.
_REJECTIONS: dict[int, type[Message]] = {
    MessageType.PFD_MANAGEMENT_REQUEST: m.PFDManagementResponse,
    MessageType.ASSOCIATION_SETUP_REQUEST: m.AssociationSetupResponse,
    MessageType.ASSOCIATION_UPDATE_REQUEST: m.AssociationUpdateResponse,
    MessageType.ASSOCIATION_RELEASE_REQUEST: m.AssociationReleaseResponse,
    MessageType.NODE_REPORT_REQUEST: m.NodeReportResponse,
    MessageType.SESSION_SET_DELETION_REQUEST: m.SessionSetDeletionResponse,
    MessageType.SESSION_SET_MODIFICATION_REQUEST: m.SessionSetModificationResponse,
    MessageType.SESSION_ESTABLISHMENT_REQUEST: m.SessionEstablishmentResponse,
    MessageType.SESSION_MODIFICATION_REQUEST: m.SessionModificationResponse,
    MessageType.SESSION_DELETION_REQUEST: m.SessionDeletionResponse,
    MessageType.SESSION_REPORT_REQUEST: m.SessionReportResponse,
}


def _rejection(
    message_type: int, sequence: int, cause: CauseValue, offending: int | None, config: EndpointConfig
) -> Message | None:
    """The response rejecting a request of ``message_type`` (None for Heartbeat,
    whose response has no Cause). Session responses carry SEID 0: the peer's
    SEID is unknown to this layer (§7.2.2.4.2)."""
    cls = _REJECTIONS.get(message_type)
    if cls is None:
        return None
    names = {spec.name for spec in cls._SPECS}
    kwargs: dict[str, Any] = {"sequence": sequence, "cause": Cause(cause)}
    if cls.SESSION:
        kwargs["seid"] = 0
    if "node_id" in names:
        kwargs["node_id"] = config.node_id
    if "recovery_time_stamp" in names:
        kwargs["recovery_time_stamp"] = config.recovery_time_stamp
    if "offending_ie" in names and offending is not None:
        kwargs["offending_ie"] = OffendingIE(offending)
    return cls(**kwargs)
