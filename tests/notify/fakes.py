"""GOV.UK Notify's email API and an SMTP relay, both real servers on 127.0.0.1, for tests.

`FakeNotify` speaks `POST /v2/notifications/email` as Notify documents it
(https://docs.notifications.service.gov.uk/rest-api.html): the bearer JWT must be HS256,
signed with the API key's secret, its `iss` the service id and its `iat` within 30 seconds
of now; templates are filled in from `personalisation`, a missing field is a 400; it answers
201 with the notification's id and content, and `inject` makes it fail (5xx, 429).
`SmtpRelay` is aiosmtpd's server, keeping every message it accepts.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import jwt
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from sidecar.settings import NOTIFICATION_KINDS
from tests.connectors.fakes.server import FakeServer, Recorded, Reply

SERVICE_ID = "5f9c3a1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b"
SECRET = "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"
API_KEY = f"forewarn_test-{SERVICE_ID}-{SECRET}"
TEMPLATES = {kind: str(uuid.uuid5(uuid.NAMESPACE_URL, kind)) for kind in NOTIFICATION_KINDS}
PLACEHOLDER = re.compile(r"\(\(([^)]+)\)\)")


@dataclass
class Sent:
    """An email Notify accepted: to whom, with which template, and what it rendered."""

    email_address: str
    template_id: str
    subject: str
    body: str
    personalisation: dict[str, Any]


def _error(status: int, error: str, message: str) -> Reply:
    return Reply(status, {"status_code": status, "errors": [{"error": error, "message": message}]})


class FakeNotify(FakeServer):
    """GOV.UK Notify's email endpoint; every template is "((subject))" over "((body))"."""

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        super().__init__()
        self.secrets = secrets or {SERVICE_ID: SECRET}
        self.sent: list[Sent] = []
        self._sent_lock = threading.Lock()

    def _authorised(self, request: Recorded) -> Reply | None:
        header = request.header("Authorization") or ""
        if not header.startswith("Bearer "):
            return _error(401, "AuthError", "Unauthorized: authentication token must be provided")
        token = header.removeprefix("Bearer ")
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            if jwt.get_unverified_header(token).get("alg") != "HS256":
                return _error(403, "AuthError", "Invalid token: algorithm used is not HS256")
            secret = self.secrets.get(issuer or "")
            if secret is None:
                return _error(403, "AuthError", "Invalid token: service not found")
            claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=30)
        except jwt.InvalidSignatureError:
            return _error(403, "AuthError", "Invalid token: signature, api token not found")
        except jwt.PyJWTError as exc:
            return _error(403, "AuthError", f"Invalid token: {exc}")
        if "iat" not in claims or abs(time.time() - int(claims["iat"])) > 30:
            return _error(403, "AuthError", "Error: Your system clock must be accurate to 30s")
        return None

    def handle(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path != "/v2/notifications/email":
            return _error(404, "NotFound", "Not Found")
        refused = self._authorised(request)
        if refused is not None:
            return refused
        body = request.json()
        address, template = body.get("email_address"), body.get("template_id")
        if not isinstance(address, str) or "@" not in address:
            return _error(400, "ValidationError", "email_address Not a valid email address")
        if template not in TEMPLATES.values():
            return _error(400, "BadRequestError", "Template not found")
        fields = body.get("personalisation") or {}
        missing = [f for f in ("subject", "body") if f not in fields]
        if missing:
            return _error(400, "BadRequestError", f"Missing personalisation: {missing[0]}")
        subject = PLACEHOLDER.sub(lambda m: str(fields[m.group(1)]), "((subject))")
        text = PLACEHOLDER.sub(lambda m: str(fields[m.group(1)]), "((body))")
        notification = str(uuid.uuid4())
        with self._sent_lock:
            self.sent.append(Sent(address, template, subject, text, dict(fields)))
        return Reply(
            201,
            {
                "id": notification,
                "reference": body.get("reference"),
                "content": {"subject": subject, "body": text, "from_email": "forewarn@notify"},
                "uri": f"{self.url}/v2/notifications/{notification}",
                "template": {"id": template, "version": 1, "uri": f"{self.url}/v2/template/x"},
            },
        )

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """`[notifications]` for delivery through this fake."""
        return {
            "delivery": "notify",
            "details_digest": "immediately",
            "address_domain": "council.example",
            "notify": {
                "base_url": self.url,
                "api_key_env": "FW_TEST_NOTIFY_KEY",
                "templates": TEMPLATES,
                "timeout": 2.0,
            },
            **overrides,
        }


class _Keeper:
    def __init__(self, relay: SmtpRelay) -> None:
        self.relay = relay

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if address in self.relay.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        mail = message_from_bytes(content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.relay.messages.append(mail)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    # aiosmtpd's controller checks its server by connecting to the port it was given, so it
    # needs a real one, not 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpRelay:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 keeping each message; `refuse` holds
    recipient addresses it answers 550."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()
        self.port = _free_port()
        self.controller: Controller | None = None

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[SmtpRelay]:
        relay = cls()
        relay.up()
        try:
            yield relay
        finally:
            relay.down()

    def up(self) -> None:
        """Listen (again) on the relay's port."""
        self.controller = Controller(_Keeper(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def down(self) -> None:
        """Stop listening: connections are refused until `up`."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """`[notifications]` for delivery through this relay (no TLS on the test's loopback)."""
        return {
            "delivery": "smtp",
            "details_digest": "immediately",
            "address_domain": "council.example",
            "smtp": {
                "host": "127.0.0.1",
                "port": self.port,
                "from_address": "forewarn@council.example",
                "starttls": False,
                "timeout": 2.0,
            },
            **overrides,
        }
