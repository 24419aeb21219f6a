"""Salesforce specifics: updateOnly, session refresh, API limits, Id-based reconciliation, JWT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import ConnectorConfigError, Delivery
from connectors.salesforce import SalesforceConnector
from tests.connectors.conftest import expected_view, make_status
from tests.connectors.fakes import FakeSalesforce
from tests.connectors.fakes.salesforce import INVALID_SESSION, REQUEST_LIMIT_EXCEEDED


@pytest.fixture
def salesforce() -> Iterator[FakeSalesforce]:
    with FakeSalesforce.start() as fake:
        yield fake


def connector(fake: FakeSalesforce, **overrides: Any) -> SalesforceConnector:
    return SalesforceConnector("sf", fake.settings(**overrides), fake.environ)


WRITE = {"method": "POST", "path": "/composite", "carrying": b"composite/sobjects"}


def composites(fake: FakeSalesforce) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith("/composite")]


def test_the_appeal_handler_is_written_only_to_a_field_the_settings_name(salesforce) -> None:
    salesforce.seed("customer", "A/1")
    appealed = make_status("A/1", appeal_pending=True, appeal_handler="Sam Senior")
    assert connector(salesforce).push([appealed])[0].result is Delivery.DELIVERED
    [record] = salesforce.records["Contact"].values()
    assert "Fw_Appeal_Handler__c" not in record
    named = connector(salesforce, fields={"appeal_handler": "Fw_Appeal_Handler__c"})
    assert named.push([appealed])[0].result is Delivery.DELIVERED
    [record] = salesforce.records["Contact"].values()
    assert record["Fw_Appeal_Handler__c"] == "Sam Senior"


def test_records_are_found_by_external_id_then_updated_by_id(salesforce) -> None:
    salesforce.seed("customer", "A/1")
    assert connector(salesforce).push([make_status("A/1")])[0].result is Delivery.DELIVERED
    lookup, update = composites(salesforce)
    [query] = lookup.json()["compositeRequest"]
    assert "WHERE+Fw_CrmRef__c+IN+%28%27A%2F1%27%29" in query["url"]
    [collection] = update.json()["compositeRequest"]
    assert collection["url"] == "/services/data/v62.0/composite/sobjects"
    [record] = collection["body"]["records"]
    assert record["id"].startswith("003") and record["attributes"] == {"type": "Contact"}
    assert salesforce.created == []


def test_record_ids_are_looked_up_once(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce)
    for version in (1, 2, 3):
        assert sf.push([make_status("C-1", version=version)])[0].result is Delivery.DELIVERED
    assert len(composites(salesforce)) == 4, "one lookup, three updates"


def lookups(fake: FakeSalesforce) -> int:
    """Composite requests of Id queries the org received."""
    return sum(1 for r in composites(fake) if b"/query?" in r.body)


def test_ten_thousand_new_records_are_looked_up_in_one_request(salesforce) -> None:
    # Five queries of 2,000 keys, each answered in one batch, ride in one Composite body,
    # where a REST call's 16,384-byte URI limit does not bind them (the fake enforces it).
    refs = [f"CRM-{n:06d}" for n in range(10_000)]
    salesforce.seed("customer", *refs)
    # A loaded machine must not time the lookup out into a retry, which would count a second.
    sf = connector(salesforce, read_timeout=30.0)
    outcomes = sf.push([make_status(ref) for ref in refs])
    assert {outcome.result for outcome in outcomes} == {Delivery.DELIVERED}
    assert lookups(salesforce) == 1
    assert len(composites(salesforce)) == 11, "one lookup, ten requests of 1,000 updates"
    assert not [r for r in salesforce.requests if "/query/" in r.path], "no second batch"


def test_a_lookup_answered_in_several_batches_is_read_to_the_end(salesforce) -> None:
    # Two records for each of 1,100 keys: 2,200 rows, which the org answers in two batches.
    refs = [f"CRM-{n:06d}" for n in range(1_100)]
    salesforce.seed("customer", *refs)
    salesforce.duplicate("customer", *refs)
    outcomes = connector(salesforce).push([make_status(ref) for ref in refs])
    assert len([r for r in salesforce.requests if "/query/" in r.path]) == 1
    # Every key's second record came in the second batch: each is refused as ambiguous.
    assert {outcome.result for outcome in outcomes} == {Delivery.FAILED}
    assert all("2 Contact records share Fw_CrmRef__c" in o.detail for o in outcomes)
    assert salesforce.created == []


@pytest.mark.parametrize("code", ["ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"])
def test_a_record_deleted_after_its_id_was_remembered_is_found_again(salesforce, code) -> None:
    salesforce.seed("customer", "C-1", "C-2")
    sf = connector(salesforce)
    sf.push([make_status("C-1"), make_status("C-2")])
    [old_id] = sf.record_ids.known("customer", ["C-1"]).values()
    salesforce.delete("customer", "C-1", code)
    salesforce.seed("customer", "C-1")  # recreated: same key, new Id
    newer = make_status("C-1", level="red", version=2)
    outcomes = sf.push([newer, make_status("C-2", version=2)])
    assert [o.result for o in outcomes] == [Delivery.DELIVERED, Delivery.DELIVERED]
    assert salesforce.status_of("customer", "C-1") == expected_view(newer)
    assert lookups(salesforce) == 2, "C-1 looked up again, C-2 written by its remembered Id"
    [new_id] = sf.record_ids.known("customer", ["C-1"]).values()
    assert new_id != old_id
    assert salesforce.created == []


def test_a_record_deleted_for_good_is_reported_not_found_and_its_id_dropped(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce)
    sf.push([make_status("C-1")])
    salesforce.delete("customer", "C-1")
    outcome = sf.push([make_status("C-1", version=2)])[0]
    assert (outcome.result, outcome.detail) == (
        Delivery.NOT_FOUND,
        "no Contact with Fw_CrmRef__c = this key",
    )
    assert sf.record_ids.known("customer", ["C-1"]) == {}
    assert salesforce.created == []


def test_a_record_gone_between_its_lookup_and_its_write_goes_back_to_the_outbox(
    salesforce,
) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce)
    salesforce.fail_record("customer", "C-1", "ENTITY_IS_DELETED", "entity is deleted")
    outcome = sf.push([make_status("C-1")])[0]
    assert outcome.result is Delivery.RETRY, "found a moment ago: not reported missing"
    assert outcome.detail == (
        "ENTITY_IS_DELETED: entity is deleted (deleted or merged after it was looked up)"
    )
    assert sf.record_ids.known("customer", ["C-1"]) == {}, "an Id that failed is not kept"


def test_a_record_merged_into_one_holding_a_newer_status_keeps_it(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce)
    sf.push([make_status("C-1", version=1)])
    # Merged away; the surviving record, holding the key, had been sent version 5 already.
    salesforce.delete("customer", "C-1", "INVALID_CROSS_REFERENCE_KEY")
    salesforce.seed("customer", "C-1")
    other = connector(salesforce)
    other.push([make_status("C-1", level="red", version=5)])
    outcome = sf.push([make_status("C-1", version=4)])[0]
    assert outcome.result is Delivery.SUPERSEDED
    assert salesforce.status_of("customer", "C-1")["level"] == "red"


def test_an_older_status_is_refused_by_the_orgs_version_rule(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce)
    sf.push([make_status("C-1", level="red", version=5)])
    outcome = sf.push([make_status("C-1", version=4)])[0]
    assert outcome.result is Delivery.SUPERSEDED
    assert salesforce.status_of("customer", "C-1")["level"] == "red"


def test_a_request_applied_after_the_client_gave_up_cannot_overwrite_a_newer_one(
    salesforce,
) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce, read_timeout=0.3, retry_attempts=1)
    sf.push([make_status("C-1", version=1)])
    late = salesforce.inject(delay=0.8, **WRITE)
    assert sf.push([make_status("C-1", version=2)])[0].result is Delivery.RETRY
    newer = sf.push([make_status("C-1", level="red", version=3)])[0]
    assert newer.result is Delivery.DELIVERED, newer.detail
    deadline = time.monotonic() + 5
    while late.applied == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert late.applied == 1
    assert salesforce.status_of("customer", "C-1")["version"] == 3


def test_expired_session_refreshes_and_retries(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce)
    sf.push([make_status("C-1")])
    salesforce.expire_tokens()
    assert sf.push([make_status("C-1", version=2)])[0].result is Delivery.DELIVERED
    assert salesforce.count("POST", "/services/oauth2/token") == 2
    assert [r.status for r in composites(salesforce)] == [200, 200, 401, 200]


def test_a_401_spell_refreshes_the_session_once_and_backs_off(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce, retry_attempts=4)
    salesforce.inject(401, body=INVALID_SESSION, times=3, path="/services/data/")
    assert sf.push([make_status("C-1")])[0].result is Delivery.DELIVERED
    assert salesforce.count("POST", "/services/oauth2/token") == 2
    salesforce.inject(401, body=INVALID_SESSION, times=100, path="/services/data/")
    outcome = sf.push([make_status("C-1", version=2)])[0]
    assert outcome.result is Delivery.RETRY, "a 401 spell is transient: the outbox tries again"
    assert "HTTP 401 after a fresh token" in outcome.detail
    assert salesforce.count("POST", "/services/oauth2/token") == 3


def test_a_refused_client_secret_is_permanent_and_says_so(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    wrong = {salesforce.secret_env: "not-the-secret"}
    sf = SalesforceConnector("sf", salesforce.settings(), wrong)
    outcome = sf.push([make_status("C-1")])[0]
    assert outcome.result is Delivery.FAILED
    assert "credential refused by the identity provider" in outcome.detail
    assert composites(salesforce) == []


def test_request_limit_exceeded_backs_off_without_hammering(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce, request_limit_backoff=120)
    salesforce.inject(403, body=REQUEST_LIMIT_EXCEEDED, **WRITE)
    first = sf.push([make_status("C-1")])[0]
    assert (first.result, first.retry_after) == (Delivery.RETRY, 120)
    sent = len(salesforce.requests)
    second = sf.push([make_status("C-1", version=2)])[0]
    assert second.result is Delivery.RETRY
    assert second.retry_after == pytest.approx(120, abs=2)
    assert len(salesforce.requests) == sent  # nothing sent during the back-off


def test_short_request_limit_backoff_is_waited_out(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    salesforce.inject(403, body=REQUEST_LIMIT_EXCEEDED, **WRITE)
    started = time.monotonic()
    outcome = connector(salesforce, request_limit_backoff=0.2).push([make_status("C-1")])[0]
    assert outcome.result is Delivery.DELIVERED
    assert time.monotonic() - started >= 0.2


def test_health_exposes_api_usage_from_limit_info(salesforce) -> None:
    sf = connector(salesforce)
    salesforce.seed("customer", "C-1")
    sf.push([make_status("C-1")])
    health = sf.health()
    assert health.ok
    assert health.extra["api_limit"] == 5000
    assert health.extra["api_usage"] == salesforce.api_usage
    assert health.extra["daily_api_max"] == 5000


def test_reconcile_finds_ids_then_updates_collections(salesforce) -> None:
    refs = [f"C-{i}" for i in range(450)] + ["O'Neil\\x"]
    salesforce.seed("customer", *refs)
    salesforce.fail_record("customer", "C-7")
    statuses = [make_status(ref) for ref in refs] + [make_status("C-missing")]
    report = connector(salesforce).reconcile(statuses)
    assert (report.delivered, report.failed, report.not_found) == (450, 1, 1)
    assert report.requests_by_kind == {"token": 1, "query": 1, "collection": 1}
    assert salesforce.collection_sizes == [200, 200, 51]  # the missing one is never sent
    assert salesforce.composite_sizes == [1, 3], "one lookup, three collections in one call"
    assert salesforce.status_of("customer", "O'Neil\\x") == expected_view(statuses[450])
    assert salesforce.created == []
    failed = next(f for f in report.failures if f.result is Delivery.FAILED)
    assert failed.status.subject_ref == "C-7"
    assert failed.detail.startswith("FIELD_CUSTOM_VALIDATION_EXCEPTION")


def test_login_url_alone_takes_the_instance_from_the_token(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    settings = salesforce.settings(login_url=salesforce.url)
    del settings["instance_url"]
    sf = SalesforceConnector("sf", settings, salesforce.environ)
    assert sf.push([make_status("C-1")])[0].result is Delivery.DELIVERED


def test_jwt_bearer_flow(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_file = tmp_path / "sf.pem"
    key_file.write_bytes(pem)
    with FakeSalesforce.start(jwt_public_key=public.decode()) as fake:
        fake.seed("customer", "C-1")
        settings = fake.settings(
            auth="jwt_bearer",
            username=fake.username,
            private_key_path=str(key_file),
            audience=fake.url,
        )
        del settings["client_secret_env"]
        sf = SalesforceConnector("sf", settings, {})
        assert sf.push([make_status("C-1")])[0].result is Delivery.DELIVERED
        with pytest.raises(ConnectorConfigError, match="'private_key_path'"):
            SalesforceConnector("sf", {**settings, "private_key_path": str(tmp_path / "no")}, {})


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"api_version": "v60.0"}, "api_version"),
        ({"batch_size": 201}, "batch_size"),
        ({"auth": "password"}, "auth"),
        ({"auth": "jwt_bearer"}, "username"),
        ({"fields": {"level": "Fw Level"}}, "fields"),
        ({"external_id_field": {"customer": "Fw_CrmRef__c"}}, "external_id_field"),
        ({"write_by": "upsert"}, "write_by"),
        ({"adjustments_field": "Fw-Adjustments"}, "adjustments_field"),
    ],
)
def test_invalid_salesforce_settings(salesforce, overrides: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConnectorConfigError, match=f"setting '{setting}'"):
        connector(salesforce, **overrides)


def test_writing_by_external_id_needs_no_lookup_and_creates_nothing(salesforce) -> None:
    refs = [f"C-{i}" for i in range(800)]
    salesforce.seed("customer", *refs)
    salesforce.seed("property", "100023336956")
    statuses = [make_status(ref) for ref in refs[:-1]]
    statuses += [make_status("100023336956", kind="property"), make_status("C-missing")]
    report = connector(salesforce, write_by="external_id").reconcile(statuses)
    assert (report.delivered, report.not_found, report.failed) == (800, 1, 0)
    # Four collections of customers and one of properties: one Composite request.
    assert report.requests_by_kind == {"token": 1, "collection": 1}
    [call] = composites(salesforce)
    urls = {part["url"] for part in call.json()["compositeRequest"]}
    assert urls == {
        "/services/data/v62.0/composite/sobjects/Contact/Fw_CrmRef__c",
        "/services/data/v62.0/composite/sobjects/Property__c/Fw_Uprn__c",
    }
    assert salesforce.status_of("customer", "C-798") == expected_view(statuses[798])
    assert salesforce.status_of("property", "100023336956")["level"] == "amber"
    assert salesforce.created == []
    missing = report.failures[0]
    assert (missing.status.subject_ref, missing.detail) == (
        "C-missing",
        "no record has this external ID",
    )


def test_writing_by_external_id_keeps_the_newer_status(salesforce) -> None:
    salesforce.seed("customer", "C-1")
    sf = connector(salesforce, write_by="external_id", read_timeout=0.3, retry_attempts=1)
    sf.push([make_status("C-1", version=1)])
    late = salesforce.inject(delay=0.8, **WRITE)
    assert sf.push([make_status("C-1", version=2)])[0].result is Delivery.RETRY
    assert sf.push([make_status("C-1", level="red", version=3)])[0].result is Delivery.DELIVERED
    deadline = time.monotonic() + 5
    while late.applied == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert late.applied == 1
    assert salesforce.status_of("customer", "C-1")["version"] == 3
    older = sf.push([make_status("C-1", version=2)])[0]
    assert older.result is Delivery.SUPERSEDED
    assert salesforce.status_of("customer", "C-1")["level"] == "red"


def test_an_org_without_the_no_create_rule_is_named_and_written_by_id_after() -> None:
    with FakeSalesforce.start(no_create_rule=False) as fake:
        fake.seed("customer", "C-1", "C-2")
        sf = connector(fake, write_by="external_id", batch_size=1)
        first = sf.push([make_status("C-new"), make_status("C-1")])
        assert first[0].result is Delivery.FAILED
        assert "Forewarn_never_creates" in first[0].detail
        assert fake.created == [("Contact", "C-new")]
        assert first[1].result is Delivery.DELIVERED, "the rest goes by Id, looked up first"
        assert sf.push([make_status("C-2"), make_status("C-gone")])[1].result is (
            Delivery.NOT_FOUND
        )
        assert fake.created == [("Contact", "C-new")], "nothing more was created"
        assert "Forewarn_never_creates" in (sf.health().last_error or "")


def test_health_by_external_id_names_an_object_without_the_no_create_rule() -> None:
    with FakeSalesforce.start() as fake:
        health = connector(fake, write_by="external_id").health()
        assert health.ok, health.detail
        assert health.detail == "limits answered; Forewarn_never_creates is active"
    with FakeSalesforce.start(no_create_rule=False) as fake:
        health = connector(fake, write_by="external_id").health()
        assert not health.ok
        assert "Contact, Property__c: no active validation rule" in health.detail
        assert fake.created == []
        assert connector(fake).health().ok, "writing by Id needs no such rule"
