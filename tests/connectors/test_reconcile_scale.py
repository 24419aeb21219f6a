"""A 10,000-subject reconciliation per connector: the batch form keeps request counts small."""

from __future__ import annotations

import pytest

from connectors import load_connector
from tests.connectors.conftest import expected_view, make_status
from tests.connectors.fakes import FakeDataverse, FakeSalesforce, FakeWebhookReceiver

SUBJECTS = 10_000

# kind, fake, extra settings, expected requests by kind
CASES = [
    (
        "dataverse",
        FakeDataverse,
        {"read_timeout": 10.0},
        {"token": 1, "read": 1, "batch": 10},
    ),
    # The lookup of 10,000 keys is one request; a loaded machine must not time it out into a
    # retry, which would count a second.
    (
        "salesforce",
        FakeSalesforce,
        {"read_timeout": 30.0},
        {"token": 1, "query": 1, "collection": 10},
    ),
    ("webhook", FakeWebhookReceiver, {"batch_size": 500}, {"event": 20}),
]


@pytest.mark.parametrize(
    ("kind", "fake_class", "settings", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_ten_thousand_subjects(kind, fake_class, settings, expected) -> None:
    refs = [f"CRM-{i:05d}" for i in range(SUBJECTS)]
    statuses = [
        make_status(ref, level=("amber", "red", "none")[i % 3]) for i, ref in enumerate(refs)
    ]
    with fake_class.start() as fake:
        fake.seed("customer", *refs)
        connector = load_connector("crm", kind, fake.settings(**settings), fake.environ)
        report = connector.reconcile(statuses)
        assert report.delivered == SUBJECTS, report.failures[:3]
        assert report.requests_by_kind == expected
        assert report.requests == sum(expected.values())
        for status in statuses[:: SUBJECTS // 50]:
            assert fake.status_of("customer", status.record_key) == expected_view(status)
        assert fake.created == []
