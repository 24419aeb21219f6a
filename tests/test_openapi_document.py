"""The OpenAPI document states what the server enforces, so generated clients and tests agree."""

from __future__ import annotations

import re

import pytest


@pytest.fixture
def document(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()


def parameter(document: dict, path: str, method: str, name: str) -> dict:
    found = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
    assert found, f"{method} {path} has no parameter {name}"
    return found[0]["schema"]


def test_path_parameters_state_kinds_references_ids_and_numbers(document) -> None:
    banner = "/api/v1/subjects/{kind}/{ref}/banner"
    assert parameter(document, banner, "get", "kind")["enum"] == ["customer", "property"]
    ref = parameter(document, banner, "get", "ref")
    # The pattern bounds the reference (64 characters) but not the whitespace dropped around it.
    assert ref["minLength"] == 1 and "maxLength" not in ref
    assert re.search(ref["pattern"], "CRM-1001") and not re.search(ref["pattern"], "a b")
    assert re.search(ref["pattern"], "A" * 64 + " " * 10)
    assert not re.search(ref["pattern"], "A" * 65)
    assert not re.search(ref["pattern"], "\x0cCRM-1")
    letter = parameter(document, "/api/v1/flags/{flag_id}/letters/{n}", "get", "n")
    assert letter == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    flag_id = parameter(document, "/api/v1/flags/{flag_id}", "get", "flag_id")
    assert re.fullmatch(flag_id["pattern"].strip("^$"), "0" * 32)
    uprn = parameter(document, "/api/v1/subjects/customer/{ref}/links/{uprn}", "delete", "uprn")
    assert re.search(uprn["pattern"], "0100023336956")
    assert not re.search(uprn["pattern"], "0" * 40)


def test_query_parameters_state_enums_bounds_and_lengths(document) -> None:
    kind = parameter(document, "/api/v1/incidents", "get", "kind")
    assert kind["enum"] == ["customer", "property"]
    assert parameter(document, "/api/v1/incidents", "get", "ref")["minLength"] == 1
    cursor = parameter(document, "/api/v1/audit", "get", "cursor")
    bounds = next(s for s in cursor.get("anyOf", [cursor]) if s.get("type") == "integer")
    assert (bounds["minimum"], bounds["maximum"]) == (0, 2**63 - 1)
    summary = parameter(document, "/api/v1/reports/summary", "get", "format")
    assert summary["enum"] == ["json", "html"]


def test_request_bodies_state_their_minimum_lengths(document) -> None:
    incident = document["components"]["schemas"]["IncidentBody"]["properties"]
    assert incident["narrative"]["minLength"] == 1
    assert incident["behaviour_types"]["minItems"] == 1
    subject = document["components"]["schemas"]["SubjectIn"]["properties"]
    assert subject["kind"]["enum"] == ["customer", "property"]
    assert re.search(subject["ref"]["pattern"], " CRM-1 ")


def test_catalogue_codes_are_stated_from_the_config(document, settings) -> None:
    schemas = document["components"]["schemas"]
    proposal = schemas["ProposalBody"]["properties"]
    assert proposal["level"]["enum"] == list(settings.catalogue.levels)
    assert proposal["categories"]["items"]["enum"] == list(settings.catalogue.categories)
    assert proposal["categories"]["uniqueItems"] is True
    incident = schemas["IncidentBody"]["properties"]
    assert incident["channel"]["enum"] == list(settings.catalogue.channels)
    grant = schemas["GrantBody"]["properties"]
    assert grant["reason_code"]["enum"] == list(settings.catalogue.reason_codes)
    assert grant["reason_text"]["minLength"] == settings.policy.grant_reason_min_length


def test_free_text_refuses_control_characters_and_dates_their_years(document) -> None:
    narrative = document["components"]["schemas"]["IncidentBody"]["properties"]["narrative"]
    assert re.search(narrative["pattern"], "Shouted.\r\n\tLeft.")
    assert not re.search(narrative["pattern"], "Shouted.\x00")
    assert not re.search(narrative["pattern"], "Shouted.\x1b[2J")
    since = parameter(document, "/api/v1/alerts", "get", "since")
    day = next(s for s in since.get("anyOf", [since]) if s.get("type") == "string")
    assert day["format"] == "date"
    assert re.search(day["pattern"], "1900-01-01") and re.search(day["pattern"], "9998-12-31")
    assert not re.search(day["pattern"], "1899-12-31") and not re.search(
        day["pattern"], "9999-01-01"
    )


def test_console_pages_answer_errors_as_pages_and_name_their_kinds(document) -> None:
    subject = document["paths"]["/console/subjects/{kind}/{ref}"]["get"]
    assert [p["name"] for p in subject["parameters"]] == ["kind", "ref"]
    assert set(subject["responses"]["default"]["content"]) == {
        "text/html",
        "application/problem+json",
    }
    assert "3XX" in subject["responses"]
    assert not [path for path in document["paths"] if "<" in path]
