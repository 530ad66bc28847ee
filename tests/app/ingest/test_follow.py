"""Following real files: rotation by rename, copy-truncate, late files, restarts.

Every scenario writes a generated Postfix/Dovecot log (``bench/generate.py``) in
pieces while followers run against a real DuckDB store, then compares the store
with a clean ``ingest_files`` run over the same lines: the totals must be equal.
"""

from __future__ import annotations

import gzip
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from service_checks import clean_fingerprint, fingerprint, generate_log

from mailtriage.app.ingest.follow import Follower, StoreFileSources
from mailtriage.app.ingest.live import IngestQueue, IngestWriter
from mailtriage.app.ingest.pipeline import IngestPipeline
from mailtriage.app.settings import Settings, load_settings
from mailtriage.app.store import Store, open_store

POLL = 0.05


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    """A 6,000-line generated log, as lines, and its tenants file."""
    return generate_log(tmp_path_factory.mktemp("generated") / "gen.log", 6000)


def _settings(tenants: Path, db: Path) -> Settings:
    return load_settings(
        tenants,
        {"store": {"db": str(db)}, "ingest": {"batch_seconds": 0.1}},
    )


@pytest.fixture(scope="module")
def clean(
    generated: tuple[list[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The fingerprint of one clean ingest of the generated lines."""
    lines, tenants = generated
    result = clean_fingerprint(lines, tenants, tmp_path_factory.mktemp("clean"))
    assert result["lines"] == len(lines)
    return result


@dataclass
class Rig:
    """A store, its pipeline and writer, and followers: live ingest without HTTP."""

    settings: Settings
    store: Store
    queue: IngestQueue
    writer: IngestWriter
    followers: list[Follower]

    def follow(self, path: Path, **options: Any) -> Follower:
        follower = Follower(
            path,
            self.queue,
            StoreFileSources(self.store),
            poll_seconds=POLL,
            **options,
        )
        self.followers.append(follower)
        follower.start()
        return follower

    def wait_for_lines(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` lines are committed by this rig."""
        _wait(lambda: self.writer.lines_committed >= count, timeout)
        time.sleep(3 * POLL)  # nothing more may arrive
        assert self.writer.lines_committed == count

    def stop(self) -> None:
        for follower in self.followers:
            follower.stop()
        self.writer.stop()
        self.store.close()


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.fixture
def make_rig(
    generated: tuple[list[str], Path], tmp_path: Path
) -> Iterator[Callable[[], Rig]]:
    """Builds rigs over one database in ``tmp_path`` (a second rig is a restart)."""
    rigs: list[Rig] = []

    def build() -> Rig:
        settings = _settings(generated[1], tmp_path / "live.duckdb")
        store = open_store(settings)
        queue = IngestQueue(settings.ingest.queue_max_lines)
        writer = IngestWriter(
            IngestPipeline(store, settings), queue, batch_lines=2000, batch_seconds=0.1
        )
        writer.start()
        rig = Rig(settings, store, queue, writer, [])
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        if rig.writer.running:
            rig.stop()


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


# --------------------------------------------------------------------- scenarios


def test_rename_rotation_reads_the_old_file_to_its_end_then_the_new_one(
    generated: tuple[list[str], Path],
    make_rig: Callable[[], Rig],
    clean: dict[str, Any],
    tmp_path: Path,
) -> None:
    lines, _ = generated
    log = tmp_path / "mail.log"
    rig = make_rig()
    rig.follow(log)
    _append(log, "".join(lines[:2000]))
    # A last line without its newline waits for it.
    _append(log, lines[2000][:20])
    rig.wait_for_lines(2000)
    _append(log, lines[2000][20:] + "".join(lines[2001:3000]))
    rig.wait_for_lines(3000)
    # logrotate renames; the writer appends a little more before it reopens.
    os.rename(log, tmp_path / "mail.log.1")
    _append(tmp_path / "mail.log.1", "".join(lines[3000:3100]))
    _append(log, "".join(lines[3100:]))
    rig.wait_for_lines(len(lines))
    assert rig.followers[0].restarts == 1
    rig.stop()
    with open_store(rig.settings) as store:
        assert fingerprint(store) == clean


def test_copy_truncate_starts_the_truncated_file_again_without_double_counting(
    generated: tuple[list[str], Path],
    make_rig: Callable[[], Rig],
    clean: dict[str, Any],
    tmp_path: Path,
) -> None:
    lines, _ = generated
    log = tmp_path / "mail.log"
    rig = make_rig()
    rig.follow(log)
    _append(log, "".join(lines[:3000]))
    rig.wait_for_lines(3000)
    # logrotate copytruncate: copy, then truncate the file in place.
    shutil.copy(log, tmp_path / "mail.log.1")
    with log.open("r+") as fh:
        fh.truncate(0)
    time.sleep(3 * POLL)
    _append(log, "".join(lines[3000:]))
    rig.wait_for_lines(len(lines))
    rig.stop()
    with open_store(rig.settings) as store:
        assert fingerprint(store) == clean


def test_copy_truncate_noticed_even_when_the_file_regrew_past_the_offset(
    generated: tuple[list[str], Path],
    make_rig: Callable[[], Rig],
    clean: dict[str, Any],
    tmp_path: Path,
) -> None:
    lines, _ = generated
    log = tmp_path / "mail.log"
    first = "".join(lines[:500])
    rest = "".join(lines[500:])
    assert len(rest) > len(first)
    log.write_text(first)
    rig = make_rig()
    follower = rig.follow(log)
    rig.wait_for_lines(500)
    # Truncated and refilled beyond the old offset between two polls.
    follower.poll_seconds = 1.0
    time.sleep(0.1)
    log.write_text(rest)
    follower.poll_seconds = POLL
    rig.wait_for_lines(len(lines))
    rig.stop()
    with open_store(rig.settings) as store:
        assert fingerprint(store) == clean


def test_a_file_created_later_is_read_from_its_start(
    generated: tuple[list[str], Path],
    make_rig: Callable[[], Rig],
    clean: dict[str, Any],
    tmp_path: Path,
) -> None:
    lines, _ = generated
    log = tmp_path / "later.log"
    rig = make_rig()
    rig.follow(log, from_end=True)
    time.sleep(5 * POLL)
    log.write_text("".join(lines))
    rig.wait_for_lines(len(lines))
    rig.stop()
    with open_store(rig.settings) as store:
        assert fingerprint(store) == clean


def test_follow_from_end_skips_what_the_file_already_held(
    generated: tuple[list[str], Path], make_rig: Callable[[], Rig], tmp_path: Path
) -> None:
    lines, _ = generated
    log = tmp_path / "mail.log"
    log.write_text("".join(lines[:1000]))
    rig = make_rig()
    rig.follow(log, from_end=True)
    time.sleep(5 * POLL)
    _append(log, "".join(lines[1000:1200]))
    rig.wait_for_lines(200)
    rig.stop()


def test_restart_resumes_at_the_checkpoint(
    generated: tuple[list[str], Path],
    make_rig: Callable[[], Rig],
    clean: dict[str, Any],
    tmp_path: Path,
) -> None:
    lines, _ = generated
    log = tmp_path / "mail.log"
    log.write_text("".join(lines[:2500]))
    first = make_rig()
    first.follow(log)
    first.wait_for_lines(2500)
    first.stop()
    _append(log, "".join(lines[2500:]))
    second = make_rig()
    second.follow(log)
    second.wait_for_lines(len(lines) - 2500)
    second.stop()
    with open_store(second.settings) as store:
        assert fingerprint(store) == clean


@pytest.mark.parametrize("compress", [False, True], ids=["renamed", "compressed"])
def test_restart_reads_the_end_of_a_file_rotated_while_down(
    generated: tuple[list[str], Path],
    make_rig: Callable[[], Rig],
    clean: dict[str, Any],
    tmp_path: Path,
    compress: bool,
) -> None:
    lines, _ = generated
    log = tmp_path / "mail.log"
    log.write_text("".join(lines[:2000]))
    first = make_rig()
    first.follow(log)
    first.wait_for_lines(2000)
    first.stop()
    # While nobody follows: more lines, a rotation (and compression), a new file.
    _append(log, "".join(lines[2000:3000]))
    rotated = tmp_path / "mail.log.1"
    os.rename(log, rotated)
    if compress:
        with rotated.open("rb") as src, gzip.open(f"{rotated}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        rotated.unlink()
    log.write_text("".join(lines[3000:]))
    second = make_rig()
    second.follow(log)
    second.wait_for_lines(len(lines) - 2000)
    second.stop()
    with open_store(second.settings) as store:
        assert fingerprint(store) == clean
