"""The control plane's API as `edgecups cp` serves it from a configuration with TLS and tokens.

tests/unit/api/test_security.py proves the interceptor and credentials on their own; here
they come from the configuration file's ``api`` section, around the real services.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from control_plane.api.generated.edgecups.v1 import provisioning_pb2 as pb
from control_plane.api.generated.edgecups.v1 import provisioning_pb2_grpc as pb_grpc
from control_plane.api.security import new_token, secure_channel, token_entry
from control_plane.app import start
from control_plane.config import ConfigError, load_config
from db.engine import upgrade
from tests.harness.tls import Pki, make_pki
from tests.unit.api.test_provisioning_api import free_udp_port

SITE = pb.Resource(kind="Site", name="edge-1", site=pb.Site(kind="edge", region="north", tais=["001-01-000001"]))


def write_config(tmp_path: Path, pki: Pki, tokens: dict[str, str]) -> Path:
    (tmp_path / "tokens.yaml").write_text(
        yaml.safe_dump([token_entry(role, [role], token) for role, token in tokens.items()])
    )
    config = {
        "n4": {"address": "127.0.0.1", "port": free_udp_port()},
        "database": {"url": f"sqlite:///{tmp_path / 'cp.db'}"},
        "api": {
            "address": "127.0.0.1",
            "port": 0,
            "tls": {"cert": str(pki.server_cert), "key": str(pki.server_key)},
            "tokens_file": "tokens.yaml",
        },
    }
    path = tmp_path / "cp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tls_and_roles_from_the_configuration(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    tokens = {role: new_token()[0] for role in ("operator", "viewer")}
    config = load_config(write_config(tmp_path, pki, tokens))
    upgrade(config.database_url)

    async def main() -> None:
        cp = await start(config)
        target = f"localhost:{cp.api_port}"
        try:
            # Health checking needs no token (probes carry none).
            async with secure_channel(target, ca=pki.ca_cert) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                answer = await health.Check(health_pb2.HealthCheckRequest(service="edgecups.v1.ProvisioningService"))
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await pb_grpc.ProvisioningServiceStub(channel).Apply(pb.ApplyRequest(resources=[SITE]))
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            async with secure_channel(target, ca=pki.ca_cert, token=tokens["viewer"]) as channel:
                stub = pb_grpc.ProvisioningServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.Apply(pb.ApplyRequest(resources=[SITE]))
                assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
                assert "operator" in (info.value.details() or "")
            async with secure_channel(target, ca=pki.ca_cert, token=tokens["operator"]) as channel:
                changes = await pb_grpc.ProvisioningServiceStub(channel).Apply(pb.ApplyRequest(resources=[SITE]))
                assert [(c.kind, c.name, c.action) for c in changes.changes] == [("Site", "edge-1", "created")]
            async with secure_channel(target, ca=pki.ca_cert, token=tokens["viewer"]) as channel:
                got = await pb_grpc.ProvisioningServiceStub(channel).Get(
                    pb.GetResourceRequest(kind="Site", name="edge-1")
                )
                assert got.site.tais == ["001-01-000001"]
            # A plaintext client cannot talk to the TLS port.
            async with grpc.aio.insecure_channel(target) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await cp.stop()

    asyncio.run(main())


def test_plaintext_must_be_explicit_and_local(tmp_path: Path) -> None:
    base = {"n4": {"address": "127.0.0.1"}, "database": {"url": "sqlite:///cp.db"}}
    path = tmp_path / "cp.yaml"
    path.write_text(yaml.safe_dump({**base, "api": {"address": "127.0.0.1"}}))
    with pytest.raises(ConfigError, match=r"api\.tls: required"):
        load_config(path)
    path.write_text(yaml.safe_dump({**base, "api": {"address": "0.0.0.0", "plaintext": True}}))
    with pytest.raises(ConfigError, match=r"api\.plaintext: refused on 0\.0\.0\.0"):
        load_config(path)
    path.write_text(yaml.safe_dump(base))
    assert load_config(path).api_security is None  # no api section: no API is served
