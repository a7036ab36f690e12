"""NetworkPolicies of the pod network: the control plane, the migration Job and the UPF agents.

PFCP (N4) and the UPFs' N3/N6 run on Multus attachments, which NetworkPolicies do not govern:
these cover the pod network only (API, metrics, MQTT, database, DNS).
"""

from __future__ import annotations

from typing import Final

from .objects import API_PORT, METRICS_PORT, MQTT_PORT, Obj, meta, selector
from .settings import RenderOptions

__all__ = ["network_policies"]

_CP: Final = "control-plane"


def network_policies(options: RenderOptions, db_cluster: str) -> list[Obj]:
    """Who may talk to the control plane, the migration Job and the UPF agents over the pod network."""
    ns = options.namespace
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": options.monitoring_namespace}}}
    dns = {
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }
    to_mqtt = {"to": [{"podSelector": {"matchLabels": selector("broker")}}], "ports": [{"port": MQTT_PORT}]}
    to_db: Obj = {"ports": [{"port": 5432, "protocol": "TCP"}]}
    if options.database_url is None:
        to_db["to"] = [{"podSelector": {"matchLabels": {"cnpg.io/cluster": db_cluster}}}]
    # PFCP (N4) and the UPFs' N3/N6 run on Multus attachments, which NetworkPolicies do not govern:
    # these cover the pod network only (API, metrics, MQTT, database, DNS).
    cp: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta("edgecups-cp", ns, _CP),
        "spec": {
            "podSelector": {"matchLabels": selector(_CP)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"ports": [{"port": API_PORT, "protocol": "TCP"}]},  # TLS and tokens guard the API itself
                {"from": [monitoring], "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]},
            ],
            "egress": [dns, to_mqtt, to_db],
        },
    }
    migration: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta("edgecups-migration", ns, "migration"),
        "spec": {
            "podSelector": {"matchLabels": selector("migration")},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [dns, to_db],
        },
    }
    upf: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta("edgecups-upf", ns, "upf"),
        "spec": {
            "podSelector": {"matchLabels": selector("upf")},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [monitoring], "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]}],
            "egress": [dns, to_mqtt],
        },
    }
    return [cp, migration, upf]
