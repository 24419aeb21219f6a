"""No notification carries a confidential text: the leak test's case, every kind of message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import pytest

from sidecar.settings import NOTIFICATION_KINDS
from tests.disclosure.case import (
    CSM,
    GRANT_HOLDER,
    MARKERS,
    PROPERTY,
    Case,
    markers_in,
    text,
)
from tests.disclosure.conftest import seeded
from tests.notify.conftest import outbox, received, sender
from tests.notify.fakes import FakeNotify, SmtpRelay

LEADS = {"review_due_lead_days": 180, "appeal_window_lead_days": 30}


@pytest.fixture(params=["notify", "smtp"])
def backend(request: pytest.FixtureRequest) -> Iterator[FakeNotify | SmtpRelay]:
    with (FakeNotify if request.param == "notify" else SmtpRelay).start() as running:
        yield running


@pytest.fixture
def case(engine_kind, migrated_template, tmp_path, backend) -> Iterator[Case]:
    """The leak test's seeded case, on an app that notifies everyone of everything."""
    overrides = {"notifications": backend.settings(**LEADS)}
    yield from seeded(tmp_path, engine_kind, migrated_template, overrides)


def test_no_message_subject_or_body_carries_a_confidential_marker(case, backend) -> None:
    flag = case.ids["A"]
    # Details opened under the grant, and a grant whose reason (a marker) raises an alert.
    case.call(GRANT_HOLDER, "GET", f"/api/v1/flags/{flag}/details", None, 200)
    other = {"reason_code": "other", "reason_text": text("grant_reason")}
    case.call(CSM, "POST", f"/api/v1/subjects/property/{PROPERTY}/access-grants", other, 201)
    app = case.app
    today = datetime.now(UTC).date()
    review_due = date.fromisoformat(
        case.call(CSM, "GET", f"/api/v1/flags/{flag}", None, 200)["review_due"]
    )
    for day in (today, review_due - timedelta(days=1)):
        sender(app, at=datetime.combine(day, time(9), tzinfo=UTC)).run_once()
    kinds = {row.kind for row in outbox(app) if row.state == "sent"}
    assert kinds == set(NOTIFICATION_KINDS)
    messages = received(backend)
    assert len(messages) == len([row for row in outbox(app) if row.state == "sent"])
    sent = [subject + "\n" + body for _, subject, body in messages]
    if isinstance(backend, FakeNotify):
        sent += [request.body.decode() for request in backend.requests]
    else:
        sent += [mail.as_string() for mail in backend.messages]
    assert list(markers_in(*sent)) == []
    assert all(marker not in "".join(sent) for marker in MARKERS.values())
