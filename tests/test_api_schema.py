"""Every operation answers generated requests as the OpenAPI document says it will.

Schemathesis (https://schemathesis.readthedocs.io) draws requests from the document served at
/api/v1/openapi.json, valid ones and ones that break it, sends them to the app in process and
runs all of its checks on each answer: no 500, only declared status codes, content types and
headers, bodies matching their schemas, invalid input refused, valid input accepted,
authentication enforced. Generation is derandomized, so a run is the same every time.
"""

from __future__ import annotations

import inspect

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

EXAMPLES = 4
"""Generated requests per operation and mode: enough to reach every rule, bounded for CI."""

BROAD_ROLES = (
    "case_officer",
    "customer_support_manager",
    "senior_manager",
    "hs_manager",
    "service_director",
    "auditor",
    "admin",
)
"""A sign-in holding most permissions, so generated requests get past the access policy."""

ENDS_THE_SESSION = frozenset({"/auth/logout", "/console/sign-out"})
"""Operations that would end the sign-in the rest of the run relies on."""


BEYOND_THE_DOCUMENT = {
    "POST /api/v1/flags": "the responsible manager must be in the staff directory",
    "POST /api/v1/flags/{flag_id}/appeals": "received_on must not be in the future",
    "POST /api/v1/incidents": "occurred_at must not be in the future",
    "GET /api/v1/reports/summary": "from must not be after to (today when not given)",
    "POST /api/v1/subjects/{kind}/{ref}/decisions": (
        "decided_by must be in the staff directory, and most kinds need the matter"
    ),
    "GET /fhir/r4/Flag": "exactly one of subject:identifier and subject names the subject",
}
"""Operations whose valid requests may still be refused (422) for what no JSON Schema can say:
a date against today, a user id against the directory. Every other check still runs on them."""


def _beyond(operation) -> bool:
    """Whether a request the document allows may still be refused by a rule it cannot state."""
    names = {parameter.name for parameter in operation.path_parameters} | {
        parameter.name for parameter in operation.query
    }
    # A property's ref must be a UPRN, a customer's a CRM reference: one path or query
    # pattern cannot tie the ref to the kind beside it.
    if {"kind", "ref"} <= names:
        return True
    # A console form's fields are HTML form fields the document does not describe.
    if "console" in operation.tags and operation.method.upper() == "POST":
        return True
    return operation.label in BEYOND_THE_DOCUMENT


def _signs_in_first(operation) -> bool:
    """A console page sends anyone not signed in to sign in before it reads any input."""
    return "console" in operation.tags and bool(operation.definition.raw.get("security"))


def _all_checks() -> list:
    load_all_checks()
    return [check for check in CHECKS.get_all() if inspect.isfunction(check)]


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def _generated_requests(operation, mode, headers: dict, checks: list):
    """A Hypothesis test sending generated requests to one operation and checking each answer."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def answer(case) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    return answer


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
def test_every_operation_answers_as_its_document_says(api_schema, auth_headers, signed_in):
    headers = auth_headers(*BROAD_ROLES, user="u.broad") if signed_in else {}
    checks = _all_checks()
    failures: list[str] = []
    tried = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if signed_in and operation.path in ENDS_THE_SESSION:
            continue
        skipped = set()
        if _beyond(operation):
            skipped.add(positive_data_acceptance)
        if not signed_in and _signs_in_first(operation):
            skipped.add(negative_data_rejection)
        used = [check for check in checks if check not in skipped]
        for mode in GenerationMode:
            answer = _generated_requests(operation, mode, headers, used)
            tried += 1
            try:
                answer()
            except Unsatisfiable:
                tried -= 1  # nothing to break in an operation that takes no input
            except (Exception, BaseExceptionGroup) as exc:  # every failure, by operation
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    print(f"{tried} operation x mode runs, {len(failures)} failed")
    assert not failures, "\n\n".join(failures)
