"""A ciphertext moved to another row: the read fails loudly, the export goes on marked."""

from __future__ import annotations

import logging

from sidecar.storage.crypto import DAMAGED
from tests import factories
from tests.audit.conftest import sql

NEED = {"reason_code": "home_visit", "reason_text": "Visit on Tuesday about the repair"}


def two_flags_one_reason_moved(app, raw) -> tuple[str, str]:
    """Two flags on CRM-1; the second's reason is overwritten with the first's ciphertext."""
    state = app.extensions["forewarn"]
    with app.app_context(), state.database.transaction() as session:
        customer = factories.subject(session, "customer", "CRM-1")
        intact = factories.flag(session, state.keyring, customer, reason="Threw a chair").id
        moved = factories.flag(session, state.keyring, customer, reason="Kicked the door").id
    sql(
        raw,
        "UPDATE flags SET reason = (SELECT reason FROM flags WHERE id = :intact) WHERE id = :moved",
        intact=intact,
        moved=moved,
    )
    return intact, moved


def test_details_of_a_moved_ciphertext_are_a_500_naming_the_field_in_the_log(
    app, client, raw, auth_headers, caplog
) -> None:
    _, moved = two_flags_one_reason_moved(app, raw)
    officer = auth_headers("visiting_officer")
    client.post("/api/v1/subjects/customer/CRM-1/access-grants", json=NEED, headers=officer)
    caplog.set_level(logging.ERROR)
    response = client.get(f"/api/v1/flags/{moved}/details", headers=officer)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"].endswith("/damaged-record")
    assert "Threw a chair" not in response.get_data(as_text=True)
    assert f"flags.reason of row {moved}" in caplog.text


def test_a_sar_export_reads_past_a_damaged_field_and_marks_it(
    app, client, raw, auth_headers
) -> None:
    intact, moved = two_flags_one_reason_moved(app, raw)
    response = client.post(
        "/api/v1/subjects/customer/CRM-1/subject-access-export",
        json={"request_ref": "SAR-2026-3"},
        headers=auth_headers("privacy_officer"),
    )
    assert response.status_code == 200, response.get_json()
    export = response.get_json()
    assert export["damaged"] == [{"field": "flags.reason", "row": moved}]
    by_id = {flag["id"]: flag for flag in export["flags"]}
    assert set(by_id) == {intact, moved}
    text = response.get_data(as_text=True)
    assert DAMAGED in text
    assert text.count("Threw a chair") == 1
    assert "Kicked the door" not in text
