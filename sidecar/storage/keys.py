"""The instance's key files: data key ring, session secret, audit signing key, demo launch key."""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from sidecar.audit.checkpoints import RetiredKey, VerifyingKeys, key_id
from sidecar.storage.crypto import KeyRing, KeyRingError, write_secret


@dataclass(frozen=True)
class KeyFiles:
    """Where an instance keeps its keys (all under `instance/keys/`, mode 0600)."""

    root: Path

    @property
    def data_keys(self) -> Path:
        return self.root / "data-keys.json"

    @property
    def session_secret(self) -> Path:
        return self.root / "session.key"

    @property
    def audit_signing_key(self) -> Path:
        return self.root / "audit-ed25519.pem"

    @property
    def audit_retired_keys(self) -> Path:
        """Public halves of the audit signing keys rotated out, each with its last entry."""
        return self.root / "audit-retired-keys.json"

    @property
    def launch_demo_key(self) -> Path:
        """Private key that `forewarn token` signs with; exists only on demo instances."""
        return self.root / "launch-demo-ed25519.pem"

    @property
    def launch_jwks(self) -> Path:
        """Public keys launch tokens are verified against (the CRM host's, or the demo key)."""
        return self.root / "launch-jwks.json"

    @classmethod
    def of(cls, instance_dir: Path) -> KeyFiles:
        return cls(instance_dir / "keys")


def _ed25519_pem() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, private_pem(key)


def ensure_keys(files: KeyFiles, *, demo: bool) -> list[str]:
    """Create whichever keys are absent; return what was created. Never overwrites a key."""
    created = []
    if not files.data_keys.exists():
        KeyRing.generate().save(files.data_keys)
        created.append("data key ring")
    if not files.session_secret.exists():
        write_secret(files.session_secret, secrets.token_urlsafe(48))
        created.append("session secret")
    if not files.audit_signing_key.exists():
        write_secret(files.audit_signing_key, _ed25519_pem()[1])
        created.append("audit signing key")
    if demo and not files.launch_demo_key.exists():
        key, pem = _ed25519_pem()
        write_secret(files.launch_demo_key, pem)
        jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": "demo-launch", "use": "sig", "alg": "EdDSA"})
        write_secret(files.launch_jwks, json.dumps({"keys": [jwk]}, indent=2))
        created.append("demo launch key")
    return created


def read_secret(path: Path, what: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise KeyRingError(
            f"{what} {path} is missing: run `forewarn init` to create keys"
        ) from None
    if not value:
        raise KeyRingError(f"{what} {path} is empty")
    return value


def load_audit_signing_key(files: KeyFiles) -> Ed25519PrivateKey:
    pem = read_secret(files.audit_signing_key, "audit signing key").encode()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyRingError(f"{files.audit_signing_key} is not an Ed25519 private key")
    return key


def load_retired_audit_keys(files: KeyFiles) -> dict[str, RetiredKey]:
    """The retired audit keys by key id (none before the first rotation)."""
    path = files.audit_retired_keys
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["keys"]
        found = {}
        for item in listed:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(item["public_key"]))
            if key_id(public) != item["key_id"]:
                raise ValueError(f"key {item['key_id']} does not match its public key")
            found[item["key_id"]] = RetiredKey(public, int(item["last_seq"]), item["retired_at"])
        return found
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyRingError(f"{path} is not a list of retired audit keys: {exc}") from None


def save_retired_audit_keys(files: KeyFiles, keys: dict[str, RetiredKey]) -> None:
    listed = [
        {
            "key_id": kid,
            "public_key": base64.b64encode(
                key.public_key.public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                )
            ).decode(),
            "last_seq": key.last_seq,
            "retired_at": key.retired_at,
        }
        for kid, key in keys.items()
    ]
    write_secret(files.audit_retired_keys, json.dumps({"keys": listed}, indent=2) + "\n")


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class AuditKeys:
    """The audit signing key as the key file holds it now, and the keys it replaced.

    The file is checked (one stat) each time a checkpoint is signed and read again when it
    has changed, so a running app signs with a rotated key from its next checkpoint on,
    without a restart. Rotation replaces the file while holding the chain's lock, and a
    checkpoint is signed under that lock too, so none is signed with the old key after it.
    """

    def __init__(self, files: KeyFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._key: Ed25519PrivateKey | None = None
        self.signing_key()

    def signing_key(self) -> Ed25519PrivateKey:
        try:
            info = os.stat(self.files.audit_signing_key)
        except FileNotFoundError:
            raise KeyRingError(
                f"audit signing key {self.files.audit_signing_key} is missing: "
                "run `forewarn init` to create keys"
            ) from None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        with self._lock:
            if self._key is None or stamp != self._stamp:
                self._key = load_audit_signing_key(self.files)
                self._stamp = stamp
            return self._key

    def verifying(self) -> VerifyingKeys:
        """What `forewarn audit verify` holds checkpoints against."""
        return VerifyingKeys(self.signing_key().public_key(), load_retired_audit_keys(self.files))
