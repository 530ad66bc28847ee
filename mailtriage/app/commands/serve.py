"""``mailtriage serve``: the HTTP API with live ingest, under uvicorn.

    mailtriage serve [--db PATH] [--config FILE] [--follow FILE]... [--syslog URL]...
                     [--host H] [--port P]

The service itself is ``mailtriage.app.service``, imported when the command runs:
the web framework and the LLM client stay out of every other command's memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mailtriage.app.commands.options import ConfigOption, DbOption
from mailtriage.app.logs import configure_logging
from mailtriage.app.settings import load_settings
from mailtriage.errors import MailtriageError


def _overrides(db: Path | None, host: str | None, port: int | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if db is not None:
        overrides["store"] = {"db": str(db)}
    server = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if server:
        overrides["server"] = server
    return overrides


def register(app: typer.Typer) -> None:
    """Add ``mailtriage serve`` to the CLI."""

    @app.command("serve")
    def serve(
        db: DbOption = None,
        config: ConfigOption = None,
        follow: Annotated[
            list[Path] | None,
            typer.Option("--follow", help="Follow this log file (tail -F); repeat."),
        ] = None,
        syslog: Annotated[
            list[str] | None,
            typer.Option(
                "--syslog", help="Receive syslog: udp://H:P or tcp://H:P; repeat."
            ),
        ] = None,
        host: Annotated[
            str | None, typer.Option("--host", help="Listen address.")
        ] = None,
        port: Annotated[int | None, typer.Option("--port", help="Port.")] = None,
    ) -> None:
        """Serve the HTTP API and ingest logs live (follow, syslog, push)."""
        try:
            settings = load_settings(config, _overrides(db, host, port))
            ingest = settings.ingest
            ingest.follow = [*ingest.follow, *(follow or [])]
            ingest.syslog = [*ingest.syslog, *(syslog or [])]
            configure_logging(settings.server.log_level, json=settings.server.json_logs)
            from mailtriage.app.service import run_service

            run_service(settings)
        except MailtriageError as exc:
            typer.echo(f"mailtriage serve: {exc}", err=True)
            raise typer.Exit(code=2) from exc
