"""The access log's entries as FHIR R4 AuditEvents, for a SIEM or a records system.

Each AuditEvent carries every field the entry chains, so a reader can recompute the hash:
the ones FHIR has a place for in that place, the rest with the sequence number and both
hashes in one extension (`CHAIN_EXTENSION`).
"""

from __future__ import annotations

from typing import Any

from sidecar.fhir.resources import base_url, subject_reference
from sidecar.settings import Settings

# https://hl7.org/fhir/R4/valueset-audit-event-type.html: "rest", a RESTful operation; the
# subtype names Forewarn's own action (banner.read, details.read, flag.propose, ...).
EVENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
# https://hl7.org/fhir/R4/valueset-audit-event-outcome.html: 0 success, 4 minor failure.
OUTCOMES = {"allowed": "0", "denied": "4"}
# https://hl7.org/fhir/R4/valueset-audit-source-type.html: 4, an application server.
SOURCE_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
    "code": "4",
    "display": "Application Server",
}
# https://hl7.org/fhir/R4/valueset-audit-entity-type.html: 1 a person, 2 a system object.
ENTITY_TYPES = {
    "person": {
        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
        "code": "1",
        "display": "Person",
    },
    "object": {
        "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
        "code": "2",
        "display": "System Object",
    },
}
# An entry's CRUDE action, from its verb (https://hl7.org/fhir/R4/valueset-audit-event-action.html).
_READS = ("read", "view", "export", "verify", "request")
_CREATES = ("create", "propose", "lodge", "record", "issue", "link")


def chain_extension_url(settings: Settings) -> str:
    return f"{base_url(settings)}/StructureDefinition/audit-chain"


def _crude(action: str) -> str:
    verb = action.rsplit(".", 1)[-1]
    if verb in _READS:
        return "R"
    if verb in _CREATES:
        return "C"
    return "E"


def _text(url: str, value: Any) -> dict[str, Any]:
    return {"url": url, "valueString": str(value)}


def audit_event(settings: Settings, entry: dict[str, Any]) -> dict[str, Any]:
    """One exported entry (`audit.trail.entry_json`'s shape) as an R4 AuditEvent."""
    # Exactly as chained where FHIR's own element has another form (recorded, outcome).
    chain = [
        _text("seq", entry["seq"]),
        _text("prevHash", entry["prev_hash"]),
        _text("entryHash", entry["entry_hash"]),
        _text("at", entry["at"]),
        _text("outcome", entry["outcome"]),
    ]
    for name, field in (("via", "via"), ("userAgent", "user_agent"), ("roles", "actor_roles")):
        if entry.get(field) is not None:
            chain.append(_text(name, entry[field]))
    agent: dict[str, Any] = {"requestor": True}
    if entry.get("actor_id") is not None:
        agent["who"] = {
            "identifier": {"system": f"{base_url(settings)}/Id/staff", "value": entry["actor_id"]}
        }
        if entry.get("actor_name"):
            agent["who"]["display"] = entry["actor_name"]
    else:
        agent["who"] = {"display": "Forewarn"}
    if entry.get("actor_roles"):
        agent["role"] = [{"text": role} for role in str(entry["actor_roles"]).split(",") if role]
    if entry.get("client_ip"):
        # Network access point type 2: an IP address.
        agent["network"] = {"address": entry["client_ip"], "type": "2"}
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"forewarn-audit-{entry['seq']}",
        "extension": [{"url": chain_extension_url(settings), "extension": chain}],
        "type": EVENT_TYPE,
        "subtype": [
            {
                "system": f"{base_url(settings)}/CodeSystem/forewarn-audit-action",
                "code": entry["action"],
            }
        ],
        "action": _crude(entry["action"]),
        "recorded": str(entry["at"]).replace("+00:00", "Z"),
        "outcome": OUTCOMES.get(entry["outcome"], "4"),
        "agent": [agent],
        "source": {
            "site": settings.deployment.public_url,
            "observer": {"display": f"Forewarn, {settings.deployment.council_name}"},
            "type": [SOURCE_TYPE],
        },
    }
    if entry.get("outcome_reason"):
        event["outcomeDesc"] = entry["outcome_reason"]
    if entry.get("purpose_code") or entry.get("purpose_text"):
        purpose: dict[str, Any] = {}
        if entry.get("purpose_code"):
            purpose["coding"] = [
                {
                    "system": f"{base_url(settings)}/CodeSystem/forewarn-access-reason",
                    "code": entry["purpose_code"],
                }
            ]
        if entry.get("purpose_text"):
            purpose["text"] = entry["purpose_text"]
        event["purposeOfEvent"] = [purpose]
    entities = []
    if entry.get("subject_kind") in ("customer", "property") and entry.get("subject_ref"):
        entities.append(
            {
                "what": subject_reference(settings, entry["subject_kind"], entry["subject_ref"]),
                "type": ENTITY_TYPES["person" if entry["subject_kind"] == "customer" else "object"],
            }
        )
    if entry.get("flag_id"):
        # By identifier: a refused read records the id it was asked for, which may name nothing.
        flag = {
            "type": "Flag",
            "identifier": {"system": f"{base_url(settings)}/Id/flag", "value": entry["flag_id"]},
        }
        entities.append({"what": flag, "type": ENTITY_TYPES["object"]})
    if entities:
        event["entity"] = entities
    return event
