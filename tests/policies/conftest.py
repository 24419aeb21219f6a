"""The lifecycle's signed-in staff and case drivers, for the policy modules; and each council's
own settings file from config/examples/, served by an app of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sidecar import create_app
from sidecar.identity.launch import mint_launch_token
from sidecar.settings import Settings, load_settings
from sidecar.storage.keys import KeyFiles
from tests.lifecycle.conftest import ASSESSMENT, PROPOSAL, cases, staff  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


@dataclass
class Council:
    """An app on the council's example settings, with its staff signed in by launch token."""

    app: Flask
    settings: Settings
    client: FlaskClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    def sign_in(self, *roles: str, user: str, name: str | None = None) -> dict[str, str]:
        key = KeyFiles.of(self.settings.instance_dir).launch_demo_key.read_bytes()
        token = mint_launch_token(
            key, self.settings.deployment.public_url, user, name or user, list(roles), 300
        )
        response = self.app.test_client().post("/auth/launch", json={"token": token})
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}

    def post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        return self.client.post(url, json=body, headers=headers)

    def propose(self, headers: dict[str, str], **changes: Any) -> str:
        reply = self.post("/api/v1/flags", PROPOSAL | changes, headers)
        assert reply.status_code == 201, reply.get_json()
        return reply.get_json()["id"]

    def decide(self, flag_id: str, headers: dict[str, str], role: str, decision: str = "approve"):
        body = {"role": role, "decision": decision, **ASSESSMENT}
        return self.post(f"/api/v1/flags/{flag_id}/panel-decisions", body, headers)


@pytest.fixture
def council(instance_dir: Path, database_url: str) -> Iterator[Callable[[str], Council]]:
    """`council("workington")`: the app on config/examples/workington.toml."""
    apps: list[Flask] = []

    def build(name: str) -> Council:
        settings = load_settings(
            EXAMPLES / f"{name}.toml",
            instance_dir=instance_dir,
            database_url=database_url,
            environ={},
        )
        app = create_app(settings)
        apps.append(app)
        return Council(app, settings)

    yield build
    for app in apps:
        app.extensions["forewarn"].database.dispose()
