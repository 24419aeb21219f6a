"""The HTTP surface: every blueprint is registered here, in one place."""

from __future__ import annotations

from flask import Flask

from sidecar.api import (
    appeals,
    audit,
    banner,
    decisions,
    directory,
    fhir,
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
from sidecar.console import init_console


def register_blueprints(app: Flask) -> None:
    modules = (ops, openapi, subjects, incidents, flags, notices, appeals, reviews, reports)
    modules += (decisions, audit, sync, banner, widget, fhir)
    # The case-management resources share the one `cases` blueprint: register it once.
    for blueprint in dict.fromkeys(module.bp for module in modules):
        app.register_blueprint(blueprint)
    directory.install(app)
    init_console(app)
