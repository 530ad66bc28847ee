"""The per-host collector: parse and assemble where the log is written, ship rows.

    followers ─► IngestQueue ─► IngestWriter ─► IngestPipeline ─► Spool (fsync)
                                                                    │
                     Shipper ◄──── pending batches, in order ───────┘
                        │ HTTP: POST /v1/ingest (application/x-mailtriage-batch+json)
                        └ or straight into a store (clickhouse://, chdb://, duckdb:)

Queue IDs are per host, so a collector parses and assembles the lines of its own
host and ships **records**: the assembled rows of a ``Batch``, as columns. The
Postfix-to-Dovecot join needs nothing host-local: both sides carry one normalised
key (``AttemptRow.dovecot_key``) and the store joins on it, whichever hosts logged
the two sides.

**The spool.** Every batch the pipeline commits is a file in the spool directory,
written to a temporary name, fsync'd and renamed (then the directory is fsync'd):
the rename is the commit. The file holds the batch as it will be sent (compressed),
the checkpoints of the followed files and the assemblers' open state, so the
newest file is the collector's committed position, and a collector killed at any
moment restarts from it with nothing lost and nothing read twice. The shipper
sends the files in order and deletes a file only after the destination
acknowledged it (``acked`` records the last one); the newest file stays as the
position.

**No duplicates downstream.** Each spool has an identity (``host/random``), and each
batch a number. The receiving store keeps the last number it wrote for each
collector as a checkpoint (``collector:<identity>``, ``offset`` = batch number), and
writes the batch's rows and that checkpoint in one commit (``Store.write``): a batch
at or below the checkpoint is acknowledged and skipped. So a batch sent again after
an outage, a timeout or a restart of either side is counted once. A new spool
directory is a new identity: its batches are never mistaken for old ones (but a
collector without its spool reads its files again from the start).

One writer per collector identity: a collector ships to one destination, and with
ClickHouse each identity is a stream of its own (see ``store.clickhouse``).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
from loguru import logger

from mailtriage.app.ingest.files import source_id_for
from mailtriage.app.ingest.follow import Follower
from mailtriage.app.ingest.live import Chunk, CommitHook, LiveIngest
from mailtriage.app.ingest.pipeline import IngestPipeline
from mailtriage.app.ingest.push import PushBody
from mailtriage.app.metrics import MetricsObserver
from mailtriage.app.settings import Settings
from mailtriage.app.store.base import Checkpoint, Store
from mailtriage.app.store.columns import ROW_TYPES, SCHEMAS, ColumnBatch, to_columns
from mailtriage.errors import ConfigError, InputError, QueryError, StoreError
from mailtriage.parsers.model import Batch

BATCH_MEDIA_TYPE = "application/x-mailtriage-batch+json"
BATCH_FORMAT = 1
COLLECTOR_PREFIX = "collector:"
COLLECT_BATCH_LINES = 5_000
"""Lines per shipped batch at most: a batch with its raw lines stays well under the
service's 16 MB body limit."""

# ------------------------------------------------------------------ wire format


@dataclass(slots=True)
class ShippedBatch:
    """One committed batch of one collector, as shipped."""

    collector: str
    host: str
    seq: int
    columns: ColumnBatch


def encode_batch(batch: ShippedBatch) -> bytes:
    """The JSON body of the record form: the rows of each table as columns."""
    cols = batch.columns
    document = {
        "format": BATCH_FORMAT,
        "collector": batch.collector,
        "host": batch.host,
        "seq": batch.seq,
        "lines_read": cols.lines_read,
        "lines_unparsed": cols.lines_unparsed,
        "lines_by_program": cols.lines_by_program,
        "tables": {name: t.to_pydict() for name, t in cols.tables.items()},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode_batch(document: Mapping[str, Any] | bytes) -> ShippedBatch:
    """A shipped batch from its JSON; QueryError (HTTP 400) names what is wrong.

    Columns a newer collector sends that this version lacks are ignored; columns
    it leaves out are NULL where the row type allows it.
    """
    if isinstance(document, bytes):
        try:
            document = json.loads(document)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad(f"the batch is not JSON ({exc})") from exc
    if not isinstance(document, Mapping):
        raise _bad("the batch must be a JSON object")
    if document.get("format") != BATCH_FORMAT:
        raise _bad(f"format must be {BATCH_FORMAT}, not {document.get('format')!r}")
    collector, host = document.get("collector"), document.get("host")
    seq = document.get("seq")
    if not isinstance(collector, str) or not collector:
        raise _bad("'collector' must be a non-empty string")
    if not isinstance(host, str) or not isinstance(seq, int) or seq < 1:
        raise _bad("'host' must be a string and 'seq' a positive integer")
    columns = ColumnBatch(
        lines_read=_count(document, "lines_read"),
        lines_unparsed=_count(document, "lines_unparsed"),
        lines_by_program=_program_counts(document.get("lines_by_program", {})),
    )
    tables = document.get("tables", {})
    if not isinstance(tables, Mapping):
        raise _bad("'tables' must be an object")
    for name, data in tables.items():
        columns.tables[name] = _table(name, data)
    return ShippedBatch(collector, host, seq, columns)


def _table(name: str, data: Any) -> pa.Table:
    if name not in ROW_TYPES:
        raise _bad(f"unknown table {name!r}")
    if not isinstance(data, Mapping):
        raise _bad(f"table {name!r} must map column names to lists")
    schema = SCHEMAS[name]
    sizes = {len(v) for v in data.values() if isinstance(v, list)}
    if len(sizes) != 1:
        raise _bad(f"the columns of table {name!r} differ in length")
    rows = sizes.pop()
    arrays = []
    for field in schema:
        values = data.get(field.name)
        if values is None:
            if not field.nullable:
                raise _bad(f"table {name!r} lacks column {field.name!r}")
            values = [None] * rows
        try:
            arrays.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise _bad(f"column {name}.{field.name}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=schema)


def _count(document: Mapping[str, Any], name: str) -> int:
    value = document.get(name, 0)
    if not isinstance(value, int) or value < 0:
        raise _bad(f"'{name}' must be a count")
    return value


def _program_counts(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in value.items()
    ):
        raise _bad("'lines_by_program' must map programs to counts")
    return dict(value)


def _bad(what: str) -> QueryError:
    return QueryError(f"record batch: {what}", parameter="body")


# ------------------------------------------------------------- receiving side


def collector_source(collector: str) -> str:
    """The checkpoint that records the last batch written for ``collector``."""
    return f"{COLLECTOR_PREFIX}{collector}"


def apply_batch(store: Store, batch: ShippedBatch) -> bool:
    """Write ``batch`` with its collector's checkpoint in one commit, unless the
    checkpoint says it was written already. True when written.

    The caller serialises calls for one collector (a check and a write by two
    threads at once could both pass the check).
    """
    source = collector_source(batch.collector)
    current = store.checkpoint(source)
    done = current.offset if current is not None else 0
    if batch.seq <= done:
        logger.debug("skipped a batch sent again", collector=batch.collector)
        return False
    if batch.seq != done + 1:
        logger.warning(
            "batches of a collector are missing",
            collector=batch.collector,
            expected=done + 1,
            got=batch.seq,
        )
    checkpoint = Checkpoint(
        source_id=source,
        stream=source,
        path=f"collector {batch.host}",
        offset=batch.seq,
        lines=(current.lines if current is not None else 0) + batch.columns.lines_read,
        first_seen=current.first_seen if current is not None else None,
    )
    store.write(batch.columns, checkpoint, stream=source)
    return True


class BatchReceiver:
    """The record form of ``POST /v1/ingest`` on a central service: each record is
    a shipped batch, written with deduplication (``apply_batch``). The central
    ``/metrics`` does not count these rows; each collector's ``--metrics`` does."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()

    def accept_records(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Write every batch not written before; returns how many were new."""
        batches = [decode_batch(record) for record in records]
        written = 0
        with self._lock:
            for batch in batches:
                written += apply_batch(self.store, batch)
        return written


# ------------------------------------------------------------------- the spool

_MAGIC = b"MTSPOOL1"
_SUFFIX = ".batch"


class Spool:
    """A directory of committed batches not yet acknowledged, which is also the
    collector's committed position (see the module docstring).

    The ingest pipeline writes to it as to a store (``write``, ``checkpoint``,
    ``state``, ``sources``); the shipper reads ``pending`` batches and
    ``acknowledge``s them. One process at a time may use a spool (a lock file).
    A spool has no size limit: an outage longer than the disk holds makes the
    pipeline's commits fail (logged, retried) while the followers wait.
    """

    def __init__(self, directory: Path, host: str) -> None:
        self.directory = directory
        self.host = host
        self._cond = threading.Condition()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock_fh = (directory / "lock").open("a+")
        except OSError as exc:
            raise InputError(
                f"cannot use the spool directory {directory}: {exc}"
            ) from exc
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_fh.close()
            raise InputError(
                f"the spool {directory} is in use by another collector"
            ) from exc
        self.identity = self._identity()
        self._acked = self._read_acked()
        self._seqs = self._scan()
        self._sources: dict[str, Checkpoint] = {}
        self._state: bytes | None = None
        if self._seqs:
            self._load_position(self._seqs[-1])

    # -- files

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:012d}{_SUFFIX}"

    def _identity(self) -> str:
        path = self.directory / "identity"
        if path.exists():
            return path.read_text().strip()
        identity = f"{self.host}/{uuid.uuid4().hex[:12]}"
        _write_durably(path, identity.encode())
        return identity

    def _read_acked(self) -> int:
        path = self.directory / "acked"
        return int(path.read_text().strip() or 0) if path.exists() else 0

    def _scan(self) -> list[int]:
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink()  # a write that never reached its rename
        return sorted(int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}"))

    def _load_position(self, seq: int) -> None:
        meta, _, state = _read_spool_file(self._path(seq))
        self._sources = {
            c["source_id"]: Checkpoint.model_validate(c) for c in meta["sources"]
        }
        self._state = state if meta.get("state") else None

    # -- the pipeline's side

    def write(
        self,
        batch: Batch | ColumnBatch,
        checkpoint: Checkpoint | Sequence[Checkpoint] | None = None,
        *,
        state: bytes | None = None,
        stream: str = "main",
    ) -> None:
        """Commit ``batch`` with the checkpoints and state: one file, fsync'd."""
        cols = batch if isinstance(batch, ColumnBatch) else to_columns(batch)
        if isinstance(checkpoint, Checkpoint):
            checkpoint = [checkpoint]
        now = time.time()
        with self._cond:
            sources = dict(self._sources)
            for cp in checkpoint or ():
                first = sources.get(cp.source_id)
                seen = cp.first_seen or (first.first_seen if first else None) or now
                sources[cp.source_id] = cp.model_copy(
                    update={"first_seen": seen, "updated": now}
                )
            seq = (self._seqs[-1] if self._seqs else 0) + 1
            body = encode_batch(ShippedBatch(self.identity, self.host, seq, cols))
            meta = {
                "seq": seq,
                "stream": stream,
                "state": state is not None,
                "sources": [c.model_dump() for c in sources.values()],
            }
            try:
                # Compressed at rest: JSON rows with raw lines shrink about
                # fivefold, and an outage may keep many batches here.
                packed = zlib.compress(body, 1)
                _write_durably(self._path(seq), _spool_file(meta, packed, state))
            except OSError as exc:
                raise StoreError(
                    f"cannot write to the spool {self.directory}: {exc}"
                ) from exc
            self._seqs.append(seq)
            self._sources = sources
            if state is not None:
                self._state = state
            self._cond.notify_all()

    def checkpoint(self, source_id: str) -> Checkpoint | None:
        with self._cond:
            return self._sources.get(source_id)

    def state(self, stream: str = "main") -> bytes | None:
        with self._cond:
            return self._state

    def sources(self) -> list[Checkpoint]:
        with self._cond:
            found = list(self._sources.values())
        return sorted(found, key=lambda c: (-(c.updated or 0.0), c.source_id))

    # -- the shipper's side

    def pending(self) -> list[int]:
        """Numbers of the batches not acknowledged yet, oldest first."""
        with self._cond:
            return [s for s in self._seqs if s > self._acked]

    def body(self, seq: int) -> bytes:
        """What batch ``seq`` ships as."""
        return zlib.decompress(_read_spool_file(self._path(seq))[1])

    def acknowledge(self, seq: int) -> None:
        """Record that the destination has batch ``seq`` (and all before it),
        then delete their files but the newest (the committed position)."""
        with self._cond:
            _write_durably(self.directory / "acked", str(seq).encode())
            self._acked = seq
            keep = self._seqs[-1]
            for old in [s for s in self._seqs if s <= seq and s != keep]:
                self._path(old).unlink(missing_ok=True)
                self._seqs.remove(old)
            self._cond.notify_all()

    def wait_for_pending(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a batch to ship; True if one is."""
        with self._cond:
            return self._cond.wait_for(
                lambda: bool(self._seqs) and self._seqs[-1] > self._acked, timeout
            )

    @property
    def backlog(self) -> int:
        """Batches waiting to be acknowledged."""
        return len(self.pending())

    def close(self) -> None:
        """Release the spool's lock."""
        self._lock_fh.close()


def _spool_file(meta: dict[str, Any], body: bytes, state: bytes | None) -> bytes:
    head = json.dumps(meta).encode()
    return b"".join(
        [
            _MAGIC,
            struct.pack(">I", len(head)),
            head,
            struct.pack(">Q", len(body)),
            body,
            state or b"",
        ]
    )


def _read_spool_file(path: Path) -> tuple[dict[str, Any], bytes, bytes]:
    data = path.read_bytes()
    try:
        if data[:8] != _MAGIC:
            raise ValueError("not a spool file")
        (head_size,) = struct.unpack_from(">I", data, 8)
        at = 12 + head_size
        meta = json.loads(data[12:at])
        (body_size,) = struct.unpack_from(">Q", data, at)
        body = data[at + 8 : at + 8 + body_size]
        state = data[at + 8 + body_size :]
    except (ValueError, struct.error) as exc:
        raise InputError(f"the spool file {path} is damaged ({exc})") from exc
    return meta, body, state


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``path`` so that after a crash it holds either nothing new or all of
    ``data``: a temporary file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolSources:
    """File identities and positions for the followers, from the spool (the
    follower's ``FileSources``)."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def source_id(self, first_line: bytes) -> str:
        return source_id_for(first_line)

    def committed(self, source_id: str) -> Checkpoint | None:
        return self.spool.checkpoint(source_id)

    def checkpoints_of(self, path: Path) -> Sequence[Checkpoint]:
        found = [c for c in self.spool.sources() if c.path == str(path)]
        return sorted(found, key=lambda c: c.updated or 0.0)


# --------------------------------------------------------------- destinations


class Destination(Protocol):
    """Where shipped batches go; ``send`` returns once the batch is committed
    there (or known to be) and raises otherwise."""

    @property
    def label(self) -> str: ...

    def send(self, body: bytes) -> None: ...

    def close(self) -> None: ...


class ShipError(Exception):
    """A batch was not acknowledged; it stays in the spool and is sent again."""


class HttpDestination:
    """A central ``mailtriage serve``: ``POST /v1/ingest`` in record form."""

    def __init__(
        self, url: str, *, token: str | None = None, timeout_seconds: float = 30.0
    ) -> None:
        self.url = url.rstrip("/") + "/v1/ingest"
        self.label = url
        self.token = token
        self.timeout_seconds = timeout_seconds

    def send(self, body: bytes) -> None:
        headers = {"Content-Type": BATCH_MEDIA_TYPE}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.url, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as r:
                r.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            exc.close()
            raise ShipError(f"{self.label} answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ShipError(f"cannot reach {self.label}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: each batch is one request."""


class StoreDestination:
    """A store written directly (ClickHouse for a fleet), opened on first use
    and again after a failure."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.label = url
        self.settings = settings.model_copy(
            update={"store": settings.store.model_copy(update={"url": url})}
        )
        self._store: Store | None = None

    def send(self, body: bytes) -> None:
        from mailtriage.app.store import open_store

        try:
            if self._store is None:
                self._store = open_store(self.settings)
            apply_batch(self._store, decode_batch(body))
        except StoreError as exc:
            self.close()  # a fresh store resolves a commit of unknown outcome
            raise ShipError(str(exc)) from exc

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()


def destination_for(url: str, settings: Settings, token: str | None) -> Destination:
    """The destination ``--to`` names; ConfigError for an unknown scheme."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        return HttpDestination(url, token=token)
    if scheme in ("clickhouse", "clickhouses", "chdb", "duckdb"):
        return StoreDestination(url, settings)
    raise ConfigError(
        f"--to {url!r}: give http://host:port of a mailtriage serve, or a store "
        "url (clickhouse://..., chdb:///dir, duckdb:///file)"
    )


# -------------------------------------------------------------------- shipping


class Shipper:
    """The thread that sends pending batches in order, each until acknowledged.
    A batch the destination refuses for good (a damaged spool file, a 400) is
    retried forever, with the error in the log, until an operator removes it."""

    def __init__(
        self,
        spool: Spool,
        destination: Destination,
        *,
        retry_seconds: float = 0.5,
        max_retry_seconds: float = 30.0,
    ) -> None:
        self.spool = spool
        self.destination = destination
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.error: str | None = None
        self.shipped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="mailtriage-shipper", daemon=True
        )
        self._thread.start()

    def stop(self, drain_seconds: float = 10.0) -> None:
        """Send what is pending for up to ``drain_seconds``, then stop; what is
        left stays in the spool for the next start."""
        deadline = time.monotonic() + drain_seconds
        while self.spool.pending() and time.monotonic() < deadline:
            if self.error is not None:
                break
            time.sleep(0.05)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.max_retry_seconds + 5)
        left = self.spool.backlog
        if left:
            logger.warning("batches left in the spool", batches=left)

    def _run(self) -> None:
        pause = self.retry_seconds
        while not self._stop.is_set():
            pending = self.spool.pending()
            if not pending:
                self.spool.wait_for_pending(0.5)
                continue
            try:
                self.destination.send(self.spool.body(pending[0]))
            except Exception as exc:  # any failure: the batch waits and is resent
                self._failed(exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, self.max_retry_seconds)
                continue
            self.spool.acknowledge(pending[0])
            self.shipped += 1
            if self.error is not None:
                logger.info("shipping again", to=self.destination.label)
            self.error = None
            pause = self.retry_seconds

    def _failed(self, exc: Exception, pause: float) -> None:
        if self.error is None:
            logger.warning(
                "cannot ship; batches wait in the spool",
                to=self.destination.label,
                error=str(exc),
                backlog=self.spool.backlog,
            )
        self.error = str(exc)
        logger.debug("ship retry", seconds=pause)


def default_host() -> str:
    """This machine's short host name, as syslog writes it."""
    return socket.gethostname().split(".")[0] or "localhost"


# ------------------------------------------------------------------ collector


class HostedPipeline:
    """The pipeline as the ingest writer drives it, naming ``host`` for lines
    whose frame carries none (Dovecot's own log file)."""

    def __init__(self, pipeline: IngestPipeline, host: str) -> None:
        self.pipeline = pipeline
        self.host = host

    def source_id(self, path: Path, stat: os.stat_result, first_line: bytes) -> str:
        return self.pipeline.source_id(path, stat, first_line)

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
        self.pipeline.feed_lines(
            source_id,
            lines,
            offset,
            host=host or self.host,
            reference_ts=reference_ts,
            complete=complete,
        )

    def flush(self) -> object:
        return self.pipeline.flush()


class Collector:
    """Followers, the pipeline into the spool, and the shipper, started and
    stopped together (``mailtriage collect``)."""

    def __init__(
        self,
        settings: Settings,
        paths: Sequence[Path],
        destination: Destination,
        *,
        spool_dir: Path,
        host: str,
        metrics: str | None = None,
    ) -> None:
        self.spool = Spool(spool_dir, host)
        try:
            pipeline = IngestPipeline(self.spool, settings, stream="collect")
        except BaseException:
            self.spool.close()
            raise
        ingest = settings.ingest
        self.live = LiveIngest(
            HostedPipeline(pipeline, host),
            queue_max_lines=ingest.queue_max_lines,
            batch_lines=min(ingest.batch_lines, COLLECT_BATCH_LINES),
            batch_seconds=ingest.batch_seconds,
        )
        self.metrics: MetricsEndpoint | None = None
        if metrics is not None:
            observer = MetricsObserver.from_settings(
                settings, sources=[str(p) for p in paths]
            )
            self.live.writer.on_commit = observe_commits(observer, self.live)
            self.metrics = MetricsEndpoint(observer, metrics)
        sources = SpoolSources(self.spool)
        for path in dict.fromkeys(paths):
            self.live.followers.append(
                Follower(
                    path,
                    self.live.queue,
                    sources,
                    poll_seconds=ingest.follow_poll_seconds,
                    from_end=ingest.follow_from_end,
                )
            )
        self.shipper = Shipper(self.spool, destination)
        self.destination = destination

    async def start(self) -> None:
        """Start shipping, then following."""
        if self.metrics is not None:
            self.metrics.start()
        self.shipper.start()
        await self.live.start()
        logger.info(
            "collecting",
            identity=self.spool.identity,
            to=self.destination.label,
            files=[f.name for f in self.live.followers],
            backlog=self.spool.backlog,
        )

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Stop following, commit what was read into the spool, ship what the
        destination takes within ``drain_seconds``, and release everything."""
        await self.live.stop()
        await asyncio.to_thread(self.shipper.stop, drain_seconds)
        self.destination.close()
        self.spool.close()
        if self.metrics is not None:
            self.metrics.stop()
        logger.info("collector stopped", backlog=self.spool.backlog)


def batch_push(data: bytes) -> PushBody:
    """A push whose body is one shipped batch (``BATCH_MEDIA_TYPE``), for the
    record sink of ``POST /v1/ingest``; QueryError when it is not a JSON object."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(f"the batch is not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise _bad("the batch must be a JSON object")
    return PushBody(records=[document])


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    """What a spool directory holds, read without taking its lock."""

    committed: int  # the newest batch committed to the spool
    acked: int  # the newest batch the destination acknowledged
    offsets: dict[str, int]  # followed path -> bytes committed

    @property
    def backlog(self) -> int:
        return self.committed - self.acked


def spool_status(directory: Path) -> SpoolStatus:
    """The state of a spool, for operators and tests (a collector may be
    writing it meanwhile: the files read are each complete)."""
    seqs = sorted(int(p.stem) for p in directory.glob(f"*{_SUFFIX}"))
    acked_file = directory / "acked"
    acked = int(acked_file.read_text().strip() or 0) if acked_file.exists() else 0
    offsets: dict[str, int] = {}
    for seq in reversed(seqs):
        try:
            meta = _read_spool_file(directory / f"{seq:012d}{_SUFFIX}")[0]
        except FileNotFoundError:
            continue  # acknowledged and deleted between the listing and the read
        offsets = {c["path"]: c["offset"] for c in meta["sources"]}
        break
    return SpoolStatus(seqs[-1] if seqs else 0, acked, offsets)


# ------------------------------------------------------------------- metrics


class MetricsEndpoint:
    """``GET /metrics`` of a collector, for Prometheus: the same metrics as
    ``mailtriage serve``, for the rows this collector assembled."""

    def __init__(self, observer: MetricsObserver, address: str) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--metrics {address!r}: give HOST:PORT")
        self.observer = observer
        handler = _metrics_handler(observer)
        try:
            self.server = ThreadingHTTPServer((host.strip("[]"), int(port)), handler)
        except OSError as exc:
            raise ConfigError(f"--metrics {address!r}: {exc}") from exc
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="mailtriage-metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _metrics_handler(observer: MetricsObserver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body, content_type = observer.render(self.headers.get("Accept"))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes are not logged."""

    return Handler


def observe_commits(observer: MetricsObserver, live: LiveIngest) -> CommitHook:
    """The ingest writer's commit hook that updates ``observer``."""

    def committed(result: object, seconds: float, chunks: Sequence[Chunk]) -> None:
        if isinstance(result, Batch):
            observer.observe(result)
        observer.observe_write_seconds(seconds)
        for label in {c.label for c in chunks if c.label}:
            observer.observe_source(label)
        observer.set_lag(live.writer.lag_seconds())

    return committed
