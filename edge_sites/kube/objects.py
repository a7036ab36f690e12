"""Small builders shared by the rendered objects: metadata, labels, names, volumes, container parts (ports,
probes, security contexts, the MQTT client's files), NetworkAttachmentDefinitions and NetworkPolicies."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = [
    "API_PORT",
    "APP_LABELS",
    "COMPONENT",
    "CONFIG_HASH",
    "IMAGE_UID",
    "METRICS_PORT",
    "MQTT_PORT",
    "NAD_API",
    "NETWORKS_ANNOTATION",
    "PFCP_PORT",
    "SITE_LABEL",
    "Obj",
    "RenderError",
    "config_hash",
    "dns_label",
    "labels",
    "meta",
    "mqtt_client_config",
    "mqtt_client_volume",
    "network_attachment",
    "network_policy",
    "restricted",
    "secret_volume",
    "selector",
    "serving_container",
    "to_yaml",
]

Obj = dict[str, Any]


class RenderError(ValueError):
    """Why a deployment cannot be rendered; ``errors`` lists every problem, one line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


#: The node label that places a site's UPFs (and the control plane) on that site's nodes.
SITE_LABEL: Final = "edgecups.io/site"
COMPONENT: Final = "app.kubernetes.io/component"
APP_LABELS: Final[Mapping[str, str]] = {"app.kubernetes.io/part-of": "edgecups", "app.kubernetes.io/name": "edgecups"}
#: Multus: the pod annotation listing the extra networks (k8s.v1.cni.cncf.io network selection elements).
NETWORKS_ANNOTATION: Final = "k8s.v1.cni.cncf.io/networks"
NAD_API: Final = "k8s.cni.cncf.io/v1"
CONFIG_HASH: Final = "edgecups.io/config-sha256"
#: Ports: the northbound API (gRPC), PFCP (TS 29.244 §4.2.1: UDP 8805), /metrics, MQTT over TLS.
API_PORT: Final = 50051
PFCP_PORT: Final = 8805
METRICS_PORT: Final = 9090
MQTT_PORT: Final = 8883
IMAGE_UID: Final = 10001  # the images' edgecups user (deploy/docker)
_RESOURCE_ANNOTATION: Final = "k8s.v1.cni.cncf.io/resourceName"
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?\Z")


def is_label_value(text: str) -> bool:
    """Whether ``text`` may be a Kubernetes label value (63 characters, alphanumeric at both ends)."""
    return bool(_LABEL_VALUE.match(text))


def dns_label(text: str, max_len: int = 40) -> str:
    """``text`` as an RFC 1123 label part: lower case, other characters as '-', a hash suffix when too long.

    Two texts may give the same label ("a.b", "a-b"): the render refuses such a pair by name.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
    if len(slug) <= max_len:
        return slug
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{slug[: max_len - 7].rstrip('-')}-{digest}"


def labels(component: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**APP_LABELS, COMPONENT: component, **(extra or {})}


def selector(component: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "edgecups", COMPONENT: component, **(extra or {})}


def meta(name: str, namespace: str | None, component: str, extra: Mapping[str, str] | None = None) -> Obj:
    out: Obj = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out["labels"] = labels(component, extra)
    return out


def config_hash(data: Mapping[str, str]) -> str:
    """SHA-256 of a ConfigMap's data, for the pod annotation that rolls pods when it changes."""
    return hashlib.sha256(json.dumps(dict(data), sort_keys=True).encode()).hexdigest()


def secret_volume(name: str, secret: str, items: Sequence[str] | None = None, optional: bool = False) -> Obj:
    source: Obj = {"secretName": secret, "defaultMode": 0o440}
    if items is not None:
        source["items"] = [{"key": key, "path": key} for key in items]
    if optional:
        source["optional"] = True
    return {"name": name, "secret": source}


def network_attachment(
    name: str,
    namespace: str,
    component: str,
    cni: str,
    master: str,
    *,
    static_ip: bool,
    site: str | None = None,
    routes: Sequence[tuple[str, str | None]] | None = None,
) -> Obj:
    """A Multus NetworkAttachmentDefinition for one network of one site.

    ``static_ip``: the pod names its address in the network selection element (``ips``), which the
    static IPAM plugin applies (the ``ips`` capability); without it the interface has no address in
    Linux, as for N3 and N6, whose addresses VPP holds.
    """
    plugin: Obj = {"type": cni}
    if cni in ("macvlan", "ipvlan"):
        plugin["master"] = master
        plugin["mode"] = "bridge" if cni == "macvlan" else "l2"
    elif cni == "host-device":
        plugin["device"] = master
    ipam: Obj = {"type": "static"} if static_ip else {}
    if static_ip and routes:
        ipam["routes"] = [{"dst": dst, "gw": gw} if gw else {"dst": dst} for dst, gw in routes]
    plugin["ipam"] = ipam
    if static_ip:
        plugin["capabilities"] = {"ips": True}
    config = {"cniVersion": "0.4.0", "name": name, "plugins": [plugin]}
    metadata = meta(name, namespace, component, {SITE_LABEL: site} if site else None)
    if cni == "sriov":
        # The SR-IOV network device plugin's pool: Multus adds the resource request to the pod.
        metadata["annotations"] = {_RESOURCE_ANNOTATION: master}
    return {
        "apiVersion": NAD_API,
        "kind": "NetworkAttachmentDefinition",
        "metadata": metadata,
        "spec": {"config": json.dumps(config, indent=2)},
    }


def network_policy(
    name: str, namespace: str, component: str, *, ingress: list[Obj] | None = None, egress: list[Obj] | None = None
) -> Obj:
    """A NetworkPolicy for the pods of ``component``: each direction given is governed, an empty list denies it all."""
    spec: Obj = {"podSelector": {"matchLabels": selector(component)}, "policyTypes": []}
    for direction, rules in (("Ingress", ingress), ("Egress", egress)):
        if rules is not None:
            spec["policyTypes"].append(direction)
        if rules:
            spec[direction.lower()] = rules
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(name, namespace, component),
        "spec": spec,
    }


def mqtt_client_config(namespace: str, username: str) -> Obj:
    """The ``mqtt`` section of cp.yaml or upf.yaml: the broker's Service, over TLS, with the files of
    :func:`mqtt_client_volume`."""
    return {
        "host": f"edgecups-mqtt.{namespace}.svc",
        "port": MQTT_PORT,
        "username": username,
        "password_file": "/etc/edgecups/mqtt/password",
        "tls": {"ca": "/etc/edgecups/mqtt/ca.crt"},
    }


def serving_container(probe: list[str], pfcp_port: int, *, liveness_delay: int, grpc_port: int | None = None) -> Obj:
    """The ports and the `edgecups deploy probe` readiness and liveness probes of the control plane or an agent."""
    ports = [{"name": "grpc", "containerPort": grpc_port, "protocol": "TCP"}] if grpc_port is not None else []
    ports += [
        {"name": "pfcp", "containerPort": pfcp_port, "protocol": "UDP"},
        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
    ]
    return {
        "ports": ports,
        "readinessProbe": {"exec": {"command": probe}, "periodSeconds": 15, "timeoutSeconds": 5},
        "livenessProbe": {
            "exec": {"command": probe},
            "initialDelaySeconds": liveness_delay,
            "periodSeconds": 30,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
    }


def restricted() -> Obj:
    """A container security context of the restricted Pod Security Standard (the user comes from the pod)."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def mqtt_client_volume(password_secret: str) -> Obj:
    """The broker user's password and the broker's CA certificate, in one directory."""
    return {
        "name": "mqtt",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"secret": {"name": password_secret, "items": [{"key": "password", "path": "password"}]}},
                {"secret": {"name": "edgecups-mqtt-tls", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            ],
        },
    }


def to_yaml(objects: Sequence[Obj]) -> str:
    """A multi-document YAML stream of ``objects``, keys in the order they were built."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        # Objects share Python values (a probe command, a mount): written out in full, never as YAML
        # anchors and aliases, which not every Kubernetes tool reads.
        def ignore_aliases(self, data: object) -> bool:
            return True

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None  # config files embedded in ConfigMaps stay readable
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return "---\n".join(yaml.dump(o, Dumper=_Dumper, sort_keys=False, width=120) for o in objects)
