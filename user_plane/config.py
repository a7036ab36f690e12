"""The UPF agent's configuration: a YAML file, validated completely up front.

Theory of operation:

* :func:`load_config` reads a YAML file and :func:`parse_config` turns its mapping
  into a frozen :class:`UpfConfig`. They check **everything** and raise one
  :class:`ConfigError` that lists every problem, each as ``path: message`` with the
  path of the offending value (``n6.internet.ue_pool: '10.0.0.0/33' is not an IP
  network``), so an operator fixes a file in one pass.
* Unknown keys are errors (a misspelt optional key must not silently fall back to
  its default), and so are duplicate keys, which YAML itself would resolve by
  keeping the last one.
* Every accepted key is declared once, in :data:`OPTIONS`: the parser derives the
  keys each mapping may hold from that table, and ``edgecups upf check-config
  --help`` prints it, so the documentation cannot drift from what is accepted.
* ``allowed_cps`` is an explicit allow list and may not be empty: TS 29.244 §6.2.6
  leaves it to the UP function to accept or reject an Association Setup Request,
  and the agent rejects a CP that no entry matches (cause 64, Request rejected).
  A UPF that rejects every CP serves nobody, so an empty list is a mistake; to
  accept any CP, say so with ``0.0.0.0/0`` and ``::/0``.
* ``driver: vpp`` needs a ``vpp:`` section (VPP's API socket and schema, the VPP interfaces
  of N3 and N6, a VRF per Network Instance), checked by :mod:`user_plane.vpp.config`.
  :func:`unavailable` names what a valid configuration asks of this build that it cannot do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar, cast, get_args

import yaml

from edge_sites.schema import describe, did_you_mean
from edge_sites.telemetry.config import MQTT_OPTIONS, MqttConfig, parse_mqtt
from pfcp import PFCP_PORT, NodeID, UPFeatures, UPFunctionFeatures, flag_names
from pfcp.transaction import RetransmitPolicy

from .vpp.config import VPP_OPTIONS, VppConfig, parse_vpp

__all__ = [
    "AVAILABLE_DRIVERS",
    "OPTIONS",
    "Capacity",
    "ConfigError",
    "CpPeer",
    "Driver",
    "IPAddress",
    "IPNetwork",
    "LogLevel",
    "MetricsConfig",
    "N4Config",
    "N6Config",
    "NodeIdValue",
    "Option",
    "Timers",
    "UpfConfig",
    "load_config",
    "parse_config",
    "unavailable",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
#: What a Node ID holds (TS 29.244 §8.2.38): an IPv4 address, an IPv6 address or an FQDN.
NodeIdValue = IPv4Address | IPv6Address | str
#: One ``allowed_cps`` entry: a CP's Node ID FQDN, or an address or network its requests come from.
CpPeer = IPv4Address | IPv6Address | IPv4Network | IPv6Network | str
Driver = Literal["software", "vpp"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]

#: Dataplane drivers this build really has.
AVAILABLE_DRIVERS: Final[frozenset[Driver]] = frozenset({"software", "vpp"})

_DEFAULT_FEATURES: Final = UPFeatures.FTUP


class ConfigError(ValueError):
    """A configuration that cannot be used; ``errors`` lists every problem, one ``path: message`` each."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True, slots=True)
class Option:
    """One documented configuration key; ``<...>`` in ``path`` stands for a name the operator chooses."""

    path: str
    help: str
    required: bool = False


#: Every key the configuration file accepts, in file order. The parser accepts exactly these.
OPTIONS: Final[tuple[Option, ...]] = (
    Option(
        "node_id",
        "Node ID of this UP function (TS 29.244 §8.2.38): an IPv4 address, an IPv6 address or an FQDN.",
        required=True,
    ),
    Option(
        "n4.address",
        "Local address PFCP (N4) listens on; a specific address, as it is advertised in F-SEIDs (§8.2.37).",
        required=True,
    ),
    Option("n4.port", f"UDP port for PFCP. Default {PFCP_PORT}."),
    Option(
        "n3",
        "GTP-U (N3) address or list of addresses (IPv4/IPv6) the UP puts in the F-TEIDs it allocates.",
        required=True,
    ),
    Option(
        "n6.<network-instance>.interface",
        "Network device (N6) of this Network Instance (DNN), one per instance: the software driver creates a TUN "
        "device with this name and routes the instance's UE pools into it (at most 15 characters, not an existing "
        "device).",
        required=True,
    ),
    Option(
        "n6.<network-instance>.ue_pool",
        "UE address pool(s) routed to this instance: an IP network or a list of them (one IPv4, one IPv6 "
        "for dual stack); pools of different instances must not overlap.",
        required=True,
    ),
    Option("n6.<network-instance>.gateway", "Next hop in the data network for uplink traffic. Default: none."),
    Option(
        "allowed_cps",
        "Control-plane peers allowed to associate: Node ID FQDNs, or addresses/networks requests come from. "
        "Required and not empty; others are rejected with cause 64. Use 0.0.0.0/0 and ::/0 to allow any.",
        required=True,
    ),
    Option(
        "features",
        "UP Function Features (§8.2.25) to enable, by name (FTUP, UEIP, ...). Default: [FTUP].",
    ),
    Option("driver", "Dataplane driver: software or vpp (needs a vpp section). Default: software."),
    Option("log_level", "debug, info, warning, error or critical. Default: info."),
    Option(
        "capacity.max_sessions",
        "Most PFCP sessions held at once; more get cause 75, No resources available (Table 8.2.1-1). Default: 100000.",
    ),
    Option("timers.t1", "Seconds between PFCP request retransmissions (T1). Default: 3."),
    Option("timers.n1", "Retransmissions before a request times out (N1). Default: 3."),
    Option(
        "timers.heartbeat_interval",
        "Seconds between Heartbeat Requests to each associated CP; null sends none. Default: 30.",
    ),
    Option(
        "timers.cp_lost_grace",
        "Seconds a CP whose heartbeats went unanswered keeps its sessions forwarding; if it associates again "
        "with the same Recovery Time Stamp within that time, they are kept, else purged. Default: 300.",
    ),
    # Site telemetry over MQTT (edge_sites/telemetry): status, metrics and usage; no section, no MQTT.
    *(Option(f"mqtt.{path}", text) for path, text in MQTT_OPTIONS),
    Option(
        "metrics.address",
        "Address /metrics (Prometheus) listens on over HTTP; 0.0.0.0 or :: for every address. "
        "Required in a metrics section; no section, no metrics endpoint.",
    ),
    Option("metrics.port", "TCP port of /metrics (0: any free port). Default: 9090."),
    # FD.io VPP (driver: vpp): user_plane/vpp/config.py.
    *(Option(f"vpp.{path}", text) for path, text in VPP_OPTIONS),
)


@dataclass(frozen=True, slots=True)
class N4Config:
    """Where PFCP (N4) listens."""

    address: IPAddress
    port: int = PFCP_PORT


@dataclass(frozen=True, slots=True)
class N6Config:
    """One Network Instance's N6 side: its device, its UE pools, its next hop."""

    interface: str
    ue_pool: tuple[IPNetwork, ...]
    gateway: IPAddress | None = None


@dataclass(frozen=True, slots=True)
class Capacity:
    """Limits beyond which requests are refused rather than served badly."""

    max_sessions: int = 100_000


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Where the Prometheus endpoint (``/metrics``, user_plane/metrics.py) listens."""

    address: IPAddress
    port: int = 9090


@dataclass(frozen=True, slots=True)
class Timers:
    """PFCP timers (TS 29.244 §6.4: T1 and N1 are per node; heartbeats §6.2.2)."""

    t1: float = 3.0
    n1: int = 3
    heartbeat_interval: float | None = 30.0
    #: Seconds the sessions of an unreachable CP keep forwarding before they are purged.
    cp_lost_grace: float = 300.0

    @property
    def retransmit(self) -> RetransmitPolicy:
        """T1 and N1 as the PFCP endpoint takes them."""
        return RetransmitPolicy(t1=self.t1, n1=self.n1)


@dataclass(frozen=True, slots=True)
class UpfConfig:
    """The UPF agent's whole configuration. Build it with :func:`parse_config`, which validates it."""

    node_id: NodeIdValue
    n4: N4Config
    n3: tuple[IPAddress, ...]
    n6: Mapping[str, N6Config]
    allowed_cps: tuple[CpPeer, ...]
    features: UPFeatures = _DEFAULT_FEATURES
    driver: Driver = "software"
    log_level: LogLevel = "info"
    capacity: Capacity = field(default_factory=Capacity)
    timers: Timers = field(default_factory=Timers)
    #: Where status, metrics and usage go over MQTT; None: no MQTT telemetry.
    mqtt: MqttConfig | None = None
    #: Where /metrics listens; None: no metrics endpoint.
    metrics: MetricsConfig | None = None
    #: The VPP node (driver vpp); None without a vpp section.
    vpp: VppConfig | None = None

    @property
    def node_id_ie(self) -> NodeID:
        """The Node ID IE this UP function sends."""
        return NodeID(self.node_id)

    @property
    def up_function_features(self) -> UPFunctionFeatures:
        """The UP Function Features IE for the configured features."""
        return UPFunctionFeatures(self.features)

    def cp_allowed(self, node_id: NodeIdValue, source: IPAddress) -> bool:
        """Whether a CP may associate, by its Node ID and the source address of its request.

        An FQDN entry matches the Node ID (case-insensitively, trailing dot
        ignored); it trusts what the peer says it is. An address or network
        entry matches the source address, which the peer cannot simply choose.
        """
        if isinstance(source, IPv6Address) and source.ipv4_mapped is not None:
            source = source.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        name = _fqdn_key(node_id) if isinstance(node_id, str) else None
        for peer in self.allowed_cps:
            if isinstance(peer, str):
                if name is not None and _fqdn_key(peer) == name:
                    return True
            elif isinstance(peer, IPv4Network | IPv6Network):
                if source.version == peer.version and source in peer:
                    return True
            elif peer == source:
                return True
        return False

    def to_mapping(self) -> dict[str, Any]:
        """The configuration as plain data (strings, numbers, lists, mappings) in the file's own schema.

        ``parse_config(config.to_mapping()) == config``.
        """
        mapping = {
            "node_id": str(self.node_id),
            "n4": {"address": str(self.n4.address), "port": self.n4.port},
            "n3": [str(a) for a in self.n3],
            "n6": {
                name: {
                    "interface": n6.interface,
                    "ue_pool": [str(p) for p in n6.ue_pool],
                    "gateway": None if n6.gateway is None else str(n6.gateway),
                }
                for name, n6 in self.n6.items()
            },
            "allowed_cps": [str(p) for p in self.allowed_cps],
            "features": list(flag_names(self.features)),
            "driver": self.driver,
            "log_level": self.log_level,
            "capacity": {"max_sessions": self.capacity.max_sessions},
            "timers": {
                "t1": self.timers.t1,
                "n1": self.timers.n1,
                "heartbeat_interval": self.timers.heartbeat_interval,
                "cp_lost_grace": self.timers.cp_lost_grace,
            },
        }
        if self.mqtt is not None:
            mapping["mqtt"] = self.mqtt.to_mapping()
        if self.metrics is not None:
            mapping["metrics"] = {"address": str(self.metrics.address), "port": self.metrics.port}
        if self.vpp is not None:
            mapping["vpp"] = self.vpp.to_mapping()
        return mapping


def unavailable(config: UpfConfig) -> tuple[str, ...]:
    """What a valid configuration asks for that this build cannot do, as ``path: message`` lines."""
    problems = []
    if config.driver not in AVAILABLE_DRIVERS:
        available = ", ".join(sorted(AVAILABLE_DRIVERS))
        problems.append(f"driver: {config.driver!r} is not available in this build (available: {available})")
    if config.driver == "vpp" and config.vpp is None:
        problems.append("vpp: required with driver: vpp (VPP's API socket, its N3/N6 interfaces, a VRF per instance)")
    return tuple(problems)


def load_config(path: str | os.PathLike[str]) -> UpfConfig:
    """Read and validate a YAML configuration file.

    Raises ConfigError listing every problem (a YAML syntax error is reported
    alone, with its line and column), and OSError when the file cannot be read.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        document = yaml.load(data, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError([f"{where}{problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not YAML: {exc}"]) from None
    if document is None:
        raise ConfigError(["the file is empty; expected a mapping of options"])
    return parse_config(document, base_dir=Path(path).resolve().parent)


def parse_config(mapping: object, *, base_dir: Path | None = None) -> UpfConfig:
    """Validate plain data (as loaded from YAML or JSON) into a :class:`UpfConfig`.

    ``base_dir``: where relative file paths (``mqtt.password_file``, ``mqtt.tls.*``) start.
    Raises ConfigError listing every problem.
    """
    p = _Parser(base_dir)
    config = p.config(mapping)
    if p.errors or config is None:
        raise ConfigError(p.errors or ["expected a mapping of options"])
    return config


# --- YAML -------------------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    # Refuses duplicate keys, which PyYAML would resolve silently by keeping the last.
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *anchor" keys may be overridden: not duplicates
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                f"in the mapping starting at line {node.start_mark.line + 1}",
                node.start_mark,
                f"duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --- validation -------------------------------------------------------------------------------------------------

_T = TypeVar("_T")

_IDENTIFIER = re.compile(r"[A-Za-z0-9_-]+\Z")
# RFC 1123 §2.1 host name labels: letters, digits and inner hyphens, 1-63 octets.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_LOG_LEVELS: Final[tuple[str, ...]] = get_args(LogLevel)
_DRIVERS: Final[tuple[str, ...]] = get_args(Driver)


def _keys(prefix: str) -> tuple[str, ...]:
    # The keys a mapping at ``prefix`` may hold, from OPTIONS.
    depth = prefix.count(".") + 1 if prefix else 0
    keys: list[str] = []
    for option in OPTIONS:
        parts = option.path.split(".")
        if ".".join(parts[:depth]) == prefix and len(parts) > depth and parts[depth] not in keys:
            keys.append(parts[depth])
    return tuple(keys)


def _child(path: str, key: str) -> str:
    step = key if _IDENTIFIER.match(key) else repr(key)
    if not path:
        return step
    return f"{path}.{step}" if _IDENTIFIER.match(key) else f"{path}[{step}]"


def _fqdn_key(name: str) -> str:
    return name.rstrip(".").casefold()


class _Parser:
    # Walks the data once, collecting every problem with its path.

    def __init__(self, base_dir: Path | None = None) -> None:
        self.errors: list[str] = []
        self.base_dir = base_dir

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}" if path else message)

    # Structure.

    def section(self, value: object, path: str, schema: str) -> dict[str, object] | None:
        # A mapping at ``path`` with only the keys ``schema`` declares; missing required keys are reported.
        if not isinstance(value, Mapping):
            self.error(path, f"expected a mapping, got {describe(value)}")
            return None
        allowed = _keys(schema)
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.error(path, f"key {key!r} is not a string")
            elif key not in allowed:
                hint = did_you_mean(key, allowed)
                self.error(_child(path, key), f"unknown key{hint}; expected one of {', '.join(allowed)}")
            else:
                out[key] = item
        for key in allowed:
            if key not in out and _is_required(schema, key):
                self.error(_child(path, key), "required")
        return out

    def one_or_more(
        self, value: object, path: str, what: str, item: Callable[[object, str], _T | None]
    ) -> tuple[_T, ...] | None:
        # A single value or a non-empty list of them, without duplicates.
        if isinstance(value, str):
            parsed = item(value, path)
            return None if parsed is None else (parsed,)
        return self.items(value, path, what, item, allow_empty=False)

    def items(
        self, value: object, path: str, what: str, item: Callable[[object, str], _T | None], *, allow_empty: bool
    ) -> tuple[_T, ...] | None:
        if not isinstance(value, list):
            self.error(path, f"expected a list of {what}, got {describe(value)}")
            return None
        if not value and not allow_empty:
            self.error(path, f"expected at least one of {what}, got an empty list")
            return None
        out: list[_T] = []
        where: dict[_T, int] = {}
        ok = True
        for index, raw in enumerate(value):
            parsed = item(raw, f"{path}[{index}]")
            if parsed is None:
                ok = False
            elif parsed in where:
                self.error(f"{path}[{index}]", f"{raw!r} repeats {path}[{where[parsed]}]")
                ok = False
            else:
                where[parsed] = index
                out.append(parsed)
        return tuple(out) if ok else None

    # Scalars.

    def string(self, value: object, path: str, what: str) -> str | None:
        if not isinstance(value, str):
            # YAML reads 1:2:3:4:5:6:7:8 as a base-60 integer, for one.
            hint = " (quote it in YAML to keep it a string)" if isinstance(value, int | float) else ""
            self.error(path, f"expected {what}, got {describe(value)}{hint}")
            return None
        return value

    def integer(self, value: object, path: str, low: int, high: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expected an integer, got {describe(value)}")
            return None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.error(path, f"{value} is out of range (expected {bound})")
            return None
        return value

    def seconds(self, value: object, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(path, f"expected a number of seconds, got {describe(value)}")
            return None
        if not value > 0 or value == float("inf"):
            self.error(path, f"{value!r} is not a positive, finite number of seconds")
            return None
        return float(value)

    def address(self, value: object, path: str) -> IPAddress | None:
        # A specific unicast address: it is advertised to peers (F-SEID §8.2.37, F-TEID §8.2.3), so no wildcard.
        text = self.string(value, path, "an IP address")
        if text is None:
            return None
        try:
            addr = ip_address(text)
        except ValueError:
            self.error(path, f"{text!r} is not an IP address")
            return None
        if addr.is_unspecified or addr.is_multicast:
            kind = "unspecified" if addr.is_unspecified else "multicast"
            self.error(path, f"{text!r} is {kind}; expected a unicast address peers can reach")
            return None
        return addr

    def network(self, value: object, path: str) -> IPNetwork | None:
        text = self.string(value, path, "an IP network")
        if text is None:
            return None
        try:
            return ip_network(text)
        except ValueError:
            pass
        try:
            loose = ip_network(text, strict=False)
        except ValueError:
            self.error(path, f"{text!r} is not an IP network")
            return None
        self.error(path, f"{text!r} has host bits set (did you mean {str(loose)!r}?)")
        return None

    def fqdn(self, text: str) -> bool:
        name = text[:-1] if text.endswith(".") else text
        labels = name.split(".")
        # RFC 1123 §2.1: a name whose last label is all digits reads as a dotted-decimal address.
        return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()

    def address_or_fqdn(self, text: str, path: str, neither: str) -> NodeIdValue | None:
        try:
            return ip_address(text)
        except ValueError:
            pass
        if not self.fqdn(text):
            self.error(path, f"{text!r} is neither {neither}")
            return None
        return text

    def node_id(self, value: object, path: str) -> NodeIdValue | None:
        text = self.string(value, path, "an IP address or FQDN")
        return None if text is None else self.address_or_fqdn(text, path, "an IP address nor an FQDN")

    def cp_peer(self, value: object, path: str) -> CpPeer | None:
        text = self.string(value, path, "an FQDN, IP address or IP network")
        if text is None:
            return None
        if "/" in text:  # never in an IP address or an FQDN
            return self.network(text, path)
        return self.address_or_fqdn(text, path, "an FQDN, an IP address nor an IP network")

    def feature(self, value: object, path: str) -> UPFeatures | None:
        text = self.string(value, path, "a UP Function Feature name")
        if text is None:
            return None
        # TS 29.244 §8.2.25 spells some names with a hyphen (ATSSS-LL, MT-EDT).
        member = UPFeatures.__members__.get(text.upper().replace("-", "_"))
        if member is None:
            hint = did_you_mean(text, UPFeatures.__members__)
            self.error(path, f"{text!r} is not a UP Function Feature{hint}")
        return member

    def interface(self, value: object, path: str) -> str | None:
        text = self.string(value, path, "a network device name")
        if text is None:
            return None
        # Linux dev_valid_name(): 1-15 bytes, no '/', ':' or whitespace, not "." or "..".
        if not 0 < len(text.encode()) < 16 or text in (".", "..") or any(c in "/:" or c.isspace() for c in text):
            self.error(path, f"{text!r} is not a valid network device name (1-15 characters, no '/', ':' or spaces)")
            return None
        return text

    def choice(self, value: object, path: str, choices: tuple[str, ...]) -> str | None:
        text = self.string(value, path, f"one of {', '.join(choices)}")
        if text is None:
            return None
        if text.lower() not in choices:
            self.error(path, f"{text!r} is not one of {', '.join(choices)}{did_you_mean(text.lower(), choices)}")
            return None
        return text.lower()

    # Sections.

    def config(self, value: object) -> UpfConfig | None:
        top = self.section(value, "", "")
        if top is None:
            return None
        node_id = self.node_id(top["node_id"], "node_id") if "node_id" in top else None
        n4 = self.n4(top["n4"]) if "n4" in top else None
        n3: tuple[IPAddress, ...] | None = None
        if "n3" in top:
            n3 = self.one_or_more(top["n3"], "n3", "IP addresses", self.address)
        n6 = self.n6(top["n6"]) if "n6" in top else None
        cps: tuple[CpPeer, ...] | None = None
        if "allowed_cps" in top:
            cps = self.items(top["allowed_cps"], "allowed_cps", "CP peers", self.cp_peer, allow_empty=True)
            if cps == ():
                self.error("allowed_cps", "empty: no CP could associate (write 0.0.0.0/0 and ::/0 to allow any)")
        features = _DEFAULT_FEATURES
        if "features" in top:
            flags = self.items(top["features"], "features", "feature names", self.feature, allow_empty=True)
            features = UPFeatures(0)
            for flag in flags or ():
                features |= flag
        driver = self.choice(top["driver"], "driver", _DRIVERS) if "driver" in top else "software"
        level = self.choice(top["log_level"], "log_level", _LOG_LEVELS) if "log_level" in top else "info"
        capacity = self.capacity(top.get("capacity", {}))
        timers = self.timers(top.get("timers", {}))
        mqtt = None
        if top.get("mqtt") is not None:
            mqtt, problems = parse_mqtt(top["mqtt"], base_dir=self.base_dir)
            self.errors.extend(problems)
        metrics = self.metrics(top["metrics"]) if top.get("metrics") is not None else None
        vpp = None
        if top.get("vpp") is not None and n3 is not None and n6 is not None:
            vpp, problems = parse_vpp(top["vpp"], instances=tuple(n6), n3=n3)
            self.errors.extend(problems)
        self.cross_check(n3, n4, n6)
        if self.errors:
            return None
        assert node_id is not None and n4 is not None and n3 is not None and n6 is not None and cps
        assert driver is not None and level is not None and capacity is not None and timers is not None
        return UpfConfig(
            node_id,
            n4,
            n3,
            n6,
            cps,
            features,
            cast(Driver, driver),
            cast(LogLevel, level),
            capacity,
            timers,
            mqtt,
            metrics=metrics,
            vpp=vpp,
        )

    def n4(self, value: object) -> N4Config | None:
        n4 = self.section(value, "n4", "n4")
        if n4 is None:
            return None
        address = self.address(n4["address"], "n4.address") if "address" in n4 else None
        port = self.integer(n4.get("port", PFCP_PORT), "n4.port", 1, 65535)
        return None if address is None or port is None else N4Config(address, port)

    def n6(self, value: object) -> Mapping[str, N6Config] | None:
        if not isinstance(value, Mapping):
            self.error("n6", f"expected a mapping of Network Instance names, got {describe(value)}")
            return None
        if not value:
            self.error("n6", "expected at least one Network Instance, got an empty mapping")
            return None
        out: dict[str, N6Config] = {}
        devices: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                self.error("n6", f"Network Instance name {name!r} is not a string")
                continue
            path = _child("n6", name)
            if not _is_dnn(name):
                # TS 23.003 §9.1.1: a DNN/APN network identifier is dot-separated labels, at most 100 octets.
                self.error(path, f"{name!r} is not a valid Network Instance (DNN) name")
            n6 = self.n6_instance(item, path)
            if n6 is None:
                continue
            if n6.interface in devices:
                self.error(f"{path}.interface", f"{n6.interface!r} is already the device of {devices[n6.interface]}")
                continue
            devices[n6.interface] = path
            out[name] = n6
        return MappingProxyType(out)

    def n6_instance(self, value: object, path: str) -> N6Config | None:
        n6 = self.section(value, path, "n6.<network-instance>")
        if n6 is None:
            return None
        device = self.interface(n6["interface"], f"{path}.interface") if "interface" in n6 else None
        pools: tuple[IPNetwork, ...] | None = None
        if "ue_pool" in n6:
            pools = self.one_or_more(n6["ue_pool"], f"{path}.ue_pool", "IP networks", self.network)
        gateway = None
        if n6.get("gateway") is not None:
            gateway = self.address(n6["gateway"], f"{path}.gateway")
            if gateway is None:
                return None
            for pool in pools or ():
                if gateway.version == pool.version and gateway in pool:
                    self.error(f"{path}.gateway", f"{str(gateway)!r} lies inside the UE pool {pool}")
                    return None
        if device is None or pools is None:
            return None
        return N6Config(device, pools, gateway)

    def metrics(self, value: object) -> MetricsConfig | None:
        section = self.section(value, "metrics", "metrics")
        if section is None:
            return None
        if "address" not in section:
            self.error("metrics.address", "required (0.0.0.0 or :: to listen on every address)")
            return None
        text = self.string(section["address"], "metrics.address", "an IP address")
        port = self.integer(section.get("port", 9090), "metrics.port", 0, 65535)
        if text is None or port is None:
            return None
        try:  # unlike N3/N4 addresses a wildcard is fine here: nothing advertises it
            return MetricsConfig(ip_address(text), port)
        except ValueError:
            self.error("metrics.address", f"{text!r} is not an IP address")
            return None

    def capacity(self, value: object) -> Capacity | None:
        capacity = self.section(value, "capacity", "capacity")
        if capacity is None:
            return None
        default = Capacity()
        sessions = self.integer(capacity.get("max_sessions", default.max_sessions), "capacity.max_sessions", 1)
        return None if sessions is None else Capacity(sessions)

    def timers(self, value: object) -> Timers | None:
        timers = self.section(value, "timers", "timers")
        if timers is None:
            return None
        default = Timers()
        t1 = self.seconds(timers.get("t1", default.t1), "timers.t1")
        n1 = self.integer(timers.get("n1", default.n1), "timers.n1", 0)
        heartbeat: float | None = None
        raw = timers.get("heartbeat_interval", default.heartbeat_interval)
        if raw is not None:
            heartbeat = self.seconds(raw, "timers.heartbeat_interval")
            if heartbeat is None:
                return None
        grace = self.seconds(timers.get("cp_lost_grace", default.cp_lost_grace), "timers.cp_lost_grace")
        if t1 is None or n1 is None or grace is None:
            return None
        return Timers(t1, n1, heartbeat, grace)

    def cross_check(
        self, n3: tuple[IPAddress, ...] | None, n4: N4Config | None, n6: Mapping[str, N6Config] | None
    ) -> None:
        # UE pools must not overlap each other (downlink packets would have two N6 homes), nor hold the
        # UPF's own addresses (their traffic would be routed into a UE's tunnel).
        pools: list[tuple[str, IPNetwork]] = []
        for name, instance in (n6 or {}).items():
            for index, pool in enumerate(instance.ue_pool):
                where = _child(_child("n6", name), "ue_pool")
                if len(instance.ue_pool) > 1:
                    where = f"{where}[{index}]"
                for other_where, other in pools:
                    if pool.version == other.version and pool.overlaps(other):
                        self.error(where, f"{pool} overlaps {other_where} {other}")
                pools.append((where, pool))
        own: list[tuple[str, IPAddress]] = [(f"n3[{i}]", a) for i, a in enumerate(n3 or ())]
        if n4 is not None:
            own.append(("n4.address", n4.address))
        for where, addr in own:
            for pool_where, pool in pools:
                if addr.version == pool.version and addr in pool:
                    self.error(where, f"{str(addr)!r} lies inside the UE pool {pool_where} {pool}")


def _is_required(schema: str, key: str) -> bool:
    path = f"{schema}.{key}" if schema else key
    return any(o.required and (o.path == path or o.path.startswith(path + ".")) for o in OPTIONS)


def _is_dnn(name: str) -> bool:
    return 0 < len(name.encode()) <= 100 and all(_LABEL.match(label) for label in name.split("."))
