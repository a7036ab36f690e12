"""Connection options shared by every command that talks to the API, and the exit statuses they end with.

Where each setting comes from, first found wins:

1. the command line: ``--server``, ``--ca``, ``--cert``, ``--key``, ``--token`` or ``--token-file``,
   ``--server-name``, ``--insecure``/``--tls``, ``--timeout``, ``-o/--output``;
2. the environment: ``EDGECUPS_SERVER``, ``EDGECUPS_CA``, ``EDGECUPS_CERT``, ``EDGECUPS_KEY``,
   ``EDGECUPS_TOKEN`` or ``EDGECUPS_TOKEN_FILE``, ``EDGECUPS_SERVER_NAME``, ``EDGECUPS_INSECURE``
   (1/true/yes or 0/false/no), ``EDGECUPS_TIMEOUT``, ``EDGECUPS_OUTPUT``;
3. the configuration file: ``--config FILE``, else ``EDGECUPS_CONFIG``, else
   ``$XDG_CONFIG_HOME/edgecups/cli.yaml`` (``~/.config/edgecups/cli.yaml``) when it exists.
   Relative paths in it are from its own directory::

       server: cp.example.net:50051   # default 127.0.0.1:50051
       ca: ca.pem                     # trust this CA (default: the system's roots)
       cert: client.pem               # client certificate and key, for mutual TLS
       key: client.key
       token_file: ops.token          # the bearer token, in a file (or token: SECRET)
       server_name: cp.example.net    # the name the server certificate carries, if not the host
       insecure: false                # plaintext: loopback addresses and unix sockets only
       timeout: 30                    # seconds per call
       output: table                  # table, json or yaml

TLS is used unless ``insecure`` is set; a ``unix:PATH`` server is reached in plaintext unless
``--tls`` says otherwise (its file permissions guard it, as the control plane assumes).
Plaintext to any other host than loopback is refused before anything is sent.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import typer
import yaml

from control_plane.api.channel import target_host
from control_plane.api.client import ApiClient, ApiCredentials
from control_plane.api.security import is_loopback

__all__ = [
    "CONFIG_ENV",
    "CONFIG_HELP",
    "DEFAULT_SERVER",
    "ENVIRONMENT",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ConfigProblem",
    "Flags",
    "Output",
    "Settings",
    "api_command",
    "default_config_path",
    "resolve",
]

#: Exit statuses scripts can rely on (0: done).
EXIT_REFUSED: Final = 1  # the server answered with an error (gRPC status code, field and message printed)
EXIT_USAGE: Final = 2  # bad usage, configuration or manifests: nothing was sent
EXIT_UNREACHABLE: Final = 3  # no answer: nothing listening, TLS or connection failure, deadline passed

CONFIG_HELP: Final = "\n\n".join(
    [
        "How commands reach the API: each setting from a flag, else the environment, else the configuration file "
        "(--config FILE, else EDGECUPS_CONFIG, else ~/.config/edgecups/cli.yaml; relative paths from its directory).",
        "Keys of the file and their variables: server EDGECUPS_SERVER (HOST:PORT or unix:PATH, default "
        "127.0.0.1:50051); ca EDGECUPS_CA; cert EDGECUPS_CERT; key EDGECUPS_KEY (mutual TLS); token EDGECUPS_TOKEN "
        "or token_file EDGECUPS_TOKEN_FILE; server_name EDGECUPS_SERVER_NAME; insecure EDGECUPS_INSECURE "
        "(plaintext, loopback and unix sockets only; unix:PATH defaults to it); timeout EDGECUPS_TIMEOUT "
        "(seconds per call); output EDGECUPS_OUTPUT (table, json or yaml).",
        "Example: server: cp.example.net:50051 / ca: ca.pem / token_file: ops.token",
    ]
)
EXIT_CODES_HELP: Final = (
    "Exit status: 0 done (also `apply --dry-run` with changes pending); 1 the server refused "
    "(its gRPC status code, the field and the message are printed); 2 usage, configuration or "
    "manifest error (nothing sent); 3 the server could not be reached or did not answer in time."
)

DEFAULT_SERVER: Final = "127.0.0.1:50051"
DEFAULT_TIMEOUT: Final = 30.0
CONFIG_ENV: Final = "EDGECUPS_CONFIG"
#: Setting -> the environment variable that gives it.
ENVIRONMENT: Final[Mapping[str, str]] = {
    "server": "EDGECUPS_SERVER",
    "ca": "EDGECUPS_CA",
    "cert": "EDGECUPS_CERT",
    "key": "EDGECUPS_KEY",
    "token": "EDGECUPS_TOKEN",
    "token_file": "EDGECUPS_TOKEN_FILE",
    "server_name": "EDGECUPS_SERVER_NAME",
    "insecure": "EDGECUPS_INSECURE",
    "timeout": "EDGECUPS_TIMEOUT",
    "output": "EDGECUPS_OUTPUT",
}
_PATHS: Final = frozenset({"ca", "cert", "key", "token_file"})
_TLS_ONLY: Final = ("ca", "cert", "key", "server_name")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


class ConfigProblem(Exception):
    """Settings that cannot be used; ``errors`` holds one line per problem, naming where it came from."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Flags:
    """The connection options as given on the command line (None: not given)."""

    server: str | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token: str | None = None
    token_file: Path | None = None
    server_name: str | None = None
    insecure: bool | None = None
    timeout: float | None = None
    output: Output | None = None
    config: Path | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Where and how to reach the API, and how to print answers."""

    server: str
    credentials: ApiCredentials
    timeout: float
    output: Output
    #: The configuration file the settings were read from, when there is one (its ``mqtt`` section
    #: is read by ``events --source mqtt``, control_plane/cli/mqtt_events.py).
    config_file: Path | None = None

    def client(self) -> ApiClient:
        return ApiClient(self.server, timeout=self.timeout, credentials=self.credentials)


def default_config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "edgecups" / "cli.yaml"


# A layer: setting -> (value, where it came from, base directory of a relative path).
_Layer = dict[str, tuple[Any, str, Path]]


def _flag_layer(flags: Flags, errors: list[str]) -> _Layer:
    names = {"token_file": "--token-file", "server_name": "--server-name", "insecure": "--insecure/--tls"}
    layer: _Layer = {}
    for name in ENVIRONMENT:
        value = getattr(flags, name)
        if name == "timeout" and value is not None and value <= 0:
            errors.append(f"--timeout: {value} is not a number of seconds above 0")
        elif value is not None:
            layer[name] = (value, names.get(name, f"--{name}"), Path.cwd())
    return layer


def _env_layer(environ: Mapping[str, str], errors: list[str]) -> _Layer:
    layer: _Layer = {}
    for name, variable in ENVIRONMENT.items():
        text = environ.get(variable)
        if text:
            value = _parse(name, text, variable, errors)
            if value is not None:
                layer[name] = (value, variable, Path.cwd())
    return layer


def _parse(name: str, value: object, where: str, errors: list[str]) -> Any:
    """A setting's value from text (environment) or YAML; None after recording why it is wrong."""
    if name == "insecure":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        errors.append(f"{where}: {value!r} is not true or false")
    elif name == "timeout":
        try:
            seconds = float(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else 0.0
        except ValueError:
            seconds = 0.0
        if seconds > 0:
            return seconds
        errors.append(f"{where}: {value!r} is not a number of seconds above 0")
    elif name == "output":
        if isinstance(value, str) and value in Output.__members__:
            return Output(value)
        errors.append(f"{where}: {value!r} is not one of {', '.join(Output.__members__)}")
    elif isinstance(value, str) and value:
        return Path(value).expanduser() if name in _PATHS else value
    else:
        errors.append(f"{where}: expected {'a file path' if name in _PATHS else 'a string'}, not {value!r}")
    return None


def _file_layer(path: Path, explicit: bool, errors: list[str]) -> _Layer:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            errors.append(f"{path}: no such configuration file")
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"{path}: cannot read: {exc}")
        return {}
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        errors.append(f"{path}: not valid YAML: {exc}")
        return {}
    if document is None:
        return {}
    if not isinstance(document, dict):
        errors.append(f"{path}: expected a mapping of settings ({', '.join(ENVIRONMENT)})")
        return {}
    layer: _Layer = {}
    for key, raw in document.items():
        where = f"{path}: {key}"
        if key == "mqtt":
            continue  # the MQTT broker of `events --source mqtt` (mqtt_events.py reads it)
        if key not in ENVIRONMENT:
            errors.append(f"{where}: unknown setting (settings: {', '.join(ENVIRONMENT)})")
            continue
        value = _parse(str(key), raw, where, errors)
        if value is not None:
            layer[str(key)] = (value, where, path.parent)
    return layer


def _read_token(path: Path, where: str, errors: list[str]) -> str | None:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"{where}: cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}")
        return None
    if not token:
        errors.append(f"{where}: the token file {path} is empty")
        return None
    return token


def resolve(flags: Flags, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``flags``, then ``environ`` (default os.environ), then the configuration file.

    Raises :class:`ConfigProblem` listing every problem.
    """
    env = os.environ if environ is None else environ
    errors: list[str] = []
    explicit = flags.config or (Path(env[CONFIG_ENV]).expanduser() if env.get(CONFIG_ENV) else None)
    config = explicit or default_config_path(env)
    layers = [_flag_layer(flags, errors), _env_layer(env, errors), _file_layer(config, explicit is not None, errors)]

    def pick(name: str) -> tuple[Any, str, Path] | None:
        return next((layer[name] for layer in layers if name in layer), None)

    def path(name: str) -> Path | None:
        found = pick(name)
        return None if found is None else found[2] / found[0]  # an absolute path replaces the base

    server = pick("server")
    target = str(server[0]) if server is not None else DEFAULT_SERVER
    insecure = pick("insecure")
    plaintext = bool(insecure[0]) if insecure is not None else target.startswith("unix:")
    # The token and its file count as one setting: the first layer giving either decides.
    token: str | None = None
    for layer in layers:
        if "token" in layer and "token_file" in layer:
            errors.append(f"{layer['token'][1]} and {layer['token_file'][1]}: give the token or its file, not both")
            break
        if "token" in layer:
            token = str(layer["token"][0])
            break
        if "token_file" in layer:
            value, where, base = layer["token_file"]
            token = _read_token(base / value, where, errors)
            break
    if token is not None and (not token.isascii() or not token.isprintable() or " " in token):
        errors.append("the token must be printable ASCII without spaces (as `edgecups api token create` makes them)")
    files: dict[str, Path | None] = {}
    for name in ("ca", "cert", "key"):
        files[name] = path(name)
    if plaintext:
        given = [f"--{name.replace('_', '-')}" for name in _TLS_ONLY if getattr(flags, name) is not None]
        if given:
            errors.append(f"{', '.join(given)}: TLS options, but the connection is plaintext (--insecure)")
        if not is_loopback(target_host(target)):
            errors.append(
                f"{insecure[1] if insecure else 'server'}: plaintext to {target} refused: only loopback addresses "
                "and unix sockets are reached without TLS (drop --insecure and give --ca)"
            )
        files = dict.fromkeys(files)  # TLS files configured for other servers do not apply here
    else:
        if (files["cert"] is None) != (files["key"] is None):
            errors.append("--cert and --key: a client certificate needs its key, and a key its certificate")
        for name, file in files.items():
            if file is not None and not os.access(file, os.R_OK):
                found = pick(name)
                errors.append(f"{found[1] if found else name}: cannot read {file}")
    timeout, output, server_name = pick("timeout"), pick("output"), pick("server_name")
    if errors:
        raise ConfigProblem(errors)
    return Settings(
        server=target,
        credentials=ApiCredentials(
            plaintext=plaintext,
            ca=files["ca"],
            cert=files["cert"],
            key=files["key"],
            token=token,
            server_name=None if plaintext or server_name is None else str(server_name[0]),
        ),
        timeout=float(timeout[0]) if timeout is not None else DEFAULT_TIMEOUT,
        output=output[0] if output is not None else Output.table,
        config_file=config if config.is_file() else None,
    )


_PANEL: Final = "Connection (flags > EDGECUPS_* environment > config file)"


def _option(*names: str, help: str, metavar: str | None = None) -> Any:
    return typer.Option(*names, help=help, metavar=metavar, rich_help_panel=_PANEL, show_default=False)


#: The connection parameters every API command takes, as Typer reads them.
_PARAMETERS: Final = (
    ("server", str | None, _option("--server", "-s", help="API address: HOST:PORT or unix:PATH.", metavar="ADDR")),
    ("ca", Path | None, _option("--ca", help="CA certificate (PEM) the server's must chain to.", metavar="FILE")),
    ("cert", Path | None, _option("--cert", help="Client certificate (PEM), for mutual TLS.", metavar="FILE")),
    ("key", Path | None, _option("--key", help="Client certificate's private key (PEM).", metavar="FILE")),
    ("token", str | None, _option("--token", help="Bearer token (prefer --token-file).", metavar="TOKEN")),
    ("token_file", Path | None, _option("--token-file", help="File holding the bearer token.", metavar="FILE")),
    ("server_name", str | None, _option("--server-name", help="Name the server certificate carries.", metavar="NAME")),
    ("insecure", bool | None, _option("--insecure/--tls", help="Plaintext (loopback and unix sockets only) or TLS.")),
    ("timeout", float | None, _option("--timeout", help="Seconds to wait for each answer (default 30).")),
    ("output", Output | None, _option("--output", "-o", help="table (default), json or yaml.")),
    ("config", Path | None, _option("--config", help="CLI configuration file (format: `edgecups api --help`).")),
)


def api_command(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the connection options; it receives them resolved as ``settings: Settings``.

    A configuration problem prints every line and exits 2 before the command runs.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "settings"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind, option])
        for name, kind, option in _PARAMETERS
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        flags = Flags(**{name: kwargs.pop(name) for name, _kind, _option in _PARAMETERS})
        try:
            settings = resolve(flags)
        except ConfigProblem as problem:
            for line in problem.errors:
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        command(settings=settings, **kwargs)

    parameters = [*own, *added]
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper
