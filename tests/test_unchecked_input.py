"""Input nobody checked must never reach the server as a 500: each is a problem naming it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import jwt
import pytest
from sqlalchemy import select

from sidecar.identity.launch import DEMO_KID
from sidecar.register.models import Incident
from sidecar.storage.keys import KeyFiles
from tests import factories
from tests.conftest import ROOT

NESTED = "[" * 100_000 + "]" * 100_000


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def test_a_deeply_nested_body_is_malformed_json_even_before_sign_in(client, auth_headers) -> None:
    headers = {"Content-Type": "application/json"}
    body = problem(client.post("/auth/launch", data=NESTED, headers=headers), 400)
    assert body["type"].endswith("/malformed-json")
    signed_in = auth_headers("agent") | headers
    incident = client.post("/api/v1/incidents", data=NESTED, headers=signed_in)
    assert problem(incident, 400)["type"].endswith("/malformed-json")


def test_an_audit_cursor_past_any_entry_is_422_naming_the_cursor(client, auth_headers) -> None:
    response = client.get("/api/v1/audit?cursor=" + "9" * 400, headers=auth_headers("auditor"))
    assert "cursor" in {e["field"] for e in problem(response, 422)["errors"]}


@pytest.mark.parametrize(
    "bound", ["from=0001-01-01", "to=9999-12-31", "from=0001-01-01&to=0001-01-02"]
)
def test_a_summary_from_the_year_one_is_422_naming_the_date(client, auth_headers, bound) -> None:
    response = client.get(f"/api/v1/reports/summary?{bound}", headers=auth_headers("case_officer"))
    fields = {e["field"] for e in problem(response, 422)["errors"]}
    assert fields & {"from", "to"}


def test_a_letter_number_no_letter_can_have_is_not_found(app, client, auth_headers) -> None:
    state = app.extensions["forewarn"]
    with app.app_context(), state.database.transaction() as session:
        flag_id = factories.flag(session, state.keyring, factories.subject(session)).id
    letter = f"/api/v1/flags/{flag_id}/letters/" + "9" * 30
    problem(client.get(letter, headers=auth_headers("customer_support_manager")), 404)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z"])
def test_an_incident_in_the_year_one_is_422_naming_when(client, auth_headers, moment) -> None:
    report = {
        "subject": {"kind": "customer", "ref": "CRM-1"},
        "occurred_at": moment,
        "channel": "phone",
        "behaviour_types": ["aggressive_or_abusive"],
        "narrative": "Shouted at the officer",
        "warning_given": False,
    }
    response = client.post("/api/v1/incidents", json=report, headers=auth_headers("agent"))
    assert "occurred_at" in {e["field"] for e in problem(response, 422)["errors"]}


@pytest.mark.parametrize(
    ("claim", "value"), [("exp", str), ("iat", str), ("exp", lambda _: float("inf"))]
)
def test_a_signed_launch_token_with_a_time_not_a_number_is_refused(
    client, settings, claim, value
) -> None:
    key = KeyFiles.of(settings.instance_dir).launch_demo_key.read_bytes()
    now = int(time.time())
    claims = {
        "sub": "u.agent",
        "roles": ["agent"],
        "aud": settings.deployment.public_url,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    claims[claim] = value(claims[claim])
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": DEMO_KID})
    body = problem(client.post("/auth/launch", json={"token": token}), 401)
    assert claim in body["detail"]


INCIDENT = {
    "subject": {"kind": "customer", "ref": "CRM-1"},
    "occurred_at": "2026-05-01T10:00:00+01:00",
    "channel": "phone",
    "behaviour_types": ["aggressive_or_abusive"],
    "warning_given": False,
}


@pytest.mark.parametrize("control", ["\x00", "\x1b[31m", "\x7f", "\x85", "\x0b"])
def test_control_characters_in_free_text_are_refused_naming_the_field(
    app, client, auth_headers, control
) -> None:
    report = INCIDENT | {"narrative": f"Shouted{control} at the officer"}
    response = client.post("/api/v1/incidents", json=report, headers=auth_headers("agent"))
    body = problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["narrative"]
    assert "control characters" in body["detail"]
    with app.extensions["forewarn"].database.transaction() as session:
        assert session.scalars(select(Incident)).first() is None


def test_tabs_and_line_breaks_in_free_text_are_kept(client, auth_headers) -> None:
    report = INCIDENT | {"narrative": "First call:\tshouted.\r\nSecond call:\tcalm."}
    response = client.post("/api/v1/incidents", json=report, headers=auth_headers("agent"))
    assert response.status_code == 201, response.get_json()


def test_a_control_character_in_a_query_is_refused_naming_it(client, auth_headers) -> None:
    response = client.get("/api/v1/audit?actor=u.a%00b", headers=auth_headers("auditor"))
    assert [e["field"] for e in problem(response, 422)["errors"]] == ["actor"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVERS = {
    "forewarn serve": lambda port: [
        *("-m", "sidecar.cli", "serve", "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", "1"),
    ],
    # As the README's deployment section starts it, with the shipped gunicorn settings.
    "gunicorn by hand": lambda port: [
        *("-m", "gunicorn", "-c", "python:sidecar.gunicorn_conf", "--workers", "1"),
        *("--bind", f"127.0.0.1:{port}", "sidecar:create_app()"),
    ],
}


@pytest.mark.parametrize("started_by", list(SERVERS))
def test_a_line_feed_in_a_path_cannot_forge_an_access_log_line(
    instance_dir, database_url, tmp_path, started_by
) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FOREWARN_DATABASE_URL": database_url,
        "FOREWARN_INSTANCE": str(instance_dir),
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, *SERVERS[started_by](port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "Booting worker" not in log.read_text() and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            time.sleep(0.1)
        forged = b"GET /healthz%0a1.2.3.4%20%22GET%20/forged%22%20200%1b[2K HTTP/1.1\r\n"
        answer = b""
        while not answer and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                    connection.sendall(forged + b"Host: x\r\nConnection: close\r\n\r\n")
                    answer = connection.recv(100)
            except OSError:
                time.sleep(0.2)
        assert answer.startswith(b"HTTP/1.1 404")
        while "/healthz" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    text = log.read_text()
    assert "\x1b" not in text, "a terminal escape reached the log unescaped"
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith("1.2.3.4")]
    [logged] = [line for line in lines if "/healthz" in line]
    assert logged.startswith(
        '127.0.0.1 "GET /healthz\\n1.2.3.4 \\"GET /forged\\" 200\\x1b[2K" 404 '
    )


@pytest.mark.parametrize("given", [0, 1, "yes", "true"])
def test_a_yes_or_no_is_json_true_or_false_only(client, auth_headers, given) -> None:
    incident = INCIDENT | {"narrative": "Shouted at the counter.", "warning_given": given}
    response = client.post("/api/v1/incidents", json=incident, headers=auth_headers("agent"))
    assert [e["field"] for e in problem(response, 422)["errors"]] == ["warning_given"]
    accepted = client.post(
        "/api/v1/incidents", json=incident | {"warning_given": False}, headers=auth_headers("agent")
    )
    assert accepted.status_code == 201, accepted.get_json()
