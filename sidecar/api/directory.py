"""The staff directory kept current from every sign-in: names and roles for letters."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_login import user_logged_in
from sqlalchemy.exc import SQLAlchemyError

from sidecar.register.staff import remember


def _remember_sign_in(app: Flask, user: Any, **_extra: Any) -> None:
    """Keep names and roles of people who sign in, for letters, banners and role checks."""
    try:
        with app.extensions["forewarn"].database.transaction() as session:
            remember(session, user.id, user.name, user.roles)
    except SQLAlchemyError as exc:
        # The directory only supplies names; a sign-in must not fail because of it.
        app.logger.warning("staff directory not updated: %s", exc.__class__.__name__)


def install(app: Flask) -> None:
    """Update the directory whenever someone signs in to this app."""
    user_logged_in.connect(_remember_sign_in, app, weak=False)
