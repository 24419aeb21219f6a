"""Durable before disclosure, with group commit; one chain across threads and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text

from sidecar.audit import writer as audit
from sidecar.audit.verify import verify
from sidecar.storage.keys import AuditKeys, KeyFiles
from tests.audit.conftest import metric
from tests.conftest import CONFIG, ROOT

WRITER = """
import sys, threading
from sidecar import create_app
from sidecar.audit import writer as audit
from sidecar.settings import load_settings

config, instance, url, name, threads, each = sys.argv[1:7]
app = create_app(load_settings(config, instance_dir=instance, database_url=url, environ={}))

def work(t):
    with app.app_context():
        for i in range(int(each)):
            audit.record(audit.AuditEvent(action="test.event", actor_id=f"{name}.{t}.{i}"))

workers = [threading.Thread(target=work, args=(t,)) for t in range(int(threads))]
print("ready", flush=True)
sys.stdin.readline()
for w in workers:
    w.start()
for w in workers:
    w.join()
print("done", flush=True)
"""


def test_concurrent_entries_share_commits_and_each_is_durable_on_return(make_app, raw) -> None:
    app = make_app()
    callers = 64
    barrier = threading.Barrier(callers)

    def call(n: int) -> tuple[int, str, bool]:
        with app.app_context():
            barrier.wait()
            entry = audit.record(audit.AuditEvent(action="test.event", actor_id=f"u.{n}"))
        # Another connection must already see it: the caller may now disclose.
        with raw.connect() as connection:
            stored = connection.execute(
                text("SELECT entry_hash FROM audit_entries WHERE seq = :s"), {"s": entry.seq}
            ).scalar()
        return entry.seq, entry.actor_id, stored == entry.entry_hash

    with ThreadPoolExecutor(callers) as pool:
        results = list(pool.map(call, range(callers)))

    assert sorted(seq for seq, _actor, _seen in results) == list(range(1, callers + 1))
    assert all(seen for _seq, _actor, seen in results)
    written = metric(app, "forewarn_audit_entries_written_total")
    commits = metric(app, "forewarn_audit_group_commits_total")
    assert written == callers
    assert commits < callers / 2, f"{commits} commits for {callers} concurrent entries"
    with raw.connect() as connection:
        verdict = verify(connection, app.extensions["forewarn"].audit_keys.verifying())
    assert verdict.ok and verdict.entries == callers


def test_two_processes_writing_at_once_keep_one_chain(
    instance_dir: Path, database_url: str, raw
) -> None:
    threads, each = 8, 25
    where = [str(CONFIG), str(instance_dir), database_url]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, *where, name, str(threads), str(each)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name in ("p1", "p2")
    ]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.stderr.read()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0 and out.strip() == "done", err
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()

    total = 2 * threads * each
    with raw.connect() as connection:
        actors = {row[0] for row in connection.execute(text("SELECT actor_id FROM audit_entries"))}
        verdict = verify(connection, AuditKeys(KeyFiles.of(instance_dir)).verifying())
    expected = {f"{p}.{t}.{i}" for p in ("p1", "p2") for t in range(threads) for i in range(each)}
    assert actors == expected
    assert verdict.ok, verdict.summary()
    assert verdict.entries == total
