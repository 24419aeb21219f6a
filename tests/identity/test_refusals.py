"""Refused sign-ins: each is an audit entry with its reason, and many for one account alert."""

from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import select

from sidecar import create_app
from sidecar.audit.models import AuditEntry


def refused_sign_ins(app: Flask) -> list[tuple[str | None, str | None, str]]:
    """Every refused sign-in as (account named, way in, reason), oldest first."""
    with app.extensions["forewarn"].database.transaction() as session:
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "sign_in", AuditEntry.outcome == "denied")
            .order_by(AuditEntry.seq)
        )
        return [(e.actor_id, e.via, e.outcome_reason or "") for e in rows]


def test_a_refused_launch_token_is_recorded_with_the_account_it_named(app, client, mint) -> None:
    expired = mint(sub="u.target", iat=int(time.time()) - 600, exp=int(time.time()) - 300)
    assert client.post("/auth/launch", json={"token": expired}).status_code == 401
    assert client.post("/auth/launch", json={"token": "not-a-jwt"}).status_code == 401
    [(account, via, reason), (nobody, _, garbage)] = refused_sign_ins(app)
    assert (account, via) == ("u.target", "widget")
    assert "expired" in reason and "not verified" in reason
    assert nobody is None and "not a JWT" in garbage


def test_a_refused_demo_sign_in_is_recorded(app, client) -> None:
    response = client.post("/auth/demo", json={"user": "u.demo", "roles": ["root"]})
    assert response.status_code == 422
    [(account, via, reason)] = refused_sign_ins(app)
    assert (account, via) == ("u.demo", "demo")
    assert reason.startswith("body field 'roles': unknown role 'root'")


def test_a_sign_in_mapping_to_no_role_is_recorded(app, client, mint) -> None:
    assert client.post("/auth/launch", json={"token": mint(roles=["gardener"])}).status_code == 403
    [(account, via, reason)] = refused_sign_ins(app)
    assert (account, via) == ("u.vo", "widget") and "no Forewarn role" in reason


def test_many_refusals_for_one_account_raise_one_privacy_alert(
    app, client, mint, settings, auth_headers
) -> None:
    limit = settings.lookup.alert_refused_sign_ins
    stale = int(time.time()) - 600
    for _ in range(limit):
        token = mint(sub="u.target", iat=stale, exp=stale + 60)
        assert client.post("/auth/launch", json={"token": token}).status_code == 401
    client.post("/auth/demo", json={"user": "u.other", "roles": ["root"]})
    auditor = auth_headers("auditor")

    def alerts() -> list[dict]:
        response = client.get(
            "/api/v1/alerts", query_string={"kind": "refused_sign_ins"}, headers=auditor
        )
        assert response.status_code == 200
        return response.get_json()["alerts"]

    assert alerts() == []  # at the limit, not past it
    # The next refusal, by another way in, tips it over; later ones add no second alert.
    for _ in range(3):
        client.post("/auth/demo", json={"user": "u.target", "roles": ["root"]})
    [alert] = alerts()
    assert alert["user_id"] == "u.target"
    assert f"{limit + 1} refused sign-ins" in alert["detail"]


def test_a_demo_sign_in_outside_a_demo_instance_is_recorded(make_settings, instance_dir) -> None:
    (instance_dir / "DEMO").unlink()
    app = create_app(make_settings())
    try:
        response = app.test_client().post("/auth/demo", json={"user": "u.x", "roles": ["admin"]})
        assert response.status_code == 404
        [(account, via, reason)] = refused_sign_ins(app)
        assert (account, via) == ("u.x", "demo")
        assert reason.startswith("demo sign-in exists on demo instances only")
    finally:
        app.extensions["forewarn"].database.dispose()
