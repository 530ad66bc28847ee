"""The Prometheus alert rules: promtool's checks and unit tests, and their text."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dashboard_queries import DASHBOARDS, RULES, rules

TESTS = sorted((DASHBOARDS / "alerts" / "tests").glob("*.yml"))
ALERTS = [rule for rule in rules() if "alert" in rule]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found: install Debian's prometheus (scripts/setup.sh)"
        )
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.prometheus
def test_promtool_check_rules_passes() -> None:
    result = run("check", "rules", RULES)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


@pytest.mark.prometheus
def test_promtool_rule_unit_tests_pass() -> None:
    result = run("test", "rules", *TESTS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.prometheus
def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    # A test that expects silence where the rule fires must fail: the unit tests
    # above are not passing vacuously.
    (tmp_path / "rules.yml").write_text(RULES.read_text())
    (tmp_path / "wrong_test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yml"],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [
                            {
                                "series": "mailtriage_ingest_lag_seconds",
                                "values": "600x30",
                            }
                        ],
                        "alert_rule_test": [
                            {
                                "eval_time": "25m",
                                "alertname": "MailtriageIngestLagging",
                                "exp_alerts": [],
                            }
                        ],
                    }
                ],
            }
        )
    )

    result = run("test", "rules", tmp_path / "wrong_test.yml")

    assert result.returncode != 0
    assert "MailtriageIngestLagging" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {rule["alert"] for rule in ALERTS}

    assert names - firing == set()
    assert names - silent == set()


@pytest.mark.parametrize("rule", ALERTS, ids=lambda rule: rule["alert"])
def test_alert_says_what_to_look_at(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    description = annotations["description"]

    assert annotations["summary"]
    assert "/v1/" in description or "/readyz" in description
    assert rule["labels"]["severity"] in {"info", "warning", "critical"}  # type: ignore[index]


def test_the_issue_alerts_are_all_there() -> None:
    names = {rule["alert"] for rule in ALERTS}

    assert {
        "MailtriageLmtpFailureRatioHigh",
        "MailtriageDomainDeferralSpike",
        "MailtriageQuotaFailuresRising",
        "MailtriageStageDelayHigh",
        "MailtriageIngestStalled",
        "MailtriageIngestLagging",
        "MailtriageUnparsedShareRising",
    } <= names
