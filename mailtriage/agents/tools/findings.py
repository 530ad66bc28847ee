"""The findings tool: the deterministic triage of ``mailtriage.agents.triage``."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from mailtriage.agents.tools.base import (
    Tool,
    ToolContext,
    ToolResult,
    WindowParams,
    window,
)
from mailtriage.agents.triage import analyze


class FindingsParams(WindowParams):
    """Parameters of ``get_findings``."""

    slow_seconds: float = Field(
        default=3.0,
        ge=0.1,
        le=3600,
        description="A delivery this slow or slower counts as slow.",
    )
    include_noise: bool = Field(
        default=False, description="Also list findings rated as noise."
    )
    limit: int = Field(default=10, ge=1, le=50, description="Top findings kept.")


class GetFindings(Tool):
    """``get_findings``: ranked failures and slowness with causes and fixes."""

    name = "get_findings"
    description = (
        "Ranked findings for a window, each compared with the window of the same "
        "length before it: failures by recipient domain and cause (with share of "
        "recipients, temporary or permanent, trend), slow deliveries with the "
        "Postfix delay stage that carries the time and, for LMTP, whether "
        "Dovecot's own timings account for it. Each finding has evidence (queue "
        "IDs, responses) and a remediation. Start here for 'what is wrong' "
        "questions. Without since/until: the last hour of the data."
    )
    params: ClassVar[type[FindingsParams]] = FindingsParams

    def run(self, ctx: ToolContext, params: FindingsParams) -> ToolResult:
        resolved = window(ctx, params)
        report = analyze(
            ctx.store, resolved.scope, now=ctx.now, slow_seconds=params.slow_seconds
        )
        shown = report.findings if params.include_noise else report.incidents()
        findings = shown[: params.limit]
        data = report.model_copy(update={"findings": findings}).model_dump()
        notes = [resolved.note] if resolved.note else []
        if len(shown) > len(findings):
            notes.append(
                f"{len(shown) - len(findings)} lower-ranked finding(s) left out"
            )
        if len(report.findings) > len(report.incidents()) and not params.include_noise:
            noise = len(report.findings) - len(report.incidents())
            notes.append(f"{noise} finding(s) rated noise left out")
        if not findings:
            return ToolResult(
                status="no_data",
                message="; ".join(["nothing failed or was slow in the window", *notes]),
                data=data,
            )
        return ToolResult(status="success", message="; ".join(notes), data=data)
