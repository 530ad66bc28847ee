"""The report of ``mailtriage report``: what pflogsumm summarises and more, from the
store's queries, as one JSON document or as text.

The JSON contract: ``window``, ``counting_rules``, ``totals`` (the five delivery
counts plus received, rejected, held, discarded, bytes), ``delays`` (p50/p95/p99
overall and per Postfix stage, final outcomes only), ``by_tenant`` and ``by_domain``
(each entry the five counts, the ``tenant``/``domain`` and its delays),
``by_transport``, ``top_senders``, ``top_recipients``, ``causes`` (with an example
response each), ``reject_reasons``, ``events`` (warnings, errors, fatals, panics)
and ``unparsed`` (lines by program and the top shapes).
"""

from __future__ import annotations

from pydantic import Field

from mailtriage.app.store.base import (
    STAGES,
    CauseCount,
    DelayStats,
    DeliveryCounts,
    EventCount,
    GroupStats,
    Model,
    Percentiles,
    RejectReason,
    Scope,
    Store,
    TopRecipient,
    TopSender,
    UnparsedSummary,
)
from mailtriage.app.timeparse import format_time

COUNTING_RULES = {
    "delivered": "recipients whose final outcome in the window is sent",
    "bounced": "recipients whose final outcome in the window is bounced",
    "expired": "recipients whose final outcome in the window is expired "
    "(queue_lifetime reached)",
    "deferred": "recipients whose latest attempt in the window was deferred and "
    "who have no final outcome in it",
    "deferral_attempts": "deferred delivery attempts",
    "received": "messages queued by smtpd or pickup",
    "rejected": "refusals with action reject (smtpd, postscreen, cleanup, milter)",
    "delays": "percentiles of final outcomes only, never of deferred retries",
}
"""The rules, as the report states them beside its numbers."""

EVENT_CATEGORIES = ("warning", "error", "fatal", "panic")


class Window(Model):
    """The report's time window (RFC 3339, UTC) and tenant."""

    since: str | None = None
    until: str | None = None
    tenant: str | None = None


class Totals(DeliveryCounts):
    """The delivery counts and the traffic of the window."""

    received: int = 0
    rejected: int = 0
    held: int = 0
    discarded: int = 0
    bytes_received: int = 0
    bytes_delivered: int = 0


class TenantEntry(DeliveryCounts):
    """One tenant's counts and delays."""

    tenant: str
    delays: DelayStats = DelayStats()


class DomainEntry(DeliveryCounts):
    """One recipient domain's counts and delays."""

    domain: str
    delays: DelayStats = DelayStats()


class TransportEntry(DeliveryCounts):
    """One transport's counts and delays (smtp and lmtp differ most)."""

    transport: str
    delays: DelayStats = DelayStats()


class Report(Model):
    """Everything ``mailtriage report`` shows."""

    window: Window
    counting_rules: dict[str, str] = Field(default_factory=lambda: dict(COUNTING_RULES))
    totals: Totals
    delays: DelayStats
    by_tenant: list[TenantEntry]
    by_domain: list[DomainEntry]
    by_transport: list[TransportEntry]
    top_senders: list[TopSender]
    top_recipients: list[TopRecipient]
    causes: list[CauseCount]
    reject_reasons: list[RejectReason]
    events: list[EventCount]
    unparsed: UnparsedSummary


def _counts(group: GroupStats) -> dict[str, int]:
    return {
        "delivered": group.delivered,
        "bounced": group.bounced,
        "expired": group.expired,
        "deferred": group.deferred,
        "deferral_attempts": group.deferral_attempts,
    }


def build_report(
    store: Store, scope: Scope, *, top: int = 10, groups: int | None = 20
) -> Report:
    """The report over ``scope``; ``top`` bounds the top lists, ``groups`` the
    tenant, domain and transport lists (None: all of them)."""
    summary = store.summary(scope)
    traffic = store.traffic(scope)
    rejects = store.reject_counts(scope)
    totals = summary.totals
    by_tenant = store.summary(scope, ["tenant"], limit=groups).groups
    by_domain = store.summary(scope, ["domain"], limit=groups).groups
    by_transport = store.summary(scope, ["transport"], limit=groups).groups
    return Report(
        window=Window(
            since=format_time(scope.since),
            until=format_time(scope.until),
            tenant=scope.tenant_filter(),
        ),
        totals=Totals(
            **_counts(totals),
            received=traffic.received,
            rejected=rejects.get("reject", 0) + rejects.get("milter-reject", 0),
            held=rejects.get("hold", 0),
            discarded=rejects.get("discard", 0),
            bytes_received=traffic.bytes_received,
            bytes_delivered=traffic.bytes_delivered,
        ),
        delays=totals.delays,
        by_tenant=[
            TenantEntry(tenant=str(g.key["tenant"]), delays=g.delays, **_counts(g))
            for g in by_tenant
        ],
        by_domain=[
            DomainEntry(domain=str(g.key["domain"]), delays=g.delays, **_counts(g))
            for g in by_domain
        ],
        by_transport=[
            TransportEntry(
                transport=str(g.key["transport"]), delays=g.delays, **_counts(g)
            )
            for g in by_transport
        ],
        top_senders=store.top_senders(scope, top),
        top_recipients=store.top_recipients(scope, top),
        causes=store.causes(scope, top),
        reject_reasons=store.reject_reasons(scope, top),
        events=store.event_counts(scope, EVENT_CATEGORIES, top),
        unparsed=store.unparsed(scope, top),
    )


# ---------------------------------------------------------------- text form


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}s"
    if value < 3600:
        return f"{value:.0f}s"
    return f"{value / 3600:.1f}h"


def _pct_line(name: str, p: Percentiles) -> str:
    return (
        f"  {name:<22} p50 {_seconds(p.p50):>8}  p95 {_seconds(p.p95):>8}  "
        f"p99 {_seconds(p.p99):>8}  (n={p.count:,})"
    )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} GB"


def _table(
    title: str, header: list[str], rows: list[list[str]], align: str = ""
) -> list[str]:
    """A titled text table; ``align`` has one ``l`` or ``r`` per column (numbers
    right, text left; the first column is left by default)."""
    if not rows:
        return [title, "  (none)", ""]
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    out = [title]
    for row in [header, *rows]:
        cells = [
            str(c).ljust(w) if a == "l" else str(c).rjust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        ]
        out.append("  " + "  ".join(cells).rstrip())
    out.append("")
    return out


def _group_rows(
    entries: list[TenantEntry] | list[DomainEntry] | list[TransportEntry], name: str
) -> list[list[str]]:
    return [
        [
            str(getattr(e, name)),
            f"{e.delivered:,}",
            f"{e.bounced:,}",
            f"{e.expired:,}",
            f"{e.deferred:,}",
            f"{e.deferral_attempts:,}",
            _seconds(e.delays.total.p95),
        ]
        for e in entries
    ]


def render_text(report: Report) -> str:
    """The report as plain text for a terminal or a mail."""
    t = report.totals
    w = report.window
    lines = [
        "mailtriage report",
        f"  window: {w.since or 'start'} .. {w.until or 'end'}"
        + (f"  tenant: {w.tenant}" if w.tenant else ""),
        "",
        "Totals",
        f"  {t.received:>10,}  received ({_size(t.bytes_received)})",
        f"  {t.delivered:>10,}  delivered ({_size(t.bytes_delivered)})",
        f"  {t.deferred:>10,}  deferred, no final outcome yet "
        f"({t.deferral_attempts:,} deferral attempts)",
        f"  {t.bounced:>10,}  bounced",
        f"  {t.expired:>10,}  expired",
        f"  {t.rejected:>10,}  rejected",
        f"  {t.held:>10,}  held",
        f"  {t.discarded:>10,}  discarded",
        "",
        "Delays of final outcomes",
        _pct_line("total", report.delays.total),
    ]
    lines += [_pct_line(s, getattr(report.delays, s)) for s in STAGES]
    lines.append("")
    head = ["", "delivered", "bounced", "expired", "deferred", "deferrals", "p95"]
    lines += _table("By tenant", head, _group_rows(report.by_tenant, "tenant"))
    lines += _table(
        "By recipient domain", head, _group_rows(report.by_domain, "domain")
    )
    lines += _table("By transport", head, _group_rows(report.by_transport, "transport"))
    lines += _table(
        "Top senders",
        ["", "messages", "bytes"],
        [
            [s.sender or "<>", f"{s.messages:,}", _size(s.bytes)]
            for s in report.top_senders
        ],
    )
    lines += _table(
        "Top recipients",
        ["", "delivered", "bytes"],
        [
            [r.recipient, f"{r.delivered:,}", _size(r.bytes)]
            for r in report.top_recipients
        ],
    )
    lines += _table(
        "Causes of deferrals, bounces and expiries",
        ["", "kind", "attempts", "recipients", "example"],
        [
            [
                c.cause,
                "temporary" if c.temporary else "permanent",
                f"{c.attempts:,}",
                f"{c.recipients:,}",
                c.example[:70],
            ]
            for c in report.causes
        ],
        "llrrl",
    )
    lines += _table(
        "Reject reasons",
        ["", "cause", "count", "example"],
        [
            [r.action, r.cause, f"{r.count:,}", r.example[:70]]
            for r in report.reject_reasons
        ],
        "llrl",
    )
    lines += _table(
        "Warnings and panics",
        ["", "program", "count", "example"],
        [
            [e.category, e.program, f"{e.count:,}", e.example[:70]]
            for e in report.events
        ],
        "llrl",
    )
    u = report.unparsed
    lines += _table(
        f"Unparsed lines: {u.unparsed:,} of {u.lines:,}",
        ["program", "lines", "unparsed"],
        [
            [p.program or "(no envelope)", f"{p.lines:,}", f"{p.unparsed:,}"]
            for p in u.by_program
            if p.unparsed
        ],
    )
    lines += _table(
        "Top unparsed shapes",
        ["", "count", "shape"],
        [
            [s.program or "-", f"{s.count:,}", s.shape[:80] or f"({s.reason} not read)"]
            for s in u.shapes
        ],
        "lrl",
    )
    lines.append("Counting rules")
    lines += [f"  {k}: {v}" for k, v in report.counting_rules.items()]
    return "\n".join(lines) + "\n"
