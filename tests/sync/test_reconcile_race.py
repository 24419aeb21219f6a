"""A status that changes while a reconciliation is pushing still ends up in the CRM.

The reconciliation computes every status first and pushes later, so the CRM can receive its
older copy of a subject after the worker delivered the newer one. Each fake CRM is made to
serve the worker's delivery in the middle of the reconciliation's request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.base import ReconcileReport
from sidecar import create_app
from sidecar.sync.outbox import load_connectors
from sidecar.sync.reconcile import run_reconcile
from tests.connectors.fakes import FakeDataverse, FakeSalesforce, FakeWebhookReceiver, Recorded
from tests.sync.test_sync import change_flag, worker

FAKES = {"dataverse": FakeDataverse, "salesforce": FakeSalesforce, "webhook": FakeWebhookReceiver}
REF = "CRM-RACE"
# How each fake tells the reconciliation's write (the ended flag, version 2) from the worker's
# (the red flag, version 3).
RECONCILING: dict[str, Callable[[Recorded], bool]] = {
    "dataverse": lambda r: r.path.endswith("/$batch") and b'"fw_statusversion":2' in r.body,
    "salesforce": lambda r: (
        r.path.endswith("/composite") and b'"Fw_Status_Version__c": 2' in r.body
    ),
    "webhook": lambda r: b"flag_status.snapshot" in r.body,
}
PUSHING: dict[str, Callable[[Recorded], bool]] = {
    "dataverse": lambda r: r.path.endswith("/$batch") and b'"fw_statusversion":3' in r.body,
    "salesforce": lambda r: (
        r.path.endswith("/composite") and b'"Fw_Status_Version__c": 3' in r.body
    ),
    "webhook": lambda r: b"flag_status.updated" in r.body,
}
# Longest the CRM holds back its answer to the worker (under the connectors' read timeout).
HOLD_SECONDS = 1.0


@pytest.fixture(params=sorted(FAKES))
def crm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with FAKES[request.param].start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        fake.seed("customer", REF)
        yield request.param, fake


@pytest.fixture
def synced_app(make_settings, crm) -> Iterator[Any]:
    kind, fake = crm
    app = create_app(make_settings(connectors={"crm": {"kind": kind, **fake.settings()}}))
    yield app
    app.extensions["forewarn"].database.dispose()


def reconcile_from_the_cli(app: Any) -> ReconcileReport:
    """`forewarn sync reconcile`: its own connector, as in its own process."""
    state = app.extensions["forewarn"]
    connector = load_connectors(state.settings)["crm"]
    try:
        return run_reconcile(
            state.settings, state.database, "crm", connector, {"actor_id": "cli:test"}
        )
    finally:
        connector.close()


def crm_holds(fake: Any) -> tuple[str, int]:
    status = fake.status_of("customer", REF)
    return status["level"], status["version"]


def flag_ended_and_delivered(app: Any, fake: Any) -> None:
    change_flag(app, REF, "amber")
    change_flag(app, REF, None)
    assert worker(app).run_once()[0].delivered == 1
    assert crm_holds(fake) == ("none", 2)


def test_a_flag_activated_and_delivered_while_a_reconciliation_pushes_is_sent_again(
    crm, synced_app
) -> None:
    kind, fake = crm
    flag_ended_and_delivered(synced_app, fake)
    during: list[int] = []

    def activate_and_deliver(_: Recorded) -> None:
        # The reconciliation computed "none" and its request has reached the CRM: a red flag
        # goes live and the worker delivers it before the CRM applies the reconciliation.
        during.append(change_flag(synced_app, REF, "red"))
        during.append(worker(synced_app).run_once()[0].delivered)

    hook = fake.hook(RECONCILING[kind], before=activate_and_deliver)
    report = reconcile_from_the_cli(synced_app)
    assert hook.errors == [] and during == [3, 1]
    # The CRM refused the older copy (SUPERSEDED), or a webhook receiver took it and kept
    # the newer version by comparing versions.
    assert (report.delivered + report.superseded, report.failed, report.retry) == (1, 0, 0)

    worker(synced_app).run_once()
    assert crm_holds(fake) == ("red", 3), "the CRM must not be left without the red flag"
    assert worker(synced_app).run_once()[0].claimed == 0, "and it is then up to date"


def test_a_delivery_the_worker_records_after_the_reconciliation_has_finished_is_sent_again(
    crm, synced_app
) -> None:
    kind, fake = crm
    flag_ended_and_delivered(synced_app, fake)
    applied, reconciled = threading.Event(), threading.Event()
    passes: list[Any] = []
    workers: list[threading.Thread] = []

    def hold_the_answer(_: Recorded) -> None:
        # The CRM has applied the worker's red flag, and will apply the reconciliation's
        # "none" over it; the worker hears back, and records its delivery, only once the
        # reconciliation is over (or the hold has run out).
        applied.set()
        reconciled.wait(HOLD_SECONDS)

    def activate_and_start_a_worker(_: Recorded) -> None:
        change_flag(synced_app, REF, "red")
        thread = threading.Thread(target=lambda: passes.append(worker(synced_app).run_once()))
        workers.append(thread)
        thread.start()
        if not applied.wait(10):
            raise TimeoutError("the worker's update never reached the CRM")

    pushed = fake.hook(PUSHING[kind], after=hold_the_answer)
    reconciling = fake.hook(RECONCILING[kind], before=activate_and_start_a_worker)
    report = reconcile_from_the_cli(synced_app)
    reconciled.set()
    workers[0].join(10)
    assert pushed.errors == [] and reconciling.errors == []
    assert [during.delivered for [during] in passes] == [1], "the worker's pass"
    # The CRM refused the older copy (SUPERSEDED), or a webhook receiver took it and kept
    # the newer version by comparing versions.
    assert (report.delivered + report.superseded, report.failed, report.retry) == (1, 0, 0)

    worker(synced_app).run_once()
    assert crm_holds(fake) == ("red", 3), "the CRM must not be left without the red flag"
    assert worker(synced_app).run_once()[0].claimed == 0, "and it is then up to date"
