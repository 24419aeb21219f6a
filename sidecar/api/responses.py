"""Responses that must never be cached: case records, audit reads, banners and pages."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify


def no_store(response: Response) -> Response:
    """Forbid every cache (browser, proxy, CRM host) from keeping the response."""
    response.headers["Cache-Control"] = "no-store"
    return response


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    """A JSON body that is not cached."""
    response = jsonify(body)
    response.status_code = status
    return no_store(response)


def created(body: dict[str, Any]) -> Response:
    """201 with a JSON body that is not cached."""
    return json_response(body, status=201)


def html_response(page: str) -> Response:
    """An HTML page (a letter, a printable report) that is not cached."""
    return no_store(Response(page, mimetype="text/html"))
