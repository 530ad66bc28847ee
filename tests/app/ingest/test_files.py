"""Log files as sources: formats, identity, order, chunked reading."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from datetime import UTC
from pathlib import Path

import pytest

from mailtriage.app.ingest.files import (
    LogSource,
    identify,
    identify_stdin,
    order_sources,
    read_chunks,
    rotation_age,
)
from mailtriage.errors import InputError

LINES = [
    "Dec  3 16:00:01 mx1 postfix/qmgr[1]: AAAA1: removed",
    "Dec  3 16:00:02 mx1 postfix/qmgr[1]: AAAA2: removed",
    "Dec  3 16:00:03 mx1 postfix/qmgr[1]: AAAA3: removed",
]
TEXT = ("\n".join(LINES) + "\n").encode()


def all_lines(
    source: LogSource, start: int = 0, read_bytes: int = 1 << 20
) -> list[str]:
    return [
        line
        for chunk in read_chunks(source, start, read_bytes=read_bytes)
        for line in chunk.lines
    ]


def write(path: Path, data: bytes) -> LogSource:
    path.write_bytes(data)
    found = identify(str(path))
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("mail.log", lambda b: b),
        ("mail.log.1.gz", gzip.compress),
        ("mail.log.2.bz2", bz2.compress),
        ("mail.log.3.xz", lzma.compress),
        ("misnamed.log", gzip.compress),  # recognised by magic bytes, not the name
    ],
)
def test_compressed_files_read_like_plain_ones(
    tmp_path: Path, name: str, compress: object
) -> None:
    plain = write(tmp_path / "plain.log", TEXT)
    source = write(tmp_path / name, compress(TEXT))  # type: ignore[operator]
    assert all_lines(source) == LINES
    assert source.source_id == plain.source_id  # identity is the content's


def test_reading_resumes_at_an_offset_in_plain_and_compressed(tmp_path: Path) -> None:
    offset = len(LINES[0]) + 1
    plain = write(tmp_path / "mail.log", TEXT)
    packed = write(tmp_path / "mail.log.1.gz", gzip.compress(TEXT))
    assert all_lines(plain, offset) == LINES[1:]
    assert all_lines(packed, offset) == LINES[1:]


def test_chunks_end_on_line_boundaries_with_their_offsets(tmp_path: Path) -> None:
    source = write(tmp_path / "mail.log", TEXT)
    chunks = list(read_chunks(source, read_bytes=60))
    assert [line for c in chunks for line in c.lines] == LINES
    assert chunks[-1].eof and chunks[-1].end == len(TEXT)
    ends = [c.end for c in chunks]
    assert all(TEXT[end - 1 : end] == b"\n" for end in ends)


def test_invalid_utf8_nul_holes_and_crlf_are_harmless(tmp_path: Path) -> None:
    data = b"\x00\x00" + LINES[0].encode() + b"\r\n" + b"caf\xe9 \xff line\n\n"
    source = write(tmp_path / "odd.log", data)
    assert all_lines(source) == [LINES[0], "caf\ufffd \ufffd line"]


def test_last_line_without_newline_is_read(tmp_path: Path) -> None:
    source = write(tmp_path / "mail.log", TEXT.rstrip(b"\n"))
    chunks = list(read_chunks(source))
    assert [line for c in chunks for line in c.lines] == LINES
    assert chunks[-1].end == len(TEXT) - 1


def test_empty_file_has_no_identity_yet(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_bytes(b"")
    assert identify(str(tmp_path / "empty.log")) is None


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"\x1f\x8b\x08\x00garbage"), "cannot read"),
    ],
    ids=["missing", "directory", "corrupt-gzip"],
)
def test_unreadable_input_is_an_input_error(
    tmp_path: Path, setup: object, reason: str
) -> None:
    path = tmp_path / "bad.log.gz"
    setup(path)  # type: ignore[operator]
    with pytest.raises(InputError, match=reason) as err:
        identify(str(path))
    assert str(path) in str(err.value)


def test_truncated_gzip_fails_while_reading(tmp_path: Path) -> None:
    packed = gzip.compress(TEXT * 2000)
    path = tmp_path / "cut.log.gz"
    path.write_bytes(packed[: len(packed) // 2])
    source = identify(str(path))
    assert source is not None
    with pytest.raises(InputError, match=r"cut\.log\.gz"):
        all_lines(source)


def test_identity_records_device_and_inode(tmp_path: Path) -> None:
    source = write(tmp_path / "mail.log", TEXT)
    stat = os.stat(tmp_path / "mail.log")
    assert (source.device, source.inode) == (stat.st_dev, stat.st_ino)


def test_rename_keeps_the_identity_and_new_content_changes_it(tmp_path: Path) -> None:
    before = write(tmp_path / "mail.log", TEXT)
    os.rename(tmp_path / "mail.log", tmp_path / "mail.log.1")
    after = identify(str(tmp_path / "mail.log.1"))
    fresh = write(
        tmp_path / "mail.log", b"Dec  3 17:00:00 mx1 postfix/qmgr[1]: B: removed\n"
    )
    assert after is not None and after.source_id == before.source_id
    assert fresh.source_id != before.source_id


def test_stdin_source_replays_its_first_line() -> None:
    source, stream = identify_stdin(io.BytesIO(gzip.compress(TEXT)))
    assert source is not None and source.is_stdin
    assert all_lines_from(stream) == LINES
    assert source.compression == "gz"


def all_lines_from(stream: io.BufferedIOBase) -> list[str]:
    source = LogSource(path="-", source_id="x", head_hash="x", first_line="")
    return [
        line
        for chunk in read_chunks(source, stream=stream)  # type: ignore[arg-type]
        for line in chunk.lines
    ]


@pytest.mark.parametrize(
    ("path", "base", "age"),
    [
        ("/var/log/mail.log", "mail.log", 0.0),
        ("/var/log/mail.log.1", "mail.log", 1.0),
        ("/var/log/mail.log.3.gz", "mail.log", 3.0),
        ("/var/log/mail.log-20261201.xz", "mail.log", 1e12 - 20261201),
    ],
)
def test_rotation_age(path: str, base: str, age: float) -> None:
    assert rotation_age(path) == (base, age)


def test_rotated_set_is_ordered_by_first_timestamp(tmp_path: Path) -> None:
    days = {"mail.log": 4, "mail.log.1": 3, "mail.log.2.gz": 2, "mail.log.3.gz": 1}
    sources = []
    for name, day in days.items():
        data = f"Dec  {day} 10:00:00 mx1 postfix/qmgr[1]: A{day}: removed\n".encode()
        if name.endswith(".gz"):
            data = gzip.compress(data)
        sources.append(write(tmp_path / name, data))
    ordered = order_sources(sources, UTC, 2026)
    assert [Path(s.path).name for s in ordered] == [
        "mail.log.3.gz",
        "mail.log.2.gz",
        "mail.log.1",
        "mail.log",
    ]


def test_order_falls_back_to_the_rotation_number(tmp_path: Path) -> None:
    sources = [
        write(tmp_path / name, f"no timestamp here {name}\n".encode())
        for name in ("mail.log", "mail.log.2", "mail.log.10", "mail.log.1")
    ]
    ordered = order_sources(sources, UTC, 2026)
    assert [Path(s.path).name for s in ordered] == [
        "mail.log.10",
        "mail.log.2",
        "mail.log.1",
        "mail.log",
    ]


def test_duplicate_content_is_read_once(tmp_path: Path) -> None:
    first = write(tmp_path / "a.log", TEXT)
    copy = write(tmp_path / "b.log", TEXT)
    assert order_sources([first, copy], UTC, 2026) == [first]
