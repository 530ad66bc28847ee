"""Ingest speed and memory, file to committed rows, side by side with pflogsumm.

    .venv/bin/python bench/bench_ingest.py [FILE] [--lines N] [--seed S]
        [--workers 1,2] [--one-core] [--json]

Without FILE a log of ``--lines`` lines is made by ``bench/generate.py`` (with its
tenants file). Each configuration runs in a fresh process into a fresh DuckDB file:
the figure is the wall time of ``ingest_files`` (reading, parsing, assembling,
converting to columns and committing every row), so interpreter start-up is not
counted; peak RSS is that process's and its worker processes'. ``--one-core`` adds
a run pinned to a single CPU. pflogsumm (Debian package) reads the same file; its
time includes its start-up, which is small for a Perl script.

pandas and numpy are no dependencies of mailtriage, but the development environment
has them (``chdb-core-lite`` and the ClickHouse client, test dependencies, require
them), and pyarrow and DuckDB import them when they are there: numpy when pyarrow is
imported (about 45 MB of RSS), pandas on first use (43 MB and half a second), which
an installed mailtriage does not pay. The runs hide both unless ``--with-pandas``
is given. Worker processes start afresh and import what is installed.

Targets (issue 3): at least 200,000 lines/s in one process; at least twice
pflogsumm's speed with both cores; peak memory under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_ONE_PROCESS = 200_000
TARGET_PFLOGSUMM_FACTOR = 2.0
TARGET_RSS_MB = 300

# Runs in a fresh interpreter: ingest, then report timings and memory as JSON.
DRIVER = """
import json, os, resource, sys, time
from pathlib import Path
if sys.argv[5] == "1":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
if sys.argv[6] == "0":
    class NoPandas:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pandas", "numpy"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, NoPandas())
from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store.duckdb import DuckDBStore
log, db, tenants, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
settings = load_settings(Path(tenants) if tenants else None, {"ingest": {"year": 2026}})
started = time.perf_counter()
with DuckDBStore(db, memory_limit_mb=settings.store.ingest_memory_limit_mb) as store:
    result = ingest_files(store, settings, [log], workers=workers)
seconds = time.perf_counter() - started
own = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "lines": result.lines, "seconds": seconds, "workers": result.workers,
    "rss_mb": own.ru_maxrss / 1024, "worker_rss_mb": kids.ru_maxrss / 1024,
    "cpu_seconds": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
}))
"""


def generate(lines: int, seed: int, directory: Path) -> tuple[Path, Path | None]:
    log = directory / "bench.log"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "generate.py"),
            str(log),
            "--lines",
            str(lines),
            "--seed",
            str(seed),
        ],
        check=True,
    )
    tenants = Path(f"{log}.tenants.toml")
    return log, tenants if tenants.exists() else None


def run_ingest(
    log: Path,
    tenants: Path | None,
    workers: int,
    directory: Path,
    one_core: bool,
    with_pandas: bool,
) -> dict[str, Any]:
    db = directory / f"bench-{workers}-{int(one_core)}.duckdb"
    for leftover in (db, Path(f"{db}.wal")):
        leftover.unlink(missing_ok=True)
    args = [sys.executable, "-c", DRIVER, str(log), str(db), str(tenants or "")]
    args += [str(workers), "1" if one_core else "0", "1" if with_pandas else "0"]
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["lines_per_second"] = result["lines"] / result["seconds"]
    result["label"] = f"{workers} worker(s)" + (", one core" if one_core else "")
    return result


def run_pflogsumm(log: Path) -> dict[str, Any] | None:
    if shutil.which("pflogsumm") is None:
        return None
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["pflogsumm", str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"pflogsumm failed with exit code {proc.returncode}")
    lines = sum(1 for _ in log.open("rb"))
    return {
        "label": "pflogsumm",
        "lines": lines,
        "seconds": seconds,
        "lines_per_second": lines / seconds,
        "rss_mb": usage.ru_maxrss / 1024,
    }


def verdicts(runs: list[dict[str, Any]], pflogsumm: dict[str, Any] | None) -> list[str]:
    out = []
    single = [r for r in runs if r["workers"] == 1]
    if single:
        best = max(r["lines_per_second"] for r in single)
        ok = best >= TARGET_ONE_PROCESS
        out.append(
            f"one process: {best:,.0f} lines/s "
            f"(target {TARGET_ONE_PROCESS:,}): {'met' if ok else 'NOT met'}"
        )
    multi = [r for r in runs if r["workers"] > 1]
    if multi and pflogsumm is not None:
        best = max(r["lines_per_second"] for r in multi)
        factor = best / pflogsumm["lines_per_second"]
        ok = factor >= TARGET_PFLOGSUMM_FACTOR
        out.append(
            f"both cores: {factor:.2f}x pflogsumm "
            f"(target {TARGET_PFLOGSUMM_FACTOR:.0f}x): {'met' if ok else 'NOT met'}"
        )
    peak = max(max(r["rss_mb"], r["worker_rss_mb"]) for r in runs)
    ok = peak < TARGET_RSS_MB
    out.append(
        f"peak memory: {peak:.0f} MB per process "
        f"(target < {TARGET_RSS_MB} MB): {'met' if ok else 'NOT met'}"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path)
    parser.add_argument("--tenants", type=Path)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--one-core", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--with-pandas",
        action="store_true",
        help="let pyarrow and DuckDB load pandas and numpy where installed",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mailtriage-bench-") as tmp:
        directory = Path(tmp)
        if args.file is None:
            log, tenants = generate(args.lines, args.seed, directory)
        else:
            log, tenants = args.file, args.tenants
        runs = [
            run_ingest(log, tenants, int(w), directory, False, args.with_pandas)
            for w in args.workers.split(",")
        ]
        if args.one_core:
            runs.append(run_ingest(log, tenants, 1, directory, True, args.with_pandas))
        pflogsumm = run_pflogsumm(log)
        size_mb = log.stat().st_size / 1e6

    if args.json:
        print(json.dumps({"file_mb": size_mb, "runs": runs, "pflogsumm": pflogsumm}))
        return
    print(f"{runs[0]['lines']:,} lines, {size_mb:,.0f} MB, {os.cpu_count()} CPUs")
    print(f"{'':<24}{'seconds':>9}{'lines/s':>11}{'RSS MB':>8}{'worker RSS':>12}")
    for r in [*runs, *([pflogsumm] if pflogsumm else [])]:
        worker = r.get("worker_rss_mb") or 0
        print(
            f"{r['label']:<24}{r['seconds']:>9.2f}{r['lines_per_second']:>11,.0f}"
            f"{r['rss_mb']:>8.0f}{(f'{worker:.0f}' if worker else '-'):>12}"
        )
    for line in verdicts(runs, pflogsumm):
        print(line)


if __name__ == "__main__":
    main()
