"""``mailtriage ingest``: log files into the store, resumable and idempotent.

``mailtriage ingest [--db PATH] [--config FILE] [--year N] [--tz ZONE] [--workers N]
FILE...`` reads plain, ``.gz``, ``.bz2`` and ``.xz`` files and ``-`` (standard
input) in time order, each from its checkpoint, and commits rows and checkpoints
together (``mailtriage.app.ingest.pipeline``). On a terminal a progress bar shows
bytes, lines per second and the time left; otherwise one summary line is printed.
Exit status 0; 2 when an input cannot be read or a setting is wrong (nothing is
written for unreadable inputs: they are all checked first); 1 when the store fails.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from loguru import logger
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from mailtriage.app.commands.options import ConfigOption, DbOption
from mailtriage.app.ingest.pipeline import IngestResult
from mailtriage.app.ingest.pipeline import Progress as IngestProgress
from mailtriage.app.logs import configure_logging
from mailtriage.app.settings import Settings, load_settings
from mailtriage.errors import ConfigError, InputError, MailtriageError, QueryError


def cli_settings(
    config: Path | None, db: Path | None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Settings from ``--config``, the environment and the flags given."""
    merged: dict[str, Any] = dict(overrides or {})
    if db is not None:
        merged["store"] = {"db": db}
    return load_settings(config, merged)


def summary_line(result: IngestResult, db: str) -> str:
    """One line about an ingest run."""
    counts: dict[str, int] = {}
    for source in result.sources:
        counts[source.status] = counts.get(source.status, 0) + 1
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (
        f"ingested {result.lines:,} lines from {len(result.sources)} input(s) "
        f"({detail or 'none'}) in {result.seconds:.1f} s "
        f"({result.lines_per_second:,.0f} lines/s, {result.workers} worker(s)) "
        f"into {db}"
    )


class _Bar:
    """A rich progress bar on standard error fed by the pipeline's progress hook."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[lines]:>12,} lines"),
            TextColumn("{task.fields[rate]:>9,.0f} lines/s"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task: TaskID | None = None

    def __call__(self, update: IngestProgress) -> None:
        elapsed = 0.0
        first = self.task is None
        if self.task is None:
            self.task = self.progress.add_task(
                "ingest", total=max(1, update.total_bytes), lines=0, rate=0.0
            )
        else:
            elapsed = self.progress.tasks[self.task].elapsed or 0.0
        self.progress.update(
            self.task,
            completed=update.done_bytes,
            description=Path(update.path).name[:24],
            lines=update.lines,
            rate=update.lines / elapsed if elapsed > 0 else 0.0,
            refresh=first,  # drawn at once, even for an input read in a blink
        )


def _run(
    files: list[str],
    settings: Settings,
    workers: int,
    show_progress: bool,
) -> IngestResult:
    # The store and the pipeline are imported here so that ``mailtriage --help``
    # does not load DuckDB.
    from mailtriage.app.ingest.pipeline import ingest_files
    from mailtriage.app.store import open_store

    bar = _Bar() if show_progress else None
    with open_store(settings, ingest=True) as store:
        if bar is None:
            return ingest_files(
                store, settings, files, workers=workers, stdin=sys.stdin.buffer
            )
        with bar.progress:
            logger.remove()
            logger.add(
                lambda m: bar.progress.console.print(m, end="", markup=False),
                level=settings.server.log_level,
                format="{level: <7} {message} {extra}",
            )
            return ingest_files(
                store,
                settings,
                files,
                workers=workers,
                stdin=sys.stdin.buffer,
                progress=bar,
            )


def register(app: typer.Typer) -> None:
    """Add ``mailtriage ingest`` to the CLI."""

    @app.command("ingest")
    def ingest(
        files: Annotated[
            list[str],
            typer.Argument(help="Log files (plain, .gz, .bz2, .xz); - for stdin."),
        ],
        db: DbOption = None,
        config: ConfigOption = None,
        year: Annotated[
            int | None, typer.Option("--year", help="Year of stamps without one.")
        ] = None,
        tz: Annotated[
            str | None,
            typer.Option("--tz", help="Zone of stamps without one (default UTC)."),
        ] = None,
        workers: Annotated[
            int, typer.Option("--workers", min=1, max=64, help="Parsing processes.")
        ] = 1,
    ) -> None:
        """Read mail logs into the store; files already read are not read again."""
        ingest_overrides: dict[str, Any] = {}
        if year is not None:
            ingest_overrides["year"] = year
        if tz is not None:
            ingest_overrides["tz"] = tz
        try:
            settings = cli_settings(
                config, db, {"ingest": ingest_overrides} if ingest_overrides else None
            )
            configure_logging(settings.server.log_level, json=settings.server.json_logs)
            result = _run(files, settings, workers, sys.stderr.isatty())
        except (InputError, ConfigError, QueryError) as exc:
            typer.echo(f"mailtriage ingest: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        except MailtriageError as exc:
            typer.echo(f"mailtriage ingest: {exc}", err=True)
            raise typer.Exit(code=1) from exc
        typer.echo(summary_line(result, str(settings.store.db)))
