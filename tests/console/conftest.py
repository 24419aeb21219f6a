"""Console fixtures: staff signed in by session cookie, as a browser is, and page readers."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from sidecar.audit.models import AuditEntry
from tests.lifecycle.conftest import Cases
from tests.lifecycle.conftest import Staff as LifecycleStaff

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(html: str) -> str:
    """The CSRF token a console page's form carries."""
    found = TOKEN.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1) or found.group(2)


def text(response) -> str:
    """A page's text without its tags, for asserting what a person would read."""
    body = re.sub(r"<script.*?</script>", " ", response.get_data(as_text=True), flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def error_summary(response) -> list[str]:
    """The messages of the GOV.UK error summary, in order."""
    html = response.get_data(as_text=True)
    box = re.search(r'class="govuk-error-summary".*?</ul>', html, flags=re.S)
    if box is None:
        return []
    return [
        " ".join(unescape(m).split())
        for m in re.findall(r'<a href="#[^"]*">(.*?)</a>', box.group(0), flags=re.S)
    ]


@pytest.fixture
def staff(app: Flask) -> Callable[..., FlaskClient]:
    """A browser-like client signed in by cookie (POST /auth/demo) with the given roles."""

    def sign_in(*roles: str, user: str | None = None, name: str | None = None) -> FlaskClient:
        client = app.test_client()
        user_id = user or f"u.{roles[0]}"
        reply = client.post(
            "/auth/demo",
            json={"user": user_id, "name": name or user_id.title(), "roles": list(roles)},
        )
        assert reply.status_code == 200, reply.get_json()
        return client

    return sign_in


def post_form(client: FlaskClient, path: str, data: dict, *, token_from: str | None = None):
    """Post a form as a browser does: with the CSRF token of the page that shows it."""
    page = client.get(token_from or path)
    assert page.status_code == 200, page.status_code
    return client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


@pytest.fixture
def cases(client: FlaskClient, auth_headers: Callable[..., dict]) -> Cases:
    """Flags driven to each stage through the API by their own staff (u.officer, u.csm, ...)."""
    return Cases(client, LifecycleStaff(auth_headers))


def count(app: Flask, model: Any, *where: Any) -> int:
    """How many rows of `model` the register holds (matching `where`)."""
    with app.extensions["forewarn"].database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def audit_reasons(app: Flask, action: str) -> list[tuple[str, str, str | None]]:
    """(actor, outcome, reason) of each audit entry for `action`, oldest first."""
    with app.extensions["forewarn"].database.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return [(e.actor_id, e.outcome, e.outcome_reason) for e in session.scalars(query)]
