"""``edgecups session ...`` against a real control plane and a real UPF agent over PFCP on loopback.

The example manifests are applied, then one more UPF at the edge-1 site: the UPF agent
(user_plane.agent.UpfAgent over the recording driver double of tests/fakes/driver.py),
which the control plane associates with. Sessions at edge-1 land on it; edge-2's UPF
(198.18.2.10) never answers, so sessions there are refused with UNAVAILABLE.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.driver import FakeDriver
from tests.unit.cli.test_api_cli import EXAMPLES, RunningCp, cli, hermetic_env, running_cp
from user_plane.agent import UpfAgent
from user_plane.config import parse_config

UPF = "upf-cli.test"
N3 = "198.19.1.99"
SUPI = "imsi-001010000000001"
AT_EDGE_1 = ("--dnn", "mec", "--snssai", "1", "--tai", "001-01-000001")


@dataclass
class Deployment:
    cp: RunningCp
    env: dict[str, str | None]
    driver: FakeDriver


def upf_manifest(port: int) -> str:
    return f"""\
apiVersion: edgecups/v1
kind: UPF
metadata: {{name: {UPF}}}
spec: {{site: edge-1, n4_address: 127.0.0.1, n4_port: {port}, n3_addresses: [{N3}], network_instances: [mec],
        capacity: 10}}
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("deployment")
    with running_cp(directory) as cp:
        env = hermetic_env(directory / "home", EDGECUPS_SERVER=cp.server, EDGECUPS_INSECURE="1")
        assert cli(env, "apply", "-f", str(EXAMPLES)).exit_code == 0
        driver = FakeDriver()
        config = {
            "node_id": UPF,
            "n4": {"address": "127.0.0.1"},
            "n3": [N3],
            # mec-local: the N6 of the mec policies' local breakout rules.
            "n6": {"mec": {"interface": "n6-mec", "ue_pool": "10.101.0.0/20"},
                   "mec-local": {"interface": "n6-local", "ue_pool": "10.200.0.0/16"}},
            "allowed_cps": ["127.0.0.1"],
        }  # fmt: skip
        agent = UpfAgent(parse_config(config), driver, manage_gc=False)
        _host, port = cp.run(agent.start(port=0))
        try:
            manifest = directory / "upf.yaml"
            manifest.write_text(upf_manifest(port))
            assert cli(env, "apply", "-f", str(manifest)).exit_code == 0
            deadline = time.monotonic() + 30
            while json.loads(cli(env, "get", "upf", UPF, "-o", "json").stdout)["status"]["association"] != "associated":
                assert time.monotonic() < deadline, "the control plane did not associate with the UPF agent"
                time.sleep(0.1)
            yield Deployment(cp, env, driver)
        finally:
            cp.run(agent.stop())


def test_no_upf_to_take_the_session_is_unavailable_from_the_server(deployment: Deployment) -> None:
    result = cli(deployment.env, "session", "create", SUPI, "--dnn", "mec", "--snssai", "1", "--tai", "001-01-000002")
    assert result.exit_code == 1  # the server answered: not "unreachable" (3)
    assert result.stderr.startswith("error: UNAVAILABLE: every UPF serving DNN 'mec'")
    assert "198.18.2.10: down" in result.stderr
    assert deployment.driver.installed() == {}


def test_create_get_list_modify_usage_and_delete_a_session(deployment: Deployment) -> None:
    env = deployment.env
    created = cli(env, "session", "create", SUPI, *AT_EDGE_1, "--gnb-teid", "100", "--gnb-address", "198.19.1.200",
                  "-o", "json")  # fmt: skip
    assert created.exit_code == 0, created.output
    session = json.loads(created.stdout)
    assert (session["state"], session["upf"], session["site"], session["n3_address"]) == ("active", UPF, "edge-1", N3)
    assert ipaddress.ip_address(session["ue_ipv4"]) in ipaddress.ip_network("10.101.0.0/20")
    assert len(deployment.driver.installed()) == 1  # the UPF holds it

    shown = cli(env, "session", "get", SUPI).stdout.splitlines()
    assert "state:          active" in shown
    assert f"upf:            {UPF}" in shown
    listed = cli(env, "session", "list").stdout.splitlines()
    assert listed[0].split()[:3] == ["SUPI", "PSI", "DNN"]
    assert listed[1].split()[:6] == [SUPI, "1", "mec", "1", "001-01-000001", "active"]
    assert len(json.loads(cli(env, "session", "list", "--upf", UPF, "-o", "json").stdout)) == 1
    assert cli(env, "session", "list", "--state", "lost").stdout == "no sessions\n"

    # While the session holds an address of mec-edge-1, the pool cannot go.
    refused = cli(env, "delete", "pool", "mec-edge-1")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: FAILED_PRECONDITION: name: ")
    status = cli(env, "status", "-o", "json")
    ours = next(u for u in json.loads(status.stdout)["upfs"] if u["node_id"] == UPF)
    assert (ours["association"], ours["health"], ours["sessions"]) == ("associated", "up", {"active": 1})
    assert "1 (active 1)" in next(line for line in cli(env, "status").stdout.splitlines() if line.startswith(UPF))

    modified = cli(env, "session", "modify", SUPI, "--gnb-teid", "200", "--gnb-address", "198.19.1.201", "-o", "yaml")
    assert modified.exit_code == 0, modified.output
    assert "gnb_teid: 200" in modified.stdout.splitlines()
    assert cli(env, "session", "usage", SUPI, "-o", "json").stdout.strip() == "[]"

    # Traffic the UPF measured comes back in the final usage of the deletion, in both forms.
    ((up_seid, state),) = deployment.driver.installed().items()
    for urr_id in state.urrs:
        deployment.driver.meter(up_seid, urr_id, ul_bytes=1200, dl_bytes=3400)
    deleted = cli(env, "session", "delete", SUPI, "-o", "json")
    assert deleted.exit_code == 0, deleted.output
    final = json.loads(deleted.stdout)["final_usage"]
    assert [(u["urr_id"], u["volume_ul"], u["volume_dl"], u["final"]) for u in final] == [
        (urr_id, 1200, 3400, True) for urr_id in sorted(state.urrs)
    ]
    assert all("TERMR" in u["triggers"] for u in final)
    assert deployment.driver.installed() == {}
    gone = cli(env, "session", "get", SUPI)
    assert gone.exit_code == 1
    assert gone.stderr.startswith("error: NOT_FOUND: ")
    kinds = [
        json.loads(line)["kind"] for line in cli(env, "events", "--kind", "session", "-o", "json").stdout.splitlines()
    ]
    assert kinds[-3:] == ["session.created", "session.modified", "session.deleted"]


def test_session_usage_errors_are_usage_errors(deployment: Deployment) -> None:
    nothing = cli(deployment.env, "session", "modify", SUPI)
    assert nothing.exit_code == 2
    assert "nothing to change" in nothing.stderr
    assert cli(deployment.env, "session", "create", SUPI, *AT_EDGE_1, "--psi", "16").exit_code == 2
    assert cli(deployment.env, "session", "create", SUPI, *AT_EDGE_1, "--gnb-teid", str(2**32)).exit_code == 2
    assert deployment.driver.installed() == {}


def test_json_errors_for_scripts(deployment: Deployment, tmp_path: Path) -> None:
    result = cli(deployment.env, "session", "get", "imsi-001019999999999", "-o", "json")
    assert result.exit_code == 1
    error = json.loads(result.stderr.splitlines()[0])["error"]
    assert error["code"] == "NOT_FOUND"


def test_a_deletion_prints_its_final_usage_as_a_table(deployment: Deployment) -> None:
    env = deployment.env
    assert cli(env, "session", "create", SUPI, *AT_EDGE_1).exit_code == 0
    ((up_seid, state),) = deployment.driver.installed().items()
    for urr_id in state.urrs:
        deployment.driver.meter(up_seid, urr_id, ul_bytes=1200, dl_bytes=3400)
    deleted = cli(env, "session", "delete", SUPI)
    assert deleted.exit_code == 0, deleted.output
    lines = deleted.stdout.splitlines()
    table = lines[lines.index("final usage:") + 1 :]
    assert table[0].split()[:3] == ["URR", "SEQN", "TRIGGERS"]
    urrs = sorted(state.urrs)
    assert [row.split()[0] for row in table[1:]] == [str(urr_id) for urr_id in urrs]
    assert all(row.split()[3:6] == ["1200", "3400", "4600"] for row in table[1:]), table
    assert "final_usage" not in deleted.stdout  # the table, not the field
