"""LineParser: envelope plus the family parser chosen by the program."""

from __future__ import annotations

import pytest

from mailtriage.parsers.line import MAX_LINE_CHARS, LineParser, family_name
from mailtriage.parsers.records import DovecotDelivery, QmgrRemoved, Unparsed

FAMILIES = [
    pytest.param("postfix/smtpd", "postfix", id="postfix-daemon"),
    pytest.param("postfix-out/smtp", "postfix", id="multi-instance"),
    pytest.param("postfix/submission/smtpd", "postfix", id="service-alias"),
    pytest.param("relay/smtp", "postfix", id="syslog-name-of-a-transport"),
    pytest.param("postfix-10.20.30.40/qmgr", "postfix", id="instance-named-by-ip"),
    pytest.param("postfix/postfix-script", "postfix", id="postfix-script"),
    pytest.param("postfix", "postfix", id="bare-postfix"),
    pytest.param("dovecot", "dovecot", id="dovecot-syslog"),
    pytest.param("", "dovecot", id="dovecot-log-file"),
    pytest.param("deliver(bob@x.org)", "dovecot", id="dovecot-1x-deliver-ident"),
    pytest.param("dovecot-auth", "dovecot", id="dovecot-1x-auth"),
    pytest.param("smtpd", "other", id="bare-daemon-name-is-not-postfix"),
    pytest.param("postfix1", "other", id="lookalike"),
    pytest.param("amavis", "other", id="content-filter"),
    pytest.param("opendkim", "other", id="milter"),
]


@pytest.mark.parametrize(("program", "family"), FAMILIES)
def test_program_decides_the_family(program: str, family: str) -> None:
    assert family_name(program) == family


def test_postfix_line_goes_to_the_postfix_parser() -> None:
    env, record = LineParser().parse(
        "Dec  3 16:00:58 mx1 postfix/qmgr[6081]: 4B1E3A1F2: removed"
    )
    assert env is not None
    assert record == QmgrRemoved("4B1E3A1F2")


def test_dovecot_log_file_line_goes_to_the_dovecot_parser() -> None:
    line = (
        "Dec 03 17:00:12 lmtp(alice@acme.example)<15122><+mRAJxygEWsSOwAAg+zDdQ>: "
        "Info: msgid=<m1@y.example>: saved mail to INBOX"
    )
    env, record = LineParser().parse(line)
    assert env is not None and env.host == ""
    assert isinstance(record, DovecotDelivery)
    assert (record.user, record.session) == (
        "alice@acme.example",
        "+mRAJxygEWsSOwAAg+zDdQ",
    )


def test_other_program_is_unparsed_by_program_without_a_shape() -> None:
    line = "Jan 1 01:02:04 mail opendkim[23]: 065AB16D682C: DKIM-Signature field added"
    env, record = LineParser().parse(line)
    assert env is not None and env.program == "opendkim"
    assert record == Unparsed("program", "", "065AB16D682C: DKIM-Signature field added")


def test_line_without_frame_is_unparsed_by_envelope_with_its_shape() -> None:
    env, record = LineParser().parse("lost connection after CONNECT from x[192.0.2.1]")
    assert env is None
    assert isinstance(record, Unparsed)
    assert record.reason == "envelope"
    assert record.shape == "lost connection after CONNECT from <HOST>[<IP>]"


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_line_terminator_is_ignored(ending: str) -> None:
    env, _ = LineParser().parse(
        "Dec  3 16:00:58 mx1 postfix/qmgr[6081]: 4B1E3A1F2: removed" + ending
    )
    assert env is not None
    assert env.message == "4B1E3A1F2: removed"


def test_long_line_is_cut_before_parsing() -> None:
    line = "Dec  3 16:00:58 mx1 postfix/smtpd[1]: warning: " + "x" * (
        2 * MAX_LINE_CHARS
    )
    env, _ = LineParser().parse(line)
    assert env is not None
    assert len(env.message) < MAX_LINE_CHARS


def test_parse_message_dispatches_without_an_envelope() -> None:
    record = LineParser().parse_message("postfix/qmgr", "4B1E3A1F2: removed")
    assert record == QmgrRemoved("4B1E3A1F2")
