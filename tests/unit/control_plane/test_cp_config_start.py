"""The control plane's configuration file, and its refusal to start on an out-of-date schema."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from control_plane.app import start
from control_plane.cli.main import app
from control_plane.config import ConfigError, load_config, parse_config
from db.engine import SchemaOutOfDate, upgrade


def test_minimal_config_defaults() -> None:
    config = parse_config({"n4": {"address": "198.18.0.1"}}, base=Path("/etc/edgecups"))
    assert config.node_id == "198.18.0.1"
    assert config.n4_port == 8805
    assert config.database_url == "sqlite:////etc/edgecups/edgecups.db"  # next to the file
    assert config.api_address == "127.0.0.1"


def test_every_problem_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "n4": {"address": "0.0.0.0", "prot": 1},
                "database": {"url": "mysql://x"},
                "timers": {"t1": -1, "n1": 99},
                "log_level": "loud",
                "colour": "blue",
            }
        )
    errors = "\n".join(info.value.errors)
    for expected in (
        "n4.address: must be a specific address",
        "n4.prot: unknown key",
        "database.url: 'mysql://x'",
        "timers.t1: -1",
        "timers.n1: 99",
        "log_level: 'loud'",
        "colour: unknown key",
    ):
        assert expected in errors


def test_missing_n4_address() -> None:
    with pytest.raises(ConfigError, match=r"n4\.address: required"):
        parse_config({})


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "cp.yaml"
    n4 = {"address": "127.0.0.1", "port": _free_udp_port()}
    path.write_text(yaml.safe_dump({"n4": n4, "database": {"url": url}, "api": {"port": 0, "plaintext": True}}))
    return path


def test_refuses_an_empty_database_and_names_the_fix(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "sqlite:///empty.db"))
    with pytest.raises(SchemaOutOfDate, match="edgecups db upgrade"):
        asyncio.run(start(config, api=False))


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("n4: {address: nowhere}\n")
    result = runner.invoke(app, ["cp", "--config", str(bad)])
    assert result.exit_code == 1
    assert "n4.address: 'nowhere' is not an IP address" in result.output
    result = runner.invoke(app, ["cp", "--config", str(_write(tmp_path, "sqlite:///empty.db"))])
    assert result.exit_code == 1
    assert "edgecups db upgrade" in result.output


def test_starts_on_a_migrated_database_and_keeps_its_recovery_time_stamp(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "sqlite:///cp.db"))
    upgrade(config.database_url)

    async def stamp() -> int:
        cp = await start(config, api=False)
        try:
            return cp.node.endpoint.config.recovery_time_stamp.value
        finally:
            await cp.stop()

    first = asyncio.run(stamp())
    # A restart with its state intact keeps the stamp (TS 23.007 §19A: a new one means state was lost).
    assert asyncio.run(stamp()) == first


def test_a_failed_api_start_releases_what_started_before_it(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "sqlite:///cp.db"))
    upgrade(config.database_url)

    async def fail_then_start(busy_port: int) -> int | None:
        with pytest.raises(OSError):
            await start(dataclasses.replace(config, api_port=busy_port), manage_gc=False)
        # In the same loop: the failed start closed its N4 socket, so the same address binds again.
        cp = await start(config, manage_gc=False)
        try:
            return cp.api_port
        finally:
            await cp.stop()

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert asyncio.run(fail_then_start(taken.getsockname()[1]))
