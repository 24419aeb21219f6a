"""Every route declares its permission, and the authorization matrix: route x role -> status.

The matrix is the specification of who may call what. A route added without a row here
fails `test_matrix_has_a_row_for_every_route` until someone writes down, for that route,
what each role must get: that review is the point of the test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from sidecar.settings import PERMISSIONS, ROLES
from sidecar.web import endpoints

# Routes that need no sign-in: health, sign-in itself, the API description.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/auth/launch"),
    ("POST", "/auth/logout"),
    ("GET", "/auth/session"),
    ("POST", "/auth/demo"),
    ("GET", "/auth/login"),
    ("GET", "/auth/callback"),
    ("POST", "/auth/salesforce-canvas"),
    ("GET", "/widget/<name>"),
    ("GET", "/embed"),
    ("POST", "/embed"),
    ("GET", "/demo/crm"),
    ("POST", "/demo/launch-token"),
}

# Who holds what: written out here, independent of config, so a config change that widens
# access fails `test_config_grants_exactly_the_matrix_permissions` and is looked at.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "agent": frozenset({"banner.read"}),
    "visiting_officer": frozenset({"banner.read", "details.request", "incident.create"}),
    "case_officer": frozenset(
        {
            "banner.read",
            "details.request",
            "incident.create",
            "incident.read",
            "flag.read",
            "flag.propose",
            "notice.issue",
            "appeal.lodge",
            "report.read",
            "subject.link",
        }
    ),
    "customer_support_manager": frozenset(
        {
            "banner.read",
            "details.request",
            "incident.create",
            "incident.read",
            "incident.triage",
            "flag.read",
            "flag.propose",
            "flag.withdraw",
            "panel.decide",
            "notice.issue",
            "appeal.lodge",
            "review.record",
            "report.read",
            "subject.link",
        }
    ),
    "senior_manager": frozenset(
        {
            "banner.read",
            "details.request",
            "incident.read",
            "incident.triage",
            "flag.read",
            "panel.decide",
            "review.record",
            "report.read",
        }
    ),
    "hs_manager": frozenset(
        {
            "banner.read",
            "details.request",
            "incident.read",
            "flag.read",
            "panel.decide",
            "report.read",
        }
    ),
    "service_director": frozenset(
        {"banner.read", "flag.read", "appeal.decide", "notice.permit_withheld", "report.read"}
    ),
    "legal": frozenset({"banner.read", "flag.read", "report.read"}),
    "auditor": frozenset({"banner.read", "audit.read", "alerts.read", "sar.export", "report.read"}),
    "admin": frozenset({"banner.read", "sync.manage"}),
}

ANONYMOUS = "(not signed in)"


@dataclass(frozen=True)
class Case:
    """One way of calling a route, and the status each caller must get.

    `allowed` is the status for a role holding `action` (for a public route: for everyone);
    roles without it get 403 and anonymous callers 401, unless `anonymous` says otherwise.
    `prepare(app, role)` may create data through the API first and returns the path to
    call (e.g. a flag, and for "with grant" cases an access grant for that role's user).
    """

    path: str
    allowed: int
    action: str | None = None
    label: str = ""
    anonymous: int | None = None
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    denied_roles: frozenset[str] = field(default_factory=frozenset)
    prepare: Callable[[Flask, str], str] | None = None

    def expected(self, role: str) -> int:
        if role == ANONYMOUS:
            if self.anonymous is not None:
                return self.anonymous
            return self.allowed if self.action is None else 401
        if role in self.denied_roles:
            return 403
        if self.action is None or self.action in ROLE_PERMISSIONS[role]:
            return self.allowed
        return 403


MATRIX: dict[tuple[str, str], tuple[Case, ...]] = {
    ("GET", "/healthz"): (Case("/healthz", 200),),
    ("GET", "/readyz"): (Case("/readyz", 200),),
    ("GET", "/metrics"): (Case("/metrics", 200),),
    ("GET", "/api/v1/openapi.json"): (Case("/api/v1/openapi.json", 200),),
    ("POST", "/auth/launch"): (Case("/auth/launch", 401, json={"token": "not-a-jwt"}),),
    ("POST", "/auth/logout"): (Case("/auth/logout", 204),),
    ("GET", "/auth/session"): (Case("/auth/session", 200, anonymous=401),),
    ("POST", "/auth/demo"): (Case("/auth/demo", 200, json={"user": "u.demo", "roles": ["agent"]}),),
    # Single sign-on and Canvas are off in the default config.
    ("GET", "/auth/login"): (Case("/auth/login", 404),),
    ("GET", "/auth/callback"): (Case("/auth/callback", 404),),
    ("POST", "/auth/salesforce-canvas"): (
        Case("/auth/salesforce-canvas", 404, form={"signed_request": "x.y"}),
    ),
    # The lookup: banner for all staff; details only with details.request and a business need.
    ("GET", "/api/v1/subjects/<kind>/<ref>/banner"): (
        Case("/api/v1/subjects/customer/CRM-1/banner", 200, "banner.read"),
    ),
    ("POST", "/api/v1/subjects/<kind>/<ref>/access-grants"): (
        Case(
            "/api/v1/subjects/customer/CRM-1/access-grants",
            201,
            "details.request",
            json={"reason_code": "home_visit", "reason_text": "Home visit about the repair"},
        ),
    ),
    ("GET", "/api/v1/access-reasons"): (Case("/api/v1/access-reasons", 200, "details.request"),),
    ("GET", "/api/v1/flags/<flag_id>/details"): (
        Case("", 403, "details.request", label="without grant", prepare=lambda a, r: _flag(a)),
        Case("", 200, "details.request", label="with grant", prepare=lambda a, r: _flag(a, r)),
    ),
    ("GET", "/api/v1/alerts"): (Case("/api/v1/alerts", 200, "alerts.read"),),
    ("GET", "/widget/<name>"): (Case("/widget/forewarn.js", 200),),
    ("GET", "/embed"): (Case("/embed?kind=customer&ref=CRM-1", 200),),
    ("POST", "/embed"): (Case("/embed?kind=customer&ref=CRM-1", 200, form={"launch_token": "x"}),),
    ("GET", "/demo/crm"): (Case("/demo/crm", 200),),
    ("POST", "/demo/launch-token"): (Case("/demo/launch-token", 200, json={}),),
}


def _flag(app: Flask, role: str | None = None) -> str:
    """An active flag on CRM-1's subject, and for `role` a live grant for its matrix user."""
    from datetime import UTC, datetime, timedelta

    from sidecar.lookup_models import AccessGrant
    from tests.lookup import factories

    state = app.extensions["forewarn"]
    with app.app_context(), state.database.transaction() as session:
        flag = factories.flag(session, state.keyring, factories.subject(session))
        if role is not None:
            session.add(
                AccessGrant(
                    user_id=f"u.m.{role}",
                    subject_kind="customer",
                    subject_ref="CRM-1",
                    reason_code="home_visit",
                    reason_text="Home visit about the repair",
                    expires_at=datetime.now(UTC) + timedelta(hours=1),
                )
            )
    return f"/api/v1/flags/{flag.id}/details"


def declared_routes(app: Flask) -> dict[tuple[str, str], Any]:
    by_endpoint = dict(endpoints(app))
    routes = {}
    for rule in app.url_map.iter_rules():
        spec = by_endpoint.get(rule.endpoint)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes[(method, rule.rule)] = spec
    return routes


def test_every_route_declares_an_action_or_is_explicitly_public(app) -> None:
    problems = []
    for (method, rule), spec in sorted(declared_routes(app).items()):
        if spec is None:
            problems.append(f"{method} {rule}: not declared with sidecar.web.endpoint")
        elif spec.action is None and (method, rule) not in PUBLIC_ROUTES:
            problems.append(f"{method} {rule}: no action and not listed as public")
        elif spec.action is not None and spec.action not in PERMISSIONS:
            problems.append(f"{method} {rule}: action {spec.action!r} is not a permission")
    assert not problems, "\n".join(problems)


def test_matrix_has_a_row_for_every_route(app) -> None:
    present = set(declared_routes(app))
    missing = sorted(present - set(MATRIX))
    stale = sorted(set(MATRIX) - present)
    assert not missing, f"routes without an expected row in MATRIX: {missing}"
    assert not stale, f"MATRIX rows for routes that no longer exist: {stale}"


def test_matrix_actions_match_the_declarations(app) -> None:
    routes = declared_routes(app)
    for key, cases in MATRIX.items():
        if key in routes and routes[key] is not None:
            for case in cases:
                assert case.action == routes[key].action, f"{key} declares {routes[key].action}"


def test_config_grants_exactly_the_matrix_permissions(settings) -> None:
    assert {role: frozenset(p) for role, p in settings.access.roles.items()} == ROLE_PERMISSIONS
    assert set(ROLE_PERMISSIONS) == set(ROLES)


@pytest.mark.parametrize(
    "key", sorted(MATRIX), ids=[f"{method} {rule}" for method, rule in sorted(MATRIX)]
)
def test_authorization_matrix(app, auth_headers, key) -> None:
    method, _ = key
    failures = []
    for case in MATRIX[key]:
        for role in (ANONYMOUS, *ROLES):
            client = app.test_client()
            headers = {} if role == ANONYMOUS else auth_headers(role, user=f"u.m.{role}")
            path = case.prepare(app, role) if case.prepare else case.path
            response = client.open(
                path, method=method, headers=headers, json=case.json, data=case.form
            )
            if response.status_code != case.expected(role):
                failures.append(
                    f"{method} {path} {case.label} as {role}: "
                    f"{response.status_code}, expected {case.expected(role)}"
                )
    assert not failures, "\n".join(failures)
