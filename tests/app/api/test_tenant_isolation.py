"""A tenant token sees its own tenant and nothing else, on every /v1 route.

``CASES`` holds one isolation check per route; ``test_every_v1_route_has_a_case``
fails when a route is added without one. Each check uses acme's token and compares
with what an operator sees, so that an empty answer cannot pass by accident.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from api_served import ACME, OPERATOR, Served


@dataclass(frozen=True, slots=True)
class Clients:
    acme: httpx.Client
    operator: httpx.Client


@pytest.fixture(scope="module")
def clients(served: Served) -> Iterator[Clients]:
    with served.client(ACME) as acme, served.client(OPERATOR) as operator:
        yield Clients(acme, operator)


def _forbidden_or_empty(response: httpx.Response, key: str = "items") -> None:
    assert response.status_code in (403, 200), response.text
    if response.status_code == 200:
        assert response.json()[key] == []
    else:
        assert response.headers["content-type"] == "application/problem+json"


def _queue_ids(client: httpx.Client, tenant: str) -> set[str]:
    items = client.get(
        "/v1/deliveries", params={"tenant": tenant, "limit": 1000}
    ).json()["items"]
    return {i["queue_id"] for i in items}


# ------------------------------------------------------------------ the checks


def check_deliveries(c: Clients) -> None:
    mine = c.acme.get("/v1/deliveries", params={"limit": 1000}).json()["items"]
    truth = c.operator.get(
        "/v1/deliveries", params={"tenant": "acme", "limit": 1000}
    ).json()["items"]
    assert mine and {i["tenant"] for i in mine} == {"acme"}
    assert [i["id"] for i in mine] == [i["id"] for i in truth]
    _forbidden_or_empty(c.acme.get("/v1/deliveries", params={"tenant": "globex"}))
    exported = c.acme.get("/v1/deliveries", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == len(mine)
    assert {r["tenant"] for r in rows} == {"acme"}


def check_message_by_queue_id(c: Clients) -> None:
    only_globex = _queue_ids(c.operator, "globex") - _queue_ids(c.operator, "acme")
    assert only_globex
    for queue_id in sorted(only_globex)[:5]:
        response = c.acme.get(f"/v1/messages/{queue_id}")
        assert response.status_code in (403, 404), queue_id
    acme_qid = sorted(_queue_ids(c.operator, "acme"))[0]
    traces = c.acme.get(f"/v1/messages/{acme_qid}").json()["messages"]
    assert traces
    for trace in traces:
        assert {d["tenant"] for d in trace["deliveries"]} <= {"acme"}


def check_message_by_message_id(c: Clients) -> None:
    items = c.operator.get(
        "/v1/deliveries", params={"tenant": "globex", "limit": 1000}
    ).json()["items"]
    acme_ids = {
        i["message_id"]
        for i in c.operator.get(
            "/v1/deliveries", params={"tenant": "acme", "limit": 1000}
        ).json()["items"]
    }
    foreign = {i["message_id"] for i in items if i["message_id"]} - acme_ids
    assert foreign
    for message_id in sorted(foreign)[:5]:
        response = c.acme.get("/v1/messages", params={"message_id": message_id})
        assert response.status_code in (403, 404), message_id


def check_summary(c: Clients) -> None:
    body = c.acme.get("/v1/stats/summary", params={"group_by": "tenant"}).json()
    keys = {g["stats"]["key"]["tenant"] for g in body["groups"]}
    assert keys == {"acme"}
    truth = c.operator.get("/v1/stats/summary", params={"tenant": "acme"}).json()
    assert body["totals"]["stats"] == truth["totals"]["stats"]
    denied = c.acme.get("/v1/stats/summary", params={"tenant": "globex"})
    assert denied.status_code == 403


def check_timeseries(c: Clients) -> None:
    params = {"interval": "1m", "group_by": "tenant"}
    points = c.acme.get("/v1/stats/timeseries", params=params).json()["points"]
    assert points and {p["key"]["tenant"] for p in points} == {"acme"}
    denied = c.acme.get("/v1/stats/timeseries", params={"tenant": "globex"})
    assert denied.status_code == 403


def check_rejects(c: Clients) -> None:
    mine = c.acme.get("/v1/rejects").json()["items"]
    truth = c.operator.get("/v1/rejects", params={"tenant": "acme"}).json()["items"]
    assert {r["tenant"] for r in mine} <= {"acme"}
    assert [r["id"] for r in mine] == [r["id"] for r in truth]
    _forbidden_or_empty(c.acme.get("/v1/rejects", params={"tenant": "globex"}))


def check_unparsed(c: Clients) -> None:
    # Unparsed lines belong to no tenant: operator tokens only.
    assert c.acme.get("/v1/unparsed").status_code == 403
    assert c.operator.get("/v1/unparsed").status_code == 200


def check_ingest(c: Clients) -> None:
    line = "Dec  3 17:12:02 mx1 postfix/qmgr[1]: ABCDEF: removed\n"
    response = c.acme.post(
        "/v1/ingest", content=line, headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 403


def check_triage(c: Clients) -> None:
    everything = {"since": "2000-01-01T00:00:00Z"}
    mine = c.acme.get("/v1/triage", params=everything).json()["findings"]
    truth = c.operator.get(
        "/v1/triage", params={**everything, "tenant": "acme"}
    ).json()["findings"]

    def what(findings: list[dict[str, object]]) -> list[tuple[object, ...]]:
        # The windows end "now", so their stamps differ between two requests.
        return [
            (f["kind"], f["tenant"], f["domain"], f["recipients"]) for f in findings
        ]

    assert mine and what(mine) == what(truth)
    assert {f["tenant"] for f in mine} <= {"acme", None}
    denied = c.acme.get("/v1/triage", params={"tenant": "globex"})
    assert denied.status_code == 403


def check_chat(c: Clients) -> None:
    # Without an LLM the answer is the deterministic findings, in the caller's
    # scope whatever the question names.
    answer = c.acme.post(
        "/v1/chat",
        json={"question": "Why does mail to globex bounce?", "stream": False},
    ).json()
    findings = (answer.get("findings") or {}).get("findings", [])
    assert {f["tenant"] for f in findings} <= {"acme", None}
    assert all("globex" not in str(call) for call in answer["tool_calls"])


def check_conversation(c: Clients) -> None:
    started = c.operator.post(
        "/v1/chat", json={"question": "How did globex do?", "stream": False}
    ).json()
    theirs = started["conversation_id"]
    assert c.operator.get(f"/v1/chat/{theirs}").status_code == 200
    assert c.acme.get(f"/v1/chat/{theirs}").status_code in (403, 404)
    mine = c.acme.post(
        "/v1/chat", json={"question": "How did we do?", "stream": False}
    ).json()["conversation_id"]
    assert c.acme.get(f"/v1/chat/{mine}").status_code == 200


CASES: dict[tuple[str, str], Callable[[Clients], None]] = {
    ("GET", "/v1/deliveries"): check_deliveries,
    ("GET", "/v1/messages/{queue_id}"): check_message_by_queue_id,
    ("GET", "/v1/messages"): check_message_by_message_id,
    ("GET", "/v1/stats/summary"): check_summary,
    ("GET", "/v1/stats/timeseries"): check_timeseries,
    ("GET", "/v1/rejects"): check_rejects,
    ("GET", "/v1/unparsed"): check_unparsed,
    ("POST", "/v1/ingest"): check_ingest,
    ("GET", "/v1/triage"): check_triage,
    ("POST", "/v1/chat"): check_chat,
    ("GET", "/v1/chat/{conversation_id}"): check_conversation,
}


def _v1_routes(served: Served) -> set[tuple[str, str]]:
    # The OpenAPI document lists every route the app serves (none is hidden).
    paths = served.app.openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/v1/")
        for method in operations
    }


def test_every_v1_route_has_an_isolation_case(served: Served) -> None:
    assert _v1_routes(served) == set(CASES)


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: f"{r[0]} {r[1]}")
def test_tenant_token_is_confined_to_its_tenant(
    clients: Clients, route: tuple[str, str]
) -> None:
    CASES[route](clients)
