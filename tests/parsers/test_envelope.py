"""Envelopes of every frame mail logs come in, from real lines."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mailtriage.parsers.envelope import EnvelopeParser, days_from_civil

# 2026-01-10 12:00 UTC: lines of December belong to 2025, of early January to 2026.
REFERENCE = datetime(2026, 1, 10, 12, 0, tzinfo=UTC).timestamp()


def utc(
    year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int = 0
) -> float:
    return datetime(year, month, day, hour, minute, second, micro, UTC).timestamp()


FRAMES = [
    pytest.param(
        "Dec  3 16:00:56 mx1 postfix/smtpd[6079]: connect from x.example[192.0.2.1]",
        (utc(2025, 12, 3, 16, 0, 56), "mx1", "postfix/smtpd", 6079),
        "connect from x.example[192.0.2.1]",
        id="syslog-space-padded-day",
    ),
    pytest.param(
        "Dec 03 16:00:56 mx1 postfix/qmgr[6081]: 4B1E3A1F2: removed",
        (utc(2025, 12, 3, 16, 0, 56), "mx1", "postfix/qmgr", 6081),
        "4B1E3A1F2: removed",
        id="maillog-file-zero-padded-day",
    ),
    pytest.param(
        "Jan 1 01:02:03 mail postfix/smtpd[1234567]: connect from localhost[127.0.0.1]",
        (utc(2026, 1, 1, 1, 2, 3), "mail", "postfix/smtpd", 1234567),
        "connect from localhost[127.0.0.1]",
        id="syslog-unpadded-day",
    ),
    pytest.param(
        "Dec 03 16:00:56.123456 mx1 postfix/smtp[6090]: x",
        (utc(2025, 12, 3, 16, 0, 56, micro=123456), "mx1", "postfix/smtp", 6090),
        "x",
        id="journalctl-short-precise",
    ),
    pytest.param(
        "Dec 03 16:01:03 lmtp(alice@acme.example)<6122><rdBDBT+SEWvqFwAAg+zDdQ>: "
        "Info: msgid=<m1@y.example>: saved mail to INBOX",
        (utc(2025, 12, 3, 16, 1, 3), "", "", None),
        "lmtp(alice@acme.example)<6122><rdBDBT+SEWvqFwAAg+zDdQ>: "
        "Info: msgid=<m1@y.example>: saved mail to INBOX",
        id="dovecot-log-path-no-host",
    ),
    pytest.param(
        "2019-10-15 08:08:52 imap-login: Info: Disconnected (auth failed, 1 attempts "
        "in 2 secs): user=<test>, method=PLAIN, rip=172.21.0.1, lip=172.21.0.3",
        (utc(2019, 10, 15, 8, 8, 52), "", "", None),
        "imap-login: Info: Disconnected (auth failed, 1 attempts in 2 secs): "
        "user=<test>, method=PLAIN, rip=172.21.0.1, lip=172.21.0.3",
        id="dovecot-log-timestamp-iso-no-zone",
    ),
    pytest.param(
        "2023-03-14T00:00:31.185246+01:00 helga postfix/postscreen[3163107]: "
        "CONNECT from [185.48.118.128]:36942 to [188.34.187.246]:25",
        (
            utc(2023, 3, 13, 23, 0, 31, micro=185246),
            "helga",
            "postfix/postscreen",
            3163107,
        ),
        "CONNECT from [185.48.118.128]:36942 to [188.34.187.246]:25",
        id="rsyslog-rfc3339-high-precision",
    ),
    pytest.param(
        "2024-01-01T12:00:00+0100 mx1 postfix/smtpd[123]: disconnect from x[192.0.2.9]",
        (utc(2024, 1, 1, 11, 0, 0), "mx1", "postfix/smtpd", 123),
        "disconnect from x[192.0.2.9]",
        id="journald-short-iso",
    ),
    pytest.param(
        "1704106800.250000 mx1 postfix/smtpd[123]: connect from x[192.0.2.9]",
        (utc(2024, 1, 1, 11, 0, 0, micro=250000), "mx1", "postfix/smtpd", 123),
        "connect from x[192.0.2.9]",
        id="journald-short-unix",
    ),
    pytest.param(
        "<22>1 2026-12-03T16:00:56Z mx1 postfix/smtpd 6079 - - connect from x[192.0.2.1"
        "]",
        (utc(2026, 12, 3, 16, 0, 56), "mx1", "postfix/smtpd", 6079),
        "connect from x[192.0.2.1]",
        id="rfc5424-nil-structured-data",
    ),
    pytest.param(
        "<165>1 2003-10-11T22:14:15.003Z frodo.example.com postfix - ID47 "
        '[ex@32473 iut="3" eventSource="Appl\\]ication"] '
        "\ufeffconnect from x[192.0.2.1]",
        (
            utc(2003, 10, 11, 22, 14, 15, micro=3000),
            "frodo.example.com",
            "postfix",
            None,
        ),
        "connect from x[192.0.2.1]",
        id="rfc5424-structured-data-and-bom",
    ),
    pytest.param(
        "<22>Dec  3 16:00:56 mx1 postfix/smtpd[6079]: connect from x[192.0.2.1]",
        (utc(2025, 12, 3, 16, 0, 56), "mx1", "postfix/smtpd", 6079),
        "connect from x[192.0.2.1]",
        id="rfc3164-with-pri",
    ),
    pytest.param(
        "<22>Dec  3 16:00:56 postfix/smtpd[6079]: connect from x[192.0.2.1]",
        (utc(2025, 12, 3, 16, 0, 56), "", "postfix/smtpd", 6079),
        "connect from x[192.0.2.1]",
        id="rfc3164-without-hostname",
    ),
    pytest.param(
        "@400000004c91b044077a9e94 imap-login: Info: Aborted login (auth failed, 1 "
        "attempts): user=<martin@example.de>, method=CRAM-MD5, rip=80.187.101.33",
        (1284616250.125477, "", "", None),
        "imap-login: Info: Aborted login (auth failed, 1 attempts): "
        "user=<martin@example.de>, method=CRAM-MD5, rip=80.187.101.33",
        id="multilog-tai64n",
    ),
    pytest.param(
        '{"__REALTIME_TIMESTAMP":"1704106800123456","_HOSTNAME":"mx1",'
        '"SYSLOG_IDENTIFIER":"postfix/qmgr","_PID":"77",'
        '"MESSAGE":"4B1E3A1F2: removed"}',
        (1704106800.123456, "mx1", "postfix/qmgr", 77),
        "4B1E3A1F2: removed",
        id="journal-json",
    ),
    pytest.param(
        '{"__REALTIME_TIMESTAMP":"1704106800000000","_HOSTNAME":"mx1",'
        '"SYSLOG_IDENTIFIER":"dovecot","SYSLOG_PID":"9","MESSAGE":[105,255,33]}',
        (1704106800.0, "mx1", "dovecot", 9),
        "i\ufffd!",
        id="journal-json-message-as-bytes",
    ),
    pytest.param(
        "2021-01-01T00:00:01.123456789Z Jan  1 00:00:00 mail postfix/smtp[1]: x",
        (utc(2021, 1, 1, 0, 0, 1, micro=123457), "mail", "postfix/smtp", 1),
        "x",
        id="docker-timestamps-before-syslog",
    ),
    pytest.param(
        "dovecot: Mar 13 15:25:07 Info: auth(default): passwd-file(u@example.com,"
        "::ffff:1.2.3.4): unknown user",
        (utc(2025, 3, 13, 15, 25, 7), "", "", None),
        "Info: auth(default): passwd-file(u@example.com,::ffff:1.2.3.4): unknown user",
        id="dovecot-1x-log-file",
    ),
    pytest.param(
        "Jun 16 03:39:15 email postfix/smtpd[72882]: [ID 197553 mail.info] connect "
        "from x[192.0.2.1]",
        (utc(2025, 6, 16, 3, 39, 15), "email", "postfix/smtpd", 72882),
        "connect from x[192.0.2.1]",
        id="solaris-message-id",
    ),
    pytest.param(
        "Sep  4 01:24:11 mx postfix-10.20.30.40/smtp[3831]: connect to x[192.0.2.1]:25",
        (utc(2025, 9, 4, 1, 24, 11), "mx", "postfix-10.20.30.40/smtp", 3831),
        "connect to x[192.0.2.1]:25",
        id="multi-instance-tag",
    ),
    pytest.param(
        "Jun 21 12:00:56 acme postfix/submission/smtpd[20201]: warning: x",
        (utc(2025, 6, 21, 12, 0, 56), "acme", "postfix/submission/smtpd", 20201),
        "warning: x",
        id="service-alias-tag",
    ),
]


@pytest.mark.parametrize(("line", "frame", "message"), FRAMES)
def test_frame_is_read(
    line: str, frame: tuple[float, str, str, int | None], message: str
) -> None:
    env = EnvelopeParser(reference_ts=REFERENCE).parse(line)
    assert env is not None
    assert env.ts == pytest.approx(frame[0], abs=1e-6)
    assert (env.host, env.program, env.pid) == frame[1:]
    assert env.message == message


NOT_FRAMES = [
    pytest.param(
        "Jan: 1 00:00:00 hostname postfix/postscreen[12345]: foo", id="colon-month"
    ),
    pytest.param(
        "Foo 1 00:00:00 hostname postfix/postscreen[12345]: foo", id="bad-month"
    ),
    pytest.param(
        "Jan 1 00:00:00 hostname postfix/postscreen[abcde]: foo", id="bad-pid"
    ),
    pytest.param("Jan 1 00:00:00 hostname postfix/postscreen[12345", id="cut-tag"),
    pytest.param("Jan 1 00:00:00 hostname postfix/postscreen", id="no-colon"),
    pytest.param("Jan 1 00:00:00", id="stamp-only"),
    pytest.param("Jan", id="month-only"),
    pytest.param("Feb 30 10:00:00 h p[1]: x", id="no-such-day"),
    pytest.param("Jan  1 25:00:00 h p[1]: x", id="no-such-hour"),
    pytest.param(
        "postfix/smtpd[17375]: using backwards-compatible default", id="tag-only"
    ),
    pytest.param("3mPVKl0Mhjz7sXv: to=<s@example.org>, relay=none", id="message-only"),
    pytest.param("%(day)s 11:00:20 server postfix/cleanup[1]: x", id="template"),
    pytest.param("<999>1 2026-12-03T16:00:56Z mx1 p 1 - - x", id="pri-out-of-range"),
    pytest.param("<22>1 - mx1 p 1 - - x", id="rfc5424-nil-time"),
    pytest.param("@4000zzzz4c91b044077a9e94 x: y", id="tai64n-not-hex"),
    pytest.param('{"MESSAGE": "no time"}', id="journal-json-without-time"),
    pytest.param("{not json", id="not-json"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("line", NOT_FRAMES)
def test_line_without_a_frame_gives_none(line: str) -> None:
    assert EnvelopeParser(reference_ts=REFERENCE).parse(line) is None


YEARS = [
    pytest.param("Dec 31 23:59:59", 2025, id="december-read-in-january"),
    pytest.param("Jan 10 12:30:00", 2026, id="same-day"),
    pytest.param("Jan 11 11:00:00", 2026, id="less-than-a-day-ahead"),
    pytest.param("Jan 12 12:00:01", 2025, id="more-than-a-day-ahead"),
    pytest.param("Feb 29 10:00:00", 2024, id="leap-day-in-the-last-leap-year"),
]


@pytest.mark.parametrize(("stamp", "year"), YEARS)
def test_year_is_inferred_from_the_reference(stamp: str, year: int) -> None:
    env = EnvelopeParser(reference_ts=REFERENCE).parse(f"{stamp} h p[1]: x")
    assert env is not None
    assert datetime.fromtimestamp(env.ts, UTC).year == year


def test_line_just_after_new_year_is_put_in_the_next_year() -> None:
    reference = datetime(2025, 12, 31, 23, 59, 50, tzinfo=UTC).timestamp()
    env = EnvelopeParser(reference_ts=reference).parse("Jan  1 00:00:05 h p[1]: x")
    assert env is not None
    assert env.ts == utc(2026, 1, 1, 0, 0, 5)


def test_fixed_year_overrides_the_inference() -> None:
    env = EnvelopeParser(reference_ts=REFERENCE, year=2019).parse(
        "Dec 31 23:59:59 h p[1]: x"
    )
    assert env is not None
    assert env.ts == utc(2019, 12, 31, 23, 59, 59)


def test_zone_less_stamps_use_the_configured_zone_across_dst() -> None:
    parser = EnvelopeParser(tz=ZoneInfo("Europe/Berlin"), year=2025)
    winter = parser.parse("Mar 30 01:59:59 h p[1]: x")
    summer = parser.parse("Mar 30 03:00:00 h p[1]: x")
    assert winter is not None and summer is not None
    assert winter.ts == utc(2025, 3, 30, 0, 59, 59)
    assert summer.ts == utc(2025, 3, 30, 1, 0, 0)


def test_stamps_with_a_zone_ignore_the_configured_zone() -> None:
    parser = EnvelopeParser(tz=ZoneInfo("America/New_York"))
    env = parser.parse("2026-07-01T12:00:00Z mx1 postfix/smtpd[1]: x")
    assert env is not None
    assert env.ts == utc(2026, 7, 1, 12, 0, 0)


def test_consecutive_lines_share_cached_host_and_program_strings() -> None:
    parser = EnvelopeParser(reference_ts=REFERENCE)
    first = parser.parse("Dec  3 16:00:56 mx1 postfix/smtpd[6079]: a")
    second = parser.parse("Dec  3 16:00:57 mx1 postfix/smtpd[6079]: b")
    assert first is not None and second is not None
    assert first.host is second.host
    assert first.program is second.program
    assert second.ts - first.ts == 1.0


@pytest.mark.parametrize(
    ("year", "month", "day"),
    [(1970, 1, 1), (2000, 2, 29), (2024, 12, 31), (2100, 3, 1)],
)
def test_days_from_civil_matches_datetime(year: int, month: int, day: int) -> None:
    expected = datetime(year, month, day, tzinfo=UTC).timestamp() / 86400
    assert days_from_civil(year, month, day) == expected
