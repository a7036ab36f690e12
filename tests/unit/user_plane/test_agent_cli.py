"""``edgecups upf --config FILE``: help, configuration errors, and run_agent's lifecycle.

The agent with the real software dataplane, as a process in a network namespace,
is in tests/integration/test_upf_agent.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pfcp
from control_plane.cli import upf_commands
from control_plane.cli.main import app
from tests.fakes.driver import FakeDriver
from tests.unit.user_plane.test_agent import DEADLINE, HOST, UP_NODE, cause_of, config, cp_at
from user_plane.config import OPTIONS

runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "200"})
EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "upf.example.yaml"


def test_help_documents_running_the_agent_and_every_option() -> None:
    result = runner.invoke(app, ["upf", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "edgecups upf --config FILE" in text and "--config" in text and "check-config" in text
    for option in OPTIONS:
        assert f"{option.path}{' *' if option.required else ''}: {' '.join(option.help.split())}" in text


def test_upf_alone_prints_help() -> None:
    result = runner.invoke(app, ["upf"])
    assert result.exit_code == 0 and "--config" in result.stdout


def test_a_configuration_with_problems_exits_1_before_anything_starts(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(EXAMPLE.read_text().replace("log_level: info", "log_levle: info"))
    result = runner.invoke(app, ["upf", "--config", str(broken)])
    assert result.exit_code == upf_commands.EXIT_INVALID
    assert f"{broken}: log_levle: unknown key (did you mean 'log_level'?)" in result.stderr
    vpp = tmp_path / "vpp.yaml"
    vpp.write_text(EXAMPLE.read_text().replace("driver: software", "driver: vpp"))
    result = runner.invoke(app, ["upf", "--config", str(vpp)])
    assert result.exit_code == upf_commands.EXIT_INVALID and "vpp: required with driver: vpp" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["--config", "/nonexistent/upf.yaml"], ["--config", str(EXAMPLE), "check-config", str(EXAMPLE)]],
    ids=["missing-file", "config-with-subcommand"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, ["upf", *args])
    assert result.exit_code == 2, result.output


def test_check_config_still_works() -> None:
    result = runner.invoke(app, ["upf", "check-config", str(EXAMPLE)])
    assert result.exit_code == 0 and result.stdout.startswith(f"{EXAMPLE}: valid")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("how", ["event", "sigterm"])
def test_run_agent_serves_until_stopped_then_stops_the_driver(how: str) -> None:
    port = free_port()
    driver = FakeDriver()

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            upf_commands.run_agent(config(n4={"address": HOST, "port": port}), driver, stop=stop)
        )
        async with cp_at((HOST, port)) as cp:
            for _ in range(100):  # until the agent listens
                try:
                    established = await cp.node.associate(cp.up)
                    break
                except Exception:
                    await asyncio.sleep(0.02)
            assert established.info.node_id == pfcp.NodeID(UP_NODE)
            assert cause_of(await cp.establish(1)) == pfcp.CauseValue.REQUEST_ACCEPTED
            assert len(driver.installed()) == 1
            if how == "event":
                stop.set()
            else:
                os.kill(os.getpid(), signal.SIGTERM)  # run_agent's handler turns it into a clean stop
            await asyncio.wait_for(task, DEADLINE)
        assert driver.methods()[-1] == "stop" and not driver.started and driver.installed() == {}

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    # the signal handlers were removed again: SIGTERM has its default disposition
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_an_agent_that_cannot_bind_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: binding N4 fails after the driver started
    cfg = tmp_path / "upf.yaml"
    text = EXAMPLE.read_text().replace("198.18.0.2", "192.0.2.1")
    cfg.write_text(text)
    driver = FakeDriver()
    monkeypatch.setattr(upf_commands, "_driver", lambda config: driver)
    result = runner.invoke(app, ["upf", "--config", str(cfg)])
    assert result.exit_code == upf_commands.EXIT_START_FAILED, result.output
    assert "the agent could not start" in result.stderr and "Cannot assign requested address" in result.stderr
    assert driver.methods() == ["start", "stop"]
