"""Triage on logs that real Postfix and Dovecot wrote while the test caused
incidents on purpose (one mail lab for the module, tests/daemons.py).

First a healthy phase (with one greylisting deferral delivered on retry), then,
in a window of their own, six incidents at once: a full-mailbox storm at
acme.example, users Dovecot does not know at globex.example, a slow LMTP path to
initech.example, a throttling provider (bigmail.example), a refusing one
(strictmail.example) and an unreachable MDA for hooli.example. Each must be the top
finding for its domain, with the right cause or stage; the healthy phase must have
no incident.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from daemons import (
    DELIVER_LOG_FORMAT_TIMINGS,
    FULL_QUOTA,
    GREYLIST_REPLY,
    POLICY_REPLY,
    THROTTLE_REPLY,
    ClosedPort,
    LabConfig,
    Mailbox,
    MailLab,
    SlowLmtpProxy,
    SmtpPeer,
    missing_requirements,
)

from mailtriage.agents.findings import Finding, TriageReport
from mailtriage.agents.triage import analyze
from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store import open_store
from mailtriage.app.store.base import Scope, Store

pytestmark = pytest.mark.daemons

SLOW_SECONDS = 3.5
TENANTS = {
    "acme": {"domains": ["acme.example"]},
    "globex": {"domains": ["globex.example"]},
    "initech": {"domains": ["initech.example"]},
    "hooli": {"domains": ["hooli.example"]},
}
OUTSIDE = "jane@partner.example"  # a remote sender; relays from 127.0.0.1


@dataclass
class Peers:
    slow: SlowLmtpProxy
    vendor: SmtpPeer


@dataclass
class Phases:
    """The two windows (epoch seconds, whole seconds) and the store of the logs."""

    healthy: Scope
    incidents: Scope
    store: Store


def _config(peers: Peers) -> LabConfig:
    boxes = [
        Mailbox("alice@acme.example"),
        Mailbox("bob@acme.example", quota_rule=FULL_QUOTA),
        Mailbox("carol@acme.example", quota_rule=FULL_QUOTA, prefill_bytes=4000),
        Mailbox("hank@globex.example"),
        *(Mailbox(f"old{i}@globex.example", in_dovecot=False) for i in range(4)),
        Mailbox("pat@initech.example"),
        Mailbox("sam@initech.example"),
        Mailbox("ops@hooli.example"),
    ]
    sink = SmtpPeer(greeting_name="mx.partner.example", address="127.0.2.10")
    return LabConfig(
        domains=("acme.example", "globex.example", "initech.example", "hooli.example"),
        mailboxes=boxes,
        routes={
            "partner.example": sink,
            "vendor.example": peers.vendor,
            "bigmail.example": SmtpPeer(address="127.0.2.1", rcpt_reply=THROTTLE_REPLY),
            "strictmail.example": SmtpPeer(
                address="127.0.2.2", rcpt_reply=POLICY_REPLY
            ),
            "initech.example": peers.slow,
            "hooli.example": ClosedPort(),
        },
        deliver_log_format=DELIVER_LOG_FORMAT_TIMINGS,
    )


def _next_second() -> float:
    """Sleep into a fresh second and return its start: log times are whole
    seconds, so a window boundary must fall between two of them."""
    boundary = math.floor(time.time()) + 1.0
    time.sleep(boundary - time.time() + 0.05)
    return boundary


def _healthy(lab: MailLab, peers: Peers) -> None:
    for rcpt in ("alice@acme.example", "hank@globex.example", "pat@initech.example"):
        lab.send(OUTSIDE, [rcpt])
    lab.send("alice@acme.example", ["bob@partner.example"])
    lab.send("alice@acme.example", ["orders@vendor.example"])
    lab.wait_until_quiet(lambda pf, _: "status=deferred" in pf)
    peers.vendor.rcpt_reply = None  # the greylist lets the retry through
    lab.flush()
    lab.wait_until_quiet(lambda pf, _: pf.count("status=sent") >= 5)


def _incidents(lab: MailLab, peers: Peers) -> None:
    peers.slow.delay_seconds = SLOW_SECONDS
    for i in range(6):
        lab.send(OUTSIDE, ["bob@acme.example", "carol@acme.example"], subject=f"t{i}")
    lab.send(OUTSIDE, ["alice@acme.example"])
    lab.send(OUTSIDE, [f"old{i}@globex.example" for i in range(4)])
    lab.send(OUTSIDE, ["hank@globex.example"])
    for rcpt in ("pat@initech.example", "sam@initech.example", "pat@initech.example"):
        lab.send(OUTSIDE, [rcpt])
    for i in range(3):
        lab.send(OUTSIDE, [f"user{i}@bigmail.example"])
    lab.send(OUTSIDE, ["buyer@strictmail.example", "sales@strictmail.example"])
    lab.send(OUTSIDE, ["ops@hooli.example"])
    lab.send(OUTSIDE, ["ops@hooli.example"])
    lab.wait_until_quiet(lambda pf, _: pf.count("Saved)") >= 8, timeout=60)


@pytest.fixture(scope="module")
def phases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phases]:
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(reason)
    peers = Peers(
        slow=SlowLmtpProxy(delay_seconds=0.0),
        vendor=SmtpPeer(address="127.0.2.3", rcpt_reply=GREYLIST_REPLY),
    )
    db = tmp_path_factory.mktemp("lab-triage") / "lab.duckdb"
    settings = load_settings(None, {"store": {"db": str(db)}, "tenants": TENANTS})
    with open_store(settings) as store:
        with MailLab(_config(peers)) as lab:
            start = _next_second()
            _healthy(lab, peers)
            middle = _next_second()
            _incidents(lab, peers)
            end = _next_second()
            logs = lab.logs()
            ingest_files(store, settings, [str(logs.postfix), str(logs.dovecot)])
        yield Phases(
            healthy=Scope(since=start, until=middle),
            incidents=Scope(since=middle, until=end),
            store=store,
        )


def _top(phases: Phases, **filters: str) -> Finding:
    report = analyze(phases.store, phases.incidents.replace(**filters))
    assert report.findings, f"no findings for {filters}"
    return report.findings[0]


def test_healthy_run_has_no_incident(phases: Phases) -> None:
    report: TriageReport = analyze(phases.store, phases.healthy)

    assert report.incidents() == []
    assert [(f.kind, f.domain, f.severity) for f in report.findings] == [
        ("greylisting", "vendor.example", "noise")
    ]


def test_full_mailbox_storm_is_the_top_finding_for_its_tenant(phases: Phases) -> None:
    top = _top(phases, tenant="acme")

    assert (top.kind, top.domain, top.temporary) == (
        "quota_exceeded",
        "acme.example",
        False,
    )
    assert top.recipients == 12 and top.severity == "critical"


def test_unknown_users_are_the_top_finding_for_their_domain(phases: Phases) -> None:
    top = _top(phases, domain="globex.example")

    assert (top.kind, top.tenant, top.recipients) == ("unknown_recipient", "globex", 4)
    assert top.share == 0.8
    assert all("5.1.1" in (e.response or "") for e in top.evidence)


def test_slow_lmtp_server_is_named_by_its_stage(phases: Phases) -> None:
    top = _top(phases, tenant="initech")

    assert (top.kind, top.stage, top.domain) == (
        "slow_delivery",
        "transmission",
        "initech.example",
    )
    assert top.recipients == 3 and top.baseline.recipients == 0
    assert "do not account for it" in top.explanation
    assert all((e.stage_seconds or 0) >= SLOW_SECONDS - 0.1 for e in top.evidence)


@pytest.mark.parametrize(
    ("domain", "kind", "temporary"),
    [
        ("bigmail.example", "remote_throttling", True),
        ("strictmail.example", "policy_rejected", False),
    ],
)
def test_throttling_and_refusing_remotes_are_named(
    phases: Phases, domain: str, kind: str, temporary: bool
) -> None:
    top = _top(phases, domain=domain)

    assert (top.kind, top.temporary) == (kind, temporary)
    assert top.severity in ("critical", "warning")


def test_unreachable_mda_is_the_top_finding_for_its_tenant(phases: Phases) -> None:
    top = _top(phases, tenant="hooli")

    assert (top.kind, top.domain, top.relay) == (
        "connection_refused",
        "hooli.example",
        "127.0.0.1",
    )
    assert top.temporary is True and top.severity == "critical"
    assert "posttls-finger" in top.remediation or "lmtp listener" in top.remediation


def test_whole_incident_window_ranks_the_storm_first(phases: Phases) -> None:
    report = analyze(phases.store, phases.incidents)
    kinds = {(f.kind, f.domain) for f in report.incidents()}

    assert report.findings[0].kind == "quota_exceeded"
    assert {
        ("quota_exceeded", "acme.example"),
        ("unknown_recipient", "globex.example"),
        ("slow_delivery", "initech.example"),
        ("remote_throttling", "bigmail.example"),
        ("policy_rejected", "strictmail.example"),
        ("connection_refused", "hooli.example"),
    } <= kinds
