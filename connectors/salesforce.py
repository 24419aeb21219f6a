"""Salesforce connector: updates records by external ID through the REST API, never creating any."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
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
)
from connectors.oauth import TokenSource, fetch_token, send_authorized

FIELDS = (
    "level",
    "categories",
    "restrictions",
    "review_due",
    "appeal_pending",
    "version",
    "updated_at",
)
DEFAULT_FIELDS = {
    "level": "Fw_Level__c",
    "categories": "Fw_Categories__c",
    "restrictions": "Fw_Restrictions__c",
    "review_due": "Fw_Review_Due__c",
    "appeal_pending": "Fw_Appeal_Pending__c",
    "version": "Fw_Status_Version__c",
    "updated_at": "Fw_Status_Updated__c",
}
DEFAULT_LEVEL_VALUES = {"none": "None", "amber": "Amber", "red": "Red"}
# sObject Collections take at most 200 records per call.
MAX_BATCH = 200
# updateOnly on the external-ID upsert arrived in API version 61.0 (Summer '24).
MIN_API_VERSION = 61
# Keep GET /query URLs well under the 16,384-character request-URI limit.
MAX_IN_LIST_CHARS = 8000
JWT_LIFETIME = 180
# Per-record error codes that mean the record is gone rather than the update refused.
GONE_CODES = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"})
TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})


class SalesforceConnector(Connector):
    """Pushes flag statuses into existing Salesforce records addressed by an external ID field.

    Settings: instance_url and/or login_url, token_url (default {login_url or
    instance_url}/services/oauth2/token), auth ("client_credentials" or "jwt_bearer"),
    client_id, client_secret_env (client credentials), username and private_key_path (JWT
    bearer), audience (JWT bearer, default login_url), api_version (>= v61.0), sobject and
    external_id_field (tables keyed by subject kind), fields (overrides by name),
    level_values (picklist values for none/amber/red), batch_size (<= 200),
    request_limit_backoff (seconds to wait after REQUEST_LIMIT_EXCEEDED), and the common
    timeout and retry settings.
    """

    kind = "salesforce"

    def __init__(
        self, name: str, settings: Mapping[str, Any], environ: Mapping[str, str] = os.environ
    ) -> None:
        """Validate settings (and load the JWT key); no network I/O until first use."""
        super().__init__(name, settings, environ)
        s = self.settings
        self.instance_url = s.url("instance_url")
        login_url = s.url("login_url")
        if not self.instance_url and not login_url:
            s.fail("instance_url", "or 'login_url' is required")
        self.token_url = s.url(
            "token_url", f"{login_url or self.instance_url}/services/oauth2/token"
        )
        auth = s.text("auth", "client_credentials", choices=("client_credentials", "jwt_bearer"))
        client_id = s.text("client_id", required=True)
        if auth == "client_credentials":
            form = {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": s.secret("client_secret_env"),
            }
            self._token_form = lambda: form
        else:
            self._token_form = self._jwt_form(
                client_id,
                s.text("username", required=True),
                s.text("private_key_path", required=True),
                s.url("audience", login_url or "https://login.salesforce.com"),
            )
        self.api_version = s.text("api_version", "v62.0")
        match = re.fullmatch(r"v(\d+)\.0", self.api_version)
        if not match or int(match[1]) < MIN_API_VERSION:
            s.fail("api_version", f"must be v{MIN_API_VERSION}.0 or later (updateOnly needs it)")
        self.sobjects = s.per_kind("sobject", SUBJECT_KINDS)
        self.external_ids = s.per_kind("external_id_field", SUBJECT_KINDS)
        if set(self.sobjects) != set(self.external_ids):
            s.fail("external_id_field", "must name the same subject kinds as 'sobject'")
        self.fields = {**DEFAULT_FIELDS, **s.overrides("fields", FIELDS, identifiers=True)}
        self.level_values = {**DEFAULT_LEVEL_VALUES, **s.overrides("level_values", LEVELS)}
        self.batch_size = s.integer("batch_size", MAX_BATCH, minimum=1, maximum=MAX_BATCH)
        self.request_limit_backoff = s.number("request_limit_backoff", 600.0, minimum=0.0)
        self._finish_settings()
        self.tokens = TokenSource(self._fetch_token)
        self._limit_info: dict[str, int] = {}

    def _jwt_form(
        self, client_id: str, username: str, key_path: str, audience: str
    ) -> Callable[[], dict[str, str]]:
        """Prepare the OAuth 2.0 JWT bearer flow (RFC 7523), checking the key now."""
        try:
            import jwt  # PyJWT is only needed for this flow
        except ImportError:
            self.settings.fail("auth", "jwt_bearer needs PyJWT with cryptography installed")
        try:
            key = Path(key_path).read_text()
            jwt.encode({"probe": True}, key, algorithm="RS256")
        except (OSError, ValueError, TypeError) as exc:
            self.settings.fail("private_key_path", f"is not a readable RSA private key ({exc})")

        def form() -> dict[str, str]:
            now = int(time.time())
            claims = {"iss": client_id, "sub": username, "aud": audience, "exp": now + JWT_LIFETIME}
            assertion = jwt.encode(claims, key, algorithm="RS256")
            return {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            }

        return form

    def _fetch_token(self) -> dict[str, Any]:
        data = fetch_token(self, self.token_url, self._token_form())
        if not self.instance_url:
            # With only login_url configured, the token response names the org's instance.
            url = str(data.get("instance_url", ""))
            if not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
                raise ConnectorError(f"token response gave an unusable instance_url {url!r}")
            self.instance_url = url.rstrip("/")
        return data

    # -- HTTP ---------------------------------------------------------------------------

    def is_throttle(self, response: requests.Response) -> bool:
        """429/503, and REQUEST_LIMIT_EXCEEDED (403) when the org's API allowance is spent."""
        return super().is_throttle(response) or (
            response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in response.text
        )

    def retry_after(self, response: requests.Response) -> float | None:
        """Salesforce sends no Retry-After with REQUEST_LIMIT_EXCEEDED; use the configured wait."""
        if response.status_code == 403:
            return self.request_limit_backoff
        return super().retry_after(response)

    def observe(self, response: requests.Response) -> None:
        """Keep the latest Sforce-Limit-Info (e.g. "api-usage=18/5000") for health()."""
        match = re.search(r"api-usage=(\d+)/(\d+)", response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self._limit_info = {"api_usage": int(match[1]), "api_limit": int(match[2])}

    def error_detail(self, response: requests.Response) -> str:
        """Read Salesforce's [{"errorCode", "message"}] body."""
        try:
            errors = response.json()
            first = errors[0] if isinstance(errors, list) else errors
            return f"{first.get('errorCode', '')}: {first.get('message', '')}"[:300]
        except (ValueError, IndexError, AttributeError, KeyError):
            return super().error_detail(response)

    def _call(self, method: str, path: str, *, kind: str, **kwargs: Any) -> requests.Response:
        self.tokens.get()  # the first token may tell us the instance URL
        # Paths Salesforce hands back (nextRecordsUrl) are already rooted at /services/.
        rooted = (
            path if path.startswith("/services/") else f"/services/data/{self.api_version}/{path}"
        )
        url = f"{self.instance_url}{rooted}"
        return send_authorized(
            self,
            self.tokens,
            method,
            url,
            kind=kind,
            # INVALID_SESSION_ID: the session expired or was revoked; refresh once.
            expired=lambda r: r.status_code == 401,
            **kwargs,
        )

    # -- contract ----------------------------------------------------------------------

    def push(self, statuses: Sequence[FlagStatus]) -> list[PushOutcome]:
        """PATCH each record by external ID with updateOnly=true: a missing one is 404, not created.

        updateOnly is documented for the single-record upsert from API 61.0 ("Upsert Records
        Using sObject Rows by External ID", Salesforce REST API Developer Guide).
        """
        outcomes = [self._push_one(status) for status in statuses]
        self._note_outcomes(outcomes)
        return outcomes

    def reconcile(self, statuses: Iterable[FlagStatus]) -> ReconcileReport:
        """Find record Ids by external ID with SOQL, then update them with sObject Collections.

        The sObject Collections upsert documents only allOrNone, not updateOnly ("Upsert
        Records Using sObject Collections"), so an upsert there could create contacts.
        Updating by Id cannot create, and takes 200 records per call like the upsert would:
        one query plus one update per 200 subjects.
        """
        started, before = time.monotonic(), self.request_counts()
        # Grouped by kind before chunking: chunking first would split every mixed chunk in
        # two, and a register of customers and properties would cost twice the calls.
        by_kind: dict[str, list[FlagStatus]] = {}
        for status in statuses:
            by_kind.setdefault(status.subject_kind, []).append(status)
        outcomes: list[PushOutcome] = []
        for kind, items in by_kind.items():
            for start in range(0, len(items), self.batch_size):
                outcomes += self._reconcile_group(kind, items[start : start + self.batch_size])
        self._note_outcomes(outcomes)
        return self._report(outcomes, before, started)

    def health(self) -> ConnectorHealth:
        """Authenticate, read /limits and report the API allowance."""
        try:
            response = self._call("GET", "limits", kind="health")
        except ConnectorError as exc:
            return self._health(False, str(exc), self._limit_info)
        if response.status_code != 200:
            detail = f"limits: HTTP {response.status_code} {self.error_detail(response)}"
            return self._health(False, detail, self._limit_info)
        daily = response.json().get("DailyApiRequests", {})
        extra = {
            **self._limit_info,
            "daily_api_max": daily.get("Max"),
            "daily_api_remaining": daily.get("Remaining"),
        }
        return self._health(True, "limits answered", extra)

    # -- work --------------------------------------------------------------------------

    def _push_one(self, status: FlagStatus) -> PushOutcome:
        if status.subject_kind not in self.sobjects:
            return self._unconfigured(status)
        sobject = self.sobjects[status.subject_kind]
        field = self.external_ids[status.subject_kind]
        path = f"sobjects/{sobject}/{field}/{quote(status.record_key, safe='')}"
        try:
            response = self._call(
                "PATCH",
                path,
                kind="update",
                params={"updateOnly": "true"},
                json=self._values(status),
            )
        except ConnectorError as exc:
            return outcome_from_error(status, exc)
        code = response.status_code
        if code == 201:
            # Should be impossible with updateOnly; never report a created record as delivered.
            return PushOutcome(
                status, Delivery.FAILED, "Salesforce created a record despite updateOnly"
            )
        if code == 300:
            return PushOutcome(status, Delivery.FAILED, f"several {sobject} records share {field}")
        result = classify_status(code)
        detail = (
            f"HTTP {code}"
            if result is Delivery.DELIVERED
            else f"HTTP {code} {self.error_detail(response)}"
        )
        return PushOutcome(status, result, detail)

    def _reconcile_group(self, kind: str, group: list[FlagStatus]) -> list[PushOutcome]:
        if kind not in self.sobjects:
            return [self._unconfigured(status) for status in group]
        try:
            ids = self._find_ids(kind, [s.record_key for s in group])
        except ConnectorError as exc:
            return [outcome_from_error(status, exc) for status in group]
        sobject, field = self.sobjects[kind], self.external_ids[kind]
        outcomes: dict[int, PushOutcome] = {}
        records, positions = [], []
        for index, status in enumerate(group):
            found = ids.get(status.record_key.casefold(), [])
            if not found:
                outcomes[index] = PushOutcome(
                    status, Delivery.NOT_FOUND, f"no {sobject} with {field} = this key"
                )
            elif len(found) > 1:
                outcomes[index] = PushOutcome(
                    status, Delivery.FAILED, f"{len(found)} {sobject} records share {field}"
                )
            else:
                records.append(
                    {"attributes": {"type": sobject}, "id": found[0], **self._values(status)}
                )
                positions.append(index)
        if records:
            updated = self._update_collection([group[i] for i in positions], records)
            outcomes.update(zip(positions, updated, strict=True))
        return [outcomes[i] for i in range(len(group))]

    def _find_ids(self, kind: str, keys: list[str]) -> dict[str, list[str]]:
        """Map casefolded external ID values to record Ids (matching is case-insensitive)."""
        sobject, field = self.sobjects[kind], self.external_ids[kind]
        ids: dict[str, list[str]] = {}
        for literals in _in_lists(keys):
            # Values are escaped by soql_literal; names were checked as identifiers at start-up.
            soql = f"SELECT Id, {field} FROM {sobject} WHERE {field} IN ({literals})"  # noqa: S608
            response = self._call("GET", "query", kind="query", params={"q": soql})
            while True:
                if response.status_code != 200:
                    raise self._error("query", response)
                page = response.json()
                for record in page.get("records", []):
                    ids.setdefault(str(record.get(field, "")).casefold(), []).append(record["Id"])
                next_url = page.get("nextRecordsUrl")
                if page.get("done", True) or not next_url:
                    break
                response = self._call("GET", next_url, kind="query")
        return ids

    def _update_collection(
        self, statuses: list[FlagStatus], records: list[dict[str, Any]]
    ) -> list[PushOutcome]:
        """Update records by Id, 200 at most, each succeeding or failing on its own."""
        try:
            response = self._call(
                "PATCH",
                "composite/sobjects",
                kind="collection",
                json={"allOrNone": False, "records": records},
            )
            if response.status_code != 200:
                raise self._error("collection update", response)
            results = response.json()
            if not isinstance(results, list) or len(results) != len(records):
                raise TransientError("collection update answered with the wrong number of results")
        except ConnectorError as exc:
            return [outcome_from_error(status, exc) for status in statuses]
        return [self._record_outcome(s, r) for s, r in zip(statuses, results, strict=True)]

    def _record_outcome(self, status: FlagStatus, result: Mapping[str, Any]) -> PushOutcome:
        if result.get("success"):
            return PushOutcome(status, Delivery.DELIVERED, "updated")
        errors = result.get("errors") or [{}]
        code = str(errors[0].get("statusCode", ""))
        detail = f"{code}: {errors[0].get('message', '')}"[:300]
        if code in GONE_CODES:
            return PushOutcome(status, Delivery.NOT_FOUND, detail)
        if code in TRANSIENT_CODES:
            return PushOutcome(status, Delivery.RETRY, detail)
        return PushOutcome(status, Delivery.FAILED, detail)

    def _error(self, what: str, response: requests.Response) -> ConnectorError:
        detail = f"{what}: HTTP {response.status_code} {self.error_detail(response)}"
        if classify_status(response.status_code) is Delivery.RETRY:
            return TransientError(detail)
        return ConnectorError(detail)

    def _unconfigured(self, status: FlagStatus) -> PushOutcome:
        return PushOutcome(
            status, Delivery.FAILED, f"no sObject configured for {status.subject_kind} subjects"
        )

    def _values(self, status: FlagStatus) -> dict[str, Any]:
        f = self.fields
        return {
            f["level"]: self.level_values[status.level],
            # Multi-select picklists take values separated by semicolons.
            f["categories"]: ";".join(status.categories) or None,
            f["restrictions"]: ";".join(status.restrictions) or None,
            f["review_due"]: status.review_due.isoformat() if status.review_due else None,
            f["appeal_pending"]: status.appeal_pending,
            f["version"]: status.version,
            f["updated_at"]: iso_utc(status.updated_at),
        }


def soql_literal(value: str) -> str:
    """A SOQL string literal: backslash and single quote escaped with a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in_lists(keys: list[str]) -> Iterable[str]:
    """Comma-separated SOQL literals, split so that no query URL grows too long."""
    batch: list[str] = []
    size = 0
    for key in dict.fromkeys(keys):
        literal = soql_literal(key)
        if batch and size + len(literal) > MAX_IN_LIST_CHARS:
            yield ",".join(batch)
            batch, size = [], 0
        batch.append(literal)
        size += len(literal) + 1
    if batch:
        yield ",".join(batch)
