"""A flag's whole life, driven through the case API, as each fake CRM ends up holding it."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar import create_app
from sidecar.sync.worker import SyncWorker
from tests.connectors.fakes import FakeDataverse, FakeSalesforce, FakeWebhookReceiver
from tests.lifecycle.conftest import ASSESSMENT, PROPOSAL, Cases, Staff

FAKES = {"dataverse": FakeDataverse, "salesforce": FakeSalesforce, "webhook": FakeWebhookReceiver}
REF = PROPOSAL["subject"]["ref"]
NARRATIVE = "Shouted that he would wait for the officer outside her home."
RECIPIENT = "Mr Terence Example, 4 Mill Lane"
APPEAL_GROUNDS = "He says he was provoked by a neighbour and is sorry."


@pytest.fixture(params=sorted(FAKES))
def crm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    with FAKES[request.param].start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        fake.seed("customer", REF)
        yield request.param, fake


@pytest.fixture
def life(make_settings, crm, launch_token):
    kind, fake = crm
    app = create_app(make_settings(connectors={"crm": {"kind": kind, **fake.settings()}}))
    app.config["TESTING"] = True
    client = app.test_client()

    def sign_in(*roles: str, user: str, name: str | None = None) -> dict:
        reply = app.test_client().post(
            "/auth/launch", json={"token": launch_token(user, roles, name)}
        )
        assert reply.status_code == 200, reply.get_json()
        return {"Authorization": f"Bearer {reply.get_json()['access_token']}"}

    staff = Staff(sign_in)
    state = app.extensions["forewarn"]
    worker = SyncWorker(state.database, state.settings, state.connectors)
    yield client, staff, Cases(client, staff), worker, fake
    state.database.dispose()


def synced(worker: SyncWorker, fake: Any) -> dict[str, Any]:
    [report] = worker.run_once()
    assert report.dead == 0 and report.not_found == 0, report
    return fake.status_of("customer", REF)


def test_activate_appeal_vary_and_remove_reach_the_crm_as_status_only(life) -> None:
    client, staff, cases, worker, fake = life

    incident = client.post(
        "/api/v1/incidents",
        json={
            "subject": PROPOSAL["subject"],
            "occurred_at": "2026-11-02T10:15:00Z",
            "channel": "in_person",
            "behaviour_types": ["threats"],
            "narrative": NARRATIVE,
            "warning_given": True,
        },
        headers=staff.officer,
    )
    assert incident.status_code == 201, incident.get_json()
    flag_id = cases.propose(incident_ids=[incident.get_json()["id"]])
    assert synced(worker, fake) is None, "a proposal is not a flag: the CRM hears nothing"

    cases.activate(flag_id)
    crm = synced(worker, fake)
    assert crm["level"] == "red"
    assert crm["categories"] == ["Physical violence"]
    assert crm["restrictions"] == ["Visits in pairs", "Time-limited calls: 10 minutes"]
    assert crm["appeal_pending"] is False

    notice = client.post(
        f"/api/v1/flags/{flag_id}/notice",
        json={"method": "letter", "recipient_name": RECIPIENT},
        headers=staff.csm,
    )
    assert notice.status_code == 201, notice.get_json()
    appeal = client.post(
        f"/api/v1/flags/{flag_id}/appeals",
        json={"grounds": APPEAL_GROUNDS},
        headers=staff.officer,
    )
    assert appeal.status_code == 201, appeal.get_json()
    assert synced(worker, fake)["appeal_pending"] is True

    decided = client.post(
        f"/api/v1/flags/{flag_id}/appeals/{appeal.get_json()['id']}/decision",
        json={
            "outcome": "varied",
            "reasons": "Calls are enough of a restriction now.",
            "level": "amber",
            "restrictions": [{"code": "time_limited_calls", "note": "10 minutes"}],
        },
        headers=staff("service_director", user="u.dir2", name="Dana Uninvolved"),
    )
    assert decided.status_code in (200, 201), decided.get_json()
    crm = synced(worker, fake)
    assert (crm["level"], crm["appeal_pending"]) == ("amber", False)
    assert crm["restrictions"] == ["Time-limited calls: 10 minutes"]

    assigned = client.post(
        f"/api/v1/flags/{flag_id}/review-assignments",
        json={"reviewers": ["u.csm"]},
        headers=staff("customer_support_manager", user="u.csm.lead", name="Lee Lead"),
    )
    assert assigned.status_code == 201, assigned.get_json()
    removed = client.post(
        f"/api/v1/flags/{flag_id}/reviews",
        json={"outcome": "remove", "notes": "No incidents in a year."},
        headers=staff.csm,
    )
    assert removed.status_code in (200, 201), removed.get_json()
    crm = synced(worker, fake)
    assert crm["level"] == "none" and crm["categories"] == [] and crm["restrictions"] == []

    received = fake.received_bytes()
    for secret in (
        PROPOSAL["reason"],
        PROPOSAL["control_measures"],
        PROPOSAL["reasonable_adjustments"],
        ASSESSMENT["proportionality"],
        NARRATIVE,
        RECIPIENT,
        APPEAL_GROUNDS,
        "Calls are enough of a restriction now.",
        "No incidents in a year.",
    ):
        assert secret.encode() not in received, f"confidential text reached the CRM: {secret}"
    assert fake.created == []


ADJUSTMENTS = ["Contact by letter in large print", "Allow extra time on calls"]
# Each CRM's opt-in setting for the adjustments, and the column or field the org added.
ADJUSTMENTS_SETTING = {
    "dataverse": ("adjustments_column", "fw_adjustments"),
    "salesforce": ("adjustments_field", "Fw_Adjustments__c"),
    "webhook": ("send_adjustments", True),
}


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_reasonable_adjustments_reach_the_crm_once_a_column_is_configured(
    kind: str, make_settings, launch_token, monkeypatch: pytest.MonkeyPatch
) -> None:
    setting, value = ADJUSTMENTS_SETTING[kind]
    column = value if isinstance(value, str) else "adjustments"
    schema = {setting: value} if kind != "webhook" else {}
    # One CRM as it was (no adjustments column) and one whose schema gained the column.
    with FAKES[kind].start() as existing, FAKES[kind].start(**schema) as added:
        for fake in (existing, added):
            for name, secret in fake.environ.items():
                monkeypatch.setenv(name, secret)
            fake.seed("customer", REF)
        connectors = {
            "existing": {"kind": kind, **existing.settings()},
            "added": {"kind": kind, **added.settings(**{setting: value})},
        }
        app = create_app(make_settings(connectors=connectors))
        client = app.test_client()

        def sign_in(*roles: str, user: str, name: str | None = None) -> dict:
            reply = client.post("/auth/launch", json={"token": launch_token(user, roles, name)})
            return {"Authorization": f"Bearer {reply.get_json()['access_token']}"}

        cases = Cases(client, Staff(sign_in))
        state = app.extensions["forewarn"]
        worker = SyncWorker(state.database, state.settings, state.connectors)
        try:
            cases.activate(cases.propose(adjustments=ADJUSTMENTS))
            reports = worker.run_once()
            assert all(r.dead == 0 and r.not_found == 0 for r in reports), reports
            assert added.status_of("customer", REF)["level"] == "red"
            assert added.adjustments_of("customer", REF, column) == ADJUSTMENTS
            assert existing.status_of("customer", REF)["level"] == "red", "off by default"
            assert existing.adjustments_of("customer", REF, column) is None
            assert ADJUSTMENTS[0].encode() not in existing.received_bytes()
            for fake in (existing, added):
                assert PROPOSAL["reasonable_adjustments"].encode() not in fake.received_bytes()
        finally:
            state.database.dispose()
