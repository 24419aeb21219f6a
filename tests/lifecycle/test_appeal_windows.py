"""The appeal window at each council's length (Eastleigh 21 days, Workington 14), and the
list of windows still open, through HTTP."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sidecar.register import appeals, notices
from sidecar.register.context import ServiceContext
from sidecar.register.staff import Person
from sidecar.storage.database import utcnow
from tests.console.conftest import text
from tests.lifecycle.conftest import PROPOSAL

CSM = Person("u.csm", "Cara Support", ("customer_support_manager",))


@pytest.fixture(params=[21, 14], ids=["21 days (Eastleigh)", "14 days (Workington)"])
def settings(request, make_settings):
    return make_settings(policy={"appeal_window_days": request.param})


def _told(app, cases, days_ago: int, ref: str) -> str:
    """An active flag whose decision letter went out `days_ago` days ago."""
    flag_id = cases.active(subject={"kind": "customer", "ref": ref})
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        ctx = ServiceContext(session, state.settings, state.keyring, CSM)
        notices.issue_notice(ctx.at(utcnow() - timedelta(days=days_ago)), flag_id, "letter")
    return flag_id


def _windows(client, headers, **query) -> dict:
    reply = client.get("/api/v1/appeal-windows", query_string=query, headers=headers)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()


def test_the_letter_gives_the_window_and_an_appeal_on_its_last_day_is_in_time(
    app, cases, client, staff, settings
) -> None:
    days = settings.policy.appeal_window_days
    flag_id = _told(app, cases, days, "CRM-2001")
    today = date.today()
    letter = client.get(f"/api/v1/flags/{flag_id}/letters/1", headers=staff.csm)
    assert f"appeal in writing within {days} days" in letter.get_data(as_text=True)
    assert f"by <strong>{today.day} {today:%B %Y}</strong>" in letter.get_data(as_text=True)
    # Unless the settings say so (lifecycle.name_handler_in_window), no one is named yet.
    banner = client.get("/api/v1/subjects/customer/CRM-2001/banner", headers=staff.agent)
    assert banner.get_json()["flags"][0]["appeal"] == {"pending": False, "handling_manager": None}
    [window] = _windows(client, staff.csm)["windows"]
    assert (window["flag_id"], window["closes_on"]) == (flag_id, today.isoformat())
    reply = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer)
    assert reply.status_code == 201, reply.get_json()
    # With the appeal pending, the window is no longer waiting for one.
    assert _windows(client, staff.csm)["windows"] == []


def test_an_appeal_the_day_after_the_window_closes_is_refused(
    app, cases, client, staff, settings
) -> None:
    days = settings.policy.appeal_window_days
    flag_id = _told(app, cases, days + 1, "CRM-2001")
    closed = (date.today() - timedelta(days=1)).isoformat()
    assert _windows(client, staff.csm)["windows"] == []
    reply = client.post(f"/api/v1/flags/{flag_id}/appeals", json={}, headers=staff.officer)
    assert reply.status_code == 409
    assert reply.get_json()["window_closed"] == closed
    assert f"({days} days from the notice of" in reply.get_json()["detail"]
    posted = client.post(
        f"/api/v1/flags/{flag_id}/appeals", json={"received_on": closed}, headers=staff.officer
    )
    assert posted.status_code == 201, posted.get_json()


def test_open_windows_are_listed_closing_first_with_their_dates_and_paged(
    app, cases, client, staff, settings
) -> None:
    days = settings.policy.appeal_window_days
    today = date.today()
    newest = _told(app, cases, 0, "CRM-3001")
    oldest = _told(app, cases, days, "CRM-3002")
    middle = _told(app, cases, 3, "CRM-3003")
    _told(app, cases, days + 1, "CRM-3004")  # closed yesterday
    cases.active(subject={"kind": "customer", "ref": "CRM-3005"})  # not told yet
    body = _windows(client, staff.officer)
    assert (body["as_of"], body["window_days"], body["total"]) == (today.isoformat(), days, 3)
    assert [w["flag_id"] for w in body["windows"]] == [oldest, middle, newest]
    first = body["windows"][0]
    assert first["subject"] == {"kind": "customer", "ref": "CRM-3002"}
    assert first["level"] == PROPOSAL["level"]
    assert first["reference"].startswith("FW-")
    assert first["notice"] == {"method": "letter", "on": (today - timedelta(days=days)).isoformat()}
    assert [w["closes_on"] for w in body["windows"]] == [
        today.isoformat(),
        (today + timedelta(days=days - 3)).isoformat(),
        (today + timedelta(days=days)).isoformat(),
    ]
    pages = [_windows(client, staff.csm, per_page=2, page=n) for n in (1, 2, 3)]
    assert [p["pages"] for p in pages] == [2, 2, 2]
    assert [[w["flag_id"] for w in p["windows"]] for p in pages] == [[oldest, middle], [newest], []]
    refused = client.get("/api/v1/appeal-windows?per_page=500", headers=staff.csm)
    assert refused.status_code == 422
    assert "per_page" in refused.get_json()["detail"]
    # Withdrawing a flag closes its window.
    withdrawn = client.post(
        f"/api/v1/flags/{middle}/withdraw", json={"reason": "Moved away."}, headers=staff.csm
    )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    assert [w["flag_id"] for w in _windows(client, staff.csm)["windows"]] == [oldest, newest]


def test_the_console_lists_the_same_windows_for_whoever_lodges_appeals(
    app, cases, client, staff, settings
) -> None:
    days = settings.policy.appeal_window_days
    _told(app, cases, 2, "CRM-3001")
    closes = date.today() + timedelta(days=days - 2)
    assert client.get("/api/v1/appeal-windows", headers=staff.sm).status_code == 403
    assert client.get("/api/v1/appeal-windows", headers=staff.director).status_code == 403
    console = app.test_client()
    reply = console.post(
        "/auth/demo",
        json={"user": "u.csm", "name": "Cara Support", "roles": ["customer_support_manager"]},
    )
    assert reply.status_code == 200
    page = text(console.get("/console/appeals/windows"))
    assert f"within {days} days of being told" in page
    assert f"The appeal window closes {closes.day} {closes:%B %Y}" in page


@pytest.mark.parametrize("settings", [21], indirect=True, ids=["21 days"])
def test_the_list_reads_the_notices_by_their_date_index(app, engine_kind, settings) -> None:
    if engine_kind != "sqlite":
        pytest.skip("the plan is read from SQLite's EXPLAIN QUERY PLAN")
    database = app.extensions["forewarn"].database
    query = appeals.open_windows(appeals.window_start(date.today(), 21)).limit(25)
    sql = str(query.compile(database.engine, compile_kwargs={"literal_binds": True}))
    with database.engine.connect() as connection:
        plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert any("USING INDEX ix_flag_notices_issued_at_flag (issued_at>?)" in p for p in plan), plan
    assert not any("TEMP B-TREE" in p for p in plan), plan
