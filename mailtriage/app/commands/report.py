"""``mailtriage report``: counts, delays, causes and what was not understood.

``mailtriage report [--db PATH] [--config FILE] [--since T] [--until T] [--tenant T]
[--format text|json] [--top N] [--groups N]``. Times are RFC 3339 or relative
(``-24h``, ``-15m``, ``-7d``). The JSON contract and the counting rules are those of
``mailtriage.app.report``. Exit status 0; 2 for a bad option or a missing database;
1 when the store fails.
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


def _report(
    db: Path | None,
    config: Path | None,
    since: str | None,
    until: str | None,
    tenant: str | None,
    fmt: str,
    top: int,
    groups: int,
) -> str:
    from mailtriage.app.report import build_report, render_text
    from mailtriage.app.store import open_store

    if fmt not in ("text", "json"):
        raise QueryError(f"--format {fmt!r} is not text or json", parameter="format")
    settings = cli_settings(config, db)
    configure_logging("WARNING", json=settings.server.json_logs)
    start, end = parse_window(since, until)
    if not settings.store.url and not Path(settings.store.db).exists():
        raise ConfigError(
            f"no database at {settings.store.db}: run mailtriage ingest first, or "
            "name it with --db or MAILTRIAGE_DB"
        )
    scope = Scope(since=start, until=end, tenant=tenant)
    with open_store(settings) as store:
        report = build_report(store, scope, top=top, groups=groups or None)
    if fmt == "json":
        return report.model_dump_json(indent=2) + "\n"
    return render_text(report)


def register(app: typer.Typer) -> None:
    """Add ``mailtriage report`` to the CLI."""

    @app.command("report")
    def report(
        db: DbOption = None,
        config: ConfigOption = None,
        since: Annotated[
            str | None, typer.Option("--since", help="Start: RFC 3339 or -24h, -7d.")
        ] = None,
        until: Annotated[
            str | None, typer.Option("--until", help="End: RFC 3339 or relative.")
        ] = None,
        tenant: Annotated[
            str | None, typer.Option("--tenant", help="Only this tenant.")
        ] = None,
        fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
        top: Annotated[
            int, typer.Option("--top", min=1, max=1000, help="Length of top lists.")
        ] = 10,
        groups: Annotated[
            int,
            typer.Option(
                "--groups", min=0, help="Tenants/domains/transports listed; 0 = all."
            ),
        ] = 20,
    ) -> None:
        """Summarise what the store holds: pflogsumm's totals and more."""
        try:
            text = _report(db, config, since, until, tenant, fmt, top, groups)
        except (QueryError, ConfigError) as exc:
            typer.echo(f"mailtriage report: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        except MailtriageError as exc:
            typer.echo(f"mailtriage report: {exc}", err=True)
            raise typer.Exit(code=1) from exc
        typer.echo(text, nl=False)
