"""A fake Dataverse Web API: metadata, PATCH by alternate key, and OData $batch."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from .entra import FakeEntraID
from .server import FakeServer, Recorded, Reply

API = "/api/data/v9.2"
LEVEL_OPTIONS = {"None": 100000000, "Amber": 100000001, "Red": 100000002}
COLUMNS = {
    "fw_level",
    "fw_categories",
    "fw_restrictions",
    "fw_reviewdue",
    "fw_appealpending",
    "fw_appealhandler",  # optional: written only where the connector's settings name it
    "fw_statusversion",
    "fw_statusupdated",
}
TABLES = {  # logical name -> (entity set, alternate key column)
    "contact": ("contacts", "fw_crmref"),
    "fw_property": ("fw_properties", "fw_uprn"),
}
KIND_TABLE = {"customer": "contact", "property": "fw_property"}
IN_FILTER = re.compile(
    r"Microsoft\.Dynamics\.CRM\.In\(PropertyName='(?P<column>\w+)',PropertyValues=(?P<values>\[.*\])\)",
    re.S,
)
RECORD = re.compile(r"^(?P<set>\w+)\((?P<key>\w+)='(?P<value>(?:[^']|'')*)'\)$")
THROTTLED = {
    "error": {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
    }
}


def error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


class FakeDataverse(FakeServer):
    """A Dataverse environment with contacts and properties keyed by alternate key.

    `records[entity_set][key]` holds each row's Forewarn columns; rows exist only when
    seeded. PATCH without If-Match upserts (as the real service does), so a connector bug
    would show up in `created`. Faults: `inject(...)` for whole requests and
    `fail_record(entity_set, key, ...)` for one row, in PATCH and in $batch alike.
    """

    secret_env = "FW_TEST_DATAVERSE_SECRET"

    def __init__(
        self, entra: FakeEntraID | None = None, adjustments_column: str | None = None
    ) -> None:
        super().__init__()
        self.entra = entra or FakeEntraID()
        # The tables' columns: the status columns, and an adjustments column if the org
        # added one (a column the table lacks is refused, as Dataverse refuses it).
        self.columns = COLUMNS | ({adjustments_column} if adjustments_column else set())
        self.records: dict[str, dict[str, dict[str, Any]]] = {s: {} for s, _ in TABLES.values()}
        self.created: list[tuple[str, str]] = []
        self.batch_sizes: list[int] = []
        # Each row's version number: Dataverse's ETag is W/"<versionnumber>", and every
        # write gives the row a new one.
        self.row_versions: dict[tuple[str, str], int] = {}
        # Every write the fake applied, in order: (entity set, key, columns written).
        self.applied: list[tuple[str, str, dict[str, Any]]] = []
        self._next_row_version = 1000
        self._record_faults: dict[tuple[str, str], Reply] = {}
        self._data_lock = threading.Lock()

    @classmethod
    @contextmanager
    def start(cls, **kwargs: Any) -> Iterator[Self]:
        with FakeEntraID.start() as entra, super().start(entra=entra, **kwargs) as fake:
            entra.scope = f"{fake.url}/.default"
            yield fake

    @property
    def environ(self) -> dict[str, str]:
        return {self.secret_env: self.entra.client_secret}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Valid connector settings pointing at this fake (quick retries for tests)."""
        settings: dict[str, Any] = {
            "environment_url": self.url,
            "tenant_id": self.entra.tenant,
            "client_id": self.entra.client_id,
            "client_secret_env": self.secret_env,
            "token_url": self.entra.token_url,
            "table": {"customer": "contact", "property": "fw_property"},
            "entity_set": {"customer": "contacts", "property": "fw_properties"},
            "alternate_key": {"customer": "fw_crmref", "property": "fw_uprn"},
            "connect_timeout": 1.0,
            "read_timeout": 2.0,
            "backoff_base": 0.01,
        }
        settings.update(overrides)
        return settings

    def seed(self, kind: str, *keys: str) -> None:
        """Create rows that the connector may then update."""
        entity_set = TABLES[KIND_TABLE[kind]][0]
        with self._data_lock:
            for key in keys:
                if key not in self.records[entity_set]:
                    self.records[entity_set][key] = {}
                    self._bump(entity_set, key)

    def _bump(self, entity_set: str, key: str) -> str:
        self._next_row_version += 1
        self.row_versions[(entity_set, key)] = self._next_row_version
        return self.etag(entity_set, key)

    def etag(self, entity_set: str, key: str) -> str:
        return f'W/"{self.row_versions[(entity_set, key)]}"'

    def edit(self, kind: str, key: str, **columns: Any) -> None:
        """Change a row as a CRM user would (any column change gives it a new ETag)."""
        entity_set = TABLES[KIND_TABLE[kind]][0]
        with self._data_lock:
            self.records[entity_set][key].update(columns)
            self._bump(entity_set, key)

    def adjustments_of(self, kind: str, key: str, column: str) -> list[str] | None:
        """The adjustments a row's `column` holds, one a line; None when never written."""
        row = self.records[TABLES[KIND_TABLE[kind]][0]].get(key) or {}
        if column not in row:
            return None
        return (row[column] or "").splitlines()

    def status_of(self, kind: str, key: str) -> dict[str, Any] | None:
        """The row's Forewarn columns read back in status-document terms."""
        row = self.records[TABLES[KIND_TABLE[kind]][0]].get(key)
        if not row or "fw_level" not in row:
            return None
        labels = {v: k.lower() for k, v in LEVEL_OPTIONS.items()}
        return {
            "level": labels[row["fw_level"]],
            "categories": _split(row.get("fw_categories")),
            "restrictions": _split(row.get("fw_restrictions")),
            "review_due": row.get("fw_reviewdue"),
            "appeal_pending": row.get("fw_appealpending"),
            "version": row.get("fw_statusversion"),
            "updated_at": row.get("fw_statusupdated"),
        }

    def fail_record(
        self,
        kind: str,
        key: str,
        status: int = 400,
        code: str = "0x80040203",
        message: str = "Invalid argument.",
    ) -> None:
        """Make every write to one row fail with a Dataverse error."""
        self._record_faults[(TABLES[KIND_TABLE[kind]][0], key)] = error(status, code, message)

    def heal_record(self, kind: str, key: str) -> None:
        """Let writes to a row that `fail_record` broke succeed again."""
        self._record_faults.pop((TABLES[KIND_TABLE[kind]][0], key), None)

    def expire_tokens(self) -> None:
        self.entra.tokens.expire_all()

    # -- protocol ---------------------------------------------------------------------

    def handle(self, request: Recorded) -> Reply:
        if not self.entra.tokens.valid(request.header("Authorization")):
            return Reply(401, b"", {"WWW-Authenticate": "Bearer error=invalid_token"})
        if request.header("OData-Version") != "4.0" or request.header("OData-MaxVersion") != "4.0":
            return error(400, "0x80048d19", "OData-Version and OData-MaxVersion must be 4.0")
        path = request.path
        if not path.startswith(API + "/"):
            return error(404, "0x80060888", f"Resource not found for the segment '{path}'.")
        resource = path[len(API) + 1 :]
        if resource == "WhoAmI" and request.method == "GET":
            return Reply(200, {"UserId": str(uuid.uuid4()), "OrganizationId": "org-1"})
        if resource.startswith("EntityDefinitions(") and request.method == "GET":
            return self._metadata(resource, request.query)
        if resource == "$batch" and request.method == "POST":
            return self._batch(request)
        if request.method == "GET" and "(" not in resource:
            return self._query(resource, request.query)
        if request.method == "PATCH":
            return self._patch(
                resource,
                request.header("If-Match"),
                request.body,
                request.header("Prefer") or "",
                request.query,
            )
        return error(405, "0x80060888", f"{request.method} {resource} is not supported here")

    def _metadata(self, resource: str, query: dict[str, list[str]]) -> Reply:
        match = re.fullmatch(
            r"EntityDefinitions\(LogicalName='(\w+)'\)/Attributes\(LogicalName='(\w+)'\)"
            r"/Microsoft\.Dynamics\.CRM\.PicklistAttributeMetadata",
            resource,
        )
        if not match or match[1] not in TABLES or match[2] != "fw_level":
            return error(404, "0x80040217", f"Could not find attribute metadata for {resource}")
        if query.get("$expand") != ["OptionSet($select=Options)"]:
            return error(400, "0x80060888", "expected $expand=OptionSet($select=Options)")
        options = [
            {
                "Value": value,
                "Label": {"UserLocalizedLabel": {"Label": label, "LanguageCode": 2057}},
            }
            for label, value in LEVEL_OPTIONS.items()
        ]
        return Reply(200, {"LogicalName": "fw_level", "OptionSet": {"Options": options}})

    def _query(self, resource: str, query: dict[str, list[str]]) -> Reply:
        """GET entityset?$select=...&$filter=Microsoft.Dynamics.CRM.In(...): rows by key."""
        table = next((t for t, (s, _) in TABLES.items() if s == resource), None)
        if table is None:
            return error(404, "0x80060888", f"Resource not found for the segment '{resource}'.")
        entity_set, key_column = TABLES[table]
        match = IN_FILTER.fullmatch((query.get("$filter") or [""])[0])
        if not match or match["column"] != key_column:
            return error(400, "0x80060888", "expected $filter=Microsoft.Dynamics.CRM.In(...)")
        try:
            keys = json.loads(match["values"])
        except ValueError:
            return error(400, "0x80060888", "PropertyValues must be a JSON array")
        if len(keys) > 5000:
            return error(400, "0x80060888", "more than one page of results")
        selected = (query.get("$select") or [""])[0].split(",")
        rows = []
        with self._data_lock:
            for key in keys:
                row = self.records[entity_set].get(key)
                if row is None:
                    continue
                found = {column: row.get(column) for column in selected if column != key_column}
                rows.append({"@odata.etag": self.etag(entity_set, key), key_column: key, **found})
        return Reply(
            200, {"@odata.context": f"{self.url}{API}/$metadata#{entity_set}", "value": rows}
        )

    def _patch(
        self,
        resource: str,
        if_match: str | None,
        body: bytes,
        prefer: str = "",
        query: dict[str, list[str]] | None = None,
    ) -> Reply:
        match = RECORD.match(resource)
        if not match:
            return error(400, "0x80060888", f"Bad request - Error in query syntax: {resource}")
        entity_set, key = match["set"], match["value"].replace("''", "'")
        table = next((t for t, (s, _) in TABLES.items() if s == entity_set), None)
        if table is None or TABLES[table][1] != match["key"]:
            return error(404, "0x80060888", f"Resource not found for the segment '{entity_set}'.")
        try:
            columns = json.loads(body)
        except ValueError:
            return error(400, "0x80048d19", "Error identified in Payload provided by the user")
        unknown = set(columns) - self.columns
        if unknown:
            return error(
                400,
                "0x80060888",
                f"Could not find a property named '{sorted(unknown)[0]}'"
                f" on type 'Microsoft.Dynamics.CRM.{table}'.",
            )
        if columns.get("fw_level") not in LEVEL_OPTIONS.values():
            return error(
                400, "0x8004431a", "A validation error occurred. fw_level is out of range."
            )
        with self._data_lock:
            fault = self._record_faults.get((entity_set, key))
            if fault:
                return fault
            rows = self.records[entity_set]
            if key not in rows:
                if if_match:
                    return error(404, "0x80040217", f"{table} With Ids = {key} Does Not Exist")
                self.created.append((entity_set, key))
            elif if_match not in (None, "*") and if_match != self.etag(entity_set, key):
                # Optimistic concurrency: the row changed since the client read its ETag.
                return error(412, "0x80060882", "The version of the existing record doesn't match")
            rows.setdefault(key, {}).update(columns)
            self.applied.append((entity_set, key, columns))
            etag = self._bump(entity_set, key)
            if "return=representation" not in prefer:
                return Reply(204)
            selected = ((query or {}).get("$select") or [""])[0].split(",")
            shown = {c: rows[key].get(c) for c in selected if c}
            return Reply(200, {"@odata.etag": etag, **shown}, {"ETag": etag})

    def _batch(self, request: Recorded) -> Reply:
        content_type = request.header("Content-Type") or ""
        if not content_type.startswith("multipart/mixed"):
            return error(400, "0x80048d19", "Content-Type must be multipart/mixed")
        parts = [
            (True, _multipart(headers["content-type"], payload))
            if headers.get("content-type", "").startswith("multipart/")
            else (False, [(headers, payload)])
            for headers, payload in _multipart(content_type, request.body)
        ]
        operations = sum(len(inner) for _, inner in parts)
        if operations > 1000:
            return error(400, "0x80060888", "The maximum number of requests in a batch is 1000.")
        self.batch_sizes.append(operations)
        continue_on_error = "odata.continue-on-error" in (request.header("Prefer") or "")
        boundary = f"batchresponse_{uuid.uuid4()}"
        out: list[str] = []
        for is_changeset, members in parts:
            responses = []
            failed = None
            for headers, payload in members:
                reply = self._inner(payload.decode())
                if reply.status >= 400:
                    failed = (headers.get("content-id"), reply)
                    break
                responses.append((headers.get("content-id"), reply))
            if failed is None and is_changeset:
                inner = f"changesetresponse_{uuid.uuid4()}"
                out += [f"--{boundary}", f"Content-Type: multipart/mixed; boundary={inner}", ""]
                for content_id, reply in responses:
                    out += [f"--{inner}", *_http_part(content_id, reply)]
                out += [f"--{inner}--"]
            elif failed is None:
                out += [f"--{boundary}", *_http_part(*responses[0])]
            else:
                out += [f"--{boundary}", *_http_part(*failed)]
                if not continue_on_error:
                    break
        out.append(f"--{boundary}--")
        body = ("\r\n".join(out) + "\r\n").encode()
        return Reply(200, body, {"Content-Type": f"multipart/mixed; boundary={boundary}"})

    def _inner(self, payload: str) -> Reply:
        head, _, body = payload.replace("\r\n", "\n").partition("\n\n")
        lines = head.strip("\n").split("\n")
        method, url, _ = lines[0].split(" ")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        parts = urlsplit(url)
        path = unquote(parts.path)
        if not path.startswith(API + "/"):
            return error(400, "0x80060888", f"Bad request URL in batch: {url}")
        resource = path[len(API) + 1 :]
        query = parse_qs(parts.query)
        if method == "GET" and "(" not in resource:
            return self._query(resource, query)
        if method == "GET" and resource.startswith("EntityDefinitions("):
            return self._metadata(resource, query)
        if method != "PATCH":
            return error(405, "0x80060888", f"{method} is not supported in this fake batch")
        return self._patch(
            resource,
            headers.get("If-Match"),
            body.strip().encode(),
            headers.get("Prefer", ""),
            query,
        )


def _http_part(content_id: str | None, reply: Reply) -> list[str]:
    reasons = {
        200: "OK",
        204: "No Content",
        400: "Bad Request",
        404: "Not Found",
        412: "Precondition Failed",
    }
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"HTTP/1.1 {reply.status} {reasons.get(reply.status, 'Error')}"]
    lines += [f"{name}: {value}" for name, value in reply.headers.items()]
    if reply.body is None:
        return [*lines, "", ""]
    return [
        *lines,
        "Content-Type: application/json; odata.metadata=minimal",
        "",
        json.dumps(reply.body),
    ]


def _multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Body parts of a multipart/mixed entity (RFC 2046 section 5.1.1) as (headers, payload)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ValueError("multipart without boundary")
    delimiter = b"\r\n--" + match[1].encode()
    # The first delimiter may open the body without a preceding CRLF.
    pieces = (b"\r\n" + body).split(delimiter)[1:]
    parts = []
    for piece in pieces:
        if piece.startswith(b"--"):
            break
        piece = piece.split(b"\r\n", 1)[1]
        head, _, payload = piece.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, payload))
    return parts


def _split(text: str | None) -> list[str]:
    return [item for item in (text or "").split("; ") if item]
