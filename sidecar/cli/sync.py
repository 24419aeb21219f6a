"""`forewarn sync` and `forewarn worker`: drain the outbox, watch it, reconcile a CRM."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import click

from connectors.base import ConnectorConfigError, Delivery
from sidecar.cli.context import BadInput, Context, fail_cleanly, pass_context
from sidecar.notify.delivery import DeliveryConfigError, delivery_for
from sidecar.notify.outbox import NotificationSender
from sidecar.runtime import StartupError
from sidecar.settings import Settings
from sidecar.storage.database import Database
from sidecar.sync.health import connector_health
from sidecar.sync.outbox import load_connectors, requeue
from sidecar.sync.reconcile import run_reconcile
from sidecar.sync.worker import SyncWorker


def _open(
    ctx: Context, *, notifications: bool = False
) -> tuple[Settings, Database, dict[str, Any]]:
    """Settings, the database and the connectors; `notifications`: the worker's other work
    counts too, so a register that only sends notifications needs no connector."""
    settings = ctx.settings()
    try:
        connectors = load_connectors(settings)
    except ConnectorConfigError as exc:
        raise StartupError(str(exc)) from None
    if not connectors and not (notifications and settings.notifications.enabled):
        raise click.ClickException("no connector is configured ([connectors.NAME] in the config)")
    return settings, Database(settings.database_url), connectors


def _worker(settings: Settings, database: Database, connectors: dict[str, Any]) -> SyncWorker:
    """The sync worker, sending notifications too when they are configured."""
    sender = None
    if settings.notifications.enabled:
        try:
            sender = NotificationSender(database, settings, delivery_for(settings.notifications))
        except DeliveryConfigError as exc:
            database.dispose()
            raise StartupError(str(exc)) from None
    return SyncWorker(database, settings, connectors, also=sender)


@click.group("sync")
def sync_group() -> None:
    """Push flag status into the CRMs through the configured connectors."""


@sync_group.command("run")
@pass_context
@fail_cleanly
def sync_run(ctx: Context) -> None:
    """Drain the outbox once and report what each connector (and notifications) did."""
    settings, database, connectors = _open(ctx, notifications=True)
    try:
        for report in _worker(settings, database, connectors).run_once():
            click.echo(
                f"{report.connector}: delivered {report.delivered}, retrying {report.retrying}, "
                f"not found {report.not_found}, dead {report.dead}"
            )
            for error in report.errors:
                click.echo(f"  dead letter: {error}")
    finally:
        database.dispose()


@sync_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
@fail_cleanly
def sync_status_command(ctx: Context, as_json: bool) -> None:
    """Show per-connector health: queue depth, retries, dead letters, last delivery."""
    settings, database, connectors = _open(ctx)
    try:
        statuses = [s.as_json() for s in connector_health(database, settings, connectors)]
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps(statuses, indent=2))
        return
    for item in statuses:
        click.echo(_status_line(item))
        for letter in item["dead_letter_list"]:
            subject = letter["subject"]
            click.echo(
                f"  dead letter {subject['kind']}:{subject['ref']}: {letter['attempts']} attempts,"
                f" last at {letter['at']}: {letter['last_error'] or 'no error recorded'}"
            )


def _status_line(item: dict[str, Any]) -> str:
    health = "ok" if item["health"]["ok"] else f"NOT OK ({item['health']['detail']})"
    oldest = item["oldest_pending_seconds"]
    age = f", oldest undelivered {_age(oldest)} old" if oldest is not None else ""
    reconciled = (
        "never reconciled: run `forewarn sync reconcile --connector "
        f"{item['name']}` so the CRM gets every status"
        if item["never_reconciled"]
        else f"last reconciled {item['last_reconciled_at']}"
    )
    return (
        f"{item['name']} ({item['kind']}): pending {item['pending']} "
        f"(retrying {item['retrying']}){age}, dead letters {item['dead_letters']}, "
        f"not found {item['not_found']}, last delivered {item['last_delivered_at'] or 'never'}, "
        f"{reconciled}, health {health}"
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@sync_group.command("reconcile")
@click.option("--connector", "name", required=True, help="The connector to reconcile.")
@pass_context
@fail_cleanly
def sync_reconcile(ctx: Context, name: str) -> None:
    """Push every subject's current status, including "none" for ended flags."""
    settings, database, connectors = _open(ctx)
    if name not in connectors:
        raise BadInput(f"no connector named {name!r}; configured: {', '.join(connectors)}")
    try:
        report = run_reconcile(settings, database, name, connectors[name], ctx.cli_actor())
    finally:
        database.dispose()
    click.echo(
        f"{name}: delivered {report.delivered}, not found {report.not_found}, failed "
        f"{report.failed + report.retry}, already newer in the CRM {report.superseded}, "
        f"requests {report.requests} in {report.seconds:.1f}s"
    )
    for failure in report.failures:
        status = failure.status
        what = "not found" if failure.result is Delivery.NOT_FOUND else "queued again"
        click.echo(f"  {status.subject_kind}:{status.subject_ref}: {what}: {failure.detail}")
    if report.failed or report.retry:
        raise click.ClickException(
            f"{report.failed + report.retry} statuses were not delivered (listed above); "
            "each is back in the outbox and `forewarn worker` sends it again"
        )


@sync_group.command("requeue")
@click.option("--connector", "name", default=None, help="Only this connector's dead letters.")
@pass_context
@fail_cleanly
def sync_requeue(ctx: Context, name: str | None) -> None:
    """Send dead-lettered and not-found statuses again on the next pass."""
    settings = ctx.settings()
    if name is not None and name not in settings.connectors:
        raise BadInput(f"no connector named {name!r}")
    database = Database(settings.database_url)
    try:
        count = requeue(database, name)
    finally:
        database.dispose()
    click.echo(f"requeued {count} statuses")


@click.command("worker")
@pass_context
@fail_cleanly
def worker(ctx: Context) -> None:
    """Run the sync worker until stopped (SIGTERM or Ctrl-C finish the current pass)."""
    settings, database, connectors = _open(ctx, notifications=True)
    running = _worker(settings, database, connectors)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    work = [*connectors, *(["notifications"] if running.also else [])]
    click.echo(f"sync worker started for {', '.join(work)}", err=True)
    try:
        running.run_forever(stop)
    finally:
        database.dispose()
    click.echo("sync worker stopped", err=True)


COMMANDS = (sync_group, worker)
