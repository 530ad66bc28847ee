"""``mailtriage triage``: the findings as text and as the JSON contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mailtriage.app.commands import triage
from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store import open_store

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("triage-cli") / "samples.duckdb"
    settings = load_settings(SAMPLES / "tenants.toml", {"store": {"db": str(path)}})
    with open_store(settings) as store:
        ingest_files(
            store,
            settings,
            [str(SAMPLES / "postfix.log"), str(SAMPLES / "dovecot.log")],
        )
    return path


def run(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """mailtriage"""

    triage.register(app)
    result = CliRunner().invoke(app, ["triage", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_output_is_the_contract(db: Path) -> None:
    code, out, _ = run("--db", str(db), "--format", "json", "--tenant", "initech")
    report = json.loads(out)

    assert code == 0
    assert report["window"]["tenant"] == "initech"
    (finding,) = report["findings"]
    assert (finding["kind"], finding["stage"], finding["relay"]) == (
        "slow_delivery",
        "transmission",
        "127.0.0.1",
    )


def test_text_output_ranks_and_explains(db: Path) -> None:
    code, out, _ = run("--db", str(db), "--domain", "globex.example")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "mailtriage triage domain globex.example"
    assert " 1. CRITICAL quota_exceeded  globex globex.example via 127.0.0.1" in out
    assert "fix: Mailboxes are full." in out


def test_a_lower_slow_threshold_finds_more(db: Path) -> None:
    _, strict, _ = run("--db", str(db), "--format", "json", "--slow", "10")
    _, loose, _ = run("--db", str(db), "--format", "json")

    def slow(text: str) -> int:
        return sum(f["kind"] == "slow_delivery" for f in json.loads(text)["findings"])

    assert (slow(strict), slow(loose)) == (0, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "at noon"), "since 'at noon' is neither"),
        (("--format", "yaml"), "--format 'yaml' is not text or json"),
    ],
)
def test_bad_options_exit_2_with_the_reason(
    db: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, err = run("--db", str(db), *args)

    assert code == 2
    assert message in err


def test_a_missing_database_is_named(tmp_path: Path) -> None:
    code, _, err = run("--db", str(tmp_path / "none.duckdb"))

    assert code == 2
    assert "run mailtriage ingest first" in err
