"""The software dataplane's N3 side: GTP-U sockets and the GTP-U signalling the UPF answers itself.

Theory of operation:

* :func:`open_n3_socket` opens one non-blocking UDP socket on port 2152 of an N3
  address, with large buffers (a burst of G-PDUs must not overflow the socket
  while the loop is busy with the previous batch).
* :class:`GtpuSignalling` handles what arrives on N3 and is not a G-PDU (TS 29.281
  §7): it answers Echo Request (§7.2.2), counts and records Error Indications from
  peers (§7.3.1), counts End Markers and Echo Responses. It also answers a G-PDU on
  a TEID no session owns with an Error Indication (§7.3.1), through a token bucket
  so that a flood of bad TEIDs never becomes a flood of replies.
* Answers leave from the socket the request came in on, so their source is the
  address the peer used. Counters go into the driver's own ``Counter`` (shared).
"""

from __future__ import annotations

import collections
import logging
import socket
import time
from ipaddress import IPv4Address, IPv6Address
from typing import Final

from . import gtpu

__all__ = ["GtpuSignalling", "open_n3_socket"]

log = logging.getLogger("user_plane.software")

#: socket(7) SO_RCVBUFFORCE / SO_SNDBUFFORCE: with CAP_NET_ADMIN, beyond net.core.rmem_max (which
#: a child namespace cannot raise).
_SO_SNDBUFFORCE: Final = getattr(socket, "SO_SNDBUFFORCE", 32)
_SO_RCVBUFFORCE: Final = getattr(socket, "SO_RCVBUFFORCE", 33)

IPAddress = IPv4Address | IPv6Address


def open_n3_socket(address: IPAddress, rcvbuf: int, sndbuf: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``[address]:2152`` (TS 29.281 §4.4.2)."""
    family = socket.AF_INET if isinstance(address, IPv4Address) else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        _set_buffer(sock, _SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf)
        _set_buffer(sock, _SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf)
        sock.setblocking(False)
        sock.bind((str(address), gtpu.GTPU_PORT))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"N3 socket on [{address}]:{gtpu.GTPU_PORT}: {exc.strerror}") from None
    return sock


def _set_buffer(sock: socket.socket, force: int, plain: int, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:  # no CAP_NET_ADMIN: capped at net.core.[rw]mem_max
        sock.setsockopt(socket.SOL_SOCKET, plain, size)


class GtpuSignalling:
    """GTP-U signalling on N3 (the slow path): ``counters`` is the driver's, updated in place.

    ``error_indication_rate``: Error Indications sent per second at most (a token
    bucket with as many tokens of burst)."""

    def __init__(self, counters: collections.Counter[str], error_indication_rate: float) -> None:
        self.counters = counters
        #: The last Error Indications received from peers: (peer address, TEID, GTP-U Peer Address).
        #: A gNB sends one when it no longer knows the TEID we send downlink on (TS 29.281 §7.3.1).
        self.error_indications: collections.deque[tuple[str, int | None, str | None]] = collections.deque(maxlen=64)
        self._ei_rate = error_indication_rate
        self._ei_tokens = error_indication_rate
        self._ei_last = 0.0

    def reply(self, sock: socket.socket, data: bytes, peer: tuple[str, int], what: str) -> None:
        # From the socket the request came in on, so the source is the address the peer used.
        try:
            sock.sendto(data, peer)
        except OSError:
            self.counters[f"drop.{what}_send_error"] += 1
            return
        self.counters["n3.tx"] += 1
        self.counters[f"n3.tx.{what}"] += 1

    def unknown_teid(self, sock: socket.socket, local: IPAddress, peer: tuple[str, int], teid: int) -> None:
        """A G-PDU arrived on ``local`` from ``peer`` for a TEID no session owns."""
        # TS 29.281 §7.3.1: a G-PDU on a TEID with no context is answered with an Error Indication
        # carrying that TEID and our address the G-PDU was sent to, from port 2152 to port 2152
        # (§4.4.2.3); the UDP Port extension header (§5.2.2.1) gives the G-PDU's source port.
        # A token bucket bounds the answers: a flood of bad TEIDs must not become a flood of replies.
        self.counters["drop.unknown_teid"] += 1
        now = time.monotonic()
        self._ei_tokens = min(self._ei_rate, self._ei_tokens + (now - self._ei_last) * self._ei_rate)
        self._ei_last = now
        if self._ei_tokens < 1.0:
            self.counters["drop.error_indication_rate_limited"] += 1
            return
        self._ei_tokens -= 1.0
        message = gtpu.error_indication(teid, local, udp_port=peer[1])
        self.reply(sock, gtpu.encode(message), (peer[0], gtpu.GTPU_PORT, *peer[2:]), "error_indication")

    def received(self, sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        """A datagram that is not a G-PDU arrived on ``sock`` from ``peer``."""
        try:
            message = gtpu.decode(data)
        except gtpu.GtpuError:
            self.counters["n3.rx.malformed"] += 1
            return
        kind = message.message_type
        if kind == gtpu.MessageType.ECHO_REQUEST:
            # §7.2.2: answered to the request's source port (§4.4.2.2), Recovery restart counter 0.
            self.counters["n3.rx.echo_request"] += 1
            self.reply(sock, gtpu.encode(gtpu.echo_response(message, 0)), peer, "echo_response")
        elif kind == gtpu.MessageType.ERROR_INDICATION:
            # The peer lost the tunnel we send on (e.g. a gNB that released the UE context). The
            # session stays until the CP function acts; operators see it here and in the log.
            self.counters["n3.rx.error_indication"] += 1
            teid_ie = message.ie(gtpu.TEIDDataI)
            address_ie = message.ie(gtpu.GTPUPeerAddress)
            teid = teid_ie.teid if teid_ie is not None else None
            address = str(address_ie.address) if address_ie is not None else None
            self.error_indications.append((peer[0], teid, address))
            log.warning("GTP-U Error Indication from %s for TEID %s at %s", peer[0], teid, address)
        elif kind == gtpu.MessageType.END_MARKER:
            self.counters["n3.rx.end_marker"] += 1
        elif kind == gtpu.MessageType.ECHO_RESPONSE:
            self.counters["n3.rx.echo_response"] += 1
        else:
            self.counters["n3.rx.other"] += 1
