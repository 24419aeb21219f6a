"""No confidential byte reaches a caller the threat model does not entitle to it, on any route.

Every operation of the OpenAPI document (API and console pages) is called as every role,
with no business need, with a live access grant, with a part in the case and as the flag's
reviewer, against one seeded case holding a unique marker in every confidential field. An
answer (body or headers) may carry only the markers `rules.OPERATIONS` allows that caller,
and must carry those the caller is entitled to. An operation missing from the rules fails
`test_every_operation_is_known`, so a new route cannot leak unnoticed.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text as sql

from tests.disclosure.case import PERSONAS, Case, Persona, markers_in
from tests.disclosure.rules import OPERATIONS, Operation, holds

_PATH_PARAM = re.compile(r"\{(\w+)\}|<[^>]*:(\w+)>")


@pytest.fixture(scope="module")
def document(case: Case) -> dict[tuple[str, str], dict[str, Any]]:
    """The operations of the running app's OpenAPI document."""
    reply = case.app.test_client().get("/api/v1/openapi.json")
    assert reply.status_code == 200
    return {
        (method.upper(), path): operation
        for path, item in reply.get_json()["paths"].items()
        for method, operation in item.items()
    }


def test_every_operation_is_known(document) -> None:
    missing = sorted(set(document) - set(OPERATIONS))
    stale = sorted(set(OPERATIONS) - set(document))
    assert not missing, f"operations the leak test has no rules for: {missing}"
    assert not stale, f"rules for operations that no longer exist: {stale}"


def _call_path(path: str, operation: dict[str, Any], target: dict[str, str], ids: dict) -> str:
    """The path with the case's real ids in its parameters, and the query the target gives."""
    wanted = {a or b for a, b in _PATH_PARAM.findall(path)}
    query = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
    unknown = set(target) - wanted - set(query)
    lacking = (wanted | {n for n, p in query.items() if p["required"]}) - set(target)
    assert not unknown, f"{path}: the rules give {sorted(unknown)}, not parameters of it"
    assert not lacking, f"{path}: no seeded value for parameter(s) {sorted(lacking)}"
    real = {name: ids.get(value, value) for name, value in target.items()}
    filled = _PATH_PARAM.sub(lambda m: real[m.group(1) or m.group(2)], path)
    pairs = [f"{name}={real[name]}" for name in query if name in real]
    return filled + ("?" + "&".join(pairs) if pairs else "")


# What the register holds, as one statement: a write that changes nothing leaves it as it was.
_FINGERPRINT = sql(
    "SELECT "
    + ", ".join(
        f"(SELECT count(*) FROM {table}{where})"
        for table, where in (
            ("subjects", ""),
            ("subject_links", ""),
            ("incidents", ""),
            ("incidents", " WHERE triage IS NOT NULL"),
            ("flags", ""),
            ("flags", " WHERE state = 'active'"),
            ("flag_history", ""),
            ("panel_decisions", ""),
            ("flag_notices", ""),
            ("flag_letters", ""),
            ("flag_appeals", ""),
            ("flag_appeals", " WHERE outcome IS NULL"),
            ("flag_reviews", ""),
            ("flag_incidents", ""),
            ("access_grants", ""),
            ("contact_decisions", ""),
            ("contact_decisions", " WHERE lifted_on IS NOT NULL"),
            ("privacy_alerts", " WHERE closed_at IS NOT NULL"),
        )
    )
)


def _fingerprint(case: Case) -> tuple[int, ...]:
    with case.app.extensions["forewarn"].database.engine.connect() as connection:
        return tuple(connection.execute(_FINGERPRINT).one())


def _check(
    case: Case, key: tuple[str, str], operation: dict[str, Any], persona: Persona
) -> tuple[list[str], bool]:
    """Make the cell's calls; the problems found, and whether the caller may see any marker."""
    method, path = key
    rules: Operation = OPERATIONS[key]
    action = operation.get("x-forewarn-action")
    writes = method != "GET"
    may_write = action is None or holds(persona, action)
    watch = writes and not (rules.changes and may_write)
    page = "console" in operation.get("tags", []) and not writes
    problems, entitled = [], False
    for target in rules.targets:
        url = _call_path(path, operation, target, case.ids)
        caller = case.as_persona(persona, fresh=rules.fresh)
        before = _fingerprint(case) if watch else None
        reply = caller.client.open(
            url,
            method=method,
            # Console pages are read as a browser reads them: on the session cookie.
            headers={} if page else caller.headers,
            json=rules.body,
            data=rules.form,
        )
        # A PDF is bytes: read what text it has; the marker check stays the same.
        body = reply.get_data().decode("utf-8", "replace")
        found = set(markers_in(body, str(reply.headers)))
        may, must = rules.shows(persona, target)
        entitled = entitled or bool(must)
        said = f"{method} {url} as {persona.label} answered {reply.status_code}"
        if reply.status_code >= 500:
            problems.append(f"{said}: a failure is never an answer")
        if found - may:
            problems.append(f"{said} with {sorted(found - may)}")
        if must - found:
            problems.append(f"{said} without {sorted(must - found)}, which it must show")
        if before is not None and _fingerprint(case) != before:
            problems.append(f"{said} and changed the register")
    return problems, entitled


def _cells(*, reads: bool) -> list[Any]:
    """One cell per operation and persona: the reads, or the writes."""
    cells = []
    for key in OPERATIONS:
        if (key[0] == "GET") != reads:
            continue
        for persona in PERSONAS:
            cells.append(pytest.param(key, persona, id=f"{' '.join(key)}-{persona.label}"))
    return cells


def _assert_cell(case: Case, document, tally: Counter[str], key, persona: Persona) -> None:
    assert key in document, f"{key} is not in the OpenAPI document"
    problems, entitled = _check(case, key, document[key], persona)
    tally["cells"] += 1
    tally["allowed"] += entitled
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("key", "persona"), _cells(reads=True))
def test_reads(case, document, tally, key, persona) -> None:
    _assert_cell(case, document, tally, key, persona)


@pytest.mark.parametrize(("key", "persona"), _cells(reads=False))
def test_writes(case, document, tally, key, persona) -> None:
    _assert_cell(case, document, tally, key, persona)


# Writes that would widen what their caller reads: each is made by a member of staff of its
# own (no grant, no part in the case), who must read no more of flag A afterwards.
REVIEW = {"outcome": "continue", "notes": "Reviewed without an assignment."}
ATTACKS = (
    pytest.param(
        "customer_support_manager",
        "/reviews",
        REVIEW,
        id="unassigned review by customer_support_manager",
    ),
    pytest.param(
        "senior_manager",
        "/reviews",
        REVIEW,
        id="unassigned review by senior_manager",
    ),
    pytest.param(
        "case_officer",
        "/appeals",
        {"grounds": "Lodged by post.", "handling_manager": "u.leak.attack.case_officer"},
        id="case_officer lodges an appeal naming themselves its handler",
    ),
    pytest.param(
        "customer_support_manager",
        "/review-assignments",
        {"reviewers": ["u.leak.attack.customer_support_manager"]},
        id="customer_support_manager assigns themselves the review",
    ),
)


@pytest.mark.parametrize(("role", "write", "body"), ATTACKS)
def test_writes_open_nothing_to_their_caller(case, tally, role, write, body) -> None:
    caller = case.sign_in(role, f"u.leak.attack.{role}")
    flag = case.ids["A"]
    reads = (f"/api/v1/flags/{flag}/details", f"/api/v1/flags/{flag}")
    shown = [caller.client.get(path, headers=caller.headers) for path in reads]
    tally["cells"] += 1
    assert shown[0].status_code == 403, "the caller starts with no business need"
    reply = caller.client.post(f"/api/v1/flags/{flag}{write}", json=body, headers=caller.headers)
    assert reply.status_code < 500, reply.get_json()
    after = [caller.client.get(path, headers=caller.headers) for path in reads]
    leaked = sorted(
        set(markers_in(*(r.get_data(as_text=True) for r in after)))
        - set(markers_in(*(r.get_data(as_text=True) for r in shown)))
    )
    assert not leaked, f"after {write} ({reply.status_code}) flag A shows {leaked}"
