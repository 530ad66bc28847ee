"""The ClickHouse store on its own: urls, schema, retention, and the write protocol
that stands in for a transaction (rows first, one atomic commit insert last,
uncommitted rows removed before a stream writes again), down to SIGKILL.

The answers of its queries are held against DuckDB's in ``test_contract.py``. The
network path runs against a real server when ``CLICKHOUSE_URL`` names one
(``clickhouse://user:password@127.0.0.1:8123/test``); none can be installed here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store import open_store
from mailtriage.app.store.base import Checkpoint, DeliveryFilter, Scope
from mailtriage.app.store.clickhouse import (
    DEFAULT_DATABASE,
    SCHEMA_VERSION,
    ClickHouseStore,
    parse_target,
)
from mailtriage.app.store.columns import ROW_TYPES, ColumnBatch, to_columns
from mailtriage.app.store.duckdb import DuckDBStore
from mailtriage.errors import ConfigError, SchemaError, StoreError
from mailtriage.parsers.model import AttemptRow, Batch, UnparsedRow

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CHILD = HERE / "clickhouse_child.py"
GENERATOR = REPO / "bench" / "generate.py"
T0 = 1796313600.0  # 2026-12-03T16:00:00Z


@pytest.fixture
def url(new_chdb_url: Callable[[], str]) -> str:
    return new_chdb_url()


@pytest.fixture
def store(url: str) -> Iterator[ClickHouseStore]:
    opened = ClickHouseStore(url)
    yield opened
    opened.close()


def attempt(recipient: str, ts: float, status: str = "sent") -> AttemptRow:
    return AttemptRow(
        ts=ts,
        host="mx1",
        queue_id="AAA",
        message_key="mx1/AAA/1",
        recipient=recipient,
        recipient_domain=recipient.split("@")[1],
        transport="smtp",
        status=status,
        final=status != "deferred",
        tenant="acme",
    )


def delivered(store: ClickHouseStore) -> int:
    return store.summary(Scope()).totals.delivered


# ------------------------------------------------------------------- urls


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("chdb:///var/lib/mt", ("/var/lib/mt", DEFAULT_DATABASE, None)),
        ("chdb:///var/lib/mt?database=fleet", ("/var/lib/mt", "fleet", None)),
        ("chdb://memory", ("", DEFAULT_DATABASE, None)),
        ("clickhouse://ch.example:9123/mail", (None, "mail", "ch.example")),
        ("clickhouse://u:p%40ss@10.0.0.5/", (None, DEFAULT_DATABASE, "10.0.0.5")),
    ],
)
def test_urls_name_the_engine_and_database(
    url: str, expected: tuple[str | None, str, str | None]
) -> None:
    target = parse_target(url)
    assert (target.chdb_path, target.database, target.host) == expected


def test_network_url_keeps_its_password_out_of_messages() -> None:
    target = parse_target("clickhouses://ops:s3cret@ch.example/mail")
    assert (target.port, target.secure, target.password) == (8443, True, "s3cret")
    assert "s3cret" not in target.label
    assert parse_target("clickhouse://ch.example/mail").port == 8123


@pytest.mark.parametrize(
    "url",
    ["postgres://x/y", "chdb://relative/dir", "clickhouse://h/mail;drop", "chdb://"],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_target(url)


def test_open_store_dispatches_on_the_url(url: str, tmp_path: Path) -> None:
    settings = load_settings(None, {"store": {"url": url, "retention_days": 30}})
    with open_store(settings) as opened:
        assert isinstance(opened, ClickHouseStore)
        assert opened.retention_days == 30
    default = load_settings(None, {"store": {"db": str(tmp_path / "d.duckdb")}})
    with open_store(default) as embedded:
        assert isinstance(embedded, DuckDBStore)


# ----------------------------------------------------------------- schema


def test_every_row_field_has_a_column(store: ClickHouseStore) -> None:
    for name, row_type in ROW_TYPES.items():
        if name == "unparsed":
            continue  # kept in the ledger, one row per shape
        found = {
            row[0]
            for row in store._rows(
                "SELECT name FROM system.columns WHERE database = {d:String} "
                "AND table = {t:String}",
                {"d": store.database, "t": name},
                "describing",
            )
        }
        missing = {f.name for f in fields(row_type)} - found
        assert not missing, f"table {name} lacks columns {missing}: add a migration"


def test_reopening_keeps_rows_and_does_not_migrate_again(url: str) -> None:
    with ClickHouseStore(url) as first:
        first.write(Batch(attempts=[attempt("a@x.example", T0)]))
    with ClickHouseStore(url) as again:
        assert delivered(again) == 1
        versions = again._rows("SELECT version FROM schema_version", {}, "reading")
        assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))


def test_database_newer_than_the_code_is_refused(store: ClickHouseStore) -> None:
    store._client().insert(
        "schema_version",
        [[SCHEMA_VERSION + 1, "future", 0.0]],
        column_names=["version", "description", "applied"],
    )
    with pytest.raises(SchemaError, match=f"schema version {SCHEMA_VERSION + 1}"):
        ClickHouseStore(store.target)


def test_read_only_open_of_an_unmigrated_database_is_refused(url: str) -> None:
    with pytest.raises(SchemaError, match="without read-only"):
        ClickHouseStore(url, read_only=True)


def test_retention_sets_a_ttl_that_drops_old_days(url: str) -> None:
    old, recent = 1_600_000_000.0, time.time() - 3600  # September 2020, an hour ago
    with ClickHouseStore(url, retention_days=3650) as store:
        store.write(Batch(attempts=[attempt("a@x.example", old)]))
        store.write(Batch(attempts=[attempt("b@x.example", recent)]))
        assert delivered(store) == 2
    with ClickHouseStore(url, retention_days=7) as store:
        store._command("OPTIMIZE TABLE attempts FINAL", "merging")
        items = store.deliveries(DeliveryFilter()).items
        assert [i.recipient for i in items] == ["b@x.example"]
        assert "TTL" in table_definition(store, "attempts")
    with ClickHouseStore(url) as store:
        assert "TTL" not in table_definition(store, "attempts")
    with ClickHouseStore(url, retention_days=30) as store:
        assert "toIntervalDay(30)" in table_definition(store, "attempts")


def table_definition(store: ClickHouseStore, table: str) -> str:
    rows = store._rows(
        "SELECT engine_full FROM system.tables WHERE database = {d:String} "
        "AND name = {t:String}",
        {"d": store.database, "t": table},
        "describing",
    )
    return str(rows[0][0])


# ------------------------------------------------------- the write protocol


class FailingCommit(ClickHouseStore):
    """A store whose next commit insert fails; ``landed`` makes it fail after the
    commit reached the table, ``blind`` makes the server unable to tell."""

    fail = False
    landed = False
    blind = False
    resolve_pause_seconds = 0.001

    def _insert_ledger(self, rows: list[list[Any]], doing: str) -> None:
        if self.fail and doing == "committing a batch":
            self.fail = False
            if self.landed:
                super()._insert_ledger(rows, doing)
            raise StoreError("connection reset while committing")
        super()._insert_ledger(rows, doing)

    def _read_committed(self, stream: str) -> int:
        if self.blind:
            raise StoreError("server unreachable")
        return super()._read_committed(stream)


def test_a_failed_commit_leaves_no_rows_behind(url: str) -> None:
    with FailingCommit(url) as store:
        store.write(Batch(attempts=[attempt("a@x.example", T0)]), state=b"one")
        store.fail = True
        with pytest.raises(StoreError):
            store.write(
                Batch(attempts=[attempt("b@x.example", T0), attempt("c@x", T0)]),
                Checkpoint(source_id="s", offset=9),
                state=b"two",
            )
        assert delivered(store) == 1
        assert store.checkpoint("s") is None
        assert store.state() == b"one"
        store.write(Batch(attempts=[attempt("d@x.example", T0)]))
        assert delivered(store) == 2


def test_rows_of_a_batch_never_committed_go_before_the_stream_writes_again(
    url: str,
) -> None:
    crashed = ClickHouseStore(url)
    crashed.write(Batch(attempts=[attempt("a@x.example", T0)]), stream="mx1")
    crashed.write(Batch(attempts=[attempt("z@x.example", T0)]), stream="mx2")
    # The process dies between the rows and the commit of its next batch.
    crashed._insert_rows(rows_of("b@x.example", "c@x.example"), "mx1", 2)
    with ClickHouseStore(url) as reader:
        assert delivered(reader) == 4  # a reader sees them until the writer is back
        reader.write(Batch(attempts=[attempt("y@x.example", T0)]), stream="mx2")
        assert delivered(reader) == 5  # another stream leaves them alone
    with ClickHouseStore(url) as restarted:
        restarted.write(Batch(attempts=[attempt("d@x.example", T0)]), stream="mx1")
        recipients = {i.recipient for i in restarted.deliveries(DeliveryFilter()).items}
        assert recipients == {
            "a@x.example",
            "d@x.example",
            "z@x.example",
            "y@x.example",
        }
    crashed.close()


def rows_of(*recipients: str) -> ColumnBatch:
    return to_columns(Batch(attempts=[attempt(r, T0) for r in recipients]))


def test_a_commit_that_landed_despite_an_error_counts_once(url: str) -> None:
    with FailingCommit(url) as store:
        store.fail = store.landed = True
        store.write(Batch(attempts=[attempt("a@x.example", T0)]), state=b"one")
        assert delivered(store) == 1
        assert store.state() == b"one"


def test_a_commit_of_unknown_outcome_stops_the_stream_until_restart(
    url: str,
) -> None:
    with FailingCommit(url) as store:
        store.write(Batch(attempts=[attempt("a@x.example", T0)]), state=b"zero")
        store.fail = store.landed = store.blind = True
        with pytest.raises(StoreError, match="connection reset"):
            store.write(Batch(attempts=[attempt("b@x.example", T0)]), state=b"one")
        store.blind = False
        with pytest.raises(StoreError, match="restart"):
            store.write(Batch(attempts=[attempt("b@x.example", T0)]), state=b"one")
        store.write(Batch(attempts=[attempt("z@x.example", T0)]), stream="other")
    with ClickHouseStore(url) as restarted:
        assert restarted.state() == b"one"
        restarted.write(Batch(attempts=[attempt("c@x.example", T0)]), state=b"two")
        assert delivered(restarted) == 4  # a, b (it did land), z, c


def test_unparsed_and_line_counts_are_committed_with_the_checkpoint(
    url: str,
) -> None:
    batch = Batch(
        unparsed=[UnparsedRow("cron", "message", "x <N>", "x 1", 4, T0, T0)],
        lines_read=10,
        lines_by_program={"cron": 4, "postfix/smtpd": 6},
    )
    with FailingCommit(url) as store:
        store.fail = True
        with pytest.raises(StoreError):
            store.write(batch)
        assert store.unparsed(Scope()).lines == 0
        store.write(batch)
        found = store.unparsed(Scope())
        assert (found.lines, found.unparsed) == (10, 4)


def test_queries_run_from_threads_while_another_writes(
    store: ClickHouseStore,
) -> None:
    errors: list[BaseException] = []

    def query() -> None:
        try:
            for _ in range(10):
                store.summary(Scope(), ["tenant"])
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=query) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(10):
        store.write(Batch(attempts=[attempt(f"u{i}@x.example", T0 + i)]))
    for t in threads:
        t.join(60)
    assert errors == []
    assert delivered(store) == 10


# ----------------------------------------------------------------- SIGKILL


@pytest.fixture(scope="module")
def crash_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crash") / "mail.log"
    subprocess.run(
        [sys.executable, str(GENERATOR), str(out), "--lines", "20000", "--seed", "11"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def child(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def clean_totals(log: Path, config: Path, directory: Path) -> dict[str, Any]:
    settings = load_settings(
        config, {"ingest": {"year": 2026, "file_batch_lines": 2000}}
    )
    with DuckDBStore(directory / "clean.duckdb") as clean:
        ingest_files(clean, settings, [str(log)])
        return {
            "summary": clean.summary(Scope(), ["tenant"]).model_dump(),
            "traffic": clean.traffic(Scope()).model_dump(),
            "unparsed": clean.unparsed(Scope(), 100).model_dump(),
            "range": clean.data_range(Scope()).model_dump(),
            "rejects": clean.reject_counts(Scope()),
        }


def rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


def test_sigkill_between_rows_and_commit_then_rerun_counts_once(
    crash_log: Path, tmp_path: Path
) -> None:
    config = crash_log.with_name(crash_log.name + ".tenants.toml")
    url = f"chdb://{tmp_path / 'engine'}?database=crash"
    died = child("ingest", url, str(config), str(crash_log), "--die-at", "4")
    assert died.returncode == -signal.SIGKILL
    assert died.stdout.count("committed") == 3
    rerun = child("ingest", url, str(config), str(crash_log))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "removed rows of an uncommitted batch" in rerun.stderr
    found = child("totals", url)
    assert found.returncode == 0, found.stderr[-2000:]
    expected = clean_totals(crash_log, config, tmp_path)
    assert rounded(json.loads(found.stdout)) == rounded(expected)
    assert expected["summary"]["totals"]["delivered"] > 0


def test_sigkill_at_any_moment_then_rerun_counts_once(
    crash_log: Path, tmp_path: Path
) -> None:
    config = crash_log.with_name(crash_log.name + ".tenants.toml")
    url = f"chdb://{tmp_path / 'engine'}?database=crash"
    with subprocess.Popen(
        [sys.executable, str(CHILD), "ingest", url, str(config), str(crash_log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("committed 2"):
                    os.kill(proc.pid, signal.SIGKILL)
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)
    rerun = child("ingest", url, str(config), str(crash_log))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    found = child("totals", url)
    assert rounded(json.loads(found.stdout)) == rounded(
        clean_totals(crash_log, config, tmp_path)
    )


# ------------------------------------------------------------ network path


@pytest.mark.clickhouse_server
@pytest.mark.skipif(
    not os.environ.get("CLICKHOUSE_URL"),
    reason="set CLICKHOUSE_URL=clickhouse://user:password@host:8123/db to test a "
    "ClickHouse server (none can be installed on this machine)",
)
def test_network_server_answers_like_duckdb(tmp_path: Path) -> None:
    settings = load_settings(
        REPO / "samples" / "tenants.toml", {"ingest": {"year": 2026}}
    )
    files = [
        str(REPO / "samples" / "postfix.log"),
        str(REPO / "samples" / "dovecot.log"),
    ]
    # A database of its own, dropped afterwards, so runs do not add up.
    given = parse_target(os.environ["CLICKHOUSE_URL"])
    target = replace(given, database=f"mailtriage_test_{uuid.uuid4().hex[:12]}")
    server = ClickHouseStore(target)
    duck = DuckDBStore(tmp_path / "ref.duckdb")
    try:
        for backend in (server, duck):
            ingest_files(backend, settings, files)
        groups: Sequence[str] = ("tenant", "domain", "cause")
        for group in groups:
            assert rounded(server.summary(Scope(), [group]).model_dump()) == rounded(
                duck.summary(Scope(), [group]).model_dump()
            )
    finally:
        server._command(f"DROP DATABASE IF EXISTS {target.database}", "cleaning up")
        server.close()
        duck.close()
