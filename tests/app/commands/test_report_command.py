"""``mailtriage report``: its JSON contract, its text, and its numbers against the
generator's truth and pflogsumm's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mailtriage.app.report import COUNTING_RULES

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "tests" / "app" / "sample_mail.log"
TENANTS = REPO / "tests" / "app" / "sample_tenants.toml"
MAILTRIAGE = str(Path(sys.executable).parent / "mailtriage")
FIVE = ("delivered", "bounced", "expired", "deferred", "deferral_attempts")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAILTRIAGE, *args], capture_output=True, text=True, timeout=120, env=os.environ
    )


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("report") / "sample.duckdb"
    done = run(
        "ingest",
        "--db",
        str(db),
        "--config",
        str(TENANTS),
        "--year",
        "2026",
        str(SAMPLE),
    )
    assert done.returncode == 0, done.stderr
    return db


def report(db: Path, *args: str) -> dict[str, Any]:
    result = run("report", "--db", str(db), "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_json_report_follows_the_contract(sample_db: Path) -> None:
    data = report(sample_db)
    assert data["counting_rules"] == COUNTING_RULES
    totals = data["totals"]
    assert {name: totals[name] for name in FIVE} == {
        "delivered": 5,
        "bounced": 1,
        "expired": 0,
        "deferred": 1,
        "deferral_attempts": 3,
    }
    assert (totals["received"], totals["rejected"]) == (3, 2)
    assert (totals["held"], totals["discarded"]) == (0, 0)
    assert totals["bytes_received"] == 8048
    for stage in (
        "total",
        "before_queue_manager",
        "queue_manager",
        "connection_setup",
        "transmission",
    ):
        assert set(data["delays"][stage]) == {"count", "p50", "p95", "p99"}
    acme = next(e for e in data["by_tenant"] if e["tenant"] == "acme")
    assert {name: acme[name] for name in FIVE} == {
        "delivered": 2,
        "bounced": 1,
        "expired": 0,
        "deferred": 1,
        "deferral_attempts": 3,
    }
    assert "p95" in acme["delays"]["total"]
    domains = {e["domain"]: e for e in data["by_domain"]}
    assert domains["far.example"]["delivered"] == 2
    assert {t["transport"] for t in data["by_transport"]} == {"lmtp", "smtp"}
    assert data["causes"][0]["example"]
    assert {r["cause"] for r in data["reject_reasons"]} == {
        "unknown_recipient",
        "relay_denied",
    }
    assert {e["category"] for e in data["events"]} >= {"warning", "panic"}
    assert data["unparsed"]["unparsed"] == 2
    assert data["top_senders"] and data["top_recipients"]


def test_report_of_one_tenant(sample_db: Path) -> None:
    data = report(sample_db, "--tenant", "globex")
    assert data["window"]["tenant"] == "globex"
    assert data["totals"]["delivered"] == 2
    assert [e["tenant"] for e in data["by_tenant"]] == ["globex"]


def test_report_window_accepts_rfc3339_and_relative_times(sample_db: Path) -> None:
    data = report(
        sample_db,
        "--since",
        "2026-12-03T16:05:00Z",
        "--until",
        "2026-12-03T18:00:00+01:00",
    )
    assert data["window"]["since"] == "2026-12-03T16:05:00Z"
    assert data["totals"]["delivered"] == 2  # frank, then dan after greylisting
    assert report(sample_db, "--since", "-15m")["totals"]["delivered"] == 0


def test_bad_since_exits_2_naming_it(sample_db: Path) -> None:
    result = run("report", "--db", str(sample_db), "--since", "yesterday")
    assert result.returncode == 2
    assert "since 'yesterday'" in result.stderr


def test_missing_database_exits_2(tmp_path: Path) -> None:
    result = run("report", "--db", str(tmp_path / "none.duckdb"))
    assert result.returncode == 2
    assert "run mailtriage ingest first" in result.stderr
    assert not (tmp_path / "none.duckdb").exists()


def test_text_report_shows_every_section(sample_db: Path) -> None:
    result = run("report", "--db", str(sample_db))
    assert result.returncode == 0
    for heading in (
        "Totals",
        "Delays of final outcomes",
        "By tenant",
        "By recipient domain",
        "By transport",
        "Top senders",
        "Top recipients",
        "Causes of deferrals, bounces and expiries",
        "Reject reasons",
        "Warnings and panics",
        "Unparsed lines: 2 of 35",
        "Counting rules",
    ):
        assert heading in result.stdout
    assert "quota_exceeded" in result.stdout


# ---------------------------------------------------------- against the truth


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("generated")
    log = directory / "mail.log"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "generate.py"),
            str(log),
            "--lines",
            "30000",
            "--seed",
            "11",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    db = directory / "gen.duckdb"
    tenants = f"{log}.tenants.toml"
    done = run(
        "ingest", "--db", str(db), "--config", tenants, "--year", "2026", str(log)
    )
    assert done.returncode == 0, done.stderr
    return log, db


def test_report_matches_the_generators_truth(generated: tuple[Path, Path]) -> None:
    log, db = generated
    truth = json.loads(Path(f"{log}.truth.json").read_text())
    data = report(db, "--groups", "0")
    for name in FIVE:
        assert data["totals"][name] == truth["totals"][name], name
    assert data["totals"]["received"] == truth["totals"]["messages_received"]
    assert data["totals"]["bytes_received"] == truth["totals"]["bytes_received"]
    assert data["totals"]["rejected"] == truth["totals"]["rejects"]
    by_domain = {e["domain"]: e for e in data["by_domain"]}
    for entry in truth["by_domain"]:
        for name in FIVE:
            assert by_domain.get(entry["domain"], {}).get(name, 0) == entry[name]
    by_tenant = {e["tenant"]: e for e in data["by_tenant"]}
    for entry in truth["by_tenant"]:
        assert {n: by_tenant[entry["tenant"]][n] for n in FIVE} == {
            n: entry[n] for n in FIVE
        }


def pflogsumm_totals(log: Path) -> dict[str, int]:
    out = subprocess.run(
        ["pflogsumm", str(log)], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    totals = {}
    for name in ("received", "delivered", "deferred", "bounced", "rejected"):
        found = re.search(rf"^\s+(\d+)\s+{name}\b", out, re.MULTILINE)
        assert found, name
        totals[name] = int(found[1])
    deferrals = re.search(r"\((\d+)\s+deferrals\)", out)
    totals["deferrals"] = int(deferrals[1]) if deferrals else 0
    return totals


@pytest.mark.skipif(
    shutil.which("pflogsumm") is None, reason="Debian pflogsumm not installed"
)
def test_report_agrees_with_pflogsumm_where_the_rules_agree(
    generated: tuple[Path, Path],
) -> None:
    """pflogsumm counts ``status=sent``/``bounced`` lines, smtpd ``client=`` and
    pickup lines, and reject lines: the same events as our delivered, bounced,
    received and rejected when every recipient is delivered once. Its "deferred"
    is the number of distinct queue IDs with a deferral (keyed by queue ID alone,
    across hosts and reuse), ours the recipients still waiting; its "deferrals"
    are our deferral attempts. It has no expired count."""
    log, db = generated
    ours = report(db)["totals"]
    theirs = pflogsumm_totals(log)
    assert ours["received"] == theirs["received"]
    assert ours["delivered"] == theirs["delivered"]
    assert ours["bounced"] == theirs["bounced"]
    assert ours["rejected"] == theirs["rejected"]
    assert ours["deferral_attempts"] == theirs["deferrals"]
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(
            "SELECT count(DISTINCT queue_id) FROM attempts WHERE status = 'deferred'"
        ).fetchone()
    finally:
        con.close()
    assert row is not None and row[0] == theirs["deferred"]
