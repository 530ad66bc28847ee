"""ClickHouse store through chdb: ingest rate, and query latency at ten million
recipients.

    .venv/bin/python bench/bench_clickhouse.py [--lines N] [--recipients N]
        [--workers 1,2] [--runs N] [--dir DIR] [--json]

1. **Ingest.** A log of ``--lines`` lines made by ``bench/generate.py`` (two MX
   hosts with their Dovecot) is ingested with ``ingest_files`` into a fresh
   ClickHouse database (chdb, ClickHouse's engine in-process, on disk), each worker
   count in a fresh process: the figure is the wall time from the first line read
   to the last commit, reading, parsing, assembling and the inserts included.
2. **Scale.** ``--recipients`` synthetic recipients are inserted straight into the
   ``attempts`` table in bulk (``INSERT ... SELECT ... FROM numbers(N)``, not
   through the parsers: making a ten-million-recipient log and parsing it would
   take most of the time budget and measures the parsers again). 88 % are
   delivered, 5 % bounced, 2 % expired, 5 % deferred first (half of them delivered
   on a later attempt), over 7 days, 6 tenants, 300 domains, 8 hosts. Then each
   query the API's summary and time-series routes make runs ``--runs`` times
   after one warm-up; the table shows the median and the slowest run.

The percentiles are exact (every delay of a group is sorted; see
``store.clickhouse``), which is what costs most at this size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

INGEST_DRIVER = """
import json, resource, sys, time
from pathlib import Path
from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store.clickhouse import ClickHouseStore
log, url, tenants, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
settings = load_settings(Path(tenants), {"ingest": {"year": 2026}})
class Timed(ClickHouseStore):
    writing = 0.0
    def write(self, *args, **kwargs):
        started = time.perf_counter()
        super().write(*args, **kwargs)
        Timed.writing += time.perf_counter() - started
store = Timed(url)
started = time.perf_counter()
result = ingest_files(store, settings, [log], workers=workers)
seconds = time.perf_counter() - started
from mailtriage.app.store.base import Scope
rows = store.data_range(Scope())
store.close()
print(json.dumps({"lines": result.lines, "seconds": seconds, "workers": result.workers,
    "write_seconds": Timed.writing, "attempts": rows.attempts,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

TENANTS = "['acme', 'globex', 'initech', 'umbrella', 'hooli', 'wayne']"

# One row per recipient's final (or only) attempt; ``r`` draws the outcome.
SYNTHETIC_FINAL = """
INSERT INTO attempts (id, ts, host, queue_id, message_key, recipient,
    recipient_domain, transport, status, final, tenant, sender, sender_domain,
    relay_host, delay, delay_before_qmgr, delay_in_qmgr, delay_conn_setup,
    delay_transmission, dsn, smtp_code, response, cause, temporary,
    batch_stream, batch_seq)
SELECT
    number AS id,
    {start} + number * {span} / {n} AS ts,
    concat('mx', toString(number % 8)) AS host,
    hex(intDiv(number, 3)) AS queue_id,
    concat(host, '/', queue_id, '/0') AS message_key,
    concat('u', toString(number), '@', recipient_domain) AS recipient,
    concat('d', toString(cityHash64(number, 4) % 300), '.example')
        AS recipient_domain,
    if(cityHash64(number, 6) % 3 = 0, 'smtp', 'lmtp') AS transport,
    multiIf(r < 880, 'sent', r < 930, 'bounced', r < 950, 'expired',
            r < 975, 'sent', 'deferred') AS status,
    status != 'deferred' AS final,
    {tenants}[cityHash64(number, 3) % 6 + 1] AS tenant,
    concat('s', toString(number % 5000), '@', tenant, '.example') AS sender,
    concat(tenant, '.example') AS sender_domain,
    if(transport = 'lmtp', 'mda.internal', concat('mx.', recipient_domain))
        AS relay_host,
    delay_before_qmgr + delay_in_qmgr + delay_conn_setup + delay_transmission
        AS delay,
    (cityHash64(number, 7) % 1000) / 1000.0 AS delay_before_qmgr,
    (cityHash64(number, 8) % 100) / 1000.0 AS delay_in_qmgr,
    (cityHash64(number, 9) % 300) / 1000.0 AS delay_conn_setup,
    (cityHash64(number, 10) % 5000) / 1000.0 AS delay_transmission,
    multiIf(status = 'sent', '2.0.0', status = 'bounced', '5.2.2', '4.4.1') AS dsn,
    multiIf(status = 'sent', 250, status = 'bounced', 552, 421) AS smtp_code,
    multiIf(status = 'sent', '250 2.0.0 Saved', status = 'bounced',
            '552 5.2.2 Quota exceeded', '421 4.4.1 Try again later') AS response,
    multiIf(status = 'sent', NULL, status = 'bounced', 'quota_exceeded',
            status = 'expired', 'expired', 'remote_throttling') AS cause,
    if(status = 'sent', NULL, status = 'deferred') AS temporary,
    'bench' AS batch_stream,
    1 AS batch_seq
FROM (SELECT number, cityHash64(number, 5) % 1000 AS r FROM numbers({n}))
"""

# The first, deferred attempt of the recipients that ``r`` sends through a retry.
SYNTHETIC_DEFERRALS = """
INSERT INTO attempts (id, ts, host, queue_id, message_key, recipient,
    recipient_domain, transport, status, final, tenant, relay_host, delay,
    response, cause, temporary, batch_stream, batch_seq)
SELECT
    {n} + number AS id,
    {start} + number * {span} / {n} - 600 AS ts,
    concat('mx', toString(number % 8)) AS host,
    hex(intDiv(number, 3)) AS queue_id,
    concat(host, '/', queue_id, '/0') AS message_key,
    concat('u', toString(number), '@', recipient_domain) AS recipient,
    concat('d', toString(cityHash64(number, 4) % 300), '.example')
        AS recipient_domain,
    if(cityHash64(number, 6) % 3 = 0, 'smtp', 'lmtp') AS transport,
    'deferred' AS status, false AS final,
    {tenants}[cityHash64(number, 3) % 6 + 1] AS tenant,
    'mda.internal' AS relay_host, 300.0 AS delay,
    '421 4.7.0 Try again later' AS response, 'remote_throttling' AS cause,
    true AS temporary, 'bench' AS batch_stream, 1 AS batch_seq
FROM (SELECT number, cityHash64(number, 5) % 1000 AS r FROM numbers({n}))
WHERE r >= 950
"""


def generate(directory: Path, lines: int) -> tuple[Path, Path]:
    log = directory / "bench.log"
    if not log.exists():
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), str(log), "--lines",
             str(lines), "--seed", "1", "--hosts", "2"],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return log, log.with_name(log.name + ".tenants.toml")


def bench_ingest(
    directory: Path, lines: int, workers: list[int]
) -> list[dict[str, Any]]:
    log, tenants = generate(directory, lines)
    results = []
    for count in workers:
        engine = directory / f"ingest-{count}"
        url = f"chdb://{engine}?database=ingest"
        out = subprocess.run(
            [sys.executable, "-c", INGEST_DRIVER, str(log), url, str(tenants),
             str(count)],
            check=True,
            capture_output=True,
            text=True,
        )  # fmt: skip
        found = json.loads(out.stdout.strip().splitlines()[-1])
        found["lines_per_second"] = found["lines"] / found["seconds"]
        results.append(found)
    return results


def timed(ask: Callable[[], object], runs: int) -> dict[str, float]:
    ask()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        ask()
        seconds.append(time.perf_counter() - started)
    return {
        "median_ms": statistics.median(seconds) * 1000,
        "max_ms": max(seconds) * 1000,
    }


def bench_scale(directory: Path, recipients: int, runs: int) -> dict[str, Any]:
    from mailtriage.app.store.base import DeliveryFilter, Scope
    from mailtriage.app.store.clickhouse import ClickHouseStore

    store = ClickHouseStore(f"chdb://{directory / 'scale'}?database=scale")
    start, span = 1796256000.0, 7 * 86400.0  # 2026-12-03T00:00:00Z, 7 days
    values = {"start": start, "span": span, "n": recipients, "tenants": TENANTS}
    started = time.perf_counter()
    store._command(SYNTHETIC_FINAL.format(**values), "inserting synthetic rows")
    store._command(SYNTHETIC_DEFERRALS.format(**values), "inserting deferrals")
    store._command("OPTIMIZE TABLE attempts FINAL", "merging parts")
    loaded = time.perf_counter() - started
    total = store.data_range(Scope())
    last_day = Scope(since=start + span - 86400)
    queries: dict[str, Callable[[], object]] = {
        "summary, totals": lambda: store.summary(Scope()),
        "summary by tenant": lambda: store.summary(Scope(), ["tenant"]),
        "summary by domain, top 50": lambda: store.summary(
            Scope(), ["domain"], limit=50
        ),
        "summary of the last day": lambda: store.summary(last_day),
        "one tenant by domain": lambda: store.summary(
            Scope(tenant="acme"), ["domain"], limit=50
        ),
        "time series, 1 h by tenant, last day": lambda: store.timeseries(
            last_day, 3600, ["tenant"]
        ),
        "deliveries page (100)": lambda: store.deliveries(DeliveryFilter(limit=100)),
    }
    timings = {name: timed(ask, runs) for name, ask in queries.items()}
    totals = store.summary(Scope()).totals
    store.close()
    return {
        "recipients": recipients,
        "attempts": total.attempts,
        "load_seconds": loaded,
        "delivered": totals.delivered,
        "deferred": totals.deferred,
        "queries": timings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--recipients", type=int, default=10_000_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ch-") as scratch:
        directory = args.dir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        workers = [int(w) for w in args.workers.split(",") if w]
        report = {
            "ingest": bench_ingest(directory, args.lines, workers),
            "scale": bench_scale(directory, args.recipients, args.runs),
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for run in report["ingest"]:
        print(
            f"ingest into ClickHouse (chdb), {run['workers']} worker(s): "
            f"{run['lines']:,} lines in {run['seconds']:.1f} s = "
            f"{run['lines_per_second']:,.0f} lines/s ({run['attempts']:,} attempts); "
            f"store writes took {run['write_seconds']:.1f} s, in the write-behind "
            f"thread beside the parsing; peak RSS {run['rss_mb']:.0f} MB"
        )
    scale = report["scale"]
    print(
        f"\n{scale['recipients']:,} recipients ({scale['attempts']:,} attempts) "
        f"loaded in {scale['load_seconds']:.1f} s"
    )
    print(f"{'query':40} {'median ms':>10} {'max ms':>10}")
    for name, t in scale["queries"].items():
        print(f"{name:40} {t['median_ms']:10.0f} {t['max_ms']:10.0f}")


if __name__ == "__main__":
    main()
