"""Log files as ingest sources: opening, identity, rotation order, chunked reading.

**Formats.** Plain files, gzip, bzip2 and xz (recognised by their magic bytes, not
their names) and standard input (``-``). Bytes are decoded as UTF-8 with
``errors="replace"``; NUL bytes (the hole a copy-truncated file gets when its writer
does not use O_APPEND) and carriage returns are dropped, and empty lines skipped, as
``mailtriage.app.ingest.follow`` does, so a followed file and an ingested one count
the same lines.

**Identity.** A source is named by a hash of its first line (at most
``FIRST_LINE_BYTES`` bytes, without the newline) of the decompressed content;
device and inode are recorded beside it. The decision table:

==========================  ========  ==========  =============================
case                        inode     first line  outcome
==========================  ========  ==========  =============================
read again                  same      same        resume at the checkpoint
renamed (``mail.log.1``)    same      same        resume at the checkpoint
compressed after rotation   other     same        resume (offsets count content)
copy of copy-truncate       other     same        resume at the checkpoint
truncated, written anew     same      other       a new source, read from 0
==========================  ========  ==========  =============================

So the inode alone never decides: a copy and a compressed rotation keep the content
(and the checkpoint) under another inode, and a truncated file keeps the inode with
new content. Offsets count bytes of the decompressed stream, so a plain file that was
rotated and then compressed resumes where the plain one stopped.

**Order.** Files are read oldest first: by the timestamp of their first line when
every file has one, otherwise by rotation suffix (``mail.log.3.gz`` before
``mail.log.2.gz`` before ``mail.log.1`` before ``mail.log``; dated suffixes such as
``mail.log-20240101`` in date order) within each base name. Standard input comes
last. A file whose content duplicates another (same identity) is read once.

**Reading.** ``read_chunks`` yields the complete lines of about ``READ_BYTES`` at a
time with the offset after them. A last line without a newline is taken at the end
of the file: ``mailtriage ingest`` reads files at rest (the follower waits for the
newline instead).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import IO, BinaryIO, cast

from mailtriage.errors import InputError
from mailtriage.parsers.envelope import EnvelopeParser

FIRST_LINE_BYTES = 4_096
READ_BYTES = 1 << 20
STDIN = "-"

_MAGIC = (
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)
_ROTATED = re.compile(r"^(?P<base>.+?)(?:\.(?P<n>\d+)|-(?P<date>\d{8,10}))$")
_COMPRESSED_SUFFIX = re.compile(r"\.(?:gz|bz2|xz)$")


@dataclass(frozen=True, slots=True)
class LogSource:
    """One input: where it is and who it is (see the module docstring)."""

    path: str
    source_id: str
    head_hash: str
    first_line: str
    compression: str | None = None
    device: int | None = None
    inode: int | None = None
    size: int | None = None
    mtime: float | None = None

    @property
    def is_stdin(self) -> bool:
        return self.path == STDIN


@dataclass(frozen=True, slots=True)
class Chunk:
    """Complete lines read from a source, and where the reading stands after them.

    ``end`` is the offset in the decompressed stream after the last line;
    ``raw_pos`` the position in the file as stored (for progress); ``eof`` marks
    the last chunk of the source.
    """

    lines: list[str]
    end: int
    raw_pos: int
    eof: bool


def head_hash(first_line: bytes) -> str:
    """The hash of a first line that names a source (also used by the follower)."""
    line = first_line[:FIRST_LINE_BYTES].rstrip(b"\n")
    return hashlib.sha256(line).hexdigest()[:32]


def source_id_for(first_line: bytes) -> str:
    """The source ID of content whose first line is ``first_line``."""
    return f"log:{head_hash(first_line)}"


def _compression(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _decompressing(raw: BinaryIO, compression: str | None) -> BinaryIO:
    # The caller closes the returned stream (a ``with`` block around it).
    stream: object = raw
    if compression == "gz":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    elif compression == "bz2":
        stream = bz2.BZ2File(raw, mode="rb")
    elif compression == "xz":
        stream = lzma.LZMAFile(raw, mode="rb")  # noqa: SIM115
    return cast(BinaryIO, stream)


class _Prefixed(io.RawIOBase):
    """A stream that first returns ``prefix``, then what ``rest`` returns (standard
    input after its first line was read to identify it)."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = prefix
        self._rest = rest
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
        else:
            data = self._rest.read(len(view))
            n = len(data)
            view[:n] = data
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos


def _first_line(stream: IO[bytes]) -> bytes:
    line = stream.readline(FIRST_LINE_BYTES)
    return line.rstrip(b"\n").rstrip(b"\r").strip(b"\x00")


def identify(path: str) -> LogSource | None:
    """The source at ``path``, None when it holds no line yet. InputError when it
    cannot be read (missing, a directory, no permission, corrupt compression)."""
    try:
        with open(path, "rb") as raw:
            stat = os.fstat(raw.fileno())
            compression = _compression(raw.read(6))
            raw.seek(0)
            with _decompressing(raw, compression) as stream:
                first = _first_line(stream)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise InputError(f"cannot read {path}: {_reason(exc)}") from exc
    if not first:
        return None
    return LogSource(
        path=path,
        source_id=source_id_for(first),
        head_hash=head_hash(first),
        first_line=first.decode("utf-8", errors="replace"),
        compression=compression,
        device=stat.st_dev,
        inode=stat.st_ino,
        size=stat.st_size,
        mtime=stat.st_mtime,
    )


def identify_stdin(stdin: BinaryIO) -> tuple[LogSource | None, BinaryIO]:
    """Standard input as a source, and the stream to read it from (which replays
    the first line read to identify it). Compressed input is decompressed."""
    head = stdin.read(6)
    compression = _compression(head)
    stream: BinaryIO = io.BufferedReader(_Prefixed(head, stdin))
    stream = _decompressing(stream, compression)
    first = stream.readline(FIRST_LINE_BYTES)
    replay = io.BufferedReader(_Prefixed(first, stream))
    clean = first.rstrip(b"\n").rstrip(b"\r").strip(b"\x00")
    if not clean:
        return None, replay
    source = LogSource(
        path=STDIN,
        source_id=source_id_for(clean),
        head_hash=head_hash(clean),
        first_line=clean.decode("utf-8", errors="replace"),
        compression=compression,
    )
    return source, replay


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


# -------------------------------------------------------------------- order


def rotation_age(path: str) -> tuple[str, float]:
    """The base name of a rotated log and how old its suffix says it is: 0 for the
    live file, N for ``.N``, older dates larger for ``-YYYYMMDD``."""
    name = _COMPRESSED_SUFFIX.sub("", os.path.basename(path))
    found = _ROTATED.match(name)
    if found is None:
        return name, 0.0
    if found["n"] is not None:
        return found["base"], float(found["n"])
    # Dated suffixes count down from far away, so any dated file is older than
    # the live one and an older date is older.
    return found["base"], 1e12 - float(found["date"])


def first_timestamp(source: LogSource, tz: tzinfo, year: int | None) -> float | None:
    """The time of the source's first line, as the ingest would read it."""
    parser = EnvelopeParser(tz=tz, reference_ts=source.mtime, year=year)
    env = parser.parse(source.first_line)
    return None if env is None else env.ts


def order_sources(
    sources: Sequence[LogSource], tz: tzinfo, year: int | None
) -> list[LogSource]:
    """Oldest first, duplicates (same identity) dropped; see the module docstring."""
    unique: dict[str, LogSource] = {}
    for source in sources:
        unique.setdefault(source.source_id, source)
    files = [s for s in unique.values() if not s.is_stdin]
    stdin = [s for s in unique.values() if s.is_stdin]
    stamps = {s.source_id: first_timestamp(s, tz, year) for s in files}
    if all(stamps[s.source_id] is not None for s in files):
        files.sort(key=lambda s: (stamps[s.source_id], -rotation_age(s.path)[1]))
    else:
        bases: dict[str, int] = {}
        for s in files:
            bases.setdefault(rotation_age(s.path)[0], len(bases))
        files.sort(
            key=lambda s: (bases[rotation_age(s.path)[0]], -rotation_age(s.path)[1])
        )
    return files + stdin


# ------------------------------------------------------------------ reading


def _read_full(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, fewer only at the end: chunk boundaries depend on the content
    alone, so that worker processes reading the same file agree on them."""
    data = stream.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r", "")
    lines = text.split("\n")
    if "\x00" in text:
        return [s for line in lines if (s := line.strip("\x00"))]
    if "\n\n" in text or text[:1] == "\n":
        return [line for line in lines if line]
    if lines[-1] == "":
        lines.pop()
    return lines


def read_chunks(
    source: LogSource,
    start: int = 0,
    *,
    stream: BinaryIO | None = None,
    read_bytes: int = READ_BYTES,
) -> Iterator[Chunk]:
    """The lines of ``source`` from offset ``start`` on, in chunks.

    ``stream`` is the already opened input for standard input. InputError when the
    file cannot be read or its compression is corrupt.
    """
    try:
        if stream is not None:
            yield from _chunks(stream, stream, start, read_bytes)
            return
        with (
            open(source.path, "rb") as raw,
            _decompressing(raw, source.compression) as content,
        ):
            if source.compression is None and start:
                raw.seek(start)
                yield from _chunks(content, raw, start, read_bytes, skip=False)
            else:
                yield from _chunks(content, raw, start, read_bytes)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise InputError(f"cannot read {source.path}: {_reason(exc)}") from exc


def _chunks(
    content: IO[bytes],
    raw: IO[bytes],
    start: int,
    read_bytes: int,
    *,
    skip: bool = True,
) -> Iterator[Chunk]:
    offset = 0
    if skip and start:
        while offset < start:
            data = content.read(min(read_bytes, start - offset))
            if not data:
                return
            offset += len(data)
    else:
        offset = start
    partial = b""
    while True:
        data = _read_full(content, read_bytes)
        if not data:
            if partial:
                offset += len(partial)
                yield Chunk(_lines(partial), offset, _tell(raw), True)
            else:
                yield Chunk([], offset, _tell(raw), True)
            return
        data = partial + data if partial else data
        cut = data.rfind(b"\n") + 1
        partial = data[cut:]
        if cut:
            offset += cut
            yield Chunk(_lines(data[:cut]), offset, _tell(raw), False)


def _tell(raw: IO[bytes]) -> int:
    try:
        return raw.tell()
    except (OSError, ValueError):
        return 0


def with_stat(source: LogSource) -> LogSource:
    """``source`` with its file's current size and mtime (after it was read)."""
    if source.is_stdin:
        return source
    try:
        stat = os.stat(source.path)
    except OSError:
        return source
    return replace(source, size=stat.st_size, mtime=stat.st_mtime)
