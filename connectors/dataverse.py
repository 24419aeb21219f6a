"""Dataverse (Dynamics 365) connector: updates rows by alternate key through the Web API."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests

from connectors.base import (
    LEVELS,
    OPTIONAL_FIELDS,
    STATUS_FIELDS,
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
    optional_values,
    outcome_from_error,
    parse_retry_after,
)
from connectors.dataverse_rows import (
    MAX_READ_URL_CHARS,
    Row,
    RowCache,
    Table,
    dataverse_error,
    key_chunks,
    level_options,
    read_url,
    record_path,
)
from connectors.oauth import TokenSource, fetch_token, send_authorized
from connectors.odata_batch import (
    BatchOperation,
    BatchPartResponse,
    build_batch,
    parse_batch_response,
)
from connectors.settings import IDENTIFIER

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
# Rounds of read-then-write for one record whose ETag keeps changing under us (412).
MAX_ROUNDS = 3
# Write $batches per push: the one read $batch before them is then a tenth of the writes,
# so a burst costs 1.1 requests per 1,000 changes at the default batch_size.
WRITE_BATCHES_PER_PUSH = 10

T = TypeVar("T")
R = TypeVar("R")


class DataverseConnector(Connector):
    """Pushes flag statuses into existing Dataverse rows, addressed by an alternate key.

    Every write is a PATCH by alternate key inside a `$batch`, guarded by the row's ETag
    (If-Match), so a request the client gave up on can never land after a newer one: the
    newer write changed the ETag and the late one answers 412. A row's ETag and status
    version are read in bulk before the first write to it and kept from each write's answer.
    Settings are listed in the README ("Connector settings").
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
        overrides = s.overrides("columns", STATUS_FIELDS + OPTIONAL_FIELDS, identifiers=True)
        self.columns = {c: overrides.get(c, prefix + COLUMN_SUFFIXES[c]) for c in STATUS_FIELDS}
        # Off unless named, so a table without the column keeps working.
        self.optional_columns = {c: overrides.get(c) for c in OPTIONAL_FIELDS} | {
            "adjustments": s.optional_name("adjustments_column")
        }
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
        self.rows = RowCache()
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

    @property
    def push_size(self) -> int:
        return self.batch_size * WRITE_BATCHES_PER_PUSH

    def push(self, statuses: Sequence[FlagStatus]) -> list[PushOutcome]:
        """Write each status into its row with ETag-guarded PATCHes, batch_size per `$batch`."""
        outcomes = self._deliver(list(statuses))
        self._note_outcomes(outcomes)
        return outcomes

    def reconcile(self, statuses: Iterable[FlagStatus]) -> ReconcileReport:
        """Push every status the same way as `push`, and report counts and requests."""
        started, before = time.monotonic(), self.request_counts()
        outcomes = self._deliver(list(statuses))
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

    # -- delivery ----------------------------------------------------------------------

    def _deliver(self, statuses: list[FlagStatus]) -> list[PushOutcome]:
        """Read rows not yet known, write what is not superseded, re-read and retry on 412."""
        outcomes: dict[int, PushOutcome] = {}
        todo = []
        for index, status in enumerate(statuses):
            problem = self._unwritable(status)
            if problem is not None:
                outcomes[index] = PushOutcome(status, Delivery.FAILED, problem)
            else:
                todo.append(index)
        for round_ in range(MAX_ROUNDS):
            if not todo:
                break
            unknown = [i for i in todo if self._row(statuses[i]) is None]
            outcomes.update(self._read_rows(statuses, unknown))
            if round_ == 0:
                self._load_level_options(statuses, todo, outcomes)
            writes = []
            for index in todo:
                if index in outcomes:
                    continue
                decided = self._decide(statuses[index], self._row(statuses[index]), round_)
                if decided is None:
                    writes.append(index)
                else:
                    outcomes[index] = decided
            chunks = [
                writes[i : i + self.batch_size] for i in range(0, len(writes), self.batch_size)
            ]
            todo = []
            for chunk, results in zip(
                chunks, self._fan_out(lambda c: self._write(statuses, c), chunks), strict=True
            ):
                for index, outcome in zip(chunk, results, strict=True):
                    if outcome is None:
                        todo.append(index)  # 412: the row changed since we read it
                    else:
                        outcomes[index] = outcome
        for index in todo:
            outcomes[index] = PushOutcome(
                statuses[index],
                Delivery.RETRY,
                f"the row changed between every read and write ({MAX_ROUNDS} x HTTP 412)",
            )
        return [outcomes[i] for i in range(len(statuses))]

    def _unwritable(self, status: FlagStatus) -> str | None:
        if status.subject_kind not in self.tables:
            return f"no Dataverse table configured for {status.subject_kind} subjects"
        return None

    def _row(self, status: FlagStatus) -> Row | None:
        table = self.tables[status.subject_kind]
        return self.rows.get(table.entity_set, status.record_key)

    def _decide(self, status: FlagStatus, row: Row | None, round_: int) -> PushOutcome | None:
        """The outcome known without writing, or None when the status must be written."""
        if row is None:
            table = self.tables[status.subject_kind]
            return PushOutcome(
                status, Delivery.NOT_FOUND, f"no {table.logical_name} row with this key"
            )
        if row.version is not None and row.version > status.version:
            return PushOutcome(
                status,
                Delivery.SUPERSEDED,
                f"the row holds version {row.version}, newer than {status.version}",
            )
        if round_ > 0 and row.version == status.version:
            # After a 412: our own earlier copy (one we gave up on) got there first.
            return PushOutcome(status, Delivery.DELIVERED, "the row already held this version")
        return None

    def _load_level_options(
        self, statuses: list[FlagStatus], todo: list[int], outcomes: dict[int, PushOutcome]
    ) -> None:
        failed: dict[str, ConnectorError] = {}
        for index in list(todo):
            table = self.tables[statuses[index].subject_kind]
            if table.logical_name not in failed:
                try:
                    self._level_values(table)
                except ConnectorError as exc:
                    failed[table.logical_name] = exc
            if table.logical_name in failed:
                outcomes[index] = outcome_from_error(statuses[index], failed[table.logical_name])
                todo.remove(index)

    def _read_rows(self, statuses: list[FlagStatus], indexes: list[int]) -> dict[int, PushOutcome]:
        """Read ETag and version of the rows at `indexes` in one `$batch` of GET queries.

        The same `$batch` reads the level Choice options of each table not yet known, so a
        worker that has just started learns all it needs before writing in one request (a
        `$batch` may hold any GET outside its change sets: Microsoft Learn, "Execute batch
        operations using the Web API").
        Rows that exist are cached; a row that does not is simply absent. Returns the
        outcome of every status whose read failed.
        """
        if not indexes:
            return {}
        by_table: dict[str, list[int]] = {}
        for index in indexes:
            by_table.setdefault(statuses[index].subject_kind, []).append(index)
        operations: list[BatchOperation] = []
        covers: list[tuple[Table, list[int] | None]] = []  # None: the table's options
        for kind, members in by_table.items():
            table = self.tables[kind]
            if table.logical_name not in self._level_options:
                operations.append(self._get(len(operations), self._options_url(table)))
                covers.append((table, None))
            keys = [statuses[i].record_key for i in members]
            for chunk in key_chunks(keys, MAX_READ_URL_CHARS):
                wanted = set(chunk)
                url = read_url(self.api, table, self.columns["version"], chunk)
                operations.append(self._get(len(operations), url))
                covers.append((table, [i for i in members if statuses[i].record_key in wanted]))
        try:
            parts = self._send_batch(operations, kind="read")
        except ConnectorError as exc:
            return {i: outcome_from_error(statuses[i], exc) for i in indexes}
        failed: dict[int, PushOutcome] = {}
        for (table, members), part in zip(covers, parts, strict=False):
            body = part.json() if part.status == 200 else None
            if members is None:
                self._remember_options(table, body)
            elif not isinstance(body, dict):
                error = self._part_error(part, "reading rows")
                failed.update({i: outcome_from_error(statuses[i], error) for i in members})
            else:
                for record in body.get("value", []):
                    self.rows.remember_read(table, self.columns["version"], record)
        for _table, members in covers[len(parts) :]:
            error = TransientError("reading rows: the batch stopped before this query")
            failed.update({i: outcome_from_error(statuses[i], error) for i in members or []})
        return failed

    @staticmethod
    def _get(position: int, url: str) -> BatchOperation:
        return BatchOperation(str(position + 1), "GET", url, None, ODATA_HEADERS)

    def _write(self, statuses: list[FlagStatus], chunk: list[int]) -> list[PushOutcome | None]:
        """PATCH each status in `chunk` with If-Match, one change set each; None means 412."""
        operations = []
        for position, index in enumerate(chunk):
            status = statuses[index]
            table = self.tables[status.subject_kind]
            row = self._row(status)
            assert row is not None
            url = (
                f"{self.api}/{record_path(table, status.record_key)}"
                f"?$select={self.columns['version']}"
            )
            headers = {
                # The row's ETag: the write applies only to the row as we last saw it
                # (Microsoft Learn, "Perform conditional operations using the Web API",
                # Apply optimistic concurrency). A missing row answers 404 and is not
                # created, since If-Match is present (same page, Prevent create in upsert).
                "If-Match": row.etag,
                # Answer with the row, so its new ETag is known without another read
                # (Microsoft Learn, "Update and delete table rows", Update with data returned).
                "Prefer": "return=representation",
            }
            operations.append(
                BatchOperation(str(position + 1), "PATCH", url, self._body(status, table), headers)
            )
        try:
            parts = self._send_batch(operations, kind="batch")
        except ConnectorError as exc:
            return [outcome_from_error(statuses[i], exc) for i in chunk]
        by_id = {part.content_id: part for part in parts if part.content_id}
        results: list[PushOutcome | None] = []
        for position, index in enumerate(chunk):
            status = statuses[index]
            # A failed change set may answer without a Content-ID; order still matches.
            part = by_id.get(str(position + 1)) or (
                parts[position] if position < len(parts) else None
            )
            results.append(self._written(status, part))
        return results

    def _written(self, status: FlagStatus, part: BatchPartResponse | None) -> PushOutcome | None:
        table = self.tables[status.subject_kind]
        if part is None:
            return PushOutcome(
                status, Delivery.RETRY, "no response: the batch stopped before this record"
            )
        if part.status == 412:
            self.rows.forget(table.entity_set, status.record_key)
            return None
        result = classify_status(part.status)
        if result is Delivery.DELIVERED:
            self.rows.remember_write(table, status, part.json(), part.headers)
            return PushOutcome(status, result, f"HTTP {part.status}")
        if result is Delivery.NOT_FOUND:
            self.rows.forget(table.entity_set, status.record_key)
        detail = f"HTTP {part.status} {dataverse_error(part.body)}".rstrip()
        retry_after = None
        if result is Delivery.RETRY:
            retry_after = parse_retry_after(part.headers.get("retry-after"))
        return PushOutcome(status, result, detail, retry_after)

    def _send_batch(
        self, operations: list[BatchOperation], *, kind: str
    ) -> list[BatchPartResponse]:
        boundary = f"batch_{uuid.uuid4().hex}"
        response = self._call(
            "POST",
            f"{self.api}/$batch",
            kind=kind,
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
            raise self._status_error(response)
        try:
            return parse_batch_response(content_type, response.content)
        except ValueError as exc:
            raise TransientError(f"{kind}: unreadable batch response: {exc}") from exc

    def _fan_out(self, work: Callable[[T], R], items: list[T]) -> list[R]:
        if len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(min(self.max_concurrency, len(items))) as pool:
            return list(pool.map(work, items))

    def _status_error(self, response: requests.Response) -> ConnectorError:
        detail = f"batch: HTTP {response.status_code} {self.error_detail(response)}"
        if classify_status(response.status_code) is Delivery.RETRY:
            return TransientError(detail, parse_retry_after(response.headers.get("Retry-After")))
        return ConnectorError(detail)

    def _part_error(self, part: BatchPartResponse, what: str) -> ConnectorError:
        detail = f"{what}: HTTP {part.status} {dataverse_error(part.body)}".rstrip()
        if classify_status(part.status) in (Delivery.RETRY, Delivery.DELIVERED):
            return TransientError(detail, parse_retry_after(part.headers.get("retry-after")))
        return ConnectorError(detail)

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
        } | optional_values(status, self.optional_columns)

    def _level_values(self, table: Table) -> dict[str, int]:
        """The Choice column's option values for none/amber/red, read once from metadata.

        Option values differ per environment (they carry the publisher's prefix), so they
        are looked up by label rather than configured. Usually the read `$batch` has
        fetched them already (`_read_rows`); otherwise one GET here.
        """
        with self._options_lock:
            cached = self._level_options.get(table.logical_name)
            if cached is not None:
                return cached
            column = self.columns["level"]
            response = self._call("GET", self._options_url(table), kind="metadata")
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

    def _options_url(self, table: Table) -> str:
        return (
            f"{self.api}/EntityDefinitions(LogicalName='{table.logical_name}')"
            f"/Attributes(LogicalName='{self.columns['level']}')"
            "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
            "?$select=LogicalName&$expand=OptionSet($select=Options)"
        )

    def _remember_options(self, table: Table, metadata: Any) -> None:
        """Keep the options a read `$batch` fetched, when every level has one.

        Anything else is left for `_level_values` to fetch on its own and explain.
        """
        values = level_options(metadata) if isinstance(metadata, dict) else {}
        if all(level in values for level in LEVELS):
            with self._options_lock:
                self._level_options.setdefault(table.logical_name, values)


__all__ = ["DataverseConnector", "Table", "dataverse_error", "level_options", "record_path"]
