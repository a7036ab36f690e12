"""The emulated VPP's mutable state and the helpers its handlers share.

Handlers run under the emulator's lock. A handler validates everything first and mutates last, so a
request that fails (``raise ApiError(retval)``) changes nothing, as in VPP, whose handlers check their
arguments before touching the FIB or the interface pools.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from tests.vpp_emulator.snapshot import (
    NO_INDEX,
    AbfPolicy,
    Acl,
    AclInterface,
    FibPath,
    GtpuForward,
    GtpuTunnel,
    Interface,
    IpAddress,
    IpNetwork,
    MemifInterface,
    Policer,
    State,
    frozen,
)

# VPP's API error codes (src/vnet/api_errno.h).
INVALID_SW_IF_INDEX = -2
NO_SUCH_FIB = -3
NO_SUCH_ENTRY = -6
INVALID_VALUE = -7
UNIMPLEMENTED = -9
NO_PATHS_IN_ROUTE = -52
NO_MATCHING_INTERFACE = -54
ADDRESS_NOT_FOUND_FOR_INTERFACE = -60
INVALID_ARGUMENT = -73
VALUE_EXIST = -81
ADDRESS_FOUND_FOR_INTERFACE = -114
ENTRY_ALREADY_EXISTS = -116
ACL_IN_USE_INBOUND = -142
ACL_IN_USE_OUTBOUND = -143

# if_status_flags
ADMIN_UP = 1
LINK_UP = 2

#: The default memif socket VPP creates at boot (socket id 0).
DEFAULT_MEMIF_SOCKET = "/run/vpp/memif.sock"


class IndexPool:
    """Pool indexes as VPP hands them out: a freed index is reused (the lowest first), else the next."""

    def __init__(self, start: int = 0) -> None:
        self._next = start
        self._free: list[int] = []

    def get(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        self._next += 1
        return self._next - 1

    def put(self, index: int) -> None:
        heapq.heappush(self._free, index)


class ApiError(Exception):
    """A request VPP refuses: the reply carries ``retval`` and nothing changes."""

    def __init__(self, retval: int, why: str) -> None:
        super().__init__(f"retval {retval}: {why}")
        self.retval = retval


#: A handler gets the model and the request's fields; it returns the reply's fields (plain requests)
#: or the details' fields (legacy dumps).
Reply = dict[str, Any] | list[dict[str, Any]]
Handler = Callable[["Model", dict[str, Any]], Reply]


class Model:
    """Everything a VPP keeps that the UPF driver touches; a fresh instance is a fresh boot."""

    def __init__(self, interfaces: Iterable[str] = ()) -> None:
        self.interfaces: dict[int, Interface] = {0: Interface(0, "local0", "local")}
        self.interface_names: dict[str, int] = {"local0": 0}
        self.sw_if_indexes = IndexPool(start=1)
        self.ip_tables: dict[tuple[bool, int], str] = {(False, 0): "ipv4-VRF:0", (True, 0): "ipv6-VRF:0"}
        self.routes: dict[tuple[int, IpNetwork], tuple[FibPath, ...]] = {}
        self.route_stats_index: dict[tuple[int, IpNetwork], int] = {}
        self.next_stats_index = 1
        #: routes marked by ip_table_replace_begin and not re-added since (the sweep of replace_end)
        self.stale_routes: set[tuple[int, IpNetwork]] = set()
        self.gtpu_tunnels: dict[int, GtpuTunnel] = {}
        #: decap key (gNB address, local TEID) -> sw_if_index (gtpu4_tunnel_by_key)
        self.gtpu_by_key: dict[tuple[IpAddress, int], int] = {}
        #: gtpu_tunnel<instance>: the instance of each tunnel interface (forwards included)
        self.gtpu_instances = IndexPool()
        self.gtpu_instance_of: dict[int, int] = {}
        self.gtpu_forwards: dict[int, GtpuForward] = {}
        self.policers: dict[int, Policer] = {}
        self.policer_by_name: dict[str, int] = {}
        self.policer_indexes = IndexPool()
        self.policer_bindings: dict[tuple[int, str], int] = {}
        self.acls: dict[int, Acl] = {}
        self.acl_indexes = IndexPool()
        self.acl_interfaces: dict[int, AclInterface] = {}
        self.abf_policies: dict[int, AbfPolicy] = {}
        self.abf_attachments: dict[tuple[int, int, bool], int] = {}
        self.memif_sockets: dict[int, str] = {0: DEFAULT_MEMIF_SOCKET}
        self.memif_interfaces: dict[int, MemifInterface] = {}
        #: (sw_if_index, flags, deleted) waiting to go to clients that asked for interface events
        self.pending_events: list[tuple[int, int, bool]] = []
        for name in interfaces:
            self.add_interface(name, "ethernet")

    # -- snapshot ---------------------------------------------------------------------------------

    def snapshot(self) -> State:
        return State(
            interfaces=frozen(self.interfaces),
            ip_tables=frozen(self.ip_tables),
            routes=frozen(self.routes),
            gtpu_tunnels=frozen(self.gtpu_tunnels),
            gtpu_forwards=frozen(self.gtpu_forwards),
            policers=frozen(self.policers),
            policer_bindings=frozen(self.policer_bindings),
            acls=frozen(self.acls),
            acl_interfaces=frozen(self.acl_interfaces),
            abf_policies=frozen(self.abf_policies),
            abf_attachments=frozen(self.abf_attachments),
            memif_sockets=frozen(self.memif_sockets),
            memif_interfaces=frozen(self.memif_interfaces),
        )

    # -- interfaces -------------------------------------------------------------------------------

    def interface(self, sw_if_index: int, retval: int = INVALID_SW_IF_INDEX) -> Interface:
        iface = self.interfaces.get(sw_if_index)
        if iface is None:
            raise ApiError(retval, f"no interface {sw_if_index}")
        return iface

    def add_interface(self, name: str, kind: str, admin_up: bool = False) -> Interface:
        if name in self.interface_names:
            raise ValueError(f"interface {name!r} exists")
        index = self.sw_if_indexes.get()
        iface = Interface(index, name, kind, admin_up=admin_up)
        self.interfaces[index] = iface
        self.interface_names[name] = index
        if admin_up:
            self.pending_events.append((index, self.flags(iface), False))
        return iface

    def update_interface(self, iface: Interface, **changes: Any) -> Interface:
        new = replace(iface, **changes)
        self.interfaces[iface.sw_if_index] = new
        return new

    def delete_interface(self, sw_if_index: int) -> None:
        """Remove an interface and what hangs on it (bindings, ACL lists, ABF attachments), as VPP's
        interface-delete callbacks do; routes through it stay, as VPP leaves them unresolved."""
        iface = self.interfaces.pop(sw_if_index)
        del self.interface_names[iface.name]
        self.sw_if_indexes.put(sw_if_index)
        for key in [k for k in self.policer_bindings if k[0] == sw_if_index]:
            del self.policer_bindings[key]
        self.acl_interfaces.pop(sw_if_index, None)
        for attachment in [k for k in self.abf_attachments if k[1] == sw_if_index]:
            del self.abf_attachments[attachment]
        for other in list(self.interfaces.values()):
            if other.unnumbered == sw_if_index:
                self.update_interface(other, unnumbered=None)
        self.pending_events.append((sw_if_index, 0, True))  # set down, then deleted

    @staticmethod
    def flags(iface: Interface) -> int:
        """if_status_flags: link follows admin state (cables are always plugged in); local0 has no link."""
        if not iface.admin_up:
            return 0
        return ADMIN_UP if iface.kind == "local" else ADMIN_UP | LINK_UP

    def require_table(self, is_ip6: bool, table_id: int) -> None:
        if (is_ip6, table_id) not in self.ip_tables:
            raise ApiError(NO_SUCH_FIB, f"no ip{6 if is_ip6 else 4} table {table_id}")

    # -- FIB paths (shared by ip routes and ABF policies) -----------------------------------------

    def decode_path(self, path: Mapping[str, Any]) -> FibPath:
        """fib_api_path_decode: weight 0 means 1; a path via an interface needs it to exist (-54);
        a path without one resolves in ``table_id``, which must exist (-3). Fields a path type does
        not use are normalised (sw_if_index ~0, table_id 0), so states compare by meaning."""
        proto = int(path.get("proto", 0))
        if proto not in (0, 1):
            raise ApiError(-1, f"unsupported next-hop proto {proto}")
        kind = int(path.get("type", 0))
        sw_if_index = int(path.get("sw_if_index", 0))
        table_id = int(path.get("table_id", 0))
        next_hop: IpAddress | None = None
        if kind in (0, 7):  # NORMAL, SOURCE_LOOKUP
            address = path.get("nh", {}).get("address", {})
            raw = address.get("ip6" if proto else "ip4")
            if raw is not None:
                candidate = ip_address(raw) if not isinstance(raw, IPv4Address | IPv6Address) else raw
                next_hop = None if candidate.packed == bytes(len(candidate.packed)) else candidate
            if sw_if_index == NO_INDEX:
                self.require_table(bool(proto), table_id)
            elif sw_if_index not in self.interfaces:
                raise ApiError(NO_MATCHING_INTERFACE, f"path via unknown interface {sw_if_index}")
            else:
                table_id = 0  # only a path without interface resolves in a table
        elif kind in (1, 8, 9):  # LOCAL, DVR, INTERFACE_RX carry an interface
            table_id = 0
        else:  # DROP, ICMP_*, UDP_ENCAP, ...: neither interface nor table
            sw_if_index, table_id = NO_INDEX, 0
        weight = int(path.get("weight", 0)) or 1
        return FibPath(sw_if_index, kind, proto, next_hop, table_id, weight, int(path.get("preference", 0)))

    @staticmethod
    def encode_path(path: FibPath) -> dict[str, Any]:
        if path.next_hop is not None:
            address: dict[str, Any] = {"ip6" if path.proto else "ip4": path.next_hop}
        else:
            address = {"ip6": IPv6Address(0)} if path.proto else {"ip4": IPv4Address(0)}
        return {
            "sw_if_index": path.sw_if_index,
            "table_id": path.table_id,
            "weight": path.weight,
            "preference": path.preference,
            "type": path.type,
            "proto": path.proto,
            "nh": {"address": address},
        }
