"""The query API over a real socket, on the sample logs of real Postfix and Dovecot.

Expected figures come from ``samples/README.md`` (what the sample script sent):
acme 4 bounced and 1 expired, globex 9 bounced and 1 expired, initech 5 delivered;
13 non-delivery notifications, all delivered; 5 NOQUEUE refusals.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import httpx
import pytest
from api_served import ACME, OPERATOR, Served

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def api(served: Served) -> Iterator[httpx.Client]:
    with served.client(OPERATOR) as client:
        yield client


def _groups(body: dict[str, object], name: str) -> dict[str, dict[str, int]]:
    groups = body["groups"]
    assert isinstance(groups, list)
    return {g["stats"]["key"][name]: g["stats"] for g in groups}


def test_summary_by_tenant_matches_what_was_sent(api: httpx.Client) -> None:
    body = api.get("/v1/stats/summary", params={"group_by": "tenant"}).json()
    tenants = _groups(body, "tenant")
    assert (tenants["acme"]["bounced"], tenants["acme"]["expired"]) == (4, 1)
    assert (tenants["globex"]["bounced"], tenants["globex"]["expired"]) == (9, 1)
    assert (tenants["initech"]["delivered"], tenants["initech"]["bounced"]) == (5, 0)
    totals = body["totals"]["stats"]
    assert totals["bounced"] == 13 and totals["expired"] == 2
    assert totals["deferral_attempts"] == 13
    assert body["totals"]["rates"]["bounced"] == pytest.approx(13 / 50, abs=1e-6)


def test_summary_carries_delay_percentiles_per_stage(api: httpx.Client) -> None:
    body = api.get("/v1/stats/summary", params={"group_by": "tenant"}).json()
    initech = _groups(body, "tenant")["initech"]["delays"]
    # initech's slow MDA path holds every end-of-DATA reply for 4 s: transmission.
    assert initech["transmission"]["p95"] >= 3.5
    assert initech["before_queue_manager"]["p95"] < 3.5


def test_summary_groups_by_two_dimensions(api: httpx.Client) -> None:
    body = api.get(
        "/v1/stats/summary", params={"group_by": "tenant,transport", "limit": 3}
    ).json()
    assert body["group_by"] == ["tenant", "transport"]
    assert len(body["groups"]) == 3
    assert set(body["groups"][0]["stats"]["key"]) == {"tenant", "transport"}


def test_timeseries_buckets_add_up_to_the_summary(api: httpx.Client) -> None:
    series = api.get("/v1/stats/timeseries", params={"interval": "10s"}).json()
    summary = api.get("/v1/stats/summary").json()["totals"]["stats"]
    assert series["interval_seconds"] == 10
    assert len(series["points"]) >= 2
    assert sum(p["bounced"] for p in series["points"]) == summary["bounced"]
    stamps = [p["ts"] for p in series["points"]]
    assert stamps == sorted(stamps)


def test_deliveries_filter_by_status_and_tenant(api: httpx.Client) -> None:
    page = api.get(
        "/v1/deliveries", params={"tenant": "globex", "status": "bounced"}
    ).json()
    assert len(page["items"]) == 9
    assert {i["tenant"] for i in page["items"]} == {"globex"}
    assert {i["cause"] for i in page["items"]} <= {
        "quota_exceeded",
        "unknown_recipient",
    }


def test_deliveries_cursor_pages_cover_everything_newest_first(
    api: httpx.Client,
) -> None:
    everything = api.get("/v1/deliveries", params={"limit": 1000}).json()["items"]
    paged: list[dict[str, object]] = []
    params: dict[str, str | int] = {"limit": 7}
    for _ in range(100):
        response = api.get("/v1/deliveries", params=params)
        body = response.json()
        paged += body["items"]
        if body["next_cursor"] is None:
            assert "link" not in response.headers
            break
        assert 'rel="next"' in response.headers["link"]
        params["cursor"] = body["next_cursor"]
    assert [i["id"] for i in paged] == [i["id"] for i in everything]
    stamps = [i["ts"] for i in paged]
    assert stamps == sorted(stamps, reverse=True)


def test_deliveries_min_delay_finds_the_slow_mda_path(api: httpx.Client) -> None:
    items = api.get("/v1/deliveries", params={"min_delay": 3.5}).json()["items"]
    assert items, "the slow MDA path delays initech's mail by 4 s"
    assert all(i["delay"] >= 3.5 for i in items)
    assert "initech" in {i["tenant"] for i in items}


def test_deliveries_export_as_csv(api: httpx.Client) -> None:
    response = api.get(
        "/v1/deliveries", params={"status": "bounced"}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 13
    assert {r["status"] for r in rows} == {"bounced"}
    assert all(r["time"].endswith("Z") for r in rows)


def test_lmtp_delivery_carries_the_dovecot_side(api: httpx.Client) -> None:
    items = api.get(
        "/v1/deliveries", params={"transport": "lmtp", "status": "sent", "limit": 1000}
    ).json()["items"]
    joined = [i for i in items if i["dovecot"] is not None]
    assert joined, "Postfix's LMTP reply carries Dovecot's session ID"
    assert {i["dovecot"]["status"] for i in joined} == {"saved"}


def test_message_trace_by_queue_id_has_lines_and_deliveries(api: httpx.Client) -> None:
    item = api.get(
        "/v1/deliveries", params={"tenant": "acme", "transport": "lmtp"}
    ).json()["items"][0]
    body = api.get(f"/v1/messages/{item['queue_id']}").json()
    trace = body["messages"][0]
    assert trace["message"]["queue_id"] == item["queue_id"]
    assert item["recipient"] in {d["recipient"] for d in trace["deliveries"]}
    assert any(item["queue_id"] in line["line"] for line in trace["lines"])
    narrowed = api.get(
        f"/v1/messages/{item['queue_id']}", params={"host": item["host"]}
    ).json()
    assert {m["message"]["host"] for m in narrowed["messages"]} == {item["host"]}


def test_message_trace_by_message_id(api: httpx.Client) -> None:
    items = api.get("/v1/deliveries", params={"limit": 1000}).json()["items"]
    item = next(i for i in items if i["message_id"])
    body = api.get("/v1/messages", params={"message_id": item["message_id"]}).json()
    assert item["queue_id"] in {m["message"]["queue_id"] for m in body["messages"]}


def test_unknown_queue_id_is_a_problem_404(api: httpx.Client) -> None:
    response = api.get("/v1/messages/NOSUCHQUEUEID")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "NOSUCHQUEUEID" in response.json()["detail"]


def test_rejects_lists_the_noqueue_refusals(api: httpx.Client) -> None:
    items = api.get("/v1/rejects").json()["items"]
    assert len(items) == 5
    assert {i["client_ip"] for i in items} == {"127.0.3.66"}
    relay = api.get("/v1/rejects", params={"cause": "relay_denied"}).json()["items"]
    assert len(relay) == 2


def test_unparsed_reports_lines_per_program(api: httpx.Client) -> None:
    body = api.get("/v1/unparsed").json()
    assert body["lines"] == 375
    assert body["unparsed"] <= body["lines"]
    assert body["by_program"]


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/v1/deliveries", {"since": "yesterday"}, "since"),
        ("/v1/deliveries", {"until": "2026-13-01T00:00:00Z"}, "until"),
        ("/v1/deliveries", {"since": "-1h", "until": "-2h"}, "until"),
        ("/v1/deliveries", {"status": "lost"}, "status"),
        ("/v1/deliveries", {"cause": "gremlins"}, "cause"),
        ("/v1/deliveries", {"cursor": "not-a-cursor"}, "cursor"),
        ("/v1/deliveries", {"limit": 0}, "limit"),
        ("/v1/deliveries", {"min_delay": "slow"}, "min_delay"),
        ("/v1/stats/summary", {"group_by": "tenant,planet"}, "group_by"),
        ("/v1/stats/timeseries", {"interval": "0s"}, "interval"),
        ("/v1/stats/timeseries", {"interval": "fortnight"}, "interval"),
        ("/v1/rejects", {"action": "shrug"}, "action"),
        ("/v1/messages", {}, "message_id"),
    ],
)
def test_bad_parameter_is_a_4xx_problem_naming_it(
    api: httpx.Client, path: str, params: dict[str, object], parameter: str
) -> None:
    response = api.get(path, params=params)
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["parameter"] == parameter
    assert parameter in problem["detail"]
    assert problem["status"] == response.status_code
    assert problem["instance"] == path


def test_unknown_path_and_method_are_problems(api: httpx.Client) -> None:
    missing = api.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    wrong = api.delete("/v1/deliveries")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {ACME}"}],
    ids=["none", "unknown-token", "not-bearer"],
)
def test_v1_needs_a_valid_bearer_token(served: Served, headers: dict[str, str]) -> None:
    with served.client(None) as client:
        response = client.get("/v1/stats/summary", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_operational_routes_need_no_token(served: Served) -> None:
    with served.client(None) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        metrics = client.get("/metrics")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["store"] == "ok"
    assert metrics.status_code == 200
    assert "mailtriage_ingest_lag_seconds" in metrics.text


def test_openapi_documents_every_route_with_examples(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/v1/deliveries",
        "/v1/messages/{queue_id}",
        "/v1/messages",
        "/v1/stats/summary",
        "/v1/stats/timeseries",
        "/v1/rejects",
        "/v1/unparsed",
        "/v1/ingest",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    since = next(
        p for p in paths["/v1/deliveries"]["get"]["parameters"] if p["name"] == "since"
    )
    assert since["schema"]["examples"] == ["-24h"]
