"""The Flask app factory. Nothing is read or opened at import time."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import IntegerConverter

from sidecar.api import register_blueprints
from sidecar.api.endpoint import INT_PARAM_MAX
from sidecar.errors import register_error_handlers
from sidecar.identity.setup import init_auth
from sidecar.runtime import Runtime, StartupError, build_runtime
from sidecar.settings import Settings, load_settings


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a body nested too deep to parse is malformed, not a crash."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


class BoundedInteger(IntegerConverter):
    """`<int:...>` in a route, at most a 32-bit number: a larger one names nothing (404)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", INT_PARAM_MAX)
        super().__init__(map, *args, **kwargs)


def create_app(settings: object | None = None) -> Flask:
    """Build the app from validated settings (loaded from the environment when None).

    Start-up refuses to proceed when settings, keys or the database are unusable:
    a sidecar that cannot protect or record details must not serve them.
    """
    if settings is None:
        settings = load_settings()
    assert isinstance(settings, Settings)
    runtime: Runtime = build_runtime(settings)

    # No implicit /static route: every route is declared with its access (widget files too).
    app = Flask(__name__, instance_path=str(settings.instance_dir), static_folder=None)
    app.url_map.converters["int"] = BoundedInteger
    app.config.update(
        SECRET_KEY=runtime.session_secret,
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.json = JSONProvider(app)
    app.extensions["forewarn"] = runtime
    register_error_handlers(app)
    try:
        init_auth(app)
    except StartupError:
        runtime.database.dispose()
        raise
    register_blueprints(app)
    return app
