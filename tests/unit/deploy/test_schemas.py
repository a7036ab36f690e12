"""Every rendered object is a valid Kubernetes object: built-in kinds against the pinned Kubernetes
version's schemas (kubernetes-validate, strict: no unknown field), the others against the CRD
schemas shipped in deploy/kubernetes/crds."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from edge_sites.kube import render

from .rendering import CRD_KINDS, EXAMPLES, KUBERNETES_VERSION, crd_validator, example, example_options, named, of_kind


def test_the_example_inventory_renders_base_and_an_overlay_per_site() -> None:
    rendered = example()
    assert sorted(rendered.sites) == ["cloud", "edge-1", "edge-2", "edge-3"]
    kinds = {o["kind"] for o in rendered.base}
    assert {"Namespace", "Deployment", "Job", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap",
            "Cluster", "ServiceMonitor", "NetworkAttachmentDefinition"} <= kinds  # fmt: skip
    # One UPF pod per UPF manifest: one per edge site, two in the cloud.
    counts = {site: len(of_kind(objects, "Deployment")) for site, objects in rendered.sites.items()}
    assert counts == {"edge-1": 1, "edge-2": 1, "edge-3": 1, "cloud": 2}
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered.objects()]
    assert len(keys) == len(set(keys)), "two objects with one name"


_BUILT_IN = [o for o in example().objects() if (o["apiVersion"], o["kind"]) not in CRD_KINDS]


@pytest.mark.parametrize("obj", _BUILT_IN, ids=[f"{o['kind']}/{o['metadata']['name']}" for o in _BUILT_IN])
def test_each_built_in_object_passes_the_kubernetes_schema_strictly(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validation_is_not_vacuous() -> None:
    # The same validator refuses an unknown field and a wrong type in a rendered Deployment.
    deployment = copy.deepcopy(named(example().base, "Deployment", "edgecups-cp"))
    deployment["spec"]["template"]["spec"]["containers"][0]["commandd"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(named(example().base, "Deployment", "edgecups-cp"))
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_each_custom_resource_passes_its_crd_schema() -> None:
    seen = set()
    for obj in example().objects():
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_KINDS:
            crd_validator(*key).validate(obj)
            seen.add(key)
    assert seen == set(CRD_KINDS), "every shipped CRD schema is used"


def test_the_crd_schemas_refuse_what_upstream_refuses() -> None:
    monitor = copy.deepcopy(named(example().base, "ServiceMonitor", "edgecups-upf"))
    del monitor["spec"]["selector"]  # required upstream
    with pytest.raises(jsonschema.ValidationError):
        crd_validator("monitoring.coreos.com/v1", "ServiceMonitor").validate(monitor)
    monitor = copy.deepcopy(named(example().base, "ServiceMonitor", "edgecups-upf"))
    monitor["spec"]["endpoints"][0]["interval"] = "15 seconds"  # upstream's duration pattern
    with pytest.raises(jsonschema.ValidationError):
        crd_validator("monitoring.coreos.com/v1", "ServiceMonitor").validate(monitor)
    cluster = copy.deepcopy(named(example().base, "Cluster", "edgecups-db"))
    cluster["spec"]["instances"] = 0
    with pytest.raises(jsonschema.ValidationError):
        crd_validator("postgresql.cnpg.io/v1", "Cluster").validate(cluster)
    nad = copy.deepcopy(of_kind(example().objects(), "NetworkAttachmentDefinition")[0])
    nad["spec"]["config"] = {"type": "macvlan"}  # a JSON string, not an object
    with pytest.raises(jsonschema.ValidationError):
        crd_validator("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition").validate(nad)


def test_network_attachment_configs_are_cni_json_named_like_their_object() -> None:
    nads = of_kind(example().objects(), "NetworkAttachmentDefinition")
    assert nads
    for nad in nads:
        config = json.loads(nad["spec"]["config"])
        assert config["name"] == nad["metadata"]["name"]
        assert config["cniVersion"] and config["plugins"]
        plugin = config["plugins"][0]
        assert plugin["type"] == "macvlan" and plugin["master"] in ("n3", "n4", "n6")
        # N4 carries a Linux address (the PFCP socket), given per pod; N3/N6 belong to VPP.
        static = nad["metadata"]["name"].endswith("-n4")
        assert plugin["ipam"].get("type") == ("static" if static else None)
        assert set(plugin["ipam"]) <= ({"type", "routes"} if static else set())
        assert plugin.get("capabilities") == ({"ips": True} if static else None)


@pytest.mark.parametrize("cni", ["host-device", "ipvlan", "sriov"])
def test_other_cni_plugins_give_valid_attachments(cni: str) -> None:
    masters = {"n4_master": "ens4", "n3_master": "ens5", "n6_master": "ens6"}
    if cni == "sriov":
        masters = {k: f"intel.com/sriov_{k[:2]}" for k in masters}
    options = example_options()
    site = dataclasses.replace(
        options.site("edge-1"), cni=cni, n4_master=masters["n4_master"], n3_master=masters["n3_master"],
        n6_master=masters["n6_master"],
    )  # fmt: skip
    options = dataclasses.replace(options, sites={**options.sites, "edge-1": site})
    nads = of_kind(render([EXAMPLES], options).sites["edge-1"], "NetworkAttachmentDefinition")
    assert len(nads) == 3
    for nad in nads:
        crd_validator("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition").validate(nad)
        plugin = json.loads(nad["spec"]["config"])["plugins"][0]
        assert plugin["type"] == cni
        network = nad["metadata"]["name"].rsplit("-", 2)[-1] if "-n6-" in nad["metadata"]["name"] else None
        master = masters["n6_master"] if network else masters[f"{nad['metadata']['name'][-2:]}_master"]
        if cni == "sriov":
            # The SR-IOV device plugin's pool: Multus adds the resource request to the pod.
            assert nad["metadata"]["annotations"] == {"k8s.v1.cni.cncf.io/resourceName": master}
        else:
            assert plugin["device" if cni == "host-device" else "master"] == master
