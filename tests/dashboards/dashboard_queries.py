"""The PromQL of the dashboards and alert rules, read for the tests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
RULES = DASHBOARDS / "alerts" / "mailtriage.rules.yml"

# PromQL words that look like metric names but are not (the language's keywords and
# the literals inf/nan).
_KEYWORDS = frozenset((
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
    "bool", "and", "or", "unless", "inf", "nan", "atan2",
))  # fmt: skip
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)"
)
_NAME = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)(?!\s*bool\b)")


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON file, by file name."""
    return {
        path.name: json.loads(path.read_text())
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    found = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, expr)`` for every target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(variable, series selector, label)`` of every ``label_values`` variable."""
    found = []
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]
        text = query if isinstance(query, str) else query["query"]
        match = _LABEL_VALUES.match(text)
        if match is None:
            raise ValueError(f"variable {var['name']}: not label_values(...): {text}")
        found.append((var["name"], match[1].strip(), match[2]))
    return found


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups of the alert rules file."""
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def rules() -> list[dict[str, Any]]:
    """Every recording and alerting rule."""
    return [rule for group in rule_groups() for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    Strings, label matchers, ranges and grouping clauses are removed first; what is
    left that looks like a name and is not called as a function is a metric.
    """
    text = _STRING.sub('""', expr)
    previous = None
    while previous != text:
        previous = text
        text = _BRACES.sub(" ", text)
        text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _NAME.findall(text) if name not in _KEYWORDS}


def variables(expr: str) -> set[str]:
    """The Grafana variables an expression uses (``$x`` and ``${x}``)."""
    return {a or b for a, b in _VARIABLE.findall(expr)}


def substitute(expr: str, values: dict[str, str]) -> str:
    """``expr`` with Grafana's variables replaced by ``values``."""

    def one(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        return values[name]

    return _VARIABLE.sub(one, expr)


def with_bool(expr: str) -> str:
    """``expr`` with every comparison turned into a ``bool`` comparison, so that an
    alert expression returns its series (as 0 or 1) whether it fires or not.
    Label matchers (inside braces) and strings are left alone."""
    out = []
    depth = 0
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            end = expr.index(char, i + 1)
            out.append(expr[i : end + 1])
            i = end + 1
            continue
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            match = _COMPARISON.match(expr, i)
            if match is not None:
                out.append(match[1] + " bool")
                i = match.end()
                continue
        out.append(char)
        i += 1
    return "".join(out)
