"""The OIDC provider's signing keys: kept for their cache lifetime, refetched on a new key id."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from authlib.integrations.flask_client import FlaskOAuth2App
from werkzeug.http import parse_cache_control_header

# However long the provider says its keys may be kept, they are read again within a day,
# so a key it withdraws stops being trusted here within a day at most.
MAX_CACHE_SECONDS = 86_400

Fetch = Callable[[], tuple[dict[str, Any], Mapping[str, str]]]


class ProviderKeys:
    """The key set, with when it must be read again and when it last was.

    Kept for the provider's `Cache-Control: max-age`, or `default_seconds` when it sends
    none. An ID token naming a key id the set lacks (the provider has rotated its keys)
    triggers a refetch, at most once per `refresh_min_seconds`, so tokens with made-up key
    ids cannot turn Forewarn into a load generator against the provider.
    """

    def __init__(self, default_seconds: int, refresh_min_seconds: int) -> None:
        self.default_seconds = default_seconds
        self.refresh_min_seconds = refresh_min_seconds
        self._jwks: dict[str, Any] | None = None
        self._expires = float("-inf")
        self._fetched = float("-inf")
        self._lock = threading.Lock()

    def current(self, fetch: Fetch, unknown_kid: bool = False) -> dict[str, Any]:
        """The key set; `fetch()` returns a fresh one as (JWKS, headers) when one is due."""
        with self._lock:
            now = time.monotonic()
            rotated = unknown_kid and now - self._fetched >= self.refresh_min_seconds
            if self._jwks is None or now >= self._expires or rotated:
                jwks, headers = fetch()
                self._fetched, self._expires = now, now + self._lifetime(headers)
                self._jwks = jwks
                return jwks
            return self._jwks

    def _lifetime(self, headers: Mapping[str, str]) -> float:
        control = parse_cache_control_header(headers.get("Cache-Control"))
        if control.no_store or control.no_cache:
            return 0
        if control.max_age is None:
            return self.default_seconds
        return min(max(control.max_age, 0), MAX_CACHE_SECONDS)


class ProviderClient(FlaskOAuth2App):
    """Authlib's Flask client, reading the provider's keys through `ProviderKeys`.

    Authlib itself keeps the first key set for the life of the process, and refetches it
    on every unknown key id without limit.
    """

    keys: ProviderKeys

    def fetch_jwk_set(self, force: bool = False) -> dict[str, Any]:
        return self.keys.current(self._fetch_jwks, unknown_kid=force)

    def _fetch_jwks(self) -> tuple[dict[str, Any], Mapping[str, str]]:
        uri = self.load_server_metadata().get("jwks_uri")
        if not uri:
            raise ValueError("the provider's discovery document names no jwks_uri")
        with self._get_session() as session:
            response = session.request("GET", uri, withhold_token=True)
            response.raise_for_status()
            return response.json(), response.headers
