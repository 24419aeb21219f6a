"""Eastleigh 30: "During this period [the 21 days to appeal] the customer account will show
the chosen flag as well as the name of the Senior Manager handling the case", from the
decision letter on, where the settings say so (lifecycle.name_handler_in_window)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from sidecar.register.case_models import Notice
from sidecar.register.models import Subject
from sidecar.register.status import crm_status, crm_statuses
from sidecar.storage.crypto import KeyRing
from sidecar.storage.database import Database, utcnow
from tests.factories import migrated_to
from tests.identity.test_routes import WITHHELD_NOTICE

BANNER = "/api/v1/subjects/customer/CRM-2001/banner"


@pytest.fixture
def settings(make_settings):
    return make_settings(lifecycle={"name_handler_in_window": True})


def _crm(app, ref: str) -> dict:
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        subject = session.scalars(select(Subject).where(Subject.ref == ref)).one()
        single = crm_status(session, state.settings, subject)
        assert crm_statuses(session, state.settings, [subject])[subject.id] == single
        return single


def _appeal_line(client, staff) -> dict:
    reply = client.get(BANNER, headers=staff.agent)
    assert reply.status_code == 200, reply.get_json()
    [flag] = reply.get_json()["flags"]
    return flag["appeal"]


def test_the_letter_and_the_banner_name_the_senior_manager_from_the_letter_on(
    app, cases, client, staff
) -> None:
    flag_id = cases.active()
    assert _appeal_line(client, staff) == {"pending": False, "handling_manager": None}
    sent = client.post(
        f"/api/v1/flags/{flag_id}/notice", json={"method": "letter"}, headers=staff.csm
    )
    assert sent.status_code == 201, sent.get_json()
    # The panel's Senior Manager handles the case; the letter tells the person so.
    letter = client.get(f"/api/v1/flags/{flag_id}/letters/1", headers=staff.csm)
    assert "the Senior Manager handling your case is Sam Senior" in letter.get_data(as_text=True)
    assert _appeal_line(client, staff) == {"pending": False, "handling_manager": "Sam Senior"}
    record = cases.read(flag_id)
    [told] = [e for e in record["history"] if e["action"] == "notice_letter"]
    assert told["facts"]["handling_manager"] == "u.sm"
    # The CRM is told the name too, with no appeal pending.
    status = _crm(app, "CRM-2001")
    assert (status["appeal_pending"], status["appeal_handler"]) == (False, "Sam Senior")


def test_the_name_stays_while_an_appeal_is_pending_and_goes_when_the_window_has_closed(
    app, cases, client, staff, settings
) -> None:
    flag_id = cases.notified()
    lodged = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer)
    assert lodged.status_code == 201, lodged.get_json()
    assert _appeal_line(client, staff) == {"pending": True, "handling_manager": "Sam Senior"}

    other = cases.notified(subject={"kind": "customer", "ref": "CRM-2002"})
    days = settings.policy.appeal_window_days
    with app.extensions["forewarn"].database.transaction() as session:
        session.execute(
            update(Notice)
            .where(Notice.flag_id == other)
            .values(issued_at=utcnow() - timedelta(days=days + 1))
        )
    reply = client.get("/api/v1/subjects/customer/CRM-2002/banner", headers=staff.agent)
    assert reply.get_json()["flags"][0]["appeal"] == {"pending": False, "handling_manager": None}
    assert _crm(app, "CRM-2001")["appeal_handler"] == "Sam Senior"
    assert _crm(app, "CRM-2002")["appeal_handler"] is None


def test_a_withheld_letter_names_no_one(app, cases, client, staff) -> None:
    flag_id = cases.active()
    body = WITHHELD_NOTICE | {"director_permission_by": "u.dir"}
    withheld = client.post(f"/api/v1/flags/{flag_id}/notice", json=body, headers=staff.csm)
    assert withheld.status_code == 201, withheld.get_json()
    assert _appeal_line(client, staff) == {"pending": False, "handling_manager": None}


def test_an_sqlite_register_with_notices_upgrades_and_keeps_them(engine_kind, tmp_path) -> None:
    if engine_kind != "sqlite":
        pytest.skip("the rebuild of a table with rows is SQLite's concern")
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrated_to(database, "0021")
    with sqlite3.connect(tmp_path / "old.db") as raw:  # as the older version wrote it
        raw.execute(
            "INSERT INTO flag_notices (id, flag_id, method, issued_by, issued_at) "
            "VALUES ('n1', 'f1', 'letter', 'u.csm', '2026-11-30 09:00:00.000000')"
        )
    database.migrate(KeyRing.generate())
    with database.engine.connect() as connection:
        row = connection.execute(
            text("SELECT method, handling_manager, handling_manager_name FROM flag_notices")
        ).one()
        indexes = connection.execute(text("PRAGMA index_list(flag_notices)")).all()
    database.dispose()
    assert tuple(row) == ("letter", None, "")
    assert "ix_flag_notices_issued_at_flag" in {index[1] for index in indexes}
