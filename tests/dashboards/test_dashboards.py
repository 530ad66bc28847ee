"""The Grafana dashboards and their provisioning files, checked without Grafana.

Grafana cannot run here. Each dashboard is validated twice: against a JSON schema
written from Grafana's dashboard schema (``grafana-dashboard.schema.json``, its
sources in its ``$comment``), and by decoding it with the models Grafana generates
from that schema (the ``grafana-foundation-sdk`` package) and checking that no key
was dropped: a key the models do not know is a key Grafana would ignore.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dashboard_queries import (
    DASHBOARDS,
    dashboards,
    metric_names,
    panel_queries,
    panels,
    rules,
    variable_queries,
    variables,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from mailtriage.app.metrics import MetricsObserver

SCHEMA = json.loads(
    Path(__file__).with_name("grafana-dashboard.schema.json").read_text()
)
BOARDS = dashboards()
# The dashboards the issue asks for, by uid.
EXPECTED = {
    "mailtriage-overview",
    "mailtriage-tenants-domains",
    "mailtriage-delays",
    "mailtriage-dovecot-lmtp",
    "mailtriage-ingest-health",
}
# Variables Grafana defines itself.
GLOBAL_VARIABLES = {"__rate_interval", "__interval", "__range", "__from", "__to"}


def exposed_names() -> set[str]:
    """Every series name the registry can expose, as PromQL selects them."""
    names = set()
    for family in MetricsObserver(tenants=["acme"]).registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def dropped(original: Any, decoded: Any, path: str = "") -> list[str]:
    """Paths whose keys or values did not survive decoding and encoding."""
    if isinstance(original, dict):
        if not isinstance(decoded, dict):
            return [path]
        lost = []
        for key, value in original.items():
            if key not in decoded:
                lost.append(f"{path}.{key}")
            else:
                lost += dropped(value, decoded[key], f"{path}.{key}")
        return lost
    if isinstance(original, list):
        if not isinstance(decoded, list) or len(decoded) != len(original):
            return [path]
        return [
            p
            for i, (a, b) in enumerate(zip(original, decoded, strict=True))
            for p in dropped(a, b, f"{path}[{i}]")
        ]
    return [] if original == decoded else [path]


def test_every_dashboard_the_issue_names_exists() -> None:
    assert {board["uid"] for board in BOARDS.values()} == EXPECTED


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_validates_against_grafana_schema(name: str) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)

    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(BOARDS[name])
    ]

    assert errors == []


def test_schema_refuses_what_grafana_would_not_read() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    board = json.loads(json.dumps(BOARDS["overview.json"]))
    board["panels"][1]["gridPos"]["w"] = 30
    board["panels"][1]["datasourc"] = {}
    board["templating"]["list"][0]["type"] = "dropdown"

    messages = " ".join(e.message for e in validator.iter_errors(board))

    assert "30 is greater than the maximum of 24" in messages
    assert "'datasourc' was unexpected" in messages
    assert "'dropdown' is not one of" in messages


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_survives_grafana_sdk_models(name: str) -> None:
    register_default_plugins()
    board = BOARDS[name]

    decoded = json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))

    assert dropped(board, decoded) == []


def test_sdk_check_notices_unknown_keys() -> None:
    register_default_plugins()
    board = json.loads(json.dumps(BOARDS["delays.json"]))
    heatmap = next(p for p in panels(board) if p["type"] == "heatmap")
    heatmap["options"]["yAxsi"] = {}

    decoded = json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))

    assert [p for p in dropped(board, decoded) if p.endswith("yAxsi")]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_follows_mailtriage_conventions(name: str) -> None:
    board = BOARDS[name]
    defined = {var["name"] for var in board["templating"]["list"]}
    all_panels = panels(board)
    ids = [p["id"] for p in board["panels"]] + [
        nested["id"] for row in board["panels"] for nested in row.get("panels", [])
    ]

    assert board["schemaVersion"] == 41
    assert board["title"].startswith("mailtriage / ")
    assert "mailtriage" in board["tags"]
    assert "datasource" in defined and "api" in defined
    assert len(ids) == len(set(ids))
    for panel in all_panels:
        assert panel["description"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            missing = variables(target["expr"]) - defined - GLOBAL_VARIABLES
            assert not missing, (panel["title"], missing)
        for link in panel["fieldConfig"]["defaults"].get("links", []):
            assert link["url"].startswith("${api}/v1/"), link
            assert not (
                variables(link["url"])
                - defined
                - GLOBAL_VARIABLES
                - {"__field", "__data"}
            )


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_do_not_overlap(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in BOARDS[name]["panels"]:
        pos = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        taken |= cells


def test_tenant_and_domain_variables_where_the_issue_wants_them() -> None:
    by_uid = {board["uid"]: board for board in BOARDS.values()}
    names = {
        uid: {var["name"] for var in board["templating"]["list"]}
        for uid, board in by_uid.items()
    }

    assert {"tenant", "domain"} <= names["mailtriage-tenants-domains"]
    assert "tenant" in names["mailtriage-overview"]
    assert "tenant" in names["mailtriage-delays"]


def test_panels_link_to_the_api() -> None:
    urls = [
        link["url"]
        for board in BOARDS.values()
        for panel in panels(board)
        for link in panel["fieldConfig"]["defaults"].get("links", [])
    ]

    assert any("/v1/deliveries?" in url and "domain=" in url for url in urls)
    assert any("transport=lmtp" in url for url in urls)
    datasource = yaml.safe_load(
        (DASHBOARDS / "provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    trace = datasource["jsonData"]["exemplarTraceIdDestinations"][0]
    assert trace["name"] == "queue_id"
    assert "/v1/messages/" in trace["url"]


def test_every_metric_a_dashboard_or_rule_names_is_registered() -> None:
    registered = exposed_names()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used: dict[str, str] = {}
    for name, board in BOARDS.items():
        for title, expr in panel_queries(board):
            used |= {metric: f"{name}: {title}" for metric in metric_names(expr)}
        for var, selector, _ in variable_queries(board):
            used |= {metric: f"{name}: ${var}" for metric in metric_names(selector)}
    for rule in rules():
        where = rule.get("alert") or rule.get("record")
        used |= {metric: f"rules: {where}" for metric in metric_names(rule["expr"])}

    unknown = {m: where for m, where in used.items() if m not in registered | recorded}

    assert unknown == {}
    # The extraction found the names (a broken parser would find none).
    assert {
        "lmtp_delivery_total",
        "mailtriage_final_delivery_stage_seconds_bucket",
    } <= set(used)
    assert len(used) > 30


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(a_bucket{x="y"}[5m]))', {"a_bucket"}),
        (
            "histogram_quantile(0.95, sum by (le, stage) (rate(b[$__rate_interval])))",
            {"b"},
        ),
        ("a / on(tenant) group_left(domain) b offset 1d", {"a", "b"}),
        ('time() - c{source=~"$x"} > bool 10', {"c"}),
        (
            "rec:name:rate5m > 2 * rec:name:avg1d and d >= 1e3",
            {"rec:name:rate5m", "rec:name:avg1d", "d"},
        ),
        ('label_replace(e, "dst", "$1", "src", "(.*)")', {"e"}),
    ],
    ids=["matchers", "quantile", "grouping-offset", "time-bool", "recorded", "strings"],
)
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_provisioning_files_point_at_the_dashboards() -> None:
    datasources = yaml.safe_load(
        (DASHBOARDS / "provisioning/datasources/prometheus.yml").read_text()
    )
    providers = yaml.safe_load(
        (DASHBOARDS / "provisioning/dashboards/mailtriage.yml").read_text()
    )

    (source,) = datasources["datasources"]
    (provider,) = providers["providers"]
    assert datasources["apiVersion"] == 1 and providers["apiVersion"] == 1
    assert source["type"] == "prometheus"
    for board in BOARDS.values():
        var = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
        assert var["current"]["value"] == source["uid"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")


def test_no_dashboard_filters_on_a_label_metrics_never_carry() -> None:
    # Queue IDs, addresses and IPs are never labels; a panel asking for one is wrong.
    forbidden = re.compile(r"\b(queue_id|recipient|sender|client_ip|relay_ip)\s*=")
    for board in BOARDS.values():
        for title, expr in panel_queries(board):
            assert not forbidden.search(expr), title
