"""``mailtriage parse``: one JSON object per line, and coverage by program."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mailtriage.app.commands import parse

LOG = (
    "Dec  3 16:00:56 mx1 postfix/smtpd[6079]: connect from mx.example.net[192.0.2.1]\n"
    "Dec  3 16:00:58 mx1 postfix/qmgr[6081]: 4B1E3A1F2: removed\n"
    "Dec 03 17:00:12 lmtp(alice@acme.example)<15122><+mRAJxygEWsSOwAAg+zDdQ>: Info: "
    "msgid=<m1@y.example>: saved mail to INBOX\n"
    "Dec  3 16:01:00 mx1 amavis[2279]: (02279-04) Passed CLEAN\n"
    "not a log line at all\n"
)


def cli() -> typer.Typer:
    """An app with only ``parse`` registered, the way cli.py registers it."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """mailtriage"""

    parse.register(app)
    return app


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli(), ["parse", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "mail.log"
    path.write_text(LOG, encoding="utf-8")
    return path


def test_jsonl_has_one_object_per_line_with_envelope_and_record(log: Path) -> None:
    code, out, _ = run(str(log))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [row["line_no"] for row in rows] == [1, 2, 3, 4, 5]
    assert {"kind": "qmgr_removed", "queue_id": "4B1E3A1F2"}.items() <= rows[1].items()
    assert rows[1]["program"] == "postfix/qmgr" and rows[1]["pid"] == 6081
    assert rows[2]["kind"] == "dovecot_delivery"
    assert rows[2]["session"] == "+mRAJxygEWsSOwAAg+zDdQ"
    assert {"kind": "unparsed", "reason": "program"}.items() <= rows[3].items()
    assert rows[4]["reason"] == "envelope" and "ts" not in rows[4]


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)],
)
def test_compressed_files_read_like_plain_ones(
    log: Path, tmp_path: Path, suffix: str, compress: Callable[[bytes], bytes]
) -> None:
    packed = tmp_path / f"mail.log{suffix}"
    packed.write_bytes(compress(LOG.encode()))
    plain = [json.loads(line) for line in run(str(log))[1].splitlines()]
    unpacked = [json.loads(line) for line in run(str(packed))[1].splitlines()]
    assert [row | {"file": ""} for row in unpacked] == [
        row | {"file": ""} for row in plain
    ]


def test_dash_reads_standard_input() -> None:
    code, out, _ = run("-", stdin=LOG.encode())
    assert code == 0
    assert len(out.splitlines()) == 5


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(
        b"Dec  3 16:00:56 mx1 postfix/smtpd[1]: connect from \xff\xfe[192.0.2.1]\n"
    )
    code, out, _ = run(str(path))
    assert code == 0
    assert "\ufffd" in json.loads(out)["client_host"]


def test_coverage_counts_lines_by_program_and_family(log: Path) -> None:
    code, out, _ = run("--coverage", "--format", "json", str(log))
    report = json.loads(out)
    assert code == 0
    assert report["families"]["all"]["lines"] == 5
    assert (
        report["families"]["postfix"] | {"lines": 2, "parsed": 2}
        == report["families"]["postfix"]
    )
    assert report["families"]["dovecot"]["parsed"] == 1
    programs = {p["program"]: p for p in report["programs"]}
    assert programs["amavis"]["unparsed"] == 1
    shapes = {(s["program"], s["reason"]) for s in report["unparsed_shapes"]}
    assert shapes == {("amavis", "program"), ("(no envelope)", "envelope")}


def test_coverage_text_lists_programs_and_top_shapes(log: Path) -> None:
    code, out, _ = run("--coverage", str(log))
    assert code == 0
    assert "postfix/qmgr" in out
    assert "top unparsed shapes (2 distinct)" in out
    assert "example: not a log line at all" in out


def test_unreadable_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.log"
    code, _, err = run(str(missing))
    assert code == 2
    assert str(missing) in err


def test_unknown_zone_exits_2(log: Path) -> None:
    code, _, err = run("--tz", "Mars/Olympus", str(log))
    assert code == 2
    assert "Mars/Olympus" in err
