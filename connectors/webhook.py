"""Standard Webhooks connector: signed JSON events for any CRM that can receive an HTTP POST."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from connectors.base import (
    Connector,
    ConnectorError,
    ConnectorHealth,
    Delivery,
    FlagStatus,
    PushOutcome,
    ReconcileReport,
    classify_status,
    iso_utc,
    outcome_from_error,
)
from connectors.webhook_verify import WebhookVerificationError, secret_key, sign

UPDATED = "flag_status.updated"
SNAPSHOT = "flag_status.snapshot"
PING = "forewarn.ping"
MAX_BATCH = 1000


class WebhookConnector(Connector):
    """POSTs signed status events following the Standard Webhooks specification.

    Settings: url, secrets_env (an environment variable holding one or more space-separated
    `whsec_` secrets: every one signs, so a receiver can rotate), batch_size (statuses per
    snapshot event in reconcile, <= 1000), health_ping (send a ping event from health(),
    default true), send_adjustments (add `adjustments` to each status, default false), and
    the common timeout and retry settings. See connectors/WEBHOOKS.md.
    """

    kind = "webhook"

    def __init__(
        self, name: str, settings: Mapping[str, Any], environ: Mapping[str, str] = os.environ
    ) -> None:
        """Validate settings and secrets; nothing is sent until the first push."""
        super().__init__(name, settings, environ)
        s = self.settings
        self.url = s.url("url", required=True)
        self._secrets = s.secret("secrets_env").split()
        for secret in self._secrets:
            try:
                secret_key(secret)
            except WebhookVerificationError as exc:
                s.fail("secrets_env", f"holds an unusable secret: {exc}")
        self.batch_size = s.integer("batch_size", 500, minimum=1, maximum=MAX_BATCH)
        self.health_ping = s.boolean("health_ping", True)
        # Off unless asked for, so receivers that check the document's keys keep working.
        self.send_adjustments = s.boolean("send_adjustments", False)
        self._finish_settings()
        self._gone_at: datetime | None = None

    # -- contract ----------------------------------------------------------------------

    def push(self, statuses: Sequence[FlagStatus]) -> list[PushOutcome]:
        """POST one `flag_status.updated` event per status, its id stable per (subject, version)."""
        outcomes = [self._push_one(status) for status in statuses]
        self._note_outcomes(outcomes)
        return outcomes

    def reconcile(self, statuses: Iterable[FlagStatus]) -> ReconcileReport:
        """POST `flag_status.snapshot` events of up to batch_size statuses each.

        The receiver answers 2xx, optionally with {"not_found": [subject_ref, ...]} naming
        subjects it has no record of; everything else in the event counts as delivered.
        """
        started, before = time.monotonic(), self.request_counts()
        items = list(statuses)
        outcomes: list[PushOutcome] = []
        for start in range(0, len(items), self.batch_size):
            outcomes += self._snapshot(items[start : start + self.batch_size])
        self._note_outcomes(outcomes)
        return self._report(outcomes, before, started)

    def health(self) -> ConnectorHealth:
        """Report a disabled endpoint; otherwise POST a `forewarn.ping` event (if enabled)."""
        if self._gone_at:
            return self._health(
                False, f"endpoint disabled: it answered 410 Gone at {iso_utc(self._gone_at)}"
            )
        if not self.health_ping:
            return self._health(True, "not probed (health_ping = false)")
        try:
            response = self._post(PING, {}, _event_id(PING, datetime.now(UTC).isoformat()))
        except ConnectorError as exc:
            return self._health(False, str(exc))
        if response.status_code == 410:
            self._gone_at = datetime.now(UTC)
            return self._health(False, "endpoint disabled: it answered 410 Gone")
        if not response.ok:
            return self._health(
                False, f"ping: HTTP {response.status_code} {self.error_detail(response)}"
            )
        return self._health(True, f"ping answered HTTP {response.status_code}")

    # -- work --------------------------------------------------------------------------

    def _push_one(self, status: FlagStatus) -> PushOutcome:
        if self._gone_at:
            return self._gone(status)
        event_id = _event_id(status.subject_kind, status.subject_ref, str(status.version))
        try:
            response = self._post(UPDATED, self._document(status), event_id)
        except ConnectorError as exc:
            return outcome_from_error(status, exc)
        return self._outcome(status, response)

    def _snapshot(self, chunk: list[FlagStatus]) -> list[PushOutcome]:
        if self._gone_at:
            return [self._gone(status) for status in chunk]
        # Stable for the same statuses, so a retried snapshot dedupes at the receiver.
        event_id = _event_id(*(f"{s.subject_kind}:{s.subject_ref}:{s.version}" for s in chunk))
        data = {"statuses": [self._document(status) for status in chunk]}
        try:
            response = self._post(SNAPSHOT, data, event_id)
        except ConnectorError as exc:
            return [outcome_from_error(status, exc) for status in chunk]
        if not response.ok:
            return [self._outcome(status, response) for status in chunk]
        missing = _not_found(response)
        return [
            PushOutcome(status, Delivery.NOT_FOUND, "receiver has no such record")
            if status.subject_ref in missing
            else PushOutcome(status, Delivery.DELIVERED, f"HTTP {response.status_code}")
            for status in chunk
        ]

    def _document(self, status: FlagStatus) -> dict[str, Any]:
        return status.as_document(adjustments=self.send_adjustments)

    def _post(self, event_type: str, data: Mapping[str, Any], event_id: str) -> requests.Response:
        body = json.dumps(
            {"type": event_type, "timestamp": iso_utc(datetime.now(UTC)), "data": data},
            separators=(",", ":"),
        ).encode()

        def signed_now() -> dict[str, str]:
            # Each attempt is signed when it is sent: a retry after a long Retry-After must
            # not arrive with a timestamp the receiver's replay window has already passed.
            timestamp = int(time.time())
            return {
                "Content-Type": "application/json",
                "webhook-id": event_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": " ".join(
                    sign(event_id, timestamp, body, s) for s in self._secrets
                ),
            }

        return self.send("POST", self.url, kind="event", data=body, headers_per_attempt=signed_now)

    def _outcome(self, status: FlagStatus, response: requests.Response) -> PushOutcome:
        code = response.status_code
        if code == 410:
            # Standard Webhooks: 410 Gone means the receiver wants this endpoint disabled.
            self._gone_at = datetime.now(UTC)
            return self._gone(status)
        if code == 404 and _says_not_found(response):
            return PushOutcome(status, Delivery.NOT_FOUND, "receiver has no such record")
        result = classify_status(code)
        if code == 404:
            result = Delivery.FAILED  # the endpoint itself is missing: a configuration problem
        detail = (
            f"HTTP {code}"
            if result is Delivery.DELIVERED
            else f"HTTP {code} {self.error_detail(response)}"
        )
        return PushOutcome(status, result, detail.rstrip())

    def _gone(self, status: FlagStatus) -> PushOutcome:
        return PushOutcome(
            status, Delivery.FAILED, "endpoint disabled: the receiver answered 410 Gone"
        )

    def error_detail(self, response: requests.Response) -> str:
        """The first 200 characters of the receiver's answer."""
        return response.text[:200] or super().error_detail(response)


def _event_id(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"msg_{digest[:32]}"


def _says_not_found(response: requests.Response) -> bool:
    try:
        return response.json().get("status") == "not_found"
    except (ValueError, AttributeError):
        return False


def _not_found(response: requests.Response) -> set[str]:
    try:
        listed = response.json().get("not_found", [])
    except (ValueError, AttributeError):
        return set()
    return {str(ref) for ref in listed}
