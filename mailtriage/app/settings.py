"""Settings: one pydantic-settings class, from a TOML file named explicitly and from
``MAILTRIAGE_*`` environment variables (nested with ``__``, e.g.
``MAILTRIAGE_SERVER__PORT=8025``). Nothing is read at import time and no config file
is picked up from the working directory.

Precedence, highest first: explicit arguments (CLI flags), environment, the file,
defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mailtriage.errors import ConfigError


class TenantSettings(BaseModel):
    """What one tenant owns. ``senders`` defaults to ``domains``."""

    domains: list[str] = Field(default_factory=list)
    senders: list[str] | None = None
    sasl_users: list[str] = Field(default_factory=list)


class TokenSettings(BaseModel):
    """An API token, stored as the SHA-256 hex digest of the secret."""

    name: str
    sha256: str
    tenant: str | None = None

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("sha256 must be the 64-character hex digest of the token")
        return value


class StoreSettings(BaseModel):
    """Where events are kept. ``url`` selects ClickHouse; otherwise DuckDB at ``db``."""

    db: Path = Path("mailtriage.duckdb")
    url: str | None = None
    retention_days: int | None = None
    # DuckDB's buffer memory; the process needs about 150 MB more for Python.
    memory_limit_mb: int = 256
    # The same for ``mailtriage ingest``, which only writes: a cache of the file
    # does not help it, and a small one keeps a whole ingest under 300 MB (README,
    # "Benchmarks": without numpy, which pyarrow loads where it is installed).
    ingest_memory_limit_mb: int = 64


class IngestSettings(BaseModel):
    """How logs are read."""

    tz: str = "UTC"
    year: int | None = None
    follow_from_end: bool = False
    follow_poll_seconds: float = 0.5
    batch_lines: int = 20_000
    batch_seconds: float = 1.0
    # ``mailtriage ingest`` commits every this many lines (or batch_seconds). Rows
    # wait for their commit as Arrow columns, a fifth of their size as objects;
    # DuckDB's cost per row falls with the size of a commit.
    file_batch_lines: int = 40_000
    # ... and turns rows into columns every this many lines: the rows held as
    # objects (and a worker's message to the writing process) stay this small.
    file_column_lines: int = 20_000
    queue_max_lines: int = 200_000
    max_open_messages: int = 100_000
    syslog: list[str] = Field(default_factory=list)
    # Files ``mailtriage serve`` follows (``--follow`` adds to them).
    follow: list[Path] = Field(default_factory=list)


class ServerSettings(BaseModel):
    """The HTTP service."""

    host: str = "127.0.0.1"
    port: int = 8025
    json_logs: bool = False
    log_level: str = "INFO"


class MetricsSettings(BaseModel):
    """Prometheus exposition."""

    top_domains: int = 50
    domain_refresh_seconds: float = 300.0


class LLMSettings(BaseModel):
    """An OpenAI-compatible endpoint. ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` are used
    when these are unset."""

    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"
    max_steps: int = 6
    timeout_seconds: float = 60.0
    pseudonymize: bool = False


class Settings(BaseSettings):
    """Every setting of mailtriage, in sections."""

    model_config = SettingsConfigDict(
        env_prefix="MAILTRIAGE_", env_nested_delimiter="__", extra="forbid"
    )

    store: StoreSettings = Field(default_factory=StoreSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    tenants: dict[str, TenantSettings] = Field(default_factory=dict)
    tokens: list[TokenSettings] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No dotenv or secrets directory: only what the caller passes and the
        # environment, so no file is picked up silently.
        return (init_settings, env_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    config: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Settings from the file ``config`` (if given), the environment and
    ``overrides`` (CLI flags, nested dicts by section), in rising precedence."""
    data = _read_toml(config) if config is not None else {}
    env_only = Settings()
    env_set = env_only.model_dump(exclude_unset=True, exclude_defaults=True)
    data = _merge(data, env_set)
    # MAILTRIAGE_DB is the documented short form of MAILTRIAGE_STORE__DB.
    short_db = os.environ.get("MAILTRIAGE_DB")
    if short_db and "MAILTRIAGE_STORE__DB" not in os.environ:
        data = _merge(data, {"store": {"db": short_db}})
    data = _merge(data, overrides or {})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        where = f" in {config}" if config is not None else ""
        raise ConfigError(f"invalid settings{where}: {exc}") from exc
