"""One behavioural contract, run against every connector over real HTTP to its fake CRM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from connectors import available_kinds, load_connector
from connectors.base import Connector, ConnectorConfigError, Delivery
from tests.connectors.conftest import CONFIDENTIAL_SENTINELS, expected_view, make_status
from tests.connectors.fakes import (
    FakeDataverse,
    FakeFhirServer,
    FakeSalesforce,
    FakeServer,
    FakeWebhookReceiver,
    Fault,
    Recorded,
)


@dataclass(frozen=True)
class Case:
    kind: str
    fake: type[FakeServer]
    write: dict[str, Any]  # how the fake tells a request that carries statuses (inject's filters)
    required_setting: str
    secret_setting: str
    settings: dict[str, Any] = field(default_factory=dict)  # beyond the fake's own

    def writes(self, crm: FakeServer) -> list[Recorded]:
        return [r for r in crm.requests if Fault(**self.write, times=1).matches(r)]


# One case per installed connector kind: a kind without one fails the suite.
CASES = {
    "dataverse": Case(
        "dataverse",
        FakeDataverse,
        {"method": "POST", "path": "$batch", "carrying": b"PATCH "},
        "environment_url",
        "client_secret_env",
    ),
    "salesforce": Case(
        "salesforce",
        FakeSalesforce,
        {"method": "POST", "path": "/composite", "carrying": b"composite/sobjects"},
        "instance_url",
        "client_secret_env",
    ),
    # The same org, written by external ID with no lookup (write_by = "external_id").
    "salesforce-by-external-id": Case(
        "salesforce",
        FakeSalesforce,
        {"method": "POST", "path": "/composite", "carrying": b"composite/sobjects"},
        "instance_url",
        "client_secret_env",
        {"write_by": "external_id"},
    ),
    "fhir": Case(
        "fhir",
        FakeFhirServer,
        {"path": "/Flag", "carrying": b"status-version"},
        "base_url",
        "token_env",
    ),
    "webhook": Case(
        "webhook",
        FakeWebhookReceiver,
        {"method": "POST", "path": "/hooks/forewarn"},
        "url",
        "secrets_env",
    ),
}
KINDS = available_kinds()


def test_every_installed_connector_has_a_contract_case() -> None:
    missing = sorted(set(KINDS) - {c.kind for c in CASES.values()})
    assert not missing, f"connector kinds without a contract case: {missing}"


@pytest.fixture(params=[name for name, c in CASES.items() if c.kind in KINDS])
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture
def crm(case: Case) -> Iterator[Any]:
    with case.fake.start() as fake:
        yield fake


def connect(case: Case, fake: Any, **overrides: Any) -> Connector:
    settings = fake.settings(**{**case.settings, **overrides})
    return load_connector("crm", case.kind, settings, fake.environ)


def test_push_updates_existing_records_and_creates_none(case: Case, crm: Any) -> None:
    crm.seed("customer", "C-1")
    crm.seed("property", "100023336956")
    statuses = [
        make_status("C-1", level="red", appeal_pending=True),
        make_status("100023336956", kind="property", level="amber"),
    ]
    outcomes = connect(case, crm).push(statuses)
    assert [o.result for o in outcomes] == [Delivery.DELIVERED, Delivery.DELIVERED]
    assert [o.status for o in outcomes] == statuses
    assert crm.status_of("customer", "C-1") == expected_view(statuses[0])
    assert crm.status_of("property", "100023336956") == expected_view(statuses[1])
    assert crm.created == []


def test_push_is_idempotent_and_clears_a_lifted_flag(case: Case, crm: Any) -> None:
    crm.seed("customer", "C-1")
    connector = connect(case, crm)
    flagged = make_status("C-1", level="red", version=3)
    assert connector.push([flagged])[0].result is Delivery.DELIVERED
    assert connector.push([flagged])[0].result is Delivery.DELIVERED
    assert crm.status_of("customer", "C-1") == expected_view(flagged)
    lifted = make_status("C-1", level="none", version=4)
    assert connector.push([lifted])[0].result is Delivery.DELIVERED
    assert crm.status_of("customer", "C-1") == expected_view(lifted)


def test_missing_record_is_not_found_and_never_created(case: Case, crm: Any) -> None:
    crm.seed("customer", "C-1")
    outcomes = connect(case, crm).push([make_status("C-404"), make_status("C-1")])
    assert [o.result for o in outcomes] == [Delivery.NOT_FOUND, Delivery.DELIVERED]
    assert crm.status_of("customer", "C-404") is None
    assert crm.created == []


def test_throttling_waits_for_retry_after_then_delivers(case: Case, crm: Any) -> None:
    crm.seed("customer", "C-1")
    crm.inject(429, headers={"Retry-After": "0.3"}, **case.write)
    outcome = connect(case, crm).push([make_status("C-1")])[0]
    assert outcome.result is Delivery.DELIVERED
    writes = case.writes(crm)
    assert [r.status for r in writes][-2:] == [429, writes[-1].status]
    assert writes[-1].started - writes[-2].started >= 0.3


def test_persistent_throttling_becomes_retry_with_retry_after(case: Case, crm: Any) -> None:
    crm.seed("customer", "C-1")
    crm.inject(429, headers={"Retry-After": "0.1"}, **case.write, times=10)
    outcome = connect(case, crm, retry_attempts=2).push([make_status("C-1")])[0]
    assert outcome.result is Delivery.RETRY
    assert outcome.retry_after == pytest.approx(0.1)
    assert "429" in outcome.detail


def test_server_errors_are_retried_then_reported_as_retry(case: Case, crm: Any) -> None:
    crm.seed("customer", "C-1")
    connector = connect(case, crm, retry_attempts=3)
    crm.inject(500, body="boom", **case.write, times=2)
    assert connector.push([make_status("C-1")])[0].result is Delivery.DELIVERED
    crm.inject(502, body="bad gateway", **case.write, times=3)
    outcome = connector.push([make_status("C-1", version=2)])[0]
    assert outcome.result is Delivery.RETRY
    assert outcome.retry_after is None


def test_slow_responses_time_out_and_are_retried(case: Case, crm: Any) -> None:
    crm.seed("customer", "C-1")
    connector = connect(case, crm, read_timeout=0.2, retry_attempts=2)
    connector.health()  # authenticate first, so only the write is slowed
    crm.inject(delay=0.5, **case.write)
    assert connector.push([make_status("C-1")])[0].result is Delivery.DELIVERED
    crm.inject(delay=0.5, **case.write, times=2)
    outcome = connector.push([make_status("C-1", version=2)])[0]
    assert outcome.result is Delivery.RETRY
    assert "timed out" in outcome.detail


def test_reconcile_reports_counts_and_failures(case: Case, crm: Any) -> None:
    crm.seed("customer", *(f"C-{i}" for i in range(25)))
    statuses = [make_status(f"C-{i}", version=i + 1) for i in range(25)]
    statuses.append(make_status("C-gone"))
    report = connect(case, crm).reconcile(statuses)
    assert (report.delivered, report.not_found, report.failed, report.retry) == (25, 1, 0, 0)
    assert [f.status.subject_ref for f in report.failures] == ["C-gone"]
    assert report.requests == len(crm.requests) + _token_requests_elsewhere(crm)
    for status in statuses[:25]:
        assert crm.status_of("customer", status.record_key) == expected_view(status)
    assert crm.created == []


def _token_requests_elsewhere(crm: Any) -> int:
    # Dataverse's tokens come from a separate Entra ID server.
    return len(crm.entra.requests) if isinstance(crm, FakeDataverse) else 0


@pytest.mark.parametrize("missing", ["required", "secret"])
def test_invalid_settings_name_the_setting(case: Case, crm: Any, missing: str) -> None:
    settings = crm.settings()
    environ = crm.environ
    if missing == "required":
        del settings[case.required_setting]
        name = case.required_setting
    else:
        environ = {}
        name = case.secret_setting
    with pytest.raises(ConnectorConfigError, match=f"'{name}'"):
        load_connector("crm", case.kind, settings, environ)


def test_unknown_setting_is_refused(case: Case, crm: Any) -> None:
    with pytest.raises(ConnectorConfigError, match="'read_timout'"):
        connect(case, crm, read_timout=3)


def test_health_reports_ok_then_unreachable(case: Case, crm: Any) -> None:
    connector = connect(case, crm, connect_timeout=0.2, retry_attempts=1)
    health = connector.health()
    assert health.ok, health.detail
    assert health.last_success is not None
    crm.stop()
    health = connector.health()
    assert not health.ok
    assert health.last_error


def test_only_status_fields_reach_the_crm(case: Case, crm: Any) -> None:
    crm.seed("customer", "C-1", "C-2")
    connector = connect(case, crm)
    connector.push([make_status("C-1")])
    connector.reconcile([make_status("C-1"), make_status("C-2", level="red")])
    received = crm.received_bytes()
    assert received
    for sentinel in CONFIDENTIAL_SENTINELS:
        assert sentinel.encode() not in received
    if isinstance(crm, FakeWebhookReceiver):
        allowed = set(make_status().as_document())
        for event in crm.events.values():
            documents = event["data"].get("statuses") or [event["data"]]
            assert all(set(d) <= allowed for d in documents), json.dumps(event)[:200]
