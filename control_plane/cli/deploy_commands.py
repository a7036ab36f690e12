"""``edgecups deploy ...``: the Kubernetes deployment, rendered from the site manifests, and its probes.

* ``edgecups deploy render -f sites/ -o out/ --cp-pfcp-address ADDR`` turns the manifests
  operators apply to the API into a Kustomize tree (edge_sites.kube): a base and one overlay per
  site, plus ``out/all.yaml`` (every object) and ``out/SECRETS.md`` (the Secrets to create).
  Nothing is written unless every manifest and setting is right; the problems are listed, one per
  line, on stderr (exit status 1).
* ``edgecups deploy probe cp --config cp.yaml`` asks the control plane's API for its gRPC health
  (grpc.health.v1) over the API's own TLS; ``edgecups deploy probe upf --config upf.yaml`` sends a
  PFCP Heartbeat Request to the agent's N4 address (TS 29.244 §6.2.2, answered whatever the
  association). Exit 0 when answered healthy, 1 otherwise: the pods' readiness and liveness
  probes and the images' HEALTHCHECK (a kubelet gRPC probe cannot speak TLS).
"""

from __future__ import annotations

import importlib.metadata
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml

from edge_sites import ManifestError
from edge_sites.kube import RenderError, RenderOptions, default_deploy_dir, parse_settings, render, write

__all__ = ["app"]

EXIT_FAILED = 1

app = typer.Typer(
    name="deploy",
    help="Kubernetes deployment: render the manifests into Kustomize overlays; health probes for the pods.",
    no_args_is_help=True,
    add_completion=False,
)
probe_app = typer.Typer(
    name="probe",
    help="Health probes (exit 0: healthy): the control plane's gRPC health, a UPF agent's PFCP heartbeat.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(probe_app, name="probe")


def _version() -> str:
    try:
        return importlib.metadata.version("edgecups")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree without its metadata
        return "latest"


def _fail(lines: list[str] | tuple[str, ...]) -> NoReturn:
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(EXIT_FAILED)


@app.command("render")
def render_command(
    filename: Annotated[list[Path], typer.Option("--filename", "-f", metavar="FILE|DIR",
                        help="Site manifests: a file, or a directory of *.yaml (repeatable).")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="DIR",
                      help="Directory to write (new, empty, or an earlier render, which is replaced).")],
    cp_pfcp_address: Annotated[str, typer.Option("--cp-pfcp-address", metavar="ADDR",
                               help="The control plane's N4 (PFCP) address: its Multus N4 attachment's address, "
                                    "which every UPF allows and reaches.")],
    settings: Annotated[Path | None, typer.Option("--settings", metavar="FILE",
                        help="Per-site and per-UPF settings (host devices, CNI, hugepages, CPUs, N6 addresses); "
                             "deploy/README.md lists the keys.")] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of every object.")] = "edgecups",
    cp_site: Annotated[str | None, typer.Option("--cp-site", metavar="SITE",
                       help="Site whose nodes run the control plane, broker and database (default: the only "
                            "cloud site).")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Tag of the edgecups/cp and edgecups/upf images "
                                            "(default: this version).")] = None,
    cp_image: Annotated[str | None, typer.Option("--cp-image", metavar="IMAGE",
                        help="Control plane image (default: edgecups/cp:TAG).")] = None,
    upf_image: Annotated[str | None, typer.Option("--upf-image", metavar="IMAGE",
                         help="UPF agent image (default: edgecups/upf:TAG).")] = None,
    vpp_image: Annotated[str, typer.Option("--vpp-image", metavar="IMAGE",
                         help="VPP image (deploy/docker/vpp.Dockerfile).")] = "edgecups/vpp:26.06",
    database_url: Annotated[str | None, typer.Option("--database-url", metavar="URL",
                            help="An external PostgreSQL (postgresql://USER@HOST/DB, no password: it comes from "
                                 "the Secret edgecups-db-credentials) instead of a CloudNativePG Cluster.")] = None,
    monitoring_namespace: Annotated[str, typer.Option("--monitoring-namespace",
                                    help="Namespace Prometheus scrapes from.")] = "monitoring",
    deploy_dir: Annotated[Path | None, typer.Option("--deploy-dir", metavar="DIR",
                          help="The repository's deploy/ (broker configuration, Grafana dashboard).")] = None,
) -> None:  # fmt: skip
    """Render the site manifests into a Kustomize base and one overlay per site (kubectl apply -k DIR)."""
    site_settings = None
    if settings is not None:
        try:
            data = yaml.safe_load(settings.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            _fail([f"{settings}: cannot read: {getattr(exc, 'strerror', None) or exc}"])
        except yaml.YAMLError as exc:
            _fail([f"{settings}: not valid YAML: {exc}"])
        site_settings, problems = parse_settings(data, str(settings))
        if problems:
            _fail(problems)
    version = tag or _version()
    options = RenderOptions(
        cp_pfcp_address=cp_pfcp_address,
        namespace=namespace,
        cp_image=cp_image or f"edgecups/cp:{version}",
        upf_image=upf_image or f"edgecups/upf:{version}",
        vpp_image=vpp_image,
        cp_site=cp_site,
        database_url=database_url,
        monitoring_namespace=monitoring_namespace,
        sites=site_settings.sites if site_settings else {},
        upfs=site_settings.upfs if site_settings else {},
    )
    try:
        rendered = render(filename, options, deploy_dir=deploy_dir or default_deploy_dir())
        files = write(rendered, output)
    except (ManifestError, RenderError) as exc:
        _fail(exc.errors)
    except OSError as exc:
        _fail([f"{output}: cannot write: {exc.strerror or exc}"])
    sites = ", ".join(f"{site} ({len(objects)})" for site, objects in rendered.sites.items())
    typer.echo(f"rendered {len(rendered.objects())} objects into {output}: base ({len(rendered.base)}), {sites}")
    typer.echo(
        f"wrote {len(files)} files; create the Secrets in {output / 'SECRETS.md'}, then: kubectl apply -k {output}"
    )


@probe_app.command("cp")
def probe_cp(
    config: Annotated[Path, typer.Option("--config", "-c", metavar="FILE", help="The control plane's cp.yaml.")],
    ca: Annotated[Path | None, typer.Option("--ca", metavar="FILE", envvar="EDGECUPS_PROBE_CA",
                  help="CA certificate the API's certificate chains to (TLS).")] = None,
    server_name: Annotated[str | None, typer.Option("--server-name", metavar="NAME",
                           envvar="EDGECUPS_PROBE_SERVER_NAME",
                           help="Name the API's certificate is for (TLS) (default: the address dialled).")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", metavar="FILE", help="Client certificate (mTLS).")] = None,
    key: Annotated[Path | None, typer.Option("--key", metavar="FILE", help="Client key (mutual TLS).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the answer.")] = 3.0,
) -> None:  # fmt: skip
    """Ask the control plane's API for its gRPC health on this host; exit 0 when SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from control_plane.api.security import channel_credentials
    from control_plane.config import ConfigError, load_config

    try:
        settings = load_config(config)
    except ConfigError as exc:
        _fail(exc.errors)
    if settings.api_security is None:
        _fail([f"{config}: no api section: the control plane serves no API to probe"])
    address = settings.api_address
    if address in ("0.0.0.0", "::", ""):
        address = "127.0.0.1" if address != "::" else "::1"
    target = address if address.startswith("unix:") else f"{_bracket(address)}:{settings.api_port}"
    try:
        if settings.api_security.tls is None:
            channel = grpc.insecure_channel(target)
        else:
            credentials = channel_credentials(ca, cert, key)
            options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
            channel = grpc.secure_channel(target, credentials, options=options)
    except OSError as exc:
        _fail([f"cannot read a TLS file: {exc.strerror or exc}: {exc.filename}"])
    except ValueError as exc:  # a client certificate without its key, or a key without its certificate
        _fail([str(exc)])
    with channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            _fail([f"{target}: {exc.code().name}: {exc.details()}"])
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        _fail([f"{target}: {status}"])
    typer.echo(f"{target}: {status}")


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


@probe_app.command("upf")
def probe_upf(
    config: Annotated[Path, typer.Option("--config", "-c", metavar="FILE", help="The agent's upf.yaml.")],
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the answer.")] = 3.0,
) -> None:  # fmt: skip
    """Send a PFCP Heartbeat Request to the agent's N4 address; exit 0 when it answers."""
    import pfcp
    from user_plane.config import ConfigError, load_config

    try:
        settings = load_config(config)
    except ConfigError as exc:
        _fail(exc.errors)
    except OSError as exc:
        _fail([f"{config}: cannot read: {exc.strerror or exc}"])
    address, port = str(settings.n4.address), settings.n4.port
    sequence = secrets.randbelow(0xFFFFFF) + 1
    request = pfcp.HeartbeatRequest(
        sequence=sequence, recovery_time_stamp=pfcp.RecoveryTimeStamp.from_unix(time.time())
    )
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    deadline = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, port))  # only the agent's datagrams are received
            sock.send(pfcp.encode(request))
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                data = sock.recv(65535)
                try:
                    answer = pfcp.decode(data)
                except pfcp.DecodeError:
                    continue
                if isinstance(answer, pfcp.HeartbeatResponse) and answer.sequence == sequence:
                    typer.echo(
                        f"{address}:{port}: Heartbeat Response (recovery {answer.recovery_time_stamp.to_unix()})"
                    )
                    return
        except TimeoutError:
            pass
        except OSError as exc:
            _fail([f"{address}:{port}: {os.strerror(exc.errno) if exc.errno else exc}"])
    _fail([f"{address}:{port}: no Heartbeat Response within {timeout:g} s"])


if __name__ == "__main__":  # `python -m control_plane.cli.deploy_commands probe ...`: the probes without the whole CLI
    app()
