"""The delivery tools: search recipient attempts (with counts by group) and trace
one message. Items are trimmed to what a diagnosis needs, so that results stay
small enough for the model."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from mailtriage.agents.paging import MAX_PAGES, deliveries_filter, read_pages
from mailtriage.agents.tools.base import (
    Params,
    RouteParams,
    Tool,
    ToolContext,
    ToolResult,
    route,
)
from mailtriage.app.store.base import (
    MAX_LIMIT,
    DeliveryItem,
    MessageTrace,
    Scope,
)
from mailtriage.app.timeparse import format_time

SearchGroup = Literal[
    "tenant", "domain", "relay", "transport", "status", "cause", "host"
]
_GROUP_FIELDS: dict[str, str] = {
    "tenant": "tenant",
    "domain": "recipient_domain",
    "relay": "relay_host",
    "transport": "transport",
    "status": "status",
    "cause": "cause",
    "host": "host",
}
TRACE_LINES = 40


class SearchParams(RouteParams):
    """Parameters of ``search_deliveries``."""

    recipient: str | None = Field(default=None, description="Recipient address.")
    sender: str | None = Field(default=None, description="Sender address.")
    status: Literal["sent", "deferred", "bounced", "expired"] | None = None
    cause: str | None = Field(
        default=None, description="A cause name, e.g. quota_exceeded."
    )
    queue_id: str | None = None
    min_delay: float | None = Field(
        default=None, ge=0, description="Only attempts with Postfix delay= >= this, s."
    )
    final: bool | None = Field(
        default=None, description="true: final outcomes only; false: retries only."
    )
    group_by: list[SearchGroup] = Field(
        default_factory=list,
        max_length=3,
        description="Count every matching attempt by these fields (up to 3).",
    )
    limit: int = Field(
        default=20, ge=0, le=100, description="Attempts listed, newest first."
    )


class SearchDeliveries(Tool):
    """``search_deliveries``: attempts matching filters, counted by group."""

    name = "search_deliveries"
    description = (
        "Find recipient delivery attempts by window, tenant, recipient domain, "
        "transport (lmtp for the MDA, smtp for remote), relay, status, cause, "
        "minimum delay (seconds) and more. Returns how many matched, counts and "
        "delays per group_by value (e.g. group_by=['tenant','domain'] to see who "
        "is affected), and the newest attempts with their Postfix delays "
        "(a/b/c/d stages), response and, for LMTP, Dovecot's own timings."
    )
    params: ClassVar[type[SearchParams]] = SearchParams

    def run(self, ctx: ToolContext, params: SearchParams) -> ToolResult:
        resolved = route(ctx, params)
        query = deliveries_filter(
            resolved.scope,
            recipient=params.recipient,
            sender=params.sender,
            status=params.status,
            cause=params.cause,
            queue_id=params.queue_id,
            min_delay=params.min_delay,
            final=params.final,
            limit=MAX_LIMIT,
        )
        items, truncated = read_pages(ctx.store, query)
        data: dict[str, Any] = {
            "window": _window(resolved.scope),
            "matched": len(items),
            "matched_is_lower_bound": truncated,
            "groups": _groups(items, params.group_by) if params.group_by else [],
            "items": [compact(i) for i in items[: params.limit]],
        }
        notes = [resolved.note] if resolved.note else []
        if truncated:
            notes.append(
                f"only the newest {MAX_PAGES * MAX_LIMIT} attempts were counted"
            )
        status = "success" if items else "no_data"
        return ToolResult(status=status, message="; ".join(notes), data=data)


def _window(scope: Scope) -> dict[str, str | None]:
    return {"since": format_time(scope.since), "until": format_time(scope.until)}


def _groups(
    items: Sequence[DeliveryItem], group_by: Sequence[str]
) -> list[dict[str, Any]]:
    buckets: dict[tuple[Any, ...], list[DeliveryItem]] = {}
    for item in items:
        key = tuple(getattr(item, _GROUP_FIELDS[g]) for g in group_by)
        buckets.setdefault(key, []).append(item)
    groups = []
    for key, members in sorted(buckets.items(), key=lambda kv: -len(kv[1])):
        delays = [m.delay for m in members if m.delay is not None]
        groups.append(
            {
                **dict(zip(group_by, key, strict=True)),
                "attempts": len(members),
                "recipients": len({(m.message_key, m.recipient) for m in members}),
                "median_delay": round(statistics.median(delays), 3) if delays else None,
                "max_delay": max(delays, default=None),
                "queue_ids": sorted({m.queue_id for m in members})[:5],
            }
        )
    return groups


def compact(item: DeliveryItem) -> dict[str, Any]:
    """The fields of an attempt that a diagnosis reads."""
    side = item.dovecot
    dovecot = None
    if side is not None:
        dovecot = {
            "host": side.host or None,
            "status": side.status,
            "mailbox": side.mailbox,
            "reason": side.reason,
            "delivery_time_s": _ms(side.delivery_time_ms),
            "session_time_s": _ms(side.session_time_ms),
        }
    return {
        "ts": format_time(item.ts),
        "queue_id": item.queue_id,
        "host": item.host,
        "tenant": item.tenant,
        "recipient": item.recipient,
        "domain": item.recipient_domain,
        "transport": item.transport,
        "relay": item.relay_host,
        "status": item.status,
        "final": item.final,
        "delay": item.delay,
        "delays": {
            "before_queue_manager": item.delay_before_qmgr,
            "queue_manager": item.delay_in_qmgr,
            "connection_setup": item.delay_conn_setup,
            "transmission": item.delay_transmission,
        },
        "dsn": item.dsn,
        "cause": item.cause,
        "response": item.response,
        "dovecot": dovecot,
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value / 1000.0, 4)


class TraceParams(Params):
    """Parameters of ``trace_message``."""

    queue_id: str = Field(min_length=1, max_length=64, description="Postfix queue ID.")
    host: str | None = Field(
        default=None, description="The host that logged it, when IDs repeat."
    )


class TraceMessage(Tool):
    """``trace_message``: the whole timeline of one queue ID."""

    name = "trace_message"
    description = (
        "The timeline of one message by Postfix queue ID: sender, size, client, "
        "every recipient's attempts with delays and responses, Dovecot's side of "
        "each LMTP delivery, bounce notifications and the raw log lines."
    )
    params: ClassVar[type[TraceParams]] = TraceParams

    def run(self, ctx: ToolContext, params: TraceParams) -> ToolResult:
        traces = ctx.store.trace(
            Scope(host=params.host), queue_id=params.queue_id, limit=5
        )
        if not traces:
            return ToolResult(
                status="no_data",
                message=f"no message with queue ID {params.queue_id!r} in scope",
            )
        return ToolResult(status="success", data=[_trace(t) for t in traces])


def _trace(trace: MessageTrace) -> dict[str, Any]:
    m = trace.message
    return {
        "queue_id": m.queue_id,
        "host": m.host,
        "received": format_time(m.first_ts),
        "last_seen": format_time(m.last_ts),
        "closed": m.closed,
        "origin": m.origin,
        "client": m.client_host or m.client_ip,
        "sasl_username": m.sasl_username,
        "message_id": m.message_id,
        "sender": m.sender,
        "size": m.size,
        "tenant": m.tenant,
        "deliveries": [compact(d) for d in trace.deliveries],
        "notifications": [n.queue_id for n in trace.notifications],
        "parent_queue_id": trace.parent.queue_id if trace.parent else None,
        "lines": [line.line for line in trace.lines[:TRACE_LINES]],
        "lines_left_out": max(0, len(trace.lines) - TRACE_LINES),
    }
