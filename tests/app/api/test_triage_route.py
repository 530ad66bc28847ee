"""``GET /v1/triage`` over HTTP on the sample logs."""

from __future__ import annotations

from api_served import OPERATOR, Served


def test_triage_ranks_findings_of_the_last_hour_of_data(served: Served) -> None:
    with served.client(OPERATOR) as client:
        response = client.get("/v1/triage")
    report = response.json()

    assert response.status_code == 200
    assert report["window"]["until"] == "2026-12-03T17:15:37Z"
    top = report["findings"][0]
    assert (top["kind"], top["domain"], top["severity"]) == (
        "quota_exceeded",
        "globex.example",
        "critical",
    )


def test_triage_filters_by_domain_and_window(served: Served) -> None:
    params = {
        "domain": "initech.example",
        "since": "2026-12-03T17:14:00Z",
        "until": "2026-12-03T17:16:00Z",
    }
    with served.client(OPERATOR) as client:
        report = client.get("/v1/triage", params=params).json()

    assert report["window"]["baseline_since"] == "2026-12-03T17:12:00Z"
    assert [(f["kind"], f["stage"]) for f in report["findings"]] == [
        ("slow_delivery", "transmission")
    ]


def test_triage_names_a_bad_time(served: Served) -> None:
    with served.client(OPERATOR) as client:
        response = client.get("/v1/triage", params={"since": "at ten"})

    assert response.status_code == 400
    assert response.json()["parameter"] == "since"
