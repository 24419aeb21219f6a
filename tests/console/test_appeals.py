"""Appeals in the console: lodged, assigned, listed with their windows, decided by an
uninvolved Service Director, each through the appeal services."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from sidecar.register.case_models import Appeal, Letter, Notice
from tests.console.conftest import audit_reasons, count, error_summary, post_form, text

TODAY = date.today()
RECEIVED = {
    "received_on": [str(TODAY.day), str(TODAY.month), str(TODAY.year)],
    "grounds": "The incident has been misreported.",
}
DECISION = {"outcome": "upheld", "reasons": "The panel's assessment stands."}


def _lodged(app, cases, staff) -> tuple[str, str]:
    flag_id = cases.notified()
    reply = post_form(staff("case_officer", user="u.clerk"), _lodge(flag_id), RECEIVED)
    assert reply.status_code == 302, error_summary(reply)
    with app.extensions["forewarn"].database.transaction() as session:
        return flag_id, session.query(Appeal).one().id


def _lodge(flag_id: str) -> str:
    return f"/console/flags/{flag_id}/appeals/new"


def test_an_officer_records_an_appeal_within_its_window(app, cases, staff) -> None:
    flag_id = cases.notified()
    officer = staff("case_officer", user="u.clerk")
    windows = text(officer.get("/console/appeals/windows"))
    closes = TODAY + timedelta(days=21)
    assert f"The appeal window closes {closes.day} {closes:%B %Y}" in windows
    assert "Appeal windows open: 1" in text(officer.get("/"))
    reply = post_form(officer, _lodge(flag_id), RECEIVED)
    assert reply.status_code == 302
    assert "The appeal is recorded" in text(officer.get(reply.headers["Location"]))
    with app.extensions["forewarn"].database.transaction() as session:
        appeal = session.query(Appeal).one()
        assert (appeal.received_on, appeal.lodged_by, appeal.outcome) == (TODAY, "u.clerk", None)
        assert appeal.grounds and "misreported" not in appeal.grounds  # sealed
    assert "Appeal windows open: 0" in text(officer.get("/"))


def test_an_appeal_after_the_window_or_without_grounds_is_refused(app, cases, staff) -> None:
    flag_id = cases.notified()
    with app.extensions["forewarn"].database.transaction() as session:
        session.execute(update(Notice).values(issued_at=datetime.now(UTC) - timedelta(days=30)))
    officer = staff("case_officer")
    late = post_form(officer, _lodge(flag_id), RECEIVED)
    assert late.status_code == 422
    [message] = error_summary(late)
    assert message.startswith("The appeal window closed on")
    assert "misreported" in late.get_data(as_text=True)
    empty = post_form(officer, _lodge(flag_id), {"grounds": "Kept as typed"})
    assert error_summary(empty) == ["Enter the date the appeal arrived, for example 27 3 2026"]
    assert "Kept as typed" in empty.get_data(as_text=True)
    assert count(app, Appeal) == 0


def test_only_the_customer_support_manager_assigns_a_senior_manager(app, cases, staff) -> None:
    flag_id, appeal_id = _lodged(app, cases, staff)
    staff("senior_manager", user="u.sm2", name="Sunil Second")
    path = f"/console/flags/{flag_id}/appeals/{appeal_id}/handler"
    assert staff("senior_manager").get(path).status_code == 403
    csm = staff("customer_support_manager", user="u.csm2")
    page = text(csm.get(path))
    assert "Sam Senior handles it now" in page and "Sunil Second" in page
    crafted = post_form(csm, path, {"manager": "u.clerk"})
    assert crafted.status_code == 422
    reply = post_form(csm, path, {"manager": "u.sm2"})
    assert reply.status_code == 302
    assert "Sunil Second now handles the appeal" in text(csm.get(reply.headers["Location"]))
    with app.extensions["forewarn"].database.transaction() as session:
        assert session.get(Appeal, appeal_id).handling_manager == "u.sm2"


def test_an_involved_director_sees_why_not_and_is_refused(app, cases, staff) -> None:
    flag_id, appeal_id = _lodged(app, cases, staff)
    involved = staff("service_director", user="u.resp")
    path = f"/console/flags/{flag_id}/appeals/{appeal_id}/decision"
    page = text(involved.get(path))
    assert "You took part as responsible manager" in page
    assert "Record the decision" not in page
    assert "The incident has been misreported" not in page


def test_an_uninvolved_director_decides_and_the_outcome_letter_follows(app, cases, staff) -> None:
    flag_id, appeal_id = _lodged(app, cases, staff)
    director = staff("service_director", user="u.dir2", name="Dora Fresh")
    assert "Open appeals: 1" in text(director.get("/"))
    path = f"/console/flags/{flag_id}/appeals/{appeal_id}/decision"
    empty = post_form(director, path, {"reasons": "Kept as typed"})
    assert empty.status_code == 422
    assert error_summary(empty) == ["Choose your decision on the appeal"]
    assert count(app, Appeal, Appeal.outcome.is_not(None)) == 0
    reply = post_form(director, path, DECISION)
    assert reply.status_code == 302
    assert reply.headers["Location"] == f"/console/flags/{flag_id}/letters/2"
    assert count(app, Letter) == 2
    assert "Open appeals: 0" in text(director.get("/"))
    assert "The panel's assessment stands." in text(director.get(reply.headers["Location"]))


def test_an_involved_directors_post_is_refused_and_audited(app, cases, staff) -> None:
    flag_id, appeal_id = _lodged(app, cases, staff)
    involved = staff("service_director", user="u.resp")
    path = f"/console/flags/{flag_id}/appeals/{appeal_id}/decision"
    reply = post_form(involved, path, DECISION, token_from="/")
    assert reply.status_code == 403
    denied = [r for r in audit_reasons(app, "appeal.decide") if r[1] == "denied"]
    assert denied and denied[0][0] == "u.resp"
    assert count(app, Appeal, Appeal.outcome.is_not(None)) == 0


def test_a_varied_appeal_changes_the_terms_named_in_the_form(app, cases, staff) -> None:
    flag_id, appeal_id = _lodged(app, cases, staff)
    director = staff("service_director", user="u.dir2")
    path = f"/console/flags/{flag_id}/appeals/{appeal_id}/decision"
    reply = post_form(
        director,
        path,
        {
            "outcome": "varied",
            "reasons": "Visits in pairs is enough.",
            "new_level": "amber",
            "new_categories": ["physical_violence"],
            "new_restrictions": ["visits_in_pairs"],
            "new_handling": "Two officers at every visit.",
        },
    )
    assert reply.status_code == 302, error_summary(reply)
    record = cases.read(flag_id)
    assert record["level"] == "amber"
    assert [r["code"] for r in record["restrictions"]] == ["visits_in_pairs"]
    assert record["handling"] == "Two officers at every visit."
    assert "I have varied the decision" in text(director.get(reply.headers["Location"]))
