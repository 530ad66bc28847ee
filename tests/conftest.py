"""Shared test set-up."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture
def corpus_dir() -> Path:
    """The shared corpus of real log lines; tests skip where it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"corpus of real log lines not found at {CORPUS}")
    return CORPUS
