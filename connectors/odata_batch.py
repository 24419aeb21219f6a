"""OData 4.0 $batch bodies: build multipart/mixed requests and read multipart responses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CRLF = "\r\n"


@dataclass(frozen=True)
class BatchOperation:
    """One request inside a batch; `content_id` ties it to its response. GETs carry no body."""

    content_id: str
    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchPartResponse:
    """One response read back from a batch."""

    content_id: str | None
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The part's JSON body, or None when it has none or it is not JSON."""
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None


def build_batch(boundary: str, operations: Sequence[BatchOperation]) -> bytes:
    """Build a batch body: one change set per write, GETs on their own.

    A change set is atomic, so a failing write rolls back only its own change set and every
    other record still updates (Microsoft Learn, "Execute batch operations using the Web
    API", section Change sets). A GET cannot sit in a change set; in a batch its URL may be
    longer than a GET sent on its own (same page, "When to use batch requests").
    """
    lines: list[str] = []
    for operation in operations:
        request = [
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {operation.content_id}",
            "",
            f"{operation.method} {operation.url} HTTP/1.1",
            *(f"{name}: {value}" for name, value in operation.headers.items()),
        ]
        if operation.body is None:
            lines += [f"--{boundary}", *request, "", ""]
            continue
        changeset = f"changeset_{uuid.uuid4().hex}"
        lines += [
            f"--{boundary}",
            f"Content-Type: multipart/mixed; boundary={changeset}",
            "",
            f"--{changeset}",
            *request,
            "Content-Type: application/json",
            "",
            json.dumps(operation.body, separators=(",", ":")),
            f"--{changeset}--",
        ]
    lines.append(f"--{boundary}--")
    return (CRLF.join(lines) + CRLF).encode("utf-8")


def boundary_of(content_type: str) -> str:
    """The boundary parameter of a multipart Content-Type header ('' when absent)."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"')
    return ""


def parse_batch_response(content_type: str, body: bytes) -> list[BatchPartResponse]:
    """Flatten a batch response into its operation responses, in order.

    A change set that succeeded answers with a nested multipart of per-operation responses;
    one that failed answers with a single error response in its place.
    """
    boundary = boundary_of(content_type)
    if not boundary:
        raise ValueError("batch response is not multipart")
    responses: list[BatchPartResponse] = []
    for part in _parts(body, boundary):
        headers, payload = _split_headers(part)
        part_type = headers.get("content-type", "")
        if part_type.lower().startswith("multipart/"):
            responses.extend(parse_batch_response(part_type, payload))
        else:
            responses.append(_http_response(headers.get("content-id"), payload))
    return responses


def _parts(body: bytes, boundary: str) -> list[bytes]:
    delimiter = b"--" + boundary.encode("ascii")
    segments = body.split(delimiter)
    parts = []
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            break
        # Drop the rest of the boundary line, and the CRLF that belongs to the next delimiter.
        segment = segment.split(b"\n", 1)[1] if b"\n" in segment else b""
        parts.append(segment.removesuffix(b"\r\n").removesuffix(b"\n"))
    return parts


def _split_headers(block: bytes) -> tuple[dict[str, str], bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in block:
            head, payload = block.split(separator, 1)
            break
    else:
        head, payload = block, b""
    headers = {}
    for line in head.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, payload


def _http_response(content_id: str | None, payload: bytes) -> BatchPartResponse:
    status_line, _, rest = payload.partition(b"\n")
    fields = status_line.decode("ascii", "replace").split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise ValueError(f"unreadable status line in batch response: {status_line[:80]!r}")
    if rest.startswith((b"\r\n", b"\n")):
        headers, body = {}, rest.split(b"\n", 1)[1]
    else:
        headers, body = _split_headers(rest)
    return BatchPartResponse(content_id, int(fields[1]), headers, body.strip(b"\r\n"))
