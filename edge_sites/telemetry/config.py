"""The ``mqtt:`` section shared by the UPF agent's and the control plane's configuration files.

::

    mqtt:
      host: mqtt.example.org          # required
      port: 8883                      # default 1883, or 8883 with tls
      username: edge-1                # with password_file: the broker's password authentication
      password_file: edge-1.password  # one line, the password; read at each connection (rotation)
      tls: {ca: ca.pem, cert: client.pem, key: client.key}   # tls: {} trusts the system's roots
      site: edge-1                    # UPF agent only, required there: its topic branch
      interval: 10                    # UPF agent only: seconds between metrics messages
      buffer: 10000                   # messages that matter (usage, events) held while the broker is away

Relative paths are from the configuration file's directory. Files are not read here (a
configuration is often checked away from where it runs): a missing one is reported, with the
broker's address, each time the connection is tried.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .topics import level

__all__ = ["AGENT_KEYS", "CP_KEYS", "MQTT_OPTIONS", "MqttConfig", "TlsFiles", "parse_mqtt"]

DEFAULT_PORT: Final = 1883
DEFAULT_TLS_PORT: Final = 8883
DEFAULT_INTERVAL: Final = 10.0
DEFAULT_BUFFER: Final = 10_000

#: Every key of the section, with its meaning (the UPF agent's ``check-config --help`` prints these).
MQTT_OPTIONS: Final[tuple[tuple[str, str], ...]] = (
    ("host", "MQTT broker host name or address; required in an mqtt section (no section: no MQTT telemetry)."),
    ("port", f"MQTT broker port. Default {DEFAULT_PORT}, or {DEFAULT_TLS_PORT} with tls."),
    ("username", "User name for the broker's password authentication (each site has its own, see the ACL)."),
    ("password_file", "File holding the password (one line), read at each connection. Default: no password."),
    ("tls.ca", "CA certificate (PEM) the broker's must chain to. Default: the system's roots."),
    ("tls.cert", "Client certificate (PEM), for brokers that require one."),
    ("tls.key", "The client certificate's private key (PEM)."),
    ("site", "Site name of this UPF: its topic branch edgecups/v1/sites/<site>/; required in an mqtt section."),
    ("interval", f"Seconds between metrics messages. Default {DEFAULT_INTERVAL:g}."),
    ("buffer", f"Usage messages held (oldest dropped first) while the broker is away. Default {DEFAULT_BUFFER}."),
)
#: The keys each side accepts: the control plane has no site and publishes no metrics.
AGENT_KEYS: Final = frozenset(path.split(".")[0] for path, _ in MQTT_OPTIONS)
CP_KEYS: Final = AGENT_KEYS - {"site", "interval"}
_TLS_KEYS: Final = ("ca", "cert", "key")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """TLS towards the broker: a CA to trust (None: the system's roots) and a client certificate."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def context(self) -> ssl.SSLContext:
        """A client context verifying the broker's certificate and name; OSError/SSLError for bad files."""
        context = ssl.create_default_context(cafile=None if self.ca is None else str(self.ca))
        if self.cert is not None:
            context.load_cert_chain(str(self.cert), None if self.key is None else str(self.key))
        return context


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Where the broker is and how to log in; ``site`` and ``interval`` are the UPF agent's."""

    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password_file: Path | None = None
    tls: TlsFiles | None = None
    site: str | None = None
    interval: float = DEFAULT_INTERVAL
    buffer: int = DEFAULT_BUFFER

    def password(self) -> str | None:
        """The password, read now (OSError when the file cannot be read)."""
        if self.password_file is None:
            return None
        return self.password_file.read_text(encoding="utf-8").strip("\r\n")

    def to_mapping(self, keys: frozenset[str] = AGENT_KEYS) -> dict[str, Any]:
        """The section as plain data (``parse_mqtt(to_mapping())`` gives it back)."""
        out: dict[str, Any] = {"host": self.host, "port": self.port}
        if self.username is not None:
            out["username"] = self.username
        if self.password_file is not None:
            out["password_file"] = str(self.password_file)
        if self.tls is not None:
            out["tls"] = {k: str(getattr(self.tls, k)) for k in _TLS_KEYS if getattr(self.tls, k) is not None}
        if "site" in keys and self.site is not None:
            out["site"] = self.site
        if "interval" in keys:
            out["interval"] = self.interval
        out["buffer"] = self.buffer
        return out


def parse_mqtt(
    value: object, *, path: str = "mqtt", base_dir: Path | None = None, keys: frozenset[str] = AGENT_KEYS
) -> tuple[MqttConfig | None, list[str]]:
    """Check an ``mqtt`` section; returns the configuration (None when there are problems) and
    every problem as ``path.key: message``. ``site`` is required when ``keys`` has it."""
    errors: list[str] = []
    if not isinstance(value, Mapping):
        return None, [f"{path}: expected a mapping with at least host, got {type(value).__name__}"]
    for key in value:
        if key not in keys:
            errors.append(f"{path}.{key}: unknown key; expected one of {', '.join(sorted(keys))}")
    host = value.get("host")
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        errors.append(f"{path}.host: " + ("required" if host is None else f"{host!r} is not a host name or address"))
    tls = _tls(value["tls"], f"{path}.tls", base_dir, errors) if "tls" in value else None
    port = _int(value.get("port", DEFAULT_TLS_PORT if tls else DEFAULT_PORT), f"{path}.port", 1, 65535, errors)
    username = value.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        errors.append(f"{path}.username: expected a non-empty string")
    password_file = _file(value.get("password_file"), f"{path}.password_file", base_dir, errors)
    if password_file is not None and username is None:
        errors.append(f"{path}.password_file: a password needs a username")
    site = value.get("site")
    if "site" in keys:
        if site is None:
            errors.append(f"{path}.site: required (this UPF's topic branch edgecups/v1/sites/<site>/)")
        elif not isinstance(site, str):
            errors.append(f"{path}.site: expected a site name")
        else:
            try:
                level(site, "site")
            except ValueError as exc:
                errors.append(f"{path}.site: {exc}")
    interval = value.get("interval", DEFAULT_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval < float("inf"):
        errors.append(f"{path}.interval: {interval!r} is not a positive number of seconds")
    buffer = _int(value.get("buffer", DEFAULT_BUFFER), f"{path}.buffer", 1, 10_000_000, errors)
    if errors:
        return None, errors
    assert isinstance(host, str)
    return (
        MqttConfig(
            host=host,
            port=port,
            username=username,
            password_file=password_file,
            tls=tls,
            site=site if "site" in keys else None,
            interval=float(interval),
            buffer=buffer,
        ),
        [],
    )


def _int(value: object, path: str, low: int, high: int, errors: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.append(f"{path}: {value!r} is not a whole number from {low} to {high}")
        return low
    return value


def _file(value: object, path: str, base_dir: Path | None, errors: list[str]) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        errors.append(f"{path}: expected a file path")
        return None
    file = Path(value).expanduser()
    return file if base_dir is None or file.is_absolute() else base_dir / file


def _tls(value: object, path: str, base_dir: Path | None, errors: list[str]) -> TlsFiles | None:
    if value is None:  # "tls: null": the same as no tls key
        return None
    if not isinstance(value, Mapping):
        errors.append(f"{path}: expected a mapping of ca, cert and key ({{}}: TLS with the system's roots)")
        return None
    for key in value:
        if key not in _TLS_KEYS:
            errors.append(f"{path}.{key}: unknown key; expected one of {', '.join(_TLS_KEYS)}")
    files = {key: _file(value.get(key), f"{path}.{key}", base_dir, errors) for key in _TLS_KEYS}
    if files["key"] is not None and files["cert"] is None:
        errors.append(f"{path}.key: a private key needs its certificate (tls.cert)")
    return TlsFiles(**files)
