"""Webhook specifics: signatures and rotation, stable ids, 410 Gone, snapshot events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import ConnectorConfigError, Delivery
from connectors.webhook import WebhookConnector
from connectors.webhook_verify import verify
from tests.connectors.conftest import make_status
from tests.connectors.fakes import ROTATED_SECRET, SECRET, FakeWebhookReceiver


@pytest.fixture
def receiver() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver.start() as fake:
        yield fake


def connector(fake: FakeWebhookReceiver, environ: dict[str, str] | None = None, **overrides: Any):
    return WebhookConnector("hook", fake.settings(**overrides), environ or fake.environ)


def test_every_secret_signs_so_receivers_can_rotate(receiver) -> None:
    receiver.seed("customer", "C-1")
    both = {receiver.secret_env: f"{ROTATED_SECRET} {SECRET}"}
    assert connector(receiver, both).push([make_status("C-1")])[0].result is Delivery.DELIVERED
    request = receiver.requests[-1]
    assert len(request.header("webhook-signature").split(" ")) == 2
    for secret in (SECRET, ROTATED_SECRET):
        assert verify(request.body, request.headers, secret)["type"] == "flag_status.updated"


def test_event_id_is_stable_per_subject_version(receiver) -> None:
    receiver.seed("customer", "C-1")
    hook = connector(receiver)
    hook.push([make_status("C-1", version=5)])
    hook.push([make_status("C-1", version=5)])
    hook.push([make_status("C-1", version=6)])
    ids = [r.header("webhook-id") for r in receiver.requests if r.method == "POST"]
    assert ids[0] == ids[1] != ids[2]
    assert receiver.duplicates == 1


def test_wrong_secret_is_a_permanent_failure(receiver) -> None:
    receiver.seed("customer", "C-1")
    outcome = connector(receiver, {receiver.secret_env: ROTATED_SECRET}).push([make_status("C-1")])[
        0
    ]
    assert outcome.result is Delivery.FAILED
    assert receiver.rejected == ["no matching signature"]


def test_gone_disables_the_endpoint(receiver) -> None:
    receiver.seed("customer", "C-1")
    hook = connector(receiver)
    receiver.gone = True
    outcome = hook.push([make_status("C-1")])[0]
    assert outcome.result is Delivery.FAILED
    assert "410 Gone" in outcome.detail
    sent = len(receiver.requests)
    assert hook.push([make_status("C-1", version=2)])[0].result is Delivery.FAILED
    assert len(receiver.requests) == sent
    health = hook.health()
    assert not health.ok
    assert "410" in health.detail


def test_missing_endpoint_is_not_mistaken_for_a_missing_record(receiver) -> None:
    receiver.seed("customer", "C-1")
    hook = WebhookConnector("hook", receiver.settings(url=receiver.url + "/nope"), receiver.environ)
    outcome = hook.push([make_status("C-1")])[0]
    assert outcome.result is Delivery.FAILED


def test_reconcile_sends_snapshot_events(receiver) -> None:
    receiver.seed("customer", *(f"C-{i}" for i in range(1100)))
    statuses = [make_status(f"C-{i}") for i in range(1100)] + [make_status("C-unknown")]
    report = connector(receiver, batch_size=500).reconcile(statuses)
    assert (report.delivered, report.not_found, report.requests) == (1100, 1, 3)
    assert {e["type"] for e in receiver.events.values()} == {"flag_status.snapshot"}


def test_unusable_secret_is_refused(receiver) -> None:
    with pytest.raises(ConnectorConfigError, match="'secrets_env'"):
        connector(receiver, {receiver.secret_env: "not-a-whsec-secret"})


def test_each_attempt_is_signed_when_it_is_sent(receiver) -> None:
    receiver.seed("customer", "C-1")
    receiver.inject(503, headers={"Retry-After": "1.1"}, method="POST")
    assert connector(receiver).push([make_status("C-1")])[0].result is Delivery.DELIVERED
    first, second = receiver.requests
    assert first.status == 503 and second.status == 204
    stamps = [int(r.header("webhook-timestamp")) for r in (first, second)]
    assert stamps[1] > stamps[0], "the retry carries the time it was sent"
    for request in (first, second):
        verify(request.body, request.headers, SECRET)  # each signature matches its timestamp
    assert first.header("webhook-id") == second.header("webhook-id")


def test_receivers_keep_the_newest_version_whatever_order_events_arrive(receiver) -> None:
    receiver.seed("customer", "C-1")
    hook = connector(receiver)
    hook.push([make_status("C-1", level="red", version=5)])
    report = hook.reconcile([make_status("C-1", level="amber", version=4)])
    assert report.delivered == 1
    assert receiver.status_of("customer", "C-1")["version"] == 5
    assert receiver.status_of("customer", "C-1")["level"] == "red"
