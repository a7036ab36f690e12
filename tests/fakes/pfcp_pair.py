"""A CP and a UP :class:`~pfcp.endpoint.PfcpEndpoint` joined in memory, on a fake clock.

In the style of h11's ``ConnectionPair`` and aioquic's ``roundtrip``: nothing
sleeps, nothing touches a socket. The pair owns the clock (``now``, a float)
and moves datagrams between the two endpoints by address, so tests drive a
whole exchange deterministically::

    pair = PfcpPair()
    pair.cp.associate(pair.up_addr, pair.now)
    pair.flush()                       # deliver until both sides are quiet
    assert pair.events_of("up", AssociationEstablished)
    pair.advance()                     # jump to the next timer of either side

* Every datagram an endpoint emits is recorded in :attr:`PfcpPair.sent` with
  the time it left, its source and destination.
* :meth:`PfcpPair.flush` delivers what is in flight, round after round, until
  neither side has anything to send. A *filter* (per call, or the standing
  :attr:`PfcpPair.filter`) sees each round's batch and returns what gets
  through: drop, duplicate or reorder datagrams with :func:`drop_where`,
  :func:`duplicate_where`, :func:`reverse` or any function of the same shape.
  What the filter removed, and datagrams to addresses nobody listens on, end
  up in :attr:`PfcpPair.lost`.
* :meth:`PfcpPair.advance` moves the clock to the earliest timer of either
  endpoint and runs ``handle_timer`` on every endpoint that is due;
  :meth:`PfcpPair.run_until` does that up to a given time.
* Events are drained after every step into :attr:`PfcpPair.events` (per side)
  and :attr:`PfcpPair.timeline` (with the time they surfaced).
* :meth:`PfcpPair.inject` hands an endpoint raw bytes from any address (a
  third party, a forged or malformed datagram); :meth:`PfcpPair.move` gives a
  side a new address; :meth:`PfcpPair.restart` replaces a side's endpoint
  with a fresh one (a restarted node).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Literal, TypeVar

import pfcp
from pfcp.endpoint import EndpointConfig, PfcpEndpoint
from pfcp.events import Address, Event, RequestReceived
from pfcp.ie import CPFeatures, CPFunctionFeatures, NodeID, RecoveryTimeStamp, UPFeatures, UPFunctionFeatures
from pfcp.messages import Message
from pfcp.transaction import RetransmitPolicy

__all__ = [
    "CP_ADDR",
    "CP_FEATURES",
    "CP_NODE_ID",
    "CP_STAMP",
    "UP_ADDR",
    "UP_FEATURES",
    "UP_NODE_ID",
    "UP_STAMP",
    "Datagram",
    "DatagramFilter",
    "PfcpPair",
    "SIDES",
    "Side",
    "cp_config",
    "drop_where",
    "duplicate_where",
    "is_type",
    "reverse",
    "up_config",
]

Side = Literal["cp", "up"]
SIDES: tuple[Side, Side] = ("cp", "up")
E = TypeVar("E")

CP_ADDR: Address = ("127.0.0.1", 8805)
UP_ADDR: Address = ("127.0.0.2", 8805)
CP_NODE_ID = NodeID(IPv4Address("127.0.0.1"))
UP_NODE_ID = NodeID(IPv4Address("127.0.0.2"))
#: Recovery Time Stamps (NTP seconds) of the two nodes as first started.
CP_STAMP = RecoveryTimeStamp(3_900_000_000)
UP_STAMP = RecoveryTimeStamp(3_900_000_100)
CP_FEATURES = CPFunctionFeatures(CPFeatures.LOAD | CPFeatures.OVRL)
UP_FEATURES = UPFunctionFeatures(UPFeatures.BUCP | UPFeatures.DDND)


def cp_config(**overrides: Any) -> EndpointConfig:
    """The CP function's config: T1 3 s, N1 3, no heartbeats unless asked."""
    values: dict[str, Any] = {
        "node_id": CP_NODE_ID,
        "recovery_time_stamp": CP_STAMP,
        "cp_function_features": CP_FEATURES,
        "retransmit": RetransmitPolicy(t1=3.0, n1=3),
        "heartbeat_interval": None,
    }
    values.update(overrides)
    return EndpointConfig(**values)


def up_config(**overrides: Any) -> EndpointConfig:
    """The UP function's config: T1 3 s, N1 3, no heartbeats unless asked."""
    values: dict[str, Any] = {
        "node_id": UP_NODE_ID,
        "recovery_time_stamp": UP_STAMP,
        "up_function_features": UP_FEATURES,
        "retransmit": RetransmitPolicy(t1=3.0, n1=3),
        "heartbeat_interval": None,
    }
    values.update(overrides)
    return EndpointConfig(**values)


@dataclass(frozen=True, slots=True)
class Datagram:
    """One UDP datagram between the two sides (or to/from a third address)."""

    time: float
    src: Address
    dst: Address
    data: bytes

    @property
    def message_type(self) -> int:
        """The message type octet of the (first) message, without decoding."""
        return self.data[1] if len(self.data) > 1 else -1

    def decode(self) -> Message:
        """The message it carries (raises :class:`pfcp.DecodeError` if it is not one)."""
        return pfcp.decode(self.data)


#: Sees one round of datagrams in flight, returns what gets through (in order).
DatagramFilter = Callable[[list[Datagram]], Iterable[Datagram]]


def is_type(*message_types: int) -> Callable[[Datagram], bool]:
    """A predicate: the datagram carries one of ``message_types``."""
    wanted = {int(t) for t in message_types}
    return lambda d: d.message_type in wanted


def drop_where(predicate: Callable[[Datagram], bool]) -> DatagramFilter:
    """A filter losing every datagram ``predicate`` selects."""
    return lambda batch: [d for d in batch if not predicate(d)]


def duplicate_where(predicate: Callable[[Datagram], bool]) -> DatagramFilter:
    """A filter delivering every datagram ``predicate`` selects twice in a row."""

    def dup(batch: list[Datagram]) -> list[Datagram]:
        out: list[Datagram] = []
        for d in batch:
            out.extend((d, d) if predicate(d) else (d,))
        return out

    return dup


def reverse(batch: list[Datagram]) -> list[Datagram]:
    """A filter delivering each round's datagrams in reverse order."""
    return batch[::-1]


class PfcpPair:
    """A CP endpoint and a UP endpoint sharing a fake clock and an in-memory link."""

    def __init__(
        self,
        cp: EndpointConfig | None = None,
        up: EndpointConfig | None = None,
        *,
        now: float = 0.0,
        cp_addr: Address = CP_ADDR,
        up_addr: Address = UP_ADDR,
    ) -> None:
        self.cp_cfg = cp if cp is not None else cp_config()
        self.up_cfg = up if up is not None else up_config()
        self.cp = PfcpEndpoint(self.cp_cfg)
        self.up = PfcpEndpoint(self.up_cfg)
        #: The shared fake clock, in seconds.
        self.now = now
        self.cp_addr = cp_addr
        self.up_addr = up_addr
        #: Standing filter applied by every :meth:`flush` that is not given one.
        self.filter: DatagramFilter | None = None
        #: Every datagram either endpoint emitted, in order.
        self.sent: list[Datagram] = []
        #: Every datagram handed to an endpoint (after filtering), in order.
        self.delivered: list[Datagram] = []
        #: Datagrams a filter removed, or addressed to nobody.
        self.lost: list[Datagram] = []
        #: Emitted but not delivered yet.
        self.in_flight: list[Datagram] = []
        #: Events per side, in order.
        self.events: dict[Side, list[Event]] = {"cp": [], "up": []}
        #: (time, side, event) for every event, in order.
        self.timeline: list[tuple[float, Side, Event]] = []

    # -- who is who -------------------------------------------------------

    def endpoint(self, side: Side) -> PfcpEndpoint:
        return self.cp if side == "cp" else self.up

    def addr(self, side: Side) -> Address:
        return self.cp_addr if side == "cp" else self.up_addr

    def peer_addr(self, side: Side) -> Address:
        """The address of the other side, as ``side`` sees it."""
        return self.up_addr if side == "cp" else self.cp_addr

    def side_at(self, addr: Address) -> Side | None:
        if addr == self.cp_addr:
            return "cp"
        if addr == self.up_addr:
            return "up"
        return None

    def move(self, side: Side, addr: Address) -> None:
        """``side`` now sends from and listens on ``addr`` (datagrams to the old one are lost)."""
        if side == "cp":
            self.cp_addr = addr
        else:
            self.up_addr = addr

    def restart(self, side: Side, config: EndpointConfig | None = None) -> PfcpEndpoint:
        """Replace ``side`` by a fresh endpoint (same config unless given): a restarted node.

        Its pending output is lost with it; what is already in flight still arrives.
        """
        if side == "cp":
            self.cp_cfg = config or self.cp_cfg
            self.cp = PfcpEndpoint(self.cp_cfg)
            return self.cp
        self.up_cfg = config or self.up_cfg
        self.up = PfcpEndpoint(self.up_cfg)
        return self.up

    # -- moving datagrams ---------------------------------------------------

    def collect(self) -> list[Datagram]:
        """Take what both endpoints want to send (CP first) into :attr:`in_flight`."""
        new: list[Datagram] = []
        for side in SIDES:
            src = self.addr(side)
            for data, dst in self.endpoint(side).datagrams_to_send():
                new.append(Datagram(self.now, src, dst, data))
        self.sent.extend(new)
        self.in_flight.extend(new)
        self._drain_events()
        return new

    def flush(self, filter: DatagramFilter | None = None, *, max_rounds: int = 1000) -> list[Datagram]:
        """Deliver until both sides are quiet; returns what was delivered."""
        through = filter if filter is not None else self.filter
        delivered: list[Datagram] = []
        for _ in range(max_rounds):
            self.collect()
            if not self.in_flight:
                return delivered
            batch, self.in_flight = self.in_flight, []
            passed = list(through(batch)) if through is not None else batch
            kept = {id(d) for d in passed}
            self.lost.extend(d for d in batch if id(d) not in kept)
            for d in passed:
                side = self.side_at(d.dst)
                if side is None:
                    self.lost.append(d)
                    continue
                self.endpoint(side).receive_datagram(d.data, d.src, self.now)
                self.delivered.append(d)
                delivered.append(d)
                self._drain_events()
        raise RuntimeError(f"still not quiet after {max_rounds} rounds: a datagram storm")

    def inject(self, side: Side, data: bytes, src: Address) -> list[Datagram]:
        """Hand ``side`` raw bytes from ``src`` now; returns what ``side`` emitted in reply
        (collected into :attr:`in_flight`, not delivered)."""
        self.endpoint(side).receive_datagram(data, src, self.now)
        return [d for d in self.collect() if d.src == self.addr(side)]

    # -- time -------------------------------------------------------------

    def next_timer(self) -> float | None:
        """The earliest timer of either side."""
        timers = [t for t in (self.cp.get_timer(), self.up.get_timer()) if t is not None]
        return min(timers) if timers else None

    def advance(self, *, deliver: bool = True, filter: DatagramFilter | None = None) -> float:
        """Move the clock to the next timer, run every due endpoint, then deliver (unless not)."""
        when = self.next_timer()
        if when is None:
            raise RuntimeError("no timer is set on either side")
        self.now = max(self.now, when)
        for side in SIDES:
            ep = self.endpoint(side)
            timer = ep.get_timer()
            if timer is not None and timer <= self.now:
                ep.handle_timer(self.now)
        self.collect()
        if deliver:
            self.flush(filter)
        return self.now

    def run_until(self, until: float, *, deliver: bool = True, filter: DatagramFilter | None = None) -> None:
        """Run every timer due up to ``until`` (inclusive), then set the clock to ``until``."""
        while True:
            when = self.next_timer()
            if when is None or when > until:
                break
            self.advance(deliver=deliver, filter=filter)
        self.now = max(self.now, until)

    def run_until_idle(self, *, limit: float = 1e6, filter: DatagramFilter | None = None) -> None:
        """Run timers until neither side has one (bounded by ``limit`` seconds from now)."""
        end = self.now + limit
        while (when := self.next_timer()) is not None:
            if when > end:
                raise RuntimeError(f"timers still running at {end}")
            self.advance(filter=filter)

    # -- the application ----------------------------------------------------

    def request(self, side: Side, msg: Message, to: Address | None = None) -> int:
        """``side`` sends ``msg`` to the other side, or to ``to`` (not delivered yet);
        returns its sequence number."""
        sequence = self.endpoint(side).send_request(msg, self.peer_addr(side) if to is None else to, self.now)
        self.collect()
        return sequence

    def respond(self, side: Side, request: RequestReceived, response: Message) -> None:
        """``side`` answers ``request`` (not delivered yet)."""
        self.endpoint(side).send_response(request, response, self.now)
        self.collect()

    def associate(self, initiator: Side = "cp") -> None:
        """Set up the association from ``initiator`` and deliver the exchange."""
        self.endpoint(initiator).associate(self.peer_addr(initiator), self.now)
        self.flush()

    def events_of(self, side: Side, kind: type[E]) -> list[E]:
        """The events of ``side`` of type ``kind`` so far."""
        return [e for e in self.events[side] if isinstance(e, kind)]

    def pop_events(self, side: Side) -> list[Event]:
        """Every event of ``side`` so far, forgetting them."""
        out, self.events[side] = self.events[side], []
        return out

    def clear_events(self) -> None:
        """Forget every event so far, of both sides and in the timeline."""
        self.events = {"cp": [], "up": []}
        self.timeline.clear()

    def sent_by(self, side: Side, *message_types: int) -> list[Datagram]:
        """Datagrams ``side`` emitted (from its current address), optionally of given types."""
        src = self.addr(side)
        wanted = {int(t) for t in message_types}
        return [d for d in self.sent if d.src == src and (not wanted or d.message_type in wanted)]

    def _drain_events(self) -> None:
        for side in SIDES:
            ep = self.endpoint(side)
            while (event := ep.next_event()) is not None:
                self.events[side].append(event)
                self.timeline.append((self.now, side, event))
