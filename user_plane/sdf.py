"""SDF filters: parse IPFilterRule flow descriptions and match them against raw IP packets.

An SDF Filter IE (TS 29.244 §8.2.5) carries up to four match fields: a Flow Description
(an IPFilterRule, RFC 6733 §4.3.1, restricted by TS 29.212 §5.4.2), a ToS/Traffic Class
value with mask, an IPsec Security Parameter Index and an IPv6 Flow Label.  A packet
matches the filter when it matches every field that is present.

Theory of operation:

* :func:`parse_flow_description` turns the text into a typed, frozen
  :class:`FlowDescription`, or raises :class:`SdfError` naming the offending token.
  It is pure and knows nothing of any session.
* :meth:`SdfFilter.from_ie` resolves ``assigned`` against the session's UE address(es)
  and compiles everything into integer (address, mask) pairs and port range tuples,
  so the per-packet code does integer compares only.
* :meth:`SdfFilter.matches_uplink` / :meth:`SdfFilter.matches_downlink` look at the
  inner IP packet (no GTP-U) in ``pkt`` starting at ``offset``.  They never raise:
  a truncated or non-IP packet simply does not match.

Dialect accepted (what real control planes send, and what TS 29.212 §5.4.2 allows):

* ``action``: only ``permit``.  TS 29.212 §5.4.2 says "Only the Action 'permit' shall
  be used"; whether traffic is dropped is the FAR's business, not the filter's, so a
  ``deny`` is rejected rather than silently treated as a match.
* ``dir``: ``out`` (the TS 29.212 form: the rule is written from the network toward
  the UE) and ``in`` (RFC 6733: written from the UE toward the network).  See
  :class:`Direction` for how each applies to uplink and downlink packets.
* ``proto``: a decimal IP protocol number 0-255 or ``ip`` (any protocol).  RFC 6733
  specifies protocols by number; names such as ``udp`` are rejected.
* addresses: ``any``, ``assigned`` (the UE address of the PDU session), an IPv4/IPv6
  address or ``address/bits`` prefix (host bits may be set, RFC 6733: "all IP numbers
  from 192.0.2.0 to 192.0.2.255 will match").  The ``!`` (not) modifier is rejected:
  TS 29.212 §5.4.2 forbids it.
* ports: a comma-separated list of ports and ``low-high`` ranges, only with a protocol
  that has 16-bit source/destination ports first in its header (TCP, UDP, SCTP, DCCP,
  UDP-Lite); with any other protocol the ports could never be read, so the rule is
  rejected.
* options (``frag``, ``established``, ``setup``, ``tcpflags``, ...) are rejected as
  unsupported: TS 29.212 §5.4.2 says "No 'options' shall be used".
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Final, TypeAlias

import pfcp

__all__ = [
    "PORT_PROTOCOLS",
    "Direction",
    "FlowDescription",
    "FlowEndpoint",
    "PortRange",
    "SdfError",
    "SdfFilter",
    "SpecialAddress",
    "UeAddress",
    "parse_flow_description",
]


class SdfError(ValueError):
    """A flow description or SDF Filter IE that is malformed or uses something unsupported."""


class Direction(Enum):
    """IPFilterRule direction (RFC 6733 §4.3.1: "'in' is from the terminal, 'out' is to the terminal").

    The rule describes one bidirectional flow between the UE and a remote peer; the
    direction only says which of ``from``/``to`` is the UE side.

    * ``out`` (TS 29.212 §5.4.2, the form PFCP control planes send): ``from`` is the
      remote (network) side, ``to`` is the UE side.  A downlink packet travels in the
      rule's own direction, so its source is checked against ``from`` and its
      destination against ``to``.  For an uplink packet source and destination are
      swapped (TS 29.244 §5.2.1A.2A, TS 29.212 §5.4.2): its source (the UE) is checked
      against ``to`` and its destination against ``from``, ports likewise.
    * ``in``: the mirror image: ``from`` is the UE side, so an uplink packet is checked
      as written and a downlink packet swapped.
    """

    IN = "in"
    OUT = "out"


class SpecialAddress(Enum):
    """The IPFilterRule address keywords."""

    ANY = "any"
    #: RFC 6733: "the address or set of addresses assigned to the terminal".
    ASSIGNED = "assigned"


@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive port range; a single port has ``low == high``."""

    low: int
    high: int

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True, slots=True)
class FlowEndpoint:
    """One side (``from`` or ``to``) of an IPFilterRule; empty ``ports`` means any port."""

    address: IPv4Network | IPv6Network | SpecialAddress
    ports: tuple[PortRange, ...] = ()

    def __str__(self) -> str:
        addr = self.address.value if isinstance(self.address, SpecialAddress) else str(self.address)
        return f"{addr} {','.join(map(str, self.ports))}" if self.ports else addr


@dataclass(frozen=True, slots=True)
class FlowDescription:
    """A parsed IPFilterRule; ``protocol`` None means ``ip`` (any protocol).

    The action is not stored: only ``permit`` is accepted.  ``str()`` gives the
    canonical text, which parses back to an equal value.
    """

    direction: Direction
    protocol: int | None
    source: FlowEndpoint
    destination: FlowEndpoint

    @property
    def remote(self) -> FlowEndpoint:
        """The network-side endpoint (``from`` for ``out`` rules)."""
        return self.source if self.direction is Direction.OUT else self.destination

    @property
    def ue(self) -> FlowEndpoint:
        """The UE-side endpoint (``to`` for ``out`` rules)."""
        return self.destination if self.direction is Direction.OUT else self.source

    def __str__(self) -> str:
        proto = "ip" if self.protocol is None else str(self.protocol)
        return f"permit {self.direction.value} {proto} from {self.source} to {self.destination}"


#: Protocols whose header starts with 16-bit source and destination ports:
#: TCP (6), UDP (17), DCCP (33), SCTP (132), UDP-Lite (136).
PORT_PROTOCOLS: Final = frozenset({6, 17, 33, 132, 136})

# RFC 6733 §4.3.1 options; named so the error says "unsupported" rather than "garbage".
_OPTIONS: Final = frozenset({"frag", "ipoptions", "tcpoptions", "established", "setup", "tcpflags", "icmptypes"})


def _parse_ports(token: str, text: str) -> tuple[PortRange, ...]:
    ranges: list[PortRange] = []
    for item in token.split(","):
        lo_s, dash, hi_s = item.partition("-")
        if not (lo_s.isdecimal() and lo_s.isascii()) or (dash and not (hi_s.isdecimal() and hi_s.isascii())):
            raise SdfError(f"malformed port list {token!r} in flow description {text!r}")
        lo = int(lo_s)
        hi = int(hi_s) if dash else lo
        if hi > 0xFFFF:
            raise SdfError(f"port {hi} out of range 0-65535 in flow description {text!r}")
        if lo > hi:
            raise SdfError(f"empty port range {item!r} (low > high) in flow description {text!r}")
        ranges.append(PortRange(lo, hi))
    return tuple(ranges)


def _parse_address(token: str, text: str) -> IPv4Network | IPv6Network | SpecialAddress:
    low = token.lower()
    if low == "any":
        return SpecialAddress.ANY
    if low == "assigned":
        return SpecialAddress.ASSIGNED
    if token.startswith("!"):
        raise SdfError(f"address negation {token!r} is not allowed (TS 29.212 §5.4.2) in {text!r}")
    if low.startswith("assigned/"):
        raise SdfError(f"'assigned' takes no mask ({token!r}) in flow description {text!r}")
    try:
        return ipaddress.ip_network(token, strict=False)
    except ValueError:
        raise SdfError(f"malformed address {token!r} in flow description {text!r}") from None


def _is_ports(token: str) -> bool:
    return token[:1].isdecimal()


def parse_flow_description(text: str) -> FlowDescription:
    """Parse an IPFilterRule ``permit dir proto from src [ports] to dst [ports]``.

    Raises :class:`SdfError` for anything malformed or outside the dialect described
    in the module docstring.
    """
    tokens = text.split()
    if not tokens:
        raise SdfError("empty flow description")
    if len(tokens) < 7:
        raise SdfError(f"flow description {text!r} is too short: expected 'permit out PROTO from SRC to DST'")
    action, direction_s, proto_s = tokens[0].lower(), tokens[1].lower(), tokens[2].lower()
    if action == "deny":
        raise SdfError(f"action 'deny' is not supported: only 'permit' may be used (TS 29.212 §5.4.2): {text!r}")
    if action != "permit":
        raise SdfError(f"unknown action {tokens[0]!r} (expected 'permit') in {text!r}")
    try:
        direction = Direction(direction_s)
    except ValueError:
        raise SdfError(f"unknown direction {tokens[1]!r} (expected 'out' or 'in') in {text!r}") from None
    protocol: int | None
    if proto_s == "ip":
        protocol = None
    elif proto_s.isdecimal() and proto_s.isascii():
        protocol = int(proto_s)
        if protocol > 255:
            raise SdfError(f"protocol {protocol} out of range 0-255 in {text!r}")
    else:
        raise SdfError(f"unknown protocol {tokens[2]!r}: use a protocol number or 'ip' (RFC 6733) in {text!r}")

    pos = 3
    if tokens[pos].lower() != "from":
        raise SdfError(f"expected 'from' but found {tokens[pos]!r} in {text!r}")
    pos += 1
    src_addr = _parse_address(tokens[pos], text)
    pos += 1
    src_ports: tuple[PortRange, ...] = ()
    if pos < len(tokens) and _is_ports(tokens[pos]):
        src_ports = _parse_ports(tokens[pos], text)
        pos += 1
    if pos >= len(tokens) or tokens[pos].lower() != "to":
        found = repr(tokens[pos]) if pos < len(tokens) else "end of text"
        raise SdfError(f"expected 'to' but found {found} in {text!r}")
    pos += 1
    if pos >= len(tokens):
        raise SdfError(f"missing destination address after 'to' in {text!r}")
    dst_addr = _parse_address(tokens[pos], text)
    pos += 1
    dst_ports: tuple[PortRange, ...] = ()
    if pos < len(tokens) and _is_ports(tokens[pos]):
        dst_ports = _parse_ports(tokens[pos], text)
        pos += 1
    if pos < len(tokens):
        extra = tokens[pos]
        if extra.lower() in _OPTIONS:
            raise SdfError(f"option {extra!r} is not supported (TS 29.212 §5.4.2: no options) in {text!r}")
        raise SdfError(f"unexpected {extra!r} after the destination in {text!r}")

    if (src_ports or dst_ports) and protocol not in PORT_PROTOCOLS:
        proto_name = "ip" if protocol is None else str(protocol)
        raise SdfError(f"ports need a protocol with ports (6, 17, 33, 132 or 136), not {proto_name!r}, in {text!r}")
    if (
        isinstance(src_addr, IPv4Network | IPv6Network)
        and isinstance(dst_addr, IPv4Network | IPv6Network)
        and src_addr.version != dst_addr.version
    ):
        raise SdfError(f"source and destination are of different IP versions in {text!r}")
    return FlowDescription(direction, protocol, FlowEndpoint(src_addr, src_ports), FlowEndpoint(dst_addr, dst_ports))


# ---------------------------------------------------------------------------
# Compiled matcher
# ---------------------------------------------------------------------------

UeAddress: TypeAlias = IPv4Address | IPv6Address | IPv4Network | IPv6Network

# IPv6: the UE gets a /64 prefix per PDU session and picks its own interface
# identifier (TS 23.501 §5.8.2.2.3), so a bare IPv6 UE address means its /64.
_UE_V6_PREFIX: Final = 64

# IPv4 header: version/IHL, ToS, (total length, identification), flags/fragment
# offset, (TTL), protocol, (checksum), source, destination.
_V4: Final = struct.Struct("!BB4xHxB2xII")
# IPv6 header: version/traffic class/flow label, (payload length), next header,
# (hop limit), source and destination as two 64-bit halves each.
_V6: Final = struct.Struct("!I2xBxQQQQ")
_PORTS: Final = struct.Struct("!HH")
_SPI: Final = struct.Struct("!I")
_ESP: Final = 50
_AH: Final = 51
# IPv6 extension headers walked to reach the upper-layer protocol (RFC 8200 §4):
# Hop-by-Hop, Routing, Destination Options share the (next, len in 8-octet units - 1)
# layout; Fragment (44) is handled separately.
_V6_EXT_GENERIC: Final = frozenset({0, 43, 60})
_V6_FRAGMENT: Final = 44
_V6_EXT_LIMIT: Final = 8

# (source value, source mask, destination value, destination mask), already masked.
_AddrMatch: TypeAlias = tuple[int, int, int, int]
_Ports: TypeAlias = tuple[tuple[int, int], ...]


def _as_networks(ue_address: UeAddress | Iterable[UeAddress] | None) -> dict[int, IPv4Network | IPv6Network]:
    if ue_address is None:
        return {}
    items: Iterable[UeAddress]
    if isinstance(ue_address, IPv4Address | IPv6Address | IPv4Network | IPv6Network):
        items = (ue_address,)
    else:
        items = ue_address
    out: dict[int, IPv4Network | IPv6Network] = {}
    for a in items:
        if isinstance(a, IPv4Address):
            net: IPv4Network | IPv6Network = IPv4Network(a)
        elif isinstance(a, IPv6Address):
            net = IPv6Network((a, _UE_V6_PREFIX), strict=False)
        else:
            net = a
        if net.version in out:
            raise SdfError(f"more than one IPv{net.version} UE address given: {out[net.version]} and {net}")
        out[net.version] = net
    return out


def _resolve(
    address: IPv4Network | IPv6Network | SpecialAddress, version: int, ue: dict[int, IPv4Network | IPv6Network]
) -> tuple[int, int] | None:
    """(value, mask) for this IP version, or None if this side can never match it."""
    if address is SpecialAddress.ANY:
        return (0, 0)
    if address is SpecialAddress.ASSIGNED:
        net = ue.get(version)
        if net is None:
            return None
    else:
        assert isinstance(address, IPv4Network | IPv6Network)
        if address.version != version:
            return None
        net = address
    return (int(net.network_address), int(net.netmask))


def _ports(ranges: tuple[PortRange, ...]) -> _Ports:
    return tuple((r.low, r.high) for r in ranges)


def _in_ranges(port: int, ranges: _Ports) -> bool:
    for lo, hi in ranges:
        if lo <= port <= hi:
            return True
    return False


class SdfFilter:
    """One SDF Filter IE compiled for a session, matched against inner IP packets.

    Build it with :meth:`from_ie` (or :meth:`compile`).  Instances are immutable in
    practice (slots, set once) and safe to share between sessions only if they have
    the same UE address.
    """

    __slots__ = (
        "_dl4",
        "_dl6",
        "_dl_dports",
        "_dl_sports",
        "_flow_label",
        "_needs_l4",
        "_proto",
        "_spi",
        "_tos_mask",
        "_tos_value",
        "_ul4",
        "_ul6",
        "_ul_dports",
        "_ul_sports",
        "flow",
        "sdf_filter_id",
    )

    flow: FlowDescription | None
    sdf_filter_id: int | None
    _proto: int
    _tos_value: int
    _tos_mask: int
    _spi: int | None
    _flow_label: int | None
    _needs_l4: bool
    _ul4: _AddrMatch | None
    _ul6: _AddrMatch | None
    _dl4: _AddrMatch | None
    _dl6: _AddrMatch | None
    _ul_sports: _Ports
    _ul_dports: _Ports
    _dl_sports: _Ports
    _dl_dports: _Ports

    @classmethod
    def from_ie(cls, ie: pfcp.SDFFilter, ue_address: UeAddress | Iterable[UeAddress] | None) -> SdfFilter:
        """Compile an SDF Filter IE for a session whose UE address is ``ue_address``.

        ``ue_address`` resolves ``assigned``: an IPv4 address, an IPv6 address (taken
        as its /64 prefix), an explicit network, an iterable of those for a dual-stack
        session (one per IP version), or None if the session has none.  Raises
        :class:`SdfError` if the flow description is invalid, if it uses ``assigned``
        without a UE address, or if the filter could never match any packet.
        """
        flow = None if ie.flow_description is None else parse_flow_description(ie.flow_description)
        return cls.compile(
            flow,
            ue_address,
            tos_traffic_class=ie.tos_traffic_class,
            security_parameter_index=ie.security_parameter_index,
            flow_label=ie.flow_label,
            sdf_filter_id=ie.sdf_filter_id,
        )

    @classmethod
    def compile(
        cls,
        flow: FlowDescription | None,
        ue_address: UeAddress | Iterable[UeAddress] | None,
        *,
        tos_traffic_class: int | None = None,
        security_parameter_index: int | None = None,
        flow_label: int | None = None,
        sdf_filter_id: int | None = None,
    ) -> SdfFilter:
        """Compile already-parsed fields; see :meth:`from_ie`."""
        if flow is None and tos_traffic_class is None and security_parameter_index is None and flow_label is None:
            raise SdfError("SDF filter has no Flow Description, ToS/Traffic Class, SPI or Flow Label")
        self = cls.__new__(cls)
        self.flow = flow
        self.sdf_filter_id = sdf_filter_id
        ue = _as_networks(ue_address)

        if flow is None:
            remote = local = FlowEndpoint(SpecialAddress.ANY)
            proto = None
        else:
            remote, local, proto = flow.remote, flow.ue, flow.protocol
            if (remote.ports or local.ports) and proto not in PORT_PROTOCOLS:
                raise SdfError(f"ports need a protocol with ports (6, 17, 33, 132 or 136): {flow}")
            if SpecialAddress.ASSIGNED in (remote.address, local.address) and not ue:
                raise SdfError(f"flow description {str(flow)!r} uses 'assigned' but the session has no UE IP address")
        self._proto = -1 if proto is None else proto

        # §8.2.5: ToS/Traffic Class is two octets, the value then the mask.
        if tos_traffic_class is None:
            self._tos_value = self._tos_mask = 0
        else:
            self._tos_mask = tos_traffic_class & 0xFF
            self._tos_value = (tos_traffic_class >> 8) & self._tos_mask
        self._spi = security_parameter_index
        if self._spi is not None and proto is not None and proto not in (_ESP, _AH):
            raise SdfError(f"an SPI needs protocol ESP (50) or AH (51) or 'ip', not {proto}")
        # The IPv6 flow label is 20 bits, right-aligned in its 3 octets (TS 29.212 §5.3.65).
        self._flow_label = None if flow_label is None else flow_label & 0xFFFFF

        per_version: dict[int, tuple[tuple[int, int], tuple[int, int]] | None] = {}
        for version in (4, 6):
            r = _resolve(remote.address, version, ue)
            u = _resolve(local.address, version, ue)
            per_version[version] = None if r is None or u is None else (r, u)
        if self._flow_label is not None:
            per_version[4] = None  # only IPv6 has a flow label
        if per_version[4] is None and per_version[6] is None:
            raise SdfError(f"SDF filter can never match (no IP version fits it and the UE address): {flow}")

        def addr(version: int, uplink: bool) -> _AddrMatch | None:
            pair = per_version[version]
            if pair is None:
                return None
            (rv, rm), (uv, um) = pair
            return (uv, um, rv, rm) if uplink else (rv, rm, uv, um)

        self._ul4, self._ul6 = addr(4, True), addr(6, True)
        self._dl4, self._dl6 = addr(4, False), addr(6, False)
        # Uplink: the UE is the source; downlink: the remote peer is (TS 29.244 §5.2.1A.2A).
        self._ul_sports, self._ul_dports = _ports(local.ports), _ports(remote.ports)
        self._dl_sports, self._dl_dports = _ports(remote.ports), _ports(local.ports)
        self._needs_l4 = bool(remote.ports or local.ports) or self._spi is not None
        return self

    def __repr__(self) -> str:
        return (
            f"SdfFilter(flow={str(self.flow) if self.flow else None!r}, id={self.sdf_filter_id}, "
            f"tos=({self._tos_value:#x}/{self._tos_mask:#x}), spi={self._spi}, flow_label={self._flow_label})"
        )

    def matches_uplink(self, pkt: bytes | bytearray | memoryview, offset: int = 0) -> bool:
        """Whether the IP packet at ``pkt[offset:]``, sent by the UE, matches."""
        return self._match(pkt, offset, self._ul4, self._ul6, self._ul_sports, self._ul_dports)

    def matches_downlink(self, pkt: bytes | bytearray | memoryview, offset: int = 0) -> bool:
        """Whether the IP packet at ``pkt[offset:]``, sent toward the UE, matches."""
        return self._match(pkt, offset, self._dl4, self._dl6, self._dl_sports, self._dl_dports)

    def _match(
        self,
        pkt: bytes | bytearray | memoryview,
        offset: int,
        a4: _AddrMatch | None,
        a6: _AddrMatch | None,
        sports: _Ports,
        dports: _Ports,
    ) -> bool:
        try:
            version = pkt[offset] >> 4
            if version == 4:
                if a4 is None:
                    return False
                vihl, tos, frag, proto, src, dst = _V4.unpack_from(pkt, offset)
                sv, sm, dv, dm = a4
                if (src & sm) != sv or (dst & dm) != dv:
                    return False
                if (tos & self._tos_mask) != self._tos_value:
                    return False
                if self._proto >= 0 and proto != self._proto:
                    return False
                if not self._needs_l4:
                    return True
                # A non-first fragment carries no transport header (RFC 791).
                if frag & 0x1FFF:
                    return False
                l4 = offset + (vihl & 0x0F) * 4
            elif version == 6:
                if a6 is None:
                    return False
                first, nh, s_hi, s_lo, d_hi, d_lo = _V6.unpack_from(pkt, offset)
                sv, sm, dv, dm = a6
                if (((s_hi << 64) | s_lo) & sm) != sv or (((d_hi << 64) | d_lo) & dm) != dv:
                    return False
                if ((first >> 20) & self._tos_mask) != self._tos_value:
                    return False
                if self._flow_label is not None and (first & 0xFFFFF) != self._flow_label:
                    return False
                if self._proto < 0 and not self._needs_l4:
                    return True
                l4 = offset + 40
                # Walk extension headers to the upper-layer protocol, unless the rule
                # names the extension header itself.
                for _ in range(_V6_EXT_LIMIT):
                    if nh == self._proto:
                        break
                    if nh in _V6_EXT_GENERIC:
                        nh, hlen = pkt[l4], pkt[l4 + 1]
                        l4 += (hlen + 1) * 8
                    elif nh == _V6_FRAGMENT:
                        if (pkt[l4 + 2] << 8 | pkt[l4 + 3]) & 0xFFF8:
                            return False  # non-first fragment: no upper-layer header
                        nh = pkt[l4]
                        l4 += 8
                    else:
                        break
                else:
                    return False
                proto = nh
                if self._proto >= 0 and proto != self._proto:
                    return False
                if not self._needs_l4:
                    return True
            else:
                return False

            if self._spi is not None:
                # ESP: SPI is the first word (RFC 4303); AH: the second (RFC 4302).
                if proto == _ESP:
                    (spi,) = _SPI.unpack_from(pkt, l4)
                elif proto == _AH:
                    (spi,) = _SPI.unpack_from(pkt, l4 + 4)
                else:
                    return False
                if spi != self._spi:
                    return False
            if sports or dports:
                sport, dport = _PORTS.unpack_from(pkt, l4)
                if sports and not _in_ranges(sport, sports):
                    return False
                if dports and not _in_ranges(dport, dports):
                    return False
            return True
        except (IndexError, struct.error):
            return False  # truncated packet
