"""Delivery through GOV.UK Notify (a wire-level fake) and SMTP (a real relay): what staff
receive, digests, and failures retried and shown, never lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sidecar.audit.models import AuditEntry
from sidecar.notify.outbox import outbox_view, requeue_in
from sidecar.storage.database import utcnow
from tests.notify.conftest import outbox, received, send
from tests.notify.fakes import SERVICE_ID, TEMPLATES

GRANT = {"reason_code": "home_visit", "reason_text": "visit on Monday about the repair"}
LATER = timedelta(days=2)


def _open_details(client, staff, flag_id: str, user: str = "u.vo", name: str = "Val Visitor"):
    visitor = staff("visiting_officer", user=user, name=name)
    reply = client.post(
        "/api/v1/subjects/customer/CRM-2001/access-grants", json=GRANT, headers=visitor
    )
    assert reply.status_code == 201, reply.get_json()
    assert client.get(f"/api/v1/flags/{flag_id}/details", headers=visitor).status_code == 200


def _details_rows(app):
    return [row for row in outbox(app) if row.kind == "details_opened"]


def test_the_responsible_manager_hears_who_opened_the_details_when_and_why(
    app, client, staff, cases, backend
) -> None:
    flag_id = cases.active()
    reference = cases.read(flag_id)["reference"]
    _open_details(client, staff, flag_id)
    report = send(app)
    assert report.delivered >= 1
    [(_to, subject, body)] = [m for m in received(backend) if m[0] == "u.resp@council.example"]
    assert subject == "A flag you manage was opened"
    assert f"Flag {reference}: details opened by Val Visitor on " in body
    assert "for: Planned home visit." in body
    assert "http://127.0.0.1:8000/console/subjects/customer/CRM-2001" in body
    # The grant's reason and the flag's confidential texts stay behind the link.
    assert "visit on Monday" not in body
    assert "walking stick" not in body
    [row] = _details_rows(app)
    assert row.state == "sent" and row.provider_ref


def test_notify_receives_a_jwt_it_verifies_and_the_kinds_template(
    app, client, staff, cases, backend
) -> None:
    flag_id = cases.active()
    _open_details(client, staff, flag_id)
    send(app)
    [request] = [r for r in backend.requests if b"u.resp@council.example" in r.body]
    assert request.path == "/v2/notifications/email"
    body = request.json()
    assert body["template_id"] == TEMPLATES["details_opened"]
    assert set(body["personalisation"]) == {"subject", "body", "link"}
    assert request.status == 201
    assert backend.secrets == {SERVICE_ID: backend.secrets[SERVICE_ID]}


@pytest.mark.parametrize("notification_settings", [{"details_digest": "hourly"}])
def test_an_hourly_digest_sends_one_message_per_hour_for_every_opening(
    app, client, staff, cases, backend
) -> None:
    flag_id = cases.active()
    _open_details(client, staff, flag_id)
    _open_details(client, staff, flag_id, user="u.vo2", name="Viv Visitor")
    send(app)
    assert not [m for m in received(backend) if m[0] == "u.resp@council.example"]
    assert [row.state for row in _details_rows(app)] == ["pending", "pending"]
    send(app, at=utcnow() + timedelta(hours=1, minutes=1))
    [(_, subject, body)] = [m for m in received(backend) if m[0] == "u.resp@council.example"]
    assert subject == "Flags you manage were opened 2 times"
    assert "opened by Val Visitor" in body and "opened by Viv Visitor" in body
    assert [row.state for row in _details_rows(app)] == ["sent", "sent"]


@pytest.mark.parametrize(
    "notification_settings",
    [{"details_digest": "daily", "digest_by_recipient": {"u.resp": "immediately"}}],
)
def test_a_recipients_own_digest_setting_wins_over_the_global_one(
    app, client, staff, cases, backend
) -> None:
    flag_id = cases.active()
    _open_details(client, staff, flag_id)
    send(app)
    assert [m[1] for m in received(backend) if m[0] == "u.resp@council.example"] == [
        "A flag you manage was opened"
    ]


def test_notify_5xx_and_429_are_retried_with_the_reason_shown_until_sent(
    app, client, staff, cases, backend
) -> None:
    flag_id = cases.active()
    send(app)  # the panel's notifications, out of the way
    backend.inject(
        500,
        body={
            "status_code": 500,
            "errors": [{"error": "Exception", "message": "Internal server error"}],
        },
    )
    _open_details(client, staff, flag_id)
    send(app)
    [row] = _details_rows(app)
    assert row.state == "retrying" and row.attempts == 1
    assert row.last_error == "GOV.UK Notify answered 500: Exception: Internal server error"
    backend.inject(
        429,
        body={
            "status_code": 429,
            "errors": [
                {
                    "error": "RateLimitError",
                    "message": "Exceeded rate limit for key type LIVE of 3000 requests per 60 s",
                }
            ],
        },
    )
    send(app, at=utcnow() + LATER)
    [row] = _details_rows(app)
    assert row.state == "retrying" and row.attempts == 2
    assert row.last_error.startswith("GOV.UK Notify answered 429: RateLimitError: Exceeded")
    send(app, at=utcnow() + LATER * 2)
    [row] = _details_rows(app)
    assert row.state == "sent" and row.last_error is None
    assert len([m for m in received(backend) if m[0] == "u.resp@council.example"]) == 1


@pytest.mark.parametrize("notification_settings", [{}])
def test_after_the_last_attempt_a_notification_is_kept_failed_until_requeued(
    app, client, staff, cases, backend, make_settings
) -> None:
    flag_id = cases.active()
    send(app)
    backend.inject(503, times=100)
    _open_details(client, staff, flag_id)
    attempts = app.extensions["forewarn"].settings.sync.max_attempts
    for n in range(attempts):
        send(app, at=utcnow() + LATER * (n + 1))
    [row] = _details_rows(app)
    assert row.state == "dead" and row.attempts == attempts
    with app.extensions["forewarn"].database.transaction() as session:
        view = outbox_view(session)
    assert view.counts["dead"] == 1
    assert "503" in view.rows["dead"][0].last_error
    for fault in backend._faults:
        fault.times = 0
    with app.extensions["forewarn"].database.transaction() as session:
        assert (
            requeue_in(
                session,
                {"actor_id": "cli:ops", "actor_name": "ops", "actor_roles": "cli", "via": "cli"},
            )
            == 1
        )
    send(app)
    [row] = _details_rows(app)
    assert row.state == "sent"
    with app.extensions["forewarn"].database.transaction() as session:
        [entry] = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "notifications.requeue")
        )
    assert entry.outcome_reason == "1 notifications requeued"


def test_a_key_notify_does_not_accept_fails_at_once_and_says_why(
    app, client, staff, cases, backend
) -> None:
    wrong = {
        "FW_TEST_NOTIFY_KEY": f"forewarn_test-{SERVICE_ID}-{'0' * 8}-0000-4000-8000-{'0' * 12}"
    }
    cases.propose()
    send(app, environ=wrong)
    rows = outbox(app)
    assert rows and {row.state for row in rows} == {"dead"}
    assert all(
        "403" in row.last_error and "Invalid token: signature" in row.last_error for row in rows
    )
    assert received(backend) == []


@pytest.mark.parametrize(
    "notification_settings",
    [{"addresses": {"u.resp": "resp.manager@council.example"}, "address_domain": ""}],
)
def test_someone_without_an_address_is_named_as_the_reason_it_failed(
    app, client, staff, cases, backend
) -> None:
    flag_id = cases.active()
    _open_details(client, staff, flag_id)
    send(app)
    assert [m[0] for m in received(backend)] == ["resp.manager@council.example"]
    failed = [row for row in outbox(app) if row.state == "dead"]
    assert failed and all(row.kind == "awaiting_vote" for row in failed)
    assert all("no email address for" in row.last_error for row in failed)


@pytest.mark.parametrize("delivery", ["smtp"], indirect=True)
def test_smtp_delivers_plain_text_mail_to_the_relay(app, client, staff, cases, backend) -> None:
    flag_id = cases.active()
    _open_details(client, staff, flag_id)
    send(app)
    [mail] = [m for m in backend.messages if m["To"] == "u.resp@council.example"]
    assert mail["From"] == "forewarn@council.example"
    assert mail["Subject"] == "A flag you manage was opened"
    assert mail["Message-ID"]
    assert "details opened by Val Visitor" in mail.get_content()


@pytest.mark.parametrize("delivery", ["smtp"], indirect=True)
def test_smtp_refused_connections_are_retried_and_a_refused_mailbox_fails(
    app, client, staff, cases, backend
) -> None:
    flag_id = cases.active()
    send(app)
    backend.down()
    _open_details(client, staff, flag_id)
    send(app)
    [row] = _details_rows(app)
    assert row.state == "retrying"
    assert "SMTP 127.0.0.1" in row.last_error and "refused" in row.last_error.lower()
    backend.up()
    backend.refuse.add("u.resp@council.example")
    send(app, at=utcnow() + LATER)
    [row] = _details_rows(app)
    assert row.state == "dead"
    assert "550" in row.last_error and "mailbox unavailable" in row.last_error
