"""Reading the scope a question names, without an LLM."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailtriage.agents.hints import Hints, parse_hints

TENANTS = ("acme", "globex", "initech")
# Thursday 2026-12-03 17:15:00 UTC
NOW = datetime(2026, 12, 3, 17, 15, tzinfo=UTC).timestamp()

CASES = [
    (
        "Check the last 5 minutes of Postfix logs, find every LMTP delivery to the "
        "MDA slower than 3 s, and tell me whether specific recipient domains or "
        "tenants trigger it.",
        Hints(since="-5m", transport="lmtp", slow_seconds=3.0, about_slowness=True),
    ),
    (
        "why is mail to globex slow since ten?",
        Hints(tenant="globex", since="2026-12-03T10:00:00+00:00", about_slowness=True),
    ),
    (
        "bounces for acme.example in the past 2h",
        Hints(domain="acme.example", since="-2h"),
    ),
    (
        "what happened to alice@acme.example today",
        Hints(domain="acme.example", since="2026-12-03T00:00:00+00:00"),
    ),
    (
        "anything wrong yesterday at initech?",
        Hints(
            tenant="initech",
            since="2026-12-02T00:00:00+00:00",
            until="2026-12-03T00:00:00+00:00",
        ),
    ),
    ("since 9 pm", Hints(since="2026-12-02T21:00:00+00:00")),
    ("since 16:30 deferrals?", Hints(since="2026-12-03T16:30:00+00:00")),
    ("the last hour please", Hints(since="-1h")),
    ("errors in postfix.log", Hints()),
    ("acmecorp and acme.example.org", Hints(domain="acme.example.org")),
]


@pytest.mark.parametrize(
    ("question", "expected"),
    CASES,
    ids=[
        "product-question",
        "since-ten-words",
        "domain-past-hours",
        "address-today",
        "yesterday",
        "since-9pm",
        "since-clock",
        "last-hour",
        "file-name-is-no-domain",
        "tenant-name-inside-a-word-is-no-tenant",
    ],
)
def test_question_hints(question: str, expected: Hints) -> None:
    assert parse_hints(question, TENANTS, now=NOW) == expected
