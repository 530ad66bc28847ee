"""Summary query latency of the HTTP API under concurrent load while ingest runs.

    .venv/bin/python bench/bench_api.py [--work DIR] [--recipients N]
        [--clients C] [--seconds S] [--ingest-lines-per-second R] [--days-apart D]

1. The store: a log of ``--base-lines`` lines from ``bench/generate.py`` (4.6 hours
   of one day) is ingested as many times as it takes to hold ``--recipients``
   recipients (a million by default), each copy under other host names (``mx1``
   becomes ``mx1-c3``), so the volumes, outcomes and delays are the generator's,
   only more. With ``--days-apart 0`` every copy holds the same hours: the whole
   store is one day still being written, the hardest case for the rollups (read
   per ten minutes). With ``--days-apart 1`` copy k lies k days later: a history
   of closed days (read per day) and the last one open. The database is kept in
   ``--work`` and reused by the next run.
2. The service: ``mailtriage serve`` on that database, following a file that this
   script appends generated lines to at ``--ingest-lines-per-second`` (dated in the
   last copy's day), so batches are committed while the queries run.
3. The load: ``--clients`` threads ask ``GET /v1/stats/summary`` back to back for
   ``--seconds`` seconds, cycling through the groupings and windows a dashboard or
   an operator asks for (none, tenant, domain, transport, cause; all time and the
   last hour of the data).

The JSON printed at the end has the latency percentiles in milliseconds, the
request rate, the lines committed during the load, and whether p95 met the
100 ms target.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store import open_store
from mailtriage.app.store.base import Scope

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "bench" / "generate.py"
MAILTRIAGE = Path(sys.executable).with_name("mailtriage")
TARGET_P95_MS = 100.0
GROUPINGS = ("", "tenant", "domain", "transport", "cause")
# A syslog line's host: the word after "Mmm dd hh:mm:ss".
_HOST = re.compile(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) ")


def generate(path: Path, lines: int, seed: int) -> dict[str, Any]:
    """Write a generated log (unless it exists) and return its truth."""
    if not path.exists():
        command = [sys.executable, str(GENERATOR), str(path)]
        command += ["--lines", str(lines), "--seed", str(seed)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    truth: dict[str, Any] = json.loads(Path(f"{path}.truth.json").read_text())
    return truth


def rehosted(source: Path, target: Path, suffix: str, days: int = 0) -> None:
    """``source`` with every host renamed ``host-suffix`` and every time moved
    ``days`` later."""
    with source.open() as src, target.open("w") as dst:
        for line in src:
            dst.write(moved(line, suffix, days))


def moved(line: str, suffix: str, days: int) -> str:
    """One syslog line with its host renamed and its date moved by ``days``."""
    found = _HOST.match(line)
    if found is None:
        return line
    stamp = found.group(1)
    if days:
        stamp = _later(stamp[:6], days) + stamp[6:]
    return f"{stamp} {found.group(2)}-{suffix} {line[found.end() :]}"


@functools.cache
def _later(month_day: str, days: int) -> str:
    """``Mmm dd`` (syslog's, space padded) ``days`` later, in the generator's year."""
    day = datetime.datetime.strptime(f"2026 {month_day}", "%Y %b %d")
    day += datetime.timedelta(days=days)
    return f"{day:%b} {day.day:2d}"


def build_store(
    work: Path, recipients: int, base_lines: int, workers: int, days_apart: int
) -> tuple[Path, int]:
    """A database with at least ``recipients`` recipients, copy k of the base
    log ``k * days_apart`` days later; reused when present."""
    db = work / f"bench-{recipients}-{days_apart}d.duckdb"
    base = work / f"base-{base_lines}.log"
    truth = generate(base, base_lines, seed=1)
    tenants = Path(f"{base}.tenants.toml")
    settings = load_settings(tenants, {"store": {"db": str(db)}})
    with open_store(settings) as store:
        held = store.data_range(Scope()).attempts
        copies = math.ceil(recipients / truth["totals"]["recipients"])
        if held == 0:
            started = time.perf_counter()
            for k in range(copies):
                copy = work / f"copy-{k}.log"
                rehosted(base, copy, f"c{k}", k * days_apart)
                ingest_files(store, settings, [str(copy)], workers=workers)
                copy.unlink()
            print(
                f"built {db.name}: {copies} copies in "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
    return db, copies


def describe(db: Path, tenants: Path) -> tuple[int, int, float]:
    """Recipients with an outcome or still deferred, delivery attempts, and the
    time of the last attempt."""
    settings = load_settings(tenants, {"store": {"db": str(db)}})
    with open_store(settings, read_only=True) as store:
        totals = store.summary(Scope()).totals
        span = store.data_range(Scope())
    counted = totals.delivered + totals.bounced + totals.expired + totals.deferred
    return counted, span.attempts, span.last_ts or time.time()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """``mailtriage serve`` on the bench database, following one file."""

    def __init__(self, db: Path, tenants: Path, follow: Path, memory_mb: int) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTRIAGE_")}
        env["MAILTRIAGE_SERVER__LOG_LEVEL"] = "WARNING"
        env["MAILTRIAGE_INGEST__FOLLOW_POLL_SECONDS"] = "0.2"
        env["MAILTRIAGE_STORE__MEMORY_LIMIT_MB"] = str(memory_mb)
        command = [str(MAILTRIAGE), "serve", "--db", str(db), "--config", str(tenants)]
        command += ["--follow", str(follow), "--port", port]
        self.proc = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + 120
        while not self._healthy():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("mailtriage serve did not start")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def cpu_seconds(self) -> float:
        """CPU time the service process has used so far (user and system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1]
        user, system = fields.split()[11:13]
        return (int(user) + int(system)) / os.sysconf("SC_CLK_TCK")

    def committed(self) -> int:
        return int(
            httpx.get(f"{self.url}/readyz", timeout=10).json()["lines_committed"]
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class Appender(threading.Thread):
    """Appends generated lines to the followed file at a steady rate."""

    def __init__(self, source: Path, target: Path, rate: int, days: int) -> None:
        super().__init__(daemon=True)
        # Hosts renamed per run, so each run's file is a new source to the store;
        # moved to the day of the store's last copy, the day still being written.
        run = f"live{int(time.time())}"
        self.lines = [
            moved(line, run, days)
            for line in source.read_text().splitlines(keepends=True)
        ]
        self.target = target
        self.rate = rate
        self.stop = threading.Event()
        self.written = 0

    def run(self) -> None:
        step = max(1, self.rate // 10)
        with self.target.open("a") as out:
            while not self.stop.is_set() and self.written < len(self.lines):
                out.write("".join(self.lines[self.written : self.written + step]))
                out.flush()
                self.written += step
                self.stop.wait(0.1)


def queries(window_start: float) -> list[dict[str, str]]:
    """The summary requests the clients cycle through."""
    cycle = []
    for group in GROUPINGS:
        for since in (None, window_start):
            params = {"group_by": group} if group else {}
            if since is not None:
                params["since"] = f"{since:.0f}"
            cycle.append(params)
    return cycle


def load(
    url: str, cycle: list[dict[str, str]], clients: int, seconds: float
) -> tuple[list[tuple[int, float]], list[str]]:
    """Latencies (ms) of summary requests from ``clients`` threads, each with the
    index in ``cycle`` of what it asked, and the answers that were not 200."""
    latencies: list[tuple[int, float]] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(offset: int) -> None:
        mine: list[tuple[int, float]] = []
        bad: list[str] = []
        with httpx.Client(base_url=url, timeout=60) as http:
            n = offset
            while time.monotonic() < deadline:
                asked = n % len(cycle)
                started = time.perf_counter()
                response = http.get("/v1/stats/summary", params=cycle[asked])
                mine.append((asked, (time.perf_counter() - started) * 1000))
                if response.status_code != 200:
                    bad.append(f"{response.status_code} {response.text[:200]}")
                n += 1
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures


def describe_query(params: dict[str, str]) -> str:
    """A short name for one request of the cycle: its grouping and window."""
    window = "last hour" if "since" in params else "all time"
    return f"{params.get('group_by', 'none')}, {window}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Build or reuse the store, serve it, load it while ingesting, report."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--work", type=Path, default=Path("/tmp/mailtriage-bench-api"))
    cli.add_argument("--recipients", type=int, default=1_000_000)
    cli.add_argument("--base-lines", type=int, default=1_000_000)
    cli.add_argument("--workers", type=int, default=2)
    cli.add_argument("--clients", type=int, default=4)
    cli.add_argument("--seconds", type=float, default=20.0)
    cli.add_argument("--ingest-lines-per-second", type=int, default=5_000)
    cli.add_argument(
        "--days-apart",
        type=int,
        default=0,
        help="move copy k of the base log k times this many days later (0: all "
        "copies on the same hours, one open day; 1: a history of closed days)",
    )
    cli.add_argument(
        "--memory-limit-mb",
        type=int,
        default=load_settings().store.memory_limit_mb,
        help="[store] memory_limit_mb of the served store",
    )
    args = cli.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    db, copies = build_store(
        args.work, args.recipients, args.base_lines, args.workers, args.days_apart
    )
    tenants = args.work / f"base-{args.base_lines}.log.tenants.toml"
    recipients, attempts, last_ts = describe(db, tenants)
    live_source = args.work / "live-source.log"
    generate(live_source, 200_000, seed=99)
    follow = args.work / "live.log"
    follow.unlink(missing_ok=True)
    follow.touch()

    service = Service(db, tenants, follow, args.memory_limit_mb)
    try:
        appender = Appender(
            live_source,
            follow,
            args.ingest_lines_per_second,
            (copies - 1) * args.days_apart,
        )
        appender.start()
        time.sleep(1.0)  # ingest is running before the load starts
        before = service.committed()
        cycle = queries(window_start=last_ts - 3600)
        cpu = service.cpu_seconds()
        timed, failures = load(service.url, cycle, args.clients, args.seconds)
        cpu = service.cpu_seconds() - cpu
        during = service.committed() - before
        appender.stop.set()
        appender.join()
    finally:
        service.stop()

    by_query = {
        describe_query(params): [ms for asked, ms in timed if asked == k]
        for k, params in enumerate(cycle)
    }
    latencies = [ms for _, ms in timed]
    p95 = percentile(latencies, 0.95)
    print(
        json.dumps(
            {
                "recipients": recipients,
                "days_apart": args.days_apart,
                "days": copies if args.days_apart else 1,
                "delivery_attempts": attempts,
                "clients": args.clients,
                "seconds": args.seconds,
                "requests": len(latencies),
                "requests_per_second": round(len(latencies) / args.seconds, 1),
                "latency_ms": {
                    "p50": round(percentile(latencies, 0.50), 1),
                    "p95": round(p95, 1),
                    "p99": round(percentile(latencies, 0.99), 1),
                    "max": round(max(latencies), 1),
                },
                "p50_p95_ms_by_query": {
                    name: [round(percentile(v, 0.5)), round(percentile(v, 0.95))]
                    for name, v in by_query.items()
                    if v
                },
                "failed_requests": len(failures),
                "first_failure": failures[0] if failures else None,
                "lines_committed_during_load": during,
                "service_cpu_seconds_during_load": round(cpu, 1),
                "memory_limit_mb": args.memory_limit_mb,
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "target_p95_ms": TARGET_P95_MS,
                "met": p95 < TARGET_P95_MS and not failures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
