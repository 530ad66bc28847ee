"""Typed records: what one log line says, before any state is applied.

A parser turns the message part of a line (after the syslog envelope) into exactly one
of these records, or into ``Unparsed``. Records are plain slotted dataclasses: cheap to
build on the hot path, easy to turn into JSON (``dataclasses.asdict``) for
``mailtriage parse``.

Times are UTC instants as float epoch seconds; the envelope parser converts every
timestamp form into this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(slots=True)
class Envelope:
    """The syslog (or journald, or daemon-native) frame around one message."""

    ts: float
    host: str
    program: str
    pid: int | None
    message: str


# --------------------------------------------------------------------------- Postfix


@dataclass(slots=True)
class SmtpdConnect:
    """``connect from mail.example.net[192.0.2.1]`` (smtpd, also submission aliases)."""

    kind: ClassVar[str] = "smtpd_connect"
    client_host: str
    client_ip: str


@dataclass(slots=True)
class SmtpdDisconnect:
    """``disconnect from h[ip] ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=3/5``."""

    kind: ClassVar[str] = "smtpd_disconnect"
    client_host: str
    client_ip: str
    commands: dict[str, str]


@dataclass(slots=True)
class SmtpdClient:
    """``QID: client=h[ip]:port, sasl_method=PLAIN, sasl_username=u``: a new message."""

    kind: ClassVar[str] = "smtpd_client"
    queue_id: str
    client_host: str
    client_ip: str
    client_port: int | None = None
    sasl_method: str | None = None
    sasl_username: str | None = None
    orig_queue_id: str | None = None


@dataclass(slots=True)
class SmtpdEvent:
    """Other smtpd/postscreen/tlsproxy connection events.

    ``event`` is one of: lost_connection, timeout, tls_established, tls_error,
    too_many_errors, sasl_failed, warning_client, improper_pipelining, other.
    """

    kind: ClassVar[str] = "smtpd_event"
    event: str
    client_host: str | None = None
    client_ip: str | None = None
    stage: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class Reject:
    """A refusal or hold before or at queueing.

    Covers ``NOQUEUE: reject: RCPT from h[ip]: 554 5.7.1 <x>: Relay access denied;
    from=<a> to=<b> proto=ESMTP helo=<h>``, ``QID: hold:``/``discard:``/``filter:``/
    ``warn:``/``redirect:``, milter-reject, and cleanup header/body check actions.
    ``queue_id`` is None for NOQUEUE.
    """

    kind: ClassVar[str] = "reject"
    action: str
    queue_id: str | None
    stage: str | None
    client_host: str | None
    client_ip: str | None
    smtp_code: int | None
    dsn: str | None
    text: str
    sender: str | None = None
    recipient: str | None = None
    proto: str | None = None
    helo: str | None = None
    source: str = "smtpd"
    # cleanup header/body checks: the header or body line the rule matched
    matched: str | None = None


@dataclass(slots=True)
class Postscreen:
    """postscreen verdicts: CONNECT, PASS NEW/OLD, DNSBL rank, PREGREET, HANGUP, ..."""

    kind: ClassVar[str] = "postscreen"
    event: str
    client_ip: str
    client_port: int | None = None
    detail: str | None = None
    rank: int | None = None


@dataclass(slots=True)
class CleanupMessageId:
    """``QID: message-id=<...>`` (cleanup); also ``resent-message-id``."""

    kind: ClassVar[str] = "cleanup_message_id"
    queue_id: str
    message_id: str
    resent: bool = False  # True for a Resent-Message-ID header


@dataclass(slots=True)
class Pickup:
    """``QID: uid=0 from=<root>`` (pickup): locally submitted mail."""

    kind: ClassVar[str] = "pickup"
    queue_id: str
    uid: int | None
    sender: str


@dataclass(slots=True)
class QmgrFrom:
    """``QID: from=<s>, size=N, nrcpt=N (queue active)``."""

    kind: ClassVar[str] = "qmgr_from"
    queue_id: str
    sender: str
    size: int
    nrcpt: int


@dataclass(slots=True)
class QmgrRemoved:
    """``QID: removed``: the end of one queue-ID lifetime."""

    kind: ClassVar[str] = "qmgr_removed"
    queue_id: str


@dataclass(slots=True)
class QmgrExpired:
    """``QID: from=<s>, status=expired, returned to sender`` (or ``, expired``)."""

    kind: ClassVar[str] = "qmgr_expired"
    queue_id: str
    sender: str
    returned: bool


@dataclass(slots=True)
class Delivery:
    """One recipient's delivery attempt by any agent (smtp, lmtp, local, virtual, pipe,
    error, discard, retry).

    ``QID: to=<r>, orig_to=<o>, relay=h[ip]:port, conn_use=2, delay=0.5,
    delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)``.

    ``transport`` is the delivery agent's name (the last part of the program, such as
    ``lmtp`` for ``postfix/lmtp``); ``response`` is the parenthesised text, split into
    ``smtp_code``, ``enhanced_code`` and ``text`` when it is a remote reply.
    ``dovecot_session`` is the Dovecot session ID carried in an LMTP reply.
    """

    kind: ClassVar[str] = "delivery"
    queue_id: str
    transport: str
    recipient: str
    status: str
    orig_recipient: str | None = None
    relay: str | None = None
    relay_host: str | None = None
    relay_ip: str | None = None
    relay_port: int | None = None
    conn_use: int | None = None
    delay: float | None = None
    delay_before_qmgr: float | None = None
    delay_in_qmgr: float | None = None
    delay_conn_setup: float | None = None
    delay_transmission: float | None = None
    dsn: str | None = None
    response: str = ""
    smtp_code: int | None = None
    enhanced_code: str | None = None
    text: str = ""
    dovecot_session: str | None = None
    tls: str | None = None  # the ``tls=`` summary that newer Postfix versions log


@dataclass(slots=True)
class Notification:
    """``QID: sender non-delivery notification: NEWQID`` (bounce; also delay, success
    and trace notifications). Links the original and the notification queue IDs."""

    kind: ClassVar[str] = "notification"
    queue_id: str
    notification: str
    notification_queue_id: str


@dataclass(slots=True)
class Postsuper:
    """``QID: removed`` / ``placed on hold`` / ``released from hold`` / ``requeued``
    written by postsuper."""

    kind: ClassVar[str] = "postsuper"
    queue_id: str
    action: str


@dataclass(slots=True)
class QueueEvent:
    """Other per-queue-ID lines worth keeping as part of a message's trace
    (``queued as`` links of content filters, smtp ``conversation with`` errors, ...)."""

    kind: ClassVar[str] = "queue_event"
    queue_id: str
    event: str
    detail: str


@dataclass(slots=True)
class Severity:
    """A ``warning:``, ``error:``, ``fatal:`` or ``panic:`` line, or a master/anvil
    notice, from any Postfix or Dovecot process."""

    kind: ClassVar[str] = "severity"
    severity: str
    text: str


@dataclass(slots=True)
class Info:
    """A recognised line that carries nothing the delivery model uses (anvil statistics,
    ``daemon started``, scache, ...); counted as parsed, not as unknown."""

    kind: ClassVar[str] = "info"
    what: str


# --------------------------------------------------------------------------- Dovecot


@dataclass(slots=True)
class DovecotDelivery:
    """An LMTP or LDA save: ``lmtp(user)<pid><session>: msgid=<m>: saved mail to INBOX``
    or ``save failed to INBOX: Quota exceeded (mailbox for user is full)``.

    ``session`` is the Dovecot session ID that Postfix also logs in the LMTP reply.
    ``delivery_time_ms``/``session_time_ms``/``size``/``sender`` come from
    ``deliver_log_format`` extras when the operator configured them.
    """

    kind: ClassVar[str] = "dovecot_delivery"
    service: str
    user: str
    session: str | None
    msgid: str | None
    status: str
    mailbox: str | None
    reason: str | None = None
    delivery_time_ms: float | None = None
    session_time_ms: float | None = None
    size: int | None = None
    sender: str | None = None


@dataclass(slots=True)
class DovecotLmtpError:
    """lmtp-server RCPT/DATA errors (``lmtp(pid): Error: ...``), refused recipients."""

    kind: ClassVar[str] = "dovecot_lmtp_error"
    user: str | None
    session: str | None
    text: str


@dataclass(slots=True)
class DovecotConnection:
    """LMTP connect / disconnect lines (``Connect from 127.0.0.1``)."""

    kind: ClassVar[str] = "dovecot_connection"
    service: str
    event: str
    remote_ip: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class DovecotSieve:
    """A sieve action: ``sieve: msgid=<m>: stored mail into mailbox 'Spam'``,
    ``forwarded to <x>``, ``discarded``, ``rejected``."""

    kind: ClassVar[str] = "dovecot_sieve"
    user: str | None
    session: str | None
    msgid: str | None
    action: str
    detail: str | None = None


@dataclass(slots=True)
class DovecotAuth:
    """imap/pop3/submission login results and auth failures, counted as events."""

    kind: ClassVar[str] = "dovecot_auth"
    service: str
    event: str
    user: str | None = None
    remote_ip: str | None = None
    method: str | None = None
    detail: str | None = None


# --------------------------------------------------------------------------- neither


@dataclass(slots=True)
class Unparsed:
    """A line no parser took. ``reason`` says which stage gave up: ``envelope`` (no
    known frame), ``program`` (a program mailtriage does not read) or ``message`` (a
    known program with an unknown message). ``shape`` is the masked message."""

    kind: ClassVar[str] = "unparsed"
    reason: str
    shape: str
    text: str


Record = (
    SmtpdConnect
    | SmtpdDisconnect
    | SmtpdClient
    | SmtpdEvent
    | Reject
    | Postscreen
    | CleanupMessageId
    | Pickup
    | QmgrFrom
    | QmgrRemoved
    | QmgrExpired
    | Delivery
    | Notification
    | Postsuper
    | QueueEvent
    | Severity
    | Info
    | DovecotDelivery
    | DovecotLmtpError
    | DovecotConnection
    | DovecotSieve
    | DovecotAuth
    | Unparsed
)
