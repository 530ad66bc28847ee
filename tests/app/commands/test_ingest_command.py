"""``mailtriage ingest`` as a user runs it: a real process, real files."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "tests" / "app" / "sample_mail.log"
TENANTS = REPO / "tests" / "app" / "sample_tenants.toml"
MAILTRIAGE = str(Path(sys.executable).parent / "mailtriage")


def run(
    *args: str, stdin: bytes | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAILTRIAGE, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def attempts(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM attempts").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def test_ingest_prints_one_summary_line_and_reads_a_file_once(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    args = ("ingest", "--db", str(db), "--config", str(TENANTS), "--year", "2026")
    first = run(*args, str(SAMPLE))
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("\n") == 1
    assert first.stdout.startswith("ingested 35 lines from 1 input(s) (1 read)")
    again = run(*args, str(SAMPLE))
    assert "ingested 0 lines" in again.stdout and "1 skipped" in again.stdout
    assert attempts(db) == 9


def test_unreadable_input_exits_2_and_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    missing = tmp_path / "nope.log"
    result = run("ingest", "--db", str(db), str(SAMPLE), str(missing))
    assert result.returncode == 2
    assert f"cannot read {missing}: no such file or directory" in result.stderr
    assert result.stdout == ""
    assert attempts(db) == 0


def test_standard_input_is_read_once(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    data = SAMPLE.read_bytes()
    first = run("ingest", "--db", str(db), "--year", "2026", "-", stdin=data)
    assert "ingested 35 lines" in first.stdout, first.stderr
    again = run("ingest", "--db", str(db), "--year", "2026", "-", stdin=data)
    assert "ingested 0 lines" in again.stdout
    assert attempts(db) == 9


def test_mailtriage_db_names_the_database(tmp_path: Path) -> None:
    db = tmp_path / "env.duckdb"
    result = run("ingest", str(SAMPLE), MAILTRIAGE_DB=str(db))
    assert result.returncode == 0, result.stderr
    assert str(db) in result.stdout
    assert attempts(db) == 9


def test_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    result = run(
        "ingest",
        "--db",
        str(tmp_path / "m.duckdb"),
        "--tz",
        "Mars/Olympus",
        str(SAMPLE),
    )
    assert result.returncode == 2
    assert "'Mars/Olympus' is not a known time zone" in result.stderr


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    # A larger input so that the bar is drawn at least once before it ends.
    log = tmp_path / "big.log"
    log.write_bytes(SAMPLE.read_bytes() * 2000)
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [MAILTRIAGE, "ingest", "--db", str(tmp_path / "m.duckdb"), str(log)],
            stdout=subprocess.PIPE,
            stderr=terminal,
            env={**os.environ, "COLUMNS": "160"},
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            drawn += chunk
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(controller)
    assert proc.returncode == 0
    assert b"lines/s" in drawn
    assert out.decode().startswith("ingested 70,000 lines")
