"""``GET /v1/messages/{queue_id}`` and ``GET /v1/messages?message_id=``: traces.

Queue IDs are per host and reused (short IDs come back after the queue wraps), so a
queue ID can name several lifetimes; all of them are returned, oldest first, unless
``host`` (and a time window) narrows them down.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from mailtriage.app.api import params
from mailtriage.app.api.problems import problem_responses
from mailtriage.app.api.state import CallerDep, ServiceDep
from mailtriage.app.store.base import MessageTrace
from mailtriage.errors import NotFoundError

router = APIRouter(tags=["messages"])


class Traces(BaseModel):
    """Every message lifetime that matched, oldest first."""

    messages: list[MessageTrace] = Field(
        description="One trace per queue-ID lifetime: reception, each recipient's "
        "attempts with Dovecot's side, notifications and the raw lines."
    )


TraceLimit = Annotated[
    int, Query(ge=1, le=100, description="Most lifetimes returned.", examples=[20])
]


@router.get(
    "/messages/{queue_id}",
    response_model=Traces,
    summary="Trace a message by queue ID",
    responses=problem_responses(400, 401, 403, 404, 422),
)
def trace_queue_id(
    state: ServiceDep,
    caller: CallerDep,
    queue_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=64,
            description="A Postfix queue ID (short or long form).",
            examples=["4Bx9yT3kQzz1"],
        ),
    ],
    host: params.Host = None,
    since: params.Since = None,
    until: params.Until = None,
    limit: TraceLimit = 20,
) -> Traces:
    """The whole timeline of the message(s) with this queue ID."""
    scope = params.scope(since, until, host=host)
    store = state.store.confined(caller.tenant)
    found = store.trace(scope, queue_id=queue_id, limit=limit)
    if not found:
        raise NotFoundError(f"no message with queue ID {queue_id!r} in scope")
    return Traces(messages=found)


@router.get(
    "/messages",
    response_model=Traces,
    summary="Trace messages by Message-ID",
    responses=problem_responses(400, 401, 403, 404, 422),
)
def trace_message_id(
    state: ServiceDep,
    caller: CallerDep,
    message_id: Annotated[
        str,
        Query(
            min_length=1,
            max_length=998,
            description="The Message-ID header, with or without angle brackets.",
            examples=["<m1@partner.example>"],
        ),
    ],
    host: params.Host = None,
    since: params.Since = None,
    until: params.Until = None,
    limit: TraceLimit = 20,
) -> Traces:
    """Every queue-ID lifetime that carried this Message-ID (on any host)."""
    scope = params.scope(since, until, host=host)
    store = state.store.confined(caller.tenant)
    found = store.trace(scope, message_id=message_id, limit=limit)
    if not found:
        raise NotFoundError(f"no message with Message-ID {message_id!r} in scope")
    return Traces(messages=found)
