"""A fake CRM webhook receiver that verifies Standard Webhooks signatures with our helper."""

from __future__ import annotations

import base64
import threading
from typing import Any

from connectors.webhook_verify import (
    WebhookVerificationError,
    check_status,
    newer_statuses,
    verify,
)

from .server import FakeServer, Recorded, Reply

SECRET = "whsec_" + base64.b64encode(b"forewarn-webhook-test-secret-32b").decode()
ROTATED_SECRET = "whsec_" + base64.b64encode(b"forewarn-webhook-next-secret-32b").decode()
FIELDS = (
    "level",
    "categories",
    "restrictions",
    "review_due",
    "appeal_pending",
    "version",
    "updated_at",
)


class FakeWebhookReceiver(FakeServer):
    """A CRM's webhook endpoint at /hooks/forewarn.

    Accepts an event only if its signature verifies with `secret` and each status document
    passes the reference verifier's `check_status`; dedupes by webhook-id
    (`duplicates` counts repeats); keeps the latest status per subject in `records`.
    Only seeded subjects exist: others get 404 {"status": "not_found"}, or are listed in a
    snapshot's {"not_found": [...]} answer. `gone = True` answers 410 Gone.
    """

    secret_env = "FW_TEST_WEBHOOK_SECRETS"
    path = "/hooks/forewarn"

    def __init__(self, secret: str = SECRET) -> None:
        super().__init__()
        self.secret = secret
        self.gone = False
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.known: set[tuple[str, str]] = set()
        self.created: list[tuple[str, str]] = []  # a receiver never creates; kept for parity
        self.events: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self.rejected: list[str] = []
        self.timestamps: list[int] = []  # webhook-timestamp of every verified delivery
        self._data_lock = threading.Lock()

    @property
    def environ(self) -> dict[str, str]:
        return {self.secret_env: self.secret}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "url": self.url + self.path,
            "secrets_env": self.secret_env,
            "connect_timeout": 1.0,
            "read_timeout": 2.0,
            "backoff_base": 0.01,
        }
        settings.update(overrides)
        return settings

    def seed(self, kind: str, *keys: str) -> None:
        with self._data_lock:
            self.known.update((kind, key) for key in keys)

    def status_of(self, kind: str, key: str) -> dict[str, Any] | None:
        document = self.records.get((kind, key))
        return {k: document[k] for k in FIELDS} if document else None

    def adjustments_of(self, kind: str, key: str, _field: str = "adjustments") -> list[str] | None:
        """The `adjustments` of the latest status applied; None when it carried none."""
        document = self.records.get((kind, key)) or {}
        return document.get("adjustments")

    def handle(self, request: Recorded) -> Reply:
        if request.path != self.path or request.method != "POST":
            return Reply(404, "no such endpoint")
        if self.gone:
            return Reply(410, "endpoint disabled")
        try:
            event = verify(request.body, request.headers, self.secret)
            data = event.get("data") or {}
            statuses = [data] if event["type"] == "flag_status.updated" else data.get("statuses")
            for document in statuses or []:
                check_status(document)
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            return Reply(401, {"error": str(exc)})
        event_id = request.header("webhook-id") or ""
        with self._data_lock:
            if event_id in self.events:
                self.duplicates += 1
            self.events[event_id] = event
            self.timestamps.append(int(request.header("webhook-timestamp") or 0))
            # The reference verifier's version rule: only newer statuses are applied.
            for document in newer_statuses(event, self._held_version):
                if (document["subject_kind"], document["record_key"]) in self.known:
                    self.records[(document["subject_kind"], document["record_key"])] = document
            if event["type"] == "flag_status.updated":
                if not self._known(event["data"]):
                    return Reply(404, {"status": "not_found"})
            elif event["type"] == "flag_status.snapshot":
                missing = [
                    d["subject_ref"] for d in event["data"]["statuses"] if not self._known(d)
                ]
                return Reply(200, {"not_found": missing})
        return Reply(204)

    def _held_version(self, kind: str, key: str) -> int | None:
        held = self.records.get((kind, key))
        return held["version"] if held else None

    def _known(self, document: dict[str, Any]) -> bool:
        return (document["subject_kind"], document["record_key"]) in self.known
