"""Bodies of ``POST /v1/ingest``: text and NDJSON forms, hosts, the bounded queue."""

from __future__ import annotations

import json

import pytest

from mailtriage.app.ingest.live import IngestQueue
from mailtriage.app.ingest.push import PushIntake, parse_ndjson, parse_text
from mailtriage.errors import BusyError, QueryError

LINE = "Dec  3 16:00:56 mx1 postfix/qmgr[1]: ABC: removed"
DOVECOT = (
    "Dec 03 16:01:03 lmtp(a@acme.example)<6122><rdBDBT>: Info: saved mail to INBOX"
)


def _ndjson(*items: object) -> bytes:
    return "\n".join(json.dumps(item) for item in items).encode()


def test_text_body_keeps_lines_in_order_and_skips_blank_ones() -> None:
    body = parse_text(f"{LINE}\r\n\n{DOVECOT}\n  \n".encode(), "mda1")
    assert body.runs == [("mda1", [LINE, DOVECOT])]
    assert body.line_count == 2


def test_ndjson_takes_the_host_of_each_record_over_the_request() -> None:
    body = parse_ndjson(
        _ndjson(
            {"line": LINE},
            {"line": DOVECOT, "host": "mda1"},
            {"message": LINE, "host": "mda1"},
            {"log": LINE},
        ),
        "mx1",
    )
    assert body.runs == [("mx1", [LINE]), ("mda1", [DOVECOT, LINE]), ("mx1", [LINE])]


def test_ndjson_fields_form_becomes_an_rfc3339_line() -> None:
    body = parse_ndjson(
        _ndjson(
            {
                "program": "postfix/qmgr",
                "pid": 12,
                "message": "ABC: removed",
                "host": "mx9",
                "ts": 1_796_313_656.5,
            },
            {"program": "dovecot", "message": "x", "ts": "2026-12-03T16:00:56+01:00"},
        ),
        None,
    )
    assert body.runs == [
        ("mx9", ["2026-12-03T16:00:56.500000Z mx9 postfix/qmgr[12]: ABC: removed"]),
        (None, ["2026-12-03T16:00:56+01:00 - dovecot: x"]),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"line": "a"}\nnot json', "body line 2: not JSON"),
        (b"[1, 2]", "body line 1: not a JSON object"),
        (b'{"host": "mx1"}', "body line 1: give 'line'"),
        (b'{"line": 5}', "body line 1: 'line' must be a string"),
        (b'{"line": "a", "host": 1}', "'host' must be a string"),
        (b'{"program": "p"}', "needs 'program' and 'message'"),
        (
            b'{"program": "p", "message": "m", "ts": "2026-13-45T99:00"}',
            "not an RFC 3339",
        ),
        (b'{"program": "p", "message": "m", "ts": 1e300}', "'ts' is out of range"),
        (b'{"program": "p", "message": "m", "ts": true}', "'ts' must be epoch"),
        (b'{"record": 3}', "'record' must be an object"),
    ],
)
def test_bad_ndjson_names_the_line_and_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(QueryError, match=message) as caught:
        parse_ndjson(body, None)
    assert caught.value.parameter == "body"


def test_intake_queues_all_runs_or_none() -> None:
    queue = IngestQueue(max_lines=3)
    intake = PushIntake(queue, retry_after_seconds=7)
    first = intake.accept(parse_text(f"{LINE}\n{LINE}\n".encode(), "mx1"))
    assert (first.lines, first.records) == (2, 0)
    with pytest.raises(BusyError) as caught:
        intake.accept(parse_text(f"{LINE}\n{LINE}\n".encode(), "mx1"))
    assert caught.value.retry_after_seconds == 7
    assert queue.pending_lines == 2


def test_intake_refuses_the_record_form_without_a_record_sink() -> None:
    queue = IngestQueue(max_lines=10)
    body = parse_ndjson(_ndjson({"line": LINE}, {"record": {"kind": "attempt"}}), None)
    with pytest.raises(QueryError, match="record form"):
        PushIntake(queue).accept(body)
    assert queue.pending_lines == 0


def test_intake_hands_records_to_the_record_sink() -> None:
    class Collected:
        def __init__(self) -> None:
            self.records: list[dict[str, object]] = []

        def accept_records(self, records: list[dict[str, object]]) -> int:
            self.records += records
            return len(records)

    sink = Collected()
    body = parse_ndjson(_ndjson({"record": {"kind": "attempt", "n": 1}}), None)
    result = PushIntake(IngestQueue(10), records=sink).accept(body)
    assert result.records == 1
    assert sink.records == [{"kind": "attempt", "n": 1}]
