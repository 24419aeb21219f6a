"""What one request costs, in one thread: CPU, wall time and SQL statements per call.

`python -m bench.cost --db sqlite --mode banner`. The app runs in this process on the seeded
bench database (seeded first if needed) and is called through Flask's test client, so there
is no server, no load generator and no other thread: the figures are steadier than wrk's and
show what a change to a route's code does. CPU is this process's (on SQLite it includes the
database engine; on PostgreSQL the server's own CPU is not counted, so see wall time too).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

from sqlalchemy import event

from bench import server as servers
from bench.app import create_bench_app
from bench.run import add_seed_arguments, ensure_seeded, place
from bench.seed import BENCH_VISITOR, PROPERTY_EVERY, SCALES, UPRN_BASE


def paths(mode: str, subjects: int, flags: int, count: int, seed: int) -> list[str]:
    """The same spread of calls as bench/lua/load.lua."""
    rng = random.Random(seed)
    if mode == "baseline":
        return ["/bench/baseline"] * count
    if mode == "details":
        return [f"/api/v1/flags/fa{rng.randrange(flags):030d}/details" for _ in range(count)]
    chosen = []
    for _ in range(count):
        i = rng.randrange(subjects)
        if i % PROPERTY_EVERY == 0:
            chosen.append(f"/api/v1/subjects/property/{UPRN_BASE + i}/banner")
        else:
            chosen.append(f"/api/v1/subjects/customer/CRM-{i:07d}/banner")
    return chosen


def measure(app: Any, token: str, calls: list[str]) -> dict[str, float]:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = app.extensions["forewarn"].database.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for path in calls:
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.get_data(True)}")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        event.remove(engine, "before_cursor_execute", count)
    n = len(calls)
    return {"cpu_ms": 1000 * cpu / n, "wall_ms": 1000 * wall / n, "statements": statements / n}


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU and statements per request, one thread")
    add_seed_arguments(parser)
    parser.add_argument("--mode", choices=("baseline", "banner", "details"), nargs="+")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    modes = args.mode or ["baseline", "banner", "details"]
    scale = SCALES[args.scale]
    ensure_seeded(args.db, args.scale, scale, args)
    instance, url, _marker = place(args.db, args.scale, args.postgres_url)
    os.environ.update(
        (k, v) for k, v in servers.environ_for(instance, url).items() if k.startswith("FOREWARN_")
    )
    app = create_bench_app()
    with app.app_context():
        from sidecar.identity import staff_sessions
        from sidecar.identity.access_tokens import issue_access_token
        from sidecar.identity.user import StaffUser

        def bearer(user_id: str, name: str, roles: tuple[str, ...]) -> str:
            # An access token lives only as long as its session, so each gets one.
            database = app.extensions["forewarn"].database
            session_id = staff_sessions.start(database, user_id, "api", 8 * 3600)
            return issue_access_token(StaffUser(user_id, name, roles, "api", session_id))

        tokens = {
            "baseline": "",
            "banner": bearer("u.bench.agent", "Bench Agent", ("agent",)),
            "details": bearer(BENCH_VISITOR, "Bench Visitor", ("visiting_officer",)),
        }
    for mode in modes:
        # A first pass warms SQLAlchemy's statement cache and the database's pages.
        measure(app, tokens[mode], paths(mode, scale.subjects, scale.flags, 200, 0))
        rounds = [
            measure(app, tokens[mode], paths(mode, scale.subjects, scale.flags, args.calls, r + 1))
            for r in range(args.rounds)
        ]
        cpu = statistics.median(r["cpu_ms"] for r in rounds)
        wall = statistics.median(r["wall_ms"] for r in rounds)
        print(
            f"{args.db} {mode:8}  cpu {cpu:6.3f} ms  wall {wall:6.3f} ms  "
            f"statements {rounds[0]['statements']:5.2f}  (median of {args.rounds} x {args.calls})"
        )


if __name__ == "__main__":
    main()
