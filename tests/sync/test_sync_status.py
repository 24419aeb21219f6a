"""What council IT sees of sync: `sync status`, `sync reconcile` and the /metrics gauges."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from sidecar import create_app
from sidecar.cli.main import cli
from sidecar.sync.models import StatusChange
from tests.conftest import CONFIG
from tests.connectors.fakes import FakeDataverse, FakeWebhookReceiver
from tests.sync.test_sync import change_flag, worker


def toml_table(name: str, values: dict[str, Any]) -> str:
    """A [connectors.NAME] table (strings, numbers, booleans and one level of sub-tables)."""
    lines, tables = [f"[connectors.{name}]"], []
    for key, value in values.items():
        if isinstance(value, dict):
            tables.append(f"[connectors.{name}.{key}]")
            tables += [f"{k} = {json.dumps(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join([*lines, *tables]) + "\n"


@pytest.fixture
def dataverse(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDataverse]:
    with FakeDataverse.start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def setup(make_settings, dataverse, tmp_path: Path, instance_dir: Path, database_url: str):
    connector = {"kind": "dataverse", **dataverse.settings(retry_attempts=1, max_retry_wait=0)}
    config = tmp_path / "forewarn.toml"
    config.write_text(CONFIG.read_text() + "\n" + toml_table("dynamics", connector))
    app = create_app(make_settings(connectors={"dynamics": connector}, sync={"max_attempts": 1}))

    secrets = dict(dataverse.environ)  # as deployed: a later change at the CRM is not seen

    def run(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--instance", str(instance_dir), *args],
            env={
                "FOREWARN_CONFIG": str(config),
                "FOREWARN_DATABASE_URL": database_url,
                **secrets,
            },
        )

    yield app, run
    app.extensions["forewarn"].database.dispose()


def test_a_new_connector_says_it_was_never_reconciled(setup) -> None:
    _, run = setup
    result = run("sync", "status")
    assert result.exit_code == 0, result.output
    assert "pending 0" in result.output
    assert "never reconciled: run `forewarn sync reconcile --connector dynamics`" in result.output
    [item] = json.loads(run("sync", "status", "--json").output)
    assert item["never_reconciled"] is True and item["last_reconciled_at"] is None


def test_status_names_each_dead_letter_and_the_oldest_undelivered_change(setup, dataverse) -> None:
    app, run = setup
    dataverse.seed("customer", "CRM-1", "CRM-2")
    dataverse.fail_record("customer", "CRM-1", code="0x80040237", message="Duplicate detected.")
    change_flag(app, "CRM-1", "red")
    worker(app).run_once()
    change_flag(app, "CRM-2", "amber")

    result = run("sync", "status")
    assert result.exit_code == 0, result.output
    assert "pending 1" in result.output and "oldest undelivered" in result.output
    assert "dead letters 1" in result.output
    assert "dead letter customer:CRM-1: 1 attempts" in result.output
    assert "0x80040237: Duplicate detected." in result.output
    [item] = json.loads(run("sync", "status", "--json").output)
    [letter] = item["dead_letter_list"]
    assert letter["subject"] == {"kind": "customer", "ref": "CRM-1"}
    assert letter["attempts"] == 1 and "Duplicate detected." in letter["last_error"]
    assert letter["at"]
    assert item["oldest_pending_seconds"] >= 0

    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'forewarn_sync_dead_letters{connector="dynamics"} 1.0' in metrics
    assert 'forewarn_sync_pending{connector="dynamics"} 1.0' in metrics
    assert 'forewarn_sync_oldest_pending_seconds{connector="dynamics"}' in metrics
    assert 'forewarn_sync_last_reconcile_timestamp_seconds{connector="dynamics"} 0.0' in metrics


def test_reconcile_names_every_record_it_could_not_deliver(setup, dataverse) -> None:
    app, run = setup
    dataverse.seed("customer", "CRM-1", "CRM-2")
    change_flag(app, "CRM-1", "red")
    change_flag(app, "CRM-2", "amber")
    dataverse.inject(503, body="unavailable", times=100, path="$batch")
    result = run("sync", "reconcile", "--connector", "dynamics")
    assert result.exit_code == 1
    assert "customer:CRM-1: queued again: " in result.output
    assert "customer:CRM-2: queued again: " in result.output
    assert "2 statuses were not delivered" in result.output
    [item] = json.loads(run("sync", "status", "--json").output)
    assert (item["pending"], item["retrying"], item["never_reconciled"]) == (2, 2, False)


def test_connectors_check_calls_the_crm_and_names_what_is_wrong(setup, dataverse) -> None:
    _, run = setup
    result = run("connectors", "check")
    assert result.exit_code == 0, result.output
    assert result.output == "dynamics (dataverse): ok: WhoAmI answered\n"
    assert dataverse.count("GET", "/WhoAmI") == 1
    dataverse.entra.client_secret = "rotated-without-telling-forewarn"
    result = run("connectors", "check", "dynamics")
    assert result.exit_code == 1, result.output
    assert "dynamics (dataverse): NOT OK: credential refused by the identity provider" in (
        result.output
    )
    assert run("connectors", "check", "nope").exit_code == 2


def test_connectors_check_names_a_bad_setting(setup, tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        CONFIG.read_text() + "\n" + toml_table("dynamics", {"kind": "dataverse", "table": {}})
    )
    result = CliRunner().invoke(
        cli,
        ["connectors", "check"],
        env={"FOREWARN_CONFIG": str(config), "FOREWARN_DATABASE_URL": database_url},
    )
    assert result.exit_code == 1
    assert "dynamics (dataverse): settings: " in result.output
    assert "setting 'environment_url' is required" in result.output


def gauges(app: Any) -> dict[tuple[str, str], float]:
    """The sync gauges /metrics exports, by (metric, connector)."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {
        (sample.name, sample.labels["connector"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("forewarn_sync_")
        for sample in family.samples
    }


def test_metrics_export_each_connectors_queue_as_gauges(
    make_settings, dataverse, monkeypatch
) -> None:
    with FakeWebhookReceiver.start() as receiver:
        for name, value in receiver.environ.items():
            monkeypatch.setenv(name, value)
        connectors = {
            "dynamics": {"kind": "dataverse", **dataverse.settings(retry_attempts=1)},
            "portal": {"kind": "webhook", **receiver.settings(retry_attempts=1)},
        }
        app = create_app(make_settings(connectors=connectors, sync={"max_attempts": 1}))
        try:
            dataverse.seed("customer", "CRM-1", "CRM-2")
            receiver.seed("customer", "CRM-1", "CRM-2")
            dataverse.fail_record("customer", "CRM-1", code="0x80040237", message="Duplicate.")
            change_flag(app, "CRM-1", "red")
            worker(app).run_once()
            change_flag(app, "CRM-2", "amber")
            backdate_changes(app, seconds=600)
            metrics = gauges(app)
            assert metrics[("forewarn_sync_dead_letters", "dynamics")] == 1
            assert metrics[("forewarn_sync_dead_letters", "portal")] == 0
            assert metrics[("forewarn_sync_pending", "dynamics")] == 1
            assert metrics[("forewarn_sync_pending", "portal")] == 1
            # The dead letter is the oldest change Dynamics lacks; the webhook has CRM-1.
            assert metrics[("forewarn_sync_oldest_pending_seconds", "dynamics")] >= 600
            assert metrics[("forewarn_sync_oldest_pending_seconds", "portal")] >= 600
            worker(app).run_once()
            metrics = gauges(app)
            assert metrics[("forewarn_sync_pending", "portal")] == 0
            assert metrics[("forewarn_sync_oldest_pending_seconds", "portal")] == 0
            assert metrics[("forewarn_sync_pending", "dynamics")] == 0
            assert metrics[("forewarn_sync_oldest_pending_seconds", "dynamics")] >= 600
        finally:
            app.extensions["forewarn"].database.dispose()


def backdate_changes(app: Any, seconds: float) -> None:
    """Make every queued change look `seconds` older, as if the CRM had been away that long."""
    with app.extensions["forewarn"].database.transaction() as session:
        for change in session.scalars(select(StatusChange)):
            change.created_at -= timedelta(seconds=seconds)


def test_connectors_check_names_a_bad_adjustments_column(
    setup, tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "bad.toml"
    table = {
        "kind": "salesforce",
        "instance_url": "https://council.my.salesforce.com",
        "client_id": "3MVG9",
        "client_secret_env": "FW_SF_SECRET",
        "sobject": {"customer": "Contact"},
        "external_id_field": {"customer": "Fw_CrmRef__c"},
        "adjustments_field": "Reasonable adjustments",
    }
    config.write_text(CONFIG.read_text() + "\n" + toml_table("sf", table))
    result = CliRunner().invoke(
        cli,
        ["connectors", "check"],
        env={
            "FOREWARN_CONFIG": str(config),
            "FOREWARN_DATABASE_URL": database_url,
            "FW_SF_SECRET": "s",
        },
    )
    assert result.exit_code == 1
    assert "sf (salesforce): settings: " in result.output
    assert "setting 'adjustments_field' must be a column or field name" in result.output
