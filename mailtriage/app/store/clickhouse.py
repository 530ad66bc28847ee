"""The ClickHouse store: the same interface as the DuckDB store, for a fleet.

Chosen by ``[store] url``: ``clickhouse://user:password@host:8123/database``
(``clickhouses://`` for HTTPS) reaches a server through ``clickhouse-connect``;
``chdb:///directory`` or ``chdb://memory`` runs ClickHouse's own engine in-process
(``chdb``, one engine directory per process). ``?database=NAME`` picks the database
of a chdb directory; the default is ``mailtriage``.

Tables, one per row type of ``mailtriage.parsers.model``:

- ``attempts``, ``rejects``, ``dovecot``, ``events``, ``lines``: MergeTree,
  partitioned by day (``toYYYYMMDD`` of the row's time) and ordered for the API's
  questions: ``(tenant, recipient_domain, ts)`` for attempts and Dovecot rows,
  ``(tenant, ts)`` for refusals, ``(host, queue_id, ts)`` for raw lines;
- ``attempts.rkey``, a 64-bit hash of (message key, recipient) computed on insert,
  tells recipients apart in the counting rules (reading two strings per row
  costs seconds at ten million rows; a collision among ten million recipients
  has a chance of about 3 in a million);
- ``messages``: ReplacingMergeTree on the message key, versioned by write time,
  read with ``FINAL`` so that an upsert by key is what a query sees;
- ``ledger``: an AggregatingMergeTree of everything that must not be counted twice
  or lost: source checkpoints and pipeline state (the latest version wins, ``max``
  of ``(version, payload)``), lines per program and unparsed shapes (``sum`` of
  counts, ``min``/``max`` of times, the example of the earliest line), and one
  commit marker per stream holding its last committed batch number;
- ``conversations`` (chat turns) and ``schema_version`` (numbered migrations).

``[store] retention_days`` sets a TTL on the day-partitioned tables (``ALTER ...
MODIFY TTL`` on open when the setting changed; whole day-parts are dropped).
Percentiles are exact and interpolated like DuckDB's ``quantile_cont`` (R7), so
both stores give the same answer up to the last bit: ``quantilesExactInclusive``
where the engine has it (current servers, the full chdb build), else, in the lite
chdb build, by sorting the group's values (``_percentile_sql``). ClickHouse's
``quantile`` samples and is not used.

**Write guarantees, and where ClickHouse differs from DuckDB.** DuckDB commits a
batch's rows, its sources' checkpoints and the pipeline state in one transaction.
ClickHouse has no transaction across tables (``allow_experimental_transactions``
is experimental and is not used); what it does guarantee is that one ``INSERT`` of
less than ``max_insert_block_size`` rows into one partition of a MergeTree table is
written as one part, all or nothing. The store builds on that:

1. every batch of a stream gets the next number ``seq`` of that stream, and every
   row it inserts into the five row tables and ``messages`` carries
   ``(batch_stream, batch_seq)``;
2. those rows are inserted first, table by table;
3. then ONE insert into ``ledger`` (no partition key, so one part) carries the
   sources' checkpoints, the pipeline state, the line and unparsed counts, and the
   commit marker ``seq``: the checkpoint is written last and atomically with
   everything that adds up;
4. before a store writes a stream for the first time (and after a failed write),
   it reads the stream's committed ``seq`` and deletes (lightweight ``DELETE``)
   every row of that stream with a larger ``batch_seq``: the rows of a batch whose
   commit never landed. The ingest then resumes from the committed checkpoint and
   state, so those lines are read and written again exactly once.

So after a crash at any point, totals equal one clean run, as with DuckDB. The
differences: (a) a reader may see the rows of a batch while it is being written,
before its commit marker, and after a crash until the writer of that stream
starts again (DuckDB readers never see uncommitted rows); (b) each stream must
have one writer at a time (the ingest of one ``mailtriage serve`` or ``ingest``,
one collector): a second writer of the same stream would delete the first one's
batch in flight; (c) when the commit insert itself fails so that its outcome is
unknown (the connection dropped), the store asks the server for the committed
``seq`` a few times; if it cannot tell, it refuses further writes of that stream
until the process restarts (``StoreError``), because the pipeline would otherwise
retry rows that may already be committed; (d) a message row is replaced by a later
version only when parts merge, so ``messages`` is always read with ``FINAL``.

Inserts are columnar (Arrow); on the network path they use ``async_insert`` with
``wait_for_async_insert=1`` so that small batches of many collectors land in few
parts while each insert still returns only once its rows are written. The commit
insert is synchronous. Queries use one client per thread (a client serialises its
own calls); writes are serialised by a lock.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pyarrow as pa
from loguru import logger

from mailtriage.app.store.base import (
    GROUP_BY,
    CauseCount,
    ChatTurn,
    Checkpoint,
    DataRange,
    DelayStats,
    DeliveryFilter,
    DeliveryItem,
    DeliveryPage,
    DomainVolume,
    DovecotSide,
    DovecotTimings,
    EventCount,
    EventItem,
    FailureGroup,
    FailureSample,
    GroupBy,
    GroupStats,
    MessageInfo,
    MessageTrace,
    Percentiles,
    ProgramLines,
    RejectFilter,
    RejectItem,
    RejectPage,
    RejectReason,
    Scope,
    Store,
    Summary,
    TimePoint,
    TimeSeries,
    TopRecipient,
    TopSender,
    TraceLine,
    Traffic,
    UnparsedShape,
    UnparsedSummary,
    decode_cursor,
    encode_cursor,
)
from mailtriage.app.store.columns import (
    ATTEMPT_GROUPS,
    DOVECOT_GROUPS,
    SCHEMAS,
    STAGE_COLUMNS,
    ColumnBatch,
    to_columns,
)
from mailtriage.errors import (
    ConfigError,
    NotFoundError,
    QueryError,
    SchemaError,
    StoreError,
)
from mailtriage.parsers.model import Batch

JOIN_SLACK_SECONDS = 60.0
"""As in the DuckDB store: a Dovecot row pairs with the Postfix attempt of the same
join key logged up to this many seconds before it (clock skew between hosts)."""

MAX_BUCKETS = 10_000
TRACE_LINES_LIMIT = 5_000
RECEIVED_ORIGINS = ("smtpd", "pickup")
DEFAULT_DATABASE = "mailtriage"
QUANTILES = (0.5, 0.95, 0.99)

RESOLVE_ATTEMPTS = 5
"""How often a failed commit asks the server whether it landed (see (c) above),
waiting ``resolve_pause_seconds`` and then twice as long each time."""

_ID_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
_ID_ROWS = 1 << 16
_ID_TAGS = 1 << 6

# ------------------------------------------------------------------- migrations


def _day(column: str) -> str:
    return f"toYYYYMMDD(toDateTime(toUInt32(greatest({column}, 0))))"


_BATCH = "batch_stream LowCardinality(String), batch_seq UInt64"
_PARTS = "SETTINGS ttl_only_drop_parts = 1"

_MIGRATION_1 = [
    f"""CREATE TABLE IF NOT EXISTS messages (
        key String, host String, queue_id String, first_ts Float64,
        last_ts Float64, closed Bool, origin LowCardinality(String),
        client_host Nullable(String), client_ip Nullable(String),
        sasl_method Nullable(String), sasl_username Nullable(String),
        message_id Nullable(String), sender Nullable(String),
        sender_domain Nullable(String), size Nullable(Int64), nrcpt Nullable(Int64),
        tenant LowCardinality(String), parent_queue_id Nullable(String),
        expired Bool, version UInt64, {_BATCH})
    ENGINE = ReplacingMergeTree(version) PARTITION BY {_day("first_ts")}
    ORDER BY (host, queue_id, key) {_PARTS}""",
    f"""CREATE TABLE IF NOT EXISTS attempts (
        id Int64, ts Float64, host LowCardinality(String), queue_id String,
        message_key String, recipient String, recipient_domain String,
        transport LowCardinality(String), status LowCardinality(String), final Bool,
        tenant LowCardinality(String), sender Nullable(String),
        sender_domain Nullable(String), message_id Nullable(String),
        orig_recipient Nullable(String), program Nullable(String),
        relay_host Nullable(String), relay_ip Nullable(String),
        relay_port Nullable(Int64), conn_use Nullable(Int64), delay Nullable(Float64),
        delay_before_qmgr Nullable(Float64), delay_in_qmgr Nullable(Float64),
        delay_conn_setup Nullable(Float64), delay_transmission Nullable(Float64),
        dsn Nullable(String), smtp_code Nullable(Int64),
        enhanced_code Nullable(String), response String, cause Nullable(String),
        temporary Nullable(Bool), dovecot_session Nullable(String),
        dovecot_key Nullable(String), {_BATCH},
        rkey UInt64 MATERIALIZED cityHash64(message_key, recipient))
    ENGINE = MergeTree PARTITION BY {_day("ts")}
    ORDER BY (tenant, recipient_domain, ts) {_PARTS}""",
    f"""CREATE TABLE IF NOT EXISTS rejects (
        id Int64, ts Float64, host LowCardinality(String), program String,
        action LowCardinality(String), stage Nullable(String),
        queue_id Nullable(String), client_host Nullable(String),
        client_ip Nullable(String), smtp_code Nullable(Int64), dsn Nullable(String),
        text String, cause LowCardinality(String), sender Nullable(String),
        recipient Nullable(String), recipient_domain Nullable(String),
        tenant LowCardinality(String), {_BATCH})
    ENGINE = MergeTree PARTITION BY {_day("ts")} ORDER BY (tenant, ts) {_PARTS}""",
    f"""CREATE TABLE IF NOT EXISTS dovecot (
        ts Float64, host LowCardinality(String), service String, recipient String,
        recipient_domain String, tenant LowCardinality(String),
        session Nullable(String), msgid Nullable(String),
        status LowCardinality(String), mailbox Nullable(String),
        reason Nullable(String), cause Nullable(String),
        delivery_time_ms Nullable(Float64), session_time_ms Nullable(Float64),
        size Nullable(Int64), sender Nullable(String), dovecot_key Nullable(String),
        {_BATCH})
    ENGINE = MergeTree PARTITION BY {_day("ts")}
    ORDER BY (tenant, recipient_domain, ts) {_PARTS}""",
    f"""CREATE TABLE IF NOT EXISTS events (
        ts Float64, host LowCardinality(String), program String,
        category LowCardinality(String), text String, queue_id Nullable(String),
        {_BATCH})
    ENGINE = MergeTree PARTITION BY {_day("ts")} ORDER BY (category, ts) {_PARTS}""",
    f"""CREATE TABLE IF NOT EXISTS lines (
        id Int64, ts Float64, host LowCardinality(String), queue_id String,
        program String, line String CODEC(ZSTD(3)), message_key Nullable(String),
        {_BATCH})
    ENGINE = MergeTree PARTITION BY {_day("ts")}
    ORDER BY (host, queue_id, ts) {_PARTS}""",
    """CREATE TABLE IF NOT EXISTS ledger (
        kind LowCardinality(String), stream String, key String, key2 String,
        key3 String,
        latest SimpleAggregateFunction(max, Tuple(UInt64, String)),
        total SimpleAggregateFunction(sum, Int64),
        first SimpleAggregateFunction(min, Tuple(Float64, String)),
        min_ts SimpleAggregateFunction(min, Nullable(Float64)),
        max_ts SimpleAggregateFunction(max, Nullable(Float64)))
    ENGINE = AggregatingMergeTree ORDER BY (kind, stream, key, key2, key3)""",
    """CREATE TABLE IF NOT EXISTS conversations (
        conversation_id String, turn UInt32, tenant Nullable(String),
        role String, content String, ts Float64)
    ENGINE = MergeTree ORDER BY (conversation_id, turn)""",
]

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("tables for messages, attempts, rejects, dovecot, events, lines", _MIGRATION_1),
]
"""Numbered from 1 in list order. Append; never edit one that was released. Each
statement is idempotent (``IF NOT EXISTS``): ClickHouse has no transactional DDL,
so a migration interrupted half-way is simply applied again."""

SCHEMA_VERSION = len(MIGRATIONS)

ROW_TABLES = ("messages", "attempts", "rejects", "dovecot", "events", "lines")
"""Tables whose rows carry their batch; ``unparsed`` goes to the ledger."""

_TTL_COLUMNS = {
    "messages": "last_ts",
    "attempts": "ts",
    "rejects": "ts",
    "dovecot": "ts",
    "events": "ts",
    "lines": "ts",
}
_WITH_IDS = ("attempts", "rejects", "lines")

# ------------------------------------------------------------- group-by columns

_DELIVERY_COLUMNS = [n for n in DeliveryItem.model_fields if n != "dovecot"]
_REJECT_COLUMNS = list(RejectItem.model_fields)
_MESSAGE_COLUMNS = list(MessageInfo.model_fields)
_DOVECOT_SIDE_COLUMNS = list(DovecotSide.model_fields)
_DELIVERY_SELECT = ", ".join([*_DELIVERY_COLUMNS, "dovecot_key"])
_FAILED = "status IN ('deferred', 'bounced', 'expired')"

_G = TypeVar("_G", bound=GroupStats)

# ----------------------------------------------------------------- SQL helpers


class _Where:
    """A conjunction of conditions with named, typed server-side parameters."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.clauses: list[str] = []
        self.params: dict[str, Any] = {} if params is None else params

    def param(self, value: Any) -> str:
        """The placeholder of ``value`` (``{p0:String}``), its value recorded."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{_sql_type(value)}}}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    def cmp(self, column: str, op: str, value: Any) -> None:
        self.clauses.append(f"{column} {op} {self.param(value)}")

    def eq(self, column: str, value: Any) -> None:
        if value is not None:
            self.cmp(column, "=", value)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "1"


def _sql_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return "Array(String)"
    if isinstance(value, list | tuple) and all(isinstance(v, int) for v in value):
        return "Array(Int64)"
    raise TypeError(f"no ClickHouse parameter type for {value!r}")


def _time(where: _Where, scope: Scope, column: str = "ts") -> None:
    if scope.since is not None:
        where.cmp(column, ">=", float(scope.since))
    if scope.until is not None:
        where.cmp(column, "<", float(scope.until))


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _attempt_where(scope: Scope, prefix: str = "") -> _Where:
    """Conditions on ``attempts`` for every scope field (tenant confinement too)."""
    where = _Where()
    _time(where, scope, f"{prefix}ts")
    where.eq(f"{prefix}tenant", scope.tenant_filter())
    where.eq(f"{prefix}recipient_domain", _lower(scope.domain))
    where.eq(f"{prefix}host", scope.host)
    where.eq(f"{prefix}transport", scope.transport)
    where.eq(f"{prefix}relay_host", scope.relay)
    return where


def _group_exprs(group_by: Sequence[GroupBy], columns: Mapping[str, str]) -> list[str]:
    exprs = []
    for name in group_by:
        if name not in GROUP_BY:
            raise QueryError(
                f"group_by {name!r} is not one of {', '.join(GROUP_BY)}",
                parameter="group_by",
            )
        if name not in columns:
            raise QueryError(
                f"group_by {name!r} does not apply to this query", parameter="group_by"
            )
        exprs.append(columns[name])
    if len(set(group_by)) != len(group_by):
        raise QueryError("group_by names a dimension twice", parameter="group_by")
    return exprs


def _check_limit(limit: int, parameter: str = "limit") -> int:
    if not 1 <= limit <= 10_000:
        raise QueryError(
            f"{parameter} must be between 1 and 10000, not {limit}",
            parameter=parameter,
        )
    return int(limit)


def _percentile_sql(fast: bool, expr: str, cond: str, name: str) -> tuple[str, str]:
    """The SQL of the percentiles of ``expr`` over the rows where ``cond``: an
    aggregate for the inner query and what the outer query selects, ``n_<name>``
    (the count) and ``q_<name>`` (what ``_pct`` reads).

    ``fast``: ``quantilesExactInclusive`` (exact, R7 interpolation as DuckDB's
    ``quantile_cont``; in every ClickHouse server since 2020 and the full chdb
    build). Otherwise (the lite chdb build lacks it): every value of the group is
    collected and sorted, and the two neighbours of each percentile are read at
    ``h = (n - 1) * q``; ``_pct`` interpolates. Exact as well, but it sorts.
    """
    if fast:
        levels = ", ".join(repr(q) for q in QUANTILES)
        inner = (
            f"countIf(({cond}) AND {expr} IS NOT NULL) AS n_{name}, "
            f"quantilesExactInclusiveIf({levels})({expr}, {cond}) AS q_{name}"
        )
        return inner, f"n_{name}, q_{name}"
    s = f"s_{name}"
    inner = f"arraySort(groupArrayIf({expr}, {cond})) AS {s}"
    levels = ", ".join(repr(q) for q in QUANTILES)
    neighbours = (
        f"arrayMap(h -> ({s}[toUInt64(floor(h)) + 1], {s}[toUInt64(ceil(h)) + 1]), "
        f"arrayMap(q -> (length({s}) - 1) * q, [{levels}]))"
    )
    return inner, f"length({s}) AS n_{name}, {neighbours} AS q_{name}"


def _pct(count: int | None, found: Sequence[Any] | None) -> Percentiles:
    """Percentiles from ``q_<name>`` of ``_percentile_sql``: the values, or the
    neighbours to interpolate as DuckDB's ``quantile_cont`` does,
    ``lo * (1 - d) + hi * d`` with ``d`` the fractional part of ``(n - 1) * q``.
    (DuckDB's build fuses one product into an FMA and ClickHouse's function
    writes the formula another way, so the last bit may differ.)"""
    if not count or not found:
        return Percentiles()
    values = []
    for q, value in zip(QUANTILES, found, strict=True):
        if isinstance(value, tuple | list):
            lo, hi = value
            h = (count - 1) * q
            d = h - math.floor(h)
            value = lo if d == 0 else lo * (1 - d) + hi * d
        values.append(float(value))
    return Percentiles(count=count, p50=values[0], p95=values[1], p99=values[2])


def _sort_key(values: Sequence[Any]) -> tuple[tuple[bool, Any], ...]:
    """Ascending with NULLs last, as both engines order by default."""
    return tuple((v is None, v if v is not None else 0) for v in values)


# --------------------------------------------------------------------- errors


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


# ------------------------------------------------------------------ connection


@dataclass(frozen=True, slots=True)
class Target:
    """Where a ClickHouse store lives, parsed from ``[store] url``."""

    url: str
    database: str
    chdb_path: str | None = None  # "" for chdb://memory
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str = ""
    secure: bool = False

    @property
    def is_chdb(self) -> bool:
        return self.chdb_path is not None

    @property
    def label(self) -> str:
        """The url without its password, for messages."""
        if self.is_chdb:
            return self.url
        auth = f"{self.username}@" if self.username else ""
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.database}"


def parse_target(url: str) -> Target:
    """The store target of a ``clickhouse://``, ``clickhouses://`` or ``chdb://``
    url; ConfigError for anything else."""
    parsed = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    if parsed.scheme == "chdb":
        database = query.get("database", DEFAULT_DATABASE)
        location = parsed.netloc or ""
        if location in ("memory", ":memory:"):
            path = ""
        elif location or not parsed.path.startswith("/"):
            raise ConfigError(
                f"[store] url {url!r}: write chdb:///absolute/directory (three "
                "slashes) or chdb://memory"
            )
        else:
            path = unquote(parsed.path)
        return Target(url=url, database=_identifier(database, url), chdb_path=path)
    if parsed.scheme not in ("clickhouse", "clickhouses"):
        raise ConfigError(
            f"[store] url {url!r}: the scheme must be clickhouse://, clickhouses:// "
            "or chdb://"
        )
    secure = parsed.scheme == "clickhouses"
    database = unquote(parsed.path.strip("/")) or DEFAULT_DATABASE
    return Target(
        url=url,
        database=_identifier(database, url),
        host=parsed.hostname or "localhost",
        port=parsed.port or (8443 if secure else 8123),
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else "",
        secure=secure,
    )


def _identifier(name: str, url: str) -> str:
    if not name or not all(c.isalnum() or c == "_" for c in name):
        raise ConfigError(
            f"[store] url {url!r}: the database name {name!r} may hold only letters, "
            "digits and underscores"
        )
    return name


def _client_factory(target: Target) -> Callable[[str | None], Any]:
    """A function that opens a new ``clickhouse_connect`` client on ``target``,
    in the given database (None: the server's default)."""
    import clickhouse_connect

    def connect(database: str | None) -> Any:
        if target.chdb_path is not None:
            dsn = f"chdb://{target.chdb_path}" if target.chdb_path else "chdb://memory"
            return clickhouse_connect.get_client(dsn=dsn, database=database)
        return clickhouse_connect.get_client(
            host=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            database=database or "",
            secure=target.secure,
            # Queries of the API answer in milliseconds; a slow one is a problem to
            # report, not to wait for.
            send_receive_timeout=60,
        )

    return connect


# ------------------------------------------------------------------------ store


class ClickHouseStore(Store):
    """The store in a ClickHouse database (see the module docstring)."""

    resolve_pause_seconds = 0.2

    def __init__(
        self,
        target: Target | str,
        *,
        retention_days: int | None = None,
        read_only: bool = False,
    ) -> None:
        self.target = parse_target(target) if isinstance(target, str) else target
        self.database = self.target.database
        self.label = self.target.label
        self.retention_days = retention_days
        self._connect = _client_factory(self.target)
        self._local = threading.local()
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False
        self._committed: dict[str, int] = {}
        self._doubt: dict[str, int] = {}
        self._version = 0
        self._id_ms = 0
        self._id_tag = random.randrange(_ID_TAGS)
        self._first_seen: dict[str, float] = {}
        self._fast_quantiles = False
        self._network = not self.target.is_chdb
        self._create_database(read_only)
        try:
            self._migrate(read_only)
            if not read_only:
                self._apply_retention()
            self._fast_quantiles = self._has_function("quantilesExactInclusive")
        except BaseException:
            self.close()
            raise
        logger.debug("store opened", url=self.label, schema=SCHEMA_VERSION)

    def _create_database(self, read_only: bool) -> None:
        with self._translated("opening the database"):
            boot = self._connect(None)
            try:
                if not read_only:
                    boot.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
                    return
                found = boot.query(
                    "SELECT count() FROM system.databases WHERE name = {d:String}",
                    parameters={"d": self.database},
                ).result_rows
            finally:
                boot.close()
        if not found[0][0]:
            raise SchemaError(
                f"the database {self.label} does not exist yet; open it once "
                "without read-only"
            )

    # ------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close every client; safe to call twice."""
        with self._clients_lock:
            if self._closed:
                return
            self._closed = True
            for client in self._clients:
                try:
                    client.close()
                except Exception as exc:  # closing must not raise on the way out
                    logger.debug("closing a client failed", error=_error_text(exc))
            self._clients.clear()

    def ping(self) -> None:
        self._rows("SELECT 1", {}, "answering a ping")

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """Turn clickhouse-connect's and chdb's exceptions into ``StoreError``."""
        from clickhouse_connect.driver.exceptions import (
            ClickHouseError,
            OperationalError,
        )

        try:
            yield
        except OperationalError as exc:
            raise StoreError(
                f"cannot reach ClickHouse at {self.label} while {doing}: "
                f"{_error_text(exc)} (is the server up and the url right?)"
            ) from exc
        except (ClickHouseError, RuntimeError) as exc:
            raise StoreError(
                f"the ClickHouse store {self.label} failed while {doing}: "
                f"{_error_text(exc)}"
            ) from exc

    def _client(self) -> Any:
        """This thread's client (a client serialises its own calls)."""
        client = getattr(self._local, "client", None)
        if client is None:
            with self._clients_lock:
                if self._closed:
                    raise StoreError(f"the store {self.label} is closed")
                client = self._connect(self.database)
                self._clients.append(client)
            self._local.client = client
        return client

    def _rows(self, sql: str, params: Mapping[str, Any], doing: str) -> list[Any]:
        with self._translated(doing):
            return list(self._client().query(sql, parameters=dict(params)).result_rows)

    def _dicts(
        self, sql: str, params: Mapping[str, Any], doing: str
    ) -> list[dict[str, Any]]:
        with self._translated(doing):
            result = self._client().query(sql, parameters=dict(params))
            names = list(result.column_names)
            return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def _command(self, sql: str, doing: str, **settings: Any) -> None:
        with self._translated(doing):
            self._client().command(sql, settings=settings or None)

    def _has_function(self, name: str) -> bool:
        found = self._rows(
            "SELECT count() FROM system.functions WHERE name = {n:String}",
            {"n": name},
            "looking for a function",
        )
        return bool(found[0][0])

    # ------------------------------------------------------------ migrations

    def _migrate(self, read_only: bool) -> None:
        current = self._schema_version(read_only)
        if current > SCHEMA_VERSION:
            raise SchemaError(
                f"the database {self.label} has schema version {current}, but this "
                f"mailtriage understands versions up to {SCHEMA_VERSION}: upgrade "
                "mailtriage, or point [store] url at another database"
            )
        if current < SCHEMA_VERSION and read_only:
            raise SchemaError(
                f"the database {self.label} has schema version {current} and needs "
                f"migrating to {SCHEMA_VERSION}; open it once without read-only"
            )
        for number in range(current + 1, SCHEMA_VERSION + 1):
            self._apply(number)

    def _schema_version(self, read_only: bool) -> int:
        found = self._rows(
            "SELECT count() FROM system.tables WHERE database = {db:String} "
            "AND name = 'schema_version'",
            {"db": self.database},
            "checking the schema version",
        )
        if not found[0][0]:
            if not read_only:
                self._command(
                    "CREATE TABLE IF NOT EXISTS schema_version (version UInt32, "
                    "description String, applied Float64) "
                    "ENGINE = MergeTree ORDER BY version",
                    "creating the schema table",
                )
            return 0
        rows = self._rows(
            "SELECT max(version) FROM schema_version", {}, "reading the schema version"
        )
        return int(rows[0][0] or 0)

    def _apply(self, number: int) -> None:
        description, statements = MIGRATIONS[number - 1]
        doing = f"applying schema migration {number}"
        for statement in statements:
            self._command(statement, doing)
        with self._translated(doing):
            self._client().insert(
                "schema_version",
                [[number, description, time.time()]],
                column_names=["version", "description", "applied"],
                settings={"async_insert": 0},
            )
        logger.info("schema migrated", url=self.label, version=number)

    def _apply_retention(self) -> None:
        """Set or remove the TTL of the day-partitioned tables when
        ``retention_days`` differs from what the database has."""
        wanted = self.retention_days or 0
        found = self._payloads("setting", "", "retention_days", "reading retention")
        current = int(found[0] or 0) if found else 0
        if wanted == current:
            return
        for table, column in _TTL_COLUMNS.items():
            if wanted:
                expires = f"toDateTime(toUInt32(greatest({column}, 0)))"
                sql = (
                    f"ALTER TABLE {table} MODIFY TTL "
                    f"{expires} + toIntervalDay({int(wanted)})"
                )
            else:
                sql = f"ALTER TABLE {table} REMOVE TTL"
            self._command(sql, "setting the retention")
        self._insert_ledger(
            [
                _ledger_row(
                    "setting",
                    key="retention_days",
                    latest=(self._next_version(), str(wanted).encode()),
                )
            ],
            "recording the retention",
        )
        logger.info("retention set", url=self.label, days=wanted or None)

    # ---------------------------------------------------------------- writes

    def write(
        self,
        batch: Batch | Any,
        checkpoint: Checkpoint | Sequence[Checkpoint] | None = None,
        *,
        state: bytes | None = None,
        stream: str = "main",
    ) -> None:
        cols = batch if isinstance(batch, ColumnBatch) else to_columns(batch)
        if checkpoint is None:
            checkpoints: Sequence[Checkpoint] = ()
        elif isinstance(checkpoint, Checkpoint):
            checkpoints = (checkpoint,)
        else:
            checkpoints = checkpoint
        with self._write_lock:
            if self._closed:
                raise StoreError(f"the store {self.label} is closed")
            _check_nulls(cols)
            seq = self._begin(stream)
            try:
                self._insert_rows(cols, stream, seq)
                self._commit(cols, checkpoints, state, stream, seq)
            except BaseException:
                self._abandon(stream)
                raise

    def _abandon(self, stream: str) -> None:
        """After a failed write: remove the rows it left, now if the server
        answers, else before the next write of the stream (``_begin``)."""
        self._doubt.setdefault(stream, 0)
        if self._doubt[stream]:
            return  # in doubt: only a restart may decide
        try:
            self._remove_uncommitted(stream, self._committed.get(stream, 0))
        except StoreError as exc:
            logger.warning(
                "cannot remove the rows of a failed write yet",
                stream=stream,
                error=str(exc),
            )
            return
        self._doubt.pop(stream, None)

    def _begin(self, stream: str) -> int:
        """The number of the next batch of ``stream``, after removing the rows of
        batches that were never committed (first write, or after a failure)."""
        if stream in self._committed and stream not in self._doubt:
            return self._committed[stream] + 1
        committed = self._read_committed(stream)
        doubt = self._doubt.get(stream)
        if doubt and committed >= doubt:
            raise StoreError(
                f"batch {doubt} of stream {stream!r} was committed to {self.label} "
                "although its commit reported a failure; restart mailtriage so that "
                "ingest resumes from that commit instead of writing its rows again"
            )
        self._remove_uncommitted(stream, committed)
        self._doubt.pop(stream, None)
        self._committed[stream] = committed
        return committed + 1

    def _read_committed(self, stream: str) -> int:
        rows = self._rows(
            "SELECT tupleElement(max(latest), 1) FROM ledger WHERE kind = 'commit' "
            "AND stream = {s:String}",
            {"s": stream},
            "reading the last commit",
        )
        return int(rows[0][0] or 0) if rows else 0

    def _remove_uncommitted(self, stream: str, committed: int) -> None:
        params = {"s": stream, "c": committed}
        cond = "batch_stream = {s:String} AND batch_seq > {c:UInt64}"
        counts = self._rows(
            " UNION ALL ".join(
                f"SELECT '{t}', count() FROM {t} WHERE {cond}" for t in ROW_TABLES
            ),
            params,
            "looking for uncommitted rows",
        )
        for table, count in counts:
            if count:
                with self._translated("removing uncommitted rows"):
                    self._client().command(
                        f"DELETE FROM {table} WHERE {cond}",
                        parameters=params,
                        settings={"lightweight_deletes_sync": 2, "mutations_sync": 2},
                    )
                logger.warning(
                    "removed rows of an uncommitted batch",
                    table=table,
                    rows=int(count),
                    stream=stream,
                    committed=committed,
                )

    def _insert_rows(self, cols: ColumnBatch, stream: str, seq: int) -> None:
        settings = (
            {"async_insert": 1, "wait_for_async_insert": 1}
            if self._network
            else {"async_insert": 0}
        )
        for name in ROW_TABLES:
            table = cols.tables.get(name)
            if table is None or not table.num_rows:
                continue
            n = table.num_rows
            if name in _WITH_IDS:
                table = table.add_column(0, "id", self._ids(n))
            if name == "messages":
                table = table.append_column(
                    "version", pa.array(np.full(n, self._next_version(), np.uint64))
                )
            table = table.append_column(
                "batch_stream", pa.array([stream] * n, pa.string())
            ).append_column("batch_seq", pa.array(np.full(n, seq, np.uint64)))
            with self._translated(f"writing {name}"):
                self._client().insert_arrow(name, table, settings=settings)

    def _commit(
        self,
        cols: ColumnBatch,
        checkpoints: Sequence[Checkpoint],
        state: bytes | None,
        stream: str,
        seq: int,
    ) -> None:
        rows = self._ledger_rows(cols, checkpoints, state, stream)
        rows.append(_ledger_row("commit", stream=stream, latest=(seq, b"")))
        try:
            self._insert_ledger(rows, "committing a batch")
        except StoreError:
            if self._landed(stream, seq):
                logger.warning("commit reported a failure but landed", stream=stream)
            else:
                raise
        self._committed[stream] = seq
        self._doubt.pop(stream, None)

    def _landed(self, stream: str, seq: int) -> bool:
        """Whether the commit of ``seq`` is in the ledger; StoreError (and writes
        of the stream refused until restart) when the server cannot tell."""
        pause = self.resolve_pause_seconds
        for _ in range(RESOLVE_ATTEMPTS):
            try:
                committed = self._read_committed(stream)
            except StoreError:
                time.sleep(pause)
                pause *= 2
                continue
            if committed >= seq:
                return True
            self._doubt[stream] = 0
            return False
        self._doubt[stream] = seq
        return False

    def _ledger_rows(
        self,
        cols: ColumnBatch,
        checkpoints: Sequence[Checkpoint],
        state: bytes | None,
        stream: str,
    ) -> list[list[Any]]:
        now = time.time()
        rows = [self._checkpoint_row(cp, now) for cp in checkpoints]
        if state is not None:
            rows.append(
                _ledger_row(
                    "state", stream=stream, latest=(self._next_version(), state)
                )
            )
        rows += [
            _ledger_row("program", key=program, total=lines)
            for program, lines in cols.lines_by_program.items()
        ]
        unparsed = cols.tables.get("unparsed")
        if unparsed is not None:
            rows += [_unparsed_row(row) for row in unparsed.to_pylist()]
        return rows

    def _checkpoint_row(self, cp: Checkpoint, now: float) -> list[Any]:
        first_seen = cp.first_seen
        if first_seen is None:
            first_seen = self._first_seen.get(cp.source_id)
        if first_seen is None:
            known = self.checkpoint(cp.source_id)
            first_seen = known.first_seen if known and known.first_seen else now
        self._first_seen[cp.source_id] = first_seen
        saved = cp.model_copy(update={"first_seen": first_seen, "updated": now})
        payload = saved.model_dump_json().encode()
        return _ledger_row(
            "source", key=cp.source_id, latest=(self._next_version(), payload)
        )

    def _insert_ledger(self, rows: list[list[Any]], doing: str) -> None:
        # One synchronous insert of one block into a table without partitions is
        # one part: all of it is committed, or none.
        with self._translated(doing):
            self._client().insert(
                "ledger",
                rows,
                column_names=_LEDGER_COLUMNS,
                settings={"async_insert": 0},
            )

    def _next_version(self) -> int:
        self._version = max(time.time_ns(), self._version + 1)
        return self._version

    def _ids(self, n: int) -> pa.Array:
        """Ids for ``n`` new rows: increasing in write order within this store,
        made of milliseconds, a random tag of this store and a row number, so that
        two writers collide only with the same tag in the same millisecond."""
        units = max(1, -(-n // _ID_ROWS))
        start = max(int(time.time() * 1000) - _ID_EPOCH_MS, self._id_ms + 1)
        self._id_ms = start + units - 1
        i = np.arange(n, dtype=np.int64)
        ids = ((start + i // _ID_ROWS) << 22) | (self._id_tag << 16) | (i % _ID_ROWS)
        return pa.array(ids, pa.int64())

    def checkpoint(self, source_id: str) -> Checkpoint | None:
        found = self._payloads("source", "", source_id, "reading a checkpoint")
        return Checkpoint.model_validate_json(found[0]) if found else None

    def state(self, stream: str = "main") -> bytes | None:
        found = self._payloads("state", stream, "", "reading the pipeline state")
        return found[0] if found else None

    def sources(self) -> list[Checkpoint]:
        found = self._payloads("source", "", None, "listing sources")
        checkpoints = [Checkpoint.model_validate_json(data) for data in found]
        return sorted(checkpoints, key=lambda c: (-(c.updated or 0.0), c.source_id))

    def _payloads(
        self, kind: str, stream: str, key: str | None, doing: str
    ) -> list[bytes]:
        where = _Where()
        where.eq("kind", kind)
        where.eq("stream", stream)
        where.eq("key", key)
        with self._translated(doing):
            result = self._client().query(
                f"SELECT tupleElement(max(latest), 2) FROM ledger WHERE {where.sql()} "
                "GROUP BY kind, stream, key, key2, key3",
                parameters=where.params,
                query_formats={"String": "bytes"},
            )
            return [bytes(row[0]) for row in result.result_rows]

    # ---------------------------------------------------------------- counts

    def summary(
        self,
        scope: Scope,
        group_by: Sequence[GroupBy] = (),
        *,
        limit: int | None = None,
    ) -> Summary:
        exprs = _group_exprs(group_by, ATTEMPT_GROUPS)
        where = _attempt_where(scope)
        totals = self._counts(where, [], None, None)
        groups = self._counts(where, exprs, None, limit) if exprs else []
        return Summary(
            group_by=list(group_by),
            totals=_stats(totals[0], [], GroupStats) if totals else GroupStats(),
            groups=[_stats(row, list(group_by), GroupStats) for row in groups],
        )

    def timeseries(
        self,
        scope: Scope,
        interval_seconds: float,
        group_by: Sequence[GroupBy] = (),
    ) -> TimeSeries:
        if not interval_seconds > 0:
            raise QueryError("interval must be positive", parameter="interval")
        exprs = _group_exprs(group_by, ATTEMPT_GROUPS)
        span = self._span(scope)
        if span is not None and span / interval_seconds > MAX_BUCKETS:
            raise QueryError(
                f"an interval of {interval_seconds:g} s makes more than "
                f"{MAX_BUCKETS} buckets over this window; use a larger interval or "
                "a shorter window",
                parameter="interval",
            )
        step = repr(float(interval_seconds))
        rows = self._counts(
            _attempt_where(scope), exprs, f"floor(ts / {step}) * {step}", None
        )
        points = [_stats(row, list(group_by), TimePoint) for row in rows]
        return TimeSeries(
            interval_seconds=interval_seconds, group_by=list(group_by), points=points
        )

    def _span(self, scope: Scope) -> float | None:
        if scope.since is not None and scope.until is not None:
            return scope.until - scope.since
        found = self.data_range(scope)
        if found.first_ts is None or found.last_ts is None:
            return None
        since = scope.since if scope.since is not None else found.first_ts
        until = scope.until if scope.until is not None else found.last_ts
        return max(0.0, until - since)

    def _counts(
        self,
        where: _Where,
        exprs: Sequence[str],
        bucket: str | None,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        """The five counts and the delay percentiles per group (and bucket).

        Attempts are counted per group in one query and deferred recipients (by
        the group of their latest attempt) in another, merged here: a join on
        group keys that may be NULL needs a null-safe equality, which the engine
        lacks in joins.
        """
        keys = [f"g{i}" for i in range(len(exprs))]
        if bucket is not None:
            keys = ["bucket", *keys]
        rows = self._attempt_counts(where, exprs, bucket, keys)
        deferred = self._deferred_counts(where, exprs, bucket, keys)
        for row in rows:
            row["deferred"] = deferred.get(tuple(row[k] for k in keys), 0)

        def order(row: dict[str, Any]) -> tuple[Any, ...]:
            volume = row["delivered"] + row["bounced"] + row["expired"]
            volume += row["deferred"]
            head = (row["bucket"],) if bucket is not None else ()
            rest = [row[k] for k in keys if k != "bucket"]
            return (*head, -volume, *_sort_key(rest))

        rows.sort(key=order)
        return rows[: int(limit)] if limit else rows

    def _attempt_counts(
        self,
        where: _Where,
        exprs: Sequence[str],
        bucket: str | None,
        keys: list[str],
    ) -> list[dict[str, Any]]:
        selects = [f"{e} AS g{i}" for i, e in enumerate(exprs)]
        if bucket is not None:
            selects.insert(0, f"{bucket} AS bucket")
        parts = [
            _percentile_sql(self._fast_quantiles, col, "final", name)
            for name, col in STAGE_COLUMNS
        ]
        arrays = ", ".join(inner for inner, _ in parts)
        outer = ", ".join(selected for _, selected in parts)
        key_list = ", ".join(keys)
        sql = f"""
            SELECT {key_list + ", " if keys else ""}delivered, bounced, expired,
                deferral_attempts, {outer}
            FROM (
                SELECT {key_list + ", " if keys else ""}
                    countIf(final AND status = 'sent') AS delivered,
                    countIf(final AND status = 'bounced') AS bounced,
                    countIf(final AND status = 'expired') AS expired,
                    countIf(status = 'deferred') AS deferral_attempts,
                    {arrays}
                FROM (SELECT {", ".join([*selects, "*"])} FROM attempts
                      WHERE {where.sql()})
                {"GROUP BY " + key_list if keys else ""}
            )
        """
        return self._dicts(sql, where.params, "counting deliveries")

    def _deferred_counts(
        self,
        where: _Where,
        exprs: Sequence[str],
        bucket: str | None,
        keys: list[str],
    ) -> dict[tuple[Any, ...], int]:
        selects = [f"{e} AS g{i}" for i, e in enumerate(exprs)]
        part = ["rkey"]
        latest = [f"argMax(g{i}, ts) AS g{i}" for i in range(len(exprs))]
        if bucket is not None:
            selects.insert(0, f"{bucket} AS bucket")
            part.append("bucket")
            latest.insert(0, "bucket")
        key_list = ", ".join(keys)
        # Only recipients with a deferred attempt in the window can end deferred;
        # restricting to them keeps the per-recipient grouping small.
        sql = f"""
            SELECT {key_list + ", " if keys else ""}count() AS deferred
            FROM (
                SELECT {", ".join(latest) + ", " if latest else ""}
                    max(final) AS has_final, argMax(status, ts) AS last_status
                FROM (
                    SELECT {", ".join([*selects, "rkey", "ts", "status", "final"])}
                    FROM attempts WHERE {where.sql()}
                    AND rkey IN (SELECT rkey FROM attempts
                                 WHERE {where.sql()} AND status = 'deferred')
                )
                GROUP BY {", ".join(part)}
            )
            WHERE NOT has_final AND last_status = 'deferred'
            {"GROUP BY " + key_list if keys else ""}
        """
        rows = self._dicts(sql, where.params, "counting deferred recipients")
        return {tuple(r[k] for k in keys): int(r["deferred"]) for r in rows}

    def traffic(self, scope: Scope) -> Traffic:
        where = self._message_where(scope)
        rows = self._rows(
            "SELECT origin, count(), sum(size) FROM messages FINAL "
            f"WHERE {where.sql()} GROUP BY origin",
            where.params,
            "counting messages",
        )
        by_origin = {origin: int(n) for origin, n, _ in rows}
        received = [row for row in rows if row[0] in RECEIVED_ORIGINS]
        sent = _attempt_where(scope)
        found = self._rows(
            "SELECT sum(m.size) FROM (SELECT message_key FROM attempts "
            f"WHERE final AND status = 'sent' AND {sent.sql()}) a "
            "INNER JOIN (SELECT key, size FROM messages FINAL) m "
            "ON m.key = a.message_key",
            sent.params,
            "summing delivered bytes",
        )
        return Traffic(
            received=sum(int(n) for _, n, _ in received),
            bytes_received=sum(int(b or 0) for _, _, b in received),
            bytes_delivered=int(found[0][0] or 0) if found else 0,
            messages=sum(by_origin.values()),
            by_origin=by_origin,
        )

    def _message_where(self, scope: Scope) -> _Where:
        """Messages that entered the queue in the window and belong to the scope:
        a message belongs to its own tenant and to each of its recipients'."""
        where = _Where()
        _time(where, scope, "first_ts")
        where.eq("host", scope.host)
        tenant = scope.tenant_filter()
        if tenant is not None:
            mark = where.param(tenant)
            where.add(
                f"(tenant = {mark} OR key IN "
                f"(SELECT message_key FROM attempts WHERE tenant = {mark}))"
            )
        for column, value in (
            ("recipient_domain", _lower(scope.domain)),
            ("transport", scope.transport),
            ("relay_host", scope.relay),
        ):
            if value is not None:
                where.add(
                    "key IN (SELECT message_key FROM attempts "
                    f"WHERE {column} = {where.param(value)})"
                )
        return where

    def top_senders(self, scope: Scope, limit: int = 10) -> list[TopSender]:
        where = self._message_where(scope)
        origins = where.param(list(RECEIVED_ORIGINS))
        rows = self._rows(
            "SELECT sender, count() AS n, sum(size) FROM messages FINAL "
            f"WHERE {where.sql()} AND sender IS NOT NULL AND has({origins}, origin) "
            f"GROUP BY sender ORDER BY n DESC, sender LIMIT {_check_limit(limit)}",
            where.params,
            "ranking senders",
        )
        return [TopSender(sender=s, messages=n, bytes=b or 0) for s, n, b in rows]

    def top_recipients(self, scope: Scope, limit: int = 10) -> list[TopRecipient]:
        where = _attempt_where(scope)
        rows = self._rows(
            "SELECT a.recipient, count() AS n, sum(m.size) "
            "FROM (SELECT recipient, message_key FROM attempts "
            f"WHERE final AND status = 'sent' AND {where.sql()}) a "
            "LEFT JOIN (SELECT key, size FROM messages FINAL) m "
            "ON m.key = a.message_key "
            f"GROUP BY a.recipient ORDER BY n DESC, a.recipient "
            f"LIMIT {_check_limit(limit)}",
            where.params,
            "ranking recipients",
        )
        return [
            TopRecipient(recipient=r, delivered=n, bytes=b or 0) for r, n, b in rows
        ]

    def top_domains(self, scope: Scope, limit: int = 50) -> list[DomainVolume]:
        where = _attempt_where(scope)
        rows = self._rows(
            "SELECT recipient_domain, count() AS n, uniqExact(rkey) "
            f"FROM attempts WHERE {where.sql()} GROUP BY recipient_domain "
            f"ORDER BY n DESC, recipient_domain LIMIT {_check_limit(limit)}",
            where.params,
            "ranking domains",
        )
        return [DomainVolume(domain=d, attempts=n, recipients=r) for d, n, r in rows]

    def causes(self, scope: Scope, limit: int = 20) -> list[CauseCount]:
        where = _attempt_where(scope)
        rows = self._dicts(
            "SELECT ifNull(cause, 'other') AS cause, temporary, count() AS attempts, "
            "uniqExact(rkey) AS recipients, "
            "argMin(response, (ts, response)) AS example, "
            "argMin(queue_id, (ts, response)) AS example_queue_id "
            f"FROM attempts WHERE {_FAILED} AND {where.sql()} "
            "GROUP BY cause, temporary "
            "ORDER BY attempts DESC, cause, temporary NULLS LAST "
            f"LIMIT {_check_limit(limit)}",
            where.params,
            "counting causes",
        )
        return [CauseCount(**row) for row in rows]

    def _reject_where(self, scope: Scope) -> _Where:
        # Refusals have no transport or relay: those filters do not apply.
        where = _Where()
        _time(where, scope)
        where.eq("tenant", scope.tenant_filter())
        where.eq("recipient_domain", _lower(scope.domain))
        where.eq("host", scope.host)
        return where

    def reject_counts(self, scope: Scope) -> dict[str, int]:
        where = self._reject_where(scope)
        rows = self._rows(
            f"SELECT action, count() FROM rejects WHERE {where.sql()} "
            "GROUP BY action ORDER BY action",
            where.params,
            "counting refusals",
        )
        return {action: int(n) for action, n in rows}

    def reject_reasons(self, scope: Scope, limit: int = 20) -> list[RejectReason]:
        where = self._reject_where(scope)
        rows = self._dicts(
            "SELECT action, cause, count() AS count, "
            "argMin(text, (ts, text)) AS example, "
            "argMin(smtp_code, (ts, text)) AS smtp_code, "
            "argMin(dsn, (ts, text)) AS dsn "
            f"FROM rejects WHERE {where.sql()} GROUP BY action, cause "
            f"ORDER BY count DESC, action, cause LIMIT {_check_limit(limit)}",
            where.params,
            "counting refusal reasons",
        )
        return [RejectReason(**row) for row in rows]

    def event_counts(
        self,
        scope: Scope,
        categories: Sequence[str] | None = None,
        limit: int = 20,
    ) -> list[EventCount]:
        if scope.tenant_filter() is not None:
            return []
        where = _Where()
        _time(where, scope)
        where.eq("host", scope.host)
        if categories is not None:
            if not categories:
                return []
            where.add(f"has({where.param(list(categories))}, category)")
        rows = self._dicts(
            "SELECT category, program, count() AS count, "
            "argMin(text, (ts, text)) AS example, max(ts) AS last_ts "
            f"FROM events WHERE {where.sql()} GROUP BY category, program "
            f"ORDER BY count DESC, category, program LIMIT {_check_limit(limit)}",
            where.params,
            "counting events",
        )
        return [EventCount(**row) for row in rows]

    def unparsed(self, scope: Scope, limit: int = 20) -> UnparsedSummary:
        if scope.tenant_filter() is not None:
            return UnparsedSummary()
        having = _Where()
        if scope.since is not None:
            having.cmp("last_ts", ">=", float(scope.since))
        if scope.until is not None:
            having.cmp("first_ts", "<", float(scope.until))
        shapes = self._dicts(
            "SELECT key AS program, key2 AS reason, key3 AS shape, "
            "sum(total) AS count, tupleElement(min(first), 2) AS example, "
            "min(min_ts) AS first_ts, max(max_ts) AS last_ts "
            "FROM ledger WHERE kind = 'unparsed' GROUP BY key, key2, key3 "
            f"HAVING {having.sql()} "
            "ORDER BY count DESC, program, reason, shape",
            having.params,
            "listing unparsed shapes",
        )
        lines = self._rows(
            "SELECT key, sum(total) FROM ledger WHERE kind = 'program' GROUP BY key",
            {},
            "counting lines per program",
        )
        return _unparsed_summary(shapes, dict(lines), _check_limit(limit))

    def data_range(self, scope: Scope) -> DataRange:
        where = _attempt_where(scope)
        found = self._rows(
            "SELECT minOrNull(ts), maxOrNull(ts), count(), uniqExact(message_key) "
            f"FROM attempts WHERE {where.sql()}",
            where.params,
            "finding the data range",
        )
        if not found:
            return DataRange()
        first, last, attempts, messages = found[0]
        return DataRange(
            first_ts=first, last_ts=last, attempts=attempts, messages=messages
        )

    # ------------------------------------------------------------------ rows

    def deliveries(self, query: DeliveryFilter) -> DeliveryPage:
        where = _attempt_where(query)
        for column, value in (
            ("lower(recipient)", _lower(query.recipient)),
            ("lower(sender)", _lower(query.sender)),
            ("sender_domain", _lower(query.sender_domain)),
            ("status", query.status),
            ("cause", query.cause),
            ("queue_id", query.queue_id),
            ("final", query.final),
        ):
            where.eq(column, value)
        if query.message_id is not None:
            bare = query.message_id.strip().strip("<>")
            where.add(f"has({where.param([bare, f'<{bare}>'])}, message_id)")
        if query.min_delay is not None:
            where.cmp("delay", ">=", float(query.min_delay))
        if query.cursor is not None:
            ts, row_id = decode_cursor(query.cursor)
            t, i = where.param(float(ts)), where.param(int(row_id))
            where.add(f"(ts < {t} OR (ts = {t} AND id < {i}))")
        rows = self._dicts(
            f"SELECT {_DELIVERY_SELECT} FROM attempts "
            f"WHERE {where.sql()} ORDER BY ts DESC, id DESC LIMIT {query.limit + 1}",
            where.params,
            "searching deliveries",
        )
        more = len(rows) > query.limit
        items = self._with_dovecot(rows[: query.limit], query.tenant_filter())
        last = items[-1] if more and items else None
        return DeliveryPage(
            items=items,
            next_cursor=encode_cursor(last.ts, last.id) if last else None,
        )

    def _with_dovecot(
        self, rows: list[dict[str, Any]], tenant: str | None
    ) -> list[DeliveryItem]:
        """Delivery items with the Dovecot side of each joined attempt."""
        ids = [row["id"] for row in rows if row.get("dovecot_key")]
        sides: dict[int, DovecotSide] = {}
        if ids:
            where = _Where()
            where.add(f"has({where.param(ids)}, id)")
            for side in self._paired_dovecot(where):
                attempt_id = side.pop("attempt_id")
                owner = side.pop("tenant")
                if tenant is None or owner == tenant:
                    sides[attempt_id] = DovecotSide(**side)
        items = []
        for row in rows:
            row = {k: v for k, v in row.items() if k != "dovecot_key"}
            items.append(DeliveryItem(**row, dovecot=sides.get(row["id"])))
        return items

    def _paired_dovecot(self, attempts: _Where) -> list[dict[str, Any]]:
        """For each attempt ``attempts`` selects that has a join key, the Dovecot
        row of the same key logged last at or before the attempt plus the slack:
        what DuckDB's ``ASOF JOIN`` view pairs. (ClickHouse's ``ASOF JOIN`` fails
        with the default join algorithm in the lite chdb build.)"""
        columns = [*_DOVECOT_SIDE_COLUMNS, "tenant"]
        picked = ", ".join(f"argMax(d.{c}, d.ts) AS {c}" for c in columns if c != "ts")
        sql = f"""
            SELECT a.id AS attempt_id, max(d.ts) AS ts, {picked}
            FROM (SELECT id, ts, dovecot_key FROM attempts
                  WHERE dovecot_key IS NOT NULL AND {attempts.sql()}) a
            INNER JOIN dovecot d ON d.dovecot_key = a.dovecot_key
            WHERE d.ts <= a.ts + {JOIN_SLACK_SECONDS!r}
            GROUP BY a.id
        """
        return self._dicts(sql, attempts.params, "joining the Dovecot side")

    def rejects(self, query: RejectFilter) -> RejectPage:
        where = self._reject_where(query)
        for column, value in (
            ("action", query.action),
            ("cause", query.cause),
            ("client_ip", query.client_ip),
            ("lower(sender)", _lower(query.sender)),
            ("lower(recipient)", _lower(query.recipient)),
        ):
            where.eq(column, value)
        if query.cursor is not None:
            ts, row_id = decode_cursor(query.cursor)
            t, i = where.param(float(ts)), where.param(int(row_id))
            where.add(f"(ts < {t} OR (ts = {t} AND id < {i}))")
        rows = self._dicts(
            f"SELECT {', '.join(_REJECT_COLUMNS)} FROM rejects "
            f"WHERE {where.sql()} ORDER BY ts DESC, id DESC LIMIT {query.limit + 1}",
            where.params,
            "searching refusals",
        )
        more = len(rows) > query.limit
        items = [RejectItem(**row) for row in rows[: query.limit]]
        last = items[-1] if more and items else None
        return RejectPage(
            items=items,
            next_cursor=encode_cursor(last.ts, last.id) if last else None,
        )

    def trace(
        self,
        scope: Scope,
        *,
        queue_id: str | None = None,
        message_id: str | None = None,
        limit: int = 20,
    ) -> list[MessageTrace]:
        if (queue_id is None) == (message_id is None):
            raise QueryError(
                "name exactly one of a queue ID and a message-id",
                parameter="queue_id",
            )
        where = _Where()
        if queue_id is not None:
            where.eq("queue_id", queue_id)
        else:
            bare = str(message_id).strip().strip("<>")
            where.add(f"has({where.param([bare, f'<{bare}>'])}, message_id)")
        where.eq("host", scope.host)
        _time(where, scope, "last_ts")
        rows = self._dicts(
            f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM messages FINAL "
            f"WHERE {where.sql()} ORDER BY first_ts, host "
            f"LIMIT {_check_limit(limit)}",
            where.params,
            "finding a message",
        )
        tenant = scope.tenant_filter()
        traces = []
        for row in rows:
            found = self._trace_one(MessageInfo(**row), tenant)
            if found is not None:
                traces.append(found)
        return traces

    def _trace_one(
        self, message: MessageInfo, tenant: str | None
    ) -> MessageTrace | None:
        rows = self._dicts(
            f"SELECT {_DELIVERY_SELECT} FROM attempts "
            "WHERE message_key = {k:String} ORDER BY ts, id",
            {"k": message.key},
            "tracing deliveries",
        )
        if tenant is not None and not _visible(message, rows, tenant):
            return None
        mine = [r for r in rows if tenant is None or r["tenant"] == tenant]
        foreign = {
            address
            for r in rows
            if tenant is not None and r["tenant"] != tenant
            for address in (r["recipient"], r["orig_recipient"])
            if address
        }
        return MessageTrace(
            message=message,
            deliveries=self._with_dovecot(mine, tenant),
            rejects=self._trace_rejects(message, tenant),
            events=self._trace_events(message) if tenant is None else [],
            parent=self._trace_parent(message, tenant),
            notifications=self._trace_children(message, tenant),
            lines=self._trace_lines(message, foreign),
        )

    def _trace_lines(self, message: MessageInfo, foreign: set[str]) -> list[TraceLine]:
        rows = self._dicts(
            "SELECT ts, host, program, line FROM lines WHERE host = {h:String} "
            "AND queue_id = {q:String} AND message_key = {k:String} "
            f"ORDER BY ts, id LIMIT {TRACE_LINES_LIMIT}",
            {"h": message.host, "q": message.queue_id, "k": message.key},
            "tracing lines",
        )
        return [
            TraceLine(**line)
            for line in rows
            if not any(address in line["line"] for address in foreign)
        ]

    def _lifetime_where(self, message: MessageInfo) -> _Where:
        where = _Where()
        where.eq("host", message.host)
        where.eq("queue_id", message.queue_id)
        where.cmp("ts", ">=", message.first_ts)
        where.cmp("ts", "<=", message.last_ts)
        return where

    def _trace_rejects(
        self, message: MessageInfo, tenant: str | None
    ) -> list[RejectItem]:
        where = self._lifetime_where(message)
        where.eq("tenant", tenant)
        rows = self._dicts(
            f"SELECT {', '.join(_REJECT_COLUMNS)} FROM rejects WHERE {where.sql()} "
            "ORDER BY ts, id",
            where.params,
            "tracing refusals",
        )
        return [RejectItem(**row) for row in rows]

    def _trace_events(self, message: MessageInfo) -> list[EventItem]:
        where = self._lifetime_where(message)
        rows = self._dicts(
            "SELECT ts, host, program, category, text, queue_id FROM events "
            f"WHERE {where.sql()} ORDER BY ts",
            where.params,
            "tracing events",
        )
        return [EventItem(**row) for row in rows]

    def _trace_parent(
        self, message: MessageInfo, tenant: str | None
    ) -> MessageInfo | None:
        if message.parent_queue_id is None:
            return None
        rows = self._dicts(
            f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM messages FINAL "
            "WHERE host = {h:String} AND queue_id = {q:String} "
            "AND first_ts <= {t:Float64} ORDER BY first_ts DESC LIMIT 1",
            {"h": message.host, "q": message.parent_queue_id, "t": message.first_ts},
            "tracing the original message",
        )
        found = [MessageInfo(**row) for row in rows]
        visible = self._only_visible(found, tenant)
        return visible[0] if visible else None

    def _trace_children(
        self, message: MessageInfo, tenant: str | None
    ) -> list[MessageInfo]:
        rows = self._dicts(
            f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM messages FINAL "
            "WHERE host = {h:String} AND parent_queue_id = {q:String} "
            "AND first_ts >= {a:Float64} AND first_ts <= {b:Float64} "
            "ORDER BY first_ts",
            {
                "h": message.host,
                "q": message.queue_id,
                "a": message.first_ts,
                "b": message.last_ts + 60,
            },
            "tracing notifications",
        )
        return self._only_visible([MessageInfo(**row) for row in rows], tenant)

    def _only_visible(
        self, messages: list[MessageInfo], tenant: str | None
    ) -> list[MessageInfo]:
        if tenant is None:
            return messages
        visible = []
        for message in messages:
            attempts = self._dicts(
                "SELECT tenant FROM attempts WHERE message_key = {k:String}",
                {"k": message.key},
                "checking visibility",
            )
            if _visible(message, attempts, tenant):
                visible.append(message)
        return visible

    # ---------------------------------------------------------------- triage

    def failures(
        self, scope: Scope, group_by: Sequence[GroupBy] = ()
    ) -> list[FailureGroup]:
        dims = [g for g in group_by if g != "cause"]
        exprs = _group_exprs(dims, ATTEMPT_GROUPS)
        keys = [f"g{i}" for i in range(len(exprs))]
        selects = "".join(f"{e} AS {k}, " for e, k in zip(exprs, keys, strict=True))
        key_list = "".join(f"{k}, " for k in keys)
        where = _attempt_where(scope)
        a = f"SELECT {selects}*, rkey FROM attempts WHERE {where.sql()}"
        sample = "(ts, host, queue_id, recipient, response, id)"
        sql = f"""
            SELECT {key_list}ifNull(cause, 'other') AS cause, temporary,
                count() AS attempts,
                uniqExact(rkey) AS recipients,
                uniqExactIf(rkey, delivered) AS recovered,
                min(ts) AS first_seen, max(ts) AS last_seen,
                arraySlice(arrayReverseSort(x -> (x.1, x.6),
                    groupArray({sample})), 1, 3) AS samples
            FROM ({a}) f
            LEFT JOIN (
                SELECT rkey, max(final AND status = 'sent') AS delivered
                FROM ({a}) GROUP BY rkey
            ) rc USING (rkey)
            WHERE {_FAILED}
            GROUP BY {key_list}cause, temporary
        """
        rows = self._dicts(sql, where.params, "counting failures")
        totals = self._group_recipients(a, where, keys)
        groups = []
        for row in rows:
            group = tuple(row[k] for k in keys)
            key = {name: row.pop(k) for name, k in zip(dims, keys, strict=True)}
            samples = [
                FailureSample(
                    ts=s[0], host=s[1], queue_id=s[2], recipient=s[3], response=s[4]
                )
                for s in row.pop("samples")
            ]
            groups.append(
                FailureGroup(
                    key=key,
                    samples=samples,
                    group_recipients=totals.get(group, 0),
                    **row,
                )
            )
        groups.sort(key=lambda g: (-g.recipients, -g.attempts, g.cause))
        return groups

    def _group_recipients(
        self, a: str, where: _Where, keys: list[str]
    ) -> dict[tuple[Any, ...], int]:
        key_list = ", ".join(keys)
        rows = self._dicts(
            f"SELECT {key_list + ', ' if keys else ''}"
            f"uniqExact(rkey) AS total FROM ({a}) "
            f"{'GROUP BY ' + key_list if keys else ''}",
            where.params,
            "counting recipients per group",
        )
        return {tuple(r[k] for k in keys): int(r["total"]) for r in rows}

    def dovecot_timings(
        self, scope: Scope, group_by: Sequence[GroupBy] = ()
    ) -> list[DovecotTimings]:
        exprs = _group_exprs(group_by, DOVECOT_GROUPS)
        if scope.transport is not None or scope.relay is not None:
            raise QueryError(
                "Dovecot timings cannot be filtered by transport or relay",
                parameter="transport" if scope.transport is not None else "relay",
            )
        keys = [f"g{i}" for i in range(len(exprs))]
        where = _Where()
        _time(where, scope)
        where.eq("tenant", scope.tenant_filter())
        where.eq("recipient_domain", _lower(scope.domain))
        where.eq("host", scope.host)
        saves = self._dovecot_saves(where, exprs, keys)
        postfix = self._dovecot_postfix(where, exprs, keys)
        results = []
        for row in saves:
            group = tuple(row[k] for k in keys)
            p = postfix.get(group, {})
            results.append(
                DovecotTimings(
                    key={name: row[k] for name, k in zip(group_by, keys, strict=True)},
                    saved=row["saved"],
                    failed=row["failed"],
                    delivery_time=_pct(row["n_delivery"], row["q_delivery"]),
                    session_time=_pct(row["n_session"], row["q_session"]),
                    postfix_delay=_pct(p.get("n_delay"), p.get("q_delay")),
                    postfix_transmission=_pct(
                        p.get("n_transmission"), p.get("q_transmission")
                    ),
                )
            )
        results.sort(
            key=lambda t: (-(t.saved + t.failed), *_sort_key(list(t.key.values())))
        )
        return results

    def _dovecot_saves(
        self, where: _Where, exprs: Sequence[str], keys: list[str]
    ) -> list[dict[str, Any]]:
        selects = "".join(f"{e} AS {k}, " for e, k in zip(exprs, keys, strict=True))
        key_list = "".join(f"{k}, " for k in keys)
        fast = self._fast_quantiles
        delivery = _percentile_sql(fast, "delivery_time_ms / 1000.0", "1", "delivery")
        session = _percentile_sql(fast, "session_time_ms / 1000.0", "1", "session")
        sql = f"""
            SELECT {key_list}saved, failed, {delivery[1]}, {session[1]}
            FROM (
                SELECT {key_list}
                    countIf(status = 'saved') AS saved,
                    countIf(status != 'saved') AS failed,
                    {delivery[0]}, {session[0]}
                FROM (SELECT {selects}* FROM dovecot WHERE {where.sql()})
                {"GROUP BY " + ", ".join(keys) if keys else ""}
            )
        """
        return self._dicts(sql, where.params, "timing Dovecot")

    def _dovecot_postfix(
        self, where: _Where, exprs: Sequence[str], keys: list[str]
    ) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Postfix delays of the attempts paired with the Dovecot rows in scope,
        grouped by the Dovecot row's group."""
        selects = "".join(
            f"argMax(d.{e}, d.ts) AS {k}, " for e, k in zip(exprs, keys, strict=True)
        )
        inner = _on_pair(where)
        key_list = "".join(f"{k}, " for k in keys)
        fast = self._fast_quantiles
        delay = _percentile_sql(fast, "delay", "1", "delay")
        sent = _percentile_sql(fast, "delay_transmission", "1", "transmission")
        sql = f"""
            SELECT {key_list}{delay[1]}, {sent[1]}
            FROM (
                SELECT {key_list}{delay[0]}, {sent[0]}
                FROM (
                    SELECT {selects}any(a.delay) AS delay,
                        any(a.delay_transmission) AS delay_transmission,
                        argMax(d.ts, d.ts) AS d_ts,
                        argMax(d.tenant, d.ts) AS d_tenant,
                        argMax(d.recipient_domain, d.ts) AS d_domain,
                        argMax(d.host, d.ts) AS d_host
                    FROM attempts a INNER JOIN dovecot d
                        ON d.dovecot_key = a.dovecot_key
                    WHERE a.dovecot_key IS NOT NULL
                        AND d.ts <= a.ts + {JOIN_SLACK_SECONDS!r}
                        AND a.dovecot_key IN (
                            SELECT dovecot_key FROM dovecot WHERE {where.sql()})
                    GROUP BY a.id
                )
                WHERE {inner}
                {"GROUP BY " + ", ".join(keys) if keys else ""}
            )
        """
        rows = self._dicts(sql, where.params, "timing Postfix for Dovecot")
        return {tuple(r[k] for k in keys): r for r in rows}

    # ------------------------------------------------------------------ chat

    def save_chat_turn(
        self,
        conversation_id: str,
        tenant: str | None,
        role: str,
        content: Any,
        *,
        ts: float | None = None,
    ) -> ChatTurn:
        text = json.dumps(content)
        when = time.time() if ts is None else ts
        # Two processes appending to one conversation at the same moment can give
        # two turns one number: the count and the insert are not one transaction.
        with self._write_lock:
            found = self._rows(
                "SELECT count(), any(tenant), countIf(tenant IS NULL) > 0 "
                "FROM conversations WHERE conversation_id = {c:String}",
                {"c": conversation_id},
                "saving a chat turn",
            )
            turns, owner, operator = found[0] if found else (0, None, False)
            if turns and (owner if not operator else None) != tenant:
                raise NotFoundError(f"no conversation {conversation_id!r}")
            with self._translated("saving a chat turn"):
                self._client().insert(
                    "conversations",
                    [[conversation_id, turns, tenant, role, text, when]],
                    column_names=[
                        "conversation_id",
                        "turn",
                        "tenant",
                        "role",
                        "content",
                        "ts",
                    ],
                    settings={"async_insert": 0},
                )
        return ChatTurn(
            conversation_id=conversation_id,
            turn=turns,
            tenant=tenant,
            role=role,
            content=content,
            ts=when,
        )

    def load_conversation(
        self, conversation_id: str, scope: Scope | None = None
    ) -> list[ChatTurn]:
        rows = self._dicts(
            "SELECT conversation_id, turn, tenant, role, content, ts "
            "FROM conversations WHERE conversation_id = {c:String} ORDER BY turn",
            {"c": conversation_id},
            "loading a conversation",
        )
        tenant = (scope or Scope()).tenant_filter()
        if not rows or (tenant is not None and rows[0]["tenant"] != tenant):
            raise NotFoundError(f"no conversation {conversation_id!r}")
        for row in rows:
            row["content"] = json.loads(row["content"])
        return [ChatTurn(**row) for row in rows]


# ----------------------------------------------------------------- the ledger

_LEDGER_COLUMNS = [
    "kind",
    "stream",
    "key",
    "key2",
    "key3",
    "latest",
    "total",
    "first",
    "min_ts",
    "max_ts",
]


def _ledger_row(
    kind: str,
    *,
    stream: str = "",
    key: str = "",
    key2: str = "",
    key3: str = "",
    latest: tuple[int, bytes] = (0, b""),
    total: int = 0,
    first: tuple[float, str] = (0.0, ""),
    min_ts: float | None = None,
    max_ts: float | None = None,
) -> list[Any]:
    return [kind, stream, key, key2, key3, latest, total, first, min_ts, max_ts]


def _unparsed_row(row: Mapping[str, Any]) -> list[Any]:
    # The example kept is that of the earliest line, ties broken by the text;
    # shapes without a time lose to any with one (NULLs order last, as in DuckDB).
    first_ts = row["first_ts"]
    return _ledger_row(
        "unparsed",
        key=row["program"],
        key2=row["reason"],
        key3=row["shape"],
        total=int(row["count"]),
        first=(math.inf if first_ts is None else float(first_ts), row["example"]),
        min_ts=first_ts,
        max_ts=row["last_ts"],
    )


def _check_nulls(cols: ColumnBatch) -> None:
    """StoreError before anything is written when a column that may not be NULL
    holds one (ClickHouse would store the type's default instead)."""
    for name, table in cols.tables.items():
        for field in SCHEMAS[name]:
            if not field.nullable and table.column(field.name).null_count:
                raise StoreError(
                    f"a {name} row has no {field.name}; nothing of the batch was "
                    "written"
                )


def _unparsed_summary(
    shapes: list[dict[str, Any]], lines: Mapping[str, int], limit: int
) -> UnparsedSummary:
    unparsed: dict[str, int] = {}
    for shape in shapes:
        unparsed[shape["program"]] = unparsed.get(shape["program"], 0) + shape["count"]
    programs = [
        ProgramLines(
            program=p, lines=int(lines.get(p, 0)), unparsed=int(unparsed.get(p, 0))
        )
        for p in set(lines) | set(unparsed)
    ]
    programs.sort(key=lambda p: (-p.unparsed, -p.lines, p.program))
    return UnparsedSummary(
        lines=sum(p.lines for p in programs),
        unparsed=sum(p.unparsed for p in programs),
        by_program=programs,
        shapes=[UnparsedShape(**shape) for shape in shapes[:limit]],
    )


# ---------------------------------------------------------------------- helpers


def _on_pair(where: _Where) -> str:
    """The Dovecot scope of ``where`` (built on bare column names) restated on
    the paired row's columns of ``_dovecot_postfix``."""
    if not where.clauses:
        return "1"
    renamed = {
        "ts": "d_ts",
        "tenant": "d_tenant",
        "recipient_domain": "d_domain",
        "host": "d_host",
    }
    out = []
    for clause in where.clauses:
        column, rest = clause.split(" ", 1)
        out.append(f"{renamed[column]} {rest}")
    return " AND ".join(out)


def _visible(message: MessageInfo, attempts: list[dict[str, Any]], tenant: str) -> bool:
    return message.tenant == tenant or any(r["tenant"] == tenant for r in attempts)


def _stats(row: Mapping[str, Any], names: list[GroupBy], cls: type[_G]) -> _G:
    """A ``GroupStats`` (or ``TimePoint``) from one row of ``_counts``."""
    delays = {
        name: _pct(row[f"n_{name}"], row[f"q_{name}"]) for name, _ in STAGE_COLUMNS
    }
    extra = {"ts": row["bucket"]} if cls is TimePoint else {}
    return cls(
        **extra,
        key={name: row[f"g{i}"] for i, name in enumerate(names)},
        delivered=row["delivered"],
        bounced=row["bounced"],
        expired=row["expired"],
        deferred=row["deferred"],
        deferral_attempts=row["deferral_attempts"],
        delays=DelayStats(**delays),
    )


def open_clickhouse(url: str, **options: Any) -> ClickHouseStore:
    """Open (creating and migrating as needed) the ClickHouse store at ``url``."""
    return ClickHouseStore(url, **options)
