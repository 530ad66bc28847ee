"""The HTTP service: ``create_app`` builds the FastAPI application.

    /healthz /readyz /metrics         operations, no token
    /v1/...                           queries and push, a token when tokens are set

The app owns the live ingest it is given: the lifespan starts it before the first
request and, on shutdown, stops the producers, commits what they accepted and
closes the store it opened.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailtriage.app.api import (
    chat,
    deliveries,
    ingest,
    messages,
    ops,
    rejects,
    stats,
    triage,
    ui,
)
from mailtriage.app.api.auth import TokenBook
from mailtriage.app.api.problems import install_problem_handlers
from mailtriage.app.api.state import ServiceState, authenticate
from mailtriage.app.ingest.live import LiveIngest
from mailtriage.app.ingest.push import PushIntake, RecordSink
from mailtriage.app.metrics import MetricsObserver
from mailtriage.app.settings import Settings
from mailtriage.app.store import Store, open_store

API_DESCRIPTION = """\
Delivery events from Postfix and Dovecot logs: per-recipient deliveries, message
traces, summaries and time series, rejects and unparsed lines.

Send `Authorization: Bearer <token>` on every `/v1` route when the service has
tokens configured. A tenant token sees its own tenant only.

Times are RFC 3339 (`2026-12-03T16:00:00Z`) or relative to now (`-24h`, `-15m`).
Errors are `application/problem+json` (RFC 9457); `parameter` names the bad input.
"""


# Every /v1 router; each route in them depends on ``authenticate``.
V1_MODULES = (deliveries, messages, stats, rejects, ingest, triage, chat)


def create_app(
    settings: Settings,
    store: Store | None = None,
    *,
    live: LiveIngest | None = None,
    metrics: MetricsObserver | None = None,
    records: RecordSink | None = None,
) -> FastAPI:
    """The service application over ``store`` (opened from ``settings`` if None).

    ``live`` is started and stopped with the app; without it ``POST /v1/ingest``
    answers 503 and ``/readyz`` reports no followers.
    """
    state = _state(settings, store, live, metrics, records)
    app = FastAPI(
        title="mailtriage",
        version="1",
        description=API_DESCRIPTION,
        lifespan=_lifespan,
    )
    app.state.service = state
    install_problem_handlers(app)
    app.include_router(ops.router)
    app.include_router(ui.router)
    chat.install(app, settings)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authenticate)])
    for module in V1_MODULES:
        v1.include_router(module.router)
    app.include_router(v1)
    app.add_middleware(AccessLog)
    return app


def _state(
    settings: Settings,
    store: Store | None,
    live: LiveIngest | None,
    metrics: MetricsObserver | None,
    records: RecordSink | None,
) -> ServiceState:
    owns_store = store is None
    if store is None:
        store = open_store(settings)
    intake = None
    if live is not None:
        intake = PushIntake(live.queue, records=records)
    return ServiceState(
        settings=settings,
        store=store,
        tokens=TokenBook(settings.tokens),
        metrics=metrics or MetricsObserver.from_settings(settings),
        live=live,
        intake=intake,
        owns_store=owns_store,
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServiceState = app.state.service
    if state.live is not None:
        await state.live.start()
    logger.info("service started", tokens=state.tokens.enabled)
    try:
        yield
    finally:
        if state.live is not None:
            await state.live.stop()
        if state.owns_store:
            state.store.close()
        logger.info("service stopped")


class AccessLog:
    """One loguru record per request: method, path, status, duration and the
    token's name (never the token, never the query string, which may carry
    addresses)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            _log_request(scope, status, time.perf_counter() - started)


def _log_request(scope: Scope, status: int, seconds: float) -> None:
    state: Any = scope.get("state") or {}
    caller = state.get("caller") if isinstance(state, dict) else None
    client = scope.get("client")
    logger.info(
        "request",
        method=scope.get("method"),
        path=scope.get("path"),
        status=status,
        ms=round(seconds * 1000, 1),
        caller=getattr(caller, "name", None),
        client=client[0] if client else None,
    )


__all__ = ["create_app"]
