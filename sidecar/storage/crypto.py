"""Encryption at rest: AES-256-GCM under a rotating key ring, each ciphertext bound to its cell."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

NONCE_BYTES = 12
KEY_BYTES = 32


class KeyRingError(Exception):
    """The key ring is missing, unreadable or malformed."""


class DecryptionError(Exception):
    """A ciphertext failed to decrypt: wrong key, tampered, or moved to another cell."""

    def __init__(self, table: str, column: str, row_id: str, why: str) -> None:
        super().__init__(f"{table}.{column} of {row_id}: {why}")
        self.table = table
        self.column = column
        self.row_id = str(row_id)

    @property
    def field(self) -> str:
        """The damaged cell as `table.column`."""
        return f"{self.table}.{self.column}"


DAMAGED = "[damaged: this field cannot be decrypted]"
"""What a salvaging export shows in place of a field that cannot be read."""


class SalvagingRing:
    """A key ring for exports that must go on past a damaged field, noting each one.

    A ciphertext that fails to decrypt (tampered, or moved from another row) reads as
    `DAMAGED`; the export lists the damaged cells so the privacy officer knows what is missing.
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.damaged: list[dict[str, str]] = []

    def encrypt(self, plaintext: str, *, table: str, row_id: str, column: str) -> str:
        return self.ring.encrypt(plaintext, table=table, row_id=row_id, column=column)

    def decrypt(self, token: str, *, table: str, row_id: str, column: str) -> str:
        try:
            return self.ring.decrypt(token, table=table, row_id=row_id, column=column)
        except DecryptionError as exc:
            log.error("damaged confidential field %s of row %s: %s", exc.field, exc.row_id, exc)
            self.damaged.append({"field": exc.field, "row": exc.row_id})
            return DAMAGED


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def associated_data(table: str, row_id: str, column: str) -> bytes:
    """The cell a ciphertext belongs to; copying it elsewhere makes decryption fail."""
    return json.dumps(["forewarn.cell.v1", table, str(row_id), column]).encode()


@dataclass
class KeyRing:
    """Data keys by id; new ciphertexts use `primary`, old ones still decrypt."""

    keys: dict[str, bytes]
    primary: str
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.primary not in self.keys:
            raise KeyRingError(f"primary key {self.primary!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"data key {key_id!r} is not {KEY_BYTES} bytes")
            self._ciphers[key_id] = AESGCM(key)

    @classmethod
    def generate(cls) -> KeyRing:
        key_id = "k1"
        return cls({key_id: AESGCM.generate_key(bit_length=256)}, key_id)

    def with_new_primary(self) -> KeyRing:
        """A ring with one more key, made primary; the old keys stay for reading."""
        number = 1 + max(int(k.lstrip("k")) for k in self.keys if k.lstrip("k").isdigit())
        key_id = f"k{number}"
        return KeyRing({**self.keys, key_id: AESGCM.generate_key(bit_length=256)}, key_id)

    def encrypt(self, plaintext: str, *, table: str, row_id: str, column: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary].encrypt(
            nonce, plaintext.encode("utf-8"), associated_data(table, row_id, column)
        )
        return f"{self.primary}.{_b64e(nonce + sealed)}"

    def decrypt(self, token: str, *, table: str, row_id: str, column: str) -> str:
        key_id, _, body = token.partition(".")
        cipher = self._ciphers.get(key_id)
        if cipher is None or not body:
            raise DecryptionError(table, column, row_id, f"unknown key id {key_id[:16]!r}")
        try:
            raw = _b64d(body)
            plaintext = cipher.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data(table, row_id, column)
            )
        except (InvalidTag, ValueError):
            raise DecryptionError(table, column, row_id, "failed to decrypt") from None
        return plaintext.decode("utf-8")

    def key_id_of(self, token: str) -> str:
        return token.partition(".")[0]

    # Persistence -------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(
            {"primary": self.primary, "keys": {k: _b64e(v) for k, v in self.keys.items()}},
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, source: str) -> KeyRing:
        try:
            data = json.loads(text)
            keys = {str(k): _b64d(v) for k, v in data["keys"].items()}
            return cls(keys, str(data["primary"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyRingError(f"{source}: malformed key ring ({exc})") from None

    @classmethod
    def load(cls, path: Path, environ: dict[str, str] | None = None) -> KeyRing:
        """From FOREWARN_DATA_KEYS (JSON) if set, else the instance's key file."""
        env = os.environ if environ is None else environ
        if env.get("FOREWARN_DATA_KEYS"):
            return cls.from_json(env["FOREWARN_DATA_KEYS"], "FOREWARN_DATA_KEYS")
        try:
            return cls.from_json(path.read_text(encoding="utf-8"), str(path))
        except FileNotFoundError:
            raise KeyRingError(
                f"data key file {path} is missing: run `forewarn init` to create keys"
            ) from None

    def save(self, path: Path) -> None:
        write_secret(path, self.to_json())


def write_secret(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
