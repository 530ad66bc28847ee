"""Name the cause of every delivery, reject and Dovecot save that did not succeed.

The causes are a public contract (API, metrics, triage): ``CAUSES`` lists them in their
published order. The rules that pick a cause are data: ordered tables of ``Rule`` rows,
tried top to bottom, where the first row that matches names the cause. Each row carries
a real response in a comment beside it, and the tests hold one case per row.

How a row matches: every matcher it sets must hold (``statuses``, ``codes``, ``dsn``,
``remote``, ``words``, ``pattern``); inside one matcher any listed value will do.
``words`` are lower-case substrings, checked before the regular expression because a
substring test is far cheaper and the classifier runs on every non-success line.

Temporary or permanent: a row may fix it; otherwise the class digit of the enhanced
status code decides (RFC 3463: 4 transient, 5 permanent), then the first digit of the
SMTP reply code (RFC 5321 section 4.2.1), then the status (``deferred`` is temporary,
``bounced`` and ``expired`` are permanent).

The text a caller passes may be the whole parenthesised Postfix response
(``host mx.example[192.0.2.1] said: 550 5.1.1 ... (in reply to RCPT TO command)``) or
only the remote server's words; the part after ``said:`` is what the words and patterns
see, so a relay's host name cannot trigger a rule. When the caller has no SMTP code or
enhanced code, they are read from the start of the reply.

Decisions a reader would otherwise have to guess:
- ``lost connection with ...`` and ``conversation with ... timed out`` are
  ``connection_timeout``: Postfix gives both the X.4.2 "bad connection" status, the
  session broke after it began, and the remedy (network path, remote load, timeouts)
  is the same.
- LMTP ``connect to 127.0.0.1[127.0.0.1]:24: Connection refused`` is
  ``connection_refused``, not ``mda_temporary_error``: nothing was listening, and the
  transport (``lmtp``) already says that the peer was the MDA. ``mda_temporary_error``
  is kept for an MDA that answered with a temporary failure.
- A provider that temporarily limits our sending rate is ``remote_throttling`` even
  when it blames reputation (Gmail 4.7.28, Microsoft 4.7.650); a refusal or a
  complaint-based deferral (Yahoo TS01/TSS04, blocklists) is ``policy_rejected``.
- ``421 ... try again later`` is ``remote_throttling`` (a 421 closes the session, which
  is what rate limiters do); ``450``/``451 ... try again later`` is ``greylisting``.
- A smarthost refusing our SASL credentials is ``relay_denied``: it will not relay for
  us, and the remedy is the relay credentials, like any other relay refusal.
- A domain that publishes a null MX (RFC 7505) is ``unknown_recipient``: its
  addresses cannot receive mail, and DNS did not fail.
- ``No route to host`` and ``Network is unreachable`` are ``connection_timeout``: like
  a silent drop, they point at the network path, not at a server that refused.
- In ``classify_reject`` our own connection and rate limits (postscreen's
  ``too many connections``) are ``policy_rejected``; ``remote_throttling`` is reserved
  for remote servers that limit us.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, NamedTuple

CAUSES: tuple[str, ...] = (
    "quota_exceeded",
    "unknown_recipient",
    "mailbox_disabled",
    "remote_throttling",
    "greylisting",
    "policy_rejected",
    "relay_denied",
    "dns_failure",
    "connection_refused",
    "connection_timeout",
    "tls_failure",
    "message_too_large",
    "mda_temporary_error",
    "expired",
    "other",
)

# Statuses that are not failures: a sent delivery, and a successful address
# verification probe (Postfix logs probes as ``deliverable``/``undeliverable``).
_SUCCESS: Final = frozenset({"sent", "deliverable"})
_TEMPORARY_STATUSES: Final = frozenset({"deferred", "softbounce", "SOFTBOUNCE"})

# Remote replies are at most a few hundred characters (RFC 5321 section 4.5.3.1.5
# limits a reply line to 512 octets); longer texts are cut before matching so that
# pathological input costs no more than a real reply.
_MAX_TEXT: Final = 2048

# No leading \b: a literal prefix lets the regex engine skip ahead with a fast search.
_HOST_SAID: Final = re.compile(r"host \S+ (?:said|refused to talk to me): ")
_REPLY_CODES: Final = re.compile(
    r"([245]\d\d)(?:[ -]+#?([245]\.\d{1,3}\.\d{1,3})\b)?"
    r"|#?([245]\.\d{1,3}\.\d{1,3})\b"
)


class Classification(NamedTuple):
    """The cause of one failure and whether a retry may still succeed."""

    cause: str
    temporary: bool


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of a cause table.

    ``dsn`` entries match an enhanced status code by whole components: ``"5.7"``
    matches ``5.7.1`` and ``5.7.26``, ``"5.1.1"`` does not match ``5.1.10``; a leading
    ``X.`` stands for both classes 4 and 5. ``remote`` is True when the row needs a
    remote SMTP reply code, False when it reads only Postfix's own texts.
    """

    name: str
    cause: str
    words: tuple[str, ...] = ()
    pattern: str | None = None
    dsn: tuple[str, ...] = ()
    codes: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    remote: bool | None = None
    temporary: bool | None = None


class _Check(NamedTuple):
    """The matchers of one rule other than its words, compiled."""

    statuses: frozenset[str]
    codes: frozenset[int]
    dsn: frozenset[str]
    regex: re.Pattern[str] | None


class RuleTable:
    """An ordered table of rules, compiled once; the first matching rule wins.

    The table is flattened into (word, rule) entries in rule order, one per word (or
    one without a word for a rule that has none): the first entry whose word occurs
    and whose other matchers hold is the first matching rule. The loop then costs one
    substring test per word, which keeps a line that matches nothing cheap. There are
    two flat lists, for texts with and without a remote reply code.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        for rule in self.rules:
            _check_rule(rule)
        self._remote = _flatten(r for r in self.rules if r.remote is not False)
        self._local = _flatten(r for r in self.rules if r.remote is not True)

    def first(
        self, status: str, dsn: str | None, smtp_code: int | None, text: str
    ) -> Rule | None:
        """The first rule that matches, or None when none does."""
        reply, dsn, smtp_code = _split_reply(text, dsn, smtp_code)
        return self._first(status, dsn, smtp_code, reply.lower())

    def classify(
        self, status: str, dsn: str | None, smtp_code: int | None, text: str
    ) -> Classification:
        """The cause and flag the first matching rule gives; ``other`` when none."""
        reply, dsn, smtp_code = _split_reply(text, dsn, smtp_code)
        rule = self._first(status, dsn, smtp_code, reply.lower())
        cause = rule.cause if rule is not None else "other"
        if rule is not None and rule.temporary is not None:
            return Classification(cause, rule.temporary)
        return Classification(cause, _temporary(status, dsn, smtp_code))

    def _first(
        self, status: str, dsn: str | None, code: int | None, low: str
    ) -> Rule | None:
        entries = self._local if code is None else self._remote
        prefixes = _dsn_prefixes(dsn)
        for word, check, rule in entries:
            if word is not None and word not in low:
                continue
            if check is None or _holds(check, status, code, prefixes, low):
                return rule
        return None


def _check_rule(rule: Rule) -> None:
    if rule.cause not in CAUSES:
        raise ValueError(f"rule {rule.name!r} names unknown cause {rule.cause!r}")
    if any(word != word.lower() for word in rule.words):
        raise ValueError(f"rule {rule.name!r} has words that are not lower case")
    if rule.pattern is not None and not rule.words:
        raise ValueError(f"rule {rule.name!r} has a pattern but no words to gate it")


def _flatten(
    rules: Iterable[Rule],
) -> tuple[tuple[str | None, _Check | None, Rule], ...]:
    entries: list[tuple[str | None, _Check | None, Rule]] = []
    for rule in rules:
        check = _compile(rule)
        words: tuple[str | None, ...] = rule.words or (None,)
        entries.extend((word, check, rule) for word in words)
    return tuple(entries)


def _compile(rule: Rule) -> _Check | None:
    if not (rule.statuses or rule.codes or rule.dsn or rule.pattern):
        return None
    prefixes: set[str] = set()
    for entry in rule.dsn:
        if entry[:2] == "X.":
            prefixes.update(("4" + entry[1:], "5" + entry[1:]))
        else:
            prefixes.add(entry)
    regex = re.compile(rule.pattern, re.IGNORECASE) if rule.pattern else None
    return _Check(
        frozenset(rule.statuses), frozenset(rule.codes), frozenset(prefixes), regex
    )


def _holds(
    check: _Check, status: str, code: int | None, prefixes: frozenset[str], low: str
) -> bool:
    if check.statuses and status not in check.statuses:
        return False
    if check.codes and code not in check.codes:
        return False
    if check.dsn and check.dsn.isdisjoint(prefixes):
        return False
    return check.regex is None or check.regex.search(low) is not None


@lru_cache(maxsize=1024)
def _dsn_prefixes(dsn: str | None) -> frozenset[str]:
    """``5.7.26`` -> {``5``, ``5.7``, ``5.7.26``}: what a rule's DSN entry may equal."""
    if not dsn:
        return frozenset()
    parts = dsn.split(".", 2)
    return frozenset(".".join(parts[:n]) for n in range(1, len(parts) + 1))


def _split_reply(
    text: str, dsn: str | None, code: int | None
) -> tuple[str, str | None, int | None]:
    """The remote reply inside a Postfix response, with codes read from it if absent."""
    reply = text[:_MAX_TEXT]
    if dsn is not None:
        dsn = dsn[:16]  # a real one is at most 9 characters ("5.123.456")
    said = _HOST_SAID.search(reply)
    if said is not None:
        reply = reply[said.end() :]
    if code is None or dsn is None:
        m = _REPLY_CODES.match(reply)
        if m is not None:
            if code is None and m.group(1):
                code = int(m.group(1))
            if dsn is None:
                dsn = m.group(2) or m.group(3)
    return reply, dsn, code


def _temporary(status: str, dsn: str | None, code: int | None) -> bool:
    if dsn and dsn[0] in "45" and dsn[1:2] == ".":
        return dsn[0] == "4"
    if code is not None and 400 <= code < 600:
        return code < 500
    return status in _TEMPORARY_STATUSES


# --------------------------------------------------------------------------- rows
# Groups of rows, composed into the three tables at the end of the module. Within a
# table, specific texts come first, then enhanced status codes, then weak words.

_EXPIRY = (
    # qmgr: "4AB3C1A2B3: from=<a@acme.example>, status=expired, returned to sender";
    # the recipients still deferred at that moment expire with the message.
    Rule("status-expired", "expired", statuses=("expired",), temporary=False),
)

_POSTFIX_OWN = (
    # "Domain example.com does not accept mail (nullMX)" (RFC 7505 null MX)
    Rule("null-mx", "unknown_recipient", words=("(nullmx)",), temporary=False),
    # "Host or domain name not found. Name service error for name=example.org
    # type=MX: Host not found, try again"
    Rule(
        "postfix-dns-lookup",
        "dns_failure",
        words=("host or domain name not found", "name service error"),
        remote=False,
    ),
    # "connect to mx.example.org[198.51.100.7]:25: Connection refused";
    # LMTP: "delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:24:
    # Connection refused"
    Rule(
        "connect-refused",
        "connection_refused",
        words=("connection refused",),
        remote=False,
    ),
    # "connect to private/dovecot-lmtp[private/dovecot-lmtp]: No such file or directory"
    Rule(
        "connect-socket-missing",
        "connection_refused",
        words=("no such file or directory",),
        pattern=r"connect to \S+: no such file",
        remote=False,
    ),
    # "connect to mx.example.org[198.51.100.7]:25: Connection timed out"
    Rule(
        "connect-timed-out",
        "connection_timeout",
        words=("connection timed out",),
        remote=False,
    ),
    # "conversation with mx.example.org[198.51.100.7] timed out while receiving the
    # initial server greeting"
    Rule(
        "conversation-timed-out",
        "connection_timeout",
        words=("timed out while",),
        remote=False,
    ),
    # "TLS is required, but was not offered by host mx.example.org[198.51.100.7]"
    # "Cannot start TLS: handshake failure"
    # "Server certificate not verified"
    Rule(
        "postfix-tls",
        "tls_failure",
        words=(
            "tls is required",
            "cannot start tls",
            "certificate verification failed",
            "server certificate not",
            "handshake failed",
            "handshake failure",
        ),
        remote=False,
    ),
    # "lost connection with mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO"
    # "connect to mx.example.org[198.51.100.7]:25: No route to host"
    Rule(
        "lost-connection",
        "connection_timeout",
        words=(
            "lost connection with",
            "connection reset",
            "no route to host",
            "network is unreachable",
        ),
        remote=False,
    ),
    # "delivery temporarily suspended: SASL authentication failed; server
    # smtp.relay.example[192.0.2.25] said: 535 5.7.8 Error: authentication failed"
    Rule("relay-sasl-failed", "relay_denied", words=("sasl authentication failed",)),
)

_PROVIDERS = (
    # Gmail: "421-4.7.28 [203.0.113.5 15] Our system has detected an unusual rate of
    # unsolicited mail originating from your IP address. To protect our users from
    # spam, mail sent from your IP address has been temporarily rate limited. ..."
    Rule("gmail-4.7.28-rate-limited", "remote_throttling", dsn=("4.7.28",)),
    # Gmail: "550-5.7.28 [203.0.113.5 1] Our system has detected an unusual rate of
    # unsolicited mail originating from your IP address. ... has been blocked."
    Rule("gmail-5.7.28-blocked", "policy_rejected", dsn=("5.7.28",)),
    # Gmail: "550-5.7.26 This mail has been blocked because the sender is
    # unauthenticated. Gmail requires all senders to authenticate with either SPF or
    # DKIM." (4.7.26/4.7.27/5.7.27 are the same family: SPF, DKIM, DMARC)
    Rule("gmail-unauthenticated", "policy_rejected", dsn=("X.7.26", "X.7.27")),
    # Gmail: "450-4.2.1 The user you are trying to contact is receiving mail at a
    # rate that prevents additional messages from being delivered."
    Rule(
        "gmail-recipient-rate",
        "remote_throttling",
        words=("receiving mail at a rate", "receiving mail too quickly"),
    ),
    # Microsoft: "451 4.7.650 The mail server [203.0.113.5] has been temporarily rate
    # limited due to IP reputation. For e-mail delivery information, see
    # https://postmaster.live.com (S775)"
    Rule("outlook-4.7.650-rate-limited", "remote_throttling", dsn=("4.7.650",)),
    # Microsoft: "451 4.7.500 Server busy. Please try again later from [203.0.113.5].
    # (S77714) [DB5EUR03FT029.eop-EUR03.prod.protection.outlook.com]"
    Rule(
        "outlook-server-busy",
        "remote_throttling",
        dsn=("4.7.500",),
        words=("server busy",),
    ),
    # Microsoft: "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent.
    # Please contact your Internet service provider since part of their network is
    # on our block list (S3150)."
    Rule(
        "outlook-block-list",
        "policy_rejected",
        words=("(s3",),
        pattern=r"\(s3\d{3}\)",
    ),
    # Microsoft: "550 5.7.708 Service unavailable. Access denied, traffic not
    # accepted from this IP."; "550 5.7.606 Access denied, banned sending IP"
    Rule("outlook-5.7.7xx-6xx", "policy_rejected", dsn=("5.7.708", "5.7.606")),
    # Microsoft: "550 5.7.511 Access denied, banned sender[203.0.113.5]. To request
    # removal from this list please forward this message to delist@..."
    Rule(
        "outlook-banned-sender",
        "policy_rejected",
        words=("banned sender", "banned sending ip"),
    ),
    # Microsoft Directory Based Edge Blocking: "550 5.4.1 Recipient address rejected:
    # Access denied. AS(201806281)"
    Rule(
        "outlook-dbeb-unknown",
        "unknown_recipient",
        dsn=("5.4.1",),
        words=("recipient address rejected: access denied",),
    ),
    # outlook.com for an address that does not exist: "550 5.5.0 Requested action
    # not taken: mailbox unavailable (S2017062302). [AM4PEPF00027A6C.eurprd04.prod
    # .outlook.com]"
    Rule("outlook-s2017062302", "unknown_recipient", words=("(s2017062302)",)),
    # Microsoft: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient
    # nobody@contoso.example not found by SMTP address lookup"
    Rule(
        "outlook-recipient-not-found", "unknown_recipient", words=("recipientnotfound",)
    ),
    # Microsoft: "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain"
    Rule("outlook-5.7.54-relay", "relay_denied", dsn=("5.7.54",)),
    # Yahoo: "421 4.7.0 [TS03] All messages from 203.0.113.5 will be permanently
    # deferred; Retrying will NOT succeed. See https://senders.yahooinc.com/..."
    Rule("yahoo-ts03", "policy_rejected", words=("[ts03]",), temporary=False),
    # Yahoo: "421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred due to
    # unexpected volume or user complaints - 4.16.55.1; see
    # https://postmaster.yahooinc.com/error-codes"; also [TS01], [TS02]
    Rule(
        "yahoo-complaints",
        "policy_rejected",
        words=("[ts",),
        pattern=r"\[tss?0\d\]",
    ),
    # Yahoo: "421 4.7.0 [GL01] Message from (203.0.113.5) temporarily deferred -
    # 4.16.50. Please refer to https://senders.yahooinc.com/error-codes"
    Rule("yahoo-gl01", "greylisting", words=("[gl01]",)),
    # Yahoo: "553 5.7.1 [BL21] Connections will not be accepted from 203.0.113.5,
    # because the ip is in Spamhaus's list; see https://senders.yahooinc.com/..."
    Rule(
        "yahoo-blocklist",
        "policy_rejected",
        words=("[bl",),
        pattern=r"\[bl\d\d\]",
    ),
    # Yahoo: "554 delivery error: dd This user doesn't have a yahoo.com account
    # (nobody@yahoo.com) [0] - mta1234.mail.bf1.yahoo.com"
    Rule("yahoo-no-account", "unknown_recipient", words=("doesn't have a",)),
    # Yahoo: "554 delivery error: dd Sorry your message to nobody@yahoo.com cannot be
    # delivered. This mailbox is disabled (554.30)."
    Rule("yahoo-mailbox-disabled", "mailbox_disabled", words=("mailbox is disabled",)),
    # Apple iCloud: "554 5.7.1 [CS01] Message rejected due to local policy. Please
    # visit https://support.apple.com/en-us/HT204137"; [HM08] for reputation
    Rule(
        "icloud-policy",
        "policy_rejected",
        words=("[cs", "[hm"),
        pattern=r"\[(?:cs|hm)\d\d\]",
    ),
    # iCloud through Proofpoint: "host mx02.mail.icloud.com[17.57.152.14] refused to
    # talk to me: 554 5.7.0 Blocked - see https://support.proofpoint.com/
    # dnsbl-lookup.cgi?ip=203.0.113.5"
    Rule(
        "proofpoint-blocked",
        "policy_rejected",
        words=("proofpoint.com", "dnsbl-lookup"),
    ),
    # GMX / Web.de (Nemesis): "554-gmx.net (mxgmx017) Nemesis ESMTP Service not
    # available 554-No SMTP service 554-IP address is block listed. 554 For
    # explanation visit https://www.gmx.net/mail/senderguidelines?ip=...&c=bl"
    Rule("gmx-webde-nemesis", "policy_rejected", words=("nemesis esmtp",)),
    # T-Online: "554 IP=203.0.113.5 - A problem occurred. (Ask your postmaster for
    # help or to contact tosa@rx.t-online.de to clarify.) (BL)"
    Rule("t-online-blocked", "policy_rejected", words=("tosa@rx.t-online.de",)),
    # NetEase (163.com): "451 DT:SPM 163 mx40,WsCowAAnEhlCoEVa5GjcAA--.20089S3
    # 1514512452, please try again 15min later"
    Rule("netease-spam", "policy_rejected", words=("dt:spm",)),
    # Mimecast: "550 csi.mimecast.org Poor Reputation Sender. -
    # https://community.mimecast.com/docs/DOC-1369#550 [EM-f6hnWN9maa42OLPquOA.us166]"
    Rule("mimecast-reputation", "policy_rejected", words=("mimecast",)),
)

_SENDING_LIMITS = (
    # Gmail SMTP relay (our smarthost): "550 5.4.5 Daily user sending quota
    # exceeded. https://support.google.com/mail/?p=DailyLimit"
    Rule(
        "smarthost-sending-limit",
        "remote_throttling",
        words=("sending quota", "sending limit", "daily limit"),
    ),
)

_QUOTA = (
    # Dovecot over LMTP: "552 5.2.2 <bob@acme.example> Quota exceeded (mailbox for
    # user is full)"; Gmail: "452-4.2.2 The email account that you tried to reach is
    # over quota."; Outlook: "554 5.2.2 mailbox full;
    # STOREDRV.Deliver.Exception:QuotaExceededException"
    Rule(
        "quota-words",
        "quota_exceeded",
        words=(
            "over quota",
            "quota exceeded",
            "quotaexceeded",
            "exceeded quota",
            "exceeds quota",
            "quota full",
            "disk quota",
            "mailbox full",
            "mailbox is full",
            "mailbox size limit",
            "storage allocation",
            "out of storage space",
        ),
    ),
)

_THROTTLING = (
    # "421 4.7.0 Try again later, closing connection. (EHLO) a1si123 - gsmtp"
    Rule(
        "421-try-again-later",
        "remote_throttling",
        codes=(421,),
        words=("try again later", "try later"),
    ),
    # "421 4.7.0 mx.example.net Error: too many connections from 203.0.113.5"
    # "452 4.5.3 Too many recipients"; "450 4.7.1 Rate limit exceeded"
    Rule(
        "throttling-words",
        "remote_throttling",
        words=(
            "too many connections",
            "too many concurrent",
            "maximum number of concurrent",
            "connection limit",
            "connection rate",
            "too many messages",
            "too many recipients",
            "too many emails",
            "too much mail",
            "message rate",
            "sending rate",
            "slow down",
            "server busy",
        ),
    ),
    # "450 4.7.1 <bob@example.net>: Recipient address rejected: Rate limited, try
    # again in 60 seconds" (also "rate-limited", "ratelimit exceeded")
    Rule("rate-limit", "remote_throttling", words=("rate",), pattern=r"rate[ -]?limit"),
)

_GREYLISTING = (
    # postgrey: "450 4.2.0 <ckent@dplanet.com>: Recipient address rejected:
    # Greylisted, see http://postgrey.schweikert.ch/help/dplanet.com.html"
    # milter-greylist: "451 4.7.1 Greylisting in action, please come back in 00:05:00"
    Rule(
        "greylist-words",
        "greylisting",
        words=("greylist", "graylist", "grey-list", "gray-list"),
    ),
    # rspamd: "451 4.7.1 Try again later"; "451 4.7.1 Please come back later"
    Rule(
        "try-again-later",
        "greylisting",
        words=("try again later", "come back later"),
    ),
)

_RELAY = (
    # "554 5.7.1 <jag@gmail.com>: Relay access denied"
    Rule(
        "relay-words",
        "relay_denied",
        words=(
            "relay access denied",
            "relaying denied",
            "relay denied",
            "relay not permitted",
            "relaying not permitted",
            "relaying not allowed",
            "not permitted to relay",
            "not allowed to relay",
            "unable to relay",
            "we do not relay",
        ),
    ),
)

_DNS_REMOTE = (
    # "550 5.1.2 <bob@nowhere.example>: Recipient address rejected: Domain not found"
    Rule(
        "domain-not-found",
        "dns_failure",
        words=("domain not found", "domain does not exist", "no such domain"),
    ),
)

_UNKNOWN = (
    # "550 5.1.1 <nobj@dplanet.com>: Recipient address rejected: User unknown in
    # virtual mailbox table"; Dovecot: "550 5.1.1 <x@acme.example> User doesn't
    # exist: x@acme.example"; Gmail: "550-5.1.1 The email account that you tried to
    # reach does not exist."; local(8): "unknown user: \"ghdsgfhdslfh\""
    Rule(
        "unknown-user-words",
        "unknown_recipient",
        words=(
            "user unknown",
            "unknown user",
            "no such user",
            "no such recipient",
            "no such mailbox",
            "unknown recipient",
            "recipient unknown",
            "recipient not found",
            "user not found",
            "mailbox not found",
            "invalid recipient",
            "address unknown",
            "unknown address",
            "doesn't exist",
            "does not exist",
            "undeliverable address",
            "no mailbox here",
        ),
    ),
    # HCL/Lotus Domino: "550 5.0.0 User not listed in public Name & Address Book"
    Rule(
        "domino-not-listed",
        "unknown_recipient",
        words=("address book",),
        pattern=r"not listed in .*address book",
    ),
)

_DISABLED = (
    # Gmail: "550-5.2.1 The email account that you tried to reach is disabled."
    Rule(
        "disabled-words",
        "mailbox_disabled",
        words=(
            "account disabled",
            "account is disabled",
            "account has been disabled",
            "mailbox disabled",
            "is disabled",
            "deactivated",
            "no longer active",
            "account suspended",
            "account has been suspended",
        ),
    ),
)

_SIZE = (
    # "552 5.3.4 Message size exceeds fixed limit"; Gmail: "552-5.2.3 Your message
    # exceeded Google's message size limits."; "552 Message too big"
    Rule(
        "size-words",
        "message_too_large",
        words=(
            "message size exceeds",
            "size exceeds",
            "message size limit",
            "exceeded google's message size",
            "message too big",
            "message too large",
            "message is too large",
            "mail too large",
            "message file too big",
            "too much mail data",
            "message length exceeds",
            "exceeds the maximum size",
        ),
    ),
)

_TLS_REMOTE = (
    # "530 5.7.0 Must issue a STARTTLS command first"
    # Gmail: "421-4.7.0 TLS required for RCPT domain, closing connection."
    Rule(
        "remote-requires-tls",
        "tls_failure",
        words=("must issue a starttls", "tls required", "encryption required"),
    ),
)

_POLICY = (
    # "550 5.7.1 Service unavailable; client [203.0.113.5] blocked using
    # zen.spamhaus.org"; Outlook: "... Client host [203.0.113.5] blocked using
    # Spamhaus. To request removal from this list see ... (AS3130)"
    Rule(
        "blocklists",
        "policy_rejected",
        words=(
            "blocked using",
            "spamhaus",
            "barracuda",
            "spamcop",
            "sorbs",
            "dnsbl",
            "blacklist",
            "blocklist",
            "block list",
            "black list",
            "block listed",
        ),
    ),
    # "554 5.7.1 Service unavailable; Client host [203.0.113.5] is listed on RBL"
    Rule(
        "rbl-listed",
        "policy_rejected",
        words=("rbl", "listed"),
        pattern=r"\brbl\b|\blisted\b",
    ),
    # Gmail: "550-5.7.1 [203.0.113.5 18] Our system has detected that this message is
    # likely suspicious due to the very low reputation of the sending IP address."
    Rule(
        "reputation-spam",
        "policy_rejected",
        words=(
            "reputation",
            "spam",
            "unsolicited",
            "phishing",
            "virus",
            "malware",
            "suspicious",
            "content rejected",
        ),
    ),
    # Gmail: "550-5.7.1 The user or domain that you are sending to (or from) has a
    # policy that prohibited the mail that you sent."; Yahoo: "554 5.7.9 Message not
    # accepted for policy reasons."
    Rule(
        "policy-words",
        "policy_rejected",
        words=(
            "policy",
            "blocked",
            "access denied",
            "not accepted",
            "unauthenticated",
            "authentication information",
            "dmarc",
            "spf",
            "dkim",
            "client host rejected",
            "sender address rejected",
            "helo command rejected",
            "reverse dns",
            "reverse hostname",
            "cannot find your hostname",
            "ptr record",
        ),
    ),
)

_SYSTEM_TEMPORARY = (
    # "452 4.3.1 Insufficient system storage" (RFC 5321 452: the receiving system,
    # not the mailbox, is out of space)
    Rule(
        "insufficient-system-storage",
        "mda_temporary_error",
        words=("insufficient system storage",),
    ),
)

_DSN_TIER = (
    # "550 5.1.10 RESOLVER.ADR.RecipientNotFound" (RFC 7505: X.1.10 null MX)
    Rule("dsn-x.1.10", "unknown_recipient", dsn=("X.1.10",)),
    # "550 5.1.1 Mailbox does not exist" (RFC 3463 X.1.1 bad destination mailbox;
    # X.1.6 destination mailbox has moved)
    Rule("dsn-x.1.1", "unknown_recipient", dsn=("X.1.1", "X.1.6")),
    # "550 5.1.2 Host unknown" (RFC 3463 X.1.2 bad destination system address)
    Rule("dsn-x.1.2", "dns_failure", dsn=("X.1.2",)),
    # "553 5.1.8 Sender domain rejected" (RFC 3463 X.1.7/X.1.8: our sender address)
    Rule("dsn-x.1.8", "policy_rejected", dsn=("X.1.7", "X.1.8")),
    # "452 4.2.2 Mailbox over limit" (RFC 3463 X.2.2 mailbox full)
    Rule("dsn-x.2.2", "quota_exceeded", dsn=("X.2.2",)),
    # "550 5.2.1 Mailbox unavailable" (RFC 3463 X.2.1 mailbox disabled)
    Rule("dsn-x.2.1", "mailbox_disabled", dsn=("X.2.1",)),
    # "552 5.3.4 Error: message file too big" (X.3.4 too big for system, X.2.3
    # message length exceeds administrative limit)
    Rule("dsn-size", "message_too_large", dsn=("X.3.4", "X.2.3")),
    # Postfix: dsn=4.4.3 for a failed DNS lookup, dsn=5.4.4 for "unable to route"
    Rule("dsn-x.4.3-x.4.4", "dns_failure", dsn=("X.4.3", "X.4.4")),
    # "421 4.4.2 mx.example.net Error: timeout exceeded" (X.4.2 bad connection,
    # X.4.1 no answer from host)
    Rule("dsn-x.4.1-x.4.2", "connection_timeout", dsn=("X.4.1", "X.4.2")),
    # "421 4.4.5 Service unavailable, concurrency limit reached" (X.4.5 congestion)
    # "452 4.5.3 Error: too many recipients" (4.5.3 too many recipients)
    Rule("dsn-congestion", "remote_throttling", dsn=("X.4.5", "4.5.3")),
    # "554 5.4.7 Delivery time expired" (X.4.7 delivery time expired)
    Rule("dsn-x.4.7", "expired", dsn=("X.4.7",)),
    # "454 4.7.5 Cryptographic failure"; "530 5.7.10 Encryption needed"
    Rule("dsn-tls", "tls_failure", dsn=("X.7.5", "X.7.10")),
    # "550 5.7.1 Message refused" (X.7 security or policy status)
    Rule("dsn-x.7", "policy_rejected", dsn=("X.7",)),
    # The classifier is not told the transport, so a remote MX's 4.2.0 or 4.3.x lands
    # here too.
    # Dovecot over LMTP: "451 4.3.0 <bob@acme.example> Temporary internal error";
    # "451 4.2.0 <bob@acme.example> Internal error occurred. Refer to server log for
    # more information." (X.3 mail system status; 4.2.0 mailbox status, transient)
    Rule("dsn-mda-temporary", "mda_temporary_error", dsn=("4.3", "4.2.0")),
)

_WEAK = (
    # "550 Requested action not taken: mailbox unavailable" (RFC 5321 reply text)
    Rule(
        "mailbox-unavailable",
        "mailbox_disabled",
        words=("mailbox unavailable", "inactive"),
        pattern=r"mailbox unavailable|\binactive\b",
    ),
    # "421 mx.example.net: timeout waiting for client input"
    Rule("timeout-words", "connection_timeout", words=("timed out", "timeout")),
    # pipe to dovecot-lda: "temporary failure. Command output: lda: Error: ...";
    # "451 Local Error"; Dovecot: "Internal error occurred."
    Rule(
        "temporary-failure-words",
        "mda_temporary_error",
        words=("temporary failure", "internal error", "local error"),
    ),
    # "552 Requested mail action aborted: exceeded storage allocation" without an
    # enhanced code: RFC 5321 gives 552 that meaning.
    Rule("code-552", "quota_exceeded", codes=(552,)),
)

# ------------------------------------------------------------------ reject rows

_CLIENT_LIMITS = (
    # postscreen: "NOQUEUE: reject: CONNECT from [203.0.113.5]:5678: too many
    # connections"; "... all screening ports busy" (421 replies: retry later)
    Rule(
        "client-connection-limit",
        "policy_rejected",
        words=("too many connections", "ports busy", "connection rate limit"),
        temporary=True,
    ),
    # postscreen: "NOQUEUE: reject: RCPT from [203.0.113.5]:45263: 450 4.3.2 Service
    # currently unavailable": a new client that passed the after-220 tests must come
    # back, which works like greylisting (POSTSCREEN_README, "Tests after the 220
    # SMTP server greeting").
    Rule(
        "postscreen-come-back",
        "greylisting",
        dsn=("4.3.2",),
        words=("service currently unavailable",),
    ),
)

_CLIENT_POLICY = (
    # "504 5.5.2 <WIN-9QL4SDRB93L>: Helo command rejected: need fully-qualified
    # hostname"; "450 4.1.8 <a@b.example>: Sender address rejected: Domain not
    # found"; "550 5.7.25 Client host rejected: cannot find your hostname"
    Rule(
        "client-helo-sender-rejected",
        "policy_rejected",
        words=(
            "helo command rejected",
            "sender address rejected",
            "client host rejected",
            "data command rejected",
            "etrn command rejected",
            "improper use of smtp command pipelining",
        ),
    ),
)

# ----------------------------------------------------------------- Dovecot rows

_DOVECOT = (
    # "save failed to INBOX: Quota exceeded (mailbox for user is full)"; Dovecot
    # answers 552 5.2.2 unless quota_full_tempfail=yes.
    Rule(
        "dovecot-quota",
        "quota_exceeded",
        words=("quota", "mailbox is full", "mailbox full"),
        temporary=False,
    ),
    # quota_max_mail_size: "Mail too large" / "Mail size is larger than the maximum
    # size allowed by server configuration"
    Rule(
        "dovecot-mail-too-large",
        "message_too_large",
        words=("too large", "maximum size"),
        temporary=False,
    ),
    # lmtp: "550 5.1.1 <x@acme.example> User doesn't exist: x@acme.example"
    Rule(
        "dovecot-user-unknown",
        "unknown_recipient",
        words=("user doesn't exist", "unknown user", "user unknown"),
        temporary=False,
    ),
    # "save failed to INBOX: Internal error occurred. Refer to server log for more
    # information. [2026-12-03 16:01:03]"; also lock timeouts, ENOSPC and EACCES,
    # which Dovecot answers with 451 4.2.0 or 451 4.3.0.
    Rule(
        "dovecot-temporary",
        "mda_temporary_error",
        words=(
            "internal error",
            "temporary",
            "timed out",
            "timeout",
            "disk space",
            "no space left",
            "permission denied",
            "waiting for lock",
            "lock timeout",
            "too many concurrent",
        ),
        temporary=True,
    ),
    # "save failed to Spam: Mailbox doesn't exist: Spam" (sieve fileinto to a
    # missing folder with lda_mailbox_autocreate=no; Dovecot falls back to INBOX)
    Rule(
        "dovecot-mailbox-missing",
        "other",
        words=("mailbox doesn't exist", "invalid mailbox name"),
        temporary=False,
    ),
)

DELIVERY_RULES = RuleTable(
    (
        *_EXPIRY,
        *_POSTFIX_OWN,
        *_PROVIDERS,
        *_SENDING_LIMITS,
        *_QUOTA,
        *_THROTTLING,
        *_GREYLISTING,
        *_RELAY,
        *_DNS_REMOTE,
        *_UNKNOWN,
        *_DISABLED,
        *_SIZE,
        *_TLS_REMOTE,
        *_POLICY,
        *_SYSTEM_TEMPORARY,
        *_DSN_TIER,
        *_WEAK,
    )
)
"""Rules for Postfix delivery agents' non-success lines (smtp, lmtp, local, ...)."""

REJECT_RULES = RuleTable(
    (
        *_CLIENT_LIMITS,
        *_GREYLISTING,
        *_CLIENT_POLICY,
        *_RELAY,
        *_UNKNOWN,
        *_QUOTA,
        *_SIZE,
        *_DNS_REMOTE,
        *_TLS_REMOTE,
        *_POLICY,
        *_SYSTEM_TEMPORARY,
        *_DSN_TIER,
    )
)
"""Rules for smtpd, postscreen, cleanup and milter rejects of our clients."""

DOVECOT_RULES = RuleTable(_DOVECOT)
"""Rules for Dovecot's ``save failed`` reasons and LMTP recipient errors."""


# ---------------------------------------------------------------- entry points


def classify_delivery(
    status: str, dsn: str | None, smtp_code: int | None, text: str
) -> Classification | None:
    """The cause of one delivery attempt; None when it succeeded (``status=sent``)."""
    if status in _SUCCESS:
        return None
    return _cached_delivery(status, dsn, smtp_code, text[:_MAX_TEXT])


def classify_reject(
    smtp_code: int | None, dsn: str | None, text: str
) -> Classification:
    """The cause of an smtpd/postscreen/cleanup reject of one of our clients."""
    return _cached_reject(smtp_code, dsn, text[:_MAX_TEXT])


def classify_dovecot(reason: str) -> Classification:
    """The cause of a Dovecot save failure (``save failed to INBOX: <reason>``).

    Unknown reasons are ``other`` and temporary: Dovecot answers storage errors it
    cannot name with ``451 4.2.0``.
    """
    rule = DOVECOT_RULES.first("failed", None, None, reason)
    if rule is None:
        return Classification("other", True)
    return Classification(rule.cause, rule.temporary is not False)


# The same responses recur all day (one throttling provider, one full mailbox), so a
# small cache turns most classifications into one dictionary lookup.
@lru_cache(maxsize=8192)
def _cached_delivery(
    status: str, dsn: str | None, smtp_code: int | None, text: str
) -> Classification:
    return DELIVERY_RULES.classify(status, dsn, smtp_code, text)


@lru_cache(maxsize=4096)
def _cached_reject(smtp_code: int | None, dsn: str | None, text: str) -> Classification:
    return REJECT_RULES.classify("reject", dsn, smtp_code, text)
