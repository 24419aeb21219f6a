"""The case-management blueprint, shared by the resource modules that add their routes to it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("cases", __name__, url_prefix="/api/v1")
