"""Dataverse specifics: wire format, Choice metadata, tokens, $batch and concurrency."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import compat32
from typing import Any

import pytest

from connectors.base import ConnectorConfigError, Delivery
from connectors.dataverse import DataverseConnector
from connectors.odata_batch import BatchOperation, build_batch
from tests.connectors.conftest import make_status
from tests.connectors.fakes import FakeDataverse
from tests.connectors.fakes.dataverse import THROTTLED


@pytest.fixture
def dataverse() -> Iterator[FakeDataverse]:
    with FakeDataverse.start() as fake:
        yield fake


def connector(fake: FakeDataverse, **overrides: Any) -> DataverseConnector:
    return DataverseConnector("dv", fake.settings(**overrides), fake.environ)


WRITE = {"method": "POST", "path": "$batch", "carrying": b"PATCH "}


def batches(fake: FakeDataverse) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith("/$batch")]


def test_patch_addresses_the_alternate_key_guarded_by_the_rows_etag(dataverse) -> None:
    dataverse.seed("customer", "O'Brien/7")
    etag = dataverse.etag("contacts", "O'Brien/7")
    outcome = connector(dataverse).push([make_status("O'Brien/7", level="red")])[0]
    assert outcome.result is Delivery.DELIVERED
    read, write = batches(dataverse)
    assert b"GET " in read.body and b"Microsoft.Dynamics.CRM.In(" in read.body
    assert b"PATCH " in write.body and b"contacts(fw_crmref='O%27%27Brien%2F7')" in write.body
    assert f"If-Match: {etag}".encode() in write.body
    assert b"If-Match: *" not in write.body
    assert write.header("OData-Version") == write.header("OData-MaxVersion") == "4.0"
    assert b'"fw_level":100000002' in write.body  # read from metadata, not configured


def test_the_appeal_handler_is_written_only_to_a_column_the_settings_name(dataverse) -> None:
    dataverse.seed("customer", "C-1", "C-2")
    appealed = make_status("C-1", appeal_pending=True, appeal_handler="Sam Senior")
    # A CRM set up before the column existed keeps syncing: nothing is sent for it.
    assert connector(dataverse).push([appealed])[0].result is Delivery.DELIVERED
    assert "fw_appealhandler" not in dataverse.records["contacts"]["C-1"]
    named = connector(dataverse, columns={"appeal_handler": "fw_appealhandler"})
    assert named.push([appealed, make_status("C-2")])[0].result is Delivery.DELIVERED
    assert dataverse.records["contacts"]["C-1"]["fw_appealhandler"] == "Sam Senior"
    assert dataverse.records["contacts"]["C-2"]["fw_appealhandler"] is None


def test_a_request_applied_after_the_client_gave_up_cannot_overwrite_a_newer_one(
    dataverse,
) -> None:
    dataverse.seed("customer", "C-1")
    dv = connector(dataverse, read_timeout=0.3, retry_attempts=1)
    dv.health()
    late = dataverse.inject(delay=0.8, **WRITE)
    assert dv.push([make_status("C-1", version=1)])[0].result is Delivery.RETRY
    newer = dv.push([make_status("C-1", level="red", version=2)])[0]
    assert newer.result is Delivery.DELIVERED, newer.detail
    deadline = time.monotonic() + 5
    while late.applied == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert late.applied == 1
    assert dataverse.status_of("customer", "C-1")["version"] == 2
    assert dataverse.status_of("customer", "C-1")["level"] == "red"


def test_a_row_changed_by_someone_else_is_read_again_and_written(dataverse) -> None:
    dataverse.seed("customer", "C-1")
    dv = connector(dataverse)
    assert dv.push([make_status("C-1", version=1)])[0].result is Delivery.DELIVERED
    dataverse.edit("customer", "C-1", fw_categories="edited by hand")
    outcome = dv.push([make_status("C-1", version=2)])[0]
    assert outcome.result is Delivery.DELIVERED
    assert dataverse.status_of("customer", "C-1")["version"] == 2
    assert [r.status for r in batches(dataverse)][-3:] == [200, 200, 200]


def test_an_older_status_than_the_row_holds_is_superseded_and_not_written(dataverse) -> None:
    dataverse.seed("customer", "C-1")
    dv = connector(dataverse)
    dv.push([make_status("C-1", level="red", version=5)])
    writes = len([r for r in batches(dataverse) if b"PATCH " in r.body])
    outcome = connector(dataverse).push([make_status("C-1", version=4)])[0]
    assert outcome.result is Delivery.SUPERSEDED
    assert "version 5" in outcome.detail
    assert len([r for r in batches(dataverse) if b"PATCH " in r.body]) == writes
    assert dataverse.status_of("customer", "C-1")["level"] == "red"


def test_choice_values_are_read_once_per_table(dataverse) -> None:
    dataverse.seed("customer", "C-1", "C-2")
    dataverse.seed("property", "U-1")
    dv = connector(dataverse)
    dv.push([make_status("C-1")])
    dv.push([make_status("C-2"), make_status("U-1", kind="property")])
    assert metadata_reads(dataverse, "contact") == 1
    assert metadata_reads(dataverse, "fw_property") == 1
    assert dataverse.count("GET", "EntityDefinitions") == 0, "read inside the rows' $batch"


def metadata_reads(fake: FakeDataverse, table: str) -> int:
    """Reads of a table's Choice metadata, alone or inside a $batch."""
    needle = f"EntityDefinitions(LogicalName='{table}')"
    return sum((needle in r.path) + r.body.decode().count(needle) for r in fake.requests)


def test_missing_choice_column_fails_with_a_clear_detail(dataverse) -> None:
    dataverse.seed("customer", "C-1")
    outcome = connector(dataverse, columns={"level": "fw_risk"}).push([make_status("C-1")])[0]
    assert outcome.result is Delivery.FAILED
    assert "fw_risk" in outcome.detail


def test_token_uses_the_environment_scope_and_is_cached(dataverse) -> None:
    dataverse.seed("customer", "C-1")
    dv = connector(dataverse)
    for version in (1, 2, 3):
        dv.push([make_status("C-1", version=version)])
    assert len(dataverse.entra.requests) == 1
    assert f"scope={dataverse.url}".replace(":", "%3A").replace("/", "%2F") in (
        dataverse.entra.requests[0].body.decode()
    )


def test_expired_token_is_refreshed_once(dataverse) -> None:
    dataverse.seed("customer", "C-1")
    dv = connector(dataverse)
    dv.push([make_status("C-1")])
    dataverse.expire_tokens()
    assert dv.push([make_status("C-1", version=2)])[0].result is Delivery.DELIVERED
    assert len(dataverse.entra.requests) == 2
    assert [r.status for r in batches(dataverse)] == [200, 200, 401, 200]


def test_a_401_spell_refreshes_the_token_once_and_backs_off_like_any_outage(dataverse) -> None:
    dataverse.seed("customer", "C-1")
    dv = connector(dataverse, retry_attempts=4)
    dataverse.inject(401, body={"error": "invalid_token"}, times=3, path="/api/data/")
    assert dv.push([make_status("C-1")])[0].result is Delivery.DELIVERED
    assert len(dataverse.entra.requests) == 2, "the first token and one refresh"
    dataverse.inject(401, body={"error": "invalid_token"}, times=100, path="/api/data/")
    sent = len(batches(dataverse))
    outcome = dv.push([make_status("C-1", version=2)])[0]
    assert outcome.result is Delivery.RETRY, "a 401 spell is transient: the outbox tries again"
    assert "HTTP 401 after a fresh token" in outcome.detail
    assert len(dataverse.entra.requests) == 3
    assert [r.status for r in batches(dataverse)[sent:]] == [401] * 5, "1 + retry_attempts"


def test_a_secret_the_identity_provider_refuses_is_permanent_and_says_so(dataverse) -> None:
    dataverse.seed("customer", "C-1")
    wrong = {dataverse.secret_env: "not-the-secret"}
    dv = DataverseConnector("dv", dataverse.settings(), wrong)
    outcome = dv.push([make_status("C-1")])[0]
    assert outcome.result is Delivery.FAILED
    assert "credential refused by the identity provider" in outcome.detail
    assert batches(dataverse) == []


def test_dataverse_error_body_becomes_the_detail(dataverse) -> None:
    dataverse.seed("customer", "C-1")
    dataverse.fail_record("customer", "C-1", code="0x80040237", message="Duplicate detected.")
    outcome = connector(dataverse).push([make_status("C-1")])[0]
    assert outcome.result is Delivery.FAILED
    assert outcome.detail == "HTTP 400 0x80040237: Duplicate detected."


def test_throttle_body_and_http_date_retry_after(dataverse) -> None:
    dataverse.seed("customer", "C-1")
    dataverse.inject(
        429,
        body=THROTTLED,
        headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},  # in the past: no wait
        times=5,
        **WRITE,
    )
    outcome = connector(dataverse, retry_attempts=2).push([make_status("C-1")])[0]
    assert outcome.result is Delivery.RETRY
    assert outcome.retry_after == 0.0
    assert "0x80072322" in outcome.detail


def test_batch_uses_one_change_set_per_record_and_reports_each(dataverse) -> None:
    dataverse.seed("customer", "C-1", "C-2", "C-3")
    dataverse.fail_record("customer", "C-2", code="0x80040203", message="Invalid argument.")
    statuses = [make_status("C-1"), make_status("C-2"), make_status("C-3"), make_status("C-4")]
    report = connector(dataverse, batch_size=10).reconcile(statuses)
    assert (report.delivered, report.failed, report.not_found) == (2, 1, 1)
    assert {f.status.subject_ref: f.result for f in report.failures} == {
        "C-2": Delivery.FAILED,
        "C-4": Delivery.NOT_FOUND,
    }
    _read, write = batches(dataverse)
    assert write.header("Prefer") == "odata.continue-on-error"
    assert write.body.count(b"boundary=changeset_") == 3, "C-4 was not found by the read"
    assert report.requests_by_kind == {"token": 1, "read": 1, "batch": 1}


def test_batches_never_exceed_batch_size(dataverse) -> None:
    dataverse.seed("customer", *(f"C-{i}" for i in range(25)))
    report = connector(dataverse, batch_size=10).reconcile(
        [make_status(f"C-{i}") for i in range(25)]
    )
    assert report.delivered == 25
    assert sorted(dataverse.batch_sizes) == [2, 5, 10, 10], "one read with the options, 3 writes"


def test_concurrency_is_bounded_by_max_concurrency(dataverse) -> None:
    refs = [f"C-{i}" for i in range(24)]
    dataverse.seed("customer", *refs)
    dv = connector(dataverse, max_concurrency=3, batch_size=2)
    dv.health()
    dataverse.inject(delay=0.05, times=len(refs), **WRITE)
    outcomes = dv.push([make_status(ref) for ref in refs])
    assert all(o.result is Delivery.DELIVERED for o in outcomes)
    assert 2 <= dataverse.max_active <= 3


def test_built_batch_is_valid_mime_for_an_independent_parser() -> None:
    operations = [
        BatchOperation("1", "PATCH", "https://org/api/data/v9.2/contacts(fw_crmref='A')", {"x": 1}),
        BatchOperation("2", "PATCH", "https://org/api/data/v9.2/contacts(fw_crmref='B')", {"x": 2}),
    ]
    body = build_batch("batch_abc", operations)
    message = BytesParser(policy=compat32).parsebytes(
        b"Content-Type: multipart/mixed; boundary=batch_abc\r\n\r\n" + body
    )
    changesets = message.get_payload()
    assert len(changesets) == 2
    inner = changesets[1].get_payload()
    assert len(inner) == 1
    assert inner[0]["Content-ID"] == "2"
    assert inner[0].get_payload().startswith("PATCH https://org/api/data/v9.2/contacts(")


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"batch_size": 1001}, "batch_size"),
        ({"max_concurrency": 53}, "max_concurrency"),
        ({"entity_set": {"customer": "contacts"}}, "entity_set"),
        ({"alternate_key": {"customer": "fw crmref", "property": "fw_uprn"}}, "alternate_key"),
        ({"environment_url": "http://org.crm11.dynamics.com"}, "environment_url"),
        ({"client_secret": "hunter2"}, "client_secret"),
        ({"adjustments_column": "fw adjustments"}, "adjustments_column"),
    ],
)
def test_invalid_dataverse_settings(dataverse, overrides: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConnectorConfigError, match=f"setting '{setting}'"):
        connector(dataverse, **overrides)
