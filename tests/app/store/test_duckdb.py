"""The DuckDB store: counting rules, searches, traces, confinement, writes, schema."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import duckdb
import pytest

from mailtriage.app.ingest.pipeline import IngestPipeline
from mailtriage.app.settings import Settings, load_settings
from mailtriage.app.store.base import (
    Checkpoint,
    DeliveryFilter,
    RejectFilter,
    Scope,
)
from mailtriage.app.store.columns import ROW_TYPES
from mailtriage.app.store.duckdb import SCHEMA_VERSION, DuckDBStore
from mailtriage.errors import (
    ForbiddenError,
    NotFoundError,
    QueryError,
    SchemaError,
    StoreError,
)
from mailtriage.parsers.model import AttemptRow, Batch, MessageRow, UnparsedRow

APP = Path(__file__).resolve().parent.parent
SAMPLE = APP / "sample_mail.log"
TENANTS = APP / "sample_tenants.toml"
T0 = 1796313600.0  # 2026-12-03T16:00:00Z, the sample's first minute


def sample_settings() -> Settings:
    return load_settings(TENANTS, {"ingest": {"year": 2026}})


def ingest_sample(store: DuckDBStore) -> None:
    pipeline = IngestPipeline(store, sample_settings())
    lines = SAMPLE.read_text().splitlines()
    pipeline.feed_lines("sample", lines, len(SAMPLE.read_bytes()))
    pipeline.flush()


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path_factory.mktemp("db") / "sample.duckdb")
    ingest_sample(store)
    yield store
    store.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    db = DuckDBStore(tmp_path / "t.duckdb")
    yield db
    db.close()


def attempt(recipient: str, ts: float, status: str, **kw: object) -> AttemptRow:
    values: dict[str, object] = {
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
    return AttemptRow(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------- counting rules


def test_totals_follow_the_counting_rules(sample_store: DuckDBStore) -> None:
    totals = sample_store.summary(Scope()).totals
    # alice, carol, the bounce to news@, dan (after greylisting), frank
    assert totals.delivered == 5
    assert totals.bounced == 1  # bob, over quota
    assert totals.expired == 0
    assert totals.deferred == 1  # erin: latest attempt deferred, no final outcome
    assert totals.deferral_attempts == 3  # dan once, erin twice


def test_delays_come_from_final_outcomes_only(sample_store: DuckDBStore) -> None:
    delays = sample_store.summary(Scope()).totals.delays
    # Six final attempts; erin's deferred 302 s never counts.
    assert delays.total.count == 6
    assert delays.total.p99 is not None and delays.total.p99 < 302
    assert delays.before_queue_manager.count == 6


def test_summary_by_tenant_counts_each_tenant_apart(sample_store: DuckDBStore) -> None:
    groups = {
        g.key["tenant"]: g for g in sample_store.summary(Scope(), ["tenant"]).groups
    }
    assert (groups["acme"].delivered, groups["acme"].bounced) == (2, 1)
    assert (groups["acme"].deferred, groups["acme"].deferral_attempts) == (1, 3)
    assert groups["globex"].delivered == 2
    assert groups["unassigned"].delivered == 1


def test_deferred_recipient_is_counted_under_its_latest_attempt(
    store: DuckDBStore,
) -> None:
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
    assert groups["greylisting"].deferred == 0  # b was delivered, a moved on
    assert groups["greylisting"].deferral_attempts == 2
    assert groups[None].delivered == 1


def test_window_counts_a_recipient_delivered_later_as_deferred(
    store: DuckDBStore,
) -> None:
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


def test_timeseries_applies_the_rules_per_bucket(store: DuckDBStore) -> None:
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
    assert [p.ts for p in series.points] == sorted(p.ts for p in series.points)


def test_timeseries_refuses_too_many_buckets(sample_store: DuckDBStore) -> None:
    with pytest.raises(QueryError) as err:
        sample_store.timeseries(Scope(since=0, until=T0), 60)
    assert err.value.parameter == "interval"


def test_unknown_group_by_is_a_query_error(sample_store: DuckDBStore) -> None:
    with pytest.raises(QueryError) as err:
        sample_store.summary(Scope(), ["colour"])  # type: ignore[list-item]
    assert err.value.parameter == "group_by"


def test_traffic_counts_received_messages_and_bytes(sample_store: DuckDBStore) -> None:
    traffic = sample_store.traffic(Scope())
    assert traffic.received == 3  # smtpd, submission smtpd, pickup; not the bounce
    assert traffic.bytes_received == 2048 + 5000 + 1000
    assert traffic.by_origin["bounce"] == 1
    # alice and carol (2048 each), the bounce (3000), dan (5000), frank (1000)
    assert traffic.bytes_delivered == 2048 * 2 + 3000 + 5000 + 1000


def test_top_lists(sample_store: DuckDBStore) -> None:
    senders = sample_store.top_senders(Scope(), 10)
    assert {s.sender for s in senders} == {
        "news@remote.example",
        "sales@acme.example",
        "ops@globex.example",
    }
    recipients = sample_store.top_recipients(Scope(), 2)
    assert len(recipients) == 2
    domains = {d.domain: d for d in sample_store.top_domains(Scope(), 10)}
    assert domains["far.example"].attempts == 3
    assert domains["far.example"].recipients == 2


def test_causes_carry_an_example_response(sample_store: DuckDBStore) -> None:
    causes = {c.cause: c for c in sample_store.causes(Scope())}
    assert causes["connection_refused"].attempts == 2
    assert causes["connection_refused"].recipients == 1
    assert "Connection refused" in causes["connection_refused"].example
    assert causes["quota_exceeded"].temporary is False
    assert causes["greylisting"].example_queue_id == "6B7C8D9E0F"


def test_rejects_are_counted_by_action_and_reason(sample_store: DuckDBStore) -> None:
    assert sample_store.reject_counts(Scope()) == {"reject": 2}
    reasons = {r.cause: r for r in sample_store.reject_reasons(Scope())}
    assert reasons["relay_denied"].smtp_code == 554
    assert "Relay access denied" in reasons["relay_denied"].example
    page = sample_store.rejects(RejectFilter(cause="unknown_recipient"))
    assert [r.recipient for r in page.items] == ["nobody@acme.example"]


def test_events_list_warnings_and_panics(sample_store: DuckDBStore) -> None:
    events = sample_store.event_counts(Scope(), ["warning", "panic"])
    found = {(e.category, e.program) for e in events}
    assert ("warning", "postfix/master") in found
    assert ("panic", "postfix/cleanup") in found


def test_unparsed_lists_programs_and_shapes(sample_store: DuckDBStore) -> None:
    unparsed = sample_store.unparsed(Scope())
    programs = {p.program: p for p in unparsed.by_program}
    assert programs["opendkim"].unparsed == 1
    assert programs["postfix/smtpd"].lines == 7
    assert unparsed.lines == 35
    shapes = {s.shape for s in unparsed.shapes}
    assert "a line nobody has ever seen <N>" in shapes


def test_unparsed_counts_add_up_and_keep_the_first_example(store: DuckDBStore) -> None:
    store.write(
        Batch(unparsed=[UnparsedRow("p", "message", "s <N>", "s 2", 2, 20, 30)])
    )
    store.write(
        Batch(unparsed=[UnparsedRow("p", "message", "s <N>", "s 1", 3, 10, 25)])
    )
    (shape,) = store.unparsed(Scope()).shapes
    assert (shape.count, shape.first_ts, shape.last_ts) == (5, 10, 30)
    assert shape.example == "s 1"


def test_data_range(sample_store: DuckDBStore) -> None:
    found = sample_store.data_range(Scope())
    assert found.first_ts == T0 + 2
    assert found.last_ts == T0 + 362
    assert found.attempts == 9


# -------------------------------------------------------------- searches


def test_deliveries_page_newest_first_through_the_cursor(
    sample_store: DuckDBStore,
) -> None:
    seen = []
    cursor = None
    for _ in range(10):
        page = sample_store.deliveries(DeliveryFilter(limit=2, cursor=cursor))
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 9
    assert len({item.id for item in seen}) == 9
    assert [i.ts for i in seen] == sorted((i.ts for i in seen), reverse=True)


def test_deliveries_filters(sample_store: DuckDBStore) -> None:
    slow = sample_store.deliveries(DeliveryFilter(min_delay=300))
    assert {i.recipient for i in slow.items} == {"dan@far.example", "erin@dead.example"}
    finals = sample_store.deliveries(
        DeliveryFilter(recipient="DAN@far.example", final=True)
    )
    assert [i.status for i in finals.items] == ["sent"]
    by_msgid = sample_store.deliveries(DeliveryFilter(message_id="m1@remote.example"))
    assert len(by_msgid.items) == 3
    lmtp = sample_store.deliveries(DeliveryFilter(transport="lmtp", status="bounced"))
    assert [i.recipient for i in lmtp.items] == ["bob@acme.example"]


def test_bad_cursor_is_a_query_error(sample_store: DuckDBStore) -> None:
    with pytest.raises(QueryError) as err:
        sample_store.deliveries(DeliveryFilter(cursor="not-a-cursor"))
    assert err.value.parameter == "cursor"


def test_lmtp_deliveries_carry_the_dovecot_side(sample_store: DuckDBStore) -> None:
    items = {
        i.recipient: i
        for i in sample_store.deliveries(DeliveryFilter(transport="lmtp")).items
    }
    alice, bob, carol = (
        items[f"{u}"]
        for u in ("alice@acme.example", "bob@acme.example", "carol@globex.example")
    )
    assert alice.dovecot is not None and alice.dovecot.status == "saved"
    assert alice.dovecot.mailbox == "INBOX"
    assert bob.dovecot is not None and bob.dovecot.cause == "quota_exceeded"
    assert carol.dovecot is None  # Dovecot's line for carol is not in the log


def test_trace_tells_reused_queue_ids_on_two_hosts_apart(
    sample_store: DuckDBStore,
) -> None:
    traces = sample_store.trace(Scope(), queue_id="4A1B2C3D4E")
    assert [t.message.host for t in traces] == ["mx1", "mx2"]
    inbound, pickup = traces
    assert {d.recipient for d in inbound.deliveries} == {
        "alice@acme.example",
        "bob@acme.example",
        "carol@globex.example",
    }
    assert [n.queue_id for n in inbound.notifications] == ["5F6A7B8C9D"]
    assert all("mx1 " in line.line for line in inbound.lines)
    assert any("removed" in line.line for line in inbound.lines)
    assert [d.recipient for d in pickup.deliveries] == ["frank@far.example"]
    assert pickup.message.origin == "pickup"


def test_trace_by_message_id_and_of_a_notification(sample_store: DuckDBStore) -> None:
    (trace,) = sample_store.trace(Scope(), message_id="<m2@acme.example>")
    assert trace.message.queue_id == "6B7C8D9E0F"
    assert trace.message.closed is False
    (bounce,) = sample_store.trace(Scope(), queue_id="5F6A7B8C9D")
    assert bounce.parent is not None and bounce.parent.queue_id == "4A1B2C3D4E"


def test_trace_needs_exactly_one_identifier(sample_store: DuckDBStore) -> None:
    with pytest.raises(QueryError):
        sample_store.trace(Scope())


# ----------------------------------------------------------- confinement


def test_confined_scope_sees_only_its_tenant(sample_store: DuckDBStore) -> None:
    globex = Scope().confined_to("globex")
    summary = sample_store.summary(globex, ["tenant"])
    assert [g.key["tenant"] for g in summary.groups] == ["globex"]
    assert summary.totals.delivered == 2
    items = sample_store.deliveries(DeliveryFilter().confined_to("globex")).items
    assert {i.tenant for i in items} == {"globex"}
    assert sample_store.event_counts(globex) == []
    assert sample_store.unparsed(globex).shapes == []
    assert sample_store.reject_counts(globex) == {}


def test_confined_scope_cannot_be_widened(sample_store: DuckDBStore) -> None:
    globex = Scope().confined_to("globex")
    with pytest.raises(ForbiddenError):
        sample_store.summary(globex.replace(tenant="acme"))
    with pytest.raises(ForbiddenError):
        globex.confined_to("acme")
    assert globex.confined_to(None).confined == "globex"
    assert globex.replace(since=T0).confined == "globex"


def test_confined_trace_hides_other_tenants_recipients(
    sample_store: DuckDBStore,
) -> None:
    (inbound,) = sample_store.trace(
        Scope(host="mx1").confined_to("globex"), queue_id="4A1B2C3D4E"
    )
    assert [d.recipient for d in inbound.deliveries] == ["carol@globex.example"]
    text = "\n".join(line.line for line in inbound.lines)
    assert "carol@globex.example" in text
    assert "alice@acme.example" not in text
    assert "bob@acme.example" not in text
    assert inbound.notifications == []  # the bounce went to the sender, not globex
    assert (
        sample_store.trace(Scope().confined_to("globex"), queue_id="6B7C8D9E0F") == []
    )


def test_confined_store_wraps_every_query(sample_store: DuckDBStore) -> None:
    acme = sample_store.confined("acme")
    assert acme.summary(Scope()).totals.delivered == 2
    assert {d.tenant for d in acme.deliveries(DeliveryFilter()).items} == {"acme"}
    with pytest.raises(ForbiddenError):
        acme.summary(Scope(tenant="globex"))
    with pytest.raises(ForbiddenError):
        acme.write(Batch())
    assert sample_store.confined(None) is sample_store


# ---------------------------------------------------------------- triage


def test_failures_count_recovered_greylisting(sample_store: DuckDBStore) -> None:
    groups = {
        (g.key["tenant"], g.cause): g
        for g in sample_store.failures(Scope(), ["tenant", "domain"])
    }
    grey = groups[("acme", "greylisting")]
    assert (grey.recipients, grey.recovered, grey.temporary) == (1, 1, True)
    refused = groups[("acme", "connection_refused")]
    assert (refused.attempts, refused.recipients, refused.recovered) == (2, 1, 0)
    assert refused.samples[0].queue_id == "6B7C8D9E0F"
    assert refused.group_recipients == 1  # erin is dead.example's only recipient


def test_dovecot_timings_join_postfix_delays(sample_store: DuckDBStore) -> None:
    (acme,) = [
        t
        for t in sample_store.dovecot_timings(Scope(), ["tenant"])
        if t.key["tenant"] == "acme"
    ]
    assert (acme.saved, acme.failed) == (1, 1)
    assert acme.postfix_delay.count == 2
    assert acme.postfix_transmission.p50 == pytest.approx(0.85)


# ----------------------------------------------------------------- writes


def test_write_is_all_or_nothing(store: DuckDBStore) -> None:
    good = MessageRow("k1", "mx1", "AAA", T0, T0, False, "smtpd")
    bad = MessageRow("k2", "mx1", "BBB", T0, T0, False, None)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.write(
            Batch(messages=[good, bad], attempts=[attempt("a@x.example", T0, "sent")]),
            Checkpoint(source_id="s", offset=100),
            state=b"state",
        )
    assert store.data_range(Scope()).attempts == 0
    assert store.checkpoint("s") is None
    assert store.state() is None


def test_messages_are_upserted_by_key(store: DuckDBStore) -> None:
    store.write(Batch(messages=[MessageRow("k", "mx1", "AAA", T0, T0, False, "smtpd")]))
    store.write(
        Batch(
            messages=[MessageRow("k", "mx1", "AAA", T0, T0 + 5, True, "smtpd", size=9)]
        )
    )
    traffic = store.traffic(Scope())
    assert (traffic.messages, traffic.bytes_received) == (1, 9)


def test_checkpoints_and_state_round_trip(store: DuckDBStore) -> None:
    cp = Checkpoint(source_id="log:1", path="/var/log/mail.log", inode=7, offset=10)
    store.write(Batch(), cp, state=b"one")
    store.write(Batch(), cp.model_copy(update={"offset": 20}), state=b"two")
    found = store.checkpoint("log:1")
    assert found is not None and (found.offset, found.inode) == (20, 7)
    assert store.state() == b"two"
    assert [s.source_id for s in store.sources()] == ["log:1"]


def test_every_row_field_has_a_column(store: DuckDBStore) -> None:
    for name, row_type in ROW_TYPES.items():
        rows = duckdb_columns(store, name)
        missing = {f.name for f in fields(row_type)} - rows
        assert not missing, f"table {name} lacks columns {missing}: add a migration"


def duckdb_columns(store: DuckDBStore, table: str) -> set[str]:
    return {row[0] for row in store._rows(f"DESCRIBE {table}", [], "describing")}


def test_queries_run_from_threads_while_another_writes(store: DuckDBStore) -> None:
    errors: list[BaseException] = []

    def query() -> None:
        try:
            for _ in range(20):
                store.summary(Scope(), ["tenant"])
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=query) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(20):
        store.write(Batch(attempts=[attempt(f"u{i}@x.example", T0 + i, "sent")]))
    for t in threads:
        t.join(30)
    assert errors == []
    assert store.summary(Scope()).totals.delivered == 20


# ----------------------------------------------------------- chat storage


def test_chat_turns_round_trip_per_tenant(store: DuckDBStore) -> None:
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


# ----------------------------------------------------------------- schema


def test_reopening_keeps_data_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "re.duckdb"
    with DuckDBStore(path) as first:
        first.write(Batch(attempts=[attempt("a@x.example", T0, "sent")]))
    with DuckDBStore(path) as again:
        assert again.summary(Scope()).totals.delivered == 1


def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO schema_version VALUES (?, 'future', 0)", [SCHEMA_VERSION + 1]
    )
    con.close()
    with pytest.raises(SchemaError, match=f"schema version {SCHEMA_VERSION + 1}"):
        DuckDBStore(path)


def test_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot use the database"):
        DuckDBStore(tmp_path)  # a directory


def test_closed_store_refuses_writes(tmp_path: Path) -> None:
    db = DuckDBStore(tmp_path / "c.duckdb")
    db.close()
    db.close()
    with pytest.raises(StoreError, match="closed"):
        db.write(Batch())
