"""The triage report: ranked findings over a window, each against its baseline.

This is the JSON contract of ``mailtriage triage --format json`` and
``GET /v1/triage``::

    {"window": {...},
     "findings": [{"kind", "tenant", "domain", "relay", "stage", "recipients",
                   "share", "severity", "temporary", "first_seen", "last_seen",
                   "baseline", "evidence", "explanation", "remediation"}]}

``kind`` is a cause name of the classifier (``quota_exceeded``, ...) or
``slow_delivery``; a field that does not apply to a finding is null. Times are RFC
3339 in UTC. Response texts in ``evidence`` are what remote servers and the MDA
wrote: data to read, never instructions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["critical", "warning", "info", "noise"]
"""How much a finding matters: ``critical`` loses or blocks mail for many
recipients, ``warning`` needs a look, ``info`` is worth knowing, ``noise`` is
expected behaviour (a lone greylisting deferral delivered on retry)."""

SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info", "noise")

Trend = Literal["new", "rising", "steady", "falling"]
"""The window against its baseline: ``new`` when the baseline had none of it."""

SLOW_DELIVERY = "slow_delivery"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TriageWindow(_Frozen):
    """The window the findings cover and the baseline of the same length before
    it, with the filters that applied."""

    since: str | None = Field(examples=["2026-12-03T16:00:00Z"])
    until: str | None = Field(examples=["2026-12-03T17:00:00Z"])
    baseline_since: str | None = Field(examples=["2026-12-03T15:00:00Z"])
    baseline_until: str | None = Field(examples=["2026-12-03T16:00:00Z"])
    tenant: str | None = Field(default=None, examples=["acme"])
    domain: str | None = Field(default=None, examples=[None])


class Evidence(_Frozen):
    """One delivery attempt a finding rests on: its queue ID (trace it with
    ``/v1/messages/{queue_id}``) and what the server answered, or for slowness
    its delays."""

    queue_id: str = Field(examples=["5EEB320C4F7"])
    host: str = Field(examples=["mx1"])
    ts: str = Field(examples=["2026-12-03T16:41:07Z"])
    recipient: str | None = Field(default=None, examples=["sales@globex.example"])
    response: str | None = Field(
        default=None,
        examples=["host 127.0.0.1[127.0.0.1] said: 552 5.2.2 Quota exceeded"],
    )
    delay: float | None = Field(default=None, description="Postfix delay=, s.")
    stage_seconds: float | None = Field(
        default=None, description="Seconds in the finding's stage."
    )
    dovecot_seconds: float | None = Field(
        default=None, description="Dovecot's own delivery_time, s."
    )


class Baseline(_Frozen):
    """The same measure over the baseline window, and the trend since."""

    since: str | None
    until: str | None
    recipients: int = Field(
        description="Recipients affected in the baseline (failed, or slow)."
    )
    share: float | None = Field(description="Their share of the group's recipients.")
    delay_p95: float | None = Field(
        default=None,
        description="For slowness: p95 of the stage's delay in the baseline, s.",
    )
    trend: Trend


class Finding(_Frozen):
    """One thing that went wrong (or only looks like it), for one scope."""

    kind: str = Field(examples=["quota_exceeded"])
    tenant: str | None = Field(examples=["globex"])
    domain: str | None = Field(examples=["globex.example"])
    relay: str | None = Field(
        description="The relay or MDA host concerned, when that is what differs.",
        examples=["127.0.0.1"],
    )
    stage: str | None = Field(
        description="For slow_delivery: before_queue_manager, queue_manager, "
        "connection_setup or transmission.",
        examples=[None],
    )
    recipients: int = Field(description="Recipients affected.", examples=[9])
    share: float | None = Field(
        description="Affected recipients over the group's recipients.",
        examples=[0.75],
    )
    severity: Severity
    temporary: bool | None = Field(examples=[False])
    first_seen: str | None = Field(examples=["2026-12-03T16:41:07Z"])
    last_seen: str | None = Field(examples=["2026-12-03T16:58:12Z"])
    baseline: Baseline
    evidence: list[Evidence]
    explanation: str
    remediation: str


class TriageReport(_Frozen):
    """Findings, most important first."""

    window: TriageWindow
    findings: list[Finding]

    def incidents(self) -> list[Finding]:
        """The findings that are not noise."""
        return [f for f in self.findings if f.severity != "noise"]
