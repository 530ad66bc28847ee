"""Which time window a triage or a question means, and the baseline before it.

Logs are often read after the fact: "the last 5 minutes" of a log ingested today
that ended yesterday means the 5 minutes before its last line, not the 5 minutes
before now. ``resolve_window`` applies that rule and says when it did, so the
answer can tell the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailtriage.app.store.base import Scope, Store
from mailtriage.app.timeparse import format_time, parse_time, parse_window
from mailtriage.errors import QueryError

DEFAULT_WINDOW_SECONDS = 3600.0
"""The window of a triage that names no time: the last hour of the data."""


@dataclass(frozen=True, slots=True)
class Windows:
    """A bounded window and the baseline of the same length just before it."""

    current: Scope
    baseline: Scope

    @property
    def seconds(self) -> float:
        """The length of each window."""
        assert self.current.since is not None and self.current.until is not None
        return self.current.until - self.current.since


def triage_windows(store: Store, scope: Scope, *, now: float) -> Windows:
    """Bound ``scope`` in time and put its baseline before it.

    An open start takes ``DEFAULT_WINDOW_SECONDS`` before the end; an open end is
    now, or, when no time is given at all, just after the last delivery attempt in
    scope (so an old log is triaged where its data is). A start in the future is a
    QueryError.
    """
    since, until = scope.since, scope.until
    if until is None:
        until = now
        if since is None:
            last = store.data_range(scope).last_ts
            # Log times are whole seconds: one more makes the last one inside.
            until = now if last is None else min(now, last + 1.0)
    if since is None:
        since = until - DEFAULT_WINDOW_SECONDS
    if since >= until:
        raise QueryError(
            f"the window starts at {format_time(since)}, not before its end "
            f"{format_time(until)}",
            parameter="since",
        )
    length = until - since
    current = scope.replace(since=since, until=until)
    baseline = scope.replace(since=since - length, until=since)
    return Windows(current=current, baseline=baseline)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A scope with its time window, and a note when a relative time was taken
    from the end of the data rather than from now."""

    scope: Scope
    note: str | None = None


def resolve_window(
    store: Store,
    scope: Scope,
    since: str | None,
    until: str | None,
    *,
    now: float,
) -> Resolved:
    """``scope`` with ``since``/``until`` (RFC 3339, relative like ``-5m``, or
    epoch seconds) applied.

    A relative ``since`` counts back from now, unless the data in scope ended
    before that window began: then it counts back from the last delivery attempt
    (an old log), and ``note`` says so. QueryError names a bad time.
    """
    start, end = parse_window(since, until, now=now)
    resolved = scope.replace(since=start, until=end)
    if start is None or not _relative(since) or until is not None:
        return Resolved(resolved)
    last = store.data_range(scope).last_ts
    if last is None or last >= start:
        return Resolved(resolved)
    anchor = last + 1.0
    shifted_start = parse_time(since or "", now=anchor, parameter="since")
    note = (
        f"the data in scope ends at {format_time(last)}, before {since} from now; "
        f"{since} was counted back from the end of the data instead "
        f"({format_time(shifted_start)} to {format_time(anchor)})"
    )
    return Resolved(scope.replace(since=shifted_start, until=anchor), note)


def _relative(text: str | None) -> bool:
    return text is not None and text.strip().startswith("-")
