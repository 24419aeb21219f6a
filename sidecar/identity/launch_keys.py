"""The CRM host's launch-token public keys: a JWKS file or URL, cached, refetched sparingly."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import jwt
import requests
from cachetools import TTLCache
from jwt import PyJWK, PyJWKSet

FETCH_TIMEOUT_SECONDS = 5


class KeySourceError(Exception):
    """The key set cannot be read; launches fail closed (401/503), never open."""


def parse_jwks(text: str, source: str) -> PyJWKSet:
    try:
        return PyJWKSet.from_dict(json.loads(text))
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise KeySourceError(f"{source}: not a usable JWKS ({exc})") from None


class LaunchKeys:
    """Finds the public key a launch token names by `kid`.

    A file is read at start-up. A URL is fetched on first use and kept for the configured
    TTL; a token naming a key id that the cached set lacks triggers one refetch, at most
    once per `refresh_min_seconds`, so a flood of tokens with made-up key ids cannot turn
    the sidecar into a load generator against the CRM host.
    """

    def __init__(
        self,
        *,
        path: Path | None = None,
        url: str = "",
        ttl_seconds: int = 300,
        refresh_min_seconds: int = 60,
    ) -> None:
        self.url = url
        self._refresh_min = refresh_min_seconds
        self._cache: TTLCache[str, PyJWKSet] = TTLCache(maxsize=1, ttl=ttl_seconds)
        self._fixed: PyJWKSet | None = None
        self._last_fetch = float("-inf")
        self._lock = threading.Lock()
        if not url:
            if path is None:
                raise KeySourceError("no JWKS file or URL for launch tokens")
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise KeySourceError(
                    f"launch token public keys (JWKS) {path} are missing: run `forewarn init` "
                    "or set identity.launch_jwks_url"
                ) from None
            self._fixed = parse_jwks(text, str(path))

    def _fetch(self) -> PyJWKSet:
        self._last_fetch = time.monotonic()
        try:
            response = requests.get(self.url, timeout=FETCH_TIMEOUT_SECONDS)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise KeySourceError(
                f"cannot fetch launch JWKS from {self.url}: {exc.__class__.__name__}"
            ) from None
        keys = parse_jwks(response.text, self.url)
        self._cache["jwks"] = keys
        return keys

    def _current(self) -> PyJWKSet:
        if self._fixed is not None:
            return self._fixed
        with self._lock:
            cached = self._cache.get("jwks")
            return cached if cached is not None else self._fetch()

    def find(self, kid: str) -> PyJWK | None:
        """The key with this id, or None; may refetch a URL's set once per interval."""
        key = _by_kid(self._current(), kid)
        if key is not None or self._fixed is not None:
            return key
        with self._lock:
            if time.monotonic() - self._last_fetch < self._refresh_min:
                return None
            return _by_kid(self._fetch(), kid)


def _by_kid(keys: PyJWKSet, kid: str) -> PyJWK | None:
    return next((k for k in keys.keys if k.key_id == kid), None)
