"""Typed reads of one connector's settings, failing with the name of the setting at fault."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from connectors.errors import ConnectorConfigError

# Table, column and field names end up in URLs and queries: letters, digits, underscores.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Keys that would mean a secret was written into the config file instead of the environment.
_SECRET_WORDS = ("secret", "password", "private_key", "token")
_SECRET_ALLOWED_SUFFIXES = ("_env", "_path", "_url")
# The service may pass its whole config table; these keys belong to it, not to the connector.
_SERVICE_KEYS = frozenset({"kind", "enabled"})


class SettingsReader:
    """Reads typed values from a connector's settings mapping and remembers which it read."""

    def __init__(
        self, connector: str, settings: Mapping[str, Any], environ: Mapping[str, str]
    ) -> None:
        if not isinstance(settings, Mapping):
            raise ConnectorConfigError(f"connector {connector!r}: settings must be a table")
        self.connector = connector
        self._values = dict(settings)
        self._environ = environ
        self._read: set[str] = set()
        for key in self._values:
            lowered = key.lower()
            if any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith(
                _SECRET_ALLOWED_SUFFIXES
            ):
                self.fail(
                    key,
                    "looks like a secret; settings name an environment variable instead "
                    f'(e.g. {key}_env = "FOREWARN_...")',
                )

    def fail(self, key: str, problem: str) -> None:
        """Raise ConnectorConfigError naming setting `key`."""
        raise ConnectorConfigError(f"connector {self.connector!r}: setting {key!r} {problem}")

    def has(self, key: str) -> bool:
        """Whether the setting is present (and not empty)."""
        return self._values.get(key) not in (None, "")

    def _get(self, key: str, default: Any, required: bool) -> Any:
        self._read.add(key)
        value = self._values.get(key)
        if value in (None, ""):
            if required:
                self.fail(key, "is required")
            return default
        return value

    def text(
        self,
        key: str,
        default: str | None = None,
        *,
        required: bool = False,
        choices: tuple[str, ...] | None = None,
    ) -> str:
        """A non-empty string, optionally one of `choices`."""
        value = self._get(key, default, required and default is None)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {type(value).__name__}")
        if choices and value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def optional_name(self, key: str) -> str:
        """A column or field name (letters, digits, underscores), or "" when not set."""
        value = self.text(key)
        if value and not IDENTIFIER.fullmatch(value):
            self.fail(key, f"must be a column or field name (letters, digits, _), not {value!r}")
        return value

    def url(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        """An absolute https URL without a trailing slash (http only for loopback test servers)."""
        value = self.text(key, default, required=required)
        if not value:
            return ""
        parts = urlsplit(value)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            self.fail(key, f"must be an https URL, not {value!r}")
        if not parts.hostname:
            self.fail(key, f"must be an absolute URL, not {value!r}")
        return value.rstrip("/")

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        required: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        """A number within [minimum, maximum]."""
        value = self._get(key, default, required)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, not {value!r}")
        self._check_range(key, value, minimum, maximum)
        return float(value)

    def integer(
        self,
        key: str,
        default: int | None = None,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        """A whole number within [minimum, maximum]."""
        value = self._get(key, default, required)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number, not {value!r}")
        self._check_range(key, value, minimum, maximum)
        return int(value)

    def boolean(self, key: str, default: bool) -> bool:
        """true or false."""
        value = self._get(key, default, False)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, not {value!r}")
        return value

    def _check_range(
        self, key: str, value: float, minimum: float | None, maximum: float | None
    ) -> None:
        if minimum is not None and value < minimum:
            self.fail(key, f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            self.fail(key, f"must be at most {maximum}, not {value}")

    def per_kind(
        self, key: str, kinds: tuple[str, ...], *, required: bool = True
    ) -> dict[str, str]:
        """Names keyed by subject kind, e.g. entity_set = {customer = "contacts"}."""
        value = self._get(key, {}, required)
        if not isinstance(value, Mapping) or not value:
            self.fail(key, "must be a table keyed by subject kind (customer, property)")
        for kind, item in value.items():
            if kind not in kinds:
                self.fail(key, f"has unknown subject kind {kind!r}; use {', '.join(kinds)}")
            if not isinstance(item, str) or not IDENTIFIER.fullmatch(item):
                self.fail(key, f"must give a name of letters, digits and _ for {kind!r}")
        return dict(value)

    def overrides(
        self, key: str, allowed: tuple[str, ...], *, identifiers: bool = False
    ) -> dict[str, str]:
        """An optional table overriding some of `allowed` entries (names, when `identifiers`)."""
        value = self._get(key, {}, False)
        if not isinstance(value, Mapping):
            self.fail(key, "must be a table")
        for name, item in value.items():
            if name not in allowed:
                self.fail(key, f"has unknown entry {name!r}; use {', '.join(allowed)}")
            if not isinstance(item, str) or not item:
                self.fail(key, f"must give a non-empty string for {name!r}")
            if identifiers and not IDENTIFIER.fullmatch(item):
                self.fail(key, f"must give a name of letters, digits and _ for {name!r}")
        return dict(value)

    def secret(self, key: str) -> str:
        """The value of the environment variable that setting `key` names (never logged)."""
        variable = self.text(key, required=True)
        value = self._environ.get(variable, "")
        if not value:
            self.fail(key, f"names environment variable {variable}, which is not set")
        return value

    def names_read(self) -> frozenset[str]:
        """Every setting the connector has asked for so far, given or left to its default."""
        return frozenset(self._read)

    def reject_unknown(self) -> None:
        """Fail on any setting that was never read: typos must not fall back to defaults."""
        unknown = sorted(set(self._values) - self._read - _SERVICE_KEYS)
        if unknown:
            self.fail(unknown[0], "is not a setting of this connector")
