"""Fixtures: an app on a clean database (SQLite always, PostgreSQL when configured), and staff."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from sidecar import create_app
from sidecar.identity.launch import mint_launch_token
from sidecar.settings import Settings, load_settings
from sidecar.storage.database import Base, Database
from sidecar.storage.keys import KeyFiles, ensure_keys

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "forewarn.toml"
POSTGRES_URL = os.environ.get("FOREWARN_TEST_DATABASE_URL")
ENGINES = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


def reset_postgres(url: str) -> None:
    """Empty every table and put the audit chain back to its genesis row."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            connection.execute(
                text("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, 0, :h)"),
                {"h": "0" * 64},
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="session", params=ENGINES)
def engine_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def migrated_template(engine_kind: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate once per engine: an SQLite file to copy, or the PostgreSQL database itself."""
    if engine_kind == "sqlite":
        path = tmp_path_factory.mktemp("template") / "forewarn.db"
        url = f"sqlite:///{path}"
    else:
        assert POSTGRES_URL
        url = POSTGRES_URL
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    database = Database(url)
    database.migrate()
    database.dispose()
    return url


@pytest.fixture
def database_url(engine_kind: str, migrated_template: str, tmp_path: Path) -> str:
    """A clean, migrated database for one test."""
    if engine_kind == "sqlite":
        source = Path(migrated_template.removeprefix("sqlite:///"))
        target = tmp_path / "forewarn.db"
        shutil.copyfile(source, target)
        return f"sqlite:///{target}"
    reset_postgres(migrated_template)
    return migrated_template


@pytest.fixture
def instance_dir(tmp_path: Path) -> Path:
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "DEMO").touch()
    ensure_keys(KeyFiles.of(instance), demo=True)
    return instance


@pytest.fixture
def make_settings(instance_dir: Path, database_url: str) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        return load_settings(
            CONFIG,
            instance_dir=instance_dir,
            database_url=database_url,
            environ={},
            overrides=overrides,
        )

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    application.extensions["forewarn"].database.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def launch_token(settings: Settings) -> Callable[..., str]:
    """Mint a launch token the way a CRM host does, with the instance's demo key."""
    key = KeyFiles.of(settings.instance_dir).launch_demo_key.read_bytes()

    def mint(
        user_id: str = "u.agent",
        roles: tuple[str, ...] = ("agent",),
        name: str | None = None,
        ttl: int = 300,
    ) -> str:
        return mint_launch_token(
            key, settings.deployment.public_url, user_id, name or user_id.title(), list(roles), ttl
        )

    return mint


@pytest.fixture
def auth_headers(app: Flask, launch_token: Callable[..., str]) -> Callable[..., dict]:
    """Sign a member of staff in through /auth/launch; return their bearer header.

    The sign-in uses its own client, so the shared `client` carries no session cookie
    and every request is authenticated by the header alone.
    """

    def sign_in(*roles: str, user: str | None = None, name: str | None = None) -> dict:
        roles = roles or ("agent",)
        user_id = user or f"u.{roles[0]}"
        response = app.test_client().post(
            "/auth/launch", json={"token": launch_token(user_id, roles, name)}
        )
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}

    return sign_in
