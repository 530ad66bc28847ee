"""Query parameters shared by the /v1 routes, turned into store scopes.

Each parameter is declared once here, with its description and example, so that
every route reads and documents it the same way. Values a type cannot check (times,
durations, group-by lists, causes) are checked here, and a bad one is a QueryError
naming the parameter (HTTP 400), never a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, cast

from fastapi import Query

from mailtriage.app.store.base import GROUP_BY, GroupBy, Scope
from mailtriage.app.timeparse import parse_duration, parse_window
from mailtriage.errors import QueryError
from mailtriage.parsers.classify import CAUSES

STATUSES = ("sent", "deferred", "bounced", "expired", "undeliverable", "deliverable")
TRANSPORTS = ("smtp", "lmtp", "local", "virtual", "pipe", "error", "discard", "retry")

_TIME_HELP = "RFC 3339 (``2026-12-03T16:00:00Z``) or relative to now (``-24h``)."

Since = Annotated[
    str | None,
    Query(
        max_length=64,
        description=f"Start of the window, inclusive. {_TIME_HELP}",
        examples=["-24h"],
    ),
]
Until = Annotated[
    str | None,
    Query(
        max_length=64,
        description=f"End of the window, exclusive. {_TIME_HELP}",
        examples=["2026-12-03T17:00:00Z"],
    ),
]
Tenant = Annotated[
    str | None,
    Query(
        max_length=128,
        description="A tenant of the config, or ``unassigned``. A tenant token "
        "may only name its own.",
        examples=["acme"],
    ),
]
Domain = Annotated[
    str | None,
    Query(max_length=255, description="Recipient domain.", examples=["acme.example"]),
]
Host = Annotated[
    str | None,
    Query(
        max_length=255, description="The host that logged the line.", examples=["mx1"]
    ),
]
Transport = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Delivery agent: " + ", ".join(TRANSPORTS) + ".",
        examples=["lmtp"],
    ),
]
Relay = Annotated[
    str | None,
    Query(
        max_length=255,
        description="The relay host Postfix delivered to.",
        examples=["mda1.acme.example"],
    ),
]
Limit = Annotated[
    int,
    Query(ge=1, le=1000, description="Items per page (1-1000).", examples=[100]),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=256,
        description="``next_cursor`` of the previous page.",
        examples=[None],
    ),
]
_DIMENSION = "(?:" + "|".join(GROUP_BY) + ")"
GroupByParam = Annotated[
    str | None,
    Query(
        max_length=128,
        pattern=f"^{_DIMENSION}(?:,{_DIMENSION})*$",
        description="Comma-separated dimensions: " + ", ".join(GROUP_BY) + ".",
        examples=["tenant", "tenant,cause"],
    ),
]
Interval = Annotated[
    str,
    Query(
        max_length=16,
        pattern=r"^\d+(?:\.\d+)?\s*[smhdw]?$",
        description="Bucket width: a number and a unit (s, m, h, d, w).",
        examples=["1m", "1h"],
    ),
]


def scope(since: str | None, until: str | None, **filters: str | None) -> Scope:
    """A ``Scope`` from the shared parameters; QueryError names a bad one."""
    start, end = parse_window(since or None, until or None)
    return Scope(since=start, until=end, **filters)


def group_by_param(value: str | None) -> list[GroupBy]:
    """``tenant,cause`` → ``["tenant", "cause"]``, each checked and once."""
    if not value:
        return []
    names = [name.strip() for name in value.split(",") if name.strip()]
    for name in names:
        if name not in GROUP_BY:
            raise QueryError(
                f"query parameter 'group_by': {name!r} is not one of "
                + ", ".join(GROUP_BY),
                parameter="group_by",
            )
    return cast(list[GroupBy], list(dict.fromkeys(names)))


MAX_INTERVAL_SECONDS = 366 * 86_400.0


def interval_param(value: str) -> float:
    """``1m`` → 60.0; QueryError for anything else or outside 1 s to 366 d."""
    seconds = parse_duration(value, parameter="interval")
    if not 1 <= seconds <= MAX_INTERVAL_SECONDS:
        raise QueryError(
            f"interval {value!r} must be between 1s and 366d", parameter="interval"
        )
    return seconds


def one_of(value: str | None, allowed: Sequence[str], name: str) -> str | None:
    """``value`` if it is one of ``allowed`` (or None); QueryError otherwise."""
    if value is None or value in allowed:
        return value
    raise QueryError(
        f"query parameter '{name}': {value!r} is not one of " + ", ".join(allowed),
        parameter=name,
    )


Cause = Annotated[
    str | None,
    Query(
        max_length=64,
        description="A cause name of the classifier.",
        json_schema_extra={"enum": [*CAUSES, None]},
        examples=["quota_exceeded"],
    ),
]
Status = Annotated[
    str | None,
    Query(
        max_length=32,
        description="Attempt status.",
        json_schema_extra={"enum": [*STATUSES, None]},
        examples=["deferred"],
    ),
]


def cause_param(value: str | None) -> str | None:
    """A cause name of the classifier, or None."""
    return one_of(value, CAUSES, "cause")
