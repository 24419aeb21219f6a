"""Council IT's pages: sync health per connector with its dead letters, and system status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sidecar.api.ops import readiness_checks
from sidecar.audit import checkpoints
from sidecar.audit import writer as audit
from sidecar.audit.models import AuditCheckpoint, AuditHead
from sidecar.console.calls import call, read
from sidecar.console.forms import ConsoleForm
from sidecar.console.page import page, render
from sidecar.errors import Problem
from sidecar.notify import messages as notification_messages
from sidecar.notify import outbox as notification_outbox
from sidecar.register.context import ServiceContext
from sidecar.register.history import audit_actor
from sidecar.runtime import Runtime, current_runtime
from sidecar.storage.crypto import KeyRingError
from sidecar.storage.keys import load_retired_audit_keys
from sidecar.sync.health import connector_health
from sidecar.sync.outbox import requeue_in

bp = Blueprint("operations", __name__, url_prefix="/console")


class RequeueForm(ConsoleForm):
    """A button: send a connector's dead letters again (its CSRF token is the only field)."""


@page(
    bp,
    "/sync",
    action="sync.manage",
    summary="Sync health per connector: the CRM's answer, queue depth, dead letters with "
    "their reasons and a requeue button (as GET /api/v1/sync/status)",
)
def sync_health() -> Any:
    runtime = current_runtime()
    items = connector_health(runtime.database, runtime.settings, runtime.connectors)
    return render(
        "console/sync_health.html", connectors=items, form=RequeueForm(), title="Sync health"
    )


def _requeue(ctx: ServiceContext, name: str) -> int:
    count = requeue_in(ctx.session, name)
    audit.append(
        ctx.session,
        audit.AuditEvent(
            action="sync.requeue",
            outcome_reason=f"connector {name}: {count} statuses requeued",
            **audit_actor(ctx.actor),
        ),
    )
    return count


@page(
    bp,
    "/sync/<connector>/requeue",
    methods=["POST"],
    action="sync.manage",
    summary="Send a connector's dead-lettered and not-found statuses again on the next pass, "
    "as `forewarn sync requeue --connector NAME` does (audited)",
)
def requeue(connector: str) -> Any:
    if connector not in current_runtime().connectors:
        raise Problem(404, "unknown-connector", f"No connector is named {connector!r}.")
    form = RequeueForm()
    if not form.validate_on_submit():
        raise Problem(400, "invalid-request", "The form could not be read. Nothing was changed.")
    count = call("sync.manage", lambda ctx: _requeue(ctx, connector))
    statuses = "status" if count == 1 else "statuses"
    flash(f"{count} {statuses} for {connector} will be sent again on the next pass.", "success")
    return redirect(url_for(".sync_health"), code=303)


@page(
    bp,
    "/notifications",
    action="sync.manage",
    summary="The notifications outbox: messages to staff pending, retrying, failed with the "
    "reason each failed, and sent, with a requeue button (as forewarn notifications status)",
)
def notifications() -> Any:
    view = read(lambda session, _runtime: notification_outbox.outbox_view(session))
    return render(
        "console/notifications.html",
        view=view,
        kinds=notification_messages.TITLES,
        delivery=current_runtime().settings.notifications.delivery,
        form=RequeueForm(),
        title="Notifications",
    )


@page(
    bp,
    "/notifications/requeue",
    methods=["POST"],
    action="sync.manage",
    summary="Send every failed notification again on the worker's next pass, as `forewarn "
    "notifications requeue` does (audited)",
)
def requeue_notifications() -> Any:
    form = RequeueForm()
    if not form.validate_on_submit():
        raise Problem(400, "invalid-request", "The form could not be read. Nothing was changed.")
    count = call(
        "sync.manage",
        lambda ctx: notification_outbox.requeue_in(ctx.session, audit_actor(ctx.actor)),
    )
    noun = "notification" if count == 1 else "notifications"
    flash(f"{count} {noun} will be sent again on the worker's next pass.", "success")
    return redirect(url_for(".notifications"), code=303)


def _chain(session: Session, runtime: Runtime) -> dict[str, Any]:
    """The chain's head and its newest signed checkpoint."""
    head = session.execute(select(AuditHead.seq)).scalar() or 0
    newest = session.execute(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.kind == checkpoints.HEAD)
        .order_by(AuditCheckpoint.seq.desc(), AuditCheckpoint.id.desc())
        .limit(1)
    ).scalar()
    signed = session.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one()
    settings = runtime.settings.audit
    return {
        "head": head,
        "newest": newest,
        "signed": signed,
        "unsigned": head - newest.seq if newest is not None else head,
        "every_entries": settings.checkpoint_every_entries,
        "every_seconds": settings.checkpoint_every_seconds,
        "sinks": [s for s in (settings.checkpoint_file, settings.checkpoint_url) if s],
        "sink_failures": int(
            runtime.metrics.registry.get_sample_value(
                "forewarn_audit_checkpoint_sink_failures_total"
            )
            or 0
        ),
    }


def _keys(runtime: Runtime) -> dict[str, Any]:
    """Key ids and dates only: no key material is ever shown."""
    ring = runtime.keyring
    try:
        signing = checkpoints.key_id(runtime.audit_keys.signing_key().public_key())
        retired = load_retired_audit_keys(runtime.audit_keys.files)
        problem = None
    except KeyRingError as exc:
        signing, retired, problem = None, {}, str(exc)
    return {
        "data_primary": ring.primary,
        "data_keys": sorted(ring.keys),
        "signing": signing,
        "retired": sorted(retired.items(), key=lambda item: item[1].last_seq),
        "problem": problem,
    }


@page(
    bp,
    "/system",
    action="sync.manage",
    summary="Readiness (as GET /readyz), the data and audit keys in use, and the audit "
    "chain's signed checkpoints",
)
def system() -> Any:
    checks = readiness_checks()
    chain = read(_chain) if checks.get("database") == "ok" else None
    return render(
        "console/system.html",
        checks=checks,
        ready=all(value == "ok" for value in checks.values()),
        chain=chain,
        keys=_keys(current_runtime()),
        title="System status",
    )
