"""``mailtriage chat``: ask the agent about the mail, in a terminal.

``mailtriage chat [--db PATH] [--config FILE] [--tenant T] [QUESTION]``. With a
question it answers once; without, it reads questions line by line (``exit`` or
end of input stops) and keeps them in one conversation. Answers stream as they
arrive; tool calls and their results are shown on standard error. Without an LLM
configured it says what to set and shows the findings for the scope the question
names. The conversation is kept in the store, so the database must not be open in
another process (ask a running ``mailtriage serve`` at ``/v1/chat`` instead).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mailtriage.app.commands.ingest import cli_settings
from mailtriage.app.commands.options import ConfigOption, DbOption
from mailtriage.app.logs import configure_logging
from mailtriage.errors import ConfigError, MailtriageError, QueryError

_STOP = {"exit", "quit", ":q"}


def _show(kind: str, data: dict[str, Any], streamed: list[bool]) -> str | None:
    """Print one event; return the conversation id when it names one."""
    if kind == "token":
        streamed[0] = True
        sys.stdout.write(data["text"])
        sys.stdout.flush()
    elif kind == "tool_call":
        args = json.dumps(data["arguments"], ensure_ascii=False)
        typer.echo(f"[tool] {data['name']} {args}", err=True)
    elif kind == "tool_result":
        message = f": {data['message']}" if data.get("message") else ""
        typer.echo(f"[tool] {data['name']} -> {data['status']}{message}", err=True)
    elif kind == "final":
        _final(data, streamed[0])
        return str(data["conversation_id"])
    return None


def _final(answer: dict[str, Any], streamed: bool) -> None:
    if answer["source"] == "findings" or not streamed:
        typer.echo(answer["answer"])
    else:
        typer.echo("")
    evidence = answer.get("evidence") or {}
    if evidence.get("queue_ids"):
        typer.echo(f"[evidence] queue IDs: {', '.join(evidence['queue_ids'])}")
    if evidence.get("unverified_queue_ids"):
        unverified = ", ".join(evidence["unverified_queue_ids"])
        typer.echo(f"[evidence] not returned by any tool: {unverified}", err=True)


def _questions(first: str | None) -> Any:
    if first is not None:
        yield first
        return
    while True:
        try:
            line = input("> ")
        except EOFError:
            return
        if line.strip().lower() in _STOP:
            return
        if line.strip():
            yield line.strip()


def _chat(
    db: Path | None, config: Path | None, tenant: str | None, question: str | None
) -> None:
    from mailtriage.agents.chat import ChatSession, ChatSetup
    from mailtriage.app.store import open_store

    settings = cli_settings(config, db)
    configure_logging("WARNING", json=settings.server.json_logs)
    if not settings.store.url and not Path(settings.store.db).exists():
        raise ConfigError(
            f"no database at {settings.store.db}: run mailtriage ingest first, or "
            "name it with --db or MAILTRIAGE_DB"
        )
    if tenant is not None and tenant not in settings.tenants:
        raise ConfigError(f"--tenant {tenant!r} is not a tenant of the config")
    setup = ChatSetup.from_settings(settings)
    with open_store(settings) as store:
        session = ChatSession(setup, store.confined(tenant), tenant)
        conversation: str | None = None
        for text in _questions(question):
            streamed = [False]
            for event in session.start(text, conversation).events(stream=True):
                conversation = _show(event.kind, event.data, streamed) or conversation


def register(app: typer.Typer) -> None:
    """Add ``mailtriage chat`` to the CLI."""

    @app.command("chat")
    def chat(
        question: Annotated[
            str | None, typer.Argument(help="Ask this once; without it, a REPL.")
        ] = None,
        db: DbOption = None,
        config: ConfigOption = None,
        tenant: Annotated[
            str | None,
            typer.Option("--tenant", help="Confine the conversation to a tenant."),
        ] = None,
    ) -> None:
        """Ask about the mail: the agent answers with evidence, or the findings."""
        try:
            _chat(db, config, tenant, question)
        except (QueryError, ConfigError) as exc:
            typer.echo(f"mailtriage chat: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        except MailtriageError as exc:
            typer.echo(f"mailtriage chat: {exc}", err=True)
            raise typer.Exit(code=1) from exc
