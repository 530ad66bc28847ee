"""Following log files as they are written, like ``tail -F``, with checkpoints.

A ``Follower`` watches one path from a thread of its own and hands complete lines,
with the byte offset after them, to the ingest queue. The offset is committed with
the rows it covers (the store's checkpoint), so a restart resumes exactly after the
last committed line: nothing lost, nothing counted twice.

What it survives, checked on every poll (``ingest.follow_poll_seconds``):

- rotation by rename (logrotate's default, newsyslog): the path now names another
  inode. The old file is read to its end, given one more poll for a writer that has
  not reopened yet, then the new file is read from its start;
- copy-truncate (logrotate ``copytruncate``): the same inode is shorter than the
  offset, or its first line changed. The new content is a new source (identities
  are content hashes, ``files.source_id_for``), read from 0; what was read before
  stays counted once under the old source;
- a path that does not exist yet, or disappears: it is picked up when it appears;
- a restart: the file's identity finds its checkpoint and reading resumes there.
  When the file was rotated while the service was down, the rotated file (renamed,
  or compressed: offsets count decompressed bytes) is found beside the path by its
  identity and its unread end is read first.

A file with no checkpoint is read from its start, so existing lines are not
skipped; ``ingest.follow_from_end`` starts such a file at its end instead, but only
for a file present when following starts (a file created later is all new lines).
Only complete lines are handed on: a last line without its newline waits for it.

Lines written to a copy-truncated file between the last poll and the copy are only
in the copy; they are read if the copy is ingested (``mailtriage ingest``, which
resumes at this checkpoint), as ``tail -F`` would lose them too.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from loguru import logger

from mailtriage.app.ingest.files import (
    FIRST_LINE_BYTES,
    READ_BYTES,
    LogSource,
    identify,
    read_chunks,
    source_id_for,
)
from mailtriage.app.ingest.live import Chunk, FileOrigin, IngestQueue
from mailtriage.app.store.base import Checkpoint, Store
from mailtriage.errors import InputError, MailtriageError

CHUNK_LINES = 5_000


class FileSources(Protocol):
    """How files are named and where they resume (``StoreFileSources``)."""

    def source_id(self, first_line: bytes) -> str:
        """The identity of content whose first line is ``first_line``."""
        ...

    def committed(self, source_id: str) -> Checkpoint | None:
        """The committed checkpoint of ``source_id``, None if never seen."""
        ...

    def checkpoints_of(self, path: Path) -> Sequence[Checkpoint]:
        """Checkpoints last recorded under ``path``, oldest first."""
        ...


class StoreFileSources:
    """Identities as ``mailtriage ingest`` names them, checkpoints from the store,
    so a file ingested once and followed later resumes where the ingest stopped.
    Only reads the store: safe from follower threads."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def source_id(self, first_line: bytes) -> str:
        """A hash of the first line (``files.source_id_for``)."""
        return source_id_for(first_line)

    def committed(self, source_id: str) -> Checkpoint | None:
        """The store's checkpoint of ``source_id``."""
        return self.store.checkpoint(source_id)

    def checkpoints_of(self, path: Path) -> Sequence[Checkpoint]:
        """Checkpoints recorded under ``path``, oldest first."""
        found = [c for c in self.store.sources() if c.path == str(path)]
        return sorted(found, key=lambda c: c.updated or 0.0)


@dataclass(slots=True)
class FollowerStatus:
    """What ``/readyz`` says about one follower."""

    path: str
    running: bool
    source: str | None
    offset: int
    behind_bytes: int
    restarts: int
    last_line_at: float | None
    error: str | None


@dataclass(slots=True)
class _Open:
    """The file being read."""

    fh: BinaryIO
    stat: os.stat_result
    source: str
    first_line: bytes
    pos: int  # just after the last complete line handed on
    origin: FileOrigin | None  # sent with the first chunk, then None


RestartHook = Callable[[str, str], None]
"""Called with the path and a reason (``rotated``, ``truncated``, ``error``)."""


class Follower:
    """``tail -F`` for one path, from a thread."""

    def __init__(
        self,
        path: Path,
        queue: IngestQueue,
        sources: FileSources,
        *,
        poll_seconds: float = 0.5,
        from_end: bool = False,
        on_restart: RestartHook | None = None,
    ) -> None:
        self.path = path
        self.queue = queue
        self.sources = sources
        self.poll_seconds = max(0.01, poll_seconds)
        self.from_end = from_end
        self.on_restart = on_restart
        self.restarts = 0
        self.error: str | None = None
        self.last_line_at: float | None = None
        self._cur: _Open | None = None
        self._partial = b""
        self._first_open = True
        # Where this process has queued up to, per source: the store lags behind
        # by the lines still queued, so a reopen must not go by it alone.
        self._queued: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def name(self) -> str:
        """What health checks call this follower."""
        return f"follow {self.path}"

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start following in a thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"mailtriage-follow-{self.path.name}", daemon=True
        )
        self._thread.start()
        logger.info("following file", path=str(self.path))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the chunk in hand; uncommitted lines are read again later."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()

    def status(self) -> FollowerStatus:
        """A snapshot for health checks."""
        cur = self._cur
        return FollowerStatus(
            path=str(self.path),
            running=self.running,
            source=cur.source if cur else None,
            offset=cur.pos if cur else 0,
            behind_bytes=_behind(cur),
            restarts=self.restarts,
            last_line_at=self.last_line_at,
            error=self.error,
        )

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        try:
            self.catch_up()
        except (OSError, MailtriageError) as exc:
            logger.warning("rotated file not read", path=str(self.path), error=str(exc))
        while not self._stop.is_set():
            try:
                busy = self.poll()
            except (OSError, MailtriageError) as exc:
                self._failed(exc)
                busy = False
            if not busy:
                self._stop.wait(self.poll_seconds)
        logger.info("stopped following file", path=str(self.path))

    def poll(self) -> bool:
        """One round: open, read, check for rotation. True if lines were read."""
        if self._cur is None and not self._open():
            return False
        if self._read():
            return True
        self._check_rotation()
        return False

    def _failed(self, exc: OSError | MailtriageError) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "follow failed; reopening", path=str(self.path), error=self.error
        )
        self._restart("error")
        self._close()

    # ------------------------------------------------------------------ catch-up

    def catch_up(self) -> None:
        """Read the unread end of files rotated away while nobody followed."""
        current = self._current_source()
        pending = [
            c
            for c in self.sources.checkpoints_of(self.path)
            if c.source_id != current and not c.complete
        ]
        if not pending:
            return
        rotated = self._rotated_siblings()
        for checkpoint in pending:
            source = rotated.get(checkpoint.source_id)
            if source is None or self._stop.is_set():
                continue
            if source.compression is None and checkpoint.offset >= (source.size or 0):
                continue  # read to its end before it was rotated
            self._read_rotated(source, checkpoint.offset)

    def _current_source(self) -> str | None:
        try:
            with self.path.open("rb") as fh:
                first = _first_line(fh)
        except OSError:
            return None
        return self.sources.source_id(first) if first else None

    def _rotated_siblings(self) -> dict[str, LogSource]:
        found: dict[str, LogSource] = {}
        for sibling in sorted(self.path.parent.glob(self.path.name + "?*")):
            try:
                source = identify(str(sibling))
            except InputError:
                continue
            if source is not None:
                found.setdefault(source.source_id, source)
        return found

    def _read_rotated(self, source: LogSource, start: int) -> None:
        logger.info("reading rotated file", path=source.path, source=source.source_id)
        complete = source.compression is not None
        for part in read_chunks(source, start):
            chunk = Chunk(
                source.source_id,
                part.lines,
                offset=part.end,
                label=str(self.path),
                complete=complete and part.eof,
            )
            if not self.queue.put(chunk, self._stop):
                return
        self._restart("rotated")

    # ------------------------------------------------------------------ opening

    def _open(self) -> bool:
        try:
            fh = self.path.open("rb")
        except (FileNotFoundError, NotADirectoryError):
            self._first_open = False  # a file created from now on is all new
            return False
        first = _first_line(fh)
        if first is None:
            fh.close()  # no complete first line yet: its identity is not known
            self._first_open = False
            return False
        stat = os.fstat(fh.fileno())
        source = self.sources.source_id(first)
        pos = self._start_at(source, stat)
        origin = FileOrigin(self.path, stat, first)
        self._cur = _Open(fh, stat, source, first, pos, origin)
        self._partial = b""
        self._first_open = False
        self.error = None
        fh.seek(pos)
        logger.info("reading file", path=str(self.path), source=source, offset=pos)
        return True

    def _start_at(self, source: str, stat: os.stat_result) -> int:
        if source in self._queued:
            return min(self._queued[source], stat.st_size)
        committed = self.sources.committed(source)
        if committed is not None:
            return min(committed.offset, stat.st_size)
        if self.from_end and self._first_open:
            return _last_newline_end(self.path, stat.st_size)
        return 0

    def _close(self) -> None:
        if self._cur is not None:
            self._cur.fh.close()
            self._cur = None
        self._partial = b""

    # ------------------------------------------------------------------ reading

    def _read(self, *, to_end: bool = False) -> bool:
        """Hand on the complete lines available; with ``to_end``, the last partial
        line too (a rotated file that nobody writes to any more)."""
        cur = self._cur
        assert cur is not None
        data = cur.fh.read(READ_BYTES)
        if data and self._replaced(cur):
            # Truncated and written anew since the last poll: these bytes are the
            # middle of other content, not the continuation of this source.
            cur.fh.seek(cur.pos + len(self._partial))
            return False
        if not data:
            if not (to_end and self._partial):
                return False
            last, self._partial = self._partial, b""
            return self._emit([last], cur.pos + len(last))
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        return cut > 0 and self._emit(data[:cut].split(b"\n")[:-1], cur.pos + cut)

    def _emit(self, raw: list[bytes], end: int) -> bool:
        """Queue ``raw`` lines in chunks; ``end`` is the offset after the last."""
        cur = self._cur
        assert cur is not None
        offset = cur.pos
        for start in range(0, len(raw), CHUNK_LINES):
            part = raw[start : start + CHUNK_LINES]
            offset = min(end, offset + sum(len(line) + 1 for line in part))
            lines = [text for line in part if (text := _decode(line))]
            chunk = Chunk(
                cur.source,
                lines,
                offset=offset,
                label=str(self.path),
                origin=cur.origin,
            )
            if not self.queue.put(chunk, self._stop):
                return False
            cur.origin = None
            self._queued[cur.source] = offset
        cur.pos = end
        self.last_line_at = time.time()
        return True

    # ------------------------------------------------------------------ rotation

    def _check_rotation(self) -> None:
        cur = self._cur
        assert cur is not None
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return  # renamed away and not recreated yet: keep reading the old one
        if (now.st_dev, now.st_ino) != (cur.stat.st_dev, cur.stat.st_ino):
            self._finish_renamed()
        elif self._replaced(cur):
            self._restart("truncated")
            logger.info("file truncated; reading from its start", path=str(self.path))
            self._close()

    def _replaced(self, cur: _Open) -> bool:
        """Whether the open file no longer holds the content being read: it is
        shorter than what was read (copy-truncate), or its first line changed
        (truncated and written past the old offset between two polls)."""
        if os.fstat(cur.fh.fileno()).st_size < cur.pos + len(self._partial):
            return True
        return _first_line(cur.fh) != cur.first_line

    def _finish_renamed(self) -> None:
        # A writer may still append to the renamed file until it reopens its log
        # (rsyslog and Postfix's postlogd on a HUP), so give it one more poll.
        while self._read() and not self._stop.is_set():
            pass
        self._stop.wait(self.poll_seconds)
        while self._read(to_end=True) and not self._stop.is_set():
            pass
        self._restart("rotated")
        logger.info("file rotated; reading the new one", path=str(self.path))
        self._close()

    def _restart(self, reason: str) -> None:
        self.restarts += 1
        if self.on_restart is not None:
            self.on_restart(str(self.path), reason)


def _behind(cur: _Open | None) -> int:
    if cur is None:
        return 0
    try:
        return max(0, os.fstat(cur.fh.fileno()).st_size - cur.pos)
    except (OSError, ValueError):
        return 0


def _decode(line: bytes) -> str:
    # The same clean-up as ``files`` (so a followed and an ingested file count the
    # same lines): a copy-truncated file written by a process without O_APPEND
    # gets a hole of NUL bytes where the old content was, and CRs are no content.
    return line.replace(b"\r", b"").strip(b"\x00").decode("utf-8", errors="replace")


def _first_line(fh: BinaryIO) -> bytes | None:
    """The file's first complete line (capped at ``FIRST_LINE_BYTES``), leaving
    the read position where it was; None while there is none."""
    here = fh.tell()
    fh.seek(0)
    head = fh.read(FIRST_LINE_BYTES)
    fh.seek(here)
    end = head.find(b"\n")
    if end < 0 and len(head) < FIRST_LINE_BYTES:
        return None
    # Normalised as ``files.identify`` does, so both name the content alike.
    first = (head[:end] if end >= 0 else head).rstrip(b"\r").strip(b"\x00")
    return first or None


def _last_newline_end(path: Path, size: int) -> int:
    """The offset just after the last newline at or before ``size``."""
    with path.open("rb") as fh:
        pos = size
        while pos > 0:
            start = max(0, pos - READ_BYTES)
            fh.seek(start)
            block = fh.read(pos - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                return start + cut + 1
            pos = start
    return 0
