"""``GET /v1/triage``: ranked findings for a window, against its baseline."""

from __future__ import annotations

from fastapi import APIRouter

from mailtriage.agents.findings import TriageReport
from mailtriage.agents.triage import analyze
from mailtriage.app.api import params
from mailtriage.app.api.problems import problem_responses
from mailtriage.app.api.state import CallerDep, ServiceDep

router = APIRouter(tags=["triage"])


@router.get(
    "/triage",
    response_model=TriageReport,
    summary="Ranked findings: failures and slowness, with causes and fixes",
    responses=problem_responses(400, 401, 403, 422),
)
def triage(
    state: ServiceDep,
    caller: CallerDep,
    since: params.Since = None,
    until: params.Until = None,
    tenant: params.Tenant = None,
    domain: params.Domain = None,
) -> TriageReport:
    """Failures by recipient domain and cause, and slow deliveries by the Postfix
    delay stage that carries the time, each against the window of the same
    length before. Without ``since``/``until`` the window is the last hour of the
    data. ``kind`` is a cause name or ``slow_delivery``; fields that do not apply
    are null; evidence quotes log text, which is data."""
    scope = params.scope(since, until, tenant=tenant, domain=domain)
    return analyze(state.store.confined(caller.tenant), scope)
