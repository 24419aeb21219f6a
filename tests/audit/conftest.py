"""Fixtures for the audit trail: raw database access, the CLI, and audited traffic."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, select, text

from sidecar import create_app
from sidecar.audit import writer as audit
from sidecar.audit.models import AuditEntry
from tests.conftest import CONFIG, ROOT


@pytest.fixture
def raw(database_url: str) -> Iterator[Engine]:
    """A connection to the database that bypasses the app, as an intruder or DBA would."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def sql(engine: Engine, statement: str, **params: Any) -> list[Any]:
    with engine.begin() as connection:
        result = connection.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def rehash_from(engine: Engine, seq: int) -> None:
    """What a careful intruder does after an edit: recompute every later hash and the head."""
    table = AuditEntry.__table__
    with engine.begin() as connection:
        previous = connection.execute(
            select(table.c.entry_hash).where(table.c.seq == seq - 1)
        ).scalar_one()
        rows = connection.execute(select(table).where(table.c.seq >= seq).order_by(table.c.seq))
        for row in list(rows.mappings()):
            fields = dict(row) | {"prev_hash": previous}
            previous = audit.entry_hash(fields)
            connection.execute(
                table.update()
                .where(table.c.seq == row["seq"])
                .values(prev_hash=fields["prev_hash"], entry_hash=previous)
            )
        connection.execute(text("UPDATE audit_head SET entry_hash = :h"), {"h": previous})


def config_with(tmp_path: Path, **audit_settings: Any) -> Path:
    """A copy of the config file whose [audit] section has these values."""
    lines = CONFIG.read_text().splitlines()
    for name, value in audit_settings.items():
        rendered = f'"{value}"' if isinstance(value, str) else str(value).lower()
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name} ="))
        lines[index] = f"{name} = {rendered}"
    path = tmp_path / "forewarn-audit.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def forewarn(
    *args: str, instance: Path, database_url: str, config: Path = CONFIG
) -> subprocess.CompletedProcess[str]:
    """Run the `forewarn` command line as an operator would."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FOREWARN_CONFIG": str(config),
        "FOREWARN_DATABASE_URL": database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "--instance", str(instance), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.fixture
def record_many(app: Flask) -> Callable[..., list[int]]:
    """Record events through the real writer; return their sequence numbers."""

    def write(count: int, **fields: Any) -> list[int]:
        seqs = []
        with app.app_context():
            for n in range(count):
                event = audit.AuditEvent(
                    action=fields.get("action", "test.event"),
                    actor_id=fields.get("actor_id", f"u.{n % 3}"),
                    actor_name=fields.get("actor_name", "Tester"),
                    actor_roles=fields.get("actor_roles", "auditor"),
                    subject_kind=fields.get("subject_kind"),
                    subject_ref=fields.get("subject_ref"),
                    purpose_code=fields.get("purpose_code"),
                    purpose_text=fields.get("purpose_text"),
                    via="api",
                )
                seqs.append(audit.record(event).seq)
        return seqs

    return write


@pytest.fixture
def make_app(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Flask]]:
    """Apps with their own [audit] settings, disposed after the test."""
    made: list[Flask] = []

    def build(settings: Any = None, **audit_settings: Any) -> Flask:
        application = create_app(settings or make_settings(audit=audit_settings))
        application.config["TESTING"] = True
        made.append(application)
        return application

    yield build
    for application in made:
        application.extensions["forewarn"].database.dispose()


def metric(app: Flask, name: str) -> float:
    """A counter's value as /metrics shows it."""
    body = app.test_client().get("/metrics").get_data(as_text=True)
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def sign_in(app: Flask, token: str, **headers: str) -> dict[str, str]:
    """Sign in through the real /auth/launch of this app; return the bearer header."""
    response = app.test_client().post("/auth/launch", json={"token": token}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}
