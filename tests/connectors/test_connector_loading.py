"""Finding connectors through entry points, failing loudly, and the status document itself."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from connectors import available_kinds, load_connector
from connectors.base import ConnectorConfigError, FlagStatus, parse_retry_after
from tests.connectors.conftest import make_status


def test_all_four_kinds_are_registered() -> None:
    assert {"dataverse", "fhir", "salesforce", "webhook"} <= set(available_kinds())


def test_unknown_kind_fails_loudly() -> None:
    with pytest.raises(ConnectorConfigError, match=r"unknown kind 'dynamics'.*dataverse"):
        load_connector("crm", "dynamics", {})


def _install_plugin(root: Path, name: str, target: str) -> None:
    # A minimal installed distribution declaring one more connector entry point.
    dist = root / "forewarn_test_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: forewarn-test-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[forewarn.connectors]\n{name} = {target}\n")


def test_plugin_that_fails_to_import_stops_start_up(tmp_path, monkeypatch) -> None:
    _install_plugin(tmp_path, "broken", "forewarn_no_such_module:Connector")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "broken" in available_kinds()
    with pytest.raises(ConnectorConfigError, match="'broken' could not be imported"):
        load_connector("crm", "broken", {})


def test_plugin_that_is_not_a_connector_is_refused(tmp_path, monkeypatch) -> None:
    _install_plugin(tmp_path, "notone", "json:JSONDecoder")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConnectorConfigError, match=r"not a connectors\.base\.Connector"):
        load_connector("crm", "notone", {})


def test_settings_must_be_a_table() -> None:
    with pytest.raises(ConnectorConfigError, match="settings must be a table"):
        load_connector("crm", "webhook", ["url"])  # type: ignore[arg-type]


def test_document_is_json_safe_utc_and_status_only() -> None:
    status = make_status(
        updated_at=datetime(2025, 11, 20, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    )
    document = status.as_document()
    assert json.loads(json.dumps(document)) == document
    assert document["updated_at"] == "2025-11-20T09:30:00Z"
    assert set(document) == {
        "subject_kind",
        "subject_ref",
        "record_key",
        "level",
        "categories",
        "restrictions",
        "review_due",
        "appeal_pending",
        "appeal_handler",
        "version",
        "updated_at",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"level": "green"},
        {"subject_kind": "household"},
        {"record_key": ""},
        {"version": -1},
        {"updated_at": datetime(2025, 1, 1)},  # naive on purpose
    ],
)
def test_invalid_status_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_status(**change)


def test_status_accepts_lists_but_stays_hashable() -> None:
    status = make_status(categories=["Physical violence"], restrictions=["Visits in pairs"])
    assert status.categories == ("Physical violence",)
    assert isinstance(hash(status), int)
    assert isinstance(status, FlagStatus)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= parse_retry_after(later, now=time.time()) <= 30
