"""The agent's tools, one module per family, all over the store's query layer:

    get_findings        findings.py   the deterministic triage
    get_summary         stats.py      counts and delay percentiles
    get_timeseries      stats.py      the same per time bucket
    compare_windows     stats.py      a window against a baseline
    search_deliveries   deliveries.py attempts by filter, counted by group
    trace_message       deliveries.py one queue ID's timeline

``StoreToolBox`` runs them for one conversation over the caller's confined store.
"""

from __future__ import annotations

from typing import Any, Protocol

from mailtriage.agents.tools.base import Tool, ToolContext, ToolResult
from mailtriage.agents.tools.deliveries import SearchDeliveries, TraceMessage
from mailtriage.agents.tools.findings import GetFindings
from mailtriage.agents.tools.stats import CompareWindows, GetSummary, GetTimeseries

TOOLS: tuple[Tool, ...] = (
    GetFindings(),
    GetSummary(),
    SearchDeliveries(),
    TraceMessage(),
    GetTimeseries(),
    CompareWindows(),
)


class ToolBox(Protocol):
    """What the agent loop needs of its tools."""

    def specs(self) -> list[dict[str, Any]]:
        """The tools as chat-completions function declarations."""
        ...

    def run(self, name: str, arguments: str) -> ToolResult:
        """Run tool ``name`` with JSON ``arguments``; never raises."""
        ...


class StoreToolBox:
    """``TOOLS`` over one conversation's ``ToolContext``."""

    def __init__(self, ctx: ToolContext, tools: tuple[Tool, ...] = TOOLS) -> None:
        self.ctx = ctx
        self.tools = {tool.name: tool for tool in tools}

    def specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in self.tools.values()]

    def run(self, name: str, arguments: str) -> ToolResult:
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(self.tools)
            return ToolResult(
                status="error", message=f"there is no tool {name!r}; tools: {known}"
            )
        return tool.call(self.ctx, arguments)


__all__ = ["TOOLS", "StoreToolBox", "Tool", "ToolBox", "ToolContext", "ToolResult"]
