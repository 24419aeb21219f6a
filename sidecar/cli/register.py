"""Lifecycle commands: legacy import, reviews due, expiry and the retention purge."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sidecar.cli.context import BadInput, Context, fail_cleanly, pass_context
from sidecar.register import flags, importer, reviews
from sidecar.register.context import ServiceContext
from sidecar.register.staff import Person
from sidecar.settings import Settings
from sidecar.storage.crypto import KeyRing
from sidecar.storage.database import Database, utcnow
from sidecar.storage.keys import KeyFiles


def _actor(ctx: Context) -> Person:
    fields = ctx.cli_actor()
    return Person(fields["actor_id"], fields["actor_name"], ("cli",), "cli")


def _open(settings: Settings) -> tuple[Database, KeyRing]:
    return Database(settings.database_url), KeyRing.load(
        KeyFiles.of(settings.instance_dir).data_keys
    )


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--commit", is_flag=True, help="Write the flags (default: a dry run that writes nothing)."
)
@pass_context
@fail_cleanly
def import_command(ctx: Context, file: Path, commit: bool) -> None:
    """Import a legacy flag register (CSV; columns in the README). Dry run unless --commit."""
    settings = ctx.settings()
    database, keyring = _open(settings)
    try:
        with database.transaction() as session:
            try:
                fates = importer.import_register(
                    ServiceContext(session, settings, keyring, _actor(ctx)), file, commit=commit
                )
            except importer.ImportFileError as exc:
                raise BadInput(str(exc)) from None
    finally:
        database.dispose()
    for fate in fates:
        click.echo(f"line {fate.line}: {fate.fate}: {fate.message}")
    counts = {kind: sum(1 for f in fates if f.fate == kind) for kind in ("import", "skip", "error")}
    if counts["error"]:
        raise BadInput(f"{counts['error']} row(s) have errors (listed above); nothing was written")
    if commit:
        click.echo(f"imported {counts['import']} flag(s); skipped {counts['skip']}")
    else:
        click.echo(
            f"dry run: {counts['import']} to import, {counts['skip']} to skip; nothing written "
            "(add --commit to write)"
        )


@click.group("reviews")
def reviews_group() -> None:
    """Flag reviews."""


@reviews_group.command("due")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@pass_context
@fail_cleanly
def reviews_due(ctx: Context, as_json: bool) -> None:
    """Active flags whose review is due soon or overdue, and flags still awaiting notice."""
    settings = ctx.settings()
    database = Database(settings.database_url)
    now = utcnow()
    try:
        with database.transaction() as session:
            due = reviews.due(session, settings, now.date())
            unnotified = reviews.notices_overdue(session, settings, now)
    finally:
        database.dispose()
    if as_json:
        click.echo(
            json.dumps(
                {"as_of": now.date().isoformat(), "flags": due, "notices_overdue": unnotified},
                indent=2,
            )
        )
        return
    if not due:
        click.echo(f"no review due within {settings.lifecycle.review_due_soon_days} days")
    for item in due:
        late = f" ({item['days_overdue']} days overdue)" if item["standing"] == "overdue" else ""
        click.echo(
            f"{item['standing'].upper():8} {item['review_due']}  {item['subject']['kind']} "
            f"{item['subject']['ref']}  {item['level']}  flag {item['id']}{late}"
        )
    for item in unnotified:
        click.echo(
            f"NOTICE   active since {item['activated_at'][:10]} without a letter or recorded "
            f"exception: {item['subject']['kind']} {item['subject']['ref']}  flag {item['id']}"
        )


@click.group("flags")
def flags_group() -> None:
    """Flag maintenance: expiry and the retention purge."""


@flags_group.command("expire")
@pass_context
@fail_cleanly
def flags_expire(ctx: Context) -> None:
    """End active flags whose own end date has passed."""
    settings = ctx.settings()
    database, keyring = _open(settings)
    try:
        with database.transaction() as session:
            ended = flags.expire_due(ServiceContext(session, settings, keyring, _actor(ctx)))
            ids = [f.id for f in ended]
    finally:
        database.dispose()
    for flag_id in ids:
        click.echo(f"expired flag {flag_id}")
    click.echo(f"{len(ids)} flag(s) expired")


@flags_group.command("purge")
@pass_context
@fail_cleanly
def flags_purge(ctx: Context) -> None:
    """Clear confidential fields of flags ended longer ago than the retention period."""
    settings = ctx.settings()
    database, keyring = _open(settings)
    try:
        with database.transaction() as session:
            service = ServiceContext(session, settings, keyring, _actor(ctx))
            purged = [f.id for f in flags.purge_ended(service)]
    finally:
        database.dispose()
    for flag_id in purged:
        click.echo(f"purged confidential details of flag {flag_id}")
    click.echo(
        f"{len(purged)} flag(s) purged (ended more than "
        f"{settings.policy.retention_months_after_end} months ago); decision records kept"
    )


COMMANDS = (import_command, reviews_group, flags_group)
