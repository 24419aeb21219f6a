"""Who handles an appeal: a real Senior Manager, assigned by the Customer Support Manager."""

from __future__ import annotations

from sqlalchemy import select

from sidecar.register.models import Subject
from sidecar.register.status import banner_flags
from tests import factories


def _banner_appeal(app, ref: str = "CRM-2001") -> dict:
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        subject = session.scalars(select(Subject).where(Subject.ref == ref)).one()
        return banner_flags(session, state.settings, subject)[0]["appeal"]


def _history(cases, flag_id: str, action: str) -> list[dict]:
    return [e for e in cases.read(flag_id)["history"] if e["action"] == action]


def test_a_lodger_cannot_name_themselves_handling_manager_to_open_the_details(
    app, cases, client, staff
) -> None:
    flag_id = cases.notified()
    lodger = staff("case_officer", user="u.lodger", name="Lou Lodger")
    details = f"/api/v1/flags/{flag_id}/details"
    assert client.get(details, headers=lodger).status_code == 403
    response = client.post(
        f"/api/v1/flags/{flag_id}/appeals",
        json={"grounds": "unfair", "handling_manager": "u.lodger"},
        headers=lodger,
    )
    assert response.status_code == 403
    assert "appeal.assign" in response.get_json()["detail"]
    assert client.get(details, headers=lodger).status_code == 403
    assert _banner_appeal(app) == {"pending": False, "handling_manager": None}
    # The name a lodger might give is not a field at all: the directory names the manager.
    named = client.post(
        f"/api/v1/flags/{flag_id}/appeals",
        json={"handling_manager_name": "Lou Lodger"},
        headers=lodger,
    )
    assert named.status_code == 422


def test_the_customer_support_manager_assigns_only_a_real_senior_manager(
    app, cases, client, staff
) -> None:
    flag_id = cases.notified()
    staff("senior_manager", user="u.sm2", name="Sid Second")
    url = f"/api/v1/flags/{flag_id}/appeals"
    for who, why in (
        ("u.officer", "is not a Service Senior Manager (senior_manager)"),
        ("u.nobody", "not in the staff directory"),
        ("u.csm", "cannot be you"),
    ):
        refused = client.post(url, json={"handling_manager": who}, headers=staff.csm)
        assert refused.status_code in (403, 422), (who, refused.get_json())
        assert why in refused.get_json()["detail"], refused.get_json()
        assert refused.get_json()["type"].endswith(("invalid-request", "forbidden"))
    response = client.post(url, json={"handling_manager": "u.sm2"}, headers=staff.csm)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["handling_manager"] == {"id": "u.sm2", "name": "Sid Second"}
    assert _banner_appeal(app) == {"pending": True, "handling_manager": "Sid Second"}
    lodged = _history(cases, flag_id, "appeal_lodged")[0]
    assert lodged["facts"]["handling_manager"] == "u.sm2"
    assert lodged["facts"]["assigned_by"] == "u.csm"


def test_an_appeal_without_a_panel_senior_manager_waits_for_assignment(
    app, cases, client, staff
) -> None:
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        flag = factories.flag(session, state.keyring, factories.subject(session, ref="CRM-2001"))
        factories.notice(session, flag, issued_by="u.csm")
        flag_id = flag.id
    lodged = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer)
    assert lodged.status_code == 201, lodged.get_json()
    appeal = lodged.get_json()
    assert appeal["handling_manager"] is None
    assert _banner_appeal(app) == {"pending": True, "handling_manager": None}

    assign = f"/api/v1/flags/{flag_id}/appeals/{appeal['id']}/handling-manager"
    assert (
        client.post(assign, json={"handling_manager": "u.sm"}, headers=staff.officer).status_code
        == 403
    )
    assert (
        client.post(assign, json={"handling_manager": "u.officer"}, headers=staff.csm).status_code
        == 422
    )
    done = client.post(assign, json={"handling_manager": "u.sm"}, headers=staff.csm)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["handling_manager"] == {"id": "u.sm", "name": "Sam Senior"}
    assert _banner_appeal(app) == {"pending": True, "handling_manager": "Sam Senior"}
    assigned = _history(cases, flag_id, "appeal_assigned")
    assert [(e["actor"]["id"], e["facts"]["handling_manager"]) for e in assigned] == [
        ("u.csm", "u.sm")
    ]
    # Assigned, the Senior Manager takes part in the case and reads its details.
    assert client.get(f"/api/v1/flags/{flag_id}/details", headers=staff.sm).status_code == 200


def test_the_lodger_is_never_the_handling_manager(app, cases, client, staff) -> None:
    flag_id = cases.notified()
    both = staff("customer_support_manager", "senior_manager", user="u.both", name="Bo Both")
    response = client.post(
        f"/api/v1/flags/{flag_id}/appeals", json={"handling_manager": "u.both"}, headers=both
    )
    assert response.status_code == 403
    assert "cannot be you" in response.get_json()["detail"]
    appeal = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=both).get_json()
    assign = f"/api/v1/flags/{flag_id}/appeals/{appeal['id']}/handling-manager"
    reassigned = client.post(assign, json={"handling_manager": "u.both"}, headers=staff.csm)
    assert reassigned.status_code == 422
    assert "lodged the appeal" in reassigned.get_json()["detail"]
