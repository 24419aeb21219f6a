"""Signed checkpoints of the audit chain, and the external sinks they are published to."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CHECKPOINT_DOMAIN = b"forewarn.audit.checkpoint.v1\x00"
SINK_TIMEOUT_SECONDS = 5

HEAD = "head"
CUT = "cut"


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint naming the audit key that signed a checkpoint."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: entry `seq` of the chain has hash `entry_hash` (as of `at`).

    A "cut" checkpoint also states that every entry up to and including `seq` was
    removed on purpose (retention), so the trail legitimately starts after it.
    """

    kind: str
    seq: int
    entry_hash: str
    at: datetime
    note: str | None
    key_id: str
    signature: str

    def payload(self) -> bytes:
        return signed_payload(self.kind, self.seq, self.entry_hash, self.at, self.note)

    def signature_valid(self, public_key: Ed25519PublicKey) -> bool:
        if self.key_id != key_id(public_key):
            return False
        try:
            public_key.verify(base64.b64decode(self.signature), self.payload())
        except (InvalidSignature, ValueError):
            return False
        return True

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            kind=str(data["kind"]),
            seq=int(data["seq"]),
            entry_hash=str(data["entry_hash"]),
            at=datetime.fromisoformat(data["at"]),
            note=data.get("note"),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )

    @classmethod
    def from_row(cls, row: Any) -> Checkpoint:
        return cls(row.kind, row.seq, row.entry_hash, row.at, row.note, row.key_id, row.signature)


@dataclass(frozen=True)
class RetiredKey:
    """A signing key taken out of use: it vouches for entries up to `last_seq` only."""

    public_key: Ed25519PublicKey
    last_seq: int
    retired_at: str


@dataclass(frozen=True)
class VerifyingKeys:
    """The current signing key's public half and the keys it replaced, by key id.

    A key that signed before a rotation stays good for what it signed then; a checkpoint it
    signs beyond the entry where it was retired is refused, so a leaked old key cannot vouch
    for anything written since.
    """

    current: Ed25519PublicKey
    retired: dict[str, RetiredKey] = field(default_factory=dict)

    def problem(self, checkpoint: Checkpoint) -> str | None:
        """None when the checkpoint is vouched for; otherwise what is wrong with it."""
        if checkpoint.key_id == key_id(self.current):
            return None if checkpoint.signature_valid(self.current) else "has a bad signature"
        retired = self.retired.get(checkpoint.key_id)
        if retired is None or not checkpoint.signature_valid(retired.public_key):
            return "has a bad signature"
        if checkpoint.seq > retired.last_seq:
            return (
                f"is signed with key {checkpoint.key_id}, retired at entry {retired.last_seq} "
                f"on {retired.retired_at}"
            )
        return None


def signed_payload(kind: str, seq: int, entry_hash: str, at: datetime, note: str | None) -> bytes:
    """Canonical, domain-separated bytes a checkpoint's signature covers."""
    body = {"kind": kind, "seq": seq, "entry_hash": entry_hash, "at": at.isoformat(), "note": note}
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return CHECKPOINT_DOMAIN + encoded.encode("utf-8")


def sign(
    key: Ed25519PrivateKey,
    kind: str,
    seq: int,
    entry_hash: str,
    at: datetime,
    note: str | None = None,
) -> Checkpoint:
    signature = base64.b64encode(key.sign(signed_payload(kind, seq, entry_hash, at, note)))
    return Checkpoint(kind, seq, entry_hash, at, note, key_id(key.public_key()), signature.decode())


def publish_to_file(path: Path, checkpoint: Checkpoint) -> None:
    """Append one JSON line and fsync; O_APPEND keeps lines whole across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(checkpoint.as_json(), sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_to_url(url: str, checkpoint: Checkpoint) -> None:
    response = requests.post(url, json=checkpoint.as_json(), timeout=SINK_TIMEOUT_SECONDS)
    response.raise_for_status()


class SinkFileError(Exception):
    """The checkpoint file has a line that is not a checkpoint."""


class SinkReadError(Exception):
    """The checkpoint URL could not be read back, or answered with something not checkpoints."""


def _parse_lines(lines: Iterator[str], where: str) -> Iterator[Checkpoint]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Checkpoint.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError):
            raise SinkFileError(f"{where} line {number} is not a checkpoint") from None


def read_file(path: Path) -> Iterator[Checkpoint]:
    """Every checkpoint in a sink file; a malformed line is itself evidence of tampering."""
    with path.open(encoding="utf-8") as lines:
        yield from _parse_lines(lines, str(path))


def describe_url(url: str) -> str:
    """A sink URL fit to print and to record: without credentials or query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def read_url(url: str) -> list[Checkpoint]:
    """Every checkpoint the collector at `url` holds, as a GET of the URL it is POSTed to.

    The collector answers with what it received, one JSON checkpoint per line, as the
    checkpoint file holds them (`application/x-ndjson`; a collector may serve such a file).
    Raises SinkReadError when the collector cannot be reached or its answer is not that.
    """
    where = describe_url(url)
    try:
        response = requests.get(
            url, headers={"Accept": "application/x-ndjson"}, timeout=SINK_TIMEOUT_SECONDS
        )
        response.raise_for_status()
    except requests.RequestException as exc:
        raise SinkReadError(
            f"could not read back the checkpoints from {where}: {_failure(exc)}"
        ) from None
    try:
        return list(_parse_lines(iter(response.text.splitlines()), where))
    except SinkFileError as exc:
        raise SinkReadError(f"the checkpoints read back from {exc}") from None


def _failure(exc: requests.RequestException) -> str:
    # Said without the exception's text, which repeats the URL with its query string.
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"it answered {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {SINK_TIMEOUT_SECONDS} s"
    if isinstance(exc, requests.ConnectionError):
        return "it could not be reached"
    return type(exc).__name__
