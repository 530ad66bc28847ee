"""Operational routes outside /v1: liveness, readiness and Prometheus metrics.

They need no token: orchestrators and Prometheus call them. ``/metrics`` carries
tenant names as label values, so where that matters it is kept off the public
network like the rest of the port.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mailtriage.app.api.state import ServiceDep, ServiceState
from mailtriage.app.ingest.follow import Follower, FollowerStatus

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """The process answers."""

    status: str = Field(examples=["ok"])


class FollowerReport(BaseModel):
    """One followed file."""

    path: str
    running: bool
    offset: int = Field(description="Byte offset read so far in the current file.")
    behind_bytes: int = Field(description="Bytes written but not read yet.")
    restarts: int
    error: str | None


class Readiness(BaseModel):
    """Whether the service can answer queries and keeps up with its logs."""

    ready: bool
    store: str = Field(examples=["ok"])
    lag_seconds: float = Field(
        description="How long the oldest accepted, uncommitted line has waited."
    )
    queued_lines: int
    lines_committed: int
    followers: list[FollowerReport]
    listeners: list[str]
    problems: list[str] = Field(examples=[[]])


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    """The process is up and serving HTTP."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
def readyz(state: ServiceDep) -> JSONResponse:
    """Store open, followers and listeners running, and the ingest lag."""
    report = _readiness(state)
    return JSONResponse(report.model_dump(), status_code=200 if report.ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Exposition"}},
)
def metrics(request: Request, state: ServiceDep) -> Response:
    """The Prometheus exposition (OpenMetrics when asked for in ``Accept``)."""
    if state.live is not None:
        state.metrics.set_lag(state.live.writer.lag_seconds())
    body, content_type = state.metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)


def _readiness(state: ServiceState) -> Readiness:
    problems: list[str] = []
    store = _store_state(state)
    if store != "ok":
        problems.append(f"store: {store}")
    live = state.live
    followers: list[FollowerReport] = []
    if live is not None:
        problems += live.problems()
        followers = [
            _follower_report(f.status())
            for f in live.followers
            if isinstance(f, Follower)
        ]
    return Readiness(
        ready=not problems,
        store=store,
        lag_seconds=round(live.writer.lag_seconds(), 3) if live else 0.0,
        queued_lines=live.queue.pending_lines if live else 0,
        lines_committed=live.writer.lines_committed if live else 0,
        followers=followers,
        listeners=[x.name for x in live.listeners] if live else [],
        problems=problems,
    )


def _store_state(state: ServiceState) -> str:
    try:
        state.store.ping()
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"
    return "ok"


def _follower_report(status: FollowerStatus) -> FollowerReport:
    return FollowerReport(
        path=status.path,
        running=status.running,
        offset=status.offset,
        behind_bytes=status.behind_bytes,
        restarts=status.restarts,
        error=status.error,
    )
