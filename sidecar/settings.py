"""Typed settings: `config/forewarn.toml` plus environment overrides, validated at start-up."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sidecar.register.rules import TRIAGE_OUTCOMES

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
        "subject.link",
        "panel.decide",
        "notice.issue",
        "notice.permit_withheld",
        "notice.record_guidance",
        "appeal.lodge",
        "appeal.assign",
        "appeal.decide",
        "review.assign",
        "review.record",
        "report.read",
        "decision.read",
        "decision.record",
        "audit.read",
        "alerts.read",
        "sar.export",
        "sync.manage",
        "sessions.manage",
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
    "privacy_officer",
    "admin",
)

ROLE_NAMES = {
    "agent": "Contact Centre Agent",
    "visiting_officer": "Visiting Officer",
    "case_officer": "Case Officer",
    "customer_support_manager": "Customer Support Manager",
    "senior_manager": "Service Senior Manager",
    "hs_manager": "Health and Safety Manager",
    "service_director": "Service Director",
    "legal": "Head of Legal",
    "auditor": "Auditor",
    "privacy_officer": "Privacy Officer",
    "admin": "IT Administrator",
}
"""Each role as staff read it, on the banner, the details and the console."""

NEVER_DETAILS = frozenset({"admin", "auditor", "privacy_officer"})
"""Roles that config may never give `details.request`: they oversee, they do not visit.

A privacy officer reaches a person's data only through the subject access export, one
deliberate, audited act per request."""

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
    # "require": a proposal says when the person was warned, or why they were not.
    warning_before_flag: Literal["record", "require"] = "record"
    review_period_months: int = Field(12, ge=1, le=36)
    imported_review_months: int = Field(3, ge=1, le=12)
    notice_due_days: int = Field(14, ge=1, le=90)
    retention_months_after_end: int = Field(24, ge=1, le=120)
    grant_hours: int = Field(8, ge=1, le=72)
    grant_reason_min_length: int = Field(15, ge=1, le=500)
    # The outcomes a manager may give an incident's triage, of those Forewarn knows.
    triage_outcomes: tuple[str, ...] = TRIAGE_OUTCOMES

    @field_validator("triage_outcomes")
    @classmethod
    def _known_outcomes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [code for code in value if code not in TRIAGE_OUTCOMES]
        if unknown:
            raise ValueError(
                f"unknown outcome {unknown[0]!r}; outcomes are {', '.join(TRIAGE_OUTCOMES)}"
            )
        if not value:
            raise ValueError("name at least one outcome")
        return value


class LifecycleSettings(_Section):
    review_due_soon_days: int = Field(30, ge=0, le=180)
    letters_dir: str = ""
    appeal_address: str = "The Customer Support Manager"
    letter_signoff_title: str = "Customer Support Manager"
    letter_signatory_role: str = "customer_support_manager"
    # Role whose holder gives permission to withhold a decision letter (Eastleigh 28: a Service
    # Director); it needs notice.permit_withheld. Empty: this council always sends the letter.
    withhold_permission_role: str = "service_director"
    # Name the Senior Manager handling the case from the decision letter on, for the whole
    # appeal window (Eastleigh 30), not only once an appeal is lodged.
    name_handler_in_window: bool = False


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
    # Other systems an incident may also be recorded in, e.g. York's B-Safe; none by default.
    external_references: dict[str, str] = {}
    contact_decisions: dict[str, str] = {
        "no_further_complaints": "Further complaints on the same matter not processed",
        "no_reply": "Further correspondence on the same matter not answered",
        "single_point_of_contact": "Correspondence through a single point of contact",
        "policy_exception": "Exception to the policy",
    }

    _check = field_validator(
        "categories",
        "restrictions",
        "behaviour_types",
        "channels",
        "reason_codes",
        "contact_decisions",
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
    checkpoint_every_entries: int = Field(200, ge=1, le=1_000_000)
    checkpoint_every_seconds: int = Field(2, ge=1, le=86_400)
    checkpoint_file: str = "audit-checkpoints.jsonl"
    checkpoint_url: str = ""
    lock_timeout_ms: int = Field(5000, ge=50, le=60_000)
    # At most 2,000 so one batch's multi-row INSERT stays under PostgreSQL's 65,535 parameters.
    group_commit_max: int = Field(256, ge=1, le=2_000)
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


def _snake_case(code: str) -> bool:
    return bool(code) and code.replace("_", "").isalnum() and code == code.lower()


class AccessSettings(_Section):
    roles: dict[str, frozenset[str]]
    # Roles of this council beyond Forewarn's own (Workington's Mayor): code = how staff read it.
    council_roles: dict[str, str] = {}

    @field_validator("council_roles")
    @classmethod
    def _new_role_codes(cls, value: dict[str, str]) -> dict[str, str]:
        for code, name in value.items():
            if not _snake_case(code):
                raise ValueError(f"role code {code!r} must be snake_case")
            if code in ROLES:
                raise ValueError(f"{code!r} is already one of Forewarn's roles")
            if not name.strip():
                raise ValueError(f"name of role {code!r} is empty")
        return value

    @model_validator(mode="after")
    def _known_roles_and_permissions(self) -> AccessSettings:
        known = set(ROLES) | set(self.council_roles)
        for role, permissions in self.roles.items():
            if role not in known:
                raise ValueError(
                    f"setting 'access.roles': unknown role {role!r} (add it to "
                    "access.council_roles to give the council a role of its own)"
                )
            unknown = sorted(permissions - PERMISSIONS)
            if unknown:
                raise ValueError(
                    f"setting 'access.roles': role {role!r} names unknown permission {unknown[0]!r}"
                )
            # Oversight roles see that access happened, never what was disclosed.
            if role in NEVER_DETAILS and "details.request" in permissions:
                raise ValueError(
                    f"setting 'access.roles': role {role!r} may not hold 'details.request'"
                )
        return self

    @property
    def known_roles(self) -> tuple[str, ...]:
        """Forewarn's roles, then the council's own."""
        return ROLES + tuple(self.council_roles)

    def role_name(self, role: str) -> str:
        """A role as staff read it ("Health and Safety Manager"); an unknown code as given."""
        return ROLE_NAMES.get(role) or self.council_roles.get(role) or role


def _check_seats(
    section: str,
    seats: tuple[str, tuple[str, ...]],
    needed: tuple[str, int, str, str, str],
    subsets: dict[str, tuple[str, ...]],
    outside_means: str,
) -> None:
    """Refuse seats that cannot decide: no role, a role twice, more agreement needed than
    seats, or a required (or uninvolved) role that does not sit. Names the setting."""
    key, roles = seats
    count_key, count, counted, of, never = needed
    where = f"{section}.{key}"
    if not roles:
        raise ValueError(f"setting '{where}': name at least one role")
    if len(set(roles)) != len(roles):
        raise ValueError(f"setting '{where}': a role is listed twice")
    if count > len(roles):
        raise ValueError(
            f"setting '{section}.{count_key}': {count} {counted} {len(roles)} {of} ({where}) "
            f"can never {never}"
        )
    for name, subset in subsets.items():
        outside = [role for role in subset if role not in roles]
        if outside:
            raise ValueError(
                f"setting '{section}.{name}': {outside[0]!r} {outside_means} ({where})"
            )
    if len(set(subsets.get("required_roles", ()))) > count:
        raise ValueError(
            f"setting '{section}.required_roles': more required roles than {section}.{count_key}"
        )


class PanelSettings(_Section):
    """Who decides whether a flag is raised: Eastleigh's case review panel by default.

    Each seat is always a different person: nobody decides twice on one proposal."""

    roles: tuple[str, ...] = ("customer_support_manager", "senior_manager", "hs_manager")
    approvals_needed: int = Field(3, ge=1)
    required_roles: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> PanelSettings:
        _check_seats(
            "panel",
            ("roles", self.roles),
            ("approvals_needed", self.approvals_needed, "approvals from", "seats", "be reached"),
            {"required_roles": self.required_roles},
            "does not sit on the panel",
        )
        return self


class ReviewSettings(_Section):
    """Who takes part in a flag's periodic review; by default whoever it is assigned to."""

    # Roles that must be among the review's assigned reviewers (Eastleigh 34: the Customer
    # Support Manager and the Health and Safety Manager); empty: any assigned reviewer.
    reviewer_roles: tuple[str, ...] = ()
    # Role of the person the review's recommendations are agreed with (Eastleigh 34: the
    # service's Senior Manager), named on each review; empty: none.
    agreed_with_role: str = ""


class AppealSettings(_Section):
    """Who decides an appeal: one Service Director with no prior involvement by default."""

    decider_roles: tuple[str, ...] = ("service_director",)
    deciders_needed: int = Field(1, ge=1)
    required_roles: tuple[str, ...] = ()
    uninvolved_roles: tuple[str, ...] = ("service_director",)
    # Role of whoever handles an appeal (Eastleigh 30: the service's Senior Manager): the panel
    # member in it by default, else the one a holder of appeal.assign names. Needs flag.read.
    handler_role: str = "senior_manager"

    @model_validator(mode="after")
    def _consistent(self) -> AppealSettings:
        _check_seats(
            "appeals",
            ("decider_roles", self.decider_roles),
            ("deciders_needed", self.deciders_needed, "deciders from", "roles", "agree"),
            {"required_roles": self.required_roles, "uninvolved_roles": self.uninvolved_roles},
            "does not decide appeals",
        )
        return self


def _exact_origin(origin: str) -> str:
    scheme, sep, rest = origin.partition("://")
    if scheme not in ("https", "http") or not sep or not rest or any(c in rest for c in "/*?# "):
        raise ValueError(f"{origin!r} is not an origin like https://crm.example.org[:port]")
    return origin


class LookupSettings(_Section):
    status_cache_seconds: float = Field(300.0, ge=0, le=86_400)
    status_cache_size: int = Field(10_000, ge=1, le=1_000_000)
    crm_origins: tuple[str, ...] = ()
    timezone: str = "Europe/London"
    visit_days_ahead: int = Field(14, ge=0, le=90)
    alert_grants_per_day: int = Field(5, ge=1, le=1000)
    alert_refused_sign_ins: int = Field(5, ge=1, le=1000)
    alert_refused_sign_ins_minutes: int = Field(15, ge=1, le=1440)
    name_linked_customers: bool = False
    teams: dict[str, frozenset[str]] = {}

    @field_validator("crm_origins")
    @classmethod
    def _exact_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_exact_origin(origin) for origin in value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class OidcSettings(_Section):
    enabled: bool = False
    issuer: str = ""
    client_id: str = ""
    client_secret_env: str = "FOREWARN_OIDC_CLIENT_SECRET"
    scopes: str = "openid profile"
    role_claim: str = Field("roles", pattern="^(roles|groups)$")
    user_claim: str = "sub"
    name_claim: str = "name"

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> OidcSettings:
        if self.enabled and not (self.issuer and self.client_id and self.client_secret_env):
            raise ValueError("enabled needs issuer, client_id and client_secret_env")
        if self.enabled and "openid" not in self.scopes.split():
            raise ValueError("scopes must include 'openid'")
        return self


class CanvasRecord(_Section):
    kind: str = Field(pattern="^(customer|property)$")
    ref_field: str = "Id"


class CanvasSettings(_Section):
    enabled: bool = False
    consumer_secret_env: str = "FOREWARN_CANVAS_CONSUMER_SECRET"
    max_age_seconds: int = Field(300, ge=10, le=3600)
    user_field: str = Field("userName", pattern="^(userName|userId|email)$")
    records: dict[str, CanvasRecord] = {}


class IdentitySettings(_Section):
    launch_jwks_url: str = ""
    launch_issuer: str = Field("", max_length=512)
    jwks_cache_seconds: int = Field(300, ge=10, le=86400)
    jwks_refresh_min_seconds: int = Field(60, ge=1, le=3600)
    role_names_pass_through: bool = True
    role_map: dict[str, list[str]] = {}
    session_idle_seconds: int = Field(1800, ge=1, le=86400)
    session_absolute_seconds: int = Field(28800, ge=1, le=7 * 86400)
    embedding: bool = True
    oidc: OidcSettings = OidcSettings()
    canvas: CanvasSettings = CanvasSettings()

    @field_validator("role_map", mode="before")
    @classmethod
    def _single_role_as_list(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("launch_jwks_url")
    @classmethod
    def _https_jwks(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("must be an https URL (plain http only for 127.0.0.1/localhost)")
        return value

    @model_validator(mode="after")
    def _absolute_covers_idle(self) -> IdentitySettings:
        if self.session_absolute_seconds < self.session_idle_seconds:
            raise ValueError("session_absolute_seconds must be at least session_idle_seconds")
        return self


class FhirSettings(_Section):
    # Identifier systems of the subjects a Flag names; empty: `{public_url}/fhir/r4/Id/customer`.
    customer_identifier_system: str = ""
    uprn_identifier_system: str = "https://fhir.hl7.org.uk/Id/uprn"
    # The council as the Flags' author: an identifier (e.g. its ODS code) when both are set.
    organisation_identifier_system: str = "https://fhir.nhs.uk/Id/ods-organization-code"
    organisation_identifier: str = ""
    page_size: int = Field(20, ge=1, le=1000)
    page_size_max: int = Field(100, ge=1, le=1000)

    @field_validator("customer_identifier_system", "uprn_identifier_system")
    @classmethod
    def _absolute_uri(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://", "urn:")):
            raise ValueError("must be an absolute URI (https://..., http://... or urn:...)")
        if "|" in value:
            raise ValueError("must not contain '|' (it separates system and value in a search)")
        return value

    @model_validator(mode="after")
    def _page_within_max(self) -> FhirSettings:
        if self.page_size > self.page_size_max:
            raise ValueError("page_size must not exceed page_size_max")
        return self


class SyncSettings(_Section):
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_base_seconds: float = Field(2.0, gt=0, le=3600)
    backoff_cap_seconds: float = Field(600.0, gt=0, le=86400)
    batch_size: int = Field(10000, ge=1, le=100000)
    claim_seconds: int = Field(300, ge=10, le=3600)
    poll_seconds: float = Field(2.0, gt=0, le=300)


DIGESTS = ("immediately", "hourly", "daily")
"""How often a responsible manager hears that their flags' details were opened."""

NOTIFICATION_KINDS = (
    "details_opened",
    "privacy_alert",
    "awaiting_vote",
    "review_due",
    "appeal_window",
    "appeal_assigned",
    "appeal_to_decide",
)
"""Every kind of notification, each with its own GOV.UK Notify template."""


class NotifySettings(_Section):
    # GOV.UK Notify's API; a test or a proxy may point elsewhere.
    base_url: str = "https://api.notifications.service.gov.uk"
    api_key_env: str = "FOREWARN_NOTIFY_API_KEY"
    templates: dict[str, str] = {}
    timeout: float = Field(30.0, gt=0, le=300)

    @field_validator("templates")
    @classmethod
    def _known_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(NOTIFICATION_KINDS))
        if unknown:
            kinds = ", ".join(NOTIFICATION_KINDS)
            raise ValueError(f"unknown notification kind {unknown[0]!r}; kinds are {kinds}")
        return value


class SmtpSettings(_Section):
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    from_address: str = ""
    starttls: bool = True
    username: str = ""
    password_env: str = "FOREWARN_SMTP_PASSWORD"
    timeout: float = Field(30.0, gt=0, le=300)


class NotificationSettings(_Section):
    delivery: Literal["", "notify", "smtp"] = ""
    console_url: str = ""
    details_digest: Literal["immediately", "hourly", "daily"] = "daily"
    digest_by_recipient: dict[str, Literal["immediately", "hourly", "daily"]] = {}
    daily_digest_hour: int = Field(8, ge=0, le=23)
    review_due_lead_days: int = Field(14, ge=0, le=180)
    appeal_window_lead_days: int = Field(3, ge=0, le=90)
    scan_minutes: int = Field(60, ge=1, le=1440)
    batch_size: int = Field(100, ge=1, le=10_000)
    addresses: dict[str, str] = {}
    address_domain: str = Field("", pattern=r"^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)?$")
    notify: NotifySettings = NotifySettings()
    smtp: SmtpSettings = SmtpSettings()

    @property
    def enabled(self) -> bool:
        return bool(self.delivery)

    @field_validator("addresses")
    @classmethod
    def _email_addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for user, address in value.items():
            if "@" not in address.strip("@") or any(c.isspace() for c in address):
                raise ValueError(f"address of {user!r} is not an email address: {address!r}")
        return value

    @model_validator(mode="after")
    def _complete_delivery(self) -> NotificationSettings:
        if self.delivery == "notify":
            missing = [kind for kind in NOTIFICATION_KINDS if kind not in self.notify.templates]
            if missing:
                raise ValueError(f"delivery 'notify' needs notify.templates.{missing[0]}")
        if self.delivery == "smtp" and "@" not in self.smtp.from_address:
            raise ValueError("delivery 'smtp' needs smtp.from_address")
        return self


def _connector_tables(value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for name, table in value.items():
        if not isinstance(table, dict):
            raise ValueError(f"connector {name!r} must be a table")
        if not isinstance(table.get("kind"), str) or not table["kind"]:
            raise ValueError(f'connector {name!r} needs kind = "dataverse", "salesforce" or ...')
    return value


class Settings(_Section):
    """Everything the app reads at start-up. Built by `load_settings`, never at import."""

    instance_dir: Path
    config_path: Path | None = None
    database_url: str
    demo: bool = False
    deployment: DeploymentSettings = DeploymentSettings()
    policy: PolicySettings = PolicySettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    panel: PanelSettings = PanelSettings()
    appeals: AppealSettings = AppealSettings()
    reviews: ReviewSettings = ReviewSettings()

    audit: AuditSettings = AuditSettings()
    catalogue: Catalogue
    access: AccessSettings
    lookup: LookupSettings = LookupSettings()
    identity: IdentitySettings = IdentitySettings()
    fhir: FhirSettings = FhirSettings()

    sync: SyncSettings = SyncSettings()
    notifications: NotificationSettings = NotificationSettings()
    connectors: dict[str, dict[str, Any]] = {}

    _connectors = field_validator("connectors")(_connector_tables)

    @model_validator(mode="after")
    def _grant_reason_code_other_exists(self) -> Settings:
        if "other" not in self.catalogue.reason_codes:
            raise ValueError("catalogue.reason_codes must include 'other'")
        return self

    @model_validator(mode="after")
    def _roles_consistent(self) -> Settings:
        """Every role a setting names is one of Forewarn's or the council's own."""
        known = set(self.access.known_roles)
        for name, roles in self.identity.role_map.items():
            unknown = sorted(set(roles) - known)
            if unknown:
                raise ValueError(
                    f"setting 'identity.role_map': {name!r} maps to unknown role {unknown[0]!r}"
                )
        for setting, roles in (
            ("lifecycle.letter_signatory_role", (self.lifecycle.letter_signatory_role,)),
            ("panel.roles", self.panel.roles),
            ("appeals.decider_roles", self.appeals.decider_roles),
            ("reviews.reviewer_roles", self.reviews.reviewer_roles),
            ("reviews.agreed_with_role", tuple(filter(None, [self.reviews.agreed_with_role]))),
        ):
            for role in roles:
                if role not in known:
                    raise ValueError(
                        f"setting '{setting}': {role!r} is not a role (roles: "
                        f"{', '.join(self.access.known_roles)})"
                    )
        for setting, roles, permission, does in (
            ("reviews.reviewer_roles", self.reviews.reviewer_roles, "review.record", "reviews"),
            ("appeals.handler_role", (self.appeals.handler_role,), "flag.read", "handles appeals"),
            (
                "lifecycle.withhold_permission_role",
                tuple(filter(None, [self.lifecycle.withhold_permission_role])),
                "notice.permit_withheld",
                "permits withholding a letter",
            ),
        ):
            for role in roles:
                if role not in known:
                    raise ValueError(
                        f"setting '{setting}': {role!r} is not a role (roles: "
                        f"{', '.join(self.access.known_roles)})"
                    )
                if permission not in self.access.roles.get(role, ()):
                    raise ValueError(
                        f"setting '{setting}': role {role!r} {does} but does not hold "
                        f"{permission!r} in access.roles"
                    )
        return self

    @property
    def console_url(self) -> str:
        """Base URL of the console pages notifications link to."""
        return (self.notifications.console_url or self.deployment.public_url).rstrip("/")

    @property
    def letters_path(self) -> Path:
        """Directory of the letter templates: `lifecycle.letters_dir` (relative to the settings
        file), else letters/ beside the file."""
        base = self.config_path.parent if self.config_path else DEFAULT_CONFIG.parent
        if self.lifecycle.letters_dir:
            # A relative directory is taken from the settings file's, wherever Forewarn runs.
            return base / Path(self.lifecycle.letters_dir).expanduser()
        return base / "letters"

    def label(self, catalogue: str, code: str) -> str:
        """Display label of a catalogue code (the code itself if unknown)."""
        return getattr(self.catalogue, catalogue).get(code, code)


def _format_errors(source: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if message.startswith("setting '"):
            problems.append(message)  # a check across settings names the one at fault
        else:
            problems.append(f"setting '{where}': {message}")
    return f"{source}: " + "; ".join(problems)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist (set FOREWARN_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None


def _extended(path: Path, base: Any) -> dict[str, Any]:
    """The file a settings file `extends` (relative to it), itself extending nothing."""
    if not isinstance(base, str) or not base:
        raise SettingsError(f"{path}: setting 'extends' must name a settings file")
    base_path = path.parent / Path(base).expanduser()
    raw = _read_toml(base_path)
    if "extends" in raw:
        raise SettingsError(f"{path}: setting 'extends': {base_path} extends another file")
    return raw


def _merged(raw: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` over `raw`, section by section: a key given replaces the key in `raw` (a whole
    catalogue, the whole role table), a key not given keeps raw's."""
    merged = dict(raw)
    for section, values in changes.items():
        if isinstance(values, Mapping) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


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
    A file may name `extends = "FILE"` (relative to it): its sections' keys then replace
    those of that file (a council's settings over the shipped defaults). `overrides`
    replaces top-level sections' keys the same way (used by tests to vary policy).
    """
    env = os.environ if environ is None else environ
    path = Path(config_path or env.get("FOREWARN_CONFIG") or DEFAULT_CONFIG)
    raw = _read_toml(path)
    if "extends" in raw:
        raw = _merged(_extended(path, raw.pop("extends")), raw)
    raw = _merged(raw, overrides or {})

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
