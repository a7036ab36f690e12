"""VPP objects that forward: gtpu tunnels, UE routes, ABF policies (see :mod:`.objects`)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, ClassVar, Final

import pfcp

from .objects import NO_INDEX, AddDel, Call, Key, Obj, Ref, Step

__all__ = ["DECAP_IP4", "DECAP_IP6", "AbfAttach", "AbfPolicy", "Route", "Tunnel"]

#: gtpu_decap_next_type: in the v2 API 0 is DROP, so IP4/IP6 are always given explicitly.
DECAP_IP4: Final = 2
DECAP_IP6: Final = 3
_FIB_PATH_NORMAL: Final = 0
_FIB_PATH_DROP: Final = 2
_NO_LABELS: Final[tuple[dict[str, int], ...]] = ({},) * 16  # fib_path.label_stack[16] must have 16 entries


# ----------------------------------------------------------------------------------- tunnels


@dataclass(frozen=True, slots=True)
class Tunnel(Obj):
    """A gtpu tunnel of one session towards one gNB F-TEID, bound to its Network Instance's VRF.

    Decapsulation matches (outer source == ``dst``, ``teid``); encapsulation sends to ``dst``
    with ``tteid`` and, with a ``qfi``, a PDU Session Container (TS 38.415)."""

    rank: ClassVar[int] = 1
    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    teid: int
    tteid: int
    encap_vrf: int
    table: int
    qfi: int | None = None
    ip4: bool = True
    ip6: bool = False
    rule: pfcp.FailedRuleID | None = None

    @property
    def key(self) -> Key:
        return ("gtpu", str(self.dst), self.teid, self.encap_vrf)

    def _add_del(self, is_add: bool) -> Call:
        args = {
            "is_add": is_add,
            "src_address": self.src,
            "dst_address": self.dst,
            "mcast_sw_if_index": NO_INDEX,
            "encap_vrf_id": self.encap_vrf,
            "decap_next_index": DECAP_IP4 if self.ip4 else DECAP_IP6,
            "teid": self.teid,
            "tteid": self.tteid,
            "pdu_extension": self.qfi is not None,
            "qfi": self.qfi or 0,
        }
        return Call(
            "gtpu_add_del_tunnel_v2", args, produces=self.key if is_add else None, releases=None if is_add else self.key
        )

    def _bind(self, table: int) -> list[tuple[Call, Call]]:
        """(call, undo) pairs: the tunnel interface into ``table`` (uplink lookup after decap)
        and IP enabled on it (else VPP drops in ip4-not-enabled)."""
        me = Ref(self.key)
        pairs: list[tuple[Call, Call]] = []
        for is_ipv6, wanted in ((False, self.ip4), (True, self.ip6)):
            if not wanted:
                continue
            pairs.append(
                (
                    Call("sw_interface_set_table", {"sw_if_index": me, "is_ipv6": is_ipv6, "vrf_id": table}),
                    Call("sw_interface_set_table", {"sw_if_index": me, "is_ipv6": is_ipv6, "vrf_id": 0}),
                )
            )
        for is_ipv6, wanted in ((False, self.ip4), (True, self.ip6)):
            if wanted:
                msg = "sw_interface_ip6_enable_disable" if is_ipv6 else "sw_interface_ip4_enable_disable"
                on, off = ({"sw_if_index": me, "enable": flag} for flag in (True, False))
                pairs.append((Call(msg, on), Call(msg, off)))
        return pairs

    def create(self) -> list[Step]:
        steps = [Step(self._add_del(True), (self._add_del(False),), self.rule)]
        steps += [Step(call, (undo,), self.rule) for call, undo in self._bind(self.table)]
        return steps

    def delete(self) -> list[Step]:
        # Deleting the tunnel deletes its interface with its table binding; undo re-creates all.
        redo = (self._add_del(True), *(call for call, _ in self._bind(self.table)))
        return [Step(self._add_del(False), redo, self.rule)]

    def update(self, old: Obj) -> list[Step] | None:
        assert isinstance(old, Tunnel)
        same = (self.src, self.qfi, self.ip4, self.ip6) == (old.src, old.qfi, old.ip4, old.ip6)
        if not same:
            return None
        steps: list[Step] = []
        if self.tteid != old.tteid:  # the gNB moved its TEID, not its address: no new tunnel

            def update_tteid(tteid: int) -> Call:
                args = {"dst_address": self.dst, "encap_vrf_id": self.encap_vrf, "teid": self.teid, "tteid": tteid}
                return Call("gtpu_tunnel_update_tteid", args)

            steps.append(Step(update_tteid(self.tteid), (update_tteid(old.tteid),), self.rule))
        if self.table != old.table:
            new_bind = [c for c, _ in self._bind(self.table) if c.msg == "sw_interface_set_table"]
            old_bind = [c for c, _ in old._bind(old.table) if c.msg == "sw_interface_set_table"]
            steps += [Step(n, (o,), self.rule) for n, o in zip(new_bind, old_bind, strict=True)]
        return steps


# ------------------------------------------------------------------------------------ routes


@dataclass(frozen=True, slots=True)
class Route(AddDel):
    """A UE prefix in its Network Instance's VRF: via the session's tunnel, or DROP
    (FAR DROP or BUFF, closed downlink gate, exhausted quota, no gNB F-TEID yet)."""

    rank: ClassVar[int] = 3
    table: int
    prefix: IPv4Network | IPv6Network
    via: Key | None = None
    rule: pfcp.FailedRuleID | None = None

    @property
    def key(self) -> Key:
        return ("route", self.table, str(self.prefix))

    def refs(self) -> set[Key]:
        return set() if self.via is None else {self.via}

    def _call(self, is_add: bool) -> Call:
        v6 = self.prefix.version == 6
        path = {
            "sw_if_index": NO_INDEX if self.via is None else Ref(self.via),
            "table_id": 0,
            "rpf_id": 0,
            "weight": 1,
            "preference": 0,
            "type": _FIB_PATH_DROP if self.via is None else _FIB_PATH_NORMAL,
            "flags": 0,
            "proto": 1 if v6 else 0,
            # gtpu interfaces are point-to-point: no next hop
            "nh": {"address": {"ip6": IPv6Address(0)} if v6 else {"ip4": IPv4Address(0)}},
            "n_labels": 0,
            "label_stack": list(_NO_LABELS),
        }
        route = {"table_id": self.table, "prefix": self.prefix, "n_paths": 1, "paths": [path]}
        return Call("ip_route_add_del", {"is_add": is_add, "is_multipath": False, "route": route})

    def update(self, old: Obj) -> list[Step] | None:
        assert isinstance(old, Route)
        # A non-multipath add replaces the route's paths (fib_table_entry_update).
        return [Step(self._call(True), (old._call(True),), self.rule)]


# --------------------------------------------------------------------------------------- ABF


def _lookup_path(table: int, ip6: bool) -> dict[str, Any]:
    """A FIB path that looks the packet up again in ``table`` (no interface)."""
    return {
        "sw_if_index": NO_INDEX,
        "table_id": table,
        "weight": 1,
        "type": _FIB_PATH_NORMAL,
        "proto": 1 if ip6 else 0,
        "nh": {"address": {"ip6": IPv6Address(0)} if ip6 else {"ip4": IPv4Address(0)}},
        "label_stack": list(_NO_LABELS),
    }


@dataclass(frozen=True, slots=True)
class AbfPolicy(AddDel):
    """ACL-based forwarding: packets the ACL permits are looked up in another VRF (an uplink
    PDR whose FAR forwards to another Network Instance than the tunnel's). The policy ID is
    the client's choice (allocated by the executor)."""

    rank: ClassVar[int] = 1
    name: str
    acl: Key
    table: int
    ip6: bool = False
    rule: pfcp.FailedRuleID | None = None

    @property
    def key(self) -> Key:
        return ("abf-policy", self.name)

    def refs(self) -> set[Key]:
        return {self.acl}

    def _call(self, is_add: bool) -> Call:
        policy = {
            "policy_id": Ref(self.key),
            "acl_index": Ref(self.acl),
            "n_paths": 1,
            "paths": [_lookup_path(self.table, self.ip6)],
        }
        return Call(
            "abf_policy_add_del",
            {"is_add": is_add, "policy": policy},
            allocates=self.key if is_add else None,
            releases=None if is_add else self.key,
        )


@dataclass(frozen=True, slots=True)
class AbfAttach(AddDel):
    """An ABF policy on a tunnel interface (uplink, after decapsulation); lower priority first."""

    rank: ClassVar[int] = 2
    tunnel: Key
    policy: Key
    priority: int
    ip6: bool = False
    rule: pfcp.FailedRuleID | None = None

    @property
    def key(self) -> Key:
        return ("abf-on", self.tunnel, self.policy)

    def refs(self) -> set[Key]:
        return {self.tunnel, self.policy}

    def _call(self, is_add: bool) -> Call:
        attach = {
            "policy_id": Ref(self.policy),
            "sw_if_index": Ref(self.tunnel),
            "priority": self.priority,
            "is_ipv6": self.ip6,
        }
        return Call("abf_itf_attach_add_del", {"is_add": is_add, "attach": attach})
