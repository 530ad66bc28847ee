"""Tokens by digest, bearer parsing, tenant confinement, and the bind rule."""

from __future__ import annotations

import pytest

from mailtriage.app.api.auth import (
    ANONYMOUS_OPERATOR,
    Caller,
    TokenBook,
    check_bind_address,
    token_digest,
)
from mailtriage.app.settings import TokenSettings
from mailtriage.errors import AuthError, ConfigError, ForbiddenError

BOOK = TokenBook(
    [
        TokenSettings(name="ops", sha256=token_digest("op")),
        TokenSettings(name="acme-ro", sha256=token_digest("ac"), tenant="acme"),
    ]
)


def test_digest_is_the_sha256_hex_of_the_token() -> None:
    # sha256("abc") from FIPS 180-2, appendix B.1.
    assert token_digest("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize(
    ("header", "caller"),
    [
        ("Bearer op", Caller("ops", None)),
        ("bearer ac", Caller("acme-ro", "acme")),
        ("BEARER   ac  ", Caller("acme-ro", "acme")),
    ],
)
def test_bearer_token_names_its_caller(header: str, caller: Caller) -> None:
    assert BOOK.caller(header) == caller


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer nope", "Basic op", "op"]
)
def test_missing_or_unknown_token_is_an_auth_error(header: str | None) -> None:
    with pytest.raises(AuthError):
        BOOK.caller(header)


def test_without_tokens_every_caller_is_an_operator() -> None:
    assert TokenBook([]).caller(None) == ANONYMOUS_OPERATOR
    assert not TokenBook([]).enabled


def test_tenant_caller_is_confined_and_may_not_ask_for_another() -> None:
    acme = Caller("acme-ro", "acme")
    assert acme.confine(None) == "acme"
    assert acme.confine("acme") == "acme"
    with pytest.raises(ForbiddenError, match="acme"):
        acme.confine("globex")
    with pytest.raises(ForbiddenError):
        acme.require_operator("unparsed lines")
    assert Caller("ops", None).confine("globex") == "globex"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.10.0.1", "::1", "[::1]", "localhost"]
)
def test_loopback_is_served_without_tokens(host: str) -> None:
    check_bind_address(host, TokenBook([]))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "mail.example"])
def test_other_addresses_need_tokens(host: str) -> None:
    with pytest.raises(ConfigError, match="without tokens"):
        check_bind_address(host, TokenBook([]))
    check_bind_address(host, BOOK)
