"""``POST /v1/chat`` (the agent, streamed as server-sent events) and
``GET /v1/chat/{conversation_id}`` (a conversation's turns).

The stream's events, in order: ``conversation`` (its id), then any of ``notice``
(no LLM, or it failed), ``token`` (answer text as it arrives), ``tool_call``,
``tool_result``, ``findings`` (the deterministic findings, when they stand in for
the model), and last ``final``: the answer with the tool calls and results it
rests on, the cited queue IDs and, without a model, the findings. Each event's
``data`` is one JSON object (the HTML Living Standard's ``text/event-stream``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, get_args

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from mailtriage.agents.chat import (
    ChatAnswer,
    ChatEvent,
    ChatEventKind,
    ChatSession,
    ChatSetup,
)
from mailtriage.app.api.problems import problem_responses
from mailtriage.app.api.state import CallerDep, ServiceDep
from mailtriage.app.settings import Settings
from mailtriage.app.store.base import ChatTurn

router = APIRouter(tags=["chat"])

ConversationId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        examples=["3f2a9c0e5b7d4e1f8a6b2c4d9e0f1a2b"],
    ),
]


class ChatRequest(BaseModel):
    """A question, optionally continuing a conversation."""

    question: str = Field(
        min_length=1,
        max_length=4000,
        examples=[
            "Check the last 5 minutes of Postfix logs, find every LMTP delivery to "
            "the MDA slower than 3 s, and tell me whether specific recipient "
            "domains or tenants trigger it."
        ],
    )
    conversation_id: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$"
    )
    stream: bool = Field(
        default=True,
        description="Server-sent events (true) or one JSON answer (false).",
    )


class Conversation(BaseModel):
    """The turns of a conversation, oldest first."""

    conversation_id: str
    turns: list[ChatTurn]


EVENT_KINDS: tuple[str, ...] = get_args(ChatEventKind)

# One server-sent event (OpenAPI before 3.2 describes each event with ``schema``).
_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": list(EVENT_KINDS)},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "One JSON object; for final, a ChatAnswer.",
        },
    },
    "example": {"event": "token", "data": '{"text": "All slow LMTP deliveries"}'},
}


def install(app: FastAPI, settings: Settings) -> None:
    """Resolve the LLM endpoint once, at start-up, for every chat of ``app``."""
    app.state.chat_setup = ChatSetup.from_settings(settings)


def _setup(request: Request) -> ChatSetup:
    setup = getattr(request.app.state, "chat_setup", None)
    if not isinstance(setup, ChatSetup):
        setup = ChatSetup.from_settings(request.app.state.service.settings)
        request.app.state.chat_setup = setup
    return setup


@router.post(
    "/chat",
    summary="Ask the agent (server-sent events)",
    response_model=ChatAnswer,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
            "description": "The events (stream=true) or the final answer.",
        },
        **problem_responses(400, 401, 403, 404, 422),
    },
)
def chat(
    body: ChatRequest,
    request: Request,
    state: ServiceDep,
    caller: CallerDep,
) -> StreamingResponse | ChatAnswer:
    """Answer a question about the mail in the caller's scope, with the tool calls
    and results the answer rests on. Without an LLM configured the answer says
    what to set and shows the deterministic findings for the scope the question
    names."""
    session = ChatSession(
        _setup(request), state.store.confined(caller.tenant), caller.tenant
    )
    turn = session.start(body.question, body.conversation_id)
    if not body.stream:
        return turn.run()
    return StreamingResponse(
        _sse(turn.events(stream=True)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(events: Iterator[ChatEvent]) -> Iterator[str]:
    for event in events:
        data = json.dumps(event.data, default=str, ensure_ascii=False)
        yield f"event: {event.kind}\ndata: {data}\n\n"


@router.get(
    "/chat/{conversation_id}",
    response_model=Conversation,
    summary="A conversation's turns",
    responses=problem_responses(401, 403, 404, 422),
)
def conversation(
    conversation_id: ConversationId, state: ServiceDep, caller: CallerDep
) -> Conversation:
    """Every turn of a conversation of the caller's, oldest first."""
    turns = state.store.confined(caller.tenant).load_conversation(conversation_id)
    return Conversation(conversation_id=conversation_id, turns=turns)
