"""The ingest pipeline: raw lines to committed rows, with checkpoints.

    lines ─► LineParser ─► Assembler (one per partition) ─► take() ─► Store.write
                                                  snapshot() ─┘  (one transaction)

**Live use (``mailtriage serve``).** One ``IngestPipeline`` per process, driven by
one writer thread::

    pipeline = IngestPipeline(store, settings)
    source = pipeline.source_id(path, os.fstat(fd), first_line)  # files only
    start = pipeline.committed_offset(source) or 0  # resume here
    pipeline.feed_lines(source, lines, offset_after_lines)  # repeatedly
    if pipeline.due():  # ingest.batch_lines or ingest.batch_seconds reached
        batch = pipeline.flush()  # rows + checkpoints + state, one transaction

``feed_lines`` takes complete lines of one source in order, with the byte offset
after them (None for sources without offsets: syslog, pushed lines) and, for lines
whose frame names no host, the ``host`` they came from. ``flush`` commits what was
fed since the last flush together with every fed source's checkpoint and the
assemblers' snapshot, and returns the committed ``Batch`` (the metrics observe it).
A failed flush keeps its rows and is retried by the next one. The pipeline is not
thread-safe: one thread feeds and flushes. It also implements the follower's
``FileSources`` protocol (``source_id``, ``committed_offset``).

**Files (``mailtriage ingest``).** ``ingest_files(store, settings, paths,
workers=N)`` identifies and orders the inputs (``mailtriage.app.ingest.files``),
skips what the checkpoints say was read, and feeds the rest through a pipeline made
with ``files=True`` (commits every ``ingest.file_batch_lines``) and
``write_behind=True``: each commit runs on a writer thread while parsing goes on,
since DuckDB releases the GIL while it inserts. Rows become Arrow columns every
``ingest.file_column_lines`` lines and wait as columns for their commit: a commit
of many lines costs DuckDB far less per row than several small ones (its
write-ahead log and checkpoints work per commit), while the rows held as Python
objects, the bulk of the memory, stay few. Known shortcoming: a file ingest keeps
about 1.4 of 2 cores busy, well below the 200,000 lines/s target whatever the
parsing speed or the ``workers``: the writer thread's inserts, rollups and commits
overlap the parsing only in part, both threads needing the interpreter lock.

**Restart.** The pipeline restores its assemblers from the state last committed for
its stream, and every source resumes at its committed offset: the state and the
offsets come from the same transaction, so lines are neither lost nor counted
twice.

**Partitions.** Queue IDs are per host, so lines can be split by host (a cheap
look at the envelope, ``host_key``) into partitions, each with its own assembler;
the rows are the same whatever the number of partitions. ``ingest_files`` with
``workers > 1`` runs the partitions in worker processes (each reads the whole input
and keeps its partitions' lines) while the main process writes. The partition count
is part of the committed state: a database first ingested with N partitions keeps N
(the worker count is capped at it), and a live pipeline runs those N in-process.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import queue
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
from loguru import logger

from mailtriage.app.ingest.files import (
    READ_BYTES,
    STDIN,
    LogSource,
    head_hash,
    identify,
    identify_stdin,
    order_sources,
    read_chunks,
    source_id_for,
)
from mailtriage.app.settings import Settings, TenantSettings
from mailtriage.app.store.base import Checkpoint, Store
from mailtriage.app.store.columns import ColumnBatch, concat, to_columns
from mailtriage.errors import ConfigError, InputError, MailtriageError, StoreError
from mailtriage.parsers.assembler import Assembler
from mailtriage.parsers.line import LineParser
from mailtriage.parsers.model import Batch
from mailtriage.parsers.tenants import TenantMap


class BatchSink(Protocol):
    """What a pipeline commits to: a ``Store``, or the collector's spool
    (``mailtriage.app.ingest.collect.Spool``)."""

    def write(
        self,
        batch: Batch | ColumnBatch,
        checkpoint: Checkpoint | Sequence[Checkpoint] | None = None,
        *,
        state: bytes | None = None,
        stream: str = "main",
    ) -> None: ...

    def checkpoint(self, source_id: str) -> Checkpoint | None: ...

    def state(self, stream: str = "main") -> bytes | None: ...


_STATE_MAGIC = b"MTS1"
_ROUTE_CACHE_LIMIT = 100_000
_MONTHS = frozenset(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()  # noqa: SIM905
)
WORKER_POLL_SECONDS = 0.5
HANDOFF_SECONDS = 0.0005
"""The GIL switch interval while ingesting (``prompt_handoffs``)."""


@contextmanager
def fewer_collections(threshold: int = 50_000) -> Iterator[None]:
    """Run the cyclic garbage collector less often while ingesting.

    Parsing allocates a few objects per line and keeps many of them (open
    messages, rows waiting for their commit); with CPython's default threshold of
    700 allocations the collector runs every hundred lines or so and costs a
    fifth of the parsing time. Reference counting frees everything else as usual.
    """
    old = gc.get_threshold()
    gc.set_threshold(threshold, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


@contextmanager
def prompt_handoffs(seconds: float = HANDOFF_SECONDS) -> Iterator[None]:
    """Let threads take the GIL over from the parsing thread sooner while ingesting.

    The commit thread releases the GIL for every DuckDB call and needs it back for
    the Python between calls; the parsing thread never blocks, so CPython hands the
    GIL back only when the switch interval (5 ms by default) expires. A commit
    makes a few dozen such calls, and at 5 ms a wait the commit thread, not the
    parser, set the pace of a file ingest (measured: 80,000 against 106,000 lines/s
    on the same million-line log).
    """
    old = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@contextmanager
def returned_arrow_memory() -> Iterator[None]:
    """Allocate Arrow buffers with the C library's allocator while ingesting.

    pyarrow's default pool (mimalloc) keeps the pages of freed batches for reuse;
    with a commit's columns built, written and freed every few seconds that kept
    tens of MB more resident than malloc, which hands them back, at the same speed.
    """
    old = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(old)


def ingest_tz(settings: Settings) -> tzinfo:
    """The zone of zone-less timestamps (``[ingest] tz``)."""
    name = settings.ingest.tz
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"[ingest] tz {name!r} is not a known time zone (such as "
            "'Europe/Berlin' or 'UTC')"
        ) from exc


# ------------------------------------------------------------------ state


def pack_state(snapshots: Sequence[bytes]) -> bytes:
    """One blob of the snapshots of every partition, in partition order."""
    parts = [_STATE_MAGIC, struct.pack(">I", len(snapshots))]
    for snapshot in snapshots:
        parts.append(struct.pack(">I", len(snapshot)))
        parts.append(snapshot)
    return b"".join(parts)


def unpack_state(data: bytes) -> list[bytes]:
    """The per-partition snapshots of a blob ``pack_state`` made."""
    try:
        if data[:4] != _STATE_MAGIC:
            raise ValueError("unknown header")
        (count,) = struct.unpack_from(">I", data, 4)
        at = 8
        snapshots = []
        for _ in range(count):
            (size,) = struct.unpack_from(">I", data, at)
            snapshots.append(data[at + 4 : at + 4 + size])
            at += 4 + size
        if at != len(data) or count == 0:
            raise ValueError("length mismatch")
    except (ValueError, struct.error) as exc:
        raise StoreError(
            f"the committed ingest state is unreadable ({exc}); start again with "
            "a new database"
        ) from exc
    return snapshots


# ---------------------------------------------------------------- routing


def host_key(line: str) -> str:
    """The host the envelope of ``line`` names, read without parsing the line; ""
    for frames without a host (Dovecot's own log file) and unknown frames.

    It mirrors the frame readers of ``mailtriage.parsers.envelope`` closely
    enough that every line of one host gets the same key, which is all that
    partitioning needs: lines of one (host, queue ID) meet in one assembler.
    """
    first = line[:1]
    if first == "<":
        close = line.find(">", 1, 5)
        if close < 0:
            return ""
        line = line[close + 1 :]
        if line[:2] == "1 ":  # RFC 5424: VERSION TIMESTAMP HOSTNAME ...
            parts = line.split(" ", 3)
            return parts[2] if len(parts) > 3 and parts[2] != "-" else ""
        first = line[:1]
    if first == "{":
        return _journal_host(line)
    if first == "d" and line.startswith("dovecot: "):  # Dovecot 1.x's own log file
        line = line[9:]
        first = line[:1]
    if first.isdigit():
        space = line.find(" ", 11 if line[10:11] == " " else 0)
        if space < 0:
            return ""
        start = space + 1
        if line[start : start + 3] in _MONTHS:  # docker --timestamps before syslog
            start += 15 if line[start + 5 : start + 6] == " " else 16
    elif first == "@":
        start = 26
    else:
        end = 14 if line[5:6] == " " else 15
        if line[end : end + 1] == ".":
            end = line.find(" ", end)
            if end < 0:
                return ""
        start = end + 1
    space = line.find(" ", start)
    token = line[start:space] if space >= 0 else ""
    return "" if not token or token[-1] == ":" else token


def _journal_host(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return ""
    host = record.get("_HOSTNAME") if isinstance(record, dict) else None
    return host if isinstance(host, str) else ""


def partition_of(key: str, partitions: int) -> int:
    """The partition of a host key: a hash that every process computes alike."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


# --------------------------------------------------------------- assembly


def merge_batches(batches: Sequence[Batch]) -> Batch:
    """One batch of the rows of ``batches``, in order; counters added up."""
    if len(batches) == 1:
        return batches[0]
    out = Batch()
    for batch in batches:
        out.messages.extend(batch.messages)
        out.attempts.extend(batch.attempts)
        out.rejects.extend(batch.rejects)
        out.dovecot.extend(batch.dovecot)
        out.events.extend(batch.events)
        out.lines.extend(batch.lines)
        out.unparsed.extend(batch.unparsed)
        out.lines_read += batch.lines_read
        out.lines_unparsed += batch.lines_unparsed
        for program, count in batch.lines_by_program.items():
            out.lines_by_program[program] = out.lines_by_program.get(program, 0) + count
    return out


class AssemblyStage:
    """Line parsers (one per source) and the assemblers of the partitions this
    process owns."""

    def __init__(
        self,
        tenants: TenantMap,
        *,
        tz: tzinfo = UTC,
        year: int | None = None,
        max_open_messages: int = 200_000,
        partitions: int = 1,
        owned: Iterable[int] | None = None,
        snapshots: Mapping[int, bytes] | None = None,
        keep_lines: bool = True,
    ) -> None:
        self.partitions = max(1, partitions)
        self._tz = tz
        self._year = year
        # The memory bound holds for the whole stage, not per partition.
        per_partition = max(1, max_open_messages // self.partitions)
        self._assemblers: dict[int, Assembler] = {}
        for k in range(self.partitions) if owned is None else owned:
            data = (snapshots or {}).get(k)
            self._assemblers[k] = (
                Assembler.restore(
                    data,
                    tenants,
                    max_open_messages=per_partition,
                    keep_lines=keep_lines,
                )
                if data
                else Assembler(
                    tenants, max_open_messages=per_partition, keep_lines=keep_lines
                )
            )
        self._parsers: dict[str, LineParser] = {}
        self._routes: dict[str, int] = {}

    @property
    def owned(self) -> list[int]:
        """The partitions this stage assembles."""
        return sorted(self._assemblers)

    @property
    def open_messages(self) -> int:
        """Open queue-ID lifetimes over every owned partition."""
        return sum(a.open_messages for a in self._assemblers.values())

    def _parser(self, source_id: str, reference_ts: float | None) -> LineParser:
        parser = self._parsers.get(source_id)
        if parser is None:
            parser = LineParser(tz=self._tz, reference_ts=reference_ts, year=self._year)
            self._parsers[source_id] = parser
        return parser

    def feed(
        self,
        source_id: str,
        lines: Iterable[str],
        *,
        host: str | None = None,
        reference_ts: float | None = None,
    ) -> None:
        """Parse and assemble ``lines`` of one source (those of owned partitions)."""
        parse = self._parser(source_id, reference_ts).parse
        if self.partitions == 1 and host is None:
            feed = self._assemblers[0].feed
            for line in lines:
                env, record = parse(line)
                feed(env, record, line)
            return
        routes = self._routes
        assemblers = self._assemblers
        for line in lines:
            key = host_key(line) or host or ""
            k = routes.get(key)
            if k is None:
                if len(routes) > _ROUTE_CACHE_LIMIT:
                    routes.clear()
                k = routes[key] = partition_of(key, self.partitions)
            assembler = assemblers.get(k)
            if assembler is None:
                continue
            env, record = parse(line)
            if host is not None and env is not None and not env.host:
                env.host = host
            assembler.feed(env, record, line)

    def take(self) -> Batch:
        """The rows of every owned partition since the last take."""
        return merge_batches([self._assemblers[k].take() for k in self.owned])

    def snapshots(self) -> dict[int, bytes]:
        """The open state of every owned partition."""
        return {k: self._assemblers[k].snapshot() for k in self.owned}


def _stage_for(
    settings: Settings,
    partitions: int,
    owned: Iterable[int] | None = None,
    snapshots: Mapping[int, bytes] | None = None,
) -> AssemblyStage:
    return AssemblyStage(
        TenantMap.from_settings(settings.tenants),
        tz=ingest_tz(settings),
        year=settings.ingest.year,
        max_open_messages=settings.ingest.max_open_messages,
        partitions=partitions,
        owned=owned,
        snapshots=snapshots,
    )


# --------------------------------------------------------------- pipeline


class IngestPipeline:
    """Feeds lines through parsers and assemblers and commits them with the
    sources' checkpoints (see the module docstring for how to drive it)."""

    def __init__(
        self,
        store: BatchSink,
        settings: Settings,
        *,
        stream: str = "main",
        partitions: int | None = None,
        files: bool = False,
        write_behind: bool = False,
    ) -> None:
        self.store = store
        self.settings = settings
        self.stream = stream
        ingest = settings.ingest
        self.batch_lines = ingest.file_batch_lines if files else ingest.batch_lines
        self.column_lines = ingest.file_column_lines if files else self.batch_lines
        self._writer = _Writer(store) if write_behind else None
        state = store.state(stream)
        snapshots = unpack_state(state) if state else None
        count = len(snapshots) if snapshots else max(1, partitions or 1)
        if snapshots and partitions and partitions != count:
            logger.info(
                "keeping the partition count of the committed state",
                partitions=count,
                asked=partitions,
            )
        self._stage = _stage_for(
            settings, count, snapshots=dict(enumerate(snapshots or []))
        )
        self._positions: dict[str, Checkpoint] = {}
        self._fed_sources: set[str] = set()
        self._taken: set[str] = set()  # sources fed by this pipeline
        self._unwritten: Batch | None = None
        self._staged: list[ColumnBatch] = []  # write-behind: taken, not committed
        self._unstaged = 0
        self._fed = 0
        self._started = time.monotonic()

    @property
    def partitions(self) -> int:
        """How many partitions (assemblers) the pipeline runs."""
        return self._stage.partitions

    @property
    def pending_lines(self) -> int:
        """Lines fed since the last successful flush."""
        return self._fed

    @property
    def open_messages(self) -> int:
        """Open queue-ID lifetimes held in memory."""
        return self._stage.open_messages

    # -- sources

    def position(self, source_id: str) -> Checkpoint:
        """Where ``source_id`` stands: fed but uncommitted lines included."""
        found = self._positions.get(source_id)
        if found is None:
            found = self.store.checkpoint(source_id) or Checkpoint(
                source_id=source_id, stream=self.stream
            )
            self._positions[source_id] = found
        return found

    def register(self, source: LogSource) -> Checkpoint:
        """Record where a file source is (path, device, inode) for its checkpoint;
        returns its position."""
        current = self.position(source.source_id)
        updated = current.model_copy(
            update={
                "path": "<stdin>" if source.is_stdin else source.path,
                "device": source.device,
                "inode": source.inode,
                "head_hash": source.head_hash,
            }
        )
        self._positions[source.source_id] = updated
        return updated

    def source_id(self, path: Path, stat: os.stat_result, first_line: bytes) -> str:
        """The identity of a followed file (``FileSources`` of the follower)."""
        source_id = source_id_for(first_line)
        current = self.position(source_id)
        self._positions[source_id] = current.model_copy(
            update={
                "path": str(path),
                "device": stat.st_dev,
                "inode": stat.st_ino,
                "head_hash": head_hash(first_line),
            }
        )
        return source_id

    def committed_offset(self, source_id: str) -> int | None:
        """The offset after the last line of ``source_id`` this pipeline has taken
        (committed, or fed and committed by the next flush); None if never seen."""
        if source_id in self._taken:
            return self._positions[source_id].offset
        found = self.store.checkpoint(source_id)
        return found.offset if found is not None else None

    # -- lines

    def feed_lines(
        self,
        source_id: str,
        lines: Sequence[str],
        offset: int | None = None,
        *,
        host: str | None = None,
        reference_ts: float | None = None,
        complete: bool = False,
    ) -> None:
        """Parse and assemble ``lines`` of ``source_id``; ``offset`` is the byte
        offset after them, ``complete`` marks a source that cannot grow."""
        current = self.position(source_id)
        self._stage.feed(source_id, lines, host=host, reference_ts=reference_ts)
        update: dict[str, Any] = {"lines": current.lines + len(lines)}
        if offset is not None:
            update["offset"] = offset
        if complete:
            update["complete"] = True
        self._positions[source_id] = current.model_copy(update=update)
        self._fed_sources.add(source_id)
        self._taken.add(source_id)
        self._fed += len(lines)
        self._unstaged += len(lines)
        if self._writer is not None and self._unstaged >= self.column_lines:
            self._staged.append(to_columns(self._stage.take()))
            self._unstaged = 0

    def due(self) -> bool:
        """Whether ``batch_lines`` lines (``file_batch_lines`` for a pipeline made
        for files) or ``ingest.batch_seconds`` have gone by since the last flush."""
        if not self._fed_sources:
            return False
        if self._fed >= self.batch_lines:
            return True
        return time.monotonic() - self._started >= self.settings.ingest.batch_seconds

    def flush(self) -> Batch:
        """Commit the rows, checkpoints and state; returns the rows.

        With ``write_behind`` the commit runs on the writer thread while the caller
        goes on parsing; a failed commit raises from the next ``flush`` or from
        ``close``. Otherwise a failed commit raises here and its rows are kept for
        the next flush.
        """
        if self._writer is not None:
            self._writer.check()
        batch = self._stage.take()
        if self._unwritten is not None:
            batch = merge_batches([self._unwritten, batch])
        checkpoints = [self._positions[s] for s in sorted(self._fed_sources)]
        if not checkpoints and not len(batch):
            self._started = time.monotonic()
            return batch
        state = pack_state(
            [data for _, data in sorted(self._stage.snapshots().items())]
        )
        if self._writer is not None:
            columns = concat([*self._staged, to_columns(batch)])
            self._writer.submit(columns, checkpoints, state, self.stream)
            self._staged.clear()
            self._unstaged = 0
        else:
            try:
                self.store.write(batch, checkpoints, state=state, stream=self.stream)
            except MailtriageError:
                self._unwritten = batch
                raise
        logger.debug(
            "committed batch",
            lines=self._fed,
            rows=len(batch),
            sources=len(checkpoints),
            open_messages=self._stage.open_messages,
        )
        self._unwritten = None
        self._fed_sources.clear()
        self._fed = 0
        self._started = time.monotonic()
        return batch

    def close(self) -> None:
        """Flush, and wait for the writer thread (write-behind) to finish."""
        try:
            self.flush()
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


class _Writer:
    """One thread that commits batches in order while the caller parses on.

    DuckDB releases the GIL while it inserts and commits, so on two cores the
    commit of one batch overlaps the parsing of the next. The queue holds one
    batch: a slow store slows the parser down rather than filling memory.
    """

    def __init__(self, store: BatchSink) -> None:
        self.store = store
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(
            target=self._run, name="mailtriage-ingest-commit", daemon=True
        )
        self._thread.start()

    def check(self) -> None:
        """Raise the error of a failed commit, if any."""
        if self.error is not None:
            raise self.error

    def submit(
        self,
        columns: ColumnBatch,
        checkpoints: list[Checkpoint],
        state: bytes,
        stream: str,
    ) -> None:
        self.check()
        self._queue.put((columns, checkpoints, state, stream))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self.check()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # after a failure nothing more is committed
            columns, checkpoints, state, stream = item
            try:
                self.store.write(columns, checkpoints, state=state, stream=stream)
            except BaseException as exc:  # raised in the caller by check()
                self.error = exc


# ------------------------------------------------------------ file ingest


@dataclass(slots=True)
class SourceResult:
    """What ``ingest_files`` did with one input."""

    path: str
    status: str  # read | resumed | skipped | empty | duplicate
    lines: int = 0
    offset: int = 0
    source_id: str | None = None


@dataclass(slots=True)
class IngestResult:
    """A summary of one ``ingest_files`` run."""

    sources: list[SourceResult] = field(default_factory=list)
    lines: int = 0
    bytes: int = 0
    seconds: float = 0.0
    workers: int = 1
    partitions: int = 1

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class Progress:
    """Progress over all inputs: bytes as stored (compressed bytes for compressed
    files), lines fed, and the input being read."""

    path: str
    done_bytes: int
    total_bytes: int
    lines: int


ProgressHook = Callable[[Progress], None]


@dataclass(slots=True)
class _PlanItem:
    source: LogSource
    start: int
    result: SourceResult
    raw_total: int


def _plan(
    store: Store,
    settings: Settings,
    paths: Sequence[str],
    stdin: BinaryIO | None,
    result: IngestResult,
) -> tuple[list[_PlanItem], BinaryIO | None]:
    """Identify every input (InputError before anything is written), order them
    and decide where each starts."""
    found: list[LogSource] = []
    stdin_stream: BinaryIO | None = None
    for path in paths:
        if path == STDIN:
            if stdin is None:
                raise InputError("standard input is not available")
            source, stdin_stream = identify_stdin(stdin)
        else:
            source = identify(path)
        if source is None:
            result.sources.append(SourceResult(path=path, status="empty"))
        else:
            found.append(source)
    ordered = order_sources(found, ingest_tz(settings), settings.ingest.year)
    for source in found:
        if source not in ordered:
            result.sources.append(
                SourceResult(path=source.path, status="duplicate", source_id=None)
            )
    plan: list[_PlanItem] = []
    for source in ordered:
        item = _plan_item(store, source)
        if item.result.status == "skipped":
            result.sources.append(item.result)
        else:
            plan.append(item)
    return plan, stdin_stream


def _plan_item(store: Store, source: LogSource) -> _PlanItem:
    cp = store.checkpoint(source.source_id)
    result = SourceResult(path=source.path, status="read", source_id=source.source_id)
    size = source.size or 0
    if cp is None:
        return _PlanItem(source, 0, result, size)
    result.offset = cp.offset
    plain = source.compression is None and not source.is_stdin
    if cp.complete or (plain and cp.offset >= size):
        if plain and cp.offset > size:
            logger.warning(
                "file is shorter than its checkpoint; not read again",
                path=source.path,
                size=size,
                offset=cp.offset,
            )
        result.status = "skipped"
        return _PlanItem(source, cp.offset, result, 0)
    result.status = "resumed"
    raw_total = size - cp.offset if plain else size
    return _PlanItem(source, cp.offset, result, raw_total)


def ingest_files(
    store: Store,
    settings: Settings,
    paths: Sequence[str],
    *,
    workers: int = 1,
    stdin: BinaryIO | None = None,
    progress: ProgressHook | None = None,
) -> IngestResult:
    """Ingest files (and ``-`` for ``stdin``) into ``store``, resuming each from
    its checkpoint; see the module docstring for partitions and workers."""
    with fewer_collections(), prompt_handoffs(), returned_arrow_memory():
        return _ingest_files(store, settings, paths, workers, stdin, progress)


def _ingest_files(
    store: Store,
    settings: Settings,
    paths: Sequence[str],
    workers: int,
    stdin: BinaryIO | None,
    progress: ProgressHook | None,
) -> IngestResult:
    started = time.perf_counter()
    result = IngestResult()
    plan, stdin_stream = _plan(store, settings, paths, stdin, result)
    state = store.state()
    stored = unpack_state(state) if state else None
    partitions = len(stored) if stored else max(1, workers)
    files = [item for item in plan if not item.source.is_stdin]
    workers = min(max(1, workers), partitions)
    result.partitions = partitions
    result.workers = workers
    tracker = _Tracker(plan, progress)
    if workers > 1 and files:
        _ingest_parallel(store, settings, files, workers, partitions, tracker)
        rest = [item for item in plan if item.source.is_stdin]
    else:
        rest = plan
    if rest:
        pipeline = IngestPipeline(
            store, settings, partitions=partitions, files=True, write_behind=True
        )
        try:
            for item in rest:
                _ingest_one(pipeline, item, stdin_stream, tracker)
        finally:
            pipeline.close()
    result.sources.extend(item.result for item in plan)
    result.lines = tracker.lines
    result.bytes = tracker.done_bytes
    result.seconds = time.perf_counter() - started
    logger.info(
        "ingest finished",
        lines=result.lines,
        seconds=round(result.seconds, 3),
        workers=workers,
        partitions=partitions,
    )
    return result


class _Tracker:
    """Adds up lines and bytes and tells the progress hook."""

    def __init__(self, plan: Sequence[_PlanItem], hook: ProgressHook | None) -> None:
        self.hook = hook
        self.total_bytes = sum(item.raw_total for item in plan)
        self.done_bytes = 0
        self.lines = 0
        self._base = 0

    def start(self) -> None:
        self._base = self.done_bytes

    def advance(self, item: _PlanItem, lines: int, raw_pos: int) -> None:
        self.lines += lines
        item.result.lines += lines
        start = item.start if item.source.compression is None else 0
        self.done_bytes = self._base + max(0, raw_pos - start)
        if self.hook is not None:
            self.hook(
                Progress(
                    item.source.path, self.done_bytes, self.total_bytes, self.lines
                )
            )

    def finish(self, item: _PlanItem) -> None:
        self.done_bytes = self._base + item.raw_total


def read_size(batch_lines: int) -> int:
    """Bytes to read at a time so that a batch of ``batch_lines`` lines takes a few
    reads (commits happen between reads): about 140 bytes a line, 64 kB to 1 MB."""
    return min(READ_BYTES, max(1 << 16, batch_lines * 140 // 4))


def _ingest_one(
    pipeline: IngestPipeline,
    item: _PlanItem,
    stdin_stream: BinaryIO | None,
    tracker: _Tracker,
) -> None:
    source = item.source
    pipeline.register(source)
    logger.info("reading", path=source.path, start=item.start)
    tracker.start()
    stream = stdin_stream if source.is_stdin else None
    can_complete = source.compression is not None and not source.is_stdin
    size = read_size(pipeline.batch_lines)
    for chunk in read_chunks(source, item.start, stream=stream, read_bytes=size):
        pipeline.feed_lines(
            source.source_id,
            chunk.lines,
            chunk.end,
            reference_ts=source.mtime,
            complete=chunk.eof and can_complete,
        )
        item.result.offset = chunk.end
        tracker.advance(item, len(chunk.lines), chunk.raw_pos)
        if pipeline.due():
            pipeline.flush()
    pipeline.flush()
    tracker.finish(item)


# -------------------------------------------------------- worker processes


@dataclass(slots=True)
class _Job:
    """What one worker process does: the files, its partitions and their state."""

    sources: list[tuple[LogSource, int]]
    partitions: int
    owned: list[int]
    snapshots: dict[int, bytes]
    tenants: dict[str, TenantSettings]
    tz: str
    year: int | None
    max_open_messages: int
    segment_lines: int


@dataclass(slots=True)
class _Segment:
    """The rows of one segment of one file from one worker, and its state after."""

    index: int
    end: int
    eof: bool
    raw_pos: int
    lines: int
    columns: ColumnBatch
    snapshots: dict[int, bytes]


def _worker(job: _Job, out: Any) -> None:
    """A worker process: parse and assemble the owned partitions of every file,
    sending a segment every ``segment_lines`` lines and at each file's end."""
    try:
        gc.set_threshold(50_000, *gc.get_threshold()[1:])
        pa.set_memory_pool(pa.system_memory_pool())  # returned_arrow_memory
        settings = Settings.model_validate(
            {
                "tenants": job.tenants,
                "ingest": {
                    "tz": job.tz,
                    "year": job.year,
                    "max_open_messages": job.max_open_messages,
                },
            }
        )
        stage = _stage_for(settings, job.partitions, job.owned, job.snapshots)
        for index, (source, start) in enumerate(job.sources):
            count = 0
            size = read_size(job.segment_lines)
            for chunk in read_chunks(source, start, read_bytes=size):
                stage.feed(source.source_id, chunk.lines, reference_ts=source.mtime)
                count += len(chunk.lines)
                if count >= job.segment_lines or chunk.eof:
                    columns = to_columns(stage.take())
                    out.put(
                        _Segment(
                            index,
                            chunk.end,
                            chunk.eof,
                            chunk.raw_pos,
                            count,
                            columns,
                            stage.snapshots(),
                        )
                    )
                    count = 0
        out.put(None)
    except MailtriageError as exc:
        out.put(str(exc))
    except Exception as exc:  # reported to the main process, which raises
        out.put(f"ingest worker failed: {type(exc).__name__}: {exc}")


def _ingest_parallel(
    store: Store,
    settings: Settings,
    plan: Sequence[_PlanItem],
    workers: int,
    partitions: int,
    tracker: _Tracker,
) -> None:
    state = store.state()
    current: list[bytes] = unpack_state(state) if state else [b""] * partitions
    context = multiprocessing.get_context("spawn")
    queues = [context.Queue(maxsize=4) for _ in range(workers)]
    procs = []
    for w in range(workers):
        owned = [k for k in range(partitions) if k % workers == w]
        job = _Job(
            sources=[(item.source, item.start) for item in plan],
            partitions=partitions,
            owned=owned,
            snapshots={k: current[k] for k in owned if current[k]},
            tenants=settings.tenants,
            tz=settings.ingest.tz,
            year=settings.ingest.year,
            max_open_messages=settings.ingest.max_open_messages,
            segment_lines=min(
                settings.ingest.file_column_lines, settings.ingest.file_batch_lines
            ),
        )
        proc = context.Process(
            target=_worker, args=(job, queues[w]), name=f"mailtriage-ingest-{w}"
        )
        proc.start()
        procs.append(proc)
    try:
        commit_lines = settings.ingest.file_batch_lines
        _collect(store, plan, queues, procs, current, tracker, commit_lines)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)


def _collect(
    store: Store,
    plan: Sequence[_PlanItem],
    queues: Sequence[Any],
    procs: Sequence[Any],
    current: list[bytes],
    tracker: _Tracker,
    commit_lines: int,
) -> None:
    """Write the segments of all workers, one transaction per ``commit_lines``
    lines and at each file's end, on a writer thread so that receiving the next
    segments overlaps the commit."""
    writer = _Writer(store)
    try:
        _collect_into(
            writer, store, plan, queues, procs, current, tracker, commit_lines
        )
    finally:
        writer.close()


def _collect_into(
    writer: _Writer,
    store: Store,
    plan: Sequence[_PlanItem],
    queues: Sequence[Any],
    procs: Sequence[Any],
    current: list[bytes],
    tracker: _Tracker,
    commit_lines: int,
) -> None:
    positions: dict[int, Checkpoint] = {}
    cp = Checkpoint(source_id="")
    pending: list[ColumnBatch] = []
    pending_lines = 0
    last_index = -1
    while True:
        segments = [_receive(q, p) for q, p in zip(queues, procs, strict=True)]
        if all(s is None for s in segments):
            if pending:  # a file's last segment says eof; this is only a guard
                writer.submit(concat(pending), [cp], pack_state(current), "main")
            return
        parts = [s for s in segments if s is not None]
        if len(parts) != len(segments) or len({(s.index, s.end) for s in parts}) != 1:
            raise InputError("ingest workers disagree on the input; was it changed?")
        first = parts[0]
        item = plan[first.index]
        if first.index != last_index:
            tracker.start()
            last_index = first.index
        for segment in parts:
            for k, data in segment.snapshots.items():
                current[k] = data
        cp = positions.get(first.index) or _initial_checkpoint(store, item.source)
        cp = cp.model_copy(
            update={
                "offset": first.end,
                "lines": cp.lines + first.lines,
                "complete": first.eof and item.source.compression is not None,
            }
        )
        positions[first.index] = cp
        pending.extend(s.columns for s in parts)
        pending_lines += first.lines
        if pending_lines >= commit_lines or first.eof:
            # Segments end at each file's end: a commit covers one file.
            columns = concat(pending)
            writer.submit(columns, [cp], pack_state(current), "main")
            logger.debug(
                "committed batch", lines=pending_lines, rows=len(columns), sources=1
            )
            pending, pending_lines = [], 0
        item.result.offset = first.end
        tracker.advance(item, first.lines, first.raw_pos)
        if first.eof:
            tracker.finish(item)


def _initial_checkpoint(store: Store, source: LogSource) -> Checkpoint:
    found = store.checkpoint(source.source_id) or Checkpoint(source_id=source.source_id)
    return found.model_copy(
        update={
            "path": source.path,
            "device": source.device,
            "inode": source.inode,
            "head_hash": source.head_hash,
        }
    )


def _receive(q: Any, proc: Any) -> _Segment | None:
    """The next message of one worker; InputError when it failed or died."""
    while True:
        try:
            message = q.get(timeout=WORKER_POLL_SECONDS)
        except queue.Empty:
            if not proc.is_alive():
                raise InputError(
                    f"ingest worker {proc.name} stopped (exit code {proc.exitcode})"
                ) from None
            continue
        if isinstance(message, str):
            raise InputError(message)
        return message if isinstance(message, _Segment) else None
