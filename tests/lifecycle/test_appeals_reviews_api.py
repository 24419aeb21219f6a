"""Appeals, reviews, incidents, links and the committee summary through HTTP."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text

from sidecar.register import flags, notices
from sidecar.register.case_models import FlagEvent
from sidecar.register.context import ServiceContext
from sidecar.register.models import Subject
from sidecar.register.staff import Person
from sidecar.register.status import banner_flags
from sidecar.storage.database import utcnow
from tests.lifecycle.conftest import PROPOSAL


def _banner(app, ref: str) -> list[dict]:
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        subject = session.scalars(select(Subject).where(Subject.ref == ref)).one()
        return banner_flags(session, state.settings, subject)


def test_pending_appeal_shows_the_handling_manager_on_the_banner(app, cases, client, staff) -> None:
    flag_id = cases.notified()
    response = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer)
    assert response.status_code == 201
    body = response.get_json()
    # By default the panel's Senior Manager handles it (Eastleigh 30).
    assert body["handling_manager"] == {"id": "u.sm", "name": "Sam Senior"}
    assert _banner(app, "CRM-2001")[0]["appeal"] == {
        "pending": True,
        "handling_manager": "Sam Senior",
    }
    second = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer)
    assert second.status_code == 409


def test_appeal_outside_the_window_is_refused_with_the_closing_date(
    app, cases, client, staff
) -> None:
    flag_id = cases.active()
    state = app.extensions["forewarn"]
    long_ago = utcnow() - timedelta(days=30)
    with state.database.transaction() as session:
        csm = Person("u.csm", "Cara Support", ("customer_support_manager",))
        ctx = ServiceContext(session, state.settings, state.keyring, csm).at(long_ago)
        notices.issue_notice(ctx, flag_id, "letter")
    closed = (long_ago.date() + timedelta(days=21)).isoformat()
    response = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer)
    assert response.status_code == 409
    assert response.get_json()["window_closed"] == closed
    assert f"closed on {closed}" in response.get_json()["detail"]
    in_time = client.post(
        f"/api/v1/flags/{flag_id}/appeals",
        json={"received_on": closed, "grounds": "posted in time"},
        headers=staff.officer,
    )
    assert in_time.status_code == 201


def test_only_an_uninvolved_director_decides_and_each_outcome_has_a_letter(
    app, cases, client, staff
) -> None:
    flag_id = cases.active()
    # The director who permits withholding the letter takes part in the case.
    notice = client.post(
        f"/api/v1/flags/{flag_id}/notice",
        json={
            "method": "withheld",
            "legal_guidance_ref": "LEGAL-1",
            "director_permission_by": "u.dir",
            "reason": "Extreme reaction feared.",
        },
        headers=staff.csm,
    )
    assert notice.status_code == 201
    appeal_id = client.post(
        f"/api/v1/flags/{flag_id}/appeals", json={"grounds": "unfair"}, headers=staff.officer
    ).get_json()["id"]
    url = f"/api/v1/flags/{flag_id}/appeals/{appeal_id}/decision"
    decision = {"outcome": "removed", "reasons": "One incident, long ago, not repeated."}
    involved = client.post(url, json=decision, headers=staff.director)
    assert involved.status_code == 403
    assert "withheld permission" in involved.get_json()["detail"]
    # A panel member who also holds the director role is refused too.
    dual = staff("service_director", "hs_manager", user="u.hs")
    assert client.post(url, json=decision, headers=dual).status_code == 403
    # The permission itself is the policy's: a senior manager cannot decide.
    assert client.post(url, json=decision, headers=staff.sm).status_code == 403
    fresh = staff("service_director", user="u.dir2", name="Dora Fresh")
    response = client.post(url, json=decision, headers=fresh)
    assert response.status_code == 200
    assert response.get_json() == {
        "appeal_id": appeal_id,
        "outcome": "removed",
        "flag_state": "removed",
        "letter": 1,
    }
    letter = client.get(f"/api/v1/flags/{flag_id}/letters/1", headers=staff.csm)
    assert "I have removed the marker" in letter.get_data(as_text=True)
    assert "Dora Fresh" in letter.get_data(as_text=True)
    assert _banner(app, "CRM-2001") == []
    assert client.post(url, json=decision, headers=fresh).status_code == 409


def test_varied_appeal_changes_the_terms(app, cases, client, staff) -> None:
    flag_id = cases.notified()
    appeal_id = client.post(
        f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer
    ).get_json()["id"]
    response = client.post(
        f"/api/v1/flags/{flag_id}/appeals/{appeal_id}/decision",
        json={
            "outcome": "varied",
            "reasons": "Amber is enough.",
            "level": "amber",
            "restrictions": ["writing_only"],
        },
        headers=staff("service_director", user="u.dir3"),
    )
    assert response.status_code == 200
    banner = _banner(app, "CRM-2001")[0]
    assert banner["level"] == "amber"
    assert banner["restrictions"] == [{"code": "writing_only", "label": "Writing only"}]
    assert banner["appeal"]["pending"] is False


def test_review_continue_sets_next_date_and_writes_a_letter(cases, client, staff) -> None:
    flag_id = cases.notified()
    cases.assign_review(flag_id, "u.csm")
    url = f"/api/v1/flags/{flag_id}/reviews"
    assert client.post(url, json={"outcome": "continue"}, headers=staff.csm).status_code == 422
    response = client.post(
        url, json={"outcome": "continue", "notes": "Still needed."}, headers=staff.csm
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["letter"] == 2
    assert body["flag_state"] == "active"
    assert cases.read(flag_id)["review_due"] == body["next_review_due"]
    cases.assign_review(flag_id, "u.sm")
    removed = client.post(
        url, json={"outcome": "remove", "notes": "Behaviour changed."}, headers=staff.sm
    )
    assert removed.get_json()["flag_state"] == "removed"
    again = client.post(url, json={"outcome": "continue", "notes": "x"}, headers=staff.sm)
    assert again.status_code == 409
    assert (
        client.post(
            url, json={"outcome": "continue", "notes": "x"}, headers=staff.officer
        ).status_code
        == 403
    )


def test_no_review_letter_when_the_person_was_not_told(cases, client, staff) -> None:
    flag_id = cases.active()
    client.post(
        f"/api/v1/flags/{flag_id}/notice",
        json={
            "method": "withheld",
            "legal_guidance_ref": "L",
            "director_permission_by": "u.dir",
            "reason": "risk",
        },
        headers=staff.csm,
    )
    cases.assign_review(flag_id, "u.csm")
    response = client.post(
        f"/api/v1/flags/{flag_id}/reviews",
        json={"outcome": "continue", "notes": "Still needed."},
        headers=staff.csm,
    )
    assert response.get_json()["letter"] is None


def test_overdue_reviews_are_listed_and_the_flag_stays_on_the_banner(app, client, staff) -> None:
    state = app.extensions["forewarn"]
    old = utcnow() - timedelta(days=400)
    proposer = Person("u.officer", "Olive Officer", ("case_officer",))
    panel = (
        (Person("u.csm", "C", ("customer_support_manager",)), "customer_support_manager"),
        (Person("u.sm", "S", ("senior_manager",)), "senior_manager"),
        (Person("u.hs", "H", ("hs_manager",)), "hs_manager"),
    )
    with state.database.transaction() as session:
        from sidecar.register.rules import FlagTerms

        ctx = ServiceContext(session, state.settings, state.keyring, proposer).at(old)
        flag = flags.propose(
            ctx,
            flags.Proposal(
                kind="customer",
                ref="CRM-2002",
                terms=FlagTerms("amber", ("persistent_complainer",)),
                reason="r",
                control_measures="c",
                responsible_manager="u.sm",
            ),
        )
        for member, role in panel:
            flags.decide_panel(
                ctx.acting_as(member),
                flag.id,
                role,
                "approve",
                flags.Assessment("low", "weekly", "fair", "none"),
            )
        flag_id = flag.id
    due = client.get("/api/v1/reviews/due", headers=staff.csm).get_json()
    assert [(f["id"], f["standing"]) for f in due["flags"]] == [(flag_id, "overdue")]
    assert due["flags"][0]["days_overdue"] > 0
    assert [n["id"] for n in due["notices_overdue"]] == [flag_id]
    assert _banner(app, "CRM-2002")[0]["id"] == flag_id


def test_incident_register_and_triage(client, staff) -> None:
    incident = {
        "subject": {"kind": "customer", "ref": "CRM-3001"},
        "occurred_at": "2025-03-01T10:30:00Z",
        "channel": "phone",
        "behaviour_types": ["aggressive_or_abusive"],
        "narrative": "Swore repeatedly after a warning.",
        "warning_given": True,
    }
    bad = client.post(
        "/api/v1/incidents", json=incident | {"channel": "pigeon"}, headers=staff.officer
    )
    assert bad.status_code == 422
    assert "unknown channel 'pigeon'" in bad.get_json()["detail"]
    missing = {k: v for k, v in incident.items() if k != "warning_given"}
    assert client.post("/api/v1/incidents", json=missing, headers=staff.officer).status_code == 422
    created = client.post("/api/v1/incidents", json=incident, headers=staff.officer)
    assert created.status_code == 201
    incident_id = created.get_json()["id"]
    listed = client.get("/api/v1/incidents?kind=customer&ref=CRM-3001", headers=staff.officer)
    assert listed.headers["Cache-Control"] == "no-store"
    item = listed.get_json()["incidents"][0]
    assert item["reported_by"] == "u.officer"
    assert item["narrative"] == "Swore repeatedly after a warning."
    # A manager with no part in the case and no grant gets the incident, not what happened.
    unopened = client.get("/api/v1/incidents?kind=customer&ref=CRM-3001", headers=staff.sm)
    item = unopened.get_json()["incidents"][0]
    assert (item["confidential_included"], item["narrative"]) == (False, None)
    assert item["behaviour_types"] == ["aggressive_or_abusive"]
    url = f"/api/v1/incidents/{incident_id}/triage"
    partial = {"outcome": "monitor", "considerations": {"channel": "phone only"}}
    assert client.post(url, json=partial, headers=staff.sm).status_code == 422
    full = {
        "outcome": "refer_to_case_review",
        "considerations": {
            "channel": "phone only; polite in writing",
            "circumstances": "bereavement; benefit stopped",
            "known_to_council": True,
            "support_needs": "none known",
        },
    }
    assert client.post(url, json=full, headers=staff.officer).status_code == 403
    assert client.post(url, json=full, headers=staff.sm).status_code == 200
    assert client.post(url, json=full, headers=staff.sm).status_code == 409
    # Triaging it is a part in its case: the manager now reads the considerations.
    listed = client.get("/api/v1/incidents?kind=customer&ref=CRM-3001", headers=staff.sm)
    triage = listed.get_json()["incidents"][0]["triage"]
    assert triage["outcome"] == "refer_to_case_review"
    assert triage["considerations"]["circumstances"] == "bereavement; benefit stopped"
    proposal = PROPOSAL | {
        "subject": {"kind": "customer", "ref": "CRM-3001"},
        "incident_ids": [incident_id],
    }
    assert client.post("/api/v1/flags", json=proposal, headers=staff.officer).status_code == 201
    unknown = proposal | {"incident_ids": ["nope"]}
    response = client.post("/api/v1/flags", json=unknown, headers=staff.officer)
    assert response.status_code == 422
    assert "unknown incident 'nope'" in response.get_json()["detail"]


def test_customer_property_links(app, cases, client, staff) -> None:
    cases.active()
    url = "/api/v1/subjects/customer/CRM-2001/links"
    assert client.post(url, json={"property": "12ab"}, headers=staff.officer).status_code == 422
    response = client.post(url, json={"property": "100023336956"}, headers=staff.officer)
    assert response.status_code == 201
    assert (
        client.post(url, json={"property": "100023336956"}, headers=staff.officer).status_code
        == 409
    )
    assert client.get(url, headers=staff.officer).get_json()["properties"] == ["100023336956"]
    state = app.extensions["forewarn"]
    from sidecar.register.status import crm_status

    with state.database.transaction() as session:
        prop = session.scalars(select(Subject).where(Subject.ref == "100023336956")).one()
        assert crm_status(session, state.settings, prop)["level"] == "red"
    gone = client.delete(f"{url}/100023336956", headers=staff.officer)
    assert gone.status_code == 204
    assert client.delete(f"{url}/100023336956", headers=staff.officer).status_code == 404
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/api/v1/subjects/customer/{ref}/links"]


def test_committee_summary_json_and_html(cases, client, staff) -> None:
    cases.notified()
    rejected = cases.propose(categories=["persistent_complainer"], level="amber")
    cases.decide(rejected, staff.csm, "customer_support_manager", "reject")
    response = client.get("/api/v1/reports/summary?from=2020-01-01", headers=staff.csm)
    assert response.status_code == 200
    report = response.get_json()
    assert report["flags_proposed"]["total"] == 2
    assert report["decisions"]["flags_activated"] == 1
    assert report["decisions"]["panel_rejections"] == 1
    assert report["decisions"]["decision_letters_sent"] == 1
    assert {"code": "red", "label": "Red", "count": 1} in report["active_now"]["by_level"]
    html = client.get("/api/v1/reports/summary?from=2020-01-01&format=html", headers=staff.csm)
    assert html.mimetype == "text/html"
    assert "Physical violence" in html.get_data(as_text=True)
    bad = client.get("/api/v1/reports/summary?from=2025-02-30", headers=staff.csm)
    assert bad.status_code == 422
    assert client.get("/api/v1/reports/summary", headers=staff.agent).status_code == 403


def test_history_cannot_be_changed(app, cases) -> None:
    import pytest

    from sidecar.register.case_models import HistoryIsImmutable

    flag_id = cases.active()
    database = app.extensions["forewarn"].database
    with pytest.raises(HistoryIsImmutable), database.transaction() as session:
        event = session.scalars(select(FlagEvent).where(FlagEvent.flag_id == flag_id)).first()
        event.why = "rewritten"
    for statement in ("UPDATE flag_history SET why = 'x'", "DELETE FROM flag_history"):
        with pytest.raises(Exception, match="append-only"), database.engine.begin() as conn:
            conn.execute(text(statement))
    assert cases.read(flag_id)["history"][0]["why"].startswith("proposed")
