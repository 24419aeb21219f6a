"""The CRM record Ids connectors have found, kept per connector and subject in the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connectors.base import Connector, RecordIds
from sidecar.register.models import Subject
from sidecar.storage.database import Database, utcnow
from sidecar.sync.models import CrmRecordId

# Keys per statement: each names at most this many subject references.
KEY_BATCH = 1000


class StoredRecordIds(RecordIds):
    """One connector's record Ids in `sync_record_ids`, keyed by the subject they belong to.

    A connector names a record by subject kind and reference; the table holds the subject's
    id, so the Id follows the subject. Every worker and reconciliation of the connector
    reads and refreshes the same rows, so what one learns the others need not look up.
    """

    def __init__(self, database: Database, connector: str) -> None:
        self.database = database
        self.connector = connector

    def known(self, kind: str, keys: Sequence[str]) -> dict[str, str]:
        held: dict[str, str] = {}
        with self.database.transaction() as session:
            for chunk in _chunks(list(dict.fromkeys(keys))):
                # The subjects first, then their rows: each read by its own index (joined, a
                # planner may read every row of the connector instead).
                refs = dict(_subjects(session, kind, chunk))
                rows = session.execute(
                    select(CrmRecordId.subject_id, CrmRecordId.record_id).where(
                        CrmRecordId.connector == self.connector,
                        CrmRecordId.subject_id.in_(list(refs)),
                    )
                )
                held.update({refs[subject_id]: record_id for subject_id, record_id in rows})
        return held

    def learn(self, kind: str, ids: Mapping[str, str]) -> None:
        now = utcnow()
        with self.database.transaction() as session:
            dialect = session.get_bind().dialect.name
            upsert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CrmRecordId)
            upsert = upsert.on_conflict_do_update(
                index_elements=[CrmRecordId.connector, CrmRecordId.subject_id],
                set_={
                    "record_id": upsert.excluded.record_id,
                    "learned_at": upsert.excluded.learned_at,
                },
            )
            for chunk in _chunks(list(ids)):
                subjects = _subjects(session, kind, chunk)
                # In subject order, so two workers learning overlapping subjects take the
                # rows' locks in the same order.
                rows = [
                    {
                        "connector": self.connector,
                        "subject_id": subject_id,
                        "record_id": ids[ref],
                        "learned_at": now,
                    }
                    for subject_id, ref in sorted(subjects)
                ]
                if rows:
                    session.execute(upsert, rows)

    def forget(self, kind: str, ids: Mapping[str, str]) -> None:
        with self.database.transaction() as session:
            for chunk in _chunks(list(ids)):
                subjects = [subject_id for subject_id, _ in _subjects(session, kind, chunk)]
                # Only the stale Id: another worker may have learned a new one meanwhile.
                session.execute(
                    delete(CrmRecordId)
                    .where(
                        CrmRecordId.connector == self.connector,
                        CrmRecordId.subject_id.in_(subjects),
                        CrmRecordId.record_id.in_([ids[key] for key in chunk]),
                    )
                    .execution_options(synchronize_session=False)
                )


def keep_record_ids(database: Database, connectors: Mapping[str, Connector]) -> None:
    """Give each connector its rows of `sync_record_ids` to find and remember record Ids in."""
    for name, connector in connectors.items():
        store = connector.record_ids
        if not (isinstance(store, StoredRecordIds) and store.database is database):
            connector.use_record_ids(StoredRecordIds(database, name))


def _subjects(session: Session, kind: str, refs: list[str]) -> list[tuple[str, str]]:
    """The id and reference of each subject of `kind` among `refs`."""
    rows = session.execute(
        select(Subject.id, Subject.ref).where(Subject.kind == kind, Subject.ref.in_(refs))
    )
    return [(subject_id, ref) for subject_id, ref in rows]


def _chunks(keys: list[str]) -> list[list[str]]:
    return [keys[start : start + KEY_BATCH] for start in range(0, len(keys), KEY_BATCH)]
