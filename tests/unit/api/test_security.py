"""API security over real gRPC on loopback with TLS: tokens and roles, mutual TLS, health, reflection.

The server here is assembled the way the control plane's will be (interceptor, SessionService,
health, reflection, TLS from a parsed configuration), around the fake SessionApi of
test_sessions_api (the SessionApi boundary): what is under test is who gets through.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from control_plane.api.auth import ApiToken, AuthInterceptor, caller_name, required_roles
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc
from control_plane.api.security import (
    ApiSecurity,
    SecurityConfigError,
    add_api_port,
    add_standard_services,
    new_token,
    parse_api_security,
    secure_channel,
    server_credentials,
    token_entry,
)
from control_plane.api.sessions import SessionServicer
from control_plane.services.views import SessionRequest, SessionView
from tests.harness.tls import Pki, make_pki
from tests.unit.api.test_sessions_api import FULL_REQUEST, InMemorySessionApi

SESSION = "edgecups.v1.SessionService"
STATUS = "edgecups.v1.StatusService"
#: Holders of the test tokens and their roles.
HOLDERS = {"ops": ["operator"], "sim": ["session"], "watcher": ["viewer"]}
GET = pb.GetSessionRequest(supi="imsi-001010000000001", pdu_session_id=1)
CREATE = pb.CreateSessionRequest(supi=FULL_REQUEST.supi, dnn="internet", snssai="1", tai="001-01-000001")


class RecordingApi(InMemorySessionApi):
    """The fake SessionApi, also noting which token's holder each establish came from."""

    def __init__(self) -> None:
        super().__init__()
        self.callers: list[str | None] = []

    async def establish(self, request: SessionRequest) -> SessionView:
        self.callers.append(caller_name())
        return await super().establish(request)


async def watch(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
    # A stand-in for a server-streaming read (StatusService/Watch): bytes in, bytes out.
    yield b"event 1 for " + (caller_name() or "nobody").encode()
    yield b"event 2"


async def reset(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return b"reset done"  # in no access table: nobody may reach it


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("other-pki"), name="other")


@pytest.fixture(scope="module")
def tokens(pki: Pki) -> dict[str, str]:
    """Holder name -> secret; their hashes are in pki.directory/tokens.yaml."""
    secrets: dict[str, str] = {}
    entries = []
    for name, roles in HOLDERS.items():
        secrets[name], _ = new_token()
        entries.append(token_entry(name, roles, secrets[name]))
    (pki.directory / "tokens.yaml").write_text(yaml.safe_dump(entries))
    return secrets


def security(pki: Pki, *, mutual: bool = False) -> ApiSecurity:
    tls = {"cert": "server.pem", "key": "server.key"} | ({"client_ca": "ca.pem"} if mutual else {})
    raw = {"address": "0.0.0.0", "port": 0, "tls": tls, "tokens_file": "tokens.yaml"}
    return parse_api_security(raw, base_dir=pki.directory, environ={})


@asynccontextmanager
async def serving(sec: ApiSecurity, api: RecordingApi) -> AsyncIterator[int]:
    server = grpc.aio.server(interceptors=[AuthInterceptor(sec.tokens)], options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_SessionServiceServicer_to_server(SessionServicer(api), server)
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(STATUS, {"Watch": grpc.unary_stream_rpc_method_handler(watch)}),
            grpc.method_handlers_generic_handler(
                "edgecups.v1.AdminService", {"Reset": grpc.unary_unary_rpc_method_handler(reset)}
            ),
        ]
    )
    await add_standard_services(server, [SESSION, STATUS])
    port = server.add_secure_port("127.0.0.1:0", server_credentials(sec))
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


def run(sec: ApiSecurity, scenario: Callable[[int, RecordingApi], Awaitable[None]]) -> RecordingApi:
    api = RecordingApi()

    async def main() -> None:
        async with serving(sec, api) as port:
            await scenario(port, api)

    asyncio.run(main())
    return api


async def refused(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value.code(), raised.value.details() or ""


# --- tokens and roles ----------------------------------------------------------------------


def test_a_call_without_a_token_or_with_a_bad_one_is_unauthenticated(pki: Pki, tokens: dict[str, str]) -> None:
    async def scenario(port: int, api: RecordingApi) -> None:
        async with secure_channel(f"127.0.0.1:{port}", ca=pki.ca_cert) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            assert await refused(stub.Get(GET, timeout=10)) == (grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
            # A token in the right header but the wrong scheme is no bearer token either.
            basic = (("authorization", "Basic b3BzOnNlY3JldA=="),)
            assert await refused(stub.Get(GET, metadata=basic, timeout=10)) == (
                grpc.StatusCode.UNAUTHENTICATED,
                "missing bearer token",
            )
        wrong = tokens["ops"][:-1] + ("A" if tokens["ops"][-1] != "A" else "B")
        async with secure_channel(f"127.0.0.1:{port}", ca=pki.ca_cert, token=wrong) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            assert await refused(stub.Create(CREATE, timeout=10)) == (grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        assert api.calls == []

    run(security(pki), scenario)


def test_a_viewer_may_read_but_not_create_sessions(pki: Pki, tokens: dict[str, str]) -> None:
    async def scenario(port: int, api: RecordingApi) -> None:
        async with secure_channel(f"127.0.0.1:{port}", ca=pki.ca_cert, token=tokens["watcher"]) as channel:
            stub = pb_grpc.SessionServiceStub(channel)
            code, details = await refused(stub.Create(CREATE, timeout=10))
            assert code == grpc.StatusCode.PERMISSION_DENIED
            assert details == (
                "/edgecups.v1.SessionService/Create needs the role operator or session; token 'watcher' holds viewer"
            )
            assert api.calls == []
            # Get reaches the handler, whose NOT_FOUND comes back.
            code, details = await refused(stub.Get(GET, timeout=10))
            assert (code, details) == (grpc.StatusCode.NOT_FOUND, "no session imsi-001010000000001/1")
            assert api.calls == [("get", ("imsi-001010000000001", 1))]

    run(security(pki), scenario)


def test_a_session_token_creates_and_the_handler_knows_who(pki: Pki, tokens: dict[str, str]) -> None:
    async def scenario(port: int, api: RecordingApi) -> None:
        async with secure_channel(f"127.0.0.1:{port}", ca=pki.ca_cert, token=tokens["sim"]) as channel:
            session = await pb_grpc.SessionServiceStub(channel).Create(CREATE, timeout=10)
        assert session.supi == FULL_REQUEST.supi
        assert api.callers == ["sim"]
        assert caller_name() is None  # outside a call

    run(security(pki), scenario)


def test_a_method_in_no_access_table_is_refused_even_to_an_operator(pki: Pki, tokens: dict[str, str]) -> None:
    async def scenario(port: int, api: RecordingApi) -> None:
        async with secure_channel(f"127.0.0.1:{port}", ca=pki.ca_cert, token=tokens["ops"]) as channel:
            reset_call = channel.unary_unary("/edgecups.v1.AdminService/Reset", None, None)
            code, details = await refused(reset_call(b"", timeout=10))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert details == "/edgecups.v1.AdminService/Reset is not in the API's access table: no role may call it"

    run(security(pki), scenario)


def test_a_server_streaming_read_enforces_tokens_too(pki: Pki, tokens: dict[str, str]) -> None:
    async def read_all(channel: grpc.aio.Channel) -> list[bytes]:
        stream = channel.unary_stream(f"/{STATUS}/Watch", None, None)(b"", timeout=10)
        return [message async for message in stream]

    async def scenario(port: int, api: RecordingApi) -> None:
        async with secure_channel(f"127.0.0.1:{port}", ca=pki.ca_cert) as channel:
            assert await refused(read_all(channel)) == (grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
        async with secure_channel(f"127.0.0.1:{port}", ca=pki.ca_cert, token=tokens["watcher"]) as channel:
            assert await read_all(channel) == [b"event 1 for watcher", b"event 2"]

    run(security(pki), scenario)


@pytest.mark.parametrize(
    ("method", "roles"),
    [
        ("/edgecups.v1.ProvisioningService/Apply", {"operator"}),
        ("/edgecups.v1.ProvisioningService/DrainSite", {"operator"}),
        ("/edgecups.v1.ProvisioningService/ListPools", {"operator", "session", "viewer"}),
        ("/edgecups.v1.SessionService/Modify", {"operator", "session"}),
        ("/edgecups.v1.SessionService/Usage", {"operator", "session", "viewer"}),
        ("/edgecups.v1.StatusService/Watch", {"operator", "session", "viewer"}),
        ("/edgecups.v1.ProvisioningService/Frobnicate", None),
        ("/edgecups.v1.SessionService/CreateMany", None),
    ],
)
def test_method_roles_table(method: str, roles: set[str] | None) -> None:
    assert required_roles(method) == (frozenset(roles) if roles is not None else None)


def test_every_rpc_of_edgecups_v1_is_in_the_access_table() -> None:
    # Fail closed makes a forgotten entry an RPC nobody can call: this names it instead.
    package = importlib.import_module("control_plane.api.generated.edgecups.v1")
    methods = [
        f"/{service.full_name}/{method.name}"
        for module in pkgutil.iter_modules(package.__path__)
        if module.name.endswith("_pb2")
        for service in importlib.import_module(f"{package.__name__}.{module.name}").DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]
    assert "/edgecups.v1.SessionService/Create" in methods
    assert [method for method in methods if required_roles(method) is None] == []


def test_a_malformed_access_table_or_token_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty subset"):
        AuthInterceptor([], {"/edgecups.v1.SessionService/Get": frozenset()})
    with pytest.raises(ValueError, match=r"expected /pkg\.Service/Method"):
        AuthInterceptor([], {"edgecups.v1.SessionService": frozenset({"viewer"})})
    with pytest.raises(ValueError, match="64 lowercase hex"):
        ApiToken(name="ops", roles=frozenset({"operator"}), sha256="00")


# --- health and reflection need no token ----------------------------------------------------


def test_health_and_reflection_answer_without_a_token(pki: Pki, tokens: dict[str, str]) -> None:
    async def scenario(port: int, api: RecordingApi) -> None:
        async with secure_channel(f"127.0.0.1:{port}", ca=pki.ca_cert) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", SESSION, STATUS):
                answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
            code, _ = await refused(health.Check(health_pb2.HealthCheckRequest(service="nope.Service"), timeout=10))
            assert code == grpc.StatusCode.NOT_FOUND

            reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
            stream = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            names = {s.name async for answer in stream for s in answer.list_services_response.service}
            assert names == {SESSION, STATUS, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}

    run(security(pki), scenario)


# --- TLS and mutual TLS -----------------------------------------------------------------------


def test_mutual_tls_needs_a_client_certificate_from_the_configured_ca(
    pki: Pki, other_pki: Pki, tokens: dict[str, str]
) -> None:
    sec = security(pki, mutual=True)
    assert sec.mutual_tls

    async def scenario(port: int, api: RecordingApi) -> None:
        target = f"127.0.0.1:{port}"
        async with secure_channel(target, ca=pki.ca_cert, token=tokens["ops"]) as channel:
            code, _ = await refused(pb_grpc.SessionServiceStub(channel).Get(GET, timeout=10))
            assert code == grpc.StatusCode.UNAVAILABLE
        cert, key = other_pki.client_cert, other_pki.client_key
        async with secure_channel(target, ca=pki.ca_cert, cert=cert, key=key, token=tokens["ops"]) as channel:
            code, _ = await refused(pb_grpc.SessionServiceStub(channel).Get(GET, timeout=10))
            assert code == grpc.StatusCode.UNAVAILABLE
        assert api.calls == []
        cert, key = pki.client_cert, pki.client_key
        async with secure_channel(target, ca=pki.ca_cert, cert=cert, key=key, token=tokens["ops"]) as channel:
            code, _ = await refused(pb_grpc.SessionServiceStub(channel).Get(GET, timeout=10))
            assert code == grpc.StatusCode.NOT_FOUND  # from the handler: the call got through
        assert api.calls == [("get", ("imsi-001010000000001", 1))]

    run(sec, scenario)


def test_clients_that_do_not_speak_tls_to_this_server_fail(pki: Pki, other_pki: Pki, tokens: dict[str, str]) -> None:
    async def scenario(port: int, api: RecordingApi) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            code, _ = await refused(pb_grpc.SessionServiceStub(channel).Get(GET, timeout=10))
            assert code == grpc.StatusCode.UNAVAILABLE
        # A client trusting another CA refuses the server's certificate.
        async with secure_channel(f"127.0.0.1:{port}", ca=other_pki.ca_cert, token=tokens["ops"]) as channel:
            code, _ = await refused(pb_grpc.SessionServiceStub(channel).Get(GET, timeout=10))
            assert code == grpc.StatusCode.UNAVAILABLE
        # The certificate names localhost too.
        async with secure_channel(f"localhost:{port}", ca=pki.ca_cert, token=tokens["ops"]) as channel:
            code, _ = await refused(pb_grpc.SessionServiceStub(channel).Get(GET, timeout=10))
            assert code == grpc.StatusCode.NOT_FOUND
        assert api.calls == [("get", ("imsi-001010000000001", 1))]

    run(security(pki), scenario)


# --- configuration ----------------------------------------------------------------------------


def problems(raw: dict[str, Any], base_dir: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SecurityConfigError) as raised:
        parse_api_security(raw, base_dir=base_dir, environ=environ or {})
    return raised.value.errors


def test_config_reads_tls_files_and_tokens(pki: Pki, tokens: dict[str, str]) -> None:
    sec = security(pki)
    assert sec.tls is not None and sec.tls.cert == pki.server_cert and sec.tls.client_ca is None
    assert not sec.plaintext and not sec.mutual_tls
    assert {(t.name, t.roles) for t in sec.tokens} == {(n, frozenset(r)) for n, r in HOLDERS.items()}
    # The file holds hashes only.
    assert not any(secret in (pki.directory / "tokens.yaml").read_text() for secret in tokens.values())


def test_config_missing_file_and_mismatched_key(pki: Pki, tmp_path: Path) -> None:
    tokens = {"tokens_file": str(pki.directory / "tokens.yaml")}
    assert problems({"tls": {"cert": "missing.pem", "key": str(pki.server_key)}} | tokens, tmp_path) == [
        f"api.tls.cert: cannot read {tmp_path / 'missing.pem'}: No such file or directory"
    ]
    mismatched = {"cert": str(pki.server_cert), "key": str(pki.client_key)}
    assert problems({"tls": mismatched} | tokens, tmp_path) == [
        f"api.tls.key: {pki.client_key} is not the private key of api.tls.cert ({pki.server_cert})"
    ]
    not_a_ca = {"cert": str(pki.server_cert), "key": str(pki.server_key), "client_ca": str(pki.server_key)}
    assert problems({"tls": not_a_ca} | tokens, tmp_path) == [
        f"api.tls.client_ca: {pki.server_key} holds no PEM certificate"
    ]


def test_config_plaintext_only_on_loopback(pki: Pki, tmp_path: Path) -> None:
    assert problems({"address": "0.0.0.0", "plaintext": True}, tmp_path) == [
        "api.plaintext: refused on 0.0.0.0: plaintext is served on loopback only "
        "(127.0.0.1, ::1, localhost, unix:PATH); configure api.tls to listen there"
    ]
    assert problems({"address": "127.0.0.1"}, tmp_path) == [
        "api.tls: required (cert and key files, and client_ca for mutual TLS), "
        "unless api.plaintext is true on a loopback address"
    ]
    for address in ("127.0.0.1", "::1", "localhost", "unix:/run/edgecups/api.sock"):
        sec = parse_api_security({"address": address, "plaintext": True}, base_dir=tmp_path, environ={})
        assert sec == ApiSecurity(tls=None) and sec.plaintext


def test_config_tokens_unknown_role_and_none_at_all(pki: Pki, tmp_path: Path) -> None:
    tls = {"cert": str(pki.server_cert), "key": str(pki.server_key)}
    digest = "ab" * 32
    bad = [{"name": "root", "roles": ["admin"], "token_sha256": digest}]
    assert problems({"tls": tls, "tokens": bad}, tmp_path) == [
        "api.tokens[0].roles: unknown role 'admin' (roles: operator, session, viewer)"
    ]
    [message] = problems({"tls": tls}, tmp_path)
    assert message.startswith("api.tokens_file: no API tokens, and every call over TLS needs one: create one with ")
    assert "edgecups api token create --name ops --role operator" in message
    (tmp_path / "empty.yaml").write_text("")
    assert problems({"tls": tls, "tokens_file": "empty.yaml"}, tmp_path) == [message]
    # The environment may name the file when the configuration does not.
    sec = parse_api_security(
        {"tls": tls}, base_dir=tmp_path, environ={"EDGECUPS_API_TOKENS_FILE": str(pki.directory / "tokens.yaml")}
    )
    assert {t.name for t in sec.tokens} == set(HOLDERS)


def test_config_reports_every_problem_at_once(pki: Pki, tmp_path: Path) -> None:
    raw = {
        "address": "0.0.0.0",
        "listen": 1,
        "tls": {"cert": str(pki.server_cert), "key": str(pki.client_key), "ca": "x"},
        "tokens": [
            {"name": "ops", "roles": ["operator"], "token_sha256": "ab" * 32},
            {"name": "ops", "roles": [], "token_sha256": "AB" * 32, "token": "secret"},
        ],
    }
    assert problems(raw, tmp_path) == [
        "api.listen: unknown key (allowed: address, plaintext, port, tls, tokens, tokens_file, workers)",
        "api.tls.ca: unknown key (allowed: cert, client_ca, key)",
        f"api.tls.key: {pki.client_key} is not the private key of api.tls.cert ({pki.server_cert})",
        "api.tokens[1].token: unknown key (allowed: name, roles, token_sha256)",
        "api.tokens[1].name: 'ops' is already the name of another token",
        "api.tokens[1].roles: expected a non-empty list of roles from operator, session, viewer",
        "api.tokens[1].token_sha256: the same token as 'ops'",
    ]


def test_token_entry_refuses_an_unknown_role() -> None:
    token, digest = new_token()
    assert token_entry("ops", ["viewer", "operator"], token) == {
        "name": "ops",
        "roles": ["operator", "viewer"],
        "token_sha256": digest,
    }
    with pytest.raises(ValueError, match=r"roles: unknown role 'root'"):
        token_entry("ops", ["root"], token)


def test_add_api_port_binds_and_reports_a_taken_port_as_oserror() -> None:
    async def main() -> None:
        first = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        second = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        try:
            port = add_api_port(first, "127.0.0.1", 0, ApiSecurity(tls=None))
            assert port > 0
            await first.start()
            with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
                add_api_port(second, "127.0.0.1", port, ApiSecurity(tls=None))
        finally:
            await first.stop(None)
            await second.stop(None)

    asyncio.run(main())
