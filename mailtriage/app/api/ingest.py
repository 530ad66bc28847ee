"""``POST /v1/ingest``: log lines pushed by a collector (Vector, Fluent Bit, ...)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mailtriage.app.api.problems import problem_responses
from mailtriage.app.api.state import CallerDep, ServiceDep
from mailtriage.app.ingest.collect import BATCH_MEDIA_TYPE, batch_push
from mailtriage.app.ingest.push import (
    MAX_BODY_BYTES,
    PushBody,
    parse_ndjson,
    parse_text,
)
from mailtriage.errors import QueryError

router = APIRouter(tags=["ingest"])

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json")
COMMIT_WAIT_SECONDS = 30.0

_TEXT_EXAMPLE = (
    "Dec  3 16:00:56 mx1 postfix/smtpd[6079]: connect from unknown[192.0.2.1]\n"
    "Dec  3 16:00:57 mx1 postfix/qmgr[811]: 4Bx9: removed\n"
)
_NDJSON_EXAMPLE = (
    '{"line": "Dec 03 16:01:03 lmtp(a@acme.example)<6122><rdBDBT+SEWvqFw>: '
    'Info: msgid=<m1@acme.example>: saved mail to INBOX", "host": "mda1"}\n'
    '{"program": "postfix/qmgr", "pid": 811, "host": "mx1", '
    '"ts": "2026-12-03T16:00:57Z", "message": "4Bx9: removed"}\n'
)


class IngestAccepted(BaseModel):
    """What a push handed to ingest."""

    lines: int = Field(description="Lines queued for ingest.", examples=[2])
    records: int = Field(description="Records taken in record form.", examples=[0])
    committed: bool = Field(
        description="True when the lines were committed before the answer "
        "(``wait=true``); otherwise they are queued and will be.",
        examples=[False],
    )


@router.post(
    "/ingest",
    status_code=202,
    response_model=IngestAccepted,
    summary="Push log lines",
    responses={
        200: {"model": IngestAccepted, "description": "Committed (wait=true)"},
        **problem_responses(400, 401, 403, 413, 422, 429, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/plain": {
                    "schema": {"type": "string"},
                    "example": _TEXT_EXAMPLE,
                },
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": _NDJSON_EXAMPLE,
                },
                BATCH_MEDIA_TYPE: {
                    "schema": {"type": "object"},
                    "description": "One batch of assembled rows from "
                    "`mailtriage collect` (written once per collector and number).",
                },
            },
        }
    },
)
async def push_lines(
    request: Request,
    state: ServiceDep,
    caller: CallerDep,
    host: Annotated[
        str | None,
        Query(
            max_length=255,
            description="The sending host, for lines and records that name none.",
            examples=["mx1"],
        ),
    ] = None,
    wait: Annotated[
        bool,
        Query(description="Answer only once the lines are committed to the store."),
    ] = False,
) -> JSONResponse:
    """Queue raw lines (text) or records (NDJSON) for ingest.

    Accepted lines are in the ingest queue before the answer: 202 means they will
    be committed; 429 (with Retry-After) means nothing of this request was taken.
    """
    caller.require_operator("pushing log lines")
    if state.intake is None:
        raise HTTPException(503, "live ingest is not running in this service")
    body = _parse(await _read_body(request), request, host)
    loop = asyncio.get_running_loop()
    committed: asyncio.Future[None] = loop.create_future()
    accept = partial(state.intake.accept, body, on_commit=_resolver(loop, committed))
    # Records are written to the store before the answer: off the event loop.
    result = await asyncio.to_thread(accept) if body.records else accept()
    done = False
    if wait and result.lines:
        done = await _committed_within(committed, COMMIT_WAIT_SECONDS)
    answer = IngestAccepted(lines=result.lines, records=result.records, committed=done)
    return JSONResponse(answer.model_dump(), status_code=200 if done else 202)


async def _committed_within(future: asyncio.Future[None], seconds: float) -> bool:
    try:
        await asyncio.wait_for(future, seconds)
    except TimeoutError:
        return False  # still queued: it will be committed, just not yet
    return True


def _resolver(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]
) -> Callable[[], None]:
    def resolve() -> None:
        loop.call_soon_threadsafe(_set_done, future)

    return resolve


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    return bytes(body)


def _parse(data: bytes, request: Request, host: str | None) -> PushBody:
    media = request.headers.get("content-type", "text/plain").split(";")[0].strip()
    if media in NDJSON_TYPES:
        return parse_ndjson(data, host)
    if media == BATCH_MEDIA_TYPE:  # rows from a collector (``ingest.collect``)
        return batch_push(data)
    if media.startswith("text/") or not media:
        return parse_text(data, host)
    raise QueryError(
        f"content type {media!r} is not taken: send text/plain or application/x-ndjson",
        parameter="content-type",
    )


def _too_large() -> HTTPException:
    return HTTPException(
        413, f"the body is larger than {MAX_BODY_BYTES} bytes; send smaller batches"
    )
