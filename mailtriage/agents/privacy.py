"""Pseudonymous addresses for a hosted model (``[llm] pseudonymize = true``).

Before text leaves for the model, every e-mail address's local part is replaced by
``person-N`` (the domain stays: which domains are affected is what the model
reasons about); the answer is mapped back before anyone reads it. Tool arguments
the model writes with a pseudonym are mapped back before the tool runs, so a
search for ``person-3@acme.example`` finds the real recipient.

Shortcoming: names in free text (a subject, a display name) are not recognised;
only addresses are replaced.
"""

from __future__ import annotations

import re

# RFC 5321 local parts are richer, but log addresses are in this dot-atom form.
_ADDRESS = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+=-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
_PSEUDONYM = re.compile(r"person-(\d+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# Characters that may continue an address or a pseudonym in a stream of text.
_ADDRESS_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+=-@"
)


class Pseudonymizer:
    """A reversible mapping of addresses to ``person-N@domain``, for one
    conversation."""

    def __init__(self) -> None:
        self._hidden: dict[str, str] = {}
        self._real: dict[str, str] = {}

    def hide(self, text: str) -> str:
        """``text`` with every address replaced by its pseudonym."""
        return _ADDRESS.sub(self._pseudonym, text)

    def reveal(self, text: str) -> str:
        """``text`` with every known pseudonym replaced by the real address."""

        def real(found: re.Match[str]) -> str:
            return self._real.get(found.group(0).lower(), found.group(0))

        return _PSEUDONYM.sub(real, text)

    def revealer(self) -> StreamRevealer:
        """A reverser for text that arrives in pieces."""
        return StreamRevealer(self)

    def _pseudonym(self, found: re.Match[str]) -> str:
        address = found.group(0)
        if _PSEUDONYM.fullmatch(address) and address.lower() in self._real:
            return address
        key = address.lower()
        if key not in self._hidden:
            fake = f"person-{len(self._hidden) + 1}@{found.group(2).lower()}"
            self._hidden[key] = fake
            self._real[fake] = address
        return self._hidden[key]


class StreamRevealer:
    """Reveals pseudonyms in streamed text: the tail that could still be the start
    of a pseudonym is held back until the next piece (or ``flush``) completes
    it."""

    def __init__(self, pseudonyms: Pseudonymizer | None) -> None:
        self._pseudonyms = pseudonyms
        self._held = ""

    def feed(self, piece: str) -> str:
        """The text that can be shown now."""
        if self._pseudonyms is None:
            return piece
        text = self._held + piece
        cut = len(text)
        while cut > 0 and text[cut - 1] in _ADDRESS_CHARS:
            cut -= 1
        self._held = text[cut:]
        return self._pseudonyms.reveal(text[:cut])

    def flush(self) -> str:
        """Whatever was held back, revealed."""
        held, self._held = self._held, ""
        return self._pseudonyms.reveal(held) if self._pseudonyms else held
