"""Fixtures: the sample logs in a DuckDB file, and a service over a copy of it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_served import SAMPLES, TENANTS, Served, service_settings, serving

from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store import open_store


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file holding the bundled sample logs (read-only for tests)."""
    db = tmp_path_factory.mktemp("sample-db") / "samples.duckdb"
    settings = load_settings(TENANTS, {"store": {"db": str(db)}})
    with open_store(settings) as store:
        ingest_files(
            store,
            settings,
            [str(SAMPLES / "postfix.log"), str(SAMPLES / "dovecot.log")],
        )
    return db


@pytest.fixture(scope="module")
def served(
    sample_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The sample service for one test module, on its own copy of the samples."""
    db = tmp_path_factory.mktemp("served") / "samples.duckdb"
    shutil.copy(sample_db, db)
    with serving(service_settings(db)) as running:
        yield running
