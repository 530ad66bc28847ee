"""Fixtures shared by the store and collector tests.

chdb (ClickHouse's engine in-process) opens one engine directory per process and
refuses a second path, so every in-process ClickHouse store of a test run lives in
one session directory, each in a database of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chdb engine directory of this test process."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def new_chdb_url(chdb_dir: Path) -> Callable[[], str]:
    """A function that returns the url of a new, empty chdb database."""
    numbers = itertools.count(1)

    def new() -> str:
        return f"chdb://{chdb_dir}?database=test_{next(numbers)}"

    return new
