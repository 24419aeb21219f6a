"""Council IT's pages: sync health with dead letters and requeue, and system status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from sidecar.audit.models import AuditEntry
from sidecar.settings import Settings
from sidecar.sync.models import SyncCursor
from tests.connectors.fakes.webhook import ROTATED_SECRET, FakeWebhookReceiver
from tests.console.conftest import csrf_token, post_form, text
from tests.sync.test_sync import change_flag, worker

CONNECTOR = "crm_webhook"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver.start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def settings(make_settings, receiver) -> Settings:
    """The default config with one CRM connector: a real webhook receiver on loopback."""
    return make_settings(connectors={CONNECTOR: {"kind": "webhook", **receiver.settings()}})


def _dead_letter(app, receiver, ref: str = "CRM-5001") -> None:
    """A status the CRM refuses for good (its secret was changed), so the worker gives up."""
    receiver.seed("customer", ref)
    secret, receiver.secret = receiver.secret, ROTATED_SECRET
    change_flag(app, ref, "red")
    worker(app).run_once()
    receiver.secret = secret


def _states(app) -> list[str]:
    with app.extensions["forewarn"].database.transaction() as session:
        return list(session.scalars(select(SyncCursor.state)))


def _audit(app, action: str) -> list[AuditEntry]:
    with app.extensions["forewarn"].database.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list(session.scalars(query))


def test_sync_health_names_each_dead_letter_and_why(app, staff, receiver) -> None:
    _dead_letter(app, receiver)
    page = text(staff("admin").get("/console/sync"))
    assert "crm_webhook webhook connector" in page
    assert "The CRM Answering" in page
    assert "Dead letters 1" in page
    assert "Customer CRM-5001" in page
    assert "HTTP 401" in page.split("Why it failed")[1]
    assert "Send them again" in page
    assert "span>" not in page


def test_requeue_sends_the_dead_letters_again_and_is_audited(app, staff, receiver) -> None:
    _dead_letter(app, receiver)
    assert _states(app) == ["dead"]
    admin = staff("admin", user="u.ira", name="Ira IT")
    reply = post_form(admin, f"/console/sync/{CONNECTOR}/requeue", {}, token_from="/console/sync")
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/console/sync"
    assert _states(app) == ["retrying"]
    [entry] = _audit(app, "sync.requeue")
    assert entry.actor_id == "u.ira"
    assert entry.outcome_reason == "connector crm_webhook: 1 statuses requeued"
    page = text(admin.get("/console/sync"))
    assert "1 status for crm_webhook will be sent again on the next pass." in page
    worker(app).run_once()
    assert _states(app) == ["ok"]
    assert receiver.status_of("customer", "CRM-5001")["level"] == "red"


def test_a_requeue_without_the_form_token_or_for_no_such_connector_changes_nothing(
    app, staff, receiver
) -> None:
    _dead_letter(app, receiver)
    admin = staff("admin")
    reply = admin.post(f"/console/sync/{CONNECTOR}/requeue", data={})
    assert reply.status_code == 400
    assert "Your form could not be sent" in text(reply)
    token = csrf_token(admin.get("/console/sync").get_data(as_text=True))
    reply = admin.post("/console/sync/nope/requeue", data={"csrf_token": token})
    assert reply.status_code == 404
    assert "No connector is named 'nope'." in text(reply)
    assert _states(app) == ["dead"]
    assert _audit(app, "sync.requeue") == []


def test_the_home_page_counts_dead_letters_for_it(app, staff, receiver) -> None:
    _dead_letter(app, receiver, "CRM-5001")
    _dead_letter(app, receiver, "CRM-5002")
    page = text(staff("admin").get("/"))
    assert "Dead letters: 2" in page
    assert "Dead letters" not in text(staff("auditor").get("/"))


def test_system_status_shows_readiness_keys_and_checkpoints(app, staff) -> None:
    runtime = app.extensions["forewarn"]
    page = text(staff("admin").get("/console/system"))
    assert "Ready Forewarn can serve requests." in page
    assert "Database OK" in page and "Access log store OK" in page
    assert f"Data key in use {runtime.keyring.primary}" in page
    from sidecar.audit import checkpoints

    signing = checkpoints.key_id(runtime.audit_keys.signing_key().public_key())
    assert f"Audit signing key {signing}" in page
    assert "Newest signed checkpoint at entry 1" in page and f"key {signing}" in page
    assert "Copied to" in page and "audit-checkpoints.jsonl" in page
    # Ids only: no key material.
    assert "BEGIN PRIVATE KEY" not in page


def test_system_status_names_a_failing_check(app, staff) -> None:
    admin = staff("admin")
    runtime = app.extensions["forewarn"]
    runtime.keyring.keys.pop(runtime.keyring.primary)
    page = text(admin.get("/console/system"))
    assert "Not ready" in page
    assert "Data keys Failing no data key" in page
    assert "span>" not in page
