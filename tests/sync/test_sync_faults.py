"""Faults at the CRM's wire never leave a record older than what Forewarn holds.

Each test drives the outbox, the worker and reconciliation against a fake CRM that
misbehaves, then checks that every subject's status in the CRM equals Forewarn's and that
nothing waits for `sync requeue` (except a credential the identity provider refused).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from sidecar import create_app
from sidecar.register.models import Subject
from sidecar.sync.health import connector_health
from sidecar.sync.models import SyncCursor
from sidecar.sync.outbox import current_statuses, load_connectors
from sidecar.sync.reconcile import run_reconcile
from tests.connectors.fakes import FakeDataverse, FakeSalesforce, FakeWebhookReceiver
from tests.sync.test_sync import change_flag, worker

FAKES = {
    "dataverse": FakeDataverse,
    "salesforce": FakeSalesforce,
    "webhook": FakeWebhookReceiver,
}
# Connectors that sign in with an OAuth2 token (a webhook is signed with a shared secret).
TOKEN_KINDS = ("dataverse", "salesforce")
# The request that carries statuses, as inject() filters it.
WRITES = {
    "dataverse": {"method": "POST", "path": "$batch", "carrying": b"PATCH "},
    "salesforce": {"method": "POST", "path": "/composite", "carrying": b"composite/sobjects"},
    "webhook": {"method": "POST", "path": FakeWebhookReceiver.path},
}
API = {"dataverse": "/api/data/", "salesforce": "/services/data/", "webhook": "/hooks/"}
REFS = [f"CRM-F{i:03d}" for i in range(30)]


def started(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with FAKES[kind].start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        fake.seed("customer", *REFS)
        yield kind, fake


@pytest.fixture(params=sorted(FAKES))
def crm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from started(request.param, monkeypatch)


@pytest.fixture(params=TOKEN_KINDS)
def token_crm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from started(request.param, monkeypatch)


def app_for(make_settings: Any, kind: str, fake: Any, **connector: Any) -> Any:
    settings = make_settings(
        connectors={"crm": {"kind": kind, **fake.settings(**connector)}},
        sync={"backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.05, "max_attempts": 8},
    )
    return create_app(settings)


@pytest.fixture
def make_app(make_settings: Any) -> Iterator[Any]:
    apps: list[Any] = []

    def build(kind: str, fake: Any, **connector: Any) -> Any:
        apps.append(app_for(make_settings, kind, fake, **connector))
        return apps[-1]

    yield build
    for app in apps:
        app.extensions["forewarn"].database.dispose()


def drain(app: Any, worker_id: str = "w1", passes: int = 60) -> None:
    """Run passes until nothing is due (retries are due within the test's short backoff)."""
    state = app.extensions["forewarn"]
    for _ in range(passes):
        busy = worker(app, worker_id).run_once()[0].busy
        [health] = connector_health(state.database, state.settings, state.connectors)
        if not busy and health.pending == 0:
            return
        time.sleep(0.03)


def forewarn_holds(app: Any) -> dict[str, tuple[str, int]]:
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        return {
            status.subject_ref: (status.level, status.version)
            for _, status in current_statuses(session, state.settings)
        }


def assert_crm_matches_forewarn(app: Any, fake: Any) -> None:
    held = forewarn_holds(app)
    assert held
    crm = {}
    for ref in held:
        status = fake.status_of("customer", ref)
        crm[ref] = (status["level"], status["version"]) if status else None
    assert crm == held


def dead_letters(app: Any) -> list[tuple[str, str | None]]:
    with app.extensions["forewarn"].database.transaction() as session:
        rows = session.execute(
            select(SyncCursor.subject_id, SyncCursor.last_error).where(SyncCursor.state == "dead")
        )
        return list(rows)


def queued_reasons(app: Any) -> dict[str, str | None]:
    """Each subject waiting for another attempt, with the reason recorded for it."""
    with app.extensions["forewarn"].database.transaction() as session:
        rows = session.execute(
            select(Subject.ref, SyncCursor.last_error)
            .join(Subject, Subject.id == SyncCursor.subject_id)
            .where(SyncCursor.state == "retrying")
        )
        return {ref: error for ref, error in rows}


def churn(app: Any, rounds: int = 3) -> None:
    for round_ in range(rounds):
        for index, ref in enumerate(REFS):
            change_flag(app, ref, ("amber", "red", None)[(round_ + index) % 3])


def test_requests_the_crm_applies_after_the_worker_gave_up_never_win(crm, make_app) -> None:
    kind, fake = crm
    app = make_app(kind, fake, read_timeout=0.3, retry_attempts=1, batch_size=10)
    late = fake.inject(delay=0.7, times=3, **WRITES[kind])
    churn(app, rounds=1)
    drain(app)
    churn(app, rounds=2)
    drain(app)
    wait_for(lambda: late.applied == 3)
    drain(app)
    assert late.applied == 3, "the fake applied every request the worker gave up on"
    assert_crm_matches_forewarn(app, fake)
    assert dead_letters(app) == []


def test_a_401_spell_is_retried_and_loses_nothing(token_crm, make_app) -> None:
    kind, fake = token_crm
    app = make_app(kind, fake, retry_attempts=2)
    churn(app, rounds=1)
    fake.inject(401, body={"error": "invalid_token"}, times=12, path=API[kind])
    drain(app)
    assert_crm_matches_forewarn(app, fake)
    assert dead_letters(app) == []


def test_a_refused_credential_is_the_one_dead_letter_and_says_so(
    token_crm, make_app, monkeypatch
) -> None:
    kind, fake = token_crm
    monkeypatch.setenv(fake.secret_env, "not-the-secret")
    app = make_app(kind, fake)
    change_flag(app, REFS[0], "red")
    worker(app).run_once()
    [(_, error)] = dead_letters(app)
    assert "credential refused by the identity provider" in error


def test_a_503_spell_during_reconcile_names_and_requeues_every_record(crm, make_app) -> None:
    kind, fake = crm
    app = make_app(kind, fake, retry_attempts=1, max_retry_wait=0)
    churn(app, rounds=1)
    state = app.extensions["forewarn"]
    spell = fake.inject(503, body="unavailable", times=1000, path=API[kind])
    connector = load_connectors(state.settings)["crm"]
    flagged = set(forewarn_holds(app))
    report = run_reconcile(state.settings, state.database, "crm", connector, {"actor_id": "t"})
    assert report.delivered == 0 and report.failed + report.retry == len(flagged)
    assert {f.status.subject_ref for f in report.failures} == flagged
    reasons = queued_reasons(app)
    assert set(reasons) == flagged, "every record the CRM did not take is queued again"
    assert all(r and r.startswith("reconcile: ") and "503" in r for r in reasons.values()), reasons
    [health] = connector_health(state.database, state.settings, state.connectors, probe=False)
    assert health.retrying == len(flagged), "every undelivered record is back in the outbox"
    assert health.pending == len(REFS), "and due, with the subjects never flagged"
    assert health.never_reconciled is False
    spell.times = 0
    drain(app)
    assert_crm_matches_forewarn(app, fake)
    assert dead_letters(app) == []


def test_two_workers_with_late_requests_leave_every_record_current(
    crm, make_app, engine_kind
) -> None:
    if engine_kind != "postgresql":
        pytest.skip("several workers are supported on PostgreSQL; SQLite runs one")
    kind, fake = crm
    app = make_app(kind, fake, read_timeout=0.3, retry_attempts=1, batch_size=5)
    late = fake.inject(delay=0.7, times=4, **WRITES[kind])
    churn(app, rounds=3)
    threads = [threading.Thread(target=drain, args=(app, f"w{i}")) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: late.applied == 4)
    drain(app)
    assert_crm_matches_forewarn(app, fake)
    assert dead_letters(app) == []


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        time.sleep(0.05)
