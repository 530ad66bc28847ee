"""Tenant attribution: which tenant a delivery, a reject or a message belongs to."""

from __future__ import annotations

import re

import pytest

from mailtriage.app.settings import TenantSettings
from mailtriage.errors import ConfigError
from mailtriage.parsers import tenants as tenants_module
from mailtriage.parsers.tenants import UNASSIGNED, TenantMap, domain_of


def _map(**owned: TenantSettings) -> TenantMap:
    return TenantMap.from_settings(owned)


@pytest.fixture
def tmap() -> TenantMap:
    return _map(
        acme=TenantSettings(
            domains=["acme.example", "*.acme-corp.example"], sasl_users=["acme-relay"]
        ),
        globex=TenantSettings(
            domains=["globex.example", "*.eu.acme-corp.example"],
            senders=["news.globex.example"],
        ),
    )


@pytest.mark.parametrize(
    ("address", "domain"),
    [
        ("alice@Acme.Example", "acme.example"),
        ("<alice@acme.example>", "acme.example"),
        ("alice@acme.example.", "acme.example"),
        ('"a@b"@acme.example', "acme.example"),
        ("alice@[127.0.0.1]", "[127.0.0.1]"),
        ("<>", ""),
        ("", ""),
        (None, ""),
        ("root", ""),
        ('"odd@local"', ""),
    ],
    ids=[
        "mixed-case",
        "angle-brackets",
        "trailing-dot",
        "quoted-local-part-with-at",
        "address-literal",
        "null-sender",
        "empty",
        "none",
        "bare-local-user",
        "quoted-local-part-only",
    ],
)
def test_domain_of_reads_the_domain_part(address: str | None, domain: str) -> None:
    assert domain_of(address) == domain


def test_exact_domain_belongs_to_its_tenant(tmap: TenantMap) -> None:
    assert tmap.for_domain("acme.example") == "acme"
    assert tmap.for_domain("globex.example") == "globex"


def test_wildcard_matches_subdomains_at_any_depth_but_not_the_apex(
    tmap: TenantMap,
) -> None:
    assert tmap.for_domain("mail.acme-corp.example") == "acme"
    assert tmap.for_domain("a.b.acme-corp.example") == "acme"
    assert tmap.for_domain("acme-corp.example") is None


def test_longer_wildcard_wins_over_shorter(tmap: TenantMap) -> None:
    assert tmap.for_domain("paris.eu.acme-corp.example") == "globex"
    assert tmap.for_domain("eu.acme-corp.example") == "acme"


def test_exact_name_wins_over_wildcard() -> None:
    tmap = _map(
        a=TenantSettings(domains=["*.example.org"]),
        b=TenantSettings(domains=["shop.example.org"]),
    )
    assert tmap.for_domain("shop.example.org") == "b"
    assert tmap.for_domain("www.shop.example.org") == "a"


def test_recipient_domain_owner_wins_over_sender_and_sasl_user(
    tmap: TenantMap,
) -> None:
    assert tmap.attribute("globex.example", "acme.example", "acme-relay") == "globex"


def test_outbound_mail_belongs_to_sasl_user_before_sender_domain(
    tmap: TenantMap,
) -> None:
    assert tmap.attribute("gmail.example", "news.globex.example", "acme-relay") == (
        "acme"
    )
    assert tmap.attribute("gmail.example", "news.globex.example", None) == "globex"


def test_senders_default_to_domains(tmap: TenantMap) -> None:
    assert tmap.attribute("gmail.example", "acme.example", None) == "acme"
    assert tmap.attribute("gmail.example", "x.acme-corp.example", None) == "acme"


def test_explicit_senders_replace_domains_as_senders(tmap: TenantMap) -> None:
    assert tmap.attribute("gmail.example", "globex.example", None) == UNASSIGNED


def test_unmatched_delivery_is_unassigned(tmap: TenantMap) -> None:
    assert tmap.attribute("gmail.example", "yahoo.example", "stranger") == UNASSIGNED
    assert tmap.attribute("gmail.example", None, None) == UNASSIGNED


def test_lookups_ignore_case_of_sasl_user(tmap: TenantMap) -> None:
    assert tmap.for_sasl_user("ACME-Relay") == "acme"


def test_patterns_are_normalised_from_config() -> None:
    tmap = _map(acme=TenantSettings(domains=[" ACME.example. "]))
    assert tmap.for_domain("acme.example") == "acme"


def test_domain_claimed_by_two_tenants_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=re.escape("'acme.example' is claimed by tenants")
    ):
        _map(
            a=TenantSettings(domains=["acme.example"]),
            b=TenantSettings(domains=["ACME.example"]),
        )


def test_sasl_user_claimed_by_two_tenants_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="SASL user 'relay'"):
        _map(
            a=TenantSettings(sasl_users=["relay"]),
            b=TenantSettings(sasl_users=["relay"]),
        )


@pytest.mark.parametrize("pattern", ["", "*", "a.*.example", "user@acme.example"])
def test_malformed_domain_pattern_is_a_config_error(pattern: str) -> None:
    with pytest.raises(ConfigError, match="is not a domain"):
        _map(acme=TenantSettings(domains=[pattern]))


def test_unassigned_is_reserved_as_tenant_name() -> None:
    with pytest.raises(ConfigError, match="reserved"):
        _map(unassigned=TenantSettings(domains=["x.example"]))


def test_names_lists_configured_tenants(tmap: TenantMap) -> None:
    assert tmap.names == ("acme", "globex")


def test_lookup_cache_stays_bounded(tmap: TenantMap) -> None:
    limit = tenants_module._CACHE_LIMIT
    for n in range(limit + 10):
        tmap.for_domain(f"d{n}.example")
    assert tmap.for_domain("acme.example") == "acme"
    assert len(tmap._recipients.cache) <= limit
