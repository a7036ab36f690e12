"""edge_sites.diff: plan() against what the server holds, and the text apply --dry-run prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_sites.diff import Change, FieldChange, plan, render_plan
from edge_sites.manifests import Manifest, load_manifests
from edge_sites.schema import validate_object

EXAMPLES = Path(__file__).parents[3] / "edge_sites" / "examples"


def manifest(kind: str, name: str, spec: dict[str, Any]) -> Manifest:
    return Manifest(kind, name, validate_object(kind, name, spec), Path("m.yaml"), 1)


SITE = manifest("Site", "edge-1", {"kind": "edge", "region": "eu", "tais": ["001-01-000002", "001-01-000001"]})
UPF = manifest(
    "UPF",
    "198.18.1.10",
    {"site": "edge-1", "n4_address": "198.18.1.10", "n3_addresses": ["198.19.1.10"], "capacity": 10},
)
RULE = {"name": "apps", "precedence": 100, "flow_descriptions": ["permit out ip from any to assigned"],
        "network_instance": "mec-local"}  # fmt: skip
POLICY = manifest(
    "Policy",
    "p",
    {"dnn": "mec", "qfi": 9, "five_qi": 9, "session_ambr_ul_kbps": 1, "session_ambr_dl_kbps": 2, "edge_rules": [RULE]},
)


def test_create_update_unchanged_in_apply_order() -> None:
    current = {
        # As the server answers: unordered lists in its own order, observed state alongside.
        ("Site", "edge-1"): {"kind": "edge", "region": "eu", "tais": ["001-01-000001", "001-01-000002"]},
        ("UPF", "198.18.1.10"): {**UPF.spec, "capacity": 5, "admin_state": "drained", "health": "up"},
        ("Subscriber", "imsi-001010000000009"): {"allowed_dnns": ["internet"]},  # not in the manifests
    }
    changes = plan([POLICY, UPF, SITE], current)
    assert changes == [
        Change("Site", "edge-1", "unchanged", SITE.spec),
        Change("UPF", "198.18.1.10", "update", UPF.spec, (
            FieldChange("capacity", 5, 10),
            FieldChange("admin_state", "drained", "enabled"),
        )),
        Change("Policy", "p", "create", POLICY.spec),
    ]  # fmt: skip
    assert changes[1].spec == UPF.spec  # what to send


def test_field_paths_inside_edge_rules_and_whole_lists() -> None:
    held = {**POLICY.spec, "edge_rules": [{**RULE, "precedence": 200}]}
    site = {**SITE.spec, "tais": ["001-01-000001"]}
    changes = plan([POLICY, SITE], {("Policy", "p"): held, ("Site", "edge-1"): site})
    assert changes[0].fields == (FieldChange("tais", ["001-01-000001"], ["001-01-000001", "001-01-000002"]),)
    assert changes[1].fields == (FieldChange("edge_rules[0].precedence", 200, 100),)
    shorter = plan([POLICY], {("Policy", "p"): {**POLICY.spec, "edge_rules": []}})
    assert shorter[0].fields == (FieldChange("edge_rules", [], POLICY.spec["edge_rules"]),)


def test_a_server_value_that_does_not_validate_still_shows_as_a_difference() -> None:
    held = {**UPF.spec, "n4_port": 0}
    assert plan([UPF], {UPF.key: held})[0].fields == (FieldChange("n4_port", 0, 8805),)


def test_the_examples_applied_twice_change_nothing() -> None:
    manifests = load_manifests([EXAMPLES])
    first = plan(manifests, {})
    assert {c.action for c in first} == {"create"}
    current = {(c.kind, c.name): c.spec for c in first}
    assert {c.action for c in plan(manifests, current)} == {"unchanged"}


def test_render_plan() -> None:
    changes = [
        Change("Site", "edge-1", "unchanged", SITE.spec),
        Change("UPF", "198.18.1.10", "update", UPF.spec, (FieldChange("capacity", 5, 10),
                                                          FieldChange("access_network_instance", None, "access"))),
        Change("Policy", "p", "create", POLICY.spec),
    ]  # fmt: skip
    assert render_plan(changes) == (
        "= Site edge-1 (unchanged)\n"
        "~ UPF 198.18.1.10 (update)\n"
        "    capacity: 5 -> 10\n"
        '    access_network_instance: null -> "access"\n'
        "+ Policy p (create)\n"
        "1 to create, 1 to update, 1 unchanged (objects not in the manifests are left as they are)"
    )
    applied = render_plan(changes, applied=True).splitlines()
    assert [applied[0], applied[1], applied[4], applied[5]] == [
        "= Site edge-1 (unchanged)",
        "~ UPF 198.18.1.10 (updated)",
        "+ Policy p (created)",
        "1 created, 1 updated, 1 unchanged",
    ]
