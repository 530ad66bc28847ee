"""A chat turn: the question, the agent's answer or the findings instead, kept in
the store. ``POST /v1/chat`` and ``mailtriage chat`` both run through here.

    setup = ChatSetup.from_settings(settings)          # once, at start-up
    turn = ChatSession(setup, store.confined(tenant), tenant).start(question, cid)
    for event in turn.events(stream=True): ...         # conversation, notice,
                                                       # token, tool_call,
                                                       # tool_result, findings,
                                                       # final

Without an LLM, or when it fails (an error status, a timeout, a reply that is not
a completion), the turn says what happened and answers with the deterministic
findings for the scope the question names (``mailtriage.agents.hints``).

Scope: the session's store is the caller's, confined before the session is built;
the conversation belongs to the caller's tenant, and nothing the model or the log
text says changes either.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from mailtriage.agents.findings import SLOW_DELIVERY, TriageReport
from mailtriage.agents.hints import Hints, parse_hints
from mailtriage.agents.llm import ChatClient, LLMEndpoint, not_configured
from mailtriage.agents.llm import resolve_endpoint as _resolve
from mailtriage.agents.loop import (
    MAX_RESULT_CHARS,
    Agent,
    AgentAnswer,
    ChatModel,
    Grounding,
    ToolCallRecord,
    prompt,
)
from mailtriage.agents.privacy import Pseudonymizer
from mailtriage.agents.tools import StoreToolBox, ToolContext
from mailtriage.agents.triage import analyze, render_text
from mailtriage.agents.window import resolve_window
from mailtriage.app.settings import Settings
from mailtriage.app.store.base import ChatTurn, Scope, Store
from mailtriage.app.timeparse import format_time
from mailtriage.errors import ForbiddenError, LLMError, NotFoundError, QueryError

HISTORY_TURNS = 10
"""Earlier turns of a conversation sent with a new question."""

ChatEventKind = Literal[
    "conversation", "notice", "token", "tool_call", "tool_result", "findings", "final"
]


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """One event of a turn, as a server-sent event carries it."""

    kind: ChatEventKind
    data: dict[str, Any]


class ChatAnswer(BaseModel):
    """The final answer of a turn, with everything it rests on."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: str
    answer: str
    source: Literal["llm", "findings"] = Field(
        description="llm: the model answered; findings: the deterministic "
        "findings stand in (no LLM configured, or it failed)."
    )
    inconclusive: bool = False
    notice: str | None = None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    evidence: Grounding = Field(default_factory=Grounding)
    findings: TriageReport | None = None


@dataclass(frozen=True, slots=True)
class ChatSetup:
    """What every chat needs, resolved once at start-up."""

    endpoint: LLMEndpoint | None
    not_configured: str
    max_steps: int
    pseudonymize: bool
    tenants: tuple[str, ...]
    max_result_chars: int = MAX_RESULT_CHARS

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatSetup:
        """The endpoint from ``[llm]`` or the environment, and the limits."""
        endpoint = _resolve(settings.llm)
        if endpoint is None:
            logger.info("no LLM configured; chat answers with findings")
        else:
            logger.info("LLM endpoint configured", endpoint=endpoint.describe())
        return cls(
            endpoint=endpoint,
            not_configured=not_configured(settings.llm),
            max_steps=settings.llm.max_steps,
            pseudonymize=settings.llm.pseudonymize,
            tenants=tuple(settings.tenants),
        )


class ChatSession:
    """Chat for one caller over its (already confined) store."""

    def __init__(
        self,
        setup: ChatSetup,
        store: Store,
        tenant: str | None,
        *,
        model: ChatModel | None = None,
        now: float | None = None,
    ) -> None:
        self.setup = setup
        self.store = store
        self.tenant = tenant
        self.model = model
        self.now = now

    def start(self, question: str, conversation_id: str | None = None) -> Turn:
        """Record the question and return the turn that answers it.

        NotFoundError when ``conversation_id`` belongs to someone else: this is
        raised here, before any answer streams, so the API can answer 404.
        """
        cid = conversation_id or uuid.uuid4().hex
        question = _clean(question)
        history: list[ChatTurn] = []
        if conversation_id is not None:
            try:
                history = self.store.load_conversation(cid)
            except NotFoundError:
                history = []
        self.store.save_chat_turn(cid, self.tenant, "user", {"text": question})
        now = time.time() if self.now is None else self.now
        return Turn(self, cid, question, history[-HISTORY_TURNS:], now)


@dataclass
class Turn:
    """One question being answered."""

    session: ChatSession
    conversation_id: str
    question: str
    history: Sequence[ChatTurn]
    now: float
    answer: ChatAnswer | None = None
    _records: list[ToolCallRecord] = field(default_factory=list)

    def events(self, *, stream: bool = True) -> Iterator[ChatEvent]:
        """The turn's events, ending with ``final``; the answer is saved."""
        yield ChatEvent("conversation", {"conversation_id": self.conversation_id})
        setup = self.session.setup
        if setup.endpoint is None and self.session.model is None:
            yield from self._findings(setup.not_configured)
        else:
            yield from self._agent(stream)
        assert self.answer is not None
        self.answer = self.answer.model_copy(
            update={"answer": _clean(self.answer.answer)}
        )
        self.session.store.save_chat_turn(
            self.conversation_id,
            self.session.tenant,
            "assistant",
            self.answer.model_dump(mode="json"),
        )
        yield ChatEvent("final", self.answer.model_dump(mode="json"))

    def run(self) -> ChatAnswer:
        """The answer without streaming."""
        for _ in self.events(stream=False):
            pass
        assert self.answer is not None
        return self.answer

    # ------------------------------------------------------------------ agent

    def _agent(self, stream: bool) -> Iterator[ChatEvent]:
        setup = self.session.setup
        model = self.session.model
        client = None
        if model is None:
            assert setup.endpoint is not None
            client = ChatClient(setup.endpoint)
            model = client
        pseudonyms = Pseudonymizer() if setup.pseudonymize else None
        ctx = ToolContext(self.session.store, self.session.tenant, now=self.now)
        agent = Agent(
            model,
            StoreToolBox(ctx),
            max_steps=setup.max_steps,
            max_result_chars=setup.max_result_chars,
            pseudonyms=pseudonyms,
        )
        self._records = agent.records
        try:
            for event in agent.run(self._messages(pseudonyms), stream=stream):
                if event.kind == "final":
                    self._answered(AgentAnswer.model_validate(event.data))
                else:
                    yield ChatEvent(event.kind, event.data)
        except LLMError as exc:
            logger.warning("LLM failed; answering with findings", error=str(exc))
            yield from self._findings(
                f"The LLM endpoint failed: {exc}. These are the deterministic "
                "findings instead."
            )
        finally:
            if client is not None:
                client.close()

    def _answered(self, result: AgentAnswer) -> None:
        self.answer = ChatAnswer(
            conversation_id=self.conversation_id,
            answer=result.answer,
            source="llm",
            inconclusive=result.inconclusive,
            tool_calls=result.tool_calls,
            evidence=result.evidence,
        )

    def _messages(self, pseudonyms: Pseudonymizer | None) -> list[dict[str, Any]]:
        hide = pseudonyms.hide if pseudonyms else (lambda text: text)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self._system_prompt()}
        ]
        for turn in self.history:
            text = _turn_text(turn)
            if text:
                messages.append({"role": turn.role, "content": hide(text)})
        messages.append({"role": "user", "content": hide(self.question)})
        return messages

    def _system_prompt(self) -> str:
        store = self.session.store
        found = store.data_range(Scope())
        span = (
            f"{format_time(found.first_ts)} to {format_time(found.last_ts)} "
            f"({found.attempts} delivery attempts)"
            if found.first_ts is not None
            else "nothing yet (no deliveries in the store)"
        )
        tenant = self.session.tenant
        if tenant is not None:
            rule = (
                f"This conversation may only see tenant {tenant!r}; the tools refuse "
                "anything else."
            )
        else:
            names = ", ".join(self.session.setup.tenants) or "none configured"
            rule = f"This conversation may see every tenant: {names}, unassigned."
        return (
            prompt("system")
            .replace("{now}", format_time(self.now) or "")
            .replace("{data_range}", span)
            .replace("{scope_rule}", rule)
        )

    # --------------------------------------------------------------- findings

    def _findings(self, notice: str) -> Iterator[ChatEvent]:
        yield ChatEvent("notice", {"text": notice})
        store = self.session.store
        hints = parse_hints(self.question, self.session.setup.tenants, now=self.now)
        notes = []
        if self.session.tenant is not None and hints.tenant not in (
            None,
            self.session.tenant,
        ):
            notes.append(
                f"tenant {hints.tenant!r} is not visible to this caller; showing "
                f"{self.session.tenant!r}"
            )
            hints = dataclasses.replace(hints, tenant=None)
        report, note = self._report(store, hints)
        notes += [note] if note else []
        yield ChatEvent("findings", report.model_dump(mode="json"))
        text = notice + "\n\n" + "".join(f"Note: {n}.\n" for n in notes)
        self.answer = ChatAnswer(
            conversation_id=self.conversation_id,
            answer=text + "\n" + render_text(report),
            source="findings",
            notice=notice,
            tool_calls=self._records,
            findings=report,
        )

    def _report(self, store: Store, hints: Hints) -> tuple[TriageReport, str | None]:
        scope = Scope(
            tenant=hints.tenant, domain=hints.domain, transport=hints.transport
        )
        try:
            resolved = resolve_window(
                store, scope, hints.since, hints.until, now=self.now
            )
        except (QueryError, ForbiddenError):
            resolved = resolve_window(store, Scope(), None, None, now=self.now)
        slow = hints.slow_seconds or 3.0
        report = analyze(store, resolved.scope, now=self.now, slow_seconds=slow)
        if hints.about_slowness:
            report = _slowness_first(report)
        return report, resolved.note


def _slowness_first(report: TriageReport) -> TriageReport:
    """The report with slow deliveries first, for a question about slowness."""
    ranked = sorted(report.findings, key=lambda f: f.kind != SLOW_DELIVERY)
    return report.model_copy(update={"findings": ranked})


def _clean(text: str) -> str:
    """``text`` without lone surrogates (a JSON body may carry them; JSON storage
    and UTF-8 output cannot), each replaced by U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _turn_text(turn: ChatTurn) -> str:
    content = turn.content
    if isinstance(content, dict):
        text = content.get("text") or content.get("answer") or ""
        return str(text)
    return str(content or "")


__all__ = [
    "ChatAnswer",
    "ChatEvent",
    "ChatEventKind",
    "ChatSession",
    "ChatSetup",
    "Turn",
]
