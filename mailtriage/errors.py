"""mailtriage's exceptions: one tree, one root.

    MailtriageError
    ├── ConfigError          a setting or the config file is wrong
    ├── InputError           a log source cannot be read
    ├── StoreError           the store failed (translated from the engine's own errors)
    │   └── SchemaError      the database was written by a newer mailtriage
    ├── QueryError           a query parameter is invalid (HTTP 400/422)
    ├── AuthError            no or an unknown token (HTTP 401)
    │   └── ForbiddenError   the token may not see what was asked (HTTP 403)
    ├── NotFoundError        what was asked for does not exist (HTTP 404)
    ├── BusyError            ingest is behind; retry later (HTTP 429)
    └── LLMError             the LLM endpoint failed or is not configured

Foreign exceptions (duckdb, openai, OS) are translated once, where they are raised
into mailtriage code, and HTTP mapping happens once, in the API's exception handlers.
"""

from __future__ import annotations


class MailtriageError(Exception):
    """The root of every error mailtriage raises on purpose."""


class ConfigError(MailtriageError):
    """A setting or the config file is wrong; the message names it."""


class InputError(MailtriageError):
    """A log source cannot be read."""


class StoreError(MailtriageError):
    """The store could not do what was asked."""


class SchemaError(StoreError):
    """The database schema is newer than this mailtriage understands."""


class QueryError(MailtriageError):
    """A query parameter is invalid; the message names the parameter."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class AuthError(MailtriageError):
    """No token, or a token that matches none configured."""


class ForbiddenError(AuthError):
    """The token is valid but may not see what was asked."""


class NotFoundError(MailtriageError):
    """The message, conversation or resource does not exist (for this caller)."""


class BusyError(MailtriageError):
    """Ingest is behind and a bounded queue is full."""

    def __init__(self, message: str, *, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class LLMError(MailtriageError):
    """The LLM endpoint is not configured, failed or timed out."""
