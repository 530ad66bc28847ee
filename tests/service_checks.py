"""Helpers for the service's tests: a generated log and the totals of a store.

``generate_log`` writes a Postfix/Dovecot log with ``bench/generate.py`` (and its
tenants file beside it); ``fingerprint`` gives the totals a user sees, so that a live
ingest (followed, restarted, killed) can be compared with one clean ingest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store import Store, open_store
from mailtriage.app.store.base import Scope

REPO = Path(__file__).resolve().parent.parent


def generate_log(path: Path, lines: int, seed: int = 11) -> tuple[list[str], Path]:
    """Write a generated log of ``lines`` lines at ``path``; its lines (with their
    newlines) and its tenants file."""
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "generate.py"),
            str(path),
            *("--lines", str(lines), "--seed", str(seed), "--hosts", "2"),
        ],
        check=True,
        capture_output=True,
    )
    return path.read_text().splitlines(keepends=True), Path(f"{path}.tenants.toml")


def fingerprint(store: Store) -> dict[str, Any]:
    """The totals a user sees, to compare two ingests of the same lines."""
    scope = Scope()
    summary = store.summary(scope, ["tenant"])
    unparsed = store.unparsed(scope, 1000)
    return {
        "totals": summary.totals.model_dump(),
        "tenants": [g.model_dump() for g in summary.groups],
        "range": store.data_range(scope).model_dump(),
        "traffic": store.traffic(scope).model_dump(),
        "rejects": store.reject_counts(scope),
        "lines": unparsed.lines,
        "unparsed": unparsed.unparsed,
    }


def clean_fingerprint(lines: list[str], tenants: Path, where: Path) -> dict[str, Any]:
    """The fingerprint of one clean ``ingest_files`` run over ``lines``."""
    log = where / "clean-all.log"
    log.write_text("".join(lines))
    settings = load_settings(tenants, {"store": {"db": str(where / "clean.duckdb")}})
    with open_store(settings) as store:
        ingest_files(store, settings, [str(log)])
        return fingerprint(store)
