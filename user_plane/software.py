"""The software dataplane: a :class:`~user_plane.forward.Forwarder` behind sockets and TUN devices.

Theory of operation:

* N3 is one UDP socket on port 2152 per configured N3 address; N6 is one TUN
  device per Network Instance (:mod:`user_plane.tun`) with the instance's UE
  pools routed into it. The kernel does the rest of the routing: uplink inner
  packets written into a TUN leave by whatever route the namespace has towards
  their destination, downlink packets for a UE address arrive through the TUN.
* The I/O is ``loop.add_reader`` callbacks that drain up to ``read_batch``
  datagrams or packets per wakeup, not asyncio's ``DatagramProtocol``: one
  transport callback per datagram caps the uplink at about 50k packets/s, the
  batched reader at about 260k (measured in ../shared/DATAPLANE.md §3).
* G-PDUs go to :meth:`Forwarder.uplink`, IP packets read from a TUN to
  :meth:`Forwarder.downlink`; the Forwarder holds every rule, meter and buffer.
  :mod:`user_plane.n3` answers the GTP-U signalling: Echo Request (TS 29.281
  §7.2.2), Error Indication for a G-PDU on a TEID no session owns (§7.3.1,
  rate-limited), and counts what arrives from peers (Error Indication, End
  Marker, Echo Response).
* ``n6.<instance>.gateway``: the instance's uplink (what is written into its TUN)
  leaves via that next hop: at start, a default route via it in table
  ``gateway_table_base`` + the instance's position, selected by a rule
  ``iif <tun>`` ahead of the main table (:func:`user_plane.tun.add_gateway_route`);
  both go at stop. UE-to-UE traffic of the instance hairpins at the gateway.
* The eBPF fast path's glue is :mod:`user_plane.software_ebpf`.
* Nothing ever blocks the loop: sockets and TUNs are non-blocking, and a write
  that would block is a counted drop (GTP-U has no flow control; the socket
  buffer or TUN queue being full means we are past capacity anyway).
* Usage reports and downlink-data notifications raised while forwarding are
  handed to the event handler after each batch; URR timers run from one asyncio
  timer armed at :meth:`Forwarder.next_deadline`, re-armed lazily (only when the
  earliest deadline moved earlier).
* Everything is created in the network namespace of the thread that calls
  :meth:`SoftwareDriver.start` (the agent runs inside the UPF's namespace).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Final

import pfcp

from . import gtpu, tun
from .config import N6Config
from .driver import DriverError, DriverEvent, UsageReport
from .forward import Forwarder, UnknownTeid
from .n3 import GtpuSignalling, open_n3_socket
from .session import SessionState
from .software_ebpf import FASTPATH_POLL, FastPathGlue, attach_fastpath

if TYPE_CHECKING:
    from .ebpf.fastpath import FastPath

__all__ = [
    "FASTPATH_POLL",
    "GATEWAY_RULE_PRIORITY",
    "GATEWAY_TABLE_BASE",
    "IPV4_ENCAP_OVERHEAD",
    "IPV6_ENCAP_OVERHEAD",
    "SoftwareDriver",
]

log = logging.getLogger(__name__)

#: Outer IPv4 (20) + UDP (8) + GTP-U with a PDU Session Container (16).
IPV4_ENCAP_OVERHEAD: Final = 44
#: Outer IPv6 (40) + UDP (8) + GTP-U with a PDU Session Container (16).
IPV6_ENCAP_OVERHEAD: Final = 64
#: Largest datagram we read: anything longer than an IP packet cannot be valid.
_MAX_PACKET: Final = 65535
_G_PDU: Final = gtpu.MessageType.G_PDU
#: A timer that fires and finds its deadline still due waits at least this long (a stuck deadline
#: must not spin the loop).
_MIN_TIMER_DELAY: Final = 0.001
#: Routing table of the first Network Instance's gateway route (the next instance's is one more).
GATEWAY_TABLE_BASE: Final = 2_152_000
#: Priority of the ``iif <tun>`` rules: after the local table's (0), before the main table's (32766).
GATEWAY_RULE_PRIORITY: Final = 2152

IPAddress = IPv4Address | IPv6Address


class SoftwareDriver:
    """The ``software`` :class:`~user_plane.driver.Driver`: Python forwarding over UDP sockets and TUN devices.

    ``n3_addresses``: the local GTP-U addresses (a socket is bound to each; the
    first IPv4 and first IPv6 one are the source of what the UPF sends). ``n6``:
    per Network Instance, the TUN device name and the UE pools routed into it.
    ``tun_mtu`` defaults to the smallest MTU of the N3 devices minus the
    encapsulation overhead, so that an encapsulated downlink packet fits on N3.
    ``error_indication_rate``: Error Indications sent per second at most (a
    token bucket with as many tokens of burst). ``gateway_table_base`` and
    ``gateway_rule_priority``: where the gateways' policy routing goes.
    """

    name: str = "software"

    def __init__(
        self,
        n3_addresses: Iterable[IPAddress],
        n6: Mapping[str, N6Config],
        *,
        read_batch: int = 64,
        rcvbuf: int = 8 << 20,
        sndbuf: int = 4 << 20,
        tun_mtu: int | None = None,
        tun_txqueuelen: int = 1000,
        error_indication_rate: float = 100.0,
        clock: Callable[[], float] = time.time,
        fastpath: bool | None = None,
        fastpath_max_sessions: int = 16384,
        gateway_table_base: int = GATEWAY_TABLE_BASE,
        gateway_rule_priority: int = GATEWAY_RULE_PRIORITY,
    ) -> None:
        self._n3: tuple[IPAddress, ...] = tuple(n3_addresses)
        if not self._n3:
            raise ValueError("at least one N3 address is needed")
        if not n6:
            raise ValueError("at least one Network Instance (N6) is needed")
        if read_batch < 1:
            raise ValueError("read_batch must be at least 1")
        self._n3_ipv4 = next((a for a in self._n3 if isinstance(a, IPv4Address)), None)
        self._n3_ipv6 = next((a for a in self._n3 if isinstance(a, IPv6Address)), None)
        self._n6: dict[str, N6Config] = dict(n6)
        self._read_batch = read_batch
        self._rcvbuf = rcvbuf
        self._sndbuf = sndbuf
        self._tun_mtu = tun_mtu
        self._tun_txqueuelen = tun_txqueuelen
        self._clock = clock
        #: The forwarding engine (rules, meters, buffers); replaced by a fresh one on stop().
        self.forwarder = self._new_forwarder()
        #: I/O counters: ``n3.rx``/``n3.tx`` and ``n6.<instance>.rx``/``.tx`` packets, GTP-U signalling
        #: (``n3.rx.echo_request``, ``n3.tx.error_indication``, ...), ``drop.<reason>``, and ``ul_bytes``
        #: / ``dl_bytes``: octets of the IP packets forwarded uplink (written to N6) and downlink (sent
        #: in G-PDUs), as the eBPF fast path counts its own (``ebpf.ul_bytes``). Per Network Instance
        #: (the Python path's, summed per batch; the fast path's are ``ebpf.ni.<instance>.*``):
        #: ``n6.<instance>.tx_bytes`` (uplink octets written to its N6), ``.dl_packets``/``.dl_bytes``
        #: (downlink read from its N6 and sent in G-PDUs at once), ``.dl_drops`` (read from its N6,
        #: neither sent nor buffered) and ``.ul_drops`` (N6 write errors; all_counters() adds the
        #: engine's post-PDR drops). The engine's own drop reasons are in ``forwarder.counters``
        #: (and ``forwarder.rule_drops``); :meth:`all_counters` merges them.
        self.counters: collections.Counter[str] = collections.Counter()
        self._signalling = GtpuSignalling(self.counters, error_indication_rate)
        #: The last Error Indications received from peers: (peer address, TEID, GTP-U Peer Address).
        #: A gNB sends one when it no longer knows the TEID we send downlink on (TS 29.281 §7.3.1).
        self.error_indications = self._signalling.error_indications
        self._handler: Callable[[DriverEvent], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._n3_sockets: list[socket.socket] = []
        self._send_v4: socket.socket | None = None
        self._send_v6: socket.socket | None = None
        self._tun_fds: dict[str, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        #: None: the eBPF fast path if it loads (one log line when not); True: required; False: off.
        self._want_fastpath = fastpath
        self._fastpath_max_sessions = fastpath_max_sessions
        self._fp: FastPathGlue | None = None
        #: Network Instance -> routing table of its gateway route (see gateway_tables).
        self._gateway_tables = {
            instance: gateway_table_base + position
            for position, (instance, n6) in enumerate(self._n6.items())
            if n6.gateway is not None
        }
        self._gateway_priority = gateway_rule_priority
        self._gateways_applied: list[str] = []  # instances whose policy routing may exist

    @classmethod
    def from_config(cls, n3: Iterable[IPAddress], n6: Mapping[str, N6Config]) -> SoftwareDriver:
        """From the agent's configuration pieces (``UpfConfig.n3``, ``UpfConfig.n6``)."""
        return cls(n3, n6)

    def _new_forwarder(self) -> Forwarder:
        return Forwarder(self._n3_ipv4, self._n3_ipv6, tuple(self._n6))

    # -- Driver protocol ------------------------------------------------------------------------

    @property
    def features(self) -> pfcp.UPFeatures:
        return self.forwarder.features

    @property
    def started(self) -> bool:
        return self._loop is not None

    @property
    def fastpath(self) -> FastPath | None:
        """The eBPF fast path while started with one (see user_plane/ebpf/)."""
        return self._fp.fastpath if self._fp is not None else None

    @property
    def gateway_tables(self) -> Mapping[str, int]:
        """Network Instance -> the routing table holding its default route via its gateway
        (instances with a gateway only; the rule selecting it is at ``gateway_rule_priority``)."""
        return self._gateway_tables

    @property
    def tun_mtu(self) -> int | None:
        """The MTU given to the TUN devices (known after start when derived from N3)."""
        return self._tun_mtu

    async def start(self) -> None:
        if self._loop is not None:
            raise DriverError("the software dataplane is already started")
        loop = asyncio.get_running_loop()
        try:
            await self._open(loop)
            self._loop = loop
            if self._want_fastpath is not False:
                self._fp = await attach_fastpath(self, bool(self._want_fastpath), self._fastpath_max_sessions)
        except BaseException as exc:
            await self._shutdown()
            if isinstance(exc, OSError):
                raise DriverError(f"software dataplane: {exc}") from exc
            raise
        off = tun.forwarding_disabled(pool.version for n6 in self._n6.values() for pool in n6.ue_pool)
        if off:
            log.warning("IP forwarding is off for IPv%s here: N6 traffic will not be routed", "/".join(map(str, off)))
        log.info(
            "software dataplane up: N3 %s, N6 %s, TUN MTU %s, eBPF fast path %s",
            ", ".join(map(str, self._n3)),
            ", ".join(
                f"{ni}={n6.interface}" + (f" via {n6.gateway}" if n6.gateway is not None else "")
                for ni, n6 in self._n6.items()
            ),
            self._tun_mtu,
            "on" if self._fp is not None else "off",
        )

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        # Sockets first: a wrong N3 address fails before any device exists.
        for address in self._n3:
            sock = open_n3_socket(address, self._rcvbuf, self._sndbuf)
            self._n3_sockets.append(sock)
            if isinstance(address, IPv4Address) and self._send_v4 is None:
                self._send_v4 = sock
            elif isinstance(address, IPv6Address) and self._send_v6 is None:
                self._send_v6 = sock
        if self._tun_mtu is None:
            self._tun_mtu = await self._derive_tun_mtu()
        for instance, n6 in self._n6.items():
            fd = tun.open_tun(n6.interface)
            self._tun_fds[instance] = fd
            if not any(pool.version == 6 for pool in n6.ue_pool):
                tun.disable_ipv6(n6.interface)
            await tun.configure_tun(n6.interface, self._tun_mtu, n6.ue_pool, self._tun_txqueuelen)
        for instance, table in self._gateway_tables.items():
            n6 = self._n6[instance]
            assert n6.gateway is not None
            self._gateways_applied.append(instance)  # before: a half-done add is undone too
            await tun.add_gateway_route(n6.interface, n6.gateway, table, self._gateway_priority)
        for sock, address in zip(self._n3_sockets, self._n3, strict=True):
            loop.add_reader(sock.fileno(), self._on_n3, sock, address)
        for instance, fd in self._tun_fds.items():
            loop.add_reader(fd, self._on_n6, instance, fd)

    async def _derive_tun_mtu(self) -> int:
        mtus = [m for m in [await tun.interface_mtu(a) for a in self._n3] if m is not None]
        n3_mtu = min(mtus) if mtus else 1500
        overhead = IPV6_ENCAP_OVERHEAD if self._n3_ipv6 is not None else IPV4_ENCAP_OVERHEAD
        # IPv6 needs at least 1280 on every link (RFC 8200 §5); below that the N3 MTU must be raised.
        return max(n3_mtu - overhead, 1280)

    async def stop(self) -> None:
        await self._shutdown()
        self.forwarder = self._new_forwarder()

    async def _shutdown(self) -> None:
        """Close everything, then take the gateways' policy routing away (best effort: what
        cannot be removed is logged, the rest still goes)."""
        self._close()
        while self._gateways_applied:
            instance = self._gateways_applied.pop()
            n6 = self._n6[instance]
            assert n6.gateway is not None
            table = self._gateway_tables[instance]
            try:
                await tun.remove_gateway_route(n6.interface, n6.gateway, table, self._gateway_priority)
            except OSError as exc:
                log.error("n6.%s.gateway: %s", instance, exc)

    def _close(self) -> None:
        loop, self._loop = self._loop, None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None
        fp, self._fp = self._fp, None
        if fp is not None:
            fp.close()  # detaches BPF and restores the N3 devices' TX checksum offload
        for sock in self._n3_sockets:
            if loop is not None:
                loop.remove_reader(sock.fileno())
            sock.close()
        self._n3_sockets.clear()
        self._send_v4 = self._send_v6 = None
        for fd in self._tun_fds.values():
            if loop is not None:
                loop.remove_reader(fd)
            os.close(fd)  # the device and its routes go with the last descriptor
        self._tun_fds.clear()

    def set_event_handler(self, handler: Callable[[DriverEvent], None]) -> None:
        self._handler = handler
        self._dispatch_events()

    def install(self, state: SessionState, end_marker_fars: Collection[int] = ()) -> None:
        fp = self._fp
        if fp is not None:
            fp.fold(state.up_seid)  # what BPF counted belongs to the rules in force so far
        datagrams = self.forwarder.install(state, self._clock(), end_marker_fars)
        for data, peer in datagrams:
            self._send(data, peer)
        if fp is not None:
            fp.apply(state)
        self._after_batch()

    def remove(self, up_seid: int) -> list[UsageReport]:
        if self._fp is not None:
            self._fp.remove(up_seid)
        reports = self.forwarder.remove(up_seid, self._clock())
        self._after_batch()
        return reports

    def query(
        self, up_seid: int, urr_ids: Collection[int] | None = None, reference: int | None = None
    ) -> list[UsageReport]:
        fp = self._fp
        if fp is None:
            return self.forwarder.query(up_seid, urr_ids, self._clock(), reference)
        fp.fold(up_seid)
        reports = self.forwarder.query(up_seid, urr_ids, self._clock(), reference)
        fp.refresh(up_seid)  # the reports restarted the measurement: a new budget
        return reports

    def take_removed_reports(self, up_seid: int) -> list[UsageReport]:
        """Final reports of URRs that installs removed since the last call (§7.5.4: they go in
        the Session Modification Response); the agent looks this up on the driver."""
        return self.forwarder.take_removed_reports(up_seid)

    def drop_buffered(self, up_seid: int) -> int:
        return self.forwarder.drop_buffered(up_seid)

    def installed(self) -> Mapping[int, SessionState]:
        return self.forwarder.installed()

    def all_counters(self) -> dict[str, int]:
        """I/O counters, the forwarding engine's (prefixed ``forward.``: its drop reasons, and
        its rule drops again by direction) and the eBPF fast path's (``ebpf.``: offloaded
        sessions, packets/octets it forwarded per direction and per Network Instance, punts
        and drops by reason, drops by direction and reason) in one mapping."""
        merged = dict(self.counters)
        merged.update({f"forward.{key}": value for key, value in self.forwarder.counters.items()})
        # The rule drops by direction too (forward.ul_drop_gate...): forward.drop_gate is their sum.
        merged.update({f"forward.{key}": value for key, value in self.forwarder.rule_drops.items()})
        for instance, dropped in self.forwarder.ul_drops.items():
            key = f"n6.{instance}.ul_drops"
            merged[key] = merged.get(key, 0) + dropped
        if self._fp is not None:
            merged.update(self._fp.counters())
        return merged

    # -- hot paths ------------------------------------------------------------------------------

    def _on_n3(self, sock: socket.socket, local: IPAddress) -> None:
        """Drain up to ``read_batch`` datagrams from an N3 socket."""
        recvfrom = sock.recvfrom
        uplink = self.forwarder.uplink
        fp = self._fp
        fp_teids = fp.fastpath.teids if fp is not None else None
        tun_fds = self._tun_fds
        write = os.write
        now = self._clock()
        received = 0
        written: dict[str, int] = {}
        written_bytes: dict[str, int] = {}  # per instance: ul_bytes and n6.<instance>.tx_bytes
        for _ in range(self._read_batch):
            try:
                data, peer = recvfrom(_MAX_PACKET)
            except BlockingIOError:
                break
            except OSError as exc:  # e.g. a queued ICMP error on the socket
                self.counters[f"n3.rx_error.{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
                break
            received += 1
            if len(data) > 1 and data[1] == _G_PDU:
                if fp_teids and len(data) >= 8:
                    seid = fp_teids.get(int.from_bytes(data[4:8], "big"))
                    if seid is not None and fp is not None:
                        fp.touch(seid)
                result = uplink(data, now)
                if type(result) is tuple:
                    instance, packet = result
                    try:
                        write(tun_fds[instance], packet)
                        written[instance] = written.get(instance, 0) + 1
                        written_bytes[instance] = written_bytes.get(instance, 0) + len(packet)
                    except BlockingIOError:
                        self.counters["drop.n6_write_would_block"] += 1
                        self.counters[f"n6.{instance}.ul_drops"] += 1
                    except OSError:
                        self.counters["drop.n6_write_error"] += 1
                        self.counters[f"n6.{instance}.ul_drops"] += 1
                elif isinstance(result, UnknownTeid):
                    self._signalling.unknown_teid(sock, local, peer, result.teid)
            else:
                self._signalling.received(sock, data, peer)
        if received:
            counters = self.counters
            counters["n3.rx"] += received
            counters["ul_bytes"] += sum(written_bytes.values())
            for instance, count in written.items():
                counters[f"n6.{instance}.tx"] += count
                counters[f"n6.{instance}.tx_bytes"] += written_bytes[instance]
            if fp is not None and fp.touched:
                fp.after_batch()
            self._after_batch()

    def _on_n6(self, instance: str, fd: int) -> None:
        """Drain up to ``read_batch`` IP packets from a Network Instance's TUN."""
        read = os.read
        downlink = self.forwarder.downlink
        send_v4, send_v6 = self._send_v4, self._send_v6
        fp = self._fp
        fp_ues = fp.fastpath.ues if fp is not None else None
        now = self._clock()
        received = sent = forwarded_bytes = 0
        buffered = self.forwarder.dl_buffered
        for _ in range(self._read_batch):
            try:
                packet = read(fd, _MAX_PACKET)
            except BlockingIOError:
                break
            except OSError as exc:
                self.counters[f"n6.{instance}.rx_error.{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
                break
            received += 1
            if fp_ues and len(packet) >= 20 and packet[0] >> 4 == 4:
                seid = fp_ues.get(packet[16:20])
                if seid is not None and fp is not None:
                    fp.touch(seid)
            result = downlink(instance, packet, now)
            if result is None:
                continue
            data, peer = result
            sock = send_v6 if ":" in peer[0] else send_v4
            if sock is None:
                self.counters["drop.no_n3_address_of_family"] += 1
                continue
            try:
                sock.sendto(data, peer)
                sent += 1
                forwarded_bytes += len(packet)
            except BlockingIOError:
                self.counters["drop.n3_send_would_block"] += 1
            except OSError:
                self.counters["drop.n3_send_error"] += 1
        if received:
            counters = self.counters
            counters[f"n6.{instance}.rx"] += received
            counters["n3.tx"] += sent
            counters["dl_bytes"] += forwarded_bytes
            # This instance's share of the downlink: sent now, and dropped (neither sent nor buffered).
            counters[f"n6.{instance}.dl_packets"] += sent
            counters[f"n6.{instance}.dl_bytes"] += forwarded_bytes
            counters[f"n6.{instance}.dl_drops"] += received - sent - (self.forwarder.dl_buffered - buffered)
            if fp is not None and fp.touched:
                fp.after_batch()
            self._after_batch()

    # -- sending on N3 outside the hot path (End Markers, released buffers) ----------------------

    def _send(self, data: bytes, peer: tuple[str, int]) -> bool:
        sock = self._send_v6 if ":" in peer[0] else self._send_v4
        if sock is None:
            self.counters["drop.no_n3_address_of_family" if self._loop else "drop.not_started"] += 1
            return False
        try:
            sock.sendto(data, peer)
        except BlockingIOError:
            self.counters["drop.n3_send_would_block"] += 1
            return False
        except OSError:
            self.counters["drop.n3_send_error"] += 1
            return False
        self.counters["n3.tx"] += 1
        return True

    # -- events and timers ----------------------------------------------------------------------

    def _after_batch(self) -> None:
        """Hand over events and make sure the timer is armed early enough.

        After a rule change and after every packet batch (a packet can bring a deadline
        forward: a measurement starting at the first packet, §5.2.2.2) the earliest deadline
        is looked up: :meth:`Forwarder.next_deadline` is a heap look-up (O(1) when nothing
        moved, see :mod:`user_plane.timers`), so a URR timer never fires late."""
        if self.forwarder.events:
            self._dispatch_events()
        if self._loop is None:
            return
        deadline = self.forwarder.next_deadline()
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            self._arm(deadline, 0.0)

    def _arm(self, deadline: float, floor: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        delay = max(deadline - self._clock(), floor)
        self._timer = self._loop.call_later(delay, self._on_timer)
        self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        if self._fp is None:
            self.forwarder.tick(self._clock())
        else:
            self._fp.tick()
        self._dispatch_events()
        deadline = self.forwarder.next_deadline()
        if deadline is not None and self._loop is not None:
            self._arm(deadline, _MIN_TIMER_DELAY)

    def _dispatch_events(self) -> None:
        events = self.forwarder.events
        handler = self._handler
        if handler is None:
            # Nobody to tell (not wired to an agent): dropping keeps memory bounded.
            self.counters["drop.event_without_handler"] += len(events)
            events.clear()
            return
        while events:
            event = events.popleft()
            try:
                handler(event)
            except Exception:
                self.counters["event_handler_error"] += 1
                log.exception("event handler failed on %r", event)
