"""The agent loop: one loop for streaming and non-streaming answers.

Each step asks the model for a reply, offering the tools; the tool calls it makes
are run and answered, and the next step goes on from there. The rules:

- at most ``max_steps`` steps; the last one offers no tools, so the model must
  answer with what it has (a model that still asks for tools there gets its text
  taken as the answer, or an inconclusive one);
- a call repeated with the same arguments is refused, pointing at the result the
  model already has;
- a result larger than ``max_result_chars`` is refused with advice to narrow the
  query;
- every result reaches the model inside markers that say it is log data, never
  instructions (``prompts/tool_data.md``), with addresses pseudonymised when a
  ``Pseudonymizer`` is given; the events and the final answer carry the real ones.

``Agent.run`` yields ``AgentEvent``s: ``token`` (text as it arrives), ``tool_call``,
``tool_result`` and one ``final``. Errors of the model's endpoint propagate as
``LLMError``; the caller decides how to fall back.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mailtriage.agents.llm import Completion, Piece, ToolCall
from mailtriage.agents.privacy import Pseudonymizer, StreamRevealer
from mailtriage.agents.tools import ToolBox, ToolResult

MAX_RESULT_CHARS = 24_000
"""The largest tool result (JSON characters) handed to the model, about 6,000
tokens: enough for a page of deliveries, small enough for an 8k-context model."""

EventKind = Literal["token", "tool_call", "tool_result", "final"]

# Postfix short queue IDs are hexadecimal, 6 to 12 characters in the logs seen;
# this finds IDs an answer mentions that no tool returned.
_QUEUE_ID_LIKE = re.compile(r"\b(?=[0-9A-F]*[A-F])(?=[0-9A-F]*[0-9])[0-9A-F]{8,12}\b")


def prompt(name: str) -> str:
    """The text of ``prompts/<name>.md``."""
    return (
        resources.files("mailtriage.agents")
        .joinpath("prompts", f"{name}.md")
        .read_text(encoding="utf-8")
    )


class ChatModel(Protocol):
    """What the loop needs of a model (``mailtriage.agents.llm.ChatClient``)."""

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        *,
        stream: bool,
    ) -> Iterator[Piece]: ...


class ToolCallRecord(BaseModel):
    """One tool call and its result, as the user may check it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    step: int
    name: str
    arguments: Any = Field(description="The arguments the model gave (parsed JSON).")
    status: str
    message: str = ""
    result: Any = None
    refused: bool = False


class Grounding(BaseModel):
    """What the answer rests on."""

    model_config = ConfigDict(extra="forbid")

    queue_ids: list[str] = Field(
        default_factory=list,
        description="Queue IDs the answer cites that a tool returned.",
    )
    unverified_queue_ids: list[str] = Field(
        default_factory=list,
        description="Queue-ID-like tokens in the answer that no tool returned.",
    )
    tool_calls: list[str] = Field(
        default_factory=list, description="Ids of the calls that returned data."
    )


class AgentAnswer(BaseModel):
    """The final answer of one run of the loop."""

    model_config = ConfigDict(extra="forbid")

    answer: str
    inconclusive: bool
    steps: int
    tool_calls: list[ToolCallRecord]
    evidence: Grounding


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One thing that happened, for a stream."""

    kind: EventKind
    data: dict[str, Any]


class Agent:
    """The loop (see the module docstring)."""

    def __init__(
        self,
        model: ChatModel,
        toolbox: ToolBox,
        *,
        max_steps: int,
        max_result_chars: int = MAX_RESULT_CHARS,
        pseudonyms: Pseudonymizer | None = None,
    ) -> None:
        self.model = model
        self.toolbox = toolbox
        self.max_steps = max(1, max_steps)
        self.max_result_chars = max_result_chars
        self.pseudonyms = pseudonyms
        self.records: list[ToolCallRecord] = []
        self._seen: dict[str, ToolCallRecord] = {}
        self._preamble = prompt("tool_data").strip()

    def run(
        self, messages: list[dict[str, Any]], *, stream: bool = True
    ) -> Iterator[AgentEvent]:
        """Answer the conversation in ``messages`` (extended in place)."""
        for step in range(1, self.max_steps + 1):
            last = step == self.max_steps
            tools = None if last else self.toolbox.specs()
            completion = yield from self._reply(messages, tools, stream)
            if last or not completion.tool_calls:
                yield self._final(completion.text, step, last)
                return
            messages.append(_assistant(completion))
            for call in completion.tool_calls:
                record = self._call(call, step)
                yield AgentEvent("tool_call", _call_event(record))
                yield AgentEvent("tool_result", _result_event(record))
                messages.append(self._tool_message(call.id, record))

    def _reply(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        stream: bool,
    ) -> Generator[AgentEvent, None, Completion]:
        revealer = StreamRevealer(self.pseudonyms)
        completion: Completion | None = None
        for piece in self.model.complete(messages, tools, stream=stream):
            if isinstance(piece, Completion):
                completion = piece
                continue
            shown = revealer.feed(piece)
            if shown:
                yield AgentEvent("token", {"text": shown})
        rest = revealer.flush()
        if rest:
            yield AgentEvent("token", {"text": rest})
        return completion or Completion("", [])

    def _final(self, text: str, step: int, last: bool) -> AgentEvent:
        answer = self._reveal(text).strip()
        if not answer:
            why = "the step limit" if last else "an empty reply"
            answer = (
                f"Inconclusive: the model gave no answer ({why} after "
                f"{len(self.records)} tool call(s)); see the tool results."
            )
        result = AgentAnswer(
            answer=answer,
            inconclusive=answer.lower().lstrip("*# ").startswith("inconclusive"),
            steps=step,
            tool_calls=self.records,
            evidence=self._grounding(answer),
        )
        return AgentEvent("final", result.model_dump())

    def _call(self, call: ToolCall, step: int) -> ToolCallRecord:
        arguments = self._reveal(call.arguments)
        try:
            parsed: Any = json.loads(arguments or "{}")
            canonical = json.dumps(parsed, sort_keys=True)
        except json.JSONDecodeError:
            parsed, canonical = arguments, arguments
        key = f"{call.name}:{canonical}"
        earlier = self._seen.get(key)
        if earlier is not None:
            message = (
                f"refused: the same call was made at step {earlier.step} (id "
                f"{earlier.id}); use its result above or change the arguments"
            )
            record = _refused(call, step, parsed, message)
        else:
            result = self.toolbox.run(call.name, arguments)
            record = self._checked(call, step, parsed, result)
            self._seen[key] = record
        self.records.append(record)
        return record

    def _checked(
        self, call: ToolCall, step: int, parsed: Any, result: ToolResult
    ) -> ToolCallRecord:
        size = len(json.dumps(result.data, default=str))
        if size > self.max_result_chars:
            message = (
                f"refused: the result has {size} characters, more than the "
                f"{self.max_result_chars} allowed; narrow the query: a shorter "
                "window, a tenant or domain, filters such as transport, status or "
                "min_delay, group_by counts instead of items, or a smaller limit"
            )
            return _refused(call, step, parsed, message)
        return ToolCallRecord(
            id=call.id,
            step=step,
            name=call.name,
            arguments=parsed,
            status=result.status,
            message=result.message,
            result=result.data,
        )

    def _tool_message(self, call_id: str, record: ToolCallRecord) -> dict[str, Any]:
        nonce = secrets.token_hex(6)
        body = json.dumps(record.result, default=str, ensure_ascii=False)
        content = "\n".join(
            [
                f"status: {record.status}",
                f"message: {record.message or '-'}",
                self._preamble,
                f"<<<log-data {nonce}>>>",
                body,
                f"<<<end-log-data {nonce}>>>",
            ]
        )
        if self.pseudonyms is not None:
            content = self.pseudonyms.hide(content)
        return {"role": "tool", "tool_call_id": call_id, "content": content}

    def _reveal(self, text: str) -> str:
        return self.pseudonyms.reveal(text) if self.pseudonyms else text

    def _grounding(self, answer: str) -> Grounding:
        known: set[str] = set()
        for record in self.records:
            _collect_queue_ids(record.result, known)
        cited = sorted(q for q in known if q in answer)
        unverified = sorted(set(_QUEUE_ID_LIKE.findall(answer)) - known)
        used = [r.id for r in self.records if r.status == "success" and not r.refused]
        return Grounding(
            queue_ids=cited, unverified_queue_ids=unverified, tool_calls=used
        )


def _refused(call: ToolCall, step: int, parsed: Any, message: str) -> ToolCallRecord:
    return ToolCallRecord(
        id=call.id,
        step=step,
        name=call.name,
        arguments=parsed,
        status="error",
        message=message,
        refused=True,
    )


def _assistant(completion: Completion) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": completion.text or None,
        "tool_calls": [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in completion.tool_calls
        ],
    }


def _call_event(record: ToolCallRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "step": record.step,
        "name": record.name,
        "arguments": record.arguments,
    }


def _result_event(record: ToolCallRecord) -> dict[str, Any]:
    return record.model_dump(exclude={"arguments", "step"})


def _collect_queue_ids(value: Any, into: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("queue_id", "parent_queue_id") and isinstance(item, str):
                into.add(item)
            elif key in ("queue_ids", "notifications") and isinstance(item, list):
                into.update(q for q in item if isinstance(q, str))
            else:
                _collect_queue_ids(item, into)
    elif isinstance(value, list):
        for item in value:
            _collect_queue_ids(item, into)
