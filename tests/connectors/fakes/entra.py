"""A fake Microsoft Entra ID token endpoint (OAuth2 client credentials, v2.0)."""

from __future__ import annotations

from urllib.parse import parse_qs

from .server import FakeServer, Recorded, Reply, TokenBook

CLIENT_SECRET = "entra-test-secret"


class FakeEntraID(FakeServer):
    """Issues bearer tokens at /{tenant}/oauth2/v2.0/token to one confidential client."""

    def __init__(
        self,
        tenant: str = "tenant-1",
        client_id: str = "forewarn-app",
        client_secret: str = CLIENT_SECRET,
        scope: str = "",
        lifetime: float = 3599,
        tokens: TokenBook | None = None,
    ) -> None:
        super().__init__()
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.scope = scope  # the one scope this client may ask for; "" accepts any
        self.lifetime = lifetime
        self.tokens = tokens or TokenBook()

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.tenant}/oauth2/v2.0/token"

    def handle(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path != f"/{self.tenant}/oauth2/v2.0/token":
            return Reply(404, {"error": "invalid_request", "error_description": "AADSTS90002"})
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type"})
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return Reply(401, {"error": "invalid_client", "error_description": "AADSTS7000215"})
        if self.scope and form.get("scope") != self.scope:
            return Reply(400, {"error": "invalid_scope", "error_description": "AADSTS70011"})
        token = self.tokens.issue(self.lifetime)
        return Reply(
            200,
            {"token_type": "Bearer", "expires_in": int(self.lifetime), "access_token": token},
        )
