"""Dovecot messages to records, over real lines.

Lines marked 2.3.19 were written by Dovecot 2.3.19.1 (Debian) into its own log_path
file during a local LMTP delivery with quota; the others come from the shared corpus.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mailtriage.app.commands.parse import open_lines
from mailtriage.parsers.dovecot import parse_dovecot
from mailtriage.parsers.line import LineParser
from mailtriage.parsers.records import (
    DovecotAuth,
    DovecotConnection,
    DovecotDelivery,
    DovecotLmtpError,
    DovecotSieve,
    Info,
    Record,
    Severity,
    Unparsed,
)

SESSION = "+mRAJxygEWsSOwAAg+zDdQ"

LINES = [
    # ------------------------------------------------------------ LMTP deliveries
    pytest.param(
        "",
        "lmtp(alice@acme.example)<15122><+mRAJxygEWsSOwAAg+zDdQ>: Info: "
        "msgid=<m1@y.example>: saved mail to INBOX",
        DovecotDelivery(
            "lmtp", "alice@acme.example", SESSION, "m1@y.example", "saved", "INBOX"
        ),
        id="2.3.19-lmtp-saved",
    ),
    pytest.param(
        "",
        "lmtp(bob@acme.example)<15122><+mRAJxygEWsSOwAAg+zDdQ:R2>: Info: "
        "msgid=<m1@y.example>: save failed to INBOX: Quota exceeded (mailbox for "
        "user is full)",
        DovecotDelivery(
            "lmtp",
            "bob@acme.example",
            SESSION + ":R2",
            "m1@y.example",
            "failed",
            "INBOX",
            "Quota exceeded (mailbox for user is full)",
        ),
        id="2.3.19-lmtp-quota-second-recipient",
    ),
    pytest.param(
        "",
        "lmtp(carol@acme.example)<15456><Z0tkGiugEWtgPAAAg+zDdQ:R2>: Info: "
        "msgid=<m2@y.example>, from=x@y.example, size=2648, delivery_time=1, "
        "session_time=5: saved mail to INBOX",
        DovecotDelivery(
            "lmtp",
            "carol@acme.example",
            "Z0tkGiugEWtgPAAAg+zDdQ:R2",
            "m2@y.example",
            "saved",
            "INBOX",
            delivery_time_ms=1.0,
            session_time_ms=5.0,
            size=2648,
            sender="x@y.example",
        ),
        id="2.3.19-deliver-log-format-extras",
    ),
    pytest.param(
        "dovecot",
        "lmtp(h-06819@h-b4e62aa55116.com)<1477476><KqpVFMzzHGJkixYArqg3ow>: "
        "msgid=<h-9f09@h-ac71.com>: saved mail to INBOX",
        DovecotDelivery(
            "lmtp",
            "h-06819@h-b4e62aa55116.com",
            "KqpVFMzzHGJkixYArqg3ow",
            "h-9f09@h-ac71.com",
            "saved",
            "INBOX",
        ),
        id="syslog-lmtp-saved-without-level",
    ),
    pytest.param(
        "deliver(macaco@monos.org)",
        "msgid=<319615.810035856-sendEmail@huginn>: save failed to INBOX: Quota "
        "exceeded (mailbox for user is full)",
        DovecotDelivery(
            "deliver",
            "macaco@monos.org",
            None,
            "319615.810035856-sendEmail@huginn",
            "failed",
            "INBOX",
            "Quota exceeded (mailbox for user is full)",
        ),
        id="1.x-deliver-quota",
    ),
    pytest.param(
        "deliver(macaco@monos.org)",
        "msgid=<319615.810035856-sendEmail@huginn>: rejected: Quota exceeded "
        "(mailbox for user is full)",
        DovecotDelivery(
            "deliver",
            "macaco@monos.org",
            None,
            "319615.810035856-sendEmail@huginn",
            "rejected",
            None,
            "Quota exceeded (mailbox for user is full)",
        ),
        id="1.x-deliver-rejected",
    ),
    pytest.param(
        "dovecot",
        "lmtp(alice@acme.example)<15122><+mRAJxygEWsSOwAAg+zDdQ>: Error: "
        "msgid=<m1@y.example>: save failed to Archive: Mailbox doesn't exist: Archive",
        DovecotDelivery(
            "lmtp",
            "alice@acme.example",
            SESSION,
            "m1@y.example",
            "failed",
            "Archive",
            "Mailbox doesn't exist: Archive",
        ),
        id="lmtp-save-failed-at-error-level",
    ),
    # ------------------------------------------------------------ sieve
    pytest.param(
        "dovecot",
        "lmtp(h-1d6e@h-08cedc5c.com)<1477476><KqpVFMzzHGJkixYArqg3ow>: sieve: "
        "msgid=<h-1de5@h-357b.com>: stored mail into mailbox 'INBOX'",
        DovecotSieve(
            "h-1d6e@h-08cedc5c.com",
            "KqpVFMzzHGJkixYArqg3ow",
            "h-1de5@h-357b.com",
            "stored",
            "INBOX",
        ),
        id="sieve-stored",
    ),
    pytest.param(
        "dovecot",
        "lmtp(user@test.com): z5FOLrRhDVpddgAABvoInA: sieve: msgid=<cm.21@cmail19.com>:"
        " stored mail into mailbox 'notifications'",
        DovecotSieve(
            "user@test.com",
            "z5FOLrRhDVpddgAABvoInA",
            "cm.21@cmail19.com",
            "stored",
            "notifications",
        ),
        id="2.2-sieve-session-token",
    ),
    pytest.param(
        "dovecot",
        "lmtp(admin@test.com): wUc3LDtjDVrkeQAABvoInA: sieve: msgid=<2017.v@main.nope>:"
        " not sending reject message to <>",
        DovecotSieve(
            "admin@test.com",
            "wUc3LDtjDVrkeQAABvoInA",
            "2017.v@main.nope",
            "rejected",
            "<>",
        ),
        id="sieve-reject-to-null-sender",
    ),
    pytest.param(
        "dovecot",
        "lda(allosaurus): sieve: msgid=<1411372801.459659@raptor.dinos.test>: stored "
        "mail into mailbox 'INBOX'",
        DovecotSieve(
            "allosaurus", None, "1411372801.459659@raptor.dinos.test", "stored", "INBOX"
        ),
        id="lda-sieve-stored",
    ),
    pytest.param(
        "deliver(baryonyx)",
        "msgid=<moodlepost1111@sauropoda.dinos.test>: forwarded to "
        "<baryonyx@ceratops.dinos.test>",
        DovecotSieve(
            "baryonyx",
            None,
            "moodlepost1111@sauropoda.dinos.test",
            "forwarded",
            "<baryonyx@ceratops.dinos.test>",
        ),
        id="1.x-deliver-forwarded",
    ),
    pytest.param(
        "dovecot",
        "lmtp(bob@acme.example)<2><sid1>: Error: sieve: msgid=<m@x>: failed to store "
        "into mailbox 'Junk': Quota exceeded (mailbox for user is full)",
        DovecotDelivery(
            "lmtp",
            "bob@acme.example",
            "sid1",
            "m@x",
            "failed",
            "Junk",
            "Quota exceeded (mailbox for user is full)",
        ),
        id="sieve-store-failed-is-a-failed-delivery",
    ),
    pytest.param(
        "dovecot",
        "lmtp(u@acme.example)<2><sid>: msgid=<x: saved mail to Evil>: save failed to "
        "INBOX: Quota exceeded (mailbox for user is full)",
        DovecotDelivery(
            "lmtp",
            "u@acme.example",
            "sid",
            "x: saved mail to Evil",
            "failed",
            "INBOX",
            "Quota exceeded (mailbox for user is full)",
        ),
        id="status-text-inside-the-message-id-does-not-win",
    ),
    pytest.param(
        "dovecot",
        "lmtp(u@acme.example)<2><sid>: sieve: msgid=<a: stored mail into mailbox 'X'>:"
        " Marked message to be discarded if not explicitly delivered (discard action)",
        DovecotSieve(
            "u@acme.example",
            "sid",
            "a: stored mail into mailbox 'X'",
            "discarded",
            "if not explicitly delivered (discard action)",
        ),
        id="sieve-action-inside-the-message-id-does-not-win",
    ),
    pytest.param(
        "dovecot",
        "lda(u)<3><sid>: sieve: msgid=unspecified: sent vacation response to <a@b.c>",
        DovecotSieve("u", "sid", "unspecified", "vacation", "<a@b.c>"),
        id="sieve-vacation-without-message-id",
    ),
    # ------------------------------------------------------------ LMTP sessions
    pytest.param(
        "",
        "lmtp(15122): Info: Connect from 127.0.0.1",
        DovecotConnection("lmtp", "connect", "127.0.0.1"),
        id="2.3.19-lmtp-connect",
    ),
    pytest.param(
        "",
        "lmtp(15122): Info: Disconnect from 127.0.0.1: Logged out (state=READY)",
        DovecotConnection(
            "lmtp", "disconnect", "127.0.0.1", "Logged out (state=READY)"
        ),
        id="2.3.19-lmtp-disconnect",
    ),
    pytest.param(
        "dovecot",
        "lmtp(7731): Connect from local",
        DovecotConnection("lmtp", "connect", None),
        id="lmtp-connect-unix-socket",
    ),
    pytest.param(
        "dovecot",
        "lmtp(31614): Error: lmtp-server: conn 10.0.0.1:4231 [1]: rcpt "
        "bob@acme.example: Failed to lookup user bob@acme.example: Internal error",
        DovecotLmtpError(
            None,
            None,
            "lmtp-server: conn 10.0.0.1:4231 [1]: rcpt bob@acme.example: Failed to "
            "lookup user bob@acme.example: Internal error",
        ),
        id="lmtp-server-rcpt-error",
    ),
    # ------------------------------------------------------------ logins
    pytest.param(
        "dovecot",
        "imap-login: Login: user=<h-2d7e@h-ac71.com>, method=PLAIN, rip=192.0.2.7, "
        "lip=198.51.100.2, mpid=31337, TLS, session=<dbE0PVfDzRfAqAAB>",
        DovecotAuth("imap", "login", "h-2d7e@h-ac71.com", "192.0.2.7", "PLAIN"),
        id="imap-login",
    ),
    pytest.param(
        "dovecot",
        "imap-login: Login: user=<tarbosauros>, PID=12150, method=PLAIN, "
        "rip=192.168.19.178, lip=192.168.190.13, TLS",
        DovecotAuth("imap", "login", "tarbosauros", "192.168.19.178", "PLAIN"),
        id="1.x-imap-login-with-pid",
    ),
    pytest.param(
        "dovecot",
        "imap-login: Disconnected (auth failed, 1 attempts in 6 secs): "
        "user=<toto@toto.com>, method=PLAIN, rip=1.1.1.1, lip=7.7.7.7, TLS, "
        "session=<azdaDADSqqsvf-za>",
        DovecotAuth(
            "imap",
            "auth_failed",
            "toto@toto.com",
            "1.1.1.1",
            "PLAIN",
            "Disconnected (auth failed, 1 attempts in 6 secs)",
        ),
        id="imap-login-auth-failed",
    ),
    pytest.param(
        "",
        "imap-login: Info: Aborted login (auth failed, 1 attempts): "
        "user=<martin@example.de>, method=CRAM-MD5, rip=80.187.101.33, "
        "lip=80.254.129.240, TLS",
        DovecotAuth(
            "imap",
            "auth_failed",
            "martin@example.de",
            "80.187.101.33",
            "CRAM-MD5",
            "Aborted login (auth failed, 1 attempts)",
        ),
        id="log-file-aborted-login",
    ),
    pytest.param(
        "dovecot",
        "pop3-login: Aborted login (tried to use disallowed plaintext auth): "
        "rip=190.210.136.21, lip=113.212.99.193, session=<LgDINsQCkttVIMPg>",
        DovecotAuth(
            "pop3",
            "plaintext_denied",
            None,
            "190.210.136.21",
            None,
            "Aborted login (tried to use disallowed plaintext auth)",
        ),
        id="pop3-plaintext-denied",
    ),
    pytest.param(
        "dovecot",
        "imap-login: Disconnected (no auth attempts in 0 secs): user=<>, "
        "rip=192.0.2.1, lip=10.0.0.1, TLS handshaking: SSL_accept() failed",
        DovecotAuth(
            "imap",
            "disconnected",
            None,
            "192.0.2.1",
            None,
            "Disconnected (no auth attempts in 0 secs)",
        ),
        id="imap-login-no-auth-attempts",
    ),
    pytest.param(
        "dovecot",
        "managesieve-login: Login aborted: Logged out (auth failed, 1 attempts in 2 "
        "secs) (auth_failed): user=<u@x.org>, method=PLAIN, rip=192.0.2.5, "
        "lip=10.0.0.1",
        DovecotAuth(
            "managesieve",
            "auth_failed",
            "u@x.org",
            "192.0.2.5",
            "PLAIN",
            "Login aborted: Logged out (auth failed, 1 attempts in 2 secs) "
            "(auth_failed)",
        ),
        id="managesieve-login-aborted",
    ),
    # ------------------------------------------------------------ auth processes
    pytest.param(
        "dovecot",
        "auth-worker(24058): pam(toto,1.1.1.1,<youpi>): pam_authenticate() failed: "
        "Authentication failure (password mismatch?)",
        DovecotAuth(
            "auth",
            "password_mismatch",
            "toto",
            "1.1.1.1",
            detail="pam: pam_authenticate() failed: Authentication failure "
            "(password mismatch?)",
        ),
        id="auth-worker-pam-mismatch",
    ),
    pytest.param(
        "dovecot",
        "auth: passwd-file(karen@co.uk,192.168.1.1): unknown user (SHA1 of given "
        "password: 21bd12)",
        DovecotAuth(
            "auth",
            "unknown_user",
            "karen@co.uk",
            "192.168.1.1",
            detail="passwd-file: unknown user (SHA1 of given password: 21bd12)",
        ),
        id="auth-passwd-file-unknown-user",
    ),
    pytest.param(
        "",
        "auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: "
        "Password mismatch (given password: XxxxXXxx123)",
        DovecotAuth(
            "auth",
            "password_mismatch",
            "info@example.com",
            "192.0.2.110",
            detail="sql: Password mismatch (given password: XxxxXXxx123)",
        ),
        id="2.3-auth-event-prefix",
    ),
    pytest.param(
        "",
        "dovecot-auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 "
        "euid=0 tty=dovecot ruser=root rhost=176.61.140.225  user=root",
        DovecotAuth(
            "auth",
            "password_mismatch",
            "root",
            "176.61.140.225",
            detail="pam_unix: authentication failure",
        ),
        id="1.x-pam-unix",
    ),
    pytest.param(
        "",
        "Warn: auth(default): userdb(username,::ffff:127.0.0.1): user not found from "
        "userdb",
        DovecotAuth(
            "auth",
            "unknown_user",
            "username",
            "::ffff:127.0.0.1",
            detail="userdb: user not found from userdb",
        ),
        id="1.x-level-first",
    ),
    # ------------------------------------------------------------ mail sessions
    pytest.param(
        "dovecot",
        "imap(h-2d7e@h-ac71.com)<2201><dbE0PVfDzRfAqAAB>: Logged out in=70 out=555",
        DovecotConnection("imap", "logout", None, "Logged out in=70 out=555"),
        id="imap-logged-out",
    ),
    pytest.param(
        "dovecot",
        "pop3(u)<2><s>: Disconnected: Logged out top=0/0, retr=1/2, del=0/1, size=9",
        DovecotConnection(
            "pop3",
            "logout",
            None,
            "Disconnected: Logged out top=0/0, retr=1/2, del=0/1, size=9",
        ),
        id="pop3-logged-out",
    ),
    pytest.param(
        "dovecot",
        "IMAP(trex): Disconnected: Logged out bytes=748/17264",
        DovecotConnection(
            "imap", "logout", None, "Disconnected: Logged out bytes=748/17264"
        ),
        id="1.x-imap-logged-out",
    ),
    pytest.param(
        "dovecot",
        "imap(u@x)<9><s>: Connection closed (IDLE running for 0.001 + waiting input "
        "for 1800.001 secs, 2 B in + 10 B out, state=wait-input) in=1 out=2",
        DovecotConnection(
            "imap",
            "disconnect",
            None,
            "Connection closed (IDLE running for 0.001 + waiting input for 1800.001 "
            "secs, 2 B in + 10 B out, state=wait-input) in=1 out=2",
        ),
        id="imap-connection-closed",
    ),
    # ------------------------------------------------------------ severities, info
    pytest.param(
        "",
        "master: Info: Dovecot v2.3.19.1 (9b53102964) starting up for lmtp (core dumps "
        "disabled)",
        Info("dovecot_start"),
        id="2.3.19-master-start",
    ),
    pytest.param(
        "dovecot",
        "master: Warning: Killed with signal 15 (by pid=1 uid=0 code=kill)",
        Severity("warning", "master: Killed with signal 15 (by pid=1 uid=0 code=kill)"),
        id="master-warning",
    ),
    pytest.param(
        "dovecot",
        "Fatal: Auth process died too early - shutting down",
        Severity("fatal", "Auth process died too early - shutting down"),
        id="1.x-fatal",
    ),
    pytest.param(
        "dovecot",
        "imap(u)<1><s>: Error: Mailbox INBOX: UID=5: read() failed: Input/output error",
        Severity(
            "error", "imap: Mailbox INBOX: UID=5: read() failed: Input/output error"
        ),
        id="imap-error",
    ),
    pytest.param(
        "dovecot",
        "managesieve(admin@test.com): Debug: Loading modules from directory: "
        "/usr/lib/dovecot/modules",
        Info("debug"),
        id="debug",
    ),
]


@pytest.mark.parametrize(("program", "message", "expected"), LINES)
def test_dovecot_message_becomes_record(
    program: str, message: str, expected: Record
) -> None:
    assert parse_dovecot(program, message) == expected


def test_unknown_info_line_is_unparsed_with_its_shape() -> None:
    record = parse_dovecot("dovecot", "imap(u)<1><s>: Something new happened 42 times")
    assert isinstance(record, Unparsed)
    assert record.reason == "message"
    assert record.shape == "imap(u)<<N>><s>: Something new happened <N> times"


def test_bundled_dovecot_sample_parses_completely() -> None:
    sample = Path(__file__).resolve().parents[2] / "samples" / "dovecot.log"
    if not sample.exists():
        pytest.skip(f"no bundled sample at {sample}")
    parser = LineParser()
    kinds = Counter(parser.parse(line)[1].kind for line in open_lines(str(sample)))
    assert kinds["unparsed"] == 0
    assert kinds["dovecot_delivery"] > 0


def test_cyrus_sieve_line_is_not_read_as_dovecot() -> None:
    record = parse_dovecot(
        "dovecot", "badlogin: example.com[1.2.3.4] PLAIN authentication failure"
    )
    assert record.kind == "unparsed"
