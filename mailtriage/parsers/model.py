"""The delivery model: what the assembler emits and the store keeps.

The assembler turns records into rows of these kinds and collects them in a ``Batch``.
One row type per store table; field names are the column names.

Counting rules that follow from the model (the README states them for users):
- a ``MessageRow`` is one queue-ID lifetime on one host (queue IDs are reused, so the
  key includes the first time the ID was seen);
- an ``AttemptRow`` is one delivery attempt for one recipient; ``final`` is true for
  the attempt that decided the recipient's fate (sent, bounced, expired), false for
  deferrals. Delay percentiles and histograms use final attempts only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def message_key(host: str, queue_id: str, first_ts: float) -> str:
    """The stable identity of one queue-ID lifetime: ``host/QID/first-seen-ms``."""
    return f"{host}/{queue_id}/{int(first_ts * 1000)}"


@dataclass(slots=True)
class MessageRow:
    """One message as Postfix queued it on one host."""

    key: str
    host: str
    queue_id: str
    first_ts: float
    last_ts: float
    closed: bool
    origin: str  # smtpd | pickup | bounce | local | unknown
    client_host: str | None = None
    client_ip: str | None = None
    sasl_method: str | None = None
    sasl_username: str | None = None
    message_id: str | None = None
    sender: str | None = None
    sender_domain: str | None = None
    size: int | None = None
    nrcpt: int | None = None
    tenant: str = "unassigned"
    parent_queue_id: str | None = None
    expired: bool = False


@dataclass(slots=True)
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
    sender: str | None = None
    sender_domain: str | None = None
    message_id: str | None = None
    orig_recipient: str | None = None
    program: str | None = None
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
    smtp_code: int | None = None
    enhanced_code: str | None = None
    response: str = ""
    cause: str | None = None
    temporary: bool | None = None
    dovecot_session: str | None = None
    # The normalised Postfix-to-Dovecot join key (the assembler's docstring says how
    # it is made): equal to DovecotRow.dovecot_key for the Dovecot side of this attempt.
    dovecot_key: str | None = None


@dataclass(slots=True)
class RejectRow:
    """A refusal before or at queueing (smtpd, postscreen, cleanup, milter)."""

    ts: float
    host: str
    program: str
    action: str
    stage: str | None
    queue_id: str | None
    client_host: str | None
    client_ip: str | None
    smtp_code: int | None
    dsn: str | None
    text: str
    cause: str
    sender: str | None = None
    recipient: str | None = None
    recipient_domain: str | None = None
    tenant: str = "unassigned"


@dataclass(slots=True)
class DovecotRow:
    """Dovecot's side of one LMTP/LDA delivery; joined to ``AttemptRow`` on the
    session ID and recipient in the store."""

    ts: float
    host: str
    service: str
    recipient: str
    recipient_domain: str
    tenant: str
    session: str | None
    msgid: str | None
    status: str  # saved | failed | rejected
    mailbox: str | None
    reason: str | None
    cause: str | None
    delivery_time_ms: float | None = None
    session_time_ms: float | None = None
    size: int | None = None
    sender: str | None = None
    # The normalised join key, equal to AttemptRow.dovecot_key of the Postfix side.
    dovecot_key: str | None = None


@dataclass(slots=True)
class EventRow:
    """A severity event, a Dovecot auth event or another counted event."""

    ts: float
    host: str
    program: str
    category: str  # warning | error | fatal | panic | auth_failed | notification | ...
    text: str
    queue_id: str | None = None


@dataclass(slots=True)
class LineRow:
    """A raw line that belongs to a message, kept for the message trace."""

    ts: float
    host: str
    queue_id: str
    program: str
    line: str
    # The MessageRow.key of the lifetime the line belongs to (queue IDs are reused).
    message_key: str | None = None


@dataclass(slots=True)
class UnparsedRow:
    """Unparsed lines of one masked shape, counted."""

    program: str
    reason: str
    shape: str
    example: str
    count: int
    first_ts: float | None
    last_ts: float | None


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
