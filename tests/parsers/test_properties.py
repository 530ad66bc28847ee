"""No input makes the line parser raise: random text and bytes, invalid UTF-8, lines
of a megabyte, real lines cut anywhere."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtriage.parsers import records
from mailtriage.parsers.dovecot import parse_dovecot
from mailtriage.parsers.envelope import EnvelopeParser
from mailtriage.parsers.line import MAX_LINE_CHARS, LineParser
from mailtriage.parsers.records import Envelope, Record, Unparsed
from mailtriage.parsers.shapes import MAX_SHAPE_CHARS, mask

KINDS = {
    cls.kind
    for cls in vars(records).values()
    if dataclasses.is_dataclass(cls) and hasattr(cls, "kind")
}

# Real lines of every frame and family, cut at random places by the tests below.
REAL = [
    "Dec  3 16:00:56 mx1 postfix/smtpd[6079]: connect from mail.example.net[192.0.2.1]",
    "Dec 03 16:00:57 mx1 postfix/qmgr[6081]: 4B1E3A1F2: from=<a@example.net>, "
    "size=2648, nrcpt=2 (queue active)",
    "Feb  1 13:17:08 mail postfix/lmtp[28693]: AED441541AFC: to=<u@h-b4e6.com>, "
    "relay=h-5a[/var/run/dovecot/lmtp], delay=0.07, delays=0.03/0.01/0.01/0.02, "
    "dsn=2.0.0, status=sent (250 2.0.0 <u@h-b4e6.com> wArTL0TxF2AccAAAYr7Zvw Saved)",
    "2023-03-14T00:03:53.935643+01:00 helga postfix/postscreen[3163107]: PREGREET 11 "
    "after 0.23 from [180.214.239.18]:37981: EHLO User\\r\\n",
    "Dec 03 17:00:12 lmtp(bob@acme.example)<15122><+mRAJxygEWsSOwAAg+zDdQ:R2>: Info: "
    "msgid=<m1@y.example>: save failed to INBOX: Quota exceeded (mailbox for user is "
    "full)",
    "Jan 28 11:05:26 mail dovecot: imap-login: Login: user=<h-2d7e@h-ac71.com>, "
    "method=PLAIN, rip=192.0.2.7, lip=198.51.100.2, mpid=31337, TLS, "
    "session=<dbE0PVfDzRfAqAAB>",
    "Sep 8 07:16:29 canyon dovecot: auth-worker(24058): pam(toto,1.1.1.1,<youpi>): "
    "pam_authenticate() failed: Authentication failure (password mismatch?)",
    "<22>1 2026-12-03T16:00:56Z mx1 postfix/smtpd 6079 - - disconnect from "
    "x[192.0.2.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
    '<165>1 2003-10-11T22:14:15.003Z frodo postfix/smtpd - ID47 [ex@1 a="\\"]"] '
    "\ufeffconnect from x[192.0.2.1]",
    "@400000004c91b044077a9e94 dovecot-auth: pam_unix(dovecot:auth): authentication "
    "failure; logname= uid=0 euid=0 tty=dovecot ruser=web rhost=176.61.140.224",
    '{"__REALTIME_TIMESTAMP":"1704106800123456","_HOSTNAME":"mx1",'
    '"SYSLOG_IDENTIFIER":"postfix/qmgr","_PID":"77","MESSAGE":"4B1E3A1F2: removed"}',
    "dovecot: Mar 13 15:25:07 Info: auth(default): passwd-file(u@example.com,"
    "::ffff:1.2.3.4): unknown user",
]

# Pieces that send random lines down the frame readers' deeper paths.
PIECES = st.sampled_from(
    [
        "Dec  3 16:00:56 ",
        "Jan 1 00:00:00 ",
        "2026-12-03T16:00:56.5+01:00 ",
        "<22>",
        "<22>1 ",
        "@4000000063e4b3f0",
        "mx1 ",
        "postfix/smtpd[1]: ",
        "postfix-out/smtp: ",
        "dovecot: ",
        "lmtp(u)<1><s>: ",
        "imap-login: ",
        "Info: ",
        "Error: ",
        "NOQUEUE: reject: ",
        "4B1E3A1F2: ",
        "to=<a@b>, ",
        "msgid=<m>: ",
        "saved mail to ",
        "sieve: ",
        "status=sent (",
        "[",
        "]",
        "(",
        ")",
        ":",
        " ",
        "\ufffd",
        "\udcff",
        "\x00",
    ]
)


def assert_is_a_record(result: tuple[Envelope | None, Record]) -> None:
    env, record = result
    assert_record(record)
    if env is None:
        assert isinstance(record, Unparsed)


def assert_record(record: Record) -> None:
    assert record.kind in KINDS
    if isinstance(record, Unparsed):
        assert record.reason != "error", record.text[:200]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_random_text_never_raises(text: str) -> None:
    assert_is_a_record(LineParser().parse(text))


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES | st.text(max_size=12), max_size=14).map("".join))
def test_lines_built_from_frame_pieces_never_raise(text: str) -> None:
    assert_is_a_record(LineParser().parse(text))
    assert_record(parse_dovecot("", text))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_decoded_with_replace_never_raise(data: bytes) -> None:
    assert_is_a_record(LineParser().parse(data.decode("utf-8", "replace")))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REAL), st.binary(min_size=1, max_size=40))
def test_invalid_utf8_inside_real_lines_never_raises(line: str, junk: bytes) -> None:
    raw = line.encode() + b"\xff\xfe" + junk
    for errors in ("replace", "surrogateescape"):
        assert_is_a_record(LineParser().parse(raw.decode("utf-8", errors)))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REAL), st.data())
def test_real_lines_cut_anywhere_never_raise(line: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(line)))
    parser = LineParser()
    assert_is_a_record(parser.parse(line[:cut]))
    assert_is_a_record(parser.parse(line[cut:]))


def test_real_lines_parse_into_known_kinds() -> None:
    parser = LineParser()
    for line in REAL:
        env, record = parser.parse(line)
        assert env is not None, line
        assert record.kind != "unparsed", line


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL), st.sampled_from(["x", "é", "\ufffd", "<a@b> "]))
def test_one_megabyte_lines_are_cut_and_still_read(line: str, filler: str) -> None:
    huge = line + filler * (1_000_000 // len(filler))
    env, record = LineParser().parse(huge)
    assert_is_a_record((env, record))
    if isinstance(record, Unparsed):
        assert len(record.text) <= MAX_LINE_CHARS
    assert len(mask(huge)) <= MAX_SHAPE_CHARS


def test_one_megabyte_line_without_spaces_gives_an_unparsed_record() -> None:
    env, record = LineParser().parse("Dec  3 16:00:56 " + "x" * 1_000_000)
    assert env is None
    assert isinstance(record, Unparsed)
    assert record.reason == "envelope"
    assert len(record.text) == MAX_LINE_CHARS


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_envelope_parser_and_mask_never_raise_on_text(text: str) -> None:
    env = EnvelopeParser().parse(text)
    assert env is None or isinstance(env.ts, float)
    assert isinstance(mask(text), str)
