"""One site's overlay: per UPF of the site a VPP-based CNF pod (VPP + the agent), its N4/N3/N6 attachments.

Theory of operation:

* A UPF manifest (Node ID, N4 address, N3 addresses, Network Instances, capacity) and the pools
  of its site give the agent's configuration (user_plane/config.py's format, ``driver: vpp``) as
  plain data; the settings add what the manifests do not hold (host devices, N6 addresses).
* The pod has two containers sharing the pod's network namespace and two emptyDir volumes:
  ``vpp-run`` (VPP's binary API socket, /run/vpp/api.sock, and its CLI socket) and ``memif``
  (memif control sockets, for CNFs chained to the UPF over shared memory). VPP runs as root
  with the capabilities it needs; the agent runs as the unprivileged ``edgecups`` user, in
  VPP's socket group (startup.conf ``unix { gid }``), with every capability dropped.
* Multus attaches N4 (a Linux address: the agent's PFCP socket), N3 and each N6 (no Linux
  address: VPP takes them over as af_packet host interfaces and holds their addresses).
* ``nodeSelector: edgecups.io/site=<site>``: a UPF runs only on its site's nodes; the UPFs of
  one site prefer different nodes, and at most one of them is evicted at a time (PDB), so a
  policy's failover has another UPF to move to.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any, Final

from ..manifests import Manifest
from .core import PROBE, n4_cidr, network_selection, with_prefix
from .objects import (
    CONFIG_HASH,
    IMAGE_UID,
    METRICS_PORT,
    NETWORKS_ANNOTATION,
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
    selector,
    serving_container,
)
from .settings import RenderOptions, SiteSettings

__all__ = ["AGENT_CONFIG_PATH", "UPF_COMPONENT", "agent_config", "n6_interface", "site_objects", "upf_name"]

UPF_COMPONENT: Final = "upf"
AGENT_CONFIG_PATH: Final = "/etc/edgecups/upf.yaml"
VPP_API_SOCKET: Final = "/run/vpp/api.sock"
MEMIF_DIR: Final = "/run/edgecups/memif"
VPP_API_DIR: Final = "/usr/share/vpp/api"
_UPF_LABEL: Final = "edgecups.io/upf"


def upf_name(node_id: str) -> str:
    return f"edgecups-upf-{dns_label(node_id)}"


def n6_interface(instance: str, index: int) -> str:
    """The pod's N6 interface of a Network Instance: ``n6-<instance>`` when that is a short, plain name."""
    name = f"n6-{instance}"
    plain = name.replace("-", "").replace(".", "").isalnum()
    return name if len(name) <= 15 and plain else f"n6-{index}"


def _pools(upf: Manifest, instance_dnns: dict[str, list[str]], pools: Sequence[Manifest]) -> dict[str, list[str]]:
    # The UE pools each Network Instance routes: its DNNs' pools at the UPF's site, or at no site in particular.
    return {
        instance: [
            p.spec["cidr"] for p in pools if p.spec["dnn"] in dnns and p.spec["site"] in (None, upf.spec["site"])
        ]
        for instance, dnns in instance_dnns.items()
    }


def agent_config(
    upf: Manifest, instances: dict[str, list[str]], pools: Sequence[Manifest], options: RenderOptions
) -> dict[str, Any]:
    """The agent's upf.yaml (user_plane/config.py, ``driver: vpp``) for one UPF manifest, as plain data.

    ``instances``: the Network Instances the UPF serves and the DNNs behind each.
    """
    site = upf.spec["site"]
    settings = options.site(site)
    own = options.upf(upf.name)
    ue_pools = _pools(upf, instances, pools)
    n6: dict[str, Any] = {}
    vpp_n6: dict[str, Any] = {}
    for index, instance in enumerate(sorted(instances)):
        device = n6_interface(instance, index)
        n6[instance] = {"interface": device, "ue_pool": ue_pools[instance]}
        if instance in settings.n6_gateways:
            n6[instance]["gateway"] = settings.n6_gateways[instance]
        vpp_n6[instance] = {
            # af_packet on the pod's Multus interface (VPP.md: host-<Linux name>), one VRF per instance.
            "interface": f"host-{device}",
            "address": [own.n6_addresses.get(instance, "")],
            "table_id": index + 1,
        }
    return {
        "node_id": upf.name,
        "n4": {"address": upf.spec["n4_address"], "port": upf.spec["n4_port"]},
        "n3": list(upf.spec["n3_addresses"]),
        "n6": n6,
        # The control plane's N4 address: its PFCP requests come from there (TS 29.244 §6.2.6: we choose).
        "allowed_cps": [options.cp_pfcp_address],
        # FTUP: the UP function allocates F-TEIDs when teid_allocation is "up" (CHOOSE, §8.2.3).
        "features": ["FTUP"],
        "driver": "vpp",
        "vpp": {
            "api_socket": VPP_API_SOCKET,
            # VPP's own schema files, copied from the VPP image at pod start: they match the running VPP.
            "api_dir": VPP_API_DIR,
            "n3": {
                "interface": "host-n3",
                "address": [with_prefix(a, settings.n3_prefix_length) for a in upf.spec["n3_addresses"]],
                "table_id": 0,
            },
            "n6": vpp_n6,
        },
        "log_level": "info",
        "capacity": {"max_sessions": upf.spec["capacity"]},
        # deploy/mosquitto/acl: a site's user (named like the site) publishes under its own branch only.
        "mqtt": {**mqtt_client_config(options.namespace, site), "site": site},
        "metrics": {"address": "0.0.0.0", "port": METRICS_PORT},
    }


def startup_conf(settings: SiteSettings, devices: Sequence[str]) -> tuple[str, str]:
    """VPP's startup.conf and its startup CLI (the af_packet interfaces on the pod's Multus devices)."""
    workers = settings.cpu - 1
    # Core numbers relative to the container's cpuset (static CPU manager, Guaranteed QoS).
    cpu = ["relative", "main-core 0"]
    if workers:
        cpu.append(f"corelist-workers 1-{workers}" if workers > 1 else "corelist-workers 1")
    conf = (
        "# VPP for an EdgeCUPS UPF pod (edgecups deploy render)\n"
        "unix {\n"
        "  nodaemon\n"
        "  log /dev/stdout\n"
        "  cli-listen /run/vpp/cli.sock\n"
        # Files VPP creates (the API socket) get the agent's group, writable by the group.
        f"  gid {IMAGE_UID}\n"
        "  startup-config /etc/vpp/setup.cli\n"
        "}\n"
        f"socksvr {{\n  socket-name {VPP_API_SOCKET}\n}}\n"
        "cpu {\n" + "".join(f"  {line}\n" for line in cpu) + "}\n"
        "buffers {\n  buffers-per-numa 16384\n}\n"
        # af_packet interfaces: DPDK stays off unless the site's devices are bound for it (README).
        "plugins {\n  plugin dpdk_plugin.so { disable }\n}\n"
    )
    cli = "".join(f"create host-interface name {device}\n" for device in devices)
    return conf, cli


def _host_length(address: str) -> int:
    return 32 if ipaddress.ip_address(address).version == 4 else 128


def _nad_name(site: str, network: str) -> str:
    return f"edgecups-{dns_label(site)}-{network}"


def _upf_deployment(
    upf: Manifest, options: RenderOptions, settings: SiteSettings, n6: dict[str, str], config_map: Obj
) -> Obj:
    site = upf.spec["site"]
    name = upf_name(upf.name)
    pod_labels = {SITE_LABEL: site, _UPF_LABEL: dns_label(upf.name)}
    networks = [
        network_selection(_nad_name(site, "n4"), "n4", [n4_cidr(upf.spec["n4_address"], settings)]),
        network_selection(_nad_name(site, "n3"), "n3"),
        *(network_selection(_nad_name(site, f"n6-{dns_label(i, 20)}"), device) for i, device in n6.items()),
    ]
    hugepages = f"hugepages-{settings.hugepage_size}"
    vpp_resources = {"cpu": str(settings.cpu), "memory": settings.memory, hugepages: settings.hugepages}
    vpp = {
        "name": "vpp",
        "image": options.vpp_image,
        "command": ["/usr/bin/vpp", "-c", "/etc/vpp/startup.conf"],
        # Requests equal to limits: Guaranteed QoS, so the static CPU manager pins whole cores.
        "resources": {"requests": vpp_resources, "limits": vpp_resources},
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": False,
            # IPC_LOCK: hugepage memory; NET_ADMIN and NET_RAW: af_packet on the Multus devices.
            "capabilities": {"drop": ["ALL"], "add": ["IPC_LOCK", "NET_ADMIN", "NET_RAW", "SYS_NICE"]},
        },
        "livenessProbe": {
            "exec": {"command": ["vppctl", "-s", "/run/vpp/cli.sock", "show", "version"]},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
        },
        "volumeMounts": [
            {"name": "vpp-run", "mountPath": "/run/vpp"},
            {"name": "memif", "mountPath": MEMIF_DIR},
            {"name": "hugepages", "mountPath": "/dev/hugepages"},
            {"name": "config", "mountPath": "/etc/vpp/startup.conf", "subPath": "startup.conf", "readOnly": True},
            {"name": "config", "mountPath": "/etc/vpp/setup.cli", "subPath": "setup.cli", "readOnly": True},
        ],
    }
    probe = [*PROBE, "upf", "--config", AGENT_CONFIG_PATH]
    agent = {
        "name": "agent",
        "image": options.upf_image,
        # The image's entrypoint is `edgecups upf` (deploy/docker/upf.Dockerfile).
        "args": ["--config", AGENT_CONFIG_PATH],
        # A PFCP Heartbeat Request to the agent's own N4 address, answered or not (TS 29.244 §6.2.2).
        **serving_container(probe, upf.spec["n4_port"], liveness_delay=20),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {"runAsUser": IMAGE_UID, "runAsGroup": IMAGE_UID, **restricted()},
        "volumeMounts": [
            {"name": "vpp-run", "mountPath": "/run/vpp"},
            {"name": "memif", "mountPath": MEMIF_DIR},
            {"name": "vpp-api", "mountPath": VPP_API_DIR, "readOnly": True},
            {"name": "config", "mountPath": AGENT_CONFIG_PATH, "subPath": "upf.yaml", "readOnly": True},
            {"name": "mqtt", "mountPath": "/etc/edgecups/mqtt", "readOnly": True},
        ],
    }
    schemas = {
        "name": "vpp-api-schema",
        "image": options.vpp_image,
        "command": ["cp", "-R", f"{VPP_API_DIR}/.", "/vpp-api/"],
        "volumeMounts": [{"name": "vpp-api", "mountPath": "/vpp-api"}],
        "securityContext": {"runAsUser": IMAGE_UID, **restricted()},
    }
    mqtt_volume = mqtt_client_volume(f"edgecups-mqtt-{dns_label(site)}")
    spread = {
        "weight": 100,
        "podAffinityTerm": {
            "labelSelector": {"matchLabels": selector(UPF_COMPONENT, {SITE_LABEL: site})},
            "topologyKey": "kubernetes.io/hostname",
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, options.namespace, UPF_COMPONENT, pod_labels),
        "spec": {
            "replicas": 1,
            # One Node ID on one N4 address: the old pod goes before the new one binds it.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(UPF_COMPONENT, pod_labels)},
            "template": {
                "metadata": {
                    "labels": labels(UPF_COMPONENT, pod_labels),
                    "annotations": {
                        NETWORKS_ANNOTATION: json.dumps(networks),
                        # A changed configuration rolls the pod (a ConfigMap change alone would not).
                        CONFIG_HASH: config_hash(config_map["data"]),
                    },
                },
                "spec": {
                    "nodeSelector": {SITE_LABEL: site},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [spread]}},
                    "securityContext": {"fsGroup": IMAGE_UID, "seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": [schemas],
                    "containers": [vpp, agent],
                    "volumes": [
                        {"name": "vpp-run", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                        {"name": "memif", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                        {"name": "vpp-api", "emptyDir": {"sizeLimit": "64Mi"}},
                        {"name": "hugepages", "emptyDir": {"medium": f"HugePages-{settings.hugepage_size}"}},
                        {"name": "config", "configMap": {"name": config_map["metadata"]["name"]}},
                        mqtt_volume,
                    ],
                },
            },
        },
    }


def site_objects(
    site: str,
    upfs: Sequence[Manifest],
    dnn_instances: dict[str, str],
    pools: Sequence[Manifest],
    options: RenderOptions,
) -> list[Obj]:
    """The overlay of one site: its networks, and per UPF its configuration and pod; a PDB over them.

    ``dnn_instances``: each DNN's Network Instance (the DNN manifests' ``network_instance``).
    """
    import yaml

    ns = options.namespace
    settings = options.site(site)
    # Towards the control plane's N4 address through the site's N4 gateway, when it is not on-link.
    cp = ipaddress.ip_address(options.cp_pfcp_address)
    on_link = any(cp in ipaddress.ip_interface(n4_cidr(u.spec["n4_address"], settings)).network for u in upfs)
    routes = [(f"{cp}/{_host_length(str(cp))}", settings.n4_gateway)] if not on_link else []
    out: list[Obj] = [
        network_attachment(_nad_name(site, "n4"), ns, UPF_COMPONENT, settings.cni, settings.n4_master,
                           static_ip=True, site=site, routes=routes if settings.n4_gateway and routes else None),
        network_attachment(_nad_name(site, "n3"), ns, UPF_COMPONENT, settings.cni, settings.n3_master,
                           static_ip=False, site=site),
    ]  # fmt: skip
    instances_seen: set[str] = set()
    for upf in upfs:
        instances: dict[str, list[str]] = {}
        for dnn in upf.spec["network_instances"]:
            instances.setdefault(dnn_instances[dnn], []).append(dnn)
        config = agent_config(upf, instances, pools, options)
        devices = {i: config["n6"][i]["interface"] for i in sorted(instances)}
        for instance in sorted(instances):
            if instance not in instances_seen:
                instances_seen.add(instance)
                out.append(
                    network_attachment(_nad_name(site, f"n6-{dns_label(instance, 20)}"), ns, UPF_COMPONENT,
                                       settings.cni, settings.n6_device(instance), static_ip=False, site=site)
                )  # fmt: skip
        conf, cli = startup_conf(settings, ["n3", *devices.values()])
        name = upf_name(upf.name)
        config_map: Obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(name, ns, UPF_COMPONENT, {SITE_LABEL: site}),
            "data": {
                "upf.yaml": f"# edgecups upf --config: UPF {upf.name} of site {site} (edgecups deploy render)\n"
                + yaml.safe_dump(config, sort_keys=False),
                "startup.conf": conf,
                "setup.cli": cli,
            },
        }
        out += [config_map, _upf_deployment(upf, options, settings, devices, config_map)]
    out.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(f"edgecups-upf-{dns_label(site)}", ns, UPF_COMPONENT, {SITE_LABEL: site}),
            # A drain takes one UPF of the site at a time: the others keep the site's sessions (failover).
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(UPF_COMPONENT, {SITE_LABEL: site})}},
        }
    )
    return out
