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
    assert ref["minLength"] == 1 and ref["maxLength"] == 64
    assert re.search(ref["pattern"], "CRM-1001") and not re.search(ref["pattern"], "a b")
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
