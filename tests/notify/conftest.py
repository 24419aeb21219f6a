"""An app whose notifications go to a fake GOV.UK Notify or a real SMTP relay, and staff."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from sidecar.notify.delivery import delivery_for
from sidecar.notify.models import Notification
from sidecar.notify.outbox import NotificationSender
from sidecar.settings import Settings
from sidecar.storage.database import utcnow
from sidecar.sync.worker import PassReport
from tests.lifecycle.conftest import cases, staff  # noqa: F401  (fixtures)
from tests.notify.fakes import API_KEY, FakeNotify, SmtpRelay

ENVIRON = {"FW_TEST_NOTIFY_KEY": API_KEY}


@pytest.fixture
def delivery(request: pytest.FixtureRequest) -> str:
    """How notifications are delivered; a test parametrizes it (indirect) for SMTP."""
    return getattr(request, "param", "notify")


@pytest.fixture
def backend(delivery: str) -> Iterator[FakeNotify | SmtpRelay]:
    server = FakeNotify if delivery == "notify" else SmtpRelay
    with server.start() as running:
        yield running


@pytest.fixture
def notification_settings() -> dict[str, Any]:
    """Changes to the backend's `[notifications]`; a test overrides it."""
    return {}


@pytest.fixture
def other_settings() -> dict[str, Any]:
    """Sections besides `[notifications]` a test module changes."""
    return {}


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    backend: FakeNotify | SmtpRelay,
    notification_settings: dict[str, Any],
    other_settings: dict[str, Any],
) -> Settings:
    return make_settings(notifications=backend.settings(**notification_settings), **other_settings)


def sender(
    app: Flask,
    at: datetime | None = None,
    environ: dict[str, str] | None = None,
) -> NotificationSender:
    runtime = app.extensions["forewarn"]
    delivery = delivery_for(runtime.settings.notifications, ENVIRON if environ is None else environ)
    clock = (lambda: at) if at is not None else utcnow
    return NotificationSender(runtime.database, runtime.settings, delivery, clock=clock)


def send(app: Flask, at: datetime | None = None, **kwargs: Any) -> PassReport:
    """One delivery pass, as the worker makes it (`at`: as if it ran then)."""
    return sender(app, at, **kwargs).send_due()


def outbox(app: Flask) -> list[Notification]:
    with app.extensions["forewarn"].database.transaction() as session:
        return list(
            session.scalars(select(Notification).order_by(Notification.created_at, Notification.id))
        )


def received(backend: FakeNotify | SmtpRelay) -> list[tuple[str, str, str]]:
    """(to, subject, body) of every message the backend accepted."""
    if isinstance(backend, FakeNotify):
        return [(m.email_address, m.subject, m.body) for m in backend.sent]
    return [(str(m["To"]), str(m["Subject"]), m.get_content().strip()) for m in backend.messages]


def told_of(app: Flask, kind: str) -> list[str]:
    """Who the outbox holds a notification of `kind` for."""
    return sorted(row.recipient for row in outbox(app) if row.kind == kind)


def lodge(client: Any, people: Any, flag_id: str) -> str:
    """An appeal lodged by the case officer, with grounds that must never be in a message."""
    reply = client.post(
        f"/api/v1/flags/{flag_id}/appeals", json={"grounds": "GRDMARK"}, headers=people.officer
    )
    assert reply.status_code == 201, reply.get_json()
    return reply.get_json()["id"]


def assign(client: Any, people: Any, flag_id: str, appeal_id: str, handler: str) -> None:
    """The Customer Support Manager names the appeal's handler."""
    reply = client.post(
        f"/api/v1/flags/{flag_id}/appeals/{appeal_id}/handling-manager",
        json={"handling_manager": handler},
        headers=people.csm,
    )
    assert reply.status_code == 200, reply.get_json()
