"""Access grants and details: a recorded business need first, the audit entry before the body."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from sidecar.audit_models import AuditEntry
from sidecar.lookup_models import AccessGrant
from tests.lookup import factories
from tests.lookup.conftest import audit_store_broken

GRANTS = "/api/v1/subjects/{}/{}/access-grants"
DETAILS = "/api/v1/flags/{}/details"
NEED = {"reason_code": "home_visit", "reason_text": "Visit on Tuesday about the repair"}


def entries(app, action: str) -> list[AuditEntry]:
    with app.extensions["forewarn"].database.transaction() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
        )


def grant_count(app) -> int:
    with app.extensions["forewarn"].database.transaction() as session:
        return session.scalar(select(func.count()).select_from(AccessGrant))


@pytest.fixture
def red_flag(register):
    with register() as (session, ring):
        customer = factories.subject(session, "customer", "CRM-1")
        flag = factories.flag(
            session,
            ring,
            customer,
            restrictions=({"code": "visits_in_pairs"},),
            handling="Visit in pairs only",
            responsible_manager="u.manager",
        )
        factories.staff(session, "u.manager", "Morgan Manager", "senior_manager")
        factories.staff(session, "u.csm", "Casey Support", "customer_support_manager")
        factories.panel(session, flag, "customer_support_manager", "u.csm", "Casey Support")
        factories.incident(session, ring, flag, narrative="Named witness: Jo Bloggs")
    return flag


class TestGrants:
    def test_grant_is_201_for_this_user_and_subject_and_audited_with_its_purpose(
        self, app, client, auth_headers, settings
    ) -> None:
        before = datetime.now(UTC)
        response = client.post(
            GRANTS.format("customer", "CRM-1"), json=NEED, headers=auth_headers("visiting_officer")
        )
        assert response.status_code == 201
        body = response.get_json()
        assert set(body) == {"grant_id", "expires_at"}
        expires = datetime.fromisoformat(body["expires_at"])
        hours = settings.policy.grant_hours
        assert (
            before + timedelta(hours=hours) <= expires <= datetime.now(UTC) + timedelta(hours=hours)
        )
        [entry] = entries(app, "access_grant.create")
        assert (entry.actor_id, entry.subject_kind, entry.subject_ref) == (
            "u.visiting_officer",
            "customer",
            "CRM-1",
        )
        assert (entry.purpose_code, entry.purpose_text) == (
            NEED["reason_code"],
            NEED["reason_text"],
        )
        assert body["grant_id"] in entry.outcome_reason

    def test_a_visit_date_makes_it_last_to_the_end_of_that_day(
        self, client, auth_headers, settings
    ) -> None:
        zone = ZoneInfo(settings.lookup.timezone)
        tomorrow = datetime.now(zone).date() + timedelta(days=1)
        response = client.post(
            GRANTS.format("customer", "CRM-1"),
            json={**NEED, "visit_date": tomorrow.isoformat()},
            headers=auth_headers("visiting_officer"),
        )
        assert response.status_code == 201
        expires = datetime.fromisoformat(response.get_json()["expires_at"]).astimezone(zone)
        assert (expires.date(), expires.time()) == (
            tomorrow + timedelta(days=1),
            datetime.min.time(),
        )

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"reason_code": "curiosity"}, "reason_code"),
            ({"reason_text": "because"}, "reason_text"),
            ({"visit_date": "2001-01-01"}, "visit_date"),
            ({"visit_date": "next week"}, "visit_date"),
            ({"purpose": "x"}, "purpose"),
        ],
    )
    def test_bad_input_is_422_naming_the_field_and_writes_nothing(
        self, app, client, auth_headers, change, field
    ) -> None:
        response = client.post(
            GRANTS.format("customer", "CRM-1"),
            json={**NEED, **change},
            headers=auth_headers("visiting_officer"),
        )
        assert response.status_code == 422
        assert field in [e["field"] for e in response.get_json()["errors"]]
        assert grant_count(app) == 0
        assert entries(app, "access_grant.create") == []

    def test_roles_without_details_request_are_refused_and_the_refusal_audited(
        self, app, client, auth_headers
    ) -> None:
        for role in ("agent", "auditor", "admin"):
            response = client.post(
                GRANTS.format("customer", "CRM-1"), json=NEED, headers=auth_headers(role)
            )
            assert response.status_code == 403, role
        assert grant_count(app) == 0
        denied = [e for e in entries(app, "details.request") if e.outcome == "denied"]
        assert len(denied) == 3

    def test_an_unrecordable_grant_is_503_and_not_granted(
        self, app, client, auth_headers, database_url
    ) -> None:
        headers = auth_headers("visiting_officer")
        with audit_store_broken(database_url):
            response = client.post(GRANTS.format("customer", "CRM-1"), json=NEED, headers=headers)
        assert response.status_code == 503
        assert grant_count(app) == 0


class TestDetails:
    def test_without_a_grant_or_relationship_is_403_and_the_attempt_audited(
        self, app, client, auth_headers, red_flag
    ) -> None:
        response = client.get(DETAILS.format(red_flag.id), headers=auth_headers("visiting_officer"))
        assert response.status_code == 403
        assert "Punched" not in response.get_data(as_text=True)
        [entry] = entries(app, "details.read")
        assert (entry.outcome, entry.flag_id, entry.subject_ref) == ("denied", red_flag.id, "CRM-1")
        assert entry.outcome_reason == (
            "no live access grant for this subject and no relationship to the flag"
        )

    def test_with_a_grant_the_details_come_after_their_audit_entry(
        self, app, client, auth_headers, red_flag
    ) -> None:
        headers = auth_headers("visiting_officer")
        assert (
            client.post(GRANTS.format("customer", "CRM-1"), json=NEED, headers=headers).status_code
            == 201
        )
        response = client.get(DETAILS.format(red_flag.id), headers=headers)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        body = response.get_json()
        assert body["reason"] == "Punched an officer at the housing office"
        assert body["control_measures"] == "Visits in pairs; meet at the office"
        assert body["restrictions"] == [
            {"code": "visits_in_pairs", "label": "Visits in pairs", "ends_on": None}
        ]
        assert body["responsible_manager"] == {"id": "u.manager", "name": "Morgan Manager"}
        [incident] = body["incidents"]
        assert incident["channel"] == "In person"
        assert incident["behaviour"] == ["Threats", "Physical violence"]
        assert "Jo Bloggs" not in response.get_data(as_text=True)
        assert body["decision"]["panel"][0]["by"] == "Casey Support"
        [entry] = entries(app, "details.read")
        assert (entry.outcome, entry.flag_id, entry.purpose_code, entry.purpose_text) == (
            "allowed",
            red_flag.id,
            NEED["reason_code"],
            NEED["reason_text"],
        )

    def test_a_grant_for_one_subject_never_opens_anothers_details(
        self, client, register, auth_headers, red_flag
    ) -> None:
        with register() as (session, ring):
            other = factories.flag(session, ring, factories.subject(session, "customer", "CRM-2"))
        headers = auth_headers("visiting_officer")
        client.post(GRANTS.format("customer", "CRM-2"), json=NEED, headers=headers)
        assert client.get(DETAILS.format(other.id), headers=headers).status_code == 200
        assert client.get(DETAILS.format(red_flag.id), headers=headers).status_code == 403
        someone_else = auth_headers("visiting_officer", user="u.other")
        assert client.get(DETAILS.format(other.id), headers=someone_else).status_code == 403

    def test_an_expired_grant_opens_nothing(self, app, client, auth_headers, red_flag) -> None:
        headers = auth_headers("visiting_officer")
        client.post(GRANTS.format("customer", "CRM-1"), json=NEED, headers=headers)
        with app.extensions["forewarn"].database.transaction() as session:
            session.execute(
                update(AccessGrant).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert client.get(DETAILS.format(red_flag.id), headers=headers).status_code == 403

    def test_a_grant_does_not_open_a_flag_the_banner_does_not_show(
        self, client, register, auth_headers
    ) -> None:
        with register() as (session, ring):
            proposal = factories.flag(session, ring, factories.subject(session), state="proposed")
        headers = auth_headers("visiting_officer")
        client.post(GRANTS.format("customer", "CRM-1"), json=NEED, headers=headers)
        assert client.get(DETAILS.format(proposal.id), headers=headers).status_code == 403

    def test_the_responsible_manager_reads_without_a_grant(
        self, client, auth_headers, red_flag
    ) -> None:
        headers = auth_headers("senior_manager", user="u.manager")
        assert client.get(DETAILS.format(red_flag.id), headers=headers).status_code == 200

    def test_roles_that_may_not_request_details_get_403_even_when_involved(
        self, client, auth_headers, red_flag
    ) -> None:
        for role in ("agent", "auditor", "admin"):
            headers = auth_headers(role, user="u.manager")
            assert client.get(DETAILS.format(red_flag.id), headers=headers).status_code == 403

    def test_unknown_flag_is_404_and_the_attempt_audited(self, app, client, auth_headers) -> None:
        response = client.get(DETAILS.format("f" * 32), headers=auth_headers("visiting_officer"))
        assert response.status_code == 404
        [entry] = entries(app, "details.read")
        assert (entry.outcome, entry.flag_id) == ("denied", "f" * 32)

    def test_when_the_access_cannot_be_recorded_nothing_is_disclosed(
        self, client, auth_headers, red_flag, database_url
    ) -> None:
        headers = auth_headers("visiting_officer")
        client.post(GRANTS.format("customer", "CRM-1"), json=NEED, headers=headers)
        with audit_store_broken(database_url):
            response = client.get(DETAILS.format(red_flag.id), headers=headers)
        assert response.status_code == 503
        assert "Punched" not in response.get_data(as_text=True)
        assert "visits" not in response.get_data(as_text=True).lower()
