"""Shapes of unparsed lines: variable parts masked, so that lines group by form.

``mask`` replaces what differs between two lines of the same kind (addresses, hosts,
IPs, queue and session IDs, numbers) with placeholders, in the spirit of Drain's
masking step, so ``mailtriage parse --coverage`` and ``/v1/unparsed`` can list the most
common unknown forms with a count and one example each. It is one pass of one regular
expression; the output depends on the text alone, so equal shapes are equal strings.

    >>> mask("4B1E3A1F2: to=<bob@example.com>, relay=mx.example.com[192.0.2.1]:25")
    '<QID>: to=<ADDR>, relay=<HOST>[<IP>]:<N>'
"""

from __future__ import annotations

import re
from typing import Final

# Longer shapes than this are cut: a shape is a grouping key, not a copy of the line.
MAX_SHAPE_CHARS = 300

_IPV4: Final = r"\d{1,3}(?:\.\d{1,3}){3}"
# 2001:db8::1, ::1, ::ffff:192.0.2.4 (at least two colons)
_IPV6: Final = r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:" + _IPV4 + r"|[0-9A-Fa-f]{1,4})"
# One alternation, tried at each position; the first branch that matches wins, so
# the order matters (an address before a host, an IP before a number). Possessive
# quantifiers keep a failed branch from backtracking through a long token.
_PATTERN: Final = re.compile(
    "|".join(
        (
            # <bob@example.com>, bob@example.com, <> (the null sender)
            r"(?P<ADDR><[^<>\s@]*+@[^<>\s]*+>|<>|\b[\w.+=-]++@[\w-]++(?:\.[\w-]++)*+)",
            # Dovecot session IDs: <rdBDBT+SEWvqFwAAg+zDdQ>, <6brQWt/vCADDhP/+>
            r"(?P<SID><[A-Za-z0-9+/]{12,24}>)",
            # mx.example.com[192.0.2.1], unknown[2001:db8::1]
            r"(?P<HOSTIP>\b[\w.-]++\[(?:" + _IPV4 + "|" + _IPV6 + r")\])",
            r"(?P<TIME>\b\d\d:\d\d:\d\d(?:\.\d++)?+)",
            r"(?P<IP>\b" + _IPV4 + r"\b|(?<![\w:])" + _IPV6 + r"\b)",
            # enhanced status codes stay: they name the kind of failure (RFC 3463)
            r"(?P<DSN>\b[245]\.\d{1,3}\.\d{1,3}\b)",
            r"(?P<HOST>\b(?:[A-Za-z\d-]++\.)++[A-Za-z]{2,}+\b)",
            # words that mix letters and digits: queue IDs, session IDs, hashes
            r"(?P<ID>\b[A-Za-z]++\d[A-Za-z\d]*+\b|\b\d++[A-Za-z][A-Za-z\d]*+\b)",
            r"(?P<N>\b\d++(?:\.\d++)?+\b)",
        )
    )
)
# Words shorter than this that mix letters and digits (TLSv1, smtpd2) are kept.
_MIN_ID_CHARS: Final = 8
_PLACEHOLDER: Final = {
    "ADDR": "<ADDR>",
    "SID": "<SID>",
    "HOSTIP": "<HOST>[<IP>]",
    "TIME": "<TIME>",
    "IP": "<IP>",
    "HOST": "<HOST>",
    "N": "<N>",
}


def _replace(found: re.Match[str]) -> str:
    group = found.lastgroup
    if group == "ID":
        word = found[0]
        if len(word) < _MIN_ID_CHARS:
            return word
        # A word right before a colon is a queue ID ("4B1E3A1F2: to=<...>").
        return "<QID>" if found.string[found.end() : found.end() + 1] == ":" else "<ID>"
    if group is None or group == "DSN":
        return found[0]
    return _PLACEHOLDER[group]


def mask(text: str) -> str:
    """The shape of ``text``: variable parts replaced by ``<ADDR>``, ``<HOST>``,
    ``<IP>``, ``<QID>``, ``<SID>``, ``<ID>``, ``<TIME>``, ``<N>``."""
    return _PATTERN.sub(_replace, text[: MAX_SHAPE_CHARS * 2])[:MAX_SHAPE_CHARS]
