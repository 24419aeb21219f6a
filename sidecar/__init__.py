"""Forewarn sidecar: the warning-flag register beside a council's CRM."""

from __future__ import annotations

from sidecar.app import create_app
from sidecar.runtime import StartupError

__all__ = ["StartupError", "create_app"]
