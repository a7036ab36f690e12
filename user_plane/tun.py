"""TUN devices for the software dataplane's N6 side (Linux).

Theory of operation:

* :func:`open_tun` asks ``/dev/net/tun`` for a layer-3 device (``IFF_TUN``,
  ``IFF_NO_PI``: every read and write is exactly one IP packet, no 4-octet
  packet-information prefix). ``IFF_TUN_EXCL`` makes the call fail when a device
  of that name already exists, so the driver never adopts (and later tears down)
  somebody else's device. The device is not persistent: it disappears, with its
  routes, when the file descriptor is closed, also when the process dies.
* The device is created in the network namespace of the calling thread, and
  :func:`configure_tun` speaks rtnetlink from the same thread, so everything
  happens in the namespace the agent runs in.
* The kernel routes each UE pool into the device (downlink packets from the
  data network are then read from it) and routes what the driver writes into it
  (uplink inner packets) like any received packet, which needs IP forwarding on
  in the namespace: :func:`forwarding_disabled` tells which family lacks it.
* A Network Instance's gateway (``n6.<instance>.gateway``) is policy routing:
  :func:`add_gateway_route` puts a default route via the gateway in a routing
  table of the instance's own and adds an ``ip rule`` selecting that table for
  packets that arrive from the instance's TUN (``iif``), i.e. its uplink.
  Unlike the device's own routes, table and rule outlive the device:
  :func:`remove_gateway_route` takes them away.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Final

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]

__all__ = [
    "TunError",
    "add_gateway_route",
    "configure_tun",
    "device_of",
    "disable_ipv6",
    "ethernet_devices",
    "forwarding_disabled",
    "interface_mtu",
    "open_tun",
    "remove_gateway_route",
    "tx_checksum",
]

#: <linux/if_tun.h>
TUNSETIFF: Final = 0x400454CA
IFF_TUN: Final = 0x0001
IFF_NO_PI: Final = 0x1000
IFF_TUN_EXCL: Final = 0x8000
#: struct ifreq: 16-octet name, then a union of which we use the 2-octet flags.
_IFREQ: Final = struct.Struct("16sH22x")


class TunError(OSError):
    """A TUN device could not be created or configured."""


def open_tun(name: str) -> int:
    """Create TUN device ``name`` and return its non-blocking file descriptor."""
    encoded = name.encode()
    if not 0 < len(encoded) < 16:
        raise TunError(errno.EINVAL, f"bad interface name {name!r}")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(encoded, IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL))
    except OSError as exc:
        os.close(fd)
        why = "a device of that name already exists" if exc.errno == errno.EBUSY else exc.strerror
        raise TunError(exc.errno, f"cannot create TUN device {name!r}: {why}") from None
    return fd


async def configure_tun(
    name: str, mtu: int, routes: Iterable[IPv4Network | IPv6Network], txqueuelen: int = 1000
) -> None:
    """Set ``name`` up with ``mtu`` and route each network in ``routes`` into it."""
    async with AsyncIPRoute() as ipr:
        found = await ipr.link_lookup(ifname=name)
        if not found:
            raise TunError(errno.ENODEV, f"TUN device {name!r} vanished")
        index = found[0]
        await ipr.link("set", index=index, mtu=mtu, txqlen=txqueuelen, state="up")
        for net in routes:
            try:
                await ipr.route("add", dst=str(net), oif=index, family=_family(net))
            except Exception as exc:  # pyroute2's NetlinkError carries the errno in .code
                raise TunError(getattr(exc, "code", errno.EIO), f"route {net} dev {name}: {exc}") from None


def _family(net: IPv4Network | IPv6Network | IPv4Address | IPv6Address) -> int:
    return socket.AF_INET if net.version == 4 else socket.AF_INET6


def _default(gateway: IPv4Address | IPv6Address) -> str:
    return "0.0.0.0/0" if gateway.version == 4 else "::/0"


async def add_gateway_route(iif: str, gateway: IPv4Address | IPv6Address, table: int, priority: int) -> None:
    """Packets of ``gateway``'s IP version arriving from device ``iif`` leave via ``gateway``:
    table ``table`` holds a default route via it, a rule at ``priority`` selects that table
    for ``iif``. The gateway must be reachable (on a link) in this namespace."""
    family = _family(gateway)
    async with AsyncIPRoute() as ipr:
        try:
            await ipr.route("replace", dst=_default(gateway), gateway=str(gateway), table=table, family=family)
        except Exception as exc:  # pyroute2's NetlinkError carries the errno in .code
            raise TunError(
                getattr(exc, "code", errno.EIO), f"default route via {gateway} in table {table}: {exc}"
            ) from None
        try:
            await ipr.rule("add", table=table, priority=priority, iifname=iif, family=family)
        except Exception as exc:
            # The same rule left by a run that died: it is exactly ours, keep it (stop removes it).
            if getattr(exc, "code", None) != errno.EEXIST:
                raise TunError(
                    getattr(exc, "code", errno.EIO), f"rule iif {iif} lookup {table} priority {priority}: {exc}"
                ) from None


async def remove_gateway_route(iif: str, gateway: IPv4Address | IPv6Address, table: int, priority: int) -> None:
    """Undo :func:`add_gateway_route` (what is already gone is fine)."""
    family = _family(gateway)
    async with AsyncIPRoute() as ipr:
        try:
            await ipr.rule("del", table=table, priority=priority, iifname=iif, family=family)
        except Exception as exc:
            _unless_gone(exc, f"removing rule iif {iif} lookup {table}")
        try:
            await ipr.route("del", dst=_default(gateway), gateway=str(gateway), table=table, family=family)
        except Exception as exc:
            _unless_gone(exc, f"removing the default route via {gateway} from table {table}")


def _unless_gone(exc: Exception, what: str) -> None:
    code = getattr(exc, "code", errno.EIO)
    if code not in (errno.ENOENT, errno.ESRCH):
        raise TunError(code, f"{what}: {exc}") from None


async def interface_mtu(address: IPv4Address | IPv6Address) -> int | None:
    """The MTU of the local device holding ``address`` (None if no device has it)."""
    async with AsyncIPRoute() as ipr:
        indexes = [msg["index"] async for msg in await ipr.addr("dump") if msg.get("address") == str(address)]
        if not indexes:
            return None
        for link in await ipr.link("get", index=indexes[0]):
            mtu = link.get("mtu")
            return int(mtu) if mtu is not None else None
    return None


def disable_ipv6(name: str) -> None:
    """Best effort: no IPv6 on a device that carries none (no router solicitations,
    no MLD reports read back as downlink packets)."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass


def forwarding_disabled(versions: Iterable[int]) -> list[int]:
    """IP versions among ``versions`` whose forwarding is off in this namespace."""
    paths = {4: "/proc/sys/net/ipv4/ip_forward", 6: "/proc/sys/net/ipv6/conf/all/forwarding"}
    off = []
    for version in sorted(set(versions)):
        try:
            with open(paths[version]) as f:
                if f.read().strip() == "0":
                    off.append(version)
        except OSError:
            off.append(version)
    return off


async def ethernet_devices() -> list[tuple[int, str]]:
    """(ifindex, name) of every Ethernet device (ARPHRD_ETHER) of this namespace."""
    async with AsyncIPRoute() as ipr:
        return [
            (int(msg["index"]), str(msg.get("ifname")))
            async for msg in await ipr.link("dump")
            if msg.get("ifi_type") == 1
        ]


async def device_of(address: IPv4Address | IPv6Address) -> str | None:
    """The name of the local device holding ``address`` (None if no device has it)."""
    async with AsyncIPRoute() as ipr:
        indexes = [msg["index"] async for msg in await ipr.addr("dump") if msg.get("address") == str(address)]
        if not indexes:
            return None
        for link in await ipr.link("get", index=indexes[0]):
            name = link.get("ifname")
            return None if name is None else str(name)
    return None


#: <linux/sockios.h>, <linux/ethtool.h>
SIOCETHTOOL: Final = 0x8946
ETHTOOL_GTXCSUM: Final = 0x16
ETHTOOL_STXCSUM: Final = 0x17


def tx_checksum(name: str, on: bool | None = None) -> bool:
    """Whether ``name`` offloads transmit checksums; with ``on``, set it first (SIOCETHTOOL,
    the ``ethtool -K NAME tx on|off`` of the calling thread's namespace). Returns the value
    in force afterwards. Raises OSError when the device has no such setting."""
    import ctypes

    value = (ctypes.c_uint32 * 2)()
    request = bytearray(_IFREQ_PTR.size)

    def call(cmd: int, data: int) -> int:
        value[0], value[1] = cmd, data
        _IFREQ_PTR.pack_into(request, 0, name.encode(), ctypes.addressof(value))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)
        return int(value[1])

    if on is not None:
        call(ETHTOOL_STXCSUM, int(on))
    return bool(call(ETHTOOL_GTXCSUM, 0))


#: struct ifreq with ifr_data: 16-octet name, a pointer, padding to 40 octets.
_IFREQ_PTR: Final = struct.Struct("16sP16x")
