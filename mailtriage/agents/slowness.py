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
3. One finding per route (recipient domain and transport). Its tenant is named
   when only one tenant's mail was slow; its relay (the MDA host for LMTP) when at
   least 90 % of the slow deliveries went through one host. Its ``stage`` is the
   stage whose median over the slow deliveries exceeds the route's own baseline
   median (or zero without a baseline of three deliveries) the most.
4. For LMTP, compare Dovecot's own ``delivery_time`` plus ``session_time`` (from
   ``deliver_log_format``) with the stage: at least half of it means Dovecot's
   saving accounts for the delay; less means the time went elsewhere (the path to
   Dovecot, waiting for an lmtp process); none logged means it cannot be told.
5. Severity: a lone slow delivery is noise; a fifth of the route's deliveries is a
   warning; a new or rising tail of 5 % or 10 deliveries is info; a tail as thick
   as the baseline's is noise (every route has its slowest few percent).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from mailtriage.agents.failures import RELAY_SHARE, trend
from mailtriage.agents.findings import (
    SLOW_DELIVERY,
    Baseline,
    Evidence,
    Finding,
    Severity,
    Trend,
)
from mailtriage.agents.paging import MAX_PAGES, deliveries_filter, read_pages
from mailtriage.agents.remediation import remediation_for
from mailtriage.agents.volumes import Route, Volumes, counted
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
    """The slow deliveries of one window by route, with what was left out."""

    routes: dict[Route, list[DeliveryItem]]
    truncated: bool
    retried: Counter[Route]


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
        _Route(route, items, volumes, slow_seconds).finding(
            current, baseline.routes.get(route, []), windows
        )
        for route, items in current.routes.items()
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
    routes: dict[Route, list[DeliveryItem]] = {}
    left_out: Counter[Route] = Counter()
    for item in items:
        route = (item.recipient_domain, item.transport)
        if (item.message_key, item.recipient) in retried:
            left_out[route] += 1
        else:
            routes.setdefault(route, []).append(item)
    return _Slow(routes, truncated, left_out)


class _Route:
    """The slow deliveries of one route and what they say."""

    def __init__(
        self,
        route: Route,
        items: list[DeliveryItem],
        volumes: Volumes,
        slow_seconds: float,
    ) -> None:
        self.domain, self.transport = route
        self.route = route
        self.items = items
        self.slow_seconds = slow_seconds
        self.group = volumes.current.get(route)
        self.reference = volumes.baseline.get(route)
        self.tenants = Counter(i.tenant for i in items)
        self.relay = _dominant(i.relay_host for i in items)
        self.stage, self.stage_values = _stage(items, self.reference)
        self.accounting = _dovecot(items, self.stage_values) if self.lmtp else None

    @property
    def lmtp(self) -> bool:
        return self.transport == "lmtp"

    def finding(
        self, current: _Slow, base_items: list[DeliveryItem], windows: Windows
    ) -> Finding:
        total = counted(self.group) if self.group else 0
        base_total = counted(self.reference) if self.reference else 0
        share = _share(len(self.items), total)
        change = trend(len(self.items), len(base_items))
        stamps = [i.ts for i in self.items]
        return Finding(
            kind=SLOW_DELIVERY,
            tenant=next(iter(self.tenants)) if len(self.tenants) == 1 else None,
            domain=self.domain,
            relay=self.relay,
            stage=self.stage,
            recipients=len(self.items),
            share=share,
            severity=_severity(len(self.items), share, change),
            temporary=None,
            first_seen=format_time(min(stamps)),
            last_seen=format_time(max(stamps)),
            baseline=Baseline(
                since=format_time(windows.baseline.since),
                until=format_time(windows.baseline.until),
                recipients=len(base_items),
                share=_share(len(base_items), base_total),
                delay_p95=_p95(self.reference, self.stage),
                trend=change,
            ),
            evidence=self._evidence(),
            explanation=self._explain(total, current),
            remediation=remediation_for(
                self._remedy_key(),
                domain=self.domain,
                relay=self.relay,
                transport=self.transport,
            ),
        )

    def _remedy_key(self) -> str:
        stage = self.stage or "transmission"
        if stage == "transmission" and self.accounting is not None:
            return f"transmission:lmtp:{self.accounting}"
        return stage

    def _evidence(self) -> list[Evidence]:
        slowest = sorted(self.items, key=lambda i: (i.delay or 0.0, i.ts), reverse=True)
        field = STAGE_FIELDS.get(self.stage or "")
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

    def _explain(self, total: int, current: _Slow) -> str:
        delays = [i.delay for i in self.items if i.delay is not None]
        path = f"{self.domain} via {self.transport}"
        path += f" to {self.relay}" if self.relay else ""
        parts = [
            f"{len(self.items)} of {total} recipient(s) of {path} took "
            f"{self.slow_seconds:g} s or more to deliver (median {_s(delays)}, max "
            f"{max(delays, default=0):.2f} s)."
        ]
        if len(self.tenants) > 1:
            who = ", ".join(f"{t} {n}" for t, n in self.tenants.most_common())
            parts.append(f"Tenants: {who}.")
        if self.stage is not None:
            parts.append(
                f"The time is in Postfix's {self.stage} stage (median "
                f"{_s(self.stage_values)} per slow delivery)."
            )
        if self.accounting is not None:
            parts.append(_dovecot_sentence(self.items, self.accounting))
        if current.retried[self.route]:
            parts.append(
                f"{current.retried[self.route]} slow deliveries of recipients "
                "deferred earlier are left out: their wait for a retry belongs to "
                "the deferral."
            )
        if current.truncated:
            parts.append(
                f"Only the newest {MAX_PAGES * MAX_LIMIT} slow deliveries of the "
                "window were examined, so the counts are lower bounds."
            )
        return " ".join(parts)


def _dominant(relays: Iterable[str | None]) -> str | None:
    counter = Counter(r or "" for r in relays)
    relay, n = counter.most_common(1)[0]
    return relay if relay and n / sum(counter.values()) >= RELAY_SHARE else None


def _share(n: int, total: int) -> float | None:
    return round(min(1.0, n / total), 4) if total else None


def _severity(slow: int, share: float | None, change: Trend) -> Severity:
    if slow <= 1:
        return "noise"
    if share is not None and share >= 0.2:
        return "warning"
    thick = slow >= 10 or (share is not None and share >= 0.05)
    return "info" if thick and change in ("new", "rising") else "noise"


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


def _p50(stats: GroupStats | None, stage: str) -> float:
    # A baseline of fewer than three outcomes says nothing about normal.
    if stats is None:
        return 0.0
    p = getattr(stats.delays, stage)
    return float(p.p50) if p.count >= 3 and p.p50 is not None else 0.0


def _p95(stats: GroupStats | None, stage: str | None) -> float | None:
    if stats is None or stage is None:
        return None
    p95 = getattr(stats.delays, stage).p95
    return float(p95) if p95 is not None else None


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
