"""FHIR R4 Flags: what the banner shows, as a health or social care partner's system reads it."""

from __future__ import annotations

from datetime import date

import pytest

from sidecar import create_app
from sidecar.settings import SettingsError
from tests import factories
from tests.fhir.validation import valid
from tests.identity.test_routes import ROLE_PERMISSIONS
from tests.lookup.conftest import audit_store_broken
from tests.lookup.test_banner import audit_entries

FHIR = "application/fhir+json"
BASE = "http://127.0.0.1:8000/fhir/r4"
CUSTOMERS = f"{BASE}/Id/customer"
UPRN = "https://fhir.hl7.org.uk/Id/uprn"


def _flagged(register, ref: str = "CRM-1", **fields):
    with register() as (session, ring):
        customer = factories.subject(session, "customer", ref)
        row = factories.flag(
            session,
            ring,
            customer,
            level=fields.pop("level", "red"),
            categories=fields.pop("categories", ("physical_violence", "verbal_hate_abuse")),
            restrictions=({"code": "time_limited_calls", "note": "10 minutes"},),
            handling="Calls limited to 10 minutes",
            adjustments=("Contact by letter in large print",),
            reason="SECRET-REASON-MARKER",
            control_measures="SECRET-CONTROL-MARKER",
            **fields,
        )
        row.ends_on = date(2027, 6, 30)
        return row.id


def test_a_subjects_flags_are_a_searchset_of_status_only_flags(
    app, client, register, auth_headers
) -> None:
    flag_id = _flagged(register)
    reply = client.get(
        f"/fhir/r4/Flag?subject:identifier={CUSTOMERS}|CRM-1", headers=auth_headers("agent")
    )
    assert reply.status_code == 200
    assert reply.mimetype == FHIR
    assert reply.headers["Cache-Control"] == "no-store"
    bundle = valid(reply.get_json())
    assert (bundle["type"], bundle["total"]) == ("searchset", 1)
    [entry] = bundle["entry"]
    assert entry["fullUrl"] == f"{BASE}/Flag/{flag_id}"
    flag = entry["resource"]
    assert flag["status"] == "active"
    assert flag["subject"] == {
        "type": "Patient",
        "identifier": {"system": CUSTOMERS, "value": "CRM-1"},
    }
    assert flag["author"] == {"type": "Organization", "display": "Demo Borough Council"}
    category_codes = [c["coding"][0]["code"] for c in flag["category"]]
    assert category_codes == ["behavioral", "physical_violence", "verbal_hate_abuse"]
    assert flag["category"][1]["coding"][0]["system"] == (
        f"{BASE}/CodeSystem/forewarn-flag-category"
    )
    assert flag["code"]["coding"][0] == {
        "system": f"{BASE}/CodeSystem/forewarn-flag-level",
        "code": "red",
        "display": "Red",
    }
    assert flag["code"]["text"] == (
        "Calls limited to 10 minutes; Time-limited calls: 10 minutes; "
        "Contact by letter in large print"
    )
    assert flag["period"]["end"] == "2027-06-30"
    assert flag["period"]["start"].endswith("Z")
    assert "SECRET" not in reply.get_data(as_text=True)


def test_every_search_is_a_banner_view_in_the_trail(app, client, register, auth_headers) -> None:
    _flagged(register)
    client.get("/fhir/r4/Flag?subject=Patient/CRM-1", headers=auth_headers("visiting_officer"))
    client.get("/api/v1/subjects/customer/CRM-1/banner", headers=auth_headers("agent"))
    fhir_view, banner_view = audit_entries(app, "banner.read")
    for entry, actor in ((fhir_view, "u.visiting_officer"), (banner_view, "u.agent")):
        assert (entry.actor_id, entry.subject_kind, entry.subject_ref, entry.outcome) == (
            actor,
            "customer",
            "CRM-1",
            "allowed",
        )


def test_a_property_shows_its_linked_customers_flags_under_its_own_uprn(
    client, register, auth_headers
) -> None:
    with register() as (session, ring):
        customer = factories.subject(session, "customer", "CRM-7")
        home = factories.subject(session, "property", "100023336956")
        factories.link(session, customer, home)
        factories.flag(session, ring, customer, level="amber")
    reply = client.get(
        f"/fhir/r4/Flag?subject:identifier={UPRN}|00100023336956", headers=auth_headers()
    )
    [entry] = valid(reply.get_json())["entry"]
    assert entry["resource"]["subject"] == {
        "type": "Location",
        "identifier": {"system": UPRN, "value": "100023336956"},
    }
    assert "CRM-7" not in reply.get_data(as_text=True)


def test_pages_follow_next_links_until_every_flag_is_read(client, register, auth_headers) -> None:
    with register() as (session, ring):
        customer = factories.subject(session, "customer", "CRM-9")
        made = {factories.flag(session, ring, customer).id for _ in range(5)}
    url, seen, pages = "/fhir/r4/Flag?subject:identifier=CRM-9&_count=2", [], 0
    while url:
        bundle = valid(client.get(url, headers=auth_headers()).get_json())
        assert bundle["total"] == 5
        pages += 1
        seen += [entry["resource"]["id"] for entry in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        url = url.removeprefix("http://127.0.0.1:8000") if url else None
    assert pages == 3
    assert sorted(seen) == sorted(made)


def test_an_unflagged_subject_is_an_empty_searchset(client, auth_headers) -> None:
    bundle = valid(
        client.get("/fhir/r4/Flag?subject=Location/100023336956", headers=auth_headers()).get_json()
    )
    assert (bundle["total"], bundle.get("entry", [])) == (0, [])


def test_a_flag_is_read_by_id_and_the_read_names_it_in_the_trail(
    app, client, register, auth_headers
) -> None:
    flag_id = _flagged(register)
    reply = client.get(f"/fhir/r4/Flag/{flag_id}", headers=auth_headers())
    assert reply.status_code == 200
    assert valid(reply.get_json())["id"] == flag_id
    [entry] = audit_entries(app, "banner.read")
    assert (entry.flag_id, entry.subject_ref) == (flag_id, "CRM-1")


def test_a_proposal_or_an_ended_flag_is_not_found(app, client, register, auth_headers) -> None:
    proposed = _flagged(register, state="proposed")
    with register() as (session, ring):
        ended = factories.flag(session, ring, factories.subject(session, "customer", "CRM-2"))
        ended.state = "withdrawn"
    for flag_id in (proposed, ended.id, "0" * 32, "not-an-id"):
        reply = client.get(f"/fhir/r4/Flag/{flag_id}", headers=auth_headers())
        assert reply.status_code == 404
        outcome = valid(reply.get_json())
        assert outcome["issue"][0]["code"] == "not-found"
    assert {e.outcome for e in audit_entries(app, "banner.read")} == {"denied"}


def test_bad_input_is_an_operation_outcome_naming_the_parameter(client, auth_headers) -> None:
    headers = auth_headers()
    for query, named in (
        ("", "subject:identifier"),
        ("subject:identifier=https://elsewhere.example/id|CRM-1", "system"),
        ("subject:identifier=https://fhir.hl7.org.uk/Id/uprn|12AB", "UPRN"),
        ("subject=Practitioner/1", "Patient/"),
        ("subject=Patient/CRM-1&_count=-1", "_count"),
        ("subject=Patient/CRM-1&colour=red", "colour"),
        ("subject=Patient/CRM%00-1", "control characters"),
    ):
        reply = client.get(f"/fhir/r4/Flag?{query}", headers=headers)
        assert reply.status_code == 400, query
        assert reply.mimetype == FHIR
        issues = valid(reply.get_json())["issue"]
        assert {(i["severity"], i["code"]) for i in issues} == {("error", "invalid")}
        assert any(named in i["diagnostics"] for i in issues), query


def test_each_bad_parameter_is_an_issue_naming_it(client, auth_headers) -> None:
    reply = client.get(
        "/fhir/r4/Flag?subject=Patient/CRM-1&_count=x&colour=red", headers=auth_headers()
    )
    issues = valid(reply.get_json())["issue"]
    assert sorted(i["expression"][0] for i in issues) == ["_count", "colour"]


def test_sign_in_permission_and_format_errors_are_operation_outcomes(client, auth_headers) -> None:
    unsigned = client.get("/fhir/r4/Flag?subject=Patient/CRM-1")
    assert unsigned.status_code == 401
    assert valid(unsigned.get_json())["issue"][0]["code"] == "login"
    xml = client.get("/fhir/r4/Flag?subject=Patient/CRM-1&_format=xml", headers=auth_headers())
    assert xml.status_code == 406
    assert valid(xml.get_json())["issue"][0]["code"] == "not-supported"
    asked_xml = {**auth_headers(), "Accept": "application/fhir+xml"}
    assert client.get("/fhir/r4/Flag?subject=Patient/CRM-1", headers=asked_xml).status_code == 406
    unknown = client.get("/fhir/r4/Patient/1", headers=auth_headers())
    assert (unknown.status_code, unknown.mimetype) == (404, FHIR)
    assert valid(unknown.get_json())["issue"][0]["code"] == "not-found"


def test_a_role_without_banner_read_is_refused(make_settings, launch_token) -> None:
    # The other roles keep theirs: the appeal and withholding roles need their permissions.
    roles = ROLE_PERMISSIONS | {"agent": frozenset({"incident.create"})}
    app = create_app(make_settings(access={"roles": roles}))
    try:
        client = app.test_client()
        signed_in = client.post("/auth/launch", json={"token": launch_token("u.a", ("agent",))})
        bearer = {"Authorization": f"Bearer {signed_in.get_json()['access_token']}"}
        reply = client.get("/fhir/r4/Flag?subject=Patient/CRM-1", headers=bearer)
    finally:
        app.extensions["forewarn"].database.dispose()
    assert reply.status_code == 403
    assert valid(reply.get_json())["issue"][0]["code"] == "forbidden"


def test_an_unrecordable_read_is_unavailable_never_no_flag(
    client, register, auth_headers, database_url
) -> None:
    flag_id = _flagged(register)
    headers = auth_headers()
    with audit_store_broken(database_url):
        search = client.get("/fhir/r4/Flag?subject=Patient/CRM-1", headers=headers)
        read = client.get(f"/fhir/r4/Flag/{flag_id}", headers=headers)
    for reply in (search, read):
        assert reply.status_code == 503
        body = valid(reply.get_json())
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "transient"


def test_the_catalogues_are_published_code_systems(client, auth_headers) -> None:
    headers = auth_headers()
    categories = valid(
        client.get("/fhir/r4/CodeSystem/forewarn-flag-category", headers=headers).get_json()
    )
    assert categories["url"] == f"{BASE}/CodeSystem/forewarn-flag-category"
    assert {"code": "physical_violence", "display": "Physical violence"} in categories["concept"]
    levels = valid(
        client.get("/fhir/r4/CodeSystem/forewarn-flag-level", headers=headers).get_json()
    )
    assert [c["code"] for c in levels["concept"]] == ["amber", "red"]
    assert client.get("/fhir/r4/CodeSystem/elsewhere", headers=headers).status_code == 404


def test_the_capability_statement_needs_no_sign_in(client) -> None:
    reply = client.get("/fhir/r4/metadata")
    assert (reply.status_code, reply.mimetype) == (200, FHIR)
    statement = valid(reply.get_json())
    assert statement["fhirVersion"] == "4.0.1"
    [rest] = statement["rest"]
    assert {r["type"] for r in rest["resource"]} == {"Flag", "CodeSystem"}


def test_the_openapi_document_states_the_fhir_routes_and_their_errors(client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    search = document["paths"]["/fhir/r4/Flag"]["get"]
    assert {p["name"] for p in search["parameters"]} >= {"subject:identifier", "subject", "_count"}
    assert "application/fhir+json" in search["responses"]["default"]["content"]
    code_system = document["paths"]["/fhir/r4/CodeSystem/{code_system}"]["get"]
    assert code_system["parameters"][0]["schema"]["enum"] == [
        "forewarn-flag-category",
        "forewarn-flag-level",
        "forewarn-contact-restriction",
    ]


def test_the_councils_identifier_systems_and_code_name_the_subject_and_author(
    make_settings, launch_token
) -> None:
    app = create_app(
        make_settings(
            fhir={
                "customer_identifier_system": "https://crm.council.example/Id/contact",
                "organisation_identifier": "RA9",
            }
        )
    )
    try:
        with app.app_context(), app.extensions["forewarn"].database.transaction() as session:
            ring = app.extensions["forewarn"].keyring
            factories.flag(session, ring, factories.subject(session, "customer", "CRM-3"))
        client = app.test_client()
        signed_in = client.post("/auth/launch", json={"token": launch_token()})
        bearer = {"Authorization": f"Bearer {signed_in.get_json()['access_token']}"}
        url = "/fhir/r4/Flag?subject:identifier=https://crm.council.example/Id/contact|CRM-3"
        bundle = valid(client.get(url, headers=bearer).get_json())
        default_system = client.get(
            f"/fhir/r4/Flag?subject:identifier={CUSTOMERS}|CRM-3", headers=bearer
        )
    finally:
        app.extensions["forewarn"].database.dispose()
    [entry] = bundle["entry"]
    assert entry["resource"]["subject"]["identifier"]["system"] == (
        "https://crm.council.example/Id/contact"
    )
    assert entry["resource"]["author"]["identifier"] == {
        "system": "https://fhir.nhs.uk/Id/ods-organization-code",
        "value": "RA9",
    }
    assert default_system.status_code == 400


def test_an_identifier_system_that_is_not_a_uri_stops_start_up(make_settings) -> None:
    with pytest.raises(SettingsError, match="setting 'fhir.uprn_identifier_system'"):
        make_settings(fhir={"uprn_identifier_system": "uprn"})
    with pytest.raises(SettingsError, match="page_size must not exceed page_size_max"):
        make_settings(fhir={"page_size": 50, "page_size_max": 10})
