"""The store interface: what every backend (DuckDB now, ClickHouse later) offers.

The report, the HTTP API, triage, the agent's tools and the metrics bootstrap ask
their questions through the methods of ``Store`` and get the pydantic models below;
no SQL lives outside a backend module.

Every query takes a ``Scope`` (a time window and filters). A tenant token's
restriction travels in the scope as its *confinement* (``Scope.confined_to``), which
no later change to the scope can widen, and each backend applies
``Scope.tenant_filter()`` in its own SQL, so a route that forgets a filter still
cannot show another tenant's rows. ``ConfinedStore`` wraps a store so that every
query it answers is confined, whatever scope the caller builds.

Counting rules (the README and the report's JSON state them for users):

- ``delivered``, ``bounced`` and ``expired`` count recipients by their final outcome
  (a final attempt in the window);
- ``deferred`` counts recipients (one queue-ID lifetime and address) whose latest
  attempt in the window was deferred and who have no final outcome in it;
- ``deferral_attempts`` counts deferred attempts;
- delay percentiles use final attempts only, never deferred retries.

Writes: ``write`` commits a batch of rows, the checkpoints of the sources the rows
came from and the ingest pipeline's open state in one transaction, so that a crash
never separates rows from the positions they cover.
"""

from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from mailtriage.errors import ForbiddenError, QueryError
from mailtriage.parsers.model import Batch

GroupBy = Literal["tenant", "domain", "transport", "cause", "relay", "host"]
"""The dimensions summaries, time series and triage can group by."""

GROUP_BY: tuple[GroupBy, ...] = (
    "tenant",
    "domain",
    "transport",
    "cause",
    "relay",
    "host",
)

STAGES = ("before_queue_manager", "queue_manager", "connection_setup", "transmission")
"""Postfix's ``delays=a/b/c/d`` in order (postconf(5), ``delay_logging_resolution_
limit``; the four stages are described in Postfix's DEBUG_README)."""

FINAL_STATUSES = ("sent", "bounced", "expired")

MAX_LIMIT = 1000
"""The most items one page or top list may hold."""


class Model(BaseModel):
    """Base of the result models: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- scope


class Scope(Model):
    """Which part of the data a query looks at.

    Times are epoch seconds (UTC instants); ``since`` is inclusive, ``until``
    exclusive, None is open. ``domain`` is the recipient domain, ``relay`` the
    relay host Postfix delivered to, ``host`` the host that logged the line.
    """

    since: float | None = None
    until: float | None = None
    tenant: str | None = None
    domain: str | None = None
    host: str | None = None
    transport: str | None = None
    relay: str | None = None
    _confined: str | None = PrivateAttr(default=None)

    @property
    def confined(self) -> str | None:
        """The tenant this scope is confined to, None for an operator's scope."""
        return self._confined

    def confined_to(self, tenant: str | None) -> Self:
        """This scope, restricted to ``tenant`` for good.

        ``None`` (an operator) leaves the scope as it is; a scope already confined
        to another tenant raises ``ForbiddenError``: confinement only narrows.
        """
        if tenant is None:
            return self
        if self._confined is not None and self._confined != tenant:
            raise ForbiddenError(
                f"this caller is confined to tenant {self._confined!r}, not {tenant!r}"
            )
        scoped = self.model_copy()
        scoped._confined = tenant
        return scoped

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied; the confinement is kept."""
        return self.model_copy(update=changes)

    def tenant_filter(self) -> str | None:
        """The one tenant the query must be restricted to, if any.

        A confined scope that asks for another tenant raises ``ForbiddenError``
        (HTTP 403) instead of quietly returning that tenant's rows or nothing.
        """
        if self._confined is None:
            return self.tenant
        if self.tenant is not None and self.tenant != self._confined:
            raise ForbiddenError(
                f"this caller may only see tenant {self._confined!r}, "
                f"not {self.tenant!r}",
            )
        return self._confined


class DeliveryFilter(Scope):
    """A ``Scope`` plus the filters of the deliveries search, with cursor paging."""

    recipient: str | None = None
    sender: str | None = None
    sender_domain: str | None = None
    status: str | None = None
    cause: str | None = None
    queue_id: str | None = None
    message_id: str | None = None
    min_delay: float | None = Field(default=None, ge=0)
    final: bool | None = None
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


class RejectFilter(Scope):
    """A ``Scope`` plus the filters of the rejects search, with cursor paging."""

    action: str | None = None
    cause: str | None = None
    client_ip: str | None = None
    sender: str | None = None
    recipient: str | None = None
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


def encode_cursor(ts: float, row_id: int) -> str:
    """An opaque cursor for the item after (older than) ``ts``/``row_id``."""
    return base64.urlsafe_b64encode(f"{ts!r}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    """The position a cursor of ``encode_cursor`` names; QueryError when invalid."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, row_id = base64.urlsafe_b64decode(padded).decode().split("|")
        return float(ts), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise QueryError(
            f"cursor {cursor!r} is not one this service returned", parameter="cursor"
        ) from exc


# ---------------------------------------------------------------- write side


class Checkpoint(Model):
    """How far one source has been read.

    ``source_id`` is stable across renames and copies (see
    ``mailtriage.app.ingest.files``); ``offset`` counts bytes of the decompressed
    stream after the last line taken; ``complete`` marks a source that cannot grow
    (a compressed file read to its end).
    """

    source_id: str
    stream: str = "main"
    path: str = ""
    device: int | None = None
    inode: int | None = None
    head_hash: str | None = None
    offset: int = Field(default=0, ge=0)
    complete: bool = False
    lines: int = Field(default=0, ge=0)
    first_seen: float | None = None
    updated: float | None = None


# --------------------------------------------------------------- results: summary


class Percentiles(Model):
    """Percentiles of one delay, in seconds; None when ``count`` is 0."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class DelayStats(Model):
    """Delay percentiles of final outcomes, overall and per Postfix stage."""

    total: Percentiles = Percentiles()
    before_queue_manager: Percentiles = Percentiles()
    queue_manager: Percentiles = Percentiles()
    connection_setup: Percentiles = Percentiles()
    transmission: Percentiles = Percentiles()


class DeliveryCounts(Model):
    """The five counts of the counting rules (see the module docstring)."""

    delivered: int = 0
    bounced: int = 0
    expired: int = 0
    deferred: int = 0
    deferral_attempts: int = 0


class GroupStats(DeliveryCounts):
    """Counts and delays of one group; ``key`` maps each group-by name to its
    value (an empty key for the totals)."""

    key: dict[str, str | None] = Field(default_factory=dict)
    delays: DelayStats = DelayStats()


class Summary(Model):
    """Totals and, when grouped, one entry per group, busiest first."""

    group_by: list[GroupBy] = Field(default_factory=list)
    totals: GroupStats = GroupStats()
    groups: list[GroupStats] = Field(default_factory=list)


class TimePoint(GroupStats):
    """One bucket (``ts`` is its start) of one group; counting rules per bucket."""

    ts: float


class TimeSeries(Model):
    """Buckets of ``interval_seconds`` in time order, then group order."""

    interval_seconds: float
    group_by: list[GroupBy] = Field(default_factory=list)
    points: list[TimePoint] = Field(default_factory=list)


class Traffic(Model):
    """Messages that entered the queue in the window.

    ``received`` counts queue-ID lifetimes that smtpd or pickup created (the same
    lines pflogsumm counts); ``by_origin`` counts every lifetime by origin.
    ``bytes_delivered`` sums the message size over final ``sent`` outcomes.
    """

    received: int = 0
    bytes_received: int = 0
    bytes_delivered: int = 0
    messages: int = 0
    by_origin: dict[str, int] = Field(default_factory=dict)


class TopSender(Model):
    """A sender by the messages it submitted."""

    sender: str
    messages: int
    bytes: int


class TopRecipient(Model):
    """A recipient by its final ``sent`` outcomes."""

    recipient: str
    delivered: int
    bytes: int


class DomainVolume(Model):
    """A recipient domain by delivery attempts."""

    domain: str
    attempts: int
    recipients: int


class CauseCount(Model):
    """A cause of non-delivery: deferred, bounced and expired attempts."""

    cause: str
    temporary: bool | None
    attempts: int
    recipients: int
    example: str
    example_queue_id: str | None = None


class RejectReason(Model):
    """Refusals of one action and cause, with one example text."""

    action: str
    cause: str
    count: int
    example: str
    smtp_code: int | None = None
    dsn: str | None = None


class EventCount(Model):
    """Severity events (warning, error, fatal, panic, ...) of one program."""

    category: str
    program: str
    count: int
    example: str
    last_ts: float


class ProgramLines(Model):
    """Lines read and lines not understood, of one program as logged."""

    program: str
    lines: int
    unparsed: int


class UnparsedShape(Model):
    """One masked shape of unparsed lines."""

    program: str
    reason: str
    shape: str
    count: int
    example: str
    first_ts: float | None
    last_ts: float | None


class UnparsedSummary(Model):
    """What was not understood.

    Unparsed counts are kept per shape over everything ingested; a time window
    selects the shapes seen in it but does not split their counts.
    """

    lines: int = 0
    unparsed: int = 0
    by_program: list[ProgramLines] = Field(default_factory=list)
    shapes: list[UnparsedShape] = Field(default_factory=list)


class DataRange(Model):
    """The span of the delivery attempts in scope."""

    first_ts: float | None = None
    last_ts: float | None = None
    attempts: int = 0
    messages: int = 0


# ------------------------------------------------------- results: rows and traces


class DovecotSide(Model):
    """Dovecot's log of one LMTP/LDA delivery, joined to the Postfix attempt."""

    ts: float
    host: str
    service: str
    status: str
    mailbox: str | None = None
    reason: str | None = None
    cause: str | None = None
    session: str | None = None
    delivery_time_ms: float | None = None
    session_time_ms: float | None = None


class DeliveryItem(Model):
    """One recipient attempt (``final`` marks the outcome that decided it)."""

    id: int
    ts: float
    host: str
    queue_id: str
    message_key: str
    recipient: str
    recipient_domain: str
    transport: str
    status: str
    final: bool
    tenant: str
    sender: str | None = None
    sender_domain: str | None = None
    message_id: str | None = None
    orig_recipient: str | None = None
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
    dovecot: DovecotSide | None = None


class DeliveryPage(Model):
    """Newest first; ``next_cursor`` fetches the next (older) page."""

    items: list[DeliveryItem] = Field(default_factory=list)
    next_cursor: str | None = None


class RejectItem(Model):
    """One refusal before or at queueing."""

    id: int
    ts: float
    host: str
    program: str
    action: str
    stage: str | None = None
    queue_id: str | None = None
    client_host: str | None = None
    client_ip: str | None = None
    smtp_code: int | None = None
    dsn: str | None = None
    text: str = ""
    cause: str = "other"
    sender: str | None = None
    recipient: str | None = None
    recipient_domain: str | None = None
    tenant: str = "unassigned"


class RejectPage(Model):
    """Newest first; ``next_cursor`` fetches the next (older) page."""

    items: list[RejectItem] = Field(default_factory=list)
    next_cursor: str | None = None


class MessageInfo(Model):
    """One queue-ID lifetime on one host."""

    key: str
    host: str
    queue_id: str
    first_ts: float
    last_ts: float
    closed: bool
    origin: str
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


class EventItem(Model):
    """A severity or counted event."""

    ts: float
    host: str
    program: str
    category: str
    text: str
    queue_id: str | None = None


class TraceLine(Model):
    """A raw log line of a message, as it was read."""

    ts: float
    host: str
    program: str
    line: str


class MessageTrace(Model):
    """The timeline of one queue-ID lifetime: reception, every recipient's attempts
    with the Dovecot side, refusals and events, the notification it was created for
    (``parent``) and the notifications it caused, and the raw lines."""

    message: MessageInfo
    deliveries: list[DeliveryItem] = Field(default_factory=list)
    rejects: list[RejectItem] = Field(default_factory=list)
    events: list[EventItem] = Field(default_factory=list)
    parent: MessageInfo | None = None
    notifications: list[MessageInfo] = Field(default_factory=list)
    lines: list[TraceLine] = Field(default_factory=list)


# ----------------------------------------------------------- results: triage


class FailureSample(Model):
    """Evidence for a failure group: one attempt."""

    ts: float
    host: str
    queue_id: str
    recipient: str
    response: str


class FailureGroup(Model):
    """Non-delivered attempts of one cause in one group.

    ``recipients`` are the distinct recipients with such an attempt, ``recovered``
    those of them whose final outcome in the scope was ``sent`` (a greylisting
    deferral delivered on retry), ``group_recipients`` every recipient of the group
    in the scope (the denominator of a share).
    """

    key: dict[str, str | None] = Field(default_factory=dict)
    cause: str
    temporary: bool | None
    attempts: int
    recipients: int
    recovered: int
    group_recipients: int
    first_seen: float
    last_seen: float
    samples: list[FailureSample] = Field(default_factory=list)


class DovecotTimings(Model):
    """Dovecot's saves and failures of one group, with its own timings and the
    Postfix delays of the LMTP attempts joined to them (seconds)."""

    key: dict[str, str | None] = Field(default_factory=dict)
    saved: int = 0
    failed: int = 0
    delivery_time: Percentiles = Percentiles()
    session_time: Percentiles = Percentiles()
    postfix_delay: Percentiles = Percentiles()
    postfix_transmission: Percentiles = Percentiles()


# ------------------------------------------------------------------------ chat


class ChatTurn(Model):
    """One turn of a conversation; ``content`` is any JSON value."""

    conversation_id: str
    turn: int
    tenant: str | None
    role: str
    content: Any
    ts: float


# ----------------------------------------------------------------------- store


class Store(ABC):
    """A place where delivery events live. Backends implement every method.

    Thread safety is the backend's to provide and to document; the DuckDB store
    serves queries from any thread and serialises writes.
    """

    # -- lifecycle

    @abstractmethod
    def close(self) -> None:
        """Release the database; the store is unusable afterwards."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``StoreError`` unless the store answers."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def confined(self, tenant: str | None) -> Store:
        """This store as ``tenant`` may see it (itself for None, an operator)."""
        return self if tenant is None else ConfinedStore(self, tenant)

    # -- writes and checkpoints

    @abstractmethod
    def write(
        self,
        batch: Batch | Any,
        checkpoint: Checkpoint | Sequence[Checkpoint] | None = None,
        *,
        state: bytes | None = None,
        stream: str = "main",
    ) -> None:
        """Commit ``batch`` (a ``Batch`` or the columnar ``ColumnBatch`` of
        ``mailtriage.app.store.columns``), the sources' checkpoints and the
        pipeline ``state`` of ``stream`` in one transaction: all or nothing.
        Messages are upserted by key; unparsed shapes add their counts."""

    @abstractmethod
    def checkpoint(self, source_id: str) -> Checkpoint | None:
        """The committed position of ``source_id``, None if never seen."""

    @abstractmethod
    def state(self, stream: str = "main") -> bytes | None:
        """The pipeline state last committed for ``stream`` (the open messages of
        its assemblers), None before the first commit."""

    @abstractmethod
    def sources(self) -> list[Checkpoint]:
        """Every source ever read, most recently updated first."""

    # -- counts

    @abstractmethod
    def summary(
        self,
        scope: Scope,
        group_by: Sequence[GroupBy] = (),
        *,
        limit: int | None = None,
    ) -> Summary:
        """Totals and per-group counts and delays; ``limit`` keeps the busiest
        groups (by recipients with an outcome or deferral)."""

    @abstractmethod
    def timeseries(
        self,
        scope: Scope,
        interval_seconds: float,
        group_by: Sequence[GroupBy] = (),
    ) -> TimeSeries:
        """Counts and delays per time bucket (and group); each bucket applies the
        counting rules as its own window. QueryError beyond 10,000 buckets."""

    @abstractmethod
    def traffic(self, scope: Scope) -> Traffic:
        """Messages and bytes that entered the queue in the window."""

    @abstractmethod
    def top_senders(self, scope: Scope, limit: int = 10) -> list[TopSender]:
        """Senders by messages submitted in the window."""

    @abstractmethod
    def top_recipients(self, scope: Scope, limit: int = 10) -> list[TopRecipient]:
        """Recipients by final ``sent`` outcomes in the window."""

    @abstractmethod
    def top_domains(self, scope: Scope, limit: int = 50) -> list[DomainVolume]:
        """Recipient domains by delivery attempts (the metrics' label set)."""

    @abstractmethod
    def causes(self, scope: Scope, limit: int = 20) -> list[CauseCount]:
        """Causes of deferrals, bounces and expiries, most attempts first."""

    @abstractmethod
    def reject_counts(self, scope: Scope) -> dict[str, int]:
        """Refusals by action (``reject``, ``hold``, ``discard``, ...)."""

    @abstractmethod
    def reject_reasons(self, scope: Scope, limit: int = 20) -> list[RejectReason]:
        """Refusals by action and cause, most first, one example each."""

    @abstractmethod
    def event_counts(
        self,
        scope: Scope,
        categories: Sequence[str] | None = None,
        limit: int = 20,
    ) -> list[EventCount]:
        """Events by category and program. Events belong to no tenant: a
        confined scope gets an empty list."""

    @abstractmethod
    def unparsed(self, scope: Scope, limit: int = 20) -> UnparsedSummary:
        """Lines per program and the top unparsed shapes. Empty for a confined
        scope: log lines that no parser took belong to no tenant."""

    @abstractmethod
    def data_range(self, scope: Scope) -> DataRange:
        """First and last attempt times in scope (for "the last N minutes" of an
        ingested, possibly old, log)."""

    # -- rows

    @abstractmethod
    def deliveries(self, query: DeliveryFilter) -> DeliveryPage:
        """Attempts matching ``query``, newest first, with the Dovecot side."""

    @abstractmethod
    def rejects(self, query: RejectFilter) -> RejectPage:
        """Refusals matching ``query``, newest first."""

    @abstractmethod
    def trace(
        self,
        scope: Scope,
        *,
        queue_id: str | None = None,
        message_id: str | None = None,
        limit: int = 20,
    ) -> list[MessageTrace]:
        """Every lifetime of a queue ID (IDs are reused; any host unless the
        scope names one) or every message with a message-id, oldest first. A
        confined scope sees a message only when it or one of its recipients
        belongs to the tenant, and then only that tenant's recipients and lines."""

    # -- triage

    @abstractmethod
    def failures(
        self, scope: Scope, group_by: Sequence[GroupBy] = ()
    ) -> list[FailureGroup]:
        """Deferred, bounced and expired attempts by group and cause, most
        recipients first, with samples."""

    @abstractmethod
    def dovecot_timings(
        self, scope: Scope, group_by: Sequence[GroupBy] = ()
    ) -> list[DovecotTimings]:
        """Dovecot saves, failures and timings by group (tenant, domain, host or
        cause; ``host`` is the Dovecot host)."""

    # -- chat

    @abstractmethod
    def save_chat_turn(
        self,
        conversation_id: str,
        tenant: str | None,
        role: str,
        content: Any,
        *,
        ts: float | None = None,
    ) -> ChatTurn:
        """Append one turn. A conversation belongs to the tenant of its first turn;
        appending under another tenant raises NotFoundError."""

    @abstractmethod
    def load_conversation(
        self, conversation_id: str, scope: Scope | None = None
    ) -> list[ChatTurn]:
        """The turns of a conversation in order; NotFoundError when it does not
        exist or the scope's confinement is another tenant."""


_S = TypeVar("_S", bound=Scope)


class ConfinedStore(Store):
    """A store seen by one tenant: every query is confined, writes are refused.

    The API and the agent hand this to code that acts for a tenant token, so the
    confinement does not depend on each caller building its scope right.
    """

    def __init__(self, inner: Store, tenant: str) -> None:
        self.inner = inner
        self.tenant = tenant

    def _scope(self, scope: _S) -> _S:
        return scope.confined_to(self.tenant)

    def close(self) -> None:
        """The inner store belongs to whoever opened it; nothing to release."""

    def ping(self) -> None:
        self.inner.ping()

    def confined(self, tenant: str | None) -> Store:
        if tenant is not None and tenant != self.tenant:
            raise ForbiddenError(f"this caller is confined to tenant {self.tenant!r}")
        return self

    def write(
        self,
        batch: Batch | Any,
        checkpoint: Checkpoint | Sequence[Checkpoint] | None = None,
        *,
        state: bytes | None = None,
        stream: str = "main",
    ) -> None:
        raise ForbiddenError("a tenant may not write to the store")

    def checkpoint(self, source_id: str) -> Checkpoint | None:
        raise ForbiddenError("sources belong to the operator")

    def state(self, stream: str = "main") -> bytes | None:
        raise ForbiddenError("ingest state belongs to the operator")

    def sources(self) -> list[Checkpoint]:
        raise ForbiddenError("sources belong to the operator")

    def summary(
        self,
        scope: Scope,
        group_by: Sequence[GroupBy] = (),
        *,
        limit: int | None = None,
    ) -> Summary:
        return self.inner.summary(self._scope(scope), group_by, limit=limit)

    def timeseries(
        self,
        scope: Scope,
        interval_seconds: float,
        group_by: Sequence[GroupBy] = (),
    ) -> TimeSeries:
        return self.inner.timeseries(self._scope(scope), interval_seconds, group_by)

    def traffic(self, scope: Scope) -> Traffic:
        return self.inner.traffic(self._scope(scope))

    def top_senders(self, scope: Scope, limit: int = 10) -> list[TopSender]:
        return self.inner.top_senders(self._scope(scope), limit)

    def top_recipients(self, scope: Scope, limit: int = 10) -> list[TopRecipient]:
        return self.inner.top_recipients(self._scope(scope), limit)

    def top_domains(self, scope: Scope, limit: int = 50) -> list[DomainVolume]:
        return self.inner.top_domains(self._scope(scope), limit)

    def causes(self, scope: Scope, limit: int = 20) -> list[CauseCount]:
        return self.inner.causes(self._scope(scope), limit)

    def reject_counts(self, scope: Scope) -> dict[str, int]:
        return self.inner.reject_counts(self._scope(scope))

    def reject_reasons(self, scope: Scope, limit: int = 20) -> list[RejectReason]:
        return self.inner.reject_reasons(self._scope(scope), limit)

    def event_counts(
        self,
        scope: Scope,
        categories: Sequence[str] | None = None,
        limit: int = 20,
    ) -> list[EventCount]:
        return self.inner.event_counts(self._scope(scope), categories, limit)

    def unparsed(self, scope: Scope, limit: int = 20) -> UnparsedSummary:
        return self.inner.unparsed(self._scope(scope), limit)

    def data_range(self, scope: Scope) -> DataRange:
        return self.inner.data_range(self._scope(scope))

    def deliveries(self, query: DeliveryFilter) -> DeliveryPage:
        return self.inner.deliveries(self._scope(query))

    def rejects(self, query: RejectFilter) -> RejectPage:
        return self.inner.rejects(self._scope(query))

    def trace(
        self,
        scope: Scope,
        *,
        queue_id: str | None = None,
        message_id: str | None = None,
        limit: int = 20,
    ) -> list[MessageTrace]:
        return self.inner.trace(
            self._scope(scope), queue_id=queue_id, message_id=message_id, limit=limit
        )

    def failures(
        self, scope: Scope, group_by: Sequence[GroupBy] = ()
    ) -> list[FailureGroup]:
        return self.inner.failures(self._scope(scope), group_by)

    def dovecot_timings(
        self, scope: Scope, group_by: Sequence[GroupBy] = ()
    ) -> list[DovecotTimings]:
        return self.inner.dovecot_timings(self._scope(scope), group_by)

    def save_chat_turn(
        self,
        conversation_id: str,
        tenant: str | None,
        role: str,
        content: Any,
        *,
        ts: float | None = None,
    ) -> ChatTurn:
        if tenant != self.tenant:
            raise ForbiddenError(f"this caller is confined to tenant {self.tenant!r}")
        return self.inner.save_chat_turn(conversation_id, tenant, role, content, ts=ts)

    def load_conversation(
        self, conversation_id: str, scope: Scope | None = None
    ) -> list[ChatTurn]:
        return self.inner.load_conversation(
            conversation_id, self._scope(scope or Scope())
        )
