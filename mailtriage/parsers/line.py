"""One raw log line to an envelope and a typed record.

``LineParser`` reads the envelope, decides by the program which family of parser reads
the message (Postfix, Dovecot, or none), and returns both. It is the one entry point the
ingest pipeline, the follower, the syslog listener and ``mailtriage parse`` use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, tzinfo
from functools import partial
from typing import Final

from mailtriage.parsers.dovecot import parse_dovecot
from mailtriage.parsers.envelope import EnvelopeParser
from mailtriage.parsers.postfix import postfix_reader
from mailtriage.parsers.records import Envelope, Record, Unparsed
from mailtriage.parsers.shapes import mask

# Longer lines are cut to this many characters before parsing (and in Unparsed.text);
# they are still counted as one line each. Postfix limits a logged line to 2 kB by
# default (line_length_limit applies to SMTP; syslog relays cut at 8 kB or less).
MAX_LINE_CHARS: Final = 64 * 1024

# Postfix daemons and commands, by the last component of the syslog tag
# (postfix/smtpd, postfix-out/smtp, postfix/submission/smtpd, relay/smtp). From the
# Postfix manual's list of daemons (postfix(1), master(5)) and the command names that
# log under the same syslog_name.
POSTFIX_DAEMONS: Final = frozenset(
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
_MONTH_INITIALS: Final = "JFMASOND"
# The tag cache of the fast path is cleared past this many tags (one per pid).
_TAGGED_LIMIT: Final = 50_000
# Dovecot 1.x logged LDA deliveries under the ident "deliver(user)", and its auth
# process as "dovecot-auth".
_DOVECOT_IDENTS: Final = ("dovecot-", "deliver(", "lda(")


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
        envelope = EnvelopeParser(tz=tz, reference_ts=reference_ts, year=year)
        self._envelope = envelope.parse
        # The envelope parser's caches of stamps, hosts and tags seen before, read
        # in place by the fast path of ``parse`` (the envelope's own, inlined).
        self._stamps = envelope.stamps
        self._hosts = envelope.hosts
        self._tags = envelope.tags
        self._readers: dict[str, Callable[[str], Record]] = {}
        # tag ("postfix/smtpd[6079]:") -> (program, pid, reader of its messages)
        self._tagged: dict[str, tuple[str, int | None, Callable[[str], Record]]] = {}

    def parse(self, raw: str) -> tuple[Envelope | None, Record]:
        """The envelope and record of one line. Envelope None means the record is
        ``Unparsed(reason="envelope")``."""
        # The common case first: a syslog stamp, host and tag seen before. This is
        # EnvelopeParser.parse's own fast path with the reader lookup folded in and
        # the tokens found rather than split off (the host starts after the stamp
        # and one space in all three stamp forms); the line terminator is cut from
        # the message only.
        if raw[:1] in _MONTH_INITIALS and len(raw) <= MAX_LINE_CHARS:
            end = 14 if raw[5:6] == " " else 15
            ts = self._stamps.get(raw[:end])
            host_end = raw.find(" ", end + 1)
            tag_end = raw.find(" ", host_end + 1)
            if ts is not None and raw[end : end + 1] == " " and host_end > 0 < tag_end:
                tag = raw[host_end + 1 : tag_end]
                tagged = self._tagged.get(tag) or self._tag_reader(tag)
                host = self._hosts.get(raw[end + 1 : host_end])
                if (
                    tagged is not None
                    and host
                    and raw[tag_end + 1 : tag_end + 5] != "[ID "
                ):
                    stop = len(raw)
                    if raw[-1:] == "\n":
                        stop -= 2 if raw[-2:] == "\r\n" else 1
                    message = raw[tag_end + 1 : stop]
                    env = Envelope(ts, host, tagged[0], tagged[1], message)
                    try:
                        return env, tagged[2](message)
                    except Exception:  # as in _parse, below
                        return env, Unparsed("error", mask(message), raw[:stop])
        return self._parse(raw)

    def _parse(self, raw: str) -> tuple[Envelope | None, Record]:
        """``parse`` for every line its fast path does not take."""
        if raw[-1:] == "\n":
            raw = _unterminated(raw)
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

    def _tag_reader(
        self, tag: str
    ) -> tuple[str, int | None, Callable[[str], Record]] | None:
        """Program, pid and reader of a tag the envelope parser has cached; None for
        any other token (``parse`` then takes the slow path, which caches it)."""
        program_pid = self._tags.get(tag)
        if program_pid is None:
            return None
        program, pid = program_pid
        read = self._readers.get(program) or self._reader(program)
        if len(self._tagged) > _TAGGED_LIMIT:
            self._tagged.clear()
        tagged = self._tagged[tag] = (program, pid, read)
        return tagged

    def _reader(self, program: str) -> Callable[[str], Record]:
        """The function that reads messages of ``program``, cached per program."""
        family, service = family_of(program)
        if family == _POSTFIX:
            read: Callable[[str], Record] = postfix_reader(service)
        elif family == _DOVECOT:
            read = partial(parse_dovecot, program)
        else:
            read = _not_read
        if len(self._readers) > 10_000:
            self._readers.clear()
        self._readers[program] = read
        return read


def _unterminated(line: str) -> str:
    """``line`` without its terminator (``\\n`` or ``\\r\\n``); the caller checked
    that it ends in ``\\n``."""
    return line[:-2] if line[-2:] == "\r\n" else line[:-1]


def _not_read(message: str) -> Record:
    # Programs mailtriage does not read are grouped by program only.
    return Unparsed(reason="program", shape="", text=message)
