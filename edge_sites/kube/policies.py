"""NetworkPolicies of the pod network: the control plane, the migration Job and the UPF agents.

PFCP (N4) and the UPFs' N3/N6 run on Multus attachments, which NetworkPolicies do not govern:
these cover the pod network only (API, metrics, MQTT, database, DNS).
"""

from __future__ import annotations

from typing import Final

from .objects import API_PORT, METRICS_PORT, MQTT_PORT, Obj, network_policy, selector
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
    scrape = {"from": [monitoring], "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]}
    api = {"ports": [{"port": API_PORT, "protocol": "TCP"}]}  # TLS and tokens guard the API itself
    cp = network_policy("edgecups-cp", ns, _CP, ingress=[api, scrape], egress=[dns, to_mqtt, to_db])
    migration = network_policy("edgecups-migration", ns, "migration", ingress=[], egress=[dns, to_db])
    upf = network_policy("edgecups-upf", ns, "upf", ingress=[scrape], egress=[dns, to_mqtt])
    return [cp, migration, upf]
