"""The render settings file: defaults, '*' merged under each site, every problem reported at once."""

from __future__ import annotations

from edge_sites.kube import RenderOptions, SiteSettings, parse_settings


def test_a_site_overrides_the_common_settings_key_by_key() -> None:
    settings, problems = parse_settings(
        {"sites": {"*": {"cni": "host-device", "n3_master": "ens5", "cpu": 4}, "edge-1": {"cpu": 6}},
         "upfs": {"198.18.1.10": {"n6_addresses": {"mec": "198.18.101.10/24"}}}}
    )  # fmt: skip
    assert problems == []
    options = RenderOptions(cp_pfcp_address="198.18.0.1", sites=settings.sites, upfs=settings.upfs)
    assert options.site("edge-1") == SiteSettings(cni="host-device", n3_master="ens5", cpu=6)
    assert options.site("edge-2") == SiteSettings(cni="host-device", n3_master="ens5", cpu=4)  # '*' alone
    assert options.upf("198.18.1.10").n6_addresses == {"mec": "198.18.101.10/24"}
    assert RenderOptions(cp_pfcp_address="198.18.0.1").site("any") == SiteSettings()  # no file: the conventions


def test_every_problem_is_reported_with_its_path() -> None:
    data = {
        "sites": {"*": {"cni": "flannel", "cpus": 2}, "edge-1": {"hugepages": "1GB", "n6_masters": {"mec": "x/y"}}},
        "upfs": {"a": {"n6_addresses": {"mec": "1.2.3.4"}}},
        "other": 1,
    }
    settings, problems = parse_settings(data, "deploy.yaml")
    assert settings.sites == {} and settings.upfs == {}
    assert problems == [
        "deploy.yaml: other: unknown key; expected sites or upfs",
        "deploy.yaml: sites.*.cpus: unknown key (did you mean 'cpu'?); expected one of cni, n4_master, n3_master, "
        "n6_master, n6_masters, n4_prefix_length, n4_gateway, n3_prefix_length, n6_gateways, hugepages, "
        "hugepage_size, cpu, memory",
        "deploy.yaml: sites.*.cni: 'flannel' is not one of macvlan, ipvlan, host-device, sriov",
        "deploy.yaml: sites.edge-1.n6_masters.mec: expected a host network device name (1-15 characters, no '/', "
        "':' or spaces), got string 'x/y'",
        "deploy.yaml: sites.edge-1.hugepages: expected a quantity such as 1Gi or 512Mi, got string '1GB'",
        "deploy.yaml: upfs.a.n6_addresses.mec: expected address/prefix length such as 203.0.113.2/24, "
        "got string '1.2.3.4'",
    ]
    assert parse_settings([1], "deploy.yaml")[1] == [
        "deploy.yaml: expected a mapping with the keys sites and upfs, got a list"
    ]
    assert parse_settings({"sites": {"edge-1": {"cni": "sriov", "n3_master": "ens5"}}})[1] == [
        "settings: sites.edge-1.n3_master: with cni sriov, expected the SR-IOV device plugin's resource name "
        "(e.g. intel.com/sriov_n3), got string 'ens5'"
    ]
