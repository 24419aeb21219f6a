"""What an audit entry holds: who, what, which subject, why, from where, and the chain."""

from __future__ import annotations

import itertools
import json

from sqlalchemy import select

from sidecar.audit import writer as audit
from sidecar.audit.models import AuditEntry
from tests import factories
from tests.audit.conftest import forewarn, sign_in


def entries(app) -> list[AuditEntry]:
    with app.extensions["forewarn"].database.transaction() as session:
        return list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())


def test_sign_in_records_actor_client_and_chain(app, client, launch_token) -> None:
    token = launch_token("u.vo", ("visiting_officer", "agent"), "Val Officer")
    response = client.post(
        "/auth/launch", json={"token": token}, headers={"User-Agent": "CRM-Browser/1.0"}
    )
    assert response.status_code == 200
    [entry] = entries(app)
    assert (entry.seq, entry.action, entry.outcome) == (1, "sign_in", "allowed")
    assert (entry.actor_id, entry.actor_name) == ("u.vo", "Val Officer")
    assert entry.actor_roles == "agent,visiting_officer"
    assert (entry.client_ip, entry.user_agent) == ("127.0.0.1", "CRM-Browser/1.0")
    assert entry.via == "widget"
    assert entry.prev_hash == audit.GENESIS
    assert entry.entry_hash == audit.entry_hash(
        {c.name: getattr(entry, c.name) for c in AuditEntry.__table__.columns}
    )


def test_denied_attempt_is_recorded_with_why(app, client, auth_headers) -> None:
    headers = auth_headers("agent", user="u.nosy", name="Nosy Agent")
    response = client.get("/api/v1/audit?kind=customer&ref=C9", headers=headers)
    assert response.status_code == 403
    denied = entries(app)[-1]
    assert (denied.action, denied.outcome, denied.actor_id) == ("audit.read", "denied", "u.nosy")
    assert denied.outcome_reason == "no role held grants audit.read"
    assert denied.via == "widget"


def test_subject_flag_and_purpose_are_recorded(app, record_many) -> None:
    with app.app_context():
        audit.record(
            audit.AuditEvent(
                action="details.view",
                subject_kind="customer",
                subject_ref="CRM-77",
                flag_id="f" * 32,
                purpose_code="home_visit",
                purpose_text="visit on Tuesday about the boiler repair",
                actor_id="u.vo",
                actor_name="Val",
                actor_roles="visiting_officer",
                via="widget",
            )
        )
    entry = entries(app)[-1]
    assert (entry.subject_kind, entry.subject_ref) == ("customer", "CRM-77")
    assert entry.flag_id == "f" * 32
    assert (entry.purpose_code, entry.purpose_text) == (
        "home_visit",
        "visit on Tuesday about the boiler repair",
    )


def test_consecutive_entries_chain_to_each_other(app, record_many) -> None:
    record_many(5)
    chain = entries(app)
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.entry_hash


def test_no_token_and_no_confidential_content_ever_reaches_the_trail(
    app, client, launch_token, settings, instance_dir, database_url
) -> None:
    state = app.extensions["forewarn"]
    secret_reason = "punched the housing officer at the front door"
    with state.database.transaction() as session:
        factories.flag(
            session,
            state.keyring,
            factories.subject(session, "customer", "CRM-5"),
            reason=secret_reason,
            responsible_manager="u.csm",
            proposed_by="u.co",
        )

    launch = launch_token("u.aud", ("auditor",), "Audrey")
    signed_in = client.post(
        "/auth/launch", json={"token": launch}, headers={"User-Agent": f"Widget token={launch}"}
    )
    access = signed_in.get_json()["access_token"]
    headers = {"Authorization": f"Bearer {access}", "User-Agent": f"Bearer {access}"}
    assert client.get("/api/v1/audit?kind=customer&ref=CRM-5", headers=headers).status_code == 200
    privacy = sign_in(app, launch_token("u.dpo", ("privacy_officer",), "Dee"))
    sar = client.post(
        "/api/v1/subjects/customer/CRM-5/subject-access-export",
        json={"request_ref": "SAR-5"},
        headers=privacy,
    )
    assert sar.status_code == 200
    with app.app_context():
        # A caller that pastes a token into a purpose is still not allowed to store it.
        audit.record(
            audit.AuditEvent(
                action="grant",
                subject_kind="customer",
                subject_ref="CRM-5",
                purpose_code="other",
                purpose_text=f"asked by IT, token {access}",
                actor_id="u.vo",
            )
        )
    exported = forewarn("audit", "export", instance=instance_dir, database_url=database_url)
    assert exported.returncode == 0, exported.stderr

    stored = [
        str(getattr(entry, column.name))
        for entry in entries(app)
        for column in AuditEntry.__table__.columns
    ]
    listed = client.get("/api/v1/audit?limit=500", headers=headers).get_data(as_text=True)
    # The export's access events come from the trail; its flags section rightly holds the
    # person's own reasons, which is what a subject access request is for.
    from_trail = json.dumps(sar.get_json()["access_events"])
    assert sar.get_json()["flags"][0]["confidential"]["reason"] == secret_reason
    for text in ("\n".join(stored), listed, from_trail, exported.stdout):
        assert launch not in text and access not in text
        assert access.split(".")[2] not in text
        assert secret_reason not in text and "punched" not in text
    assert audit.TOKEN_WITHHELD in "\n".join(stored)


def test_over_long_client_values_are_shortened_not_refused(app, client, launch_token) -> None:
    response = client.post(
        "/auth/launch",
        json={"token": launch_token("u.long")},
        headers={"User-Agent": "A" * 5000},
    )
    assert response.status_code == 200
    assert entries(app)[-1].user_agent == "A" * 512
