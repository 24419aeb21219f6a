"""`forewarn audit export --format fhir`: the access log as FHIR R4 AuditEvents, one a line."""

from __future__ import annotations

import json
from datetime import datetime

from sidecar.audit import writer as audit
from tests.audit.conftest import forewarn
from tests.fhir.validation import valid

CHAIN = "http://127.0.0.1:8000/fhir/r4/StructureDefinition/audit-chain"


def _chain(event: dict) -> dict[str, str]:
    [extension] = [e for e in event["extension"] if e["url"] == CHAIN]
    return {item["url"]: item["valueString"] for item in extension["extension"]}


def test_each_entry_is_an_audit_event_carrying_its_chain_hash(
    app, client, auth_headers, instance_dir, database_url
) -> None:
    client.get("/fhir/r4/Flag?subject=Patient/CRM-1", headers=auth_headers("visiting_officer"))
    client.get("/fhir/r4/Flag/" + "0" * 32, headers=auth_headers("agent"))
    with app.app_context():
        audit.record(
            audit.AuditEvent(
                action="access_grant.create",
                subject_kind="property",
                subject_ref="100023336956",
                purpose_code="home_visit",
                purpose_text="Repair visit on Tuesday",
                actor_id="u.vo",
            )
        )
    json_lines = forewarn("audit", "export", instance=instance_dir, database_url=database_url)
    fhir = forewarn(
        "audit", "export", "--format", "fhir", instance=instance_dir, database_url=database_url
    )
    assert fhir.returncode == 0, fhir.stderr
    stored = [json.loads(line) for line in json_lines.stdout.splitlines()]
    events = [valid(json.loads(line)) for line in fhir.stdout.splitlines()]
    # The FHIR export also lists the JSON export's own entry, recorded before it ran.
    assert len(events) == len(stored) + 1
    for entry, event in zip(stored, events, strict=False):
        chain = _chain(event)
        assert (chain["seq"], chain["entryHash"], chain["prevHash"]) == (
            str(entry["seq"]),
            entry["entry_hash"],
            entry["prev_hash"],
        )
        assert entry["entry_hash"] == audit.entry_hash(
            entry | {"at": datetime.fromisoformat(chain["at"])}
        )
        assert event["subtype"][0]["code"] == entry["action"]
    by_action = {}
    for event in events:
        by_action.setdefault((event["subtype"][0]["code"], event["outcome"]), event)
    search = by_action[("banner.read", "0")]
    refused = by_action[("banner.read", "4")]
    grant = by_action[("access_grant.create", "0")]
    assert search["agent"][0]["who"]["identifier"]["value"] == "u.visiting_officer"
    assert search["entity"][0]["what"]["identifier"]["value"] == "CRM-1"
    assert (search["action"], search["outcome"]) == ("R", "0")
    assert (refused["outcome"], refused["outcomeDesc"]) == ("4", "no such flag")
    assert grant["entity"][0]["what"]["type"] == "Location"
    assert grant["purposeOfEvent"][0]["text"] == "Repair visit on Tuesday"
    assert _chain(events[-1])["outcome"] == "allowed"


def test_an_unknown_format_is_bad_input(instance_dir, database_url) -> None:
    result = forewarn(
        "audit", "export", "--format", "xml", instance=instance_dir, database_url=database_url
    )
    assert result.returncode == 2
    assert result.stdout == ""
