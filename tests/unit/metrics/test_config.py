"""The ``metrics`` sections of cp.yaml and upf.yaml, and what happens when the port is taken."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest

from control_plane.app import start
from control_plane.config import ConfigError as CpConfigError
from control_plane.config import parse_config as parse_cp
from db.engine import upgrade
from tests.fakes.driver import FakeDriver
from user_plane.agent import UpfAgent
from user_plane.config import ConfigError as UpfConfigError
from user_plane.config import MetricsConfig
from user_plane.config import parse_config as parse_upf

UPF: dict[str, Any] = {
    "node_id": "upf.test", "n4": {"address": "127.0.0.1"}, "n3": ["198.19.7.1"],
    "n6": {"internet": {"interface": "n6-t", "ue_pool": "198.19.8.0/24"}}, "allowed_cps": ["127.0.0.1"],
}  # fmt: skip
CP: dict[str, Any] = {"n4": {"address": "127.0.0.1"}}


def test_no_section_no_endpoint() -> None:
    assert parse_upf(UPF).metrics is None
    assert parse_cp(CP).metrics is None


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "198.18.0.2"])
def test_an_address_and_a_default_port(address: str) -> None:
    upf = parse_upf({**UPF, "metrics": {"address": address}}).metrics
    cp = parse_cp({**CP, "metrics": {"address": address}}).metrics
    assert upf is not None and cp is not None
    assert (upf.address, upf.port) == (cp.address, cp.port) == (IPv4Address(address) if "." in address
                                                                 else IPv6Address(address), 9090)  # fmt: skip


def test_the_upf_section_round_trips() -> None:
    config = parse_upf({**UPF, "metrics": {"address": "::1", "port": 0}})
    assert config.metrics == MetricsConfig(IPv6Address("::1"), 0)
    assert parse_upf(config.to_mapping()) == config


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"port": 9090}, "metrics.address: required"),
        ({"address": "everywhere"}, "metrics.address: 'everywhere' is not an IP address"),
        ({"address": "0.0.0.0", "port": 70000}, "metrics.port"),
        ({"address": "0.0.0.0", "port": "http"}, "metrics.port"),
        ({"address": "0.0.0.0", "path": "/metrics"}, "metrics.path: unknown key"),
        ("0.0.0.0:9090", "metrics"),
    ],
)
def test_problems_name_the_key(section: object, problem: str) -> None:
    with pytest.raises(UpfConfigError) as upf:
        parse_upf({**UPF, "metrics": section})
    with pytest.raises(CpConfigError) as cp:
        parse_cp({**CP, "metrics": section})
    for errors in (upf.value.errors, cp.value.errors):
        assert any(e.startswith(problem) for e in errors), errors


def taken_tcp_port() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, int(sock.getsockname()[1])


def test_an_agent_whose_metrics_port_is_taken_does_not_start(tmp_path: Path) -> None:
    holder, port = taken_tcp_port()
    driver = FakeDriver()
    agent = UpfAgent(parse_upf({**UPF, "metrics": {"address": "127.0.0.1", "port": port}}), driver, manage_gc=False)

    async def run() -> None:
        with pytest.raises(OSError):
            await agent.start(port=0)

    with holder:
        asyncio.run(run())
    assert agent.node is None and agent.metrics is None and not driver.started


def test_a_control_plane_whose_metrics_port_is_taken_does_not_start(tmp_path: Path) -> None:
    holder, port = taken_tcp_port()
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    upgrade(url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        n4_port = int(probe.getsockname()[1])
    config = parse_cp({"n4": {"address": "127.0.0.1", "port": n4_port}, "database": {"url": url},
                       "metrics": {"address": "127.0.0.1", "port": port}})  # fmt: skip

    async def run() -> None:
        with pytest.raises(OSError):
            await start(config, api=False)

    with holder:
        asyncio.run(run())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as n4:
        n4.bind(("127.0.0.1", n4_port))  # what the failed start opened, it closed
