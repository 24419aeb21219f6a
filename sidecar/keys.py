"""The instance's key files: data key ring, session secret, audit signing key, demo launch key."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from sidecar.crypto import KeyRing, KeyRingError, write_secret


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
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key, pem


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
