"""The exceptions connectors raise; re-exported by connectors.base."""

from __future__ import annotations


class ConnectorError(Exception):
    """A connector could not do what was asked. `transient` errors are worth retrying later."""

    transient: bool = False

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConnectorConfigError(ConnectorError):
    """The connector's settings are missing or invalid; the message names the setting."""


class TransientError(ConnectorError):
    """The CRM did not answer usefully (timeout, connection refused, 5xx) after bounded retries."""

    transient = True


class Throttled(TransientError):
    """The CRM asked us to slow down (429, 503 or a vendor limit); `retry_after` is in seconds."""


class AuthenticationError(ConnectorError):
    """The identity provider refused our credentials; retrying cannot help until config changes."""
