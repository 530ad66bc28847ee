"""``GET /v1/deliveries``: recipient attempts and outcomes, paged or as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from mailtriage.app.api import params
from mailtriage.app.api.problems import problem_responses
from mailtriage.app.api.state import CallerDep, ServiceDep
from mailtriage.app.store.base import (
    MAX_LIMIT,
    DeliveryFilter,
    DeliveryItem,
    DeliveryPage,
    Store,
)

router = APIRouter(tags=["deliveries"])

EXPORT_MAX_ROWS = 1_000_000
"""The most rows one CSV export streams; narrow the window to export more."""

_DOVECOT_COLUMNS = ("status", "mailbox", "reason", "delivery_time_ms")
CSV_COLUMNS = (
    "time",
    *(name for name in DeliveryItem.model_fields if name != "dovecot"),
    *(f"dovecot_{name}" for name in _DOVECOT_COLUMNS),
)

_EXAMPLE_PAGE = {
    "items": [
        {
            "id": 41,
            "ts": 1796313663.2,
            "host": "mx1",
            "queue_id": "4Bx9yT3kQzz1",
            "message_key": "mx1/4Bx9yT3kQzz1/1796313656000",
            "recipient": "alice@acme.example",
            "recipient_domain": "acme.example",
            "transport": "lmtp",
            "status": "bounced",
            "final": True,
            "tenant": "acme",
            "sender": "bob@partner.example",
            "delay": 0.31,
            "dsn": "5.2.2",
            "smtp_code": 552,
            "response": "552 5.2.2 <alice@acme.example> Quota exceeded",
            "cause": "quota_exceeded",
            "temporary": False,
        }
    ],
    "next_cursor": "MTc5NjMxMzY2My4yfDQx",
}


@router.get(
    "/deliveries",
    response_model=DeliveryPage,
    summary="Search deliveries",
    responses={
        200: {
            "content": {
                "application/json": {"example": _EXAMPLE_PAGE},
                "text/csv": {"schema": {"type": "string"}},
            },
            "description": "A page of attempts, newest first (or CSV).",
        },
        **problem_responses(400, 401, 403, 422),
    },
)
def search_deliveries(
    request: Request,
    state: ServiceDep,
    caller: CallerDep,
    since: params.Since = None,
    until: params.Until = None,
    tenant: params.Tenant = None,
    domain: params.Domain = None,
    host: params.Host = None,
    transport: params.Transport = None,
    relay: params.Relay = None,
    recipient: Annotated[
        str | None,
        Query(max_length=320, examples=["alice@acme.example"]),
    ] = None,
    sender: Annotated[
        str | None, Query(max_length=320, examples=["bob@partner.example"])
    ] = None,
    sender_domain: Annotated[
        str | None, Query(max_length=255, examples=["partner.example"])
    ] = None,
    status: params.Status = None,
    cause: params.Cause = None,
    queue_id: Annotated[
        str | None, Query(max_length=64, examples=["4Bx9yT3kQzz1"])
    ] = None,
    message_id: Annotated[
        str | None, Query(max_length=998, examples=["<m1@partner.example>"])
    ] = None,
    min_delay: Annotated[
        float | None,
        Query(ge=0, le=1e9, description="Seconds (Postfix delay=).", examples=[3.0]),
    ] = None,
    final: Annotated[
        bool | None,
        Query(description="Only final outcomes (true) or only retries (false)."),
    ] = None,
    limit: params.Limit = 100,
    cursor: params.Cursor = None,
) -> Response:
    """Recipient attempts matching every filter given, newest first.

    ``Accept: text/csv`` streams every matching row as CSV instead of one page.
    """
    query = DeliveryFilter(
        **params.scope(
            since, until, tenant=tenant, domain=domain, host=host,
            transport=transport, relay=relay,
        ).model_dump(),
        recipient=recipient,
        sender=sender,
        sender_domain=sender_domain,
        status=params.one_of(status, params.STATUSES, "status"),
        cause=params.cause_param(cause),
        queue_id=queue_id,
        message_id=message_id,
        min_delay=min_delay,
        final=final,
        limit=limit,
        cursor=cursor,
    )  # fmt: skip
    store = state.store.confined(caller.tenant)
    if _wants_csv(request):
        return _csv_response(store, query)
    page = store.deliveries(query)
    headers = _link(request, page)
    return Response(
        page.model_dump_json(), media_type="application/json", headers=headers
    )


def _wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _link(request: Request, page: DeliveryPage) -> dict[str, str]:
    if page.next_cursor is None:
        return {}
    url = request.url.include_query_params(cursor=page.next_cursor)
    return {"Link": f'<{url}>; rel="next"'}


def _csv_response(store: Store, query: DeliveryFilter) -> StreamingResponse:
    return StreamingResponse(
        _csv_rows(store, query),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="deliveries.csv"'},
    )


def _csv_rows(store: Store, query: DeliveryFilter) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    yield _take(out)
    for item in _all_items(store, query):
        writer.writerow(_csv_values(item))
        if out.tell() > 64_000:
            yield _take(out)
    yield _take(out)


def _all_items(store: Store, query: DeliveryFilter) -> Iterator[DeliveryItem]:
    query = query.replace(limit=MAX_LIMIT)
    sent = 0
    while sent < EXPORT_MAX_ROWS:
        page = store.deliveries(query)
        yield from page.items
        sent += len(page.items)
        if page.next_cursor is None:
            return
        query = query.replace(cursor=page.next_cursor)


def _csv_values(item: DeliveryItem) -> list[Any]:
    data = item.model_dump(exclude={"dovecot"})
    time = datetime.fromtimestamp(item.ts, UTC).isoformat().replace("+00:00", "Z")
    dovecot = item.dovecot.model_dump() if item.dovecot else {}
    return [
        time,
        *(data[name] for name in CSV_COLUMNS[1 : -len(_DOVECOT_COLUMNS)]),
        *(dovecot.get(name) for name in _DOVECOT_COLUMNS),
    ]


def _take(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text
