"""``mailtriage collect``: the collector that runs on each mail host.

    mailtriage collect --follow FILE... --to URL [--spool DIR] [--host NAME]
                       [--config FILE] [--token TOKEN] [--metrics HOST:PORT]

Follows the host's log files, parses and assembles them here, and ships the rows
to ``--to``: a central ``mailtriage serve`` (``http://host:port``, record form of
``POST /v1/ingest``; ``--token`` or ``MAILTRIAGE_COLLECT_TOKEN`` when it has
tokens) or a store (``clickhouse://user:password@host:8123/db``, ``chdb:///dir``).
Batches wait in the spool directory until acknowledged
(``mailtriage.app.ingest.collect``). ``--metrics`` serves the same Prometheus
metrics as ``mailtriage serve`` for what this host logged. SIGTERM or SIGINT
stops it after committing what was read and shipping what the destination takes
within a few seconds.
Exit status 0; 2 for a wrong setting or an unusable spool.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from mailtriage.app.ingest.collect import Collector, default_host, destination_for
from mailtriage.app.logs import configure_logging
from mailtriage.app.settings import load_settings
from mailtriage.errors import ConfigError, MailtriageError

DRAIN_SECONDS = 10.0


async def _run(collector: Collector) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await collector.start()
    try:
        await stop.wait()
    finally:
        await collector.stop(DRAIN_SECONDS)


def register(app: typer.Typer) -> None:
    """Add ``mailtriage collect`` to the CLI."""

    @app.command("collect")
    def collect(
        follow: Annotated[
            list[Path],
            typer.Option("--follow", help="Follow this log file (tail -F); repeat."),
        ],
        to: Annotated[
            str,
            typer.Option(
                "--to",
                help="http://host:port of mailtriage serve, or a store url "
                "(clickhouse://..., chdb:///dir).",
            ),
        ],
        spool: Annotated[
            Path,
            typer.Option("--spool", help="Where batches wait until acknowledged."),
        ] = Path("mailtriage-spool"),
        host: Annotated[
            str | None,
            typer.Option("--host", help="This host's name, for lines that carry none."),
        ] = None,
        config: Annotated[
            Path | None,
            typer.Option("--config", help="A TOML settings file with the tenants."),
        ] = None,
        token: Annotated[
            str | None,
            typer.Option(
                "--token",
                envvar="MAILTRIAGE_COLLECT_TOKEN",
                help="Bearer token for the central service.",
            ),
        ] = None,
        metrics: Annotated[
            str | None,
            typer.Option(
                "--metrics", help="Serve Prometheus metrics at HOST:PORT/metrics."
            ),
        ] = None,
    ) -> None:
        """Follow this host's logs and ship assembled rows to a central store."""
        try:
            settings = load_settings(config)
            configure_logging(settings.server.log_level, json=settings.server.json_logs)
            missing = [str(p) for p in follow if not p.parent.is_dir()]
            if missing:
                raise ConfigError(f"--follow: no directory for {', '.join(missing)}")
            collector = Collector(
                settings,
                follow,
                destination_for(to, settings, token),
                spool_dir=spool,
                host=host or default_host(),
                metrics=metrics,
            )
            asyncio.run(_run(collector))
        except MailtriageError as exc:
            typer.echo(f"mailtriage collect: {exc}", err=True)
            raise typer.Exit(code=2) from exc
