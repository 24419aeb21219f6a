"""The banner status cache: short-lived, and cleared by every flag change on every instance."""

from __future__ import annotations

import time

import pytest

from sidecar import create_app, status_cache
from sidecar.status_cache import StatusCache
from tests.lookup import factories

URL = "/api/v1/subjects/customer/CRM-1/banner"


def status(client, headers) -> str:
    response = client.get(URL, headers=headers)
    assert response.status_code == 200
    return response.get_json()["status"]


def test_cached_status_is_served_until_a_change_is_announced(client, register, auth_headers):
    headers = auth_headers("agent")
    assert status(client, headers) == "none"
    with register() as (session, ring):
        factories.flag(session, ring, factories.subject(session), level="amber", announce=False)
    assert status(client, headers) == "none", "the second look should come from the cache"
    with register() as (session, ring):
        factories.flag(session, ring, factories.subject(session), level="red")
    assert status(client, headers) == "red"


def test_a_rolled_back_change_leaves_the_cache_to_its_ttl(client, register, auth_headers):
    headers = auth_headers("agent")
    assert status(client, headers) == "none"
    with pytest.raises(RuntimeError), register() as (session, ring):
        factories.flag(session, ring, factories.subject(session))
        raise RuntimeError("the change fails after it was announced")
    assert status(client, headers) == "none"


def test_the_ttl_comes_from_config(make_settings, launch_token, register_for):
    app = create_app(make_settings(lookup={"status_cache_seconds": 0.3}))
    try:
        client = app.test_client()
        token = client.post("/auth/launch", json={"token": launch_token()}).get_json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert status(client, headers) == "none"
        with register_for(app) as (session, ring):
            factories.flag(session, ring, factories.subject(session), announce=False)
        assert status(client, headers) == "none"
        time.sleep(0.4)
        assert status(client, headers) == "red"
    finally:
        status_cache.of(app).close()
        app.extensions["forewarn"].database.dispose()


def test_without_a_listening_connection_every_look_reads_the_database() -> None:
    cache = StatusCache(60, 10, "postgresql://postgres@127.0.0.1:1/nowhere")
    loads = []
    try:
        for _ in range(3):
            cache.get("key", lambda: loads.append(1) or {"status": "none"})
    finally:
        cache.close()
    assert len(loads) == 3


def test_a_change_on_one_instance_clears_the_other_through_postgres(
    engine_kind, make_settings, launch_token, register_for
) -> None:
    if engine_kind != "postgresql":
        pytest.skip("cross-instance invalidation uses PostgreSQL LISTEN/NOTIFY")
    settings = make_settings(lookup={"status_cache_seconds": 60})
    first, second = create_app(settings), create_app(settings)
    try:
        client = second.test_client()
        token = client.post("/auth/launch", json={"token": launch_token()}).get_json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert status(client, headers) == "none"
        with register_for(first) as (session, ring):
            factories.flag(session, ring, factories.subject(session), level="amber", announce=False)
        assert status(client, headers) == "none", "the other instance should serve its cache"
        with register_for(first) as (session, ring):
            factories.flag(session, ring, factories.subject(session), level="red")
        deadline = time.monotonic() + 5
        while status(client, headers) != "red":
            assert time.monotonic() < deadline, "the other instance never heard of the change"
            time.sleep(0.05)
    finally:
        for app in (first, second):
            status_cache.of(app).close()
            app.extensions["forewarn"].database.dispose()
