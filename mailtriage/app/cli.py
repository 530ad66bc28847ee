"""The ``mailtriage`` command. Each subcommand lives in ``mailtriage.app.commands``."""

from __future__ import annotations

import typer

from mailtriage.app.commands import chat as chat_cmd
from mailtriage.app.commands import collect as collect_cmd
from mailtriage.app.commands import ingest as ingest_cmd
from mailtriage.app.commands import parse as parse_cmd
from mailtriage.app.commands import report as report_cmd
from mailtriage.app.commands import serve as serve_cmd
from mailtriage.app.commands import triage as triage_cmd

app = typer.Typer(
    name="mailtriage",
    help="Postfix and Dovecot logs to delivery events, metrics and answers.",
    no_args_is_help=True,
    add_completion=False,
)

parse_cmd.register(app)
ingest_cmd.register(app)
report_cmd.register(app)
serve_cmd.register(app)
triage_cmd.register(app)
chat_cmd.register(app)
collect_cmd.register(app)


def main() -> None:
    """Entry point of the console script."""
    app()
