"""``mailtriage parse``: what the parsers make of log lines, per line or as coverage.

``mailtriage parse FILE... [--format jsonl]`` prints one JSON object per input line:
``{"file", "line_no", "kind", "ts", "time", "host", "program", "pid", ...record
fields}`` (``kind`` is ``unparsed`` for lines no parser took, with ``reason``,
``shape`` and ``text``). ``mailtriage parse --coverage FILE... [--format text|json]``
prints, per program, how many lines were read and parsed, and the most common shapes of
what was not. ``-`` reads standard input; ``.gz``, ``.bz2`` and ``.xz`` files are
decompressed as they are read. Bytes that are not UTF-8 are replaced (U+FFFD).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Annotated, Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from mailtriage.errors import ConfigError, InputError
from mailtriage.parsers.line import LineParser, family_name
from mailtriage.parsers.records import Envelope, Record


def open_lines(name: str) -> Iterator[str]:
    """Lines of a file (or ``-``, standard input) as text, decompressing by suffix.

    Raises ``InputError`` naming the file when it cannot be opened or read.
    """
    try:
        if name == "-":
            yield from _text_lines(sys.stdin.buffer)
            return
        with _open_binary(name) as raw:
            yield from _text_lines(raw)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise InputError(f"cannot read {name}: {exc}") from exc


def _open_binary(name: str) -> IO[bytes]:
    suffix = Path(name).suffix
    if suffix == ".gz":
        return cast(IO[bytes], gzip.open(name, "rb"))
    if suffix == ".bz2":
        return cast(IO[bytes], bz2.open(name, "rb"))
    if suffix == ".xz":
        return cast(IO[bytes], lzma.open(name, "rb"))
    return open(name, "rb")


def _text_lines(raw: IO[bytes]) -> Iterator[str]:
    # Split on LF only: a stray CR inside a logged line does not end the line.
    with io.TextIOWrapper(
        raw, encoding="utf-8", errors="replace", newline="\n"
    ) as text:
        for line in text:
            yield line[:-1] if line[-1:] == "\n" else line


# ---------------------------------------------------------------------- jsonl


_FIELDS: dict[type, tuple[str, ...]] = {}


def record_fields(record: Record) -> dict[str, Any]:
    """A record as a flat dict: ``kind`` first, then its dataclass fields."""
    names = _FIELDS.get(type(record))
    if names is None:
        names = tuple(f.name for f in fields(record))
        _FIELDS[type(record)] = names
    row: dict[str, Any] = {"kind": record.kind}
    for name in names:
        row[name] = getattr(record, name)
    return row


def line_json(
    file: str, line_no: int, env: Envelope | None, record: Record
) -> dict[str, Any]:
    """The JSON object ``mailtriage parse`` prints for one line."""
    data = record_fields(record)
    row: dict[str, Any] = {"file": file, "line_no": line_no, "kind": data.pop("kind")}
    if env is not None:
        row["ts"] = env.ts
        row["time"] = datetime.fromtimestamp(env.ts, UTC).isoformat()
        row["host"] = env.host
        row["program"] = env.program
        row["pid"] = env.pid
    row.update(data)
    return row


# ---------------------------------------------------------------------- coverage


@dataclass(slots=True)
class ProgramCoverage:
    """Lines of one program: how many were read and how many a parser took."""

    program: str
    family: str
    lines: int = 0
    parsed: int = 0

    @property
    def unparsed(self) -> int:
        return self.lines - self.parsed

    @property
    def percent(self) -> float:
        return round(100.0 * self.parsed / self.lines, 2) if self.lines else 100.0


@dataclass(slots=True)
class ShapeCount:
    """One masked shape of unparsed lines, with its count and the first example."""

    program: str
    reason: str
    shape: str
    count: int
    example: str


@dataclass(slots=True)
class Coverage:
    """What the parsers made of a set of lines, per program and per family."""

    programs: dict[str, ProgramCoverage] = field(default_factory=dict)
    shapes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def add(self, env: Envelope | None, record: Record, raw: str) -> None:
        """Count one parsed line."""
        program = "(no envelope)" if env is None else env.program
        entry = self.programs.get(program)
        if entry is None:
            family = "none" if env is None else family_name(program)
            entry = self.programs[program] = ProgramCoverage(program, family)
        entry.lines += 1
        if record.kind != "unparsed":
            entry.parsed += 1
            return
        reason = getattr(record, "reason", "")
        shape = getattr(record, "shape", "") or f"(lines of {program or '?'})"
        key = (program, reason, shape)
        self.shapes[key] += 1
        self.examples.setdefault(key, raw)

    def families(self) -> dict[str, ProgramCoverage]:
        """Totals per family (postfix, dovecot, other, none) and overall (all)."""
        totals: dict[str, ProgramCoverage] = {"all": ProgramCoverage("all", "all")}
        for entry in self.programs.values():
            for name in (entry.family, "all"):
                total = totals.setdefault(name, ProgramCoverage(name, name))
                total.lines += entry.lines
                total.parsed += entry.parsed
        return totals

    def top_shapes(self, limit: int) -> list[ShapeCount]:
        """The most common unparsed shapes, each with one example line."""
        top = []
        for key, count in self.shapes.most_common(limit):
            program, reason, shape = key
            top.append(ShapeCount(program, reason, shape, count, self.examples[key]))
        return top


def measure(lines: Iterable[str], parser: LineParser) -> Coverage:
    """Parse every line and count the result."""
    coverage = Coverage()
    for raw in lines:
        env, record = parser.parse(raw)
        coverage.add(env, record, raw)
    return coverage


def coverage_json(coverage: Coverage, top: int) -> dict[str, Any]:
    """The coverage as the JSON document ``--coverage --format json`` prints."""

    def counts(entry: ProgramCoverage) -> dict[str, Any]:
        return {
            "program": entry.program,
            "family": entry.family,
            "lines": entry.lines,
            "parsed": entry.parsed,
            "unparsed": entry.unparsed,
            "percent": entry.percent,
        }

    programs = sorted(coverage.programs.values(), key=lambda e: (-e.lines, e.program))
    return {
        "families": {name: counts(e) for name, e in coverage.families().items()},
        "programs": [counts(e) for e in programs],
        "unparsed_shapes": [
            {
                "program": s.program,
                "reason": s.reason,
                "shape": s.shape,
                "count": s.count,
                "example": s.example,
            }
            for s in coverage.top_shapes(top)
        ],
    }


def _counts(entry: ProgramCoverage) -> str:
    return f"{entry.family:<8} {entry.lines:>9} {entry.parsed:>9} {entry.percent:>7.2f}"


def coverage_text(coverage: Coverage, top: int) -> str:
    """The coverage as aligned text for a terminal."""
    header = f"{'family':<8} {'lines':>9} {'parsed':>9} {'%':>7}"
    out = [f"{'program':<32} {header}"]
    programs = sorted(coverage.programs.values(), key=lambda e: (-e.lines, e.program))
    for entry in programs:
        out.append(f"{entry.program or '(dovecot log file)':<32.32} {_counts(entry)}")
    out.append("")
    out.append(f"{'by family':<32} {header}")
    for name, entry in sorted(coverage.families().items()):
        out.append(f"{name:<32} {_counts(entry)}")
    out.append("")
    out.append(f"top unparsed shapes ({len(coverage.shapes)} distinct)")
    for shape in coverage.top_shapes(top):
        out.append(f"{shape.count:>9}  {shape.program or '-'} [{shape.reason}]")
        out.append(f"           shape:   {shape.shape}")
        out.append(f"           example: {shape.example[:300]}")
    return "\n".join(out)


# ---------------------------------------------------------------------- command


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name)") from exc


def _run(
    files: list[str], coverage: bool, fmt: str, tz: str, year: int | None, top: int
) -> None:
    zone = _zone(tz)
    if coverage:
        if fmt not in ("text", "json"):
            raise ConfigError("--coverage prints --format text or json")
        total = Coverage()
        for name in files:
            parser = LineParser(tz=zone, year=year)
            for raw in open_lines(name):
                env, record = parser.parse(raw)
                total.add(env, record, raw)
        if fmt == "json":
            typer.echo(json.dumps(coverage_json(total, top), indent=2))
        else:
            typer.echo(coverage_text(total, top))
        return
    if fmt != "jsonl":
        raise ConfigError("parse prints --format jsonl (or use --coverage)")
    write = sys.stdout.write
    for name in files:
        parser = LineParser(tz=zone, year=year)
        for line_no, raw in enumerate(open_lines(name), start=1):
            env, record = parser.parse(raw)
            write(json.dumps(line_json(name, line_no, env, record)) + "\n")


def register(app: typer.Typer) -> None:
    """Add ``mailtriage parse`` to the CLI."""

    @app.command("parse")
    def parse(
        files: Annotated[list[str], typer.Argument(help="Log files; - for stdin.")],
        coverage: Annotated[
            bool, typer.Option("--coverage", help="Coverage by program instead.")
        ] = False,
        fmt: Annotated[
            str | None,
            typer.Option("--format", help="jsonl; with --coverage: text or json."),
        ] = None,
        tz: Annotated[
            str, typer.Option("--tz", help="Zone of stamps without one.")
        ] = "UTC",
        year: Annotated[
            int | None, typer.Option("--year", help="Year of stamps without one.")
        ] = None,
        top: Annotated[
            int, typer.Option("--top", help="How many unparsed shapes to list.")
        ] = 20,
    ) -> None:
        """Show what the parsers make of log lines."""
        chosen = fmt or ("text" if coverage else "jsonl")
        try:
            _run(files, coverage, chosen, tz, year, top)
        except BrokenPipeError:  # the reader went away (| head): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (InputError, ConfigError) as exc:
            typer.echo(f"mailtriage parse: {exc}", err=True)
            raise typer.Exit(code=2) from exc
