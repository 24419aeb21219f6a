"""The sidecar's own outbox pushes the register's statuses to a FHIR server as Flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.flag import Flag

from sidecar import create_app
from sidecar.cli.main import cli
from tests.conftest import CONFIG
from tests.connectors.fakes import FakeFhirServer
from tests.sync.test_sync import SECRET_MEASURES, SECRET_REASON, change_flag, worker
from tests.sync.test_sync_status import toml_table


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    with FakeFhirServer.start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def synced_app(make_settings, server: FakeFhirServer):
    connector = {"kind": "fhir", **server.settings(retry_attempts=1, max_retry_wait=0)}
    app = create_app(make_settings(connectors={"partner": connector}))
    yield app
    app.extensions["forewarn"].database.dispose()


def test_a_flag_and_its_end_reach_the_fhir_server_as_status_only(synced_app, server) -> None:
    server.seed("customer", "CRM-1")
    version = change_flag(
        synced_app,
        "CRM-1",
        "red",
        restrictions=[{"code": "writing_only", "note": ""}],
    )
    worker(synced_app).run_once()
    flag = server.flag_of("customer", "CRM-1")
    Flag.model_validate(flag)
    assert flag["status"] == "active"
    assert server.status_of("customer", "CRM-1") | {"updated_at": None} == {
        "level": "red",
        "categories": ["Physical violence"],
        "restrictions": ["Writing only"],
        "review_due": "2027-11-01",
        "appeal_pending": False,
        "version": version,
        "updated_at": None,
    }
    ended = change_flag(synced_app, "CRM-1", None)
    worker(synced_app).run_once()
    assert server.flag_of("customer", "CRM-1")["status"] == "inactive"
    assert server.status_of("customer", "CRM-1")["version"] == ended
    received = server.received_bytes()
    assert SECRET_REASON.encode() not in received and SECRET_MEASURES.encode() not in received
    assert server.rejected == [] and server.created == []


def test_connectors_check_reads_the_servers_metadata(
    server, tmp_path: Path, instance_dir: Path, database_url: str
) -> None:
    config = tmp_path / "forewarn.toml"
    table = {"kind": "fhir", **server.settings()}
    config.write_text(CONFIG.read_text() + "\n" + toml_table("partner", table))
    result = CliRunner().invoke(
        cli,
        ["--instance", str(instance_dir), "connectors", "check", "partner"],
        env={
            "FOREWARN_CONFIG": str(config),
            "FOREWARN_DATABASE_URL": database_url,
            **server.environ,
        },
    )
    assert result.exit_code == 0, result.output
    assert result.output == "partner (fhir): ok: FHIR 4.0.1, Flag update offered\n"
    assert [r.path for r in server.requests] == ["/fhir/metadata"]
