"""Prometheus metrics: every metric mailtriage exposes is declared here, once.

The metrics live on a registry of their own (never prometheus_client's global one),
so that two services or two tests in one process do not share counters.

How the service uses this module::

    observer = MetricsObserver.from_settings(settings, sources=["/var/log/mail.log"])
    ...
    store.write(batch)              # after each committed write:
    observer.observe(batch)         # the rows of the batch update the metrics
    observer.observe_write_seconds(elapsed)
    ...
    body, content_type = observer.render(request.headers.get("accept"))  # GET /metrics

``observe`` reads only rows (``mailtriage.parsers.model``), never log lines. The
ingest-health methods (``set_lag``, ``observe_source``, ``follower_restarted``,
``syslog_dropped``, ``observe_write_seconds``) are for the parts that know those
facts: the followers, the syslog listener and the pipeline.

Counting rules:

- ``mailtriage_deliveries_total`` and the delay histograms count final outcomes
  (sent, bounced, expired: ``AttemptRow.final``), once per recipient; deferred
  attempts are counted apart, in ``mailtriage_deferrals_total``. This keeps a
  message that was retried ten times from weighing ten times in a percentile.
- ``lmtp_delivery_total`` and ``lmtp_delivery_duration_seconds`` count every LMTP
  reply for one recipient (``ok`` for 2xx, ``fail`` otherwise, temporary or not):
  the per-recipient behaviour of the MDA, retries included.
- Received messages, bytes and expired messages are counted once per queue-ID
  lifetime, when the process first sees its size (or its expiry).

Cardinality is bounded by construction: a tenant label is a tenant of the config or
``unassigned``; a cause is one of ``CAUSES`` (or ``none`` for a success); a
program, transport, action, origin or reason is one of a fixed set or ``other``
(a program is ``unknown`` where the line names none); a source is one of those the
service was started with or ``other``; and the recipient
domain label holds only the top ``top_domains`` domains by recent volume, plus
``other``. That set is re-ranked every ``domain_refresh_seconds``; a domain that
falls out of it loses its series, so the label cannot grow without bound. No
address, queue ID, IP address or free text is ever a label value. Queue IDs appear
only as exemplars (OpenMetrics), which Prometheus stores beside a sample, not as
series.

Backfill honesty: the counters say what this process has ingested since it started,
at the time it ingested it. The timestamps inside old log lines are not used: a
year of rotated logs read at start-up lands as one step in the counters at that
moment, not spread over the year. Rates and increases across a backfill are
therefore rates of ingestion, not of mail; the store and the API
(``/v1/stats/timeseries``) are the place for history.
"""

from __future__ import annotations

import re
import threading
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import metadata
from itertools import accumulate
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.samples import Exemplar

from mailtriage.parsers.classify import CAUSES
from mailtriage.parsers.model import (
    AttemptRow,
    Batch,
    DovecotRow,
    EventRow,
    MessageRow,
    RejectRow,
    UnparsedRow,
)
from mailtriage.parsers.tenants import UNASSIGNED

if TYPE_CHECKING:
    from mailtriage.app.settings import Settings

OTHER = "other"
UNKNOWN = "unknown"
NO_CAUSE = "none"  # the cause label of a success

TRANSPORTS = ("smtp", "lmtp", "local", "virtual", "pipe", "error", "discard", "retry")
FINAL_STATUSES = ("sent", "bounced", "expired")
ATTEMPT_STATUSES = ("sent", "deferred", "bounced", "expired")
# The four parts of Postfix's delays=a/b/c/d (postconf(5), "delays"): before the
# queue manager (smtpd, cleanup, milters), in the queue manager (queue waits and
# retries), connection setup (DNS, TCP, TLS, greeting) and transmission.
STAGES = ("before_queue_manager", "queue_manager", "connection_setup", "transmission")
SEVERITIES = ("warning", "error", "fatal", "panic")
ORIGINS = ("smtpd", "pickup", "bounce", "local", "unknown")
REJECT_ACTIONS = ("reject", "hold", "discard", "filter", "redirect", "warn")
# Dovecot 2.3 names the LDA "lda" or, in older configurations, "deliver".
DOVECOT_SERVICES = {
    "lmtp": "lmtp",
    "lda": "lda",
    "deliver": "lda",
    "dovecot-lda": "lda",
}
# saved/failed/rejected by LMTP or LDA; forwarded/discarded by a sieve script.
DOVECOT_STATUSES = ("saved", "failed", "rejected", "forwarded", "discarded")
# Dovecot auth events that are failures, by the reason label they count under.
AUTH_FAILURES = {
    "auth_failed": "failed",
    "auth_unknown_user": "unknown_user",
    "auth_password_mismatch": "password_mismatch",
    "auth_plaintext_denied": "plaintext_denied",
    "auth_policy_refused": "policy_refused",
}
NOTIFICATION_KINDS = ("non_delivery", "delay", "delivery_status", OTHER)
UNPARSED_REASONS = ("envelope", "program", "message")
SYSLOG_PROTOCOLS = ("udp", "tcp")
# Reject causes whose zero series exist from the start, per tenant: the usual
# reasons, so that a dashboard shows "none" rather than "no data".
USUAL_REJECT_CAUSES = ("policy_rejected", "unknown_recipient", "relay_denied")

# Postfix daemon names (master(5) and the postfix-* commands): a program whose last
# path component is one of these is labelled ``postfix/<name>`` whatever the
# instance prefix (postfix-out/smtp and postfix/submission/smtpd fold together).
POSTFIX_DAEMONS = frozenset((
    "anvil", "bounce", "cleanup", "discard", "dnsblog", "error", "flush", "lmtp",
    "local", "master", "oqmgr", "pickup", "pipe", "postalias", "postcat", "postconf",
    "postdrop", "postfix", "postfix-script", "postkick", "postlock", "postlog",
    "postmap", "postmulti", "postqueue", "postscreen", "postsuper", "proxymap", "qmgr",
    "qmqpd", "retry", "scache", "sendmail", "showq", "smtp", "smtpd", "spawn",
    "tlsmgr", "tlsproxy", "trivial-rewrite", "verify", "virtual",
))  # fmt: skip
# Dovecot's own process names as they appear as a syslog program (dovecot(1) logs
# through its log process as ``dovecot`` by default; ``syslog_facility`` users may
# see the service names).
DOVECOT_PROGRAMS = frozenset((
    "dovecot", "deliver", "dovecot-lda", "lda", "imap", "imap-login", "pop3",
    "pop3-login", "auth", "auth-worker", "managesieve", "managesieve-login",
    "submission", "submission-login", "indexer", "indexer-worker", "doveadm", "lmtp",
))  # fmt: skip

# Final delays run from milliseconds to maximal_queue_lifetime (5 days by default).
DELAY_BUCKETS = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0, 14400.0, 86400.0, 432000.0,
)  # fmt: skip
# The MDA answers in milliseconds to seconds; 3 s is a common "slow LMTP" line.
MDA_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
WRITE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_K = TypeVar("_K")
_DOMAIN = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?")


class RowHistogram:
    """A labelled histogram that the observer updates from rows, kept as plain lists.

    prometheus_client's ``Histogram`` walks its buckets and takes locks on every
    observation, and the delay histograms are observed five times per recipient; here
    an observation is one bisection and two additions under the observer's lock, and
    a scrape copies the counts under the same lock. The exposition is that of any
    Prometheus histogram (``_bucket``, ``_sum``, ``_count``, exemplars on buckets).
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float],
        lock: threading.RLock,
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(float(b) for b in buckets)
        # The "le" values as prometheus_client writes them (repr of a float: "3.0").
        self._les = [repr(b) for b in self.bounds] + ["+Inf"]
        self._lock = lock
        self._series: dict[tuple[str, ...], _Buckets] = {}
        registry.register(self)

    def labels(self, **labels: str) -> _Buckets:
        """The series for these label values (all of them, by keyword)."""
        if labels.keys() != set(self.labelnames):
            raise ValueError(
                f"{self.name} takes labels {self.labelnames}, not {labels}"
            )
        key = tuple(labels[name] for name in self.labelnames)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Buckets(self.bounds)
        return series

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            copied = [
                (key, list(s.counts), s.total, dict(s.exemplars))
                for key, s in self._series.items()
            ]
        family = self._family()
        for key, counts, total, exemplars in copied:
            buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
            for index, (le, count) in enumerate(
                zip(self._les, accumulate(counts), strict=True)
            ):
                exemplar = exemplars.get(index)
                buckets.append(
                    (le, float(count)) if exemplar is None else (le, count, exemplar)
                )
            family.add_metric(list(key), buckets, total)
        yield family

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(
            self.name, self.documentation, labels=self.labelnames
        )


class _Buckets:
    """One series of a ``RowHistogram``: per-bucket counts, the sum, exemplars."""

    __slots__ = ("bounds", "counts", "exemplars", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.exemplars: dict[int, Exemplar] = {}

    def observe(self, value: float, *, queue_id: str | None = None) -> None:
        """Count ``value``; with ``queue_id``, make it the exemplar of its bucket."""
        # The first bound >= value is the bucket ("le" is inclusive).
        index = bisect_left(self.bounds, value)
        self.counts[index] += 1
        self.total += value
        if queue_id is not None:
            self.exemplars[index] = Exemplar({"queue_id": queue_id}, value, time.time())


class Metrics:
    """The metric objects, declared on a registry of their own. ``lock`` guards the
    histograms that rows update (``RowHistogram``)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.lock = lock = lock if lock is not None else threading.RLock()

        # -- deliveries
        self.lmtp_delivery = Counter(
            "lmtp_delivery",
            "LMTP replies per recipient: ok (2xx) or fail (4xx/5xx), by cause.",
            ["status", "tenant", "cause"],
            registry=r,
        )
        self.lmtp_duration = RowHistogram(
            "lmtp_delivery_duration_seconds",
            "Time Postfix spent on one LMTP delivery: connection setup plus "
            "transmission (delays c+d), including the MDA's answer.",
            ["status"],
            buckets=MDA_BUCKETS,
            lock=lock,
            registry=r,
        )
        self.deliveries = Counter(
            "mailtriage_deliveries",
            "Recipients by final outcome (sent, bounced, expired), transport and "
            "cause; each recipient counted once.",
            ["transport", "status", "cause", "tenant"],
            registry=r,
        )
        self.final_delay = RowHistogram(
            "mailtriage_final_delivery_seconds",
            "Total delay from arrival to final outcome, per recipient (Postfix "
            "delay=), final outcomes only.",
            ["transport", "tenant"],
            buckets=DELAY_BUCKETS,
            lock=lock,
            registry=r,
        )
        self.stage_delay = RowHistogram(
            "mailtriage_final_delivery_stage_seconds",
            "Delay per stage of Postfix's delays=a/b/c/d, final outcomes only.",
            ["stage", "transport", "tenant"],
            buckets=DELAY_BUCKETS,
            lock=lock,
            registry=r,
        )
        self.deferrals = Counter(
            "mailtriage_deferrals",
            "Deferred delivery attempts by cause and recipient domain (top domains "
            "by volume, others as 'other').",
            ["tenant", "domain", "cause"],
            registry=r,
        )
        self.domain_attempts = Counter(
            "mailtriage_domain_delivery_attempts",
            "Delivery attempts by recipient domain and status; sent, bounced and "
            "expired are final outcomes, deferred attempts are retried.",
            ["tenant", "domain", "status"],
            registry=r,
        )
        self.rejects = Counter(
            "mailtriage_rejects",
            "Mail refused or held before queueing (smtpd, postscreen, cleanup, "
            "milters), by action and cause.",
            ["tenant", "action", "cause"],
            registry=r,
        )
        self.notifications = Counter(
            "mailtriage_bounce_notifications",
            "Notifications the bounce daemon sent (non-delivery, delay, delivery "
            "status).",
            ["kind"],
            registry=r,
        )
        self.expired = Counter(
            "mailtriage_expired_messages",
            "Messages that reached maximal_queue_lifetime and were returned or "
            "dropped.",
            ["tenant"],
            registry=r,
        )
        self.received = Counter(
            "mailtriage_received_messages",
            "Messages queued, by tenant and origin, once per queue-ID lifetime.",
            ["tenant", "origin"],
            registry=r,
        )
        self.received_bytes = Counter(
            "mailtriage_received_bytes",
            "Size of the messages queued, as qmgr logs it.",
            ["tenant"],
            registry=r,
        )

        # -- Dovecot
        self.dovecot = Counter(
            "mailtriage_dovecot_deliveries",
            "Dovecot LMTP/LDA saves and failures, by cause.",
            ["tenant", "service", "status", "cause"],
            registry=r,
        )
        self.dovecot_delivery = RowHistogram(
            "mailtriage_dovecot_delivery_seconds",
            "Dovecot's own delivery time, where deliver_log_format logs "
            "%{delivery_time}.",
            ["service", "status"],
            buckets=MDA_BUCKETS,
            lock=lock,
            registry=r,
        )
        self.dovecot_session = RowHistogram(
            "mailtriage_dovecot_session_seconds",
            "Dovecot's session time, where deliver_log_format logs %{session_time}.",
            ["service", "status"],
            buckets=MDA_BUCKETS,
            lock=lock,
            registry=r,
        )

        # -- events
        self.severity = Counter(
            "mailtriage_severity_events",
            "warning, error, fatal and panic lines, by program.",
            ["severity", "program"],
            registry=r,
        )
        self.auth_failures = Counter(
            "mailtriage_auth_failures",
            "Failed Dovecot logins and authentications, by reason.",
            ["reason"],
            registry=r,
        )

        # -- ingest health
        self.lines = Counter(
            "mailtriage_ingest_lines",
            "Log lines read, by program.",
            ["program"],
            registry=r,
        )
        self.unparsed = Counter(
            "mailtriage_ingest_unparsed_lines",
            "Log lines no parser understood, by program and the stage that gave up "
            "(envelope, program, message).",
            ["program", "reason"],
            registry=r,
        )
        self.lag = Gauge(
            "mailtriage_ingest_lag_seconds",
            "How long the oldest line accepted but not yet committed has waited.",
            registry=r,
        )
        self.last_line = Gauge(
            "mailtriage_ingest_last_line_timestamp_seconds",
            "Wall-clock time at which the last line of a source was read.",
            ["source"],
            registry=r,
        )
        self.follower_restarts = Counter(
            "mailtriage_follower_restarts",
            "Restarts of a file follower after an error.",
            ["source"],
            registry=r,
        )
        self.syslog_dropped = Counter(
            "mailtriage_syslog_dropped_messages",
            "Syslog messages dropped because ingest was behind (UDP cannot push back).",
            ["protocol"],
            registry=r,
        )
        self.store_write = Histogram(
            "mailtriage_store_write_seconds",
            "Time to commit one batch to the store.",
            buckets=WRITE_BUCKETS,
            registry=r,
        )
        self.top_domains = Gauge(
            "mailtriage_metrics_top_domains",
            "Recipient domains that currently have a label value of their own.",
            registry=r,
        )
        self.build_info = Gauge(
            "mailtriage_build_info",
            "Always 1; the version label says which mailtriage runs.",
            ["version"],
            registry=r,
        )


# --------------------------------------------------------------------- labels


def program_label(program: str | None) -> str:
    """The bounded label of a syslog program: ``postfix/<daemon>``, ``dovecot``,
    ``other``, or ``unknown`` when the line names none (no envelope, or Dovecot's own
    log file, whose lines carry no program)."""
    if not program:
        return UNKNOWN
    parts = program.split("/")
    last = parts[-1]
    if last in POSTFIX_DAEMONS and (len(parts) > 1 or last != "lmtp"):
        return f"postfix/{last}"
    first = parts[0].split("(", 1)[0]
    if first in DOVECOT_PROGRAMS or first.startswith("dovecot"):
        return "dovecot"
    return OTHER


def domain_value(domain: str | None) -> str:
    """A recipient domain as it may appear in a label, or ``other``."""
    if not domain:
        return OTHER
    domain = domain.rstrip(".").lower()
    return domain if _DOMAIN.fullmatch(domain) else OTHER


def _one_of(value: str | None, allowed: Iterable[str]) -> str:
    return value if value is not None and value in allowed else OTHER


def _cause(status: str, cause: str | None) -> str:
    if status == "sent" or status == "saved":
        return NO_CAUSE
    return cause if cause in CAUSES else OTHER


def _notification_kind(text: str) -> str:
    # bounce(8) logs "sender non-delivery notification", "sender delay
    # notification" and "sender delivery status notification" (also "postmaster
    # ..." copies).
    lowered = text.lower()
    if "non-delivery" in lowered:
        return "non_delivery"
    if "delay" in lowered:
        return "delay"
    if "delivery status" in lowered or "success" in lowered:
        return "delivery_status"
    return OTHER


def _slowest(
    timed: Iterable[tuple[_K, float, AttemptRow]],
) -> dict[_K, AttemptRow]:
    """The slowest row per key: the one whose queue ID becomes the exemplar, so a
    heatmap's exemplar leads to the delivery worth looking at."""
    slowest: dict[_K, tuple[float, AttemptRow]] = {}
    for key, seconds, row in timed:
        best = slowest.get(key)
        if best is None or seconds > best[0]:
            slowest[key] = (seconds, row)
    return {key: row for key, (_, row) in slowest.items()}


def _version() -> str:
    try:
        return metadata.version("mailtriage")
    except metadata.PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------- top domains


class TopDomains:
    """Which recipient domains get a label value: the top ``size`` by recent volume.

    Volumes are kept in a bounded table (at most ``table_size`` domains; when it
    fills, the lower half by count is forgotten, so a long tail of one-off domains
    costs nothing and a busy domain is never forgotten). Until the first re-ranking
    any domain is admitted while the set has room, so a small installation never
    sees ``other``. Every ``refresh_seconds`` the set becomes the ``size`` busiest
    domains of the table and every count is halved, so the ranking follows recent
    volume rather than all-time volume.
    """

    def __init__(
        self,
        size: int,
        *,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        table_size: int | None = None,
    ) -> None:
        self.size = max(size, 0)
        self.refresh_seconds = refresh_seconds
        self.table_size = table_size or max(20 * self.size, 1000)
        self._clock = clock
        self._counts: dict[str, float] = {}
        self._top: set[str] = set()
        self._next_refresh = clock() + refresh_seconds

    @property
    def members(self) -> frozenset[str]:
        """The domains that currently have a label value of their own."""
        return frozenset(self._top)

    def label(self, domain: str) -> str:
        """Count one attempt for ``domain`` and return its label value."""
        counts = self._counts
        counts[domain] = counts.get(domain, 0.0) + 1.0
        if domain in self._top:
            return domain
        if len(counts) > self.table_size:
            self._prune()
        if len(self._top) < self.size and domain != OTHER:
            self._top.add(domain)
            return domain
        return OTHER

    def due(self) -> bool:
        """Whether the set should be re-ranked now."""
        return self._clock() >= self._next_refresh

    def refresh(self) -> set[str]:
        """Re-rank the busiest domains into the set; returns the domains that left."""
        ranked = sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top = {d for d, _ in ranked[: self.size] if d != OTHER}
        dropped = self._top - top
        self._top = top
        self._counts = {d: c / 2 for d, c in self._counts.items() if c >= 0.5}
        self._next_refresh = self._clock() + self.refresh_seconds
        return dropped

    def _prune(self) -> None:
        keep = self.table_size // 2
        ranked = sorted(self._counts.items(), key=lambda kv: -kv[1])[:keep]
        kept = dict(ranked)
        # Members stay so that their ranking continues at the next refresh.
        for member in self._top:
            kept.setdefault(member, self._counts.get(member, 0.0))
        self._counts = kept


# ------------------------------------------------------------------ observer


class _SeenMessages:
    """Which queue-ID lifetimes were already counted as received or expired.

    Bounded: a lifetime is forgotten when it closes, and the oldest are forgotten
    beyond ``limit`` (messages the assembler evicted never close).
    """

    RECEIVED = 1
    EXPIRED = 2

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._flags: OrderedDict[str, int] = OrderedDict()

    def first(self, key: str, flag: int) -> bool:
        """Mark ``flag`` for ``key``; True when it was not marked before."""
        flags = self._flags.get(key, 0)
        if flags & flag:
            return False
        self._flags[key] = flags | flag
        if len(self._flags) > self.limit:
            self._flags.popitem(last=False)
        return True

    def forget(self, key: str) -> None:
        self._flags.pop(key, None)


class MetricsObserver:
    """Updates the metrics from the rows of each committed batch, and from the
    ingest-health facts the service reports. Thread-safe."""

    def __init__(
        self,
        *,
        tenants: Iterable[str] = (),
        top_domains: int = 50,
        domain_refresh_seconds: float = 300.0,
        sources: Iterable[str] = (),
        max_open_messages: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = Metrics()
        self._lock = self.metrics.lock
        self.tenants = frozenset(tenants) | {UNASSIGNED}
        self.sources = frozenset(sources)
        self.domains = TopDomains(
            top_domains, refresh_seconds=domain_refresh_seconds, clock=clock
        )
        self._wall_clock = wall_clock
        self._seen = _SeenMessages(max_open_messages)
        self._programs: set[str] = set()
        self._tenant_domains: set[tuple[str, str]] = set()
        self._exposed = _WithoutCreated(self.metrics.registry)
        self._initialise()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, sources: Iterable[str] = ()
    ) -> MetricsObserver:
        """An observer for the tenants and ``[metrics]`` section of ``settings``.
        ``sources`` are the names the service will pass to ``observe_source``."""
        return cls(
            tenants=settings.tenants,
            top_domains=settings.metrics.top_domains,
            domain_refresh_seconds=settings.metrics.domain_refresh_seconds,
            sources=sources,
            max_open_messages=settings.ingest.max_open_messages,
        )

    @property
    def registry(self) -> CollectorRegistry:
        """The registry every metric of this observer lives on."""
        return self.metrics.registry

    # -- rows

    def observe(self, batch: Batch) -> None:
        """Update the metrics from the rows of one committed batch."""
        with self._lock:
            if self.domains.due():
                self._refresh_domains()
            self._observe_lines(batch)
            self._observe_attempts(batch.attempts)
            self._observe_messages(batch.messages)
            self._observe_rejects(batch.rejects)
            self._observe_dovecot(batch.dovecot)
            self._observe_events(batch.events)
            self._observe_unparsed(batch.unparsed)
            self.metrics.top_domains.set(len(self.domains.members))

    def _observe_lines(self, batch: Batch) -> None:
        by_program: Tally[str] = Tally()
        for program, count in batch.lines_by_program.items():
            by_program[program_label(program)] += count
        missing = batch.lines_read - sum(batch.lines_by_program.values())
        if missing > 0:
            by_program[UNKNOWN] += missing
        for label, count in by_program.items():
            self._see_program(label)
            self.metrics.lines.labels(program=label).inc(count)

    def _observe_attempts(self, attempts: list[AttemptRow]) -> None:
        tallies: dict[str, Tally[tuple[str, ...]]] = {
            "deferrals": Tally(),
            "domain": Tally(),
            "lmtp": Tally(),
            "final": Tally(),
        }
        lmtp: list[tuple[AttemptRow, str]] = []
        finals: list[tuple[AttemptRow, str, str]] = []
        for a in attempts:
            if a.status not in ATTEMPT_STATUSES:
                continue  # address verification probes are not deliveries
            tenant = self._tenant(a.tenant)
            domain = self._domain(tenant, a.recipient_domain)
            transport = _one_of(a.transport, TRANSPORTS)
            cause = _cause(a.status, a.cause)
            tallies["domain"][tenant, domain, a.status] += 1
            if a.status == "deferred":
                tallies["deferrals"][tenant, domain, cause] += 1
            if transport == "lmtp" and a.status != "expired":
                status = "ok" if a.status == "sent" else "fail"
                tallies["lmtp"][status, tenant, cause] += 1
                lmtp.append((a, status))
            if a.final and a.status in FINAL_STATUSES:
                tallies["final"][transport, a.status, cause, tenant] += 1
                finals.append((a, transport, tenant))
        self._apply_attempt_tallies(tallies, lmtp)
        self._observe_lmtp_durations(lmtp)
        self._observe_final_delays(finals)

    def _apply_attempt_tallies(
        self,
        tallies: dict[str, Tally[tuple[str, ...]]],
        lmtp: list[tuple[AttemptRow, str]],
    ) -> None:
        m = self.metrics
        for (tenant, domain, cause), n in tallies["deferrals"].items():
            m.deferrals.labels(tenant=tenant, domain=domain, cause=cause).inc(n)
        for (tenant, domain, status), n in tallies["domain"].items():
            m.domain_attempts.labels(tenant=tenant, domain=domain, status=status).inc(n)
        failed = [a.queue_id for a, status in lmtp if status == "fail"]
        for (status, tenant, cause), n in tallies["lmtp"].items():
            child = m.lmtp_delivery.labels(status=status, tenant=tenant, cause=cause)
            if status == "fail":
                child.inc(n, exemplar={"queue_id": failed[-1]})
            else:
                child.inc(n)
        for (transport, status, cause, tenant), n in tallies["final"].items():
            m.deliveries.labels(
                transport=transport, status=status, cause=cause, tenant=tenant
            ).inc(n)

    def _observe_lmtp_durations(self, rows: list[tuple[AttemptRow, str]]) -> None:
        timed = [
            (a, status, (a.delay_conn_setup or 0.0) + (a.delay_transmission or 0.0))
            for a, status in rows
            if a.delay_conn_setup is not None or a.delay_transmission is not None
        ]
        slowest = _slowest((status, seconds, a) for a, status, seconds in timed)
        histogram = self.metrics.lmtp_duration
        for a, status, seconds in timed:
            queue_id = a.queue_id if slowest[status] is a else None
            histogram.labels(status=status).observe(seconds, queue_id=queue_id)

    def _observe_final_delays(self, finals: list[tuple[AttemptRow, str, str]]) -> None:
        m = self.metrics
        slowest = _slowest(
            ((transport, tenant), a.delay, a)
            for a, transport, tenant in finals
            if a.delay is not None
        )
        for a, transport, tenant in finals:
            if a.delay is not None:
                queue_id = a.queue_id if slowest[transport, tenant] is a else None
                m.final_delay.labels(transport=transport, tenant=tenant).observe(
                    a.delay, queue_id=queue_id
                )
            stages = (
                a.delay_before_qmgr,
                a.delay_in_qmgr,
                a.delay_conn_setup,
                a.delay_transmission,
            )
            for stage, seconds in zip(STAGES, stages, strict=True):
                if seconds is not None:
                    m.stage_delay.labels(
                        stage=stage, transport=transport, tenant=tenant
                    ).observe(seconds)

    def _observe_messages(self, messages: list[MessageRow]) -> None:
        received: Tally[tuple[str, str]] = Tally()
        received_bytes: Tally[str] = Tally()
        expired: Tally[str] = Tally()
        seen = self._seen
        for row in messages:
            tenant = self._tenant(row.tenant)
            if row.size is not None and seen.first(row.key, seen.RECEIVED):
                received[
                    tenant, row.origin if row.origin in ORIGINS else "unknown"
                ] += 1
                received_bytes[tenant] += row.size
            if row.expired and seen.first(row.key, seen.EXPIRED):
                expired[tenant] += 1
            if row.closed:
                seen.forget(row.key)
        m = self.metrics
        for (tenant, origin), n in received.items():
            m.received.labels(tenant=tenant, origin=origin).inc(n)
        for tenant, size in received_bytes.items():
            m.received_bytes.labels(tenant=tenant).inc(size)
        for tenant, n in expired.items():
            m.expired.labels(tenant=tenant).inc(n)

    def _observe_rejects(self, rejects: list[RejectRow]) -> None:
        tally: Tally[tuple[str, str, str]] = Tally()
        for r in rejects:
            action = _one_of(r.action, REJECT_ACTIONS)
            tally[self._tenant(r.tenant), action, _cause("reject", r.cause)] += 1
        for (tenant, action, cause), n in tally.items():
            self.metrics.rejects.labels(tenant=tenant, action=action, cause=cause).inc(
                n
            )

    def _observe_dovecot(self, rows: list[DovecotRow]) -> None:
        m = self.metrics
        tally: Tally[tuple[str, str, str, str]] = Tally()
        for d in rows:
            service = DOVECOT_SERVICES.get(d.service, OTHER)
            status = _one_of(d.status, DOVECOT_STATUSES)
            cause = NO_CAUSE if d.cause is None else _cause(d.status, d.cause)
            tally[self._tenant(d.tenant), service, status, cause] += 1
            if d.delivery_time_ms is not None:
                m.dovecot_delivery.labels(service=service, status=status).observe(
                    d.delivery_time_ms / 1000
                )
            if d.session_time_ms is not None:
                m.dovecot_session.labels(service=service, status=status).observe(
                    d.session_time_ms / 1000
                )
        for (tenant, service, status, cause), n in tally.items():
            m.dovecot.labels(
                tenant=tenant, service=service, status=status, cause=cause
            ).inc(n)

    def _observe_events(self, events: list[EventRow]) -> None:
        m = self.metrics
        for e in events:
            if e.category in SEVERITIES:
                program = program_label(e.program)
                self._see_program(program)
                m.severity.labels(severity=e.category, program=program).inc()
            elif e.category in AUTH_FAILURES:
                m.auth_failures.labels(reason=AUTH_FAILURES[e.category]).inc()
            elif e.category == "notification":
                m.notifications.labels(kind=_notification_kind(e.text)).inc()

    def _observe_unparsed(self, rows: list[UnparsedRow]) -> None:
        for u in rows:
            program = program_label(u.program)
            reason = _one_of(u.reason, UNPARSED_REASONS)
            self.metrics.unparsed.labels(program=program, reason=reason).inc(u.count)

    # -- ingest health

    def observe_write_seconds(self, seconds: float) -> None:
        """Record how long one batch took to commit to the store."""
        self.metrics.store_write.observe(seconds)

    def set_lag(self, seconds: float) -> None:
        """Set how long the oldest accepted, uncommitted line has waited (0 when
        the ingest queue is empty)."""
        self.metrics.lag.set(max(seconds, 0.0))

    def observe_source(self, source: str, *, at: float | None = None) -> None:
        """Note that a line was read from ``source`` (wall-clock ``at``, default
        now). Sources the observer was not started with count as ``other``."""
        label = source if source in self.sources else OTHER
        when = self._wall_clock() if at is None else at
        self.metrics.last_line.labels(source=label).set(when)

    def follower_restarted(self, source: str) -> None:
        """Count a restart of the follower of ``source``."""
        label = source if source in self.sources else OTHER
        self.metrics.follower_restarts.labels(source=label).inc()

    def syslog_dropped(self, protocol: str, count: int = 1) -> None:
        """Count syslog messages dropped because ingest was behind."""
        label = _one_of(protocol.lower(), SYSLOG_PROTOCOLS)
        self.metrics.syslog_dropped.labels(protocol=label).inc(count)

    # -- exposition

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition for ``GET /metrics``: body and content type, in the
        format the ``Accept`` header asks for (OpenMetrics carries exemplars)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._exposed), content_type

    # -- helpers

    def _tenant(self, tenant: str | None) -> str:
        return tenant if tenant in self.tenants else UNASSIGNED

    def _domain(self, tenant: str, recipient_domain: str) -> str:
        label = self.domains.label(domain_value(recipient_domain))
        if (tenant, label) not in self._tenant_domains:
            # Zero series for every status, so ratios per domain exist at once.
            self._tenant_domains.add((tenant, label))
            for status in ATTEMPT_STATUSES:
                self.metrics.domain_attempts.labels(
                    tenant=tenant, domain=label, status=status
                )
        return label

    def _refresh_domains(self) -> None:
        for domain in self.domains.refresh():
            self.metrics.deferrals.remove_by_labels({"domain": domain})
            self.metrics.domain_attempts.remove_by_labels({"domain": domain})
        members = self.domains.members
        self._tenant_domains = {
            (t, d) for t, d in self._tenant_domains if d in members or d == OTHER
        }
        self.metrics.top_domains.set(len(members))

    def _see_program(self, program: str) -> None:
        if program in self._programs or program in (OTHER, UNKNOWN):
            return
        self._programs.add(program)
        for severity in SEVERITIES:
            self.metrics.severity.labels(severity=severity, program=program)
        self.metrics.unparsed.labels(program=program, reason="message")

    def _initialise(self) -> None:
        """Zero series for the label sets known from the start (tenants, causes of
        a healthy system), so that panels and alerts show 0 rather than no data."""
        m = self.metrics
        m.build_info.labels(version=_version()).set(1)
        for tenant in sorted(self.tenants):
            self._initialise_tenant(tenant)
        for status in ("ok", "fail"):
            m.lmtp_duration.labels(status=status)
        m.dovecot_delivery.labels(service="lmtp", status="saved")
        m.dovecot_session.labels(service="lmtp", status="saved")
        for reason in AUTH_FAILURES.values():
            m.auth_failures.labels(reason=reason)
        for kind in NOTIFICATION_KINDS:
            m.notifications.labels(kind=kind)
        for protocol in SYSLOG_PROTOCOLS:
            m.syslog_dropped.labels(protocol=protocol)
        for source in sorted(self.sources):
            m.follower_restarts.labels(source=source)
        m.top_domains.set(0)

    def _initialise_tenant(self, tenant: str) -> None:
        m = self.metrics
        for transport in ("smtp", "lmtp"):
            m.deliveries.labels(
                transport=transport, status="sent", cause=NO_CAUSE, tenant=tenant
            )
            m.deliveries.labels(
                transport=transport, status="bounced", cause=OTHER, tenant=tenant
            )
            m.deliveries.labels(
                transport=transport, status="expired", cause="expired", tenant=tenant
            )
        m.lmtp_delivery.labels(status="ok", tenant=tenant, cause=NO_CAUSE)
        for cause in ("quota_exceeded", OTHER):
            m.lmtp_delivery.labels(status="fail", tenant=tenant, cause=cause)
        m.dovecot.labels(tenant=tenant, service="lmtp", status="saved", cause=NO_CAUSE)
        m.dovecot.labels(
            tenant=tenant, service="lmtp", status="failed", cause="quota_exceeded"
        )
        for cause in USUAL_REJECT_CAUSES:
            m.rejects.labels(tenant=tenant, action="reject", cause=cause)
        m.received.labels(tenant=tenant, origin="smtpd")
        m.received_bytes.labels(tenant=tenant)
        m.expired.labels(tenant=tenant)


class _WithoutCreated:
    """A view of a registry without the ``*_created`` samples prometheus_client
    adds to counters and histograms: they double the series count and no panel or
    alert uses them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            family.samples = [
                s for s in family.samples if not s.name.endswith("_created")
            ]
            yield family
