"""The MQTT broker (Mosquitto, with deploy/mosquitto's configuration and ACL) and the monitoring objects."""

from __future__ import annotations

from typing import Final

from .objects import METRICS_PORT, MQTT_PORT, SITE_LABEL, Obj, RenderError, labels, meta, network_policy, selector
from .settings import RenderOptions

__all__ = ["BROKER_USERS", "CP_USER", "VIEWER_USER", "broker_objects", "container_mosquitto_conf", "monitoring_objects"]

#: Broker users that are not sites (deploy/mosquitto/acl); no site may take these names.
CP_USER: Final = "edgecups-cp"
VIEWER_USER: Final = "edgecups-viewer"
BROKER_USERS: Final = (CP_USER, VIEWER_USER)
_BROKER: Final = "broker"
_MOSQUITTO_UID: Final = 1883  # the eclipse-mosquitto image's mosquitto user

# deploy/mosquitto/mosquitto.conf is written for a Debian host; the container keeps the same settings
# with the image's paths and logs to stdout.
_CONTAINER_PATHS: Final = (
    ("/etc/mosquitto/certs/server.crt", "/mosquitto/certs/tls.crt"),
    ("/etc/mosquitto/certs/server.key", "/mosquitto/certs/tls.key"),
    ("/etc/mosquitto/certs/ca.crt", "/mosquitto/certs/ca.crt"),
    ("/etc/mosquitto/edgecups.passwd", "/mosquitto/passwd/passwd"),
    ("/etc/mosquitto/edgecups.acl", "/mosquitto/config/acl"),
    ("/var/lib/mosquitto/", "/mosquitto/data/"),
    ("log_dest syslog", "log_dest stdout"),
)


def container_mosquitto_conf(conf: str) -> str:
    """deploy/mosquitto/mosquitto.conf with the container's paths; RenderError if a path moved there."""
    missing = [old for old, _new in _CONTAINER_PATHS if old not in conf]
    if missing:
        raise RenderError(
            [
                f"deploy/mosquitto/mosquitto.conf: {old!r} not found; edge_sites/kube/broker.py maps it"
                for old in missing
            ]
        )
    for old, new in _CONTAINER_PATHS:
        conf = conf.replace(old, new)
    return "# deploy/mosquitto/mosquitto.conf with the container's paths (edgecups deploy render)\n" + conf


def broker_objects(options: RenderOptions, cp_site: str, mosquitto_conf: str, acl: str) -> list[Obj]:
    ns = options.namespace
    config: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("edgecups-mqtt-config", ns, _BROKER),
        "data": {"mosquitto.conf": container_mosquitto_conf(mosquitto_conf), "acl": acl},
    }
    claim: Obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta("edgecups-mqtt-data", ns, _BROKER),
        # Retained statuses and queued QoS 1 messages survive a broker restart (persistence true).
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    container: Obj = {
        "name": "mosquitto",
        "image": options.mosquitto_image,
        "command": ["mosquitto", "-c", "/mosquitto/config/mosquitto.conf"],
        "ports": [{"name": "mqtts", "containerPort": MQTT_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "mqtts"}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": "mqtts"}, "periodSeconds": 20, "initialDelaySeconds": 10},
        "volumeMounts": [
            {"name": "config", "mountPath": "/mosquitto/config", "readOnly": True},
            {"name": "passwd", "mountPath": "/mosquitto/passwd", "readOnly": True},
            {"name": "certs", "mountPath": "/mosquitto/certs", "readOnly": True},
            {"name": "data", "mountPath": "/mosquitto/data"},
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    deployment: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("edgecups-mqtt", ns, _BROKER),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # one pod owns the ReadWriteOnce volume
            "selector": {"matchLabels": selector(_BROKER)},
            "template": {
                "metadata": {"labels": labels(_BROKER)},
                "spec": {
                    "nodeSelector": {SITE_LABEL: cp_site},
                    "securityContext": {
                        "runAsUser": _MOSQUITTO_UID,
                        "runAsGroup": _MOSQUITTO_UID,
                        "fsGroup": _MOSQUITTO_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "edgecups-mqtt-config"}},
                        {"name": "passwd", "secret": {"secretName": "edgecups-mqtt-passwd", "defaultMode": 0o440}},
                        {"name": "certs", "secret": {"secretName": "edgecups-mqtt-tls", "defaultMode": 0o440}},
                        {"name": "data", "persistentVolumeClaim": {"claimName": "edgecups-mqtt-data"}},
                    ],
                },
            },
        },
    }
    service: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("edgecups-mqtt", ns, _BROKER),
        "spec": {
            "selector": selector(_BROKER),
            "ports": [{"name": "mqtts", "port": MQTT_PORT, "targetPort": "mqtts", "protocol": "TCP"}],
        },
    }
    # The control plane and the agents publish; operators' tools (edgecups-viewer) read from outside.
    policy = network_policy("edgecups-mqtt", ns, _BROKER, ingress=[{"ports": [{"port": MQTT_PORT, "protocol": "TCP"}]}])
    return [config, claim, deployment, service, policy]


def monitoring_objects(options: RenderOptions, dashboard: str) -> list[Obj]:
    ns = options.namespace
    upf_metrics: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("edgecups-upf-metrics", ns, "upf"),
        # Headless: Prometheus scrapes each agent's pod address, one target per UPF.
        "spec": {
            "clusterIP": "None",
            "selector": selector("upf"),
            "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }

    def monitor(name: str, component: str, extra: Obj) -> Obj:
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": meta(name, ns, component),
            "spec": {
                "selector": {"matchLabels": selector(component)},
                "namespaceSelector": {"matchNames": [ns]},
                "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
                **extra,
            },
        }

    dashboard_map: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        # grafana_dashboard: the label Grafana's dashboard sidecar (kube-prometheus-stack) watches for.
        "metadata": meta("edgecups-grafana-dashboard", ns, "monitoring", {"grafana_dashboard": "1"}),
        "data": {"edgecups-dashboard.json": dashboard},
    }
    return [
        upf_metrics,
        monitor("edgecups-cp", "control-plane", {}),
        # Every agent series carries its Node ID (upf); the pod's site label comes along as a target label.
        monitor("edgecups-upf", "upf", {"podTargetLabels": [SITE_LABEL]}),
        dashboard_map,
    ]
