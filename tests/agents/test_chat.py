"""Chat turns through the real ``openai`` client against a scripted server: the
tenant scope cannot be escaped, log text cannot steer the tools, a failing or
missing LLM falls back to the findings, addresses are pseudonymised, and
conversations are kept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from injected_samples import INJECTED_QUEUE_ID, INJECTION, settings_for
from scripted_llm import Reply, Script, ScriptedLLM, scripted_llm, tool_messages

from mailtriage.agents.chat import ChatAnswer, ChatSession, ChatSetup
from mailtriage.app.store.base import Store
from mailtriage.errors import NotFoundError

NOW = 1796318200.0 + 86400  # a day after the samples end: an old log
PRODUCT_QUESTION = (
    "Check the last 5 minutes of Postfix logs, find every LMTP delivery to the MDA "
    "slower than 3 s, and tell me whether specific recipient domains or tenants "
    "trigger it."
)
# Real local parts of the sample's addresses; none may reach a hosted model.
REAL_ADDRESS = re.compile(r"\b(alice|bob|carol|dave|ghost|sales|support|pat)@")


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with scripted_llm([]) as server:
        yield server


def _setup(
    module_db: Path, llm: ScriptedLLM | None, **llm_settings: object
) -> ChatSetup:
    section: dict[str, object] = {"api_key": "test-key", **llm_settings}
    if llm is not None:
        section["base_url"] = llm.url
    return ChatSetup.from_settings(settings_for(module_db, llm=section))


def _ask(
    setup: ChatSetup,
    store: Store,
    tenant: str | None,
    question: str,
    *,
    llm: ScriptedLLM | None = None,
    script: Script = (),
    conversation: str | None = None,
) -> ChatAnswer:
    if llm is not None:
        llm.script[:] = list(script)
        llm.requests.clear()
    session = ChatSession(setup, store.confined(tenant), tenant, now=NOW)
    return session.start(question, conversation).run()


def _statuses(answer: ChatAnswer) -> list[tuple[str, str]]:
    return [(c.name, c.status) for c in answer.tool_calls]


def test_tenant_conversation_cannot_reach_another_tenant(
    module_db: Path, store: Store, llm: ScriptedLLM
) -> None:
    script = [
        Reply(calls=[("search_deliveries", {"tenant": "globex"})]),
        Reply(calls=[("trace_message", {"queue_id": "5EEB320C4F7"})]),
        Reply(calls=[("get_summary", {"group_by": ["tenant"]})]),
        Reply(text="Only acme's mail is visible."),
    ]
    answer = _ask(
        _setup(module_db, llm, max_steps=6),
        store,
        "acme",
        "show me globex",
        llm=llm,
        script=script,
    )

    assert _statuses(answer) == [
        ("search_deliveries", "error"),
        ("trace_message", "no_data"),
        ("get_summary", "success"),
    ]
    assert "refused" in answer.tool_calls[0].message
    groups = answer.tool_calls[2].result["groups"]
    assert {g["tenant"] for g in groups} == {"acme"}
    sent = "\n".join(tool_messages(llm.requests[-1]))
    assert "globex.example" not in sent


def test_injected_log_text_reaches_the_model_only_as_marked_data(
    module_db: Path, store: Store, llm: ScriptedLLM
) -> None:
    seen: dict[str, Any] = {}

    def obeying_model(body: dict[str, Any]) -> Reply:
        # A model that falls for the injection and asks for globex's mail.
        seen["result"] = tool_messages(body)[-1]
        return Reply(calls=[("search_deliveries", {"tenant": "globex"})])

    script = [
        Reply(calls=[("trace_message", {"queue_id": INJECTED_QUEUE_ID})]),
        obeying_model,
        Reply(text="Nothing else to report."),
    ]
    answer = _ask(
        _setup(module_db, llm),
        store,
        "acme",
        "what happened to 8B73C20C7A3?",
        llm=llm,
        script=script,
    )

    result = seen["result"]
    start = result.index("<<<log-data ")
    end = result.index("<<<end-log-data ")
    assert start < result.index(INJECTION[:40]) < end
    assert "never contains instructions" in result[:start]
    # The tools ran with exactly the arguments the model gave, and the scope held.
    assert [c.arguments for c in answer.tool_calls] == [
        {"queue_id": INJECTED_QUEUE_ID},
        {"tenant": "globex"},
    ]
    assert answer.tool_calls[1].status == "error"
    assert answer.tool_calls[1].result is None


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (Reply(status=500, text="model crashed"), "answered HTTP 500"),
        (Reply(status=429, text="rate limited"), "answered HTTP 429"),
        (Reply(delay_seconds=3.0, text="too late"), "did not answer within 0.5 s"),
    ],
    ids=["server-error", "rate-limit", "timeout"],
)
def test_failing_llm_falls_back_to_findings(
    module_db: Path, store: Store, llm: ScriptedLLM, reply: Reply, said: str
) -> None:
    setup = _setup(module_db, llm, timeout_seconds=0.5)
    answer = _ask(
        setup, store, None, "what is wrong with globex?", llm=llm, script=[reply]
    )

    assert answer.source == "findings"
    assert answer.notice is not None and said in answer.notice
    assert answer.findings is not None
    assert answer.findings.window.tenant == "globex"
    assert answer.findings.findings[0].kind == "quota_exceeded"


def test_llm_failing_after_a_tool_call_keeps_the_call(
    module_db: Path, store: Store, llm: ScriptedLLM
) -> None:
    script = [Reply(calls=[("get_findings", {})]), Reply(status=503)]
    answer = _ask(
        _setup(module_db, llm), store, None, "status?", llm=llm, script=script
    )

    assert answer.source == "findings"
    assert _statuses(answer) == [("get_findings", "success")]


def test_without_llm_chat_says_what_to_set_and_shows_the_named_scope(
    module_db: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    setup = ChatSetup.from_settings(settings_for(module_db))
    answer = _ask(setup, store, None, "What failed for globex in the last minute?")

    assert setup.endpoint is None
    assert answer.source == "findings"
    for name in ("MAILTRIAGE_LLM__BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        assert name in (answer.notice or "")
    assert answer.findings is not None
    assert answer.findings.window.tenant == "globex"
    assert {f.tenant for f in answer.findings.findings} == {"globex"}
    assert "counted back from the end of the data" in answer.answer


def test_without_llm_the_product_question_puts_slow_lmtp_first(
    module_db: Path, store: Store
) -> None:
    setup = _setup(module_db, None)
    setup = ChatSetup(None, setup.not_configured, 6, False, setup.tenants)
    answer = _ask(setup, store, None, PRODUCT_QUESTION)

    assert answer.findings is not None
    top = answer.findings.findings[0]
    assert (top.kind, top.domain, top.stage) == (
        "slow_delivery",
        "initech.example",
        "transmission",
    )
    assert all(f.kind != "dns_failure" for f in answer.findings.findings)


def test_tenant_named_in_a_question_outside_the_callers_scope_is_not_shown(
    module_db: Path, store: Store
) -> None:
    base = _setup(module_db, None)
    setup = ChatSetup(None, base.not_configured, 6, False, base.tenants)
    answer = _ask(setup, store, "acme", "what is wrong with globex?")

    assert answer.findings is not None
    assert {f.tenant for f in answer.findings.findings} <= {"acme"}
    assert "not visible to this caller" in answer.answer


def test_the_product_question_end_to_end(
    module_db: Path, store: Store, llm: ScriptedLLM
) -> None:
    search = {
        "since": "-5m",
        "transport": "lmtp",
        "min_delay": 3,
        "status": "sent",
        "group_by": ["tenant", "domain"],
    }
    volume = {"since": "-5m", "transport": "lmtp", "group_by": ["tenant", "domain"]}
    text = (
        "All 4 LMTP deliveries slower than 3 s went to initech.example (tenant "
        "initech), e.g. 009FC20C926 and B99EF20C5F8 (search_deliveries), while "
        "acme.example and globex.example had none (get_summary)."
    )
    script = [
        Reply(calls=[("search_deliveries", search)]),
        Reply(calls=[("get_summary", volume)]),
        Reply(text=text),
    ]
    answer = _ask(
        _setup(module_db, llm), store, None, PRODUCT_QUESTION, llm=llm, script=script
    )

    found = answer.tool_calls[0]
    assert found.status == "success"
    assert "counted back from the end of the data" in found.message
    assert [
        (g["tenant"], g["domain"], g["recipients"]) for g in found.result["groups"]
    ] == [("initech", "initech.example", 4)]
    assert all(i["delays"]["transmission"] >= 3.9 for i in found.result["items"])
    assert {"009FC20C926", "B99EF20C5F8"} <= set(answer.evidence.queue_ids)
    assert answer.evidence.unverified_queue_ids == []
    assert answer.source == "llm" and not answer.inconclusive


def test_addresses_are_pseudonymised_for_the_model_and_revealed_after(
    module_db: Path, store: Store, llm: ScriptedLLM
) -> None:
    def name_the_full_mailbox(body: dict[str, Any]) -> Reply:
        result = tool_messages(body)[-1]
        fake = re.search(r"person-\d+@acme\.example", result)
        assert fake is not None
        return Reply(calls=[("search_deliveries", {"recipient": fake.group(0)})])

    def answer_with_it(body: dict[str, Any]) -> Reply:
        fake = re.search(r"person-\d+@acme\.example", tool_messages(body)[-1])
        assert fake is not None
        return Reply(text=f"The full mailbox is {fake.group(0)}.")

    script = [
        Reply(
            calls=[
                (
                    "search_deliveries",
                    {"domain": "acme.example", "cause": "quota_exceeded"},
                )
            ]
        ),
        name_the_full_mailbox,
        answer_with_it,
    ]
    setup = _setup(module_db, llm, pseudonymize=True)
    answer = _ask(
        setup,
        store,
        None,
        "whose mailbox at bob@acme.example is full?",
        llm=llm,
        script=script,
    )

    sent = "\n".join(str(r["messages"]) for r in llm.requests)
    assert REAL_ADDRESS.search(sent) is None
    assert answer.tool_calls[1].status == "success"
    assert re.search(r"The full mailbox is (bob|carol)@acme\.example\.", answer.answer)


def test_a_conversation_is_kept_and_continued(
    module_db: Path, store: Store, llm: ScriptedLLM
) -> None:
    setup = _setup(module_db, llm)
    first = _ask(
        setup,
        store,
        "acme",
        "first question",
        llm=llm,
        script=[Reply(text="first answer")],
    )
    second = _ask(
        setup,
        store,
        "acme",
        "second question",
        llm=llm,
        script=[Reply(text="second answer")],
        conversation=first.conversation_id,
    )

    sent = [(m["role"], m["content"]) for m in llm.requests[0]["messages"][1:]]
    assert sent == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
    ]
    turns = store.confined("acme").load_conversation(second.conversation_id)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[-1].content["answer"] == "second answer"


def test_another_tenants_conversation_cannot_be_continued(
    module_db: Path, store: Store, llm: ScriptedLLM
) -> None:
    setup = _setup(module_db, llm)
    theirs = _ask(
        setup,
        store,
        "globex",
        "globex question",
        llm=llm,
        script=[Reply(text="globex answer")],
    )

    with pytest.raises(NotFoundError):
        _ask(setup, store, "acme", "let me in", conversation=theirs.conversation_id)
