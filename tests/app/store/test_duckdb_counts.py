"""The DuckDB store's count queries: percentiles from value histograms must
answer exactly what DuckDB's ``quantile_cont`` answers."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from mailtriage.app.store.base import Scope
from mailtriage.app.store.duckdb import QUANTILES, DuckDBStore, _quantile
from mailtriage.parsers.model import AttemptRow, Batch

T0 = 1796313600.0
STATUSES = ("sent", "sent", "sent", "bounced", "expired", "deferred", "deferred")


def random_attempts(seed: int, count: int) -> list[AttemptRow]:
    """Attempts of three tenants with delays at Postfix's 10 ms resolution."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        status = rng.choice(STATUSES)
        delays = [round(rng.expovariate(1 / rng.choice((0.3, 5.0, 900.0))), 2)]
        delays += [round(rng.uniform(0, delays[0]), 2) for _ in range(4)]
        rows.append(
            AttemptRow(
                ts=T0 + rng.uniform(0, 7200),
                host="mx1",
                queue_id=f"Q{n // 3}",
                message_key=f"mx1/Q{n // 3}/1",
                recipient=f"user{n % 7}@d{n % 11}.example",
                recipient_domain=f"d{n % 11}.example",
                transport=rng.choice(("smtp", "lmtp")),
                status=status,
                final=status != "deferred",
                tenant=rng.choice(("acme", "globex", "initech")),
                delay=delays[0],
                delay_before_qmgr=delays[1],
                delay_in_qmgr=delays[2],
                delay_conn_setup=delays[3],
                delay_transmission=None if n % 13 == 0 else delays[4],
            )
        )
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    db = DuckDBStore(tmp_path_factory.mktemp("db") / "counts.duckdb")
    db.write(Batch(attempts=random_attempts(seed=5, count=6000)))
    yield db
    db.close()


def engine_answers(store: DuckDBStore, call: str) -> tuple[object, object]:
    """The answer of ``call`` from histograms, then from ``quantile_cont``."""
    scope = Scope(since=T0 + 1800)
    queries = {
        "summary": lambda: store.summary(Scope(), ["tenant"]),
        "window": lambda: store.summary(scope, ["domain", "transport"], limit=5),
        "timeseries": lambda: store.timeseries(scope, 600, ["tenant"]),
    }
    assert store._histogram_percentiles()
    from_histograms = queries[call]()
    store._exact_percentiles = False
    try:
        return from_histograms, queries[call]()
    finally:
        store._exact_percentiles = None


@pytest.mark.parametrize("call", ["summary", "window", "timeseries"])
def test_histogram_percentiles_equal_quantile_cont(
    store: DuckDBStore, call: str
) -> None:
    from_histograms, from_engine = engine_answers(store, call)
    assert from_histograms == from_engine


def test_summary_percentiles_are_of_final_attempts(store: DuckDBStore) -> None:
    rows = random_attempts(seed=5, count=6000)
    delays = sorted(r.delay for r in rows if r.final and r.delay is not None)
    total = store.summary(Scope()).totals.delays.total
    assert total.count == len(delays)
    assert [total.p50, total.p95, total.p99] == [
        _quantile(delays, q) for q in QUANTILES
    ]
