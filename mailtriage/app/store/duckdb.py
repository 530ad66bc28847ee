"""The DuckDB store: every table, query and migration of the embedded default.

One database file (``[store] db``, ``--db``, ``MAILTRIAGE_DB``; default
``./mailtriage.duckdb``). Tables, one per row type of ``mailtriage.parsers.model``
plus bookkeeping:

- ``messages`` (upserted by ``key``), ``attempts`` (``final`` marks outcomes),
  ``rejects``, ``dovecot``, ``events``, ``lines`` (raw lines by message, for traces),
  ``unparsed`` (counts added per shape), ``program_lines`` (lines per program);
- ``sources`` (checkpoints), ``pipeline_state`` (the assemblers' open state),
  ``conversations`` (chat turns), ``schema_version``;
- ``rollup_counts`` and ``rollup_delays`` (per ten-minute bucket, and per day once
  the day is closed, tenant and one dimension: the four additive counts, and how
  many final attempts had each delay value), views over a table per dimension
  (``rollup_delays_domain`` and so on), ``rollup_buckets`` (which buckets are
  built, and when to merge them), ``retried_attempts`` (every attempt of a
  recipient with a non-final one) and ``deferred_latest`` (the latest deferral of
  each recipient not settled after it), kept by each write
  (``DuckDBStore._roll_up``) for the count queries (``DuckDBStore._counts``);
- the view ``attempt_dovecot`` pairs each Postfix attempt with the Dovecot row of the
  same join key (``AttemptRow.dovecot_key``) logged at or before it, allowing
  ``JOIN_SLACK_SECONDS`` of clock skew between hosts: a recipient retried after a
  failure has several rows per key on both sides, paired by time.

Times are DOUBLE epoch seconds (UTC); group-by dimensions (tenant, recipient
domain, transport, cause, relay host, host) are plain columns of ``attempts``.

Writes insert whole Arrow tables (``INSERT ... SELECT`` from a registered table) in
one transaction with the checkpoints and the pipeline state. Queries use one DuckDB
cursor per thread (``DuckDBPyConnection.cursor()`` opens a connection to the same
database that one thread may use; DuckDB's MVCC gives each a consistent view), and
writes are serialised by a lock on the store's own connection: any thread may query
while another writes. One process at a time may open the file (DuckDB locks it).

Errors of the engine are translated once, in ``_translated``, into ``StoreError``
with a message that names the database and, where known, the remedy.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from mailtriage.app.store.base import (
    GROUP_BY,
    CauseCount,
    ChatTurn,
    Checkpoint,
    DataRange,
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
    STAGE_COLUMNS,
    ColumnBatch,
    to_columns,
)
from mailtriage.errors import (
    NotFoundError,
    QueryError,
    SchemaError,
    StoreError,
)
from mailtriage.parsers.model import Batch

JOIN_SLACK_SECONDS = 60.0
"""How much later than the Postfix attempt a Dovecot row may be logged and still
pair with it (clock skew between an MX and an MDA host). Retries of one recipient
are minutes apart (Postfix's ``minimal_backoff_time``, 300 s by default), so the
slack cannot pair a row with the wrong retry."""

MAX_BUCKETS = 10_000
TRACE_LINES_LIMIT = 5_000
TRACE_SLACK_SECONDS = 60.0
RECEIVED_ORIGINS = ("smtpd", "pickup")
QUANTILES = (0.5, 0.95, 0.99)
"""The delay percentiles every count query reports (p50, p95, p99)."""
_PERCENTILES = ("p50", "p95", "p99")

# ------------------------------------------------------------- group-by columns


_STAGE_NAMES = [name for name, _ in STAGE_COLUMNS]

_DERIVED: dict[str, dict[str, str]] = {
    # One recipient of one queue-ID lifetime as a number: counting and grouping
    # recipients on it is several times faster than on two strings.
    "attempts": {"rcpt": "hash(message_key, recipient)"},
}
"""Columns computed from a batch's own columns while it is inserted."""

_OUTCOME_COUNTS = """
    count(*) FILTER (WHERE final AND status = 'sent') AS delivered,
    count(*) FILTER (WHERE final AND status = 'bounced') AS bounced,
    count(*) FILTER (WHERE final AND status = 'expired') AS expired,
    count(*) FILTER (WHERE status = 'deferred') AS deferral_attempts"""
"""The four counts of the counting rules that add up over any split of a window
(``deferred`` does not: it depends on a recipient's latest attempt)."""

# ---------------------------------------------------------------------- rollups

ROLLUP_WIDTHS = (600.0, 86400.0)
"""Widths of the rollup buckets in seconds, finest first. A query reads the
whole buckets of the coarsest width that are built, then of the finer ones in
what is left, then the attempts at its edges (``_cover``).

Every write keeps the ten-minute level. A coarser bucket (a day) is built from
it once it is closed, that is once the store holds a ten-minute bucket past its
end (``_build_levels_sql``), and from then on each write adds to it too: a bulk
ingest pays for each day once, not at every commit (kept at every write, days
cost the writer 30 % more by measurement on a million lines), and a year of
history is read as 365 days, not 52,560 ten-minute buckets. The day still being
written is read from its ten-minute buckets. Hour buckets hold 40 % fewer rows
than ten-minute ones but would leave up to an hour at each edge of a window to
the attempts. ``floor(ts / w) * w`` puts every time since 1970 in the bucket
that holds it, rounding included: for an integer width, a correctly rounded
quotient cannot reach an integer that the exact one falls short of.

Known shortcoming: there is no level above a day, so a summary over a year of
history adds up 365 day buckets of every group (seconds by domain, not ms)."""

ROLLUP_MERGE_ROWS = 20_000
"""A bucket's rows are added up once the rows appended since its last merge
outnumber both the merged ones and this."""

_ROLLUP_DIMENSIONS: dict[str, str] = {
    "none": "NULL",
    **{name: column for name, column in ATTEMPT_GROUPS.items() if name != "tenant"},
}
"""The rollup families: one per dimension a summary groups or filters by, and one
for none. The tenant is a key of every family, since a tenant's scope always
filters on it; a family per pair of dimensions would hold nearly a row per
attempt and save nothing."""

_ROLLUP_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "rollup_counts": (
        ("width", "bucket", "dimension", "tenant", "value"),
        ("delivered", "bounced", "expired", "deferral_attempts"),
    ),
    "rollup_delays": (
        ("width", "bucket", "dimension", "tenant", "value", "stage", "delay"),
        ("n",),
    ),
}
"""Each rollup table's key columns and the columns that add up, in order."""

_ROLLUP_BATCH_COLUMNS = [
    "ts",
    "final",
    "status",
    "message_key",
    *dict.fromkeys(ATTEMPT_GROUPS.values()),
    *(column for _, column in STAGE_COLUMNS),
]
"""The columns of a batch's attempts that the rollups and ``retried_attempts``
read (``DuckDBStore._roll_up``)."""

_RETRIED_COLUMNS = (
    "rcpt, ts, final, status, tenant, recipient_domain, transport, cause, "
    "relay_host, host"
)
"""The columns of ``retried_attempts``: what ``deferred`` filters and groups on."""

_LATEST_COLUMNS = tuple(dict.fromkeys(ATTEMPT_GROUPS.values()))
"""The group columns that ``deferred_latest`` keeps of a recipient's latest
non-final attempt."""


def _deferred_latest_sql(source: str, where: str) -> str:
    """Rows of ``deferred_latest`` for the recipients of ``source`` (whose rows
    of each recipient are all there) that ``where`` selects.

    A recipient counts as ``deferred`` in a window open at its end when its
    latest non-final attempt is in the window and deferred, and no final
    outcome is (``_deferred_sql``): the latest non-final attempt, and the latest
    final outcome's time, say it for every start of the window. A final outcome
    logged after that attempt settles the recipient for every window, and the
    row is not kept. The keys are taken as ``_deferred_sql`` takes them, each the
    latest non-NULL of the non-final attempts.
    """
    latest = ", ".join(
        f"arg_max({c}, ts) FILTER (WHERE NOT final) AS {c}" for c in _LATEST_COLUMNS
    )
    return f"""
        SELECT rcpt, ts, final_ts, {", ".join(_LATEST_COLUMNS)} FROM (
            SELECT rcpt, max(ts) FILTER (WHERE NOT final) AS ts,
                max(ts) FILTER (WHERE final) AS final_ts,
                arg_max(status, ts) FILTER (WHERE NOT final) AS status, {latest}
            FROM {source} WHERE {where} GROUP BY rcpt)
        WHERE status = 'deferred' AND (final_ts IS NULL OR final_ts < ts)"""


def _floor(column: str, width: float) -> str:
    return f"floor({column} / {width!r}) * {width!r}"


def _rollup_dimensions() -> tuple[str, str]:
    """Two SQL lists to ``unnest`` side by side: family names, their values."""
    names = ", ".join(f"'{name}'" for name in _ROLLUP_DIMENSIONS)
    return f"[{names}]", f"[{', '.join(_ROLLUP_DIMENSIONS.values())}]"


def _rollup_rows_sql(table: str, source: str) -> str:
    """Rows of ``table`` at the finest width for the attempts in ``source``: the
    four counts, or how many final attempts had each delay value per stage (the
    index in ``STAGE_COLUMNS``)."""
    names, values = _rollup_dimensions()
    width = ROLLUP_WIDTHS[0]
    if table == "rollup_counts":
        return f"""
            SELECT {width!r} AS width, {_floor("ts", width)} AS bucket, dimension,
                tenant, value, {_OUTCOME_COUNTS}
            FROM (SELECT ts, tenant, final, status, unnest({names}) AS dimension,
                      unnest({values}) AS value FROM {source})
            GROUP BY ALL"""
    stages = ", ".join(str(i) for i in range(len(STAGE_COLUMNS)))
    delays = ", ".join(column for _, column in STAGE_COLUMNS)
    return f"""
        SELECT {width!r} AS width, bucket, dimension, tenant, value, stage, delay,
            count(*) AS n
        FROM (SELECT bucket, dimension, tenant, value,
                  unnest([{stages}]::UTINYINT[]) AS stage, unnest(delays) AS delay
              FROM (SELECT {_floor("ts", width)} AS bucket, tenant,
                        [{delays}] AS delays, unnest({names}) AS dimension,
                        unnest({values}) AS value
                    FROM {source} WHERE final))
        WHERE delay IS NOT NULL
        GROUP BY ALL"""


def _build_levels_sql() -> list[tuple[str, list[str]]]:
    """Per coarser width, a query of the closed buckets not built yet (see
    ``ROLLUP_WIDTHS``), and the statements that build them from the finest
    level: the first keeps them in ``_rollup_due``, the others add up the finest
    rows per coarser bucket and enter the buckets in ``rollup_buckets``, which
    marks them built."""
    finest = ROLLUP_WIDTHS[0]
    levels = []
    for width in ROLLUP_WIDTHS[1:]:
        coarse = _floor("bucket", width)
        due = f"""
            SELECT DISTINCT {coarse} AS bucket FROM rollup_buckets
            WHERE width = {finest!r} AND {coarse} + {width!r} <= (
                SELECT max(bucket) FROM rollup_buckets WHERE width = {finest!r})
            EXCEPT SELECT bucket FROM rollup_buckets WHERE width = {width!r}"""
        statements = [f"CREATE OR REPLACE TEMP TABLE _rollup_due AS {due}"]
        for table in _ROLLUP_COLUMNS:
            rows = (
                f"(SELECT * FROM {table} WHERE width = {finest!r} "
                f"AND {coarse} IN (SELECT bucket FROM _rollup_due))"
            )
            statements += [
                f"CREATE OR REPLACE TEMP TABLE _rollup_built_{table} AS "
                + _rollup_sums_sql(table, rows, width),
                _insert_rollup_sql(table, f"_rollup_built_{table}"),
            ]
        built = " UNION ALL ".join(
            f"SELECT bucket FROM _rollup_built_{table}" for table in _ROLLUP_COLUMNS
        )
        statements.append(f"""
            INSERT INTO rollup_buckets
            SELECT {width!r}, d.bucket, count(b.bucket), 0
            FROM _rollup_due d LEFT JOIN ({built}) b ON b.bucket = d.bucket
            GROUP BY d.bucket""")
        levels.append((due, statements))
    return levels


def _rollup_sums_sql(table: str, source: str, width: float | None = None) -> str:
    """Rows of ``table`` from rows of its columns in ``source``, added up per
    key; at ``width`` if given (each finer bucket lies whole in a coarser one)."""
    keys, summed = _ROLLUP_COLUMNS[table]
    selects = list(keys)
    if width is not None:
        selects[:2] = [f"{width!r} AS width", f"{_floor('bucket', width)} AS bucket"]
    sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in summed)
    return f"SELECT {', '.join(selects)}, {sums} FROM {source} GROUP BY ALL"


def _family_columns(table: str) -> list[str]:
    """The columns of one family's table of ``table``: those of the view but the
    dimension, which the table's name holds."""
    keys, summed = _ROLLUP_COLUMNS[table]
    return [c for c in (*keys, *summed) if c != "dimension"]


def _insert_rollup_sql(table: str, source: str) -> str:
    """Statements, joined by ``;`` to run as one, that append the rows of
    ``source`` (columns of the ``table`` view) to their families' tables."""
    columns = ", ".join(_family_columns(table))
    return "; ".join(
        f"INSERT INTO {table}_{dimension} SELECT {columns} FROM {source} "
        f"WHERE dimension = '{dimension}'"
        for dimension in _ROLLUP_DIMENSIONS
    )


def _rollup_tables_sql() -> list[str]:
    """The tables of each rollup family, and the views that join them.

    A family per table, not a ``dimension`` column: a summary reads one family,
    and with them in one table every scan read the row groups of all six, the
    hosts' (half the rows) included. The view's branches are pruned by the
    constant ``dimension`` of each, so reads name the view, with a parameter
    for the dimension or not."""
    types = {
        "width": "DOUBLE NOT NULL",
        "bucket": "DOUBLE NOT NULL",
        "tenant": "VARCHAR NOT NULL",
        "value": "VARCHAR",
        "stage": "UTINYINT NOT NULL",
        "delay": "DOUBLE NOT NULL",
    }
    statements = []
    for table in _ROLLUP_COLUMNS:
        columns = _family_columns(table)
        typed = ", ".join(f"{c} {types.get(c, 'BIGINT NOT NULL')}" for c in columns)
        keys, summed = _ROLLUP_COLUMNS[table]
        statements += [
            f"CREATE TABLE {table}_{dimension} ({typed})"
            for dimension in _ROLLUP_DIMENSIONS
        ]
        branches = " UNION ALL ".join(
            "SELECT "
            + ", ".join(
                f"'{dimension}' AS dimension" if c == "dimension" else c
                for c in (*keys, *summed)
            )
            + f" FROM {table}_{dimension}"
            for dimension in _ROLLUP_DIMENSIONS
        )
        statements.append(f"CREATE VIEW {table} AS {branches}")
    return statements


def _fill_rollups_sql() -> list[str]:
    """Statements that build the rollups and their buckets from ``attempts``."""
    return [
        *(
            _insert_rollup_sql(table, f"({_rollup_rows_sql(table, 'attempts')})")
            for table in _ROLLUP_COLUMNS
        ),
        """INSERT INTO rollup_buckets
            SELECT width, bucket, count(*), 0 FROM (
                SELECT width, bucket FROM rollup_counts
                UNION ALL SELECT width, bucket FROM rollup_delays)
            GROUP BY ALL""",
        *(s for _, build in _build_levels_sql() for s in build),
    ]


# ------------------------------------------------------------------- migrations

_MIGRATION_1 = [
    "CREATE SEQUENCE attempt_ids",
    "CREATE SEQUENCE reject_ids",
    # No primary key: an ART index makes every upsert several times dearer, and
    # the single writer keeps keys unique itself (``_insert``: delete, insert).
    """CREATE TABLE messages (
        key VARCHAR NOT NULL, host VARCHAR NOT NULL, queue_id VARCHAR NOT NULL,
        first_ts DOUBLE NOT NULL, last_ts DOUBLE NOT NULL, closed BOOLEAN NOT NULL,
        origin VARCHAR NOT NULL, client_host VARCHAR, client_ip VARCHAR,
        sasl_method VARCHAR, sasl_username VARCHAR, message_id VARCHAR,
        sender VARCHAR, sender_domain VARCHAR, size BIGINT, nrcpt BIGINT,
        tenant VARCHAR NOT NULL, parent_queue_id VARCHAR, expired BOOLEAN NOT NULL)""",
    """CREATE TABLE attempts (
        id BIGINT NOT NULL DEFAULT nextval('attempt_ids'),
        ts DOUBLE NOT NULL, host VARCHAR NOT NULL, queue_id VARCHAR NOT NULL,
        message_key VARCHAR NOT NULL, recipient VARCHAR NOT NULL,
        recipient_domain VARCHAR NOT NULL, transport VARCHAR NOT NULL,
        status VARCHAR NOT NULL, final BOOLEAN NOT NULL, tenant VARCHAR NOT NULL,
        sender VARCHAR, sender_domain VARCHAR, message_id VARCHAR,
        orig_recipient VARCHAR, program VARCHAR, relay_host VARCHAR,
        relay_ip VARCHAR, relay_port BIGINT, conn_use BIGINT, delay DOUBLE,
        delay_before_qmgr DOUBLE, delay_in_qmgr DOUBLE, delay_conn_setup DOUBLE,
        delay_transmission DOUBLE, dsn VARCHAR, smtp_code BIGINT,
        enhanced_code VARCHAR, response VARCHAR NOT NULL, cause VARCHAR,
        temporary BOOLEAN, dovecot_session VARCHAR, dovecot_key VARCHAR,
        rcpt UBIGINT NOT NULL)""",
    """CREATE TABLE rejects (
        id BIGINT NOT NULL DEFAULT nextval('reject_ids'),
        ts DOUBLE NOT NULL, host VARCHAR NOT NULL, program VARCHAR NOT NULL,
        action VARCHAR NOT NULL, stage VARCHAR, queue_id VARCHAR,
        client_host VARCHAR, client_ip VARCHAR, smtp_code BIGINT, dsn VARCHAR,
        text VARCHAR NOT NULL, cause VARCHAR NOT NULL, sender VARCHAR,
        recipient VARCHAR, recipient_domain VARCHAR, tenant VARCHAR NOT NULL)""",
    """CREATE TABLE dovecot (
        ts DOUBLE NOT NULL, host VARCHAR NOT NULL, service VARCHAR NOT NULL,
        recipient VARCHAR NOT NULL, recipient_domain VARCHAR NOT NULL,
        tenant VARCHAR NOT NULL, session VARCHAR, msgid VARCHAR,
        status VARCHAR NOT NULL, mailbox VARCHAR, reason VARCHAR, cause VARCHAR,
        delivery_time_ms DOUBLE, session_time_ms DOUBLE, size BIGINT,
        sender VARCHAR, dovecot_key VARCHAR)""",
    """CREATE TABLE events (
        ts DOUBLE NOT NULL, host VARCHAR NOT NULL, program VARCHAR NOT NULL,
        category VARCHAR NOT NULL, text VARCHAR NOT NULL, queue_id VARCHAR)""",
    # Raw lines are the bulk of the file; zstd keeps them to a fraction of their
    # size at a write cost close to DuckDB's default string compression.
    """CREATE TABLE lines (
        ts DOUBLE NOT NULL, host VARCHAR NOT NULL, queue_id VARCHAR NOT NULL,
        program VARCHAR NOT NULL, line VARCHAR NOT NULL USING COMPRESSION zstd,
        message_key VARCHAR)""",
    # Counts are appended per batch and added up when read: a few rows per batch,
    # and no upsert on the write path.
    """CREATE TABLE unparsed (
        program VARCHAR NOT NULL, reason VARCHAR NOT NULL, shape VARCHAR NOT NULL,
        example VARCHAR NOT NULL, count BIGINT NOT NULL, first_ts DOUBLE,
        last_ts DOUBLE)""",
    """CREATE TABLE program_lines (program VARCHAR NOT NULL, lines BIGINT NOT NULL)""",
    # Of several examples of a shape the one seen first is shown, ties broken by
    # the text, so that the answer does not depend on how lines were batched.
    """CREATE VIEW unparsed_shapes AS
        SELECT program, reason, shape,
            arg_min(example, (coalesce(first_ts, 'infinity'::DOUBLE), example))
                AS example,
            sum(count)::BIGINT AS count, min(first_ts) AS first_ts,
            max(last_ts) AS last_ts
        FROM unparsed GROUP BY program, reason, shape""",
    """CREATE TABLE sources (
        source_id VARCHAR PRIMARY KEY, stream VARCHAR NOT NULL, path VARCHAR NOT NULL,
        device UBIGINT, inode UBIGINT, head_hash VARCHAR,
        byte_offset BIGINT NOT NULL, complete BOOLEAN NOT NULL, lines BIGINT NOT NULL,
        first_seen DOUBLE NOT NULL, updated DOUBLE NOT NULL)""",
    """CREATE TABLE pipeline_state (
        stream VARCHAR PRIMARY KEY, data BLOB NOT NULL, updated DOUBLE NOT NULL)""",
    """CREATE TABLE conversations (
        conversation_id VARCHAR NOT NULL, turn INTEGER NOT NULL, tenant VARCHAR,
        role VARCHAR NOT NULL, content JSON NOT NULL, ts DOUBLE NOT NULL,
        PRIMARY KEY (conversation_id, turn))""",
    f"""CREATE VIEW attempt_dovecot AS
        SELECT a.id AS attempt_id, a.ts AS attempt_ts, d.*
        FROM (SELECT id, ts, dovecot_key FROM attempts
              WHERE dovecot_key IS NOT NULL) a
        ASOF JOIN dovecot d
          ON d.dovecot_key = a.dovecot_key
         AND a.ts + {JOIN_SLACK_SECONDS} >= d.ts""",
]

_MIGRATION_2 = [
    # Summaries read these instead of the attempts (``DuckDBStore._roll_up``).
    """CREATE TABLE rollup_counts (
        width DOUBLE NOT NULL, bucket DOUBLE NOT NULL, dimension VARCHAR NOT NULL,
        tenant VARCHAR NOT NULL, value VARCHAR, delivered BIGINT NOT NULL,
        bounced BIGINT NOT NULL, expired BIGINT NOT NULL,
        deferral_attempts BIGINT NOT NULL)""",
    """CREATE TABLE rollup_delays (
        width DOUBLE NOT NULL, bucket DOUBLE NOT NULL, dimension VARCHAR NOT NULL,
        tenant VARCHAR NOT NULL, value VARCHAR, stage UTINYINT NOT NULL,
        delay DOUBLE NOT NULL, n BIGINT NOT NULL)""",
    # Rows of both rollups per bucket: at its last merge, and appended since.
    """CREATE TABLE rollup_buckets (
        width DOUBLE NOT NULL, bucket DOUBLE NOT NULL, merged_rows BIGINT NOT NULL,
        fresh_rows BIGINT NOT NULL, PRIMARY KEY (width, bucket))""",
    # Every attempt of a recipient that has a non-final one: all that
    # ``deferred`` reads, a tenth of the attempts.
    """CREATE TABLE retried_attempts (
        rcpt UBIGINT NOT NULL, ts DOUBLE NOT NULL, final BOOLEAN NOT NULL,
        status VARCHAR NOT NULL, tenant VARCHAR NOT NULL,
        recipient_domain VARCHAR NOT NULL, transport VARCHAR NOT NULL,
        cause VARCHAR, relay_host VARCHAR, host VARCHAR NOT NULL)""",
    # Filled by migration 3 since it was written: filling here, in the shape
    # that migration 3 replaces, would tie this one to the code of that shape.
    # A database that had the filled tables of version 2 ends the same.
    f"""INSERT INTO retried_attempts
        SELECT {_RETRIED_COLUMNS} FROM attempts
        WHERE rcpt IN (SELECT rcpt FROM attempts WHERE NOT final)""",
]

_MIGRATION_3 = [
    "DROP TABLE rollup_counts",
    "DROP TABLE rollup_delays",
    "DELETE FROM rollup_buckets",
    *_rollup_tables_sql(),
    *_fill_rollups_sql(),
]

_MIGRATION_4 = [
    # The recipients that a window open at its end may count as ``deferred``.
    """CREATE TABLE deferred_latest (
        rcpt UBIGINT NOT NULL, ts DOUBLE NOT NULL, final_ts DOUBLE,
        tenant VARCHAR NOT NULL, recipient_domain VARCHAR NOT NULL,
        transport VARCHAR NOT NULL, cause VARCHAR, relay_host VARCHAR,
        host VARCHAR NOT NULL)""",
    "INSERT INTO deferred_latest " + _deferred_latest_sql("retried_attempts", "TRUE"),
]

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("tables for messages, attempts, rejects, dovecot, events, lines", _MIGRATION_1),
    (
        "rollups of counts and delays, and the attempts of retried recipients",
        _MIGRATION_2,
    ),
    ("a table per rollup family, and views that join them", _MIGRATION_3),
    ("the latest deferral of each recipient not yet settled", _MIGRATION_4),
]
"""Numbered from 1 in list order. Append; never edit one that was released."""

SCHEMA_VERSION = len(MIGRATIONS)

# ----------------------------------------------------------------------- errors

_ERRORS: tuple[tuple[type[duckdb.Error], str], ...] = (
    (
        duckdb.IOException,
        "cannot use the database {path} while {doing}: {error} "
        "(is another mailtriage process using it?)",
    ),
    (
        duckdb.OutOfMemoryException,
        "DuckDB ran out of memory while {doing} ({error}); "
        "raise [store] memory_limit_mb",
    ),
    (duckdb.Error, "the DuckDB store {path} failed while {doing}: {error}"),
)
"""DuckDB's exceptions, most specific first, and what the user is told."""

_G = TypeVar("_G", bound=GroupStats)

_DELIVERY_COLUMNS = [
    name for name in DeliveryItem.model_fields if name not in ("dovecot",)
]
_REJECT_COLUMNS = list(RejectItem.model_fields)
_MESSAGE_COLUMNS = list(MessageInfo.model_fields)
_DOVECOT_SIDE_COLUMNS = list(DovecotSide.model_fields)


class _Where:
    """A conjunction of SQL conditions with their ``?`` parameters, in order."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def eq(self, column: str, value: Any) -> None:
        if value is not None:
            self.add(f"{column} = ?", value)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"


def _time(where: _Where, scope: Scope, column: str = "ts") -> None:
    if scope.since is not None:
        where.add(f"{column} >= ?", scope.since)
    if scope.until is not None:
        where.add(f"{column} < ?", scope.until)


def _attempt_where(scope: Scope, prefix: str = "") -> _Where:
    """Conditions on ``attempts`` (aliased by ``prefix``) for every scope field."""
    where = _Where()
    _time(where, scope, f"{prefix}ts")
    where.eq(f"{prefix}tenant", scope.tenant_filter())
    where.eq(f"{prefix}recipient_domain", _lower(scope.domain))
    where.eq(f"{prefix}host", scope.host)
    where.eq(f"{prefix}transport", scope.transport)
    where.eq(f"{prefix}relay_host", scope.relay)
    return where


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _pct(count: int | None, values: Sequence[float] | None) -> Percentiles:
    if not count or not values:
        return Percentiles()
    return Percentiles(count=count, p50=values[0], p95=values[1], p99=values[2])


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
    return limit


class DuckDBStore(Store):
    """The embedded store in one DuckDB file (see the module docstring)."""

    def __init__(
        self,
        path: Path | str,
        *,
        memory_limit_mb: int | None = 256,
        threads: int | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = str(path)
        config: dict[str, Any] = {
            # Committed data waits in the WAL until DuckDB checkpoints it into the
            # file. Each checkpoint recompresses the tables' last row groups, so
            # rare ones cost less CPU; memory is bounded by memory_limit instead.
            "checkpoint_threshold": "64MB",
        }
        if memory_limit_mb:
            config["memory_limit"] = f"{memory_limit_mb}MB"
        if threads:
            config["threads"] = threads
        self._write_lock = threading.RLock()
        self._cursor_lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._closed = False
        self._exact_percentiles: bool | None = None
        with self._translated("opening the database"):
            if not read_only:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = duckdb.connect(self.path, read_only=read_only, config=config)
            _quiet(self._db)
        try:
            self._migrate(read_only)
        except BaseException:
            self._db.close()
            raise
        logger.debug("store opened", path=self.path, schema=SCHEMA_VERSION)

    # ------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close every cursor and the database; safe to call twice."""
        if self._closed:
            return
        with self._write_lock, self._cursor_lock:
            self._closed = True
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
            self._db.close()

    def ping(self) -> None:
        self._one("SELECT 1", [], "answering a ping")

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """Turn DuckDB's exceptions into ``StoreError`` (the one translation)."""
        try:
            yield
        except duckdb.Error as exc:
            for kind, message in _ERRORS:
                if isinstance(exc, kind):
                    text = message.format(path=self.path, doing=doing, error=exc)
                    raise StoreError(text) from exc
            raise  # pragma: no cover - duckdb.Error is the last entry

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (a connection to the same database)."""
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            with self._cursor_lock:
                if self._closed:
                    raise StoreError(f"the store {self.path} is closed")
                cur = self._db.cursor()
                _quiet(cur)
                self._cursors.append(cur)
            self._local.cursor = cur
        return cur

    def _rows(self, sql: str, params: Sequence[Any], doing: str) -> list[Any]:
        with self._translated(doing):
            return self._cursor().execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any], doing: str) -> Any:
        rows = self._rows(sql, params, doing)
        return rows[0] if rows else None

    def _dicts(
        self, sql: str, params: Sequence[Any], doing: str
    ) -> list[dict[str, Any]]:
        with self._translated(doing):
            cur = self._cursor().execute(sql, params)
            names = [d[0] for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # ------------------------------------------------------------ migrations

    def _migrate(self, read_only: bool) -> None:
        with self._translated("checking the schema version"):
            exists = self._db.execute(
                "SELECT count(*) FROM duckdb_tables() "
                "WHERE table_name = 'schema_version' AND schema_name = 'main'"
            ).fetchone()
            if exists and exists[0]:
                found = self._db.execute(
                    "SELECT coalesce(max(version), 0) FROM schema_version"
                ).fetchone()
                current = int(found[0]) if found else 0
            else:
                current = 0
                if not read_only:
                    self._db.execute(
                        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                        "description VARCHAR NOT NULL, applied DOUBLE NOT NULL)"
                    )
        if current > SCHEMA_VERSION:
            raise SchemaError(
                f"the database {self.path} has schema version {current}, but this "
                f"mailtriage understands versions up to {SCHEMA_VERSION}: upgrade "
                "mailtriage, or point --db at another file"
            )
        if current < SCHEMA_VERSION and read_only:
            raise SchemaError(
                f"the database {self.path} has schema version {current} and needs "
                f"migrating to {SCHEMA_VERSION}; open it once without read-only"
            )
        for number in range(current + 1, SCHEMA_VERSION + 1):
            self._apply(number)

    def _apply(self, number: int) -> None:
        description, statements = MIGRATIONS[number - 1]
        with self._translated(f"applying schema migration {number}"):
            self._db.begin()
            try:
                for statement in statements:
                    self._db.execute(statement)
                self._db.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)",
                    [number, description, time.time()],
                )
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
        logger.info("schema migrated", path=self.path, version=number)

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
        now = time.time()
        with self._write_lock, self._translated("writing a batch"):
            if self._closed:
                raise StoreError(f"the store {self.path} is closed")
            db = self._db
            db.begin()
            try:
                for name, table in cols.tables.items():
                    self._insert(db, name, table)
                self._roll_up(db, cols)
                self._count_programs(db, cols.lines_by_program)
                for cp in checkpoints:
                    self._save_checkpoint(db, cp, now)
                if state is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO pipeline_state VALUES (?, ?, ?)",
                        [stream, state, now],
                    )
                db.commit()
            except BaseException:
                db.rollback()
                raise

    def _insert(
        self, db: duckdb.DuckDBPyConnection, name: str, table: pa.Table
    ) -> None:
        view = f"_batch_{name}"
        columns = ", ".join(table.column_names)
        db.register(view, table)
        try:
            if name == "messages":
                # A batch holds each key once (``to_columns``; partitions hold
                # disjoint hosts), so delete-then-insert is an upsert by key. A
                # key names its first time, so the earliest one in the batch
                # bounds where older versions can be: DuckDB skips row groups
                # by their min/max instead of reading the whole table each time.
                oldest = pc.min(table.column("first_ts")).as_py()
                db.execute(
                    f"DELETE FROM messages WHERE first_ts >= ? "
                    f"AND key IN (SELECT key FROM {view})",
                    [oldest],
                )
            extra = _DERIVED.get(name, {})
            names = ", ".join([columns, *extra])
            values = ", ".join([columns, *extra.values()])
            db.execute(f"INSERT INTO {name} ({names}) SELECT {values} FROM {view}")
        finally:
            db.unregister(view)

    def _roll_up(self, db: duckdb.DuckDBPyConnection, cols: ColumnBatch) -> None:
        """Add the batch's attempts to the rollups and to ``retried_attempts``.

        Runs in the batch's own transaction, after its rows are inserted: the
        rollups cover exactly the committed attempts, so a batch that a restart
        reads again (from its checkpoint) was never counted. Rollups add up per
        bucket: a batch appends rows of its own at every width, and
        ``_merge_rollups`` adds up a bucket's rows once enough were appended.
        The temporary tables stay until the next batch replaces them: dropping
        them would cost a statement each.
        """
        table = cols.tables.get("attempts")
        if table is None or table.num_rows == 0:
            return
        # Copied once: every scan of a registered Arrow table takes the
        # interpreter lock, and waits for it while ingest parses.
        db.register("_rollup_arrow", table)
        try:
            db.execute(
                "CREATE OR REPLACE TEMP TABLE _rollup_batch AS SELECT "
                f"{_DERIVED['attempts']['rcpt']} AS rcpt, "
                f"{', '.join(_ROLLUP_BATCH_COLUMNS)} FROM _rollup_arrow"
            )
        finally:
            db.unregister("_rollup_arrow")
        times = pc.min_max(table.column("ts")).as_py()
        widths = [ROLLUP_WIDTHS[0]] + [
            width
            for width in ROLLUP_WIDTHS[1:]
            if _any_built(db, width, times["min"], times["max"])
        ]
        fresh = [self._append_rollup(db, name, widths) for name in _ROLLUP_COLUMNS]
        appended = " UNION ALL ".join(
            f"SELECT width, bucket FROM {name}" for names in fresh for name in names
        )
        # A bucket's first rows count as merged: one batch's rows are summed.
        db.execute(
            "INSERT INTO rollup_buckets SELECT width, bucket, count(*), 0 "
            f"FROM ({appended}) GROUP BY ALL ON CONFLICT (width, bucket) DO "
            "UPDATE SET fresh_rows = fresh_rows + excluded.merged_rows"
        )
        self._build_levels(db)
        self._merge_rollups(db)
        span = _lifetimes_span(db, cols.tables.get("messages"))
        self._keep_retried(db, span)
        self._keep_deferred(db, span)

    def _append_rollup(
        self, db: duckdb.DuckDBPyConnection, table: str, widths: Sequence[float]
    ) -> list[str]:
        """Append the batch's rows of ``table`` at the finest width, and at each
        coarser one of ``widths`` to the buckets already built; returns the
        temporary tables that hold them, one per width."""
        names: list[str] = []
        for width in widths:
            name = f"_rollup_new_{table}_{len(names)}"
            if names:
                rows = (
                    f"SELECT * FROM ({_rollup_sums_sql(table, names[0], width)}) "
                    "WHERE bucket IN (SELECT bucket FROM rollup_buckets "
                    f"WHERE width = {width!r})"
                )
            else:
                rows = _rollup_rows_sql(table, "_rollup_batch")
            db.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {rows}")
            db.execute(_insert_rollup_sql(table, name))
            names.append(name)
        return names

    def _build_levels(self, db: duckdb.DuckDBPyConnection) -> None:
        """Build the coarser buckets that this batch closed (``ROLLUP_WIDTHS``).

        Usually none: a day is built once, when the first batch past its end
        arrives. The batch's own rows are in the finest level by now and went
        to no coarser bucket that is built here, so they are counted once."""
        for due, build in _build_levels_sql():
            if db.execute(f"SELECT count(*) FROM ({due})").fetchall()[0][0]:
                for statement in build:
                    db.execute(statement)

    def _merge_rollups(self, db: duckdb.DuckDBPyConnection) -> None:
        """Add up the rows of each bucket that has grown enough since its last
        merge.

        Each batch appends rows of its own, so a bucket written by many small
        batches (live ingest commits every second) would hold nearly a row per
        delay. A bucket's rows are summed per key and rewritten once those
        appended since its last merge outnumber the merged ones: each row is
        rewritten a few times at most, and a query reads at most about twice
        the merged rows (or ``ROLLUP_MERGE_ROWS`` more). The buckets due are
        recent ones as a rule: the range of their starts lets the engine skip
        the row groups of older history.
        """
        due = db.execute(
            "SELECT width, bucket FROM rollup_buckets "
            "WHERE fresh_rows > greatest(?, merged_rows)",
            [ROLLUP_MERGE_ROWS],
        ).fetchall()
        if not due:
            return
        db.execute(
            "CREATE OR REPLACE TEMP TABLE _rollup_merging AS "
            "SELECT unnest(?::DOUBLE[]) AS width, unnest(?::DOUBLE[]) AS bucket",
            [[w for w, _ in due], [b for _, b in due]],
        )
        same = "t.width = m.width AND t.bucket = m.bucket"
        starts = [min(b for _, b in due), max(b for _, b in due)]
        near = "t.bucket BETWEEN ? AND ?"
        for table in _ROLLUP_COLUMNS:
            rows = (
                f"(SELECT t.* FROM {table} t SEMI JOIN _rollup_merging m "
                f"ON {same} WHERE {near})"
            )
            db.execute(
                f"CREATE OR REPLACE TEMP TABLE _rollup_merged_{table} AS "
                + _rollup_sums_sql(table, rows),
                starts,
            )
            for dimension in _ROLLUP_DIMENSIONS:
                db.execute(
                    f"DELETE FROM {table}_{dimension} t USING _rollup_merging m "
                    f"WHERE {same} AND {near}",
                    starts,
                )
            db.execute(_insert_rollup_sql(table, f"_rollup_merged_{table}"))
        merged = " UNION ALL ".join(
            f"SELECT width, bucket FROM _rollup_merged_{table}"
            for table in _ROLLUP_COLUMNS
        )
        db.execute(
            "UPDATE rollup_buckets t SET merged_rows = m.n, fresh_rows = 0 FROM ("
            f"SELECT width, bucket, count(*) AS n FROM ({merged}) GROUP BY ALL) m "
            f"WHERE {same}"
        )

    def _keep_retried(
        self, db: duckdb.DuckDBPyConnection, span: tuple[float, float] | None
    ) -> None:
        """Copy to ``retried_attempts`` every attempt of the batch's recipients
        that have a non-final attempt, and the final attempts stored before of
        those retried for the first time.

        ``deferred`` then reads this table instead of every final attempt: it
        holds all of these recipients' attempts, in whatever order and batch
        they were logged. Earlier attempts of a recipient belong to the same
        queue-ID lifetime, so they lie in ``span``, the time its lines cover
        (``_lifetimes_span``): the lookups read that much of the tables, not all
        of their history (zone maps skip the rest). Without a span they read
        everything.
        """
        within, bounds = (
            ("", []) if span is None else ("WHERE ts BETWEEN ? AND ?", [*span])
        )
        db.execute(
            "CREATE OR REPLACE TEMP TABLE _retried_batch AS "
            "SELECT rcpt, bool_or(NOT final) AS retried, "
            f"rcpt IN (SELECT rcpt FROM retried_attempts {within}) AS known "
            "FROM _rollup_batch GROUP BY rcpt",
            bounds,
        )
        db.execute(
            f"INSERT INTO retried_attempts SELECT {_RETRIED_COLUMNS} "
            "FROM _rollup_batch "
            "WHERE rcpt IN (SELECT rcpt FROM _retried_batch WHERE known) "
            "OR (NOT final AND rcpt IN (SELECT rcpt FROM _retried_batch "
            "WHERE retried))"
        )
        # Final attempts of recipients retried for the first time: this batch's
        # (already inserted into ``attempts``) and any stored before.
        found = db.execute(
            "SELECT count(*) FROM _retried_batch WHERE retried AND NOT known"
        ).fetchall()
        if found[0][0]:
            also = "" if span is None else "AND ts BETWEEN ? AND ?"
            db.execute(
                f"INSERT INTO retried_attempts SELECT {_RETRIED_COLUMNS} "
                f"FROM attempts WHERE final {also} AND rcpt IN (SELECT rcpt "
                "FROM _retried_batch WHERE retried AND NOT known)",
                bounds,
            )

    def _keep_deferred(
        self, db: duckdb.DuckDBPyConnection, span: tuple[float, float] | None
    ) -> None:
        """Rebuild the ``deferred_latest`` rows of the recipients whose rows of
        ``retried_attempts`` this batch changed (``_keep_retried``), from all of
        their rows there, which lie in ``span`` as its docstring says."""
        touched = "rcpt IN (SELECT rcpt FROM _retried_batch WHERE retried OR known)"
        within, bounds = (
            ("", []) if span is None else (" AND ts BETWEEN ? AND ?", [*span])
        )
        db.execute(f"DELETE FROM deferred_latest WHERE {touched}")
        db.execute(
            "INSERT INTO deferred_latest "
            + _deferred_latest_sql("retried_attempts", touched + within),
            bounds,
        )

    def _count_programs(
        self, db: duckdb.DuckDBPyConnection, counts: Mapping[str, int]
    ) -> None:
        if not counts:
            return
        table = pa.table(
            {
                "program": pa.array(list(counts), pa.string()),
                "lines": pa.array(list(counts.values()), pa.int64()),
            }
        )
        db.register("_batch_programs", table)
        try:
            db.execute("INSERT INTO program_lines SELECT * FROM _batch_programs")
        finally:
            db.unregister("_batch_programs")

    def _save_checkpoint(
        self, db: duckdb.DuckDBPyConnection, cp: Checkpoint, now: float
    ) -> None:
        db.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source_id) DO UPDATE SET stream = excluded.stream, "
            "path = excluded.path, device = excluded.device, inode = excluded.inode, "
            "head_hash = excluded.head_hash, byte_offset = excluded.byte_offset, "
            "complete = excluded.complete, lines = excluded.lines, "
            "updated = excluded.updated",
            [
                cp.source_id,
                cp.stream,
                cp.path,
                cp.device,
                cp.inode,
                cp.head_hash,
                cp.offset,
                cp.complete,
                cp.lines,
                cp.first_seen if cp.first_seen is not None else now,
                now,
            ],
        )

    def checkpoint(self, source_id: str) -> Checkpoint | None:
        rows = self._dicts(
            f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE source_id = ?",
            [source_id],
            "reading a checkpoint",
        )
        return Checkpoint(**rows[0]) if rows else None

    def state(self, stream: str = "main") -> bytes | None:
        row = self._one(
            "SELECT data FROM pipeline_state WHERE stream = ?",
            [stream],
            "reading the pipeline state",
        )
        return bytes(row[0]) if row else None

    def sources(self) -> list[Checkpoint]:
        rows = self._dicts(
            f"SELECT {_SOURCE_COLUMNS} FROM sources ORDER BY updated DESC, source_id",
            [],
            "listing sources",
        )
        return [Checkpoint(**row) for row in rows]

    # ---------------------------------------------------------------- counts

    def summary(
        self,
        scope: Scope,
        group_by: Sequence[GroupBy] = (),
        *,
        limit: int | None = None,
    ) -> Summary:
        return self._summary(scope, group_by, limit)

    def _summary(
        self,
        scope: Scope,
        group_by: Sequence[GroupBy],
        limit: int | None,
        *,
        reference: bool = False,
    ) -> Summary:
        _group_exprs(group_by, ATTEMPT_GROUPS)
        names = list(group_by)
        rows = self._counts(
            scope, names, None, limit, totals=bool(names), reference=reference
        )
        # With groups, the first row is the totals (GROUPING SETS, see _counts).
        totals = rows[:1] if names else rows
        groups = rows[1:] if names else []
        return Summary(
            group_by=names,
            totals=_stats(totals[0], [], GroupStats) if totals else GroupStats(),
            groups=[_stats(row, names, GroupStats) for row in groups],
        )

    def timeseries(
        self,
        scope: Scope,
        interval_seconds: float,
        group_by: Sequence[GroupBy] = (),
    ) -> TimeSeries:
        return self._timeseries(scope, interval_seconds, group_by)

    def _timeseries(
        self,
        scope: Scope,
        interval_seconds: float,
        group_by: Sequence[GroupBy],
        *,
        reference: bool = False,
    ) -> TimeSeries:
        if not interval_seconds > 0:
            raise QueryError("interval must be positive", parameter="interval")
        _group_exprs(group_by, ATTEMPT_GROUPS)
        span = self._span(scope)
        if span is not None and span / interval_seconds > MAX_BUCKETS:
            raise QueryError(
                f"an interval of {interval_seconds:g} s makes more than "
                f"{MAX_BUCKETS} buckets over this window; use a larger interval or "
                "a shorter window",
                parameter="interval",
            )
        names = list(group_by)
        interval = float(interval_seconds)
        rows = self._counts(scope, names, interval, None, reference=reference)
        points = [_stats(row, names, TimePoint) for row in rows]
        return TimeSeries(
            interval_seconds=interval_seconds, group_by=names, points=points
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
        scope: Scope,
        group_by: Sequence[GroupBy],
        interval: float | None,
        limit: int | None,
        *,
        totals: bool = False,
        reference: bool = False,
    ) -> list[dict[str, Any]]:
        """The five counts and the delay percentiles per group (and per bucket of
        ``interval`` seconds).

        With ``totals`` the first row is the whole window (one pass for totals and
        groups: ``GROUPING SETS``), then at most ``limit`` groups, busiest first.
        Each part reads as little as it can: the four additive counts and the
        delay histograms come from the rollups for the whole buckets of the
        window and from the attempts for its edges (``_rollup_plan``; the
        attempts alone where no rollup fits), ``deferred`` from
        ``retried_attempts`` (``_deferred_sql``), or for a window open at its end
        from ``deferred_latest``. ``reference`` reads everything
        from ``attempts``: the yardstick the tests hold the rest to.
        """
        exact = self._histogram_percentiles()
        with self._snapshot("counting deliveries") as cur:
            plan = None
            if exact and not reference:
                plan = _rollup_plan(scope, group_by, interval, _built(cur))
            g = _Grouping(group_by, interval, totals)
            where = _attempt_where(scope)
            if reference:
                deferred = _deferred_sql(g, where, "attempts")
            elif _latest_answers(scope, interval):
                deferred = _deferred_latest_part(g, where, scope.since)
            else:
                deferred = _deferred_sql(g, where, "retried_attempts")
            parts = [_count_sql(g, plan, where), deferred]
            columns = ["c.*", "coalesce(d.deferred, 0) AS deferred"]
            joins = [f"LEFT JOIN d ON {g.join('c', 'd')}"]
            if not exact:
                parts.append(_quantile_sql(g, where))
                columns += [f"p.{p}_{name}" for name, _ in STAGE_COLUMNS for p in "nq"]
                joins.append(f"LEFT JOIN p ON {g.join('c', 'p')}")
            volume = "(c.delivered + c.bounced + c.expired + coalesce(d.deferred, 0))"
            order = ["c.gid DESC"] + (["c.bucket"] if interval is not None else [])
            order += [f"{volume} DESC"] + [f"c.{k}" for k in g.keys if k != "bucket"]
            top = f"LIMIT {int(limit) + (1 if totals else 0)}" if limit else ""
            sql = f"""
                WITH {", ".join(part.sql for part in parts)}
                SELECT {", ".join(columns)} FROM c {" ".join(joins)}
                ORDER BY {", ".join(order)}
                {top}
            """
            params = [value for part in parts for value in part.params]
            rows = _fetch_dicts(cur.execute(sql, params))
            if exact:
                histograms = _histogram_sql(g, plan, where)
                table = cur.sql(histograms.sql, params=histograms.params)
                _attach_percentiles(rows, g.keys, table.to_arrow_table())
            return rows

    @contextmanager
    def _snapshot(self, doing: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor in one read transaction: its queries all see the
        same committed batches, whatever a writer commits meanwhile."""
        with self._translated(doing):
            cur = self._cursor()
            cur.begin()
            try:
                yield cur
            finally:
                cur.rollback()

    def _histogram_percentiles(self) -> bool:
        """Whether ``_interpolated`` equals this DuckDB build's ``quantile_cont``.

        Checked once per store on values like Postfix's delays: the engine's
        rounding of the interpolation (fused multiply-add or not) is a property
        of how it was compiled, not of its documentation.
        """
        if self._exact_percentiles is None:
            rows = self._rows(_PERCENTILE_CHECK, [], "checking percentile arithmetic")
            self._exact_percentiles = all(
                [_quantile(sorted(values), q) for q in QUANTILES] == list(found)
                for found, values in rows
            )
            if not self._exact_percentiles:
                logger.warning("percentiles from histograms disabled", path=self.path)
        return self._exact_percentiles

    def traffic(self, scope: Scope) -> Traffic:
        where = self._message_where(scope)
        rows = self._rows(
            f"SELECT origin, count(*), coalesce(sum(size), 0) FROM messages "
            f"WHERE {where.sql()} GROUP BY origin",
            where.params,
            "counting messages",
        )
        by_origin = {origin: int(n) for origin, n, _ in rows}
        received = [row for row in rows if row[0] in RECEIVED_ORIGINS]
        sent = _attempt_where(scope, "a.")
        found = self._one(
            "SELECT coalesce(sum(m.size), 0) FROM attempts a "
            "JOIN messages m ON m.key = a.message_key "
            f"WHERE a.final AND a.status = 'sent' AND {sent.sql()}",
            sent.params,
            "summing delivered bytes",
        )
        return Traffic(
            received=sum(int(n) for _, n, _ in received),
            bytes_received=sum(int(b) for _, _, b in received),
            bytes_delivered=int(found[0]) if found else 0,
            messages=sum(by_origin.values()),
            by_origin=by_origin,
        )

    def _message_where(self, scope: Scope, prefix: str = "") -> _Where:
        """Messages that entered the queue in the window and belong to the scope:
        a message belongs to its own tenant and to each of its recipients'."""
        where = _Where()
        _time(where, scope, f"{prefix}first_ts")
        where.eq(f"{prefix}host", scope.host)
        tenant = scope.tenant_filter()
        if tenant is not None:
            where.add(
                f"({prefix}tenant = ? OR {prefix}key IN "
                "(SELECT message_key FROM attempts WHERE tenant = ?))",
                tenant,
                tenant,
            )
        for column, value in (
            ("recipient_domain", _lower(scope.domain)),
            ("transport", scope.transport),
            ("relay_host", scope.relay),
        ):
            if value is not None:
                where.add(
                    f"{prefix}key IN (SELECT message_key FROM attempts "
                    f"WHERE {column} = ?)",
                    value,
                )
        return where

    def top_senders(self, scope: Scope, limit: int = 10) -> list[TopSender]:
        where = self._message_where(scope)
        rows = self._rows(
            "SELECT sender, count(*) AS n, coalesce(sum(size), 0) FROM messages "
            f"WHERE {where.sql()} AND sender IS NOT NULL "
            f"AND origin IN {RECEIVED_ORIGINS} "
            "GROUP BY sender ORDER BY n DESC, sender LIMIT ?",
            [*where.params, _check_limit(limit)],
            "ranking senders",
        )
        return [TopSender(sender=s, messages=n, bytes=b) for s, n, b in rows]

    def top_recipients(self, scope: Scope, limit: int = 10) -> list[TopRecipient]:
        where = _attempt_where(scope, "a.")
        rows = self._rows(
            "SELECT a.recipient, count(*) AS n, coalesce(sum(m.size), 0) "
            "FROM attempts a LEFT JOIN messages m ON m.key = a.message_key "
            f"WHERE a.final AND a.status = 'sent' AND {where.sql()} "
            "GROUP BY a.recipient ORDER BY n DESC, a.recipient LIMIT ?",
            [*where.params, _check_limit(limit)],
            "ranking recipients",
        )
        return [TopRecipient(recipient=r, delivered=n, bytes=b) for r, n, b in rows]

    def top_domains(self, scope: Scope, limit: int = 50) -> list[DomainVolume]:
        where = _attempt_where(scope)
        rows = self._rows(
            "SELECT recipient_domain, count(*) AS n, "
            "count(DISTINCT rcpt) FROM attempts "
            f"WHERE {where.sql()} GROUP BY recipient_domain "
            "ORDER BY n DESC, recipient_domain LIMIT ?",
            [*where.params, _check_limit(limit)],
            "ranking domains",
        )
        return [DomainVolume(domain=d, attempts=n, recipients=r) for d, n, r in rows]

    def causes(self, scope: Scope, limit: int = 20) -> list[CauseCount]:
        where = _attempt_where(scope)
        rows = self._dicts(
            "SELECT coalesce(cause, 'other') AS cause, temporary, "
            "count(*) AS attempts, "
            "count(DISTINCT rcpt) AS recipients, "
            "arg_min(response, (ts, response)) AS example, "
            "arg_min(queue_id, (ts, response)) AS example_queue_id "
            f"FROM attempts WHERE status IN ('deferred', 'bounced', 'expired') "
            f"AND {where.sql()} GROUP BY ALL "
            "ORDER BY attempts DESC, cause, temporary LIMIT ?",
            [*where.params, _check_limit(limit)],
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
            f"SELECT action, count(*) FROM rejects WHERE {where.sql()} "
            "GROUP BY action ORDER BY action",
            where.params,
            "counting refusals",
        )
        return {action: int(n) for action, n in rows}

    def reject_reasons(self, scope: Scope, limit: int = 20) -> list[RejectReason]:
        where = self._reject_where(scope)
        rows = self._dicts(
            "SELECT action, cause, count(*) AS count, "
            "arg_min(text, (ts, text)) AS example, "
            "arg_min(smtp_code, (ts, text)) AS smtp_code, "
            "arg_min(dsn, (ts, text)) AS dsn "
            f"FROM rejects WHERE {where.sql()} GROUP BY action, cause "
            "ORDER BY count DESC, action, cause LIMIT ?",
            [*where.params, _check_limit(limit)],
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
            marks = ", ".join("?" for _ in categories)
            where.add(f"category IN ({marks})", *categories)
        rows = self._dicts(
            "SELECT category, program, count(*) AS count, "
            "arg_min(text, (ts, text)) AS example, max(ts) AS last_ts "
            f"FROM events WHERE {where.sql()} GROUP BY category, program "
            "ORDER BY count DESC, category, program LIMIT ?",
            [*where.params, _check_limit(limit)],
            "counting events",
        )
        return [EventCount(**row) for row in rows]

    def unparsed(self, scope: Scope, limit: int = 20) -> UnparsedSummary:
        if scope.tenant_filter() is not None:
            return UnparsedSummary()
        where = _Where()
        if scope.since is not None:
            where.add("last_ts >= ?", scope.since)
        if scope.until is not None:
            where.add("first_ts < ?", scope.until)
        shapes = self._dicts(
            f"SELECT * FROM unparsed_shapes WHERE {where.sql()} "
            "ORDER BY count DESC, program, reason, shape LIMIT ?",
            [*where.params, _check_limit(limit)],
            "listing unparsed shapes",
        )
        programs = self._rows(
            "SELECT coalesce(p.program, u.program) AS program, coalesce(p.lines, 0), "
            "coalesce(u.n, 0) FROM (SELECT program, sum(lines) AS lines "
            "FROM program_lines GROUP BY program) p FULL JOIN "
            "(SELECT program, sum(count) AS n FROM unparsed_shapes "
            f"WHERE {where.sql()} GROUP BY program) u ON u.program = p.program "
            "ORDER BY 3 DESC, 2 DESC, 1",
            where.params,
            "counting lines per program",
        )
        by_program = [
            ProgramLines(program=p, lines=int(n), unparsed=int(u))
            for p, n, u in programs
        ]
        return UnparsedSummary(
            lines=sum(p.lines for p in by_program),
            unparsed=sum(p.unparsed for p in by_program),
            by_program=by_program,
            shapes=[UnparsedShape(**row) for row in shapes],
        )

    def data_range(self, scope: Scope) -> DataRange:
        where = _attempt_where(scope)
        found = self._one(
            "SELECT min(ts), max(ts), count(*), count(DISTINCT message_key) "
            f"FROM attempts WHERE {where.sql()}",
            where.params,
            "finding the data range",
        )
        if not found:
            return DataRange()
        first, last, attempts, messages = found
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
            where.add("message_id IN (?, ?)", bare, f"<{bare}>")
        if query.min_delay is not None:
            where.add("delay >= ?", query.min_delay)
        if query.cursor is not None:
            ts, row_id = decode_cursor(query.cursor)
            where.add("(ts < ? OR (ts = ? AND id < ?))", ts, ts, row_id)
        rows = self._dicts(
            f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM attempts "
            f"WHERE {where.sql()} ORDER BY ts DESC, id DESC LIMIT ?",
            [*where.params, query.limit + 1],
            "searching deliveries",
        )
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        items = self._with_dovecot(rows, query.tenant_filter())
        last = items[-1] if more and items else None
        return DeliveryPage(
            items=items,
            next_cursor=encode_cursor(last.ts, last.id) if last else None,
        )

    def _with_dovecot(
        self, rows: list[dict[str, Any]], tenant: str | None
    ) -> list[DeliveryItem]:
        """Delivery items with the Dovecot side of each joined attempt."""
        ids = [row["id"] for row in rows]
        sides: dict[int, DovecotSide] = {}
        if ids:
            marks = ", ".join("?" for _ in ids)
            found = self._dicts(
                _PAGE_DOVECOT.format(
                    columns=", ".join(f"d.{c}" for c in _DOVECOT_SIDE_COLUMNS),
                    marks=marks,
                    slack=JOIN_SLACK_SECONDS,
                ),
                [*ids, *ids],
                "joining the Dovecot side",
            )
            for side in found:
                attempt_id = side.pop("attempt_id")
                owner = side.pop("tenant")
                if tenant is None or owner == tenant:
                    sides[attempt_id] = DovecotSide(**side)
        return [DeliveryItem(**row, dovecot=sides.get(row["id"])) for row in rows]

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
            where.add("(ts < ? OR (ts = ? AND id < ?))", ts, ts, row_id)
        rows = self._dicts(
            f"SELECT {', '.join(_REJECT_COLUMNS)} FROM rejects "
            f"WHERE {where.sql()} ORDER BY ts DESC, id DESC LIMIT ?",
            [*where.params, query.limit + 1],
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
            where.add("queue_id = ?", queue_id)
        else:
            bare = str(message_id).strip().strip("<>")
            where.add("message_id IN (?, ?)", bare, f"<{bare}>")
        where.eq("host", scope.host)
        _time(where, scope, "last_ts")
        rows = self._dicts(
            f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM messages WHERE {where.sql()} "
            "ORDER BY first_ts, host LIMIT ?",
            [*where.params, _check_limit(limit)],
            "finding a message",
        )
        tenant = scope.tenant_filter()
        traces = []
        for row in rows:
            message = MessageInfo(**row)
            found = self._trace_one(message, tenant)
            if found is not None:
                traces.append(found)
        return traces

    def _trace_one(
        self, message: MessageInfo, tenant: str | None
    ) -> MessageTrace | None:
        # The lifetime's time range lets DuckDB skip row groups by their min/max
        # time; the slack covers lines that syslog wrote slightly out of order.
        span = [
            message.first_ts - TRACE_SLACK_SECONDS,
            message.last_ts + TRACE_SLACK_SECONDS,
        ]
        rows = self._dicts(
            f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM attempts "
            "WHERE message_key = ? AND ts BETWEEN ? AND ? ORDER BY ts, id",
            [message.key, *span],
            "tracing deliveries",
        )
        if tenant is not None and not self._visible(message, rows, tenant):
            return None
        mine = [r for r in rows if tenant is None or r["tenant"] == tenant]
        foreign = {
            address
            for r in rows
            if r["tenant"] != tenant and tenant is not None
            for address in (r["recipient"], r["orig_recipient"])
            if address
        }
        lines = [
            TraceLine(**line)
            for line in self._dicts(
                "SELECT ts, host, program, line FROM lines WHERE message_key = ? "
                "AND ts BETWEEN ? AND ? ORDER BY ts, rowid LIMIT ?",
                [message.key, *span, TRACE_LINES_LIMIT],
                "tracing lines",
            )
            if not any(address in line["line"] for address in foreign)
        ]
        return MessageTrace(
            message=message,
            deliveries=self._with_dovecot(mine, tenant),
            rejects=self._trace_rejects(message, tenant),
            events=self._trace_events(message) if tenant is None else [],
            parent=self._trace_parent(message, tenant),
            notifications=self._trace_children(message, tenant),
            lines=lines,
        )

    def _visible(
        self, message: MessageInfo, attempts: list[dict[str, Any]], tenant: str
    ) -> bool:
        return message.tenant == tenant or any(r["tenant"] == tenant for r in attempts)

    def _lifetime_where(self, message: MessageInfo) -> _Where:
        where = _Where()
        where.add("host = ?", message.host)
        where.add("queue_id = ?", message.queue_id)
        where.add("ts BETWEEN ? AND ?", message.first_ts, message.last_ts)
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
            f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM messages "
            "WHERE host = ? AND queue_id = ? AND first_ts <= ? "
            "ORDER BY first_ts DESC LIMIT 1",
            [message.host, message.parent_queue_id, message.first_ts],
            "tracing the original message",
        )
        found = [MessageInfo(**row) for row in rows]
        return self._only_visible(found, tenant)[0] if found else None

    def _trace_children(
        self, message: MessageInfo, tenant: str | None
    ) -> list[MessageInfo]:
        rows = self._dicts(
            f"SELECT {', '.join(_MESSAGE_COLUMNS)} FROM messages "
            "WHERE host = ? AND parent_queue_id = ? AND first_ts BETWEEN ? AND ? "
            "ORDER BY first_ts",
            [message.host, message.queue_id, message.first_ts, message.last_ts + 60],
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
                "SELECT tenant FROM attempts WHERE message_key = ?",
                [message.key],
                "checking visibility",
            )
            if self._visible(message, attempts, tenant):
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
        fa_keys = "".join(f"fa.{k}, " for k in keys)
        join = " AND ".join(f"f.{k} IS NOT DISTINCT FROM t.{k}" for k in keys) or "TRUE"
        where = _attempt_where(scope)
        sql = f"""
            WITH a AS (
                SELECT {selects}rcpt, id, ts, host, queue_id, recipient, status,
                    final, cause, temporary, response
                FROM attempts WHERE {where.sql()}
            ),
            t AS (
                SELECT {key_list}count(DISTINCT rcpt) AS total
                FROM a {"GROUP BY " + ", ".join(keys) if keys else ""}
            ),
            fa AS (SELECT * FROM a WHERE status IN ('deferred', 'bounced', 'expired')),
            rc AS (
                SELECT DISTINCT rcpt FROM a WHERE final AND status = 'sent'
                    AND rcpt IN (SELECT rcpt FROM fa)
            ),
            f AS (
                SELECT {fa_keys}coalesce(fa.cause, 'other') AS cause,
                    fa.temporary, count(*) AS attempts,
                    count(DISTINCT fa.rcpt) AS recipients,
                    count(DISTINCT fa.rcpt)
                        FILTER (WHERE rc.rcpt IS NOT NULL) AS recovered,
                    min(fa.ts) AS first_seen, max(fa.ts) AS last_seen,
                    (list(struct_pack(ts := fa.ts, host := fa.host,
                        queue_id := fa.queue_id, recipient := fa.recipient,
                        response := fa.response) ORDER BY fa.ts DESC, fa.id DESC))[1:3]
                        AS samples
                FROM fa LEFT JOIN rc ON rc.rcpt = fa.rcpt
                GROUP BY ALL
            )
            SELECT f.*, t.total AS group_recipients FROM f JOIN t ON {join}
            ORDER BY f.recipients DESC, f.attempts DESC, f.cause
        """
        rows = self._dicts(sql, where.params, "counting failures")
        groups = []
        for row in rows:
            key = {name: row.pop(k) for name, k in zip(dims, keys, strict=True)}
            samples = [FailureSample(**s) for s in row.pop("samples")]
            groups.append(FailureGroup(key=key, samples=samples, **row))
        return groups

    def dovecot_timings(
        self, scope: Scope, group_by: Sequence[GroupBy] = ()
    ) -> list[DovecotTimings]:
        exprs = _group_exprs(group_by, DOVECOT_GROUPS)
        keys = [f"g{i}" for i in range(len(exprs))]
        selects = "".join(f"d.{e} AS {k}, " for e, k in zip(exprs, keys, strict=True))
        key_list = "".join(f"{k}, " for k in keys)
        group = f"GROUP BY {', '.join(keys)}" if keys else ""
        join = " AND ".join(f"s.{k} IS NOT DISTINCT FROM p.{k}" for k in keys) or "TRUE"
        if scope.transport is not None or scope.relay is not None:
            raise QueryError(
                "Dovecot timings cannot be filtered by transport or relay",
                parameter="transport" if scope.transport is not None else "relay",
            )
        where = _Where()
        _time(where, scope, "d.ts")
        where.eq("d.tenant", scope.tenant_filter())
        where.eq("d.recipient_domain", _lower(scope.domain))
        where.eq("d.host", scope.host)
        q = "[0.5, 0.95, 0.99]"
        sql = f"""
            WITH s AS (
                SELECT {key_list}
                    count(*) FILTER (WHERE status = 'saved') AS saved,
                    count(*) FILTER (WHERE status <> 'saved') AS failed,
                    count(delivery_time_ms) AS n_delivery,
                    quantile_cont(delivery_time_ms / 1000.0, {q}) AS q_delivery,
                    count(session_time_ms) AS n_session,
                    quantile_cont(session_time_ms / 1000.0, {q}) AS q_session
                FROM (SELECT {selects}d.* FROM dovecot d WHERE {where.sql()})
                {group}
            ),
            p AS (
                SELECT {key_list}
                    count(a.delay) AS n_delay,
                    quantile_cont(a.delay, {q}) AS q_delay,
                    count(a.delay_transmission) AS n_transmission,
                    quantile_cont(a.delay_transmission, {q}) AS q_transmission
                FROM (SELECT {selects}d.attempt_id FROM attempt_dovecot d
                      WHERE {where.sql()}) x
                JOIN attempts a ON a.id = x.attempt_id
                {group}
            )
            SELECT s.*, p.n_delay, p.q_delay, p.n_transmission, p.q_transmission
            FROM s LEFT JOIN p ON {join}
            ORDER BY s.saved + s.failed DESC {"".join(f", s.{k}" for k in keys)}
        """
        rows = self._dicts(sql, [*where.params, *where.params], "timing Dovecot")
        return [
            DovecotTimings(
                key={name: row[k] for name, k in zip(group_by, keys, strict=True)},
                saved=row["saved"],
                failed=row["failed"],
                delivery_time=_pct(row["n_delivery"], row["q_delivery"]),
                session_time=_pct(row["n_session"], row["q_session"]),
                postfix_delay=_pct(row["n_delay"], row["q_delay"]),
                postfix_transmission=_pct(row["n_transmission"], row["q_transmission"]),
            )
            for row in rows
        ]

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
        with self._write_lock, self._translated("saving a chat turn"):
            db = self._db
            db.begin()
            try:
                found = db.execute(
                    "SELECT count(*), any_value(tenant), bool_or(tenant IS NULL) "
                    "FROM conversations WHERE conversation_id = ?",
                    [conversation_id],
                ).fetchone()
                turns, owner, operator = found if found else (0, None, None)
                if turns and (owner if not operator else None) != tenant:
                    raise NotFoundError(f"no conversation {conversation_id!r}")
                db.execute(
                    "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                    [conversation_id, turns, tenant, role, text, when],
                )
                db.commit()
            except BaseException:
                db.rollback()
                raise
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
            "FROM conversations WHERE conversation_id = ? ORDER BY turn",
            [conversation_id],
            "loading a conversation",
        )
        tenant = (scope or Scope()).tenant_filter()
        if not rows or (tenant is not None and rows[0]["tenant"] != tenant):
            raise NotFoundError(f"no conversation {conversation_id!r}")
        for row in rows:
            row["content"] = json.loads(row["content"])
        return [ChatTurn(**row) for row in rows]


# The view ``attempt_dovecot`` for a page of attempts only: DuckDB does not push a
# filter on the attempt's id below an ASOF join, so the page is joined by hand.
_PAGE_DOVECOT = """
    SELECT a.id AS attempt_id, {columns}, d.tenant
    FROM (SELECT id, ts, dovecot_key FROM attempts
          WHERE id IN ({marks}) AND dovecot_key IS NOT NULL) a
    ASOF JOIN (SELECT * FROM dovecot WHERE dovecot_key IN (
                   SELECT dovecot_key FROM attempts WHERE id IN ({marks}))) d
      ON d.dovecot_key = a.dovecot_key AND a.ts + {slack} >= d.ts
"""

_SOURCE_COLUMNS = (
    "source_id, stream, path, device, inode, head_hash, byte_offset AS offset, "
    "complete, lines, first_seen, updated"
)


@dataclass(frozen=True, slots=True)
class _Part:
    """A piece of SQL and its ``?`` parameters, in order."""

    sql: str
    params: list[Any]


class _Grouping:
    """The SQL pieces that group the count queries by their keys (and bucket)."""

    def __init__(
        self, names: Sequence[GroupBy], interval: float | None, totals: bool
    ) -> None:
        self.names = list(names)
        self.interval = interval
        self.keys = [f"g{i}" for i in range(len(self.names))]
        # The keys in the order ``select`` gives them.
        self.selected = "".join(f"{k}, " for k in self.keys)
        if interval is not None:
            self.selected += "bucket, "
        self.part = ["rcpt"]
        if interval is not None:
            self.keys = ["bucket", *self.keys]
            self.part.append("bucket")
        keys = ", ".join(self.keys)
        self.key_list = f"{keys}, " if self.keys else ""
        self.sets = bool(self.keys) and totals
        if not self.keys:
            self.by, self.gid = "", "0 AS gid, "
        elif self.sets:
            self.by = f"GROUP BY GROUPING SETS (({keys}), ())"
            self.gid = f"GROUPING({keys}) AS gid, "
        else:
            self.by, self.gid = f"GROUP BY {keys}", "0 AS gid, "

    def select(self, columns: Mapping[str, str], time: str) -> str:
        """The keys (and bucket) of rows that hold each group-by dimension in
        ``columns[name]`` and their time in ``time``."""
        selects = [f"{columns[name]} AS g{i}" for i, name in enumerate(self.names)]
        if self.interval is not None:
            selects.append(f"{_floor(time, self.interval)} AS bucket")
        return "".join(f"{s}, " for s in selects)

    def by_with(self, extra: str) -> str:
        """``GROUP BY`` the keys and ``extra`` (and ``extra`` alone for the
        totals)."""
        keys = ", ".join(self.keys)
        if not self.keys:
            return f"GROUP BY {extra}"
        if self.sets:
            return f"GROUP BY GROUPING SETS (({keys}, {extra}), ({extra}))"
        return f"GROUP BY {keys}, {extra}"

    def join(self, left: str, right: str) -> str:
        """The condition that pairs rows of the same group of two parts."""
        same = [f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in self.keys]
        return " AND ".join([f"{left}.gid = {right}.gid", *same])


@dataclass(frozen=True, slots=True)
class _Rollup:
    """The rollup family that answers a count query: its whole buckets in the
    window, as ``(width, lo, hi)`` ranges of bucket starts (None where open),
    and the ``edges`` of the window they leave to the attempts."""

    dimension: str
    tenant: str | None
    value: str | None
    ranges: list[tuple[float, float | None, float | None]]
    edges: list[tuple[float | None, float | None]]

    def columns(self) -> dict[str, str]:
        """Where a rollup row holds each dimension it can be grouped by."""
        return {"tenant": "tenant", self.dimension: "value"}

    def where(self) -> _Where:
        """The family's rows of the whole buckets, in the query's scope."""
        where = _Where()
        where.add("dimension = ?", self.dimension)
        where.eq("tenant", self.tenant)
        where.eq("value", self.value)
        where.add(*_spans("width = ?", "bucket", list(self.ranges)))
        return where

    def rest(self, window: _Where) -> _Where | None:
        """``window`` (conditions on attempts) without the whole buckets; None
        when they cover it all."""
        if not self.edges:
            return None
        rest = _Where()
        rest.clauses, rest.params = [*window.clauses], [*window.params]
        rest.add(*_spans(None, "ts", [(None, lo, hi) for lo, hi in self.edges]))
        return rest


def _spans(
    first: str | None, column: str, spans: list[tuple[Any, Any, Any]]
) -> tuple[str, ...]:
    """One condition (and its parameters) for ``column`` in any of ``spans``:
    ``(key, lo, hi)``, ``first`` holding the key where given, None open."""
    clauses, params = [], []
    for key, lo, hi in spans:
        parts = [first] if first is not None else []
        params += [key] if first is not None else []
        for op, bound in ((">=", lo), ("<", hi)):
            if bound is not None:
                parts.append(f"{column} {op} ?")
                params.append(bound)
        clauses.append(f"({' AND '.join(parts) or 'TRUE'})")
    return (f"({' OR '.join(clauses)})", *params)


def _rollup_plan(
    scope: Scope,
    group_by: Sequence[GroupBy],
    interval: float | None,
    built: Mapping[float, Sequence[float]] | None = None,
) -> _Rollup | None:
    """The rollup that answers a count query exactly, or None.

    One family holds one dimension besides the tenant, so the query may group
    or filter by that one only (and the tenant); a time series reads the
    widths that divide its interval. ``built`` holds the built buckets of each
    coarser width (all of them where it is None, see ``_cover``).
    """
    filters = {
        "domain": _lower(scope.domain),
        "host": scope.host,
        "transport": scope.transport,
        "relay": scope.relay,
    }
    dimensions = {name for name, value in filters.items() if value is not None}
    dimensions |= {name for name in group_by if name != "tenant"}
    widths = [w for w in ROLLUP_WIDTHS if interval is None or interval % w == 0]
    if len(dimensions) > 1 or not widths:
        return None
    ranges, edges = _cover(scope.since, scope.until, widths, built)
    if not ranges:
        return None
    dimension = dimensions.pop() if dimensions else "none"
    return _Rollup(
        dimension, scope.tenant_filter(), filters.get(dimension), ranges, edges
    )


def _cover(
    since: float | None,
    until: float | None,
    widths: list[float],
    built: Mapping[float, Sequence[float]] | None = None,
) -> tuple[list[tuple[float, float | None, float | None]], list[tuple[Any, Any]]]:
    """Whole buckets of the coarsest width in [since, until), then of the finer
    ones in what is left around them, and the edges left over: together they
    make up the window exactly, each time in one of them.

    ``built`` lists, per width, the buckets that exist at it (in order); a width
    it does not name (the finest) has them all. Runs of consecutive built
    buckets are read; the gaps between them go to the finer widths.
    """
    if not widths:
        empty = since is not None and until is not None and since >= until
        return [], [] if empty else [(since, until)]
    width = widths[-1]
    bounds = _whole_buckets(since, until, width)
    if bounds is None:
        return _cover(since, until, widths[:-1], built)
    lo, hi = bounds
    runs: list[tuple[float | None, float | None]] = (
        [(lo, hi)]
        if built is None or width not in built
        else _runs(built[width], lo, hi, width)
    )
    if not runs:
        return _cover(since, until, widths[:-1], built)
    ranges: list[tuple[float, float | None, float | None]] = [
        (width, first, end) for first, end in runs
    ]
    edges: list[tuple[Any, Any]] = []
    starts = [since, *(end for _, end in runs)]
    ends = [*(first for first, _ in runs), until]
    for start, end in zip(starts, ends, strict=True):
        # Both sides open (whole buckets reach that far) or meeting: no gap.
        if start != end:
            more, left = _cover(start, end, widths[:-1], built)
            ranges += more
            edges += left
    return ranges, edges


def _runs(
    buckets: Sequence[float], lo: float | None, hi: float | None, width: float
) -> list[tuple[float | None, float | None]]:
    """Runs of consecutive ``buckets`` (sorted starts) that lie whole in
    [lo, hi), as (first start, end)."""
    runs: list[tuple[float | None, float | None]] = []
    for b in buckets:
        if (lo is not None and b < lo) or (hi is not None and b + width > hi):
            continue
        if runs and runs[-1][1] == b:
            runs[-1] = (runs[-1][0], b + width)
        else:
            runs.append((b, b + width))
    return runs


_SAFE_TIME = 2.0**48
"""Times beyond this (far outside any log) are left to the attempts: bucket
arithmetic on them would lose the seconds."""


def _whole_buckets(
    since: float | None, until: float | None, width: float
) -> tuple[float | None, float | None] | None:
    """The first and the end boundary of the buckets of ``width`` that lie whole
    in [since, until) (None for an open side), or None if there is none."""
    for t in (since, until):
        if t is not None and not abs(t) < _SAFE_TIME:
            return None
    lo = hi = None
    # The quotient is exact for times of a log (see ``ROLLUP_WIDTHS``), not for
    # any float (one that underflows): step to the boundary if it is off.
    if since is not None:
        lo = math.ceil(since / width) * width
        lo += width if lo < since else -width if lo - width >= since else 0.0
    if until is not None:
        hi = math.floor(until / width) * width
        hi -= width if hi > until else -width if hi + width <= until else 0.0
    if lo is not None and hi is not None and lo >= hi:
        return None
    return lo, hi


def _count_sql(g: _Grouping, plan: _Rollup | None, window: _Where) -> _Part:
    """The CTE ``c``: the four additive counts per group, from the rollup's
    whole buckets and the attempts of the rest of the window."""
    keys = g.select(ATTEMPT_GROUPS, "ts")
    if plan is None:
        return _Part(
            f"""c AS (
                SELECT {g.key_list}{g.gid}{_OUTCOME_COUNTS}
                FROM (SELECT {keys}status, final FROM attempts
                      WHERE {window.sql()}) {g.by}
            )""",
            window.params,
        )
    summed = _ROLLUP_COLUMNS["rollup_counts"][1]
    rollup = plan.where()
    sources = [
        f"SELECT {g.select(plan.columns(), 'bucket')}{', '.join(summed)} "
        f"FROM rollup_counts WHERE {rollup.sql()}"
    ]
    params = [*rollup.params]
    edges = plan.rest(window)
    if edges is not None:
        sources.append(
            f"SELECT {keys}{_OUTCOME_COUNTS} FROM attempts "
            f"WHERE {edges.sql()} GROUP BY ALL"
        )
        params += edges.params
    sums = ", ".join(f"coalesce(sum({c}), 0)::BIGINT AS {c}" for c in summed)
    return _Part(
        f"""c AS (
            SELECT {g.key_list}{g.gid}{sums}
            FROM ({" UNION ALL ".join(sources)}) {g.by}
        )""",
        params,
    )


def _deferred_sql(g: _Grouping, window: _Where, table: str) -> _Part:
    """The CTEs ``n``, ``r`` and ``d``: ``deferred`` per group.

    A recipient with no final outcome has nothing else, so its latest non-final
    attempt is its latest attempt; recipients with a final outcome are taken
    out by a semi-join on the few deferred recipients' ``rcpt`` hashes.
    ``table`` is ``attempts`` or ``retried_attempts``, which holds every
    attempt of each recipient these read.
    """
    keys = g.select(ATTEMPT_GROUPS, "ts")
    w = window.sql()
    latest = [f"arg_max({k}, ts) AS {k}" for k in g.keys if k != "bucket"]
    if g.interval is not None:
        latest.append("bucket")
    part = ", ".join(g.part)
    # ``retried_attempts`` holds only recipients with a non-final attempt, few
    # enough to take out without first keeping those of ``n``.
    few = "" if table == "retried_attempts" else "AND rcpt IN (SELECT rcpt FROM n)"
    sql = f"""
        n AS (SELECT {keys}rcpt, ts, status FROM {table} WHERE NOT final AND {w}),
        r AS (
            SELECT {"".join(f"{e}, " for e in latest)}
                arg_max(status, ts) AS last_status
            FROM n WHERE ({part}) NOT IN (
                SELECT {part} FROM (
                    SELECT {keys}rcpt FROM {table} WHERE final AND {w} {few})
            )
            GROUP BY {part}
        ),
        d AS (
            SELECT {g.key_list}{g.gid} count(*) AS deferred
            FROM r WHERE last_status = 'deferred' {g.by}
        )"""
    return _Part(sql, window.params * 2)


def _latest_answers(scope: Scope, interval: float | None) -> bool:
    """Whether ``deferred_latest`` answers ``deferred`` for this query: one
    window open at its end, filtered only on what a recipient's attempts share
    (tenant, domain). A host, transport or relay can differ between attempts,
    and a filter on them picks the latest among the matching ones."""
    return (
        interval is None
        and scope.until is None
        and scope.host is None
        and scope.transport is None
        and scope.relay is None
    )


def _deferred_latest_part(g: _Grouping, window: _Where, since: float | None) -> _Part:
    """The CTE ``d`` from ``deferred_latest`` (see ``_deferred_latest_sql``):
    the recipients whose latest non-final attempt is in the window and whose
    final outcome, if any, came before it."""
    settled = "final_ts IS NULL" + ("" if since is None else " OR final_ts < ?")
    sql = f"""d AS (
        SELECT {g.key_list}{g.gid} count(*) AS deferred
        FROM (SELECT {g.select(ATTEMPT_GROUPS, "ts")}rcpt FROM deferred_latest
              WHERE {window.sql()} AND ({settled}))
        {g.by}
    )"""
    return _Part(sql, [*window.params, *([] if since is None else [since])])


def _quantile_sql(g: _Grouping, window: _Where) -> _Part:
    """The CTE ``p``: delay percentiles of the final attempts by the engine's
    ``quantile_cont``, for a build whose arithmetic ``_interpolated`` does not
    repeat (see ``DuckDBStore._histogram_percentiles``)."""
    cols = ", ".join(col for _, col in STAGE_COLUMNS)
    quantiles = ", ".join(
        f"count({col}) AS n_{name}, quantile_cont({col}, {list(QUANTILES)}) AS q_{name}"
        for name, col in STAGE_COLUMNS
    )
    sql = f"""p AS (
        SELECT {g.key_list}{g.gid}{quantiles}
        FROM (SELECT {g.select(ATTEMPT_GROUPS, "ts")}{cols} FROM attempts
              WHERE final AND {window.sql()})
        {g.by}
    )"""
    return _Part(sql, window.params)


def _histogram_sql(g: _Grouping, plan: _Rollup | None, window: _Where) -> _Part:
    """Per group and stage, how many final attempts had each delay value: one
    row with the values and their counts in order (``vn``) and their ``total``.

    Postfix rounds logged delays to two decimals by default
    (``delay_logging_resolution_limit``, postconf(5)), so a million delays hold
    a few hundred distinct values: exact percentiles need only these counts,
    which the rollups keep per bucket.
    """
    sources, params = [], []
    if plan is not None:
        rollup = plan.where()
        sources.append(
            f"SELECT {g.select(plan.columns(), 'bucket')}stage, delay AS v, n "
            f"FROM rollup_delays WHERE {rollup.sql()}"
        )
        params += rollup.params
    rest = window if plan is None else plan.rest(window)
    if rest is not None:
        stages = ", ".join(str(i) for i in range(len(STAGE_COLUMNS)))
        delays = ", ".join(col for _, col in STAGE_COLUMNS)
        sources.append(
            f"SELECT {g.selected}stage, v, count(*) AS n FROM ("
            f"SELECT {g.select(ATTEMPT_GROUPS, 'ts')}"
            f"unnest([{stages}]::UTINYINT[]) AS stage, unnest([{delays}]) AS v "
            f"FROM attempts WHERE final AND {rest.sql()}) "
            "WHERE v IS NOT NULL GROUP BY ALL"
        )
        params += rest.params
    sql = f"""
        WITH h AS (
            SELECT {g.key_list}{g.gid}stage, v, sum(n) AS n
            FROM ({" UNION ALL ".join(sources)}) {g.by_with("stage, v")}
        )
        SELECT {g.key_list}gid, stage,
            list_sort(list({{'v': v, 'n': n::BIGINT}})) AS vn, sum(n)::BIGINT AS total
        FROM h GROUP BY ALL
    """
    return _Part(sql, params)


def _attach_percentiles(
    rows: list[dict[str, Any]], keys: Sequence[str], histograms: pa.Table
) -> None:
    """Give each row of ``_counts`` its ``delays`` (counts and percentiles per
    stage, as ``DelayStats`` fields) from the ``_histogram_sql`` of its group."""
    lows, highs = _order_statistics(histograms)
    columns = [histograms.column(k).to_pylist() for k in ["gid", *keys]]
    stages = histograms.column("stage").to_pylist()
    totals = histograms.column("total").to_pylist()
    found: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for j, owner in enumerate(zip(*columns, strict=True)):
        total = totals[j]
        stats: dict[str, Any] = {"count": total}
        for name, q, lo, hi in zip(_PERCENTILES, QUANTILES, lows, highs, strict=True):
            low, high = lo[j], hi[j]
            stats[name] = low if low == high else _interpolated(total, q, low, high)
        found.setdefault(owner, {})[_STAGE_NAMES[stages[j]]] = stats
    for row in rows:
        row["delays"] = found.get(tuple(row[k] for k in ["gid", *keys]), {})


def _order_statistics(
    histograms: pa.Table,
) -> tuple[list[list[float]], list[list[float]]]:
    """For each q of ``QUANTILES``, the values at 0-based positions floor and
    ceil of ``(total - 1) * q`` of each histogram's values in order: the two
    order statistics ``quantile_cont`` interpolates between.

    All histograms are laid end to end: a value covers the positions from the
    running count before it up to its own, and exactly one covers each target.
    The arithmetic is Arrow's, outside the interpreter's lock.
    """
    nested = histograms.column("vn").combine_chunks()
    pairs = pc.list_flatten(nested)
    counts, values = pairs.field("n"), pairs.field("v")
    totals = histograms.column("total").combine_chunks()
    upto = pc.cumulative_sum(counts).cast(pa.float64())
    before = pc.subtract(upto, counts.cast(pa.float64()))
    start = pc.subtract(pc.cumulative_sum(totals), totals).cast(pa.float64())
    owner = pc.list_parent_indices(nested)
    last = pc.subtract(totals.cast(pa.float64()), 1.0)
    lows: list[list[float]] = []
    highs: list[list[float]] = []
    for q in QUANTILES:
        rn = pc.multiply(last, q)
        for position, out in ((pc.floor(rn), lows), (pc.ceil(rn), highs)):
            at = pc.take(pc.add(start, position), owner)
            covers = pc.and_(pc.less_equal(before, at), pc.less(at, upto))
            out.append(pc.filter(values, covers).to_pylist())
    return lows, highs


def _lifetimes_span(
    db: duckdb.DuckDBPyConnection, messages: pa.Table | None
) -> tuple[float, float] | None:
    """The times that the queue-ID lifetimes of the batch's attempts cover, from
    the batch's own message rows (a lifetime's ``first_ts`` and ``last_ts`` span
    every line of it, its attempts included), or None when a lifetime's row is
    not in the batch (a batch written without its messages)."""
    if messages is None or messages.num_rows == 0:
        return None
    db.register("_rollup_messages", messages.select(["key", "first_ts", "last_ts"]))
    try:
        found = db.execute(
            "SELECT min(m.first_ts), max(m.last_ts), count(*) - count(m.key) "
            "FROM (SELECT DISTINCT message_key FROM _rollup_batch) b "
            "LEFT JOIN _rollup_messages m ON m.key = b.message_key"
        ).fetchall()
    finally:
        db.unregister("_rollup_messages")
    first, last, missing = found[0]
    if missing or first is None:
        return None
    return float(first), float(last)


def _any_built(
    db: duckdb.DuckDBPyConnection, width: float, first: float, last: float
) -> bool:
    """Whether a bucket of ``width`` between the times ``first`` and ``last``
    is built: most batches fall in the day being written, which is not, and
    skip adding up their rows at that width."""
    found = db.execute(
        "SELECT count(*) FROM rollup_buckets WHERE width = ? "
        "AND bucket BETWEEN ? AND ?",
        [width, math.floor(first / width) * width, math.floor(last / width) * width],
    ).fetchall()
    return bool(found[0][0])


def _built(cur: duckdb.DuckDBPyConnection) -> dict[float, list[float]]:
    """The built buckets of each coarser rollup width, in order."""
    if len(ROLLUP_WIDTHS) < 2:
        return {}
    found = cur.execute(
        "SELECT width, list(bucket ORDER BY bucket) FROM rollup_buckets "
        "WHERE width > ? GROUP BY width",
        [ROLLUP_WIDTHS[0]],
    ).fetchall()
    built: dict[float, list[float]] = {width: [] for width in ROLLUP_WIDTHS[1:]}
    built.update((width, buckets) for width, buckets in found)
    return built


def _fetch_dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _quantile(values: Sequence[float], q: float) -> float:
    """``quantile_cont`` of sorted ``values`` (for the arithmetic check)."""
    rn = (len(values) - 1) * q
    lo, hi = values[math.floor(rn)], values[math.ceil(rn)]
    return _interpolated(len(values), q, lo, hi)


def _interpolated(count: int, q: float, lo: float, hi: float) -> float:
    """DuckDB's ``quantile_cont`` between its two order statistics ``lo``, ``hi``.

    The engine returns ``lo`` when both are equal, else ``lo * (1 - d) + hi * d``
    with ``d`` the fraction of ``(count - 1) * q``; its build fuses the first
    product with the sum, so that is rounded once here too.
    """
    if lo == hi:
        return lo
    rn = (count - 1) * q
    d = rn - math.floor(rn)
    return _fma(lo, 1.0 - d, hi * d)


def _fma(a: float, b: float, c: float) -> float:
    """``a * b + c`` rounded once: Dekker's exact product, then an exact sum."""
    product = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    error = ((a_hi * b_hi - product) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return math.fsum((product, error, c))


def _split(x: float) -> tuple[float, float]:
    """Veltkamp's split of a double into two halves of 26 significant bits."""
    t = 134217729.0 * x  # 2**27 + 1
    high = t - (t - x)
    return high, x - high


# Values like Postfix's delays (two decimals, up to hours), in groups of a few and
# of hundreds, for ``DuckDBStore._histogram_percentiles``.
_PERCENTILE_CHECK = f"""
    SELECT quantile_cont(v, {list(QUANTILES)}), list(v) FROM (
        SELECT i % 61 AS k, round(((i * 7919) % 10007) / (1 + i % 13), 2) AS v
        FROM range(20000) t(i)
        UNION ALL
        SELECT 100 + i % 997, round(((i * 104729) % 9973) / (1 + i % 29), 2)
        FROM range(6000) t(i)
    ) GROUP BY k
"""


def _stats(row: Mapping[str, Any], names: list[GroupBy], cls: type[_G]) -> _G:
    """A ``GroupStats`` (or ``TimePoint``, with the row's bucket) from one row of
    ``_counts``, validated in one call: a summary by domain has hundreds."""
    delays = row.get("delays")
    if delays is None:
        # The engine's percentiles (``_quantile_sql``), one column per stage.
        delays = {
            name: {
                "count": row[f"n_{name}"],
                **dict(zip(_PERCENTILES, values, strict=True)),
            }
            for name in _STAGE_NAMES
            if row[f"n_{name}"] and (values := row[f"q_{name}"])
        }
    data = {
        "key": {name: row[f"g{i}"] for i, name in enumerate(names)},
        "delivered": row["delivered"],
        "bounced": row["bounced"],
        "expired": row["expired"],
        "deferred": row["deferred"],
        "deferral_attempts": row["deferral_attempts"],
        "delays": delays,
    }
    if cls is TimePoint:
        data["ts"] = row["bucket"]
    return cls.model_validate(data)


def _quiet(connection: duckdb.DuckDBPyConnection) -> None:
    """No progress bar: the engine would draw one on the terminal for a long
    query (a migration filling the rollups), over the CLI's own output."""
    connection.execute("SET enable_progress_bar = false")


def open_duckdb(path: Path | str, **options: Any) -> DuckDBStore:
    """Open (creating and migrating as needed) the DuckDB store at ``path``."""
    return DuckDBStore(path, **options)
