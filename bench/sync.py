"""CRM requests per 1,000 changes: a burst through the outbox, and a full reconciliation.

`python -m bench.sync [--subjects 100000] [--burst 10000]`. Seeds an SQLite instance where
every subject has a flag, then, for each connector (Dataverse, Salesforce, webhook), against
the fakes from tests/connectors/fakes (real HTTP on loopback, the vendors' wire protocols):

- a burst: `--burst` subjects get a status change at once, as an import of that many flags
  writes them, and the sync worker drains the outbox with the configured `[sync]` settings,
  through a connector just started, for subjects new to it (no record Id of theirs kept in
  `sync_record_ids`);
- a reconciliation of every subject, computed the way `forewarn sync reconcile` does, the
  connector's first (no record Id kept);
- for a connector that looks record Ids up, a second burst into the same org after that
  reconciliation, then a second reconciliation, each through a connector just started: the
  subjects are known, their Ids kept in the database.

Salesforce runs twice: with its default `write_by = "id"` (records' Ids looked up first,
then kept) and with `write_by = "external_id"` (sObject Collections upserts by external ID,
no lookup).

Reports requests per 1,000 records with and without the token request, wall time, the most
requests in flight at once and, for Dataverse, what the service protection limits (6,000
requests per 5 minutes, 52 concurrent) would make of it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, func, insert, select

from bench.run import RESULTS, ROOT
from bench.seed import Scale, Seeder, prepare
from connectors import load_connector
from sidecar.settings import Settings, load_settings
from sidecar.storage.database import Database, utcnow
from sidecar.sync.models import CrmRecordId, StatusChange, SyncClaim, SyncCursor
from sidecar.sync.outbox import current_statuses
from sidecar.sync.reconcile import reconcile
from sidecar.sync.worker import SyncWorker
from tests.connectors.fakes import FakeDataverse, FakeSalesforce, FakeWebhookReceiver

# Dataverse's service protection limits, per user and web server (Microsoft Learn, "Service
# protection API limits"): 6,000 requests in a sliding 5 minutes, 20 minutes of execution
# time in the same window, 52 requests at once. The number-of-requests limit counts a $batch
# as one request ("A batch can contain up to 1000 operations and will avoid the number of
# requests limit"); its execution time counts whole, and the entitlement limits (Power
# Platform requests per 24 hours) count every operation inside it ("Entitlement limits are
# based on CRUD operations and accrue whether or not they are included in a batch
# operation"). The bench counts both ways; only the first is a service protection figure.
DATAVERSE_WINDOW_SECONDS = 300
DATAVERSE_WINDOW_REQUESTS = 6_000
DATAVERSE_CONCURRENCY = 52
# Each connector with its default settings, and Salesforce also written by external ID;
# whether it looks record Ids up (and so has a burst for known subjects to measure too).
VARIANTS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("dataverse", "dataverse", {}, False),
    ("salesforce", "salesforce", {}, True),
    ("salesforce_by_external_id", "salesforce", {"write_by": "external_id"}, False),
    ("webhook", "webhook", {}, False),
]


def busiest_window(starts: list[float], window: float) -> int:
    """The most requests that began within any `window` seconds."""
    ordered = sorted(starts)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


@contextmanager
def seeded_fake(kind: str, pairs: list) -> Iterator[Any]:
    """The kind's fake CRM, holding a record for every subject in `pairs`."""
    fakes = {"dataverse": FakeDataverse, "salesforce": FakeSalesforce}
    fake_class = fakes.get(kind, FakeWebhookReceiver)
    options = {"api_limit": 10_000_000} if kind == "salesforce" else {}
    with fake_class.start(**options) as fake:
        for subject_kind in ("customer", "property"):
            fake.seed(
                subject_kind, *(s.record_key for _, s in pairs if s.subject_kind == subject_kind)
            )
        yield fake


def figures(
    kind: str, fake: Any, records: int, counts: dict[str, int], since: int = 0
) -> dict[str, Any]:
    """Requests the fake received (and its identity provider), per 1,000 records.

    `since` leaves out the requests the fake had received before (for a second run into it).
    """
    requests = list(fake.requests)[since:]
    total = len(requests) + (len(fake.entra.requests) if kind == "dataverse" else 0)
    tokens = counts.get("token", 0)
    result = {
        "records": records,
        "requests": total,
        "requests_by_kind": counts,
        "requests_per_1000": 1000 * total / max(records, 1),
        "requests_per_1000_besides_token": 1000 * (total - tokens) / max(records, 1),
        "max_in_flight": fake.max_active,
        "created": len(fake.created),
    }
    if kind == "dataverse":
        window = busiest_window([r.started for r in requests], DATAVERSE_WINDOW_SECONDS)
        # With at most 6,000 requests per sliding 5 minutes, a run of N requests needs at
        # least (ceil(N / 6000) - 1) full windows before its last batch may start.
        floor = (math.ceil(total / DATAVERSE_WINDOW_REQUESTS) - 1) * DATAVERSE_WINDOW_SECONDS
        batches = sum(1 for r in requests if r.path.endswith("/$batch"))
        result |= {
            # Operations inside the $batch requests plus the requests sent alone: what the
            # entitlement limits count, not the service protection limits.
            "entitlement_operations": sum(fake.batch_sizes) + len(requests) - batches,
            "busiest_5min_requests": window,
            "within_limits": window <= DATAVERSE_WINDOW_REQUESTS
            and fake.max_active <= DATAVERSE_CONCURRENCY,
            "limit_floor_seconds": max(floor, 0),
        }
    return result


def run_connector(
    kind: str,
    pairs: list,
    database: Database,
    options: dict[str, Any],
    known_burst: tuple[Settings, int] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Reconcile every subject in `pairs` into a fresh fake, the connector's first.

    With `known_burst` (the `[sync]` settings and a number of changes), a burst then goes
    into the same fake through a connector just started, for subjects now known, and a
    second reconciliation after it; both are returned by name ("burst_known",
    "reconcile_known").
    """
    with seeded_fake(kind, pairs) as fake:
        forget_record_ids(database, kind)
        result = reconcile_into(kind, pairs, database, options, fake)
        after: dict[str, dict[str, Any]] = {}
        if known_burst is not None:
            sync_settings, changes = known_burst
            burst = pairs[:changes]
            after["burst_known"] = drain_burst(
                kind, kind, burst, database, sync_settings, fake, options
            )
            after["reconcile_known"] = reconcile_into(kind, pairs, database, options, fake)
    return result, after


def reconcile_into(
    kind: str, pairs: list, database: Database, options: dict[str, Any], fake: Any
) -> dict[str, Any]:
    """Reconcile every subject in `pairs` into `fake` through a connector just started."""
    sent = len(fake.requests)
    settings = fake.settings(read_timeout=60.0, **options)
    connector = load_connector(kind, kind, settings, fake.environ)
    started = time.perf_counter()
    report = reconcile(database, kind, connector, pairs)
    seconds = time.perf_counter() - started
    result = figures(kind, fake, len(pairs), report.requests_by_kind, since=sent)
    return result | {
        "delivered": report.delivered,
        "not_found": report.not_found,
        "failed": report.failed + report.retry,
        "seconds": seconds,
        "push_seconds": report.seconds,
        "records_per_second": len(pairs) / seconds,
    }


def run_burst(
    kind: str,
    pairs: list,
    database: Database,
    settings: Settings,
    changes: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    """A burst of `changes` into a fresh fake, for subjects whose record Ids nobody kept."""
    name, burst = f"burst-{kind}", pairs[:changes]
    with seeded_fake(kind, burst) as fake:
        forget_record_ids(database, name)
        return drain_burst(name, kind, burst, database, settings, fake, options)


def forget_record_ids(database: Database, name: str) -> None:
    """Drop the record Ids connector `name` kept (a fake's Ids are new each run)."""
    with database.transaction() as session:
        session.execute(delete(CrmRecordId).where(CrmRecordId.connector == name))


def drain_burst(
    name: str,
    kind: str,
    burst: list,
    database: Database,
    settings: Settings,
    fake: Any,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Write a status change for every subject of `burst` at once and let a worker drain them.

    The worker's connector is just started; what it knows of the records is what the
    database has kept for `name`.
    """
    sent = len(fake.requests)
    crm = fake.settings(read_timeout=60.0, **options)
    connector = load_connector(name, kind, crm, fake.environ)
    with database.transaction() as session:
        session.execute(delete(SyncClaim).where(SyncClaim.connector == name))
        session.execute(delete(SyncCursor).where(SyncCursor.connector == name))
        session.execute(delete(StatusChange))
        now = utcnow()
        session.execute(
            insert(StatusChange),
            [{"subject_id": i, "version": s.version, "created_at": now} for i, s in burst],
        )
    worker = SyncWorker(database, settings, {name: connector}, worker_id="bench")
    started, passes = time.perf_counter(), 0
    while worker.drain(name).busy:
        passes += 1
    seconds = time.perf_counter() - started
    with database.transaction() as session:
        delivered = session.scalar(
            select(func.count()).where(SyncCursor.connector == name, SyncCursor.state == "ok")
        )
        session.execute(delete(StatusChange))
    result = figures(kind, fake, len(burst), connector.request_counts(), since=sent)
    return result | {"delivered": delivered, "passes": passes, "seconds": seconds}


def report_line(what: str, kind: str, outcome: dict[str, Any]) -> str:
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(outcome["requests_by_kind"].items()))
    return (
        f"{kind} {what}: {outcome['delivered']:,} of {outcome['records']:,} delivered in "
        f"{outcome['seconds']:.1f}s; {outcome['requests']} requests ({by_kind}): "
        f"{outcome['requests_per_1000']:.2f} per 1,000 records, "
        f"{outcome['requests_per_1000_besides_token']:.2f} besides the token; "
        f"at most {outcome['max_in_flight']} in flight"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="CRM requests per 1,000 changes, by connector")
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    home = RESULTS / f"sync-{args.subjects}"
    instance, url = home / "instance", f"sqlite:///{home / 'forewarn.db'}"
    marker = home / "seeded.json"
    if args.reseed or not marker.exists():
        started = time.perf_counter()
        database = prepare(url, instance)
        # A flag on every subject: every one of them is part of the reconciliation.
        Seeder(database, instance, Scale(args.subjects, args.subjects, 0), print).run()
        database.dispose()
        marker.write_text(json.dumps({"seconds": time.perf_counter() - started}))
    settings = load_settings(
        ROOT / "config" / "forewarn.toml", instance_dir=instance, database_url=url, environ={}
    )
    database = Database(url)
    database.migrate()  # a seed kept from an earlier run may predate the newest tables
    try:
        started = time.perf_counter()
        with database.transaction() as session:
            pairs = list(current_statuses(session, settings))
        status_seconds = time.perf_counter() - started
        print(f"statuses of {len(pairs):,} subjects computed in {status_seconds:.1f}s")
        results: dict[str, Any] = {
            "subjects": len(pairs),
            "status_seconds": status_seconds,
            "sync_batch_size": settings.sync.batch_size,
        }
        for label, kind, options, looks_up in VARIANTS:
            burst = run_burst(kind, pairs, database, settings, args.burst, options)
            what = f"burst of {args.burst:,} changes" + (", new subjects" if looks_up else "")
            print(report_line(what, label, burst))
            known = (settings, args.burst) if looks_up else None
            whole, after = run_connector(kind, pairs, database, options, known)
            print(report_line(f"first reconcile of {len(pairs):,} subjects", label, whole))
            if after:
                what = f"burst of {args.burst:,} changes after it, known subjects"
                print(report_line(what, label, after["burst_known"]))
                what = f"second reconcile of {len(pairs):,} subjects, known"
                print(report_line(what, label, after["reconcile_known"]))
            if kind == "dataverse":
                for what, outcome in (("burst", burst), ("reconcile", whole)):
                    print(
                        f"  {what}'s busiest 5 minutes: {outcome['busiest_5min_requests']} "
                        f"requests (a $batch counts as one), at most "
                        f"{outcome['max_in_flight']} at once; within service protection "
                        f"limits: {outcome['within_limits']}; "
                        f"{outcome['entitlement_operations']:,} operations for the "
                        "entitlement limits (each one inside a $batch counts)"
                    )
            results[label] = {"burst": burst, "reconcile": whole} | after
    finally:
        database.dispose()
    out = RESULTS / f"sync-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
