"""A burst of changes leaves the outbox in the CRM's batch form, a few requests per thousand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert, select

from sidecar import create_app
from sidecar.register.models import Subject
from sidecar.storage.database import utcnow
from sidecar.sync.models import StatusChange, SyncCursor
from tests.connectors.fakes import FakeDataverse, FakeSalesforce
from tests.sync.test_sync import worker

CHANGES = 2_000
REFS = [f"CRM-B{i:04d}" for i in range(CHANGES)]
# kind, fake, connector settings, requests by kind for the whole burst. Batch sizes are a
# tenth of the defaults so the burst shows two passes of a push each.
CASES = [
    # Per pass of 1,000: one read $batch (rows and the level options), ten write $batches.
    ("dataverse", FakeDataverse, {"batch_size": 100}, {"token": 1, "read": 2, "batch": 20}),
    # Per pass of 1,000: one Composite of two Id queries, ten Composites of five collections.
    (
        "salesforce",
        FakeSalesforce,
        {"batch_size": 20},
        {"token": 1, "query": 2, "collection": 20},
    ),
]


@pytest.fixture(params=CASES, ids=[case[0] for case in CASES])
def burst(
    request: pytest.FixtureRequest, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Any, Any, dict[str, int]]]:
    kind, fake_class, options, expected = request.param
    with fake_class.start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        fake.seed("customer", *REFS)
        settings = make_settings(connectors={"crm": {"kind": kind, **fake.settings(**options)}})
        app = create_app(settings)
        yield app, fake, app.extensions["forewarn"].connectors["crm"], expected
        app.extensions["forewarn"].database.dispose()


def write_burst(app: Any) -> None:
    """A status change for every subject at once, as an import of that many flags makes."""
    now = utcnow()
    with app.extensions["forewarn"].database.transaction() as session:
        session.execute(
            insert(Subject),
            [
                {"id": f"s{i:05d}", "kind": "customer", "ref": ref, "status_version": 1}
                for i, ref in enumerate(REFS)
            ],
        )
        session.execute(
            insert(StatusChange),
            [{"subject_id": f"s{i:05d}", "version": 1, "created_at": now} for i in range(CHANGES)],
        )


def test_a_burst_goes_out_in_batches_and_every_record_arrives(burst) -> None:
    app, fake, connector, expected = burst
    write_burst(app)
    while worker(app).run_once()[0].busy:
        pass
    assert connector.request_counts() == expected
    assert fake.max_active <= getattr(connector, "max_concurrency", 1) <= 52
    with app.extensions["forewarn"].database.transaction() as session:
        states = set(session.scalars(select(SyncCursor.state)))
        delivered = session.scalar(select(SyncCursor.delivered_version).limit(1))
    assert states == {"ok"} and delivered == 1
    for ref in REFS[::97]:
        held = fake.status_of("customer", ref)
        assert held is not None and (held["level"], held["version"]) == ("none", 1), ref
    assert fake.created == []
