"""Council IT's notifications page: pending, failed with the reason, sent; requeue, audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.console.conftest import audit_reasons, post_form, text
from tests.notify.conftest import outbox, send
from tests.notify.fakes import SERVICE_ID

WRONG_KEY = {
    "FW_TEST_NOTIFY_KEY": f"forewarn_test-{SERVICE_ID}-{'0' * 8}-0000-4000-8000-{'0' * 12}"
}


@pytest.fixture
def browser_like(app: Flask) -> Callable[..., FlaskClient]:
    """A client signed in by cookie, as a browser is."""

    def sign_in(role: str, user: str, name: str) -> FlaskClient:
        client = app.test_client()
        reply = client.post("/auth/demo", json={"user": user, "name": name, "roles": [role]})
        assert reply.status_code == 200, reply.get_json()
        return client

    return sign_in


def test_it_sees_each_failed_notification_and_why_then_sends_them_again(
    app: Flask, cases: Any, browser_like: Callable[..., FlaskClient], backend: Any
) -> None:
    cases.propose()
    send(app, environ=WRONG_KEY)
    admin = browser_like("admin", "u.ira", "Ira IT")
    page = text(admin.get("/console/notifications"))
    assert "Waiting to be sent 0 Being retried 0 Failed 3 Sent 0" in page
    failed = page.rpartition("Failed: given up, with the reason")[2]
    assert "A proposed flag awaits your panel decision u.csm" in failed
    assert "GOV.UK Notify answered 403: AuthError: Invalid token: signature" in failed
    assert "Send them again" in page

    reply = post_form(
        admin, "/console/notifications/requeue", {}, token_from="/console/notifications"
    )
    assert reply.status_code == 303 and reply.headers["Location"] == "/console/notifications"
    assert {row.state for row in outbox(app)} == {"retrying"}
    assert audit_reasons(app, "notifications.requeue") == [
        ("u.ira", "allowed", "3 notifications requeued")
    ]
    page = text(admin.get("/console/notifications"))
    assert "3 notifications will be sent again on the worker's next pass." in page
    send(app)
    page = text(admin.get("/console/notifications"))
    assert "Failed 0 Sent 3" in page
    assert "Send them again" not in page


def test_the_page_says_when_notifications_are_off(
    make_settings: Callable[..., Any], browser_like: Any
) -> None:
    from sidecar import create_app

    app = create_app(make_settings())
    client = app.test_client()
    assert (
        client.post(
            "/auth/demo", json={"user": "u.ira", "name": "Ira", "roles": ["admin"]}
        ).status_code
        == 200
    )
    page = text(client.get("/console/notifications"))
    assert "Notifications are off: set notifications.delivery" in page
    app.extensions["forewarn"].database.dispose()
