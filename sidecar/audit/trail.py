"""Reading and pruning the audit trail: filters, pages, exports and retention cuts."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Select, delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from sidecar.audit import checkpoints
from sidecar.audit.models import AuditEntry
from sidecar.audit.verify import verify
from sidecar.audit.writer import (
    LOCK_HEAD,
    AuditEvent,
    ChainTurn,
    append_on,
    entry_hash,
    lock_timeout,
    reason,
    store_checkpoint,
)
from sidecar.settings import AuditSettings
from sidecar.storage.crypto import write_secret
from sidecar.storage.database import Database, utcnow
from sidecar.storage.keys import (
    AuditKeys,
    KeyFiles,
    load_audit_signing_key,
    load_retired_audit_keys,
    private_pem,
    save_retired_audit_keys,
)

_ENTRIES = AuditEntry.__table__


def parse_bound(text: str, *, end: bool) -> datetime:
    """A date (YYYY-MM-DD, the whole day) or an ISO 8601 date-time (UTC when no offset).

    As an end bound a bare date includes that whole day; bounds are returned exclusive
    at the end, inclusive at the start.
    """
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        moment = datetime.combine(day, time.min, tzinfo=UTC)
        return _shifted(text, moment, timedelta(days=1 if end else 0))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return _shifted(text, moment, timedelta(0))


def _shifted(text: str, moment: datetime, by: timedelta) -> datetime:
    """`moment + by` in UTC, or ValueError when that falls outside the calendar."""
    try:
        return (moment + by).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the dates the trail can hold") from None


@dataclass(frozen=True)
class AuditFilter:
    """Which entries: any combination of subject, actor, action, outcome and a time range."""

    kind: str | None = None
    ref: str | None = None
    actor: str | None = None
    action: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    outcome: str | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.kind is not None:
            query = query.where(_ENTRIES.c.subject_kind == self.kind)
        if self.ref is not None:
            query = query.where(_ENTRIES.c.subject_ref == self.ref)
        if self.actor is not None:
            query = query.where(_ENTRIES.c.actor_id == self.actor)
        if self.action is not None:
            query = query.where(_ENTRIES.c.action == self.action)
        if self.start is not None:
            query = query.where(_ENTRIES.c.at >= self.start)
        if self.end is not None:
            query = query.where(_ENTRIES.c.at < self.end)
        if self.outcome is not None:
            query = query.where(_ENTRIES.c.outcome == self.outcome)
        return query

    def describe(self) -> str:
        parts = [
            f"{name}={value.isoformat() if isinstance(value, datetime) else value}"
            for name, value in vars(self).items()
            if value is not None
        ]
        return "filters: " + (" ".join(parts) if parts else "none")


def entry_json(row: Any) -> dict[str, Any]:
    """An entry as exported: every recorded field, so a reader can recompute the hashes."""
    data = dict(row)
    data["at"] = data["at"].isoformat()
    return data


def page(
    connection: Connection, where: AuditFilter, after: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Entries in sequence order after the cursor; the next cursor when more remain."""
    query = where.apply(select(_ENTRIES)).order_by(_ENTRIES.c.seq).limit(limit + 1)
    if after is not None:
        query = query.where(_ENTRIES.c.seq > after)
    rows = [entry_json(row) for row in connection.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["seq"] if more else None)


def export(connection: Connection, where: AuditFilter) -> Iterator[dict[str, Any]]:
    query = where.apply(select(_ENTRIES)).order_by(_ENTRIES.c.seq)
    for row in connection.execution_options(yield_per=2000).execute(query).mappings():
        yield entry_json(row)


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (clamped to the month's end)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))


class PruneRefused(Exception):
    """The date asked for is inside the retention period: nothing was removed."""


class TrailBroken(Exception):
    """The trail does not verify, so it is not cut (a cut would bury the evidence)."""


class PruneInterrupted(Exception):
    """The cut is recorded but not every entry below it was removed."""

    def __init__(self, message: str, cut: checkpoints.Checkpoint) -> None:
        super().__init__(message)
        self.cut = cut


@dataclass(frozen=True)
class PruneResult:
    removed: int
    cut: checkpoints.Checkpoint | None


# Entries removed per transaction: on SQLite a deletion holds the only write lock, so a
# batch must finish well inside `audit.lock_timeout_ms`, or audited requests would fail.
PRUNE_BATCH = 5_000


def prune(
    database: Database,
    settings: AuditSettings,
    keys: AuditKeys,
    before: datetime,
    actor: dict[str, str],
    sink_path: Path | None,
    batch: int = PRUNE_BATCH,
) -> PruneResult:
    """Remove the entries older than `before`, recording the cut as a signed checkpoint.

    The whole trail is verified first, without holding the chain's lock so requests go on
    being served. The cut and an `audit.prune` entry commit first, in one short transaction
    that re-checks the entry at the cut, so the signed cut vouches only for what was
    verified. The entries up to the cut are then deleted `batch` at a time, each batch its
    own transaction, so requests are kept waiting for one batch at most. Verification
    ignores (and notes) entries left below a cut, so an interrupted prune leaves a trail
    that verifies, and running it again finishes the removal.
    """
    oldest_allowed = months_before(utcnow(), settings.retention_months)
    if before > oldest_allowed:
        raise PruneRefused(
            f"entries are kept {settings.retention_months} months: the latest cut allowed "
            f"today is before {oldest_allowed.date().isoformat()}"
        )
    with database.engine.connect() as connection:
        verdict = verify(connection, keys.verifying(), sink_path, settings.checkpoint_url or None)
    if not verdict.ok:
        raise TrailBroken(f"nothing removed because the {verdict.summary()}")
    with database.engine.connect() as connection, connection.begin():
        # Cut just before the first entry recorded on or after the date (entries carry
        # their time in sequence order, so nothing newer than asked is ever removed).
        first_kept = connection.execute(
            select(func.min(_ENTRIES.c.seq)).where(_ENTRIES.c.at >= before)
        ).scalar()
        oldest, newest = connection.execute(
            select(func.min(_ENTRIES.c.seq), func.max(_ENTRIES.c.seq))
        ).one()
        last_removed = newest if first_kept is None else first_kept - 1
        if oldest is None or last_removed < oldest:
            return PruneResult(0, None)
        if verdict.cut is not None and verdict.cut.seq >= last_removed:
            # An earlier prune recorded this cut and was interrupted: finish its removal.
            cut = verdict.cut
            return PruneResult(_remove(database, oldest, cut, batch), cut)
        at_cut = (
            connection.execute(select(_ENTRIES).where(_ENTRIES.c.seq == last_removed))
            .mappings()
            .one()
        )
        if entry_hash(dict(at_cut)) != at_cut["entry_hash"]:
            raise TrailBroken(f"nothing removed because entry {last_removed} was altered")
        to_remove = connection.execute(
            select(func.count()).select_from(_ENTRIES).where(_ENTRIES.c.seq <= last_removed)
        ).scalar_one()
        note = f"retention: entries before {before.isoformat()} removed by {actor['actor_id']}"
        cut = checkpoints.sign(
            keys.signing_key(), checkpoints.CUT, last_removed, at_cut["entry_hash"], utcnow(), note
        )
        store_checkpoint(connection, cut)
        with lock_timeout(connection, settings.lock_timeout_ms):
            append_on(
                connection,
                AuditEvent(
                    action="audit.prune",
                    outcome_reason=f"cut after entry {last_removed}; {to_remove} entries removed",
                    **actor,
                ),
            )
    return PruneResult(_remove(database, oldest, cut, batch), cut)


def _remove(database: Database, oldest: int, cut: checkpoints.Checkpoint, batch: int) -> int:
    """Delete the entries from `oldest` up to the cut, `batch` per transaction."""
    removed = 0
    for low in range(oldest, cut.seq + 1, batch):
        high = min(low + batch - 1, cut.seq)
        try:
            with database.engine.begin() as connection:
                removed += connection.execute(
                    delete(_ENTRIES).where(_ENTRIES.c.seq >= low, _ENTRIES.c.seq <= high)
                ).rowcount
        except SQLAlchemyError as exc:
            raise PruneInterrupted(
                f"the cut after entry {cut.seq} is recorded and {removed} entries below it "
                f"were removed, then: {reason(exc)}; the trail still verifies, and running "
                "the same prune again removes the rest",
                cut,
            ) from None
    return removed


@dataclass(frozen=True)
class Rotation:
    """The checkpoints that close the old key's part of the chain and open the new key's."""

    retired: checkpoints.Checkpoint
    introduced: checkpoints.Checkpoint


class RotationUnrecorded(Exception):
    """The new signing key is in use, but the rotation's checkpoints and entry were lost."""

    def __init__(self, new_id: str, why: str) -> None:
        super().__init__(
            f"the signing key was replaced (checkpoints are now signed with {new_id}), but "
            f"the rotation could not be recorded in the trail: {why}; verification still "
            "passes, as the old key stays good for what it signed before"
        )


def rotate_signing_key(
    database: Database, settings: AuditSettings, files: KeyFiles, actor: dict[str, str]
) -> Rotation:
    """Replace the audit signing key; the old one stays good for what it signed until now.

    Holding the chain's lock (so no entry or checkpoint is written meanwhile), the head is
    signed once with the old key and once with the new and an `audit.rotate_key` entry is
    chained; then the old key's public half is listed as retired at the head and the new
    private key replaces the old in its file; then the transaction commits and the lock is
    let go. The old private key is then gone from the instance. A crash before the key file
    is replaced leaves the old key current, and verification treats its retirement as not
    yet made. Raises RotationUnrecorded if the key was replaced but the commit failed.
    """
    old = load_audit_signing_key(files)
    new = Ed25519PrivateKey.generate()
    old_id = checkpoints.key_id(old.public_key())
    new_id = checkpoints.key_id(new.public_key())
    turn = ChainTurn.for_url(database.url, settings.lock_timeout_ms)
    engine = database.bounded_engine(settings.lock_timeout_ms)
    try:
        with turn.held(), engine.begin() as connection:
            seq, head = connection.execute(LOCK_HEAD).one()
            now = utcnow()
            retired = checkpoints.sign(
                old, checkpoints.HEAD, seq, head, now, f"signing key {old_id} retired"
            )
            introduced = checkpoints.sign(
                new, checkpoints.HEAD, seq, head, now, f"signing key {new_id} introduced"
            )
            store_checkpoint(connection, retired)
            store_checkpoint(connection, introduced)
            append_on(
                connection,
                AuditEvent(
                    action="audit.rotate_key",
                    outcome_reason=f"signing key {old_id} retired at entry {seq}; {new_id} in use",
                    **actor,
                ),
            )
            # The files last, once every statement has succeeded, and the retirement first:
            # no moment exists in which the new key is in use and the old one is unknown.
            listed = load_retired_audit_keys(files)
            listed[old_id] = checkpoints.RetiredKey(
                old.public_key(), seq, now.isoformat(timespec="seconds")
            )
            save_retired_audit_keys(files, listed)
            write_secret(files.audit_signing_key, private_pem(new))
    except SQLAlchemyError as exc:
        if checkpoints.key_id(load_audit_signing_key(files).public_key()) == new_id:
            raise RotationUnrecorded(new_id, reason(exc)) from None
        raise
    return Rotation(retired, introduced)
