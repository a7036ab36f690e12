"""The shared part of a deployment (the Kustomize base): control plane, its migration, database, monitoring.

Theory of operation:

* The control plane is one pod (``replicas: 1``, ``Recreate``): it is the PFCP CP function, one
  Node ID towards every UPF, and it listens on a specific N4 address (it goes into every CP
  F-SEID, TS 29.244 §8.2.37), which a Multus attachment with a static address gives it. A UPF
  keeps forwarding while it restarts (``cp_lost_grace``), so a restart costs session set-up time only.
* Migrations before serving: the Job ``edgecups-db-upgrade-<tag>`` runs ``edgecups db upgrade``
  with the new image, and the control plane's init container runs ``edgecups db check`` with
  that same image until the schema is at the head that image expects. A pod of a new version
  therefore cannot start before the Job has migrated the database, whatever order the objects
  are applied in. The Job's name carries the image tag, so each version gets its own Job
  (Jobs are immutable) and an unchanged version re-applies as unchanged.
* The database is CloudNativePG's (a ``postgresql.cnpg.io/v1`` Cluster) or an external URL; the
  password reaches libpq as ``PGPASSWORD`` from a Secret, so the configuration stays a ConfigMap.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Final

import yaml

from .broker import CP_USER, broker_objects, monitoring_objects
from .objects import (
    API_PORT,
    CONFIG_HASH,
    IMAGE_UID,
    METRICS_PORT,
    NETWORKS_ANNOTATION,
    PFCP_PORT,
    SITE_LABEL,
    Obj,
    config_hash,
    dns_label,
    labels,
    meta,
    mqtt_client_config,
    mqtt_client_volume,
    network_attachment,
    restricted,
    secret_volume,
    selector,
    serving_container,
)
from .policies import network_policies
from .settings import RenderOptions, SiteSettings

__all__ = [
    "CP_CONFIG_PATH",
    "PROBE",
    "core_objects",
    "cp_config",
    "migration_job_name",
    "network_selection",
    "with_prefix",
]

CP_CONFIG_PATH: Final = "/etc/edgecups/cp.yaml"
#: `edgecups deploy probe` without loading every command of the CLI (a third of the CPU, each probe).
PROBE: Final = ("python", "-m", "control_plane.cli.deploy_commands", "probe")
DB_CLUSTER: Final = "edgecups-db"
_CP: Final = "control-plane"


def migration_job_name(image: str) -> str:
    """``edgecups-db-upgrade-<tag>``: one Job per image version (a digest counts by its first 12 digits)."""
    ref = image.rsplit("@", 1)[1].split(":")[-1][:12] if "@" in image else image.rsplit("/", 1)[-1].partition(":")[2]
    return f"edgecups-db-upgrade-{dns_label(ref or 'latest', 30)}"


def network_selection(name: str, interface: str, ips: list[str] | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"name": name, "interface": interface}
    if ips:
        element["ips"] = ips
    return element


def with_prefix(address: str, length: int | None) -> str:
    """``address/length``; without a length, the usual subnet: /24 for IPv4, /64 for IPv6."""
    return f"{address}/{length or (24 if ipaddress.ip_address(address).version == 4 else 64)}"


def n4_cidr(address: str, settings: SiteSettings) -> str:
    return with_prefix(address, settings.n4_prefix_length)


def database_url(options: RenderOptions) -> str:
    if options.database_url is not None:
        return options.database_url
    # CloudNativePG's read-write Service and its CA (secret <cluster>-ca) for verify-full.
    return (
        f"postgresql://edgecups@{DB_CLUSTER}-rw.{options.namespace}.svc:5432/edgecups"
        "?sslmode=verify-full&sslrootcert=/etc/edgecups/db-ca/ca.crt"
    )


def cp_config(options: RenderOptions) -> dict[str, Any]:
    """The control plane's cp.yaml (control_plane/config.py) as plain data."""
    return {
        "node_id": options.cp_pfcp_address,
        "n4": {"address": options.cp_pfcp_address, "port": PFCP_PORT},
        "database": {"url": database_url(options)},
        "api": {
            "address": "0.0.0.0",
            "port": API_PORT,
            "tls": {"cert": "/etc/edgecups/tls/tls.crt", "key": "/etc/edgecups/tls/tls.key"},
            "tokens_file": "/etc/edgecups/tokens/tokens.yaml",
        },
        "log_level": "info",
        "metrics": {"address": "0.0.0.0", "port": METRICS_PORT},
        "mqtt": mqtt_client_config(options.namespace, CP_USER),
    }


def _db_env(options: RenderOptions) -> list[Obj]:
    secret = f"{DB_CLUSTER}-app" if options.database_url is None else "edgecups-db-credentials"
    ref = {"name": secret, "key": "password", "optional": options.database_url is not None}
    return [{"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": ref}}]


def _db_volumes(options: RenderOptions) -> tuple[list[Obj], list[Obj]]:
    if options.database_url is not None:
        return [], []
    volume = secret_volume("db-ca", f"{DB_CLUSTER}-ca", ["ca.crt"])
    return [volume], [{"name": "db-ca", "mountPath": "/etc/edgecups/db-ca", "readOnly": True}]


def _pod_security() -> Obj:
    return {
        "runAsUser": IMAGE_UID,
        "runAsGroup": IMAGE_UID,
        "fsGroup": IMAGE_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _migration_job(options: RenderOptions, config_volume: Obj, mount: Obj) -> Obj:
    db_volumes, db_mounts = _db_volumes(options)
    container = {
        "name": "db-upgrade",
        "image": options.cp_image,
        "command": ["edgecups", "db", "upgrade", "--config", CP_CONFIG_PATH],
        "env": _db_env(options),
        "volumeMounts": [mount, *db_mounts],
        "securityContext": restricted(),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(migration_job_name(options.cp_image), options.namespace, "migration"),
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": labels("migration")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "securityContext": _pod_security(),
                    "containers": [container],
                    "volumes": [config_volume, *db_volumes],
                },
            },
        },
    }


def _cp_deployment(
    options: RenderOptions, cp_site: str, settings: SiteSettings, config_volume: Obj, config_map: Obj
) -> Obj:
    config_mount = {"name": "config", "mountPath": CP_CONFIG_PATH, "subPath": "cp.yaml", "readOnly": True}
    db_volumes, db_mounts = _db_volumes(options)
    probe_cmd = [
        *PROBE, "cp", "--config", CP_CONFIG_PATH,
        "--ca", "/etc/edgecups/tls/ca.crt", "--server-name", f"edgecups-cp.{options.namespace}.svc",
    ]  # fmt: skip
    wait = {
        "name": "wait-for-schema",
        "image": options.cp_image,
        # Exit 0 only once the database is at the head revision this image expects (the Job migrates it).
        "command": ["/bin/sh", "-c", f"until edgecups db check --config {CP_CONFIG_PATH}; do sleep 5; done"],
        "env": _db_env(options),
        "volumeMounts": [config_mount, *db_mounts],
        "securityContext": restricted(),
    }
    container = {
        "name": "cp",
        "image": options.cp_image,
        # The image's entrypoint is `edgecups cp` (deploy/docker/cp.Dockerfile).
        "args": ["--config", CP_CONFIG_PATH],
        "env": _db_env(options),
        # grpc.health.v1 over the API's TLS (a kubelet grpc probe cannot speak TLS): NOT_SERVING while stopping.
        **serving_container(probe_cmd, PFCP_PORT, liveness_delay=30, grpc_port=API_PORT),
        "volumeMounts": [
            config_mount,
            {"name": "tls", "mountPath": "/etc/edgecups/tls", "readOnly": True},
            {"name": "tokens", "mountPath": "/etc/edgecups/tokens", "readOnly": True},
            {"name": "mqtt", "mountPath": "/etc/edgecups/mqtt", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            *db_mounts,
        ],
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": restricted(),
    }
    n4 = network_selection("edgecups-cp-n4", "n4", [n4_cidr(options.cp_pfcp_address, settings)])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("edgecups-cp", options.namespace, _CP),
        "spec": {
            "replicas": 1,
            # One PFCP CP function on one N4 address: never two pods at once.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(_CP)},
            "template": {
                "metadata": {
                    "labels": labels(_CP),
                    "annotations": {
                        NETWORKS_ANNOTATION: json.dumps([n4]),
                        CONFIG_HASH: config_hash(config_map["data"]),
                    },
                },
                "spec": {
                    "nodeSelector": {SITE_LABEL: cp_site},
                    "securityContext": _pod_security(),
                    "terminationGracePeriodSeconds": 30,
                    "initContainers": [wait],
                    "containers": [container],
                    "volumes": [
                        config_volume,
                        secret_volume("tls", "edgecups-cp-tls", ["tls.crt", "tls.key", "ca.crt"]),
                        secret_volume("tokens", "edgecups-cp-tokens", ["tokens.yaml"]),
                        mqtt_client_volume("edgecups-mqtt-cp"),
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        *db_volumes,
                    ],
                },
            },
        },
    }


def _services(options: RenderOptions) -> list[Obj]:
    ns = options.namespace
    grpc: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("edgecups-cp", ns, _CP),
        "spec": {
            "selector": selector(_CP),
            "ports": [
                {"name": "grpc", "port": API_PORT, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
                {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
            ],
        },
    }
    # PFCP listens on the Multus N4 address, not the pod IP: a Service with a selector would send UDP 8805
    # where nothing listens. This one has no selector and one endpoint, the N4 address, so the name
    # edgecups-cp-pfcp.<namespace>.svc resolves to where the control plane's PFCP really is.
    pfcp: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("edgecups-cp-pfcp", ns, _CP),
        "spec": {"clusterIP": "None", "ports": [{"name": "pfcp", "port": PFCP_PORT, "protocol": "UDP"}]},
    }
    family = "IPv6" if ":" in options.cp_pfcp_address else "IPv4"
    endpoints: Obj = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        # managed-by: not the EndpointSlice controller's, which leaves it alone (a Service without selector).
        "metadata": meta(
            "edgecups-cp-pfcp",
            ns,
            _CP,
            {"kubernetes.io/service-name": "edgecups-cp-pfcp", "endpointslice.kubernetes.io/managed-by": "edgecups"},
        ),
        "addressType": family,
        "endpoints": [{"addresses": [options.cp_pfcp_address], "conditions": {"ready": True}}],
        "ports": [{"name": "pfcp", "port": PFCP_PORT, "protocol": "UDP"}],
    }
    return [grpc, pfcp, endpoints]


def _database(options: RenderOptions, cp_site: str) -> list[Obj]:
    if options.database_url is not None:
        return []
    return [
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": meta(DB_CLUSTER, options.namespace, "database"),
            "spec": {
                # A primary and a synchronous-capable standby; the operator fails over and owns backups.
                "instances": 2,
                "storage": {"size": "10Gi"},
                "bootstrap": {"initdb": {"database": "edgecups", "owner": "edgecups"}},
                "affinity": {"nodeSelector": {SITE_LABEL: cp_site}},
                "monitoring": {"enablePodMonitor": False},
            },
        }
    ]


def _n4_routes(options: RenderOptions, cp_site: str, upf_n4: list[str]) -> list[tuple[str, str | None]] | None:
    settings = options.site(cp_site)
    if settings.n4_gateway is None:
        return None
    own = ipaddress.ip_interface(n4_cidr(options.cp_pfcp_address, settings)).network
    far = sorted({a for a in upf_n4 if ipaddress.ip_address(a) not in own}, key=ipaddress.ip_address)
    return [(f"{a}/{32 if ipaddress.ip_address(a).version == 4 else 128}", settings.n4_gateway) for a in far] or None


def core_objects(
    options: RenderOptions, cp_site: str, upf_n4: list[str], mosquitto_conf: str, acl: str, dashboard: str
) -> list[Obj]:
    """The base's objects, in apply order (namespace and configuration before what uses them).

    ``upf_n4``: every UPF's N4 address; those off the control plane's N4 prefix are routed through
    the control plane site's ``n4_gateway``, when it has one.
    """
    ns = options.namespace
    settings = options.site(cp_site)
    config_text = "# edgecups cp --config: rendered by `edgecups deploy render`\n" + yaml.safe_dump(
        cp_config(options), sort_keys=False
    )
    config_map: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("edgecups-cp-config", ns, _CP),
        "data": {"cp.yaml": config_text},
    }
    config_volume: Obj = {"name": "config", "configMap": {"name": "edgecups-cp-config"}}
    job_mount = {"name": "config", "mountPath": CP_CONFIG_PATH, "subPath": "cp.yaml", "readOnly": True}
    pdb: Obj = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta("edgecups-cp", ns, _CP),
        # The single control plane is not evicted by a drain: move it deliberately (README: Scale).
        "spec": {"minAvailable": 1, "selector": {"matchLabels": selector(_CP)}},
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels("namespace")}},
        config_map,
        network_attachment(
            "edgecups-cp-n4",
            ns,
            _CP,
            settings.cni,
            settings.n4_master,
            static_ip=True,
            routes=_n4_routes(options, cp_site, upf_n4),
        ),
        *_database(options, cp_site),
        _migration_job(options, config_volume, job_mount),
        _cp_deployment(options, cp_site, settings, config_volume, config_map),
        *_services(options),
        pdb,
        *network_policies(options, DB_CLUSTER),
        *broker_objects(options, cp_site, mosquitto_conf, acl),
        *monitoring_objects(options, dashboard),
    ]
