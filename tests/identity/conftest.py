"""Identity fixtures: CRM host signing keys, a live HTTP server, and a real OIDC provider."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from flask import Flask
from werkzeug.serving import make_server

from sidecar.storage.keys import KeyFiles

OIDC_DIR = Path(__file__).parent / "oidc"


@dataclass(frozen=True)
class CrmKey:
    """A CRM host's signing key: what it signs with and the public JWK Forewarn trusts."""

    kid: str
    alg: str
    private: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        return jwk | {"kid": self.kid, "alg": self.alg, "use": "sig"}


@pytest.fixture(scope="session")
def crm_keys() -> dict[str, CrmKey]:
    return {
        "ES256": CrmKey("crm-es256", "ES256", ec.generate_private_key(ec.SECP256R1())),
        "RS256": CrmKey("crm-rs256", "RS256", rsa.generate_private_key(65537, 2048)),
        "EdDSA": CrmKey("crm-eddsa", "EdDSA", ed25519.Ed25519PrivateKey.generate()),
    }


def write_jwks(path: Path, keys: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"keys": keys}))


@pytest.fixture
def instance_dir(instance_dir: Path, crm_keys: dict[str, CrmKey]) -> Path:
    """The demo instance, trusting the CRM host's keys beside the demo launch key."""
    path = KeyFiles.of(instance_dir).launch_jwks
    demo = json.loads(path.read_text())["keys"]
    write_jwks(path, demo + [key.public_jwk for key in crm_keys.values()])
    return instance_dir


@pytest.fixture
def mint(settings, crm_keys: dict[str, CrmKey]) -> Callable[..., str]:
    """Sign a launch token as the CRM host would; keyword arguments replace claims."""

    def sign(alg: str = "ES256", headers: dict | None = None, **claims: Any) -> str:
        key = crm_keys[alg]
        now = int(time.time())
        body = {
            "sub": "u.vo",
            "name": "Val Officer",
            "roles": ["visiting_officer"],
            "aud": settings.deployment.public_url,
            "iat": now,
            "exp": now + 120,
            "jti": uuid.uuid4().hex,
        } | claims
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(
            body, key.private, algorithm=alg, headers={"kid": key.kid} | (headers or {})
        )

    return sign


class Dispatch:
    """A WSGI app whose target each test sets, so one server (one port) serves every test."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        assert self.app is not None, "no app is being served"
        return self.app(environ, start_response)


@pytest.fixture(scope="session")
def live_server() -> Iterator[tuple[Dispatch, str]]:
    """A real HTTP server on an ephemeral port in front of whichever app a test serves."""
    dispatch = Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield dispatch, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def ensure_oidc_provider_installed() -> None:
    """`npm ci` the pinned oidc-provider on first use (a clean clone has no node_modules)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("the OIDC tests need Node.js 20+ and npm on PATH")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(OIDC_DIR)],
            check=True,
            capture_output=True,
            timeout=300,
        )


@dataclass(frozen=True)
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str


OIDC_ACCOUNTS = {
    "u.vo": {"name": "Val Officer", "groups": ["Caution Register - Visiting Officers"]},
    "u.parks": {"name": "Pat Parks", "groups": ["Parks and Gardens"]},
    "u.odd": {"name": "Odd Claims", "groups": {"Caution Register - Visiting Officers": True}},
    "u.nogroups": {"name": "No Groups"},
}

# Clients whose ID tokens the provider reshapes, as a misconfigured or impersonated provider
# would send them: each is re-signed with the provider's own key after the change.
OIDC_MISSHAPEN_CLIENTS = {
    "forewarn-azp-only": {"claims": {"aud": ["other-app"], "azp": "forewarn-azp-only"}},
    "forewarn-two-audiences": {
        "claims": {"aud": ["forewarn-two-audiences", "other-app"], "azp": "other-app"}
    },
    "forewarn-two-audiences-azp": {
        "claims": {
            "aud": ["forewarn-two-audiences-azp", "other-app"],
            "azp": "forewarn-two-audiences-azp",
        }
    },
    "forewarn-bad-signature": {"corrupt_signature": True},
    "forewarn-wrong-issuer": {"claims": {"iss": "https://elsewhere.example"}},
    "forewarn-unknown-key": {"header": {"kid": "retired-key"}},
}


def _start_provider(setup: dict[str, Any], log: Path) -> subprocess.Popen:
    with log.open("w") as stderr:
        process = subprocess.Popen(
            ["node", str(OIDC_DIR / "provider.js")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdin and process.stdout
    process.stdin.write(json.dumps(setup))
    process.stdin.close()
    return process


def _serve_provider(
    base: str, log: Path, conform_id_token_claims: bool = False
) -> Iterator[OidcProvider]:
    ensure_oidc_provider_installed()
    redirect = f"{base}/auth/callback"
    own = ["forewarn", *OIDC_MISSHAPEN_CLIENTS]
    setup = {
        "clients": [
            {"client_id": c, "client_secret": "forewarn-secret", "redirect_uris": [redirect]}
            for c in own
        ]
        + [
            {
                "client_id": "other-app",
                "client_secret": "other-secret",
                "redirect_uris": [redirect],
            },
        ],
        "accounts": OIDC_ACCOUNTS,
        "cookie_key": uuid.uuid4().hex,
        "id_token_overrides": OIDC_MISSHAPEN_CLIENTS,
        "conform_id_token_claims": conform_id_token_claims,
    }
    process = _start_provider(setup, log)
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=30)
    if not ready or not ready[0].strip():
        process.kill()
        pytest.fail(f"the OIDC provider did not start: {log.read_text()}")
    issuer = json.loads(ready[0])["issuer"]
    yield OidcProvider(issuer, "forewarn", "forewarn-secret")
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def oidc_provider(
    live_server: tuple[Dispatch, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OidcProvider]:
    """panva/oidc-provider on Node, releasing the scopes' claims in the ID token too."""
    _, base = live_server
    yield from _serve_provider(base, tmp_path_factory.mktemp("oidc") / "provider.log")


@pytest.fixture(scope="session")
def oidc_provider_userinfo(
    live_server: tuple[Dispatch, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OidcProvider]:
    """panva/oidc-provider as it comes: the scopes' claims only from its userinfo endpoint."""
    _, base = live_server
    log = tmp_path_factory.mktemp("oidc-userinfo") / "provider.log"
    yield from _serve_provider(base, log, conform_id_token_claims=True)
