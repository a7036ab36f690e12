"""A minimal PFCP user-plane peer written with pycrate only (no code from ``pfcp``).

It parses every datagram with ``pycrate_mobile.TS29244_PFCP.parse_PFCP`` and
answers, with messages pycrate builds:

* Association Setup Request: Association Setup Response with cause 1 (Request
  accepted), its Node ID (FQDN), Recovery Time Stamp and UP Function Features;
* Heartbeat Request: Heartbeat Response echoing the sequence number, with its
  Recovery Time Stamp; while ``answering`` is False it stays silent.

Anything it cannot parse, or does not expect, goes into ``problems``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import pycrate_mobile.TS29244_PFCP as P

Address = tuple[str, int]

HEARTBEAT_REQUEST = 1
HEARTBEAT_RESPONSE = 2
ASSOCIATION_SETUP_REQUEST = 5
ASSOCIATION_SETUP_RESPONSE = 6

IE_CAUSE = 19
IE_UP_FUNCTION_FEATURES = 43
IE_NODE_ID = 60
IE_RECOVERY_TIME_STAMP = 96
NODE_ID_FQDN = 2


@dataclass(frozen=True)
class Received:
    """A request as pycrate read it."""

    message_type: int
    sequence: int
    node_id: bytes | str | None  # the packed address of an IPv4/IPv6 Node ID, or the FQDN
    recovery_time_stamp: int | None


def ies_by_type(msg: Any) -> dict[int, Any]:
    """A parsed pycrate message's IEs by IE type (the last one of each type)."""
    return {ie["Type"].get_val(): ie for ie in msg[1]}


def node_id_value(ie: Any) -> bytes | str:
    """A Node ID IE as pycrate parsed it: the packed address, or the FQDN with its dots."""
    value = ie["Data"]["Val"].get_val()
    if ie["Data"]["Type"].get_val() == NODE_ID_FQDN:
        return ".".join(label.decode() for _, label in value)
    assert isinstance(value, bytes)
    return value


class PycratePeer(asyncio.DatagramProtocol):
    """A PFCP UP function that only knows how to associate and heartbeat."""

    def __init__(self, node_fqdn: str, recovery_time_stamp: int, up_features: dict[str, dict[str, int]]) -> None:
        self.node_fqdn = node_fqdn
        self.recovery_time_stamp = recovery_time_stamp
        #: UP Function Features, octet by octet as pycrate names them ({"Octet1": {"FTUP": 1}, ...}).
        self.up_features = up_features
        self.answering = True
        self.received: list[Received] = []
        self.setups_answered = 0
        self.heartbeats_answered = 0
        self.heartbeats_ignored = 0
        self.problems: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        peer: Address = (addr[0], addr[1])
        msg, err = P.parse_PFCP(data)
        if err:
            self.problems.append(f"pycrate cannot parse {data.hex()} (error {err})")
            return
        hdr = msg[0]
        message_type, sequence = hdr["Type"].get_val(), hdr["SeqNum"].get_val()
        ies = ies_by_type(msg)
        node = node_id_value(ies[IE_NODE_ID]) if IE_NODE_ID in ies else None
        stamp = ies[IE_RECOVERY_TIME_STAMP]["Data"]["Val"].get_val() if IE_RECOVERY_TIME_STAMP in ies else None
        self.received.append(Received(message_type, sequence, node, stamp))
        if stamp is None:
            self.problems.append(f"message type {message_type} without a Recovery Time Stamp")
        if message_type == ASSOCIATION_SETUP_REQUEST:
            self._send(self.association_setup_response(sequence), peer)
            self.setups_answered += 1
        elif message_type == HEARTBEAT_REQUEST:
            if not self.answering:
                self.heartbeats_ignored += 1
                return
            self._send(self.heartbeat_response(sequence), peer)
            self.heartbeats_answered += 1
        else:
            self.problems.append(f"unexpected message type {message_type}")

    def association_setup_response(self, sequence: int) -> bytes:
        msg = P.PFCPAssociationSetupResp()
        msg.set_val(
            [
                {"SeqNum": sequence},
                [
                    {"Type": IE_NODE_ID, "Data": {"Type": NODE_ID_FQDN, "Val": self.node_fqdn}},
                    {"Type": IE_CAUSE, "Data": 1},  # Request accepted
                    {"Type": IE_RECOVERY_TIME_STAMP, "Data": {"Val": self.recovery_time_stamp}},
                    {"Type": IE_UP_FUNCTION_FEATURES, "Data": self.up_features},
                ],
            ]
        )
        data: bytes = msg.to_bytes()
        return data

    def heartbeat_response(self, sequence: int) -> bytes:
        msg = P.PFCPHeartbeatResp()
        msg.set_val(
            [{"SeqNum": sequence}, [{"Type": IE_RECOVERY_TIME_STAMP, "Data": {"Val": self.recovery_time_stamp}}]]
        )
        data: bytes = msg.to_bytes()
        return data

    def _send(self, data: bytes, peer: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, peer)
