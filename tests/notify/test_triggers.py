"""Who is told of what: panel members of a proposal, the handler of an appeal and the
directors who may decide it, readers of privacy alerts, and the Customer Support Managers of
reviews and appeal windows, once each."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sidecar.notify.outbox import scan
from sidecar.storage.database import utcnow
from tests.notify.conftest import assign, lodge, outbox, received, send, sender, told_of


def test_each_panel_member_hears_of_a_proposal_awaiting_their_decision(
    app, client, staff, cases, backend
) -> None:
    flag_id = cases.propose()
    # The directory's holders of the three panel roles; the proposer is not told.
    assert told_of(app, "awaiting_vote") == ["u.csm", "u.hs", "u.sm"]
    send(app)
    reference = cases.read(flag_id)["reference"]
    mail = {to: (subject, body) for to, subject, body in received(backend)}
    subject, body = mail["u.hs@council.example"]
    assert subject == "A proposed flag awaits your panel decision"
    assert f"Flag {reference} was proposed on " in body
    assert "awaits the panel's Health and Safety Manager." in body
    assert f"/console/flags/{flag_id}/panel" in body
    assert "u.officer@council.example" not in mail


def test_the_senior_manager_an_appeal_is_assigned_to_hears_of_it(
    app, client, staff, cases, backend
) -> None:
    flag_id = cases.notified()
    appeal_id = lodge(client, staff, flag_id)
    assert told_of(app, "appeal_assigned") == ["u.sm"]
    other = staff("senior_manager", user="u.sm2", name="Sue Second")
    assert other
    assign(client, staff, flag_id, appeal_id, "u.sm2")
    assert told_of(app, "appeal_assigned") == ["u.sm", "u.sm2"]
    send(app)
    [(subject, body)] = [
        (s, b) for to, s, b in received(backend) if to == "u.sm2@council.example" and "appeal" in s
    ]
    assert subject == "An appeal was assigned to you"
    assert "was assigned to you to handle" in body
    assert "GRDMARK" not in body


def test_each_director_who_may_decide_an_appeal_hears_of_it_but_not_one_with_a_part_in_the_case(
    app, client, staff, cases, backend
) -> None:
    staff("service_director", user="u.dir.resp", name="Rory Responsible")
    flag_id = cases.notified(responsible_manager="u.dir.resp")
    appeal_id = lodge(client, staff, flag_id)
    # u.dir took no part; u.dir.resp is the flag's responsible manager, so could not decide it.
    assert told_of(app, "appeal_to_decide") == ["u.dir"]
    assign(client, staff, flag_id, appeal_id, "u.sm")
    assert told_of(app, "appeal_to_decide") == ["u.dir"]
    send(app)
    [(subject, body)] = [
        (s, b) for to, s, b in received(backend) if to == "u.dir@council.example" and "appeal" in s
    ]
    assert subject == "An appeal awaits a decision"
    reference = cases.read(flag_id)["reference"]
    assert f"An appeal against flag {reference}, received on " in body
    assert "awaits a decision by a Service Director with no part in the case." in body
    assert "/console/appeals" in body
    assert "GRDMARK" not in body
    assert not [m for m in received(backend) if m[0] == "u.dir.resp@council.example"]


def test_whoever_reads_privacy_alerts_hears_of_each_one_without_its_detail(
    app, client, staff, cases, backend
) -> None:
    staff("auditor", user="u.aud", name="Ava Auditor")
    staff("privacy_officer", user="u.dpo", name="Dee Privacy")
    visitor = staff("visiting_officer", user="u.vo", name="Val Visitor")
    grant = {"reason_code": "other", "reason_text": "OTHERMARK checking on a neighbour"}
    reply = client.post(
        "/api/v1/subjects/customer/CRM-2001/access-grants", json=grant, headers=visitor
    )
    assert reply.status_code == 201
    assert sorted(told_of(app, "privacy_alert")) == ["u.aud", "u.dpo"]
    send(app)
    told = [m for m in received(backend) if m[1] == "A privacy alert was raised"]
    assert sorted(to for to, _subject, _body in told) == [
        "u.aud@council.example",
        "u.dpo@council.example",
    ]
    [body] = {body for _to, _subject, body in told}
    assert "an access grant giving the reason 'other'." in body
    assert "/console/privacy-alerts/" in body
    assert "OTHERMARK" not in body and "neighbour" not in body


def test_reviews_coming_due_are_told_once_each_to_the_customer_support_managers(app, cases) -> None:
    flag_id = cases.active()
    due = date.fromisoformat(cases.read(flag_id)["review_due"])
    database, settings = app.extensions["forewarn"].database, app.extensions["forewarn"].settings
    lead = settings.notifications.review_due_lead_days
    assert scan(database, settings, due - timedelta(days=lead + 1)).reviews == 0
    assert scan(database, settings, due - timedelta(days=lead)).reviews == 1
    assert scan(database, settings, due - timedelta(days=lead)).reviews == 0
    assert scan(database, settings, due + timedelta(days=3)).reviews == 0
    [row] = [row for row in outbox(app) if row.kind == "review_due"]
    assert row.recipient == "u.csm" and row.facts["due"] == due.isoformat()
    assert row.link == "/console/reviews"


def test_appeal_windows_closing_are_told_once_and_not_once_an_appeal_is_lodged(
    app, client, staff, cases
) -> None:
    told = cases.notified()
    appealed = cases.notified(subject={"kind": "customer", "ref": "CRM-2002"})
    assert (
        client.post(f"/api/v1/flags/{appealed}/appeals", json={}, headers=staff.officer).status_code
        == 201
    )
    database, settings = app.extensions["forewarn"].database, app.extensions["forewarn"].settings
    closes = utcnow().date() + timedelta(days=settings.policy.appeal_window_days)
    lead = settings.notifications.appeal_window_lead_days
    assert scan(database, settings, closes - timedelta(days=lead + 1)).windows == 0
    assert scan(database, settings, closes - timedelta(days=lead)).windows == 1
    assert scan(database, settings, closes).windows == 0
    [row] = [row for row in outbox(app) if row.kind == "appeal_window"]
    assert row.facts["closes"] == closes.isoformat()
    assert row.recipient == "u.csm"
    assert cases.read(told)["reference"] == row.facts["flag_ref"]


def test_the_worker_pass_scans_for_time_based_events_and_sends_them(app, cases, backend) -> None:
    flag_id = cases.active()
    due = date.fromisoformat(cases.read(flag_id)["review_due"])
    worker = sender(app, at=datetime.combine(due, time(9), tzinfo=UTC) - timedelta(days=7))
    report = worker.run_once()
    assert report.connector == "notifications" and report.delivered >= 1
    [(to, _subject, body)] = [
        m for m in received(backend) if m[1] == "A flag's review is coming due"
    ]
    assert to == "u.csm@council.example"
    assert f"is due for review on {due.day} {due:%B %Y}." in body
    # The next pass scans again only after notifications.scan_minutes: nothing new either way.
    assert worker.run_once().claimed == 0
