"""City of York Council's expectations of customers (2016), rule by rule, through the API
(shared/policies/000); its actions for managing customer relations (2015, shared/policies/001)
are in test_york_2015.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from sidecar import create_app
from tests.identity.test_routes import TRIAGE

INCIDENT = {
    "subject": {"kind": "customer", "ref": "CRM-4001"},
    "occurred_at": "2026-10-01T10:30:00Z",
    "channel": "phone",
    "behaviour_types": ["aggressive_or_abusive"],
    "narrative": "Shouted abuse at the advisor and would not stop when asked.",
    "warning_given": True,
}


@pytest.fixture
def york(make_settings) -> Iterator[Flask]:
    app = create_app(make_settings(catalogue={"external_references": {"b_safe": "B-Safe"}}))
    yield app
    app.extensions["forewarn"].database.dispose()


def test_customers_known_to_the_council_for_related_issues_are_recorded_on_b_safe(
    york, auth_headers
) -> None:
    client = york.test_client()
    officer = auth_headers("case_officer", user="u.officer")
    body = INCIDENT | {"external_references": [{"system": "b_safe", "ref": "BS-2026-114"}]}
    reply = client.post("/api/v1/incidents", json=body, headers=officer)
    assert reply.status_code == 201, reply.get_json()
    manager = auth_headers("customer_support_manager", user="u.csm")
    listed = client.get("/api/v1/incidents?kind=customer&ref=CRM-4001", headers=manager)
    [incident] = listed.get_json()["incidents"]
    assert incident["external_references"] == [
        {"system": "b_safe", "ref": "BS-2026-114", "label": "B-Safe"}
    ]
    unknown = INCIDENT | {"external_references": [{"system": "datix", "ref": "D-1"}]}
    refused = client.post("/api/v1/incidents", json=unknown, headers=officer)
    assert refused.status_code == 422
    assert "unknown external reference system 'datix' (b_safe)" in refused.get_json()["detail"]


def test_without_b_safe_configured_a_reference_to_it_is_refused_not_dropped(
    client, auth_headers
) -> None:
    agent = auth_headers("agent", user="u.agent")
    assert client.post("/api/v1/incidents", json=INCIDENT, headers=agent).status_code == 201
    body = INCIDENT | {"external_references": [{"system": "b_safe", "ref": "BS-1"}]}
    refused = client.post("/api/v1/incidents", json=body, headers=agent)
    assert refused.status_code == 422
    assert "none are configured" in refused.get_json()["detail"]


def test_the_manager_will_consider_next_steps_which_could_include_no_further_action_or_continue_to_monitor(  # noqa: E501
    council,
) -> None:
    york = council("york-2016")
    officer = york.sign_in("case_officer", user="u.officer")
    manager = york.sign_in("senior_manager", user="u.manager")
    incident = york.post("/api/v1/incidents", INCIDENT, officer).get_json()["id"]
    url = f"/api/v1/incidents/{incident}/triage"
    police = TRIAGE | {"outcome": "refer_to_police", "reference": "CR/1"}
    refused = york.post(url, police, manager)
    assert refused.status_code == 422
    assert "not one of this council's triage outcomes" in refused.get_json()["detail"]
    monitor = york.post(url, TRIAGE | {"outcome": "monitor"}, manager)
    assert monitor.status_code == 200, monitor.get_json()


@pytest.mark.parametrize(
    ("example", "code"),
    [
        ("the volume of correspondence a customer generates", "unreasonable_demands"),
        ("contacting us repeatedly about the same or similar issues", "unreasonable_persistence"),
        (
            "recording (photo, film or audio) face-to-face interactions with staff without "
            "lawful basis",
            "covert_recording",
        ),
        ("threatening emails and telephone calls", "aggressive_or_abusive"),
        ("any form of physical violence or threats of physical violence", "physical_violence"),
    ],
)
def test_some_examples_we_would_consider_unreasonable_or_aggressive_are_recorded_as_such(
    york, auth_headers, example, code
) -> None:
    client = york.test_client()
    officer = auth_headers("case_officer", user="u.officer")
    body = INCIDENT | {"behaviour_types": [code], "narrative": f"Example: {example}."}
    assert client.post("/api/v1/incidents", json=body, headers=officer).status_code == 201
    manager = auth_headers("customer_support_manager", user="u.csm")
    listed = client.get("/api/v1/incidents?kind=customer&ref=CRM-4001", headers=manager)
    [incident] = listed.get_json()["incidents"]
    assert incident["behaviour_types"] == [code]
    assert incident["behaviour_labels"] == [
        york.extensions["forewarn"].settings.label("behaviour_types", code)
    ]
    unknown = INCIDENT | {"behaviour_types": ["rudeness"]}
    assert client.post("/api/v1/incidents", json=unknown, headers=officer).status_code == 422
