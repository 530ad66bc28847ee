"""Findings about mail that was delivered late: which Postfix stage carries the time.

Postfix logs ``delays=a/b/c/d`` on every delivery (postconf(5),
``delay_logging_resolution_limit``): ``a`` before the queue manager (smtpd, cleanup,
and for a retry the time spent in the deferred queue), ``b`` in the queue manager
waiting for a delivery agent, ``c`` connection setup (DNS, TCP, greeting, HELO,
TLS), ``d`` transmission (the data phase and the final reply).

The rules:

1. A slow delivery is a final ``sent`` attempt with ``delay`` at or above
   ``slow_seconds`` (3 s by default, the product's first question).
2. Deliveries whose recipient was deferred earlier (in the window or its baseline)
   are left out: their ``a`` is the wait for a retry, and the deferral is a failure
   finding of its own.
3. Group the rest by tenant, recipient domain, transport and relay; each group is
   one finding. Its ``stage`` is the stage whose median over the slow deliveries
   exceeds the group's own baseline median (or zero without a baseline) the most.
4. For LMTP, compare Dovecot's own ``delivery_time`` plus ``session_time`` (from
   ``deliver_log_format``) with the stage: at least half of it means Dovecot's
   saving accounts for the delay; less means the time went elsewhere (the path to
   Dovecot, waiting for an lmtp process); none logged means it cannot be told.
5. A lone slow delivery is noise; a fifth of the group or 10 deliveries is a
   warning; anything between is info.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mailtriage.agents.failures import trend
from mailtriage.agents.findings import (
    SLOW_DELIVERY,
    Baseline,
    Evidence,
    Finding,
    Severity,
)
from mailtriage.agents.paging import MAX_PAGES, deliveries_filter, read_pages
from mailtriage.agents.remediation import remediation_for
from mailtriage.agents.volumes import GroupKey, Volumes, counted
from mailtriage.agents.window import Windows
from mailtriage.app.store.base import (
    MAX_LIMIT,
    STAGES,
    DeliveryItem,
    GroupStats,
    Scope,
    Store,
)
from mailtriage.app.timeparse import format_time

SLOW_SECONDS = 3.0
MAX_EVIDENCE = 5
DOVECOT_SHARE = 0.5

STAGE_FIELDS: dict[str, str] = dict(
    zip(
        STAGES,
        (
            "delay_before_qmgr",
            "delay_in_qmgr",
            "delay_conn_setup",
            "delay_transmission",
        ),
        strict=True,
    )
)

Accounting = Literal["dovecot", "path", "unknown"]
RecipientKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Slow:
    """The slow deliveries of one window, grouped, with what was left out."""

    groups: dict[GroupKey, list[DeliveryItem]]
    truncated: bool
    retried: dict[GroupKey, int]


def slow_findings(
    store: Store,
    windows: Windows,
    volumes: Volumes,
    *,
    slow_seconds: float = SLOW_SECONDS,
) -> list[Finding]:
    """The slow-delivery findings of the current window (see the module
    docstring)."""
    retried = _retried(store, windows)
    current = _slow(store, windows.current, retried, slow_seconds)
    baseline = _slow(store, windows.baseline, retried, slow_seconds)
    return [
        _finding(key, items, current, baseline, windows, volumes, slow_seconds)
        for key, items in current.groups.items()
    ]


def _retried(store: Store, windows: Windows) -> set[RecipientKey]:
    scope = windows.current.replace(since=windows.baseline.since)
    query = deliveries_filter(scope, status="deferred", limit=MAX_LIMIT)
    deferred, _ = read_pages(store, query)
    return {(d.message_key, d.recipient) for d in deferred}


def _slow(
    store: Store, scope: Scope, retried: set[RecipientKey], slow_seconds: float
) -> _Slow:
    query = deliveries_filter(
        scope, status="sent", final=True, min_delay=slow_seconds, limit=MAX_LIMIT
    )
    items, truncated = read_pages(store, query)
    groups: dict[GroupKey, list[DeliveryItem]] = {}
    left_out: dict[GroupKey, int] = {}
    for item in items:
        key = (item.tenant, item.recipient_domain, item.transport, item.relay_host)
        if (item.message_key, item.recipient) in retried:
            left_out[key] = left_out.get(key, 0) + 1
        else:
            groups.setdefault(key, []).append(item)
    return _Slow(groups, truncated, left_out)


def _finding(
    key: GroupKey,
    items: list[DeliveryItem],
    current: _Slow,
    baseline: _Slow,
    windows: Windows,
    volumes: Volumes,
    slow_seconds: float,
) -> Finding:
    tenant, domain, transport, relay = key
    group = volumes.current.get(key)
    reference = volumes.baseline.get(key)
    total = counted(group) if group else 0
    stage, stage_values = _stage(items, reference)
    accounting = _dovecot(items, stage_values) if transport == "lmtp" else None
    base_items = baseline.groups.get(key, [])
    base_total = counted(reference) if reference else 0
    remedy_key = stage or "transmission"
    if stage == "transmission" and accounting is not None:
        remedy_key = f"transmission:lmtp:{accounting}"
    stamps = [i.ts for i in items]
    return Finding(
        kind=SLOW_DELIVERY,
        tenant=tenant,
        domain=domain,
        relay=relay,
        stage=stage,
        recipients=len(items),
        share=round(min(1.0, len(items) / total), 4) if total else None,
        severity=_severity(len(items), total),
        temporary=None,
        first_seen=format_time(min(stamps)),
        last_seen=format_time(max(stamps)),
        baseline=Baseline(
            since=format_time(windows.baseline.since),
            until=format_time(windows.baseline.until),
            recipients=len(base_items),
            share=round(len(base_items) / base_total, 4) if base_total else None,
            delay_p95=_p95(reference, stage),
            trend=trend(len(items), len(base_items)),
        ),
        evidence=_evidence(items, stage),
        explanation=_explain(
            key, items, total, stage, stage_values, accounting, current, slow_seconds
        ),
        remediation=remediation_for(
            remedy_key, domain=domain, relay=relay, transport=transport
        ),
    )


def _severity(slow: int, total: int) -> Severity:
    if slow <= 1:
        return "noise"
    if slow >= 10 or (total and slow / total >= 0.2):
        return "warning"
    return "info"


def _stage_values(items: Iterable[DeliveryItem], stage: str) -> list[float]:
    name = STAGE_FIELDS[stage]
    values = (getattr(item, name) for item in items)
    return [float(v) for v in values if v is not None]


def _stage(
    items: Sequence[DeliveryItem], reference: GroupStats | None
) -> tuple[str | None, list[float]]:
    """The stage whose median exceeds its baseline median the most."""
    best: tuple[str | None, float, list[float]] = (None, float("-inf"), [])
    for stage in STAGES:
        values = _stage_values(items, stage)
        if not values:
            continue
        excess = statistics.median(values) - _p50(reference, stage)
        if excess > best[1]:
            best = (stage, excess, values)
    return best[0], best[2]


def _percentile(
    stats: GroupStats | None, stage: str | None, pick: Callable[[Any], Any]
) -> float | None:
    if stats is None or stage is None:
        return None
    value = pick(getattr(stats.delays, stage))
    return float(value) if value is not None else None


def _p50(stats: GroupStats | None, stage: str) -> float:
    # A baseline of fewer than three outcomes says nothing about normal.
    if stats is None or getattr(stats.delays, stage).count < 3:
        return 0.0
    return _percentile(stats, stage, lambda p: p.p50) or 0.0


def _p95(stats: GroupStats | None, stage: str | None) -> float | None:
    return _percentile(stats, stage, lambda p: p.p95)


def _dovecot_seconds(item: DeliveryItem) -> float | None:
    side = item.dovecot
    if side is None or side.delivery_time_ms is None:
        return None
    return (side.delivery_time_ms + (side.session_time_ms or 0.0)) / 1000.0


def _dovecot(items: Sequence[DeliveryItem], stage_values: list[float]) -> Accounting:
    own = [s for s in map(_dovecot_seconds, items) if s is not None]
    if not own or not stage_values:
        return "unknown"
    share = statistics.median(own) / max(statistics.median(stage_values), 1e-9)
    return "dovecot" if share >= DOVECOT_SHARE else "path"


def _evidence(items: Sequence[DeliveryItem], stage: str | None) -> list[Evidence]:
    slowest = sorted(items, key=lambda i: (i.delay or 0.0, i.ts), reverse=True)
    field = STAGE_FIELDS.get(stage or "")
    return [
        Evidence(
            queue_id=i.queue_id,
            host=i.host,
            ts=format_time(i.ts) or "",
            recipient=i.recipient,
            response=i.response or None,
            delay=i.delay,
            stage_seconds=getattr(i, field) if field else None,
            dovecot_seconds=_dovecot_seconds(i),
        )
        for i in slowest[:MAX_EVIDENCE]
    ]


def _explain(
    key: GroupKey,
    items: Sequence[DeliveryItem],
    total: int,
    stage: str | None,
    stage_values: list[float],
    accounting: Accounting | None,
    current: _Slow,
    slow_seconds: float,
) -> str:
    tenant, domain, transport, relay = key
    delays = [i.delay for i in items if i.delay is not None]
    path = f"{domain} ({tenant}) via {transport}" + (f" to {relay}" if relay else "")
    parts = [
        f"{len(items)} of {total} recipient(s) of {path} took {slow_seconds:g} s or "
        f"more to deliver (median {_s(delays)}, max {max(delays, default=0):.2f} s)."
    ]
    if stage is not None:
        parts.append(
            f"The time is in Postfix's {stage} stage (median {_s(stage_values)} "
            "per delivery)."
        )
    if accounting is not None:
        parts.append(_dovecot_sentence(items, accounting))
    if current.retried.get(key):
        parts.append(
            f"{current.retried[key]} slow deliveries of recipients deferred earlier "
            "are left out: their wait for a retry belongs to the deferral."
        )
    if current.truncated:
        parts.append(
            f"Only the newest {MAX_PAGES * MAX_LIMIT} slow deliveries of the window "
            "were examined, so the counts are lower bounds."
        )
    return " ".join(parts)


def _dovecot_sentence(items: Sequence[DeliveryItem], accounting: Accounting) -> str:
    own = [s for s in map(_dovecot_seconds, items) if s is not None]
    hosts = sorted({i.dovecot.host for i in items if i.dovecot and i.dovecot.host})
    where = f" on {', '.join(hosts)}" if hosts else ""
    if accounting == "unknown":
        return (
            "Dovecot's own timings are not logged for these deliveries "
            "(deliver_log_format has no %{delivery_time})."
        )
    if accounting == "dovecot":
        return (
            f"Dovecot's own timings{where} (delivery_time + session_time, median "
            f"{_s(own)}) account for it."
        )
    return (
        f"Dovecot's own timings{where} (delivery_time + session_time, median "
        f"{_s(own)}) do not account for it: the time is spent between Postfix and "
        "Dovecot."
    )


def _s(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{statistics.median(present):.2f} s" if present else "unknown"
