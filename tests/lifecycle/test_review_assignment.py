"""Who reviews a flag: only the reviewers its review assignment names."""

from __future__ import annotations

from sqlalchemy import select

from sidecar.audit.models import AuditEntry
from sidecar.register.case_models import Appeal
from tests import factories

REVIEW = {"outcome": "continue", "notes": "Further incidents since the flag was raised."}


def _assign(client, flag_id: str, headers: dict, *reviewers: str):
    return client.post(
        f"/api/v1/flags/{flag_id}/review-assignments",
        json={"reviewers": list(reviewers)},
        headers=headers,
    )


def _details_status(client, flag_id: str, headers: dict) -> int:
    return client.get(f"/api/v1/flags/{flag_id}/details", headers=headers).status_code


def test_an_unassigned_reviewer_is_refused_and_gains_no_access(app, cases, client, staff) -> None:
    flag_id = cases.notified()
    outsider = staff("senior_manager", user="u.sm.other", name="Oz Other")
    assert _details_status(client, flag_id, outsider) == 403
    refused = client.post(f"/api/v1/flags/{flag_id}/reviews", json=REVIEW, headers=outsider)
    assert refused.status_code == 403
    assert "review assignment" in refused.get_json()["detail"]
    assert _details_status(client, flag_id, outsider) == 403
    assert [r for r in cases.read(flag_id)["reviews"]] == []
    database = app.extensions["forewarn"].database
    with database.transaction() as session:
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "review.record", AuditEntry.outcome == "denied"
            )
        ).all()
    assert [e.actor_id for e in denied] == ["u.sm.other"]


def test_the_customer_support_manager_assigns_reviewers_who_then_review(
    app, cases, client, staff
) -> None:
    flag_id = cases.notified()
    reviewer = staff("senior_manager", user="u.rev", name="Rae Reviewer")
    other = staff("customer_support_manager", user="u.csm2", name="Cy Second")
    assert _details_status(client, flag_id, reviewer) == 403
    assert _assign(client, flag_id, staff.officer, "u.rev").status_code == 403
    for who, why in (
        ("u.officer", "cannot record reviews"),
        ("u.nobody", "not in the staff directory"),
        ("u.csm", "cannot assign yourself"),
    ):
        refused = _assign(client, flag_id, staff.csm, who)
        assert refused.status_code in (403, 422), refused.get_json()
        assert why in refused.get_json()["detail"], refused.get_json()
    assigned = _assign(client, flag_id, staff.csm, "u.rev", "u.csm2")
    assert assigned.status_code == 201, assigned.get_json()
    assert [r["id"] for r in assigned.get_json()["reviewers"]] == ["u.rev", "u.csm2"]
    record = cases.read(flag_id)
    assert sorted(r["name"] for r in record["review_assignment"]["reviewers"]) == [
        "Cy Second",
        "Rae Reviewer",
    ]
    history = [e for e in record["history"] if e["action"] == "review_assigned"]
    assert [(e["actor"]["id"], e["facts"]["reviewers"]) for e in history] == [
        ("u.csm", ["u.rev", "u.csm2"])
    ]
    # Named by the assignment, the reviewer takes part in the case; the assigner does not.
    assert _details_status(client, flag_id, reviewer) == 200
    assert (
        client.post(f"/api/v1/flags/{flag_id}/reviews", json=REVIEW, headers=staff.sm).status_code
        == 403
    )
    done = client.post(f"/api/v1/flags/{flag_id}/reviews", json=REVIEW, headers=reviewer)
    assert done.status_code == 201, done.get_json()
    # The assignment is used up by the review: the next review needs a new one.
    assert cases.read(flag_id)["review_assignment"] is None
    again = client.post(f"/api/v1/flags/{flag_id}/reviews", json=REVIEW, headers=other)
    assert again.status_code == 403
    # Having reviewed under an assignment, the reviewer stays part of the case.
    assert _details_status(client, flag_id, reviewer) == 200


def test_a_new_assignment_replaces_the_open_one(cases, client, staff) -> None:
    flag_id = cases.notified()
    first = staff("senior_manager", user="u.first", name="Fay First")
    staff("senior_manager", user="u.second", name="Sol Second")
    assert _assign(client, flag_id, staff.csm, "u.first").status_code == 201
    assert _details_status(client, flag_id, first) == 200
    assert _assign(client, flag_id, staff.csm, "u.second").status_code == 201
    assert _details_status(client, flag_id, first) == 403
    refused = client.post(f"/api/v1/flags/{flag_id}/reviews", json=REVIEW, headers=first)
    assert refused.status_code == 403


def test_reviews_are_assigned_only_on_active_flags(cases, client, staff) -> None:
    flag_id = cases.propose()
    staff("senior_manager", user="u.rev", name="Rae Reviewer")
    assert _assign(client, flag_id, staff.csm, "u.rev").status_code == 409
    empty = _assign(client, cases.notified(), staff.csm)
    assert empty.status_code == 422


def test_a_review_recorded_without_an_assignment_opens_nothing_but_still_involves(
    app, client, staff
) -> None:
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        flag = factories.flag(session, state.keyring, factories.subject(session, ref="CRM-2001"))
        factories.notice(session, flag, issued_by="u.csm")
        factories.review(session, flag, "u.old", assigned=False)
        factories.appeal(session, flag)
        flag_id = flag.id
    old = staff("senior_manager", "service_director", user="u.old", name="Old Reviewer")
    assert _details_status(client, flag_id, old) == 403
    with state.database.transaction() as session:
        appeal_id = session.scalars(select(Appeal.id).where(Appeal.flag_id == flag_id)).one()
    decided = client.post(
        f"/api/v1/flags/{flag_id}/appeals/{appeal_id}/decision",
        json={"outcome": "upheld", "reasons": "Stands."},
        headers=old,
    )
    assert decided.status_code == 403
    assert "unassigned reviewer" in decided.get_json()["detail"]
