"""Postfix log messages to typed records.

``parse_postfix(service, message)`` takes the message part of one line (after the
syslog envelope) and the daemon name (the last component of the program, so
``postfix/submission/smtpd`` gives ``smtpd``) and returns one record from
``mailtriage.parsers.records``, or ``Unparsed`` when no rule fits. It never raises.

How a message is read:

1. ``QID: text`` lines (a short hex queue ID, a long queue ID from
   ``enable_long_queue_ids``, or ``NOQUEUE``) go through the service's queue-ID table,
   every other line through its plain table.
2. A table is an ordered tuple of ``(prefix, builder)``: the cheap ``str.startswith``
   test runs first, the builder's one regex (or a ``str.partition``) second, and a
   builder that finds the line does not fit after all returns None so the next rule
   gets its turn. The hot lines of a mail log (qmgr, cleanup, smtpd, smtp, lmtp) sit
   first in their tables.

Record choices that are not obvious from ``records.py``:

- ``Delivery.dovecot_session`` is the Dovecot session ID from an LMTP reply
  ``250 2.0.0 <rcpt> SESSION Saved`` (Dovecot's ``lmtp_local_deliver``), kept whole,
  including the ``:2``/``:R3`` suffix Dovecot adds for the second and later recipient
  of one transaction. It equals the last ``<...>`` of Dovecot's own log prefix
  ``lmtp(rcpt)<pid><SESSION>``, which is the join key between the two logs. Dovecot's
  failure replies (``552 5.2.2 <rcpt> Quota exceeded ...``, ``451 4.2.0 ...``) carry no
  session ID, so failed LMTP deliveries can only be joined by recipient and time.
- Outbound connection events of the smtp/lmtp client (``connect to ...: Connection
  refused``, ``Trusted TLS connection established to ...``) are ``SmtpdEvent``s whose
  ``client_*`` fields name the remote server; the program in the envelope tells them
  apart from inbound ones.
- Per-queue-ID lines that are not deliveries (``host ... said:`` before the final
  status, ``conversation with ... timed out``, ``lost connection with ...``,
  ``skipped, still being delivered``, a before-queue filter's ``proxy-accept``) are
  ``QueueEvent``s, so they show in a message's trace.
- cleanup's header_checks/body_checks actions (``reject``, ``warning``, ``hold``,
  ``replace``, ...) are ``Reject(source="cleanup")`` with ``stage`` ``header`` or
  ``body`` and the matched line in ``matched``; postscreen's verdicts use Postfix 3.6's
  words (``WHITELISTED`` becomes ``allowlisted``, ``BLACKLISTED`` ``denylisted``).
- master lifecycle lines (``daemon started``, ``reload``, ``terminating on signal``)
  and ``postfix-script`` start/stop are ``Severity(severity="notice")``; statistics,
  cache cleanups and other housekeeping are ``Info``.

The formats follow Postfix's own code and documentation (log_adhoc.c for delivery
lines, smtpd_check.c for rejects, header_checks(5), POSTSCREEN_README) and were checked
against real lines: the sample above each pattern is one.

Known shortcomings: a line cut short (by a syslog relay's length limit or a copy) is
Unparsed even when its first fields would be readable, so it counts as unknown; the
``orig_client=`` of a re-injected message's ``client=`` line is not kept, so such a
message's client is the content filter's address.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from mailtriage.parsers.records import (
    CleanupMessageId,
    Delivery,
    Info,
    Notification,
    Pickup,
    Postscreen,
    Postsuper,
    QmgrExpired,
    QmgrFrom,
    QmgrRemoved,
    QueueEvent,
    Record,
    Reject,
    Severity,
    SmtpdClient,
    SmtpdConnect,
    SmtpdDisconnect,
    SmtpdEvent,
    Unparsed,
)
from mailtriage.parsers.shapes import mask

# A builder gets (service, queue ID or "" for plain lines, text) and returns a record,
# or None when the line turns out not to be its kind.
_Build = Callable[[str, str, str], Record | None]
_Rule = tuple[str | tuple[str, ...], _Build]

# ------------------------------------------------------------------ shared pieces

_HEX: Final = "0123456789ABCDEF"

# Long queue IDs (postconf enable_long_queue_ids): seconds and microseconds in a
# 52-letter alphabet without vowels, a 'z', then the inode number in the same alphabet
# minus 'z' (Postfix src/global/mail_queue.h). 3mPVKl0Mhjz7sXv, 4PbC4x469Jz3tBr.
_LONG_QUEUE_ID: Final = re.compile(
    r"[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+"
)


def _is_queue_id(word: str) -> bool:
    """True for a short hex queue ID, a long queue ID or ``NOQUEUE``."""
    if not 6 <= len(word) <= 32:
        return False
    if not word.strip(_HEX):
        return True
    return word == "NOQUEUE" or _LONG_QUEUE_ID.fullmatch(word) is not None


# A reply: SMTP code, RFC 3463 enhanced code (qmail prefixes it with '#'), text; each
# part optional. "550 5.1.1 <x@y>: user unknown", "250 Ok: queued as ABC",
# "451 DT:SPM 163", "4.7.1 Try again later" (cleanup's milter-reject has no code).
_SMTP_REPLY: Final = re.compile(
    r"(?:([2-5]\d\d)(?=[ -]|$)[ -]?)?(?:#?([2-5]\.\d{1,3}\.\d{1,3})(?=[ -]|$) ?)?(.*)",
    re.S,
)
# The repeated "550-5.1.1 " prefixes inside a joined multi-line reply.
_CONTINUATION: Final = re.compile(r" ([2-5]\d\d)[ -](?:#?[2-5]\.\d{1,3}\.\d{1,3} )?")


def _split_reply(text: str) -> tuple[int | None, str | None, str]:
    """Split ``550 5.1.1 text`` into code, enhanced code and text; other text as is."""
    match = _SMTP_REPLY.match(text)
    if match is None:
        return None, None, text
    code, enhanced, rest = match.groups()
    if code is None:
        return None, enhanced, rest
    if text[3:4] == "-":
        rest = _CONTINUATION.sub(lambda m: " " if m[1] == code else m[0], rest)
    return int(code), enhanced, rest


def _remote_reply(response: str) -> tuple[int | None, str | None, str]:
    """The SMTP reply inside a delivery's parenthesised response, if it holds one.

    ``250 2.0.0 Ok``, ``host mx[1.2.3.4] said: 550 5.1.1 ... (in reply to RCPT TO
    command)``, ``host mx[1.2.3.4] refused to talk to me: 554 ...``; the ``(in reply to
    ... command)`` tail is dropped from the text. Texts without a reply, such as
    ``connect to mx[1.2.3.4]:25: Connection refused``, come back whole.
    """
    if response[:1].isdigit():
        return _split_reply(response)
    at = response.find(" said: ")
    start = at + 7
    if at < 0:
        at = response.find(" refused to talk to me: ")
        start = at + 24
    if at < 0:
        return None, None, response
    reply = response[start:]
    if reply.endswith(" command)"):
        cut = reply.rfind(" (in reply to ")
        reply = reply[:cut] if cut >= 0 else reply
    return _split_reply(reply)


# The trailing "; from=<a> to=<b> proto=ESMTP helo=<h>" of smtpd, cleanup and
# postscreen log records (postscreen separates them with commas).
_FIELD: Final = re.compile(r"\b(from|to|proto|helo)=(<[^>]*>?|[^\s,;:<]*)")
_FIELD_MARKERS: Final = ("; from=", "; to=", "; proto=", "; helo=")


def _split_fields(text: str) -> tuple[str, dict[str, str]]:
    """Split ``reason; from=<a> to=<b> proto=P helo=<h>`` into reason and fields."""
    for marker in _FIELD_MARKERS:
        at = text.rfind(marker)
        if at >= 0:
            return text[:at], _fields(text[at + 2 :])
    return text, {}


def _fields(text: str) -> dict[str, str]:
    return {m[1]: m[2].strip("<>") for m in _FIELD.finditer(text)}


# ------------------------------------------------------------------ smtpd


# A client or server as Postfix logs it: host[address], host[address]:port or
# [address]:port; the host and the address are captured.
_PEER: Final = r"([^\s\[]*)\[([^\]]*)\](?::\d+)?"


def _split_peer(text: str, start: int) -> tuple[str, str, int] | None:
    """``host[address]`` at ``text[start:]``: host, address, index after the ``]``.

    The hottest lines use this instead of ``_PEER``: two ``find`` calls cost less
    than a regex match.
    """
    open_at = text.find("[", start)
    close_at = text.find("]", open_at)
    if open_at < 0 or close_at < 0:
        return None
    return text[start:open_at], text[open_at + 1 : close_at], close_at + 1


def _connect(service: str, queue_id: str, text: str) -> Record | None:
    # connect from h-d04c17c68166c9deda13c8e79ad[112.83.23.93]
    peer = _split_peer(text, 13)
    if peer is None:
        return None
    return SmtpdConnect(peer[0], peer[1])


def _disconnect(service: str, queue_id: str, text: str) -> Record | None:
    # disconnect from unknown[192.0.2.2] ehlo=1 auth=0/1 rset=1 quit=1 commands=3/4
    peer = _split_peer(text, 16)
    if peer is None:
        return None
    counts = text[peer[2] :].partition(" ")[2]  # after "]" or "]:port"
    # The same few command counts repeat all day: each record gets its own copy
    # of the dictionary read once.
    commands = _COMMANDS.get(counts)
    if commands is None:
        commands = _commands(counts)
    return SmtpdDisconnect(peer[0], peer[1], commands.copy())


_COMMANDS: Final[dict[str, dict[str, str]]] = {}
_COMMANDS_LIMIT: Final = 4_096
_COMMANDS_KEY_CHARS: Final = 200


def _commands(counts: str) -> dict[str, str]:
    """``ehlo=1 mail=1 rcpt=0/1`` as a dictionary (empty when malformed), cached."""
    commands: dict[str, str] = {}
    if counts:
        # "ehlo=1 mail=1" -> ["ehlo", "1", "mail", "1"]: one split, no per-token work
        words = counts.replace("=", " ").split(" ")
        if len(words) == 2 * counts.count("="):
            commands = dict(zip(words[::2], words[1::2], strict=True))
    if len(counts) <= _COMMANDS_KEY_CHARS:  # hostile lines must not fill memory
        if len(_COMMANDS) >= _COMMANDS_LIMIT:
            _COMMANDS.clear()
        _COMMANDS[counts] = commands
    return commands


# 4PbKQW42V6z3tBr: client=host3.uhu-banane.de[185.102.95.107], sasl_method=PLAIN,
#   sasl_username=vmail@uhu-banane.net
# 6B4A9924782: client=localhost[127.0.0.1], orig_queue_id=951F692462F
#   orig_client=hades.porcupine.org[168.100.189.10]
_CLIENT_EXTRA: Final = re.compile(
    r"(sasl_method|sasl_username|orig_queue_id)=([^,\s]*)"
)


def _client(service: str, queue_id: str, text: str) -> Record | None:
    peer = _split_peer(text, 7)
    if peer is None:
        return None
    host, address, end = peer
    if queue_id == "NOQUEUE":
        # With a before-queue content filter (smtpd_proxy_filter) the message gets
        # its queue ID from the smtpd behind the filter, so this one has none.
        # NOQUEUE: client=misas5.babino.pl[207.154.235.157]
        return SmtpdEvent("client", host or None, address, detail=text[end:] or None)
    record = SmtpdClient(queue_id, host, address)
    if end < len(text):
        port, _, extra = text[end:].partition(", ")
        if port[:1] == ":" and port[1:].isdigit():  # smtpd_client_port_logging
            record.client_port = int(port[1:])
        sasl = _sasl(extra)
        if sasl is not None:
            record.sasl_method, record.sasl_username = sasl
        else:
            for key, value in _CLIENT_EXTRA.findall(extra or port):
                setattr(record, key, value)
    return record


def _sasl(extra: str) -> tuple[str, str] | None:
    """Method and user of ``sasl_method=M, sasl_username=U``, the common tail of a
    ``client=`` line, when ``_CLIENT_EXTRA`` would find exactly these two (no
    comma or white space in either value); None for anything else."""
    if not extra.startswith("sasl_method="):
        return None
    method, found, user = extra[12:].partition(", sasl_username=")
    if not found or "," in method or "," in user:
        return None
    if " " in method or " " in user or not (method + user).isprintable():
        return None  # white space other than " " is not printable
    return method, user


# lost connection after DATA (0 bytes) from unknown[72.13.58.7]
# timeout after END-OF-MESSAGE from localhost[127.0.0.1]
# too many errors after RCPT from unknown[157.122.148.252]
# improper command pipelining after AUTH from unknown[1.2.3.4]: QUIT
# bare <LF> received after CONNECT from example.net[1.2.3.4]
_AFTER: Final = re.compile(
    r"(lost connection|timeout|too many errors|improper command pipelining"
    r"|bare <LF> received) after ([^\s(]+)(?: \(([^)]*)\))? from "
    + _PEER
    + r":?(?: (.*))?$",
    re.S,
)
_AFTER_EVENTS: Final = {
    "lost connection": "lost_connection",
    "timeout": "timeout",
    "too many errors": "too_many_errors",
    "improper command pipelining": "improper_pipelining",
    "bare <LF> received": "bare_lf",
}
_AFTER_PREFIXES: Final = tuple(f"{what} after " for what in _AFTER_EVENTS)


def _after(service: str, queue_id: str, text: str) -> Record | None:
    match = _AFTER.match(text)
    if match is None:
        return None
    what, stage, extra, host, address, tail = match.groups()
    event = _AFTER_EVENTS[what]
    return SmtpdEvent(event, host or None, address, stage, extra or tail or None)


# Anonymous TLS connection established from unknown[30.207.11.100]: TLSv1.2 with
#   cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)
# Trusted TLS connection established to mx.example.com[11.22.33.44]:25: TLSv1.2 ...
# Anonymous TLS connection established from [122.189.87.41]:52908: TLSv1.2 ...
# TLS connection established from stegosaurus.dinos.test[192.168.4.150]: TLSv1 with
#   cipher DHE-RSA-AES256-SHA (256/256 bits)                        (Postfix 2.x)
_TLS_ESTABLISHED: Final = re.compile(
    r"(?:(\w+) )?TLS connection established (?:from|to) " + _PEER + ": (.*)$",
    re.S,
)
_TLS_TRUST: Final = (
    "Anonymous ",
    "Untrusted ",
    "Trusted ",
    "Verified ",
    "TLS connection ",
)


def _tls_established(service: str, queue_id: str, text: str) -> Record | None:
    match = _TLS_ESTABLISHED.match(text)
    if match is None:
        return None
    trust, host, address, detail = match.groups()
    detail = f"{trust} {detail}" if trust else detail
    return SmtpdEvent("tls_established", host or None, address, None, detail)


# SSL_accept error from unknown[203.0.113.10]: lost connection
# SSL_connect error to mail.example.org[112.63.65.2]:25: -1
# certificate verification failed for mail.example.com[113.169.17.115]:25:
#   self-signed certificate.
# TLS handshake failed for service=smtpd peer=[114.223.181.147]:59869
# setting up TLS connection from unknown[192.168.9.1]
# connect to mail2.crabruzzo.it[2.115.207.21]:25: No route to host
_PEER_EVENT: Final = re.compile(
    r"(SSL_accept error from|SSL_connect error to|certificate verification failed for"
    r"|TLS handshake failed for service=\S+ peer=|setting up TLS connection (?:from|to)"
    r"|connect to) ?" + _PEER + "(?:: (.*))?$",
    re.S,
)
_PEER_EVENT_PREFIXES: Final = (
    "SSL_accept error from ",
    "SSL_connect error to ",
    "certificate verification failed for ",
    "TLS handshake failed for ",
    "setting up TLS connection ",
    "connect to ",
)


def _peer_event(service: str, queue_id: str, text: str) -> Record | None:
    match = _PEER_EVENT.match(text)
    if match is None:
        return None
    what, host, address, detail = match.groups()
    if what == "connect to":
        event = "connect_failed"
    elif what.startswith("setting up"):
        event = "tls_setup"
    else:
        event = "tls_error"
        label = _TLS_ERROR_LABELS.get(what[:12], what)
        detail = f"{label}: {detail}" if detail else label
    return SmtpdEvent(event, host or None, address, None, detail)


_TLS_ERROR_LABELS: Final = {
    "SSL_accept e": "SSL_accept error",
    "SSL_connect ": "SSL_connect error",
    "certificate ": "certificate verification failed",
    "TLS handshak": "TLS handshake failed",
}


# NOQUEUE: reject: RCPT from 1-2-3-4-example.com[1.2.3.4]: 554 5.7.1
#   <smtp@example.com>: Relay access denied; from=<john@example.com>
#   to=<smtp@example.org> proto=SMTP helo=<198.51.100.17>
# 1D8CC1CA0A7F: milter-reject: DATA from 66-220-155-151.mail-mail.facebook.com
#   [192.0.2.151]: 550 5.7.1 Command rejected; from=<security@mail.example.com> ...
# NOQUEUE: hold: RCPT from localhost[127.0.0.1]: <hold@acme.example>: Recipient
#   address triggers HOLD action; from=<sender@partner.example> ...
# NOQUEUE: reject: CONNECT from [1.2.3.4]:5678: too many connections      (postscreen)
# 4104E3D: milter-reject: END-OF-MESSAGE from 061238241086.static.ctinets.com
#   [61.238.241.86]: 5.7.1 Blocked by SpamAssassin; from=<wumt5@cchfdc.com> ...
# proxy-reject: END-OF-MESSAGE: 554 5.7.0 Reject, contact postmaster@example.com,
#   id=31619-02 - spam; from=<> to=<user2@example2.com> proto=SMTP ...
_REJECT: Final = re.compile(
    r"([a-z][a-z_-]*): ([A-Z][A-Z-]*)"
    r"(?: from ([^\s\[]*)\[([^\]]*)\](?::\d+)?)?: (.*)$",
    re.S,
)


def _reject(service: str, queue_id: str, text: str) -> Record | None:
    match = _REJECT.match(text)
    if match is None:
        return None
    action, stage, host, address, rest = match.groups()
    reason, fields = _split_fields(rest)
    if action == "proxy-accept":
        return _proxy_accept(stage, reason)
    code, dsn, reason_text = _split_reply(reason)
    return Reject(
        action,
        None if queue_id in ("NOQUEUE", "") else queue_id,
        stage,
        host or None,
        address,
        code,
        dsn,
        reason_text,
        fields.get("from"),
        fields.get("to"),
        fields.get("proto"),
        fields.get("helo"),
        source=service,
    )


def _proxy_accept(stage: str, reply: str) -> Record:
    """A before-queue content filter accepted a message; link its new queue ID."""
    # proxy-accept: END-OF-MESSAGE: 250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250
    #   2.0.0 Ok: queued as A0320E00C3; from=<visitbrussels-huticd1jyidyhxuy1y@...
    _, found, queued_as = reply.rpartition("queued as ")
    new_queue_id = queued_as.split(" ", 1)[0].rstrip(").,;")
    if found and _is_queue_id(new_queue_id):
        return QueueEvent(new_queue_id, "proxy_accept", reply)
    return SmtpdEvent("proxy_accept", stage=stage, detail=reply)


# warning: unknown[82.221.106.233]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
# warning: unknown[192.0.2.237]:55729: SASL LOGIN authentication failed: ...
_SASL_FAILED: Final = re.compile(_PEER + r": (SASL .*)$", re.S)
# warning: non-SMTP command from unknown[192.168.1.1]: GET / HTTP/1.1
_NON_SMTP: Final = re.compile(r"non-SMTP command from " + _PEER + r": (.*)$", re.S)
# warning: hostname h-422d7f does not resolve to address 147.165.20.185: Name or
#   service not known
_NO_RESOLVE: Final = re.compile(
    r"hostname (\S+) does not resolve to address (\S+?)(?:: |$)"
)
# warning: 89.248.162.178: hostname no-reverse-dns-configured.com verification
#   failed: Name or service not known
_VERIFY_FAILED: Final = re.compile(r"([\w.:]+): hostname (\S+) verification failed")
# warning: Illegal address syntax from unknown[157.122.148.252] in MAIL command: <x@y>
# warning: Connection rate limit exceeded: 31 from spamhost.domain.org[192.0.2.123]
#   for service smtpd
_FROM_CLIENT: Final = re.compile(
    r"(?:Illegal address syntax|[\w ]+ limit exceeded: \d+) from " + _PEER
)


def _smtpd_warning(service: str, queue_id: str, text: str) -> Record | None:
    """smtpd warnings about one client: SASL failures, non-SMTP commands, DNS."""
    warning = text[9:]
    match = _SASL_FAILED.match(warning)
    if match is not None:
        return SmtpdEvent("sasl_failed", match[1] or None, match[2], detail=match[3])
    match = _NON_SMTP.match(warning)
    if match is not None:
        host, address, command = match.groups()
        return SmtpdEvent("non_smtp_command", host or None, address, detail=command)
    match = _NO_RESOLVE.match(warning) or _FROM_CLIENT.match(warning)
    if match is not None:
        return SmtpdEvent("warning_client", match[1], match[2], detail=warning)
    match = _VERIFY_FAILED.match(warning)
    if match is None:
        return None
    return SmtpdEvent("warning_client", match[2], match[1], detail=warning)


# ------------------------------------------------------------------ postscreen

# CONNECT from [1.2.3.4]:5678 to [5.6.7.8]:25
# PASS OLD [9.8.7.6]:1234
# DNSBL rank 3 for [1.2.3.4]:5678
# PREGREET 11 after 0.23 from [180.214.239.18]:59187: EHLO User\r\n
# HANGUP after 2.5 from [1.2.3.4]:5678 in tests after SMTP handshake
# COMMAND PIPELINING from [112.103.155.150]:45414 after ?: \001\000\b\000
# DATA without valid RCPT from [123.45.67.89]:12345
# CONNECT from [180.43.30.135]:47992                                       (tlsproxy)
_POSTSCREEN: Final = re.compile(
    r"([A-Z][A-Za-z -]*?)(?: (\d+))?(?: after [\d.]+)?(?: from| for)? "
    r"\[([^\]]*)\]:(\d+)(?::? (.*))?$",
    re.S,
)
# The verbs of POSTSCREEN_README's logging section; the pre-3.6 names map to the
# allowlist/denylist words that Postfix 3.6 introduced.
_POSTSCREEN_EVENTS: Final = {
    "CONNECT": "connect",
    "PASS NEW": "pass_new",
    "PASS OLD": "pass_old",
    "DNSBL rank": "dnsbl",
    "PREGREET": "pregreet",
    "HANGUP": "hangup",
    "DISCONNECT": "disconnect",
    "COMMAND PIPELINING": "command_pipelining",
    "COMMAND TIME LIMIT": "command_time_limit",
    "COMMAND COUNT LIMIT": "command_count_limit",
    "COMMAND LENGTH LIMIT": "command_length_limit",
    "BARE NEWLINE": "bare_newline",
    "NON-SMTP COMMAND": "non_smtp_command",
    "DATA without valid RCPT": "data_without_rcpt",
    "BDAT without valid RCPT": "bdat_without_rcpt",
    "ALLOWLISTED": "allowlisted",
    "WHITELISTED": "allowlisted",
    "DENYLISTED": "denylisted",
    "BLACKLISTED": "denylisted",
    "ALLOWLIST VETO": "allowlist_veto",
    "WHITELIST VETO": "allowlist_veto",
}
_POSTSCREEN_PREFIXES: Final = tuple(
    dict.fromkeys(verb.split(" ")[0] + " " for verb in _POSTSCREEN_EVENTS)
)


# The commonest verbs, with the address right after them, skip the regex.
_POSTSCREEN_DIRECT: Final = {
    "CONNECT from": "connect",
    "PASS OLD": "pass_old",
    "PASS NEW": "pass_new",
    "DISCONNECT": "disconnect",
}


def _postscreen(service: str, queue_id: str, text: str) -> Record | None:
    verb, _, rest = text.partition(" [")
    event = _POSTSCREEN_DIRECT.get(verb)
    if event is not None:
        address, found, tail = rest.partition("]:")
        port, _, detail = tail.partition(" ")
        if found and port.isdigit():
            where = detail.removeprefix("to ") or None
            return _screen_record(service, event, address, port, where, None)
    match = _POSTSCREEN.match(text)
    if match is None:
        return None
    # Fresh names: the optional groups may be None (a compiled build checks types).
    name, number, ip, ip_port, extra = match.groups()
    event = _POSTSCREEN_EVENTS.get(name)
    if event is None:
        return None
    rank = int(number) if event == "dnsbl" and number else None
    return _screen_record(service, event, ip, ip_port, extra, rank)


def _screen_record(
    service: str,
    event: str,
    address: str,
    port: str,
    detail: str | None,
    rank: int | None,
) -> Record:
    if service == "tlsproxy":
        return SmtpdEvent(f"tlsproxy_{event}", None, address, detail=detail)
    return Postscreen(event, address, int(port), detail, rank)


# addr 1.2.3.4 listed by domain zen.spamhaus.org as 127.0.0.3
def _dnsblog(service: str, queue_id: str, text: str) -> Record | None:
    address, found, detail = text[5:].partition(" listed by domain ")
    if not found:
        return None
    return Postscreen("dnsbl_listed", address, None, detail)


# ------------------------------------------------------------------ cleanup


def _message_id(service: str, queue_id: str, text: str) -> Record | None:
    # 065AB16D682C: message-id=<foimsg.1324123.12312312312312.1231@mail.example.com>
    return CleanupMessageId(queue_id, _strip_angles(text[11:]))


def _resent_message_id(service: str, queue_id: str, text: str) -> Record | None:
    # 3mL1Hq0Tgvz7sWh: resent-message-id=<3mL1Hq0Tgvz7sWh@mx14.example.net>
    return CleanupMessageId(queue_id, _strip_angles(text[18:]), resent=True)


def _strip_angles(value: str) -> str:
    if value.startswith("<") and value.endswith(">"):
        return value[1:-1]
    return value


# header_checks/body_checks and milter header edits (cleanup(8), header_checks(5)):
# 99B222C0039E: replace: header MIME-Version: 1.0 from unknown[68.183.218.8];
#   from=<mail@sender2.example.com> to=<mail@sender2.example.com> proto=ESMTP
#   helo=<phplist.sender.example.com>: Mime-Version: 1.0
# D95341E50350: info: header Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= test from local;
#   from=<from@example.com> to=<to@example.com>
# 74ACB20CF40: reject: header Subject: BUY NOW cheap from localhost[127.0.0.1];
#   from=<sender@partner.example> to=<alice@acme.example> proto=ESMTP
#   helo=<client.example>: 5.7.1 message content rejected
# The part after "; ": the fields, then the rule's optional text after ": ".
_CONTENT_TAIL: Final = re.compile(
    r"((?:(?:(?:from|to|helo)=<[^>]*>|proto=[^\s:;,]+) ?)*)(?:: (.*))?$", re.S
)


def _content_check(service: str, queue_id: str, text: str) -> Record | None:
    action, _, rest = text.partition(": ")
    where, _, rest = rest.partition(" ")
    fields_at = rest.rfind("; from=<")
    client_at = rest.rfind(" from ", 0, fields_at)
    if where not in ("header", "body") or not action.islower():
        return None
    tail = _CONTENT_TAIL.match(rest, fields_at + 2)
    if client_at < 0 or tail is None:
        return None
    matched, client = rest[:client_at], rest[client_at + 6 : fields_at]
    host, _, address = client.partition("[")  # "local" for pickup: no address
    fields = _fields(tail[1])
    reason = tail[2]
    code, dsn, reason_text = _split_reply(reason) if reason else (None, None, "")
    return Reject(
        action,
        queue_id,
        where,
        host if address else None,
        address.rstrip("]") or None,
        code,
        dsn,
        reason_text or matched,
        fields.get("from"),
        fields.get("to"),
        fields.get("proto"),
        fields.get("helo"),
        source=service,
        matched=matched,
    )


# ------------------------------------------------------------------ qmgr, pickup

# 065AB16D682C: from=<a.foo.sadasd1231as@example.com>, size=5608, nrcpt=1 (queue
#   active)
# ED373F8043E: from=rory@rory-dev.localdomain, size=270, nrcpt=1 (queue active)
_QMGR_FROM: Final = re.compile(r"from=(?:<([^>]*)>|([^<,]*)), size=(\d+), nrcpt=(\d+)")
# BACE842E72: from=<noreply@domain.com>, status=expired, returned to sender
# BACE842E73: from=<noreply@domain.com>, status=force-expired, returned to sender
_QMGR_EXPIRED: Final = re.compile(
    r"from=(?:<(.*)>|([^<,]*)), status=(?:force-)?expired(, returned to sender)?$"
)


def _qmgr_from(service: str, queue_id: str, text: str) -> Record | None:
    match = _QMGR_FROM.match(text)
    if match is not None:
        sender, bare, size, nrcpt = match.groups()
        return QmgrFrom(
            queue_id, sender if bare is None else bare, int(size), int(nrcpt)
        )
    match = _QMGR_EXPIRED.match(text)
    if match is None:
        return None
    sender, bare, returned = match.groups()
    return QmgrExpired(queue_id, sender if bare is None else bare, returned is not None)


def _removed(service: str, queue_id: str, text: str) -> Record | None:
    # 163CB3EE5E7F: removed
    return QmgrRemoved(queue_id) if text == "removed" else None


# D4D433E8C6: uid=0 from=<root>
_PICKUP: Final = re.compile(r"uid=(\d+) from=<?([^>]*)>?$")


def _pickup(service: str, queue_id: str, text: str) -> Record | None:
    match = _PICKUP.match(text)
    if match is None:
        return None
    return Pickup(queue_id, int(match[1]), match[2])


# ------------------------------------------------------------------ delivery agents

# 0D2D63012027: to=<h-8629463e55008@h-5e67b9b4406.com>, relay=h-213dce00be4cedefd
#   [199.170.45.30]:25, delay=1.8, delays=0.01/0.02/1.5/0.26, dsn=2.0.0,
#   status=sent (250 2.0.0 Ok: queued as 4DRBDj4tP9zdZLM)
# 4jgLcj6g2QzJBVM: to=<carol@acme.example>, relay=127.0.0.1[127.0.0.1]:47125,
#   delay=0.11, delays=0.02/0.02/0.02/0.06, dsn=5.2.2, status=bounced (host
#   127.0.0.1[127.0.0.1] said: 552 5.2.2 <carol@acme.example> Quota exceeded
#   (mailbox for user is full) (in reply to RCPT TO command))
# 4PbzRZ0jDcz3tG5: to=<user01.test@uhu-banane.net>, orig_to=<root@mail.uhu-banane.de>,
#   relay=dovecot, delay=0.15, delays=0.01/0.02/0/0.13, dsn=2.0.0, status=sent
#   (delivered via dovecot service)
# 19B6B2900FE: to=<wietse@test.example.com>, orig_to=<wietse@test>,
#   relay=mail.example.com[1.2.3.4], conn_use=2, delay=0.22, ...
# 7EE668039: to=<user@example.com>, relay=mail.example.com[1.2.3.4]:25, delay=3.6,
#   delays=0.08/0.02/0.85/0.14, tls=dane/requiretls, dsn=2.1.5, status=sent (...)
#   (tls=: the TLS feature summary that newer Postfix versions add, log_adhoc.c)
_RELAY: Final = r", relay=(([^,\[]*)(?:\[([^\]]*)\](?::(\d+))?)?)(?:, conn_use=(\d+))?"
# The shape of nearly every line, matched first: it is the hottest pattern of a log.
_DELIVERY: Final = re.compile(
    r"to=<([^>]*)>(?:, orig_to=<([^>]*)>)?"
    + _RELAY
    + r", delay=([\d.]+), delays=([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+)"
    r"(?:, tls=([^,]*))?, dsn=([\d.]+)(?:, tls=([^,]*))?, status=(\w+)"
    # the response; a reply that starts with its codes has them split off here
    r" \((([2-5]\d\d) ([2-5]\.\d{1,3}\.\d{1,3}) (.*)|.*)\)$",
    re.S,
)
# Every shape Postfix writes, with the same groups: addresses without angle brackets,
# no delays=/dsn= (before Postfix 2.3), tls= after dsn= (some test vectors), a
# response cut short.
_DELIVERY_ANY: Final = re.compile(
    r"to=<?((?<=<)[^>]*|[^<,]*)>?(?:, orig_to=<?((?<=<)[^>]*|[^<,]*)>?)?"
    + _RELAY
    + r", delay=([\d.]+)(?:, delays=([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+))?"
    r"(?:, tls=([^,]*))?(?:, dsn=([\d.]+))?(?:, tls=([^,]*))?, status=([\w-]+)"
    r"(?: \((([2-5]\d\d) ([2-5]\.\d{1,3}\.\d{1,3}) (.*?)|.*?)\)?)?$",
    re.S,
)


# _DELIVERY without tls=, with ASCII numbers and the response ending the text: the
# same groups (bar the two tls=) for the lines nearly all logs consist of, and
# cheaper to match. A line it does not take goes to _DELIVERY.
_DELIVERY_COMMON: Final = re.compile(
    r"to=<([^>]*)>(?:, orig_to=<([^>]*)>)?"
    + _RELAY
    + r", delay=([0-9.]+), delays=([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+)"
    r", dsn=([0-9.]+), status=(\w+)"
    r" \((([2-5]\d\d) ([2-5]\.\d{1,3}\.\d{1,3}) (.*)|.*)\)\Z",
    re.S,
)


def _delivery(service: str, queue_id: str, text: str) -> Record | None:
    common = _DELIVERY_COMMON.match(text)
    if common is not None:
        groups = common.groups()
        # the tls= groups of _DELIVERY, which this pattern lacks: (tls, dsn, tls)
        return _delivery_record(
            service, queue_id, (*groups[:12], None, groups[12], None, *groups[13:])
        )
    match = _DELIVERY.match(text) or _DELIVERY_ANY.match(text)
    if match is None:
        return None
    return _delivery_record(service, queue_id, match.groups())


def _delivery_record(
    service: str, queue_id: str, groups: tuple[str | Any, ...]
) -> Record:
    """The Delivery of the groups of ``_DELIVERY`` (or ``_DELIVERY_ANY``)."""
    (to, orig, relay, host, address, port, conn_use, delay, a, b, c, d) = groups[:12]
    (tls, dsn, tls_after, status, response, code, enhanced, reply) = groups[12:]
    if address is None:  # none, local, virtual, dovecot: a name, not a host
        host = None
    elif "/" in address or not address[:1].isalnum():
        # h[private/dovecot-lmtp], h[/var/run/dovecot/lmtp]: a UNIX-domain socket
        address = None
    smtp_code = None
    if response is None:
        response = reply = ""
    elif code is None:
        smtp_code, enhanced, reply = _remote_reply(response)
    else:
        smtp_code = int(code)
    return Delivery(
        queue_id,
        service,
        to,
        status,
        orig,
        relay,
        host or None,
        address,
        int(port) if port else None,
        int(conn_use) if conn_use else None,
        float(delay),
        # delays=a/b/c/d: before the queue manager, in it, connection setup, transfer
        float(a) if a is not None else None,
        float(b) if b is not None else None,
        float(c) if c is not None else None,
        float(d) if d is not None else None,
        dsn,
        response,
        smtp_code,
        enhanced,
        reply,
        _dovecot_session(reply) if reply.endswith(" Saved") else None,
        tls if tls is not None else tls_after,
    )


def _dovecot_session(reply: str) -> str | None:
    """The session ID of Dovecot's LMTP reply, kept whole (``:R4`` included)."""
    # 250 2.0.0 <dave@acme.example> gDdwOoWhEWs6XAAAg+zDdQ:R4 Saved
    if not reply.startswith("<"):
        return None
    session = reply[reply.find("> ") + 2 : -6]
    return session if session and " " not in session else None


# ------------------------------------------------------------------ per-queue-ID events


def _notification(service: str, queue_id: str, text: str) -> Record | None:
    # 732BB407C3: sender non-delivery notification: 5DE184083C
    # 264FE1A18: sender delay notification: 0A87A1A08
    # 482E4404AC8: postmaster non-delivery notification: 47335405A44
    kind, found, new_queue_id = text.rpartition(" notification: ")
    if not found or not _is_queue_id(new_queue_id) or new_queue_id == "NOQUEUE":
        return None
    return Notification(queue_id, kind, new_queue_id)


def _queue_event(event: str) -> _Build:
    """A builder that keeps the whole text as one kind of per-queue-ID event."""

    def build(service: str, queue_id: str, text: str) -> Record | None:
        return QueueEvent(queue_id, event, text)

    return build


def _remote_said(service: str, queue_id: str, text: str) -> Record | None:
    # 732BB407C3: host mail.domain.com[1.1.1.1] said: 451 DT:SPM 163 mx13,... please
    #   try again 15min later (in reply to end of DATA command)
    # 40197AA: host mg2.egov.bg[213.91.191.86] refused to talk to me: 450 4.3.2 try
    #   again later
    if " said: " in text:
        return QueueEvent(queue_id, "host_said", text)
    if " refused to talk to me" in text:
        return QueueEvent(queue_id, "refused_to_talk", text)
    return None


_POSTSUPER_ACTIONS: Final = {
    "removed": "removed",
    "placed on hold": "placed_on_hold",
    "released from hold": "released_from_hold",
    "requeued": "requeued",
}


def _postsuper(service: str, queue_id: str, text: str) -> Record | None:
    # D4F2023DB: placed on hold
    action = _POSTSUPER_ACTIONS.get(text)
    return Postsuper(queue_id, action) if action is not None else None


# ------------------------------------------------------------------ severity and info

_SEVERITY_PREFIXES: Final = ("warning: ", "error: ", "fatal: ", "panic: ")


def _severity(service: str, queue_id: str, text: str) -> Record | None:
    # warning: TLS library problem: error:14209102:SSL routines:...
    # fatal: file /etc/postfix/main.cf: parameter default_privs: unknown user name
    level, _, detail = text.partition(": ")
    return Severity(level, detail)


def _notice(service: str, queue_id: str, text: str) -> Record | None:
    # daemon started -- version 3.4.14, configuration /etc/postfix
    # terminating on signal 15
    # starting the Postfix mail system                                (postfix-script)
    return Severity("notice", text)


def _info(what: str) -> _Build:
    """A builder for a recognised line that the delivery model does not use."""

    def build(service: str, queue_id: str, text: str) -> Record | None:
        return Info(what)

    return build


def _statistics(service: str, queue_id: str, text: str) -> Record | None:
    # statistics: max connection rate 1/60s for (smtpd:224.73.110.132) at Jan 28 06:40
    # statistics: domain lookup hits=0 miss=1 success=0%                     (scache)
    return Info(f"{service}_statistics")


def _cache_cleanup(service: str, queue_id: str, text: str) -> Record | None:
    # cache btree:/var/lib/postfix/postscreen_cache full cleanup: retained=105
    #   dropped=3 entries
    return Info("cache_cleanup") if " cleanup: retained=" in text else None


def _table_changed(service: str, queue_id: str, text: str) -> Record | None:
    # table hash:/etc/postfix/virtual_mailbox_maps(0,lock|fold_fix) has changed --
    #   restarting
    return Info("table_changed") if text.endswith("has changed -- restarting") else None


def _compatibility(service: str, queue_id: str, text: str) -> Record | None:
    # using backwards-compatible default setting relay_domains=$mydestination to
    #   accept mail for domain "foo.example.com"       (COMPATIBILITY_README)
    # /etc/postfix/master.cf: line 72: using backwards-compatible default setting ...
    if "sing backwards-compatible default setting" in text:
        return Info("compatibility_default")
    return None


# Deleted: 115 messages
_POSTSUPER_SUMMARY: Final = re.compile(
    r"(?:Deleted|Placed on hold|Released from hold|Requeued|Expired): \d+ messages?$"
)


def _postsuper_summary(service: str, queue_id: str, text: str) -> Record | None:
    if _POSTSUPER_SUMMARY.match(text) is None:
        return None
    return Info("postsuper_summary")


# ------------------------------------------------------------------ tables

# Rules every service tries after its own, in this order.
_COMMON_QUEUE: Final[tuple[_Rule, ...]] = (
    ("to=", _delivery),
    ("removed", _removed),
    (("sender ", "postmaster "), _notification),
    ("client=", _client),
    ("message-id=", _message_id),
    ("from=", _qmgr_from),
    ("uid=", _pickup),
)
_COMMON_PLAIN: Final[tuple[_Rule, ...]] = (
    (_SEVERITY_PREFIXES, _severity),
    ("statistics: ", _statistics),
    ("cache ", _cache_cleanup),
    ("table ", _table_changed),
    (_TLS_TRUST, _tls_established),
    (_PEER_EVENT_PREFIXES, _peer_event),
    ("discarding EHLO keywords: ", _info("discarding_ehlo_keywords")),
    ("Host offered STARTTLS", _info("starttls_offered")),
    ("", _compatibility),
)

_SMTPD_CONNECTION: Final[tuple[_Rule, ...]] = (
    (_AFTER_PREFIXES, _after),
    (("proxy-accept: ", "proxy-reject: "), _reject),
)

_QUEUE_RULES: Final[dict[str, tuple[_Rule, ...]]] = {
    "smtpd": (("client=", _client), *_SMTPD_CONNECTION, ("", _reject)),
    "postscreen": (("reject: ", _reject),),
    "cleanup": (
        ("message-id=", _message_id),
        ("", _content_check),
        (("milter-reject: ", "milter-hold: ", "milter-discard: "), _reject),
        ("resent-message-id=", _resent_message_id),
    ),
    "smtp": (
        ("to=", _delivery),
        ("host ", _remote_said),
        ("conversation with ", _queue_event("conversation_timeout")),
        ("lost connection with ", _queue_event("lost_connection")),
        ("enabling PIX workarounds", _queue_event("pix_workarounds")),
        ("SASL authentication failed", _queue_event("sasl_failed")),
        # The text of smtp_proto.c's smtp_site_fail(), logged per queue ID when
        # another MX host is left to try: "QID: Cannot start TLS: handshake
        # failure", "QID: TLS is required, but was not offered by host h[ip]".
        (("Cannot start TLS", "TLS is required"), _queue_event("tls_failed")),
    ),
    "qmgr": (
        ("from=", _qmgr_from),
        ("removed", _removed),
        ("skipped, still being delivered", _queue_event("skipped")),
    ),
    "postsuper": (("", _postsuper),),
}

# NOQUEUE lines: only the daemons that log before a queue file exists.
_NOQUEUE_RULES: Final[dict[str, tuple[_Rule, ...]]] = {
    "smtpd": _QUEUE_RULES["smtpd"],
    "postscreen": _QUEUE_RULES["postscreen"],
}

_PLAIN_RULES: Final[dict[str, tuple[_Rule, ...]]] = {
    "smtpd": (
        ("connect from ", _connect),
        ("disconnect from ", _disconnect),
        ("warning: ", _smtpd_warning),
        (_TLS_TRUST, _tls_established),
        *_SMTPD_CONNECTION,
    ),
    "smtp": (
        (_TLS_TRUST, _tls_established),
        (_PEER_EVENT_PREFIXES, _peer_event),
    ),
    "postscreen": (
        (_POSTSCREEN_PREFIXES, _postscreen),
        ("Using backwards-compatible default setting", _compatibility),
    ),
    "tlsproxy": (
        (("CONNECT ", "DISCONNECT "), _postscreen),
        (_TLS_TRUST, _tls_established),
    ),
    "dnsblog": (("addr ", _dnsblog),),
    "master": (
        (("daemon started -- ", "reload -- ", "terminating on signal "), _notice),
        ("master exit time has arrived", _notice),
    ),
    "postfix-script": (
        (("starting the Postfix", "stopping the Postfix", "refreshing the"), _notice),
        ("the Postfix mail system is ", _info("postfix_status")),
    ),
    "postsuper": (("", _postsuper_summary),),
}


# The LMTP client is the SMTP client program (smtp(8)) under another name.
_QUEUE_RULES["lmtp"] = _QUEUE_RULES["smtp"]
_PLAIN_RULES["lmtp"] = _PLAIN_RULES["smtp"]


def _tables(
    specific: dict[str, tuple[_Rule, ...]], common: tuple[_Rule, ...]
) -> dict[str, tuple[_Rule, ...]]:
    return {service: (*rules, *common) for service, rules in specific.items()}


_QUEUE_TABLES: Final = _tables(_QUEUE_RULES, _COMMON_QUEUE)
_PLAIN_TABLES: Final = _tables(_PLAIN_RULES, _COMMON_PLAIN)


# ------------------------------------------------------------------ entry point


def parse_postfix(service: str, message: str) -> Record:
    """Turn one Postfix message (after the envelope) into a record; never raises."""
    read = _READERS.get(service) or postfix_reader(service)
    return read(message)


# Readers by service; cleared past this many (a log can name any program).
_READERS: Final[dict[str, Callable[[str], Record]]] = {}
_READERS_LIMIT: Final = 1_000


def postfix_reader(service: str) -> Callable[[str], Record]:
    """The function that reads the messages of one service (what ``parse_postfix``
    does, with the service's tables looked up once); cached per service."""
    queue_rules = _QUEUE_TABLES.get(service, _COMMON_QUEUE)
    noqueue_rules = _NOQUEUE_RULES.get(service, ())
    plain_rules = _PLAIN_TABLES.get(service, _COMMON_PLAIN)

    def read(message: str) -> Record:
        rules, head, text = plain_rules, "", message
        # Queue IDs start with a digit or a capital (a long ID's first letter
        # encodes the seconds, a digit until about 2090), so a lowercase start is a
        # plain line. An ID is 6 to 32 characters (see _is_queue_id).
        if not message[:1].islower():
            colon = message.find(": ")
            if 6 <= colon <= 32:
                queue_id = message[:colon]
                if not queue_id.strip(_HEX):
                    rules, head, text = queue_rules, queue_id, message[colon + 2 :]
                elif queue_id == "NOQUEUE":
                    rules, head, text = noqueue_rules, queue_id, message[colon + 2 :]
                elif _LONG_QUEUE_ID.fullmatch(queue_id) is not None:
                    rules, head, text = queue_rules, queue_id, message[colon + 2 :]
        try:
            for prefix, build in rules:
                if text.startswith(prefix):
                    record = build(service, head, text)
                    if record is not None:
                        return record
        except ValueError:  # a number too malformed to convert: the line stays unknown
            pass
        return Unparsed("message", mask(message), message)

    if len(_READERS) > _READERS_LIMIT:
        _READERS.clear()
    _READERS[service] = read
    return read
