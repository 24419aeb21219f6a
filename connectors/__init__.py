"""CRM connectors, found through the `forewarn.connectors` entry-point group."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from connectors.base import Connector, ConnectorConfigError

GROUP = "forewarn.connectors"


def available_kinds() -> list[str]:
    """The connector kinds installed, e.g. ["dataverse", "salesforce", "webhook"]."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def load_connector(
    name: str, kind: str, settings: Mapping[str, Any], environ: Mapping[str, str] = os.environ
) -> Connector:
    """Build the connector `name` of `kind` from its settings, or fail loudly.

    An unknown kind, a class that cannot be imported or is not a Connector, and invalid
    settings all raise ConnectorConfigError, so a misconfigured sidecar refuses to start
    rather than running without a CRM sync.
    """
    found = [ep for ep in entry_points(group=GROUP) if ep.name == kind]
    if not found:
        known = ", ".join(available_kinds()) or "none installed"
        raise ConnectorConfigError(f"connector {name!r}: unknown kind {kind!r} (known: {known})")
    entry = found[0]
    try:
        cls = entry.load()
    except Exception as exc:
        raise ConnectorConfigError(
            f"connector {name!r}: kind {kind!r} could not be imported from {entry.value}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConnectorConfigError(
            f"connector {name!r}: {entry.value} is not a connectors.base.Connector subclass"
        )
    try:
        return cls(name, settings, environ)
    except ConnectorConfigError:
        raise
    except Exception as exc:
        raise ConnectorConfigError(
            f"connector {name!r}: kind {kind!r} rejected its settings: {type(exc).__name__}: {exc}"
        ) from exc


__all__ = ["GROUP", "Connector", "ConnectorConfigError", "available_kinds", "load_connector"]
