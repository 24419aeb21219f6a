"""Salesforce record Ids are kept in the database: a known subject is written with no lookup.

Each test drives the sync worker and reconciliation against the fake org over HTTP and
counts, at the fake, the Composite requests carrying Id queries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text, update

from connectors.base import Connector
from sidecar import create_app
from sidecar.register.models import Subject
from sidecar.storage.database import Database, utcnow
from sidecar.sync.models import CrmRecordId, StatusChange, SyncCursor
from sidecar.sync.outbox import load_connectors, requeue, statuses_of
from sidecar.sync.reconcile import reconcile
from sidecar.sync.record_ids import StoredRecordIds
from sidecar.sync.worker import SyncWorker
from tests.connectors.fakes import FakeSalesforce
from tests.factories import migrated_to
from tests.sync.test_sync import change_flag

REFS = [f"CRM-K{i:04d}" for i in range(300)]
IDS = [f"k{i:04d}" for i in range(len(REFS))]
REF = "CRM-K-FLAGGED"


@pytest.fixture
def salesforce(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSalesforce]:
    with FakeSalesforce.start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        fake.seed("customer", *REFS, REF)
        yield fake


@pytest.fixture
def synced_app(make_settings: Any, salesforce: FakeSalesforce) -> Iterator[Any]:
    settings = make_settings(
        connectors={"crm": {"kind": "salesforce", **salesforce.settings(retry_attempts=1)}},
        sync={"backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.05, "max_attempts": 3},
    )
    app = create_app(settings)
    yield app
    app.extensions["forewarn"].database.dispose()


def started_connector(app: Any) -> Connector:
    """The connector of a worker (or `sync reconcile`) just started: it has seen no record."""
    return load_connectors(app.extensions["forewarn"].settings)["crm"]


def lookups(fake: FakeSalesforce, since: int = 0) -> int:
    """Composite requests of Id queries the org received after its first `since` requests."""
    return sum(
        1
        for r in list(fake.requests)[since:]
        if r.path.endswith("/composite") and b"/query?" in r.body
    )


def write_burst(app: Any, version: int) -> None:
    """A status change for every subject of REFS at once, as an import makes them."""
    now = utcnow()
    with app.extensions["forewarn"].database.transaction() as session:
        if version == 1:
            rows = [
                {"id": i, "kind": "customer", "ref": ref, "status_version": 1}
                for i, ref in zip(IDS, REFS, strict=True)
            ]
            session.execute(insert(Subject), rows)
        else:
            session.execute(
                update(Subject).where(Subject.id.in_(IDS)).values(status_version=version)
            )
        session.execute(
            insert(StatusChange),
            [{"subject_id": i, "version": version, "created_at": now} for i in IDS],
        )


def drain(app: Any, connector: Connector, worker_id: str = "w1") -> None:
    state = app.extensions["forewarn"]
    w = SyncWorker(state.database, state.settings, {"crm": connector}, worker_id)
    while w.drain("crm").busy:
        pass


def reconcile_all(app: Any, connector: Connector, ids: list[str]) -> None:
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        pairs = list(statuses_of(session, state.settings, ids))
    reconcile(state.database, "crm", connector, pairs)


def delivered(app: Any) -> dict[str, tuple[str, int]]:
    with app.extensions["forewarn"].database.transaction() as session:
        rows = session.execute(
            select(SyncCursor.subject_id, SyncCursor.state, SyncCursor.delivered_version)
        )
        return {subject_id: (state, version) for subject_id, state, version in rows}


def kept_id(app: Any, ref: str) -> str | None:
    with app.extensions["forewarn"].database.transaction() as session:
        return session.scalar(
            select(CrmRecordId.record_id)
            .join(Subject, Subject.id == CrmRecordId.subject_id)
            .where(CrmRecordId.connector == "crm", Subject.ref == ref)
        )


def record_id_at(fake: FakeSalesforce, ref: str) -> str:
    [record] = [r for r in fake.records["Contact"].values() if r["Fw_CrmRef__c"] == ref]
    return str(record["Id"])


def test_a_burst_for_known_subjects_makes_no_lookup(synced_app, salesforce) -> None:
    write_burst(synced_app, 1)
    drain(synced_app, started_connector(synced_app))
    assert lookups(salesforce) == 1, "300 new subjects: one Composite request of Id queries"
    for version in (2, 3):
        sent = len(salesforce.requests)
        write_burst(synced_app, version)
        drain(synced_app, started_connector(synced_app))
        assert lookups(salesforce, sent) == 0, "every Id came from the table"
        assert set(delivered(synced_app).values()) == {("ok", version)}
        for ref in REFS[::37]:
            assert salesforce.status_of("customer", ref)["version"] == version
    sent = len(salesforce.requests)
    reconcile_all(synced_app, started_connector(synced_app), IDS)
    assert lookups(salesforce, sent) == 0, "the reconciliation reads the same table"
    assert salesforce.created == []


def test_a_reconciliation_fills_the_table_for_the_worker(synced_app, salesforce) -> None:
    write_burst(synced_app, 1)
    reconcile_all(synced_app, started_connector(synced_app), IDS)
    assert lookups(salesforce) == 1
    assert kept_id(synced_app, REFS[7]) == record_id_at(salesforce, REFS[7])
    sent = len(salesforce.requests)
    write_burst(synced_app, 2)
    drain(synced_app, started_connector(synced_app))
    assert lookups(salesforce, sent) == 0
    assert set(delivered(synced_app).values()) == {("ok", 2)}


@pytest.mark.parametrize("by", ["worker", "reconcile"])
def test_a_record_deleted_after_its_id_was_kept_ends_at_forewarns_status(
    synced_app, salesforce, by: str
) -> None:
    change_flag(synced_app, REF, "amber")
    drain(synced_app, started_connector(synced_app))
    old_id = kept_id(synced_app, REF)
    assert old_id == record_id_at(salesforce, REF)
    salesforce.delete("customer", REF)
    salesforce.seed("customer", REF)  # recreated in the org: the same key, a new Id
    version = change_flag(synced_app, REF, "red")
    connector = started_connector(synced_app)
    if by == "worker":
        drain(synced_app, connector)
    else:
        with synced_app.extensions["forewarn"].database.transaction() as session:
            subject_id = session.scalar(select(Subject.id).where(Subject.ref == REF))
        reconcile_all(synced_app, connector, [subject_id])
    held = salesforce.status_of("customer", REF)
    assert (held["level"], held["version"]) == ("red", version)
    assert set(delivered(synced_app).values()) == {("ok", version)}
    assert kept_id(synced_app, REF) == record_id_at(salesforce, REF) != old_id
    assert salesforce.created == []


def test_a_record_deleted_for_good_waits_as_not_found_never_dead(synced_app, salesforce) -> None:
    change_flag(synced_app, REF, "amber")
    drain(synced_app, started_connector(synced_app))
    salesforce.delete("customer", REF, "INVALID_CROSS_REFERENCE_KEY")
    version = change_flag(synced_app, REF, "red")
    drain(synced_app, started_connector(synced_app))
    with synced_app.extensions["forewarn"].database.transaction() as session:
        cursor = session.scalars(select(SyncCursor)).one()
        assert (cursor.state, cursor.last_error) == (
            "not_found",
            "no Contact with Fw_CrmRef__c = this key",
        )
    assert kept_id(synced_app, REF) is None, "the stale Id is dropped"
    salesforce.seed("customer", REF)
    assert requeue(synced_app.extensions["forewarn"].database, "crm") == 1
    drain(synced_app, started_connector(synced_app))
    held = salesforce.status_of("customer", REF)
    assert (held["level"], held["version"]) == ("red", version)
    assert kept_id(synced_app, REF) == record_id_at(salesforce, REF)


def test_two_workers_look_each_subject_up_once(synced_app, salesforce, engine_kind) -> None:
    write_burst(synced_app, 1)
    workers = [(started_connector(synced_app), f"w{n}") for n in range(2)]

    def run_both() -> None:
        if engine_kind == "sqlite":
            # SQLite runs one worker at a time: the second takes over from the first.
            for connector, worker_id in workers:
                drain(synced_app, connector, worker_id)
            return
        threads = [threading.Thread(target=drain, args=(synced_app, *w)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    run_both()
    queried = b"".join(
        r.body
        for r in salesforce.requests
        if r.path.endswith("/composite") and b"/query?" in r.body
    )
    assert all(queried.count(f"%27{ref}%27".encode()) == 1 for ref in REFS)
    assert set(delivered(synced_app).values()) == {("ok", 1)}
    sent = len(salesforce.requests)
    write_burst(synced_app, 2)
    workers = [(started_connector(synced_app), f"w{n}") for n in range(2, 4)]
    run_both()
    assert lookups(salesforce, sent) == 0
    assert set(delivered(synced_app).values()) == {("ok", 2)}


def test_an_upgraded_register_keeps_record_ids(engine_kind: str, tmp_path: Path) -> None:
    if engine_kind != "sqlite":
        pytest.skip("the upgrade runs the same SQL on both engines; checked on SQLite here")
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrated_to(database, "0025")
    at = "2026-11-30 09:00:00.000000"
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO subjects (id, kind, ref, created_at, status_version) "
                "VALUES ('s1', 'customer', 'CRM-OLD', :t, 3)"
            ),
            {"t": at},
        )
        connection.execute(
            text(
                "INSERT INTO sync_cursors (connector, subject_id, delivered_version, "
                "attempted_version, state, attempts, next_attempt_at, updated_at) "
                "VALUES ('crm', 's1', 3, 3, 'ok', 0, :t, :t)"
            ),
            {"t": at},
        )
    database.migrate()
    store = StoredRecordIds(database, "crm")
    assert store.known("customer", ["CRM-OLD"]) == {}
    store.learn("customer", {"CRM-OLD": "003OLD", "CRM-UNKNOWN": "003NONE"})
    store.learn("customer", {"CRM-OLD": "003NEW"})
    assert store.known("customer", ["CRM-OLD", "CRM-UNKNOWN"]) == {"CRM-OLD": "003NEW"}
    store.forget("customer", {"CRM-OLD": "003OLD"})
    assert store.known("customer", ["CRM-OLD"]) == {"CRM-OLD": "003NEW"}, "not the stale one"
    store.forget("customer", {"CRM-OLD": "003NEW"})
    assert store.known("customer", ["CRM-OLD"]) == {}
    with database.engine.connect() as connection:
        cursor = connection.execute(text("SELECT state, delivered_version FROM sync_cursors")).one()
    database.dispose()
    assert tuple(cursor) == ("ok", 3)
