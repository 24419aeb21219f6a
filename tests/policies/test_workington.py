"""Workington Town Council's unacceptable behaviour procedure, rule by rule, through the API.

Each test name is the procedure's own words (section 5 of shared/policies/003).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from sidecar import create_app
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
