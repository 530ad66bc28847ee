"""Times and durations as users type them, for the CLI and the API alike.

A time is RFC 3339 (``2026-12-03T16:00:00Z``, ``2026-12-03T17:00:00+01:00``; a date
alone is its midnight UTC, and a stamp without an offset is read as UTC), relative to
now (``-24h``, ``-15m``, ``-7d``, ``-30s``, ``-2w``), ``now``, or epoch seconds. A
duration is a number with an optional unit (``90``, ``30s``, ``1m``, ``1h``, ``1d``).
Invalid input raises ``QueryError`` naming the parameter, which the API answers
with a 400 and the CLI with its message.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from mailtriage.errors import QueryError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
_RELATIVE = re.compile(r"^-\s*(\d+(?:\.\d+)?)\s*([smhdw])$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_EPOCH = re.compile(r"^\d{9,12}(?:\.\d+)?$")


def parse_time(
    text: str, *, now: float | None = None, parameter: str = "time"
) -> float:
    """Epoch seconds of ``text`` (see the module docstring)."""
    value = text.strip()
    current = time.time() if now is None else now
    if value.lower() == "now":
        return current
    relative = _RELATIVE.match(value)
    if relative is not None:
        return current - float(relative[1]) * _UNITS[relative[2]]
    if _EPOCH.match(value):
        return float(value)
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(
            f"{parameter} {text!r} is neither an RFC 3339 time "
            "(2026-12-03T16:00:00Z) nor a relative one (-24h, -15m, -7d)",
            parameter=parameter,
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def parse_window(
    since: str | None,
    until: str | None,
    *,
    now: float | None = None,
) -> tuple[float | None, float | None]:
    """``since`` and ``until`` as epoch seconds; QueryError when ``until`` is not
    after ``since``."""
    current = time.time() if now is None else now
    start = None if since is None else parse_time(since, now=current, parameter="since")
    end = None if until is None else parse_time(until, now=current, parameter="until")
    if start is not None and end is not None and end <= start:
        raise QueryError(
            f"until ({until}) must be later than since ({since})", parameter="until"
        )
    return start, end


def parse_duration(text: str, *, parameter: str = "interval") -> float:
    """Seconds of a positive duration such as ``1m``, ``30s`` or ``90``."""
    found = _DURATION.match(text.strip())
    seconds = float(found[1]) * _UNITS[found[2] or "s"] if found else 0.0
    if seconds <= 0:
        raise QueryError(
            f"{parameter} {text!r} is not a positive duration such as 30s, 1m, 1h "
            "or 1d",
            parameter=parameter,
        )
    return seconds


def format_time(ts: float | None) -> str | None:
    """RFC 3339 in UTC, to the second (fractions kept when there are any)."""
    if ts is None:
        return None
    stamp = datetime.fromtimestamp(ts, UTC)
    spec = "seconds" if stamp.microsecond == 0 else "milliseconds"
    return stamp.isoformat(timespec=spec).replace("+00:00", "Z")
