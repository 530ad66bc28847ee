"""The agent's tools, called as the loop calls them: JSON arguments in, a result
with a status out, over the caller's confined store."""

from __future__ import annotations

import json
import re

import pytest

from mailtriage.agents.tools import TOOLS, StoreToolBox, Tool, ToolContext
from mailtriage.app.store.base import Store

NOW = 1796318200.0 + 86400  # a day after the samples end


def _box(store: Store, tenant: str | None = None) -> StoreToolBox:
    return StoreToolBox(ToolContext(store.confined(tenant), tenant, now=NOW))


@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
def test_each_tool_declares_a_schema_derived_from_its_parameters(tool: Tool) -> None:
    spec = tool.spec()
    function = spec["function"]

    assert spec["type"] == "function"
    assert re.fullmatch(r"[a-z]+_[a-z_]+", function["name"])
    assert len(function["description"]) > 60
    schema = function["parameters"]
    assert schema["type"] == "object"
    assert schema.get("additionalProperties") is False
    assert "title" not in schema
    assert set(schema["properties"]) == set(tool.params.model_fields)


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("get_findings", {"tenant": "globex"}),
        ("get_summary", {"tenant": "globex", "group_by": ["domain"]}),
        ("search_deliveries", {"tenant": "globex"}),
        ("get_timeseries", {"tenant": "globex"}),
        ("compare_windows", {"tenant": "globex"}),
    ],
)
def test_a_tenant_caller_is_refused_another_tenant(
    store: Store, name: str, arguments: dict[str, object]
) -> None:
    result = _box(store, "acme").run(name, json.dumps(arguments))

    assert result.status == "error"
    assert result.message.startswith("refused")
    assert result.data is None


def test_a_tenant_caller_cannot_trace_another_tenants_message(store: Store) -> None:
    box = _box(store, "acme")

    assert box.run("trace_message", '{"queue_id": "5EEB320C4F7"}').status == "no_data"
    own = box.run("trace_message", '{"queue_id": "A9B3420C023"}')
    assert own.status == "success"
    recipients = {d["recipient"] for d in own.data[0]["deliveries"]}
    assert recipients and all(r.endswith("@acme.example") for r in recipients)


def test_get_findings_lists_incidents_and_hides_noise(store: Store) -> None:
    result = _box(store).run("get_findings", "{}")

    kinds = [f["kind"] for f in result.data["findings"]]
    assert result.status == "success"
    assert kinds[0] == "quota_exceeded" and "greylisting" not in kinds
    assert "rated noise left out" in result.message


def test_get_findings_for_a_quiet_window_has_no_data(store: Store) -> None:
    result = _box(store).run(
        "get_findings", '{"since": "2026-11-01T00:00:00Z", "until": "2026-11-02"}'
    )

    assert result.status == "no_data"
    assert result.data["findings"] == []


def test_search_deliveries_counts_slow_lmtp_by_tenant_and_domain(store: Store) -> None:
    arguments = {
        "transport": "lmtp",
        "min_delay": 3,
        "final": True,
        "group_by": ["tenant", "domain"],
        "limit": 2,
    }
    result = _box(store).run("search_deliveries", json.dumps(arguments))

    assert result.status == "success"
    assert result.data["matched"] == 4
    assert len(result.data["items"]) == 2
    (group,) = result.data["groups"]
    assert (group["tenant"], group["domain"], group["recipients"]) == (
        "initech",
        "initech.example",
        4,
    )
    item = result.data["items"][0]
    assert item["dovecot"]["delivery_time_s"] < 0.1 < item["delays"]["transmission"]


def test_get_summary_groups_with_stage_delays(store: Store) -> None:
    result = _box(store).run("get_summary", '{"group_by": ["transport"]}')

    groups = {g["transport"]: g for g in result.data["groups"]}
    assert set(groups) == {"lmtp", "smtp"}
    assert groups["lmtp"]["delays"]["transmission"]["p99"] >= 4.0


def test_compare_windows_puts_counts_side_by_side(store: Store) -> None:
    arguments = {"since": "2026-12-03T17:15:15Z", "until": "2026-12-03T17:15:38Z"}
    result = _box(store).run("compare_windows", json.dumps(arguments))

    totals = result.data["changes"][0]
    assert totals["group"] == "totals"
    assert result.data["baseline"]["until"] == "2026-12-03T17:15:15Z"
    assert totals["delivered"]["window"] + totals["delivered"]["baseline"] > 0


def test_get_timeseries_buckets_the_window(store: Store) -> None:
    result = _box(store).run("get_timeseries", '{"interval": "30s"}')

    assert result.status == "success"
    assert len(result.data["points"]) >= 2
    assert all(p["ts"].endswith(("00Z", "30Z")) for p in result.data["points"])
