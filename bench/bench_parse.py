"""Envelope plus record parsing speed, in lines per second on one core.

    .venv/bin/python bench/bench_parse.py [FILE] [--lines N] [--repeat R]

FILE is a log (plain, .gz, .bz2, .xz). Without one, the script makes a realistic
million-line log with ``bench/generate.py`` when that exists, and otherwise repeats the
Postfix and Dovecot lines of the shared corpus to a million lines. The lines are read
into memory first, so the figures are parsing only (no disk, no decompression); the
process is pinned to one CPU. Each measurement is the best of R runs, by wall clock
and by this process's CPU time; the load average is printed because other work on the
machine slows the wall-clock figure. ``compiled`` says whether the parser modules are
compiled by mypyc, as a wheel install has them (``bench/build_native.sh`` builds such
a copy; the editable install is pure Python); the garbage collector keeps CPython's
default threshold here.
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
from mailtriage.parsers import line as line_module
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
        subprocess.run(command, check=True, capture_output=True)
        return list(open_lines(str(out)))


def compiled() -> bool:
    """True when the parser modules are compiled (a wheel, bench/build_native.sh)."""
    return not (line_module.__file__ or "").endswith(".py")


def best_rate(
    parse: Callable[[str], object], lines: list[str], repeat: int
) -> tuple[float, float]:
    """Best lines-per-second of ``repeat`` passes: by wall clock, and by the CPU time
    of this process (which other work on a shared machine does not inflate)."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for raw in lines:
            parse(raw)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return len(lines) / best_wall, len(lines) / best_cpu


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
    envelope = best_rate(
        EnvelopeParser(reference_ts=reference).parse, lines, args.repeat
    )
    full = best_rate(LineParser(reference_ts=reference).parse, lines, args.repeat)
    result = {
        "source": source,
        "lines": len(lines),
        "envelope_lines_per_s": round(envelope[0]),
        "envelope_lines_per_cpu_s": round(envelope[1]),
        "envelope_and_record_lines_per_s": round(full[0]),
        "envelope_and_record_lines_per_cpu_s": round(full[1]),
        "load_average_1m": os.getloadavg()[0],
        "compiled": compiled(),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
