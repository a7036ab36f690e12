"""VPP objects as desired state, and the ordered call plan that turns one set into another.

Pure: no socket, no vpp_papi. Each object knows the VPP calls that create, update and
delete it, each call paired with the calls that undo it (:class:`Step`). :func:`diff`
orders the steps of a change so that VPP accepts every call and a failure can be undone
step by step in reverse:

1. objects replaced in place (their key stays, a field VPP cannot change did), and every
   kept object that refers to one of them (a route via a tunnel that is re-created: the
   tunnel's sw_if_index changes), are deleted, dependents first;
2. new objects and the replacements are created, in rank order (policers and ACLs, then
   tunnels, then what binds to tunnels, then routes);
3. objects updated in place (a route that points to another tunnel, a policer with a new
   rate, an ACL with other rules), in rank order;
4. objects gone are deleted, dependents first.

A key is VPP's own identity of the object (a tunnel is (gNB address, local TEID, encap
VRF), a route is (table, prefix), a policer its name), so a new object never collides in
VPP with an old one that step 4 deletes later: make-before-break, and a handover's new
tunnel carries traffic before the old one goes.

Indexes VPP allocates (sw_if_index, policer_index, acl_index) are not known when the plan
is made: arguments carry :class:`Ref` placeholders that the executor resolves from what
earlier calls returned (``Call.produces``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, ClassVar, Final

import pfcp

__all__ = [
    "NO_INDEX",
    "AbfAttach",
    "AbfPolicy",
    "Acl",
    "AclBinding",
    "AclRule",
    "Call",
    "Key",
    "Obj",
    "Policer",
    "PolicerBinding",
    "Ref",
    "Route",
    "Step",
    "Tunnel",
    "diff",
    "refs_in",
]

#: ~0: "no interface / no index" in VPP's API.
NO_INDEX: Final = 0xFFFFFFFF
#: gtpu_decap_next_type: in the v2 API 0 is DROP, so IP4/IP6 are always given explicitly.
DECAP_IP4: Final = 2
DECAP_IP6: Final = 3
_FIB_PATH_NORMAL: Final = 0
_FIB_PATH_DROP: Final = 2
_NO_LABELS: Final[tuple[dict[str, int], ...]] = ({},) * 16  # fib_path.label_stack[16] must have 16 entries

Key = tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class Ref:
    """The index VPP returned when the object with ``key`` was created."""

    key: Key


@dataclass(frozen=True, slots=True)
class Call:
    """One VPP API request. ``args`` may hold :class:`Ref` values (nested in dicts and lists).
    ``produces``: the reply's index is remembered under this key; ``allocates``: the index is
    chosen by the client (ABF policy IDs) before the call; ``releases``: the key is forgotten
    once the call succeeded (the object is gone)."""

    msg: str
    args: Mapping[str, Any]
    produces: Key | None = None
    releases: Key | None = None
    allocates: Key | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """A call, the calls that take it back, and the PFCP rule it serves (Failed Rule ID)."""

    call: Call
    undo: tuple[Call, ...]
    rule: pfcp.FailedRuleID | None = None


def refs_in(value: Any) -> set[Key]:
    """Every key a value refers to through :class:`Ref` (nested in dicts, lists, tuples)."""
    if isinstance(value, Ref):
        return {value.key}
    if isinstance(value, Mapping):
        return set().union(*(refs_in(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(refs_in(v) for v in value)) if value else set()
    return set()


class Obj:
    """A VPP object of the desired state. Subclasses are frozen dataclasses."""

    #: Creation order: lower first (deleted in reverse).
    rank: ClassVar[int]
    rule: pfcp.FailedRuleID | None

    @property
    def key(self) -> Key:
        raise NotImplementedError

    def refs(self) -> set[Key]:
        """Keys of the objects this one needs (created before it, deleted after it)."""
        return set()

    def create(self) -> list[Step]:
        raise NotImplementedError

    def delete(self) -> list[Step]:
        raise NotImplementedError

    def update(self, old: Obj) -> list[Step] | None:
        """Steps that change ``old`` into this object in place; None: delete and re-create."""
        return None


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
class Route(Obj):
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

    def create(self) -> list[Step]:
        return [Step(self._call(True), (self._call(False),), self.rule)]

    def delete(self) -> list[Step]:
        return [Step(self._call(False), (self._call(True),), self.rule)]

    def update(self, old: Obj) -> list[Step] | None:
        assert isinstance(old, Route)
        # A non-multipath add replaces the route's paths (fib_table_entry_update).
        return [Step(self._call(True), (old._call(True),), self.rule)]


# ---------------------------------------------------------------------------------- policers


@dataclass(frozen=True, slots=True)
class Policer(Obj):
    """A QER's MBR in one direction: single rate, two colours, exceeding packets dropped.
    ``cir`` in kbit/s (the QER's unit, §8.2.8), ``cb`` the burst in bytes."""

    rank: ClassVar[int] = 0
    name: str
    cir: int
    cb: int
    rule: pfcp.FailedRuleID | None = None

    @property
    def key(self) -> Key:
        return ("policer", self.name)

    def _infos(self) -> dict[str, Any]:
        return {
            "cir": self.cir,
            "eir": 0,
            "cb": self.cb,
            "eb": 0,
            "rate_type": 0,  # SSE2_QOS_RATE_API_KBPS
            "round_type": 0,  # SSE2_QOS_ROUND_API_TO_CLOSEST
            "type": 0,  # SSE2_QOS_POLICER_TYPE_API_1R2C
            "color_aware": False,
            "conform_action": {"type": 1, "dscp": 0},  # TRANSMIT
            "exceed_action": {"type": 0, "dscp": 0},  # DROP
            "violate_action": {"type": 0, "dscp": 0},  # DROP
        }

    def _add(self) -> Call:
        return Call("policer_add", {"name": self.name, "infos": self._infos()}, produces=self.key)

    def _del(self) -> Call:
        return Call("policer_del", {"policer_index": Ref(self.key)}, releases=self.key)

    def create(self) -> list[Step]:
        return [Step(self._add(), (self._del(),), self.rule)]

    def delete(self) -> list[Step]:
        return [Step(self._del(), (self._add(),), self.rule)]

    def update(self, old: Obj) -> list[Step] | None:
        assert isinstance(old, Policer)

        def update(p: Policer) -> Call:
            return Call("policer_update", {"policer_index": Ref(self.key), "infos": p._infos()})

        return [Step(update(self), (update(old),), self.rule)]


@dataclass(frozen=True, slots=True)
class PolicerBinding(Obj):
    """A policer on a tunnel interface: input (uplink, after decapsulation, before the
    lookup in the VRF) or output (downlink, before encapsulation)."""

    rank: ClassVar[int] = 2
    tunnel: Key
    uplink: bool
    policer: Key
    rule: pfcp.FailedRuleID | None = None

    @property
    def key(self) -> Key:
        return ("policer-on", self.tunnel, "input" if self.uplink else "output")

    def refs(self) -> set[Key]:
        return {self.tunnel, self.policer}

    def _call(self, apply: bool) -> Call:
        msg = "policer_input_v2" if self.uplink else "policer_output_v2"
        return Call(msg, {"policer_index": Ref(self.policer), "sw_if_index": Ref(self.tunnel), "apply": apply})

    def create(self) -> list[Step]:
        return [Step(self._call(True), (self._call(False),), self.rule)]

    def delete(self) -> list[Step]:
        return [Step(self._call(False), (self._call(True),), self.rule)]


# -------------------------------------------------------------------------------------- ACLs


@dataclass(frozen=True, slots=True)
class AclRule:
    """One rule of a VPP ACL (acl_rule_t); ports are inclusive ranges (ICMP: type/code)."""

    permit: bool
    src: IPv4Network | IPv6Network
    dst: IPv4Network | IPv6Network
    proto: int = 0
    sport: tuple[int, int] = (0, 65535)
    dport: tuple[int, int] = (0, 65535)

    def to_api(self) -> dict[str, Any]:
        return {
            "is_permit": 1 if self.permit else 0,
            "src_prefix": self.src,
            "dst_prefix": self.dst,
            "proto": self.proto,
            "srcport_or_icmptype_first": self.sport[0],
            "srcport_or_icmptype_last": self.sport[1],
            "dstport_or_icmpcode_first": self.dport[0],
            "dstport_or_icmpcode_last": self.dport[1],
            "tcp_flags_mask": 0,
            "tcp_flags_value": 0,
        }


@dataclass(frozen=True, slots=True)
class Acl(Obj):
    """A VPP ACL: the SDF filters of a tunnel's PDRs in one direction, by precedence; the
    first matching rule decides, and no match is a deny (a packet no PDR matches is dropped)."""

    rank: ClassVar[int] = 0
    tag: str
    rules: tuple[AclRule, ...]
    rule: pfcp.FailedRuleID | None = None

    @property
    def key(self) -> Key:
        return ("acl", self.tag)

    def _add_replace(self, index: Ref | int) -> Call:
        args = {"acl_index": index, "tag": self.tag, "count": len(self.rules), "r": [r.to_api() for r in self.rules]}
        return Call("acl_add_replace", args, produces=self.key if isinstance(index, int) else None)

    def _del(self) -> Call:
        return Call("acl_del", {"acl_index": Ref(self.key)}, releases=self.key)

    def create(self) -> list[Step]:
        return [Step(self._add_replace(NO_INDEX), (self._del(),), self.rule)]

    def delete(self) -> list[Step]:
        return [Step(self._del(), (self._add_replace(NO_INDEX),), self.rule)]

    def update(self, old: Obj) -> list[Step] | None:
        assert isinstance(old, Acl)
        me = Ref(self.key)
        return [Step(self._add_replace(me), (old._add_replace(me),), self.rule)]


@dataclass(frozen=True, slots=True)
class AclBinding(Obj):
    """The ACLs of a tunnel interface: input (uplink) and output (downlink)."""

    rank: ClassVar[int] = 2
    tunnel: Key
    inputs: tuple[Key, ...] = ()
    outputs: tuple[Key, ...] = ()
    rule: pfcp.FailedRuleID | None = None

    @property
    def key(self) -> Key:
        return ("acl-on", self.tunnel)

    def refs(self) -> set[Key]:
        return {self.tunnel, *self.inputs, *self.outputs}

    def _call(self, inputs: tuple[Key, ...], outputs: tuple[Key, ...]) -> Call:
        acls = [Ref(k) for k in (*inputs, *outputs)]
        args = {"sw_if_index": Ref(self.tunnel), "count": len(acls), "n_input": len(inputs), "acls": acls}
        return Call("acl_interface_set_acl_list", args)

    def create(self) -> list[Step]:
        return [Step(self._call(self.inputs, self.outputs), (self._call((), ()),), self.rule)]

    def delete(self) -> list[Step]:
        return [Step(self._call((), ()), (self._call(self.inputs, self.outputs),), self.rule)]

    def update(self, old: Obj) -> list[Step] | None:
        assert isinstance(old, AclBinding)
        return [Step(self._call(self.inputs, self.outputs), (self._call(old.inputs, old.outputs),), self.rule)]


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
class AbfPolicy(Obj):
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

    def create(self) -> list[Step]:
        return [Step(self._call(True), (self._call(False),), self.rule)]

    def delete(self) -> list[Step]:
        return [Step(self._call(False), (self._call(True),), self.rule)]


@dataclass(frozen=True, slots=True)
class AbfAttach(Obj):
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

    def create(self) -> list[Step]:
        return [Step(self._call(True), (self._call(False),), self.rule)]

    def delete(self) -> list[Step]:
        return [Step(self._call(False), (self._call(True),), self.rule)]


# ------------------------------------------------------------------------------------- diff


def diff(old: Mapping[Key, Obj], new: Mapping[Key, Obj]) -> list[Step]:
    """The ordered steps that turn VPP objects ``old`` into ``new`` (see the module docstring);
    objects equal in both are not touched."""
    updates: dict[Key, list[Step]] = {}
    replaced: set[Key] = set()
    for key, obj in new.items():
        before = old.get(key)
        if before is None or before == obj:
            continue
        changes = obj.update(before)
        if changes is None:
            replaced.add(key)
        else:
            updates[key] = changes
    # Whatever refers to a replaced object is re-created with it (its index changes), transitively.
    grew = bool(replaced)
    while grew:
        grew = False
        for key, obj in new.items():
            if key in old and key not in replaced and (obj.refs() | old[key].refs()) & replaced:
                replaced.add(key)
                updates.pop(key, None)
                grew = True
    steps: list[Step] = []
    for key in sorted(replaced, key=lambda k: -old[k].rank):
        steps += old[key].delete()
    created = [obj for key, obj in new.items() if key not in old or key in replaced]
    for obj in sorted(created, key=lambda o: o.rank):
        steps += obj.create()
    for key in sorted(updates, key=lambda k: new[k].rank):
        steps += updates[key]
    gone = [obj for key, obj in old.items() if key not in new]
    for obj in sorted(gone, key=lambda o: -o.rank):
        steps += obj.delete()
    return steps
