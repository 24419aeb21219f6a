"""RFC 9457 problem details: every error a client sees, and never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from sidecar.storage.crypto import DecryptionError

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://forewarn.example/problems/"


class Problem(Exception):
    """An error with an HTTP status, a stable type slug and a human detail."""

    def __init__(self, status: int, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.extra = extra


def problem_response(
    status: int, title: str, detail: str, slug: str | None = None, **extra: Any
) -> Response:
    body = {
        "type": PROBLEM_TYPE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers["Cache-Control"] = "no-store"
    return response


def http_problem(exc: HTTPException) -> Response:
    """An HTTP error (404, 405, 413, ...) as problem+json."""
    response = problem_response(exc.code or 500, exc.name, exc.description or exc.name)
    # A 405 says which methods the route has (RFC 9110 requires Allow on it).
    for name, value in exc.get_headers():
        if name.lower() == "allow":
            response.headers["Allow"] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        title = exc.slug.replace("-", " ").capitalize()
        return problem_response(exc.status, title, exc.detail, exc.slug, **exc.extra)

    app.register_error_handler(HTTPException, http_problem)

    @app.after_request
    def _content_headers(response: Response) -> Response:
        # No browser may guess a JSON answer (or any other) into HTML or script.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.status_code in (204, 304):
            # No content, so no content type (Flask would label the empty body HTML).
            response.headers.pop("Content-Type", None)
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _storage_unavailable(exc: Exception) -> Response:
        # The database is down, read-only or locked: a passing outage for the client to
        # retry, and never a reason to answer as if there were nothing to tell.
        log.error("storage unavailable: %s", type(exc).__name__)
        return problem_response(
            503,
            "Storage unavailable",
            "The register's database cannot be used right now; try again shortly.",
            "storage-unavailable",
        )

    @app.errorhandler(DecryptionError)
    def _damaged(exc: DecryptionError) -> Response:
        # Tampering or a ciphertext moved between rows: the operator must be able to find
        # the cell, and the client must never read the failure as "nothing recorded".
        log.error("damaged confidential field %s of row %s: %s", exc.field, exc.row_id, exc)
        return problem_response(
            500,
            "Damaged record",
            "A confidential field of this record cannot be decrypted; the damage is logged.",
            "damaged-record",
            field=exc.field,
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(
            500, "Internal Server Error", "The server could not complete the request.", "internal"
        )
