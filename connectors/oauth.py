"""OAuth2 access tokens for connectors: fetched through the connector's session and cached."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import requests

from connectors.errors import AuthenticationError, TransientError

if TYPE_CHECKING:
    from connectors.base import Connector

# Refresh this long before the identity provider says the token expires.
REFRESH_MARGIN = 60.0


class TokenSource:
    """One cached access token; concurrent callers share a single fetch."""

    def __init__(self, fetch: Callable[[], Mapping[str, Any]]) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.last_response: dict[str, Any] = {}

    def get(self) -> str:
        """Return a token valid for at least a little while, fetching one when needed."""
        with self._lock:
            if self._token and time.monotonic() < self._expires_at:
                return self._token
            data = dict(self._fetch())
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise AuthenticationError("token response had no access_token")
            lifetime = _lifetime(data.get("expires_in"))
            # Short-lived tokens (under two margins) are kept for half their life instead.
            keep = max(lifetime - REFRESH_MARGIN, lifetime / 2) if lifetime else math.inf
            self._token, self._expires_at = token, time.monotonic() + keep
            self.last_response = {k: v for k, v in data.items() if k != "access_token"}
            return token

    def invalidate(self, token: str) -> None:
        """Forget `token` after the API rejected it (unless another thread already replaced it)."""
        with self._lock:
            if self._token == token:
                self._token = None


def _lifetime(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def fetch_token(connector: Connector, url: str, form: Mapping[str, str]) -> dict[str, Any]:
    """POST an OAuth2 token request form and return the JSON answer.

    400/401 from the identity provider mean it refused the credentials (permanent, and the
    message says so); anything else unexpected is treated as transient.
    """
    response = connector.send("POST", url, kind="token", data=dict(form))
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code == 200 and isinstance(data, dict):
        return data
    error = data.get("error", "") if isinstance(data, dict) else ""
    description = data.get("error_description", "") if isinstance(data, dict) else ""
    detail = f"HTTP {response.status_code} {error} {description}".strip()
    if response.status_code in (400, 401):
        raise AuthenticationError(
            f"credential refused by the identity provider ({detail})"[:300]
            + ": fix the connector's client id or secret, then `forewarn sync requeue`"
        )
    raise TransientError(f"token request failed: {detail}"[:300])


def send_authorized(
    connector: Connector,
    tokens: TokenSource,
    method: str,
    url: str,
    *,
    kind: str,
    expired: Callable[[requests.Response], bool] = lambda r: r.status_code == 401,
    **kwargs: Any,
) -> requests.Response:
    """Send with a bearer token; when the API refuses it, refresh the token once and retry.

    A 401 from the API is not a refused credential (the identity provider decides that, and
    `fetch_token` raises AuthenticationError for it): tokens are revoked, an API's key cache
    lags behind the identity provider, an outage answers 401. So the first 401 fetches one
    fresh token and tries again at once; a 401 to that token is a transient failure, backed
    off and retried like a 503 for at most the connector's `retry_attempts`, without asking
    the identity provider again (a token another thread fetched meanwhile is used). Then
    TransientError, so the outbox tries again later and nothing is dead-lettered for it.
    """
    headers = dict(kwargs.pop("headers", None) or {})
    refreshed = False
    attempt = 0
    while True:
        attempt += 1
        token = tokens.get()
        headers["Authorization"] = f"Bearer {token}"
        response = connector.send(method, url, kind=kind, headers=headers, **kwargs)
        if not expired(response):
            return response
        if not refreshed:
            tokens.invalidate(token)
            refreshed = True
            continue
        if attempt > connector.retry_attempts:
            detail = f"{kind}: HTTP 401 after a fresh token, {attempt} attempts"
            detail = f"{detail} {connector.error_detail(response)}".rstrip()
            connector.note_error(detail)
            raise TransientError(detail)
        time.sleep(connector.backoff(attempt - 1))
