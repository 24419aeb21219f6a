"""Seed an instance at scale: subjects, active flags with their case records, grants, audit trail.

Rows go in by SQLAlchemy Core bulk inserts, but every confidential field is sealed with the
instance's key ring (bound to its table, row and column, as the app does) and every audit
entry is chained with the trail's own hashing and signed checkpoints, so the app, the
verifier and the details flow treat the seeded data exactly as data they wrote themselves.

The layout is arithmetic, so load scripts can address it without a list:
subject i (0 <= i < subjects) is property UPRN 100000000000+i when i % 10 == 0 (linked to
customer i+1), else customer CRM-{i:07d}; flag k sits on customer k*stride+1 and has the id
"fa" + k as 30 digits; `BENCH_VISITOR` holds a live grant for every flagged customer.
"""

from __future__ import annotations

import hashlib
import json
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import Table, insert, text, update

from sidecar.audit import checkpoints
from sidecar.audit.models import AuditCheckpoint, AuditEntry, AuditHead
from sidecar.audit.writer import GENESIS, entry_hash
from sidecar.lookup.models import AccessGrant
from sidecar.register.case_models import FlagEvent, FlagIncident, Notice, PanelDecision
from sidecar.register.models import Flag, Incident, Subject, SubjectLink
from sidecar.storage.crypto import KeyRing, write_secret
from sidecar.storage.database import Database, utcnow
from sidecar.storage.keys import KeyFiles, ensure_keys, load_audit_signing_key

BENCH_VISITOR = "u.bench.visitor"
LAUNCH_KID = "bench-launch"
PROPERTY_EVERY = 10
UPRN_BASE = 100_000_000_000
CHUNK = 5_000
CHECKPOINT_EVERY = 1_000

CATEGORIES = ("verbal_hate_abuse", "threat_of_physical_abuse", "physical_violence", "animal_attack")
PANEL = (("customer_support_manager", "u.csm"), ("senior_manager", "u.sm"), ("hs_manager", "u.hs"))


@dataclass(frozen=True)
class Scale:
    """How much to seed."""

    subjects: int
    flags: int
    audit_entries: int

    @property
    def stride(self) -> int:
        return max(1, self.subjects // max(1, self.flags))


SCALES = {
    "small": Scale(100_000, 10_000, 100_000),
    "large": Scale(1_000_000, 100_000, 10_000_000),
}


def subject_of(i: int) -> tuple[str, str]:
    """Kind and ref of subject i."""
    if i % PROPERTY_EVERY == 0:
        return "property", str(UPRN_BASE + i)
    return "customer", f"CRM-{i:07d}"


def flag_id(k: int) -> str:
    return f"fa{k:030d}"


def _row_id(*parts: object) -> str:
    """A stable 32-hex id, so a partial seed can be resumed or inspected deterministically."""
    return hashlib.md5(repr(parts).encode(), usedforsecurity=False).hexdigest()


def _chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Seeder:
    """Writes one scale's rows into a migrated, empty database."""

    def __init__(self, database: Database, instance_dir: Path, scale: Scale, log: Callable) -> None:
        self.database = database
        self.scale = scale
        self.log = log
        files = KeyFiles.of(instance_dir)
        self.ring = KeyRing.load(files.data_keys, environ={})
        self.audit_key = load_audit_signing_key(files)
        self.now = utcnow().replace(microsecond=0)
        self.rng = random.Random(8)  # reproducible layout and trail
        self.timings: dict[str, float] = {}
        self._write_error: Exception | None = None

    def seal(self, table: str, row_id: str, column: str, plaintext: str) -> str:
        return self.ring.encrypt(plaintext, table=table, row_id=row_id, column=column)

    def _load(self, name: str, table: Table, rows: Iterator[dict[str, Any]]) -> int:
        started = time.perf_counter()
        count = 0
        for batch in _chunks(rows):
            with self.database.engine.begin() as connection:
                connection.execute(insert(table), batch)
            count += len(batch)
        self.timings[name] = time.perf_counter() - started
        self.log(f"  {name}: {count:,} rows in {self.timings[name]:.1f}s")
        return count

    def run(self) -> dict[str, float]:
        scale = self.scale
        subject_ids = [_row_id("subject", i) for i in range(scale.subjects)]
        self._load("subjects", Subject.__table__, self._subjects(subject_ids))
        self._load("subject_links", SubjectLink.__table__, self._links(subject_ids))
        flagged = [k * scale.stride + 1 for k in range(scale.flags)]
        flagged = [i for i in flagged if i < scale.subjects]
        self._load("flags", Flag.__table__, self._flags(subject_ids, flagged))
        self._load("incidents", Incident.__table__, self._incidents(subject_ids, flagged))
        self._load("flag_incidents", FlagIncident.__table__, self._flag_incidents(flagged))
        self._load("panel_decisions", PanelDecision.__table__, self._panel(flagged))
        self._load("flag_notices", Notice.__table__, self._notices(flagged))
        self._load("flag_history", FlagEvent.__table__, self._history(flagged))
        self._load("access_grants", AccessGrant.__table__, self._grants(flagged))
        self._audit()
        self._analyze()
        return self.timings

    # -- the register ----------------------------------------------------------------------

    def _subjects(self, ids: list[str]) -> Iterator[dict[str, Any]]:
        created = self.now - timedelta(days=400)
        for i, row_id in enumerate(ids):
            kind, ref = subject_of(i)
            yield {
                "id": row_id,
                "kind": kind,
                "ref": ref,
                "created_at": created,
                "status_version": 1,
            }

    def _links(self, ids: list[str]) -> Iterator[dict[str, Any]]:
        for i in range(0, len(ids) - 1, PROPERTY_EVERY):
            yield {"customer_id": ids[i + 1], "property_id": ids[i], "created_at": self.now}

    def _flags(self, subject_ids: list[str], flagged: list[int]) -> Iterator[dict[str, Any]]:
        table = Flag.__tablename__
        for k, i in enumerate(flagged):
            row_id = flag_id(k)
            activated = self.now - timedelta(days=1 + k % 300)
            yield {
                "id": row_id,
                "subject_id": subject_ids[i],
                "state": "active",
                "level": "red" if k % 3 == 0 else "amber",
                "categories": [CATEGORIES[k % len(CATEGORIES)]],
                "restrictions": [
                    {"code": "time_limited_calls", "note": "10 minutes", "ends_on": None},
                    {"code": "visits_in_pairs", "note": "", "ends_on": None},
                ],
                "handling": "Two officers on any visit; end calls after 10 minutes.",
                "reason": self.seal(table, row_id, "reason", f"Threatened an officer ({k})."),
                "control_measures": self.seal(
                    table, row_id, "control_measures", "Visit in pairs; meet at the office."
                ),
                "reasonable_adjustments": self.seal(
                    table, row_id, "reasonable_adjustments", "Letters in large print."
                ),
                "responsible_manager": "u.sm",
                "review_months": 12,
                "review_due": (activated + timedelta(days=365)).date(),
                "ends_on": None,
                "provenance": "register",
                "proposed_by": "u.case",
                "proposed_at": activated - timedelta(days=14),
                "activated_at": activated,
                "notice_at": self.now - timedelta(days=k % 300),
                "ended_at": None,
                "purged_at": None,
            }

    def _incidents(self, subject_ids: list[str], flagged: list[int]) -> Iterator[dict[str, Any]]:
        table = Incident.__tablename__
        for k, i in enumerate(flagged):
            row_id = _row_id("incident", k)
            yield {
                "id": row_id,
                "subject_id": subject_ids[i],
                "reported_by": "u.case",
                "occurred_at": self.now - timedelta(days=30 + k % 300),
                "recorded_at": self.now - timedelta(days=29 + k % 300),
                "channel": "in_person",
                "behaviour_types": ["threats"],
                "narrative": self.seal(table, row_id, "narrative", "Raised a fist at reception."),
                "warning_given": True,
                "triage": "refer_to_case_review",
                "triage_by": "u.sm",
                "triage_at": self.now - timedelta(days=28 + k % 300),
                "triage_considerations": None,
                "triage_notes": None,
            }

    def _flag_incidents(self, flagged: list[int]) -> Iterator[dict[str, Any]]:
        for k in range(len(flagged)):
            yield {"flag_id": flag_id(k), "incident_id": _row_id("incident", k)}

    def _panel(self, flagged: list[int]) -> Iterator[dict[str, Any]]:
        table = PanelDecision.__tablename__
        for k in range(len(flagged)):
            for role, user in PANEL:
                row_id = _row_id("panel", k, role)
                yield {
                    "id": row_id,
                    "flag_id": flag_id(k),
                    "role": role,
                    "decision": "approve",
                    "decided_by": user,
                    "decided_by_name": user.removeprefix("u.").upper(),
                    "decided_at": self.now - timedelta(days=1 + k % 300),
                    "severity": "high",
                    "frequency": "repeated",
                    "proportionality": self.seal(table, row_id, "proportionality", "Necessary."),
                    "reasonable_adjustments": self.seal(
                        table, row_id, "reasonable_adjustments", "Large print."
                    ),
                }

    def _notices(self, flagged: list[int]) -> Iterator[dict[str, Any]]:
        table = Notice.__tablename__
        for k in range(len(flagged)):
            row_id = _row_id("notice", k)
            yield {
                "id": row_id,
                "flag_id": flag_id(k),
                "method": "letter",
                "issued_by": "u.csm",
                "issued_at": self.now - timedelta(days=k % 300),
                "legal_guidance_ref": None,
                "director_permission_by": None,
                "withheld_reason": None,
                "recipient_name": self.seal(table, row_id, "recipient_name", "A. Resident"),
                "recipient_address": self.seal(table, row_id, "recipient_address", "1 High St"),
            }

    def _history(self, flagged: list[int]) -> Iterator[dict[str, Any]]:
        for k in range(len(flagged)):
            activated = self.now - timedelta(days=1 + k % 300)
            for seq, (action, before, after) in enumerate(
                (("propose", None, "proposed"), ("panel_decision", "proposed", "active")), 1
            ):
                yield {
                    "id": _row_id("history", k, seq),
                    "flag_id": flag_id(k),
                    "seq": seq,
                    "at": activated - timedelta(days=2 - seq),
                    "actor_id": "u.case" if seq == 1 else "u.hs",
                    "actor_name": "",
                    "action": action,
                    "from_state": before,
                    "to_state": after,
                    "why": "",
                    "facts": {},
                }

    def _grants(self, flagged: list[int]) -> Iterator[dict[str, Any]]:
        for i in flagged:
            kind, ref = subject_of(i)
            yield {
                "id": uuid.uuid4().hex,
                "user_id": BENCH_VISITOR,
                "subject_kind": kind,
                "subject_ref": ref,
                "reason_code": "home_visit",
                "reason_text": "Planned visit about the repairs",
                "visit_date": None,
                "created_at": self.now,
                "expires_at": self.now + timedelta(days=1),
            }

    # -- the audit trail -------------------------------------------------------------------

    def _audit(self) -> None:
        """Chain `audit_entries` entries with the trail's own hashing; sign checkpoints."""
        total = self.scale.audit_entries
        started = time.perf_counter()
        rng, subjects = self.rng, self.scale.subjects
        first = self.now - timedelta(days=365)
        step = timedelta(days=365) / max(total, 1)
        previous, seq = GENESIS, 0
        actions = ("banner.read",) * 16 + ("details.read", "details.read", "access_grant.create")
        marks: list[dict[str, Any]] = []
        hashing = 0.0
        # Hashing is sequential by nature (each entry names the one before); the writes run
        # in a second thread meanwhile, as the driver lets go of the GIL while it waits.
        writes: queue.Queue[tuple[list[dict[str, Any]], list[dict[str, Any]]] | None]
        writes = queue.Queue(maxsize=4)
        writer = threading.Thread(target=self._write_audit, args=(writes,))
        writer.start()
        try:
            while seq < total:
                batch = []
                tick = time.perf_counter()
                for _ in range(min(CHUNK * 4, total - seq)):
                    seq += 1
                    kind, ref = subject_of(rng.randrange(subjects))
                    action = actions[seq % len(actions)]
                    actor = rng.randrange(200)
                    fields = {
                        "seq": seq,
                        "at": first + step * seq,
                        "actor_id": f"u.staff{actor}",
                        "actor_name": f"Staff {actor}",
                        "actor_roles": "agent" if action == "banner.read" else "visiting_officer",
                        "action": action,
                        "subject_kind": kind,
                        "subject_ref": ref,
                        "flag_id": None,
                        "outcome": "allowed",
                        "outcome_reason": None,
                        "purpose_code": None if action == "banner.read" else "home_visit",
                        "purpose_text": None if action == "banner.read" else "Planned visit",
                        "client_ip": "10.0.0.1",
                        "user_agent": "Mozilla/5.0 (CRM)",
                        "via": "widget",
                        "prev_hash": previous,
                    }
                    previous = fields["entry_hash"] = entry_hash(fields)
                    batch.append(fields)
                    if seq % CHECKPOINT_EVERY == 0 or seq == total:
                        marks.append(self._checkpoint(seq, previous, fields["at"]))
                hashing += time.perf_counter() - tick
                writes.put((batch, marks))
                marks = []
        finally:
            writes.put(None)
            writer.join()
        if self._write_error is not None:
            raise self._write_error
        with self.database.engine.begin() as connection:
            connection.execute(
                update(AuditHead.__table__)
                .where(AuditHead.__table__.c.id == 1)
                .values(seq=seq, entry_hash=previous)
            )
        self.timings["audit_entries"] = time.perf_counter() - started
        self.timings["audit_hashing"] = hashing
        self.log(
            f"  audit_entries: {seq:,} rows in {self.timings['audit_entries']:.1f}s "
            f"(hashing and signing {hashing:.1f}s)"
        )

    def _write_audit(self, writes: queue.Queue) -> None:
        while (item := writes.get()) is not None:
            if self._write_error is not None:
                continue  # drain, so the producer never blocks on a dead writer
            batch, marks = item
            try:
                with self.database.engine.begin() as connection:
                    connection.execute(insert(AuditEntry.__table__), batch)
                    if marks:
                        connection.execute(insert(AuditCheckpoint.__table__), marks)
            except Exception as exc:
                self._write_error = exc

    def _checkpoint(self, seq: int, head: str, at: datetime) -> dict[str, Any]:
        mark = checkpoints.sign(self.audit_key, checkpoints.HEAD, seq, head, at)
        return {
            "kind": mark.kind,
            "seq": mark.seq,
            "entry_hash": mark.entry_hash,
            "at": mark.at,
            "note": mark.note,
            "key_id": mark.key_id,
            "signature": mark.signature,
        }

    def _analyze(self) -> None:
        started = time.perf_counter()
        if self.database.dialect == "postgresql":
            with self.database.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                connection.execute(text("VACUUM ANALYZE"))
        else:
            with self.database.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        self.timings["analyze"] = time.perf_counter() - started


def prepare(database_url: str, instance_dir: Path) -> Database:
    """An empty, migrated database and an instance with keys and a bench launch key."""
    instance_dir.mkdir(parents=True, exist_ok=True)
    ensure_keys(KeyFiles.of(instance_dir), demo=False)
    ensure_launch_key(instance_dir)
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    else:
        scratch = Database(database_url)
        with scratch.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        scratch.dispose()
    database = Database(database_url)
    database.migrate()
    return database


def launch_key_path(instance_dir: Path) -> Path:
    return KeyFiles.of(instance_dir).root / "launch-bench-ed25519.pem"


def ensure_launch_key(instance_dir: Path) -> None:
    """A launch key of the bench's own, standing in for the CRM host's (not a demo instance)."""
    files = KeyFiles.of(instance_dir)
    if launch_key_path(instance_dir).exists():
        return
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_secret(launch_key_path(instance_dir), pem.decode())
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": LAUNCH_KID, "use": "sig", "alg": "EdDSA"})
    write_secret(files.launch_jwks, json.dumps({"keys": [jwk]}))


def refresh_grants(database: Database) -> None:
    """Keep the bench visitor's grants live however long ago the seed ran."""
    with database.engine.begin() as connection:
        connection.execute(
            update(AccessGrant.__table__)
            .where(AccessGrant.__table__.c.user_id == BENCH_VISITOR)
            .values(expires_at=utcnow() + timedelta(days=1))
        )


def seed(
    database_url: str, instance_dir: Path, scale: Scale, log: Callable = print
) -> dict[str, float]:
    """Seed from scratch; return seconds per table and in total."""
    started = time.perf_counter()
    database = prepare(database_url, instance_dir)
    try:
        timings = Seeder(database, instance_dir, scale, log).run()
    finally:
        database.dispose()
    timings["total"] = time.perf_counter() - started
    return timings
