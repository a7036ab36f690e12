"""The control plane's configuration: a small YAML file, checked completely up front.

Everything about sites, UPFs, pools and policies lives in the database (operators
change it at run time); the file says only where this process listens and where its
database is. As for the UPF agent's file, unknown keys are errors and every problem
is reported at once as ``path: message``.

Example::

    node_id: smf1.core.example.org     # Node ID in PFCP (TS 29.244 §8.2.38); default: n4.address
    n4: {address: 198.18.0.1, port: 8805}
    database: {url: "sqlite:///edgecups.db"}   # relative SQLite paths: from this file's directory
    api:                               # absent: no northbound API
      address: 0.0.0.0
      port: 50051
      tls: {cert: server.pem, key: server.key, client_ca: ca.pem}   # client_ca: mutual TLS
      tokens_file: tokens.yaml         # [{name, roles: [operator|session|viewer], token_sha256}]
      # plaintext: true                # instead of tls: loopback or unix:PATH only
      # workers: 2                     # gRPC in N front-end processes (0..32; 0: in this process)
    timers: {t1: 3, n1: 3, heartbeat_interval: 10, reassociate_interval: 5}
    log_level: info
    metrics: {address: 0.0.0.0, port: 9090}   # absent: no /metrics (Prometheus; port 0: any free one)
    mqtt:                              # absent: no MQTT (events published, UPF status subscribed)
      host: mqtt.example.org
      username: edgecups-cp            # deploy/mosquitto/acl: may publish events and read everything
      password_file: mqtt.password
      tls: {ca: mqtt-ca.pem}           # port 8883 by default with tls
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any, Final

import yaml

from control_plane.api.security import API_KEYS, ApiSecurity, SecurityConfigError, parse_api_security
from edge_sites.telemetry.config import CP_KEYS, MqttConfig, parse_mqtt
from pfcp import PFCP_PORT

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ConfigError",
    "CpConfig",
    "MetricsConfig",
    "Timers",
    "database_url_from_file",
    "load_config",
    "parse_config",
]

#: Keys each mapping accepts (path -> keys); anything else is an error.
_KEYS: Final[dict[str, frozenset[str]]] = {
    "": frozenset({"node_id", "n4", "database", "api", "timers", "log_level", "mqtt", "metrics"}),
    "n4": frozenset({"address", "port"}),
    "database": frozenset({"url"}),
    "metrics": frozenset({"address", "port"}),
    "api": API_KEYS,
    "timers": frozenset({"t1", "n1", "heartbeat_interval", "reassociate_interval"}),
}
#: The embedded database, next to the configuration file.
DEFAULT_DATABASE_URL: Final = "sqlite:///edgecups.db"
_LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """A configuration that cannot be used; ``errors`` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Timers:
    """PFCP timers towards the UPFs (TS 29.244 §6.4: T1 and N1), in seconds."""

    t1: float = 3.0
    n1: int = 3
    #: Between heartbeats to each associated UPF (§6.2.2): how fast a dead UPF is noticed.
    heartbeat_interval: float = 10.0
    #: Between attempts to associate with a UPF that is down or refused.
    reassociate_interval: float = 5.0


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Where the Prometheus endpoint (``/metrics``, control_plane/metrics.py) listens."""

    address: IPv4Address | IPv6Address
    port: int = 9090


@dataclass(frozen=True, slots=True)
class CpConfig:
    """Where the control plane listens (N4, API) and where its state lives."""

    n4_address: IPv4Address | IPv6Address
    node_id: str
    n4_port: int = PFCP_PORT
    database_url: str = DEFAULT_DATABASE_URL
    api_address: str = "127.0.0.1"
    api_port: int = 50051
    #: TLS and tokens of the API; None: the config has no ``api`` section and no API is served.
    api_security: ApiSecurity | None = None
    #: Front-end processes terminating the API's gRPC (control_plane/api/frontend); 0: the CP's own server.
    api_workers: int = 0
    timers: Timers = field(default_factory=Timers)
    log_level: str = "info"
    #: The MQTT broker events go to and UPF status comes from (control_plane/telemetry.py); None: no MQTT.
    mqtt: MqttConfig | None = None
    #: Where /metrics listens; None: no metrics endpoint.
    metrics: MetricsConfig | None = None


def load_config(path: str | os.PathLike[str]) -> CpConfig:
    """Read and check a YAML file; raises :class:`ConfigError` (also for an unreadable file)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        mapping = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    return parse_config(mapping, base=Path(path).resolve().parent)


def database_url_from_file(path: str | os.PathLike[str]) -> str:
    """The database URL the control plane would use with this file, reading only ``database.url``.

    For ``edgecups db``: a file still being written (no ``n4.address`` yet) already names its
    database, and the default and relative SQLite paths resolve as :func:`parse_config` resolves
    them (next to the file). Raises :class:`ConfigError` with one problem.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    if document is not None and not isinstance(document, dict):
        raise ConfigError([f"{path}: expected a mapping at the top level"])
    database = (document or {}).get("database")
    if database is not None and not isinstance(database, dict):
        raise ConfigError([f"{path}: database: expected a mapping with a url key"])
    url = (database or {}).get("url", DEFAULT_DATABASE_URL)
    if not isinstance(url, str) or not url:
        raise ConfigError([f"{path}: database.url: expected a database URL string"])
    return _anchor_sqlite(url, Path(path).resolve().parent)


def parse_config(mapping: object, *, base: Path | None = None) -> CpConfig:
    """Check a decoded YAML mapping; ``base`` anchors relative SQLite paths."""
    errors: list[str] = []
    root = _mapping(mapping, "", errors)
    sections = {name: _mapping(root.get(name, {}), name, errors) for name in ("n4", "database", "api", "timers")}
    address = sections["n4"].get("address")
    n4_address: IPv4Address | IPv6Address | None = None
    if address is None:
        errors.append("n4.address: required (the address PFCP listens on and puts in the CP F-SEID)")
    else:
        try:
            n4_address = ip_address(str(address))
        except ValueError:
            errors.append(f"n4.address: {address!r} is not an IP address")
        else:
            if n4_address.is_unspecified:
                errors.append("n4.address: must be a specific address: it goes into every CP F-SEID (§8.2.37)")
    n4_port = _port(sections["n4"].get("port", PFCP_PORT), "n4.port", errors)
    api_port = _port(sections["api"].get("port", 50051), "api.port", errors, allow_zero=True)
    api_address = str(sections["api"].get("address", "127.0.0.1"))
    api_workers = _workers(sections["api"].get("workers", 0), api_address, errors)
    api_security = None
    if isinstance(root.get("api"), dict):
        try:
            api_security = parse_api_security(sections["api"], base_dir=base or Path.cwd())
        except SecurityConfigError as exc:
            errors.extend(exc.errors)
    url = str(sections["database"].get("url", DEFAULT_DATABASE_URL))
    if not url.startswith(("sqlite:", "postgresql")):
        errors.append(f"database.url: {url!r}: use sqlite:///FILE or postgresql+psycopg://...")
    url = _anchor_sqlite(url, base)
    timers = _timers(sections["timers"], errors)
    log_level = str(root.get("log_level", "info"))
    if log_level not in _LOG_LEVELS:
        errors.append(f"log_level: {log_level!r} is not one of {', '.join(_LOG_LEVELS)}")
    mqtt = None
    if root.get("mqtt") is not None:
        mqtt, problems = parse_mqtt(root["mqtt"], base_dir=base or Path.cwd(), keys=CP_KEYS)
        errors.extend(problems)
    metrics = _metrics(root.get("metrics"), errors)
    node_id = root.get("node_id")
    if node_id is not None and (not isinstance(node_id, str) or not node_id):
        errors.append(f"node_id: {node_id!r} must be an IP address or an FQDN")
    if errors or n4_address is None:
        raise ConfigError(errors)
    return CpConfig(
        n4_address=n4_address,
        node_id=str(node_id) if node_id else str(n4_address),
        n4_port=n4_port,
        database_url=url,
        api_address=api_address,
        api_port=api_port,
        api_security=api_security,
        api_workers=api_workers,
        timers=timers,
        log_level=log_level,
        mqtt=mqtt,
        metrics=metrics,
    )


def _mapping(value: object, path: str, errors: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"{path or '(top level)'}: must be a mapping, not {type(value).__name__}")
        return {}
    allowed = _KEYS[path]
    for key in value:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            errors.append(f"{where}: unknown key (allowed: {', '.join(sorted(allowed))})")
    return {str(k): v for k, v in value.items() if k in allowed}


def _port(value: object, path: str, errors: list[str], *, allow_zero: bool = False) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and (0 if allow_zero else 1) <= value <= 65535:
        return value
    errors.append(f"{path}: {value!r} is not a port number")
    return 0


#: The most API front-end workers (each a process with its own gRPC server and event loop).
MAX_API_WORKERS: Final = 32


def _workers(value: object, address: str, errors: list[str]) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_API_WORKERS:
        errors.append(
            f"api.workers: {value!r} must be a whole number of front-end processes, 0 to {MAX_API_WORKERS} "
            "(0: the control plane serves gRPC itself)"
        )
        return 0
    if value > 1 and address.startswith("unix:"):
        # Workers share a TCP port through SO_REUSEPORT; a unix socket's path has one listener.
        errors.append(f"api.workers: {value} workers cannot share the unix socket {address}: use 1, or a TCP address")
        return 0
    return value


def _metrics(value: object, errors: list[str]) -> MetricsConfig | None:
    if value is None:
        return None
    section = _mapping(value, "metrics", errors)
    if not isinstance(value, dict):  # reported by _mapping
        return None
    if "address" not in section:
        errors.append("metrics.address: required (0.0.0.0 or :: to listen on every address)")
        return None
    port = _port(section.get("port", 9090), "metrics.port", errors, allow_zero=True)
    try:  # a wildcard is fine here: nothing advertises this address
        return MetricsConfig(ip_address(str(section["address"])), port)
    except ValueError:
        errors.append(f"metrics.address: {section['address']!r} is not an IP address")
        return None


def _timers(section: dict[str, Any], errors: list[str]) -> Timers:
    defaults = Timers()
    values: dict[str, Any] = {}
    for key in ("t1", "heartbeat_interval", "reassociate_interval"):
        value = section.get(key, getattr(defaults, key))
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            errors.append(f"timers.{key}: {value!r} must be a positive number of seconds")
            value = getattr(defaults, key)
        values[key] = float(value)
    n1 = section.get("n1", defaults.n1)
    if not isinstance(n1, int) or isinstance(n1, bool) or not 0 <= n1 <= 10:
        errors.append(f"timers.n1: {n1!r} must be a whole number of retransmissions, 0 to 10")
        n1 = defaults.n1
    return Timers(n1=n1, **values)


def _anchor_sqlite(url: str, base: Path | None) -> str:
    # sqlite:///relative.db is relative to the working directory for SQLAlchemy; an
    # operator writing a config file means "next to this file".
    prefix = "sqlite:///"
    if base is None or not url.startswith(prefix) or url == "sqlite://" or url.startswith("sqlite:////"):
        return url
    path = url[len(prefix) :]
    if not path or path == ":memory:":
        return url
    return prefix + str(base / path)
