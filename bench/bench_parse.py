"""Envelope plus record parsing speed, in lines per second on one core.

    .venv/bin/python bench/bench_parse.py [FILE] [--lines N] [--repeat R]

FILE is a log (plain, .gz, .bz2, .xz). Without one, the script makes a realistic
million-line log with ``bench/generate.py`` when that exists, and otherwise repeats the
Postfix and Dovecot lines of the shared corpus to a million lines. The lines are read
into memory first, so the figures are parsing only (no disk, no decompression); the
process is pinned to one CPU. Each measurement is the best of R runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mailtriage.app.commands.parse import open_lines
from mailtriage.parsers.envelope import EnvelopeParser
from mailtriage.parsers.line import LineParser, family_name

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"


def corpus_lines(target: int) -> list[str]:
    """Postfix and Dovecot lines of the corpus (with an envelope), repeated."""
    parser = LineParser()
    kept: list[str] = []
    for path in sorted(CORPUS.glob("*.log")):
        for raw in open_lines(str(path)):
            env, _ = parser.parse(raw)
            if env is not None and family_name(env.program) != "other":
                kept.append(raw)
    if not kept:
        raise SystemExit(f"no corpus at {CORPUS}; pass a log file")
    return (kept * (target // len(kept) + 1))[:target]


def generated_lines(target: int) -> list[str] | None:
    """Lines from bench/generate.py, when the generator exists."""
    generator = REPO / "bench" / "generate.py"
    if not generator.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.log"
        command = [sys.executable, str(generator), str(out), "--lines", str(target)]
        command += ["--seed", "1"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return list(open_lines(str(out)))


def best_rate(parse: Callable[[str], object], lines: list[str], repeat: int) -> float:
    """The best lines-per-second rate of ``repeat`` passes over ``lines``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for raw in lines:
            parse(raw)
        best = min(best, time.perf_counter() - start)
    return len(lines) / best


def main() -> None:
    """Measure and print the rates as one JSON object."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("file", nargs="?")
    cli.add_argument("--lines", type=int, default=1_000_000)
    cli.add_argument("--repeat", type=int, default=3)
    args = cli.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    if args.file:
        source, lines = args.file, list(open_lines(args.file))
    else:
        generated = generated_lines(args.lines)
        source = "bench/generate.py" if generated is not None else "corpus, repeated"
        lines = generated if generated is not None else corpus_lines(args.lines)

    reference = time.time()
    envelope = EnvelopeParser(reference_ts=reference).parse
    full = LineParser(reference_ts=reference).parse
    result = {
        "source": source,
        "lines": len(lines),
        "envelope_lines_per_s": round(best_rate(envelope, lines, args.repeat)),
        "envelope_and_record_lines_per_s": round(best_rate(full, lines, args.repeat)),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
