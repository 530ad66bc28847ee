"""LMTP's per-recipient outcomes, end to end: real Postfix hands one message for five
acme.example mailboxes to real Dovecot, and what the two daemons logged is read back
through LineParser and Assembler.

The lab (tests/daemons.py, ``tenant_lab_config``): alice and dave have room, bob's
quota is full (refused at end of DATA), carol is already over quota (refused at RCPT by
``lmtp_rcpt_check_quota``), ghost is in Postfix's recipient map but unknown to
Dovecot (550 5.1.1 at RCPT).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from daemons import LabLogs, MailLab

from mailtriage.app.settings import TenantSettings
from mailtriage.parsers.assembler import Assembler
from mailtriage.parsers.line import LineParser
from mailtriage.parsers.model import AttemptRow, Batch, DovecotRow
from mailtriage.parsers.tenants import TenantMap

pytestmark = pytest.mark.daemons

RECIPIENTS = [
    "alice@acme.example",
    "bob@acme.example",
    "carol@acme.example",
    "dave@acme.example",
    "ghost@acme.example",
]
TENANTS = {
    "acme": TenantSettings(domains=["acme.example"]),
    "globex": TenantSettings(domains=["globex.example"]),
    "initech": TenantSettings(domains=["initech.example"]),
}


@dataclass(frozen=True)
class Outcome:
    """The rows of the one message, by recipient."""

    attempts: dict[str, AttemptRow]
    dovecot: dict[str, DovecotRow]
    message_id: str


def _assemble(logs: LabLogs) -> Batch:
    assembler = Assembler(TenantMap.from_settings(TENANTS))
    for path in (logs.postfix, logs.dovecot):
        # One parser per file: a parser caches envelope state between lines.
        parser = LineParser(reference_ts=time.time())
        for raw in path.read_text().splitlines():
            env, record = parser.parse(raw)
            assembler.feed(env, record, raw)
    assembler.close_all()
    return assembler.take()


@pytest.fixture(scope="module")
def outcome(mail_lab: MailLab) -> Outcome:
    sent = mail_lab.send(
        "orders@partner.example",
        RECIPIENTS,
        size=3000,
        client_ip="127.0.3.9",
        helo="mail.partner.example",
    )
    assert sent.queue_id is not None
    assert sent.refused == {}
    mail_lab.wait_until_quiet(lambda pf, dc: f"{sent.queue_id}: removed" in pf)

    batch = _assemble(mail_lab.logs())
    msgid = sent.message_id.strip("<>")
    attempts = {a.recipient: a for a in batch.attempts if a.queue_id == sent.queue_id}
    dovecot = {d.recipient: d for d in batch.dovecot if d.msgid == msgid}
    return Outcome(attempts, dovecot, msgid)


def test_each_recipient_gets_its_own_final_outcome(outcome: Outcome) -> None:
    statuses = {r: (a.status, a.final) for r, a in outcome.attempts.items()}

    assert statuses == {
        "alice@acme.example": ("sent", True),
        "bob@acme.example": ("bounced", True),
        "carol@acme.example": ("bounced", True),
        "dave@acme.example": ("sent", True),
        "ghost@acme.example": ("bounced", True),
    }
    assert {(a.transport, a.tenant) for a in outcome.attempts.values()} == {
        ("lmtp", "acme")
    }


def test_failures_are_classified_by_cause(outcome: Outcome) -> None:
    causes = {r: (a.cause, a.temporary) for r, a in outcome.attempts.items()}

    assert causes["bob@acme.example"] == ("quota_exceeded", False)
    assert causes["carol@acme.example"] == ("quota_exceeded", False)
    assert causes["ghost@acme.example"] == ("unknown_recipient", False)
    assert causes["alice@acme.example"][0] is None
    assert causes["dave@acme.example"][0] is None


@pytest.mark.parametrize("recipient", ["alice@acme.example", "dave@acme.example"])
def test_saved_recipient_joins_dovecot_on_the_session_id(
    outcome: Outcome, recipient: str
) -> None:
    attempt = outcome.attempts[recipient]
    saved = outcome.dovecot[recipient]

    assert attempt.dovecot_session is not None
    assert attempt.dovecot_session == saved.session
    assert (saved.status, saved.mailbox) == ("saved", "INBOX")
    assert attempt.dovecot_key == saved.dovecot_key


def test_quota_failure_at_end_of_data_joins_on_message_id(outcome: Outcome) -> None:
    # Dovecot's 552 after DATA carries no session ID, so Postfix logs none; Dovecot's
    # own line has it, and the message-id plus recipient join the two sides.
    attempt = outcome.attempts["bob@acme.example"]
    failed = outcome.dovecot["bob@acme.example"]

    assert attempt.dovecot_session is None
    assert (failed.status, failed.cause) == ("failed", "quota_exceeded")
    assert failed.reason == "Quota exceeded (mailbox for user is full)"
    assert attempt.dovecot_key is not None
    assert attempt.dovecot_key == failed.dovecot_key


def test_refusals_at_rcpt_leave_no_dovecot_save_line(outcome: Outcome) -> None:
    # Dovecot 2.3 refuses these recipients at RCPT and logs nothing about them.
    assert sorted(outcome.dovecot) == [
        "alice@acme.example",
        "bob@acme.example",
        "dave@acme.example",
    ]


def test_recipients_of_one_transaction_share_the_dovecot_session(
    outcome: Outcome,
) -> None:
    sessions = [d.session or "" for d in outcome.dovecot.values()]
    bases = {s.partition(":")[0] for s in sessions}

    assert len(bases) == 1
    assert len(set(sessions)) == 3
    assert sum(":R" in s for s in sessions) >= 2
