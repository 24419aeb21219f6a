"""The banner status cache: keyed by the subject's status version, so never stale anywhere."""

from __future__ import annotations

import time

from sidecar import create_app
from tests import factories

URL = "/api/v1/subjects/customer/CRM-1/banner"


def banner(client, headers) -> dict:
    response = client.get(URL, headers=headers)
    assert response.status_code == 200
    return response.get_json()


def levels(client, headers) -> list[str]:
    return [flag["level"] for flag in banner(client, headers)["flags"]]


def test_a_status_is_served_from_the_cache_until_its_version_changes(
    client, register, auth_headers
):
    headers = auth_headers("agent")
    with register() as (session, ring):
        factories.flag(session, ring, factories.subject(session), level="amber")
    assert levels(client, headers) == ["amber"]
    with register() as (session, ring):
        factories.flag(session, ring, factories.subject(session), level="red", announce=False)
    assert levels(client, headers) == ["amber"], "the second look should come from the cache"
    with register() as (session, ring):
        factories.flag(session, ring, factories.subject(session), level="amber")
    assert sorted(levels(client, headers)) == ["amber", "amber", "red"]


def test_a_rolled_back_change_shows_nothing(client, register, auth_headers):
    headers = auth_headers("agent")
    assert banner(client, headers)["status"] == "none"
    try:
        with register() as (session, ring):
            factories.flag(session, ring, factories.subject(session))
            raise RuntimeError("the change fails after it was made")
    except RuntimeError:
        pass
    assert banner(client, headers)["status"] == "none"


def test_the_ttl_comes_from_config(make_settings, launch_token, register_for):
    app = create_app(make_settings(lookup={"status_cache_seconds": 0.3}))
    try:
        client = app.test_client()
        token = client.post("/auth/launch", json={"token": launch_token()}).get_json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        with register_for(app) as (session, ring):
            factories.flag(session, ring, factories.subject(session), level="amber")
        assert levels(client, headers) == ["amber"]
        with register_for(app) as (session, ring):
            factories.flag(session, ring, factories.subject(session), announce=False)
        assert levels(client, headers) == ["amber"]
        time.sleep(0.4)
        assert levels(client, headers) == ["red", "amber"]
    finally:
        app.extensions["forewarn"].database.dispose()


def test_a_change_on_one_instance_shows_on_the_other_at_once(
    make_settings, launch_token, register_for
) -> None:
    """Two instances (two processes' worth of apps) on one database: no wait, no message."""
    settings = make_settings(lookup={"status_cache_seconds": 3600})
    first, second = create_app(settings), create_app(settings)
    try:
        client = second.test_client()
        token = client.post("/auth/launch", json={"token": launch_token()}).get_json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        with register_for(first) as (session, ring):
            factories.flag(session, ring, factories.subject(session), level="amber")
        assert levels(client, headers) == ["amber"]
        with register_for(first) as (session, ring):
            factories.flag(session, ring, factories.subject(session), level="red")
        assert levels(client, headers) == ["red", "amber"]
    finally:
        for app in (first, second):
            app.extensions["forewarn"].database.dispose()


def test_a_linked_customers_change_shows_on_the_property_at_once(
    client, register, auth_headers
) -> None:
    headers = auth_headers("agent")
    url = "/api/v1/subjects/property/100023336956/banner"
    with register() as (session, ring):
        customer = factories.subject(session)
        home = factories.subject(session, kind="property", ref="100023336956")
        factories.link(session, customer, home)
        factories.flag(session, ring, customer, level="amber")
    assert client.get(url, headers=headers).get_json()["status"] == "amber"
    with register() as (session, ring):
        factories.flag(session, ring, factories.subject(session), level="red")
    assert client.get(url, headers=headers).get_json()["status"] == "red"
