"""``GET /v1/stats/summary`` and ``GET /v1/stats/timeseries``.

The counts follow the counting rules of ``mailtriage report`` (the store applies
them): delivered, bounced and expired count recipients by final outcome; deferred
counts recipients whose latest attempt was deferred and who have no final outcome;
deferral_attempts counts deferred attempts; delay percentiles use final outcomes.
``rates`` are shares of the recipients counted, and outcomes per second where the
window is bounded.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from mailtriage.app.api import params
from mailtriage.app.api.problems import problem_responses
from mailtriage.app.api.state import CallerDep, ServiceDep
from mailtriage.app.store.base import GroupBy, GroupStats, Scope, TimeSeries

router = APIRouter(prefix="/stats", tags=["stats"])


class Rates(BaseModel):
    """Shares of the recipients counted (delivered + bounced + expired + deferred),
    and final outcomes per second over the window (None when it is open)."""

    delivered: float | None = Field(examples=[0.97])
    bounced: float | None = Field(examples=[0.01])
    expired: float | None = Field(examples=[0.0])
    deferred: float | None = Field(examples=[0.02])
    outcomes_per_second: float | None = Field(examples=[12.5])


class GroupSummary(BaseModel):
    """One group's counts, delays and rates."""

    stats: GroupStats
    rates: Rates


class SummaryResponse(BaseModel):
    """Totals and one entry per group, busiest first."""

    since: float | None = Field(description="Window start, epoch seconds.")
    until: float | None = Field(description="Window end, epoch seconds.")
    group_by: list[GroupBy]
    totals: GroupSummary
    groups: list[GroupSummary]


GroupLimit = Annotated[
    int | None,
    Query(ge=1, le=1000, description="Keep only the busiest groups.", examples=[20]),
]


@router.get(
    "/summary",
    response_model=SummaryResponse,
    summary="Counts, rates and delay percentiles",
    responses=problem_responses(400, 401, 403, 422),
)
def summary(
    state: ServiceDep,
    caller: CallerDep,
    group_by: params.GroupByParam = None,
    since: params.Since = None,
    until: params.Until = None,
    tenant: params.Tenant = None,
    domain: params.Domain = None,
    host: params.Host = None,
    transport: params.Transport = None,
    relay: params.Relay = None,
    limit: GroupLimit = None,
) -> SummaryResponse:
    """Recipients by outcome with delay percentiles (overall and per Postfix
    stage), for the whole scope and per group."""
    scope = params.scope(
        since, until, tenant=tenant, domain=domain, host=host,
        transport=transport, relay=relay,
    )  # fmt: skip
    dims = params.group_by_param(group_by)
    result = state.store.confined(caller.tenant).summary(scope, dims, limit=limit)
    seconds = _window_seconds(scope)
    return SummaryResponse(
        since=scope.since,
        until=scope.until,
        group_by=result.group_by,
        totals=_with_rates(result.totals, seconds),
        groups=[_with_rates(group, seconds) for group in result.groups],
    )


@router.get(
    "/timeseries",
    response_model=TimeSeries,
    summary="Counts and delays per time bucket",
    responses=problem_responses(400, 401, 403, 422),
)
def timeseries(
    state: ServiceDep,
    caller: CallerDep,
    interval: params.Interval = "1m",
    group_by: params.GroupByParam = None,
    since: params.Since = None,
    until: params.Until = None,
    tenant: params.Tenant = None,
    domain: params.Domain = None,
    host: params.Host = None,
    transport: params.Transport = None,
    relay: params.Relay = None,
) -> TimeSeries:
    """The summary's counts per bucket of ``interval`` (each bucket is its own
    window for the counting rules), per group when ``group_by`` is given."""
    scope = params.scope(
        since, until, tenant=tenant, domain=domain, host=host,
        transport=transport, relay=relay,
    )  # fmt: skip
    seconds = params.interval_param(interval)
    dims = params.group_by_param(group_by)
    return state.store.confined(caller.tenant).timeseries(scope, seconds, dims)


def _window_seconds(scope: Scope) -> float | None:
    if scope.since is None:
        return None
    until = scope.until if scope.until is not None else time.time()
    return until - scope.since if until > scope.since else None


def _with_rates(stats: GroupStats, seconds: float | None) -> GroupSummary:
    outcomes = stats.delivered + stats.bounced + stats.expired
    counted = outcomes + stats.deferred

    def share(n: int) -> float | None:
        return round(n / counted, 6) if counted else None

    rates = Rates(
        delivered=share(stats.delivered),
        bounced=share(stats.bounced),
        expired=share(stats.expired),
        deferred=share(stats.deferred),
        outcomes_per_second=round(outcomes / seconds, 6) if seconds else None,
    )
    return GroupSummary(stats=stats, rates=rates)
