"""Usage from VPP: the gtpu tunnels' counters fed into the URR meters (:mod:`user_plane.usage`).

VPP counts per tunnel: received packets and octets after decapsulation (uplink, the inner
packet) and sent ones after encapsulation (downlink, outer IP/UDP/GTP-U included, taken off
per packet here: :func:`user_plane.vpp.plan.encap_overhead`). :class:`UsageFeed` keeps,
per tunnel, the counts already folded into the meters, and folds the difference of a new
reading into the URRs the tunnel feeds (:class:`~user_plane.vpp.plan.TunnelUsage`) with
:meth:`UrrMeter.count_bulk`: the packets of one reading count as arriving between the
previous reading and this one (times have the polling interval's resolution). A new tunnel
counts from zero; a deleted tunnel's final counts come in its delete reply.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from ..driver import Direction, DriverError, UsageReport
from ..forward import Forwarder
from .calls import VppApi, VppCallError
from .objects import Call, Key
from .plan import TunnelUsage

__all__ = ["PAGE", "UsageFeed"]

log = logging.getLogger(__name__)

_ZERO: Final = (0, 0, 0, 0)  # packets_rx, packets_tx, bytes_rx, bytes_tx
#: Tunnels per gtpu_get_transfer_counts.
PAGE: Final = 1024
_UL, _DL = Direction.UPLINK, Direction.DOWNLINK

Counts = tuple[int, int, int, int]


def _counts(c: Any) -> Counts:
    return (int(c.packets_rx), int(c.packets_tx), int(c.bytes_rx), int(c.bytes_tx))


class UsageFeed:
    """Tunnel counters -> URR meters of the forwarder ``meters_of()`` returns (see the module docstring)."""

    def __init__(self, meters_of: Callable[[], Forwarder], clock: Callable[[], float]) -> None:
        self._forwarder = meters_of
        self._clock = clock
        #: tunnel -> the URRs its counters feed
        self.usage: dict[Key, TunnelUsage] = {}
        self._base: dict[Key, Counts] = {}
        self._folded_at: dict[Key, float] = {}
        #: Reports volume thresholds and quotas raised while folding, by UP SEID.
        self.reports: dict[int, list[UsageReport]] = {}
        #: What every tunnel counted since start, in the software driver's counter names (the
        #: agent's metrics and telemetry read them): ``n3.rx``/``n3.tx`` G-PDUs, ``ul_bytes``/
        #: ``dl_bytes`` inner octets, ``n6.<instance>.tx``/``.tx_bytes`` uplink and
        #: ``n6.<instance>.dl_packets``/``.dl_bytes`` downlink per Network Instance.
        self.totals: collections.Counter[str] = collections.Counter()

    def clear(self) -> None:
        """Forget every tunnel (VPP restarted: their counts start again); the totals stay."""
        self.usage.clear()
        self._base.clear()
        self._folded_at.clear()
        self.reports.clear()

    def forget(self, keys: Collection[Key]) -> None:
        for key in keys:
            self.usage.pop(key, None)
            self._base.pop(key, None)
            self._folded_at.pop(key, None)

    def on_reply(self, call: Call, reply: Any) -> None:
        """The executor's reply hook: tunnel creation (zero) and deletion (final counts)."""
        if call.msg != "gtpu_add_del_tunnel_v2":
            return
        key = call.produces or call.releases
        assert key is not None
        if call.args["is_add"]:
            self._base[key] = _ZERO
            self._folded_at[key] = self._clock()
        else:
            self.fold(key, _counts(reply.counters), self._clock())
            self._base.pop(key, None)
            self._folded_at.pop(key, None)

    def fold(self, key: Key, counts: Counts, now: float) -> None:
        """Fold a reading of tunnel ``key`` into its URRs' meters."""
        base = self._base.get(key, _ZERO)
        self._base[key] = counts
        usage = self.usage.get(key)
        d_prx, d_ptx, d_brx, d_btx = (max(0, c - b) for c, b in zip(counts, base, strict=True))
        if usage is None or not (d_prx or d_ptx):
            return
        dl_octets = max(0, d_btx - d_ptx * usage.overhead)
        totals, ni = self.totals, usage.instance
        totals["n3.rx"] += d_prx
        totals["n3.tx"] += d_ptx
        totals["ul_bytes"] += d_brx
        totals["dl_bytes"] += dl_octets
        totals[f"n6.{ni}.tx"] += d_prx
        totals[f"n6.{ni}.tx_bytes"] += d_brx
        totals[f"n6.{ni}.dl_packets"] += d_ptx
        totals[f"n6.{ni}.dl_bytes"] += dl_octets
        first = self._folded_at.get(key, now)
        self._folded_at[key] = now
        forwarder = self._forwarder()
        try:
            meters = forwarder.meters(usage.up_seid)
        except DriverError:
            return
        out = self.reports.setdefault(usage.up_seid, [])
        for urrs, direction, packets, octets in (
            (usage.ul_urrs, _UL, d_prx, d_brx),
            (usage.dl_urrs, _DL, d_ptx, dl_octets),
        ):
            if not packets:
                continue
            for urr_id in urrs:
                meter = meters.get(urr_id)
                if meter is not None and not meter.blocked:  # a blocked URR's traffic is dropped
                    report = meter.count_bulk(direction, octets, packets, first, now, now)
                    if report is not None:
                        out.append(report)
        forwarder.meters_changed(usage.up_seid)

    def read(self, api: VppApi, tunnels: Mapping[Key, int], now: float) -> None:
        """Read and fold the given tunnels (key -> sw_if_index) one by one (a session's)."""
        for key, index in tunnels.items():
            try:
                reply = api.call("gtpu_get_transfer_counts", sw_if_index_start=index, capacity=1)
            except VppCallError as exc:
                log.warning("vpp: counters of %s: %s", key, exc)
                continue
            for tunnel in reply.tunnels:
                if int(tunnel.sw_if_index) == index:
                    self.fold(key, _counts(tunnel.counters), now)

    def poll(self, api: VppApi, indexes: Mapping[Key, int], now: float) -> None:
        """Read every tunnel that feeds a URR, ``PAGE`` at a time, and fold. Raises VppUnavailable."""
        by_index = {indexes[k]: k for k in self.usage if k in indexes}
        start = 0
        while by_index:
            try:
                reply = api.call("gtpu_get_transfer_counts", sw_if_index_start=start, capacity=PAGE)
            except VppCallError as exc:
                log.warning("vpp: usage poll: %s", exc)
                return
            for tunnel in reply.tunnels:
                key = by_index.get(int(tunnel.sw_if_index))
                if key is not None:
                    self.fold(key, _counts(tunnel.counters), now)
            if int(reply.count) < PAGE or not reply.tunnels:
                return
            start = int(reply.tunnels[-1].sw_if_index) + 1
