"""The collector: the record form, the spool, deduplication on the receiving side,
and a collector following a growing log into ClickHouse through an outage."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailtriage.app.ingest.collect import (
    BatchReceiver,
    Collector,
    ShipError,
    ShippedBatch,
    Spool,
    StoreDestination,
    apply_batch,
    collector_source,
    decode_batch,
    destination_for,
    encode_batch,
)
from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import Settings, load_settings
from mailtriage.app.store.base import Checkpoint, DeliveryFilter, Scope, Store
from mailtriage.app.store.clickhouse import ClickHouseStore
from mailtriage.app.store.columns import to_columns
from mailtriage.app.store.duckdb import DuckDBStore
from mailtriage.errors import ConfigError, InputError, QueryError
from mailtriage.parsers.model import AttemptRow, Batch, UnparsedRow

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples"
T0 = 1796313600.0


def sample_settings(**ingest: Any) -> Settings:
    return load_settings(
        SAMPLES / "tenants.toml",
        {"ingest": {"year": 2026, "follow_poll_seconds": 0.05, **ingest}},
    )


def attempt(recipient: str, ts: float = T0) -> AttemptRow:
    return AttemptRow(
        ts=ts,
        host="mx1",
        queue_id="AAA",
        message_key="mx1/AAA/1",
        recipient=recipient,
        recipient_domain=recipient.split("@")[1],
        transport="lmtp",
        status="sent",
        final=True,
        tenant="acme",
        delay=0.5,
    )


def shipped(seq: int, *recipients: str, collector: str = "mx1/abc") -> ShippedBatch:
    batch = Batch(
        attempts=[attempt(r) for r in recipients],
        unparsed=[UnparsedRow("cron", "message", "x <N>", "x 1", 1, T0, T0)],
        lines_read=len(recipients) + 1,
        lines_by_program={"postfix/lmtp": len(recipients), "cron": 1},
    )
    return ShippedBatch(collector, "mx1", seq, to_columns(batch))


# ----------------------------------------------------------- the record form


def test_a_batch_survives_the_record_form() -> None:
    batch = shipped(7, "a@acme.example", "b@acme.example")
    again = decode_batch(encode_batch(batch))
    assert (again.collector, again.host, again.seq) == ("mx1/abc", "mx1", 7)
    assert again.columns.lines_by_program == {"postfix/lmtp": 2, "cron": 1}
    for name, table in batch.columns.tables.items():
        assert again.columns.tables[name].equals(table), name


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"format": 2}',
        b'{"format": 1, "collector": "", "host": "h", "seq": 1}',
        b'{"format": 1, "collector": "c", "host": "h", "seq": 0}',
        b'{"format": 1, "collector": "c", "host": "h", "seq": 1, "tables": {"x": {}}}',
        b'{"format": 1, "collector": "c", "host": "h", "seq": 1,'
        b' "tables": {"events": {"ts": [1.0], "host": ["h", "i"]}}}',
        b'{"format": 1, "collector": "c", "host": "h", "seq": 1,'
        b' "tables": {"events": {"ts": ["soon"], "host": ["h"], "program": ["p"],'
        b' "category": ["warning"], "text": ["t"]}}}',
        b'{"format": 1, "collector": "c", "host": "h", "seq": 1,'
        b' "tables": {"events": {"ts": [1.0]}}}',
    ],
    ids=[
        "not-json",
        "not-object",
        "format",
        "collector",
        "seq",
        "table",
        "lengths",
        "type",
        "missing-column",
    ],
)
def test_bad_record_batches_are_query_errors(body: bytes) -> None:
    with pytest.raises(QueryError):
        decode_batch(body)


def test_missing_optional_columns_are_null() -> None:
    body = (
        b'{"format": 1, "collector": "c", "host": "h", "seq": 1, "tables": {"events":'
        b' {"ts": [1.0], "host": ["h"], "program": ["p"], "category": ["warning"],'
        b' "text": ["t"], "from_a_newer_collector": [1]}}}'
    )
    events = decode_batch(body).columns.tables["events"]
    assert events.column("queue_id").to_pylist() == [None]


# ------------------------------------------------------------------ the spool


def test_spool_commits_survive_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "mx1")
    cp = Checkpoint(source_id="log:1", path="/var/log/mail.log", offset=10)
    spool.write(Batch(attempts=[attempt("a@acme.example")]), cp, state=b"one")
    spool.write(Batch(), cp.model_copy(update={"offset": 20}), state=b"two")
    identity = spool.identity
    spool.close()
    again = Spool(tmp_path, "other-name")
    assert again.identity == identity and identity.startswith("mx1/")
    found = again.checkpoint("log:1")
    assert found is not None and found.offset == 20 and found.first_seen
    assert again.state() == b"two"
    assert again.pending() == [1, 2]
    first = decode_batch(again.body(1))
    assert first.columns.rows("attempts") == 1
    again.close()


def test_acknowledged_batches_go_but_the_position_stays(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "mx1")
    for offset in (10, 20, 30):
        spool.write(Batch(), Checkpoint(source_id="s", offset=offset), state=b"s")
    spool.acknowledge(2)
    assert spool.pending() == [3]
    spool.acknowledge(3)
    assert spool.pending() == [] and spool.backlog == 0
    assert sorted(p.name for p in tmp_path.glob("*.batch")) == ["000000000003.batch"]
    spool.close()
    again = Spool(tmp_path, "mx1")
    found = again.checkpoint("s")
    assert found is not None and found.offset == 30
    assert again.pending() == []
    again.write(Batch(), Checkpoint(source_id="s", offset=40))
    assert again.pending() == [4]
    again.close()


def test_a_spool_serves_one_collector_at_a_time(tmp_path: Path) -> None:
    first = Spool(tmp_path, "mx1")
    with pytest.raises(InputError, match="in use"):
        Spool(tmp_path, "mx1")
    first.close()
    Spool(tmp_path, "mx1").close()


def test_a_write_cut_short_leaves_the_last_commit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "mx1")
    spool.write(Batch(), Checkpoint(source_id="s", offset=10), state=b"one")
    spool.close()
    (tmp_path / "000000000002.batch.tmp").write_bytes(b"MTSPOOL1 half")
    again = Spool(tmp_path, "mx1")
    found = again.checkpoint("s")
    assert found is not None and found.offset == 10
    assert again.pending() == [1]
    assert not list(tmp_path.glob("*.tmp"))
    again.close()


# ------------------------------------------------------------ receiving side


@pytest.fixture(params=["duckdb", "clickhouse"])
def central(
    request: pytest.FixtureRequest, tmp_path: Path, new_chdb_url: Callable[[], str]
) -> Iterator[Store]:
    store: Store = (
        DuckDBStore(tmp_path / "central.duckdb")
        if request.param == "duckdb"
        else ClickHouseStore(new_chdb_url())
    )
    yield store
    store.close()


def test_each_batch_is_written_once_whatever_is_sent_again(central: Store) -> None:
    receiver = BatchReceiver(central)
    one, two = shipped(1, "a@acme.example"), shipped(2, "b@acme.example")
    assert receiver.accept_records([_document(one)]) == 1
    assert receiver.accept_records([_document(one), _document(two)]) == 1
    assert receiver.accept_records([_document(two)]) == 0
    assert apply_batch(central, shipped(3, "c@acme.example", collector="mx2/x"))
    assert central.summary(Scope()).totals.delivered == 3
    assert central.unparsed(Scope()).unparsed == 3
    found = central.checkpoint(collector_source("mx1/abc"))
    assert found is not None and (found.offset, found.lines) == (2, 4)


def _document(batch: ShippedBatch) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(encode_batch(batch))
    return loaded


def test_destinations_follow_the_url_scheme(tmp_path: Path) -> None:
    settings = sample_settings()
    assert destination_for("http://127.0.0.1:8025", settings, None).label
    store = destination_for(f"duckdb://{tmp_path / 'x.duckdb'}", settings, None)
    assert isinstance(store, StoreDestination)
    with pytest.raises(ConfigError):
        destination_for("ftp://example", settings, None)


# ------------------------------------------------------- a collector, live


class Outage:
    """A destination that refuses batches while ``down`` is set."""

    def __init__(self, inner: StoreDestination) -> None:
        self.inner = inner
        self.label = inner.label
        self.down = False
        self.refused = 0

    def send(self, body: bytes) -> None:
        if self.down:
            self.refused += 1
            raise ShipError("the destination is down")
        self.inner.send(body)

    def close(self) -> None:
        self.inner.close()


def test_a_collector_ships_a_growing_log_through_an_outage(
    tmp_path: Path, new_chdb_url: Callable[[], str]
) -> None:
    lines = (SAMPLES / "postfix.log").read_bytes().splitlines(keepends=True)
    dovecot = (SAMPLES / "dovecot.log").read_bytes()
    settings = sample_settings(batch_seconds=0.05)
    url = new_chdb_url()
    log, box = tmp_path / "mail.log", tmp_path / "dovecot.log"
    log.write_bytes(b"".join(lines[:100]))
    box.write_bytes(dovecot)
    outage = Outage(StoreDestination(url, settings))

    async def scenario() -> None:
        collector = Collector(
            settings, [log, box], outage, spool_dir=tmp_path / "spool", host="mda1"
        )
        await collector.start()
        await until(lambda: collector.spool.backlog == 0 and shipped_lines(url) > 0)
        outage.down = True
        with log.open("ab") as fh:
            fh.write(b"".join(lines[100:200]))
        await until(lambda: outage.refused > 1 and collector.spool.backlog > 0)
        outage.down = False
        with log.open("ab") as fh:
            fh.write(b"".join(lines[200:]))
        size = log.stat().st_size + box.stat().st_size
        await until(lambda: collector.spool.backlog == 0 and spooled(collector) == size)
        await collector.stop(drain_seconds=5)

    asyncio.run(scenario())
    with DuckDBStore(tmp_path / "clean.duckdb") as clean:
        ingest_files(clean, settings, [str(SAMPLES / "postfix.log"), str(box)])
        expected = clean.summary(Scope(), ["tenant"])
        timings = clean.dovecot_timings(Scope(), ["tenant"])
    with ClickHouseStore(url) as fleet:
        assert rounded(fleet.summary(Scope(), ["tenant"])) == rounded(expected)
        assert rounded(fleet.dovecot_timings(Scope(), ["tenant"])) == rounded(timings)
        items = fleet.deliveries(DeliveryFilter(limit=1000)).items
        sides = [i.dovecot.host for i in items if i.dovecot is not None]
    assert sides and set(sides) == {"mda1"}  # the join across hosts


def rounded(value: Any) -> Any:
    """Plain data with floats to 12 significant digits (the engines' percentiles
    may differ in the last bit; see tests/app/store/test_contract.py)."""
    if hasattr(value, "model_dump"):
        return rounded(value.model_dump())
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return float(f"{value:.12g}") if isinstance(value, float) else value


def shipped_lines(url: str) -> int:
    with ClickHouseStore(url) as store:
        return sum(s.lines for s in store.sources())


def spooled(collector: Collector) -> int:
    """Bytes of the followed files committed to the spool."""
    return sum(c.offset for c in collector.spool.sources())


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
