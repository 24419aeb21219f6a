"""Typed settings: `config/forewarn.toml` plus environment overrides, validated at start-up."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LEVELS = ("amber", "red")
"""The only flag levels, lowest first. Config may relabel them, never add to them."""

PERMISSIONS = frozenset(
    {
        "banner.read",
        "details.request",
        "incident.create",
        "incident.read",
        "incident.triage",
        "flag.read",
        "flag.propose",
        "flag.withdraw",
        "panel.decide",
        "notice.issue",
        "notice.permit_withheld",
        "appeal.lodge",
        "appeal.decide",
        "review.record",
        "report.read",
        "audit.read",
        "alerts.read",
        "sar.export",
        "sync.manage",
    }
)
"""Every permission a role can hold; config naming anything else is refused."""

ROLES = (
    "agent",
    "visiting_officer",
    "case_officer",
    "customer_support_manager",
    "senior_manager",
    "hs_manager",
    "service_director",
    "legal",
    "auditor",
    "admin",
)

DEFAULT_CONFIG = Path("config/forewarn.toml")


class SettingsError(Exception):
    """The configuration is invalid; the message names the setting."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentSettings(_Section):
    database_url: str = ""
    production: bool = False
    public_url: str = "http://127.0.0.1:8000"
    council_name: str = "Council"


class PolicySettings(_Section):
    appeal_window_days: int = Field(21, ge=1, le=90)
    review_period_months: int = Field(12, ge=1, le=36)
    imported_review_months: int = Field(3, ge=1, le=12)
    notice_due_days: int = Field(14, ge=1, le=90)
    retention_months_after_end: int = Field(24, ge=1, le=120)
    grant_hours: int = Field(8, ge=1, le=72)
    grant_reason_min_length: int = Field(15, ge=1, le=500)


def _nonempty_catalogue(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("must list at least one entry")
    for code, label in value.items():
        if not code.replace("_", "").isalnum() or code != code.lower():
            raise ValueError(f"code {code!r} must be snake_case")
        if not label.strip():
            raise ValueError(f"label for {code!r} is empty")
    return value


class Catalogue(_Section):
    levels: dict[str, str]
    categories: dict[str, str]
    restrictions: dict[str, str]
    behaviour_types: dict[str, str]
    channels: dict[str, str]
    reason_codes: dict[str, str]

    _check = field_validator(
        "categories", "restrictions", "behaviour_types", "channels", "reason_codes"
    )(_nonempty_catalogue)

    @field_validator("levels")
    @classmethod
    def _known_levels(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(LEVELS))
        if unknown:
            raise ValueError(f"unknown level {unknown[0]!r}; levels are {', '.join(LEVELS)}")
        missing = sorted(set(LEVELS) - set(value))
        if missing:
            raise ValueError(f"missing level {missing[0]!r}")
        return {code: value[code] for code in LEVELS}


class AuditSettings(_Section):
    checkpoint_every_entries: int = Field(1000, ge=1, le=1_000_000)
    checkpoint_every_seconds: int = Field(300, ge=1, le=86_400)
    checkpoint_file: str = ""
    checkpoint_url: str = ""
    lock_timeout_ms: int = Field(5000, ge=50, le=60_000)
    group_commit_max: int = Field(256, ge=1, le=10_000)
    retention_months: int = Field(72, ge=1, le=1200)
    sar_include_staff_identities: bool = False
    page_size_max: int = Field(500, ge=1, le=10_000)

    @field_validator("checkpoint_url")
    @classmethod
    def _https_or_loopback(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError("must be an https:// URL (plain http only to this machine)")
        return value

    def checkpoint_path(self, instance_dir: Path) -> Path | None:
        """The checkpoint file, relative paths taken from the instance directory."""
        if not self.checkpoint_file:
            return None
        return instance_dir / Path(self.checkpoint_file).expanduser()


class AccessSettings(_Section):
    roles: dict[str, frozenset[str]]

    @field_validator("roles")
    @classmethod
    def _known_roles_and_permissions(
        cls, value: dict[str, frozenset[str]]
    ) -> dict[str, frozenset[str]]:
        for role, permissions in value.items():
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}")
            unknown = sorted(permissions - PERMISSIONS)
            if unknown:
                raise ValueError(f"role {role!r} names unknown permission {unknown[0]!r}")
        return value


class Settings(_Section):
    """Everything the app reads at start-up. Built by `load_settings`, never at import."""

    instance_dir: Path
    config_path: Path | None = None
    database_url: str
    demo: bool = False
    deployment: DeploymentSettings = DeploymentSettings()
    policy: PolicySettings = PolicySettings()
    audit: AuditSettings = AuditSettings()
    catalogue: Catalogue
    access: AccessSettings

    @model_validator(mode="after")
    def _grant_reason_code_other_exists(self) -> Settings:
        if "other" not in self.catalogue.reason_codes:
            raise ValueError("catalogue.reason_codes must include 'other'")
        return self

    def label(self, catalogue: str, code: str) -> str:
        """Display label of a catalogue code (the code itself if unknown)."""
        return getattr(self.catalogue, catalogue).get(code, code)


def _format_errors(source: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"setting '{where}': {message}")
    return f"{source}: " + "; ".join(problems)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    *,
    instance_dir: str | os.PathLike[str] | None = None,
    database_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the TOML file and the environment into validated settings.

    Precedence: explicit arguments, then FOREWARN_* environment variables, then the file.
    `overrides` replaces whole top-level sections' keys (used by tests to vary policy).
    """
    env = os.environ if environ is None else environ
    path = Path(config_path or env.get("FOREWARN_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist (set FOREWARN_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None

    for section, values in (overrides or {}).items():
        if isinstance(values, Mapping) and isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], **values}
        else:
            raw[section] = values

    instance = Path(instance_dir or env.get("FOREWARN_INSTANCE") or "instance").resolve()
    deployment = raw.get("deployment", {})
    url = (
        database_url
        or env.get("FOREWARN_DATABASE_URL")
        or deployment.get("database_url")
        or f"sqlite:///{instance / 'forewarn.db'}"
    )
    data = {
        **raw,
        "instance_dir": instance,
        "config_path": path.resolve(),
        "database_url": url,
        "demo": (instance / "DEMO").exists(),
    }
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_format_errors(str(path), exc)) from None
