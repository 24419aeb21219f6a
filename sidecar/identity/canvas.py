"""Salesforce Canvas: sign staff in from a signed request and hand over to the embed page."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, redirect, request

from sidecar.api.endpoint import endpoint
from sidecar.errors import Problem
from sidecar.identity.roles import map_roles
from sidecar.identity.signin import Attempt, refusals_recorded, sign_in
from sidecar.identity.user import StaffUser
from sidecar.runtime import StartupError, current_runtime
from sidecar.settings import Settings

bp = Blueprint("canvas", __name__, url_prefix="/auth")

SECRET_KEY = "forewarn.canvas_secret"
MAX_SIGNED_REQUEST = 64 * 1024
# Salesforce documents issuedAt loosely; values this large are milliseconds, not seconds.
MILLISECONDS_THRESHOLD = 10**11


def _b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def _refuse(detail: str) -> Problem:
    return Problem(401, "invalid-signed-request", detail)


def verify_signed_request(signed_request: str, secret: bytes, max_age: int) -> dict[str, Any]:
    """Verify a Canvas signed request as Salesforce documents it and return its envelope.

    The request is `<base64 HMAC-SHA256 of the encoded envelope>.<base64 JSON envelope>`;
    it is split at the first '.', the HMAC is computed over the encoded envelope exactly
    as received, and compared in constant time before anything in the envelope is read.
    """
    signature_text, dot, encoded_envelope = signed_request.partition(".")
    if not dot or not signature_text or not encoded_envelope:
        raise _refuse("signed_request must be '<signature>.<envelope>'")
    try:
        signature = _b64decode(signature_text)
    except (binascii.Error, ValueError):
        raise _refuse("the signature is not base64") from None
    expected = hmac.new(secret, encoded_envelope.encode("ascii", "replace"), hashlib.sha256)
    if not hmac.compare_digest(signature, expected.digest()):
        raise _refuse("the signature does not match the consumer secret")
    try:
        envelope = json.loads(_b64decode(encoded_envelope))
    except (binascii.Error, ValueError):
        raise _refuse("the envelope is not base64 JSON") from None
    if not isinstance(envelope, dict) or envelope.get("algorithm") != "HMACSHA256":
        raise _refuse("the envelope must declare algorithm HMACSHA256")
    issued_at = envelope.get("issuedAt")
    if not isinstance(issued_at, int | float) or isinstance(issued_at, bool):
        raise _refuse("the envelope has no issuedAt, so its age cannot be checked")
    seconds = issued_at / 1000 if issued_at > MILLISECONDS_THRESHOLD else issued_at
    age = time.time() - seconds
    if age > max_age or age < -60:
        raise _refuse(f"the signed request is stale (issued {int(age)} s ago, limit {max_age} s)")
    return envelope


def _record_subject(settings: Settings, environment: Any) -> tuple[str, str]:
    record = environment.get("record") if isinstance(environment, dict) else None
    if not isinstance(record, dict):
        raise Problem(422, "no-record", "the Canvas app is not on a record page")
    sobject = (record.get("attributes") or {}).get("type")
    mapping = settings.identity.canvas.records.get(str(sobject))
    if mapping is None:
        raise Problem(422, "unknown-record-type", f"records of type {sobject!r} are not mapped")
    ref = record.get(mapping.ref_field)
    if not isinstance(ref, str) or not ref:
        raise Problem(422, "no-record", f"the record carries no {mapping.ref_field!r}")
    return mapping.kind, ref


@endpoint(
    bp,
    "/salesforce-canvas",
    methods=["POST"],
    public=True,
    action=None,
    summary="Sign in from a Salesforce Canvas signed request; continue to the record's embed page",
    tags=["identity"],
    responses={303: "Signed in; redirect to /embed for the record in context"},
)
def salesforce_canvas() -> Any:
    secret = current_app.extensions.get(SECRET_KEY)
    if secret is None:
        raise Problem(404, "not-found", "Salesforce Canvas is not configured on this instance")
    with refusals_recorded("canvas") as attempt:
        user, kind, ref = _canvas_user(secret, attempt)
        sign_in(user)
    # The embed page (widget) renders the record; the session cookie now signs it in.
    return redirect("/embed?" + urlencode({"kind": kind, "ref": ref}), code=303)


def _canvas_user(secret: bytes, attempt: Attempt) -> tuple[StaffUser, str, str]:
    """Who a verified signed request signs in, on which record, told to `attempt` as known."""
    settings: Settings = current_runtime().settings
    signed_request = request.form.get("signed_request", "")
    if not signed_request:
        raise Problem(422, "invalid-request", "form field 'signed_request' is required")
    if len(signed_request) > MAX_SIGNED_REQUEST:
        raise Problem(413, "too-large", "the signed request is too large")
    envelope = verify_signed_request(
        signed_request, secret, settings.identity.canvas.max_age_seconds
    )
    context = envelope.get("context") or {}
    user = context.get("user") if isinstance(context, dict) else None
    if not isinstance(user, dict):
        raise _refuse("the envelope has no context.user")
    user_id = user.get(settings.identity.canvas.user_field)
    if not isinstance(user_id, str) or not user_id:
        raise _refuse(f"context.user has no {settings.identity.canvas.user_field}")
    attempt.account, attempt.verified = user_id, True
    kind, ref = _record_subject(settings, context.get("environment"))
    # Profile and role ids are what Salesforce says about the user; config maps them.
    names = [v for v in (user.get("profileId"), user.get("roleId")) if isinstance(v, str)]
    name = user.get("fullName") if isinstance(user.get("fullName"), str) else user_id
    return StaffUser(user_id, name, map_roles(settings, names), "canvas"), kind, ref


def init_canvas(app: Flask, settings: Settings) -> None:
    """Register the route; when Canvas is enabled, refuse to start without its secret."""
    app.register_blueprint(bp)
    canvas = settings.identity.canvas
    if not canvas.enabled:
        return
    secret = os.environ.get(canvas.consumer_secret_env, "")
    if not secret:
        raise StartupError(
            f"identity.canvas is enabled but the environment variable {canvas.consumer_secret_env} "
            "holding the consumer secret is not set"
        )
    app.extensions[SECRET_KEY] = secret.encode("utf-8")
