"""Helpers for the service's tests: a running service, a generated log, totals.

``serving`` runs ``mailtriage serve``'s application under uvicorn on a loopback
socket from a thread; ``generate_log`` writes a Postfix/Dovecot log with
``bench/generate.py`` (and its tenants file beside it); ``fingerprint`` gives the
totals a user sees, so that a live ingest (followed, restarted, killed) can be
compared with one clean ingest.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.service import build_service
from mailtriage.app.settings import Settings, load_settings
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


@dataclass(slots=True)
class Served:
    """A running service: its base URL and settings."""

    url: str
    settings: Settings
    app: FastAPI

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the service, with ``token`` as bearer if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(settings: Settings) -> Iterator[Served]:
    """``build_service(settings)`` under uvicorn on a loopback socket, stopped
    (and its store closed) at the end."""
    service = build_service(settings)
    sock = _free_socket()
    config = uvicorn.Config(
        service.app, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            assert time.monotonic() < deadline, "the server did not start in time"
            time.sleep(0.02)
        host, port = sock.getsockname()[:2]
        yield Served(f"http://{host}:{port}", settings, service.app)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        service.store.close()
