"""FHIR R4 Flag, CodeSystem, Bundle, CapabilityStatement and OperationOutcome resources.

Pure functions of the settings and the banner's status projection (`register.status`): a
Flag carries exactly what every banner reader sees, never a reason or any sealed field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sidecar.settings import Settings

FHIR_VERSION = "4.0.1"
MEDIA_TYPE = "application/fhir+json"
BASE_PATH = "/fhir/r4"

# R4's own code system for a Flag's category: "behavioral" is "flags related to the
# subject's behaviour" (https://hl7.org/fhir/R4/codesystem-flag-category.html).
HL7_FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"

CODE_SYSTEMS = {
    "forewarn-flag-category": ("categories", "Flag categories"),
    "forewarn-flag-level": ("levels", "Flag levels"),
    "forewarn-contact-restriction": ("restrictions", "Contact restrictions"),
}
"""Each published CodeSystem's id, the catalogue it lists and its title."""

SUBJECT_TYPES = {"customer": "Patient", "property": "Location"}
CAPABILITIES_CHANGED = "2026-12-01"
"""When what this server offers last changed: the CapabilityStatement's date."""


def base_url(settings: Settings) -> str:
    """The FHIR base every canonical URL and fullUrl starts with."""
    return settings.deployment.public_url.rstrip("/") + BASE_PATH


def code_system_url(settings: Settings, code_system_id: str) -> str:
    return f"{base_url(settings)}/CodeSystem/{code_system_id}"


def identifier_system(settings: Settings, kind: str) -> str:
    """The identifier system of a subject's reference: the CRM's for a customer, UPRN's."""
    if kind == "property":
        return settings.fhir.uprn_identifier_system
    return settings.fhir.customer_identifier_system or f"{base_url(settings)}/Id/customer"


def subject_reference(settings: Settings, kind: str, ref: str) -> dict[str, Any]:
    """A reference by identifier: a customer as a Patient, a property as a Location."""
    return {
        "type": SUBJECT_TYPES[kind],
        "identifier": {"system": identifier_system(settings, kind), "value": ref},
    }


def author(settings: Settings) -> dict[str, Any]:
    """The council, as the Organization every Flag is authored by."""
    reference: dict[str, Any] = {
        "type": "Organization",
        "display": settings.deployment.council_name,
    }
    if settings.fhir.organisation_identifier:
        reference["identifier"] = {
            "system": settings.fhir.organisation_identifier_system,
            "value": settings.fhir.organisation_identifier,
        }
    return reference


def _coding(settings: Settings, code_system_id: str, catalogue: str, code: str) -> dict[str, Any]:
    return {
        "system": code_system_url(settings, code_system_id),
        "code": code,
        "display": settings.label(catalogue, code),
    }


@dataclass(frozen=True)
class FlagPeriod:
    """When a flag went live and, for a time-limited one, when it ends."""

    start: datetime | None
    end: date | None


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def handling_text(shown: Mapping[str, Any]) -> str:
    """How to handle the contact, as the banner says it: guidance, restrictions, adjustments."""
    parts = [str(shown.get("handling") or "").strip()]
    parts += [item["label"] for item in shown.get("restrictions", [])]
    parts += [str(text) for text in shown.get("adjustments", [])]
    said = "; ".join(part for part in parts if part)
    return said or f"{shown['level_label']} caution flag"


def flag(
    settings: Settings,
    shown: Mapping[str, Any],
    subject_kind: str,
    subject_ref: str,
    period: FlagPeriod,
) -> dict[str, Any]:
    """One flag the banner shows (`register.status.banner_view`'s shape) as an R4 Flag.

    `subject_kind` and `subject_ref` name the subject whose banner shows it: a linked
    customer's flag on a property's banner names the property, as the banner does.
    """
    categories = [
        {
            "coding": [
                {"system": HL7_FLAG_CATEGORY, "code": "behavioral", "display": "Behavioral"}
            ],
            "text": "Behaviour",
        }
    ]
    categories += [
        {
            "coding": [_coding(settings, "forewarn-flag-category", "categories", code)],
            "text": settings.label("categories", code),
        }
        for code in shown["categories"]
    ]
    codings = [_coding(settings, "forewarn-flag-level", "levels", shown["level"])]
    codings += [
        _coding(settings, "forewarn-contact-restriction", "restrictions", item["code"])
        for item in shown.get("restrictions", [])
        if item["code"] in settings.catalogue.restrictions
    ]
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "id": shown["id"],
        "status": "active",
        "category": categories,
        "code": {"coding": codings, "text": handling_text(shown)},
        "subject": subject_reference(settings, subject_kind, subject_ref),
        "author": author(settings),
    }
    when: dict[str, str] = {}
    if period.start is not None:
        when["start"] = _instant(period.start)
    if period.end is not None:
        when["end"] = period.end.isoformat()
    if when:
        resource["period"] = when
    return resource


def code_system(settings: Settings, code_system_id: str) -> dict[str, Any]:
    """A catalogue of the settings as a complete R4 CodeSystem at its stable URL.

    Its version is a digest of the codes and labels, so a changed catalogue is a new version.
    """
    catalogue, title = CODE_SYSTEMS[code_system_id]
    entries: dict[str, str] = getattr(settings.catalogue, catalogue)
    digest = hashlib.sha256(repr(sorted(entries.items())).encode()).hexdigest()[:12]
    return {
        "resourceType": "CodeSystem",
        "id": code_system_id,
        "url": code_system_url(settings, code_system_id),
        "version": digest,
        "name": "".join(word.capitalize() for word in code_system_id.split("-")),
        "title": f"{settings.deployment.council_name}: {title}",
        "status": "active",
        "experimental": False,
        "publisher": settings.deployment.council_name,
        "caseSensitive": True,
        "content": "complete",
        "count": len(entries),
        "concept": [{"code": code, "display": label} for code, label in entries.items()],
    }


def searchset(
    resources: Sequence[dict[str, Any]], total: int, links: Mapping[str, str], base: str
) -> dict[str, Any]:
    """A page of a search as an R4 searchset Bundle with its self/next/previous links."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": [{"relation": relation, "url": url} for relation, url in links.items()],
        "entry": [
            {
                "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ],
    }


# The issue type of each HTTP status an error may have
# (https://hl7.org/fhir/R4/valueset-issue-type.html).
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


def operation_outcome(
    status: int, diagnostics: str, fields: Sequence[Mapping[str, str]] = ()
) -> dict[str, Any]:
    """An error as the R4 OperationOutcome a FHIR client expects.

    With `fields` (each a `field` and its `message`), one issue per bad parameter, naming it
    in `expression`; otherwise one issue saying `diagnostics`.
    """
    severity = "error" if status < 500 else "fatal"
    code = ISSUE_CODES.get(status, "exception")
    issues = [
        {
            "severity": severity,
            "code": code,
            "diagnostics": f"query field '{item['field']}': {item['message']}",
            "expression": [item["field"]],
        }
        for item in fields
    ]
    return {
        "resourceType": "OperationOutcome",
        "issue": issues or [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def capability_statement(settings: Settings, software_version: str) -> dict[str, Any]:
    """What this server offers: Flag read and search by subject, the CodeSystems, JSON only."""
    code_system_ids = ", ".join(CODE_SYSTEMS)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": CAPABILITIES_CHANGED,
        "publisher": settings.deployment.council_name,
        "kind": "instance",
        "software": {"name": "Forewarn", "version": software_version},
        "implementation": {
            "description": f"{settings.deployment.council_name} caution flags (status only)",
            "url": base_url(settings),
        },
        "fhirVersion": FHIR_VERSION,
        "format": [MEDIA_TYPE, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Every read of a Flag is recorded in the council's access log, as a banner "
                    "view is. A Flag shows what every member of staff sees on the banner: level, "
                    "categories and how to handle the contact; never a reason."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "Send Authorization: Bearer with an access token from POST /auth/launch; "
                        "the caller needs the banner.read permission."
                    ),
                },
                "resource": [
                    {
                        "type": "Flag",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "subject",
                                "type": "reference",
                                "documentation": (
                                    "subject:identifier=[system|]value, the customer's CRM "
                                    "reference or the property's UPRN (without a system, a "
                                    "customer); or subject=Patient/{ref} or Location/{uprn}"
                                ),
                            },
                            {"name": "_count", "type": "number"},
                            {
                                "name": "_offset",
                                "type": "number",
                                "documentation": "Flags to skip: the next link gives it",
                            },
                        ],
                    },
                    {
                        "type": "CodeSystem",
                        "interaction": [{"code": "read"}],
                        "documentation": f"The catalogues: {code_system_ids}",
                    },
                ],
            }
        ],
    }
