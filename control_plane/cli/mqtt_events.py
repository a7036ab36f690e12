"""``edgecups events --follow --source mqtt``: the live event stream from the MQTT broker.

The control plane publishes every event under ``edgecups/v1/events/...`` (control_plane/telemetry.py);
this reads them as a broker user (``edgecups-viewer`` in deploy/mosquitto/acl), without the API.
The broker keeps no history of events, so only ``--follow`` makes sense and ``--since`` does not.

Where each setting comes from, first found wins: the ``--mqtt-*`` flags, the ``EDGECUPS_MQTT_*``
environment, then the ``mqtt:`` section of the CLI configuration file, with the keys of the
control plane's own ``mqtt:`` section (host, port, username, password_file, tls: {ca, cert, key};
relative paths from the file's directory). TLS is used when the file has ``tls`` or a CA or
client certificate is given. ``--timeout`` bounds the wait for the first connection (exit 3);
after that the stream survives broker restarts (reconnecting with backoff).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import typer
import yaml

from control_plane.provisioning.feed import EventView
from edge_sites.telemetry import MqttConfig, PayloadError, decode, parse_mqtt
from edge_sites.telemetry.config import CP_KEYS
from edge_sites.telemetry.topics import event_filter

from .api_options import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, ConfigProblem, Output, Settings
from .api_output import fail

__all__ = ["ENVIRONMENT", "MqttFlags", "follow", "resolve_mqtt"]

#: Setting -> the environment variable that gives it.
ENVIRONMENT: Final[Mapping[str, str]] = {
    "host": "EDGECUPS_MQTT_HOST",
    "port": "EDGECUPS_MQTT_PORT",
    "username": "EDGECUPS_MQTT_USERNAME",
    "password_file": "EDGECUPS_MQTT_PASSWORD_FILE",
    "ca": "EDGECUPS_MQTT_CA",
    "cert": "EDGECUPS_MQTT_CERT",
    "key": "EDGECUPS_MQTT_KEY",
}
_PATHS: Final = frozenset({"password_file", "ca", "cert", "key"})
_TLS: Final = ("ca", "cert", "key")
_PANEL: Final = "MQTT (--source mqtt; flags > EDGECUPS_MQTT_* > the config file's mqtt section)"


def _option(name: str, help: str) -> Any:
    return typer.Option(name, help=help, rich_help_panel=_PANEL, show_default=False)


# The flags, as `edgecups events` declares them.
HostFlag = Annotated[str | None, _option("--mqtt-host", "MQTT broker host (events --source mqtt).")]
PortFlag = Annotated[int | None, _option("--mqtt-port", "MQTT broker port (default 1883, 8883 with TLS).")]
UserFlag = Annotated[str | None, _option("--mqtt-username", "Broker user (e.g. edgecups-viewer).")]
PasswordFlag = Annotated[Path | None, _option("--mqtt-password-file", "File holding the broker password.")]
CaFlag = Annotated[Path | None, _option("--mqtt-ca", "CA certificate (PEM) of the broker's TLS: enables TLS.")]
CertFlag = Annotated[Path | None, _option("--mqtt-cert", "Client certificate (PEM) for the broker.")]
KeyFlag = Annotated[Path | None, _option("--mqtt-key", "The client certificate's private key (PEM).")]


@dataclass(frozen=True, slots=True)
class MqttFlags:
    """The ``--mqtt-*`` flags (None: not given)."""

    host: str | None = None
    port: int | None = None
    username: str | None = None
    password_file: Path | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


def resolve_mqtt(flags: MqttFlags, config_file: Path | None, environ: Mapping[str, str]) -> MqttConfig:
    """The broker settings from flags, environment and file; :class:`ConfigProblem` lists every problem."""
    errors: list[str] = []
    found: dict[str, tuple[Any, str]] = {}  # setting -> (value, where it came from)
    tls_in_file = False
    if config_file is not None:
        section = _file_section(config_file, errors)
        tls_in_file = section.get("tls") is not None
        for key, entry in section.items():
            values = entry.items() if key == "tls" and isinstance(entry, dict) else [(key, entry)]
            for name, item in values:
                where = f"{config_file}: mqtt.{'tls.' if key == 'tls' else ''}{name}"
                if isinstance(item, str) and name in _PATHS and not Path(item).expanduser().is_absolute():
                    item = str(config_file.parent / Path(item).expanduser())
                found[str(name)] = (item, where)
    for name, variable in ENVIRONMENT.items():
        text = environ.get(variable)
        if text:
            value: Any = text
            if name == "port":
                value = int(text) if text.isdigit() else text
            found[name] = (str(Path(text).expanduser().absolute()) if name in _PATHS else value, variable)
    for name in ENVIRONMENT:
        given = getattr(flags, name)
        if given is not None:
            flag = str(Path(given).expanduser().absolute()) if name in _PATHS else given
            found[name] = (flag, f"--mqtt-{name.replace('_', '-')}")
    if "host" not in found:
        raise ConfigProblem(
            [*errors, "no MQTT broker: give --mqtt-host, EDGECUPS_MQTT_HOST or mqtt.host in the configuration file"]
        )
    mapping: dict[str, Any] = {k: v for k, (v, _) in found.items() if k not in _TLS}
    if tls_in_file or any(k in found for k in _TLS):
        mapping["tls"] = {k: found[k][0] for k in _TLS if k in found}
    config, problems = parse_mqtt(mapping, path="mqtt", keys=CP_KEYS)
    for problem in problems:
        key = problem.split(":", 1)[0].removeprefix("mqtt.").removeprefix("tls.")
        where = found[key][1] if key in found else problem.split(":", 1)[0]
        errors.append(f"{where}:{problem.split(':', 1)[1]}")
    if errors or config is None:
        raise ConfigProblem(errors)
    return config


def _file_section(path: Path, errors: list[str]) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        errors.append(f"{path}: cannot read: {exc}")
        return {}
    section = document.get("mqtt") if isinstance(document, dict) else None
    if section is None:
        return {}
    if not isinstance(section, dict):
        errors.append(f"{path}: mqtt: expected a mapping (host, port, username, password_file, tls)")
        return {}
    return section


def _event(data: bytes) -> EventView:
    payload = decode("event", data)
    return EventView(
        id=payload["id"],
        at=datetime.fromisoformat(payload["at"]),
        kind=payload["kind"],
        supi=payload["supi"],
        upf=payload["upf"],
        session_id=payload["session_id"],
        detail=payload["detail"],
    )


def follow(
    settings: Settings,
    flags: MqttFlags,
    *,
    kinds: list[str],
    count: int | None,
    line: Callable[[EventView, Output], str],
) -> NoReturn:
    """Print the events the broker delivers until Ctrl-C (or ``count`` of them); exits like the API commands."""
    try:
        config = resolve_mqtt(flags, settings.config_file, os.environ)
        filters = sorted({event_filter(k) for k in kinds}) or [event_filter()]
    except (ConfigProblem, ValueError) as problem:
        lines = problem.errors if isinstance(problem, ConfigProblem) else [str(problem)]
        fail(settings, EXIT_USAGE, [f"error: {text}" for text in lines], {"code": "USAGE", "message": lines[0]})

    async def main() -> int:
        done = asyncio.Event()
        printed = 0

        def on_message(topic: str, data: bytes) -> None:
            nonlocal printed
            if done.is_set():
                return
            try:
                event = _event(data)
            except PayloadError as exc:
                typer.echo(f"warning: {topic}: not an event: {exc}", err=True)
                return
            typer.echo(line(event, settings.output))
            sys.stdout.flush()
            printed += 1
            if count is not None and printed >= count:
                done.set()

        def on_connect() -> None:
            typer.echo(f"following {', '.join(filters)} on {config.host}:{config.port}", err=True)

        from edge_sites.telemetry.publisher import Publisher  # aiomqtt: only for this command

        subscriber = Publisher(
            config, client_id="edgecups-cli", subscriptions=filters, on_message=on_message, on_connect=on_connect
        )
        subscriber.start()
        try:
            deadline = asyncio.get_running_loop().time() + settings.timeout
            while not await subscriber.wait_connected(0.2):
                where = f"MQTT broker {config.host}:{config.port}"
                if subscriber.refused:  # bad credentials: waiting changes nothing
                    typer.echo(f"error: {where} refused the connection: {subscriber.last_error}", err=True)
                    return EXIT_REFUSED
                if asyncio.get_running_loop().time() >= deadline:
                    typer.echo(f"error: {where} unreachable: {subscriber.last_error or 'no answer'}", err=True)
                    return EXIT_UNREACHABLE
            await done.wait()
            return 0
        finally:
            await subscriber.stop(timeout=1.0)

    try:
        status = asyncio.run(main())
    except KeyboardInterrupt:  # Ctrl-C: the normal way out of --follow
        status = 0
    raise typer.Exit(status)
