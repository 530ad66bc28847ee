"""Times and durations as users type them."""

from __future__ import annotations

import pytest

from mailtriage.app.timeparse import (
    format_time,
    parse_duration,
    parse_time,
    parse_window,
)
from mailtriage.errors import QueryError

NOW = 1_796_313_600.0  # 2026-12-03T16:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T16:00:00Z", NOW),
        ("2026-12-03T17:00:00+01:00", NOW),
        ("2026-12-03T16:00:00.5Z", NOW + 0.5),
        ("2026-12-03 16:00:00", NOW),  # no offset: UTC
        ("2026-12-03", NOW - 16 * 3600),
        ("-24h", NOW - 86_400),
        ("-15m", NOW - 900),
        ("-7d", NOW - 7 * 86_400),
        ("-30s", NOW - 30),
        ("-2w", NOW - 14 * 86_400),
        ("now", NOW),
        ("1796313600", NOW),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "-24x", "24h", "2026-13-01", ""])
def test_bad_time_names_the_parameter(text: str) -> None:
    with pytest.raises(QueryError, match="since") as err:
        parse_time(text, now=NOW, parameter="since")
    assert err.value.parameter == "since"


def test_window_must_not_end_before_it_starts() -> None:
    assert parse_window("-1h", "now", now=NOW) == (NOW - 3600, NOW)
    assert parse_window(None, None, now=NOW) == (None, None)
    with pytest.raises(QueryError) as err:
        parse_window("-1h", "-2h", now=NOW)
    assert err.value.parameter == "until"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m", 60), ("30s", 30), ("90", 90), ("1h", 3600), ("1d", 86400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-1m", "1y", "m"])
def test_bad_duration(text: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_duration(text)
    assert err.value.parameter == "interval"


def test_format_time() -> None:
    assert format_time(NOW) == "2026-12-03T16:00:00Z"
    assert format_time(NOW + 0.25) == "2026-12-03T16:00:00.250Z"
    assert format_time(None) is None
