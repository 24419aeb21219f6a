"""`forewarn sessions`: see and end one member of staff's sign-in sessions (leaver, lost device)."""

from __future__ import annotations

import click

from sidecar.cli.context import Context, fail_cleanly, pass_context
from sidecar.identity import staff_sessions
from sidecar.register.staff import Person
from sidecar.storage.database import Database


def _actor(ctx: Context) -> Person:
    fields = ctx.cli_actor()
    return Person(fields["actor_id"], fields["actor_name"], ("cli",), "cli")


@click.group("sessions")
def sessions_group() -> None:
    """Sign-in sessions: each is checked on every request, so ending one takes effect at once."""


@sessions_group.command("list")
@click.option("--user", "user_id", required=True, help="Staff user id, as sign-in carries it.")
@pass_context
@fail_cleanly
def sessions_list(ctx: Context, user_id: str) -> None:
    """List the user's sessions still running."""
    database = Database(ctx.settings().database_url)
    try:
        with database.transaction() as session:
            live = staff_sessions.live_sessions(session, user_id)
    finally:
        database.dispose()
    for item in live:
        click.echo(
            f"{item.user_id}: signed in by {item.via} at {item.started_at.isoformat()}, "
            f"ends by {item.expires_at.isoformat()}"
        )
    click.echo(f"{len(live)} sessions of {user_id} running")


@sessions_group.command("end")
@click.option("--user", "user_id", required=True, help="Staff user id, as sign-in carries it.")
@click.option("--reason", default="", help="Why, for the audit trail (e.g. 'left the council').")
@pass_context
@fail_cleanly
def sessions_end(ctx: Context, user_id: str, reason: str) -> None:
    """End every session of the user: their cookies and access tokens stop working everywhere."""
    database = Database(ctx.settings().database_url)
    try:
        with database.transaction() as session:
            count = staff_sessions.end_all_for_user(session, _actor(ctx), user_id, reason)
    finally:
        database.dispose()
    click.echo(f"ended {count} sessions of {user_id}")


COMMANDS = (sessions_group,)
