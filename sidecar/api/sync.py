"""Sync administration over HTTP: connector health and on-demand reconciliation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask_login import current_user

from sidecar.api.endpoint import Input, endpoint
from sidecar.errors import Problem
from sidecar.runtime import current_runtime
from sidecar.sync.health import connector_health
from sidecar.sync.reconcile import run_reconcile

bp = Blueprint("sync", __name__, url_prefix="/api/v1/sync")


@endpoint(
    bp,
    "/status",
    action="sync.manage",
    tags=["sync"],
    summary=(
        "Per-connector health: queue depth, oldest undelivered change, dead letters by"
        " subject, last delivery and reconciliation"
    ),
)
def status() -> Any:
    runtime = current_runtime()
    items = connector_health(runtime.database, runtime.settings, runtime.connectors)
    return jsonify(connectors=[item.as_json() for item in items])


class ReconcileBody(Input):
    connector: str


@endpoint(
    bp,
    "/reconcile",
    methods=["POST"],
    action="sync.manage",
    body=ReconcileBody,
    tags=["sync"],
    summary="Push every subject's current status to one connector",
    responses={200: "Reconciled"},
)
def reconcile(body: ReconcileBody) -> Any:
    runtime = current_runtime()
    connector = runtime.connectors.get(body.connector)
    if connector is None:
        configured = ", ".join(runtime.connectors) or "none"
        raise Problem(
            404,
            "unknown-connector",
            f"no connector named {body.connector!r} (configured: {configured})",
        )
    actor = {
        "actor_id": current_user.id,
        "actor_name": current_user.name,
        "actor_roles": ",".join(current_user.roles),
        "via": "api",
    }
    report = run_reconcile(runtime.settings, runtime.database, body.connector, connector, actor)
    return jsonify(
        connector=body.connector,
        delivered=report.delivered,
        not_found=report.not_found,
        failed=report.failed + report.retry,
        superseded=report.superseded,
        requests=report.requests,
        seconds=round(report.seconds, 3),
        failures=[
            {
                "subject": {"kind": f.status.subject_kind, "ref": f.status.subject_ref},
                "result": f.result.value,
                "detail": f.detail,
            }
            # Every record not delivered, by name: each is back in the outbox.
            for f in report.failures
        ],
    )
