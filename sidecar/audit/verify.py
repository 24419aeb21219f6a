"""The audit verifier: recompute the chain and check every signed checkpoint against it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from sidecar.audit.checkpoints import (
    CUT,
    Checkpoint,
    SinkFileError,
    SinkReadError,
    VerifyingKeys,
    key_id,
    read_file,
    read_url,
)
from sidecar.audit.models import AuditCheckpoint, AuditEntry, AuditHead
from sidecar.audit.writer import GENESIS, entry_hash

if TYPE_CHECKING:
    from sidecar.settings import AuditSettings
    from sidecar.storage.database import Database
    from sidecar.storage.keys import AuditKeys

_ENTRIES = AuditEntry.__table__
_CHECKPOINTS = AuditCheckpoint.__table__
_HEAD = AuditHead.__table__


@dataclass(frozen=True)
class Verification:
    """The verdict: intact or not, how many entries, and the first bad one with why."""

    ok: bool
    entries: int
    first_bad: int | None
    problem: str | None
    checkpoints: int
    cut: Checkpoint | None
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad": self.first_bad,
            "problem": self.problem,
            "checkpoints": self.checkpoints,
            "cut": None if self.cut is None else self._cut_json(self.cut),
            "notes": list(self.notes),
        }

    @staticmethod
    def _cut_json(cut: Checkpoint) -> dict[str, Any]:
        return {"after_entry": cut.seq, "at": cut.at.isoformat(), "note": cut.note}

    def summary(self) -> str:
        if not self.ok:
            where = f"first bad entry {self.first_bad}: " if self.first_bad is not None else ""
            return f"audit trail NOT intact: {where}{self.problem}"
        text = (
            f"audit trail intact: {self.entries} entries, "
            f"{self.checkpoints} signed checkpoints verified"
        )
        if self.cut is not None:
            text += (
                f"; entries up to {self.cut.seq} were removed on "
                f"{self.cut.at.date().isoformat()} ({self.cut.note})"
            )
        return text


class _Findings:
    """Problems found, each at an entry; the verdict names the earliest."""

    def __init__(self) -> None:
        self.found: list[tuple[float, int, int | None, str]] = []

    def add(self, seq: int | None, problem: str) -> None:
        order = float("inf") if seq is None else seq
        self.found.append((order, len(self.found), seq, problem))

    def first(self) -> tuple[int | None, str] | None:
        if not self.found:
            return None
        _order, _n, seq, problem = min(self.found)
        return seq, problem


def verify_instance(
    database: Database, settings: AuditSettings, keys: AuditKeys, instance_dir: Path
) -> Verification:
    """`verify` on a running instance's trail, keys, checkpoint file and checkpoint URL.

    Raises KeyRingError when the keys to verify with cannot be read.
    """
    sink = settings.checkpoint_path(instance_dir)
    verifying = keys.verifying()
    with database.engine.connect() as connection:
        return verify(connection, verifying, sink, settings.checkpoint_url or None)


def verify(
    connection: Connection,
    keys: VerifyingKeys,
    sink_path: Path | None = None,
    sink_url: str | None = None,
) -> Verification:
    """Walk the whole chain in order and hold it against the head row and every checkpoint.

    Detects an edited entry (hash), a deleted or reordered one (sequence and previous
    hash), a rewritten tail (a signed checkpoint no longer matches) and a truncated tail
    (the head row, or a checkpoint stored here, in the external file or at the checkpoint
    URL, is beyond the end). A checkpoint URL that cannot be read back fails the check:
    the evidence outside the database is then unseen, not absent.
    """
    findings = _Findings()
    notes: list[str] = []
    valid = _valid_checkpoints(connection, keys, sink_path, sink_url, findings, notes)
    cuts = [checkpoint for _where, checkpoint in valid if checkpoint.kind == CUT]
    cut = max(cuts, key=lambda checkpoint: checkpoint.seq, default=None)
    start = cut.seq if cut is not None else 0
    watched = {checkpoint.seq for _where, checkpoint in valid if checkpoint.seq > start}

    # Checkpoints were read before the head and the head before the entries: with writers
    # still appending, everything read is then covered by the head, so only entries up to
    # it are walked and a checkpoint beyond it can only mean a truncated tail.
    head = connection.execute(select(_HEAD.c.seq, _HEAD.c.entry_hash)).first()
    head_seq = head.seq if head is not None else 0
    if start:
        notes += _leftover_note(connection, start)
    walk = _walk(connection, start, head_seq, cut, watched, findings)
    _check_head(connection, head, start, walk, findings)
    _check_checkpoints(valid, start, walk, findings)

    first = findings.first()
    return Verification(
        ok=first is None,
        entries=walk.count,
        first_bad=None if first is None else first[0],
        problem=None if first is None else first[1],
        checkpoints=len(valid),
        cut=cut,
        notes=tuple(notes),
    )


def _valid_checkpoints(
    connection: Connection,
    keys: VerifyingKeys,
    sink_path: Path | None,
    sink_url: str | None,
    findings: _Findings,
    notes: list[str],
) -> list[tuple[str, Checkpoint]]:
    """Every checkpoint stored here, in the external file or at the URL whose signature holds."""
    sources = [
        ("stored", Checkpoint.from_row(row))
        for row in connection.execute(select(_CHECKPOINTS).order_by(_CHECKPOINTS.c.id))
    ]
    if sink_path is not None:
        if sink_path.exists():
            try:
                sources += [("external", checkpoint) for checkpoint in read_file(sink_path)]
            except SinkFileError as exc:
                findings.add(None, str(exc))
        else:
            notes.append(f"checkpoint file {sink_path} does not exist yet")
    if sink_url is not None:
        try:
            sources += [("collector's", checkpoint) for checkpoint in read_url(sink_url)]
        except SinkReadError as exc:
            findings.add(None, str(exc))

    current = key_id(keys.current)
    if current in keys.retired:
        notes.append(
            f"signing key {current} is listed as retired but is still in use (a rotation "
            "did not finish): run `forewarn audit rotate-key` again"
        )
    valid: list[tuple[str, Checkpoint]] = []
    for where, checkpoint in sources:
        problem = keys.problem(checkpoint)
        if problem is None:
            valid.append((where, checkpoint))
        else:
            findings.add(
                checkpoint.seq, f"the {where} checkpoint for entry {checkpoint.seq} {problem}"
            )
    return valid


def _leftover_note(connection: Connection, start: int) -> list[str]:
    # A prune records its cut first and then removes the entries in batches, so entries
    # up to a signed cut may remain for a while (or after a prune was interrupted).
    leftover = connection.execute(
        select(func.count()).select_from(_ENTRIES).where(_ENTRIES.c.seq <= start)
    ).scalar_one()
    if not leftover:
        return []
    return [
        f"{leftover} entries up to the cut after entry {start} are still to be removed: "
        "a prune is running or was interrupted (run it again to finish)"
    ]


@dataclass
class _Walk:
    """What walking the entries found: how many, the last good one, its hash, where it broke."""

    count: int
    last: int
    previous: str
    broken: bool
    hashes: dict[int, str]


def _walk(
    connection: Connection,
    start: int,
    head_seq: int,
    cut: Checkpoint | None,
    watched: set[int],
    findings: _Findings,
) -> _Walk:
    """Recompute the chain from the cut to the head, stopping at the first break."""
    expected, previous = start + 1, (cut.entry_hash if cut is not None else GENESIS)
    hashes: dict[int, str] = {}
    count = 0
    broken = False
    rows = connection.execution_options(yield_per=2000).execute(
        select(_ENTRIES)
        .where(_ENTRIES.c.seq > start, _ENTRIES.c.seq <= head_seq)
        .order_by(_ENTRIES.c.seq)
    )
    for row in rows.mappings():
        count += 1
        if broken:
            continue
        seq = row["seq"]
        if seq > expected:
            findings.add(expected, f"entry {expected} is missing (the next present is {seq})")
        elif row["prev_hash"] != previous:
            findings.add(seq, f"entry {seq} does not follow entry {seq - 1} (moved or replaced)")
        elif entry_hash(dict(row)) != row["entry_hash"]:
            findings.add(seq, f"entry {seq} was altered: its content does not match its hash")
        else:
            previous = row["entry_hash"]
            if seq in watched:
                hashes[seq] = previous
            expected += 1
            continue
        broken = True
    return _Walk(count, expected - 1, previous, broken, hashes)


def _check_head(
    connection: Connection, head: Any, start: int, walk: _Walk, findings: _Findings
) -> None:
    """The head row must name the last entry, and no entry may lie beyond it."""
    if head is None:
        findings.add(start + 1, "the chain's head row is missing")
    elif not walk.broken and head.seq > walk.last:
        findings.add(
            walk.last + 1, f"entries {walk.last + 1} to {head.seq} are missing from the end"
        )
    elif not walk.broken and head.entry_hash != walk.previous:
        findings.add(head.seq, "the chain's head row does not match its last entry")
    newest = connection.execute(select(func.max(_ENTRIES.c.seq))).scalar() or 0
    head_now = connection.execute(select(_HEAD.c.seq)).scalar() or 0
    if newest > head_now:
        findings.add(head_now + 1, f"entry {head_now + 1} lies beyond the chain's head")


def _check_checkpoints(
    valid: list[tuple[str, Checkpoint]], start: int, walk: _Walk, findings: _Findings
) -> None:
    """Every signed checkpoint after the cut must cover an entry present, with its hash."""
    for where, checkpoint in valid:
        if checkpoint.seq <= start:
            continue
        signed = checkpoint.at.isoformat(timespec="seconds")
        if checkpoint.seq > walk.last and not walk.broken:
            findings.add(
                walk.last + 1,
                f"entries after {walk.last} are missing: the {where} checkpoint signed {signed} "
                f"covers entry {checkpoint.seq}",
            )
        elif checkpoint.seq in walk.hashes and walk.hashes[checkpoint.seq] != checkpoint.entry_hash:
            findings.add(
                checkpoint.seq,
                f"entry {checkpoint.seq} differs from the {where} checkpoint signed {signed} "
                "(the chain was rewritten at or before it)",
            )
