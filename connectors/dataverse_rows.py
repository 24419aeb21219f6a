"""What the Dataverse connector knows of rows: tables, addresses, ETags and error bodies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connectors.base import LEVELS, FlagStatus

# A GET sent inside a $batch may have a longer URL than one sent alone (Microsoft Learn,
# "Execute batch operations using the Web API", When to use batch requests); keep each
# read query well under the 32,768 characters a URL may have on its own anyway.
MAX_READ_URL_CHARS = 30_000
# ETags remembered per connector; the oldest are forgotten first (and read again if needed).
MAX_CACHED_ROWS = 500_000


@dataclass(frozen=True)
class Table:
    """Where one subject kind lives in Dataverse."""

    logical_name: str
    entity_set: str
    alternate_key: str


@dataclass(frozen=True)
class Row:
    """A row as last seen: its ETag and the status version it held (None when never set)."""

    etag: str
    version: int | None


class RowCache:
    """ETags and versions of rows, by entity set and alternate key (matched case-blind).

    Only a guard's starting point: a stale entry costs one 412 and a fresh read, never a
    wrong write, so workers in other processes need not share it.
    """

    def __init__(self, capacity: int = MAX_CACHED_ROWS) -> None:
        self._rows: dict[tuple[str, str], Row] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, entity_set: str, key: str) -> Row | None:
        with self._lock:
            return self._rows.get((entity_set, key.casefold()))

    def forget(self, entity_set: str, key: str) -> None:
        with self._lock:
            self._rows.pop((entity_set, key.casefold()), None)

    def _put(self, entity_set: str, key: str, row: Row) -> None:
        with self._lock:
            slot = (entity_set, key.casefold())
            self._rows.pop(slot, None)
            self._rows[slot] = row
            while len(self._rows) > self._capacity:
                self._rows.pop(next(iter(self._rows)))

    def remember_read(self, table: Table, version_column: str, record: Mapping[str, Any]) -> None:
        """Keep the ETag and version of one record from a query's `value` list."""
        key, etag = record.get(table.alternate_key), record.get("@odata.etag")
        if isinstance(key, str) and isinstance(etag, str):
            self._put(table.entity_set, key, Row(etag, _version(record.get(version_column))))

    def remember_write(
        self, table: Table, status: FlagStatus, body: Any, headers: Mapping[str, str]
    ) -> None:
        """Keep the ETag a write answered with; forget the row when it gave none."""
        etag = body.get("@odata.etag") if isinstance(body, dict) else None
        etag = etag or headers.get("etag")
        if isinstance(etag, str) and etag:
            self._put(table.entity_set, status.record_key, Row(etag, status.version))
        else:
            self.forget(table.entity_set, status.record_key)


def _version(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_path(table: Table, key: str) -> str:
    """The alternate-key address of a row: entityset(key='value'), quote-doubled, URL-encoded."""
    literal = key.replace("'", "''")
    return f"{table.entity_set}({table.alternate_key}='{quote(literal, safe='')}')"


def read_url(api: str, table: Table, version_column: str, keys: list[str]) -> str:
    """A query for the ETag and version of the rows with these alternate key values.

    The In query function takes the values as a JSON array of strings (Microsoft Learn,
    "Query data using the Web API", Dataverse query functions).
    """
    values = quote(json.dumps(keys, separators=(",", ":")), safe="")
    return (
        f"{api}/{table.entity_set}?$select={table.alternate_key},{version_column}"
        f"&$filter=Microsoft.Dynamics.CRM.In(PropertyName='{table.alternate_key}',"
        f"PropertyValues={values})"
    )


def key_chunks(keys: list[str], max_chars: int) -> Iterator[list[str]]:
    """Split keys so that no read query's list of values grows past `max_chars`."""
    chunk: list[str] = []
    size = 0
    for key in dict.fromkeys(keys):
        length = len(quote(json.dumps(key), safe="")) + 3
        if chunk and size + length > max_chars:
            yield chunk
            chunk, size = [], 0
        chunk.append(key)
        size += length
    if chunk:
        yield chunk


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
