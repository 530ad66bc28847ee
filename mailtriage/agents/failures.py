"""Findings about mail that was deferred, bounced or expired, by domain and cause.

The rules, in order:

1. Count failed recipients per recipient domain and cause (``Store.failures``
   grouped by tenant and domain; a recipient has one tenant and one domain, so the
   sums are exact). A domain that several tenants send to is one finding; its
   ``tenant`` is named when only one tenant is affected.
2. Attribute each finding to a relay or MDA host when at least 90 % of its failed
   recipients went through one host (``Store.failures`` grouped by domain and relay;
   for connection failures, where Postfix logs no ``relay=``, the host is read from
   the ``connect to host[ip]:port`` text).
3. Fold ``expired`` recipients of a domain into that domain's largest temporary
   cause: expiry is where a deferral cause ends, not a cause of its own.
4. Rate it: see ``severity``. Compare it with the same domain and cause in the
   baseline window: ``new``, ``rising``, ``steady`` or ``falling``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mailtriage.agents.findings import Baseline, Evidence, Finding, Severity, Trend
from mailtriage.agents.remediation import remediation_for
from mailtriage.agents.volumes import Volumes
from mailtriage.agents.window import Windows
from mailtriage.app.store.base import FailureGroup, FailureSample, Store
from mailtriage.app.timeparse import format_time

RELAY_SHARE = 0.9
"""The share of a finding's failed recipients one host must carry to be named."""

MAX_EVIDENCE = 5

NOISE_CAUSES = frozenset({"greylisting"})
"""Temporary causes that are expected behaviour when the mail got through."""

# Postfix names the peer in its own texts: "connect to mda1[10.0.0.5]:24: Connection
# refused", "host mx.example[192.0.2.1] said: ...", "lost connection with
# mx.example[192.0.2.1] while ...", "conversation with mx.example[...] timed out".
_PEER = re.compile(
    r"(?:connect to|host|lost connection with|conversation with) "
    r"([A-Za-z0-9._-]+)\[[^\]]*\]"
)


@dataclass(slots=True)
class _Failure:
    """Failed recipients of one domain and cause, summed over tenants."""

    domain: str
    cause: str
    tenants: Counter[str] = field(default_factory=Counter)
    permanent: bool = False
    attempts: int = 0
    recipients: int = 0
    recovered: int = 0
    expired: int = 0
    first_seen: float = float("inf")
    last_seen: float = float("-inf")
    samples: list[FailureSample] = field(default_factory=list)

    def add(self, group: FailureGroup) -> None:
        tenant = group.key.get("tenant") or "unassigned"
        self.tenants[tenant] += group.recipients
        self.permanent = self.permanent or group.temporary is False
        self.attempts += group.attempts
        self.recipients += group.recipients
        self.recovered += group.recovered
        self.first_seen = min(self.first_seen, group.first_seen)
        self.last_seen = max(self.last_seen, group.last_seen)
        self.samples.extend(group.samples)

    @property
    def unrecovered(self) -> int:
        return self.recipients - self.recovered


def failure_findings(store: Store, windows: Windows, volumes: Volumes) -> list[Finding]:
    """The failure findings of the current window (see the module docstring)."""
    current = _merge(store.failures(windows.current, ["tenant", "domain"]))
    baseline = _merge(store.failures(windows.baseline, ["tenant", "domain"]))
    relays = _relays(store.failures(windows.current, ["domain", "relay"]))
    _fold_expired(current)
    findings = []
    for key, failure in current.items():
        before = baseline.get(key)
        relay = relays.get(key)
        findings.append(_finding(failure, before, relay, windows, volumes))
    return findings


def _merge(groups: Iterable[FailureGroup]) -> dict[tuple[str, str], _Failure]:
    merged: dict[tuple[str, str], _Failure] = {}
    for group in groups:
        domain = group.key.get("domain") or ""
        key = (domain, group.cause)
        merged.setdefault(key, _Failure(domain, group.cause)).add(group)
    return merged


def _relays(groups: Iterable[FailureGroup]) -> dict[tuple[str, str], str | None]:
    """The one host carrying most failed recipients of each domain and cause."""
    counts: dict[tuple[str, str], Counter[str]] = {}
    for group in groups:
        host = group.key.get("relay") or _peer_of(group.samples)
        key = (group.key.get("domain") or "", group.cause)
        counts.setdefault(key, Counter())[host or ""] += group.recipients
    named: dict[tuple[str, str], str | None] = {}
    for key, counter in counts.items():
        host, n = counter.most_common(1)[0]
        total = sum(counter.values())
        named[key] = host if host and total and n / total >= RELAY_SHARE else None
    return named


def _peer_of(samples: Sequence[FailureSample]) -> str | None:
    for sample in samples:
        found = _PEER.search(sample.response)
        if found is not None:
            return found.group(1)
    return None


def _fold_expired(failures: dict[tuple[str, str], _Failure]) -> None:
    """Count expired recipients on their domain's largest temporary cause."""
    for key in [k for k in failures if k[1] == "expired"]:
        expired = failures[key]
        causes = [
            f
            for f in failures.values()
            if f.domain == expired.domain
            and not f.permanent
            and f.cause != "expired"
            and f.unrecovered
        ]
        if not causes:
            continue
        target = max(causes, key=lambda f: f.unrecovered)
        target.expired += expired.recipients
        target.last_seen = max(target.last_seen, expired.last_seen)
        del failures[key]


def severity(failure: _Failure, share: float | None) -> Severity:
    """How much a failure matters.

    Expired mail was returned undelivered: critical for at least 3 recipients or
    half the domain's mail, else warning. Mail that all got through on retry is noise
    when it was greylisting or one recipient, else info. Greylisting still
    waiting for its retry is info: that is how greylisting works. Other
    temporary failures still waiting are critical for at least 2 recipients and
    half the domain's mail (a destination that takes nothing), else warning.
    Permanent failures are critical for at least 3 recipients and a fifth of the
    domain's mail, warning for 2 or more, info for a lone bounce.
    """
    wide = share is not None
    if failure.expired:
        lost = failure.expired >= 3 or (wide and (share or 0) >= 0.5)
        return "critical" if lost else "warning"
    if failure.unrecovered == 0:
        lone = failure.recipients <= 1
        return "noise" if lone or failure.cause in NOISE_CAUSES else "info"
    if failure.cause in NOISE_CAUSES:
        return "info"
    if not failure.permanent:
        many = failure.unrecovered >= 2 and wide and (share or 0) >= 0.5
        return "critical" if many else "warning"
    if failure.recipients >= 3 and wide and (share or 0) >= 0.2:
        return "critical"
    return "warning" if failure.recipients >= 2 else "info"


def trend(current: int, baseline: int) -> Trend:
    """``new`` without a baseline; ``rising``/``falling`` past a factor of 1.5."""
    if baseline == 0:
        return "new"
    if current >= 1.5 * baseline:
        return "rising"
    if current * 1.5 <= baseline:
        return "falling"
    return "steady"


def _finding(
    failure: _Failure,
    before: _Failure | None,
    relay: str | None,
    windows: Windows,
    volumes: Volumes,
) -> Finding:
    total = volumes.recipients(failure.domain)
    share = _share(failure.recipients, total)
    base_total = volumes.baseline_recipients(failure.domain)
    base_n = before.recipients if before else 0
    tenant = next(iter(failure.tenants)) if len(failure.tenants) == 1 else None
    return Finding(
        kind=failure.cause,
        tenant=tenant,
        domain=failure.domain or None,
        relay=relay,
        stage=None,
        recipients=failure.recipients,
        share=share,
        severity=severity(failure, share),
        temporary=not failure.permanent,
        first_seen=format_time(failure.first_seen),
        last_seen=format_time(failure.last_seen),
        baseline=Baseline(
            since=format_time(windows.baseline.since),
            until=format_time(windows.baseline.until),
            recipients=base_n,
            share=_share(base_n, base_total),
            trend=trend(failure.recipients, base_n),
        ),
        evidence=_evidence(failure.samples),
        explanation=_explain(failure, total, relay, volumes),
        remediation=remediation_for(
            failure.cause,
            domain=failure.domain or None,
            relay=relay,
            transport=volumes.transport_of(failure.domain),
        ),
    )


def _share(n: int, total: int) -> float | None:
    return round(min(1.0, n / total), 4) if total else None


def _evidence(samples: Sequence[FailureSample]) -> list[Evidence]:
    seen: set[tuple[str, str]] = set()
    evidence = []
    for s in sorted(samples, key=lambda s: s.ts, reverse=True):
        if (s.queue_id, s.recipient) in seen:
            continue
        seen.add((s.queue_id, s.recipient))
        evidence.append(
            Evidence(
                queue_id=s.queue_id,
                host=s.host,
                ts=format_time(s.ts) or "",
                recipient=s.recipient,
                response=s.response or None,
            )
        )
    return evidence[:MAX_EVIDENCE]


def _explain(failure: _Failure, total: int, relay: str | None, volumes: Volumes) -> str:
    kind = "permanent" if failure.permanent else "temporary"
    domain = failure.domain or "(no domain)"
    parts = [
        f"{failure.recipients} recipient(s) of {domain} failed with "
        f"{failure.cause} ({kind}) in {failure.attempts} attempt(s)"
        + (f", out of {total} recipient(s) of {domain} in the window" if total else "")
        + "."
    ]
    if len(failure.tenants) > 1:
        who = ", ".join(f"{t} {n}" for t, n in failure.tenants.most_common())
        parts.append(f"Tenants affected: {who}.")
    if failure.recovered:
        parts.append(
            f"{failure.recovered} {_was(failure.recovered)} delivered on a later "
            "attempt."
        )
    if failure.expired:
        parts.append(
            f"{failure.expired} expired (maximal_queue_lifetime reached) and "
            f"{_was(failure.expired)} returned to the sender."
        )
    if relay:
        others = [r for r in volumes.delivering_relays(domain) if r != relay]
        parts.append(f"The failures went through {relay}.")
        if others:
            parts.append(f"Other hosts of {domain} delivered: {', '.join(others)}.")
    return " ".join(parts)


def _was(n: int) -> str:
    return "was" if n == 1 else "were"
