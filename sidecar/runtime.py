"""The running app's runtime: settings, storage, keys, metrics and connectors."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from prometheus_client import CollectorRegistry, Counter

from connectors.base import Connector, ConnectorConfigError
from sidecar.audit.writer import AuditWriter
from sidecar.identity.launch_keys import KeySourceError, LaunchKeys
from sidecar.settings import Settings
from sidecar.storage.crypto import KeyRing, KeyRingError
from sidecar.storage.database import Database, StorageError
from sidecar.storage.keys import AuditKeys, KeyFiles, read_secret
from sidecar.sync.outbox import load_connectors


class StartupError(Exception):
    """The app must not start; the message says what to fix."""


class Metrics:
    """Prometheus counters of one app (its own registry, so tests and apps do not mix)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.audit_write_failures = Counter(
            "forewarn_audit_write_failures",
            "Audit entries that could not be written (each refused a request)",
            registry=self.registry,
        )
        self.audit_entries_written = Counter(
            "forewarn_audit_entries_written",
            "Audit entries committed by group commit",
            registry=self.registry,
        )
        self.audit_group_commits = Counter(
            "forewarn_audit_group_commits",
            "Group commits of audit entries (one transaction and fsync each)",
            registry=self.registry,
        )
        self.audit_sink_failures = Counter(
            "forewarn_audit_checkpoint_sink_failures",
            "Signed checkpoints that could not be sent to an external sink",
            registry=self.registry,
        )


@dataclass
class Runtime:
    """Everything one app holds for its life, built once by `build_runtime`."""

    settings: Settings
    database: Database
    keyring: KeyRing
    session_secret: str
    launch_keys: LaunchKeys
    audit_keys: AuditKeys
    metrics: Metrics
    audit: AuditWriter
    connectors: dict[str, Connector]


def build_runtime(settings: Settings) -> Runtime:
    files = KeyFiles.of(settings.instance_dir)
    if settings.deployment.production and (settings.demo or files.launch_demo_key.exists()):
        raise StartupError(
            "deployment.production is set but this instance holds demo data or the demo "
            f"launch key ({files.launch_demo_key}); initialise a fresh instance without --demo"
        )
    try:
        keyring = KeyRing.load(files.data_keys)
        session_secret = read_secret(files.session_secret, "session secret")
        audit_keys = AuditKeys(files)
        launch_keys = LaunchKeys(
            path=files.launch_jwks,
            url=settings.identity.launch_jwks_url,
            ttl_seconds=settings.identity.jwks_cache_seconds,
            refresh_min_seconds=settings.identity.jwks_refresh_min_seconds,
        )
    except (KeyRingError, KeySourceError, ValueError) as exc:
        raise StartupError(str(exc)) from None
    try:
        connectors = load_connectors(settings)
    except ConnectorConfigError as exc:
        raise StartupError(str(exc)) from None
    database = Database(settings.database_url)
    try:
        database.ping()
    except StorageError as exc:
        database.dispose()
        raise StartupError(str(exc)) from None
    metrics = Metrics()
    writer = AuditWriter(database, settings.audit, audit_keys, settings.instance_dir, metrics)
    return Runtime(
        settings,
        database,
        keyring,
        session_secret,
        launch_keys,
        audit_keys,
        metrics,
        writer,
        connectors,
    )


def current_runtime() -> Runtime:
    """The runtime of the app handling this request or command."""
    return current_app.extensions["forewarn"]  # type: ignore[no-any-return]
