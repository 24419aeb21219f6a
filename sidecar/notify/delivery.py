"""Delivery of one message: through GOV.UK Notify's API, or by SMTP to the council's relay."""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from sidecar.notify.messages import Message
from sidecar.settings import NotificationSettings


class DeliveryError(Exception):
    """A message was not delivered; `transient` says whether trying again may work."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class DeliveryConfigError(Exception):
    """Delivery cannot start: the message names the setting or the environment variable."""


class Delivery(Protocol):
    """Sends one message to one address; returns the service's id of it, if it gives one."""

    def send(self, address: str, message: Message) -> str | None: ...


def address_of(settings: NotificationSettings, user_id: str) -> str | None:
    """The person's email address: from `notifications.addresses`, else the user id itself
    when it is one (Entra ID's user principal names are), else the id at
    `notifications.address_domain` when that is set."""
    if user_id in settings.addresses:
        return settings.addresses[user_id]
    if "@" in user_id.strip("@"):
        return user_id
    return f"{user_id}@{settings.address_domain}" if settings.address_domain else None


class NotifyDelivery:
    """GOV.UK Notify: one template per kind of notification, filled in by personalisation.

    Each template may use ((subject)), ((body)) and ((link)); Notify renders and sends it.
    POST /v2/notifications/email answers 201; 429 (rate or daily limit) and 5xx are worth
    retrying, 400 and 403 are not (https://docs.notifications.service.gov.uk/rest-api.html,
    "Error codes").
    """

    def __init__(self, settings: NotificationSettings, environ: Mapping[str, str]) -> None:
        variable = settings.notify.api_key_env
        api_key = environ.get(variable, "")
        # A key is "<name>-<service id>-<secret>": the client reads the two UUIDs off its end.
        if len(api_key) < 74:
            raise DeliveryConfigError(
                f"notifications.notify.api_key_env: environment variable {variable} does not "
                "hold a GOV.UK Notify API key"
            )
        self.templates = settings.notify.templates
        self.client = NotificationsAPIClient(
            api_key, base_url=settings.notify.base_url, timeout=settings.notify.timeout
        )

    def send(self, address: str, message: Message) -> str | None:
        try:
            answer = self.client.send_email_notification(
                email_address=address,
                template_id=self.templates[message.kind],
                personalisation={
                    "subject": message.subject,
                    "body": message.body,
                    "link": message.link,
                },
            )
        except APIError as exc:
            transient = exc.status_code == 429 or exc.status_code >= 500
            detail = exc.message
            if isinstance(detail, list):
                detail = "; ".join(f"{e.get('error')}: {e.get('message')}" for e in detail)
            raise DeliveryError(
                f"GOV.UK Notify answered {exc.status_code}: {detail}", transient=transient
            ) from None
        return str(answer.get("id")) if isinstance(answer, dict) else None


class SmtpDelivery:
    """The council's mail relay: plain text, STARTTLS when configured, login when named."""

    def __init__(self, settings: NotificationSettings, environ: Mapping[str, str]) -> None:
        self.smtp = settings.smtp
        self.password = ""
        if self.smtp.username:
            self.password = environ.get(self.smtp.password_env, "")
            if not self.password:
                raise DeliveryConfigError(
                    f"notifications.smtp.password_env: environment variable "
                    f"{self.smtp.password_env} is empty, and smtp.username is set"
                )

    def send(self, address: str, message: Message) -> str | None:
        mail = EmailMessage()
        mail["From"] = self.smtp.from_address
        mail["To"] = address
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(domain=self.smtp.from_address.rpartition("@")[2])
        mail.set_content(message.body)
        try:
            with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.smtp.timeout) as relay:
                if self.smtp.starttls:
                    relay.starttls(context=ssl.create_default_context())
                if self.smtp.username:
                    relay.login(self.smtp.username, self.password)
                relay.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _refused(code, reply) from None
        except smtplib.SMTPResponseException as exc:
            raise _refused(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Refused or dropped connections, timeouts: the relay may be back next time.
            raise DeliveryError(
                f"SMTP {self.smtp.host}:{self.smtp.port}: {exc or type(exc).__name__}",
                transient=True,
            ) from None
        return mail["Message-ID"]


def _refused(code: int, reply: bytes | str) -> DeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    # RFC 5321 section 4.2.1: 4yz is a transient failure, 5yz a permanent one.
    return DeliveryError(f"SMTP refused it: {code} {text}", transient=400 <= code < 500)


def delivery_for(
    settings: NotificationSettings, environ: Mapping[str, str] | None = None
) -> Delivery:
    """The configured delivery; DeliveryConfigError names what is missing."""
    env = os.environ if environ is None else environ
    if settings.delivery == "notify":
        return NotifyDelivery(settings, env)
    if settings.delivery == "smtp":
        return SmtpDelivery(settings, env)
    raise DeliveryConfigError("notifications.delivery: none is configured (notify or smtp)")
