"""One raw log line to an envelope and a typed record.

``LineParser`` reads the envelope, decides by the program which family of parser reads
the message (Postfix, Dovecot, or none), and returns both. It is the one entry point the
ingest pipeline, the follower, the syslog listener and ``mailtriage parse`` use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, tzinfo
from functools import partial

from mailtriage.parsers.dovecot import parse_dovecot
from mailtriage.parsers.envelope import EnvelopeParser
from mailtriage.parsers.postfix import parse_postfix
from mailtriage.parsers.records import Envelope, Record, Unparsed
from mailtriage.parsers.shapes import mask

# Longer lines are cut to this many characters before parsing (and in Unparsed.text);
# they are still counted as one line each. Postfix limits a logged line to 2 kB by
# default (line_length_limit applies to SMTP; syslog relays cut at 8 kB or less).
MAX_LINE_CHARS = 64 * 1024

# Postfix daemons and commands, by the last component of the syslog tag
# (postfix/smtpd, postfix-out/smtp, postfix/submission/smtpd, relay/smtp). From the
# Postfix manual's list of daemons (postfix(1), master(5)) and the command names that
# log under the same syslog_name.
POSTFIX_DAEMONS = frozenset(
    (
        "anvil",
        "bounce",
        "cleanup",
        "defer",
        "discard",
        "dnsblog",
        "error",
        "flush",
        "lmtp",
        "local",
        "master",
        "nqmgr",
        "oqmgr",
        "pickup",
        "pipe",
        "postalias",
        "postcat",
        "postconf",
        "postdrop",
        "postfix",
        "postfix-script",
        "postkick",
        "postlock",
        "postlog",
        "postlogd",
        "postmap",
        "postmulti",
        "postqueue",
        "postscreen",
        "postsuper",
        "proxymap",
        "qmgr",
        "qmqpd",
        "retry",
        "scache",
        "sendmail",
        "showq",
        "smtp",
        "smtpd",
        "spawn",
        "tlsmgr",
        "tlsproxy",
        "trace",
        "trivial-rewrite",
        "verify",
        "virtual",
    )
)

_OTHER, _POSTFIX, _DOVECOT = 0, 1, 2
# Dovecot 1.x logged LDA deliveries under the ident "deliver(user)", and its auth
# process as "dovecot-auth".
_DOVECOT_IDENTS = ("dovecot-", "deliver(", "lda(")


def family_of(program: str) -> tuple[int, str]:
    """(family, service) of a syslog program name.

    Postfix when the tag has a path and its last component is a Postfix daemon
    (``relay/smtp``), or when the first component is ``postfix`` or ``postfix-*``
    (multi-instance names, ``postfix/postfix-script``); the service is the last
    component. Dovecot when the program is ``dovecot`` (syslog), ``dovecot-*``,
    ``deliver(user)`` (1.x), or ``""`` (Dovecot's own log file, which has no tag).
    """
    head, _, _ = program.partition("/")
    service = program.rpartition("/")[2]
    is_postfix = head == "postfix" or head.startswith("postfix-")
    if is_postfix or ("/" in program and service in POSTFIX_DAEMONS):
        return _POSTFIX, service
    if program == "" or head == "dovecot" or head.startswith(_DOVECOT_IDENTS):
        return _DOVECOT, program
    return _OTHER, program


def family_name(program: str) -> str:
    """``postfix``, ``dovecot`` or ``other``: the family ``LineParser`` reads
    ``program`` as."""
    return ("other", "postfix", "dovecot")[family_of(program)[0]]


class LineParser:
    """Parses raw log lines into ``(Envelope | None, Record)``; never raises.

    The caller decodes bytes first, with ``errors="replace"`` (``mailtriage parse`` and
    ingest do) or ``"surrogateescape"``: both give a ``str`` any parser can read, and
    the replacement characters only affect the text of the line they occur in. A
    trailing newline is ignored. Keep one parser per input stream: it caches
    timestamps, hosts and tags between consecutive lines.
    """

    def __init__(
        self,
        *,
        tz: tzinfo = UTC,
        reference_ts: float | None = None,
        year: int | None = None,
    ) -> None:
        self._envelope = EnvelopeParser(
            tz=tz, reference_ts=reference_ts, year=year
        ).parse
        self._readers: dict[str, Callable[[str], Record]] = {}

    def parse(self, raw: str) -> tuple[Envelope | None, Record]:
        """The envelope and record of one line. Envelope None means the record is
        ``Unparsed(reason="envelope")``."""
        if raw[-1:] == "\n":
            raw = raw[:-2] if raw[-2:] == "\r\n" else raw[:-1]
        if len(raw) > MAX_LINE_CHARS:
            raw = raw[:MAX_LINE_CHARS]
        try:
            env = self._envelope(raw)
        except Exception:  # a bug in a frame reader must not stop an ingest
            return None, Unparsed(reason="error", shape=mask(raw), text=raw)
        if env is None:
            return None, Unparsed(reason="envelope", shape=mask(raw), text=raw)
        read = self._readers.get(env.program) or self._reader(env.program)
        try:
            return env, read(env.message)
        except Exception:  # counted as reason "error", so parser bugs stay visible
            return env, Unparsed(reason="error", shape=mask(env.message), text=raw)

    def parse_message(self, program: str, message: str) -> Record:
        """The record of a message whose program is already known (a journald field,
        a pushed record, a line without envelope). Never raises."""
        read = self._readers.get(program) or self._reader(program)
        try:
            return read(message)
        except Exception:  # counted as reason "error", so parser bugs stay visible
            return Unparsed(reason="error", shape=mask(message), text=message)

    def _reader(self, program: str) -> Callable[[str], Record]:
        """The function that reads messages of ``program``, cached per program."""
        family, service = family_of(program)
        if family == _POSTFIX:
            read: Callable[[str], Record] = partial(parse_postfix, service)
        elif family == _DOVECOT:
            read = partial(parse_dovecot, program)
        else:
            read = _not_read
        if len(self._readers) > 10_000:
            self._readers.clear()
        self._readers[program] = read
        return read


def _not_read(message: str) -> Record:
    # Programs mailtriage does not read are grouped by program only.
    return Unparsed(reason="program", shape="", text=message)
