"""Receiver-side verification of Standard Webhooks signatures, for CRM teams consuming Forewarn."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SECRET_PREFIX = "whsec_"


class WebhookVerificationError(ValueError):
    """The request is not an authentic, fresh Forewarn webhook: answer 401 and ignore it."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookVerificationError("secret must start with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError as exc:
        raise WebhookVerificationError("secret is not valid base64 after whsec_") from exc
    if len(key) < 24:
        raise WebhookVerificationError("secret is too short (at least 24 bytes)")
    return key


def sign(msg_id: str, timestamp: int, payload: bytes, secret: str) -> str:
    """The `v1,<base64>` signature of one message (HMAC-SHA256 over "id.timestamp.body")."""
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    payload: bytes,
    headers: Mapping[str, str],
    secret: str,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook's signature and freshness and return its parsed JSON body.

    `payload` must be the raw request body, byte for byte. Any one of the space-separated
    `v1,` signatures may match (the sender signs with every secret during a rotation).
    Raises WebhookVerificationError on a missing header, a timestamp more than `tolerance`
    seconds away from now (replay protection), or no matching signature.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        stamp = lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from exc
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = sign(msg_id, timestamp, payload, secret).encode()
    for candidate in signatures.split(" "):
        # Constant-time comparison, so the signature cannot be guessed byte by byte.
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            try:
                return json.loads(payload)
            except ValueError as exc:
                raise WebhookVerificationError("body is not JSON") from exc
    raise WebhookVerificationError("no matching signature")
