"""Deterministic triage: ranked findings over a window, against a baseline.

``analyze(store, scope)`` needs no LLM. It bounds the scope's window (the last hour
of the data when no time is given), puts a baseline window of the same length
before it, and asks the store's query layer for:

- failures by recipient domain and cause (``mailtriage.agents.failures``);
- slow deliveries by tenant, domain, transport and relay, with the Postfix delay
  stage that carries the time (``mailtriage.agents.slowness``).

Findings are ranked by severity (critical, warning, info, noise), then by the
recipients they affect. The store passed in decides what the caller may see: hand
it a ``ConfinedStore`` for a tenant.
"""

from __future__ import annotations

import time

from mailtriage.agents.failures import failure_findings
from mailtriage.agents.findings import SEVERITIES, Finding, TriageReport, TriageWindow
from mailtriage.agents.slowness import SLOW_SECONDS, slow_findings
from mailtriage.agents.volumes import Volumes
from mailtriage.agents.window import triage_windows
from mailtriage.app.store.base import ConfinedStore, Scope, Store
from mailtriage.app.timeparse import format_time


def analyze(
    store: Store,
    scope: Scope,
    *,
    now: float | None = None,
    slow_seconds: float = SLOW_SECONDS,
) -> TriageReport:
    """The ranked findings of ``scope`` (see the module docstring)."""
    windows = triage_windows(store, scope, now=time.time() if now is None else now)
    volumes = Volumes.load(store, windows)
    findings = failure_findings(store, windows, volumes)
    findings += slow_findings(store, windows, volumes, slow_seconds=slow_seconds)
    window = TriageWindow(
        since=format_time(windows.current.since),
        until=format_time(windows.current.until),
        baseline_since=format_time(windows.baseline.since),
        baseline_until=format_time(windows.baseline.until),
        tenant=_tenant_of(store, scope),
        domain=scope.domain,
    )
    return TriageReport(window=window, findings=rank(findings))


def _tenant_of(store: Store, scope: Scope) -> str | None:
    """The tenant the findings are confined or filtered to."""
    if isinstance(store, ConfinedStore):
        return store.tenant
    return scope.confined or scope.tenant


def rank(findings: list[Finding]) -> list[Finding]:
    """Most severe first; then most recipients; then by kind and scope, so that
    the order does not depend on the store's."""
    return sorted(
        findings,
        key=lambda f: (
            SEVERITIES.index(f.severity),
            -f.recipients,
            f.kind,
            f.tenant or "",
            f.domain or "",
            f.relay or "",
        ),
    )


def render_text(report: TriageReport) -> str:
    """The report for a terminal: one numbered block per finding."""
    w = report.window
    scope = " ".join(
        part
        for part in (
            f"tenant {w.tenant}" if w.tenant else "",
            f"domain {w.domain}" if w.domain else "",
        )
        if part
    )
    lines = [
        f"mailtriage triage {scope}".rstrip(),
        f"  window   {w.since} .. {w.until}",
        f"  baseline {w.baseline_since} .. {w.baseline_until}",
        "",
    ]
    if not report.findings:
        lines.append("No findings: nothing failed and nothing was slow.")
    for n, finding in enumerate(report.findings, 1):
        lines += _finding_lines(n, finding)
    return "\n".join(lines) + "\n"


def _finding_lines(n: int, f: Finding) -> list[str]:
    where = " ".join(
        x
        for x in (
            f.tenant or "",
            f.domain or "",
            f"via {f.relay}" if f.relay else "",
            f"stage {f.stage}" if f.stage else "",
        )
        if x
    )
    share = f" ({f.share:.0%})" if f.share is not None else ""
    kind = {True: ", temporary", False: ", permanent", None: ""}[f.temporary]
    lines = [
        f"{n:>2}. {f.severity.upper():<8} {f.kind}  {where}",
        f"    {f.recipients} recipient(s){share}{kind}; baseline "
        f"{f.baseline.recipients} ({f.baseline.trend}); seen {f.first_seen} .. "
        f"{f.last_seen}",
        f"    {f.explanation}",
    ]
    for e in f.evidence:
        detail = e.response or ""
        if e.delay is not None:
            detail = f"delay {e.delay:g} s; {detail}"
        lines.append(f"    - {e.queue_id} {e.recipient or ''}: {detail[:160]}")
    lines += [f"    fix: {f.remediation}", ""]
    return lines
