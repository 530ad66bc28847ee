"""Pseudonymous addresses: hidden before the model, revealed after, also when the
answer arrives in pieces."""

from __future__ import annotations

import pytest

from mailtriage.agents.privacy import Pseudonymizer

TEXT = (
    "552 5.2.2 <bob@acme.example> Quota exceeded; from=<Jane.Doe+x@partner.example>"
    " and bob@acme.example again"
)


def test_addresses_are_replaced_and_the_domains_kept() -> None:
    p = Pseudonymizer()
    hidden = p.hide(TEXT)

    assert hidden == (
        "552 5.2.2 <person-1@acme.example> Quota exceeded; "
        "from=<person-2@partner.example> and person-1@acme.example again"
    )
    assert p.reveal(hidden) == TEXT


def test_hiding_twice_keeps_the_pseudonyms() -> None:
    p = Pseudonymizer()
    once = p.hide(TEXT)

    assert p.hide(once) == once


def test_unknown_pseudonyms_are_left_alone() -> None:
    assert Pseudonymizer().reveal("person-7@acme.example") == "person-7@acme.example"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_streamed_pieces_are_revealed_whole(size: int) -> None:
    p = Pseudonymizer()
    answer = p.hide(
        "Mailbox bob@acme.example is full, tell Jane.Doe+x@partner.example."
    )
    revealer = p.revealer()

    shown = [revealer.feed(answer[i : i + size]) for i in range(0, len(answer), size)]
    shown.append(revealer.flush())

    assert "".join(shown) == (
        "Mailbox bob@acme.example is full, tell Jane.Doe+x@partner.example."
    )
    assert not any("person-" in piece for piece in shown)
