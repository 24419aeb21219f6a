"""The audit writer: every access and decision appended to a hash chain, durably, fail-closed."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flask import current_app, has_app_context, has_request_context, request
from flask_login import current_user
from sqlalchemy import Connection, String, bindparam, insert, select, update
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from sidecar.audit import checkpoints
from sidecar.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditReadiness
from sidecar.errors import Problem
from sidecar.register.references import normalised_or_given
from sidecar.settings import AuditSettings
from sidecar.storage.database import Database, utcnow
from sidecar.storage.keys import AuditKeys

log = logging.getLogger(__name__)

GENESIS = "0" * 64
HASH_DOMAIN = b"forewarn.audit.entry.v1\x00"

CHAINED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "actor_roles",
    "action",
    "subject_kind",
    "subject_ref",
    "flag_id",
    "outcome",
    "outcome_reason",
    "purpose_code",
    "purpose_text",
    "client_ip",
    "user_agent",
    "via",
    "prev_hash",
)

# Column widths, so an over-long client value is shortened rather than failing the write
# (on PostgreSQL a too-long user agent would otherwise refuse every request it came with).
_WIDTHS = {
    column.name: column.type.length
    for column in AuditEntry.__table__.columns
    if isinstance(column.type, String) and column.type.length
}
# Bearer and launch tokens are JWTs; one that reaches an entry (a pasted purpose, an
# error message, a crafted user agent) is replaced, so the trail never holds a credential.
_TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*|(?i:bearer)\s+\S+")
TOKEN_WITHHELD = "[token withheld]"

_HEAD = AuditHead.__table__
_ENTRIES = AuditEntry.__table__
_CHECKPOINTS = AuditCheckpoint.__table__
_READINESS = AuditReadiness.__table__


class AuditUnavailable(Problem):
    """The trail cannot be written, so the request must not proceed (fail closed)."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "audit-unavailable", detail)


UNAVAILABLE = "the access could not be recorded, so nothing was disclosed; try again later"


@dataclass(frozen=True)
class AuditEvent:
    """What happened; who and from where are filled in from the request when not given."""

    action: str
    outcome: str = "allowed"
    outcome_reason: str | None = None
    subject_kind: str | None = None
    subject_ref: str | None = None
    flag_id: str | None = None
    purpose_code: str | None = None
    purpose_text: str | None = None
    actor_id: str | None = None
    actor_name: str | None = None
    actor_roles: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    via: str | None = None


def entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over a canonical JSON encoding of the chained fields, domain-separated."""
    canonical = {
        name: (value.isoformat() if isinstance(value, datetime) else value)
        for name, value in fields.items()
        if name in CHAINED_FIELDS
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(HASH_DOMAIN + encoded.encode("utf-8")).hexdigest()


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    # Entries name a subject as the register stores it, so a search or a subject access
    # export finds every look at it however the caller wrote the reference.
    fields["subject_ref"] = normalised_or_given(
        fields.get("subject_kind"), fields.get("subject_ref")
    )
    for name, value in fields.items():
        if isinstance(value, str):
            value = _TOKEN.sub(TOKEN_WITHHELD, value)
            width = _WIDTHS.get(name)
            fields[name] = value[:width] if width else value
    return fields


_EVENT_FIELDS = tuple(AuditEvent.__dataclass_fields__)


def _with_context(event: AuditEvent) -> dict[str, Any]:
    # Flat fields only, so a comprehension does what `asdict` would at a fraction of the cost.
    fields = {name: getattr(event, name) for name in _EVENT_FIELDS}
    if has_request_context():
        if fields["actor_id"] is None and current_user.is_authenticated:
            fields["actor_id"] = current_user.id
            fields["actor_name"] = current_user.name
            fields["actor_roles"] = ",".join(current_user.roles)
        fields["client_ip"] = fields["client_ip"] or request.remote_addr
        fields["user_agent"] = fields["user_agent"] or (request.user_agent.string or None)
        if fields["via"] is None:
            fields["via"] = getattr(current_user, "via", None) or "api"
    return _clean(fields)


# Built once: the chain is written on every audited request.
LOCK_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq)
    .returning(_HEAD.c.seq, _HEAD.c.entry_hash)
)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=bindparam("new_seq"), entry_hash=bindparam("new_hash"))
)
_COLUMNS = tuple(column.name for column in _ENTRIES.columns)
# SQLite's default limit on one statement's parameters (some builds allow more).
_SQLITE_MAX_PARAMETERS = 32_766


@functools.lru_cache(maxsize=64)
def _insert(dialect: Dialect, rows: int) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    """One INSERT of `rows` entries, compiled once for the driver: its SQL, the order of its
    parameter names if the driver takes them by position, and its constants' values.

    On PostgreSQL it moves the head too (a data-modifying CTE): one round trip fewer while
    the head's lock is held, which every other writer waits on.
    """
    statement = insert(_ENTRIES).values(
        [{name: bindparam(f"{name}_{row}") for name in _COLUMNS} for row in range(rows)]
    )
    if dialect.name == "postgresql":
        statement = statement.add_cte(_MOVE_HEAD.cte("moved_head"))
    compiled = statement.compile(dialect=dialect)
    order = tuple(compiled.positiontup) if compiled.positional else None
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return compiled.string, order, constants


@functools.lru_cache(maxsize=8)
def _binders(dialect: Dialect) -> tuple[Callable[[Any], Any] | None, ...]:
    """Each column's conversion to what the driver stores (the datetime's, chiefly)."""
    return tuple(column.type.bind_processor(dialect) for column in _ENTRIES.columns)


def _write(connection: Connection, batch: list[dict[str, Any]], head: dict[str, Any]) -> None:
    """The entries as plain driver values in one multi-row INSERT (per SQLite's parameter
    limit), and on PostgreSQL the head's move in the same statement."""
    dialect = connection.dialect
    binders = _binders(dialect)
    rows = len(batch)
    if dialect.name != "postgresql":
        rows = min(rows, _SQLITE_MAX_PARAMETERS // len(_COLUMNS))
    for start in range(0, len(batch), rows):
        part = batch[start : start + rows]
        sql, order, constants = _insert(dialect, len(part))
        values = {**constants, **head} if dialect.name == "postgresql" else dict(constants)
        for row, fields in enumerate(part):
            for name, bind in zip(_COLUMNS, binders, strict=True):
                value = fields.get(name)
                values[f"{name}_{row}"] = value if bind is None or value is None else bind(value)
        connection.exec_driver_sql(
            sql, values if order is None else tuple(values[name] for name in order)
        )
    if dialect.name != "postgresql":
        connection.execute(_MOVE_HEAD, head)


def _chain(connection: Connection, batch: list[dict[str, Any]]) -> tuple[int, str]:
    """Give each entry its place after the head and write them; return the new head.

    Updating the single head row first takes its lock (a row lock on PostgreSQL, the
    write lock on SQLite) and returns the previous hash under it, in one statement, so
    writers in every process queue on it and the chain never forks. The entries are then
    written by one multi-row INSERT, compiled once per batch size and given plain values.
    """
    seq, previous = connection.execute(LOCK_HEAD).one()
    for fields in batch:
        seq += 1
        fields.update(seq=seq, at=utcnow(), prev_hash=previous)
        previous = fields["entry_hash"] = entry_hash(fields)
    _write(connection, batch, {"new_seq": seq, "new_hash": previous})
    return seq, previous


class Recorded(SimpleNamespace):
    """A written entry's columns (seq, entry_hash, actor_id, ...) read as attributes.

    Not an ORM object: building one of those for every audited request costs more than
    writing the entry.
    """


def append(session: Session, event: AuditEvent) -> Recorded:
    """Add an entry inside the caller's transaction (atomic with a decision it records).

    In a request, a failed write raises AuditUnavailable (503) and the caller's
    transaction rolls back with it; outside one (the CLI) the database error propagates.
    """
    return append_on(session.connection(), event)


def append_on(connection: Connection, event: AuditEvent) -> Recorded:
    """`append` for a Core connection inside a transaction."""
    fields = _with_context(event)
    runtime = current_app.extensions.get("forewarn") if has_app_context() else None
    if runtime is None:
        _chain(connection, [fields])
        return Recorded(**fields)
    try:
        with lock_timeout(connection, runtime.settings.audit.lock_timeout_ms):
            _chain(connection, [fields])
    except SQLAlchemyError as exc:
        # The caller's transaction now rolls back: its change and its entry go together.
        runtime.metrics.audit_write_failures.inc()
        log.error("audit write failed: %s", reason(exc))
        raise AuditUnavailable(UNAVAILABLE) from None
    return Recorded(**fields)


def record(event: AuditEvent) -> Recorded:
    """Append and commit durably before returning; raise AuditUnavailable (503) if it cannot.

    Concurrent calls share one transaction (group commit), but each returns only once
    its own entry is committed.
    """
    return current_app.extensions["forewarn"].audit.write(_with_context(event))


def record_denied(action: str, basis: str, **subject: Any) -> None:
    """Record a refused attempt; a refusal that cannot be recorded is still a refusal."""
    record(AuditEvent(action=action, outcome="denied", outcome_reason=basis[:256], **subject))


@dataclass(eq=False)
class _Pending:
    fields: dict[str, Any]
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    entry: Recorded | None = None
    error: AuditUnavailable | None = None


class AuditWriter:
    """Group commit by leader and followers, for gunicorn's threaded workers.

    The first caller to find no leader writes everything queued in one transaction
    (one fsync) while later callers wait; when it has committed it wakes them and hands
    leadership to the oldest caller still queued. No background thread exists, so
    nothing is lost to a fork and nothing needs stopping.
    """

    def __init__(
        self,
        database: Database,
        settings: AuditSettings,
        keys: AuditKeys,
        instance_dir: Path,
        metrics: Any,
    ) -> None:
        self.database = database
        # Its own small pool, whose connections bound every lock wait by the setting.
        self.engine = database.bounded_engine(settings.lock_timeout_ms)
        self._turn = ChainTurn.for_url(database.url, settings.lock_timeout_ms)
        self.settings = settings
        self.keys = keys
        self.sink_path = settings.checkpoint_path(instance_dir)
        self.metrics = metrics
        self._lock = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._leading = False
        # The newest checkpoint this writer knows of, (seq, at). Another process may have
        # signed a newer one; that only makes the next one less due, so when this says "not
        # due" the database need not be asked (one query fewer per group commit).
        self._known_checkpoint: tuple[int, datetime] | None = None
        # At most one pending "sign the head later" per process, so a quiet spell after
        # a burst of entries leaves them unsigned for seconds, not until the next write.
        self._later: tuple[int, threading.Timer] | None = None
        self._closed = False
        database.on_dispose(self.close)

    def write(self, fields: dict[str, Any]) -> Recorded:
        """Chain and commit one entry's fields; return once committed, or raise (503)."""
        pending = _Pending(fields)
        with self._lock:
            self._queue.append(pending)
            lead = not self._leading
            self._leading = True
        if not lead:
            pending.wake.wait()
        if not pending.done:
            self._lead()
        if pending.error is not None:
            raise pending.error
        assert pending.entry is not None
        return pending.entry

    def _lead(self) -> None:
        with self._lock:
            count = min(len(self._queue), self.settings.group_commit_max)
            batch = [self._queue.popleft() for _ in range(count)]
        checkpoint = None
        try:
            checkpoint = self._commit([pending.fields for pending in batch])
            if checkpoint is not None:
                self._known_checkpoint = (checkpoint.seq, checkpoint.at)
            for pending in batch:
                pending.entry = Recorded(**pending.fields)
            self.metrics.audit_entries_written.inc(len(batch))
            self.metrics.audit_group_commits.inc()
        except Exception as exc:
            # Whatever the cause, no caller in this batch may disclose anything.
            self.metrics.audit_write_failures.inc(len(batch))
            log.error("audit write failed for %d entries: %s", len(batch), reason(exc))
            for pending in batch:
                pending.error = AuditUnavailable(UNAVAILABLE)
        with self._lock:
            successor = self._queue[0] if self._queue else None
            self._leading = successor is not None
        for pending in batch:
            pending.done = True
            pending.wake.set()
        if successor is not None:
            successor.wake.set()
        if checkpoint is not None:
            self.publish(checkpoint)
        else:
            self._sign_later()

    def _sign_later(self) -> None:
        """Make sure the head gets signed within `checkpoint_every_seconds` of now."""
        with self._lock:
            pending = self._later
            if self._closed or (pending is not None and pending[0] == os.getpid()):
                return
            timer = threading.Timer(self.settings.checkpoint_every_seconds, self._sign_head)
            timer.daemon = True
            self._later = (os.getpid(), timer)
        timer.start()

    def _sign_head(self) -> None:
        """Sign the head if entries since the last checkpoint have waited long enough."""
        with self._lock:
            self._later = None
            if self._closed:
                return
        try:
            with self._turn.held(), self.engine.begin() as connection:
                seq, head_hash = connection.execute(LOCK_HEAD).one()
                checkpoint = self._checkpoint_if_due(connection, seq, head_hash)
        except Exception as exc:
            log.error("audit checkpoint could not be signed: %s", reason(exc))
            return
        if checkpoint is not None:
            self._known_checkpoint = (checkpoint.seq, checkpoint.at)
            self.publish(checkpoint)
        elif self._known_checkpoint is not None and self._known_checkpoint[0] < seq:
            # Another process signed recently; these entries are due after its window.
            self._sign_later()

    def close(self) -> None:
        """Stop signing later (the database is going away)."""
        with self._lock:
            self._closed = True
            pending, self._later = self._later, None
        if pending is not None:
            pending[1].cancel()

    def _commit(self, batch: list[dict[str, Any]]) -> checkpoints.Checkpoint | None:
        with self._turn.held(), self.engine.begin() as connection:
            seq, head_hash = _chain(connection, batch)
            return self._checkpoint_if_due(connection, seq, head_hash)

    def _checkpoint_if_due(
        self, connection: Connection, seq: int, head_hash: str
    ) -> checkpoints.Checkpoint | None:
        now = utcnow()
        known = self._known_checkpoint
        if known is not None and not self._due(seq, *known, now):
            return None
        last = connection.execute(
            select(_CHECKPOINTS.c.seq, _CHECKPOINTS.c.at)
            .order_by(_CHECKPOINTS.c.id.desc())
            .limit(1)
        ).first()
        if last is not None:
            self._known_checkpoint = (last.seq, last.at)
            if not self._due(seq, last.seq, last.at, now):
                return None
        # Read under the chain's lock, so a key rotated since is used from here on.
        key = self.keys.signing_key()
        checkpoint = checkpoints.sign(key, checkpoints.HEAD, seq, head_hash, now)
        store_checkpoint(connection, checkpoint)
        return checkpoint

    def _due(self, seq: int, last_seq: int, last_at: datetime, now: datetime) -> bool:
        """Whether a checkpoint is due at `seq`, given the last one (at `last_seq`, `last_at`)."""
        new_entries = seq - last_seq
        if new_entries >= self.settings.checkpoint_every_entries:
            return True
        return new_entries > 0 and (now - last_at).total_seconds() >= (
            self.settings.checkpoint_every_seconds
        )

    def publish(self, checkpoint: checkpoints.Checkpoint) -> None:
        """Send a committed checkpoint to the external sinks; failures are counted.

        The entries are already durable, so a sink outage does not refuse requests; it
        weakens only the outside evidence, which the counter makes visible.
        """
        failures = publish(self.settings, self.sink_path, checkpoint)
        if failures:
            self.metrics.audit_sink_failures.inc(failures)

    def probe(self) -> str:
        """Prove an entry could be committed now: "ok" or why not.

        First a probe entry is chained exactly as a real one and rolled back (privileges,
        constraints, the head's lock); then, under the same turn, lock and timeout, this
        instance's row in `audit_readiness` is committed. A rolled-back write never reaches
        the disk, so only the commit shows a read-only journal or a full disk, and it adds
        no entry to the trail.
        """
        try:
            with self._turn.held():
                self._rolled_back_entry()
                self._committed_mark()
        except Exception as exc:
            return f"not writable: {reason(exc)}"
        return "ok"

    def _rolled_back_entry(self) -> None:
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                _chain(connection, [_clean(asdict(AuditEvent(action="readiness")))])
            finally:
                transaction.rollback()

    def _committed_mark(self) -> None:
        instance, now = socket.gethostname()[:128], utcnow()
        with self.engine.begin() as connection:
            connection.execute(LOCK_HEAD).one()
            updated = connection.execute(
                update(_READINESS).where(_READINESS.c.instance == instance).values(probed_at=now)
            )
            if not updated.rowcount:
                connection.execute(insert(_READINESS).values(instance=instance, probed_at=now))


class ChainTurn:
    """The order in which processes' group commits take the chain, on SQLite.

    SQLite makes a writer that finds the database locked sleep and retry (1, 2, 5, 10 ms
    and longer), so with several worker processes a waiting commit often sleeps well past
    the moment the lock is free. Taking a file lock first, checked every quarter of a
    millisecond, hands the chain over promptly. SQLite's own lock still guards the data:
    this only orders the audit writers, and a wait past the lock timeout fails (503) as
    the database's own would. PostgreSQL queues on the head row's lock and needs none.
    """

    POLL_SECONDS = 0.00025

    def __init__(self, path: Path | None, timeout_ms: int) -> None:
        self.path = path
        self.timeout = timeout_ms / 1000
        self._fd: int | None = None
        self._pid: int | None = None

    @classmethod
    def for_url(cls, url: str, timeout_ms: int) -> ChainTurn:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return cls(None, timeout_ms)
        return cls(Path(f"{parsed.database}-chain.lock"), timeout_ms)

    def _descriptor(self) -> int:
        # Opened in each process: a descriptor inherited across fork would share its lock.
        if self._fd is None or self._pid != os.getpid():
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
            weakref.finalize(self, os.close, self._fd)
        return self._fd

    @contextmanager
    def held(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        fd = self._descriptor()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError("another process held the audit chain too long") from None
                time.sleep(self.POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def lock_timeout(connection: Connection, milliseconds: int) -> Iterator[None]:
    """Bound how long this transaction waits for the chain's lock (then it fails: 503).

    Call it just inside the transaction. PostgreSQL scopes the setting to the transaction;
    SQLite's busy timeout belongs to the connection, so the pool's value is put back.
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(milliseconds)}ms'")
        yield
        return
    if dialect != "sqlite":
        yield
        return
    previous = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    connection.exec_driver_sql(f"PRAGMA busy_timeout={int(milliseconds)}")
    try:
        yield
    finally:
        if not connection.invalidated:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(previous or 0)}")


def publish(
    settings: AuditSettings, sink_path: Path | None, checkpoint: checkpoints.Checkpoint
) -> int:
    """Send a committed checkpoint to every configured sink; return how many failed."""
    targets: list[tuple[Callable[[Any, checkpoints.Checkpoint], None], Any]] = []
    if sink_path is not None:
        targets.append((checkpoints.publish_to_file, sink_path))
    if settings.checkpoint_url:
        targets.append((checkpoints.publish_to_url, settings.checkpoint_url))
    failures = 0
    for send, target in targets:
        try:
            send(target, checkpoint)
        except Exception as exc:
            failures += 1
            log.error("audit checkpoint %d not published: %s", checkpoint.seq, reason(exc))
    return failures


def store_checkpoint(connection: Connection, checkpoint: checkpoints.Checkpoint) -> None:
    connection.execute(
        insert(_CHECKPOINTS).values(
            kind=checkpoint.kind,
            seq=checkpoint.seq,
            entry_hash=checkpoint.entry_hash,
            at=checkpoint.at,
            note=checkpoint.note,
            key_id=checkpoint.key_id,
            signature=checkpoint.signature,
        )
    )


def reason(exc: BaseException) -> str:
    """The first line of what went wrong, with its type, for logs and CLI messages."""
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()
    return f"{type(original).__name__}: {first[0]}" if first else type(original).__name__
