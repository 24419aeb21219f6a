"""Workington Town Council's unacceptable behaviour procedure, rule by rule, through the API.

Each test name is the procedure's own words (section 5 of shared/policies/003).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from sidecar import create_app
from tests.identity.test_routes import INCIDENT
from tests.lifecycle.conftest import PROPOSAL

FLAGS = "/api/v1/flags"


@pytest.fixture
def workington(make_settings) -> Iterator[Flask]:
    app = create_app(make_settings(policy={"warning_before_flag": "require"}))
    yield app
    app.extensions["forewarn"].database.dispose()


def test_before_taking_such_action_the_council_will_warn_members_of_the_community_that_they_are_behaving_in_an_unacceptable_way(  # noqa: E501
    workington, auth_headers
) -> None:
    client = workington.test_client()
    officer = auth_headers("case_officer", user="u.officer")
    unwarned = client.post(FLAGS, json=PROPOSAL, headers=officer)
    assert unwarned.status_code == 422
    assert "say when the person was warned" in unwarned.get_json()["detail"]
    warned = client.post(FLAGS, json=PROPOSAL | {"warning_given_on": "2026-11-02"}, headers=officer)
    assert warned.status_code == 201
    record = client.get(f"{FLAGS}/{warned.get_json()['id']}", headers=officer).get_json()
    # The panel sees when the warning was given.
    assert record["warning"] == {"given_on": "2026-11-02", "not_given": False}


def test_a_warning_will_not_be_given_in_extreme_cases_for_example_when_a_physical_threat_is_made(
    workington, auth_headers
) -> None:
    client = workington.test_client()
    officer = auth_headers("case_officer", user="u.officer")
    why_not = "He threatened to stab the officer at the counter."
    reply = client.post(FLAGS, json=PROPOSAL | {"no_warning_reason": why_not}, headers=officer)
    assert reply.status_code == 201
    flag_id = reply.get_json()["id"]
    # The proposer takes part in the case and reads why; the reason stays sealed for others.
    mine = client.get(f"{FLAGS}/{flag_id}", headers=officer).get_json()
    assert mine["warning"] == {"given_on": None, "not_given": True}
    assert mine["confidential"]["no_warning_reason"] == why_not
    legal = client.get(f"{FLAGS}/{flag_id}", headers=auth_headers("legal", user="u.legal"))
    assert why_not not in legal.get_data(as_text=True)
    both = PROPOSAL | {"no_warning_reason": why_not, "warning_given_on": "2026-11-02"}
    assert client.post(FLAGS, json=both, headers=officer).status_code == 422
    future = PROPOSAL | {"warning_given_on": "2999-01-01"}
    assert client.post(FLAGS, json=future, headers=officer).status_code == 422


# With the council's own settings, config/examples/workington.toml ---------------------------

WARNED = {"warning_given_on": "2026-11-02"}


class Workington:
    """Workington's people, signed in with its own roles."""

    def __init__(self, council) -> None:
        self.town = council("workington")
        sign_in = self.town.sign_in
        self.chief = sign_in("chief_officer", user="u.chief", name="Carol Chief")
        self.chair = sign_in("chair_fgp", user="u.chair", name="Frank Chair")
        self.mayor = sign_in("mayor", user="u.mayor", name="May Mayor")
        self.councillor = sign_in("councillor", user="u.cllr", name="Colin Councillor")

    def active(self) -> str:
        flag_id = self.town.propose(self.chief, **WARNED)
        assert self.town.decide(flag_id, self.chief, "chief_officer").status_code == 201
        assert self.town.decide(flag_id, self.chair, "chair_fgp").status_code == 201
        return flag_id

    def appealed(self) -> tuple[str, str]:
        flag_id = self.active()
        notice = {"method": "letter", "recipient_name": "Mr T Example"}
        issued = self.town.post(f"{FLAGS}/{flag_id}/notice", notice, self.chief)
        assert issued.status_code == 201, issued.get_json()
        lodged = self.town.post(f"{FLAGS}/{flag_id}/appeals", {"grounds": "unfair"}, self.chief)
        assert lodged.status_code == 201, lodged.get_json()
        return flag_id, f"{FLAGS}/{flag_id}/appeals/{lodged.get_json()['id']}/decision"


@pytest.fixture
def town(council) -> Workington:
    return Workington(council)


UPHELD = {"outcome": "upheld", "reasons": "The restriction is needed and proportionate."}


def test_in_all_cases_the_chief_officer_and_chair_of_finance_and_general_purposes_will_investigate_the_situation_and_decide_what_action_to_take(  # noqa: E501
    town,
) -> None:
    flag_id = town.town.propose(town.chief, **WARNED)
    first = town.town.decide(flag_id, town.chief, "chief_officer")
    assert first.get_json()["state"] == "proposed"
    assert first.get_json()["awaiting"] == ["chair_fgp", "mayor"]
    second = town.town.decide(flag_id, town.chair, "chair_fgp")
    assert second.status_code == 201
    assert second.get_json()["state"] == "active"
    record = town.town.client.get(f"{FLAGS}/{flag_id}", headers=town.chief).get_json()
    assert [d["role"] for d in record["panel"]["decisions"]] == ["chief_officer", "chair_fgp"]
    assert "two of the three panel roles approved" in record["history"][-1]["why"]


def test_the_mayor_chair_of_f_and_gp_and_or_the_chief_officer_can_put_in_place_a_communication_restriction(  # noqa: E501
    town,
) -> None:
    with_mayor = town.town.propose(town.chief, **WARNED)
    town.town.decide(with_mayor, town.mayor, "mayor")
    assert town.town.decide(with_mayor, town.chief, "chief_officer").get_json()["state"] == "active"
    # Without the Chief Officer, who keeps the record, the Mayor and the Chair cannot.
    without_chief = town.town.propose(town.chief, **WARNED)
    town.town.decide(without_chief, town.mayor, "mayor")
    reply = town.town.decide(without_chief, town.chair, "chair_fgp")
    assert reply.get_json() | {"id": None} == {
        "id": None,
        "state": "proposed",
        "awaiting": ["chief_officer"],
        "review_due": None,
    }
    # One person sits once; the Mayor's rejection leaves the other two to decide.
    rejected_by_mayor = town.town.propose(town.chief, **WARNED)
    assert town.town.decide(rejected_by_mayor, town.mayor, "mayor", "reject").status_code == 201
    assert town.town.decide(rejected_by_mayor, town.mayor, "mayor").status_code == 409
    assert town.town.decide(rejected_by_mayor, town.chief, "chief_officer").status_code == 201
    final = town.town.decide(rejected_by_mayor, town.chair, "chair_fgp")
    assert final.get_json()["state"] == "active"
    # Eastleigh's panel roles do not sit in Workington.
    proposed = town.town.propose(town.chief, **WARNED)
    refused = town.town.decide(proposed, town.chief, "customer_support_manager")
    assert refused.status_code == 422
    assert "panel roles: chief_officer, chair_fgp, mayor" in refused.get_json()["detail"]


def test_the_chief_officer_s_rejection_is_final(town) -> None:
    flag_id = town.town.propose(town.chief, **WARNED)
    reply = town.town.decide(flag_id, town.chief, "chief_officer", "reject")
    assert reply.get_json()["state"] == "rejected"


def test_the_appeal_will_be_reviewed_by_the_mayor_and_the_chair_of_the_finance_and_general_purposes_committee(  # noqa: E501
    town,
) -> None:
    flag_id, url = town.appealed()
    first = town.town.post(url, UPHELD, town.mayor)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["outcome"] is None and first.get_json()["letter"] is None
    assert first.get_json()["awaiting"] == ["chair_fgp", "councillor"]
    assert town.town.post(url, UPHELD, town.mayor).status_code == 409
    pending = town.town.client.get(f"{FLAGS}/{flag_id}", headers=town.chief).get_json()
    [appeal] = pending["appeals"]
    assert appeal["state"] == "pending" and appeal["awaiting"] == ["chair_fgp", "councillor"]
    assert [d["decided_by"]["name"] for d in appeal["decisions"]] == ["May Mayor"]
    [sealed] = pending["confidential"]["appeals"]
    assert sealed["decider_reasons"] == [{"role": "mayor", "reasons": UPHELD["reasons"]}]
    second = town.town.post(url, UPHELD, town.chair)
    assert second.status_code == 200, second.get_json()
    decided = second.get_json()
    assert decided["outcome"] == "upheld" and decided["letter"] is not None
    assert [(d["role"], d["outcome"]) for d in decided["decisions"]] == [
        ("mayor", "upheld"),
        ("chair_fgp", "upheld"),
    ]
    record = town.town.client.get(f"{FLAGS}/{flag_id}", headers=town.chief).get_json()
    why = record["history"][-1]["why"]
    assert "Mayor May Mayor and Chair of Finance and General Purposes Frank Chair" in why


def test_the_appeal_will_be_reviewed_by_the_mayor_and_another_councillor_deemed_suitable_by_the_council(  # noqa: E501
    town,
) -> None:
    # The councillor who reported the incident took part in the case: not suitable.
    involved = town.town.sign_in("councillor", user="u.cllr.reporter", name="Rita Reporter")
    reported = town.town.post("/api/v1/incidents", INCIDENT, involved)
    assert reported.status_code == 201, reported.get_json()
    flag_id = town.town.propose(town.chief, **WARNED, incident_ids=[reported.get_json()["id"]])
    town.town.decide(flag_id, town.chief, "chief_officer")
    town.town.decide(flag_id, town.chair, "chair_fgp")
    town.town.post(
        f"{FLAGS}/{flag_id}/notice", {"method": "letter", "recipient_name": "T"}, town.chief
    )
    lodged = town.town.post(f"{FLAGS}/{flag_id}/appeals", {"grounds": "unfair"}, town.chief)
    url = f"{FLAGS}/{flag_id}/appeals/{lodged.get_json()['id']}/decision"
    refused = town.town.post(url, UPHELD, involved)
    assert refused.status_code == 403
    assert "a Councillor with prior involvement" in refused.get_json()["detail"]
    # Without the Mayor no two decide it.
    assert town.town.post(url, UPHELD, town.councillor).get_json()["outcome"] is None
    decided = town.town.post(url, UPHELD, town.mayor).get_json()
    assert decided["outcome"] == "upheld"


def test_the_chief_officer_signs_the_letter_informing_the_person(town) -> None:
    flag_id = town.active()
    notice = {"method": "letter", "recipient_name": "Mr T Example"}
    issued = town.town.post(f"{FLAGS}/{flag_id}/notice", notice, town.chair)
    assert issued.status_code == 403  # the Chair holds no notice.issue
    issued = town.town.post(f"{FLAGS}/{flag_id}/notice", notice, town.chief)
    assert issued.status_code == 201, issued.get_json()
    letter = town.town.client.get(f"{FLAGS}/{flag_id}/letters/1", headers=town.chief)
    assert "Carol Chief" in letter.get_data(as_text=True)


def test_councillors_and_staff_have_the_right_to_be_treated_with_respect_a_councillor_reports_and_is_protected(  # noqa: E501
    town,
) -> None:
    incident = INCIDENT | {"reporter_kind": "councillor"}
    reported = town.town.post("/api/v1/incidents", incident, town.councillor)
    assert reported.status_code == 201, reported.get_json()
    # Staff recording it for a councillor name them; the name is sealed.
    for_them = incident | {"reporter_name": "Cllr Jo Ward"}
    recorded = town.town.post("/api/v1/incidents", for_them, town.chief)
    assert recorded.status_code == 201, recorded.get_json()
    register = town.town.client.get(
        "/api/v1/incidents?kind=customer&ref=CRM-2001", headers=town.chief
    ).get_json()
    assert [i["reporter"]["kind"] for i in register["incidents"]] == ["councillor", "councillor"]
    staff_named = incident | {"reporter_kind": "staff", "reporter_name": "Someone"}
    assert town.town.post("/api/v1/incidents", staff_named, town.chief).status_code == 422
    flag_id = town.town.propose(
        town.chief,
        **WARNED,
        incident_ids=[recorded.get_json()["id"]],
        protects=["staff", "councillor"],
        protected_people="Cllr Jo Ward",
    )
    town.town.decide(flag_id, town.chief, "chief_officer")
    town.town.decide(flag_id, town.chair, "chair_fgp")
    record = town.town.client.get(f"{FLAGS}/{flag_id}", headers=town.councillor)
    assert record.status_code == 200
    assert [p["label"] for p in record.get_json()["protects"]] == ["Staff", "Councillors"]
    # The councillor named reads no name without a part in the case.
    assert "Cllr Jo Ward" not in record.get_data(as_text=True)
    mine = town.town.client.get(f"{FLAGS}/{flag_id}", headers=town.chief).get_json()
    assert mine["confidential"]["protected_people"] == "Cllr Jo Ward"
    details = town.town.client.get(f"{FLAGS}/{flag_id}/details", headers=town.chief).get_json()
    assert details["protects"] == {"kinds": ["Staff", "Councillors"], "people": "Cllr Jo Ward"}
    [summary] = details["incidents"]
    assert summary["happened_to"] == {
        "kind": "councillor",
        "label": "Councillor",
        "name": "Cllr Jo Ward",
    }


def test_individuals_may_appeal_in_writing_to_the_council_the_chief_officer_keeps_the_record(
    town,
) -> None:
    flag_id = town.active()
    notice = {"method": "letter", "recipient_name": "Mr T Example"}
    assert town.town.post(f"{FLAGS}/{flag_id}/notice", notice, town.chief).status_code == 201
    clerk = town.town.sign_in("case_officer", user="u.clerk", name="Cleo Clerk")
    lodged = town.town.post(f"{FLAGS}/{flag_id}/appeals", {"grounds": "unfair"}, clerk)
    assert lodged.status_code == 201, lodged.get_json()
    # The Chief Officer on the panel handles it; the banner names them while it is open.
    assert lodged.get_json()["handling_manager"] == {"id": "u.chief", "name": "Carol Chief"}
    banner = town.town.client.get(
        "/api/v1/subjects/customer/CRM-2001/banner", headers=town.councillor
    ).get_json()
    [shown] = banner["flags"]
    assert shown["appeal"] == {"pending": True, "handling_manager": "Carol Chief"}
    record = town.town.client.get(f"{FLAGS}/{flag_id}", headers=town.chief).get_json()
    assert "handled by Carol Chief" in record["history"][-1]["why"]
    # The Mayor and the Chair decide it; the Chief Officer, who handles it, does not.
    url = f"{FLAGS}/{flag_id}/appeals/{lodged.get_json()['id']}/decision"
    assert town.town.post(url, UPHELD, town.chief).status_code == 403
    town.town.post(url, UPHELD, town.mayor)
    assert town.town.post(url, UPHELD, town.chair).get_json()["outcome"] == "upheld"


def test_the_procedure_names_no_exception_to_telling_the_person(town) -> None:
    flag_id = town.active()
    withheld = {
        "method": "withheld",
        "legal_guidance_ref": "LEGAL-1",
        "director_permission_by": "u.mayor",
        "reason": "Telling him risks an extreme reaction.",
    }
    refused = town.town.post(f"{FLAGS}/{flag_id}/notice", withheld, town.chief)
    assert refused.status_code == 422
    assert "lifecycle.withhold_permission_role" in refused.get_json()["detail"]
    record = town.town.client.get(f"{FLAGS}/{flag_id}", headers=town.chief).get_json()
    assert record["notice"] is None
    sent = town.town.post(f"{FLAGS}/{flag_id}/notice", {"method": "letter"}, town.chief)
    assert sent.status_code == 201, sent.get_json()
