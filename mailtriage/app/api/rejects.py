"""``GET /v1/rejects`` (refusals before queueing) and ``GET /v1/unparsed``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from mailtriage.app.api import params
from mailtriage.app.api.problems import problem_responses
from mailtriage.app.api.state import CallerDep, ServiceDep
from mailtriage.app.store.base import RejectFilter, RejectPage, UnparsedSummary

router = APIRouter(tags=["rejects and unparsed"])

ACTIONS = ("reject", "hold", "discard", "filter", "redirect", "warn")


@router.get(
    "/rejects",
    response_model=RejectPage,
    summary="Search refusals",
    responses=problem_responses(400, 401, 403, 422),
)
def search_rejects(
    request: Request,
    state: ServiceDep,
    caller: CallerDep,
    since: params.Since = None,
    until: params.Until = None,
    tenant: params.Tenant = None,
    domain: params.Domain = None,
    host: params.Host = None,
    action: Annotated[
        str | None,
        Query(
            max_length=32,
            description="What Postfix did.",
            json_schema_extra={"enum": [*ACTIONS, None]},
            examples=["reject"],
        ),
    ] = None,
    cause: params.Cause = None,
    client_ip: Annotated[
        str | None, Query(max_length=64, examples=["192.0.2.1"])
    ] = None,
    sender: Annotated[
        str | None, Query(max_length=320, examples=["spam@bad.example"])
    ] = None,
    recipient: Annotated[
        str | None, Query(max_length=320, examples=["alice@acme.example"])
    ] = None,
    limit: params.Limit = 100,
    cursor: params.Cursor = None,
) -> Response:
    """NOQUEUE rejects, holds, discards and milter or header-check actions,
    newest first."""
    query = RejectFilter(
        **params.scope(
            since, until, tenant=tenant, domain=domain, host=host
        ).model_dump(),
        action=params.one_of(action, ACTIONS, "action"),
        cause=params.cause_param(cause),
        client_ip=client_ip,
        sender=sender,
        recipient=recipient,
        limit=limit,
        cursor=cursor,
    )
    page = state.store.confined(caller.tenant).rejects(query)
    headers = {}
    if page.next_cursor is not None:
        url = request.url.include_query_params(cursor=page.next_cursor)
        headers["Link"] = f'<{url}>; rel="next"'
    return Response(
        page.model_dump_json(), media_type="application/json", headers=headers
    )


@router.get(
    "/unparsed",
    response_model=UnparsedSummary,
    summary="Lines not understood, by shape",
    responses=problem_responses(400, 401, 403, 422),
)
def unparsed(
    state: ServiceDep,
    caller: CallerDep,
    since: params.Since = None,
    until: params.Until = None,
    limit: Annotated[int, Query(ge=1, le=1000, examples=[20])] = 20,
) -> UnparsedSummary:
    """Lines per program and the commonest masked shapes of unparsed lines, with
    one example each. Operator tokens only: a log line nobody parsed belongs to
    no tenant."""
    caller.require_operator("unparsed lines")
    scope = params.scope(since, until)
    return state.store.unparsed(scope, limit)
