"""Access grants and details: a recorded business need first, the audit entry before the body."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from sidecar.audit.models import AuditEntry
from sidecar.lookup.models import AccessGrant
from tests import factories
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

    def test_a_grant_for_a_visit_to_an_address_opens_the_flags_its_banner_shows(
        self, app, client, register, auth_headers, red_flag
    ) -> None:
        with register() as (session, _ring):
            home = factories.subject(session, "property", "100023336956")
            factories.subject(session, "property", "200000000001")
            factories.link(session, red_flag.subject, home)
        headers = auth_headers("visiting_officer")
        client.post(GRANTS.format("property", "200000000001"), json=NEED, headers=headers)
        assert client.get(DETAILS.format(red_flag.id), headers=headers).status_code == 403
        grant = client.post(GRANTS.format("property", "100023336956"), json=NEED, headers=headers)
        response = client.get(DETAILS.format(red_flag.id), headers=headers)
        assert response.status_code == 200
        assert response.get_json()["reason"] == "Punched an officer at the housing office"
        # The entry names the flag's own subject and the grant for the address that opened it.
        refused, allowed = entries(app, "details.read")
        assert refused.outcome == "denied" and allowed.outcome == "allowed"
        assert (allowed.subject_kind, allowed.subject_ref) == ("customer", "CRM-1")
        assert allowed.outcome_reason.endswith(f"grant {grant.get_json()['grant_id']}")

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


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@pytest.fixture
def full_case(register):
    """An active flag that has been through every stage, its rows written out of order."""
    with register() as (session, ring):
        customer = factories.subject(session, "customer", "CRM-1")
        flag = factories.flag(
            session,
            ring,
            customer,
            level="amber",
            categories=("verbal_hate_abuse", "property_damage"),
            restrictions=(
                {"code": "time_limited_calls", "note": "10 minutes", "ends_on": "2099-01-01"},
                {"code": "office_ban", "ends_on": "2020-01-01"},
                {"code": "writing_only"},
            ),
            handling="Writing only; calls end after 10 minutes",
            adjustments=("Contact by letter in large print",),
            reasonable_adjustments="Letters in large print",
            review_due=date(2027, 3, 10),
        )
        flag.activated_at = at("2025-09-20")
        factories.staff(session, "u.manager", "Morgan Manager", "senior_manager")
        factories.staff(session, "u.senior", "Sasha Senior", "senior_manager")
        factories.staff(session, "u.nameless", "", "hs_manager")
        later = factories.incident(
            session,
            ring,
            flag,
            occurred_at=at("2025-09-10"),
            channel="phone",
            behaviour_types=("aggressive_or_abusive",),
            warning_given=False,
        )
        earliest = factories.incident(session, ring, flag, occurred_at=at("2025-08-15"))
        middle = factories.incident(
            session,
            ring,
            flag,
            occurred_at=at("2025-09-01"),
            channel="letter",
            behaviour_types=("threats",),
        )
        factories.panel(
            session,
            flag,
            "customer_support_manager",
            "u.csm",
            "Casey Support",
            decided_at=at("2025-09-19"),
        )
        factories.panel(
            session, flag, "senior_manager", "u.senior", "", decided_at=at("2025-09-18")
        )
        factories.panel(session, flag, "hs_manager", "u.hs", "", decided_at=at("2025-09-20"))
        factories.notice(session, flag, issued_at=at("2025-09-21"))
        factories.appeal(
            session,
            flag,
            "u.other",
            "Olly Other",
            received_on=date(2025, 11, 4),
            lodged_at=at("2025-11-05"),
        )
        factories.appeal(
            session,
            flag,
            "u.senior",
            "",
            received_on=date(2025, 10, 1),
            lodged_at=at("2025-10-02"),
            outcome="varied",
            decided_by="u.director",
        )
        factories.review(session, flag, outcome="continue", reviewed_at=at("2026-03-10"))
        factories.review(session, flag, outcome="vary", reviewed_at=at("2026-01-10"))
        factories.review(session, flag, "u.nameless", outcome="vary", reviewed_at=at("2025-12-01"))
    return flag, (earliest, middle, later)


class TestFullCase:
    def test_the_details_come_back_complete_and_in_order(
        self, client, auth_headers, full_case
    ) -> None:
        flag, (earliest, middle, later) = full_case
        headers = auth_headers("visiting_officer")
        client.post(GRANTS.format("customer", "CRM-1"), json=NEED, headers=headers)
        response = client.get(DETAILS.format(flag.id), headers=headers)
        assert response.status_code == 200
        assert response.get_json() == {
            "id": flag.id,
            "subject": {"kind": "customer", "ref": "CRM-1"},
            "level": "amber",
            "level_label": "Amber",
            "categories": ["verbal_hate_abuse", "property_damage"],
            "category_labels": ["Verbal/Hate abuse", "Property damage"],
            "reason": "Punched an officer at the housing office",
            "control_measures": "Visits in pairs; meet at the office",
            "reasonable_adjustments": "Letters in large print",
            "handling": "Writing only; calls end after 10 minutes",
            "adjustments": ["Contact by letter in large print"],
            "restrictions": [
                {
                    "code": "time_limited_calls",
                    "label": "Time-limited calls: 10 minutes",
                    "ends_on": "2099-01-01",
                },
                {"code": "writing_only", "label": "Writing only", "ends_on": None},
            ],
            "responsible_manager": {"id": "u.manager", "name": "Morgan Manager"},
            "review_due": "2027-03-10",
            "incidents": [
                {
                    "id": earliest,
                    "occurred_on": "2025-08-15",
                    "channel": "In person",
                    "behaviour": ["Threats", "Physical violence"],
                    "warning_given": True,
                },
                {
                    "id": middle,
                    "occurred_on": "2025-09-01",
                    "channel": "Letter",
                    "behaviour": ["Threats"],
                    "warning_given": True,
                },
                {
                    "id": later,
                    "occurred_on": "2025-09-10",
                    "channel": "Telephone",
                    "behaviour": ["Aggressive or abusive behaviour"],
                    "warning_given": False,
                },
            ],
            "decision": {
                "state": "active",
                "activated_on": "2025-09-20",
                # A name recorded with the decision wins; else the staff directory's; else the id.
                "panel": [
                    {
                        "role": "senior_manager",
                        "role_label": "Service Senior Manager",
                        "decision": "approve",
                        "by": "Sasha Senior",
                        "on": "2025-09-18",
                    },
                    {
                        "role": "customer_support_manager",
                        "role_label": "Customer Support Manager",
                        "decision": "approve",
                        "by": "Casey Support",
                        "on": "2025-09-19",
                    },
                    {
                        "role": "hs_manager",
                        "role_label": "Health and Safety Manager",
                        "decision": "approve",
                        "by": "u.hs",
                        "on": "2025-09-20",
                    },
                ],
                "notice": {"method": "letter", "on": "2025-09-21"},
                "appeals": [
                    {
                        "received_on": "2025-10-01",
                        "handling_manager": "Sasha Senior",
                        "outcome": "varied",
                    },
                    {
                        "received_on": "2025-11-04",
                        "handling_manager": "Olly Other",
                        "outcome": None,
                    },
                ],
                "last_review": {"outcome": "continue", "on": "2026-03-10"},
            },
        }
        assert "Shouted threats" not in response.get_data(as_text=True)

    def test_a_flag_with_no_case_history_yet_has_empty_parts(
        self, client, register, auth_headers
    ) -> None:
        with register() as (session, ring):
            flag = factories.flag(session, ring, factories.subject(session), responsible_manager="")
        headers = auth_headers("visiting_officer")
        client.post(GRANTS.format("customer", "CRM-1"), json=NEED, headers=headers)
        body = client.get(DETAILS.format(flag.id), headers=headers).get_json()
        assert body["responsible_manager"] == {"id": "", "name": None}
        assert body["reasonable_adjustments"] is None
        assert body["incidents"] == []
        assert {k: v for k, v in body["decision"].items() if k != "activated_on"} == {
            "state": "active",
            "panel": [],
            "notice": None,
            "appeals": [],
            "last_review": None,
        }

    @pytest.mark.parametrize(
        ("relation", "part"),
        [
            ("proposer", {"proposed_by": "u.reader"}),
            ("responsible_manager", {"responsible_manager": "u.reader"}),
            ("panel_member", lambda s, f: factories.panel(s, f, "hs_manager", "u.reader", "")),
            ("handling_senior_manager", lambda s, f: factories.appeal(s, f, "u.reader", "")),
            (
                "deciding_director",
                lambda s, f: factories.appeal(s, f, outcome="removed", decided_by="u.reader"),
            ),
            ("notice_issuer", lambda s, f: factories.notice(s, f, "u.reader")),
            (
                "withheld_permission",
                lambda s, f: factories.notice(
                    s, f, method="withheld", director_permission_by="u.reader"
                ),
            ),
            ("reviewer", lambda s, f: factories.review(s, f, "u.reader", outcome="remove")),
            ("assigned_reviewer", lambda s, f: factories.review_assignment(s, f, "u.reader")),
        ],
    )
    def test_any_part_in_the_case_opens_its_details_without_a_grant(
        self, app, client, register, auth_headers, relation, part
    ) -> None:
        # An ended flag: no grant could open it, so only the relationship can.
        with register() as (session, ring):
            terms = part if isinstance(part, dict) else {}
            flag = factories.flag(
                session, ring, factories.subject(session), state="removed", **terms
            )
            if callable(part):
                part(session, flag)
        response = client.get(
            DETAILS.format(flag.id), headers=auth_headers("senior_manager", user="u.reader")
        )
        assert response.status_code == 200
        assert response.get_json()["reason"] == "Punched an officer at the housing office"
        [entry] = entries(app, "details.read")
        assert (entry.outcome, entry.purpose_code) == ("allowed", "relationship")
        assert entry.outcome_reason == f"role senior_manager and relationship {relation}"
        outsider = auth_headers("senior_manager", user="u.outsider")
        assert client.get(DETAILS.format(flag.id), headers=outsider).status_code == 403
