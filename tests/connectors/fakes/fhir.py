"""A fake FHIR R4 server: search by identifier, conditional create and update, versionId, 412.

It follows the RESTful API of https://hl7.org/fhir/R4/http.html: every write gives the
resource a new `meta.versionId` and answers it as a weak `ETag`; an update whose `If-Match`
names another version answers 412; a conditional update or create matching more than one
resource answers 412; `If-None-Exist` on a create that matches answers 200 without creating.
Every Flag written is checked against the R4B model of `fhir.resources`, and refused with a
400 OperationOutcome if it is not a valid Flag.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fhir.resources.R4B.flag import Flag
from pydantic import ValidationError

from .server import FakeServer, Recorded, Reply

TOKEN = "fhir-test-token"
MEDIA_TYPE = "application/fhir+json"
CUSTOMERS = "https://crm.council.example/Id/customer"
UPRN = "https://fhir.hl7.org.uk/Id/uprn"
FOREWARN = "https://forewarn.council.example"
SUBJECT_TYPES = {"customer": "Patient", "property": "Location"}
EXTENSION = f"{FOREWARN}/fhir/r4/StructureDefinition"


def _outcome(status: int, code: str, diagnostics: str) -> Reply:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return Reply(status, json.dumps(body).encode(), {"Content-Type": MEDIA_TYPE})


def _bundle(resources: list[dict[str, Any]]) -> Reply:
    body = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": resource, "search": {"mode": "match"}} for resource in resources],
    }
    return Reply(200, json.dumps(body).encode(), {"Content-Type": MEDIA_TYPE})


class FakeFhirServer(FakeServer):
    """A FHIR base at /fhir holding Patients and Locations (`seed`) and the Flags written.

    `created` lists the Patients and Locations a client created (a connector must create
    none); `rejected` the diagnostics of every Flag refused as invalid.
    """

    token_env = "FW_TEST_FHIR_TOKEN"
    base = "/fhir"

    def __init__(self) -> None:
        super().__init__()
        self.resources: dict[str, dict[str, dict[str, Any]]] = {
            "Patient": {},
            "Location": {},
            "Flag": {},
        }
        self.created: list[tuple[str, str]] = []
        self.rejected: list[str] = []
        self._next_id = 0
        self._data_lock = threading.RLock()

    @property
    def environ(self) -> dict[str, str]:
        return {self.token_env: TOKEN}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "base_url": self.url + self.base,
            "token_env": self.token_env,
            "forewarn_url": FOREWARN,
            "customer_identifier_system": CUSTOMERS,
            "author": "Demo Borough Council",
            "connect_timeout": 1.0,
            "read_timeout": 2.0,
            "backoff_base": 0.01,
        }
        settings.update(overrides)
        return settings

    # -- test side ---------------------------------------------------------------------

    def seed(self, kind: str, *keys: str) -> None:
        system = CUSTOMERS if kind == "customer" else UPRN
        for key in keys:
            self._store(
                SUBJECT_TYPES[kind],
                {
                    "resourceType": SUBJECT_TYPES[kind],
                    "identifier": [{"system": system, "value": key}],
                },
            )

    def flag_of(self, kind: str, key: str) -> dict[str, Any] | None:
        system = CUSTOMERS if kind == "customer" else UPRN
        found = self._matching("Flag", f"{system}|{key}")
        return copy.deepcopy(found[0]) if found else None

    def status_of(self, kind: str, key: str) -> dict[str, Any] | None:
        """The status the subject's Flag says, in status-document terms."""
        flag = self.flag_of(kind, key)
        if flag is None:
            return None
        values: dict[str, Any] = {"restrictions": []}
        for extension in flag.get("extension", []):
            name = extension["url"].removeprefix(EXTENSION + "/")
            value = next(v for k, v in extension.items() if k.startswith("value"))
            if name == "restriction":
                values["restrictions"].append(value)
            else:
                values[name] = value
        return {
            "level": flag["code"]["coding"][0]["code"],
            "categories": [c["text"] for c in flag["category"][1:]],
            "restrictions": values["restrictions"],
            "review_due": values.get("review-due"),
            "appeal_pending": values["appeal-pending"],
            "version": values["status-version"],
            "updated_at": values["status-updated"],
        }

    def write_directly(self, kind: str, key: str, change: dict[str, Any]) -> None:
        """Another writer's update of the subject's Flag: a new version on the server."""
        system = CUSTOMERS if kind == "customer" else UPRN
        with self._data_lock:
            [flag] = self._matching("Flag", f"{system}|{key}")
            flag.update(change)
            self._version(flag)

    # -- server side -------------------------------------------------------------------

    def _store(self, resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
        with self._data_lock:
            self._next_id += 1
            resource = {**resource, "id": str(self._next_id)}
            self.resources[resource_type][resource["id"]] = resource
            self._version(resource, first=True)
            return resource

    def _version(self, resource: dict[str, Any], *, first: bool = False) -> None:
        current = 0 if first else int(resource.get("meta", {}).get("versionId", "0"))
        resource["meta"] = {
            "versionId": str(current + 1),
            "lastUpdated": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }

    def _matching(self, resource_type: str, identifier: str) -> list[dict[str, Any]]:
        system, _, value = identifier.rpartition("|")
        with self._data_lock:
            return [
                resource
                for resource in self.resources[resource_type].values()
                if any(
                    item.get("value") == value and (not system or item.get("system") == system)
                    for item in resource.get("identifier", [])
                )
            ]

    def handle(self, request: Recorded) -> Reply:
        if not request.path.startswith(self.base + "/"):
            return _outcome(404, "not-found", "no such endpoint")
        if request.header("Authorization") != f"Bearer {TOKEN}":
            return _outcome(401, "login", "a valid bearer token is required")
        parts = request.path.removeprefix(self.base + "/").split("/")
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.target).query).items()}
        if parts == ["metadata"] and request.method == "GET":
            return self._metadata()
        resource_type = parts[0]
        if resource_type not in self.resources:
            return _outcome(404, "not-supported", f"no resource type {resource_type}")
        if request.method == "GET" and len(parts) == 1:
            if set(query) != {"identifier"}:
                return _outcome(400, "not-supported", f"unsupported search {sorted(query)}")
            with self._data_lock:
                return _bundle(copy.deepcopy(self._matching(resource_type, query["identifier"])))
        if request.method in ("POST", "PUT"):
            if (request.header("Content-Type") or "").split(";")[0] != MEDIA_TYPE:
                return _outcome(415, "not-supported", f"send {MEDIA_TYPE}")
            with self._data_lock:
                if request.method == "POST":
                    return self._create(resource_type, request)
                return self._update(resource_type, request, query, parts[1:])
        return _outcome(405, "not-supported", f"{request.method} {request.path}")

    def _metadata(self) -> Reply:
        statement = {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-12-01",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": [MEDIA_TYPE],
            "rest": [
                {
                    "mode": "server",
                    "resource": [
                        {
                            "type": "Flag",
                            "versioning": "versioned-update",
                            "conditionalCreate": True,
                            "conditionalUpdate": True,
                            "interaction": [
                                {"code": code}
                                for code in ("read", "search-type", "create", "update")
                            ],
                        },
                        {"type": "Patient", "interaction": [{"code": "search-type"}]},
                        {"type": "Location", "interaction": [{"code": "search-type"}]},
                    ],
                }
            ],
        }
        return Reply(200, json.dumps(statement).encode(), {"Content-Type": MEDIA_TYPE})

    def _parsed(self, resource_type: str, request: Recorded) -> dict[str, Any] | Reply:
        try:
            body = json.loads(request.body)
        except ValueError:
            return _outcome(400, "structure", "the body is not JSON")
        if not isinstance(body, dict) or body.get("resourceType") != resource_type:
            return _outcome(400, "invalid", f"the body is not a {resource_type}")
        if resource_type == "Flag":
            try:
                Flag.model_validate(body)
            except ValidationError as exc:
                self.rejected.append(str(exc))
                return _outcome(400, "invalid", f"not a valid R4 Flag: {exc}")
        return body

    def _answer(self, status: int, resource: dict[str, Any]) -> Reply:
        headers = {
            "ETag": f'W/"{resource["meta"]["versionId"]}"',
            "Location": (
                f"{self.url}{self.base}/{resource['resourceType']}/{resource['id']}"
                f"/_history/{resource['meta']['versionId']}"
            ),
        }
        return Reply(status, None, headers)

    def _create(self, resource_type: str, request: Recorded) -> Reply:
        body = self._parsed(resource_type, request)
        if isinstance(body, Reply):
            return body
        condition = request.header("If-None-Exist")
        if condition:
            identifier = parse_qs(condition).get("identifier", [""])[0]
            found = self._matching(resource_type, identifier)
            if len(found) > 1:
                return _outcome(412, "duplicate", "the condition matches several resources")
            if found:
                return self._answer(200, found[0])
        body.pop("id", None)
        stored = self._store(resource_type, body)
        if resource_type != "Flag":
            self.created.append((resource_type, stored["id"]))
        return self._answer(201, stored)

    def _update(
        self, resource_type: str, request: Recorded, query: dict[str, str], rest: list[str]
    ) -> Reply:
        body = self._parsed(resource_type, request)
        if isinstance(body, Reply):
            return body
        if rest:
            held = self.resources[resource_type].get(rest[0])
            found = [held] if held else []
        elif set(query) == {"identifier"}:
            found = self._matching(resource_type, query["identifier"])
        else:
            return _outcome(400, "invalid", "update by id or by identifier")
        if len(found) > 1:
            return _outcome(412, "multiple-matches", "the condition matches several resources")
        if not found:
            body.pop("id", None)
            stored = self._store(resource_type, body)
            if resource_type != "Flag":
                self.created.append((resource_type, stored["id"]))
            return self._answer(201, stored)
        current = found[0]
        if body.get("id") not in (None, current["id"]):
            return _outcome(400, "invalid", "the body's id is not the matched resource's")
        asked = request.header("If-Match")
        if asked is not None and asked != f'W/"{current["meta"]["versionId"]}"':
            return _outcome(412, "conflict", "the resource has changed since that version")
        kept = {"id": current["id"], "meta": current["meta"]}
        current.clear()
        current.update({**body, **kept})
        self._version(current)
        return self._answer(200, current)
