"""Fixtures of the agent tests: the sample logs with an injected reply
(``injected_samples``) in a DuckDB store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from injected_samples import INJECTION, POLICY_TEXT, SAMPLES, TENANTS, settings_for

from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store import open_store
from mailtriage.app.store.base import Store


@pytest.fixture(scope="session")
def agents_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample logs, with the injected reply, ingested into a DuckDB file."""
    where = tmp_path_factory.mktemp("agents-db")
    postfix = where / "postfix.log"
    text = (SAMPLES / "postfix.log").read_text()
    assert POLICY_TEXT in text
    postfix.write_text(text.replace(POLICY_TEXT, f"{POLICY_TEXT}. {INJECTION}"))
    db = where / "samples.duckdb"
    settings = load_settings(TENANTS, {"store": {"db": str(db)}})
    with open_store(settings) as store:
        ingest_files(store, settings, [str(postfix), str(SAMPLES / "dovecot.log")])
    return db


@pytest.fixture(scope="module")
def module_db(agents_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sample store for one test module (chat turns get written)."""
    db = tmp_path_factory.mktemp("agents-module") / "samples.duckdb"
    shutil.copy(agents_db, db)
    return db


@pytest.fixture(scope="module")
def store(module_db: Path) -> Iterator[Store]:
    """The module's store, open for the whole module."""
    with open_store(settings_for(module_db)) as opened:
        yield opened
