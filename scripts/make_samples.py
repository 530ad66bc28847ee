"""Regenerate the bundled sample logs in samples/ with real Postfix and Dovecot.

Runs the mail lab of tests/daemons.py (root, Debian packages postfix, dovecot-core,
dovecot-lmtpd) through a small multi-tenant day compressed into about a minute, checks
that the daemons logged the outcome the script caused for every recipient, and writes:

- samples/postfix.log   Postfix's own maillog_file
- samples/dovecot.log   Dovecot's log_path (deliver_log_format with timings)
- samples/tenants.toml  the [tenants.*] section for these logs
- samples/README.md     what happened in them, with counts

    sudo .venv/bin/python scripts/make_samples.py [--out samples]

Queue IDs, session IDs, ports and times differ from run to run; the counts do not.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import smtplib
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from loguru import logger

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from daemons import (  # noqa: E402
    DELIVER_LOG_FORMAT_TIMINGS,
    FULL_QUOTA,
    GREYLIST_REPLY,
    POLICY_REPLY,
    THROTTLE_REPLY,
    ClosedPort,
    LabConfig,
    Mailbox,
    MailLab,
    Peer,
    SlowLmtpProxy,
    SmtpPeer,
    missing_requirements,
)

from mailtriage.app.logs import configure_logging  # noqa: E402

LAB_ROOT = Path("/tmp/mailtriage-samples-lab")
SLOW_LMTP_SECONDS = 4.0
QUEUE_LIFETIME_SECONDS = 25
PAUSE_SECONDS = 2.0

TENANTS_TOML = """\
# Tenants of the bundled sample logs (see README.md). Recipient domains decide who
# owns a delivery to a local mailbox; sender domains and SASL users decide who owns
# outbound mail.

[tenants.acme]
domains = ["acme.example"]
sasl_users = ["acme-relay"]

[tenants.globex]
domains = ["globex.example"]

[tenants.initech]
domains = ["initech.example"]
"""

PARTNER = ("127.0.3.10", "mail.partner.example")
SUPPLIER = ("127.0.3.11", "smtp.supplier.example")
NEWS = ("127.0.3.12", "mta.news.example")
ABUSER = ("127.0.3.66", "pc-66.dsl.example")
WEBAPP = ("127.0.0.1", "app1.globex.example")
CRM = ("127.0.0.1", "crm.initech.example")
ACME_RELAY = ("127.0.4.2", "relay.acme.example")


@dataclass
class Peers:
    """The world outside the lab, as the scenario changes it."""

    sink: SmtpPeer
    bigmail: SmtpPeer
    strictmail: SmtpPeer
    vendor: SmtpPeer


@dataclass(frozen=True)
class Expect:
    """What the script made happen to one recipient of one message."""

    queue_id: str
    recipient: str
    final: str  # sent | bounced | expired
    tenant: str
    what: str


@dataclass
class Truth:
    """Everything the scenario caused, to check against the logs and to report."""

    expects: list[Expect] = field(default_factory=list)
    rejects: Counter[str] = field(default_factory=Counter)
    auth_failures: int = 0
    messages: int = 0


def lab_config(peers: Peers) -> LabConfig:
    """Three tenants, their mailboxes, and routes to the peers."""
    boxes = [
        *(Mailbox(f"{u}@acme.example") for u in ("alice", "dave", "erin")),
        Mailbox("bob@acme.example", quota_rule=FULL_QUOTA),
        Mailbox("carol@acme.example", quota_rule=FULL_QUOTA, prefill_bytes=8000),
        Mailbox("ghost@acme.example", in_dovecot=False),
        *(Mailbox(f"{u}@globex.example") for u in ("hank", "ivy", "archive")),
        Mailbox("support@globex.example", quota_rule=FULL_QUOTA),
        Mailbox("sales@globex.example", quota_rule=FULL_QUOTA, prefill_bytes=8000),
        *(Mailbox(f"{u}@initech.example") for u in ("pat", "sam", "quinn")),
    ]
    routes: dict[str, Peer | str] = {
        "partner.example": peers.sink,
        "supplier.example": peers.sink,
        "news.example": peers.sink,
        "bigmail.example": peers.bigmail,
        "strictmail.example": peers.strictmail,
        "vendor.example": peers.vendor,
        "initech.example": SlowLmtpProxy(delay_seconds=SLOW_LMTP_SECONDS),
        "archive@globex.example": ClosedPort(),
    }
    return LabConfig(
        domains=("acme.example", "globex.example", "initech.example"),
        mailboxes=boxes,
        routes=routes,
        sasl_users={"acme-relay": "relay-secret"},
        submission=True,
        queue_lifetime_seconds=QUEUE_LIFETIME_SECONDS,
        deliver_log_format=DELIVER_LOG_FORMAT_TIMINGS,
        root=LAB_ROOT,
    )


def make_peers() -> Peers:
    return Peers(
        sink=SmtpPeer(greeting_name="mx.partner.example", address="127.0.2.10"),
        bigmail=SmtpPeer(
            greeting_name="mx1.bigmail.example",
            address="127.0.2.1",
            rcpt_reply=THROTTLE_REPLY,
        ),
        strictmail=SmtpPeer(
            greeting_name="mx.strictmail.example",
            address="127.0.2.2",
            rcpt_reply=POLICY_REPLY,
        ),
        vendor=SmtpPeer(
            greeting_name="mx.vendor.example",
            address="127.0.2.3",
            rcpt_reply=GREYLIST_REPLY,
        ),
    )


# --------------------------------------------------------------------------- scenario


class Fate(NamedTuple):
    """What the scenario makes of one recipient: final status and why."""

    final: str  # sent | bounced | expired
    what: str


OK = Fate("sent", "delivered")
SLOW = Fate("sent", f"delivered through the slow MDA path (+{SLOW_LMTP_SECONDS:g} s)")
FULL_AT_DATA = Fate("bounced", "over quota, at end of DATA")
FULL_AT_RCPT = Fate("bounced", "over quota, at RCPT")
UNKNOWN = Fate("bounced", "unknown to Dovecot")
MDA_DOWN = Fate("expired", "MDA shard down (4.4.1)")
THROTTLED = Fate("sent", "throttled (421 4.7.0), delivered on retry")
POLICY = Fate("bounced", "refused by policy (5.7.1)")
GREYLISTED = Fate("sent", "greylisted (450 4.2.0), delivered on retry")
NO_DNS = Fate("expired", "no DNS (4.4.3)")


class Mail(NamedTuple):
    """One message the scenario submits."""

    client: tuple[str, str]
    sender: str
    subject: str
    rcpts: dict[str, Fate]
    submission: bool = False


MORNING = [
    Mail(PARTNER, "jane@partner.example", "Contract draft", {"alice@acme.example": OK}),
    Mail(
        SUPPLIER,
        "billing@supplier.example",
        "Invoice 2291",
        {"hank@globex.example": OK, "ivy@globex.example": OK},
    ),
    Mail(
        NEWS,
        "digest@news.example",
        "Morning digest",
        {"alice@acme.example": OK, "dave@acme.example": OK, "erin@acme.example": OK},
    ),
    Mail(PARTNER, "jane@partner.example", "Meeting", {"pat@initech.example": SLOW}),
    Mail(
        SUPPLIER,
        "billing@supplier.example",
        "Invoice 2292",
        {"sam@initech.example": SLOW, "quinn@initech.example": SLOW},
    ),
    Mail(
        PARTNER,
        "records@partner.example",
        "Signed copy",
        {"archive@globex.example": MDA_DOWN},
    ),
]
# One message to five acme mailboxes: LMTP answers for each recipient on its own.
OFFSITE = Mail(
    PARTNER,
    "jane@partner.example",
    "Team offsite",
    {
        "alice@acme.example": OK,
        "bob@acme.example": FULL_AT_DATA,
        "carol@acme.example": FULL_AT_RCPT,
        "dave@acme.example": OK,
        "ghost@acme.example": UNKNOWN,
    },
)
_SENDERS = [
    (PARTNER, "jane@partner.example"),
    (SUPPLIER, "billing@supplier.example"),
    (NEWS, "digest@news.example"),
]
# globex's support and sales mailboxes are full: a storm of quota bounces.
STORM = [
    Mail(
        *_SENDERS[i % 3],
        f"Ticket #{4100 + i}",
        {"support@globex.example": FULL_AT_DATA},
    )
    for i in range(6)
] + [
    Mail(
        *_SENDERS[i % 3],
        f"Quote request {i + 1}",
        {"sales@globex.example": FULL_AT_RCPT},
    )
    for i in range(3)
]
OUTBOUND = [
    *(
        Mail(
            WEBAPP,
            "newsletter@globex.example",
            "Globex product news",
            {f"user{i}@bigmail.example": THROTTLED},
        )
        for i in range(1, 5)
    ),
    Mail(
        ACME_RELAY,
        "alice@acme.example",
        "Quarterly report",
        {"kim@bigmail.example": THROTTLED, "lee@bigmail.example": THROTTLED},
        submission=True,
    ),
    Mail(
        ACME_RELAY,
        "dave@acme.example",
        "Offer",
        {"buyer@strictmail.example": POLICY},
        submission=True,
    ),
    Mail(
        ACME_RELAY,
        "alice@acme.example",
        "Order 77",
        {"orders@vendor.example": GREYLISTED},
        submission=True,
    ),
    Mail(
        ACME_RELAY,
        "erin@acme.example",
        "Follow-up",
        {"info@oldcustomer.example": NO_DNS},
        submission=True,
    ),
    Mail(CRM, "crm@initech.example", "Your ticket", {"jane@partner.example": OK}),
]
EVENING = [
    Mail(
        PARTNER,
        "jane@partner.example",
        "Re: Contract draft",
        {"ivy@globex.example": OK, "erin@acme.example": OK},
    ),
    Mail(NEWS, "digest@news.example", "Evening digest", {"pat@initech.example": SLOW}),
]
# The abusive client: guessed recipients and relay attempts, refused at RCPT.
GUESSED = ["info@acme.example", "admin@initech.example", "test@globex.example"]
RELAYED = ["victim@bigmail.example", "someone@elsewhere.example"]


def tenant_of(rcpt: str, sender: str) -> str:
    """Who a recipient's outcome belongs to: the owner of a local recipient domain,
    else the tenant that sent the message (all senders here are tenants or remote)."""
    for address in (rcpt, sender):
        domain = address.rpartition("@")[2]
        if domain in TENANT_OF_DOMAIN:
            return TENANT_OF_DOMAIN[domain]
    return "unassigned"


TENANT_OF_DOMAIN = {
    "acme.example": "acme",
    "globex.example": "globex",
    "initech.example": "initech",
}


class Scenario:
    """The day, step by step; every submission records what must become of it."""

    def __init__(self, lab: MailLab, peers: Peers) -> None:
        self.lab = lab
        self.peers = peers
        self.truth = Truth()
        self.size = 2400
        self.expire_at = 0.0

    def send_all(self, mails: Sequence[Mail]) -> None:
        for mail in mails:
            self.send(mail)

    def send(self, mail: Mail) -> None:
        """Submit one message and record the fate of each recipient."""
        self.size = self.size * 7 % 31_000 + 1800  # sizes vary, deterministically
        sent = self.lab.send(
            mail.sender,
            list(mail.rcpts),
            f"{mail.subject}\n",
            size=self.size,
            subject=mail.subject,
            client_ip=mail.client[0],
            helo=mail.client[1],
            login=("acme-relay", "relay-secret") if mail.submission else None,
            submission=mail.submission,
        )
        if sent.queue_id is None or sent.refused:
            raise RuntimeError(f"submission refused: {sent.refused}")
        self.truth.messages += 1
        for rcpt, fate in mail.rcpts.items():
            tenant = tenant_of(rcpt, mail.sender)
            self.truth.expects.append(
                Expect(sent.queue_id, rcpt, fate.final, tenant, fate.what)
            )
            if fate.final == "expired":
                self.expire_at = time.monotonic() + QUEUE_LIFETIME_SECONDS + 1

    def refuse(self, rcpt: str, kind: str) -> None:
        """An attempt from the abusive client that Postfix refuses at RCPT."""
        sent = self.lab.send(
            "offers@dsl.example", [rcpt], client_ip=ABUSER[0], helo=ABUSER[1]
        )
        if sent.queue_id is not None or rcpt not in sent.refused:
            raise RuntimeError(f"{rcpt} was not refused")
        self.truth.rejects[kind] += 1

    def guess_password(self) -> None:
        """The abusive client tries a password on the submission port."""
        try:
            self.lab.send(
                "x@dsl.example",
                ["alice@acme.example"],
                client_ip=ABUSER[0],
                helo=ABUSER[1],
                login=("alice", "123456"),
                submission=True,
            )
        except smtplib.SMTPAuthenticationError:
            self.truth.auth_failures += 1
            return
        raise RuntimeError("a wrong password was accepted")

    def settle(self, pause: float = PAUSE_SECONDS) -> None:
        """Wait until Postfix is idle, then let the clock move on a little."""
        self.lab.wait_until_quiet(timeout=60)
        time.sleep(pause)


def morning(s: Scenario) -> None:
    """Ordinary inbound mail, including the slow initech MDA path."""
    s.send_all(MORNING)
    s.settle()


def quota_incident(s: Scenario) -> None:
    """One message to five acme mailboxes, then a mailbox-full storm at globex."""
    s.send(OFFSITE)
    s.settle(1.0)
    s.send_all(STORM)
    s.settle()


def abuse(s: Scenario) -> None:
    """Guessed addresses, relay attempts and a password guess from one client."""
    for rcpt in GUESSED:
        s.refuse(rcpt, "unknown user")
    for rcpt in RELAYED:
        s.refuse(rcpt, "relay denied")
    s.guess_password()
    s.settle()


def outbound(s: Scenario) -> None:
    """Tenants send out: a throttling provider, a refusing one, greylisting, no DNS."""
    s.send_all(OUTBOUND)
    s.settle()


def recovery(s: Scenario) -> None:
    """The provider lifts its throttling, greylisting passes, the queue is flushed."""
    s.peers.bigmail.rcpt_reply = None
    s.peers.vendor.rcpt_reply = None
    s.lab.flush()
    s.settle()


def evening(s: Scenario) -> None:
    """More ordinary mail, then the last flush once the queue lifetime has passed:
    what is still deferred expires."""
    s.send_all(EVENING)
    s.settle(0)
    time.sleep(max(0.0, s.expire_at - time.monotonic()))
    s.lab.flush()
    s.settle(0)


def run(lab: MailLab, peers: Peers) -> Truth:
    """The whole day; the phases in order."""
    s = Scenario(lab, peers)
    started = time.monotonic()
    for phase in (morning, quota_incident, abuse, outbound, recovery, evening):
        phase(s)
        elapsed = round(time.monotonic() - started, 1)
        logger.info("phase done", phase=phase.__name__, seconds=elapsed)
    return s.truth


# --------------------------------------------------------------------------- checking

# "Dec 03 17:02:13 mx1 postfix/lmtp[18201]: 1037220CA19: to=<bob@acme.example>, ...
# status=bounced (...)"
_TO = re.compile(r": (?P<qid>[0-9A-F]{8,}): to=<(?P<rcpt>[^>]*)>,.* status=(?P<st>\w+)")
_DSN = re.compile(r", dsn=(?P<dsn>[\d.]+), status=deferred")
# "... postfix/qmgr[18193]: 836F220CB0F: from=<erin@acme.example>, status=expired,
# returned to sender"
_EXPIRED = re.compile(r": (?P<qid>[0-9A-F]{8,}): from=<[^>]*>, status=expired")
# "... postfix/bounce[18208]: 1037220CA19: sender non-delivery notification:
# 2170320C526"
_NOTICE = re.compile(r": [0-9A-F]{8,}: sender non-delivery notification: (?P<qid>\w+)")


@dataclass
class Observed:
    """What the Postfix log says, reduced to what the scenario can be checked by."""

    finals: dict[tuple[str, str], str]
    notices: dict[str, list[str]]  # notification queue ID -> its recipients' finals
    notice_rcpts: Counter[str]
    deferrals: Counter[str]
    rejects: Counter[str]
    auth_failures: int


def observe(postfix: str) -> Observed:
    """Final status per (queue ID, recipient) and the counts the README reports."""
    finals: dict[tuple[str, str], str] = {}
    for m in _TO.finditer(postfix):
        finals[(m["qid"], m["rcpt"])] = m["st"]
    for m in _EXPIRED.finditer(postfix):
        for key, status in finals.items():
            if key[0] == m["qid"] and status == "deferred":
                finals[key] = "expired"
    notice_ids = [m["qid"] for m in _NOTICE.finditer(postfix)]
    notices = {q: [st for (k, _), st in finals.items() if k == q] for q in notice_ids}
    notice_rcpts = Counter(r.partition("@")[2] for (q, r) in finals if q in notices)
    return Observed(
        finals=finals,
        notices=notices,
        notice_rcpts=notice_rcpts,
        deferrals=Counter(m["dsn"] for m in _DSN.finditer(postfix)),
        rejects=Counter(
            {
                "unknown user": postfix.count("User unknown in virtual mailbox table"),
                "relay denied": postfix.count("Relay access denied"),
            }
        ),
        auth_failures=postfix.count("authentication failed"),
    )


def mismatches(truth: Truth, seen: Observed) -> list[str]:
    """Every way the log disagrees with what the script caused."""
    wrong = [
        f"{e.queue_id} {e.recipient}: expected {e.final}, logged "
        f"{seen.finals.get((e.queue_id, e.recipient))}"
        for e in truth.expects
        if seen.finals.get((e.queue_id, e.recipient)) != e.final
    ]
    failed_ids = {e.queue_id for e in truth.expects if e.final != "sent"}
    if len(seen.notices) != len(failed_ids):
        wrong.append(
            f"{len(seen.notices)} notifications for {len(failed_ids)} messages"
        )
    wrong += [
        f"notification {q} not sent: {f}"
        for q, f in seen.notices.items()
        if f != ["sent"]
    ]
    if seen.rejects != truth.rejects:
        wrong.append(f"rejects: expected {dict(truth.rejects)}, logged {seen.rejects}")
    if truth.auth_failures and not seen.auth_failures:
        wrong.append("the failed SASL login is not in the log")
    return wrong


# --------------------------------------------------------------------------- output


def _span(text: str) -> str:
    lines = text.splitlines()
    return f"{lines[0][:15]} to {lines[-1][:15]}" if lines else "(empty)"


def _tenant_table(truth: Truth) -> list[str]:
    rows = [
        "| tenant | recipients | delivered | bounced | expired |",
        "|---|---:|---:|---:|---:|",
    ]
    for tenant in ("acme", "globex", "initech"):
        mine = [e for e in truth.expects if e.tenant == tenant]
        finals = Counter(e.final for e in mine)
        rows.append(
            f"| {tenant} | {len(mine)} | {finals['sent']} | "
            f"{finals['bounced']} | {finals['expired']} |"
        )
    finals = Counter(e.final for e in truth.expects)
    rows.append(
        f"| **all** | {len(truth.expects)} | {finals['sent']} | "
        f"{finals['bounced']} | {finals['expired']} |"
    )
    return rows


def _what_table(truth: Truth) -> list[str]:
    rows = ["| tenant | what happened | final | recipients |", "|---|---|---|---:|"]
    groups = Counter((e.tenant, e.what, e.final) for e in truth.expects)
    for (tenant, what, final), n in sorted(groups.items()):
        rows.append(f"| {tenant} | {what} | {final} | {n} |")
    return rows


def readme(
    truth: Truth, seen: Observed, postfix: str, dovecot: str, seconds: float
) -> str:
    """samples/README.md: the truth of the sample logs, with counts."""
    deferrals = ", ".join(
        f"{n} with dsn={d}" for d, n in sorted(seen.deferrals.items())
    )
    notice_to = ", ".join(f"{n} to {d}" for d, n in sorted(seen.notice_rcpts.items()))
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    parts = [
        "# Sample logs from real Postfix and Dovecot",
        "",
        f"Written by `scripts/make_samples.py` on {today} in {seconds:.0f} s: Debian's "
        "Postfix 3.7 and Dovecot 2.3 ran on loopback in the mail lab of "
        "`tests/daemons.py`, and the script sent the mail described below. A small "
        "multi-tenant day, compressed into about a minute "
        f"({_span(postfix)}). Regenerate with "
        "`sudo .venv/bin/python scripts/make_samples.py`; queue IDs, session IDs, "
        "ports and times change, the counts below do not. The script checks every "
        "recipient's final status in `postfix.log` against what it caused and fails "
        "on any difference.",
        "",
        "- `postfix.log`: Postfix's own `maillog_file` "
        f"({len(postfix.splitlines())} lines, host `mx1`).",
        "- `dovecot.log`: Dovecot's `log_path` "
        f"({len(dovecot.splitlines())} lines), with `deliver_log_format = "
        f"{DELIVER_LOG_FORMAT_TIMINGS}` so that save lines carry Dovecot's timings.",
        "- `tenants.toml`: the `[tenants.*]` section for them (`mailtriage ingest "
        "--config samples/tenants.toml samples/*.log`).",
        "",
        "## Tenants",
        "",
        "acme.example, globex.example and initech.example are local domains: Postfix "
        "hands their mail to Dovecot over LMTP (initech.example through a relay that "
        f"holds every end-of-DATA reply for {SLOW_LMTP_SECONDS:g} s, a slow MDA path "
        "that Dovecot's own timings do not show; archive@globex.example through an "
        "MDA shard that is down). acme submits outbound mail through the submission "
        "service with SASL user `acme-relay`; globex's web application and initech's "
        "CRM relay from 127.0.0.1 (`mynetworks`). partner.example, supplier.example "
        "and news.example are remote senders whose MX accepts everything (bounces land "
        "there); bigmail.example, strictmail.example and vendor.example are remote "
        "providers; oldcustomer.example has no DNS.",
        "",
        f"## Recipients by final outcome ({truth.messages} messages sent)",
        "",
        *_tenant_table(truth),
        "",
        "Delivered, bounced and expired count recipients by their final outcome; "
        "outbound mail counts for the tenant that sent it. Postfix's own "
        "notifications (below) are not in these tables.",
        "",
        *_what_table(truth),
        "",
        "## Everything else in the logs",
        "",
        f"- Deferred attempts before those outcomes: {sum(seen.deferrals.values())} "
        f"({deferrals}).",
        f"- Postfix's non-delivery notifications to senders: {len(seen.notices)}, all "
        f"delivered ({notice_to}).",
        f"- Refused before queueing (NOQUEUE) from one client, 127.0.3.66: "
        f"{seen.rejects['unknown user']} unknown users (`User unknown in virtual "
        f"mailbox table`, 550 5.1.1) and {seen.rejects['relay denied']} relay attempts "
        "(`Relay access denied`, 554 5.7.1). The same client guessed a password on "
        f"the submission port: {seen.auth_failures} failed SASL attempts, logged as "
        "warnings.",
        "- The one message to five acme mailboxes shows LMTP's per-recipient replies: "
        "Postfix logs Dovecot's session ID (`<id>`, `<id>:R2`, ...) in each `250 ... "
        "Saved` reply; the 552 for bob (end of DATA) carries none, while Dovecot's "
        "`save failed` line for bob has it; carol (over quota) and ghost (unknown) are "
        "refused at RCPT, where Dovecot logs nothing.",
        "- Start and stop of both daemons (Postfix's `starting the Postfix mail "
        "system`, `daemon started` with the lab's configuration path, `stopping the "
        "Postfix mail system`; Dovecot's `starting up` and `Killed with signal 15`).",
        "",
    ]
    return "\n".join(parts)


def write_samples(out: Path, lab: MailLab, truth: Truth, seconds: float) -> None:
    postfix, dovecot = lab.logs().text()
    seen = observe(postfix)
    wrong = mismatches(truth, seen)
    if wrong:
        raise SystemExit("the logs disagree with the scenario:\n" + "\n".join(wrong))
    out.mkdir(parents=True, exist_ok=True)
    (out / "postfix.log").write_text(postfix)
    (out / "dovecot.log").write_text(dovecot)
    (out / "tenants.toml").write_text(TENANTS_TOML)
    (out / "README.md").write_text(readme(truth, seen, postfix, dovecot, seconds))
    logger.info(
        "samples written",
        out=str(out),
        postfix_lines=len(postfix.splitlines()),
        dovecot_lines=len(dovecot.splitlines()),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "samples")
    args = parser.parse_args(argv)
    configure_logging()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's chatter
    reason = missing_requirements()
    if reason is not None:
        logger.error("cannot run the mail lab", reason=reason)
        return 2
    shutil.rmtree(LAB_ROOT, ignore_errors=True)
    started = time.monotonic()
    lab = MailLab(lab_config(peers := make_peers()))
    try:
        lab.start()
        truth = run(lab, peers)
    finally:
        lab.stop()
    write_samples(args.out, lab, truth, time.monotonic() - started)
    shutil.rmtree(LAB_ROOT, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
