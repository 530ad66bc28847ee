"""Dovecot log messages to typed records.

A Dovecot message starts with the process's log prefix, then an optional level, then
the text. Dovecot 2.3's default ``mail_log_prefix`` is ``%s(%u)<%{pid}><%{session}>:``
(``lmtp(bob@acme.example)<6122><rdBDBT+SEWvqFwAAg+zDdQ>:``); LMTP adds ``:R2``-style
suffixes to the session for the second and later recipients of a transaction. Login
processes log ``imap-login:``, auth processes ``auth:`` or ``auth-worker(304):``. In its
own ``log_path`` file Dovecot writes the level (``Info:``, ``Error:``, ...); through
syslog the level is the syslog priority and only warnings and worse carry the word.
Dovecot 1.x put the level first (``Info: auth(default): ...``) and logged deliveries
as ``deliver(user):``; 2.2 wrote the LMTP session as a separate ``<session>:`` token.

What becomes what:

- ``msgid=<m>: saved mail to INBOX`` / ``save failed to INBOX: Quota exceeded (...)``
  from lmtp, lda or deliver: ``DovecotDelivery`` (status saved, failed, or rejected for
  1.x ``rejected: ...``). ``deliver_log_format`` fields before the status text
  (``msgid``, ``from``/``from_envelope``, ``size``, ``delivery_time``,
  ``session_time``, in milliseconds since Dovecot 2.2.17) are read in any order.
- ``sieve: msgid=<m>: stored mail into mailbox 'X'`` and other Pigeonhole actions:
  ``DovecotSieve``. When Sieve files a message, Dovecot logs this line instead of a
  ``saved mail to`` line, so a consumer must count ``action == "stored"`` as the save.
  A Sieve ``failed to store into mailbox 'X': reason`` is a ``DovecotDelivery`` with
  status failed, so quota failures look the same either way.
- lmtp ``Connect from``/``Disconnect from``, and imap/pop3/managesieve session ends
  (``Logged out``, ``Connection closed``, ``Disconnected for inactivity``):
  ``DovecotConnection``.
- lmtp ``Error:`` lines: ``DovecotLmtpError``.
- ``*-login`` results and ``auth``/``auth-worker`` failures: ``DovecotAuth``.
- any other ``Warning:``/``Error:``/``Fatal:``/``Panic:`` line: ``Severity``; ``Debug:``
  lines and start-up notices: ``Info``.
- anything else: ``Unparsed(reason="message")`` with its masked shape.

Known shortcomings: a ``mail_log_prefix`` not of the form ``service(user)<pid>
<session>:`` is not read, so such lines are counted as unparsed shapes; with
``login_log_format_elements`` in another order than the default, a login keeps its
event but may lose the user, method and address.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from mailtriage.parsers.records import (
    DovecotAuth,
    DovecotConnection,
    DovecotDelivery,
    DovecotLmtpError,
    DovecotSieve,
    Info,
    Record,
    Severity,
    Unparsed,
)
from mailtriage.parsers.shapes import mask

_LEVELS: Final = {
    "Debug": "debug",
    "Info": "info",
    "Warning": "warning",
    "Warn": "warning",  # Dovecot 1.x
    "Error": "error",
    "Fatal": "fatal",
    "Panic": "panic",
}
_SEVERE: Final = frozenset(("warning", "error", "fatal", "panic"))
# Prefixes without a session, already split: (service, argument) by the raw prefix.
_HEADS: Final[dict[str, tuple[str, str | None]]] = {}
_HEADS_LIMIT: Final = 10_000
_LEVEL_INITIALS: Final = "DIWEFP"

# lmtp(bob@acme.example)<6122><rdBDBT+SEWvqFwAAg+zDdQ:R2>:   imap-login:
# auth-worker(304):   IMAP(trex):   pam_unix(dovecot:auth):
_PREFIX: Final = re.compile(
    r"([A-Za-z][\w-]*)(?:\(([^()]*)\))?(?:<(\d+)>)?(?:<([^<>]*)>)?: "
)
# Dovecot 2.2 wrote the LMTP session after the prefix: "z5FOLrRhDVpddgAABvoInA: "
_SESSION_TOKEN: Final = re.compile(r"([A-Za-z0-9+/]{22}(?::R\d+)?): ")
# "msgid=<m>, from=x@y, size=2648, delivery_time=1, session_time=5: saved mail to X"
_SAVE_STATUS: Final = (
    (": saved mail to ", "saved mail to"),
    (": save failed to ", "save failed to"),
    (": rejected: ", "rejected:"),
    (": forwarded to ", "forwarded to"),
)
_FIELD: Final = re.compile(r"(\w+)=(<[^<>]*>|[^,\s]*)")
# "passwd-file(bob,192.0.2.1,<sid>): unknown user", "pam(u,1.2.3.4): pam_authenticate()
# failed: ...", "userdb(u,::ffff:127.0.0.1): user not found from userdb"
_AUTH_DRIVER: Final = re.compile(
    r"([\w-]+)\(([^,()]*)(?:,([^,()]*))?(?:,[^()]*)?\): (.*)\Z"
)
# "Aborted login (auth failed, 1 attempts in 2 secs)", 1.x "(1 authentication attempts)"
_AUTH_FAILED: Final = re.compile(r"\(auth[ _]failed|\(\d+ authentication attempts\)")
# login_log_format_elements, in their default order (user, method, rip, ...);
# Dovecot 1.x logged "PID=12150" after the user.
_LOGIN_VALUES: Final = re.compile(
    r"(?:user=<([^<>]*)>, )?(?:PID=\d+, )?(?:method=([^,\s]*), )?rip=([^,\s]+)"
)

# Sieve actions (Pigeonhole), in lower case, after "msgid=<...>: ".
_SIEVE_ACTIONS: Final = (
    (": stored mail into mailbox ", "stored"),
    (": failed to store into mailbox ", "store_failed"),
    (": forwarded to ", "forwarded"),
    (": sent vacation response to ", "vacation"),
    (": discarded duplicate vacation response", "vacation_duplicate"),
    (": marked message to be discarded", "discarded"),
    (": discarded", "discarded"),
    (": sent rejection message to ", "rejected"),
    (": rejected message from ", "rejected"),
    (": not sending reject message to ", "rejected"),
    (": left message in mailbox ", "kept"),
)

# How login processes say a connection ended without a login.
_LOGIN_ENDS: Final = (
    "Disconnected",
    "Aborted login",
    "Login aborted",
    "Client has quit",
    "Remote closed",
    "Connection closed",
    "Maximum number",
)

# Session ends of mail processes (imap, pop3, managesieve, submission).
_SESSION_ENDS: Final = (
    ("Logged out", "logout"),
    ("Disconnected: Logged out", "logout"),
    ("Connection closed", "disconnect"),
    ("Disconnected", "disconnect"),
    ("Server shutting down", "disconnect"),
)


def parse_dovecot(program: str, message: str) -> Record:
    """Turn one Dovecot message into a record.

    ``program`` is the envelope's program: ``dovecot`` through syslog, ``""`` for
    Dovecot's own log file, where ``message`` still starts with the process prefix.
    Never raises for any text; unknown forms become ``Unparsed``.
    """
    if "(" in program:
        # Dovecot 1.x deliver logged under the ident "deliver(user)".
        message = f"{program}: {message}"
    elif message[:5] == "lmtp(":
        saved = _LMTP_SAVED.match(message)
        if saved is not None:
            record = _lmtp_saved(saved)
            if record is not None:
                return record
    if message[:9] == "dovecot: ":  # "dovecot[442]: dovecot: auth(default): ..."
        message = message[9:]
    level, rest = _split_level(message)  # Dovecot 1.x put the level first
    prefix = _split_prefix(rest)
    if prefix is None:
        service, arg, session, body = "", None, None, rest
    else:
        service, arg, session, body = prefix
    inner_level, body = _split_level(body)
    level = inner_level or level or "info"
    handler = _HANDLERS.get(service)
    if handler is None and service.endswith("-login"):
        handler = _login
    record = handler(service, arg, session, level, body) if handler else None
    if record is not None:
        return record
    return _fallback(service, level, body, message)


# The line of every successful LMTP delivery, read by one regex: what the general
# path below makes of it, at a third of the cost. Dovecot's default deliver_log_format
# ("msgid=%m: %$") or the one with sender, size and timings; no ":" in the mailbox, so
# no later status text can follow (see _last_marker). A message-id in angle brackets
# is taken whole or not at all, as _FIELD takes it.
# lmtp(judy3@umbrella.example)<96005><ac5n5MBxu+j86fyRIUmPcQ>: msgid=<5478ed04be8e8d7e
#   .5447@media69.example.com>, from=niaj.11@media69.example.com, size=15992,
#   delivery_time=87, session_time=7: saved mail to INBOX
_LMTP_SAVED: Final = re.compile(
    r"lmtp\(([^()]*)\)<\d+><([^<>]*)>: (?:Info: )?msgid=((?><[^<>]*>|[^,\s]*))"
    r"(?:, from=([^,\s]*), size=([^,\s]*), delivery_time=([^,\s]*)"
    r", session_time=([^,\s]*))?: saved mail to ([^:]*)\Z"
)


def _lmtp_saved(match: re.Match[str]) -> Record | None:
    """The record ``_save`` makes of a line ``_LMTP_SAVED`` matched; None when the
    argument of ``lmtp(...)`` names no user (the general path decides)."""
    arg, session, msgid, sender, size, delivery_ms, session_ms, mailbox = match.groups()
    user = arg.rpartition(", ")[2]  # as _user_of
    if not arg or user.isdigit():
        return None
    if msgid[:1] == "<" and msgid[-1:] == ">":
        msgid = msgid[1:-1]
    if mailbox[:1] in "'\"":
        mailbox = _unquote(mailbox)
    if sender is None:  # the default format: "msgid=%m: %$"
        return DovecotDelivery("lmtp", user, session, msgid, "saved", mailbox)
    return DovecotDelivery(
        "lmtp",
        user,
        session,
        msgid,
        "saved",
        mailbox,
        None,
        _number(delivery_ms),
        _number(session_ms),
        _integer(size),
        _bare(sender) or None,
    )


def _split_prefix(rest: str) -> tuple[str, str | None, str | None, str] | None:
    """(service, argument, session, body) of ``service(arg)<pid><session>: body``."""
    colon = rest.find(": ")
    head = rest[:colon]
    if colon > 0 and "<" not in head:
        # Heads without a session repeat ("imap-login", "lmtp(6122)", "auth"): cached.
        known = _HEADS.get(head)
        if known is not None:
            return known[0], known[1], None, rest[colon + 2 :]
        if " " not in head:
            found = _PREFIX.fullmatch(rest, 0, colon + 2)
            if found is not None:
                if len(_HEADS) > _HEADS_LIMIT:
                    _HEADS.clear()
                service, arg = _HEADS[head] = (found[1].lower(), found[2])
                return service, arg, None, rest[colon + 2 :]
    found = _PREFIX.match(rest)
    if found is None:
        return None
    service, arg, _, session = found.groups()
    return service.lower(), arg, session, rest[found.end() :]


def _split_level(text: str) -> tuple[str | None, str]:
    if text[:1] in _LEVEL_INITIALS:
        colon = text.find(": ", 0, 9)
        if colon > 0:
            level = _LEVELS.get(text[:colon])
            if level is not None:
                return level, text[colon + 2 :]
    return None, text


def _fallback(service: str, level: str, body: str, message: str) -> Record:
    if level in _SEVERE:
        return Severity(severity=level, text=f"{service}: {body}" if service else body)
    if level == "debug":
        return Info(what="debug")
    return Unparsed(reason="message", shape=mask(message), text=message)


# ---------------------------------------------------------------------- deliveries


def _delivery(
    service: str, arg: str | None, session: str | None, level: str, body: str
) -> Record | None:
    user = _user_of(arg)
    if user is None:  # lmtp(6122): the connection, not a recipient
        if body.startswith("Connect from "):
            return DovecotConnection(service, "connect", _remote(body[13:]))
        if body.startswith("Disconnect from "):
            remote, _, detail = body[16:].partition(": ")
            return DovecotConnection(
                service, "disconnect", _remote(remote), detail or None
            )
    elif session is None:
        token = _SESSION_TOKEN.match(body)
        if token is not None:
            session, body = token[1], body[token.end() :]
    if body.startswith("sieve: "):
        return _sieve(service, user, session, level, body[7:])
    if user is not None:
        # "%$" of deliver_log_format comes after the fields and ": " (or alone).
        at, found = _last_marker(body, _SAVE_STATUS)
        if found is not None:
            marker, what = found
            if at >= 0:
                head, tail = body[:at], body[at + len(marker) :]
            else:
                head, tail = "", body[len(marker) - 2 :]
            return _save(service, user, session, head, what, tail)
    if level == "error" and service == "lmtp":
        return DovecotLmtpError(user=user, session=session, text=body)
    return None


def _save(
    service: str, user: str, session: str | None, head: str, what: str, tail: str
) -> Record:
    if head.startswith("msgid=") and ", " not in head:  # the default format
        fields = {"msgid": head[6:]}
    else:
        fields = dict(_FIELD.findall(head))
    if what == "forwarded to":  # 1.x cmusieve: "msgid=<m>: forwarded to <x>"
        return DovecotSieve(
            user, session, _bare(fields.get("msgid")), "forwarded", tail
        )
    mailbox: str | None = None
    reason: str | None = None
    if what == "saved mail to":
        status, mailbox = "saved", tail
    elif what == "save failed to":
        status = "failed"
        mailbox, _, reason_text = tail.partition(": ")
        reason = reason_text or None
    else:  # "rejected:"
        status, reason = "rejected", tail or None
    msgid = fields.get("msgid")
    if msgid is not None and msgid[:1] == "<" and msgid[-1:] == ">":
        msgid = msgid[1:-1]
    if mailbox is not None and mailbox[:1] in "'\"":
        mailbox = _unquote(mailbox)
    if len(fields) == 1:  # the default deliver_log_format: "msgid=%m: %$"
        return DovecotDelivery(service, user, session, msgid, status, mailbox, reason)
    sender = fields.get("from_envelope", fields.get("from"))
    return DovecotDelivery(
        service,
        user,
        session,
        msgid,
        status,
        mailbox,
        reason or None,
        _number(fields.get("delivery_time")),
        _number(fields.get("session_time")),
        _integer(fields.get("size")),
        # An empty from= is "not known" (Dovecot leaves %{from_envelope} empty for
        # the later recipients of an LMTP transaction), not the null sender.
        _bare(sender) or None,
    )


def _sieve(
    service: str, user: str | None, session: str | None, level: str, body: str
) -> Record | None:
    # "msgid=<m>: stored mail into mailbox 'X'"; newer Pigeonhole capitalises some
    # texts ("Marked message to be discarded ..."), so the search ignores case.
    at, found = _last_marker(body.lower(), _SIEVE_ACTIONS)
    if found is None:
        return None
    marker, action = found
    head, text = (body[:at], body[at + 2 :]) if at >= 0 else ("", body)
    msgid = _bare(head[6:]) if head.startswith("msgid=") else None
    detail = text[len(marker) - 2 :].strip() or None
    if action == "store_failed":
        if user is None or detail is None:
            return None
        mailbox, _, reason = detail.partition(": ")
        return DovecotDelivery(
            service, user, session, msgid, "failed", _unquote(mailbox), reason or None
        )
    if level in _SEVERE:
        return None
    if action in ("stored", "kept") and detail is not None:
        detail = _unquote(detail)
    return DovecotSieve(user, session, msgid, action, detail)


def _last_marker(
    text: str, markers: tuple[tuple[str, str], ...]
) -> tuple[int, tuple[str, str] | None]:
    """The marker (": what ...") that occurs last in ``text``, and where; position -1
    with a marker when the text starts with it. The last one wins because a
    message-id, which the sender chooses, comes before the status text and may
    itself contain ": saved mail to ..." (log text is untrusted)."""
    best, found = -1, None
    for marker in markers:
        at = text.rfind(marker[0])
        if at > best:
            best, found = at, marker
    if found is None:
        for marker in markers:
            if text.startswith(marker[0][2:]):
                return -1, marker
    return best, found


# ---------------------------------------------------------------------- logins, auth


def _login(
    service: str, arg: str | None, session: str | None, level: str, body: str
) -> Record | None:
    # login_log_format "%$: %s": the text, then "user=<u>, method=M, rip=IP, ..."
    start = body.find("user=<")
    if start < 0:
        start = body.find("rip=")
    values = _LOGIN_VALUES.match(body, start) if start >= 0 else None
    text = body[: values.start()].removesuffix(": ") if values else body
    if text == "Login":
        event = "login"
        text = ""
    elif _AUTH_FAILED.search(text):
        event = "auth_failed"
    elif "plaintext auth" in text:
        event = "plaintext_denied"
    elif "no auth attempts" in text or text.startswith(_LOGIN_ENDS):
        event = "disconnected"
    else:
        return None
    return DovecotAuth(
        service=service[: -len("-login")],
        event=event,
        user=(values[1] or None) if values else None,
        remote_ip=values[3] if values else None,
        method=(values[2] or None) if values else None,
        detail=text or None,
    )


def _auth(
    service: str, arg: str | None, session: str | None, level: str, body: str
) -> Record | None:
    if service == "pam_unix":
        return _pam_unix(body)
    if body.startswith("pam_unix("):
        return _pam_unix(body.partition("): ")[2])
    remote: str | None  # the address is optional in the driver form
    if arg is not None and "," in arg:
        # 2.3.x: "auth(user,192.0.2.1,sasl:login)<sid>: Info: sql: Password mismatch"
        user, _, rest = arg.partition(",")
        remote = rest.partition(",")[0]
        driver, _, reason = body.partition(": ")
    else:
        found = _AUTH_DRIVER.search(body)
        if found is None:
            return None
        driver, user, remote, reason = found[1], found[2], found[3], found[4]
    return DovecotAuth(
        service="auth",
        event=_auth_event(reason),
        user=user or None,
        remote_ip=remote or None,
        detail=f"{driver}: {reason}",
    )


def _auth_event(reason: str) -> str:
    lowered = reason.lower()
    if "unknown user" in lowered or "not found" in lowered or "not known" in lowered:
        return "unknown_user"
    if "mismatch" in lowered or "authentication failure" in lowered:
        return "password_mismatch"
    if "invalid credentials" in lowered:
        return "password_mismatch"
    if "failed" in lowered:
        return "auth_failed"
    if "refusal" in lowered or "policy" in lowered:
        return "policy_refused"
    return "other"


def _pam_unix(text: str) -> Record | None:
    # (pam_unix(dovecot:auth): ) authentication failure; logname= uid=0 euid=0
    # tty=dovecot ruser=web rhost=176.61.140.224  user=root
    if not text.startswith("authentication failure"):
        return None
    fields = dict(_FIELD.findall(text))
    return DovecotAuth(
        service="auth",
        event="password_mismatch",
        user=fields.get("user") or fields.get("ruser") or None,
        remote_ip=fields.get("rhost") or None,
        detail="pam_unix: authentication failure",
    )


# ---------------------------------------------------------------------- sessions


def _session(
    service: str, arg: str | None, session: str | None, level: str, body: str
) -> Record | None:
    if level != "info":
        return None
    for start, event in _SESSION_ENDS:
        if body.startswith(start):
            return DovecotConnection(service, event, None, body)
    return None


def _master(
    service: str, arg: str | None, session: str | None, level: str, body: str
) -> Record | None:
    if level != "info":
        return None
    if body.startswith("Dovecot v") and " starting up" in body:
        return Info(what="dovecot_start")
    if body.startswith(("SIGHUP received", "SIGTERM received")):
        return Info(what="dovecot_signal")
    return None


# ---------------------------------------------------------------------- values


def _user_of(arg: str | None) -> str | None:
    """The user in ``lmtp(user)``; None for ``lmtp(6122)`` (a pid) or no argument.
    Dovecot 2.2 wrote ``lmtp(6122, user)``."""
    if not arg:
        return None
    user = arg.rpartition(", ")[2]
    return None if user.isdigit() else user


def _remote(text: str) -> str | None:
    """``127.0.0.1`` stays; ``local`` (a UNIX socket) has no address."""
    text = text.strip()
    return None if text in ("", "local") else text


def _bare(value: str | None) -> str | None:
    if value is None:
        return None
    if value[:1] == "<" and value[-1:] == ">":
        return value[1:-1]
    return value


def _unquote(mailbox: str) -> str:
    if len(mailbox) >= 2 and mailbox[0] == mailbox[-1] and mailbox[0] in "'\"":
        return mailbox[1:-1]
    return mailbox


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _integer(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() else None


_Handler = Callable[[str, str | None, str | None, str, str], Record | None]
# Readers by the process in the log prefix; "*-login" processes go to _login.
_HANDLERS: Final[dict[str, _Handler]] = {
    "lmtp": _delivery,
    "lda": _delivery,
    "deliver": _delivery,
    "auth": _auth,
    "auth-worker": _auth,
    "dovecot-auth": _auth,
    "pam_unix": _auth,
    "imap": _session,
    "pop3": _session,
    "managesieve": _session,
    "submission": _session,
    "master": _master,
    "": _master,
}
