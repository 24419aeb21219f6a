"""The console's static files: the vendored GOV.UK Frontend and the console's own stylesheet."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, send_from_directory

from sidecar.api.endpoint import endpoint
from sidecar.errors import Problem

STATIC = Path(__file__).parent / "static"
FRONTEND = STATIC / "govuk-frontend"

bp = Blueprint("console_assets", __name__)


@cache
def _served(root: Path) -> frozenset[str]:
    """The files under `root`, listed once: nothing else there is ever served."""
    return frozenset(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix
    )


def _send(root: Path, name: str) -> Any:
    if name not in _served(root):
        raise Problem(404, "not-found", f"no console file {name}")
    response = send_from_directory(root, name, max_age=3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@endpoint(
    bp,
    "/console/static/<path:name>",
    public=True,
    action=None,
    summary="The console's stylesheets and scripts (GOV.UK Frontend, vendored)",
    tags=["console"],
)
def static_file(name: str) -> Any:
    return _send(STATIC, name)


@endpoint(
    bp,
    "/assets/<path:name>",
    public=True,
    action=None,
    summary="GOV.UK Frontend's images, where its compiled stylesheet expects them (/assets)",
    tags=["console"],
)
def frontend_asset(name: str) -> Any:
    # The precompiled stylesheet refers to "/assets/images/..." from the site's root, as
    # GOV.UK Frontend's guide to its compiled files says to serve its assets folder.
    return _send(FRONTEND / "assets", name)
