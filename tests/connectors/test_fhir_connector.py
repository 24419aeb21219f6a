"""FHIR specifics: conditional update on the identifier, versionId in If-Match, 412, R4 Flags."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fhir.resources.R4B.flag import Flag

from connectors.base import ConnectorConfigError, Delivery
from connectors.fhir import FhirConnector
from tests.connectors.conftest import CONFIDENTIAL_SENTINELS, make_status
from tests.connectors.fakes import FakeFhirServer
from tests.connectors.fakes.fhir import CUSTOMERS, UPRN

WRITE = {"path": "/Flag", "carrying": b"status-version"}


@pytest.fixture
def server() -> Iterator[FakeFhirServer]:
    with FakeFhirServer.start() as fake:
        yield fake


def connector(fake: FakeFhirServer, **overrides: Any) -> FhirConnector:
    return FhirConnector("partner", fake.settings(**overrides), fake.environ)


def writes(fake: FakeFhirServer) -> list[Any]:
    return [r for r in fake.requests if r.method in ("POST", "PUT")]


def test_the_first_flag_is_a_conditional_create_then_a_versioned_conditional_update(
    server,
) -> None:
    server.seed("customer", "O'Brien/7")
    fhir = connector(server)
    assert fhir.push([make_status("O'Brien/7", version=1)])[0].result is Delivery.DELIVERED
    assert fhir.push([make_status("O'Brien/7", version=2)])[0].result is Delivery.DELIVERED
    create, update = writes(server)
    identifier = "identifier=https%3A%2F%2Fcrm.council.example%2FId%2Fcustomer%7CO%27Brien%2F7"
    assert (create.method, create.path, create.header("If-None-Exist")) == (
        "POST",
        "/fhir/Flag",
        identifier,
    )
    assert (update.method, update.target) == ("PUT", f"/fhir/Flag?{identifier}")
    assert update.header("If-Match") == 'W/"1"'
    assert update.header("Content-Type") == "application/fhir+json"
    assert update.header("Authorization") == "Bearer fhir-test-token"
    flag = server.flag_of("customer", "O'Brien/7")
    assert flag["meta"]["versionId"] == "2"
    [patient] = server.resources["Patient"].values()
    assert flag["subject"]["reference"] == f"Patient/{patient['id']}"
    assert flag["identifier"] == [{"system": CUSTOMERS, "value": "O'Brien/7"}]
    assert server.rejected == [] and server.created == []


def test_every_flag_written_is_a_valid_r4_flag_with_status_only(server) -> None:
    server.seed("customer", "C-1")
    server.seed("property", "100023336956")
    fhir = connector(server)
    statuses = [
        make_status("C-1", level="red", appeal_pending=True),
        make_status("100023336956", kind="property", version=2),
        make_status("C-1", level="none", version=3),
    ]
    assert [o.result for o in fhir.push(statuses)] == [Delivery.DELIVERED] * 3
    for request in writes(server):
        Flag.model_validate(request.json())
    assert server.flag_of("customer", "C-1")["status"] == "inactive"
    located = server.flag_of("property", "100023336956")
    assert located["subject"]["identifier"] == {"system": UPRN, "value": "100023336956"}
    assert located["author"] == {"type": "Organization", "display": "Demo Borough Council"}
    received = server.received_bytes()
    assert all(sentinel.encode() not in received for sentinel in CONFIDENTIAL_SENTINELS)


def test_an_older_status_than_the_flag_holds_is_superseded_and_not_written(server) -> None:
    server.seed("customer", "C-1")
    fhir = connector(server)
    fhir.push([make_status("C-1", level="red", version=5)])
    before = len(writes(server))
    outcome = fhir.push([make_status("C-1", level="amber", version=3)])[0]
    assert outcome.result is Delivery.SUPERSEDED
    assert "version 5" in outcome.detail
    assert len(writes(server)) == before
    assert server.status_of("customer", "C-1")["level"] == "red"


def test_a_flag_changed_by_someone_else_is_read_again_and_written(server) -> None:
    server.seed("customer", "C-1")
    fhir = connector(server)
    fhir.push([make_status("C-1", version=1)])

    def meanwhile(request) -> None:
        server.write_directly("customer", "C-1", {"status": "active"})

    server.hook(lambda r: r.method == "PUT", before=meanwhile)
    outcome = fhir.push([make_status("C-1", level="red", version=2)])[0]
    assert outcome.result is Delivery.DELIVERED, outcome.detail
    assert [r.status for r in writes(server)] == [201, 412, 200]
    assert server.status_of("customer", "C-1")["version"] == 2
    # Ours (1), the other writer's (2), ours again (3): the refused write made none.
    assert server.flag_of("customer", "C-1")["meta"]["versionId"] == "3"


def test_a_newer_status_written_meanwhile_wins_over_the_one_in_flight(server) -> None:
    server.seed("customer", "C-1")
    fhir, other = connector(server), connector(server)
    fhir.push([make_status("C-1", version=1)])

    def newer_first(request) -> None:
        assert other.push([make_status("C-1", level="red", version=3)])[0].result is (
            Delivery.DELIVERED
        )

    server.hook(lambda r: r.method == "PUT", before=newer_first)
    outcome = fhir.push([make_status("C-1", version=2)])[0]
    assert outcome.result is Delivery.SUPERSEDED
    assert server.status_of("customer", "C-1")["version"] == 3


def test_a_write_applied_after_the_client_gave_up_cannot_overwrite_a_newer_one(server) -> None:
    server.seed("customer", "C-1")
    fhir = connector(server, read_timeout=0.3, retry_attempts=1)
    fhir.push([make_status("C-1", version=1)])
    late = server.inject(delay=0.8, method="PUT", **WRITE)
    assert fhir.push([make_status("C-1", version=2)])[0].result is Delivery.RETRY
    newer = connector(server).push([make_status("C-1", level="red", version=3)])[0]
    deadline = time.monotonic() + 5
    while late.applied == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert late.applied == 1
    assert newer.result is Delivery.DELIVERED, newer.detail
    assert server.status_of("customer", "C-1")["version"] == 3


def test_two_writers_creating_one_subjects_flag_make_one(server) -> None:
    server.seed("customer", "C-1")
    gate = threading.Barrier(2)
    server.hook(
        lambda r: r.method == "GET" and "/Flag" in r.path, after=lambda r: gate.wait(2), times=2
    )
    outcomes: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda v=v: outcomes.extend(
                connector(server).push([make_status("C-1", version=v)])
            )
        )
        for v in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_version = {o.status.version: o.result for o in outcomes}
    # Whichever created the Flag, the newer status is held; the older one lands or is
    # superseded, as it came first or second.
    assert by_version[2] is Delivery.DELIVERED
    assert by_version[1] in (Delivery.DELIVERED, Delivery.SUPERSEDED)
    assert len(server.resources["Flag"]) == 1
    assert [r.status for r in writes(server) if r.method == "POST"] in ([201, 200], [200, 201])
    assert server.status_of("customer", "C-1")["version"] == 2


def test_a_missing_patient_is_not_found_and_never_created(server) -> None:
    outcome = connector(server).push([make_status("C-404")])[0]
    assert outcome.result is Delivery.NOT_FOUND
    assert "Patient" in outcome.detail
    assert server.resources["Flag"] == {} and server.created == []


def test_the_servers_operation_outcome_is_the_detail(server) -> None:
    server.seed("customer", "C-1")
    server.inject(
        403,
        body={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "no Flag scope"}],
        },
        **WRITE,
    )
    outcome = connector(server).push([make_status("C-1")])[0]
    assert outcome.result is Delivery.FAILED
    assert outcome.detail == "HTTP 403 no Flag scope"


def test_health_reads_the_capability_statement(server) -> None:
    health = connector(server).health()
    assert health.ok, health.detail
    assert health.extra == {"fhirVersion": "4.0.1"}
    assert [r.path for r in server.requests] == ["/fhir/metadata"]
    server.inject(200, body={"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"})
    assert "not a FHIR R4 server" in connector(server).health().detail


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"base_url": "http://fhir.partner.example/r4"}, "base_url"),
        ({"forewarn_url": None}, "forewarn_url"),
        ({"uprn_identifier_system": "uprn"}, "uprn_identifier_system"),
        ({"customer_identifier_system": "https://a.example|b"}, "customer_identifier_system"),
    ],
)
def test_invalid_fhir_settings(server, overrides: dict[str, Any], setting: str) -> None:
    settings = {k: v for k, v in server.settings(**overrides).items() if v is not None}
    with pytest.raises(ConnectorConfigError, match=f"'{setting}'"):
        FhirConnector("partner", settings, server.environ)
