"""``edgecups sim up|status|traffic|down`` as an operator runs them: separate processes sharing a state directory.

A small topology (one edge site with two UEs, one cloud site): every UE gets a "mec" session
at its edge site and an "internet" session in the cloud, real traffic passes through gNB,
N3 router and UPF, a killed UPF makes status and traffic fail, and ``down`` leaves nothing:
checked here independently of the simulator's own verification (namespace list, PIDs,
/proc command lines naming the state directory).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from control_plane.cli.main import app
from edge_sites.sim.netns import list_namespaces
from tests.harness.netns import netns_unavailable_reason

_UNAVAILABLE = netns_unavailable_reason()

TOPOLOGY = """\
apiVersion: edgecups/v1
kind: SimTopology
dnns:
  - {name: mec, scope: edge, cidr: 10.64.0.0/16, site_prefix: 20, qfi: 5, five_qi: 80}
  - {name: internet, scope: cloud, cidr: 10.0.0.0/16, qfi: 9, five_qi: 9}
sites:
  - {name: edge-1, kind: edge, tai: "001-01-000001", ues: 2}
  - {name: cloud, kind: cloud, tai: "001-01-000100"}
"""
# Small enough to keep the test short, large enough that a broken path cannot pass.
TRAFFIC = ["--ping-count", "10", "--udp-pps", "300", "--udp-seconds", "0.5", "--tcp-bytes", "1000000"]


def sim(state: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "control_plane.cli.main", "sim", *args, "--state-dir", str(state)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Short: the gNB's control socket lives here and must fit in sun_path (108 octets).
    path = Path(tempfile.mkdtemp(prefix="ecsim-test-"))
    try:
        yield path
    finally:
        sim(path, "down")  # whatever the test did: nothing may outlive it
        shutil.rmtree(path)


def _state(state: Path) -> dict[str, Any]:
    for name in ("state.json", "last-state.json"):
        if (state / name).exists():
            data: dict[str, Any] = json.loads((state / name).read_text())
            return data
    raise AssertionError(f"no state file in {state}")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _assert_nothing_left(state: Path) -> None:
    recorded = _state(state)
    suffix = recorded["suffix"]
    assert [n for n in list_namespaces() if n.endswith(f"-{suffix}") and n.startswith("ecsim-")] == []
    assert [p["name"] for p in recorded["processes"] if _alive(p["pid"])] == []
    # Any process at all still running with one of the simulation's files on its command line.
    mine = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(state) in cmdline and "sim down" not in cmdline and _alive(int(entry.name)):
                mine.append(cmdline)
    assert mine == []


@pytest.mark.needs_root
@pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")
def test_up_status_traffic_down(state_dir: Path, tmp_path: Path) -> None:
    topology = tmp_path / "topology.yaml"
    topology.write_text(TOPOLOGY)
    up = sim(state_dir, "up", "-f", str(topology))
    assert up.returncode == 0, up.stderr + up.stdout
    assert "[7/7] tunnels" in up.stderr and "up: 4 sessions active and attached" in up.stdout
    recorded = _state(state_dir)
    assert recorded["phase"] == "up"
    # The mec sessions stay at the UE's edge site, the internet sessions go to the cloud.
    placed = sorted((s["supi"], s["dnn"], s["site"], s["ue_ip"].split(".")[1]) for s in recorded["sessions"])
    assert [(dnn, site, net) for _supi, dnn, site, net in placed] == [
        ("internet", "cloud", "0"), ("mec", "edge-1", "64"), ("internet", "cloud", "0"), ("mec", "edge-1", "64"),
    ]  # fmt: skip
    assert set(recorded["namespaces"].values()) <= list_namespaces()

    status = sim(state_dir, "status", "-o", "json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["ok"] and all(p["alive"] for p in report["processes"]) and len(report["processes"]) == 6
    assert {(u["site"], u["association"], u["health"]) for u in report["upfs"]} == {
        ("edge-1", "associated", "up"), ("cloud", "associated", "up"),
    }  # fmt: skip
    assert report["sessions"] == {"edge-1": {"active": 2}, "cloud": {"active": 2}}

    traffic = sim(state_dir, "traffic", *TRAFFIC)
    assert traffic.returncode == 0, traffic.stdout + traffic.stderr
    lines = traffic.stdout.splitlines()
    assert lines[0].split() == ["SITE", "KIND", "SESSIONS", "PKTS", "SENT", "PKTS", "RECV", "LOSS", "RTT", "P50",
                                "MS", "RTT", "P99", "MS", "TCP", "MBIT/S", "PASSED"]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:3]}
    # 2 sessions per site, each 10 echo requests and a 0.5 s stream at 300 packets/s, all answered
    assert rows["edge-1"][1:6] == ["edge", "2", str(2 * (10 + 150)), str(2 * (10 + 150)), "0.00%"]
    assert rows["cloud"][1:6] == ["cloud", "2", str(2 * (10 + 150)), str(2 * (10 + 150)), "0.00%"]
    assert rows["edge-1"][-1] == rows["cloud"][-1] == "2/2"
    assert "every check passed" in traffic.stdout

    # A crashed UPF: status says so, and the traffic run fails for its sessions only.
    edge_upf = next(p for p in recorded["processes"] if p["name"] == "upf/edge-1")
    os.killpg(edge_upf["pid"], signal.SIGKILL)
    while _alive(edge_upf["pid"]):
        time.sleep(0.05)
    degraded = sim(state_dir, "status")
    assert degraded.returncode == 1 and "status: DEGRADED" in degraded.stdout
    assert any(line.split()[:4] == ["upf/edge-1", recorded["namespaces"]["upf/edge-1"], str(edge_upf["pid"]), "NO"]
               for line in degraded.stdout.splitlines())  # fmt: skip
    failed = sim(state_dir, "traffic", *TRAFFIC)
    assert failed.returncode == 1, failed.stdout
    fails = [line for line in failed.stdout.splitlines() if line.startswith("FAIL")]
    assert fails and all("/mec (edge-1 -> edge-1)" in line for line in fails), fails
    assert any("ping: 0/10 replies" in line for line in fails), fails

    down = sim(state_dir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "verified: no namespace ecsim-*-" in down.stdout
    _assert_nothing_left(state_dir)
    again = sim(state_dir, "down")
    assert again.returncode == 0 and "nothing is up" in again.stdout and "verified" in again.stdout
    _assert_nothing_left(state_dir)


@pytest.mark.needs_root
@pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")
def test_down_cleans_up_after_up_was_killed(state_dir: Path) -> None:
    command = [sys.executable, "-m", "control_plane.cli.main", "sim", "up", "--sites", "1", "--ues", "1",
               "--state-dir", str(state_dir)]  # fmt: skip
    up = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        # Killed while its processes start: namespaces built, some processes running.
        while not (state_dir / "state.json").exists() or not _state(state_dir)["processes"]:
            assert up.poll() is None and time.monotonic() < deadline, "sim up ended before it was killed"
            time.sleep(0.02)
    finally:
        os.killpg(up.pid, signal.SIGKILL)
        up.wait(10)
    assert _state(state_dir)["phase"] == "building"
    refused = sim(state_dir, "up")
    assert refused.returncode == 1 and "sim down" in refused.stderr
    down = sim(state_dir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "removed" in down.stdout and "verified" in down.stdout
    _assert_nothing_left(state_dir)


def test_a_bad_topology_is_refused_naming_each_field_and_nothing_is_built(tmp_path: Path) -> None:
    def up(text: str, *args: str) -> tuple[int, str]:
        topology = tmp_path / "topology.yaml"
        topology.write_text(text)
        result = CliRunner().invoke(app, ["sim", "up", "-f", str(topology), "--state-dir", str(tmp_path / "s"), *args])
        return result.exit_code, result.output.replace(f"{topology}: ", "")

    code, output = up(TOPOLOGY.replace("10.64.0.0/16", "192.0.2.0/24").replace('"001-01-000100"', '"1-01-100"'))
    assert code == 2
    assert "dnns[0].cidr: 192.0.2.0/24 is outside 10.0.0.0/8" in output
    assert "sites[1].tai: '1-01-100' is not a TAI" in output
    code, output = up(TOPOLOGY.replace('"001-01-000100"', '"001-01-000001"'))
    assert code == 2 and "sites[1].tai: '001-01-000001' is already used by sites[0]" in output
    code, output = up(TOPOLOGY, "--sites", "0")
    assert code == 2 and "--sites: 0 edge sites" in output
    assert not (tmp_path / "s").exists()


@pytest.mark.skipif(_UNAVAILABLE is not None, reason=_UNAVAILABLE or "")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is not installed")
def test_an_ordinary_user_runs_the_whole_job_in_a_user_namespace(tmp_path: Path) -> None:
    # An ordinary user: uid 65534 in a user namespace of its own (not root there, no capabilities
    # over the host). `sim run` must notice, re-run itself in a nested user namespace where it is
    # root, and do the whole job there.
    topology = tmp_path / "topology.yaml"
    topology.write_text(TOPOLOGY)
    state = "/run/ecsim-userns"  # inside the private /run the command mounts
    cli = [sys.executable, "-m", "control_plane.cli.main", "sim", "run", "-f", str(topology), "--state-dir", state]
    command = ["unshare", "--user", "--map-user=65534", "--map-group=65534", *cli]
    probe = subprocess.run(["unshare", "--user", "--map-user=65534", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"this kernel refuses unprivileged user namespaces: {probe.stderr.decode().strip()}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    assert "running the simulation inside a user namespace" in done.stderr, done.stderr
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "every check passed" in done.stdout
    assert "no process of this simulation is left" in done.stdout, done.stdout
    # Its namespaces lived under its private /run: none of them may appear here, nor any process.
    assert not [name for name in list_namespaces() if name.startswith("ecsim")]
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _names(p, state)]
    assert not leftovers


def _names(proc: Path, text: str) -> bool:
    try:
        return text.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False
