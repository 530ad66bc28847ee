"""The cause classifier: one real-looking response per rule, in each table."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtriage.parsers.classify import (
    CAUSES,
    DELIVERY_RULES,
    DOVECOT_RULES,
    REJECT_RULES,
    Classification,
    RuleTable,
    classify_delivery,
    classify_dovecot,
    classify_reject,
)

# The public contract of issue 2, in its published order.
PUBLIC_CAUSES = [
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
]


class Case(NamedTuple):
    rule: str | None  # the rule expected to decide; None when none should match
    status: str
    dsn: str | None
    code: int | None
    text: str
    cause: str
    temporary: bool


def said(host: str, reply: str, command: str = "RCPT TO") -> str:
    """A remote reply as Postfix writes it inside ``status=... (...)``."""
    return f"host {host} said: {reply} (in reply to {command} command)"


GMAIL = "gmail-smtp-in.l.google.com[142.250.27.26]"
OUTLOOK = "acme-example.mail.protection.outlook.com[52.101.68.3]"
YAHOO = "mta5.am0.yahoodns.net[67.195.204.72]"
ICLOUD = "mx02.mail.icloud.com[17.57.152.14]"
MDA = "127.0.0.1[127.0.0.1]"
MX = "mx.example.net[198.51.100.7]"

DELIVERY_CASES = {
    "expired-message": Case(
        "status-expired", "expired", None, None, "returned to sender", "expired", False
    ),
    "null-mx-domain": Case(
        "null-mx",
        "bounced",
        "5.1.10",
        None,
        "Domain example.com does not accept mail (nullMX)",
        "unknown_recipient",
        False,
    ),
    "postfix-dns-not-found": Case(
        "postfix-dns-lookup",
        "deferred",
        "4.4.3",
        None,
        "Host or domain name not found. Name service error for name=example.org "
        "type=MX: Host not found, try again",
        "dns_failure",
        True,
    ),
    "smtp-connection-refused": Case(
        "connect-refused",
        "deferred",
        "4.4.1",
        None,
        "connect to mx.example.org[198.51.100.7]:25: Connection refused",
        "connection_refused",
        True,
    ),
    "lmtp-connection-refused-is-refused-not-mda": Case(
        "connect-refused",
        "deferred",
        "4.4.1",
        None,
        "delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:24: "
        "Connection refused",
        "connection_refused",
        True,
    ),
    "lmtp-socket-missing": Case(
        "connect-socket-missing",
        "deferred",
        "4.4.1",
        None,
        "connect to private/dovecot-lmtp[private/dovecot-lmtp]: "
        "No such file or directory",
        "connection_refused",
        True,
    ),
    "smtp-connect-timed-out": Case(
        "connect-timed-out",
        "deferred",
        "4.4.1",
        None,
        "connect to mx.example.org[198.51.100.7]:25: Connection timed out",
        "connection_timeout",
        True,
    ),
    "greeting-timed-out": Case(
        "conversation-timed-out",
        "deferred",
        "4.4.2",
        None,
        "conversation with mx.example.org[198.51.100.7] timed out while receiving "
        "the initial server greeting",
        "connection_timeout",
        True,
    ),
    "tls-not-offered": Case(
        "postfix-tls",
        "deferred",
        "4.7.4",
        None,
        "TLS is required, but was not offered by host mx.example.org[198.51.100.7]",
        "tls_failure",
        True,
    ),
    "lost-connection-is-timeout": Case(
        "lost-connection",
        "deferred",
        "4.4.2",
        None,
        "delivery temporarily suspended: lost connection with "
        "mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO",
        "connection_timeout",
        True,
    ),
    "relay-sasl-failed": Case(
        "relay-sasl-failed",
        "deferred",
        "4.7.8",
        None,
        "delivery temporarily suspended: SASL authentication failed; server "
        "smtp.relay.example[192.0.2.25] said: 535 5.7.8 Error: authentication "
        "failed: authentication failure",
        "relay_denied",
        True,
    ),
    "gmail-421-4.7.28": Case(
        "gmail-4.7.28-rate-limited",
        "deferred",
        "4.7.28",
        421,
        said(
            GMAIL,
            "421-4.7.28 [203.0.113.5 15] Our system has detected an unusual rate of "
            "421-4.7.28 unsolicited mail originating from your IP address. To "
            "protect our 421-4.7.28 users from spam, mail sent from your IP address "
            "has been 421-4.7.28 temporarily rate limited. 421 4.7.28  "
            "https://support.google.com/mail/?p=UnsolicitedRateLimitError - gsmtp",
            "end of DATA",
        ),
        "remote_throttling",
        True,
    ),
    "gmail-550-5.7.28": Case(
        "gmail-5.7.28-blocked",
        "bounced",
        "5.7.28",
        550,
        said(
            GMAIL,
            "550-5.7.28 [203.0.113.5 1] Our system has detected an unusual rate of "
            "550-5.7.28 unsolicited mail originating from your IP address. "
            "550 5.7.28 has been blocked. 2si9625341ooe.33 - gsmtp",
            "end of DATA",
        ),
        "policy_rejected",
        False,
    ),
    "gmail-550-5.7.26": Case(
        "gmail-unauthenticated",
        "bounced",
        "5.7.26",
        550,
        said(
            GMAIL,
            "550-5.7.26 This mail has been blocked because the sender is "
            "550-5.7.26 unauthenticated. Gmail requires all senders to "
            "authenticate with 550 5.7.26 either SPF or DKIM. - gsmtp",
            "end of DATA",
        ),
        "policy_rejected",
        False,
    ),
    "gmail-recipient-receiving-rate": Case(
        "gmail-recipient-rate",
        "deferred",
        "4.2.1",
        450,
        said(
            GMAIL,
            "450-4.2.1 The user you are trying to contact is receiving mail at a "
            "rate that 450-4.2.1 prevents additional messages from being "
            "delivered. 450 4.2.1 Please resend your message at a later time. - gsmtp",
        ),
        "remote_throttling",
        True,
    ),
    "outlook-4.7.650": Case(
        "outlook-4.7.650-rate-limited",
        "deferred",
        "4.7.650",
        451,
        said(
            OUTLOOK,
            "451 4.7.650 The mail server [203.0.113.5] has been temporarily rate "
            "limited due to IP reputation. For e-mail delivery information, see "
            "https://postmaster.live.com (S775)",
            "MAIL FROM",
        ),
        "remote_throttling",
        True,
    ),
    "outlook-4.7.500-server-busy": Case(
        "outlook-server-busy",
        "deferred",
        "4.7.500",
        451,
        said(
            OUTLOOK,
            "451 4.7.500 Server busy. Please try again later from [203.0.113.5]. "
            "(S77714) [DB5EUR03FT029.eop-EUR03.prod.protection.outlook.com]",
            "MAIL FROM",
        ),
        "remote_throttling",
        True,
    ),
    "outlook-s3150": Case(
        "outlook-block-list",
        "bounced",
        "5.7.1",
        550,
        said(
            "hotmail-com.olc.protection.outlook.com[104.47.10.33]",
            "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent. "
            "Please contact your Internet service provider since part of their "
            "network is on our block list (S3150). You can also refer your provider "
            "to http://mail.live.com/mail/troubleshooting.aspx#errors.",
            "MAIL FROM",
        ),
        "policy_rejected",
        False,
    ),
    "outlook-5.7.708": Case(
        "outlook-5.7.7xx-6xx",
        "bounced",
        "5.7.708",
        550,
        said(
            OUTLOOK,
            "550 5.7.708 Service unavailable. Access denied, traffic not accepted "
            "from this IP. For more information please go to "
            "http://go.microsoft.com/fwlink/?LinkId=526653 AS(1600)",
        ),
        "policy_rejected",
        False,
    ),
    "outlook-banned-sender": Case(
        "outlook-banned-sender",
        "bounced",
        "5.7.511",
        550,
        said(
            OUTLOOK,
            "550 5.7.511 Access denied, banned sender[203.0.113.5]. To request "
            "removal from this list please forward this message to "
            "delist@messaging.microsoft.com.",
        ),
        "policy_rejected",
        False,
    ),
    "outlook-dbeb-access-denied": Case(
        "outlook-dbeb-unknown",
        "bounced",
        "5.4.1",
        550,
        said(
            OUTLOOK,
            "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
            "[AM4PEPF00027A5F.eurprd04.prod.outlook.com]",
        ),
        "unknown_recipient",
        False,
    ),
    "outlook-recipient-not-found": Case(
        "outlook-recipient-not-found",
        "bounced",
        "5.1.10",
        550,
        said(
            OUTLOOK,
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
            "nobody@contoso.example not found by SMTP address lookup",
        ),
        "unknown_recipient",
        False,
    ),
    "outlook-mailbox-unavailable-s2017062302": Case(
        "outlook-s2017062302",
        "bounced",
        "5.5.0",
        550,
        said(
            "outlook-com.olc.protection.outlook.com[52.101.68.8]",
            "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). "
            "[AM4PEPF00027A6C.eurprd04.prod.outlook.com]",
        ),
        "unknown_recipient",
        False,
    ),
    "outlook-5.7.54-relay": Case(
        "outlook-5.7.54-relay",
        "bounced",
        "5.7.54",
        550,
        said(
            OUTLOOK,
            "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain",
        ),
        "relay_denied",
        False,
    ),
    "yahoo-ts03-permanent-deferral": Case(
        "yahoo-ts03",
        "deferred",
        "4.7.0",
        421,
        said(
            YAHOO,
            "421 4.7.0 [TS03] All messages from 203.0.113.5 will be permanently "
            "deferred; Retrying will NOT succeed. See "
            "https://senders.yahooinc.com/error-codes",
            "MAIL FROM",
        ),
        "policy_rejected",
        False,
    ),
    "yahoo-tss04-complaints": Case(
        "yahoo-complaints",
        "deferred",
        "4.7.0",
        421,
        said(
            "mx-aol.mail.gm0.yahoodns.net[11.22.33.44]",
            "421 4.7.0 [TSS04] Messages from 10.20.30.40 temporarily deferred due "
            "to user complaints - 4.16.55.1; see "
            "https://help.yahoo.com/kb/postmaster/SLN3434.html",
            "MAIL FROM",
        ),
        "policy_rejected",
        True,
    ),
    "yahoo-gl01": Case(
        "yahoo-gl01",
        "deferred",
        "4.7.0",
        421,
        said(
            YAHOO,
            "421 4.7.0 [GL01] Message from (203.0.113.5) temporarily deferred - "
            "4.16.50. Please refer to https://senders.yahooinc.com/error-codes",
            "MAIL FROM",
        ),
        "greylisting",
        True,
    ),
    "yahoo-bl21": Case(
        "yahoo-blocklist",
        "bounced",
        "5.7.1",
        553,
        said(
            YAHOO,
            "553 5.7.1 [BL21] Connections will not be accepted from 203.0.113.5, "
            "because the ip is in Spamhaus's list; see "
            "https://senders.yahooinc.com/error-codes",
            "MAIL FROM",
        ),
        "policy_rejected",
        False,
    ),
    "yahoo-no-account": Case(
        "yahoo-no-account",
        "bounced",
        "5.0.0",
        554,
        said(
            YAHOO,
            "554 delivery error: dd This user doesn't have a yahoo.com account "
            "(nobody@yahoo.com) [0] - mta1234.mail.bf1.yahoo.com",
            "end of DATA",
        ),
        "unknown_recipient",
        False,
    ),
    "yahoo-mailbox-disabled": Case(
        "yahoo-mailbox-disabled",
        "bounced",
        "5.0.0",
        554,
        said(
            YAHOO,
            "554 delivery error: dd Sorry your message to nobody@yahoo.com cannot "
            "be delivered. This mailbox is disabled (554.30). - "
            "mta1234.mail.bf1.yahoo.com",
            "end of DATA",
        ),
        "mailbox_disabled",
        False,
    ),
    "icloud-cs01": Case(
        "icloud-policy",
        "bounced",
        "5.7.1",
        554,
        said(
            "mx01.mail.icloud.com[17.57.154.33]",
            "554 5.7.1 [CS01] Message rejected due to local policy. Please visit "
            "https://support.apple.com/en-us/HT204137",
            "end of DATA",
        ),
        "policy_rejected",
        False,
    ),
    "icloud-proofpoint-greeting": Case(
        "proofpoint-blocked",
        "deferred",
        "4.7.0",
        554,
        f"host {ICLOUD} refused to talk to me: 554 5.7.0 Blocked - see "
        "https://support.proofpoint.com/dnsbl-lookup.cgi?ip=142.93.169.220",
        "policy_rejected",
        True,
    ),
    "gmx-nemesis": Case(
        "gmx-webde-nemesis",
        "bounced",
        "5.0.0",
        554,
        "host mx00.emig.gmx.net[212.227.15.9] refused to talk to me: "
        "554-gmx.net (mxgmx017) Nemesis ESMTP Service not available 554-No SMTP "
        "service 554-IP address is block listed. 554 For explanation visit "
        "https://www.gmx.net/mail/senderguidelines?ip=203.0.113.5&c=bl",
        "policy_rejected",
        False,
    ),
    "t-online-bl": Case(
        "t-online-blocked",
        "bounced",
        "5.0.0",
        554,
        "host mx00.t-online.de[194.25.134.8] refused to talk to me: 554 "
        "IP=203.0.113.5 - A problem occurred. (Ask your postmaster for help or to "
        "contact tosa@rx.t-online.de to clarify.) (BL)",
        "policy_rejected",
        False,
    ),
    "netease-dt-spm": Case(
        "netease-spam",
        "deferred",
        "4.0.0",
        451,
        said(
            "mx.163.com[1.1.1.1]",
            "451 DT:SPM 163 mx40,WsCowAAnEhlCoEVa5GjcAA--.20089S3 1514512452, "
            "please try again 15min later",
            "end of DATA",
        ),
        "policy_rejected",
        True,
    ),
    "mimecast-poor-reputation": Case(
        "mimecast-reputation",
        "bounced",
        "5.0.0",
        550,
        said(
            "us-smtp-inbound-2.mimecast.com[11.22.33.44]",
            "550 csi.mimecast.org Poor Reputation Sender. - "
            "https://community.mimecast.com/docs/DOC-1369#550 "
            "[EM-f6hnWN9maa42OLPquOA.us166]",
        ),
        "policy_rejected",
        False,
    ),
    "smarthost-daily-quota-is-throttling": Case(
        "smarthost-sending-limit",
        "bounced",
        "5.4.5",
        550,
        said(
            "smtp-relay.gmail.com[142.250.102.28]",
            "550 5.4.5 Daily user sending quota exceeded. "
            "https://support.google.com/mail/?p=DailyLimit - gsmtp",
            "MAIL FROM",
        ),
        "remote_throttling",
        False,
    ),
    "dovecot-lmtp-quota-552": Case(
        "quota-words",
        "bounced",
        "5.2.2",
        552,
        said(
            MDA,
            "552 5.2.2 <bob@acme.example> Quota exceeded (mailbox for user is full)",
        ),
        "quota_exceeded",
        False,
    ),
    "quota-over-4.1.1": Case(
        "quota-words",
        "deferred",
        "4.1.1",
        452,
        said(
            "alt2.aspmx.l.google.com[3.155.237.60]",
            "452 4.1.1 <h-664d01@example.com> user is over quota, please try again "
            "later",
        ),
        "quota_exceeded",
        True,
    ),
    "421-try-again-later": Case(
        "421-try-again-later",
        "deferred",
        "4.7.0",
        421,
        said(
            GMAIL,
            "421 4.7.0 Try again later, closing connection. (EHLO) a1si123 - gsmtp",
            "EHLO",
        ),
        "remote_throttling",
        True,
    ),
    "too-many-connections": Case(
        "throttling-words",
        "deferred",
        "4.7.0",
        421,
        f"host {MX} refused to talk to me: 421 4.7.0 mx.example.net Error: too "
        "many connections from 203.0.113.5",
        "remote_throttling",
        True,
    ),
    "rate-limited": Case(
        "rate-limit",
        "deferred",
        "4.7.1",
        450,
        said(
            MX,
            "450 4.7.1 <bob@example.net>: Recipient address rejected: Rate limited, "
            "try again in 60 seconds",
        ),
        "remote_throttling",
        True,
    ),
    "postgrey-greylisted": Case(
        "greylist-words",
        "deferred",
        "4.2.0",
        450,
        said(
            "smtp.dplanet.com[67.23.2.154]",
            "450 4.2.0 <ckent@dplanet.com>: Recipient address rejected: Greylisted, "
            "see http://postgrey.schweikert.ch/help/dplanet.com.html",
        ),
        "greylisting",
        True,
    ),
    "rspamd-451-try-again-later": Case(
        "try-again-later",
        "deferred",
        "4.7.1",
        451,
        said(MX, "451 4.7.1 Try again later", "end of DATA"),
        "greylisting",
        True,
    ),
    "relay-access-denied": Case(
        "relay-words",
        "bounced",
        "5.7.1",
        554,
        said(
            "192.168.45.120[192.168.45.120]",
            "554 5.7.1 <jag@gmail.com>: Relay access denied",
        ),
        "relay_denied",
        False,
    ),
    "remote-domain-not-found": Case(
        "domain-not-found",
        "bounced",
        "5.1.2",
        550,
        said(
            MX,
            "550 5.1.2 <bob@nowhere.example>: Recipient address rejected: Domain "
            "not found",
        ),
        "dns_failure",
        False,
    ),
    "virtual-user-unknown": Case(
        "unknown-user-words",
        "bounced",
        "5.1.1",
        550,
        said(
            "mail.dplanet.com[67.23.8.134]",
            "550 5.1.1 <nobj@dplanet.com>: Recipient address rejected: User unknown "
            "in virtual mailbox table",
        ),
        "unknown_recipient",
        False,
    ),
    "dovecot-user-doesnt-exist": Case(
        "unknown-user-words",
        "bounced",
        "5.1.1",
        550,
        said(MDA, "550 5.1.1 <nobody@acme.example> User doesn't exist: nobody"),
        "unknown_recipient",
        False,
    ),
    "domino-not-listed": Case(
        "domino-not-listed",
        "bounced",
        "5.0.0",
        550,
        said(
            "notes.example.com[192.0.2.80]",
            "550 5.0.0 User not listed in public Name & Address Book",
        ),
        "unknown_recipient",
        False,
    ),
    "gmail-account-disabled": Case(
        "disabled-words",
        "bounced",
        "5.2.1",
        550,
        said(
            GMAIL,
            "550-5.2.1 The email account that you tried to reach is disabled. "
            "550 5.2.1 https://support.google.com/mail/?p=DisabledUser - gsmtp",
        ),
        "mailbox_disabled",
        False,
    ),
    "message-size-exceeds": Case(
        "size-words",
        "bounced",
        "5.3.4",
        552,
        said(MX, "552 5.3.4 Message size exceeds fixed limit", "end of DATA"),
        "message_too_large",
        False,
    ),
    "starttls-required": Case(
        "remote-requires-tls",
        "bounced",
        "5.7.0",
        530,
        said(MX, "530 5.7.0 Must issue a STARTTLS command first", "MAIL FROM"),
        "tls_failure",
        False,
    ),
    "spamhaus-blocked-using": Case(
        "blocklists",
        "bounced",
        "5.7.1",
        550,
        said(
            OUTLOOK,
            "550 5.7.1 Service unavailable, Client host [203.0.113.5] blocked using "
            "Spamhaus. To request removal from this list see "
            "https://www.spamhaus.org/query/ip/203.0.113.5 (AS3130)",
        ),
        "policy_rejected",
        False,
    ),
    "listed-on-rbl": Case(
        "rbl-listed",
        "bounced",
        "5.0.0",
        554,
        said(MX, "554 Your IP 203.0.113.5 is listed at bl.example.org", "MAIL FROM"),
        "policy_rejected",
        False,
    ),
    "gmail-low-reputation": Case(
        "reputation-spam",
        "bounced",
        "5.7.1",
        550,
        said(
            GMAIL,
            "550-5.7.1 [203.0.113.5 18] Our system has detected that this message is "
            "550-5.7.1 likely suspicious due to the very low reputation of the "
            "sending IP 550-5.7.1 address. - gsmtp",
            "end of DATA",
        ),
        "policy_rejected",
        False,
    ),
    "gmail-policy-prohibited": Case(
        "policy-words",
        "bounced",
        "5.7.1",
        550,
        said(
            GMAIL,
            "550-5.7.1 The user or domain that you are sending to (or from) has a "
            "policy that 550-5.7.1 prohibited the mail that you sent. - gsmtp",
            "end of DATA",
        ),
        "policy_rejected",
        False,
    ),
    "insufficient-system-storage": Case(
        "insufficient-system-storage",
        "deferred",
        "4.3.1",
        452,
        said(MX, "452 4.3.1 Insufficient system storage", "MAIL FROM"),
        "mda_temporary_error",
        True,
    ),
    "dsn-5.1.10-alone": Case(
        "dsn-x.1.10",
        "bounced",
        "5.1.10",
        550,
        said(MX, "550 5.1.10 Recipient address rejected"),
        "unknown_recipient",
        False,
    ),
    "dsn-5.1.1-mailbox-unavailable-is-unknown": Case(
        "dsn-x.1.1",
        "bounced",
        "5.1.1",
        550,
        said(OUTLOOK, "550 5.1.1 Requested action not taken: mailbox unavailable"),
        "unknown_recipient",
        False,
    ),
    "dsn-5.1.2-host-unknown": Case(
        "dsn-x.1.2",
        "bounced",
        "5.1.2",
        550,
        said(MX, "550 5.1.2 Host unknown"),
        "dns_failure",
        False,
    ),
    "dsn-5.1.8-sender-domain": Case(
        "dsn-x.1.8",
        "bounced",
        "5.1.8",
        553,
        said(MX, "553 5.1.8 <a@acme.example>: Sender domain rejected", "MAIL FROM"),
        "policy_rejected",
        False,
    ),
    "dsn-4.2.2-over-limit": Case(
        "dsn-x.2.2",
        "deferred",
        "4.2.2",
        452,
        said(MX, "452 4.2.2 <bob@example.net>: Mailbox over limit"),
        "quota_exceeded",
        True,
    ),
    "dsn-5.2.1-mailbox-unavailable": Case(
        "dsn-x.2.1",
        "bounced",
        "5.2.1",
        550,
        said(MX, "550 5.2.1 <bob@example.net>: Mailbox unavailable"),
        "mailbox_disabled",
        False,
    ),
    "dsn-5.3.4-too-big": Case(
        "dsn-size",
        "bounced",
        "5.3.4",
        552,
        said(MX, "552 5.3.4 Error: message file too large", "end of DATA"),
        "message_too_large",
        False,
    ),
    "dsn-5.4.4-unroutable": Case(
        "dsn-x.4.3-x.4.4",
        "bounced",
        "5.4.4",
        None,
        "unable to route: no mail hosts for domain",
        "dns_failure",
        False,
    ),
    "dsn-4.4.2-timeout-exceeded": Case(
        "dsn-x.4.1-x.4.2",
        "deferred",
        "4.4.2",
        421,
        f"host {MX} refused to talk to me: 421 4.4.2 mx.example.net Error: "
        "timeout exceeded",
        "connection_timeout",
        True,
    ),
    "dsn-4.4.5-concurrency": Case(
        "dsn-congestion",
        "deferred",
        "4.4.5",
        421,
        said(MX, "421 4.4.5 Service unavailable, concurrency limit reached", "DATA"),
        "remote_throttling",
        True,
    ),
    "dsn-5.4.7-delivery-time-expired": Case(
        "dsn-x.4.7",
        "bounced",
        "5.4.7",
        554,
        said(MX, "554 5.4.7 Delivery time expired", "end of DATA"),
        "expired",
        False,
    ),
    "dsn-4.7.5-cryptographic": Case(
        "dsn-tls",
        "deferred",
        "4.7.5",
        454,
        said(MX, "454 4.7.5 Cryptographic failure", "STARTTLS"),
        "tls_failure",
        True,
    ),
    "dsn-5.7.1-unable-to-deliver": Case(
        "dsn-x.7",
        "bounced",
        "5.7.1",
        550,
        said(
            "mail2.sender.com[66.100.32.7]",
            "550 5.7.1 Unable to deliver to <jpayne@recipient.com>",
        ),
        "policy_rejected",
        False,
    ),
    "dovecot-lmtp-4.3.0": Case(
        "dsn-mda-temporary",
        "deferred",
        "4.3.0",
        451,
        said(MDA, "451 4.3.0 <bob@acme.example> Temporary internal error", "DATA"),
        "mda_temporary_error",
        True,
    ),
    "dovecot-lmtp-4.2.0": Case(
        "dsn-mda-temporary",
        "deferred",
        "4.2.0",
        451,
        said(
            MDA,
            "451 4.2.0 <bob@acme.example> Error occurred. Refer to server log",
            "end of DATA",
        ),
        "mda_temporary_error",
        True,
    ),
    "rfc5321-mailbox-unavailable": Case(
        "mailbox-unavailable",
        "bounced",
        "5.0.0",
        550,
        said(MX, "550 Requested action not taken: mailbox unavailable"),
        "mailbox_disabled",
        False,
    ),
    "timeout-waiting": Case(
        "timeout-words",
        "deferred",
        "4.0.0",
        421,
        said(MX, "421 mx.example.net: timeout waiting for client input", "DATA"),
        "connection_timeout",
        True,
    ),
    "content-filter-local-error": Case(
        "temporary-failure-words",
        "deferred",
        "4.0.0",
        451,
        said(MDA, "451 Local Error", "end of DATA"),
        "mda_temporary_error",
        True,
    ),
    "bare-552-storage-allocation": Case(
        "code-552",
        "bounced",
        "5.0.0",
        552,
        said(MX, "552 Requested mail action aborted: allocation exhausted"),
        "quota_exceeded",
        False,
    ),
    "forwarding-loop-is-other": Case(
        None,
        "bounced",
        "5.4.6",
        None,
        "mail forwarding loop for tom@example.com",
        "other",
        False,
    ),
    "unknown-deferral-is-other-and-temporary": Case(
        None, "deferred", None, None, "something nobody wrote before", "other", True
    ),
}

REJECT_CASES = {
    "postscreen-too-many-connections": Case(
        "client-connection-limit",
        "reject",
        None,
        None,
        "too many connections",
        "policy_rejected",
        True,
    ),
    "postscreen-come-back": Case(
        "postscreen-come-back",
        "reject",
        "4.3.2",
        450,
        "Service currently unavailable",
        "greylisting",
        True,
    ),
    "reject-greylisted": Case(
        "greylist-words",
        "reject",
        "4.2.0",
        450,
        "<bob@acme.example>: Recipient address rejected: Greylisted, see "
        "http://postgrey.schweikert.ch/help/acme.example.html",
        "greylisting",
        True,
    ),
    "milter-try-again-later": Case(
        "try-again-later",
        "reject",
        None,
        None,
        "4.7.1 Try again later",
        "greylisting",
        True,
    ),
    "helo-not-fqdn": Case(
        "client-helo-sender-rejected",
        "reject",
        "5.5.2",
        504,
        "<WIN-9QL4SDRB93L>: Helo command rejected: need fully-qualified hostname",
        "policy_rejected",
        False,
    ),
    "reject-relay-access-denied": Case(
        "relay-words",
        "reject",
        "5.7.1",
        554,
        "<spammer@elsewhere.example>: Relay access denied",
        "relay_denied",
        False,
    ),
    "reject-user-unknown": Case(
        "unknown-user-words",
        "reject",
        "5.1.1",
        550,
        "<nobody@acme.example>: Recipient address rejected: User unknown in "
        "virtual mailbox table",
        "unknown_recipient",
        False,
    ),
    "reject-policy-quota": Case(
        "quota-words",
        "reject",
        "4.2.2",
        452,
        "<bob@acme.example>: Recipient address rejected: Mailbox is full",
        "quota_exceeded",
        True,
    ),
    "reject-message-size": Case(
        "size-words",
        "reject",
        "5.3.4",
        552,
        "Message size exceeds fixed limit",
        "message_too_large",
        False,
    ),
    "reject-recipient-domain-not-found": Case(
        "domain-not-found",
        "reject",
        "4.1.2",
        450,
        "<bob@nowhere.example>: Recipient address rejected: Domain not found",
        "dns_failure",
        True,
    ),
    "reject-starttls-first": Case(
        "remote-requires-tls",
        "reject",
        "5.7.0",
        530,
        "Must issue a STARTTLS command first",
        "tls_failure",
        False,
    ),
    "reject-spamhaus": Case(
        "blocklists",
        "reject",
        "5.7.1",
        550,
        "Service unavailable; client [203.0.113.9] blocked using zen.spamhaus.org",
        "policy_rejected",
        False,
    ),
    "reject-spam-content": Case(
        "reputation-spam",
        "reject",
        None,
        None,
        "5.7.1 Blocked by SpamAssassin",
        "policy_rejected",
        False,
    ),
    "reject-queue-storage": Case(
        "insufficient-system-storage",
        "reject",
        None,
        452,
        "Insufficient system storage",
        "mda_temporary_error",
        True,
    ),
    "reject-5.7.1-service-unavailable": Case(
        "dsn-x.7",
        "reject",
        "5.7.1",
        554,
        "Service unavailable",
        "policy_rejected",
        False,
    ),
    "reject-protocol-error-is-other": Case(
        None, "reject", "5.5.1", 550, "Protocol error", "other", False
    ),
}

DOVECOT_CASES = {
    "dovecot-quota-exceeded": Case(
        "dovecot-quota",
        "failed",
        None,
        None,
        "Quota exceeded (mailbox for user is full)",
        "quota_exceeded",
        False,
    ),
    "dovecot-mail-too-large": Case(
        "dovecot-mail-too-large",
        "failed",
        None,
        None,
        "Mail size is larger than the maximum size allowed by server configuration",
        "message_too_large",
        False,
    ),
    "dovecot-user-doesnt-exist": Case(
        "dovecot-user-unknown",
        "failed",
        None,
        None,
        "User doesn't exist: nobody@acme.example",
        "unknown_recipient",
        False,
    ),
    "dovecot-internal-error": Case(
        "dovecot-temporary",
        "failed",
        None,
        None,
        "Internal error occurred. Refer to server log for more information. "
        "[2026-12-03 16:01:03]",
        "mda_temporary_error",
        True,
    ),
    "dovecot-mailbox-missing": Case(
        "dovecot-mailbox-missing",
        "failed",
        None,
        None,
        "Mailbox doesn't exist: Spam",
        "other",
        False,
    ),
    "dovecot-unknown-reason": Case(
        None, "failed", None, None, "Something unusual happened", "other", True
    ),
}

TABLES: dict[str, tuple[RuleTable, dict[str, Case]]] = {
    "delivery": (DELIVERY_RULES, DELIVERY_CASES),
    "reject": (REJECT_RULES, REJECT_CASES),
    "dovecot": (DOVECOT_RULES, DOVECOT_CASES),
}


def classify(table: str, case: Case) -> Classification | None:
    if table == "delivery":
        return classify_delivery(case.status, case.dsn, case.code, case.text)
    if table == "reject":
        return classify_reject(case.code, case.dsn, case.text)
    return classify_dovecot(case.text)


ALL_CASES = [
    pytest.param(table, case, id=f"{table}:{case_id}")
    for table, (_, cases) in TABLES.items()
    for case_id, case in cases.items()
]


@pytest.mark.parametrize(("table", "case"), ALL_CASES)
def test_response_gets_its_cause_and_flag(table: str, case: Case) -> None:
    assert classify(table, case) == Classification(case.cause, case.temporary)


@pytest.mark.parametrize(("table", "case"), ALL_CASES)
def test_response_is_decided_by_the_expected_rule(table: str, case: Case) -> None:
    rules = TABLES[table][0]
    rule = rules.first(case.status, case.dsn, case.code, case.text)
    assert (rule.name if rule is not None else None) == case.rule


def test_every_rule_decides_at_least_one_case() -> None:
    # Groups of rules are shared between tables; a shared rule is covered by a case
    # in any table that holds it.
    decided = {c.rule for _, cases in TABLES.values() for c in cases.values()}
    rules = {r.name for table, _ in TABLES.values() for r in table.rules}
    assert sorted(rules - decided) == []


def test_rules_exclusive_to_a_table_are_decided_in_it() -> None:
    for name, (table, cases) in TABLES.items():
        others = {r.name for t, _ in TABLES.values() if t is not table for r in t.rules}
        decided = {c.rule for c in cases.values()}
        missing = [r.name for r in table.rules if r.name not in others | decided]
        assert missing == [], name


def test_a_rule_name_names_one_rule() -> None:
    by_name: dict[str, object] = {}
    for table, _ in TABLES.values():
        for rule in table.rules:
            assert by_name.setdefault(rule.name, rule) is rule


def test_every_cause_is_produced_by_some_case() -> None:
    produced = {c.cause for _, cases in TABLES.values() for c in cases.values()}
    assert [cause for cause in CAUSES if cause not in produced] == []


def test_causes_are_the_public_contract_in_order() -> None:
    assert list(CAUSES) == PUBLIC_CAUSES


def test_sent_delivery_has_no_cause() -> None:
    assert classify_delivery("sent", "2.0.0", 250, "250 2.0.0 Ok: queued") is None


def test_codes_are_read_from_the_reply_when_the_caller_has_none() -> None:
    text = said(MX, "550 5.1.1 <nobody@example.net>: Mailbox unknown here")
    assert classify_delivery("bounced", None, None, text) == Classification(
        "unknown_recipient", False
    )


def test_relay_host_name_does_not_trigger_a_rule() -> None:
    text = said("mx.spamhaus-customer.example[192.0.2.9]", "550 5.0.0 Go away")
    assert classify_delivery("bounced", "5.0.0", 550, text) == Classification(
        "other", False
    )


def test_remote_reply_saying_connection_refused_is_not_a_refused_connection() -> None:
    text = said(MX, "554 5.7.1 Connection refused, 203.0.113.5 is listed", "CONNECT")
    assert classify_delivery("bounced", "5.7.1", 554, text) == Classification(
        "policy_rejected", False
    )


def test_dsn_prefix_matches_whole_components_only() -> None:
    rule = DELIVERY_RULES.first("bounced", "5.1.10", 550, "550 5.1.10 go away")
    assert rule is not None
    assert rule.name == "dsn-x.1.10"


def test_rule_with_unknown_cause_is_refused() -> None:
    from mailtriage.parsers.classify import Rule

    with pytest.raises(ValueError, match="unknown cause"):
        RuleTable([Rule("bad", "mailbox_gone", words=("gone",))])


optional_text = st.none() | st.text(max_size=12)
codes = st.none() | st.integers(min_value=-1000, max_value=100_000)


@given(
    status=st.sampled_from(["deferred", "bounced", "expired", "undeliverable"])
    | st.text(max_size=10),
    dsn=optional_text,
    code=codes,
    text=st.text(max_size=3000),
)
def test_delivery_never_raises_and_names_a_public_cause(
    status: str, dsn: str | None, code: int | None, text: str
) -> None:
    result = classify_delivery(status, dsn, code, text)
    assert result is None or (
        result.cause in CAUSES and isinstance(result.temporary, bool)
    )


@given(dsn=optional_text, code=codes, text=st.text(max_size=3000))
def test_reject_never_raises_and_names_a_public_cause(
    dsn: str | None, code: int | None, text: str
) -> None:
    assert classify_reject(code, dsn, text).cause in CAUSES


@given(reason=st.text(max_size=3000))
def test_dovecot_never_raises_and_names_a_public_cause(reason: str) -> None:
    assert classify_dovecot(reason).cause in CAUSES


def test_huge_text_is_classified_by_its_start() -> None:
    text = said(MX, "552 5.2.2 Mailbox full") + " x" * 500_000
    assert classify_delivery("bounced", "5.2.2", 552, text) == Classification(
        "quota_exceeded", False
    )
