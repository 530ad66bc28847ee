"""Deterministic triage on the bundled sample logs, written by real Postfix and
Dovecot (samples/README.md states what was caused on purpose)."""

from __future__ import annotations

import pytest

from mailtriage.agents.findings import Finding, TriageReport
from mailtriage.agents.remediation import CAUSE_REMEDIATION, remediation_for
from mailtriage.agents.triage import analyze, render_text
from mailtriage.app.store.base import Scope, Store
from mailtriage.parsers.classify import CAUSES

CONTRACT_KEYS = {
    "kind",
    "tenant",
    "domain",
    "relay",
    "stage",
    "recipients",
    "share",
    "severity",
    "temporary",
    "first_seen",
    "last_seen",
    "baseline",
    "evidence",
    "explanation",
    "remediation",
}


@pytest.fixture(scope="module")
def report(store: Store) -> TriageReport:
    return analyze(store, Scope())


def _one(report: TriageReport, kind: str, domain: str) -> Finding:
    found = [f for f in report.findings if f.kind == kind and f.domain == domain]
    assert len(found) == 1, [(f.kind, f.domain) for f in report.findings]
    return found[0]


def test_json_has_exactly_the_contract_fields(report: TriageReport) -> None:
    data = report.model_dump(mode="json")

    assert set(data) == {"window", "findings"}
    assert data["findings"]
    for finding in data["findings"]:
        assert set(finding) == CONTRACT_KEYS


def test_window_without_times_is_the_last_hour_of_the_data(
    report: TriageReport,
) -> None:
    assert report.window.until == "2026-12-03T17:15:37Z"
    assert report.window.since == "2026-12-03T16:15:37Z"
    assert report.window.baseline_until == report.window.since


def test_quota_storm_is_the_top_finding_for_globex(store: Store) -> None:
    top = analyze(store, Scope(tenant="globex")).findings[0]

    assert (top.kind, top.domain, top.tenant) == (
        "quota_exceeded",
        "globex.example",
        "globex",
    )
    assert top.severity == "critical"
    assert top.temporary is False
    assert top.recipients == 9
    assert top.evidence and all("5.2.2" in (e.response or "") for e in top.evidence)
    assert "quota_warning" in top.remediation


def test_slow_lmtp_path_is_named_with_its_stage(report: TriageReport) -> None:
    slow = _one(report, "slow_delivery", "initech.example")

    assert slow.stage == "transmission"
    assert slow.recipients == 4 and slow.share == 1.0
    assert slow.tenant == "initech"
    assert "do not account for it" in slow.explanation
    assert all(e.dovecot_seconds is not None for e in slow.evidence)
    assert all((e.stage_seconds or 0) >= 3.9 for e in slow.evidence)
    assert "between Postfix and Dovecot" in slow.remediation


def test_lone_greylisting_delivered_on_retry_is_noise(report: TriageReport) -> None:
    grey = _one(report, "greylisting", "vendor.example")

    assert grey.severity == "noise"
    assert grey.temporary is True
    assert grey not in report.incidents()


def test_throttling_across_tenants_is_one_finding_for_the_provider(
    report: TriageReport,
) -> None:
    throttled = _one(report, "remote_throttling", "bigmail.example")

    assert throttled.tenant is None
    assert throttled.recipients == 6
    assert throttled.relay == "127.0.2.1"
    assert "globex 4, acme 2" in throttled.explanation
    assert "_destination_rate_delay" in throttled.remediation


def test_retried_deliveries_are_not_reported_as_slow(report: TriageReport) -> None:
    slow_domains = {f.domain for f in report.findings if f.kind == "slow_delivery"}

    assert slow_domains == {"initech.example"}


def test_unreachable_mda_names_the_host_and_folds_the_expiry(
    report: TriageReport,
) -> None:
    down = _one(report, "connection_refused", "globex.example")

    assert down.relay == "127.0.0.1"
    assert down.severity == "warning"  # one recipient of thirteen
    assert "1 expired" in down.explanation
    assert not [f for f in report.findings if f.kind == "expired"]


def test_findings_are_ranked_by_severity(report: TriageReport) -> None:
    order = ["critical", "warning", "info", "noise"]
    ranks = [order.index(f.severity) for f in report.findings]

    assert ranks == sorted(ranks)


def test_baseline_trend_compares_the_window_with_the_one_before(store: Store) -> None:
    # The second half of the samples against the first half: three of the four
    # slow initech deliveries were in the first half.
    half = analyze(store, Scope(since=1796318115.0, until=1796318138.0))
    slow = _one(half, "slow_delivery", "initech.example")

    assert slow.recipients == 1
    assert slow.severity == "noise"
    assert slow.baseline.recipients == 3
    assert slow.baseline.trend == "falling"


def test_tenant_scope_sees_only_its_tenant(store: Store) -> None:
    confined = analyze(store.confined("initech"), Scope())

    assert {f.tenant for f in confined.findings} == {"initech"}
    assert confined.window.tenant == "initech"


def test_empty_window_has_no_findings(store: Store) -> None:
    empty = analyze(store, Scope(since=1700000000.0, until=1700003600.0))

    assert empty.findings == []
    assert "No findings" in render_text(empty)


def test_text_report_lists_evidence_and_fix(report: TriageReport) -> None:
    text = render_text(report)

    assert text.startswith("mailtriage triage")
    assert "CRITICAL quota_exceeded" in text
    assert "5EEB320C4F7" in text
    assert text.count("fix: ") == len(report.findings)


def test_every_cause_has_a_remediation() -> None:
    assert set(CAUSE_REMEDIATION) == set(CAUSES)
    for cause in CAUSES:
        text = remediation_for(cause, domain="x.example", relay="mx.x.example")
        assert "{" + "domain}" not in text and "{relay}" not in text
