"""The RAN simulator: one gNB serving many UEs over real GTP-U on N3 (TS 29.281, TS 38.415).

Run one process per gNB inside the gNB's network namespace (``python -m edge_sites.sim.gnb
--config FILE``; :mod:`edge_sites.sim.gnb_control` has the control socket, the client and
:class:`~edge_sites.sim.gnb_control.GnbProcess`). This module is the engine, :class:`Gnb`.

Theory of operation:

* **UEs are local addresses.** The gNB owns a TUN device. Each attached UE's IP is a /32 on
  it, with a policy rule ``from <UE IP> lookup <table>`` whose table routes everything into the
  TUN. Ordinary sockets bound to the UE's address (ICMP, UDP, TCP) therefore send through the
  gNB, and packets written into the TUN for that address are delivered to them. The rule also
  makes the reverse-path check of downlink packets succeed (the route back is the TUN).
* **Uplink.** A packet read from the TUN is matched to its UE by source address and sent as a
  G-PDU (TS 29.281 §5.1) with the UE's uplink TEID (the UPF's N3 F-TEID) and a PDU Session
  Container holding UL PDU SESSION INFORMATION with the QFI (TS 29.281 §5.2.2.7, TS 38.415
  §5.5.2.2), from the gNB's N3 address to the UPF's, port 2152 (§4.4.2.3).
* **Downlink.** A G-PDU arriving on the N3 socket is matched by TEID (the gNB's own downlink
  TEID per UE) and its T-PDU written to the TUN, if it is addressed to that UE. A G-PDU on a
  TEID no UE owns is counted and answered with an Error Indication (§7.3.1, rate limited).
* **Signalling.** Echo Request is answered (§7.2.2), :meth:`Gnb.echo` sends one (§7.2.1);
  an End Marker (§7.3.2) on a UE's TEID is counted, and on a TEID the UE left by
  :meth:`Gnb.move` it releases that old TEID: nothing more comes on the old path.
* Reads drain up to :data:`READ_BATCH` packets per wake-up through ``loop.add_reader`` (asyncio's
  datagram transport caps at ~50k pps: ../shared/DATAPLANE.md).
* The gNB configures only the namespace it runs in and refuses to start outside one of the
  project's (:func:`~edge_sites.sim.netns.require_project_netns`). The TUN device, its
  addresses and its routes vanish with the process; the rules are removed by :meth:`Gnb.stop`
  and, left by a crashed run, by the next :meth:`Gnb.start` (they point at our table).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import errno
import itertools
import logging
import os
import socket
import time
from collections.abc import Awaitable
from ipaddress import IPv4Address
from typing import Any, Final

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]

from user_plane import gtpu, tun
from user_plane.n3 import GtpuSignalling, open_n3_socket

from .gnb_config import FieldError, GnbConfig, UeCounters, UeTunnel
from .netns import require_project_netns

__all__ = ["READ_BATCH", "Gnb", "GnbError", "encapsulate_uplink"]

log = logging.getLogger("edge_sites.sim.gnb")

#: Packets drained per wake-up of a reader.
READ_BATCH: Final = 64
_MAX_PACKET: Final = 65535
_SOCKET_BUFFER: Final = 4 << 20
_G_PDU: Final = 0xFF


def encapsulate_uplink(tunnel: UeTunnel, packet: bytes) -> bytes:
    """The G-PDU carrying a UE's uplink ``packet`` on N3: TS 29.281 §5.1 header (E flag, the
    UPF's TEID) with one PDU Session Container (§5.2.2.7) holding UL PDU SESSION INFORMATION
    (PDU Type 1) and the QFI (TS 38.415 §5.5.2.2), then the packet."""
    return gtpu.encode_gpdu_header(tunnel.uplink_teid, len(packet), tunnel.qfi, pdu_type_dl=False) + packet


class GnbError(RuntimeError):
    """A request the gNB cannot carry out; ``field`` names the offending field, if one does."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(slots=True, eq=False)
class _Ue:
    tunnel: UeTunnel
    key: bytes  # the packed UE address: what the uplink lookup and the downlink check compare
    peer: tuple[str, int]
    counters: UeCounters
    #: Downlink TEIDs the UE had before a move(): kept until an End Marker arrives on them.
    previous_teids: set[int]


class Gnb:
    """One gNB: :meth:`start` in the gNB's namespace, then attach / detach / move UEs."""

    def __init__(self, config: GnbConfig) -> None:
        self.config = config
        #: gNB-wide counters: N3 signalling (``n3.*``, shared with user_plane.n3) and drops.
        self.counters: collections.Counter[str] = collections.Counter()
        self._by_ip: dict[IPv4Address, _Ue] = {}
        self._by_src: dict[bytes, _Ue] = {}
        self._by_teid: dict[int, _Ue] = {}
        self._signalling = GtpuSignalling(self.counters, config.error_indication_rate)
        self._sock: socket.socket | None = None
        self._tun_fd: int | None = None
        self._tun_index = 0
        self._lock = asyncio.Lock()
        self._echo_sequence = itertools.count(1)
        self._echo_waiters: dict[tuple[str, int], asyncio.Future[float]] = {}
        self.netns = ""

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open N3 and the TUN device, route it, attach the configured UEs."""
        config = self.config
        # First, before anything is opened: a gNB outside our namespaces must change nothing.
        self.netns = require_project_netns(config.netns_prefix)
        try:
            self._sock = open_n3_socket(config.n3_address, _SOCKET_BUFFER, _SOCKET_BUFFER)
            self._tun_fd = tun.open_tun(config.tun_name)
            tun.disable_ipv6(config.tun_name)  # no router solicitations read back as uplink
            await tun.configure_tun(config.tun_name, config.tun_mtu, ())
            async with AsyncIPRoute() as ipr:
                self._tun_index = (await ipr.link_lookup(ifname=config.tun_name))[0]
                await self._remove_our_rules(ipr)
            loop = asyncio.get_running_loop()
            loop.add_reader(self._sock.fileno(), self._on_n3)
            loop.add_reader(self._tun_fd, self._on_tun)
            for ue in config.ues:
                await self.attach(ue)
        except BaseException:
            await self.stop()
            raise
        log.info("gNB %s up in %s: N3 %s, TUN %s", config.name, self.netns, config.n3_address, config.tun_name)

    async def stop(self) -> None:
        """Detach every UE, close N3 and the TUN device (its addresses and routes go with it)."""
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
        if self._tun_fd is not None:
            loop.remove_reader(self._tun_fd)
        if self.netns:  # only ever in the namespace start() checked
            try:
                async with AsyncIPRoute() as ipr:
                    await self._remove_our_rules(ipr)
            except Exception as exc:  # keep closing: the namespace's removal takes the rules anyway
                log.error("removing the UE rules: %s", exc)
        self._by_ip.clear()
        self._by_src.clear()
        self._by_teid.clear()
        for waiter in self._echo_waiters.values():
            waiter.cancel()
        if self._tun_fd is not None:
            os.close(self._tun_fd)
            self._tun_fd = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _remove_our_rules(self, ipr: Any) -> None:
        for rule in [r async for r in await ipr.rule("dump", family=socket.AF_INET)]:
            if rule.get("table") == self.config.route_table:
                await ipr.rule("del", **_rule_key(rule))

    # -- UEs -----------------------------------------------------------------------------

    async def attach(self, tunnel: UeTunnel) -> None:
        """Make ``tunnel.ue_ip`` a UE of this gNB with that N3 tunnel pair."""
        async with self._lock:
            if self._tun_fd is None:
                raise GnbError("the gNB is not running")
            if tunnel.ue_ip in self._by_ip:
                raise GnbError(f"UE {tunnel.ue_ip} is already attached", "ue_ip")
            if tunnel.downlink_teid in self._by_teid:
                raise GnbError(f"downlink TEID {tunnel.downlink_teid} is in use", "downlink_teid")
            ip, table, priority = str(tunnel.ue_ip), self.config.route_table, self.config.rule_priority
            async with AsyncIPRoute() as ipr:
                await ipr.addr("add", index=self._tun_index, address=ip, prefixlen=32)
                try:
                    # Every time: the kernel flushes the TUN's routes when its last address goes.
                    await ipr.route("replace", dst="0.0.0.0/0", oif=self._tun_index, table=table)
                    await ipr.rule("add", table=table, priority=priority, src=ip, src_len=32)
                except BaseException:
                    await ipr.addr("del", index=self._tun_index, address=ip, prefixlen=32)
                    raise
            ue = _Ue(tunnel, tunnel.ue_ip.packed, (str(tunnel.upf_n3), gtpu.GTPU_PORT), UeCounters(), set())
            self._by_ip[tunnel.ue_ip] = ue
            self._by_src[ue.key] = ue
            self._by_teid[tunnel.downlink_teid] = ue
        log.info("attached UE %s: uplink TEID %#x at %s, downlink TEID %#x, QFI %d", ip, tunnel.uplink_teid,
                 tunnel.upf_n3, tunnel.downlink_teid, tunnel.qfi)  # fmt: skip

    async def detach(self, ue_ip: IPv4Address) -> UeCounters:
        """Forget the UE (its sockets lose their address); returns its final counters."""
        async with self._lock:
            ue = self._ue(ue_ip)
            ip, table = str(ue_ip), self.config.route_table
            async with AsyncIPRoute() as ipr:  # first: on a failure the UE stays as it was
                await _unless_gone(ipr.rule("del", table=table, priority=self.config.rule_priority, src=ip, src_len=32))
                await _unless_gone(ipr.addr("del", index=self._tun_index, address=ip, prefixlen=32))
            del self._by_ip[ue_ip], self._by_src[ue.key]
            for teid in (ue.tunnel.downlink_teid, *ue.previous_teids):
                self._by_teid.pop(teid, None)
        log.info("detached UE %s", ip)
        return ue.counters

    def move(
        self,
        ue_ip: IPv4Address,
        *,
        uplink_teid: int | None = None,
        upf_n3: IPv4Address | None = None,
        downlink_teid: int | None = None,
        qfi: int | None = None,
    ) -> UeTunnel:
        """A path switch (handover, UPF relocation): the UE keeps its address and counters, its
        tunnel takes the values given. A replaced downlink TEID keeps delivering until an End
        Marker arrives on it (TS 29.281 §7.3.2; TS 23.502 §4.9.1.2.2), or until detach."""
        ue = self._ue(ue_ip)
        old = ue.tunnel
        changes: dict[str, Any] = {"uplink_teid": uplink_teid, "upf_n3": upf_n3, "downlink_teid": downlink_teid}
        changes["qfi"] = qfi
        try:
            new = dataclasses.replace(old, **{k: v for k, v in changes.items() if v is not None})
        except FieldError as exc:
            raise GnbError(exc.message, exc.field) from None
        if new.downlink_teid != old.downlink_teid:
            if self._by_teid.get(new.downlink_teid, ue) is not ue:
                raise GnbError(f"downlink TEID {new.downlink_teid} is in use", "downlink_teid")
            ue.previous_teids.discard(new.downlink_teid)
            ue.previous_teids.add(old.downlink_teid)
            self._by_teid[new.downlink_teid] = ue
        ue.tunnel = new
        ue.peer = (str(new.upf_n3), gtpu.GTPU_PORT)
        log.info("moved UE %s: %s -> %s", ue_ip, old.to_dict(), new.to_dict())
        return new

    def _ue(self, ue_ip: IPv4Address) -> _Ue:
        ue = self._by_ip.get(ue_ip)
        if ue is None:
            raise GnbError(f"UE {ue_ip} is not attached", "ue_ip")
        return ue

    def tunnels(self) -> list[UeTunnel]:
        return [ue.tunnel for ue in self._by_ip.values()]

    def ue_counters(self, ue_ip: IPv4Address) -> UeCounters:
        return self._ue(ue_ip).counters

    def status(self) -> dict[str, Any]:
        """Everything about this gNB as plain data."""
        return {
            "name": self.config.name,
            "netns": self.netns,
            "n3_address": str(self.config.n3_address),
            "tun_name": self.config.tun_name,
            "ues": [
                {**ue.tunnel.to_dict(), "previous_downlink_teids": sorted(ue.previous_teids)}
                for ue in self._by_ip.values()
            ],
            "counters": dict(self.counters),
        }

    # -- GTP-U path management -------------------------------------------------------------

    async def echo(self, peer: IPv4Address, timeout: float = 1.0) -> float:
        """Send an Echo Request to ``peer``:2152 (TS 29.281 §7.2.1); the round trip in seconds.
        Raises TimeoutError when no Echo Response with its sequence number arrives in time."""
        if self._sock is None:
            raise GnbError("the gNB is not running")
        sequence = next(self._echo_sequence) & 0xFFFF
        key = (str(peer), sequence)
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._echo_waiters[key] = waiter
        sent = time.monotonic()
        try:
            self._sock.sendto(gtpu.encode(gtpu.echo_request(sequence)), (str(peer), gtpu.GTPU_PORT))
            self.counters["n3.tx.echo_request"] += 1
            return await asyncio.wait_for(waiter, timeout) - sent
        finally:
            self._echo_waiters.pop(key, None)

    # -- the dataplane ---------------------------------------------------------------------

    def _on_tun(self) -> None:
        """Uplink: drain the TUN, tunnel each UE's packets to its UPF."""
        fd, sock, by_src = self._tun_fd, self._sock, self._by_src
        assert fd is not None and sock is not None
        for _ in range(READ_BATCH):
            try:
                packet = os.read(fd, _MAX_PACKET)
            except BlockingIOError:
                break
            except OSError as exc:
                self.counters[f"tun.rx_error.{exc.errno}"] += 1
                break
            ue = by_src.get(packet[12:16]) if len(packet) >= 20 and packet[0] >> 4 == 4 else None
            if ue is None:
                self.counters["drop.uplink_unknown_source"] += 1
                continue
            counters = ue.counters
            try:
                sock.sendto(encapsulate_uplink(ue.tunnel, packet), ue.peer)
            except OSError:
                counters.ul_drops += 1
                continue
            counters.ul_packets += 1
            counters.ul_bytes += len(packet)

    def _on_n3(self) -> None:
        """Downlink: drain N3, deliver each G-PDU's T-PDU to its UE; signalling on the side."""
        fd, sock, by_teid = self._tun_fd, self._sock, self._by_teid
        assert fd is not None and sock is not None
        for _ in range(READ_BATCH):
            try:
                data, peer = sock.recvfrom(_MAX_PACKET)
            except BlockingIOError:
                break
            except OSError as exc:
                self.counters[f"n3.rx_error.{exc.errno}"] += 1
                break
            self.counters["n3.rx"] += 1
            if len(data) < 8 or data[1] != _G_PDU:
                self._signalling_received(sock, data, peer)
                continue
            try:
                teid, qfi, offset = gtpu.decode_gpdu(data)
            except gtpu.GtpuError:
                self.counters["drop.malformed_gpdu"] += 1
                continue
            ue = by_teid.get(teid)
            if ue is None:
                self._signalling.unknown_teid(sock, self.config.n3_address, peer, teid)
                continue
            counters = ue.counters
            inner = data[offset:]
            if len(inner) < 20 or inner[16:20] != ue.key:
                counters.dl_drops += 1  # not for this UE: a TEID must not be a way in for others
                continue
            try:
                os.write(fd, inner)
            except OSError:
                counters.dl_drops += 1
                continue
            counters.dl_packets += 1
            counters.dl_bytes += len(inner)
            counters.last_dl_qfi = qfi

    def _signalling_received(self, sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        try:
            message = gtpu.decode(data)
        except gtpu.GtpuError:
            self.counters["n3.rx.malformed"] += 1
            return
        if message.message_type == gtpu.MessageType.END_MARKER:
            self._end_marker(message.teid)
        elif message.message_type == gtpu.MessageType.ECHO_RESPONSE:
            self.counters["n3.rx.echo_response"] += 1
            waiter = self._echo_waiters.get((peer[0], message.sequence or 0))
            if waiter is not None and not waiter.done():
                waiter.set_result(time.monotonic())
        else:  # Echo Request, Error Indication, anything else: as the UPF's N3 does
            self._signalling.received(sock, data, peer)

    def _end_marker(self, teid: int) -> None:
        self.counters["n3.rx.end_marker"] += 1
        ue = self._by_teid.get(teid)
        if ue is None:
            self.counters["n3.rx.end_marker.unknown_teid"] += 1
            return
        ue.counters.end_markers += 1
        if teid in ue.previous_teids:  # the old path is finished: release its TEID
            ue.previous_teids.discard(teid)
            del self._by_teid[teid]
            log.info("End Marker on TEID %#x: UE %s's old path released", teid, ue.tunnel.ue_ip)


async def _unless_gone(call: Awaitable[Any]) -> None:
    """Await a netlink deletion; what is already gone is fine (pyroute2 puts the errno in .code)."""
    try:
        await call
    except Exception as exc:
        if getattr(exc, "code", None) not in (errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL):
            raise


def _rule_key(rule: Any) -> dict[str, Any]:
    """The fields that identify a dumped rule, for its deletion."""
    key: dict[str, Any] = {"table": rule.get("table"), "family": socket.AF_INET}
    if rule.get("priority") is not None:
        key["priority"] = rule.get("priority")
    if rule.get("src") is not None:
        key["src"], key["src_len"] = rule.get("src"), rule["src_len"]
    return key


if __name__ == "__main__":  # python -m edge_sites.sim.gnb --config FILE
    from .gnb_control import main

    raise SystemExit(main())
