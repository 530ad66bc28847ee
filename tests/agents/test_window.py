"""Windows: a relative time over an old log counts back from the end of the data;
a triage without times takes the last hour of the data."""

from __future__ import annotations

import pytest

from mailtriage.agents.window import resolve_window, triage_windows
from mailtriage.app.store.base import Scope, Store
from mailtriage.errors import QueryError

LAST = 1796318136.0  # the samples' last delivery attempt, 17:15:36Z


def test_relative_since_over_an_old_log_counts_back_from_its_end(
    store: Store,
) -> None:
    resolved = resolve_window(store, Scope(), "-5m", None, now=LAST + 86400)

    assert resolved.scope.until == LAST + 1
    assert resolved.scope.since == LAST + 1 - 300
    assert resolved.note is not None and "end of the data" in resolved.note


def test_relative_since_over_live_data_counts_back_from_now(store: Store) -> None:
    resolved = resolve_window(store, Scope(), "-5m", None, now=LAST + 60)

    assert (resolved.scope.since, resolved.scope.until) == (LAST + 60 - 300, None)
    assert resolved.note is None


def test_absolute_times_are_kept(store: Store) -> None:
    resolved = resolve_window(
        store, Scope(), "2026-12-03T17:00:00Z", "2026-12-03T17:10:00Z", now=LAST
    )

    assert resolved.scope.until is not None and resolved.scope.since is not None
    assert resolved.scope.until - resolved.scope.since == 600
    assert resolved.note is None


def test_triage_without_times_is_the_last_hour_of_the_data(store: Store) -> None:
    windows = triage_windows(store, Scope(), now=LAST + 86400)

    assert windows.current.until == LAST + 1
    assert windows.seconds == 3600
    assert windows.baseline.until == windows.current.since
    assert windows.baseline.since == windows.current.since - 3600  # type: ignore[operator]


def test_a_confined_scope_stays_confined(store: Store) -> None:
    scope = Scope().confined_to("acme")
    windows = triage_windows(store, scope, now=LAST)

    assert windows.current.confined == "acme"
    assert windows.baseline.confined == "acme"


def test_a_start_after_now_is_refused(store: Store) -> None:
    with pytest.raises(QueryError) as refused:
        triage_windows(store, Scope(since=LAST + 10), now=LAST)

    assert refused.value.parameter == "since"
