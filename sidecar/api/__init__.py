"""The HTTP surface: every blueprint is registered here, in one place."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from sidecar.api import audit, banner, cases, openapi, ops, sync, widget
    from sidecar.console import init_console

    app.register_blueprint(ops.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(sync.bp)
    app.register_blueprint(banner.bp)
    app.register_blueprint(widget.bp)
    init_console(app)
