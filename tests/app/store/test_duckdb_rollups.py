"""The DuckDB store's rollups: summaries and time series read from them must equal,
model for model, what the same queries read from the attempts alone.

``_summary(..., reference=True)`` and ``_timeseries(..., reference=True)`` are the
yardstick: every count and delay read from ``attempts`` as before the rollups
existed. The logs are the bundled samples and a generated log that crosses
midnight (so windows cut days, ten-minute buckets and the attempts at their
edges), ingested in small batches so that buckets are appended to many times and
merged.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store import duckdb as duckdb_store
from mailtriage.app.store.base import GROUP_BY, GroupBy, Scope
from mailtriage.app.store.duckdb import (
    _RETRIED_COLUMNS,
    _ROLLUP_COLUMNS,
    ROLLUP_WIDTHS,
    DuckDBStore,
    _cover,
    _deferred_latest_sql,
    _rollup_plan,
    _rollup_rows_sql,
    _rollup_sums_sql,
    _whole_buckets,
)
from mailtriage.errors import ForbiddenError, StoreError
from mailtriage.parsers.model import AttemptRow, Batch, MessageRow

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples"
GENERATOR = REPO / "bench" / "generate.py"
MIDNIGHT = 1796342400.0  # 2026-12-04T00:00:00Z

GROUPINGS: list[tuple[GroupBy, ...]] = [
    (),
    *((g,) for g in GROUP_BY),
    ("tenant", "domain"),
    ("domain", "tenant"),
    ("domain", "cause"),
]


def rollup_drift(store: DuckDBStore) -> list[tuple[Any, ...]]:
    """Rows where the rollups (added up per key), ``retried_attempts`` or
    ``deferred_latest`` differ from the same computed afresh from ``attempts``
    (at the coarser widths, for the buckets built); empty when they agree."""
    found: list[tuple[Any, ...]] = []
    for table in _ROLLUP_COLUMNS:
        fresh = f"({_rollup_rows_sql(table, 'attempts')})"
        parts = [fresh]
        for width in duckdb_store.ROLLUP_WIDTHS[1:]:
            parts.append(
                f"(SELECT * FROM ({_rollup_sums_sql(table, fresh, width)}) "
                "WHERE bucket IN (SELECT bucket FROM rollup_buckets "
                f"WHERE width = {width!r}))"
            )
        fresh_all = " UNION ALL ".join(f"SELECT * FROM {p}" for p in parts)
        stored = _rollup_sums_sql(table, table)
        found += store._rows(
            f"(SELECT '+', * FROM ({stored}) EXCEPT ALL SELECT '+', * "
            f"FROM ({fresh_all})) UNION ALL (SELECT '-', * FROM ({fresh_all}) "
            f"EXCEPT ALL SELECT '-', * FROM ({stored}))",
            [],
            "comparing rollups",
        )
    retried = (
        f"SELECT {_RETRIED_COLUMNS} FROM attempts "
        "WHERE rcpt IN (SELECT rcpt FROM attempts WHERE NOT final)"
    )
    kept = f"SELECT {_RETRIED_COLUMNS} FROM retried_attempts"
    found += store._rows(
        f"({retried} EXCEPT ALL {kept}) UNION ALL ({kept} EXCEPT ALL {retried})",
        [],
        "comparing retried attempts",
    )
    latest = _deferred_latest_sql("attempts", "TRUE")
    found += store._rows(
        f"(({latest}) EXCEPT ALL SELECT * FROM deferred_latest) UNION ALL "
        f"(SELECT * FROM deferred_latest EXCEPT ALL ({latest}))",
        [],
        "comparing the latest deferrals",
    )
    return found


def assert_same_summary(
    store: DuckDBStore, scope: Scope, group_by: tuple[GroupBy, ...], limit: int | None
) -> None:
    assert store.summary(scope, group_by, limit=limit) == store._summary(
        scope, group_by, limit, reference=True
    )


def assert_same_series(
    store: DuckDBStore, scope: Scope, interval: float, group_by: tuple[GroupBy, ...]
) -> None:
    assert store.timeseries(scope, interval, group_by) == store._timeseries(
        scope, interval, group_by, reference=True
    )


@pytest.fixture(scope="module")
def merging(monkeypatch_module: pytest.MonkeyPatch) -> None:
    """Merge a bucket as soon as it was appended to more than it holds."""
    monkeypatch_module.setattr(duckdb_store, "ROLLUP_MERGE_ROWS", 0)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def samples_store(
    tmp_path_factory: pytest.TempPathFactory, merging: None
) -> Iterator[DuckDBStore]:
    settings = load_settings(
        SAMPLES / "tenants.toml", {"ingest": {"year": 2026, "file_batch_lines": 40}}
    )
    store = DuckDBStore(tmp_path_factory.mktemp("samples") / "s.duckdb")
    files = [str(SAMPLES / "postfix.log"), str(SAMPLES / "dovecot.log")]
    ingest_files(store, settings, files)
    yield store
    store.close()


@pytest.fixture(scope="module")
def midnight_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated log of two MX hosts from 23:35 to past midnight (UTC)."""
    log = tmp_path_factory.mktemp("gen") / "mail.log"
    command = [sys.executable, str(GENERATOR), str(log), "--seed", "3"]
    command += ["--lines", "15000", "--start", "2026-12-03T23:35:00"]
    command += ["--sessions-per-second", "0.6"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return log


def ingest_log(log: Path, db: Path) -> DuckDBStore:
    settings = load_settings(
        log.with_name(log.name + ".tenants.toml"),
        {"ingest": {"year": 2026, "file_batch_lines": 700}},
    )
    store = DuckDBStore(db)
    ingest_files(store, settings, [str(log)])
    return store


@pytest.fixture(scope="module")
def midnight_store(midnight_log: Path, merging: None) -> Iterator[DuckDBStore]:
    store = ingest_log(midnight_log, midnight_log.with_suffix(".duckdb"))
    yield store
    store.close()


# ------------------------------------------------------- equal to the attempts


def test_the_generated_log_crosses_midnight(midnight_store: DuckDBStore) -> None:
    found = midnight_store.data_range(Scope())
    assert found.first_ts is not None and found.last_ts is not None
    assert found.first_ts < MIDNIGHT < found.last_ts
    assert midnight_store.summary(Scope()).totals.deferred > 0


@pytest.mark.parametrize("group_by", GROUPINGS, ids=lambda g: "+".join(g) or "none")
def test_summaries_equal_the_attempts_on_the_samples(
    samples_store: DuckDBStore, group_by: tuple[GroupBy, ...]
) -> None:
    found = samples_store.data_range(Scope())
    assert found.first_ts is not None and found.last_ts is not None
    middle = math.floor((found.first_ts + found.last_ts) / 2)
    for scope in (
        Scope(),
        Scope(since=middle),
        Scope(until=middle),
        Scope(since=found.first_ts, until=middle + 0.5),
        Scope(tenant="acme"),
        Scope().confined_to("globex"),
        Scope(domain="ACME.example"),
        Scope(transport="lmtp"),
        Scope(host="mx1"),
    ):
        assert_same_summary(samples_store, scope, group_by, None)
    assert_same_summary(samples_store, Scope(), group_by, 2)


def windows(store: DuckDBStore) -> st.SearchStrategy[tuple[float | None, ...]]:
    """Windows around the data, many of them on or next to bucket boundaries."""
    found = store.data_range(Scope())
    assert found.first_ts is not None and found.last_ts is not None
    low, high = found.first_ts - 1800, found.last_ts + 1800
    plain = st.floats(low, high)
    aligned = st.builds(
        lambda t, w, nudge: math.floor(t / w) * w + nudge,
        plain,
        st.sampled_from(ROLLUP_WIDTHS),
        st.sampled_from([0.0, -1e-6, 1e-6, -0.5, 0.5]),
    )
    time = st.one_of(st.none(), plain, aligned)
    return st.tuples(time, time)


@st.composite
def queries(draw: st.DrawFn, store: DuckDBStore) -> tuple[Scope, tuple[GroupBy, ...]]:
    since, until = draw(windows(store))
    filters = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "tenant": st.sampled_from(["acme", "globex", "nobody"]),
                "domain": st.sampled_from(["globex.example", "GMAIL.com"]),
                "transport": st.sampled_from(["lmtp", "smtp"]),
                "relay": st.sampled_from(["gmail-smtp-in.l.google.com", "127.0.0.1"]),
                "host": st.sampled_from(["mx1", "mx2"]),
            },
        )
    )
    scope = Scope(since=since, until=until, **filters)
    if draw(st.booleans()):
        scope = scope.replace(tenant=None).confined_to(
            draw(st.sampled_from(["acme", "globex"]))
        )
    return scope, draw(st.sampled_from(GROUPINGS))


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_summaries_equal_the_attempts_for_any_window(
    midnight_store: DuckDBStore, data: st.DataObject
) -> None:
    scope, group_by = data.draw(queries(midnight_store))
    limit = data.draw(st.sampled_from([None, None, 3]))
    assert_same_summary(midnight_store, scope, group_by, limit)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_time_series_equal_the_attempts_for_any_window(
    midnight_store: DuckDBStore, data: st.DataObject
) -> None:
    scope, group_by = data.draw(queries(midnight_store))
    found = midnight_store.data_range(Scope())
    assert found.first_ts is not None and found.last_ts is not None
    scope = scope.replace(
        since=scope.since if scope.since is not None else found.first_ts - 60
    )
    interval = data.draw(st.sampled_from([600.0, 1800.0, 3600.0, 86400.0, 900.0]))
    assert_same_series(midnight_store, scope, interval, group_by[:1])


def test_a_day_is_built_once_the_data_passes_its_end(
    midnight_store: DuckDBStore,
) -> None:
    built = duckdb_store._built(midnight_store._cursor())
    # The day before midnight is closed and built; the day after is still open.
    assert built[86400.0] == [MIDNIGHT - 86400]
    plan = _rollup_plan(Scope(), ["domain"], None, built)
    assert plan is not None
    assert (86400.0, MIDNIGHT - 86400, MIDNIGHT) in plan.ranges
    assert (600.0, MIDNIGHT, None) in plan.ranges
    # A window inside the built day reads its ten-minute buckets.
    inside = _rollup_plan(Scope(since=MIDNIGHT - 1200), [], None, built)
    assert inside is not None
    assert {width for width, _, _ in inside.ranges} == {600.0}


def test_a_late_line_for_a_built_day_is_counted_once(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "late-day.duckdb")
    rows = boundary_attempts()
    before = [r for r in rows if r.ts < MIDNIGHT]
    after = [r for r in rows if r.ts >= MIDNIGHT]
    store.write(Batch(attempts=before[1:]))
    assert duckdb_store._built(store._cursor())[86400.0] == []
    store.write(Batch(attempts=after))  # up to MIDNIGHT + 86400: two days closed
    built = duckdb_store._built(store._cursor())[86400.0]
    assert built == [MIDNIGHT - 86400, MIDNIGHT]
    store.write(Batch(attempts=before[:1]))  # late, into the built day
    assert rollup_drift(store) == []
    for scope in (Scope(), Scope(until=MIDNIGHT), Scope(since=MIDNIGHT - 86400)):
        assert_same_summary(store, scope, ("domain",), None)
    store.close()


def test_most_windows_are_answered_from_the_rollups(
    midnight_store: DuckDBStore,
) -> None:
    # The comparisons above would hold trivially if no query used the rollups.
    assert _rollup_plan(Scope(), ["domain"], None) is not None
    assert _rollup_plan(Scope(since=MIDNIGHT - 4000), ["tenant"], None) is not None
    assert _rollup_plan(Scope(domain="a.example"), ["domain"], 3600.0) is not None
    assert _rollup_plan(Scope(domain="a.example"), ["cause"], None) is None
    assert _rollup_plan(Scope(), ["domain", "cause"], None) is None
    assert _rollup_plan(Scope(), [], 900.0) is None


@pytest.mark.parametrize("group_by", [("domain",), ("cause",), ("tenant", "relay")])
def test_a_limit_keeps_the_groups_and_totals_of_the_whole_summary(
    midnight_store: DuckDBStore, group_by: tuple[GroupBy, ...]
) -> None:
    # The totals and every kept group are as in the summary without a limit.
    for since in (None, MIDNIGHT - 1500):
        scope = Scope(since=since)
        whole = midnight_store.summary(scope, group_by)
        top = midnight_store.summary(scope, group_by, limit=2)
        assert len(whole.groups) > 2
        assert top.totals == whole.totals
        assert top.groups == whole.groups[:2]


def test_summaries_read_the_rollups(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "r.duckdb")
    rows = [
        AttemptRow(
            ts=MIDNIGHT + 700.0 * n,
            host="mx1",
            queue_id=f"Q{n}",
            message_key=f"mx1/Q{n}/1",
            recipient=f"u{n}@acme.example",
            recipient_domain="acme.example",
            transport="smtp",
            status="sent",
            final=True,
            tenant="acme",
            delay=1.0 + n,
        )
        for n in range(4)
    ]
    store.write(Batch(attempts=rows))
    # Attempts gone behind the store's back: only the rollups still hold them.
    store._db.execute("DELETE FROM attempts")
    assert store.summary(Scope()).totals.delivered == 4
    assert store.summary(Scope()).totals.delays.total.p50 == 2.5
    assert store._summary(Scope(), [], None, reference=True).totals.delivered == 0
    store.close()


# ------------------------------------------------------------ bucket edges


def boundary_attempts() -> list[AttemptRow]:
    """Final attempts right on, just before and just after bucket boundaries."""
    times = []
    for edge in (MIDNIGHT - 600, MIDNIGHT, MIDNIGHT + 600, MIDNIGHT + 86400):
        times += [edge, math.nextafter(edge, 0), math.nextafter(edge, math.inf)]
        times += [edge - 0.5, edge + 0.5]
    return [
        AttemptRow(
            ts=ts,
            host="mx1",
            queue_id=f"Q{n}",
            message_key=f"mx1/Q{n}/1",
            recipient=f"u{n}@d{n % 3}.example",
            recipient_domain=f"d{n % 3}.example",
            transport="smtp",
            status=("sent", "bounced", "deferred")[n % 3],
            final=n % 3 != 2,
            tenant=("acme", "globex")[n % 2],
            delay=float(n),
        )
        for n, ts in enumerate(times)
    ]


def test_times_on_bucket_edges_are_counted_once(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "edges.duckdb")
    rows = boundary_attempts()
    store.write(Batch(attempts=rows))
    cuts = sorted({r.ts for r in rows})
    for since in [None, *cuts[::2]]:
        for until in [None, *cuts[1::2]]:
            for group_by in [(), ("domain",)]:
                scope = Scope(since=since, until=until)
                assert_same_summary(store, scope, group_by, None)
    assert store.summary(Scope()).totals.delivered + store.summary(
        Scope()
    ).totals.bounced == sum(r.final for r in rows)
    assert rollup_drift(store) == []
    store.close()


@given(
    st.one_of(st.none(), st.floats(-1e12, 1e12)),
    st.one_of(st.none(), st.floats(-1e12, 1e12)),
    st.sampled_from(ROLLUP_WIDTHS),
)
def test_whole_buckets_lie_inside_the_window(
    since: float | None, until: float | None, width: float
) -> None:
    bounds = _whole_buckets(since, until, width)
    if bounds is None:
        return
    lo, hi = bounds
    if since is not None:
        assert lo is not None and lo - width < since <= lo
        assert lo % width == 0
    if until is not None:
        assert hi is not None and hi <= until < hi + width
        assert hi % width == 0


@given(
    st.one_of(st.none(), st.floats(1.7e9, 1.9e9)),
    st.one_of(st.none(), st.floats(1.7e9, 1.9e9)),
    st.one_of(
        st.none(),
        st.tuples(
            st.sets(st.integers(19670, 21990), max_size=60),
            st.sets(st.integers(19670 * 24, 21990 * 24), max_size=60),
        ),
    ),
)
def test_cover_splits_a_window_without_gaps_or_overlaps(
    since: float | None,
    until: float | None,
    days_hours: tuple[set[int], set[int]] | None,
) -> None:
    # Coarser buckets all built (None), or only some days and hours.
    built = None
    if days_hours is not None:
        days, hours = days_hours
        built = {
            86400.0: sorted(d * 86400.0 for d in days),
            3600.0: sorted(h * 3600.0 for h in hours),
        }
    ranges, edges = _cover(since, until, [600.0, 3600.0, 86400.0], built)
    for width, lo, _ in ranges:
        if built is not None and width in built:
            assert lo in built[width]
    spans = [(lo, hi) for _, lo, hi in ranges] + list(edges)
    for lo, hi in spans:
        assert lo is None or hi is None or lo < hi
    # Laid end to end in order, the spans make up [since, until) exactly.
    spans.sort(key=lambda s: -math.inf if s[0] is None else s[0])
    if not spans:
        assert since is not None and until is not None and since >= until
        return
    assert spans[0][0] == since and spans[-1][1] == until
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end == start


# -------------------------------------------------- kept exact by every write


def test_rollups_equal_a_fresh_computation_after_many_batches(
    samples_store: DuckDBStore, midnight_store: DuckDBStore
) -> None:
    for store in (samples_store, midnight_store):
        assert rollup_drift(store) == []
        merged = store._rows(
            "SELECT count(*) FROM rollup_buckets WHERE merged_rows > 0", [], "test"
        )
        assert merged[0][0] > 0


def test_ingesting_twice_adds_nothing_to_the_rollups(tmp_path: Path) -> None:
    settings = load_settings(SAMPLES / "tenants.toml", {"ingest": {"year": 2026}})
    files = [str(SAMPLES / "postfix.log"), str(SAMPLES / "dovecot.log")]
    store = DuckDBStore(tmp_path / "twice.duckdb")
    ingest_files(store, settings, files)
    before = store._rows("SELECT * FROM rollup_delays ORDER BY ALL", [], "test")
    ingest_files(store, settings, files)
    assert store._rows("SELECT * FROM rollup_delays ORDER BY ALL", [], "test") == before
    assert rollup_drift(store) == []
    store.close()


def test_a_failed_write_leaves_the_rollups_as_they_were(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "failed.duckdb")
    good = boundary_attempts()
    store.write(Batch(attempts=good[:6]))
    before = store.summary(Scope(), ["domain"])
    bad = dataclasses.replace(good[7], host=None)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.write(Batch(attempts=[*good[6:], bad]))
    assert store.summary(Scope(), ["domain"]) == before
    assert rollup_drift(store) == []
    store.close()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_old_database_gets_its_rollups_on_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    path = tmp_path / "old.duckdb"
    with monkeypatch.context() as old:
        old.setattr(duckdb_store, "MIGRATIONS", duckdb_store.MIGRATIONS[:version])
        old.setattr(duckdb_store, "SCHEMA_VERSION", version)
        if version < 3:
            old.setattr(DuckDBStore, "_roll_up", lambda self, db, cols: None)
        else:  # Writes of version 3 kept all but ``deferred_latest``.
            old.setattr(DuckDBStore, "_keep_deferred", lambda self, db, span: None)
        store = DuckDBStore(path)
        store.write(Batch(attempts=boundary_attempts()))
        if version == 2:
            # Writes of version 2 kept the retried attempts; its rollups had one
            # table per kind, which migration 3 replaces, rows and all.
            store._db.execute(duckdb_store._MIGRATION_2[-1])
            store._db.execute(
                "INSERT INTO rollup_delays VALUES (600, 0, 'none', 'x', NULL, 0, 1, 9)"
            )
        store.close()
    store = DuckDBStore(path)
    assert store._rows("SELECT max(version) FROM schema_version", [], "test") == [
        (duckdb_store.SCHEMA_VERSION,)
    ]
    assert rollup_drift(store) == []
    assert store._rows("SELECT count(*) FROM rollup_delays", [], "test")[0][0] > 0
    assert store._rows("SELECT count(*) FROM deferred_latest", [], "test")[0][0] > 0
    for group_by in [(), ("tenant",), ("domain",)]:
        assert_same_summary(store, Scope(), group_by, None)
    store.close()


@pytest.mark.parametrize("view", sorted(_ROLLUP_COLUMNS))
def test_a_family_is_read_from_its_own_table(tmp_path: Path, view: str) -> None:
    # The reads name the view with the dimension as a parameter; they read one
    # family's table only if the engine prunes the other branches of the view.
    store = DuckDBStore(tmp_path / "families.duckdb")
    store.write(Batch(attempts=boundary_attempts()))
    for dimension in duckdb_store._ROLLUP_DIMENSIONS:
        plan = store._rows(
            f"EXPLAIN SELECT count(*) FROM {view} WHERE dimension = ? AND width = ?",
            [dimension, ROLLUP_WIDTHS[0]],
            "test",
        )
        text = "\n".join(str(row[-1]) for row in plan)
        scanned = set(re.findall(rf"\b{view}_[a-z]+\b", text))
        assert scanned == {f"{view}_{dimension}"}
        own = store._rows(f"SELECT count(*) FROM {view}_{dimension}", [], "test")
        through = store._rows(
            f"SELECT count(*) FROM {view} WHERE dimension = ?", [dimension], "test"
        )
        assert own == through
        assert own[0][0] > 0
    store.close()


def test_a_confined_scope_stays_confined_on_the_rollups(
    midnight_store: DuckDBStore,
) -> None:
    mine = midnight_store.summary(Scope().confined_to("acme"), ["tenant"])
    assert [g.key["tenant"] for g in mine.groups] in ([], ["acme"])
    with pytest.raises(ForbiddenError):
        midnight_store.summary(Scope(tenant="globex").confined_to("acme"))


def test_coarser_widths_answer_the_same(
    midnight_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Days and hours above the ten-minute buckets: a window is read from each.
    monkeypatch.setattr(duckdb_store, "ROLLUP_WIDTHS", (600.0, 3600.0, 86400.0))
    monkeypatch.setattr(duckdb_store, "ROLLUP_MERGE_ROWS", 0)
    store = ingest_log(midnight_log, tmp_path / "levels.duckdb")
    widths = store._rows("SELECT DISTINCT width FROM rollup_delays", [], "test")
    assert sorted(w for (w,) in widths) == [600.0, 3600.0, 86400.0]
    assert rollup_drift(store) == []
    rng = random.Random(11)
    for _ in range(40):
        since, until = (
            rng.choice([None, MIDNIGHT + rng.uniform(-3000, 3000), MIDNIGHT - 3600])
            for _ in range(2)
        )
        group_by = rng.choice(GROUPINGS)
        assert_same_summary(store, Scope(since=since, until=until), group_by, None)
    assert_same_series(store, Scope(since=MIDNIGHT - 7200), 3600.0, ("tenant",))
    store.close()


def test_deferred_in_open_windows_follows_the_latest_deferral(tmp_path: Path) -> None:
    # ``deferred_latest`` answers windows open at their end: a recipient whose
    # outcome carries an earlier time than its last deferral (clocks of two
    # hosts apart), one deferred on two hosts in turn and still pending, and
    # one settled after its deferral.
    store = DuckDBStore(tmp_path / "open.duckdb")
    first, *_ = boundary_attempts()

    def attempt(key: str, ts: float, status: str, host: str) -> AttemptRow:
        return dataclasses.replace(
            first,
            message_key=key,
            ts=MIDNIGHT + ts,
            status=status,
            final=status != "deferred",
            host=host,
        )

    skewed = [attempt("mx1/S/1", 0, "deferred", "mx1")]
    skewed += [attempt("mx1/S/1", 50, "sent", "mx2")]
    skewed += [attempt("mx1/S/1", 100, "deferred", "mx1")]
    pending = [
        attempt("mx1/P/1", t, "deferred", h) for t, h in ((10, "mx1"), (60, "mx2"))
    ]
    settled = [attempt("mx1/D/1", 20, "deferred", "mx1")]
    settled += [attempt("mx1/D/1", 70, "sent", "mx1")]
    for rows in (skewed[:2], pending[:1] + settled, skewed[2:] + pending[1:]):
        store.write(Batch(attempts=rows))
    assert rollup_drift(store) == []
    counts = {
        since: store.summary(Scope(since=MIDNIGHT + since)).totals.deferred
        for since in (0, 40, 55, 65, 101)
    }
    assert counts == {0: 1, 40: 1, 55: 2, 65: 1, 101: 0}
    for since in (None, 0.0, 30.0, 50.0, 51.0, 60.0, 100.0):
        start = None if since is None else MIDNIGHT + since
        for group_by in [(), ("host",), ("domain",), ("tenant", "host")]:
            assert_same_summary(store, Scope(since=start), group_by, None)
        assert_same_summary(store, Scope(since=start, host="mx1"), (), None)
    store.close()


@pytest.mark.parametrize("with_messages", [False, True])
def test_a_retry_logged_after_its_outcome_still_finds_the_outcome(
    tmp_path: Path, with_messages: bool
) -> None:
    store = DuckDBStore(tmp_path / "late.duckdb")
    first, *_ = boundary_attempts()
    outcome = dataclasses.replace(first, ts=MIDNIGHT + 100, status="sent")
    retry = dataclasses.replace(first, ts=MIDNIGHT, status="deferred", final=False)
    # With its message rows a batch bounds the lookups by the lifetime's span
    # (``_lifetimes_span``); without them they read the whole history.
    other = dataclasses.replace(first, ts=MIDNIGHT - 86400, message_key="mx1/Q0/0")
    store.write(Batch(attempts=[other]))
    lifetime = [
        MessageRow(
            first.message_key,
            "mx1",
            "Q0",
            MIDNIGHT + 100 - t,
            MIDNIGHT + 100,
            False,
            "smtpd",
        )
        for t in (0.0, 100.0)
    ]
    store.write(
        Batch(attempts=[outcome], messages=lifetime[:1] if with_messages else [])
    )
    store.write(Batch(attempts=[retry], messages=lifetime[1:] if with_messages else []))
    assert rollup_drift(store) == []
    assert store.summary(Scope(since=MIDNIGHT - 600)).totals.deferred == 0
    assert store.summary(Scope(until=MIDNIGHT + 50)).totals.deferred == 1
    for scope in (Scope(), Scope(until=MIDNIGHT + 50), Scope(since=MIDNIGHT + 1)):
        assert_same_summary(store, scope, ("domain",), None)
    store.close()
