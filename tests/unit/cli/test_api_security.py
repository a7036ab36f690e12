"""The CLI's credentials against a real control plane serving TLS (and mutual TLS) with bearer tokens.

The tokens are made with ``edgecups api token create`` and its printed entries become the
control plane's tokens file, as an operator would do it. Plaintext with tokens on loopback
proves the token also travels where gRPC sends no call credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.harness.tls import Pki, make_pki
from tests.unit.cli.test_api_cli import EXAMPLES, RunningCp, cli, hermetic_env, running_cp

ROLES = {"ops": "operator", "watcher": "viewer"}


@dataclass
class Secured:
    cp: RunningCp
    pki: Pki
    tokens: dict[str, Path]
    home: Path

    def env(self, **settings: str) -> dict[str, str | None]:
        return hermetic_env(self.home, EDGECUPS_SERVER=self.cp.server, **settings)


def make_tokens(directory: Path) -> dict[str, Path]:
    """A token per holder of ROLES, made by the CLI: secrets in NAME.token, entries in tokens.yaml."""
    env = hermetic_env(directory / "home")
    entries = []
    files = {}
    for name, role in ROLES.items():
        made = cli(env, "api", "token", "create", "--name", name, "--role", role, "-o", "json")
        assert made.exit_code == 0, made.output
        printed = json.loads(made.stdout)
        entries.append(printed["entry"])
        files[name] = directory / f"{name}.token"
        files[name].write_text(printed["token"] + "\n")
    (directory / "tokens.yaml").write_text(yaml.safe_dump(entries))
    return files


def secured(directory: Path, api: dict[str, object]) -> Iterator[Secured]:
    pki = make_pki(directory)
    tokens = make_tokens(directory)
    with running_cp(directory, {**api, "tokens_file": "tokens.yaml"}) as cp:
        yield Secured(cp, pki, tokens, directory / "home")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    yield from secured(tmp_path_factory.mktemp("tls"), {"tls": {"cert": "server.pem", "key": "server.key"}})


@pytest.fixture(scope="module")
def mutual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    tls_files = {"cert": "server.pem", "key": "server.key", "client_ca": "ca.pem"}
    yield from secured(tmp_path_factory.mktemp("mtls"), {"tls": tls_files})


@pytest.fixture(scope="module")
def plaintext(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    yield from secured(tmp_path_factory.mktemp("plain"), {"plaintext": True})


def test_tls_with_an_operator_token_applies_and_a_viewer_only_reads(tls: Secured) -> None:
    ops = tls.env(EDGECUPS_CA=str(tls.pki.ca_cert), EDGECUPS_TOKEN_FILE=str(tls.tokens["ops"]))
    applied = cli(ops, "apply", "-f", str(EXAMPLES))
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines()[-1] == "22 created, 0 updated, 0 unchanged"
    viewer = tls.env(EDGECUPS_CA=str(tls.pki.ca_cert), EDGECUPS_TOKEN_FILE=str(tls.tokens["watcher"]))
    assert cli(viewer, "get", "sites").exit_code == 0
    refused = cli(viewer, "delete", "subscriber", "imsi-001010000000001")
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[0].startswith("error: PERMISSION_DENIED: ")
    assert "needs the role operator" in refused.stderr
    assert refused.stderr.splitlines()[-1].startswith("hint: this needs a token with another role")
    assert cli(viewer, "get", "subscriber", "imsi-001010000000001").exit_code == 0  # still there


def test_tls_without_a_token_or_with_a_wrong_one_is_unauthenticated(tls: Secured, tmp_path: Path) -> None:
    anonymous = cli(tls.env(EDGECUPS_CA=str(tls.pki.ca_cert)), "get", "sites")
    assert anonymous.exit_code == 1
    assert anonymous.stderr.splitlines()[0] == "error: UNAUTHENTICATED: missing bearer token"
    assert anonymous.stderr.splitlines()[1].startswith("hint: give a valid token")
    wrong = cli(tls.env(EDGECUPS_CA=str(tls.pki.ca_cert)), "get", "sites", "--token", "not-a-token")
    assert (wrong.exit_code, wrong.stderr.splitlines()[0]) == (1, "error: UNAUTHENTICATED: invalid token")


def test_tls_failures_are_unreachable(tls: Secured, tmp_path: Path) -> None:
    token = ("--token-file", str(tls.tokens["ops"]))
    # The system's roots do not know the test CA.
    untrusted = cli(tls.env(), "get", "sites", *token)
    assert untrusted.exit_code == 3
    assert untrusted.stderr.startswith(f"error: server unreachable: {tls.cp.server}: ")
    assert "--insecure" in untrusted.stderr.splitlines()[-1]  # the hint
    wrong_name = cli(tls.env(), "get", "sites", *token, "--ca", str(tls.pki.ca_cert), "--server-name", "cp.example")
    assert wrong_name.exit_code == 3
    # Plaintext to a TLS server: no answer either.
    assert cli(tls.env(), "get", "sites", *token, "--insecure").exit_code == 3
    right_name = cli(tls.env(), "get", "sites", *token, "--ca", str(tls.pki.ca_cert), "--server-name", "localhost")
    assert right_name.exit_code == 0, right_name.output


def test_settings_from_a_config_file_with_relative_paths(tls: Secured, tmp_path: Path) -> None:
    config_dir = tmp_path / "edgecups"
    config_dir.mkdir()
    (config_dir / "ca.pem").write_bytes(tls.pki.ca_cert.read_bytes())
    (config_dir / "ops.token").write_text(tls.tokens["ops"].read_text())
    (config_dir / "cli.yaml").write_text(
        yaml.safe_dump({"server": tls.cp.server, "ca": "ca.pem", "token_file": "ops.token", "output": "json"})
    )
    # The default file ($XDG_CONFIG_HOME/edgecups/cli.yaml) and nothing else.
    env = hermetic_env(tmp_path)
    result = cli(env, "get", "dnn", "mec")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metadata"]["name"] == "mec"
    # The environment beats the file, a flag beats both.
    env["EDGECUPS_OUTPUT"] = "yaml"
    assert yaml.safe_load(cli(env, "get", "dnn", "mec").stdout)["kind"] == "DNN"
    assert cli(env, "get", "dnn", "mec", "-o", "table").stdout.splitlines()[0].split()[0] == "NAME"
    env["EDGECUPS_TOKEN_FILE"] = str(tls.tokens["watcher"])
    assert cli(env, "drain", "site", "cloud").exit_code == 1  # a viewer now: PERMISSION_DENIED


def test_mutual_tls_needs_the_client_certificate(mutual: Secured) -> None:
    env = mutual.env(EDGECUPS_CA=str(mutual.pki.ca_cert), EDGECUPS_TOKEN_FILE=str(mutual.tokens["ops"]))
    without = cli(env, "status")
    assert without.exit_code == 3  # the handshake fails: the server never answers
    with_cert = cli(env, "status", "--cert", str(mutual.pki.client_cert), "--key", str(mutual.pki.client_key))
    assert with_cert.exit_code == 0, with_cert.output
    assert with_cert.stdout == "no UPFs\n0 UPFs, 0 associated, 0 drained; sessions 0 of capacity 0\n"
    half = cli(env, "status", "--cert", str(mutual.pki.client_cert))
    assert half.exit_code == 2
    assert "a client certificate needs its key" in half.stderr


def test_plaintext_on_loopback_carries_the_token_as_metadata(plaintext: Secured) -> None:
    env = plaintext.env(EDGECUPS_INSECURE="yes")
    assert cli(env, "get", "sites").stderr.splitlines()[0] == "error: UNAUTHENTICATED: missing bearer token"
    with_token = cli(env, "get", "sites", "--token", plaintext.tokens["watcher"].read_text().strip())
    assert with_token.exit_code == 0, with_token.output
    assert with_token.stdout == "no Site objects\n"
    refused = cli(env, "apply", "-f", str(EXAMPLES), "--token-file", str(plaintext.tokens["watcher"]))
    assert refused.exit_code == 1  # a viewer may read, not apply
    assert "PERMISSION_DENIED" in refused.stderr
