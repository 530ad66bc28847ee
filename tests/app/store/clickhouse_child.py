"""A child process for the ClickHouse crash tests (chdb allows one engine directory
per process, so a store on another directory lives in a process of its own).

    python clickhouse_child.py ingest URL CONFIG LOG [--die-at N]
    python clickhouse_child.py totals URL

``ingest`` prints ``committed N`` after each commit; with ``--die-at N`` the process
kills itself with SIGKILL during the Nth write, after the batch's rows are in their
tables and before its commit. ``totals`` prints the answers a crash must not change,
as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store.base import Checkpoint, Scope
from mailtriage.app.store.clickhouse import ClickHouseStore
from mailtriage.app.store.columns import ColumnBatch


class ReportingStore(ClickHouseStore):
    """Says when each batch is committed, and can die in the middle of one."""

    die_at: int | None = None
    writes = 0

    def _commit(
        self,
        cols: ColumnBatch,
        checkpoints: Sequence[Checkpoint],
        state: bytes | None,
        stream: str,
        seq: int,
    ) -> None:
        self.writes += 1
        if self.writes == self.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        super()._commit(cols, checkpoints, state, stream, seq)
        print(f"committed {self.writes}", flush=True)


def totals(url: str) -> dict[str, Any]:
    with ClickHouseStore(url) as store:
        return {
            "summary": store.summary(Scope(), ["tenant"]).model_dump(),
            "traffic": store.traffic(Scope()).model_dump(),
            "unparsed": store.unparsed(Scope(), 100).model_dump(),
            "range": store.data_range(Scope()).model_dump(),
            "rejects": store.reject_counts(Scope()),
        }


def main(argv: list[str]) -> int:
    if argv[0] == "totals":
        print(json.dumps(totals(argv[1])))
        return 0
    url, config, log = argv[1:4]
    settings = load_settings(
        Path(config), {"ingest": {"year": 2026, "file_batch_lines": 2000}}
    )
    store = ReportingStore(url)
    if "--die-at" in argv:
        store.die_at = int(argv[argv.index("--die-at") + 1])
    with store:
        ingest_files(store, settings, [log])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
