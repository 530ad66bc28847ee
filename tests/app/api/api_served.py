"""Helpers to run a real service over the bundled sample logs on a loopback socket.

The sample logs (``samples/``, written by real Postfix and Dovecot) are ingested once
per session into a DuckDB file; each test module that needs a server gets its own
copy, served by uvicorn from a thread on a free port, with three tokens: an
operator's and one for each of two tenants.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from mailtriage.app.api.auth import token_digest
from mailtriage.app.commands.serve import build_service
from mailtriage.app.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples"
TENANTS = SAMPLES / "tenants.toml"

OPERATOR = "operator-secret-token"
ACME = "acme-secret-token"
GLOBEX = "globex-secret-token"
TOKENS = [
    {"name": "ops", "sha256": token_digest(OPERATOR)},
    {"name": "acme-readonly", "sha256": token_digest(ACME), "tenant": "acme"},
    {"name": "globex-readonly", "sha256": token_digest(GLOBEX), "tenant": "globex"},
]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def service_settings(db: Path, **sections: dict[str, object]) -> Settings:
    """Settings for a test service over ``db`` with the three tokens."""
    overrides: dict[str, object] = {"store": {"db": str(db)}, "tokens": TOKENS}
    overrides.update(sections)
    return load_settings(TENANTS, overrides)


@dataclass(slots=True)
class Served:
    """A running service: its base URL and settings."""

    url: str
    settings: Settings
    app: FastAPI

    def client(self, token: str | None = OPERATOR) -> httpx.Client:
        """An HTTP client for the service, with ``token`` (None: without)."""
        headers = bearer(token) if token else {}
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
