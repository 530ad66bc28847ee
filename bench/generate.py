"""Write a realistic mixed Postfix + Dovecot syslog file, and the truth about it.

    python bench/generate.py out.log --lines 1000000 --seed 1 [--hosts 2]
        [--domains 300] [--tenants 6] [--year 2026] [--start 2026-12-03T08:00:00]
        [--sessions-per-second 5] [--queue-lifetime 3600] [--long-queue-ids]
        [--plain-dovecot-log]        (``--out PATH`` works as well as PATH)

The log is what a multi-tenant mail platform writes to syslog: MX hosts running
postscreen, smtpd (also the ``postfix/submission/smtpd`` alias), cleanup, qmgr, smtp,
lmtp, bounce and pickup, each with a Dovecot that receives local mail over LMTP; the
hosts' lines are interleaved in time order. Formats follow Postfix 3.7 and Dovecot 2.3
(checked against the real lines in ../shared/corpus and samples/). What happens in it:

- inbound mail passes postscreen and smtpd and goes to Dovecot over LMTP, one outcome
  per recipient: saved, over quota (``552 5.2.2``, at RCPT or at end of DATA, where
  Dovecot logs ``save failed``), unknown user (``550 5.1.1``), a temporary MDA error,
  LMTP down for a while (``Connection refused``), or a slow MDA; Dovecot's own
  ``lmtp(user)<pid><session>`` line carries the session ID that Postfix logs in the
  ``250 2.0.0 <rcpt> SESSION Saved`` reply;
- outbound mail from tenants (SASL users) goes to remote domains: sent, deferred and
  retried with Postfix's backoff (greylisting, provider throttling, dead or flaky
  sites, DNS trouble, full remote mailboxes), bounced (unknown users, policy blocks,
  oversized mail, non-existent domains) or expired after ``queue_lifetime`` seconds;
- bounces and expiries send non-delivery notifications, which are delivered too;
- NOQUEUE rejects (blocklisted clients at postscreen, unknown users, relay attempts,
  missing reverse DNS, bad HELO, our own greylisting), SASL brute force, lost
  connections, warnings, Dovecot IMAP logins, anvil/scache statistics, and lines no
  mail parser reads (opendkim, CRON);
- queue IDs are reused now and then after their message was removed.

Not modelled: Dovecot on hosts of its own (each MX runs its own), Postfix
multi-instance names (``postfix-out/smtp``), delay-warning and double-bounce
notifications, and one connection failure shared by all recipients of a destination
in a pass (each recipient draws its own outcome).

The file has exactly ``--lines`` lines. Because it is cut there, the last messages may
be incomplete: the truth counts only what the written lines say. Beside the log go
``<log>.truth.json`` (the totals below) and ``<log>.tenants.toml`` (the tenants in the
``[tenants.*]`` shape of issue 2).

Counting rules of the truth (those of issue 3): ``delivered``, ``bounced`` and
``expired`` count recipients by their final outcome; ``deferred`` counts recipients
whose latest attempt was deferred and who have no final outcome yet;
``deferral_attempts`` counts deferred attempts; ``recipients`` counts recipients with
at least one attempt, so delivered + bounced + expired + deferred == recipients. A
delivery to a local mailbox belongs to the tenant owning the recipient domain; an
outbound one to the tenant of its sender domain or SASL user; anything else (a
notification to a remote sender, root's cron mail) is ``unassigned``.
``messages_received`` counts messages accepted by smtpd or pickup (their ``client=`` or
``uid=`` line), ``bytes_received`` their sizes (first ``qmgr from=`` line);
notifications are counted apart. Line kinds name the record kind a parser is expected
to produce (records.py), ``unparsed`` for programs no mail parser reads.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import heapq
import itertools
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

UNASSIGNED = "unassigned"
LMTP_RELAY = "127.0.0.1[127.0.0.1]:24"
LMTP_HOST = "127.0.0.1[127.0.0.1]"
MIN_BACKOFF = 300.0  # Postfix minimal_backoff_time
MAX_BACKOFF = 4000.0  # Postfix maximal_backoff_time
GREYLIST_DELAY = 300.0  # postgrey's default --delay
BASE52 = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """A failure response and the cause the classifier must give it.

    ``text`` is formatted with ``rcpt``, ``domain``, ``relay`` (``host[ip]``), ``ip``
    (our sending IP); ``command`` is the SMTP command a
    remote reply answered, None for Postfix's own texts and greeting refusals.
    """

    status: str
    dsn: str
    code: int | None
    text: str
    cause: str
    command: str | None = None
    greeting: bool = False

    def render(self, **values: str) -> str:
        """The parenthesised response as Postfix logs it after ``status=``."""
        body = self.text.format(**values)
        if self.greeting:
            return f"host {values['relay']} refused to talk to me: {body}"
        if self.command is None:
            return body
        return (
            f"host {values['relay']} said: {body} (in reply to {self.command} command)"
        )


REPLIES: dict[str, Reply] = {
    "lmtp_quota_rcpt": Reply(
        "bounced",
        "5.2.2",
        552,
        "552 5.2.2 <{rcpt}> Quota exceeded (mailbox for user is full)",
        "quota_exceeded",
        "RCPT TO",
    ),
    "lmtp_quota_data": Reply(
        "bounced",
        "5.2.2",
        552,
        "552 5.2.2 <{rcpt}> Quota exceeded (mailbox for user is full)",
        "quota_exceeded",
        "end of DATA",
    ),
    "lmtp_unknown": Reply(
        "bounced",
        "5.1.1",
        550,
        "550 5.1.1 <{rcpt}> User doesn't exist: {rcpt}",
        "unknown_recipient",
        "RCPT TO",
    ),
    "lmtp_temporary": Reply(
        "deferred",
        "4.3.0",
        451,
        "451 4.3.0 <{rcpt}> Temporary internal error",
        "mda_temporary_error",
        "end of DATA",
    ),
    "lmtp_refused": Reply(
        "deferred",
        "4.4.1",
        None,
        "connect to 127.0.0.1[127.0.0.1]:24: Connection refused",
        "connection_refused",
    ),
    "lmtp_refused_suspended": Reply(
        "deferred",
        "4.4.1",
        None,
        "delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:24: "
        "Connection refused",
        "connection_refused",
    ),
    "connect_timeout": Reply(
        "deferred",
        "4.4.1",
        None,
        "connect to {relay}:25: Connection timed out",
        "connection_timeout",
    ),
    "connect_timeout_suspended": Reply(
        "deferred",
        "4.4.1",
        None,
        "delivery temporarily suspended: connect to {relay}:25: Connection timed out",
        "connection_timeout",
    ),
    "connect_refused": Reply(
        "deferred",
        "4.4.1",
        None,
        "connect to {relay}:25: Connection refused",
        "connection_refused",
    ),
    "lost_connection": Reply(
        "deferred",
        "4.4.2",
        None,
        "lost connection with {relay} while receiving the initial server greeting",
        "connection_timeout",
    ),
    "dns_temporary": Reply(
        "deferred",
        "4.4.3",
        None,
        "Host or domain name not found. Name service error for name={domain} "
        "type=MX: Host not found, try again",
        "dns_failure",
    ),
    "dns_nxdomain": Reply(
        "bounced",
        "5.4.4",
        None,
        "Host or domain name not found. Name service error for name={domain} "
        "type=A: Host not found",
        "dns_failure",
    ),
    "tls_not_offered": Reply(
        "deferred",
        "4.7.4",
        None,
        "TLS is required, but was not offered by host {relay}",
        "tls_failure",
    ),
    "greylisted": Reply(
        "deferred",
        "4.2.0",
        450,
        "450 4.2.0 <{rcpt}>: Recipient address rejected: Greylisted, see "
        "http://postgrey.schweikert.ch/help/{domain}.html",
        "greylisting",
        "RCPT TO",
    ),
    "yahoo_tss04": Reply(
        "deferred",
        "4.7.0",
        421,
        "421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to "
        "unexpected volume or user complaints - 4.16.55.1; see "
        "https://postmaster.yahooinc.com/error-codes",
        "policy_rejected",
        "MAIL FROM",
    ),
    "outlook_server_busy": Reply(
        "deferred",
        "4.7.500",
        451,
        "451 4.7.500 Server busy. Please try again later from [{ip}]. (S77714) "
        "[AM4PEPF00027A6C.eurprd04.prod.outlook.com 2026-12-03T16:00:56.123Z "
        "08DC1234ABCD5678]",
        "remote_throttling",
        "MAIL FROM",
    ),
    "gmail_rate_limited": Reply(
        "deferred",
        "4.7.28",
        421,
        "421-4.7.28 [{ip}      15] Our system has detected an unusual rate of "
        "421-4.7.28 unsolicited mail originating from your IP address. To protect "
        "our 421-4.7.28 users from spam, mail sent from your IP address has been "
        "421-4.7.28 temporarily rate limited. For more information, go to 421-4.7.28 "
        " https://support.google.com/mail/?p=UnsolicitedRateLimitError to 421 "
        "4.7.28 review our Bulk Email Senders Guidelines. a1si1234567wmb.12 - gsmtp",
        "remote_throttling",
        "end of DATA",
    ),
    "outlook_s3150": Reply(
        "bounced",
        "5.7.1",
        550,
        "550 5.7.1 Unfortunately, messages from [{ip}] weren't sent. Please contact "
        "your Internet service provider since part of their network is on our block "
        "list (S3150). You can also refer your provider to "
        "http://mail.live.com/mail/troubleshooting.aspx#errors. "
        "[AM4PEPF00027A6C.eurprd04.prod.outlook.com 2026-12-03T16:00:56.123Z "
        "08DC1234ABCD5678]",
        "policy_rejected",
        "MAIL FROM",
    ),
    "spamhaus_blocked": Reply(
        "bounced",
        "5.7.1",
        554,
        "554 5.7.1 Service unavailable; Client host [{ip}] blocked using "
        "zen.spamhaus.org; https://www.spamhaus.org/query/ip/{ip}",
        "policy_rejected",
        "RCPT TO",
    ),
    "gmail_unknown": Reply(
        "bounced",
        "5.1.1",
        550,
        "550-5.1.1 The email account that you tried to reach does not exist. Please "
        "try 550-5.1.1 double-checking the recipient's email address for typos or "
        "550-5.1.1 unnecessary spaces. For more information, go to 550 5.1.1  "
        "https://support.google.com/mail/?p=NoSuchUser a1si1234567wmb.12 - gsmtp",
        "unknown_recipient",
        "RCPT TO",
    ),
    "outlook_unknown": Reply(
        "bounced",
        "5.5.0",
        550,
        "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). "
        "[AM4PEPF00027A6C.eurprd04.prod.outlook.com 2026-12-03T16:00:56.123Z "
        "08DC1234ABCD5678]",
        "unknown_recipient",
        "RCPT TO",
    ),
    "yahoo_unknown": Reply(
        "bounced",
        "5.0.0",
        554,
        "554 delivery error: dd This user doesn't have a {domain} account ({rcpt}) "
        "[0] - mta1234.mail.bf1.yahoo.com",
        "unknown_recipient",
        "end of DATA",
    ),
    "generic_unknown": Reply(
        "bounced",
        "5.1.1",
        550,
        "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual "
        "mailbox table",
        "unknown_recipient",
        "RCPT TO",
    ),
    "gmail_over_quota": Reply(
        "deferred",
        "4.2.2",
        452,
        "452-4.2.2 The recipient's inbox is out of storage space. Please direct the "
        "452-4.2.2 recipient to 452 4.2.2  "
        "https://support.google.com/mail/?p=OverQuotaTemp a1si1234567wmb.12 - gsmtp",
        "quota_exceeded",
        "RCPT TO",
    ),
    "generic_over_quota": Reply(
        "deferred",
        "4.2.2",
        452,
        "452 4.2.2 <{rcpt}>: Recipient address rejected: Mailbox full",
        "quota_exceeded",
        "RCPT TO",
    ),
    "message_too_large": Reply(
        "bounced",
        "5.3.4",
        552,
        "552 5.3.4 Message size exceeds fixed limit",
        "message_too_large",
        "end of DATA",
    ),
    "icloud_blocked": Reply(
        "deferred",
        "4.7.0",
        550,
        "550 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip={ip}",
        "policy_rejected",
        greeting=True,
    ),
}

SENT_TEXTS = {
    "gmail": "250 2.0.0 OK  {stamp} a1si{n}wmb.12 - gsmtp",
    "outlook": (
        "250 2.6.0 <{msgid}> [InternalId={n}, Hostname=AM4PEPF00027A6C.eurprd04.prod"
        ".outlook.com] {size} bytes in 0.118, 142.117 KB/sec Queued mail for delivery"
    ),
    "yahoo": "250 ok dirdel",
    "icloud": "250 2.0.0 Ok: queued as {n}",
    "gmx": "250 Requested mail action okay, completed: id=1M{n}",
    "generic": "250 2.0.0 Ok: queued as {qid}",
}


# ------------------------------------------------------------------------ the world


@dataclass(slots=True)
class Mailbox:
    """A local mailbox on the platform."""

    address: str
    domain: str
    tenant: str
    exists: bool = True
    full: bool = False  # over quota before the message arrives: refused at RCPT
    nearly_full: bool = False  # fills during DATA: Dovecot logs ``save failed``


@dataclass(slots=True)
class Tenant:
    """A customer of the platform and what it owns."""

    name: str
    patterns: list[str]
    domains: list[str]
    sasl_users: list[str]
    senders: list[Mailbox]
    mailboxes: list[Mailbox]
    validates: bool  # smtpd rejects unknown users (virtual_mailbox_maps)
    bad_reputation: bool


@dataclass(slots=True)
class Remote:
    """A remote recipient domain and how its MX behaves."""

    domain: str
    provider: str
    mx: list[str]  # "host[ip]"
    greylists: bool = False
    dead: bool = False
    nonexistent: bool = False
    tls_broken: bool = False
    refuses: bool = False
    size_limit: int = 50_000_000
    outages: list[tuple[float, float]] = field(default_factory=list)


@dataclass(slots=True)
class Host:
    """One MX host: its Postfix daemons' PIDs and its Dovecot's troubles."""

    name: str
    fqdn: str
    ip: str
    long_ids: bool
    pids: dict[str, list[int]]
    lmtp_down: list[tuple[float, float]]
    slow_mda: list[tuple[float, float]]
    busy_qids: dict[str, float] = field(default_factory=dict)
    freed_qids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Recipient:
    """One recipient of one message, and what the written lines said of it."""

    address: str
    domain: str
    tenant: str
    transport: str
    mailbox: Mailbox | None = None
    remote: Remote | None = None
    unknown: bool = False
    over_quota: bool = False
    state: str = ""


@dataclass(slots=True)
class Message:
    """One queue-ID lifetime as the planner sees it."""

    host: Host
    qid: str
    sender: str
    size: int
    msgid: str
    origin: str
    tenant: str
    recipients: list[Recipient]
    arrived: float
    bytes_counted: bool = False


def _in_windows(windows: list[tuple[float, float]], t: float) -> bool:
    return any(start <= t < end for start, end in windows)


def _windows(
    rng: random.Random, horizon: float, every: float, lasting: tuple[float, float]
) -> list[tuple[float, float]]:
    """Random outage-like windows: on average one per ``every`` seconds."""
    windows: list[tuple[float, float]] = []
    t = rng.expovariate(1 / every)
    while t < horizon:
        windows.append((t, t + rng.uniform(*lasting)))
        t += rng.expovariate(1 / every)
    return windows


TENANT_NAMES = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne"]
FIRST_NAMES = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
    "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent",
    "victor", "walter", "yvonne", "zoe", "sales", "info", "support", "billing",
]  # fmt: skip
PROVIDERS = {
    "gmail.com": ("gmail", ["gmail-smtp-in.l.google.com[142.250.27.26]",
                            "alt1.gmail-smtp-in.l.google.com[142.250.153.27]"]),
    "googlemail.com": ("gmail", ["gmail-smtp-in.l.google.com[142.250.27.27]"]),
    "outlook.com": ("outlook", ["outlook-com.olc.protection.outlook.com[52.101.68.8]"]),
    "hotmail.com": ("outlook", ["hotmail-com.olc.protection.outlook.com[52.101.11.0]"]),
    "yahoo.com": ("yahoo", ["mta5.am0.yahoodns.net[67.195.204.72]",
                            "mta6.am0.yahoodns.net[98.136.96.74]"]),
    "icloud.com": ("icloud", ["mx01.mail.icloud.com[17.57.154.33]",
                              "mx02.mail.icloud.com[17.57.152.14]"]),
    "gmx.de": ("gmx", ["mx00.emig.gmx.net[212.227.15.9]"]),
    "web.de": ("gmx", ["mx-ha03.web.de[212.227.17.8]"]),
}  # fmt: skip
PROVIDER_WEIGHTS = {
    "gmail.com": 24, "googlemail.com": 2, "outlook.com": 8, "hotmail.com": 7,
    "yahoo.com": 8, "icloud.com": 5, "gmx.de": 3, "web.de": 3,
}  # fmt: skip
REMOTE_WORDS = [
    "partner", "supplier", "client", "agency", "studio", "labs", "logistics",
    "media", "travel", "clinic", "school", "bank", "shop", "foods", "motors",
]  # fmt: skip
INBOUND_CLIENTS = [
    "mail-wm1-f{n}.google.com[209.85.128.{n}]",
    "mail-eopbgr{n}.outbound.protection.outlook.com[40.107.{n}.42]",
    "sonic{n}-21.consmr.mail.ir2.yahoo.com[77.238.178.{n}]",
    "mo4-p00-ob.smtp.rzone.de[81.169.146.{n}]",
    "mout.gmx.net[212.227.17.{n}]",
    "mail.{domain}[198.51.100.{n}]",
    "smtp{n}.{domain}[203.0.113.{n}]",
]


class World:
    """Tenants, remote domains and hosts, drawn once from the seed."""

    def __init__(
        self,
        rng: random.Random,
        *,
        hosts: int,
        tenants: int,
        domains: int,
        horizon: float,
        long_queue_ids: bool,
    ) -> None:
        self.rng = rng
        self.tenants = [self._tenant(i) for i in range(tenants)]
        self.legacy = self._legacy_sender()
        self.remotes = self._remotes(domains, horizon)
        self.remote_weights = list(itertools.accumulate(self._remote_weights()))
        self.hosts = [self._host(i, horizon, long_queue_ids) for i in range(hosts)]
        self.by_domain = {d: t.name for t in self.tenants for d in t.domains}
        self.throttling = {
            "yahoo": _windows(rng, horizon, 2 * 3600, (600, 1800)),
            "outlook": _windows(rng, horizon, 3 * 3600, (300, 1200)),
            "gmail": _windows(rng, horizon, 2 * 3600, (1200, 2400)),
        }

    def throttled(self, provider: str, tenant: Tenant, t: float) -> str | None:
        """The reply a throttling provider gives at ``t``, if it throttles then.

        Yahoo and Microsoft throttle everyone now and then; Gmail rate-limits only
        the tenant with a bad reputation.
        """
        windows = self.throttling.get(provider)
        if windows is None or not _in_windows(windows, t):
            return None
        if provider == "gmail":
            return "gmail_rate_limited" if tenant.bad_reputation else None
        return "yahoo_tss04" if provider == "yahoo" else "outlook_server_busy"

    def _tenant(self, index: int) -> Tenant:
        rng = self.rng
        name = TENANT_NAMES[index] if index < len(TENANT_NAMES) else f"t{index}"
        domains = [f"{name}.example"]
        patterns = [f"{name}.example"]
        if index % 2 == 0:
            domains += [f"eu.{name}-corp.example", f"us.{name}-corp.example"]
            patterns.append(f"*.{name}-corp.example")
        mailboxes = [
            self._mailbox(f"{first}{n or ''}", domain, name)
            for domain in domains
            for first in FIRST_NAMES
            for n in range(rng.randint(2, 8))
        ]
        senders = [Mailbox(f"noreply@{domains[0]}", domains[0], name)]
        senders.append(Mailbox(f"notifications@{domains[0]}", domains[0], name))
        mailboxes += senders
        sasl = [f"{name}-relay", f"{name}-app"]
        validates = index != 1  # one tenant's domains go to LMTP unchecked
        return Tenant(
            name,
            patterns,
            domains,
            sasl,
            senders,
            mailboxes,
            validates,
            name == "hooli",
        )

    def _mailbox(self, local: str, domain: str, tenant: str) -> Mailbox:
        roll = self.rng.random()
        return Mailbox(
            f"{local}@{domain}",
            domain,
            tenant,
            exists=roll >= 0.015,
            full=0.015 <= roll < 0.03,
            nearly_full=0.03 <= roll < 0.04,
        )

    def _legacy_sender(self) -> Tenant:
        """An old customer that no tenant entry covers: its mail is unassigned."""
        sender = Mailbox("alerts@old-platform.example", "old-platform.example", "")
        return Tenant(UNASSIGNED, [], [], ["legacy-relay"], [sender], [], True, False)

    def _remotes(self, count: int, horizon: float) -> list[Remote]:
        rng = self.rng
        remotes = [Remote(d, p, mx) for d, (p, mx) in PROVIDERS.items()]
        for i in range(count):
            tld = rng.choice(("net", "org", "com"))
            domain = f"{rng.choice(REMOTE_WORDS)}{i}.example.{tld}"
            remote = Remote(
                domain, "generic", [f"mx.{domain}[198.51.100.{i % 250 + 1}]"]
            )
            remote.size_limit = 10_000_000 if rng.random() < 0.5 else 50_000_000
            remote.greylists = rng.random() < 0.15
            if i >= 20:  # the busiest destinations work; the long tail has trouble
                self._troubles(remote, horizon)
            remotes.append(remote)
        return remotes

    def _troubles(self, remote: Remote, horizon: float) -> None:
        roll = self.rng.random()
        remote.dead = roll < 0.02
        remote.nonexistent = 0.02 <= roll < 0.03
        remote.tls_broken = 0.03 <= roll < 0.035
        remote.refuses = 0.035 <= roll < 0.05
        if 0.05 <= roll < 0.15:
            remote.outages = _windows(self.rng, horizon, 4 * 3600, (600, 2400))

    def _remote_weights(self) -> list[float]:
        """Big providers take 60 % of the recipients; the other domains share 40 %
        with Zipf-like popularity (the first generic domain is the busiest)."""
        weights = [float(PROVIDER_WEIGHTS.get(r.domain, 0)) for r in self.remotes]
        generic = [i for i, r in enumerate(self.remotes) if r.provider == "generic"]
        zipf = [1 / rank**0.8 for rank in range(1, len(generic) + 1)]
        scale = 40.0 / sum(zipf) if zipf else 0.0
        for i, share in zip(generic, zipf, strict=True):
            weights[i] = share * scale
        return weights

    def _host(self, index: int, horizon: float, long_queue_ids: bool) -> Host:
        rng = self.rng
        name = f"mx{index + 1}"
        sizes = {
            "postfix/smtpd": 8, "postfix/submission/smtpd": 4, "postfix/cleanup": 3,
            "postfix/smtp": 8, "postfix/lmtp": 4, "postfix/bounce": 2,
            "postfix/postscreen": 1, "postfix/qmgr": 1, "postfix/pickup": 1,
            "postfix/local": 1, "postfix/anvil": 1,
            "postfix/dnsblog": 2, "dovecot-lmtp": 4, "dovecot-imap": 6,
            "opendkim": 1, "CRON": 1,
        }  # fmt: skip
        pids = {
            p: [rng.randint(1000, 99999) for _ in range(n)] for p, n in sizes.items()
        }
        return Host(
            name,
            f"{name}.platform.example",
            f"192.0.2.{10 + index}",
            long_queue_ids and index == 1,
            pids,
            lmtp_down=_windows(rng, horizon, 6 * 3600, (60, 300)),
            slow_mda=_windows(rng, horizon, 3 * 3600, (300, 900)),
        )

    def remote_for(self) -> Remote:
        """A recipient domain drawn by popularity (big providers first)."""
        return self.rng.choices(self.remotes, cum_weights=self.remote_weights)[0]


# ---------------------------------------------------------------------- the truth


FIVE = ("delivered", "bounced", "expired", "deferred", "deferral_attempts")


@dataclass
class Truth:
    """What the written lines say, counted by the rules in the module docstring."""

    totals: dict[str, int]
    by_tenant: list[dict[str, object]]
    by_domain: list[dict[str, object]]
    by_transport: dict[str, dict[str, int]]
    causes: dict[str, dict[str, int]]
    dovecot: dict[str, int]
    lines: dict[str, object]
    generator: dict[str, object]

    def to_json(self) -> str:
        """The truth file's text."""
        return json.dumps(self.__dict__, indent=1, sort_keys=True)


class Tally:
    """Counters updated as each line is written."""

    def __init__(self) -> None:
        self.recipients: list[Recipient] = []
        self.totals: Counter[str] = Counter()
        self.deferrals: dict[str, Counter[str]] = defaultdict(Counter)
        self.rejects: dict[str, Counter[str]] = defaultdict(Counter)
        self.causes: dict[str, Counter[str]] = defaultdict(Counter)
        self.kinds: Counter[str] = Counter()
        self.programs: Counter[str] = Counter()
        self.lmtp_sessions: set[str] = set()
        self.dovecot_sessions: set[str] = set()

    def received(self, message: Message) -> None:
        """smtpd's ``client=`` or pickup's ``uid=`` line: a message is accepted."""
        self.totals["messages_received"] += 1

    def queued(self, message: Message) -> None:
        """qmgr's ``from=`` line; a message's size counts once, at its first."""
        if not message.bytes_counted:
            message.bytes_counted = True
            key = (
                "bytes_notifications"
                if message.origin == "bounce"
                else "bytes_received"
            )
            self.totals[key] += message.size

    def notified(self, message: Message) -> None:
        """bounce's ``sender non-delivery notification`` line."""
        self.totals["notifications"] += 1

    def dovecot_saved(self, session: str) -> None:
        self.totals["dovecot_saved"] += 1
        self.dovecot_sessions.add(session)

    def dovecot_failed(self, session: str) -> None:
        self.totals["dovecot_save_failed"] += 1

    def attempt(
        self, rcpt: Recipient, status: str, cause: str | None, saved: str | None
    ) -> None:
        """One ``to=`` line: the recipient's latest state changes."""
        if saved is not None:
            self.lmtp_sessions.add(saved)
        if not rcpt.state:
            self.recipients.append(rcpt)
        rcpt.state = status
        if status == "deferred":
            for key in (f"t:{rcpt.tenant}", f"d:{rcpt.domain}", f"x:{rcpt.transport}"):
                self.deferrals[key]["deferral_attempts"] += 1
            self.causes["deferral_attempts"][cause or "other"] += 1
        elif status == "bounced":
            self.causes["bounced"][cause or "other"] += 1

    def expire(self, message: Message) -> None:
        """``status=expired``: recipients still deferred reach their final outcome."""
        for rcpt in message.recipients:
            if rcpt.state == "deferred":
                rcpt.state = "expired"
                self.causes["expired"]["expired"] += 1

    def reject(self, tenant: str, domain: str, cause: str) -> None:
        """A NOQUEUE reject of one recipient."""
        self.totals["rejects"] += 1
        self.rejects[f"t:{tenant}"]["rejects"] += 1
        self.rejects[f"d:{domain}"]["rejects"] += 1
        self.causes["rejects"][cause] += 1

    def summarise(self, generator: dict[str, object], lines: int) -> Truth:
        """The truth, from the recipients' states and the counters."""
        groups: dict[str, Counter[str]] = defaultdict(Counter)
        for rcpt in self.recipients:
            state = "delivered" if rcpt.state == "sent" else rcpt.state
            for key in (f"t:{rcpt.tenant}", f"d:{rcpt.domain}", f"x:{rcpt.transport}"):
                groups[key][state] += 1
                groups[key]["recipients"] += 1
        for source in (self.deferrals, self.rejects):
            for key, counts in source.items():
                groups[key].update(counts)
        totals = Counter(self.totals)
        for key, counts in groups.items():
            if key.startswith("x:"):
                totals.update({k: v for k, v in counts.items() if k != "rejects"})
        return Truth(
            totals={
                k: totals.get(k, 0) for k in sorted({*totals, *FIVE, "recipients"})
            },
            by_tenant=_rows(groups, "t:", "tenant"),
            by_domain=_rows(groups, "d:", "domain"),
            by_transport={
                k[2:]: _five(v) for k, v in sorted(groups.items()) if k[:2] == "x:"
            },
            causes={k: dict(sorted(v.items())) for k, v in sorted(self.causes.items())},
            dovecot={
                "saved": self.totals["dovecot_saved"],
                "save_failed": self.totals["dovecot_save_failed"],
                "joined": len(self.lmtp_sessions & self.dovecot_sessions),
            },
            lines={
                "total": lines,
                "by_kind": dict(sorted(self.kinds.items())),
                "by_program": dict(sorted(self.programs.items())),
            },
            generator=generator,
        )


def _five(counts: Counter[str]) -> dict[str, int]:
    keys = (*FIVE, "recipients", "rejects")
    return {k: counts.get(k, 0) for k in keys}


def _rows(
    groups: dict[str, Counter[str]], prefix: str, name: str
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for key in sorted(k for k in groups if k.startswith(prefix)):
        rows.append({name: key[len(prefix) :], **_five(groups[key])})
    return rows


# --------------------------------------------------------------------- formatting


def pf_delay(seconds: float) -> str:
    """A delay as Postfix prints it: ``0``, ``0.07``, ``5.5``, ``18910``."""
    if seconds < 0.01:
        return "0"
    if seconds < 1:
        return f"{seconds:.2f}".rstrip("0").rstrip(".")
    if seconds < 10:
        return f"{seconds:.1f}".rstrip("0").rstrip(".")
    return str(int(seconds))


def session_id(rng: random.Random) -> str:
    """A Dovecot session ID: 16 random bytes in unpadded base64 (22 characters)."""
    return base64.b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode()[:22]


@dataclass(slots=True)
class Outcome:
    """What one delivery attempt of one recipient comes to, before it is written.

    ``relay`` is the ``relay=`` field (``none`` when no connection was made), ``peer``
    the ``host[ip]`` that texts name; ``setup`` and ``transmit`` are the last two
    ``delays=`` stages.
    """

    status: str
    reply: str | None
    relay: str
    peer: str = ""
    setup: float = 0.0
    transmit: float = 0.0
    dovecot: str | None = None
    session: str | None = None


# Replies that are a failed connection attempt, which Postfix also logs on its own.
CONNECT_FAILURES = frozenset({"lmtp_refused", "connect_timeout", "connect_refused"})

UNKNOWN_REPLY = {
    "gmail": "gmail_unknown",
    "outlook": "outlook_unknown",
    "yahoo": "yahoo_unknown",
}

# smtpd and postscreen reject texts (after the client) and the cause of each.
REJECTS: dict[str, tuple[str, str]] = {
    "unknown_user": (
        "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual "
        "mailbox table",
        "unknown_recipient",
    ),
    "greylisted": (
        "450 4.2.0 <{rcpt}>: Recipient address rejected: Greylisted, see "
        "http://postgrey.schweikert.ch/help/{domain}.html",
        "greylisting",
    ),
    "relay": ("454 4.7.1 <{rcpt}>: Relay access denied", "relay_denied"),
    "no_rdns": (
        "450 4.7.25 Client host rejected: cannot find your hostname, [{ip}]",
        "policy_rejected",
    ),
    "helo": (
        "504 5.5.2 <{helo}>: Helo command rejected: need fully-qualified hostname",
        "policy_rejected",
    ),
    "spamhaus": (
        "550 5.7.1 Service unavailable; client [{ip}] blocked using zen.spamhaus.org",
        "policy_rejected",
    ),
    "protocol": ("550 5.5.1 Protocol error", "other"),
}

# What a written line changes in the truth: a Tally method and its arguments.
Effect = tuple[Callable[..., None], tuple[object, ...]]


TLS_SUITE = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature RSA-PSS (2048 bits) server-digest SHA256"
)


@dataclass(slots=True)
class Commands:
    """The per-command counts of smtpd's ``disconnect from`` line (Postfix 3.x)."""

    tls: bool
    rcpt_ok: int
    rcpt_tried: int
    auth: bool = False

    def render(self) -> str:
        """``ehlo=2 starttls=1 mail=1 rcpt=0/1 quit=1 commands=5/6``."""
        ehlo = 2 if self.tls else 1
        counts = [("ehlo", ehlo, ehlo)]
        if self.tls:
            counts.append(("starttls", 1, 1))
        if self.auth:
            counts.append(("auth", 1, 1))
        counts += [("mail", 1, 1), ("rcpt", self.rcpt_ok, self.rcpt_tried)]
        if self.rcpt_ok:
            counts.append(("data", 1, 1))
        counts.append(("quit", 1, 1))
        good = sum(c[1] for c in counts)
        total = sum(c[2] for c in counts)
        counts.append(("commands", good, total))
        return " ".join(f"{n}={a}" if a == b else f"{n}={a}/{b}" for n, a, b in counts)


@dataclass(slots=True)
class Refusal:
    """Who is refused what: one NOQUEUE reject, ``what`` a key of ``REJECTS``."""

    what: str
    client: str
    ip: str
    sender: str
    rcpt: str
    helo: str


def _encode(n: int, width: int, alphabet: str = BASE52) -> str:
    digits = []
    for _ in range(width):
        n, r = divmod(n, len(alphabet))
        digits.append(alphabet[r])
    return "".join(reversed(digits))


Heap = list[tuple[float, int, str, str, str, str | None, Effect | None]]


class Planner:
    """Plans every line of every session and message into one time-ordered heap.

    A heap entry is ``(ts, seq, head, program, text, kind, effect)``: ``head`` is
    ``"host program[pid]: "``, and ``kind`` is None for the arrival events that start
    the next session. The writer pops entries, so lines come out in time order across
    hosts, and a line's effect on the truth applies when it is written. One process
    (one PID) writes all lines of one SMTP session, one message's cleanup, or one
    delivery session, as Postfix's and Dovecot's processes do.
    """

    def __init__(
        self,
        world: World,
        tally: Tally,
        rng: random.Random,
        rate: float,
        lifetime: float,
        epoch: int,
        dovecot_timings: bool,
    ) -> None:
        self.epoch = epoch  # the Unix time of ts 0, for stamps inside messages
        self.dovecot_timings = dovecot_timings
        self.world = world
        self.tally = tally
        self.rng = rng
        self.rate = rate
        self.lifetime = lifetime
        self.heap: Heap = []
        self.seq = 0
        self.tenants = {t.name: t for t in world.tenants}
        self.remotes = {r.domain: r for r in world.remotes}
        self.sessions: list[tuple[Callable[[float], None], float]] = [
            (self.inbound, 0.47),
            (self.outbound, 0.33),
            (self.spam_session, 0.11),
            (self.nuisance_session, 0.04),
            (self.pickup, 0.005),
            (self.imap_session, 0.045),
        ]
        self.session_functions = [f for f, _ in self.sessions]
        self.session_weights = list(itertools.accumulate(w for _, w in self.sessions))

    # ------------------------------------------------- heap, processes, queue IDs

    def emit(
        self,
        ts: float,
        host: Host,
        proc: str,
        kind: str,
        text: str,
        effect: Effect | None = None,
    ) -> None:
        """Schedule one line written by ``proc`` (``program[pid]``) on ``host``."""
        self.seq += 1
        program = proc.partition("[")[0]
        entry = (ts, self.seq, f"{host.name} {proc}: ", program, text, kind, effect)
        heapq.heappush(self.heap, entry)

    def arrival(self, ts: float) -> None:
        """Schedule the start of the next session."""
        self.seq += 1
        heapq.heappush(self.heap, (ts, self.seq, "", "", "", None, None))

    def next_session(self, ts: float) -> None:
        """Plan the session starting at ``ts`` and schedule the one after it."""
        self.rng.choices(self.session_functions, cum_weights=self.session_weights)[0](
            ts
        )
        self.arrival(ts + self.rng.expovariate(self.rate))

    def proc(self, host: Host, program: str) -> str:
        """``program[pid]`` of one of the host's processes of that program."""
        pool = host.pids[program]
        if len(pool) > 1 and self.rng.random() < 0.002:
            # The process reached max_use and master(8) started a new one.
            pool[int(self.rng.random() * len(pool))] = self.rng.randint(1000, 99999)
        return f"{program}[{pool[int(self.rng.random() * len(pool))]}]"

    def qid(self, host: Host, ts: float) -> str:
        """A free queue ID; now and then one reused after its message was removed."""
        if host.freed_qids and self.rng.random() < 0.01:
            qid = host.freed_qids[0]
            if host.busy_qids.get(qid, math.inf) < ts:
                host.freed_qids.pop(0)
                return qid
        while True:
            qid = self._long_qid(ts) if host.long_ids else self._short_qid(ts)
            if host.busy_qids.get(qid, 0.0) < ts:
                return qid

    def _short_qid(self, ts: float) -> str:
        # Postfix's short form: microseconds (5 hex digits) and the queue file inode.
        usec = int((ts % 1) * 1_000_000) & 0xFFFFF
        return f"{usec:05X}{self.rng.randint(0x300000, 0x3FFFFF):X}"

    def _long_qid(self, ts: float) -> str:
        # enable_long_queue_ids: seconds and microseconds in base 52, 'z', then the
        # inode in base 51, the same alphabet without 'z' (mail_queue.h).
        inode = _encode(self.rng.randint(100_000, 5_000_000), 4, BASE52[:-1])
        seconds = _encode(self.epoch + int(ts), 6)
        return seconds + _encode(int((ts % 1) * 1e6), 4) + "z" + inode

    def release(self, message: Message, ts: float) -> None:
        """The message is removed at ``ts``: its queue ID may be used again after."""
        host = message.host
        host.busy_qids[message.qid] = ts
        host.freed_qids.append(message.qid)
        if len(host.freed_qids) > 64:
            host.freed_qids.pop(0)

    # ---------------------------------------------------------------- helpers

    def host(self) -> Host:
        return self.world.hosts[self.rng.randrange(len(self.world.hosts))]

    def tenant(self, name: str) -> Tenant:
        return self.tenants.get(name, self.world.legacy)

    def ip(self) -> str:
        rng = self.rng
        first = rng.choice((45, 91, 103, 185, 194))
        return (
            f"{first}.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        )

    def new_message(
        self,
        host: Host,
        t: float,
        sender: str,
        origin: str,
        tenant: str,
        recipients: list[Recipient],
    ) -> Message:
        """A queued message with a fresh queue ID and a realistic size."""
        size = int(min(self.rng.lognormvariate(math.log(24_000), 1.1), 40_000_000))
        if self.rng.random() < 0.003:
            size = self.rng.randint(12_000_000, 30_000_000)
        qid = self.qid(host, t)
        host.busy_qids[qid] = math.inf
        return Message(host, qid, sender, size, "", origin, tenant, recipients, t)

    # ---------------------------------------------------------- SMTP sessions

    def postscreen_pass(self, host: Host, t: float, client_ip: str) -> float:
        """postscreen's CONNECT and PASS lines; returns when smtpd takes over."""
        proc = self.proc(host, "postfix/postscreen")
        peer = f"[{client_ip}]:{self.rng.randint(20000, 65000)}"
        self.emit(t, host, proc, "postscreen", f"CONNECT from {peer} to [{host.ip}]:25")
        if self.rng.random() < 0.85:
            self.emit(t + 0.01, host, proc, "postscreen", f"PASS OLD {peer}")
            return t + 0.02
        # A new client waits out postscreen_greet_wait before it passes.
        self.emit(t + 6.0, host, proc, "postscreen", f"PASS NEW {peer}")
        return t + 6.01

    def smtpd_connect(
        self, host: Host, t: float, proc: str, client: str, *, tls: bool
    ) -> float:
        """``connect from`` and, with STARTTLS, the TLS line; returns the next time."""
        self.emit(t, host, proc, "smtpd_connect", f"connect from {client}")
        if tls:
            text = f"Anonymous TLS connection established from {client}: {TLS_SUITE}"
            self.emit(t + 0.04, host, proc, "smtpd_event", text)
        return t + 0.1

    def smtpd_disconnect(
        self, host: Host, t: float, proc: str, client: str, counts: Commands
    ) -> None:
        """``disconnect from`` with the per-command counts Postfix 3.x logs."""
        text = f"disconnect from {client} {counts.render()}"
        self.emit(t, host, proc, "smtpd_disconnect", text)

    def reject(self, host: Host, t: float, proc: str, refusal: Refusal) -> None:
        """A NOQUEUE reject of one recipient, counted against its domain's tenant."""
        code_text, cause = REJECTS[refusal.what]
        domain = refusal.rcpt.rpartition("@")[2]
        text = code_text.format(
            rcpt=refusal.rcpt, domain=domain, ip=refusal.ip, helo=refusal.helo
        )
        envelope = (refusal.sender, refusal.rcpt, refusal.helo)
        if proc.startswith("postfix/postscreen"):
            peer = f"[{refusal.ip}]:{self.rng.randint(20000, 65000)}"
            tail = "from=<{}>, to=<{}>, proto=ESMTP, helo=<{}>".format(*envelope)
            line = f"NOQUEUE: reject: RCPT from {peer}: {text}; {tail}"
        else:
            tail = "from=<{}> to=<{}> proto=ESMTP helo=<{}>".format(*envelope)
            line = f"NOQUEUE: reject: RCPT from {refusal.client}: {text}; {tail}"
        tenant = self.world.by_domain.get(domain, UNASSIGNED)
        self.emit(
            t, host, proc, "reject", line, (self.tally.reject, (tenant, domain, cause))
        )

    # ---------------------------------------------------------------- inbound

    def inbound(self, ts: float) -> None:
        """Mail from a remote sender to local mailboxes of one tenant."""
        rng = self.rng
        host = self.host()
        tenant = rng.choice(self.world.tenants)
        boxes = rng.sample(tenant.mailboxes, rng.choice((1,) * 8 + (2, 2, 3, 4)))
        remote = self.world.remote_for()
        sender = f"{rng.choice(FIRST_NAMES)}.{rng.randint(1, 999)}@{remote.domain}"
        client = rng.choice(INBOUND_CLIENTS).format(
            n=rng.randint(2, 250), domain=remote.domain
        )
        ip = client[client.index("[") + 1 : -1]
        t = self.postscreen_pass(host, ts, ip)
        if rng.random() < 0.04:  # our postgrey refuses the first try
            t = self.greylisted_try(host, t, client, sender, boxes)
            t = self.postscreen_pass(host, t + rng.uniform(300, 900), ip)
        self.receive_inbound(host, t, client, sender, boxes, tenant)

    def greylisted_try(
        self, host: Host, t: float, client: str, sender: str, boxes: list[Mailbox]
    ) -> float:
        """A first try that our greylisting refuses, one reject per recipient."""
        proc = self.proc(host, "postfix/smtpd")
        t = self.smtpd_connect(host, t, proc, client, tls=False)
        helo = client.partition("[")[0]
        ip = client[client.index("[") + 1 : -1]
        for box in boxes:
            refusal = Refusal("greylisted", client, ip, sender, box.address, helo)
            self.reject(host, t, proc, refusal)
            t += 0.02
        counts = Commands(tls=False, rcpt_ok=0, rcpt_tried=len(boxes))
        self.smtpd_disconnect(host, t + 0.05, proc, client, counts)
        return t

    def receive_inbound(
        self,
        host: Host,
        t: float,
        client: str,
        sender: str,
        boxes: list[Mailbox],
        tenant: Tenant,
    ) -> None:
        """smtpd accepts the known recipients and queues the message."""
        rng = self.rng
        proc = self.proc(host, "postfix/smtpd")
        tls = rng.random() < 0.8
        t = self.smtpd_connect(host, t, proc, client, tls=tls)
        ip = client[client.index("[") + 1 : -1]
        refused = [b for b in boxes if tenant.validates and not b.exists]
        for box in refused:
            refusal = Refusal(
                "unknown_user", client, ip, sender, box.address, client.split("[")[0]
            )
            self.reject(host, t, proc, refusal)
            t += 0.05
        accepted = [b for b in boxes if b not in refused]
        counts = Commands(tls=tls, rcpt_ok=len(accepted), rcpt_tried=len(boxes))
        if not accepted:
            self.smtpd_disconnect(host, t + 0.05, proc, client, counts)
            return
        recipients = [self.local_recipient(b) for b in accepted]
        message = self.new_message(host, t, sender, "smtpd", tenant.name, recipients)
        domain = sender.rpartition("@")[2]
        message.msgid = f"<{rng.getrandbits(64):016x}.{rng.randint(1, 9999)}@{domain}>"
        received: Effect = (self.tally.received, (message,))
        text = f"{message.qid}: client={client}"
        self.emit(t + 0.05, host, proc, "smtpd_client", text, received)
        t = self.cleanup(message, t + 0.1, signed_by=None)
        self.smtpd_disconnect(host, t + 0.05, proc, client, counts)
        self.deliver(message, t + 0.06)

    def local_recipient(self, box: Mailbox) -> Recipient:
        return Recipient(box.address, box.domain, box.tenant, "lmtp", mailbox=box)

    def cleanup(self, message: Message, t: float, *, signed_by: str | None) -> float:
        """cleanup's message-id, opendkim's line and qmgr's ``from=`` line."""
        host, qid = message.host, message.qid
        proc = self.proc(host, "postfix/cleanup")
        text = f"{qid}: message-id={message.msgid}"
        self.emit(t, host, proc, "cleanup_message_id", text)
        if signed_by is None:
            dkim = f"{qid}: DKIM verification successful"
        else:
            dkim = f"{qid}: DKIM-Signature field added (s=mail, d={signed_by})"
        self.emit(t + 0.02, host, self.proc(host, "opendkim"), "unparsed", dkim)
        self.queue_active(message, t + 0.05)
        return t + 0.05

    def queue_active(self, message: Message, t: float) -> None:
        """qmgr's ``from=`` line: the message enters the active queue (again)."""
        text = (
            f"{message.qid}: from=<{message.sender}>, size={message.size}, "
            f"nrcpt={len(message.recipients)} (queue active)"
        )
        qmgr = self.proc(message.host, "postfix/qmgr")
        self.emit(
            t, message.host, qmgr, "qmgr_from", text, (self.tally.queued, (message,))
        )

    # --------------------------------------------------------------- outbound

    def outbound(self, ts: float) -> None:
        """Mail a tenant's application submits with SASL, to remote domains."""
        rng = self.rng
        host = self.host()
        world = self.world
        tenant = world.legacy if rng.random() < 0.03 else rng.choice(world.tenants)
        sender = rng.choice(tenant.senders).address
        domain = sender.rpartition("@")[2]
        count = rng.choice((1,) * 17 + (2, 3, 4, 6, 9))
        recipients = [
            self.remote_recipient(world.remote_for(), tenant) for _ in range(count)
        ]
        proc = self.proc(host, "postfix/submission/smtpd")
        app_ip = f"10.20.{rng.randint(0, 9)}.{rng.randint(2, 250)}"
        app = f"app{rng.randint(1, 4)}.{domain}[{app_ip}]"
        t = self.smtpd_connect(host, ts, proc, app, tls=True)
        message = self.new_message(host, t, sender, "smtpd", tenant.name, recipients)
        message.msgid = f"<{self.epoch + int(ts)}.{rng.getrandbits(40):010x}@{domain}>"
        sasl = rng.choice(tenant.sasl_users)
        text = f"{message.qid}: client={app}, sasl_method=PLAIN, sasl_username={sasl}"
        self.emit(
            t + 0.05,
            host,
            proc,
            "smtpd_client",
            text,
            (self.tally.received, (message,)),
        )
        t = self.cleanup(message, t + 0.1, signed_by=domain)
        counts = Commands(tls=True, rcpt_ok=count, rcpt_tried=count, auth=True)
        self.smtpd_disconnect(host, t + 0.05, proc, app, counts)
        self.deliver(message, t + 0.06)

    def remote_recipient(self, remote: Remote, tenant: Tenant) -> Recipient:
        rng = self.rng
        local = f"{rng.choice(FIRST_NAMES)}.{rng.randint(1, 5000)}"
        address = f"{local}@{remote.domain}"
        rcpt = Recipient(address, remote.domain, tenant.name, "smtp", remote=remote)
        rcpt.unknown = rng.random() < 0.02
        rcpt.over_quota = rng.random() < 0.004
        return rcpt

    def pickup(self, ts: float) -> None:
        """Root's cron mail, submitted with sendmail and delivered by local(8)."""
        host = self.host()
        rcpt = Recipient(f"root@{host.fqdn}", host.fqdn, UNASSIGNED, "local")
        sender = f"root@{host.fqdn}"
        message = self.new_message(host, ts, sender, "pickup", UNASSIGNED, [rcpt])
        message.size = self.rng.randint(600, 4000)
        message.msgid = f"<{self.epoch + int(ts)}.{message.qid}@{host.fqdn}>"
        text = f"{message.qid}: uid=0 from=<root>"
        pickup = self.proc(host, "postfix/pickup")
        self.emit(ts, host, pickup, "pickup", text, (self.tally.received, (message,)))
        cleanup = self.proc(host, "postfix/cleanup")
        text = f"{message.qid}: message-id={message.msgid}"
        self.emit(ts + 0.01, host, cleanup, "cleanup_message_id", text)
        self.queue_active(message, ts + 0.02)
        self.deliver(message, ts + 0.03)

    # --------------------------------------------------------------- delivery

    def deliver(self, message: Message, t: float) -> None:
        """Every delivery pass of a message until it is removed or expires."""
        pending = list(message.recipients)
        first, attempt = t, 0
        while True:
            outcomes = [self.outcome(message, r, t, attempt, first) for r in pending]
            end = self.emit_pass(message, list(zip(pending, outcomes, strict=True)), t)
            bounced = any(o.status == "bounced" for o in outcomes)
            pending = [
                r
                for r, o in zip(pending, outcomes, strict=True)
                if o.status == "deferred"
            ]
            # qmgr expires a message it takes from the deferred queue past its lifetime,
            # after that last attempt.
            expired = bool(pending) and t - message.arrived > self.lifetime
            if expired:
                end = self.expire(message, end + 0.01)
            if (bounced or expired) and message.origin != "bounce":
                end = self.notify(message, end + 0.01)
            if not pending or expired:
                self.remove(message, end + 0.01)
                return
            backoff = min(MIN_BACKOFF * 2**attempt, MAX_BACKOFF)
            t = end + backoff * self.rng.uniform(1.0, 1.3)
            self.queue_active(message, t)
            t, attempt = t + 0.01, attempt + 1

    def expire(self, message: Message, t: float) -> float:
        text = (
            f"{message.qid}: from=<{message.sender}>, status=expired, "
            "returned to sender"
        )
        qmgr = self.proc(message.host, "postfix/qmgr")
        self.emit(
            t, message.host, qmgr, "qmgr_expired", text, (self.tally.expire, (message,))
        )
        return t

    def remove(self, message: Message, t: float) -> None:
        qmgr = self.proc(message.host, "postfix/qmgr")
        self.emit(t, message.host, qmgr, "qmgr_removed", f"{message.qid}: removed")
        self.release(message, t)

    def outcome(
        self, message: Message, rcpt: Recipient, t: float, attempt: int, first: float
    ) -> Outcome:
        """What this attempt for this recipient comes to."""
        if rcpt.transport == "lmtp":
            return self.local_outcome(message, rcpt, t, attempt)
        if rcpt.transport == "local":
            return Outcome("sent", None, "local")
        return self.remote_outcome(message, rcpt, t, attempt, first)

    def local_outcome(
        self, message: Message, rcpt: Recipient, t: float, attempt: int
    ) -> Outcome:
        """Dovecot's answer over LMTP, or none when it is down."""
        rng, host, box = self.rng, message.host, rcpt.mailbox
        assert box is not None
        if _in_windows(host.lmtp_down, t):
            key = "lmtp_refused" if rng.random() < 0.3 else "lmtp_refused_suspended"
            return Outcome("deferred", key, "none", LMTP_HOST)
        if not box.exists:
            return Outcome("bounced", "lmtp_unknown", LMTP_RELAY, LMTP_HOST)
        if box.full:
            return Outcome("bounced", "lmtp_quota_rcpt", LMTP_RELAY, LMTP_HOST)
        if box.nearly_full and message.size > 50_000:
            return Outcome(
                "bounced", "lmtp_quota_data", LMTP_RELAY, LMTP_HOST, dovecot="failed"
            )
        if attempt == 0 and rng.random() < 0.003:
            return Outcome(
                "deferred", "lmtp_temporary", LMTP_RELAY, LMTP_HOST, dovecot="error"
            )
        slow = _in_windows(host.slow_mda, t)
        transmit = rng.uniform(3.0, 9.0) if slow else rng.uniform(0.01, 0.3)
        return Outcome(
            "sent", None, LMTP_RELAY, LMTP_HOST, transmit=transmit, dovecot="saved"
        )

    def remote_outcome(
        self, message: Message, rcpt: Recipient, t: float, attempt: int, first: float
    ) -> Outcome:
        """A remote MX's answer, or why no connection was made."""
        rng, remote = self.rng, rcpt.remote
        assert remote is not None
        peer = rng.choice(remote.mx)
        if remote.nonexistent:
            return Outcome("bounced", "dns_nxdomain", "none", peer, setup=0.3)
        if remote.dead or _in_windows(remote.outages, t):
            key = "connect_timeout" if attempt == 0 else "connect_timeout_suspended"
            return Outcome("deferred", key, "none", peer, setup=30.0)
        if remote.refuses and rng.random() < 0.3:
            return Outcome("deferred", "connect_refused", "none", peer, setup=0.2)
        if attempt == 0 and rng.random() < 0.002:
            return Outcome("deferred", "dns_temporary", "none", peer, setup=5.0)
        if remote.tls_broken:
            return Outcome("deferred", "tls_not_offered", f"{peer}:25", peer, setup=0.4)
        refusal = self.remote_refusal(message, rcpt, remote, t, first)
        if refusal is not None:
            return Outcome(REPLIES[refusal].status, refusal, f"{peer}:25", peer)
        transmit = rng.uniform(0.1, 1.5)
        return Outcome("sent", None, f"{peer}:25", peer, transmit=transmit)

    def remote_refusal(
        self, message: Message, rcpt: Recipient, remote: Remote, t: float, first: float
    ) -> str | None:
        """The reply key of a connected server's refusal; None when it accepts."""
        rng = self.rng
        tenant = self.tenant(message.tenant)
        throttle = self.world.throttled(remote.provider, tenant, t)
        if throttle is not None and rng.random() < 0.7:
            return throttle
        if (
            tenant.bad_reputation
            and remote.provider == "outlook"
            and rng.random() < 0.3
        ):
            return "outlook_s3150"
        if tenant.bad_reputation and remote.provider == "icloud" and rng.random() < 0.2:
            return "icloud_blocked"
        if remote.provider == "generic" and rng.random() < 0.002:
            return "spamhaus_blocked"
        if remote.greylists and t - first < GREYLIST_DELAY:
            return "greylisted"
        if rcpt.unknown:
            return UNKNOWN_REPLY.get(remote.provider, "generic_unknown")
        if rcpt.over_quota:
            return (
                "gmail_over_quota"
                if remote.provider == "gmail"
                else "generic_over_quota"
            )
        if message.size > remote.size_limit:
            return "message_too_large"
        if rng.random() < 0.001:
            return "lost_connection"
        return None

    # ------------------------------------------------------------- pass lines

    def emit_pass(
        self, message: Message, pairs: list[tuple[Recipient, Outcome]], t: float
    ) -> float:
        """The lines of one delivery pass; returns when the last was written."""
        end = t
        lmtp = [(r, o) for r, o in pairs if r.transport == "lmtp"]
        if lmtp:
            end = self.lmtp_session(message, lmtp, t)
        by_domain: dict[str, list[tuple[Recipient, Outcome]]] = defaultdict(list)
        for rcpt, outcome in pairs:
            if rcpt.transport != "lmtp":
                by_domain[rcpt.domain].append((rcpt, outcome))
        for group in by_domain.values():
            end = max(end, self.smtp_session(message, group, t))
        return end

    def smtp_session(
        self, message: Message, pairs: list[tuple[Recipient, Outcome]], t: float
    ) -> float:
        """One smtp (or local) process delivering to one destination."""
        host = message.host
        program = (
            "postfix/local" if pairs[0][0].transport == "local" else "postfix/smtp"
        )
        proc = self.proc(host, program)
        t += self.rng.uniform(0.02, 0.3)
        first = pairs[0][1]
        if (
            program == "postfix/smtp"
            and first.relay != "none"
            and self.rng.random() < 0.6
        ):
            text = f"Verified TLS connection established to {first.relay}: {TLS_SUITE}"
            self.emit(t + first.setup, host, proc, "smtpd_event", text)
        for rcpt, outcome in pairs:
            t = self.delivery_line(message, rcpt, outcome, t, proc) + 0.001
        return t

    def lmtp_session(
        self, message: Message, pairs: list[tuple[Recipient, Outcome]], t: float
    ) -> float:
        """One LMTP transaction: Dovecot's lines and Postfix's share session IDs."""
        host = message.host
        proc = self.proc(host, "postfix/lmtp")
        if all(o.relay == "none" for _, o in pairs):
            for rcpt, outcome in pairs:
                t = self.delivery_line(message, rcpt, outcome, t + 0.01, proc)
            return t
        lmtp_pid = self.rng.choice(host.pids["dovecot-lmtp"])
        connect = f"lmtp({lmtp_pid}): Connect from 127.0.0.1"
        self.emit(t, host, "dovecot", "dovecot_connection", connect)
        base = session_id(self.rng)
        for seq, (_, outcome) in enumerate(pairs, start=1):
            # Dovecot 2.3: the first recipient has the transaction's session ID, the
            # others a ":R<n>" suffix (lmtp-recipient.c).
            outcome.session = base if seq == 1 else f"{base}:R{seq}"
        saved_at = t + 0.01
        for rcpt, outcome in pairs:
            saved_at += outcome.transmit
            if outcome.dovecot:
                self.dovecot_line(message, rcpt, outcome, lmtp_pid, saved_at)
        end = saved_at
        for rcpt, outcome in pairs:
            end = self.delivery_line(message, rcpt, outcome, end + 0.002, proc)
        text = f"lmtp({lmtp_pid}): Disconnect from 127.0.0.1: Logged out (state=READY)"
        self.emit(end + 0.002, host, "dovecot", "dovecot_connection", text)
        return end + 0.002

    def dovecot_line(
        self, message: Message, rcpt: Recipient, outcome: Outcome, pid: int, t: float
    ) -> None:
        """Dovecot's own line for one recipient of an LMTP transaction."""
        prefix = f"lmtp({rcpt.address})<{pid}><{outcome.session}>: "
        what = self.deliver_log(message, outcome)
        effect: Effect | None = None
        if outcome.dovecot == "saved":
            text = f"{prefix}{what}: saved mail to INBOX"
            effect = (self.tally.dovecot_saved, (outcome.session,))
            kind = "dovecot_delivery"
        elif outcome.dovecot == "failed":
            text = (
                f"{prefix}{what}: save failed to INBOX: Quota exceeded "
                "(mailbox for user is full)"
            )
            effect = (self.tally.dovecot_failed, (outcome.session,))
            kind = "dovecot_delivery"
        else:
            text = (
                f"{prefix}Error: Mailbox INBOX: Timeout (180s) while waiting for "
                "lock for transaction log file dovecot.index.log"
            )
            kind = "dovecot_lmtp_error"
        self.emit(t, message.host, "dovecot", kind, text, effect)

    def deliver_log(self, message: Message, outcome: Outcome) -> str:
        """The ``deliver_log_format`` part of a save line.

        Dovecot's default is ``msgid=%m``; with ``dovecot_timings`` the platform set
        ``msgid=%m, from=%{from_envelope}, size=%p, delivery_time=%{delivery_time},
        session_time=%{session_time}`` (milliseconds), as the bundled samples do.
        """
        if not self.dovecot_timings:
            return f"msgid={message.msgid}"
        size = message.size + self.rng.randint(200, 900)  # Dovecot adds headers
        delivery_ms = int(outcome.transmit * 1000 * self.rng.uniform(0.8, 0.95))
        session_ms = self.rng.randint(0, 12)
        return (
            f"msgid={message.msgid}, from={message.sender}, size={size}, "
            f"delivery_time={delivery_ms}, session_time={session_ms}"
        )

    def delivery_line(
        self, message: Message, rcpt: Recipient, outcome: Outcome, t: float, proc: str
    ) -> float:
        """One ``to=`` line; returns when it was written."""
        rng = self.rng
        setup = outcome.setup or rng.uniform(0.005, 0.05)
        transmit = outcome.transmit if outcome.status == "sent" else 0.0
        if rcpt.transport != "lmtp":
            t += setup + transmit
        total = max(t - message.arrived, setup + transmit)
        queue = rng.uniform(0.0, 0.01)
        before = max(total - queue - setup - transmit, 0.0)
        delays = "/".join(pf_delay(x) for x in (before, queue, setup, transmit))
        response, dsn = self.response(message, rcpt, outcome)
        orig = " orig_to=<root>," if rcpt.transport == "local" else ""
        text = (
            f"{message.qid}: to=<{rcpt.address}>,{orig} relay={outcome.relay}, "
            f"delay={pf_delay(total)}, delays={delays}, dsn={dsn}, "
            f"status={outcome.status} ({response})"
        )
        cause = REPLIES[outcome.reply].cause if outcome.reply else None
        saved = outcome.session if outcome.dovecot == "saved" else None
        effect = (self.tally.attempt, (rcpt, outcome.status, cause, saved))
        if outcome.reply in CONNECT_FAILURES:
            # Postfix logs each failed connection before the recipient's line.
            self.emit(t, message.host, proc, "smtpd_event", response)
        self.emit(t, message.host, proc, "delivery", text, effect)
        return t

    def response(
        self, message: Message, rcpt: Recipient, outcome: Outcome
    ) -> tuple[str, str]:
        """The parenthesised response and the dsn of a ``to=`` line."""
        if outcome.reply is not None:
            reply = REPLIES[outcome.reply]
            text = reply.render(
                rcpt=rcpt.address,
                domain=rcpt.domain,
                relay=outcome.peer,
                ip=message.host.ip,
            )
            return text, reply.dsn
        if rcpt.transport == "lmtp":
            return f"250 2.0.0 <{rcpt.address}> {outcome.session} Saved", "2.0.0"
        if rcpt.transport == "local":
            return "delivered to mailbox", "2.0.0"
        provider = rcpt.remote.provider if rcpt.remote else "generic"
        n = self.rng.getrandbits(32)
        text = SENT_TEXTS.get(provider, SENT_TEXTS["generic"]).format(
            stamp=self.epoch + n % 1_000_000,
            n=n,
            msgid=message.msgid[1:-1],
            size=message.size,
            qid=f"{n:X}",
        )
        return text, "2.6.0" if provider == "outlook" else "2.0.0"

    def notify(self, message: Message, t: float) -> float:
        """bounce(8) sends the sender a non-delivery notification, a new message."""
        host = message.host
        domain = message.sender.rpartition("@")[2]
        owner = self.world.by_domain.get(domain)
        if owner is not None:
            rcpt = self.local_recipient(Mailbox(message.sender, domain, owner))
        else:
            remote = self.remotes.get(domain) or Remote(
                domain, "generic", [f"mx.{domain}[198.51.100.77]"]
            )
            rcpt = Recipient(message.sender, domain, UNASSIGNED, "smtp", remote=remote)
        notice = self.new_message(host, t, "", "bounce", owner or UNASSIGNED, [rcpt])
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(self.epoch + t))
        notice.msgid = f"<{stamp}.{notice.qid}@{host.fqdn}>"
        notice.size = 2_500 + min(message.size, 50_000)
        cleanup = self.proc(host, "postfix/cleanup")
        text = f"{notice.qid}: message-id={notice.msgid}"
        self.emit(t, host, cleanup, "cleanup_message_id", text)
        self.queue_active(notice, t + 0.01)
        text = f"{message.qid}: sender non-delivery notification: {notice.qid}"
        bounce = self.proc(host, "postfix/bounce")
        self.emit(
            t + 0.02,
            host,
            bounce,
            "notification",
            text,
            (self.tally.notified, (notice,)),
        )
        self.deliver(notice, t + 0.03)
        return t + 0.02

    # -------------------------------------------------------- refused sessions

    def spam_session(self, ts: float) -> None:
        """A client that only gets refused: at postscreen or by smtpd restrictions."""
        rng = self.rng
        host = self.host()
        tenant = rng.choice(self.world.tenants)
        box = rng.choice(tenant.mailboxes)
        ip = self.ip()
        domain = rng.choice(("mail.ru", "qq.com", "example.biz"))
        sender = f"{rng.choice(FIRST_NAMES)}{rng.randint(1, 99999)}@{domain}"
        refusal = Refusal("spamhaus", f"unknown[{ip}]", ip, sender, box.address, "")
        roll = rng.random()
        if roll < 0.4:
            self.postscreen_block(host, ts, refusal)
        elif roll < 0.5:
            refusal.what, refusal.helo = "protocol", "ylmf-pc"
            self.postscreen_pregreet(host, ts, refusal)
        else:
            self.smtpd_refusal(host, ts, refusal, tenant, roll)

    def postscreen_block(self, host: Host, t: float, refusal: Refusal) -> None:
        """A blocklisted client: postscreen's dummy SMTP engine refuses it."""
        proc = self.proc(host, "postfix/postscreen")
        peer = f"[{refusal.ip}]:{self.rng.randint(20000, 65000)}"
        refusal.helo = f"[{refusal.ip}]"
        self.emit(t, host, proc, "postscreen", f"CONNECT from {peer} to [{host.ip}]:25")
        listed = (
            f"addr {refusal.ip} listed by domain zen.spamhaus.org as "
            f"127.0.0.{self.rng.choice((2, 3, 4, 11))}"
        )
        dnsblog = self.proc(host, "postfix/dnsblog")
        self.emit(t + 0.01, host, dnsblog, "postscreen", listed)
        rank = f"DNSBL rank {self.rng.randint(2, 6)} for {peer}"
        self.emit(t + 6.0, host, proc, "postscreen", rank)
        self.reject(host, t + 6.5, proc, refusal)
        self.emit(t + 6.6, host, proc, "postscreen", f"DISCONNECT {peer}")

    def postscreen_pregreet(self, host: Host, t: float, refusal: Refusal) -> None:
        """A client that talks before its turn: postscreen refuses it."""
        proc = self.proc(host, "postfix/postscreen")
        peer = f"[{refusal.ip}]:{self.rng.randint(20000, 65000)}"
        self.emit(t, host, proc, "postscreen", f"CONNECT from {peer} to [{host.ip}]:25")
        text = f"PREGREET 14 after 0.08 from {peer}: EHLO ylmf-pc\\r\\n"
        self.emit(t + 0.08, host, proc, "postscreen", text)
        self.reject(host, t + 1.2, proc, refusal)
        self.emit(t + 1.3, host, proc, "postscreen", f"DISCONNECT {peer}")

    def smtpd_refusal(
        self, host: Host, t: float, refusal: Refusal, tenant: Tenant, roll: float
    ) -> None:
        """A client that passes postscreen and meets smtpd's restrictions."""
        rng = self.rng
        t = self.postscreen_pass(host, t, refusal.ip)
        proc = self.proc(host, "postfix/smtpd")
        if roll < 0.75 and tenant.validates:
            refusal.client = f"mail{rng.randint(1, 99)}.example.biz[{refusal.ip}]"
            local = f"nobody{rng.randint(1, 999)}"
            refusal.rcpt = f"{local}@{refusal.rcpt.rpartition('@')[2]}"
            refusal.what = "unknown_user"
        elif roll < 0.85:
            refusal.rcpt, refusal.what = (
                f"someone@{self.world.remote_for().domain}",
                "relay",
            )
        elif roll < 0.95:
            text = (
                f"warning: hostname mta{rng.randint(1, 99)}.example.biz does not "
                f"resolve to address {refusal.ip}: Name or service not known"
            )
            self.emit(t, host, proc, "smtpd_event", text)
            refusal.what = "no_rdns"
        else:
            refusal.what = "helo"
            refusal.helo = f"WIN-{rng.getrandbits(40):010X}"
        if not refusal.helo:
            unknown = refusal.client.startswith("unknown")
            refusal.helo = "localhost" if unknown else refusal.client.partition("[")[0]
        t = self.smtpd_connect(host, t + 0.01, proc, refusal.client, tls=False)
        self.reject(host, t, proc, refusal)
        counts = Commands(tls=False, rcpt_ok=0, rcpt_tried=1)
        self.smtpd_disconnect(host, t + 0.1, proc, refusal.client, counts)

    def nuisance_session(self, ts: float) -> None:
        """SASL guessing, dropped connections, statistics and cron noise."""
        rng = self.rng
        host = self.host()
        ip = self.ip()
        roll = rng.random()
        if roll < 0.35:
            self.sasl_guess(host, ts, f"unknown[{ip}]")
        elif roll < 0.7:
            self.dropped(host, ts, f"unknown[{ip}]", http=roll >= 0.6)
        elif roll < 0.85:
            self.statistics(host, ts, ip)
        else:
            text = "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)"
            self.emit(ts, host, self.proc(host, "CRON"), "unparsed", text)

    def sasl_guess(self, host: Host, t: float, client: str) -> None:
        proc = self.proc(host, "postfix/submission/smtpd")
        self.smtpd_connect(host, t, proc, client, tls=False)
        user = self.rng.choice(("admin", "info", "test", "alice"))
        text = (
            f"warning: {client}: SASL LOGIN authentication failed: "
            f"(reason unavailable), sasl_username={user}"
        )
        self.emit(t + 2.0, host, proc, "smtpd_event", text)
        text = f"lost connection after AUTH from {client}"
        self.emit(t + 2.1, host, proc, "smtpd_event", text)
        text = f"disconnect from {client} ehlo=1 auth=0/1 commands=1/2"
        self.emit(t + 2.2, host, proc, "smtpd_disconnect", text)

    def dropped(self, host: Host, t: float, client: str, *, http: bool) -> None:
        """A client that goes away: after CONNECT, mid-TLS, or speaking HTTP."""
        proc = self.proc(host, "postfix/smtpd")
        self.smtpd_connect(host, t, proc, client, tls=False)
        if self.rng.random() < 0.3:
            text = (
                "warning: TLS library problem: error:0A000126:SSL routines::unexpected "
                "eof while reading:../ssl/record/rec_layer_s3.c:317:"
            )
            self.emit(t + 0.15, host, proc, "severity", text)
        if http:
            text = f"warning: non-SMTP command from {client}: GET / HTTP/1.1"
            self.emit(t + 0.2, host, proc, "smtpd_event", text)
            last = f"disconnect from {client} unknown=0/1 commands=0/1"
        else:
            text = f"lost connection after CONNECT from {client}"
            self.emit(t + 0.2, host, proc, "smtpd_event", text)
            last = f"disconnect from {client} commands=0"
        self.emit(t + 0.21, host, proc, "smtpd_disconnect", last)

    def statistics(self, host: Host, t: float, ip: str) -> None:
        """anvil's statistics lines (anvil_status_update_time)."""
        proc = self.proc(host, "postfix/anvil")
        at = "at " + time.strftime("%b %e %H:%M:%S", time.gmtime(self.epoch + t - 300))
        rate = self.rng.randint(1, 9)
        self.emit(
            t,
            host,
            proc,
            "info",
            f"statistics: max connection rate {rate}/60s for (smtp:{ip}) {at}",
        )
        count = self.rng.randint(1, 4)
        self.emit(
            t,
            host,
            proc,
            "info",
            f"statistics: max connection count {count} for (smtp:{ip}) {at}",
        )
        size = self.rng.randint(2, 40)
        self.emit(t, host, proc, "info", f"statistics: max cache size {size} {at}")

    def imap_session(self, ts: float) -> None:
        """A Dovecot IMAP login and logout, or a failed login."""
        rng = self.rng
        host = self.host()
        user = rng.choice(rng.choice(self.world.tenants).mailboxes).address
        sess = session_id(rng)[:16]
        pid = rng.choice(host.pids["dovecot-imap"])
        rip = self.ip()
        where = f"rip={rip}, lip={host.ip}"
        if rng.random() < 0.2:
            text = (
                "imap-login: Disconnected: Connection closed (auth failed, 1 attempts "
                f"in 2 secs): user=<{user}>, method=PLAIN, {where}, TLS, "
                f"session=<{sess}>"
            )
            self.emit(ts, host, "dovecot", "dovecot_auth", text)
            return
        text = (
            f"imap-login: Login: user=<{user}>, method=PLAIN, {where}, mpid={pid}, "
            f"TLS, session=<{sess}>"
        )
        self.emit(ts, host, "dovecot", "dovecot_auth", text)
        text = (
            f"imap({user})<{pid}><{sess}>: Logged out in={rng.randint(50, 5000)} "
            f"out={rng.randint(500, 900000)} deleted=0 expunged=0 trashed=0 "
            "hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0"
        )
        self.emit(ts + rng.uniform(5, 600), host, "dovecot", "dovecot_connection", text)


# -------------------------------------------------------------------- the writer

MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


class Stamps:
    """Traditional syslog timestamps (``Dec  3 16:00:56``), one format per second."""

    def __init__(self, start: datetime) -> None:
        self.base = calendar.timegm(start.timetuple())
        self.second = -1
        self.text = ""

    def __call__(self, ts: float) -> str:
        second = int(ts)
        if second != self.second:
            tm = time.gmtime(self.base + second)
            self.second = second
            self.text = (
                f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
                f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
            )
        return self.text


def generate(
    path: str | Path,
    lines: int,
    seed: int,
    hosts: int = 2,
    domains: int = 300,
    *,
    tenants: int = 6,
    year: int = 2026,
    start: datetime | None = None,
    sessions_per_second: float = 5.0,
    queue_lifetime: float = 3600.0,
    long_queue_ids: bool = False,
    dovecot_timings: bool = True,
) -> Truth:
    """Write ``lines`` log lines to ``path`` with its truth and tenants files.

    ``sessions_per_second`` sets how busy the platform is (about 13 lines a
    session), ``queue_lifetime`` plays Postfix's ``maximal_queue_lifetime`` (short, as
    a transactional platform sets it, so that expiries fit in the file), and
    ``long_queue_ids`` makes the second host use ``enable_long_queue_ids`` and
    ``dovecot_timings`` adds Dovecot's timings to its save lines.
    """
    path = Path(path)
    rng = random.Random(seed)
    begin = start or datetime(year, 12, 3, 8, 0, 0)
    horizon = lines / (sessions_per_second * 8) + 3 * queue_lifetime + 3600
    world = World(
        rng,
        hosts=hosts,
        tenants=tenants,
        domains=domains,
        horizon=horizon,
        long_queue_ids=long_queue_ids,
    )
    tally = Tally()
    epoch = calendar.timegm(begin.timetuple())
    planner = Planner(
        world, tally, rng, sessions_per_second, queue_lifetime, epoch, dovecot_timings
    )
    last = _write(path, lines, planner, tally, Stamps(begin))
    generator = {
        "seed": seed,
        "lines": lines,
        "hosts": [h.name for h in world.hosts],
        "tenants": [t.name for t in world.tenants],
        "start": begin.isoformat(),
        "end": _iso(begin, last),
        "queue_lifetime_seconds": queue_lifetime,
        "sessions_per_second": sessions_per_second,
        "long_queue_ids": long_queue_ids,
        "dovecot_timings": dovecot_timings,
    }
    truth = tally.summarise(generator, lines)
    Path(f"{path}.truth.json").write_text(truth.to_json() + "\n")
    Path(f"{path}.tenants.toml").write_text(tenants_toml(world))
    return truth


def _iso(begin: datetime, offset: float) -> str:
    stamp = calendar.timegm(begin.timetuple()) + int(offset)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))


def _write(
    path: Path, lines: int, planner: Planner, tally: Tally, stamp: Stamps
) -> float:
    """Pop lines in time order and write exactly ``lines`` of them."""
    heap = planner.heap
    kinds, programs = tally.kinds, tally.programs
    planner.arrival(0.0)
    written = 0
    ts = 0.0
    buffer: list[str] = []
    with path.open("w", encoding="utf-8") as out:
        while written < lines:
            ts, _, head, program, text, kind, effect = heapq.heappop(heap)
            if kind is None:
                planner.next_session(ts)
                continue
            buffer.append(f"{stamp(ts)} {head}{text}\n")
            written += 1
            kinds[kind] += 1
            programs[program] += 1
            if effect is not None:
                effect[0](*effect[1])
            if len(buffer) >= 65536:
                out.writelines(buffer)
                buffer.clear()
        out.writelines(buffer)
    return ts


def tenants_toml(world: World) -> str:
    """The tenants in the ``[tenants.*]`` shape of issue 2."""
    blocks = []
    for tenant in world.tenants:
        quoted = ", ".join(f'"{p}"' for p in tenant.patterns)
        senders = f'"{tenant.domains[0]}"'
        sasl = ", ".join(f'"{u}"' for u in tenant.sasl_users)
        blocks.append(
            f"[tenants.{tenant.name}]\ndomains = [{quoted}]\n"
            f"senders = [{senders}]\nsasl_users = [{sasl}]\n"
        )
    return "\n".join(blocks)


def main(argv: list[str] | None = None) -> None:
    """Command line: write the log, its truth and tenants; print a one-line summary."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("path", nargs="?", help="the log to write")
    cli.add_argument("--out", help="the log to write (same as PATH)")
    cli.add_argument("--lines", type=int, default=1_000_000)
    cli.add_argument("--seed", type=int, default=1)
    cli.add_argument("--hosts", type=int, default=2)
    cli.add_argument("--domains", type=int, default=300)
    cli.add_argument("--tenants", type=int, default=6)
    cli.add_argument("--year", type=int, default=2026)
    cli.add_argument("--start", type=datetime.fromisoformat, default=None)
    cli.add_argument("--sessions-per-second", type=float, default=5.0)
    cli.add_argument("--queue-lifetime", type=float, default=3600.0)
    cli.add_argument("--long-queue-ids", action="store_true")
    cli.add_argument(
        "--plain-dovecot-log",
        action="store_true",
        help="Dovecot's default deliver_log_format (no timings)",
    )
    args = cli.parse_args(argv)
    target = args.path or args.out
    if not target:
        cli.error("give the log's path (PATH or --out)")
    began = time.perf_counter()
    truth = generate(
        target,
        args.lines,
        args.seed,
        args.hosts,
        args.domains,
        tenants=args.tenants,
        year=args.year,
        start=args.start,
        sessions_per_second=args.sessions_per_second,
        queue_lifetime=args.queue_lifetime,
        long_queue_ids=args.long_queue_ids,
        dovecot_timings=not args.plain_dovecot_log,
    )
    seconds = time.perf_counter() - began
    totals = truth.totals
    print(
        f"{target}: {args.lines} lines in {seconds:.1f}s, "
        f"{totals['messages_received']} messages, {totals['recipients']} recipients",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
