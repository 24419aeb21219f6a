"""Import of a legacy flag register (CSV): every row checked first, then all or nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.register import flag_references, history, subjects
from sidecar.register import flags as flag_service
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag
from sidecar.register.rules import FlagTerms, Refusal, Restriction, State, add_months
from sidecar.register.status import status_changed
from sidecar.settings import Settings

COLUMNS = (
    "kind",
    "ref",
    "level",
    "categories",
    "restrictions",
    "handling",
    "reason",
    "control_measures",
    "responsible_manager",
    "flagged_on",
    "ends_on",
    "reasonable_adjustments",
)
REQUIRED = (
    "kind",
    "ref",
    "level",
    "categories",
    "reason",
    "control_measures",
    "responsible_manager",
)


class ImportFileError(Exception):
    """The file as a whole cannot be read (not CSV, missing columns)."""


@dataclass
class RowFate:
    line: int
    fate: str  # "import" | "skip" | "error"
    message: str
    row: dict[str, str] | None = None


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _restrictions(value: str) -> tuple[Restriction, ...]:
    """`code` or `code=note`, `;`-separated: "writing_only; time_limited_calls=10 minutes"."""
    found = []
    for part in _split(value):
        code, _, note = part.partition("=")
        found.append(Restriction(code.strip(), note.strip()))
    return tuple(found)


def _date(value: str, column: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise Refusal(f"{column} {value!r} is not a date (YYYY-MM-DD)") from None


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The CSV's data rows with their line numbers (the header is line 1)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportFileError(f"{path}: missing column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise ImportFileError(f"{path}: unknown column(s) {', '.join(unknown)}")
    rows = []
    for record in reader:
        clean = {(k or "").strip(): (v or "").strip() for k, v in record.items() if k}
        if any(clean.values()):
            rows.append((reader.line_num, clean))
    return rows


def check_row(
    session: Session, settings: Settings, line: int, row: dict[str, str], today: date
) -> RowFate:
    try:
        kind, ref = row["kind"], subjects.normalise_ref(row["kind"], row["ref"])
        terms = FlagTerms(
            level=row["level"],
            categories=tuple(_split(row["categories"])),
            restrictions=_restrictions(row.get("restrictions", "")),
            handling=row.get("handling", ""),
            ends_on=_date(row.get("ends_on", ""), "ends_on"),
        )
        flag_service.check_catalogue_terms(settings, terms, today)
        flagged_on = _date(row.get("flagged_on", ""), "flagged_on")
        if flagged_on and flagged_on > today:
            raise Refusal(f"flagged_on {flagged_on} is in the future")
        empty = [c for c in REQUIRED if not row.get(c)]
        if empty:
            raise Refusal(f"empty {', '.join(empty)}")
    except Refusal as exc:
        return RowFate(line, "error", exc.message)
    subject = subjects.find(session, kind, ref)
    if subject is not None:
        same = session.scalars(
            select(Flag).where(
                Flag.subject_id == subject.id,
                Flag.state == State.ACTIVE.value,
                Flag.level == terms.level,
            )
        ).all()
        if any(sorted(f.categories) == sorted(terms.categories) for f in same):
            return RowFate(
                line, "skip", f"{kind} {ref} already has an active {terms.level} flag like this"
            )
    return RowFate(
        line,
        "import",
        f"{kind} {ref}: {terms.level} ({', '.join(terms.categories)}) enters as active, "
        f"review due within {settings.policy.imported_review_months} months",
        row | {"ref": ref},
    )


def import_register(ctx: ServiceContext, path: Path, *, commit: bool) -> list[RowFate]:
    """Check every row; write the importable ones only when `commit` and no row has an error."""
    now = ctx.now()
    fates = [
        check_row(ctx.session, ctx.settings, line, row, now.date()) for line, row in read_rows(path)
    ]
    if not commit or any(f.fate == "error" for f in fates):
        return fates
    seen: set[tuple[str, str, str, tuple[str, ...]]] = set()
    for fate in fates:
        if fate.fate != "import" or fate.row is None:
            continue
        row = fate.row
        key = (row["kind"], row["ref"], row["level"], tuple(sorted(_split(row["categories"]))))
        if key in seen:
            fate.fate, fate.message = "skip", "the same flag appears on an earlier line"
            continue
        seen.add(key)
        _write(ctx, path, fate.line, row, now)
    return fates


def _write(ctx: ServiceContext, path: Path, line: int, row: dict[str, str], now: datetime) -> Flag:
    session, settings, keyring = ctx.session, ctx.settings, ctx.keyring
    subject = subjects.get_or_create(session, row["kind"], row["ref"])
    terms = FlagTerms(
        level=row["level"],
        categories=tuple(_split(row["categories"])),
        restrictions=_restrictions(row.get("restrictions", "")),
        handling=row.get("handling", ""),
        ends_on=_date(row.get("ends_on", ""), "ends_on"),
    )
    flag = Flag(
        subject=subject,
        state=State.ACTIVE.value,
        level=terms.level,
        categories=list(terms.categories),
        restrictions=[r.as_json() for r in terms.restrictions],
        handling=terms.handling or flag_service.default_handling(settings, terms),
        ends_on=terms.ends_on,
        responsible_manager=row["responsible_manager"],
        review_months=settings.policy.review_period_months,
        review_due=add_months(now.date(), settings.policy.imported_review_months),
        provenance="imported",
        proposed_by=ctx.actor.id,
        proposed_at=now,
        activated_at=now,
    )
    flag.seal(keyring, "reason", row["reason"])
    flag.seal(keyring, "control_measures", row["control_measures"])
    flag.seal(keyring, "reasonable_adjustments", row.get("reasonable_adjustments") or None)
    session.add(flag)
    session.flush()
    flag_references.ensure_reference(session, flag)
    flagged_on = row.get("flagged_on") or "an unknown date"
    history.record(
        ctx,
        flag,
        "imported",
        f"imported from the legacy register {path.name} line {line} (flagged there on "
        f"{flagged_on}); enters as active pending a proper review",
        from_state=None,
        facts={"file": path.name, "line": line, "flagged_on": row.get("flagged_on") or None},
        at=now,
    )
    status_changed(session, subject)
    return flag
