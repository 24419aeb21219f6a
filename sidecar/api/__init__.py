"""The HTTP surface: every blueprint is registered here, in one place."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from sidecar.api import openapi, ops

    app.register_blueprint(ops.bp)
    app.register_blueprint(openapi.bp)
    from sidecar.api import audit as audit_api

    app.register_blueprint(audit_api.bp)
