"""edge_sites.manifests: the example deployment loads; each broken manifest gives its precise message."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest
import yaml

from edge_sites.manifests import Manifest, ManifestError, load_manifests, order
from edge_sites.schema import KINDS, to_document

EXAMPLES = Path(__file__).parents[3] / "edge_sites" / "examples"

SITE = """
apiVersion: edgecups/v1
kind: Site
metadata: {name: edge-1}
spec: {kind: edge, region: eu, tais: ["001-01-000001"]}
"""
DNN = """
apiVersion: edgecups/v1
kind: DNN
metadata: {name: internet}
spec: {}
"""
UPF = """
apiVersion: edgecups/v1
kind: UPF
metadata: {name: 198.18.1.10}
spec: {site: edge-1, n4_address: 198.18.1.10, n3_addresses: [198.19.1.10], network_instances: [internet], capacity: 10}
"""


def pool(name: str, cidr: str, dnn: str = "internet", site: str = "edge-1") -> str:
    return f"""
apiVersion: edgecups/v1
kind: Pool
metadata: {{name: {name}}}
spec: {{dnn: {dnn}, site: {site}, cidr: "{cidr}"}}
"""


def write(directory: Path, name: str, *documents: str) -> Path:
    path = directory / name
    path.write_text("\n---\n".join(textwrap.dedent(d).strip("\n") for d in documents) + "\n")
    return path


def problems(*paths: Path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifests(list(paths))
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


def test_the_example_deployment_loads_on_its_own() -> None:
    manifests = load_manifests([EXAMPLES])
    kinds = Counter(m.kind for m in manifests)
    assert kinds == {"Site": 4, "UPF": 5, "DNN": 2, "Pool": 5, "Policy": 3, "Subscriber": 3}
    sites = {m.name: m.spec for m in manifests if m.kind == "Site"}
    assert sorted(s["kind"] for s in sites.values()) == ["cloud", "edge", "edge", "edge"]
    assert sorted(t for s in sites.values() for t in s["tais"]) == ["001-01-000001", "001-01-000002", "001-01-000003"]
    edge_rules = [r for m in manifests if m.kind == "Policy" for r in m.spec["edge_rules"]]
    assert any("permit out ip from 10.200.1.0/24 to assigned" in r["flow_descriptions"] for r in edge_rules)
    assert any(m.kind == "Subscriber" and m.spec["static_ipv4"] for m in manifests)


def test_files_and_directories_in_sorted_order_empty_documents_skipped(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("---\n" + SITE + "---\n---\n" + DNN)
    write(tmp_path, "a.yaml", UPF)
    write(tmp_path, "notes.txt", "not: a manifest")
    manifests = load_manifests([tmp_path])
    assert [(m.source.name, m.document, m.kind) for m in manifests] == [
        ("a.yaml", 1, "UPF"),
        ("b.yml", 1, "Site"),  # a "---" opening the file starts the first document
        ("b.yml", 3, "DNN"),  # document numbers count the empty ones
    ]
    assert manifests[1] == Manifest("Site", "edge-1", manifests[1].spec, tmp_path / "b.yml", 1)
    assert manifests[1].where == f"{tmp_path / 'b.yml'}:document 1 (Site edge-1)"


def test_order_for_apply_and_for_delete(tmp_path: Path) -> None:
    manifests = load_manifests([write(tmp_path, "m.yaml", pool("p", "10.1.0.0/16"), UPF, DNN, SITE)])
    assert [m.kind for m in order(manifests)] == ["Site", "UPF", "DNN", "Pool"]
    assert [m.kind for m in order(manifests, delete=True)] == ["Pool", "DNN", "UPF", "Site"]
    assert [m.kind for m in order(load_manifests([EXAMPLES]))] == sorted(
        (m.kind for m in load_manifests([EXAMPLES])), key=KINDS.index
    )


def test_wrong_kind(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", SITE.replace("kind: Site", "kind: Sites"))
    assert problems(path) == [
        f"{path}:document 1 (Sites edge-1): kind: unknown kind 'Sites' (did you mean 'Site'?); "
        "expected one of Site, UPF, DNN, Pool, Policy, Subscriber"
    ]


def test_missing_and_unknown_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", UPF.replace("capacity: 10", "capacity_max: 10"))
    assert problems(path, write(tmp_path, "s.yaml", SITE)) == [
        f"{path}:document 1 (UPF 198.18.1.10): spec.capacity_max: unknown field (did you mean 'capacity'?); "
        "expected one of site, n4_address, n4_port, n3_addresses, network_instances, snssais, capacity, "
        "admin_state, teid_allocation, access_network_instance",
        f"{path}:document 1 (UPF 198.18.1.10): spec.capacity: required",
    ]


def test_envelope_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        SITE.replace("edgecups/v1", "v1"),
        "apiVersion: edgecups/v1\nkind: DNN\nmetadata: {labels: {}}\nspec: {}\nextra: 1\n",
        "apiVersion: edgecups/v1\nkind: DNN\nmetadata: {name: mec}\n",
        "- just\n- a list\n",
    )
    assert problems(path) == [
        f"{path}:document 1 (Site edge-1): apiVersion: expected edgecups/v1, got string 'v1'",
        f"{path}:document 2 (DNN): extra: unknown field; expected apiVersion, kind, metadata, spec",
        f"{path}:document 2 (DNN): metadata.labels: unknown field; expected name",
        f"{path}:document 2 (DNN): metadata.name: required",
        f"{path}:document 3 (DNN mec): spec: required",
        f"{path}:document 4: expected a mapping with apiVersion, kind, metadata and spec, got a list",
    ]


def test_bad_cidr_and_host_bits(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", SITE, DNN, pool("a", "10.1.0.0/33"), pool("b", "10.2.0.1/16"))
    assert problems(path) == [
        f"{path}:document 3 (Pool a): spec.cidr: '10.1.0.0/33' is not an IP prefix",
        f"{path}:document 4 (Pool b): spec.cidr: '10.2.0.1/16' has host bits set (did you mean '10.2.0.0/16'?)",
    ]


def test_overlapping_pools_of_one_dnn(tmp_path: Path) -> None:
    other_dnn = DNN.replace("internet", "mec")
    docs = (SITE, DNN, other_dnn, pool("wide", "10.1.0.0/16"), pool("other-dnn", "10.1.0.0/24", dnn="mec"),
            pool("narrow", "10.1.2.0/24"))  # fmt: skip
    path = write(tmp_path, "m.yaml", *docs)
    assert problems(path) == [
        f"{path}:document 6 (Pool narrow): spec.cidr: 10.1.2.0/24 overlaps 10.1.0.0/16 of Pool 'wide' of DNN "
        f"'internet' ({path}:document 4 (Pool wide))"
    ]


def test_unknown_references_unless_known_on_the_server(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", UPF.replace("site: edge-1", "site: edge-2"), SITE)
    assert problems(path) == [
        f"{path}:document 1 (UPF 198.18.1.10): spec.site: unknown Site 'edge-2': not defined in these manifests "
        "(did you mean 'edge-1'?)",
        f"{path}:document 1 (UPF 198.18.1.10): spec.network_instances[0]: unknown DNN 'internet': "
        "not defined in these manifests",
    ]
    with pytest.raises(ManifestError) as caught:
        load_manifests([path], known={"Site": {"edge-3"}})
    assert "unknown Site 'edge-2': not defined in these manifests nor on the server" in caught.value.errors[0]
    loaded = load_manifests([path], known={"Site": {"edge-2"}, "DNN": {"internet"}})
    assert [m.key for m in loaded] == [("UPF", "198.18.1.10"), ("Site", "edge-1")]


def test_every_reference_is_checked(tmp_path: Path) -> None:
    policy = "apiVersion: edgecups/v1\nkind: Policy\nmetadata: {name: p}\nspec: {dnn: nope, qfi: 9, five_qi: 9, session_ambr_ul_kbps: 1, session_ambr_dl_kbps: 1}\n"  # noqa: E501
    sub = "apiVersion: edgecups/v1\nkind: Subscriber\nmetadata: {name: imsi-001010000000001}\nspec: {allowed_dnns: [nope, internet], policy: q}\n"  # noqa: E501
    path = write(tmp_path, "m.yaml", SITE, DNN, pool("a", "10.1.0.0/16", dnn="nope", site="edge-9"), policy, sub)
    assert [line.split(": ", 1)[1] for line in problems(path)] == [
        "spec.dnn: unknown DNN 'nope': not defined in these manifests",
        "spec.site: unknown Site 'edge-9': not defined in these manifests (did you mean 'edge-1'?)",
        "spec.dnn: unknown DNN 'nope': not defined in these manifests",
        "spec.allowed_dnns[0]: unknown DNN 'nope': not defined in these manifests",
        "spec.policy: unknown Policy 'q': not defined in these manifests",
    ]


def test_duplicate_node_id_document_and_n4_address(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", SITE, DNN, UPF)
    second = write(tmp_path, "b.yaml", UPF, UPF.replace("name: 198.18.1.10", "name: upf-2.example"), DNN)
    assert problems(first, second) == [
        f"{second}:document 1 (UPF 198.18.1.10): metadata.name: UPF '198.18.1.10' is already defined at "
        f"{first}:document 3 (UPF 198.18.1.10)",
        f"{second}:document 2 (UPF upf-2.example): spec.n4_address: UPF 'upf-2.example' has the same N4 address "
        f"and port as UPF '198.18.1.10' ({first}:document 3 (UPF 198.18.1.10))",
        f"{second}:document 3 (DNN internet): metadata.name: DNN 'internet' is already defined at "
        f"{first}:document 2 (DNN internet)",
    ]


def test_two_policies_for_one_dnn_and_slice(tmp_path: Path) -> None:
    body = "spec: {dnn: internet, qfi: 9, five_qi: 9, session_ambr_ul_kbps: 1, session_ambr_dl_kbps: 1}\n"
    a = f"apiVersion: edgecups/v1\nkind: Policy\nmetadata: {{name: a}}\n{body}"
    path = write(tmp_path, "m.yaml", DNN, a, a.replace("name: a", "name: b"))
    assert problems(path) == [
        f"{path}:document 3 (Policy b): spec.snssai: Policy 'b' has the same dnn and snssai as Policy 'a' "
        f"({path}:document 2 (Policy a))"
    ]


def test_bad_tai_names_the_list_item(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", SITE.replace('["001-01-000001"]', '["001-01-000001", "001-1-000002"]'))
    assert problems(path) == [
        f"{path}:document 1 (Site edge-1): spec.tais[1]: '001-1-000002' is not a TAI: expected 'MCC-MNC-TAC' "
        "digits, e.g. '001-01-000001'"
    ]


def test_yaml_syntax_error_with_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(SITE.lstrip() + "---\napiVersion: edgecups/v1\nkind: [DNN\n")
    errors = problems(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:8:1: YAML syntax error: ")


def test_a_key_written_twice_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "apiVersion: edgecups/v1\nkind: DNN\nmetadata: {name: internet}\nspec:\n  snssais: [1]\n  snssais: [2]\n"
    )
    assert problems(path) == [
        f"{path}:6:3: YAML syntax error: found the key 'snssais' twice (first on line 5) (while reading a mapping)"
    ]


def test_static_address_outside_the_pools_of_its_dnns(tmp_path: Path) -> None:
    sub = "apiVersion: edgecups/v1\nkind: Subscriber\nmetadata: {name: imsi-001010000000001}\nspec: {allowed_dnns: [internet], static_ipv4: 10.9.0.1}\n"  # noqa: E501
    path = write(tmp_path, "m.yaml", SITE, DNN, pool("a", "10.1.0.0/16"), pool("b", "10.2.0.0/16"), sub)
    assert problems(path) == [
        f"{path}:document 5 (Subscriber imsi-001010000000001): spec.static_ipv4: 10.9.0.1 is in no pool of the "
        "subscriber's DNNs (a 10.1.0.0/16, b 10.2.0.0/16)"
    ]
    inside = sub.replace("10.9.0.1", "10.2.0.1")
    assert (
        len(
            load_manifests(
                [write(tmp_path, "m.yaml", SITE, DNN, pool("a", "10.1.0.0/16"), pool("b", "10.2.0.0/16"), inside)]
            )
        )
        == 5
    )
    # Without pools of its DNN in the set, the server's pools are not second-guessed.
    assert len(load_manifests([write(tmp_path, "m.yaml", DNN, sub)])) == 2
    twice = inside.replace("000000001", "000000002")
    path = write(tmp_path, "m.yaml", SITE, DNN, pool("b", "10.2.0.0/16"), inside, twice)
    assert problems(path) == [
        f"{path}:document 5 (Subscriber imsi-001010000000002): spec.static_ipv4: 10.2.0.1 is also the static "
        f"address of imsi-001010000000001 ({path}:document 4 (Subscriber imsi-001010000000001))"
    ]


def test_static_ipv6_prefix_must_be_one_of_the_pool_prefixes(tmp_path: Path) -> None:
    sub = "apiVersion: edgecups/v1\nkind: Subscriber\nmetadata: {name: imsi-001010000000001}\nspec: {allowed_dnns: [internet], static_ipv6: '2001:db8:1::/56'}\n"  # noqa: E501
    path = write(tmp_path, "m.yaml", SITE, DNN, pool("v6", "2001:db8::/32"), sub)
    assert problems(path)[0].endswith(
        "spec.static_ipv6: 2001:db8:1::/56 is in no pool of the subscriber's DNNs (v6 2001:db8::/32)"
    )
    assert load_manifests(
        [write(tmp_path, "m.yaml", SITE, DNN, pool("v6", "2001:db8::/32"), sub.replace("/56", "/64"))]
    )


def test_several_problems_reported_together_in_file_order(tmp_path: Path) -> None:
    late = write(tmp_path, "b.yaml", SITE.replace("region: eu", "region: 7"), "[]\n")
    early = write(
        tmp_path, "a.yaml", UPF.replace("capacity: 10", "capacity: -1"), DNN, pool("p", "10.0.0.0/8", site="x")
    )
    missing = tmp_path / "missing.yaml"
    errors = problems(tmp_path, missing)
    assert errors == [
        f"{missing}: no such file or directory",
        f"{early}:document 1 (UPF 198.18.1.10): spec.capacity: -1 is out of range (expected 1..2147483647)",
        f"{early}:document 3 (Pool p): spec.site: unknown Site 'x': not defined in these manifests",
        f"{late}:document 1 (Site edge-1): spec.region: expected a name, got number 7 (quote it in YAML to keep it a string)",  # noqa: E501
        f"{late}:document 2: expected a mapping with apiVersion, kind, metadata and spec, got a list",
    ]


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    assert problems(tmp_path) == [f"{tmp_path}: no *.yaml or *.yml file in this directory"]


def test_to_document_round_trips_through_a_file(tmp_path: Path) -> None:
    manifests = load_manifests([EXAMPLES])
    text = yaml.safe_dump_all([to_document(m.kind, m.name, m.spec) for m in manifests], sort_keys=False)
    again = load_manifests([write(tmp_path, "all.yaml", text)])
    assert [(m.kind, m.name, m.spec) for m in again] == [(m.kind, m.name, m.spec) for m in manifests]


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", SITE)
    assert len(load_manifests([tmp_path, path, tmp_path / "." / "m.yaml"])) == 1


def test_status_is_observed_state_and_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", SITE + "status: {upfs: 3}\n")
    assert [m.spec for m in load_manifests([path])] == [{"kind": "edge", "region": "eu", "tais": ["001-01-000001"]}]
