"""Who is calling: bearer tokens declared by their SHA-256 digests.

``[[tokens]]`` in the config holds ``name``, ``sha256`` (hex digest of the secret) and
optionally ``tenant``. A token without a tenant is an operator's and sees every
tenant; a tenant token is confined to its tenant by the store's scope on every
route. With no tokens configured every caller is an operator, and ``serve`` then
refuses to listen anywhere but loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from mailtriage.app.settings import TokenSettings
from mailtriage.errors import AuthError, ConfigError, ForbiddenError


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller: a token's name and its tenant (None: operator)."""

    name: str
    tenant: str | None

    @property
    def is_operator(self) -> bool:
        """True when the caller may see every tenant."""
        return self.tenant is None

    def confine(self, tenant: str | None) -> str | None:
        """The tenant a query must be scoped to.

        An operator gets what was asked (None: all tenants); a tenant token gets its
        own tenant, and asking for another is a ForbiddenError.
        """
        if self.tenant is None:
            return tenant
        if tenant is not None and tenant != self.tenant:
            raise ForbiddenError(
                f"token {self.name!r} may only see tenant {self.tenant!r}"
            )
        return self.tenant

    def require_operator(self, what: str) -> None:
        """Refuse a tenant token for operator-only resources."""
        if self.tenant is not None:
            raise ForbiddenError(f"{what} is for operator tokens only")


ANONYMOUS_OPERATOR = Caller(name="anonymous", tenant=None)


def token_digest(token: str) -> str:
    """The hex SHA-256 digest a ``[[tokens]]`` entry stores for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    """The configured tokens, looked up by the digest of what a caller sends."""

    def __init__(self, tokens: Sequence[TokenSettings]) -> None:
        self._tokens = list(tokens)

    @property
    def enabled(self) -> bool:
        """True when tokens are configured (every /v1 route then needs one)."""
        return bool(self._tokens)

    def caller(self, authorization: str | None) -> Caller:
        """The caller an ``Authorization`` header names; AuthError if none."""
        if not self._tokens:
            return ANONYMOUS_OPERATOR
        token = _bearer(authorization)
        digest = token_digest(token)
        for entry in self._tokens:
            # Compare every entry in constant time so timing says nothing.
            if hmac.compare_digest(entry.sha256, digest):
                return Caller(name=entry.name, tenant=entry.tenant)
        raise AuthError("the bearer token matches no configured token")


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("this route needs 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    # RFC 6750 section 2.1; the scheme name is case-insensitive (RFC 9110 11.1).
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def caller_of(request: Request) -> Caller:
    """The caller set on the request by the auth dependency."""
    caller = getattr(request.state, "caller", None)
    return caller if isinstance(caller, Caller) else ANONYMOUS_OPERATOR


def check_bind_address(host: str, tokens: TokenBook) -> None:
    """Refuse to listen beyond loopback when no tokens are configured."""
    if tokens.enabled or _is_loopback(host):
        return
    raise ConfigError(
        f"refusing to listen on {host!r} without tokens: add [[tokens]] to the "
        "config file, or listen on 127.0.0.1"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
