"""Check that builds of the parsers give the same output, record for record.

    .venv/bin/python bench/compare_builds.py FILE --build DIR [--build DIR ...]
        [--config TOML] [--fuzz N] [--seed S]

Each build runs in a process of its own with ``PYTHONPATH=DIR``; ``-`` (the default
first build) is the package as installed, so ``--build -`` plus ``--build DIR`` (made
by ``bench/build_native.sh DIR``) compares the pure-Python parsers with the compiled
ones. A build parses every line of FILE, then N lines fuzzed from them (cut short,
spliced, with characters or numbers changed), and feeds all of them to one
``Assembler`` with the tenants of ``--config``, taking a batch every 20,000 lines;
half-way it snapshots the assembler and goes on with a restored copy. Every envelope,
record, batch row and counter, and the final snapshot, goes into SHA-256 digests, one
per block of 20,000 lines, which must agree between builds. Exit status 1 when they do
not, naming the first block that differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mailtriage.app.commands.parse import open_lines
from mailtriage.app.settings import load_settings
from mailtriage.parsers.assembler import Assembler
from mailtriage.parsers.line import LineParser
from mailtriage.parsers.model import Batch
from mailtriage.parsers.tenants import TenantMap

BLOCK = 20_000
# Characters a mutation inserts: separators the parsers split on, digits, a NUL,
# non-ASCII letters, a replacement character and an escaped undecodable byte.
_NOISE = "<>[](),;:=/.@ -+_0123456789aZ\x00\té\u00ff\ufffd\udcff"
_NUMBERS = ("0", "-1", "99999999999999999999999", "1e309", "nan", "007", "٣")


def fuzzed(lines: list[str], count: int, seed: int) -> Iterator[str]:
    """``count`` lines made from ``lines`` by one or two random mutations each."""
    rng = random.Random(seed)
    for _ in range(count):
        line = rng.choice(lines)
        for _ in range(rng.randint(1, 2)):
            line = _mutate(rng, line, lines)
        yield line


def _mutate(rng: random.Random, line: str, lines: list[str]) -> str:
    at = rng.randrange(len(line) + 1)
    what = rng.randrange(6)
    if what == 0:  # cut short
        return line[:at]
    if what == 1:  # a span removed
        return line[:at] + line[at + rng.randint(1, 12) :]
    if what == 2:  # noise inserted
        noise = "".join(rng.choices(_NOISE, k=rng.randint(1, 4)))
        return line[:at] + noise + line[at:]
    if what == 3:  # the head of one line, the tail of another
        other = rng.choice(lines)
        return line[:at] + other[rng.randrange(len(other) + 1) :]
    if what == 4:  # a number replaced
        digits = [i for i, c in enumerate(line) if c.isdigit()]
        if digits:
            i = rng.choice(digits)
            return line[:i] + rng.choice(_NUMBERS) + line[i + 1 :]
        return line
    return line[:at] + line[at:].swapcase()


def _values(obj: Any) -> tuple[Any, ...]:
    return (
        type(obj).__name__,
        *(getattr(obj, f.name) for f in dataclasses.fields(obj)),
    )


def _batch_values(batch: Batch) -> tuple[Any, ...]:
    rows = tuple(
        tuple(_values(row) for row in getattr(batch, name))
        for name in ("messages", "attempts", "rejects", "dovecot", "events", "lines")
    )
    unparsed = tuple(_values(u) for u in batch.unparsed)
    counters = (batch.lines_read, batch.lines_unparsed, batch.lines_by_program)
    return (rows, unparsed, counters)


def digests(lines: list[str], tenants: TenantMap) -> dict[str, Any]:
    """The digests of one build (this process) over ``lines``."""
    parser = LineParser(year=2026)
    asm = Assembler(tenants)
    blocks: list[str] = []
    sha = hashlib.sha256()
    for n, raw in enumerate(lines, 1):
        env, record = parser.parse(raw)
        sha.update(repr((_values(env) if env else None, record.kind)).encode())
        sha.update(repr(_values(record)).encode("utf-8", "surrogatepass"))
        asm.feed(env, record, raw)
        if n == len(lines) // 2:
            asm = Assembler.restore(asm.snapshot(), tenants)
        if n % BLOCK == 0 or n == len(lines):
            batch_repr = repr(_batch_values(asm.take()))
            sha.update(batch_repr.encode("utf-8", "surrogatepass"))
            blocks.append(sha.hexdigest())
            sha = hashlib.sha256()
    asm.close_all()
    sha.update(repr(_batch_values(asm.take())).encode("utf-8", "surrogatepass"))
    sha.update(zlib.decompress(asm.snapshot()))
    return {"blocks": blocks, "end": sha.hexdigest(), "lines": len(lines)}


def run_build(build: str, args: argparse.Namespace) -> dict[str, Any]:
    """The digests of one build, computed in a child process."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if build != "-":
        env["PYTHONPATH"] = build
    command = [sys.executable, __file__, args.file, "--child"]
    command += ["--fuzz", str(args.fuzz), "--seed", str(args.seed)]
    if args.config:
        command += ["--config", args.config]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def child(args: argparse.Namespace) -> None:
    """Print this build's digests as JSON."""
    from mailtriage.parsers import line as line_module

    lines = list(open_lines(args.file))
    lines += fuzzed(lines, args.fuzz, args.seed)
    settings = load_settings(Path(args.config)).tenants if args.config else {}
    result = digests(lines, TenantMap.from_settings(settings))
    result["compiled"] = not (line_module.__file__ or "").endswith(".py")
    print(json.dumps(result))


def main() -> None:
    """Compare the builds and print what differs."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("file")
    cli.add_argument("--build", action="append", default=[])
    cli.add_argument("--config")
    cli.add_argument("--fuzz", type=int, default=700_000)
    cli.add_argument("--seed", type=int, default=1)
    cli.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = cli.parse_args()
    if args.child:
        child(args)
        return

    builds = args.build or ["-"]
    results = {build: run_build(build, args) for build in builds}
    first, reference = builds[0], results[builds[0]]
    differ = False
    for build in builds:
        result = results[build]
        pairs = zip(result["blocks"], reference["blocks"], strict=True)
        diff = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
        same = diff is None and result["end"] == reference["end"]
        where = "" if same else f" (first difference in lines {(diff or 0) * BLOCK}+)"
        compiled = "compiled" if result["compiled"] else "pure Python"
        verdict = "same as" if same else "DIFFERS from"
        print(f"{build} ({compiled}): {verdict} {first}{where}")
        differ = differ or not same
    print(f"{reference['lines']} lines, {len(reference['blocks'])} blocks")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
