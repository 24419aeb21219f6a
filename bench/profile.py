"""Profile one endpoint under wrk load with py-spy (samples holding the GIL, i.e. CPU).

`python -m bench.profile --db sqlite --mode banner`. py-spy (from PyPI) is installed into
this venv on first use. Prints where the workers' time goes: the inclusive share of
Forewarn's own functions and the heaviest leaf frames; the raw stacks are kept.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import server as servers
from bench.run import LUA, RESULTS, add_seed_arguments, ensure_seeded, place
from bench.seed import BENCH_VISITOR, SCALES


def ensure_py_spy() -> str:
    path = Path(sys.executable).parent / "py-spy"
    if not path.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(path)


def summarise(raw: Path, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        for name in {f for f in frames if "sidecar/" in f or "/bench/" in f}:
            inclusive[name.split(":")[0] + ")"] += samples
        leaves[frames[-1]] += samples
    lines = [f"{total} samples", "-- Forewarn functions, inclusive"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines.append("-- leaf frames")
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in leaves.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Profile an endpoint under load with py-spy")
    add_seed_arguments(parser)
    parser.add_argument("--mode", choices=("baseline", "banner", "details"), default="banner")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    py_spy = ensure_py_spy()
    scale = SCALES[args.scale]
    ensure_seeded(args.db, args.scale, scale, args)
    instance, url, _marker = place(args.db, args.scale, args.postgres_url)
    server = servers.start(instance, url, RESULTS / f"gunicorn-profile-{args.db}.log")
    try:
        user = (
            ("u.bench.agent", ["agent"])
            if args.mode == "banner"
            else (BENCH_VISITOR, ["visiting_officer"])
        )
        env = dict(
            os.environ,
            BENCH_MODE=args.mode,
            BENCH_TOKEN=servers.bearer_token(server, *user),
            BENCH_SUBJECTS=str(scale.subjects),
            BENCH_FLAGS=str(scale.flags),
        )
        load = subprocess.Popen(
            ["wrk", "-t1", "-c16", f"-d{args.seconds + 4}s", "-s", str(LUA), server.url],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        time.sleep(2)
        raws = []
        recorders = []
        for pid in server.worker_pids():
            raw = RESULTS / f"profile-{args.db}-{args.mode}-{pid}.txt"
            raws.append(raw)
            recorders.append(
                subprocess.Popen(
                    [
                        *(py_spy, "record", "-p", str(pid), "-d", str(args.seconds)),
                        *("-f", "raw", "-o", str(raw), "--nonblocking", "--gil"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for recorder in recorders:
            recorder.wait()
        load.wait()
    finally:
        server.stop()
    merged = RESULTS / f"profile-{args.db}-{args.mode}.txt"
    # py-spy may end a file without a newline: join line by line, not file by file.
    merged.write_text(
        "".join(
            line + "\n" for raw in raws if raw.exists() for line in raw.read_text().splitlines()
        )
    )
    print(summarise(merged, args.top))
    print(f"\nraw stacks: {merged.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
