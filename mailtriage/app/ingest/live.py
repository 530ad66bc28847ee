"""Live ingest: one bounded queue in front of the pipeline, drained by one writer.

Followers, syslog listeners and ``POST /v1/ingest`` all hand chunks of lines to the
same ``IngestQueue``; a single ``IngestWriter`` thread feeds them to the pipeline and
commits a batch every ``ingest.batch_lines`` lines or ``ingest.batch_seconds``
seconds. The queue is bounded by lines (``ingest.queue_max_lines``), and each kind
of producer reacts to a full queue its own way: a follower waits (its file keeps the
lines), a TCP syslog connection stops reading (the kernel pushes back on the sender),
a UDP datagram is dropped and counted, a push is answered 429.

    producers ──► IngestQueue (bounded) ──► IngestWriter ──► pipeline ──► store
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from loguru import logger


class LinePipeline(Protocol):
    """What the writer needs of the ingest pipeline (``pipeline.IngestPipeline``)."""

    def source_id(self, path: Path, stat: os.stat_result, first_line: bytes) -> str:
        """Record where a file source is, for its checkpoint."""
        ...

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
        """Parse and assemble the lines of one source."""
        ...

    def flush(self) -> object:
        """Commit rows, checkpoints and state; returns the committed rows."""
        ...


@dataclass(frozen=True, slots=True)
class FileOrigin:
    """The file a source was opened from, recorded in its checkpoint."""

    path: Path
    stat: os.stat_result
    first_line: bytes


@dataclass(slots=True)
class Chunk:
    """Lines from one source, in order.

    ``offset`` is the byte offset just after the last line, for sources that resume
    from a checkpoint (files); ``host`` names the sending host for lines whose own
    frame carries none; ``label`` is what the metrics call the producer (a followed
    path, a listener, ``push``); ``origin`` comes with the first chunk of a file
    opened by a follower; ``complete`` marks the end of a source that cannot grow;
    ``on_commit`` runs (on the writer thread) once the lines are committed.
    """

    source: str
    lines: list[str]
    offset: int | None = None
    host: str | None = None
    label: str | None = None
    origin: FileOrigin | None = None
    complete: bool = False
    on_commit: Callable[[], None] | None = None
    accepted: float = field(default_factory=time.monotonic)


class IngestQueue:
    """A FIFO of chunks, bounded by the number of lines it holds.

    A chunk larger than the bound is still taken when the queue is empty, so that
    no single chunk can wait forever.
    """

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max(1, max_lines)
        self._items: deque[Chunk] = deque()
        self._lines = 0
        self._cond = threading.Condition()

    @property
    def pending_lines(self) -> int:
        """Lines waiting for the writer."""
        return self._lines

    def oldest_accepted(self) -> float | None:
        """The monotonic time the oldest waiting chunk was accepted, if any."""
        with self._cond:
            return self._items[0].accepted if self._items else None

    def offer(self, chunk: Chunk) -> bool:
        """Take ``chunk`` if there is room now; never waits."""
        with self._cond:
            if not self._fits(len(chunk.lines)):
                return False
            self._append(chunk)
            return True

    def offer_all(self, chunks: Sequence[Chunk]) -> bool:
        """Take every chunk or none of them; never waits."""
        with self._cond:
            if not self._fits(sum(len(c.lines) for c in chunks)):
                return False
            for chunk in chunks:
                self._append(chunk)
            return True

    def put(self, chunk: Chunk, stop: threading.Event) -> bool:
        """Wait for room, then take ``chunk``; False if ``stop`` is set first."""
        with self._cond:
            while not self._fits(len(chunk.lines)):
                if stop.is_set():
                    return False
                self._cond.wait(0.2)
            self._append(chunk)
            return True

    async def put_async(self, chunk: Chunk) -> None:
        """Wait for room without blocking the event loop, then take ``chunk``."""
        pause = 0.005
        while not self.offer(chunk):
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    def get(self, timeout: float) -> Chunk | None:
        """The oldest chunk, waiting up to ``timeout`` seconds for one."""
        with self._cond:
            if not self._items:
                self._cond.wait(max(0.0, timeout))
            if not self._items:
                return None
            chunk = self._items.popleft()
            self._lines -= len(chunk.lines)
            self._cond.notify_all()
            return chunk

    def wake(self) -> None:
        """Wake whoever waits in ``get`` (the writer, when it is told to stop)."""
        with self._cond:
            self._cond.notify_all()

    def _fits(self, lines: int) -> bool:
        return self._lines == 0 or self._lines + lines <= self.max_lines

    def _append(self, chunk: Chunk) -> None:
        self._items.append(chunk)
        self._lines += len(chunk.lines)
        self._cond.notify_all()


RETRY_SECONDS = 1.0
"""How long the writer waits before committing again after a failed commit."""

CommitHook = Callable[[object, float, Sequence[Chunk]], None]
"""Called after each commit with what ``pipeline.flush()`` returned, the seconds
the flush took and the chunks it committed (the metrics observer hangs here)."""


class IngestWriter:
    """The one thread that feeds the pipeline and commits its batches."""

    def __init__(
        self,
        pipeline: LinePipeline,
        queue: IngestQueue,
        *,
        batch_lines: int,
        batch_seconds: float,
        on_commit: CommitHook | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.queue = queue
        self.batch_lines = max(1, batch_lines)
        self.batch_seconds = max(0.01, batch_seconds)
        self.on_commit = on_commit
        self.error: str | None = None
        self.lines_committed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fed: list[Chunk] = []
        self._fed_lines = 0
        self._last_flush = time.monotonic()

    @property
    def running(self) -> bool:
        """True while the writer thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(
            target=self._run, name="mailtriage-ingest-writer", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Drain what was accepted, commit it, and end the thread."""
        self._stop.set()
        self.queue.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("ingest writer did not stop in time", timeout=timeout)

    def lag_seconds(self) -> float:
        """Age of the oldest accepted line that is not committed yet."""
        oldest = [c.accepted for c in self._fed[:1]]
        queued = self.queue.oldest_accepted()
        if queued is not None:
            oldest.append(queued)
        return max(0.0, time.monotonic() - min(oldest)) if oldest else 0.0

    def _run(self) -> None:
        while not (self._stop.is_set() and self.queue.pending_lines == 0):
            if self.error is not None:
                # The last commit failed: retry it before taking more, so the
                # rows held in memory stay bounded and the full queue pushes back.
                if not self._retry():
                    break
                continue
            # Bounded, so a stop that slips in before the wait is seen soon.
            chunk = self.queue.get(min(self._until_due(), 0.5))
            if chunk is not None:
                self._feed(chunk)
            if self._due():
                self._flush()
        self._flush()

    def _retry(self) -> bool:
        """Wait, then commit again; False when stopping with the store failing."""
        if self._stop.is_set():
            return False
        self._stop.wait(RETRY_SECONDS)
        self._flush()
        return True

    def _until_due(self) -> float:
        if not self._fed:
            return self.batch_seconds
        return self._last_flush + self.batch_seconds - time.monotonic()

    def _due(self) -> bool:
        if not self._fed:
            return False
        if self._fed_lines >= self.batch_lines or self._stop.is_set():
            return True
        return time.monotonic() - self._last_flush >= self.batch_seconds

    def _feed(self, chunk: Chunk) -> None:
        if not self._fed:
            self._last_flush = time.monotonic()
        origin = chunk.origin
        if origin is not None:
            self.pipeline.source_id(origin.path, origin.stat, origin.first_line)
        self.pipeline.feed_lines(
            chunk.source,
            chunk.lines,
            chunk.offset,
            host=chunk.host,
            complete=chunk.complete,
        )
        self._fed.append(chunk)
        self._fed_lines += len(chunk.lines)

    def _flush(self) -> None:
        if not self._fed:
            return
        started = time.perf_counter()
        try:
            result = self.pipeline.flush()
        except Exception as exc:
            # The lines stay in the pipeline; the next flush retries the commit.
            self.error = f"{type(exc).__name__}: {exc}"
            logger.opt(exception=exc).error(
                "ingest commit failed", lines=self._fed_lines
            )
            return
        self._committed(result, time.perf_counter() - started)

    def _committed(self, result: object, seconds: float) -> None:
        self.error = None
        self.lines_committed += self._fed_lines
        done, self._fed, self._fed_lines = self._fed, [], 0
        self._last_flush = time.monotonic()
        if self.on_commit is not None:
            self.on_commit(result, seconds, done)
        for chunk in done:
            if chunk.on_commit is not None:
                chunk.on_commit()


class Follows(Protocol):
    """A follower as ``LiveIngest`` drives it (``follow.Follower``)."""

    @property
    def name(self) -> str: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


class Listens(Protocol):
    """A listener as ``LiveIngest`` drives it (``syslog.SyslogListener``)."""

    @property
    def name(self) -> str: ...

    @property
    def running(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LiveIngest:
    """The queue, its writer, and every producer feeding it, started and stopped
    together: writer first and last, so nothing a producer accepted is left behind.
    """

    def __init__(
        self,
        pipeline: LinePipeline,
        *,
        queue_max_lines: int,
        batch_lines: int,
        batch_seconds: float,
        on_commit: CommitHook | None = None,
    ) -> None:
        self.queue = IngestQueue(queue_max_lines)
        self.writer = IngestWriter(
            pipeline,
            self.queue,
            batch_lines=batch_lines,
            batch_seconds=batch_seconds,
            on_commit=on_commit,
        )
        self.followers: list[Follows] = []
        self.listeners: list[Listens] = []
        self.started = False

    async def start(self) -> None:
        """Start the writer, then the followers and listeners."""
        self.writer.start()
        for follower in self.followers:
            follower.start()
        for listener in self.listeners:
            await listener.start()
        self.started = True

    async def stop(self) -> None:
        """Stop taking lines, then commit everything already accepted."""
        for listener in self.listeners:
            await listener.stop()
        for follower in self.followers:
            await asyncio.to_thread(follower.stop)
        await asyncio.to_thread(self.writer.stop)
        self.started = False

    def problems(self) -> list[str]:
        """Why live ingest is not healthy; empty when it is."""
        found = []
        if self.started and not self.writer.running:
            found.append("the ingest writer is not running")
        if self.writer.error:
            found.append(f"the last commit failed: {self.writer.error}")
        producers: list[Follows | Listens] = [*self.followers, *self.listeners]
        found += [f"{p.name} is not running" for p in producers if not p.running]
        return found if self.started else ["live ingest is not started"]
