"""Shared by the deploy tests: the example inventory rendered once, the CRD schemas, object lookups."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from edge_sites.kube import Rendered, RenderOptions, parse_settings, render

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "edge_sites" / "examples"
EXAMPLE_SETTINGS = REPO / "deploy" / "kubernetes" / "example-settings.yaml"
CRDS = REPO / "deploy" / "kubernetes" / "crds"
CP_PFCP = "198.18.0.1"
#: The Kubernetes version every built-in object is validated against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.34.0"
#: Kinds that are not built in: checked against deploy/kubernetes/crds instead.
CRD_KINDS = {
    ("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition"): "network-attachment-definition.k8s.cni.cncf.io_v1.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.monitoring.coreos.com_v1.yaml",
    ("postgresql.cnpg.io/v1", "Cluster"): "cluster.postgresql.cnpg.io_v1.yaml",
}

Obj = dict[str, Any]


def example_options(**changes: Any) -> RenderOptions:
    settings, problems = parse_settings(yaml.safe_load(EXAMPLE_SETTINGS.read_text()), str(EXAMPLE_SETTINGS))
    assert problems == []
    return RenderOptions(cp_pfcp_address=CP_PFCP, sites=settings.sites, upfs=settings.upfs, **changes)


@cache
def example() -> Rendered:
    """The example 3-edge + 1-cloud inventory, rendered with the example settings."""
    return render([EXAMPLES], example_options())


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = yaml.safe_load((CRDS / CRD_KINDS[(api_version, kind)]).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def containers(deployment: Obj) -> dict[str, Obj]:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def networks(deployment: Obj) -> list[Obj]:
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    value = json.loads(annotations["k8s.v1.cni.cncf.io/networks"])
    assert isinstance(value, list)
    return value


def upf_deployments(objects: list[Obj]) -> Iterator[Obj]:
    for o in of_kind(objects, "Deployment"):
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == "upf":
            yield o
