"""The case-management console: GOV.UK Frontend pages over the same services as the API."""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_wtf import CSRFProtect
from govuk_frontend_wtf.main import WTFormsHelpers
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader

from sidecar.console import (
    appeals,
    assets,
    endings,
    home,
    incidents,
    notices,
    operations,
    page,
    panel,
    privacy,
    proposals,
    reports,
    reviews,
    staff_access,
    subject_access,
    subjects,
)
from sidecar.console.formatting import register_filters

CONSOLE = "console"
"""The parent blueprint's name: every console page's endpoint starts with it."""


def init_console(app: Flask) -> None:
    """Templates, form helpers, CSRF protection and every console page."""
    # The GOV.UK macros are loaded under their package names, as govuk-frontend-jinja and
    # govuk-frontend-wtf document; the app's own templates keep precedence.
    app.jinja_loader = ChoiceLoader(
        [
            app.jinja_loader,
            PrefixLoader(
                {
                    "govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
                    "govuk_frontend_wtf": PackageLoader("govuk_frontend_wtf"),
                }
            ),
        ]
    )
    app.config.update(
        # Only console forms carry Flask-WTF tokens; the API has its own CSRF header check.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A token lives as long as the session, whose idle and absolute timeouts bound it.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.extensions["forewarn.csrf"] = CSRFProtect(app)
    WTFormsHelpers(app)
    register_filters(app)
    console = Blueprint(CONSOLE, __name__, template_folder="templates")
    page.install(console)
    for area in (
        home,
        subjects,
        incidents,
        proposals,
        panel,
        notices,
        appeals,
        reviews,
        endings,
        reports,
        privacy,
        subject_access,
        operations,
        staff_access,
    ):
        console.register_blueprint(area.bp)
    app.register_blueprint(console)
    app.register_blueprint(assets.bp)
