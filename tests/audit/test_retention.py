"""Retention: old entries go only through a signed cut, and the trail still verifies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, text

from sidecar.audit import writer as audit
from sidecar.audit.checkpoints import CUT, read_file
from sidecar.audit.models import AuditEntry
from sidecar.audit.trail import prune
from tests.audit.conftest import config_with, forewarn, sign_in, sql

OLD = 10
LONG_AGO = datetime(2018, 1, 1, 9, 0, tzinfo=UTC)


def write_old_entries(engine: Engine, first: int = 1, head: bool = True) -> None:
    """Sign-ins from 2018, chained exactly as the writer chains them (from `first` to OLD)."""
    previous, rows = audit.GENESIS, []
    for seq in range(1, OLD + 1):
        fields = {name: None for name in audit.CHAINED_FIELDS} | {
            "seq": seq,
            "at": LONG_AGO + timedelta(days=seq),
            "action": "sign_in",
            "outcome": "allowed",
            "actor_id": f"u.{seq}",
            "via": "widget",
            "prev_hash": previous,
        }
        previous = fields["entry_hash"] = audit.entry_hash(fields)
        if seq >= first:
            rows.append(fields)
    with engine.begin() as connection:
        connection.execute(insert(AuditEntry.__table__), rows)
        if head:
            connection.execute(
                text("UPDATE audit_head SET seq = :s, entry_hash = :h"), {"s": OLD, "h": previous}
            )


@pytest.fixture
def aged(raw, make_app, tmp_path: Path, instance_dir, database_url):
    sink = tmp_path / "checkpoints.jsonl"
    write_old_entries(raw)
    app = make_app(checkpoint_file=str(sink))
    with app.app_context():
        for n in range(3):
            audit.record(audit.AuditEvent(action="test.event", actor_id=f"u.new.{n}"))
    config = config_with(tmp_path, checkpoint_file=str(sink))

    def cli(*args: str):
        return forewarn(*args, instance=instance_dir, database_url=database_url, config=config)

    return app, cli, sink


def test_prune_cuts_with_a_signed_checkpoint_and_verify_still_passes(
    aged, raw, launch_token
) -> None:
    app, cli, sink = aged
    assert cli("audit", "verify").returncode == 0

    result = cli("audit", "prune", "--before", "2019-01-01")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"removed {OLD} entries up to entry {OLD}; the cut is recorded as a signed checkpoint"
    )
    assert sql(raw, "SELECT min(seq) FROM audit_entries")[0][0] == OLD + 1
    assert [c.seq for c in read_file(sink) if c.kind == CUT] == [OLD]

    verified = cli("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"entries up to {OLD} were removed on " in verified.stdout
    assert "(retention: entries before 2019-01-01T00:00:00+00:00 removed by cli:" in verified.stdout

    headers = sign_in(app, launch_token("u.dpo", ("auditor",)))
    body = app.test_client().get("/api/v1/audit/verify", headers=headers).get_json()
    assert body["ok"] is True and body["cut"]["after_entry"] == OLD
    pruned = sql(raw, "SELECT outcome_reason FROM audit_entries WHERE action = 'audit.prune'")
    assert pruned == [(f"cut after entry {OLD}; {OLD} entries removed",)]
    assert verified.stderr == ""


def test_prune_removes_in_batches_and_an_interrupted_one_is_finished_by_running_it_again(
    aged, raw, make_settings
) -> None:
    app, cli, sink = aged
    state = app.extensions["forewarn"]
    before = datetime(2019, 1, 1, tzinfo=UTC)
    actor = {"actor_id": "cli:dpo", "actor_name": "dpo", "actor_roles": "cli", "via": "cli"}

    result = prune(
        state.database, state.settings.audit, state.audit_keys, before, actor, sink, batch=3
    )

    assert (result.removed, result.cut.seq) == (OLD, OLD)
    assert sql(raw, "SELECT count(*) FROM audit_entries WHERE seq <= :s", s=OLD)[0][0] == 0

    # The state an interruption leaves: the cut recorded, the newest entries below it (the
    # batches go oldest first) still there.
    write_old_entries(raw, first=OLD - 3, head=False)
    unfinished = cli("audit", "verify")
    assert unfinished.returncode == 0, unfinished.stderr
    assert f"4 entries up to the cut after entry {OLD} are still to be removed" in unfinished.stderr

    again = cli("audit", "prune", "--before", "2019-01-01")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"removed 4 entries up to entry {OLD};")
    finished = cli("audit", "verify")
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""


def test_prune_inside_the_retention_period_is_refused(aged, raw) -> None:
    _app, cli, _sink = aged
    recent = (datetime.now(UTC) - timedelta(days=365)).date().isoformat()
    result = cli("audit", "prune", "--before", recent)
    assert result.returncode == 2
    assert "entries are kept 72 months" in result.stderr
    assert sql(raw, "SELECT min(seq) FROM audit_entries")[0][0] == 1
    assert cli("audit", "prune", "--before", "around easter").returncode == 2


def test_a_trail_that_does_not_verify_is_not_cut(aged, raw) -> None:
    _app, cli, _sink = aged
    sql(raw, "UPDATE audit_entries SET actor_id = 'u.other' WHERE seq = 4")
    result = cli("audit", "prune", "--before", "2019-01-01")
    assert result.returncode == 1
    assert "nothing removed because the audit trail NOT intact: first bad entry 4" in result.stderr
    assert sql(raw, "SELECT count(*) FROM audit_entries WHERE seq <= :s", s=OLD)[0][0] == OLD


def test_removing_entries_without_the_signed_cut_is_detected(aged, raw) -> None:
    _app, cli, _sink = aged
    sql(raw, "DELETE FROM audit_entries WHERE seq <= 5")
    result = cli("audit", "verify")
    assert result.returncode == 1
    assert "first bad entry 1: entry 1 is missing (the next present is 6)" in result.stderr
