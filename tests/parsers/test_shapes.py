"""Masking of unparsed lines into shapes."""

from __future__ import annotations

import pytest

from mailtriage.parsers.shapes import MAX_SHAPE_CHARS, mask

SHAPES = [
    pytest.param(
        "4B1E3A1F2: to=<bob@example.com>, relay=mx.example.com[192.0.2.1]:25",
        "<QID>: to=<ADDR>, relay=<HOST>[<IP>]:<N>",
        id="delivery-like",
    ),
    pytest.param(
        "3mPVKl0Mhjz7sXv: from=<>, size=2666, nrcpt=2 (queue active)",
        "<QID>: from=<ADDR>, size=<N>, nrcpt=<N> (queue active)",
        id="long-queue-id-and-null-sender",
    ),
    pytest.param(
        "lmtp(bob@acme.example)<15122><+mRAJxygEWsSOwAAg+zDdQ>: Error: odd",
        "lmtp(<ADDR>)<<N>><SID>: Error: odd",
        id="dovecot-prefix",
    ),
    pytest.param(
        "connect from unknown[2001:db8::a11:beef:7ac0] at 16:00:56",
        "connect from <HOST>[<IP>] at <TIME>",
        id="ipv6-and-time",
    ),
    pytest.param(
        "host said: 550 5.1.1 user unknown (in reply to RCPT TO command)",
        "host said: <N> 5.1.1 user unknown (in reply to RCPT TO command)",
        id="enhanced-status-code-is-kept",
    ),
    pytest.param(
        "rip=::ffff:192.0.2.4, lip=10.0.0.1, TLSv1.3",
        "rip=<IP>, lip=<IP>, TLSv1.<N>",
        id="mapped-ipv4",
    ),
]


@pytest.mark.parametrize(("text", "shape"), SHAPES)
def test_variable_parts_are_masked(text: str, shape: str) -> None:
    assert mask(text) == shape


def test_lines_of_one_kind_share_a_shape() -> None:
    first = mask("lost connection after AUTH from a.example[192.0.2.1]")
    second = mask("lost connection after AUTH from mail.b.example.org[198.51.100.77]")
    assert first == second


def test_shape_is_bounded() -> None:
    assert len(mask("word " * 10_000)) == MAX_SHAPE_CHARS
