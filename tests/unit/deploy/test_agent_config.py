"""The agent configuration generated from each UPF manifest is one the agent takes (user_plane.config)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from edge_sites import load_manifests
from user_plane.config import load_config
from user_plane.vpp.config import parse_vpp

from .rendering import CP_PFCP, EXAMPLES, example, named, upf_deployments


def _configs() -> list[tuple[str, str]]:
    out = []
    for objects in example().sites.values():
        for deployment in upf_deployments(objects):
            name = deployment["metadata"]["name"]
            out.append((name, named(objects, "ConfigMap", name)["data"]["upf.yaml"]))
    return out


_CONFIGS = _configs()
_POOLS = [m for m in load_manifests([EXAMPLES]) if m.kind == "Pool"]
_UPFS = {m.name: m for m in load_manifests([EXAMPLES]) if m.kind == "UPF"}


@pytest.mark.parametrize(("name", "text"), _CONFIGS, ids=[n for n, _ in _CONFIGS])
def test_the_generated_file_loads_and_says_what_the_manifests_say(name: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "upf.yaml"
    path.write_text(text)
    config = load_config(path)  # the agent's own loader: every key known, every value valid
    upf = _UPFS[str(config.node_id)]
    assert str(config.n4.address) == upf.spec["n4_address"] and config.n4.port == upf.spec["n4_port"]
    assert [str(a) for a in config.n3] == upf.spec["n3_addresses"]
    assert config.capacity.max_sessions == upf.spec["capacity"]
    assert config.driver == "vpp"
    assert [str(p) for p in config.allowed_cps] == [CP_PFCP]
    assert config.cp_allowed(config.node_id, ipaddress.ip_address(CP_PFCP))
    assert not config.cp_allowed(config.node_id, ipaddress.ip_address("198.18.0.2"))
    assert config.mqtt is not None and config.mqtt.site == upf.spec["site"] == config.mqtt.username
    assert sorted(config.n6) == sorted(upf.spec["network_instances"])
    for instance, n6 in config.n6.items():
        pools = [
            p.spec["cidr"] for p in _POOLS if p.spec["dnn"] == instance and p.spec["site"] in (None, upf.spec["site"])
        ]
        assert pools and sorted(str(p) for p in n6.ue_pool) == sorted(pools)
    vpp = yaml.safe_load(text)["vpp"]
    checked, problems = parse_vpp(vpp, instances=set(config.n6), n3=set(config.n3))
    assert problems == [] and checked is not None
    assert checked.api_socket == "/run/vpp/api.sock"
