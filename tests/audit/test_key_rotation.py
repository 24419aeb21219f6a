"""Rotating the audit signing key: the old key vouches only for what it signed before."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, select, text

from sidecar.audit import writer as audit
from sidecar.audit.checkpoints import HEAD, RetiredKey, key_id, read_file, sign
from sidecar.audit.models import AuditEntry, AuditHead
from sidecar.storage.database import utcnow
from sidecar.storage.keys import KeyFiles, load_audit_signing_key, save_retired_audit_keys
from tests.audit.conftest import config_with, forewarn, sign_in


@pytest.fixture
def trail(make_app, tmp_path: Path, instance_dir: Path, database_url: str):
    """A running app checkpointing every 4 entries, and the CLI on the same instance."""
    sink = tmp_path / "outside" / "checkpoints.jsonl"
    app = make_app(checkpoint_every_entries=4, checkpoint_file=str(sink))
    config = config_with(tmp_path, checkpoint_every_entries=4, checkpoint_file=str(sink))

    class Trail:
        def __init__(self) -> None:
            self.app, self.sink, self.files = app, sink, KeyFiles.of(instance_dir)

        def record(self, count: int) -> None:
            with app.app_context():
                for n in range(count):
                    audit.record(audit.AuditEvent(action="test.event", actor_id=f"u.{n}"))

        def cli(self, *args: str):
            return forewarn(
                "audit", *args, instance=instance_dir, database_url=database_url, config=config
            )

        def head(self) -> int:
            with app.extensions["forewarn"].database.engine.connect() as connection:
                return connection.execute(select(AuditHead.seq)).scalar_one()

    return Trail()


def test_rotation_keeps_the_trail_verifiable_and_a_running_app_signs_with_the_new_key(
    trail,
) -> None:
    trail.record(6)
    old = load_audit_signing_key(trail.files)
    old_id = key_id(old.public_key())
    at_rotation = trail.head()

    rotated = trail.cli("rotate-key")

    assert rotated.returncode == 0, rotated.stderr
    new_id = key_id(load_audit_signing_key(trail.files).public_key())
    assert new_id != old_id
    assert rotated.stdout.strip() == (
        f"audit signing key {old_id} retired at entry {at_rotation}; "
        f"checkpoints are now signed with {new_id}"
    )
    listed = json.loads(trail.files.audit_retired_keys.read_text())["keys"]
    assert [(k["key_id"], k["last_seq"]) for k in listed] == [(old_id, at_rotation)]
    assert trail.files.audit_retired_keys.stat().st_mode & 0o077 == 0

    # The same app, not restarted, signs its next checkpoints with the new key.
    trail.record(8)
    outside = list(read_file(trail.sink))
    before = [c for c in outside if c.seq <= at_rotation and c.note is None]
    after = [c for c in outside if c.seq > at_rotation]
    assert before and {c.key_id for c in before} == {old_id}
    assert after and {c.key_id for c in after} == {new_id}
    assert [(c.seq, c.key_id, c.note) for c in outside if c.note] == [
        (at_rotation, old_id, f"signing key {old_id} retired"),
        (at_rotation, new_id, f"signing key {new_id} introduced"),
    ]
    with trail.app.extensions["forewarn"].database.engine.connect() as connection:
        reasons = connection.execute(
            select(AuditEntry.outcome_reason).where(AuditEntry.action == "audit.rotate_key")
        ).scalars()
        assert list(reasons) == [
            f"signing key {old_id} retired at entry {at_rotation}; {new_id} in use"
        ]

    verified = trail.cli("verify")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("audit trail intact:")
    assert verified.stderr == ""


def test_the_old_key_cannot_vouch_for_anything_written_after_its_retirement(
    trail, raw: Engine
) -> None:
    trail.record(6)
    stolen = load_audit_signing_key(trail.files)
    at_rotation = trail.head()
    assert trail.cli("rotate-key").returncode == 0
    trail.record(5)

    # Whoever kept the old key signs a checkpoint for the current head, as a rewrite would.
    with raw.begin() as connection:
        seq, head_hash = connection.execute(select(AuditHead.seq, AuditHead.entry_hash)).one()
        audit.store_checkpoint(connection, sign(stolen, HEAD, seq, head_hash, utcnow()))

    result = trail.cli("verify")

    assert result.returncode == 1
    assert (
        f"the stored checkpoint for entry {seq} is signed with key "
        f"{key_id(stolen.public_key())}, retired at entry {at_rotation}"
    ) in result.stderr


def test_a_rotation_cut_short_leaves_the_old_key_in_use_and_is_finished_by_running_it_again(
    trail,
) -> None:
    trail.record(6)
    current = load_audit_signing_key(trail.files)
    # As if the retired list had been written but the new key file had not.
    save_retired_audit_keys(
        trail.files,
        {key_id(current.public_key()): RetiredKey(current.public_key(), 2, "2026-01-01")},
    )
    trail.record(5)  # checkpoints beyond entry 2, still signed with the current key

    unfinished = trail.cli("verify")
    assert unfinished.returncode == 0, unfinished.stderr
    assert "is listed as retired but is still in use" in unfinished.stderr

    assert trail.cli("rotate-key").returncode == 0
    trail.record(5)
    finished = trail.cli("verify")
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    listed = json.loads(trail.files.audit_retired_keys.read_text())["keys"]
    assert [k["key_id"] for k in listed] == [key_id(current.public_key())]
    assert listed[0]["last_seq"] > 2


def test_a_rotation_that_cannot_take_the_chain_changes_nothing(
    trail, raw: Engine, tmp_path: Path, instance_dir: Path, database_url: str
) -> None:
    trail.record(3)
    before = trail.files.audit_signing_key.read_bytes()
    config = config_with(tmp_path, lock_timeout_ms=300)
    with raw.connect() as holder, holder.begin():
        # Another writer holds the chain's head (the write lock, on SQLite).
        holder.execute(text("UPDATE audit_head SET seq = seq WHERE id = 1"))
        result = forewarn(
            "audit", "rotate-key", instance=instance_dir, database_url=database_url, config=config
        )
    assert result.returncode == 1
    assert "the signing key was not rotated, because the audit trail could not be written" in (
        result.stderr
    )
    assert trail.files.audit_signing_key.read_bytes() == before
    assert not trail.files.audit_retired_keys.exists()
    assert trail.cli("verify").returncode == 0


def test_the_retired_list_holds_public_keys_only(trail) -> None:
    old = load_audit_signing_key(trail.files)
    assert trail.cli("rotate-key").returncode == 0
    [entry] = json.loads(trail.files.audit_retired_keys.read_text())["keys"]
    raw_public = old.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    raw_private = old.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    text = trail.files.audit_retired_keys.read_text()
    assert entry["public_key"] == base64.b64encode(raw_public).decode()
    assert base64.b64encode(raw_private).decode() not in text
    assert (
        old.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        not in trail.files.audit_signing_key.read_text()
    )


def test_a_damaged_retired_key_list_is_a_clear_refusal_not_a_verdict(trail, launch_token) -> None:
    assert trail.cli("rotate-key").returncode == 0
    trail.files.audit_retired_keys.write_text('{"keys": [{"key_id": "0123"}]}')

    result = trail.cli("verify")
    assert result.returncode == 1
    assert f"{trail.files.audit_retired_keys} is not a list of retired audit keys" in (
        result.stderr
    )
    headers = sign_in(trail.app, launch_token("u.aud", ("auditor",)))
    response = trail.app.test_client().get("/api/v1/audit/verify", headers=headers)
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert "the trail cannot be verified" in response.get_json()["detail"]
