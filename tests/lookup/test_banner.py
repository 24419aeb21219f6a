"""The banner: what every CRM user sees for a customer or property, audited on every call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from sidecar import create_app
from sidecar.audit.models import AuditEntry
from tests import factories
from tests.lookup.conftest import audit_store_broken

BANNER = "/api/v1/subjects/{}/{}/banner"


def audit_entries(app, action: str) -> list[AuditEntry]:
    with app.extensions["forewarn"].database.transaction() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
        )


def test_unknown_subject_has_no_flag_and_the_look_is_audited(app, client, auth_headers) -> None:
    response = client.get(BANNER.format("customer", "CRM-404"), headers=auth_headers("agent"))
    assert response.status_code == 200
    assert response.get_json() == {
        "subject": {"kind": "customer", "ref": "CRM-404"},
        "status": "none",
        "flags": [],
        "can_request_details": False,
    }
    assert response.headers["Cache-Control"] == "no-store"
    [entry] = audit_entries(app, "banner.read")
    assert (entry.actor_id, entry.subject_kind, entry.subject_ref, entry.outcome) == (
        "u.agent",
        "customer",
        "CRM-404",
        "allowed",
    )


def test_status_is_the_highest_active_level_with_each_flag_in_contract_shape(
    client, register, auth_headers
) -> None:
    with register() as (session, ring):
        customer = factories.subject(session, "customer", "CRM-1")
        factories.flag(
            session,
            ring,
            customer,
            level="amber",
            categories=("verbal_hate_abuse",),
            restrictions=({"code": "time_limited_calls", "note": "10 minutes"},),
            handling="Calls limited to 10 minutes",
        )
        red = factories.flag(
            session, ring, customer, restrictions=({"code": "visits_in_pairs"},), handling="Pairs"
        )
        factories.flag(session, ring, customer, level="red", state="proposed")
        factories.flag(session, ring, customer, level="red", state="withdrawn")
        factories.staff(session, "u.senior", "Sam Senior", "senior_manager")
        factories.appeal(session, red)
    body = client.get(BANNER.format("customer", "CRM-1"), headers=auth_headers("agent")).get_json()
    assert body["status"] == "red"
    assert [f["level"] for f in body["flags"]] == ["red", "amber"]
    first, second = body["flags"]
    assert set(first) >= {"id", "level", "categories", "restrictions", "handling", "review_due"}
    assert first["id"] == red.id
    assert first["categories"] == ["physical_violence"]
    assert first["restrictions"] == [{"code": "visits_in_pairs", "label": "Visits in pairs"}]
    assert first["appeal"] == {"pending": True, "handling_manager": "Sam Senior"}
    assert first["review_due"] == "2027-05-12"
    assert second["restrictions"] == [
        {"code": "time_limited_calls", "label": "Time-limited calls: 10 minutes"}
    ]
    assert second["handling"] == "Calls limited to 10 minutes"
    assert second["appeal"] == {"pending": False, "handling_manager": None}
    assert "reason" not in str(body) and "Punched" not in str(body)


def test_property_shows_its_linked_customers_flags_with_the_guidance_a_visit_needs(
    client, register, auth_headers
) -> None:
    with register() as (session, ring):
        home = factories.subject(session, "property", "100023336956")
        tenant = factories.subject(session, "customer", "CRM-2")
        factories.link(session, tenant, home)
        factories.flag(
            session,
            ring,
            tenant,
            level="red",
            categories=("animal_attack",),
            restrictions=({"code": "no_home_visits"},),
            handling="Do not visit",
            adjustments=("Contact by letter in large print",),
        )
        factories.flag(session, ring, home, level="amber", categories=("property_damage",))
    body = client.get(
        BANNER.format("property", "100023336956"), headers=auth_headers("visiting_officer")
    ).get_json()
    assert body["status"] == "red"
    own, linked = body["flags"]
    assert own["categories"] == ["property_damage"] and "linked" not in own
    # Not named: the default settings keep who lives where off the banner.
    assert linked["linked"] == {"kind": "customer"}
    assert (linked["level"], linked["categories"]) == ("red", ["animal_attack"])
    assert linked["restrictions"] == [{"code": "no_home_visits", "label": "No home visits"}]
    assert linked["handling"] == "Do not visit"
    assert linked["adjustments"] == ["Contact by letter in large print"]
    assert body["can_request_details"] is True
    assert "Punched" not in str(body) and "CRM-2" not in str(body)


def test_property_names_its_linked_customer_where_the_settings_allow(
    make_settings, register_for, auth_headers
) -> None:
    app = create_app(make_settings(lookup={"name_linked_customers": True}))
    try:
        with register_for(app) as (session, ring):
            home = factories.subject(session, "property", "100023336956")
            tenant = factories.subject(session, "customer", "CRM-2")
            factories.link(session, tenant, home)
            factories.flag(session, ring, tenant)
        body = (
            app.test_client()
            .get(
                BANNER.format("property", "100023336956"),
                headers=auth_headers("visiting_officer"),
            )
            .get_json()
        )
    finally:
        app.extensions["forewarn"].database.dispose()
    assert body["flags"][0]["linked"] == {"kind": "customer", "ref": "CRM-2"}


def test_reasonable_adjustments_are_on_the_banner_for_every_agent(
    client, register, auth_headers
) -> None:
    with register() as (session, ring):
        customer = factories.subject(session, "customer", "CRM-5")
        factories.flag(
            session,
            ring,
            customer,
            adjustments=("Contact by letter in large print", "Allow extra time on calls"),
            reasonable_adjustments="Registered partially sighted",
        )
    body = client.get(BANNER.format("customer", "CRM-5"), headers=auth_headers("agent")).get_json()
    assert body["flags"][0]["adjustments"] == [
        "Contact by letter in large print",
        "Allow extra time on calls",
    ]
    # The detail behind an adjustment is confidential like the reason.
    assert "partially sighted" not in str(body)


def test_banner_order_own_flags_then_each_linked_customer_with_the_earliest_appeal_shown(
    client, register, auth_headers
) -> None:
    def aged(row, days: int):
        row.activated_at = datetime.now(UTC) - timedelta(days=days)
        return row

    with register() as (session, ring):
        home = factories.subject(session, "property", "100023336957")
        later, earlier = (factories.subject(session, "customer", ref) for ref in ("CRM-B", "CRM-A"))
        for tenant in (later, earlier):
            factories.link(session, tenant, home)
        own_amber = aged(factories.flag(session, ring, home, level="amber"), 90)
        own_red = aged(factories.flag(session, ring, home, level="red"), 10)
        b_amber = aged(factories.flag(session, ring, later, level="amber"), 200)
        a_amber_new = aged(factories.flag(session, ring, earlier, level="amber"), 5)
        a_red = aged(factories.flag(session, ring, earlier, level="red"), 1)
        a_amber_old = aged(factories.flag(session, ring, earlier, level="amber"), 50)
        factories.staff(session, "u.dir", "Dana Director", "senior_manager")
        now = datetime.now(UTC)
        factories.appeal(session, own_red, "u.late", "Lee Late", lodged_at=now)
        factories.appeal(session, own_red, "u.dir", "", lodged_at=now - timedelta(days=2))
        factories.appeal(
            session,
            own_red,
            "u.gone",
            "Gus Gone",
            lodged_at=now - timedelta(days=3),
            outcome="upheld",
            decided_by="u.sd",
        )
        factories.appeal(session, a_red, "u.other", "Olly Other")
    body = client.get(
        BANNER.format("property", "100023336957"), headers=auth_headers("agent")
    ).get_json()
    assert [f["id"] for f in body["flags"]] == [
        own_red.id,
        own_amber.id,
        a_red.id,
        a_amber_old.id,
        a_amber_new.id,
        b_amber.id,
    ]
    # The earliest pending appeal names its handler; a blank name comes from the directory.
    assert body["flags"][0]["appeal"] == {"pending": True, "handling_manager": "Dana Director"}
    assert body["flags"][1]["appeal"] == {"pending": False, "handling_manager": None}
    # A linked customer's appeal is theirs to know of, not the property's.
    assert body["flags"][2]["appeal"] == {"pending": False, "handling_manager": None}
    assert ["linked" in f for f in body["flags"]] == [False, False, True, True, True, True]


def test_can_request_details_follows_the_roles(client, auth_headers) -> None:
    url = BANNER.format("customer", "CRM-1")
    expected = {"agent": False, "visiting_officer": True, "auditor": False, "admin": False}
    for role, allowed in expected.items():
        body = client.get(url, headers=auth_headers(role)).get_json()
        assert body["can_request_details"] is allowed, role


def test_bad_kind_or_ref_is_422_naming_it(client, auth_headers) -> None:
    response = client.get(BANNER.format("vehicle", "X1"), headers=auth_headers())
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"field": "kind", "message": "must be one of customer, property"}
    ]
    response = client.get(BANNER.format("customer", "x" * 65), headers=auth_headers())
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "ref"


def test_without_sign_in_is_401(client) -> None:
    response = client.get(BANNER.format("customer", "CRM-1"))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_an_unrecordable_look_is_503_even_when_the_status_is_cached(
    client, register, auth_headers, database_url
) -> None:
    with register() as (session, ring):
        factories.flag(session, ring, factories.subject(session))
    headers = auth_headers("agent")
    url = BANNER.format("customer", "CRM-1")
    assert client.get(url, headers=headers).get_json()["status"] == "red"
    with audit_store_broken(database_url):
        response = client.get(url, headers=headers)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("/audit-unavailable")
    assert "status" not in body or body["status"] == 503
    assert "flags" not in body
