"""`forewarn audit`: verify, export and prune the audit trail from the command line."""

from __future__ import annotations

import json
from datetime import datetime

import click
from sqlalchemy.exc import SQLAlchemyError

from sidecar.audit import writer as audit
from sidecar.audit.trail import (
    AuditFilter,
    PruneInterrupted,
    PruneRefused,
    RotationUnrecorded,
    TrailBroken,
    export,
    parse_bound,
    prune,
    rotate_signing_key,
)
from sidecar.audit.verify import verify
from sidecar.cli.context import BadInput, Context, fail_cleanly, pass_context
from sidecar.fhir.audit_events import audit_event
from sidecar.register.references import normalise_ref
from sidecar.register.rules import Invalid
from sidecar.storage.database import Database, describe
from sidecar.storage.keys import AuditKeys, KeyFiles

SUBJECT_KINDS = ("customer", "property")


def _bound(value: str | None, option: str, *, end: bool) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_bound(value, end=end)
    except ValueError as exc:
        raise BadInput(f"{option}: {exc}") from None


def _unreadable(database: Database, exc: SQLAlchemyError) -> click.ClickException:
    return click.ClickException(
        f"cannot use the audit trail in {describe(database.url)}: {audit.reason(exc)}"
    )


@click.group("audit")
def audit_group() -> None:
    """Verify, export and prune the tamper-evident audit trail."""


@audit_group.command("verify")
@pass_context
@fail_cleanly
def verify_command(ctx: Context) -> None:
    """Recompute the hash chain and check every signed checkpoint.

    Exit 0 printing the entry count if intact; exit 1 naming the first bad entry.
    """
    settings = ctx.settings()
    keys = AuditKeys(KeyFiles.of(settings.instance_dir)).verifying()
    sink = settings.audit.checkpoint_path(settings.instance_dir)
    database = Database(settings.database_url)
    try:
        database.ping()
        try:
            with database.engine.connect() as connection:
                verdict = verify(connection, keys, sink, settings.audit.checkpoint_url or None)
        except SQLAlchemyError as exc:
            raise _unreadable(database, exc) from None
        try:
            with database.transaction() as session:
                audit.append(
                    session,
                    audit.AuditEvent(
                        action="audit.verify", outcome_reason=verdict.summary(), **ctx.cli_actor()
                    ),
                )
        except SQLAlchemyError as exc:
            # The verdict discloses nothing personal, so a read-only copy can still be checked.
            click.echo(f"note: this check was not recorded: {audit.reason(exc)}", err=True)
    finally:
        database.dispose()
    for note in verdict.notes:
        click.echo(f"note: {note}", err=True)
    if not verdict.ok:
        raise click.ClickException(verdict.summary())
    click.echo(verdict.summary())


@audit_group.command("export")
@click.option("--subject", metavar="KIND:REF", help="Only entries about this subject.")
@click.option("--from", "start", metavar="D", help="From this date or ISO date-time.")
@click.option("--to", "end", metavar="D", help="Up to this date (the whole day) or date-time.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["json", "fhir"]),
    default="json",
    show_default=True,
    help="json: each entry as stored; fhir: each entry as a FHIR R4 AuditEvent.",
)
@pass_context
@fail_cleanly
def export_command(
    ctx: Context, subject: str | None, start: str | None, end: str | None, output: str
) -> None:
    """Print the entries as JSON lines, every field included (the export is itself recorded).

    With --format fhir each line is a FHIR R4 AuditEvent (NDJSON), its sequence number, the
    previous entry's hash and its own in the audit-chain extension, so a SIEM or a records
    system can check the chain as `audit verify` does.
    """
    kind = ref = None
    if subject is not None:
        kind, _, ref = subject.partition(":")
        if kind not in SUBJECT_KINDS or not ref.strip():
            raise BadInput(
                f"--subject {subject!r}: use KIND:REF with KIND one of {', '.join(SUBJECT_KINDS)}"
            )
        try:
            ref = normalise_ref(kind, ref)
        except Invalid as exc:
            raise BadInput(f"--subject {subject!r}: {exc.message}") from None
    where = AuditFilter(
        kind=kind,
        ref=ref,
        start=_bound(start, "--from", end=False),
        end=_bound(end, "--to", end=True),
    )
    settings = ctx.settings()
    database = Database(settings.database_url)
    try:
        database.ping()
        try:
            with database.transaction() as session:
                audit.append(
                    session,
                    audit.AuditEvent(
                        action="audit.export",
                        subject_kind=kind,
                        subject_ref=ref,
                        outcome_reason=where.describe() + (" as FHIR" if output == "fhir" else ""),
                        **ctx.cli_actor(),
                    ),
                )
        except SQLAlchemyError as exc:
            raise click.ClickException(
                "the export could not be recorded in the audit trail, so nothing was exported: "
                + audit.reason(exc)
            ) from None
        try:
            with database.engine.connect() as connection:
                for item in export(connection, where):
                    if output == "fhir":
                        item = audit_event(settings, item)
                    click.echo(json.dumps(item, ensure_ascii=False, sort_keys=True))
        except SQLAlchemyError as exc:
            raise _unreadable(database, exc) from None
    finally:
        database.dispose()


@audit_group.command("prune")
@click.option(
    "--before",
    required=True,
    metavar="DATE",
    help="Remove entries recorded before this date (must be outside the retention period).",
)
@pass_context
@fail_cleanly
def prune_command(ctx: Context, before: str) -> None:
    """Remove entries older than the retention period, recording the cut as a signed checkpoint.

    Verification afterwards still passes and reports where the trail was cut.
    """
    moment = _bound(before, "--before", end=False)
    assert moment is not None
    settings = ctx.settings()
    keys = AuditKeys(KeyFiles.of(settings.instance_dir))
    sink = settings.audit.checkpoint_path(settings.instance_dir)
    database = Database(settings.database_url)
    try:
        database.ping()
        result = prune(database, settings.audit, keys, moment, ctx.cli_actor(), sink)
    except PruneRefused as exc:
        raise BadInput(str(exc)) from None
    except PruneInterrupted as exc:
        audit.publish(settings.audit, sink, exc.cut)
        raise click.ClickException(str(exc)) from None
    except TrailBroken as exc:
        raise click.ClickException(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _unreadable(database, exc) from None
    finally:
        database.dispose()
    if result.cut is None:
        click.echo(f"nothing to remove: no entry was recorded before {before}")
        return
    if audit.publish(settings.audit, sink, result.cut):
        click.echo("note: the cut could not be sent to the checkpoint sink", err=True)
    click.echo(
        f"removed {result.removed} entries up to entry {result.cut.seq}; "
        "the cut is recorded as a signed checkpoint"
    )


@audit_group.command("rotate-key")
@pass_context
@fail_cleanly
def rotate_key_command(ctx: Context) -> None:
    """Replace the key that signs checkpoints; the old one still vouches for what it signed.

    The head is signed with both keys, the old key's public half is kept (in
    keys/audit-retired-keys.json) for checkpoints up to that entry only, and the old private
    key is overwritten. Running servers sign with the new key from their next checkpoint on.
    """
    settings = ctx.settings()
    files = KeyFiles.of(settings.instance_dir)
    sink = settings.audit.checkpoint_path(settings.instance_dir)
    database = Database(settings.database_url)
    try:
        database.ping()
        rotation = rotate_signing_key(database, settings.audit, files, ctx.cli_actor())
    except SQLAlchemyError as exc:
        raise click.ClickException(
            "the signing key was not rotated, because the audit trail could not be written: "
            + audit.reason(exc)
        ) from None
    except RotationUnrecorded as exc:
        raise click.ClickException(str(exc)) from None
    except TimeoutError as exc:
        raise click.ClickException(f"the signing key was not rotated: {exc}") from None
    finally:
        database.dispose()
    for checkpoint in (rotation.retired, rotation.introduced):
        if audit.publish(settings.audit, sink, checkpoint):
            click.echo("note: a rotation checkpoint could not be sent to the sink", err=True)
    click.echo(
        f"audit signing key {rotation.retired.key_id} retired at entry {rotation.retired.seq}; "
        f"checkpoints are now signed with {rotation.introduced.key_id}"
    )


COMMANDS = (audit_group,)
