"""The northbound API's security: TLS (optionally mutual), bearer tokens, health and reflection.

The ``api:`` section of the control plane's configuration::

    api:
      address: 0.0.0.0
      port: 50051
      tls: {cert: server.pem, key: server.key, client_ca: ca.pem}   # client_ca: clients need a cert
      plaintext: false          # true only on loopback (127.0.0.1, ::1, localhost, unix:PATH)
      tokens_file: tokens.yaml  # or inline: tokens: [{name: ops, roles: [operator], token_sha256: <hex>}]
      workers: 2                # front-end processes terminating gRPC (control_plane.config checks it)

Relative paths are from the configuration file's directory. Without ``tokens`` or
``tokens_file``, the file named by ``EDGECUPS_API_TOKENS_FILE`` is used. Over TLS every
call needs a token; in plaintext (loopback only) tokens are optional, and enforced when given.
Everything is checked up front and every problem reported at once, as
:class:`SecurityConfigError` lines ``api.tls.cert: message``; the TLS files are loaded
as TLS would load them, so a key that does not match its certificate stops start-up
rather than every handshake. Roles and their enforcement: :mod:`control_plane.api.auth`.
"""

from __future__ import annotations

import os
import secrets
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Final

import grpc
import grpc.aio
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from control_plane.api.auth import ROLES, ApiToken, token_sha256

__all__ = [
    "API_KEYS",
    "TOKENS_FILE_ENV",
    "ApiSecurity",
    "HealthServicer",
    "SecurityConfigError",
    "TlsFiles",
    "add_api_port",
    "add_standard_services",
    "channel_credentials",
    "is_loopback",
    "new_token",
    "parse_api_security",
    "secure_channel",
    "server_credentials",
    "token_call_credentials",
    "token_entry",
]

#: The keys of the ``api:`` section (config.py accepts these and hands the section here).
API_KEYS: Final = frozenset({"address", "port", "tls", "plaintext", "tokens_file", "tokens", "workers"})
#: Names the token file when the configuration names none.
TOKENS_FILE_ENV: Final = "EDGECUPS_API_TOKENS_FILE"
_TLS_KEYS: Final = frozenset({"cert", "key", "client_ca"})
_TOKEN_KEYS: Final = frozenset({"name", "roles", "token_sha256"})
_HOW_TO_MAKE_A_TOKEN: Final = (
    "create one with `edgecups api token create --name ops --role operator` (it prints the secret once, "
    "and the entry to add to the tokens file)"
)


class SecurityConfigError(ValueError):
    """An ``api:`` section that cannot be used; ``errors`` lists every problem as "path: message"."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of the server's certificate (chain) and key, and of the CA its clients' certs come from."""

    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True, slots=True)
class ApiSecurity:
    """How the API is protected: TLS files (None: plaintext, loopback only) and the tokens it accepts."""

    tls: TlsFiles | None
    tokens: tuple[ApiToken, ...] = ()

    @property
    def plaintext(self) -> bool:
        return self.tls is None

    @property
    def mutual_tls(self) -> bool:
        """Whether clients must present a certificate signed by ``tls.client_ca``."""
        return self.tls is not None and self.tls.client_ca is not None


def is_loopback(address: str) -> bool:
    """Whether only this host can reach ``address`` (a loopback IP, "localhost", or unix:PATH)."""
    # A unix socket is reachable only on this host, through its file permissions.
    if address == "localhost" or address.startswith("unix:"):
        return True
    try:
        return ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_api_security(
    raw: Mapping[str, Any], *, base_dir: Path, environ: Mapping[str, str] | None = None
) -> ApiSecurity:
    """Check the ``api:`` section (a decoded YAML mapping); raises :class:`SecurityConfigError`.

    ``base_dir`` anchors relative paths; ``environ`` (default ``os.environ``) may name the
    token file through ``EDGECUPS_API_TOKENS_FILE``.
    """
    errors: list[str] = []
    for key in raw:
        if key not in API_KEYS:
            errors.append(f"api.{key}: unknown key (allowed: {', '.join(sorted(API_KEYS))})")
    address = str(raw.get("address", "127.0.0.1"))
    plaintext = raw.get("plaintext", False)
    if not isinstance(plaintext, bool):
        errors.append(f"api.plaintext: {plaintext!r} must be true or false")
        plaintext = False
    tls: TlsFiles | None = None
    if plaintext:
        if raw.get("tls") is not None:
            errors.append("api.plaintext: true, but api.tls is set too: serve either TLS or plaintext")
        if not is_loopback(address):
            errors.append(
                f"api.plaintext: refused on {address}: plaintext is served on loopback only "
                "(127.0.0.1, ::1, localhost, unix:PATH); configure api.tls to listen there"
            )
    elif raw.get("tls") is None:
        errors.append(
            "api.tls: required (cert and key files, and client_ca for mutual TLS), "
            "unless api.plaintext is true on a loopback address"
        )
    else:
        tls = _tls(raw["tls"], base_dir, errors)
    tokens = _token_source(raw, base_dir, os.environ if environ is None else environ, errors)
    tls_on = not plaintext and raw.get("tls") is not None
    if tls_on and not tokens and not any(e.startswith(("api.tokens", TOKENS_FILE_ENV)) for e in errors):
        errors.append(f"api.tokens_file: no API tokens, and every call over TLS needs one: {_HOW_TO_MAKE_A_TOKEN}")
    if errors:
        raise SecurityConfigError(errors)
    return ApiSecurity(tls=tls, tokens=tokens)


def _read(path: Path, where: str, errors: list[str]) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as exc:
        errors.append(f"{where}: cannot read {path}: {exc.strerror or exc}")
        return None


def _path(value: object, where: str, base_dir: Path, errors: list[str]) -> Path | None:
    if not isinstance(value, str) or not value:
        errors.append(f"{where}: expected a file path, not {value!r}")
        return None
    return base_dir / value  # an absolute value replaces base_dir


def _tls(value: object, base_dir: Path, errors: list[str]) -> TlsFiles | None:
    if not isinstance(value, dict):
        errors.append(f"api.tls: must be a mapping with cert, key and optionally client_ca, not {value!r}")
        return None
    for key in value:
        if key not in _TLS_KEYS:
            errors.append(f"api.tls.{key}: unknown key (allowed: {', '.join(sorted(_TLS_KEYS))})")
    count = len(errors)
    cert = _path(value.get("cert"), "api.tls.cert", base_dir, errors)
    key = _path(value.get("key"), "api.tls.key", base_dir, errors)
    client_ca = _path(value["client_ca"], "api.tls.client_ca", base_dir, errors) if "client_ca" in value else None
    cert_pem = _read(cert, "api.tls.cert", errors) if cert else None
    key_pem = _read(key, "api.tls.key", errors) if key else None
    ca_pem = _read(client_ca, "api.tls.client_ca", errors) if client_ca else None
    if cert_pem is not None and b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        errors.append(f"api.tls.cert: {cert} holds no PEM certificate")
    if key_pem is not None and b"PRIVATE KEY-----" not in key_pem:
        errors.append(f"api.tls.key: {key} holds no PEM private key")
    elif key_pem is not None and b"ENCRYPTED" in key_pem:
        errors.append(f"api.tls.key: {key} is encrypted; gRPC cannot ask for its passphrase: store it unencrypted")
    if ca_pem is not None and b"-----BEGIN CERTIFICATE-----" not in ca_pem:
        errors.append(f"api.tls.client_ca: {client_ca} holds no PEM certificate")
    if len(errors) > count or cert is None or key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # The password callback never prompts: an encrypted key fails here instead of blocking start-up.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            errors.append(f"api.tls.key: {key} is not the private key of api.tls.cert ({cert})")
        else:
            errors.append(f"api.tls.cert: {cert} and {key} do not load as a certificate and its key: {exc}")
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except ssl.SSLError as exc:
            errors.append(f"api.tls.client_ca: {client_ca} does not load as CA certificates: {exc}")
    return None if len(errors) > count else TlsFiles(cert=cert, key=key, client_ca=client_ca)


def _token_source(
    raw: Mapping[str, Any], base_dir: Path, environ: Mapping[str, str], errors: list[str]
) -> tuple[ApiToken, ...]:
    if "tokens" in raw and "tokens_file" in raw:
        errors.append("api.tokens: give tokens or tokens_file, not both")
        return ()
    if "tokens" in raw:
        return _tokens(raw["tokens"], "api.tokens", errors)
    if "tokens_file" in raw:
        where, path = "api.tokens_file", _path(raw["tokens_file"], "api.tokens_file", base_dir, errors)
    elif environ.get(TOKENS_FILE_ENV):
        where, path = TOKENS_FILE_ENV, Path(environ[TOKENS_FILE_ENV])
    else:
        return ()
    text = _read(path, where, errors) if path else None
    if text is None:
        return ()
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        errors.append(f"{where}: {path} is not valid YAML: {exc}")
        return ()
    return _tokens([] if document is None else document, where, errors)


def _tokens(value: object, where: str, errors: list[str]) -> tuple[ApiToken, ...]:
    if not isinstance(value, list):
        errors.append(f"{where}: expected a list of {{name, roles, token_sha256}}, not {type(value).__name__}")
        return ()
    tokens: list[ApiToken] = []
    names: set[str] = set()
    digests: dict[str, str] = {}
    for index, entry in enumerate(value):
        path = f"{where}[{index}]"
        if not isinstance(entry, dict):
            errors.append(f"{path}: expected a mapping with name, roles and token_sha256")
            continue
        count = len(errors)
        for key in entry:
            if key not in _TOKEN_KEYS:
                errors.append(f"{path}.{key}: unknown key (allowed: {', '.join(sorted(_TOKEN_KEYS))})")
        name, roles, digest = entry.get("name"), entry.get("roles"), entry.get("token_sha256")
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{path}.name: required: who holds the token (it appears in the logs)")
        elif name in names:
            errors.append(f"{path}.name: {name!r} is already the name of another token")
        if not isinstance(roles, list) or not roles:
            errors.append(f"{path}.roles: expected a non-empty list of roles from {', '.join(ROLES)}")
        else:
            for role in roles:
                if role not in ROLES:
                    errors.append(f"{path}.roles: unknown role {role!r} (roles: {', '.join(ROLES)})")
        if not isinstance(digest, str) or len(digest) != 64 or not _is_hex(digest):
            errors.append(f"{path}.token_sha256: expected the 64 hex digits of the token's SHA-256")
        elif digest.lower() in digests:
            errors.append(f"{path}.token_sha256: the same token as {digests[digest.lower()]!r}")
        if len(errors) == count:
            assert isinstance(name, str) and isinstance(roles, list) and isinstance(digest, str)
            names.add(name)
            digests[digest.lower()] = name
            tokens.append(ApiToken(name=name, roles=frozenset(roles), sha256=digest.lower()))
    return tuple(tokens)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def new_token() -> tuple[str, str]:
    """A fresh bearer token (256 random bits, URL-safe) and its hex SHA-256, the part the server keeps."""
    token = secrets.token_urlsafe(32)
    return token, token_sha256(token)


def token_entry(name: str, roles: Iterable[str], token: str) -> dict[str, Any]:
    """The tokens-file entry for ``token`` (its hash, never the token); ValueError for a bad name or role."""
    errors: list[str] = []
    entry = {"name": name, "roles": sorted(set(roles)), "token_sha256": token_sha256(token)}
    _tokens([entry], "token", errors)
    if errors:
        raise ValueError("; ".join(error.removeprefix("token[0].") for error in errors))
    return entry


def server_credentials(sec: ApiSecurity) -> grpc.ServerCredentials:
    """TLS credentials for ``add_secure_port``; client certificates required when ``sec.mutual_tls``."""
    if sec.tls is None:
        raise ValueError("a plaintext API configuration has no server credentials")
    ca = sec.tls.client_ca.read_bytes() if sec.tls.client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(sec.tls.key.read_bytes(), sec.tls.cert.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def add_api_port(server: grpc.aio.Server, address: str, port: int, sec: ApiSecurity) -> int:
    """Listen on ``address`` (a host and ``port``, or ``unix:PATH``), over TLS when ``sec`` has it; the port bound.

    Raises OSError when gRPC cannot listen there (or a TLS file cannot be read).
    """
    host = f"[{address}]" if ":" in address and not address.startswith("unix:") else address
    listen = address if address.startswith("unix:") else f"{host}:{port}"
    try:
        if sec.tls is not None:
            return server.add_secure_port(listen, server_credentials(sec))
        return server.add_insecure_port(listen)
    except RuntimeError as error:
        raise OSError(f"cannot listen on {listen}: {error}") from error


def channel_credentials(ca: Path | None, cert: Path | None, key: Path | None) -> grpc.ChannelCredentials:
    """TLS to the API: trust ``ca`` (None: the system's roots); ``cert``/``key`` for mutual TLS."""
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    return grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes() if ca is not None else None,
        private_key=key.read_bytes() if key is not None else None,
        certificate_chain=cert.read_bytes() if cert is not None else None,
    )


def token_call_credentials(token: str) -> grpc.CallCredentials:
    """Sends ``authorization: Bearer <token>`` on every call (gRPC sends it over TLS channels only)."""
    return grpc.access_token_call_credentials(token)


def secure_channel(
    target: str,
    *,
    ca: Path | None,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
    server_name: str | None = None,
) -> grpc.aio.Channel:
    """A TLS channel to the API at ``target`` ("host:port"), presenting ``token`` when given.

    ``server_name`` is the name the server's certificate must carry when ``target`` uses another
    (an address the certificate does not list).
    """
    credentials = channel_credentials(ca, cert, key)
    if token is not None:
        credentials = grpc.composite_channel_credentials(credentials, token_call_credentials(token))
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.aio.secure_channel(target, credentials, options=options)


async def add_standard_services(server: grpc.aio.Server, service_names: Sequence[str]) -> HealthServicer:
    """Register gRPC health checking and server reflection, with every named service SERVING.

    Call before ``server.start()``. The returned servicer sets statuses later
    (``await health.enter_graceful_shutdown()`` when stopping). Reflection lists
    ``service_names`` and the two standard services.
    """
    health = HealthServicer()
    for name in service_names:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection([*service_names, health_name, reflection.SERVICE_NAME], server)
    return health
