"""Postfix messages to records, over real lines.

The lines come from ../shared/corpus (public test fixtures and documentation, see its
SOURCES.md), with the envelope removed, and from real Postfix 3.7.11 and Dovecot
2.3.19 run on loopback by tests/daemons.py (marked "lab" below; long queue IDs on).
Ids ending in "-format" are the few cases neither source has (an IPv6 client in a DNS
warning, smtpd_client_port_logging, a panic, bare socket and IPv6 relays): lines
written in Postfix's format.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtriage.parsers import records
from mailtriage.parsers.postfix import parse_postfix

RECORD_KINDS = {
    kind
    for value in vars(records).values()
    if isinstance(kind := getattr(value, "kind", None), str)
}

# A message from the lab: one mail to five local recipients over LMTP (one refused at
# RCPT for being over quota, one over quota at end of DATA, one unknown to Dovecot).
LAB_LMTP_SAVED = (
    "4jgLcj6g2QzJBVM: to=<dave@acme.example>, relay=127.0.0.1[127.0.0.1]:47125, "
    "delay=0.13, delays=0.02/0.02/0.02/0.08, dsn=2.0.0, status=sent (250 2.0.0 "
    "<dave@acme.example> gDdwOoWhEWs6XAAAg+zDdQ:R4 Saved)"
)
# Dovecot's line for the same recipient: the session ID in its prefix is the join key.
LAB_DOVECOT_SAVED = (
    "Dec 03 17:06:14 lmtp(dave@acme.example)<23610><gDdwOoWhEWs6XAAAg+zDdQ:R4>: Info: "
    "msgid=<e37fb3d68a814fa0801553b3822065f5@partner.example>: saved mail to INBOX"
)


def case(case_id: str, service: str, message: str, kind: str, **fields: Any) -> Any:
    return pytest.param(service, message, kind, fields, id=case_id)


QMGR_AND_CLEANUP = [
    case(
        "qmgr-from",
        "qmgr",
        "065AB16D682C: from=<a.foo.sadasd1231as@example.com>, size=5608, nrcpt=1 "
        "(queue active)",
        "qmgr_from",
        queue_id="065AB16D682C",
        sender="a.foo.sadasd1231as@example.com",
        size=5608,
        nrcpt=1,
    ),
    case(
        "qmgr-from-null-sender-long-queue-id",
        "qmgr",
        "3mPVKl0Mhjz7sXv: from=<>, size=2666, nrcpt=2 (queue active)",
        "qmgr_from",
        queue_id="3mPVKl0Mhjz7sXv",
        sender="",
        size=2666,
        nrcpt=2,
    ),
    case(
        "qmgr-from-without-angle-brackets",
        "qmgr",
        "ED373F8043E: from=rory@rory-dev.localdomain, size=270, nrcpt=1 (queue active)",
        "qmgr_from",
        sender="rory@rory-dev.localdomain",
        size=270,
    ),
    case(
        "qmgr-removed",
        "qmgr",
        "163CB3EE5E7F: removed",
        "qmgr_removed",
        queue_id="163CB3EE5E7F",
    ),
    case(
        "qmgr-expired-returned",
        "qmgr",
        "BACE842E72: from=<noreply@domain.com>, status=expired, returned to sender",
        "qmgr_expired",
        queue_id="BACE842E72",
        sender="noreply@domain.com",
        returned=True,
    ),
    case(
        "qmgr-force-expired",
        "qmgr",
        "BACE842E73: from=<noreply@domain.com>, status=force-expired, returned to "
        "sender",
        "qmgr_expired",
        returned=True,
    ),
    case(
        "qmgr-skipped-still-being-delivered",
        "qmgr",
        "ED06590130AA1C9D6D862: skipped, still being delivered",
        "queue_event",
        queue_id="ED06590130AA1C9D6D862",
        event="skipped",
    ),
    case(
        "cleanup-message-id",
        "cleanup",
        "3mPVKl0Mhjz7sXv: message-id=<E1ZB06G-0006n5-Vp@anc-dev-web1.slc.example.net>",
        "cleanup_message_id",
        queue_id="3mPVKl0Mhjz7sXv",
        message_id="E1ZB06G-0006n5-Vp@anc-dev-web1.slc.example.net",
        resent=False,
    ),
    case(
        "cleanup-message-id-without-brackets",
        "cleanup",
        "4AA091855DA0: message-id=656587JHGJHG",
        "cleanup_message_id",
        message_id="656587JHGJHG",
    ),
    case(
        "cleanup-resent-message-id",
        "cleanup",
        "3mL1Hq0Tgvz7sWh: resent-message-id=<3mL1Hq0Tgvz7sWh@mx14.example.net>",
        "cleanup_message_id",
        message_id="3mL1Hq0Tgvz7sWh@mx14.example.net",
        resent=True,
    ),
    case(
        "cleanup-milter-reject-end-of-message",
        "cleanup",
        "4104E3D: milter-reject: END-OF-MESSAGE from 061238241086.static.ctinets.com"
        "[61.238.241.86]: 5.7.1 Blocked by SpamAssassin; from=<wumt5@cchfdc.com> "
        "to=<voorzitter@example.com> proto=ESMTP helo=<ecsolved.com>",
        "reject",
        action="milter-reject",
        queue_id="4104E3D",
        stage="END-OF-MESSAGE",
        client_ip="61.238.241.86",
        smtp_code=None,
        dsn="5.7.1",
        text="Blocked by SpamAssassin",
        sender="wumt5@cchfdc.com",
        recipient="voorzitter@example.com",
        source="cleanup",
    ),
    case(
        "cleanup-header-check-replace",
        "cleanup",
        "99B222C0039E: replace: header MIME-Version: 1.0 from unknown[68.183.218.8]; "
        "from=<mail@sender2.example.com> to=<mail@sender2.example.com> proto=ESMTP "
        "helo=<phplist.sender.example.com>: Mime-Version: 1.0",
        "reject",
        action="replace",
        stage="header",
        client_host="unknown",
        client_ip="68.183.218.8",
        text="Mime-Version: 1.0",
        matched="MIME-Version: 1.0",
        helo="phplist.sender.example.com",
        source="cleanup",
    ),
    case(
        "cleanup-header-check-warning",
        "cleanup",
        "D8B07E3DB6: warning: header Subject: https://drive.google.com/file/d/0B8w/view"
        " from o1678917x173.outbound-mail.sendgrid.net[167.89.17.173]; "
        "from=<bounces+2320708@sendgrid.net> to=<frank.test@example.co.uk> "
        "proto=ESMTP helo=<o1678917x173.outbound-mail.sendgrid.net>",
        "reject",
        action="warning",
        stage="header",
        client_ip="167.89.17.173",
        matched="Subject: https://drive.google.com/file/d/0B8w/view",
        sender="bounces+2320708@sendgrid.net",
    ),
    case(
        "cleanup-header-check-info-from-local",
        "cleanup",
        "D95341E50350: info: header Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= test from "
        "local; from=<from@example.com> to=<to@example.com>",
        "reject",
        action="info",
        client_host=None,
        client_ip=None,
        recipient="to@example.com",
    ),
    case(
        "cleanup-header-check-reject-lab",
        "cleanup",
        "74ACB20CF40: reject: header Subject: BUY NOW cheap from localhost[127.0.0.1]; "
        "from=<sender@partner.example> to=<alice@acme.example> proto=ESMTP "
        "helo=<client.example>: 5.7.1 message content rejected",
        "reject",
        action="reject",
        queue_id="74ACB20CF40",
        stage="header",
        client_host="localhost",
        client_ip="127.0.0.1",
        smtp_code=None,
        dsn="5.7.1",
        text="message content rejected",
        sender="sender@partner.example",
        recipient="alice@acme.example",
        proto="ESMTP",
        helo="client.example",
        source="cleanup",
        matched="Subject: BUY NOW cheap",
    ),
    case(
        "cleanup-header-check-hold-lab",
        "cleanup",
        "756DB20CF40: hold: header Subject: please hold me from localhost[127.0.0.1]; "
        "from=<sender@partner.example> to=<alice@acme.example> proto=ESMTP "
        "helo=<client.example>: held for review",
        "reject",
        action="hold",
        text="held for review",
        matched="Subject: please hold me",
    ),
    case(
        "cleanup-header-check-discard-lab",
        "cleanup",
        "772C720CF42: discard: header Subject: drop me please from localhost"
        "[127.0.0.1]; from=<sender@partner.example> to=<alice@acme.example> "
        "proto=ESMTP helo=<client.example>: dropped",
        "reject",
        action="discard",
        text="dropped",
    ),
    case(
        "cleanup-milter-header-redirect",
        "cleanup",
        "4104E3D: milter-header-redirect: header X-Spam-Status: Yes, score=39.3 "
        "from 061238241086.static.ctinets.com[61.238.241.86]; from=<wumt5@cchfdc.com> "
        "to=<voorzitter@example.com> proto=ESMTP helo=<ecsolved.com>: tom@example.com",
        "reject",
        action="milter-header-redirect",
        text="tom@example.com",
        matched="X-Spam-Status: Yes, score=39.3",
    ),
    case(
        "cleanup-warning-without-queue-id",
        "cleanup",
        "warning: 9BECF3F19D: sender_canonical_maps map lookup problem for "
        "sender@example.com -- message not accepted, try again later",
        "severity",
        severity="warning",
    ),
]

SMTPD = [
    case(
        "smtpd-connect",
        "smtpd",
        "connect from h-d04c17c68166c9deda13c8e79ad[112.83.23.93]",
        "smtpd_connect",
        client_host="h-d04c17c68166c9deda13c8e79ad",
        client_ip="112.83.23.93",
    ),
    case(
        "smtpd-connect-ipv6",
        "smtpd",
        "connect from unknown[1002:1712:4e2b:d061:5dff:19f:c85f:a48f]",
        "smtpd_connect",
        client_ip="1002:1712:4e2b:d061:5dff:19f:c85f:a48f",
    ),
    case(
        "smtpd-disconnect-command-counts",
        "smtpd",
        "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=5/6 data=1 quit=1 "
        "commands=9/10",
        "smtpd_disconnect",
        client_ip="127.0.0.1",
        commands={
            "ehlo": "1",
            "mail": "1",
            "rcpt": "5/6",
            "data": "1",
            "quit": "1",
            "commands": "9/10",
        },
    ),
    case(
        "smtpd-disconnect-without-counts",
        "smtpd",
        "disconnect from example.com[127.0.0.1]",
        "smtpd_disconnect",
        commands={},
    ),
    case(
        "smtpd-client",
        "smtpd",
        "DADADADADA: client=h-d04c17c68166c9deda13c8e79ad[112.83.23.93]",
        "smtpd_client",
        queue_id="DADADADADA",
        client_ip="112.83.23.93",
        sasl_username=None,
    ),
    case(
        "smtpd-client-sasl-lab",
        "smtpd",
        "4jgLcj6zCXzJBVS: client=localhost[127.0.0.1], sasl_method=PLAIN, "
        "sasl_username=acme-relay",
        "smtpd_client",
        queue_id="4jgLcj6zCXzJBVS",
        sasl_method="PLAIN",
        sasl_username="acme-relay",
    ),
    case(
        "smtpd-client-orig-queue-id",
        "smtpd",
        "6B4A9924782: client=localhost[127.0.0.1], orig_queue_id=951F692462F "
        "orig_client=hades.porcupine.org[168.100.189.10]",
        "smtpd_client",
        orig_queue_id="951F692462F",
    ),
    case(
        "smtpd-client-noqueue-before-queue-filter",
        "smtpd",
        "NOQUEUE: client=misas5.babino.pl[207.154.235.157]",
        "smtpd_event",
        event="client",
        client_ip="207.154.235.157",
    ),
    case(
        "smtpd-reject-rcpt-relay-denied",
        "smtpd",
        "NOQUEUE: reject: RCPT from 1-2-3-4-example.com[1.2.3.4]: 554 5.7.1 "
        "<smtp@example.com>: Relay access denied; from=<john@example.com> "
        "to=<smtp@example.org> proto=SMTP helo=<198.51.100.17>",
        "reject",
        action="reject",
        queue_id=None,
        stage="RCPT",
        client_host="1-2-3-4-example.com",
        client_ip="1.2.3.4",
        smtp_code=554,
        dsn="5.7.1",
        text="<smtp@example.com>: Relay access denied",
        sender="john@example.com",
        recipient="smtp@example.org",
        proto="SMTP",
        helo="198.51.100.17",
        source="smtpd",
    ),
    case(
        "smtpd-reject-rcpt-with-queue-id-lab",
        "smtpd",
        "4jgLcj6g2QzJBVM: reject: RCPT from localhost[127.0.0.1]: 550 5.1.1 "
        "<nobody@acme.example>: Recipient address rejected: User unknown in virtual "
        "mailbox table; from=<sender@partner.example> to=<nobody@acme.example> "
        "proto=ESMTP helo=<client.example>",
        "reject",
        queue_id="4jgLcj6g2QzJBVM",
        smtp_code=550,
        dsn="5.1.1",
        recipient="nobody@acme.example",
    ),
    case(
        "smtpd-reject-null-sender",
        "smtpd",
        "D155CDC24C3: reject: RCPT from unknown[30.207.11.100]: 450 4.7.1 <>: Sender "
        "address rejected: You are sending too many emails, contact helpdesk; "
        "from=<> to=<h-2d34d8bb8@h-93a1a37cd1.com> proto=ESMTP helo=<localhost>",
        "reject",
        sender="",
        smtp_code=450,
    ),
    case(
        "smtpd-reject-rbl-text-with-semicolons",
        "smtpd",
        "NOQUEUE: reject: RCPT from badguy.example.com[93.184.216.34]: 454 4.7.1 "
        "Service unavailable; Client host [93.184.216.34] blocked using "
        "rbl.example.com; http://www.example.com/query?ip=93.184.216.34; "
        "from=<spammer@example.com> to=<goodguy@example.com> proto=ESMTP "
        "helo=<badguy.example.com>",
        "reject",
        text="Service unavailable; Client host [93.184.216.34] blocked using "
        "rbl.example.com; http://www.example.com/query?ip=93.184.216.34",
        sender="spammer@example.com",
    ),
    case(
        "smtpd-reject-connect-stage",
        "smtpd",
        "NOQUEUE: reject: CONNECT from unknown[192.0.2.114]: 450 4.7.25 Client host "
        "rejected: cannot find your hostname, [178.215.236.114]; proto=SMTP",
        "reject",
        stage="CONNECT",
        smtp_code=450,
        dsn="4.7.25",
        proto="SMTP",
        sender=None,
    ),
    case(
        "smtpd-reject-ehlo-stage",
        "smtpd",
        "NOQUEUE: reject: EHLO from s271272.static.corbina.ru[78.107.251.238]: 504 "
        "5.5.2 <User>: Helo command rejected: need fully-qualified hostname; "
        "proto=SMTP helo=<User>",
        "reject",
        stage="EHLO",
        helo="User",
        recipient=None,
    ),
    case(
        "smtpd-reject-mail-stage-without-enhanced-code",
        "smtpd",
        "NOQUEUE: reject: MAIL from localhost[127.0.0.1]: 452 Insufficient system "
        "storage",
        "reject",
        stage="MAIL",
        smtp_code=452,
        dsn=None,
        text="Insufficient system storage",
    ),
    case(
        "smtpd-reject-vrfy-stage",
        "smtpd",
        "NOQUEUE: reject: VRFY from unknown[2001:968:9999:20:88b:9b7d:2a54:2bd2]: 454 "
        "4.7.1 <aap@henk.com>: Relay access denied; to=<aap@henk.com> proto=SMTP "
        "helo=<me>",
        "reject",
        stage="VRFY",
        client_ip="2001:968:9999:20:88b:9b7d:2a54:2bd2",
        recipient="aap@henk.com",
        sender=None,
    ),
    case(
        "smtpd-reject-bdat-stage-long-queue-id",
        "smtpd",
        "44JCRG5tYPzCqt2: reject: BDAT from signing-milter.example.com[192.0.2.109]: "
        "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce; from=<> "
        "to=<some@example.com> proto=ESMTP helo=<domain.tld>",
        "reject",
        queue_id="44JCRG5tYPzCqt2",
        stage="BDAT",
    ),
    case(
        "smtpd-milter-reject-data-stage",
        "smtpd",
        "1D8CC1CA0A7F: milter-reject: DATA from 66-220-155-151.mail-mail.facebook.com"
        "[192.0.2.151]: 550 5.7.1 Command rejected; from=<security@mail.example.com> "
        "to=<hostmaster@example.com> proto=ESMTP helo=<192-0-2-151.mail.example.com>",
        "reject",
        action="milter-reject",
        stage="DATA",
        text="Command rejected",
    ),
    case(
        "smtpd-milter-reject-greylisting",
        "smtpd",
        "NOQUEUE: milter-reject: RCPT from mailrelay.example.com[8.8.8.8]: 451 4.7.1 "
        "Greylisting in action, please come back later; from=<support@example.com> "
        "to=<example@example.org> proto=ESMTP helo=<mailrelay.example.com>",
        "reject",
        action="milter-reject",
        smtp_code=451,
        dsn="4.7.1",
    ),
    case(
        "smtpd-reject-warning",
        "smtpd",
        "NOQUEUE: reject_warning: RCPT from example.com[93.184.216.34]: 553 5.7.1 "
        "<sender@example.com>: Sender address rejected: not owned by user ph123; "
        "from=<sender@example.com> to=<recipient@example.com> proto=ESMTP "
        "helo=<example.com>",
        "reject",
        action="reject_warning",
        smtp_code=553,
    ),
    case(
        "smtpd-discard-mail-stage",
        "smtpd",
        "NOQUEUE: discard: MAIL from ccm231.constantcontact.com[208.75.123.231]: "
        "<bsdbdsfbw==_4343@in.constantcontact.com>: Sender address SPAM; "
        "from=<bsdbdsfbw==_4343@in.constantcontact.com> proto=ESMTP "
        "helo=<ccm231.constantcontact.com>",
        "reject",
        action="discard",
        stage="MAIL",
        smtp_code=None,
        text="<bsdbdsfbw==_4343@in.constantcontact.com>: Sender address SPAM",
    ),
    case(
        "smtpd-hold-action-lab",
        "smtpd",
        "NOQUEUE: hold: RCPT from localhost[127.0.0.1]: <hold@acme.example>: "
        "Recipient address triggers HOLD action; from=<sender@partner.example> "
        "to=<hold@acme.example> proto=ESMTP helo=<client.example>",
        "reject",
        action="hold",
        queue_id=None,
        stage="RCPT",
        smtp_code=None,
        text="<hold@acme.example>: Recipient address triggers HOLD action",
        recipient="hold@acme.example",
    ),
    case(
        "smtpd-discard-action-lab",
        "smtpd",
        "NOQUEUE: discard: RCPT from localhost[127.0.0.1]: <discard@acme.example>: "
        "Recipient address triggers DISCARD action; from=<sender@partner.example> "
        "to=<discard@acme.example> proto=ESMTP helo=<client.example>",
        "reject",
        action="discard",
        recipient="discard@acme.example",
    ),
    case(
        "smtpd-redirect-action-lab",
        "smtpd",
        "NOQUEUE: redirect: RCPT from localhost[127.0.0.1]: <redirect@acme.example>: "
        "Recipient address triggers REDIRECT dave@acme.example; "
        "from=<sender@partner.example> to=<redirect@acme.example> proto=ESMTP "
        "helo=<client.example>",
        "reject",
        action="redirect",
        text="<redirect@acme.example>: Recipient address triggers REDIRECT "
        "dave@acme.example",
    ),
    case(
        "smtpd-warn-action-lab",
        "smtpd",
        "NOQUEUE: warn: RCPT from localhost[127.0.0.1]: check this one; "
        "from=<sender@partner.example> to=<warn@acme.example> proto=ESMTP "
        "helo=<client.example>",
        "reject",
        action="warn",
        text="check this one",
        recipient="warn@acme.example",
    ),
    case(
        "smtpd-filter-action",
        "smtpd",
        "NOQUEUE: filter: RCPT from unknown[30.207.11.100]: <>: Sender address "
        "triggers FILTER smtp-amavis:[127.0.0.1]:10026; from=<> "
        "to=<h-3c3175932cb3b@h-526472e87.com> proto=ESMTP helo=<localhost>",
        "reject",
        action="filter",
        text="<>: Sender address triggers FILTER smtp-amavis:[127.0.0.1]:10026",
    ),
    case(
        "smtpd-reject-postscreen-style-commas",
        "postscreen",
        "NOQUEUE: reject: RCPT from [157.122.148.242]:47407: 550 5.7.1 Service "
        "unavailable; client [157.122.148.242] blocked using bl.spamcop.net; "
        "from=<kos@mafia.network>, to=<z13699753428@vip.163.com>, proto=ESMTP, "
        "helo=<XL-20160217QQJV>",
        "reject",
        source="postscreen",
        client_host=None,
        client_ip="157.122.148.242",
        sender="kos@mafia.network",
        recipient="z13699753428@vip.163.com",
        proto="ESMTP",
        helo="XL-20160217QQJV",
    ),
    case(
        "smtpd-proxy-reject",
        "smtpd",
        "proxy-reject: END-OF-MESSAGE: 554 5.7.0 Reject, contact postmaster@example."
        "com, id=31619-02 - spam; from=<> to=<user2@example2.com> proto=SMTP "
        "helo=<17.33.12.53>",
        "reject",
        action="proxy-reject",
        stage="END-OF-MESSAGE",
        client_ip=None,
        smtp_code=554,
        dsn="5.7.0",
    ),
    case(
        "smtpd-proxy-accept-links-new-queue-id",
        "smtpd",
        "proxy-accept: END-OF-MESSAGE: 250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): "
        "250 2.0.0 Ok: queued as A0320E00C3; from=<visitbrussels@cmail19.com> "
        "to=<user@test.com> proto=ESMTP helo=<mx139.g.outbound.createsend.com>",
        "queue_event",
        queue_id="A0320E00C3",
        event="proxy_accept",
    ),
    case(
        "smtpd-lost-connection-after-stage",
        "smtpd",
        "lost connection after AUTH from 201.130.128.222.ded.telnor.net"
        "[201.130.128.222]:59123",
        "smtpd_event",
        event="lost_connection",
        stage="AUTH",
        client_host="201.130.128.222.ded.telnor.net",
        client_ip="201.130.128.222",
    ),
    case(
        "smtpd-lost-connection-after-data-bytes",
        "smtpd",
        "lost connection after DATA (7774180 bytes) from unknown[72.13.58.7]",
        "smtpd_event",
        event="lost_connection",
        stage="DATA",
        detail="7774180 bytes",
    ),
    case(
        "smtpd-noqueue-lost-connection",
        "smtpd",
        "NOQUEUE: lost connection after CONNECT from unknown[192.0.2.25]",
        "smtpd_event",
        event="lost_connection",
        stage="CONNECT",
    ),
    case(
        "smtpd-timeout-after-end-of-message",
        "smtpd",
        "timeout after END-OF-MESSAGE from localhost[127.0.0.1]",
        "smtpd_event",
        event="timeout",
        stage="END-OF-MESSAGE",
    ),
    case(
        "smtpd-too-many-errors",
        "smtpd",
        "too many errors after RCPT from unknown[157.122.148.252]",
        "smtpd_event",
        event="too_many_errors",
        stage="RCPT",
    ),
    case(
        "smtpd-improper-pipelining",
        "smtpd",
        "improper command pipelining after AUTH from unknown[1.2.3.4]: QUIT",
        "smtpd_event",
        event="improper_pipelining",
        stage="AUTH",
        detail="QUIT",
    ),
    case(
        "smtpd-tls-established",
        "smtpd",
        "Anonymous TLS connection established from unknown[30.207.11.100]: TLSv1.2 "
        "with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
        "smtpd_event",
        event="tls_established",
        client_host="unknown",
        detail="Anonymous TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 "
        "(256/256 bits)",
    ),
    case(
        "smtpd-ssl-accept-error",
        "smtpd",
        "SSL_accept error from unknown[203.0.113.10]: lost connection",
        "smtpd_event",
        event="tls_error",
        client_ip="203.0.113.10",
        detail="SSL_accept error: lost connection",
    ),
    case(
        "smtpd-sasl-authentication-failed",
        "smtpd",
        "warning: unknown[122.166.249.154]:48123: SASL LOGIN authentication failed: "
        "UGFzc3dvcmQ6",
        "smtpd_event",
        event="sasl_failed",
        client_host="unknown",
        client_ip="122.166.249.154",
        detail="SASL LOGIN authentication failed: UGFzc3dvcmQ6",
    ),
    case(
        "smtpd-non-smtp-command",
        "smtpd",
        "warning: non-SMTP command from unknown[192.168.1.1]: GET / HTTP/1.1",
        "smtpd_event",
        event="non_smtp_command",
        detail="GET / HTTP/1.1",
    ),
    case(
        "smtpd-hostname-does-not-resolve",
        "smtpd",
        "warning: hostname bad.example.com does not resolve to address 192.0.2.44: "
        "Name or service not known",
        "smtpd_event",
        event="warning_client",
        client_host="bad.example.com",
        client_ip="192.0.2.44",
    ),
    case(
        "smtpd-hostname-does-not-resolve-ipv6-format",
        "smtpd",
        "warning: hostname mail.example.net does not resolve to address "
        "2001:db8::25: Name or service not known",
        "smtpd_event",
        event="warning_client",
        client_host="mail.example.net",
        client_ip="2001:db8::25",
    ),
    case(
        "smtpd-disconnect-with-client-port-format",
        "smtpd",
        "disconnect from unknown[192.0.2.7]:51234 ehlo=1 quit=1 commands=2",
        "smtpd_disconnect",
        client_ip="192.0.2.7",
        commands={"ehlo": "1", "quit": "1", "commands": "2"},
    ),
    case(
        "smtpd-rate-limit-exceeded",
        "smtpd",
        "warning: Connection rate limit exceeded: 31 from spamhost.domain.org"
        "[192.0.2.123] for service smtpd",
        "smtpd_event",
        event="warning_client",
        client_ip="192.0.2.123",
    ),
    case(
        "smtpd-other-warning-is-severity",
        "smtpd",
        "warning: TLS library problem: error:14209102:SSL routines:"
        "tls_early_post_process_client_hello:unsupported protocol",
        "severity",
        severity="warning",
    ),
    case(
        "smtpd-fatal",
        "smtpd",
        "fatal: file /etc/postfix/main.cf: parameter default_privs: unknown user "
        "name value: nobody",
        "severity",
        severity="fatal",
    ),
    case(
        "smtpd-table-changed",
        "smtpd",
        "table hash:/etc/postfix/virtual_mailbox_maps(0,lock|fold_fix) has changed "
        "-- restarting",
        "info",
        what="table_changed",
    ),
]

DELIVERY = [
    case(
        "smtp-sent-queued-as",
        "smtp",
        "0D2D63012027: to=<h-8629463e55008@h-5e67b9b4406.com>, relay="
        "h-213dce00be4cedefd[199.170.45.30]:25, delay=1.8, delays=0.01/0.02/1.5/0.26,"
        " dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4DRBDj4tP9zdZLM)",
        "delivery",
        queue_id="0D2D63012027",
        transport="smtp",
        recipient="h-8629463e55008@h-5e67b9b4406.com",
        status="sent",
        relay_host="h-213dce00be4cedefd",
        relay_ip="199.170.45.30",
        relay_port=25,
        delay=1.8,
        delay_before_qmgr=0.01,
        delay_in_qmgr=0.02,
        delay_conn_setup=1.5,
        delay_transmission=0.26,
        dsn="2.0.0",
        response="250 2.0.0 Ok: queued as 4DRBDj4tP9zdZLM",
        smtp_code=250,
        enhanced_code="2.0.0",
        text="Ok: queued as 4DRBDj4tP9zdZLM",
        dovecot_session=None,
    ),
    case(
        "smtp-sent-orig-to-conn-use-no-port",
        "smtp",
        "19B6B2900FE: to=<wietse@test.example.com>, orig_to=<wietse@test>, "
        "relay=mail.example.com[1.2.3.4], conn_use=2, delay=0.22, "
        "delays=0.04/0.01/0.05/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
        "delivery",
        orig_recipient="wietse@test",
        conn_use=2,
        relay_port=None,
        text="Ok",
    ),
    case(
        "smtp-sent-ipv6-relay",
        "smtp",
        "4E74613FE76: to=<redacted@gmail.com>, relay=gmail-smtp-in.l.google.com"
        "[2607:f8b0:400e:c04::1b]:25, delay=1.9, delays=0.05/0/1.1/0.71, dsn=5.7.1, "
        "status=bounced (host gmail-smtp-in.l.google.com[2607:f8b0:400e:c04::1b] "
        "said: 550-5.7.1 [2a01:4f8:0:0::1] Our system has detected that this message "
        "is 550-5.7.1 likely unsolicited mail. 550 5.7.1 Please visit "
        "https://support.google.com/mail/answer/188131 - gsmtp (in reply to end of "
        "DATA command))",
        "delivery",
        status="bounced",
        relay_host="gmail-smtp-in.l.google.com",
        relay_ip="2607:f8b0:400e:c04::1b",
        relay_port=25,
        smtp_code=550,
        enhanced_code="5.7.1",
        text="[2a01:4f8:0:0::1] Our system has detected that this message is likely "
        "unsolicited mail. Please visit https://support.google.com/mail/answer/188131"
        " - gsmtp",
    ),
    case(
        "smtp-bounced-said-user-unknown",
        "smtp",
        "776E41855DB2: to=<invalid.email@example.com>, relay=mx.example.com"
        "[11.22.33.44]:25, delay=1.9, delays=0/0/1.5/0.37, dsn=5.1.1, status=bounced "
        "(host mx.example.com[11.22.33.44] said: 550 5.1.1 <invalid.email@example.com>"
        " User unknown (in reply to RCPT TO command))",
        "delivery",
        status="bounced",
        dsn="5.1.1",
        smtp_code=550,
        enhanced_code="5.1.1",
        text="<invalid.email@example.com> User unknown",
    ),
    case(
        "smtp-deferred-greylisted-lab",
        "smtp",
        "4jgLcj6nTKzJBVN: to=<y@grey.example>, relay=127.0.0.1[127.0.0.1]:56925, "
        "delay=0.08, delays=0.01/0.05/0/0.02, dsn=4.2.0, status=deferred (host "
        "127.0.0.1[127.0.0.1] said: 450 4.2.0 <y@grey.example>: Recipient address "
        "rejected: Greylisted, see http://postgrey.schweikert.ch/help/x.html (in "
        "reply to RCPT TO command))",
        "delivery",
        status="deferred",
        smtp_code=450,
        enhanced_code="4.2.0",
        relay_port=56925,
    ),
    case(
        "smtp-deferred-connect-refused-lab",
        "smtp",
        "4jgLcj6nTKzJBVN: to=<x@down.example>, relay=none, delay=0.03, "
        "delays=0.01/0.02/0/0, dsn=4.4.1, status=deferred (connect to "
        "127.0.0.1[127.0.0.1]:35685: Connection refused)",
        "delivery",
        relay="none",
        relay_host=None,
        relay_ip=None,
        smtp_code=None,
        enhanced_code=None,
        dsn="4.4.1",
        text="connect to 127.0.0.1[127.0.0.1]:35685: Connection refused",
    ),
    case(
        "smtp-deferred-dns-lab",
        "smtp",
        "4jgLcj6nTKzJBVN: to=<w@unrouted.example>, relay=none, delay=0.07, "
        "delays=0.01/0.06/0/0, dsn=4.4.3, status=deferred (Host or domain name not "
        "found. Name service error for name=unrouted.example type=MX: Host not "
        "found, try again)",
        "delivery",
        dsn="4.4.3",
        smtp_code=None,
        text="Host or domain name not found. Name service error for "
        "name=unrouted.example type=MX: Host not found, try again",
    ),
    case(
        "smtp-deferred-refused-to-talk",
        "smtp",
        "2B7CA1F56B: to=<recipient@example.com>, relay=mx01.mail.icloud.com"
        "[17.57.152.14]:25, delay=372639, delays=372635/0.04/3.7/0, dsn=4.7.0, "
        "status=deferred (host mx02.mail.icloud.com[17.57.152.14] refused to talk to "
        "me: 554 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi"
        "?ip=142.93.1.1)",
        "delivery",
        smtp_code=554,
        enhanced_code="5.7.0",
        delay=372639.0,
    ),
    case(
        "smtp-bounced-nullmx-parenthesis-in-text",
        "smtp",
        "1310930001DB: to=<recipient42@example.com>, relay=none, delay=0.09, "
        "delays=0.02/0.05/0.02/0, dsn=5.1.0, status=bounced (Domain example.com does "
        "not accept mail (nullMX))",
        "delivery",
        response="Domain example.com does not accept mail (nullMX)",
        text="Domain example.com does not accept mail (nullMX)",
    ),
    case(
        "smtp-quoted-local-part-with-spaces",
        "smtp",
        'D298F2C60812: to=<"user 1234 with space"@icloud.com>, relay=mx6.mail.icloud'
        ".com[17.178.97.79]:25, delay=428621, delays=428619/0.02/1.9/0, dsn=4.7.0, "
        "status=deferred (host mx6.mail.icloud.com[17.178.97.79] refused to talk to "
        "me: 550 5.7.0 Blocked)",
        "delivery",
        recipient='"user 1234 with space"@icloud.com',
    ),
    case(
        "smtp-tls-field",
        "smtp",
        "7EE668039: to=<user@example.com>, relay=mail.example.com[1.2.3.4]:25, "
        "delay=3.6, delays=0.08/0.02/0.85/0.14, tls=dane/requiretls, dsn=2.1.5, "
        "status=sent (250 2.0.0 Ok: queued as 153053D)",
        "delivery",
        tls="dane/requiretls",
        dsn="2.1.5",
    ),
    case(
        "smtp-tls-field-after-dsn",
        "smtp",
        "7EE668039: to=<admin@example.com>, relay=127.0.0.1[127.0.0.1]:2525, "
        "delay=3.6, delays=0.2/0.02/0.04/3.3, dsn=2.0.0, "
        "tls=dane/!requiretls:nostarttls, status=sent (250 2.0.0 Ok: queued as "
        "153053D)",
        "delivery",
        tls="dane/!requiretls:nostarttls",
        relay_port=2525,
    ),
    case(
        "smtp-address-verification-deliverable",
        "smtp",
        "2847EE008E: to=<info@test2.com>, relay=mail.domain.test[94.23.191.34]:25, "
        "delay=6.3, delays=0.04/0.01/6/0.19, dsn=2.1.5, status=deliverable (250 "
        "2.1.5 Ok)",
        "delivery",
        status="deliverable",
    ),
    case(
        "lmtp-sent-dovecot-session-lab",
        "lmtp",
        LAB_LMTP_SAVED,
        "delivery",
        transport="lmtp",
        relay_host="127.0.0.1",
        relay_ip="127.0.0.1",
        relay_port=47125,
        smtp_code=250,
        dovecot_session="gDdwOoWhEWs6XAAAg+zDdQ:R4",
    ),
    case(
        "lmtp-sent-unix-socket-relay",
        "lmtp",
        "AED441541AFC: to=<h-06819@h-b4e62aa55116.com>, relay=h-ac7182297368ddc0f"
        "[private/dovecot-lmtp], delay=0.21, delays=0.07/0.01/0.01/0.12, dsn=2.0.0, "
        "status=sent (250 2.0.0 <h-06819@h-b4e62aa55116.com> wArTL0TxF2AccAAAYr7Zvw "
        "Saved)",
        "delivery",
        relay="h-ac7182297368ddc0f[private/dovecot-lmtp]",
        relay_host="h-ac7182297368ddc0f",
        relay_ip=None,
        relay_port=None,
        dovecot_session="wArTL0TxF2AccAAAYr7Zvw",
    ),
    case(
        "lmtp-relay-bare-socket-name-format",
        "lmtp",
        "4BC9B2C0B8: to=<alice@acme.example>, relay=private/dovecot-lmtp, "
        "delay=0.05, delays=0.01/0/0.01/0.03, dsn=2.0.0, status=sent (250 2.0.0 "
        "<alice@acme.example> 7inDBT+SEWvtFwAAg+zDdQ Saved)",
        "delivery",
        relay="private/dovecot-lmtp",
        relay_host=None,
        relay_ip=None,
        dovecot_session="7inDBT+SEWvtFwAAg+zDdQ",
    ),
    case(
        "smtp-relay-ipv6-without-host-format",
        "smtp",
        "4BC9B2C0B8: to=<bob@example.org>, relay=[2001:db8::1]:25, delay=1.1, "
        "delays=0.1/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as "
        "4AB12C3D)",
        "delivery",
        relay_host=None,
        relay_ip="2001:db8::1",
        relay_port=25,
    ),
    case(
        "lmtp-sent-second-recipient-session-suffix",
        "lmtp",
        "E2BF6301202A: to=<h-f16@h-ffeb17e38996c.com>, relay=h-a0c7f045560778ddf2"
        "[/var/run/dovecot/lmtp], delay=0.06, delays=0/0.02/0.01/0.03, dsn=2.0.0, "
        "status=sent (250 2.0.0 <h-f16@h-ffeb17e38996c.com> +9xZLpjdEmC+eQAAWP5Hkg:2 "
        "Saved)",
        "delivery",
        relay_ip=None,
        dovecot_session="+9xZLpjdEmC+eQAAWP5Hkg:2",
    ),
    case(
        "lmtp-bounced-quota-at-rcpt-lab",
        "lmtp",
        "4jgLcj6g2QzJBVM: to=<carol@acme.example>, relay=127.0.0.1[127.0.0.1]:47125, "
        "delay=0.11, delays=0.02/0.02/0.02/0.06, dsn=5.2.2, status=bounced (host "
        "127.0.0.1[127.0.0.1] said: 552 5.2.2 <carol@acme.example> Quota exceeded "
        "(mailbox for user is full) (in reply to RCPT TO command))",
        "delivery",
        status="bounced",
        smtp_code=552,
        enhanced_code="5.2.2",
        text="<carol@acme.example> Quota exceeded (mailbox for user is full)",
        dovecot_session=None,
    ),
    case(
        "lmtp-bounced-quota-at-data-lab",
        "lmtp",
        "4jgLcj6g2QzJBVM: to=<bob@acme.example>, relay=127.0.0.1[127.0.0.1]:47125, "
        "delay=0.13, delays=0.02/0.02/0.02/0.08, dsn=5.2.2, status=bounced (host "
        "127.0.0.1[127.0.0.1] said: 552 5.2.2 <bob@acme.example> Quota exceeded "
        "(mailbox for user is full) (in reply to end of DATA command))",
        "delivery",
        smtp_code=552,
        text="<bob@acme.example> Quota exceeded (mailbox for user is full)",
    ),
    case(
        "lmtp-bounced-unknown-to-dovecot-lab",
        "lmtp",
        "4jgLcj6g2QzJBVM: to=<ghost@acme.example>, relay=127.0.0.1[127.0.0.1]:47125, "
        "delay=0.11, delays=0.02/0.02/0.02/0.06, dsn=5.1.1, status=bounced (host "
        "127.0.0.1[127.0.0.1] said: 550 5.1.1 <ghost@acme.example> User doesn't "
        "exist: ghost@acme.example (in reply to RCPT TO command))",
        "delivery",
        smtp_code=550,
        enhanced_code="5.1.1",
    ),
    case(
        "local-delivered-to-mailbox",
        "local",
        "8E98A9D382: to=<root@example.com>, orig_to=<postmaster@example.com>, "
        "relay=local, delay=0.18, delays=0.17/0.01/0/0, dsn=2.0.0, status=sent "
        "(delivered to mailbox)",
        "delivery",
        transport="local",
        relay="local",
        relay_host=None,
        smtp_code=None,
        text="delivered to mailbox",
    ),
    case(
        "local-bare-addresses",
        "local",
        "2A22C263F6: to=user@hostname.example.com, orig_to=root@localhost, "
        "relay=local, delay=0.07, delays=0.04/0/0/0.03, dsn=2.0.0, status=sent "
        '(delivered to command: procmail -a "$EXTENSION")',
        "delivery",
        recipient="user@hostname.example.com",
        orig_recipient="root@localhost",
    ),
    case(
        "virtual-delivered-to-maildir",
        "virtual",
        "199041033BE: to=<me@domain.fr>, relay=virtual, delay=0.08, "
        "delays=0.08/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)",
        "delivery",
        transport="virtual",
    ),
    case(
        "pipe-relay-dovecot",
        "pipe",
        "4PbzRZ0jDcz3tG5: to=<user01.test@uhu-banane.net>, orig_to=<root@mail.uhu-"
        "banane.de>, relay=dovecot, delay=0.15, delays=0.01/0.02/0/0.13, dsn=2.0.0, "
        "status=sent (delivered via dovecot service)",
        "delivery",
        transport="pipe",
        relay="dovecot",
        relay_host=None,
    ),
    case(
        "error-undeliverable-but-not-cached",
        "error",
        "3E29030F8637E: to=<user@yahoo.com>, relay=none, delay=0.01, "
        "delays=0.01/0/0/0, dsn=5.1.1, status=undeliverable-but-not-cached (User "
        "unknown in virtual alias table)",
        "delivery",
        transport="error",
        status="undeliverable-but-not-cached",
    ),
    case(
        "error-deferred-sasl-said",
        "error",
        "0158C52634: to=<jag@gmail.com>, relay=none, delay=0.1, "
        "delays=0.06/0.02/0/0.02, dsn=4.7.8, status=deferred (delivery temporarily "
        "suspended: SASL authentication failed; server 192.168.45.120[192.168.45.120]"
        " said: 535 5.7.8 Error: authentication failed: authentication failure)",
        "delivery",
        smtp_code=535,
        enhanced_code="5.7.8",
    ),
    case(
        "discard-delivery",
        "discard",
        "25F2E5E061: to=<george.desantis@test.example.com>, relay=none, delay=0.05, "
        "delays=0.05/0/0/0, dsn=2.0.0, status=sent (test.example.com)",
        "delivery",
        transport="discard",
    ),
]

QUEUE_EVENTS = [
    case(
        "bounce-sender-non-delivery-notification-lab",
        "bounce",
        "4jgLcj6g2QzJBVM: sender non-delivery notification: 4jgLck0RVPzJBWQ",
        "notification",
        queue_id="4jgLcj6g2QzJBVM",
        notification="sender non-delivery",
        notification_queue_id="4jgLck0RVPzJBWQ",
    ),
    case(
        "bounce-sender-delay-notification",
        "bounce",
        "264FE1A18: sender delay notification: 0A87A1A08",
        "notification",
        notification="sender delay",
        notification_queue_id="0A87A1A08",
    ),
    case(
        "bounce-sender-delivery-status-notification",
        "bounce",
        "65AFB8B5: sender delivery status notification: 1DF35917",
        "notification",
        notification="sender delivery status",
    ),
    case(
        "bounce-postmaster-non-delivery-notification",
        "bounce",
        "482E4404AC8: postmaster non-delivery notification: 47335405A44",
        "notification",
        notification="postmaster non-delivery",
    ),
    case(
        "smtp-host-said-before-final-status",
        "smtp",
        "732BB407C3: host mail.domain.com[1.1.1.1] said: 451 DT:SPM 163 mx13, please "
        "try again 15min later (in reply to end of DATA command)",
        "queue_event",
        event="host_said",
    ),
    case(
        "smtp-refused-to-talk",
        "smtp",
        "40197AA: host mg2.egov.bg[213.91.191.86] refused to talk to me: 450 4.3.2 "
        "try again later",
        "queue_event",
        event="refused_to_talk",
    ),
    case(
        "smtp-conversation-timed-out",
        "smtp",
        "78D6B41: conversation with mx00.gmx.com[74.208.5.4] timed out while "
        "receiving the initial server greeting",
        "queue_event",
        event="conversation_timeout",
    ),
    case(
        "smtp-lost-connection-with",
        "smtp",
        "745137AA: lost connection with hotmail-com.olc.protection.outlook.com"
        "[104.47.55.161] while sending RCPT TO",
        "queue_event",
        queue_id="745137AA",
        event="lost_connection",
    ),
    case(
        "smtp-connect-refused-without-queue-id-lab",
        "smtp",
        "connect to 127.0.0.1[127.0.0.1]:35685: Connection refused",
        "smtpd_event",
        event="connect_failed",
        client_ip="127.0.0.1",
        detail="Connection refused",
    ),
    case(
        "smtp-tls-established-to",
        "smtp",
        "Verified TLS connection established to mx2.comcast.net[2001:558:fe21:2a::6]"
        ":25: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
        "smtpd_event",
        event="tls_established",
        client_host="mx2.comcast.net",
        client_ip="2001:558:fe21:2a::6",
    ),
    case(
        "smtp-certificate-verification-failed",
        "smtp",
        "certificate verification failed for mail.example.com[113.169.17.115]:25: "
        "self-signed certificate.",
        "smtpd_event",
        event="tls_error",
        detail="certificate verification failed: self-signed certificate.",
    ),
    case(
        "pickup-uid-from",
        "pickup",
        "D4D433E8C6: uid=0 from=<root>",
        "pickup",
        queue_id="D4D433E8C6",
        uid=0,
        sender="root",
    ),
    case(
        "postsuper-removed",
        "postsuper",
        "3nsRhm5bH5z306M: removed",
        "postsuper",
        queue_id="3nsRhm5bH5z306M",
        action="removed",
    ),
    case(
        "postsuper-placed-on-hold",
        "postsuper",
        "D4F2023DB: placed on hold",
        "postsuper",
        action="placed_on_hold",
    ),
    case(
        "postsuper-released-from-hold",
        "postsuper",
        "3nsF2M5j0nz31GS: released from hold",
        "postsuper",
        action="released_from_hold",
    ),
    case(
        "postsuper-requeued",
        "postsuper",
        "D4F2023DB: requeued",
        "postsuper",
        action="requeued",
    ),
    case(
        "postsuper-summary",
        "postsuper",
        "Deleted: 115 messages",
        "info",
        what="postsuper_summary",
    ),
]

POSTSCREEN_AND_DAEMONS = [
    case(
        "postscreen-connect",
        "postscreen",
        "CONNECT from [61.238.241.86]:53024 to [89.105.204.244]:25",
        "postscreen",
        event="connect",
        client_ip="61.238.241.86",
        client_port=53024,
        detail="[89.105.204.244]:25",
    ),
    case(
        "postscreen-pass-new-ipv6",
        "postscreen",
        "PASS NEW [2607:f8b0:4003:c01::23a]:36051",
        "postscreen",
        event="pass_new",
        client_ip="2607:f8b0:4003:c01::23a",
    ),
    case(
        "postscreen-pass-old",
        "postscreen",
        "PASS OLD [61.238.241.86]:53024",
        "postscreen",
        event="pass_old",
    ),
    case(
        "postscreen-dnsbl-rank",
        "postscreen",
        "DNSBL rank 3 for [111.73.45.149]:1038",
        "postscreen",
        event="dnsbl",
        rank=3,
        client_port=1038,
    ),
    case(
        "postscreen-pregreet",
        "postscreen",
        "PREGREET 11 after 0.23 from [180.214.239.18]:59187: EHLO User\\r\\n",
        "postscreen",
        event="pregreet",
        detail="EHLO User\\r\\n",
    ),
    case(
        "postscreen-hangup",
        "postscreen",
        "HANGUP after 63 from [111.73.45.149]:1038 in tests after SMTP handshake",
        "postscreen",
        event="hangup",
        detail="in tests after SMTP handshake",
    ),
    case(
        "postscreen-command-pipelining",
        "postscreen",
        "COMMAND PIPELINING from [88.208.233.4]:42606 after .: \\n",
        "postscreen",
        event="command_pipelining",
    ),
    case(
        "postscreen-bare-newline",
        "postscreen",
        "BARE NEWLINE from [88.208.233.4]:42606 after .",
        "postscreen",
        event="bare_newline",
    ),
    case(
        "postscreen-non-smtp-command",
        "postscreen",
        "NON-SMTP COMMAND from [93.174.93.51]:45284 after CONNECT: GET "
        "http://ipv4scan.com/hello/check.txt HTTP/1.1",
        "postscreen",
        event="non_smtp_command",
    ),
    case(
        "postscreen-disconnect",
        "postscreen",
        "DISCONNECT [216.81.72.72]:43421",
        "postscreen",
        event="disconnect",
    ),
    case(
        "postscreen-whitelisted-is-allowlisted",
        "postscreen",
        "WHITELISTED [61.238.241.86]:53024",
        "postscreen",
        event="allowlisted",
    ),
    case(
        "postscreen-blacklisted-is-denylisted",
        "postscreen",
        "BLACKLISTED [61.238.241.86]:53024",
        "postscreen",
        event="denylisted",
    ),
    case(
        "postscreen-denylisted",
        "postscreen",
        "DENYLISTED [1.2.3.4]:5678",
        "postscreen",
        event="denylisted",
    ),
    case(
        "postscreen-reject-connect-too-many",
        "postscreen",
        "NOQUEUE: reject: CONNECT from [1.2.3.4]:1337: too many connections",
        "reject",
        stage="CONNECT",
        text="too many connections",
        source="postscreen",
    ),
    case(
        "dnsblog-listed",
        "dnsblog",
        "addr 61.238.241.86 listed by domain psbl.surriel.com as 127.0.0.2",
        "postscreen",
        event="dnsbl_listed",
        client_ip="61.238.241.86",
        detail="psbl.surriel.com as 127.0.0.2",
    ),
    case(
        "tlsproxy-connect",
        "tlsproxy",
        "CONNECT from [82.118.17.142]:51637",
        "smtpd_event",
        event="tlsproxy_connect",
        client_ip="82.118.17.142",
    ),
    case(
        "tlsproxy-handshake-failed",
        "tlsproxy",
        "TLS handshake failed for service=smtpd peer=[114.223.181.147]:59869",
        "smtpd_event",
        event="tls_error",
        client_ip="114.223.181.147",
        detail="TLS handshake failed",
    ),
    case(
        "master-daemon-started-lab",
        "master",
        "daemon started -- version 3.7.11, configuration /tmp/maillab-ndhuq3_1/postfix",
        "severity",
        severity="notice",
    ),
    case(
        "master-warning-process-limit",
        "master",
        'warning: service "smtp" (25) has reached its process limit "30": new '
        "clients may experience noticeable delays",
        "severity",
        severity="warning",
    ),
    case(
        "master-panic-format",
        "master",
        "panic: myfree: corrupt or unallocated memory block",
        "severity",
        severity="panic",
        text="myfree: corrupt or unallocated memory block",
    ),
    case(
        "postfix-script-starting-lab",
        "postfix-script",
        "starting the Postfix mail system",
        "severity",
        severity="notice",
    ),
    case(
        "anvil-statistics",
        "anvil",
        "statistics: max connection rate 1/60s for (smtpd:61.238.241.86) at Oct 26 "
        "18:13:50",
        "info",
        what="anvil_statistics",
    ),
    case(
        "scache-statistics",
        "scache",
        "statistics: domain lookup hits=0 miss=1 success=0%",
        "info",
        what="scache_statistics",
    ),
    case(
        "verify-cache-cleanup",
        "verify",
        "cache lmdb:/var/lib/postfix/verify_cache full cleanup: retained=724 "
        "dropped=6 entries",
        "info",
        what="cache_cleanup",
    ),
    case(
        "trivial-rewrite-compatibility",
        "trivial-rewrite",
        "using backwards-compatible default setting append_dot_mydomain=yes to rewrite "
        '"foo" to "foo.example.com"',
        "info",
        what="compatibility_default",
    ),
    case(
        "postdrop-warning",
        "postdrop",
        "warning: mail_queue_enter: create file maildrop/123456.12345: Read-only file "
        "system",
        "severity",
        severity="warning",
    ),
]

ALL_CASES = QMGR_AND_CLEANUP + SMTPD + DELIVERY + QUEUE_EVENTS + POSTSCREEN_AND_DAEMONS


@pytest.mark.parametrize(("service", "message", "kind", "fields"), ALL_CASES)
def test_real_line_parses_to_its_record(
    service: str, message: str, kind: str, fields: dict[str, Any]
) -> None:
    record = parse_postfix(service, message)

    assert record.kind == kind, record
    assert {name: getattr(record, name) for name in fields} == fields


def test_lmtp_reply_carries_the_session_id_of_dovecots_log_prefix() -> None:
    record = parse_postfix("lmtp", LAB_LMTP_SAVED)
    prefix = LAB_DOVECOT_SAVED.split(": Info: ", 1)[0]
    dovecot_session = prefix.rsplit("<", 1)[1].rstrip(">")

    assert record.kind == "delivery"
    assert getattr(record, "dovecot_session", None) == dovecot_session


@pytest.mark.parametrize(
    ("service", "message"),
    [
        pytest.param("smtpd", "Unsupported", id="smtpd-word"),
        pytest.param("smtpd", "NOQUEUE: reject: Unsupported", id="smtpd-reject-junk"),
        pytest.param("qmgr", "2E4522C620DA:", id="qmgr-queue-id-only"),
        pytest.param("smtp", "3mPVKl0Mhjz7sXv: to=<56597@con", id="smtp-truncated"),
        pytest.param("postscreen", "FOO [1.2.3.4]:5", id="postscreen-unknown-verb"),
        pytest.param("qmgr", "ABCDEF: NOQUEUE", id="qmgr-unknown-text"),
        pytest.param(
            "bounce",
            "NOQUEUE: sender non-delivery notification: 4BC9B2C0B8",
            id="noqueue-outside-smtpd",
        ),
    ],
)
def test_unknown_message_is_unparsed_with_its_shape(service: str, message: str) -> None:
    record = parse_postfix(service, message)

    assert record.kind == "unparsed"
    assert getattr(record, "reason", None) == "message"
    assert getattr(record, "text", None) == message
    assert getattr(record, "shape", "") != ""


@pytest.mark.parametrize(
    ("queue_id", "is_queue_id"),
    [
        pytest.param("4BC9B2C0B8", True, id="short-hex"),
        pytest.param("0F5383D", True, id="short-hex-7"),
        pytest.param("3mPVKl0Mhjz7sXv", True, id="long"),
        pytest.param("4G6yC35YlszCx5Pk", True, id="long-16"),
        pytest.param("NOQUEUE", True, id="noqueue"),
        pytest.param("4BC9B", False, id="hex-too-short"),
        pytest.param("warning", False, id="word"),
        pytest.param("3mPVKl0Mhjz7sXa", False, id="long-with-vowel-in-inode"),
        pytest.param("aeiouAEIOUzbcd", False, id="vowels"),
    ],
)
def test_queue_id_forms_decide_the_table(queue_id: str, is_queue_id: bool) -> None:
    record = parse_postfix("qmgr", f"{queue_id}: removed")

    assert (record.kind == "qmgr_removed") is (is_queue_id and queue_id != "NOQUEUE")


@pytest.mark.parametrize(("service", "message", "kind", "fields"), ALL_CASES)
def test_every_truncation_of_a_real_line_parses_without_raising(
    service: str, message: str, kind: str, fields: dict[str, Any]
) -> None:
    for end in range(len(message)):
        record = parse_postfix(service, message[:end])
        if record.kind == "unparsed":
            assert getattr(record, "text", None) == message[:end]
        else:
            assert record.kind in RECORD_KINDS


def test_a_megabyte_line_is_unparsed_not_an_error() -> None:
    message = "4BC9B2C0B8: to=<" + "a" * 1_000_000

    assert parse_postfix("smtp", message).kind == "unparsed"


@settings(max_examples=300, deadline=None)
@given(
    service=st.sampled_from(["smtpd", "smtp", "lmtp", "qmgr", "cleanup", "postscreen"])
    | st.text(max_size=12),
    message=st.text(max_size=400),
)
def test_any_text_parses_without_raising(service: str, message: str) -> None:
    record = parse_postfix(service, message)

    assert record.kind in RECORD_KINDS
    assert record.kind != "unparsed" or getattr(record, "text", None) == message


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(
        [
            "4BC9B2C0B8: to=<",
            "NOQUEUE: reject: RCPT from ",
            "4BC9B2C0B8: from=<",
            "4BC9B2C0B8: client=",
            "disconnect from ",
            "4BC9B2C0B8: reject: header ",
            "PREGREET ",
        ]
    ),
    tail=st.text(alphabet="<>[]():;,=. -/0123456789abcdefSsaid", max_size=200),
)
def test_structured_garbage_parses_without_raising(prefix: str, tail: str) -> None:
    for service in ("smtpd", "smtp", "qmgr", "cleanup", "postscreen"):
        assert parse_postfix(service, prefix + tail).kind in RECORD_KINDS
