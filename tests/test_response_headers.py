"""Headers every client relies on: no sniffing, Allow on 405, honest content types."""

from __future__ import annotations


def test_json_answers_and_problems_say_nosniff(client, auth_headers) -> None:
    for response in (
        client.get("/healthz"),
        client.get("/api/v1/subjects/customer/CRM-1/banner", headers=auth_headers("agent")),
        client.get("/api/v1/subjects/customer/CRM-1/banner"),
    ):
        assert response.is_json
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_method_the_route_lacks_is_405_with_allow(client) -> None:
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert set(response.headers["Allow"].split(", ")) >= {"GET"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_logout_answers_204_with_no_content_type(client, auth_headers) -> None:
    response = client.post("/auth/logout", headers=auth_headers("agent"))
    assert response.status_code == 204
    assert "Content-Type" not in response.headers
    assert response.get_data() == b""


def test_metrics_name_one_charset(client) -> None:
    response = client.get("/metrics")
    assert response.headers["Content-Type"].count("charset") == 1
    assert response.mimetype == "text/plain"
