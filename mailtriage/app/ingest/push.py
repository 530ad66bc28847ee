"""Lines pushed over HTTP (``POST /v1/ingest``) by a collector such as Vector or
Fluent Bit.

Two bodies are understood:

- ``text/plain``: one raw log line per line;
- ``application/x-ndjson``: one JSON object per line, in one of these forms:
    - raw: ``{"line": "Dec  3 16:00:56 mx1 postfix/smtpd[6079]: ...", "host": "mx1"}``
      (``message`` and ``log`` are taken as ``line`` too: they are the field names
      Vector and Fluent Bit give a raw line by default);
    - fields: ``{"program": "postfix/smtpd", "message": "...", "host": "mx1",
      "ts": "2026-12-03T16:00:56Z", "pid": 6079}`` (a collector that parsed the
      syslog frame itself), rebuilt into an RFC 3339 line;
    - record: ``{"record": {...}}``, already parsed and assembled rows from a
      per-host collector. This form goes to a ``RecordSink`` (the extension point
      for issue 7's collector); a server without one refuses it with 400.

The host comes from each object, else from ``?host=``; it names the sending host of
lines whose own frame carries none. Accepted lines are in the bounded ingest queue
before the answer is sent; a full queue is a ``BusyError`` (429 with Retry-After).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from mailtriage.app.ingest.live import Chunk, IngestQueue
from mailtriage.errors import BusyError, QueryError

PUSH_SOURCE = "push"
MAX_BODY_BYTES = 16 * 1024 * 1024
RAW_FIELDS = ("line", "message", "log")


class RecordSink(Protocol):
    """Where the record form goes (the per-host collector of issue 7)."""

    def accept_records(self, records: Sequence[dict[str, Any]]) -> int: ...


@dataclass(slots=True)
class PushBody:
    """A parsed push: runs of lines sharing a host, in order, and records."""

    runs: list[tuple[str | None, list[str]]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def line_count(self) -> int:
        """How many lines the body holds."""
        return sum(len(lines) for _, lines in self.runs)

    def add_line(self, line: str, host: str | None) -> None:
        """Append a line, starting a new run when the host changes."""
        if self.runs and self.runs[-1][0] == host:
            self.runs[-1][1].append(line)
        else:
            self.runs.append((host, [line]))


def parse_text(body: bytes, host: str | None) -> PushBody:
    """A plain-text body: every non-empty line is a log line."""
    parsed = PushBody()
    for line in _text_lines(body):
        parsed.add_line(line, host)
    return parsed


def parse_ndjson(body: bytes, host: str | None) -> PushBody:
    """An NDJSON body; QueryError names the first bad line by its number."""
    parsed = PushBody()
    for number, text in enumerate(_text_lines(body), start=1):
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _bad_line(number, f"not JSON ({exc.msg})") from exc
        if not isinstance(item, dict):
            raise _bad_line(number, "not a JSON object")
        _add_item(parsed, item, host, number)
    return parsed


def _add_item(
    parsed: PushBody, item: dict[str, Any], host: str | None, number: int
) -> None:
    item_host = _optional_str(item, "host", number) or host
    if "record" in item:
        if not isinstance(item["record"], dict):
            raise _bad_line(number, "'record' must be an object")
        parsed.records.append(item["record"])
    elif "program" in item:
        parsed.add_line(_fields_line(item, item_host, number), item_host)
    else:
        parsed.add_line(_raw_line(item, number), item_host)


def _raw_line(item: dict[str, Any], number: int) -> str:
    for name in RAW_FIELDS:
        value = _optional_str(item, name, number)
        if value is not None:
            return value.rstrip("\r\n")
    raise _bad_line(number, "give 'line' (or 'message'/'log'), or 'record'")


def _fields_line(item: dict[str, Any], host: str | None, number: int) -> str:
    program = _optional_str(item, "program", number)
    message = _optional_str(item, "message", number)
    if not program or message is None:
        raise _bad_line(number, "the fields form needs 'program' and 'message'")
    pid = item.get("pid")
    tag = f"{program}[{pid}]" if isinstance(pid, int | str) and pid != "" else program
    stamp = _stamp(item.get("ts"), number)
    return f"{stamp} {host or '-'} {tag}: {message}"


def _stamp(value: object, number: int) -> str:
    if value is None:
        value = time.time()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 <= value < 32_503_680_000:
            raise _bad_line(number, "'ts' is out of range")
        instant = datetime.fromtimestamp(value, UTC)
        return instant.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, str) and "T" in value:
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise _bad_line(number, "'ts' is not an RFC 3339 time") from exc
        return value
    raise _bad_line(number, "'ts' must be epoch seconds or an RFC 3339 string")


def _optional_str(item: dict[str, Any], name: str, number: int) -> str | None:
    value = item.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _bad_line(number, f"'{name}' must be a string")


def _text_lines(body: bytes) -> Iterator[str]:
    text = body.decode("utf-8", errors="replace")
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if line.strip():
            yield line


def _bad_line(number: int, what: str) -> QueryError:
    return QueryError(f"body line {number}: {what}", parameter="body")


@dataclass(slots=True)
class PushResult:
    """What one push handed on."""

    lines: int
    records: int


class PushIntake:
    """Hands parsed pushes to the ingest queue, all or nothing."""

    def __init__(
        self,
        queue: IngestQueue,
        *,
        records: RecordSink | None = None,
        retry_after_seconds: int = 1,
    ) -> None:
        self.queue = queue
        self.records = records
        self.retry_after_seconds = retry_after_seconds

    def accept(
        self, body: PushBody, on_commit: Callable[[], None] | None = None
    ) -> PushResult:
        """Queue every line of ``body``; BusyError when the queue has no room.

        ``on_commit`` (optional) is called once all of this push's lines are
        committed to the store.
        """
        if body.records and self.records is None:
            raise QueryError(
                "this server does not take the record form; send lines instead",
                parameter="body",
            )
        chunks = [
            Chunk(PUSH_SOURCE, lines, host=host, label=PUSH_SOURCE)
            for host, lines in body.runs
        ]
        if chunks:
            chunks[-1].on_commit = on_commit
        if not self.queue.offer_all(chunks):
            raise BusyError(
                f"ingest queue is full ({self.queue.pending_lines} lines waiting); "
                "retry later",
                retry_after_seconds=self.retry_after_seconds,
            )
        records = self.records.accept_records(body.records) if self.records else 0
        return PushResult(lines=body.line_count, records=records)
