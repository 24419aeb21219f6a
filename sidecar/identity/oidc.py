"""OpenID Connect single sign-on: authorization code with PKCE, state and nonce, via Authlib."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import jwt
from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, redirect, request, session
from joserfc.errors import JoseError
from pydantic import Field
from requests import RequestException

from sidecar.api.endpoint import Input, endpoint
from sidecar.errors import Problem
from sidecar.identity.landing import landing_path
from sidecar.identity.provider_keys import ProviderClient, ProviderKeys
from sidecar.identity.roles import ClaimError, claim_values, map_roles
from sidecar.identity.signin import Attempt, refusals_recorded, sign_in
from sidecar.identity.user import StaffUser
from sidecar.runtime import StartupError, current_runtime
from sidecar.settings import Settings

bp = Blueprint("oidc", __name__, url_prefix="/auth")

NEXT_KEY = "forewarn.oidc_next"
CLIENT_KEY = "forewarn.oidc"


class LoginQuery(Input):
    next: str = Field("", max_length=512, description="Local path to land on after sign-in")


def _client() -> Any:
    client = current_app.extensions.get(CLIENT_KEY)
    if client is None:
        raise Problem(404, "not-found", "single sign-on is not configured on this instance")
    return client


@endpoint(
    bp,
    "/login",
    public=True,
    action=None,
    query=LoginQuery,
    summary="Start OIDC single sign-on: redirect to the identity provider",
    tags=["identity"],
    responses={302: "Redirect to the identity provider"},
)
def login(query: LoginQuery) -> Any:
    client = _client()
    landing = landing_path(query.next)
    settings: Settings = current_runtime().settings
    try:
        metadata = client.load_server_metadata()
    except (RequestException, ValueError):
        raise Problem(503, "idp-unavailable", "the identity provider cannot be reached") from None
    if metadata.get("issuer") != settings.identity.oidc.issuer:
        # A provider claiming another issuer is a mix-up, never a sign-in.
        raise Problem(502, "idp-misconfigured", "the identity provider names another issuer")
    session[NEXT_KEY] = landing
    redirect_uri = settings.deployment.public_url.rstrip("/") + "/auth/callback"
    return client.authorize_redirect(redirect_uri)


@endpoint(
    bp,
    "/callback",
    public=True,
    action=None,
    summary="Finish OIDC single sign-on: check state, code, ID token and nonce; start a session",
    tags=["identity"],
    responses={303: "Signed in; redirect to where the sign-in started"},
)
def callback() -> Any:
    client = _client()
    with refusals_recorded("oidc") as attempt:
        user, id_token = _verified_user(client, attempt)
        landing = landing_path(session.pop(NEXT_KEY, None))
        sign_in(user, id_token=id_token)
    return redirect(landing, code=303)


def _verified_user(client: Any, attempt: Attempt) -> tuple[StaffUser, str | None]:
    """Who the provider's answer signs in, and their raw ID token; Problem if it is refused."""
    settings: Settings = current_runtime().settings
    oidc = settings.identity.oidc
    if "state" not in request.args:
        raise Problem(400, "invalid-request", "the callback carries no state")
    _check_response_issuer(client, oidc.issuer)
    try:
        token = client.authorize_access_token(
            claims_options={"iss": {"essential": True, "values": [oidc.issuer]}}
        )
    except OAuthError as exc:
        raise Problem(401, "sign-in-failed", f"single sign-on refused: {exc.error}") from None
    except JoseError as exc:
        attempt.account = _claimed_account(client.token, oidc.user_claim)
        raise Problem(401, "sign-in-failed", f"the ID token is not valid: {exc}") from None
    except (RequestException, ValueError):
        raise Problem(503, "idp-unavailable", "the identity provider cannot be reached") from None
    claims = token.get("userinfo")
    if not claims:
        raise Problem(401, "sign-in-failed", "the identity provider returned no ID token")
    user_id = claims.get(oidc.user_claim)
    attempt.account = user_id if isinstance(user_id, str) else None
    _check_audience(claims, oidc.client_id)
    if not isinstance(user_id, str) or not user_id:
        raise Problem(401, "sign-in-failed", f"the ID token has no {oidc.user_claim!r} claim")
    attempt.verified = True
    claims = _with_userinfo(client, dict(claims), (oidc.role_claim, oidc.name_claim))
    if claims.get(oidc.role_claim) is None:
        raise Problem(
            403,
            "claim-missing",
            f"the identity provider released no {oidc.role_claim!r} claim, in the ID token "
            "or from userinfo; ask IT to release it to Forewarn",
        )
    try:
        roles = map_roles(settings, claim_values(claims[oidc.role_claim]))
    except ClaimError as exc:
        raise Problem(401, "sign-in-failed", str(exc)) from None
    name = str(claims.get(oidc.name_claim) or user_id)
    return StaffUser(user_id, name, roles, "oidc"), token.get("id_token")


def _with_userinfo(client: Any, claims: dict[str, Any], wanted: tuple[str, ...]) -> dict[str, Any]:
    """The ID token's claims, with those of `wanted` it lacks read from the userinfo endpoint.

    Many providers (oidc-provider by default) release the scopes' claims only there. The
    answer counts only if its `sub` is the ID token's (OpenID Connect Core 5.3.4), and it
    never replaces a claim the signed ID token carries.
    """
    missing = [name for name in wanted if claims.get(name) is None]
    if not missing or not client.load_server_metadata().get("userinfo_endpoint"):
        return claims
    try:
        userinfo = client.userinfo()
    except (RequestException, ValueError):
        raise Problem(503, "idp-unavailable", "the provider's userinfo cannot be read") from None
    if userinfo.get("sub") != claims.get("sub"):
        raise Problem(401, "sign-in-failed", "userinfo describes another user than the ID token")
    return claims | {name: userinfo[name] for name in missing if userinfo.get(name) is not None}


def _check_response_issuer(client: Any, issuer: str) -> None:
    """RFC 9207: the callback's `iss` names our issuer, before its code is sent anywhere.

    A browser sent here by another provider (a mix-up attack) is stopped before its code
    reaches our provider's token endpoint. A provider that says it sends `iss` must send it.
    """
    given = request.args.get("iss")
    if given is None:
        try:
            promised = client.load_server_metadata().get(
                "authorization_response_iss_parameter_supported"
            )
        except (RequestException, ValueError):
            raise Problem(
                503, "idp-unavailable", "the identity provider cannot be reached"
            ) from None
        if promised is True:
            raise Problem(
                401, "sign-in-failed", "the callback carries no iss, which the provider promises"
            )
    elif given != issuer:
        raise Problem(401, "sign-in-failed", "the callback's iss names another issuer")


def _check_audience(claims: Any, client_id: str) -> None:
    """OpenID Connect Core 3.1.3.7: the ID token is for us, and from us when shared.

    `aud` must contain our client id; with several audiences `azp` must be our client id,
    and an `azp` naming another party is refused whatever `aud` holds.
    """
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise Problem(401, "sign-in-failed", "the ID token's aud does not name this service")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise Problem(401, "sign-in-failed", "the ID token's azp does not name this service")


def _claimed_account(token: Any, user_claim: str) -> str | None:
    """Whom a refused ID token names, read without trusting it, for the refusal's record.

    Authlib keeps the token response it fetched as the client's `token` before it checks
    the ID token inside.
    """
    id_token = token.get("id_token") if isinstance(token, dict) else None
    if not isinstance(id_token, str):
        return None
    try:
        claimed = jwt.decode(id_token, options={"verify_signature": False}).get(user_claim)
    except jwt.PyJWTError:
        return None
    return claimed if isinstance(claimed, str) and claimed else None


def end_session_url(id_token: str) -> str | None:
    """Where to send the browser to sign out at the provider too, when it offers that.

    OpenID Connect RP-Initiated Logout 1.0: the provider's discovery document names an
    `end_session_endpoint`; the ID token is the hint of whom to sign out, and the browser
    comes back to the console home, which must be registered with the provider as a
    post-logout redirect URI.
    """
    client = current_app.extensions.get(CLIENT_KEY)
    if client is None:
        return None
    try:
        metadata = client.load_server_metadata()
    except (RequestException, ValueError):
        return None
    if not metadata.get("end_session_endpoint"):
        return None
    home = current_runtime().settings.deployment.public_url.rstrip("/") + "/"
    # Built here rather than by Authlib's create_logout_url, which adds a `state` that only a
    # logout callback would check: the console home has none, and would show it in its URL.
    params = {"id_token_hint": id_token, "post_logout_redirect_uri": home}
    return add_params_to_uri(
        metadata["end_session_endpoint"], params | {"client_id": client.client_id}
    )


def init_oidc(app: Flask, settings: Settings) -> None:
    """Register the provider with Authlib when SSO is on; refuse to start without its secret."""
    app.register_blueprint(bp)
    oidc = settings.identity.oidc
    if not oidc.enabled:
        return
    if settings.deployment.production and urlsplit(oidc.issuer).scheme != "https":
        # Over plain http the discovery document and the key set could be swapped in transit,
        # and with them who signs staff in.
        raise StartupError(
            f"setting 'identity.oidc.issuer': must be an https:// URL when "
            f"deployment.production is true (got {oidc.issuer!r})"
        )
    secret = os.environ.get(oidc.client_secret_env, "")
    if not secret:
        raise StartupError(
            f"identity.oidc is enabled but the environment variable {oidc.client_secret_env} "
            "holding the client secret is not set"
        )
    oauth = OAuth(app)
    client = oauth.register(
        "forewarn_oidc",
        client_cls=ProviderClient,
        client_id=oidc.client_id,
        client_secret=secret,
        server_metadata_url=oidc.issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": oidc.scopes, "code_challenge_method": "S256", "timeout": 10},
    )
    identity = settings.identity
    client.keys = ProviderKeys(identity.jwks_cache_seconds, identity.jwks_refresh_min_seconds)
    app.extensions[CLIENT_KEY] = client
