"""``mailtriage triage``: ranked findings with causes, evidence and fixes.

``mailtriage triage [--db PATH] [--config FILE] [--since T] [--until T]
[--tenant T] [--domain D] [--slow S] [--format text|json]``. Without ``--since``
and ``--until`` the window is the last hour of the data (an old log is triaged
where its data is); the baseline is the window of the same length before it. The
JSON contract is ``mailtriage.agents.findings``. Exit status 0; 2 for a bad option
or a missing database; 1 when the store fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailtriage.app.commands.ingest import cli_settings
from mailtriage.app.commands.options import ConfigOption, DbOption
from mailtriage.app.logs import configure_logging
from mailtriage.app.store.base import Scope
from mailtriage.app.timeparse import parse_window
from mailtriage.errors import ConfigError, MailtriageError, QueryError


def _triage(
    db: Path | None,
    config: Path | None,
    scope_args: tuple[str | None, str | None, str | None, str | None],
    slow: float,
    fmt: str,
) -> str:
    from mailtriage.agents.triage import analyze, render_text
    from mailtriage.app.store import open_store

    if fmt not in ("text", "json"):
        raise QueryError(f"--format {fmt!r} is not text or json", parameter="format")
    settings = cli_settings(config, db)
    configure_logging("WARNING", json=settings.server.json_logs)
    since, until, tenant, domain = scope_args
    start, end = parse_window(since, until)
    if not settings.store.url and not Path(settings.store.db).exists():
        raise ConfigError(
            f"no database at {settings.store.db}: run mailtriage ingest first, or "
            "name it with --db or MAILTRIAGE_DB"
        )
    scope = Scope(since=start, until=end, tenant=tenant, domain=domain)
    with open_store(settings, read_only=True) as store:
        report = analyze(store, scope, slow_seconds=slow)
    if fmt == "json":
        return report.model_dump_json(indent=2) + "\n"
    return render_text(report)


def register(app: typer.Typer) -> None:
    """Add ``mailtriage triage`` to the CLI."""

    @app.command("triage")
    def triage(
        db: DbOption = None,
        config: ConfigOption = None,
        since: Annotated[
            str | None,
            typer.Option(
                "--since", help="Start: RFC 3339 or -1h, -15m (default: the last hour)."
            ),
        ] = None,
        until: Annotated[
            str | None, typer.Option("--until", help="End: RFC 3339 or relative.")
        ] = None,
        tenant: Annotated[
            str | None, typer.Option("--tenant", help="Only this tenant.")
        ] = None,
        domain: Annotated[
            str | None, typer.Option("--domain", help="Only this recipient domain.")
        ] = None,
        slow: Annotated[
            float,
            typer.Option(
                "--slow", min=0.1, help="Seconds from which a delivery is slow."
            ),
        ] = 3.0,
        fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    ) -> None:
        """Find what failed or was slow, why, and what to do about it."""
        try:
            text = _triage(db, config, (since, until, tenant, domain), slow, fmt)
        except (QueryError, ConfigError) as exc:
            typer.echo(f"mailtriage triage: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        except MailtriageError as exc:
            typer.echo(f"mailtriage triage: {exc}", err=True)
            raise typer.Exit(code=1) from exc
        typer.echo(text, nl=False)
