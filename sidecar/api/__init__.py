"""The HTTP surface: every blueprint is registered here, in one place."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    # Imported here, not at the top: sign-in modules import sidecar.api.endpoint, and that
    # must not pull in every blueprint (which themselves import sign-in) on the way.
    from sidecar.api import (
        appeals,
        audit,
        banner,
        directory,
        flags,
        incidents,
        notices,
        openapi,
        ops,
        reports,
        reviews,
        subjects,
        sync,
        widget,
    )

    modules = (ops, openapi, subjects, incidents, flags, notices, appeals, reviews, reports)
    modules += (audit, sync, banner, widget)
    # The case-management resources share the one `cases` blueprint: register it once.
    for blueprint in dict.fromkeys(module.bp for module in modules):
        app.register_blueprint(blueprint)
    directory.install(app)
