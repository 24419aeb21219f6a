"""Receiver-side verification of Standard Webhooks signatures, for CRM teams consuming Forewarn."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
# The keys of every status document (WEBHOOKS.md), each with the JSON types it may take.
STATUS_KEYS: dict[str, tuple[type, ...]] = {
    "subject_kind": (str,),
    "subject_ref": (str,),
    "record_key": (str,),
    "level": (str,),
    "categories": (list,),
    "restrictions": (list,),
    "review_due": (str, type(None)),
    "appeal_pending": (bool,),
    "appeal_handler": (str, type(None)),
    "version": (int,),
    "updated_at": (str,),
}
# Keys a document carries only when the sender is configured to send them.
OPTIONAL_STATUS_KEYS: dict[str, tuple[type, ...]] = {"adjustments": (list,)}


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


def check_status(document: Mapping[str, Any]) -> None:
    """Check one status document has the documented keys and types, and nothing else.

    `adjustments`, a list of instructions such as "Contact by letter in large print", is
    present only when the connector's `send_adjustments` is on. Raises
    WebhookVerificationError naming the first key that is missing, unknown or of the wrong
    type.
    """
    if not isinstance(document, Mapping):
        raise WebhookVerificationError("a status must be a JSON object")
    for key, types in (STATUS_KEYS | OPTIONAL_STATUS_KEYS).items():
        if key not in document:
            if key in STATUS_KEYS:
                raise WebhookVerificationError(f"status lacks {key!r}")
            continue
        value = document[key]
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if wrong or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            raise WebhookVerificationError(f"status {key!r} is not of the documented type")
    unknown = sorted(set(document) - set(STATUS_KEYS) - set(OPTIONAL_STATUS_KEYS))
    if unknown:
        raise WebhookVerificationError(f"status has an undocumented key {unknown[0]!r}")


def newer_statuses(
    event: Mapping[str, Any], held_version: Callable[[str, str], int | None]
) -> list[dict[str, Any]]:
    """The status documents of a verified event that are newer than what the receiver holds.

    `held_version(subject_kind, record_key)` returns the `version` of the status the
    receiver last applied for that subject, or None. Versions only grow per subject, so a
    document whose version is not above the held one is an older (or repeated) delivery,
    e.g. a snapshot read before a change and delivered after it: discard it. Apply the
    documents returned, in order. Events other than status events return [].
    """
    data = event.get("data") or {}
    if event.get("type") == "flag_status.updated":
        documents = [data]
    elif event.get("type") == "flag_status.snapshot":
        documents = list(data.get("statuses") or [])
    else:
        return []
    newer = []
    for document in documents:
        held = held_version(document["subject_kind"], document["record_key"])
        if held is None or int(document["version"]) > held:
            newer.append(document)
    return newer
