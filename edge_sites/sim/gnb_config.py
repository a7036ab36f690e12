"""The gNB simulator's values: a UE's N3 tunnel pair, its counters, and the gNB's configuration.

Pure data and validation (no I/O), shared by the engine (:mod:`edge_sites.sim.gnb`), the control
protocol (:mod:`edge_sites.sim.gnb_control`) and its callers. Every parse error is a
:class:`FieldError` naming the field, e.g. ``ues[2].uplink_teid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, ClassVar, Final

from .netns import DEFAULT_PREFIX
from .netspec import IFNAMSIZ

__all__ = ["FieldError", "GnbConfig", "UeCounters", "UeTunnel", "parse_ipv4", "parse_uint"]

#: TS 29.281 §5.1: the TEID is 32 bits; 0 is what signalling (Echo, Error Indication) carries,
#: never a tunnel's.
MAX_TEID: Final = 0xFFFF_FFFF
#: TS 38.415 §5.5.3.3: the QFI is 6 bits.
MAX_QFI: Final = 0x3F
#: sun_path of struct sockaddr_un is 108 octets including the NUL.
MAX_UNIX_PATH: Final = 107
#: Routing tables 253 (default), 254 (main) and 255 (local) belong to the kernel.
_RESERVED_TABLES: Final = frozenset({0, 253, 254, 255})
#: The main table's rule is at 32766: ours must come first.
MAX_RULE_PRIORITY: Final = 32765


class FieldError(ValueError):
    """A bad value; ``field`` is its path (``ue_ip``, ``ues[0].qfi``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_ipv4(value: object, name: str) -> IPv4Address:
    """An IPv4 address from its text (or an IPv4Address)."""
    if isinstance(value, IPv4Address):
        return value
    if not isinstance(value, str):
        raise FieldError(name, f"expected an IPv4 address as text, got {type(value).__name__}")
    try:
        return IPv4Address(value)
    except ValueError:
        raise FieldError(name, f"{value!r} is not an IPv4 address") from None


def parse_uint(value: object, name: str, low: int, high: int) -> int:
    """An integer in ``[low, high]`` (bool is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(name, f"expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise FieldError(name, f"{value} is outside {low}..{high}")
    return value


def _known(data: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for key in data:
        if key not in allowed:
            raise FieldError(f"{prefix}{key}", f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _mapping(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FieldError(name or "(top)", f"expected a mapping, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class UeTunnel:
    """One UE's PDU session as its gNB sees it: the N3 tunnel pair (TS 23.501 §5.8.2.3).

    ``uplink_teid`` / ``upf_n3``: the UPF's N3 F-TEID (what the session's CN tunnel info says);
    G-PDUs the gNB sends carry that TEID to that address. ``downlink_teid``: the gNB's own TEID
    for the UE (the session's gnb_teid); the UPF sends downlink G-PDUs with it. ``qfi`` goes in
    the UL PDU SESSION INFORMATION of every uplink G-PDU (TS 38.415 §5.5.2.2).
    """

    ue_ip: IPv4Address
    uplink_teid: int
    upf_n3: IPv4Address
    downlink_teid: int
    qfi: int

    def __post_init__(self) -> None:
        parse_uint(self.uplink_teid, "uplink_teid", 1, MAX_TEID)
        parse_uint(self.downlink_teid, "downlink_teid", 1, MAX_TEID)
        parse_uint(self.qfi, "qfi", 0, MAX_QFI)
        for name in ("ue_ip", "upf_n3"):
            if not isinstance(getattr(self, name), IPv4Address):
                raise FieldError(name, "expected an IPv4Address")

    FIELDS: ClassVar[tuple[str, ...]] = ("ue_ip", "uplink_teid", "upf_n3", "downlink_teid", "qfi")

    @classmethod
    def from_dict(cls, data: object, prefix: str = "") -> UeTunnel:
        """From ``{"ue_ip": "...", "uplink_teid": n, "upf_n3": "...", "downlink_teid": n, "qfi": n}``."""
        data = _mapping(data, prefix.rstrip("."))
        _known(data, set(cls.FIELDS), prefix)
        for name in cls.FIELDS:
            if name not in data:
                raise FieldError(prefix + name, "required")
        return cls(
            parse_ipv4(data["ue_ip"], prefix + "ue_ip"),
            parse_uint(data["uplink_teid"], prefix + "uplink_teid", 1, MAX_TEID),
            parse_ipv4(data["upf_n3"], prefix + "upf_n3"),
            parse_uint(data["downlink_teid"], prefix + "downlink_teid", 1, MAX_TEID),
            parse_uint(data["qfi"], prefix + "qfi", 0, MAX_QFI),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ue_ip": str(self.ue_ip),
            "uplink_teid": self.uplink_teid,
            "upf_n3": str(self.upf_n3),
            "downlink_teid": self.downlink_teid,
            "qfi": self.qfi,
        }


@dataclass(slots=True)
class UeCounters:
    """Per-UE counters; bytes are inner (T-PDU) octets, as a UPF's URR counts them."""

    ul_packets: int = 0
    ul_bytes: int = 0
    dl_packets: int = 0
    dl_bytes: int = 0
    #: Uplink packets the gNB could not send (N3 socket full or unreachable).
    ul_drops: int = 0
    #: Downlink G-PDUs on the UE's TEID whose inner packet was not for the UE, or not writable.
    dl_drops: int = 0
    #: End Markers received on one of the UE's TEIDs (TS 29.281 §7.3.2).
    end_markers: int = 0
    #: QFI of the last downlink G-PDU's DL PDU SESSION INFORMATION (None: it had none).
    last_dl_qfi: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GnbConfig:
    """One gNB simulator process: its N3 address, the TUN device its UEs live on, routing, UEs.

    Policy routing: a rule ``from <UE IP> lookup <route_table>`` at ``rule_priority`` per UE, and
    in that table one default route into the TUN, so sockets bound to a UE's address send
    through the gNB. The default route is harmless: it leads into this process, which only
    tunnels towards the UPF N3 addresses it was given.
    """

    name: str
    n3_address: IPv4Address
    control_socket: Path | None = None
    tun_name: str = "ues"
    tun_mtu: int = 1400
    route_table: int = 152
    rule_priority: int = 152
    netns_prefix: str = DEFAULT_PREFIX
    #: Error Indications (TS 29.281 §7.3.1) sent per second at most for unknown TEIDs.
    error_indication_rate: float = 10.0
    log_level: str = "info"
    ues: tuple[UeTunnel, ...] = field(default=())

    FIELDS: ClassVar[tuple[str, ...]] = (
        "name",
        "n3_address",
        "control_socket",
        "tun_name",
        "tun_mtu",
        "route_table",
        "rule_priority",
        "netns_prefix",
        "error_indication_rate",
        "log_level",
        "ues",
    )

    def __post_init__(self) -> None:
        if not self.name or not self.name.isprintable():
            raise FieldError("name", "must be a non-empty printable string")
        if not isinstance(self.n3_address, IPv4Address):
            raise FieldError("n3_address", "expected an IPv4Address")
        if self.control_socket is not None and len(str(self.control_socket).encode()) > MAX_UNIX_PATH:
            raise FieldError("control_socket", f"longer than {MAX_UNIX_PATH} octets (a unix socket path)")
        encoded = self.tun_name.encode()
        if not 0 < len(encoded) <= IFNAMSIZ or "/" in self.tun_name or " " in self.tun_name:
            raise FieldError("tun_name", f"bad interface name {self.tun_name!r} (1..{IFNAMSIZ} chars, no '/' or space)")
        parse_uint(self.tun_mtu, "tun_mtu", 576, 65535)
        parse_uint(self.route_table, "route_table", 1, MAX_TEID)
        if self.route_table in _RESERVED_TABLES:
            raise FieldError("route_table", f"table {self.route_table} belongs to the kernel")
        parse_uint(self.rule_priority, "rule_priority", 1, MAX_RULE_PRIORITY)
        if not self.netns_prefix.startswith(DEFAULT_PREFIX):
            raise FieldError("netns_prefix", f"must start with {DEFAULT_PREFIX!r}")
        if not self.error_indication_rate >= 0:
            raise FieldError("error_indication_rate", "must be >= 0")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise FieldError("log_level", "one of debug, info, warning, error")
        seen_ip: set[IPv4Address] = set()
        seen_teid: set[int] = set()
        for i, ue in enumerate(self.ues):
            if ue.ue_ip in seen_ip:
                raise FieldError(f"ues[{i}].ue_ip", f"{ue.ue_ip} listed twice")
            if ue.downlink_teid in seen_teid:
                raise FieldError(f"ues[{i}].downlink_teid", f"{ue.downlink_teid} listed twice")
            seen_ip.add(ue.ue_ip)
            seen_teid.add(ue.downlink_teid)

    @classmethod
    def from_dict(cls, data: object) -> GnbConfig:
        """From the YAML/JSON configuration file's mapping (keys as the field names)."""
        data = _mapping(data, "")
        _known(data, set(cls.FIELDS), "")
        for name in ("name", "n3_address"):
            if name not in data:
                raise FieldError(name, "required")
        kw: dict[str, Any] = {"name": data["name"], "n3_address": parse_ipv4(data["n3_address"], "n3_address")}
        if not isinstance(kw["name"], str):
            raise FieldError("name", "expected a string")
        for name in ("tun_name", "netns_prefix", "log_level", "control_socket"):
            if data.get(name) is not None:
                if not isinstance(data[name], str):
                    raise FieldError(name, "expected a string")
                kw[name] = Path(data[name]) if name == "control_socket" else data[name]
        for name in ("tun_mtu", "route_table", "rule_priority"):
            if name in data:
                kw[name] = parse_uint(data[name], name, 0, MAX_TEID)
        if "error_indication_rate" in data:
            rate = data["error_indication_rate"]
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise FieldError("error_indication_rate", "expected a number")
            kw["error_indication_rate"] = float(rate)
        ues = data.get("ues") or []
        if not isinstance(ues, list):
            raise FieldError("ues", "expected a list")
        kw["ues"] = tuple(UeTunnel.from_dict(ue, f"ues[{i}].") for i, ue in enumerate(ues))
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """The inverse of :meth:`from_dict` (what the configuration file holds)."""
        return {
            "name": self.name,
            "n3_address": str(self.n3_address),
            "control_socket": None if self.control_socket is None else str(self.control_socket),
            "tun_name": self.tun_name,
            "tun_mtu": self.tun_mtu,
            "route_table": self.route_table,
            "rule_priority": self.rule_priority,
            "netns_prefix": self.netns_prefix,
            "error_indication_rate": self.error_indication_rate,
            "log_level": self.log_level,
            "ues": [ue.to_dict() for ue in self.ues],
        }
