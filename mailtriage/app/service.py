"""The service behind ``mailtriage serve``: the HTTP API with live ingest, under
uvicorn (the command itself is ``mailtriage.app.commands.serve``).

How the parts are wired (``build_service``)::

    followers ─┐
    syslog   ──┼─► IngestQueue ─► IngestWriter ─► IngestPipeline ─► store
    POST push ─┘                        └─ after each commit: MetricsObserver
    FastAPI app (create_app) ─ queries ─► store.confined(tenant)

uvicorn stops on SIGTERM or SIGINT: the app's lifespan then stops the listeners and
followers, the writer commits everything they had accepted with its checkpoints,
and only then is the store closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from loguru import logger

from mailtriage.app.api.app import create_app
from mailtriage.app.api.auth import TokenBook, check_bind_address
from mailtriage.app.ingest.collect import BatchReceiver
from mailtriage.app.ingest.follow import Follower, StoreFileSources
from mailtriage.app.ingest.live import Chunk, CommitHook, LiveIngest
from mailtriage.app.ingest.pipeline import IngestPipeline
from mailtriage.app.ingest.push import PUSH_SOURCE
from mailtriage.app.ingest.syslog import DropHook, SyslogListener, parse_listen_url
from mailtriage.app.metrics import MetricsObserver
from mailtriage.app.settings import Settings
from mailtriage.app.store import Store, open_store
from mailtriage.parsers.model import Batch

# Seconds uvicorn gives open requests after a stop signal before closing them.
GRACEFUL_SHUTDOWN_SECONDS = 10


@dataclass(slots=True)
class Service:
    """A built service: the app and the store it must close after serving."""

    app: FastAPI
    store: Store
    live: LiveIngest
    metrics: MetricsObserver


def build_service(settings: Settings, store: Store | None = None) -> Service:
    """Open the store and wire pipeline, live ingest, metrics and the app."""
    tokens = TokenBook(settings.tokens)
    check_bind_address(settings.server.host, tokens)
    addresses = [parse_listen_url(url) for url in settings.ingest.syslog]
    store = store if store is not None else open_store(settings)
    try:
        pipeline = IngestPipeline(store, settings)
    except BaseException:
        store.close()
        raise
    labels = [str(p) for p in settings.ingest.follow]
    labels += [f"syslog {a}" for a in addresses] + [PUSH_SOURCE]
    metrics = MetricsObserver.from_settings(settings, sources=labels)
    ingest = settings.ingest
    live = LiveIngest(
        pipeline,
        queue_max_lines=ingest.queue_max_lines,
        batch_lines=ingest.batch_lines,
        batch_seconds=ingest.batch_seconds,
    )
    live.writer.on_commit = _commit_hook(live, metrics)
    sources = StoreFileSources(store)
    for path in dict.fromkeys(settings.ingest.follow):
        live.followers.append(
            Follower(
                path,
                live.queue,
                sources,
                poll_seconds=ingest.follow_poll_seconds,
                from_end=ingest.follow_from_end,
                on_restart=lambda p, _reason: metrics.follower_restarted(p),
            )
        )
    for address in addresses:
        live.listeners.append(
            SyslogListener(
                address, live.queue, on_drop=_drop_counter(metrics, address.transport)
            )
        )
    app = create_app(
        settings, store, live=live, metrics=metrics, records=BatchReceiver(store)
    )
    return Service(app=app, store=store, live=live, metrics=metrics)


def _drop_counter(metrics: MetricsObserver, transport: str) -> DropHook:
    def dropped(_reason: str, count: int) -> None:
        metrics.syslog_dropped(transport, count)

    return dropped


def _commit_hook(live: LiveIngest, metrics: MetricsObserver) -> CommitHook:
    def committed(result: object, seconds: float, chunks: Sequence[Chunk]) -> None:
        if isinstance(result, Batch):
            metrics.observe(result)
        metrics.observe_write_seconds(seconds)
        for label in {c.label for c in chunks if c.label}:
            metrics.observe_source(label)
        metrics.set_lag(live.writer.lag_seconds())

    return committed


def run_service(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then flush and close everything."""
    service = build_service(settings)
    server = settings.server
    if not settings.tokens:
        logger.warning(
            "no tokens configured: every caller is an operator, so only loopback "
            "is served; add [[tokens]] to the config to listen elsewhere",
            host=server.host,
        )
    config = uvicorn.Config(
        service.app,
        host=server.host,
        port=server.port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    logger.info(
        "serving",
        host=server.host,
        port=server.port,
        follow=[str(p) for p in settings.ingest.follow],
        syslog=settings.ingest.syslog,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        service.store.close()
