"""Withdrawing and expiring flags in the console, and the committee summary by date range."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import update

from sidecar.register.models import Flag
from tests.console.conftest import audit_reasons, error_summary, post_form, text

WITHDRAW = {"reason": "Raised against the wrong customer record."}


def test_a_manager_withdraws_a_flag_from_the_subjects_page(app, cases, staff) -> None:
    flag_id = cases.notified()
    csm = staff("customer_support_manager", user="u.csm2")
    subject = csm.get("/console/subjects/customer/CRM-2001").get_data(as_text=True)
    assert f'href="/console/flags/{flag_id}/withdraw"' in subject
    assert f'href="/console/flags/{flag_id}/review"' in subject
    assert f'href="/console/flags/{flag_id}/appeals/new"' in subject
    assert f'href="/console/flags/{flag_id}/notice"' not in subject  # the person was told
    reply = post_form(csm, f"/console/flags/{flag_id}/withdraw", WITHDRAW)
    assert reply.status_code == 302
    assert reply.headers["Location"] == "/console/subjects/customer/CRM-2001"
    page = text(csm.get(reply.headers["Location"]))
    # The reason is sealed with the flag's confidential details, not shown in its history.
    assert "The flag is withdrawn" in page and WITHDRAW["reason"] not in page
    assert cases.read(flag_id)["state"] == "withdrawn"
    assert "nothing to withdraw" in text(csm.get(f"/console/flags/{flag_id}/withdraw"))


def test_a_withdrawal_without_a_reason_changes_nothing(app, cases, staff) -> None:
    flag_id = cases.active()
    reply = post_form(staff("customer_support_manager"), f"/console/flags/{flag_id}/withdraw", {})
    assert reply.status_code == 422
    assert error_summary(reply) == ["Say why the flag is withdrawn"]
    assert cases.read(flag_id)["state"] == "active"
    assert staff("case_officer").get(f"/console/flags/{flag_id}/withdraw").status_code == 403


def test_flags_past_their_end_date_are_listed_and_expired(app, cases, staff) -> None:
    ended, running = cases.active(), cases.active()
    with app.extensions["forewarn"].database.transaction() as session:
        yesterday = date.today() - timedelta(days=1)
        session.execute(update(Flag).where(Flag.id == ended).values(ends_on=yesterday))
    csm = staff("customer_support_manager", user="u.csm2")
    page = text(csm.get("/console/flags/expiry"))
    assert cases.read(ended)["reference"] in page
    assert cases.read(running)["reference"] not in page
    reply = post_form(csm, "/console/flags/expiry", {})
    assert reply.status_code == 302
    assert "1 flag ended on their end date" in text(csm.get(reply.headers["Location"]))
    assert cases.read(ended)["state"] == "expired"
    assert cases.read(running)["state"] == "active"


def test_the_summary_counts_the_range_and_is_audited_as_the_api(app, cases, client, staff) -> None:
    cases.notified()
    legal = staff("legal", user="u.legal")
    today = date.today()
    page = legal.get("/console/reports/summary")
    assert page.status_code == 200
    shown = text(page)
    assert "Flags proposed: 1" in shown and "Flags active today: 1" in shown
    assert "Panel approvals 3" in shown
    year_ago = today - timedelta(days=365)
    assert f"{year_ago.day} {year_ago:%B %Y} to {today.day} {today:%B %Y}" in shown
    client.get("/api/v1/reports/summary", headers=cases.staff("legal", user="u.legal"))
    reasons = [r for r in audit_reasons(app, "report.read") if r[0] == "u.legal"]
    assert reasons[0] == reasons[1]
    assert reasons[0][2] == f"summary {year_ago.isoformat()} to {today.isoformat()}"


def test_a_range_that_ends_before_it_starts_shows_the_problem_and_no_summary(app, staff) -> None:
    legal = staff("legal", user="u.legal")
    reply = legal.get("/console/reports/summary?start=10&start=4&start=2026&end=1&end=4&end=2026")
    assert reply.status_code == 422
    assert error_summary(reply) == ["The last day must be the same as or after the first day"]
    assert 'value="10"' in reply.get_data(as_text=True)
    assert "Flags proposed" not in text(reply)
    bad = legal.get("/console/reports/summary?start=31&start=2&start=2026&end=&end=&end=")
    assert error_summary(bad) == [
        "The first day must be a real date, for example 1 4 2026",
        "Enter the last day, for example 31 3 2027",
    ]
    assert audit_reasons(app, "report.read") == []
