"""deploy/grafana/edgecups-dashboard.json: a valid dashboard whose every query selects documented metrics.

The documented tables (deploy/grafana/README.md) are in turn what the planes serve:
tests/unit/metrics/test_planes.py and tests/integration/test_metrics.py scrape real processes
and compare, and the integration test also checks every metric named here against its scrapes.
"""

from __future__ import annotations

import json
import re

from tests.unit.metrics.scrape import (
    DASHBOARD,
    dashboard_queries,
    documented,
    family_of_series,
    query_selectors,
)


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["site", "upf"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    bottom = 0
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert grid["y"] >= bottom or panel["type"] != "row", panel["title"]  # rows go down the page
        bottom = max(bottom, grid["y"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
            # Only the variables the dashboard defines, and Grafana's own.
            for variable in re.findall(r"\$\{?([a-zA-Z_]+)", target["expr"]):
                assert variable in {"site", "upf", "__rate_interval"}, (panel["title"], variable)


def test_every_query_selects_documented_metrics_with_their_labels() -> None:
    tables = {plane: documented(plane) for plane in ("cp", "upf")}
    assert all(tables.values())
    for query in dashboard_queries():
        selectors = query_selectors(query)
        assert selectors, f"selects no metric: {query}"
        for name, labels in selectors:
            owners = [(plane, family_of_series(name, table)) for plane, table in tables.items()]
            known = [(plane, series) for plane, series in owners if series is not None]
            assert known, f"{name} is not a documented metric ({query})"
            # The label matchers must exist on the metric of at least one plane serving it.
            assert any(labels <= tables[plane][series][1] | {"le"} for plane, series in known), (name, labels, query)


def test_the_query_parser_sees_what_a_query_selects() -> None:
    # The check above is only as good as this reading of PromQL.
    query = (
        "histogram_quantile(0.99, sum by (le, upf) (rate(pfcp_peer_response_seconds_bucket"
        '{function="up", type=~"a|b"}[$__rate_interval]))) / on (upf) group_left up'
    )
    assert query_selectors(query) == [("pfcp_peer_response_seconds_bucket", {"function", "type"}), ("up", set())]
