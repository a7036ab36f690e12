"""Scraping /metrics over HTTP the way Prometheus does, and the documented metric table.

Shared by the unit and integration metrics tests: :func:`fetch` asks for the OpenMetrics
format first, as Prometheus does; :func:`parse` reads the text with prometheus_client's own
parser; :func:`documented` reads the table of deploy/grafana/README.md, so a test can hold
the exposition to what the documentation promises.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

# The OpenMetrics parser carries no annotations.
parse_openmetrics = cast(Callable[[str], Iterable[Metric]], openmetrics_parser.text_string_to_metric_families)

README = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "README.md"
DASHBOARD = README.parent / "edgecups-dashboard.json"
#: What Prometheus sends (it prefers OpenMetrics, then the text format).
ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
#: Families prometheus_client's ProcessCollector adds (documented as a group).
PROCESS_PREFIX = "process_"


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """One scrape: family name -> type, and every sample."""

    types: Mapping[str, str]
    samples: tuple[Sample, ...]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            s.value for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}


def fetch(url: str, *, openmetrics: bool = True, timeout: float = 15.0) -> tuple[str, str]:
    """GET ``url``; (Content-Type, body). Raises on an HTTP error."""
    request = urllib.request.Request(url, headers={"Accept": ACCEPT if openmetrics else "text/plain"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.headers["Content-Type"], response.read().decode()


def parse(content_type: str, text: str) -> Scrape:
    """Parse an exposition in whichever format the server chose."""
    families = (
        parse_openmetrics(text)
        if content_type.startswith("application/openmetrics-text")
        else text_string_to_metric_families(text)
    )
    types: dict[str, str] = {}
    samples: list[Sample] = []
    for family in families:
        types[family.name] = family.type
        samples += [Sample(s.name, dict(s.labels), s.value) for s in family.samples]
    return Scrape(types, tuple(samples))


def scrape(url: str) -> Scrape:
    return parse(*fetch(url))


def documented(plane: str) -> dict[str, tuple[str, frozenset[str]]]:
    """The metric table of ``plane`` ("cp" or "upf") in deploy/grafana/README.md: series name ->
    (type, label names). The tables sit under the headings "Control plane" and "UPF agent"."""
    heading = {"cp": "## Control plane", "upf": "## UPF agent"}[plane]
    rows: dict[str, tuple[str, frozenset[str]]] = {}
    inside = False
    for line in README.read_text().splitlines():
        if line.startswith("## "):
            inside = line.startswith(heading)
            continue
        match = re.match(r"\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(counter|gauge|histogram)\s*\|([^|]*)\|", line)
        if inside and match:
            rows[match.group(1)] = (match.group(2), frozenset(re.findall(r"`([a-z_]+)`", match.group(3))))
    return rows


def series_name(family: str, kind: str) -> str:
    """The name a family's samples are queried by: counters carry ``_total``, histograms their base name."""
    return f"{family}_total" if kind == "counter" else family


def check_documented(scrape: Scrape, plane: str) -> list[str]:
    """Problems: families or labels served that ``plane``'s README table does not document as served."""
    table = documented(plane)
    problems: list[str] = []
    for family, kind in scrape.types.items():
        if family.startswith(PROCESS_PREFIX):
            continue
        name = series_name(family, kind)
        if name not in table:
            problems.append(f"{name} is served but not documented")
        elif table[name][0] != kind:
            problems.append(f"{name} is a {kind}, documented as a {table[name][0]}")
    for sample in scrape.samples:
        owner = _family_of(sample.name, scrape.types)
        if owner is None or owner.startswith(PROCESS_PREFIX):
            continue
        name = series_name(owner, scrape.types[owner])
        labels = set(sample.labels) - {"le"}
        if name in table and labels != table[name][1]:
            problems.append(f"{sample.name} has labels {sorted(labels)}, documented {sorted(table[name][1])}")
    return sorted(set(problems))


def _family_of(sample: str, types: Iterable[str]) -> str | None:
    for suffix in ("", "_total", "_bucket", "_count", "_sum", "_created"):
        if suffix and not sample.endswith(suffix):
            continue
        base = sample[: len(sample) - len(suffix)] if suffix else sample
        if base in types:
            return base
    return None


# -- the dashboard's queries ------------------------------------------------------------------------

_PROMQL_WORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "and",
        "or",
        "unless",
        "inf",
        "nan",
    }
)
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and variable queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.*),\s*[a-z_]+\)", variable["query"]["query"])
        assert match, f"variable {variable['name']}: not a label_values() query"
        queries.append(match.group(1))
    return queries


def query_selectors(query: str) -> list[tuple[str, set[str]]]:
    """The metric names a PromQL expression selects, each with the label names it matches on."""
    text = re.sub(r"\[[^\]]*\]", "", query)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    selectors: list[tuple[str, set[str]]] = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?", text):
        name, matchers, call = match.groups()
        if call or name in _PROMQL_WORDS:
            continue
        labels = set(re.findall(r"([a-zA-Z_]+)\s*(?:=~|!~|!=|=)", matchers or ""))
        selectors.append((name, labels))
    return selectors


def family_of_series(name: str, table: Mapping[str, tuple[str, frozenset[str]]]) -> str | None:
    """The documented series a selected name belongs to (a histogram's ``_bucket`` and the like)."""
    if name in table:
        return name
    for suffix in _HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and table.get(base, ("", frozenset()))[0] == "histogram":
            return base
    return None
