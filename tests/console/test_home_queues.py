"""The home page's queue counts: bounded, and right on a register upgraded from before
flags carried when their notice was given."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, text

from sidecar.register.models import Incident, Subject
from sidecar.storage.database import Database, utcnow
from tests.console.conftest import text as page_text
from tests.factories import migrated_to


def test_a_queue_past_a_thousand_says_so_rather_than_counting_on(app, staff) -> None:
    now = utcnow()
    with app.extensions["forewarn"].database.transaction() as session:
        session.execute(
            insert(Subject).values(id="s-many", kind="customer", ref="CRM-9999", created_at=now)
        )
        session.execute(
            insert(Incident),
            [
                {
                    "id": f"i{n:05d}",
                    "subject_id": "s-many",
                    "reported_by": "u.agent",
                    "occurred_at": now,
                    "recorded_at": now,
                    "channel": "in_person",
                    "behaviour_types": ["threats"],
                    "warning_given": True,
                }
                for n in range(1001)
            ],
        )
    manager = staff("senior_manager")
    assert "Incidents to triage: over 1,000" in page_text(manager.get("/"))
    with app.extensions["forewarn"].database.transaction() as session:
        session.execute(text("DELETE FROM incidents WHERE id = 'i00000'"))
    assert "Incidents to triage: 1,000" in page_text(manager.get("/"))


def test_an_upgraded_register_knows_which_flags_were_told(engine_kind: str, tmp_path: Path) -> None:
    if engine_kind != "sqlite":
        pytest.skip("the upgrade runs the same SQL on both engines; checked on SQLite here")
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrated_to(database, "0021")
    at = "2026-01-02 10:00:00.000000"
    with database.engine.begin() as connection:
        run = connection.execute
        run(
            text(
                "INSERT INTO subjects (id, kind, ref, created_at, status_version) "
                "VALUES ('s1', 'customer', 'CRM-OLD', :t, 1)"
            ),
            {"t": at},
        )
        for flag_id in ("told", "untold"):
            run(
                text(
                    "INSERT INTO flags (id, subject_id, state, level, categories, restrictions, "
                    "handling, responsible_manager, review_months, provenance, proposed_by, "
                    "proposed_at, activated_at) VALUES (:id, 's1', 'active', 'red', '[]', '[]', "
                    "'', 'u.m', 12, 'register', 'u.p', :t, :t)"
                ),
                {"id": flag_id, "t": at},
            )
        run(
            text(
                "INSERT INTO flag_notices (id, flag_id, method, issued_by, issued_at) "
                "VALUES ('n1', 'told', 'letter', 'u.csm', :t)"
            ),
            {"t": at},
        )
    database.migrate()
    with database.engine.begin() as connection:
        told = dict(connection.execute(text("SELECT id, notice_at FROM flags")).all())
    database.dispose()
    assert told["told"] is not None and str(told["told"]).startswith("2026-01-02 10:00")
    assert told["untold"] is None
