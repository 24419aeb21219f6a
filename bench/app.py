"""The product app plus one bench-only route: the baseline every ratio is measured against."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify

from sidecar import create_app
from sidecar.api.endpoint import endpoint

BASELINE = {"status": "none", "flags": [], "subject": {"kind": "customer", "ref": "CRM-0000000"}}


def create_bench_app() -> Flask:
    """`sidecar.create_app()` from the environment, with `GET /bench/baseline` added.

    The baseline goes through the same server, middleware and route declaration as the
    product's routes, but neither authenticates, audits nor touches the database.
    """
    app = create_app()
    bp = Blueprint("bench", __name__, url_prefix="/bench")

    @endpoint(bp, "/baseline", public=True, action=None, summary="Constant body (bench only)")
    def baseline() -> Any:
        response = jsonify(BASELINE)
        response.headers["Cache-Control"] = "no-store"
        return response

    app.register_blueprint(bp)
    return app
