"""The wiring that makes the rendered deployment work: placement, shared sockets, attachments, addresses,
and the migration before the control plane serves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from control_plane.cli.main import app
from edge_sites import load_manifests

from .rendering import CP_PFCP, EXAMPLES, containers, example, named, networks, of_kind, upf_deployments

SITE_LABEL = "edgecups.io/site"


def _upf_sites() -> dict[str, str]:
    return {m.name: m.spec["site"] for m in load_manifests([EXAMPLES]) if m.kind == "UPF"}


def _agent_config(objects: list[dict[str, Any]], deployment: dict[str, Any]) -> dict[str, Any]:
    config_map = named(objects, "ConfigMap", deployment["metadata"]["name"])
    config = yaml.safe_load(config_map["data"]["upf.yaml"])
    assert isinstance(config, dict)
    return config


def test_each_upf_runs_only_on_its_own_sites_nodes() -> None:
    sites = _upf_sites()
    placed = {}
    for site, objects in example().sites.items():
        for deployment in upf_deployments(objects):
            node_id = _agent_config(objects, deployment)["node_id"]
            pod = deployment["spec"]["template"]["spec"]
            # A nodeSelector is a hard constraint: only nodes labelled with this site qualify.
            assert pod["nodeSelector"] == {SITE_LABEL: site}
            assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"].get("nodeAffinity", {})
            assert deployment["spec"]["template"]["metadata"]["labels"][SITE_LABEL] == site
            placed[node_id] = site
    assert placed == sites  # every UPF manifest, each in the overlay of its own site


def test_vpp_and_the_agent_share_the_api_socket_and_memif_directories() -> None:
    for site, objects in example().sites.items():
        for deployment in upf_deployments(objects):
            pod = deployment["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in pod["volumes"]}
            vpp, agent = containers(deployment)["vpp"], containers(deployment)["agent"]
            mounts = {c: {m["name"]: m["mountPath"] for m in containers(deployment)[c]["volumeMounts"]}
                      for c in ("vpp", "agent")}  # fmt: skip
            for shared in ("vpp-run", "memif"):
                assert "emptyDir" in volumes[shared]
                assert mounts["vpp"][shared] == mounts["agent"][shared], (site, shared)
            config = _agent_config(objects, deployment)
            startup = named(objects, "ConfigMap", deployment["metadata"]["name"])["data"]["startup.conf"]
            # The socket VPP serves (socksvr) is the one the agent dials, inside the shared directory.
            assert f"socket-name {config['vpp']['api_socket']}" in startup
            assert Path(config["vpp"]["api_socket"]).parent == Path(mounts["vpp"]["vpp-run"])
            # VPP makes the socket group-writable for the agent's group; the agent is not root.
            assert f"gid {agent['securityContext']['runAsGroup']}" in startup
            assert agent["securityContext"]["runAsNonRoot"] is True
            assert agent["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert volumes["hugepages"]["emptyDir"]["medium"].startswith("HugePages-")
            resources = vpp["resources"]
            assert resources["requests"] == resources["limits"]  # Guaranteed QoS: whole pinned cores
            assert any(k.startswith("hugepages-") for k in resources["limits"])


def test_each_upf_gets_its_n4_n3_and_n6_attachments() -> None:
    manifests = {m.name: m for m in load_manifests([EXAMPLES]) if m.kind == "UPF"}
    every = example().objects()
    nads = {
        o["metadata"]["name"]: json.loads(o["spec"]["config"]) for o in of_kind(every, "NetworkAttachmentDefinition")
    }
    for objects in example().sites.values():
        for deployment in upf_deployments(objects):
            config = _agent_config(objects, deployment)
            upf = manifests[str(config["node_id"])]
            attached = {n["interface"]: n for n in networks(deployment)}
            for element in attached.values():
                assert element["name"] in nads, f"{element['name']}: no such NetworkAttachmentDefinition"
            assert attached["n4"]["ips"] == [f"{upf.spec['n4_address']}/24"]
            assert "n3" in attached and "ips" not in attached["n3"]
            setup = named(objects, "ConfigMap", deployment["metadata"]["name"])["data"]["setup.cli"]
            assert "create host-interface name n3" in setup.splitlines()
            assert config["vpp"]["n3"]["interface"] == "host-n3"
            assert [a.split("/")[0] for a in config["vpp"]["n3"]["address"]] == upf.spec["n3_addresses"]
            # One N6 per Network Instance the UPF serves, the same device in Multus, the agent and VPP.
            assert sorted(config["n6"]) == sorted(upf.spec["network_instances"])
            for instance, n6 in config["n6"].items():
                device = n6["interface"]
                assert device in attached and nads[attached[device]["name"]]["plugins"][0]["master"] == "n6"
                assert config["vpp"]["n6"][instance]["interface"] == f"host-{device}"
                assert f"create host-interface name {device}" in setup.splitlines()


def test_upfs_and_the_control_plane_meet_at_the_cp_pfcp_address() -> None:
    base = example().base
    cp_config = yaml.safe_load(named(base, "ConfigMap", "edgecups-cp-config")["data"]["cp.yaml"])
    assert cp_config["n4"]["address"] == CP_PFCP and cp_config["node_id"] == CP_PFCP
    cp = named(base, "Deployment", "edgecups-cp")
    assert networks(cp) == [{"name": "edgecups-cp-n4", "interface": "n4", "ips": [f"{CP_PFCP}/24"]}]
    assert cp["spec"]["template"]["spec"]["nodeSelector"] == {SITE_LABEL: "cloud"}
    assert cp["spec"]["replicas"] == 1 and cp["spec"]["strategy"] == {"type": "Recreate"}
    for objects in example().sites.values():
        for deployment in upf_deployments(objects):
            assert _agent_config(objects, deployment)["allowed_cps"] == [CP_PFCP]
    # The PFCP Service resolves to the N4 address itself (PFCP does not listen on the pod IP).
    endpoints = named(base, "EndpointSlice", "edgecups-cp-pfcp")
    assert endpoints["metadata"]["labels"]["kubernetes.io/service-name"] == "edgecups-cp-pfcp"
    assert endpoints["endpoints"][0]["addresses"] == [CP_PFCP]
    assert endpoints["ports"] == [{"name": "pfcp", "port": 8805, "protocol": "UDP"}]
    assert named(base, "Service", "edgecups-cp-pfcp")["spec"]["ports"][0]["protocol"] == "UDP"


def test_the_migration_job_and_the_schema_gate_use_the_new_image(tmp_path: Path) -> None:
    base = example().base
    job = next(o for o in of_kind(base, "Job"))
    cp = named(base, "Deployment", "edgecups-cp")
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    gate = cp["spec"]["template"]["spec"]["initContainers"][0]
    server = containers(cp)["cp"]
    assert migrate["command"] == ["edgecups", "db", "upgrade", "--config", "/etc/edgecups/cp.yaml"]
    assert gate["command"][-1] == "until edgecups db check --config /etc/edgecups/cp.yaml; do sleep 5; done"
    # Same image everywhere: the gate waits for the head revision the new version expects.
    assert migrate["image"] == gate["image"] == server["image"]
    assert job["metadata"]["name"] == f"edgecups-db-upgrade-{server['image'].rsplit(':', 1)[1].replace('.', '-')}"
    assert migrate["env"] == gate["env"] == server["env"]  # the same database and password


def test_the_gate_command_holds_until_the_migration_ran(tmp_path: Path) -> None:
    # What the init container and the Job run, on a real (SQLite) database: check fails before
    # `db upgrade` and passes after it, so the control plane container cannot start in between.
    config = tmp_path / "cp.yaml"
    config.write_text(yaml.safe_dump({"n4": {"address": "127.0.0.1"}, "database": {"url": "sqlite:///cp.db"}}))
    (tmp_path / "cp.db").touch()  # an empty database, as a new PostgreSQL starts
    runner = CliRunner()
    before = runner.invoke(app, ["db", "check", "--config", str(config)])
    assert before.exit_code == 1 and "edgecups db upgrade" in before.output
    upgrade = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert upgrade.exit_code == 0, upgrade.output
    after = runner.invoke(app, ["db", "check", "--config", str(config)])
    assert after.exit_code == 0 and "schema up to date" in after.output


def test_disruption_budgets_and_network_policies_select_the_pods() -> None:
    every = example().objects()
    pods = [o for o in of_kind(every, "Deployment")]
    for budget in of_kind(every, "PodDisruptionBudget") + of_kind(every, "NetworkPolicy"):
        if budget["kind"] == "PodDisruptionBudget":
            wanted = budget["spec"]["selector"]["matchLabels"]
        else:
            wanted = budget["spec"]["podSelector"]["matchLabels"]
        matched = [p for p in pods if wanted.items() <= p["spec"]["template"]["metadata"]["labels"].items()]
        job_pods = [j for j in of_kind(every, "Job")
                    if wanted.items() <= j["spec"]["template"]["metadata"]["labels"].items()]  # fmt: skip
        assert matched or job_pods, f"{budget['kind']} {budget['metadata']['name']} selects no pod"
    cloud = named(example().sites["cloud"], "PodDisruptionBudget", "edgecups-upf-cloud")
    assert cloud["spec"]["maxUnavailable"] == 1  # one of the two cloud UPFs at a time


def test_n4_routes_lead_the_upfs_and_the_control_plane_to_each_other() -> None:
    def routes(objects: list[dict[str, Any]], name: str) -> list[dict[str, str]]:
        config = json.loads(named(objects, "NetworkAttachmentDefinition", name)["spec"]["config"])
        found = config["plugins"][0]["ipam"].get("routes", [])
        assert isinstance(found, list)
        return found

    # The edge UPFs' N4 is off the control plane's /24: each way goes through its site's gateway.
    for number in (1, 2, 3):
        assert routes(example().sites[f"edge-{number}"], f"edgecups-edge-{number}-n4") == [
            {"dst": f"{CP_PFCP}/32", "gw": f"198.18.{number}.1"}
        ]
    assert routes(example().base, "edgecups-cp-n4") == [
        {"dst": f"198.18.{number}.10/32", "gw": "198.18.0.254"} for number in (1, 2, 3)
    ]
    # The cloud UPFs share the control plane's N4 network: no route needed.
    assert routes(example().sites["cloud"], "edgecups-cloud-n4") == []


def test_a_changed_configuration_changes_the_pod_template() -> None:
    # The ConfigMap's hash in the pod template: kubectl apply rolls the pod when its configuration changes.
    for objects in [example().base, *example().sites.values()]:
        for deployment in of_kind(objects, "Deployment"):
            annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
            if "edgecups.io/config-sha256" not in annotations:
                assert deployment["metadata"]["name"] == "edgecups-mqtt"
                continue
            volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
            data = named(objects, "ConfigMap", volume["configMap"]["name"])["data"]
            digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
            assert annotations["edgecups.io/config-sha256"] == digest
