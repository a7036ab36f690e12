"""Site manifests to Kubernetes objects: the base and one overlay per site, checked before anything is written.

Theory of operation:

* :func:`render` loads the manifests with :func:`edge_sites.load_manifests` (every problem
  reported at once, as ``edgecups apply`` reports them), checks what a deployment needs
  beyond a valid set (a site name usable as a label, pools for every Network Instance a UPF
  serves, N6 addresses, settings that name real sites and UPFs), and builds every object in
  memory. Any problem raises :class:`ManifestError` or :class:`RenderError` listing all of them.
* :func:`write` then writes the tree into a new directory beside ``out`` and swaps it in, so a
  failed render writes nothing and a render never leaves a half-written tree.
* The kustomizations hold ``resources`` only, no transformers: ``kubectl apply -k out/`` applies
  exactly the objects of ``out/all.yaml``, which is what the tests validate. Operators who want
  patches or image overrides put their own kustomization on top of ``out/``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import yaml

from .._checks import did_you_mean
from ..manifests import Manifest, load_manifests
from .broker import BROKER_USERS
from .core import core_objects
from .objects import COMPONENT, Obj, RenderError, dns_label, is_label_value, to_yaml
from .settings import RenderOptions
from .upf import n6_interface, site_objects, upf_name

__all__ = ["MARKER", "Rendered", "default_deploy_dir", "render", "write"]

#: A file every rendered tree holds: ``write`` replaces only a directory that has it (or an empty one).
MARKER: Final = ".edgecups-render"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
# What the agent takes as a Network Instance name (user_plane/config.py): dot-separated RFC 1123 labels.
_INSTANCE_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


@dataclass(frozen=True, slots=True)
class Rendered:
    """The objects of a deployment: the base's, and each site's overlay's, in apply order."""

    base: list[Obj]
    sites: dict[str, list[Obj]] = field(default_factory=dict)
    secrets: str = ""

    def objects(self) -> list[Obj]:
        """Every object, as ``kubectl apply -k`` on the written tree applies them."""
        return [*self.base, *(o for objects in self.sites.values() for o in objects)]


def default_deploy_dir() -> Path:
    """The repository's deploy/ directory (the broker's configuration and the Grafana dashboard)."""
    return Path(__file__).resolve().parents[2] / "deploy"


def _read(path: Path, errors: list[str]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        errors.append(f"{path}: cannot read: {exc.strerror or exc} (give the repository's deploy/ with --deploy-dir)")
        return ""


def render(paths: Sequence[Path], options: RenderOptions, *, deploy_dir: Path | None = None) -> Rendered:
    """The deployment of the manifests at ``paths`` (files or directories) with ``options``."""
    manifests = load_manifests(list(paths))  # ManifestError lists every problem of the set
    errors: list[str] = []
    deploy = deploy_dir or default_deploy_dir()
    conf = _read(deploy / "mosquitto" / "mosquitto.conf", errors)
    acl = _read(deploy / "mosquitto" / "acl", errors)
    dashboard = _read(deploy / "grafana" / "edgecups-dashboard.json", errors)
    by_kind: dict[str, list[Manifest]] = {}
    for m in manifests:
        by_kind.setdefault(m.kind, []).append(m)
    sites = {m.name: m for m in by_kind.get("Site", [])}
    upfs = by_kind.get("UPF", [])
    pools = by_kind.get("Pool", [])
    dnn_instances = {m.name: m.spec["network_instance"] for m in by_kind.get("DNN", [])}
    cp_site = _check_options(options, sites, upfs, errors)
    _check_sites(sites, upfs, errors)
    _check_upfs(upfs, pools, dnn_instances, options, errors)
    if errors:
        raise RenderError(errors)
    assert cp_site is not None
    base = core_objects(options, cp_site, [u.spec["n4_address"] for u in upfs], conf, acl, dashboard)
    overlays = {
        site: site_objects(site, [u for u in upfs if u.spec["site"] == site], dnn_instances, pools, options)
        for site in sites
        if any(u.spec["site"] == site for u in upfs)
    }
    return Rendered(base, overlays, _secrets(options, list(overlays), cp_site))


def _check_options(
    options: RenderOptions, sites: dict[str, Manifest], upfs: list[Manifest], errors: list[str]
) -> str | None:
    if not _DNS_LABEL.match(options.namespace):
        errors.append(f"--namespace: {options.namespace!r} is not a namespace name (lower-case RFC 1123 label)")
    try:
        address = ipaddress.ip_address(options.cp_pfcp_address)
    except ValueError:
        errors.append(f"--cp-pfcp-address: {options.cp_pfcp_address!r} is not an IP address")
    else:
        if address.is_unspecified or address.is_multicast or address.is_loopback:
            errors.append(
                f"--cp-pfcp-address: {address} cannot be the control plane's N4 address (a UPF must reach it)"
            )
        for upf in upfs:
            if upf.spec["n4_address"] == str(address):
                errors.append(f"--cp-pfcp-address: {address} is the N4 address of {upf.where}")
    for flag, image in (("--cp-image", options.cp_image), ("--upf-image", options.upf_image),
                        ("--vpp-image", options.vpp_image)):  # fmt: skip
        if not image or any(c.isspace() for c in image):
            errors.append(f"{flag}: {image!r} is not an image reference")
    for name in options.sites:
        if name != "*" and name not in sites:
            errors.append(f"settings: sites.{name}: no Site {name!r} in the manifests{did_you_mean(name, sites)}")
    upf_names = {u.name for u in upfs}
    for name in options.upfs:
        if name not in upf_names:
            errors.append(f"settings: upfs.{name}: no UPF {name!r} in the manifests{did_you_mean(name, upf_names)}")
    if options.cp_site is not None:
        if options.cp_site not in sites:
            hint = did_you_mean(options.cp_site, sites)
            errors.append(f"--cp-site: no Site {options.cp_site!r} in the manifests{hint}")
            return None
        return options.cp_site
    clouds = [name for name, m in sites.items() if m.spec["kind"] == "cloud"]
    if len(clouds) != 1:
        found = f"the cloud sites are {', '.join(clouds)}" if clouds else "there is no cloud site"
        errors.append(f"--cp-site: required: {found}, so name the site whose nodes run the control plane")
        return None
    return clouds[0]


def _check_sites(sites: dict[str, Manifest], upfs: list[Manifest], errors: list[str]) -> None:
    slugs: dict[str, str] = {}
    for name, m in sites.items():
        if not is_label_value(name):
            errors.append(
                f"{m.where}: metadata.name: {name!r} cannot be a Kubernetes label value (the node label "
                "edgecups.io/site): at most 63 letters, digits, '-', '_' or '.', a letter or digit at both ends"
            )
        if name in BROKER_USERS:
            errors.append(
                f"{m.where}: metadata.name: {name!r} is a broker user of deploy/mosquitto/acl: rename the site"
            )
        slug = dns_label(name)
        if slug in slugs:
            errors.append(f"{m.where}: metadata.name: {name!r} and {slugs[slug]!r} give the same object names ({slug})")
        slugs.setdefault(slug, name)
    names: dict[str, Manifest] = {}
    for upf in upfs:
        name = upf_name(upf.name)
        if name in names:
            errors.append(f"{upf.where}: metadata.name: gives the same object name {name} as {names[name].where}")
        names.setdefault(name, upf)


def _check_upfs(
    upfs: list[Manifest],
    pools: list[Manifest],
    dnn_instances: dict[str, str],
    options: RenderOptions,
    errors: list[str],
) -> None:
    for upf in upfs:
        site = upf.spec["site"]
        if not upf.spec["network_instances"]:
            errors.append(f"{upf.where}: spec.network_instances: empty: a UPF CNF needs at least one N6 (DNN)")
        own = options.upf(upf.name)
        instances: dict[str, list[str]] = {}
        for dnn in upf.spec["network_instances"]:
            instances.setdefault(dnn_instances.get(dnn, dnn), []).append(dnn)
        for index, (instance, dnns) in enumerate(sorted(instances.items())):
            if not all(_INSTANCE_LABEL.match(label) for label in instance.split(".")) or len(instance) > 100:
                errors.append(f"{upf.where}: Network Instance {instance!r} of DNN {dnns[0]!r} is not a name the "
                              "agent takes (dot-separated labels of letters, digits and '-')")  # fmt: skip
            if dnn_instances.get(dnns[0]) is None:
                errors.append(f"{upf.where}: spec.network_instances: DNN {dnns[0]!r} is not in these manifests "
                              "(the render needs its Network Instance and pools)")  # fmt: skip
                continue
            if not any(p.spec["dnn"] in dnns and p.spec["site"] in (None, site) for p in pools):
                errors.append(f"{upf.where}: no Pool of DNN {' or '.join(map(repr, dnns))} at site {site!r} or at "
                              "no particular site: the agent's N6 needs the UE pool it routes")  # fmt: skip
            if instance not in own.n6_addresses:
                errors.append(
                    f"{upf.where}: settings: upfs.{upf.name}.n6_addresses.{instance}: required: the address/prefix "
                    f"length VPP puts on N6 interface {n6_interface(instance, index)!r} of this UPF"
                )
        for instance in own.n6_addresses:
            if instance not in instances:
                errors.append(f"settings: upfs.{upf.name}.n6_addresses.{instance}: the UPF serves no Network "
                              f"Instance {instance!r} ({', '.join(sorted(instances)) or 'none'})")  # fmt: skip


def _secrets(options: RenderOptions, sites: list[str], cp_site: str) -> str:
    ns = options.namespace
    db = (
        "| `edgecups-db-app`, `edgecups-db-ca` | made by CloudNativePG for the Cluster `edgecups-db` | nothing to do |"
        if options.database_url is None
        else "| `edgecups-db-credentials` | `password` | the external database's password (PGPASSWORD) |"
    )
    rows = "\n".join(
        f"| `edgecups-mqtt-{dns_label(site)}` | `password` | broker user `{site}` (the UPF agents of site {site}) |"
        for site in sites
    )
    users = " ".join(sites)
    return f"""# Secrets this deployment reads (namespace `{ns}`)

`edgecups deploy render` writes no secret. Create these before `kubectl apply -k` (deploy/README.md, Install).

| Secret | keys | what |
|---|---|---|
| `edgecups-cp-tls` | `tls.crt`, `tls.key`, `ca.crt` | the API's certificate, for `edgecups-cp.{ns}.svc` too |
| `edgecups-cp-tokens` | `tokens.yaml` | the API's tokens (`edgecups api token create`) |
{db}
| `edgecups-mqtt-tls` | `tls.crt`, `tls.key`, `ca.crt` | the broker's certificate, for `edgecups-mqtt.{ns}.svc` |
| `edgecups-mqtt-passwd` | `passwd` | the broker's password file (mosquitto_passwd) with the users below |
| `edgecups-mqtt-cp` | `password` | broker user `edgecups-cp` (the control plane) |
{rows}

Broker users: `edgecups-cp edgecups-viewer {users}` (deploy/mosquitto/README.md makes their passwords).
The control plane, the broker and the database run on the nodes labelled `edgecups.io/site={cp_site}`.
"""


def write(rendered: Rendered, out: Path) -> list[Path]:
    """Write the tree into ``out`` (created, or replacing an earlier render); the files written, relative to it."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise RenderError([f"{out}: exists and is not an earlier render (no {MARKER}): choose an empty directory"])
    out.parent.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {MARKER: "written by edgecups deploy render; the whole directory is replaced by the next\n"}
    groups: dict[str, list[Obj]] = {}
    for obj in rendered.base:
        groups.setdefault(str(obj["metadata"].get("labels", {}).get(COMPONENT, "base")), []).append(obj)
    for group, objects in groups.items():
        files[f"base/{group}.yaml"] = to_yaml(objects)
    files["base/kustomization.yaml"] = _kustomization([f"{group}.yaml" for group in groups])
    for site, objects in rendered.sites.items():
        files[f"sites/{dns_label(site)}/upf.yaml"] = to_yaml(objects)
        files[f"sites/{dns_label(site)}/kustomization.yaml"] = _kustomization(["upf.yaml"])
    files["kustomization.yaml"] = _kustomization(["base", *(f"sites/{dns_label(s)}" for s in rendered.sites)])
    # In the kustomizations' order: what `kustomize build out/` lists.
    files["all.yaml"] = to_yaml(
        [o for objects in groups.values() for o in objects]
        + [o for objects in rendered.sites.values() for o in objects]
    )
    files["SECRETS.md"] = rendered.secrets
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would become out/'s mode
    try:
        for name, text in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.replace(old / "tree")
        try:
            staging.replace(out)
        except BaseException:
            if old is not None:
                (old / "tree").replace(out)  # the earlier render back in place
            raise
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(Path(name) for name in files)


def _kustomization(resources: list[str]) -> str:
    document = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    return (
        "# edgecups deploy render: resources only, so `kubectl apply -k` applies exactly all.yaml\n"
        + yaml.safe_dump(document, sort_keys=False)
    )
