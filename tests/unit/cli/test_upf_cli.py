"""``edgecups upf check-config``: summary, JSON, problems one per line, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from control_plane.cli import upf_commands
from control_plane.cli.main import app
from user_plane.config import OPTIONS, load_config, parse_config

runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "200"})

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "upf.example.yaml"


def check(*args: str) -> Result:
    result = runner.invoke(app, ["upf", "check-config", *args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    text = EXAMPLE.read_text()
    text = text.replace("198.19.128.0/17", "198.19.0.0/33").replace("log_level: info", "log_levle: info")
    path.write_text(text)
    return path


@pytest.fixture
def vpp(tmp_path: Path) -> Path:
    path = tmp_path / "vpp.yaml"
    path.write_text(EXAMPLE.read_text().replace("driver: software", "driver: vpp"))
    return path


def test_example_summary() -> None:
    result = check(str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"{EXAMPLE}: valid"
    assert lines[1:] == [
        "Node ID      upf1.edge.example.org (FQDN)",
        "N4           198.18.0.2 port 8805",
        "N3           198.18.1.2, 2001:db8:3::2",
        "N6 internet  device n6-internet, UE pool 198.19.0.0/17, 2001:db8:100::/48, gateway 198.18.2.1",
        "N6 ims       device n6-ims, UE pool 198.19.128.0/17",
        "Allowed CPs  smf1.core.example.org (Node ID), 198.18.0.1 (source), 2001:db8:4::/64 (source)",
        "Features     FTUP",
        "Driver       software",
        "Log level    info",
        "Capacity     100000 sessions",
        "Timers       T1 3 s, N1 3, heartbeat every 30 s",
    ]


def test_example_as_json() -> None:
    result = check(str(EXAMPLE), "-o", "json")
    assert result.exit_code == 0, result.output
    record: dict[str, Any] = json.loads(result.stdout)
    assert record == {
        "file": str(EXAMPLE),
        "valid": True,
        "errors": [],
        "config": load_config(EXAMPLE).to_mapping(),
    }
    assert parse_config(record["config"]) == load_config(EXAMPLE)


def test_problems_one_per_line_exit_1(broken: Path) -> None:
    result = check(str(broken))
    assert result.exit_code == upf_commands.EXIT_INVALID == 1
    assert result.stdout == ""  # no summary of a configuration that did not load
    assert result.stderr.splitlines() == [
        f"{broken}: log_levle: unknown key (did you mean 'log_level'?); expected one of node_id, n4, n3, n6, "
        "allowed_cps, features, driver, log_level, capacity, timers, mqtt, metrics, vpp",
        f"{broken}: n6.ims.ue_pool: '198.19.0.0/33' is not an IP network",
    ]


def test_problems_as_json(broken: Path) -> None:
    result = check(str(broken), "--output", "json")
    assert result.exit_code == 1
    record = json.loads(result.stdout)
    assert record["valid"] is False
    assert record["config"] is None
    assert record["errors"][1] == "n6.ims.ue_pool: '198.19.0.0/33' is not an IP network"
    assert len(record["errors"]) == 2


def test_vpp_driver_without_its_section_is_valid_but_not_runnable(vpp: Path) -> None:
    result = check(str(vpp))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"{vpp}: valid, but not runnable by this build"
    assert "Driver       vpp" in result.stdout.splitlines()
    missing = "vpp: required with driver: vpp (VPP's API socket, its N3/N6 interfaces, a VRF per instance)"
    assert result.stderr == f"{vpp}: {missing}\n"
    record = json.loads(check(str(vpp), "-o", "json").stdout)
    assert record["valid"] is False
    assert record["config"]["driver"] == "vpp"
    assert record["errors"] == [missing]


def test_yaml_syntax_error_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("node_id: a\nn4: [\n")
    result = check(str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}: line 3, column 1: ")


@pytest.mark.parametrize(
    "args",
    [
        [],  # no FILE
        ["/nonexistent/upf.yaml"],
        [str(EXAMPLE.parent)],  # a directory
        [str(EXAMPLE), "-o", "xml"],
        [str(EXAMPLE), "--config", "x"],
    ],
    ids=["no-file", "missing", "directory", "bad-output", "unknown-option"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = check(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""


def test_check_config_help_documents_every_option() -> None:
    result = runner.invoke(app, ["upf", "check-config", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    for option in OPTIONS:
        assert f"{option.path}{' *' if option.required else ''}: {' '.join(option.help.split())}" in text


def test_unreadable_file_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(upf_commands, "load_config", refuse)
    result = check(str(EXAMPLE))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr and "Permission denied" in result.stderr
