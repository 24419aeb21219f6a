"""City of York Council's managing customer relations policy: the actions it may take (2015),
rule by rule, through the API (shared/policies/001), with York's settings: incidents also
logged on B-Safe, and a warning before any restriction of contact.

Each test name is the policy's own words.
"""

from __future__ import annotations

import pytest

from tests.identity.test_routes import INCIDENT as REPORTED
from tests.identity.test_routes import TRIAGE
from tests.lifecycle.conftest import ASSESSMENT, PROPOSAL

INCIDENTS = "/api/v1/incidents"
INCIDENT = REPORTED | {
    "channel": "phone",
    "behaviour_types": ["aggressive_or_abusive"],
    "narrative": "Shouted abuse at the advisor and would not stop when asked.",
}
WARNED = {"warning_given_on": "2026-10-02"}


@pytest.fixture
def settings(make_settings):
    """York's settings: B-Safe as the council's health and safety system, and a warning
    before any restriction ("the manager will tell them that their conduct is a concern")."""
    return make_settings(
        catalogue={"external_references": {"b_safe": "B-Safe"}},
        policy={"warning_before_flag": "require"},
    )


def _incidents(client, headers) -> list[dict]:
    reply = client.get(f"{INCIDENTS}?kind=customer&ref=CRM-2001", headers=headers)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()["incidents"]


def _recorded(client, headers, **changes) -> str:
    reply = client.post(INCIDENTS, json=INCIDENT | changes, headers=headers)
    assert reply.status_code == 201, reply.get_json()
    return reply.get_json()["id"]


def test_staff_will_add_information_about_the_incident_onto_the_staff_warning_register_and_inform_their_manager(  # noqa: E501
    client, staff
) -> None:
    incident_id = _recorded(client, staff.agent)
    # Their manager finds it waiting for a decision.
    [incident] = _incidents(client, staff.sm)
    assert (incident["id"], incident["reported_by"], incident["triage"]) == (
        incident_id,
        "u.agent",
        None,
    )
    assert incident["behaviour_labels"] == ["Aggressive or abusive behaviour"]


def test_ending_the_call_after_a_polite_warning_has_been_given(client, staff) -> None:
    _recorded(client, staff.agent, channel="phone", warning_given=True)
    _recorded(client, staff.agent, channel="in_person", warning_given=False)
    listed = _incidents(client, staff.csm)
    assert sorted((i["channel_label"], i["warning_given"]) for i in listed) == [
        ("In person", False),
        ("Telephone", True),
    ]


@pytest.mark.parametrize(
    ("channel", "label"),
    [("email", "Email"), ("letter", "Letter"), ("social_media", "Social media")],
)
def test_not_replying_to_an_abusive_email_letter_or_social_media_comment(
    client, staff, channel, label
) -> None:
    _recorded(client, staff.agent, channel=channel, warning_given=False)
    [incident] = _incidents(client, staff.csm)
    assert incident["channel_label"] == label


def test_the_officer_can_consult_their_manager_for_support_logging_the_incident_on_b_safe_the_councils_health_and_safety_system(  # noqa: E501
    client, staff
) -> None:
    _recorded(client, staff.agent, external_references=[{"system": "b_safe", "ref": "BS-2026-7"}])
    [incident] = _incidents(client, staff.sm)
    assert incident["external_references"] == [
        {"system": "b_safe", "ref": "BS-2026-7", "label": "B-Safe"}
    ]
    other = INCIDENT | {"external_references": [{"system": "datix", "ref": "D-1"}]}
    refused = client.post(INCIDENTS, json=other, headers=staff.agent)
    assert refused.status_code == 422
    assert "unknown external reference system 'datix' (b_safe)" in refused.get_json()["detail"]


def test_the_manager_will_consider_the_channel_the_circumstances_whether_the_customer_is_known_to_the_council_and_whether_the_customer_is_disabled(  # noqa: E501
    client, staff
) -> None:
    incident_id = _recorded(client, staff.agent)
    considerations = dict(TRIAGE["considerations"])
    del considerations["support_needs"]
    partial = {"outcome": "monitor", "considerations": considerations}
    refused = client.post(f"{INCIDENTS}/{incident_id}/triage", json=partial, headers=staff.sm)
    assert refused.status_code == 422
    assert "support_needs" in refused.get_json()["detail"]
    whole = {"outcome": "monitor", "considerations": TRIAGE["considerations"]}
    reply = client.post(f"{INCIDENTS}/{incident_id}/triage", json=whole, headers=staff.sm)
    assert reply.status_code == 200, reply.get_json()
    [incident] = _incidents(client, staff.sm)
    # The triaging manager takes part in the incident and reads what they considered.
    assert incident["triage"]["considerations"]["support_needs"] == "none known"


@pytest.mark.parametrize("outcome", ["no_further_action", "monitor"])
def test_the_manager_will_consider_next_steps_which_could_include_no_further_action_or_continue_to_monitor(  # noqa: E501
    client, staff, outcome
) -> None:
    incident_id = _recorded(client, staff.agent)
    body = {"outcome": outcome, "considerations": TRIAGE["considerations"]}
    reply = client.post(f"{INCIDENTS}/{incident_id}/triage", json=body, headers=staff.csm)
    assert reply.status_code == 200, reply.get_json()
    [incident] = _incidents(client, staff.csm)
    assert (incident["triage"]["outcome"], incident["triage"]["by"]) == (outcome, "u.csm")
    again = client.post(f"{INCIDENTS}/{incident_id}/triage", json=body, headers=staff.sm)
    assert again.status_code == 409


def test_we_might_need_to_limit_the_contact_a_customer_has_with_a_specific_member_of_staff_or_with_the_council_as_a_whole(  # noqa: E501
    cases, client, staff
) -> None:
    cases.active(**WARNED, restrictions=["single_point_of_contact"])
    cases.active(
        **WARNED, subject={"kind": "customer", "ref": "CRM-2002"}, restrictions=["office_ban"]
    )
    for ref, label in (
        ("CRM-2001", "Single point of contact"),
        ("CRM-2002", "Barred from council offices"),
    ):
        banner = client.get(f"/api/v1/subjects/customer/{ref}/banner", headers=staff.agent)
        [flag] = banner.get_json()["flags"]
        assert [r["label"] for r in flag["restrictions"]] == [label]


def test_any_action_we_take_will_always_seek_to_be_reasonable_and_proportionate(
    cases, staff
) -> None:
    flag_id = cases.propose(**WARNED)
    unweighed = ASSESSMENT | {"proportionality": ""}
    reply = cases.client.post(
        f"/api/v1/flags/{flag_id}/panel-decisions",
        json={"role": "customer_support_manager", "decision": "approve", **unweighed},
        headers=staff.csm,
    )
    assert reply.status_code == 422
    assert "proportionality" in reply.get_json()["detail"]
    assert cases.read(flag_id)["state"] == "proposed"


def test_before_we_take_any_action_to_limit_a_customers_contact_with_us_the_manager_will_tell_them_that_their_conduct_is_a_concern_to_us(  # noqa: E501
    cases, client, staff
) -> None:
    unwarned = client.post("/api/v1/flags", json=PROPOSAL, headers=staff.officer)
    assert unwarned.status_code == 422
    assert "say when the person was warned" in unwarned.get_json()["detail"]
    flag_id = cases.propose(**WARNED)
    # The panel sees when they were told.
    assert cases.read(flag_id, staff.hs)["warning"] == {
        "given_on": "2026-10-02",
        "not_given": False,
    }
