"""One contract for every store backend: DuckDB, and ClickHouse through chdb.

Two kinds of tests:

- behaviour tests, parametrised over the backends, each on an empty store: the
  counting rules, upserts, unparsed counts, checkpoints, chat, query errors;
- equality tests: the same logs (the bundled samples of real Postfix and Dovecot,
  and a generated log of many hosts) are ingested into both backends, and every
  query the report, the API, the metrics and triage make must return the same
  pydantic models. Floats are compared to 12 significant digits: both compute
  exact, interpolated percentiles (``quantile_cont``), but DuckDB's build fuses one
  product into an FMA, so the last bit may differ. Row ids differ by design
  (DuckDB uses a sequence, ClickHouse write-time ids) and are left out.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import Settings, load_settings
from mailtriage.app.store.base import (
    GROUP_BY,
    Checkpoint,
    DeliveryFilter,
    GroupBy,
    RejectFilter,
    Scope,
    Store,
)
from mailtriage.app.store.clickhouse import ClickHouseStore
from mailtriage.app.store.duckdb import DuckDBStore
from mailtriage.errors import ForbiddenError, NotFoundError, QueryError, StoreError
from mailtriage.parsers.model import AttemptRow, Batch, MessageRow, UnparsedRow

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples"
GENERATOR = REPO / "bench" / "generate.py"
BACKENDS = ("duckdb", "clickhouse")
T0 = 1796313600.0  # 2026-12-03T16:00:00Z


def open_backend(kind: str, directory: Path, new_chdb_url: Callable[[], str]) -> Store:
    if kind == "duckdb":
        return DuckDBStore(directory / "contract.duckdb")
    return ClickHouseStore(new_chdb_url())


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    new_chdb_url: Callable[[], str],
) -> Iterator[Store]:
    opened = open_backend(request.param, tmp_path, new_chdb_url)
    yield opened
    opened.close()


def attempt(recipient: str, ts: float, status: str, **kw: Any) -> AttemptRow:
    values: dict[str, Any] = {
        "ts": ts,
        "host": "mx1",
        "queue_id": "AAA",
        "message_key": "mx1/AAA/1",
        "recipient": recipient,
        "recipient_domain": recipient.split("@")[1],
        "transport": "smtp",
        "status": status,
        "final": status in ("sent", "bounced", "expired"),
        "tenant": "acme",
    }
    values.update(kw)
    return AttemptRow(**values)


# ------------------------------------------------------------- behaviour tests


def test_deferred_recipient_is_counted_under_its_latest_attempt(store: Store) -> None:
    store.write(
        Batch(
            attempts=[
                attempt("a@x.example", T0, "deferred", cause="greylisting"),
                attempt("a@x.example", T0 + 300, "deferred", cause="remote_throttling"),
                attempt("b@x.example", T0, "deferred", cause="greylisting"),
                attempt("b@x.example", T0 + 300, "sent"),
            ]
        )
    )
    groups = {g.key["cause"]: g for g in store.summary(Scope(), ["cause"]).groups}
    assert groups["remote_throttling"].deferred == 1
    assert groups["greylisting"].deferred == 0
    assert groups["greylisting"].deferral_attempts == 2
    assert groups[None].delivered == 1


def test_window_counts_a_recipient_delivered_later_as_deferred(store: Store) -> None:
    store.write(
        Batch(
            attempts=[
                attempt("a@x.example", T0, "deferred"),
                attempt("a@x.example", T0 + 3600, "sent"),
            ]
        )
    )
    first_hour = store.summary(Scope(since=T0, until=T0 + 1800)).totals
    second_hour = store.summary(Scope(since=T0 + 1800)).totals
    assert (first_hour.deferred, first_hour.delivered) == (1, 0)
    assert (second_hour.deferred, second_hour.delivered) == (0, 1)


def test_timeseries_applies_the_rules_per_bucket(store: Store) -> None:
    store.write(
        Batch(
            attempts=[
                attempt("a@x.example", T0 + 10, "deferred"),
                attempt("a@x.example", T0 + 70, "sent"),
                attempt("b@y.example", T0 + 80, "bounced"),
            ]
        )
    )
    series = store.timeseries(Scope(since=T0, until=T0 + 120), 60, ["domain"])
    points = {(p.ts, p.key["domain"]): p for p in series.points}
    assert points[(T0, "x.example")].deferred == 1
    assert points[(T0 + 60, "x.example")].delivered == 1
    assert points[(T0 + 60, "y.example")].bounced == 1


def test_messages_are_upserted_by_key_and_filters_see_the_latest(
    store: Store,
) -> None:
    store.write(Batch(messages=[MessageRow("k", "mx1", "AAA", T0, T0, False, "smtpd")]))
    store.write(
        Batch(
            messages=[
                MessageRow(
                    "k", "mx1", "AAA", T0, T0 + 5, True, "smtpd", size=9, tenant="acme"
                )
            ]
        )
    )
    traffic = store.traffic(Scope())
    assert (traffic.messages, traffic.bytes_received) == (1, 9)
    assert store.traffic(Scope(tenant="unassigned")).messages == 0
    assert store.traffic(Scope(tenant="acme")).messages == 1
    (trace,) = store.trace(Scope(), queue_id="AAA")
    assert trace.message.closed is True


def test_write_refuses_a_row_without_a_required_field(store: Store) -> None:
    bad = MessageRow("k2", "mx1", "BBB", T0, T0, False, None)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.write(
            Batch(messages=[bad], attempts=[attempt("a@x.example", T0, "sent")]),
            Checkpoint(source_id="s", offset=100),
            state=b"state",
        )
    assert store.data_range(Scope()).attempts == 0
    assert store.checkpoint("s") is None
    assert store.state() is None


def test_unparsed_counts_add_up_and_keep_the_first_example(store: Store) -> None:
    store.write(
        Batch(unparsed=[UnparsedRow("p", "message", "s <N>", "s 2", 2, 20, 30)])
    )
    store.write(
        Batch(unparsed=[UnparsedRow("p", "message", "s <N>", "s 1", 3, 10, 25)])
    )
    (shape,) = store.unparsed(Scope()).shapes
    assert (shape.count, shape.first_ts, shape.last_ts) == (5, 10, 30)
    assert shape.example == "s 1"
    assert store.unparsed(Scope(since=31)).shapes == []


def test_checkpoints_and_state_round_trip(store: Store) -> None:
    cp = Checkpoint(source_id="log:1", path="/var/log/mail.log", inode=7, offset=10)
    store.write(Batch(), cp, state=b"one\x00\xff")
    first = store.checkpoint("log:1")
    store.write(Batch(), cp.model_copy(update={"offset": 20}), state=b"two\x00\xff")
    found = store.checkpoint("log:1")
    assert found is not None and first is not None
    assert (found.offset, found.inode) == (20, 7)
    assert found.first_seen == first.first_seen
    assert store.state() == b"two\x00\xff"
    assert store.state("other") is None
    assert [s.source_id for s in store.sources()] == ["log:1"]
    assert store.checkpoint("log:2") is None


def test_ingesting_the_same_files_twice_adds_nothing(store: Store) -> None:
    settings = sample_settings()
    files = [str(SAMPLES / "postfix.log"), str(SAMPLES / "dovecot.log")]
    ingest_files(store, settings, files)
    once = store.summary(Scope(), ["tenant"])
    again = ingest_files(store, settings, files)
    assert {s.status for s in again.sources} == {"skipped"}
    assert store.summary(Scope(), ["tenant"]) == once
    assert once.totals.delivered > 0


def test_chat_turns_round_trip_per_tenant(store: Store) -> None:
    store.save_chat_turn("c1", "acme", "user", {"text": "why?"})
    store.save_chat_turn("c1", "acme", "assistant", ["because", 1])
    turns = store.load_conversation("c1", Scope().confined_to("acme"))
    assert [(t.turn, t.role, t.content) for t in turns] == [
        (0, "user", {"text": "why?"}),
        (1, "assistant", ["because", 1]),
    ]
    with pytest.raises(NotFoundError):
        store.load_conversation("c1", Scope().confined_to("globex"))
    with pytest.raises(NotFoundError):
        store.save_chat_turn("c1", "globex", "user", "hijack")
    with pytest.raises(NotFoundError):
        store.load_conversation("nope")


def test_bad_queries_are_query_errors(store: Store) -> None:
    store.write(Batch(attempts=[attempt("a@x.example", T0, "sent")]))
    with pytest.raises(QueryError):
        store.summary(Scope(), ["colour"])  # type: ignore[list-item]
    with pytest.raises(QueryError):
        store.timeseries(Scope(since=0, until=T0), 60)
    with pytest.raises(QueryError):
        store.deliveries(DeliveryFilter(cursor="not-a-cursor"))
    with pytest.raises(QueryError):
        store.trace(Scope())
    with pytest.raises(QueryError):
        store.dovecot_timings(Scope(transport="lmtp"))
    with pytest.raises(ForbiddenError):
        store.summary(Scope(tenant="globex").confined_to("acme"))


def test_closed_store_refuses_writes(store: Store) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.write(Batch())


# ----------------------------------------------------------- equal answers


def sample_settings() -> Settings:
    return load_settings(
        SAMPLES / "tenants.toml", {"ingest": {"year": 2026, "file_batch_lines": 100}}
    )


@dataclass
class Pair:
    """The same logs ingested into DuckDB and into ClickHouse."""

    name: str
    duck: Store
    click: Store

    def same(self, ask: Callable[[Store], Any]) -> Any:
        """``ask`` on both backends; they must agree. Returns the answer."""
        expected = plain(ask(self.duck))
        assert plain(ask(self.click)) == expected
        return expected


def plain(value: Any) -> Any:
    """A model as plain data: row ids dropped, floats to 12 significant digits."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k not in ("id", "next_cursor")}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.12g}")
    return value


@pytest.fixture(scope="module")
def generated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "mail.log"
    subprocess.run(
        [sys.executable, str(GENERATOR), str(out), "--lines", "15000", "--seed", "7"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


@pytest.fixture(scope="module", params=["samples", "generated"])
def pair(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    new_chdb_url: Callable[[], str],
) -> Iterator[Pair]:
    if request.param == "samples":
        settings = sample_settings()
        files = [SAMPLES / "postfix.log", SAMPLES / "dovecot.log"]
    else:
        log: Path = request.getfixturevalue("generated_log")
        settings = load_settings(
            log.with_name(log.name + ".tenants.toml"),
            {"ingest": {"year": 2026, "file_batch_lines": 2000}},
        )
        files = [log]
    directory = tmp_path_factory.mktemp("contract")
    duck = open_backend("duckdb", directory, new_chdb_url)
    click = open_backend("clickhouse", directory, new_chdb_url)
    for backend in (duck, click):
        ingest_files(backend, settings, [str(f) for f in files])
    yield Pair(request.param, duck, click)
    duck.close()
    click.close()


def scopes(pair: Pair) -> list[Scope]:
    found = pair.duck.data_range(Scope())
    assert found.first_ts is not None and found.last_ts is not None
    middle = (found.first_ts + found.last_ts) / 2
    return [
        Scope(),
        Scope(since=middle),
        Scope(since=found.first_ts, until=middle),
        Scope(tenant="acme"),
        Scope().confined_to("globex"),
        Scope(transport="lmtp"),
        Scope(domain="acme.example"),
        Scope(host="mx1"),
    ]


GROUPINGS: list[tuple[GroupBy, ...]] = [
    (),
    *((g,) for g in GROUP_BY),
    ("tenant", "domain"),
    ("domain", "cause"),
]


@pytest.mark.parametrize("group_by", GROUPINGS, ids=lambda g: "+".join(g) or "none")
def test_summary_is_the_same_on_every_backend(
    pair: Pair, group_by: tuple[GroupBy, ...]
) -> None:
    # Every scope for the totals; the windowed and confined ones for groups.
    chosen = scopes(pair) if not group_by else scopes(pair)[1:5]
    for scope in chosen:
        pair.same(lambda s, sc=scope: s.summary(sc, group_by))
    top = pair.same(lambda s: s.summary(Scope(), group_by, limit=3))
    assert top["totals"]["delivered"] > 0


@pytest.mark.parametrize("interval", [60.0, 900.0])
def test_timeseries_is_the_same_on_every_backend(pair: Pair, interval: float) -> None:
    for group_by in [(), ("tenant",), ("domain", "cause")]:
        series = pair.same(lambda s, g=group_by: s.timeseries(Scope(), interval, g))
        assert series["points"]
    pair.same(lambda s: s.timeseries(scopes(pair)[1], interval, ["transport"]))


def test_traffic_and_top_lists_are_the_same(pair: Pair) -> None:
    for scope in scopes(pair):
        traffic = pair.same(lambda s, sc=scope: s.traffic(sc))
        pair.same(lambda s, sc=scope: s.top_senders(sc, 10))
        pair.same(lambda s, sc=scope: s.top_recipients(sc, 10))
        pair.same(lambda s, sc=scope: s.top_domains(sc, 50))
        assert traffic["received"] >= 0
    assert pair.same(lambda s: s.traffic(Scope()))["received"] > 0


def test_causes_are_the_same(pair: Pair) -> None:
    for scope in scopes(pair):
        pair.same(lambda s, sc=scope: strip_example_ids(s.causes(sc, 50)))
    for scope in (Scope(), Scope().confined_to("globex")):
        causes = pair.click.causes(scope, 50)
        for cause in causes:
            example_is_real(pair.click, scope, cause.cause, cause.example_queue_id)
    assert causes


def strip_example_ids(found: list[Any]) -> list[Any]:
    # Of several attempts with the earliest time and the same response, which one
    # names the example queue ID is left to each engine; it is checked apart.
    return [c.model_copy(update={"example_queue_id": None}) for c in found]


def example_is_real(
    store: Store, scope: Scope, cause: str, queue_id: str | None
) -> None:
    query = DeliveryFilter(queue_id=queue_id, limit=1000).confined_to(scope.confined)
    items = store.deliveries(query).items
    assert any((i.cause or "other") == cause for i in items)


def test_refusals_events_and_unparsed_are_the_same(pair: Pair) -> None:
    for scope in scopes(pair):
        pair.same(lambda s, sc=scope: s.reject_counts(sc))
        pair.same(lambda s, sc=scope: s.reject_reasons(sc, 50))
        pair.same(lambda s, sc=scope: s.event_counts(sc))
        pair.same(lambda s, sc=scope: s.event_counts(sc, ["warning", "panic"]))
        pair.same(lambda s, sc=scope: s.unparsed(sc, 50))
        pair.same(lambda s, sc=scope: s.data_range(sc))
    assert pair.same(lambda s: s.unparsed(Scope()))["lines"] > 0


def every_page(store: Store, query: DeliveryFilter | RejectFilter) -> list[Any]:
    items: list[Any] = []
    for _ in range(1000):
        page = (
            store.deliveries(query)
            if isinstance(query, DeliveryFilter)
            else store.rejects(query)
        )
        items += page.items
        if page.next_cursor is None:
            return items
        query = query.model_copy(update={"cursor": page.next_cursor})
    raise AssertionError("paging did not end")


def test_delivery_pages_are_the_same(pair: Pair) -> None:
    size = 40 if pair.name == "samples" else 400  # several pages either way
    everything = pair.same(lambda s: every_page(s, DeliveryFilter(limit=size)))
    assert everything
    pair.same(lambda s: s.deliveries(DeliveryFilter(limit=25)))
    sample = everything[len(everything) // 2]
    filters = [
        DeliveryFilter(status="deferred", limit=size),
        DeliveryFilter(final=True, transport="lmtp", limit=size),
        DeliveryFilter(cause="quota_exceeded", limit=size),
        DeliveryFilter(recipient=sample["recipient"].upper()),
        DeliveryFilter(queue_id=sample["queue_id"]),
        DeliveryFilter(min_delay=1.0, limit=size),
        DeliveryFilter(sender_domain=sample["sender_domain"], limit=size),
        DeliveryFilter(tenant="acme", limit=size),
        DeliveryFilter(limit=size).confined_to("globex"),
    ]
    if sample["message_id"]:
        filters.append(DeliveryFilter(message_id=sample["message_id"]))
    for query in filters:
        pair.same(lambda s, q=query: every_page(s, q))
    joined = [i for i in everything if i["dovecot"] is not None]
    assert joined, "no LMTP delivery joined to its Dovecot side"


def test_refusal_pages_are_the_same(pair: Pair) -> None:
    everything = pair.same(lambda s: every_page(s, RejectFilter(limit=33)))
    assert everything
    for query in (
        RejectFilter(action="reject", limit=20),
        RejectFilter(cause=everything[0]["cause"]),
        RejectFilter(client_ip=everything[-1]["client_ip"]),
        RejectFilter(limit=20).confined_to("acme"),
    ):
        pair.same(lambda s, q=query: every_page(s, q))


def test_traces_are_the_same(pair: Pair) -> None:
    items = pair.duck.deliveries(DeliveryFilter(limit=1000)).items
    queue_ids = sorted({i.queue_id for i in items})[:25]
    for queue_id in queue_ids:
        traces = pair.same(lambda s, q=queue_id: s.trace(Scope(), queue_id=q))
        assert traces
        pair.same(
            lambda s, q=queue_id: s.trace(Scope().confined_to("acme"), queue_id=q)
        )
    with_id = next(i for i in items if i.message_id)
    found = pair.same(lambda s: s.trace(Scope(), message_id=with_id.message_id))
    assert found


@pytest.mark.parametrize(
    "group_by", [(), ("tenant",), ("domain",), ("tenant", "relay")]
)
def test_failures_are_the_same(pair: Pair, group_by: tuple[GroupBy, ...]) -> None:
    for scope in scopes(pair):
        # Groups with as many recipients and attempts come in either order.
        pair.same(lambda s, sc=scope: ordered(s.failures(sc, group_by)))
    assert pair.same(lambda s: ordered(s.failures(Scope(), group_by)))


def ordered(found: list[Any]) -> list[Any]:
    return sorted(found, key=lambda g: repr(plain(g)))


@pytest.mark.parametrize("group_by", [(), ("tenant",), ("domain", "cause"), ("host",)])
def test_dovecot_timings_are_the_same(
    pair: Pair, group_by: tuple[GroupBy, ...]
) -> None:
    for scope in scopes(pair):
        if scope.transport is None:
            pair.same(lambda s, sc=scope: ordered(s.dovecot_timings(sc, group_by)))
    timings = pair.same(lambda s: s.dovecot_timings(Scope(), group_by))
    assert sum(t["saved"] for t in timings) > 0


def test_checkpoints_and_state_are_the_same(pair: Pair) -> None:
    def positions(store: Store) -> list[Checkpoint]:
        return [
            c.model_copy(update={"first_seen": None, "updated": None})
            for c in sorted(store.sources(), key=lambda c: c.source_id)
        ]

    sources = pair.same(positions)
    assert sources and all(s["offset"] > 0 for s in sources)
    for source in sources:
        pair.same(lambda s, sid=source["source_id"]: strip_times(s.checkpoint(sid)))
    assert pair.duck.state() == pair.click.state()


def strip_times(cp: Checkpoint | None) -> Checkpoint | None:
    return (
        None
        if cp is None
        else cp.model_copy(update={"updated": None, "first_seen": None})
    )


def test_confined_store_answers_the_same(pair: Pair) -> None:
    pair.same(lambda s: s.confined("acme").summary(Scope(), ["domain"]))
    pair.same(lambda s: s.confined("acme").deliveries(DeliveryFilter(limit=40)))
    pair.same(lambda s: ordered(s.confined("initech").failures(Scope(), ["domain"])))
