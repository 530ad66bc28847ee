"""The scope a question names, read without an LLM: tenant, recipient domain, time,
transport and a slowness threshold.

Used when no LLM is configured or it failed, so that the deterministic findings
shown instead are those of what the user asked about. The rules are plain
patterns, tried in order; what none of them recognises is left open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_UNITS = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "week": "w", "weeks": "w",
}  # fmt: skip
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
# "the last 5 minutes", "past 2h", "previous 30 min"
_LAST_N = re.compile(
    rf"\b(?:last|past|previous)\s+(\d+(?:\.\d+)?)\s*({_UNIT})\b", re.IGNORECASE
)
# "the last hour", "past day"
_LAST_ONE = re.compile(
    r"\b(?:last|past|previous)\s+(second|minute|hour|day|week)\b", re.IGNORECASE
)
_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "noon": 12,
    "midnight": 0,
}  # fmt: skip
# "since ten", "since 10:30", "since 9 am"
_SINCE = re.compile(
    r"\bsince\s+(\d{1,2}|" + "|".join(_WORDS) + r")(?::(\d{2}))?\s*(am|pm)?\b",
    re.IGNORECASE,
)
# "slower than 3 s", "longer than 10 seconds", "over 2.5s"
_SLOWER = re.compile(
    r"\b(?:slower than|longer than|more than|over|above)\s+(\d+(?:\.\d+)?)\s*"
    r"(?:s|sec|secs|seconds?)\b",
    re.IGNORECASE,
)
_LMTP = re.compile(r"\blmtp\b", re.IGNORECASE)
_SLOW = re.compile(r"\b(?:slow\w*|late|delay\w*|takes? long)\b", re.IGNORECASE)
_DOMAIN = re.compile(
    r"(?<![\w.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,24}(?![\w-])",
    re.IGNORECASE,
)
# Words that look like domains in questions but name files.
_FILE_SUFFIXES = frozenset({"log", "txt", "conf", "cf", "md", "json", "gz", "py"})


@dataclass(frozen=True, slots=True)
class Hints:
    """What a question names; None where it names nothing."""

    tenant: str | None = None
    domain: str | None = None
    since: str | None = None
    until: str | None = None
    transport: str | None = None
    slow_seconds: float | None = None
    about_slowness: bool = False


def parse_hints(question: str, tenants: Iterable[str], *, now: float) -> Hints:
    """The hints of ``question``; ``tenants`` are the tenant names to look for."""
    since, until = _times(question, now)
    slower = _SLOWER.search(question)
    return Hints(
        tenant=_tenant(question, tenants),
        domain=_domain(question),
        since=since,
        until=until,
        transport="lmtp" if _LMTP.search(question) else None,
        slow_seconds=float(slower.group(1)) if slower else None,
        about_slowness=slower is not None or _SLOW.search(question) is not None,
    )


def _tenant(question: str, tenants: Iterable[str]) -> str | None:
    for name in sorted(tenants, key=len, reverse=True):
        if re.search(rf"(?<![\w.@-]){re.escape(name)}(?![\w-]|\.\w)", question, re.I):
            return name
    return None


def _domain(question: str) -> str | None:
    for found in _DOMAIN.finditer(question):
        domain = found.group(0).lower().rstrip(".")
        if domain.rpartition(".")[2] not in _FILE_SUFFIXES:
            return domain
    return None


def _times(question: str, now: float) -> tuple[str | None, str | None]:
    last = _LAST_N.search(question)
    if last is not None:
        return f"-{last.group(1)}{_UNITS[last.group(2).lower()]}", None
    one = _LAST_ONE.search(question)
    if one is not None:
        return f"-1{one.group(1)[0].lower()}", None
    since = _SINCE.search(question)
    if since is not None:
        return _since_clock(since, now), None
    lowered = question.lower()
    midnight = datetime.fromtimestamp(now, UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    if "yesterday" in lowered:
        start = midnight - timedelta(days=1)
        return start.isoformat(), midnight.isoformat()
    if "today" in lowered:
        return midnight.isoformat(), None
    return None, None


def _since_clock(found: re.Match[str], now: float) -> str:
    """The latest past moment showing that clock time (UTC). Without am/pm,
    "since ten" is 10:00 or 22:00, whichever came last."""
    word, minutes, half = found.group(1).lower(), found.group(2), found.group(3)
    hour = int(word) if word.isdigit() else _WORDS[word]
    if half and half.lower() == "pm" and hour < 12:
        hour += 12
    if half and half.lower() == "am" and hour == 12:
        hour = 0
    current = datetime.fromtimestamp(now, UTC)
    candidates = [hour % 24] if half or hour > 12 or hour == 0 else [hour, hour + 12]
    starts = []
    for h in candidates:
        moment = current.replace(
            hour=h % 24, minute=int(minutes or 0), second=0, microsecond=0
        )
        starts.append(moment if moment <= current else moment - timedelta(days=1))
    return max(starts).isoformat()
