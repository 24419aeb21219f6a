"""Tamper evidence: edits, deletions, reordering, rewrites and truncation are each detected."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sidecar.audit import writer as audit
from sidecar.audit.checkpoints import read_file
from tests.audit.conftest import config_with, forewarn, rehash_from, sign_in, sql

ENTRIES = 14  # with a checkpoint every 4 entries: checkpoints at 1, 5, 9 and 13


@pytest.fixture
def trail(make_app, tmp_path: Path, launch_token, instance_dir, database_url):
    """An app writing 14 entries, checkpointing every 4 (and not by time) to the database and
    a file."""
    sink = tmp_path / "outside" / "checkpoints.jsonl"
    every = {"checkpoint_every_entries": 4, "checkpoint_every_seconds": 3600}
    app = make_app(**every, checkpoint_file=str(sink))
    with app.app_context():
        for n in range(ENTRIES):
            audit.record(audit.AuditEvent(action="test.event", actor_id=f"u.{n}", via="api"))
    config = config_with(tmp_path, **every, checkpoint_file=str(sink))

    class Trail:
        def __init__(self) -> None:
            self.app, self.sink = app, sink

        def cli_verify(self):
            return forewarn(
                "audit", "verify", instance=instance_dir, database_url=database_url, config=config
            )

        def api_verify(self) -> dict:
            headers = sign_in(app, launch_token("u.aud", ("auditor",)))
            response = app.test_client().get("/api/v1/audit/verify", headers=headers)
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == "no-store"
            return response.get_json()

    return Trail()


def test_intact_trail_verifies_with_its_checkpoints(trail) -> None:
    assert [c.seq for c in read_file(trail.sink)] == [1, 5, 9, 13]
    result = trail.cli_verify()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"audit trail intact: {ENTRIES} entries, 8 signed checkpoints verified"
    )
    body = trail.api_verify()
    # The CLI check and the sign-in before this call are entries too.
    assert {k: body[k] for k in ("ok", "entries", "first_bad")} == {
        "ok": True,
        "entries": ENTRIES + 2,
        "first_bad": None,
    }


def _truncate_after(engine: Engine, seq: int, *, hide_checkpoints: bool) -> None:
    last = sql(engine, "SELECT entry_hash FROM audit_entries WHERE seq = :s", s=seq)[0][0]
    sql(engine, "DELETE FROM audit_entries WHERE seq > :s", s=seq)
    sql(engine, "UPDATE audit_head SET seq = :s, entry_hash = :h", s=seq, h=last)
    if hide_checkpoints:
        sql(engine, "DELETE FROM audit_checkpoints WHERE seq > :s", s=seq)


TAMPERING: dict[str, tuple[Callable[[Engine], None], int, str]] = {
    "edit": (
        lambda e: sql(e, "UPDATE audit_entries SET actor_id = 'u.someone' WHERE seq = 6"),
        6,
        "entry 6 was altered",
    ),
    "delete": (
        lambda e: sql(e, "DELETE FROM audit_entries WHERE seq = 6"),
        6,
        "entry 6 is missing",
    ),
    "reorder": (
        lambda e: (
            sql(e, "UPDATE audit_entries SET seq = -6 WHERE seq = 6"),
            sql(e, "UPDATE audit_entries SET seq = 6 WHERE seq = 7"),
            sql(e, "UPDATE audit_entries SET seq = 7 WHERE seq = -6"),
        ),
        6,
        "entry 6 does not follow entry 5",
    ),
    "rewrite with recomputed hashes": (
        lambda e: (
            sql(e, "UPDATE audit_entries SET actor_id = 'u.someone' WHERE seq = 6"),
            rehash_from(e, 6),
        ),
        9,
        "entry 9 differs from the stored checkpoint",
    ),
    "truncate the tail": (
        lambda e: _truncate_after(e, 10, hide_checkpoints=False),
        11,
        "entries after 10 are missing: the stored checkpoint",
    ),
    "truncate the tail and its checkpoints": (
        lambda e: _truncate_after(e, 10, hide_checkpoints=True),
        11,
        "entries after 10 are missing: the external checkpoint",
    ),
    "forge a checkpoint": (
        lambda e: sql(e, "UPDATE audit_checkpoints SET entry_hash = :h WHERE seq = 5", h="1" * 64),
        5,
        "the stored checkpoint for entry 5 has a bad signature",
    ),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampering_is_detected_and_the_first_bad_entry_named(trail, raw, how: str) -> None:
    tamper, first_bad, problem = TAMPERING[how]
    tamper(raw)

    result = trail.cli_verify()
    assert result.returncode == 1
    assert result.stdout == ""
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"Error: audit trail NOT intact: first bad entry {first_bad}: ")
    assert problem in message

    body = trail.api_verify()
    assert body["ok"] is False
    assert body["first_bad"] is not None and body["first_bad"] <= ENTRIES + 2


def test_rewritten_sink_line_is_detected(trail) -> None:
    lines = trail.sink.read_text().splitlines()
    trail.sink.write_text("\n".join([*lines[:-1], lines[-1].replace('"seq": 13', '"seq": 12')]))
    result = trail.cli_verify()
    assert result.returncode == 1
    assert "the external checkpoint for entry 12 has a bad signature" in result.stderr


def test_with_default_settings_a_truncated_tail_with_a_fixed_head_is_detected(
    make_app, raw, instance_dir, database_url, settings
) -> None:
    """No checkpoint setting given: the file in the instance and a seconds-long window."""
    assert settings.audit.checkpoint_path(instance_dir) == instance_dir / "audit-checkpoints.jsonl"
    window = settings.audit.checkpoint_every_seconds
    assert window <= 5
    app = make_app()
    with app.app_context():
        for n in range(3):
            audit.record(audit.AuditEvent(action="test.event", actor_id=f"u.{n}", via="api"))
    # No entry follows: the quiet tail is signed all the same, within the window.
    deadline = time.monotonic() + window + 5
    sink = instance_dir / "audit-checkpoints.jsonl"
    while time.monotonic() < deadline and 3 not in {c.seq for c in _read(sink)}:
        time.sleep(0.1)
    assert 3 in {c.seq for c in _read(sink)}
    _truncate_after(raw, 1, hide_checkpoints=True)

    result = forewarn("audit", "verify", instance=instance_dir, database_url=database_url)
    assert result.returncode == 1
    assert "entries after 1 are missing: the external checkpoint" in result.stderr


def _read(sink: Path) -> list:
    return list(read_file(sink)) if sink.exists() else []
