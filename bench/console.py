"""What the console's home page queries cost as the register grows: `python -m bench.console
--scale 100k 1m` (PostgreSQL).

Each scale is seeded once into a database of its own (bench/seed.py's layout, with a few
rows in every queue: the same few at every scale), then each home-page count query is run
under EXPLAIN (ANALYZE, BUFFERS) and its plan's figures are printed side by side. The figure
that matters is each query's ratio against the smallest scale measured in the same run: an
index-backed query reads about the same pages at 1,000,000 subjects as at 100,000 (a ratio
near 1), a query that scans grows with the register (a ratio near 10).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, update

from bench import server as servers
from bench.run import ensure_seeded, place
from bench.seed import Scale, flag_id
from sidecar.register.case_models import Notice, PanelDecision
from sidecar.register.models import Flag, Incident
from sidecar.register.rules import PANEL_ROLES
from sidecar.storage.database import Database

# Few audit entries: the home page reads none, and the 1m seed has enough to write.
SCALES = {
    "10k": Scale(10_000, 1_000, 1_000),
    "100k": Scale(100_000, 10_000, 1_000),
    "1m": Scale(1_000_000, 100_000, 1_000),
}
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_console_{scale}"
IN_EACH_QUEUE = 20
"""How many proposals, flags awaiting a notice and untriaged incidents every scale holds."""


@dataclass(frozen=True)
class Panel:
    """A panel member with every panel role, so the vote queue is counted for them."""

    id: str = "u.bench.panel"
    roles: tuple[str, ...] = PANEL_ROLES


def fill_queues(url: str) -> None:
    """Put the same few rows in the queues at every scale (the seed's flags are all active
    and told, and its incidents all triaged): idempotent, by the seed's own ids."""
    proposed = [flag_id(k) for k in range(IN_EACH_QUEUE)]
    untold = [flag_id(k) for k in range(IN_EACH_QUEUE, 2 * IN_EACH_QUEUE)]
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            connection.execute(delete(Notice).where(Notice.flag_id.in_(proposed + untold)))
            connection.execute(delete(PanelDecision).where(PanelDecision.flag_id.in_(proposed)))
            connection.execute(
                update(Flag)
                .where(Flag.id.in_(proposed))
                .values(state="proposed", activated_at=None, notice_at=None)
            )
            connection.execute(update(Flag).where(Flag.id.in_(untold)).values(notice_at=None))
            oldest = (
                Incident.__table__.select()
                .with_only_columns(Incident.id)
                .order_by(Incident.id)
                .limit(IN_EACH_QUEUE)
            )
            connection.execute(update(Incident).where(Incident.id.in_(oldest)).values(triage=None))
    finally:
        database.dispose()


def plans(url: str, instance: Any, rounds: int) -> dict[str, dict[str, float]]:
    """Each home-page query's plan figures (the median of `rounds` runs, after a warm one)."""
    os.environ.update(
        (k, v) for k, v in servers.environ_for(instance, url).items() if k.startswith("FOREWARN_")
    )
    from sidecar import create_app
    from sidecar.console.queues import home_queries

    app = create_app()
    database = app.extensions["forewarn"].database
    found: dict[str, dict[str, float]] = {}
    try:
        with app.test_request_context("/"):
            for title, query in home_queries(Panel()).items():
                compiled = query.compile(
                    dialect=database.engine.dialect, compile_kwargs={"render_postcompile": True}
                )
                sql = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + str(compiled)
                runs = []
                with database.engine.connect() as connection:
                    for _ in range(rounds + 1):
                        [[plan]] = connection.exec_driver_sql(sql, compiled.params).all()
                        runs.append(plan if isinstance(plan, list) else json.loads(plan))
                top = [run[0] for run in runs[1:]]
                found[title] = {
                    "cost": top[0]["Plan"]["Total Cost"],
                    "pages": statistics.median(_pages(t["Plan"]) for t in top),
                    "ms": statistics.median(t["Execution Time"] for t in top),
                    "rows": top[0]["Plan"]["Actual Rows"],
                    "scans": _seq_scans(top[0]["Plan"]),
                }
    finally:
        database.dispose()
    return found


def _pages(node: dict[str, Any]) -> float:
    return float(node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0))


def _seq_scans(node: dict[str, Any]) -> list[str]:
    """The tables the plan reads whole."""
    here = [node["Relation Name"]] if node.get("Node Type") == "Seq Scan" else []
    return here + [t for child in node.get("Plans", []) for t in _seq_scans(child)]


def main() -> None:
    parser = argparse.ArgumentParser(description="home-page query costs at two or more scales")
    parser.add_argument("--scale", choices=tuple(SCALES), nargs="+", default=["100k", "1m"])
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="PostgreSQL database per scale; {scale} is replaced by the scale's name",
    )
    parser.add_argument("--reseed", action="store_true", help="seed again even if seeded")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    scales = sorted(args.scale, key=lambda name: SCALES[name].subjects)
    results = {}
    for name in scales:
        seed_args = argparse.Namespace(postgres_url=args.postgres_url, reseed=args.reseed)
        ensure_seeded("postgresql", name, SCALES[name], seed_args)
        instance, url, _marker = place("postgresql", name, args.postgres_url)
        fill_queues(url)
        results[name] = plans(url, instance, args.rounds)
    report(scales, results)


def report(scales: list[str], results: dict[str, dict[str, dict[str, float]]]) -> None:
    """One row a query: pages read and time at each scale, and each against the smallest."""
    base = scales[0]
    header = f"{'home-page query':44}" + "".join(
        f"{name + ' pages':>12}{name + ' ms':>10}" for name in scales
    )
    header += "".join(f"{name + '/' + base + ' pages':>18}" for name in scales[1:])
    print(header)
    for title in results[base]:
        row = f"{title:44}"
        for name in scales:
            figures = results[name][title]
            row += f"{figures['pages']:12.0f}{figures['ms']:10.3f}"
        for name in scales[1:]:
            ratio = results[name][title]["pages"] / max(1.0, results[base][title]["pages"])
            row += f"{ratio:18.2f}"
        scans = sorted({t for name in scales for t in results[name][title]["scans"]})
        print(row + (f"  seq scan: {', '.join(scans)}" if scans else ""))
    print(
        "pages: shared buffers the plan read (hit or from disk), the median of the rounds; "
        "a ratio near 1 is flat, near the scales' ratio is a scan"
    )


if __name__ == "__main__":
    main()
