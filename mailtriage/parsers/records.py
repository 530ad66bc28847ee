"""Typed records: what one log line says, before any state is applied.

A parser turns the message part of a line (after the syslog envelope) into exactly one
of these records, or into ``Unparsed``. Records are plain slotted dataclasses: cheap to
build on the hot path, easy to turn into JSON (``dataclasses.asdict``) for
``mailtriage parse``.

Two things here are for mypyc, which compiles this module into native classes in the
shipped build (``setup.py``). Every class spells out its ``__init__``: mypyc compiles
a written one, while the one ``dataclass`` would generate stays interpreted and makes a
compiled record slower to build than an uncompiled one. Its arguments are the fields,
in order and with their defaults (a test holds them to it). And a record's ``kind`` is
set on the class right after it (``SmtpdConnect.kind = "smtpd_connect"``) rather than
declared as a ``ClassVar`` in its body, because mypyc hands a dataclass's class
variables to ``dataclass`` as fields. Known shortcoming: a compiled record cannot be
pickled or copied with ``copy``, as ``model.py`` says of rows.

Times are UTC instants as float epoch seconds; the envelope parser converts every
timestamp form into this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class _Record:
    """The base of every record: it declares the ``kind`` that each one sets."""

    __slots__ = ()
    kind: ClassVar[str]


@dataclass(slots=True, init=False)
class Envelope:
    """The syslog (or journald, or daemon-native) frame around one message."""

    ts: float
    host: str
    program: str
    pid: int | None
    message: str

    def __init__(
        self, ts: float, host: str, program: str, pid: int | None, message: str
    ) -> None:
        self.ts = ts
        self.host = host
        self.program = program
        self.pid = pid
        self.message = message


# --------------------------------------------------------------------------- Postfix


@dataclass(slots=True, init=False)
class SmtpdConnect(_Record):
    """``connect from mail.example.net[192.0.2.1]`` (smtpd, also submission aliases)."""

    client_host: str
    client_ip: str

    def __init__(self, client_host: str, client_ip: str) -> None:
        self.client_host = client_host
        self.client_ip = client_ip


SmtpdConnect.kind = "smtpd_connect"


@dataclass(slots=True, init=False)
class SmtpdDisconnect(_Record):
    """``disconnect from h[ip] ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=3/5``."""

    client_host: str
    client_ip: str
    commands: dict[str, str]

    def __init__(
        self, client_host: str, client_ip: str, commands: dict[str, str]
    ) -> None:
        self.client_host = client_host
        self.client_ip = client_ip
        self.commands = commands


SmtpdDisconnect.kind = "smtpd_disconnect"


@dataclass(slots=True, init=False)
class SmtpdClient(_Record):
    """``QID: client=h[ip]:port, sasl_method=PLAIN, sasl_username=u``: a new message."""

    queue_id: str
    client_host: str
    client_ip: str
    client_port: int | None = None
    sasl_method: str | None = None
    sasl_username: str | None = None
    orig_queue_id: str | None = None

    def __init__(
        self,
        queue_id: str,
        client_host: str,
        client_ip: str,
        client_port: int | None = None,
        sasl_method: str | None = None,
        sasl_username: str | None = None,
        orig_queue_id: str | None = None,
    ) -> None:
        self.queue_id = queue_id
        self.client_host = client_host
        self.client_ip = client_ip
        self.client_port = client_port
        self.sasl_method = sasl_method
        self.sasl_username = sasl_username
        self.orig_queue_id = orig_queue_id


SmtpdClient.kind = "smtpd_client"


@dataclass(slots=True, init=False)
class SmtpdEvent(_Record):
    """Other smtpd/postscreen/tlsproxy connection events.

    ``event`` is one of: lost_connection, timeout, tls_established, tls_error,
    too_many_errors, sasl_failed, warning_client, improper_pipelining, other.
    """

    event: str
    client_host: str | None = None
    client_ip: str | None = None
    stage: str | None = None
    detail: str | None = None

    def __init__(
        self,
        event: str,
        client_host: str | None = None,
        client_ip: str | None = None,
        stage: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.event = event
        self.client_host = client_host
        self.client_ip = client_ip
        self.stage = stage
        self.detail = detail


SmtpdEvent.kind = "smtpd_event"


@dataclass(slots=True, init=False)
class Reject(_Record):
    """A refusal or hold before or at queueing.

    Covers ``NOQUEUE: reject: RCPT from h[ip]: 554 5.7.1 <x>: Relay access denied;
    from=<a> to=<b> proto=ESMTP helo=<h>``, ``QID: hold:``/``discard:``/``filter:``/
    ``warn:``/``redirect:``, milter-reject, and cleanup header/body check actions.
    ``queue_id`` is None for NOQUEUE.
    """

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

    def __init__(
        self,
        action: str,
        queue_id: str | None,
        stage: str | None,
        client_host: str | None,
        client_ip: str | None,
        smtp_code: int | None,
        dsn: str | None,
        text: str,
        sender: str | None = None,
        recipient: str | None = None,
        proto: str | None = None,
        helo: str | None = None,
        source: str = "smtpd",
        matched: str | None = None,
    ) -> None:
        self.action = action
        self.queue_id = queue_id
        self.stage = stage
        self.client_host = client_host
        self.client_ip = client_ip
        self.smtp_code = smtp_code
        self.dsn = dsn
        self.text = text
        self.sender = sender
        self.recipient = recipient
        self.proto = proto
        self.helo = helo
        self.source = source
        self.matched = matched


Reject.kind = "reject"


@dataclass(slots=True, init=False)
class Postscreen(_Record):
    """postscreen verdicts: CONNECT, PASS NEW/OLD, DNSBL rank, PREGREET, HANGUP, ..."""

    event: str
    client_ip: str
    client_port: int | None = None
    detail: str | None = None
    rank: int | None = None

    def __init__(
        self,
        event: str,
        client_ip: str,
        client_port: int | None = None,
        detail: str | None = None,
        rank: int | None = None,
    ) -> None:
        self.event = event
        self.client_ip = client_ip
        self.client_port = client_port
        self.detail = detail
        self.rank = rank


Postscreen.kind = "postscreen"


@dataclass(slots=True, init=False)
class CleanupMessageId(_Record):
    """``QID: message-id=<...>`` (cleanup); also ``resent-message-id``."""

    queue_id: str
    message_id: str
    resent: bool = False  # True for a Resent-Message-ID header

    def __init__(self, queue_id: str, message_id: str, resent: bool = False) -> None:
        self.queue_id = queue_id
        self.message_id = message_id
        self.resent = resent


CleanupMessageId.kind = "cleanup_message_id"


@dataclass(slots=True, init=False)
class Pickup(_Record):
    """``QID: uid=0 from=<root>`` (pickup): locally submitted mail."""

    queue_id: str
    uid: int | None
    sender: str

    def __init__(self, queue_id: str, uid: int | None, sender: str) -> None:
        self.queue_id = queue_id
        self.uid = uid
        self.sender = sender


Pickup.kind = "pickup"


@dataclass(slots=True, init=False)
class QmgrFrom(_Record):
    """``QID: from=<s>, size=N, nrcpt=N (queue active)``."""

    queue_id: str
    sender: str
    size: int
    nrcpt: int

    def __init__(self, queue_id: str, sender: str, size: int, nrcpt: int) -> None:
        self.queue_id = queue_id
        self.sender = sender
        self.size = size
        self.nrcpt = nrcpt


QmgrFrom.kind = "qmgr_from"


@dataclass(slots=True, init=False)
class QmgrRemoved(_Record):
    """``QID: removed``: the end of one queue-ID lifetime."""

    queue_id: str

    def __init__(self, queue_id: str) -> None:
        self.queue_id = queue_id


QmgrRemoved.kind = "qmgr_removed"


@dataclass(slots=True, init=False)
class QmgrExpired(_Record):
    """``QID: from=<s>, status=expired, returned to sender`` (or ``, expired``)."""

    queue_id: str
    sender: str
    returned: bool

    def __init__(self, queue_id: str, sender: str, returned: bool) -> None:
        self.queue_id = queue_id
        self.sender = sender
        self.returned = returned


QmgrExpired.kind = "qmgr_expired"


@dataclass(slots=True, init=False)
class Delivery(_Record):
    """One recipient's delivery attempt by any agent (smtp, lmtp, local, virtual, pipe,
    error, discard, retry).

    ``QID: to=<r>, orig_to=<o>, relay=h[ip]:port, conn_use=2, delay=0.5,
    delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)``.

    ``transport`` is the delivery agent's name (the last part of the program, such as
    ``lmtp`` for ``postfix/lmtp``); ``response`` is the parenthesised text, split into
    ``smtp_code``, ``enhanced_code`` and ``text`` when it is a remote reply.
    ``dovecot_session`` is the Dovecot session ID carried in an LMTP reply.
    """

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

    def __init__(
        self,
        queue_id: str,
        transport: str,
        recipient: str,
        status: str,
        orig_recipient: str | None = None,
        relay: str | None = None,
        relay_host: str | None = None,
        relay_ip: str | None = None,
        relay_port: int | None = None,
        conn_use: int | None = None,
        delay: float | None = None,
        delay_before_qmgr: float | None = None,
        delay_in_qmgr: float | None = None,
        delay_conn_setup: float | None = None,
        delay_transmission: float | None = None,
        dsn: str | None = None,
        response: str = "",
        smtp_code: int | None = None,
        enhanced_code: str | None = None,
        text: str = "",
        dovecot_session: str | None = None,
        tls: str | None = None,
    ) -> None:
        self.queue_id = queue_id
        self.transport = transport
        self.recipient = recipient
        self.status = status
        self.orig_recipient = orig_recipient
        self.relay = relay
        self.relay_host = relay_host
        self.relay_ip = relay_ip
        self.relay_port = relay_port
        self.conn_use = conn_use
        self.delay = delay
        self.delay_before_qmgr = delay_before_qmgr
        self.delay_in_qmgr = delay_in_qmgr
        self.delay_conn_setup = delay_conn_setup
        self.delay_transmission = delay_transmission
        self.dsn = dsn
        self.response = response
        self.smtp_code = smtp_code
        self.enhanced_code = enhanced_code
        self.text = text
        self.dovecot_session = dovecot_session
        self.tls = tls


Delivery.kind = "delivery"


@dataclass(slots=True, init=False)
class Notification(_Record):
    """``QID: sender non-delivery notification: NEWQID`` (bounce; also delay, success
    and trace notifications). Links the original and the notification queue IDs."""

    queue_id: str
    notification: str
    notification_queue_id: str

    def __init__(
        self, queue_id: str, notification: str, notification_queue_id: str
    ) -> None:
        self.queue_id = queue_id
        self.notification = notification
        self.notification_queue_id = notification_queue_id


Notification.kind = "notification"


@dataclass(slots=True, init=False)
class Postsuper(_Record):
    """``QID: removed`` / ``placed on hold`` / ``released from hold`` / ``requeued``
    written by postsuper."""

    queue_id: str
    action: str

    def __init__(self, queue_id: str, action: str) -> None:
        self.queue_id = queue_id
        self.action = action


Postsuper.kind = "postsuper"


@dataclass(slots=True, init=False)
class QueueEvent(_Record):
    """Other per-queue-ID lines worth keeping as part of a message's trace
    (``queued as`` links of content filters, smtp ``conversation with`` errors, ...)."""

    queue_id: str
    event: str
    detail: str

    def __init__(self, queue_id: str, event: str, detail: str) -> None:
        self.queue_id = queue_id
        self.event = event
        self.detail = detail


QueueEvent.kind = "queue_event"


@dataclass(slots=True, init=False)
class Severity(_Record):
    """A ``warning:``, ``error:``, ``fatal:`` or ``panic:`` line, or a master/anvil
    notice, from any Postfix or Dovecot process."""

    severity: str
    text: str

    def __init__(self, severity: str, text: str) -> None:
        self.severity = severity
        self.text = text


Severity.kind = "severity"


@dataclass(slots=True, init=False)
class Info(_Record):
    """A recognised line that carries nothing the delivery model uses (anvil statistics,
    ``daemon started``, scache, ...); counted as parsed, not as unknown."""

    what: str

    def __init__(self, what: str) -> None:
        self.what = what


Info.kind = "info"


# --------------------------------------------------------------------------- Dovecot


@dataclass(slots=True, init=False)
class DovecotDelivery(_Record):
    """An LMTP or LDA save: ``lmtp(user)<pid><session>: msgid=<m>: saved mail to INBOX``
    or ``save failed to INBOX: Quota exceeded (mailbox for user is full)``.

    ``session`` is the Dovecot session ID that Postfix also logs in the LMTP reply.
    ``delivery_time_ms``/``session_time_ms``/``size``/``sender`` come from
    ``deliver_log_format`` extras when the operator configured them.
    """

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

    def __init__(
        self,
        service: str,
        user: str,
        session: str | None,
        msgid: str | None,
        status: str,
        mailbox: str | None,
        reason: str | None = None,
        delivery_time_ms: float | None = None,
        session_time_ms: float | None = None,
        size: int | None = None,
        sender: str | None = None,
    ) -> None:
        self.service = service
        self.user = user
        self.session = session
        self.msgid = msgid
        self.status = status
        self.mailbox = mailbox
        self.reason = reason
        self.delivery_time_ms = delivery_time_ms
        self.session_time_ms = session_time_ms
        self.size = size
        self.sender = sender


DovecotDelivery.kind = "dovecot_delivery"


@dataclass(slots=True, init=False)
class DovecotLmtpError(_Record):
    """lmtp-server RCPT/DATA errors (``lmtp(pid): Error: ...``), refused recipients."""

    user: str | None
    session: str | None
    text: str

    def __init__(self, user: str | None, session: str | None, text: str) -> None:
        self.user = user
        self.session = session
        self.text = text


DovecotLmtpError.kind = "dovecot_lmtp_error"


@dataclass(slots=True, init=False)
class DovecotConnection(_Record):
    """LMTP connect / disconnect lines (``Connect from 127.0.0.1``)."""

    service: str
    event: str
    remote_ip: str | None = None
    detail: str | None = None

    def __init__(
        self,
        service: str,
        event: str,
        remote_ip: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.service = service
        self.event = event
        self.remote_ip = remote_ip
        self.detail = detail


DovecotConnection.kind = "dovecot_connection"


@dataclass(slots=True, init=False)
class DovecotSieve(_Record):
    """A sieve action: ``sieve: msgid=<m>: stored mail into mailbox 'Spam'``,
    ``forwarded to <x>``, ``discarded``, ``rejected``."""

    user: str | None
    session: str | None
    msgid: str | None
    action: str
    detail: str | None = None

    def __init__(
        self,
        user: str | None,
        session: str | None,
        msgid: str | None,
        action: str,
        detail: str | None = None,
    ) -> None:
        self.user = user
        self.session = session
        self.msgid = msgid
        self.action = action
        self.detail = detail


DovecotSieve.kind = "dovecot_sieve"


@dataclass(slots=True, init=False)
class DovecotAuth(_Record):
    """imap/pop3/submission login results and auth failures, counted as events."""

    service: str
    event: str
    user: str | None = None
    remote_ip: str | None = None
    method: str | None = None
    detail: str | None = None

    def __init__(
        self,
        service: str,
        event: str,
        user: str | None = None,
        remote_ip: str | None = None,
        method: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.service = service
        self.event = event
        self.user = user
        self.remote_ip = remote_ip
        self.method = method
        self.detail = detail


DovecotAuth.kind = "dovecot_auth"


# --------------------------------------------------------------------------- neither


@dataclass(slots=True, init=False)
class Unparsed(_Record):
    """A line no parser took. ``reason`` says which stage gave up: ``envelope`` (no
    known frame), ``program`` (a program mailtriage does not read) or ``message`` (a
    known program with an unknown message). ``shape`` is the masked message."""

    reason: str
    shape: str
    text: str

    def __init__(self, reason: str, shape: str, text: str) -> None:
        self.reason = reason
        self.shape = shape
        self.text = text


Unparsed.kind = "unparsed"


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
