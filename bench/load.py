"""An open-loop load client at a fixed rate, for latency below saturation (wrk2's job).

Each request has a scheduled start time (rate r: request j at j/r seconds); latency is
measured from that scheduled time, so a slow response delays the requests behind it and
shows up in their latency too (no coordinated omission). Run as its own process:

    python -m bench.load --url http://127.0.0.1:PORT --mode banner --rate 100 --seconds 10

It prints one JSON line: achieved rate, errors, p50/p90/p99 in ms, and its own CPU time
(so a saturated client would show itself).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import threading
import time
from urllib.parse import urlsplit

from bench.seed import flag_id, subject_of


def path_for(mode: str, rng: random.Random, subjects: int, flags: int) -> str:
    if mode == "banner":
        kind, ref = subject_of(rng.randrange(subjects))
        return f"/api/v1/subjects/{kind}/{ref}/banner"
    if mode == "details":
        return f"/api/v1/flags/{flag_id(rng.randrange(flags))}/details"
    return "/bench/baseline"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(
    url: str, mode: str, rate: float, seconds: float, token: str, subjects: int, flags: int
) -> dict[str, object]:
    parts = urlsplit(url)
    total = int(rate * seconds)
    # Enough senders that, at the target latency, none falls behind its schedule.
    senders = max(4, min(64, int(rate * 0.05) + 4))
    latencies: list[list[float]] = [[] for _ in range(senders)]
    errors = [0] * senders
    start = time.perf_counter() + 0.2
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def send(n: int) -> None:
        rng = random.Random(n)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        for j in range(n, total, senders):
            due = start + j / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                connection.request("GET", path_for(mode, rng, subjects, flags), headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    errors[n] += 1
            except (OSError, http.client.HTTPException):
                errors[n] += 1
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            latencies[n].append(time.perf_counter() - due)
        connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    every = [value for chunk in latencies for value in chunk]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "mode": mode,
        "target_rate": rate,
        "achieved_rate": round(len(every) / elapsed, 1),
        "requests": len(every),
        "errors": sum(errors),
        "p50_ms": round(percentile(every, 0.50) * 1000, 2),
        "p90_ms": round(percentile(every, 0.90) * 1000, 2),
        "p99_ms": round(percentile(every, 0.99) * 1000, 2),
        "client_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=("baseline", "banner", "details"), required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--flags", type=int, default=10_000)
    args = parser.parse_args()
    token = os.environ.get("BENCH_TOKEN", "")
    result = run(args.url, args.mode, args.rate, args.seconds, token, args.subjects, args.flags)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
