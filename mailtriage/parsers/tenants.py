"""Who a delivery belongs to: tenants and the domains, senders and SASL users they own.

The ``[tenants.*]`` sections of the config file say what each tenant owns::

    [tenants.acme]
    domains = ["acme.example", "*.acme-corp.example"]
    senders = ["acme.example"]     # optional, defaults to domains
    sasl_users = ["acme-relay"]    # optional

The rule, applied to every delivery attempt:

1. a delivery whose recipient domain a tenant owns belongs to that tenant (local
   mailboxes over LMTP, local or virtual, and relays to the MDA all land here);
2. otherwise the mail leaves for a remote domain, and it belongs to the tenant of
   the SASL user that submitted it, else to the tenant of its sender domain
   (the authenticated account is stronger evidence than the envelope sender, which
   the client chooses freely);
3. else ``unassigned``.

A pattern ``*.example.net`` matches every subdomain at any depth
(``a.example.net``, ``b.a.example.net``) but not ``example.net`` itself, which must
be listed on its own. Exact names win over wildcards, and a longer wildcard over a
shorter one. Domains compare case-insensitively (RFC 5321 section 2.4), SASL user
names too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from mailtriage.app.settings import TenantSettings
from mailtriage.errors import ConfigError

UNASSIGNED: Final = "unassigned"

# A lookup cache per map; cleared when it grows past this many domains so that a
# flood of distinct (often forged) domains cannot grow memory without bound.
_CACHE_LIMIT: Final = 100_000


def domain_of(address: str | None) -> str:
    """The lower-cased domain of an address, or ``""`` when it has none.

    Accepts what Postfix logs between ``<>`` with or without the brackets: the null
    sender ``<>``, a bare local user (``root``), quoted local parts that contain
    ``@`` (``"a@b"@example.com``, RFC 5321 section 4.1.2) and a trailing dot.
    """
    if not address:
        return ""
    if address[0] == "<":
        address = address.strip("<>")
    at = address.rfind("@")
    if at < 0:
        return ""
    domain = address[at + 1 :]
    # An @ inside a quoted local part with no domain after it: '"a@b"'.
    if '"' in domain:
        return ""
    return domain.rstrip(".").lower()


def _normalise_domain(pattern: str, tenant: str) -> str:
    domain = pattern.strip().rstrip(".").lower()
    body = domain[2:] if domain.startswith("*.") else domain
    if not body or "*" in body or "@" in body or " " in body:
        raise ConfigError(
            f"tenant {tenant!r}: {pattern!r} is not a domain or a '*.domain' pattern"
        )
    return domain


class _DomainTable:
    """Exact and wildcard domain patterns to tenants, with a lookup cache."""

    __slots__ = ("_exact", "_wild", "cache")

    def __init__(self) -> None:
        self._exact: dict[str, str] = {}
        self._wild: dict[str, str] = {}
        self.cache: dict[str, str | None] = {}

    def add(self, tenant: str, patterns: Iterable[str], what: str) -> None:
        for pattern in patterns:
            domain = _normalise_domain(pattern, tenant)
            table, name = self._exact, domain
            if domain.startswith("*."):
                table, name = self._wild, domain[2:]
            owner = table.setdefault(name, tenant)
            if owner != tenant:
                raise ConfigError(
                    f"{what} {domain!r} is claimed by tenants {owner!r} and "
                    f"{tenant!r}; give it to one of them"
                )

    def lookup(self, domain: str) -> str | None:
        try:
            return self.cache[domain]
        except KeyError:
            pass
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        owner = self._resolve(domain)
        self.cache[domain] = owner
        return owner

    def _resolve(self, domain: str) -> str | None:
        owner = self._exact.get(domain)
        if owner is not None or not self._wild:
            return owner
        # Walk the parent labels, most specific first: b.a.example -> a.example ->
        # example. The domain itself is not a parent, so '*.x' does not match 'x'.
        dot = domain.find(".")
        while dot >= 0:
            parent = domain[dot + 1 :]
            owner = self._wild.get(parent)
            if owner is not None:
                return owner
            dot = domain.find(".", dot + 1)
        return None


class TenantMap:
    """Tenants and what they own, with the attribution rule of the module docstring."""

    __slots__ = ("_recipients", "_sasl", "_senders", "names")

    def __init__(self) -> None:
        self._recipients = _DomainTable()
        self._senders = _DomainTable()
        self._sasl: dict[str, str] = {}
        self.names: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, tenants: Mapping[str, TenantSettings]) -> TenantMap:
        """Build the map from the ``tenants`` settings section.

        Raises ``ConfigError`` when a pattern is malformed or two tenants claim the
        same domain, sender domain or SASL user.
        """
        tmap = cls()
        for name, owned in tenants.items():
            if name == UNASSIGNED:
                raise ConfigError(f"{UNASSIGNED!r} is reserved; rename that tenant")
            senders = owned.domains if owned.senders is None else owned.senders
            tmap._recipients.add(name, owned.domains, "domain")
            tmap._senders.add(name, senders, "sender domain")
            tmap._add_sasl_users(name, owned.sasl_users)
        tmap.names = tuple(sorted(tenants))
        return tmap

    def _add_sasl_users(self, tenant: str, users: Iterable[str]) -> None:
        for user in users:
            owner = self._sasl.setdefault(user.lower(), tenant)
            if owner != tenant:
                raise ConfigError(
                    f"SASL user {user!r} is claimed by tenants {owner!r} and "
                    f"{tenant!r}; give it to one of them"
                )

    def for_domain(self, domain: str) -> str | None:
        """The tenant that owns ``domain`` as a recipient domain, or None."""
        # The cache hit is inlined: this runs once per delivery line.
        try:
            return self._recipients.cache[domain]
        except KeyError:
            return self._recipients.lookup(domain)

    def for_sender(self, sender_domain: str) -> str | None:
        """The tenant that sends from ``sender_domain``, or None."""
        return self._senders.lookup(sender_domain)

    def for_sasl_user(self, username: str) -> str | None:
        """The tenant of an authenticated SASL user, or None."""
        return self._sasl.get(username.lower())

    def attribute(
        self,
        recipient_domain: str,
        sender_domain: str | None,
        sasl_username: str | None,
    ) -> str:
        """The tenant a delivery belongs to; ``"unassigned"`` when none matches."""
        owner = self.for_domain(recipient_domain)
        if owner is not None:
            return owner
        return self.submitter(sender_domain, sasl_username)

    def submitter(self, sender_domain: str | None, sasl_username: str | None) -> str:
        """The tenant that submitted a message (SASL user, else sender domain)."""
        if sasl_username:
            owner = self._sasl.get(sasl_username.lower())
            if owner is not None:
                return owner
        if sender_domain:
            owner = self._senders.lookup(sender_domain)
            if owner is not None:
                return owner
        return UNASSIGNED
