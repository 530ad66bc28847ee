"""Parsing plus assembly and classification speed, in lines per second on one core.

    .venv/bin/python bench/bench_assemble.py [FILE] [--lines N] [--repeat R]
        [--config TOML] [--no-keep-lines] [--batch-lines B]

The lines come as in ``bench_parse.py`` (FILE, else ``bench/generate.py``, else the
shared corpus repeated) and are read into memory first. One pass parses every line
with ``LineParser``, feeds it to an ``Assembler`` (which classifies every non-success)
and takes a batch every B lines, as the ingest pipeline does; the batches are dropped.
A second kind of pass only parses, so the cost of assembly shows beside it. Tenants
come from the ``[tenants.*]`` of ``--config`` when given (``generate.py`` writes one
beside its log), else two made-up tenants.

The process is pinned to one CPU and each figure is the best of R passes, timed in
CPU seconds of this process (``time.process_time``): on a machine shared with other
work, wall-clock time would also count the time other processes held the CPU. The
wall-clock figures and the load average are printed beside them. The cyclic garbage
collector runs with the threshold ingest uses (``--gc-threshold``, as
``pipeline.fewer_collections``; 700 is CPython's default). ``compiled`` says whether
the parser modules are compiled by mypyc, as a wheel install has them
(``bench/build_native.sh`` builds such a copy; the editable install is pure Python).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

from bench_parse import compiled, corpus_lines, generated_lines

from mailtriage.app.commands.parse import open_lines
from mailtriage.app.settings import TenantSettings, load_settings
from mailtriage.parsers.assembler import Assembler
from mailtriage.parsers.line import LineParser
from mailtriage.parsers.tenants import TenantMap


def tenant_map(config: str | None) -> TenantMap:
    """The tenants of ``config``, or two that own common generated domains."""
    if config is not None:
        return TenantMap.from_settings(load_settings(Path(config)).tenants)
    return TenantMap.from_settings(
        {
            "acme": TenantSettings(domains=["acme.example", "*.acme.example"]),
            "globex": TenantSettings(domains=["globex.example"]),
        }
    )


def parse_pass(lines: list[str]) -> tuple[float, float]:
    """CPU and wall seconds to parse every line, without assembly."""
    parse = LineParser(year=2026).parse
    start, wall = time.process_time(), time.perf_counter()
    for raw in lines:
        parse(raw)
    return time.process_time() - start, time.perf_counter() - wall


def one_pass(
    lines: list[str], tenants: TenantMap, keep_lines: bool, batch_lines: int
) -> tuple[float, float, dict[str, int]]:
    """CPU and wall seconds for one parse+assemble pass, and what it produced."""
    parser = LineParser(year=2026)
    asm = Assembler(tenants, keep_lines=keep_lines)
    produced = dict.fromkeys(("messages", "attempts", "dovecot", "lines"), 0)
    parse, feed = parser.parse, asm.feed
    start, wall = time.process_time(), time.perf_counter()
    for n, raw in enumerate(lines, 1):
        env, record = parse(raw)
        feed(env, record, raw)
        if n % batch_lines == 0:
            batch = asm.take()
            for name in produced:
                produced[name] += len(getattr(batch, name))
    batch = asm.take()
    elapsed, elapsed_wall = time.process_time() - start, time.perf_counter() - wall
    for name in produced:
        produced[name] += len(getattr(batch, name))
    produced["open_at_end"] = asm.open_messages
    produced["evicted"] = asm.evicted
    return elapsed, elapsed_wall, produced


def main() -> None:
    """Measure and print the rates as one JSON object."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("file", nargs="?")
    cli.add_argument("--lines", type=int, default=1_000_000)
    cli.add_argument("--repeat", type=int, default=3)
    cli.add_argument("--config")
    cli.add_argument("--no-keep-lines", action="store_true")
    cli.add_argument("--batch-lines", type=int, default=20_000)
    cli.add_argument("--gc-threshold", type=int, default=50_000)
    args = cli.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    if args.file:
        lines = list(open_lines(args.file))
        source = args.file
    else:
        generated = generated_lines(args.lines)
        lines = generated if generated is not None else corpus_lines(args.lines)
        source = "bench/generate.py" if generated is not None else "corpus, repeated"
    tenants = tenant_map(args.config)
    gc.collect()
    gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])

    best = best_wall = parse_best = parse_wall = float("inf")
    produced = dict[str, int]()
    for _ in range(args.repeat):
        elapsed, wall, produced = one_pass(
            lines, tenants, not args.no_keep_lines, args.batch_lines
        )
        best, best_wall = min(best, elapsed), min(best_wall, wall)
        cpu, wall = parse_pass(lines)
        parse_best, parse_wall = min(parse_best, cpu), min(parse_wall, wall)
    result = {
        "source": source,
        "lines": len(lines),
        "keep_lines": not args.no_keep_lines,
        "batch_lines": args.batch_lines,
        "gc_threshold": args.gc_threshold,
        "compiled": compiled(),
        "parse_assemble_classify_lines_per_second": round(len(lines) / best),
        "parse_assemble_classify_lines_per_wall_second": round(len(lines) / best_wall),
        "parse_only_lines_per_second": round(len(lines) / parse_best),
        "parse_only_lines_per_wall_second": round(len(lines) / parse_wall),
        "assembly_ns_per_line": round((best - parse_best) / len(lines) * 1e9),
        "produced": produced,
        "load_average_1m": os.getloadavg()[0],
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
