"""Salesforce connector: updates records by external ID through the REST API, never creating any."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

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
)
from connectors.oauth import TokenSource, fetch_token, send_authorized

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
# sObject Collections take at most 200 records per call, and one Composite request carries
# at most 5 collection or query subrequests of its 25 ("Composite", REST API Developer
# Guide), so 1,000 records travel in one request.
MAX_BATCH = 200
MAX_COMPOSITE_PARTS = 5
# Composite requests of collection updates per push: the Id lookups before them (five
# queries of up to 2,000 external IDs each per request) are one more for records whose Id is
# not yet remembered, unless records are written by external ID.
WRITE_REQUESTS_PER_PUSH = 10
# The message of the org's validation rule that refuses to lower Fw_Status_Version__c.
STALE_VERSION_ERROR = "FOREWARN_STALE_VERSION"
# The message of the org's validation rule that refuses a record the integration user would
# create (write_by = "external_id"): an upsert that finds no record inserts one otherwise.
NO_RECORD_ERROR = "FOREWARN_NO_RECORD"
WRITE_MODES = ("id", "external_id")
# updateOnly on the external-ID upsert arrived in API version 61.0 (Summer '24).
MIN_API_VERSION = 61
# Id lookups travel as query subrequests in a Composite request's body, which Salesforce
# recommends over GET /query for long statements: a REST call's URI and headers may hold
# only 16,384 bytes ("Maximum number of rows returned by SOQL queries over the REST API",
# Salesforce Help 000386264), a SOQL statement 100,000 characters ("SOQL and SOSL Limits",
# Salesforce Developer Limits). A query answers at most 2,000 rows a batch (the same
# article), so a query of at most 2,000 keys needs no second batch; five such queries make
# one request look up 10,000 records.
MAX_KEYS_PER_QUERY = 2000
MAX_IN_LIST_CHARS = 90_000
JWT_LIFETIME = 180
# Per-record error codes that mean the record is gone rather than the update refused: an
# update by Id of a record deleted (ENTITY_IS_DELETED) or merged away, or an Id the org no
# longer knows (INVALID_CROSS_REFERENCE_KEY, NOT_FOUND). sObject Collections answer them in
# each record's `errors[].statusCode` ("Status Codes and Error Responses", REST API
# Developer Guide; the StatusCode values are listed in the SOAP API Developer Guide). For a
# remembered Id they mean the Id is stale, not that the record is missing: it is looked up
# again by external ID.
GONE_CODES = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"})
TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})


class SalesforceConnector(Connector):
    """Pushes flag statuses into existing Salesforce records addressed by an external ID field.

    Record Ids are found by SOQL on the external ID and remembered in `record_ids` (the
    sidecar's table, so they outlive the worker), then updated by Id with sObject
    Collections inside one Composite request: updating by Id cannot create a record. A
    remembered Id the org answers as deleted or merged is forgotten and the record looked
    up again in the same push. An older status never overwrites a newer one because the
    org refuses it: a validation rule on each object rejects any update that lowers
    Fw_Status_Version__c (the README gives the rule), the per-record guard that works
    inside collections, where conditional request headers do not. With `write_by =
    "external_id"` records are upserted by external ID instead, with no lookup, and a
    second rule refuses the records that would otherwise be created. Settings are listed
    in the README.
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
        overrides = s.overrides("fields", STATUS_FIELDS + OPTIONAL_FIELDS, identifiers=True)
        self.fields = DEFAULT_FIELDS | {f: overrides[f] for f in STATUS_FIELDS if f in overrides}
        self.level_values = {**DEFAULT_LEVEL_VALUES, **s.overrides("level_values", LEVELS)}
        self.batch_size = s.integer("batch_size", MAX_BATCH, minimum=1, maximum=MAX_BATCH)
        self.request_limit_backoff = s.number("request_limit_backoff", 600.0, minimum=0.0)
        self.stale_version_error = s.text("stale_version_error", STALE_VERSION_ERROR)
        self.write_by = s.text("write_by", "id", choices=WRITE_MODES)
        # Off unless named, so an object without the field keeps working.
        self.optional_fields = {f: overrides.get(f) for f in OPTIONAL_FIELDS} | {
            "adjustments": s.optional_name("adjustments_field")
        }
        self.no_record_error = s.text("no_record_error", NO_RECORD_ERROR)
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

    @property
    def push_size(self) -> int:
        return self.batch_size * MAX_COMPOSITE_PARTS * WRITE_REQUESTS_PER_PUSH

    def push(self, statuses: Sequence[FlagStatus]) -> list[PushOutcome]:
        """Update each status's record by Id, 1,000 records per Composite request."""
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
        if self.write_by == "external_id":
            problem = self._missing_no_record_rule()
            if problem:
                return self._health(False, problem, extra)
            return self._health(True, "limits answered; Forewarn_never_creates is active", extra)
        return self._health(True, "limits answered", extra)

    def _missing_no_record_rule(self) -> str:
        """What stops writing by external ID safely: an object without the rule, or "".

        Reads the org's active validation rules through the Tooling API's ValidationRule
        object (Tooling API Developer Guide, "ValidationRule": Active, ErrorMessage and
        EntityDefinition can be queried), which the integration user may read with "View
        Setup and Configuration". Nothing is written.
        """
        names = ",".join(soql_literal(sobject) for sobject in sorted(set(self.sobjects.values())))
        soql = (
            "SELECT EntityDefinition.QualifiedApiName, ValidationName, ErrorMessage "  # noqa: S608
            f"FROM ValidationRule WHERE Active = true "
            f"AND EntityDefinition.QualifiedApiName IN ({names})"
        )
        try:
            response = self._call("GET", f"tooling/query?{urlencode({'q': soql})}", kind="health")
        except ConnectorError as exc:
            return f"validation rules: {exc}"
        if response.status_code != 200:
            return (
                f"cannot read the org's validation rules (the integration user needs View Setup "
                f"and Configuration): HTTP {response.status_code} {self.error_detail(response)}"
            )
        guarded = {
            str((record.get("EntityDefinition") or {}).get("QualifiedApiName", ""))
            for record in response.json().get("records", [])
            if str(record.get("ErrorMessage") or "").startswith(self.no_record_error)
        }
        missing = sorted(set(self.sobjects.values()) - guarded)
        if missing:
            return (
                f'write_by = "external_id" needs the Forewarn_never_creates rule: '
                f"{', '.join(missing)}: no active validation rule whose message starts "
                f"{self.no_record_error}"
            )
        return ""

    # -- delivery ----------------------------------------------------------------------

    def _deliver(self, statuses: list[FlagStatus]) -> list[PushOutcome]:
        outcomes: dict[int, PushOutcome] = {}
        by_kind: dict[str, list[int]] = {}
        for index, status in enumerate(statuses):
            if status.subject_kind in self.sobjects:
                by_kind.setdefault(status.subject_kind, []).append(index)
            else:
                outcomes[index] = self._unconfigured(status)
        if self.write_by == "external_id":
            outcomes.update(self._upsert(statuses, by_kind))
            # Left over only when an upsert showed the org lacks the rule refusing creation.
            by_kind = {k: [i for i in m if i not in outcomes] for k, m in by_kind.items()}
        # Records whose Id is remembered go straight into the collections; the rest are
        # looked up first, in batches.
        cached: dict[int, str] = {}
        for kind, members in by_kind.items():
            known = self.record_ids.known(kind, [statuses[i].record_key for i in members])
            cached |= {i: known[s] for i in members if (s := statuses[i].record_key) in known}
        unknown = [i for members in by_kind.values() for i in members if i not in cached]
        found = self._look_up(statuses, unknown, outcomes)
        outcomes |= self._update(statuses, [*cached.items(), *found.items()])
        # A remembered Id whose record was deleted or merged since: drop it, and look the
        # record up again and write it in this same push.
        stale = {i: cached[i] for i in cached if outcomes[i].result is Delivery.NOT_FOUND}
        if stale:
            self._grouped(statuses, stale, self.record_ids.forget)
            again = self._look_up(statuses, list(stale), outcomes)
            outcomes |= self._update(statuses, list(again.items()))
            found |= again
        gone = {i for i in found if outcomes[i].result is Delivery.NOT_FOUND}
        for index in gone:
            # The query found the record a moment ago: it went while being written, so the
            # outbox tries again (and looks it up again) rather than calling it missing.
            outcomes[index] = PushOutcome(
                statuses[index],
                Delivery.RETRY,
                f"{outcomes[index].detail} (deleted or merged after it was looked up)",
            )
        learned = {i: record_id for i, record_id in found.items() if i not in gone}
        self._grouped(statuses, learned, self.record_ids.learn)
        return [outcomes[i] for i in range(len(statuses))]

    def _grouped(
        self,
        statuses: list[FlagStatus],
        ids: Mapping[int, str],
        apply: Callable[[str, Mapping[str, str]], None],
    ) -> None:
        """Hand `apply` the record Ids of `ids` (by status index), one subject kind at a time."""
        by_kind: dict[str, dict[str, str]] = {}
        for index, record_id in ids.items():
            status = statuses[index]
            by_kind.setdefault(status.subject_kind, {})[status.record_key] = record_id
        for kind, keyed in by_kind.items():
            apply(kind, keyed)

    def _look_up(
        self, statuses: list[FlagStatus], indexes: list[int], outcomes: dict[int, PushOutcome]
    ) -> dict[int, str]:
        """Find the record Id of each status in `indexes` by external ID.

        Returns the Id of each that one record holds; the outcome of every other (no record,
        several, or a lookup that failed) goes into `outcomes`.
        """
        by_kind: dict[str, list[int]] = {}
        for index in indexes:
            by_kind.setdefault(statuses[index].subject_kind, []).append(index)
        ids: dict[int, str] = {}
        for kind, members in by_kind.items():
            try:
                found = self._find_ids(kind, [statuses[i].record_key for i in members])
            except ConnectorError as exc:
                outcomes.update({i: outcome_from_error(statuses[i], exc) for i in members})
                continue
            sobject, field = self.sobjects[kind], self.external_ids[kind]
            for index in members:
                # Text external IDs match case-blind, as Salesforce matches them.
                held = found.get(statuses[index].record_key.casefold(), [])
                if not held:
                    outcomes[index] = PushOutcome(
                        statuses[index], Delivery.NOT_FOUND, f"no {sobject} with {field} = this key"
                    )
                elif len(held) > 1:
                    outcomes[index] = PushOutcome(
                        statuses[index],
                        Delivery.FAILED,
                        f"{len(held)} {sobject} records share {field}",
                    )
                else:
                    ids[index] = held[0]
        return ids

    def _find_ids(self, kind: str, keys: list[str]) -> dict[str, list[str]]:
        """The record Ids of `keys` by casefolded external ID, five SOQL queries per request."""
        sobject, field = self.sobjects[kind], self.external_ids[kind]
        lists = list(_in_lists(keys))
        found: dict[str, list[str]] = {}
        for start in range(0, len(lists), MAX_COMPOSITE_PARTS):
            parts = []
            for n, literals in enumerate(lists[start : start + MAX_COMPOSITE_PARTS]):
                # Values are escaped by soql_literal; names were checked as identifiers.
                soql = f"SELECT Id, {field} FROM {sobject} WHERE {field} IN ({literals})"  # noqa: S608
                url = f"/services/data/{self.api_version}/query?{urlencode({'q': soql})}"
                parts.append({"method": "GET", "url": url, "referenceId": f"q{n}"})
            for answer in self._composite(parts, kind="query"):
                page = answer.get("body")
                if answer.get("httpStatusCode") != 200 or not isinstance(page, dict):
                    raise self._part_error("query", answer)
                while True:
                    for record in page.get("records", []):
                        held = found.setdefault(str(record.get(field, "")).casefold(), [])
                        if record["Id"] not in held:
                            held.append(record["Id"])
                    next_url = page.get("nextRecordsUrl")
                    if page.get("done", True) or not next_url:
                        break
                    response = self._call("GET", next_url, kind="query")
                    if response.status_code != 200:
                        raise self._error("query", response)
                    page = response.json()
        return found

    def _update(
        self, statuses: list[FlagStatus], writes: list[tuple[int, str]]
    ) -> dict[int, PushOutcome]:
        """Update records by Id: 200 per collection, five collections per Composite request."""
        outcomes: dict[int, PushOutcome] = {}
        groups = [writes[i : i + self.batch_size] for i in range(0, len(writes), self.batch_size)]
        for start in range(0, len(groups), MAX_COMPOSITE_PARTS):
            batch = groups[start : start + MAX_COMPOSITE_PARTS]
            parts = [
                {
                    "method": "PATCH",
                    "url": f"/services/data/{self.api_version}/composite/sobjects",
                    "referenceId": f"c{n}",
                    "body": {
                        "allOrNone": False,
                        "records": [
                            {
                                "attributes": {"type": self.sobjects[statuses[i].subject_kind]},
                                "id": record_id,
                                **self._values(statuses[i]),
                            }
                            for i, record_id in group
                        ],
                    },
                }
                for n, group in enumerate(batch)
            ]
            try:
                answers = self._composite(parts, kind="collection")
            except ConnectorError as exc:
                for group in batch:
                    outcomes.update({i: outcome_from_error(statuses[i], exc) for i, _ in group})
                continue
            for group, answer in zip(batch, answers, strict=True):
                outcomes.update(self._collection_outcomes(statuses, group, answer))
        return outcomes

    def _upsert(
        self, statuses: list[FlagStatus], by_kind: Mapping[str, list[int]]
    ) -> dict[int, PushOutcome]:
        """Write by external ID with no lookup: 200 per collection, five per Composite request.

        "Upsert Records Using sObject Collections" (REST API Developer Guide):
        `PATCH /composite/sobjects/{SObject}/{ExternalIdField}` takes up to 200 records of
        one object, each addressed by its external ID value, and answers an UpsertResult per
        record, in order, with `created`. Unlike the single-record upsert it has no
        updateOnly, so the org's Forewarn_never_creates validation rule refuses the insert
        an unknown key would make (the README gives it); the version rule guards updates as
        it does updates by Id. Should a result still say `created`, the org lacks that rule:
        the connector says so and writes by Id from then on.
        """
        groups = [
            (kind, members[i : i + self.batch_size])
            for kind, members in by_kind.items()
            for i in range(0, len(members), self.batch_size)
        ]
        outcomes: dict[int, PushOutcome] = {}
        for start in range(0, len(groups), MAX_COMPOSITE_PARTS):
            if self.write_by != "external_id":
                break
            batch = groups[start : start + MAX_COMPOSITE_PARTS]
            parts = []
            for n, (kind, group) in enumerate(batch):
                sobject, field = self.sobjects[kind], self.external_ids[kind]
                records = [
                    {
                        "attributes": {"type": sobject},
                        field: statuses[i].record_key,
                        **self._values(statuses[i]),
                    }
                    for i in group
                ]
                parts.append(
                    {
                        "method": "PATCH",
                        "url": f"/services/data/{self.api_version}/composite/sobjects/"
                        f"{sobject}/{field}",
                        "referenceId": f"u{n}",
                        "body": {"allOrNone": False, "records": records},
                    }
                )
            try:
                answers = self._composite(parts, kind="collection")
            except ConnectorError as exc:
                for _, group in batch:
                    outcomes.update({i: outcome_from_error(statuses[i], exc) for i in group})
                continue
            for (_, group), answer in zip(batch, answers, strict=True):
                pairs = [(i, "") for i in group]
                outcomes.update(self._collection_outcomes(statuses, pairs, answer))
        return outcomes

    def _created(self, status: FlagStatus) -> PushOutcome:
        """An upsert made a record: the org lacks the rule; write by Id from now on."""
        self.write_by = "id"
        detail = (
            f"the org created a {self.sobjects[status.subject_kind]} record for this key: "
            f"add the Forewarn_never_creates validation rule (its message starting "
            f'{self.no_record_error}) before using write_by = "external_id"'
        )
        self.note_error(detail)
        return PushOutcome(status, Delivery.FAILED, detail)

    def _collection_outcomes(
        self, statuses: list[FlagStatus], group: list[tuple[int, str]], answer: Mapping[str, Any]
    ) -> dict[int, PushOutcome]:
        results = answer.get("body")
        if (
            answer.get("httpStatusCode") != 200
            or not isinstance(results, list)
            or len(results) != len(group)
        ):
            error = self._part_error("collection update", answer)
            return {i: outcome_from_error(statuses[i], error) for i, _ in group}
        return {
            index: self._record_outcome(statuses[index], result)
            for (index, _), result in zip(group, results, strict=True)
        }

    def _composite(self, parts: list[dict[str, Any]], *, kind: str) -> list[dict[str, Any]]:
        """POST one Composite request; return its subrequests' answers in order."""
        response = self._call(
            "POST", "composite", kind=kind, json={"allOrNone": False, "compositeRequest": parts}
        )
        if response.status_code != 200:
            raise self._error(kind, response)
        try:
            answers = response.json()["compositeResponse"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError(f"{kind}: unreadable Composite answer") from exc
        by_reference = {a.get("referenceId"): a for a in answers if isinstance(a, dict)}
        missing = {"httpStatusCode": 0, "body": [{"errorCode": "NO_ANSWER", "message": ""}]}
        return [by_reference.get(part["referenceId"], missing) for part in parts]

    def _record_outcome(self, status: FlagStatus, result: Mapping[str, Any]) -> PushOutcome:
        if result.get("success"):
            if result.get("created"):
                return self._created(status)
            return PushOutcome(status, Delivery.DELIVERED, "updated")
        errors = result.get("errors") or [{}]
        code = str(errors[0].get("statusCode", ""))
        message = str(errors[0].get("message", ""))
        detail = f"{code}: {message}"[:300]
        if code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and self.stale_version_error in message:
            return PushOutcome(
                status, Delivery.SUPERSEDED, "the record holds a newer status version"
            )
        if code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and self.no_record_error in message:
            return PushOutcome(status, Delivery.NOT_FOUND, "no record has this external ID")
        if code in GONE_CODES:
            return PushOutcome(status, Delivery.NOT_FOUND, detail)
        if code in TRANSIENT_CODES:
            return PushOutcome(status, Delivery.RETRY, detail)
        return PushOutcome(status, Delivery.FAILED, detail)

    def _part_error(self, what: str, answer: Mapping[str, Any]) -> ConnectorError:
        code = int(answer.get("httpStatusCode") or 0)
        body = answer.get("body")
        first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
        detail = f"{what}: HTTP {code} {first.get('errorCode', '')}: {first.get('message', '')}"
        if code == 0 or classify_status(code) is Delivery.RETRY:
            return TransientError(detail[:300])
        return ConnectorError(detail[:300])

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
        } | optional_values(status, self.optional_fields)


def soql_literal(value: str) -> str:
    """A SOQL string literal: backslash and single quote escaped with a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in_lists(keys: list[str]) -> Iterable[str]:
    """Comma-separated SOQL literals, split so that no query grows too long or answers more
    rows than one batch holds."""
    batch: list[str] = []
    size = 0
    for key in dict.fromkeys(keys):
        literal = soql_literal(key)
        if batch and (size + len(literal) > MAX_IN_LIST_CHARS or len(batch) == MAX_KEYS_PER_QUERY):
            yield ",".join(batch)
            batch, size = [], 0
        batch.append(literal)
        size += len(literal) + 1
    if batch:
        yield ",".join(batch)
