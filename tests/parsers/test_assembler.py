"""The assembler: records of single lines to messages, attempts and the Dovecot join."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from mailtriage.app.settings import TenantSettings, load_settings
from mailtriage.errors import StoreError
from mailtriage.parsers.assembler import (
    Assembler,
    message_join_key,
    session_join_key,
)
from mailtriage.parsers.classify import classify_dovecot
from mailtriage.parsers.line import LineParser
from mailtriage.parsers.model import (
    AttemptRow,
    Batch,
    DovecotRow,
    MessageRow,
    RejectRow,
    message_key,
)
from mailtriage.parsers.records import (
    CleanupMessageId,
    Delivery,
    DovecotDelivery,
    Envelope,
    Notification,
    Postsuper,
    QmgrExpired,
    QmgrFrom,
    QmgrRemoved,
    Record,
    Reject,
    SmtpdClient,
    Unparsed,
)
from mailtriage.parsers.tenants import TenantMap

T0 = 1_796_313_600.0  # 2026-12-03 00:00:00 UTC


@pytest.fixture
def tenants() -> TenantMap:
    return TenantMap.from_settings(
        {
            "acme": TenantSettings(
                domains=["acme.example", "*.acme-corp.example"],
                sasl_users=["acme-relay"],
            ),
            "globex": TenantSettings(domains=["globex.example"]),
        }
    )


def env(ts: float, program: str = "postfix/qmgr", host: str = "mx1") -> Envelope:
    return Envelope(T0 + ts, host, program, 100, "")


class Run:
    """Feeds records and keeps every batch taken, merged the way the store would."""

    def __init__(self, asm: Assembler) -> None:
        self.asm = asm
        self.batches: list[Batch] = []

    def feed(
        self,
        ts: float,
        record: Record,
        program: str = "postfix/qmgr",
        host: str = "mx1",
    ) -> None:
        self.asm.feed(env(ts, program, host), record, f"line at {ts}")

    def take(self) -> Batch:
        batch = self.asm.take()
        self.batches.append(batch)
        return batch

    def messages(self) -> dict[str, MessageRow]:
        """Messages upserted by key, last write wins."""
        return {m.key: m for b in self.batches for m in b.messages}

    def rows(self, name: str) -> list[Any]:
        return [row for b in self.batches for row in getattr(b, name)]


def receive(
    run: Run, qid: str, ts: float, sender: str, nrcpt: int, host: str = "mx1"
) -> None:
    run.feed(
        ts, SmtpdClient(qid, "mail.sender.example", "127.0.0.2"), "postfix/smtpd", host
    )
    run.feed(
        ts + 0.1,
        CleanupMessageId(qid, f"{qid}@sender.example"),
        "postfix/cleanup",
        host,
    )
    run.feed(ts + 0.2, QmgrFrom(qid, sender, 2048, nrcpt), "postfix/qmgr", host)


def deliver(
    run: Run,
    qid: str,
    ts: float,
    rcpt: str,
    status: str,
    *,
    transport: str = "lmtp",
    host: str = "mx1",
    **fields: Any,
) -> None:
    run.feed(
        ts,
        Delivery(qid, transport, rcpt, status, **fields),
        f"postfix/{transport}",
        host,
    )


# ---------------------------------------------------------------- message lifetimes


def test_qmgr_removed_closes_message(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@sender.example", 1)
    deliver(run, "A1", 1, "alice@acme.example", "sent")
    run.feed(2, QmgrRemoved("A1"))
    run.take()

    [msg] = run.messages().values()
    assert msg.closed is True
    assert msg.key == message_key("mx1", "A1", T0)
    assert (msg.first_ts, msg.last_ts) == (T0, T0 + 2)
    assert msg.origin == "smtpd"
    assert msg.client_ip == "127.0.0.2"
    assert msg.message_id == "A1@sender.example"
    assert (msg.sender, msg.sender_domain, msg.size, msg.nrcpt) == (
        "bob@sender.example",
        "sender.example",
        2048,
        1,
    )
    assert run.asm.open_messages == 0


def test_take_carries_open_messages_that_changed_only(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@sender.example", 1)
    receive(run, "B2", 0, "bob@sender.example", 1)
    first = run.take()
    deliver(run, "A1", 1, "alice@acme.example", "deferred", dsn="4.2.0")
    second = run.take()
    third = run.take()

    assert sorted(m.queue_id for m in first.messages) == ["A1", "B2"]
    assert [m.queue_id for m in second.messages] == ["A1"]
    assert all(m.closed is False for m in first.messages + second.messages)
    assert len(third) == 0


def test_close_all_reports_open_messages_still_open(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@sender.example", 1)
    deliver(run, "A1", 1, "x@gmail.example", "deferred", transport="smtp")
    run.take()
    run.asm.close_all()
    batch = run.take()
    assert [(m.queue_id, m.closed) for m in batch.messages] == [("A1", False)]
    assert [a.final for a in run.rows("attempts")] == [False]
    assert run.asm.open_messages == 1


def test_rows_taken_are_copies_unaffected_by_later_lines(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@sender.example", 1)
    [before] = run.take().messages
    run.feed(5, QmgrRemoved("A1"))
    run.take()
    assert before.closed is False
    assert before.last_ts == T0 + 0.2


def test_queue_id_reused_after_removed_opens_a_new_lifetime(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "first@sender.example", 1)
    deliver(run, "A1", 1, "alice@acme.example", "sent")
    run.feed(2, QmgrRemoved("A1"))
    receive(run, "A1", 3, "second@sender.example", 1)
    deliver(run, "A1", 4, "carol@acme.example", "sent")
    run.feed(5, QmgrRemoved("A1"))
    run.take()

    messages = sorted(run.messages().values(), key=lambda m: m.first_ts)
    assert [m.sender for m in messages] == [
        "first@sender.example",
        "second@sender.example",
    ]
    assert messages[0].key != messages[1].key
    attempts = {a.recipient: a.message_key for a in run.rows("attempts")}
    assert attempts == {
        "alice@acme.example": messages[0].key,
        "carol@acme.example": messages[1].key,
    }  # fmt: skip


def test_late_delivery_within_grace_attaches_to_closed_lifetime(
    tenants: TenantMap,
) -> None:
    run = Run(Assembler(tenants, grace_seconds=60))
    receive(run, "A1", 0, "bob@sender.example", 2)
    deliver(run, "A1", 1, "alice@acme.example", "sent")
    run.feed(1, QmgrRemoved("A1"))
    deliver(run, "A1", 1, "carol@acme.example", "sent")
    run.take()

    [msg] = run.messages().values()
    assert msg.closed is True
    assert {a.message_key for a in run.rows("attempts")} == {msg.key}
    assert run.asm.open_messages == 0


def test_late_delivery_after_grace_opens_unknown_lifetime(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants, grace_seconds=60))
    receive(run, "A1", 0, "bob@sender.example", 1)
    run.feed(1, QmgrRemoved("A1"))
    deliver(run, "A1", 120, "carol@acme.example", "sent")
    run.take()

    later = [m for m in run.messages().values() if m.first_ts == T0 + 120]
    assert [(m.origin, m.closed) for m in later] == [("unknown", False)]
    [attempt] = run.rows("attempts")
    assert attempt.message_key == later[0].key


def test_delivery_for_never_opened_queue_id_still_produces_attempt(
    tenants: TenantMap,
) -> None:
    run = Run(Assembler(tenants))
    deliver(run, "Z9", 0, "alice@acme.example", "sent", relay_host="mda")
    run.take()

    [attempt] = run.rows("attempts")
    assert (attempt.queue_id, attempt.status, attempt.final) == ("Z9", "sent", True)
    assert attempt.tenant == "acme"
    assert attempt.sender is None
    [msg] = run.messages().values()
    assert (msg.origin, msg.closed, msg.key) == ("unknown", False, attempt.message_key)


def test_removed_for_unknown_queue_id_opens_nothing(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    run.feed(0, QmgrRemoved("Z9"))
    batch = run.take()
    assert batch.messages == []
    assert [(line.queue_id, line.message_key) for line in batch.lines] == [("Z9", None)]


def test_second_smtpd_client_for_open_id_starts_new_lifetime(
    tenants: TenantMap,
) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "first@sender.example", 1)
    # The "removed" line of the first lifetime was lost; the ID is born again.
    receive(run, "A1", 50, "second@sender.example", 1)
    run.feed(51, QmgrRemoved("A1"))
    run.take()

    messages = sorted(run.messages().values(), key=lambda m: m.first_ts)
    assert [(m.sender, m.closed) for m in messages] == [
        ("first@sender.example", False),
        ("second@sender.example", True),
    ]
    assert run.asm.superseded == 1
    assert run.asm.open_messages == 0


def test_postsuper_removed_closes_message_and_is_an_event(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@sender.example", 1)
    run.feed(5, Postsuper("A1", "removed"), "postfix/postsuper")
    run.take()

    [msg] = run.messages().values()
    assert msg.closed is True
    assert [(e.category, e.text, e.queue_id) for e in run.rows("events")] == [
        ("postsuper", "removed", "A1")
    ]


def test_interleaved_hosts_with_skewed_clocks_keep_separate_state(
    tenants: TenantMap,
) -> None:
    run = Run(Assembler(tenants, grace_seconds=60))
    # mx2's clock (and its file) is 1000 s behind mx1; lines alternate between hosts
    # and both hosts use queue ID A1.
    for offset, host in ((1000, "mx1"), (0, "mx2")):
        receive(run, "A1", offset, f"bob@{host}.example", 2, host=host)
    for offset, host in ((1000, "mx1"), (0, "mx2")):
        deliver(run, "A1", offset + 1, "alice@acme.example", "sent", host=host)
        run.feed(offset + 1, QmgrRemoved("A1"), host=host)
    for offset, host in ((1000, "mx1"), (0, "mx2")):
        deliver(run, "A1", offset + 2, "dave@globex.example", "sent", host=host)
    run.take()

    messages = run.messages()
    assert sorted((m.host, m.sender, m.closed) for m in messages.values()) == [
        ("mx1", "bob@mx1.example", True),
        ("mx2", "bob@mx2.example", True),
    ]
    by_host = Counter((a.host, a.message_key) for a in run.rows("attempts"))
    assert by_host == {
        ("mx1", message_key("mx1", "A1", T0 + 1000)): 2,
        ("mx2", message_key("mx2", "A1", T0)): 2,
    }


# ---------------------------------------------------------------- attempts, outcomes


def test_deferred_then_sent_gives_one_final_attempt(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@acme.example", 1)
    deliver(
        run, "A1", 1, "x@gmail.example", "deferred", transport="smtp", dsn="4.7.0",
        smtp_code=421, response="host mx said: 421 4.7.0 Try again later",
    )  # fmt: skip
    deliver(run, "A1", 600, "x@gmail.example", "sent", transport="smtp", dsn="2.0.0")
    run.feed(601, QmgrRemoved("A1"))
    run.take()

    attempts = run.rows("attempts")
    assert [(a.status, a.final) for a in attempts] == [
        ("deferred", False),
        ("sent", True),
    ]
    assert attempts[0].cause is not None
    assert attempts[0].temporary is True
    assert (attempts[1].cause, attempts[1].temporary) == (None, None)
    assert {a.tenant for a in attempts} == {"acme"}


def test_deferred_then_expired_gives_final_expired_attempt(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@acme.example", 2)
    deliver(run, "A1", 1, "x@gmail.example", "deferred", transport="smtp", dsn="4.4.1")
    deliver(run, "A1", 1, "y@gmail.example", "sent", transport="smtp", dsn="2.0.0")
    deliver(run, "A1", 9, "x@gmail.example", "deferred", transport="smtp", dsn="4.4.1")
    run.feed(10, QmgrExpired("A1", "bob@acme.example", True))
    run.feed(11, QmgrRemoved("A1"))
    run.take()

    finals = [a for a in run.rows("attempts") if a.final]
    assert [(a.recipient, a.status) for a in finals] == [
        ("y@gmail.example", "sent"),
        ("x@gmail.example", "expired"),
    ]
    expired = finals[1]
    assert (expired.cause, expired.temporary, expired.transport) == (
        "expired",
        False,
        "smtp",
    )
    assert expired.program == "postfix/qmgr"
    assert expired.tenant == "acme"
    [msg] = run.messages().values()
    assert msg.expired is True
    assert msg.closed is True


def test_lmtp_message_to_ten_recipients_nine_saved_one_over_quota(
    tenants: TenantMap,
) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@sender.example", 10)
    users = [f"u{n}@acme.example" for n in range(10)]
    for n, user in enumerate(users):
        session = "rdBDBT+SEWvqFwAAg+zDdQ" + (f":R{n + 1}" if n else "")
        if user == "u7@acme.example":
            run.feed(1, DovecotDelivery(
                "lmtp", user, session, "A1@sender.example", "failed", "INBOX",
                "Quota exceeded (mailbox for user is full)",
            ), "dovecot")  # fmt: skip
            deliver(
                run, "A1", 1, user, "bounced", dsn="5.2.2", smtp_code=552,
                response="host mda said: 552 5.2.2 <u7@acme.example> Quota exceeded "
                "(mailbox for user is full) (in reply to end of DATA command)",
            )  # fmt: skip
            continue
        run.feed(1, DovecotDelivery(
            "lmtp", user, session, "A1@sender.example", "saved", "INBOX"
        ), "dovecot")  # fmt: skip
        deliver(run, "A1", 1, user, "sent", dsn="2.0.0", dovecot_session=session)
    run.feed(2, QmgrRemoved("A1"))
    run.take()

    attempts = run.rows("attempts")
    assert len(attempts) == 10
    assert Counter((a.status, a.final) for a in attempts) == {
        ("sent", True): 9,
        ("bounced", True): 1,
    }
    failed = next(a for a in attempts if a.status == "bounced")
    assert (failed.recipient, failed.cause, failed.temporary) == (
        "u7@acme.example",
        "quota_exceeded",
        False,
    )
    assert {a.tenant for a in attempts} == {"acme"}

    dovecot = {d.dovecot_key: d for d in run.rows("dovecot")}
    joined = {a.recipient: dovecot[a.dovecot_key] for a in attempts}
    assert all(d.recipient == r for r, d in joined.items())
    assert joined["u7@acme.example"].status == "failed"
    assert joined["u7@acme.example"].cause == "quota_exceeded"
    assert Counter(d.status for d in joined.values()) == {"saved": 9, "failed": 1}


def test_join_keys_normalise_session_message_id_and_recipient() -> None:
    assert session_join_key("<rdBDBT+SEWvqFwAAg+zDdQ:R2>") == (
        "s:rdBDBT+SEWvqFwAAg+zDdQ:R2"
    )
    assert message_join_key("<m1@x.example>", "<Alice+lists@Acme.Example>") == (
        "m:m1@x.example alice@acme.example"
    )
    assert message_join_key("m1@x.example", "alice@acme.example") == (
        "m:m1@x.example alice@acme.example"
    )


def test_smtp_attempts_carry_no_dovecot_key(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@acme.example", 1)
    deliver(run, "A1", 1, "x@gmail.example", "sent", transport="smtp")
    run.take()
    assert [a.dovecot_key for a in run.rows("attempts")] == [None]


def test_inbound_message_belongs_to_first_owned_recipient_domain(
    tenants: TenantMap,
) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@sender.example", 2)
    deliver(run, "A1", 1, "x@elsewhere.example", "sent", transport="smtp")
    deliver(run, "A1", 1, "dave@globex.example", "sent")
    run.take()
    [msg] = run.messages().values()
    assert msg.tenant == "globex"
    assert [a.tenant for a in run.rows("attempts")] == ["unassigned", "globex"]


def test_sasl_user_decides_tenant_of_outbound_mail(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    run.feed(
        0,
        SmtpdClient("A1", "client", "127.0.0.3", 4000, "PLAIN", "acme-relay"),
        "postfix/submission/smtpd",
    )
    run.feed(1, QmgrFrom("A1", "noreply@forged.example", 10, 1))
    deliver(run, "A1", 2, "x@gmail.example", "sent", transport="smtp")
    run.take()
    [msg] = run.messages().values()
    assert (msg.tenant, msg.sasl_username, msg.sasl_method) == (
        "acme",
        "acme-relay",
        "PLAIN",
    )
    assert [a.tenant for a in run.rows("attempts")] == ["acme"]


# ---------------------------------------------------------------- origins, bounces


def test_bounce_notification_links_parent_and_sets_origin(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@acme.example", 1)
    deliver(run, "A1", 1, "x@gmail.example", "bounced", transport="smtp", dsn="5.1.1")
    # The notification's own cleanup and qmgr lines come before bounce names it.
    run.feed(1.1, CleanupMessageId("B2", "bounce@mx1"), "postfix/cleanup")
    run.feed(1.2, QmgrFrom("B2", "", 3000, 1))
    run.feed(1.3, Notification("A1", "sender non-delivery", "B2"), "postfix/bounce")
    run.feed(1.4, QmgrRemoved("A1"))
    run.take()

    messages = {m.queue_id: m for m in run.messages().values()}
    assert (messages["B2"].origin, messages["B2"].parent_queue_id) == ("bounce", "A1")
    assert messages["B2"].sender == ""
    assert messages["B2"].sender_domain is None
    assert messages["A1"].origin == "smtpd"
    [event] = run.rows("events")
    assert (event.category, event.queue_id) == ("notification", "A1")
    traced = Counter(line.queue_id for line in run.rows("lines"))
    assert traced["B2"] == 3


def test_cleanup_without_smtpd_or_pickup_is_local_origin(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    run.feed(0, CleanupMessageId("L1", "fwd@mx1"), "postfix/cleanup")
    run.feed(0, QmgrFrom("F1", "x@acme.example", 10, 1))
    run.take()
    origins = {m.queue_id: m.origin for m in run.messages().values()}
    assert origins == {"L1": "local", "F1": "unknown"}


# ---------------------------------------------------------------- rejects, events


def test_noqueue_reject_belongs_to_recipient_tenant(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    run.feed(0, Reject(
        "reject", None, "RCPT", "spam.example", "127.0.0.9", 550, "5.1.1",
        "<nobody@acme.example>: Recipient address rejected: User unknown",
        sender="x@spam.example", recipient="nobody@acme.example",
    ), "postfix/smtpd")  # fmt: skip
    run.feed(0, Reject(
        "reject", None, "RCPT", "client", "127.0.0.3", 554, "5.7.1",
        "<x@gmail.example>: Relay access denied",
        sender="news@acme-corp.example", recipient="x@gmail.example",
    ), "postfix/smtpd")  # fmt: skip
    run.take()

    rejects: list[RejectRow] = run.rows("rejects")
    assert [(r.recipient_domain, r.tenant) for r in rejects] == [
        ("acme.example", "acme"),
        ("gmail.example", "unassigned"),
    ]
    assert [r.cause for r in rejects] == ["unknown_recipient", "relay_denied"]
    assert run.messages() == {}


def test_rcpt_reject_with_queue_id_keeps_message_open(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@sender.example", 1)
    run.feed(1, Reject(
        "reject", "A1", "RCPT", "h", "127.0.0.2", 550, "5.1.1", "User unknown",
        recipient="nobody@acme.example",
    ), "postfix/smtpd")  # fmt: skip
    run.take()
    [msg] = run.messages().values()
    assert msg.closed is False
    assert [r.queue_id for r in run.rows("rejects")] == ["A1"]


def test_header_check_reject_ends_the_message(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    run.feed(0, SmtpdClient("A1", "h", "127.0.0.2"), "postfix/smtpd")
    run.feed(1, Reject(
        "reject", "A1", "header", "h", "127.0.0.2", None, "5.7.1",
        "message content rejected", source="cleanup",
    ), "postfix/cleanup")  # fmt: skip
    run.take()
    [msg] = run.messages().values()
    assert msg.closed is True
    assert run.asm.open_messages == 0


def test_content_tags_are_events_not_rejects(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    run.feed(0, Reject(
        "warn", "A1", "header", "h", "127.0.0.2", None, None, "Subject: hello",
        source="cleanup",
    ), "postfix/cleanup")  # fmt: skip
    run.take()
    assert run.rows("rejects") == []
    assert [e.category for e in run.rows("events")] == ["check_warn"]


DOVECOT_LINES = """\
Feb  1 13:17:08 mda dovecot: lmtp(eve@acme.example)<28700><wArTL0TxF2AccAAAYr7Zvw>: sieve: msgid=<m@x.example>: stored mail into mailbox 'Lists'
Feb  1 13:17:08 mda dovecot: lmtp(eve@acme.example)<28700><wArTL0TxF2AccAAAYr7Zvw>: sieve: msgid=<m@x.example>: sent vacation response to <bob@x.example>
Feb  1 13:17:08 mda dovecot: lmtp(nobody@acme.example)<28700><wArTL0TxF2AccAAAYr7Zvw:R2>: Error: Failed to initialize user: User does not exist
Feb  1 13:17:08 mda dovecot: lmtp(28700): Error: lmtp-server: conn 127.0.0.1:1234 [1]: RCPT command failed: 550 5.1.1 <x@acme.example> User does not exist
Feb  1 13:17:08 mda dovecot: imap-login: Aborted login (auth failed, 1 attempts in 2 secs): user=<alice@acme.example>, method=PLAIN, rip=127.0.0.5, lip=127.0.0.1, session=<abc>
Feb  1 13:17:09 mx1 postfix/qmgr[1]: panic: myfree: corrupt or unallocated memory pointer
"""  # noqa: E501


def test_dovecot_sieve_store_is_a_save_and_refusals_are_rows_or_events(
    tenants: TenantMap,
) -> None:
    asm = Assembler(tenants)
    _feed_all(asm, _parse(DOVECOT_LINES))
    batch = asm.take()

    rows = [(d.recipient, d.status, d.mailbox, d.tenant) for d in batch.dovecot]
    assert rows == [
        ("eve@acme.example", "saved", "Lists", "acme"),
        ("nobody@acme.example", "rejected", None, "acme"),
    ]
    assert batch.dovecot[0].dovecot_key == session_join_key("wArTL0TxF2AccAAAYr7Zvw")
    refused = batch.dovecot[1]
    assert refused.reason == "Failed to initialize user: User does not exist"
    assert refused.cause == classify_dovecot(refused.reason).cause
    categories = [(e.program, e.category) for e in batch.events]
    assert categories == [
        ("dovecot", "lmtp_error"),
        ("dovecot", "auth_failed"),
        ("postfix/qmgr", "panic"),
    ]
    assert "rip=127.0.0.5" in batch.events[1].text


# ---------------------------------------------------------------- unparsed, lines


def test_unparsed_lines_aggregate_by_program_reason_and_shape(
    tenants: TenantMap,
) -> None:
    asm = Assembler(tenants)
    for n in range(3):
        asm.feed(
            env(n, "postfix/smtpd"), Unparsed("message", "odd <N>", f"odd {n}"), f"r{n}"
        )
    asm.feed(None, Unparsed("envelope", "garbage", "garbage"), "garbage")
    asm.feed(env(9, "postfix/smtpd"), QmgrRemoved("Q"), "r9")
    batch = asm.take()

    rows = {(u.program, u.reason, u.shape): u for u in batch.unparsed}
    odd = rows[("postfix/smtpd", "message", "odd <N>")]
    assert (odd.count, odd.example, odd.first_ts, odd.last_ts) == (3, "r0", T0, T0 + 2)
    assert rows[("", "envelope", "garbage")].first_ts is None
    assert (batch.lines_read, batch.lines_unparsed) == (5, 4)
    assert batch.lines_by_program == {"postfix/smtpd": 4, "": 1}
    assert asm.take().unparsed == []


def test_lines_carry_the_message_key(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants))
    receive(run, "A1", 0, "bob@sender.example", 1)
    run.take()
    [msg] = run.messages().values()
    lines = run.rows("lines")
    assert [line.program for line in lines] == [
        "postfix/smtpd",
        "postfix/cleanup",
        "postfix/qmgr",
    ]
    assert {line.message_key for line in lines} == {msg.key}


def test_keep_lines_false_keeps_no_raw_lines(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants, keep_lines=False))
    receive(run, "A1", 0, "bob@sender.example", 1)
    assert run.take().lines == []


# ---------------------------------------------------------------- bounded memory


def test_eviction_keeps_open_messages_bounded(tenants: TenantMap) -> None:
    run = Run(Assembler(tenants, max_open_messages=3))
    for n in range(5):
        receive(run, f"Q{n}", n, "bob@sender.example", 1)
    # Touching Q2 makes Q3 the least recently used one.
    deliver(run, "Q2", 10, "alice@acme.example", "deferred")
    receive(run, "Q5", 11, "bob@sender.example", 1)
    run.take()

    assert run.asm.open_messages == 3
    assert run.asm.evicted == 3
    assert all(m.closed is False for m in run.messages().values())
    assert len(run.messages()) == 6
    run.feed(12, QmgrRemoved("Q2"))
    run.feed(12, QmgrRemoved("Q3"))
    run.take()
    closed = {m.queue_id for m in run.messages().values() if m.closed}
    assert closed == {"Q2"}


# ---------------------------------------------------------------- snapshot, restore

SESSION = "rdBDBT+SEWvqFwAAg+zDdQ"
REAL_LINES = f"""\
Dec  3 16:00:55 mx1 postfix/smtpd[6079]: connect from mail.sender.example[127.0.0.2]
Dec  3 16:00:56 mx1 postfix/smtpd[6079]: 4D0A21A2B3C: client=mail.sender.example[127.0.0.2]
Dec  3 16:00:56 mx1 postfix/cleanup[6081]: 4D0A21A2B3C: message-id=<20261203.1@sender.example>
Dec  3 16:00:56 mx1 postfix/qmgr[6000]: 4D0A21A2B3C: from=<bob@sender.example>, size=1234, nrcpt=3 (queue active)
Dec  3 16:00:56 mx1 postfix/smtpd[6079]: disconnect from mail.sender.example[127.0.0.2] ehlo=1 mail=1 rcpt=3 data=1 quit=1 commands=7
Dec  3 16:00:57 mx2 dovecot: lmtp(alice@acme.example)<6122><{SESSION}>: msgid=<20261203.1@sender.example>: saved mail to INBOX
Dec  3 16:00:57 mx2 dovecot: lmtp(carol@acme.example)<6122><{SESSION}:R2>: msgid=<20261203.1@sender.example>: save failed to INBOX: Quota exceeded (mailbox for user is full)
Dec  3 16:00:57 mx1 postfix/lmtp[6090]: 4D0A21A2B3C: to=<alice@acme.example>, relay=mda.acme.example[127.0.0.20]:24, delay=0.5, delays=0.1/0.01/0.1/0.29, dsn=2.0.0, status=sent (250 2.0.0 <alice@acme.example> {SESSION} Saved)
Dec  3 16:00:57 mx1 postfix/lmtp[6090]: 4D0A21A2B3C: to=<carol@acme.example>, relay=mda.acme.example[127.0.0.20]:24, delay=0.5, delays=0.1/0.01/0.1/0.29, dsn=5.2.2, status=bounced (host mda.acme.example[127.0.0.20] said: 552 5.2.2 <carol@acme.example> Quota exceeded (mailbox for user is full) (in reply to end of DATA command))
Dec  3 16:00:57 mx1 postfix/smtp[6091]: 4D0A21A2B3C: to=<x@gmail.example>, relay=none, delay=1.2, delays=0.1/0/1.1/0, dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=gmail.example type=MX: Host not found, try again)
Dec  3 16:00:57 mx1 postfix/cleanup[6081]: 5E1B32B3C4D: message-id=<20261203160057.5E1B32B3C4D@mx1.acme.example>
Dec  3 16:00:57 mx1 postfix/qmgr[6000]: 5E1B32B3C4D: from=<>, size=3000, nrcpt=1 (queue active)
Dec  3 16:00:57 mx1 postfix/bounce[6095]: 4D0A21A2B3C: sender non-delivery notification: 5E1B32B3C4D
Dec  3 16:00:58 mx1 postfix/smtp[6091]: 5E1B32B3C4D: to=<bob@sender.example>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=sender.example type=MX: Host not found, try again)
Dec  3 16:00:59 mx1 postfix/smtpd[6079]: NOQUEUE: reject: RCPT from unknown[127.0.0.9]: 554 5.7.1 <x@gmail.example>: Relay access denied; from=<spam@spam.example> to=<x@gmail.example> proto=ESMTP helo=<spam>
Dec  3 16:01:00 mx1 postfix/smtpd[6079]: this line is nothing Postfix writes 42
Dec  3 16:01:01 mx1 postfix/pickup[6100]: 6F2C43C4D5E: uid=0 from=<root>
Dec  3 16:01:01 mx1 postfix/cleanup[6081]: 6F2C43C4D5E: message-id=<20261203160101.6F2C43C4D5E@mx1.acme.example>
Dec  3 16:01:01 mx1 postfix/qmgr[6000]: 6F2C43C4D5E: from=<root@mx1.acme.example>, size=500, nrcpt=1 (queue active)
Dec  3 16:01:02 mx1 postfix/qmgr[6000]: 6F2C43C4D5E: removed
Dec  3 16:01:02 mx1 postfix/local[6101]: 6F2C43C4D5E: to=<root@mx1.acme.example>, orig_to=<root>, relay=local, delay=1, delays=0.5/0/0/0.5, dsn=2.0.0, status=sent (delivered to mailbox)
Dec  3 17:00:57 mx1 postfix/qmgr[6000]: 4D0A21A2B3C: from=<bob@sender.example>, size=1234, nrcpt=3 (queue active)
Dec  3 17:00:58 mx1 postfix/smtp[6091]: 4D0A21A2B3C: to=<x@gmail.example>, relay=none, delay=3601, delays=3600/0/1/0, dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=gmail.example type=MX: Host not found, try again)
Dec  3 17:00:59 mx1 postfix/qmgr[6000]: 4D0A21A2B3C: from=<bob@sender.example>, status=expired, returned to sender
Dec  3 17:00:59 mx1 postfix/qmgr[6000]: 4D0A21A2B3C: removed
not a log line at all
"""  # noqa: E501


def _parse(lines: str) -> list[tuple[Envelope | None, Record, str]]:
    parser = LineParser(year=2026)
    out = []
    for raw in lines.splitlines():
        envelope, record = parser.parse(raw)
        out.append((envelope, record, raw))
    return out


def _feed_all(
    asm: Assembler, parsed: Iterable[tuple[Envelope | None, Record, str]]
) -> None:
    for envelope, record, raw in parsed:
        asm.feed(envelope, record, raw)


def _merged(batches: list[Batch]) -> dict[str, Any]:
    """What the store ends with: messages upserted by key, unparsed counts summed."""
    unparsed: Counter[tuple[str, str, str]] = Counter()
    for b in batches:
        for u in b.unparsed:
            unparsed[(u.program, u.reason, u.shape)] += u.count
    return {
        "messages": {m.key: m for b in batches for m in b.messages},
        "attempts": [a for b in batches for a in b.attempts],
        "rejects": [r for b in batches for r in b.rejects],
        "dovecot": [d for b in batches for d in b.dovecot],
        "events": [e for b in batches for e in b.events],
        "lines": [line for b in batches for line in b.lines],
        "unparsed": unparsed,
        "lines_read": sum(b.lines_read for b in batches),
        "lines_unparsed": sum(b.lines_unparsed for b in batches),
    }


def test_real_lines_assemble_with_dovecot_join_and_expiry(tenants: TenantMap) -> None:
    asm = Assembler(tenants)
    _feed_all(asm, _parse(REAL_LINES))
    batch = asm.take()

    messages = {m.queue_id: m for m in batch.messages}
    original, bounce = messages["4D0A21A2B3C"], messages["5E1B32B3C4D"]
    assert (original.closed, original.expired, original.origin) == (True, True, "smtpd")
    assert (bounce.origin, bounce.parent_queue_id, bounce.closed) == (
        "bounce",
        "4D0A21A2B3C",
        False,
    )
    outcome = {(a.recipient, a.status): a for a in batch.attempts}
    assert set(outcome) == {
        ("alice@acme.example", "sent"),
        ("carol@acme.example", "bounced"),
        ("x@gmail.example", "deferred"),
        ("x@gmail.example", "expired"),
        ("bob@sender.example", "deferred"),
        ("root@mx1.acme.example", "sent"),
    }
    assert outcome[("carol@acme.example", "bounced")].cause == "quota_exceeded"
    assert outcome[("x@gmail.example", "deferred")].cause == "dns_failure"
    assert outcome[("x@gmail.example", "expired")].final is True

    dovecot: dict[str | None, DovecotRow] = {d.dovecot_key: d for d in batch.dovecot}
    alice = outcome[("alice@acme.example", "sent")]
    carol = outcome[("carol@acme.example", "bounced")]
    assert dovecot[alice.dovecot_key].status == "saved"
    assert dovecot[alice.dovecot_key].host == "mx2"
    assert (
        dovecot[carol.dovecot_key].reason == "Quota exceeded (mailbox for user is full)"
    )
    assert [r.cause for r in batch.rejects] == ["relay_denied"]
    local = messages["6F2C43C4D5E"]
    assert (local.origin, local.closed, local.sender) == (
        "pickup",
        True,
        "root@mx1.acme.example",
    )
    late = outcome[("root@mx1.acme.example", "sent")]
    assert (late.message_key, late.transport) == (local.key, "local")
    assert (batch.lines_read, batch.lines_unparsed) == (26, 2)


def test_snapshot_restore_mid_stream_gives_same_rows_as_uninterrupted_run(
    tenants: TenantMap,
) -> None:
    parsed = _parse(REAL_LINES)
    whole = Assembler(tenants, grace_seconds=30)
    _feed_all(whole, parsed)
    expected = _merged([whole.take()])

    for cut in range(len(parsed) + 1):
        first = Assembler(tenants, grace_seconds=30)
        _feed_all(first, parsed[:cut])
        batches = [first.take()] if cut % 2 else []
        second = Assembler.restore(first.snapshot(), tenants, grace_seconds=30)
        _feed_all(second, parsed[cut:])
        batches.append(second.take())
        assert _merged(batches) == expected, f"cut after line {cut}"


def test_snapshot_round_trips_exactly(tenants: TenantMap) -> None:
    parsed = _parse(REAL_LINES)
    asm = Assembler(tenants, max_open_messages=10, grace_seconds=7200)
    _feed_all(asm, parsed[:14])
    data = asm.snapshot()
    restored = Assembler.restore(
        data, tenants, max_open_messages=10, grace_seconds=7200
    )
    assert restored.snapshot() == data
    assert restored.open_messages == asm.open_messages
    assert restored.take() == asm.take()


def test_restore_rejects_data_that_is_not_a_snapshot(tenants: TenantMap) -> None:
    with pytest.raises(StoreError, match="unreadable"):
        Assembler.restore(b"not a snapshot", tenants)


def test_restore_refuses_a_snapshot_that_names_objects(tenants: TenantMap) -> None:
    # A checkpoint holds plain values only; anything naming a callable is refused
    # before it could run.
    crafted = zlib.compress(pickle.dumps({"version": 1, "x": print}))
    with pytest.raises(StoreError, match="holds no objects"):
        Assembler.restore(crafted, tenants)


def test_restore_with_smaller_bound_evicts_down_to_it(tenants: TenantMap) -> None:
    asm = Assembler(tenants)
    for n in range(4):
        asm.feed(env(n), QmgrFrom(f"Q{n}", "x@acme.example", 1, 1), "raw")
    asm.take()
    restored = Assembler.restore(asm.snapshot(), tenants, max_open_messages=2)
    assert restored.open_messages == 2
    assert restored.evicted == 2


# ---------------------------------------------------------------- row construction


@pytest.mark.parametrize("cls", [AttemptRow, DovecotRow, RejectRow, MessageRow])
def test_rows_built_positionally_match_model_field_order(cls: type) -> None:
    # The assembler builds rows positionally for speed; this pins the field order it
    # relies on, so a field inserted in the middle of a row fails here first.
    expected = {
        AttemptRow: (
            "ts host queue_id message_key recipient recipient_domain transport status "
            "final tenant sender sender_domain message_id orig_recipient program "
            "relay_host relay_ip relay_port conn_use delay delay_before_qmgr "
            "delay_in_qmgr delay_conn_setup delay_transmission dsn smtp_code "
            "enhanced_code response cause temporary dovecot_session dovecot_key"
        ),
        DovecotRow: (
            "ts host service recipient recipient_domain tenant session msgid status "
            "mailbox reason cause"
        ),
        RejectRow: (
            "ts host program action stage queue_id client_host client_ip smtp_code "
            "dsn text cause sender recipient recipient_domain tenant"
        ),
        MessageRow: "key host queue_id first_ts last_ts closed origin",
    }[cls].split()
    names = [f.name for f in dataclasses.fields(cls)]
    assert names[: len(expected)] == expected


# ---------------------------------------------------------------- generated truth

REPO = Path(__file__).resolve().parents[2]
_OUTCOME = {
    "sent": "delivered",
    "bounced": "bounced",
    "expired": "expired",
    "deferred": "deferred",
}


@pytest.fixture(scope="module")
def generated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("generated") / "mail.log"
    command = [sys.executable, str(REPO / "bench" / "generate.py"), str(log)]
    command += ["--lines", "40000", "--seed", "7"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=120)
    return log


def _final_outcomes(attempts: list[AttemptRow]) -> dict[tuple[str, str], AttemptRow]:
    """Each recipient's deciding attempt, else its latest one (issue 3's rules)."""
    outcome: dict[tuple[str, str], AttemptRow] = {}
    for attempt in attempts:
        key = (attempt.message_key, attempt.recipient)
        if key not in outcome or not outcome[key].final:
            outcome[key] = attempt
    return outcome


def test_generated_log_assembles_to_the_generators_truth(generated_log: Path) -> None:
    truth = json.loads(generated_log.with_name("mail.log.truth.json").read_text())
    owned = load_settings(generated_log.with_name("mail.log.tenants.toml")).tenants
    asm = Assembler(TenantMap.from_settings(owned))
    parser = LineParser(year=2026)
    batches = []
    with generated_log.open(encoding="utf-8") as lines:
        for n, raw in enumerate(lines, 1):
            envelope, record = parser.parse(raw)
            asm.feed(envelope, record, raw)
            if n % 5000 == 0:
                batches.append(asm.take())
    asm.close_all()
    merged = _merged([*batches, asm.take()])

    outcome = _final_outcomes(merged["attempts"])
    totals = Counter(_OUTCOME[a.status] for a in outcome.values())
    totals["recipients"] = len(outcome)
    totals["deferral_attempts"] = sum(
        a.status == "deferred" for a in merged["attempts"]
    )
    for name in ("delivered", "bounced", "expired", "deferred", "recipients"):
        assert totals[name] == truth["totals"][name], name
    assert totals["deferral_attempts"] == truth["totals"]["deferral_attempts"]

    by_tenant: dict[str, Counter[str]] = {}
    for a in outcome.values():
        by_tenant.setdefault(a.tenant, Counter())[_OUTCOME[a.status]] += 1
    for row in truth["by_tenant"]:
        got = by_tenant.get(row["tenant"], Counter())
        for name in ("delivered", "bounced", "expired", "deferred"):
            assert got[name] == row[name], (row["tenant"], name)

    saved = {d.dovecot_key for d in merged["dovecot"] if d.status == "saved"}
    joined = [a for a in merged["attempts"] if a.dovecot_key in saved]
    assert len(joined) == truth["dovecot"]["joined"]
    received = [
        m for m in merged["messages"].values() if m.origin in ("smtpd", "pickup")
    ]
    assert len(received) == truth["totals"]["messages_received"]
    assert len(merged["rejects"]) == truth["totals"]["rejects"]
