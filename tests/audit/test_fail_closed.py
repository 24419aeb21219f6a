"""Fail closed: when an entry cannot be written, the request gets 503 and nothing else."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask, current_app
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sidecar.api.endpoint import Input, endpoint
from sidecar.audit import writer as audit
from sidecar.register.models import Subject
from tests.audit.conftest import forewarn, metric, sign_in

FAILURES = "forewarn_audit_write_failures_total"


def assert_refused_and_nothing_disclosed(app: Flask, launch_token, headers: dict) -> None:
    """The audited routes answer 503 problem+json, with no token, session or data."""
    client = app.test_client()
    before = metric(app, FAILURES)

    signed_in = client.post("/auth/launch", json={"token": launch_token("u.late", ("auditor",))})
    assert signed_in.status_code == 503
    assert signed_in.mimetype == "application/problem+json"
    body = signed_in.get_json()
    # Sign-in's first write is the launch token's replay record, so on a read-only store
    # it stops there, before the audit write; either way it fails closed.
    assert body["type"].rsplit("/", 1)[1] in {"audit-unavailable", "storage-unavailable"}
    assert "access_token" not in body
    assert "Set-Cookie" not in signed_in.headers

    listed = client.get("/api/v1/audit", headers=headers)
    assert listed.status_code == 503
    assert "entries" not in listed.get_json() and "sign_in" not in listed.get_data(as_text=True)

    sar = client.get("/api/v1/subjects/customer/CRM-1/sar-export", headers=headers)
    assert sar.status_code == 503 and "access_events" not in sar.get_json()

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["audit_store"].startswith("not writable")
    assert metric(app, FAILURES) >= before + 2  # the two audited reads at least


def assert_recovered(app: Flask, launch_token) -> None:
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    signed_in = client.post("/auth/launch", json={"token": launch_token("u.back", ("auditor",))})
    assert signed_in.status_code == 200


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a file read-only for real, even for root (who ignores mode bits)."""
    mode = path.stat().st_mode
    path.chmod(0o444)
    immutable = os.geteuid() == 0
    if immutable:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a file read-only")
        subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)


def test_read_only_sqlite_file_refuses_requests(
    engine_kind, make_app, database_url, launch_token
) -> None:
    if engine_kind != "sqlite":
        pytest.skip("a read-only database file is an SQLite failure")
    app = make_app()
    headers = sign_in(app, launch_token("u.aud", ("auditor",)))
    database = app.extensions["forewarn"].database
    database.dispose()
    path = Path(make_url(database_url).database)
    with read_only(path):
        # The app keeps running: connections opened from now on find the file read-only.
        assert_refused_and_nothing_disclosed(app, launch_token, headers)
    database.dispose()
    assert_recovered(app, launch_token)


def test_read_only_sqlite_file_stops_a_cli_export(
    engine_kind, database_url, instance_dir, make_app, launch_token
) -> None:
    if engine_kind != "sqlite":
        pytest.skip("a read-only database file is an SQLite failure")
    app = make_app()
    sign_in(app, launch_token("u.aud", ("auditor",)))
    app.extensions["forewarn"].database.dispose()
    with read_only(Path(make_url(database_url).database)):
        result = forewarn("audit", "export", instance=instance_dir, database_url=database_url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "could not be recorded in the audit trail, so nothing was exported" in result.stderr


RESTRICTED_ROLE = "test_audit_no_insert"


@pytest.fixture
def restricted_url(engine_kind, database_url) -> Iterator[str]:
    """A PostgreSQL login that may do everything except add audit entries."""
    if engine_kind != "postgresql":
        pytest.skip("privileges are a PostgreSQL failure")
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    database = make_url(database_url).database

    def drop() -> None:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": RESTRICTED_ROLE}
            ).scalar()
            if exists:
                connection.execute(text(f"DROP OWNED BY {RESTRICTED_ROLE}"))
                connection.execute(text(f"DROP ROLE {RESTRICTED_ROLE}"))

    drop()
    with admin.connect() as connection:
        for statement in (
            f"CREATE ROLE {RESTRICTED_ROLE} LOGIN",
            f'GRANT CONNECT ON DATABASE "{database}" TO {RESTRICTED_ROLE}',
            f"GRANT USAGE ON SCHEMA public TO {RESTRICTED_ROLE}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
            f"TO {RESTRICTED_ROLE}",
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {RESTRICTED_ROLE}",
        ):
            connection.execute(text(statement))
    yield make_url(database_url).set(username=RESTRICTED_ROLE).render_as_string(False)
    drop()
    admin.dispose()


def test_revoked_insert_privilege_refuses_requests(
    restricted_url, database_url, make_app, make_settings, launch_token
) -> None:
    app = make_app(make_settings().model_copy(update={"database_url": restricted_url}))
    headers = sign_in(app, launch_token("u.aud", ("auditor",)))
    app.extensions["forewarn"].database.dispose()
    admin = create_engine(database_url)
    with admin.begin() as connection:
        connection.execute(text(f"REVOKE INSERT ON audit_entries FROM {RESTRICTED_ROLE}"))
    try:
        assert_refused_and_nothing_disclosed(app, launch_token, headers)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"GRANT INSERT ON audit_entries TO {RESTRICTED_ROLE}"))
        admin.dispose()
    assert_recovered(app, launch_token)


@contextmanager
def chain_lock_held(database_url: str, engine_kind: str) -> Iterator[None]:
    """Another session holds the chain's lock (a stuck writer, a long migration)."""
    if engine_kind == "sqlite":
        connection = sqlite3.connect(make_url(database_url).database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    engine = create_engine(database_url)
    with engine.connect() as connection, connection.begin():
        connection.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


def test_lock_timeout_refuses_requests(engine_kind, database_url, make_app, launch_token) -> None:
    app = make_app(lock_timeout_ms=200)
    headers = sign_in(app, launch_token("u.aud", ("auditor",)))
    with chain_lock_held(database_url, engine_kind):
        assert_refused_and_nothing_disclosed(app, launch_token, headers)
    assert_recovered(app, launch_token)


def test_a_process_stuck_holding_the_chain_turn_refuses_requests(
    engine_kind, database_url, make_app, launch_token
) -> None:
    """On SQLite the processes' group commits queue on a lock file; a stuck holder is a 503."""
    if engine_kind != "sqlite":
        pytest.skip("PostgreSQL writers queue on the head row's lock (tested above)")
    app = make_app(lock_timeout_ms=200)
    headers = sign_in(app, launch_token("u.aud", ("auditor",)))
    turn = Path(f"{make_url(database_url).database}-chain.lock")
    with turn.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            response = app.test_client().get("/api/v1/audit", headers=headers)
            assert response.status_code == 503
            assert response.get_json()["type"].endswith("/audit-unavailable")
            assert "entries" not in response.get_json()
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
    assert app.test_client().get("/api/v1/audit", headers=headers).status_code == 200


def test_waiting_callers_all_fail_closed_together(
    engine_kind, database_url, make_app, launch_token
) -> None:
    app = make_app(lock_timeout_ms=300)
    headers = sign_in(app, launch_token("u.aud", ("auditor",)))
    statuses: list[int] = []

    def read_trail_once(n: int) -> None:
        # Reading the trail writes nothing before its own audit entry.
        response = app.test_client().get(f"/api/v1/audit?actor=u.{n}", headers=headers)
        statuses.append(response.status_code)

    with chain_lock_held(database_url, engine_kind):
        threads = [threading.Thread(target=read_trail_once, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert statuses == [503] * 12
    assert metric(app, FAILURES) == 12


class _IncidentNote(Input):
    ref: str


decisions = Blueprint("audit_test_decisions", __name__)


@endpoint(
    decisions,
    "/test/decisions",
    methods=["POST"],
    action="incident.create",
    body=_IncidentNote,
    summary="A state change recorded atomically with its entry (test only)",
)
def _decide(body: _IncidentNote) -> Any:
    state = current_app.extensions["forewarn"]
    with state.database.transaction() as session:
        session.add(Subject(kind="customer", ref=body.ref))
        audit.append(
            session,
            audit.AuditEvent(
                action="subject.create", subject_kind="customer", subject_ref=body.ref
            ),
        )
    return {"created": body.ref}, 201


def test_a_decision_whose_entry_cannot_be_written_is_not_made(
    engine_kind, database_url, make_app, launch_token, raw
) -> None:
    app = make_app(lock_timeout_ms=200)
    app.register_blueprint(decisions)
    headers = sign_in(app, launch_token("u.co", ("case_officer",)))
    client = app.test_client()
    with chain_lock_held(database_url, engine_kind):
        refused = client.post("/test/decisions", json={"ref": "CRM-9"}, headers=headers)
    assert refused.status_code == 503
    assert refused.get_json()["type"].endswith("/audit-unavailable")
    assert metric(app, FAILURES) == 1
    with raw.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM subjects")).scalar() == 0
    made = client.post("/test/decisions", json={"ref": "CRM-9"}, headers=headers)
    assert made.status_code == 201
    with raw.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM subjects")).scalar() == 1


def test_readiness_is_unavailable_when_an_audit_write_cannot_commit(
    engine_kind, make_app, database_url, launch_token
) -> None:
    """The store's journal made immutable: every audited request is refused, so is /readyz."""
    if engine_kind != "sqlite":
        pytest.skip("read-only files are an SQLite failure")
    app = make_app()
    headers = sign_in(app, launch_token("u.aud", ("auditor",)))
    client = app.test_client()
    path = Path(make_url(database_url).database + "-wal")
    assert path.exists()
    with read_only(path):
        assert client.get("/api/v1/audit", headers=headers).status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["audit_store"].startswith("not writable")
    app.extensions["forewarn"].database.dispose()
    assert_recovered(app, launch_token)
