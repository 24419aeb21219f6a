"""Council IT ends a leaver's sign-in sessions from the console, as `forewarn sessions end`."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sidecar.audit.models import AuditEntry
from tests.console.conftest import error_summary, post_form, text


def test_it_ends_a_leavers_sessions_and_their_cookie_stops_working(app, staff) -> None:
    leaver = staff("case_officer", user="u.leaver", name="Lee Leaver")
    other = staff("case_officer", user="u.stays")
    admin = staff("admin", user="u.it")
    assert leaver.get("/auth/session").status_code == 200
    page = text(admin.get("/console/sessions?user=u.leaver"))
    assert "u.leaver: 1 session running" in page
    reply = post_form(
        admin,
        "/console/sessions/end",
        {"user": "u.leaver", "reason": "Left the council on Friday."},
        token_from="/console/sessions?user=u.leaver",
    )
    assert reply.status_code == 303
    assert "1 session of u.leaver ended" in text(admin.get(reply.headers["Location"]))
    # The cookie from before is refused at once; nobody else's is.
    assert leaver.get("/auth/session").status_code == 401
    assert other.get("/auth/session").status_code == 200
    with app.extensions["forewarn"].database.transaction() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "sessions.end"))
        assert (entry.actor_id, entry.outcome_reason) == (
            "u.it",
            "ended 1 sessions of u.leaver: Left the council on Friday.",
        )


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "Say why you are ending their sessions"),
        (
            "Left\x1b[1A on Friday.",
            "Remove the hidden control characters from 'Why are you ending them?'",
        ),
    ],
    ids=["no reason", "control characters"],
)
def test_a_missing_or_unreadable_reason_ends_nothing(app, staff, reason, message) -> None:
    leaver = staff("case_officer", user="u.leaver")
    admin = staff("admin", user="u.it")
    reply = post_form(
        admin,
        "/console/sessions/end",
        {"user": "u.leaver", "reason": reason},
        token_from="/console/sessions?user=u.leaver",
    )
    assert reply.status_code == 422
    assert error_summary(reply) == [message]
    html = reply.get_data(as_text=True)
    assert 'value="u.leaver"' in html
    assert reason in html
    assert leaver.get("/auth/session").status_code == 200
    with app.extensions["forewarn"].database.transaction() as session:
        assert not list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == "sessions.end"))
        )


def test_only_it_may_end_sessions(staff) -> None:
    manager = staff("customer_support_manager")
    assert manager.get("/console/sessions?user=u.leaver").status_code == 403
