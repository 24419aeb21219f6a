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

from sidecar import audit_checkpoints as checkpoints
from sidecar.audit import AuditEvent, append_on, entry_hash, lock_timeout, store_checkpoint
from sidecar.audit_models import AuditEntry
from sidecar.audit_verify import verify
from sidecar.db import Database, utcnow
from sidecar.settings import AuditSettings

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
        return moment + timedelta(days=1) if end else moment
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class AuditFilter:
    """Which entries: any combination of subject, actor, action and a time range."""

    kind: str | None = None
    ref: str | None = None
    actor: str | None = None
    action: str | None = None
    start: datetime | None = None
    end: datetime | None = None

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


@dataclass(frozen=True)
class PruneResult:
    removed: int
    cut: checkpoints.Checkpoint | None


def prune(
    database: Database,
    settings: AuditSettings,
    key: Ed25519PrivateKey,
    before: datetime,
    actor: dict[str, str],
    sink_path: Path | None,
) -> PruneResult:
    """Remove the entries older than `before`, recording the cut as a signed checkpoint.

    The whole trail is verified first, without holding the chain's lock so requests go
    on being served. The deletion, the cut and an `audit.prune` entry then commit in one
    transaction; the entry at the cut is re-checked inside it, so the signed cut vouches
    only for what was verified.
    """
    oldest_allowed = months_before(utcnow(), settings.retention_months)
    if before > oldest_allowed:
        raise PruneRefused(
            f"entries are kept {settings.retention_months} months: the latest cut allowed "
            f"today is before {oldest_allowed.date().isoformat()}"
        )
    with database.engine.connect() as connection:
        verdict = verify(connection, key.public_key(), sink_path)
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
        at_cut = (
            connection.execute(select(_ENTRIES).where(_ENTRIES.c.seq == last_removed))
            .mappings()
            .one()
        )
        if entry_hash(dict(at_cut)) != at_cut["entry_hash"]:
            raise TrailBroken(f"nothing removed because entry {last_removed} was altered")
        removed = connection.execute(
            delete(_ENTRIES).where(_ENTRIES.c.seq <= last_removed)
        ).rowcount
        note = f"retention: entries before {before.isoformat()} removed by {actor['actor_id']}"
        cut = checkpoints.sign(
            key, checkpoints.CUT, last_removed, at_cut["entry_hash"], utcnow(), note
        )
        store_checkpoint(connection, cut)
        with lock_timeout(connection, settings.lock_timeout_ms):
            append_on(
                connection,
                AuditEvent(
                    action="audit.prune",
                    outcome_reason=f"removed {removed} entries up to {last_removed}",
                    **actor,
                ),
            )
    return PruneResult(removed, cut)
