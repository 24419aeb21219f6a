"""Dataverse (Dynamics 365) connector: updates rows by alternate key through the Web API."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from connectors.base import (
    LEVELS,
    SUBJECT_KINDS,
    Connector,
    ConnectorError,
    ConnectorHealth,
    Delivery,
    FlagStatus,
    PushOutcome,
    ReconcileReport,
    TransientError,
    classify_status,
    iso_utc,
    outcome_from_error,
    parse_retry_after,
)
from connectors.oauth import TokenSource, fetch_token, send_authorized
from connectors.odata_batch import BatchOperation, build_batch, parse_batch_response
from connectors.settings import IDENTIFIER

COLUMNS = (
    "level",
    "categories",
    "restrictions",
    "review_due",
    "appeal_pending",
    "version",
    "updated_at",
)
# Default column names are the publisher prefix plus these.
COLUMN_SUFFIXES = {
    "level": "level",
    "categories": "categories",
    "restrictions": "restrictions",
    "review_due": "reviewdue",
    "appeal_pending": "appealpending",
    "version": "statusversion",
    "updated_at": "statusupdated",
}
ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0", "Accept": "application/json"}
# Dataverse service protection caps concurrent requests per user at 52 (Microsoft Learn,
# "Service protection API limits"); a $batch may hold at most 1,000 requests.
MAX_CONCURRENCY = 52
MAX_BATCH = 1000

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Table:
    """Where one subject kind lives in Dataverse."""

    logical_name: str
    entity_set: str
    alternate_key: str


class DataverseConnector(Connector):
    """Pushes flag statuses into existing Dataverse rows, addressed by an alternate key.

    Settings: environment_url, tenant_id, client_id, client_secret_env, token_url (default
    the Entra ID v2 endpoint), table / entity_set / alternate_key (each a table keyed by
    subject kind), column_prefix (default "fw_"), columns (overrides by name), batch_size
    (<= 1000), max_concurrency (<= 52), and the common timeout and retry settings.
    """

    kind = "dataverse"

    def __init__(
        self, name: str, settings: Mapping[str, Any], environ: Mapping[str, str] = os.environ
    ) -> None:
        """Validate settings; no network I/O happens until the first push or health check."""
        super().__init__(name, settings, environ)
        s = self.settings
        self.environment_url = s.url("environment_url", required=True)
        tenant = s.text("tenant_id", required=True)
        if not re.fullmatch(r"[A-Za-z0-9.-]+", tenant):
            s.fail("tenant_id", "must be a tenant GUID or domain name")
        client_id = s.text("client_id", required=True)
        secret = s.secret("client_secret_env")
        self.token_url = s.url(
            "token_url", f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
        )
        version = s.text("api_version", "v9.2")
        if not re.fullmatch(r"v9\.\d", version):
            s.fail("api_version", f"must look like v9.2, not {version!r}")
        self.api = f"{self.environment_url}/api/data/{version}"
        self.tables = self._read_tables()
        prefix = s.text("column_prefix", "fw_")
        if not IDENTIFIER.fullmatch(prefix):
            s.fail("column_prefix", "must be letters, digits and underscores")
        overrides = s.overrides("columns", COLUMNS, identifiers=True)
        self.columns = {c: overrides.get(c, prefix + COLUMN_SUFFIXES[c]) for c in COLUMNS}
        self.batch_size = s.integer("batch_size", MAX_BATCH, minimum=1, maximum=MAX_BATCH)
        self.max_concurrency = s.integer("max_concurrency", 8, minimum=1, maximum=MAX_CONCURRENCY)
        self._finish_settings()
        self._pool(self.max_concurrency)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": f"{self.environment_url}/.default",
        }
        self.tokens = TokenSource(lambda: fetch_token(self, self.token_url, form))
        self._level_options: dict[str, dict[str, int]] = {}
        self._options_lock = threading.Lock()

    def _read_tables(self) -> dict[str, Table]:
        s = self.settings
        names = s.per_kind("table", SUBJECT_KINDS)
        sets = s.per_kind("entity_set", SUBJECT_KINDS)
        keys = s.per_kind("alternate_key", SUBJECT_KINDS)
        for setting, table in (("entity_set", sets), ("alternate_key", keys)):
            missing = set(names) - set(table)
            if missing or set(table) - set(names):
                s.fail(setting, f"must name the same subject kinds as 'table' ({sorted(names)})")
        return {kind: Table(names[kind], sets[kind], keys[kind]) for kind in names}

    # -- HTTP ---------------------------------------------------------------------------

    def send(self, method: str, url: str, *, kind: str, **kwargs: Any) -> requests.Response:
        """Send through the shared plumbing, never more than max_concurrency at once."""
        with self._slots:
            return super().send(method, url, kind=kind, **kwargs)

    def error_detail(self, response: requests.Response) -> str:
        """Read Dataverse's {"error": {"code", "message"}} body."""
        return dataverse_error(response.content) or super().error_detail(response)

    def _call(self, method: str, url: str, *, kind: str, **kwargs: Any) -> requests.Response:
        headers = {**ODATA_HEADERS, **(kwargs.pop("headers", None) or {})}
        return send_authorized(self, self.tokens, method, url, kind=kind, headers=headers, **kwargs)

    # -- contract ----------------------------------------------------------------------

    def push(self, statuses: Sequence[FlagStatus]) -> list[PushOutcome]:
        """PATCH each row by alternate key with If-Match: * so a missing row is 404, not created."""
        outcomes = self._fan_out(self._push_one, list(statuses))
        self._note_outcomes(outcomes)
        return outcomes

    def reconcile(self, statuses: Iterable[FlagStatus]) -> ReconcileReport:
        """Send every status in $batch requests of batch_size operations, one change set each."""
        started, before = time.monotonic(), self.request_counts()
        items = list(statuses)
        chunks = [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        outcomes = [o for chunk in self._fan_out(self._send_batch, chunks) for o in chunk]
        self._note_outcomes(outcomes)
        return self._report(outcomes, before, started)

    def health(self) -> ConnectorHealth:
        """Authenticate and call WhoAmI."""
        try:
            response = self._call("GET", f"{self.api}/WhoAmI", kind="health")
        except ConnectorError as exc:
            return self._health(False, str(exc))
        if response.status_code != 200:
            return self._health(
                False, f"WhoAmI: HTTP {response.status_code} {self.error_detail(response)}"
            )
        return self._health(
            True, "WhoAmI answered", {"organization": response.json().get("OrganizationId")}
        )

    # -- work --------------------------------------------------------------------------

    def _fan_out(self, work: Callable[[T], R], items: list[T]) -> list[R]:
        if len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(min(self.max_concurrency, len(items))) as pool:
            return list(pool.map(work, items))

    def _push_one(self, status: FlagStatus) -> PushOutcome:
        try:
            url, body = self._update(status)
            response = self._call(
                "PATCH", url, kind="update", data=json.dumps(body), headers=self._write_headers()
            )
        except ConnectorError as exc:
            return outcome_from_error(status, exc)
        return self._outcome(status, response.status_code, response.headers, response.content)

    def _send_batch(self, chunk: list[FlagStatus]) -> list[PushOutcome]:
        outcomes: dict[int, PushOutcome] = {}
        operations = []
        for index, status in enumerate(chunk):
            try:
                url, body = self._update(status)
            except ConnectorError as exc:
                outcomes[index] = outcome_from_error(status, exc)
                continue
            operations.append(BatchOperation(str(index + 1), "PATCH", url, body, {"If-Match": "*"}))
        if operations:
            outcomes.update(self._batch_outcomes(chunk, operations))
        return [outcomes[i] for i in range(len(chunk))]

    def _batch_outcomes(
        self, chunk: list[FlagStatus], operations: list[BatchOperation]
    ) -> dict[int, PushOutcome]:
        boundary = f"batch_{uuid.uuid4().hex}"
        indexes = [int(op.content_id) - 1 for op in operations]
        try:
            response = self._call(
                "POST",
                f"{self.api}/$batch",
                kind="batch",
                data=build_batch(boundary, operations),
                headers={
                    "Content-Type": f"multipart/mixed; boundary={boundary}",
                    # Without this Dataverse stops at the first failed change set (Microsoft
                    # Learn, "Execute batch operations using the Web API", Handle errors).
                    "Prefer": "odata.continue-on-error",
                },
            )
            content_type = response.headers.get("Content-Type", "")
            if not content_type.startswith("multipart/"):
                error = self._status_error(response)
                return {i: outcome_from_error(chunk[i], error) for i in indexes}
            parts = parse_batch_response(content_type, response.content)
        except (ConnectorError, ValueError) as exc:
            error = exc if isinstance(exc, ConnectorError) else TransientError(f"batch: {exc}")
            return {i: outcome_from_error(chunk[i], error) for i in indexes}
        by_id = {part.content_id: part for part in parts if part.content_id}
        outcomes = {}
        for position, (op, index) in enumerate(zip(operations, indexes, strict=True)):
            # A failed change set may answer without a Content-ID; order still matches.
            part = by_id.get(op.content_id) or (parts[position] if position < len(parts) else None)
            if part is None:
                outcomes[index] = PushOutcome(
                    chunk[index],
                    Delivery.RETRY,
                    "no response: the batch stopped before this record",
                )
            else:
                outcomes[index] = self._outcome(chunk[index], part.status, part.headers, part.body)
        return outcomes

    def _status_error(self, response: requests.Response) -> ConnectorError:
        detail = f"batch: HTTP {response.status_code} {self.error_detail(response)}"
        if classify_status(response.status_code) is Delivery.RETRY:
            return TransientError(detail, parse_retry_after(response.headers.get("Retry-After")))
        return ConnectorError(detail)

    def _outcome(
        self, status: FlagStatus, code: int, headers: Mapping[str, str], body: bytes
    ) -> PushOutcome:
        result = classify_status(code)
        if result is Delivery.DELIVERED:
            return PushOutcome(status, result, f"HTTP {code}")
        detail = f"HTTP {code} {dataverse_error(body)}".rstrip()
        retry_after = None
        if result is Delivery.RETRY:
            retry_after = parse_retry_after(_header(headers, "Retry-After"))
        return PushOutcome(status, result, detail, retry_after)

    def _write_headers(self) -> dict[str, str]:
        # If-Match: * turns PATCH-by-key into update-only: a missing row answers 404 instead
        # of being created (Microsoft Learn, "Update and delete table rows using the Web
        # API", Prevent create in upsert).
        return {"If-Match": "*", "Content-Type": "application/json"}

    def _update(self, status: FlagStatus) -> tuple[str, dict[str, Any]]:
        table = self.tables.get(status.subject_kind)
        if table is None:
            raise ConnectorError(
                f"no Dataverse table configured for {status.subject_kind} subjects"
            )
        return f"{self.api}/{record_path(table, status.record_key)}", self._body(status, table)

    def _body(self, status: FlagStatus, table: Table) -> dict[str, Any]:
        c = self.columns
        return {
            c["level"]: self._level_values(table)[status.level],
            c["categories"]: "; ".join(status.categories) or None,
            c["restrictions"]: "; ".join(status.restrictions) or None,
            c["review_due"]: status.review_due.isoformat() if status.review_due else None,
            c["appeal_pending"]: status.appeal_pending,
            c["version"]: status.version,
            c["updated_at"]: iso_utc(status.updated_at),
        }

    def _level_values(self, table: Table) -> dict[str, int]:
        """The Choice column's option values for none/amber/red, read once from metadata.

        Option values differ per environment (they carry the publisher's prefix), so they
        are looked up by label rather than configured.
        """
        with self._options_lock:
            cached = self._level_options.get(table.logical_name)
            if cached is not None:
                return cached
            column = self.columns["level"]
            url = (
                f"{self.api}/EntityDefinitions(LogicalName='{table.logical_name}')"
                f"/Attributes(LogicalName='{column}')"
                "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
                "?$select=LogicalName&$expand=OptionSet($select=Options)"
            )
            response = self._call("GET", url, kind="metadata")
            if response.status_code != 200:
                error = self._status_error(response)
                raise type(error)(f"reading choice column {column}: {error}", error.retry_after)
            values = level_options(response.json())
            missing = [level for level in LEVELS if level not in values]
            if missing:
                raise ConnectorError(
                    f"choice column {table.logical_name}.{column} has no option labelled "
                    + ", ".join(missing)
                )
            self._level_options[table.logical_name] = values
            return values


def record_path(table: Table, key: str) -> str:
    """The alternate-key address of a row: entityset(key='value'), quote-doubled, URL-encoded."""
    literal = key.replace("'", "''")
    return f"{table.entity_set}({table.alternate_key}='{quote(literal, safe='')}')"


def level_options(metadata: Mapping[str, Any]) -> dict[str, int]:
    """Map lower-cased option labels to option values from PicklistAttributeMetadata."""
    values: dict[str, int] = {}
    for option in (metadata.get("OptionSet") or {}).get("Options") or []:
        label = ((option.get("Label") or {}).get("UserLocalizedLabel") or {}).get("Label")
        if isinstance(label, str) and label.strip().casefold() in LEVELS:
            values[label.strip().casefold()] = int(option["Value"])
    return values


def dataverse_error(body: bytes) -> str:
    """'code: message' from a Dataverse error body, or '' when it is not one."""
    try:
        error = json.loads(body or b"null")["error"]
        return f"{error.get('code', '')}: {error.get('message', '')}"[:300]
    except (ValueError, TypeError, KeyError, AttributeError):
        return ""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
