"""The assembler: typed records of single lines to messages and per-recipient attempts.

State is kept per (host, queue ID). One ``MessageRow`` describes one queue-ID
lifetime: it opens at the first line that names the ID (``smtpd`` ``client=``,
``pickup``, ``cleanup`` ``message-id=``, ``qmgr`` ``from=``, or any later line when
the start was not seen) and closes at ``removed``, which qmgr(8) logs when it deletes
the queue file after the last recipient and postsuper(1) when an operator deletes
it, or at a reject that ends the transaction before the message is queued. A queue
ID seen again after ``removed`` by a line that starts a message opens a new lifetime:
Postfix reuses queue IDs, and ``model.message_key`` tells the lifetimes apart.

Decisions, stated once here:

- **Grace window.** A line for a closed ID that does not start a message (a delivery,
  an expiry, a notification, ...) and arrives within ``grace_seconds`` (log time, per
  host) of the ``removed`` line attaches to the closed lifetime rather than opening a
  new one: syslog can reorder lines of different processes written in the same
  instant. Later than that, it opens a new lifetime with origin ``unknown``. The
  default window is 15 s; closed lifetimes are kept that long (and never more than
  ``max_open_messages`` per host), so the window costs memory at high message rates.
- **Origin.** ``smtpd`` when smtpd logged ``client=``, ``pickup`` for ``pickup``,
  ``bounce`` when a bounce/defer/trace notification names the ID as the one it
  created (``parent_queue_id`` is then the original), ``local`` when the birth was
  seen (cleanup) but none of those (local(8) forwarding, aliases), ``unknown`` when
  the first line seen is a later one. A message re-injected by an after-queue
  content filter names its filter input as ``parent_queue_id`` too.
- **Tenant of a message.** The submitter (SASL user, else sender domain); for inbound
  mail that matches neither, the owner of the first owned recipient domain. Each
  attempt carries its own tenant by ``TenantMap.attribute``.
- **Bounded memory.** At most ``max_open_messages`` lifetimes are open; beyond that
  the least recently touched one is evicted (its last MessageRow stays open,
  ``closed=False``) and ``evicted`` counts it. A later line for it opens a new
  lifetime with origin ``unknown``. An open lifetime takes about 1.1 kB. A second
  ``client=`` or ``pickup`` line for an open ID means its ``removed`` line was lost
  (syslog over UDP drops lines): the old lifetime is left unclosed, ``superseded``
  counts it, and a new one opens.
- **Postfix-to-Dovecot join.** ``AttemptRow.dovecot_key`` and ``DovecotRow.dovecot_key``
  hold one normalised key, so the store joins the two sides (from any hosts, in any
  order) with one equality. A success joins on the per-recipient Dovecot session ID
  (``session_join_key``): Postfix's attempt when ``status=sent`` with a session in
  the reply, Dovecot's ``lmtp`` row when it is not a failure. Everything else joins
  on message-id and recipient (``message_join_key``): Postfix attempts by a
  non-``smtp`` agent, Dovecot failures and LDA rows. A recipient retried after a
  failure has several rows with the same ``m:`` key on both sides, which the store
  pairs by time.

``feed`` is the hot path: one dict lookup dispatches on the record type, and rows are
built positionally (the field orders are checked by a test).
"""

from __future__ import annotations

import gc
import io
import pickle
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from operator import attrgetter
from typing import Any, Final, cast

from mailtriage.errors import StoreError
from mailtriage.parsers.classify import (
    classify_delivery,
    classify_dovecot,
    classify_reject,
)
from mailtriage.parsers.model import (
    AttemptRow,
    Batch,
    DovecotRow,
    EventRow,
    LineRow,
    MessageRow,
    RejectRow,
    UnparsedRow,
    message_key,
)
from mailtriage.parsers.records import (
    CleanupMessageId,
    Delivery,
    DovecotAuth,
    DovecotDelivery,
    DovecotLmtpError,
    DovecotSieve,
    Envelope,
    Notification,
    Pickup,
    Postsuper,
    QmgrExpired,
    QmgrFrom,
    QmgrRemoved,
    QueueEvent,
    Record,
    Reject,
    Severity,
    SmtpdClient,
    Unparsed,
)
from mailtriage.parsers.tenants import UNASSIGNED, TenantMap, domain_of

# Origins that mark the birth of a queue file; a message is born only once.
_BORN: Final = frozenset({"smtpd", "pickup"})

# Outcomes that decide a recipient's fate (model.AttemptRow.final).
_FINAL: Final = frozenset({"sent", "bounced", "expired"})

# SMTP stages at which a refusal with a queue ID refuses one command but leaves the
# transaction (and the queue file smtpd created at the first accepted RCPT) alive.
# At any other stage (DATA, END-OF-MESSAGE, cleanup's header and body checks) the
# message ends without a qmgr "removed" line.
_COMMAND_STAGES: Final = frozenset(
    {"CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "ETRN", "VRFY", "AUTH", "STARTTLS"}
)
# Reject-record actions that refuse or hold mail (smtpd access(5), header_checks(5),
# milters); the others only tag or reroute it.
_REFUSALS: Final = frozenset(
    {"reject", "milter-reject", "proxy-reject", "discard", "milter-discard", "hold"}
)

# Pigeonhole (Sieve) actions that decide a delivery, as DovecotRow statuses.
_SIEVE_STATUS: Final = {
    "stored": "saved",
    "kept": "saved",
    "discarded": "discarded",
    "forwarded": "forwarded",
    "rejected": "rejected",
}

# Unparsed shapes waiting for take(): beyond this many, new shapes are counted
# under one overflow shape so that a flood of garbage cannot grow memory.
_UNPARSED_SHAPES_LIMIT: Final = 20_000
_OVERFLOW_SHAPE: Final = "<too many distinct shapes>"
_EXAMPLE_CHARS: Final = 1000

_SNAPSHOT_VERSION: Final = 1


def _strip_detail(address: str) -> str:
    # Dovecot strips the recipient_delimiter detail ("+tag", its default delimiter)
    # from the user name it logs; compare both sides without it.
    plus = address.find("+")
    if plus < 0:
        return address
    at = address.find("@", plus)
    return address[:plus] + (address[at:] if at >= 0 else "")


def session_join_key(session: str) -> str:
    """The join key of a successful LMTP delivery: ``s:<per-recipient session ID>``.

    Dovecot gives every recipient of an LMTP transaction its own session ID (the
    transaction ID, suffixed ``:R<n>``, or ``:<n>`` in older releases, from the
    second recipient on) and writes it both in its own log prefix
    (``lmtp(user)<pid><session>``) and in the ``250 2.0.0 <rcpt> <session> Saved``
    reply that Postfix logs. That ID alone is unique per recipient and delivery, so
    the suffix is kept and no recipient is needed.
    """
    return "s:" + session.strip().strip("<>")


def message_join_key(message_id: str, recipient: str) -> str:
    """The join key when no session ID reaches Postfix: ``m:<msgid> <recipient>``.

    Dovecot's failure replies (``552 5.2.2 <rcpt> Quota exceeded``) carry no session
    ID and LDA (``dovecot-lda`` run by pipe or local) has no reply at all. The
    message-id is taken without angle brackets; the recipient lower-cased (Dovecot's
    default ``auth_username_format`` is ``%Lu``) and without a ``+detail`` (Dovecot
    strips its ``recipient_delimiter`` part from the user name it logs).
    """
    msgid = message_id.strip().strip("<>")
    return f"m:{msgid} {_strip_detail(recipient.strip('<>').lower())}"


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


_MESSAGE_FIELDS = _names(MessageRow)
_message_values = attrgetter(*_MESSAGE_FIELDS)


def _copy_message(row: MessageRow) -> MessageRow:
    return MessageRow(*_message_values(row))


# Batch lists that snapshot() carries when rows were built but not yet taken.
_PENDING_ROWS: dict[str, type] = {
    "messages": MessageRow,
    "attempts": AttemptRow,
    "rejects": RejectRow,
    "dovecot": DovecotRow,
    "events": EventRow,
    "lines": LineRow,
}
_row_values: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    cls: attrgetter(*_names(cls)) for cls in _PENDING_ROWS.values()
}
_unparsed_values = attrgetter(*_names(UnparsedRow))


def _refuse_objects(module: str, name: str) -> Any:
    raise pickle.UnpicklingError(f"a snapshot holds no objects ({module}.{name})")


# An unpickler that loads plain values only: a checkpoint can never name a class or
# a function, so loading one cannot run code. Made with type() so that it stays an
# ordinary Python class when mypyc compiles this module (setup.py): a compiled
# subclass of the C unpickler crashes the interpreter.
_PlainUnpickler = cast(
    "type[pickle.Unpickler]",
    type(
        "_PlainUnpickler",
        (pickle.Unpickler,),
        {"find_class": staticmethod(_refuse_objects)},
    ),
)


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Building or loading a snapshot allocates a few containers per open message;
    # with the collector on, each young-generation pass would traverse them again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_UNREADABLE = (
    "the assembler state in the checkpoint is unreadable ({exc}); "
    "re-ingest the source from its start"
)


class _Msg:
    """One queue-ID lifetime: its row, its recipients' latest outcome, and flags."""

    __slots__ = ("closed_ts", "dirty", "rcpts", "row", "shared", "submitter")

    def __init__(self, row: MessageRow, submitter: str = UNASSIGNED) -> None:
        self.row = row
        # recipient -> (latest status, transport of that attempt)
        self.rcpts: dict[str, tuple[str, str]] = {}
        self.submitter = submitter
        self.dirty = False
        # True once take() handed ``row`` out: the next change works on a copy.
        self.shared = False
        self.closed_ts: float | None = None


_Handler = Callable[[Envelope, Any, str], None]


class Assembler:
    """Turns (envelope, record, raw line) triples into the rows of the delivery model.

    Not thread-safe: one assembler per ingest stream. ``take()`` hands over the rows
    built since the previous take; ``snapshot()``/``restore()`` carry the open state
    across processes through the store's checkpoint. ``grace_seconds`` is the grace
    window of the module docstring.
    """

    def __init__(
        self,
        tenants: TenantMap,
        *,
        max_open_messages: int = 200_000,
        keep_lines: bool = True,
        grace_seconds: float = 15.0,
    ) -> None:
        self._tenants = tenants
        self._max_open = max(1, max_open_messages)
        self._keep_lines = keep_lines
        self._grace = grace_seconds
        self._open: OrderedDict[tuple[str, str], _Msg] = OrderedDict()
        self._closed: dict[str, OrderedDict[str, _Msg]] = {}
        self._dirty: list[_Msg] = []
        self._batch = Batch()
        self._unparsed: dict[tuple[str, str, str], UnparsedRow] = {}
        self._by_program: dict[str, int] = {}
        self.evicted = 0
        self.superseded = 0
        self._dispatch: dict[type, _Handler] = {
            SmtpdClient: self._on_smtpd_client,
            Pickup: self._on_pickup,
            CleanupMessageId: self._on_cleanup,
            QmgrFrom: self._on_qmgr_from,
            QmgrRemoved: self._on_removed,
            QmgrExpired: self._on_expired,
            Delivery: self._on_delivery,
            Notification: self._on_notification,
            Postsuper: self._on_postsuper,
            QueueEvent: self._on_queue_event,
            Reject: self._on_reject,
            Severity: self._on_severity,
            DovecotDelivery: self._on_dovecot_delivery,
            DovecotSieve: self._on_dovecot_sieve,
            DovecotLmtpError: self._on_dovecot_lmtp_error,
            DovecotAuth: self._on_dovecot_auth,
            Unparsed: self._on_unparsed,
        }

    # ------------------------------------------------------------------ public

    @property
    def open_messages(self) -> int:
        """How many queue-ID lifetimes are open now."""
        return len(self._open)

    def feed(self, env: Envelope | None, record: Record, raw: str) -> None:
        """Apply one line. Records that carry nothing for the model are only counted."""
        if env is None:
            self._by_program[""] = self._by_program.get("", 0) + 1
            self._count_unparsed(None, record, raw)
            return
        try:
            self._by_program[env.program] += 1
        except KeyError:
            self._by_program[env.program] = 1
        handler = self._dispatch.get(record.__class__)
        if handler is not None:
            handler(env, record, raw)

    def take(self) -> Batch:
        """The rows completed since the last take, plus every message that changed."""
        batch = self._batch
        for msg in self._dirty:
            msg.dirty = False
            msg.shared = True
            batch.messages.append(msg.row)
        self._dirty = []
        batch.unparsed.extend(self._unparsed.values())
        self._unparsed = {}
        batch.lines_by_program = self._by_program
        batch.lines_read = sum(self._by_program.values())
        self._by_program = {}
        self._batch = Batch()
        return batch

    def close_all(self) -> None:
        """End of input. Nothing becomes final: open messages stay open, and the next
        ``take()`` carries each of them (``closed=False``) in its latest state."""
        for msg in self._open.values():
            self._mark(msg)

    # --------------------------------------------------------------- lifetimes

    def _mark(self, msg: _Msg) -> None:
        if not msg.dirty:
            msg.dirty = True
            self._dirty.append(msg)

    def _touch(self, env: Envelope, queue_id: str, raw: str, opens: str | None) -> _Msg:
        """The lifetime a queue-ID line belongs to, opening one when needed.

        ``opens`` is the origin for records that start a message (they never attach
        to a closed lifetime); None for the others.
        """
        host, ts = env.host, env.ts
        key = (host, queue_id)
        msg = self._open.get(key)
        if msg is None:
            msg = self._closed_within_grace(host, queue_id, ts, opens)
            if msg is None:
                msg = self._start(host, queue_id, ts, opens or "unknown")
        else:
            self._open.move_to_end(key)
        self._note_line(ts, host, env.program, queue_id, raw, msg)
        return msg

    def _find(self, env: Envelope, queue_id: str, raw: str) -> _Msg | None:
        """Like ``_touch`` for lines that only end a lifetime: never opens one."""
        host, ts = env.host, env.ts
        msg = self._open.get((host, queue_id))
        if msg is None:
            msg = self._closed_within_grace(host, queue_id, ts, None)
        self._note_line(ts, host, env.program, queue_id, raw, msg)
        return msg

    def _note_line(
        self,
        ts: float,
        host: str,
        program: str,
        queue_id: str,
        raw: str,
        msg: _Msg | None,
    ) -> None:
        """Extend the lifetime's time span, mark it changed, keep the raw line."""
        key = None
        if msg is not None:
            # Every handler reaches a lifetime through here before it changes the
            # row, so this is the one place that copies a row take() handed out
            # (most rows, those of closed messages, are never copied).
            if msg.shared:
                msg.row = _copy_message(msg.row)
                msg.shared = False
            row = msg.row
            key = row.key
            if ts > row.last_ts:
                row.last_ts = ts
            elif ts < row.first_ts:
                row.first_ts = ts
            if not msg.dirty:
                msg.dirty = True
                self._dirty.append(msg)
        if self._keep_lines:
            self._batch.lines.append(LineRow(ts, host, queue_id, program, raw, key))

    def _closed_within_grace(
        self, host: str, queue_id: str, ts: float, opens: str | None
    ) -> _Msg | None:
        tombs = self._closed.get(host)
        if not tombs:
            return None
        msg = tombs.get(queue_id)
        if msg is None:
            return None
        closed_ts = msg.closed_ts if msg.closed_ts is not None else ts
        if opens is None and ts - closed_ts <= self._grace:
            return msg
        del tombs[queue_id]
        return None

    def _start(self, host: str, queue_id: str, ts: float, origin: str) -> _Msg:
        key = message_key(host, queue_id, ts)
        msg = _Msg(MessageRow(key, host, queue_id, ts, ts, False, origin))
        self._open[(host, queue_id)] = msg
        if len(self._open) > self._max_open:
            self._open.popitem(last=False)
            self.evicted += 1
        return msg

    def _end(self, msg: _Msg, ts: float) -> None:
        """Close a lifetime and keep it for late lines during the grace window."""
        row = msg.row
        if row.closed:
            return
        row.closed = True
        msg.closed_ts = ts
        self._mark(msg)
        self._open.pop((row.host, row.queue_id), None)
        tombs = self._closed.get(row.host)
        if tombs is None:
            tombs = self._closed[row.host] = OrderedDict()
        tombs.pop(row.queue_id, None)
        tombs[row.queue_id] = msg
        self._expire_tombs(tombs, ts)

    def _expire_tombs(self, tombs: OrderedDict[str, _Msg], ts: float) -> None:
        horizon = ts - self._grace
        while tombs:
            oldest = tombs[next(iter(tombs))]
            closed_ts = oldest.closed_ts if oldest.closed_ts is not None else ts
            if closed_ts >= horizon and len(tombs) <= self._max_open:
                return
            tombs.popitem(last=False)

    def _set_sender(self, msg: _Msg, sender: str) -> None:
        row = msg.row
        if row.sender == sender:
            return
        row.sender = sender
        row.sender_domain = domain_of(sender) or None
        self._resolve_tenant(msg)

    def _resolve_tenant(self, msg: _Msg) -> None:
        row = msg.row
        msg.submitter = self._tenants.submitter(row.sender_domain, row.sasl_username)
        if msg.submitter != UNASSIGNED:
            row.tenant = msg.submitter

    # ------------------------------------------------------------ Postfix lines

    def _supersede(self, host: str, queue_id: str) -> None:
        """A second birth (smtpd or pickup) of an open queue ID: the previous lifetime
        lost its ``removed`` line (a syslog drop) and stays as it was, unclosed."""
        key = (host, queue_id)
        msg = self._open.get(key)
        if msg is not None and msg.row.origin in _BORN:
            del self._open[key]
            self.superseded += 1

    def _on_smtpd_client(self, env: Envelope, r: SmtpdClient, raw: str) -> None:
        self._supersede(env.host, r.queue_id)
        msg = self._touch(env, r.queue_id, raw, "smtpd")
        row = msg.row
        row.origin = "smtpd"
        row.client_host = r.client_host
        row.client_ip = r.client_ip
        if r.orig_queue_id and row.parent_queue_id is None:
            # An after-queue content filter re-injected this message and passed
            # the original queue ID along (XFORWARD IDENT, XFORWARD_README).
            row.parent_queue_id = r.orig_queue_id
        if r.sasl_username:
            row.sasl_method = r.sasl_method
            row.sasl_username = r.sasl_username
            self._resolve_tenant(msg)

    def _on_pickup(self, env: Envelope, r: Pickup, raw: str) -> None:
        self._supersede(env.host, r.queue_id)
        msg = self._touch(env, r.queue_id, raw, "pickup")
        msg.row.origin = "pickup"
        self._set_sender(msg, r.sender)

    def _on_cleanup(self, env: Envelope, r: CleanupMessageId, raw: str) -> None:
        msg = self._touch(env, r.queue_id, raw, "local")
        row = msg.row
        if row.origin == "unknown":
            row.origin = "local"
        if not r.resent:
            row.message_id = r.message_id

    def _on_qmgr_from(self, env: Envelope, r: QmgrFrom, raw: str) -> None:
        msg = self._touch(env, r.queue_id, raw, "unknown")
        row = msg.row
        row.size = r.size
        row.nrcpt = r.nrcpt
        self._set_sender(msg, r.sender)

    def _on_removed(self, env: Envelope, r: QmgrRemoved, raw: str) -> None:
        msg = self._find(env, r.queue_id, raw)
        if msg is not None:
            self._end(msg, env.ts)

    def _on_delivery(self, env: Envelope, r: Delivery, raw: str) -> None:
        msg = self._touch(env, r.queue_id, raw, None)
        row = msg.row
        rcpt = r.recipient
        status = r.status
        rdomain = domain_of(rcpt)
        msg.rcpts[rcpt] = (status, r.transport)

        owner = self._tenants.for_domain(rdomain)
        if owner is None:
            tenant = msg.submitter
        else:
            tenant = owner
            if row.tenant == UNASSIGNED:
                row.tenant = owner

        cause = temporary = None
        if status != "sent":
            found = classify_delivery(status, r.dsn, r.smtp_code, r.response)
            if found is not None:
                cause, temporary = found
        session = r.dovecot_session
        key = None
        if session is not None and status == "sent":
            key = session_join_key(session)
        elif r.transport != "smtp" and row.message_id:
            # No session ID reached Postfix: a failure reply, or LDA/local.
            key = message_join_key(row.message_id, rcpt)

        self._batch.attempts.append(
            AttemptRow(
                env.ts, row.host, row.queue_id, row.key, rcpt, rdomain,
                r.transport, status, status in _FINAL, tenant,
                row.sender, row.sender_domain, row.message_id, r.orig_recipient,
                env.program, r.relay_host, r.relay_ip, r.relay_port, r.conn_use,
                r.delay, r.delay_before_qmgr, r.delay_in_qmgr, r.delay_conn_setup,
                r.delay_transmission, r.dsn, r.smtp_code, r.enhanced_code,
                r.response, cause, temporary, session, key,
            )
        )  # fmt: skip

    def _on_expired(self, env: Envelope, r: QmgrExpired, raw: str) -> None:
        msg = self._touch(env, r.queue_id, raw, None)
        row = msg.row
        row.expired = True
        if r.sender is not None and row.sender is None:
            self._set_sender(msg, r.sender)
        # qmgr(8) returns the message without a per-recipient line: every recipient
        # still deferred gets its final outcome here.
        for rcpt, (status, transport) in msg.rcpts.items():
            if status != "deferred":
                continue
            msg.rcpts[rcpt] = ("expired", transport)
            rdomain = domain_of(rcpt)
            owner = self._tenants.for_domain(rdomain)
            self._batch.attempts.append(
                AttemptRow(
                    env.ts, row.host, row.queue_id, row.key, rcpt, rdomain,
                    transport, "expired", True, owner or msg.submitter,
                    row.sender, row.sender_domain, row.message_id, None,
                    env.program, cause="expired", temporary=False,
                )
            )  # fmt: skip

    def _on_notification(self, env: Envelope, r: Notification, raw: str) -> None:
        self._touch(env, r.queue_id, raw, None)
        child = self._touch(env, r.notification_queue_id, raw, None)
        child.row.origin = "bounce"
        child.row.parent_queue_id = r.queue_id
        self._batch.events.append(
            EventRow(
                env.ts,
                env.host,
                env.program,
                "notification",
                f"{r.notification}: {r.notification_queue_id}",
                r.queue_id,
            )
        )

    def _on_postsuper(self, env: Envelope, r: Postsuper, raw: str) -> None:
        self._batch.events.append(
            EventRow(env.ts, env.host, env.program, "postsuper", r.action, r.queue_id)
        )
        if r.action == "removed":
            msg = self._find(env, r.queue_id, raw)
            if msg is not None:
                self._end(msg, env.ts)
        else:
            self._touch(env, r.queue_id, raw, None)

    def _on_queue_event(self, env: Envelope, r: QueueEvent, raw: str) -> None:
        self._touch(env, r.queue_id, raw, None)
        self._batch.events.append(
            EventRow(env.ts, env.host, env.program, r.event, r.detail, r.queue_id)
        )

    def _on_reject(self, env: Envelope, r: Reject, raw: str) -> None:
        msg = self._touch(env, r.queue_id, raw, None) if r.queue_id else None
        if r.action not in _REFUSALS:
            # warn/info/replace/prepend/filter/redirect change or tag a message
            # but refuse nothing: counted as events, not as rejects.
            self._batch.events.append(
                EventRow(
                    env.ts, env.host, env.program, "check_" + r.action, r.text,
                    r.queue_id,
                )
            )  # fmt: skip
            return
        if msg is not None and r.sender is not None and msg.row.sender is None:
            self._set_sender(msg, r.sender)
        self._batch.rejects.append(self._reject_row(env, r, msg))
        if msg is not None and r.action != "hold" and r.stage not in _COMMAND_STAGES:
            self._end(msg, env.ts)

    def _reject_row(self, env: Envelope, r: Reject, msg: _Msg | None) -> RejectRow:
        rdomain = domain_of(r.recipient)
        sasl = msg.row.sasl_username if msg is not None else None
        tenant = self._tenants.attribute(rdomain, domain_of(r.sender) or None, sasl)
        cause = classify_reject(r.smtp_code, r.dsn, r.text).cause
        return RejectRow(
            env.ts, env.host, env.program, r.action, r.stage, r.queue_id,
            r.client_host, r.client_ip, r.smtp_code, r.dsn, r.text, cause,
            r.sender, r.recipient, rdomain or None, tenant,
        )  # fmt: skip

    def _on_severity(self, env: Envelope, r: Severity, raw: str) -> None:
        self._batch.events.append(
            EventRow(env.ts, env.host, env.program, r.severity, r.text)
        )

    # ------------------------------------------------------------ Dovecot lines

    def _dovecot_row(
        self,
        env: Envelope,
        r: DovecotDelivery | DovecotSieve | DovecotLmtpError,
        status: str,
        mailbox: str | None,
        reason: str | None,
        cause: str | None,
    ) -> DovecotRow:
        user = r.user or ""
        service = r.service if isinstance(r, DovecotDelivery) else "lmtp"
        msgid = None if isinstance(r, DovecotLmtpError) else r.msgid
        rdomain = domain_of(user)
        tenant = self._tenants.for_domain(rdomain) or UNASSIGNED
        key = None
        if r.session and service == "lmtp" and status != "failed":
            key = session_join_key(r.session)
        elif msgid:
            key = message_join_key(msgid, user)
        return DovecotRow(
            env.ts, env.host, service, user, rdomain, tenant, r.session, msgid,
            status, mailbox, reason, cause, dovecot_key=key,
        )  # fmt: skip

    def _on_dovecot_delivery(self, env: Envelope, r: DovecotDelivery, raw: str) -> None:
        cause = None
        if r.status != "saved":
            cause = classify_dovecot(r.reason or "").cause
        row = self._dovecot_row(env, r, r.status, r.mailbox, r.reason, cause)
        row.delivery_time_ms = r.delivery_time_ms
        row.session_time_ms = r.session_time_ms
        row.size = r.size
        row.sender = r.sender
        self._batch.dovecot.append(row)

    def _on_dovecot_sieve(self, env: Envelope, r: DovecotSieve, raw: str) -> None:
        # With Sieve, Pigeonhole's action line replaces "saved mail to": "stored"
        # (and an implicit "kept") is the save. A vacation reply is an extra action
        # beside the delivery, not an outcome of it.
        status = _SIEVE_STATUS.get(r.action)
        if r.user is None or status is None:
            return
        mailbox = r.detail if status == "saved" else None
        reason = None if status == "saved" else r.detail
        self._batch.dovecot.append(
            self._dovecot_row(env, r, status, mailbox, reason, None)
        )

    def _on_dovecot_lmtp_error(
        self, env: Envelope, r: DovecotLmtpError, raw: str
    ) -> None:
        if r.user is None:
            self._batch.events.append(
                EventRow(env.ts, env.host, env.program, "lmtp_error", r.text)
            )
            return
        # A recipient refused before DATA: no message-id, so nothing to join on,
        # but it still counts as Dovecot refusing that recipient.
        cause = classify_dovecot(r.text).cause
        self._batch.dovecot.append(
            self._dovecot_row(env, r, "rejected", None, r.text, cause)
        )

    def _on_dovecot_auth(self, env: Envelope, r: DovecotAuth, raw: str) -> None:
        category = r.event if r.event.startswith("auth_") else "auth_" + r.event
        text = r.service + (f" user={r.user}" if r.user else "")
        if r.remote_ip:
            text += f" rip={r.remote_ip}"
        if r.detail:
            text += f": {r.detail}"
        self._batch.events.append(
            EventRow(env.ts, env.host, env.program, category, text)
        )

    # ----------------------------------------------------------------- unparsed

    def _on_unparsed(self, env: Envelope, r: Unparsed, raw: str) -> None:
        self._count_unparsed(env, r, raw)

    def _count_unparsed(self, env: Envelope | None, r: Record, raw: str) -> None:
        self._batch.lines_unparsed += 1
        program = env.program if env is not None else ""
        ts = env.ts if env is not None else None
        if isinstance(r, Unparsed):
            reason, shape = r.reason, r.shape[:_EXAMPLE_CHARS]
        else:
            reason, shape = "envelope", ""
        key = (program, reason, shape)
        agg = self._unparsed.get(key)
        if agg is None:
            if len(self._unparsed) >= _UNPARSED_SHAPES_LIMIT:
                key = (program, reason, _OVERFLOW_SHAPE)
                agg = self._unparsed.get(key)
            if agg is None:
                agg = UnparsedRow(
                    program, reason, key[2], raw[:_EXAMPLE_CHARS], 0, ts, ts
                )
                self._unparsed[key] = agg
        agg.count += 1
        if ts is not None:
            if agg.first_ts is None or ts < agg.first_ts:
                agg.first_ts = ts
            if agg.last_ts is None or ts > agg.last_ts:
                agg.last_ts = ts

    # ----------------------------------------------------------------- snapshot

    def snapshot(self) -> bytes:
        """The whole state as compressed plain values: open and recently closed
        lifetimes (with their recipients' latest outcome), rows and unparsed counts
        not yet taken, and the counters. ``restore`` rebuilds an equal assembler."""
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=5)
        # The state is a tree of plain values without cycles, so the memo that
        # pickle keeps for shared references is pure cost (six times slower).
        pickler.fast = True
        with _gc_paused():
            pickler.dump(self._state())
        return zlib.compress(buffer.getvalue(), 1)

    def _state(self) -> dict[str, Any]:
        # Every lifetime once, open ones first and in their eviction order; the
        # grace window and the dirty list refer to them by index.
        order: dict[int, _Msg] = {id(m): m for m in self._open.values()}
        for tombs in self._closed.values():
            for msg in tombs.values():
                order.setdefault(id(msg), msg)
        for msg in self._dirty:
            order.setdefault(id(msg), msg)
        index = {key: at for at, key in enumerate(order)}
        return {
            "version": _SNAPSHOT_VERSION,
            "messages": [
                (
                    _message_values(m.row),
                    tuple(m.rcpts.items()),
                    m.submitter,
                    m.closed_ts,
                )
                for m in order.values()
            ],
            "open": len(self._open),
            "closed": [
                (host, [index[id(m)] for m in tombs.values()])
                for host, tombs in self._closed.items()
            ],
            "dirty": [index[id(m)] for m in self._dirty],
            "rows": {
                name: [_row_values[cls](row) for row in getattr(self._batch, name)]
                for name, cls in _PENDING_ROWS.items()
            },
            "unparsed": [_unparsed_values(u) for u in self._unparsed.values()],
            "lines_by_program": self._by_program,
            "lines_unparsed": self._batch.lines_unparsed,
            "evicted": self.evicted,
            "superseded": self.superseded,
        }

    @classmethod
    def restore(cls, data: bytes, tenants: TenantMap, **kw: Any) -> Assembler:
        """An assembler in the state ``snapshot`` saved; ``kw`` as for the
        constructor. Raises ``StoreError`` when the data is not such a snapshot."""
        asm = cls(tenants, **kw)
        try:
            with _gc_paused():
                state = _PlainUnpickler(io.BytesIO(zlib.decompress(data))).load()
                if state.get("version") != _SNAPSHOT_VERSION:
                    raise ValueError(f"snapshot version {state.get('version')!r}")
                asm._load(state)
        except (pickle.UnpicklingError, zlib.error, EOFError) as exc:
            raise StoreError(_UNREADABLE.format(exc=exc)) from exc
        except (AttributeError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise StoreError(_UNREADABLE.format(exc=exc)) from exc
        return asm

    def _load(self, state: dict[str, Any]) -> None:
        msgs = []
        for row, rcpts, submitter, closed_ts in state["messages"]:
            msg = _Msg(MessageRow(*row), submitter)
            msg.rcpts = dict(rcpts)
            msg.closed_ts = closed_ts
            msgs.append(msg)
        for msg in msgs[: state["open"]]:
            self._open[(msg.row.host, msg.row.queue_id)] = msg
        for host, refs in state["closed"]:
            self._closed[host] = OrderedDict(
                (msgs[at].row.queue_id, msgs[at]) for at in refs
            )
        for at in state["dirty"]:
            self._mark(msgs[at])
        for name, cls in _PENDING_ROWS.items():
            getattr(self._batch, name).extend(cls(*v) for v in state["rows"][name])
        for values in state["unparsed"]:
            agg = UnparsedRow(*values)
            self._unparsed[(agg.program, agg.reason, agg.shape)] = agg
        self._by_program = dict(state["lines_by_program"])
        self._batch.lines_unparsed = state["lines_unparsed"]
        self.evicted = state["evicted"]
        self.superseded = state["superseded"]
        while len(self._open) > self._max_open:
            self._open.popitem(last=False)
            self.evicted += 1
