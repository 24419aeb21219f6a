"""The retention purge clears every confidential text of an ended case, keeping the decisions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from sidecar.lookup.models import AccessGrant
from sidecar.register import flags
from sidecar.register.case_models import (
    Appeal,
    AppealDecision,
    FlagIncident,
    Letter,
    Notice,
    PanelDecision,
    Review,
)
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag, Incident
from sidecar.register.staff import Person
from sidecar.storage.database import utcnow
from tests.identity.test_routes import INCIDENT
from tests.lifecycle.conftest import marked_case


def _purge_ended_long_ago(app, *flag_ids: str) -> list[str]:
    """Run the purge as it would run once the retention period after the end has passed."""
    state = app.extensions["forewarn"]
    later = utcnow() + timedelta(days=31 * state.settings.policy.retention_months_after_end + 5)
    with state.database.transaction() as session:
        actor = Person("cli", "cli", ("admin",))
        ctx = ServiceContext(session, state.settings, state.keyring, actor).at(later)
        return [flag.id for flag in flags.purge_ended(ctx) if flag.id in flag_ids]


def _sealed_left(session, model, *where) -> list[str]:
    """The encrypted columns still holding something, as table.column."""
    return [
        f"{model.__tablename__}.{column}"
        for row in session.scalars(select(model).where(*where))
        for column in model.__encrypted__
        if getattr(row, column) is not None
    ]


def test_the_purge_clears_every_text_of_the_ended_case_and_keeps_its_decisions(
    app, client, cases, staff
) -> None:
    flag_id = marked_case(client, cases, staff)
    appeal_id = cases.read(flag_id)["appeals"][0]["id"]
    decided = client.post(
        f"/api/v1/flags/{flag_id}/appeals/{appeal_id}/decision",
        json={"outcome": "upheld", "reasons": "APRMARK the assessment stands"},
        headers=staff("service_director", user="u.dir.fresh", name="Dora Fresh"),
    )
    assert decided.status_code == 200, decided.get_json()
    cases.assign_review(flag_id, "u.sm")
    reviewed = client.post(
        f"/api/v1/flags/{flag_id}/reviews",
        json={"outcome": "continue", "notes": "RVWMARK still needed"},
        headers=staff.sm,
    )
    assert reviewed.status_code == 201, reviewed.get_json()
    # A second flag on the same subject goes live; a grant made now serves it too.
    other_flag = cases.active(categories=["persistent_complainer"], level="amber")
    second = staff("visiting_officer", user="u.vo2", name="Vic Second")
    assert (
        client.post(
            "/api/v1/subjects/customer/CRM-2001/access-grants",
            json={"reason_code": "case_work", "reason_text": "GRNMARK-KEEP case work today"},
            headers=second,
        ).status_code
        == 201
    )
    withheld = cases.active(subject={"kind": "customer", "ref": "CRM-2002"})
    staff("service_director", user="u.dir", name="Dee Director")
    assert (
        client.post(
            f"/api/v1/flags/{withheld}/notice",
            json={
                "method": "withheld",
                "legal_guidance_ref": "LG-1",
                "director_permission_by": "u.dir",
                "reason": "WHMARK extreme reaction feared",
            },
            headers=staff.csm,
        ).status_code
        == 201
    )
    for ended in (flag_id, withheld):
        response = client.post(
            f"/api/v1/flags/{ended}/withdraw",
            json={"reason": "WDMARK no longer needed"},
            headers=staff.csm,
        )
        assert response.status_code == 200

    assert sorted(_purge_ended_long_ago(app, flag_id, withheld)) == sorted([flag_id, withheld])

    database = app.extensions["forewarn"].database
    ended = (flag_id, withheld)
    with database.transaction() as session:
        left = [
            *_sealed_left(session, Flag, Flag.id.in_(ended)),
            *_sealed_left(session, PanelDecision, PanelDecision.flag_id.in_(ended)),
            *_sealed_left(session, Notice, Notice.flag_id.in_(ended)),
            *_sealed_left(session, Letter, Letter.flag_id.in_(ended)),
            *_sealed_left(session, Appeal, Appeal.flag_id.in_(ended)),
            *_sealed_left(session, Review, Review.flag_id.in_(ended)),
            *_sealed_left(
                session,
                Incident,
                Incident.id.in_(
                    select(FlagIncident.incident_id).where(FlagIncident.flag_id == flag_id)
                ),
            ),
        ]
        assert left == []
        grants = {
            g.user_id: g.reason_text
            for g in session.scalars(
                select(AccessGrant).where(AccessGrant.subject_ref == "CRM-2001")
            )
        }
        # The decision record stays: who decided what, when.
        votes = session.scalars(select(PanelDecision).where(PanelDecision.flag_id == flag_id))
        assert sorted((v.role, v.decision, v.decided_by) for v in votes) == [
            ("customer_support_manager", "approve", "u.csm"),
            ("hs_manager", "approve", "u.hs"),
            ("senior_manager", "approve", "u.sm"),
        ]
        appeal = session.get(Appeal, appeal_id)
        assert (appeal.outcome, appeal.decided_by) == ("upheld", "u.dir.fresh")
        review = session.scalars(select(Review).where(Review.flag_id == flag_id)).one()
        assert (review.outcome, review.reviewed_by) == ("continue", "u.sm")
        notice = session.scalars(select(Notice).where(Notice.flag_id == withheld)).one()
        assert (notice.method, notice.director_permission_by) == ("withheld", "u.dir")
        incident = session.scalars(
            select(Incident).join(FlagIncident, FlagIncident.incident_id == Incident.id)
        ).one()
        assert (incident.channel, incident.triage) == ("phone", "refer_to_case_review")
    # The grant made for the purged flag alone loses its text; the one that also served the
    # flag still active keeps it.
    assert grants == {"u.vo": "", "u.vo2": "GRNMARK-KEEP case work today"}
    record = cases.read(other_flag)
    assert record["state"] == "active"
    history = [e["action"] for e in cases.read(flag_id)["history"]]
    assert history[0] == "proposed" and history[-2:] == ["withdrawn", "purged"]


def test_an_incident_another_live_flag_relies_on_keeps_its_narrative(
    app, client, cases, staff
) -> None:
    flag_id = marked_case(client, cases, staff)
    incident_id = cases.read(flag_id)["incident_ids"][0]
    other = cases.active(
        categories=["persistent_complainer"], level="amber", incident_ids=[incident_id]
    )
    client.post(f"/api/v1/flags/{flag_id}/withdraw", json={"reason": "no"}, headers=staff.csm)
    assert _purge_ended_long_ago(app, flag_id) == [flag_id]
    with app.extensions["forewarn"].database.transaction() as session:
        incident = session.get(Incident, incident_id)
        assert incident.narrative is not None and incident.triage_notes is not None
    assert cases.read(other)["state"] == "active"


def test_the_purge_clears_each_appeal_decider_s_reasons_and_the_names_of_people_protected(
    app, client, cases, staff
) -> None:
    contractor = {"reporter_kind": "contractor", "reporter_name": "CONMARK Pat Plumber"}
    incident = client.post(
        "/api/v1/incidents", json=INCIDENT | contractor, headers=staff.officer
    ).get_json()["id"]
    flag_id = cases.notified(
        incident_ids=[incident], protects=["contractor"], protected_people="PPLMARK Acme fitters"
    )
    appeal = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer)
    decided = client.post(
        f"/api/v1/flags/{flag_id}/appeals/{appeal.get_json()['id']}/decision",
        json={"outcome": "upheld", "reasons": "ADCMARK the restriction stands"},
        headers=staff("service_director", user="u.dir.fresh", name="Dora Fresh"),
    )
    assert decided.status_code == 200, decided.get_json()
    client.post(f"/api/v1/flags/{flag_id}/withdraw", json={"reason": "no"}, headers=staff.csm)
    assert _purge_ended_long_ago(app, flag_id) == [flag_id]
    with app.extensions["forewarn"].database.transaction() as session:
        assert _sealed_left(session, AppealDecision, AppealDecision.flag_id == flag_id) == []
        assert _sealed_left(session, Flag, Flag.id == flag_id) == []
        assert _sealed_left(session, Incident, Incident.id == incident) == []
        [vote] = session.scalars(select(AppealDecision).where(AppealDecision.flag_id == flag_id))
        assert (vote.role, vote.outcome, vote.decided_by) == (
            "service_director",
            "upheld",
            "u.dir.fresh",
        )
