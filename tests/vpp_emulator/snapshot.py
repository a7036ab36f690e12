"""Immutable records of the emulator's state; :class:`State` is what ``VppEmulator.state`` returns.

The model keeps these frozen records in its dicts and replaces a record on change, so a snapshot is a
copy of the dicts taken under the emulator's lock: consistent and cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from types import MappingProxyType
from typing import TypeVar

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network
IpInterface = IPv4Interface | IPv6Interface

K = TypeVar("K")
V = TypeVar("V")

#: sw_if_index meaning "none" (~0), as in VPP.
NO_INDEX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Interface:
    sw_if_index: int
    name: str
    #: "local" (local0), "ethernet" (pre-seeded), "gtpu", "memif"
    kind: str
    admin_up: bool = False
    ip4_table: int = 0
    ip6_table: int = 0
    ip4_enabled: bool = False
    ip6_enabled: bool = False
    addresses: tuple[IpInterface, ...] = ()
    #: donor sw_if_index when unnumbered, else None
    unnumbered: int | None = None


@dataclass(frozen=True, slots=True)
class FibPath:
    sw_if_index: int
    #: fib_path_type: 0 NORMAL, 1 LOCAL, 2 DROP, ...
    type: int
    #: fib_path_nh_proto: 0 IP4, 1 IP6
    proto: int
    #: None when the path has no next hop (all-zero address), e.g. via a P2P gtpu interface
    next_hop: IpAddress | None
    table_id: int = 0
    weight: int = 1
    preference: int = 0


@dataclass(frozen=True, slots=True)
class Counters:
    packets_rx: int = 0
    packets_tx: int = 0
    bytes_rx: int = 0
    bytes_tx: int = 0


@dataclass(frozen=True, slots=True)
class GtpuTunnel:
    sw_if_index: int
    src: IpAddress
    dst: IpAddress
    teid: int
    tteid: int
    encap_vrf_id: int
    decap_next_index: int
    pdu_extension: bool
    qfi: int
    mcast_sw_if_index: int = NO_INDEX
    counters: Counters = field(default_factory=Counters)


@dataclass(frozen=True, slots=True)
class GtpuForward:
    sw_if_index: int
    dst: IpAddress
    forwarding_type: int
    encap_vrf_id: int
    decap_next_index: int


@dataclass(frozen=True, slots=True)
class PolicerAction:
    #: sse2_qos_action_type: 0 DROP, 1 TRANSMIT, 2 MARK_AND_TRANSMIT
    type: int
    dscp: int = 0


@dataclass(frozen=True, slots=True)
class PolicerInfos:
    cir: int
    eir: int
    cb: int
    eb: int
    rate_type: int
    round_type: int
    type: int
    color_aware: bool
    conform_action: PolicerAction
    exceed_action: PolicerAction
    violate_action: PolicerAction


@dataclass(frozen=True, slots=True)
class Policer:
    index: int
    name: str
    infos: PolicerInfos


@dataclass(frozen=True, slots=True)
class AclRule:
    #: acl_action: 0 DENY, 1 PERMIT, 2 PERMIT_REFLECT
    is_permit: int
    src_prefix: IpNetwork
    dst_prefix: IpNetwork
    proto: int
    srcport_or_icmptype_first: int = 0
    srcport_or_icmptype_last: int = 0
    dstport_or_icmpcode_first: int = 0
    dstport_or_icmpcode_last: int = 0
    tcp_flags_mask: int = 0
    tcp_flags_value: int = 0


@dataclass(frozen=True, slots=True)
class Acl:
    index: int
    tag: str
    rules: tuple[AclRule, ...]


@dataclass(frozen=True, slots=True)
class AclInterface:
    input: tuple[int, ...] = ()
    output: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class AbfPolicy:
    policy_id: int
    acl_index: int
    paths: tuple[FibPath, ...]


@dataclass(frozen=True, slots=True)
class MemifInterface:
    sw_if_index: int
    id: int
    socket_id: int
    #: memif_role: 0 MASTER, 1 SLAVE
    role: int
    #: memif_mode: 0 ETHERNET, 1 IP, 2 PUNT_INJECT
    mode: int
    ring_size: int
    buffer_size: int
    rx_queues: int
    tx_queues: int


def frozen(mapping: Mapping[K, V]) -> Mapping[K, V]:
    """A read-only copy: the snapshot does not move when the model does."""
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class State:
    """A consistent snapshot of the emulated VPP (see the package docstring for the field list)."""

    interfaces: Mapping[int, Interface]
    ip_tables: Mapping[tuple[bool, int], str]
    routes: Mapping[tuple[int, IpNetwork], tuple[FibPath, ...]]
    gtpu_tunnels: Mapping[int, GtpuTunnel]
    gtpu_forwards: Mapping[int, GtpuForward]
    policers: Mapping[int, Policer]
    policer_bindings: Mapping[tuple[int, str], int]
    acls: Mapping[int, Acl]
    acl_interfaces: Mapping[int, AclInterface]
    abf_policies: Mapping[int, AbfPolicy]
    abf_attachments: Mapping[tuple[int, int, bool], int]
    memif_sockets: Mapping[int, str]
    memif_interfaces: Mapping[int, MemifInterface]

    def interface_by_name(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces.values() if i.name == name), None)
