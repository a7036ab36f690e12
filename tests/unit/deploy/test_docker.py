"""The images: their entrypoints are the `edgecups cp` / `edgecups upf` commands the tests run, their bases are
pinned, they run unprivileged and check their own health with `edgecups deploy probe`."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import typer
from typer.testing import CliRunner

from control_plane.cli import deploy_commands
from control_plane.cli.main import app

from .rendering import REPO, containers, example, named, upf_deployments

DOCKER = REPO / "deploy" / "docker"


def _instructions(name: str) -> list[tuple[str, str]]:
    # Dockerfile instructions with their continuation lines joined, comments dropped.
    text = re.sub(r"\\\n", " ", (DOCKER / name).read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and line[0] != "#"]


def _final_stage(name: str) -> list[tuple[str, str]]:
    steps = _instructions(name)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def _args(name: str) -> dict[str, str]:
    return dict(arg.split("=", 1) for op, arg in _instructions(name) if op == "ARG" and "=" in arg)


@pytest.mark.parametrize(("dockerfile", "command"), [("cp.Dockerfile", "cp"), ("upf.Dockerfile", "upf")])
def test_the_entrypoint_is_the_edgecups_command(dockerfile: str, command: str) -> None:
    final = dict(_final_stage(dockerfile))
    assert json.loads(final["ENTRYPOINT"]) == ["edgecups", command]
    config = f"/etc/edgecups/{command}.yaml"
    assert json.loads(final["CMD"]) == ["--config", config]
    # `edgecups` is the project's console script, and `--config FILE` is how the command takes its file.
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["edgecups"] == "control_plane.cli.main:app"
    group = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    assert any("--config" in param.opts for param in group.params)
    # The pods run the image's entrypoint with exactly these arguments.
    pods = [named(example().base, "Deployment", "edgecups-cp")] if command == "cp" else []
    pods += [d for objects in example().sites.values() for d in upf_deployments(objects)] if command == "upf" else []
    container = "cp" if command == "cp" else "agent"
    for pod in pods:
        spec = containers(pod)[container]
        assert "command" not in spec and spec["args"] == ["--config", config]


@pytest.mark.parametrize(("dockerfile", "command"), [("cp.Dockerfile", "cp"), ("upf.Dockerfile", "upf")])
def test_the_healthcheck_is_a_probe_the_cli_has(dockerfile: str, command: str) -> None:
    check = dict(_final_stage(dockerfile))["HEALTHCHECK"]
    probe = json.loads(check.split("CMD", 1)[1])
    # `edgecups deploy probe` run as its module, without importing every other command.
    assert probe == ["python", "-m", "control_plane.cli.deploy_commands", "probe", command,
                     "--config", f"/etc/edgecups/{command}.yaml"]  # fmt: skip
    result = CliRunner().invoke(deploy_commands.app, [*probe[3:5], "--help"])
    assert result.exit_code == 0 and "--config" in result.stdout
    # The pods' probes are the same commands.
    pods = [named(example().base, "Deployment", "edgecups-cp")] if command == "cp" else []
    pods += [d for objects in example().sites.values() for d in upf_deployments(objects)] if command == "upf" else []
    for pod in pods:
        container = containers(pod)["cp" if command == "cp" else "agent"]
        for kind in ("readinessProbe", "livenessProbe"):
            assert container[kind]["exec"]["command"][: len(probe)] == probe


@pytest.mark.parametrize("dockerfile", ["cp.Dockerfile", "upf.Dockerfile", "vpp.Dockerfile"])
def test_bases_are_pinned_and_builds_are_multi_stage(dockerfile: str) -> None:
    args = _args(dockerfile)
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], arg.split()[0])
             for op, arg in _instructions(dockerfile) if op == "FROM"]  # fmt: skip
    stages = [arg.split()[-1] for op, arg in _instructions(dockerfile) if op == "FROM" and " AS " in arg]
    assert len(bases) == 2 and stages  # a build stage, then the image
    for base in bases:
        # An exact version tag (3.11.11-slim-bookworm, noble-20250925) or a digest; never latest or a bare major.
        assert re.search(r"@sha256:[0-9a-f]{64}$|:[a-z]*-?\d+\.\d+\.\d+[\w.-]*$|:[a-z]+-\d{8}$", base), base
    copies = [arg for op, arg in _final_stage(dockerfile) if op == "COPY"]
    assert copies and all(arg.startswith("--from=") for arg in copies)


@pytest.mark.parametrize("dockerfile", ["cp.Dockerfile", "upf.Dockerfile"])
def test_the_images_run_unprivileged(dockerfile: str) -> None:
    users = [arg for op, arg in _final_stage(dockerfile) if op == "USER"]
    assert users == ["10001:10001"]
    # The pods say the same: the security context matches the image's user.
    cp = containers(named(example().base, "Deployment", "edgecups-cp"))["cp"]["securityContext"]
    assert cp["runAsNonRoot"] is True and cp["capabilities"] == {"drop": ["ALL"]}
    ignore = (DOCKER / f"{dockerfile}.dockerignore").read_text().split()
    assert "**/*.so" in ignore  # compiled modules of the build machine never reach the image
