"""Where delivery events live: one interface, an embedded DuckDB default.

``open_store(settings)`` picks the backend from ``[store]``: DuckDB in the file
``db`` unless ``url`` names ClickHouse (``clickhouse://``, ``clickhouses://``,
``chdb://``; see ``mailtriage.app.store.clickhouse``).
"""

from __future__ import annotations

from mailtriage.app.settings import Settings
from mailtriage.app.store.base import Store


def open_store(
    settings: Settings, *, read_only: bool = False, ingest: bool = False
) -> Store:
    """The store ``settings`` describe, opened and migrated; ``ingest`` sizes it
    for a bulk ingest (``[store] ingest_memory_limit_mb``)."""
    url = settings.store.url
    if url is not None and not url.startswith("duckdb:"):
        # Imported here so that the DuckDB default never loads the ClickHouse client.
        from mailtriage.app.store.clickhouse import ClickHouseStore

        return ClickHouseStore(
            url, retention_days=settings.store.retention_days, read_only=read_only
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
