"""VPP objects that police and filter: policers and ACLs, and their bindings to tunnels (see :mod:`.objects`)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any, ClassVar

import pfcp

from .objects import NO_INDEX, AddDel, Call, Key, Obj, Ref, Step

__all__ = ["Acl", "AclBinding", "AclRule", "Policer", "PolicerBinding"]


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

    def _create_call(self) -> Call:
        return Call("policer_add", {"name": self.name, "infos": self._infos()}, produces=self.key)

    def _delete_call(self) -> Call:
        return Call("policer_del", {"policer_index": Ref(self.key)}, releases=self.key)

    def update(self, old: Obj) -> list[Step] | None:
        assert isinstance(old, Policer)

        def update(p: Policer) -> Call:
            return Call("policer_update", {"policer_index": Ref(self.key), "infos": p._infos()})

        return [Step(update(self), (update(old),), self.rule)]


@dataclass(frozen=True, slots=True)
class PolicerBinding(AddDel):
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

    def _create_call(self) -> Call:
        return self._add_replace(NO_INDEX)

    def _delete_call(self) -> Call:
        return Call("acl_del", {"acl_index": Ref(self.key)}, releases=self.key)

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

    def _create_call(self) -> Call:
        return self._call(self.inputs, self.outputs)

    def _delete_call(self) -> Call:
        return self._call((), ())

    def update(self, old: Obj) -> list[Step] | None:
        assert isinstance(old, AclBinding)
        return [Step(self._call(self.inputs, self.outputs), (self._call(old.inputs, old.outputs),), self.rule)]
