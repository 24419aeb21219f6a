"""Panel severity and frequency, and a withdrawal's reason: sealed, shown by the details rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sidecar.storage.crypto import KeyRing
from sidecar.storage.database import Database, StorageError
from tests.conftest import POSTGRES_URL
from tests.factories import migrated_to
from tests.lifecycle.conftest import ASSESSMENT

SEVERITY = "SEVMARK-4417 broke a colleague's wrist"
FREQUENCY = "FREQMARK-9023 weekly since the bereavement"
WITHDRAWAL = "WDMARK-5561 the customer's dementia diagnosis explains the calls"


def _raw_rows(app, table: str) -> str:
    """Every row of a table as the database holds it, for looking for plain text."""
    with app.extensions["forewarn"].database.engine.connect() as connection:
        rows = connection.execute(text(f"SELECT * FROM {table}")).all()
    return json.dumps([[str(v) for v in row] for row in rows])


def _marked_panel(cases, staff) -> str:
    flag_id = cases.propose()
    marked = ASSESSMENT | {"severity": SEVERITY, "frequency": FREQUENCY}
    for headers, role in (
        (staff.csm, "customer_support_manager"),
        (staff.sm, "senior_manager"),
        (staff.hs, "hs_manager"),
    ):
        response = cases.client.post(
            f"/api/v1/flags/{flag_id}/panel-decisions",
            json={"role": role, "decision": "approve", **marked},
            headers=headers,
        )
        assert response.status_code == 201, response.get_json()
    return flag_id


def test_severity_and_frequency_are_sealed_and_shown_only_to_the_case(
    app, cases, client, staff
) -> None:
    flag_id = _marked_panel(cases, staff)
    legal = staff("legal", user="u.legal", name="Lee Legal")
    outsider = staff("case_officer", user="u.outsider", name="Oz Outsider")
    for reader in (legal, outsider):
        record = client.get(f"/api/v1/flags/{flag_id}", headers=reader)
        assert record.status_code == 200
        body = record.get_data(as_text=True)
        assert "SEVMARK" not in body and "FREQMARK" not in body
        assert record.get_json()["confidential_included"] is False
    involved = cases.read(flag_id, staff.hs)
    assessments = involved["confidential"]["panel_assessments"]
    assert {(a["severity"], a["frequency"]) for a in assessments} == {(SEVERITY, FREQUENCY)}
    for table in ("panel_decisions", "flag_history", "audit_entries"):
        stored = _raw_rows(app, table)
        assert "SEVMARK" not in stored and "FREQMARK" not in stored, table


def test_the_withdrawal_reason_is_sealed_and_not_in_history_or_audit(
    app, cases, client, staff
) -> None:
    flag_id = cases.active()
    response = client.post(
        f"/api/v1/flags/{flag_id}/withdraw", json={"reason": WITHDRAWAL}, headers=staff.csm
    )
    assert response.status_code == 200
    legal = staff("legal", user="u.legal", name="Lee Legal")
    record = client.get(f"/api/v1/flags/{flag_id}", headers=legal)
    assert "WDMARK" not in record.get_data(as_text=True)
    withdrawn = [e for e in record.get_json()["history"] if e["action"] == "withdrawn"]
    assert withdrawn[0]["why"].startswith("withdrawn")
    involved = cases.read(flag_id, staff.csm)
    assert involved["confidential"]["withdrawal_reason"] == WITHDRAWAL
    for table in ("flags", "flag_history", "audit_entries"):
        assert "WDMARK" not in _raw_rows(app, table), table


def _insert_old_case(url: str) -> None:
    """A flag panelled and withdrawn by a version that kept these values in plain text."""
    engine = create_engine(url)
    now = "2026-01-02 10:00:00.000000"
    with engine.begin() as connection:
        run = connection.execute
        run(
            text(
                "INSERT INTO subjects (id, kind, ref, created_at, status_version) "
                "VALUES ('s1', 'customer', 'CRM-OLD', :t, 1)"
            ),
            {"t": now},
        )
        run(
            text(
                "INSERT INTO flags (id, subject_id, state, level, categories, restrictions, "
                "handling, responsible_manager, review_months, provenance, proposed_by, "
                "proposed_at, ended_at) VALUES ('f1', 's1', 'withdrawn', 'red', '[]', '[]', '', "
                "'u.m', 12, 'register', 'u.p', :t, :t)"
            ),
            {"t": now},
        )
        run(
            text(
                "INSERT INTO panel_decisions (id, flag_id, role, decision, decided_by, "
                "decided_by_name, decided_at, severity, frequency) VALUES ('p1', 'f1', "
                "'hs_manager', 'approve', 'u.hs', 'H', :t, :s, :f)"
            ),
            {"t": now, "s": SEVERITY, "f": FREQUENCY},
        )
        for seq, action, why, facts in (
            (
                1,
                "panel_approve",
                "hs_manager approved",
                {"role": "hs_manager", "severity": SEVERITY, "frequency": FREQUENCY},
            ),
            (2, "withdrawn", WITHDRAWAL, {}),
        ):
            run(
                text(
                    "INSERT INTO flag_history (id, flag_id, seq, at, actor_id, actor_name, "
                    "action, from_state, to_state, why, facts) VALUES (:id, 'f1', :seq, :t, "
                    "'u.csm', 'C', :action, 'proposed', 'withdrawn', :why, :facts)"
                ),
                {
                    "id": f"h{seq}",
                    "seq": seq,
                    "t": now,
                    "action": action,
                    "why": why,
                    "facts": json.dumps(facts),
                },
            )
    engine.dispose()


@pytest.fixture
def old_database(engine_kind: str, tmp_path: Path) -> Iterator[Database]:
    """A database at the revision before sealing, holding a case in plain text."""
    if engine_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        assert POSTGRES_URL
        url = POSTGRES_URL
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    database = Database(url)
    migrated_to(database, "0017")
    _insert_old_case(url)
    yield database
    # Leave the schema current for the tests that follow on the same database.
    database.migrate(KeyRing.generate())
    database.dispose()


def test_the_migration_seals_values_older_versions_kept_in_plain_text(
    old_database: Database,
) -> None:
    database = old_database
    ring = KeyRing.generate()
    database.migrate(ring)
    with database.engine.connect() as connection:
        severity, frequency = connection.execute(
            text("SELECT severity, frequency FROM panel_decisions")
        ).one()
        sealed_reason = connection.execute(text("SELECT withdrawal_reason FROM flags")).scalar()
        history = connection.execute(text("SELECT why, facts FROM flag_history")).all()
        with pytest.raises(Exception, match="append-only"):
            connection.execute(text("UPDATE flag_history SET why = 'x'"))
    cell = {"table": "panel_decisions", "row_id": "p1"}
    assert ring.decrypt(severity, column="severity", **cell) == SEVERITY
    assert ring.decrypt(frequency, column="frequency", **cell) == FREQUENCY
    assert (
        ring.decrypt(sealed_reason, table="flags", row_id="f1", column="withdrawal_reason")
        == WITHDRAWAL
    )
    stored = json.dumps([[str(v) for v in row] for row in history])
    for marker in ("SEVMARK", "FREQMARK", "WDMARK"):
        assert marker not in stored
    assert "hs_manager" in stored


def test_the_migration_refuses_to_run_on_plain_values_without_the_keys(
    old_database: Database,
) -> None:
    with pytest.raises(StorageError, match="forewarn init"):
        old_database.migrate()
