"""The outbox and sync worker against a fake Dataverse speaking the real Web API."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from sidecar import create_app
from sidecar.register.models import Flag, Subject
from sidecar.register.status import status_changed
from sidecar.runtime import StartupError
from sidecar.storage.database import utcnow
from sidecar.sync.health import connector_health
from sidecar.sync.models import StatusChange, SyncCursor
from sidecar.sync.outbox import current_statuses, requeue
from sidecar.sync.reconcile import reconcile, run_reconcile
from sidecar.sync.worker import SyncWorker
from tests import factories
from tests.connectors.fakes.dataverse import FakeDataverse

SECRET_REASON = "SENTINEL-REASON-threw a chair at the housing officer"
SECRET_MEASURES = "SENTINEL-MEASURES-meet only at the civic centre"


@pytest.fixture
def dataverse(monkeypatch: pytest.MonkeyPatch):
    with FakeDataverse.start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def synced_app(make_settings, dataverse: FakeDataverse):
    settings = make_settings(
        # The outbox owns retries across passes: the connector gives up after one attempt.
        connectors={
            "dynamics": {
                "kind": "dataverse",
                **dataverse.settings(retry_attempts=1, max_retry_wait=0),
            }
        },
        sync={"backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.05, "max_attempts": 3},
    )
    app = create_app(settings)
    yield app
    app.extensions["forewarn"].database.dispose()


def change_flag(app: Any, ref: str, level: str | None, **fields: Any) -> int:
    """Make `level` the subject's only active flag (None ends it); queue the new status."""
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        subject = factories.subject(session, "customer", ref)
        for flag in session.execute(select(Flag).where(Flag.subject_id == subject.id)).scalars():
            flag.state, flag.ended_at = "withdrawn", utcnow()
        if level is not None:
            factories.flag(
                session,
                state.keyring,
                subject,
                level=level,
                categories=tuple(fields.get("categories", ["physical_violence"])),
                restrictions=tuple(fields.get("restrictions", [])),
                reason=SECRET_REASON,
                control_measures=SECRET_MEASURES,
                responsible_manager="m.jones",
                proposed_by="c.officer",
                review_due=date(2027, 11, 1),
                announce=False,
            )
        session.flush()
        status_changed(session, subject)
        return subject.status_version


def worker(app: Any, worker_id: str = "w1") -> SyncWorker:
    state = app.extensions["forewarn"]
    return SyncWorker(state.database, state.settings, state.connectors, worker_id)


def cursor_states(app: Any) -> Counter[str]:
    with app.extensions["forewarn"].database.transaction() as session:
        return Counter(session.execute(select(SyncCursor.state)).scalars())


def test_a_status_change_reaches_the_crm_and_only_its_status(synced_app, dataverse) -> None:
    dataverse.seed("customer", "CRM-1")
    change_flag(
        synced_app,
        "CRM-1",
        "red",
        restrictions=[{"code": "visits_in_pairs", "note": None, "ends_on": None}],
    )
    [report] = worker(synced_app).run_once()
    assert report.delivered == 1
    crm = dataverse.status_of("customer", "CRM-1")
    assert crm["level"] == "red"
    assert crm["categories"] == ["Physical violence"]
    assert crm["restrictions"] == ["Visits in pairs"]
    assert crm["review_due"] == "2027-11-01"
    assert crm["version"] == 1
    assert b"SENTINEL" not in dataverse.received_bytes()
    assert cursor_states(synced_app) == {"ok": 1}
    with synced_app.extensions["forewarn"].database.transaction() as session:
        assert session.execute(select(StatusChange)).first() is None, "delivered changes pruned"


def test_only_the_newest_version_is_sent_and_an_ended_flag_clears_the_crm(
    synced_app, dataverse
) -> None:
    dataverse.seed("customer", "CRM-2")
    change_flag(synced_app, "CRM-2", "amber")
    change_flag(synced_app, "CRM-2", "red")
    newest = change_flag(synced_app, "CRM-2", None)
    [report] = worker(synced_app).run_once()
    assert (report.claimed, report.delivered) == (1, 1)
    assert dataverse.status_of("customer", "CRM-2")["level"] == "none"
    assert dataverse.status_of("customer", "CRM-2")["version"] == newest
    assert len(dataverse.applied) == 1


def test_a_missing_crm_record_is_reported_never_created(synced_app, dataverse) -> None:
    change_flag(synced_app, "CRM-GONE", "red")
    [report] = worker(synced_app).run_once()
    assert report.not_found == 1
    assert dataverse.created == []
    state = synced_app.extensions["forewarn"]
    [health] = connector_health(state.database, state.settings, state.connectors)
    assert health.not_found == 1 and health.pending == 0


def test_throttling_is_retried_after_retry_after_then_dead_lettered_and_requeued(
    synced_app, dataverse
) -> None:
    dataverse.seed("customer", "CRM-3")
    change_flag(synced_app, "CRM-3", "amber")
    throttle = dataverse.inject(
        429, headers={"Retry-After": "2"}, method="POST", path="$batch", times=50
    )
    [report] = worker(synced_app).run_once()
    assert report.retrying == 1
    with synced_app.extensions["forewarn"].database.transaction() as session:
        row = session.execute(select(SyncCursor)).scalar_one()
        wait = (row.next_attempt_at - utcnow()).total_seconds()
    assert 1 < wait <= 2, "the CRM's Retry-After must be honoured"
    assert worker(synced_app).run_once()[0].claimed == 0, "not due before Retry-After"

    state = synced_app.extensions["forewarn"]
    for _ in range(2):  # make the retry due now and fail again until max_attempts (3)
        with state.database.transaction() as session:
            session.execute(select(SyncCursor)).scalar_one().next_attempt_at = utcnow()
        worker(synced_app).run_once()
    assert cursor_states(synced_app) == {"dead": 1}
    [health] = connector_health(state.database, state.settings, state.connectors)
    assert health.dead == 1

    throttle.times = 0  # the CRM recovers
    assert requeue(state.database, "dynamics") == 1
    time.sleep(2.1)  # the connector holds back until the CRM's Retry-After has passed
    assert worker(synced_app).run_once()[0].delivered == 1
    assert dataverse.status_of("customer", "CRM-3")["level"] == "amber"


def test_reconcile_pushes_every_subject_including_cleared_ones(synced_app, dataverse) -> None:
    dataverse.seed("customer", "CRM-4", "CRM-5")
    change_flag(synced_app, "CRM-4", "red")
    change_flag(synced_app, "CRM-5", "amber")
    change_flag(synced_app, "CRM-5", None)
    state = synced_app.extensions["forewarn"]
    report = run_reconcile(
        state.settings,
        state.database,
        "dynamics",
        state.connectors["dynamics"],
        {"actor_id": "cli:test"},
    )
    assert (report.delivered, report.failed) == (2, 0)
    assert dataverse.status_of("customer", "CRM-4")["level"] == "red"
    assert dataverse.status_of("customer", "CRM-5")["level"] == "none"
    assert worker(synced_app).run_once()[0].delivered == 0, "reconciled versions are not resent"


def cursors(app: Any) -> dict[str, tuple[str, int]]:
    """Each customer's cursor as (state, delivered version), by CRM reference."""
    with app.extensions["forewarn"].database.transaction() as session:
        rows = session.execute(
            select(Subject.ref, SyncCursor.state, SyncCursor.delivered_version).join(
                Subject, Subject.id == SyncCursor.subject_id
            )
        )
        return {ref: (state, version) for ref, state, version in rows}


def test_reconcile_records_deliveries_and_never_overwrites_what_the_worker_delivered(
    synced_app, dataverse
) -> None:
    state = synced_app.extensions["forewarn"]
    dataverse.seed("customer", "CRM-7", "CRM-8", "CRM-9")
    for ref in ("CRM-7", "CRM-8", "CRM-9", "CRM-GONE"):
        change_flag(synced_app, ref, "amber")
    dataverse.fail_record("customer", "CRM-9")
    worker(synced_app).run_once()
    assert cursors(synced_app) == {
        "CRM-7": ("ok", 1),
        "CRM-8": ("ok", 1),
        "CRM-9": ("dead", -1),
        "CRM-GONE": ("not_found", -1),
    }
    with state.database.transaction() as session:
        statuses = list(current_statuses(session, state.settings))
    # While the reconciliation is on its way, the worker delivers a newer CRM-7.
    change_flag(synced_app, "CRM-7", "red")
    assert worker(synced_app).run_once()[0].delivered == 1
    dataverse.heal_record("customer", "CRM-9")

    report = reconcile(state.database, "dynamics", state.connectors["dynamics"], statuses)

    assert (report.delivered, report.superseded, report.not_found) == (2, 1, 1)
    assert dataverse.status_of("customer", "CRM-7")["level"] == "red", "never overwritten"
    assert cursors(synced_app) == {
        "CRM-7": ("ok", 2),  # the CRM refused the reconciliation's older copy
        "CRM-8": ("ok", 1),
        "CRM-9": ("ok", 1),  # the dead letter is cleared by the delivery
        "CRM-GONE": ("not_found", -1),  # still recorded: the CRM has no such record
    }
    [health] = connector_health(state.database, state.settings, state.connectors)
    assert (health.pending, health.dead, health.not_found) == (0, 0, 1)
    assert worker(synced_app).run_once()[0].claimed == 0, "nothing delivered is sent again"


def test_an_invalid_connector_stops_start_up(make_settings) -> None:
    settings = make_settings(connectors={"dynamics": {"kind": "dataverse"}})
    with pytest.raises(StartupError, match="dynamics"):
        create_app(settings)
    settings = make_settings(connectors={"crm": {"kind": "carrier-pigeon"}})
    with pytest.raises(StartupError, match="unknown kind 'carrier-pigeon'"):
        create_app(settings)


def test_sync_api_is_for_admins(synced_app, dataverse, launch_token) -> None:
    client = synced_app.test_client()

    def bearer(*roles: str) -> dict[str, str]:
        reply = synced_app.test_client().post(
            "/auth/launch", json={"token": launch_token(f"u.{roles[0]}", roles)}
        )
        return {"Authorization": f"Bearer {reply.get_json()['access_token']}"}

    assert client.get("/api/v1/sync/status", headers=bearer("agent")).status_code == 403
    reply = client.get("/api/v1/sync/status", headers=bearer("admin"))
    assert reply.status_code == 200
    assert reply.get_json()["connectors"][0]["name"] == "dynamics"
    dataverse.seed("customer", "CRM-6")
    change_flag(synced_app, "CRM-6", "red")
    reply = client.post(
        "/api/v1/sync/reconcile", json={"connector": "dynamics"}, headers=bearer("admin")
    )
    assert reply.status_code == 200 and reply.get_json()["delivered"] == 1
    reply = client.post(
        "/api/v1/sync/reconcile", json={"connector": "nope"}, headers=bearer("admin")
    )
    assert reply.status_code == 404 and "nope" in reply.get_json()["detail"]


def test_two_workers_never_deliver_a_version_twice(synced_app, dataverse, engine_kind) -> None:
    if engine_kind != "postgresql":
        pytest.skip("several workers are supported on PostgreSQL; SQLite runs one")
    refs = [f"CRM-P{i}" for i in range(40)]
    dataverse.seed("customer", *refs)
    for round_ in range(3):
        for ref in refs:
            change_flag(synced_app, ref, "amber" if round_ % 2 == 0 else "red")

    def drain(worker_id: str) -> None:
        w = worker(synced_app, worker_id)
        for _ in range(20):
            if not w.run_once()[0].busy:
                break

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sent = Counter((key, columns["fw_statusversion"]) for _, key, columns in dataverse.applied)
    assert sent and max(sent.values()) == 1, "a version was delivered twice"
    for ref in refs:
        assert dataverse.status_of("customer", ref) == {
            **dataverse.status_of("customer", ref),
            "level": "amber",
            "version": 3,
        }
