"""The delivery model: what the assembler emits and the store keeps.

The assembler turns records into rows of these kinds and collects them in a ``Batch``.
One row type per store table; field names are the column names.

Counting rules that follow from the model (the README states them for users):
- a ``MessageRow`` is one queue-ID lifetime on one host (queue IDs are reused, so the
  key includes the first time the ID was seen);
- an ``AttemptRow`` is one delivery attempt for one recipient; ``final`` is true for
  the attempt that decided the recipient's fate (sent, bounced, expired), false for
  deferrals. Delay percentiles and histograms use final attempts only.

The rows are compiled into native classes by mypyc in the shipped build (``setup.py``),
which shapes two things here. Each row spells out its ``__init__`` (the arguments are
the fields, in order and with their defaults; a test holds them to it): mypyc compiles
a written one, while the one ``dataclass`` would generate stays interpreted and is
slower than no compilation at all. And a field that may be None is annotated with one
of the aliases below, in quotes: mypyc replaces a union in the annotations it keeps at
run time by ``type``, but keeps a quoted name, and ``app/store/columns.py`` derives
the Arrow schema of each table from those annotations. ``Batch``, built once per
``take()``, keeps the ``__init__`` that ``dataclass`` makes.

Known shortcoming: a compiled row cannot be pickled or copied with ``copy`` (mypyc's
constructor runs ``__init__``, which both leave out); nothing in mailtriage does
either, ``dataclasses.replace`` works, and ingest workers send Arrow columns.
"""

from dataclasses import dataclass, field
from typing import TypeAlias

StrOrNone: TypeAlias = str | None
IntOrNone: TypeAlias = int | None
FloatOrNone: TypeAlias = float | None
BoolOrNone: TypeAlias = bool | None


def message_key(host: str, queue_id: str, first_ts: float) -> str:
    """The stable identity of one queue-ID lifetime: ``host/QID/first-seen-ms``."""
    return f"{host}/{queue_id}/{int(first_ts * 1000)}"


@dataclass(slots=True, init=False)
class MessageRow:
    """One message as Postfix queued it on one host."""

    key: str
    host: str
    queue_id: str
    first_ts: float
    last_ts: float
    closed: bool
    origin: str  # smtpd | pickup | bounce | local | unknown
    client_host: "StrOrNone" = None
    client_ip: "StrOrNone" = None
    sasl_method: "StrOrNone" = None
    sasl_username: "StrOrNone" = None
    message_id: "StrOrNone" = None
    sender: "StrOrNone" = None
    sender_domain: "StrOrNone" = None
    size: "IntOrNone" = None
    nrcpt: "IntOrNone" = None
    tenant: str = "unassigned"
    parent_queue_id: "StrOrNone" = None
    expired: bool = False

    def __init__(
        self,
        key: str,
        host: str,
        queue_id: str,
        first_ts: float,
        last_ts: float,
        closed: bool,
        origin: str,
        client_host: str | None = None,
        client_ip: str | None = None,
        sasl_method: str | None = None,
        sasl_username: str | None = None,
        message_id: str | None = None,
        sender: str | None = None,
        sender_domain: str | None = None,
        size: int | None = None,
        nrcpt: int | None = None,
        tenant: str = "unassigned",
        parent_queue_id: str | None = None,
        expired: bool = False,
    ) -> None:
        self.key = key
        self.host = host
        self.queue_id = queue_id
        self.first_ts = first_ts
        self.last_ts = last_ts
        self.closed = closed
        self.origin = origin
        self.client_host = client_host
        self.client_ip = client_ip
        self.sasl_method = sasl_method
        self.sasl_username = sasl_username
        self.message_id = message_id
        self.sender = sender
        self.sender_domain = sender_domain
        self.size = size
        self.nrcpt = nrcpt
        self.tenant = tenant
        self.parent_queue_id = parent_queue_id
        self.expired = expired


@dataclass(slots=True, init=False)
class AttemptRow:
    """One delivery attempt for one recipient (a Postfix ``to=`` line, or an expiry)."""

    ts: float
    host: str
    queue_id: str
    message_key: str
    recipient: str
    recipient_domain: str
    transport: str
    status: str  # sent | deferred | bounced | expired | undeliverable | deliverable
    final: bool
    tenant: str = "unassigned"
    sender: "StrOrNone" = None
    sender_domain: "StrOrNone" = None
    message_id: "StrOrNone" = None
    orig_recipient: "StrOrNone" = None
    program: "StrOrNone" = None
    relay_host: "StrOrNone" = None
    relay_ip: "StrOrNone" = None
    relay_port: "IntOrNone" = None
    conn_use: "IntOrNone" = None
    delay: "FloatOrNone" = None
    delay_before_qmgr: "FloatOrNone" = None
    delay_in_qmgr: "FloatOrNone" = None
    delay_conn_setup: "FloatOrNone" = None
    delay_transmission: "FloatOrNone" = None
    dsn: "StrOrNone" = None
    smtp_code: "IntOrNone" = None
    enhanced_code: "StrOrNone" = None
    response: str = ""
    cause: "StrOrNone" = None
    temporary: "BoolOrNone" = None
    dovecot_session: "StrOrNone" = None
    # The normalised Postfix-to-Dovecot join key (the assembler's docstring says how
    # it is made): equal to DovecotRow.dovecot_key for the Dovecot side of this attempt.
    dovecot_key: "StrOrNone" = None

    def __init__(
        self,
        ts: float,
        host: str,
        queue_id: str,
        message_key: str,
        recipient: str,
        recipient_domain: str,
        transport: str,
        status: str,
        final: bool,
        tenant: str = "unassigned",
        sender: str | None = None,
        sender_domain: str | None = None,
        message_id: str | None = None,
        orig_recipient: str | None = None,
        program: str | None = None,
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
        smtp_code: int | None = None,
        enhanced_code: str | None = None,
        response: str = "",
        cause: str | None = None,
        temporary: bool | None = None,
        dovecot_session: str | None = None,
        dovecot_key: str | None = None,
    ) -> None:
        self.ts = ts
        self.host = host
        self.queue_id = queue_id
        self.message_key = message_key
        self.recipient = recipient
        self.recipient_domain = recipient_domain
        self.transport = transport
        self.status = status
        self.final = final
        self.tenant = tenant
        self.sender = sender
        self.sender_domain = sender_domain
        self.message_id = message_id
        self.orig_recipient = orig_recipient
        self.program = program
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
        self.smtp_code = smtp_code
        self.enhanced_code = enhanced_code
        self.response = response
        self.cause = cause
        self.temporary = temporary
        self.dovecot_session = dovecot_session
        self.dovecot_key = dovecot_key


@dataclass(slots=True, init=False)
class RejectRow:
    """A refusal before or at queueing (smtpd, postscreen, cleanup, milter)."""

    ts: float
    host: str
    program: str
    action: str
    stage: "StrOrNone"
    queue_id: "StrOrNone"
    client_host: "StrOrNone"
    client_ip: "StrOrNone"
    smtp_code: "IntOrNone"
    dsn: "StrOrNone"
    text: str
    cause: str
    sender: "StrOrNone" = None
    recipient: "StrOrNone" = None
    recipient_domain: "StrOrNone" = None
    tenant: str = "unassigned"

    def __init__(
        self,
        ts: float,
        host: str,
        program: str,
        action: str,
        stage: str | None,
        queue_id: str | None,
        client_host: str | None,
        client_ip: str | None,
        smtp_code: int | None,
        dsn: str | None,
        text: str,
        cause: str,
        sender: str | None = None,
        recipient: str | None = None,
        recipient_domain: str | None = None,
        tenant: str = "unassigned",
    ) -> None:
        self.ts = ts
        self.host = host
        self.program = program
        self.action = action
        self.stage = stage
        self.queue_id = queue_id
        self.client_host = client_host
        self.client_ip = client_ip
        self.smtp_code = smtp_code
        self.dsn = dsn
        self.text = text
        self.cause = cause
        self.sender = sender
        self.recipient = recipient
        self.recipient_domain = recipient_domain
        self.tenant = tenant


@dataclass(slots=True, init=False)
class DovecotRow:
    """Dovecot's side of one LMTP/LDA delivery; joined to ``AttemptRow`` on the
    session ID and recipient in the store."""

    ts: float
    host: str
    service: str
    recipient: str
    recipient_domain: str
    tenant: str
    session: "StrOrNone"
    msgid: "StrOrNone"
    status: str  # saved | failed | rejected
    mailbox: "StrOrNone"
    reason: "StrOrNone"
    cause: "StrOrNone"
    delivery_time_ms: "FloatOrNone" = None
    session_time_ms: "FloatOrNone" = None
    size: "IntOrNone" = None
    sender: "StrOrNone" = None
    # The normalised join key, equal to AttemptRow.dovecot_key of the Postfix side.
    dovecot_key: "StrOrNone" = None

    def __init__(
        self,
        ts: float,
        host: str,
        service: str,
        recipient: str,
        recipient_domain: str,
        tenant: str,
        session: str | None,
        msgid: str | None,
        status: str,
        mailbox: str | None,
        reason: str | None,
        cause: str | None,
        delivery_time_ms: float | None = None,
        session_time_ms: float | None = None,
        size: int | None = None,
        sender: str | None = None,
        dovecot_key: str | None = None,
    ) -> None:
        self.ts = ts
        self.host = host
        self.service = service
        self.recipient = recipient
        self.recipient_domain = recipient_domain
        self.tenant = tenant
        self.session = session
        self.msgid = msgid
        self.status = status
        self.mailbox = mailbox
        self.reason = reason
        self.cause = cause
        self.delivery_time_ms = delivery_time_ms
        self.session_time_ms = session_time_ms
        self.size = size
        self.sender = sender
        self.dovecot_key = dovecot_key


@dataclass(slots=True, init=False)
class EventRow:
    """A severity event, a Dovecot auth event or another counted event."""

    ts: float
    host: str
    program: str
    category: str  # warning | error | fatal | panic | auth_failed | notification | ...
    text: str
    queue_id: "StrOrNone" = None

    def __init__(
        self,
        ts: float,
        host: str,
        program: str,
        category: str,
        text: str,
        queue_id: str | None = None,
    ) -> None:
        self.ts = ts
        self.host = host
        self.program = program
        self.category = category
        self.text = text
        self.queue_id = queue_id


@dataclass(slots=True, init=False)
class LineRow:
    """A raw line that belongs to a message, kept for the message trace."""

    ts: float
    host: str
    queue_id: str
    program: str
    line: str
    # The MessageRow.key of the lifetime the line belongs to (queue IDs are reused).
    message_key: "StrOrNone" = None

    def __init__(
        self,
        ts: float,
        host: str,
        queue_id: str,
        program: str,
        line: str,
        message_key: str | None = None,
    ) -> None:
        self.ts = ts
        self.host = host
        self.queue_id = queue_id
        self.program = program
        self.line = line
        self.message_key = message_key


@dataclass(slots=True, init=False)
class UnparsedRow:
    """Unparsed lines of one masked shape, counted."""

    program: str
    reason: str
    shape: str
    example: str
    count: int
    first_ts: "FloatOrNone"
    last_ts: "FloatOrNone"

    def __init__(
        self,
        program: str,
        reason: str,
        shape: str,
        example: str,
        count: int,
        first_ts: float | None,
        last_ts: float | None,
    ) -> None:
        self.program = program
        self.reason = reason
        self.shape = shape
        self.example = example
        self.count = count
        self.first_ts = first_ts
        self.last_ts = last_ts


@dataclass(slots=True)
class Batch:
    """Rows ready to be written in one transaction."""

    messages: list[MessageRow] = field(default_factory=list)
    attempts: list[AttemptRow] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)
    dovecot: list[DovecotRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    lines: list[LineRow] = field(default_factory=list)
    unparsed: list[UnparsedRow] = field(default_factory=list)
    lines_read: int = 0
    lines_unparsed: int = 0
    # Fed lines per envelope program as logged (``postfix/smtpd``; "" without an
    # envelope), summing to ``lines_read``: the metrics count lines by program.
    lines_by_program: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return (
            len(self.messages)
            + len(self.attempts)
            + len(self.rejects)
            + len(self.dovecot)
            + len(self.events)
            + len(self.lines)
            + len(self.unparsed)
        )
