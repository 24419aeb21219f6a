"""The connector contract: status documents, delivery outcomes and the HTTP plumbing CRMs share."""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter

from connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    Throttled,
    TransientError,
)
from connectors.settings import SettingsReader

__all__ = [
    "LEVELS",
    "OPTIONAL_FIELDS",
    "STATUS_FIELDS",
    "SUBJECT_KINDS",
    "Connector",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorHealth",
    "Delivery",
    "FlagStatus",
    "MemoryRecordIds",
    "PushOutcome",
    "ReconcileReport",
    "RecordIds",
    "Throttled",
    "TransientError",
    "classify_status",
    "iso_utc",
    "optional_values",
    "outcome_from_error",
    "parse_retry_after",
]

SUBJECT_KINDS = ("customer", "property")
LEVELS = ("none", "amber", "red")
# The status fields every connector writes into a CRM record, by the names connectors use to
# map them onto columns or fields. `version` is the subject's monotonic status version: the
# guard that keeps an older status from overwriting a newer one.
STATUS_FIELDS = (
    "level",
    "categories",
    "restrictions",
    "review_due",
    "appeal_pending",
    "version",
    "updated_at",
)
# Written only where the connector's settings name a column or field for them, so a CRM
# set up before they existed keeps syncing.
OPTIONAL_FIELDS = ("appeal_handler",)


@dataclass(frozen=True)
class FlagStatus:
    """What a CRM may know about a subject's flag: its status, never its reasons.

    There is deliberately no field for reasons, narratives or witnesses (design safety
    rule 3): a connector can only send what `as_document()` returns.
    """

    subject_kind: str
    subject_ref: str
    record_key: str
    level: str
    categories: tuple[str, ...]
    restrictions: tuple[str, ...]
    review_due: date | None
    appeal_pending: bool
    version: int
    updated_at: datetime
    # The reasonable adjustments staff must make (instructions such as "Contact by letter in
    # large print"): not confidential, shown on the banner, and sent only by a connector
    # configured with a column or field for them.
    adjustments: tuple[str, ...] = ()
    # The Senior Manager handling the case, by name, while an appeal is pending or (where
    # the council names them from the decision letter) its window is open.
    appeal_handler: str | None = None

    def __post_init__(self) -> None:
        if self.subject_kind not in SUBJECT_KINDS:
            raise ValueError(
                f"subject_kind must be one of {SUBJECT_KINDS}, not {self.subject_kind!r}"
            )
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {self.level!r}")
        if not self.subject_ref or not self.record_key:
            raise ValueError("subject_ref and record_key must not be empty")
        if self.version < 0:
            raise ValueError("version must not be negative")
        if self.updated_at.tzinfo is None:
            raise ValueError("updated_at must be timezone-aware")
        # Lists are accepted for convenience but stored as tuples so the status stays hashable.
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "restrictions", tuple(self.restrictions))
        object.__setattr__(self, "adjustments", tuple(self.adjustments))
        object.__setattr__(self, "updated_at", self.updated_at.astimezone(UTC))

    def as_document(self, *, adjustments: bool = False) -> dict[str, Any]:
        """Return the JSON-safe status document, the only data a connector may send.

        `adjustments` adds the reasonable adjustments, for a connector configured to send them.
        """
        document = {
            "subject_kind": self.subject_kind,
            "subject_ref": self.subject_ref,
            "record_key": self.record_key,
            "level": self.level,
            "categories": list(self.categories),
            "restrictions": list(self.restrictions),
            "review_due": self.review_due.isoformat() if self.review_due else None,
            "appeal_pending": self.appeal_pending,
            "appeal_handler": self.appeal_handler,
            "version": self.version,
            "updated_at": iso_utc(self.updated_at),
        }
        if adjustments:
            document["adjustments"] = list(self.adjustments)
        return document


def optional_values(status: FlagStatus, names: Mapping[str, str | None]) -> dict[str, Any]:
    """The status's optional values under the CRM column or field names the settings give
    them (`appeal_handler`, `adjustments` one instruction a line); none that is not named."""
    values = {
        "appeal_handler": status.appeal_handler,
        "adjustments": "\n".join(status.adjustments) or None,
    }
    return {name: values[key] for key, name in names.items() if name}


def iso_utc(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with a trailing Z, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Delivery(Enum):
    """How one status fared at the CRM."""

    DELIVERED = "delivered"
    NOT_FOUND = "not_found"  # the CRM has no such record; connectors never create one
    RETRY = "retry"  # transient: throttled, 5xx, timeout; the outbox should try again later
    FAILED = "failed"  # permanent until someone changes config or data (400, 403, ...)
    # The CRM record already holds a newer version than this status; nothing was written.
    SUPERSEDED = "superseded"


@dataclass
class PushOutcome:
    """The result of delivering one status."""

    status: FlagStatus
    result: Delivery
    detail: str = ""
    retry_after: float | None = None


@dataclass
class ReconcileReport:
    """What a full reconciliation did: counts, HTTP requests made and every record not delivered."""

    connector: str
    delivered: int = 0
    not_found: int = 0
    failed: int = 0
    retry: int = 0
    superseded: int = 0
    requests: int = 0
    requests_by_kind: dict[str, int] = field(default_factory=dict)
    failures: list[PushOutcome] = field(default_factory=list)
    # Statuses the CRM already held a newer version of: not written, and not failures.
    superseded_outcomes: list[PushOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, outcome: PushOutcome) -> None:
        """Count one outcome; anything not delivered is also kept in `failures`."""
        if outcome.result is Delivery.DELIVERED:
            self.delivered += 1
            return
        if outcome.result is Delivery.SUPERSEDED:
            self.superseded += 1
            self.superseded_outcomes.append(outcome)
            return
        if outcome.result is Delivery.NOT_FOUND:
            self.not_found += 1
        elif outcome.result is Delivery.RETRY:
            self.retry += 1
        else:
            self.failed += 1
        self.failures.append(outcome)

    @property
    def total(self) -> int:
        return self.delivered + self.not_found + self.failed + self.retry + self.superseded


@dataclass
class ConnectorHealth:
    """A connector's view of its CRM, for `forewarn sync status` and /metrics."""

    ok: bool
    detail: str
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RecordIds(ABC):
    """Where a connector keeps the CRM's own Id of each subject's record once it has found it.

    A connector that must look a record's Id up before writing it (Salesforce by external
    ID) asks here first and looks up only the rest. Keys are a subject kind and the status's
    `record_key`. The sidecar keeps them in its database, per connector, so a worker that
    has just started, a second worker and a reconciliation share what any of them learned;
    without the sidecar they live as long as the connector.
    """

    @abstractmethod
    def known(self, kind: str, keys: Sequence[str]) -> dict[str, str]:
        """The Id held for each of `keys` that has one."""

    @abstractmethod
    def learn(self, kind: str, ids: Mapping[str, str]) -> None:
        """Hold each key's Id (replacing an older one)."""

    @abstractmethod
    def forget(self, kind: str, ids: Mapping[str, str]) -> None:
        """Drop each key's Id where it is still the one given: the CRM said it is gone."""


class MemoryRecordIds(RecordIds):
    """Record Ids held in memory, for as long as the connector lives."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def known(self, kind: str, keys: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return {key: self._ids[(kind, key)] for key in keys if (kind, key) in self._ids}

    def learn(self, kind: str, ids: Mapping[str, str]) -> None:
        with self._lock:
            self._ids.update({(kind, key): record_id for key, record_id in ids.items()})

    def forget(self, kind: str, ids: Mapping[str, str]) -> None:
        with self._lock:
            for key, record_id in ids.items():
                if self._ids.get((kind, key)) == record_id:
                    del self._ids[(kind, key)]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Read a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify_status(code: int) -> Delivery:
    """Map an HTTP status for one record onto a delivery result."""
    if 200 <= code < 300:
        return Delivery.DELIVERED
    if code == 404:
        return Delivery.NOT_FOUND
    if code in (408, 429) or code >= 500:
        return Delivery.RETRY
    return Delivery.FAILED


def outcome_from_error(status: FlagStatus, error: ConnectorError) -> PushOutcome:
    """Turn a raised connector error into the outcome for one status."""
    result = Delivery.RETRY if error.transient else Delivery.FAILED
    return PushOutcome(status, result, str(error), error.retry_after)


class Connector(ABC):
    """A CRM connector: pushes flag statuses into existing CRM records, never creating any.

    Subclasses read their own settings in `__init__` (after calling this one) through
    `self.settings`, and send every HTTP request through `self.send` so that timeouts,
    throttling, retries, request counting and health bookkeeping are uniform.
    """

    kind: ClassVar[str] = ""
    # Statuses worth retrying in place; 429 and 503 carry the server's Retry-After.
    RETRY_STATUSES: ClassVar[frozenset[int]] = frozenset({429, 500, 502, 503, 504})
    # Statuses one push is given at most, for a connector that sends one request per status.
    PUSH_SIZE: ClassVar[int] = 200

    def __init__(
        self, name: str, settings: Mapping[str, Any], environ: Mapping[str, str] = os.environ
    ) -> None:
        """Validate the shared settings; raise ConnectorConfigError naming any bad one.

        Secrets are never in `settings`: a setting such as `client_secret_env` names the
        environment variable, read from `environ`.
        """
        self.name = name
        self.settings = SettingsReader(name, settings, environ)
        s = self.settings
        self.timeout = (
            s.number("connect_timeout", default=5.0, minimum=0.01),
            s.number("read_timeout", default=30.0, minimum=0.01),
        )
        self.retry_attempts = s.integer("retry_attempts", default=4, minimum=1, maximum=10)
        self.backoff_base = s.number("backoff_base", default=0.5, minimum=0.0)
        self.backoff_max = s.number("backoff_max", default=30.0, minimum=0.0)
        # A longer Retry-After is not slept through: the status goes back to the outbox.
        self.max_retry_wait = s.number("max_retry_wait", default=60.0, minimum=0.0)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "forewarn-connector"
        self._lock = threading.Lock()
        self._request_counts: Counter[str] = Counter()
        self._resume_at = 0.0
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self.record_ids: RecordIds = MemoryRecordIds()

    def use_record_ids(self, store: RecordIds) -> None:
        """Keep the CRM record Ids this connector finds in `store` (see RecordIds).

        The sync worker and reconciliation hand every connector the sidecar's table; a
        connector that addresses records by Forewarn's own key never consults it.
        """
        self.record_ids = store

    def _finish_settings(self) -> None:
        """Reject settings nobody read (a typo must not silently fall back to a default)."""
        self.settings.reject_unknown()

    def _pool(self, size: int) -> None:
        """Size the connection pool for `size` concurrent requests."""
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(size, 1))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    @property
    def push_size(self) -> int:
        """Most statuses the worker should hand one `push` (it claims no more in a pass).

        A connector that writes in the CRM's batch form wants large pushes, so a burst of
        changes costs a few requests per thousand; one that sends a request per status
        wants a pass short enough to finish well inside the worker's claim.
        """
        return self.PUSH_SIZE

    @abstractmethod
    def push(self, statuses: Sequence[FlagStatus]) -> list[PushOutcome]:
        """Update the existing CRM record of each status; return one outcome per status, in order.

        Idempotent (sending the same status twice leaves the CRM as after once). A missing
        record is reported NOT_FOUND and never created. A record that holds a newer version
        than the status is left alone and reported SUPERSEDED, and every write is guarded by
        the CRM's own concurrency control, so a request the client gave up on cannot land
        later over a newer version. Per-record problems, including throttling and timeouts,
        become outcomes; this method does not raise for them.
        """

    @abstractmethod
    def reconcile(self, statuses: Iterable[FlagStatus]) -> ReconcileReport:
        """Push every given status using the CRM's batch form and report what happened.

        The report counts outcomes, the HTTP requests made (token calls included) and keeps
        every record that was not delivered.
        """

    @abstractmethod
    def health(self) -> ConnectorHealth:
        """Probe the CRM cheaply (authenticate and make one read) and report; never raises."""

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    # -- HTTP plumbing -------------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        *,
        kind: str,
        headers_per_attempt: Callable[[], Mapping[str, str]] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request with the configured timeouts, retrying transient failures.

        429/503 wait for the server's Retry-After (seconds or HTTP-date), other retryable
        statuses and connection failures back off exponentially with full jitter, for at
        most `retry_attempts` attempts. `headers_per_attempt`, when given, is called just
        before each attempt (a signature that carries the time it was sent). Returns any
        other response for the caller to classify; raises Throttled or TransientError once
        retries are exhausted.
        """
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_resume(kind)
            if headers_per_attempt is not None:
                kwargs["headers"] = dict(headers_per_attempt())
            self._count(kind)
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                reason = "timed out" if isinstance(exc, requests.Timeout) else "failed"
                detail = f"{kind} request {reason}: {type(exc).__name__}"
                if attempt >= self.retry_attempts:
                    self.note_error(f"{detail} after {attempt} attempts")
                    raise TransientError(f"{detail} after {attempt} attempts") from exc
                time.sleep(self.backoff(attempt))
                continue
            self.observe(response)
            throttled = self.is_throttle(response)
            if not throttled and response.status_code not in self.RETRY_STATUSES:
                if response.ok:
                    self.note_success()
                return response
            detail = f"{kind}: HTTP {response.status_code} {self.error_detail(response)}".rstrip()
            asked = self.retry_after(response) if throttled else None
            delay = asked if asked is not None else self.backoff(attempt)
            if asked is not None:
                self._pause_all(asked)
            if attempt >= self.retry_attempts or delay > self.max_retry_wait:
                self.note_error(detail)
                if throttled:
                    raise Throttled(detail, retry_after=asked)
                raise TransientError(detail)
            time.sleep(delay)

    def is_throttle(self, response: requests.Response) -> bool:
        """Whether the server is asking us to slow down; connectors add vendor-specific limits."""
        return response.status_code in (429, 503)

    def retry_after(self, response: requests.Response) -> float | None:
        """Seconds the server asked us to wait (its Retry-After), or None when it did not say."""
        return parse_retry_after(response.headers.get("Retry-After"))

    def observe(self, response: requests.Response) -> None:  # noqa: B027 - optional hook
        """Look at every response (e.g. usage headers); the default does nothing."""

    def error_detail(self, response: requests.Response) -> str:
        """A short, safe description of an error body; connectors parse their vendor's format."""
        return response.reason or ""

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry `attempt` (1 for the first retry)."""
        # Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography

    def _pause_all(self, seconds: float) -> None:
        # Every thread holds back: CRMs extend the penalty for clients that keep sending.
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def _wait_for_resume(self, kind: str) -> None:
        """Sleep through a short throttle window; fail fast inside a long one."""
        with self._lock:
            pause = self._resume_at - time.monotonic()
        if pause > self.max_retry_wait:
            raise Throttled(f"{kind}: the CRM asked us to wait another {pause:.0f}s", pause)
        if pause > 0:
            time.sleep(pause)

    def _count(self, kind: str) -> None:
        with self._lock:
            self._request_counts[kind] += 1

    def request_counts(self) -> dict[str, int]:
        """HTTP requests made so far, by kind (token, metadata, batch, ...); retries included."""
        with self._lock:
            return dict(self._request_counts)

    def note_success(self) -> None:
        """Record that the CRM answered successfully just now."""
        with self._lock:
            self._last_success = datetime.now(UTC)

    def note_error(self, detail: str) -> None:
        """Record the most recent error, for health()."""
        with self._lock:
            self._last_error = detail
            self._last_error_at = datetime.now(UTC)

    def _health(
        self, ok: bool, detail: str, extra: dict[str, Any] | None = None
    ) -> ConnectorHealth:
        if not ok:
            self.note_error(detail)
        with self._lock:
            return ConnectorHealth(
                ok=ok,
                detail=detail,
                last_success=self._last_success,
                last_error=self._last_error,
                last_error_at=self._last_error_at,
                extra=dict(extra or {}),
            )

    def _report(
        self, outcomes: Iterable[PushOutcome], before: Mapping[str, int], started: float
    ) -> ReconcileReport:
        """Build a ReconcileReport from outcomes and the request counters taken before starting."""
        report = ReconcileReport(connector=self.name)
        for outcome in outcomes:
            report.add(outcome)
        after = self.request_counts()
        report.requests_by_kind = {
            kind: after[kind] - before.get(kind, 0)
            for kind in after
            if after[kind] != before.get(kind, 0)
        }
        report.requests = sum(report.requests_by_kind.values())
        report.seconds = time.monotonic() - started
        return report

    def _note_outcomes(self, outcomes: Iterable[PushOutcome]) -> None:
        for outcome in outcomes:
            if outcome.result in (Delivery.RETRY, Delivery.FAILED):
                self.note_error(outcome.detail)
