"""The foundation: settings, keys, storage, errors and operations endpoints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from sidecar import create_app
from sidecar.register.models import Flag, Subject
from sidecar.runtime import StartupError
from sidecar.settings import SettingsError, load_settings
from sidecar.storage.crypto import DecryptionError, KeyRing
from sidecar.storage.keys import KeyFiles
from tests.conftest import CONFIG, ROOT


def write_config(tmp_path: Path, old: str, new: str) -> Path:
    text = CONFIG.read_text()
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new))
    return path


def test_unknown_level_in_config_names_the_setting(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'red = "Red"', 'crimson = "Crimson"')
    with pytest.raises(SettingsError) as caught:
        load_settings(path, instance_dir=tmp_path, environ={})
    assert "catalogue.levels" in str(caught.value)
    assert "'crimson'" in str(caught.value)


def test_wrong_type_and_unknown_setting_are_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, "appeal_window_days = 21", 'appeal_window_days = "soon"')
    with pytest.raises(SettingsError, match="policy.appeal_window_days"):
        load_settings(path, instance_dir=tmp_path, environ={})
    path = write_config(tmp_path, "appeal_window_days = 21", "appeal_windw_days = 21")
    with pytest.raises(SettingsError, match="policy.appeal_windw_days"):
        load_settings(path, instance_dir=tmp_path, environ={})


def test_role_with_unknown_permission_is_refused(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'agent = ["banner.read", "incident.create"]',
        'agent = ["banner.read", "details.all"]',
    )
    with pytest.raises(SettingsError, match="details.all"):
        load_settings(path, instance_dir=tmp_path, environ={})


def test_environment_overrides_deployment_settings(tmp_path: Path) -> None:
    env = {
        "FOREWARN_DATABASE_URL": "sqlite:////tmp/elsewhere.db",
        "FOREWARN_INSTANCE": str(tmp_path),
        "FOREWARN_CONFIG": str(CONFIG),
    }
    settings = load_settings(environ=env)
    assert settings.database_url == "sqlite:////tmp/elsewhere.db"
    assert settings.instance_dir == tmp_path.resolve()
    assert settings.policy.appeal_window_days == 21


def test_missing_keys_file_stops_start_up(settings, instance_dir: Path) -> None:
    KeyFiles.of(instance_dir).data_keys.unlink()
    with pytest.raises(StartupError, match="data-keys.json is missing"):
        create_app(settings)


def test_unreachable_database_gives_a_clear_message(make_settings, tmp_path: Path) -> None:
    settings = make_settings().model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"}
    )
    with pytest.raises(StartupError) as caught:
        create_app(settings)
    message = str(caught.value)
    assert message.startswith(
        "cannot reach database postgresql+psycopg://postgres@127.0.0.1:1/none"
    )
    assert "Traceback" not in message


def test_production_refuses_a_demo_instance(make_settings) -> None:
    with pytest.raises(StartupError, match="demo"):
        create_app(make_settings(deployment={"production": True}))


class TestEncryptionAtRest:
    def test_round_trip_and_binding_to_the_cell(self) -> None:
        ring = KeyRing.generate()
        token = ring.encrypt("threatened staff", table="flags", row_id="a1", column="reason")
        assert "threatened" not in token
        assert (
            ring.decrypt(token, table="flags", row_id="a1", column="reason") == "threatened staff"
        )
        with pytest.raises(DecryptionError):
            ring.decrypt(token, table="flags", row_id="b2", column="reason")
        with pytest.raises(DecryptionError):
            ring.decrypt(token, table="flags", row_id="a1", column="control_measures")
        with pytest.raises(DecryptionError):
            ring.decrypt(token, table="incidents", row_id="a1", column="reason")

    def test_nonces_differ_between_encryptions(self) -> None:
        ring = KeyRing.generate()
        first = ring.encrypt("x", table="t", row_id="1", column="c")
        second = ring.encrypt("x", table="t", row_id="1", column="c")
        assert first != second

    def test_tampered_ciphertext_fails(self) -> None:
        ring = KeyRing.generate()
        token = ring.encrypt("secret", table="t", row_id="1", column="c")
        key_id, body = token.split(".")
        flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        with pytest.raises(DecryptionError):
            ring.decrypt(f"{key_id}.{flipped}", table="t", row_id="1", column="c")
        with pytest.raises(DecryptionError, match="unknown key id"):
            ring.decrypt("k9." + body, table="t", row_id="1", column="c")

    def test_copying_a_ciphertext_to_another_row_fails_in_the_database(self, app) -> None:
        state = app.extensions["forewarn"]
        with state.database.transaction() as session:
            subject = Subject(kind="customer", ref="C1")
            session.add(subject)
            flags = [
                Flag(
                    subject=subject,
                    state="active",
                    level="red",
                    categories=["physical_violence"],
                    responsible_manager="m",
                    review_months=12,
                    proposed_by="p",
                )
                for _ in range(2)
            ]
            flags[0].seal(state.keyring, "reason", "punched an officer")
            flags[1].seal(state.keyring, "reason", "something else")
            session.add_all(flags)
        with state.database.transaction() as session:
            first, second = (session.get(Flag, f.id) for f in flags)
            second.reason = first.reason
        with state.database.transaction() as session:
            moved = session.get(Flag, flags[1].id)
            with pytest.raises(DecryptionError):
                moved.unseal(state.keyring, "reason")


def run_cli(*args: str, instance: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "FOREWARN_CONFIG": str(CONFIG),
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


def test_keys_rotate_re_encrypts_everything_and_old_keys_still_read(
    app, settings, instance_dir: Path, database_url: str
) -> None:
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        subject = Subject(kind="customer", ref="C2")
        flag = Flag(
            subject=subject,
            state="active",
            level="amber",
            categories=["verbal_hate_abuse"],
            responsible_manager="m",
            review_months=12,
            proposed_by="p",
        )
        flag.seal(state.keyring, "reason", "shouted abuse at reception")
        flag.seal(state.keyring, "control_measures", "two officers at the desk")
        session.add(flag)
    before = flag.reason

    result = run_cli("keys", "rotate", instance=instance_dir, database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "data key k2 is now primary; re-encrypted 2 values" in result.stdout

    ring = KeyRing.load(KeyFiles.of(instance_dir).data_keys)
    assert ring.primary == "k2" and set(ring.keys) == {"k1", "k2"}
    with state.database.transaction() as session:
        row = session.execute(select(Flag)).scalar_one()
        assert row.reason != before and ring.key_id_of(row.reason) == "k2"
        assert row.unseal(ring, "reason") == "shouted abuse at reception"
        assert row.unseal(ring, "control_measures") == "two officers at the desk"
    assert ring.decrypt(before, table="flags", row_id=flag.id, column="reason") == (
        "shouted abuse at reception"
    )


def test_fresh_init_gives_a_database_that_readyz_accepts(tmp_path: Path, database_url: str) -> None:
    instance = tmp_path / "fresh"
    result = run_cli("init", "--demo", instance=instance, database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "created data key ring" in result.stdout
    again = run_cli("init", instance=instance, database_url=database_url)
    assert again.returncode == 0 and "created" not in again.stdout

    app = create_app(
        load_settings(CONFIG, instance_dir=instance, database_url=database_url, environ={})
    )
    response = app.test_client().get("/readyz")
    app.extensions["forewarn"].database.dispose()
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "keys": "ok", "audit_store": "ok"}


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = write_config(tmp_path, 'red = "Red"', 'scarlet = "Red"')
    result = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "--instance", str(tmp_path), "init"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "FOREWARN_CONFIG": str(bad)},
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "scarlet" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_unreachable_database_exits_1_with_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "init",
        instance=tmp_path / "i",
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
    )
    assert result.returncode == 1
    assert "cannot migrate postgresql+psycopg://postgres@127.0.0.1:1/none" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


class TestHttpErrors:
    def test_healthz(self, client) -> None:
        assert client.get("/healthz").get_json() == {"status": "ok"}

    def test_unknown_route_is_problem_json(self, client) -> None:
        response = client.get("/nowhere")
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        assert set(response.get_json()) >= {"type", "title", "status", "detail"}

    def test_malformed_json_is_400(self, client) -> None:
        response = client.post("/auth/launch", data="{not json", content_type="application/json")
        assert response.status_code == 400
        assert response.get_json()["detail"] == "the request body is not valid JSON"

    def test_unknown_field_is_422_naming_it(self, client) -> None:
        response = client.post("/auth/launch", json={"token": "x", "colour": "red"})
        assert response.status_code == 422
        body = response.get_json()
        assert body["errors"] == [{"field": "colour", "message": "Extra inputs are not permitted"}]
        assert "colour" in body["detail"]

    def test_missing_field_is_422_naming_it(self, client) -> None:
        response = client.post("/auth/launch", json={})
        assert response.status_code == 422
        assert response.get_json()["errors"][0]["field"] == "token"

    def test_openapi_document_lists_the_routes(self, client) -> None:
        document = client.get("/api/v1/openapi.json").get_json()
        assert document["openapi"] == "3.1.0"
        assert "/auth/launch" in document["paths"]
        assert "LaunchBody" in document["components"]["schemas"]

    def test_metrics_are_prometheus_text(self, client) -> None:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert "forewarn_audit_write_failures_total 0.0" in response.get_data(as_text=True)


def test_launch_signs_in_and_bearer_token_authenticates(client, launch_token) -> None:
    response = client.post("/auth/launch", json={"token": launch_token("u.jo", ("agent",), "Jo")})
    assert response.status_code == 200
    body = response.get_json()
    assert body["user"] == {"id": "u.jo", "name": "Jo", "roles": ["agent"]}
    assert body["expires_in"] == 900
    assert response.headers["Cache-Control"] == "no-store"


def test_launch_token_signed_by_another_key_is_refused(client, settings) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sidecar.identity.launch import mint_launch_token

    stranger = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    token = mint_launch_token(stranger, settings.deployment.public_url, "u.x", "X", ["agent"])
    response = client.post("/auth/launch", json={"token": token})
    assert response.status_code == 401
    assert "launch token refused" in response.get_json()["detail"]
