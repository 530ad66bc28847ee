"""Property-based run of the whole API from its own OpenAPI document.

schemathesis generates requests for every operation (valid and invalid parameters,
bodies of every documented media type) and sends them over a real socket; no input
may make a 5xx, and every answer must match what the document promises (status,
content type, schema). Examples are bounded to keep the run short.

One check is left out: ``positive_data_acceptance`` expects every value the schema
allows to be accepted, but some validity is beyond a JSON schema (a calendar date,
``until`` after ``since``, a cursor this service issued, an NDJSON body's lines),
and those are answered 400 with a problem naming the parameter, by design.
"""

from __future__ import annotations

import schemathesis
from api_served import OPERATOR, Served, bearer
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

EXAMPLES_PER_OPERATION = 20


def test_no_request_makes_a_server_error_or_breaks_the_document(
    served: Served,
) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers=bearer(OPERATOR), excluded_checks=[positive_data_acceptance]
            )

        run()
