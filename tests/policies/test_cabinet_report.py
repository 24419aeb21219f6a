"""The cabinet report adopting a managing unreasonable customer behaviour policy (14 December
2017, shared/policies/004): what it says customers have done, and what the policy must give
staff and customers, each through the API.

Each test name is the report's own words. The council is not named in the report; its
settings here are the register's defaults with the catalogue entries the report relies on
spelled out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.identity.test_routes import INCIDENT as REPORTED
from tests.lifecycle.conftest import PROPOSAL

INCIDENTS = "/api/v1/incidents"
INCIDENT = REPORTED | {
    "subject": {"kind": "customer", "ref": "CRM-5001"},
    "behaviour_types": ["unreasonable_demands"],
    "narrative": "Stayed at the counter for three hours demanding a new inspection.",
}
PERSISTENT = PROPOSAL | {
    "subject": {"kind": "customer", "ref": "CRM-5001"},
    "level": "amber",
    "categories": ["persistent_complainer"],
    "restrictions": ["behaviour_agreement", "single_point_of_contact"],
    "reason": "Flouted the behaviour agreement and recorded officers without permission.",
}


@pytest.fixture
def settings(make_settings):
    return make_settings(
        catalogue={
            "behaviour_types": {
                "unreasonable_demands": "Unreasonable demands",
                "unreasonable_persistence": "Unreasonable persistence",
                "covert_recording": "Covert recording of staff",
                "aggressive_or_abusive": "Aggressive or abusive behaviour",
            },
            "restrictions": {
                "behaviour_agreement": "Acceptable behaviour agreement",
                "single_point_of_contact": "Single point of contact",
                "time_limited_calls": "Time-limited calls",
                "visits_in_pairs": "Visits in pairs",
            },
        }
    )


def _recorded(client, headers, **changes) -> None:
    reply = client.post(INCIDENTS, json=INCIDENT | changes, headers=headers)
    assert reply.status_code == 201, reply.get_json()


def _summary(client, staff) -> dict:
    year = date.today().year
    reply = client.get(
        f"/api/v1/reports/summary?from={year - 1}-01-01&to={year}-12-31", headers=staff.csm
    )
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()


def test_customers_have_demanded_an_excessive_amount_of_officers_time_preventing_those_officers_from_carrying_out_their_duties(  # noqa: E501
    client, staff
) -> None:
    # An hour ago: an incident cannot be recorded as happening later than now.
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    _recorded(client, staff.agent, occurred_at=an_hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ"))
    listed = client.get(f"{INCIDENTS}?kind=customer&ref=CRM-5001", headers=staff.csm)
    [incident] = listed.get_json()["incidents"]
    assert incident["behaviour_labels"] == ["Unreasonable demands"]
    # The intelligence a demand management model reads: the summary counts them.
    counted = _summary(client, staff)["incidents"]["by_behaviour_type"]
    assert {"code": "unreasonable_demands", "label": "Unreasonable demands", "count": 1} in counted


def test_customers_have_covertly_and_openly_recorded_their_interactions_with_officers_without_permission_to_do_so(  # noqa: E501
    client, staff
) -> None:
    _recorded(client, staff.agent, behaviour_types=["covert_recording"], channel="home_visit")
    listed = client.get(f"{INCIDENTS}?kind=customer&ref=CRM-5001", headers=staff.csm)
    [incident] = listed.get_json()["incidents"]
    assert incident["behaviour_labels"] == ["Covert recording of staff"]
    assert incident["channel_label"] == "Home visit"


def test_customers_have_not_adhered_to_the_behaviour_and_access_contracts_put_in_place(
    cases, client, staff
) -> None:
    cases.active(**PERSISTENT)
    banner = client.get("/api/v1/subjects/customer/CRM-5001/banner", headers=staff.agent)
    [flag] = banner.get_json()["flags"]
    assert flag["category_labels"] == ["Persistent complainer"]
    assert [r["label"] for r in flag["restrictions"]] == [
        "Acceptable behaviour agreement",
        "Single point of contact",
    ]
    # The contract's breach, the reason, stays off the banner.
    assert "Flouted" not in banner.get_data(as_text=True)


def test_customers_are_deemed_to_be_persistent_and_unreasonable_with_their_comments_requests_and_with_the_demand_placed_on_the_council(  # noqa: E501
    client, staff
) -> None:
    client.get("/auth/session", headers=staff.csm)  # the directory knows who decides
    decision = {
        "kind": "no_further_complaints",
        "matter": "Requests for a new inspection of the drains",
        "reason": "Answered in full three times; the latest letters add nothing new.",
        "decided_by": "u.csm",
        "decided_on": date.today().isoformat(),
    }
    log = "/api/v1/subjects/customer/CRM-5001/decisions"
    reply = client.post(log, json=decision, headers=staff.csm)
    assert reply.status_code == 201, reply.get_json()
    [entry] = client.get(log, headers=staff.csm).get_json()["decisions"]
    assert entry["kind_label"] == "Further complaints on the same matter not processed"
    assert entry["decided_by"] == {"id": "u.csm", "name": "Cara Support"}


def test_every_person_has_the_right_to_have_his_or_her_concerns_heard_and_considered(
    cases, client, staff
) -> None:
    # A decision not to flag is a decision too, with the panel's assessment recorded.
    flag_id = cases.propose(**PERSISTENT)
    assert cases.decide(flag_id, staff.csm, "customer_support_manager").status_code == 201
    rejected = cases.decide(flag_id, staff.sm, "senior_manager", "reject")
    assert rejected.get_json()["state"] == "rejected"
    record = cases.read(flag_id)
    assert record["history"][-1]["action"] == "panel_reject"
    banner = client.get("/api/v1/subjects/customer/CRM-5001/banner", headers=staff.agent)
    assert banner.get_json()["status"] == "none"


def test_this_policy_provides_staff_with_additional_assurance_and_customers_with_clear_guidance_of_process(  # noqa: E501
    cases, client, staff
) -> None:
    flag_id = cases.notified(**PERSISTENT)
    letter = client.get(f"/api/v1/flags/{flag_id}/letters/1", headers=staff.csm)
    body = letter.get_data(as_text=True)
    # The customer reads what is restricted, until when, and how to appeal.
    for told in ("Acceptable behaviour agreement", "We will review this decision by", "appeal"):
        assert told in body
    # Staff read the same restrictions on the banner.
    banner = client.get("/api/v1/subjects/customer/CRM-5001/banner", headers=staff.agent)
    assert banner.get_json()["status"] == "amber"
