"""Dataverse specifics: wire format, Choice metadata, tokens, $batch and concurrency."""

from __future__ import annotations

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


def test_patch_addresses_the_alternate_key_with_update_only_headers(dataverse) -> None:
    dataverse.seed("customer", "O'Brien/7")
    outcome = connector(dataverse).push([make_status("O'Brien/7", level="red")])[0]
    assert outcome.result is Delivery.DELIVERED
    patch = next(r for r in dataverse.requests if r.method == "PATCH")
    assert patch.path == "/api/data/v9.2/contacts(fw_crmref='O''Brien/7')"
    assert patch.header("If-Match") == "*"
    assert patch.header("OData-Version") == patch.header("OData-MaxVersion") == "4.0"
    assert patch.json()["fw_level"] == 100000002  # read from metadata, not configured


def test_choice_values_are_read_once_per_table(dataverse) -> None:
    dataverse.seed("customer", "C-1", "C-2")
    dataverse.seed("property", "U-1")
    dv = connector(dataverse)
    dv.push([make_status("C-1")])
    dv.push([make_status("C-2"), make_status("U-1", kind="property")])
    assert dataverse.count("GET", "EntityDefinitions(LogicalName='contact')") == 1
    assert dataverse.count("GET", "EntityDefinitions(LogicalName='fw_property')") == 1


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
    assert [r.status for r in dataverse.requests if r.method == "PATCH"] == [204, 401, 204]


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
        method="PATCH",
        times=5,
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
    batch = next(r for r in dataverse.requests if r.path.endswith("$batch"))
    assert batch.header("Prefer") == "odata.continue-on-error"
    assert batch.body.count(b"boundary=changeset_") == 4
    assert report.requests_by_kind == {"token": 1, "metadata": 1, "batch": 1}


def test_batches_never_exceed_batch_size(dataverse) -> None:
    dataverse.seed("customer", *(f"C-{i}" for i in range(25)))
    report = connector(dataverse, batch_size=10).reconcile(
        [make_status(f"C-{i}") for i in range(25)]
    )
    assert report.delivered == 25
    assert sorted(dataverse.batch_sizes) == [5, 10, 10]


def test_concurrency_is_bounded_by_max_concurrency(dataverse) -> None:
    refs = [f"C-{i}" for i in range(24)]
    dataverse.seed("customer", *refs)
    dv = connector(dataverse, max_concurrency=3)
    dv.health()
    dataverse.inject(delay=0.05, method="PATCH", times=len(refs))
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
    ],
)
def test_invalid_dataverse_settings(dataverse, overrides: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConnectorConfigError, match=f"setting '{setting}'"):
        connector(dataverse, **overrides)
