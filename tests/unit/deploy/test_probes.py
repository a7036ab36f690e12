"""``edgecups deploy probe cp|upf``, the pods' readiness and liveness probes, against real servers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from typer.testing import CliRunner

import pfcp
from control_plane.cli.main import app
from pfcp.aio import PfcpNode
from pfcp.endpoint import EndpointConfig
from tests.harness.tls import make_pki

from .rendering import REPO


@contextmanager
def _pfcp_node() -> Iterator[int]:
    """The project's PFCP node (as the agent runs it) on 127.0.0.1, in a thread of its own; yields its port."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port: list[int] = []
    node = PfcpNode(EndpointConfig(pfcp.NodeID("127.0.0.1"), pfcp.RecoveryTimeStamp.from_unix(1_700_000_000)))

    stop = asyncio.Event()

    async def main() -> None:
        port.append((await node.start("127.0.0.1", 0))[1])
        started.set()
        await stop.wait()
        node.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def _agent_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "upf.yaml"
    config = {
        "node_id": "upf.example.org",
        "n4": {"address": "127.0.0.1", "port": port},
        "n3": ["198.18.1.2"],
        "n6": {"internet": {"interface": "n6-internet", "ue_pool": "198.19.0.0/16"}},
        "allowed_cps": ["198.18.0.1"],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_upf_probe_is_answered_by_a_pfcp_node(tmp_path: Path) -> None:
    with _pfcp_node() as port:
        result = CliRunner().invoke(app, ["deploy", "probe", "upf", "--config", str(_agent_config(tmp_path, port))])
        assert result.exit_code == 0, result.stderr
        assert result.stdout == f"127.0.0.1:{port}: Heartbeat Response (recovery 1700000000)\n"
    # Nobody listens any more: the probe fails, saying why.
    result = CliRunner().invoke(app, ["deploy", "probe", "upf", "--config", str(_agent_config(tmp_path, port)),
                                      "--timeout", "1"])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: 127.0.0.1:{port}: ")


def test_the_probe_runs_as_the_pods_run_it(tmp_path: Path) -> None:
    # The pods and the images run the module, not the `edgecups` script: the same command, fewer imports.
    with _pfcp_node() as port:
        config = _agent_config(tmp_path, port)
        command = [sys.executable, "-m", "control_plane.cli.deploy_commands", "probe", "upf", "--config", str(config)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"127.0.0.1:{port}: Heartbeat Response (recovery 1700000000)\n"


def test_the_upf_probe_reports_a_bad_configuration(tmp_path: Path) -> None:
    path = tmp_path / "upf.yaml"
    path.write_text("node_id: upf.example.org\n")
    result = CliRunner().invoke(app, ["deploy", "probe", "upf", "--config", str(path)])
    assert result.exit_code == 1
    assert "error: n4: required" in result.stderr.splitlines()


@contextmanager
def _health_server(pki_dir: Path) -> Iterator[tuple[int, health.HealthServicer]]:
    pki = make_pki(pki_dir)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials([(pki.server_key.read_bytes(), pki.server_cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(None)


def _cp_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "cp.yaml"
    config = {
        "n4": {"address": "127.0.0.1"},
        "api": {
            "address": "0.0.0.0",
            "port": port,
            "tls": {"cert": "pki/server.pem", "key": "pki/server.key"},
            "tokens": [{"name": "ops", "roles": ["operator"], "token_sha256": "ab" * 32}],
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_cp_probe_asks_grpc_health_over_tls(tmp_path: Path) -> None:
    with _health_server(tmp_path / "pki") as (port, servicer):
        config = _cp_config(tmp_path, port)
        probe = ["deploy", "probe", "cp", "--config", str(config), "--ca", str(tmp_path / "pki" / "ca.pem")]
        result = CliRunner().invoke(app, [*probe, "--server-name", "localhost"])
        assert result.exit_code == 0, result.stderr
        assert result.stdout == f"127.0.0.1:{port}: SERVING\n"
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)  # as the control plane says when stopping
        result = CliRunner().invoke(app, probe)
        assert result.exit_code == 1 and result.stderr == f"error: 127.0.0.1:{port}: NOT_SERVING\n"
        # A certificate the given CA did not sign is not trusted.
        other = make_pki(tmp_path / "other", name="other")
        result = CliRunner().invoke(app, ["deploy", "probe", "cp", "--config", str(config), "--ca", str(other.ca_cert)])
        assert result.exit_code == 1 and result.stderr.startswith(f"error: 127.0.0.1:{port}: UNAVAILABLE")


@pytest.mark.parametrize("api", [None, {"address": "127.0.0.1", "plaintext": True}])
def test_the_cp_probe_without_a_server(tmp_path: Path, api: dict[str, object] | None) -> None:
    path = tmp_path / "cp.yaml"
    path.write_text(yaml.safe_dump({"n4": {"address": "127.0.0.1"}, **({"api": {**api, "port": 1}} if api else {})}))
    result = CliRunner().invoke(app, ["deploy", "probe", "cp", "--config", str(path), "--timeout", "1"])
    assert result.exit_code == 1
    expected = "no api section" if api is None else "127.0.0.1:1: UNAVAILABLE"
    assert expected in result.stderr
