"""The ``vpp:`` section of the UPF agent's configuration (``driver: vpp``).

Parsed here, not in :mod:`user_plane.config`, which hands the section over and keeps
the result in ``UpfConfig.vpp``. :data:`VPP_OPTIONS` documents every key (``edgecups
upf check-config --help`` prints them); :func:`parse_vpp` checks a section and returns
every problem as ``vpp.path: message``. Nothing here imports vpp_papi: a configuration
is checked on machines without VPP.

Interfaces are named as VPP names them (``GigabitEthernet0/8/0``, ``host-eth1``), or
created by the driver as memif interfaces (``memif: {id, socket}``) so that other CNFs
chain to the UPF over shared memory.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address, ip_interface
from typing import Final, Literal

__all__ = [
    "DEFAULT_API_DIR",
    "DEFAULT_API_SOCKET",
    "VPP_OPTIONS",
    "Memif",
    "NetworkInstanceSide",
    "VppConfig",
    "VppInterface",
    "parse_vpp",
]

DEFAULT_API_SOCKET: Final = "/run/vpp/api.sock"
DEFAULT_API_DIR: Final = "/usr/share/vpp/api"

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

#: Every key of the ``vpp`` section (paths relative to it), with its help text.
VPP_OPTIONS: Final[tuple[tuple[str, str], ...]] = (
    ("api_socket", f"VPP's binary API socket (socksvr in startup.conf). Default {DEFAULT_API_SOCKET}."),
    ("api_dir", f"Directory of VPP's *.api.json schema files (searched recursively). Default {DEFAULT_API_DIR}."),
    ("timeout", "Seconds to wait for one VPP API reply. Default 5."),
    ("poll_interval", "Seconds between reads of the GTP-U tunnel counters for usage reporting. Default 1."),
    ("liveness_interval", "Seconds between control_ping liveness checks of VPP. Default 1."),
    ("reconnect_max", "Longest wait (seconds) between reconnection attempts after VPP went away. Default 10."),
    ("gtpu_forward", "Address GTP-U messages other than G-PDU (Echo, Error Indication...) are forwarded to."),
    ("n3.interface", "VPP interface carrying N3 (GTP-U), by its VPP name; or n3.memif."),
    ("n3.memif.id", "memif interface id (N3 created as a memif interface)."),
    ("n3.memif.socket", "memif control socket file."),
    ("n3.memif.role", "master or slave. Default master."),
    ("n3.memif.mode", "ethernet or ip. Default ethernet."),
    ("n3.address", "Address/prefix length(s) put on the N3 interface; each address must be listed in n3."),
    ("n3.table_id", "IP table of the N3 interface (GTP-U outer packets). Default 0."),
    ("n6.<network-instance>.interface", "VPP interface of this Network Instance's N6, by its VPP name; or memif."),
    ("n6.<network-instance>.memif.id", "memif interface id (N6 created as a memif interface)."),
    ("n6.<network-instance>.memif.socket", "memif control socket file."),
    ("n6.<network-instance>.memif.role", "master or slave. Default master."),
    ("n6.<network-instance>.memif.mode", "ethernet or ip. Default ethernet."),
    ("n6.<network-instance>.address", "Address/prefix length(s) put on the N6 interface."),
    ("n6.<network-instance>.table_id", "The instance's VRF (IPv4 and IPv6 table id), not 0 and one per instance."),
)

_TOP: Final = ("api_socket", "api_dir", "timeout", "poll_interval", "liveness_interval", "reconnect_max")
_TOP_KEYS: Final = (*_TOP, "gtpu_forward", "n3", "n6")
_SIDE_KEYS: Final = ("interface", "memif", "address", "table_id")
_MEMIF_KEYS: Final = ("id", "socket", "role", "mode")
_MAX_TABLE: Final = 0xFFFFFFFE  # ~0 means "none" in VPP's API


@dataclass(frozen=True, slots=True)
class Memif:
    """A memif interface the driver creates (memif_socket_filename_add_del_v2 + memif_create_v2)."""

    id: int
    socket: str
    role: Literal["master", "slave"] = "master"
    mode: Literal["ethernet", "ip"] = "ethernet"

    @property
    def name(self) -> str:
        """The name VPP gives it (memif<socket-id>/<id>) is known only once created; this is ours."""
        return f"memif:{self.socket}:{self.id}"


#: An existing VPP interface by name, or a memif interface to create.
VppInterface = str | Memif


@dataclass(frozen=True, slots=True)
class NetworkInstanceSide:
    """One side of the node: its interface, the addresses put on it and its IP table."""

    interface: VppInterface
    addresses: tuple[IPInterface, ...]
    table_id: int


@dataclass(frozen=True, slots=True)
class VppConfig:
    """The ``vpp`` section, checked."""

    n3: NetworkInstanceSide
    n6: Mapping[str, NetworkInstanceSide]
    api_socket: str = DEFAULT_API_SOCKET
    api_dir: str = DEFAULT_API_DIR
    timeout: float = 5.0
    poll_interval: float = 1.0
    liveness_interval: float = 1.0
    reconnect_max: float = 10.0
    gtpu_forward: IPAddress | None = None

    def to_mapping(self) -> dict[str, object]:
        """Plain data in the file's schema: ``parse_vpp(c.to_mapping(), ...)`` gives ``c`` back."""

        def side(s: NetworkInstanceSide) -> dict[str, object]:
            out: dict[str, object] = {"address": [str(a) for a in s.addresses], "table_id": s.table_id}
            if isinstance(s.interface, Memif):
                m = s.interface
                out["memif"] = {"id": m.id, "socket": m.socket, "role": m.role, "mode": m.mode}
            else:
                out["interface"] = s.interface
            return out

        mapping: dict[str, object] = {key: getattr(self, key) for key in _TOP}
        if self.gtpu_forward is not None:
            mapping["gtpu_forward"] = str(self.gtpu_forward)
        mapping["n3"] = side(self.n3)
        mapping["n6"] = {name: side(s) for name, s in self.n6.items()}
        return mapping


def parse_vpp(
    value: object, *, instances: Collection[str], n3: Collection[IPAddress], path: str = "vpp"
) -> tuple[VppConfig | None, list[str]]:
    """Check a ``vpp`` section against the Network Instances (``n6``) and N3 addresses of the
    rest of the configuration; returns the configuration (None when there are problems) and
    every problem as ``path: message``."""
    p = _Parser()
    top = p.mapping(value, path, _TOP_KEYS)
    if top is None:
        return None, p.errors
    defaults = VppConfig(NetworkInstanceSide("", (), 0), {})
    api_socket = p.text(top.get("api_socket", defaults.api_socket), f"{path}.api_socket")
    api_dir = p.text(top.get("api_dir", defaults.api_dir), f"{path}.api_dir")
    numbers = {
        key: p.seconds(top.get(key, getattr(defaults, key)), f"{path}.{key}")
        for key in ("timeout", "poll_interval", "liveness_interval", "reconnect_max")
    }
    forward = None
    if top.get("gtpu_forward") is not None:
        forward = p.address(top["gtpu_forward"], f"{path}.gtpu_forward")
    side_n3 = None
    if "n3" not in top:
        p.error(f"{path}.n3", "required")
    else:
        side_n3 = p.side(top["n3"], f"{path}.n3", table_default=0)
    if side_n3 is not None:
        for index, addr in enumerate(side_n3.addresses):
            if addr.ip not in n3:
                p.error(f"{path}.n3.address[{index}]", f"{addr.ip} is not one of the N3 addresses (n3)")
        for wanted in n3:
            if all(a.ip != wanted for a in side_n3.addresses):
                p.error(f"{path}.n3.address", f"the N3 address {wanted} (n3) is on no VPP interface: add it here")
    sides: dict[str, NetworkInstanceSide] = {}
    raw_n6 = top.get("n6")
    if not isinstance(raw_n6, Mapping):
        p.error(f"{path}.n6", "required: a mapping of Network Instance names (one per n6 instance)")
    else:
        for name, item in raw_n6.items():
            where = f"{path}.n6.{name}"
            if name not in instances:
                p.error(where, f"not a Network Instance of n6 ({', '.join(sorted(instances))})")
                continue
            side = p.side(item, where, table_default=None)
            if side is not None:
                sides[name] = side
        for name in instances:
            if name not in raw_n6:
                p.error(f"{path}.n6.{name}", "required: every Network Instance of n6 needs its VPP side")
    tables: dict[int, str] = {}
    for name, side in sides.items():
        if side.table_id == 0:
            p.error(f"{path}.n6.{name}.table_id", "0 is VPP's default table: give each instance a VRF of its own")
        elif side.table_id in tables:
            p.error(f"{path}.n6.{name}.table_id", f"{side.table_id} is already the table of {tables[side.table_id]}")
        tables[side.table_id] = name
    if p.errors or side_n3 is None or api_socket is None or api_dir is None or None in numbers.values():
        return None, p.errors
    return (
        VppConfig(
            side_n3,
            sides,
            api_socket,
            api_dir,
            gtpu_forward=forward,
            **{k: v for k, v in numbers.items() if v is not None},
        ),
        [],
    )


class _Parser:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def mapping(self, value: object, path: str, keys: tuple[str, ...]) -> dict[str, object] | None:
        if not isinstance(value, Mapping):
            self.error(path, f"expected a mapping, got {type(value).__name__}")
            return None
        out: dict[str, object] = {}
        for key, item in value.items():
            if key not in keys:
                self.error(f"{path}.{key}", f"unknown key; expected one of {', '.join(keys)}")
            else:
                out[key] = item
        return out

    def text(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.error(path, f"expected a non-empty string, got {value!r}")
            return None
        return value

    def seconds(self, value: object, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
            self.error(path, f"expected a positive number of seconds, got {value!r}")
            return None
        return float(value)

    def integer(self, value: object, path: str, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.error(path, f"expected an integer from {low} to {high}, got {value!r}")
            return None
        return value

    def address(self, value: object, path: str) -> IPAddress | None:
        try:
            return ip_address(str(value)) if isinstance(value, str) else ip_address(value)  # type: ignore[arg-type]
        except ValueError:
            self.error(path, f"{value!r} is not an IP address")
            return None

    def side(self, value: object, path: str, table_default: int | None) -> NetworkInstanceSide | None:
        section = self.mapping(value, path, _SIDE_KEYS)
        if section is None:
            return None
        interface: VppInterface | None = None
        if ("interface" in section) == ("memif" in section):
            self.error(path, "give exactly one of interface (an existing VPP interface) and memif (one to create)")
        elif "interface" in section:
            interface = self.text(section["interface"], f"{path}.interface")
        else:
            interface = self.memif(section["memif"], f"{path}.memif")
        addresses = self.addresses(section.get("address"), f"{path}.address")
        table: int | None
        if "table_id" in section:
            table = self.integer(section["table_id"], f"{path}.table_id", 0, _MAX_TABLE)
        elif table_default is None:
            self.error(f"{path}.table_id", "required")
            table = None
        else:
            table = table_default
        if interface is None or addresses is None or table is None:
            return None
        return NetworkInstanceSide(interface, addresses, table)

    def memif(self, value: object, path: str) -> Memif | None:
        section = self.mapping(value, path, _MEMIF_KEYS)
        if section is None:
            return None
        if "id" not in section or "socket" not in section:
            self.error(path, "id and socket are required")
            return None
        ident = self.integer(section["id"], f"{path}.id", 0, 0xFFFFFFFF)
        socket = self.text(section["socket"], f"{path}.socket")
        role = section.get("role", "master")
        mode = section.get("mode", "ethernet")
        if role not in ("master", "slave"):
            self.error(f"{path}.role", f"expected master or slave, got {role!r}")
        if mode not in ("ethernet", "ip"):
            self.error(f"{path}.mode", f"expected ethernet or ip, got {mode!r}")
        if ident is None or socket is None or role not in ("master", "slave") or mode not in ("ethernet", "ip"):
            return None
        return Memif(ident, socket, role, mode)

    def addresses(self, value: object, path: str) -> tuple[IPInterface, ...] | None:
        if value is None:
            self.error(path, "required: the address/prefix length(s) of the interface")
            return None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self.error(path, f"expected an address/prefix length or a list of them, got {value!r}")
            return None
        out: list[IPInterface] = []
        for index, item in enumerate(items):
            where = path if isinstance(value, str) else f"{path}[{index}]"
            if not isinstance(item, str) or "/" not in item:
                self.error(where, f"expected address/prefix length (e.g. 198.18.1.1/24), got {item!r}")
                continue
            try:
                out.append(ip_interface(item))
            except ValueError:
                self.error(where, f"{item!r} is not an address/prefix length")
        return tuple(out) if len(out) == len(items) else None
