"""Prometheus gauges of each connector's queue, read from the database at scrape time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from connectors.base import Connector
from sidecar.settings import Settings
from sidecar.storage.database import Database
from sidecar.sync.health import connector_health


class SyncCollector(Collector):
    """The same figures as `forewarn sync status`, without probing the CRMs."""

    def __init__(
        self, database: Database, settings: Settings, connectors: Mapping[str, Connector]
    ) -> None:
        self.database, self.settings, self.connectors = database, settings, connectors

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauges = {
            "pending": ("forewarn_sync_pending", "Subjects with a status not yet delivered"),
            "retrying": ("forewarn_sync_retrying", "Subjects waiting for another attempt"),
            "dead": ("forewarn_sync_dead_letters", "Statuses the worker gave up on"),
            "not_found": ("forewarn_sync_not_found", "Subjects the CRM has no record of"),
            "oldest": (
                "forewarn_sync_oldest_pending_seconds",
                "Age of the oldest change not yet delivered (0 when none)",
            ),
            "reconciled": (
                "forewarn_sync_last_reconcile_timestamp_seconds",
                "When the last reconciliation finished (0 when never)",
            ),
        }
        families = {
            key: GaugeMetricFamily(name, text, labels=["connector"])
            for key, (name, text) in gauges.items()
        }
        for item in connector_health(self.database, self.settings, self.connectors, probe=False):
            labels = [item.name]
            families["pending"].add_metric(labels, item.pending)
            families["retrying"].add_metric(labels, item.retrying)
            families["dead"].add_metric(labels, item.dead)
            families["not_found"].add_metric(labels, item.not_found)
            families["oldest"].add_metric(labels, item.oldest_pending_seconds or 0.0)
            reconciled = item.last_reconciled_at.timestamp() if item.last_reconciled_at else 0.0
            families["reconciled"].add_metric(labels, reconciled)
        yield from families.values()


def sync_metrics_text(
    database: Database, settings: Settings, connectors: Mapping[str, Connector]
) -> bytes:
    """The sync gauges in the Prometheus text format (empty with no connector configured)."""
    if not connectors:
        return b""
    registry = CollectorRegistry()
    registry.register(SyncCollector(database, settings, connectors))
    return generate_latest(registry)
