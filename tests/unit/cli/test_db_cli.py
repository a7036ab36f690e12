"""``edgecups db upgrade|downgrade|current|check``: URL from --url or --config, one-line errors, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from control_plane.cli import db_commands
from control_plane.config import load_config
from db.engine import head_revision, make_engine

runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "200"})

# Built here as the lead's main.py registers it: `edgecups db ...`.
cli = typer.Typer()
cli.add_typer(db_commands.app, name="db")


def db(*args: str) -> Result:
    result = runner.invoke(cli, ["db", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_upgrade_current_check_and_downgrade(database_url: str) -> None:
    head = head_revision()
    engine = make_engine(database_url)
    engine.connect().close()  # an empty database (SQLite: the file exists)
    engine.dispose()
    result = db("check", "--url", database_url)
    assert result.exit_code == 1
    assert "edgecups db upgrade --config FILE" in result.stderr
    assert db("current", "--url", database_url).stdout == "base (no migration applied)\n"

    result = db("upgrade", "--url", database_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"database at revision {head} (head)\n")
    assert db("current", "--url", database_url).stdout == f"{head} (head)\n"
    result = db("check", "--url", database_url)
    assert (result.exit_code, result.stdout) == (0, f"schema up to date (revision {head})\n")

    result = db("downgrade", "base", "--url", database_url)
    assert (result.exit_code, result.stdout) == (0, "database at revision base (no migration applied)\n")
    assert db("check", "--url", database_url).exit_code == 1


def test_the_url_comes_from_the_config_file(tmp_path: Path) -> None:
    database = tmp_path / "cp.db"
    config = tmp_path / "cp.yaml"
    config.write_text(f"node_id: cp.example.org\ndatabase:\n  url: sqlite:///{database}\n")
    assert db("upgrade", "--config", str(config)).exit_code == 0
    assert database.is_file()
    assert db("check", "-c", str(config)).exit_code == 0
    # check names the configuration file in the command it suggests.
    assert db("downgrade", "base", "--config", str(config)).exit_code == 0
    result = db("check", "--config", str(config))
    assert result.exit_code == 1
    assert f"run: edgecups db upgrade --config {config}" in result.stderr


def test_a_relative_sqlite_path_in_the_config_file_is_next_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    config = tmp_path / "etc" / "cp.yaml"
    config.write_text("database: {url: 'sqlite:///state/cp.db'}\n")
    (tmp_path / "etc" / "state").mkdir()
    assert db("upgrade", "--config", str(config)).exit_code == 0
    assert (tmp_path / "etc" / "state" / "cp.db").is_file()
    assert list((tmp_path / "cwd").iterdir()) == []


def test_a_config_file_without_database_url_uses_the_control_planes_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    config = tmp_path / "etc" / "cp.yaml"
    config.write_text("n4: {address: 198.18.0.1}\n")
    assert db("upgrade", "--config", str(config)).exit_code == 0
    # The very file the control plane opens with this configuration: edgecups.db next to it.
    assert load_config(config).database_url == f"sqlite:///{tmp_path / 'etc' / 'edgecups.db'}"
    assert (tmp_path / "etc" / "edgecups.db").is_file()
    assert list((tmp_path / "cwd").iterdir()) == []


def test_the_default_database_is_edgecups_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = db("current")
    assert result.exit_code == 1
    assert "edgecups.db does not exist" in result.stderr
    assert not (tmp_path / "edgecups.db").exists()  # current and check never create it
    assert db("upgrade").exit_code == 0
    assert (tmp_path / "edgecups.db").is_file()


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        ("database: [1, 2]\n", "database: expected a mapping"),
        ("database:\n  url: 5\n", "database.url: expected a database URL string"),
        ("database: {url: 'mysql://u@h/db'}\n", "unsupported database 'mysql'"),
        ("- a list\n", "expected a mapping at the top level"),
        ("database: {url: [\n", "not valid YAML"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_1(tmp_path: Path, config_text: str, expected: str) -> None:
    config = tmp_path / "cp.yaml"
    config.write_text(config_text)
    result = db("check", "--config", str(config))
    assert result.exit_code == 1
    assert expected in result.stderr
    assert result.stdout == ""


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    cases = [
        (("check", "--config", str(tmp_path / "absent.yaml")), "cannot read"),
        (("check", "--url", "sqlite:///x.db", "--config", "cp.yaml"), "give --url or --config, not both"),
        (("upgrade", "--url", f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"), "unable to open database file"),
        (("upgrade", "--url", "postgresql+psycopg://nobody@127.0.0.1:1/x"), "database postgresql+psycopg://nobody@"),
        (("upgrade", "--url", f"sqlite:///{tmp_path / 'a.db'}", "--revision", "zzz"), "migration failed"),
        (("downgrade", "nonexistent", "--url", f"sqlite:///{tmp_path / 'a.db'}"), "migration failed"),
        (("downgrade", "base", "--url", f"sqlite:///{tmp_path / 'b.db'}"), "b.db does not exist"),
    ]
    for args, expected in cases:
        result = db(*args)
        assert result.exit_code == 1, (args, result.output)
        assert expected in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
