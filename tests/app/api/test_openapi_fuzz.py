"""Property-based run of the whole API from its own OpenAPI document.

schemathesis generates requests for every operation (valid and invalid parameters,
bodies of every documented media type) and sends them over a real socket; no input
may make a 5xx, and every answer must match what the document promises (status,
content type, schema). Examples are bounded to keep the run short.
"""

from __future__ import annotations

import pytest
import schemathesis
from api_served import OPERATOR, Served, bearer
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.schemas import BaseOpenAPISchema

schema = schemathesis.pytest.from_fixture("openapi_schema")


@pytest.fixture(scope="module")
def openapi_schema(served: Served) -> BaseOpenAPISchema:
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=bearer(OPERATOR))
