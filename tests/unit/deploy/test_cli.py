"""``edgecups deploy render`` end to end into tmp_path, and how it refuses bad input without writing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from control_plane.cli.main import app

from .rendering import CP_PFCP, EXAMPLE_SETTINGS, EXAMPLES, example

_RENDER = ["deploy", "render", "--cp-pfcp-address", CP_PFCP, "--settings", str(EXAMPLE_SETTINGS)]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*_RENDER, *args])
    return result.exit_code, result.stdout, result.stderr


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _documents(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _kustomize(directory: Path) -> list[dict[str, object]]:
    # What `kustomize build` does with resources-only kustomizations: their files, depth first.
    out: list[dict[str, object]] = []
    for resource in yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]:
        path = directory / resource
        out += _kustomize(path) if path.is_dir() else _documents(path)
    return out


def test_render_writes_the_kustomize_tree_and_the_expanded_list(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = _run("-f", str(EXAMPLES), "-o", str(out), "--tag", "1.2.3")
    assert code == 0, stderr
    assert "rendered" in stdout and "SECRETS.md" in stdout
    assert sorted(p.name for p in (out / "sites").iterdir()) == ["cloud", "edge-1", "edge-2", "edge-3"]
    expanded = _documents(out / "all.yaml")
    assert _kustomize(out) == expanded  # kubectl apply -k out/ applies exactly all.yaml
    assert len(expanded) == len(example().objects())
    images = {c["image"] for d in expanded if d["kind"] == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"]}  # type: ignore[index]  # fmt: skip
    assert {"edgecups/cp:1.2.3", "edgecups/upf:1.2.3"} <= images
    assert any(d["kind"] == "Job" and d["metadata"]["name"] == "edgecups-db-upgrade-1-2-3" for d in expanded)  # type: ignore[index]
    secrets = (out / "SECRETS.md").read_text()
    for site in ("edge-1", "edge-2", "edge-3", "cloud"):
        assert f"`edgecups-mqtt-{site}`" in secrets
    # Rendering again replaces the earlier render, whatever it held.
    (out / "sites" / "edge-1" / "stale.yaml").write_text("old")
    code, _, stderr = _run("-f", str(EXAMPLES), "-o", str(out))
    assert code == 0, stderr
    assert not (out / "sites" / "edge-1" / "stale.yaml").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging directory left behind
    assert out.stat().st_mode & 0o777 == 0o777 & ~_umask()  # a directory as mkdir would make it


def test_a_bad_manifest_fails_with_its_place_and_writes_nothing(tmp_path: Path) -> None:
    sites = tmp_path / "sites"
    shutil.copytree(EXAMPLES, sites)
    text = (sites / "sites.yaml").read_text().replace("site: edge-2\n", "site: edge-22\n", 1)
    (sites / "sites.yaml").write_text(text)
    out = tmp_path / "out"
    code, stdout, stderr = _run("-f", str(sites), "-o", str(out))
    assert code == 1 and stdout == ""
    assert stderr.splitlines() == [
        f"error: {sites / 'sites.yaml'}:document 6 (UPF 198.18.2.10): spec.site: unknown Site 'edge-22': not defined "
        "in these manifests (did you mean 'edge-2'?)"
    ]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sites"]


def test_deployment_problems_are_listed_together_and_nothing_is_written(tmp_path: Path) -> None:
    settings = yaml.safe_load(EXAMPLE_SETTINGS.read_text())
    del settings["upfs"]["198.18.0.11"]
    settings["sites"]["edge-9"] = {"cpu": 2}
    settings["sites"]["edge-1"]["n3_master"] = "a/b"
    bad = tmp_path / "settings.yaml"
    bad.write_text(yaml.safe_dump(settings))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["deploy", "render", "-f", str(EXAMPLES), "-o", str(out),
                                      "--cp-pfcp-address", CP_PFCP, "--settings", str(bad)])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {bad}: sites.edge-1.n3_master: expected a host network device name (1-15 characters, no '/', ':' "
        "or spaces), got string 'a/b'"
    ]
    del settings["sites"]["edge-1"]["n3_master"]
    bad.write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(app, ["deploy", "render", "-f", str(EXAMPLES), "-o", str(out),
                                      "--cp-pfcp-address", "198.18.0.10", "--settings", str(bad)])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: --cp-pfcp-address: 198.18.0.10 is the N4 address of {EXAMPLES / 'sites.yaml'}:document 8 "
        "(UPF 198.18.0.10)",
        "error: settings: sites.edge-9: no Site 'edge-9' in the manifests (did you mean 'edge-3'?)",
        f"error: {EXAMPLES / 'sites.yaml'}:document 9 (UPF 198.18.0.11): settings: "
        "upfs.198.18.0.11.n6_addresses.internet: required: the address/prefix length VPP puts on N6 interface "
        "'n6-internet' of this UPF",
    ]
    assert not out.exists()


def test_a_directory_that_is_not_an_earlier_render_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    code, _, stderr = _run("-f", str(EXAMPLES), "-o", str(out))
    assert code == 1
    assert "exists and is not an earlier render" in stderr
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_the_control_plane_site_must_be_named_when_not_the_only_cloud_site(tmp_path: Path) -> None:
    code, _, stderr = _run("-f", str(EXAMPLES / "sites.yaml"), "-f", str(EXAMPLES / "dnns.yaml"),
                           "-o", str(tmp_path / "out"), "--cp-site", "cloudy")  # fmt: skip
    assert code == 1
    assert stderr.splitlines() == ["error: --cp-site: no Site 'cloudy' in the manifests (did you mean 'cloud'?)"]


def test_a_new_edge_site_is_its_manifests_and_its_upfs_n6_address(tmp_path: Path) -> None:
    sites = tmp_path / "sites"
    shutil.copytree(EXAMPLES, sites)
    (sites / "edge-4.yaml").write_text(
        """apiVersion: edgecups/v1
kind: Site
metadata: {name: edge-4}
spec: {kind: edge, region: eu-west-2, tais: ["001-01-000004"]}
---
apiVersion: edgecups/v1
kind: UPF
metadata: {name: 198.18.4.10}
spec: {site: edge-4, n4_address: 198.18.4.10, n3_addresses: [198.19.4.10], network_instances: [mec], capacity: 2000}
---
apiVersion: edgecups/v1
kind: Pool
metadata: {name: mec-edge-4}
spec: {dnn: mec, site: edge-4, cidr: 10.104.0.0/20}
"""
    )
    settings = yaml.safe_load(EXAMPLE_SETTINGS.read_text())
    settings["upfs"]["198.18.4.10"] = {"n6_addresses": {"mec": "198.18.104.10/24"}}
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(settings))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["deploy", "render", "-f", str(sites), "-o", str(out), "--cp-pfcp-address",
                                      CP_PFCP, "--settings", str(tmp_path / "settings.yaml")])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    overlay = _documents(out / "sites" / "edge-4" / "upf.yaml")
    deployment = next(d for d in overlay if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"edgecups.io/site": "edge-4"}  # type: ignore[index]
    config = yaml.safe_load(next(d for d in overlay if d["kind"] == "ConfigMap")["data"]["upf.yaml"])  # type: ignore[index]
    assert config["n6"]["mec"]["ue_pool"] == ["10.104.0.0/20"] and config["allowed_cps"] == [CP_PFCP]
    assert "sites/edge-4" in yaml.safe_load((out / "kustomization.yaml").read_text())["resources"]
    assert "`edgecups-mqtt-edge-4`" in (out / "SECRETS.md").read_text()


def test_the_written_yaml_has_no_anchors_or_aliases(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _run("-f", str(EXAMPLES), "-o", str(out))[0] == 0
    for path in out.rglob("*.yaml"):
        for event in yaml.parse(path.read_text()):
            assert not isinstance(event, yaml.AliasEvent) and getattr(event, "anchor", None) is None, path
