"""``POST /v1/chat`` and ``GET /v1/chat/{id}`` over HTTP, with the agent talking to
a scripted OpenAI-compatible server through the real ``openai`` client; and the
same routes of a service without an LLM."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_served import ACME, OPERATOR, Served, service_settings, serving
from scripted_llm import Reply, ScriptedLLM, scripted_llm


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with scripted_llm([]) as server:
        yield server


@pytest.fixture(scope="module")
def with_llm(
    llm: ScriptedLLM, sample_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("chat") / "samples.duckdb"
    shutil.copy(sample_db, db)
    section = {"base_url": llm.url, "api_key": "test-key", "max_steps": 4}
    with serving(service_settings(db, llm=section)) as running:
        yield running


@pytest.fixture(scope="module")
def without_llm(
    sample_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("chat-no-llm") / "samples.duckdb"
    shutil.copy(sample_db, db)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("OPENAI_BASE_URL", raising=False)
        patch.delenv("OPENAI_API_KEY", raising=False)
        with serving(service_settings(db)) as running:
            yield running


def _events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events of a response: (event, parsed data)."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) == {"event", "data"}
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def _script(llm: ScriptedLLM, *replies: Reply) -> None:
    llm.script[:] = list(replies)
    llm.requests.clear()


def test_chat_streams_tool_calls_tokens_and_a_final_answer(
    with_llm: Served, llm: ScriptedLLM
) -> None:
    search = {"transport": "lmtp", "min_delay": 3, "group_by": ["tenant", "domain"]}
    _script(
        llm,
        Reply(calls=[("search_deliveries", search)]),
        Reply(text="Only initech.example is slow: 009FC20C926 (search_deliveries)."),
    )
    with with_llm.client(OPERATOR) as client:
        response = client.post("/v1/chat", json={"question": "slow LMTP?"})
    events = _events(response)

    kinds = [kind for kind, _ in events]
    assert kinds[:3] == ["conversation", "tool_call", "tool_result"]
    assert set(kinds[3:-1]) == {"token"} and len(kinds[3:-1]) > 1
    assert kinds[-1] == "final"
    final = events[-1][1]
    assert final["source"] == "llm"
    assert final["answer"] == "".join(d["text"] for k, d in events if k == "token")
    assert final["tool_calls"][0]["arguments"] == search
    assert final["tool_calls"][0]["result"]["groups"][0]["domain"] == "initech.example"
    assert final["evidence"]["queue_ids"] == ["009FC20C926"]


def test_chat_without_streaming_answers_one_json_document(
    with_llm: Served, llm: ScriptedLLM
) -> None:
    _script(llm, Reply(text="All quiet."))
    with with_llm.client(OPERATOR) as client:
        response = client.post("/v1/chat", json={"question": "ok?", "stream": False})

    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert (answer["answer"], answer["source"]) == ("All quiet.", "llm")
    assert not llm.requests[0].get("stream")


def test_tenant_token_conversation_cannot_query_another_tenant(
    with_llm: Served, llm: ScriptedLLM
) -> None:
    _script(
        llm,
        Reply(calls=[("get_findings", {"tenant": "globex"})]),
        Reply(text="I may not see globex."),
    )
    with with_llm.client(ACME) as client:
        response = client.post("/v1/chat", json={"question": "globex?"})
    events = dict((k, d) for k, d in _events(response) if k != "token")

    assert events["tool_result"]["status"] == "error"
    assert events["tool_result"]["message"].startswith("refused")
    assert events["final"]["tool_calls"][0]["result"] is None


def test_failing_llm_streams_a_notice_and_the_findings(
    with_llm: Served, llm: ScriptedLLM
) -> None:
    _script(llm, Reply(status=500, text="boom"))
    with with_llm.client(OPERATOR) as client:
        response = client.post("/v1/chat", json={"question": "globex problems?"})
    events = _events(response)

    assert [k for k, _ in events] == ["conversation", "notice", "findings", "final"]
    assert "HTTP 500" in events[1][1]["text"]
    assert events[2][1]["findings"][0]["kind"] == "quota_exceeded"
    assert events[3][1]["source"] == "findings"


def test_conversation_turns_are_kept(with_llm: Served, llm: ScriptedLLM) -> None:
    _script(llm, Reply(text="one"), Reply(text="two"))
    with with_llm.client(ACME) as client:
        first = client.post("/v1/chat", json={"question": "q1", "stream": False})
        cid = first.json()["conversation_id"]
        client.post(
            "/v1/chat",
            json={"question": "q2", "stream": False, "conversation_id": cid},
        )
        turns = client.get(f"/v1/chat/{cid}").json()["turns"]

    said = [t["content"].get("text") or t["content"]["answer"] for t in turns]
    assert [t["role"] for t in turns] == ["user", "assistant"] * 2
    assert said == ["q1", "one", "q2", "two"]


def test_without_llm_chat_says_what_to_set(without_llm: Served) -> None:
    with without_llm.client(OPERATOR) as client:
        response = client.post(
            "/v1/chat",
            json={"question": "slow LMTP deliveries for initech?", "stream": False},
        )
    answer = response.json()

    assert answer["source"] == "findings"
    assert "MAILTRIAGE_LLM__BASE_URL" in answer["notice"]
    assert answer["findings"]["window"]["tenant"] == "initech"
    assert answer["findings"]["findings"][0]["kind"] == "slow_delivery"


def test_another_tenants_conversation_cannot_be_joined(without_llm: Served) -> None:
    body = {"question": "operator's question", "stream": False}
    with without_llm.client(ACME) as acme, without_llm.client(OPERATOR) as operator:
        theirs = operator.post("/v1/chat", json=body).json()["conversation_id"]
        joined = acme.post("/v1/chat", json=body | {"conversation_id": theirs})
        read = acme.get(f"/v1/chat/{theirs}")

    assert (joined.status_code, read.status_code) == (404, 404)
    assert joined.headers["content-type"] == "application/problem+json"


def test_chat_refuses_an_empty_question(without_llm: Served) -> None:
    with without_llm.client(OPERATOR) as client:
        response = client.post("/v1/chat", json={"question": ""})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
