"""Rows to columns: a ``Batch`` of row objects as Arrow tables, one per row type.

Backends write whole columns (DuckDB scans an Arrow table in one ``INSERT ...
SELECT``; ClickHouse takes Arrow inserts), never one row at a time. The Arrow schema
of each table is derived from the row dataclass in ``mailtriage.parsers.model``, so a
field added there reaches the writer without a second list to keep in step (the
backend's migration must add the column). Ingest worker processes send
``ColumnBatch``es to the writing process: Arrow tables pickle as compact buffers.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mailtriage.parsers.model import (
    AttemptRow,
    Batch,
    DovecotRow,
    EventRow,
    LineRow,
    MessageRow,
    RejectRow,
    UnparsedRow,
)

ROW_TYPES: dict[str, type[Any]] = {
    "messages": MessageRow,
    "attempts": AttemptRow,
    "rejects": RejectRow,
    "dovecot": DovecotRow,
    "events": EventRow,
    "lines": LineRow,
    "unparsed": UnparsedRow,
}
"""``Batch`` attribute -> row type; the attribute is also the table's name."""

_ARROW_TYPES: dict[type, pa.DataType] = {
    str: pa.string(),
    float: pa.float64(),
    int: pa.int64(),
    bool: pa.bool_(),
}


def _arrow_type(annotation: Any) -> tuple[pa.DataType, bool]:
    """The Arrow type of a field annotation and whether it is nullable."""
    if isinstance(annotation, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            return _arrow_type(inner[0])[0], True
    if annotation in _ARROW_TYPES:
        return _ARROW_TYPES[annotation], False
    raise TypeError(f"no Arrow type for field annotation {annotation!r}")


def arrow_schema(row_type: type[Any]) -> pa.Schema:
    """The Arrow schema of a row dataclass, field by field."""
    hints = typing.get_type_hints(row_type)
    columns = []
    for f in fields(row_type):
        arrow, nullable = _arrow_type(hints[f.name])
        columns.append(pa.field(f.name, arrow, nullable=nullable))
    return pa.schema(columns)


SCHEMAS: dict[str, pa.Schema] = {
    name: arrow_schema(row_type) for name, row_type in ROW_TYPES.items()
}


@dataclass(slots=True)
class ColumnBatch:
    """A ``Batch`` as Arrow tables (only the non-empty ones) plus its counters."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    lines_read: int = 0
    lines_unparsed: int = 0
    lines_by_program: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(t.num_rows for t in self.tables.values())

    def rows(self, name: str) -> int:
        """How many rows of table ``name`` the batch holds."""
        table = self.tables.get(name)
        return 0 if table is None else table.num_rows


def _table(name: str, rows: Sequence[Any]) -> pa.Table:
    schema = SCHEMAS[name]
    arrays = [
        pa.array(list(map(attrgetter(col.name), rows)), type=col.type) for col in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def to_columns(batch: Batch) -> ColumnBatch:
    """The rows of ``batch`` as Arrow tables.

    A message may appear more than once in a batch (taken, changed, taken again);
    only its last state is kept, which is what an upsert by key would leave.
    """
    out = ColumnBatch(
        lines_read=batch.lines_read,
        lines_unparsed=batch.lines_unparsed,
        lines_by_program=dict(batch.lines_by_program),
    )
    for name in ROW_TYPES:
        rows: list[Any] = getattr(batch, name)
        if name == "messages" and rows:
            rows = list({row.key: row for row in rows}.values())
        if rows:
            out.tables[name] = _table(name, rows)
    return out


def concat(parts: Sequence[ColumnBatch]) -> ColumnBatch:
    """One batch of the rows of ``parts``, in order; counters added up.

    As in ``to_columns``, a message that several parts hold (one lifetime taken
    again after it changed) is kept once, in the state of the last part.
    """
    out = ColumnBatch()
    for name in ROW_TYPES:
        tables = [p.tables[name] for p in parts if name in p.tables]
        if len(tables) == 1:
            out.tables[name] = tables[0]
        elif tables:
            table = pa.concat_tables(tables)
            out.tables[name] = _last_per_key(table) if name == "messages" else table
    for part in parts:
        out.lines_read += part.lines_read
        out.lines_unparsed += part.lines_unparsed
        for program, count in part.lines_by_program.items():
            out.lines_by_program[program] = out.lines_by_program.get(program, 0) + count
    return out


def _last_per_key(table: pa.Table) -> pa.Table:
    """The rows of ``table`` with the last row of each ``key`` only."""
    if pc.count_distinct(table.column("key")).as_py() == table.num_rows:
        return table
    numbered = table.append_column("_row", pa.array(range(table.num_rows)))
    last = numbered.group_by("key").aggregate([("_row", "max")]).column("_row_max")
    return table.take(pc.take(last, pc.sort_indices(last)))


# ------------------------------------------------ columns the queries group by

ATTEMPT_GROUPS: dict[str, str] = {
    "tenant": "tenant",
    "domain": "recipient_domain",
    "transport": "transport",
    "cause": "cause",
    "relay": "relay_host",
    "host": "host",
}
"""The ``attempts`` column behind each group-by name of the count queries."""

DOVECOT_GROUPS: dict[str, str] = {
    "tenant": "tenant",
    "domain": "recipient_domain",
    "transport": "service",
    "cause": "cause",
    "host": "host",
}
"""The same for the ``dovecot`` table."""

STAGE_COLUMNS = (
    ("total", "delay"),
    ("before_queue_manager", "delay_before_qmgr"),
    ("queue_manager", "delay_in_qmgr"),
    ("connection_setup", "delay_conn_setup"),
    ("transmission", "delay_transmission"),
)
"""Each delay stage's name in the results and its ``attempts`` column."""
