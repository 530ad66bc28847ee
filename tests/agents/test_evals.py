"""Evaluation cases of the agent against a real model, as fixture folders.

Each folder of ``evals/`` holds ``question.txt``, ``tool_outputs.json`` (what each
tool answered when the case was recorded on the sample logs, as a ``ToolResult``
per tool name; a tool without a recording answers ``no_data``) and
``expected.json`` (the conclusions: tools it must call, words the answer must and
must not contain, queue IDs it should cite, whether it is inconclusive).

The cases run only with a marker and an endpoint::

    MAILTRIAGE_EVAL_BASE_URL=http://127.0.0.1:11434/v1 MAILTRIAGE_EVAL_MODEL=qwen2.5 \\
        .venv/bin/pytest -m eval tests/agents/test_evals.py

(``MAILTRIAGE_EVAL_API_KEY`` when the endpoint needs one). The shape of every
folder is checked in the default run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mailtriage.agents.llm import ChatClient, LLMEndpoint
from mailtriage.agents.loop import Agent, AgentAnswer, prompt
from mailtriage.agents.tools import TOOLS, ToolResult

EVALS = Path(__file__).resolve().parent / "evals"
CASES = sorted(p.name for p in EVALS.iterdir() if p.is_dir())
TOOL_NAMES = {tool.name for tool in TOOLS}
EXPECTED_KEYS = {
    "context", "must_call_any", "must_mention", "must_mention_any",
    "must_not_mention", "cite_queue_ids_any", "inconclusive",
}  # fmt: skip


class RecordedToolBox:
    """The real tools' declarations, answered from a case's recordings."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.outputs = outputs
        self.calls: list[tuple[str, Any]] = []

    def specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in TOOLS]

    def run(self, name: str, arguments: str) -> ToolResult:
        try:
            self.calls.append((name, json.loads(arguments or "{}")))
        except json.JSONDecodeError:
            self.calls.append((name, arguments))
        recorded = self.outputs.get(name)
        if recorded is None:
            return ToolResult(status="no_data", message="nothing matched")
        return ToolResult.model_validate(recorded)


def _case(name: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    folder = EVALS / name
    question = (folder / "question.txt").read_text().strip()
    expected = json.loads((folder / "expected.json").read_text())
    outputs = json.loads((folder / "tool_outputs.json").read_text())
    return question, expected, outputs


@pytest.mark.parametrize("name", CASES)
def test_eval_case_folder_is_complete(name: str) -> None:
    question, expected, outputs = _case(name)

    assert question
    assert set(expected) >= EXPECTED_KEYS
    assert set(outputs) <= TOOL_NAMES
    for output in outputs.values():
        ToolResult.model_validate(output)
    recorded = json.dumps(outputs)
    assert all(q in recorded for q in expected["cite_queue_ids_any"])


def _system(context: dict[str, str]) -> str:
    text = prompt("system")
    for key, value in context.items():
        text = text.replace("{" + key + "}", value)
    return text


def _endpoint() -> LLMEndpoint:
    return LLMEndpoint(
        base_url=os.environ["MAILTRIAGE_EVAL_BASE_URL"],
        api_key=os.environ.get("MAILTRIAGE_EVAL_API_KEY", "not-needed"),
        model=os.environ.get("MAILTRIAGE_EVAL_MODEL", "gpt-4o-mini"),
        timeout_seconds=180.0,
    )


@pytest.mark.eval
@pytest.mark.skipif(
    not os.environ.get("MAILTRIAGE_EVAL_BASE_URL"),
    reason="set MAILTRIAGE_EVAL_BASE_URL (and MAILTRIAGE_EVAL_MODEL) to run evals",
)
@pytest.mark.parametrize("name", CASES)
def test_agent_reaches_the_expected_conclusions(name: str) -> None:
    question, expected, outputs = _case(name)
    tools = RecordedToolBox(outputs)
    client = ChatClient(_endpoint())
    messages = [
        {"role": "system", "content": _system(expected["context"])},
        {"role": "user", "content": question},
    ]
    try:
        events = list(Agent(client, tools, max_steps=6).run(messages, stream=False))
    finally:
        client.close()
    answer = AgentAnswer.model_validate(events[-1].data)
    text = answer.answer.lower()

    called = {name for name, _ in tools.calls}
    assert called & set(expected["must_call_any"]), tools.calls
    forbidden = expected.get("must_not_call_with", {})
    for _, arguments in tools.calls:
        for key, value in forbidden.items():
            assert not (isinstance(arguments, dict) and arguments.get(key) == value)
    for word in expected["must_mention"]:
        assert word.lower() in text, answer.answer
    for choices in expected["must_mention_any"]:
        assert any(c.lower() in text for c in choices), answer.answer
    for word in expected["must_not_mention"]:
        assert word.lower() not in text, answer.answer
    if expected["cite_queue_ids_any"]:
        assert set(answer.evidence.queue_ids) & set(expected["cite_queue_ids_any"])
    assert answer.inconclusive == expected["inconclusive"], answer.answer
