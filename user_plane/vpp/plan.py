"""One PFCP session's rules as VPP objects (:mod:`user_plane.vpp.objects`). Pure.

How the rules map onto stock VPP (../shared/VPP.md §4.2):

* **Tunnels.** One gtpu tunnel per (session, local F-TEID of an uplink PDR) towards the
  gNB F-TEID of the session's downlink FAR (Outer Header Creation). The tunnel decapsulates
  uplink G-PDUs (outer source = gNB, TEID = the local TEID) into its interface, which is
  bound to the VRF of the uplink FAR's Network Instance, and encapsulates downlink with the
  gNB's TEID and the QFI of the downlink PDR's QER (one QFI per tunnel in stock VPP: that of
  the first downlink PDR with the gNB F-TEID; other QoS flows' packets carry it too). A new
  gNB address (handover) is a new tunnel; a new TEID at the same gNB is
  ``gtpu_tunnel_update_tteid``. Without a gNB F-TEID yet (Outer Header Creation arrives
  with a later modification) there is no tunnel: VPP drops the session's uplink until then.
* **UE routes.** Each UE address (IPv4 /32, IPv6 prefix, /64 by default, §8.2.62) is a
  route in the downlink PDR's Network Instance VRF: via the tunnel when a downlink PDR
  forwards, else a DROP path.
* **Drop.** A PDR drops when its FAR is DROP or BUFF, a QER of it has the gate closed in
  its direction, or a URR of it exhausted its quota (§5.2.2.2; FAR ID for Quota Action is
  not implemented). Uplink: deny rules in the tunnel's input ACL (the node's deny-all ACL
  when the whole tunnel drops). Downlink: the DROP route, or deny rules in the output ACL.
* **BUFF.** Stock VPP cannot buffer: a BUFF FAR drops, like DROP, and no Downlink Data
  Report is sent (that needs the per-route counter of VPP's stats segment, which this
  driver does not read). BUCP and DDND are not advertised.
* **SDF filters.** The PDRs of a tunnel in one direction, by precedence (§5.2.1), become
  one ACL: each filter gives permit (FORW) or deny rules, a PDR without filter ends the
  list with a match-all rule; no match is a deny, as no PDR matching is a drop. Flow
  descriptions are IPFilterRules (:mod:`user_plane.sdf`); ToS, SPI and Flow Label filters
  have no ACL equivalent and are refused (73 with the PDR).
* **QERs.** A QER's MBR is a policer per direction (kbit/s, 50 ms of burst as the software
  dataplane's token buckets, :mod:`user_plane.qos`), bound to the tunnel as input
  (uplink) or output (downlink); a rate change is ``policer_update``. VPP runs one policer
  per interface and direction: with several QERs the smallest MBR applies. GBR is not
  enforced (no scheduler in stock VPP).
* **ABF.** Uplink PDRs of one F-TEID whose FARs forward to different Network Instances:
  the tunnel sits in the VRF of the first forwarding PDR without SDF filter (else of the
  last forwarding one); each PDR before it that goes to another instance gets an ACL (its
  filters permit, those of the PDRs before it that go elsewhere deny) and an ABF policy per
  IP version that looks the packet up in its instance's VRF, attached to the tunnel in
  precedence order.
* **Refused** (DriverError naming the rule: the agent answers 73 with the Failed Rule ID):
  several gNB F-TEIDs in one session (downlink steering by SDF into different tunnels is
  not implemented); a Network Instance the node has no VRF for; a downlink FAR to GTP-U in
  a session without an uplink F-TEID.

Usage: the tunnel's counters are the session's usage (:class:`TunnelUsage`): uplink
(received, counted after decapsulation) goes to the URRs of the tunnel's uplink PDRs,
downlink (sent, counted after encapsulation: the outer headers are taken off per packet)
to the URRs of the downlink PDRs routed through it, in both cases only of PDRs that
forward. PDRs of one tunnel and direction are not told apart (that needs the ACL counters
of the stats segment), and uplink is counted at decapsulation, before the ACL and the
policer: uplink packets an SDF deny rule or the MBR drops are counted too.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Final

import pfcp

from ..compile import ue_keys
from ..driver import DriverError
from ..qos import bucket_depth
from ..rules import Far, Pdr
from ..sdf import FlowEndpoint, SdfError, SpecialAddress, parse_flow_description
from ..session import SessionState
from .filters import Acl, AclBinding, AclRule, Policer, PolicerBinding
from .forwarding import AbfAttach, AbfPolicy, Route, Tunnel
from .objects import Key, Obj

__all__ = ["DENY_ALL", "NodeContext", "SessionPlan", "TunnelUsage", "deny_all_acl", "encap_overhead", "plan_session"]

_A = pfcp.ApplyActionFlags
_FORW: Final = int(_A.FORW)
_SI = pfcp.SourceInterfaceValue
_DI = pfcp.DestinationInterfaceValue
_OHC = pfcp.OuterHeaderCreationDescription
_GTPU: Final = int(_OHC.GTPU_UDP_IPV4 | _OHC.GTPU_UDP_IPV6)
_CLOSED: Final = pfcp.Gate.CLOSED
_ICMP: Final = frozenset({1, 58})
_ANY4: Final = IPv4Network("0.0.0.0/0")
_ANY6: Final = IPv6Network("::/0")
#: Tag prefix of every ACL this driver creates (the sweep after a reconnect finds them by it).
TAG_PREFIX: Final = "edgecups:"
#: The node's ACL that denies everything (bound as input to tunnels whose uplink drops).
DENY_ALL: Final[Key] = ("acl", TAG_PREFIX + "deny-all")


def deny_all_acl() -> Acl:
    """The node-level ACL that drops every IPv4 and IPv6 packet."""
    return Acl(TAG_PREFIX + "deny-all", (AclRule(False, _ANY4, _ANY4), AclRule(False, _ANY6, _ANY6)))


def encap_overhead(gnb: IPv4Address | IPv6Address, qfi: int | None) -> int:
    """Octets VPP's gtpu encapsulation adds to a downlink packet (its TX counter includes them):
    outer IP (20/40) + UDP (8) + GTP-U (8), plus with a QFI the optional fields (4) and the
    PDU Session Container (4, TS 38.415)."""
    return (20 if gnb.version == 4 else 40) + 8 + 8 + (8 if qfi is not None else 0)


@dataclass(frozen=True, slots=True)
class NodeContext:
    """What the node setup decided: N3 source addresses and VRF, a VRF per Network Instance."""

    n3_ipv4: IPv4Address | None
    n3_ipv6: IPv6Address | None
    n3_table: int
    tables: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class TunnelUsage:
    """Which URRs a tunnel's counters feed, the downlink overhead per packet, and the Network
    Instance its traffic is counted for in the driver's totals (the tunnel's VRF)."""

    up_seid: int
    ul_urrs: tuple[int, ...]
    dl_urrs: tuple[int, ...]
    overhead: int
    instance: str = ""


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """The VPP objects of one session and how its tunnels' counters are accounted."""

    objects: Mapping[Key, Obj]
    tunnels: Mapping[Key, TunnelUsage] = field(default_factory=dict)


def _pdr_rule(pdr_id: int) -> pfcp.FailedRuleID:
    return pfcp.FailedRuleID(pfcp.RuleIDType.PDR, pdr_id)


def _far_rule(far_id: int) -> pfcp.FailedRuleID:
    return pfcp.FailedRuleID(pfcp.RuleIDType.FAR, far_id)


def _error(rule: pfcp.FailedRuleID, message: str) -> DriverError:
    kind = "PDR" if rule.rule_type == pfcp.RuleIDType.PDR else rule.rule_type.name
    return DriverError(f"{kind} {rule.rule_id}: {message}", rule)


def plan_session(state: SessionState, ctx: NodeContext, blocked: Collection[int] = ()) -> SessionPlan:
    """The VPP objects session ``state`` needs (see the module docstring). ``blocked``: URR IDs
    whose quota is exhausted. Raises DriverError naming the rule VPP cannot express."""
    return _Planner(state, ctx, frozenset(blocked)).plan()


class _Planner:
    def __init__(self, state: SessionState, ctx: NodeContext, blocked: frozenset[int]) -> None:
        self.state, self.ctx, self.blocked = state, ctx, blocked
        self.seid = state.up_seid
        self.objects: dict[Key, Obj] = {}
        v4, v6 = ue_keys(state)
        self.ue4: list[IPv4Network | IPv6Network] = [IPv4Network(IPv4Address(a)) for a in v4]
        self.ue6: list[IPv4Network | IPv6Network] = list(v6)

    def far(self, pdr: Pdr) -> Far | None:
        return None if pdr.far_id is None else self.state.fars.get(pdr.far_id)

    def forwards(self, pdr: Pdr, uplink: bool) -> bool:
        """FORW, every gate of its QERs open in this direction, no URR of it blocked."""
        far = self.far(pdr)
        if far is None or not int(far.apply_action) & _FORW:
            return False
        for qer_id in pdr.qer_ids:
            qer = self.state.qers.get(qer_id)
            if qer is not None and (qer.gate_ul if uplink else qer.gate_dl) == _CLOSED:
                return False
        return not any(urr_id in self.blocked for urr_id in pdr.urr_ids)

    def table(self, instance: str | None, rule: pfcp.FailedRuleID) -> int:
        if instance is None:
            if len(self.ctx.tables) == 1:
                return next(iter(self.ctx.tables.values()))
            raise _error(rule, "no Network Instance, and the node has several")
        table = self.ctx.tables.get(instance)
        if table is None:
            raise _error(rule, f"Network Instance {instance!r} has no VRF on this node")
        return table

    def plan(self) -> SessionPlan:
        pdrs = sorted(self.state.pdrs.values(), key=lambda p: (p.precedence, p.pdr_id))
        uplink = [p for p in pdrs if p.source_interface == _SI.ACCESS]
        downlink = [p for p in pdrs if p.source_interface != _SI.ACCESS]
        gnb = self.gnb(downlink)
        tunnels: dict[Key, TunnelUsage] = {}
        primary: Tunnel | None = None
        by_teid: dict[int, list[Pdr]] = {}
        for pdr in uplink:
            if pdr.local_f_teid is not None:
                by_teid.setdefault(pdr.local_f_teid.teid, []).append(pdr)
        if gnb is not None and not by_teid:
            far, _, _, _ = gnb
            raise _error(_far_rule(far.far_id), "GTP-U towards the access needs an uplink F-TEID in the session")
        routed = [p for p in downlink if self.forwards(p, False)]
        for teid, teid_pdrs in by_teid.items():
            if gnb is None:
                continue
            tunnel = self.tunnel(teid, teid_pdrs, gnb)
            primary = primary or tunnel
            self.objects[tunnel.key] = tunnel
            self.uplink_rules(tunnel, teid_pdrs)
            self.abf(tunnel, teid_pdrs)
            ul_urrs = tuple(sorted({u for p in teid_pdrs if self.forwards(p, True) for u in p.urr_ids}))
            instance = next(ni for ni, table in self.ctx.tables.items() if table == tunnel.table)
            overhead = encap_overhead(tunnel.dst, tunnel.qfi)
            tunnels[tunnel.key] = TunnelUsage(self.seid, ul_urrs, (), overhead, instance)
        if primary is not None:
            self.downlink_rules(primary, downlink)
            usage = tunnels[primary.key]
            dl_urrs = tuple(sorted({u for p in routed for u in p.urr_ids}))
            tunnels[primary.key] = replace(usage, dl_urrs=dl_urrs)
        self.routes(downlink, primary if routed else None)
        return SessionPlan(self.objects, tunnels)

    # -- tunnels ----------------------------------------------------------------------------------

    def gnb(self, downlink: list[Pdr]) -> tuple[Far, IPv4Address | IPv6Address, int, int | None] | None:
        """The downlink FAR with GTP-U Outer Header Creation of the first downlink PDR that has
        one, its gNB address and TEID, and the PDR's QFI; other gNB F-TEIDs are refused."""
        found: tuple[Far, IPv4Address | IPv6Address, int, int | None] | None = None
        for pdr in downlink:
            far = self.far(pdr)
            ohc = None if far is None else far.outer_header_creation
            if far is None or ohc is None or not int(ohc.description) & _GTPU or ohc.teid is None:
                continue
            address = ohc.ipv4 if ohc.ipv4 is not None and self.ctx.n3_ipv4 is not None else ohc.ipv6
            if address is None:
                raise _error(_far_rule(far.far_id), "no N3 address of the gNB's IP version")
            if found is None:
                found = (far, address, ohc.teid, self.qfi(pdr))
            elif (found[1], found[2]) != (address, ohc.teid):
                raise _error(
                    _far_rule(far.far_id),
                    f"a second gNB F-TEID ({address}, {ohc.teid:#x}) in one session is not implemented",
                )
        return found

    def qfi(self, pdr: Pdr) -> int | None:
        for qer_id in pdr.qer_ids:
            qer = self.state.qers.get(qer_id)
            if qer is not None and qer.qfi is not None:
                return qer.qfi
        return None

    def instance(self, pdr: Pdr) -> str | None:
        far = self.far(pdr)
        return (far.network_instance if far is not None else None) or pdr.network_instance

    def base_instance(self, pdrs: list[Pdr]) -> str | None:
        """The tunnel's Network Instance: that of the first forwarding uplink PDR without SDF
        filter (it takes whatever the PDRs before it did not), else of the last forwarding one."""
        forwarding = [p for p in pdrs if self.forwards(p, True)]
        if not forwarding:
            return pdrs[0].network_instance
        catch_all = next((p for p in forwarding if not p.sdf_filters), forwarding[-1])
        return self.instance(catch_all)

    def tunnel(self, teid: int, pdrs: list[Pdr], gnb: tuple[Far, IPv4Address | IPv6Address, int, int | None]) -> Tunnel:
        _, address, tteid, qfi = gnb
        # The tunnel's source is the local F-TEID's address (the VTEP the gNB sends to) of the
        # gNB's IP version, else the node's N3 address of that version.
        fteid = pdrs[0].local_f_teid
        local = None if fteid is None else (fteid.ipv4 if address.version == 4 else fteid.ipv6)
        src = local or (self.ctx.n3_ipv4 if address.version == 4 else self.ctx.n3_ipv6)
        assert src is not None  # gnb() picked a family the node has
        rule = _pdr_rule(pdrs[0].pdr_id)
        return Tunnel(
            src=src,
            dst=address,
            teid=teid,
            tteid=tteid,
            encap_vrf=self.ctx.n3_table,
            table=self.table(self.base_instance(pdrs), rule),
            qfi=qfi,
            ip4=bool(self.ue4) or not self.ue6,
            ip6=bool(self.ue6),
            rule=rule,
        )

    def abf(self, tunnel: Tunnel, pdrs: list[Pdr]) -> None:
        """ABF for the uplink PDRs (with SDF filters, by precedence) that forward to another
        Network Instance than the tunnel's: their filters permit, those of every PDR before
        them that goes elsewhere deny (a PDR of higher precedence wins, §5.2.1)."""
        base = self.base_instance(pdrs)
        for position, pdr in enumerate(pdrs):
            instance = self.instance(pdr)
            if not self.forwards(pdr, True) or instance == base:
                continue
            if not pdr.sdf_filters:
                break  # the catch-all is the base instance's, by construction
            rule = _pdr_rule(pdr.pdr_id)
            table = self.table(instance, rule)
            rules: list[AclRule] = []
            for earlier in pdrs[:position]:
                if self.instance(earlier) != instance or not self.forwards(earlier, True):
                    rules += [r for ie in earlier.sdf_filters for r in self.filter_rules(earlier, ie, False, True)]
            rules += [r for ie in pdr.sdf_filters for r in self.filter_rules(pdr, ie, True, True)]
            name = f"{TAG_PREFIX}{self.seid:x}:abf:{tunnel.teid:x}:{pdr.pdr_id}"
            acl = Acl(name, tuple(rules), rule)
            self.objects[acl.key] = acl
            for ip6 in [False] * bool(self.ue4) + [True] * bool(self.ue6):
                policy = AbfPolicy(f"{name}:{6 if ip6 else 4}", acl.key, table, ip6, rule)
                self.objects[policy.key] = policy
                attach = AbfAttach(tunnel.key, policy.key, position, ip6, rule)
                self.objects[attach.key] = attach

    # -- SDF filters, gates, policers ---------------------------------------------------------------

    def uplink_rules(self, tunnel: Tunnel, pdrs: list[Pdr]) -> None:
        inputs: tuple[Key, ...] = ()
        acl = self.acl(f"{TAG_PREFIX}{self.seid:x}:ul:{tunnel.teid:x}", pdrs, uplink=True)
        if acl is not None:
            self.objects[acl.key] = acl
            inputs = (acl.key,)
        elif not any(self.forwards(p, True) for p in pdrs):
            inputs = (DENY_ALL,)
        self.policer(tunnel, pdrs, uplink=True)
        if inputs:
            self.objects[("acl-on", tunnel.key)] = AclBinding(tunnel.key, inputs, (), tunnel.rule)

    def downlink_rules(self, tunnel: Tunnel, pdrs: list[Pdr]) -> None:
        acl = self.acl(f"{TAG_PREFIX}{self.seid:x}:dl:{tunnel.teid:x}", pdrs, uplink=False)
        if acl is not None:
            self.objects[acl.key] = acl
            key = ("acl-on", tunnel.key)
            before = self.objects.get(key)
            inputs = before.inputs if isinstance(before, AclBinding) else ()
            self.objects[key] = AclBinding(tunnel.key, inputs, (acl.key,), tunnel.rule)
        self.policer(tunnel, [p for p in pdrs if self.forwards(p, False)], uplink=False)

    def acl(self, tag: str, pdrs: list[Pdr], *, uplink: bool) -> Acl | None:
        """The ACL of these PDRs (by precedence), or None when a match-all PDR decides alone."""
        if not any(p.sdf_filters for p in pdrs):
            return None
        rules: list[AclRule] = []
        for pdr in pdrs:
            permit = self.forwards(pdr, uplink)
            if not pdr.sdf_filters:
                rules += [AclRule(permit, net, net) for net in self.families()]
                break
            for ie in pdr.sdf_filters:
                rules += self.filter_rules(pdr, ie, permit, uplink)
        return Acl(tag, tuple(rules), _pdr_rule(pdrs[0].pdr_id))

    def families(self) -> list[IPv4Network | IPv6Network]:
        return ([_ANY4] if self.ue4 or not self.ue6 else []) + ([_ANY6] if self.ue6 else [])

    def filter_rules(self, pdr: Pdr, ie: pfcp.SDFFilter, permit: bool, uplink: bool) -> list[AclRule]:
        rule = _pdr_rule(pdr.pdr_id)
        if ie.tos_traffic_class is not None or ie.security_parameter_index is not None or ie.flow_label is not None:
            raise _error(rule, "SDF Filter with ToS, SPI or Flow Label: no VPP ACL equivalent")
        if ie.flow_description is None:
            return [AclRule(permit, net, net) for net in self.families()]
        try:
            flow = parse_flow_description(ie.flow_description)
        except SdfError as exc:
            raise _error(rule, str(exc)) from None
        ue_side, remote = flow.ue, flow.remote
        src, dst = (ue_side, remote) if uplink else (remote, ue_side)
        proto = flow.protocol or 0
        whole = (0, 255) if proto in _ICMP else (0, 65535)
        out: list[AclRule] = []
        for ue_net in [*self.ue4, *self.ue6]:
            src_net = self.resolve(src, ue_net)
            dst_net = self.resolve(dst, ue_net)
            if src_net is None or dst_net is None:
                continue  # that side never matches this IP version
            sports = [(r.low, r.high) for r in src.ports] or [whole]
            dports = [(r.low, r.high) for r in dst.ports] or [whole]
            out += [AclRule(permit, src_net, dst_net, proto, s, d) for s, d in itertools.product(sports, dports)]
        if not out:
            raise _error(rule, f"SDF filter {ie.flow_description!r} matches no address of the UE")
        return out

    @staticmethod
    def resolve(end: FlowEndpoint, ue: IPv4Network | IPv6Network) -> IPv4Network | IPv6Network | None:
        if end.address is SpecialAddress.ANY:
            return _ANY4 if ue.version == 4 else _ANY6
        if end.address is SpecialAddress.ASSIGNED:
            return ue
        assert isinstance(end.address, IPv4Network | IPv6Network)
        return end.address if end.address.version == ue.version else None

    def policer(self, tunnel: Tunnel, pdrs: list[Pdr], *, uplink: bool) -> None:
        best: tuple[int, int] | None = None  # (rate kbit/s, QER ID)
        for pdr in pdrs:
            for qer_id in pdr.qer_ids:
                qer = self.state.qers.get(qer_id)
                rate = None if qer is None else (qer.mbr_ul if uplink else qer.mbr_dl)
                if rate and (best is None or (rate, qer_id) < best):
                    best = (rate, qer_id)
        if best is None:
            return
        rate, qer_id = best
        name = f"{TAG_PREFIX}{self.seid:x}:{qer_id}:{'ul' if uplink else 'dl'}"
        burst = int(bucket_depth(rate * 1000.0) / 8)
        qer_rule = pfcp.FailedRuleID(pfcp.RuleIDType.QER, qer_id)
        policer = Policer(name, min(rate, 0xFFFFFFFF), burst, qer_rule)
        self.objects.setdefault(policer.key, policer)
        binding = PolicerBinding(tunnel.key, uplink, policer.key, qer_rule)
        self.objects[binding.key] = binding

    # -- routes -------------------------------------------------------------------------------------

    def routes(self, downlink: list[Pdr], via: Tunnel | None) -> None:
        for net in [*self.ue4, *self.ue6]:
            serving = [p for p in downlink if self.matches(p, net)]
            if not serving:
                continue
            pdr = serving[0]
            table = self.table(pdr.network_instance, _pdr_rule(pdr.pdr_id))
            forwarded = any(self.forwards(p, False) for p in serving)
            route = Route(table, net, via.key if forwarded and via is not None else None, _pdr_rule(pdr.pdr_id))
            self.objects[route.key] = route

    @staticmethod
    def matches(pdr: Pdr, net: IPv4Network | IPv6Network) -> bool:
        for ie in pdr.ue_ip_addresses:
            if net.version == 4 and ie.ipv4 is not None and IPv4Network(ie.ipv4) == net:
                return True
            if net.version == 6 and ie.ipv6 is not None and ie.ipv6 in net:
                return True
        return False
