"""Run the benchmarks: `python -m bench.run --db sqlite|postgresql --scale small|large`.

Every figure is a ratio against a baseline measured in the same run, on the same server,
because the machine is shared and noisy. Results go to bench/results/ (git-ignored) as JSON,
and a summary table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench import server as servers
from bench.seed import BENCH_VISITOR, SCALES, Scale, refresh_grants, seed
from sidecar.storage.database import Database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "lua" / "load.lua"
# One database per scale, so a large run can be compared with a small one in the same run.
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_{scale}"
GOALS = {"banner": 0.9, "details": 0.8}


def add_seed_arguments(parser: argparse.ArgumentParser) -> None:
    """--db, --scale, --postgres-url and --reseed: which seeded bench database to use."""
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--scale", choices=tuple(SCALES), default="small")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="PostgreSQL database for the bench; {scale} is replaced by the scale's name",
    )
    parser.add_argument("--reseed", action="store_true", help="seed again even if seeded")


def log(message: str) -> None:
    print(message, flush=True)


def place(db: str, scale_name: str, postgres_url: str) -> tuple[Path, str, Path]:
    """Instance directory, database URL and seed marker for this engine and scale.

    SQLite keeps one file per scale. On PostgreSQL one instance (and key ring) serves the
    databases of every scale (`{scale}` in the URL names each; without it, the scales take
    turns in one database and each run seeds again).
    """
    if db == "sqlite":
        home = RESULTS / f"sqlite-{scale_name}"
        return home / "instance", f"sqlite:///{home / 'forewarn.db'}", home / "seeded.json"
    home = RESULTS / "postgresql"
    url = postgres_url.replace("{scale}", scale_name)
    return home / "instance", url, home / f"seeded-{scale_name}.json"


def create_database(url: str) -> None:
    """Create a PostgreSQL database if it does not exist (connecting to `postgres` for it)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    wanted = make_url(url)
    if wanted.get_backend_name() != "postgresql":
        return
    engine = create_engine(wanted.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": wanted.database}
            ).first()
            if exists is None:
                name = connection.dialect.identifier_preparer.quote(wanted.database)
                connection.execute(text(f"CREATE DATABASE {name}"))
                log(f"seed: created database {wanted.database}")
    finally:
        engine.dispose()


def subjects_in(url: str) -> int | None:
    """How many subjects the database holds (None if it cannot say), to trust a seed marker."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from sidecar.register.models import Subject

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(Subject)).scalar_one()
    except SQLAlchemyError:
        return None
    finally:
        database.dispose()


def sealed_with(url: str, instance: Path) -> bool:
    """Whether the seeded flags open with this instance's keys.

    Another checkout's bench run may have seeded the same PostgreSQL database with its own
    keys since; every details call would then fail, so seed again instead.
    """
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from sidecar.register.models import Flag
    from sidecar.storage.crypto import DecryptionError, KeyRing, KeyRingError
    from sidecar.storage.keys import KeyFiles

    database = Database(url)
    try:
        ring = KeyRing.load(KeyFiles.of(instance).data_keys, environ={})
        with database.sessions() as session:
            flag = session.scalars(select(Flag).limit(1)).first()
            return flag is not None and bool(flag.unseal(ring, "reason"))
    except (SQLAlchemyError, KeyRingError, DecryptionError, OSError, ValueError):
        return False
    finally:
        database.dispose()


def ensure_seeded(db: str, scale_name: str, scale: Scale, args: argparse.Namespace) -> dict:
    instance, url, marker = place(db, scale_name, args.postgres_url)
    wanted = {"scale": scale_name, **scale.__dict__, "url": url}
    if not args.reseed and marker.exists():
        seeded = json.loads(marker.read_text())
        if (
            {k: seeded.get(k) for k in wanted} == wanted
            and subjects_in(url) == scale.subjects
            and sealed_with(url, instance)
        ):
            log(f"seed: reusing {db} {scale_name} seeded in {seeded['timings']['total']:.0f}s")
            return seeded
    log(
        f"seed: {db} {scale_name}: {scale.subjects:,} subjects, {scale.flags:,} flags, "
        f"{scale.audit_entries:,} audit entries"
    )
    marker.unlink(missing_ok=True)
    create_database(url)
    timings = seed(url, instance, scale, log=log)
    seeded = {**wanted, "timings": timings}
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(seeded, indent=2))
    log(f"seed: done in {timings['total']:.0f}s")
    return seeded


class CpuMeter:
    """CPU the server spends: its workers' and, on PostgreSQL, the database's processes.

    CPU per request is steadier than requests per second on a shared machine, and the ratio
    of two endpoints' CPU per request bounds their throughput ratio once the CPU is the limit.
    """

    def __init__(self, server: servers.Server, database_url: str) -> None:
        self.server = server
        self.database_url = database_url
        self._before: dict[int, float] = {}

    def pids(self) -> list[int]:
        pids = self.server.worker_pids()
        if self.database_url.startswith("postgresql"):
            pids += self._postgres_pids()
        return pids

    def _postgres_pids(self) -> list[int]:
        from sqlalchemy import text

        # The bench database's backends and the writers that flush and sync its WAL.
        database = Database(self.database_url)
        try:
            with database.engine.connect() as connection:
                return list(
                    connection.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND"
                            " (datname = current_database() OR backend_type IN"
                            " ('walwriter', 'checkpointer', 'background writer'))"
                        )
                    ).scalars()
                )
        finally:
            database.dispose()

    def start(self) -> None:
        self._before = servers.cpu_seconds(self.pids())

    def stop(self) -> float:
        """CPU seconds used since `start` by the processes there were then or are now."""
        after = servers.cpu_seconds(self.pids())
        return sum(seconds - self._before.get(pid, 0.0) for pid, seconds in after.items())


def wrk(
    meter: CpuMeter, mode: str, token: str, scale: Scale, args: argparse.Namespace
) -> dict[str, Any]:
    url = meter.server.url
    env = dict(
        os.environ,
        BENCH_MODE=mode,
        BENCH_TOKEN=token,
        BENCH_SUBJECTS=str(scale.subjects),
        BENCH_FLAGS=str(scale.flags),
    )
    command = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{args.seconds}s"]
    meter.start()
    done = subprocess.run(
        [*command, "--latency", "-s", str(LUA), url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = meter.stop()
    match = re.search(r"^WRKJSON (.*)$", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    result = json.loads(match[1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["server_cpu_ms"] = 1000 * cpu / max(result["requests"], 1)
    result["mode"] = mode
    return result


def fixed_rate(url: str, mode: str, token: str, rate: float, scale: Scale, seconds: float) -> dict:
    command = [sys.executable, "-m", "bench.load", "--url", url, "--mode", mode]
    command += ["--rate", f"{rate:.1f}", "--seconds", str(seconds)]
    command += ["--subjects", str(scale.subjects), "--flags", str(scale.flags)]
    done = subprocess.run(
        command,
        env=dict(os.environ, BENCH_TOKEN=token),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def agent_token(server: servers.Server) -> str:
    return servers.bearer_token(server, "u.bench.agent", ["agent"])


def tokens_for(server: servers.Server) -> dict[str, str]:
    # Bearer tokens last 15 minutes: a fresh set per round keeps long runs valid.
    return {
        "baseline": "",
        "banner": agent_token(server),
        "details": servers.bearer_token(server, BENCH_VISITOR, ["visiting_officer"]),
    }


def logged(label: str, result: dict[str, Any]) -> dict[str, Any]:
    errors = result["status_errors"] + result["socket_errors"]
    log(
        f"  {label:24s} {result['rps']:8.1f} req/s  "
        f"p50 {result['p50_us'] / 1000:6.1f} ms  p99 {result['p99_us'] / 1000:6.1f} ms  "
        f"server cpu {result['server_cpu_ms']:5.2f} ms/req  errors {errors}"
    )
    return result


def throughput(meter: CpuMeter, scale: Scale, args: argparse.Namespace) -> dict[str, Any]:
    """Rounds of baseline, banner, details with wrk (closed loop, saturating)."""
    server = meter.server
    results: dict[str, Any] = {"rounds": [], "latency": {}}
    for number in range(1, args.rounds + 1):
        tokens = tokens_for(server)
        results["rounds"].append(
            {
                mode: logged(f"round {number} {mode}", wrk(meter, mode, tokens[mode], scale, args))
                for mode in ("baseline", "banner", "details")
            }
        )
    for mode in ("baseline", "banner", "details"):
        rounds = results["rounds"]
        results[f"{mode}_rps"] = statistics.median(r[mode]["rps"] for r in rounds)
        results[f"{mode}_cpu_ms"] = statistics.median(r[mode]["server_cpu_ms"] for r in rounds)
        if mode != "baseline":
            ratios = [r[mode]["rps"] / r["baseline"]["rps"] for r in rounds]
            results[f"{mode}_ratio"] = statistics.median(ratios)
            cpu_ratios = [r["baseline"]["server_cpu_ms"] / r[mode]["server_cpu_ms"] for r in rounds]
            results[f"{mode}_cpu_ratio"] = statistics.median(cpu_ratios)
    tokens = tokens_for(server)
    for mode in ("banner", "details"):
        # Half the endpoint's own saturated throughput: below saturation for both.
        rate = max(5.0, results[f"{mode}_rps"] * args.rate_fraction)
        token = tokens[mode]
        base = fixed_rate(server.url, "baseline", "", rate, scale, args.latency_seconds)
        target = fixed_rate(server.url, mode, token, rate, scale, args.latency_seconds)
        results["latency"][mode] = {
            "rate": rate,
            "baseline": base,
            mode: target,
            "p50_ratio": target["p50_ms"] / base["p50_ms"],
            "p99_ratio": target["p99_ms"] / base["p99_ms"],
        }
        log(
            f"  fixed {rate:.0f} req/s  baseline p50 {base['p50_ms']} ms p99 {base['p99_ms']} ms"
            f" | {mode} p50 {target['p50_ms']} ms p99 {target['p99_ms']} ms"
            f" (errors {target['errors']}, client cpu {target['client_cpu_seconds']}s)"
        )
    return results


def scale_comparison(
    meter: CpuMeter,
    scale: Scale,
    reference: CpuMeter,
    reference_scale: Scale,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The banner on this scale's server against the same on the reference scale's, in turns.

    Both servers run side by side, and each round loads one and then the other, which goes
    first alternating from round to round, so the machine's drift and any cost of going
    second fall on both alike; the ratio is the median of the rounds' ratios.
    """
    sides = [
        (args.scale, meter, scale),
        (args.against, reference, reference_scale),
    ]
    rounds = []
    for number in range(1, args.rounds + 1):
        order = sides if number % 2 else sides[::-1]
        rounds.append(
            {
                name: logged(
                    f"round {number} banner {name}",
                    wrk(side, "banner", agent_token(side.server), seeded, args),
                )
                for name, side, seeded in order
            }
        )
    return {
        "against": args.against,
        "rounds": rounds,
        "rps": statistics.median(r[args.scale]["rps"] for r in rounds),
        "reference_rps": statistics.median(r[args.against]["rps"] for r in rounds),
        "ratio": statistics.median(r[args.scale]["rps"] / r[args.against]["rps"] for r in rounds),
        "cpu_ratio": statistics.median(
            r[args.against]["server_cpu_ms"] / r[args.scale]["server_cpu_ms"] for r in rounds
        ),
    }


def verify_timing(server_env: dict[str, str], url: str) -> dict[str, Any]:
    """`forewarn audit verify` against sha256sum over as many bytes as the chain hashes."""
    from sqlalchemy import func, select

    from sidecar.audit.models import AuditEntry
    from sidecar.audit.writer import CHAINED_FIELDS, HASH_DOMAIN

    database = Database(url)
    table = AuditEntry.__table__
    try:
        with database.engine.connect() as connection:
            entries = connection.execute(select(func.count()).select_from(table)).scalar_one()
            sample = connection.execute(
                select(table).order_by(table.c.seq).limit(10_000)
            ).mappings()
            sizes = []
            for row in sample:
                canonical = {
                    k: (v.isoformat() if hasattr(v, "isoformat") else v)
                    for k, v in row.items()
                    if k in CHAINED_FIELDS
                }
                encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
                sizes.append(len(HASH_DOMAIN) + len(encoded.encode()))
    finally:
        database.dispose()
    hashed_bytes = int(statistics.mean(sizes) * entries) if sizes else 0
    forewarn = str(Path(sys.executable).parent / "forewarn")
    started = time.perf_counter()
    done = subprocess.run(
        [forewarn, "audit", "verify"], env=server_env, capture_output=True, text=True
    )
    verify_seconds = time.perf_counter() - started
    with tempfile.NamedTemporaryFile(dir=RESULTS, prefix="sha-") as scratch:
        block = os.urandom(1 << 20)
        for _ in range(hashed_bytes >> 20):
            scratch.write(block)
        scratch.write(block[: hashed_bytes & ((1 << 20) - 1)])
        scratch.flush()
        started = time.perf_counter()
        subprocess.run(["sha256sum", scratch.name], capture_output=True, check=True)
        sha_seconds = time.perf_counter() - started
    per_million = 1e6 / max(entries, 1)
    return {
        "entries": entries,
        "hashed_bytes": hashed_bytes,
        "verify_exit": done.returncode,
        "verify_output": done.stdout.strip() or done.stderr.strip(),
        "verify_seconds": verify_seconds,
        "verify_seconds_per_million": verify_seconds * per_million,
        "sha256sum_seconds": sha_seconds,
        "sha256sum_seconds_per_million": sha_seconds * per_million,
        "ratio": verify_seconds / sha_seconds if sha_seconds else None,
    }


@contextmanager
def serving(db: str, scale_name: str, args: argparse.Namespace) -> Iterator[CpuMeter]:
    """gunicorn on this engine and scale's seeded database, with a meter of its CPU."""
    instance, url, _marker = place(db, scale_name, args.postgres_url)
    database = Database(url)
    refresh_grants(database)
    database.dispose()
    log_path = RESULTS / f"gunicorn-{db}-{scale_name}.log"
    server = servers.start(instance, url, log_path, args.workers, args.threads)
    log(
        f"{scale_name}: gunicorn -k gthread -w {args.workers} --threads {args.threads}"
        f" at {server.url}"
    )
    try:
        yield CpuMeter(server, url)
    finally:
        server.stop()


def peak_rss(server: servers.Server) -> dict[str, int]:
    found = {pid: servers.rss_kib(pid) for pid in server.worker_pids()}
    return {
        "peak_kib": max(v["VmHWM"] for v in found.values()),
        "current_kib": max(v["VmRSS"] for v in found.values()),
    }


def summarise(report: dict[str, Any]) -> str:
    lines = [f"Forewarn bench: {report['db']} {report['scale']} ({report['when']})"]
    seeded = report["seed"]
    lines.append(
        f"seed: {seeded['subjects']:,} subjects, {seeded['flags']:,} flags, "
        f"{seeded['audit_entries']:,} audit entries in {seeded['timings']['total']:.0f}s"
    )
    load = report.get("throughput")
    if load:
        lines.append(
            f"{'':10s}{'req/s':>9s}{'ratio':>8s}{'goal':>6s}  p50 ratio  p99 ratio"
            "  cpu ms/req  cpu ratio"
        )
        lines.append(
            f"{'baseline':10s}{load['baseline_rps']:9.1f}{1:8.2f}{'':6s}  {'':9s}  {'':9s}"
            f"  {load['baseline_cpu_ms']:10.2f}"
        )
        for mode in ("banner", "details"):
            latency = load["latency"][mode]
            failed = (
                sum(r[mode]["status_errors"] + r[mode]["socket_errors"] for r in load["rounds"])
                + latency[mode]["errors"]
            )
            lines.append(
                f"{mode:10s}{load[mode + '_rps']:9.1f}{load[mode + '_ratio']:8.2f}"
                f"{GOALS[mode]:6.1f}  {latency['p50_ratio']:9.2f}  {latency['p99_ratio']:9.2f}"
                f"  {load[mode + '_cpu_ms']:10.2f}  {load[mode + '_cpu_ratio']:9.2f}"
                f"   (latency at {latency['rate']:.0f} req/s)"
                + (f"  INVALID: {failed:,} failed requests" if failed else "")
            )
    compared = report.get("scale_comparison")
    if compared:
        failed = sum(
            r[scale]["status_errors"] + r[scale]["socket_errors"]
            for r in compared["rounds"]
            for scale in r
        )
        lines.append(
            f"banner {report['scale']} against {compared['against']} in turns: "
            f"{compared['rps']:.1f} against {compared['reference_rps']:.1f} req/s, "
            f"ratio {compared['ratio']:.2f} (goal 0.9), cpu ratio {compared['cpu_ratio']:.2f}"
            + (f"  INVALID: {failed:,} failed requests" if failed else "")
        )
    if "rss" in report:
        lines.append(f"worker peak RSS: {report['rss']['peak_kib'] / 1024:.0f} MiB")
    verify = report.get("verify")
    if verify:
        lines.append(
            f"audit verify: {verify['entries']:,} entries in {verify['verify_seconds']:.1f}s "
            f"({verify['verify_seconds_per_million']:.1f}s per million); sha256sum over "
            f"{verify['hashed_bytes'] / 1e6:.0f} MB: {verify['sha256sum_seconds']:.2f}s "
            f"(ratio {verify['ratio']:.0f}x); {verify['verify_output']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Forewarn benchmarks (ratios to a baseline)")
    add_seed_arguments(parser)
    parser.add_argument("--seconds", type=int, default=15, help="each wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rate-fraction", type=float, default=0.5)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=("load", "verify"))
    parser.add_argument(
        "--against",
        choices=tuple(SCALES),
        help="also load the banner in turns on this scale's server (goal: at least 0.9 of it)",
    )
    args = parser.parse_args()
    if args.against == args.scale:
        parser.error("--against must name a different scale from --scale")

    scale = SCALES[args.scale]
    RESULTS.mkdir(parents=True, exist_ok=True)
    seeded = ensure_seeded(args.db, args.scale, scale, args)
    instance, url, _marker = place(args.db, args.scale, args.postgres_url)
    report: dict[str, Any] = {
        "db": args.db,
        "scale": args.scale,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seed": seeded,
        "config": {k: v for k, v in vars(args).items() if k != "postgres_url"},
    }
    environ = servers.environ_for(instance, url)
    if "load" not in args.skip:
        with ExitStack() as stack:
            meter = stack.enter_context(serving(args.db, args.scale, args))
            report["throughput"] = throughput(meter, scale, args)
            report["rss"] = peak_rss(meter.server)
            if args.against:
                ensure_seeded(args.db, args.against, SCALES[args.against], args)
                reference = stack.enter_context(serving(args.db, args.against, args))
                report["scale_comparison"] = scale_comparison(
                    meter, scale, reference, SCALES[args.against], args
                )
    if "verify" not in args.skip:
        log("audit verify ...")
        report["verify"] = verify_timing(environ, url)
    out = RESULTS / f"{args.db}-{args.scale}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    summary = summarise(report)
    (RESULTS / f"summary-{args.db}-{args.scale}.txt").write_text(summary + "\n")
    print()
    print(summary)
    print(f"\nwritten: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
