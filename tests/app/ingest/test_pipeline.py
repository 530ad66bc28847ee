"""The ingest pipeline: idempotence, crash safety, rotation, workers, live use."""

from __future__ import annotations

import gzip
import itertools
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mailtriage.app.ingest.files import source_id_for
from mailtriage.app.ingest.pipeline import (
    IngestPipeline,
    host_key,
    ingest_files,
    pack_state,
    unpack_state,
)
from mailtriage.app.settings import Settings, load_settings
from mailtriage.app.store.base import Scope
from mailtriage.app.store.duckdb import DuckDBStore
from mailtriage.errors import InputError, StoreError
from mailtriage.parsers.envelope import EnvelopeParser
from mailtriage.parsers.model import Batch

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "tests" / "app"
SAMPLE = APP / "sample_mail.log"
SAMPLE_TENANTS = APP / "sample_tenants.toml"
MAILTRIAGE = Path(sys.executable).parent / "mailtriage"
GENERATED_LINES = 20_000

# What every table holds, in an order that does not depend on how the rows were
# batched: ids follow insertion order, and counts are added up when read.
CONTENTS = {
    "messages": "SELECT * FROM messages",
    "attempts": "SELECT * EXCLUDE (id) FROM attempts",
    "rejects": "SELECT * EXCLUDE (id) FROM rejects",
    "dovecot": "SELECT * FROM dovecot",
    "events": "SELECT * FROM events",
    "lines": "SELECT * FROM lines",
    "unparsed": "SELECT * FROM unparsed_shapes",
    "program_lines": "SELECT program, sum(lines) FROM program_lines GROUP BY program",
}


def contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            name: con.execute(f"{sql} ORDER BY ALL").fetchall()
            for name, sql in CONTENTS.items()
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """A generated two-host log, its tenants file and its truth."""
    log = tmp_path_factory.mktemp("gen") / "mail.log"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "generate.py"),
            str(log),
            "--lines",
            str(GENERATED_LINES),
            "--seed",
            "3",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    truth = json.loads(Path(f"{log}.truth.json").read_text())
    return log, Path(f"{log}.tenants.toml"), truth


def settings_for(tenants: Path, **ingest: Any) -> Settings:
    return load_settings(tenants, {"ingest": {"year": 2026, **ingest}})


@pytest.fixture(scope="module")
def clean(
    generated: tuple[Path, Path, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """One clean single-process ingest of the generated log."""
    log, tenants, _ = generated
    path = tmp_path_factory.mktemp("clean") / "clean.duckdb"
    with DuckDBStore(path) as store:
        ingest_files(store, settings_for(tenants), [str(log)])
    return path


def ingest(db: Path, tenants: Path, paths: list[Path], **kw: Any) -> list[str]:
    with DuckDBStore(db) as store:
        result = ingest_files(
            store, settings_for(tenants), [str(p) for p in paths], **kw
        )
    return [s.status for s in result.sources]


def split(log: Path, *fractions: float) -> list[bytes]:
    lines = log.read_bytes().splitlines(keepends=True)
    cuts = [0, *(int(len(lines) * f) for f in fractions), len(lines)]
    return [b"".join(lines[a:b]) for a, b in itertools.pairwise(cuts)]


# ------------------------------------------------------------------ truth


def test_ingest_counts_what_the_generator_says(
    generated: tuple[Path, Path, Any], clean: Path
) -> None:
    _, _, truth = generated
    with DuckDBStore(clean) as store:
        totals = store.summary(Scope()).totals
        tenants = {
            g.key["tenant"]: g for g in store.summary(Scope(), ["tenant"]).groups
        }
        traffic = store.traffic(Scope())
        rejects = sum(store.reject_counts(Scope()).values())
    for name in ("delivered", "bounced", "expired", "deferred", "deferral_attempts"):
        assert getattr(totals, name) == truth["totals"][name], name
        for entry in truth["by_tenant"]:
            assert getattr(tenants[entry["tenant"]], name) == entry[name], entry
    assert traffic.received == truth["totals"]["messages_received"]
    assert traffic.bytes_received == truth["totals"]["bytes_received"]
    assert rejects == truth["totals"]["rejects"]


# ------------------------------------------------------------ idempotence


def test_ingesting_the_same_file_twice_adds_nothing(
    generated: tuple[Path, Path, Any], clean: Path, tmp_path: Path
) -> None:
    log, tenants, _ = generated
    db = tmp_path / "twice.duckdb"
    assert ingest(db, tenants, [log]) == ["read"]
    assert ingest(db, tenants, [log]) == ["skipped"]
    assert contents(db) == contents(clean)


def test_sigkill_mid_ingest_then_rerun_equals_one_clean_run(
    generated: tuple[Path, Path, Any], clean: Path, tmp_path: Path
) -> None:
    log, tenants, _ = generated
    db = tmp_path / "killed.duckdb"
    args = [str(MAILTRIAGE), "ingest", "--db", str(db), "--config", str(tenants)]
    args += ["--year", "2026", str(log)]
    env = {
        **os.environ,
        "MAILTRIAGE_SERVER__LOG_LEVEL": "DEBUG",
        "MAILTRIAGE_INGEST__FILE_BATCH_LINES": "500",
    }
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        commits = 0
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while commits < 5 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            commits += "committed batch" in line
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
    assert commits == 5
    assert proc.returncode == -signal.SIGKILL

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 resumed" in rerun.stdout
    assert contents(db) == contents(clean)


# --------------------------------------------------------------- workers


def test_two_workers_store_the_same_rows_as_one(
    generated: tuple[Path, Path, Any], clean: Path, tmp_path: Path
) -> None:
    log, tenants, _ = generated
    db = tmp_path / "two.duckdb"
    with DuckDBStore(db) as store:
        result = ingest_files(store, settings_for(tenants), [str(log)], workers=2)
    assert (result.workers, result.partitions) == (2, 2)
    assert result.lines == GENERATED_LINES
    assert contents(db) == contents(clean)


@pytest.mark.parametrize("workers", [1, 2])
def test_rows_gathered_as_columns_over_several_takes_are_stored_once(
    generated: tuple[Path, Path, Any], clean: Path, tmp_path: Path, workers: int
) -> None:
    # Messages are taken again as they change: a commit that gathers several
    # takes must still hold each queue-ID lifetime once, in its latest state.
    log, tenants, _ = generated
    db = tmp_path / "gathered.duckdb"
    settings = settings_for(tenants, file_batch_lines=6000, file_column_lines=700)
    with DuckDBStore(db) as store:
        result = ingest_files(store, settings, [str(log)], workers=workers)
    assert result.lines == GENERATED_LINES
    assert contents(db) == contents(clean)


def test_partition_count_of_a_database_is_kept(
    generated: tuple[Path, Path, Any], clean: Path, tmp_path: Path
) -> None:
    log, tenants, _ = generated
    first, rest = split(log, 0.5)
    path = tmp_path / "mail.log"
    path.write_bytes(first)
    db = tmp_path / "kept.duckdb"
    with DuckDBStore(db) as store:
        one = ingest_files(store, settings_for(tenants), [str(path)], workers=2)
        with path.open("ab") as fh:
            fh.write(rest)
        two = ingest_files(store, settings_for(tenants), [str(path)], workers=1)
        live = IngestPipeline(store, settings_for(tenants))
        assert live.partitions == 2
    assert (one.partitions, two.partitions, two.workers) == (2, 2, 1)
    assert contents(db) == contents(clean)


# -------------------------------------------------------------- rotation


def test_renamed_rotated_file_is_not_read_again(
    generated: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    log, tenants, _ = generated
    live = tmp_path / "mail.log"
    shutil.copy(log, live)
    db = tmp_path / "r.duckdb"
    ingest(db, tenants, [live])
    before = contents(db)
    live.rename(tmp_path / "mail.log.1")
    assert ingest(db, tenants, [tmp_path / "mail.log.1"]) == ["skipped"]
    assert contents(db) == before


def test_renamed_file_that_grew_resumes_at_its_checkpoint(
    generated: tuple[Path, Path, Any], clean: Path, tmp_path: Path
) -> None:
    log, tenants, _ = generated
    one, two, three = split(log, 0.3, 0.6)
    live = tmp_path / "mail.log"
    live.write_bytes(one)
    db = tmp_path / "grew.duckdb"
    ingest(db, tenants, [live])
    with live.open("ab") as fh:  # written after the ingest, before rotation
        fh.write(two)
    live.rename(tmp_path / "mail.log.1")
    live.write_bytes(three)
    statuses = ingest(db, tenants, [live, tmp_path / "mail.log.1"])
    assert sorted(statuses) == ["read", "resumed"]
    assert contents(db) == contents(clean)


def test_copy_truncate_counts_every_line_once(
    generated: tuple[Path, Path, Any], clean: Path, tmp_path: Path
) -> None:
    log, tenants, _ = generated
    one, two, three = split(log, 0.4, 0.7)
    live = tmp_path / "mail.log"
    live.write_bytes(one)
    db = tmp_path / "ct.duckdb"
    ingest(db, tenants, [live])
    with live.open("ab") as fh:
        fh.write(two)
    shutil.copyfile(live, tmp_path / "mail.log.1")  # logrotate copytruncate
    with live.open("r+b") as fh:
        fh.truncate(0)
        fh.write(three)
    ingest(db, tenants, [tmp_path / "mail.log.1", live])
    assert contents(db) == contents(clean)


def test_compressed_rotation_resumes_where_the_plain_file_stopped(
    generated: tuple[Path, Path, Any], clean: Path, tmp_path: Path
) -> None:
    log, tenants, _ = generated
    one, two, three = split(log, 0.5, 0.8)
    live = tmp_path / "mail.log"
    live.write_bytes(one)
    db = tmp_path / "gz.duckdb"
    ingest(db, tenants, [live])
    (tmp_path / "mail.log.1.gz").write_bytes(gzip.compress(one + two))
    live.write_bytes(three)
    statuses = ingest(db, tenants, [live, tmp_path / "mail.log.1.gz"])
    assert sorted(statuses) == ["read", "resumed"]
    assert contents(db) == contents(clean)
    assert ingest(db, tenants, [tmp_path / "mail.log.1.gz"]) == ["skipped"]


# ------------------------------------------------------------ live use


def sample_lines() -> list[str]:
    return SAMPLE.read_text().splitlines()


def test_live_pipeline_resumes_state_across_restarts(tmp_path: Path) -> None:
    settings = settings_for(SAMPLE_TENANTS)
    lines = sample_lines()
    whole = tmp_path / "whole.duckdb"
    with DuckDBStore(whole) as store:
        pipeline = IngestPipeline(store, settings)
        pipeline.feed_lines("s", lines, 1000)
        pipeline.flush()
    parts = tmp_path / "parts.duckdb"
    for start, end in ((0, 9), (9, 20), (20, len(lines))):
        with DuckDBStore(parts) as store:  # a new process each time
            pipeline = IngestPipeline(store, settings)
            assert pipeline.committed_offset("s") == (start or None)
            pipeline.feed_lines("s", lines[start:end], end)
            batch = pipeline.flush()
            assert batch.lines_read == end - start
    assert contents(parts) == contents(whole)


def test_pipeline_names_followed_files_like_the_file_reader(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_text("\n".join(sample_lines()) + "\n")
    first = sample_lines()[0].encode()
    with DuckDBStore(tmp_path / "f.duckdb") as store:
        pipeline = IngestPipeline(store, settings_for(SAMPLE_TENANTS))
        source = pipeline.source_id(path, os.stat(path), first)
        assert source == source_id_for(first)
        assert pipeline.committed_offset(source) is None
        pipeline.feed_lines(source, sample_lines()[:3], 250)
        assert pipeline.committed_offset(source) == 250  # taken, not yet committed
        pipeline.flush()
        found = store.checkpoint(source)
    assert found is not None
    assert (found.path, found.inode, found.offset, found.lines) == (
        str(path),
        os.stat(path).st_ino,
        250,
        3,
    )


def test_hostless_lines_take_the_host_they_came_from(tmp_path: Path) -> None:
    lines = [
        "Dec 03 16:01:03 lmtp(alice@acme.example)<6122><rdBDBT+SEWvqFwAAg+zDdQ>: "
        "Info: msgid=<m9@remote.example>: saved mail to INBOX",
    ]
    with DuckDBStore(tmp_path / "h.duckdb") as store:
        pipeline = IngestPipeline(store, settings_for(SAMPLE_TENANTS), partitions=2)
        pipeline.feed_lines("push", lines, host="mda1")
        batch = pipeline.flush()
    assert [(row.host, row.recipient) for row in batch.dovecot] == [
        ("mda1", "alice@acme.example")
    ]


class FlakyStore(DuckDBStore):
    """A real store whose first write fails, as a full disk would."""

    failed = False

    def write(self, batch: Any, checkpoint: Any = None, **kw: Any) -> None:
        if not self.failed:
            self.failed = True
            raise StoreError("disk full")
        super().write(batch, checkpoint, **kw)


def test_failed_flush_keeps_its_rows_for_the_next(tmp_path: Path) -> None:
    settings = settings_for(SAMPLE_TENANTS)
    lines = sample_lines()
    whole = tmp_path / "whole.duckdb"
    with DuckDBStore(whole) as store:
        pipeline = IngestPipeline(store, settings)
        pipeline.feed_lines("s", lines, 1000)
        pipeline.flush()
    flaky_path = tmp_path / "flaky.duckdb"
    with FlakyStore(flaky_path) as flaky:
        pipeline = IngestPipeline(flaky, settings)
        pipeline.feed_lines("s", lines[:20], 500)
        with pytest.raises(StoreError):
            pipeline.flush()
        assert pipeline.pending_lines == 20
        pipeline.feed_lines("s", lines[20:], 1000)
        pipeline.flush()
    assert contents(flaky_path) == contents(whole)


def test_partitioned_pipeline_stores_what_one_partition_does(tmp_path: Path) -> None:
    settings = settings_for(SAMPLE_TENANTS)
    results = []
    for partitions in (1, 3):
        path = tmp_path / f"p{partitions}.duckdb"
        with DuckDBStore(path) as store:
            pipeline = IngestPipeline(store, settings, partitions=partitions)
            pipeline.feed_lines("s", sample_lines(), 1000)
            pipeline.flush()
        results.append(contents(path))
    assert results[0] == results[1]


# ---------------------------------------------------------------- pieces


def test_host_key_agrees_with_the_envelope_parser(corpus_dir: Path) -> None:
    checked = 0
    for log in sorted(corpus_dir.glob("*.log")):
        parser = EnvelopeParser(year=2026)
        for line in log.read_text(errors="replace").splitlines():
            env = parser.parse(line)
            if env is not None:
                checked += 1
                assert host_key(line) == env.host, line
    assert checked > 1000


def test_state_packs_partitions_and_refuses_garbage() -> None:
    assert unpack_state(pack_state([b"a", b"", b"ccc"])) == [b"a", b"", b"ccc"]
    with pytest.raises(StoreError, match="unreadable"):
        unpack_state(b"not a state")


def test_flush_without_lines_writes_nothing(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "e.duckdb") as store:
        batch = IngestPipeline(store, settings_for(SAMPLE_TENANTS)).flush()
        assert isinstance(batch, Batch) and len(batch) == 0
        assert store.state() is None


def test_generated_lines_are_not_split_across_segments(
    generated: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    log, tenants, _ = generated
    db = tmp_path / "seg.duckdb"
    with DuckDBStore(db) as store:
        settings = settings_for(tenants, file_batch_lines=777)
        result = ingest_files(store, settings, [str(log)])
        (source,) = store.sources()
    assert result.lines == GENERATED_LINES == source.lines
    assert source.offset == log.stat().st_size


def test_a_failing_worker_stops_the_ingest_with_its_reason(
    generated: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    log, tenants, _ = generated
    packed = gzip.compress(log.read_bytes())
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    settings = settings_for(tenants, file_batch_lines=2000)
    with DuckDBStore(tmp_path / "w.duckdb") as store:
        with pytest.raises(InputError, match=r"cannot read .*cut\.log\.gz"):
            ingest_files(store, settings, [str(cut)], workers=2)
        committed = store.checkpoint(source_id_for(log.read_bytes().split(b"\n")[0]))
    assert committed is not None and 0 < committed.offset < log.stat().st_size
    assert multiprocessing.active_children() == []


def test_a_failing_commit_stops_a_file_ingest(
    generated: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    log, tenants, _ = generated
    with (
        FlakyStore(tmp_path / "f.duckdb") as store,
        pytest.raises(StoreError, match="disk full"),
    ):
        ingest_files(store, settings_for(tenants), [str(log)])
