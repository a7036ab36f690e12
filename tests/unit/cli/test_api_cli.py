"""The edgecups CLI against a real control plane: apply the example manifests, read them back, change them.

The control plane (control_plane.app.start) runs on SQLite in a temporary directory with its
API on a free loopback port, on an event loop in a background thread; the CLI runs in the
test's thread exactly as an operator's shell would run it (typer's CliRunner), or as a
subprocess for ``events --follow``. A UPF agent (the real one, over the recording driver
double of tests/fakes/driver.py) associates for the session commands. Assertions read what
the CLI printed and what the control plane holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from typer.testing import CliRunner, Result

from control_plane.app import ControlPlane, start
from control_plane.cli.main import app
from control_plane.config import parse_config
from db.engine import upgrade
from edge_sites import KINDS, load_manifests, to_document

T = TypeVar("T")
EXAMPLES = Path(__file__).resolve().parents[3] / "edge_sites" / "examples"
PLURALS = ("sites", "UPFs", "dnns", "Pools", "policies", "subscribers")


# --- harness (test_api_sessions.py uses it too) --------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningCp:
    cp: ControlPlane
    loop: asyncio.AbstractEventLoop

    @property
    def server(self) -> str:
        if self.cp.config.api_address.startswith("unix:"):
            return self.cp.config.api_address
        assert self.cp.api_port is not None
        return f"127.0.0.1:{self.cp.api_port}"

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the control plane's event loop; its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(60)


@contextmanager
def running_cp(directory: Path, api: Mapping[str, Any] | None = None) -> Iterator[RunningCp]:
    """A control plane on a fresh database in ``directory``; its ``api`` section (TLS, tokens) as given,
    paths from ``directory`` (default: plaintext on loopback, no tokens)."""
    url = f"sqlite:///{directory / 'cp.db'}"
    upgrade(url)
    config = parse_config(
        {
            "n4": {"address": "127.0.0.1", "port": free_udp_port()},
            "database": {"url": url},
            "api": {"address": "127.0.0.1", "port": 0, **(api or {"plaintext": True})},
            "timers": {"t1": 0.2, "n1": 1, "heartbeat_interval": 1, "reassociate_interval": 0.5},
        },
        base=directory,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="control-plane", daemon=True)
    thread.start()
    running = RunningCp(asyncio.run_coroutine_threadsafe(start(config), loop).result(60), loop)
    try:
        yield running
    finally:
        running.run(running.cp.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def hermetic_env(home: Path, **settings: str) -> dict[str, str | None]:
    """The environment of a CLI run: no EDGECUPS_* from the caller's, a config directory of its own."""
    env: dict[str, str | None] = dict.fromkeys((name for name in os.environ if name.startswith("EDGECUPS_")), None)
    env |= {"XDG_CONFIG_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "250", **settings}
    return env


def cli(env: Mapping[str, str | None], *args: str) -> Result:
    """``edgecups ARGS`` in process, stdout and stderr apart; a crash fails the test."""
    result = CliRunner(env=dict(env)).invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    return result


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCp]:
    with running_cp(tmp_path_factory.mktemp("cp")) as running:
        yield running


@pytest.fixture(scope="module")
def env(cp: RunningCp, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """The examples applied; settings from the environment, as a shell session would hold them."""
    env = hermetic_env(tmp_path_factory.mktemp("home"), EDGECUPS_SERVER=cp.server, EDGECUPS_INSECURE="true")
    result = cli(env, "apply", "-f", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    return env


# --- apply and read back ---------------------------------------------------------------------


def test_apply_the_examples_read_them_back_and_apply_that_unchanged(tmp_path: Path) -> None:
    with running_cp(tmp_path) as running:
        env = hermetic_env(tmp_path / "home")
        # Flags only: --server and --insecure (plaintext on loopback).
        flags = ("--server", running.server, "--insecure")
        dry = cli(env, "apply", "-f", str(EXAMPLES), "--dry-run", *flags)
        assert dry.exit_code == 0, dry.output
        assert "+ UPF 198.18.1.10 (create)" in dry.stdout
        assert dry.stdout.rstrip().endswith(
            "22 to create, 0 to update, 0 unchanged (objects not in the manifests are left as they are)"
        )
        assert cli(env, "get", "sites", *flags).stdout == "no Site objects\n"  # the dry run wrote nothing

        applied = cli(env, "apply", "-f", str(EXAMPLES), *flags)
        assert applied.exit_code == 0, applied.output
        assert applied.stdout.splitlines()[0] == "+ Site edge-1 (created)"  # kind order: sites first
        assert applied.stdout.splitlines()[-1] == "22 created, 0 updated, 0 unchanged"

        # Every kind back as manifest documents, exactly as the manifests mean them.
        written = {m.key: to_document(m.kind, m.name, m.spec) for m in load_manifests([EXAMPLES])}
        exported: list[dict[str, Any]] = []
        for kind, plural in zip(KINDS, PLURALS, strict=True):
            got = cli(env, "get", plural, "-o", "yaml", *flags)
            assert got.exit_code == 0, got.output
            docs = documents(got.stdout)
            assert {doc["kind"] for doc in docs} == {kind}
            for doc in docs:
                doc.pop("status", None)  # observed state: apply ignores it
                assert doc == written[kind, doc["metadata"]["name"]]
            exported += docs
        assert len(exported) == len(written)
        # The UPFs as printed, observed state (status) included: apply takes that too.
        others = [doc for doc in exported if doc["kind"] != "UPF"]
        upfs = cli(env, "get", "upf", "-o", "yaml", *flags).stdout
        assert "status:" in upfs
        export = tmp_path / "exported.yaml"
        export.write_text(yaml.safe_dump_all(others, sort_keys=False) + upfs)
        again = cli(env, "apply", "-f", str(export), *flags)
        assert again.exit_code == 0, again.output
        assert again.stdout.splitlines()[-1] == "0 created, 0 updated, 22 unchanged"
        as_json = json.loads(cli(env, "apply", "-f", str(EXAMPLES), "-o", "json", *flags).stdout)
        assert as_json["dry_run"] is False
        assert {change["action"] for change in as_json["changes"]} == {"unchanged"}
        assert len(as_json["changes"]) == 22


def test_get_tables_filters_and_one_object(env: dict[str, str | None]) -> None:
    upfs = cli(env, "get", "upfs")
    assert upfs.exit_code == 0
    header, *rows = upfs.stdout.splitlines()
    assert header.split()[:4] == ["NODE", "ID", "SITE", "N4"]
    assert len(rows) == 5
    edge = cli(env, "get", "pools", "--site", "edge-2").stdout.splitlines()
    assert [line.split()[0] for line in edge[1:]] == ["mec-edge-2"]
    assert "10.102.0.0/20" in edge[1]
    internet = cli(env, "get", "Policy", "--dnn", "internet").stdout.splitlines()
    assert [line.split()[0] for line in internet[1:]] == ["internet-default"]
    one = json.loads(cli(env, "get", "pool", "mec-edge-1", "-o", "json").stdout)
    assert one["spec"] == {"dnn": "mec", "site": "edge-1", "cidr": "10.101.0.0/20", "prefix_length": 32}
    assert one["status"] == {"used": 0, "free": 4094, "size": 4094}  # network and broadcast addresses left out
    listing = json.loads(cli(env, "get", "SUBSCRIBERS", "-o", "json").stdout)
    assert [doc["metadata"]["name"] for doc in listing] == [f"imsi-00101000000000{n}" for n in (1, 2, 3)]


def test_describe_a_upf_shows_every_field_and_its_observed_state(env: dict[str, str | None]) -> None:
    result = cli(env, "describe", "upf", "upf-1.edge-3.edgecups.example")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == ["Kind: UPF", "Name: upf-1.edge-3.edgecups.example", "Spec:"]
    fields = {line.split(":")[0].strip(): line.split(":", 1)[1].strip() for line in lines[3:] if ":" in line}
    assert fields["site"] == "edge-3"
    assert fields["teid_allocation"] == "up"
    assert fields["access_network_instance"] == "-"  # unset fields are shown too
    assert fields["association"] in ("idle", "setup-sent", "releasing")  # nothing answers at 198.18.3.10
    assert fields["sessions"] == "0"
    assert lines[-1] == "Sessions by state: none"
    as_yaml = yaml.safe_load(cli(env, "describe", "UPF", "198.18.1.10", "-o", "yaml").stdout)
    assert as_yaml["spec"]["capacity"] == 2000
    assert set(as_yaml["status"]) >= {"health", "association", "features", "sessions", "sessions_by_state"}


def test_a_delete_the_server_refuses_exits_1_with_code_field_and_message(env: dict[str, str | None]) -> None:
    result = cli(env, "delete", "site", "edge-1")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: FAILED_PRECONDITION: name: Site edge-1 is in use by UPF 198.18.1.10")
    assert cli(env, "get", "site", "edge-1").exit_code == 0  # still there
    as_json = cli(env, "delete", "site", "edge-1", "-o", "json")
    error = json.loads(as_json.stderr.splitlines()[0])["error"]
    assert (error["code"], error["field"]) == ("FAILED_PRECONDITION", "name")
    missing = cli(env, "get", "upf", "198.18.9.9")
    assert (missing.exit_code, missing.stderr) == (1, "error: NOT_FOUND: name: no UPF '198.18.9.9'\n")


EXTRA = """\
apiVersion: edgecups/v1
kind: Policy
metadata: {name: internet-gold}
spec: {dnn: internet, snssai: "2-000001", qfi: 5, five_qi: 7, session_ambr_ul_kbps: 1000, session_ambr_dl_kbps: 5000}
---
apiVersion: edgecups/v1
kind: Subscriber
metadata: {name: imsi-001010000000099}
spec: {allowed_dnns: [internet], policy: internet-gold}
"""


def test_apply_referencing_server_objects_update_and_delete_by_manifest(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA)  # refers to DNN internet, which only the server has
    created = cli(env, "apply", "-f", str(extra))
    assert created.exit_code == 0, created.output
    assert created.stdout.splitlines()[:2] == [
        "+ Policy internet-gold (created)",
        "+ Subscriber imsi-001010000000099 (created)",
    ]
    extra.write_text(EXTRA.replace("five_qi: 7", "five_qi: 8"))
    planned = cli(env, "apply", "-f", str(extra), "--dry-run")
    assert planned.exit_code == 0  # changes pending are no failure
    assert planned.stdout.splitlines()[:2] == ["~ Policy internet-gold (update)", "    five_qi: 7 -> 8"]
    assert yaml.safe_load(cli(env, "get", "policy", "internet-gold", "-o", "yaml").stdout)["spec"]["five_qi"] == 7
    assert cli(env, "apply", "-f", str(extra)).stdout.splitlines()[:2] == [
        "~ Policy internet-gold (updated)",
        "    five_qi: 7 -> 8",
    ]

    deleted = cli(env, "delete", "-f", str(extra))  # the subscriber first: it uses the policy
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.splitlines() == [
        "- Subscriber imsi-001010000000099 (deleted)",
        "- Policy internet-gold (deleted)",
    ]
    again = cli(env, "delete", "-f", str(extra))
    assert again.exit_code == 1
    assert again.stdout.splitlines() == [
        "Subscriber imsi-001010000000099: not found",
        "Policy internet-gold: not found",
    ]
    assert cli(env, "delete", "-f", str(extra), "--ignore-not-found").exit_code == 0


def test_invalid_manifests_exit_2_with_their_messages_and_nothing_is_sent(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXTRA.replace("qfi: 5", "qfi: 64").replace("allowed_dnns: [internet]", "allowed_dnns: [intranet]"))
    events_before = cli(env, "events", "-o", "json").stdout.splitlines()
    result = cli(env, "apply", "-f", str(bad))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert f"{bad}:document 1 (Policy internet-gold): spec.qfi: 64 is out of range (expected 1..63)" in lines
    assert any(
        line.startswith(
            f"{bad}:document 2 (Subscriber imsi-001010000000099): spec.allowed_dnns[0]: unknown DNN 'intranet'"
        )
        and "did you mean 'internet'" in line
        for line in lines
    ), lines
    # The invalid policy is not in the set: the subscriber's reference to it is a third problem.
    assert any(
        "spec.policy: unknown Policy 'internet-gold': not defined in these manifests nor on the server" in line
        for line in lines
    ), lines
    assert lines[-1] == "3 problem(s) in the manifests: nothing was sent"
    assert cli(env, "get", "policy", "internet-gold").exit_code == 1
    assert cli(env, "events", "-o", "json").stdout.splitlines() == events_before


def test_drain_and_undrain_a_upf_and_a_site(env: dict[str, str | None]) -> None:
    drained = cli(env, "drain", "upf", "198.18.2.10")
    assert drained.exit_code == 0, drained.output
    assert drained.stdout.splitlines()[1].split()[:3] == ["198.18.2.10", "edge-2", "drained"]
    assert (
        yaml.safe_load(cli(env, "get", "upf", "198.18.2.10", "-o", "yaml").stdout)["spec"]["admin_state"] == "drained"
    )
    site = cli(env, "drain", "site", "cloud", "-o", "json")
    assert [(u["metadata"]["name"], u["spec"]["admin_state"]) for u in json.loads(site.stdout)] == [
        ("198.18.0.10", "drained"),
        ("198.18.0.11", "drained"),
    ]
    status = cli(env, "status").stdout.splitlines()
    assert "3 drained" in status[-1]
    assert cli(env, "undrain", "site", "cloud").exit_code == 0
    assert cli(env, "undrain", "upf", "198.18.2.10").stdout.splitlines()[1].split()[2] == "enabled"
    kinds = [
        json.loads(line)["kind"]
        for line in cli(
            env, "events", "--kind", "upf.drained", "--kind", "upf.undrained", "-o", "json"
        ).stdout.splitlines()
    ]
    assert kinds.count("upf.drained") >= 3 and kinds.count("upf.undrained") >= 3
    assert cli(env, "drain", "upf", "198.18.9.9").exit_code == 1
    assert cli(env, "drain", "router", "x").exit_code == 2


def test_events_show_provisioning_and_follow_prints_new_ones(env: dict[str, str | None], tmp_path: Path) -> None:
    listed = cli(env, "events", "--kind", "site", "-o", "json")
    assert listed.exit_code == 0, listed.output
    sites = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(e["kind"], e["detail"]["name"]) for e in sites[:4]] == [
        ("site.created", "edge-1"), ("site.created", "edge-2"), ("site.created", "edge-3"), ("site.created", "cloud")
    ]  # fmt: skip
    table = cli(env, "events", "--kind", "pool.created").stdout.splitlines()
    assert len(table) == 5 and all(line.split()[2] == "pool.created" for line in table)
    last = json.loads(cli(env, "events", "-o", "json").stdout.splitlines()[-1])["id"]

    # --follow in a process of its own, from the last id seen: it cannot miss the change below.
    follow = subprocess.Popen(
        [sys.executable, "-m", "control_plane.cli.main", "events", "--follow", "--since", str(last),
         "--kind", "site", "--count", "1", "-o", "json"],
        env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        site = tmp_path / "site.yaml"
        site.write_text(
            "apiVersion: edgecups/v1\nkind: Site\nmetadata: {name: edge-9}\nspec: {kind: edge, region: r9}\n"
        )
        assert cli(env, "apply", "-f", str(site)).exit_code == 0
        out, err = follow.communicate(timeout=30)
    finally:
        follow.kill()
    assert follow.returncode == 0, err
    event = json.loads(out)
    assert (event["kind"], event["detail"]["name"]) == ("site.created", "edge-9")
    assert event["id"] > last
    assert cli(env, "delete", "site", "edge-9").exit_code == 0


def test_status_lists_every_upf(env: dict[str, str | None]) -> None:
    result = cli(env, "status")
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()[1:-1]
    assert sorted(row.split()[0] for row in rows) == sorted(
        ["198.18.0.10", "198.18.0.11", "198.18.1.10", "198.18.2.10", "upf-1.edge-3.edgecups.example"]
    )
    as_json = json.loads(cli(env, "status", "-o", "json").stdout)
    assert as_json["totals"]["upfs"] == 5
    assert as_json["totals"]["capacity"] == 45000
    assert {u["node_id"]: u["site"] for u in as_json["upfs"]}["198.18.2.10"] == "edge-2"


def test_a_unix_socket_is_reached_in_plaintext_without_being_told(tmp_path: Path) -> None:
    with running_cp(tmp_path, {"address": f"unix:{tmp_path / 'api.sock'}", "plaintext": True}) as running:
        env = hermetic_env(tmp_path / "home", EDGECUPS_SERVER=running.server)  # no EDGECUPS_INSECURE
        result = cli(env, "status")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("no UPFs\n")
        assert cli(env, "status", "--tls").exit_code == 3  # TLS was asked for: nothing answers it
