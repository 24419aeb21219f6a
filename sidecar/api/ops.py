"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from sidecar.api.endpoint import endpoint
from sidecar.api.responses import json_response
from sidecar.runtime import current_runtime
from sidecar.storage.database import StorageError
from sidecar.sync.metrics import sync_metrics_text

bp = Blueprint("ops", __name__)


@endpoint(bp, "/healthz", public=True, action=None, summary="The process is up", tags=["ops"])
def healthz() -> Any:
    return jsonify(status="ok")


def readiness_checks() -> dict[str, str]:
    """Each check's result: "ok" or why not."""
    runtime = current_runtime()
    checks: dict[str, str] = {}
    try:
        runtime.database.ping()
        checks["database"] = (
            "ok"
            if runtime.database.schema_current()
            else ("schema is not at the newest migration: run `forewarn init`")
        )
    except StorageError as exc:
        checks["database"] = str(exc)
    except SQLAlchemyError as exc:
        checks["database"] = f"schema unreadable: {exc.__class__.__name__}"
    checks["keys"] = "ok" if runtime.keyring.primary in runtime.keyring.keys else "no data key"
    if checks["database"] == "ok":
        # A real entry written and rolled back: only a write shows a read-only file, a
        # revoked grant or a chain lock held too long.
        checks["audit_store"] = runtime.audit.probe()
    else:
        checks["audit_store"] = "database unavailable"
    return checks


@endpoint(
    bp,
    "/readyz",
    public=True,
    action=None,
    tags=["ops"],
    summary="Ready to serve: database reachable and migrated, audit store writable, keys loaded",
)
def readyz() -> Any:
    checks = readiness_checks()
    ready = all(value == "ok" for value in checks.values())
    return json_response(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@endpoint(
    bp,
    "/metrics",
    public=True,
    action=None,
    tags=["ops"],
    summary="Prometheus metrics in the text exposition format",
)
def metrics() -> Any:
    runtime = current_runtime()
    body = generate_latest(runtime.metrics.registry) + sync_metrics_text(
        runtime.database, runtime.settings, runtime.connectors
    )
    # The exposition type already names its charset; as a mimetype Flask would add another.
    return Response(body, content_type=CONTENT_TYPE_LATEST)
