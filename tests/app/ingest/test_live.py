"""The bounded ingest queue and its writer, with a real pipeline and store."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mailtriage.app.ingest.live import Chunk, IngestQueue, IngestWriter
from mailtriage.app.ingest.pipeline import IngestPipeline
from mailtriage.app.settings import load_settings
from mailtriage.app.store import Store, open_store
from mailtriage.parsers.model import Batch

LINE = "Dec  3 17:12:02 mx1 postfix/qmgr[1]: 4AB0C{n}: removed"


def _chunk(count: int, source: str = "test") -> Chunk:
    return Chunk(source, [LINE.format(n=n) for n in range(count)])


def test_queue_refuses_what_does_not_fit_but_takes_a_big_chunk_when_empty() -> None:
    queue = IngestQueue(max_lines=10)
    assert queue.offer(_chunk(25))  # empty: taken, or it would wait forever
    assert not queue.offer(_chunk(1))
    taken = queue.get(0)
    assert taken is not None and len(taken.lines) == 25
    assert queue.offer(_chunk(6))
    assert not queue.offer_all([_chunk(3), _chunk(2)])
    assert queue.offer_all([_chunk(3), _chunk(1)])
    assert queue.pending_lines == 10


def test_put_waits_for_room_and_gives_up_when_stopped() -> None:
    queue = IngestQueue(max_lines=2)
    queue.offer(_chunk(2))
    stop = threading.Event()
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(queue.put(_chunk(1), stop)))
    waiter.start()
    time.sleep(0.1)
    assert results == []  # still waiting for room
    queue.get(0)
    waiter.join(5)
    assert results == [True]
    queue.offer(_chunk(1))
    stop.set()
    assert queue.put(_chunk(5), stop) is False


def test_put_async_waits_without_blocking_the_loop() -> None:
    queue = IngestQueue(max_lines=1)
    queue.offer(_chunk(1))

    async def scenario() -> list[str]:
        order: list[str] = []

        async def producer() -> None:
            await queue.put_async(_chunk(1))
            order.append("put")

        async def consumer() -> None:
            await asyncio.sleep(0.05)
            order.append("got")
            queue.get(0)

        await asyncio.gather(producer(), consumer())
        return order

    assert asyncio.run(scenario()) == ["got", "put"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    settings = load_settings(None, {"store": {"db": str(tmp_path / "live.duckdb")}})
    with open_store(settings) as opened:
        yield opened


def test_writer_commits_batches_and_reports_each_commit(store: Store) -> None:
    settings = load_settings(None, {})
    queue = IngestQueue(max_lines=1000)
    commits: list[tuple[int, list[str]]] = []
    committed = threading.Event()

    def on_commit(result: object, seconds: float, chunks: Sequence[Chunk]) -> None:
        assert isinstance(result, Batch) and seconds >= 0
        commits.append((result.lines_read, [c.source for c in chunks]))

    writer = IngestWriter(
        IngestPipeline(store, settings),
        queue,
        batch_lines=5,
        batch_seconds=30,
        on_commit=on_commit,
    )
    writer.start()
    try:
        first = _chunk(3, "a")
        first.on_commit = committed.set
        queue.offer(first)
        time.sleep(0.2)
        assert not committed.is_set()  # 3 < batch_lines and 30 s to go
        assert writer.lag_seconds() > 0.1
        queue.offer(_chunk(3, "b"))
        assert committed.wait(5)
    finally:
        writer.stop()
    assert commits == [(6, ["a", "b"])]
    assert writer.lines_committed == 6
    assert writer.lag_seconds() == 0


def test_writer_stop_commits_what_was_accepted(store: Store) -> None:
    queue = IngestQueue(max_lines=1000)
    writer = IngestWriter(
        IngestPipeline(store, load_settings(None, {})),
        queue,
        batch_lines=10_000,
        batch_seconds=60,
    )
    writer.start()
    for _ in range(4):
        queue.offer(_chunk(50))
    writer.stop()
    assert writer.lines_committed == 200
    assert queue.pending_lines == 0
