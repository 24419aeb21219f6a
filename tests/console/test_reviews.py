"""Reviews in the console: due and overdue flags listed, and a review recorded with its letter."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import update

from sidecar.register.case_models import Review
from sidecar.register.models import Flag
from tests.console.conftest import count, error_summary, post_form, text

CONTINUE = {"outcome": "continue", "notes": "Two more incidents since the flag was raised."}


def _due(app, flag_id: str, days_late: int) -> None:
    with app.extensions["forewarn"].database.transaction() as session:
        session.execute(
            update(Flag)
            .where(Flag.id == flag_id)
            .values(review_due=date.today() - timedelta(days=days_late))
        )


def test_overdue_flags_are_listed_most_overdue_first(app, cases, staff) -> None:
    late, later, not_due = cases.notified(), cases.notified(), cases.notified()
    _due(app, late, 3)
    _due(app, later, 40)
    manager = staff("senior_manager", user="u.sm2")
    assert "Reviews due or overdue: 2" in text(manager.get("/"))
    page = text(manager.get("/console/reviews"))
    assert page.index("overdue by 40 days") < page.index("overdue by 3 days")
    assert cases.read(not_due)["reference"] not in page
    assert "Responsible manager: u.resp" in page


def test_a_review_is_recorded_and_the_person_sent_its_outcome(app, cases, staff) -> None:
    flag_id = cases.notified()
    _due(app, flag_id, 3)
    manager = staff("senior_manager", user="u.sm2")
    cases.assign_review(flag_id, "u.sm2")
    reply = post_form(manager, f"/console/flags/{flag_id}/review", CONTINUE)
    assert reply.status_code == 302
    assert reply.headers["Location"] == f"/console/flags/{flag_id}/letters/2"
    letter = text(manager.get(reply.headers["Location"]))
    assert "the arrangements must continue for now" in letter
    assert "Two more incidents since the flag was raised." in letter
    assert cases.read(flag_id)["review_due"] > date.today().isoformat()
    assert "Reviews due or overdue: 0" in text(manager.get("/"))


def test_a_review_without_its_reasoning_is_refused_and_records_nothing(app, cases, staff) -> None:
    flag_id = cases.notified()
    reply = post_form(
        staff("senior_manager"), f"/console/flags/{flag_id}/review", {"outcome": "remove"}
    )
    assert reply.status_code == 422
    assert error_summary(reply) == ["Record the review's reasoning"]
    assert 'value="remove" checked' in reply.get_data(as_text=True)
    assert count(app, Review) == 0
    assert cases.read(flag_id)["state"] == "active"


def test_removing_a_flag_the_person_was_never_told_of_writes_no_letter(app, cases, staff) -> None:
    flag_id = cases.active()
    manager = staff("customer_support_manager", user="u.csm2")
    cases.assign_review(flag_id, "u.csm2")
    reply = post_form(
        manager, f"/console/flags/{flag_id}/review", {"outcome": "remove", "notes": "Resolved."}
    )
    assert reply.status_code == 302
    assert reply.headers["Location"] == "/console/reviews"
    assert "so no letter" in text(manager.get("/console/reviews"))
    assert cases.read(flag_id)["state"] == "removed"
    assert "Only an active flag is reviewed" in text(
        manager.get(f"/console/flags/{flag_id}/review")
    )


VARY = {
    "outcome": "vary",
    "notes": "Calls are calmer; letters only now.",
    "new_level": "amber",
    "new_categories": ["verbal_hate_abuse"],
    "new_restrictions": ["writing_only", "time_limited_calls"],
    "new_handling": "",
}


def test_a_review_varies_the_terms_keeping_a_kept_restrictions_note(app, cases, staff) -> None:
    flag_id = cases.notified()
    manager = staff("senior_manager", user="u.sm2")
    cases.assign_review(flag_id, "u.sm2")
    path = f"/console/flags/{flag_id}/review"
    page = manager.get(path).get_data(as_text=True)
    assert 'value="red" checked' in page  # filled in with the flag's terms
    reply = post_form(manager, path, VARY)
    assert reply.status_code == 302, error_summary(reply)
    record = cases.read(flag_id)
    assert (record["level"], record["categories"]) == ("amber", ["verbal_hate_abuse"])
    assert [(r["code"], r["note"]) for r in record["restrictions"]] == [
        ("writing_only", ""),
        ("time_limited_calls", "10 minutes"),
    ]
    assert record["handling"] == "Writing only; Time-limited calls: 10 minutes"


def test_a_variation_without_a_category_changes_nothing(app, cases, staff) -> None:
    flag_id = cases.notified()
    reply = post_form(
        staff("senior_manager"), f"/console/flags/{flag_id}/review", VARY | {"new_categories": []}
    )
    assert reply.status_code == 422
    assert error_summary(reply) == ["Select at least one category"]
    assert "Calls are calmer; letters only now." in reply.get_data(as_text=True)
    assert cases.read(flag_id)["level"] == "red"
    assert count(app, Review) == 0


def test_a_manager_assigns_the_review_and_only_the_one_named_may_record_it(
    app, cases, staff
) -> None:
    flag_id = cases.notified()
    reviewer = staff("senior_manager", user="u.sm2", name="Sam Second")
    other = staff("senior_manager", user="u.sm3", name="Sue Third")
    lead = staff("customer_support_manager", user="u.csm2", name="Chris Second")
    subject = lead.get(f"/console/subjects/customer/{_ref(cases, flag_id)}")
    assert "Assign the review" in text(subject)
    page = lead.get(f"/console/flags/{flag_id}/reviewers")
    shown = text(page)
    assert "No one is assigned to review this flag yet" in shown
    assert "Sam Second" in shown and "Sue Third" in shown
    assert 'value="u.csm2"' not in page.get_data(as_text=True)
    reply = post_form(lead, f"/console/flags/{flag_id}/reviewers", {"reviewers": ["u.sm2"]})
    assert reply.status_code == 302
    assert "The next review is assigned to Sam Second." in text(lead.get(reply.headers["Location"]))
    assert [r["id"] for r in cases.read(flag_id)["review_assignment"]["reviewers"]] == ["u.sm2"]
    assert "assigned to Sam Second" in text(lead.get(f"/console/flags/{flag_id}/reviewers"))
    refused = post_form(other, f"/console/flags/{flag_id}/review", CONTINUE)
    assert refused.status_code == 403
    assert post_form(reviewer, f"/console/flags/{flag_id}/review", CONTINUE).status_code == 302


def test_assigning_no_one_is_refused_and_assigns_nothing(app, cases, staff) -> None:
    flag_id = cases.notified()
    staff("senior_manager", user="u.sm2")
    lead = staff("customer_support_manager", user="u.csm2")
    reply = post_form(lead, f"/console/flags/{flag_id}/reviewers", {})
    assert reply.status_code == 422
    assert error_summary(reply) == ["Choose at least one reviewer"]
    crafted = post_form(lead, f"/console/flags/{flag_id}/reviewers", {"reviewers": ["u.csm2"]})
    assert crafted.status_code == 422
    assert cases.read(flag_id)["review_assignment"] is None


def _ref(cases, flag_id: str) -> str:
    return cases.read(flag_id)["subject"]["ref"]
