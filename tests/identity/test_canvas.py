"""Salesforce Canvas: signed requests built as Salesforce documents them, and tampered ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from sidecar import create_app
from sidecar.audit.models import AuditEntry
from sidecar.runtime import StartupError

SECRET = "canvas-consumer-secret-4f1c"
PROFILE_VISITING = "00ex0000000jzpt"


def envelope(**overrides: Any) -> dict[str, Any]:
    """A CanvasRequest shaped like Salesforce's documented example, on a Contact record."""
    body = {
        "algorithm": "HMACSHA256",
        "issuedAt": int(time.time()),
        "userId": "005x0000001SyyEAAS",
        "client": {
            "instanceId": "06Px000000003ed:my_java_app:",
            "oauthToken": "00Dx0000000A0Qm!AQ0AQIv",
            "instanceUrl": "https://MyDomainName.my.salesforce.com",
            "targetOrigin": "https://MyDomainName.my.salesforce.com",
        },
        "context": {
            "application": {"applicationId": "06Px000000003ed", "authType": "SIGNED_REQUEST"},
            "user": {
                "email": "val.officer@council.example",
                "fullName": "Val Officer",
                "profileId": PROFILE_VISITING,
                "roleId": None,
                "userId": "005x0000001SyyEAAS",
                "userName": "val.officer@council.example",
                "userType": "STANDARD",
            },
            "environment": {
                "displayLocation": "PageLayout",
                "record": {
                    "attributes": {
                        "type": "Contact",
                        "url": "/services/data/v60.0/sobjects/Contact/003x000000AbCdE",
                    },
                    "Id": "003x000000AbCdEAAV",
                },
            },
        },
    }
    return body | overrides


def sign(body: dict[str, Any], secret: str = SECRET, urlsafe: bool = False) -> str:
    """What Salesforce posts: base64(HMAC-SHA256(encoded envelope)) + '.' + encoded envelope."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    encoded = encode(json.dumps(body).encode()).decode()
    mac = hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return f"{encode(mac).decode()}.{encoded}"


@pytest.fixture
def canvas_app(make_settings, monkeypatch) -> Flask:
    monkeypatch.setenv("FOREWARN_TEST_CANVAS_SECRET", SECRET)
    app = create_app(
        make_settings(
            identity={
                "role_map": {PROFILE_VISITING: "visiting_officer"},
                "canvas": {
                    "enabled": True,
                    "consumer_secret_env": "FOREWARN_TEST_CANVAS_SECRET",
                    "max_age_seconds": 300,
                    "records": {
                        "Contact": {"kind": "customer", "ref_field": "Id"},
                        "Property__c": {"kind": "property", "ref_field": "UPRN__c"},
                    },
                },
            }
        )
    )
    yield app
    app.extensions["forewarn"].database.dispose()


def post(app: Flask, signed_request: str, client=None):
    client = client or app.test_client()
    return client, client.post("/auth/salesforce-canvas", data={"signed_request": signed_request})


def refused(response, fragment: str) -> None:
    assert response.status_code == 401, response.get_json()
    assert fragment in response.get_json()["detail"]


@pytest.mark.parametrize("urlsafe", [False, True])
def test_signed_request_signs_in_and_hands_over_to_the_embed_page(canvas_app, urlsafe) -> None:
    client, response = post(canvas_app, sign(envelope(), urlsafe=urlsafe))
    assert response.status_code == 303, response.get_json()
    assert response.headers["Location"] == "/embed?kind=customer&ref=003x000000AbCdEAAV"
    me = client.get("/auth/session").get_json()
    assert me["user"] == {
        "id": "val.officer@council.example",
        "name": "Val Officer",
        "roles": ["visiting_officer"],
    }
    assert me["via"] == "canvas"


def test_property_record_uses_its_configured_ref_field(canvas_app) -> None:
    body = envelope()
    body["context"]["environment"]["record"] = {
        "attributes": {"type": "Property__c"},
        "Id": "a01x0000003FgHi",
        "UPRN__c": "100023336956",
    }
    _, response = post(canvas_app, sign(body))
    assert response.headers["Location"] == "/embed?kind=property&ref=100023336956"


def test_issued_at_in_milliseconds_is_understood(canvas_app) -> None:
    _, response = post(canvas_app, sign(envelope(issuedAt=int(time.time() * 1000))))
    assert response.status_code == 303


class TestRefused:
    def test_tampered_envelope(self, canvas_app) -> None:
        signature = sign(envelope()).split(".", 1)[0]
        forged = envelope()
        forged["context"]["user"]["profileId"] = "00e-system-administrator"
        forged_encoded = base64.b64encode(json.dumps(forged).encode()).decode()
        _, response = post(canvas_app, f"{signature}.{forged_encoded}")
        refused(response, "signature does not match")

    def test_flipped_signature_byte(self, canvas_app) -> None:
        signature, encoded = sign(envelope()).split(".", 1)
        raw = bytearray(base64.b64decode(signature))
        raw[0] ^= 1
        _, response = post(canvas_app, f"{base64.b64encode(bytes(raw)).decode()}.{encoded}")
        refused(response, "signature does not match")

    def test_signed_with_another_secret(self, canvas_app) -> None:
        _, response = post(canvas_app, sign(envelope(), secret="someone-elses-secret"))
        refused(response, "signature does not match")

    def test_stale_issued_at(self, canvas_app) -> None:
        _, response = post(canvas_app, sign(envelope(issuedAt=int(time.time()) - 301)))
        refused(response, "stale")

    def test_issued_in_the_future(self, canvas_app) -> None:
        _, response = post(canvas_app, sign(envelope(issuedAt=int(time.time()) + 3600)))
        refused(response, "stale")

    def test_missing_issued_at(self, canvas_app) -> None:
        _, response = post(canvas_app, sign(envelope(issuedAt=None)))
        refused(response, "no issuedAt")

    def test_other_algorithm(self, canvas_app) -> None:
        _, response = post(canvas_app, sign(envelope(algorithm="none")))
        refused(response, "HMACSHA256")

    @pytest.mark.parametrize(
        "signed_request", ["no-dot-here", ".", "abc.", ".abc", "!!!.e30=", "c2ln.%%%"]
    )
    def test_malformed(self, canvas_app, signed_request) -> None:
        _, response = post(canvas_app, signed_request)
        assert response.status_code == 401, response.get_json()

    def test_missing_field(self, canvas_app) -> None:
        response = canvas_app.test_client().post("/auth/salesforce-canvas", data={})
        assert response.status_code == 422
        assert "signed_request" in response.get_json()["detail"]

    def test_user_with_no_mapped_profile(self, canvas_app) -> None:
        body = envelope()
        body["context"]["user"]["profileId"] = "00e-unmapped"
        _, response = post(canvas_app, sign(body))
        assert response.status_code == 403

    def test_not_on_a_record_or_on_an_unmapped_type(self, canvas_app) -> None:
        body = envelope()
        del body["context"]["environment"]["record"]
        assert post(canvas_app, sign(body))[1].status_code == 422
        body["context"]["environment"]["record"] = {"attributes": {"type": "Lead"}, "Id": "00Q1"}
        response = post(canvas_app, sign(body))[1]
        assert response.status_code == 422 and "Lead" in response.get_json()["detail"]

    def test_nothing_is_signed_in_after_a_refusal(self, canvas_app) -> None:
        client, _ = post(canvas_app, sign(envelope(), secret="wrong"))
        assert client.get("/auth/session").status_code == 401


def test_not_configured_is_404(client) -> None:
    response = client.post("/auth/salesforce-canvas", data={"signed_request": sign(envelope())})
    assert response.status_code == 404


def test_enabled_without_the_secret_in_the_environment_refuses_to_start(
    make_settings, monkeypatch
) -> None:
    monkeypatch.delenv("FOREWARN_TEST_CANVAS_SECRET", raising=False)
    settings = make_settings(
        identity={"canvas": {"enabled": True, "consumer_secret_env": "FOREWARN_TEST_CANVAS_SECRET"}}
    )
    with pytest.raises(StartupError, match="FOREWARN_TEST_CANVAS_SECRET"):
        create_app(settings)


def _refusals(app: Flask) -> list[tuple[str | None, str, str]]:
    with app.extensions["forewarn"].database.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "sign_in").order_by(AuditEntry.seq)
        )
        return [(e.actor_id, e.outcome, e.outcome_reason or "") for e in rows]


def test_every_refused_signed_request_is_an_audit_entry_with_its_reason(canvas_app) -> None:
    post(canvas_app, sign(envelope(), secret="not-the-secret"))
    unmapped = envelope()
    unmapped["context"]["environment"]["record"]["attributes"]["type"] = "Account"
    post(canvas_app, sign(unmapped))
    [forged, off_record] = _refusals(canvas_app)
    assert forged[0] is None and forged[1] == "denied"
    assert "does not match the consumer secret" in forged[2]
    assert off_record == (
        "val.officer@council.example",
        "denied",
        "records of type 'Account' are not mapped",
    )
