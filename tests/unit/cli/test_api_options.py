"""The CLI's connection settings (flags > environment > config file), usage errors and token creation.

Nothing here needs a control plane: each command either stops before sending anything
(exit 2) or finds nothing listening (exit 3).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from control_plane.api.auth import token_sha256
from control_plane.api.security import parse_api_security
from control_plane.cli.api_options import ConfigProblem, Flags, Output, resolve
from tests.unit.cli.test_api_cli import cli, hermetic_env

# --- precedence --------------------------------------------------------------------------------


def write_config(directory: Path, settings: dict[str, object]) -> Path:
    path = directory / "edgecups" / "cli.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(settings))
    return path


def test_nothing_set_means_tls_to_the_default_server(tmp_path: Path) -> None:
    settings = resolve(Flags(), {"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.server == "127.0.0.1:50051"
    assert not settings.credentials.plaintext
    assert settings.credentials.ca is None and settings.credentials.token is None
    assert (settings.timeout, settings.output) == (30.0, Output.table)


def test_the_config_file_with_paths_from_its_directory(tmp_path: Path) -> None:
    (tmp_path / "edgecups").mkdir()
    (tmp_path / "edgecups" / "ca.pem").write_text("x")
    (tmp_path / "edgecups" / "ops.token").write_text("s3cret\n")
    write_config(tmp_path, {"server": "cp.example:443", "ca": "ca.pem", "token_file": "ops.token", "timeout": 5,
                            "output": "yaml", "server_name": "cp.internal"})  # fmt: skip
    settings = resolve(Flags(), {"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.server == "cp.example:443"
    assert settings.credentials.ca == tmp_path / "edgecups" / "ca.pem"
    assert settings.credentials.token == "s3cret"
    assert settings.credentials.server_name == "cp.internal"
    assert (settings.timeout, settings.output) == (5.0, Output.yaml)


def test_flags_beat_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, {"server": "file:1", "token": "from-file", "output": "yaml"})
    environ = {"XDG_CONFIG_HOME": str(tmp_path), "EDGECUPS_SERVER": "env:2", "EDGECUPS_TOKEN": "from-env"}
    settings = resolve(Flags(), environ)
    assert (settings.server, settings.credentials.token, settings.output) == ("env:2", "from-env", Output.yaml)
    settings = resolve(Flags(server="flag:3", token="from-flag", output=Output.json), environ)
    assert (settings.server, settings.credentials.token, settings.output) == ("flag:3", "from-flag", Output.json)
    # The token and its file are one setting: a token file in the environment beats a token in the file.
    (tmp_path / "env.token").write_text("from-env-file")
    environ = {"XDG_CONFIG_HOME": str(tmp_path), "EDGECUPS_TOKEN_FILE": str(tmp_path / "env.token")}
    assert resolve(Flags(), environ).credentials.token == "from-env-file"


def test_an_explicit_config_file(tmp_path: Path) -> None:
    other = write_config(tmp_path / "elsewhere", {"server": "unix:/run/edgecups/api.sock"})
    by_flag = resolve(Flags(config=other), {"XDG_CONFIG_HOME": str(tmp_path)})
    by_env = resolve(Flags(), {"XDG_CONFIG_HOME": str(tmp_path), "EDGECUPS_CONFIG": str(other)})
    assert by_flag.server == by_env.server == "unix:/run/edgecups/api.sock"
    assert by_flag.credentials.plaintext  # a unix socket: plaintext unless told otherwise
    assert not resolve(Flags(config=other, insecure=False), {}).credentials.plaintext


@pytest.mark.parametrize(
    ("flags", "environ", "config", "expected"),
    [
        (Flags(config=Path("/nonexistent/cli.yaml")), {}, None, "/nonexistent/cli.yaml: no such configuration file"),
        (Flags(), {}, {"sever": "x"}, "sever: unknown setting (settings: server, ca,"),
        (Flags(), {}, {"insecure": "maybe"}, "insecure: 'maybe' is not true or false"),
        (Flags(), {"EDGECUPS_INSECURE": "maybe"}, None, "EDGECUPS_INSECURE: 'maybe' is not true or false"),
        (Flags(), {"EDGECUPS_TIMEOUT": "-1"}, None, "EDGECUPS_TIMEOUT: '-1' is not a number of seconds above 0"),
        (Flags(), {"EDGECUPS_OUTPUT": "xml"}, None, "EDGECUPS_OUTPUT: 'xml' is not one of table, json, yaml"),
        (Flags(token="a", token_file=Path("f")), {}, None, "--token and --token-file: give the token or its file"),
        (Flags(token_file=Path("/nonexistent/t")), {}, None, "--token-file: cannot read the token file"),
        (Flags(token="two words"), {}, None, "the token must be printable ASCII without spaces"),
        (Flags(server="cp.example:50051", insecure=True), {}, None, "plaintext to cp.example:50051 refused"),
        (Flags(insecure=True, ca=Path("ca.pem")), {}, None, "--ca: TLS options, but the connection is plaintext"),
        (Flags(cert=Path("/etc/hostname")), {}, None, "--cert and --key: a client certificate needs its key"),
        (Flags(ca=Path("/nonexistent/ca.pem")), {}, None, "--ca: cannot read /nonexistent/ca.pem"),
        (Flags(timeout=0), {}, None, "--timeout: 0 is not a number of seconds above 0"),
    ],
)
def test_bad_settings_are_named(
    tmp_path: Path, flags: Flags, environ: dict[str, str], config: dict[str, object] | None, expected: str
) -> None:
    if config is not None:
        write_config(tmp_path, config)
    with pytest.raises(ConfigProblem) as info:
        resolve(flags, {"XDG_CONFIG_HOME": str(tmp_path), **environ})
    assert any(expected in line for line in info.value.errors), info.value.errors


def test_every_problem_at_once(tmp_path: Path) -> None:
    write_config(tmp_path, {"timeout": "soon", "colour": "blue"})
    with pytest.raises(ConfigProblem) as info:
        resolve(Flags(), {"XDG_CONFIG_HOME": str(tmp_path), "EDGECUPS_OUTPUT": "xml"})
    assert len(info.value.errors) == 3


# --- exit statuses without a server --------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens


def test_a_config_problem_exits_2_before_anything_is_sent(tmp_path: Path) -> None:
    env = hermetic_env(tmp_path, EDGECUPS_SERVER="cp.example:50051", EDGECUPS_INSECURE="1")
    result = cli(env, "get", "sites")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: EDGECUPS_INSECURE: plaintext to cp.example:50051 refused")


def test_nothing_listening_exits_3(tmp_path: Path) -> None:
    server = f"127.0.0.1:{closed_port()}"
    result = cli(hermetic_env(tmp_path), "status", "--server", server, "--insecure", "-o", "json")
    assert result.exit_code == 3
    error = json.loads(result.stderr.splitlines()[0])["error"]
    assert error["code"] == "UNAVAILABLE"
    assert result.stderr.splitlines()[1].startswith(f"error: server unreachable: {server}: ")
    assert cli(hermetic_env(tmp_path), "session", "list", "--server", server, "--insecure").exit_code == 3
    # A valid manifest set is sent as it is; the first call finds nobody.
    examples = Path(__file__).resolve().parents[3] / "edge_sites" / "examples"
    assert cli(hermetic_env(tmp_path), "apply", "-f", str(examples), "--server", server, "--insecure").exit_code == 3
    # A set referring to what only the server could have: its problems are shown, the exit says why it stopped.
    subscriber = tmp_path / "subscriber.yaml"
    subscriber.write_text(
        "apiVersion: edgecups/v1\nkind: Subscriber\nmetadata: {name: imsi-001019}\nspec: {allowed_dnns: [ims]}\n"
    )
    result = cli(hermetic_env(tmp_path), "apply", "-f", str(subscriber), "--server", server, "--insecure")
    assert result.exit_code == 3
    assert "spec.allowed_dnns[0]: unknown DNN 'ims': not defined in these manifests" in result.stderr
    assert "error: server unreachable: " in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("get", "upfz"), "'upfz' is not a kind (did you mean UPF?)"),
        (("get", "widgets"), "expected one of Site, UPF, DNN, Pool, Policy, Subscriber"),
        (("get", "upf", "x", "--site", "edge-1"), "--site and --dnn filter a listing"),
        (("apply",), "give the manifests to apply"),
        (("delete", "site"), "give KIND and NAME, or -f FILE"),
        (("delete", "site", "x", "-f", "m.yaml"), "give KIND NAME or -f FILE, not both"),
        (("events", "--since", "-1"), "Invalid value for '--since'"),
        (("session", "create", "imsi-00101"), "Missing option"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = cli(hermetic_env(tmp_path, EDGECUPS_SERVER=f"127.0.0.1:{closed_port()}", EDGECUPS_INSECURE="1"), *args)
    assert result.exit_code == 2
    assert message in result.output


def test_kinds_in_any_case_and_plural(tmp_path: Path) -> None:
    from control_plane.cli.provision_commands import canonical_kind

    assert [canonical_kind(k) for k in ("SITES", "upf", "Upfs", "dnn", "pools", "Policies", "subscriber")] == [
        "Site", "UPF", "UPF", "DNN", "Pool", "Policy", "Subscriber"
    ]  # fmt: skip


# --- api token create ----------------------------------------------------------------------------


def test_token_create_prints_the_secret_once_and_an_entry_the_control_plane_accepts(tmp_path: Path) -> None:
    result = cli(hermetic_env(tmp_path), "api", "token", "create", "--name", "ops", "--role", "operator",
                 "--role", "viewer")  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    token = lines[1].strip()
    entry_text = "\n".join(lines[3:])
    (entry,) = yaml.safe_load(entry_text)
    assert entry == {"name": "ops", "roles": ["operator", "viewer"], "token_sha256": token_sha256(token)}
    assert token not in entry_text  # the file keeps the hash only
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text(entry_text)
    security = parse_api_security({"plaintext": True, "tokens_file": str(tokens_file)}, base_dir=tmp_path, environ={})
    assert [(t.name, sorted(t.roles)) for t in security.tokens] == [("ops", ["operator", "viewer"])]
    other = json.loads(cli(hermetic_env(tmp_path), "api", "token", "create", "--name", "x", "--role", "session",
                           "-o", "json").stdout)  # fmt: skip
    assert other["token"] != token  # a new secret every time
    assert other["entry"]["token_sha256"] == token_sha256(other["token"])


def test_token_create_refuses_an_unknown_role(tmp_path: Path) -> None:
    result = cli(hermetic_env(tmp_path), "api", "token", "create", "--name", "ops", "--role", "admin")
    assert result.exit_code == 2
    assert "unknown role 'admin'" in result.stderr
    assert result.stdout == ""
