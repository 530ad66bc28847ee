"""The counting tools: summary, time series and two windows side by side, with the
counting rules of ``mailtriage report`` (the store applies them)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from mailtriage.agents.tools.base import (
    RouteParams,
    Tool,
    ToolContext,
    ToolResult,
    route,
)
from mailtriage.app.store.base import (
    STAGES,
    GroupBy,
    GroupStats,
    Percentiles,
    Scope,
    Summary,
)
from mailtriage.app.timeparse import format_time, parse_duration, parse_window

COUNTS = ("delivered", "bounced", "expired", "deferred", "deferral_attempts")
COUNTING_RULES = (
    "delivered/bounced/expired count recipients by final outcome in the window; "
    "deferred counts recipients whose latest attempt was deferred without a final "
    "outcome; deferral_attempts counts deferred attempts; delays (seconds) are "
    "percentiles of final outcomes only."
)


class SummaryParams(RouteParams):
    """Parameters of ``get_summary``."""

    group_by: list[GroupBy] = Field(
        default_factory=list,
        max_length=3,
        description="Dimensions: tenant, domain, transport, cause, relay, host.",
    )
    limit: int = Field(default=20, ge=1, le=100, description="Busiest groups kept.")


def _pct(p: Percentiles) -> dict[str, Any] | None:
    if not p.count:
        return None
    return {"n": p.count, "p50": p.p50, "p95": p.p95, "p99": p.p99}


def compact_stats(stats: GroupStats) -> dict[str, Any]:
    """Counts and delay percentiles (total and per stage) of one group."""
    delays = {"total": _pct(stats.delays.total)}
    delays.update({stage: _pct(getattr(stats.delays, stage)) for stage in STAGES})
    return {
        **stats.key,
        **{name: getattr(stats, name) for name in COUNTS},
        "delays": delays,
    }


def compact_summary(summary: Summary) -> dict[str, Any]:
    """A summary as the model reads it."""
    return {
        "totals": compact_stats(summary.totals),
        "groups": [compact_stats(g) for g in summary.groups],
    }


def _window(scope: Scope) -> dict[str, str | None]:
    return {"since": format_time(scope.since), "until": format_time(scope.until)}


class GetSummary(Tool):
    """``get_summary``: counts and delay percentiles, optionally grouped."""

    name = "get_summary"
    description = (
        "Recipients delivered, bounced, expired and deferred, deferral attempts, "
        "and delay percentiles (total and per Postfix stage: before_queue_manager, "
        "queue_manager, connection_setup, transmission) for a window, optionally "
        "grouped by tenant, domain, transport, cause, relay or host. " + COUNTING_RULES
    )
    params: ClassVar[type[SummaryParams]] = SummaryParams

    def run(self, ctx: ToolContext, params: SummaryParams) -> ToolResult:
        resolved = route(ctx, params)
        summary = ctx.store.summary(resolved.scope, params.group_by, limit=params.limit)
        data = {"window": _window(resolved.scope), **compact_summary(summary)}
        empty = not any(getattr(summary.totals, name) for name in COUNTS)
        return ToolResult(
            status="no_data" if empty else "success",
            message=resolved.note or "",
            data=data,
        )


class TimeseriesParams(RouteParams):
    """Parameters of ``get_timeseries``."""

    interval: str = Field(
        default="5m", description="Bucket width: 30s, 1m, 5m, 1h, 1d ..."
    )
    group_by: list[GroupBy] = Field(default_factory=list, max_length=2)


class GetTimeseries(Tool):
    """``get_timeseries``: the summary's counts per time bucket."""

    name = "get_timeseries"
    description = (
        "Counts and p95 delay per time bucket (and group), to see when something "
        "started or stopped. Keep the number of buckets small: a window of an hour "
        "in 5m buckets, a day in 1h buckets."
    )
    params: ClassVar[type[TimeseriesParams]] = TimeseriesParams

    def run(self, ctx: ToolContext, params: TimeseriesParams) -> ToolResult:
        resolved = route(ctx, params)
        seconds = parse_duration(params.interval, parameter="interval")
        series = ctx.store.timeseries(resolved.scope, seconds, params.group_by)
        points = [
            {
                "ts": format_time(p.ts),
                **p.key,
                **{name: getattr(p, name) for name in COUNTS},
                "p95_delay": p.delays.total.p95,
            }
            for p in series.points
        ]
        data = {"window": _window(resolved.scope), "points": points}
        return ToolResult(
            status="success" if points else "no_data",
            message=resolved.note or "",
            data=data,
        )


class CompareParams(RouteParams):
    """Parameters of ``compare_windows``."""

    baseline_since: str | None = Field(
        default=None,
        description="Start of the window to compare with; default: the window of "
        "the same length just before.",
    )
    baseline_until: str | None = None
    group_by: list[GroupBy] = Field(default_factory=list, max_length=2)
    limit: int = Field(default=20, ge=1, le=100)


class CompareWindows(Tool):
    """``compare_windows``: two windows side by side, with the changes."""

    name = "compare_windows"
    description = (
        "Compare a window with a baseline window (by default the window of the "
        "same length just before it): counts and delay percentiles of both, and "
        "the change of each count and of the p95 delay, per group when group_by "
        "is given. Use it to tell what is new from what is usual."
    )
    params: ClassVar[type[CompareParams]] = CompareParams

    def run(self, ctx: ToolContext, params: CompareParams) -> ToolResult:
        resolved = route(ctx, params)
        current = resolved.scope
        if current.since is None or current.until is None:
            current = current.replace(
                since=current.since if current.since is not None else ctx.now - 3600,
                until=current.until if current.until is not None else ctx.now,
            )
        baseline = self._baseline(current, params, ctx.now)
        now = ctx.store.summary(current, params.group_by, limit=params.limit)
        before = ctx.store.summary(baseline, params.group_by, limit=params.limit)
        data = {
            "window": _window(current),
            "baseline": _window(baseline),
            "changes": _changes(now, before),
        }
        return ToolResult(status="success", message=resolved.note or "", data=data)

    @staticmethod
    def _baseline(current: Scope, params: CompareParams, now: float) -> Scope:
        assert current.since is not None and current.until is not None
        if params.baseline_since is None:
            length = current.until - current.since
            return current.replace(since=current.since - length, until=current.since)
        start, end = parse_window(params.baseline_since, params.baseline_until, now=now)
        return current.replace(since=start, until=end)


def _changes(now: Summary, before: Summary) -> list[dict[str, Any]]:
    previous = {tuple(sorted(g.key.items())): g for g in before.groups}
    rows = [_change(now.totals, before.totals)]
    for group in now.groups:
        rows.append(_change(group, previous.get(tuple(sorted(group.key.items())))))
    return rows


def _change(now: GroupStats, before: GroupStats | None) -> dict[str, Any]:
    row: dict[str, Any] = dict(now.key) or {"group": "totals"}
    for name in COUNTS:
        old = getattr(before, name) if before else 0
        row[name] = {"window": getattr(now, name), "baseline": old}
    row["p95_delay"] = {
        "window": now.delays.total.p95,
        "baseline": before.delays.total.p95 if before else None,
    }
    return row
