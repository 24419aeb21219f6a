"""A full reconciliation of 100,000 subjects into the fake Dataverse and Salesforce servers.

`python -m bench.sync [--subjects 100000]`. Seeds an SQLite instance where every subject has
a flag (so each one is reconciled), computes the statuses the way `forewarn sync reconcile`
does, and pushes them through the real connectors into the fakes from
tests/connectors/fakes (real HTTP on loopback, the vendors' wire protocols). Reports requests
per 1,000 records, wall time, the most requests in flight at once and, for Dataverse, what
the service protection limits (6,000 requests and 52 concurrent per 5 minutes) would make
of it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from bench.run import RESULTS, ROOT
from bench.seed import Scale, Seeder, prepare
from connectors import load_connector
from sidecar.settings import load_settings
from sidecar.sync.outbox import current_statuses
from sidecar.sync.reconcile import reconcile
from tests.connectors.fakes import FakeDataverse, FakeSalesforce

DATAVERSE_WINDOW_SECONDS = 300
DATAVERSE_WINDOW_REQUESTS = 6_000
DATAVERSE_CONCURRENCY = 52


def busiest_window(starts: list[float], window: float) -> int:
    """The most requests that began within any `window` seconds."""
    ordered = sorted(starts)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def run_connector(kind: str, pairs: list, database: Any) -> dict[str, Any]:
    fake_class = FakeDataverse if kind == "dataverse" else FakeSalesforce
    options = {"api_limit": 10_000_000} if kind == "salesforce" else {}
    with fake_class.start(**options) as fake:
        for subject_kind in ("customer", "property"):
            fake.seed(
                subject_kind, *(s.record_key for _, s in pairs if s.subject_kind == subject_kind)
            )
        connector = load_connector(kind, kind, fake.settings(read_timeout=60.0), fake.environ)
        started = time.perf_counter()
        report = reconcile(database, kind, connector, pairs)
        seconds = time.perf_counter() - started
        requests = list(fake.requests)
        token_requests = len(fake.entra.requests) if kind == "dataverse" else 0
        total = len(requests) + token_requests
        result = {
            "records": len(pairs),
            "delivered": report.delivered,
            "not_found": report.not_found,
            "failed": report.failed + report.retry,
            "requests": total,
            "requests_by_kind": report.requests_by_kind,
            "requests_per_1000": 1000 * total / max(len(pairs), 1),
            "seconds": seconds,
            "push_seconds": report.seconds,
            "records_per_second": len(pairs) / seconds,
            "max_in_flight": fake.max_active,
            "created": len(fake.created),
        }
        if kind == "dataverse":
            window = busiest_window([r.started for r in requests], DATAVERSE_WINDOW_SECONDS)
            # With at most 6,000 requests per sliding 5 minutes, a run of N requests needs at
            # least (ceil(N / 6000) - 1) full windows before its last batch may start.
            floor = (math.ceil(total / DATAVERSE_WINDOW_REQUESTS) - 1) * DATAVERSE_WINDOW_SECONDS
            result |= {
                "busiest_5min_requests": window,
                "within_limits": window <= DATAVERSE_WINDOW_REQUESTS
                and fake.max_active <= DATAVERSE_CONCURRENCY,
                "limit_floor_seconds": max(floor, 0),
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Reconcile many subjects into the fake CRMs")
    parser.add_argument("--subjects", type=int, default=100_000)
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
    from sidecar.storage.database import Database

    database = Database(url)
    try:
        started = time.perf_counter()
        with database.transaction() as session:
            pairs = list(current_statuses(session, settings))
        status_seconds = time.perf_counter() - started
        print(f"statuses of {len(pairs):,} subjects computed in {status_seconds:.1f}s")
        results: dict[str, Any] = {"subjects": len(pairs), "status_seconds": status_seconds}
        for kind in ("dataverse", "salesforce"):
            results[kind] = outcome = run_connector(kind, pairs, database)
            print(
                f"{kind}: {outcome['delivered']:,} delivered in {outcome['seconds']:.1f}s "
                f"(pushing {outcome['push_seconds']:.1f}s, the rest recording cursors), "
                f"{outcome['requests']} requests ({outcome['requests_per_1000']:.1f} per 1,000 "
                f"records; {outcome['requests_by_kind']}), at most {outcome['max_in_flight']} "
                "in flight"
            )
            if kind == "dataverse":
                print(
                    f"  busiest 5 minutes: {outcome['busiest_5min_requests']} requests; "
                    f"within service protection limits: {outcome['within_limits']}; "
                    f"the 6,000-per-5-minutes limit alone adds {outcome['limit_floor_seconds']}s"
                )
    finally:
        database.dispose()
    out = RESULTS / f"sync-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
