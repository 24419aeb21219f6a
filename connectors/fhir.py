"""FHIR R4 connector: each subject's status as one Flag on a health or social care FHIR server.

The server's Patient (a customer, by its CRM reference) or Location (a property, by UPRN)
must exist already; it is found by identifier and never created. The subject's Flag carries
the same identifier, so it is written with a conditional update on it
(https://hl7.org/fhir/R4/http.html#cond-update), guarded by the version the server gave it
(`If-Match: W/"versionId"`, https://hl7.org/fhir/R4/http.html#concurrency): a write the
client gave up on cannot land after a newer one, because the newer one moved the version and
the late one answers 412. The subject's monotonic status version rides in an extension, so an
older status is never written over a newer one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from connectors.base import (
    Connector,
    ConnectorError,
    ConnectorHealth,
    Delivery,
    FlagStatus,
    PushOutcome,
    ReconcileReport,
    classify_status,
    iso_utc,
    outcome_from_error,
)

MEDIA_TYPE = "application/fhir+json"
SUBJECT_TYPES = {"customer": "Patient", "property": "Location"}
LEVEL_LABELS = {"none": "No flag", "amber": "Amber", "red": "Red"}
# https://hl7.org/fhir/R4/codesystem-flag-category.html: flags about the subject's behaviour.
BEHAVIOURAL = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/flag-category",
            "code": "behavioral",
            "display": "Behavioral",
        }
    ],
    "text": "Behaviour",
}
# Rounds of read-then-write for one Flag another writer keeps changing under us (412).
MAX_ROUNDS = 4


class FhirConnector(Connector):
    """Writes each subject's status as a Flag on a FHIR R4 server.

    Settings: base_url (the server's FHIR base), token_env (an environment variable holding
    the bearer token the server expects), forewarn_url (the sidecar's public URL, which
    names the level CodeSystem and the extensions the Flags carry), customer_identifier_system
    and uprn_identifier_system (the identifier systems the server's Patients and Locations
    use), author (the council's name on each Flag), and the common timeout and retry settings.
    """

    kind = "fhir"

    def __init__(
        self, name: str, settings: Mapping[str, Any], environ: Mapping[str, str] = os.environ
    ) -> None:
        """Validate the settings and the token; nothing is sent until the first push."""
        super().__init__(name, settings, environ)
        s = self.settings
        self.base_url = s.url("base_url", required=True)
        token = s.secret("token_env")
        forewarn = s.url("forewarn_url", required=True)
        self.systems = {
            "customer": s.text("customer_identifier_system", f"{forewarn}/fhir/r4/Id/customer"),
            "property": s.text("uprn_identifier_system", "https://fhir.hl7.org.uk/Id/uprn"),
        }
        for key, system in zip(
            ("customer_identifier_system", "uprn_identifier_system"),
            self.systems.values(),
            strict=True,
        ):
            if not system.startswith(("https://", "http://", "urn:")) or "|" in system:
                s.fail(key, f"must be an absolute URI without '|', not {system!r}")
        self.author = s.text("author", "")
        self._finish_settings()
        self.level_system = f"{forewarn}/fhir/r4/CodeSystem/forewarn-flag-level"
        self.extension = f"{forewarn}/fhir/r4/StructureDefinition"
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": MEDIA_TYPE})

    # -- contract ----------------------------------------------------------------------

    def push(self, statuses: Sequence[FlagStatus]) -> list[PushOutcome]:
        """Write each status into its subject's Flag, one guarded conditional update each."""
        outcomes = [self._push_one(status) for status in statuses]
        self._note_outcomes(outcomes)
        return outcomes

    def reconcile(self, statuses: Iterable[FlagStatus]) -> ReconcileReport:
        """Push every status as `push` does: each write needs the version just read, which a
        FHIR batch cannot carry from one entry to the next."""
        started, before = time.monotonic(), self.request_counts()
        outcomes = [self._push_one(status) for status in statuses]
        self._note_outcomes(outcomes)
        return self._report(outcomes, before, started)

    def health(self) -> ConnectorHealth:
        """Read the server's CapabilityStatement: FHIR R4, and Flag updatable."""
        try:
            response = self.send("GET", f"{self.base_url}/metadata", kind="metadata")
        except ConnectorError as exc:
            return self._health(False, str(exc))
        if not response.ok:
            return self._health(
                False, f"metadata: HTTP {response.status_code} {self.error_detail(response)}"
            )
        statement = _json(response)
        version = str(statement.get("fhirVersion", ""))
        if statement.get("resourceType") != "CapabilityStatement" or not version.startswith("4."):
            return self._health(False, f"metadata: not a FHIR R4 server (fhirVersion {version!r})")
        resources = {
            item.get("type"): {i.get("code") for i in item.get("interaction", [])}
            for rest in statement.get("rest", [])
            for item in rest.get("resource", [])
        }
        if "update" not in resources.get("Flag", set()):
            return self._health(False, "metadata: the server does not offer Flag update")
        return self._health(True, f"FHIR {version}, Flag update offered", {"fhirVersion": version})

    # -- work --------------------------------------------------------------------------

    def _identifier(self, status: FlagStatus) -> str:
        return f"{self.systems[status.subject_kind]}|{status.record_key}"

    def _push_one(self, status: FlagStatus) -> PushOutcome:
        try:
            subject = self._subject(status)
            if isinstance(subject, PushOutcome):
                return subject
            for _ in range(MAX_ROUNDS):
                held = self._flag(status)
                if isinstance(held, PushOutcome):
                    return held
                if held is not None:
                    version = _status_version(held, self.extension)
                    if version is not None and version > status.version:
                        return PushOutcome(
                            status,
                            Delivery.SUPERSEDED,
                            f"the server holds version {version}, newer than {status.version}",
                        )
                    if version == status.version:
                        return PushOutcome(status, Delivery.DELIVERED, "already held")
                outcome = self._write(status, subject, held)
                if outcome is not None:
                    return outcome
        except ConnectorError as exc:
            return outcome_from_error(status, exc)
        return PushOutcome(
            status,
            Delivery.RETRY,
            f"the Flag changed between every read and write ({MAX_ROUNDS} x HTTP 412)",
        )

    def _search(self, resource_type: str, status: FlagStatus, kind: str) -> Any:
        """The resources of the type holding the status's identifier, or an outcome."""
        response = self.send(
            "GET",
            f"{self.base_url}/{resource_type}",
            kind=kind,
            params={"identifier": self._identifier(status)},
        )
        if not response.ok:
            return self._outcome(status, response)
        bundle = _json(response)
        return [entry["resource"] for entry in bundle.get("entry", []) if "resource" in entry]

    def _subject(self, status: FlagStatus) -> str | PushOutcome:
        """The server's reference to the subject (Patient/123), or NOT_FOUND: never created."""
        resource_type = SUBJECT_TYPES[status.subject_kind]
        found = self._search(resource_type, status, "subject")
        if isinstance(found, PushOutcome):
            return found
        if not found:
            return PushOutcome(
                status,
                Delivery.NOT_FOUND,
                f"the server has no {resource_type} with that identifier",
            )
        if len(found) > 1:
            return PushOutcome(
                status, Delivery.FAILED, f"{len(found)} {resource_type}s hold that identifier"
            )
        return f"{resource_type}/{found[0]['id']}"

    def _flag(self, status: FlagStatus) -> dict[str, Any] | PushOutcome | None:
        found = self._search("Flag", status, "read")
        if isinstance(found, PushOutcome):
            return found
        if len(found) > 1:
            return PushOutcome(status, Delivery.FAILED, f"{len(found)} Flags hold that identifier")
        return found[0] if found else None

    def _write(
        self, status: FlagStatus, subject: str, held: dict[str, Any] | None
    ) -> PushOutcome | None:
        """Create or update the Flag; None when it changed since it was read (412)."""
        resource = self._resource(status, subject)
        headers = {"Content-Type": MEDIA_TYPE, "Prefer": "return=minimal"}
        query = f"identifier={quote(self._identifier(status), safe='')}"
        if held is None:
            # A conditional create: if another writer made the Flag meanwhile, the server
            # answers 200 without creating a second, and the next round reads it.
            headers["If-None-Exist"] = query
            response = self.send(
                "POST", f"{self.base_url}/Flag", kind="write", json=resource, headers=headers
            )
            if response.status_code == 200:
                return None
        else:
            resource["id"] = held["id"]
            headers["If-Match"] = f'W/"{held.get("meta", {}).get("versionId", "")}"'
            response = self.send(
                "PUT", f"{self.base_url}/Flag?{query}", kind="write", json=resource, headers=headers
            )
        if response.status_code == 412:
            return None
        return self._outcome(status, response)

    def _resource(self, status: FlagStatus, subject: str) -> dict[str, Any]:
        """The subject's status as a Flag: only the fields of the status document."""
        identifier = {"system": self.systems[status.subject_kind], "value": status.record_key}
        extensions: list[dict[str, Any]] = [
            {"url": f"{self.extension}/status-version", "valueInteger": status.version},
            {
                "url": f"{self.extension}/status-updated",
                "valueDateTime": iso_utc(status.updated_at),
            },
            {"url": f"{self.extension}/appeal-pending", "valueBoolean": status.appeal_pending},
        ]
        if status.review_due is not None:
            extensions.append(
                {"url": f"{self.extension}/review-due", "valueDate": status.review_due.isoformat()}
            )
        extensions += [
            {"url": f"{self.extension}/restriction", "valueString": restriction}
            for restriction in status.restrictions
        ]
        resource: dict[str, Any] = {
            "resourceType": "Flag",
            "extension": extensions,
            "identifier": [identifier],
            "status": "inactive" if status.level == "none" else "active",
            "category": [BEHAVIOURAL, *({"text": label} for label in status.categories)],
            "code": {
                "coding": [
                    {
                        "system": self.level_system,
                        "code": status.level,
                        "display": LEVEL_LABELS[status.level],
                    }
                ],
                "text": "; ".join(status.restrictions) or f"{LEVEL_LABELS[status.level]} caution",
            },
            "subject": {"reference": subject, "identifier": identifier},
        }
        if self.author:
            resource["author"] = {"type": "Organization", "display": self.author}
        return resource

    def _outcome(self, status: FlagStatus, response: requests.Response) -> PushOutcome:
        result = classify_status(response.status_code)
        if response.status_code == 404:
            # The search or write endpoint itself is missing: a configuration problem.
            result = Delivery.FAILED
        detail = f"HTTP {response.status_code}"
        if result is not Delivery.DELIVERED:
            detail = f"{detail} {self.error_detail(response)}".rstrip()
        return PushOutcome(status, result, detail)

    def error_detail(self, response: requests.Response) -> str:
        """The OperationOutcome's first diagnostics, or the start of the answer."""
        outcome = _json(response)
        for issue in outcome.get("issue", []):
            said = issue.get("diagnostics") or issue.get("details", {}).get("text")
            if said:
                return str(said)[:200]
        return response.text[:200] or super().error_detail(response)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _status_version(flag: Mapping[str, Any], base: str) -> int | None:
    for extension in flag.get("extension", []):
        if extension.get("url") == f"{base}/status-version":
            value = extension.get("valueInteger")
            return value if isinstance(value, int) else None
    return None
