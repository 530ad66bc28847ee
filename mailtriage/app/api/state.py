"""What every route reaches through the request: the service's parts and the caller.

``ServiceState`` is built once by ``create_app`` and hung on ``app.state``; routes
get it and the authenticated ``Caller`` through the dependencies below, never from
module globals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request

from mailtriage.app.api.auth import Caller, TokenBook
from mailtriage.app.ingest.live import LiveIngest
from mailtriage.app.ingest.push import PushIntake
from mailtriage.app.metrics import MetricsObserver
from mailtriage.app.settings import Settings
from mailtriage.app.store import Store


@dataclass(slots=True)
class ServiceState:
    """The parts of a running service."""

    settings: Settings
    store: Store
    tokens: TokenBook
    metrics: MetricsObserver
    live: LiveIngest | None = None
    intake: PushIntake | None = None
    owns_store: bool = False
    started_at: float = field(default_factory=time.time)


def service(request: Request) -> ServiceState:
    """The ``ServiceState`` of the app serving ``request``."""
    state = request.app.state.service
    assert isinstance(state, ServiceState)
    return state


def authenticate(
    request: Request,
    authorization: Annotated[
        str | None,
        Header(
            description="``Bearer <token>``; required when tokens are configured.",
            include_in_schema=False,
        ),
    ] = None,
) -> Caller:
    """The caller of a /v1 route; AuthError (401) without a valid token."""
    caller = service(request).tokens.caller(authorization)
    request.state.caller = caller
    return caller


ServiceDep = Annotated[ServiceState, Depends(service)]
CallerDep = Annotated[Caller, Depends(authenticate)]
