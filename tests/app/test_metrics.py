"""The metrics module: names, label bounds, counting rules, exposition."""

from __future__ import annotations

import re
from pathlib import Path
from threading import RLock
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from mailtriage.app.metrics import (
    MDA_BUCKETS,
    STAGES,
    MetricsObserver,
    RowHistogram,
    TopDomains,
    domain_value,
    program_label,
)
from mailtriage.app.settings import Settings, TenantSettings
from mailtriage.parsers.classify import CAUSES
from mailtriage.parsers.model import (
    AttemptRow,
    Batch,
    DovecotRow,
    EventRow,
    MessageRow,
    RejectRow,
    UnparsedRow,
)

NAMES_FILE = Path(__file__).with_name("metrics_names.txt")


def attempt(**overrides: Any) -> AttemptRow:
    row = AttemptRow(
        ts=1_700_000_000.0,
        host="mx1",
        queue_id="4XyzAB12C",
        message_key="mx1/4XyzAB12C/1700000000000",
        recipient="alice@acme.example",
        recipient_domain="acme.example",
        transport="lmtp",
        status="sent",
        final=True,
        tenant="acme",
        delay=1.5,
        delay_before_qmgr=0.1,
        delay_in_qmgr=0.2,
        delay_conn_setup=0.3,
        delay_transmission=0.9,
    )
    for key, value in overrides.items():
        setattr(row, key, value)
    return row


def message(key: str = "mx1/AAA/1", **overrides: Any) -> MessageRow:
    row = MessageRow(
        key=key,
        host="mx1",
        queue_id="AAA",
        first_ts=1.0,
        last_ts=2.0,
        closed=False,
        origin="smtpd",
        tenant="acme",
        size=2048,
    )
    for name, value in overrides.items():
        setattr(row, name, value)
    return row


def sample(obs: MetricsObserver, name: str, **labels: str) -> float | None:
    return obs.registry.get_sample_value(name, labels)


def exposed_series(obs: MetricsObserver) -> list[str]:
    body, _ = obs.render()
    return [line for line in body.decode().splitlines() if line and line[0] != "#"]


def registered_names(obs: MetricsObserver) -> list[str]:
    """``name<TAB>type<TAB>labels`` per family, as Prometheus will see it."""
    rows = []
    for family in obs.registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = set()
        for s in family.samples:
            labels |= set(s.labels) - {"le"}
        rows.append(f"{name}\t{family.type}\t{','.join(sorted(labels)) or '-'}")
    return sorted(rows)


@pytest.fixture
def obs() -> MetricsObserver:
    return MetricsObserver(tenants=["acme", "globex"], sources=["/var/log/mail.log"])


# ------------------------------------------------------------------- names


def test_registered_metrics_match_the_checked_in_list() -> None:
    # Every label set is exercised so that every family shows its labels.
    obs = MetricsObserver(tenants=["acme"], sources=["src"])
    obs.observe(
        Batch(
            attempts=[
                attempt(),
                attempt(status="deferred", final=False, cause="other"),
            ],
            dovecot=[dovecot_row(delivery_time_ms=5.0, session_time_ms=9.0)],
            events=[EventRow(1.0, "mx1", "postfix/qmgr", "warning", "x")],
            unparsed=[UnparsedRow("postfix/smtpd", "message", "s", "e", 1, None, None)],
            lines_read=1,
            lines_by_program={"postfix/smtpd": 1},
        )
    )
    obs.observe_source("src")
    obs.observe_write_seconds(0.01)

    expected = [
        line
        for line in NAMES_FILE.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert registered_names(obs) == sorted(expected)


def test_metrics_live_on_their_own_registry(obs: MetricsObserver) -> None:
    assert obs.registry is not REGISTRY
    assert REGISTRY.get_sample_value("lmtp_delivery_total") is None
    assert MetricsObserver().registry is not obs.registry


def test_names_follow_prometheus_conventions(obs: MetricsObserver) -> None:
    for family in obs.registry.collect():
        assert family.documentation.endswith("."), family.name
        assert family.name.startswith("mailtriage_") or family.name.startswith(
            "lmtp_delivery"
        ), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        if family.type == "gauge" and "timestamp" in family.name:
            assert family.name.endswith("_seconds"), family.name
    body, _ = obs.render()
    for series in text_string_to_metric_families(body.decode()):
        if series.type == "counter":
            assert all(s.name.endswith("_total") for s in series.samples)


def test_the_two_public_lmtp_names_are_kept(obs: MetricsObserver) -> None:
    obs.observe(Batch(attempts=[attempt()]))

    text = obs.render()[0].decode()
    assert 'lmtp_delivery_total{cause="none",status="ok",tenant="acme"} 1.0' in text
    assert 'lmtp_delivery_duration_seconds_count{status="ok"} 1.0' in text


def test_row_histogram_exposes_what_prometheus_client_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    row = RowHistogram(
        "x_seconds", "X.", ["status"], buckets=MDA_BUCKETS, lock=RLock(), registry=ours
    )
    reference = Histogram(
        "x_seconds", "X.", ["status"], buckets=MDA_BUCKETS, registry=theirs
    )

    for value in (0.0, 0.01, 0.011, 3.0, 3.5, 299.0, 1e6):
        row.labels(status="ok").observe(value)
        reference.labels(status="ok").observe(value)

    def samples(registry: CollectorRegistry) -> list[tuple[str, str, float]]:
        return sorted(
            (s.name, repr(sorted(s.labels.items())), s.value)
            for family in registry.collect()
            for s in family.samples
            if not s.name.endswith("_created")
        )

    assert samples(ours) == samples(theirs)


def test_row_histogram_wants_every_label_by_keyword() -> None:
    row = RowHistogram(
        "y_seconds", "Y.", ["a", "b"], buckets=(1.0,), lock=RLock(),
        registry=CollectorRegistry(),
    )  # fmt: skip

    with pytest.raises(ValueError, match="takes labels"):
        row.labels(a="1")


# --------------------------------------------------------------- deliveries


def test_final_outcome_counts_each_recipient_once_with_delays(
    obs: MetricsObserver,
) -> None:
    obs.observe(Batch(attempts=[attempt(transport="smtp")]))

    assert (
        sample(
            obs,
            "mailtriage_deliveries_total",
            transport="smtp",
            status="sent",
            cause="none",
            tenant="acme",
        )
        == 1
    )
    assert (
        sample(
            obs,
            "mailtriage_final_delivery_seconds_sum",
            transport="smtp",
            tenant="acme",
        )
        == 1.5
    )
    for stage, seconds in zip(STAGES, (0.1, 0.2, 0.3, 0.9), strict=True):
        assert (
            sample(
                obs,
                "mailtriage_final_delivery_stage_seconds_sum",
                stage=stage,
                transport="smtp",
                tenant="acme",
            )
            == seconds
        )


def test_deferred_attempt_counts_as_deferral_not_as_delay(obs: MetricsObserver) -> None:
    deferred = attempt(
        transport="smtp",
        status="deferred",
        final=False,
        cause="greylisting",
        recipient_domain="gmail.example",
    )

    obs.observe(Batch(attempts=[deferred, deferred]))

    assert (
        sample(
            obs,
            "mailtriage_deferrals_total",
            tenant="acme",
            domain="gmail.example",
            cause="greylisting",
        )
        == 2
    )
    assert (
        sample(
            obs,
            "mailtriage_domain_delivery_attempts_total",
            tenant="acme",
            domain="gmail.example",
            status="deferred",
        )
        == 2
    )
    assert (
        sample(
            obs,
            "mailtriage_final_delivery_seconds_count",
            transport="smtp",
            tenant="acme",
        )
        is None
    )


def test_domain_attempts_start_at_zero_for_every_status(obs: MetricsObserver) -> None:
    obs.observe(Batch(attempts=[attempt(recipient_domain="new.example")]))

    for status in ("sent", "deferred", "bounced", "expired"):
        value = sample(
            obs,
            "mailtriage_domain_delivery_attempts_total",
            tenant="acme",
            domain="new.example",
            status=status,
        )
        assert value == (1 if status == "sent" else 0)


def test_lmtp_replies_count_per_recipient_ok_and_fail(obs: MetricsObserver) -> None:
    quota = attempt(
        queue_id="QUOTA1",
        status="bounced",
        cause="quota_exceeded",
        delay_conn_setup=0.0,
        delay_transmission=4.0,
    )
    retry = attempt(
        status="deferred", final=False, cause="mda_temporary_error", tenant="globex"
    )

    obs.observe(Batch(attempts=[attempt(), quota, retry]))

    def lmtp(status: str, tenant: str, cause: str) -> float | None:
        return sample(
            obs, "lmtp_delivery_total", status=status, tenant=tenant, cause=cause
        )

    assert lmtp("ok", "acme", "none") == 1
    assert lmtp("fail", "acme", "quota_exceeded") == 1
    assert lmtp("fail", "globex", "mda_temporary_error") == 1
    assert sample(obs, "lmtp_delivery_duration_seconds_count", status="fail") == 2
    assert sample(obs, "lmtp_delivery_duration_seconds_sum", status="fail") == 5.2


def test_exemplars_carry_the_queue_id_of_the_slowest_delivery(
    obs: MetricsObserver,
) -> None:
    slow = attempt(queue_id="SLOW9", delay=40.0, delay_transmission=30.0)
    obs.observe(Batch(attempts=[attempt(queue_id="FAST1"), slow]))

    body, content_type = obs.render("application/openmetrics-text; version=1.0.0")

    assert content_type.startswith("application/openmetrics-text")
    text = body.decode()
    final = [
        line
        for line in text.splitlines()
        if line.startswith("mailtriage_final_delivery_seconds_bucket") and "#" in line
    ]
    assert final and all('queue_id="SLOW9"' in line for line in final)
    assert 'queue_id="FAST1"' not in text


def test_unknown_tenant_and_unknown_cause_fold_into_bounded_values(
    obs: MetricsObserver,
) -> None:
    odd = attempt(
        transport="weird-agent",
        status="bounced",
        cause="made up",
        tenant="not-configured",
    )

    obs.observe(Batch(attempts=[odd]))

    assert (
        sample(
            obs,
            "mailtriage_deliveries_total",
            transport="other",
            status="bounced",
            cause="other",
            tenant="unassigned",
        )
        == 1
    )


def test_address_verification_probes_are_not_deliveries(obs: MetricsObserver) -> None:
    obs.observe(Batch(attempts=[attempt(status="deliverable")]))

    assert (
        sample(
            obs,
            "mailtriage_deliveries_total",
            transport="lmtp",
            status="sent",
            cause="none",
            tenant="acme",
        )
        == 0
    )


# ----------------------------------------------------------------- messages


def test_received_message_counts_once_per_lifetime(obs: MetricsObserver) -> None:
    obs.observe(Batch(messages=[message(size=None)]))
    obs.observe(Batch(messages=[message()]))
    obs.observe(Batch(messages=[message(last_ts=3.0)]))
    obs.observe(Batch(messages=[message(closed=True)]))

    assert (
        sample(obs, "mailtriage_received_messages_total", tenant="acme", origin="smtpd")
        == 1
    )
    assert sample(obs, "mailtriage_received_bytes_total", tenant="acme") == 2048


def test_reused_queue_id_is_a_new_message(obs: MetricsObserver) -> None:
    obs.observe(Batch(messages=[message("mx1/AAA/1", closed=True)]))
    obs.observe(Batch(messages=[message("mx1/AAA/9", origin="pickup")]))

    assert (
        sample(obs, "mailtriage_received_messages_total", tenant="acme", origin="smtpd")
        == 1
    )
    assert (
        sample(
            obs, "mailtriage_received_messages_total", tenant="acme", origin="pickup"
        )
        == 1
    )


def test_expired_message_counts_once(obs: MetricsObserver) -> None:
    obs.observe(Batch(messages=[message(expired=True)]))
    obs.observe(Batch(messages=[message(expired=True, closed=True)]))

    assert sample(obs, "mailtriage_expired_messages_total", tenant="acme") == 1


def test_rejects_count_by_action_and_cause(obs: MetricsObserver) -> None:
    reject = RejectRow(
        1.0, "mx1", "postfix/smtpd", "reject", "RCPT", None, "h", "192.0.2.1",
        554, "5.7.1", "Relay access denied", "relay_denied", tenant="globex",
    )  # fmt: skip
    hold = RejectRow(
        1.0, "mx1", "postfix/cleanup", "hold", None, "BBB", None, None, None, None,
        "held", "policy_rejected",
    )  # fmt: skip

    obs.observe(Batch(rejects=[reject, hold]))

    assert (
        sample(
            obs,
            "mailtriage_rejects_total",
            tenant="globex",
            action="reject",
            cause="relay_denied",
        )
        == 1
    )
    assert (
        sample(
            obs,
            "mailtriage_rejects_total",
            tenant="unassigned",
            action="hold",
            cause="policy_rejected",
        )
        == 1
    )


# ------------------------------------------------------------------ Dovecot


def dovecot_row(**overrides: Any) -> DovecotRow:
    row = DovecotRow(
        ts=1.0,
        host="mda1",
        service="lmtp",
        recipient="alice@acme.example",
        recipient_domain="acme.example",
        tenant="acme",
        session="rdBDBT+SEWvqFwAAg+zDdQ",
        msgid="m@x",
        status="saved",
        mailbox="INBOX",
        reason=None,
        cause=None,
    )
    for name, value in overrides.items():
        setattr(row, name, value)
    return row


def test_dovecot_saves_failures_and_timings(obs: MetricsObserver) -> None:
    rows = [
        dovecot_row(delivery_time_ms=250.0, session_time_ms=400.0),
        dovecot_row(status="failed", reason="Quota exceeded", cause="quota_exceeded"),
        dovecot_row(service="deliver", status="forwarded"),
    ]

    obs.observe(Batch(dovecot=rows))

    def count(service: str, status: str, cause: str) -> float | None:
        return sample(
            obs,
            "mailtriage_dovecot_deliveries_total",
            tenant="acme",
            service=service,
            status=status,
            cause=cause,
        )

    assert count("lmtp", "saved", "none") == 1
    assert count("lmtp", "failed", "quota_exceeded") == 1
    assert count("lda", "forwarded", "none") == 1
    assert (
        sample(
            obs,
            "mailtriage_dovecot_delivery_seconds_sum",
            service="lmtp",
            status="saved",
        )
        == 0.25
    )
    assert (
        sample(
            obs,
            "mailtriage_dovecot_session_seconds_sum",
            service="lmtp",
            status="saved",
        )
        == 0.4
    )


# ------------------------------------------------------------------- events


def test_events_count_severity_auth_failures_and_notifications(
    obs: MetricsObserver,
) -> None:
    events = [
        EventRow(1.0, "mx1", "postfix-out/smtp", "warning", "TLS library problem"),
        EventRow(1.0, "mx1", "postfix/master", "panic", "oops"),
        EventRow(1.0, "mx1", "dovecot", "auth_unknown_user", "user=bob"),
        EventRow(1.0, "mx1", "dovecot", "auth_login", "user=alice"),
        EventRow(
            1.0,
            "mx1",
            "postfix/bounce",
            "notification",
            "sender non-delivery notification: CCC",
            "BBB",
        ),
        EventRow(
            1.0,
            "mx1",
            "postfix/bounce",
            "notification",
            "sender delay notification: DDD",
            "BBB",
        ),
    ]

    obs.observe(Batch(events=events))

    assert (
        sample(
            obs,
            "mailtriage_severity_events_total",
            severity="warning",
            program="postfix/smtp",
        )
        == 1
    )
    assert (
        sample(
            obs,
            "mailtriage_severity_events_total",
            severity="panic",
            program="postfix/master",
        )
        == 1
    )
    assert sample(obs, "mailtriage_auth_failures_total", reason="unknown_user") == 1
    assert sample(obs, "mailtriage_auth_failures_total", reason="failed") == 0
    assert (
        sample(obs, "mailtriage_bounce_notifications_total", kind="non_delivery") == 1
    )
    assert sample(obs, "mailtriage_bounce_notifications_total", kind="delay") == 1


@pytest.mark.parametrize(
    ("program", "label"),
    [
        ("postfix/smtpd", "postfix/smtpd"),
        ("postfix-out/smtp", "postfix/smtp"),
        ("postfix/submission/smtpd", "postfix/smtpd"),
        ("relay/smtp", "postfix/smtp"),
        ("smtpd", "postfix/smtpd"),
        ("postfix/lmtp", "postfix/lmtp"),
        ("dovecot", "dovecot"),
        ("imap-login", "dovecot"),
        ("lmtp", "dovecot"),
        ("lmtp(alice@acme.example)", "dovecot"),
        ("", "unknown"),
        ("sshd", "other"),
        ("CRON", "other"),
        ("postfix/not-a-daemon", "other"),
    ],
    ids=lambda value: value or "empty",
)
def test_program_label_is_bounded(program: str, label: str) -> None:
    assert program_label(program) == label


@pytest.mark.parametrize(
    ("domain", "label"),
    [
        ("Gmail.Example.", "gmail.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("", "other"),
        ("bad domain", "other"),
        ("<script>", "other"),
        ("a" * 300, "other"),
    ],
    ids=["case-and-dot", "punycode", "empty", "space", "markup", "too-long"],
)
def test_domain_value_is_a_domain_or_other(domain: str, label: str) -> None:
    assert domain_value(domain) == label


# ------------------------------------------------------------------- ingest


def test_lines_and_unparsed_count_by_bounded_program(obs: MetricsObserver) -> None:
    batch = Batch(
        lines_read=10,
        lines_by_program={"postfix/smtpd": 6, "postfix-in/smtpd": 1, "sshd": 2, "": 1},
        unparsed=[
            UnparsedRow("postfix/smtpd", "message", "<N> odd", "1 odd", 2, 1.0, 2.0),
            UnparsedRow("sshd", "program", "x", "x", 2, 1.0, 2.0),
            UnparsedRow("", "envelope", "", "garbage", 1, None, None),
        ],
    )

    obs.observe(batch)

    assert sample(obs, "mailtriage_ingest_lines_total", program="postfix/smtpd") == 7
    assert sample(obs, "mailtriage_ingest_lines_total", program="other") == 2
    assert sample(obs, "mailtriage_ingest_lines_total", program="unknown") == 1
    assert (
        sample(
            obs,
            "mailtriage_ingest_unparsed_lines_total",
            program="postfix/smtpd",
            reason="message",
        )
        == 2
    )
    assert (
        sample(
            obs,
            "mailtriage_ingest_unparsed_lines_total",
            program="unknown",
            reason="envelope",
        )
        == 1
    )
    # A program once seen has its severity series, at zero.
    assert (
        sample(
            obs,
            "mailtriage_severity_events_total",
            severity="panic",
            program="postfix/smtpd",
        )
        == 0
    )


def test_lines_without_a_program_breakdown_count_as_unknown(
    obs: MetricsObserver,
) -> None:
    obs.observe(Batch(lines_read=5))

    assert sample(obs, "mailtriage_ingest_lines_total", program="unknown") == 5


def test_ingest_health_methods(obs: MetricsObserver) -> None:
    obs.set_lag(12.5)
    obs.observe_source("/var/log/mail.log", at=1_700_000_000.0)
    obs.observe_source("/tmp/unexpected.log", at=5.0)
    obs.follower_restarted("/var/log/mail.log")
    obs.syslog_dropped("UDP", 3)
    obs.syslog_dropped("sctp")
    obs.observe_write_seconds(0.02)

    assert sample(obs, "mailtriage_ingest_lag_seconds") == 12.5
    assert (
        sample(
            obs,
            "mailtriage_ingest_last_line_timestamp_seconds",
            source="/var/log/mail.log",
        )
        == 1_700_000_000.0
    )
    assert (
        sample(obs, "mailtriage_ingest_last_line_timestamp_seconds", source="other")
        == 5.0
    )
    assert (
        sample(obs, "mailtriage_follower_restarts_total", source="/var/log/mail.log")
        == 1
    )
    assert sample(obs, "mailtriage_syslog_dropped_messages_total", protocol="udp") == 3
    assert (
        sample(obs, "mailtriage_syslog_dropped_messages_total", protocol="other") == 1
    )
    assert sample(obs, "mailtriage_store_write_seconds_count") == 1


def test_negative_lag_reads_as_zero(obs: MetricsObserver) -> None:
    obs.set_lag(-3.0)

    assert sample(obs, "mailtriage_ingest_lag_seconds") == 0


# ---------------------------------------------------- zero series, settings


def test_configured_tenants_have_zero_series_before_any_mail(
    obs: MetricsObserver,
) -> None:
    for tenant in ("acme", "globex", "unassigned"):
        assert (
            sample(
                obs,
                "lmtp_delivery_total",
                status="fail",
                tenant=tenant,
                cause="quota_exceeded",
            )
            == 0
        )
        assert (
            sample(
                obs,
                "mailtriage_deliveries_total",
                transport="smtp",
                status="sent",
                cause="none",
                tenant=tenant,
            )
            == 0
        )
        assert (
            sample(
                obs, "mailtriage_received_messages_total", tenant=tenant, origin="smtpd"
            )
            == 0
        )


def test_from_settings_takes_tenants_and_metrics_section() -> None:
    settings = Settings(
        tenants={"acme": TenantSettings(domains=["acme.example"])},
        metrics={"top_domains": 3, "domain_refresh_seconds": 60.0},
    )

    obs = MetricsObserver.from_settings(settings, sources=["a.log"])

    assert obs.tenants == {"acme", "unassigned"}
    assert obs.domains.size == 3
    assert obs.domains.refresh_seconds == 60.0
    assert obs.sources == {"a.log"}


def test_build_info_carries_a_version(obs: MetricsObserver) -> None:
    body = obs.render()[0].decode()

    assert re.search(r'^mailtriage_build_info\{version="[^"]+"\} 1\.0$', body, re.M)


def test_render_leaves_out_created_series(obs: MetricsObserver) -> None:
    obs.observe(Batch(attempts=[attempt()]))

    text, content_type = obs.render()
    open_metrics, om_type = obs.render(CONTENT_TYPE_LATEST)

    assert content_type.startswith("text/plain")
    assert om_type.startswith("application/openmetrics-text")
    assert b"_created" not in text
    assert b"_created" not in open_metrics


# ---------------------------------------------------------- top domains


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_top_domains_admits_domains_until_full_then_other() -> None:
    top = TopDomains(2, refresh_seconds=60, clock=FakeClock())

    assert [top.label(d) for d in ("a.example", "b.example", "c.example")] == [
        "a.example",
        "b.example",
        "other",
    ]
    assert top.label("a.example") == "a.example"


def test_refresh_ranks_by_recent_volume() -> None:
    clock = FakeClock()
    top = TopDomains(1, refresh_seconds=60, clock=clock)
    top.label("early.example")
    for _ in range(5):
        top.label("busy.example")

    clock.now = 61
    assert top.due()
    dropped = top.refresh()

    assert dropped == {"early.example"}
    assert top.members == {"busy.example"}
    assert top.label("early.example") == "other"
    assert not top.due()


def test_domain_leaving_the_top_set_loses_its_series() -> None:
    clock = FakeClock()
    obs = MetricsObserver(
        tenants=["acme"], top_domains=1, domain_refresh_seconds=60, clock=clock
    )
    first = attempt(
        status="deferred",
        final=False,
        cause="greylisting",
        recipient_domain="a.example",
    )
    obs.observe(Batch(attempts=[first]))
    busy = attempt(
        status="deferred",
        final=False,
        cause="greylisting",
        recipient_domain="b.example",
    )
    obs.observe(Batch(attempts=[busy] * 5))

    clock.now = 61
    obs.observe(Batch())

    text = obs.render()[0].decode()
    assert 'domain="a.example"' not in text
    assert 'domain="b.example"' not in text  # until it is seen again
    obs.observe(Batch(attempts=[busy]))
    assert (
        sample(
            obs,
            "mailtriage_deferrals_total",
            tenant="acme",
            domain="b.example",
            cause="greylisting",
        )
        == 1
    )
    assert sample(obs, "mailtriage_metrics_top_domains") == 1


def test_ten_thousand_domains_stay_under_the_series_bound() -> None:
    clock = FakeClock()
    tenants = ["acme", "globex"]
    top_n = 50
    obs = MetricsObserver(
        tenants=tenants, top_domains=top_n, domain_refresh_seconds=60, clock=clock
    )
    fixed = len(exposed_series(obs))
    # (tenants + unassigned) x (top N + other) x (4 statuses + the causes).
    domain_bound = (len(tenants) + 1) * (top_n + 1) * (4 + len(CAUSES))
    most = 0

    for round_ in range(3):
        # Half the attempts go to 80 busy domains, half to 10,000 one-off domains.
        rows = [
            attempt(
                queue_id=f"Q{round_}x{i}",
                recipient_domain=(
                    f"busy{i // 2 % 80}.example" if i % 2 else f"d{i}-{round_}.example"
                ),
                tenant=tenants[i % 2],
                transport="smtp",
                status="deferred" if i % 3 else "sent",
                final=not i % 3,
                cause=CAUSES[i % len(CAUSES)] if i % 3 else None,
            )
            for i in range(20_000)
        ]
        for start in range(0, len(rows), 2000):
            obs.observe(Batch(attempts=rows[start : start + 2000]))
            most = max(most, len(exposed_series(obs)))
        clock.now += 61

    obs.observe(Batch(attempts=[attempt(recipient_domain="busy1.example")]))
    domains = {
        m[1]
        for line in exposed_series(obs)
        if (m := re.search(r'domain="([^"]*)"', line))
    }
    assert len(domains) <= top_n + 1
    assert {"other", "busy1.example"} <= domains
    assert obs.domains.members <= {f"busy{i}.example" for i in range(80)}
    # Delay histograms add (tenants) x (4 stages + total) x buckets, once.
    assert most - fixed <= domain_bound + len(tenants) * 5 * 20


def test_no_address_queue_id_or_ip_is_ever_a_label(obs: MetricsObserver) -> None:
    obs.observe(
        Batch(
            attempts=[
                attempt(
                    recipient="bob@acme.example",
                    relay_ip="192.0.2.7",
                    response="550 5.1.1 <bob@acme.example>: unknown",
                )
            ],
            events=[EventRow(1.0, "mx1", "postfix/smtpd", "warning", "192.0.2.7 bad")],
        )
    )

    labels = " ".join(part.split("}")[0] for part in exposed_series(obs) if "{" in part)
    assert "@" not in labels
    assert "4XyzAB12C" not in labels
    assert "192.0.2.7" not in labels
