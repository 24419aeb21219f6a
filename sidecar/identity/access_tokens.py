"""Bearer access tokens: short-lived, signed with the session secret, for the widget and scripts."""

from __future__ import annotations

import threading
import time
import uuid

import jwt
from cachetools import TTLCache

from sidecar.identity.user import StaffUser
from sidecar.runtime import current_runtime

ACCESS_TOKEN_SECONDS = 900
VERIFIED_TOKENS_KEPT = 10_000


def issue_access_token(user: StaffUser) -> str:
    """A bearer token for `user`, valid for ACCESS_TOKEN_SECONDS or until their session ends."""
    if not user.session_id:
        raise ValueError("an access token needs the session it belongs to")
    now = int(time.time())
    claims = {
        "typ": "forewarn-access",
        "sub": user.id,
        "name": user.name,
        "roles": list(user.roles),
        "via": user.via,
        "iat": now,
        "exp": now + ACCESS_TOKEN_SECONDS,
        "jti": uuid.uuid4().hex,
        "sid": user.session_id,
    }
    return jwt.encode(claims, current_runtime().session_secret, algorithm="HS256")


def verify_access_token(token: str, secret: str) -> tuple[StaffUser, int] | None:
    """The user an access token signs in and when it expires, or None if it is not valid."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "sub", "typ", "sid"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "forewarn-access":
        return None
    user = StaffUser(
        claims["sub"],
        claims.get("name", ""),
        tuple(claims.get("roles", ())),
        claims.get("via", "api"),
        str(claims["sid"]),
    )
    return user, int(claims["exp"])


class VerifiedTokens:
    """Tokens already verified, with their expiry.

    A widget calls with the same token for its whole life, and checking the signature again
    each time is most of a banner's sign-in cost. Only valid tokens are kept, each until it
    expires.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._tokens: TTLCache[str, tuple[StaffUser, int]] = TTLCache(
            maxsize=VERIFIED_TOKENS_KEPT, ttl=ACCESS_TOKEN_SECONDS
        )
        self._lock = threading.Lock()

    def user(self, token: str) -> StaffUser | None:
        """Who the token signs in, or None when it is not valid or has expired.

        Whether its session is still running is for the caller to ask, on every request.
        """
        with self._lock:
            known = self._tokens.get(token)
        if known is None:
            known = verify_access_token(token, self._secret)
            if known is None:
                return None
            with self._lock:
                self._tokens[token] = known
        user, expires = known
        return user if time.time() < expires else None
