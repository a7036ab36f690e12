"""What the render checks beyond a valid manifest set, and the broker configuration it carries over."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_sites.kube import RenderError, render

from .rendering import EXAMPLES, REPO, example, example_options, named


def _sites_with(tmp_path: Path, extra: str) -> Path:
    sites = tmp_path / "sites"
    shutil.copytree(EXAMPLES, sites)
    (sites / "zz-extra.yaml").write_text(extra)
    return sites


def test_names_that_cannot_become_kubernetes_names_are_refused(tmp_path: Path) -> None:
    sites = _sites_with(
        tmp_path,
        """apiVersion: edgecups/v1
kind: Site
metadata: {name: edge.1}
spec: {kind: edge, region: eu}
---
apiVersion: edgecups/v1
kind: Site
metadata: {name: edgecups-cp}
spec: {kind: edge, region: eu}
---
apiVersion: edgecups/v1
kind: Site
metadata: {name: "Edge 5"}
spec: {kind: edge, region: eu}
""",
    )
    with pytest.raises(RenderError) as caught:
        render([sites], example_options())
    extra = sites / "zz-extra.yaml"
    assert caught.value.errors == [
        f"{extra}:document 1 (Site edge.1): metadata.name: 'edge.1' and 'edge-1' give the same object names (edge-1)",
        f"{extra}:document 2 (Site edgecups-cp): metadata.name: 'edgecups-cp' is a broker user of "
        "deploy/mosquitto/acl: rename the site",
        f"{extra}:document 3 (Site Edge 5): metadata.name: 'Edge 5' cannot be a Kubernetes label value (the node "
        "label edgecups.io/site): at most 63 letters, digits, '-', '_' or '.', a letter or digit at both ends",
    ]


def test_a_upf_without_a_pool_for_its_dnn_at_its_site_is_refused(tmp_path: Path) -> None:
    sites = _sites_with(
        tmp_path,
        """apiVersion: edgecups/v1
kind: UPF
metadata: {name: 198.18.1.11}
spec: {site: edge-1, n4_address: 198.18.1.11, n3_addresses: [198.19.1.11], network_instances: [internet],
       capacity: 10}
""",
    )
    with pytest.raises(RenderError) as caught:
        render([sites], example_options())
    where = f"{sites / 'zz-extra.yaml'}:document 1 (UPF 198.18.1.11)"
    assert caught.value.errors == [
        f"{where}: no Pool of DNN 'internet' at site 'edge-1' or at no particular site: the agent's N6 needs the UE "
        "pool it routes",
        f"{where}: settings: upfs.198.18.1.11.n6_addresses.internet: required: the address/prefix length VPP puts on "
        "N6 interface 'n6-internet' of this UPF",
    ]


def test_the_broker_files_are_needed_and_named(tmp_path: Path) -> None:
    with pytest.raises(RenderError) as caught:
        render([EXAMPLES], example_options(), deploy_dir=tmp_path)
    assert [line.split(": cannot read:")[0] for line in caught.value.errors] == [
        str(tmp_path / "mosquitto" / "mosquitto.conf"),
        str(tmp_path / "mosquitto" / "acl"),
        str(tmp_path / "grafana" / "edgecups-dashboard.json"),
    ]


def test_the_broker_runs_deploy_mosquittos_configuration_with_the_containers_paths() -> None:
    data = named(example().base, "ConfigMap", "edgecups-mqtt-config")["data"]
    assert data["acl"] == (REPO / "deploy" / "mosquitto" / "acl").read_text()  # the same ACL, unchanged
    conf = data["mosquitto.conf"]
    settings = "\n".join(line for line in conf.splitlines() if not line.startswith("#"))
    assert "/etc/mosquitto" not in settings and "/var/lib/mosquitto" not in settings and "syslog" not in settings
    for line in ("acl_file /mosquitto/config/acl", "password_file /mosquitto/passwd/passwd",
                 "certfile /mosquitto/certs/tls.crt", "persistence_location /mosquitto/data/", "log_dest stdout",
                 "listener 8883", "allow_anonymous false"):  # fmt: skip
        assert line in conf.splitlines()
    deployment = named(example().base, "Deployment", "edgecups-mqtt")
    mounts = {m["mountPath"] for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts == {"/mosquitto/config", "/mosquitto/passwd", "/mosquitto/certs", "/mosquitto/data"}
    dashboard = named(example().base, "ConfigMap", "edgecups-grafana-dashboard")["data"]["edgecups-dashboard.json"]
    assert dashboard == (REPO / "deploy" / "grafana" / "edgecups-dashboard.json").read_text()
