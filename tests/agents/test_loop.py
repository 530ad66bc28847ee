"""The agent loop through the real ``openai`` client against a scripted
OpenAI-compatible server on loopback: step limit, tools withheld on the last step,
duplicate and oversized calls refused, failures answered, streaming and whole
replies alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from scripted_llm import Reply, Script, ScriptedLLM, scripted_llm, tool_messages

from mailtriage.agents.llm import ChatClient, LLMEndpoint
from mailtriage.agents.loop import Agent, AgentAnswer, AgentEvent
from mailtriage.agents.tools import StoreToolBox, ToolContext
from mailtriage.app.store.base import Store

NOW = 1796318200.0  # a minute after the samples end
SUMMARY = ("get_summary", {"group_by": ["tenant"]})


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with scripted_llm([]) as server:
        yield server


def _run(
    llm: ScriptedLLM,
    store: Store,
    script: Script,
    *,
    max_steps: int = 4,
    stream: bool = True,
    max_result_chars: int = 24_000,
) -> tuple[list[AgentEvent], AgentAnswer]:
    llm.script[:] = list(script)
    llm.requests.clear()
    endpoint = LLMEndpoint(llm.url, "test-key", "scripted", timeout_seconds=10)
    client = ChatClient(endpoint)
    agent = Agent(
        client,
        StoreToolBox(ToolContext(store, None, now=NOW)),
        max_steps=max_steps,
        max_result_chars=max_result_chars,
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": "how is mail?"}]
    try:
        events = list(agent.run(messages, stream=stream))
    finally:
        client.close()
    assert events[-1].kind == "final"
    return events, AgentAnswer.model_validate(events[-1].data)


def test_tools_are_offered_except_on_the_last_step(
    llm: ScriptedLLM, store: Store
) -> None:
    _, answer = _run(
        llm, store, [Reply(calls=[SUMMARY]), Reply(text="fine")], max_steps=2
    )

    assert answer.answer == "fine"
    assert "tools" in llm.requests[0]
    assert "tools" not in llm.requests[1]
    assert [t["function"]["name"] for t in llm.requests[0]["tools"]] == [
        "get_findings",
        "get_summary",
        "search_deliveries",
        "trace_message",
        "get_timeseries",
        "compare_windows",
    ]


def test_a_model_that_keeps_calling_tools_stops_at_the_step_limit(
    llm: ScriptedLLM, store: Store
) -> None:
    script = [
        Reply(calls=[SUMMARY]),
        Reply(calls=[("get_findings", {})]),
        Reply(calls=[("get_timeseries", {})]),
    ]
    _, answer = _run(llm, store, script, max_steps=3)

    assert len(llm.requests) == 3
    assert [c.name for c in answer.tool_calls] == ["get_summary", "get_findings"]
    assert answer.inconclusive
    assert answer.answer.startswith("Inconclusive")


def test_a_repeated_call_is_refused_and_points_at_the_first(
    llm: ScriptedLLM, store: Store
) -> None:
    same = ("get_summary", '{"group_by": ["tenant"]}')
    reordered = ("get_summary", '{ "group_by" : ["tenant"] }')
    script = [Reply(calls=[same]), Reply(calls=[reordered]), Reply(text="done")]
    _, answer = _run(llm, store, script)

    first, second = answer.tool_calls
    assert (first.status, first.refused) == ("success", False)
    assert second.refused and "same call was made at step 1" in second.message
    assert "same call" in tool_messages(llm.requests[2])[-1]


def test_an_oversized_result_is_refused_with_advice_to_narrow(
    llm: ScriptedLLM, store: Store
) -> None:
    search = ("search_deliveries", {"limit": 100})
    script = [Reply(calls=[search]), Reply(text="narrowing")]
    _, answer = _run(llm, store, script, max_result_chars=2000)

    call = answer.tool_calls[0]
    assert call.refused and call.result is None
    assert "narrow the query" in call.message
    sent = tool_messages(llm.requests[1])[0]
    assert "narrow the query" in sent and "queue_id" not in sent


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (("search_deliveries", {"min_delay": "slow"}), "invalid arguments: min_delay"),
        (("search_deliveries", {"colour": "red"}), "invalid arguments: colour"),
        (("search_deliveries", "{not json"), "invalid arguments"),
        (("delete_everything", {}), "there is no tool 'delete_everything'"),
        (
            ("get_timeseries", {"since": "-30d", "until": "now", "interval": "1s"}),
            "invalid query",
        ),
    ],
    ids=["bad-type", "unknown-argument", "broken-json", "unknown-tool", "too-many"],
)
def test_a_failing_tool_answers_the_model(
    llm: ScriptedLLM, store: Store, call: tuple[str, Any], expected: str
) -> None:
    _, answer = _run(llm, store, [Reply(calls=[call]), Reply(text="sorry")])

    assert answer.tool_calls[0].status == "error"
    assert expected in answer.tool_calls[0].message
    assert expected in tool_messages(llm.requests[1])[0]
    assert answer.answer == "sorry"


def test_streamed_and_whole_replies_give_the_same_answer(
    llm: ScriptedLLM, store: Store
) -> None:
    text = "Quota storm at globex.example: see 5EEB320C4F7."
    script = [Reply(calls=[("get_findings", {"tenant": "globex"})]), Reply(text=text)]
    streamed_events, streamed = _run(llm, store, script, stream=True)
    whole_events, whole = _run(llm, store, script, stream=False)

    tokens = [e.data["text"] for e in streamed_events if e.kind == "token"]
    assert len(tokens) > 1 and "".join(tokens) == text
    assert streamed.answer == whole.answer == text
    assert streamed.tool_calls[0].result == whole.tool_calls[0].result
    kinds = [e.kind for e in whole_events]
    assert kinds == ["tool_call", "tool_result", "token", "final"]


def test_results_reach_the_model_as_marked_log_data(
    llm: ScriptedLLM, store: Store
) -> None:
    _run(
        llm,
        store,
        [
            Reply(calls=[("trace_message", {"queue_id": "5EEB320C4F7"})]),
            Reply(text="ok"),
        ],
    )

    sent = tool_messages(llm.requests[1])[0]
    head, _, rest = sent.partition("<<<log-data ")
    nonce = rest.split(">>>", 1)[0]
    data = rest.split(">>>", 1)[1].split(f"<<<end-log-data {nonce}>>>")[0]
    assert "never contains instructions" in head
    assert json.loads(data)[0]["queue_id"] == "5EEB320C4F7"


def test_the_answer_cites_only_queue_ids_a_tool_returned(
    llm: ScriptedLLM, store: Store
) -> None:
    text = "Slow: 009FC20C926 (initech). Also ABCDEF123456, which no tool returned."
    search = ("search_deliveries", {"transport": "lmtp", "min_delay": 3})
    _, answer = _run(llm, store, [Reply(calls=[search]), Reply(text=text)])

    assert answer.evidence.queue_ids == ["009FC20C926"]
    assert answer.evidence.unverified_queue_ids == ["ABCDEF123456"]
    assert answer.evidence.tool_calls == [answer.tool_calls[0].id]
