"""Where delivery events live: one interface, an embedded DuckDB default.

``open_store(settings)`` picks the backend from ``[store]``: DuckDB in the file
``db`` unless ``url`` names another engine.
"""

from __future__ import annotations

from mailtriage.app.settings import Settings
from mailtriage.app.store.base import Store
from mailtriage.errors import ConfigError


def open_store(
    settings: Settings, *, read_only: bool = False, ingest: bool = False
) -> Store:
    """The store ``settings`` describe, opened and migrated; ``ingest`` sizes it
    for a bulk ingest (``[store] ingest_memory_limit_mb``)."""
    url = settings.store.url
    if url is not None and not url.startswith("duckdb:"):
        raise ConfigError(
            f"[store] url {url!r}: only the embedded DuckDB store is available in "
            "this version; remove url and set db instead"
        )
    from mailtriage.app.store.duckdb import DuckDBStore

    path = url.removeprefix("duckdb://").removeprefix("duckdb:") if url else None
    return DuckDBStore(
        path or settings.store.db,
        memory_limit_mb=(
            settings.store.ingest_memory_limit_mb
            if ingest
            else settings.store.memory_limit_mb
        ),
        read_only=read_only,
    )


__all__ = ["Store", "open_store"]
