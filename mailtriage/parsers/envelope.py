"""Envelopes: the frame around a mail log message, in every form mail logs come in.

One ``EnvelopeParser`` reads, per line, the timestamp, host, program and pid, and hands
back the message after them. The first character of a line decides which form is tried,
so a line costs one dictionary lookup before the work starts:

- ``J F M A S O N D``: traditional syslog (RFC 3164) ``Dec  3 16:00:56 mx1 postfix/
  smtpd[6079]: ...`` with space-padded, zero-padded (Postfix's ``maillog_file``) or
  unpadded days, optionally with fractions (``journalctl -o short-precise``); Dovecot's
  ``log_path`` file has no host: ``Dec 03 16:01:03 lmtp(alice@acme.example)<6122>
  <rdBDBT+SEWvqFwAAg+zDdQ>: Info: ...``.
- digits: RFC 3339 / rsyslog high precision ``2026-12-03T16:00:56.123456+01:00 mx1
  ...``, journald ``short-iso`` (``+0100``), ``2019-10-15 08:08:52 imap-login: ...``
  (Dovecot ``log_timestamp``, zone-less), ``journalctl -o short-unix`` epochs, and
  ``docker logs --timestamps`` lines (an RFC 3339 stamp before a syslog line).
- ``<``: ``<PRI>`` then RFC 5424 (``<22>1 2026-12-03T16:00:56Z mx1 postfix/smtpd 6079 -
  - msg``) or any form above (RFC 3164 as sent over the network).
- ``@``: daemontools/multilog TAI64N stamps (``@4000000063e4...``).
- ``{``: ``journalctl -o json`` records.
- ``d``: the Dovecot 1.x log file ``dovecot: Mar 13 15:25:07 Info: ...``.

Where there is no host (Dovecot's own file, multilog), ``host`` is ``""``; a first
token of the form ``name[pid]:`` is still read as the program, anything else that ends
in a colon (``imap-login:``, ``lmtp(bob)<12><sid>:``) stays in the message and
``program`` is ``""``: that is Dovecot's ``log_path`` prefix, which ``parse_dovecot``
reads.

Times become UTC epoch seconds. Stamps without a zone are read in the configured zone;
stamps without a year get the latest year that does not put the line more than a day
after the reference time (``reference_ts``, or the clock when None), so a December line
read in January lands in the previous year. A fixed ``year`` overrides the inference.

Speed: consecutive lines usually share their second, so the last stamp and its value
are kept; a new second costs one dictionary lookup of the hour's base (computed once per
hour of log through ``zoneinfo``) plus minute and second arithmetic. No ``datetime`` is
built per line. Tags (``postfix/smtpd[6079]:``) and hosts are cached, so their strings
are shared between lines.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from mailtriage.parsers.records import Envelope

MONTHS = {
    "Jan": 1,
    "Feb": 2,
    "Mar": 3,
    "Apr": 4,
    "May": 5,
    "Jun": 6,
    "Jul": 7,
    "Aug": 8,
    "Sep": 9,
    "Oct": 10,
    "Nov": 11,
    "Dec": 12,
}

# "Dec  3 16:00:56", "Dec 03 16:00:56", "Dec 3 16:00:56"
_BSD_STAMP: Final = re.compile(r"([A-Z][a-z]{2}) ( ?\d|\d\d) (\d\d):(\d\d):(\d\d)\Z")
# "2026-12-03T16:00:56" or "2019-10-15 08:08:52" (RFC 3339 date-time, seconds part)
_ISO_STAMP: Final = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)\Z")
# "+01:00", "+0100" (journald short-iso), "Z"
_ZONE: Final = re.compile(r"Z|([+-])(\d\d):?(\d\d)\Z")
# RFC 5424 STRUCTURED-DATA: one or more [id param="value"...] with \" \] escapes.
_SD: Final = re.compile(r'(?:\[[^\]"]*(?:"(?:[^"\\]|\\.)*"[^\]"]*)*\])+')

_MONTH_INITIALS: Final = "JFMASOND"
# A line in the future by more than this is taken to belong to an earlier year.
_FUTURE_SLACK_SECONDS: Final = 86_400.0
# Caches are cleared when they grow past this (logs with many hosts or processes).
_CACHE_LIMIT: Final = 50_000
# TAI64 labels count from 2**62; daemontools writes the Unix time plus 10 s and no leap
# seconds, and tai64nlocal subtracts the same, so neither do we.
_TAI64_UNIX_OFFSET: Final = (1 << 62) + 10


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, without ``datetime``."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class EnvelopeParser:
    """Splits raw log lines into ``Envelope``s; ``parse`` returns None when no frame
    fits. Keeps small caches, so use one instance per input stream (not thread-safe).
    """

    def __init__(
        self,
        *,
        tz: tzinfo = UTC,
        reference_ts: float | None = None,
        year: int | None = None,
    ) -> None:
        self._tz = tz
        self._tz_is_utc = tz is UTC or getattr(tz, "key", None) in ("UTC", "Etc/UTC")
        self._reference = reference_ts
        self._year = year
        self._hour_base: dict[tuple[int, int, int, int], float] = {}
        self._hour_cache_born = time.time()
        # The caches below are public so that LineParser's fast path (which inlines
        # ``parse``'s own) can read them; only this class writes them.
        self.stamps: dict[str, float] = {}
        self._iso_key = ""
        self._iso_zone = ""
        self._iso_ts = 0.0
        self.tags: dict[str, tuple[str, int | None]] = {}
        self.hosts: dict[str, str] = {}
        self._by_first: dict[str, Callable[[str], Envelope | None]] = {}
        for initial in "JFMASOND":
            self._by_first[initial] = self._bsd
        for digit in "0123456789":
            self._by_first[digit] = self._iso
        self._by_first["<"] = self._pri
        self._by_first["@"] = self._tai64n
        self._by_first["{"] = self._journal_json
        self._by_first["d"] = self._dovecot1

    def parse(self, line: str) -> Envelope | None:
        """The envelope of ``line`` (no line terminator), or None when none fits."""
        if line[:1] in _MONTH_INITIALS:
            # The common case inlined: a syslog stamp, host and tag seen before.
            # "Dec  3 16:00:56 h t: m" splits into 7 parts, "Dec 03 ..." into 6.
            end = 14 if line[5:6] == " " else 15
            ts = self.stamps.get(line[:end])
            if ts is not None and line[end : end + 1] == " ":
                last = 6 if line[4] == " " else 5
                parts = line.split(" ", last)
                if len(parts) > last:
                    host = self.hosts.get(parts[last - 2])
                    program_pid = self.tags.get(parts[last - 1])
                    message = parts[last]
                    if host and program_pid and message[:4] != "[ID ":
                        return Envelope(
                            ts, host, program_pid[0], program_pid[1], message
                        )
        form = self._by_first.get(line[:1])
        if form is None:
            return None
        return form(line)

    # ------------------------------------------------------------------ the forms

    def _bsd(self, line: str) -> Envelope | None:
        # "Dec 3 16:00:56" (unpadded) is one character shorter than the other two.
        end = 14 if line[5:6] == " " else 15
        stamp = line[:end]
        ts = self.stamps.get(stamp)
        if ts is None:
            ts = self._bsd_seconds(stamp)
            if ts is None:
                return None
            self._remember_stamp(stamp, ts)
        after = line[end : end + 1]
        if after == " ":
            return self._frame(line, end + 1, ts)
        if after == ".":  # journalctl -o short-precise: "Dec 03 16:00:56.123456"
            space = line.find(" ", end)
            fraction = line[end + 1 : space]
            if space < 0 or not _is_digits(fraction):
                return None
            return self._frame(line, space + 1, ts + float("0." + fraction))
        return None

    def _iso(self, line: str) -> Envelope | None:
        # "2019-10-15 08:08:52 ..." has a space between date and time.
        space = line.find(" ", 11 if line[10:11] == " " else 0)
        if space < 0:
            return None
        ts = self._iso_seconds(line[:space])
        if ts is None:
            return None
        start = space + 1
        if line[start : start + 3] in MONTHS:  # docker --timestamps before syslog
            start = self._skip_bsd_stamp(line, start)
        return self._frame(line, start, ts)

    def _pri(self, line: str) -> Envelope | None:
        close = line.find(">", 1, 5)
        if close < 2 or not _is_digits(line[1:close]) or int(line[1:close]) > 191:
            return None
        if line[close + 1 : close + 3] == "1 ":
            return self._rfc5424(line[close + 3 :])
        rest = line[close + 1 :]
        form = self._by_first.get(rest[:1])
        if form is None or form == self._pri:
            return None
        return form(rest)

    def _rfc5424(self, rest: str) -> Envelope | None:
        # TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG] (RFC 5424 6.)
        parts = rest.split(" ", 5)
        if len(parts) < 6 or parts[0] == "-":
            return None
        ts = self._iso_seconds(parts[0])
        if ts is None:
            return None
        host, app, procid, sd_msg = parts[1], parts[2], parts[3], parts[5]
        if sd_msg[:1] == "-":
            message = sd_msg[2:]
        else:
            found = _SD.match(sd_msg)
            if found is None:
                return None
            message = sd_msg[found.end() + 1 :]
        if message[:1] == "\ufeff":  # the BOM that marks a UTF-8 MSG (RFC 5424 6.4)
            message = message[1:]
        return Envelope(
            ts=ts,
            host=self._host("" if host == "-" else host),
            program=app,  # "-" (nil) stays: "" would mean Dovecot's own log file
            pid=int(procid) if _is_digits(procid) else None,
            message=message,
        )

    def _tai64n(self, line: str) -> Envelope | None:
        label = line[1:25]
        if line[25:26] != " " or len(label) != 24:
            return None
        try:
            seconds = int(label[:16], 16) - _TAI64_UNIX_OFFSET
            nanoseconds = int(label[16:], 16)
        except ValueError:
            return None
        return self._frame(line, 26, seconds + nanoseconds / 1e9)

    def _journal_json(self, line: str) -> Envelope | None:
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        # The sender's own clock when the client supplied it, else journald's.
        stamp = record.get("_SOURCE_REALTIME_TIMESTAMP") or record.get(
            "__REALTIME_TIMESTAMP"
        )
        if not isinstance(stamp, str) or not _is_digits(stamp):
            return None
        pid = _text(record.get("SYSLOG_PID")) or _text(record.get("_PID"))
        return Envelope(
            ts=int(stamp) / 1e6,
            host=self._host(_text(record.get("_HOSTNAME"))),
            # "-" when journald names no program: "" would mean Dovecot's own file
            program=_text(record.get("SYSLOG_IDENTIFIER"))
            or _text(record.get("_COMM"))
            or "-",
            pid=int(pid) if _is_digits(pid) else None,
            message=_text(record.get("MESSAGE")),
        )

    def _dovecot1(self, line: str) -> Envelope | None:
        if not line.startswith("dovecot: "):
            return None
        return self._bsd(line[9:])

    # ------------------------------------------------------------------ host and tag

    def _frame(self, line: str, start: int, ts: float) -> Envelope | None:
        """Reads ``host tag: message`` (or a host-less ``tag: message``) at start."""
        parts = line[start:].split(" ", 2)
        host = parts[0]
        if host[-1:] == ":":
            return self._hostless(line, start, host, ts)
        if len(parts) < 2 or not host:
            return None
        program_pid = self.tags.get(parts[1]) or self._tag(parts[1])
        if program_pid is None:
            return None
        message = parts[2] if len(parts) == 3 else ""
        if message[:4] == "[ID ":  # Solaris syslog: "[ID 197553 mail.info] ..."
            close = message.find("] ")
            if close > 0:
                message = message[close + 2 :]
        interned = self.hosts.get(host) or self._host(host)
        return Envelope(ts, interned, program_pid[0], program_pid[1], message)

    def _hostless(
        self, line: str, start: int, first: str, ts: float
    ) -> Envelope | None:
        # Dovecot's log_path prefix ("imap-login:", "lmtp(bob)<12><sid>:") stays in
        # the message; a real tag ("postfix/smtpd[12]:") is read as the program.
        if first[-2:] == "]:" or ("/" in first and "(" not in first):
            program_pid = self.tags.get(first) or self._tag(first)
            if program_pid is not None:
                message = line[start + len(first) + 1 :]
                return Envelope(ts, "", program_pid[0], program_pid[1], message)
        return Envelope(ts, "", "", None, line[start:])

    def _tag(self, tag: str) -> tuple[str, int | None] | None:
        """``postfix/smtpd[6079]:`` -> ("postfix/smtpd", 6079); ``dovecot:`` ->
        ("dovecot", None); None when the token is not a tag. Only tags are cached."""
        name = tag[:-1] if tag[-1:] == ":" else ""
        pid: int | None = None
        if name[-1:] == "]":
            bracket = name.rfind("[")
            digits = name[bracket + 1 : -1]
            if bracket <= 0 or not _is_digits(digits):
                return None
            pid = int(digits)
            name = name[:bracket]
        if not name:
            return None
        if len(self.tags) > _CACHE_LIMIT:
            self.tags.clear()
        result = self.tags[tag] = (name, pid)
        return result

    def _remember_stamp(self, stamp: str, ts: float) -> None:
        if len(self.stamps) > _CACHE_LIMIT:
            self.stamps.clear()
        self.stamps[stamp] = ts

    def _host(self, host: str) -> str:
        """The shared copy of a host name. Names ending in a colon are not cached:
        the fast path in ``parse`` takes a cached first token as a host."""
        if not host or host[-1] == ":":
            return host
        if len(self.hosts) > _CACHE_LIMIT:
            self.hosts.clear()
        return self.hosts.setdefault(host, host)

    def _skip_bsd_stamp(self, line: str, start: int) -> int:
        end = start + (14 if line[start + 5 : start + 6] == " " else 15)
        if line[end : end + 1] == " " and _BSD_STAMP.match(line[start:end]):
            return end + 1
        return start

    # ------------------------------------------------------------------ time

    def _bsd_seconds(self, stamp: str) -> float | None:
        found = _BSD_STAMP.match(stamp)
        if found is None:
            return None
        month = MONTHS.get(found[1])
        day, hour = int(found[2]), int(found[3])
        minute, second = int(found[4]), int(found[5])
        if month is None or not (1 <= day <= 31 and hour < 24 and minute < 60):
            return None
        if second > 60:
            return None
        base = self._yearless_hour(month, day, hour)
        if base is None:
            return None
        return base + minute * 60 + second

    def _yearless_hour(self, month: int, day: int, hour: int) -> float | None:
        """Start of the local hour, in the year the reference time implies."""
        if self._reference is None and time.time() - self._hour_cache_born > 3600:
            # Following a live log: "now" moves, so inferred years may change.
            self._hour_base.clear()
            self.stamps.clear()
            self._hour_cache_born = time.time()
        key = (0, month, day, hour)
        base = self._hour_base.get(key)
        if base is not None:
            return base
        if self._year is not None:
            years = [self._year]
            latest = float("inf")
        else:
            reference = time.time() if self._reference is None else self._reference
            latest = reference + _FUTURE_SLACK_SECONDS
            ref_year = datetime.fromtimestamp(reference, self._tz).year
            years = list(range(ref_year + 1, ref_year - 8, -1))
        for year in years:
            if day > _days_in_month(year, month):
                continue
            candidate = self._local_hour(year, month, day, hour)
            if candidate <= latest:
                self._remember(key, candidate)
                return candidate
        return None

    def _local_hour(self, year: int, month: int, day: int, hour: int) -> float:
        """Epoch of a zone-less local hour start. In the repeated hour of a DST
        fall-back, stamps without a zone are read as the first occurrence."""
        if self._tz_is_utc:
            return (days_from_civil(year, month, day) * 24 + hour) * 3600.0
        key = (year, month, day, hour)
        base = self._hour_base.get(key)
        if base is None:
            base = datetime(year, month, day, hour, tzinfo=self._tz).timestamp()
            self._remember(key, base)
        return base

    def _remember(self, key: tuple[int, int, int, int], value: float) -> None:
        if len(self._hour_base) > _CACHE_LIMIT:
            self._hour_base.clear()
        self._hour_base[key] = value

    def _iso_seconds(self, stamp: str) -> float | None:
        """Epoch of an RFC 3339 (or journald short-iso, or zone-less) stamp."""
        size = len(stamp)
        if size < 19:
            return _unix_seconds(stamp)
        if stamp[-1] == "Z":
            zone_len = 1
        elif size >= 25 and stamp[-3] == ":" and stamp[-6] in "+-":
            zone_len = 6
        elif size >= 24 and stamp[-5] in "+-":
            zone_len = 5
        else:
            zone_len = 0
        key = stamp[:19]
        zone = stamp[size - zone_len :] if zone_len else ""
        fraction = stamp[19 : size - zone_len]
        if key == self._iso_key and zone == self._iso_zone:
            ts = self._iso_ts
        else:
            found = self._iso_parts(key, zone)
            if found is None:
                return _unix_seconds(stamp)
            ts = found
            self._iso_key, self._iso_zone, self._iso_ts = key, zone, ts
        if fraction:
            if fraction[0] != "." or not _is_digits(fraction[1:]):
                return None
            ts += float(fraction)
        return ts

    def _iso_parts(self, key: str, zone: str) -> float | None:
        found = _ISO_STAMP.match(key)
        if found is None:
            return None
        year, month, day, hour, minute, second = (int(g) for g in found.groups())
        valid_day = 1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)
        if not valid_day or hour > 23 or minute > 59 or second > 60:
            return None
        if not zone:
            return self._local_hour(year, month, day, hour) + minute * 60 + second
        offset = _zone_offset(zone)
        if offset is None:
            return None
        days = days_from_civil(year, month, day)
        return days * 86_400.0 + hour * 3600 + minute * 60 + second - offset


def _zone_offset(zone: str) -> int | None:
    found = _ZONE.match(zone)
    if found is None:
        return None
    if zone == "Z":
        return 0
    sign = -1 if found[1] == "-" else 1
    return sign * (int(found[2]) * 3600 + int(found[3]) * 60)


def _unix_seconds(stamp: str) -> float | None:
    """``journalctl -o short-unix``: ``1704106800.123456``."""
    whole, _, fraction = stamp.partition(".")
    if (
        not _is_digits(whole)
        or len(whole) < 9
        or (fraction and not _is_digits(fraction))
    ):
        return None
    return float(stamp)


def _text(value: Any) -> str:
    """A journald field as text: strings as they are, byte arrays decoded."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(b, int) and 0 <= b < 256 for b in value
    ):
        return bytes(value).decode("utf-8", "replace")
    return ""
