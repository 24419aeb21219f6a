"""A fake Salesforce org: OAuth token endpoint, external-ID upsert, SOQL lookups, collections."""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

from .server import FakeServer, Recorded, Reply, TokenBook

VERSION_PREFIX = re.compile(r"^/services/data/v(\d+)\.0/")
SOBJECTS = {"customer": ("Contact", "Fw_CrmRef__c"), "property": ("Property__c", "Fw_Uprn__c")}
FIELDS = {
    "Fw_Level__c",
    "Fw_Categories__c",
    "Fw_Restrictions__c",
    "Fw_Review_Due__c",
    "Fw_Appeal_Pending__c",
    "Fw_Appeal_Handler__c",  # optional: written only where the connector's settings name it
    "Fw_Status_Version__c",
    "Fw_Status_Updated__c",
}
LEVELS = {"None": "none", "Amber": "amber", "Red": "red"}
# "Maximum number of rows returned by SOQL queries over the REST API" (Salesforce Help
# 000386264): results come in batches of at most 2,000 rows, and a REST call's URI and
# headers may hold at most 16,384 bytes (414 beyond); "SOQL and SOSL Limits" (Salesforce
# Developer Limits): a SOQL statement holds at most 100,000 characters.
QUERY_BATCH = 2000
MAX_URI = 16384
MAX_SOQL = 100_000
QUERY = re.compile(r"^SELECT Id, (\w+) FROM (\w+) WHERE (\w+) IN \((.*)\)$", re.S)
LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
REQUEST_LIMIT_EXCEEDED = [
    {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
]
CLIENT_SECRET = "salesforce-test-secret"
STALE_CODE = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
STALE_MESSAGE = "FOREWARN_STALE_VERSION: a newer flag status is already held"
NO_RECORD_MESSAGE = "FOREWARN_NO_RECORD: Forewarn updates existing records only"
RULES_QUERY = re.compile(
    r"^SELECT EntityDefinition\.QualifiedApiName, ValidationName, ErrorMessage FROM ValidationRule"
    r" WHERE Active = true AND EntityDefinition\.QualifiedApiName IN \((.*)\)$"
)
# What an update by Id of a record that is gone answers, by error code.
GONE_MESSAGES = {
    "ENTITY_IS_DELETED": "entity is deleted",
    "INVALID_CROSS_REFERENCE_KEY": "invalid cross reference id",
    "NOT_FOUND": "The requested resource does not exist",
}
COLLECTION_UPSERT = re.compile(r"^composite/sobjects/(\w+)/(\w+)$")


def sf_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, [{"message": message, "errorCode": code}])


def too_many_records() -> Reply:
    """sObject Collections take at most 200 records per request."""
    return sf_error(
        400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records"
    )


class FakeSalesforce(FakeServer):
    """A Salesforce org with Contacts and Property__c records keyed by external ID fields.

    The token endpoint (client credentials, or JWT bearer when `jwt_public_key` is given)
    returns no expires_in, like Salesforce; `expire_tokens()` makes the API answer
    INVALID_SESSION_ID. The single-record upsert honours updateOnly and otherwise creates
    (recorded in `created`), as the sObject Collections upsert by external ID does unless
    the org has the README's rule refusing records the integration would create
    (`no_create_rule`). Every API response carries Sforce-Limit-Info.
    """

    secret_env = "FW_TEST_SALESFORCE_SECRET"

    def __init__(
        self,
        client_id: str = "forewarn-connected-app",
        client_secret: str = CLIENT_SECRET,
        jwt_public_key: str | None = None,
        username: str = "integration@council.example",
        api_limit: int = 5000,
        version_rule: bool = True,
        no_create_rule: bool = True,
        adjustments_field: str | None = None,
    ) -> None:
        super().__init__()
        # The objects' fields: the status fields, and an adjustments field if the org added one.
        self.fields = FIELDS | ({adjustments_field} if adjustments_field else set())
        self.client_id, self.client_secret = client_id, client_secret
        self.jwt_public_key, self.username = jwt_public_key, username
        self.tokens = TokenBook()
        self.api_limit, self.api_usage = api_limit, 0
        self.records: dict[str, dict[str, dict[str, Any]]] = {s: {} for s, _ in SOBJECTS.values()}
        # sObject -> casefolded external ID -> record Ids, kept in step with `records`.
        self._index: dict[str, dict[str, list[str]]] = {s: {} for s, _ in SOBJECTS.values()}
        self.created: list[tuple[str, str]] = []
        self.collection_sizes: list[int] = []
        # The org's validation rule refusing an update that lowers Fw_Status_Version__c.
        self.version_rule = version_rule
        # The org's validation rule refusing an insert by the integration user.
        self.no_create_rule = no_create_rule
        self.composite_sizes: list[int] = []
        self._record_faults: dict[tuple[str, str], tuple[str, str]] = {}
        # Ids of deleted or merged records, with the error code an update of one answers.
        self._gone: dict[str, str] = {}
        # Query locators: the rows of a query result not yet fetched, and its total size.
        self._cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self._data_lock = threading.Lock()

    @property
    def environ(self) -> dict[str, str]:
        return {self.secret_env: self.client_secret}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Valid connector settings pointing at this fake (quick retries for tests)."""
        settings: dict[str, Any] = {
            "instance_url": self.url,
            "client_id": self.client_id,
            "client_secret_env": self.secret_env,
            "api_version": "v62.0",
            "sobject": {kind: sobject for kind, (sobject, _) in SOBJECTS.items()},
            "external_id_field": {kind: field for kind, (_, field) in SOBJECTS.items()},
            "connect_timeout": 1.0,
            "read_timeout": 2.0,
            "backoff_base": 0.01,
        }
        settings.update(overrides)
        return settings

    def seed(self, kind: str, *keys: str) -> None:
        sobject, field = SOBJECTS[kind]
        with self._data_lock:
            for key in keys:
                if self._find(sobject, field, key):
                    continue
                self._insert(sobject, field, key, {})

    def duplicate(self, kind: str, *keys: str) -> None:
        """A second record holding each key, as a data import without a unique field makes."""
        sobject, field = SOBJECTS[kind]
        with self._data_lock:
            for key in keys:
                self._insert(sobject, field, key, {})

    def status_of(self, kind: str, key: str) -> dict[str, Any] | None:
        sobject, field = SOBJECTS[kind]
        found = self._find(sobject, field, key)
        if len(found) != 1 or "Fw_Level__c" not in found[0]:
            return None
        record = found[0]
        return {
            "level": LEVELS[record["Fw_Level__c"]],
            "categories": [c for c in (record.get("Fw_Categories__c") or "").split(";") if c],
            "restrictions": [r for r in (record.get("Fw_Restrictions__c") or "").split(";") if r],
            "review_due": record.get("Fw_Review_Due__c"),
            "appeal_pending": record.get("Fw_Appeal_Pending__c"),
            "version": record.get("Fw_Status_Version__c"),
            "updated_at": record.get("Fw_Status_Updated__c"),
        }

    def adjustments_of(self, kind: str, key: str, field: str) -> list[str] | None:
        """The adjustments a record's `field` holds, one a line; None when never written."""
        sobject, external_id = SOBJECTS[kind]
        found = self._find(sobject, external_id, key)
        if len(found) != 1 or field not in found[0]:
            return None
        return (found[0][field] or "").splitlines()

    def fail_record(
        self,
        kind: str,
        key: str,
        code: str = "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        message: str = "Validation rule failed",
    ) -> None:
        """Make every write to one record fail with a per-record error."""
        self._record_faults[(SOBJECTS[kind][0], key)] = (code, message)

    def delete(self, kind: str, key: str, code: str = "ENTITY_IS_DELETED") -> None:
        """Delete the key's records (or merge them away): an update by Id then fails with `code`."""
        sobject, _ = SOBJECTS[kind]
        with self._data_lock:
            for record_id in self._index[sobject].pop(key.casefold(), []):
                del self.records[sobject][record_id]
                self._gone[record_id] = code

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    # -- protocol ---------------------------------------------------------------------

    def _insert(self, sobject: str, field: str, key: str, values: dict[str, Any]) -> str:
        record_id = "003" + secrets.token_hex(6).upper()
        self.records[sobject][record_id] = {"Id": record_id, field: key, **values}
        self._index[sobject].setdefault(key.casefold(), []).append(record_id)
        return record_id

    def _find(self, sobject: str, field: str, key: str) -> list[dict[str, Any]]:
        # Text external IDs match case-insensitively unless marked case-sensitive.
        ids = self._index[sobject].get(key.casefold(), [])
        return [self.records[sobject][i] for i in ids]

    def handle(self, request: Recorded) -> Reply:
        if request.path == "/services/oauth2/token" and request.method == "POST":
            return self._token(request)
        if not self.tokens.valid(request.header("Authorization")):
            return Reply(401, INVALID_SESSION)
        reply = self._api(request)
        with self._data_lock:
            self.api_usage += 1
            reply.headers["Sforce-Limit-Info"] = f"api-usage={self.api_usage}/{self.api_limit}"
        return reply

    def _token(self, request: Recorded) -> Reply:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if (
                form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret
            ):
                return Reply(
                    400,
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                )
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" and self.jwt_public_key:
            try:
                claims = jwt.decode(
                    form.get("assertion", ""),
                    self.jwt_public_key,
                    algorithms=["RS256"],
                    audience=self.url,
                )
            except jwt.PyJWTError as exc:
                return Reply(400, {"error": "invalid_grant", "error_description": str(exc)})
            if claims.get("iss") != self.client_id or claims.get("sub") != self.username:
                return Reply(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "user hasn't approved this consumer",
                    },
                )
        else:
            return Reply(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        return Reply(
            200,
            {
                "access_token": self.tokens.issue(7200),
                "instance_url": self.url,
                "id": f"{self.url}/id/00D000000000001/005000000000001",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": secrets.token_urlsafe(16),
            },
        )

    def _api(self, request: Recorded) -> Reply:
        match = VERSION_PREFIX.match(request.path)
        if not match:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        resource = request.path[match.end() :]
        version = int(match[1])
        if resource == "limits" and request.method == "GET":
            return Reply(
                200,
                {
                    "DailyApiRequests": {
                        "Max": self.api_limit,
                        "Remaining": self.api_limit - self.api_usage,
                    }
                },
            )
        if resource == "tooling/query" and request.method == "GET":
            return self._validation_rules(request.query.get("q", [""])[0])
        if len(request.target) > MAX_URI:
            return sf_error(414, "URI_TOO_LONG", "URI Too Long")
        if resource.startswith("query/") and request.method == "GET":
            return self._more(resource.removeprefix("query/"))
        if resource == "query" and request.method == "GET":
            return self._query(request.query.get("q", [""])[0])
        if resource == "composite/sobjects" and request.method == "PATCH":
            return self._collection_update(request.json())
        upsert = COLLECTION_UPSERT.match(resource)
        if upsert and request.method == "PATCH":
            return self._collection_upsert(upsert[1], upsert[2], request.json())
        if resource == "composite" and request.method == "POST":
            return self._composite(request.json(), version)
        # Split before decoding: an external ID may contain an encoded slash.
        raw = urlsplit(request.target).path[match.end() :]
        parts = [unquote(p) for p in raw.split("/")]
        if len(parts) == 4 and parts[0] == "sobjects" and request.method == "PATCH":
            update_only = version >= 61 and request.query.get("updateOnly") == ["true"]
            return self._upsert(parts[1], parts[2], parts[3], request.json(), update_only)
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def _check_fields(self, sobject: str, values: dict[str, Any]) -> Reply | None:
        unknown = sorted(set(values) - self.fields - {"attributes", "id", "Id"})
        if unknown:
            return sf_error(
                400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {sobject}"
            )
        if values.get("Fw_Level__c") not in LEVELS:
            return sf_error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "bad value for restricted picklist field: Fw_Level__c",
            )
        return None

    def _upsert(
        self, sobject: str, field: str, key: str, values: dict[str, Any], update_only: bool
    ) -> Reply:
        if sobject not in self.records or (sobject, field) not in SOBJECTS.values():
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        problem = self._check_fields(sobject, values)
        if problem:
            return problem
        with self._data_lock:
            found = self._find(sobject, field, key)
            if (sobject, key) in self._record_faults:
                code, message = self._record_faults[(sobject, key)]
                return sf_error(400, code, message)
            if len(found) > 1:
                return Reply(
                    300, [f"/services/data/v62.0/sobjects/{sobject}/{r['Id']}" for r in found]
                )
            if not found:
                if update_only:
                    return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
                record_id = self._insert(sobject, field, key, values)
                self.created.append((sobject, key))
                return Reply(201, {"id": record_id, "success": True, "errors": [], "created": True})
            if self._stale(found[0], values):
                return sf_error(400, STALE_CODE, STALE_MESSAGE)
            found[0].update(values)
            return Reply(
                200, {"id": found[0]["Id"], "success": True, "errors": [], "created": False}
            )

    def _composite(self, body: dict[str, Any], version: int) -> Reply:
        """Composite: up to 25 subrequests, at most 5 of them queries or collections."""
        parts = body.get("compositeRequest") or []
        heavy = sum(
            1
            for p in parts
            if "/query" in p.get("url", "") or "composite/sobjects" in p.get("url", "")
        )
        if len(parts) > 25 or heavy > 5:
            return sf_error(400, "LIMIT_EXCEEDED", "too many subrequests in one Composite request")
        self.composite_sizes.append(len(parts))
        answers = []
        for part in parts:
            url = urlsplit(part.get("url", ""))
            match = VERSION_PREFIX.match(url.path)
            resource = url.path[match.end() :] if match else ""
            if resource == "query" and part.get("method") == "GET":
                reply = self._query(parse_qs(url.query).get("q", [""])[0])
            elif resource == "composite/sobjects" and part.get("method") == "PATCH":
                reply = self._collection_update(part.get("body") or {})
            elif COLLECTION_UPSERT.match(resource) and part.get("method") == "PATCH":
                sobject, field = COLLECTION_UPSERT.match(resource).groups()
                reply = self._collection_upsert(sobject, field, part.get("body") or {})
            else:
                reply = sf_error(400, "INVALID_API_INPUT", f"unsupported subrequest {url.path}")
            answers.append(
                {
                    "body": reply.body,
                    "httpHeaders": {},
                    "httpStatusCode": reply.status,
                    "referenceId": part.get("referenceId"),
                }
            )
        return Reply(200, {"compositeResponse": answers})

    def _validation_rules(self, soql: str) -> Reply:
        """The Tooling API's ValidationRule records: the org's Forewarn rules that are on."""
        match = RULES_QUERY.match(soql)
        if not match:
            return sf_error(400, "MALFORMED_QUERY", f"unexpected query: {soql[:80]}")
        wanted = set(LITERAL.findall(match[1]))
        rules = [("Forewarn_status_never_older", STALE_MESSAGE, self.version_rule)]
        rules.append(("Forewarn_never_creates", NO_RECORD_MESSAGE, self.no_create_rule))
        records = [
            {
                "attributes": {"type": "ValidationRule"},
                "EntityDefinition": {
                    "attributes": {"type": "EntityDefinition"},
                    "QualifiedApiName": sobject,
                },
                "ValidationName": name,
                "ErrorMessage": message,
            }
            for sobject in sorted(wanted & set(self.records))
            for name, message, active in rules
            if active
        ]
        return Reply(
            200,
            {
                "size": len(records),
                "totalSize": len(records),
                "done": True,
                "records": records,
                "entityTypeName": "ValidationRule",
            },
        )

    def _stale(self, record: dict[str, Any], values: dict[str, Any]) -> bool:
        """The validation rule: PRIORVALUE(Fw_Status_Version__c) > Fw_Status_Version__c."""
        prior, new = record.get("Fw_Status_Version__c"), values.get("Fw_Status_Version__c")
        return self.version_rule and prior is not None and new is not None and prior > new

    def _query(self, soql: str) -> Reply:
        if len(soql) > MAX_SOQL:
            return sf_error(
                400,
                "MALFORMED_QUERY",
                f"SOQL statements cannot be longer than {MAX_SOQL} characters",
            )
        match = QUERY.match(soql)
        if not match or match[1] != match[3] or match[2] not in self.records:
            return sf_error(400, "MALFORMED_QUERY", f"unexpected query: {soql[:80]}")
        field, sobject = match[1], match[2]
        keys = [re.sub(r"\\(.)", r"\1", k) for k in LITERAL.findall(match[4])]
        with self._data_lock:
            found = [r for key in keys for r in self._find(sobject, field, key)]
        records = [
            {
                "attributes": {
                    "type": sobject,
                    "url": f"/services/data/v62.0/sobjects/{sobject}/{r['Id']}",
                },
                "Id": r["Id"],
                field: r[field],
            }
            for r in found
        ]
        return self._batch(records, len(records))

    def _batch(self, records: list[dict[str, Any]], total: int) -> Reply:
        """A query result's next batch of at most QUERY_BATCH rows, with a locator for more."""
        page = {"totalSize": total, "done": len(records) <= QUERY_BATCH}
        if not page["done"]:
            locator = f"01g{uuid.uuid4().hex[:15]}-{QUERY_BATCH}"
            with self._data_lock:
                self._cursors[locator] = (records[QUERY_BATCH:], total)
            page["nextRecordsUrl"] = f"/services/data/v62.0/query/{locator}"
        return Reply(200, page | {"records": records[:QUERY_BATCH]})

    def _more(self, locator: str) -> Reply:
        with self._data_lock:
            cursor = self._cursors.pop(locator, None)
        if cursor is None:
            return sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._batch(*cursor)

    def _collection_update(self, body: dict[str, Any]) -> Reply:
        records = body.get("records", [])
        if len(records) > 200:
            return too_many_records()
        self.collection_sizes.append(len(records))
        results = []
        for values in records:
            sobject = values.get("attributes", {}).get("type", "")
            record_id = values.get("id") or values.get("Id")
            fields = {k: v for k, v in values.items() if k not in ("attributes", "id", "Id")}
            problem = self._check_fields(sobject, fields) if sobject in self.records else None
            with self._data_lock:
                record = self.records.get(sobject, {}).get(record_id)
                key = record and next(
                    (record[f] for s, f in SOBJECTS.values() if s == sobject), None
                )
                if problem:
                    results.append(
                        _failure(problem.body[0]["errorCode"], problem.body[0]["message"])
                    )
                elif record is None:
                    code = self._gone.get(record_id, "INVALID_CROSS_REFERENCE_KEY")
                    results.append(_failure(code, GONE_MESSAGES[code]))
                elif (sobject, key) in self._record_faults:
                    results.append(_failure(*self._record_faults[(sobject, key)]))
                elif self._stale(record, fields):
                    results.append(_failure(STALE_CODE, STALE_MESSAGE))
                else:
                    record.update(fields)
                    results.append({"id": record_id, "success": True, "errors": []})
        return Reply(200, results)

    def _collection_upsert(self, sobject: str, field: str, body: dict[str, Any]) -> Reply:
        """sObject Collections upsert: up to 200 records of one type, by external ID value.

        Answers an UpsertResult per record, in order ({id, success, errors, created}); a key
        no record holds creates one unless `no_create_rule`, a key two records share fails.
        """
        if sobject not in self.records or (sobject, field) not in SOBJECTS.values():
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        records = body.get("records", [])
        if len(records) > 200:
            return too_many_records()
        if any(v.get("attributes", {}).get("type") != sobject for v in records):
            return sf_error(400, "INVALID_TYPE", f"every record must be of type {sobject}")
        if any("id" in v or "Id" in v for v in records):
            return sf_error(400, "INVALID_FIELD", "Only external ids are supported")
        self.collection_sizes.append(len(records))
        results = []
        for values in records:
            key = str(values.get(field) or "")
            fields = {k: v for k, v in values.items() if k not in ("attributes", field)}
            problem = self._check_fields(sobject, fields)
            with self._data_lock:
                found = self._find(sobject, field, key)
                if problem:
                    results.append(
                        _failure(problem.body[0]["errorCode"], problem.body[0]["message"])
                    )
                elif (sobject, key) in self._record_faults:
                    results.append(_failure(*self._record_faults[(sobject, key)]))
                elif len(found) > 1:
                    results.append(
                        _failure(
                            "DUPLICATE_EXTERNAL_ID",
                            f"more than one record found for external id field: {found[0]['Id']}",
                        )
                    )
                elif not found and self.no_create_rule:
                    results.append(_failure(STALE_CODE, NO_RECORD_MESSAGE))
                elif not found:
                    record_id = self._insert(sobject, field, key, fields)
                    self.created.append((sobject, key))
                    results.append(
                        {"id": record_id, "success": True, "errors": [], "created": True}
                    )
                elif self._stale(found[0], fields):
                    results.append(_failure(STALE_CODE, STALE_MESSAGE))
                else:
                    found[0].update(fields)
                    results.append(
                        {"id": found[0]["Id"], "success": True, "errors": [], "created": False}
                    )
        return Reply(200, results)


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": []}]}
