"""`forewarn notifications`: find time-based events, watch the outbox, send dead letters again."""

from __future__ import annotations

import json

import click

from sidecar.cli.context import Context, fail_cleanly, pass_context
from sidecar.notify.outbox import STATES, outbox_view, requeue_in, scan
from sidecar.storage.database import Database, utcnow


@click.group("notifications")
def notifications_group() -> None:
    """Notifications to staff: delivered by `forewarn worker` (or `forewarn sync run`)."""


@notifications_group.command("due")
@pass_context
@fail_cleanly
def notifications_due(ctx: Context) -> None:
    """Queue reviews coming due and appeal windows closing; each is told once, however often
    this runs (the worker runs it every notifications.scan_minutes)."""
    settings = ctx.settings()
    if not settings.notifications.enabled:
        raise click.ClickException("notifications are off: set notifications.delivery")
    database = Database(settings.database_url)
    try:
        report = scan(database, settings, utcnow().date())
    finally:
        database.dispose()
    click.echo(
        f"queued {report.reviews} review reminders, {report.windows} appeal window reminders"
    )


@notifications_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@pass_context
@fail_cleanly
def notifications_status(ctx: Context, as_json: bool) -> None:
    """Show the outbox: how many are pending, retrying, dead and sent; each dead one's reason."""
    database = Database(ctx.settings().database_url)
    try:
        with database.transaction() as session:
            view = outbox_view(session).as_json()
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    click.echo(", ".join(f"{state} {view['counts'][state]}" for state in STATES))
    for row in view["dead"]:
        click.echo(
            f"  dead {row['kind']} to {row['recipient']}: {row['attempts']} attempts: "
            f"{row['last_error'] or 'no reason recorded'}"
        )


@notifications_group.command("requeue")
@pass_context
@fail_cleanly
def notifications_requeue(ctx: Context) -> None:
    """Send every dead notification again on the worker's next pass (audited)."""
    database = Database(ctx.settings().database_url)
    try:
        with database.transaction() as session:
            count = requeue_in(session, ctx.cli_actor())
    finally:
        database.dispose()
    click.echo(f"requeued {count} notifications")


COMMANDS = (notifications_group,)
